/*
 * Host-driven parallelism: every operation gives bit-identical results serially, through
 * a pool of 1, 2, 4 or 16 OpenMP threads, through pthreadpool, and with a parallel-for
 * that runs the tasks in reverse order; every kernel table this CPU can run. And the
 * stack a call needs.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "dispatch.h"
#include "ops.h"
#include "test_util.h"
#if BNORM_TEST_OPENMP
#include "bnorm_openmp.h"
#endif
#if BNORM_TEST_PTHREADPOOL
#include <pthreadpool.h>

#include "bnorm_pthreadpool.h"
#endif

#define SEED 0x9a7a11e1ull

/* Parallel calls (through the reverse pool) of run_all's apply, training forward
 * and backward, in its last run. */
static size_t apply_calls, forward_calls, backward_calls;

/* Every output of every operation on one shape, into one buffer of
 * RUN_ALL_FLOATS(n, c) floats (n values, c channels). */
#define RUN_ALL_FLOATS(n, c) (7 * (n) + 6 * (c))
typedef struct outputs {
    float *buf;
    size_t count;
} outputs;

static void run_all(const bnorm_kernels *k, const bnorm_shape *sh, const float *x,
                    const float *dy, const float *params, outputs *o)
{
    size_t n = sh->n * sh->c * sh->spatial, c = sh->c;
    float *p = o->buf;
    const float *gamma = params, *beta = params + c, *mean = params + 2 * c;
    const float *var = params + 3 * c;
    bnorm_activation relu = {BNORM_ACT_RELU, 0, 0};
    size_t calls = reverse_ranges;
    cr_assert_eq(bnorm_inference_apply_with(k, sh, x, NULL, p, NULL, gamma, beta, &relu),
                 BNORM_OK);
    apply_calls = reverse_ranges - calls;
    p += n;
    cr_assert_eq(bnorm_inference_with(k, sh, x, NULL, p, NULL, gamma, beta, mean, var,
                                      1e-5f, NULL),
                 BNORM_OK);
    p += n;
    float *smean = p + n, *sinv = p + n + c, *rmean = p + n + 2 * c, *rvar = p + n + 3 * c;
    memcpy(rmean, mean, c * sizeof(float));
    memcpy(rvar, var, c * sizeof(float));
    bnorm_running_stats run = {rmean, rvar, 0.1f, BNORM_MOMENTUM_PYTORCH};
    calls = reverse_ranges;
    cr_assert_eq(bnorm_training_forward_with(k, sh, x, NULL, p, NULL, gamma, beta, 1e-5f,
                                             smean, sinv, &run),
                 BNORM_OK);
    forward_calls = reverse_ranges - calls;
    p += n + 4 * c;
    /* in place: each channel's statistics are taken before its outputs overwrite x */
    memcpy(p, x, n * sizeof(float));
    cr_assert_eq(bnorm_training_forward_with(k, sh, p, NULL, p, NULL, gamma, beta, 1e-5f,
                                             NULL, NULL, NULL),
                 BNORM_OK);
    p += n;
    calls = reverse_ranges;
    cr_assert_eq(bnorm_training_backward_with(k, sh, x, NULL, dy, NULL, gamma, smean, sinv,
                                              p, NULL, p + n, p + n + c),
                 BNORM_OK);
    backward_calls = reverse_ranges - calls;
    p += n + 2 * c;
    /* in place, dx over a copy of dy (the kernels' in-place rows tiles) */
    memcpy(p, dy, n * sizeof(float));
    cr_assert_eq(bnorm_training_backward_with(k, sh, x, NULL, p, NULL, gamma, smean, sinv,
                                              p, NULL, NULL, NULL),
                 BNORM_OK);
    p += n;
    cr_assert_eq(bnorm_frozen_backward_with(k, sh, dy, NULL, gamma, var, 1e-5f, p, NULL),
                 BNORM_OK);
    p += n;
    o->count = (size_t)(p - o->buf);
}

static const bnorm_shape shapes[] = {
    {2, 64, 28 * 28, BNORM_NCHW}, {2, 64, 28 * 28, BNORM_NHWC}, {1, 3, 50 * 50, BNORM_NHWC},
    {1, 3, 112 * 112, BNORM_NCHW}, {256, 64, 1, BNORM_NCHW}, {33, 1000, 1, BNORM_NHWC},
    {1, 600, 56, BNORM_NHWC},       {4, 17, 33 * 33, BNORM_NHWC},
    /* split rows in parts (C over 1024): two equal, a narrower last, three; (N, C)
     * NCHW rows over a block, and in parts */
    {1, 1100, 64, BNORM_NHWC},     {2, 1025, 16, BNORM_NHWC},     {1, 2049, 36, BNORM_NHWC},
    {56, 600, 1, BNORM_NCHW},      {45, 1100, 1, BNORM_NCHW},
    /* rows in several chunks: small C (periodic rows), C = 64, C over a block (two
     * blocks, more chunks than one pass holds), (N, C) NCHW; C over 1024 in parts, with
     * a pool too (the rows are too many for column ranges) */
    {2, 3, 100 * 100, BNORM_NHWC}, {1, 64, 48 * 48, BNORM_NHWC}, {1, 512, 28 * 28, BNORM_NHWC},
    {3000, 24, 1, BNORM_NCHW},     {1, 1030, 512, BNORM_NHWC},
    /* planes fewer than their tasks, applied in spans (1x3x112x112 above too), here
     * over two images, with a shorter last span; fewer than 8 planes longer than
     * PLANE_CHUNK (src/training.c), reduced in chunks: three of one plane over two
     * images, two of three planes, two of 33 images' plane (more than one pass) */
    {2, 1, 201 * 199, BNORM_NCHW}, {1, 3, 150 * 150, BNORM_NCHW},
    {33, 1, 16392, BNORM_NCHW},
    /* inference in channel ranges (2x64x28x28 above too): over three images with a
     * shorter last range; ranges of several fold blocks. Training's column ranges
     * cut on y's and dx's lines (rows a multiple of 16 floats) */
    {3, 1001, 13, BNORM_NCHW},     {1, 20001, 2, BNORM_NCHW},     {1, 2048, 17, BNORM_NHWC},
    /* inference in column ranges: NHWC (rows on lines), (N, C) NCHW rows (not) */
    {1, 2048, 20, BNORM_NHWC},     {40, 1030, 1, BNORM_NCHW},
    /* dense rows longer than a task's element range (flat_range in src/apply_plan.c):
     * ranges that start and end inside one row */
    {1, 20000, 2, BNORM_NHWC},     {3, 30000, 1, BNORM_NCHW},
};

/* The shapes of a list, then WIDE shapes of split rows whose x is larger than the
 * cached pass: called serially, they are reduced in one pass over whole rows (C =
 * 300) or over each part of the rows (C = 1100, two images; wide_rows in
 * src/training.c), under a pool block by block. Sized from this CPU's cached pass,
 * so that the serial run takes that path whatever the L2. */
#define WIDE 2
static bnorm_shape listed_or_wide(const bnorm_shape *list, size_t count, size_t i)
{
    if (i < count)
        return list[i];
    size_t n = i == count ? 1 : 2, c = i == count ? 300 : 1100;
    return (bnorm_shape){n, c, bnorm_cached_pass_bytes() / (n * c * sizeof(float)) + 3,
                         BNORM_NHWC};
}

/* Each channel's first value 1e4 out: the forward sums such channels a second time
 * about their mean (refine in src/training.c), inside whichever task folds them. */
static void put_far_first(const bnorm_shape *sh, float *v)
{
    for (size_t ch = 0; ch < sh->c; ch++)
        v[sh->layout == BNORM_NHWC ? ch : ch * sh->spatial] += 1e4f;
}

typedef void (*configure_fn)(int variant);

enum { DATA_RANDOM, DATA_CANCELLING, DATA_FAR_FIRST, DATA_KINDS };
static const char *const data_names[DATA_KINDS] = {"", " cancelling", " far first value"};

static void configure_reverse(int variant)
{
    (void)variant;
    bnorm_set_parallel_for(reverse_parallel_for, NULL);
}

/* Tensors of more than this many values split their work: the apply (chunks of 32K
 * values), and the training forward and backward where C > 1 (tasks of channels of at
 * least 8K values, chunks of rows of 16K); so through the reverse pool, whose calls
 * are counted, their comparison is not serial against serial. */
#define SPLIT_VALUES 32768

/* Compares every output under each configuration with the serial run; random,
 * cancelling or far-first-value inputs. */
static void check_identical_data(const char *what, configure_fn configure, int variants,
                                 int data)
{
    tables run = runnable_tables();
    bnorm_rng r;
    bnorm_rng_init(&r, SEED);
    for (size_t si = 0; si < COUNT(shapes) + WIDE; si++) {
        const bnorm_shape shape = listed_or_wide(shapes, COUNT(shapes), si), *sh = &shape;
        size_t n = sh->n * sh->c * sh->spatial, c = sh->c;
        size_t total = RUN_ALL_FLOATS(n, c);
        float *x = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float));
        float *params = malloc(4 * c * sizeof(float));
        outputs serial = {malloc(total * sizeof(float)), 0};
        outputs par = {malloc(total * sizeof(float)), 0};
        cr_assert(x && dy && params && serial.buf && par.buf);
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)(10.0 + bnorm_rng_normal(&r));
            dy[i] = (float)bnorm_rng_normal(&r);
        }
        if (data == DATA_CANCELLING) {
            fill_cancelling(sh, x, &r);
            fill_cancelling(sh, dy, &r);
        }
        if (data == DATA_FAR_FIRST)
            put_far_first(sh, x);
        for (size_t i = 0; i < 3 * c; i++)
            params[i] = (float)bnorm_rng_normal(&r);
        for (size_t i = 3; i < c; i += 4) /* subnormal outputs: a flush-to-zero shows */
            params[i] *= 1e-39f, params[c + i] *= 1e-39f;
        for (size_t i = 0; i < c; i++)
            params[3 * c + i] = (float)(0.5 + bnorm_rng_uniform(&r));
        for (size_t t = 0; t < run.n; t++) {
            bnorm_set_parallel_for(NULL, NULL);
            run_all(run.t[t].k, sh, x, dy, params, &serial);
            for (int v = 0; v < variants; v++) {
                memset(par.buf, 0, total * sizeof(float));
                configure(v);
                run_all(run.t[t].k, sh, x, dy, params, &par);
                bnorm_set_parallel_for(NULL, NULL);
                if (configure == configure_reverse && n > SPLIT_VALUES)
                    cr_expect(apply_calls && (c == 1 || (forward_calls && backward_calls)),
                              "[%s] %zux%zux%zu %s: parallel calls: apply %zu, forward %zu, "
                              "backward %zu",
                              run.t[t].label, sh->n, sh->c, sh->spatial,
                              layout_name(sh->layout), apply_calls, forward_calls,
                              backward_calls);
                cr_assert_eq(par.count, serial.count);
                cr_expect(memcmp(par.buf, serial.buf, serial.count * sizeof(float)) == 0,
                          "%s variant %d [%s] shape %zux%zux%zu %s%s: results differ from "
                          "the serial run",
                          what, v, run.t[t].label, sh->n, sh->c, sh->spatial,
                          layout_name(sh->layout), data_names[data]);
            }
        }
        free(x), free(dy), free(params), free(serial.buf), free(par.buf);
    }
}

static void check_identical(const char *what, configure_fn configure, int variants)
{
    for (int data = 0; data < DATA_KINDS; data++)
        check_identical_data(what, configure, variants, data);
}

Test(parallel, reverse_order_is_identical)
{
    reverse_ranges = reverse_nested = 0;
    check_identical("reverse order", configure_reverse, 1); /* checks the splits too */
    cr_expect_eq(reverse_nested, 0, "%zu parallel calls from inside a task",
                 reverse_nested);
}

/* Work of one task never goes through the pool: a parallel call costs the pool's fork
 * and join (docs/guide.md: 0.72 us on two threads), more than a small tensor's whole
 * call. Every operation on tensors below one task's worth (16K values: rows, planes
 * of several channels, and C above a block over few rows), with a pool set, runs on
 * the calling thread. */
Test(parallel, one_task_makes_no_parallel_call)
{
    static const bnorm_shape small[] = {
        {2, 8, 16, BNORM_NHWC},    {8, 3, 5, BNORM_NHWC}, {16, 8, 1, BNORM_NCHW},
        {4, 1, 16, BNORM_NCHW},    {2, 8, 16, BNORM_NCHW}, {1, 300, 4, BNORM_NHWC},
        {1, 15, 1000, BNORM_NCHW}, {2, 600, 13, BNORM_NHWC},
    };
    tables run = runnable_tables();
    bnorm_rng r;
    bnorm_rng_init(&r, SEED ^ 0x5a11);
    for (size_t si = 0; si < COUNT(small); si++) {
        const bnorm_shape *sh = &small[si];
        size_t n = sh->n * sh->c * sh->spatial, c = sh->c;
        float *x = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float));
        float *params = malloc(4 * c * sizeof(float));
        outputs o = {malloc(RUN_ALL_FLOATS(n, c) * sizeof(float)), 0};
        cr_assert(x && dy && params && o.buf);
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)bnorm_rng_normal(&r);
            dy[i] = (float)bnorm_rng_normal(&r);
        }
        for (size_t i = 0; i < 4 * c; i++)
            params[i] = (float)(0.5 + bnorm_rng_uniform(&r));
        for (size_t t = 0; t < run.n; t++) {
            reverse_ranges = 0;
            bnorm_set_parallel_for(reverse_parallel_for, NULL);
            run_all(run.t[t].k, sh, x, dy, params, &o);
            bnorm_set_parallel_for(NULL, NULL);
            cr_expect_eq(reverse_ranges, 0, "[%s] %zux%zux%zu %s: %zu parallel calls",
                         run.t[t].label, sh->n, sh->c, sh->spatial, layout_name(sh->layout),
                         reverse_ranges);
        }
        free(x), free(dy), free(params), free(o.buf);
    }
}

/* bnorm_inference over NCHW planes runs channel ranges, each folding its channels:
 * 20001 channels of 2 values are one parallel call of 4 tasks (folded serially, each
 * fold block of 2048 channels was one task's worth, and nothing ran in parallel). */
Test(parallel, inference_folds_in_channel_ranges)
{
    bnorm_shape sh = {1, 20001, 2, BNORM_NCHW};
    size_t n = sh.c * sh.spatial;
    float *x = calloc(n, sizeof(float)), *y = malloc(n * sizeof(float));
    float *p = malloc(2 * sh.c * sizeof(float));
    cr_assert(x && y && p);
    for (size_t i = 0; i < 2 * sh.c; i++)
        p[i] = 1.0f;
    reverse_ranges = reverse_tasks = 0;
    bnorm_set_parallel_for(reverse_parallel_for, NULL);
    bnorm_status st = bnorm_inference(&sh, x, NULL, y, NULL, p, p, p + sh.c, p + sh.c,
                                      0.0f, NULL);
    bnorm_set_parallel_for(NULL, NULL);
    cr_assert_eq(st, BNORM_OK);
    cr_expect(reverse_ranges == 1 && reverse_tasks == 4, "%zu parallel calls, %zu tasks",
              reverse_ranges, reverse_tasks);
    for (size_t i = 0; i < n; i++) /* (0 - 1) * 1 / sqrt(1) + 1 */
        cr_assert_eq(y[i], 0.0f);
    free(x), free(y), free(p);
}

#if BNORM_TEST_OPENMP
static int omp_threads[] = {1, 2, 4, 16, -3}; /* below 1: OpenMP's default */

static void configure_openmp(int variant)
{
    bnorm_set_parallel_for(bnorm_openmp_parallel_for, &omp_threads[variant]);
}

Test(parallel, openmp_thread_counts_are_identical)
{
    check_identical("openmp", configure_openmp, 5);
}
#endif

#if BNORM_TEST_PTHREADPOOL
static pthreadpool_t pools[2];

static void configure_pthreadpool(int variant)
{
    bnorm_set_parallel_for(bnorm_pthreadpool_parallel_for, pools[variant]);
}

Test(parallel, pthreadpool_is_identical)
{
    pools[0] = pthreadpool_create(2);
    pools[1] = pthreadpool_create(4);
    cr_assert(pools[0] && pools[1]);
    check_identical("pthreadpool", configure_pthreadpool, 2);
    pthreadpool_destroy(pools[0]);
    pthreadpool_destroy(pools[1]);
}
#endif

Test(parallel, setting_is_per_thread_and_clearable)
{
    reverse_ranges = 0;
    bnorm_set_parallel_for(reverse_parallel_for, NULL);
    bnorm_set_parallel_for(NULL, NULL);
    float x[4096], y[4096], s[64], b[64];
    for (int i = 0; i < 4096; i++)
        x[i] = (float)i;
    for (int i = 0; i < 64; i++)
        s[i] = 1.0f, b[i] = 0.0f;
    bnorm_shape sh = {1, 64, 64, BNORM_NCHW};
    cr_assert_eq(bnorm_inference_apply(&sh, x, NULL, y, NULL, s, b, NULL), BNORM_OK);
    cr_expect_eq(reverse_ranges, 0, "a cleared parallel-for was still used");
}

/*
 * Strided tensors through a pool (padded pixels or planes, gaps between images): the
 * training forward (with and without gamma and beta) and backward give the serial
 * results bit for bit and leave the gaps alone. The shapes take the split rows (C up
 * to 1024 over few rows; C over 1024, serially in parts; over many rows, serially one
 * pass over the rows), the row chunks, one row per image, and planes (few and long
 * ones too, applied in spans, and reduced in chunks).
 */
static const bnorm_shape strided_shapes[] = {
    {2, 600, 28, BNORM_NHWC},      {33, 1000, 1, BNORM_NHWC}, {2, 1100, 32, BNORM_NHWC},
    {1, 64, 48 * 48, BNORM_NHWC}, {2, 64, 256, BNORM_NCHW},    {1, 3, 111 * 113, BNORM_NCHW},
    {2, 3, 130 * 131, BNORM_NCHW},
};

#define GAP (-333.0f)

static void strided_training(const bnorm_kernels *k, const bnorm_shape *sh,
                             const bnorm_strides *st, size_t extent, const float *x,
                             const float *dy, const float *gamma, float *out)
{
    size_t c = sh->c;
    float *y = out, *dx = out + extent, *y1 = out + 2 * extent, *stats = out + 3 * extent;
    for (size_t i = 0; i < 3 * extent; i++)
        out[i] = GAP;
    cr_assert_eq(bnorm_training_forward_with(k, sh, x, st, y, st, gamma, gamma + c, 1e-5f,
                                             stats, stats + c, NULL),
                 BNORM_OK);
    cr_assert_eq(bnorm_training_backward_with(k, sh, x, st, dy, st, gamma, stats,
                                              stats + c, dx, st, stats + 2 * c,
                                              stats + 3 * c),
                 BNORM_OK);
    /* gamma and beta NULL (1 and 0) */
    cr_assert_eq(bnorm_training_forward_with(k, sh, x, st, y1, st, NULL, NULL, 1e-5f, NULL,
                                             NULL, NULL),
                 BNORM_OK);
}

Test(parallel, strided_is_identical)
{
    tables run = runnable_tables();
    bnorm_rng r;
    bnorm_rng_init(&r, SEED ^ 0x5717);
    for (size_t si = 0; si < COUNT(strided_shapes) + WIDE; si++) {
        const bnorm_shape shape = listed_or_wide(strided_shapes, COUNT(strided_shapes), si);
        const bnorm_shape *sh = &shape;
        size_t c = sh->c;
        bool nhwc = sh->layout == BNORM_NHWC;
        bnorm_strides st = {nhwc ? c + 5 : sh->spatial + 3, 0};
        st.batch = (nhwc ? sh->spatial : c) * st.inner + 7;
        size_t extent = (sh->n - 1) * st.batch + (nhwc ? sh->spatial : c) * st.inner;
        size_t total = 3 * extent + 4 * c;
        float *x = malloc(extent * sizeof(float)), *dy = malloc(extent * sizeof(float));
        float *gamma = malloc(2 * c * sizeof(float));
        float *serial = malloc(total * sizeof(float)), *par = malloc(total * sizeof(float));
        cr_assert(x && dy && gamma && serial && par);
        for (size_t i = 0; i < extent; i++) {
            x[i] = (float)(3.0 + bnorm_rng_normal(&r));
            dy[i] = (float)bnorm_rng_normal(&r);
        }
        for (size_t i = 0; i < 2 * c; i++)
            gamma[i] = (float)bnorm_rng_normal(&r);
        for (size_t t = 0; t < run.n; t++) {
            bnorm_set_parallel_for(NULL, NULL);
            strided_training(run.t[t].k, sh, &st, extent, x, dy, gamma, serial);
            reverse_ranges = 0;
            bnorm_set_parallel_for(reverse_parallel_for, NULL);
            strided_training(run.t[t].k, sh, &st, extent, x, dy, gamma, par);
            bnorm_set_parallel_for(NULL, NULL);
            cr_expect(reverse_ranges > 0, "[%s] %zux%zux%zu: no task split", run.t[t].label,
                      sh->n, sh->c, sh->spatial);
            cr_expect(memcmp(par, serial, total * sizeof(float)) == 0,
                      "[%s] strided %zux%zux%zu %s: results differ from the serial run",
                      run.t[t].label, sh->n, sh->c, sh->spatial, layout_name(sh->layout));
            size_t gaps = 0, elements = 0; /* padding stays GAP */
            for (size_t i = 0; i < extent; i++) {
                size_t in = i % st.batch; /* the offset in its image */
                bool gap = in >= (nhwc ? sh->spatial : c) * st.inner ||
                           in % st.inner >= (nhwc ? c : sh->spatial);
                elements += !gap;
                gaps += gap && (par[i] != GAP || par[extent + i] != GAP ||
                                par[2 * extent + i] != GAP);
            }
            cr_assert_eq(elements, sh->n * c * sh->spatial);
            cr_expect_eq(gaps, 0, "[%s] %zu padding values written", run.t[t].label, gaps);
        }
        free(x), free(dy), free(gamma), free(serial), free(par);
    }
}

/*
 * Column ranges that write rows (training over few wide NHWC rows: 1x2048x20 runs
 * five ranges of about 410 channels; bnorm_inference over it, four of 512) are cut
 * on the output's lines wherever the output starts, and the channels before the
 * first line go to the last task, so no line is written by two tasks. No result
 * shows where the cuts are: a pool that runs one task at a time attributes each
 * changed output value to its task. Rows whose stride is not a whole number of lines
 * cannot be cut so, and there the watch sees shared lines (which shows that it can).
 */
typedef struct watch_state {
    const float *out;  /* the watched output, n floats */
    float *seen;       /* its values after the last task */
    size_t n;
    long *owner;       /* per line: the task that wrote it first */
    size_t shared;     /* lines written by two tasks */
} watch_state;
static watch_state watch;

static void watching_parallel_for(void *pool, bnorm_task_fn task, void *context,
                                  size_t range)
{
    (void)pool;
    uintptr_t line0 = (uintptr_t)watch.out / 64;
    for (size_t t = 0; t < range; t++) {
        task(context, t);
        for (size_t i = 0; i < watch.n; i++) {
            if (bnorm_conf_same_bits(watch.out[i], watch.seen[i]))
                continue;
            watch.seen[i] = watch.out[i];
            size_t l = (uintptr_t)(watch.out + i) / 64 - line0;
            if (watch.owner[l] < 0) {
                watch.owner[l] = (long)t;
            } else if (watch.owner[l] != (long)t) {
                watch.shared++;
                watch.owner[l] = (long)t; /* count each further writer once */
            }
        }
    }
}

/* Shared lines of y (training forward), dx (backward) and y (bnorm_inference), the
 * outputs starting `off` floats past a line. */
static size_t shared_lines(const bnorm_shape *sh, size_t off, const float *x,
                           const float *dy, const float *params, float *buf)
{
    size_t n = sh->n * sh->c * sh->spatial, c = sh->c, lines = n / 16 + 2, total = 0;
    long *owner = malloc(lines * sizeof(long));
    float *seen = malloc(n * sizeof(float));
    cr_assert(owner && seen);
    const float *gamma = params, *beta = params + c, *mean = params + 2 * c;
    const float *var = params + 3 * c; /* also save_mean and save_invstd */
    for (int pass = 0; pass < 3; pass++) {
        float *out = buf + off;
        for (size_t i = 0; i < n; i++)
            out[i] = seen[i] = GAP;
        for (size_t i = 0; i < lines; i++)
            owner[i] = -1;
        watch = (watch_state){out, seen, n, owner, 0};
        bnorm_set_parallel_for(watching_parallel_for, NULL);
        bnorm_status st =
            pass == 0   ? bnorm_training_forward(sh, x, NULL, out, NULL, gamma, beta, 1e-5f,
                                                 NULL, NULL, NULL)
            : pass == 1 ? bnorm_training_backward(sh, x, NULL, dy, NULL, gamma, mean, var,
                                                  out, NULL, NULL, NULL)
                        : bnorm_inference(sh, x, NULL, out, NULL, gamma, beta, mean, var,
                                          1e-5f, NULL);
        bnorm_set_parallel_for(NULL, NULL);
        cr_assert_eq(st, BNORM_OK);
        total += watch.shared;
    }
    free(owner), free(seen);
    return total;
}

Test(parallel, column_ranges_write_whole_lines)
{
    const bnorm_shape aligned = {1, 2048, 20, BNORM_NHWC};
    const bnorm_shape unaligned = {1, 2040, 20, BNORM_NHWC};
    size_t n = aligned.c * aligned.spatial, c = aligned.c;
    float *x = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float));
    float *params = malloc(4 * c * sizeof(float));
    float *buf = aligned_alloc(64, (n + 64) * sizeof(float));
    cr_assert(x && dy && params && buf);
    bnorm_rng r;
    bnorm_rng_init(&r, SEED ^ 0x11e5);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(2.0 + bnorm_rng_normal(&r));
        dy[i] = (float)bnorm_rng_normal(&r);
    }
    for (size_t i = 0; i < 4 * c; i++) /* gamma, beta, mean, var */
        params[i] = (float)(1.0 + bnorm_rng_uniform(&r));
    size_t unaligned_shared = 0;
    for (size_t off = 0; off < 16; off++) {
        size_t shared = shared_lines(&aligned, off, x, dy, params, buf);
        cr_expect_eq(shared, 0, "output %zu floats past a line: %zu lines written by two "
                     "tasks", off, shared);
        unaligned_shared += shared_lines(&unaligned, off, x, dy, params, buf);
    }
    cr_expect(unaligned_shared > 0, "rows of 2040 floats: the watch saw no shared line");
    free(x), free(dy), free(params), free(buf);
}

/*
 * A call's stack (docs/guide.md: in an optimized build, up to about 60 KB in
 * training, where a block of channels' partial sums and coefficients live): every
 * operation on every shape above, serially and through a pool that runs the tasks on
 * the calling thread (the deepest chains: a split call's frame, then its range
 * task's or its pass over whole rows', then the reduction's), on a thread with SMALL_STACK of stack over a 64 KB guard, larger
 * than any frame, so that an overflow crashes the test instead of jumping the guard.
 * Statuses are counted here and asserted on the test's own thread. Unoptimized
 * builds need far more (the guide says so): the test is not built there.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SMALL_STACK ((size_t)256 << 10) /* AddressSanitizer's frames are larger */
#else
#define SMALL_STACK ((size_t)96 << 10)
#endif
#define STACK_GUARD ((size_t)64 << 10)

#if defined(__OPTIMIZE__)
static void *every_op(void *arg)
{
    size_t *failures = arg;
    for (int pool = 0; pool < 2; pool++) {
        bnorm_set_parallel_for(pool ? reverse_parallel_for : NULL, NULL);
        for (size_t si = 0; si < COUNT(shapes) + WIDE; si++) {
            const bnorm_shape shape = listed_or_wide(shapes, COUNT(shapes), si);
            const bnorm_shape *sh = &shape;
            size_t n = sh->n * sh->c * sh->spatial, c = sh->c;
            float *t = malloc((4 * n + 8 * c) * sizeof(float));
            if (!t) {
                (*failures)++;
                continue;
            }
            float *x = t, *y = t + n, *dy = t + 2 * n, *dx = t + 3 * n, *p = t + 4 * n;
            for (size_t i = 0; i < n; i++) {
                x[i] = (float)(i % 7);
                dy[i] = (float)(i % 5) - 2.0f;
            }
            for (size_t i = 0; i < 8 * c; i++)
                p[i] = 1.0f;
            float *gamma = p, *beta = p + c, *mean = p + 2 * c, *var = p + 3 * c;
            float *smean = p + 4 * c, *sinv = p + 5 * c, *dg = p + 6 * c, *db = p + 7 * c;
            bnorm_running_stats run = {mean, var, 0.1f, BNORM_MOMENTUM_PYTORCH};
            bnorm_status st[] = {
                bnorm_training_forward(sh, x, NULL, y, NULL, gamma, beta, 1e-5f, smean,
                                       sinv, &run),
                bnorm_training_backward(sh, x, NULL, dy, NULL, gamma, smean, sinv, dx, NULL,
                                        dg, db),
                bnorm_inference(sh, x, NULL, y, NULL, gamma, beta, mean, var, 1e-5f, NULL),
                bnorm_inference_apply(sh, x, NULL, y, NULL, gamma, beta, NULL),
                bnorm_frozen_backward(sh, dy, NULL, gamma, var, 1e-5f, dx, NULL),
            };
            for (size_t i = 0; i < COUNT(st); i++)
                *failures += st[i] != BNORM_OK;
            free(t);
        }
    }
    bnorm_set_parallel_for(NULL, NULL);
    return NULL;
}

Test(parallel, every_op_fits_a_small_stack)
{
    pthread_attr_t attr;
    pthread_t thread;
    size_t failures = 0;
    cr_assert_eq(pthread_attr_init(&attr), 0);
    cr_assert_eq(pthread_attr_setstacksize(&attr, SMALL_STACK), 0);
    cr_assert_eq(pthread_attr_setguardsize(&attr, STACK_GUARD), 0);
    cr_assert_eq(pthread_create(&thread, &attr, every_op, &failures), 0);
    cr_assert_eq(pthread_join(thread, NULL), 0);
    pthread_attr_destroy(&attr);
    cr_expect_eq(failures, 0, "%zu calls failed", failures);
}
#endif
