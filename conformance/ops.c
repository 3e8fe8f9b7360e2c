/* The list of operations the harness checks, in the order bnorm-check prints them. */
#include "conformance.h"

extern const bnorm_conf_op bnorm_conf_fold, bnorm_conf_inference_apply,
    bnorm_conf_inference, bnorm_conf_frozen_backward, bnorm_conf_training_forward,
    bnorm_conf_training_backward, bnorm_conf_rows_sums;

const bnorm_conf_op *const bnorm_conf_ops[] = {
    &bnorm_conf_fold,
    &bnorm_conf_inference_apply,
    &bnorm_conf_inference,
    &bnorm_conf_training_forward,
    &bnorm_conf_training_backward,
    &bnorm_conf_frozen_backward,
    &bnorm_conf_rows_sums,
};
const size_t bnorm_conf_op_count = sizeof bnorm_conf_ops / sizeof bnorm_conf_ops[0];
