/* bnorm_parallel_for_fn over OpenMP: one task per loop iteration, dynamically
 * scheduled (tasks differ in size at the end of a tensor). */
#include <omp.h>

#include "bnorm_openmp.h"

void bnorm_openmp_parallel_for(void *pool, bnorm_task_fn task, void *context,
                               size_t range)
{
    int threads = pool ? *(const int *)pool : omp_get_max_threads();
    long n = (long)range;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (long i = 0; i < n; i++)
        task(context, (size_t)i);
}
