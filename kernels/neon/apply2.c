/*
 * Two-input affine apply, NEON: dx = a*dy + b*(x - m) + k, evaluated in one fixed
 * order (the scalar kernel follows the same order, unfused):
 *   t = x - m  (float),  u = fma(b, t, k),  dx = fma(a, dy, u)
 * (vfmaq_f32; fmaf in the tail, one fused instruction on aarch64 and on x86 built
 * with -mfma).
 *
 * Each span (one plane or one row) runs 4 vectors (16 floats) per iteration, then
 * single vectors, then the last 1..3 floats one at a time (NEON has no masked
 * loads or stores: the scalar tail keeps every access inside the span). Every element
 * of dy is loaded before the store of the same element of dx, so dx == dy is safe.
 */
#include <math.h>
#include <stdbool.h>

#include "kernels.h"
#include "neon_util.h"

/* rows: a, b, m and k are loaded per element; planes: a[0].. k[0] are broadcast. */
ALWAYS_INLINE void span(size_t len, const float *x, const float *dy, float *dx,
                        const float *a, const float *b, const float *m, const float *k,
                        bool rows)
{
    float32x4_t va = vdupq_n_f32(rows ? 0.0f : a[0]);
    float32x4_t vb = vdupq_n_f32(rows ? 0.0f : b[0]);
    float32x4_t vm = vdupq_n_f32(rows ? 0.0f : m[0]);
    float32x4_t vk = vdupq_n_f32(rows ? 0.0f : k[0]);
#define L(p, i) vld1q_f32((p) + (i))
#define V(i)                                                                        \
    vfmaq_f32(vfmaq_f32(rows ? L(k, i) : vk, rows ? L(b, i) : vb,                   \
                        vsubq_f32(L(x, i), rows ? L(m, i) : vm)),                   \
              rows ? L(a, i) : va, L(dy, i))
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        float32x4_t v0 = V(i), v1 = V(i + 4), v2 = V(i + 8), v3 = V(i + 12);
        vst1q_f32(dx + i, v0);
        vst1q_f32(dx + i + 4, v1);
        vst1q_f32(dx + i + 8, v2);
        vst1q_f32(dx + i + 12, v3);
    }
    for (; i + 4 <= len; i += 4)
        vst1q_f32(dx + i, V(i));
#undef V
#undef L
    for (; i < len; i++) {
        size_t c = rows ? i : 0;
        dx[i] = fmaf(a[c], dy[i], fmaf(b[c], x[i] - m[c], k[c]));
    }
}

ALWAYS_INLINE void apply2(size_t count, size_t len, const float *x, size_t x_stride,
                          const float *dy, size_t dy_stride, float *dx,
                          size_t dx_stride, const float *a, const float *b,
                          const float *m, const float *k, bool rows)
{
    for (size_t p = 0; p < count; p++) {
        size_t c = rows ? 0 : p;
        span(len, x + p * x_stride, dy + p * dy_stride, dx + p * dx_stride, a + c,
             b + c, m + c, k + c, rows);
    }
}

void bnorm_f32_apply2_planes__neon(size_t count, size_t len, const float *x,
                                   size_t x_stride, const float *dy, size_t dy_stride,
                                   float *dx, size_t dx_stride, const float *a,
                                   const float *b, const float *m, const float *k)
{
    apply2(count, len, x, x_stride, dy, dy_stride, dx, dx_stride, a, b, m, k, false);
}

void bnorm_f32_apply2_rows__neon(size_t count, size_t len, const float *x,
                                 size_t x_stride, const float *dy, size_t dy_stride,
                                 float *dx, size_t dx_stride, const float *a,
                                 const float *b, const float *m, const float *k)
{
    apply2(count, len, x, x_stride, dy, dy_stride, dx, dx_stride, a, b, m, k, true);
}
