/*
 * Affine apply, NEON: y = act(fma(x, a, b)), one rounding (vfmaq_f32; fmaf in the
 * tail, which is one fused instruction on aarch64 and on x86 built with -mfma).
 *
 * Each span (one plane or one row) runs 4 vectors (16 floats) per iteration, then
 * single vectors, then the last 1..3 floats one at a time. NEON has no masked
 * stores, so the scalar tail is what keeps every access inside the span. There is no
 * non-temporal store intrinsic: BNORM_KF_STREAM is ignored.
 */
#include <math.h>
#include <stdbool.h>

#include "kernels.h"
#include "neon_compat.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE float32x4_t act(float32x4_t v, float32x4_t lo, float32x4_t hi,
                              bool clamp)
{
    if (clamp) {
        /* fmax/fmin return NaN when either operand is NaN. */
        v = vmaxq_f32(v, lo);
        v = vminq_f32(v, hi);
    }
    return v;
}

ALWAYS_INLINE float act1(float v, float lo, float hi, bool clamp)
{
    if (clamp) {
        v = v < lo ? lo : v; /* false for NaN: NaN passes through */
        v = v > hi ? hi : v;
    }
    return v;
}

/* rows: a and b are loaded per element; planes: a[0] and b[0] are broadcast. */
ALWAYS_INLINE void span(size_t len, const float *x, float *y, const float *a,
                        const float *b, float lo, float hi, bool rows, bool clamp)
{
    float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
    float32x4_t va = vdupq_n_f32(rows ? 0.0f : a[0]);
    float32x4_t vb = vdupq_n_f32(rows ? 0.0f : b[0]);
#define A(i) (rows ? vld1q_f32(a + (i)) : va)
#define B(i) (rows ? vld1q_f32(b + (i)) : vb)
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        float32x4_t v0 = vfmaq_f32(B(i), vld1q_f32(x + i), A(i));
        float32x4_t v1 = vfmaq_f32(B(i + 4), vld1q_f32(x + i + 4), A(i + 4));
        float32x4_t v2 = vfmaq_f32(B(i + 8), vld1q_f32(x + i + 8), A(i + 8));
        float32x4_t v3 = vfmaq_f32(B(i + 12), vld1q_f32(x + i + 12), A(i + 12));
        vst1q_f32(y + i, act(v0, vlo, vhi, clamp));
        vst1q_f32(y + i + 4, act(v1, vlo, vhi, clamp));
        vst1q_f32(y + i + 8, act(v2, vlo, vhi, clamp));
        vst1q_f32(y + i + 12, act(v3, vlo, vhi, clamp));
    }
    for (; i + 4 <= len; i += 4)
        vst1q_f32(y + i, act(vfmaq_f32(B(i), vld1q_f32(x + i), A(i)), vlo, vhi, clamp));
#undef A
#undef B
    for (; i < len; i++)
        y[i] = act1(fmaf(x[i], a[rows ? i : 0], b[rows ? i : 0]), lo, hi, clamp);
}

ALWAYS_INLINE void apply(size_t count, size_t len, const float *x, size_t x_stride,
                         float *y, size_t y_stride, const float *a, const float *b,
                         float lo, float hi, bool rows, bool clamp)
{
    for (size_t p = 0; p < count; p++)
        span(len, x + p * x_stride, y + p * y_stride, rows ? a : a + p,
             rows ? b : b + p, lo, hi, rows, clamp);
}

void bnorm_f32_apply_planes__neon(size_t count, size_t len, const float *x, size_t xs,
                                  float *y, size_t ys, const float *a, const float *b,
                                  float lo, float hi, unsigned flags)
{
    if (flags & BNORM_KF_CLAMP)
        apply(count, len, x, xs, y, ys, a, b, lo, hi, false, true);
    else
        apply(count, len, x, xs, y, ys, a, b, lo, hi, false, false);
}

void bnorm_f32_apply_rows__neon(size_t count, size_t len, const float *x, size_t xs,
                                float *y, size_t ys, const float *a, const float *b,
                                float lo, float hi, unsigned flags)
{
    if (flags & BNORM_KF_CLAMP)
        apply(count, len, x, xs, y, ys, a, b, lo, hi, true, true);
    else
        apply(count, len, x, xs, y, ys, a, b, lo, hi, true, false);
}
