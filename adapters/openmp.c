/* bnorm_parallel_for_fn over OpenMP: one task per loop iteration, statically
 * scheduled. bnorm cuts work into tasks of equal size, so static shares are balanced,
 * and a thread gets the same share of a tensor on every call: when the tensor fits
 * in the cores' caches, each thread finds its part where it left it (dynamic
 * scheduling moved the parts between cores: 1x2048x7x7 apply ran 0.8x one thread). */
#include <omp.h>

#include "bnorm_openmp.h"

void bnorm_openmp_parallel_for(void *pool, bnorm_task_fn task, void *context,
                               size_t range)
{
    int threads = pool ? *(const int *)pool : 0;
    if (threads < 1) /* OpenMP requires a positive num_threads */
        threads = omp_get_max_threads();
    long n = (long)range;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long i = 0; i < n; i++)
        task(context, (size_t)i);
}
