/*
 * Training: forward with batch statistics, backward, and backward with frozen
 * statistics. Composed from the kernel families: moments -> fold -> centered apply
 * (forward); dot -> fold -> two-input apply (backward).
 *
 * Channels are processed in blocks. For channel-contiguous data (NCHW planes) a
 * block holds as many channels as fit in half of L2, so the second pass (apply)
 * finds the block's data still cached and the tensor crosses memory once. Rows
 * (NHWC) use the widest block instead: a narrow block would read whole cache lines
 * for a few floats of each row.
 *
 * With a host pool (bnorm_set_parallel_for) the channels are first cut into ranges,
 * one per task (task_channels: at least 8 where C allows, rows in column ranges of
 * 64 floats); each range then runs the loop below on its own. Serial calls run one
 * range of all channels, which pipelines best.
 *
 * The forward over planes (unless its output is streamed) is pipelined: the moments
 * of block j run in one loop with the apply of block j - 1 (the moments_apply_planes
 * kernel), so the apply's loads and stores overlap the moments' arithmetic (AVX2, 64
 * planes of 2048 floats in L2: 5.9 -> 7.4 Gelem/s). The backward over planes, when
 * it computes dx, does the same with dot_apply2_planes (5.0 -> 5.7). The blocks in
 * flight must stay cached, so they share the cached pass (forward x twice, backward x
 * and dy twice), and there are up to 8 blocks, so that the unfused first reduction
 * and last apply are a small part. The results are the same bit for bit: the fused
 * kernels are the two kernels' operations, and every block is reduced in the same
 * order.
 *
 * Summation order is fixed by the shape: each (image, channel) plane is summed from
 * zero and planes are added in image order; rows are summed in chunks of ROW_CHUNK
 * from zero and chunks are added in order. A channel's sums never depend on the
 * blocks, ranges or threads, so results are the same for any pool, serial included.
 */
#include <math.h>
#include <string.h>

#include "apply_plan.h"
#include "dispatch.h"
#include "ops.h"
#include "parallel.h"
#include "tensor.h"

#define BLOCK 256     /* channels per block: bounds the stack (about 20 KB per task) */
#define ROW_CHUNK 256 /* rows summed from zero before they are merged */

/* How a block of channels is laid out, for up to three buffers (x, dy, out). */
typedef struct walk {
    bool rows;
    size_t groups, items, len;
    size_t g_stride[3], i_stride[3], c_stride[3];
} walk;

static void walk_init(walk *w, const bnorm_shape *s, const bnorm_geom *const g[3], size_t nc)
{
    bool unit = true;
    for (int b = 0; b < 3; b++)
        unit = unit && g[b]->inner == 1;
    memset(w, 0, sizeof *w);
    if (s->layout == BNORM_NCHW && !(s->spatial == 1 && unit)) {
        w->groups = s->n;
        w->items = nc;
        w->len = s->spatial;
        for (int b = 0; b < 3; b++) {
            w->g_stride[b] = g[b]->batch;
            w->i_stride[b] = w->c_stride[b] = g[b]->inner;
        }
        return;
    }
    w->rows = true;
    w->len = nc;
    bool nchw = s->layout == BNORM_NCHW;
    w->groups = nchw ? 1 : s->n;
    w->items = nchw ? s->n : s->spatial;
    for (int b = 0; b < 3; b++) {
        w->g_stride[b] = g[b]->batch;
        w->i_stride[b] = nchw ? g[b]->batch : g[b]->inner;
        w->c_stride[b] = 1;
    }
}

/* Per-channel sums over a block: moments of x about k (dy == NULL), or the dot
 * products of dy with x - k. s1 and s2 are zeroed here. */
static void reduce_block(const bnorm_kernels *kt, const walk *w, const float *x,
                         const float *dy, const float *k, double *s1, double *s2)
{
    size_t nc = w->rows ? w->len : w->items;
    memset(s1, 0, nc * sizeof(double));
    memset(s2, 0, nc * sizeof(double));
    if (!w->rows) {
        for (size_t g = 0; g < w->groups; g++) {
            const float *xg = x + g * w->g_stride[0];
            if (dy)
                kt->dot_planes(nc, w->len, xg, w->i_stride[0], dy + g * w->g_stride[1],
                               w->i_stride[1], k, s1, s2);
            else
                kt->moments_planes(nc, w->len, xg, w->i_stride[0], k, s1, s2);
        }
        return;
    }
    double p1[BLOCK], p2[BLOCK];
    size_t total = w->groups * w->items;
    for (size_t r0 = 0; r0 < total; r0 += ROW_CHUNK) {
        size_t r1 = total - r0 < ROW_CHUNK ? total : r0 + ROW_CHUNK;
        memset(p1, 0, nc * sizeof(double));
        memset(p2, 0, nc * sizeof(double));
        for (size_t r = r0; r < r1;) {
            size_t g = r / w->items, i = r % w->items;
            size_t cnt = w->items - i < r1 - r ? w->items - i : r1 - r;
            const float *xr = x + g * w->g_stride[0] + i * w->i_stride[0];
            if (dy)
                kt->dot_rows(cnt, nc, xr, w->i_stride[0],
                             dy + g * w->g_stride[1] + i * w->i_stride[1], w->i_stride[1],
                             k, p1, p2);
            else
                kt->moments_rows(cnt, nc, xr, w->i_stride[0], k, p1, p2);
            r += cnt;
        }
        for (size_t c = 0; c < nc; c++) {
            s1[c] += p1[c];
            s2[c] += p2[c];
        }
    }
}

/* Channels per block for a pass over m values per channel. */
static size_t block_channels(const walk *w, size_t m)
{
    if (w->rows)
        return BLOCK;
    size_t fit = bnorm_cached_pass_bytes() / (m * sizeof(float));
    return fit < 1 ? 1 : fit > BLOCK ? BLOCK : fit;
}

/* Channels per block for a pipelined pass: `arrays` block-sized inputs in flight (the
 * block being reduced and the one being applied: forward x and x, backward x, dy and
 * x, dy) share the cached pass, and up to 8 blocks (see the top), but no fewer than
 * PIPE_MIN_ELEMS values per block: each step has a fixed cost (fold, calls), and on
 * a 64x48 tensor eight blocks made the backward 14% slower than one. */
#define PIPE_MIN_ELEMS 2048
static size_t pipe_block_channels(size_t c, size_t m, size_t arrays)
{
    size_t fit = bnorm_cached_pass_bytes() / arrays / (m * sizeof(float));
    size_t eighth = (c + 7) / 8;
    size_t least = (PIPE_MIN_ELEMS + m - 1) / m;
    size_t nb = fit < eighth ? fit : eighth;
    if (nb < least)
        nb = least;
    return nb < 1 ? 1 : nb > BLOCK ? BLOCK : nb;
}

/*
 * Channels per task when a pool shares the work: planes as many as fit in half of L2,
 * but at least 8 tasks where C allows; rows column ranges of whole groups of 4 cache
 * lines (64 floats), about C / 8 wide. Ranges are balanced: C is cut into equal
 * parts. Every channel's sums are independent of the ranges: no result changes.
 */
static size_t task_channels(const walk *w, size_t c, size_t m)
{
    size_t fit;
    if (w->rows) {
        fit = ((c + 7) / 8 + 63) / 64 * 64;
    } else {
        fit = bnorm_cached_pass_bytes() / (m * sizeof(float));
        if (fit < 1)
            fit = 1;
    }
    if (fit > BLOCK)
        fit = BLOCK;
    size_t tasks = (c + fit - 1) / fit;
    if (!w->rows && tasks < 8)
        tasks = c < 8 ? c : 8;
    return (c + tasks - 1) / tasks;
}

/* Splits channels [0, c) into ranges of `per` and runs range(job, c0, c1) for each:
 * through the pool as tasks if the calling thread has one, else one range of all. */
typedef struct ranges {
    void (*range)(const void *job, size_t c0, size_t c1);
    const void *job;
    size_t c, per;
} ranges;

static void range_task(void *context, size_t t)
{
    const ranges *r = context;
    size_t c0 = t * r->per;
    r->range(r->job, c0, r->c - c0 < r->per ? r->c : c0 + r->per);
}

static void run_ranges(void (*range)(const void *, size_t, size_t), const void *job,
                       size_t c, size_t per)
{
    if (!bnorm_parallel_active() || per >= c) {
        range(job, 0, c);
        return;
    }
    ranges r = {range, job, c, per};
    bnorm_parallel_run(range_task, &r, (c + per - 1) / per);
}

static bnorm_status check_momentum(const bnorm_running_stats *r)
{
    if (!r)
        return BNORM_OK;
    if (!r->mean || !r->var)
        return BNORM_ERR_NULL_POINTER;
    if (r->convention != BNORM_MOMENTUM_PYTORCH && r->convention != BNORM_MOMENTUM_ONNX)
        return BNORM_ERR_BAD_ENUM;
    if (!(r->momentum >= 0.0f && r->momentum <= 1.0f))
        return BNORM_ERR_BAD_VALUE;
    return BNORM_OK;
}

/* Shape, m >= 2, and the geometry of every tensor argument. */
static bnorm_status check_tensors(const bnorm_shape *shape, const bnorm_strides *const st[],
                                  bnorm_geom g[], int count)
{
    bnorm_status s = bnorm_check_shape(shape);
    if (s != BNORM_OK)
        return s;
    if (shape->n * shape->spatial < 2)
        return BNORM_ERR_BAD_SHAPE;
    for (int i = 0; i < count; i++)
        if ((s = bnorm_resolve_geom(shape, st[i], &g[i])) != BNORM_OK)
            return s;
    return BNORM_OK;
}

/* An output region, for the overlap checks. */
typedef struct region {
    const void *p;
    size_t count;
} region;

/* Every output against every input and every other output, except the one allowed
 * in-place pair (out[0] == in[inplace] with equal geometry, inplace >= 0). */
static bool any_overlap(const region *out, int nout, const region *in, int nin, int inplace,
                        bool inplace_ok)
{
    for (int o = 0; o < nout; o++) {
        if (!out[o].p)
            continue;
        for (int i = 0; i < nin; i++) {
            if (!in[i].p || (o == 0 && i == inplace && inplace_ok && out[o].p == in[i].p))
                continue;
            if (bnorm_overlaps(out[o].p, out[o].count, in[i].p, in[i].count))
                return true;
        }
        for (int q = o + 1; q < nout; q++)
            if (out[q].p && bnorm_overlaps(out[o].p, out[o].count, out[q].p, out[q].count))
                return true;
    }
    return false;
}

/* A block of channels folded by the forward: y = (x - m) * a + b. */
typedef struct fwd_block {
    size_t c0, nc;
    float a[BLOCK], b[BLOCK], m[BLOCK];
} fwd_block;

/* The forward's apply pass over one folded block. */
static void fwd_apply(const bnorm_kernels *kt, const bnorm_shape *shape,
                      const bnorm_geom g[2], const float *x, float *y, const fwd_block *fb,
                      bnorm_apply_pattern *pattern, bool pool)
{
    bnorm_apply_plan plan;
    bnorm_apply_plan_init(&plan, kt, shape, &g[0], &g[1], x, y, fb->c0, fb->c0 + fb->nc,
                          fb->a, fb->b, fb->m, -INFINITY, INFINITY, false, pattern);
    if (pool)
        bnorm_apply_plan_execute(&plan);
    else
        bnorm_apply_plan_run(&plan, 0, bnorm_apply_plan_items(&plan));
}

typedef struct fwd_job {
    const bnorm_kernels *kt;
    const bnorm_shape *shape;
    bnorm_geom g[2];
    walk w;
    const float *x;
    float *y;
    const float *gamma, *beta;
    float eps;
    float *save_mean, *save_invstd;
    const bnorm_running_stats *running;
    double m;
    bool pipe;
} fwd_job;

/* The forward over channels [c0_range, c1). */
static void fwd_range(const void *job, size_t c0_range, size_t c1)
{
    const fwd_job *j = job;
    const bnorm_kernels *kt = j->kt;
    const bnorm_shape *shape = j->shape;
    const bnorm_geom *g = j->g;
    const walk w = j->w;
    const float *x = j->x, *gamma = j->gamma, *beta = j->beta;
    float *y = j->y, *save_mean = j->save_mean, *save_invstd = j->save_invstd;
    const bnorm_running_stats *running = j->running;
    double m = j->m;
    /* Multiplied by, not divided per channel: with small planes the two divisions
     * per channel held the divider longer than the channel's kernels ran (1x2048x7x7
     * forward: +18%). */
    double inv_m = 1.0 / m;
    float eps = j->eps;
    bool pipe = j->pipe;
    size_t c = c1 - c0_range;
    size_t block = pipe ? pipe_block_channels(c, shape->n * shape->spatial, 2)
                        : block_channels(&w, shape->n * shape->spatial);
    /* One range of every channel, with a pool: the apply pass goes through it. */
    bool pool_apply = c == shape->c && bnorm_parallel_active();
    double s1[BLOCK], s2[BLOCK];
    float k[BLOCK];
    fwd_block blk[2]; /* the block being reduced and, pipelined, the one before */
    fwd_block *cur = &blk[0], *prev = NULL;
    bnorm_apply_pattern pattern;
    for (size_t c0 = c0_range; c0 < c1; c0 += block) {
        size_t nc = c1 - c0 < block ? c1 - c0 : block;
        for (size_t j = 0; j < nc; j++)
            k[j] = x[(c0 + j) * w.c_stride[0]]; /* the shift: the channel's first value */
        if (prev && prev->nc == nc) {
            /* moments of this block fused with the apply of the previous one */
            memset(s1, 0, nc * sizeof(double));
            memset(s2, 0, nc * sizeof(double));
            for (size_t gi = 0; gi < w.groups; gi++) {
                const float *xg = x + gi * w.g_stride[0];
                kt->moments_apply_planes(nc, w.len, xg + c0 * w.i_stride[0], w.i_stride[0],
                                         k, s1, s2, xg + prev->c0 * w.i_stride[0],
                                         w.i_stride[0],
                                         y + gi * w.g_stride[2] + prev->c0 * w.i_stride[2],
                                         w.i_stride[2], prev->a, prev->b, prev->m);
            }
        } else {
            if (prev)
                fwd_apply(kt, shape, g, x, y, prev, &pattern, pool_apply);
            walk wb = w;
            if (wb.rows)
                wb.len = nc;
            else
                wb.items = nc;
            reduce_block(kt, &wb, x + c0 * w.c_stride[0], NULL, k, s1, s2);
        }
        cur->c0 = c0;
        cur->nc = nc;
        for (size_t j = 0; j < nc; j++) {
            double d = s1[j] * inv_m, mean = k[j] + d;
            double var = s2[j] * inv_m - d * d;
            if (var < 0.0) /* rounding; NaN stays NaN */
                var = 0.0;
            double invstd = 1.0 / sqrt(var + eps);
            double gm = gamma ? gamma[c0 + j] : 1.0;
            cur->a[j] = (float)(gm * invstd);
            cur->b[j] = beta ? beta[c0 + j] : 0.0f;
            cur->m[j] = (float)mean;
            if (save_mean)
                save_mean[c0 + j] = (float)mean;
            if (save_invstd)
                save_invstd[c0 + j] = (float)invstd;
            if (running) {
                bool torch = running->convention == BNORM_MOMENTUM_PYTORCH;
                double mom = running->momentum;
                double w_new = torch ? mom : 1.0 - mom, w_old = 1.0 - w_new;
                double v = torch ? var * m / (m - 1.0) : var;
                running->mean[c0 + j] = (float)(w_old * running->mean[c0 + j] + w_new * mean);
                running->var[c0 + j] = (float)(w_old * running->var[c0 + j] + w_new * v);
            }
        }
        if (pipe) { /* applied with the next block's moments, or after the loop */
            prev = cur;
            cur = cur == &blk[0] ? &blk[1] : &blk[0];
        } else {
            fwd_apply(kt, shape, g, x, y, cur, &pattern, pool_apply);
        }
    }
    if (prev)
        fwd_apply(kt, shape, g, x, y, prev, &pattern, pool_apply);
}

bnorm_status bnorm_training_forward_with(const bnorm_kernels *kt, const bnorm_shape *shape,
                                         const float *x, const bnorm_strides *x_strides,
                                         float *y, const bnorm_strides *y_strides,
                                         const float *gamma, const float *beta, float eps,
                                         float *save_mean, float *save_invstd,
                                         const bnorm_running_stats *running)
{
    if (!shape || !x || !y)
        return BNORM_ERR_NULL_POINTER;
    bnorm_status st = check_momentum(running);
    if (st != BNORM_OK)
        return st;
    bnorm_geom g[2];
    const bnorm_strides *strides[2] = {x_strides, y_strides};
    if ((st = check_tensors(shape, strides, g, 2)) != BNORM_OK)
        return st;
    if (!(eps >= 0.0f) || isinf(eps))
        return BNORM_ERR_BAD_VALUE;
    size_t c = shape->c;
    bool same_geom = g[0].inner == g[1].inner && g[0].batch == g[1].batch;
    region out[] = {{y, g[1].extent}, {save_mean, c}, {save_invstd, c},
                    {running ? running->mean : NULL, c}, {running ? running->var : NULL, c}};
    region in[] = {{x, g[0].extent}, {gamma, c}, {beta, c}};
    if (any_overlap(out, 5, in, 3, 0, same_geom))
        return BNORM_ERR_ALIAS;

    fwd_job j = {kt, shape, {g[0], g[1]}, {0}, x, y, gamma, beta, eps, save_mean,
                 save_invstd, running, (double)shape->n * (double)shape->spatial, false};
    const bnorm_geom *gw[3] = {&g[0], &g[0], &g[1]};
    walk_init(&j.w, shape, gw, c);
    j.pipe = !j.w.rows && !bnorm_apply_plan_streams(&g[1]);
    run_ranges(fwd_range, &j, c, task_channels(&j.w, c, shape->n * shape->spatial));
    return BNORM_OK;
}

bnorm_status bnorm_training_forward(const bnorm_shape *shape, const float *x,
                                    const bnorm_strides *x_strides, float *y,
                                    const bnorm_strides *y_strides, const float *gamma,
                                    const float *beta, float eps, float *save_mean,
                                    float *save_invstd, const bnorm_running_stats *running)
{
    return bnorm_training_forward_with(bnorm_active_kernels(), shape, x, x_strides, y,
                                       y_strides, gamma, beta, eps, save_mean, save_invstd,
                                       running);
}

/* dx = a * dy + b * (x - m) + k over a block of channels. */
static void apply2_block(const bnorm_kernels *kt, const walk *w, const float *x,
                         const float *dy, float *dx, const float *a, const float *b,
                         const float *m, const float *k)
{
    size_t nc = w->rows ? w->len : w->items;
    for (size_t g = 0; g < w->groups; g++) {
        const float *xg = x + g * w->g_stride[0], *dyg = dy + g * w->g_stride[1];
        float *dxg = dx + g * w->g_stride[2];
        if (w->rows)
            kt->apply2_rows(w->items, nc, xg, w->i_stride[0], dyg, w->i_stride[1], dxg,
                            w->i_stride[2], a, b, m, k);
        else
            kt->apply2_planes(nc, w->len, xg, w->i_stride[0], dyg, w->i_stride[1], dxg,
                              w->i_stride[2], a, b, m, k);
    }
}

/* A block of channels folded by the backward: dx = a dy + b (x - mean) + k. */
typedef struct bwd_block {
    size_t c0, nc;
    float a[BLOCK], b[BLOCK], k[BLOCK];
} bwd_block;

/* The backward's apply pass over one folded block. */
static void bwd_apply(const bnorm_kernels *kt, const walk *w, const float *x,
                      const float *dy, float *dx, const float *save_mean,
                      const bwd_block *bb)
{
    walk wb = *w;
    if (wb.rows)
        wb.len = bb->nc;
    else
        wb.items = bb->nc;
    apply2_block(kt, &wb, x + bb->c0 * w->c_stride[0], dy + bb->c0 * w->c_stride[1],
                 dx + bb->c0 * w->c_stride[2], bb->a, bb->b, save_mean + bb->c0, bb->k);
}

typedef struct bwd_job {
    const bnorm_kernels *kt;
    walk w;
    const float *x, *dy;
    float *dx;
    const float *gamma, *save_mean, *save_invstd;
    float *dgamma, *dbeta;
    double m;
    size_t mi; /* m as a count */
    bool pipe;
} bwd_job;

/* The backward over channels [c0_range, c1). */
static void bwd_range(const void *job, size_t c0_range, size_t c1)
{
    const bwd_job *j = job;
    const bnorm_kernels *kt = j->kt;
    const walk w = j->w;
    const float *x = j->x, *dy = j->dy, *gamma = j->gamma;
    const float *save_mean = j->save_mean, *save_invstd = j->save_invstd;
    float *dx = j->dx, *dgamma = j->dgamma, *dbeta = j->dbeta;
    double inv_m = 1.0 / j->m; /* as in the forward */
    bool pipe = j->pipe;
    size_t c = c1 - c0_range;
    size_t block = pipe ? pipe_block_channels(c, j->mi, 4) : block_channels(&w, j->mi);
    double sdy[BLOCK], sdyx[BLOCK];
    bwd_block blk[2]; /* the block being reduced and, pipelined, the one before */
    bwd_block *cur = &blk[0], *prev = NULL;
    for (size_t c0 = c0_range; c0 < c1; c0 += block) {
        size_t nc = c1 - c0 < block ? c1 - c0 : block;
        walk wb = w;
        if (wb.rows)
            wb.len = nc;
        else
            wb.items = nc;
        const float *xb = x + c0 * w.c_stride[0], *dyb = dy + c0 * w.c_stride[1];
        if (prev && prev->nc == nc) {
            /* dot products of this block fused with the apply of the previous one */
            size_t p0 = prev->c0;
            memset(sdy, 0, nc * sizeof(double));
            memset(sdyx, 0, nc * sizeof(double));
            for (size_t gi = 0; gi < w.groups; gi++) {
                const float *xg = x + gi * w.g_stride[0], *dyg = dy + gi * w.g_stride[1];
                kt->dot_apply2_planes(nc, w.len, xg + c0 * w.i_stride[0], w.i_stride[0],
                                      dyg + c0 * w.i_stride[1], w.i_stride[1],
                                      save_mean + c0, sdy, sdyx, xg + p0 * w.i_stride[0],
                                      w.i_stride[0], dyg + p0 * w.i_stride[1],
                                      w.i_stride[1],
                                      dx + gi * w.g_stride[2] + p0 * w.i_stride[2],
                                      w.i_stride[2], prev->a, prev->b, save_mean + p0,
                                      prev->k);
            }
        } else {
            if (prev)
                bwd_apply(kt, &w, x, dy, dx, save_mean, prev);
            reduce_block(kt, &wb, xb, dyb, save_mean + c0, sdy, sdyx);
        }
        cur->c0 = c0;
        cur->nc = nc;
        for (size_t j = 0; j < nc; j++) {
            double is = save_invstd[c0 + j], gm = gamma ? gamma[c0 + j] : 1.0;
            double dg = sdyx[j] * is;
            if (dgamma)
                dgamma[c0 + j] = (float)dg;
            if (dbeta)
                dbeta[c0 + j] = (float)sdy[j];
            cur->a[j] = (float)(gm * is);
            cur->b[j] = (float)(-gm * is * is * dg * inv_m);
            cur->k[j] = (float)(-gm * is * sdy[j] * inv_m);
        }
        if (pipe) { /* applied with the next block's dot products, or after the loop */
            prev = cur;
            cur = cur == &blk[0] ? &blk[1] : &blk[0];
        } else if (dx) {
            bwd_apply(kt, &w, x, dy, dx, save_mean, cur);
        }
    }
    if (prev)
        bwd_apply(kt, &w, x, dy, dx, save_mean, prev);
}

bnorm_status bnorm_training_backward_with(const bnorm_kernels *kt, const bnorm_shape *shape,
                                          const float *x, const bnorm_strides *x_strides,
                                          const float *dy, const bnorm_strides *dy_strides,
                                          const float *gamma, const float *save_mean,
                                          const float *save_invstd, float *dx,
                                          const bnorm_strides *dx_strides, float *dgamma,
                                          float *dbeta)
{
    if (!shape || !x || !dy || !save_mean || !save_invstd || (!dx && !dgamma && !dbeta))
        return BNORM_ERR_NULL_POINTER;
    bnorm_geom g[3];
    /* dx_strides only matter when dx is computed. */
    const bnorm_strides *strides[3] = {x_strides, dy_strides, dx ? dx_strides : NULL};
    bnorm_status st = check_tensors(shape, strides, g, 3);
    if (st != BNORM_OK)
        return st;
    size_t c = shape->c;
    bool same_geom = g[1].inner == g[2].inner && g[1].batch == g[2].batch;
    region out[] = {{dx, g[2].extent}, {dgamma, c}, {dbeta, c}};
    region in[] = {{dy, g[1].extent}, {x, g[0].extent}, {gamma, c}, {save_mean, c},
                   {save_invstd, c}};
    if (any_overlap(out, 3, in, 5, 0, same_geom))
        return BNORM_ERR_ALIAS;

    bwd_job j = {kt, {0}, x, dy, dx, gamma, save_mean, save_invstd, dgamma, dbeta,
                 (double)shape->n * (double)shape->spatial, shape->n * shape->spatial,
                 false};
    const bnorm_geom *gw[3] = {&g[0], &g[1], &g[2]};
    walk_init(&j.w, shape, gw, c);
    j.pipe = dx && !j.w.rows;
    run_ranges(bwd_range, &j, c, task_channels(&j.w, c, j.mi));
    return BNORM_OK;
}

bnorm_status bnorm_training_backward(const bnorm_shape *shape, const float *x,
                                     const bnorm_strides *x_strides, const float *dy,
                                     const bnorm_strides *dy_strides, const float *gamma,
                                     const float *save_mean, const float *save_invstd,
                                     float *dx, const bnorm_strides *dx_strides,
                                     float *dgamma, float *dbeta)
{
    return bnorm_training_backward_with(bnorm_active_kernels(), shape, x, x_strides, dy,
                                        dy_strides, gamma, save_mean, save_invstd, dx,
                                        dx_strides, dgamma, dbeta);
}
