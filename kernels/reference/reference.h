/*
 * The oracle: plain loops in double precision over the logical index (n, c, s).
 * Never dispatched, never optimized for speed; tests, bnorm-check and benchmarks
 * compare every kernel table against it. Results are written densely in logical
 * NCHW order: out[(n * C + c) * spatial + s].
 */
#ifndef BNORM_REFERENCE_H
#define BNORM_REFERENCE_H

#include <stddef.h>

#include "bnorm.h"

/* Offset in elements of element (n, c, s) of a tensor with the given strides. */
size_t bnorm_ref_offset(const bnorm_shape *shape, size_t inner, size_t batch, size_t n,
                        size_t c, size_t s);

/* act(v) in double; NULL act is none. NaN stays NaN. */
double bnorm_ref_activate(const bnorm_activation *act, double v);

/* out = act(x * scale[c] + shift[c]) */
void bnorm_ref_apply(const bnorm_shape *shape, const float *x, size_t x_inner,
                     size_t x_batch, const float *scale, const float *shift,
                     const bnorm_activation *act, double *out);

/* out = act(gamma * (x - mean) / sqrt(var + eps) + beta), straight from the
 * definition (not through a fold); gamma and beta may be NULL (1 and 0). */
void bnorm_ref_inference(const bnorm_shape *shape, const float *x, size_t x_inner,
                         size_t x_batch, const float *gamma, const float *beta,
                         const float *mean, const float *var, float eps,
                         const bnorm_activation *act, double *out);

/* The fold's float outputs, which every kernel table must write bit for bit:
 * s = gamma[c] / sqrt(var[c] + eps), scale[c] = (float)s,
 * shift[c] = (float)(beta[c] - mean[c] * s), each operation in IEEE double (also
 * where C computes doubles on x87); gamma and beta may be NULL (1, 0), and mean
 * (shift[c] = (float)beta[c], the frozen backward's fold). */
void bnorm_ref_fold(size_t c, const float *gamma, const float *beta, const float *mean,
                    const float *var, float eps, float *scale, float *shift);

/* Training's inverse standard deviations: inv[i] = 1 / sqrt(var[i] + eps) in double
 * (bnorm_f64_inv_std_kernel). */
void bnorm_ref_inv_std(size_t c, const double *var, float eps, double *inv);

/* Batch statistics per channel, two-pass: mean[c] and biased var[c]. */
void bnorm_ref_batch_stats(const bnorm_shape *shape, const float *x, size_t x_inner,
                           size_t x_batch, double *mean, double *var);

/* out = gamma * (x - mean) / sqrt(var + eps) + beta with the batch statistics of x
 * (which are written to mean and var). */
void bnorm_ref_training_forward(const bnorm_shape *shape, const float *x, size_t x_inner,
                                size_t x_batch, const float *gamma, const float *beta,
                                float eps, double *out, double *mean, double *var);

/* Backward from the saved statistics: dx (logical NCHW order), dgamma, dbeta. */
void bnorm_ref_training_backward(const bnorm_shape *shape, const float *x, size_t x_inner,
                                 size_t x_batch, const float *dy, size_t dy_inner,
                                 size_t dy_batch, const float *gamma, const float *mean,
                                 const float *invstd, double *dx, double *dgamma,
                                 double *dbeta);

#endif
