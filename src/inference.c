/* Inference: fold, apply, and both in one call; the frozen-statistics backward,
 * which is the same computation. */
#include "apply_plan.h"
#include "dispatch.h"
#include "ops.h"
#include "parallel.h"
#include "tensor.h"

/* Channels per range, at least, for channel ranges over rows (bnorm_inference with a
 * pool, below): 1 KB of every row. */
#define INFER_COLS_MIN 256

/* Channels folded per block by bnorm_inference (but over one image's planes:
 * fold_apply_planes): bounds its stack use (16 KB). A block's apply is one pass over
 * part of every row (NHWC), and partial rows cost what whole ones do from the LLC or
 * memory: blocks of 512 channels against 2048, AVX2, one thread, us: 4x1024x14x14
 * NHWC 308 -> 238 (the apply alone, folded once: 236), 1x768x1000 306 -> 226,
 * 8x2048x7x7 357 -> 242, 1x1024x14x14 27 -> 23. Rows in L2 lose too: 1x2048x7x7 NHWC
 * in column blocks of 256 down to 16 channels, each folded and then applied as
 * fold_apply_planes does planes, 9.8 to 24 us against 9.3 in one block. */
#define FOLD_BLOCK 2048

bnorm_status bnorm_fold(size_t c, const float *gamma, const float *beta,
                        const float *mean, const float *var, float eps, float *scale,
                        float *shift)
{
    if (!mean || !var || !scale || !shift)
        return BNORM_ERR_NULL_POINTER;
    if (c == 0)
        return BNORM_ERR_BAD_SHAPE;
    if (c > PTRDIFF_MAX / sizeof(float))
        return BNORM_ERR_OVERFLOW;
    bnorm_status st = bnorm_check_variance(c, var, eps);
    if (st != BNORM_OK)
        return st;
    const float *inputs[] = {gamma, beta, mean, var};
    if (bnorm_overlaps_any(scale, c, inputs, 4, c) ||
        bnorm_overlaps_any(shift, c, inputs, 4, c) || bnorm_overlaps(scale, c, shift, c))
        return BNORM_ERR_ALIAS;
    bnorm_active_kernels()->fold(c, gamma, beta, mean, var, eps, scale, shift);
    return BNORM_OK;
}

/* The checks common to both apply forms; on success fills the geometries (the dense
 * one resolved once, for both tensors) and the activation's kernel parameters. */
static BNORM_ALWAYS_INLINE bnorm_status
check_apply(const bnorm_shape *shape, const float *x, const bnorm_strides *x_strides,
            const float *y, const bnorm_strides *y_strides, const bnorm_activation *act,
            bnorm_geom *gx, bnorm_geom *gy, float *lo, float *hi, bool *clamp)
{
    bnorm_status st;
    /* Stored from registers into both: GCC copied *gx to *gy with a 16-byte load of
     * the two 8-byte stores just made, which the store buffer cannot forward. */
    bnorm_geom dense;
    if ((st = bnorm_check_shape_geom(shape, &dense)) != BNORM_OK)
        return st;
    *gx = dense;
    *gy = dense;
    if ((x_strides && (st = bnorm_resolve_geom(shape, x_strides, gx)) != BNORM_OK) ||
        (y_strides && (st = bnorm_resolve_geom(shape, y_strides, gy)) != BNORM_OK))
        return st;
    if ((st = bnorm_check_activation(act, lo, hi, clamp)) != BNORM_OK)
        return st;
    bool in_place = x == y && gx->inner == gy->inner && gx->batch == gy->batch;
    if (!in_place && bnorm_overlaps(x, gx->extent, y, gy->extent))
        return BNORM_ERR_ALIAS;
    return BNORM_OK;
}

/* bnorm_inference_apply with table k; inlined into both entry points, so the public
 * one makes no call of nine arguments through the internal one. */
static BNORM_ALWAYS_INLINE bnorm_status
inference_apply(const bnorm_kernels *k, const bnorm_shape *shape, const float *x,
                const bnorm_strides *x_strides, float *y, const bnorm_strides *y_strides,
                const float *scale, const float *shift, const bnorm_activation *act)
{
    if (!shape || !x || !y || !scale || !shift)
        return BNORM_ERR_NULL_POINTER;
    bnorm_geom gx, gy;
    float lo, hi;
    bool clamp;
    bnorm_status st = check_apply(shape, x, x_strides, y, y_strides, act, &gx, &gy, &lo,
                                  &hi, &clamp);
    if (st != BNORM_OK)
        return st;
    if (bnorm_overlaps(y, gy.extent, scale, shape->c) ||
        bnorm_overlaps(y, gy.extent, shift, shape->c))
        return BNORM_ERR_ALIAS;
    bnorm_apply_channels(k, shape, &gx, &gy, x, y, 0, shape->c, scale, shift, lo, hi,
                         clamp);
    return BNORM_OK;
}

bnorm_status bnorm_inference_apply_with(const bnorm_kernels *k, const bnorm_shape *shape,
                                        const float *x, const bnorm_strides *x_strides,
                                        float *y, const bnorm_strides *y_strides,
                                        const float *scale, const float *shift,
                                        const bnorm_activation *act)
{
    return inference_apply(k, shape, x, x_strides, y, y_strides, scale, shift, act);
}

bnorm_status bnorm_inference_apply(const bnorm_shape *shape, const float *x,
                                   const bnorm_strides *x_strides, float *y,
                                   const bnorm_strides *y_strides, const float *scale,
                                   const float *shift, const bnorm_activation *act)
{
    return inference_apply(bnorm_active_kernels(), shape, x, x_strides, y, y_strides,
                           scale, shift, act);
}

/*
 * bnorm_inference over a pool, NCHW planes: channel ranges (over every image) are the
 * tasks, each folding its channels and applying them, so the fold is shared too. It
 * was serial, before the parallel apply: on 1x2048x7x7 a fifth of one thread's time;
 * two threads 8.0-8.2 -> 6.2-6.8 us. Each channel's fold and apply are the same in
 * any range: no result changes.
 * Rows (NHWC) run column ranges the same way where a range is at least
 * INFER_COLS_MIN channels (at most about 128 rows), cut on y's lines: 1x2048x7x7 NHWC
 * on two threads 8.1-8.4 -> 6.1-6.4 us (tensors on a page; 16 bytes past one,
 * 9.3-11.9 -> 7.6-8.2). Other rows keep the serial fold, then the apply's tasks
 * (for dense rows, element ranges: apply_plan.c), which all read every channel's
 * scale and shift from the caller's stack: narrower ranges were slower than that
 * (1x1024x14x14 NHWC in eight ranges of 128: one thread 30 us against 24 serially;
 * two threads 24-25 us, against 12-13 with row tasks).
 */
typedef struct infer_job {
    const bnorm_kernels *k;
    const bnorm_shape *shape;
    const bnorm_geom *gx, *gy;
    const float *x;
    float *y;
    const float *gamma, *beta, *mean, *var;
    float eps, lo, hi;
    bool clamp;
} infer_job;

/* Whether the apply of a tensor walks rows rather than planes. */
static BNORM_ALWAYS_INLINE bool rows_of(const bnorm_shape *shape, const bnorm_geom *gx,
                                        const bnorm_geom *gy)
{
    return bnorm_walks_rows(shape, gx->inner == 1 && gy->inner == 1);
}

/* Floats per plane from which bnorm_inference runs one image's planes through
 * fold_apply_planes (below). */
#define PIPE_PLANE_MIN 40

/* One image's planes, one after another in x and y, folded and applied
 * BNORM_FOLD_PIPE channels at a time by the kernels themselves: a block's fold (the
 * divider's work) then runs beside its neighbours' apply (the load and store ports')
 * in the core's reordering window, where a whole fold before the whole apply ran
 * alone. AVX2, one thread, 1x2048x7x7: 9.8 -> 8.5 us, against 7.9 for the apply
 * folded once (bench/README.md). Planes of fewer than PIPE_PLANE_MIN floats keep one
 * long fold: there the fold is most of the call, and a long one is faster (the AVX2
 * estimate); 1x2048xS, AVX2, best of 20 alternating runs of each, us: S = 2..32 5.8-7.9
 * one fold, 6.9-8.3 in blocks; S = 36 7.6 and 7.4; S = 40..64 8.2-11.8 against
 * 7.5-10.9 (the scalar table within 4% either way). */
static BNORM_ALWAYS_INLINE void
fold_apply_planes(const bnorm_kernels *k, const bnorm_shape *shape, const bnorm_geom *gy,
                  const float *x, float *y, const float *gamma, const float *beta,
                  const float *mean, const float *var, float eps, float lo, float hi,
                  bool clamp, size_t c0, size_t c1)
{
    BNORM_LINE_ALIGNED float scale[BNORM_FOLD_PIPE];
    BNORM_LINE_ALIGNED float shift[BNORM_FOLD_PIPE];
    size_t len = shape->spatial;
    unsigned flags = (clamp ? BNORM_KF_CLAMP : 0) |
                     (bnorm_apply_streams(gy, len, true) ? BNORM_KF_STREAM : 0);
    for (; c0 < c1; c0 += BNORM_FOLD_PIPE) {
        size_t nb = c1 - c0 < BNORM_FOLD_PIPE ? c1 - c0 : BNORM_FOLD_PIPE;
        k->fold_pipelined(nb, gamma ? gamma + c0 : NULL, beta ? beta + c0 : NULL,
                          mean ? mean + c0 : NULL, var + c0, eps, scale, shift);
        k->apply_planes_dense(nb, len, x + c0 * len, len, y + c0 * len, len, scale, shift,
                              NULL, lo, hi, flags);
    }
}

/* Folds channels [c0, c1) onto the stack a block at a time and applies each block:
 * as a pool's task (the block's plan runs here), or for the whole call
 * (bnorm_apply_channels, which with a pool splits the apply into tasks); one image's
 * planes, where this thread applies them all, by fold_apply_planes. Out of line: its
 * 64-byte-aligned arrays would make every entry point realign its frame, which a
 * tiny call pays for (ONE_ROW_MAX). */
static __attribute__((noinline)) void
fold_apply(const bnorm_kernels *k, const bnorm_shape *shape, const bnorm_geom *gx,
           const bnorm_geom *gy, const float *x, float *y, const float *gamma,
           const float *beta, const float *mean, const float *var, float eps, float lo,
           float hi, bool clamp, size_t c0, size_t c1, bool task)
{
    bool this_thread = task || !bnorm_parallel_active() ||
                       (c1 - c0) * shape->spatial <= BNORM_TASK_ELEMENTS;
    if (this_thread && shape->n == 1 && shape->spatial >= PIPE_PLANE_MIN &&
        !rows_of(shape, gx, gy) && gx->inner == shape->spatial &&
        gy->inner == shape->spatial) {
        fold_apply_planes(k, shape, gy, x, y, gamma, beta, mean, var, eps, lo, hi, clamp,
                          c0, c1);
        return;
    }
    BNORM_LINE_ALIGNED float scale[FOLD_BLOCK];
    BNORM_LINE_ALIGNED float shift[FOLD_BLOCK];
    for (; c0 < c1; c0 += FOLD_BLOCK) {
        size_t b1 = c1 - c0 < FOLD_BLOCK ? c1 : c0 + FOLD_BLOCK;
        k->fold(b1 - c0, gamma ? gamma + c0 : NULL, beta ? beta + c0 : NULL,
                mean ? mean + c0 : NULL, var + c0, eps, scale, shift);
        if (task) {
            bnorm_apply_plan plan;
            bnorm_apply_plan_init(&plan, k, shape, gx, gy, x, y, c0, b1, scale, shift, NULL,
                                  lo, hi, clamp, NULL);
            bnorm_apply_plan_run(&plan, 0, bnorm_apply_plan_items(&plan));
        } else {
            bnorm_apply_channels(k, shape, gx, gy, x, y, c0, b1, scale, shift, lo, hi,
                                 clamp);
        }
    }
}

/* Channels up to which one row of them (one image of one pixel), dense in x and y, is
 * folded and applied in one kernel, fold_apply_row, which keeps the entry point's
 * frame free of fold_apply's aligned arrays. 1x24x1x1, AVX2, on the Zen 4 guest, ns
 * a call: 46.2-46.6 through fold_apply, 42.5-42.8 folded into the entry point's frame
 * by fold (with the AVX2 estimate), 36.7-38.1 there by fold_pipelined (the formula),
 * 28.6-29.0 by fold_apply_row (bench/README.md). */
#define ONE_ROW_MAX 256

static void infer_range(const void *job, size_t c0, size_t c1)
{
    const infer_job *j = job;
    fold_apply(j->k, j->shape, j->gx, j->gy, j->x, j->y, j->gamma, j->beta, j->mean,
               j->var, j->eps, j->lo, j->hi, j->clamp, c0, c1, true);
}

/* Channels per range where bnorm_inference runs in channel ranges over the calling
 * thread's pool (above), else 0: tensors worth more than one task, at least a
 * channel a task (else the apply splits planes into spans), over rows at least
 * INFER_COLS_MIN. Inline: small calls leave at the first test. */
static BNORM_ALWAYS_INLINE size_t range_channels(const bnorm_shape *shape,
                                                 const bnorm_geom *gx, const bnorm_geom *gy)
{
    if (gy->extent <= BNORM_TASK_ELEMENTS) /* then so are the elements */
        return 0;
    size_t c = shape->c, elements = c * shape->n * shape->spatial;
    if (elements <= BNORM_TASK_ELEMENTS || !bnorm_parallel_active())
        return 0;
    size_t tasks = bnorm_task_count(elements);
    size_t per = c < tasks ? 0 : (c + tasks - 1) / tasks;
    return rows_of(shape, gx, gy) && per < INFER_COLS_MIN ? 0 : per;
}

/* Where channel ranges over rows write whole lines of y (bnorm_parallel_ranges): y,
 * when its rows (and images) are a whole number of lines apart; else NULL. */
static const float *infer_lines(const bnorm_shape *shape, const bnorm_geom *gy,
                                const float *y)
{
    if (shape->layout == BNORM_NCHW) /* rows: images of C */
        return gy->batch % 16 == 0 ? y : NULL;
    return gy->inner % 16 == 0 && (shape->n == 1 || gy->batch % 16 == 0) ? y : NULL;
}

/* bnorm_inference, and with mean NULL (no mean * scale term) the frozen backward;
 * inlined into each entry point, as inference_apply. */
static BNORM_ALWAYS_INLINE bnorm_status
inference(const bnorm_kernels *k, const bnorm_shape *shape, const float *x,
          const bnorm_strides *x_strides, float *y, const bnorm_strides *y_strides,
          const float *gamma, const float *beta, const float *mean, const float *var,
          float eps, const bnorm_activation *act)
{
    bnorm_geom gx, gy;
    float lo, hi;
    bool clamp;
    bnorm_status st = check_apply(shape, x, x_strides, y, y_strides, act, &gx, &gy, &lo,
                                  &hi, &clamp);
    if (st != BNORM_OK)
        return st;
    size_t c = shape->c;
    if ((st = bnorm_check_variance(c, var, eps)) != BNORM_OK)
        return st;
    const float *params[] = {gamma, beta, mean, var};
    if (bnorm_overlaps_any(y, gy.extent, params, 4, c))
        return BNORM_ERR_ALIAS;

    size_t per = range_channels(shape, &gx, &gy);
    if (per) {
        infer_job j = {k, shape, &gx, &gy, x, y, gamma, beta, mean, var, eps, lo, hi, clamp};
        bnorm_parallel_ranges(infer_range, &j, 0, c, per,
                              rows_of(shape, &gx, &gy) ? infer_lines(shape, &gy, y) : NULL);
    } else if (c <= ONE_ROW_MAX && shape->n == 1 && shape->spatial == 1 &&
               rows_of(shape, &gx, &gy)) {
        k->fold_apply_row(c, x, y, gamma, beta, mean, var, eps, lo, hi,
                          clamp ? BNORM_KF_CLAMP : 0);
    } else {
        fold_apply(k, shape, &gx, &gy, x, y, gamma, beta, mean, var, eps, lo, hi, clamp, 0,
                   c, false);
    }
    return BNORM_OK;
}

bnorm_status bnorm_inference_with(const bnorm_kernels *k, const bnorm_shape *shape,
                                  const float *x, const bnorm_strides *x_strides,
                                  float *y, const bnorm_strides *y_strides,
                                  const float *gamma, const float *beta,
                                  const float *mean, const float *var, float eps,
                                  const bnorm_activation *act)
{
    if (!shape || !x || !y || !mean || !var)
        return BNORM_ERR_NULL_POINTER;
    return inference(k, shape, x, x_strides, y, y_strides, gamma, beta, mean, var, eps,
                     act);
}

bnorm_status bnorm_inference(const bnorm_shape *shape, const float *x,
                             const bnorm_strides *x_strides, float *y,
                             const bnorm_strides *y_strides, const float *gamma,
                             const float *beta, const float *mean, const float *var,
                             float eps, const bnorm_activation *act)
{
    if (!shape || !x || !y || !mean || !var)
        return BNORM_ERR_NULL_POINTER;
    return inference(bnorm_active_kernels(), shape, x, x_strides, y, y_strides, gamma,
                     beta, mean, var, eps, act);
}

/* dx = dy * gamma / sqrt(var + eps): inference without mean and beta. */
bnorm_status bnorm_frozen_backward_with(const bnorm_kernels *k, const bnorm_shape *shape,
                                        const float *dy, const bnorm_strides *dy_strides,
                                        const float *gamma, const float *running_var,
                                        float eps, float *dx,
                                        const bnorm_strides *dx_strides)
{
    if (!shape || !dy || !dx || !running_var)
        return BNORM_ERR_NULL_POINTER;
    return inference(k, shape, dy, dy_strides, dx, dx_strides, gamma, NULL, NULL,
                     running_var, eps, NULL);
}

bnorm_status bnorm_frozen_backward(const bnorm_shape *shape, const float *dy,
                                   const bnorm_strides *dy_strides, const float *gamma,
                                   const float *running_var, float eps, float *dx,
                                   const bnorm_strides *dx_strides)
{
    return bnorm_frozen_backward_with(bnorm_active_kernels(), shape, dy, dy_strides, gamma,
                                      running_var, eps, dx, dx_strides);
}
