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

#endif
