/*
 * The fold's formula (see bnorm_f32_fold_kernel), as plain C: the scalar and NEON
 * kernels are this, the AVX2 kernel uses it for its tail and for the channels its
 * fast path cannot vouch for. IEEE sqrt and division are correctly rounded at any
 * vector width, so however the compiler vectorizes it the bits are the formula's
 * (on x87, with its precision set to double: x87_double.h).
 */
#ifndef BNORM_FOLD_FORMULA_H
#define BNORM_FOLD_FORMULA_H

#include <math.h>
#include <stddef.h>

#include "x87_double.h"

#if defined(__clang__) /* its cost model declines double sqrt at the baseline ISA */
#define BNORM_FOLD_VECTORIZE _Pragma("clang loop vectorize(enable)")
#else
#define BNORM_FOLD_VECTORIZE
#endif

/* Inlined once per combination of NULL inputs, so that each loop has no branch and
 * vectorizes at the baseline ISA (the divider's throughput is the limit: SSE2 and
 * NEON halve the time per channel against scalar code). */
static inline __attribute__((always_inline)) void
bnorm_fold_formula_loop(size_t c, const float *restrict gamma, const float *restrict beta,
                        const float *restrict mean, const float *restrict var, float eps,
                        float *restrict scale, float *restrict shift)
{
    BNORM_FOLD_VECTORIZE
    for (size_t i = 0; i < c; i++) {
        double s = (gamma ? (double)gamma[i] : 1.0) / sqrt((double)var[i] + eps);
        double b = beta ? (double)beta[i] : 0.0;
        scale[i] = (float)s;
        shift[i] = (float)(mean ? b - (double)mean[i] * s : b); /* no 0 * inf */
    }
}

static inline void bnorm_fold_formula(size_t c, const float *gamma, const float *beta,
                                      const float *mean, const float *var, float eps,
                                      float *scale, float *shift)
{
    bnorm_x87_state x87 = bnorm_x87_double_begin();
    switch ((gamma ? 4 : 0) | (beta ? 2 : 0) | (mean ? 1 : 0)) {
    case 7: bnorm_fold_formula_loop(c, gamma, beta, mean, var, eps, scale, shift); break;
    case 6: bnorm_fold_formula_loop(c, gamma, beta, NULL, var, eps, scale, shift); break;
    case 5: bnorm_fold_formula_loop(c, gamma, NULL, mean, var, eps, scale, shift); break;
    case 4: bnorm_fold_formula_loop(c, gamma, NULL, NULL, var, eps, scale, shift); break;
    case 3: bnorm_fold_formula_loop(c, NULL, beta, mean, var, eps, scale, shift); break;
    case 2: bnorm_fold_formula_loop(c, NULL, beta, NULL, var, eps, scale, shift); break;
    case 1: bnorm_fold_formula_loop(c, NULL, NULL, mean, var, eps, scale, shift); break;
    default: bnorm_fold_formula_loop(c, NULL, NULL, NULL, var, eps, scale, shift); break;
    }
    bnorm_x87_double_end(x87);
}

/* Training's inverse standard deviations (bnorm_f64_inv_std_kernel), as plain C:
 * every table's kernel is this, and the compiler vectorizes it at the table's width
 * (AVX2's four lanes: on Zen 4, whose divider takes four at once, 0.9 ns a channel
 * against 1.9 at SSE2's two). */
static inline void bnorm_inv_std_formula(size_t c, const double *restrict var, float eps,
                                         double *restrict inv)
{
    bnorm_x87_state x87 = bnorm_x87_double_begin();
    BNORM_FOLD_VECTORIZE
    for (size_t i = 0; i < c; i++)
        inv[i] = 1.0 / sqrt(var[i] + eps);
    bnorm_x87_double_end(x87);
}

#endif /* BNORM_FOLD_FORMULA_H */
