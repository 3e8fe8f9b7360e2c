/* Running tasks through the host's parallel-for, if this thread set one (internal). */
#ifndef BNORM_PARALLEL_H
#define BNORM_PARALLEL_H

#include <stdbool.h>

#include "bnorm.h"

/* task(context, i) for every i in [0, range): through the calling thread's
 * parallel-for when it has one and range > 1, else in order on this thread. */
void bnorm_parallel_run(bnorm_task_fn task, void *context, size_t range);

/* Whether the calling thread has a parallel-for (work is worth cutting into tasks). */
bool bnorm_parallel_active(void);

#endif
