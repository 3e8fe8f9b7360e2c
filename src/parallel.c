#include <stdint.h>

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

typedef struct range_job {
    bnorm_range_fn range;
    const void *job;
    size_t c0, c1, per;
    size_t skew; /* (lines + c) starts a line when (skew + c) % 16 == 0 */
    bool lines;
} range_job;

/* Where range t starts. */
static size_t cut(const range_job *r, size_t t)
{
    if (t == 0)
        return r->c0;
    size_t b = r->c0 + t * r->per;
    if (b >= r->c1)
        return r->c1;
    return r->lines ? b - (r->skew + b) % 16 : b;
}

static void range_task(void *context, size_t t)
{
    const range_job *r = context;
    r->range(r->job, cut(r, t), cut(r, t + 1));
}

void bnorm_parallel_ranges(bnorm_range_fn range, const void *job, size_t c0, size_t c1,
                           size_t per, const float *lines)
{
    range_job r = {range, job, c0, c1, per, (uintptr_t)lines / sizeof(float) % 16,
                   lines && per >= 16};
    bnorm_parallel_run(range_task, &r, (c1 - c0 + per - 1) / per);
}
