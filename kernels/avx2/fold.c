/*
 * The fold, AVX2+FMA: the formula's bits (bnorm_f32_fold_kernel) in two thirds of
 * the formula's time on the Xeon VM of earlier sessions. (On Zen 4, whose divider
 * takes four lanes at once, both take 0.94-0.97 ns a channel.) Training's inv_std
 * is its formula (fold_formula.h), which the compiler vectorizes at this width.
 *
 * The formula costs a double square root and a division per channel, and the
 * divider that runs both is the limit (4-lane vsqrtpd and vdivpd take as long per
 * channel as 2-lane ones). So of every 12 channels, 8 go through the divider by the
 * formula, and meanwhile 4 go through the FMA units: an estimate, and a proof that
 * rounding the estimate to float gives the formula's float. (The fold beside an
 * apply, fold_pipelined, leaves those units to the apply: every channel by the
 * formula.)
 *  - r ~ 1/sqrt(v), v = var + eps in double: vrsqrtps (of var + eps in float), a
 *    Newton step in float, one in double. The double step's residual e = 1 - v r1^2
 *    bounds its result: it squares r1's relative error (about e / 2) into about
 *    3/8 e^2, so |e| <= 2^-19 leaves r within 2^-39 of 1/sqrt(v), whatever the
 *    estimate was, as long as it was positive (vrsqrtps's is, and gives |e| near
 *    2^-21). A larger or NaN residual (var + eps zero, subnormal, infinite or NaN in
 *    float, or a poor estimate, as SIMDe's on NEON) sends the channel to the formula.
 *  - s' = gamma * r is then within 2^-39 of the formula's double s, so s's float lies
 *    between the floats of s' - |s'| 2^-36 and s' + |s'| 2^-36 (rounding to float is
 *    monotonic): where those two are the same float, bit for bit, it is that float.
 *    (Bits, not values: -0 equals +0, and under DAZ two subnormals equal zero.)
 *  - the same for the shift h' = beta - mean * s', with |mean * s'| 2^-36 (the
 *    product's error) + |h'| 2^-50 (the double roundings of the subtraction, which
 *    are the larger where beta dominates and the product is small).
 * A channel whose interval holds a float rounding boundary (about 1 in 1000 of the
 * estimated ones, on random statistics) goes to the formula, and so do NaN and
 * infinite ones (their intervals are NaN).
 */
#include "kernels.h"
#include "avx2_util.h"
#include "fold_formula.h"
#include "formula4.h"

ALWAYS_INLINE __m256d abs_pd(__m256d v)
{
    return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v);
}

/* Channels i..i+3 by the formula. */
ALWAYS_INLINE void formula4(size_t i, const float *gamma, const float *beta,
                            const float *mean, const float *var, __m256d eps,
                            float *scale, float *shift)
{
    __m128 s, h;
    formula4_ps(i, gamma, beta, mean, var, eps, &s, &h);
    _mm_storeu_ps(scale + i, s);
    _mm_storeu_ps(shift + i, h);
}

/* Channels i..i+3 by the estimate; returns a bit for each channel it could not vouch
 * for (its outputs are then to be overwritten by the formula's). */
ALWAYS_INLINE unsigned estimate4(size_t i, const float *gamma, const float *beta,
                                 const float *mean, const float *var, __m256d eps,
                                 __m128 eps_f, float *scale, float *shift)
{
    __m128 var_f = _mm_loadu_ps(var + i);
    __m256d v = _mm256_add_pd(_mm256_cvtps_pd(var_f), eps);
    __m128 v_f = _mm_add_ps(var_f, eps_f); /* for the estimate only */
    __m128 r0 = _mm_rsqrt_ps(v_f);
    __m128 n = _mm_fnmadd_ps(_mm_mul_ps(v_f, _mm_set1_ps(0.5f)), _mm_mul_ps(r0, r0),
                             _mm_set1_ps(1.5f));
    __m256d r1 = _mm256_cvtps_pd(_mm_mul_ps(r0, n));
    __m256d e = _mm256_fnmadd_pd(_mm256_mul_pd(v, r1), r1, _mm256_set1_pd(1.0));
    __m256d r = _mm256_fmadd_pd(_mm256_mul_pd(e, r1), _mm256_set1_pd(0.5), r1);
    __m256d converged = _mm256_cmp_pd(abs_pd(e), _mm256_set1_pd(0x1p-19), _CMP_LE_OQ);

    __m256d s = _mm256_mul_pd(load4(gamma, i, 1.0), r);
    __m256d es = _mm256_mul_pd(abs_pd(s), _mm256_set1_pd(0x1p-36));
    __m128 s_lo = _mm256_cvtpd_ps(_mm256_sub_pd(s, es));
    __m128 s_hi = _mm256_cvtpd_ps(_mm256_add_pd(s, es));

    __m256d ms = mean_times(mean, i, s);
    __m256d h = _mm256_sub_pd(load4(beta, i, 0.0), ms);
    __m256d eh = _mm256_fmadd_pd(abs_pd(ms), _mm256_set1_pd(0x1p-36),
                                 _mm256_mul_pd(abs_pd(h), _mm256_set1_pd(0x1p-50)));
    __m128 h_lo = _mm256_cvtpd_ps(_mm256_sub_pd(h, eh));
    __m128 h_hi = _mm256_cvtpd_ps(_mm256_add_pd(h, eh));

    _mm_storeu_ps(scale + i, s_lo);
    _mm_storeu_ps(shift + i, h_lo);
    __m128i same = _mm_and_si128(
        _mm_cmpeq_epi32(_mm_castps_si128(s_lo), _mm_castps_si128(s_hi)),
        _mm_cmpeq_epi32(_mm_castps_si128(h_lo), _mm_castps_si128(h_hi)));
    __m128 numbers = _mm_cmp_ps(s_lo, h_lo, _CMP_ORD_Q);
    unsigned vouched = (unsigned)_mm_movemask_ps(
        _mm_and_ps(_mm_castsi128_ps(same), numbers));
    return (vouched & (unsigned)_mm256_movemask_pd(converged)) ^ 15u;
}

/* The formula over channels [i, i + n). */
static void formula_at(size_t i, size_t n, const float *gamma, const float *beta,
                       const float *mean, const float *var, float eps, float *scale,
                       float *shift)
{
    bnorm_fold_formula(n, gamma ? gamma + i : NULL, beta ? beta + i : NULL,
                       mean ? mean + i : NULL, var + i, eps, scale + i, shift + i);
}

/* Channels [i, c) by the formula, 4 at a time. */
ALWAYS_INLINE void formula_from(size_t i, size_t c, const float *gamma, const float *beta,
                                const float *mean, const float *var, float eps,
                                float *scale, float *shift)
{
    const __m256d eps_d = _mm256_set1_pd(eps);
    for (; c - i >= 4; i += 4)
        formula4(i, gamma, beta, mean, var, eps_d, scale, shift);
    if (i < c)
        formula_at(i, c - i, gamma, beta, mean, var, eps, scale, shift);
}

void bnorm_f32_fold__avx2(size_t c, const float *gamma, const float *beta,
                          const float *mean, const float *var, float eps, float *scale,
                          float *shift)
{
    const __m256d eps_d = _mm256_set1_pd(eps);
    const __m128 eps_f = _mm_set1_ps(eps);
    size_t i = 0;
    for (; c - i >= 12; i += 12) {
        formula4(i, gamma, beta, mean, var, eps_d, scale, shift);
        formula4(i + 4, gamma, beta, mean, var, eps_d, scale, shift);
        unsigned left =
            estimate4(i + 8, gamma, beta, mean, var, eps_d, eps_f, scale, shift);
        for (; left; left &= left - 1) {
            size_t j = i + 8 + (size_t)__builtin_ctz(left);
            formula_at(j, 1, gamma, beta, mean, var, eps, scale, shift);
        }
    }
    formula_from(i, c, gamma, beta, mean, var, eps, scale, shift);
}

/* Every channel by the formula: bnorm_inference 1x2048x7x7, one thread, in blocks of
 * 32 channels, 8.9 us with the estimate, 8.5 without. */
void bnorm_f32_fold_pipelined__avx2(size_t c, const float *gamma, const float *beta,
                                    const float *mean, const float *var, float eps,
                                    float *scale, float *shift)
{
    formula_from(0, c, gamma, beta, mean, var, eps, scale, shift);
}

void bnorm_f64_inv_std__avx2(size_t c, const double *var, float eps, double *inv)
{
    bnorm_inv_std_formula(c, var, eps, inv);
}
