// The machine's bandwidth on each shape's bytes: glibc memcpy of x into y, and on x86
// a copy with non-temporal (streaming) stores, which is what a kernel whose output
// does not fit in the LLC can reach at best. Both count 8 bytes per element (4 read,
// 4 written), as inference does, so any row's GB/s divided by these is a fraction of
// the copy bandwidth of the same tensor.
#include <cstdint>
#include <cstring>

#include "common.h"

extern "C" {
#include "bnorm.h"
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BNORM_BENCH_STREAM_COPY 1
#else
#define BNORM_BENCH_STREAM_COPY 0
#endif

namespace bench {

namespace {

#if BNORM_BENCH_STREAM_COPY
// 32-byte non-temporal stores; the destination is aligned first, loads may be
// unaligned. Built for AVX by attribute only, called only when the CPU and OS run it.
__attribute__((target("avx"))) void stream_copy_avx(float *dst, const float *src, size_t n)
{
    size_t i = 0;
    while (i < n && (reinterpret_cast<uintptr_t>(dst + i) & 31) != 0) {
        dst[i] = src[i];
        i++;
    }
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_loadu_ps(src + i);
        __m256 b = _mm256_loadu_ps(src + i + 8);
        __m256 c = _mm256_loadu_ps(src + i + 16);
        __m256 d = _mm256_loadu_ps(src + i + 24);
        _mm256_stream_ps(dst + i, a);
        _mm256_stream_ps(dst + i + 8, b);
        _mm256_stream_ps(dst + i + 16, c);
        _mm256_stream_ps(dst + i + 24, d);
    }
    for (; i < n; i++)
        dst[i] = src[i];
    _mm_sfence();
}

// The same with 16-byte SSE2 stores (every x86-64 CPU).
void stream_copy_sse2(float *dst, const float *src, size_t n)
{
    size_t i = 0;
    while (i < n && (reinterpret_cast<uintptr_t>(dst + i) & 15) != 0) {
        dst[i] = src[i];
        i++;
    }
    for (; i + 16 <= n; i += 16) {
        __m128 a = _mm_loadu_ps(src + i);
        __m128 b = _mm_loadu_ps(src + i + 4);
        __m128 c = _mm_loadu_ps(src + i + 8);
        __m128 d = _mm_loadu_ps(src + i + 12);
        _mm_stream_ps(dst + i, a);
        _mm_stream_ps(dst + i + 4, b);
        _mm_stream_ps(dst + i + 8, c);
        _mm_stream_ps(dst + i + 12, d);
    }
    for (; i < n; i++)
        dst[i] = src[i];
    _mm_sfence();
}

using CopyFn = void (*)(float *, const float *, size_t);

CopyFn stream_copy()
{
    return (bnorm_cpu_features() & BNORM_CPU_AVX) ? stream_copy_avx : stream_copy_sse2;
}
#endif

// glibc's memcpy, as a copy function (a functor, so the call stays a direct one).
struct Memcpy {
    void operator()(float *dst, const float *src, size_t n) const
    {
        std::memcpy(dst, src, n * sizeof(float));
    }
};

template <typename Copy> void bm_copy(benchmark::State &st, Shape shape, Copy copy)
{
    Tensors *t = tensors(shape, 2);
    if (!t) {
        st.SkipWithError("cannot allocate the tensors");
        return;
    }
    float *x = t->buf[0], *y = t->buf[1];
    copy(y, x, t->elems);
    for (auto _ : st) {
        benchmark::DoNotOptimize(x);
        benchmark::DoNotOptimize(y);
        copy(y, x, t->elems);
        benchmark::ClobberMemory();
    }
    finish_row(st, shape, 8, 2);
}

} // namespace

void register_copy(const Shape &shape)
{
    benchmark::RegisterBenchmark(row_name("copy", "memcpy", shape).c_str(), bm_copy<Memcpy>,
                                 shape, Memcpy{});
#if BNORM_BENCH_STREAM_COPY
    benchmark::RegisterBenchmark(row_name("copy", "stream-copy", shape).c_str(),
                                 bm_copy<CopyFn>, shape, stream_copy());
#endif
}

} // namespace bench
