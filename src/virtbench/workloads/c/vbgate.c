/*
 * vbgate - start gate for the copies of one pass (written for virtbench).
 *
 * Usage: vbgate FD PROGRAM [ARGS...]
 * Blocks reading file descriptor FD until end-of-file, closes it, then runs PROGRAM as its
 * child and exits as PROGRAM did (its exit status, or the signal that killed it). The runner
 * starts every copy of a pass behind one pipe and closes the pipe's write end once all
 * copies exist, so they all begin together even when starting them takes a while (1024
 * copies on 2 CPUs). Not timed: each program measures its own run.
 *
 * The runner kills a copy's whole process group (vbgate leads it), never the runner's own.
 * When the runner dies without doing so (SIGKILL), the kernel tells vbgate
 * (PR_SET_PDEATHSIG) and vbgate kills its process group: the program and everything it
 * started. Asking for SIGKILL for the program alone (kept across execv, but not inherited by
 * its children) left the program's children running: a shell workload's pipelines, reparented
 * to init, went on after the runner was gone.
 *
 * The program learns that it runs in the copy's group (led by vbgate, not by itself) from
 * VBGATE_GROUP=<process group id> in its environment (looper keeps its runs in that group).
 * SIGTERM to the group (looper's way to stop the run in progress) does not stop vbgate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNNER_GONE SIGUSR1

static void ignore_signal(int sig)
{
    (void)sig; /* caught, not ignored: the program gets the default action back at execv */
}

static void on_runner_gone(int sig)
{
    (void)sig;
    kill(0, SIGKILL); /* this process group: vbgate, the program, the program's children */
    _exit(137);
}

int main(int argc, char **argv)
{
    char buf[64];
    char *end = NULL;
    long fd;
    ssize_t n;
    pid_t parent = getppid();
    pid_t child;
    int status;
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_runner_gone;
    sigfillset(&sa.sa_mask);
    if (sigaction(RUNNER_GONE, &sa, NULL) != 0)
        return 1;
    sa.sa_handler = ignore_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0)
        return 1;
    if (prctl(PR_SET_PDEATHSIG, RUNNER_GONE) != 0 || getppid() != parent)
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

    child = fork();
    if (child < 0) {
        fprintf(stderr, "vbgate: cannot fork: %s\n", strerror(errno));
        return 127;
    }
    if (child == 0) {
        pid_t gate = getppid();
        char group[32];
        signal(RUNNER_GONE, SIG_DFL);
        snprintf(group, sizeof group, "%ld", (long)getpgrp());
        if (setenv("VBGATE_GROUP", group, 1) != 0)
            _exit(127);
        /* the program dies with vbgate too (vbgate alone SIGKILLed) */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != gate)
            _exit(1);
        execv(argv[2], &argv[2]);
        fprintf(stderr, "vbgate: cannot execute %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR)
            return 127;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        /* die the same way, without a core dump of our own */
        signal(sig, SIG_DFL);
        prctl(PR_SET_DUMPABLE, 0);
        kill(getpid(), sig);
        return 128 + sig;
    }
    return WEXITSTATUS(status);
}
