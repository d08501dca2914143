/*
 * context1.c - Pipe-based Context Switching (virtbench workload).
 *
 * Usage: context1 DURATION
 * Two processes, two pipes.  The master writes its loop counter into pipe 1; the slave
 * reads it, checks it equals its own counter and writes it back into pipe 2; the master
 * reads it back and checks it.  One loop = one round trip, counted by the master.
 * Output: COUNT|<loops>|1|lps|<elapsed>
 */
#include "vb.h"

#include <sys/wait.h>

static int read_full(int fd, unsigned long *value)
{
    ssize_t n;
    do
        n = read(fd, value, sizeof *value);
    while (n < 0 && errno == EINTR && !vb_done);
    return (int)n;
}

static void slave(int in, int out)
{
    unsigned long expect = 0, got;
    for (;;) {
        ssize_t n = read(in, &got, sizeof got);
        if (n == 0)
            _exit(0); /* the master closed its end: done */
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof got) {
            fprintf(stderr, "%s: slave read: %s\n", vb_prog, n < 0 ? strerror(errno) : "short");
            _exit(2);
        }
        if (got != expect) {
            fprintf(stderr, "%s: slave sync error: expected %lu, got %lu\n", vb_prog, expect, got);
            _exit(2);
        }
        do
            n = write(out, &expect, sizeof expect);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof expect) {
            if (n < 0 && errno == EPIPE)
                _exit(0);
            fprintf(stderr, "%s: slave write: %s\n", vb_prog, n < 0 ? strerror(errno) : "short");
            _exit(2);
        }
        expect++;
    }
}

int main(int argc, char **argv)
{
    unsigned long loops = 0, got = 0;
    double start, duration, elapsed;
    int to_slave[2], to_master[2], status;
    pid_t child;

    vb_init(argv[0]);
    if (argc != 2)
        vb_die("usage: %s DURATION", argv[0]);
    start = vb_now();
    duration = vb_parse_seconds(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    if (pipe(to_slave) != 0 || pipe(to_master) != 0)
        vb_die_errno("pipe");
    fflush(NULL);
    child = fork();
    if (child < 0)
        vb_die_errno("fork");
    if (child == 0) {
        close(to_slave[1]);
        close(to_master[0]);
        slave(to_slave[0], to_master[1]);
    }
    close(to_slave[0]);
    close(to_master[1]);

    vb_arm(duration);
    while (!vb_done) {
        ssize_t n;
        do
            n = write(to_slave[1], &loops, sizeof loops);
        while (n < 0 && errno == EINTR && !vb_done);
        if (n < 0 && errno == EINTR)
            break;
        if (n != (ssize_t)sizeof loops)
            vb_die_errno("master write");
        n = read_full(to_master[0], &got);
        if (n < 0 && errno == EINTR) {
            /* Interrupted by the alarm waiting for the reply: take it, it is on its way. */
            vb_done = 0;
            n = read_full(to_master[0], &got);
            vb_done = 1;
        }
        if (n != (ssize_t)sizeof got)
            vb_die("master read: %s", n < 0 ? strerror(errno) : "slave went away");
        if (got != loops)
            vb_die("master sync error: expected %lu, got %lu", loops, got);
        loops++;
    }
    elapsed = vb_now() - start;
    close(to_slave[1]);
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        vb_die("slave process failed (wait status 0x%x)", (unsigned)status);
    vb_report_count(loops, 1, "lps", elapsed);
    return 0;
}
