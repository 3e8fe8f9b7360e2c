/* bnorm_parallel_for_fn over pthreadpool: the task signatures are the same. */
#include <pthreadpool.h>

#include "bnorm_pthreadpool.h"

void bnorm_pthreadpool_parallel_for(void *pool, bnorm_task_fn task, void *context,
                                    size_t range)
{
    pthreadpool_parallelize_1d((pthreadpool_t)pool, task, context, range, 0);
}
