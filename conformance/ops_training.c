/*
 * Conformance of training: bnorm_training_forward (output, saved statistics,
 * running statistics) and bnorm_training_backward (dx, dgamma, dbeta), through src/
 * with an explicit kernel table, against the double reference.
 *
 * Data: per channel an offset (sometimes 1e3 or 1e4 times the spread, to exercise
 * the shifted sums) plus uniform noise; some channels are constant. Shapes with
 * m = N * spatial < 2 must be refused with BNORM_ERR_BAD_SHAPE and write nothing.
 *
 * Tolerances (units of 2^-23 times the magnitude named; derivations in comments):
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

#define SENTINEL 0x7fc0beefu

typedef struct ctx {
    const bnorm_conf_op *op;
    const bnorm_kernels *k;
    const bnorm_conf_case *cs;
    bnorm_conf_result *res;
    double worst;
    bool failed;
} ctx;

static void fail(ctx *t, const char *what)
{
    if (t->failed)
        return;
    t->failed = true;
    bnorm_conf_fail(t->res, t->op, t->k, t->cs, what);
}

/* Checks one value against its tolerance (units of bnorm_conf_affine_ulps); returns
 * its error. */
static double check(ctx *t, const char *what, size_t index, float got, double ref,
                    double mag, double tol)
{
    double u = bnorm_conf_affine_ulps(got, ref, mag, 0.0);
    if (!(u <= tol)) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s[%zu] = %.9g, reference %.17g (%.3g units > %.3g)", what,
                 index, got, ref, u, tol);
        fail(t, msg);
    }
    return u;
}

/* The worst error reported is the tensor output's (y, dx: the operation's tolerance);
 * the statistics and the parameter gradients pass or fail on their own tolerances. */
static void note_worst(ctx *t, double u)
{
    if (u > t->worst && isfinite(u))
        t->worst = u;
}

static void fill(float *p, size_t n, unsigned bits)
{
    for (size_t i = 0; i < n; i++)
        memcpy(&p[i], &bits, sizeof bits);
}

static bool all_bits(const float *p, size_t n, unsigned bits)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&p[i], &bits, sizeof bits) != 0)
            return false;
    return true;
}

/* x with per-channel offsets, spreads and constant channels, and channels whose first
 * value (the kernels' shift) lies far out from repeated values: rounding each x - k
 * to float would add up errors of that value's size (kernels.h). */
static void fill_training_x(const bnorm_shape *sh, float *x, const bnorm_geom *g,
                            bool specials, bnorm_rng *r)
{
    for (size_t i = 0; i < g->extent; i++)
        x[i] = (float)bnorm_rng_normal(r); /* stride gaps too */
    for (size_t c = 0; c < sh->c; c++) {
        size_t kind = bnorm_rng_below(r, 8);
        double spread = kind == 0 ? 0.0 : 0.01 + 3.0 * bnorm_rng_uniform(r);
        double offset = kind == 1 ? 1e4 * spread : kind == 2 ? 1e3 * spread
                                                             : bnorm_rng_normal(r);
        for (size_t n = 0; n < sh->n; n++)
            for (size_t s = 0; s < sh->spatial; s++) {
                size_t o = bnorm_ref_offset(sh, g->inner, g->batch, n, c, s);
                if (kind == 3) /* 1e3 spreads out first, then three levels */
                    x[o] = (float)(offset + spread * (n + s == 0 ? 1e3
                                                      : bnorm_rng_below(r, 3) - 1.0));
                else
                    x[o] = (float)(offset + spread * (2.0 * bnorm_rng_uniform(r) - 1.0));
                if (specials && bnorm_rng_below(r, 64) == 0)
                    x[o] = bnorm_rng_below(r, 2) ? NAN : -0.0f;
            }
    }
}

typedef struct tensors {
    bnorm_fence f[8];
    int used;
} tensors;

static float *tensor(tensors *ts, size_t count, size_t misalign)
{
    return bnorm_fence_alloc(&ts->f[ts->used++], count, misalign);
}

/* A fenced per-channel array, ending at the guard page, filled with the sentinel
 * (outputs keep it; inputs are overwritten). */
static float *channel_array(tensors *ts, size_t c)
{
    float *p = tensor(ts, c, BNORM_FENCE_AT_GUARD);
    if (p)
        fill(p, c, SENTINEL);
    return p;
}

static bool tensors_intact(const tensors *ts)
{
    for (int i = 0; i < ts->used; i++)
        if (ts->f[i].map && !bnorm_fence_intact(&ts->f[i]))
            return false;
    return true;
}

static void tensors_free(tensors *ts)
{
    for (int i = 0; i < ts->used; i++)
        bnorm_fence_free(&ts->f[i]);
}

static void run_forward(const bnorm_conf_op *op, const bnorm_kernels *k,
                        const bnorm_conf_case *cs, bnorm_conf_result *res)
{
    ctx t = {op, k, cs, res, 0.0, false};
    const bnorm_shape *sh = &cs->shape;
    size_t c = sh->c, m = sh->n * sh->spatial, count = sh->n * c * sh->spatial;
    bnorm_rng r;
    bnorm_rng_init(&r, cs->seed ^ 0x7a1);
    res->cases++;
    const bnorm_strides *xs = cs->strided ? &cs->xs : NULL;
    const bnorm_strides *ys = cs->in_place ? xs : cs->strided ? &cs->ys : NULL;
    bnorm_geom gx, gy;
    bnorm_resolve_geom(sh, xs, &gx);
    bnorm_resolve_geom(sh, ys, &gy);

    tensors ts = {0};
    float *x = tensor(&ts, gx.extent, cs->misalign);
    float *y = cs->in_place ? x : tensor(&ts, gy.extent, cs->misalign);
    int omit = (int)(cs->seed % 4);
    float *gamma = omit & 1 ? NULL : channel_array(&ts, c);
    float *beta = omit & 2 ? NULL : channel_array(&ts, c);
    float *smean = channel_array(&ts, c);
    float *sinv = channel_array(&ts, c);
    float *rmean = channel_array(&ts, c);
    float *rvar = channel_array(&ts, c);
    float *x_copy = malloc(gx.extent * sizeof(float));
    float *y_before = malloc(gy.extent * sizeof(float));
    double *ref = malloc(count * sizeof(double));
    double *mean = malloc(c * sizeof(double)), *var = malloc(c * sizeof(double));
    float *rm0 = malloc(c * sizeof(float)), *rv0 = malloc(c * sizeof(float));
    if (!x || !y || (!gamma && !(omit & 1)) || (!beta && !(omit & 2)) || !smean || !sinv ||
        !rmean || !rvar || !x_copy || !y_before || !ref || !mean || !var || !rm0 || !rv0) {
        fail(&t, "harness: out of memory");
        goto out;
    }
    fill_training_x(sh, x, &gx, cs->specials, &r);
    for (size_t i = 0; i < c; i++) {
        if (gamma)
            gamma[i] = (float)bnorm_rng_normal(&r);
        if (beta)
            beta[i] = (float)bnorm_rng_normal(&r);
        rmean[i] = rm0[i] = (float)bnorm_rng_normal(&r);
        rvar[i] = rv0[i] = (float)(1.0 + bnorm_rng_uniform(&r));
    }
    memcpy(x_copy, x, gx.extent * sizeof(float));
    if (!cs->in_place)
        fill(y, gy.extent, SENTINEL);
    memcpy(y_before, y, gy.extent * sizeof(float));
    float eps = 1e-5f;
    bnorm_running_stats running = {rmean, rvar, (float)bnorm_rng_uniform(&r),
                                   (bnorm_momentum_convention)(cs->seed >> 8 & 1)};

    bnorm_status st = bnorm_training_forward_with(k, sh, x, xs, y, ys, gamma, beta, eps,
                                                  smean, sinv, &running);
    if (m < 2) {
        if (st != BNORM_ERR_BAD_SHAPE)
            fail(&t, "m < 2 not refused with BNORM_ERR_BAD_SHAPE");
        else if (memcmp(y, y_before, gy.extent * sizeof(float)) != 0 ||
                 !all_bits(smean, c, SENTINEL) || !all_bits(sinv, c, SENTINEL) ||
                 memcmp(rmean, rm0, c * sizeof(float)) || memcmp(rvar, rv0, c * sizeof(float)))
            fail(&t, "refused call wrote an output");
        goto out;
    }
    if (st != BNORM_OK) {
        fail(&t, bnorm_status_name(st));
        goto out;
    }
    bnorm_ref_training_forward(sh, x_copy, gx.inner, gx.batch, gamma, beta, eps, ref, mean,
                               var);
    bool torch = running.convention == BNORM_MOMENTUM_PYTORCH;
    double w_new = torch ? running.momentum : 1.0 - running.momentum;
    for (size_t i = 0; i < c && !t.failed; i++) {
        double sd = sqrt(var[i]), invstd = 1.0 / sqrt(var[i] + eps);
        check(&t, "save_mean", i, smean[i], mean[i], fabs(mean[i]) + sd, BNORM_TOL_MEAN);
        check(&t, "save_invstd", i, sinv[i], invstd, invstd, BNORM_TOL_INVSTD);
        double uv = torch ? var[i] * (double)m / (double)(m - 1) : var[i];
        check(&t, "running_mean", i, rmean[i], (1 - w_new) * rm0[i] + w_new * mean[i],
              fabs(rm0[i]) + fabs(mean[i]) + sd, BNORM_TOL_RUNNING_MEAN);
        check(&t, "running_var", i, rvar[i], (1 - w_new) * rv0[i] + w_new * uv,
              fabs(rv0[i]) + uv, BNORM_TOL_RUNNING_VAR);
    }
    const double *rp = ref;
    for (size_t n = 0; n < sh->n; n++)
        for (size_t ch = 0; ch < c; ch++) {
            double a = fabs((gamma ? gamma[ch] : 1.0) / sqrt(var[ch] + eps));
            double bm = beta ? fabs(beta[ch]) : 0.0;
            for (size_t s = 0; s < sh->spatial && !t.failed; s++, rp++) {
                size_t ox = bnorm_ref_offset(sh, gx.inner, gx.batch, n, ch, s);
                size_t oy = bnorm_ref_offset(sh, gy.inner, gy.batch, n, ch, s);
                double mean_mag = fmax(fabs(mean[ch]), FLT_MIN); /* see BNORM_TOL_Y */
                double mag =
                    (fabs(x_copy[ox] - mean[ch]) + mean_mag + sqrt(var[ch])) * a + bm;
                note_worst(&t, check(&t, "y", oy, y[oy], *rp, mag, BNORM_TOL_Y));
                y[oy] = y_before[oy];
            }
        }
    if (!t.failed && memcmp(y, y_before, gy.extent * sizeof(float)) != 0)
        fail(&t, "wrote into a stride gap of y");
    if (!t.failed && !cs->in_place && memcmp(x, x_copy, gx.extent * sizeof(float)) != 0)
        fail(&t, "changed the input x");
    if (!t.failed && !tensors_intact(&ts))
        fail(&t, "wrote outside a buffer");
out:
    if (t.worst > res->worst_ulps)
        res->worst_ulps = t.worst;
    free(x_copy), free(y_before), free(ref), free(mean), free(var), free(rm0), free(rv0);
    tensors_free(&ts);
}

static void run_backward(const bnorm_conf_op *op, const bnorm_kernels *k,
                         const bnorm_conf_case *cs, bnorm_conf_result *res)
{
    ctx t = {op, k, cs, res, 0.0, false};
    const bnorm_shape *sh = &cs->shape;
    size_t c = sh->c, m = sh->n * sh->spatial, count = sh->n * c * sh->spatial;
    bnorm_rng r;
    bnorm_rng_init(&r, cs->seed ^ 0xbac);
    res->cases++;
    /* x and dy share the case's x strides; dx has the y strides, or is dy. */
    const bnorm_strides *xs = cs->strided ? &cs->xs : NULL;
    const bnorm_strides *dxs = cs->in_place ? xs : cs->strided ? &cs->ys : NULL;
    bnorm_geom gx, gdx;
    bnorm_resolve_geom(sh, xs, &gx);
    bnorm_resolve_geom(sh, dxs, &gdx);

    tensors ts = {0};
    float *x = tensor(&ts, gx.extent, cs->misalign);
    float *dy = tensor(&ts, gx.extent, cs->misalign);
    float *dx = cs->in_place ? dy : tensor(&ts, gdx.extent, cs->misalign);
    /* which outputs: rotate through every non-empty subset */
    int want = 1 + (int)(cs->seed % 7);
    bool with_gamma = cs->seed >> 4 & 1;
    float *gamma = with_gamma ? channel_array(&ts, c) : NULL;
    float *smean = channel_array(&ts, c);
    float *sinv = channel_array(&ts, c);
    float *dgamma = channel_array(&ts, c);
    float *dbeta = channel_array(&ts, c);
    float *x_copy = malloc(gx.extent * sizeof(float));
    float *dy_copy = malloc(gx.extent * sizeof(float));
    float *dx_before = malloc(gdx.extent * sizeof(float));
    double *rdx = malloc(count * sizeof(double));
    double *mean = malloc(c * sizeof(double)), *var = malloc(c * sizeof(double));
    double *rdg = malloc(c * sizeof(double)), *rdb = malloc(c * sizeof(double));
    if (!x || !dy || !dx || (with_gamma && !gamma) || !smean || !sinv || !dgamma || !dbeta ||
        !x_copy || !dy_copy || !dx_before || !rdx || !mean || !var || !rdg || !rdb) {
        fail(&t, "harness: out of memory");
        goto out;
    }
    fill_training_x(sh, x, &gx, false, &r);
    for (size_t i = 0; i < gx.extent; i++)
        dy[i] = (float)bnorm_rng_normal(&r);
    if (cs->specials) /* a NaN gradient must stay in its channel */
        dy[bnorm_rng_below(&r, gx.extent)] = NAN;
    if (m >= 2) {
        bnorm_ref_batch_stats(sh, x, gx.inner, gx.batch, mean, var);
        for (size_t i = 0; i < c; i++) {
            smean[i] = (float)mean[i];
            sinv[i] = (float)(1.0 / sqrt(var[i] + 1e-5));
        }
    } else {
        for (size_t i = 0; i < c; i++)
            smean[i] = 0.0f, sinv[i] = 1.0f;
    }
    for (size_t i = 0; gamma && i < c; i++)
        gamma[i] = (float)bnorm_rng_normal(&r);
    memcpy(x_copy, x, gx.extent * sizeof(float));
    memcpy(dy_copy, dy, gx.extent * sizeof(float));
    if (!cs->in_place)
        fill(dx, gdx.extent, SENTINEL);
    memcpy(dx_before, dx, gdx.extent * sizeof(float));

    bnorm_status st = bnorm_training_backward_with(
        k, sh, x, xs, dy, xs, gamma, smean, sinv, want & 1 ? dx : NULL, dxs,
        want & 2 ? dgamma : NULL, want & 4 ? dbeta : NULL);
    if (m < 2) {
        if (st != BNORM_ERR_BAD_SHAPE)
            fail(&t, "m < 2 not refused with BNORM_ERR_BAD_SHAPE");
        else if (memcmp(dx, dx_before, gdx.extent * sizeof(float)) != 0 ||
                 !all_bits(dgamma, c, SENTINEL) || !all_bits(dbeta, c, SENTINEL))
            fail(&t, "refused call wrote an output");
        goto out;
    }
    if (st != BNORM_OK) {
        fail(&t, bnorm_status_name(st));
        goto out;
    }
    bnorm_ref_training_backward(sh, x_copy, gx.inner, gx.batch, dy_copy, gx.inner, gx.batch,
                                gamma, smean, sinv, rdx, rdg, rdb);
    /* per channel: sum abs(dy * xhat), sum abs(dy), which stand in dx's magnitude for
     * dgamma and dbeta (their own rounding reaches dx through b and k) */
    double *sxabs_c = malloc(2 * c * sizeof(double)), *sabs_c = sxabs_c + c;
    if (!sxabs_c) {
        fail(&t, "harness: out of memory");
        goto out;
    }
    for (size_t i = 0; i < c && !t.failed; i++) {
        double sabs = 0.0, sxabs = 0.0;
        for (size_t n = 0; n < sh->n; n++)
            for (size_t s = 0; s < sh->spatial; s++) {
                size_t o = bnorm_ref_offset(sh, gx.inner, gx.batch, n, i, s);
                sabs += fabs(dy_copy[o]);
                sxabs += fabs(dy_copy[o] * ((double)x_copy[o] - smean[i]) * sinv[i]);
            }
        sxabs_c[i] = sxabs;
        sabs_c[i] = sabs;
        if (want & 2)
            check(&t, "dgamma", i, dgamma[i], rdg[i], sxabs, BNORM_TOL_DGAMMA);
        else if (!all_bits(&dgamma[i], 1, SENTINEL))
            fail(&t, "wrote dgamma, which was not requested");
        if (want & 4)
            check(&t, "dbeta", i, dbeta[i], rdb[i], sabs, BNORM_TOL_DBETA);
        else if (!all_bits(&dbeta[i], 1, SENTINEL))
            fail(&t, "wrote dbeta, which was not requested");
    }
    const double *rp = rdx;
    for (size_t n = 0; n < sh->n && (want & 1); n++)
        for (size_t ch = 0; ch < c; ch++) {
            double gm = gamma ? gamma[ch] : 1.0, is = sinv[ch];
            double a = fabs(gm * is), b = fabs(gm * is * is * sxabs_c[ch] / (double)m);
            double kk = fabs(gm * is * sabs_c[ch] / (double)m);
            for (size_t s = 0; s < sh->spatial && !t.failed; s++, rp++) {
                size_t ox = bnorm_ref_offset(sh, gx.inner, gx.batch, n, ch, s);
                size_t od = bnorm_ref_offset(sh, gdx.inner, gdx.batch, n, ch, s);
                double mag = a * fabs(dy_copy[ox]) + b * fabs(x_copy[ox] - smean[ch]) + kk;
                note_worst(&t, check(&t, "dx", od, dx[od], *rp, mag, BNORM_TOL_DX));
                dx[od] = dx_before[od];
            }
        }
    free(sxabs_c);
    if (!t.failed && memcmp(dx, dx_before, gdx.extent * sizeof(float)) != 0)
        fail(&t, want & 1 ? "wrote into a stride gap of dx" : "wrote dx, not requested");
    if (!t.failed && memcmp(x, x_copy, gx.extent * sizeof(float)) != 0)
        fail(&t, "changed the input x");
    if (!t.failed && !cs->in_place && memcmp(dy, dy_copy, gx.extent * sizeof(float)) != 0)
        fail(&t, "changed the input dy");
    if (!t.failed && !tensors_intact(&ts))
        fail(&t, "wrote outside a buffer");
out:
    if (t.worst > res->worst_ulps)
        res->worst_ulps = t.worst;
    free(x_copy), free(dy_copy), free(dx_before), free(rdx), free(mean), free(var);
    free(rdg), free(rdb);
    tensors_free(&ts);
}

const bnorm_conf_op bnorm_conf_training_forward = {"training_forward", BNORM_TOL_Y, run_forward};
const bnorm_conf_op bnorm_conf_training_backward = {"training_backward", BNORM_TOL_DX,
                                                    run_backward};
