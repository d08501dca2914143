/*
 * fstime.c - File Copy / File Read / File Write (virtbench workload).
 *
 * Usage: fstime -c|-r|-w [-b BUFSIZE] [-m MAXBLOCKS] [-d DIR] [-s SETTLE] DURATION
 *   -c  copy: read a file of MAXBLOCKS KiB buffer by buffer and write each buffer to a
 *       second file; at the end of the source rewind both files and go on
 *   -r  read: read the file buffer by buffer, rewinding at its end
 *   -w  write: write the file buffer by buffer, rewinding at its end
 *   -b  buffer size in bytes (256..65536, default 1024)
 *   -m  file size in KiB (default 2000)
 *   -d  directory for the files (default: the current directory)
 *   -s  seconds to let the file system settle after syncing (default min(1, DURATION/10))
 *
 * Setup (not timed): create the files; for -r and -c write the source file once in
 * full; for -c also read it once; fsync, then sleep SETTLE seconds.  Data is counted in
 * 256-byte units (a partial buffer counts to the nearest unit) and reported in KiB per
 * second of the timed loop.  The files are removed at the end (and on SIGINT/SIGTERM).
 * Output: COUNT|<KBps>|0|KBps|<seconds of the timed loop>
 */
#include "vb.h"

#include <fcntl.h>
#include <sys/stat.h>

#define COUNT_UNIT 256
#define MAX_BUFSIZE 65536

static char file_a[4096];
static char file_b[4096];
static char iobuf[MAX_BUFSIZE]; /* static buffer, as in the classic program */

static void remove_files(void)
{
    if (file_a[0])
        unlink(file_a);
    if (file_b[0])
        unlink(file_b);
}

static void on_terminate(int sig)
{
    remove_files();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int open_new(char *path, size_t size, const char *dir, const char *tag)
{
    int fd;
    if ((size_t)snprintf(path, size, "%s/vb-fstime-%s-%ld", dir, tag, (long)getpid()) >= size)
        vb_die("directory name too long: %s", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        int err = errno;
        path[0] = '\0';
        remove_files();
        errno = err;
        vb_die_errno(tag);
    }
    return fd;
}

static void fail(const char *what)
{
    int err = errno;
    remove_files();
    errno = err;
    vb_die_errno(what);
}

/* Write the whole file once (max_buffs buffers) and rewind it. */
static void fill(int fd, long max_buffs, size_t bufsize)
{
    long i;
    for (i = 0; i < max_buffs; i++)
        if (write(fd, iobuf, bufsize) != (ssize_t)bufsize)
            fail("write (setup)");
    if (lseek(fd, 0, SEEK_SET) < 0)
        fail("lseek");
}

/* Read the whole file once and rewind it. */
static void slurp(int fd, size_t bufsize)
{
    ssize_t n;
    while ((n = read(fd, iobuf, bufsize)) > 0)
        ;
    if (n < 0)
        fail("read (setup)");
    if (lseek(fd, 0, SEEK_SET) < 0)
        fail("lseek");
}

static void settle(int fd_a, int fd_b, double seconds)
{
    struct timespec ts;
    if (fsync(fd_a) != 0 || (fd_b >= 0 && fsync(fd_b) != 0))
        fail("fsync");
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    char mode = 0;
    long bufsize = 1024, maxblocks = 2000, max_buffs, buffs;
    const char *dir = ".";
    double duration, settle_s = -1.0, start, elapsed;
    unsigned long long bytes = 0;
    int opt, fa, fb = -1;
    ssize_t n;

    vb_init(argv[0]);
    while ((opt = getopt(argc, argv, "crwb:m:d:s:")) != -1) {
        switch (opt) {
        case 'c':
        case 'r':
        case 'w':
            mode = (char)opt;
            break;
        case 'b':
            bufsize = vb_parse_long(optarg, COUNT_UNIT, MAX_BUFSIZE, "buffer size");
            break;
        case 'm':
            maxblocks = vb_parse_long(optarg, 1, 1024L * 1024L, "max blocks");
            break;
        case 'd':
            dir = optarg;
            break;
        case 's':
            settle_s = strtod(optarg, NULL);
            if (!(settle_s >= 0.0 && settle_s <= 60.0))
                vb_die("bad settle time '%s' (0..60 seconds)", optarg);
            break;
        default:
            vb_die("usage: %s -c|-r|-w [-b BUFSIZE] [-m KIB] [-d DIR] [-s SETTLE] DURATION",
                   argv[0]);
        }
    }
    if (!mode || optind != argc - 1)
        vb_die("usage: %s -c|-r|-w [-b BUFSIZE] [-m KIB] [-d DIR] [-s SETTLE] DURATION",
               argv[0]);
    duration = vb_parse_seconds(argv[optind]);
    if (settle_s < 0.0)
        settle_s = duration / 10.0 < 1.0 ? duration / 10.0 : 1.0;
    max_buffs = maxblocks * 1024L / bufsize;
    if (max_buffs < 1)
        vb_die("file of %ld KiB is smaller than one %ld-byte buffer", maxblocks, bufsize);
    for (n = 0; n < bufsize; n++)
        iobuf[n] = (char)(n & 0xff);

    signal(SIGINT, on_terminate);
    signal(SIGTERM, on_terminate);
    signal(SIGHUP, on_terminate);
    fa = open_new(file_a, sizeof file_a, dir, "a");
    if (mode == 'c')
        fb = open_new(file_b, sizeof file_b, dir, "b");
    if (mode != 'w')
        fill(fa, max_buffs, (size_t)bufsize);
    if (mode == 'c')
        slurp(fa, (size_t)bufsize);
    settle(fa, fb, settle_s);

    vb_arm(duration);
    start = vb_now();
    switch (mode) {
    case 'w':
        while (!vb_done) {
            for (buffs = 0; buffs < max_buffs && !vb_done; buffs++) {
                n = write(fa, iobuf, (size_t)bufsize);
                if (n < 0 && errno != EINTR)
                    fail("write");
                if (n > 0)
                    bytes += (unsigned long long)n;
            }
            if (buffs == max_buffs && lseek(fa, 0, SEEK_SET) < 0)
                fail("lseek");
        }
        break;
    case 'r':
        while (!vb_done) {
            n = read(fa, iobuf, (size_t)bufsize);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                fail("read");
            }
            bytes += (unsigned long long)n;
            if (n < bufsize && lseek(fa, 0, SEEK_SET) < 0)
                fail("lseek");
        }
        break;
    case 'c':
        while (!vb_done) {
            n = read(fa, iobuf, (size_t)bufsize);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                fail("read");
            }
            if (n < bufsize) { /* end of the source: rewind both */
                if (lseek(fa, 0, SEEK_SET) < 0 || lseek(fb, 0, SEEK_SET) < 0)
                    fail("lseek");
                continue;
            }
            n = write(fb, iobuf, (size_t)bufsize);
            if (n < 0 && errno != EINTR)
                fail("write");
            if (n > 0)
                bytes += (unsigned long long)n;
        }
        break;
    }
    elapsed = vb_now() - start;
    close(fa);
    if (fb >= 0)
        close(fb);
    remove_files();
    {
        unsigned long long units = (bytes + COUNT_UNIT / 2) / COUNT_UNIT;
        double kbps = (double)units / (elapsed * (1024.0 / COUNT_UNIT));
        vb_report_rate(kbps, "KBps", elapsed);
    }
    return 0;
}
