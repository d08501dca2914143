/*
 * syscall.c - System Call Overhead (virtbench workload).
 *
 * Usage: syscall DURATION
 * One loop = close(dup(fd)); getpid; getuid(); umask(022).  getpid is the raw system
 * call when VB_RAW_GETPID=1 (UnixBench 6 style) and the libc function otherwise.
 * The descriptor is this process's own (on /dev/null), so copies never share one.
 * Output: COUNT|<loops>|1|lps|<elapsed>
 */
#include "vb.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef VB_RAW_GETPID
#define VB_RAW_GETPID 1
#endif

int main(int argc, char **argv)
{
    unsigned long loops = 0;
    double start, duration;
    int fd;

    vb_init(argv[0]);
    if (argc != 2)
        vb_die("usage: %s DURATION", argv[0]);
    start = vb_now();
    duration = vb_parse_seconds(argv[1]);
    fd = open("/dev/null", O_RDONLY);
    if (fd < 0)
        vb_die_errno("open /dev/null");

    vb_arm(duration);
    while (!vb_done) {
        int copy = dup(fd);
        if (copy < 0)
            vb_die_errno("dup");
        close(copy);
#if VB_RAW_GETPID
        syscall(SYS_getpid);
#else
        getpid();
#endif
        getuid();
        umask(022);
        loops++;
    }
    vb_report_count(loops, 1, "lps", vb_now() - start);
    return 0;
}
