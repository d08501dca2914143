/*
 * vbgate - start gate for the copies of one pass (written for virtbench).
 *
 * Usage: vbgate FD PROGRAM [ARGS...]
 * Blocks reading file descriptor FD until end-of-file, closes it, then executes PROGRAM.
 * The runner starts every copy of a pass behind one pipe and closes the pipe's write end
 * once all copies exist, so they all begin together even when starting them takes a
 * while (1024 copies on 2 CPUs). Not timed: each program measures its own run.
 *
 * The copy asks the kernel for SIGKILL when the runner dies (PR_SET_PDEATHSIG, kept across
 * execv): each copy leads its own process group, so a SIGKILL of the runner did not reach
 * it, and it ran on to the end of its pass after the runner was gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char buf[64];
    char *end = NULL;
    long fd;
    ssize_t n;
    pid_t parent = getppid();

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        return 1; /* the runner is already gone (or the request failed): do not run alone */

    if (argc < 3) {
        fprintf(stderr, "usage: vbgate FD PROGRAM [ARGS...]\n");
        return 2;
    }
    fd = strtol(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0' || fd < 0) {
        fprintf(stderr, "vbgate: bad file descriptor '%s'\n", argv[1]);
        return 2;
    }
    do {
        n = read((int)fd, buf, sizeof buf);
    } while (n > 0 || (n < 0 && errno == EINTR));
    close((int)fd);
    if (getppid() != parent)
        return 1; /* the pipe closed because the runner died, not because it opened the gate */
    execv(argv[2], &argv[2]);
    fprintf(stderr, "vbgate: cannot execute %s: %s\n", argv[2], strerror(errno));
    return 127;
}
