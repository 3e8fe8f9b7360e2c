/* The fold, neon: the formula itself (kernels/fold_formula.h), also beside an
 * apply. */
#include "kernels.h"
#include "fold_formula.h"

void bnorm_f32_fold__neon(size_t c, const float *gamma, const float *beta,
                          const float *mean, const float *var, float eps, float *scale,
                          float *shift)
{
    bnorm_fold_formula(c, gamma, beta, mean, var, eps, scale, shift);
}

void bnorm_f32_fold_pipelined__neon(size_t c, const float *gamma, const float *beta,
                                    const float *mean, const float *var, float eps,
                                    float *scale, float *shift)
{
    bnorm_fold_formula(c, gamma, beta, mean, var, eps, scale, shift);
}
