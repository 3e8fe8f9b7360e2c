/*
 * Two-input affine apply, AVX2+FMA: dx = a*dy + b*(x - m) + k, evaluated in one fixed
 * order (the scalar kernel follows the same order, unfused):
 *   t = x - m  (float),  u = fma(b, t, k),  dx = fma(a, dy, u).
 *
 * Each span (one plane or one row) runs 4 vectors (32 floats) per iteration, then
 * single vectors, then one masked vector for the last 1..7 floats (vmaskmov neither
 * faults nor writes outside the mask, so nothing past the span is touched). In-place
 * rows (per-element a, b, m, k) go four at a time: each column block's a,
 * b, m and k are loaded once for the four rows, the last 1..3 rows alone (see
 * use_tiles). Every element of dy is loaded before the store of the same element of
 * dx, so dx == dy is safe. Rows of at least ROW_HEAD_MIN floats, outside the tiles,
 * start with a masked vector that brings dx to a 32-byte boundary, as in apply.c.
 */
#include <stdbool.h>
#include <stdint.h>

#include "kernels.h"
#include "avx2_util.h"

/* rows: a, b, m and k are loaded per element; planes: va..vk are the broadcasts. */
ALWAYS_INLINE void span(size_t len, const float *x, const float *dy, float *dx,
                        const float *a, const float *b, const float *m, const float *k,
                        __m256 va, __m256 vb, __m256 vm, __m256 vk, bool rows)
{
#define L(p, i) _mm256_loadu_ps((p) + (i))
#define V(i)                                                                        \
    apply2_value(L(x, i), L(dy, i), rows ? L(a, i) : va, rows ? L(b, i) : vb,       \
                 rows ? L(m, i) : vm, rows ? L(k, i) : vk)
#define LM(p, i, q) _mm256_maskload_ps((p) + (i), q)
/* The n < 8 floats at i, through masked loads and a masked store. */
#define MASKED(i, n)                                                                \
    do {                                                                            \
        __m256i q_ = tail_mask(n);                                                  \
        _mm256_maskstore_ps(                                                        \
            dx + (i), q_,                                                           \
            apply2_value(LM(x, i, q_), LM(dy, i, q_), rows ? LM(a, i, q_) : va,     \
                         rows ? LM(b, i, q_) : vb, rows ? LM(m, i, q_) : vm,        \
                         rows ? LM(k, i, q_) : vk));                                \
    } while (0)
    size_t i = 0;
    if (rows && len >= ROW_HEAD_MIN) { /* dx onto a 32-byte boundary, as in apply.c */
        i = align_head(dx);
        if (i)
            MASKED(0, i);
    }
    for (; i + 32 <= len; i += 32) {
        __m256 v0 = V(i), v1 = V(i + 8), v2 = V(i + 16), v3 = V(i + 24);
        _mm256_storeu_ps(dx + i, v0);
        _mm256_storeu_ps(dx + i + 8, v1);
        _mm256_storeu_ps(dx + i + 16, v2);
        _mm256_storeu_ps(dx + i + 24, v3);
    }
    for (; i + 8 <= len; i += 8)
        _mm256_storeu_ps(dx + i, V(i));
    if (i < len)
        MASKED(i, len - i);
#undef V
#undef L
#undef MASKED
#undef LM
}

/* Rows per tile of the rows kernel. */
enum { ROW_TILE = 4 };

/* ROW_TILE rows at once: each block of 16 columns loads its a, b, m and k once and
 * applies them to every row of the tile (two loads per vector instead of six), then
 * 8 columns, then the masked last 1..7.
 * It also runs four rows' streams at once (twelve out of place), which from L2 costs
 * more than the loads it saves unless dx is dy (measured, 512 KiB of rows: in place
 * 14.4 -> 11.6 us for rows of 64, 16.3 -> 11.1 for 136; out of place up to 33%
 * slower; in L1 out of place, faster for rows of 64, 20% slower for rows of 1000).
 * So tiles are used only in place, which is how backward usually runs. */
ALWAYS_INLINE bool use_tiles(size_t count, const float *dy, const float *dx)
{
    return count >= ROW_TILE && (const float *)dx == dy;
}

ALWAYS_INLINE void rows_tile(size_t len, const float *x, size_t xs, const float *dy,
                             size_t dys, float *dx, size_t dxs, const float *a,
                             const float *b, const float *m, const float *k)
{
#define L(p) _mm256_loadu_ps(p)
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        __m256 a0 = L(a + i), a1 = L(a + i + 8), b0 = L(b + i), b1 = L(b + i + 8);
        __m256 m0 = L(m + i), m1 = L(m + i + 8), k0 = L(k + i), k1 = L(k + i + 8);
        for (size_t r = 0; r < ROW_TILE; r++) {
            const float *xr = x + r * xs + i, *dr = dy + r * dys + i;
            __m256 v0 = apply2_value(L(xr), L(dr), a0, b0, m0, k0);
            __m256 v1 = apply2_value(L(xr + 8), L(dr + 8), a1, b1, m1, k1);
            _mm256_storeu_ps(dx + r * dxs + i, v0);
            _mm256_storeu_ps(dx + r * dxs + i + 8, v1);
        }
    }
    if (i + 8 <= len) {
        __m256 a0 = L(a + i), b0 = L(b + i), m0 = L(m + i), k0 = L(k + i);
        for (size_t r = 0; r < ROW_TILE; r++) {
            __m256 v = apply2_value(L(x + r * xs + i), L(dy + r * dys + i), a0, b0, m0, k0);
            _mm256_storeu_ps(dx + r * dxs + i, v);
        }
        i += 8;
    }
#undef L
    if (i < len) {
        __m256i q = tail_mask(len - i);
#define L(p) _mm256_maskload_ps(p, q)
        __m256 a0 = L(a + i), b0 = L(b + i), m0 = L(m + i), k0 = L(k + i);
        for (size_t r = 0; r < ROW_TILE; r++) {
            __m256 v = apply2_value(L(x + r * xs + i), L(dy + r * dys + i), a0, b0, m0, k0);
            _mm256_maskstore_ps(dx + r * dxs + i, q, v);
        }
#undef L
    }
}

ALWAYS_INLINE void apply2(size_t count, size_t len, const float *x, size_t x_stride,
                          const float *dy, size_t dy_stride, float *dx,
                          size_t dx_stride, const float *a, const float *b,
                          const float *m, const float *k, bool rows)
{
    size_t p = 0;
    if (rows && use_tiles(count, dy, dx)) {
        for (; p + ROW_TILE <= count; p += ROW_TILE)
            rows_tile(len, x + p * x_stride, x_stride, dy + p * dy_stride, dy_stride,
                      dx + p * dx_stride, dx_stride, a, b, m, k);
    }
    for (; p < count; p++) {
        size_t c = rows ? 0 : p;
        __m256 va = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(a + c);
        __m256 vb = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(b + c);
        __m256 vm = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(m + c);
        __m256 vk = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(k + c);
        span(len, x + p * x_stride, dy + p * dy_stride, dx + p * dx_stride, a + c,
             b + c, m + c, k + c, va, vb, vm, vk, rows);
    }
}

void bnorm_f32_apply2_planes__avx2(size_t count, size_t len, const float *x,
                                   size_t x_stride, const float *dy, size_t dy_stride,
                                   float *dx, size_t dx_stride, const float *a,
                                   const float *b, const float *m, const float *k)
{
    apply2(count, len, x, x_stride, dy, dy_stride, dx, dx_stride, a, b, m, k, false);
}

void bnorm_f32_apply2_rows__avx2(size_t count, size_t len, const float *x,
                                 size_t x_stride, const float *dy, size_t dy_stride,
                                 float *dx, size_t dx_stride, const float *a,
                                 const float *b, const float *m, const float *k)
{
    apply2(count, len, x, x_stride, dy, dy_stride, dx, dx_stride, a, b, m, k, true);
}
