/*
 * The walk of apply_planes_dense, shared by apply.c and the forward's fused
 * moments_apply_planes: count planes that follow each other are one array, walked
 * in full vectors on y's 32-byte grid. The first o floats up to that grid (o < 8 <=
 * len: all plane 0) are one masked vector; then each plane runs its whole vectors (4
 * at a time, then single), and the vector that holds the plane's last 1..7 floats
 * and the next plane's first ones blends the two planes' broadcasts (lanes below the
 * boundary keep this plane's): with len >= 8 no vector holds three planes. Only the
 * run's last 1..7 floats are a masked vector. Every element gets the operations of
 * apply_planes (act(fma(x, a, b)) or act(fma(x - m, a, b))), so the results are its
 * own, bit for bit.
 *
 * Use: dense_begin, then dense_plane for p = 0 .. count - 1, then dense_end.
 */
#ifndef BNORM_AVX2_DENSE_H
#define BNORM_AVX2_DENSE_H

#include <stdbool.h>
#include <stdint.h>

#include "avx2_util.h"

ALWAYS_INLINE __m256 act(__m256 v, __m256 lo, __m256 hi, bool clamp)
{
    if (clamp) {
        /* maxps/minps return their second operand when either is NaN: v. */
        v = _mm256_max_ps(lo, v);
        v = _mm256_min_ps(hi, v);
    }
    return v;
}

typedef struct dense_run {
    const float *x;
    float *y;
    const float *a, *b, *m;
    size_t len, i, e; /* i: the next vector; e: where the current plane ends */
    __m256 ca, cb, cm, lo, hi; /* the current plane's broadcasts; the clamp */
} dense_run;

ALWAYS_INLINE __m256 dense_v(const float *x, __m256 a, __m256 b, __m256 m, bool center)
{
    __m256 v = _mm256_loadu_ps(x);
    return _mm256_fmadd_ps(center ? _mm256_sub_ps(v, m) : v, a, b);
}

/* The first n < 8 floats at i, with the current plane's broadcasts. */
ALWAYS_INLINE void dense_masked(const dense_run *r, size_t i, size_t n, bool clamp,
                                bool center)
{
    __m256i k = tail_mask(n);
    __m256 xv = _mm256_maskload_ps(r->x + i, k);
    __m256 v = _mm256_fmadd_ps(center ? _mm256_sub_ps(xv, r->cm) : xv, r->ca, r->cb);
    _mm256_maskstore_ps(r->y + i, k, act(v, r->lo, r->hi, clamp));
}

ALWAYS_INLINE void dense_begin(dense_run *r, size_t len, const float *x, float *y,
                               const float *a, const float *b, const float *m, __m256 lo,
                               __m256 hi, bool clamp, bool center)
{
    r->a = a;
    r->b = b;
    r->m = m;
    r->lo = lo;
    r->hi = hi;
    r->len = len;
    r->ca = _mm256_broadcast_ss(a);
    r->cb = _mm256_broadcast_ss(b);
    r->cm = center ? _mm256_broadcast_ss(m) : _mm256_setzero_ps();
    r->x = x;
    r->y = y;
    size_t o = ((32 - ((uintptr_t)y & 31)) & 31) / sizeof(float);
    if (o) {
        dense_masked(r, 0, o, clamp, center);
        r->x += o;
        r->y += o;
    }
    r->i = 0;
    r->e = len - o;
}

/* Plane p's whole vectors, then, unless it is the last, the vector it shares with
 * plane p + 1. */
ALWAYS_INLINE void dense_plane(dense_run *r, size_t p, bool last, bool clamp, bool center)
{
    const float *x = r->x;
    float *y = r->y;
    __m256 ca = r->ca, cb = r->cb, cm = r->cm, lo = r->lo, hi = r->hi;
    size_t i = r->i, e = r->e;
#define ST(i, v) _mm256_storeu_ps(y + (i), act(v, lo, hi, clamp))
    for (; i + 32 <= e; i += 32) {
        __m256 v0 = dense_v(x + i, ca, cb, cm, center);
        __m256 v1 = dense_v(x + i + 8, ca, cb, cm, center);
        __m256 v2 = dense_v(x + i + 16, ca, cb, cm, center);
        __m256 v3 = dense_v(x + i + 24, ca, cb, cm, center);
        ST(i, v0);
        ST(i + 8, v1);
        ST(i + 16, v2);
        ST(i + 24, v3);
    }
    for (; i + 8 <= e; i += 8)
        ST(i, dense_v(x + i, ca, cb, cm, center));
    if (!last) {
        /* lanes [0, e - i) are plane p's last floats (none when e == i) */
        __m256 keep = _mm256_castsi256_ps(tail_mask(e - i));
        __m256 na = _mm256_broadcast_ss(r->a + p + 1), nb = _mm256_broadcast_ss(r->b + p + 1);
        __m256 nm = center ? _mm256_broadcast_ss(r->m + p + 1) : cm;
        ST(i, dense_v(x + i, _mm256_blendv_ps(na, ca, keep), _mm256_blendv_ps(nb, cb, keep),
                      _mm256_blendv_ps(nm, cm, keep), center));
        i += 8;
        r->e = e + r->len;
        r->ca = na;
        r->cb = nb;
        r->cm = nm;
    }
#undef ST
    r->i = i;
}

/* The run's last 1..7 floats, if any. */
ALWAYS_INLINE void dense_end(const dense_run *r, bool clamp, bool center)
{
    if (r->i < r->e)
        dense_masked(r, r->i, r->e - r->i, clamp, center);
}

#endif
