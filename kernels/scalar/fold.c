/* The folds, scalar: the formulas themselves (kernels/fold_formula.h): the inference
 * fold, also beside an apply and before one row's (fold_row.h), and training's
 * inv_std. */
#include "kernels.h"
#include "fold_formula.h"
#include "fold_row.h"

void bnorm_f32_fold__scalar(size_t c, const float *gamma, const float *beta,
                            const float *mean, const float *var, float eps, float *scale,
                            float *shift)
{
    bnorm_fold_formula(c, gamma, beta, mean, var, eps, scale, shift);
}

void bnorm_f32_fold_pipelined__scalar(size_t c, const float *gamma, const float *beta,
                                      const float *mean, const float *var, float eps,
                                      float *scale, float *shift)
{
    bnorm_fold_formula(c, gamma, beta, mean, var, eps, scale, shift);
}

BNORM_DEFINE_FOLD_APPLY_ROW_COMPOSED(scalar)

void bnorm_f64_inv_std__scalar(size_t c, const double *var, float eps, double *inv)
{
    bnorm_inv_std_formula(c, var, eps, inv);
}
