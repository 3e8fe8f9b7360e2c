/* Argument checking shared by every operation (internal). */
#ifndef BNORM_TENSOR_H
#define BNORM_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "bnorm.h"

/* A buffer's resolved strides and extent, in elements. */
typedef struct bnorm_geom {
    size_t inner;  /* NCHW: channel plane stride; NHWC: pixel stride */
    size_t batch;  /* image stride */
    size_t extent; /* first to last element, inclusive */
} bnorm_geom;

/* NULL shape is the caller's check; this checks the layout, the sizes and that a
 * dense tensor's extent fits: BAD_ENUM, BAD_SHAPE, OVERFLOW. */
bnorm_status bnorm_check_shape(const bnorm_shape *shape);

/* Resolves strides (NULL: dense) against a checked shape: BAD_STRIDE, OVERFLOW. */
bnorm_status bnorm_resolve_geom(const bnorm_shape *shape, const bnorm_strides *strides,
                                bnorm_geom *geom);

/* Whether [a, a + a_count) and [b, b + b_count) floats share an address. */
bool bnorm_overlaps(const void *a, size_t a_count, const void *b, size_t b_count);

/* Checks an activation (NULL is none): BAD_ENUM, BAD_VALUE. Sets the clamp bounds
 * and whether the kernels must clamp. */
bnorm_status bnorm_check_activation(const bnorm_activation *act, float *lo, float *hi,
                                    bool *clamp);

/* Checks eps and the variances: BAD_VALUE for NaN, infinite or negative eps, or a
 * negative variance. */
bnorm_status bnorm_check_variance(size_t c, const float *var, float eps);

#endif
