#include <math.h>
#include <stdint.h>

#include "tensor.h"

static bool mul_overflows(size_t a, size_t b, size_t *r)
{
    return __builtin_mul_overflow(a, b, r);
}

static bool add_overflows(size_t a, size_t b, size_t *r)
{
    return __builtin_add_overflow(a, b, r);
}

/* The extent (in elements) of n images of `image` elements `batch` apart, if its byte
 * size fits in ptrdiff_t. */
static bnorm_status extent_of(size_t n, size_t batch, size_t image, size_t *extent)
{
    size_t e;
    if (mul_overflows(n - 1, batch, &e) || add_overflows(e, image, &e) ||
        e > (size_t)PTRDIFF_MAX / sizeof(float))
        return BNORM_ERR_OVERFLOW;
    *extent = e;
    return BNORM_OK;
}

/* Extent of one image whose outer dimension has `outer` steps of `stride`, each
 * `inner` elements long. */
static bnorm_status image_extent(size_t outer, size_t stride, size_t inner, size_t *r)
{
    size_t e;
    if (mul_overflows(outer - 1, stride, &e) || add_overflows(e, inner, &e))
        return BNORM_ERR_OVERFLOW;
    *r = e;
    return BNORM_OK;
}

bnorm_status bnorm_check_shape(const bnorm_shape *shape)
{
    if (shape->layout != BNORM_NCHW && shape->layout != BNORM_NHWC)
        return BNORM_ERR_BAD_ENUM;
    if (shape->n == 0 || shape->c == 0 || shape->spatial == 0)
        return BNORM_ERR_BAD_SHAPE;
    bnorm_geom dense;
    return bnorm_resolve_geom(shape, NULL, &dense);
}

bnorm_status bnorm_resolve_geom(const bnorm_shape *shape, const bnorm_strides *strides,
                                bnorm_geom *geom)
{
    bool nchw = shape->layout == BNORM_NCHW;
    size_t outer = nchw ? shape->c : shape->spatial; /* steps of the inner stride */
    size_t run = nchw ? shape->spatial : shape->c;   /* contiguous elements */
    size_t image;
    bnorm_status st;
    if (strides) {
        if (strides->inner < run)
            return BNORM_ERR_BAD_STRIDE;
        if ((st = image_extent(outer, strides->inner, run, &image)) != BNORM_OK)
            return st;
        if (strides->batch < image)
            return BNORM_ERR_BAD_STRIDE;
        geom->inner = strides->inner;
        geom->batch = strides->batch;
    } else {
        if (mul_overflows(outer, run, &image))
            return BNORM_ERR_OVERFLOW;
        geom->inner = run;
        geom->batch = image;
    }
    return extent_of(shape->n, geom->batch, image, &geom->extent);
}

bool bnorm_overlaps(const void *a, size_t a_count, const void *b, size_t b_count)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + b_count * sizeof(float) && b0 < a0 + a_count * sizeof(float);
}

bnorm_status bnorm_check_activation(const bnorm_activation *act, float *lo, float *hi,
                                    bool *clamp)
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

bnorm_status bnorm_check_variance(size_t c, const float *var, float eps)
{
    if (!(eps >= 0.0f) || isinf(eps))
        return BNORM_ERR_BAD_VALUE;
    for (size_t i = 0; i < c; i++) {
        if (var[i] < 0.0f)
            return BNORM_ERR_BAD_VALUE;
    }
    return BNORM_OK;
}
