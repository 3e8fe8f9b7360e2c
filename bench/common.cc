// Caches, tensors, counters and names shared by every part of the suite.
#include "common.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" {
#include "dispatch.h"
}

namespace bench {

namespace {

size_t sysconf_bytes(int name, size_t fallback)
{
    long v = sysconf(name);
    return v > 0 ? static_cast<size_t>(v) : fallback;
}

size_t map_size(size_t elems)
{
    const size_t page = size_t{2} << 20;
    return (elems * sizeof(float) + page - 1) / page * page;
}

size_t offset_floats()
{
    return tensor_offset_bytes() / sizeof(float);
}

float *map_floats(size_t elems)
{
    size_t bytes = map_size(elems + offset_floats());
    void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return nullptr;
#ifdef MADV_HUGEPAGE
    if (want_hugepages())
        madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return static_cast<float *>(p) + offset_floats();
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

struct Held {
    bool valid = false;
    size_t n = 0, c = 0, spatial = 0;
    Tensors t{};
    std::vector<float> channel[9];
};

Held g_held;

bool same_shape(const Held &h, const Shape &s)
{
    return h.valid && h.n == s.n && h.c == s.c && h.spatial == s.spatial();
}

} // namespace

bool want_hugepages()
{
    const char *e = std::getenv("BNORM_BENCH_HUGEPAGES");
    return e && *e && std::strcmp(e, "0") != 0;
}

size_t tensor_offset_bytes()
{
    static const size_t offset = [] {
        const char *e = std::getenv("BNORM_BENCH_OFFSET");
        size_t v = e ? std::strtoul(e, nullptr, 10) : 0;
        return v < 4096 ? v / sizeof(float) * sizeof(float) : 0;
    }();
    return offset;
}

const Caches &caches()
{
    static const Caches c = [] {
        Caches r;
        r.l1 = sysconf_bytes(_SC_LEVEL1_DCACHE_SIZE, size_t{32} << 10);
        r.l2 = bnorm_detect_l2_bytes();
        if (r.l2 == 0)
            r.l2 = size_t{1} << 20;
        r.llc = bnorm_detect_llc_bytes();
        if (r.llc == 0) // nothing reported: assume 32 MiB
            r.llc = size_t{32} << 20;
        return r;
    }();
    return c;
}

const char *cache_level(size_t footprint_bytes)
{
    const Caches &c = caches();
    if (footprint_bytes <= c.l1)
        return "L1";
    if (footprint_bytes <= c.l2)
        return "L2";
    if (footprint_bytes <= c.llc)
        return "LLC";
    return "DRAM";
}

void free_tensors()
{
    Held &h = g_held;
    for (float *&b : h.t.buf) {
        if (b)
            munmap(b - offset_floats(), map_size(h.t.elems + offset_floats()));
        b = nullptr;
    }
    for (std::vector<float> &v : h.channel)
        std::vector<float>().swap(v);
    h.valid = false;
}

Tensors *tensors(const Shape &shape, size_t count)
{
    Held &h = g_held;
    if (!same_shape(h, shape)) {
        free_tensors();
        h.valid = true;
        h.n = shape.n;
        h.c = shape.c;
        h.spatial = shape.spatial();
        h.t.elems = shape.elems();
        size_t c = shape.c;
        for (std::vector<float> &v : h.channel)
            v.assign(c, 0.0f);
        const float invstd = 0.433f; // x is uniform in [-4, 4): variance 16/3
        for (size_t i = 0; i < c; i++) {
            h.channel[0][i] = 0.5f + static_cast<float>(i % 64) / 64.0f; // gamma
            h.channel[1][i] = static_cast<float>(i % 7) * 0.25f - 0.75f;  // beta
            h.channel[2][i] = static_cast<float>(i % 5) * 0.1f - 0.2f;    // mean
            h.channel[3][i] = 1.0f + static_cast<float>(i % 3) * 0.5f;    // var
            h.channel[4][i] = 0.0f;                                        // save_mean
            h.channel[5][i] = invstd;                                      // save_invstd
            h.channel[8][i] = 1.0f / (invstd * invstd) - 1e-5f;            // save_var
        }
        Tensors &t = h.t;
        t.gamma = h.channel[0].data();
        t.beta = h.channel[1].data();
        t.mean = h.channel[2].data();
        t.var = h.channel[3].data();
        t.save_mean = h.channel[4].data();
        t.save_invstd = h.channel[5].data();
        t.out_c1 = h.channel[6].data();
        t.out_c2 = h.channel[7].data();
        t.save_var = h.channel[8].data();
    }
    for (size_t i = 0; i < count && i < 3; i++) {
        if (h.t.buf[i])
            continue;
        h.t.buf[i] = map_floats(h.t.elems);
        if (!h.t.buf[i])
            return nullptr;
        fill(h.t.buf[i], h.t.elems, 1 + i);
    }
    return &h.t;
}

void finish_row(benchmark::State &st, const Shape &shape, size_t bytes_per_elem,
                size_t buffers, const std::string &note)
{
    size_t elems = shape.elems();
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) *
                         static_cast<int64_t>(elems * bytes_per_elem));
    st.counters["Gelem"] = benchmark::Counter(
        static_cast<double>(elems) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    st.SetLabel(std::string(shape.role) + ";" +
                cache_level(buffers * elems * sizeof(float)) +
                (note.empty() ? "" : ";" + note));
}

std::string row_name(const char *op, const std::string &impl, const Shape &shape)
{
    return std::string(op) + "/" + impl + "/" + shape_name(shape);
}

} // namespace bench
