/*
 * sysmix.c - virtbench's system-call mix workload.
 *
 * Alternates user-mode computation with system calls in a known ratio of CPU time
 * (measured at full speed), and measures the latency of every system call.
 *
 *   sysmix --calibrate F [--unit-us U] [--call read4k|getppid]
 *       Measure the cost of one user iteration and of one system call on this CPU and
 *       choose, per unit of work, USER iterations and SYS calls so that system calls take
 *       the fraction F (0..1) of the unit's CPU time (refined on the real loop with the
 *       median unit; t_user_ns/t_sys_ns are the refined per-iteration/per-call costs,
 *       the call's including its two clock reads).  Prints
 *         CALIB|user=<USER>|sys=<SYS>|t_user_ns=<ns>|t_sys_ns=<ns>|fraction=<F>|call=<call>
 *
 *   sysmix -u USER -s SYS (-n UNITS | -t SECONDS) [--call read4k|getppid]
 *   sysmix --calibrate F (-n UNITS | -t SECONDS) ...      (calibrate, then run)
 *       Run UNITS units (fixed work) or as many as fit in SECONDS.  Prints one line:
 *         SYSMIX|units=..|elapsed=..|syscalls=..|user_iters=..|p50_ns=..|p90_ns=..|
 *                p99_ns=..|max_ns=..|mean_ns=..|user_s=..|sys_s=..|user=..|sys=..
 *       elapsed is CLOCK_MONOTONIC seconds of the timed loop; p50/p90/p99 are system-call
 *       latency percentiles (log-linear histogram, ~3% resolution); user_s/sys_s are the
 *       process's own getrusage figures over the timed loop; in_call_s the summed time inside system calls
 *       (each measured with two clock reads, which are included).
 *
 * The system call is read(2) of 4 KiB from /dev/zero (one kernel entry plus a 4 KiB copy)
 * or getppid(2) (a bare kernel entry).  Written for virtbench.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SUB_BITS 5
#define SUB (1u << SUB_BITS)
#define NBUCKETS (2 * SUB + 64 * SUB)

static uint64_t hist[NBUCKETS];
static uint64_t hist_count, hist_sum, hist_max;
static volatile uint64_t sink;
static int zero_fd = -1;
static int use_getppid = 0;
static char buf[4096];

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "sysmix: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline unsigned bucket_of(uint64_t v)
{
    if (v < 2 * SUB)
        return (unsigned)v;
    unsigned b = 63u - (unsigned)__builtin_clzll(v); /* b >= SUB_BITS + 1 */
    unsigned shift = b - SUB_BITS;
    unsigned top = (unsigned)(v >> shift); /* SUB .. 2*SUB-1 */
    return 2 * SUB + (b - SUB_BITS - 1) * SUB + (top - SUB);
}

static uint64_t bucket_value(unsigned idx)
{
    if (idx < 2 * SUB)
        return idx;
    unsigned rel = idx - 2 * SUB;
    unsigned shift = rel / SUB + 1;
    uint64_t top = SUB + rel % SUB;
    return (top << shift) + ((1ull << shift) >> 1);
}

static uint64_t percentile(double p)
{
    if (hist_count == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(p * (double)hist_count);
    if (want < 1)
        want = 1;
    uint64_t cum = 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        cum += hist[i];
        if (cum >= want) {
            uint64_t v = bucket_value(i);
            return v > hist_max ? hist_max : v;
        }
    }
    return hist_max;
}

static inline void one_call(void)
{
    if (use_getppid) {
        if (syscall(SYS_getppid) < 0)
            die("getppid failed%s", "");
    } else if (read(zero_fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
        die("read /dev/zero: %s", strerror(errno));
    }
}

/* One system call, timed and recorded. */
static inline void timed_call(void)
{
    uint64_t t0 = now_ns();
    one_call();
    uint64_t d = now_ns() - t0;
    hist[bucket_of(d)]++;
    hist_count++;
    hist_sum += d;
    if (d > hist_max)
        hist_max = d;
}

/* User-mode computation: `iters` rounds of a 64-bit xorshift. */
static inline void user_work(uint64_t iters)
{
    uint64_t x = sink | 1u;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    sink = x;
}

#define REFINE_UNITS 4096
static double refine_user[REFINE_UNITS], refine_sys[REFINE_UNITS];

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double tv_diff(const struct timeval *a, const struct timeval *b)
{
    return (double)(a->tv_sec - b->tv_sec) + (double)(a->tv_usec - b->tv_usec) * 1e-6;
}

static double parse_double(const char *s, double lo, double hi, const char *what)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        die("bad %s", what);
    return v;
}

static uint64_t parse_u64(const char *s, const char *what)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        die("bad %s", what);
    return (uint64_t)v;
}

static void calibrate(double fraction, double unit_us, uint64_t *user, uint64_t *sys,
                      double *t_user, double *t_sys)
{
    double best_u = 1e30, best_s = 1e30;
    /* Many short rounds, keeping the fastest: other load on the machine only slows a round. */
    const uint64_t n_user = 400000, n_sys = 4000;
    for (int round = 0; round < 25; round++) {
        uint64_t t0 = now_ns();
        user_work(n_user);
        double u = (double)(now_ns() - t0) / (double)n_user;
        if (u < best_u)
            best_u = u;
        t0 = now_ns();
        for (uint64_t i = 0; i < n_sys; i++)
            timed_call();
        double s = (double)(now_ns() - t0) / (double)n_sys;
        if (s < best_s)
            best_s = s;
    }
    double unit_ns = unit_us * 1000.0;
    *user = (uint64_t)llround((1.0 - fraction) * unit_ns / best_u);
    *sys = (uint64_t)llround(fraction * unit_ns / best_s);
    if (fraction > 0 && *sys == 0)
        *sys = 1;
    if (fraction < 1 && *user == 0)
        *user = 1;
    *t_user = best_u;
    *t_sys = best_s;
    /*
     * Refine on the real loop: run units, timing the user part and the system-call part of
     * each, and scale the number of calls per unit so that the share of the median unit's
     * time spent in system calls matches.  Medians keep preemptions by other load (a unit
     * that lost the CPU) out of the estimate.
     */
    for (int round = 0; round < 3 && fraction > 0 && fraction < 1; round++) {
        size_t n = 0;
        uint64_t t0 = now_ns();
        while ((now_ns() - t0 < 60000000u || n < 15) && n < REFINE_UNITS) {
            uint64_t a = now_ns();
            user_work(*user);
            uint64_t b = now_ns();
            for (uint64_t k = 0; k < *sys; k++)
                timed_call();
            uint64_t c = now_ns();
            refine_user[n] = (double)(b - a);
            refine_sys[n] = (double)(c - b);
            n++;
        }
        double mu = median(refine_user, n), ms = median(refine_sys, n);
        if (!(mu > 0 && ms > 0))
            break;
        *t_user = mu / (double)*user;
        *t_sys = ms / (double)*sys;
        double got = ms / (mu + ms);
        double scale = (fraction / (1 - fraction)) / (got / (1 - got));
        uint64_t s_new = (uint64_t)llround((double)*sys * scale);
        *sys = s_new ? s_new : 1;
    }
    /* Calibration calls are not part of the measurement. */
    memset(hist, 0, sizeof hist);
    hist_count = hist_sum = hist_max = 0;
}

int main(int argc, char **argv)
{
    double fraction = -1, unit_us = 200, seconds = 0;
    uint64_t user = 0, sys = 0, units = 0;
    int have_user = 0, have_sys = 0, have_units = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--calibrate") && v) {
            fraction = parse_double(v, 0, 1, "--calibrate fraction (0..1)");
            i++;
        } else if (!strcmp(a, "--unit-us") && v) {
            unit_us = parse_double(v, 1, 1e6, "--unit-us (1..1000000)");
            i++;
        } else if (!strcmp(a, "--call") && v) {
            if (!strcmp(v, "getppid"))
                use_getppid = 1;
            else if (strcmp(v, "read4k"))
                die("unknown --call '%s' (read4k, getppid)", v);
            i++;
        } else if (!strcmp(a, "-u") && v) {
            user = parse_u64(v, "-u");
            have_user = 1;
            i++;
        } else if (!strcmp(a, "-s") && v) {
            sys = parse_u64(v, "-s");
            have_sys = 1;
            i++;
        } else if (!strcmp(a, "-n") && v) {
            units = parse_u64(v, "-n");
            have_units = 1;
            i++;
        } else if (!strcmp(a, "-t") && v) {
            seconds = parse_double(v, 1e-3, 86400, "-t seconds");
            i++;
        } else {
            die("usage: sysmix --calibrate F | -u USER -s SYS (-n UNITS | -t SECONDS) "
                "[--call read4k|getppid] (bad argument '%s')", a);
        }
    }
    zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    if (zero_fd < 0)
        die("open /dev/zero: %s", strerror(errno));
    const char *call = use_getppid ? "getppid" : "read4k";
    int run = have_units || seconds > 0;
    if (fraction >= 0) {
        double tu, ts;
        calibrate(fraction, unit_us, &user, &sys, &tu, &ts);
        printf("CALIB|user=%llu|sys=%llu|t_user_ns=%.4f|t_sys_ns=%.2f|fraction=%.4f|call=%s\n",
               (unsigned long long)user, (unsigned long long)sys, tu, ts, fraction, call);
        fflush(stdout);
    } else if (!(have_user && have_sys)) {
        die("give --calibrate F, or -u USER and -s SYS%s", "");
    }
    if (!run) {
        if (fraction < 0)
            die("give -n UNITS or -t SECONDS%s", "");
        return 0;
    }
    if (user == 0 && sys == 0)
        die("a unit needs some work (-u or -s > 0)%s", "");
    uint64_t done = 0;
    struct rusage ru0, ru;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t start = now_ns();
    uint64_t deadline = seconds > 0 ? start + (uint64_t)(seconds * 1e9) : 0;
    for (;;) {
        if (have_units ? done >= units : now_ns() >= deadline)
            break;
        user_work(user);
        for (uint64_t k = 0; k < sys; k++)
            timed_call();
        done++;
    }
    double elapsed = (double)(now_ns() - start) * 1e-9;
    getrusage(RUSAGE_SELF, &ru);
    printf("SYSMIX|units=%llu|elapsed=%.6f|syscalls=%llu|user_iters=%llu|p50_ns=%llu|"
           "p90_ns=%llu|p99_ns=%llu|max_ns=%llu|mean_ns=%.1f|user_s=%.6f|sys_s=%.6f|"
           "in_call_s=%.6f|user=%llu|sys=%llu|call=%s\n",
           (unsigned long long)done, elapsed, (unsigned long long)hist_count,
           (unsigned long long)(done * user), (unsigned long long)percentile(0.50),
           (unsigned long long)percentile(0.90), (unsigned long long)percentile(0.99),
           (unsigned long long)hist_max,
           hist_count ? (double)hist_sum / (double)hist_count : 0.0,
           tv_diff(&ru.ru_utime, &ru0.ru_utime), tv_diff(&ru.ru_stime, &ru0.ru_stime),
           (double)hist_sum * 1e-9, (unsigned long long)user, (unsigned long long)sys, call);
    if (fflush(stdout) != 0)
        return 2;
    return 0;
}
