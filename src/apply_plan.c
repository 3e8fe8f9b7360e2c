#include <string.h>

#include "apply_plan.h"
#include "dispatch.h"
#include "parallel.h"

/* memcpy of n floats. The empty asm hides n's range from the optimizer: knowing
 * n <= BNORM_PATTERN_MAX, GCC expands memcpy inline as `rep movsq`, whose start-up
 * (tens of cycles per copy) dominated small tensors; the library call is faster. */
static void copy_floats(float *dst, const float *src, size_t n)
{
    __asm__("" : "+r"(n));
    memcpy(dst, src, n * sizeof(float));
}

/* The shortest multiple of lcm(c, 8) of at least `least` floats, if it is at most
 * BNORM_PATTERN_MAX. No division: this runs on every call, and tiny tensors are
 * dominated by such fixed costs. */
static size_t pattern_len(size_t c, size_t total, size_t least)
{
    if (c > BNORM_PATTERN_MAX || total <= c) /* one row: nothing to expand */
        return 0;
    unsigned tz = (unsigned)__builtin_ctzll((unsigned long long)c);
    size_t l = tz >= 3 ? c : c << (3 - tz); /* lcm(c, 8) */
    size_t p = l;
    while (p < least)
        p += l;
    return p <= BNORM_PATTERN_MAX ? p : 0;
}

/* (Longer patterns, up to BNORM_PATTERN_MAX, cost more to fill than they save in
 * per-row overhead in cache: measured, no consistent gain.) */
size_t bnorm_pattern_len(size_t c, size_t total)
{
    return pattern_len(c, total, 64);
}

/*
 * Rows wider than ROW_STRIP floats run in column strips where x and y together (x
 * alone in place) are under the stream threshold (half the LLC), so in cache: whole
 * rows of 2048 channels walk 16 KB of scale and shift beside every 8 KB row of x and
 * 8 KB of y, more than L1 holds, so scale and shift come from L2 with x and y; a
 * strip's 8 KB stay in L1. Zen 4, AVX2, apply_rows on warm buffers, best of
 * 20-2000, us: rows of 2048, 49: 10.3 -> 7.8 (memcpy 7.3), 196: 42.5 -> 38.1 (32.6),
 * 784: 199 -> 181 (162); 8 rows 1.70 -> 1.38; rows of 4096, 49: 30.5 -> 18.3 (16.2),
 * 392: 266 -> 175 (150). Strips of 512 or 256 gain less; rows of at most 1024 gain
 * nothing (196 of 1024: 17.0 either way). Larger tensors keep whole rows (the AVX2
 * kernel then shares the loads of scale and shift between four rows, for rows of 2048
 * or more): there a strip of a row is one page, and one pass down pages 8 KB apart,
 * from L3 or memory, defeats the prefetchers (1568 rows of 2048: 1110-1530 us in
 * strips against 670-910 whole; memcpy 520-570). A small tensor that is not in cache
 * after all (cold) runs its strips from memory in the same way: 98 rows of 2048,
 * 33-77 us against 22-47.
 */
#define ROW_STRIP 1024

/* Floats per strip for rows of len > ROW_STRIP: equal parts, whole lines. */
static size_t row_strip(size_t len)
{
    size_t parts = (len + ROW_STRIP - 1) / ROW_STRIP;
    return ((len + parts - 1) / parts + 15) & ~(size_t)15;
}

/* bnorm_apply_plan_init's body, inlined where bnorm_apply_channels plans, so that a
 * plan run as one kernel call costs no call of its own. */
static BNORM_ALWAYS_INLINE void
plan_init(bnorm_apply_plan *plan, const bnorm_kernels *k, const bnorm_shape *shape,
          const bnorm_geom *gx, const bnorm_geom *gy, const float *x, float *y, size_t c0,
          size_t c1, const float *a, const float *b, const float *m, float lo, float hi,
          bool clamp, bnorm_apply_pattern *pattern)
{
    size_t nc = c1 - c0;
    /* Field by field: zeroing the whole struct first compiled to `rep stosq`, whose
     * start-up alone was a noticeable part of a tiny tensor's time. */
    plan->per_item_ab = false;
    plan->x_group = plan->y_group = 0;
    plan->a = a;
    plan->b = b;
    plan->m = m;
    plan->lo = lo;
    plan->hi = hi;
    plan->flags = (clamp ? BNORM_KF_CLAMP : 0) | (m ? BNORM_KF_CENTER : 0);
    bool large = bnorm_large_output(gy);

    if (!bnorm_walks_rows(shape, gx->inner == 1 && gy->inner == 1)) {
        /* Planes that follow each other are one array to the kernel: no partial
         * vector at each plane's end. */
        bool dense = gx->inner == shape->spatial && gy->inner == shape->spatial;
        plan->fn = dense ? k->apply_planes_dense : k->apply_planes;
        plan->per_item_ab = true;
        plan->groups = shape->n;
        plan->items = nc;
        plan->len = shape->spatial;
        plan->x = x + c0 * gx->inner;
        plan->y = y + c0 * gy->inner;
        plan->x_item = gx->inner;
        plan->y_item = gy->inner;
        plan->x_group = gx->batch;
        plan->y_group = gy->batch;
    } else if (shape->layout == BNORM_NCHW) {
        /* spatial == 1 with unit channel stride: each image is one row of C. */
        plan->fn = k->apply_rows;
        plan->groups = 1;
        plan->items = shape->n;
        plan->len = nc;
        plan->x = x + c0;
        plan->y = y + c0;
        plan->x_item = gx->batch;
        plan->y_item = gy->batch;
    } else {
        plan->fn = k->apply_rows;
        plan->len = nc;
        plan->x = x + c0;
        plan->y = y + c0;
        plan->x_item = gx->inner;
        plan->y_item = gy->inner;
        if (shape->n == 1 || (gx->batch == shape->spatial * gx->inner &&
                              gy->batch == shape->spatial * gy->inner)) {
            plan->groups = 1; /* images follow each other at the pixel stride */
            plan->items = shape->n * shape->spatial;
        } else {
            plan->groups = shape->n;
            plan->items = shape->spatial;
            plan->x_group = gx->batch;
            plan->y_group = gy->batch;
        }
    }
    plan->last_len = plan->len;

    /* Streamed rows are at least BNORM_STREAM_SPAN_MIN floats where a pattern makes
     * them so: the streaming path's fixed cost per four rows (their heads, the step
     * count, the rest) shows at memory speed on short rows. Zen 4, AVX2, NHWC
     * 1x64x512x512 apply, rows of 64 -> 256: 3.97-4.51 -> 3.42-4.18 ms on a page,
     * 7.26 -> 4.09 ms 16 bytes past one (stream copy 3.3-4.0 ms). */
    size_t p;
    if (pattern && !plan->per_item_ab && plan->groups == 1 && nc == shape->c &&
        plan->x_item == nc && plan->y_item == nc &&
        (p = pattern_len(nc, plan->items * nc,
                         large ? BNORM_STREAM_SPAN_MIN : 64)) != 0) {
        size_t total = plan->items * nc;
        size_t fill = total < p ? total : p;
        if (p > nc) { /* p == nc: the arrays themselves are the pattern */
            /* One period, then double what is there: log2(fill / nc) copies. */
            size_t n = fill < nc ? fill : nc;
            copy_floats(pattern->a, a, n);
            copy_floats(pattern->b, b, n);
            if (m)
                copy_floats(pattern->m, m, n);
            for (size_t done = n; done < fill; done += n) {
                n = fill - done < done ? fill - done : done;
                copy_floats(pattern->a + done, pattern->a, n);
                copy_floats(pattern->b + done, pattern->b, n);
                if (m)
                    copy_floats(pattern->m + done, pattern->m, n);
            }
            plan->a = pattern->a;
            plan->b = pattern->b;
            plan->m = m ? pattern->m : NULL;
        }
        plan->len = p;
        plan->items = (total + p - 1) / p;
        plan->last_len = total - (plan->items - 1) * p;
        plan->x_item = plan->y_item = p;
    }
    if (large && bnorm_long_spans(plan->len, plan->fn == k->apply_planes_dense))
        plan->flags |= BNORM_KF_STREAM;
    plan->strip = plan->len;
    if (!plan->per_item_ab && plan->len > ROW_STRIP) {
        /* x and y (x alone in place) under the threshold */
        size_t cached = bnorm_stream_threshold() / sizeof(float);
        if (gx->extent < cached && (x == y || gy->extent < cached - gx->extent))
            plan->strip = row_strip(plan->len);
    }
}

void bnorm_apply_plan_init(bnorm_apply_plan *plan, const bnorm_kernels *k,
                           const bnorm_shape *shape, const bnorm_geom *gx,
                           const bnorm_geom *gy, const float *x, float *y, size_t c0,
                           size_t c1, const float *a, const float *b, const float *m,
                           float lo, float hi, bool clamp, bnorm_apply_pattern *pattern)
{
    plan_init(plan, k, shape, gx, gy, x, y, c0, c1, a, b, m, lo, hi, clamp, pattern);
}

size_t bnorm_apply_plan_items(const bnorm_apply_plan *plan)
{
    return plan->groups * plan->items;
}

/* The plan's kernel over n items of len floats, in the plan's column strips (rows:
 * a, b and m are then the rows' own; planes never strip, strip == len). */
static BNORM_ALWAYS_INLINE void call(const bnorm_apply_plan *p, size_t n, size_t len,
                                     const float *x, float *y, const float *a,
                                     const float *b, const float *m)
{
    for (size_t off = 0; off < len; off += p->strip) {
        size_t w = len - off < p->strip ? len - off : p->strip;
        p->fn(n, w, x + off, p->x_item, y + off, p->y_item, a + off, b + off,
              m ? m + off : NULL, p->lo, p->hi, p->flags);
    }
}

void bnorm_apply_plan_run(const bnorm_apply_plan *p, size_t begin, size_t end)
{
    size_t total = bnorm_apply_plan_items(p);
    while (begin < end) {
        size_t g = 0, i = begin; /* no division in the common one-group case */
        if (p->groups > 1) {
            g = begin / p->items;
            i = begin % p->items;
        }
        size_t n = p->items - i < end - begin ? p->items - i : end - begin;
        const float *x = p->x + g * p->x_group + i * p->x_item;
        float *y = p->y + g * p->y_group + i * p->y_item;
        const float *a = p->per_item_ab ? p->a + i : p->a;
        const float *b = p->per_item_ab ? p->b + i : p->b;
        const float *m = p->m && p->per_item_ab ? p->m + i : p->m;
        size_t full = (begin + n == total && p->last_len != p->len) ? n - 1 : n;
        if (full)
            call(p, full, p->len, x, y, a, b, m);
        if (full < n)
            call(p, 1, p->last_len, x + full * p->x_item, y + full * p->y_item,
                 p->per_item_ab ? a + full : a, p->per_item_ab ? b + full : b,
                 m && p->per_item_ab ? m + full : m);
        begin += n;
    }
}

void bnorm_apply_plan_range(const void *plan, size_t begin, size_t end)
{
    bnorm_apply_plan_run(plan, begin, end);
}

/* About BNORM_TASK_ELEMENTS per task, the items cut into equal parts: a pool that
 * gives each thread a fixed share of the tasks (static scheduling) then has balanced
 * threads, and each thread finds its share in its own cache on the next call. More
 * than one task rounds up to a multiple of 4, so 2 or 4 threads get equal shares
 * (1x512x28x28: 13 tasks left one of two threads 7, the other 6). The split depends
 * only on the shape (the results on nothing). */
size_t bnorm_task_count(size_t elements)
{
    size_t tasks = (elements + BNORM_TASK_ELEMENTS - 1) / BNORM_TASK_ELEMENTS;
    return tasks > 1 ? (tasks + 3) & ~(size_t)3 : tasks;
}

size_t bnorm_task_items(size_t items, size_t len)
{
    size_t tasks = bnorm_task_count(items * len);
    if (tasks > items)
        tasks = items;
    return (items + tasks - 1) / tasks;
}

/* Whether the plan is run on this thread as one task: it is one task long, or there
 * is no pool to give tasks to. (Its items then run in order in one
 * bnorm_apply_plan_run, without the task split's divisions and indirect calls.) */
static bool one_task(const bnorm_apply_plan *plan, size_t items)
{
    return items * plan->len <= BNORM_TASK_ELEMENTS || !bnorm_parallel_active();
}

/* Planes fewer than the tasks they are worth (1x3x224x224: 3 planes, 8 tasks): each
 * plane is cut into `parts` spans of `span` floats (a multiple of 16, the last one
 * shorter), and the spans are the tasks, as many as a multiple of 4 where that takes
 * at most 3 more parts: two threads, which had two planes and one, get equal shares
 * (1x3x224x224 apply on two threads 8.9-9.4 -> 7.1-7.4 us, one thread 11.5-13.6).
 * The apply is elementwise, so where a span starts changes no result. */
typedef struct span_job {
    const bnorm_apply_plan *plan;
    size_t parts, span;
} span_job;

static void span_task(void *context, size_t t)
{
    const span_job *j = context;
    const bnorm_apply_plan *p = j->plan;
    size_t item = t / j->parts, off = t % j->parts * j->span;
    size_t g = item / p->items, i = item % p->items;
    size_t n = p->len - off < j->span ? p->len - off : j->span;
    p->fn(1, n, p->x + g * p->x_group + i * p->x_item + off, p->x_item,
          p->y + g * p->y_group + i * p->y_item + off, p->y_item, p->a + i, p->b + i,
          p->m ? p->m + i : NULL, p->lo, p->hi, p->flags);
}

/* Rows that follow each other in x and in y (dense NHWC, or NCHW images of C at
 * spatial 1) are one array whose element e belongs to channel e % len. Over a pool
 * they run as equal ranges of that array, cut on y's lines, rather than as whole
 * rows, so that threads get equal shares however few the rows: NHWC 1x2048x7x7 in
 * four tasks of 13, 13, 13 and 10 rows left two threads 26 and 23 (OpenMP, best of
 * 3000 calls, us: 4.97-5.35 -> 4.61-4.77 on pages, 5.07-5.19 -> 4.82-4.95 malloc'd;
 * one thread 7.5-8.3). A range starts and ends inside a row; the apply is
 * elementwise, so no result changes. */
static bool flat_rows(const bnorm_apply_plan *p)
{
    return !p->per_item_ab && p->groups == 1 && p->x_item == p->len &&
           p->y_item == p->len;
}

/* Elements [e0, e1) of flat rows (a bnorm_range_fn): the rest of e0's row, whole
 * rows, then the start of e1's row. */
static void flat_range(const void *plan, size_t e0, size_t e1)
{
    const bnorm_apply_plan *p = plan;
    const float *m = p->m;
    size_t off = e0 % p->len;
    if (off) {
        size_t n = p->len - off < e1 - e0 ? p->len - off : e1 - e0;
        call(p, 1, n, p->x + e0, p->y + e0, p->a + off, p->b + off, m ? m + off : NULL);
        e0 += n;
    }
    size_t rows = (e1 - e0) / p->len;
    if (rows) {
        call(p, rows, p->len, p->x + e0, p->y + e0, p->a, p->b, m);
        e0 += rows * p->len;
    }
    if (e0 < e1)
        call(p, 1, e1 - e0, p->x + e0, p->y + e0, p->a, p->b, m);
}

void bnorm_apply_plan_execute(const bnorm_apply_plan *plan)
{
    size_t items = bnorm_apply_plan_items(plan);
    if (one_task(plan, items)) {
        bnorm_apply_plan_run(plan, 0, items);
        return;
    }
    if (flat_rows(plan)) {
        size_t elements = (items - 1) * plan->len + plan->last_len;
        size_t tasks = bnorm_task_count(elements);
        bnorm_parallel_ranges(flat_range, plan, 0, elements,
                              (elements + tasks - 1) / tasks, plan->y);
        return;
    }
    size_t tasks = bnorm_task_count(items * plan->len);
    if (tasks > items && plan->per_item_ab && plan->last_len == plan->len) {
        size_t parts = (tasks + items - 1) / items;
        while (items * parts % 4)
            parts++;
        size_t span = ((plan->len + parts - 1) / parts + 15) & ~(size_t)15;
        span_job j = {plan, (plan->len + span - 1) / span, span};
        bnorm_parallel_run(span_task, &j, items * j.parts);
        return;
    }
    bnorm_parallel_ranges(bnorm_apply_plan_range, plan, 0, items,
                          bnorm_task_items(items, plan->len), NULL);
}

void bnorm_apply_channels_planned(const bnorm_kernels *k, const bnorm_shape *shape,
                                  const bnorm_geom *gx, const bnorm_geom *gy,
                                  const float *x, float *y, size_t c0, size_t c1,
                                  const float *a, const float *b, float lo, float hi,
                                  bool clamp)
{
    bnorm_apply_pattern pattern;
    bnorm_apply_plan p;
    plan_init(&p, k, shape, gx, gy, x, y, c0, c1, a, b, NULL, lo, hi, clamp, &pattern);
    /* One group of equal items in one task is one kernel call: make it here. */
    if (p.groups == 1 && p.last_len == p.len && one_task(&p, p.items))
        call(&p, p.items, p.len, p.x, p.y, p.a, p.b, NULL);
    else
        bnorm_apply_plan_execute(&p);
}
