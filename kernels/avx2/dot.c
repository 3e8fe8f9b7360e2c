/*
 * Backward dot products, AVX2+FMA: sdy += sum dy, sdyx += sum dy * (x - m), in double.
 *
 * planes: dy and x are widened straight from memory (vcvtps2pd ymm, m128: one uop on
 *   this core's FP ports, where the register form costs a second, shuffle-port uop,
 *   the bottleneck here) and t = (double)x - (double)m is formed exactly in double
 *   (rounded once, in double, only if the exponents are ~29 apart). dy * t is exact
 *   in double, so the FMA only rounds the sum. 16 floats of each input per iteration
 *   (each with a prefetcht0 2 KiB ahead: +14% from memory, +9% in L2) into 4
 *   independent (sdy, sdyx) accumulator pairs, then 4 floats at a time into
 *   the first pair, then 1..3 floats through masked loads (vmaskmov does not fault
 *   outside the mask), or plain ones when the next plane follows in memory; dy and t
 *   are zeroed there, so those lanes add exactly 0 even when m is Inf or NaN. The
 *   pairs are reduced in a fixed order, ((acc0 + acc1) + (acc2 + acc3)), then lanes
 *   (l0 + l1) + (l2 + l3) (lanes1; four planes at once, lanes4: the same sums), and
 *   the plane's sums are added to sdy[p], sdyx[p].
 *   The fused backward (dot_apply2_planes) interleaves the two-input apply into the
 *   dot loop, or, for short planes that follow each other (dense_fused), runs the
 *   dense-planes walk (dense.h) after each plane's dot products.
 * rows: t = x - m rounded to float, then both widened, as in every ISA, so rows sums
 *   are identical across ISAs (kernels.h). Columns in blocks of 16 (8 ymm
 *   accumulators loaded from sdy, sdyx, updated row by row, in row order, for a tile
 *   of up to 8 rows, and stored back), then blocks of 4, then one masked block of
 *   1..3 columns (masked loads and stores of x, dy, m, sdy and sdyx). Every sdy[i],
 *   sdyx[i] receives the rows in order, exactly as the contract's sequential
 *   definition.
 */
#include <stdbool.h>
#include <stdint.h>

#include "kernels.h"
#include "avx2_util.h"
#include "dense.h"

enum { ROW_TILE = 8 };

/* sdy += dy, sdyx += dy * t, both widened to double. */
#define ACC(sdy, sdyx, dy4, t4)                                                     \
    do {                                                                            \
        __m256d dy_ = _mm256_cvtps_pd(dy4);                                         \
        sdy = add_fma(sdy, dy_);                                                    \
        sdyx = _mm256_fmadd_pd(dy_, _mm256_cvtps_pd(t4), sdyx);                     \
    } while (0)

/* One fused plane's apply2 parameters. */
typedef struct side {
    const float *x, *dy;
    float *dx;
    __m256 a, b, m, k;
} side;

/* The dot products of one plane (xp, dp); with `fused`, also the two-input apply of
 * the plane sd (two vectors per 16-float step of the dot loop, so that its loads and
 * stores overlap the dot's arithmetic, then its last 0..15 floats). The dot products
 * are the same operations in the same order either way. `spill`: the floats after the
 * plane may be read (the next plane follows in x and dy), so its last 1..3 floats need
 * no masked loads (dy and t are zeroed there all the same). */
ALWAYS_INLINE sums dot_plane(size_t len, const float *xp, const float *dp, double m,
                             bool spill, bool fused, const side *sd)
{
    __m256d vm = _mm256_set1_pd(m);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    __m256d b0 = a0, b1 = a0, b2 = a0, b3 = a0;
/* sdy += dy, sdyx += dy * t for the 4 floats at i (already in double). */
#define ACCD(sdy, sdyx, d4, t4)                                                     \
    do {                                                                            \
        __m256d d_ = (d4);                                                          \
        sdy = add_fma(sdy, d_);                                                     \
        sdyx = _mm256_fmadd_pd(d_, (t4), sdyx);                                     \
    } while (0)
#define D(i) _mm256_cvtps_pd(_mm_loadu_ps(dp + (i)))
#define T(i) _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(xp + (i))), vm)
#define SIDE(i)                                                                     \
    _mm256_storeu_ps(sd->dx + (i),                                                  \
                     apply2_value(_mm256_loadu_ps(sd->x + (i)),                      \
                                  _mm256_loadu_ps(sd->dy + (i)), sd->a, sd->b, sd->m, \
                                  sd->k))
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        PREFETCH(xp + i);
        PREFETCH(dp + i);
        ACCD(a0, b0, D(i), T(i));
        ACCD(a1, b1, D(i + 4), T(i + 4));
        if (fused)
            SIDE(i);
        ACCD(a2, b2, D(i + 8), T(i + 8));
        ACCD(a3, b3, D(i + 12), T(i + 12));
        if (fused)
            SIDE(i + 8);
    }
    if (fused) {
        size_t j = i;
        if (j + 8 <= len) {
            SIDE(j);
            j += 8;
        }
        if (j < len) {
            __m256i q = tail_mask(len - j);
            __m256 v = apply2_value(_mm256_maskload_ps(sd->x + j, q),
                                    _mm256_maskload_ps(sd->dy + j, q), sd->a, sd->b,
                                    sd->m, sd->k);
            _mm256_maskstore_ps(sd->dx + j, q, v);
        }
    }
#undef SIDE
    for (; i + 4 <= len; i += 4)
        ACCD(a0, b0, D(i), T(i));
#undef T
#undef D
    if (i < len) {
        __m128i q = mask_ps(len - i);
        __m256d keep = _mm256_castsi256_pd(mask_pd(len - i));
        __m128 dv = spill ? _mm_loadu_ps(dp + i) : _mm_maskload_ps(dp + i, q);
        __m128 xv = spill ? _mm_loadu_ps(xp + i) : _mm_maskload_ps(xp + i, q);
        __m256d d = _mm256_and_pd(_mm256_cvtps_pd(dv), keep);
        __m256d t = _mm256_sub_pd(_mm256_cvtps_pd(xv), vm);
        ACCD(a0, b0, d, _mm256_and_pd(t, keep));
    }
#undef ACCD
    return pair_sums(a0, a1, a2, a3, b0, b1, b2, b3);
}

/* The dot products of count planes into sdy, sdyx (each plane's lanes summed by lanes1,
 * four planes at a time by lanes4: the same sums); with `fused`, the two-input apply
 * of the planes xa, dya -> dxa as well, interleaved per plane or, with `dense` (the
 * apply's planes follow each other and are short), as the dense-planes walk. */
ALWAYS_INLINE void dots(size_t count, size_t len, const float *x, size_t x_stride,
                        const float *dy, size_t dy_stride, const float *m, double *sdy,
                        double *sdyx, bool fused, bool dense, const float *xa,
                        size_t xa_stride, const float *dya, size_t dya_stride, float *dxa,
                        size_t dxa_stride, const float *a, const float *b, const float *ma,
                        const float *k)
{
    /* then the next plane holds the 1..3 floats read past a plane */
    bool spill = x_stride == len && dy_stride == len && len >= 4;
    bool inter = fused && !dense; /* the apply interleaved, plane by plane */
    dense_run run;
    if (dense)
        dense_begin(&run, len, xa, dya, dxa, a, b, ma, k, _mm256_setzero_ps(),
                    _mm256_setzero_ps(), true, false, false, true);
/* plane p's apply2 parameters, when fused plane by plane */
#define SIDE(p)                                                                     \
    (inter                                                                          \
         ? &(side){xa + (p) * xa_stride, dya + (p) * dya_stride,                    \
                   dxa + (p) * dxa_stride, _mm256_broadcast_ss(a + (p)),            \
                   _mm256_broadcast_ss(b + (p)), _mm256_broadcast_ss(ma + (p)),     \
                   _mm256_broadcast_ss(k + (p))}                                    \
         : NULL)
#define PLANE(p)                                                                    \
    dot_plane(len, x + (p) * x_stride, dy + (p) * dy_stride, (double)m[p],           \
              spill && (p) + 1 < count, inter, SIDE(p))
#define APPLY(p)                                                                    \
    do {                                                                            \
        if (dense)                                                                  \
            dense_plane(&run, p, (p) + 1 == count, true, false, true);              \
    } while (0)
    FOR_EACH_PLANE(count, sdy, sdyx);
#undef PLANE
#undef SIDE
#undef APPLY
    if (dense)
        dense_end(&run, true, false, true);
}

void bnorm_f32_dot_planes__avx2(size_t count, size_t len, const float *x,
                                size_t x_stride, const float *dy, size_t dy_stride,
                                const float *m, double *sdy, double *sdyx)
{
    dots(count, len, x, x_stride, dy, dy_stride, m, sdy, sdyx, false, false, NULL, 0, NULL,
         0, NULL, 0, NULL, NULL, NULL, NULL);
}

void bnorm_f32_dot_apply2_planes__avx2(size_t count, size_t len, const float *x,
                                       size_t x_stride, const float *dy, size_t dy_stride,
                                       const float *m, double *sdy, double *sdyx,
                                       const float *xa, size_t xa_stride, const float *dya,
                                       size_t dya_stride, float *dxa, size_t dxa_stride,
                                       const float *a, const float *b, const float *ma,
                                       const float *k)
{
    if (dense_fused(len) && xa_stride == len && dya_stride == len && dxa_stride == len)
        dots(count, len, x, x_stride, dy, dy_stride, m, sdy, sdyx, true, true, xa,
             xa_stride, dya, dya_stride, dxa, dxa_stride, a, b, ma, k);
    else
        dots(count, len, x, x_stride, dy, dy_stride, m, sdy, sdyx, true, false, xa,
             xa_stride, dya, dya_stride, dxa, dxa_stride, a, b, ma, k);
}

/* Columns [0, 16) of nr rows. */
ALWAYS_INLINE void cols16(size_t nr, const float *x, size_t xs, const float *dy,
                          size_t ds, const float *m, double *sdy, double *sdyx)
{
    __m128 m0 = _mm_loadu_ps(m), m1 = _mm_loadu_ps(m + 4);
    __m128 m2 = _mm_loadu_ps(m + 8), m3 = _mm_loadu_ps(m + 12);
    __m256d a0 = _mm256_loadu_pd(sdy), a1 = _mm256_loadu_pd(sdy + 4);
    __m256d a2 = _mm256_loadu_pd(sdy + 8), a3 = _mm256_loadu_pd(sdy + 12);
    __m256d b0 = _mm256_loadu_pd(sdyx), b1 = _mm256_loadu_pd(sdyx + 4);
    __m256d b2 = _mm256_loadu_pd(sdyx + 8), b3 = _mm256_loadu_pd(sdyx + 12);
    for (size_t r = 0; r < nr; r++) {
        const float *xr = x + r * xs, *dr = dy + r * ds;
        PREFETCH(xr);
        PREFETCH(dr);
        ACC(a0, b0, _mm_loadu_ps(dr), _mm_sub_ps(_mm_loadu_ps(xr), m0));
        ACC(a1, b1, _mm_loadu_ps(dr + 4), _mm_sub_ps(_mm_loadu_ps(xr + 4), m1));
        ACC(a2, b2, _mm_loadu_ps(dr + 8), _mm_sub_ps(_mm_loadu_ps(xr + 8), m2));
        ACC(a3, b3, _mm_loadu_ps(dr + 12), _mm_sub_ps(_mm_loadu_ps(xr + 12), m3));
    }
    _mm256_storeu_pd(sdy, a0);
    _mm256_storeu_pd(sdy + 4, a1);
    _mm256_storeu_pd(sdy + 8, a2);
    _mm256_storeu_pd(sdy + 12, a3);
    _mm256_storeu_pd(sdyx, b0);
    _mm256_storeu_pd(sdyx + 4, b1);
    _mm256_storeu_pd(sdyx + 8, b2);
    _mm256_storeu_pd(sdyx + 12, b3);
}

/* Columns [0, n) of nr rows, n <= 4; masked when n < 4 (the masked lanes are never
 * stored, so what they accumulate does not matter). */
ALWAYS_INLINE void cols4(size_t nr, const float *x, size_t xs, const float *dy,
                         size_t ds, const float *m, double *sdy, double *sdyx, size_t n,
                         bool masked)
{
    __m128i q = masked ? mask_ps(n) : _mm_setzero_si128();
    __m256i qd = masked ? mask_pd(n) : _mm256_setzero_si256();
#define LD(p) (masked ? _mm_maskload_ps(p, q) : _mm_loadu_ps(p))
#define LDD(p) (masked ? _mm256_maskload_pd(p, qd) : _mm256_loadu_pd(p))
    __m128 vm = LD(m);
    __m256d a = LDD(sdy), b = LDD(sdyx);
    for (size_t r = 0; r < nr; r++)
        ACC(a, b, LD(dy + r * ds), _mm_sub_ps(LD(x + r * xs), vm));
#undef LD
#undef LDD
    if (masked) {
        _mm256_maskstore_pd(sdy, qd, a);
        _mm256_maskstore_pd(sdyx, qd, b);
    } else {
        _mm256_storeu_pd(sdy, a);
        _mm256_storeu_pd(sdyx, b);
    }
}

void bnorm_f32_dot_rows__avx2(size_t count, size_t len, const float *x,
                              size_t x_stride, const float *dy, size_t dy_stride,
                              const float *m, double *sdy, double *sdyx)
{
    for (size_t r = 0; r < count; r += ROW_TILE) {
        const float *xt = x + r * x_stride, *dt = dy + r * dy_stride;
        size_t nr = count - r < ROW_TILE ? count - r : ROW_TILE;
        size_t i = 0;
        for (; i + 16 <= len; i += 16)
            cols16(nr, xt + i, x_stride, dt + i, dy_stride, m + i, sdy + i, sdyx + i);
        for (; i + 4 <= len; i += 4)
            cols4(nr, xt + i, x_stride, dt + i, dy_stride, m + i, sdy + i, sdyx + i, 4,
                  false);
        if (i < len)
            cols4(nr, xt + i, x_stride, dt + i, dy_stride, m + i, sdy + i, sdyx + i,
                  len - i, true);
    }
}
