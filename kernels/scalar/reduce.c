/*
 * Per-channel reductions, portable C, accumulated in double: moments about a shift
 * (training statistics; x - k formed in double) and the dot products of backward.
 * Planes: one accumulator pair per plane, summed from zero, then added. Rows:
 * straight into the per-channel sums, row after row, every term and sum rounded as
 * IEEE double (on 32-bit x86's x87 too: x87_double.h) and dot's x - m to float, so
 * that rows sums are every ISA's bits (kernels.h).
 */
#include <math.h>

#include "kernels.h"
#include "x87_double.h"

void bnorm_f32_moments_planes__scalar(size_t count, size_t len, const float *x,
                                      size_t xs, const float *k, double *s1, double *s2)
{
    for (size_t p = 0; p < count; p++) {
        const float *xp = x + p * xs;
        double a1 = 0.0, a2 = 0.0;
        for (size_t i = 0; i < len; i++) {
            double d = (double)xp[i] - (double)k[p];
            a1 += d;
            a2 += d * d;
        }
        s1[p] += a1;
        s2[p] += a2;
    }
}

void bnorm_f32_moments_rows__scalar(size_t count, size_t len, const float *x, size_t xs,
                                    const float *k, double *s1, double *s2)
{
    bnorm_x87_state x87 = bnorm_x87_double_begin();
    for (size_t r = 0; r < count; r++) {
        const float *xr = x + r * xs;
        for (size_t i = 0; i < len; i++) {
            double d = (double)xr[i] - (double)k[i];
            s1[i] += d;
            s2[i] += d * d;
        }
    }
    bnorm_x87_double_end(x87);
}

void bnorm_f32_dot_planes__scalar(size_t count, size_t len, const float *x, size_t xs,
                                  const float *dy, size_t dys, const float *m,
                                  double *sdy, double *sdyx)
{
    for (size_t p = 0; p < count; p++) {
        const float *xp = x + p * xs, *dyp = dy + p * dys;
        double a1 = 0.0, a2 = 0.0;
        for (size_t i = 0; i < len; i++) {
            a1 += (double)dyp[i];
            a2 += (double)dyp[i] * (double)(xp[i] - m[p]);
        }
        sdy[p] += a1;
        sdyx[p] += a2;
    }
}

void bnorm_f32_dot_rows__scalar(size_t count, size_t len, const float *x, size_t xs,
                                const float *dy, size_t dys, const float *m, double *sdy,
                                double *sdyx)
{
    bnorm_x87_state x87 = bnorm_x87_double_begin();
    for (size_t r = 0; r < count; r++) {
        const float *xr = x + r * xs, *dyr = dy + r * dys;
        for (size_t i = 0; i < len; i++) {
            sdy[i] += (double)dyr[i];
            sdyx[i] += (double)dyr[i] * (double)(float)(xr[i] - m[i]);
        }
    }
    bnorm_x87_double_end(x87);
}

/* No fused loop here: the two passes one after the other (kernels.h allows it). */
void bnorm_f32_moments_apply_planes__scalar(size_t count, size_t len, const float *xm,
                                            size_t xm_stride, const float *k, double *s1,
                                            double *s2, const float *xa, size_t xa_stride,
                                            float *ya, size_t ya_stride, const float *a,
                                            const float *b, const float *m)
{
    bnorm_f32_moments_planes__scalar(count, len, xm, xm_stride, k, s1, s2);
    bnorm_f32_apply_planes__scalar(count, len, xa, xa_stride, ya, ya_stride, a, b, m,
                                   -INFINITY, INFINITY, BNORM_KF_CENTER);
}

/* No fused loop here: the two passes one after the other (kernels.h allows it). */
void bnorm_f32_dot_apply2_planes__scalar(size_t count, size_t len, const float *x,
                                         size_t x_stride, const float *dy,
                                         size_t dy_stride, const float *m, double *sdy,
                                         double *sdyx, const float *xa, size_t xa_stride,
                                         const float *dya, size_t dya_stride, float *dxa,
                                         size_t dxa_stride, const float *a, const float *b,
                                         const float *ma, const float *k)
{
    bnorm_f32_dot_planes__scalar(count, len, x, x_stride, dy, dy_stride, m, sdy, sdyx);
    bnorm_f32_apply2_planes__scalar(count, len, xa, xa_stride, dya, dya_stride, dxa,
                                    dxa_stride, a, b, ma, k);
}
