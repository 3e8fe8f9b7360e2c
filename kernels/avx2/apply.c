/*
 * Affine apply, AVX2+FMA: y = act(fma(x, a, b)), one rounding.
 *
 * Each span (one plane or one row) runs 4 vectors (32 floats) per iteration so that
 * loads, FMAs and stores overlap, then single vectors, then one masked vector for the
 * last 1..7 floats (vmaskmov neither faults nor writes outside the mask, so nothing
 * past the span is touched). With BNORM_KF_STREAM the output is written with
 * non-temporal stores: a masked head first brings y to a 32-byte boundary.
 */
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* mask(n) = first n lanes set: an unaligned load from mask_src + 8 - n. */
static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                     0,  0,  0,  0,  0,  0,  0,  0};

ALWAYS_INLINE __m256i tail_mask(size_t n)
{
    return _mm256_loadu_si256((const __m256i *)(mask_src + 8 - n));
}

ALWAYS_INLINE __m256 act(__m256 v, __m256 lo, __m256 hi, bool clamp)
{
    if (clamp) {
        /* maxps/minps return their second operand when either is NaN: v. */
        v = _mm256_max_ps(lo, v);
        v = _mm256_min_ps(hi, v);
    }
    return v;
}

ALWAYS_INLINE void store(float *p, __m256 v, bool stream)
{
    if (stream)
        _mm256_stream_ps(p, v);
    else
        _mm256_storeu_ps(p, v);
}

/* rows: a and b are loaded per element; planes: va and vb are the broadcasts. */
ALWAYS_INLINE void span(size_t len, const float *x, float *y, const float *a,
                        const float *b, __m256 va, __m256 vb, __m256 lo, __m256 hi,
                        bool rows, bool clamp, bool stream)
{
#define A(i) (rows ? _mm256_loadu_ps(a + (i)) : va)
#define B(i) (rows ? _mm256_loadu_ps(b + (i)) : vb)
#define AM(i, m) (rows ? _mm256_maskload_ps(a + (i), m) : va)
#define BM(i, m) (rows ? _mm256_maskload_ps(b + (i), m) : vb)
    size_t i = 0;
    if (stream) {
        size_t head = ((32 - ((uintptr_t)y & 31)) & 31) / sizeof(float);
        if (head > len)
            head = len;
        if (head) {
            __m256i m = tail_mask(head);
            __m256 v = _mm256_fmadd_ps(_mm256_maskload_ps(x, m), AM(0, m), BM(0, m));
            _mm256_maskstore_ps(y, m, act(v, lo, hi, clamp));
            i = head;
        }
    }
    for (; i + 32 <= len; i += 32) {
        __m256 v0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), A(i), B(i));
        __m256 v1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), A(i + 8), B(i + 8));
        __m256 v2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), A(i + 16), B(i + 16));
        __m256 v3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), A(i + 24), B(i + 24));
        store(y + i, act(v0, lo, hi, clamp), stream);
        store(y + i + 8, act(v1, lo, hi, clamp), stream);
        store(y + i + 16, act(v2, lo, hi, clamp), stream);
        store(y + i + 24, act(v3, lo, hi, clamp), stream);
    }
    for (; i + 8 <= len; i += 8) {
        __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), A(i), B(i));
        store(y + i, act(v, lo, hi, clamp), stream);
    }
    if (i < len) {
        __m256i m = tail_mask(len - i);
        __m256 v = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), AM(i, m), BM(i, m));
        _mm256_maskstore_ps(y + i, m, act(v, lo, hi, clamp));
    }
#undef A
#undef B
#undef AM
#undef BM
}

ALWAYS_INLINE void apply(size_t count, size_t len, const float *x, size_t x_stride,
                         float *y, size_t y_stride, const float *a, const float *b,
                         float lo, float hi, bool rows, bool clamp, bool stream)
{
    __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    for (size_t p = 0; p < count; p++) {
        const float *ap = rows ? a : a + p, *bp = rows ? b : b + p;
        __m256 va = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(ap);
        __m256 vb = rows ? _mm256_setzero_ps() : _mm256_broadcast_ss(bp);
        span(len, x + p * x_stride, y + p * y_stride, ap, bp, va, vb, vlo, vhi, rows,
             clamp, stream);
    }
    if (stream)
        _mm_sfence(); /* order the non-temporal stores before anything that follows */
}

/* One specialization per (clamp, stream): the flags never reach the inner loops. */
#define DISPATCH(rows)                                                              \
    switch (flags & (BNORM_KF_CLAMP | BNORM_KF_STREAM)) {                          \
    case 0:                                                                         \
        apply(count, len, x, xs, y, ys, a, b, lo, hi, rows, false, false);          \
        break;                                                                      \
    case BNORM_KF_CLAMP:                                                            \
        apply(count, len, x, xs, y, ys, a, b, lo, hi, rows, true, false);           \
        break;                                                                      \
    case BNORM_KF_STREAM:                                                           \
        apply(count, len, x, xs, y, ys, a, b, lo, hi, rows, false, true);           \
        break;                                                                      \
    default:                                                                        \
        apply(count, len, x, xs, y, ys, a, b, lo, hi, rows, true, true);            \
        break;                                                                      \
    }

void bnorm_f32_apply_planes__avx2(size_t count, size_t len, const float *x, size_t xs,
                                  float *y, size_t ys, const float *a, const float *b,
                                  float lo, float hi, unsigned flags)
{
    DISPATCH(false)
}

void bnorm_f32_apply_rows__avx2(size_t count, size_t len, const float *x, size_t xs,
                                float *y, size_t ys, const float *a, const float *b,
                                float lo, float hi, unsigned flags)
{
    DISPATCH(true)
}
