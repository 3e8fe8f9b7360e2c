/*
 * Two-input affine apply, portable C: dx = a * dy + (b * (x - m) + k), evaluated in
 * that order with every operation rounded separately. One element at a time.
 */
#include "kernels.h"

static void apply2(size_t count, size_t len, const float *x, size_t xs, const float *dy,
                   size_t dys, float *dx, size_t dxs, const float *a, const float *b,
                   const float *m, const float *k, int rows)
{
    for (size_t p = 0; p < count; p++) {
        const float *xp = x + p * xs, *dyp = dy + p * dys;
        float *dxp = dx + p * dxs;
        for (size_t i = 0; i < len; i++) {
            size_t c = rows ? i : p;
            float t = b[c] * (xp[i] - m[c]) + k[c];
            dxp[i] = a[c] * dyp[i] + t;
        }
    }
}

void bnorm_f32_apply2_planes__scalar(size_t count, size_t len, const float *x, size_t xs,
                                     const float *dy, size_t dys, float *dx, size_t dxs,
                                     const float *a, const float *b, const float *m,
                                     const float *k)
{
    apply2(count, len, x, xs, dy, dys, dx, dxs, a, b, m, k, 0);
}

void bnorm_f32_apply2_rows__scalar(size_t count, size_t len, const float *x, size_t xs,
                                   const float *dy, size_t dys, float *dx, size_t dxs,
                                   const float *a, const float *b, const float *m,
                                   const float *k)
{
    apply2(count, len, x, xs, dy, dys, dx, dxs, a, b, m, k, 1);
}
