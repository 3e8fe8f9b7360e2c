/*
 * The API contract of bnorm.h: bnorm_fold, bnorm_inference_apply, bnorm_inference,
 * bnorm_status_name and the version functions.
 *
 * Part 1, rejected inputs: every bad argument returns exactly its documented status
 * and writes nothing. All buffers of a call live in one arena; the arena is
 * snapshotted before each failing call and must be byte-for-byte unchanged after it.
 * Overflowing sizes and strides are passed with small real buffers: a check that
 * touched memory before rejecting them would crash the test; and every operation,
 * failing with its tensors on an inaccessible page, reads none of them.
 *
 * Part 2, valid inputs: small hand-computed cases whose exact results are
 * representable (so FMA and separate rounding agree), run with every kernel table
 * this CPU can execute through the internal *_with entry points, not just the
 * active one.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include "bnorm.h"
#include "conformance.h"
#include "ops.h"
#include "test_util.h"

/* ============================================================================== */
/* Helpers                                                                        */
/* ============================================================================== */

/* As same_bits, but a zero of either sign matches a zero of either sign (the sign
 * of a zero produced by ReLU or clamp is not specified). */
static bool same_any_zero(float got, float want)
{
    if (want == 0.0f)
        return got == 0.0f;
    return same_bits(got, want);
}

static const char *act_name(const bnorm_activation *act)
{
    if (!act)
        return "null-act";
    switch (act->kind) {
    case BNORM_ACT_NONE: return "none";
    case BNORM_ACT_RELU: return "relu";
    case BNORM_ACT_CLAMP: return "clamp";
    }
    return "bad-act";
}

/* What act does to v, per the header: NaN stays NaN; clamp = min(max(v, lo), hi). */
static float act_ref(const bnorm_activation *act, float v)
{
    if (!act || isnan(v))
        return v;
    switch (act->kind) {
    case BNORM_ACT_NONE:
        return v;
    case BNORM_ACT_RELU:
        return v < 0.0f ? 0.0f : v;
    case BNORM_ACT_CLAMP:
        return v < act->lo ? act->lo : v > act->hi ? act->hi : v;
    }
    return v;
}

/* Whether act may change the sign of a zero (then zeros compare sign-agnostic). */
static bool act_clamps(const bnorm_activation *act)
{
    return act && (act->kind == BNORM_ACT_RELU || act->kind == BNORM_ACT_CLAMP);
}

/* ============================================================================== */
/* Part 1: rejected inputs write nothing                                          */
/* ============================================================================== */

/* One arena holds every buffer of a call, so overlap cases can point anywhere in it
 * and "wrote nothing" is one comparison. Offsets in floats. */
enum {
    X_OFF = 0,
    X_LEN = 512,
    Y_OFF = X_OFF + X_LEN,
    Y_LEN = 512,
    P_LEN = 64, /* each per-channel parameter array */
    SCALE_OFF = Y_OFF + Y_LEN,
    SHIFT_OFF = SCALE_OFF + P_LEN,
    GAMMA_OFF = SHIFT_OFF + P_LEN,
    BETA_OFF = GAMMA_OFF + P_LEN,
    MEAN_OFF = BETA_OFF + P_LEN,
    VAR_OFF = MEAN_OFF + P_LEN,
    ARENA_LEN = VAR_OFF + P_LEN,
};

static float arena[ARENA_LEN];
static float snapshot[ARENA_LEN];

#define AX (arena + X_OFF)
#define AY (arena + Y_OFF)
#define ASCALE (arena + SCALE_OFF)
#define ASHIFT (arena + SHIFT_OFF)
#define AGAMMA (arena + GAMMA_OFF)
#define ABETA (arena + BETA_OFF)
#define AMEAN (arena + MEAN_OFF)
#define AVAR (arena + VAR_OFF)

/* Inputs hold valid values (var > 0); outputs (y, and the fold outputs, which use
 * the scale/shift regions) hold the sentinel. */
static void arena_reset(bool fold_outputs)
{
    for (size_t i = 0; i < X_LEN; i++)
        AX[i] = (float)((int)(i % 13) - 6) * 0.25f;
    memset(AY, SENTINEL_BYTE, Y_LEN * sizeof(float));
    for (size_t i = 0; i < P_LEN; i++) {
        ASCALE[i] = 1.5f;
        ASHIFT[i] = 0.5f;
        AGAMMA[i] = 2.0f;
        ABETA[i] = 0.25f;
        AMEAN[i] = 0.5f;
        AVAR[i] = 1.0f + (float)i;
    }
    if (fold_outputs) {
        memset(ASCALE, SENTINEL_BYTE, P_LEN * sizeof(float));
        memset(ASHIFT, SENTINEL_BYTE, P_LEN * sizeof(float));
    }
}

static void assert_arena_unchanged(const char *what, const char *fn)
{
    if (memcmp(arena, snapshot, sizeof arena) == 0)
        return;
    size_t i = 0;
    while (bits(arena[i]) == bits(snapshot[i]))
        i++;
    cr_assert_fail("%s: %s failed but wrote to memory (first change at arena float %zu: "
                   "%08x -> %08x)",
                   what, fn, i, (unsigned)bits(snapshot[i]), (unsigned)bits(arena[i]));
}

/* The arguments of one apply/inference call. */
typedef struct call {
    bnorm_shape shape;
    bool null_shape;
    const float *x;
    const bnorm_strides *xs;
    float *y;
    const bnorm_strides *ys;
    const float *scale, *shift;
    const float *gamma, *beta, *mean, *var;
    float eps;
    const bnorm_activation *act;
} call;

enum { OP_APPLY = 1, OP_INFER = 2, OP_BOTH = OP_APPLY | OP_INFER };

static call base_call(bnorm_layout layout)
{
    return (call){
        .shape = {.n = 2, .c = 3, .spatial = 4, .layout = layout},
        .x = AX,
        .y = AY,
        .scale = ASCALE,
        .shift = ASHIFT,
        .gamma = AGAMMA,
        .beta = ABETA,
        .mean = AMEAN,
        .var = AVAR,
        .eps = 1e-5f,
    };
}

static bnorm_status run_apply(const call *cl)
{
    return bnorm_inference_apply(cl->null_shape ? NULL : &cl->shape, cl->x, cl->xs, cl->y,
                                 cl->ys, cl->scale, cl->shift, cl->act);
}

static bnorm_status run_infer(const call *cl)
{
    return bnorm_inference(cl->null_shape ? NULL : &cl->shape, cl->x, cl->xs, cl->y, cl->ys,
                           cl->gamma, cl->beta, cl->mean, cl->var, cl->eps, cl->act);
}

/* Runs the call with the selected operations on a fresh arena; each must return
 * want, and, unless want is BNORM_OK, leave the arena unchanged. */
static void expect_status(const call *cl, unsigned ops, bnorm_status want, const char *what)
{
    for (unsigned op = OP_APPLY; op <= OP_INFER; op <<= 1) {
        if (!(ops & op))
            continue;
        const char *fn = op == OP_APPLY ? "bnorm_inference_apply" : "bnorm_inference";
        arena_reset(false);
        memcpy(snapshot, arena, sizeof arena);
        bnorm_status st = op == OP_APPLY ? run_apply(cl) : run_infer(cl);
        cr_assert_eq(st, want, "%s: %s returned %s, want %s", what, fn,
                     bnorm_status_name(st), bnorm_status_name(want));
        if (want != BNORM_OK)
            assert_arena_unchanged(what, fn);
    }
}

/* run: contiguous elements; outer: steps of the inner stride (per the header). */
static size_t run_len(const bnorm_shape *s)
{
    return s->layout == BNORM_NCHW ? s->spatial : s->c;
}

static size_t outer_len(const bnorm_shape *s)
{
    return s->layout == BNORM_NCHW ? s->c : s->spatial;
}

static const bnorm_layout layouts[] = {BNORM_NCHW, BNORM_NHWC};

#define PTRDIFF_FLOATS ((size_t)PTRDIFF_MAX / sizeof(float))

/* ---- NULL pointers ------------------------------------------------------------- */

Test(apply_errors, null_pointers)
{
    char what[96];
    for (int li = 0; li < 2; li++) {
        for (int which = 0; which < 5; which++) {
            call cl = base_call(layouts[li]);
            switch (which) {
            case 0: cl.null_shape = true; break;
            case 1: cl.x = NULL; break;
            case 2: cl.y = NULL; break;
            case 3: cl.scale = NULL; break;
            case 4: cl.shift = NULL; break;
            }
            static const char *const names[] = {"shape", "x", "y", "scale", "shift"};
            snprintf(what, sizeof what, "%s NULL %s", layout_name(layouts[li]), names[which]);
            expect_status(&cl, OP_APPLY, BNORM_ERR_NULL_POINTER, what);
        }
    }
}

Test(inference_errors, null_pointers)
{
    char what[96];
    for (int li = 0; li < 2; li++) {
        for (int which = 0; which < 5; which++) {
            call cl = base_call(layouts[li]);
            switch (which) {
            case 0: cl.null_shape = true; break;
            case 1: cl.x = NULL; break;
            case 2: cl.y = NULL; break;
            case 3: cl.mean = NULL; break;
            case 4: cl.var = NULL; break;
            }
            static const char *const names[] = {"shape", "x", "y", "mean", "var"};
            snprintf(what, sizeof what, "%s NULL %s", layout_name(layouts[li]), names[which]);
            expect_status(&cl, OP_INFER, BNORM_ERR_NULL_POINTER, what);
        }
    }
}

/* gamma and beta are optional in bnorm_inference; scale and shift are not its
 * parameters at all. */
Test(inference_errors, optional_pointers_accepted)
{
    call cl = base_call(BNORM_NCHW);
    cl.gamma = NULL;
    expect_status(&cl, OP_INFER, BNORM_OK, "gamma NULL");
    cl = base_call(BNORM_NCHW);
    cl.beta = NULL;
    expect_status(&cl, OP_INFER, BNORM_OK, "beta NULL");
    cl.gamma = NULL;
    cl.scale = NULL;
    cl.shift = NULL;
    expect_status(&cl, OP_INFER, BNORM_OK, "gamma, beta, scale, shift NULL");
    cl = base_call(BNORM_NHWC);
    cl.act = NULL;
    expect_status(&cl, OP_BOTH, BNORM_OK, "act NULL");
}

/* A NULL pointer is reported as such whatever else is wrong with the call. */
Test(apply_errors, null_pointer_reported_first)
{
    static const bnorm_activation bad_kind = {.kind = (bnorm_act_kind)7};
    static const bnorm_activation bad_clamp = {.kind = BNORM_ACT_CLAMP, .lo = 1, .hi = 0};
    static const bnorm_strides tiny = {.inner = 0, .batch = 0};
    for (int which = 0; which < 5; which++) {
        for (int other = 0; other < 7; other++) {
            call cl = base_call(BNORM_NCHW);
            switch (other) {
            case 0: cl.shape.n = 0; break;
            case 1: cl.shape.layout = (bnorm_layout)7; break;
            case 2: cl.act = &bad_kind; break;
            case 3: cl.xs = &tiny; break;
            case 4: cl.shape.c = SIZE_MAX; break;
            case 5: cl.act = &bad_clamp; break;
            case 6: cl.y = (float *)cl.x + 1; break;
            }
            switch (which) {
            case 0: cl.null_shape = true; break;
            case 1: cl.x = NULL; break;
            case 2: cl.y = NULL; break;
            case 3: cl.scale = NULL; break;
            case 4: cl.shift = NULL; break;
            }
            char what[96];
            snprintf(what, sizeof what, "NULL pointer %d with defect %d", which, other);
            expect_status(&cl, OP_APPLY, BNORM_ERR_NULL_POINTER, what);
        }
    }
}

Test(inference_errors, null_pointer_reported_first)
{
    for (int which = 0; which < 5; which++) {
        for (int other = 0; other < 4; other++) {
            call cl = base_call(BNORM_NHWC);
            switch (other) {
            case 0: cl.shape.spatial = 0; break;
            case 1: cl.eps = NAN; break;
            case 2: cl.shape.layout = (bnorm_layout)7; break;
            case 3: cl.gamma = cl.y; break;
            }
            switch (which) {
            case 0: cl.null_shape = true; break;
            case 1: cl.x = NULL; break;
            case 2: cl.y = NULL; break;
            case 3: cl.mean = NULL; break;
            case 4: cl.var = NULL; break;
            }
            char what[96];
            snprintf(what, sizeof what, "NULL pointer %d with defect %d", which, other);
            expect_status(&cl, OP_INFER, BNORM_ERR_NULL_POINTER, what);
        }
    }
}

/* ---- shapes, enums ------------------------------------------------------------- */

Test(apply_errors, zero_sizes)
{
    char what[96];
    for (int li = 0; li < 2; li++) {
        for (int dim = 0; dim < 4; dim++) {
            call cl = base_call(layouts[li]);
            if (dim == 0 || dim == 3)
                cl.shape.n = 0;
            if (dim == 1 || dim == 3)
                cl.shape.c = 0;
            if (dim == 2 || dim == 3)
                cl.shape.spatial = 0;
            snprintf(what, sizeof what, "%s %zux%zux%zu", layout_name(layouts[li]),
                     cl.shape.n, cl.shape.c, cl.shape.spatial);
            expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_SHAPE, what);
        }
    }
}

Test(apply_errors, undefined_enums)
{
    static const bnorm_activation kind3 = {.kind = (bnorm_act_kind)3};
    static const bnorm_activation kind7 = {.kind = (bnorm_act_kind)7, .lo = 0, .hi = 1};
    call cl = base_call(BNORM_NCHW);
    cl.shape.layout = (bnorm_layout)7;
    expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_ENUM, "layout 7");
    cl.shape.layout = (bnorm_layout)2;
    expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_ENUM, "layout 2");
    for (int li = 0; li < 2; li++) {
        cl = base_call(layouts[li]);
        cl.act = &kind3;
        expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_ENUM, "activation kind 3");
        cl.act = &kind7;
        expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_ENUM, "activation kind 7");
    }
}

/* ---- strides ------------------------------------------------------------------- */

/* For each layout, each buffer (x, y) and each field (inner, batch): one below the
 * documented minimum is BAD_STRIDE; the minimum itself is accepted. */
Test(apply_errors, strides_below_minimum)
{
    char what[128];
    for (int li = 0; li < 2; li++) {
        for (int buf = 0; buf < 2; buf++) {
            for (int field = 0; field < 2; field++) {
                call cl = base_call(layouts[li]);
                size_t run = run_len(&cl.shape), outer = outer_len(&cl.shape);
                bnorm_strides min = {.inner = run, .batch = (outer - 1) * run + run};
                /* also with a padded inner stride, so batch's minimum is not the
                 * dense image */
                bnorm_strides padded = {.inner = run + 2, .batch = (outer - 1) * (run + 2) + run};
                const bnorm_strides *bases[] = {&min, &padded};
                for (int b = 0; b < 2; b++) {
                    bnorm_strides ok = *bases[b], bad = *bases[b];
                    if (field == 0)
                        bad.inner = run - 1; /* batch stays large enough */
                    else
                        bad.batch--;
                    snprintf(what, sizeof what, "%s %s.%s below the minimum%s",
                             layout_name(layouts[li]), buf ? "y" : "x",
                             field ? "batch" : "inner", b ? " (padded)" : "");
                    if (buf)
                        cl.ys = &bad;
                    else
                        cl.xs = &bad;
                    expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_STRIDE, what);
                    snprintf(what, sizeof what, "%s %s strides at the minimum%s",
                             layout_name(layouts[li]), buf ? "y" : "x", b ? " (padded)" : "");
                    if (buf)
                        cl.ys = &ok;
                    else
                        cl.xs = &ok;
                    expect_status(&cl, OP_BOTH, BNORM_OK, what);
                    cl.xs = cl.ys = NULL;
                }
            }
        }
    }
}

/* batch must cover one image even when there is only one image. */
Test(apply_errors, zero_strides)
{
    for (int li = 0; li < 2; li++) {
        call cl = base_call(layouts[li]);
        cl.shape.n = 1;
        bnorm_strides zero_inner = {.inner = 0, .batch = 64};
        bnorm_strides zero_batch = {.inner = run_len(&cl.shape), .batch = 0};
        cl.xs = &zero_inner;
        expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_STRIDE, "x inner 0");
        cl.xs = &zero_batch;
        expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_STRIDE, "x batch 0 with n = 1");
        cl.xs = NULL;
        cl.ys = &zero_inner;
        expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_STRIDE, "y inner 0");
        cl.ys = &zero_batch;
        expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_STRIDE, "y batch 0 with n = 1");
    }
}

/* ---- sizes that do not fit ----------------------------------------------------- */

Test(apply_errors, overflowing_shapes)
{
    const bnorm_shape shapes[] = {
        {.n = SIZE_MAX, .c = 3, .spatial = 4},
        {.n = 2, .c = SIZE_MAX, .spatial = 4},
        {.n = 2, .c = 3, .spatial = SIZE_MAX},
        {.n = SIZE_MAX, .c = SIZE_MAX, .spatial = SIZE_MAX},
        {.n = 1, .c = (size_t)1 << 32, .spatial = (size_t)1 << 32},  /* product wraps */
        {.n = (size_t)1 << 32, .c = (size_t)1 << 16, .spatial = (size_t)1 << 16},
        {.n = 1, .c = 1, .spatial = PTRDIFF_FLOATS + 1},             /* bytes > PTRDIFF_MAX */
        {.n = PTRDIFF_FLOATS + 1, .c = 1, .spatial = 1},
        {.n = 1, .c = PTRDIFF_FLOATS / 2 + 1, .spatial = 2},
        {.n = 2, .c = 2, .spatial = PTRDIFF_FLOATS / 4 + 1},
    };
    char what[128];
    for (int li = 0; li < 2; li++) {
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            call cl = base_call(layouts[li]);
            cl.shape = shapes[i];
            cl.shape.layout = layouts[li];
            snprintf(what, sizeof what, "%s shape %zux%zux%zu", layout_name(layouts[li]),
                     cl.shape.n, cl.shape.c, cl.shape.spatial);
            expect_status(&cl, OP_BOTH, BNORM_ERR_OVERFLOW, what);
        }
    }
}

/* An extent of exactly PTRDIFF_MAX / sizeof(float) elements fits: the size checks
 * pass, and the (invalid) clamp is what gets reported. */
Test(apply_errors, largest_extent_is_not_overflow)
{
    static const bnorm_activation bad_clamp = {.kind = BNORM_ACT_CLAMP, .lo = 1, .hi = 0};
    for (int li = 0; li < 2; li++) {
        call cl = base_call(layouts[li]);
        cl.shape.n = 1;
        cl.shape.c = 1;
        cl.shape.spatial = PTRDIFF_FLOATS;
        cl.act = &bad_clamp;
        expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_VALUE, "spatial = PTRDIFF_MAX / 4");
        cl.shape.spatial = 1;
        cl.shape.n = PTRDIFF_FLOATS;
        expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_VALUE, "n = PTRDIFF_MAX / 4");
    }
}

Test(apply_errors, overflowing_strides)
{
    char what[128];
    for (int li = 0; li < 2; li++) {
        const bnorm_shape sh = {.n = 2, .c = 3, .spatial = 4, .layout = layouts[li]};
        size_t run = run_len(&sh), outer = outer_len(&sh);
        size_t big_inner = PTRDIFF_FLOATS / (outer - 1); /* image alone just fits */
        const bnorm_strides strides[] = {
            {.inner = SIZE_MAX, .batch = SIZE_MAX},          /* (outer-1)*inner wraps */
            {.inner = SIZE_MAX / 2, .batch = SIZE_MAX},
            {.inner = run, .batch = SIZE_MAX},               /* (n-1)*batch + image wraps */
            {.inner = run, .batch = PTRDIFF_FLOATS},         /* bytes > PTRDIFF_MAX */
            {.inner = run, .batch = PTRDIFF_FLOATS - outer * run + 1},
            {.inner = big_inner, .batch = (outer - 1) * big_inner + run},
        };
        for (size_t i = 0; i < sizeof strides / sizeof strides[0]; i++) {
            for (int buf = 0; buf < 2; buf++) {
                call cl = base_call(layouts[li]);
                cl.shape = sh;
                if (buf)
                    cl.ys = &strides[i];
                else
                    cl.xs = &strides[i];
                snprintf(what, sizeof what, "%s %s strides {%zu, %zu}", layout_name(layouts[li]),
                         buf ? "y" : "x", strides[i].inner, strides[i].batch);
                expect_status(&cl, OP_BOTH, BNORM_ERR_OVERFLOW, what);
            }
        }
        /* One image (n = 1), whose extent (outer - 1) * inner + run wraps in the
         * addition alone: nothing after the image's extent catches it. */
        bnorm_strides wrap = {.inner = SIZE_MAX / (outer - 1), .batch = SIZE_MAX};
        for (int buf = 0; buf < 2; buf++) {
            call cl = base_call(layouts[li]);
            cl.shape = sh;
            cl.shape.n = 1;
            if (buf)
                cl.ys = &wrap;
            else
                cl.xs = &wrap;
            snprintf(what, sizeof what, "%s %s n = 1, image extent wraps in the addition",
                     layout_name(layouts[li]), buf ? "y" : "x");
            expect_status(&cl, OP_BOTH, BNORM_ERR_OVERFLOW, what);
        }
        /* One element less than the last case's extent limit fits: reported as the
         * bad clamp, not as an overflow. */
        static const bnorm_activation bad_clamp = {.kind = BNORM_ACT_CLAMP, .lo = 1, .hi = 0};
        bnorm_strides edge = {.inner = run, .batch = PTRDIFF_FLOATS - outer * run};
        call cl = base_call(layouts[li]);
        cl.shape = sh;
        cl.xs = &edge;
        cl.act = &bad_clamp;
        expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_VALUE, "x extent exactly PTRDIFF_MAX / 4");
    }
}

/* ---- aliasing ------------------------------------------------------------------ */

Test(apply_errors, y_overlaps_x)
{
    char what[128];
    for (int li = 0; li < 2; li++) {
        call cl = base_call(layouts[li]);
        float *x = AY + 64; /* x and y both inside the y region */
        cl.x = x;
        cl.y = x + 1;
        snprintf(what, sizeof what, "%s y = x + 1", layout_name(layouts[li]));
        expect_status(&cl, OP_BOTH, BNORM_ERR_ALIAS, what);
        cl.y = x - 1;
        snprintf(what, sizeof what, "%s y = x - 1", layout_name(layouts[li]));
        expect_status(&cl, OP_BOTH, BNORM_ERR_ALIAS, what);
        cl.y = x + 23; /* last element of y's range is x's last element */
        snprintf(what, sizeof what, "%s y = x + 23", layout_name(layouts[li]));
        expect_status(&cl, OP_BOTH, BNORM_ERR_ALIAS, what);
        cl.y = x - 23;
        snprintf(what, sizeof what, "%s y = x - 23", layout_name(layouts[li]));
        expect_status(&cl, OP_BOTH, BNORM_ERR_ALIAS, what);

        /* Adjacent ranges are disjoint: accepted. */
        cl.x = AX;
        cl.y = (float *)AX + 24;
        snprintf(what, sizeof what, "%s y = x + extent", layout_name(layouts[li]));
        expect_status(&cl, OP_BOTH, BNORM_OK, what);
        cl.x = AY + 24;
        cl.y = AY;
        snprintf(what, sizeof what, "%s x = y + extent", layout_name(layouts[li]));
        expect_status(&cl, OP_BOTH, BNORM_OK, what);
    }
}

/* y == x is in place only with equal strides; otherwise it is an overlap. */
Test(apply_errors, in_place_needs_equal_strides)
{
    char what[128];
    for (int li = 0; li < 2; li++) {
        call cl = base_call(layouts[li]);
        size_t run = run_len(&cl.shape), outer = outer_len(&cl.shape);
        bnorm_strides dense = {.inner = run, .batch = outer * run};
        bnorm_strides wide_inner = {.inner = run + 1, .batch = outer * (run + 1)};
        bnorm_strides wide_batch = {.inner = run, .batch = outer * run + 1};
        cl.y = AY;
        cl.x = AY;
        const struct {
            const bnorm_strides *xs, *ys;
            bnorm_status want;
            const char *what;
        } cases[] = {
            {NULL, NULL, BNORM_OK, "NULL strides"},
            {NULL, &dense, BNORM_OK, "NULL and explicit dense strides"},
            {&wide_inner, &wide_inner, BNORM_OK, "equal explicit strides"},
            {NULL, &wide_inner, BNORM_ERR_ALIAS, "x dense, y wider inner"},
            {&wide_inner, NULL, BNORM_ERR_ALIAS, "x wider inner, y dense"},
            {&wide_batch, &dense, BNORM_ERR_ALIAS, "x wider batch, y dense"},
            {&wide_inner, &wide_batch, BNORM_ERR_ALIAS, "different inner and batch"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            cl.xs = cases[i].xs;
            cl.ys = cases[i].ys;
            snprintf(what, sizeof what, "%s y == x, %s", layout_name(layouts[li]), cases[i].what);
            expect_status(&cl, OP_BOTH, cases[i].want, what);
        }
    }
}

/* "the first-to-last-element ranges must be disjoint": interleaved strided tensors
 * are rejected even though no element is shared. */
Test(apply_errors, interleaved_ranges_overlap)
{
    call cl = base_call(BNORM_NHWC);
    cl.shape = (bnorm_shape){.n = 1, .c = 1, .spatial = 8, .layout = BNORM_NHWC};
    bnorm_strides every_other = {.inner = 2, .batch = 16};
    cl.xs = cl.ys = &every_other;
    cl.x = AY + 8;
    cl.y = AY + 9;
    expect_status(&cl, OP_BOTH, BNORM_ERR_ALIAS, "y at the odd positions between x's");
}

Test(apply_errors, y_overlaps_scale_or_shift)
{
    char what[128];
    for (int li = 0; li < 2; li++) {
        for (int which = 0; which < 2; which++) {
            /* extent of the base tensor: 24 floats; c = 3 */
            const size_t at[] = {0, 5, 21, 23}; /* inside y's range */
            for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
                call cl = base_call(layouts[li]);
                if (which)
                    cl.shift = AY + at[i];
                else
                    cl.scale = AY + at[i];
                snprintf(what, sizeof what, "%s %s = y + %zu", layout_name(layouts[li]),
                         which ? "shift" : "scale", at[i]);
                expect_status(&cl, OP_APPLY, BNORM_ERR_ALIAS, what);
            }
            /* overlapping y's first element from below */
            call cl = base_call(layouts[li]);
            cl.y = AY + 32;
            if (which)
                cl.shift = AY + 30;
            else
                cl.scale = AY + 30;
            snprintf(what, sizeof what, "%s %s = y - 2", layout_name(layouts[li]),
                     which ? "shift" : "scale");
            expect_status(&cl, OP_APPLY, BNORM_ERR_ALIAS, what);
            /* touching, not overlapping: accepted */
            if (which)
                cl.shift = AY + 29;
            else
                cl.scale = AY + 29;
            snprintf(what, sizeof what, "%s %s = y - c", layout_name(layouts[li]),
                     which ? "shift" : "scale");
            expect_status(&cl, OP_APPLY, BNORM_OK, what);
            if (which)
                cl.shift = AY + 32 + 24;
            else
                cl.scale = AY + 32 + 24;
            snprintf(what, sizeof what, "%s %s = y + extent", layout_name(layouts[li]),
                     which ? "shift" : "scale");
            expect_status(&cl, OP_APPLY, BNORM_OK, what);
        }
    }
}

/* Inputs only read: x, scale and shift may share memory. */
Test(apply_errors, inputs_may_overlap_each_other)
{
    call cl = base_call(BNORM_NCHW);
    cl.scale = cl.x;
    cl.shift = cl.x + 1;
    expect_status(&cl, OP_APPLY, BNORM_OK, "scale and shift inside x");
    cl = base_call(BNORM_NHWC);
    cl.gamma = cl.mean = cl.x + 4;
    cl.beta = cl.x;
    expect_status(&cl, OP_INFER, BNORM_OK, "gamma, beta and mean inside x");
}

Test(inference_errors, y_overlaps_parameters)
{
    char what[128];
    static const char *const names[] = {"gamma", "beta", "mean", "var"};
    for (int li = 0; li < 2; li++) {
        for (int which = 0; which < 4; which++) {
            const size_t at[] = {0, 10, 23};
            for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
                call cl = base_call(layouts[li]);
                const float *p = AY + at[i];
                switch (which) {
                case 0: cl.gamma = p; break;
                case 1: cl.beta = p; break;
                case 2: cl.mean = p; break;
                case 3: cl.var = p; break;
                }
                snprintf(what, sizeof what, "%s %s = y + %zu", layout_name(layouts[li]),
                         names[which], at[i]);
                expect_status(&cl, OP_INFER, BNORM_ERR_ALIAS, what);
            }
            call cl = base_call(layouts[li]);
            const float *p = AY + 24;
            switch (which) {
            case 0: cl.gamma = p; break;
            case 1: cl.beta = p; break;
            case 2: cl.mean = p; break;
            case 3: cl.var = p; break;
            }
            snprintf(what, sizeof what, "%s %s = y + extent", layout_name(layouts[li]),
                     names[which]);
            expect_status(&cl, OP_INFER, BNORM_OK, what);
        }
    }
}

/* ---- values -------------------------------------------------------------------- */

/* Tiny tensors (one row of C = 1..33 channels, or two pixels) take the one-kernel-
 * call path: every check still applies there. */
Test(apply_errors, tiny_tensors_checked_like_any)
{
    static const bnorm_activation bad_kind = {.kind = (bnorm_act_kind)3};
    static const bnorm_activation bad_clamp = {.kind = BNORM_ACT_CLAMP, .lo = 1, .hi = 0};
    char what[128];
    for (int li = 0; li < 2; li++) {
        for (size_t c = 1; c <= 33; c++) {
            for (size_t spatial = 1; spatial <= 2; spatial++) {
                call base = base_call(layouts[li]);
                base.shape.n = 1;
                base.shape.c = c;
                base.shape.spatial = spatial;
                size_t extent = c * spatial, run = run_len(&base.shape);
                const char *ln = layout_name(layouts[li]);
#define TINY_EXPECT(ops, want, ...)                                                    \
    do {                                                                               \
        int len_ = snprintf(what, sizeof what, "%s 1x%zux%zu: ", ln, c, spatial);     \
        snprintf(what + len_, sizeof what - (size_t)len_, __VA_ARGS__);              \
        expect_status(&cl, ops, want, what);                                           \
    } while (0)
                call cl = base;
                TINY_EXPECT(OP_BOTH, BNORM_OK, "valid");
                cl.y = (float *)cl.x;
                TINY_EXPECT(OP_BOTH, BNORM_OK, "in place");
                for (int which = 0; which < 5; which++) {
                    cl = base;
                    switch (which) {
                    case 0: cl.x = NULL; break;
                    case 1: cl.y = NULL; break;
                    case 2: cl.scale = NULL; break;
                    case 3: cl.shift = NULL; break;
                    default: cl.mean = NULL; break;
                    }
                    TINY_EXPECT(which < 4 ? OP_APPLY : OP_INFER, BNORM_ERR_NULL_POINTER,
                                "pointer %d NULL", which);
                }
                cl = base;
                cl.shape.layout = (bnorm_layout)2;
                TINY_EXPECT(OP_BOTH, BNORM_ERR_BAD_ENUM, "layout 2");
                cl = base;
                cl.act = &bad_kind;
                TINY_EXPECT(OP_BOTH, BNORM_ERR_BAD_ENUM, "activation kind 3");
                cl.act = &bad_clamp;
                TINY_EXPECT(OP_BOTH, BNORM_ERR_BAD_VALUE, "clamp lo > hi");
                cl = base;
                cl.shape.n = SIZE_MAX / extent;
                TINY_EXPECT(OP_BOTH, BNORM_ERR_OVERFLOW, "n = SIZE_MAX / extent");
                cl.shape.n = SIZE_MAX / extent + 1; /* the product wraps around */
                if (cl.shape.n != 0)
                    TINY_EXPECT(OP_BOTH, BNORM_ERR_OVERFLOW, "n = SIZE_MAX / extent + 1");
                cl = base;
                bnorm_strides short_inner = {.inner = run - 1, .batch = 64};
                cl.ys = &short_inner;
                TINY_EXPECT(OP_BOTH, BNORM_ERR_BAD_STRIDE, "y inner stride run - 1");
                cl = base;
                bnorm_strides wide = {.inner = run + 1, .batch = 2 * extent + 2};
                cl.y = (float *)cl.x;
                cl.xs = &wide;
                TINY_EXPECT(OP_BOTH, BNORM_ERR_ALIAS, "y == x, x strided, y dense");
                cl = base;
                cl.x = AY;
                cl.y = AY + extent - 1; /* extent 1: that is in place */
                TINY_EXPECT(OP_BOTH, extent > 1 ? BNORM_ERR_ALIAS : BNORM_OK,
                            "y = x + extent - 1");
                cl.y = AY + extent;
                TINY_EXPECT(OP_BOTH, BNORM_OK, "y = x + extent");
                cl = base;
                cl.scale = AY + extent - 1;
                TINY_EXPECT(OP_APPLY, BNORM_ERR_ALIAS, "scale over y's last element");
                cl = base;
                cl.shift = AY - c + 1;
                TINY_EXPECT(OP_APPLY, BNORM_ERR_ALIAS, "shift over y's first element");
                cl = base;
                cl.var = AY;
                TINY_EXPECT(OP_INFER, BNORM_ERR_ALIAS, "var = y");
                cl = base;
                cl.eps = NAN;
                TINY_EXPECT(OP_INFER, BNORM_ERR_BAD_VALUE, "eps NaN");
#undef TINY_EXPECT
            }
        }
    }
}

Test(apply_errors, bad_clamp_bounds)
{
    const bnorm_activation bad[] = {
        {.kind = BNORM_ACT_CLAMP, .lo = 1.0f, .hi = 0.0f},
        {.kind = BNORM_ACT_CLAMP, .lo = 0.0f, .hi = -FLT_TRUE_MIN},
        {.kind = BNORM_ACT_CLAMP, .lo = INFINITY, .hi = -INFINITY},
        {.kind = BNORM_ACT_CLAMP, .lo = NAN, .hi = 6.0f},
        {.kind = BNORM_ACT_CLAMP, .lo = 0.0f, .hi = NAN},
        {.kind = BNORM_ACT_CLAMP, .lo = NAN, .hi = NAN},
        {.kind = BNORM_ACT_CLAMP, .lo = -INFINITY, .hi = NAN},
    };
    char what[128];
    for (int li = 0; li < 2; li++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            call cl = base_call(layouts[li]);
            cl.act = &bad[i];
            snprintf(what, sizeof what, "%s clamp(%g, %g)", layout_name(layouts[li]),
                     (double)bad[i].lo, (double)bad[i].hi);
            expect_status(&cl, OP_BOTH, BNORM_ERR_BAD_VALUE, what);
        }
    }
    /* The bounds matter only for clamp: ReLU and none ignore NaN lo/hi. */
    const bnorm_activation ignored[] = {
        {.kind = BNORM_ACT_NONE, .lo = NAN, .hi = NAN},
        {.kind = BNORM_ACT_RELU, .lo = 1.0f, .hi = 0.0f},
        {.kind = BNORM_ACT_CLAMP, .lo = 2.0f, .hi = 2.0f},
        {.kind = BNORM_ACT_CLAMP, .lo = -INFINITY, .hi = INFINITY},
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        call cl = base_call(BNORM_NCHW);
        cl.act = &ignored[i];
        snprintf(what, sizeof what, "%s with lo %g, hi %g", act_name(&ignored[i]),
                 (double)ignored[i].lo, (double)ignored[i].hi);
        expect_status(&cl, OP_BOTH, BNORM_OK, what);
    }
}

Test(inference_errors, bad_eps_and_variance)
{
    const float bad_eps[] = {NAN, -NAN, -1.0f, -FLT_TRUE_MIN, INFINITY, -INFINITY};
    char what[128];
    for (int li = 0; li < 2; li++) {
        for (size_t i = 0; i < sizeof bad_eps / sizeof bad_eps[0]; i++) {
            call cl = base_call(layouts[li]);
            cl.eps = bad_eps[i];
            snprintf(what, sizeof what, "%s eps %g", layout_name(layouts[li]), (double)bad_eps[i]);
            expect_status(&cl, OP_INFER, BNORM_ERR_BAD_VALUE, what);
        }
        const float bad_var[] = {-1.0f, -FLT_TRUE_MIN, -INFINITY};
        for (size_t i = 0; i < sizeof bad_var / sizeof bad_var[0]; i++) {
            for (size_t ch = 0; ch < 3; ch++) {
                /* var lives in the arena: set it through a private copy */
                static float var[3];
                var[0] = 1.0f;
                var[1] = 2.0f;
                var[2] = 0.0f;
                var[ch] = bad_var[i];
                call cl = base_call(layouts[li]);
                cl.var = var;
                snprintf(what, sizeof what, "%s var[%zu] = %g", layout_name(layouts[li]), ch,
                         (double)bad_var[i]);
                expect_status(&cl, OP_INFER, BNORM_ERR_BAD_VALUE, what);
            }
        }
    }
    /* Documented as valid: eps 0 and -0, var 0, -0 and NaN. */
    static float ok_var[3] = {0.0f, -0.0f, NAN};
    call cl = base_call(BNORM_NCHW);
    cl.var = ok_var;
    cl.eps = 0.0f;
    expect_status(&cl, OP_INFER, BNORM_OK, "var {0, -0, NaN}, eps 0");
    cl.eps = -0.0f;
    expect_status(&cl, OP_INFER, BNORM_OK, "eps -0");
    cl.eps = FLT_MAX;
    expect_status(&cl, OP_INFER, BNORM_OK, "eps FLT_MAX");
}

/* ---- bnorm_fold ---------------------------------------------------------------- */

typedef struct fold_call {
    size_t c;
    const float *gamma, *beta, *mean, *var;
    float eps;
    float *scale, *shift;
} fold_call;

static fold_call base_fold(void)
{
    return (fold_call){.c = 5, .gamma = AGAMMA, .beta = ABETA, .mean = AMEAN, .var = AVAR,
                       .eps = 1e-3f, .scale = ASCALE, .shift = ASHIFT};
}

static void expect_fold(const fold_call *f, bnorm_status want, const char *what)
{
    arena_reset(true);
    memcpy(snapshot, arena, sizeof arena);
    bnorm_status st =
        bnorm_fold(f->c, f->gamma, f->beta, f->mean, f->var, f->eps, f->scale, f->shift);
    cr_assert_eq(st, want, "%s: bnorm_fold returned %s, want %s", what, bnorm_status_name(st),
                 bnorm_status_name(want));
    if (want != BNORM_OK)
        assert_arena_unchanged(what, "bnorm_fold");
}

Test(fold_errors, null_pointers)
{
    static const char *const names[] = {"mean", "var", "scale", "shift"};
    for (int which = 0; which < 4; which++) {
        for (int other = 0; other < 4; other++) {
            fold_call f = base_fold();
            switch (which) {
            case 0: f.mean = NULL; break;
            case 1: f.var = NULL; break;
            case 2: f.scale = NULL; break;
            case 3: f.shift = NULL; break;
            }
            /* NULL is reported whatever else is wrong */
            switch (other) {
            case 1: f.c = 0; break;
            case 2: f.c = SIZE_MAX; break;
            case 3: f.eps = NAN; break;
            }
            char what[96];
            snprintf(what, sizeof what, "NULL %s with defect %d", names[which], other);
            expect_fold(&f, BNORM_ERR_NULL_POINTER, what);
        }
    }
    fold_call f = base_fold();
    f.gamma = NULL;
    f.beta = NULL;
    expect_fold(&f, BNORM_OK, "gamma and beta NULL");
}

Test(fold_errors, sizes)
{
    fold_call f = base_fold();
    f.c = 0;
    expect_fold(&f, BNORM_ERR_BAD_SHAPE, "c = 0");
    /* These must be rejected before any per-channel array is read: the arrays hold
     * 64 floats. */
    const size_t huge[] = {SIZE_MAX, SIZE_MAX / 2, PTRDIFF_FLOATS + 1};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        f = base_fold();
        f.c = huge[i];
        char what[64];
        snprintf(what, sizeof what, "c = %zu", huge[i]);
        expect_fold(&f, BNORM_ERR_OVERFLOW, what);
    }
    /* The largest c that fits is not an overflow: the NaN eps is reported (eps is
     * checked before any var is read). */
    f = base_fold();
    f.c = PTRDIFF_FLOATS;
    f.eps = NAN;
    expect_fold(&f, BNORM_ERR_BAD_VALUE, "c = PTRDIFF_MAX / 4 with NaN eps");
}

Test(fold_errors, bad_values)
{
    const float bad_eps[] = {NAN, -NAN, -1.0f, -FLT_TRUE_MIN, INFINITY, -INFINITY};
    char what[96];
    for (size_t i = 0; i < sizeof bad_eps / sizeof bad_eps[0]; i++) {
        fold_call f = base_fold();
        f.eps = bad_eps[i];
        snprintf(what, sizeof what, "eps %g", (double)bad_eps[i]);
        expect_fold(&f, BNORM_ERR_BAD_VALUE, what);
    }
    const float bad_var[] = {-1.0f, -FLT_TRUE_MIN, -INFINITY};
    for (size_t i = 0; i < sizeof bad_var / sizeof bad_var[0]; i++) {
        for (size_t ch = 0; ch < 5; ch++) {
            static float var[5];
            for (size_t j = 0; j < 5; j++)
                var[j] = (float)j;
            var[ch] = bad_var[i];
            fold_call f = base_fold();
            f.var = var;
            snprintf(what, sizeof what, "var[%zu] = %g", ch, (double)bad_var[i]);
            expect_fold(&f, BNORM_ERR_BAD_VALUE, what);
        }
    }
}

/* The variance check has no early exit (it vectorizes): a negative variance at
 * any position of any length up to 33, among zeros, -0 and NaN (all valid), is
 * found, by bnorm_fold and bnorm_inference, and nothing is written. */
Test(fold_errors, negative_variance_at_every_position)
{
    char what[96];
    static float var[33];
    for (size_t c = 1; c <= 33; c++) {
        for (size_t at = 0; at < c; at++) {
            for (size_t j = 0; j < c; j++)
                var[j] = j % 3 == 0 ? 0.0f : j % 3 == 1 ? -0.0f : NAN;
            var[at] = -FLT_TRUE_MIN;
            fold_call f = base_fold();
            f.c = c;
            f.var = var;
            snprintf(what, sizeof what, "c = %zu, var[%zu] < 0", c, at);
            expect_fold(&f, BNORM_ERR_BAD_VALUE, what);
            call cl = base_call(at % 2 ? BNORM_NHWC : BNORM_NCHW);
            cl.shape.n = 1;
            cl.shape.c = c;
            cl.shape.spatial = 1;
            cl.var = var;
            expect_status(&cl, OP_INFER, BNORM_ERR_BAD_VALUE, what);
        }
    }
}

Test(fold_errors, aliasing)
{
    char what[96];
    fold_call f = base_fold();
    f.shift = f.scale;
    expect_fold(&f, BNORM_ERR_ALIAS, "scale == shift");
    f.shift = f.scale + 1;
    expect_fold(&f, BNORM_ERR_ALIAS, "shift = scale + 1");
    f.shift = f.scale + 4;
    expect_fold(&f, BNORM_ERR_ALIAS, "shift = scale + c - 1");
    f.shift = ASHIFT;
    f.scale = ASHIFT + 4;
    expect_fold(&f, BNORM_ERR_ALIAS, "scale = shift + c - 1");
    f.scale = ASCALE;
    f.shift = ASCALE + 5;
    expect_fold(&f, BNORM_OK, "shift = scale + c (adjacent)");

    static const char *const names[] = {"gamma", "beta", "mean", "var"};
    const float *inputs[] = {AGAMMA, ABETA, AMEAN, AVAR};
    const ptrdiff_t at[] = {-4, 0, 3};
    for (int out = 0; out < 2; out++) {
        for (int which = 0; which < 4; which++) {
            for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
                f = base_fold();
                float *o = (float *)inputs[which] + at[i];
                if (out)
                    f.shift = o;
                else
                    f.scale = o;
                snprintf(what, sizeof what, "%s = %s %+td", out ? "shift" : "scale",
                         names[which], at[i]);
                expect_fold(&f, BNORM_ERR_ALIAS, what);
            }
            /* adjacent, below and above: accepted */
            const ptrdiff_t ok[] = {-5, 5};
            for (size_t i = 0; i < 2; i++) {
                f = base_fold();
                float *o = (float *)inputs[which] + ok[i];
                if (out)
                    f.shift = o;
                else
                    f.scale = o;
                snprintf(what, sizeof what, "%s = %s %+td", out ? "shift" : "scale",
                         names[which], ok[i]);
                /* var at var - 5 ... the 5 floats below var are mean's tail, which
                 * then gets overwritten: fine, the call is still valid. */
                expect_fold(&f, BNORM_OK, what);
            }
        }
    }
}

/* ---- every operation: a failing call reads no tensor ---------------------------- */

/* One failing call of failing_calls_read_no_tensor: a crash stops the test at its
 * line. */
#define EXPECT_FAILS(want, call)                                                         \
    do {                                                                                 \
        bnorm_status got_ = (call);                                                      \
        cr_expect_eq(got_, want, "%s: %s, want %s", #call, bnorm_status_name(got_),      \
                     bnorm_status_name(want));                                           \
    } while (0)

/* docs/guide.md, errors: a call that fails has read no element of x, y, dy, dx or the
 * weights. Here they all lie on one inaccessible page (in place, so that they are no
 * alias error), and each call fails for another reason: at an early check, and at
 * the last one (an output overlapping an input, found after every other check).
 * Reading a tensor would crash the test. */
Test(errors, failing_calls_read_no_tensor)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *map = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(map != MAP_FAILED, "mmap failed");
    float *none = map;
    const bnorm_shape sh = {2, 3, 4, BNORM_NHWC}, one = {1, 3, 1, BNORM_NCHW};
    const bnorm_strides narrow = {2, 12}; /* inner below C = 3 */
    const float gamma[3] = {1, 2, 3}, beta[3] = {0}, mean[3] = {0}, var[3] = {1, 1, 1},
                bad_var[3] = {1, -1, 1};
    float out[4][3];
    bnorm_running_stats run = {out[2], out[3], 2.0f, BNORM_MOMENTUM_PYTORCH};
    const bnorm_activation bad_act = {(bnorm_act_kind)7, 0.0f, 0.0f};

    EXPECT_FAILS(BNORM_ERR_BAD_ENUM,
                 bnorm_inference_apply(&sh, none, NULL, none, NULL, gamma, beta, &bad_act));
    EXPECT_FAILS(BNORM_ERR_BAD_STRIDE,
                 bnorm_inference_apply(&sh, none, &narrow, none, &narrow, gamma, beta, NULL));
    EXPECT_FAILS(BNORM_ERR_ALIAS,
                 bnorm_inference_apply(&sh, none, NULL, none, NULL, none, beta, NULL));

    EXPECT_FAILS(BNORM_ERR_BAD_VALUE, bnorm_inference(&sh, none, NULL, none, NULL, gamma,
                                                      beta, mean, var, -1.0f, NULL));
    EXPECT_FAILS(BNORM_ERR_BAD_VALUE, bnorm_inference(&sh, none, NULL, none, NULL, NULL,
                                                      NULL, mean, bad_var, 1e-5f, NULL));
    EXPECT_FAILS(BNORM_ERR_ALIAS, bnorm_inference(&sh, none, NULL, none, NULL, none, beta,
                                                  mean, var, 1e-5f, NULL));

    EXPECT_FAILS(BNORM_ERR_BAD_VALUE,
                 bnorm_training_forward(&sh, none, NULL, none, NULL, gamma, beta, 1e-5f,
                                        out[0], out[1], &run));
    EXPECT_FAILS(BNORM_ERR_BAD_SHAPE,
                 bnorm_training_forward(&one, none, NULL, none, NULL, gamma, beta, 1e-5f,
                                        out[0], out[1], NULL));
    EXPECT_FAILS(BNORM_ERR_ALIAS,
                 bnorm_training_forward(&sh, none, NULL, none, NULL, gamma, beta, 1e-5f,
                                        none + 1, out[1], NULL));

    EXPECT_FAILS(BNORM_ERR_BAD_SHAPE,
                 bnorm_training_backward(&one, none, NULL, none, NULL, gamma, mean, var, none,
                                         NULL, out[0], out[1]));
    EXPECT_FAILS(BNORM_ERR_ALIAS,
                 bnorm_training_backward(&sh, none, NULL, none, NULL, gamma, mean, var, none,
                                         NULL, none, out[1]));

    EXPECT_FAILS(BNORM_ERR_BAD_VALUE,
                 bnorm_frozen_backward(&sh, none, NULL, gamma, var, NAN, none, NULL));
    EXPECT_FAILS(BNORM_ERR_ALIAS,
                 bnorm_frozen_backward(&sh, none, NULL, none, var, 1e-5f, none, NULL));

    EXPECT_FAILS(BNORM_ERR_BAD_ENUM,
                 bnorm_fold_into_weights((bnorm_weight_layout)9, 3, 4, none, NULL, out[0],
                                         gamma, beta, mean, var, 1e-5f));
    EXPECT_FAILS(BNORM_ERR_BAD_VALUE,
                 bnorm_fold_into_weights(BNORM_WEIGHTS_OC_MAJOR, 3, 4, none, NULL, out[0],
                                         gamma, beta, mean, bad_var, 1e-5f));
    EXPECT_FAILS(BNORM_ERR_ALIAS,
                 bnorm_fold_into_weights(BNORM_WEIGHTS_OC_MAJOR, 3, 4, none, none + 2,
                                         out[0], gamma, beta, mean, var, 1e-5f));
    munmap(map, page);
}

/* ============================================================================== */
/* Part 2: valid inputs, every runnable kernel table                              */
/* ============================================================================== */

/* ---- exact affine apply over layouts, strides, in place ------------------------ */

#define PAD 16 /* sentinel floats before and after every output tensor */

/* Quarter-integers: every x * a + b below is exact in float. */
static float x_value(size_t n, size_t c, size_t s)
{
    return (float)((int)((n * 7 + c * 5 + s * 3) % 29) - 14) * 0.25f;
}

static float scale_value(size_t c)
{
    return (float)((int)(c % 7) - 3) * 0.5f + 0.25f;
}

static float shift_value(size_t c)
{
    return (float)((int)(c % 5) - 2) * 1.5f;
}

typedef enum variant { DENSE, STRIDED, IN_PLACE_NULL, IN_PLACE_STRIDED, N_VARIANTS } variant;
static const char *const variant_names[] = {"dense", "strided", "in-place", "in-place strided"};

static size_t offset_of(const bnorm_shape *sh, const bnorm_strides *st, size_t n, size_t c,
                        size_t s)
{
    if (sh->layout == BNORM_NCHW)
        return n * st->batch + c * st->inner + s;
    return n * st->batch + s * st->inner + c;
}

/* Runs apply (and, where the parameters allow, inference) on one shape with table t
 * and checks every output element, every gap between elements and the padding. */
static void check_apply_exact(const bnorm_conf_table *t, bnorm_shape sh, variant v,
                              const bnorm_activation *act)
{
    size_t run = run_len(&sh), outer = outer_len(&sh);
    bool strided = v == STRIDED || v == IN_PLACE_STRIDED;
    bool in_place = v == IN_PLACE_NULL || v == IN_PLACE_STRIDED;
    bnorm_strides st;
    st.inner = run + (strided ? 3 : 0);
    st.batch = (outer - 1) * st.inner + run + (strided ? 5 : 0);
    size_t extent = (sh.n - 1) * st.batch + (outer - 1) * st.inner + run;

    float *xbuf = malloc((extent + 2 * PAD) * sizeof(float));
    float *ybuf = malloc((extent + 2 * PAD) * sizeof(float));
    float *scale = malloc(sh.c * sizeof(float));
    float *shift = malloc(sh.c * sizeof(float));
    cr_assert(xbuf && ybuf && scale && shift);
    /* gaps of x are NaN: a kernel that read them would show NaN in y's gaps only if
     * it also wrote there, which the sentinel check catches */
    for (size_t i = 0; i < extent + 2 * PAD; i++)
        xbuf[i] = NAN;
    memset(ybuf, SENTINEL_BYTE, (extent + 2 * PAD) * sizeof(float));
    float *x = xbuf + PAD, *y = ybuf + PAD;
    for (size_t n = 0; n < sh.n; n++)
        for (size_t c = 0; c < sh.c; c++)
            for (size_t s = 0; s < sh.spatial; s++)
                x[offset_of(&sh, &st, n, c, s)] = x_value(n, c, s);
    for (size_t c = 0; c < sh.c; c++) {
        scale[c] = scale_value(c);
        shift[c] = shift_value(c);
    }
    if (in_place)
        memcpy(ybuf, xbuf, (extent + 2 * PAD) * sizeof(float));
    float *xcopy = malloc((extent + 2 * PAD) * sizeof(float));
    cr_assert_not_null(xcopy);
    memcpy(xcopy, xbuf, (extent + 2 * PAD) * sizeof(float));

    const float *xin = in_place ? y : x;
    const bnorm_strides *sp = v == IN_PLACE_NULL || v == DENSE ? NULL : &st;
    bnorm_status status =
        bnorm_inference_apply_with(t->k, &sh, xin, sp, y, sp, scale, shift, act);

    char what[160];
    snprintf(what, sizeof what, "table %s, %s %zux%zux%zu, %s, %s", t->label,
             layout_name(sh.layout), sh.n, sh.c, sh.spatial, variant_names[v], act_name(act));
    cr_assert_eq(status, BNORM_OK, "%s: status %s", what, bnorm_status_name(status));

    /* every element; element positions are marked so gaps can be told apart */
    unsigned char *is_elem = calloc(extent + 2 * PAD, 1);
    cr_assert_not_null(is_elem);
    for (size_t n = 0; n < sh.n; n++) {
        for (size_t c = 0; c < sh.c; c++) {
            for (size_t s = 0; s < sh.spatial; s++) {
                size_t o = offset_of(&sh, &st, n, c, s);
                is_elem[PAD + o] = 1;
                float want = act_ref(act, x_value(n, c, s) * scale[c] + shift[c]);
                bool ok = act_clamps(act) ? same_any_zero(y[o], want) : same_bits(y[o], want);
                cr_assert(ok, "%s: y[n=%zu, c=%zu, s=%zu] = %a, want %a", what, n, c, s,
                          (double)y[o], (double)want);
            }
        }
    }
    /* gaps and padding keep what they held before the call */
    const float *before = in_place ? xcopy : NULL;
    for (size_t i = 0; i < extent + 2 * PAD; i++) {
        if (is_elem[i])
            continue;
        uint32_t want = before ? bits(before[i]) : bits(sentinel());
        cr_assert_eq(bits(ybuf[i]), want, "%s: y buffer float %td (not an element) changed",
                     what, (ptrdiff_t)i - PAD);
    }
    if (!in_place)
        cr_assert(memcmp(xbuf, xcopy, (extent + 2 * PAD) * sizeof(float)) == 0,
                  "%s: x changed", what);

    free(is_elem);
    free(xcopy);
    free(xbuf);
    free(ybuf);
    free(scale);
    free(shift);
}

static const bnorm_shape exact_shapes[] = {
    {1, 1, 1, BNORM_NCHW},   {2, 3, 37, BNORM_NCHW},  {1, 9, 8, BNORM_NCHW},
    {3, 2, 1, BNORM_NCHW},   {2, 5, 65, BNORM_NCHW},  {1, 2, 7, BNORM_NCHW},
    {1, 1, 1, BNORM_NHWC},   {2, 3, 5, BNORM_NHWC},   {1, 17, 3, BNORM_NHWC},
    {2, 9, 33, BNORM_NHWC},  {3, 70, 2, BNORM_NHWC},  {1, 600, 2, BNORM_NHWC},
    {4, 1, 19, BNORM_NHWC},  {2, 8, 8, BNORM_NHWC},
};

Test(apply_values, exact_every_table_layout_variant)
{
    static const bnorm_activation relu = {.kind = BNORM_ACT_RELU};
    static const bnorm_activation clamp = {.kind = BNORM_ACT_CLAMP, .lo = -1.0f, .hi = 1.5f};
    static const bnorm_activation none = {.kind = BNORM_ACT_NONE};
    const bnorm_activation *acts[] = {NULL, &none, &relu, &clamp};
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++)
        for (size_t si = 0; si < sizeof exact_shapes / sizeof exact_shapes[0]; si++)
            for (int v = 0; v < N_VARIANTS; v++)
                for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
                    check_apply_exact(&ts.t[ti], exact_shapes[si], (variant)v, acts[ai]);
}

/* In place gives bit-for-bit what out of place gives, with NULL strides on both and
 * with equal explicit strides. */
Test(apply_values, in_place_equals_out_of_place)
{
    bnorm_conf_seed(0); /* not random: the values below are fixed */
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++) {
        for (int li = 0; li < 2; li++) {
            bnorm_shape sh = {.n = 2, .c = 5, .spatial = 13, .layout = layouts[li]};
            size_t run = run_len(&sh), outer = outer_len(&sh);
            bnorm_strides st = {.inner = run + 2, .batch = outer * (run + 2) + 1};
            /* NHWC extent: 92 + 12 * 7 + 5 = 181 floats */
            enum { LEN = 192 };
            float x[LEN], out[LEN], in[LEN], scale[5], shift[5];
            for (size_t i = 0; i < LEN; i++)
                x[i] = (float)(i % 31) * 0.3f - 4.1f; /* inexact products */
            for (size_t c = 0; c < 5; c++) {
                scale[c] = 0.7f + (float)c * 1.3f;
                shift[c] = -0.9f * (float)c + 0.1f;
            }
            for (int strided = 0; strided < 2; strided++) {
                const bnorm_strides *sp = strided ? &st : NULL;
                memcpy(out, x, sizeof x);
                memcpy(in, x, sizeof x);
                cr_assert_eq(bnorm_inference_apply_with(ts.t[ti].k, &sh, x, sp, out, sp, scale,
                                                        shift, NULL),
                             BNORM_OK);
                cr_assert_eq(bnorm_inference_apply_with(ts.t[ti].k, &sh, in, sp, in, sp, scale,
                                                        shift, NULL),
                             BNORM_OK);
                for (size_t i = 0; i < LEN; i++)
                    cr_assert_eq(bits(in[i]), bits(out[i]),
                                 "table %s, %s, %s: float %zu in place %a, out of place %a",
                                 ts.t[ti].label, layout_name(layouts[li]),
                                 strided ? "strided" : "dense", i, (double)in[i],
                                 (double)out[i]);
            }
        }
    }
}

/* ---- activations and special values -------------------------------------------- */

/* Runs y = act(x * a + b) on count values with table t in three plans: NCHW planes
 * (broadcast a, b), NHWC with one pixel of `count` channels (per-element a, b) and
 * NHWC with `count` pixels of one channel (the periodic long row), and checks each
 * result against want[] (zeros sign-agnostic if zero_sign_free). */
static void check_values(const bnorm_conf_table *t, const float *x, const float *want,
                         size_t count, float a, float b, const bnorm_activation *act,
                         bool zero_sign_free, const char *label)
{
    enum { MAXV = 128 };
    cr_assert(count <= MAXV);
    float y[MAXV + 2 * PAD], av[MAXV], bv[MAXV];
    for (size_t i = 0; i < count; i++) {
        av[i] = a;
        bv[i] = b;
    }
    const bnorm_shape shapes[] = {
        {.n = 1, .c = 1, .spatial = count, .layout = BNORM_NCHW},
        {.n = 1, .c = count, .spatial = 1, .layout = BNORM_NHWC},
        {.n = count, .c = 1, .spatial = 1, .layout = BNORM_NHWC},
    };
    for (size_t si = 0; si < 3; si++) {
        memset(y, SENTINEL_BYTE, sizeof y);
        bnorm_status st = bnorm_inference_apply_with(t->k, &shapes[si], x, NULL, y + PAD, NULL,
                                                     av, bv, act);
        cr_assert_eq(st, BNORM_OK, "table %s, %s: status %s", t->label, label,
                     bnorm_status_name(st));
        for (size_t i = 0; i < count; i++) {
            float got = y[PAD + i];
            bool ok = zero_sign_free ? same_any_zero(got, want[i]) : same_bits(got, want[i]);
            cr_assert(ok, "table %s, %s (plan %zu): x = %a -> %a, want %a", t->label, label, si,
                      (double)x[i], (double)got, (double)want[i]);
        }
        for (size_t i = 0; i < PAD; i++) {
            cr_assert_eq(bits(y[i]), bits(sentinel()), "table %s, %s: wrote before y",
                         t->label, label);
            cr_assert_eq(bits(y[PAD + count + i]), bits(sentinel()),
                         "table %s, %s: wrote past y", t->label, label);
        }
    }
}

/* Fills out[0..count) by cycling through vals, so each value lands both in the
 * vector body and in the tail of every kernel. */
static size_t cycle(float *out, size_t count, const float *vals, size_t nvals)
{
    for (size_t i = 0; i < count; i++)
        out[i] = vals[(i * 7) % nvals];
    return count;
}

Test(apply_values, activations_at_and_around_bounds)
{
    const float lo = -1.0f, hi = 2.0f;
    const float vals[] = {
        lo, hi, nextafterf(lo, -INFINITY), nextafterf(lo, 0.0f), nextafterf(hi, INFINITY),
        nextafterf(hi, 0.0f), -INFINITY, INFINITY, NAN, 0.5f, -5.0f, 5.0f, 0.0f, -0.0f,
        -FLT_TRUE_MIN, FLT_TRUE_MIN, 6.0f, nextafterf(6.0f, 0.0f), nextafterf(6.0f, 7.0f),
        -FLT_MAX, FLT_MAX,
    };
    const size_t nvals = sizeof vals / sizeof vals[0];
    const bnorm_activation none = {.kind = BNORM_ACT_NONE};
    const bnorm_activation relu = {.kind = BNORM_ACT_RELU};
    const bnorm_activation clamp = {.kind = BNORM_ACT_CLAMP, .lo = lo, .hi = hi};
    const bnorm_activation relu6 = {.kind = BNORM_ACT_CLAMP, .lo = 0.0f, .hi = 6.0f};
    const bnorm_activation point = {.kind = BNORM_ACT_CLAMP, .lo = 3.0f, .hi = 3.0f};
    const bnorm_activation open = {.kind = BNORM_ACT_CLAMP, .lo = -INFINITY, .hi = INFINITY};
    const struct {
        const bnorm_activation *act;
        const char *name;
    } acts[] = {{NULL, "NULL"},   {&none, "none"},        {&relu, "relu"},
                {&clamp, "clamp(-1, 2)"}, {&relu6, "relu6"}, {&point, "clamp(3, 3)"},
                {&open, "clamp(-inf, inf)"}};
    float x[61], want[61];
    size_t count = cycle(x, 61, vals, nvals);
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++) {
        for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
            for (size_t i = 0; i < count; i++) {
                /* x * 1 + 0 == x exactly, but -0 + 0 is +0 */
                float v = x[i] * 1.0f + 0.0f;
                want[i] = act_ref(acts[ai].act, v);
            }
            /* spot-check the reference itself against the header's wording */
            if (acts[ai].act == &relu6) {
                cr_assert_eq(act_ref(&relu6, 7.0f), 6.0f);
                cr_assert_eq(act_ref(&relu6, -1.0f), 0.0f);
            }
            check_values(&ts.t[ti], x, want, count, 1.0f, 0.0f, acts[ai].act,
                         act_clamps(acts[ai].act), acts[ai].name);
        }
    }
}

/* clamp(-inf, +inf) is the identity, bit for bit except the sign of a zero. */
Test(apply_values, open_clamp_equals_none)
{
    const bnorm_activation open = {.kind = BNORM_ACT_CLAMP, .lo = -INFINITY, .hi = INFINITY};
    bnorm_rng rng;
    uint64_t seed = bnorm_conf_seed(0x5eed0001);
    bnorm_rng_init(&rng, seed);
    enum { LEN = 3 * 41 };
    float x[LEN], y0[LEN], y1[LEN], scale[3], shift[3];
    for (size_t i = 0; i < LEN; i++)
        x[i] = (float)(bnorm_rng_normal(&rng) * 100.0);
    x[3] = NAN;
    x[50] = INFINITY;
    x[90] = -INFINITY;
    for (size_t c = 0; c < 3; c++) {
        scale[c] = (float)bnorm_rng_normal(&rng);
        shift[c] = (float)bnorm_rng_normal(&rng);
    }
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++) {
        for (int li = 0; li < 2; li++) {
            bnorm_shape sh = {.n = 1, .c = 3, .spatial = 41, .layout = layouts[li]};
            cr_assert_eq(bnorm_inference_apply_with(ts.t[ti].k, &sh, x, NULL, y0, NULL, scale,
                                                    shift, NULL),
                         BNORM_OK);
            cr_assert_eq(bnorm_inference_apply_with(ts.t[ti].k, &sh, x, NULL, y1, NULL, scale,
                                                    shift, &open),
                         BNORM_OK);
            for (size_t i = 0; i < LEN; i++)
                cr_assert(same_any_zero(y1[i], y0[i]),
                          "table %s, %s, seed %#llx: float %zu: clamp(-inf, inf) %a, none %a",
                          ts.t[ti].label, layout_name(layouts[li]), (unsigned long long)seed, i,
                          (double)y1[i], (double)y0[i]);
        }
    }
}

/* NaN made by the affine step (inf * 0, inf - inf) stays NaN through every
 * activation; infinities are clamped like any number. */
Test(apply_values, nan_from_arithmetic_survives_activations)
{
    const bnorm_activation relu = {.kind = BNORM_ACT_RELU};
    const bnorm_activation clamp = {.kind = BNORM_ACT_CLAMP, .lo = -1.0f, .hi = 1.0f};
    const bnorm_activation *acts[] = {NULL, &relu, &clamp};
    float x[23], want[23];
    for (size_t i = 0; i < 23; i++)
        x[i] = (i % 2) ? INFINITY : -INFINITY;
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++) {
        for (size_t ai = 0; ai < 3; ai++) {
            for (size_t i = 0; i < 23; i++)
                want[i] = NAN;
            /* +-inf * 0 is NaN */
            check_values(&ts.t[ti], x, want, 23, 0.0f, 1.0f, acts[ai], true, "inf * 0");
            /* -inf * 1 + inf is NaN; +inf * 1 + inf is +inf */
            for (size_t i = 0; i < 23; i++)
                want[i] = (i % 2) ? act_ref(acts[ai], INFINITY) : NAN;
            check_values(&ts.t[ti], x, want, 23, 1.0f, INFINITY, acts[ai], true, "x + inf");
        }
    }
}

/* Zeros keep their IEEE sign without an activation; subnormal inputs, parameters and
 * results are neither flushed nor treated as zero. */
Test(apply_values, signed_zeros_and_subnormals)
{
    const float tiny = FLT_TRUE_MIN;
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++) {
        const bnorm_conf_table *t = &ts.t[ti];
        /* -0 * 1 + -0 = -0; +0 * 1 + -0 = +0; -0 * 1 + +0 = +0; -0 * -1 + -0 = +0 */
        const float z[] = {-0.0f, 0.0f, -0.0f, 0.0f, -0.0f, -0.0f, 0.0f, -0.0f, -0.0f};
        float want[9];
        for (size_t i = 0; i < 9; i++)
            want[i] = z[i] * 1.0f + -0.0f;
        cr_assert(signbit(want[0]) && !signbit(want[1]));
        check_values(t, z, want, 9, 1.0f, -0.0f, NULL, false, "x * 1 + -0");
        for (size_t i = 0; i < 9; i++)
            want[i] = 0.0f;
        check_values(t, z, want, 9, 1.0f, 0.0f, NULL, false, "x * 1 + 0");
        for (size_t i = 0; i < 9; i++)
            want[i] = z[i] * -1.0f + -0.0f; /* -0 -> +0 + -0 = +0; +0 -> -0 + -0 = -0 */
        cr_assert(!signbit(want[0]) && signbit(want[1]));
        check_values(t, z, want, 9, -1.0f, -0.0f, NULL, false, "x * -1 + -0");

        /* subnormal x doubled, halved; subnormal a; subnormal b */
        const float xs[] = {tiny, 3 * tiny, -4 * tiny, 1e-40f, -1e-39f, FLT_MIN, -FLT_MIN,
                            2 * tiny, 0x1p-140f, -0x1p-148f, 0x1.fffffcp-127f};
        const size_t nx = sizeof xs / sizeof xs[0];
        float w[16];
        for (size_t i = 0; i < nx; i++)
            w[i] = xs[i] * 2.0f; /* exact: doubling a float is exact */
        check_values(t, xs, w, nx, 2.0f, 0.0f, NULL, false, "subnormal x * 2");
        const float even[] = {2 * tiny, -4 * tiny, 0x1p-140f, FLT_MIN, -FLT_MIN, 0x1p-127f};
        for (size_t i = 0; i < 6; i++)
            w[i] = even[i] * 0.5f; /* exact: even multiples of the smallest subnormal */
        cr_assert_eq(w[3], 0x1p-127f);
        check_values(t, even, w, 6, 0.5f, 0.0f, NULL, false, "x * 0.5 into the subnormals");
        const float ones[] = {1.0f, -1.0f, 0.5f, 4.0f, 1.0f, -2.0f, 1.0f};
        for (size_t i = 0; i < 7; i++)
            w[i] = ones[i] * tiny; /* exact: powers of two at least 1 times TRUE_MIN */
        w[2] = 0.0f;               /* 0.5 * TRUE_MIN is a tie: rounds to even, 0 */
        /* rounding of the tie: both FMA and a separate multiply round 2^-150 to 0 */
        check_values(t, ones, w, 7, tiny, 0.0f, NULL, true, "subnormal scale");
        const float zeros[] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        const float sub_b[] = {tiny, tiny, tiny, tiny, tiny};
        check_values(t, zeros, sub_b, 5, 1.0f, tiny, NULL, false, "subnormal shift");
        /* ReLU keeps positive subnormals and zeroes negative ones */
        const float rx[] = {tiny, -tiny, 1e-40f, -1e-40f, 0x1p-140f, -0x1p-140f, tiny};
        float rw[7];
        for (size_t i = 0; i < 7; i++)
            rw[i] = rx[i] > 0 ? rx[i] : 0.0f;
        const bnorm_activation relu = {.kind = BNORM_ACT_RELU};
        check_values(t, rx, rw, 7, 1.0f, 0.0f, &relu, true, "relu of subnormals");
    }
}

/* The library must not change the caller's floating-point environment (e.g. turn
 * on flush-to-zero for speed and leave it on). */
Test(apply_values, fp_environment_unchanged)
{
#if defined(__x86_64__) || defined(__i386__)
    const unsigned control = 0xffc0u; /* MXCSR without the exception flags */
    unsigned before = _mm_getcsr() & control;
    float x[40], y[40], scale[4] = {1, 2, 3, 4}, shift[4] = {0, 1, 2, 3};
    for (size_t i = 0; i < 40; i++)
        x[i] = (float)i;
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++) {
        bnorm_shape sh = {.n = 1, .c = 4, .spatial = 10, .layout = BNORM_NHWC};
        cr_assert_eq(bnorm_inference_apply_with(ts.t[ti].k, &sh, x, NULL, y, NULL, scale, shift,
                                                NULL),
                     BNORM_OK);
        cr_assert_eq(_mm_getcsr() & control, before, "table %s changed MXCSR", ts.t[ti].label);
    }
#else
    cr_skip_test("MXCSR check is x86 only");
#endif
}

/* ---- fold ---------------------------------------------------------------------- */

Test(fold_values, hand_computed)
{
    /* var + eps = 4, 1/4, 16: exact square roots */
    const float gamma[3] = {3.0f, -1.0f, 0.5f};
    const float beta[3] = {1.0f, 0.25f, -2.0f};
    const float mean[3] = {4.0f, -8.0f, 1.5f};
    const float var[3] = {3.0f, 0.0f, 15.0f};
    float scale[4], shift[4];
    memset(scale, SENTINEL_BYTE, sizeof scale);
    memset(shift, SENTINEL_BYTE, sizeof shift);
    cr_assert_eq(bnorm_fold(3, gamma, beta, mean, var, 1.0f, scale, shift), BNORM_OK);
    /* c0: 3 / 2 = 1.5, 1 - 4 * 1.5 = -5 */
    cr_assert_eq(scale[0], 1.5f);
    cr_assert_eq(shift[0], -5.0f);
    /* c1: -1 / 1 = -1, 0.25 - (-8)(-1) = -7.75 */
    cr_assert_eq(scale[1], -1.0f);
    cr_assert_eq(shift[1], -7.75f);
    /* c2: 0.5 / 4 = 0.125, -2 - 1.5 * 0.125 = -2.1875 */
    cr_assert_eq(scale[2], 0.125f);
    cr_assert_eq(shift[2], -2.1875f);
    cr_assert_eq(bits(scale[3]), bits(sentinel()), "fold wrote past scale");
    cr_assert_eq(bits(shift[3]), bits(sentinel()), "fold wrote past shift");

    /* gamma NULL = 1, beta NULL = 0 */
    memset(scale, SENTINEL_BYTE, sizeof scale);
    memset(shift, SENTINEL_BYTE, sizeof shift);
    cr_assert_eq(bnorm_fold(3, NULL, NULL, mean, var, 1.0f, scale, shift), BNORM_OK);
    cr_assert_eq(scale[0], 0.5f);
    cr_assert_eq(shift[0], -2.0f);
    cr_assert_eq(scale[1], 1.0f);
    cr_assert_eq(shift[1], 8.0f);
    cr_assert_eq(scale[2], 0.25f);
    cr_assert_eq(shift[2], -0.375f);
    /* only gamma NULL, only beta NULL */
    cr_assert_eq(bnorm_fold(3, NULL, beta, mean, var, 1.0f, scale, shift), BNORM_OK);
    cr_assert_eq(scale[0], 0.5f);
    cr_assert_eq(shift[0], -1.0f);
    cr_assert_eq(bnorm_fold(3, gamma, NULL, mean, var, 1.0f, scale, shift), BNORM_OK);
    cr_assert_eq(scale[1], -1.0f);
    cr_assert_eq(shift[1], -8.0f);
    cr_assert_eq(bits(scale[3]), bits(sentinel()), "fold wrote past scale");
}

/* "computed in double precision and rounded to float once per output": cases where
 * float arithmetic gives a different answer. */
Test(fold_values, double_precision_rounded_once)
{
    /* shift: beta cancels mean * scale; the float path loses everything */
    {
        const float var = 2.0f, eps = 0.0f, mean = 12345.678f;
        double s = 1.0 / sqrt((double)var + (double)eps);
        const float beta = (float)((double)mean * s);
        float want_scale = (float)s;
        float want_shift = (float)((double)beta - (double)mean * s);
        float float_scale = 1.0f / sqrtf(var + eps);
        float float_shift = beta - mean * float_scale;
        cr_assert_neq(bits(float_shift), bits(want_shift), "premise: float path differs");
        float scale, shift;
        cr_assert_eq(bnorm_fold(1, NULL, &beta, &mean, &var, eps, &scale, &shift), BNORM_OK);
        cr_assert_eq(bits(scale), bits(want_scale), "scale %a, want %a", (double)scale,
                     (double)want_scale);
        cr_assert_eq(bits(shift), bits(want_shift), "shift %a, want %a (float path %a)",
                     (double)shift, (double)want_shift, (double)float_shift);
    }
    /* scale: gamma / sqrt(var + eps), each step rounded in float, is one ulp off */
    {
        const float var = 0.37f, eps = 1e-3f, gamma = 1.7f, mean = 0.0f;
        float want = (float)((double)gamma / sqrt((double)var + (double)eps));
        float float_path = gamma / sqrtf(var + eps);
        cr_assert_neq(bits(float_path), bits(want), "premise: float path differs");
        float scale, shift;
        cr_assert_eq(bnorm_fold(1, &gamma, NULL, &mean, &var, eps, &scale, &shift), BNORM_OK);
        cr_assert_eq(bits(scale), bits(want), "scale %a, want %a (float path %a)",
                     (double)scale, (double)want, (double)float_path);
        cr_assert_eq(shift, 0.0f);
    }
    /* eps below var's ulp still counts */
    {
        const float var = 1.0f, eps = 1e-7f, mean = 1.0f;
        double s = 1.0 / sqrt(1.0 + (double)eps);
        float want_scale = (float)s, want_shift = (float)(0.0 - s);
        float scale, shift;
        cr_assert_eq(bnorm_fold(1, NULL, NULL, &mean, &var, eps, &scale, &shift), BNORM_OK);
        cr_assert_eq(bits(scale), bits(want_scale), "scale %a, want %a", (double)scale,
                     (double)want_scale);
        cr_assert_eq(bits(shift), bits(want_shift), "shift %a, want %a", (double)shift,
                     (double)want_shift);
        cr_assert_neq(want_scale, 1.0f, "premise: eps is visible in double");
    }
}

/* Seeded random channels: bit-exact against the double formula. */
Test(fold_values, random_channels_match_double_formula)
{
    uint64_t seed = bnorm_conf_seed(0x5eed0002);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed);
    enum { C = 257 };
    static float gamma[C], beta[C], mean[C], var[C], scale[C], shift[C];
    for (size_t i = 0; i < C; i++) {
        gamma[i] = (float)bnorm_rng_normal(&rng);
        beta[i] = (float)(bnorm_rng_normal(&rng) * 10.0);
        mean[i] = (float)(1e4 + bnorm_rng_normal(&rng));
        var[i] = (float)(bnorm_rng_uniform(&rng) * 4.0);
    }
    var[7] = 0.0f;
    const float eps = 1e-5f;
    cr_assert_eq(bnorm_fold(C, gamma, beta, mean, var, eps, scale, shift), BNORM_OK);
    for (size_t i = 0; i < C; i++) {
        double s = (double)gamma[i] / sqrt((double)var[i] + (double)eps);
        cr_assert_eq(bits(scale[i]), bits((float)s), "seed %#llx, channel %zu: scale %a, want %a",
                     (unsigned long long)seed, i, (double)scale[i], (double)(float)s);
        float want = (float)((double)beta[i] - (double)mean[i] * s);
        cr_assert_eq(bits(shift[i]), bits(want), "seed %#llx, channel %zu: shift %a, want %a",
                     (unsigned long long)seed, i, (double)shift[i], (double)want);
    }
}

/* The fold is one vectorized loop per combination of NULL inputs: every length
 * (vector tails) and every combination, bit-exact against the double formula, with
 * special statistics, and nothing written past c. The frozen backward's fold (no
 * beta, no mean) is checked in kernels/fold_without_mean_matches_formula and through
 * its results in the conformance suite. */
Test(fold_values, every_length_and_null_combination)
{
    uint64_t seed = bnorm_conf_seed(0x5eed0003);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed);
    enum { CMAX = 40 };
    static const float specials[] = {0.0f, -0.0f, NAN, INFINITY, FLT_TRUE_MIN, FLT_MAX};
    float gamma[CMAX], beta[CMAX], mean[CMAX], var[CMAX], scale[CMAX + 1],
        shift[CMAX + 1];
    for (size_t c = 1; c <= CMAX; c++) {
        for (int omit = 0; omit < 4; omit++) {
            for (size_t i = 0; i < c; i++) {
                gamma[i] = (float)bnorm_rng_normal(&rng);
                beta[i] = (float)(bnorm_rng_normal(&rng) * 10.0);
                mean[i] = (float)(1e4 + bnorm_rng_normal(&rng));
                var[i] = bnorm_rng_below(&rng, 8) == 0
                             ? specials[bnorm_rng_below(&rng, 6)]
                             : (float)(bnorm_rng_uniform(&rng) * 4.0);
            }
            const float *g = omit & 1 ? NULL : gamma, *b = omit & 2 ? NULL : beta;
            const float eps = c % 2 ? 1e-5f : 0.0f;
            memset(scale, SENTINEL_BYTE, sizeof scale);
            memset(shift, SENTINEL_BYTE, sizeof shift);
            cr_assert_eq(bnorm_fold(c, g, b, mean, var, eps, scale, shift), BNORM_OK);
            for (size_t i = 0; i < c; i++) {
                double s = (g ? (double)g[i] : 1.0) / sqrt((double)var[i] + (double)eps);
                float want_scale = (float)s;
                float want_shift = (float)((b ? (double)b[i] : 0.0) - (double)mean[i] * s);
                cr_assert(same_bits(scale[i], want_scale),
                          "seed %#llx, c %zu, omit %d, channel %zu: scale %a, want %a",
                          (unsigned long long)seed, c, omit, i, (double)scale[i],
                          (double)want_scale);
                cr_assert(same_bits(shift[i], want_shift),
                          "seed %#llx, c %zu, omit %d, channel %zu: shift %a, want %a",
                          (unsigned long long)seed, c, omit, i, (double)shift[i],
                          (double)want_shift);
            }
            cr_assert_eq(bits(scale[c]), bits(sentinel()), "c %zu: wrote past scale", c);
            cr_assert_eq(bits(shift[c]), bits(sentinel()), "c %zu: wrote past shift", c);
        }
    }
}

/* var = 0 with eps = 0 is valid input: gamma / 0 is an infinite scale. */
Test(fold_values, zero_variance_zero_eps)
{
    const float gamma[3] = {1.0f, -2.0f, 0.0f};
    const float mean[3] = {1.0f, 1.0f, 1.0f};
    const float var[3] = {0.0f, -0.0f, 0.0f};
    float scale[3], shift[3];
    cr_assert_eq(bnorm_fold(3, gamma, NULL, mean, var, 0.0f, scale, shift), BNORM_OK);
    cr_assert(isinf(scale[0]) && scale[0] > 0, "scale[0] = %a", (double)scale[0]);
    cr_assert(isinf(shift[0]) && shift[0] < 0, "shift[0] = %a", (double)shift[0]);
    /* sqrt(-0) = -0, so -2 / -0 = +inf */
    cr_assert(isinf(scale[1]), "scale[1] = %a", (double)scale[1]);
    cr_assert(isnan(scale[2]), "0 / 0: scale[2] = %a", (double)scale[2]);
    cr_assert(isnan(shift[2]), "shift[2] = %a", (double)shift[2]);
    /* mean 0: 0 * inf is NaN */
    const float zero = 0.0f;
    cr_assert_eq(bnorm_fold(1, NULL, NULL, &zero, &zero, 0.0f, scale, shift), BNORM_OK);
    cr_assert(isinf(scale[0]) && scale[0] > 0);
    cr_assert(isnan(shift[0]), "shift = %a", (double)shift[0]);
}

/* "A NaN in an input gives NaN in the outputs of that channel" - and only there.
 * Outputs that do not depend on the input (scale on beta or mean) stay exact. */
Test(fold_values, nan_stays_in_its_channel)
{
    for (int which = 0; which < 4; which++) {
        float gamma[4] = {1, 2, 3, 4}, beta[4] = {0, 1, 2, 3}, mean[4] = {1, 1, 1, 1},
              var[4] = {1, 1, 1, 1};
        float *arr[] = {gamma, beta, mean, var};
        arr[which][2] = NAN;
        float scale[4], shift[4];
        cr_assert_eq(bnorm_fold(4, gamma, beta, mean, var, 0.0f, scale, shift), BNORM_OK,
                     "NaN in input %d", which);
        for (size_t c = 0; c < 4; c++) {
            if (c == 2) {
                cr_assert(isnan(shift[c]), "input %d: shift[2] = %a", which, (double)shift[c]);
                if (which == 0 || which == 3) /* gamma, var */
                    cr_assert(isnan(scale[c]), "input %d: scale[2] = %a", which,
                              (double)scale[c]);
                else /* beta and mean do not enter scale: 3 / sqrt(1) */
                    cr_assert_eq(scale[c], 3.0f, "input %d: scale[2] = %a", which,
                                 (double)scale[c]);
            } else {
                cr_assert(!isnan(scale[c]) && !isnan(shift[c]), "input %d: channel %zu is NaN",
                          which, c);
            }
        }
    }
}

/* ---- bnorm_inference ----------------------------------------------------------- */

Test(inference_values, hand_computed_every_table)
{
    /* gamma 3, beta 1, mean 4, var 3, eps 1: y = 1.5 x - 5
     * gamma NULL, beta NULL, mean 2, var 0.25, eps 0: y = 2 x - 4 */
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++) {
        for (int li = 0; li < 2; li++) {
            bnorm_shape sh = {.n = 2, .c = 2, .spatial = 11, .layout = layouts[li]};
            float x[44], y[44 + PAD];
            for (size_t i = 0; i < 44; i++)
                x[i] = (float)((int)i - 20) * 0.25f;
            const float gamma[2] = {3.0f, 3.0f}, beta[2] = {1.0f, 1.0f};
            const float mean[2] = {4.0f, 4.0f}, var[2] = {3.0f, 3.0f};
            memset(y, SENTINEL_BYTE, sizeof y);
            cr_assert_eq(bnorm_inference_with(ts.t[ti].k, &sh, x, NULL, y, NULL, gamma, beta, mean,
                                              var, 1.0f, NULL),
                         BNORM_OK);
            for (size_t i = 0; i < 44; i++)
                cr_assert_eq(y[i], 1.5f * x[i] - 5.0f, "table %s, %s: y[%zu] = %a",
                             ts.t[ti].label, layout_name(layouts[li]), i, (double)y[i]);
            for (size_t i = 44; i < 44 + PAD; i++)
                cr_assert_eq(bits(y[i]), bits(sentinel()), "wrote past y");

            const float mean2[2] = {2.0f, 2.0f}, var2[2] = {0.25f, 0.25f};
            const bnorm_activation relu = {.kind = BNORM_ACT_RELU};
            cr_assert_eq(bnorm_inference_with(ts.t[ti].k, &sh, x, NULL, y, NULL, NULL, NULL,
                                              mean2, var2, 0.0f, &relu),
                         BNORM_OK);
            for (size_t i = 0; i < 44; i++) {
                float want = 2.0f * x[i] - 4.0f;
                cr_assert(same_any_zero(y[i], want < 0 ? 0.0f : want),
                          "table %s, %s: relu y[%zu] = %a", ts.t[ti].label,
                          layout_name(layouts[li]), i, (double)y[i]);
            }
        }
    }
}

/* var + eps == 0 (accepted): scale is +inf, and y = x * scale + shift is what the
 * header documents: NaN where x is 0 or has mean's sign (everywhere for mean 0),
 * the formula's infinity elsewhere; the frozen backward (no mean) is the formula's
 * dy * inf: +-inf, NaN where dy is 0. */
Test(inference_values, zero_variance_zero_eps_every_table)
{
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++) {
        for (int li = 0; li < 2; li++) {
            bnorm_shape sh = {.n = 1, .c = 1, .spatial = 19, .layout = layouts[li]};
            float x[19], y[19];
            for (size_t i = 0; i < 19; i++)
                x[i] = (float)((int)i - 9) * 0.5f; /* -4.5 .. 4.5, 0 at i = 9 */
            const float mean = 1.0f, zero = 0.0f;
            cr_assert_eq(bnorm_inference_with(ts.t[ti].k, &sh, x, NULL, y, NULL, NULL, NULL,
                                              &mean, &zero, 0.0f, NULL),
                         BNORM_OK);
            for (size_t i = 0; i < 19; i++) {
                bool nan = x[i] >= 0.0f;
                cr_assert(nan ? isnan(y[i]) : y[i] == -INFINITY,
                          "table %s, %s: x %g gave y %a", ts.t[ti].label,
                          layout_name(layouts[li]), (double)x[i], (double)y[i]);
            }
            cr_assert_eq(bnorm_inference_with(ts.t[ti].k, &sh, x, NULL, y, NULL, NULL, NULL,
                                              &zero, &zero, 0.0f, NULL),
                         BNORM_OK);
            for (size_t i = 0; i < 19; i++)
                cr_assert(isnan(y[i]), "table %s: mean 0, y[%zu] = %a", ts.t[ti].label, i,
                          (double)y[i]);
            cr_assert_eq(bnorm_frozen_backward_with(ts.t[ti].k, &sh, x, NULL, NULL, &zero,
                                                    0.0f, y, NULL),
                         BNORM_OK);
            for (size_t i = 0; i < 19; i++)
                cr_assert(x[i] == 0.0f ? isnan(y[i]) : y[i] == x[i] * INFINITY,
                          "table %s: frozen dx[%zu] = %a", ts.t[ti].label, i, (double)y[i]);
        }
    }
}

/* bnorm_inference is bnorm_fold followed by bnorm_inference_apply, bit for bit, also
 * when C exceeds the block it folds on the stack (2048), and over one image's planes
 * of 40 floats and more, which it folds and applies in blocks of BNORM_FOLD_PIPE
 * channels. */
Test(inference_values, equals_fold_then_apply)
{
    uint64_t seed = bnorm_conf_seed(0x5eed0003);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed);
    const size_t cs[] = {1, 3, 8, 17, 511, 512, 513, 1100, 2048, 2049, 4100};
    const bnorm_activation relu = {.kind = BNORM_ACT_RELU};
    const bnorm_activation clamp = {.kind = BNORM_ACT_CLAMP, .lo = -0.5f, .hi = 0.75f};
    const bnorm_activation *acts[] = {NULL, &relu, &clamp};
    tables ts = runnable_tables();
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        size_t c = cs[ci];
        for (int li = 0; li < 2; li++) {
            for (size_t cell = 0; cell < 6; cell++) {
                /* rows; planes by the kernels' per-plane path; (49) by the dense walk,
                 * whose vectors straddle planes, and for one image in blocks */
                static const size_t spatials[] = {1, 3, 49};
                size_t n = 1 + cell % 2, spatial = spatials[cell / 2];
                bnorm_shape sh = {.n = n, .c = c, .spatial = spatial, .layout = layouts[li]};
                size_t count = n * c * spatial;
                float *x = malloc(count * sizeof(float));
                float *y0 = malloc(count * sizeof(float));
                float *y1 = malloc(count * sizeof(float));
                float *p = malloc(6 * c * sizeof(float));
                cr_assert(x && y0 && y1 && p);
                float *gamma = p, *beta = p + c, *mean = p + 2 * c, *var = p + 3 * c;
                float *scale = p + 4 * c, *shift = p + 5 * c;
                for (size_t i = 0; i < count; i++)
                    x[i] = (float)(bnorm_rng_normal(&rng) + 3.0);
                for (size_t i = 0; i < c; i++) {
                    gamma[i] = (float)bnorm_rng_normal(&rng);
                    beta[i] = (float)bnorm_rng_normal(&rng);
                    mean[i] = (float)(bnorm_rng_normal(&rng) + 3.0);
                    var[i] = (float)bnorm_rng_uniform(&rng);
                }
                cr_assert_eq(bnorm_fold(c, gamma, beta, mean, var, 1e-5f, scale, shift),
                             BNORM_OK);
                for (size_t ti = 0; ti < ts.n; ti++) {
                    for (size_t ai = 0; ai < 3; ai++) {
                        const bnorm_kernels *k = ts.t[ti].k;
                        cr_assert_eq(bnorm_inference_apply_with(k, &sh, x, NULL, y0, NULL, scale,
                                                                shift, acts[ai]),
                                     BNORM_OK);
                        cr_assert_eq(bnorm_inference_with(k, &sh, x, NULL, y1, NULL, gamma, beta,
                                                          mean, var, 1e-5f, acts[ai]),
                                     BNORM_OK);
                        for (size_t i = 0; i < count; i++)
                            cr_assert_eq(bits(y1[i]), bits(y0[i]),
                                         "table %s, %s n=%zu c=%zu spatial=%zu %s, seed %#llx: "
                                         "float %zu: inference %a, fold+apply %a",
                                         ts.t[ti].label, layout_name(layouts[li]), n, c, spatial,
                                         act_name(acts[ai]), (unsigned long long)seed, i,
                                         (double)y1[i], (double)y0[i]);
                    }
                }
                free(x);
                free(y0);
                free(y1);
                free(p);
            }
        }
    }
}

Test(inference_values, nan_statistic_poisons_only_its_channel)
{
    tables ts = runnable_tables();
    for (size_t ti = 0; ti < ts.n; ti++) {
        for (int li = 0; li < 2; li++) {
            bnorm_shape sh = {.n = 2, .c = 3, .spatial = 9, .layout = layouts[li]};
            float x[54], y[54];
            for (size_t i = 0; i < 54; i++)
                x[i] = (float)i * 0.5f;
            const float mean[3] = {1.0f, NAN, 2.0f}, var[3] = {1.0f, 1.0f, NAN};
            const bnorm_activation relu = {.kind = BNORM_ACT_RELU};
            cr_assert_eq(bnorm_inference_with(ts.t[ti].k, &sh, x, NULL, y, NULL, NULL, NULL, mean,
                                              var, 0.0f, &relu),
                         BNORM_OK);
            for (size_t n = 0; n < 2; n++) {
                for (size_t c = 0; c < 3; c++) {
                    for (size_t s = 0; s < 9; s++) {
                        size_t o = li == 0 ? (n * 3 + c) * 9 + s : (n * 9 + s) * 3 + c;
                        if (c == 0)
                            cr_assert(!isnan(y[o]), "table %s: channel 0 got NaN",
                                      ts.t[ti].label);
                        else
                            cr_assert(isnan(y[o]), "table %s, %s: channel %zu: y = %a, want NaN",
                                      ts.t[ti].label, layout_name(layouts[li]), c, (double)y[o]);
                    }
                }
            }
        }
    }
}

/* ============================================================================== */
/* Status names, version                                                          */
/* ============================================================================== */

#define STATUS(s) {s, #s}
static const struct {
    bnorm_status status;
    const char *name;
} statuses[] = {
    STATUS(BNORM_OK),
    STATUS(BNORM_ERR_NULL_POINTER),
    STATUS(BNORM_ERR_BAD_SHAPE),
    STATUS(BNORM_ERR_BAD_STRIDE),
    STATUS(BNORM_ERR_OVERFLOW),
    STATUS(BNORM_ERR_ALIAS),
    STATUS(BNORM_ERR_BAD_VALUE),
    STATUS(BNORM_ERR_BAD_ENUM),
    STATUS(BNORM_ERR_UNKNOWN_ISA),
    STATUS(BNORM_ERR_UNSUPPORTED_ISA),
};
#define N_STATUSES (sizeof statuses / sizeof statuses[0])

Test(status_name, every_defined_status)
{
    for (size_t i = 0; i < N_STATUSES; i++) {
        cr_assert_eq((size_t)statuses[i].status, i, "statuses are numbered 0..%zu", N_STATUSES);
        const char *name = bnorm_status_name(statuses[i].status);
        cr_assert_not_null(name);
        cr_assert_str_eq(name, statuses[i].name);
        cr_assert_str_neq(name, "unknown status");
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(name, bnorm_status_name(statuses[j].status),
                              "statuses %zu and %zu share a name", i, j);
    }
}

Test(status_name, undefined_status)
{
    const bnorm_status undefined[] = {(bnorm_status)N_STATUSES, (bnorm_status)(N_STATUSES + 1),
                                      (bnorm_status)1000, (bnorm_status)-1,
                                      (bnorm_status)0x7fffffff};
    for (size_t i = 0; i < sizeof undefined / sizeof undefined[0]; i++) {
        const char *name = bnorm_status_name(undefined[i]);
        cr_assert_not_null(name);
        cr_assert_str_eq(name, "unknown status", "status %d", (int)undefined[i]);
    }
}

Test(version, macros_match_runtime)
{
    cr_assert_eq(BNORM_VERSION,
                 BNORM_VERSION_MAJOR * 10000 + BNORM_VERSION_MINOR * 100 + BNORM_VERSION_PATCH);
    cr_assert_eq(bnorm_version(), (unsigned)BNORM_VERSION);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", BNORM_VERSION_MAJOR, BNORM_VERSION_MINOR,
             BNORM_VERSION_PATCH);
    const char *s = bnorm_version_string();
    cr_assert_not_null(s);
    cr_assert_str_eq(s, want);
    unsigned major, minor, patch;
    char tail;
    cr_assert_eq(sscanf(s, "%u.%u.%u%c", &major, &minor, &patch, &tail), 3,
                 "\"%s\" is not major.minor.patch", s);
    cr_assert_eq(major * 10000 + minor * 100 + patch, bnorm_version());
    cr_assert(minor < 100 && patch < 100, "the encoding needs minor, patch < 100");
    cr_assert_str_eq(bnorm_version_string(), s, "the string is stable across calls");
}
