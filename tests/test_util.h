/* Small helpers the Criterion suites share: exact float comparison, the sentinel
 * bytes written into outputs before a call that must not write them, names, the
 * kernel tables this CPU can run. */
#ifndef BNORM_TEST_UTIL_H
#define BNORM_TEST_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bnorm.h"
#include "conformance.h"

/* Output bytes before a call: 0x5a5a5a5a is a positive finite float (1.5e16), so a
 * parameter pointed into an output buffer is still a valid value and only the
 * aliasing check can reject it. */
#define SENTINEL_BYTE 0x5a

static inline uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* A float whose bytes are all SENTINEL_BYTE. */
static inline float sentinel(void)
{
    float f;
    memset(&f, SENTINEL_BYTE, sizeof f);
    return f;
}

/* bnorm_conf_same_bits: NaN matches any NaN, everything else bit for bit. */
static inline bool same_bits(float got, float want)
{
    return bnorm_conf_same_bits(got, want);
}

static inline const char *layout_name(bnorm_layout l)
{
    return l == BNORM_NCHW ? "nchw" : l == BNORM_NHWC ? "nhwc" : "bad-layout";
}

/* ---- kernel tables ------------------------------------------------------------- */

#define MAX_TABLES 16

typedef struct tables {
    bnorm_conf_table t[MAX_TABLES];
    size_t n;
} tables;

/* Every table this CPU can run; the scalar table is always among them. */
static inline tables runnable_tables(void)
{
    bnorm_conf_table all[MAX_TABLES];
    size_t total = bnorm_conf_tables(all, MAX_TABLES);
    cr_assert(total >= 1 && total <= MAX_TABLES, "bnorm_conf_tables returned %zu", total);
    tables r = {.n = 0};
    bool have_scalar = false;
    for (size_t i = 0; i < total; i++) {
        cr_assert_not_null(all[i].k, "table %zu (%s) has no kernels", i, all[i].label);
        if (!all[i].runnable)
            continue;
        if (all[i].k->isa == BNORM_ISA_SCALAR && !all[i].emulated)
            have_scalar = true;
        r.t[r.n++] = all[i];
    }
    cr_assert(have_scalar, "the scalar table is missing from the runnable tables");
    return r;
}

/*
 * Values of a dense tensor whose sums show their order (random inputs would hardly
 * show one: the sums are in double, the outputs float). Per channel, every fifth row
 * holds a large value, +L_j in the first half of those rows and -L_j in the second,
 * the other rows a tiny one (the first row 0, so the shift is 0). The sums (mean,
 * dbeta) are then a sum of tiny values through partial sums of ~1e7, whose rounding
 * depends on the order and grouping of the additions and reaches the float results.
 * (Every fifth: the periodic path's rows of 8 or 24 pixels do not put all the large
 * values in a few columns, whose sums would be exact.)
 */
static inline void fill_cancelling(const bnorm_shape *sh, float *v, bnorm_rng *r)
{
    size_t rows = sh->n * sh->spatial, c = sh->c, half = (rows + 2) / 5 / 2;
    for (size_t ch = 0; ch < c; ch++) {
        for (size_t row = 0; row < rows; row++) {
            double val = row == 0 ? 0.0 : 1e-4 * bnorm_rng_normal(r);
            size_t j = row / 5;
            if (row % 5 == 2)
                val = j < 2 * half ? 1e6 * (double)(j % half + 1) / (double)half : 0.0;
            if (row % 5 == 2 && j >= half)
                val = -val;
            size_t n = row / sh->spatial, s = row % sh->spatial;
            size_t o = sh->layout == BNORM_NHWC ? (n * sh->spatial + s) * c + ch
                                                : (n * c + ch) * sh->spatial + s;
            v[o] = (float)val;
        }
    }
}

#endif
