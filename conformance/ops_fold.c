/*
 * Conformance of the fold kernels (bnorm_f32_fold_kernel): each table's fold and
 * fold_pipelined, on the case's C channels, write the reference's bits
 * (bnorm_ref_fold; NaN for NaN) and nothing else; so does its inv_std (training's
 * fold, bnorm_ref_inv_std) on the case's variances in double. The AVX2 fold computes
 * some channels from an estimate that must prove it rounds to the formula's float, or
 * hand them to the formula; this op is exact (tolerance 0) and runs wherever bnorm-check
 * runs, so a table whose estimate is poorer (SIMDe's translation on aarch64) is
 * checked too.
 *
 * Channels, drawn per case: training-like statistics (var 0 or, in cases with
 * specials, NaN, infinite, subnormal or FLT_MAX); any bit pattern (cases with
 * specials); beta cancelling mean * scale; and shifts exactly halfway between two
 * floats, where an estimate of the scale that is not exact rounds the shift the
 * other way: var = k^2, gamma = 3k (scale exactly 3), mean odd in [2^23, 2^25 / 3)
 * (3 mean odd in [2^24, 2^25), where floats are 2 apart; ties where eps is 0 and
 * gamma and mean are given, at least a quarter of the cases). gamma, beta and mean
 * are each NULL in some cases; eps is 0 in half of them, else 1e-5 or FLT_MAX / 2
 * (var + eps then overflows float for var over FLT_MAX / 2).
 *
 * fold_apply_row on the same channels and a row of x (with specials where the case
 * has them), under the case's activation, in place in some cases: the bits of the
 * table's fold_pipelined then apply_rows, in a fenced output, the inputs unchanged.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "reference.h"

enum { GAMMA, BETA, MEAN, VAR, SCALE, SHIFT, BUFFERS };

static float any_bits(bnorm_rng *r)
{
    uint32_t u = (uint32_t)bnorm_rng_next(r);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float variance(bool specials, bnorm_rng *r)
{
    static const float v[] = {0.0f, NAN, INFINITY, FLT_TRUE_MIN, 1e-40f, FLT_MAX};
    if (bnorm_rng_below(r, 8) == 0)
        return v[specials ? bnorm_rng_below(r, COUNT(v)) : 0];
    return (float)ldexp(bnorm_rng_uniform(r), (int)bnorm_rng_below(r, 40) - 20);
}

/* Channel i of the inputs; which kinds the case allows depends on its specials. */
static void fill_channel(float *in[BUFFERS], size_t i, float eps, bool specials,
                         bnorm_rng *r)
{
    switch (bnorm_rng_below(r, specials ? 4 : 3)) {
    case 0: /* halfway shift */ {
        uint32_t k = 3 + 2 * (uint32_t)bnorm_rng_below(r, 2000);
        in[VAR][i] = (float)(k * k);
        in[GAMMA][i] = (float)(3 * k);
        in[MEAN][i] = (float)((1u << 23) + 1 + 2 * bnorm_rng_below(r, 1u << 20));
        in[BETA][i] = bnorm_rng_below(r, 2) ? 0.0f : 4.0f;
        break;
    }
    case 1: /* statistics */
    case 2: /* beta cancelling mean * scale */
        in[GAMMA][i] = (float)bnorm_rng_normal(r);
        in[MEAN][i] = (float)(100.0 * bnorm_rng_normal(r));
        in[VAR][i] = variance(specials, r);
        in[BETA][i] = (float)(10.0 * bnorm_rng_normal(r));
        if (bnorm_rng_below(r, 2))
            in[BETA][i] = (float)((double)in[MEAN][i] * in[GAMMA][i] /
                                  sqrt((double)in[VAR][i] + eps));
        break;
    default: /* any bits */
        in[GAMMA][i] = any_bits(r);
        in[BETA][i] = any_bits(r);
        in[MEAN][i] = any_bits(r);
        in[VAR][i] = fabsf(any_bits(r));
        break;
    }
}

/* inv_std on the case's variances in double, every other one nudged off the floats
 * (training's variances are doubles): the reference's bits (NaN for NaN) in a fenced
 * output, the input unchanged. */
static void check_inv_std(const bnorm_conf_op *op, const bnorm_kernels *k,
                          const bnorm_conf_case *cs, bnorm_conf_result *res,
                          const float *var_f, size_t c, float eps)
{
    bnorm_fence fv = {0}, fi = {0};
    /* doubles in fenced floats: the last one ends at the guard page */
    double *var = (double *)bnorm_fence_alloc(&fv, 2 * c, BNORM_FENCE_AT_GUARD);
    double *inv = (double *)bnorm_fence_alloc(&fi, 2 * c, BNORM_FENCE_AT_GUARD);
    double *want = malloc(2 * c * sizeof(double)), *copy = want ? want + c : NULL;
    if (!var || !inv || !want) {
        bnorm_conf_fail(res, op, k, cs, "harness: out of memory");
        goto out;
    }
    for (size_t i = 0; i < c; i++) {
        var[i] = i % 2 ? (double)var_f[i] * (1.0 + 0x1p-40) : (double)var_f[i];
        inv[i] = -777.0;
    }
    memcpy(copy, var, c * sizeof(double));
    bnorm_ref_inv_std(c, var, eps, want);
    k->inv_std(c, var, eps, inv);
    for (size_t i = 0; i < c; i++)
        if (isnan(want[i]) ? !isnan(inv[i]) : memcmp(&inv[i], &want[i], sizeof(double))) {
            char msg[160];
            snprintf(msg, sizeof msg, "inv_std: channel %zu (var %a eps %a): %a, want %a",
                     i, var[i], (double)eps, inv[i], want[i]);
            bnorm_conf_fail(res, op, k, cs, msg);
            goto out;
        }
    if (!bnorm_fence_intact(&fv) || !bnorm_fence_intact(&fi) ||
        memcmp(copy, var, c * sizeof(double)) != 0)
        bnorm_conf_fail(res, op, k, cs, "inv_std wrote outside inv");
out:
    bnorm_fence_free(&fv);
    bnorm_fence_free(&fi);
    free(want);
}

static void check_fold_apply_row(const bnorm_conf_op *op, const bnorm_kernels *k,
                                 const bnorm_conf_case *cs, bnorm_conf_result *res,
                                 const float *const in[BUFFERS], size_t omit, size_t c,
                                 float eps, bnorm_rng *r)
{
    static const float specials[] = {NAN, INFINITY, -INFINITY, -0.0f, 1e-40f, FLT_MAX};
    const float *gamma = omit & 1 ? NULL : in[GAMMA], *beta = omit & 2 ? NULL : in[BETA];
    const float *mean = omit & 4 ? NULL : in[MEAN];
    bool clamp = cs->act.kind != BNORM_ACT_NONE;
    float lo = cs->act.kind == BNORM_ACT_CLAMP ? cs->act.lo : 0.0f;
    float hi = cs->act.kind == BNORM_ACT_CLAMP ? cs->act.hi : INFINITY;
    unsigned flags = clamp ? BNORM_KF_CLAMP : 0;
    bool in_place = bnorm_rng_below(r, 2);
    bnorm_fence fx = {0}, fy = {0};
    float *x = bnorm_fence_alloc(&fx, c, BNORM_FENCE_AT_GUARD);
    float *y = in_place ? x : bnorm_fence_alloc(&fy, c, BNORM_FENCE_AT_GUARD);
    float *want = malloc(4 * c * sizeof(float)); /* then scale, shift, x's copy */
    if (!x || !y || !want) {
        bnorm_conf_fail(res, op, k, cs, "harness: out of memory");
        goto out;
    }
    float *scale = want + c, *shift = want + 2 * c, *x_copy = want + 3 * c;
    for (size_t i = 0; i < c; i++)
        x[i] = cs->specials && bnorm_rng_below(r, 8) == 0
                   ? specials[bnorm_rng_below(r, COUNT(specials))]
                   : (float)(100.0 * bnorm_rng_normal(r));
    memcpy(x_copy, x, c * sizeof(float));
    k->fold_pipelined(c, gamma, beta, mean, in[VAR], eps, scale, shift);
    k->apply_rows(1, c, x_copy, c, want, c, scale, shift, NULL, lo, hi, flags);
    k->fold_apply_row(c, x, y, gamma, beta, mean, in[VAR], eps, lo, hi, flags);
    for (size_t i = 0; i < c; i++)
        if (!bnorm_conf_same_bits(y[i], want[i])) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "fold_apply_row%s: channel %zu (x %a): %a, want %a (fold_pipelined "
                     "and apply_rows)",
                     in_place ? " in place" : "", i, (double)x_copy[i], (double)y[i],
                     (double)want[i]);
            bnorm_conf_fail(res, op, k, cs, msg);
            goto out;
        }
    if (!bnorm_fence_intact(&fx) || (!in_place && !bnorm_fence_intact(&fy)) ||
        (!in_place && memcmp(x, x_copy, c * sizeof(float)) != 0))
        bnorm_conf_fail(res, op, k, cs, "fold_apply_row wrote outside y");
out:
    bnorm_fence_free(&fx);
    bnorm_fence_free(&fy);
    free(want);
}

static void run_fold(const bnorm_conf_op *op, const bnorm_kernels *k,
                     const bnorm_conf_case *cs, bnorm_conf_result *res)
{
    static const float epss[] = {1e-5f, FLT_MAX / 2};
    size_t c = cs->shape.c;
    bnorm_rng r;
    bnorm_rng_init(&r, cs->seed ^ 0xf01d);
    res->cases++;

    bnorm_fence f[BUFFERS] = {{0}};
    float *buf[BUFFERS], *copy[VAR + 1] = {0};
    float *want = malloc(2 * c * sizeof(float)); /* the reference's scale, then shift */
    bool ok = want != NULL;
    for (int b = 0; b < BUFFERS; b++)
        ok &= (buf[b] = bnorm_fence_alloc(&f[b], c, BNORM_FENCE_AT_GUARD)) != NULL;
    for (int b = 0; b <= VAR; b++)
        ok &= (copy[b] = malloc(c * sizeof(float))) != NULL;
    if (!ok) {
        bnorm_conf_fail(res, op, k, cs, "harness: out of memory");
        goto out;
    }
    float eps = bnorm_rng_below(&r, 2) ? 0.0f : epss[bnorm_rng_below(&r, 2)];
    for (size_t i = 0; i < c; i++)
        fill_channel(buf, i, eps, cs->specials, &r);
    for (int b = 0; b <= VAR; b++)
        memcpy(copy[b], buf[b], c * sizeof(float));
    size_t omit = bnorm_rng_below(&r, 2) ? 0 : bnorm_rng_below(&r, 8);
    const float *gamma = omit & 1 ? NULL : buf[GAMMA];
    const float *beta = omit & 2 ? NULL : buf[BETA];
    const float *mean = omit & 4 ? NULL : buf[MEAN];

    bnorm_ref_fold(c, gamma, beta, mean, buf[VAR], eps, want, want + c);
    const bnorm_f32_fold_fn fns[] = {k->fold, k->fold_pipelined};
    static const char *const names[] = {"fold", "fold_pipelined"};
    for (size_t fi = 0; fi < COUNT(fns); fi++) {
        for (size_t i = 0; i < c; i++) /* no result of the case: -777 */
            buf[SCALE][i] = buf[SHIFT][i] = -777.0f;
        fns[fi](c, gamma, beta, mean, buf[VAR], eps, buf[SCALE], buf[SHIFT]);
        size_t bad = 0; /* the first channel whose outputs are not the reference's */
        while (bad < c && bnorm_conf_same_bits(buf[SCALE][bad], want[bad]) &&
               bnorm_conf_same_bits(buf[SHIFT][bad], want[c + bad]))
            bad++;
        if (bad < c) {
            char msg[320];
            snprintf(msg, sizeof msg,
                     "%s: channel %zu (gamma %a beta %a mean %a var %a eps %a): scale %a "
                     "shift %a, want %a %a",
                     names[fi], bad, gamma ? (double)gamma[bad] : 1.0,
                     beta ? (double)beta[bad] : 0.0, mean ? (double)mean[bad] : 0.0,
                     (double)buf[VAR][bad], (double)eps, (double)buf[SCALE][bad],
                     (double)buf[SHIFT][bad], (double)want[bad], (double)want[c + bad]);
            bnorm_conf_fail(res, op, k, cs, msg);
            goto out;
        }
        for (int b = 0; b < BUFFERS; b++)
            ok &= bnorm_fence_intact(&f[b]);
        for (int b = 0; b <= VAR; b++)
            ok &= memcmp(copy[b], buf[b], c * sizeof(float)) == 0;
        if (!ok) {
            char msg[64];
            snprintf(msg, sizeof msg, "%s wrote outside scale and shift", names[fi]);
            bnorm_conf_fail(res, op, k, cs, msg);
            goto out;
        }
    }

    check_fold_apply_row(op, k, cs, res, (const float *const *)buf, omit, c, eps, &r);
    check_inv_std(op, k, cs, res, buf[VAR], c, eps);

out:
    for (int b = 0; b < BUFFERS; b++)
        bnorm_fence_free(&f[b]);
    for (int b = 0; b <= VAR; b++)
        free(copy[b]);
    free(want);
}

const bnorm_conf_op bnorm_conf_fold = {"fold", 0.0, run_fold};
