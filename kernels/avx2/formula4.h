/* The fold's formula (kernels.h) on four channels, AVX2: the fold's kernels (fold.c)
 * and the fold beside one row's apply (fold_row.c). */
#ifndef BNORM_AVX2_FORMULA4_H
#define BNORM_AVX2_FORMULA4_H

#include "avx2_util.h"

/* 4 floats at p + i widened to double, or the constant where p is NULL */
ALWAYS_INLINE __m256d load4(const float *p, size_t i, double constant)
{
    return p ? _mm256_cvtps_pd(_mm_loadu_ps(p + i)) : _mm256_set1_pd(constant);
}

/* mean * s, or 0 where mean is NULL (not 0 * s: NaN for an infinite s), as the
 * formula. */
ALWAYS_INLINE __m256d mean_times(const float *mean, size_t i, __m256d s)
{
    return mean ? _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(mean + i)), s)
                : _mm256_setzero_pd();
}

/* The scale and shift of channels i..i+3 by the formula: its bits, as floats. */
ALWAYS_INLINE void formula4_ps(size_t i, const float *gamma, const float *beta,
                               const float *mean, const float *var, __m256d eps,
                               __m128 *scale, __m128 *shift)
{
    __m256d v = _mm256_add_pd(_mm256_cvtps_pd(_mm_loadu_ps(var + i)), eps);
    __m256d s = _mm256_div_pd(load4(gamma, i, 1.0), _mm256_sqrt_pd(v));
    *scale = _mm256_cvtpd_ps(s);
    __m256d ms = mean_times(mean, i, s);
    *shift = _mm256_cvtpd_ps(_mm256_sub_pd(load4(beta, i, 0.0), ms));
}

#endif /* BNORM_AVX2_FORMULA4_H */
