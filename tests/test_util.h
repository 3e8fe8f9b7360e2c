/* Small helpers the Criterion suites share: exact float comparison, the sentinel
 * bytes written into outputs before a call that must not write them, names. */
#ifndef BNORM_TEST_UTIL_H
#define BNORM_TEST_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bnorm.h"

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

/* Exactly the same value: NaN matches any NaN, everything else bit for bit (so +0
 * and -0 differ). */
static inline bool same_bits(float got, float want)
{
    return isnan(want) ? isnan(got) : bits(got) == bits(want);
}

static inline const char *layout_name(bnorm_layout l)
{
    return l == BNORM_NCHW ? "nchw" : l == BNORM_NHWC ? "nhwc" : "bad-layout";
}

#endif
