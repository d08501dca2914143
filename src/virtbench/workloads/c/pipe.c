/*
 * pipe.c - Pipe Throughput (virtbench workload).
 *
 * Usage: pipe DURATION
 * One process, one pipe; one loop = write 512 bytes into the pipe, read 512 bytes back.
 * Output: COUNT|<loops>|1|lps|<elapsed>
 */
#include "vb.h"

#define PIPE_CHUNK 512

int main(int argc, char **argv)
{
    char buf[PIPE_CHUNK];
    unsigned long loops = 0;
    double start, duration;
    int fds[2];

    vb_init(argv[0]);
    if (argc != 2)
        vb_die("usage: %s DURATION", argv[0]);
    start = vb_now();
    duration = vb_parse_seconds(argv[1]);
    if (pipe(fds) != 0)
        vb_die_errno("pipe");
    memset(buf, 'p', sizeof buf);

    vb_arm(duration);
    while (!vb_done) {
        ssize_t n = write(fds[1], buf, PIPE_CHUNK);
        if (n != PIPE_CHUNK) {
            if (n < 0 && errno == EINTR)
                continue;
            vb_die_errno("write");
        }
        do
            n = read(fds[0], buf, PIPE_CHUNK);
        while (n < 0 && errno == EINTR);
        if (n != PIPE_CHUNK)
            vb_die_errno("read");
        loops++;
    }
    vb_report_count(loops, 1, "lps", vb_now() - start);
    return 0;
}
