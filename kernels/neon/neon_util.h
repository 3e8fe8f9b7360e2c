/* Helpers shared by the NEON kernels (the mirror of avx2_util.h). */
#ifndef BNORM_NEON_UTIL_H
#define BNORM_NEON_UTIL_H

#include "neon_compat.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The planes reductions' four accumulator pairs in one fixed order,
 * ((a0 + a1) + (a2 + a3)), then lane 0 + lane 1. */
ALWAYS_INLINE double hsum(float64x2_t a0, float64x2_t a1, float64x2_t a2,
                          float64x2_t a3)
{
    float64x2_t s = vaddq_f64(vaddq_f64(a0, a1), vaddq_f64(a2, a3));
    return vgetq_lane_f64(s, 0) + vgetq_lane_f64(s, 1);
}

#endif
