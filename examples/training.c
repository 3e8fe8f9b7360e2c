/*
 * A training step with bnorm, checked: forward with the batch's statistics (updating
 * the running statistics, PyTorch convention), a loss, backward, and an SGD update
 * of gamma and beta; repeated for a few steps on one batch.
 *
 * On the first step the gradients from bnorm_training_backward (dx, dgamma, dbeta,
 * float) are compared with central finite differences of the same loss computed
 * here in double. After the last step the running statistics are compared with what
 * the momentum rule gives in closed form, and the loss must have gone down.
 *
 *   loss L = 1/(2M) * sum (y - target)^2 over all M = N*C*H*W outputs,
 *   so dL/dy = (y - target) / M.
 *
 * Exit status: 0 if every check passed, 1 if one failed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bnorm.h>

#define N 4
#define C 3
#define HW 25 /* 5x5 */
#define M (N * C * HW)
#define EPS 1e-5f
#define MOMENTUM 0.1f
#define STEPS 20
#define LR 0.5f

/* NCHW index. */
#define AT(n, c, i) (((n) * C + (c)) * HW + (i))

static double next_uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) * 0x1p-53;
}

/* The loss for inputs x and parameters g, b, in double (the finite differences'
 * function). */
static double loss_double(const double *x, const double *g, const double *b,
                          const float *target)
{
    double loss = 0;
    for (int c = 0; c < C; c++) {
        double mean = 0, var = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++)
                mean += x[AT(n, c, i)];
        mean /= N * HW;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++)
                var += (x[AT(n, c, i)] - mean) * (x[AT(n, c, i)] - mean);
        var /= N * HW;
        double invstd = 1.0 / sqrt(var + (double)EPS);
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                double y = g[c] * (x[AT(n, c, i)] - mean) * invstd + b[c];
                double d = y - target[AT(n, c, i)];
                loss += d * d;
            }
    }
    return loss / (2.0 * M);
}

/* Central difference of the loss in one of the double values *v (x, g or b). */
static double central_difference(double *v, double h, const double *x, const double *g,
                                 const double *b, const float *target)
{
    double saved = *v;
    *v = saved + h;
    double up = loss_double(x, g, b, target);
    *v = saved - h;
    double down = loss_double(x, g, b, target);
    *v = saved;
    return (up - down) / (2.0 * h);
}

/* got against want, relative to the size of that gradient overall (scale): float
 * arithmetic in the library, truncation O(h^2) in the difference. */
static int close_enough(const char *what, int index, double got, double want, double scale)
{
    double err = fabs(got - want), tol = 1e-4 * (fabs(want) + scale);
    int ok = err <= tol;
    printf("  %-6s[%3d]  backward %+.8e  finite difference %+.8e  %s\n", what, index, got,
           want, ok ? "ok" : "MISMATCH");
    return ok;
}

/* Not fmax: GCC 12 for aarch64 crashes (internal compiler error) vectorizing an fmax
 * reduction at -O3. */
static double larger(double a, double b)
{
    return b > a ? b : a;
}

int main(void)
{
    static float x[M], y[M], target[M], dy[M], dx[M];
    float gamma[C], beta[C], dgamma[C], dbeta[C], save_mean[C], save_invstd[C];
    float running_mean[C] = {0}, running_var[C] = {1, 1, 1};
    uint64_t seed = 0x7261696e;

    /* Channels with different offsets and spreads; a target the BN output can only
     * partly fit. */
    for (int c = 0; c < C; c++) {
        double offset = 3.0 * c - 2.0, spread = 0.5 + c;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                x[AT(n, c, i)] = (float)(offset + spread * (2 * next_uniform(&seed) - 1));
                target[AT(n, c, i)] = (float)(2 * next_uniform(&seed) - 1 + 0.5 * c);
            }
        gamma[c] = 1.0f;
        beta[c] = 0.0f;
    }

    bnorm_shape shape = {.n = N, .c = C, .spatial = HW, .layout = BNORM_NCHW};
    bnorm_running_stats running = {running_mean, running_var, MOMENTUM,
                                   BNORM_MOMENTUM_PYTORCH};
    int failed = 0;
    double first_loss = 0, loss = 0;
    printf("bnorm %s, ISA %s: BN over %dx%dx%d (NCHW), MSE loss, SGD on gamma and beta\n",
           bnorm_version_string(), bnorm_isa_name(bnorm_active_isa()), N, C, HW);

    for (int step = 0; step < STEPS; step++) {
        bnorm_status st = bnorm_training_forward(&shape, x, NULL, y, NULL, gamma, beta, EPS,
                                                 save_mean, save_invstd, &running);
        if (st != BNORM_OK) {
            fprintf(stderr, "bnorm_training_forward: %s\n", bnorm_status_name(st));
            return 1;
        }
        loss = 0;
        for (int k = 0; k < M; k++) {
            double d = (double)y[k] - target[k];
            loss += d * d;
            dy[k] = (float)(d / M);
        }
        loss /= 2.0 * M;
        st = bnorm_training_backward(&shape, x, NULL, dy, NULL, gamma, save_mean,
                                     save_invstd, dx, NULL, dgamma, dbeta);
        if (st != BNORM_OK) {
            fprintf(stderr, "bnorm_training_backward: %s\n", bnorm_status_name(st));
            return 1;
        }
        if (step == 0) {
            first_loss = loss;
            /* The gradient check, on the parameters as they are before the update. */
            static double xd[M];
            double gd[C], bd[C], dx_scale = 0, dg_scale = 0, db_scale = 0;
            for (int k = 0; k < M; k++) {
                xd[k] = x[k];
                dx_scale = larger(dx_scale, fabs(dx[k]));
            }
            for (int c = 0; c < C; c++) {
                gd[c] = gamma[c];
                bd[c] = beta[c];
                dg_scale = larger(dg_scale, fabs(dgamma[c]));
                db_scale = larger(db_scale, fabs(dbeta[c]));
            }
            printf("gradient check, step 0 (loss %.6f):\n", loss);
            static const int picks[] = {0, 7, 31, 99, 142, 200, 257, 299};
            for (size_t p = 0; p < sizeof picks / sizeof picks[0]; p++) {
                int k = picks[p];
                double fd = central_difference(&xd[k], 1e-4, xd, gd, bd, target);
                failed |= !close_enough("dx", k, dx[k], fd, dx_scale);
            }
            for (int c = 0; c < C; c++) {
                double fd = central_difference(&gd[c], 1e-4, xd, gd, bd, target);
                failed |= !close_enough("dgamma", c, dgamma[c], fd, dg_scale);
            }
            for (int c = 0; c < C; c++) {
                double fd = central_difference(&bd[c], 1e-4, xd, gd, bd, target);
                failed |= !close_enough("dbeta", c, dbeta[c], fd, db_scale);
            }
        }
        for (int c = 0; c < C; c++) {
            gamma[c] -= LR * dgamma[c];
            beta[c] -= LR * dbeta[c];
        }
        if (step % 5 == 0 || step == STEPS - 1)
            printf("step %2d: loss %.6f\n", step, loss);
    }

    /* The same batch every step: running = (1 - (1 - momentum)^STEPS) * batch statistic
     * (+ (1 - momentum)^STEPS * the initial value), the variance unbiased. */
    double keep = pow(1.0 - MOMENTUM, STEPS);
    for (int c = 0; c < C; c++) {
        double mean = 0, var = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++)
                mean += x[AT(n, c, i)];
        mean /= N * HW;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++)
                var += (x[AT(n, c, i)] - mean) * (x[AT(n, c, i)] - mean);
        var /= N * HW - 1;
        double want_mean = (1 - keep) * mean, want_var = (1 - keep) * var + keep * 1.0;
        int ok = fabs(running_mean[c] - want_mean) <= 1e-5 * (fabs(mean) + sqrt(var)) &&
                 fabs(running_var[c] - want_var) <= 1e-5 * want_var;
        printf("channel %d: running mean %.6f (expected %.6f), running var %.6f "
               "(expected %.6f) %s\n",
               c, running_mean[c], want_mean, running_var[c], want_var, ok ? "ok" : "MISMATCH");
        failed |= !ok;
    }
    if (!(loss < first_loss)) {
        printf("the loss did not go down: %.6f -> %.6f\n", first_loss, loss);
        failed = 1;
    }
    printf("%s\n", failed ? "FAILED" : "all checks passed");
    return failed;
}
