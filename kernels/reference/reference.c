#include <math.h>

#include "reference.h"

size_t bnorm_ref_offset(const bnorm_shape *shape, size_t inner, size_t batch, size_t n,
                        size_t c, size_t s)
{
    if (shape->layout == BNORM_NCHW)
        return n * batch + c * inner + s;
    return n * batch + s * inner + c;
}

double bnorm_ref_activate(const bnorm_activation *act, double v)
{
    if (!act || act->kind == BNORM_ACT_NONE || isnan(v))
        return v;
    double lo = act->kind == BNORM_ACT_RELU ? 0.0 : act->lo;
    double hi = act->kind == BNORM_ACT_RELU ? INFINITY : act->hi;
    return v < lo ? lo : v > hi ? hi : v;
}

void bnorm_ref_apply(const bnorm_shape *shape, const float *x, size_t x_inner,
                     size_t x_batch, const float *scale, const float *shift,
                     const bnorm_activation *act, double *out)
{
    for (size_t n = 0; n < shape->n; n++)
        for (size_t c = 0; c < shape->c; c++)
            for (size_t s = 0; s < shape->spatial; s++) {
                double v = x[bnorm_ref_offset(shape, x_inner, x_batch, n, c, s)];
                *out++ = bnorm_ref_activate(act, v * scale[c] + shift[c]);
            }
}

void bnorm_ref_inference(const bnorm_shape *shape, const float *x, size_t x_inner,
                         size_t x_batch, const float *gamma, const float *beta,
                         const float *mean, const float *var, float eps,
                         const bnorm_activation *act, double *out)
{
    for (size_t n = 0; n < shape->n; n++)
        for (size_t c = 0; c < shape->c; c++) {
            double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
            double invstd = 1.0 / sqrt((double)var[c] + eps);
            for (size_t s = 0; s < shape->spatial; s++) {
                double v = x[bnorm_ref_offset(shape, x_inner, x_batch, n, c, s)];
                *out++ = bnorm_ref_activate(act, g * (v - mean[c]) * invstd + b);
            }
        }
}
