/*
 * bnorm-sim-threads: how a training call would split over W threads, measured on one.
 *
 * On a shared machine a wall-clock two-thread row measures the neighbours as much as
 * the library (with more runnable threads than cores, OpenMP's barriers wait for
 * preempted threads: milliseconds for a 100 us call). This runs the call through a
 * parallel-for that runs every task on the calling thread, one after another, and
 * times each; the tasks of each parallel region are then shared out as the OpenMP
 * adapter's static schedule does (libgomp: worker t gets a contiguous block of
 * range / W tasks, the first range % W workers one more). The simulated
 * time is the call's time with each region's tasks replaced by that makespan. It
 * leaves out the fork/join cost of each region and caches: a tensor that sits in one
 * core's L2 is not split between two, as with real threads.
 *
 *   bnorm-sim-threads N C SPATIAL nhwc|nchw forward|backward [calls [workers]]
 *
 * Prints the median serial and simulated times over the calls (default 200, 2
 * workers), the regions and tasks of one call, and the ratio.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bnorm.h"

#define MAX_WORKERS 64

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

typedef struct sim {
    int workers;
    double task_ns, makespan_ns;
    int regions, tasks;
} sim;

static void sim_parallel_for(void *pool, bnorm_task_fn task, void *context, size_t range)
{
    sim *s = pool;
    size_t w = (size_t)s->workers, q = range / w, r = range % w, i = 0;
    double span = 0.0;
    s->regions++;
    for (size_t t = 0; t < w; t++) {
        double busy = 0.0;
        for (size_t end = i + q + (t < r); i < end; i++) {
            double t0 = now_ns();
            task(context, i);
            busy += now_ns() - t0;
        }
        s->task_ns += busy;
        span = busy > span ? busy : span;
    }
    s->tasks += (int)range;
    s->makespan_ns += span;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bnorm-sim-threads N C SPATIAL nhwc|nchw forward|backward "
                        "[calls [workers]]\n");
        return 2;
    }
    bnorm_shape sh = {strtoul(argv[1], NULL, 10), strtoul(argv[2], NULL, 10),
                      strtoul(argv[3], NULL, 10),
                      strcmp(argv[4], "nchw") == 0 ? BNORM_NCHW : BNORM_NHWC};
    int backward = strcmp(argv[5], "backward") == 0;
    int calls = argc > 6 ? atoi(argv[6]) : 200;
    sim s = {argc > 7 ? atoi(argv[7]) : 2, 0, 0, 0, 0};
    if (calls < 1 || s.workers < 1 || s.workers > MAX_WORKERS) {
        fprintf(stderr, "bnorm-sim-threads: calls >= 1, 1 <= workers <= %d\n", MAX_WORKERS);
        return 2;
    }
    size_t n = sh.n * sh.c * sh.spatial, c = sh.c;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    float *dy = malloc(n * sizeof(float)), *ch = malloc(5 * c * sizeof(float));
    double *serial = malloc((size_t)calls * sizeof(double));
    double *simulated = malloc((size_t)calls * sizeof(double));
    if (!x || !y || !dy || !ch || !serial || !simulated) {
        fprintf(stderr, "bnorm-sim-threads: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(i % 97) * 0.1f;
        dy[i] = (float)(i % 13) - 6.0f;
    }
    float *gamma = ch, *beta = ch + c, *mean = ch + 2 * c, *invstd = ch + 3 * c;
    float *dparam = ch + 4 * c;
    for (size_t i = 0; i < c; i++)
        gamma[i] = 1.0f, beta[i] = 0.0f;
    /* The backward's saved statistics. */
    bnorm_status st = bnorm_training_forward(&sh, x, NULL, y, NULL, gamma, beta, 1e-5f, mean,
                                             invstd, NULL);
    for (int i = 0; i < calls && st == BNORM_OK; i++) {
        for (int pass = 0; pass < 2 && st == BNORM_OK; pass++) {
            bnorm_set_parallel_for(pass ? sim_parallel_for : NULL, &s);
            s.task_ns = s.makespan_ns = 0.0;
            s.regions = s.tasks = 0;
            double t0 = now_ns();
            if (backward)
                st = bnorm_training_backward(&sh, x, NULL, dy, NULL, gamma, mean, invstd, y,
                                             NULL, dparam, NULL);
            else
                st = bnorm_training_forward(&sh, x, NULL, y, NULL, gamma, beta, 1e-5f, mean,
                                            invstd, NULL);
            double t = now_ns() - t0;
            if (pass)
                simulated[i] = t - s.task_ns + s.makespan_ns;
            else
                serial[i] = t;
        }
    }
    bnorm_set_parallel_for(NULL, NULL);
    if (st != BNORM_OK) {
        fprintf(stderr, "bnorm-sim-threads: %s\n", bnorm_status_name(st));
        return 1;
    }
    qsort(serial, (size_t)calls, sizeof(double), cmp_double);
    qsort(simulated, (size_t)calls, sizeof(double), cmp_double);
    double ts = serial[calls / 2], tp = simulated[calls / 2];
    printf("%zux%zux%zu %s %s: serial %.1f us, simulated %d workers %.1f us (%d regions, "
           "%d tasks), ratio %.2f\n",
           sh.n, sh.c, sh.spatial, argv[4], argv[5], ts / 1e3, s.workers, tp / 1e3, s.regions,
           s.tasks, ts / tp);
    free(x), free(y), free(dy), free(ch), free(serial), free(simulated);
    return 0;
}
