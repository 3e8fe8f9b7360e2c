/*
 * Affine apply, AVX2+FMA: y = act(fma(x, a, b)), or with BNORM_KF_CENTER
 * y = act(fma(x - m, a, b)) (x - m rounded to float, then one fused rounding).
 *
 * Each span (one plane or one row) runs 4 vectors (32 floats) per iteration so that
 * loads, FMAs and stores overlap, then single vectors, then one masked vector for the
 * last 1..7 floats (vmaskmov neither faults nor writes outside the mask, so nothing
 * past the span is touched). Small, in-place or very wide rows (per-element a, b, m)
 * go four at a time: each column block's a, b and m are loaded once for the four rows
 * (in L1, NHWC C=64: 20 -> 26 Gelem/s), the last 1..3 rows alone (see use_tiles). Every
 * combination of the three flags is its own specialization, so no flag test reaches
 * an inner loop.
 *
 * Rows of at least ROW_HEAD_MIN (256) floats, outside the tiles, start with a masked
 * vector that brings y to a 32-byte boundary: with y 16 bytes past one (malloc's
 * large blocks), every other load and store of a row crossed two cache lines (NHWC
 * apply, tensors 16 bytes past a page, one thread: 1x2048x7x7 9.6-9.7 -> 7.7-8.1 us,
 * 8x1000 850-870 -> 630-670 ns, 1x1024x14x14 20-22 -> 17-19.5 us; page-aligned
 * unchanged). Shorter rows (such as the periodic rows of C = 17, 136 floats) lost
 * more to the extra masked vectors than they gained. A call of one such row (one
 * small image) takes short_row's path, without a masked store.
 *
 * With BNORM_KF_STREAM every store of the output is non-temporal, heads and tails
 * included (4-byte movnti: store_part, avx2_util.h), since an ordinary store into a
 * line being streamed is very slow. One sequential non-temporal stream stalls at
 * every 4 KiB page boundary (the prefetchers stop there and the write-combining
 * buffers drain); four streams in lockstep overlap those stalls (measured on a Xeon
 * VM: 0.85 -> 1.15 x glibc memcpy at 1 GiB, 2x regular stores at 128 MiB). So the
 * streaming path runs four runs at once, each from a 64-byte line on, two whole
 * lines of each per step: items p, p + s, p + 2s, p + 3s (s = count / 4) while there
 * are four, then each remaining item alone, split into four quarters when it is
 * long. Dense planes of fewer than BNORM_STREAM_SPAN_MIN floats are one run instead
 * (dense()); the plans stream no other shorter spans than the ends of a pool task's
 * range of rows (apply_plan.c).
 */
#include <stdbool.h>
#include <stdint.h>

#include "kernels.h"
#include "avx2_util.h"
#include "dense.h"

/* rows: a, b and m are loaded per element; planes: va, vb and vm are the broadcasts.
 * m is only read with center. */
ALWAYS_INLINE void span(size_t len, const float *x, float *y, const float *a,
                        const float *b, const float *m, __m256 va, __m256 vb,
                        __m256 vm, __m256 lo, __m256 hi, bool rows, bool clamp,
                        bool stream, bool center)
{
#define A(i) (rows ? _mm256_loadu_ps(a + (i)) : va)
#define B(i) (rows ? _mm256_loadu_ps(b + (i)) : vb)
#define M(i) (rows ? _mm256_loadu_ps(m + (i)) : vm)
#define AM(i, k) (rows ? _mm256_maskload_ps(a + (i), k) : va)
#define BM(i, k) (rows ? _mm256_maskload_ps(b + (i), k) : vb)
#define MM(i, k) (rows ? _mm256_maskload_ps(m + (i), k) : vm)
/* v for the 8 floats at i; VM loads only the lanes in k, the only ones stored. */
#define V(i) APPLY_VALUE(_mm256_loadu_ps(x + (i)), A(i), B(i), M(i), center)
#define VM(i, k)                                                                    \
    APPLY_VALUE(_mm256_maskload_ps(x + (i), k), AM(i, k), BM(i, k), MM(i, k), center)
    size_t i = 0;
    if (stream || (rows && len >= ROW_HEAD_MIN)) {
        size_t head = align_head(y);
        if (head > len)
            head = len;
        if (head) {
            __m256i k = tail_mask(head);
            store_part(y, act(VM(0, k), lo, hi, clamp), k, head, stream);
            i = head;
        }
    }
    for (; i + 32 <= len; i += 32) {
        __m256 v0 = V(i), v1 = V(i + 8), v2 = V(i + 16), v3 = V(i + 24);
        store(y + i, act(v0, lo, hi, clamp), stream);
        store(y + i + 8, act(v1, lo, hi, clamp), stream);
        store(y + i + 16, act(v2, lo, hi, clamp), stream);
        store(y + i + 24, act(v3, lo, hi, clamp), stream);
    }
    for (; i + 8 <= len; i += 8)
        store(y + i, act(V(i), lo, hi, clamp), stream);
    if (i < len) {
        __m256i k = tail_mask(len - i);
        store_part(y + i, act(VM(i, k), lo, hi, clamp), k, len - i, stream);
    }
#undef A
#undef B
#undef M
#undef AM
#undef BM
#undef MM
#undef V
#undef VM
}

/* Rows per tile of the rows kernel (without STREAM). */
enum { ROW_TILE = 4 };

/* ROW_TILE rows at once: each block of 32 columns loads its a, b (and m) once and
 * applies them to every row of the tile, so a row costs one load per vector instead
 * of three or four; then blocks of 8, then the masked last 1..7.
 * It also runs four rows' streams at once, which costs more than the loads it saves
 * when the data comes from L2 and x and y are separate (measured, 512 KiB of rows of
 * 64..1024 floats: 0-40% slower than one row at a time). So tiles are used when the
 * rows are small enough to be in L1 (at most TILE_MAX_ELEMS values), when y is x, and
 * for rows of TILE_WIDE_MIN floats or more: their a and b (16 KB) and a row of x and
 * of y fill L1, so one row at a time reloads a and b from L2 for every row (Zen 4,
 * 12 MiB, rows of 2048: 670-910 -> 600-670 us, memcpy 520-570; of 4096: 910-1080 ->
 * 650-700; of 1536, 620-690 either way). The plans run such rows in strips of at most
 * 1024 where the tensor is in cache, where tiles lose (src/apply_plan.c). */
#define TILE_MAX_ELEMS 4096
#define TILE_WIDE_MIN 2048

ALWAYS_INLINE bool use_tiles(size_t count, size_t len, const float *x, const float *y)
{
    return count >= ROW_TILE && ((const float *)y == x || count * len <= TILE_MAX_ELEMS ||
                                 len >= TILE_WIDE_MIN);
}

ALWAYS_INLINE void rows_tile(size_t len, const float *x, size_t xs, float *y,
                             size_t ys, const float *a, const float *b, const float *m,
                             __m256 lo, __m256 hi, bool clamp, bool center)
{
#define X(r, i) _mm256_loadu_ps(x + (r) * xs + (i))
#define V(r, i, va, vb, vm) APPLY_VALUE(X(r, i), va, vb, vm, center)
#define LM(i) (center ? _mm256_loadu_ps(m + (i)) : z)
    __m256 z = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        __m256 a0 = _mm256_loadu_ps(a + i), a1 = _mm256_loadu_ps(a + i + 8);
        __m256 a2 = _mm256_loadu_ps(a + i + 16), a3 = _mm256_loadu_ps(a + i + 24);
        __m256 b0 = _mm256_loadu_ps(b + i), b1 = _mm256_loadu_ps(b + i + 8);
        __m256 b2 = _mm256_loadu_ps(b + i + 16), b3 = _mm256_loadu_ps(b + i + 24);
        __m256 m0 = LM(i), m1 = LM(i + 8), m2 = LM(i + 16), m3 = LM(i + 24);
        for (size_t r = 0; r < ROW_TILE; r++) {
            float *yr = y + r * ys + i;
            __m256 v0 = V(r, i, a0, b0, m0), v1 = V(r, i + 8, a1, b1, m1);
            __m256 v2 = V(r, i + 16, a2, b2, m2), v3 = V(r, i + 24, a3, b3, m3);
            _mm256_storeu_ps(yr, act(v0, lo, hi, clamp));
            _mm256_storeu_ps(yr + 8, act(v1, lo, hi, clamp));
            _mm256_storeu_ps(yr + 16, act(v2, lo, hi, clamp));
            _mm256_storeu_ps(yr + 24, act(v3, lo, hi, clamp));
        }
    }
    for (; i + 8 <= len; i += 8) {
        __m256 a0 = _mm256_loadu_ps(a + i), b0 = _mm256_loadu_ps(b + i), m0 = LM(i);
        for (size_t r = 0; r < ROW_TILE; r++)
            _mm256_storeu_ps(y + r * ys + i, act(V(r, i, a0, b0, m0), lo, hi, clamp));
    }
#undef X
#undef V
#undef LM
    if (i < len) {
        __m256i k = tail_mask(len - i);
        __m256 a0 = _mm256_maskload_ps(a + i, k), b0 = _mm256_maskload_ps(b + i, k);
        __m256 m0 = center ? _mm256_maskload_ps(m + i, k) : z;
        for (size_t r = 0; r < ROW_TILE; r++) {
            __m256 xv = _mm256_maskload_ps(x + r * xs + i, k);
            __m256 v = APPLY_VALUE(xv, a0, b0, m0, center);
            _mm256_maskstore_ps(y + r * ys + i, k, act(v, lo, hi, clamp));
        }
    }
}

/* A run of consecutive elements of one span, for the streaming path: x, y, and
 * (rows) a, b, m at the run's first element or (planes) the broadcasts. */
typedef struct run {
    const float *x;
    float *y;
    const float *a, *b, *m;
    __m256 va, vb, vm;
    size_t n;
} run;

ALWAYS_INLINE void run_advance(run *r, size_t k, bool rows, bool center)
{
    r->x += k;
    r->y += k;
    if (rows) {
        r->a += k;
        r->b += k;
        if (center)
            r->m += k;
    }
    r->n -= k;
}

ALWAYS_INLINE void run_span(const run *r, __m256 lo, __m256 hi, bool rows, bool clamp,
                            bool center)
{
    span(r->n, r->x, r->y, r->a, r->b, r->m, r->va, r->vb, r->vm, lo, hi, rows, clamp,
         true, center);
}

/* Floats from y to the next 64-byte line. */
ALWAYS_INLINE size_t line_head(const float *y)
{
    return ((64 - ((uintptr_t)y & 63)) & 63) / sizeof(float);
}

/* Streams four runs in lockstep: each one's head up to a line, then 32 floats (two
 * whole lines) of each per step while all four have them, then each one's rest
 * alone. With heads to 32 bytes only, every step left half a line of each run to
 * the next (Zen 4: planes 16 bytes past a line 7.3 ms against 2.8-3.2 on lines). */
ALWAYS_INLINE void stream4(run r[4], __m256 lo, __m256 hi, bool rows, bool clamp,
                           bool center)
{
    size_t common = SIZE_MAX;
    for (int k = 0; k < 4; k++) {
        size_t head = line_head(r[k].y);
        if (head > r[k].n)
            head = r[k].n;
        if (head) {
            run h = r[k];
            h.n = head;
            run_span(&h, lo, hi, rows, clamp, center);
            run_advance(&r[k], head, rows, center);
        }
        if (r[k].n < common)
            common = r[k].n;
    }
    size_t j = 0;
#define A(k, i) (rows ? _mm256_loadu_ps(r[k].a + (i)) : r[k].va)
#define B(k, i) (rows ? _mm256_loadu_ps(r[k].b + (i)) : r[k].vb)
#define M(k, i) (rows ? _mm256_loadu_ps(r[k].m + (i)) : r[k].vm)
#define V(k, i)                                                                     \
    APPLY_VALUE(_mm256_loadu_ps(r[k].x + (i)), A(k, i), B(k, i), M(k, i), center)
    for (; j + 32 <= common; j += 32) {
        for (int k = 0; k < 4; k++) {
            __m256 v0 = V(k, j), v1 = V(k, j + 8), v2 = V(k, j + 16), v3 = V(k, j + 24);
            _mm256_stream_ps(r[k].y + j, act(v0, lo, hi, clamp));
            _mm256_stream_ps(r[k].y + j + 8, act(v1, lo, hi, clamp));
            _mm256_stream_ps(r[k].y + j + 16, act(v2, lo, hi, clamp));
            _mm256_stream_ps(r[k].y + j + 24, act(v3, lo, hi, clamp));
        }
    }
#undef A
#undef B
#undef M
#undef V
    for (int k = 0; k < 4; k++) {
        if (r[k].n > j) {
            run_advance(&r[k], j, rows, center);
            run_span(&r[k], lo, hi, rows, clamp, center);
        }
    }
}

/* Spans shorter than this (floats) are streamed alone rather than in quarters. */
enum { SPLIT_MIN = 4096 };

ALWAYS_INLINE run item_run(size_t p, size_t len, const float *x, size_t x_stride,
                           float *y, size_t y_stride, const float *a, const float *b,
                           const float *m, bool rows, bool center)
{
    run r;
    r.x = x + p * x_stride;
    r.y = y + p * y_stride;
    r.a = rows ? a : a + p;
    r.b = rows ? b : b + p;
    r.m = center ? (rows ? m : m + p) : NULL;
    r.va = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(r.a);
    r.vb = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(r.b);
    r.vm = rows || !center ? _mm256_setzero_ps() : _mm256_broadcast_ss(r.m);
    r.n = len;
    return r;
}

ALWAYS_INLINE void apply_stream(size_t count, size_t len, const float *x,
                                size_t x_stride, float *y, size_t y_stride,
                                const float *a, const float *b, const float *m,
                                __m256 lo, __m256 hi, bool rows, bool clamp, bool center)
{
    size_t s = count / 4;
    for (size_t p = 0; p < s; p++) {
        run r[4];
        for (int k = 0; k < 4; k++)
            r[k] = item_run(p + (size_t)k * s, len, x, x_stride, y, y_stride, a, b, m,
                            rows, center);
        stream4(r, lo, hi, rows, clamp, center);
    }
    for (size_t p = 4 * s; p < count; p++) {
        run whole = item_run(p, len, x, x_stride, y, y_stride, a, b, m, rows, center);
        if (len < SPLIT_MIN) {
            run_span(&whole, lo, hi, rows, clamp, center);
            continue;
        }
        /* Quarters: the first starts at the span's start (stream4 aligns it), the
         * others at multiples of 16 floats after the first element on a line, so
         * they start on lines too. */
        size_t head = line_head(whole.y);
        size_t q = (len - head) / 4 / 16 * 16;
        run r[4];
        r[0] = whole;
        r[0].n = head + q;
        for (int k = 1; k < 4; k++) {
            r[k] = whole;
            run_advance(&r[k], head + (size_t)k * q, rows, center);
            if (k < 3)
                r[k].n = q;
        }
        stream4(r, lo, hi, rows, clamp, center);
    }
}

ALWAYS_INLINE void apply(size_t count, size_t len, const float *x, size_t x_stride,
                         float *y, size_t y_stride, const float *a, const float *b,
                         const float *m, float lo, float hi, bool rows, bool clamp,
                         bool stream, bool center)
{
    __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    if (stream) {
        apply_stream(count, len, x, x_stride, y, y_stride, a, b, m, vlo, vhi, rows,
                     clamp, center);
        _mm_sfence(); /* order the non-temporal stores before anything that follows */
        return;
    }
    size_t p = 0;
    if (rows && use_tiles(count, len, x, y)) {
        for (; p + ROW_TILE <= count; p += ROW_TILE)
            rows_tile(len, x + p * x_stride, x_stride, y + p * y_stride, y_stride, a, b,
                      m, vlo, vhi, clamp, center);
    }
    for (; p < count; p++) {
        const float *ap = rows ? a : a + p, *bp = rows ? b : b + p;
        const float *mp = center ? (rows ? m : m + p) : NULL;
        __m256 va = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(ap);
        __m256 vb = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(bp);
        __m256 vm = rows || !center ? _mm256_setzero_ps() : _mm256_broadcast_ss(mp);
        span(len, x + p * x_stride, y + p * y_stride, ap, bp, mp, va, vb, vm, vlo, vhi,
             rows, clamp, false, center);
    }
}

/* Dense planes (apply_planes_dense): see dense.h. Streamed, planes shorter than
 * BNORM_STREAM_SPAN_MIN floats take the walk too, one stream of whole vectors on the
 * 32-byte grid: per plane, every one of them would start or end in part of a line.
 * Zen 4, 64 MiB streamed, planes of 49 floats: 3.4-3.7 ms walked, 8.0 per plane
 * (4.9 unstreamed); 196: equal; from 256 on four planes in lockstep win by 3-10%. */
ALWAYS_INLINE void dense(size_t count, size_t len, const float *x, float *y,
                         const float *a, const float *b, const float *m, __m256 lo,
                         __m256 hi, bool clamp, bool stream, bool center)
{
    dense_run r;
    dense_begin(&r, len, x, NULL, y, a, b, m, NULL, lo, hi, false, clamp, stream, center);
    for (size_t p = 0; p < count; p++)
        dense_plane(&r, p, p + 1 == count, false, clamp, center);
    dense_end(&r, false, clamp, center);
    if (stream)
        _mm_sfence();
}

/* One specialization per combination of the three flags (the switch below counts on
 * them being bits 0..2). */
#define KF_ALL (BNORM_KF_CLAMP | BNORM_KF_STREAM | BNORM_KF_CENTER)
_Static_assert(KF_ALL == 7, "apply flags must be bits 0..2");

#define CASE(rows, f)                                                               \
    case f:                                                                         \
        apply(count, len, x, xs, y, ys, a, b, m, lo, hi, rows,                     \
              ((f) & BNORM_KF_CLAMP) != 0, ((f) & BNORM_KF_STREAM) != 0,            \
              ((f) & BNORM_KF_CENTER) != 0);                                        \
        break;
#define DISPATCH(rows)                                                              \
    switch (flags & KF_ALL) {                                                       \
        CASE(rows, 0) CASE(rows, 1) CASE(rows, 2) CASE(rows, 3)                     \
        CASE(rows, 4) CASE(rows, 5) CASE(rows, 6) CASE(rows, 7)                     \
    }

void bnorm_f32_apply_planes__avx2(size_t count, size_t len, const float *x, size_t xs,
                                  float *y, size_t ys, const float *a, const float *b,
                                  const float *m, float lo, float hi, unsigned flags)
{
    DISPATCH(false)
}

/* Planes shorter than a vector, and long streamed planes (whose four lockstep runs
 * the per-plane path has), take apply_planes' loop. */
#define DENSE_CASE(f)                                                               \
    case f:                                                                         \
        dense(count, len, x, y, a, b, m, _mm256_set1_ps(lo), _mm256_set1_ps(hi),    \
              ((f) & BNORM_KF_CLAMP) != 0, ((f) & BNORM_KF_STREAM) != 0,            \
              ((f) & BNORM_KF_CENTER) != 0);                                        \
        break;

void bnorm_f32_apply_planes_dense__avx2(size_t count, size_t len, const float *x,
                                        size_t xs, float *y, size_t ys, const float *a,
                                        const float *b, const float *m, float lo, float hi,
                                        unsigned flags)
{
    if (len < 8 || ((flags & BNORM_KF_STREAM) && len >= BNORM_STREAM_SPAN_MIN)) {
        DISPATCH(false)
        return;
    }
    switch (flags & KF_ALL) {
        DENSE_CASE(0) DENSE_CASE(1) DENSE_CASE(2) DENSE_CASE(3)
        DENSE_CASE(4) DENSE_CASE(5) DENSE_CASE(6) DENSE_CASE(7)
    }
}

/* Every rows call but short_row's: not inlined, so that a short row does not set up
 * this body's frame (registers saved, the stack aligned for vectors kept across the
 * masked operations' cold calls). */
static __attribute__((noinline)) void
apply_rows_body(size_t count, size_t len, const float *x, size_t xs, float *y, size_t ys,
                const float *a, const float *b, const float *m, float lo, float hi,
                unsigned flags)
{
    DISPATCH(true)
}

/* One row shorter than ROW_HEAD_MIN, neither streamed nor centered (one small image's
 * inference: bnorm_apply_channels calls the kernel right away) is a few vectors, and
 * the call's fixed cost is most of its time. So it makes no call (which would cost
 * the frame of vectors kept across it) and no masked store (slow on Zen): its last
 * 1..7 floats are the last vector's, computed before any store (y may be x) and
 * stored last, over values equal to its own; only a row shorter than a vector is
 * masked, where its windows lie in their pages (in_pages). The values are span's,
 * bit for bit. Zen 4, bnorm_inference_apply 1x24x1x1 15.4 -> 10.1 ns a call
 * (1x17x1x1 19.1 -> 10.1), with the inlined call in bnorm_apply_channels. */
ALWAYS_INLINE __m256 short_value(__m256 x, __m256 a, __m256 b, __m256 lo, __m256 hi,
                                 bool clamp)
{
    return act(APPLY_VALUE(x, a, b, x, false), lo, hi, clamp); /* not centered: no m */
}

/* short_value of the 8 floats at x, a and b. */
ALWAYS_INLINE __m256 short_value_at(const float *x, const float *a, const float *b,
                                    __m256 lo, __m256 hi, bool clamp)
{
    return short_value(_mm256_loadu_ps(x), _mm256_loadu_ps(a), _mm256_loadu_ps(b), lo,
                       hi, clamp);
}

ALWAYS_INLINE void short_row(size_t len, const float *x, float *y, const float *a,
                             const float *b, float lo, float hi, bool clamp)
{
    __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    if (len < 8) {
        __m256i k = tail_mask(len);
        __m256 v = short_value(bnorm_maskload_in_page(x, k), bnorm_maskload_in_page(a, k),
                               bnorm_maskload_in_page(b, k), vlo, vhi, clamp);
        bnorm_maskstore_in_page(y, k, v);
        return;
    }
    size_t last = len - 8;
    __m256 v_last = short_value_at(x + last, a + last, b + last, vlo, vhi, clamp);
    for (size_t i = 0; i < last; i += 8)
        _mm256_storeu_ps(y + i, short_value_at(x + i, a + i, b + i, vlo, vhi, clamp));
    _mm256_storeu_ps(y + last, v_last);
}

/* Whether a row shorter than a vector lies in the pages of its four windows. */
ALWAYS_INLINE bool in_pages(size_t len, const float *x, const float *y, const float *a,
                            const float *b)
{
    size_t n = sizeof(__m256);
    return len >= 8 || !(bnorm_crosses_page(x, n) || bnorm_crosses_page(y, n) ||
                         bnorm_crosses_page(a, n) || bnorm_crosses_page(b, n));
}

void bnorm_f32_apply_rows__avx2(size_t count, size_t len, const float *x, size_t xs,
                                float *y, size_t ys, const float *a, const float *b,
                                const float *m, float lo, float hi, unsigned flags)
{
    if (count == 1 && len < ROW_HEAD_MIN &&
        !(flags & (BNORM_KF_STREAM | BNORM_KF_CENTER)) && in_pages(len, x, y, a, b)) {
        if (flags & BNORM_KF_CLAMP)
            short_row(len, x, y, a, b, lo, hi, true);
        else
            short_row(len, x, y, a, b, lo, hi, false);
        return;
    }
    apply_rows_body(count, len, x, xs, y, ys, a, b, m, lo, hi, flags);
}
