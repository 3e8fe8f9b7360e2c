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
 *
 * Dense planes (apply_planes_dense, planes that follow each other) are walked as one
 * array: each plane's whole vectors, then one vector that holds the plane's last 1..3
 * floats and the next plane's first ones, with the two planes' broadcasts blended
 * (vbslq; len >= 4, so no vector holds three planes); only the run's last 1..3 floats
 * are scalar. Shorter planes take the per-plane loop.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels.h"
#include "neon_util.h"

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

/* fma(x - m, a, b) with center (x - m rounded first), fma(x, a, b) without: every
 * vector of both walks. A macro, so that m (a load, from an m that is NULL without
 * center) is evaluated only with center. */
#define APPLY_VALUE(xv, va, vb, vm, center)                                         \
    vfmaq_f32((vb), (center) ? vsubq_f32((xv), (vm)) : (xv), (va))

/* The scalar tails clamp through the same instructions as the vectors, so that an
 * element's bits never depend on whether it fell in a tail (vmaxq_f32(-0, +0) is +0,
 * where a comparison would keep -0). */
ALWAYS_INLINE float act1(float v, float lo, float hi, bool clamp)
{
    if (clamp)
        v = vgetq_lane_f32(act(vdupq_n_f32(v), vdupq_n_f32(lo), vdupq_n_f32(hi), true), 0);
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
#define V(i) APPLY_VALUE(vld1q_f32(x + (i)), A(i), B(i), M(i), center)
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

/* First n lanes set: loads from the middle of this table. */
static const uint32_t keep_mask[8] = {~0u, ~0u, ~0u, ~0u, 0, 0, 0, 0};

ALWAYS_INLINE void dense(size_t count, size_t len, const float *x, float *y,
                         const float *a, const float *b, const float *m, float lo,
                         float hi, bool clamp, bool center)
{
    float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi), z = vdupq_n_f32(0.0f);
    float32x4_t ca = vdupq_n_f32(a[0]), cb = vdupq_n_f32(b[0]);
    float32x4_t cm = center ? vdupq_n_f32(m[0]) : z;
#define V(i, va, vb, vm) APPLY_VALUE(vld1q_f32(x + (i)), va, vb, vm, center)
#define ST(i, v) vst1q_f32(y + (i), act(v, vlo, vhi, clamp))
    size_t i = 0, e = len; /* e: where the current plane ends */
    for (size_t p = 0;; p++) {
        for (; i + 16 <= e; i += 16) {
            float32x4_t v0 = V(i, ca, cb, cm), v1 = V(i + 4, ca, cb, cm);
            float32x4_t v2 = V(i + 8, ca, cb, cm), v3 = V(i + 12, ca, cb, cm);
            ST(i, v0);
            ST(i + 4, v1);
            ST(i + 8, v2);
            ST(i + 12, v3);
        }
        for (; i + 4 <= e; i += 4)
            ST(i, V(i, ca, cb, cm));
        if (p + 1 == count)
            break;
        /* lanes [0, e - i) are plane p's last floats (none when e == i) */
        uint32x4_t keep = vld1q_u32(keep_mask + 4 - (e - i));
        float32x4_t na = vdupq_n_f32(a[p + 1]), nb = vdupq_n_f32(b[p + 1]);
        float32x4_t nm = center ? vdupq_n_f32(m[p + 1]) : z;
        ST(i, V(i, vbslq_f32(keep, ca, na), vbslq_f32(keep, cb, nb),
                center ? vbslq_f32(keep, cm, nm) : z));
        i += 4;
        e += len;
        ca = na;
        cb = nb;
        cm = nm;
    }
#undef V
#undef ST
    /* the run's last 1..3 floats: span's scalar tail, with the last plane's values */
    span(e - i, x + i, y + i, a + count - 1, b + count - 1, center ? m + count - 1 : NULL,
         lo, hi, false, clamp, center);
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

void bnorm_f32_apply_planes_dense__neon(size_t count, size_t len, const float *x,
                                        size_t xs, float *y, size_t ys, const float *a,
                                        const float *b, const float *m, float lo, float hi,
                                        unsigned flags)
{
    if (len < 4) {
        DISPATCH(false)
        return;
    }
    bool clamp = flags & BNORM_KF_CLAMP;
    if (flags & BNORM_KF_CENTER) {
        if (clamp)
            dense(count, len, x, y, a, b, m, lo, hi, true, true);
        else
            dense(count, len, x, y, a, b, m, lo, hi, false, true);
    } else if (clamp) {
        dense(count, len, x, y, a, b, m, lo, hi, true, false);
    } else {
        dense(count, len, x, y, a, b, m, lo, hi, false, false);
    }
}

void bnorm_f32_apply_rows__neon(size_t count, size_t len, const float *x, size_t xs,
                                float *y, size_t ys, const float *a, const float *b,
                                const float *m, float lo, float hi, unsigned flags)
{
    DISPATCH(true)
}
