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
    size_t c0, c1, per, tasks;
    size_t skew; /* (lines + c) starts a line when (skew + c) % 16 == 0 */
    size_t wrap; /* with lines: channels from c0 to the first line, run by the last task */
    bool lines;
} range_job;

/* Where range t starts (t > 0), or the range set ends (t == tasks). */
static size_t cut(const range_job *r, size_t t)
{
    size_t b = r->c0 + t * r->per;
    if (t == r->tasks || b >= r->c1)
        return r->c1;
    return r->lines ? b - (r->skew + b) % 16 : b;
}

static void range_task(void *context, size_t t)
{
    const range_job *r = context;
    size_t r0 = t ? cut(r, t) : r->c0 + r->wrap, r1 = cut(r, t + 1);
    if (r0 < r1)
        r->range(r->job, r0, r1);
    if (t + 1 == r->tasks && r->wrap)
        r->range(r->job, r->c0, r->c0 + r->wrap);
}

void bnorm_parallel_ranges(bnorm_range_fn range, const void *job, size_t c0, size_t c1,
                           size_t per, const float *lines)
{
    size_t skew = (uintptr_t)lines / sizeof(float) % 16;
    bool on_lines = lines && per >= 16;
    size_t tasks = (c1 - c0 + per - 1) / per;
    size_t wrap = on_lines ? (16 - (skew + c0) % 16) % 16 : 0;
    if (wrap >= c1 - c0)
        wrap = 0;
    range_job r = {range, job, c0, c1, per, tasks, skew, wrap, on_lines};
    bnorm_parallel_run(range_task, &r, tasks);
}
