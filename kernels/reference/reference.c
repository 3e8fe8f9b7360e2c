#include <math.h>

#include "reference.h"
#include "x87_double.h"

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

void bnorm_ref_fold(size_t c, const float *gamma, const float *beta, const float *mean,
                    const float *var, float eps, float *scale, float *shift)
{
    bnorm_x87_state x87 = bnorm_x87_double_begin();
    for (size_t i = 0; i < c; i++) {
        double s = (gamma ? (double)gamma[i] : 1.0) / sqrt((double)var[i] + eps);
        double b = beta ? (double)beta[i] : 0.0;
        scale[i] = (float)s;
        shift[i] = (float)(mean ? b - (double)mean[i] * s : b);
    }
    bnorm_x87_double_end(x87);
}

void bnorm_ref_inv_std(size_t c, const double *var, float eps, double *inv)
{
    bnorm_x87_state x87 = bnorm_x87_double_begin();
    for (size_t i = 0; i < c; i++)
        inv[i] = 1.0 / sqrt(var[i] + eps);
    bnorm_x87_double_end(x87);
}

void bnorm_ref_batch_stats(const bnorm_shape *shape, const float *x, size_t x_inner,
                           size_t x_batch, double *mean, double *var)
{
    double m = (double)shape->n * (double)shape->spatial;
    for (size_t c = 0; c < shape->c; c++) {
        double sum = 0.0, sq = 0.0;
        for (size_t n = 0; n < shape->n; n++)
            for (size_t s = 0; s < shape->spatial; s++)
                sum += x[bnorm_ref_offset(shape, x_inner, x_batch, n, c, s)];
        mean[c] = sum / m;
        for (size_t n = 0; n < shape->n; n++)
            for (size_t s = 0; s < shape->spatial; s++) {
                double d = x[bnorm_ref_offset(shape, x_inner, x_batch, n, c, s)] - mean[c];
                sq += d * d;
            }
        var[c] = sq / m;
    }
}

void bnorm_ref_training_forward(const bnorm_shape *shape, const float *x, size_t x_inner,
                                size_t x_batch, const float *gamma, const float *beta,
                                float eps, double *out, double *mean, double *var)
{
    bnorm_ref_batch_stats(shape, x, x_inner, x_batch, mean, var);
    for (size_t n = 0; n < shape->n; n++)
        for (size_t c = 0; c < shape->c; c++) {
            double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
            double invstd = 1.0 / sqrt(var[c] + eps);
            for (size_t s = 0; s < shape->spatial; s++) {
                double v = x[bnorm_ref_offset(shape, x_inner, x_batch, n, c, s)];
                *out++ = g * (v - mean[c]) * invstd + b;
            }
        }
}

void bnorm_ref_training_backward(const bnorm_shape *shape, const float *x, size_t x_inner,
                                 size_t x_batch, const float *dy, size_t dy_inner,
                                 size_t dy_batch, const float *gamma, const float *mean,
                                 const float *invstd, double *dx, double *dgamma,
                                 double *dbeta)
{
    double m = (double)shape->n * (double)shape->spatial;
    for (size_t c = 0; c < shape->c; c++) {
        double sdy = 0.0, sdyxhat = 0.0;
        for (size_t n = 0; n < shape->n; n++)
            for (size_t s = 0; s < shape->spatial; s++) {
                double g = dy[bnorm_ref_offset(shape, dy_inner, dy_batch, n, c, s)];
                double xh = (x[bnorm_ref_offset(shape, x_inner, x_batch, n, c, s)] -
                             (double)mean[c]) * invstd[c];
                sdy += g;
                sdyxhat += g * xh;
            }
        dbeta[c] = sdy;
        dgamma[c] = sdyxhat;
    }
    for (size_t n = 0; n < shape->n; n++)
        for (size_t c = 0; c < shape->c; c++) {
            double gm = gamma ? gamma[c] : 1.0;
            for (size_t s = 0; s < shape->spatial; s++) {
                double g = dy[bnorm_ref_offset(shape, dy_inner, dy_batch, n, c, s)];
                double xh = (x[bnorm_ref_offset(shape, x_inner, x_batch, n, c, s)] -
                             (double)mean[c]) * invstd[c];
                *dx++ = gm * invstd[c] * (g - dbeta[c] / m - xh * dgamma[c] / m);
            }
        }
}
