/*
 * fold_apply_row composed of a table's fold_pipelined and apply_rows (kernels.h),
 * for the tables that have no kernel of their own for it (scalar, NEON): the row is
 * folded and applied in blocks of FOLD_ROW_BLOCK channels, whose coefficients stay
 * in this frame. The apply is elementwise, so blocks give its bits.
 */
#ifndef BNORM_FOLD_ROW_H
#define BNORM_FOLD_ROW_H

#include "kernels.h"

enum { FOLD_ROW_BLOCK = 64 };

static inline void bnorm_fold_apply_row_composed(bnorm_f32_fold_fn fold,
                                                 bnorm_f32_apply_fn apply, size_t c,
                                                 const float *x, float *y,
                                                 const float *gamma, const float *beta,
                                                 const float *mean, const float *var,
                                                 float eps, float lo, float hi,
                                                 unsigned flags)
{
    float scale[FOLD_ROW_BLOCK], shift[FOLD_ROW_BLOCK];
    for (size_t c0 = 0; c0 < c; c0 += FOLD_ROW_BLOCK) {
        size_t n = c - c0 < FOLD_ROW_BLOCK ? c - c0 : FOLD_ROW_BLOCK;
        fold(n, gamma ? gamma + c0 : NULL, beta ? beta + c0 : NULL, mean ? mean + c0 : NULL,
             var + c0, eps, scale, shift);
        apply(1, n, x + c0, n, y + c0, n, scale, shift, NULL, lo, hi, flags);
    }
}

/* Defines bnorm_f32_fold_apply_row__<suffix> as the composition of that table's own
 * fold_pipelined and apply_rows. */
#define BNORM_DEFINE_FOLD_APPLY_ROW_COMPOSED(suffix)                                 \
    void bnorm_f32_fold_apply_row__##suffix(size_t c, const float *x, float *y,        \
                                            const float *gamma, const float *beta,     \
                                            const float *mean, const float *var,       \
                                            float eps, float lo, float hi,             \
                                            unsigned flags)                            \
    {                                                                                  \
        bnorm_fold_apply_row_composed(bnorm_f32_fold_pipelined__##suffix,              \
                                      bnorm_f32_apply_rows__##suffix, c, x, y, gamma,  \
                                      beta, mean, var, eps, lo, hi, flags);            \
    }

#endif /* BNORM_FOLD_ROW_H */
