/*
 * Every operation, on every kernel table this CPU can run (the SIMDe-translated
 * tables included), over the full shape matrix, against the double reference. The
 * harness lives in conformance/ and is the same one bnorm-check runs.
 */
#include <criterion/criterion.h>

#include "conformance.h"
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
