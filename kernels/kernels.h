/*
 * The kernel contract: one table of function pointers per ISA.
 *
 * Kernels take raw pointers, sizes and strides (in elements), compute and return.
 * They never validate, allocate, print or touch global state; src/ checks every
 * argument once and plans the loops. Any pointer alignment is valid; no kernel reads
 * or writes an element outside the ones its arguments describe. count and len are
 * never 0.
 *
 * Every family comes in two layouts:
 *   planes (channel-contiguous data, NCHW): item p is one channel's span, its
 *     per-channel values are a[p], b[p], ...;
 *   rows (channel-last data, NHWC, and NCHW with spatial == 1): item r is one row of
 *     channels, element i of every row belongs to channel i: a[i], b[i], ...
 * Below, "ch" stands for p (planes) or i (rows).
 *
 * Names: bnorm_<dtype>_<op>_<layout>__<isa>.
 */
#ifndef BNORM_KERNELS_H
#define BNORM_KERNELS_H

#include <stddef.h>

#include "bnorm.h"

/* The plans stream no spans shorter than this (floats), except dense planes, which
 * apply_planes_dense may walk as one run (AVX2 does, streamed, below this length),
 * and the pieces at the ends of a pool task's range of dense rows (flat_range in
 * src/apply_plan.c), which continue its streamed rows: a shorter span would start or
 * end in part of a line too often. */
#define BNORM_STREAM_SPAN_MIN 256

/* Flags for the apply family. */
enum {
    /* y = min(max(v, lo), hi) after the affine step (ReLU is clamp(0, +inf)); NaN
     * stays NaN. Without it lo and hi are ignored. */
    BNORM_KF_CLAMP = 1u << 0,
    /* Non-temporal stores: the output will not be read again soon, being at least
     * the stream threshold (half the last-level cache, or BNORM_STREAM_THRESHOLD;
     * dispatch.c), in spans of at least BNORM_STREAM_SPAN_MIN floats, dense planes of
     * at least 8, or the ends of a task's range of such rows (apply_plan.c). A hint:
     * kernels without such stores ignore it. */
    BNORM_KF_STREAM = 1u << 1,
    /* Centered form v = (x - m[ch]) * a[ch] + b[ch]; without it m is never read
     * (it may be NULL) and v = x * a[ch] + b[ch]. Training uses it: a constant
     * channel (x == mean) then gives exactly b. */
    BNORM_KF_CENTER = 1u << 2,
};

/*
 * Affine apply: for every item and i < len,
 *   y[item*y_stride + i] = act(v), v = x * a[ch] + b[ch]  (or the centered form)
 * y may equal x (same strides); otherwise they do not overlap. The product and sum
 * are rounded once (FMA) or twice (separate multiply and add).
 */
typedef void bnorm_f32_apply_kernel(size_t count, size_t len, const float *x,
                                    size_t x_stride, float *y, size_t y_stride,
                                    const float *a, const float *b, const float *m,
                                    float lo, float hi, unsigned flags);
typedef bnorm_f32_apply_kernel *bnorm_f32_apply_fn;

/*
 * apply_planes_dense: exactly apply_planes, bit for bit, for planes that follow each
 * other in memory: x_stride == y_stride == len, so the count planes are one array of
 * count * len elements whose element i belongs to channel i / len. A kernel may walk
 * that array in full vectors across plane boundaries (a vector that straddles one
 * blends the two channels' a, b and m), leaving partial vectors only at the run's
 * ends (AVX2: a masked head that aligns the stores, and the tail); the rounding of
 * every element is apply_planes' own.
 */

/*
 * Two-input affine apply (backward data is affine in dy and x per channel):
 *   dx = a[ch] * dy + (b[ch] * (x - m[ch]) + k[ch])
 * evaluated in exactly that order (each product-plus-sum fused or not).
 * dx may equal dy (same strides); otherwise dx overlaps neither input.
 */
typedef void bnorm_f32_apply2_kernel(size_t count, size_t len, const float *x,
                                     size_t x_stride, const float *dy, size_t dy_stride,
                                     float *dx, size_t dx_stride, const float *a,
                                     const float *b, const float *m, const float *k);
typedef bnorm_f32_apply2_kernel *bnorm_f32_apply2_fn;

/*
 * Moments about a per-channel shift k, accumulated in double:
 *   s1[ch] += sum (x - k[ch]),  s2[ch] += sum (x - k[ch])^2
 * Every ISA forms d = (double)x - (double)k in double (exact unless the exponents are
 * ~29 apart; then rounded once, in double) and sums in double. (Rounded to float, d
 * would be off by up to half a float ulp of itself, which with an outlying shift is
 * that of the shift: with repeated values those errors add up, and x - k can
 * overflow a float.) d can have more than 26 bits, so d*d is not always exact.
 * rows: rows are added into s1[i], s2[i] one after another, in order, s2 with d*d
 * rounded and then added (no FMA; on 32-bit x86's x87, at double precision:
 * x87_double.h). Every term is the same double in every ISA and arrives in the same
 * order, so rows sums are identical in every ISA (bnorm-check's rows_sums checks it).
 * (src/training.c calls this over chunks of rows fixed by the shape, each into zeroed
 * partials that it adds in chunk order (one chunk: into the zeroed sums, the same
 * bits), and over dense small-C tensors as rows of P floats of whole periods of C
 * with k repeated, folding column sums into channels in column order: all in src/,
 * so training's rows statistics are identical in every ISA too.)
 * planes: each item is summed from zero, then added to s1[p], s2[p], items in order;
 * the order inside an item (lanes) and whether d*d is fused into its sum are the
 * ISA's own, so planes sums may differ between ISAs in the last bits.
 */
typedef void bnorm_f32_moments_kernel(size_t count, size_t len, const float *x,
                                      size_t x_stride, const float *k, double *s1,
                                      double *s2);
typedef bnorm_f32_moments_kernel *bnorm_f32_moments_fn;

/*
 * Per-channel dot products for backward, accumulated in double:
 *   sdy[ch] += sum dy,  sdyx[ch] += sum dy * (x - m[ch])
 * with x - m rounded to float (rows; planes: rounded to float or formed in double,
 * whichever the ISA does faster): m is the batch mean, so each term's rounding is
 * relative to its own |x - m|. The summation order follows the moments' rules.
 */
typedef void bnorm_f32_dot_kernel(size_t count, size_t len, const float *x,
                                  size_t x_stride, const float *dy, size_t dy_stride,
                                  const float *m, double *sdy, double *sdyx);
typedef bnorm_f32_dot_kernel *bnorm_f32_dot_fn;

/*
 * Training forward's two passes over two blocks of planes at once: the moments of
 * block M (exactly moments_planes(count, len, xm, xm_stride, k, s1, s2)) and the
 * centered apply of block A (exactly apply_planes(count, len, xa, xa_stride, ya,
 * ya_stride, a, b, m, -inf, +inf, BNORM_KF_CENTER)), bit for bit what the two calls
 * give one after the other. One pass over both lets the apply's loads and stores
 * overlap the moments' arithmetic. ya may equal xa (same stride); otherwise no
 * output overlaps an input. An ISA without a fused loop composes the two calls.
 */
typedef void bnorm_f32_moments_apply_kernel(size_t count, size_t len, const float *xm,
                                            size_t xm_stride, const float *k, double *s1,
                                            double *s2, const float *xa, size_t xa_stride,
                                            float *ya, size_t ya_stride, const float *a,
                                            const float *b, const float *m);
typedef bnorm_f32_moments_apply_kernel *bnorm_f32_moments_apply_fn;

/*
 * Training backward's two passes over two blocks of planes at once: the dot products
 * of block D (exactly dot_planes(count, len, x, x_stride, dy, dy_stride, m, sdy,
 * sdyx)) and the two-input apply of block A (exactly apply2_planes(count, len, xa,
 * xa_stride, dya, dya_stride, dxa, dxa_stride, a, b, ma, k)), bit for bit what the
 * two calls give one after the other, in one pass. dxa may equal dya (same stride);
 * otherwise no output overlaps an input. An ISA without a fused loop composes them.
 */
typedef void bnorm_f32_dot_apply2_kernel(size_t count, size_t len, const float *x,
                                         size_t x_stride, const float *dy, size_t dy_stride,
                                         const float *m, double *sdy, double *sdyx,
                                         const float *xa, size_t xa_stride,
                                         const float *dya, size_t dya_stride, float *dxa,
                                         size_t dxa_stride, const float *a, const float *b,
                                         const float *ma, const float *k);
typedef bnorm_f32_dot_apply2_kernel *bnorm_f32_dot_apply2_fn;

/*
 * Inference fold, for i < c:
 *   s = (double)gamma[i] / sqrt((double)var[i] + eps)
 *   scale[i] = (float)s,  shift[i] = (float)((double)beta[i] - (double)mean[i] * s)
 * each double operation rounded once as written (no contraction), so every ISA
 * writes the formula's bits (kernels/fold_formula.h); NaN inputs give NaN, of any
 * payload. A NULL gamma or beta is the constant 1 or 0; a NULL mean drops the
 * product (shift[i] = (float)beta[i], also where s is infinite or NaN: the frozen
 * backward's dx = dy * scale). The outputs overlap no input.
 */
typedef void bnorm_f32_fold_kernel(size_t c, const float *gamma, const float *beta,
                                   const float *mean, const float *var, float eps,
                                   float *scale, float *shift);
typedef bnorm_f32_fold_kernel *bnorm_f32_fold_fn;

/*
 * fold_pipelined: exactly fold, bit for bit, for the folds that run beside an apply:
 * bnorm_inference folds one image's dense planes of 40 floats or more
 * (src/inference.c) BNORM_FOLD_PIPE channels at a time and applies each block after
 * folding it, so the apply's loads and stores run beside the fold (fold_apply_row,
 * below, is defined by it too). A fold that trades the divider's work for other
 * units' (AVX2's estimate) should not here: the divider is otherwise idle, and the
 * other units are the apply's. An ISA without such a trade runs its fold.
 */
#define BNORM_FOLD_PIPE 32

/*
 * fold_apply_row: one row of c channels (one image of one pixel), exactly as the
 * table's fold_pipelined into scale and shift followed by its apply_rows(1, c, x, .,
 * y, ., scale, shift, NULL, lo, hi, flags), bit for bit, for flags 0 or
 * BNORM_KF_CLAMP; y may equal x, and otherwise overlaps no input. bnorm_inference
 * calls it for a tensor of one such row: the whole call is then the fold's latency
 * and a few vectors, so a kernel may keep each vector's coefficients in registers
 * and apply them as they come (AVX2), instead of storing them and loading them back
 * in a second call; an ISA without such a kernel composes the two (fold_row.h).
 */
typedef void bnorm_f32_fold_apply_row_kernel(size_t c, const float *x, float *y,
                                             const float *gamma, const float *beta,
                                             const float *mean, const float *var,
                                             float eps, float lo, float hi,
                                             unsigned flags);
typedef bnorm_f32_fold_apply_row_kernel *bnorm_f32_fold_apply_row_fn;

/*
 * Training's fold, the part the divider runs: for i < c,
 *   inv[i] = 1 / sqrt(var[i] + eps)
 * in double (var is the batch variance, in double), each operation rounded once,
 * so every ISA writes the formula's bits (kernels/fold_formula.h). inv overlaps
 * no input.
 */
typedef void bnorm_f64_inv_std_kernel(size_t c, const double *var, float eps, double *inv);
typedef bnorm_f64_inv_std_kernel *bnorm_f64_inv_std_fn;

typedef struct bnorm_kernels {
    bnorm_isa isa;
    const char *name;
    bnorm_f32_apply_fn apply_planes, apply_planes_dense, apply_rows;
    bnorm_f32_apply2_fn apply2_planes, apply2_rows;
    bnorm_f32_moments_fn moments_planes, moments_rows;
    bnorm_f32_dot_fn dot_planes, dot_rows;
    bnorm_f32_moments_apply_fn moments_apply_planes;
    bnorm_f32_dot_apply2_fn dot_apply2_planes;
    bnorm_f32_fold_fn fold, fold_pipelined;
    bnorm_f32_fold_apply_row_fn fold_apply_row;
    bnorm_f64_inv_std_fn inv_std;
} bnorm_kernels;

/* Declares every kernel and the table of one ISA (through the kernel types above,
 * so each signature is written once). */
#define BNORM_DECLARE_KERNELS(suffix)                                               \
    bnorm_f32_apply_kernel bnorm_f32_apply_planes__##suffix,                        \
        bnorm_f32_apply_planes_dense__##suffix, bnorm_f32_apply_rows__##suffix;      \
    bnorm_f32_apply2_kernel bnorm_f32_apply2_planes__##suffix,                      \
        bnorm_f32_apply2_rows__##suffix;                                            \
    bnorm_f32_moments_kernel bnorm_f32_moments_planes__##suffix,                    \
        bnorm_f32_moments_rows__##suffix;                                           \
    bnorm_f32_dot_kernel bnorm_f32_dot_planes__##suffix, bnorm_f32_dot_rows__##suffix; \
    bnorm_f32_moments_apply_kernel bnorm_f32_moments_apply_planes__##suffix;        \
    bnorm_f32_dot_apply2_kernel bnorm_f32_dot_apply2_planes__##suffix;              \
    bnorm_f32_fold_kernel bnorm_f32_fold__##suffix, bnorm_f32_fold_pipelined__##suffix; \
    bnorm_f32_fold_apply_row_kernel bnorm_f32_fold_apply_row__##suffix;             \
    bnorm_f64_inv_std_kernel bnorm_f64_inv_std__##suffix;                           \
    extern const bnorm_kernels bnorm_kernels_##suffix

/* Defines the table of one ISA; used once, in kernels/<isa>/table.c. */
#define BNORM_DEFINE_KERNELS(isa_enum, suffix)                                       \
    const bnorm_kernels bnorm_kernels_##suffix = {                                  \
        .isa = isa_enum,                                                            \
        .name = #suffix,                                                            \
        .apply_planes = bnorm_f32_apply_planes__##suffix,                           \
        .apply_planes_dense = bnorm_f32_apply_planes_dense__##suffix,               \
        .apply_rows = bnorm_f32_apply_rows__##suffix,                               \
        .apply2_planes = bnorm_f32_apply2_planes__##suffix,                         \
        .apply2_rows = bnorm_f32_apply2_rows__##suffix,                             \
        .moments_planes = bnorm_f32_moments_planes__##suffix,                       \
        .moments_rows = bnorm_f32_moments_rows__##suffix,                           \
        .dot_planes = bnorm_f32_dot_planes__##suffix,                               \
        .dot_rows = bnorm_f32_dot_rows__##suffix,                                   \
        .moments_apply_planes = bnorm_f32_moments_apply_planes__##suffix,           \
        .dot_apply2_planes = bnorm_f32_dot_apply2_planes__##suffix,                 \
        .fold = bnorm_f32_fold__##suffix,                                           \
        .fold_pipelined = bnorm_f32_fold_pipelined__##suffix,                       \
        .fold_apply_row = bnorm_f32_fold_apply_row__##suffix,                       \
        .inv_std = bnorm_f64_inv_std__##suffix,                                     \
    }

BNORM_DECLARE_KERNELS(scalar);
BNORM_DECLARE_KERNELS(avx2);
BNORM_DECLARE_KERNELS(neon);

#endif /* BNORM_KERNELS_H */
