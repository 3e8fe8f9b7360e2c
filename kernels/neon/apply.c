/*
 * Affine apply, NEON: y = act(fma(x, a, b)), or with BNORM_KF_CENTER
 * y = act(fma(x - m, a, b)) (x - m rounded to float, then one fused rounding:
 * vfmaq_f32; fmaf in the tail, which is one fused instruction on aarch64 and on x86
 * built with -mfma).
 *
 * Each span (one plane or one row) runs 4 vectors (16 floats) per iteration, then
 * single vectors, then the last 1..3 floats one at a time. NEON has no masked
 * stores, so the scalar tail is what keeps every access inside the span. There is no
 * non-temporal store intrinsic: BNORM_KF_STREAM is ignored. Each (clamp, center)
 * combination is its own specialization, so no flag test reaches an inner loop.
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

/* rows: a, b and m are loaded per element; planes: a[0], b[0] and m[0] are broadcast.
 * m is only read with center. */
ALWAYS_INLINE void span(size_t len, const float *x, float *y, const float *a,
                        const float *b, const float *m, float lo, float hi, bool rows,
                        bool clamp, bool center)
{
    float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
    float32x4_t va = vdupq_n_f32(rows ? 0.0f : a[0]);
    float32x4_t vb = vdupq_n_f32(rows ? 0.0f : b[0]);
    float32x4_t vm = vdupq_n_f32(rows || !center ? 0.0f : m[0]);
#define A(i) (rows ? vld1q_f32(a + (i)) : va)
#define B(i) (rows ? vld1q_f32(b + (i)) : vb)
#define M(i) (rows ? vld1q_f32(m + (i)) : vm)
#define X(i) (center ? vsubq_f32(vld1q_f32(x + (i)), M(i)) : vld1q_f32(x + (i)))
#define V(i) vfmaq_f32(B(i), X(i), A(i))
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        float32x4_t v0 = V(i), v1 = V(i + 4), v2 = V(i + 8), v3 = V(i + 12);
        vst1q_f32(y + i, act(v0, vlo, vhi, clamp));
        vst1q_f32(y + i + 4, act(v1, vlo, vhi, clamp));
        vst1q_f32(y + i + 8, act(v2, vlo, vhi, clamp));
        vst1q_f32(y + i + 12, act(v3, vlo, vhi, clamp));
    }
    for (; i + 4 <= len; i += 4)
        vst1q_f32(y + i, act(V(i), vlo, vhi, clamp));
#undef A
#undef B
#undef M
#undef X
#undef V
    for (; i < len; i++) {
        size_t c = rows ? i : 0;
        float t = center ? x[i] - m[c] : x[i];
        y[i] = act1(fmaf(t, a[c], b[c]), lo, hi, clamp);
    }
}

ALWAYS_INLINE void apply(size_t count, size_t len, const float *x, size_t x_stride,
                         float *y, size_t y_stride, const float *a, const float *b,
                         const float *m, float lo, float hi, bool rows, bool clamp,
                         bool center)
{
    for (size_t p = 0; p < count; p++)
        span(len, x + p * x_stride, y + p * y_stride, rows ? a : a + p,
             rows ? b : b + p, center ? (rows ? m : m + p) : NULL, lo, hi, rows, clamp,
             center);
}

#define DISPATCH(rows)                                                              \
    switch (flags & (BNORM_KF_CLAMP | BNORM_KF_CENTER)) {                          \
    case 0:                                                                         \
        apply(count, len, x, xs, y, ys, a, b, m, lo, hi, rows, false, false);       \
        break;                                                                      \
    case BNORM_KF_CLAMP:                                                            \
        apply(count, len, x, xs, y, ys, a, b, m, lo, hi, rows, true, false);        \
        break;                                                                      \
    case BNORM_KF_CENTER:                                                           \
        apply(count, len, x, xs, y, ys, a, b, m, lo, hi, rows, false, true);        \
        break;                                                                      \
    default:                                                                        \
        apply(count, len, x, xs, y, ys, a, b, m, lo, hi, rows, true, true);         \
        break;                                                                      \
    }

void bnorm_f32_apply_planes__neon(size_t count, size_t len, const float *x, size_t xs,
                                  float *y, size_t ys, const float *a, const float *b,
                                  const float *m, float lo, float hi, unsigned flags)
{
    DISPATCH(false)
}

void bnorm_f32_apply_rows__neon(size_t count, size_t len, const float *x, size_t xs,
                                float *y, size_t ys, const float *a, const float *b,
                                const float *m, float lo, float hi, unsigned flags)
{
    DISPATCH(true)
}
