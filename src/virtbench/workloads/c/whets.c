/*
 * whets.c - Double-Precision Whetstone (virtbench workload).
 *
 * Written for virtbench from the definition of the Whetstone benchmark in the
 * self-calibrating eight-module form described by Roy Longbottom: eight timed
 * sections (array elements, array as parameter, conditional jumps, integer
 * arithmetic, trigonometric functions, procedure calls, array references,
 * standard functions), each an inner loop of (section constant x 100) passes
 * inside an outer loop of `extra` passes.  Section 1 runs ten times longer and
 * one tenth of its time is counted.
 *
 * Usage: whetstone-double DURATION
 * Calibration: starting at extra = 1, run all sections and multiply extra by 5
 * until one run takes more than 0.5 s (at most 10 tries); then size extra so
 * that the measured run takes about DURATION seconds.
 * MWIPS = extra * 100 / (10 * seconds used by the sections).
 * The section sizes are the section constants times a multiplier (100) that main
 * passes to whetstone() at run time, as the classic program does: with the sizes as
 * compile-time constants gcc -O2 restructures the loops (it peels and duplicates the
 * trigonometric section, for one) and the 5.1.3-profile build scored ~2.5% above
 * the classic build on the same machine.
 * VB_WHET_WALLCLOCK=1 times the sections on the wall clock (UnixBench 6);
 * 0 on the process's user CPU time (UnixBench 5.1.3).
 * Output: COUNT|<MWIPS>|0|MWIPS|<elapsed wall time of the whole program>
 *
 * Usage: whetstone-double -n EXTRA
 * Fixed work (virtbench's consolidation experiments): no calibration, one run of all
 * sections with `extra` = EXTRA; elapsed is the wall time of that run.
 */
#include "vb.h"

#include <sys/resource.h>

#ifndef VB_WHET_WALLCLOCK
#define VB_WHET_WALLCLOCK 1
#endif

#define CALIBRATION_TRIES 10
#define CALIBRATION_SECONDS 0.5
#define SECTION1_MULT 10
#define SECTION_SCALE 100 /* inner passes per unit of a section constant */

/* Sum of the sections' result values: keeps every section's work observable. */
static double whet_check;
/* Seconds counted by the last whetstone run. */
static double whet_seconds;

static double whet_clock(void)
{
#if VB_WHET_WALLCLOCK
    return vb_now();
#else
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
#endif
}

static void section_done(double result, double seconds)
{
    whet_check += result;
    whet_seconds += seconds;
}

void whet_pa(double e[4], double t, double t2);
void whet_po(double e[4], long j, long k, long l);
void whet_p3(double *x, double *y, double *z, double t, double t1, double t2);

/* Section 2 body: the array is passed to a procedure that iterates on it. */
void whet_pa(double e[4], double t, double t2)
{
    long r;
    for (r = 0; r < 6; r++) {
        e[0] = (e[0] + e[1] + e[2] - e[3]) * t;
        e[1] = (e[0] + e[1] - e[2] + e[3]) * t;
        e[2] = (e[0] - e[1] + e[2] + e[3]) * t;
        e[3] = (-e[0] + e[1] + e[2] + e[3]) / t2;
    }
}

/* Section 7 body: rotate three array elements. */
void whet_po(double e[4], long j, long k, long l)
{
    e[j] = e[k];
    e[k] = e[l];
    e[l] = e[j];
}

/* Section 6 body: a procedure working through pointers. */
void whet_p3(double *x, double *y, double *z, double t, double t1, double t2)
{
    *x = *y;
    *y = *z;
    *x = t * (*x + *y);
    *y = t1 * (*x + *y);
    *z = (*x + *y) / t2;
}

void whetstone(long extra, long scale);

/* One run of the eight sections, each `extra` outer passes of (constant x scale) inner
 * passes.  External linkage, as in the classic source (it is not inlined into main). */
void whetstone(long extra, long scale)
{
    const long n1 = 12 * scale, n2 = 14 * scale, n3 = 345 * scale, n4 = 210 * scale;
    const long n5 = 32 * scale, n6 = 899 * scale, n7 = 616 * scale, n8 = 93 * scale;
    const double t0 = 0.49999975, t1 = 0.50000025, t2 = 2.0;
    double t = t0;
    double e[4], x, y, z, mark;
    long pass, i, j, k, l;

    whet_check = 0.0;
    whet_seconds = 0.0;

    /* Section 1: array elements (run SECTION1_MULT times longer, that share counted). */
    e[0] = 1.0;
    e[1] = -1.0;
    e[2] = -1.0;
    e[3] = -1.0;
    mark = whet_clock();
    for (pass = 0; pass < extra; pass++) {
        for (i = 0; i < n1 * SECTION1_MULT; i++) {
            e[0] = (e[0] + e[1] + e[2] - e[3]) * t;
            e[1] = (e[0] + e[1] - e[2] + e[3]) * t;
            e[2] = (e[0] - e[1] + e[2] + e[3]) * t;
            e[3] = (-e[0] + e[1] + e[2] + e[3]) * t;
        }
        t = 1.0 - t;
    }
    t = t0;
    section_done(e[3], (whet_clock() - mark) / SECTION1_MULT);

    /* Section 2: array as parameter. */
    mark = whet_clock();
    for (pass = 0; pass < extra; pass++) {
        for (i = 0; i < n2; i++)
            whet_pa(e, t, t2);
        t = 1.0 - t;
    }
    t = t0;
    section_done(e[3], whet_clock() - mark);

    /* Section 3: conditional jumps. */
    j = 1;
    mark = whet_clock();
    for (pass = 0; pass < extra; pass++) {
        for (i = 0; i < n3; i++) {
            if (j == 1)
                j = 2;
            else
                j = 3;
            if (j > 2)
                j = 0;
            else
                j = 1;
            if (j < 1)
                j = 1;
            else
                j = 0;
        }
    }
    section_done((double)j, whet_clock() - mark);

    /* Section 4: integer arithmetic. */
    j = 1;
    k = 2;
    l = 3;
    mark = whet_clock();
    for (pass = 0; pass < extra; pass++) {
        for (i = 0; i < n4; i++) {
            j = j * (k - j) * (l - k);
            k = l * k - (l - j) * k;
            l = (l - k) * (k + j);
            e[l - 2] = (double)(j + k + l);
            e[k - 2] = (double)(j * k * l);
        }
    }
    x = e[0] + e[1];
    section_done(x, whet_clock() - mark);

    /* Section 5: trigonometric functions. */
    x = 0.5;
    y = 0.5;
    mark = whet_clock();
    for (pass = 0; pass < extra; pass++) {
        for (i = 1; i < n5; i++) {
            x = t * atan(t2 * sin(x) * cos(x) / (cos(x + y) + cos(x - y) - 1.0));
            y = t * atan(t2 * sin(y) * cos(y) / (cos(x + y) + cos(x - y) - 1.0));
        }
        t = 1.0 - t;
    }
    t = t0;
    section_done(y, whet_clock() - mark);

    /* Section 6: procedure calls. */
    x = 1.0;
    y = 1.0;
    z = 1.0;
    mark = whet_clock();
    for (pass = 0; pass < extra; pass++) {
        for (i = 0; i < n6; i++)
            whet_p3(&x, &y, &z, t, t1, t2);
    }
    section_done(z, whet_clock() - mark);

    /* Section 7: array references. */
    j = 0;
    k = 1;
    l = 2;
    e[0] = 1.0;
    e[1] = 2.0;
    e[2] = 3.0;
    mark = whet_clock();
    for (pass = 0; pass < extra; pass++) {
        for (i = 0; i < n7; i++)
            whet_po(e, j, k, l);
    }
    section_done(e[2], whet_clock() - mark);

    /* Section 8: standard functions. */
    x = 0.75;
    mark = whet_clock();
    for (pass = 0; pass < extra; pass++) {
        for (i = 0; i < n8; i++)
            x = sqrt(exp(log(x) / t1));
    }
    section_done(x, whet_clock() - mark);
}

int main(int argc, char **argv)
{
    double start, duration, mwips;
    long extra = 1;
    long scale = SECTION_SCALE; /* passed at run time, see the top comment */
    int tries;

    vb_init(argv[0]);
    if (argc == 3 && strcmp(argv[1], "-n") == 0) {
        extra = vb_parse_long(argv[2], 1, 1000000000L, "pass count");
        start = vb_now();
        whetstone(extra, scale);
        if (!isfinite(whet_check) || whet_check == 0.0)
            vb_die("wrong answer: section results sum to %g", whet_check);
        if (!(whet_seconds > 0.0))
            vb_die("the timed run took no measurable time");
        vb_report_rate((double)extra * (double)scale / (10.0 * whet_seconds), "MWIPS", vb_now() - start);
        return 0;
    }
    if (argc != 2)
        vb_die("usage: %s DURATION | -n PASSES", argv[0]);
    start = vb_now();
    duration = vb_parse_seconds(argv[1]);

    for (tries = 0; tries < CALIBRATION_TRIES; tries++) {
        whetstone(extra, scale);
        if (whet_seconds > CALIBRATION_SECONDS)
            break;
        extra *= 5;
    }
    if (whet_seconds > 0.0)
        extra = (long)(duration * (double)extra / whet_seconds);
    if (extra < 1)
        extra = 1;

    whetstone(extra, scale);
    if (!(whet_seconds > 0.0))
        vb_die("the timed run took no measurable time");
    if (!isfinite(whet_check) || whet_check == 0.0)
        vb_die("wrong answer: section results sum to %g", whet_check);
    mwips = (double)extra * (double)scale / (10.0 * whet_seconds);
    vb_report_rate(mwips, "MWIPS", vb_now() - start);
    return 0;
}
