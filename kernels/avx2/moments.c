/*
 * Moments about a shift, AVX2+FMA: s1 += sum d, s2 += sum d^2, in double.
 *
 * d = (double)x - (double)k, formed exactly in double (both are floats whose
 *   difference fits a double's mantissa unless their exponents are ~29 apart; then it
 *   is rounded once, in double), as in every ISA (kernels.h).
 *   d*d is not always exact (d can have more than 26 bits): planes add it with one
 *   rounding (FMA), rows with two, as every ISA's rows do.
 * planes: each 4 floats are widened straight from memory with vcvtps2pd ymm, m128, one
 *   uop on this core's FP ports, where the register form (x - k in float first) costs a
 *   second, shuffle-port uop. That is the bottleneck of this loop (about 25% faster in
 *   L2). 16 floats per iteration (and a prefetcht0 2 KiB ahead: a plane streamed from
 *   memory ran at 7.4 GB/s against 11.3 for a plain read loop, 10.7 with it; in L2 it
 *   is 10% faster too) into 4 independent (s1, s2) accumulator pairs, then 4 floats at
 *   a time into the first pair, then 1..3 floats through a masked load (vmaskmov does
 *   not fault outside the mask), or a plain one when the next plane follows in memory;
 *   those lanes of d are zeroed. The pairs are reduced in a fixed order, ((acc0 + acc1)
 *   + (acc2 + acc3)), then lanes (l0 + l1) + (l2 + l3) (lanes1; four planes at once
 *   with two hadds, lanes4: the same sums), and the plane's sum is added to s1[p],
 *   s2[p].
 *   The fused forward (moments_apply_planes) interleaves the apply's vectors into
 *   the moments loop, or, for short planes that follow each other (dense_fused), runs
 *   apply_planes_dense's walk (dense.h) after each plane's moments: no masked tail
 *   per plane, and the out-of-order core overlaps the two.
 * rows: every term is the same double in every ISA, so rows sums are identical
 *   across ISAs (kernels.h). Columns in blocks of 16 (8 ymm accumulators: s1 and s2
 *   of the block, loaded from memory, then updated row by row, in row order, for a
 *   tile of up to 8 rows, and stored back), then blocks of 4, then one masked block
 *   of 1..3 columns (masked loads and stores of x, k, s1 and s2). Every s1[i], s2[i]
 *   receives the rows in order, exactly as the contract's sequential definition.
 */
#include <stdbool.h>
#include <stdint.h>

#include "kernels.h"
#include "avx2_util.h"
#include "dense.h"

enum { ROW_TILE = 8 };

/* s1 += d, s2 += d*d for the 4 doubles d; d*d added with one rounding (FMA: planes)
 * or two (rows: every ISA's rows do, kernels.h). */
#define ACC(s1, s2, d, fused)                                                       \
    do {                                                                            \
        __m256d d_ = (d);                                                           \
        s1 = add_fma(s1, d_);                                                       \
        s2 = (fused) ? _mm256_fmadd_pd(d_, d_, s2) : add_fma(s2, _mm256_mul_pd(d_, d_)); \
    } while (0)

/* d = (double)x[0..4) - k: widened from memory, then subtracted exactly. */
ALWAYS_INLINE __m256d widen_sub(const float *x, __m256d k)
{
    return _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x)), k);
}

/* 8 floats of y = (x - m) * a + b (x - m rounded, then one fused rounding): exactly
 * what apply_planes computes with BNORM_KF_CENTER. */
ALWAYS_INLINE __m256 centered(const float *x, __m256 a, __m256 b, __m256 m)
{
    return APPLY_VALUE(_mm256_loadu_ps(x), a, b, m, true);
}

/* The moments of one plane xp; with `fused`, also the centered apply of the plane u
 * -> y (broadcasts va, vb, vm), two vectors per 16-float step of the moments loop so
 * that its loads and stores overlap the moments' arithmetic. The moments are the same
 * operations in the same order either way. `spill`: the floats after the plane may be
 * read (the next plane follows), so its last 1..3 floats need no masked load (the
 * lanes past the plane are zeroed in d all the same). */
ALWAYS_INLINE sums moments_plane(size_t len, const float *xp, double k, bool spill,
                                 bool fused, const float *u, float *y, __m256 va,
                                 __m256 vb, __m256 vm)
{
    __m256d vk = _mm256_set1_pd(k);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    __m256d b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        PREFETCH(xp + i);
        ACC(a0, b0, widen_sub(xp + i, vk), true);
        ACC(a1, b1, widen_sub(xp + i + 4, vk), true);
        if (fused)
            _mm256_storeu_ps(y + i, centered(u + i, va, vb, vm));
        ACC(a2, b2, widen_sub(xp + i + 8, vk), true);
        ACC(a3, b3, widen_sub(xp + i + 12, vk), true);
        if (fused)
            _mm256_storeu_ps(y + i + 8, centered(u + i + 8, va, vb, vm));
    }
    if (fused) { /* the apply's last 0..15 floats */
        size_t j = i;
        if (j + 8 <= len) {
            _mm256_storeu_ps(y + j, centered(u + j, va, vb, vm));
            j += 8;
        }
        if (j < len) {
            __m256i q = tail_mask(len - j);
            __m256 v = APPLY_VALUE(_mm256_maskload_ps(u + j, q), va, vb, vm, true);
            _mm256_maskstore_ps(y + j, q, v);
        }
    }
    for (; i + 4 <= len; i += 4)
        ACC(a0, b0, widen_sub(xp + i, vk), true);
    if (i < len) {
        __m128 xt =
            spill ? _mm_loadu_ps(xp + i) : _mm_maskload_ps(xp + i, mask_ps(len - i));
        __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(xt), vk);
        ACC(a0, b0, _mm256_and_pd(d, _mm256_castsi256_pd(mask_pd(len - i))), true);
    }
    return pair_sums(a0, a1, a2, a3, b0, b1, b2, b3);
}

/* The moments of count planes into s1, s2 (each plane's lanes summed by lanes1, four
 * planes at a time by lanes4: the same sums); with `fused`, the centered apply of the
 * planes xa -> ya as well, interleaved per plane or, with `dense` (xa and ya planes
 * follow each other and are short), as apply_planes_dense's walk. */
ALWAYS_INLINE void moments(size_t count, size_t len, const float *xm, size_t xm_stride,
                           const float *k, double *s1, double *s2, bool fused, bool dense,
                           const float *xa, size_t xa_stride, float *ya, size_t ya_stride,
                           const float *a, const float *b, const float *m)
{
    bool spill = xm_stride == len && len >= 4; /* then the next plane holds the 1..3 */
    bool inter = fused && !dense;              /* the apply interleaved, plane by plane */
    __m256 z = _mm256_setzero_ps();
    dense_run run;
    if (dense)
        dense_begin(&run, len, xa, NULL, ya, a, b, m, NULL, z, z, false, false, false,
                    true);
#define PLANE(p)                                                                    \
    moments_plane(len, xm + (p) * xm_stride, (double)k[p], spill && (p) + 1 < count,   \
                  inter, inter ? xa + (p) * xa_stride : NULL,                        \
                  inter ? ya + (p) * ya_stride : NULL,                               \
                  inter ? _mm256_broadcast_ss(a + (p)) : z,                          \
                  inter ? _mm256_broadcast_ss(b + (p)) : z,                          \
                  inter ? _mm256_broadcast_ss(m + (p)) : z)
#define APPLY(p)                                                                    \
    do {                                                                            \
        if (dense)                                                                  \
            dense_plane(&run, p, (p) + 1 == count, false, false, true);             \
    } while (0)
    FOR_EACH_PLANE(count, s1, s2);
#undef PLANE
#undef APPLY
    if (dense)
        dense_end(&run, false, false, true);
}

void bnorm_f32_moments_planes__avx2(size_t count, size_t len, const float *x,
                                    size_t x_stride, const float *k, double *s1,
                                    double *s2)
{
    moments(count, len, x, x_stride, k, s1, s2, false, false, NULL, 0, NULL, 0, NULL, NULL,
            NULL);
}

void bnorm_f32_moments_apply_planes__avx2(size_t count, size_t len, const float *xm,
                                          size_t xm_stride, const float *k, double *s1,
                                          double *s2, const float *xa, size_t xa_stride,
                                          float *ya, size_t ya_stride, const float *a,
                                          const float *b, const float *m)
{
    if (dense_fused(len) && xa_stride == len && ya_stride == len)
        moments(count, len, xm, xm_stride, k, s1, s2, true, true, xa, xa_stride, ya,
                ya_stride, a, b, m);
    else
        moments(count, len, xm, xm_stride, k, s1, s2, true, false, xa, xa_stride, ya,
                ya_stride, a, b, m);
}

/* Columns [0, 16) of nr rows. */
ALWAYS_INLINE void cols16(size_t nr, const float *x, size_t xs, const float *k,
                          double *s1, double *s2)
{
    __m256d k0 = _mm256_cvtps_pd(_mm_loadu_ps(k));
    __m256d k1 = _mm256_cvtps_pd(_mm_loadu_ps(k + 4));
    __m256d k2 = _mm256_cvtps_pd(_mm_loadu_ps(k + 8));
    __m256d k3 = _mm256_cvtps_pd(_mm_loadu_ps(k + 12));
    __m256d a0 = _mm256_loadu_pd(s1), a1 = _mm256_loadu_pd(s1 + 4);
    __m256d a2 = _mm256_loadu_pd(s1 + 8), a3 = _mm256_loadu_pd(s1 + 12);
    __m256d b0 = _mm256_loadu_pd(s2), b1 = _mm256_loadu_pd(s2 + 4);
    __m256d b2 = _mm256_loadu_pd(s2 + 8), b3 = _mm256_loadu_pd(s2 + 12);
    for (size_t r = 0; r < nr; r++) {
        const float *xr = x + r * xs;
        PREFETCH(xr);
        ACC(a0, b0, widen_sub(xr, k0), false);
        ACC(a1, b1, widen_sub(xr + 4, k1), false);
        ACC(a2, b2, widen_sub(xr + 8, k2), false);
        ACC(a3, b3, widen_sub(xr + 12, k3), false);
    }
    _mm256_storeu_pd(s1, a0);
    _mm256_storeu_pd(s1 + 4, a1);
    _mm256_storeu_pd(s1 + 8, a2);
    _mm256_storeu_pd(s1 + 12, a3);
    _mm256_storeu_pd(s2, b0);
    _mm256_storeu_pd(s2 + 4, b1);
    _mm256_storeu_pd(s2 + 8, b2);
    _mm256_storeu_pd(s2 + 12, b3);
}

/* Columns [0, n) of nr rows, n <= 4; masked when n < 4. */
ALWAYS_INLINE void cols4(size_t nr, const float *x, size_t xs, const float *k,
                         double *s1, double *s2, size_t n, bool masked)
{
    __m128i q = masked ? mask_ps(n) : _mm_setzero_si128();
    __m256i qd = masked ? mask_pd(n) : _mm256_setzero_si256();
#define LD(p) (masked ? _mm_maskload_ps(p, q) : _mm_loadu_ps(p))
#define LDD(p) (masked ? _mm256_maskload_pd(p, qd) : _mm256_loadu_pd(p))
    __m256d vk = _mm256_cvtps_pd(LD(k));
    __m256d a = LDD(s1), b = LDD(s2);
    for (size_t r = 0; r < nr; r++) /* masked lanes: 0 - 0 */
        ACC(a, b, _mm256_sub_pd(_mm256_cvtps_pd(LD(x + r * xs)), vk), false);
#undef LD
#undef LDD
    if (masked) {
        _mm256_maskstore_pd(s1, qd, a);
        _mm256_maskstore_pd(s2, qd, b);
    } else {
        _mm256_storeu_pd(s1, a);
        _mm256_storeu_pd(s2, b);
    }
}

void bnorm_f32_moments_rows__avx2(size_t count, size_t len, const float *x,
                                  size_t x_stride, const float *k, double *s1,
                                  double *s2)
{
    for (size_t r = 0; r < count; r += ROW_TILE) {
        const float *xt = x + r * x_stride;
        size_t nr = count - r < ROW_TILE ? count - r : ROW_TILE;
        size_t i = 0;
        for (; i + 16 <= len; i += 16)
            cols16(nr, xt + i, x_stride, k + i, s1 + i, s2 + i);
        for (; i + 4 <= len; i += 4)
            cols4(nr, xt + i, x_stride, k + i, s1 + i, s2 + i, 4, false);
        if (i < len)
            cols4(nr, xt + i, x_stride, k + i, s1 + i, s2 + i, len - i, true);
    }
}
