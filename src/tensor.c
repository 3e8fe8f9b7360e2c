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
    bnorm_geom dense;
    return bnorm_check_shape_geom(shape, &dense);
}

bnorm_status bnorm_resolve_geom(const bnorm_shape *shape, const bnorm_strides *strides,
                                bnorm_geom *geom)
{
    if (!strides)
        return bnorm_dense_geom(shape, geom);
    bool nchw = shape->layout == BNORM_NCHW;
    size_t outer = nchw ? shape->c : shape->spatial; /* steps of the inner stride */
    size_t run = nchw ? shape->spatial : shape->c;   /* contiguous elements */
    size_t image;
    bnorm_status st;
    if (strides->inner < run)
        return BNORM_ERR_BAD_STRIDE;
    if ((st = image_extent(outer, strides->inner, run, &image)) != BNORM_OK)
        return st;
    if (strides->batch < image)
        return BNORM_ERR_BAD_STRIDE;
    geom->inner = strides->inner;
    geom->batch = strides->batch;
    return extent_of(shape->n, geom->batch, image, &geom->extent);
}

bnorm_status bnorm_check_variance(size_t c, const float *var, float eps)
{
    bnorm_status st = bnorm_check_eps(eps);
    if (st != BNORM_OK)
        return st;
    /* No early exit and no bool: the loop vectorizes, and runs on every
     * bnorm_inference call. */
    unsigned negative = 0;
    for (size_t i = 0; i < c; i++)
        negative |= var[i] < 0.0f;
    return negative ? BNORM_ERR_BAD_VALUE : BNORM_OK;
}
