// bnorm-bench: bnorm's operations, every native kernel table and both layouts, next
// to memcpy, a streaming copy and oneDNN on the same tensors, for every shape of
// shapes.h and one DRAM-sized tensor derived from this machine's last-level cache.
//
//   bnorm-bench [--quick | --full] [Google Benchmark flags]
//
// --quick (the default): the pre-folded apply, inference without activation,
//   training forward and backward; --benchmark_min_time=0.05 unless given. About a
//   minute on a small machine.
// --full: also inference with ReLU and ReLU6; --benchmark_min_time=0.1 unless given.
//
// Rows of one shape are registered together (the shape's tensors are allocated once
// and reused by all of them); see common.h for the names and labels.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common.h"

extern "C" {
#include "bnorm.h"
}

#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#ifndef BNORM_BENCH_BUILDTYPE
#define BNORM_BENCH_BUILDTYPE "unknown"
#endif
#ifndef BNORM_BENCH_OPTIMIZATION
#define BNORM_BENCH_OPTIMIZATION "?"
#endif
#ifndef BNORM_BENCH_COMPILER
#define BNORM_BENCH_COMPILER "?"
#endif

namespace {

std::string cpu_model()
{
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0 || line.rfind("Model name", 0) == 0) {
            size_t colon = line.find(':');
            if (colon != std::string::npos)
                return line.substr(line.find_first_not_of(" \t", colon + 1));
        }
    }
    return "unknown";
}

void add_context(bool full, const std::vector<bench::Shape> &shapes)
{
    using benchmark::AddCustomContext;
    const bench::Caches &c = bench::caches();
    AddCustomContext("bnorm_mode", full ? "full" : "quick");
    AddCustomContext("bnorm_version", bnorm_version_string());
    AddCustomContext("bnorm_build", std::string("buildtype=") + BNORM_BENCH_BUILDTYPE +
                                        " optimization=" + BNORM_BENCH_OPTIMIZATION +
                                        " compiler=" + BNORM_BENCH_COMPILER);
    AddCustomContext("cpu_model", cpu_model());
    std::string features;
    uint32_t bits = bnorm_cpu_features();
    for (unsigned b = 0; b < 32; b++) {
        const char *name = bnorm_cpu_feature_name(1u << b);
        if (name && (bits & (1u << b)))
            features += (features.empty() ? "" : " ") + std::string(name);
    }
    AddCustomContext("cpu_features", features);
    AddCustomContext("bnorm_l1_bytes", std::to_string(c.l1));
    AddCustomContext("bnorm_l2_bytes", std::to_string(c.l2));
    AddCustomContext("bnorm_llc_bytes", std::to_string(c.llc));
    AddCustomContext("bnorm_tensor_offset_bytes",
                     std::to_string(bench::tensor_offset_bytes()));
    std::string s;
    for (const bench::Shape &sh : shapes)
        s += (s.empty() ? "" : ", ") + bench::shape_name(sh) + (sh.dram ? " (DRAM)" : "");
    AddCustomContext("bnorm_shapes", s);
    AddCustomContext("bnorm_bytes",
                     "minimal traffic per element: copy and inference 8, training_forward "
                     "12, training_backward 20; Gelem/s = elements per nanosecond; "
                     "the label's second field is the smallest cache level that holds "
                     "the row's tensors (DRAM: none)");
    AddCustomContext("bnorm_threads", "1 (every row runs on the calling thread), except "
                                       "the -1t and -2t rows: a pool of 1 or 2 OpenMP "
                                       "threads, wall-clock time");
    AddCustomContext("bnorm_hugepages",
                     bench::want_hugepages() ? "madvise(MADV_HUGEPAGE)" : "not requested");
    AddCustomContext("bnorm_note", "a 'Library was built as DEBUG' warning is about the "
                                   "installed libbenchmark, not bnorm");
#ifdef __GLIBC__
    AddCustomContext("glibc", gnu_get_libc_version());
#endif
    bench::context_bnorm();
    bench::context_onednn();
}

bool has_prefix(const char *s, const char *prefix)
{
    return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

} // namespace

int main(int argc, char **argv)
{
    // Our own flags out, a default min time in unless one is given.
    bool full = false, min_time_given = false;
    std::vector<char *> args;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && std::strcmp(argv[i], "--full") == 0) {
            full = true;
            continue;
        }
        if (i > 0 && std::strcmp(argv[i], "--quick") == 0) {
            full = false;
            continue;
        }
        if (has_prefix(argv[i], "--benchmark_min_time"))
            min_time_given = true;
        args.push_back(argv[i]);
    }
    static char quick_time[] = "--benchmark_min_time=0.05";
    static char full_time[] = "--benchmark_min_time=0.1";
    static char program[] = "bnorm-bench";
    if (args.empty())
        args.push_back(program);
    if (!min_time_given)
        args.insert(args.begin() + 1, full ? full_time : quick_time);
    int n = static_cast<int>(args.size());
    args.push_back(nullptr);

    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data()))
        return 1;

    bench::onednn_init();
    std::vector<bench::Shape> shapes = bench::fixed_shapes();
    // The DRAM row, unless a fixed shape already is that size (a 32 MiB LLC makes it
    // 1x64x512x512): then that shape is the DRAM row, not a second row of one name.
    bench::Shape dram = bench::dram_shape(bench::caches().llc);
    auto same = std::find_if(shapes.begin(), shapes.end(), [&](const bench::Shape &s) {
        return s.n == dram.n && s.c == dram.c && s.h == dram.h && s.w == dram.w;
    });
    if (same != shapes.end())
        same->dram = true;
    else
        shapes.push_back(dram);
    for (const bench::Shape &s : shapes) {
        bench::register_copy(s);
        bench::register_bnorm(s, full);
        bench::register_onednn(s, full);
    }
    add_context(full, shapes);

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    bench::free_tensors();
    return 0;
}
