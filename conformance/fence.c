#define _DEFAULT_SOURCE
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conformance.h"

#define CANARY 0xa5

float *bnorm_fence_alloc(bnorm_fence *f, size_t count, size_t misalign)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t bytes = count * sizeof(float);
    bool edge = misalign == BNORM_FENCE_AT_GUARD || misalign == BNORM_FENCE_AT_LEAD;
    size_t lead = edge ? 0 : 64 + misalign * sizeof(float);
    size_t body = (bytes + lead + page - 1) / page * page;
    f->map_bytes = page + body + page;
    f->map = mmap(NULL, f->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return NULL;
    }
    if (mprotect(f->map, page, PROT_NONE) != 0 ||
        mprotect(f->map + page + body, page, PROT_NONE) != 0) {
        munmap(f->map, f->map_bytes);
        f->map = NULL;
        return NULL;
    }
    unsigned char *first = f->map + page;
    memset(first, CANARY, body);
    unsigned char *start = misalign == BNORM_FENCE_AT_GUARD  ? first + body - bytes
                           : misalign == BNORM_FENCE_AT_LEAD ? first
                                                             : first + lead;
    f->data = (float *)(void *)start;
    f->count = count;
    return f->data;
}

static bool all_canary(const unsigned char *p, const unsigned char *end)
{
    for (; p < end; p++)
        if (*p != CANARY)
            return false;
    return true;
}

bool bnorm_fence_intact(const bnorm_fence *f)
{
    const unsigned char *start = (const unsigned char *)f->data;
    const unsigned char *stop = start + f->count * sizeof(float);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return all_canary(f->map + page, start) &&
           all_canary(stop, f->map + f->map_bytes - page);
}

void bnorm_fence_free(bnorm_fence *f)
{
    if (f->map)
        munmap(f->map, f->map_bytes);
    f->map = NULL;
}
