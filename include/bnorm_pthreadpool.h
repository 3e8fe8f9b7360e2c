/* bnorm's parallel-for over pthreadpool (library bnorm-pthreadpool, optional at build
 * time). */
#ifndef BNORM_PTHREADPOOL_H
#define BNORM_PTHREADPOOL_H

#include "bnorm.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A bnorm_parallel_for_fn over pthreadpool_parallelize_1d; pool is the caller's
 * pthreadpool_t (NULL runs the tasks on the calling thread, as pthreadpool does).
 * Use: bnorm_set_parallel_for(bnorm_pthreadpool_parallel_for, my_pthreadpool);
 */
BNORM_API void bnorm_pthreadpool_parallel_for(void *pool, bnorm_task_fn task,
                                              void *context, size_t range);

#ifdef __cplusplus
}
#endif

#endif
