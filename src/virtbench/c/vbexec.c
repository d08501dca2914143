/*
 * vbexec - run a program that dies with virtbench (written for virtbench).
 *
 * Usage: vbexec PARENT SIGNAL PROGRAM [ARGS...]
 *
 * Asks the kernel to send SIGNAL (a number) when the parent dies (PR_SET_PDEATHSIG, kept
 * across execv), then checks that the parent is still PARENT: if virtbench died before the
 * request, the kernel will never send it, so vbexec exits at once (status 125) instead of
 * running PROGRAM orphaned. Then it empties its signal mask (virtbench holds SIGINT, SIGTERM
 * and SIGHUP while it starts a program, so that a Ctrl-C cannot come between the start and
 * the moment it knows the child's pid; a mask survives execv) and executes PROGRAM, searched
 * in PATH when it has no slash. Cannot execute it: one line on stderr, status 127.
 *
 * It replaces Python code run in the child between fork and exec (subprocess's preexec_fn):
 * with preexec_fn CPython forks instead of vforking and runs the interpreter's at-fork hooks,
 * where a Ctrl-C is swallowed ("Exception ignored in ..."), and a SIGINT that reaches the
 * child while it runs that Python code turns into "Exception occurred in preexec_fn" in the
 * parent. vbexec is C from its first instruction: no Python runs in the child at all.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static long number(const char *text, const char *what)
{
    char *end = NULL;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno != 0 || value <= 0) {
        fprintf(stderr, "vbexec: bad %s '%s'\n", what, text);
        exit(2);
    }
    return value;
}

int main(int argc, char **argv)
{
    long parent, sig;
    sigset_t none;

    if (argc < 4) {
        fprintf(stderr, "usage: vbexec PARENT SIGNAL PROGRAM [ARGS...]\n");
        return 2;
    }
    parent = number(argv[1], "parent pid");
    sig = number(argv[2], "signal");
    if (sig >= NSIG) {
        fprintf(stderr, "vbexec: bad signal '%s'\n", argv[2]);
        return 2;
    }
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig) != 0) {
        fprintf(stderr, "vbexec: cannot ask for a parent-death signal: %s\n", strerror(errno));
        return 125;
    }
    if ((long)getppid() != parent)
        return 125; /* virtbench is already gone: do not run alone */
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        return 125;
    execvp(argv[3], &argv[3]);
    fprintf(stderr, "vbexec: cannot execute %s: %s\n", argv[3], strerror(errno));
    return 127;
}
