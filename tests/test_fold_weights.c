/*
 * bnorm_fold_into_weights: batch norm folded into the convolution or linear layer in
 * front of it.
 *
 *  1. conv: random convolutions (OIHW and HWIO, I*H*W from 1 to 27, bias absent and
 *     present, gamma/beta given or NULL, channel counts across the internal block of
 *     256), run here as a direct convolution in double: the folded layer
 *     conv(w') + b' against BN(conv(w) + b), both evaluated in double;
 *  2. exact identities: OIHW and HWIO give the same bits; bias_in NULL gives
 *     bnorm_fold's shift and a weight of 1 its scale; bias in place equals out of
 *     place; a NaN stays in its channel;
 *  3. rejected arguments return their documented status and write nothing.
 *
 * Tolerance (derived, not tuned). With U = 2^-24, the only float roundings are those
 * of each w' and of b' (w * s and (b - mean) * s + beta are formed in double, then
 * rounded once), so per output
 *   |conv(w') + b' - BN(conv(w) + b)| <= U * (sum |w' x| + |b'|) + D,
 * where D covers the double arithmetic on both sides: (P + 8) double roundings of
 * magnitudes up to |s| (sum |w x| + |b| + |mean|) + |beta|, counted twice.
 * BNORM_TEST_SEED overrides the seed, which every failure prints.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnorm.h"
#include "conformance.h"
#include "test_util.h"

#define DEFAULT_SEED 0x666f6c64776569ull
#define U 0x1p-24
#define UD 0x1p-53

static double uniform(bnorm_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * bnorm_rng_uniform(r);
}

static float *falloc(size_t n)
{
    float *p = malloc(n * sizeof *p);
    cr_assert(p != NULL);
    return p;
}

/* ============================================================================== */
/* A layer: logical weights w[o][i][kh][kw], stored in either layout               */
/* ============================================================================== */

typedef struct layer {
    size_t o, i, kh, kw; /* output channels, input channels, kernel height, width */
    bool has_bias, has_gamma, has_beta;
    float eps;
    float *w_oihw, *w_hwio; /* the same weights in both layouts */
    float *bias, *gamma, *beta, *mean, *var;
} layer;

static size_t per_channel(const layer *l)
{
    return l->i * l->kh * l->kw;
}

static size_t idx(bnorm_weight_layout layout, const layer *l, size_t o, size_t i,
                  size_t h, size_t w)
{
    if (layout == BNORM_WEIGHTS_OC_MAJOR)
        return ((o * l->i + i) * l->kh + h) * l->kw + w;
    return ((h * l->kw + w) * l->i + i) * l->o + o;
}

static void layer_make(layer *l, bnorm_rng *r, size_t o, size_t i, size_t kh, size_t kw,
                       bool has_bias, bool has_gamma, bool has_beta, float eps)
{
    *l = (layer){o, i, kh, kw, has_bias, has_gamma, has_beta, eps, NULL, NULL,
                 NULL, NULL, NULL, NULL, NULL};
    size_t p = per_channel(l);
    l->w_oihw = falloc(o * p);
    l->w_hwio = falloc(o * p);
    double wscale = 1.0 / sqrt((double)p);
    for (size_t a = 0; a < o; a++)
        for (size_t b = 0; b < i; b++)
            for (size_t h = 0; h < kh; h++)
                for (size_t w = 0; w < kw; w++) {
                    float v = (float)(wscale * bnorm_rng_normal(r));
                    l->w_oihw[idx(BNORM_WEIGHTS_OC_MAJOR, l, a, b, h, w)] = v;
                    l->w_hwio[idx(BNORM_WEIGHTS_OC_LAST, l, a, b, h, w)] = v;
                }
    l->bias = falloc(o);
    l->gamma = falloc(o);
    l->beta = falloc(o);
    l->mean = falloc(o);
    l->var = falloc(o);
    for (size_t a = 0; a < o; a++) {
        l->bias[a] = (float)uniform(r, -1, 1);
        /* Some negative gammas: a flipped channel is legal. */
        l->gamma[a] = (float)(uniform(r, 0.25, 2) * (bnorm_rng_below(r, 8) ? 1 : -1));
        l->beta[a] = (float)uniform(r, -1, 1);
        /* Sometimes a mean far from the data, so bias - mean cancels little. */
        l->mean[a] = (float)uniform(r, -1, 1) * (bnorm_rng_below(r, 4) ? 1.0f : 100.0f);
        /* A zero variance now and then (eps > 0 keeps it finite). */
        l->var[a] = eps > 0 && bnorm_rng_below(r, 16) == 0 ? 0.0f : (float)uniform(r, 1e-3, 4);
    }
}

static void layer_free(layer *l)
{
    free(l->w_oihw);
    free(l->w_hwio);
    free(l->bias);
    free(l->gamma);
    free(l->beta);
    free(l->mean);
    free(l->var);
}

/* conv(w) at output (o, y, x) of a valid, stride-1 convolution over image
 * img[i][H][W], in double; *abs_sum gets sum |w * x|. */
static double conv_at(const float *w, bnorm_weight_layout layout, const layer *l,
                      const float *img, size_t H, size_t W, size_t o, size_t y, size_t x,
                      double *abs_sum)
{
    double s = 0, a = 0;
    for (size_t i = 0; i < l->i; i++)
        for (size_t h = 0; h < l->kh; h++)
            for (size_t k = 0; k < l->kw; k++) {
                double t = (double)w[idx(layout, l, o, i, h, k)] *
                           (double)img[(i * H + y + h) * W + x + k];
                s += t;
                a += fabs(t);
            }
    *abs_sum = a;
    return s;
}

/* ============================================================================== */
/* 1. Folded convolution against convolution then batch norm                      */
/* ============================================================================== */

typedef struct kernel_shape {
    size_t i, kh, kw;
} kernel_shape;

/* I*H*W = 1, 2, 3, 3, 4, 6, 8, 9, 9, 12, 18, 27: linear layers (1x1) and convs. */
static const kernel_shape kshapes[] = {
    {1, 1, 1}, {2, 1, 1}, {3, 1, 1}, {1, 1, 3}, {1, 2, 2}, {2, 1, 3},
    {2, 2, 2}, {1, 3, 3}, {9, 1, 1}, {3, 2, 2}, {2, 3, 3}, {3, 3, 3},
};
/* Across the 256-channel block of the implementation. */
static const size_t out_channels[] = {1, 3, 8, 17, 300};
static const float epsilons[] = {1e-5f, 1e-3f, 0.0f};

Test(fold_weights, conv_matches_conv_then_bn, .timeout = 300)
{
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng r;
    bnorm_rng_init(&r, seed);
    double worst = 0;
    size_t checked = 0;
    for (size_t ks = 0; ks < sizeof kshapes / sizeof kshapes[0]; ks++) {
        for (size_t oi = 0; oi < sizeof out_channels / sizeof out_channels[0]; oi++) {
            for (unsigned variant = 0; variant < 4; variant++) {
                kernel_shape k = kshapes[ks];
                bool has_bias = variant & 1, has_affine = variant & 2;
                float eps = epsilons[bnorm_rng_below(&r, 3)];
                layer l;
                layer_make(&l, &r, out_channels[oi], k.i, k.kh, k.kw, has_bias,
                           has_affine, has_affine, eps);
                size_t P = per_channel(&l), O = l.o;
                size_t H = k.kh + 3, W = k.kw + 2, HO = H - k.kh + 1, WO = W - k.kw + 1;
                float *img = falloc(k.i * H * W);
                for (size_t t = 0; t < k.i * H * W; t++)
                    img[t] = (float)uniform(&r, -2, 2);

                for (int lay = 0; lay < 2; lay++) {
                    bnorm_weight_layout layout = lay ? BNORM_WEIGHTS_OC_LAST
                                                     : BNORM_WEIGHTS_OC_MAJOR;
                    const float *w = lay ? l.w_hwio : l.w_oihw;
                    float *wf = falloc(O * P), *bf = falloc(O);
                    memcpy(wf, w, O * P * sizeof *wf);
                    const float *gamma = has_affine ? l.gamma : NULL;
                    const float *beta = has_affine ? l.beta : NULL;
                    bnorm_status st = bnorm_fold_into_weights(
                        layout, O, P, wf, has_bias ? l.bias : NULL, bf, gamma, beta,
                        l.mean, l.var, eps);
                    cr_assert_eq(st, BNORM_OK, "status %s (seed 0x%llx)",
                                 bnorm_status_name(st), (unsigned long long)seed);

                    for (size_t o = 0; o < O; o++) {
                        double g = gamma ? gamma[o] : 1.0, be = beta ? beta[o] : 0.0;
                        double b = has_bias ? l.bias[o] : 0.0;
                        double s = g / sqrt((double)l.var[o] + eps);
                        for (size_t y = 0; y < HO; y++) {
                            for (size_t x = 0; x < WO; x++) {
                                double wx_abs, fx_abs;
                                double z = conv_at(w, layout, &l, img, H, W, o, y, x,
                                                   &wx_abs);
                                double ref = g * (z + b - l.mean[o]) /
                                                 sqrt((double)l.var[o] + eps) +
                                             be;
                                double got = conv_at(wf, layout, &l, img, H, W, o, y, x,
                                                     &fx_abs) +
                                             bf[o];
                                double mag = fabs(s) * (wx_abs + fabs(b) +
                                                        fabs((double)l.mean[o])) +
                                             fabs(be);
                                double tol = U * (fx_abs + fabs((double)bf[o])) +
                                             2.0 * (double)(P + 8) * UD * mag + 0x1p-149;
                                double err = fabs(got - ref);
                                cr_assert(err <= tol,
                                          "%s O=%zu I=%zu K=%zux%zu bias=%d affine=%d "
                                          "eps=%g: out (%zu,%zu,%zu) folded %.17g, conv "
                                          "then BN %.17g, error %.3g > tolerance %.3g "
                                          "(seed 0x%llx)",
                                          lay ? "HWIO" : "OIHW", O, k.i, k.kh, k.kw,
                                          has_bias, has_affine, (double)eps, o, y, x, got,
                                          ref, err, tol, (unsigned long long)seed);
                                if (err / tol > worst)
                                    worst = err / tol;
                                checked++;
                            }
                        }
                    }
                    free(wf);
                    free(bf);
                }
                free(img);
                layer_free(&l);
            }
        }
    }
    cr_log_info("fold_weights: %zu outputs, worst error %.3f of tolerance (seed 0x%llx)",
                checked, worst, (unsigned long long)seed);
}

/* ============================================================================== */
/* 2. Exact identities                                                            */
/* ============================================================================== */

Test(fold_weights, layouts_agree_bit_for_bit)
{
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng r;
    bnorm_rng_init(&r, seed ^ 1);
    layer l;
    layer_make(&l, &r, 300, 3, 3, 3, true, true, true, 1e-5f);
    size_t O = l.o, P = per_channel(&l);
    float *b1 = falloc(O), *b2 = falloc(O);
    cr_assert_eq(bnorm_fold_into_weights(BNORM_WEIGHTS_OC_MAJOR, O, P, l.w_oihw, l.bias,
                                         b1, l.gamma, l.beta, l.mean, l.var, l.eps),
                 BNORM_OK);
    cr_assert_eq(bnorm_fold_into_weights(BNORM_WEIGHTS_OC_LAST, O, P, l.w_hwio, l.bias,
                                         b2, l.gamma, l.beta, l.mean, l.var, l.eps),
                 BNORM_OK);
    for (size_t o = 0; o < O; o++) {
        cr_assert(same_bits(b1[o], b2[o]), "bias %zu (seed 0x%llx)", o,
                  (unsigned long long)seed);
        for (size_t i = 0; i < l.i; i++)
            for (size_t h = 0; h < l.kh; h++)
                for (size_t w = 0; w < l.kw; w++)
                    cr_assert(same_bits(l.w_oihw[idx(BNORM_WEIGHTS_OC_MAJOR, &l, o, i, h, w)],
                                        l.w_hwio[idx(BNORM_WEIGHTS_OC_LAST, &l, o, i, h, w)]),
                              "weight (%zu,%zu,%zu,%zu) (seed 0x%llx)", o, i, h, w,
                              (unsigned long long)seed);
    }
    free(b1);
    free(b2);
    layer_free(&l);
}

Test(fold_weights, unit_weights_and_no_bias_give_bnorm_fold)
{
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng r;
    bnorm_rng_init(&r, seed ^ 2);
    for (int with_affine = 0; with_affine < 2; with_affine++) {
        for (int lay = 0; lay < 2; lay++) {
            layer l;
            layer_make(&l, &r, 300, 1, 1, 1, false, true, true, 1e-3f);
            size_t O = l.o;
            /* zeros of both signs: beta - mean * s, with its sign of zero */
            for (size_t o = 0; o < 8; o++) {
                l.mean[o] = o & 1 ? -0.0f : 0.0f;
                l.beta[o] = o & 2 ? -0.0f : 0.0f;
                l.gamma[o] = o & 4 ? -1.0f : 1.0f;
            }
            const float *g = with_affine ? l.gamma : NULL, *b = with_affine ? l.beta : NULL;
            float *w = falloc(O), *bias = falloc(O), *scale = falloc(O), *shift = falloc(O);
            for (size_t o = 0; o < O; o++)
                w[o] = 1.0f;
            cr_assert_eq(bnorm_fold(O, g, b, l.mean, l.var, l.eps, scale, shift), BNORM_OK);
            cr_assert_eq(bnorm_fold_into_weights(lay ? BNORM_WEIGHTS_OC_LAST
                                                     : BNORM_WEIGHTS_OC_MAJOR,
                                                 O, 1, w, NULL, bias, g, b, l.mean, l.var,
                                                 l.eps),
                         BNORM_OK);
            for (size_t o = 0; o < O; o++) {
                cr_assert(same_bits(w[o], scale[o]), "scale %zu: %a vs %a (seed 0x%llx)",
                          o, (double)w[o], (double)scale[o], (unsigned long long)seed);
                cr_assert(same_bits(bias[o], shift[o]), "shift %zu: %a vs %a (seed 0x%llx)",
                          o, (double)bias[o], (double)shift[o], (unsigned long long)seed);
            }
            free(w);
            free(bias);
            free(scale);
            free(shift);
            layer_free(&l);
        }
    }
}

Test(fold_weights, bias_in_place_equals_out_of_place)
{
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng r;
    bnorm_rng_init(&r, seed ^ 3);
    layer l;
    layer_make(&l, &r, 17, 2, 3, 3, true, true, true, 1e-5f);
    size_t O = l.o, P = per_channel(&l);
    float *w2 = falloc(O * P), *out = falloc(O), *inplace = falloc(O);
    memcpy(w2, l.w_oihw, O * P * sizeof *w2);
    memcpy(inplace, l.bias, O * sizeof *inplace);
    cr_assert_eq(bnorm_fold_into_weights(BNORM_WEIGHTS_OC_MAJOR, O, P, l.w_oihw, l.bias,
                                         out, l.gamma, l.beta, l.mean, l.var, l.eps),
                 BNORM_OK);
    cr_assert_eq(bnorm_fold_into_weights(BNORM_WEIGHTS_OC_MAJOR, O, P, w2, inplace,
                                         inplace, l.gamma, l.beta, l.mean, l.var, l.eps),
                 BNORM_OK);
    for (size_t o = 0; o < O; o++)
        cr_assert(same_bits(inplace[o], out[o]), "bias %zu (seed 0x%llx)", o,
                  (unsigned long long)seed);
    cr_assert_eq(memcmp(w2, l.w_oihw, O * P * sizeof *w2), 0);
    free(w2);
    free(out);
    free(inplace);
    layer_free(&l);
}

Test(fold_weights, nan_stays_in_its_channel)
{
    /* 3 channels x 2 weights, both layouts; channel 1 gets a NaN variance, channel
     * 2 a NaN mean (which reaches the bias only). */
    for (int lay = 0; lay < 2; lay++) {
        bnorm_weight_layout layout = lay ? BNORM_WEIGHTS_OC_LAST : BNORM_WEIGHTS_OC_MAJOR;
        float w[6] = {1, 2, 3, 4, 5, 6}, bias[3] = {0.5f, 0.5f, 0.5f}, out[3];
        float mean[3] = {0, 0, NAN}, var[3] = {1, NAN, 1};
        cr_assert_eq(bnorm_fold_into_weights(layout, 3, 2, w, bias, out, NULL, NULL, mean,
                                             var, 0.0f),
                     BNORM_OK);
        for (size_t o = 0; o < 3; o++) {
            for (size_t k = 0; k < 2; k++) {
                size_t at = lay ? k * 3 + o : o * 2 + k;
                float before = (float)(at + 1);
                if (o == 1)
                    cr_assert(isnan(w[at]), "weight of the NaN-variance channel");
                else
                    cr_assert(same_bits(w[at], before), "weight %zu changed", at);
            }
        }
        cr_assert(same_bits(out[0], 0.5f));
        cr_assert(isnan(out[1]));
        cr_assert(isnan(out[2]));
    }
}

/* ============================================================================== */
/* 3. Rejected arguments                                                          */
/* ============================================================================== */

/* Every buffer of a call lives in one arena, snapshotted before each failing call. */
#define ARENA 1024
enum { W_AT = 0, BIN_AT = 100, BOUT_AT = 200, G_AT = 300, BE_AT = 400, M_AT = 500,
       V_AT = 600 };

typedef struct call {
    int layout;
    size_t oc, pc;
    float *w;
    const float *bias_in;
    float *bias_out;
    const float *gamma, *beta, *mean, *var;
    float eps;
} call;

static float arena[ARENA];

/* A valid call: 4 output channels, 3 weights each, everything given. */
static call valid_call(void)
{
    for (size_t i = 0; i < ARENA; i++)
        arena[i] = 0.25f + (float)(i % 7);
    return (call){BNORM_WEIGHTS_OC_MAJOR, 4, 3, arena + W_AT, arena + BIN_AT,
                  arena + BOUT_AT, arena + G_AT, arena + BE_AT, arena + M_AT,
                  arena + V_AT, 1e-5f};
}

static bnorm_status run_call(const call *c)
{
    return bnorm_fold_into_weights((bnorm_weight_layout)c->layout, c->oc, c->pc, c->w,
                                   c->bias_in, c->bias_out, c->gamma, c->beta, c->mean,
                                   c->var, c->eps);
}

static void expect_rejected(const char *what, call c, bnorm_status want)
{
    static float before[ARENA];
    memcpy(before, arena, sizeof arena);
    bnorm_status st = run_call(&c);
    cr_expect_eq(st, want, "%s: got %s, want %s", what, bnorm_status_name(st),
                 bnorm_status_name(want));
    cr_expect_eq(memcmp(before, arena, sizeof arena), 0, "%s: wrote despite failing",
                 what);
}

Test(fold_weights, rejected_arguments_write_nothing)
{
    call c;
    cr_assert_eq(run_call((c = valid_call(), &c)), BNORM_OK, "the valid call");

    c = valid_call(); c.w = NULL;
    expect_rejected("weights NULL", c, BNORM_ERR_NULL_POINTER);
    c = valid_call(); c.bias_out = NULL;
    expect_rejected("bias_out NULL", c, BNORM_ERR_NULL_POINTER);
    c = valid_call(); c.mean = NULL;
    expect_rejected("mean NULL", c, BNORM_ERR_NULL_POINTER);
    c = valid_call(); c.var = NULL;
    expect_rejected("var NULL", c, BNORM_ERR_NULL_POINTER);
    c = valid_call(); c.var = NULL; c.layout = 7; c.oc = 0; c.eps = NAN;
    expect_rejected("NULL takes precedence", c, BNORM_ERR_NULL_POINTER);

    c = valid_call(); c.layout = 2;
    expect_rejected("layout 2", c, BNORM_ERR_BAD_ENUM);
    c = valid_call(); c.layout = -1;
    expect_rejected("layout -1", c, BNORM_ERR_BAD_ENUM);

    c = valid_call(); c.oc = 0;
    expect_rejected("out_channels 0", c, BNORM_ERR_BAD_SHAPE);
    c = valid_call(); c.pc = 0;
    expect_rejected("per_channel 0", c, BNORM_ERR_BAD_SHAPE);

    /* Overflowing sizes with small real buffers: a check that touched memory first
     * would crash here. */
    c = valid_call(); c.pc = SIZE_MAX / 2 + 1; c.oc = 2;
    expect_rejected("out_channels * per_channel wraps", c, BNORM_ERR_OVERFLOW);
    c = valid_call(); c.oc = 1; c.pc = (size_t)PTRDIFF_MAX / sizeof(float) + 1;
    expect_rejected("weights over PTRDIFF_MAX bytes", c, BNORM_ERR_OVERFLOW);
    c = valid_call(); c.oc = (size_t)PTRDIFF_MAX / sizeof(float) + 1; c.pc = 1;
    expect_rejected("out_channels over PTRDIFF_MAX bytes", c, BNORM_ERR_OVERFLOW);

    c = valid_call(); c.eps = NAN;
    expect_rejected("eps NaN", c, BNORM_ERR_BAD_VALUE);
    c = valid_call(); c.eps = -1e-5f;
    expect_rejected("eps negative", c, BNORM_ERR_BAD_VALUE);
    c = valid_call(); c.eps = INFINITY;
    expect_rejected("eps infinite", c, BNORM_ERR_BAD_VALUE);
    c = valid_call(); arena[V_AT + 3] = -1.0f;
    expect_rejected("a negative variance", c, BNORM_ERR_BAD_VALUE);

    /* Weights overlapping each other argument (their last weight on its first
     * value), then bias_out overlapping each input. */
    size_t last = 4 * 3 - 1;
    const char *names[] = {"bias_in", "bias_out", "gamma", "beta", "mean", "var"};
    for (size_t i = 0; i < 6; i++) {
        c = valid_call();
        float *at = c.w + last;
        switch (i) {
        case 0: c.bias_in = at; break;
        case 1: c.bias_out = at; break;
        case 2: c.gamma = at; break;
        case 3: c.beta = at; break;
        case 4: c.mean = at; break;
        case 5: c.var = at; break;
        }
        char what[64];
        snprintf(what, sizeof what, "weights overlap %s", names[i]);
        expect_rejected(what, c, BNORM_ERR_ALIAS);
    }
    for (size_t i = 0; i < 6; i++) {
        if (i == 1)
            continue;
        c = valid_call();
        const float *at = c.bias_out + 3; /* bias_out's last value */
        switch (i) {
        case 0: c.bias_in = at; break;
        case 2: c.gamma = at; break;
        case 3: c.beta = at; break;
        case 4: c.mean = at; break;
        case 5: c.var = at; break;
        }
        char what[64];
        snprintf(what, sizeof what, "bias_out overlaps %s", names[i]);
        expect_rejected(what, c, BNORM_ERR_ALIAS);
    }
    c = valid_call(); c.bias_in = c.bias_out - 1;
    expect_rejected("bias_in one float before bias_out", c, BNORM_ERR_ALIAS);

    /* Accepted: bias in place; gamma, beta, bias_in NULL; OC_LAST. */
    c = valid_call(); c.bias_in = c.bias_out;
    cr_expect_eq(run_call(&c), BNORM_OK, "bias in place");
    c = valid_call(); c.bias_in = NULL; c.gamma = NULL; c.beta = NULL;
    c.layout = BNORM_WEIGHTS_OC_LAST;
    cr_expect_eq(run_call(&c), BNORM_OK, "optional inputs NULL");
    c = valid_call(); c.eps = 0.0f; arena[V_AT] = 0.0f;
    cr_expect_eq(run_call(&c), BNORM_OK, "eps 0 and a zero variance");
}
