/*
 * Backward dot products, NEON: sdy += sum dy, sdyx += sum dy * (x - m), with x - m
 * rounded to float, then dy and x - m widened to double (vcvt_f64_f32 of each half;
 * their product is exact in double, so vfmaq_f64 only rounds the sum).
 *
 * planes: 8 floats of each input per iteration into 4 independent (sdy, sdyx) pairs
 *   of float64x2 accumulators, then one vector of 4 floats into the first two pairs;
 *   the pairs are reduced in a fixed order, ((acc0 + acc1) + (acc2 + acc3)), then
 *   lane 0 + lane 1; the last 1..3 floats are then added one at a time in double
 *   (NEON has no masked loads: the scalar tail keeps every read inside the span), and
 *   the plane's sums are added to sdy[p], sdyx[p].
 * rows: columns in blocks of 8 (8 accumulators: sdy and sdyx of the block, loaded
 *   from memory, updated row by row, in row order, for a tile of up to 8 rows, and
 *   stored back), then one block of 4, then the last 1..3 columns in scalar double.
 *   Every sdy[i], sdyx[i] receives the rows in order, exactly as the contract's
 *   sequential definition.
 */
#include <stddef.h>

#include "kernels.h"
#include "neon_util.h"
#include "x87_double.h"

enum { ROW_TILE = 8 };

/* sdy += dy, sdyx += dy * t for the low and high halves of dy and t (float32x4_t)
 * into two pairs. */
#define ACC2(sdylo, sdyxlo, sdyhi, sdyxhi, dy4, t4)                                 \
    do {                                                                            \
        float32x4_t dy_ = (dy4), t_ = (t4);                                         \
        float64x2_t dlo_ = vcvt_f64_f32(vget_low_f32(dy_));                         \
        float64x2_t dhi_ = vcvt_f64_f32(vget_high_f32(dy_));                        \
        sdylo = vaddq_f64(sdylo, dlo_);                                             \
        sdyxlo = vfmaq_f64(sdyxlo, dlo_, vcvt_f64_f32(vget_low_f32(t_)));           \
        sdyhi = vaddq_f64(sdyhi, dhi_);                                             \
        sdyxhi = vfmaq_f64(sdyxhi, dhi_, vcvt_f64_f32(vget_high_f32(t_)));          \
    } while (0)

void bnorm_f32_dot_planes__neon(size_t count, size_t len, const float *x,
                                size_t x_stride, const float *dy, size_t dy_stride,
                                const float *m, double *sdy, double *sdyx)
{
    for (size_t p = 0; p < count; p++) {
        const float *xp = x + p * x_stride, *dp = dy + p * dy_stride;
        float32x4_t vm = vdupq_n_f32(m[p]);
        float64x2_t a0 = vdupq_n_f64(0.0), a1 = a0, a2 = a0, a3 = a0;
        float64x2_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
#define T(i) vsubq_f32(vld1q_f32(xp + (i)), vm)
#define D(i) vld1q_f32(dp + (i))
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            ACC2(a0, b0, a1, b1, D(i), T(i));
            ACC2(a2, b2, a3, b3, D(i + 4), T(i + 4));
        }
        if (i + 4 <= len) {
            ACC2(a0, b0, a1, b1, D(i), T(i));
            i += 4;
        }
#undef T
#undef D
        double t1 = hsum(a0, a1, a2, a3), t2 = hsum(b0, b1, b2, b3);
        for (; i < len; i++) {
            double d = (double)dp[i];
            t1 += d;
            t2 += d * (double)(xp[i] - m[p]);
        }
        sdy[p] += t1;
        sdyx[p] += t2;
    }
}

/* Columns [0, 4 * nv) of nr rows, nv = 1 or 2. */
ALWAYS_INLINE void cols(size_t nr, const float *x, size_t xs, const float *dy,
                        size_t ds, const float *m, double *sdy, double *sdyx, int nv)
{
    float32x4_t m0 = vld1q_f32(m), m1 = nv == 2 ? vld1q_f32(m + 4) : m0;
    float64x2_t a0 = vld1q_f64(sdy), a1 = vld1q_f64(sdy + 2);
    float64x2_t b0 = vld1q_f64(sdyx), b1 = vld1q_f64(sdyx + 2);
    float64x2_t a2 = nv == 2 ? vld1q_f64(sdy + 4) : a0;
    float64x2_t a3 = nv == 2 ? vld1q_f64(sdy + 6) : a0;
    float64x2_t b2 = nv == 2 ? vld1q_f64(sdyx + 4) : b0;
    float64x2_t b3 = nv == 2 ? vld1q_f64(sdyx + 6) : b0;
    for (size_t r = 0; r < nr; r++) {
        const float *xr = x + r * xs, *dr = dy + r * ds;
        ACC2(a0, b0, a1, b1, vld1q_f32(dr), vsubq_f32(vld1q_f32(xr), m0));
        if (nv == 2)
            ACC2(a2, b2, a3, b3, vld1q_f32(dr + 4), vsubq_f32(vld1q_f32(xr + 4), m1));
    }
    vst1q_f64(sdy, a0);
    vst1q_f64(sdy + 2, a1);
    vst1q_f64(sdyx, b0);
    vst1q_f64(sdyx + 2, b1);
    if (nv == 2) {
        vst1q_f64(sdy + 4, a2);
        vst1q_f64(sdy + 6, a3);
        vst1q_f64(sdyx + 4, b2);
        vst1q_f64(sdyx + 6, b3);
    }
}

void bnorm_f32_dot_rows__neon(size_t count, size_t len, const float *x,
                              size_t x_stride, const float *dy, size_t dy_stride,
                              const float *m, double *sdy, double *sdyx)
{
    for (size_t r = 0; r < count; r += ROW_TILE) {
        const float *xt = x + r * x_stride, *dt = dy + r * dy_stride;
        size_t nr = count - r < ROW_TILE ? count - r : ROW_TILE;
        size_t i = 0;
        for (; i + 8 <= len; i += 8)
            cols(nr, xt + i, x_stride, dt + i, dy_stride, m + i, sdy + i, sdyx + i, 2);
        if (i + 4 <= len) {
            cols(nr, xt + i, x_stride, dt + i, dy_stride, m + i, sdy + i, sdyx + i, 1);
            i += 4;
        }
        bnorm_x87_state x87 = bnorm_x87_double_begin(); /* SIMDe on 32-bit x86 */
        for (; i < len; i++) {
            double t1 = sdy[i], t2 = sdyx[i];
            for (size_t j = 0; j < nr; j++) {
                double d = (double)dt[j * dy_stride + i];
                t1 += d;
                t2 += d * (double)(float)(xt[j * x_stride + i] - m[i]);
            }
            sdy[i] = t1;
            sdyx[i] = t2;
        }
        bnorm_x87_double_end(x87);
    }
}

/* No fused loop for NEON yet (nothing to measure it on): the two passes one after
 * the other, which kernels.h allows. */
void bnorm_f32_dot_apply2_planes__neon(size_t count, size_t len, const float *x,
                                       size_t x_stride, const float *dy, size_t dy_stride,
                                       const float *m, double *sdy, double *sdyx,
                                       const float *xa, size_t xa_stride, const float *dya,
                                       size_t dya_stride, float *dxa, size_t dxa_stride,
                                       const float *a, const float *b, const float *ma,
                                       const float *k)
{
    bnorm_f32_dot_planes__neon(count, len, x, x_stride, dy, dy_stride, m, sdy, sdyx);
    bnorm_f32_apply2_planes__neon(count, len, xa, xa_stride, dya, dya_stride, dxa,
                                  dxa_stride, a, b, ma, k);
}
