/*
 * Rows sums, bit for bit: training's rows statistics (NHWC, and NCHW with spatial 1)
 * are the same bits in every ISA (kernels.h), because every table's moments_rows
 * and dot_rows add the same double terms in the same order. This operation checks
 * that claim directly, against the scalar table, where bnorm-check runs: natively,
 * under qemu on aarch64 (NEON) and on 32-bit x86, whose scalar double arithmetic is
 * x87's (kernels/x87_double.h). Each case's C columns over its N x spatial rows (at
 * most 64), from s1 = s2 = 0.5: values over 2^-12..2^12 against shifts of 1e3 and
 * more, so x - k has up to ~45 bits and its square is rounded (a fused square would
 * differ), and a mean near the data for dot's x - m. Tolerance 0: any different bit
 * fails.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "dispatch.h"

enum { MAX_ROWS = 64 };

static bool same(const double *a, const double *b, size_t n, size_t *at)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(double)) != 0) {
            *at = i;
            return false;
        }
    return true;
}

static void run_rows(const bnorm_conf_op *op, const bnorm_kernels *k,
                     const bnorm_conf_case *cs, bnorm_conf_result *res)
{
    const bnorm_kernels *ref = bnorm_kernels_for(BNORM_ISA_SCALAR);
    size_t c = cs->shape.c, rows = cs->shape.n * cs->shape.spatial;
    rows = rows < MAX_ROWS ? rows : MAX_ROWS;
    res->cases++;
    float *x = malloc(rows * c * sizeof(float)), *dy = malloc(rows * c * sizeof(float));
    float *kk = malloc(c * sizeof(float)), *m = malloc(c * sizeof(float));
    double *s = malloc(8 * c * sizeof(double));
    if (!x || !dy || !kk || !m || !s) {
        bnorm_conf_fail(res, op, k, cs, "harness: out of memory");
        goto out;
    }
    bnorm_rng r;
    bnorm_rng_init(&r, cs->seed ^ 0x5e5);
    for (size_t i = 0; i < rows * c; i++) {
        x[i] = (float)ldexp(bnorm_rng_normal(&r), (int)bnorm_rng_below(&r, 24) - 12);
        dy[i] = (float)bnorm_rng_normal(&r);
    }
    for (size_t i = 0; i < c; i++) {
        kk[i] = (float)(1e3 * (1.0 + (double)bnorm_rng_below(&r, 1000)) *
                        (bnorm_rng_below(&r, 2) ? 1 : -1));
        m[i] = (float)(0.01 * bnorm_rng_normal(&r));
    }
    for (size_t i = 0; i < 8 * c; i++)
        s[i] = 0.5;
    double *a1 = s, *a2 = s + c, *b1 = s + 2 * c, *b2 = s + 3 * c;
    double *a3 = s + 4 * c, *a4 = s + 5 * c, *b3 = s + 6 * c, *b4 = s + 7 * c;
    k->moments_rows(rows, c, x, c, kk, a1, a2);
    ref->moments_rows(rows, c, x, c, kk, b1, b2);
    k->dot_rows(rows, c, x, c, dy, c, m, a3, a4);
    ref->dot_rows(rows, c, x, c, dy, c, m, b3, b4);
    const char *names[] = {"moments s1", "moments s2", "dot sum dy", "dot sum dy (x - m)"};
    double *got[] = {a1, a2, a3, a4}, *want[] = {b1, b2, b3, b4};
    for (int q = 0; q < 4; q++) {
        size_t at;
        if (!same(got[q], want[q], c, &at)) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s of column %zu over %zu rows: %a, scalar %a",
                     names[q], at, rows, got[q][at], want[q][at]);
            bnorm_conf_fail(res, op, k, cs, msg);
            break;
        }
    }
out:
    free(x), free(dy), free(kk), free(m), free(s);
}

const bnorm_conf_op bnorm_conf_rows_sums = {"rows_sums", 0.0, run_rows};
