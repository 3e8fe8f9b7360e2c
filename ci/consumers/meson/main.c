/* A program built against bnorm with meson: BN + ReLU over a 1x2x3 NCHW tensor. */
#include <bnorm.h>
#include <stdio.h>

int main(void)
{
    float x[6] = {1, 2, 3, -1, -2, -3}, y[6];
    const float scale[2] = {2, 0.5f}, shift[2] = {-3, 1};
    const float want[6] = {0, 1, 3, 0.5f, 0, 0}; /* relu(x * scale + shift) */
    bnorm_shape shape = {.n = 1, .c = 2, .spatial = 3, .layout = BNORM_NCHW};
    bnorm_activation relu = {.kind = BNORM_ACT_RELU};
    bnorm_status st = bnorm_inference_apply(&shape, x, NULL, y, NULL, scale, shift, &relu);
    int bad = st != BNORM_OK;
    for (int i = 0; i < 6 && !bad; i++)
        bad = y[i] != want[i];
    printf("bnorm %s on %s: %s\n", bnorm_version_string(), bnorm_isa_name(bnorm_active_isa()),
           bad ? "WRONG" : "ok");
    return bad;
}
