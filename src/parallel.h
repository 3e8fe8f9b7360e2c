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

/* A range of channels [c0, c1) of a job. */
typedef void (*bnorm_range_fn)(const void *job, size_t c0, size_t c1);

/* range(job, r0, r1) over [c0, c1) cut every per channels, as ceil((c1 - c0) / per)
 * tasks through bnorm_parallel_run. With `lines` (not NULL; per >= 16) each cut moves
 * down, by less than 16 channels, to the channel c at which lines + c starts a
 * 64-byte line, and the channels before the first such line go to the last task
 * (with a second call): ranges that write rows of lines whose stride is a whole
 * number of lines then write no line in two tasks, not even where one row ends and
 * the next starts. A line written by two cores moves between them at every write: an
 * NHWC 1x2048x7x7 training forward in eight column ranges, two threads, rows 16
 * bytes past a line, took 24 us, 19 with the cuts on lines. */
void bnorm_parallel_ranges(bnorm_range_fn range, const void *job, size_t c0, size_t c1,
                           size_t per, const float *lines);

#endif
