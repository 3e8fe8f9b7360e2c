/*
 * Moments about a shift, NEON: s1 += sum d, s2 += sum d^2 with d = x - k formed in
 * double (each half of x widened with vcvt_f64_f32, then k subtracted: exact unless
 * the exponents are ~29 apart), as in every ISA (kernels.h). Planes add d*d with one
 * rounding (vfmaq_f64); rows with two (vmulq_f64, vaddq_f64), as every ISA's rows.
 *
 * planes: 8 floats per iteration into 4 independent (s1, s2) pairs of float64x2
 *   accumulators, then one vector of 4 floats into the first two pairs; the pairs are
 *   reduced in a fixed order, ((acc0 + acc1) + (acc2 + acc3)), then lane 0 + lane 1;
 *   the last 1..3 floats are then added one at a time in double (NEON has no masked
 *   loads: the scalar tail keeps every read inside the span), and the plane's sums
 *   are added to s1[p], s2[p].
 * rows: columns in blocks of 8 (8 accumulators: s1 and s2 of the block, loaded from
 *   memory, updated row by row, in row order, for a tile of up to 8 rows, and stored
 *   back), then one block of 4, then the last 1..3 columns in scalar double. Every
 *   s1[i], s2[i] receives the rows in order, exactly as the contract's sequential
 *   definition.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "kernels.h"
#include "neon_util.h"
#include "x87_double.h"

enum { ROW_TILE = 8 };

/* d*d added to s: with one rounding (planes) or two (rows: every ISA's rows do). */
#define SQ_ADD(s, d, fused) ((fused) ? vfmaq_f64(s, d, d) : vaddq_f64(s, vmulq_f64(d, d)))

/* d = x - k for the low and high halves of x (float32x4_t), k in double (klo, khi);
 * s1 += d, s2 += d*d into two pairs. */
#define ACC2(s1lo, s2lo, s1hi, s2hi, x4, klo, khi, fused)                           \
    do {                                                                            \
        float32x4_t x_ = (x4);                                                      \
        float64x2_t lo_ = vsubq_f64(vcvt_f64_f32(vget_low_f32(x_)), klo);           \
        float64x2_t hi_ = vsubq_f64(vcvt_f64_f32(vget_high_f32(x_)), khi);          \
        s1lo = vaddq_f64(s1lo, lo_);                                                \
        s2lo = SQ_ADD(s2lo, lo_, fused);                                            \
        s1hi = vaddq_f64(s1hi, hi_);                                                \
        s2hi = SQ_ADD(s2hi, hi_, fused);                                            \
    } while (0)

void bnorm_f32_moments_planes__neon(size_t count, size_t len, const float *x,
                                    size_t x_stride, const float *k, double *s1,
                                    double *s2)
{
    for (size_t p = 0; p < count; p++) {
        const float *xp = x + p * x_stride;
        float64x2_t vk = vdupq_n_f64((double)k[p]);
        float64x2_t a0 = vdupq_n_f64(0.0), a1 = a0, a2 = a0, a3 = a0;
        float64x2_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            ACC2(a0, b0, a1, b1, vld1q_f32(xp + i), vk, vk, true);
            ACC2(a2, b2, a3, b3, vld1q_f32(xp + i + 4), vk, vk, true);
        }
        if (i + 4 <= len) {
            ACC2(a0, b0, a1, b1, vld1q_f32(xp + i), vk, vk, true);
            i += 4;
        }
        double t1 = hsum(a0, a1, a2, a3), t2 = hsum(b0, b1, b2, b3);
        for (; i < len; i++) {
            double d = (double)xp[i] - (double)k[p];
            t1 += d;
            t2 += d * d;
        }
        s1[p] += t1;
        s2[p] += t2;
    }
}

/* Columns [0, 4 * nv) of nr rows, nv = 1 or 2. */
ALWAYS_INLINE void cols(size_t nr, const float *x, size_t xs, const float *k,
                        double *s1, double *s2, int nv)
{
    float32x4_t k0 = vld1q_f32(k), k1 = nv == 2 ? vld1q_f32(k + 4) : k0;
    float64x2_t k0lo = vcvt_f64_f32(vget_low_f32(k0));
    float64x2_t k0hi = vcvt_f64_f32(vget_high_f32(k0));
    float64x2_t k1lo = vcvt_f64_f32(vget_low_f32(k1));
    float64x2_t k1hi = vcvt_f64_f32(vget_high_f32(k1));
    float64x2_t a0 = vld1q_f64(s1), a1 = vld1q_f64(s1 + 2);
    float64x2_t b0 = vld1q_f64(s2), b1 = vld1q_f64(s2 + 2);
    float64x2_t a2 = nv == 2 ? vld1q_f64(s1 + 4) : a0;
    float64x2_t a3 = nv == 2 ? vld1q_f64(s1 + 6) : a0;
    float64x2_t b2 = nv == 2 ? vld1q_f64(s2 + 4) : b0;
    float64x2_t b3 = nv == 2 ? vld1q_f64(s2 + 6) : b0;
    for (size_t r = 0; r < nr; r++) {
        const float *xr = x + r * xs;
        ACC2(a0, b0, a1, b1, vld1q_f32(xr), k0lo, k0hi, false);
        if (nv == 2)
            ACC2(a2, b2, a3, b3, vld1q_f32(xr + 4), k1lo, k1hi, false);
    }
    vst1q_f64(s1, a0);
    vst1q_f64(s1 + 2, a1);
    vst1q_f64(s2, b0);
    vst1q_f64(s2 + 2, b1);
    if (nv == 2) {
        vst1q_f64(s1 + 4, a2);
        vst1q_f64(s1 + 6, a3);
        vst1q_f64(s2 + 4, b2);
        vst1q_f64(s2 + 6, b3);
    }
}

void bnorm_f32_moments_rows__neon(size_t count, size_t len, const float *x,
                                  size_t x_stride, const float *k, double *s1,
                                  double *s2)
{
    for (size_t r = 0; r < count; r += ROW_TILE) {
        const float *xt = x + r * x_stride;
        size_t nr = count - r < ROW_TILE ? count - r : ROW_TILE;
        size_t i = 0;
        for (; i + 8 <= len; i += 8)
            cols(nr, xt + i, x_stride, k + i, s1 + i, s2 + i, 2);
        if (i + 4 <= len) {
            cols(nr, xt + i, x_stride, k + i, s1 + i, s2 + i, 1);
            i += 4;
        }
        bnorm_x87_state x87 = bnorm_x87_double_begin(); /* SIMDe on 32-bit x86 */
        for (; i < len; i++) {
            double t1 = s1[i], t2 = s2[i];
            for (size_t j = 0; j < nr; j++) {
                double d = (double)xt[j * x_stride + i] - (double)k[i];
                t1 += d;
                t2 += d * d;
            }
            s1[i] = t1;
            s2[i] = t2;
        }
        bnorm_x87_double_end(x87);
    }
}

/* No fused loop for NEON yet (nothing to measure it on): the two passes one after
 * the other, which kernels.h allows. */
void bnorm_f32_moments_apply_planes__neon(size_t count, size_t len, const float *xm,
                                          size_t xm_stride, const float *k, double *s1,
                                          double *s2, const float *xa, size_t xa_stride,
                                          float *ya, size_t ya_stride, const float *a,
                                          const float *b, const float *m)
{
    bnorm_f32_moments_planes__neon(count, len, xm, xm_stride, k, s1, s2);
    bnorm_f32_apply_planes__neon(count, len, xa, xa_stride, ya, ya_stride, a, b, m,
                                 -INFINITY, INFINITY, BNORM_KF_CENTER);
}
