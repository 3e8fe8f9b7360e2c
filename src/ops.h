/*
 * The operations with an explicit kernel table (internal): the public functions are
 * these with the active table. Tests and bnorm-check call them with every table the
 * CPU can run.
 */
#ifndef BNORM_OPS_H
#define BNORM_OPS_H

#include "kernels.h"

bnorm_status bnorm_inference_apply_with(const bnorm_kernels *k, const bnorm_shape *shape,
                                        const float *x, const bnorm_strides *x_strides,
                                        float *y, const bnorm_strides *y_strides,
                                        const float *scale, const float *shift,
                                        const bnorm_activation *act);

bnorm_status bnorm_inference_with(const bnorm_kernels *k, const bnorm_shape *shape,
                                  const float *x, const bnorm_strides *x_strides,
                                  float *y, const bnorm_strides *y_strides,
                                  const float *gamma, const float *beta,
                                  const float *mean, const float *var, float eps,
                                  const bnorm_activation *act);

bnorm_status bnorm_frozen_backward_with(const bnorm_kernels *k, const bnorm_shape *shape,
                                        const float *dy, const bnorm_strides *dy_strides,
                                        const float *gamma, const float *running_var,
                                        float eps, float *dx,
                                        const bnorm_strides *dx_strides);

bnorm_status bnorm_training_forward_with(const bnorm_kernels *k, const bnorm_shape *shape,
                                         const float *x, const bnorm_strides *x_strides,
                                         float *y, const bnorm_strides *y_strides,
                                         const float *gamma, const float *beta, float eps,
                                         float *save_mean, float *save_invstd,
                                         const bnorm_running_stats *running);

bnorm_status bnorm_training_backward_with(const bnorm_kernels *k, const bnorm_shape *shape,
                                          const float *x, const bnorm_strides *x_strides,
                                          const float *dy, const bnorm_strides *dy_strides,
                                          const float *gamma, const float *save_mean,
                                          const float *save_invstd, float *dx,
                                          const bnorm_strides *dx_strides, float *dgamma,
                                          float *dbeta);

#endif
