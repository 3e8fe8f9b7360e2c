/* CPU feature detection and the choice of kernel table (internal). */
#ifndef BNORM_DISPATCH_H
#define BNORM_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

/* Detects the CPU's features (BNORM_CPU_* bits) now; pure, no caching. */
uint32_t bnorm_detect_cpu_features(void);

/* Size in bytes of the last-level data cache (one instance: what the cores that share
 * it see), or 0 if it cannot be found. */
size_t bnorm_detect_llc_bytes(void);

/* Size in bytes of the (per-core) level-2 cache, or 0 if it cannot be found. */
size_t bnorm_detect_l2_bytes(void);

/* The size of the cache one CPUID deterministic-cache-parameters subleaf (leaf 4 or
 * 0x8000001D: eax, ebx, ecx) describes: ways x partitions x line size x sets; 0 for
 * an instruction cache, the end of the list, or a product that overflows. */
size_t bnorm_cache_leaf_bytes(uint32_t eax, uint32_t ebx, uint32_t ecx);

/* The table of isa compiled into this library, or NULL; independent of the CPU. */
const bnorm_kernels *bnorm_kernels_for(bnorm_isa isa);

/* Whether a CPU with these features can run isa's kernels. */
int bnorm_isa_runnable(bnorm_isa isa, uint32_t features);

/* The active table (initialized once, thread-safely, on first use). */
const bnorm_kernels *bnorm_active_kernels(void);

/* bnorm_stream_threshold is never below this (outputs this small are not worth
 * streaming even on a CPU with a small LLC), so a caller can skip the call for them. */
#define BNORM_STREAM_MIN_BYTES ((size_t)1 << 20)

/* Outputs of at least this many bytes are written with non-temporal stores. */
size_t bnorm_stream_threshold(void);

/* Data of at most this many bytes is still in cache for a second pass. */
size_t bnorm_cached_pass_bytes(void);

#endif
