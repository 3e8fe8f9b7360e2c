/*
 * Loop planning for the affine-apply family (internal).
 *
 * A plan turns a tensor (layout, strides, a channel range) into `groups x items`
 * independent work items, each one kernel span of `len` contiguous elements:
 *   - NCHW: items are channel planes (per-plane scale and shift); planes that
 *     follow each other (inner stride == spatial) go to apply_planes_dense, which
 *     walks each call's run of planes as one array;
 *   - NHWC, and NCHW with spatial == 1: items are rows of channels (per-element
 *     scale and shift);
 *   - a dense tensor of rows whose scale/shift repeat with a short period C is one
 *     long array: items are rows of a pattern of whole periods, P = a multiple of
 *     lcm(C, 8) >= 64 floats (>= BNORM_STREAM_SPAN_MIN when streamed), so small C
 *     costs no per-row tail;
 *   - rows of more than 1024 floats, where x and y are small enough to be in cache,
 *     run in column strips: each strip down all of a call's rows, then the next
 *     (apply_plan.c says why).
 * bnorm_apply_plan_run(plan, begin, end) runs any sub-range of the items; any split
 * of [0, bnorm_apply_plan_items(plan)) gives the same result, bit for bit, which is
 * what bnorm_apply_plan_execute relies on to spread the items over threads (planes
 * fewer than their tasks are split into spans too: the apply is elementwise).
 */
#ifndef BNORM_APPLY_PLAN_H
#define BNORM_APPLY_PLAN_H

#include <stdbool.h>

#include "dispatch.h"
#include "kernels.h"
#include "tensor.h"

/* Elements per task of an apply split over a pool: large enough that a task costs
 * far more than its dispatch. */
#define BNORM_TASK_ELEMENTS ((size_t)32 << 10)

/* Tasks for an apply of `elements` over a pool: about BNORM_TASK_ELEMENTS each, and
 * when more than one, a multiple of 4 (so 2 or 4 threads get equal shares). */
size_t bnorm_task_count(size_t elements);

/* Items per task for items of len elements: about BNORM_TASK_ELEMENTS each, all
 * tasks equal but the last (the items cut into equal parts). */
size_t bnorm_task_items(size_t items, size_t len);

/* Pattern capacity in floats (per array); periods whose P exceeds it are not
 * expanded. */
#define BNORM_PATTERN_MAX 512

typedef struct bnorm_apply_plan {
    bnorm_f32_apply_fn fn;
    bool per_item_ab; /* planes: a[item], b[item]; rows: a[0..len), b[0..len) */
    size_t groups, items;
    size_t len, last_len; /* the plan's very last item spans last_len elements */
    size_t strip;         /* rows run in column strips of this many floats (< len), or
                             whole (len) */
    const float *x;
    size_t x_item, x_group;
    float *y;
    size_t y_item, y_group;
    const float *a, *b, *m; /* m: centers, NULL for the plain form */
    float lo, hi;
    unsigned flags;
} bnorm_apply_plan;

/* The periodic row length for period c (channels) over total elements, or 0 if no
 * pattern helps: the shortest run of whole vectors of whole periods (a multiple of
 * lcm(c, 8)) of at least 64 floats, at most BNORM_PATTERN_MAX. Training's rows
 * reductions use the same rows. */
size_t bnorm_pattern_len(size_t c, size_t total);

/* Scratch for the periodic plan's expanded scale and shift; lives on the caller's
 * stack for as long as the plan runs. */
typedef struct bnorm_apply_pattern {
    BNORM_LINE_ALIGNED float a[BNORM_PATTERN_MAX];
    BNORM_LINE_ALIGNED float b[BNORM_PATTERN_MAX];
    BNORM_LINE_ALIGNED float m[BNORM_PATTERN_MAX];
} bnorm_apply_pattern;

/*
 * Plans y = act(x * a[c] + b[c]), or act((x - m[c]) * a[c] + b[c]) when m is not
 * NULL, over channels [c0, c1) of a checked tensor; a, b and m hold the c1 - c0
 * values of that range. With `pattern` non-NULL and the range covering every
 * channel, a dense row tensor gets the periodic plan: rows of bnorm_pattern_len's
 * length, or of at least 256 floats when the output is streamed.
 */
void bnorm_apply_plan_init(bnorm_apply_plan *plan, const bnorm_kernels *k,
                           const bnorm_shape *shape, const bnorm_geom *gx,
                           const bnorm_geom *gy, const float *x, float *y, size_t c0,
                           size_t c1, const float *a, const float *b, const float *m,
                           float lo, float hi, bool clamp, bnorm_apply_pattern *pattern);

size_t bnorm_apply_plan_items(const bnorm_apply_plan *plan);

/* An output large enough to be written with non-temporal stores. Inline, as the next
 * two: the one-row apply asks them on every call, and a small output's answer is its
 * size test. */
static inline bool bnorm_large_output(const bnorm_geom *gy)
{
    size_t bytes = gy->extent * sizeof(float);
    return bytes >= BNORM_STREAM_MIN_BYTES && bytes >= bnorm_stream_threshold();
}

/* Streamed spans shorter than BNORM_STREAM_SPAN_MIN floats each start or end in part
 * of a line too often: written around the cache they cost more than through it (Zen
 * 4, AVX2, 64 MiB of planes of 9 floats: 36 ms streamed, 5.1 not). Dense planes of a
 * vector or more are exempt: apply_planes_dense may walk them as one run (AVX2 does,
 * streamed, under 256 floats: planes of 9 5.4 ms, of 49 3.5). */
static inline bool bnorm_long_spans(size_t len, bool dense_planes)
{
    return len >= BNORM_STREAM_SPAN_MIN || (dense_planes && len >= 8);
}

/* Whether the tensor gy describes, written in spans of len floats (dense_planes:
 * planes that follow each other, which apply_planes_dense writes), is written with
 * non-temporal stores (BNORM_KF_STREAM): it is at least the stream threshold (and
 * 1 MiB), and its spans are long enough to start and end on lines mostly. Every
 * apply that passes the flag itself asks this, as the plans do (whose flat ranges
 * of rows then stream the short pieces at their ends too, beside the rows they
 * continue). */
static inline bool bnorm_apply_streams(const bnorm_geom *gy, size_t len, bool dense_planes)
{
    return bnorm_large_output(gy) && bnorm_long_spans(len, dense_planes);
}

void bnorm_apply_plan_run(const bnorm_apply_plan *plan, size_t begin, size_t end);

/* bnorm_apply_plan_run for a bnorm_range_fn (parallel.h): plan is the plan. */
void bnorm_apply_plan_range(const void *plan, size_t begin, size_t end);

/* Runs the whole plan, split into tasks fixed by the shape (items, spans of planes
 * fewer than the tasks, or equal ranges of rows that follow each other) through the
 * host's parallel-for if the calling thread has one. */
void bnorm_apply_plan_execute(const bnorm_apply_plan *plan);

/* bnorm_apply_channels through a plan (bnorm_apply_plan_init with a pattern, then
 * bnorm_apply_plan_execute, or the one kernel call the plan would make). */
void bnorm_apply_channels_planned(const bnorm_kernels *k, const bnorm_shape *shape,
                                  const bnorm_geom *gx, const bnorm_geom *gy,
                                  const float *x, float *y, size_t c0, size_t c1,
                                  const float *a, const float *b, float lo, float hi,
                                  bool clamp);

/* Runs y = act(x * a[c] + b[c]) over channels [c0, c1): one row of channels (one pixel
 * of one image, unit channel step) by the kernel right away, anything else through a
 * plan. Inline: a small tensor's time is the call's fixed cost. */
static inline void bnorm_apply_channels(const bnorm_kernels *k, const bnorm_shape *shape,
                                        const bnorm_geom *gx, const bnorm_geom *gy,
                                        const float *x, float *y, size_t c0, size_t c1,
                                        const float *a, const float *b, float lo,
                                        float hi, bool clamp)
{
    if (shape->n == 1 && shape->spatial == 1 &&
        bnorm_walks_rows(shape, gx->inner == 1 && gy->inner == 1)) {
        size_t nc = c1 - c0;
        unsigned flags = (clamp ? BNORM_KF_CLAMP : 0) |
                         (bnorm_apply_streams(gy, nc, false) ? BNORM_KF_STREAM : 0);
        k->apply_rows(1, nc, x + c0, nc, y + c0, nc, a, b, NULL, lo, hi, flags);
        return;
    }
    bnorm_apply_channels_planned(k, shape, gx, gy, x, y, c0, c1, a, b, lo, hi, clamp);
}

#endif
