/*
 * Training: forward with batch statistics, backward, and backward with frozen
 * statistics. Composed from the kernel families: moments -> fold -> centered apply
 * (forward); dot -> fold -> two-input apply (backward).
 *
 * Channels are processed in blocks, one block per task of the host's pool (see
 * block_channels). For channel-contiguous data (NCHW planes) a block holds as many
 * channels as fit in half of L2, so the second pass (apply) finds the block's data
 * still cached and the tensor crosses memory once. For rows (NHWC) a block is a
 * range of whole cache lines of each row.
 *
 * Summation order is fixed by the shape: each (image, channel) plane is summed from
 * zero and planes are added in image order; rows are summed in chunks of ROW_CHUNK
 * from zero and chunks are added in order. A channel's sums never depend on which
 * block or thread computed them, so results are the same for any pool.
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

/*
 * Channels per block (= per task). Planes: as many as fit in half of L2 with their
 * m values, but at least 8 blocks where C allows, so a pool has work to share.
 * Rows: a block is a column range of whole groups of 4 cache lines (64 floats),
 * about C / 8 wide. Blocks are balanced: C is cut into equal parts. Every channel's sums are
 * independent of the blocking, so this choice never changes a result.
 */
static size_t block_channels(const walk *w, size_t c, size_t m)
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
    size_t blocks = (c + fit - 1) / fit;
    if (!w->rows && blocks < 8)
        blocks = c < 8 ? c : 8;
    return (c + blocks - 1) / blocks;
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

typedef struct fwd_job {
    const bnorm_kernels *kt;
    const bnorm_shape *shape;
    const bnorm_geom *gx, *gy;
    walk w;
    const float *x;
    float *y;
    const float *gamma, *beta;
    float eps;
    float *save_mean, *save_invstd;
    const bnorm_running_stats *running;
    size_t block;
    double m;
} fwd_job;

/* Statistics of channels [c0, c0 + nc), their saved and running values, then y. The
 * apply pass goes through the pool only when this is the one block (never nested). */
static void fwd_block(const fwd_job *j, size_t c0, size_t nc, bool parallel_apply)
{
    double s1[BLOCK], s2[BLOCK];
    float k[BLOCK], a[BLOCK], b[BLOCK], mf[BLOCK];
    bnorm_apply_pattern pattern;
    double m = j->m;
    for (size_t i = 0; i < nc; i++)
        k[i] = j->x[(c0 + i) * j->w.c_stride[0]]; /* the shift: the channel's first value */
    walk wb = j->w;
    if (wb.rows)
        wb.len = nc;
    else
        wb.items = nc;
    reduce_block(j->kt, &wb, j->x + c0 * j->w.c_stride[0], NULL, k, s1, s2);
    for (size_t i = 0; i < nc; i++) {
        size_t ch = c0 + i;
        double d = s1[i] / m, mean = k[i] + d;
        double var = s2[i] / m - d * d;
        if (var < 0.0) /* rounding; NaN stays NaN */
            var = 0.0;
        double invstd = 1.0 / sqrt(var + j->eps);
        double gm = j->gamma ? j->gamma[ch] : 1.0;
        a[i] = (float)(gm * invstd);
        b[i] = j->beta ? j->beta[ch] : 0.0f;
        mf[i] = (float)mean;
        if (j->save_mean)
            j->save_mean[ch] = (float)mean;
        if (j->save_invstd)
            j->save_invstd[ch] = (float)invstd;
        const bnorm_running_stats *r = j->running;
        if (r) {
            bool torch = r->convention == BNORM_MOMENTUM_PYTORCH;
            double w_new = torch ? r->momentum : 1.0 - r->momentum, w_old = 1.0 - w_new;
            double v = torch ? var * m / (m - 1.0) : var;
            r->mean[ch] = (float)(w_old * r->mean[ch] + w_new * mean);
            r->var[ch] = (float)(w_old * r->var[ch] + w_new * v);
        }
    }
    bnorm_apply_plan plan;
    bnorm_apply_plan_init(&plan, j->kt, j->shape, j->gx, j->gy, j->x, j->y, c0, c0 + nc, a,
                          b, mf, -INFINITY, INFINITY, false, &pattern);
    if (parallel_apply)
        bnorm_apply_plan_execute(&plan);
    else
        bnorm_apply_plan_run(&plan, 0, bnorm_apply_plan_items(&plan));
}

static void fwd_task(void *context, size_t t)
{
    const fwd_job *j = context;
    size_t c0 = t * j->block, c = j->shape->c;
    fwd_block(j, c0, c - c0 < j->block ? c - c0 : j->block, false);
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

    fwd_job j = {kt, shape, &g[0], &g[1], {0}, x, y, gamma, beta, eps, save_mean,
                 save_invstd, running, 0, (double)shape->n * (double)shape->spatial};
    const bnorm_geom *gw[3] = {&g[0], &g[0], &g[1]};
    walk_init(&j.w, shape, gw, c);
    j.block = block_channels(&j.w, c, shape->n * shape->spatial);
    size_t blocks = (c + j.block - 1) / j.block;
    if (blocks == 1)
        fwd_block(&j, 0, c, true);
    else
        bnorm_parallel_run(fwd_task, &j, blocks);
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

typedef struct bwd_job {
    const bnorm_kernels *kt;
    walk w;
    const float *x, *dy;
    float *dx;
    const float *gamma, *save_mean, *save_invstd;
    float *dgamma, *dbeta;
    size_t c, block;
    double m;
} bwd_job;

/* Sums of one block of channels, dgamma and dbeta, then dx. */
static void bwd_task(void *context, size_t t)
{
    const bwd_job *j = context;
    size_t c0 = t * j->block, nc = j->c - c0 < j->block ? j->c - c0 : j->block;
    double sdy[BLOCK], sdyx[BLOCK];
    float a[BLOCK], b[BLOCK], k[BLOCK];
    double m = j->m;
    walk wb = j->w;
    if (wb.rows)
        wb.len = nc;
    else
        wb.items = nc;
    const float *xb = j->x + c0 * j->w.c_stride[0], *dyb = j->dy + c0 * j->w.c_stride[1];
    reduce_block(j->kt, &wb, xb, dyb, j->save_mean + c0, sdy, sdyx);
    for (size_t i = 0; i < nc; i++) {
        size_t ch = c0 + i;
        double is = j->save_invstd[ch], gm = j->gamma ? j->gamma[ch] : 1.0;
        double dg = sdyx[i] * is;
        if (j->dgamma)
            j->dgamma[ch] = (float)dg;
        if (j->dbeta)
            j->dbeta[ch] = (float)sdy[i];
        a[i] = (float)(gm * is);
        b[i] = (float)(-gm * is * is * dg / m);
        k[i] = (float)(-gm * is * sdy[i] / m);
    }
    if (j->dx)
        apply2_block(j->kt, &wb, xb, dyb, j->dx + c0 * j->w.c_stride[2], a, b,
                     j->save_mean + c0, k);
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

    bwd_job j = {kt, {0}, x, dy, dx, gamma, save_mean, save_invstd, dgamma, dbeta, c, 0,
                 (double)shape->n * (double)shape->spatial};
    const bnorm_geom *gw[3] = {&g[0], &g[1], &g[2]};
    walk_init(&j.w, shape, gw, c);
    j.block = block_channels(&j.w, c, shape->n * shape->spatial);
    bnorm_parallel_run(bwd_task, &j, (c + j.block - 1) / j.block);
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
