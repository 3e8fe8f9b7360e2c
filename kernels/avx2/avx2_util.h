/* Helpers shared by the AVX2 kernels: tail masks, the prefetch distance, the store
 * alignment step, the apply expressions and the clamp, and the planes reductions'
 * lane sums. */
#ifndef BNORM_AVX2_UTIL_H
#define BNORM_AVX2_UTIL_H

#include <stdbool.h>
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

/* Floats from y up to its next 32-byte boundary (0..7): the masked head that aligns
 * the stores that follow. */
ALWAYS_INLINE size_t align_head(const float *y)
{
    return ((32 - ((uintptr_t)y & 31)) & 31) / sizeof(float);
}

/* v to p: streamed (p on 32 bytes) or not. */
ALWAYS_INLINE void store(float *p, __m256 v, bool stream)
{
    if (stream)
        _mm256_stream_ps(p, v);
    else
        _mm256_storeu_ps(p, v);
}

/* The first n (< 8) lanes of v to y (k: their mask): streamed, one non-temporal
 * 4-byte store each (movnti), so that a line the stream shares with a head or tail
 * gets no ordinary store; a masked one there made streamed outputs that do not start
 * on 32 bytes, or planes that are not a whole number of vectors, 2-20x slower than
 * plain stores (Zen 4: 64 MiB of rows of 64 floats 16 bytes past a line 17.4 ms,
 * planes of 49 floats 69.8 ms, against 5.2 and 4.6 ms unstreamed). */
ALWAYS_INLINE void store_part(float *y, __m256 v, __m256i k, size_t n, bool stream)
{
    if (!stream) {
        _mm256_maskstore_ps(y, k, v);
        return;
    }
    int lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, _mm256_castps_si256(v));
    for (size_t j = 0; j < n; j++)
        _mm_stream_si32((int *)(y + j), lanes[j]);
}

/* Rows (per-element a, b) at least this long start with a masked vector of
 * align_head(output) floats (apply.c). */
enum { ROW_HEAD_MIN = 256 };

/* The apply in its contract order (kernels.h): fma(x - m, a, b) with center (x - m
 * rounded first), fma(x, a, b) without. Every AVX2 apply and the forward's fused
 * walks (moments.c, dense.h) use this one, so their results are the same bits. A
 * macro, so that m (often a load, from an m that is NULL without center) is
 * evaluated only with center. */
#define APPLY_VALUE(x, a, b, m, center)                                             \
    _mm256_fmadd_ps((center) ? _mm256_sub_ps((x), (m)) : (x), (a), (b))

ALWAYS_INLINE __m256 act(__m256 v, __m256 lo, __m256 hi, bool clamp)
{
    if (clamp) {
        /* maxps/minps return their second operand when either is NaN: v. */
        v = _mm256_max_ps(lo, v);
        v = _mm256_min_ps(hi, v);
    }
    return v;
}

/* The two-input apply in its contract order (kernels.h): fma(a, dy, fma(b, x - m, k)).
 * apply2.c and the backward's fused walks (dot.c, dense.h) all use this one, so their
 * results are the same bits. */
ALWAYS_INLINE __m256 apply2_value(__m256 x, __m256 dy, __m256 a, __m256 b, __m256 m,
                                  __m256 k)
{
    return _mm256_fmadd_ps(a, dy, _mm256_fmadd_ps(b, _mm256_sub_ps(x, m), k));
}

/* acc + d, computed as fma(acc, 1, d): one rounding of the same exact sum, so the same
 * bits, except which NaN comes out where two meet (the accumulator's, as vaddpd with
 * it first). The reductions' accumulating adds go to the FMA pipes this way: Zen 4
 * adds on two FP pipes and multiplies and FMAs on two others, and the moments and dot
 * loops (a widening, a subtraction and two accumulations per 4 floats) were bound by
 * the adders. Kernels called directly, warm, best of 100-300, us, 1024 x 196 and
 * 256 x 3136 floats (GCC): moments of planes 22.1 -> 17.0 and 83 -> 61, of rows
 * 28.9 -> 25.1 and 116 -> 95; dot of planes 29.0 -> 24.0 and 110 -> 86 (dot of rows
 * unchanged). The empty asm hides the 1 from the optimizer, which would turn the FMA
 * back into an add (clang does); it stays outside the loops. (Through SIMDe, on other
 * architectures, for the cross-check: no asm.) Where adds and FMAs share their pipes
 * and latency (Intel's cores since Skylake, by their published tables; not measured
 * here) it should change nothing. (The subtraction x - k stays an add: moved too, the
 * loops ran as before.) */
ALWAYS_INLINE __m256d add_fma(__m256d acc, __m256d d)
{
    __m256d one = _mm256_set1_pd(1.0);
#if defined(__x86_64__) || defined(__i386__) /* elsewhere this is SIMDe */
    __asm__("" : "+x"(one));
#endif
    return _mm256_fmadd_pd(acc, one, d);
}

/* The sum of v's lanes in one fixed order, (v0 + v1) + (v2 + v3). */
ALWAYS_INLINE double lanes1(__m256d v)
{
    __m128d h = _mm_hadd_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

/* lanes1 of four vectors at once: {lanes1(v0), lanes1(v1), lanes1(v2), lanes1(v3)},
 * the same operations on the same values (the planes reductions sum four planes'
 * lanes with two hadds, two lane swaps and one add instead of four of each). */
ALWAYS_INLINE __m256d lanes4(__m256d v0, __m256d v1, __m256d v2, __m256d v3)
{
    __m256d h01 = _mm256_hadd_pd(v0, v1); /* v0 01, v1 01, v0 23, v1 23 */
    __m256d h23 = _mm256_hadd_pd(v2, v3);
    return _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20),
                         _mm256_permute2f128_pd(h01, h23, 0x31));
}

/* One plane's two sums (moments: s1, s2; dot products: sdy, sdyx), the accumulator
 * pairs reduced, the lanes not yet (lanes1/lanes4). */
typedef struct sums {
    __m256d s1, s2;
} sums;

/* The sums of four accumulator pairs, in one fixed order: (0 + 1) + (2 + 3). */
ALWAYS_INLINE sums pair_sums(__m256d a0, __m256d a1, __m256d a2, __m256d a3, __m256d b0,
                             __m256d b1, __m256d b2, __m256d b3)
{
    sums r = {_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)),
              _mm256_add_pd(_mm256_add_pd(b0, b1), _mm256_add_pd(b2, b3))};
    return r;
}

/* For every plane p < count: q = PLANE(p), then APPLY(p), then q's lanes added to
 * o1[p] and o2[p]; four planes at a time through lanes4, the rest one by one through
 * lanes1 (the same sums either way). PLANE and APPLY are the caller's macros. */
#define FOR_EACH_PLANE(count, o1, o2)                                               \
    do {                                                                            \
        size_t p_ = 0;                                                              \
        for (; p_ + 4 <= (count); p_ += 4) {                                        \
            sums q0_ = PLANE(p_);                                                   \
            APPLY(p_);                                                              \
            sums q1_ = PLANE(p_ + 1);                                               \
            APPLY(p_ + 1);                                                          \
            sums q2_ = PLANE(p_ + 2);                                               \
            APPLY(p_ + 2);                                                          \
            sums q3_ = PLANE(p_ + 3);                                               \
            APPLY(p_ + 3);                                                          \
            _mm256_storeu_pd((o1) + p_,                                             \
                             _mm256_add_pd(_mm256_loadu_pd((o1) + p_),              \
                                           lanes4(q0_.s1, q1_.s1, q2_.s1, q3_.s1))); \
            _mm256_storeu_pd((o2) + p_,                                             \
                             _mm256_add_pd(_mm256_loadu_pd((o2) + p_),              \
                                           lanes4(q0_.s2, q1_.s2, q2_.s2, q3_.s2))); \
        }                                                                           \
        for (; p_ < (count); p_++) {                                                \
            sums q_ = PLANE(p_);                                                    \
            APPLY(p_);                                                              \
            (o1)[p_] += lanes1(q_.s1);                                              \
            (o2)[p_] += lanes1(q_.s2);                                              \
        }                                                                           \
    } while (0)

#endif
