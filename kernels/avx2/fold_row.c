/*
 * One row's fold and apply (fold_apply_row), AVX2+FMA: each vector of 8 channels is
 * folded by the formula (formula4.h, as fold_pipelined) into registers and applied
 * at once (APPLY_VALUE and act, as apply_rows), so no coefficient is stored and
 * loaded back, and the apply's work runs beside the divider's on the next channels.
 * The last 1..7 channels are the last vector's, channels c - 8 .. c - 1, computed
 * before any store (y may be x) and stored last, over values equal to its own; a row
 * shorter than a vector is the composition of the two kernels (fold_row.h). 1x24x1x1
 * bnorm_inference on the Zen 4 guest: 38.1 -> 29.0 ns (bench/README.md).
 */
#include <stdbool.h>

#include "kernels.h"
#include "avx2_util.h"
#include "fold_row.h"
#include "formula4.h"

/* The row's 8 values from channel i on. */
ALWAYS_INLINE __m256 row_value(size_t i, const float *x, const float *gamma,
                               const float *beta, const float *mean, const float *var,
                               __m256d eps, __m256 lo, __m256 hi, bool clamp)
{
    __m128 s0, h0, s1, h1;
    formula4_ps(i, gamma, beta, mean, var, eps, &s0, &h0);
    formula4_ps(i + 4, gamma, beta, mean, var, eps, &s1, &h1);
    __m256 a = _mm256_set_m128(s1, s0), b = _mm256_set_m128(h1, h0);
    return act(APPLY_VALUE(_mm256_loadu_ps(x + i), a, b, a, false), lo, hi, clamp);
}

ALWAYS_INLINE void row(size_t c, const float *x, float *y, const float *gamma,
                       const float *beta, const float *mean, const float *var, float eps,
                       float lo, float hi, bool clamp)
{
    __m256d veps = _mm256_set1_pd(eps);
    __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    size_t last = c - 8;
    __m256 v_last = row_value(last, x, gamma, beta, mean, var, veps, vlo, vhi, clamp);
    for (size_t i = 0; i < last; i += 8)
        _mm256_storeu_ps(y + i,
                         row_value(i, x, gamma, beta, mean, var, veps, vlo, vhi, clamp));
    _mm256_storeu_ps(y + last, v_last);
}

void bnorm_f32_fold_apply_row__avx2(size_t c, const float *x, float *y, const float *gamma,
                                    const float *beta, const float *mean, const float *var,
                                    float eps, float lo, float hi, unsigned flags)
{
    if (c < 8)
        bnorm_fold_apply_row_composed(bnorm_f32_fold_pipelined__avx2,
                                      bnorm_f32_apply_rows__avx2, c, x, y, gamma, beta,
                                      mean, var, eps, lo, hi, flags);
    else if (flags & BNORM_KF_CLAMP)
        row(c, x, y, gamma, beta, mean, var, eps, lo, hi, true);
    else
        row(c, x, y, gamma, beta, mean, var, eps, lo, hi, false);
}
