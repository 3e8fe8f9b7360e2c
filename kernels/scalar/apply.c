/*
 * Affine apply, portable C: y = act(x * a + b), multiply and add rounded separately
 * (no fmaf: it is a slow library call on CPUs without FMA). One element at a time;
 * the compiler may vectorize it for the baseline ISA. No tails, no alignment needs.
 */
#include <stdbool.h>

#include "kernels.h"

static inline float clampf(float v, float lo, float hi)
{
    /* Comparisons with NaN are false, so NaN passes through unchanged. */
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

static inline void apply_span(size_t len, const float *x, float *y, const float *a,
                              const float *b, size_t ab_step, float lo, float hi,
                              bool clamp)
{
    for (size_t i = 0; i < len; i++) {
        float v = x[i] * a[i * ab_step] + b[i * ab_step];
        y[i] = clamp ? clampf(v, lo, hi) : v;
    }
}

void bnorm_f32_apply_planes__scalar(size_t count, size_t len, const float *x,
                                    size_t x_stride, float *y, size_t y_stride,
                                    const float *a, const float *b, float lo, float hi,
                                    unsigned flags)
{
    bool clamp = flags & BNORM_KF_CLAMP;
    for (size_t p = 0; p < count; p++) {
        const float *xp = x + p * x_stride;
        float *yp = y + p * y_stride;
        if (clamp)
            apply_span(len, xp, yp, a + p, b + p, 0, lo, hi, true);
        else
            apply_span(len, xp, yp, a + p, b + p, 0, lo, hi, false);
    }
}

void bnorm_f32_apply_rows__scalar(size_t count, size_t len, const float *x,
                                  size_t x_stride, float *y, size_t y_stride,
                                  const float *a, const float *b, float lo, float hi,
                                  unsigned flags)
{
    bool clamp = flags & BNORM_KF_CLAMP;
    for (size_t r = 0; r < count; r++) {
        const float *xr = x + r * x_stride;
        float *yr = y + r * y_stride;
        if (clamp)
            apply_span(len, xr, yr, a, b, 1, lo, hi, true);
        else
            apply_span(len, xr, yr, a, b, 1, lo, hi, false);
    }
}
