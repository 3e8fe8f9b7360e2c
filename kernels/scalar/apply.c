/*
 * Affine apply, portable C: y = act(x * a + b), or act((x - m) * a + b) when
 * centered; multiply and add rounded separately (no fmaf: it is a slow library call
 * on CPUs without FMA). One element at a time; the compiler may vectorize it for the
 * baseline ISA. No tails, no alignment needs. Dense planes (apply_planes_dense) take
 * the same per-plane loop: one element at a time has no partial vectors to save.
 */
#include <stdbool.h>

#include "kernels.h"

static inline float clampf(float v, float lo, float hi)
{
    /* Comparisons with NaN are false, so NaN passes through unchanged. */
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* ab_step: 0 for a plane (one channel), 1 for a row (one channel per element). */
static inline void apply_span(size_t len, const float *x, float *y, const float *a,
                              const float *b, const float *m, size_t ab_step, float lo,
                              float hi, bool clamp, bool center)
{
    for (size_t i = 0; i < len; i++) {
        size_t j = i * ab_step;
        float v = (center ? x[i] - m[j] : x[i]) * a[j] + b[j];
        y[i] = clamp ? clampf(v, lo, hi) : v;
    }
}

static void apply(size_t count, size_t len, const float *x, size_t x_stride, float *y,
                  size_t y_stride, const float *a, const float *b, const float *m,
                  float lo, float hi, unsigned flags, bool rows)
{
    bool clamp = flags & BNORM_KF_CLAMP, center = flags & BNORM_KF_CENTER;
    for (size_t p = 0; p < count; p++) {
        size_t off = rows ? 0 : p, step = rows ? 1 : 0;
        const float *xp = x + p * x_stride;
        float *yp = y + p * y_stride;
        const float *mp = center ? m + off : m;
        if (clamp && center)
            apply_span(len, xp, yp, a + off, b + off, mp, step, lo, hi, true, true);
        else if (clamp)
            apply_span(len, xp, yp, a + off, b + off, mp, step, lo, hi, true, false);
        else if (center)
            apply_span(len, xp, yp, a + off, b + off, mp, step, lo, hi, false, true);
        else
            apply_span(len, xp, yp, a + off, b + off, mp, step, lo, hi, false, false);
    }
}

void bnorm_f32_apply_planes__scalar(size_t count, size_t len, const float *x,
                                    size_t x_stride, float *y, size_t y_stride,
                                    const float *a, const float *b, const float *m,
                                    float lo, float hi, unsigned flags)
{
    apply(count, len, x, x_stride, y, y_stride, a, b, m, lo, hi, flags, false);
}

void bnorm_f32_apply_planes_dense__scalar(size_t count, size_t len, const float *x,
                                          size_t x_stride, float *y, size_t y_stride,
                                          const float *a, const float *b, const float *m,
                                          float lo, float hi, unsigned flags)
{
    apply(count, len, x, x_stride, y, y_stride, a, b, m, lo, hi, flags, false);
}

void bnorm_f32_apply_rows__scalar(size_t count, size_t len, const float *x,
                                  size_t x_stride, float *y, size_t y_stride,
                                  const float *a, const float *b, const float *m,
                                  float lo, float hi, unsigned flags)
{
    apply(count, len, x, x_stride, y, y_stride, a, b, m, lo, hi, flags, true);
}
