/*
 * looper.c - run a command again and again for a duration and count completed runs
 * (the driver of the Shell Scripts workloads; virtbench).
 *
 * Usage: looper DURATION COMMAND [ARG...]
 * Each run: fork, exec COMMAND, wait for it; it must exit with status 0.  When DURATION
 * seconds have passed the run in progress is not counted: all its processes are killed,
 * so nothing outlives the measurement.  How they are found:
 *   - when looper leads its process group, or runs in the group of a virtbench copy (led by
 *     vbgate, which says so in VBGATE_GROUP=<group id>), runs stay in that group, so whoever kills the group (virtbench on Ctrl-C)
 *     kills the scripts too; at the deadline looper sends SIGTERM to the group while
 *     ignoring it itself;
 *   - otherwise (started from an interactive shell, say) each run gets a process group of
 *     its own, which is killed at the deadline or when looper gets SIGINT/SIGTERM/SIGHUP.
 * Output: COUNT|<completed runs>|60|lpm|<elapsed>
 */
#include "vb.h"

#include <sys/prctl.h>
#include <sys/wait.h>

static volatile pid_t current = 0;
static int own_group = 0; /* runs share looper's process group (looper leads it) */

/* vbgate leads the copy's group and tells its program so (it survives our SIGTERM) */
static int in_gate_group(void)
{
    const char *g = getenv("VBGATE_GROUP");
    char *end = NULL;
    long id;

    if (g == NULL || *g == '\0')
        return 0;
    id = strtol(g, &end, 10);
    return *end == '\0' && id > 0 && (pid_t)id == getpgrp();
}

static void kill_current(void)
{
    pid_t pid = current;
    if (pid <= 0)
        return;
    if (own_group) {
        signal(SIGTERM, SIG_IGN);
        kill(0, SIGTERM);
    } else {
        kill(-pid, SIGKILL);
    }
    kill(pid, SIGKILL);
}

static void on_terminate(int sig)
{
    kill_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    unsigned long runs = 0;
    double start, duration, elapsed = -1.0;
    int status;

    vb_init(argv[0]);
    if (argc < 3)
        vb_die("usage: %s DURATION COMMAND [ARG...]", argv[0]);
    start = vb_now();
    duration = vb_parse_seconds(argv[1]);
    own_group = getpgrp() == getpid() || in_gate_group();
    signal(SIGINT, on_terminate);
    signal(SIGTERM, on_terminate);
    signal(SIGHUP, on_terminate);
    fflush(NULL);

    vb_arm(duration);
    while (!vb_done) {
        pid_t pid = fork();
        if (pid < 0)
            vb_die_errno("fork");
        if (pid == 0) {
            if (!own_group)
                setpgid(0, 0);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGHUP, SIG_DFL);
            execvp(argv[2], argv + 2);
            fprintf(stderr, "%s: cannot run %s: %s\n", vb_prog, argv[2], strerror(errno));
            _exit(127);
        }
        if (!own_group)
            setpgid(pid, pid); /* also here, so the group exists before we might kill it */
        current = pid;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR)
                vb_die_errno("waitpid");
            if (vb_done) {
                /* Time is up during this run: stop it, it does not count. */
                elapsed = vb_now() - start;
                kill_current();
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                    ;
                status = -1;
                break;
            }
        }
        current = 0;
        if (status == -1)
            break;
        if (status != 0) {
            if (WIFEXITED(status))
                vb_die("%s exited with status %d", argv[2], WEXITSTATUS(status));
            vb_die("%s was killed by signal %d", argv[2], WTERMSIG(status));
        }
        runs++;
    }
    if (elapsed < 0.0) /* the deadline passed between runs */
        elapsed = vb_now() - start;
    vb_report_count(runs, 60, "lpm", elapsed);
    return 0;
}
