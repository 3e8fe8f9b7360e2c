/* bnorm's parallel-for over OpenMP (library bnorm-openmp, optional at build time). */
#ifndef BNORM_OPENMP_H
#define BNORM_OPENMP_H

#include "bnorm.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A bnorm_parallel_for_fn that runs the tasks in an OpenMP parallel loop. pool is
 * NULL (OpenMP's default number of threads) or points to an int thread count; a
 * count below 1 is the default too.
 * Use: bnorm_set_parallel_for(bnorm_openmp_parallel_for, NULL);
 */
BNORM_API void bnorm_openmp_parallel_for(void *pool, bnorm_task_fn task, void *context,
                                         size_t range);

#ifdef __cplusplus
}
#endif

#endif
