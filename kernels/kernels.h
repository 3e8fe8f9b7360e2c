/*
 * The kernel contract: one table of function pointers per ISA.
 *
 * Kernels take raw pointers, sizes and strides (in elements), compute and return.
 * They never validate, allocate, print or touch global state; src/ checks every
 * argument once and plans the loops. Any pointer alignment is valid; no kernel reads
 * or writes an element outside the ones its arguments describe.
 *
 * Names: bnorm_<dtype>_<op>_<layout>__<isa>.
 */
#ifndef BNORM_KERNELS_H
#define BNORM_KERNELS_H

#include <stddef.h>

#include "bnorm.h"

/* Flags for the apply family. */
enum {
    /* y = min(max(v, lo), hi) after the affine step (ReLU is clamp(0, +inf)); NaN
     * stays NaN. Without it lo and hi are ignored. */
    BNORM_KF_CLAMP = 1u << 0,
    /* Non-temporal stores: the output will not be read again soon and is larger
     * than the last-level cache. A hint: kernels without such stores ignore it. */
    BNORM_KF_STREAM = 1u << 1,
};

/*
 * Affine apply, planes (channel-contiguous data, NCHW):
 *   for p < count, i < len:
 *     y[p*y_stride + i] = act(x[p*x_stride + i] * a[p] + b[p])
 * Affine apply, rows (channel-last data, NHWC; also NCHW with spatial == 1):
 *   for r < count, i < len:
 *     y[r*y_stride + i] = act(x[r*x_stride + i] * a[i] + b[i])
 * y may equal x (same strides); otherwise they do not overlap. The product and sum
 * are rounded once (FMA) or twice (separate multiply and add): both are within the
 * documented tolerance.
 */
typedef void (*bnorm_f32_apply_fn)(size_t count, size_t len, const float *x,
                                   size_t x_stride, float *y, size_t y_stride,
                                   const float *a, const float *b, float lo, float hi,
                                   unsigned flags);

typedef struct bnorm_kernels {
    bnorm_isa isa;
    const char *name;
    bnorm_f32_apply_fn apply_planes;
    bnorm_f32_apply_fn apply_rows;
} bnorm_kernels;

/* Declares every kernel and the table of one ISA. */
#define BNORM_DECLARE_KERNELS(isa)                                                  \
    void bnorm_f32_apply_planes__##isa(size_t, size_t, const float *, size_t, float *, \
                                       size_t, const float *, const float *, float,  \
                                       float, unsigned);                            \
    void bnorm_f32_apply_rows__##isa(size_t, size_t, const float *, size_t, float *,   \
                                     size_t, const float *, const float *, float,    \
                                     float, unsigned);                              \
    extern const bnorm_kernels bnorm_kernels_##isa

/* Defines the table of one ISA; used once, in kernels/<isa>/table.c. */
#define BNORM_DEFINE_KERNELS(isa_enum, suffix)                                       \
    const bnorm_kernels bnorm_kernels_##suffix = {                                  \
        .isa = isa_enum,                                                            \
        .name = #suffix,                                                            \
        .apply_planes = bnorm_f32_apply_planes__##suffix,                           \
        .apply_rows = bnorm_f32_apply_rows__##suffix,                               \
    }

BNORM_DECLARE_KERNELS(scalar);
BNORM_DECLARE_KERNELS(avx2);
BNORM_DECLARE_KERNELS(neon);

#endif /* BNORM_KERNELS_H */
