/*
 * Every operation, on every kernel table this CPU can run (the SIMDe-translated
 * tables included), over the full shape matrix, against the double reference. The
 * harness lives in conformance/ and is the same one bnorm-check runs. And the
 * reference itself, by hand, where it must not round to float.
 */
#include <criterion/criterion.h>

#include "conformance.h"
#include "reference.h"
#include "test_util.h"

/* BNORM_TEST_SEED overrides; the seed is printed with every failure. */
#define DEFAULT_SEED 0x626e6f726d31ull

static void check_op(const char *name)
{
    const bnorm_conf_op *op = NULL;
    for (size_t i = 0; i < bnorm_conf_op_count; i++)
        if (strcmp(bnorm_conf_ops[i]->name, name) == 0)
            op = bnorm_conf_ops[i];
    cr_assert_not_null(op, "no operation %s", name);

    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    tables run = runnable_tables();
    for (size_t i = 0; i < run.n; i++) {
        bnorm_conf_result r = bnorm_conf_run(op, run.t[i].k, BNORM_MATRIX_FULL, seed);
        cr_expect(r.cases > 0, "%s [%s]: no case ran", name, run.t[i].label);
        cr_expect(r.failures == 0,
                  "%s [%s]: %zu of %zu cases failed (BNORM_TEST_SEED=0x%llx); first: %s",
                  name, run.t[i].label, r.failures, r.cases, (unsigned long long)seed,
                  r.first_failure);
        cr_log_info("%s [%s]: %zu cases, worst %.3f ulps", name, run.t[i].label, r.cases,
                    r.worst_ulps);
    }
}

Test(conformance, fold, .timeout = 600)
{
    check_op("fold");
}

Test(conformance, inference_apply, .timeout = 600)
{
    check_op("inference_apply");
}

Test(conformance, inference, .timeout = 600)
{
    check_op("inference");
}

Test(conformance, training_forward, .timeout = 600)
{
    check_op("training_forward");
}

Test(conformance, training_backward, .timeout = 600)
{
    check_op("training_backward");
}

Test(conformance, frozen_backward, .timeout = 600)
{
    check_op("frozen_backward");
}

/* Rows sums bit for bit against the scalar table (conformance/ops_rows.c). */
Test(conformance, rows_sums, .timeout = 600)
{
    check_op("rows_sums");
}

/*
 * The oracle itself, by hand. Every check above measures a kernel against the
 * reference, so a reference that rounds an intermediate to float (half a unit, inside
 * every tolerance) passes them all and loosens every bound by that much. These inputs
 * make a float intermediate differ from the double one.
 */

/* (1 + 2^-12)^2 - 1 = 2^-11 + 2^-24, exact in double; the product rounded to float
 * loses the 2^-24 (half an ulp of 1 + 2^-11, a tie rounded to even). */
Test(reference, apply_in_double)
{
    const bnorm_shape sh = {1, 1, 2, BNORM_NCHW};
    const float x[2] = {1.0f + 0x1p-12f, -(1.0f + 0x1p-12f)};
    const float scale = 1.0f + 0x1p-12f, shift = -1.0f;
    double out[2];
    bnorm_ref_apply(&sh, x, 2, 2, &scale, &shift, NULL, out);
    cr_assert_eq(out[0], 0x1p-11 + 0x1p-24, "x * scale + shift = %a", out[0]);
    cr_assert_eq(out[1], -2.0 - 0x1p-11 - 0x1p-24, "x * scale + shift = %a", out[1]);
}

/* The backward's sums: x - mean = 1 + 2^-23 - 2^-30 needs 31 bits, exact in double
 * and 1 + 2^-23 in float (an error inside BNORM_TOL_DGAMMA). */
Test(reference, backward_in_double)
{
    const bnorm_shape sh = {1, 1, 2, BNORM_NCHW};
    const float x[2] = {1.0f + 0x1p-23f, -1.0f};
    const float dy[2] = {1.0f, 0.0f};
    const float mean = 0x1p-30f, invstd = 1.0f;
    double dx[2], dgamma, dbeta;
    bnorm_ref_training_backward(&sh, x, 2, 2, dy, 2, 2, NULL, &mean, &invstd, dx, &dgamma,
                                &dbeta);
    const double xh0 = 1.0 + 0x1p-23 - 0x1p-30, xh1 = -1.0 - 0x1p-30;
    cr_assert_eq(dbeta, 1.0, "dbeta = %a", dbeta);
    cr_assert_eq(dgamma, xh0, "dgamma = %a, want %a", dgamma, xh0);
    /* dx = dy - dbeta / m - xhat * dgamma / m, m = 2 (exact halvings) */
    const double want[2] = {1.0 - 0.5 - xh0 * xh0 / 2.0, 0.0 - 0.5 - xh1 * xh0 / 2.0};
    for (int i = 0; i < 2; i++)
        cr_assert(fabs(dx[i] - want[i]) <= 0x1p-45, "dx[%d] = %a, want %a", i, dx[i],
                  want[i]); /* a float x - mean is ~2^-30 off */
}
