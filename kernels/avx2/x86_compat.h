/* x86 intrinsics: the real ones on x86 (built with -mavx2 -mfma), SIMDe's translation
 * elsewhere, so the same AVX2 source is built and tested on aarch64 (the mirror of
 * neon_compat.h). */
#ifndef BNORM_X86_COMPAT_H
#define BNORM_X86_COMPAT_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/*
 * The kernels' tails use vmaskmov so that nothing past the last element is read or
 * written. Intel guarantees that masked-out lanes never fault; AMD documents faults
 * on masked-out lanes as implementation dependent. A window that lies inside one
 * 4 KiB page cannot fault on any lane (the page holds a selected element, so it is
 * mapped, and writable for stores), so those use the instruction; a window that
 * crosses into the next page moves the selected lanes one at a time.
 */
static inline int bnorm_crosses_page(const void *p, size_t bytes)
{
    return ((uintptr_t)p & 4095) + bytes > 4096;
}

/* The instruction itself is always inlined; the lane-by-lane path across a page is a
 * separate, cold function. (Left to GCC, the whole wrapper was sometimes called out
 * of line from large kernels: an apply span with a masked tail then cost about 90 ns
 * more per call.) */
#define BNORM_SAFE_MASKLOAD(name, vec, ivec, elem, ielem, lanes, loadu)              \
    static __attribute__((noinline, cold)) vec bnorm_##name##_lanes(const elem *p,   \
                                                                  ivec mask)       \
    {                                                                               \
        ielem m[lanes];                                                             \
        elem v[lanes];                                                              \
        memcpy(m, &mask, sizeof m);                                                 \
        for (size_t i = 0; i < lanes; i++)                                          \
            v[i] = m[i] < 0 ? p[i] : (elem)0;                                       \
        return loadu(v);                                                            \
    }                                                                               \
    static inline __attribute__((always_inline)) vec bnorm_##name(const elem *p,     \
                                                                  ivec mask)       \
    {                                                                               \
        if (__builtin_expect(!bnorm_crosses_page(p, sizeof(vec)), 1))               \
            return _##name(p, mask);                                                \
        return bnorm_##name##_lanes(p, mask);                                       \
    }
#define BNORM_SAFE_MASKSTORE(name, vec, ivec, elem, ielem, lanes, storeu)            \
    static __attribute__((noinline, cold)) void bnorm_##name##_lanes(elem *p,        \
                                                                   ivec mask,      \
                                                                   vec value)      \
    {                                                                               \
        ielem m[lanes];                                                             \
        elem v[lanes];                                                              \
        memcpy(m, &mask, sizeof m);                                                 \
        storeu(v, value);                                                           \
        for (size_t i = 0; i < lanes; i++)                                          \
            if (m[i] < 0)                                                           \
                p[i] = v[i];                                                        \
    }                                                                               \
    static inline __attribute__((always_inline)) void bnorm_##name(elem *p, ivec mask, \
                                                                   vec value)      \
    {                                                                               \
        if (__builtin_expect(!bnorm_crosses_page(p, sizeof(vec)), 1))               \
            _##name(p, mask, value);                                                \
        else                                                                        \
            bnorm_##name##_lanes(p, mask, value);                                   \
    }
BNORM_SAFE_MASKLOAD(mm_maskload_ps, __m128, __m128i, float, int32_t, 4, _mm_loadu_ps)
BNORM_SAFE_MASKLOAD(mm256_maskload_ps, __m256, __m256i, float, int32_t, 8,
                    _mm256_loadu_ps)
BNORM_SAFE_MASKLOAD(mm_maskload_pd, __m128d, __m128i, double, int64_t, 2, _mm_loadu_pd)
BNORM_SAFE_MASKLOAD(mm256_maskload_pd, __m256d, __m256i, double, int64_t, 4,
                    _mm256_loadu_pd)
BNORM_SAFE_MASKSTORE(mm256_maskstore_ps, __m256, __m256i, float, int32_t, 8,
                     _mm256_storeu_ps)
BNORM_SAFE_MASKSTORE(mm256_maskstore_pd, __m256d, __m256i, double, int64_t, 4,
                     _mm256_storeu_pd)
#undef BNORM_SAFE_MASKLOAD
#undef BNORM_SAFE_MASKSTORE
/* The instructions themselves, for windows the caller knows lie in one page (it has
 * called bnorm_crosses_page): no cold path, so no call, in the caller. */
static inline __attribute__((always_inline)) __m256 bnorm_maskload_in_page(const float *p,
                                                                           __m256i mask)
{
    return _mm256_maskload_ps(p, mask);
}
static inline __attribute__((always_inline)) void bnorm_maskstore_in_page(float *p,
                                                                          __m256i mask,
                                                                          __m256 value)
{
    _mm256_maskstore_ps(p, mask, value);
}
#define _mm_maskload_ps(p, mask) bnorm_mm_maskload_ps((const float *)(p), mask)
#define _mm256_maskload_ps(p, mask) bnorm_mm256_maskload_ps((const float *)(p), mask)
#define _mm_maskload_pd(p, mask) bnorm_mm_maskload_pd((const double *)(p), mask)
#define _mm256_maskload_pd(p, mask) bnorm_mm256_maskload_pd((const double *)(p), mask)
#define _mm256_maskstore_ps(p, mask, v) bnorm_mm256_maskstore_ps((float *)(p), mask, v)
#define _mm256_maskstore_pd(p, mask, v) bnorm_mm256_maskstore_pd((double *)(p), mask, v)
#else
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>

/*
 * vmaskmov loads never touch memory outside the mask (no fault, no read), and the
 * kernels count on that for tails that end at the last element of a buffer. SIMDe
 * (0.7.4) emulates a masked load as a full load followed by an AND, which reads past
 * the end: on this path the masked loads read only the selected lanes. (SIMDe's
 * masked stores already write lane by lane.)
 */
#define BNORM_MASKLOAD(name, vec, ivec, elem, ielem, lanes, mask_bit)                \
    static inline vec bnorm_##name(const elem *p, ivec mask)                        \
    {                                                                               \
        ielem m[lanes];                                                             \
        elem v[lanes];                                                              \
        memcpy(m, &mask, sizeof m);                                                 \
        for (size_t i = 0; i < lanes; i++)                                          \
            v[i] = (m[i] & (mask_bit)) ? p[i] : (elem)0;                           \
        vec r;                                                                      \
        memcpy(&r, v, sizeof r);                                                    \
        return r;                                                                   \
    }
BNORM_MASKLOAD(mm_maskload_ps, simde__m128, simde__m128i, float, uint32_t, 4,
               UINT32_C(1) << 31)
BNORM_MASKLOAD(mm256_maskload_ps, simde__m256, simde__m256i, float, uint32_t, 8,
               UINT32_C(1) << 31)
BNORM_MASKLOAD(mm_maskload_pd, simde__m128d, simde__m128i, double, uint64_t, 2,
               UINT64_C(1) << 63)
BNORM_MASKLOAD(mm256_maskload_pd, simde__m256d, simde__m256i, double, uint64_t, 4,
               UINT64_C(1) << 63)
#undef BNORM_MASKLOAD
#undef _mm_maskload_ps
#undef _mm256_maskload_ps
#undef _mm_maskload_pd
#undef _mm256_maskload_pd
#define _mm_maskload_ps(p, mask) bnorm_mm_maskload_ps((const float *)(p), mask)
#define _mm256_maskload_ps(p, mask) bnorm_mm256_maskload_ps((const float *)(p), mask)
#define _mm_maskload_pd(p, mask) bnorm_mm_maskload_pd((const double *)(p), mask)
#define _mm256_maskload_pd(p, mask) bnorm_mm256_maskload_pd((const double *)(p), mask)
/* No page can fault here: the masked operations are these functions already. */
static inline int bnorm_crosses_page(const void *p, size_t bytes)
{
    (void)p;
    (void)bytes;
    return 0;
}
#define bnorm_maskload_in_page _mm256_maskload_ps
#define bnorm_maskstore_in_page _mm256_maskstore_ps
#endif

#endif
