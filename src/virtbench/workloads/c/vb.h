/*
 * vb.h - helpers shared by the virtbench workload programs.
 *
 * Written for virtbench.  Every workload program:
 *   - takes the duration in seconds (decimal allowed) as a command-line argument,
 *   - ends its timed loop with a real-time interval timer (SIGALRM sets vb_done),
 *   - prints exactly one line on stdout:
 *         COUNT|<count>|<timebase>|<unit>|<elapsed_seconds>
 *     where elapsed is measured with CLOCK_MONOTONIC,
 *   - reports errors on stderr and exits non-zero.
 *
 * Everything here is static inline so that a program that does not use a helper
 * does not get an "unused function" warning under -Wall -pedantic.
 */
#ifndef VB_H
#define VB_H

#define _GNU_SOURCE 1

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Set by the SIGALRM handler when the duration has passed. */
static volatile sig_atomic_t vb_done = 0;

/* Program name for error messages (set by vb_init). */
static const char *vb_prog = "workload";

static inline void vb_init(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');
    vb_prog = slash ? slash + 1 : argv0;
}

static inline void vb_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", vb_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* Like vb_die, with strerror(errno) appended. */
static inline void vb_die_errno(const char *what)
{
    int err = errno;
    fprintf(stderr, "%s: %s: %s\n", vb_prog, what, strerror(err));
    exit(2);
}

/* Seconds on the monotonic clock (shared by all processes of the machine). */
static inline double vb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Parse a duration in seconds: a finite number > 0 and <= 1 day. */
static inline double vb_parse_seconds(const char *text)
{
    char *end = NULL;
    double value;
    errno = 0;
    value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value > 0.0) || value > 86400.0)
        vb_die("bad duration '%s' (seconds, > 0 and <= 86400)", text);
    return value;
}

/* Parse a positive integer option value within [lo, hi]. */
static inline long vb_parse_long(const char *text, long lo, long hi, const char *what)
{
    char *end = NULL;
    long value;
    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < lo || value > hi)
        vb_die("bad %s '%s' (integer %ld..%ld)", what, text, lo, hi);
    return value;
}

static inline void vb_on_alarm(int sig)
{
    (void)sig;
    vb_done = 1;
}

/*
 * Arm the one-shot timer that ends the timed loop after `seconds`.  The handler
 * is installed without SA_RESTART, so a blocking read/write/wait returns EINTR.
 */
static inline void vb_arm(double seconds)
{
    struct sigaction sa;
    struct itimerval it;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = vb_on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    if (sigaction(SIGALRM, &sa, NULL) != 0)
        vb_die_errno("sigaction");
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = (time_t)seconds;
    it.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
    if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
        it.it_value.tv_usec = 1;
    if (setitimer(ITIMER_REAL, &it, NULL) != 0)
        vb_die_errno("setitimer");
}

/* Print the result line for an integer count. */
static inline void vb_report_count(unsigned long count, int timebase, const char *unit,
                                   double elapsed)
{
    printf("COUNT|%lu|%d|%s|%.6f\n", count, timebase, unit, elapsed);
    if (fflush(stdout) != 0)
        vb_die_errno("stdout");
}

/* Print the result line for a rate (timebase 0: MWIPS, KBps). */
static inline void vb_report_rate(double rate, const char *unit, double elapsed)
{
    if (!isfinite(rate) || rate < 0.0)
        vb_die("computed an invalid rate (%g)", rate);
    printf("COUNT|%.3f|0|%s|%.6f\n", rate, unit, elapsed);
    if (fflush(stdout) != 0)
        vb_die_errno("stdout");
}

#endif /* VB_H */
