/* Helpers shared by the AVX2 kernels: tail masks and the prefetch distance. */
#ifndef BNORM_AVX2_UTIL_H
#define BNORM_AVX2_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "x86_compat.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Reductions over planes: prefetcht0 one line per 16 floats, 2 KiB ahead (integer
 * arithmetic: the address may lie past the span; a prefetch never faults). */
#define PREFETCH(p) _mm_prefetch((const char *)((uintptr_t)(p) + 2048), _MM_HINT_T0)

/* First n lanes set: unaligned loads from the middle of these tables. */
static const int32_t bnorm_mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                         0,  0,  0,  0,  0,  0,  0,  0};
static const int64_t bnorm_mask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

/* 8 float lanes, n <= 8 */
ALWAYS_INLINE __m256i tail_mask(size_t n)
{
    return _mm256_loadu_si256((const __m256i *)(bnorm_mask32 + 8 - n));
}

/* 4 float lanes, n <= 4 */
ALWAYS_INLINE __m128i mask_ps(size_t n)
{
    return _mm_loadu_si128((const __m128i *)(bnorm_mask32 + 8 - n));
}

/* 4 double lanes, n <= 4 */
ALWAYS_INLINE __m256i mask_pd(size_t n)
{
    return _mm256_loadu_si256((const __m256i *)(bnorm_mask64 + 4 - n));
}

#endif
