/*
 * The shape matrix and the loop that runs an operation over it.
 *
 * Every shape of the matrix below (C x spatial x N, both layouts) runs dense, its
 * last element against a guard page or (every other dense case) its first element
 * right after one, and once more in one of three memory variants, in turn: strided
 * (padding between planes/pixels and images), in place, or misaligned by 1..15
 * floats. A width sweep adds lengths
 * below, at and above the kernels' vector (4, 8) and unroll (16, 32) widths in both
 * the contiguous dimension and the channel dimension. Tiny tensors (C = 1..33, one
 * or two pixels of one image: one kernel call, no plan) run in every memory variant.
 * A small-plane sweep (NCHW) runs every memory variant but the strided one (padded
 * planes take the per-plane path), and two more with images one or more floats
 * apart but dense planes inside each ("batch-gap", out of place and in place). Rows
 * shapes large enough for several chunks of training's row reductions (small C dense
 * and strided, C over a block, C over 1024 in parts and in the apply's column strips,
 * one of them sized past this CPU's cached pass) follow. Activations and special
 * values (NaN, Inf, -0, denormals) rotate across cases.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>

#include "conformance.h"
#include "dispatch.h"

static const size_t full_c[] = {1, 2, 3, 7, 8, 9, 17, 64, 1000};
static const size_t full_s[] = {1, 2, 7, 49, 3136};
static const size_t full_n[] = {1, 2, 8};
static const size_t quick_c[] = {1, 3, 8, 9, 17, 64};
static const size_t quick_s[] = {1, 2, 7, 49};
static const size_t quick_n[] = {1, 2};
static const size_t sweep[] = {1,  2,  3,  4,  5,  7,  8,  9,  15, 16, 17,  23,  24,
                               31, 32, 33, 39, 40, 47, 63, 64, 65, 95, 96, 97, 127, 129};
/* Tiny tensors: C = 1..TINY_C_MAX. */
#define TINY_C_MAX 33

/* Small planes (NCHW), where consecutive planes are one array to the apply (vectors
 * straddle plane boundaries at every lane position) and per-plane costs dominate the
 * reductions: every length up to two AVX2 vectors and a few typical ones, with C
 * around the vector widths. */
static const size_t plane_s[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                 12, 13, 14, 15, 16, 17, 31, 49, 63, 196};
static const size_t plane_c[] = {4, 7, 8, 9, 16, 17};
static const size_t quick_plane_s[] = {3, 7, 8, 9, 49};
/* Training rows in several chunks: small C (periodic), and 64. */
static const size_t rows_c[] = {1, 2, 3, 5, 7, 17, 64};
/* Shapes of at least this many elements run dense only (time, not coverage). */
#define BIG_ELEMENTS ((size_t)4 << 20)

static const char *const act_names[] = {"none", "relu", "clamp"};

void bnorm_conf_case_describe(const bnorm_conf_case *cs, char *buf, size_t size)
{
    snprintf(buf, size, "%s %zux%zux%zu %s%s act=%s seed=0x%016llx",
             cs->shape.layout == BNORM_NCHW ? "nchw" : "nhwc", cs->shape.n, cs->shape.c,
             cs->shape.spatial, cs->variant, cs->specials ? " specials" : "",
             act_names[cs->act.kind], (unsigned long long)cs->seed);
}

double bnorm_conf_affine_ulps(float y, double ref, double xa_abs, double b_abs)
{
    if (isnan(ref))
        return isnan(y) ? 0.0 : INFINITY;
    if (isinf(ref))
        return (double)y == ref ? 0.0 : INFINITY;
    if (!isfinite(y))
        return INFINITY;
    double unit = 0x1p-23 * (xa_abs + b_abs) + 0x1p-149;
    return fabs((double)y - ref) / unit;
}

void bnorm_conf_fail(bnorm_conf_result *res, const bnorm_conf_op *op,
                     const bnorm_kernels *k, const bnorm_conf_case *cs, const char *what)
{
    if (res->failures++ == 0) {
        char desc[160];
        bnorm_conf_case_describe(cs, desc, sizeof desc);
        snprintf(res->first_failure, sizeof res->first_failure, "%s [%s] %s: %s", op->name,
                 k->name, desc, what);
    }
}

/* Strides with padding: 0..3 extra elements per plane or pixel, 0..9 per image. */
static bnorm_strides padded(const bnorm_shape *s, bnorm_rng *r)
{
    size_t run = s->layout == BNORM_NCHW ? s->spatial : s->c;
    size_t outer = s->layout == BNORM_NCHW ? s->c : s->spatial;
    bnorm_strides st;
    st.inner = run + bnorm_rng_below(r, 4);
    st.batch = (outer - 1) * st.inner + run + bnorm_rng_below(r, 10);
    return st;
}

/* The case now running, for a crash handler to report (bnorm_conf_current_case). */
static _Thread_local char current_case[192];

const char *bnorm_conf_current_case(void)
{
    return current_case;
}

typedef struct runner {
    const bnorm_conf_op *op;
    const bnorm_kernels *k;
    bnorm_rng rng;
    size_t index, dense; /* cases run, dense cases run */
    bnorm_conf_result res;
} runner;

static void run_case(runner *rn, bnorm_layout layout, size_t n, size_t c, size_t s,
                     int variant)
{
    bnorm_conf_case cs = {.shape = {n, c, s, layout}, .misalign = BNORM_FENCE_AT_GUARD};
    cs.seed = bnorm_rng_next(&rn->rng);
    bnorm_rng r;
    bnorm_rng_init(&r, cs.seed);
    static const char *const variants[] = {"dense",      "strided",   "in-place",
                                           "misaligned", "batch-gap", "batch-gap in-place"};
    cs.variant = variants[variant];
    /* Specials in a quarter of the cases. Dense cases count apart (they are every other
     * case in much of the matrix, so the index's parity would pick the same kind
     * every time): every other one starts right after a guard page, and specials
     * come both ways. */
    cs.specials = rn->index % 4 == 3;
    if (variant == 0) {
        size_t d = rn->dense++;
        if (d % 2) {
            cs.misalign = BNORM_FENCE_AT_LEAD;
            cs.variant = "dense from a guard page";
        }
        cs.specials = d % 8 == 3 || d % 8 == 6;
    }
    switch (variant) {
    case 4:
    case 5:
        cs.strided = true;
        cs.in_place = variant == 5;
        cs.xs.inner = cs.ys.inner = s;
        cs.xs.batch = c * s + 1 + bnorm_rng_below(&r, 9);
        cs.ys.batch = c * s + 1 + bnorm_rng_below(&r, 9);
        break;
    case 1:
        cs.strided = true;
        cs.xs = padded(&cs.shape, &r);
        cs.ys = padded(&cs.shape, &r);
        break;
    case 2:
        cs.in_place = true;
        break;
    case 3:
        cs.misalign = 1 + bnorm_rng_below(&r, 15);
        break;
    }
    cs.act.kind = (bnorm_act_kind)(rn->index % 3);
    if (cs.act.kind == BNORM_ACT_CLAMP) {
        cs.act.lo = (float)(-fabs(bnorm_rng_normal(&r)));
        cs.act.hi = rn->index % 7 == 0 ? cs.act.lo
                                        : cs.act.lo + (float)fabs(2 * bnorm_rng_normal(&r));
    }
    rn->index++;
    int len = snprintf(current_case, sizeof current_case, "%s [%s] ", rn->op->name,
                       rn->k->name);
    bnorm_conf_case_describe(&cs, current_case + len, sizeof current_case - (size_t)len);
    rn->op->run(rn->op, rn->k, &cs, &rn->res);
    current_case[0] = '\0';
}

/* Dense, then one of the other variants in turn. */
static void run_shape(runner *rn, bnorm_layout layout, size_t n, size_t c, size_t s)
{
    run_case(rn, layout, n, c, s, 0);
    if (n * c * s < BIG_ELEMENTS)
        run_case(rn, layout, n, c, s, 1 + (int)(rn->index % 3));
}

bnorm_conf_result bnorm_conf_run(const bnorm_conf_op *op, const bnorm_kernels *k,
                                 bnorm_conf_matrix matrix, uint64_t seed)
{
    runner rn = {.op = op, .k = k};
    bnorm_rng_init(&rn.rng, seed);
    bool full = matrix == BNORM_MATRIX_FULL;
    const size_t *cv = full ? full_c : quick_c, *sv = full ? full_s : quick_s;
    const size_t *nv = full ? full_n : quick_n;
    size_t nc = full ? COUNT(full_c) : COUNT(quick_c);
    size_t ns = full ? COUNT(full_s) : COUNT(quick_s);
    size_t nn = full ? COUNT(full_n) : COUNT(quick_n);

    for (int l = 0; l < 2; l++) {
        bnorm_layout layout = l ? BNORM_NHWC : BNORM_NCHW;
        for (size_t i = 0; i < nc; i++)
            for (size_t j = 0; j < ns; j++)
                for (size_t m = 0; m < nn; m++)
                    run_shape(&rn, layout, nv[m], cv[i], sv[j]);
        /* Width sweep: the contiguous length of planes and of rows, and C of the
         * periodic (dense small-C) plan. */
        for (size_t i = 0; i < COUNT(sweep); i++) {
            size_t w = sweep[i];
            if (layout == BNORM_NCHW)
                run_shape(&rn, layout, 1, 3, w);
            else
                run_shape(&rn, layout, 1, 5, w); /* periodic over 5 pixels of C=w */
            run_shape(&rn, layout, 2, w, layout == BNORM_NCHW ? 1 : 3);
        }
        /* Tiny: every variant of each, so that (variant, activation) pairs rotate. */
        for (size_t c = 1; c <= TINY_C_MAX; c++)
            for (size_t s = 1; s <= 2; s++)
                for (int v = 0; v < 4; v++)
                    run_case(&rn, layout, 1, c, s, v);
    }
    const size_t *ps = full ? plane_s : quick_plane_s;
    size_t nps = full ? COUNT(plane_s) : COUNT(quick_plane_s);
    for (size_t j = 0; j < nps; j++)
        for (size_t i = 0; i < COUNT(plane_c); i++) {
            size_t n = 1 + i % 2;
            for (int v = 0; v < (n > 1 ? 6 : 4); v++)
                if (v != 1) /* padded planes are the apply's per-plane path */
                    run_case(&rn, BNORM_NCHW, n, plane_c[i], ps[j], v);
        }
    /* Training's rows: small C on the periodic path (rows of whole periods) with
     * several chunks of rows and a row count that is no multiple of the chunk, each
     * dense and strided (strided must not take the periodic path); (N, C) NCHW rows;
     * C over a block (256) with more chunks than one pass holds, and over 1024. */
    for (size_t i = 0; i < COUNT(rows_c); i++) {
        size_t s = 100003 / (3 * rows_c[i]);
        run_case(&rn, BNORM_NHWC, 3, rows_c[i], s, 0);
        run_case(&rn, BNORM_NHWC, 3, rows_c[i], s, 1);
    }
    run_shape(&rn, BNORM_NCHW, 2001, 7, 1);
    run_shape(&rn, BNORM_NHWC, 1, 300, 997);
    /* rows over 1024, split in parts; and with x over the cached pass (this CPU's),
     * each part reduced in one pass over the rows */
    run_shape(&rn, BNORM_NHWC, 1, 1100, 37);
    /* the apply's column strips (rows over 1024, x and y under the stream threshold):
     * three, and NCHW rows */
    run_shape(&rn, BNORM_NHWC, 1, 2100, 5);
    run_shape(&rn, BNORM_NCHW, 3, 2100, 1);
    run_shape(&rn, BNORM_NHWC, 2, 1100, bnorm_cached_pass_bytes() / (2 * 1100 * sizeof(float)) + 3);
    if (!full) {
        /* A few large planes and rows, so the unrolled loops run many times. */
        run_shape(&rn, BNORM_NCHW, 1, 2, 3136);
        run_shape(&rn, BNORM_NHWC, 1, 1000, 7);
        run_shape(&rn, BNORM_NHWC, 2, 3, 3136);
    }
    return rn.res;
}
