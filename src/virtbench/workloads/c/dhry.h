/*
 * dhry.h - declarations for virtbench's Dhrystone 2.1 workload.
 *
 * Written for virtbench from the published definition of the Dhrystone 2.1
 * synthetic benchmark (R. P. Weicker, 1988): the same record type, globals and
 * procedure bodies, so that a loop does the same work as in the classic
 * two-file build.  The program is split into two translation units
 * (dhry_1.c: main and procedures 1-5; dhry_2.c: procedures 6-8 and functions
 * 1-3) and they must be compiled separately (no link-time optimisation), so
 * the compiler cannot inline across the split, as in the classic build.
 *
 * REG is "register" for the "register variables" build (-DREG=register).
 */
#ifndef DHRY_H
#define DHRY_H

#ifndef REG
#define REG
#endif

typedef enum { K_ONE, K_TWO, K_THREE, K_FOUR, K_FIVE } kind_t;

typedef int one_to_thirty;
typedef int one_to_fifty;
typedef char letter_t;
typedef int flag_t;
typedef char text30_t[31];
typedef int vec1_t[50];
typedef int vec2_t[50][50];

typedef struct record {
    struct record *link;
    kind_t tag;
    union {
        struct {
            kind_t kind_field;
            int int_field;
            text30_t text_field;
        } v1;
        struct {
            kind_t kind_field2;
            text30_t text_field2;
        } v2;
        struct {
            char ch_1;
            char ch_2;
        } v3;
    } u;
} record_t;

typedef record_t *record_ptr;

/* Globals shared by both translation units. */
extern record_ptr g_rec;
extern record_ptr g_next_rec;
extern int g_int;
extern flag_t g_flag;
extern char g_ch1;
extern char g_ch2;
extern vec1_t g_vec1;
extern vec2_t g_vec2;

/* Defined in dhry_2.c. */
void dh_proc6(kind_t kind_in, kind_t *kind_out);
void dh_proc7(one_to_fifty a, one_to_fifty b, one_to_fifty *out);
void dh_proc8(vec1_t v1, vec2_t v2, int a, int b);
kind_t dh_func1(letter_t c1, letter_t c2);
flag_t dh_func2(text30_t s1, text30_t s2);
flag_t dh_func3(kind_t kind_in);

#endif /* DHRY_H */
