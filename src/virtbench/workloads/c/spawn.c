/*
 * spawn.c - Process Creation (virtbench workload).
 *
 * Usage: spawn DURATION
 * One loop = fork(); the child exits at once; the parent waits for it.
 * Output: COUNT|<loops>|1|lps|<elapsed>
 */
#include "vb.h"

#include <sys/wait.h>

int main(int argc, char **argv)
{
    unsigned long loops = 0;
    double start, duration;

    vb_init(argv[0]);
    if (argc != 2)
        vb_die("usage: %s DURATION", argv[0]);
    start = vb_now();
    duration = vb_parse_seconds(argv[1]);
    fflush(NULL);

    vb_arm(duration);
    while (!vb_done) {
        int status;
        pid_t pid = fork();
        if (pid == 0)
            exit(0);
        if (pid < 0)
            vb_die_errno("fork");
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR)
                vb_die_errno("waitpid");
        }
        if (status != 0)
            vb_die("child ended with wait status 0x%x", (unsigned)status);
        loops++;
    }
    vb_report_count(loops, 1, "lps", vb_now() - start);
    return 0;
}
