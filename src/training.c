/*
 * Training: forward with batch statistics, backward, and backward with frozen
 * statistics. Composed from the kernel families: moments -> fold -> centered apply
 * (forward); dot -> fold -> two-input apply (backward).
 *
 * Channels are processed in blocks. For channel-contiguous data (NCHW planes) a
 * block holds as many channels as fit in half of L2, so the second pass (apply)
 * finds the block's data still cached and the tensor crosses memory once. Rows
 * (NHWC) use the widest block instead: a narrow block would read whole cache lines
 * for a few floats of each row. Dense rows of small C are periodic: the tensor is one
 * array whose per-channel values repeat with period C, so rows run as rows of P
 * floats (a multiple of lcm(C, 8) of at least 64, as the apply plan does) with the
 * shifts and coefficients expanded, and the P column sums are folded into the C
 * channel sums (1x3x224x224 forward 110 -> 38 us, backward 344 -> 55 us: rows of 3
 * floats cost a kernel's per-row overhead each).
 *
 * With a host pool (bnorm_set_parallel_for) the work is cut into tasks fixed by the
 * shape (task_channels). Planes: channel ranges, at least 8 where C and the size
 * allow, each running the loop below on its own (the forward over fewer than 8
 * channels of long planes splits the planes instead: fwd_few_planes). Rows: one
 * range of every channel whose row chunks (below) are the reduction's tasks and whose
 * apply splits rows, except when C spans several blocks over few rows: then column
 * ranges of about a block. Serial calls run one range of all channels, which
 * pipelines best. Rows of
 * more than one block and up to SPLIT channels, with a pool or not, only reduce and
 * fold block by block (or range by range), before one apply pass over whole rows;
 * serially, wider rows do so in parts of up to SPLIT channels (see SPLIT).
 *
 * The forward over planes (unless its output is streamed, or its sums go through
 * sum_rows) is pipelined: the moments of block j run in one loop with the apply of
 * block j - 1 (the moments_apply_planes kernel), so the apply's loads and stores
 * overlap the moments' arithmetic (figures in bench/README.md). The backward over
 * planes, when it computes dx, does the same with dot_apply2_planes. The blocks in
 * flight must stay cached, so they share the cached pass (forward x twice, backward x
 * and dy twice), and there are at least 8 blocks where PIPE_MIN_ELEMS allows, so that
 * the unfused first reduction and last apply are a small part. The results are the same
 * bit for bit: the fused kernels are the two kernels' operations, and every block is
 * reduced in the same order.
 *
 * Summation order is fixed by the shape: each (image, channel) plane is summed from
 * zero (the forward's moments over fewer than 8 channels: a long plane in chunks,
 * PLANE_CHUNK) and planes are added in image order; rows are summed in chunks of rows
 * (fixed by the shape, below) from zero and chunks are added in order; periodic rows
 * then add a channel's columns c, c + C, ... in that order. A channel's sums never
 * depend on the blocks, ranges, threads or strides (sum_rows), so results are the same
 * for any pool, serial included, and rows sums are the same in every ISA (kernels.h).
 */
#include <math.h>
#include <string.h>

#include "apply_plan.h"
#include "dispatch.h"
#include "ops.h"
#include "parallel.h"
#include "tensor.h"

/* Channels per block: bounds the stack, about 40-50 KB per call or range task (the
 * forward's frame 18 KB: sums, shifts, the blocks being folded and applied and the
 * periodic pattern; a reduction's partials 21 KB; the fold's 5 KB and, for a far shift,
 * its second pass's 4 KB over another reduction; the backward's frame 11 KB and its
 * fold's 2 KB of scratch for a NULL dgamma or dbeta), and the
 * coefficients of split rows 12 KB more (SPLIT), whose pass over whole rows (wide_rows)
 * holds every channel's sums and shifts in 17-21 KB, instead of a range's frame. */
#define BLOCK 256

/*
 * Rows are summed in chunks, fixed by the shape: each chunk of rows is summed from
 * zero (one partial per column), and the chunks' partials are added to the sums in
 * chunk order. A pool runs the chunks of a pass as tasks. Chunks hold at least
 * CHUNK_MIN_ELEMS values of a block (smaller tasks cost about what their dispatch
 * does), there are at most CHUNKS_MAX of them, and the partials of one pass live on
 * the caller's stack: PART_PAIRS (s1, s2) pairs, 16 KB, so a pass holds
 * PART_PAIRS / width chunks (4 of a block of 256 channels, 8 of 64 or fewer, 1 of a
 * pass over rows of 513 to 1024, wide_rows).
 */
#define CHUNK_MIN_ELEMS ((size_t)16 << 10)
#define CHUNKS_MAX 8
#define PART_PAIRS 1024

/*
 * The forward's moments over fewer than FEW_PLANES channels sum a plane (one image's
 * channel, NCHW) of more than PLANE_CHUNK values in chunks (plane_chunk; the last
 * shorter), each from zero, added in order: the moments kernels add each call's
 * planes to the sums, so the chunks are calls in order (serially), or tasks whose
 * partials are added in that order (fwd_few_planes), with the same sums either way.
 * More channels make enough tasks as they are, and keep whole planes.
 */
#define FEW_PLANES 8
#define PLANE_CHUNK ((size_t)16 << 10)

/* Values per chunk of the planes of len values of c channels: len itself (one chunk),
 * or equal chunks rounded up to whole vectors of 8. */
static size_t plane_chunk(size_t c, size_t len)
{
    if (c >= FEW_PLANES || len <= PLANE_CHUNK)
        return len;
    size_t chunks = (len + PLANE_CHUNK - 1) / PLANE_CHUNK;
    return ((len + chunks - 1) / chunks + 7) & ~(size_t)7;
}

/*
 * The sums of rows (NHWC, and NCHW with spatial 1) are in an order fixed by the shape,
 * never by the strides: rows of P = k C values (k pixels; NCHW spatial 1: k images)
 * where the apply plan's pattern for C is longer than C and fits a block, else rows of
 * C (k = 1), in chunks of those rows (chunk_rows). A walk over dense buffers sums in
 * that order itself (periodic or not). One whose buffers cannot be walked so (periodic
 * sums over padded rows; NCHW spatial 1 with a channel step, walked as planes) sums
 * through sum_rows instead: for each chunk and each phase q < k, one kernel call per
 * image over pixels q, q + k, ... of the chunk at k times the pixel step, into the
 * columns q C + c (one call per column where the channel step is not 1). A rows
 * kernel adds each column's rows in order (kernels.h), however the rows and columns
 * are cut into calls, so the sums are the dense walk's, bit for bit.
 */
typedef struct sum_rows {
    size_t k;             /* pixels per row of sums; 0: the walk sums in order itself */
    size_t pixels, items; /* N * spatial; pixels per image (NCHW spatial 1: N) */
    size_t chunk_pixels;  /* pixels per chunk: a whole number of rows of sums */
    size_t g_stride[2], i_stride[2], c_stride[2]; /* x, dy: image, pixel, channel steps */
} sum_rows;

/* Rows per chunk for rows of `width` values (at most a block counts). */
static size_t chunk_rows(size_t rows, size_t width)
{
    size_t chunks = rows * (width < BLOCK ? width : BLOCK) / CHUNK_MIN_ELEMS;
    chunks = chunks < 1 ? 1 : chunks > CHUNKS_MAX ? CHUNKS_MAX : chunks;
    return (rows + chunks - 1) / chunks; /* equal: pools schedule statically */
}

/* How a block of channels is laid out, for up to three buffers (x, dy, out). Rows:
 * row r is item r % items of group r / items; the very last row spans last_len
 * floats (len except on the periodic path); chunk_rows rows per chunk. */
typedef struct walk {
    bool rows;
    size_t groups, items, len;
    size_t g_stride[3], i_stride[3], c_stride[3];
    size_t last_len, chunk_rows;
    size_t chunk; /* planes: values per chunk of the forward's moments (PLANE_CHUNK) */
    /* Periodic rows (dense rows of small C): each row is len = P floats of whole
     * periods of C = period channels, column j belongs to channel j % period; 0
     * otherwise. */
    size_t period;
    /* Where the sums' order (sum_rows) is not this walk's own; k == 0 otherwise. */
    sum_rows sums;
} walk;

/* The sums' own rows (sum_rows) of a walk of nc channels of x, dy (g[0], g[1]) whose
 * own order is not theirs. */
static void sums_init(walk *w, const bnorm_shape *s, const bnorm_geom *const g[3], size_t nc)
{
    bool nchw = s->layout == BNORM_NCHW;
    if (nchw && s->spatial > 1) /* planes: summed in image order whatever the strides */
        return;
    size_t pixels = s->n * s->spatial, p = bnorm_pattern_len(nc, pixels * nc);
    size_t k = p > nc && p <= BLOCK ? p / nc : 1;
    if (w->rows && (w->period || k == 1)) /* periodic walks have this k */
        return;
    sum_rows *r = &w->sums;
    r->k = k;
    r->pixels = pixels;
    r->items = nchw ? s->n : s->spatial;
    r->chunk_pixels = chunk_rows((pixels + k - 1) / k, k * nc) * k;
    for (int b = 0; b < 2; b++) {
        r->g_stride[b] = g[b]->batch;
        r->i_stride[b] = nchw ? g[b]->batch : g[b]->inner;
        r->c_stride[b] = nchw ? g[b]->inner : 1;
    }
}

static void walk_init(walk *w, const bnorm_shape *s, const bnorm_geom *const g[3], size_t nc)
{
    bool unit = true;
    for (int b = 0; b < 3; b++)
        unit = unit && g[b]->inner == 1;
    memset(w, 0, sizeof *w);
    if (!bnorm_walks_rows(s, unit)) {
        w->groups = s->n;
        w->items = nc;
        w->len = s->spatial;
        for (int b = 0; b < 3; b++) {
            w->g_stride[b] = g[b]->batch;
            w->i_stride[b] = w->c_stride[b] = g[b]->inner;
        }
        w->chunk = plane_chunk(s->c, s->spatial);
        sums_init(w, s, g, nc);
        return;
    }
    w->rows = true;
    w->len = nc;
    bool nchw = s->layout == BNORM_NCHW;
    w->groups = nchw ? 1 : s->n;
    w->items = nchw ? s->n : s->spatial;
    bool one_group = true, dense = true; /* images follow each other at the row stride */
    for (int b = 0; b < 3; b++) {
        w->g_stride[b] = g[b]->batch;
        w->i_stride[b] = nchw ? g[b]->batch : g[b]->inner;
        w->c_stride[b] = 1;
        one_group = one_group &&
                    (nchw || s->n == 1 || g[b]->batch == s->spatial * g[b]->inner);
        dense = dense && w->i_stride[b] == nc;
    }
    if (one_group) {
        w->items *= w->groups;
        w->groups = 1;
    }
    /* Periodic where the apply plan's rows are longer than C and fit a block. */
    size_t p = one_group && dense ? bnorm_pattern_len(nc, w->items * nc) : 0;
    w->last_len = nc;
    if (p > nc && p <= BLOCK) {
        size_t total = w->items * nc;
        w->period = nc;
        w->len = p;
        w->items = (total + p - 1) / p;
        w->last_len = total - (w->items - 1) * p;
        for (int b = 0; b < 3; b++)
            w->i_stride[b] = p;
    }
    w->chunk_rows = chunk_rows(w->groups * w->items, w->len);
    sums_init(w, s, g, nc);
}

/* The number of row chunks of a rows walk. */
static size_t walk_chunks(const walk *w)
{
    return (w->groups * w->items + w->chunk_rows - 1) / w->chunk_rows;
}

/* The walk of a block of nc channels of w (a periodic walk has one block: all). */
static walk walk_block(const walk *w, size_t nc)
{
    walk wb = *w;
    if (!wb.rows)
        wb.items = nc;
    else if (!wb.period)
        wb.len = wb.last_len = nc;
    return wb;
}

/* dst[0..len) = src[0..period) repeated; len is a multiple of period. One copy per
 * period: a division per element (j % period) was a fifth of a 1x17x33x33 backward. */
static void repeat(float *dst, const float *src, size_t period, size_t len)
{
    for (size_t j = 0; j < len; j += period)
        memcpy(dst + j, src, period * sizeof(float));
}

/* Calls span(ctx, off, count, len) over rows [r0, r1) of a rows walk, in order:
 * count rows of len floats starting at offsets off[0..3) of the three buffers; runs
 * are cut at image boundaries and before the short last row of a periodic walk. */
typedef void (*span_fn)(const void *ctx, const size_t off[3], size_t count, size_t len);

static void each_span(const walk *w, size_t r0, size_t r1, span_fn span, const void *ctx)
{
    size_t total = w->groups * w->items;
    while (r0 < r1) {
        size_t g = w->groups > 1 ? r0 / w->items : 0, i = r0 - g * w->items;
        size_t cnt = w->items - i < r1 - r0 ? w->items - i : r1 - r0, len = w->len;
        if (r0 + cnt == total && w->last_len != w->len) {
            if (cnt > 1)
                cnt--;
            else
                len = w->last_len;
        }
        size_t off[3];
        for (int b = 0; b < 3; b++)
            off[b] = g * w->g_stride[b] + i * w->i_stride[b];
        span(ctx, off, cnt, len);
        r0 += cnt;
    }
}

/*
 * A serial apply pass runs its items last chunk first, each chunk of about TAIL_CHUNK
 * elements walked forward: the reduction before it read them first to last, so the
 * caches hold the end of the block, which a pass from the start would evict before it
 * got there. (NHWC, AVX2, one thread: 1x64x112x112 forward 329 -> 300 us, backward
 * 560 -> 512 us; 1x256x56x56 and 16x256x14x14 forward 351 -> 322 us; chunks of 128k
 * elements a little faster than 32k. The apply is elementwise: the order changes no
 * result.)
 */
#define TAIL_CHUNK ((size_t)128 << 10)

static void last_first(size_t items, size_t len, bnorm_range_fn run, const void *ctx)
{
    size_t per = TAIL_CHUNK / len ? TAIL_CHUNK / len : 1;
    for (size_t end = items; end > 0;) {
        size_t begin = end > per ? end - per : 0;
        run(ctx, begin, end);
        end = begin;
    }
}

/* One pass of row chunks of a block: chunk first + t sums into p1, p2 + t * len (a
 * block of one chunk: into the sums themselves, reduce_rows). */
typedef struct chunk_job {
    const bnorm_kernels *kt;
    const walk *w;
    const float *x, *dy, *k;
    size_t first;
    double *p1, *p2;
    double *s1, *s2; /* where chunk_span sums: the running chunk's partials */
} chunk_job;

/* Sums of one call's rows: moments of x about k (dy == NULL), or dot products. */
static void sum_call(const bnorm_kernels *kt, size_t count, size_t len, const float *x,
                     size_t x_stride, const float *dy, size_t dy_stride, const float *k,
                     double *s1, double *s2)
{
    if (dy)
        kt->dot_rows(count, len, x, x_stride, dy, dy_stride, k, s1, s2);
    else
        kt->moments_rows(count, len, x, x_stride, k, s1, s2);
}

static void chunk_span(const void *ctx, const size_t off[3], size_t count, size_t len)
{
    const chunk_job *j = ctx;
    sum_call(j->kt, count, len, j->x + off[0], j->w->i_stride[0],
             j->dy ? j->dy + off[1] : NULL, j->w->i_stride[1], j->k, j->s1, j->s2);
}

static void chunk_task(void *context, size_t t)
{
    chunk_job j = *(const chunk_job *)context;
    size_t len = j.w->len, total = j.w->groups * j.w->items;
    size_t r0 = (j.first + t) * j.w->chunk_rows;
    size_t r1 = total - r0 < j.w->chunk_rows ? total : r0 + j.w->chunk_rows;
    j.s1 = j.p1 + t * len;
    j.s2 = j.p2 + t * len;
    memset(j.s1, 0, len * sizeof(double));
    memset(j.s2, 0, len * sizeof(double));
    each_span(j.w, r0, r1, chunk_span, &j);
}

/* A pass of cnt chunk tasks: through the calling thread's pool, or in order here. */
static void run_chunks(bnorm_task_fn task, void *job, size_t cnt, bool pool)
{
    if (pool)
        bnorm_parallel_run(task, job, cnt);
    else
        for (size_t t = 0; t < cnt; t++)
            task(job, t);
}

/* t1, t2 += the pass's cnt chunk partials of len pairs each (p1, p2), in chunk order. */
static void add_partials(const double *p1, const double *p2, size_t cnt, size_t len,
                         double *t1, double *t2)
{
    for (size_t t = 0; t < cnt; t++)
        for (size_t c = 0; c < len; c++) {
            t1[c] += p1[t * len + c];
            t2[c] += p2[t * len + c];
        }
}

/* One pass of chunks of reduce_sums: chunk first + t into p1, p2 + t * cols. */
typedef struct sums_job {
    const bnorm_kernels *kt;
    const sum_rows *r;
    size_t nc;
    const float *x, *dy, *k;
    size_t first;
    double *p1, *p2;
} sums_job;

static void sums_chunk(void *context, size_t t)
{
    const sums_job *j = context;
    const sum_rows *r = j->r;
    size_t nc = j->nc, cols = r->k * nc, px0 = (j->first + t) * r->chunk_pixels;
    size_t px1 = r->pixels - px0 < r->chunk_pixels ? r->pixels : px0 + r->chunk_pixels;
    double *p1 = j->p1 + t * cols, *p2 = j->p2 + t * cols;
    memset(p1, 0, cols * sizeof(double));
    memset(p2, 0, cols * sizeof(double));
    bool whole_rows = r->c_stride[0] == 1 && (!j->dy || r->c_stride[1] == 1);
    for (size_t q = 0; q < r->k; q++)
        for (size_t px = px0 + q; px < px1;) {
            size_t g = px / r->items, i = px % r->items;
            size_t end = (g + 1) * r->items < px1 ? (g + 1) * r->items : px1;
            size_t count = (end - px + r->k - 1) / r->k;
            const float *xr = j->x + g * r->g_stride[0] + i * r->i_stride[0];
            const float *dr = j->dy ? j->dy + g * r->g_stride[1] + i * r->i_stride[1] : NULL;
            size_t xs = r->k * r->i_stride[0], ds = r->k * r->i_stride[1];
            double *t1 = p1 + q * nc, *t2 = p2 + q * nc;
            if (whole_rows)
                sum_call(j->kt, count, nc, xr, xs, dr, ds, j->k, t1, t2);
            else
                for (size_t c = 0; c < nc; c++)
                    sum_call(j->kt, count, 1, xr + c * r->c_stride[0], xs,
                             dr ? dr + c * r->c_stride[1] : NULL, ds, j->k + c, t1 + c,
                             t2 + c);
            px += count * r->k;
        }
}

/* reduce_block's sums of nc <= BLOCK channels in the order of sum_rows, where the walk
 * is not that order's (see there); with `pool`, chunks run as tasks, as reduce_rows'.
 * Not inlined: its partials stay out of reduce_block's frame. */
static __attribute__((noinline)) void reduce_sums(const bnorm_kernels *kt, const sum_rows *r,
                                                  size_t nc, const float *x, const float *dy,
                                                  const float *k, double *s1, double *s2,
                                                  bool pool)
{
    size_t cols = r->k * nc; /* column q nc + c: phase q, channel c */
    BNORM_LINE_ALIGNED double c1[BLOCK];
    BNORM_LINE_ALIGNED double c2[BLOCK];
    BNORM_LINE_ALIGNED double p1[PART_PAIRS];
    BNORM_LINE_ALIGNED double p2[PART_PAIRS];
    memset(c1, 0, cols * sizeof(double));
    memset(c2, 0, cols * sizeof(double));
    size_t chunks = (r->pixels + r->chunk_pixels - 1) / r->chunk_pixels;
    size_t per = PART_PAIRS / cols;
    for (size_t first = 0; first < chunks; first += per) {
        size_t cnt = chunks - first < per ? chunks - first : per;
        sums_job j = {kt, r, nc, x, dy, k, first, p1, p2};
        run_chunks(sums_chunk, &j, cnt, pool);
        add_partials(p1, p2, cnt, cols, c1, c2);
    }
    for (size_t c = 0; c < nc; c++) {
        s1[c] = s2[c] = 0.0;
        for (size_t q = 0; q < r->k; q++) {
            s1[c] += c1[q * nc + c];
            s2[c] += c2[q * nc + c];
        }
    }
}

/* reduce_block over rows, in their chunks (see chunk_rows). Not inlined: its partials
 * are not on the stack of the other walks. */
static __attribute__((noinline)) void reduce_rows(const bnorm_kernels *kt, const walk *w,
                                                  size_t nc, const float *x,
                                                  const float *dy, const float *k,
                                                  double *s1, double *s2, bool pool)
{
    size_t len = w->len;
    BNORM_LINE_ALIGNED float kp[BLOCK];
    BNORM_LINE_ALIGNED double c1[BLOCK];
    BNORM_LINE_ALIGNED double c2[BLOCK]; /* periodic: per column of the P-wide rows */
    double *t1 = s1, *t2 = s2;
    if (w->period) {
        repeat(kp, k, w->period, len);
        k = kp;
        memset(c1, 0, len * sizeof(double));
        memset(c2, 0, len * sizeof(double));
        t1 = c1;
        t2 = c2;
    }
    size_t chunks = walk_chunks(w);
    if (chunks == 1) {
        /* One chunk sums from zero: straight into t1, t2 (zeroed), bit for bit what
         * adding its partials to them gives (+0 + p is p, and a sum from +0 is never
         * -0). Training 8x1000, one thread: forward 4.9 -> 4.2 us, backward 4.6-5.0
         * -> 4.0 without clearing and adding partials for each block. */
        chunk_job j = {kt, w, x, dy, k, 0, NULL, NULL, t1, t2};
        each_span(w, 0, w->groups * w->items, chunk_span, &j);
    } else {
        BNORM_LINE_ALIGNED double p1[PART_PAIRS];
        BNORM_LINE_ALIGNED double p2[PART_PAIRS];
        size_t per = PART_PAIRS / len;
        for (size_t first = 0; first < chunks; first += per) {
            size_t cnt = chunks - first < per ? chunks - first : per;
            chunk_job j = {kt, w, x, dy, k, first, p1, p2, NULL, NULL};
            run_chunks(chunk_task, &j, cnt, pool);
            add_partials(p1, p2, cnt, len, t1, t2);
        }
    }
    /* Periodic: channel c's sum is its columns c, c + C, ... added in that order. */
    for (size_t c = 0; w->period && c < nc; c++)
        for (size_t q = c; q < len; q += nc) {
            s1[c] += c1[q];
            s2[c] += c2[q];
        }
}

/* Per-channel sums over a block (or a part of split rows, up to PART_PAIRS wide):
 * moments of x about k (dy == NULL), or the dot products of dy with x - k. s1 and s2
 * are zeroed here. With `pool`, row chunks run as tasks (the calling thread's pool;
 * never from inside a task). */
static void reduce_block(const bnorm_kernels *kt, const walk *w, const float *x,
                         const float *dy, const float *k, double *s1, double *s2, bool pool)
{
    size_t nc = w->rows ? (w->period ? w->period : w->len) : w->items;
    if (w->sums.k) {
        reduce_sums(kt, &w->sums, nc, x, dy, k, s1, s2, pool);
        return;
    }
    memset(s1, 0, nc * sizeof(double));
    memset(s2, 0, nc * sizeof(double));
    if (w->rows) {
        reduce_rows(kt, w, nc, x, dy, k, s1, s2, pool);
        return;
    }
    size_t q = w->chunk;
    for (size_t g = 0; g < w->groups; g++) {
        const float *xg = x + g * w->g_stride[0];
        if (dy) {
            kt->dot_planes(nc, w->len, xg, w->i_stride[0], dy + g * w->g_stride[1],
                           w->i_stride[1], k, s1, s2);
            continue;
        }
        for (size_t o = 0; o < w->len; o += q) /* PLANE_CHUNK */
            kt->moments_planes(nc, w->len - o < q ? w->len - o : q, xg + o,
                               w->i_stride[0], k, s1, s2);
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
 * x, dy) share the cached pass, and at least 8 blocks (see the top), but no fewer
 * than PIPE_MIN_ELEMS values per block: each step has a fixed cost (fold, calls), and on
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
 * Channels per task when a pool shares the work. Planes: as many as fit in half of
 * L2, but at least 8 tasks where C allows (and TASK_MIN_ELEMS, below). Rows: one
 * range of every channel, whose row chunks and apply rows are the tasks (each reads
 * whole rows, contiguous when dense), unless C spans several blocks and the rows are
 * too few for CHUNKS_MAX chunks: then ranges of about a block, so a range reads at
 * least 1 KB of every row (ResNet's 1x1024x14x14: three chunks of rows per block
 * simulated 1.48x on two threads, four ranges of 256 1.96x; measured, ranges of 256
 * and of 128 take the same time on two threads and 256 is 12% faster on one).
 * Either way there are at most C * m / TASK_MIN_ELEMS ranges, so they average at
 * least that many values (the last may be shorter): a smaller task costs about what
 * its dispatch does (an empty two-thread OpenMP region takes 0.72 us on
 * bench/README.md's VM, the time a thread takes for the training forward over about
 * 3K values), and a tensor of fewer than 2 * TASK_MIN_ELEMS values runs as one task.
 * Ranges are of equal width but the last (whose cuts move to the output's lines
 * where they can: range_lines). Every channel's sums are independent of the
 * ranges: no result changes.
 */
#define TASK_MIN_ELEMS 8192
static size_t task_channels(const walk *w, size_t c, size_t m)
{
    if (w->rows && (c <= BLOCK || walk_chunks(w) == CHUNKS_MAX))
        return c;
    size_t fit = block_channels(w, m);
    size_t tasks = (c + fit - 1) / fit;
    if (!w->rows && tasks < 8)
        tasks = c < 8 ? c : 8;
    size_t most = c * m / TASK_MIN_ELEMS; /* c * m: the tensor's values, which fit */
    if (tasks > most)
        tasks = most < 1 ? 1 : most;
    return (c + tasks - 1) / tasks;
}

/* The output whose lines the column ranges of a call start on (bnorm_parallel_ranges):
 * out (y, dx) where the ranges write rows of it whose stride is a whole number of
 * lines, else NULL. */
static const float *range_lines(const walk *w, const float *out)
{
    bool lines = w->rows && !w->period && w->i_stride[2] % 16 == 0 &&
                 (w->groups == 1 || w->g_stride[2] % 16 == 0);
    return lines ? out : NULL;
}

/* Whether run_ranges runs ranges of `per` of c channels as pool tasks. */
static bool ranged(size_t c, size_t per)
{
    return bnorm_parallel_active() && per < c;
}

/* Splits channels [c0, c1) into ranges of `per` (cut on the lines of `lines`, if not
 * NULL) and runs range(job, r0, r1) for each: through the pool as tasks if the
 * calling thread has one, else one range of all. */
static void run_ranges(bnorm_range_fn range, const void *job, size_t c0, size_t c1,
                       size_t per, const float *lines)
{
    if (!ranged(c1 - c0, per))
        range(job, c0, c1);
    else
        bnorm_parallel_ranges(range, job, c0, c1, per, lines);
}

/*
 * Rows of more than one block and up to SPLIT channels are split, when an output is
 * written: the blocks (with a pool, the range tasks) only reduce and fold, into
 * coefficients held by the caller, and one apply pass then walks whole rows (with a
 * pool, whole rows per task). Results are the same: the apply is elementwise with
 * the same coefficients. Two reasons:
 * - A block's apply is one more pass over part of every row, and the prefetchers
 *   also fetch the other blocks' lines. One apply over whole rows reads and writes
 *   each row once, start to end. NHWC, AVX2, one thread, medians of three
 *   alternating runs of the two builds, us: 1x512x28x28 forward 173-176 -> 139-154,
 *   backward 288-299 -> 228-258 (two threads 152-164 -> 135-142); 1x1024x14x14
 *   backward 100-113 -> 93-96, forward unchanged (51-55).
 * - With a pool, column ranges share every row's pages between tasks, and a core
 *   writing its columns of a page while another core writes the rest runs slower:
 *   the four range tasks of a 1x1024x14x14 NHWC forward (1 KB of each 4 KB row) took
 *   36k cycles each one at a time and 43-52k two at a time. Split, two threads run
 *   it 1.62-1.85x one, against 1.41x.
 * Wider rows are cut into equal parts of at most SPLIT channels, serially, and each
 * part is split in turn (at 2048 channels, each row's half is a 4 KB page). NHWC,
 * AVX2, one thread, forward, us, blocks -> parts: 8x2048x7x7 534-544 -> 426-427,
 * 32x2048x7x7 2676-2707 -> 1863-1876, 2x1536x14x14 402-410 -> 309-320, 1x2048x20x20
 * 544-553 -> 438-446; in L2, 1x2048x7x7 31 either way (its backward, split whole,
 * took 50 us against 41: this is why parts are not wider). With a pool too, where
 * the rows are many (no column ranges, task_channels): two threads, 32x2048x7x7
 * forward 1684-1719 -> 1280-1348, backward 2635-2724 -> 2137-2288. Where a pool cuts
 * wider rows in column ranges (few rows), they keep the ranges: on a static pool
 * two threads' shares of 1x2048x7x7 are whole pages, and that ran 1.8x one thread
 * where the split ran 1.4x.
 */
#define SPLIT (4 * BLOCK)

/* The width of the parts a call over c channels of a walk, cut in ranges of `per`,
 * splits its rows into (the last part may be narrower), or 0 if it does not split
 * them. */
static size_t split_width(const walk *w, size_t c, size_t per)
{
    if (!w->rows || c <= BLOCK)
        return 0;
    if (c <= SPLIT)
        return c;
    if (ranged(c, per))
        return 0;
    size_t parts = (c + SPLIT - 1) / SPLIT;
    return (c + parts - 1) / parts;
}

/* The end of the part of split rows that starts at channel c0 of c. */
static size_t part_end(size_t c0, size_t c, size_t width)
{
    return c - c0 < width ? c : c0 + width;
}

/*
 * Whether split rows also reduce in one pass over the rows (sums of every channel of
 * the part at once), rather than block by block: serially, when x is larger than the
 * cached pass. The row chunks are the same, so the sums are too. A block's
 * reduction reads part of every row, as its apply did (SPLIT); from L2 that costs
 * little, from the LLC or memory a lot. NHWC, AVX2, one thread, x, dy and dx at
 * equal page offsets, best of 5 in each of two alternating runs, us, blocks -> whole
 * rows:
 *   shape          forward               backward
 *   1x768x1000     399-400 -> 325-329    812-816 -> 559-564
 *   2x1024x196     154-158 -> 144-145    371-379 -> 266-273
 *   8x512x784      1639-1654 -> 1511-1517  2737-2847 -> 2476-2516
 *   16x300x196     454-473 -> 412-413    768-787 -> 668-669
 *   1x512x784      148-150 -> 148-164    277-293 -> 259-262
 * In L2 the blocks were faster: 1x1024x14x14 forward 51-53 us against 56-58.
 */
_Static_assert(SPLIT <= PART_PAIRS, "a pass over whole rows holds one chunk's partials");
static bool wide_rows(const walk *w)
{
    return !bnorm_parallel_active() &&
           w->groups * w->items * w->len * sizeof(float) > bnorm_cached_pass_bytes();
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
    BNORM_LINE_ALIGNED float a[BLOCK];
    BNORM_LINE_ALIGNED float b[BLOCK];
    BNORM_LINE_ALIGNED float m[BLOCK];
} fwd_block;

/* The forward's apply pass over channels [c0, c0 + nc) folded into a, b, m. */
static void fwd_apply(const bnorm_kernels *kt, const bnorm_shape *shape,
                      const bnorm_geom g[2], const float *x, float *y, size_t c0, size_t nc,
                      const float *a, const float *b, const float *m,
                      bnorm_apply_pattern *pattern, bool pool)
{
    bnorm_apply_plan plan;
    bnorm_apply_plan_init(&plan, kt, shape, &g[0], &g[1], x, y, c0, c0 + nc, a, b, m,
                          -INFINITY, INFINITY, false, pattern);
    if (pool)
        bnorm_apply_plan_execute(&plan);
    else
        last_first(bnorm_apply_plan_items(&plan), plan.len, bnorm_apply_plan_range, &plan);
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
    /* Set (split rows, see SPLIT): folded channel c goes to fold_a/b/m[c - fold_c0],
     * and the caller applies them. */
    float *fold_a, *fold_b, *fold_m;
    size_t fold_c0;
    bool ranged; /* the ranges run as pool tasks, which start no tasks of their own */
} fwd_job;

/* The shift a channel's sums are taken about: its first value, which is near the
 * rest (the kernels form x - k in double, so an outlying one costs no accuracy), or 0
 * if that is infinite or NaN (an infinite shift would make the sums of every finite
 * value infinite and of an infinite one NaN, where the mean is that infinity). */
static float shift_of(float first)
{
    return isfinite(first) ? first : 0.0f;
}

/*
 * var = s2/m - d^2 (d = s1/m, the mean's offset from the shift) loses what
 * d^2 / var multiplies the sums' rounding by, and with many repeated values those
 * roundings add up (1x1x2^20, one value 3.7 and the rest 0: save_invstd 4-20 units
 * off where 4 are allowed). A channel whose shift lies more than 4 standard
 * deviations from its mean (d^2 > REFINE_Z2 var; rare: an outlying first value) is
 * summed again about its mean rounded to float, where d^2 / var is ~0: then
 * (1 + d^2 / var) is at most 17 times the double sums' relative error (at most
 * about m 2^-53 over m values).
 */
#define REFINE_Z2 16.0

/* The sums of the block's channels whose shift kn[i] differs from k[i], again,
 * about kn: one more pass over the block (rows: over its columns of every row,
 * however many channels need it), the same walk as the first, so a channel's sums
 * do not depend on the block, the ranges or the pool. Not inlined: its partials stay
 * out of the fold's frame. */
static __attribute__((noinline)) void refine(const fwd_job *j, size_t c0, size_t nc,
                                             const float *k, const float *kn, double *s1,
                                             double *s2)
{
    BNORM_LINE_ALIGNED double t1[BLOCK];
    BNORM_LINE_ALIGNED double t2[BLOCK];
    walk wb = walk_block(&j->w, nc);
    reduce_block(j->kt, &wb, j->x + c0 * j->w.c_stride[0], NULL, kn, t1, t2, false);
    for (size_t i = 0; i < nc; i++)
        if (kn[i] != k[i]) {
            s1[i] = t1[i];
            s2[i] = t2[i];
        }
}

/* A channel's statistics from its sums s1, s2 about shift k, in place: s1 becomes the
 * mean, s2 the variance (rounding below 0 clamped; NaN stays NaN). Returns d^2 -
 * REFINE_Z2 var, > 0 where the shift is far (NaN for NaN). */
static inline double channel_stats(double *s1, double *s2, float k, double inv_m)
{
    double d = *s1 * inv_m, var = *s2 * inv_m - d * d;
    double excess = d * d - REFINE_Z2 * var;
    var = var < 0.0 ? 0.0 : var;
    *s1 = k + d;
    *s2 = var;
    return excess;
}

/* The fold's outputs from the statistics (mean s1, variance s2, inv = 1 / std) in one
 * loop rather than one per output (the training forward of 8x1000 about 4% faster),
 * inlined once per presence of gamma and of the running statistics, so that it has
 * no branch and vectorizes. */
static inline __attribute__((always_inline)) void
fold_outputs(size_t nc, const double *restrict s1, const double *restrict s2,
             const double *restrict inv, const float *restrict gamma, float *restrict a,
             float *restrict m, float *restrict invstd, float *restrict rm,
             float *restrict rv, double w_old, double w_new, double unbias)
{
    for (size_t i = 0; i < nc; i++) {
        m[i] = (float)s1[i];
        a[i] = (float)(gamma ? gamma[i] * inv[i] : inv[i]);
        invstd[i] = (float)inv[i];
        if (rm) {
            rm[i] = (float)(w_old * rm[i] + w_new * s1[i]);
            rv[i] = (float)(w_old * rv[i] + w_new * (s2[i] * unbias));
        }
    }
}

/* The fold of channels [c0, c0 + nc), nc <= BLOCK, from their shifts k and their
 * sums about them s1, s2 (overwritten: the mean and the variance): the statistics,
 * 1 / std by the table's inv_std (the divider's work, at the table's vector width:
 * SSE2 here took 1.9 ns a channel on Zen 4, AVX2's kernel 0.9), then the outputs
 * (fold_outputs), each loop without a branch so that the compiler vectorizes it
 * (one loop with a branch per output took about 12 cycles a channel). Writes the
 * coefficients a, b, m (the block's, from index 0), save_mean, save_invstd and the
 * running statistics. On (N, C) shapes the fold is much of the call: it multiplies
 * by 1/m. */
static void fwd_fold(const fwd_job *j, size_t c0, size_t nc, const float *k, double *s1,
                     double *s2, float *a, float *b, float *m)
{
    const float *gamma = j->gamma, *beta = j->beta;
    float *save_mean = j->save_mean, *save_invstd = j->save_invstd;
    const bnorm_running_stats *running = j->running;
    double inv_m = 1.0 / j->m;
    bool torch = running && running->convention == BNORM_MOMENTUM_PYTORCH;
    double w_new = running ? (torch ? running->momentum : 1.0 - running->momentum) : 0.0;
    double w_old = 1.0 - w_new, unbias = torch ? j->m / (j->m - 1.0) : 1.0;
    float eps = j->eps;
    BNORM_LINE_ALIGNED double inv[BLOCK];
    /* excess > 0: the shift is far (REFINE_Z2) */
    BNORM_LINE_ALIGNED double excess[BLOCK];
    for (size_t i = 0; i < nc; i++)
        excess[i] = channel_stats(&s1[i], &s2[i], k[i], inv_m);
    /* d^2 <= (m - 1) var: a shift can only be far where m > REFINE_Z2 + 1. The scan
     * is a loop of its own: in the loop above a reduction of the flags kept it from
     * vectorizing, and it runs at a compare a channel. */
    size_t first = nc;
    for (size_t i = 0; j->m > REFINE_Z2 + 1.0 && i < nc; i++)
        if (excess[i] > 0.0) {
            first = i;
            break;
        }
    if (first < nc) {
        BNORM_LINE_ALIGNED float kn[BLOCK];
        for (size_t i = 0; i < nc; i++)
            kn[i] = excess[i] > 0.0 ? (float)s1[i] : k[i];
        refine(j, c0, nc, k, kn, s1, s2);
        for (size_t i = first; i < nc; i++)
            if (kn[i] != k[i])
                channel_stats(&s1[i], &s2[i], kn[i], inv_m);
    }
    j->kt->inv_std(nc, s2, eps, inv);
    if (beta)
        memcpy(b, beta + c0, nc * sizeof(float));
    else
        memset(b, 0, nc * sizeof(float));
    BNORM_LINE_ALIGNED float scratch[BLOCK];
    float *invstd = save_invstd ? save_invstd + c0 : scratch;
    const float *g = gamma ? gamma + c0 : NULL;
    float *rm = running ? running->mean + c0 : NULL, *rv = running ? running->var + c0 : NULL;
    if (g && rm)
        fold_outputs(nc, s1, s2, inv, g, a, m, invstd, rm, rv, w_old, w_new, unbias);
    else if (g)
        fold_outputs(nc, s1, s2, inv, g, a, m, invstd, NULL, NULL, 0, 0, 0);
    else if (rm)
        fold_outputs(nc, s1, s2, inv, NULL, a, m, invstd, rm, rv, w_old, w_new, unbias);
    else
        fold_outputs(nc, s1, s2, inv, NULL, a, m, invstd, NULL, NULL, 0, 0, 0);
    if (save_mean)
        memcpy(save_mean + c0, m, nc * sizeof(float));
}

/* The forward over channels [c0_range, c1). */
static void fwd_range(const void *job, size_t c0_range, size_t c1)
{
    const fwd_job *j = job;
    const bnorm_kernels *kt = j->kt;
    const bnorm_shape *shape = j->shape;
    const bnorm_geom *g = j->g;
    const walk w = j->w;
    const float *x = j->x;
    float *y = j->y;
    bool pipe = j->pipe;
    size_t c = c1 - c0_range;
    size_t block = pipe ? pipe_block_channels(c, shape->n * shape->spatial, 2)
                        : block_channels(&w, shape->n * shape->spatial);
    /* A range that is not a task, with a pool: row chunks and the apply pass go
     * through it. */
    bool pool = !j->ranged && bnorm_parallel_active();
    BNORM_LINE_ALIGNED double s1[BLOCK];
    BNORM_LINE_ALIGNED double s2[BLOCK];
    BNORM_LINE_ALIGNED float k[BLOCK];
    fwd_block blk[2]; /* the block being reduced and, pipelined, the one before */
    fwd_block *cur = &blk[0], *prev = NULL;
    bnorm_apply_pattern pattern;
    for (size_t c0 = c0_range; c0 < c1; c0 += block) {
        size_t nc = c1 - c0 < block ? c1 - c0 : block;
        for (size_t j = 0; j < nc; j++)
            k[j] = shift_of(x[(c0 + j) * w.c_stride[0]]);
        if (prev && prev->nc == nc) {
            /* moments of this block fused with the apply of the previous one */
            memset(s1, 0, nc * sizeof(double));
            memset(s2, 0, nc * sizeof(double));
            size_t q = w.chunk;
            for (size_t gi = 0; gi < w.groups; gi++) {
                const float *xg = x + gi * w.g_stride[0];
                float *yg = y + gi * w.g_stride[2];
                for (size_t o = 0; o < w.len; o += q) /* PLANE_CHUNK */
                    kt->moments_apply_planes(
                        nc, w.len - o < q ? w.len - o : q, xg + c0 * w.i_stride[0] + o,
                        w.i_stride[0], k, s1, s2, xg + prev->c0 * w.i_stride[0] + o,
                        w.i_stride[0], yg + prev->c0 * w.i_stride[2] + o, w.i_stride[2],
                        prev->a, prev->b, prev->m);
            }
        } else {
            if (prev)
                fwd_apply(kt, shape, g, x, y, prev->c0, prev->nc, prev->a, prev->b, prev->m,
                          &pattern, pool);
            walk wb = walk_block(&w, nc);
            reduce_block(kt, &wb, x + c0 * w.c_stride[0], NULL, k, s1, s2, pool);
        }
        cur->c0 = c0;
        cur->nc = nc;
        float *a = cur->a, *b = cur->b, *m = cur->m;
        if (j->fold_a) { /* split rows: into the caller's coefficients; it applies them */
            size_t o = c0 - j->fold_c0;
            a = j->fold_a + o, b = j->fold_b + o, m = j->fold_m + o;
        }
        fwd_fold(j, c0, nc, k, s1, s2, a, b, m);
        if (pipe) { /* applied with the next block's moments, or after the loop */
            prev = cur;
            cur = cur == &blk[0] ? &blk[1] : &blk[0];
        } else if (!j->fold_a) {
            fwd_apply(kt, shape, g, x, y, c0, nc, a, b, m, &pattern, pool);
        }
    }
    if (prev)
        fwd_apply(kt, shape, g, x, y, prev->c0, prev->nc, prev->a, prev->b, prev->m,
                  &pattern, pool);
}

/*
 * The forward over planes in chunks (fewer than FEW_PLANES channels, planes longer
 * than PLANE_CHUNK) with a pool, such as 1x3x224x224: range tasks would be a channel
 * each, which two threads share 2:1. Instead the chunks of every plane are the
 * reduction's tasks, whose partials are added in the serial order (image, then
 * chunk), then the fold, then one apply pass, which the pool splits into spans of
 * the planes. AVX2, OpenMP, best of 3000 calls in each of six alternating runs, us:
 * two threads 15.3-17.0 -> 12.5-12.9, a pool of one thread 23.4-23.6 -> 24.4-24.7
 * (the apply no longer follows each channel's reduction in L2), serially 21.0-21.7
 * and 21.2-21.5 (the chunked pipelined pass).
 */
typedef struct few_job {
    const fwd_job *j;
    const float *k;
    size_t c, q, chunks; /* channels, values per chunk, chunks per plane */
    size_t first;        /* the pass's first chunk: (image * c + channel) * chunks + q */
    double *p1, *p2;     /* the pass's partials */
} few_job;

static void few_task(void *context, size_t t)
{
    const few_job *f = context;
    const walk *w = &f->j->w;
    size_t u = f->first + t, o = u % f->chunks * f->q, plane = u / f->chunks;
    size_t i = plane % f->c, g = plane / f->c;
    f->p1[t] = f->p2[t] = 0.0;
    f->j->kt->moments_planes(1, w->len - o < f->q ? w->len - o : f->q,
                             f->j->x + g * w->g_stride[0] + i * w->c_stride[0] + o,
                             w->i_stride[0], &f->k[i], &f->p1[t], &f->p2[t]);
}

/* Not inlined: its partials stay out of the other calls' frames. */
static __attribute__((noinline)) void fwd_few_planes(const fwd_job *j)
{
    enum { PASS = 64 }; /* chunks per pass (parallel region): at least 512K values */
    const walk *w = &j->w;
    size_t c = w->items, q = w->chunk, chunks = (w->len + q - 1) / q;
    size_t total = w->groups * c * chunks;
    double s1[FEW_PLANES] = {0}, s2[FEW_PLANES] = {0}, p1[PASS], p2[PASS];
    float k[FEW_PLANES];
    for (size_t i = 0; i < c; i++)
        k[i] = shift_of(j->x[i * w->c_stride[0]]);
    few_job f = {j, k, c, q, chunks, 0, p1, p2};
    for (; f.first < total; f.first += PASS) {
        size_t cnt = total - f.first < PASS ? total - f.first : PASS;
        bnorm_parallel_run(few_task, &f, cnt);
        for (size_t t = 0; t < cnt; t++) {
            size_t i = (f.first + t) / chunks % c;
            s1[i] += p1[t];
            s2[i] += p2[t];
        }
    }
    BNORM_LINE_ALIGNED float a[FEW_PLANES];
    BNORM_LINE_ALIGNED float b[FEW_PLANES];
    BNORM_LINE_ALIGNED float m[FEW_PLANES];
    fwd_fold(j, 0, c, k, s1, s2, a, b, m);
    fwd_apply(j->kt, j->shape, j->g, j->x, j->y, 0, c, a, b, m, NULL, true);
}

/* The forward's reduction and fold of channels [c0, c1) of split rows in one pass
 * over their part of every row, into a, b, m (see wide_rows). Not inlined: its sums
 * stay out of the ranges' frames. */
static __attribute__((noinline)) void fwd_wide(const fwd_job *j, size_t c0, size_t c1,
                                               float *a, float *b, float *m)
{
    size_t nc = c1 - c0;
    BNORM_LINE_ALIGNED double s1[SPLIT];
    BNORM_LINE_ALIGNED double s2[SPLIT];
    BNORM_LINE_ALIGNED float k[SPLIT];
    const float *x = j->x + c0 * j->w.c_stride[0];
    for (size_t i = 0; i < nc; i++)
        k[i] = shift_of(x[i]); /* from the first row */
    walk wb = walk_block(&j->w, nc);
    reduce_block(j->kt, &wb, x, NULL, k, s1, s2, false);
    for (size_t i = 0; i < nc; i += BLOCK) {
        size_t n = nc - i < BLOCK ? nc - i : BLOCK;
        fwd_fold(j, c0 + i, n, k + i, s1 + i, s2 + i, a + i, b + i, m + i);
    }
}

/* Split rows (see SPLIT), channels [c0, c1): the ranges, or one pass over the rows
 * (wide_rows), fold, then one apply pass over the rows. Not inlined: its
 * coefficients stay out of the other calls' frames. */
static __attribute__((noinline)) void fwd_split(fwd_job *j, size_t c0, size_t c1,
                                                size_t per)
{
    BNORM_LINE_ALIGNED float a[SPLIT];
    BNORM_LINE_ALIGNED float b[SPLIT];
    BNORM_LINE_ALIGNED float m[SPLIT];
    j->fold_a = a, j->fold_b = b, j->fold_m = m, j->fold_c0 = c0;
    j->ranged = ranged(c1 - c0, per);
    if (wide_rows(&j->w))
        fwd_wide(j, c0, c1, a, b, m);
    else /* the ranges write coefficients, not rows */
        run_ranges(fwd_range, j, c0, c1, per, NULL);
    /* no pattern: rows of over a block are their own period */
    fwd_apply(j->kt, j->shape, j->g, j->x, j->y, c0, c1 - c0, a, b, m, NULL,
              bnorm_parallel_active());
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
    if ((st = bnorm_check_eps(eps)) != BNORM_OK)
        return st;
    size_t c = shape->c;
    bool same_geom = g[0].inner == g[1].inner && g[0].batch == g[1].batch;
    region out[] = {{y, g[1].extent}, {save_mean, c}, {save_invstd, c},
                    {running ? running->mean : NULL, c}, {running ? running->var : NULL, c}};
    region in[] = {{x, g[0].extent}, {gamma, c}, {beta, c}};
    if (any_overlap(out, 5, in, 3, 0, same_geom))
        return BNORM_ERR_ALIAS;

    fwd_job j = {kt, shape, {g[0], g[1]}, {0}, x, y, gamma, beta, eps, save_mean,
                 save_invstd, running, (double)shape->n * (double)shape->spatial, false,
                 NULL, NULL, NULL, 0, false};
    const bnorm_geom *gw[3] = {&g[0], &g[0], &g[1]};
    walk_init(&j.w, shape, gw, c);
    /* planes: the apply plan's spans are the planes, dense where x's and y's are */
    j.pipe = !j.w.rows && !j.w.sums.k &&
             !bnorm_apply_streams(&g[1], shape->spatial,
                                  g[0].inner == shape->spatial && g[1].inner == shape->spatial);
    size_t per = task_channels(&j.w, c, shape->n * shape->spatial);
    if (!j.w.rows && j.w.chunk < j.w.len && ranged(c, per)) {
        fwd_few_planes(&j);
        return BNORM_OK;
    }
    size_t width = split_width(&j.w, c, per);
    for (size_t c0 = 0; width && c0 < c; c0 += width)
        fwd_split(&j, c0, part_end(c0, c, width), per);
    if (!width) {
        j.ranged = ranged(c, per);
        run_ranges(fwd_range, &j, 0, c, per, range_lines(&j.w, y));
    }
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

/* dx = a * dy + b * (x - m) + k over rows of a block (a..k: one value per column). */
typedef struct apply2_job {
    const bnorm_kernels *kt;
    const walk *w;
    const float *x, *dy;
    float *dx;
    const float *a, *b, *m, *k;
} apply2_job;

static void apply2_span(const void *ctx, const size_t off[3], size_t count, size_t len)
{
    const apply2_job *j = ctx;
    j->kt->apply2_rows(count, len, j->x + off[0], j->w->i_stride[0], j->dy + off[1],
                       j->w->i_stride[1], j->dx + off[2], j->w->i_stride[2], j->a, j->b,
                       j->m, j->k);
}

static void apply2_range(const void *job, size_t r0, size_t r1)
{
    each_span(((const apply2_job *)job)->w, r0, r1, apply2_span, job);
}

/* dx = a * dy + b * (x - m) + k over a block of channels; with `pool`, rows in tasks
 * as the apply plan splits (bnorm_task_items). */
static void apply2_block(const bnorm_kernels *kt, const walk *w, const float *x,
                         const float *dy, float *dx, const float *a, const float *b,
                         const float *m, const float *k, bool pool)
{
    if (!w->rows) {
        for (size_t g = 0; g < w->groups; g++)
            kt->apply2_planes(w->items, w->len, x + g * w->g_stride[0], w->i_stride[0],
                              dy + g * w->g_stride[1], w->i_stride[1],
                              dx + g * w->g_stride[2], w->i_stride[2], a, b, m, k);
        return;
    }
    /* periodic: a, b, m and k repeated over the P columns */
    BNORM_LINE_ALIGNED float pat[4][BLOCK];
    if (w->period) {
        const float *src[4] = {a, b, m, k};
        for (int v = 0; v < 4; v++)
            repeat(pat[v], src[v], w->period, w->len);
        a = pat[0], b = pat[1], m = pat[2], k = pat[3];
    }
    size_t total = w->groups * w->items;
    apply2_job j = {kt, w, x, dy, dx, a, b, m, k};
    if (pool)
        bnorm_parallel_ranges(apply2_range, &j, 0, total, bnorm_task_items(total, w->len),
                              NULL);
    else
        last_first(total, w->len, apply2_range, &j);
}

/* A block of channels folded by the backward: dx = a dy + b (x - mean) + k. */
typedef struct bwd_block {
    size_t c0, nc;
    BNORM_LINE_ALIGNED float a[BLOCK];
    BNORM_LINE_ALIGNED float b[BLOCK];
    BNORM_LINE_ALIGNED float k[BLOCK];
} bwd_block;

/* The backward's apply pass over one folded block. */
static void bwd_apply(const bnorm_kernels *kt, const walk *w, const float *x,
                      const float *dy, float *dx, const float *save_mean,
                      const bwd_block *bb, bool pool)
{
    walk wb = walk_block(w, bb->nc);
    apply2_block(kt, &wb, x + bb->c0 * w->c_stride[0], dy + bb->c0 * w->c_stride[1],
                 dx + bb->c0 * w->c_stride[2], bb->a, bb->b, save_mean + bb->c0, bb->k,
                 pool);
}

typedef struct bwd_job {
    const bnorm_kernels *kt;
    walk w;
    const float *x, *dy;
    float *dx;
    const float *gamma, *save_mean, *save_invstd;
    float *dgamma, *dbeta;
    size_t m; /* values per channel */
    bool pipe;
    /* Set (split rows, see SPLIT): folded channel c goes to fold_a/b/k[c - fold_c0],
     * and the caller applies them. */
    float *fold_a, *fold_b, *fold_k;
    size_t fold_c0;
    bool ranged; /* as the forward's */
} bwd_job;

/* bwd_fold's loop over n channels, without a branch: inlined with gamma and without,
 * so that it vectorizes (8x1000: 1.5 ns a channel with a branch per output). */
static inline __attribute__((always_inline)) void
bwd_fold_loop(size_t n, const double *restrict sdy, const double *restrict sdyx,
              const float *restrict invstd, const float *restrict gamma, double inv_m,
              float *restrict dgamma, float *restrict dbeta, float *restrict a,
              float *restrict b, float *restrict k)
{
    for (size_t i = 0; i < n; i++) {
        double is = invstd[i], gm = gamma ? gamma[i] : 1.0;
        double dg = sdyx[i] * is;
        dgamma[i] = (float)dg;
        dbeta[i] = (float)sdy[i];
        a[i] = (float)(gm * is);
        b[i] = (float)(-gm * is * is * dg * inv_m);
        k[i] = (float)(-gm * is * sdy[i] * inv_m);
    }
}

/* The fold of channels [c0, c0 + nc) from their sums sdy, sdyx: dgamma, dbeta (NULL:
 * into scratch) and dx's coefficients a, b, k (the block's, from index 0). */
static void bwd_fold(const bwd_job *j, size_t c0, size_t nc, const double *sdy,
                     const double *sdyx, float *a, float *b, float *k)
{
    double inv_m = 1.0 / (double)j->m; /* the fold multiplies (see the forward) */
    BNORM_LINE_ALIGNED float dg_scratch[BLOCK];
    BNORM_LINE_ALIGNED float db_scratch[BLOCK];
    for (size_t o = 0; o < nc; o += BLOCK) {
        size_t n = nc - o < BLOCK ? nc - o : BLOCK, c = c0 + o;
        float *dg = j->dgamma ? j->dgamma + c : dg_scratch;
        float *db = j->dbeta ? j->dbeta + c : db_scratch;
        if (j->gamma)
            bwd_fold_loop(n, sdy + o, sdyx + o, j->save_invstd + c, j->gamma + c, inv_m, dg,
                          db, a + o, b + o, k + o);
        else
            bwd_fold_loop(n, sdy + o, sdyx + o, j->save_invstd + c, NULL, inv_m, dg, db,
                          a + o, b + o, k + o);
    }
}

/* The backward over channels [c0_range, c1). */
static void bwd_range(const void *job, size_t c0_range, size_t c1)
{
    const bwd_job *j = job;
    const bnorm_kernels *kt = j->kt;
    const walk w = j->w;
    const float *x = j->x, *dy = j->dy, *save_mean = j->save_mean;
    float *dx = j->dx;
    bool pipe = j->pipe;
    size_t c = c1 - c0_range;
    size_t block = pipe ? pipe_block_channels(c, j->m, 4) : block_channels(&w, j->m);
    /* A range that is not a task, with a pool: row chunks and the apply pass go
     * through it. */
    bool pool = !j->ranged && bnorm_parallel_active();
    BNORM_LINE_ALIGNED double sdy[BLOCK];
    BNORM_LINE_ALIGNED double sdyx[BLOCK];
    bwd_block blk[2]; /* the block being reduced and, pipelined, the one before */
    bwd_block *cur = &blk[0], *prev = NULL;
    for (size_t c0 = c0_range; c0 < c1; c0 += block) {
        size_t nc = c1 - c0 < block ? c1 - c0 : block;
        walk wb = walk_block(&w, nc);
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
                bwd_apply(kt, &w, x, dy, dx, save_mean, prev, pool);
            reduce_block(kt, &wb, xb, dyb, save_mean + c0, sdy, sdyx, pool);
        }
        cur->c0 = c0;
        cur->nc = nc;
        float *a = cur->a, *b = cur->b, *k = cur->k;
        if (j->fold_a) { /* split rows (only with dx): into the caller's coefficients */
            size_t o = c0 - j->fold_c0;
            a = j->fold_a + o, b = j->fold_b + o, k = j->fold_k + o;
        }
        bwd_fold(j, c0, nc, sdy, sdyx, a, b, k);
        if (pipe) { /* applied with the next block's dot products, or after the loop */
            prev = cur;
            cur = cur == &blk[0] ? &blk[1] : &blk[0];
        } else if (dx && !j->fold_a) {
            bwd_apply(kt, &w, x, dy, dx, save_mean, cur, pool);
        }
    }
    if (prev)
        bwd_apply(kt, &w, x, dy, dx, save_mean, prev, pool);
}

/* The backward's reduction and fold of channels [c0, c1) of split rows in one pass
 * over their part of every row, into a, b, k (see wide_rows). Not inlined, as
 * fwd_wide. */
static __attribute__((noinline)) void bwd_wide(const bwd_job *j, size_t c0, size_t c1,
                                               float *a, float *b, float *k)
{
    BNORM_LINE_ALIGNED double sdy[SPLIT];
    BNORM_LINE_ALIGNED double sdyx[SPLIT];
    const walk *w = &j->w;
    walk wb = walk_block(w, c1 - c0);
    reduce_block(j->kt, &wb, j->x + c0 * w->c_stride[0], j->dy + c0 * w->c_stride[1],
                 j->save_mean + c0, sdy, sdyx, false);
    bwd_fold(j, c0, c1 - c0, sdy, sdyx, a, b, k);
}

/* Split rows (see SPLIT), channels [c0, c1): the ranges, or one pass over the rows
 * (wide_rows), fold, then one apply pass over the rows. Not inlined: its
 * coefficients stay out of the other calls' frames. */
static __attribute__((noinline)) void bwd_split(bwd_job *j, size_t c0, size_t c1,
                                                size_t per)
{
    BNORM_LINE_ALIGNED float a[SPLIT];
    BNORM_LINE_ALIGNED float b[SPLIT];
    BNORM_LINE_ALIGNED float k[SPLIT];
    j->fold_a = a, j->fold_b = b, j->fold_k = k, j->fold_c0 = c0;
    j->ranged = ranged(c1 - c0, per);
    if (wide_rows(&j->w))
        bwd_wide(j, c0, c1, a, b, k);
    else /* the ranges write coefficients, not rows */
        run_ranges(bwd_range, j, c0, c1, per, NULL);
    const walk *w = &j->w;
    walk wb = walk_block(w, c1 - c0);
    apply2_block(j->kt, &wb, j->x + c0 * w->c_stride[0], j->dy + c0 * w->c_stride[1],
                 j->dx + c0 * w->c_stride[2], a, b, j->save_mean + c0, k,
                 bnorm_parallel_active());
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
                 shape->n * shape->spatial, false, NULL, NULL, NULL, 0, false};
    const bnorm_geom *gw[3] = {&g[0], &g[1], &g[2]};
    walk_init(&j.w, shape, gw, c);
    j.pipe = dx && !j.w.rows && !j.w.sums.k;
    size_t per = task_channels(&j.w, c, j.m);
    size_t width = dx ? split_width(&j.w, c, per) : 0;
    for (size_t c0 = 0; width && c0 < c; c0 += width)
        bwd_split(&j, c0, part_end(c0, c, width), per);
    if (!width) {
        j.ranged = ranged(c, per);
        run_ranges(bwd_range, &j, 0, c, per, range_lines(&j.w, dx));
    }
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
