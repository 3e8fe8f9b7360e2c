/*
 * Several threads call operations at the same moment, as their very first library
 * calls (so they race the dispatcher's initialization), while another switches the
 * active ISA; each thread uses its own parallel-for that spreads tasks over threads
 * it creates. A plain program, run under ThreadSanitizer by scripts/test (Criterion
 * cannot run under TSan): exits 0 when every result is right.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnorm.h"

#define THREADS 6
#define C 32
#define S 1024
/* NHWC rows of WIDE_C channels over WIDE_S pixels: with a pool, the split rows (range
 * tasks fold into the caller's coefficients, then one apply pass over the rows). */
#define WIDE_C 600
#define WIDE_S 9

static pthread_barrier_t start;

/* A parallel-for on two threads of its own: even and odd indices. */
typedef struct half {
    bnorm_task_fn task;
    void *context;
    size_t range, first;
} half;

static void *run_half(void *p)
{
    half *h = p;
    for (size_t i = h->first; i < h->range; i += 2)
        h->task(h->context, i);
    return NULL;
}

static void two_thread_parallel_for(void *pool, bnorm_task_fn task, void *context,
                                    size_t range)
{
    (void)pool;
    half h[2] = {{task, context, range, 0}, {task, context, range, 1}};
    pthread_t t;
    if (pthread_create(&t, NULL, run_half, &h[1]) != 0) {
        run_half(&h[1]);
        run_half(&h[0]);
        return;
    }
    run_half(&h[0]);
    pthread_join(t, NULL);
}

static void *worker(void *arg)
{
    int id = (int)(size_t)arg;
    float *x = malloc(2 * C * S * sizeof(float)), *y = x + C * S;
    float gamma[C], beta[C], mean[C], invstd[C], wmean[WIDE_C], winv[WIDE_C];
    if (!x)
        return (void *)1;
    for (int i = 0; i < C * S; i++)
        x[i] = (float)(i % 97) - 48.0f;
    for (int c = 0; c < C; c++)
        gamma[c] = 2.0f, beta[c] = 1.0f;
    if (id % 2)
        bnorm_set_parallel_for(two_thread_parallel_for, NULL);
    bnorm_shape sh = {1, C, S, id % 3 ? BNORM_NCHW : BNORM_NHWC};
    bnorm_shape wide = {1, WIDE_C, WIDE_S, BNORM_NHWC};
    pthread_barrier_wait(&start);
    if (id == 0) /* switch the ISA while the others run */
        bnorm_set_isa(BNORM_ISA_SCALAR);
    int bad = 0;
    for (int rep = 0; rep < 20; rep++) {
        bad |= bnorm_inference_apply(&sh, x, NULL, y, NULL, gamma, beta, NULL) != BNORM_OK;
        for (int i = 0; i < C * S; i++) {
            float want = x[i] * 2.0f + 1.0f; /* exact in float */
            bad |= y[i] != want;
        }
        bad |= bnorm_training_forward(&sh, x, NULL, y, NULL, NULL, NULL, 1e-5f, mean,
                                      invstd, NULL) != BNORM_OK;
        for (int c = 0; c < C; c++)
            bad |= !(mean[c] > -48.5f && mean[c] < 48.5f) || !(invstd[c] > 0.0f);
        bad |= bnorm_training_forward(&wide, x, NULL, y, NULL, NULL, NULL, 1e-5f, wmean,
                                      winv, NULL) != BNORM_OK;
        bad |= bnorm_training_backward(&wide, x, NULL, y, NULL, NULL, wmean, winv,
                                       y + WIDE_C * WIDE_S, NULL, NULL, NULL) != BNORM_OK;
        for (int c = 0; c < WIDE_C; c++)
            bad |= !(wmean[c] > -48.5f && wmean[c] < 48.5f) || !(winv[c] > 0.0f);
    }
    free(x);
    return (void *)(size_t)bad;
}

int main(void)
{
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (size_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
            return 2;
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad |= r != NULL;
    }
    pthread_barrier_destroy(&start);
    printf("%s: %d threads, active isa %s\n", bad ? "FAIL" : "ok", THREADS,
           bnorm_isa_name(bnorm_active_isa()));
    return bad;
}
