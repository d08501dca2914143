/*
 * dhry_1.c - main translation unit of virtbench's Dhrystone 2.1 workload:
 * the timed loop and procedures 1-5.  See dhry.h.
 *
 * Usage: dhry2reg DURATION
 * Counts Dhrystone loops until DURATION seconds have passed.
 * Output: COUNT|<loops>|1|lps|<elapsed>
 *
 * Usage: dhry2reg -n LOOPS
 * Fixed work (virtbench's consolidation experiments): runs exactly LOOPS loops and
 * reports how long they took, elapsed counted from the first loop.
 */
#include "vb.h"
#include "dhry.h"

record_ptr g_rec;
record_ptr g_next_rec;
int g_int;
flag_t g_flag;
char g_ch1;
char g_ch2;
vec1_t g_vec1;
vec2_t g_vec2;

/*
 * The loop index lives in memory (volatile), as the classic timed build keeps
 * it where the alarm handler can read it.
 */
static volatile unsigned long dh_run;

/*
 * Procedures 1-5 have external linkage, as in the classic source: that decides what the
 * compiler inlines into the loop (with gcc -O3, procedures 2, 4 and 5 but not 1); static
 * functions would be inlined more eagerly and score higher than the classic build.
 */
void dh_proc1(REG record_ptr rec);
void dh_proc2(one_to_fifty *io);
void dh_proc3(record_ptr *out);
void dh_proc4(void);
void dh_proc5(void);

/* One Dhrystone loop; expanded in both the timed and the fixed-work loop below. */
#define DH_LOOP_BODY() \
    do { \
        dh_proc5();                                              \
        dh_proc4();                                              \
        i1 = 2;                                                  \
        i2 = 3;                                                  \
        strcpy(str2, "DHRYSTONE PROGRAM, 2'ND STRING");          \
        kind = K_TWO;                                            \
        g_flag = !dh_func2(str1, str2);                          \
        while (i1 < i2) {                                        \
            i3 = 5 * i1 - i2;                                    \
            dh_proc7(i1, i2, &i3);                               \
            i1 += 1;                                             \
        }                                                        \
        dh_proc8(g_vec1, g_vec2, i1, i3);                        \
        dh_proc1(g_rec);                                         \
        for (ch = 'A'; ch <= g_ch2; ++ch) {                      \
            if (kind == dh_func1(ch, 'C')) {                     \
                dh_proc6(K_ONE, &kind);                          \
                strcpy(str2, "DHRYSTONE PROGRAM, 3'RD STRING");  \
                i2 = (one_to_fifty)dh_run;                       \
                g_int = (int)dh_run;                             \
            }                                                    \
        }                                                        \
        i2 = i2 * i1;                                            \
        i1 = i2 / i3;                                            \
        i2 = 7 * (i2 - i3) - i1;                                 \
        dh_proc2(&i1);                                           \
    } while (0)

int main(int argc, char **argv)
{
    one_to_fifty i1 = 0;
    REG one_to_fifty i2;
    one_to_fifty i3 = 0;
    REG char ch;
    kind_t kind;
    text30_t str1;
    text30_t str2;
    double start, elapsed;

    unsigned long fixed_loops = 0;
    double duration = 0.0;

    vb_init(argv[0]);
    start = vb_now();
    if (argc == 3 && strcmp(argv[1], "-n") == 0)
        fixed_loops = (unsigned long)vb_parse_long(argv[2], 1, 2000000000000L, "loop count");
    else if (argc == 2)
        duration = vb_parse_seconds(argv[1]);
    else
        vb_die("usage: %s DURATION | -n LOOPS", argv[0]);

    g_next_rec = (record_ptr)malloc(sizeof(record_t));
    g_rec = (record_ptr)malloc(sizeof(record_t));
    if (g_rec == NULL || g_next_rec == NULL)
        vb_die("out of memory");
    g_rec->link = g_next_rec;
    g_rec->tag = K_ONE;
    g_rec->u.v1.kind_field = K_THREE;
    g_rec->u.v1.int_field = 40;
    strcpy(g_rec->u.v1.text_field, "DHRYSTONE PROGRAM, SOME STRING");
    strcpy(str1, "DHRYSTONE PROGRAM, 1'ST STRING");
    g_vec2[8][7] = 10;

    if (fixed_loops > 0) {
        start = vb_now();
        for (dh_run = 1; dh_run <= fixed_loops; ++dh_run)
            DH_LOOP_BODY();
    } else {
        vb_arm(duration);
        for (dh_run = 1; !vb_done; ++dh_run)
            DH_LOOP_BODY();
    }
    elapsed = vb_now() - start;

    /* Sanity check of the final state (values fixed by the benchmark's definition). */
    if (dh_run > 1 && (g_int != 5 || g_ch1 != 'A' || g_ch2 != 'B' || g_vec1[8] != 7 || i1 != 5 || i3 != 7))
        vb_die("self-check failed: the compiled program does not compute Dhrystone");

    vb_report_count(dh_run - 1, 1, "lps", elapsed);
    return 0;
}

void dh_proc1(REG record_ptr rec)
{
    REG record_ptr next = rec->link;

    *rec->link = *g_rec;
    rec->u.v1.int_field = 5;
    next->u.v1.int_field = rec->u.v1.int_field;
    next->link = rec->link;
    dh_proc3(&next->link);
    if (next->tag == K_ONE) {
        next->u.v1.int_field = 6;
        dh_proc6(rec->u.v1.kind_field, &next->u.v1.kind_field);
        next->link = g_rec->link;
        dh_proc7(next->u.v1.int_field, 10, &next->u.v1.int_field);
    } else {
        *rec = *rec->link;
    }
}

void dh_proc2(one_to_fifty *io)
{
    one_to_fifty local;
    kind_t kind = K_TWO;

    local = *io + 10;
    do {
        if (g_ch1 == 'A') {
            local -= 1;
            *io = local - g_int;
            kind = K_ONE;
        }
    } while (kind != K_ONE);
}

void dh_proc3(record_ptr *out)
{
    if (g_rec != NULL)
        *out = g_rec->link;
    dh_proc7(10, g_int, &g_rec->u.v1.int_field);
}

void dh_proc4(void)
{
    flag_t local = g_ch1 == 'A';
    g_flag = local | g_flag;
    g_ch2 = 'B';
}

void dh_proc5(void)
{
    g_ch1 = 'A';
    g_flag = 0;
}
