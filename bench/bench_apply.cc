// Inference apply (y = act(x * scale[c] + shift[c])), training forward and training
// backward for every kernel table this CPU runs natively, both layouts, at three
// sizes derived from this machine's caches, next to memcpy in the same run.
//
// Every row counts the minimal traffic: apply and memcpy 8 bytes per element (read
// x, write y), training forward 12 (x twice, y once), backward 20 (x and dy twice,
// dx once). bytes_per_second of a row divided by that of the memcpy row of the same
// size is the fraction of the machine's copy bandwidth the operation reaches.
//
// Sizes (x + y together, per row):
//   L1    about half of the L1 data cache
//   L2    about half of the L2 cache
//   DRAM  at least 4 x the last-level cache (each buffer capped at 2 GiB)
// The shape is N = 1, C = 64, spatial = elements / 64, so NCHW and NHWC rows are the
// same logical tensor; elements is a multiple of 64 * 8 so every NCHW plane is whole
// vectors. Buffers are allocated, filled (every page touched) and reused outside the
// timed loop; the DRAM tensor is far larger than the LLC, so no rotation is needed.
//
// Environment: BNORM_BENCH_HUGEPAGES=1 asks for transparent huge pages
// (madvise(MADV_HUGEPAGE)) on the buffers; by default they are plain mmap pages, as
// malloc would give them.

#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

// These internal headers have no C++ guards of their own.
extern "C" {
#include "dispatch.h"
#include "kernels.h"
#include "ops.h"
}
#include "conformance.h"

#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#ifndef BNORM_BENCH_BUILDTYPE
#define BNORM_BENCH_BUILDTYPE "unknown"
#endif
#ifndef BNORM_BENCH_OPTIMIZATION
#define BNORM_BENCH_OPTIMIZATION "?"
#endif

namespace {

constexpr size_t kChannels = 64;
constexpr size_t kElemQuantum = kChannels * 8; // whole AVX2 vectors per NCHW plane
constexpr size_t kBytesPerElem = 8;            // 4 read + 4 written
constexpr size_t kMaxBufferBytes = size_t{2} << 30;

// ---- kernel tables ------------------------------------------------------------------

struct Table {
    std::string label;
    const bnorm_kernels *k;
};

// The tables this CPU executes natively (no SIMDe translations).
std::vector<Table> native_tables()
{
    std::vector<Table> out;
    bnorm_conf_table t[32];
    size_t n = bnorm_conf_tables(t, sizeof t / sizeof t[0]);
    if (n > sizeof t / sizeof t[0])
        n = sizeof t / sizeof t[0];
    for (size_t i = 0; i < n; i++) {
        if (t[i].runnable && !t[i].emulated)
            out.push_back({t[i].label, t[i].k});
    }
    return out;
}

// ---- sizes --------------------------------------------------------------------------

size_t cache_bytes(int name, size_t fallback)
{
    long v = sysconf(name);
    return v > 0 ? static_cast<size_t>(v) : fallback;
}

struct SizeClass {
    const char *name;
    size_t elems; // per buffer
};

size_t round_down_elems(size_t bytes_per_buffer)
{
    size_t e = bytes_per_buffer / sizeof(float) / kElemQuantum * kElemQuantum;
    return e ? e : kElemQuantum;
}

size_t round_up_elems(size_t bytes_per_buffer)
{
    size_t e = (bytes_per_buffer / sizeof(float) + kElemQuantum - 1) / kElemQuantum *
               kElemQuantum;
    size_t cap = kMaxBufferBytes / sizeof(float);
    return e < cap ? e : cap;
}

struct Caches {
    size_t l1, l2, l3;
};

Caches detect_caches()
{
    Caches c;
    c.l1 = cache_bytes(_SC_LEVEL1_DCACHE_SIZE, size_t{32} << 10);
    c.l2 = cache_bytes(_SC_LEVEL2_CACHE_SIZE, size_t{1} << 20);
    c.l3 = cache_bytes(_SC_LEVEL3_CACHE_SIZE, 0);
    if (c.l3 == 0) // no L3 reported: the L2 is the last level, or assume 32 MiB
        c.l3 = c.l2 > (size_t{32} << 20) ? c.l2 : size_t{32} << 20;
    return c;
}

std::vector<SizeClass> size_classes(const Caches &c)
{
    // x + y = half the cache: each buffer a quarter.
    return {
        {"L1", round_down_elems(c.l1 / 4)},
        {"L2", round_down_elems(c.l2 / 4)},
        {"DRAM", round_up_elems(c.l3 * 4 / 2)},
    };
}

// ---- buffers ------------------------------------------------------------------------

bool want_hugepages()
{
    const char *e = std::getenv("BNORM_BENCH_HUGEPAGES");
    return e && *e && std::strcmp(e, "0") != 0;
}

struct Buffers {
    float *x = nullptr;
    float *y = nullptr;
    size_t elems = 0;
    size_t map_bytes = 0;
};

float *map_floats(size_t elems, size_t *map_bytes)
{
    size_t page = size_t{2} << 20;
    size_t bytes = (elems * sizeof(float) + page - 1) / page * page;
    void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return nullptr;
#ifdef MADV_HUGEPAGE
    if (want_hugepages())
        madvise(p, bytes, MADV_HUGEPAGE);
#endif
    *map_bytes = bytes;
    return static_cast<float *>(p);
}

// Finite values in [-4, 4): random enough that nothing is constant or compressible.
void fill(float *p, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t r = s * 0x2545F4914F6CDD1Dull;
        p[i] = static_cast<float>(r >> 40) * (8.0f / 16777216.0f) - 4.0f;
    }
}

std::vector<Buffers> g_buffers; // one per size class, allocated on first use
float g_scale[kChannels], g_shift[kChannels];

// The buffers of size class i, allocated and filled on first use (outside any timed
// region). Returns nullptr if memory cannot be had.
Buffers *buffers(size_t i, size_t elems)
{
    Buffers &b = g_buffers[i];
    if (b.x)
        return &b;
    size_t mx = 0, my = 0;
    b.x = map_floats(elems, &mx);
    b.y = map_floats(elems, &my);
    if (!b.x || !b.y) {
        if (b.x)
            munmap(b.x, mx);
        if (b.y)
            munmap(b.y, my);
        b.x = b.y = nullptr;
        return nullptr;
    }
    b.elems = elems;
    b.map_bytes = mx;
    fill(b.x, elems, 1 + i);
    fill(b.y, elems, 100 + i);
    return &b;
}

void free_buffers()
{
    for (Buffers &b : g_buffers) {
        if (b.x) {
            munmap(b.x, b.map_bytes);
            munmap(b.y, b.map_bytes);
        }
        b = Buffers();
    }
}

void set_counters(benchmark::State &st, size_t elems, size_t bytes_per_elem = kBytesPerElem)
{
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) *
                         static_cast<int64_t>(elems * bytes_per_elem));
    st.counters["Gelem"] = benchmark::Counter(static_cast<double>(elems) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

std::string size_label(size_t elems)
{
    char s[96];
    double kib = static_cast<double>(elems * sizeof(float)) / 1024.0;
    if (kib < 1024.0)
        std::snprintf(s, sizeof s, "HW=%zu %.0fKiB/buf", elems / kChannels, kib);
    else
        std::snprintf(s, sizeof s, "HW=%zu %.0fMiB/buf", elems / kChannels, kib / 1024.0);
    return s;
}

// ---- the benchmarks -----------------------------------------------------------------

void bm_apply(benchmark::State &st, const bnorm_kernels *k, bnorm_layout layout,
              bnorm_act_kind act_kind, size_t size_index, size_t elems)
{
    Buffers *b = buffers(size_index, elems);
    if (!b) {
        st.SkipWithError("cannot allocate the buffers");
        return;
    }
    bnorm_shape shape = {1, kChannels, elems / kChannels, layout};
    bnorm_activation act = {act_kind, 0.0f, 0.0f};
    bnorm_status status = BNORM_OK;
    for (auto _ : st) {
        bnorm_status s = bnorm_inference_apply_with(k, &shape, b->x, nullptr, b->y,
                                                    nullptr, g_scale, g_shift, &act);
        benchmark::DoNotOptimize(s);
        benchmark::ClobberMemory();
        status = s;
    }
    if (status != BNORM_OK) {
        st.SkipWithError(bnorm_status_name(status));
        return;
    }
    set_counters(st, elems);
    st.SetLabel(size_label(elems));
}

// Training forward: statistics pass and apply pass; minimal traffic 12 B/element
// (x read twice, y written once).
void bm_forward(benchmark::State &st, const bnorm_kernels *k, bnorm_layout layout,
                size_t size_index, size_t elems)
{
    Buffers *b = buffers(size_index, elems);
    if (!b) {
        st.SkipWithError("cannot allocate the buffers");
        return;
    }
    bnorm_shape shape = {1, kChannels, elems / kChannels, layout};
    float mean[kChannels], invstd[kChannels];
    bnorm_status status = BNORM_OK;
    for (auto _ : st) {
        status = bnorm_training_forward_with(k, &shape, b->x, nullptr, b->y, nullptr,
                                             g_scale, g_shift, 1e-5f, mean, invstd, nullptr);
        benchmark::DoNotOptimize(status);
        benchmark::ClobberMemory();
    }
    if (status != BNORM_OK) {
        st.SkipWithError(bnorm_status_name(status));
        return;
    }
    set_counters(st, elems, 12);
    st.SetLabel(size_label(elems));
}

// Training backward, dx written over dy: minimal traffic 20 B/element (x and dy read
// twice, dx written once).
//
// Repeating dy <- dx(dy) is a linear map: dx = gamma * invstd * P(dy), P removing the
// channel's mean and its component along x. With gamma * invstd < 1 the values shrink
// every iteration until they are subnormal floats, and the row then measures
// microcode assists instead of the kernels (about 6x slower on x86). gamma = 1 /
// invstd (2 * 0.5, exactly 1) makes the map idempotent up to rounding: after the
// first call dy stays O(1), every later call does the same work on normal floats.
void bm_backward(benchmark::State &st, const bnorm_kernels *k, bnorm_layout layout,
                 size_t size_index, size_t elems)
{
    Buffers *b = buffers(size_index, elems);
    if (!b) {
        st.SkipWithError("cannot allocate the buffers");
        return;
    }
    bnorm_shape shape = {1, kChannels, elems / kChannels, layout};
    float mean[kChannels], invstd[kChannels], gamma[kChannels], dgamma[kChannels],
        dbeta[kChannels];
    for (size_t i = 0; i < kChannels; i++) {
        mean[i] = 0.0f;
        invstd[i] = 0.5f; // x is uniform in [-4, 4): about 1 / its deviation
        gamma[i] = 2.0f;  // gamma * invstd == 1: see above
    }
    bnorm_status status = BNORM_OK;
    for (auto _ : st) {
        status = bnorm_training_backward_with(k, &shape, b->x, nullptr, b->y, nullptr,
                                              gamma, mean, invstd, b->y, nullptr, dgamma,
                                              dbeta);
        benchmark::DoNotOptimize(status);
        benchmark::ClobberMemory();
    }
    if (status != BNORM_OK) {
        st.SkipWithError(bnorm_status_name(status));
        return;
    }
    set_counters(st, elems, 20);
    st.SetLabel(size_label(elems));
}

void bm_memcpy(benchmark::State &st, size_t size_index, size_t elems)
{
    Buffers *b = buffers(size_index, elems);
    if (!b) {
        st.SkipWithError("cannot allocate the buffers");
        return;
    }
    float *x = b->x, *y = b->y;
    size_t bytes = elems * sizeof(float);
    for (auto _ : st) {
        benchmark::DoNotOptimize(x);
        benchmark::DoNotOptimize(y);
        std::memcpy(y, x, bytes);
        benchmark::ClobberMemory();
    }
    set_counters(st, elems);
    st.SetLabel(size_label(elems));
}

const char *layout_name(bnorm_layout l)
{
    return l == BNORM_NCHW ? "nchw" : "nhwc";
}

std::string kib(size_t bytes)
{
    return std::to_string(bytes >> 10) + " KiB";
}

void add_context(const Caches &c, const std::vector<SizeClass> &sizes,
                 const std::vector<Table> &tables)
{
    benchmark::AddCustomContext(
        "bnorm_build", std::string("buildtype=") + BNORM_BENCH_BUILDTYPE +
                           " optimization=" + BNORM_BENCH_OPTIMIZATION);
    benchmark::AddCustomContext(
        "bnorm_scalar",
        std::string("'scalar' is portable C built with the project's C flags for this "
                    "build (-O") +
            BNORM_BENCH_OPTIMIZATION +
            ", -ffp-contract=off) and the baseline ISA only: the compiler may "
            "auto-vectorize it (SSE2 on x86-64)");
    std::string t;
    for (const Table &tb : tables)
        t += (t.empty() ? "" : ", ") + tb.label;
    benchmark::AddCustomContext("bnorm_tables", t + " (native; active: " +
                                                    bnorm_active_kernels()->name + ")");
    benchmark::AddCustomContext("bnorm_caches", "L1d " + kib(c.l1) + ", L2 " + kib(c.l2) +
                                                    ", L3 " + kib(c.l3));
    std::string s;
    for (const SizeClass &sc : sizes) {
        s += (s.empty() ? "" : "; ") + std::string(sc.name) + " " +
             std::to_string(sc.elems) + " elems = " + kib(sc.elems * sizeof(float)) +
             "/buffer";
    }
    benchmark::AddCustomContext("bnorm_sizes", s + " (N=1 C=64, x and y each)");
    benchmark::AddCustomContext("bnorm_bytes", "8 per element (4 read + 4 written), "
                                               "apply and memcpy alike; Gelem/s = "
                                               "elements per ns");
    benchmark::AddCustomContext("bnorm_note", "a 'Library was built as DEBUG' warning "
                                              "is about the installed libbenchmark, "
                                              "not bnorm");
    benchmark::AddCustomContext(
        "bnorm_stream", "outputs >= " + kib(bnorm_stream_threshold()) +
                            " are written with non-temporal stores");
    benchmark::AddCustomContext("bnorm_hugepages",
                                want_hugepages() ? "madvise(MADV_HUGEPAGE)" : "not requested");
#ifdef __GLIBC__
    benchmark::AddCustomContext("glibc", gnu_get_libc_version());
#endif
}

} // namespace

int main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;

    for (size_t i = 0; i < kChannels; i++) {
        g_scale[i] = 0.5f + static_cast<float>(i) / kChannels;
        g_shift[i] = static_cast<float>(i % 7) * 0.25f - 0.75f;
    }

    Caches caches = detect_caches();
    std::vector<SizeClass> sizes = size_classes(caches);
    std::vector<Table> tables = native_tables();
    const bnorm_kernels *active = bnorm_active_kernels();
    g_buffers.resize(sizes.size());

    const bnorm_layout layouts[] = {BNORM_NCHW, BNORM_NHWC};
    for (size_t si = 0; si < sizes.size(); si++) {
        const SizeClass sc = sizes[si];
        std::string suffix = std::string("/") + sc.name;
        benchmark::RegisterBenchmark(("memcpy" + suffix).c_str(), bm_memcpy, si, sc.elems);
        for (bnorm_layout l : layouts) {
            for (const Table &t : tables) {
                std::string name = "apply/" + t.label + "/" + layout_name(l) + suffix;
                benchmark::RegisterBenchmark(name.c_str(), bm_apply, t.k, l, BNORM_ACT_NONE,
                                             si, sc.elems);
            }
        }
        for (bnorm_layout l : layouts) {
            for (const Table &t : tables) {
                std::string tail = t.label + "/" + layout_name(l) + suffix;
                benchmark::RegisterBenchmark(("train_fwd/" + tail).c_str(), bm_forward, t.k,
                                             l, si, sc.elems);
                benchmark::RegisterBenchmark(("train_bwd/" + tail).c_str(), bm_backward, t.k,
                                             l, si, sc.elems);
            }
        }
        std::string relu = std::string("apply_relu/") + active->name + "/nchw" + suffix;
        benchmark::RegisterBenchmark(relu.c_str(), bm_apply, active, BNORM_NCHW,
                                     BNORM_ACT_RELU, si, sc.elems);
    }

    add_context(caches, sizes, tables);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    free_buffers();
    return 0;
}
