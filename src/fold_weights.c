/* Folding an inference batch norm into the weights and bias of the layer before it.
 * Once per model load, not per batch: plain loops, no kernels. Channels are taken in
 * blocks whose scales (double) live on the stack, so the output-channel-last layout
 * reads each weight row once without allocating. */
#include <math.h>
#include <stdint.h>

#include "tensor.h"
#include "x87_double.h"

#define BLOCK 256

/* Channels [c0, c0 + nc): their scales into s, their biases into bias_out. */
static void fold_block(size_t c0, size_t nc, const float *bias_in, float *bias_out,
                       const float *gamma, const float *beta, const float *mean,
                       const float *var, float eps, double *s)
{
    for (size_t j = 0; j < nc; j++) {
        size_t o = c0 + j;
        s[j] = (gamma ? (double)gamma[o] : 1.0) / sqrt((double)var[o] + eps);
        /* without bias_in, beta - mean * s as bnorm_fold's shift, zeros' signs too */
        double t = bias_in ? ((double)bias_in[o] - (double)mean[o]) * s[j]
                           : -((double)mean[o] * s[j]);
        bias_out[o] = (float)((beta ? (double)beta[o] : 0.0) + t);
    }
}

bnorm_status bnorm_fold_into_weights(bnorm_weight_layout layout, size_t out_channels,
                                     size_t per_channel, float *weights,
                                     const float *bias_in, float *bias_out,
                                     const float *gamma, const float *beta,
                                     const float *mean, const float *var, float eps)
{
    if (!weights || !bias_out || !mean || !var)
        return BNORM_ERR_NULL_POINTER;
    if (layout != BNORM_WEIGHTS_OC_MAJOR && layout != BNORM_WEIGHTS_OC_LAST)
        return BNORM_ERR_BAD_ENUM;
    size_t oc = out_channels, count;
    if (oc == 0 || per_channel == 0)
        return BNORM_ERR_BAD_SHAPE;
    if (__builtin_mul_overflow(oc, per_channel, &count) ||
        count > PTRDIFF_MAX / sizeof(float))
        return BNORM_ERR_OVERFLOW;
    bnorm_status st = bnorm_check_variance(oc, var, eps);
    if (st != BNORM_OK)
        return st;
    const float *inputs[] = {gamma, beta, mean, var};
    if (bnorm_overlaps_any(weights, count, inputs, 4, oc) ||
        bnorm_overlaps_any(bias_out, oc, inputs, 4, oc) ||
        bnorm_overlaps(weights, count, bias_out, oc))
        return BNORM_ERR_ALIAS;
    /* bias_in may be bias_out exactly (each channel is read before it is written). */
    if (bias_in && (bnorm_overlaps(weights, count, bias_in, oc) ||
                    (bias_in != bias_out && bnorm_overlaps(bias_out, oc, bias_in, oc))))
        return BNORM_ERR_ALIAS;

    BNORM_LINE_ALIGNED double s[BLOCK];
    bnorm_x87_state x87 = bnorm_x87_double_begin(); /* bias_out: bnorm_fold's shift */
    for (size_t c0 = 0; c0 < oc; c0 += BLOCK) {
        size_t nc = oc - c0 < BLOCK ? oc - c0 : BLOCK;
        fold_block(c0, nc, bias_in, bias_out, gamma, beta, mean, var, eps, s);
        if (layout == BNORM_WEIGHTS_OC_MAJOR) {
            for (size_t j = 0; j < nc; j++) {
                float *w = weights + (c0 + j) * per_channel;
                for (size_t k = 0; k < per_channel; k++)
                    w[k] = (float)((double)w[k] * s[j]);
            }
        } else {
            for (size_t k = 0; k < per_channel; k++) {
                float *w = weights + k * oc + c0;
                for (size_t j = 0; j < nc; j++)
                    w[j] = (float)((double)w[j] * s[j]);
            }
        }
    }
    bnorm_x87_double_end(x87);
    return BNORM_OK;
}
