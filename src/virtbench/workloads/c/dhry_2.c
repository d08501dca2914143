/*
 * dhry_2.c - second translation unit of virtbench's Dhrystone 2.1 workload:
 * procedures 6-8 and functions 1-3.  See dhry.h.
 */
#include <string.h>

#include "dhry.h"

void dh_proc6(kind_t kind_in, kind_t *kind_out)
{
    *kind_out = kind_in;
    if (!dh_func3(kind_in))
        *kind_out = K_FOUR;
    switch (kind_in) {
    case K_ONE:
        *kind_out = K_ONE;
        break;
    case K_TWO:
        *kind_out = (g_int > 100) ? K_ONE : K_FOUR;
        break;
    case K_THREE:
        *kind_out = K_TWO;
        break;
    case K_FOUR:
        break;
    case K_FIVE:
        *kind_out = K_THREE;
        break;
    }
}

void dh_proc7(one_to_fifty a, one_to_fifty b, one_to_fifty *out)
{
    one_to_fifty local = a + 2;
    *out = b + local;
}

void dh_proc8(vec1_t v1, vec2_t v2, int a, int b)
{
    REG one_to_fifty idx;
    REG one_to_fifty base = a + 5;

    v1[base] = b;
    v1[base + 1] = v1[base];
    v1[base + 30] = base;
    for (idx = base; idx <= base + 1; ++idx)
        v2[base][idx] = base;
    v2[base][base - 1] += 1;
    v2[base + 20][base] = v1[base];
    g_int = 5;
}

kind_t dh_func1(letter_t c1, letter_t c2)
{
    letter_t first = c1;
    letter_t second = first;

    if (second != c2)
        return K_ONE;
    g_ch1 = first;
    return K_TWO;
}

flag_t dh_func2(text30_t s1, text30_t s2)
{
    REG one_to_thirty pos = 2;
    letter_t ch = 'A';

    while (pos <= 2) {
        if (dh_func1(s1[pos], s2[pos + 1]) == K_ONE) {
            ch = 'A';
            pos += 1;
        }
    }
    if (ch >= 'W' && ch < 'Z')
        pos = 7;
    if (ch == 'R')
        return 1;
    if (strcmp(s1, s2) > 0) {
        pos += 7;
        g_int = pos;
        return 1;
    }
    return 0;
}

flag_t dh_func3(kind_t kind_in)
{
    kind_t local = kind_in;
    return local == K_THREE;
}
