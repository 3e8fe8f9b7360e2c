/*
 * Conformance of the inference operations: bnorm_inference_apply (folded scale and
 * shift), bnorm_inference (from running statistics) and bnorm_frozen_backward (the
 * same computation without mean and beta), run through src/ with an explicit
 * kernel table, so the loop plans are checked along with the kernels.
 *
 * Each case checks, besides every value against the double reference: the guard
 * pages and canaries around every buffer, that stride gaps in y keep their bytes,
 * and that no input changed.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "ops.h"
#include "reference.h"
#include "tensor.h"

/* Fill for output bytes that must not be written: a NaN with a payload no
 * arithmetic produces. */
#define BACKGROUND 0x7fc0deadu

static float special_value(bnorm_rng *r)
{
    static const float v[] = {NAN, -NAN, INFINITY, -INFINITY, -0.0f, 0.0f,
                              1e-40f, -3e-39f, FLT_MIN, 1e30f};
    return v[bnorm_rng_below(r, sizeof v / sizeof v[0])];
}

static void fill_x(float *x, size_t count, bool specials, bnorm_rng *r)
{
    for (size_t i = 0; i < count; i++) {
        x[i] = (float)(8.0 * bnorm_rng_uniform(r) - 4.0);
        if (specials && bnorm_rng_below(r, 16) == 0)
            x[i] = special_value(r);
    }
}

typedef enum mode { APPLY, FROM_STATS, FROZEN } mode;

typedef struct params {
    bool from_stats; /* FROM_STATS or FROZEN: gamma, beta, mean, var */
    float *scale, *shift;             /* apply */
    float *gamma, *beta, *mean, *var; /* from statistics; gamma, beta may be NULL */
    float eps;
    bnorm_fence fences[4];
    double *a, *b;                    /* the exact per-channel affine map */
} params;

static bool make_params(params *p, size_t c, mode md, bnorm_rng *r)
{
    bool from_stats = md != APPLY;
    memset(p, 0, sizeof *p);
    p->from_stats = from_stats;
    p->a = malloc(c * sizeof(double));
    p->b = malloc(c * sizeof(double));
    float *buf[4];
    int count = from_stats ? 4 : 2;
    for (int i = 0; i < count; i++)
        if (!(buf[i] = bnorm_fence_alloc(&p->fences[i], c, BNORM_FENCE_AT_GUARD)))
            return false;
    if (!p->a || !p->b)
        return false;
    if (!from_stats) {
        p->scale = buf[0];
        p->shift = buf[1];
        for (size_t i = 0; i < c; i++) {
            p->scale[i] = bnorm_rng_below(r, 16) == 0 ? 0.0f : (float)bnorm_rng_normal(r);
            p->shift[i] = (float)bnorm_rng_normal(r);
            p->a[i] = p->scale[i];
            p->b[i] = p->shift[i];
        }
        return true;
    }
    int omit = (int)bnorm_rng_below(r, 4); /* 1: no gamma, 2: no beta, 3: neither */
    if (md == FROZEN)
        omit |= 2; /* dx = dy * gamma / sqrt(var + eps): no beta; the reference's mean
                    * is 0 (var + eps > 0 here, so 0 * scale is 0, as no mean) */
    p->gamma = omit & 1 ? NULL : buf[0];
    p->beta = omit & 2 ? NULL : buf[1];
    p->mean = buf[2];
    p->var = buf[3];
    p->eps = bnorm_rng_below(r, 2) ? 1e-5f : 1e-3f;
    for (size_t i = 0; i < c; i++) {
        buf[0][i] = (float)bnorm_rng_normal(r);
        buf[1][i] = (float)bnorm_rng_normal(r);
        p->mean[i] = md == FROZEN ? 0.0f : (float)(3.0 * bnorm_rng_normal(r));
        p->var[i] = bnorm_rng_below(r, 8) == 0 ? 0.0f : (float)(4.0 * bnorm_rng_uniform(r));
        double g = p->gamma ? p->gamma[i] : 1.0, b = p->beta ? p->beta[i] : 0.0;
        p->a[i] = g / sqrt((double)p->var[i] + p->eps);
        p->b[i] = b - p->mean[i] * p->a[i];
    }
    return true;
}

static void free_params(params *p)
{
    for (int i = 0; i < 4; i++)
        bnorm_fence_free(&p->fences[i]);
    free(p->a);
    free(p->b);
}

static bool params_intact(const params *p, float *const copies[4])
{
    const float *cur[4] = {p->from_stats ? p->fences[0].data : p->scale,
                           p->from_stats ? p->fences[1].data : p->shift,
                           p->from_stats ? p->mean : NULL, p->from_stats ? p->var : NULL};
    for (int i = 0; i < 4; i++) {
        if (!cur[i])
            continue;
        if (!bnorm_fence_intact(&p->fences[i]) ||
            memcmp(cur[i], copies[i], p->fences[i].count * sizeof(float)) != 0)
            return false;
    }
    return true;
}

static void run_affine(const bnorm_conf_op *op, const bnorm_kernels *k,
                       const bnorm_conf_case *cs, bnorm_conf_result *res, mode md)
{
    bool from_stats = md != APPLY;
    const bnorm_shape *sh = &cs->shape;
    bnorm_rng r;
    bnorm_rng_init(&r, cs->seed ^ 0x5eed);
    res->cases++;

    bnorm_geom gx, gy;
    const bnorm_strides *xs = cs->strided ? &cs->xs : NULL;
    const bnorm_strides *ys = cs->strided ? &cs->ys : NULL;
    if (bnorm_resolve_geom(sh, xs, &gx) != BNORM_OK ||
        bnorm_resolve_geom(sh, ys, &gy) != BNORM_OK) {
        bnorm_conf_fail(res, op, k, cs, "harness: invalid case geometry");
        return;
    }
    if (cs->in_place)
        gy = gx;

    size_t count = sh->n * sh->c * sh->spatial;
    bnorm_fence xf = {0}, yf = {0};
    params p;
    float *x = bnorm_fence_alloc(&xf, gx.extent, cs->misalign);
    float *y = cs->in_place ? x : bnorm_fence_alloc(&yf, gy.extent, cs->misalign);
    float *x_copy = malloc(gx.extent * sizeof(float));
    float *y_background = malloc(gy.extent * sizeof(float));
    double *ref = malloc(count * sizeof(double));
    float *param_copy[4] = {0};
    bool ok = make_params(&p, sh->c, md, &r) && x && y && x_copy && y_background &&
              ref;
    for (int i = 0; ok && i < (from_stats ? 4 : 2); i++)
        ok = (param_copy[i] = malloc(sh->c * sizeof(float))) != NULL;
    if (!ok) {
        bnorm_conf_fail(res, op, k, cs, "harness: out of memory");
        goto out;
    }
    for (int i = 0; i < (from_stats ? 4 : 2); i++)
        memcpy(param_copy[i], p.fences[i].data, sh->c * sizeof(float));

    fill_x(x, gx.extent, cs->specials, &r);
    memcpy(x_copy, x, gx.extent * sizeof(float));
    if (cs->in_place) {
        memcpy(y_background, x, gy.extent * sizeof(float));
    } else {
        for (size_t i = 0; i < gy.extent; i++)
            memcpy(&y_background[i], &(unsigned){BACKGROUND}, sizeof(float));
        memcpy(y, y_background, gy.extent * sizeof(float));
    }

    /* The frozen backward has no activation. */
    const bnorm_activation *act = md == FROZEN ? NULL : &cs->act;
    if (from_stats)
        bnorm_ref_inference(sh, x_copy, gx.inner, gx.batch, p.gamma, p.beta, p.mean, p.var,
                            p.eps, act, ref);
    else
        bnorm_ref_apply(sh, x_copy, gx.inner, gx.batch, p.scale, p.shift, &cs->act, ref);

    const bnorm_strides *out_strides = cs->in_place ? xs : ys;
    bnorm_status st =
        md == FROZEN ? bnorm_frozen_backward_with(k, sh, x, xs, p.gamma, p.var, p.eps, y,
                                                  out_strides)
        : md == FROM_STATS ? bnorm_inference_with(k, sh, x, xs, y, out_strides, p.gamma,
                                                  p.beta, p.mean, p.var, p.eps, &cs->act)
                           : bnorm_inference_apply_with(k, sh, x, xs, y, out_strides,
                                                        p.scale, p.shift, &cs->act);
    if (st != BNORM_OK) {
        char msg[96];
        snprintf(msg, sizeof msg, "returned %s", bnorm_status_name(st));
        bnorm_conf_fail(res, op, k, cs, msg);
        goto out;
    }

    /* Every value against the reference; then put the background back where the
     * tensor is, so that the whole extent must equal it. */
    double worst = 0.0;
    bool value_failed = false;
    const double *rp = ref;
    for (size_t n = 0; n < sh->n; n++)
        for (size_t c = 0; c < sh->c; c++)
            for (size_t s = 0; s < sh->spatial; s++, rp++) {
                size_t ox = bnorm_ref_offset(sh, gx.inner, gx.batch, n, c, s);
                size_t oy = bnorm_ref_offset(sh, gy.inner, gy.batch, n, c, s);
                double xa = fabs((double)x_copy[ox] * p.a[c]);
                double u = bnorm_conf_affine_ulps(y[oy], *rp, xa, fabs(p.b[c]));
                if (u > worst)
                    worst = u;
                if (!(u <= op->tol_ulps) && !value_failed) {
                    char msg[256];
                    snprintf(msg, sizeof msg,
                             "element (n=%zu, c=%zu, s=%zu): x=%.9g y=%.9g ref=%.17g "
                             "(%.3g ulps > %.3g)",
                             n, c, s, x_copy[ox], y[oy], *rp, u, op->tol_ulps);
                    bnorm_conf_fail(res, op, k, cs, msg);
                    value_failed = true;
                }
                y[oy] = y_background[oy];
            }
    if (isfinite(worst) && worst > res->worst_ulps)
        res->worst_ulps = worst;
    if (value_failed)
        goto out;
    if (memcmp(y, y_background, gy.extent * sizeof(float)) != 0)
        bnorm_conf_fail(res, op, k, cs, "wrote into a stride gap of y");
    else if (!bnorm_fence_intact(&xf) || (!cs->in_place && !bnorm_fence_intact(&yf)))
        bnorm_conf_fail(res, op, k, cs, "wrote outside the x or y buffer");
    else if (!cs->in_place && memcmp(x, x_copy, gx.extent * sizeof(float)) != 0)
        bnorm_conf_fail(res, op, k, cs, "changed the input x");
    else if (!params_intact(&p, param_copy))
        bnorm_conf_fail(res, op, k, cs, "changed or overran a per-channel input");

out:
    for (int i = 0; i < 4; i++)
        free(param_copy[i]);
    free_params(&p);
    free(ref);
    free(y_background);
    free(x_copy);
    if (!cs->in_place)
        bnorm_fence_free(&yf);
    bnorm_fence_free(&xf);
}

static void run_apply(const bnorm_conf_op *op, const bnorm_kernels *k,
                      const bnorm_conf_case *cs, bnorm_conf_result *res)
{
    run_affine(op, k, cs, res, APPLY);
}

static void run_inference(const bnorm_conf_op *op, const bnorm_kernels *k,
                          const bnorm_conf_case *cs, bnorm_conf_result *res)
{
    run_affine(op, k, cs, res, FROM_STATS);
}

static void run_frozen(const bnorm_conf_op *op, const bnorm_kernels *k,
                       const bnorm_conf_case *cs, bnorm_conf_result *res)
{
    run_affine(op, k, cs, res, FROZEN);
}

const bnorm_conf_op bnorm_conf_inference_apply = {"inference_apply", BNORM_TOL_APPLY,
                                                  run_apply};
const bnorm_conf_op bnorm_conf_inference = {"inference", BNORM_TOL_INFERENCE,
                                            run_inference};
const bnorm_conf_op bnorm_conf_frozen_backward = {"frozen_backward", BNORM_TOL_INFERENCE,
                                                  run_frozen};
