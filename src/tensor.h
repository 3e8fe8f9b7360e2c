/* Argument checking shared by every operation (internal). */
#ifndef BNORM_TENSOR_H
#define BNORM_TENSOR_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bnorm.h"

/* For the bodies shared by a public entry point and its *_with form, and for what
 * runs on every call: the fixed cost of a small call is mostly calls and
 * argument passing. */
#define BNORM_ALWAYS_INLINE inline __attribute__((always_inline))

/* For the arrays on bnorm's own stack that kernels walk a vector at a time (folded
 * coefficients, shifts, sums): on a 64-byte line, so that their vectors split no
 * line whatever the caller's stack depth. The rows kernels load a, b and m at the
 * offsets of x and y, so with x and y on lines and C a multiple of 8, each such
 * load then is too (rows of at least 256 floats start at a 32-byte boundary of y).
 * Left to the caller's stack depth, the same call ran at one of two speeds: NCHW
 * 256x64 bnorm_inference 1.22 or 1.38 us, NHWC 1x17x33x33 apply 1.33 or 1.56. */
#define BNORM_LINE_ALIGNED _Alignas(64)

/* A buffer's resolved strides and extent, in elements. */
typedef struct bnorm_geom {
    size_t inner;  /* NCHW: channel plane stride; NHWC: pixel stride */
    size_t batch;  /* image stride */
    size_t extent; /* first to last element, inclusive */
} bnorm_geom;

/* Whether a tensor is walked as rows of channels rather than channel planes: NHWC,
 * and NCHW whose planes are single values one float apart (spatial == 1 and every
 * buffer's channel step 1: `unit`), where each image is one row of C. The apply
 * plan, bnorm_inference's ranges and training's walks all decide with this. */
static inline bool bnorm_walks_rows(const bnorm_shape *shape, bool unit)
{
    return shape->layout == BNORM_NHWC || (shape->spatial == 1 && unit);
}

/* NULL shape is the caller's check; this checks the layout, the sizes and that a
 * dense tensor's extent fits: BAD_ENUM, BAD_SHAPE, OVERFLOW. */
bnorm_status bnorm_check_shape(const bnorm_shape *shape);

/* The geometry of a dense tensor of a shape whose layout and sizes are checked:
 * OVERFLOW if its extent does not fit. Inline, as the next one: part of every
 * call's fixed cost. */
static inline bnorm_status bnorm_dense_geom(const bnorm_shape *shape, bnorm_geom *geom)
{
    size_t image, extent;
    if (__builtin_mul_overflow(shape->c, shape->spatial, &image) ||
        __builtin_mul_overflow(shape->n, image, &extent) ||
        extent > (size_t)PTRDIFF_MAX / sizeof(float))
        return BNORM_ERR_OVERFLOW;
    geom->inner = shape->layout == BNORM_NCHW ? shape->spatial : shape->c;
    geom->batch = image;
    geom->extent = extent;
    return BNORM_OK;
}

/* bnorm_check_shape, and on success the dense tensor's geometry (what
 * bnorm_resolve_geom gives for NULL strides), computed once. */
static inline bnorm_status bnorm_check_shape_geom(const bnorm_shape *shape,
                                                  bnorm_geom *dense)
{
    if (shape->layout != BNORM_NCHW && shape->layout != BNORM_NHWC)
        return BNORM_ERR_BAD_ENUM;
    if (shape->n == 0 || shape->c == 0 || shape->spatial == 0)
        return BNORM_ERR_BAD_SHAPE;
    return bnorm_dense_geom(shape, dense);
}

/* Resolves strides (NULL: dense) against a checked shape: BAD_STRIDE, OVERFLOW. */
bnorm_status bnorm_resolve_geom(const bnorm_shape *shape, const bnorm_strides *strides,
                                bnorm_geom *geom);

/* Whether [a, a + a_count) and [b, b + b_count) floats share an address. Inline:
 * every call runs several. */
static inline bool bnorm_overlaps(const void *a, size_t a_count, const void *b,
                                  size_t b_count)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + b_count * sizeof(float) && b0 < a0 + a_count * sizeof(float);
}

/* Whether [a, a + a_count) floats overlaps any of the `n` arrays of `count` floats in
 * arrays[] (NULL entries are absent arguments). */
static inline bool bnorm_overlaps_any(const void *a, size_t a_count,
                                      const float *const arrays[], size_t n, size_t count)
{
    for (size_t i = 0; i < n; i++)
        if (arrays[i] && bnorm_overlaps(a, a_count, arrays[i], count))
            return true;
    return false;
}

/* Checks an activation (NULL is none): BAD_ENUM, BAD_VALUE. Sets the clamp bounds
 * and whether the kernels must clamp. Inline: part of every apply's fixed cost. */
static inline bnorm_status bnorm_check_activation(const bnorm_activation *act, float *lo,
                                                  float *hi, bool *clamp)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    *clamp = false;
    if (!act)
        return BNORM_OK;
    switch (act->kind) {
    case BNORM_ACT_NONE:
        return BNORM_OK;
    case BNORM_ACT_RELU:
        *lo = 0.0f;
        *clamp = true;
        return BNORM_OK;
    case BNORM_ACT_CLAMP:
        if (isnan(act->lo) || isnan(act->hi) || act->lo > act->hi)
            return BNORM_ERR_BAD_VALUE;
        *lo = act->lo;
        *hi = act->hi;
        *clamp = true;
        return BNORM_OK;
    default:
        return BNORM_ERR_BAD_ENUM;
    }
}

/* Checks eps: BAD_VALUE for NaN, infinite or negative eps. */
static inline bnorm_status bnorm_check_eps(float eps)
{
    return eps >= 0.0f && !isinf(eps) ? BNORM_OK : BNORM_ERR_BAD_VALUE;
}

/* Checks eps (bnorm_check_eps) and the variances: BAD_VALUE also for a negative
 * variance. */
bnorm_status bnorm_check_variance(size_t c, const float *var, float eps);

#endif
