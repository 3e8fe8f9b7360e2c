#include "parallel.h"

typedef struct host_pool {
    bnorm_parallel_for_fn parallel_for;
    void *pool;
} host_pool;

/* Per thread: tasks run on pool threads see none, so parallel regions never nest. */
static _Thread_local host_pool thread_pool;

void bnorm_set_parallel_for(bnorm_parallel_for_fn parallel_for, void *pool)
{
    thread_pool.parallel_for = parallel_for;
    thread_pool.pool = parallel_for ? pool : NULL;
}

void bnorm_parallel_run(bnorm_task_fn task, void *context, size_t range)
{
    if (range > 1 && thread_pool.parallel_for) {
        thread_pool.parallel_for(thread_pool.pool, task, context, range);
        return;
    }
    for (size_t i = 0; i < range; i++)
        task(context, i);
}

bool bnorm_parallel_active(void)
{
    return thread_pool.parallel_for != NULL;
}
