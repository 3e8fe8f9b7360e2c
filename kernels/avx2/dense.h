/*
 * The walk of apply_planes_dense, shared by apply.c and the fused training kernels
 * (moments.c's moments_apply_planes, dot.c's dot_apply2_planes): count planes that
 * follow each other are one array, walked in full vectors on y's 32-byte grid. The
 * first o floats up to that grid (o < 8 <= len: all plane 0) are one masked vector;
 * then each plane runs its whole vectors (4 at a time, then single), and the vector
 * that holds the plane's last 1..7 floats and the next plane's first ones blends
 * the two planes' broadcasts (lanes below the boundary keep this plane's): with len
 * >= 8 no vector holds three planes. Only the run's last 1..7 floats are a masked
 * vector. Every element gets the operations of apply_planes (act(fma(x, a, b)) or
 * act(fma(x - m, a, b))), so the results are its own, bit for bit. With `two` it is
 * instead the two-input apply of apply2_planes, fma(a, dy, fma(b, x - m, k)) (no
 * clamp; center is implied), for the backward's fused dot_apply2_planes. With
 * `stream` every store is non-temporal (the masked ones lane by lane: store_part).
 * Use: dense_begin, then dense_plane for p = 0 .. count - 1, then dense_end.
 */
#ifndef BNORM_AVX2_DENSE_H
#define BNORM_AVX2_DENSE_H

#include <stdbool.h>

#include "avx2_util.h"

/* Whether the fused training kernels walk their apply over len-float planes that
 * follow each other as a dense run, after each plane's reduction (the out-of-order
 * core overlaps the two); longer planes interleave the apply into the reduction's
 * loop instead, and shorter ones than a vector cannot be walked. */
ALWAYS_INLINE bool dense_fused(size_t len)
{
    return len >= 8 && len <= 256;
}

/* One plane's (or a straddling vector's blended) broadcasts. */
typedef struct dense_par {
    __m256 a, b, m, k;
} dense_par;

typedef struct dense_run {
    const float *x, *dy; /* dy: two-input only */
    float *y;
    const float *a, *b, *m, *k; /* k: two-input only */
    size_t len, i, e; /* i: the next vector; e: where the current plane ends */
    dense_par c;      /* the current plane's broadcasts */
    __m256 lo, hi;    /* the clamp */
    bool stream;      /* every store non-temporal (apply_planes_dense, streamed) */
} dense_run;

/* The value of the vector whose x (and dy) values are xv (dv). */
ALWAYS_INLINE __m256 dense_value(__m256 xv, __m256 dv, dense_par q, const dense_run *r,
                                 bool two, bool clamp, bool center)
{
    if (two)
        return apply2_value(xv, dv, q.a, q.b, q.m, q.k);
    __m256 v = APPLY_VALUE(xv, q.a, q.b, q.m, center);
    return act(v, r->lo, r->hi, clamp);
}

ALWAYS_INLINE void dense_vec(const dense_run *r, size_t i, dense_par q, bool two, bool clamp,
                             bool center)
{
    __m256 dv = two ? _mm256_loadu_ps(r->dy + i) : _mm256_setzero_ps();
    /* y + i is on the 32-byte grid */
    store(r->y + i, dense_value(_mm256_loadu_ps(r->x + i), dv, q, r, two, clamp, center),
          r->stream);
}

/* The n < 8 floats at i, with the current plane's broadcasts. */
ALWAYS_INLINE void dense_masked(const dense_run *r, size_t i, size_t n, bool two,
                                bool clamp, bool center)
{
    __m256i q = tail_mask(n);
    __m256 dv = two ? _mm256_maskload_ps(r->dy + i, q) : _mm256_setzero_ps();
    __m256 v = dense_value(_mm256_maskload_ps(r->x + i, q), dv, r->c, r, two, clamp, center);
    store_part(r->y + i, v, q, n, r->stream);
}

ALWAYS_INLINE void dense_begin(dense_run *r, size_t len, const float *x, const float *dy,
                               float *y, const float *a, const float *b, const float *m,
                               const float *k, __m256 lo, __m256 hi, bool two, bool clamp,
                               bool stream, bool center)
{
    __m256 z = _mm256_setzero_ps();
    r->a = a;
    r->b = b;
    r->m = m;
    r->k = k;
    r->lo = lo;
    r->hi = hi;
    r->len = len;
    r->stream = stream;
    r->c.a = _mm256_broadcast_ss(a);
    r->c.b = _mm256_broadcast_ss(b);
    r->c.m = center || two ? _mm256_broadcast_ss(m) : z;
    r->c.k = two ? _mm256_broadcast_ss(k) : z;
    r->x = x;
    r->dy = dy;
    r->y = y;
    size_t o = align_head(y);
    if (o) {
        dense_masked(r, 0, o, two, clamp, center);
        r->x += o;
        r->dy = two ? r->dy + o : r->dy;
        r->y += o;
    }
    r->i = 0;
    r->e = len - o;
}

/* Plane p's whole vectors, then, unless it is the last, the vector it shares with
 * plane p + 1. */
ALWAYS_INLINE void dense_plane(dense_run *r, size_t p, bool last, bool two, bool clamp,
                               bool center)
{
    dense_par q = r->c;
    size_t i = r->i, e = r->e;
    for (; i + 32 <= e; i += 32) {
        dense_vec(r, i, q, two, clamp, center);
        dense_vec(r, i + 8, q, two, clamp, center);
        dense_vec(r, i + 16, q, two, clamp, center);
        dense_vec(r, i + 24, q, two, clamp, center);
    }
    for (; i + 8 <= e; i += 8)
        dense_vec(r, i, q, two, clamp, center);
    if (!last) {
        /* lanes [0, e - i) are plane p's last floats (none when e == i) */
        __m256 keep = _mm256_castsi256_ps(tail_mask(e - i));
        dense_par n = {_mm256_broadcast_ss(r->a + p + 1), _mm256_broadcast_ss(r->b + p + 1),
                       center || two ? _mm256_broadcast_ss(r->m + p + 1) : q.m,
                       two ? _mm256_broadcast_ss(r->k + p + 1) : q.k};
        dense_par s = {_mm256_blendv_ps(n.a, q.a, keep), _mm256_blendv_ps(n.b, q.b, keep),
                       _mm256_blendv_ps(n.m, q.m, keep), _mm256_blendv_ps(n.k, q.k, keep)};
        dense_vec(r, i, s, two, clamp, center);
        i += 8;
        r->e = e + r->len;
        r->c = n;
    }
    r->i = i;
}

/* The run's last 1..7 floats, if any. */
ALWAYS_INLINE void dense_end(const dense_run *r, bool two, bool clamp, bool center)
{
    if (r->i < r->e)
        dense_masked(r, r->i, r->e - r->i, two, clamp, center);
}

#endif
