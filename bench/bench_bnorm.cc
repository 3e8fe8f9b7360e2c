// bnorm's rows: every operation with every kernel table this CPU runs natively (the
// conformance harness's list, SIMDe translations left out), both layouts.
//
// apply              bnorm_inference_apply_with: scale and shift folded once outside
//                    the timed loop, as an engine does (gamma, beta stand in for them)
// inference*         bnorm_inference_with: the fold from running statistics and the
//                    apply, the same inputs oneDNN's inference takes
// training_forward   bnorm_training_forward_with: batch statistics, saved mean and
//                    1/std, no running update
// training_backward  bnorm_training_backward_with: dx (into its own buffer), dgamma
//                    and dbeta from saved statistics
#include <algorithm>
#include <string>
#include <vector>

#include "common.h"

extern "C" {
#include "dispatch.h"
#include "kernels.h"
#include "ops.h"
}
#include "conformance.h"
#if BNORM_BENCH_HAVE_OPENMP
#include "bnorm_openmp.h"
#endif

namespace bench {

namespace {

struct Table {
    std::string label;
    const bnorm_kernels *k;
};

const std::vector<Table> &native_tables()
{
    static const std::vector<Table> tables = [] {
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
    }();
    return tables;
}

const char *layout_name(bnorm_layout l)
{
    return l == BNORM_NCHW ? "nchw" : "nhwc";
}

bnorm_activation activation(Op op)
{
    switch (op) {
    case Op::inference_relu:
        return {BNORM_ACT_RELU, 0.0f, 0.0f};
    case Op::inference_relu6:
        return {BNORM_ACT_CLAMP, 0.0f, 6.0f};
    default:
        return {BNORM_ACT_NONE, 0.0f, 0.0f};
    }
}

bnorm_status run_once(const bnorm_kernels *k, const OpInfo &op, const bnorm_shape &sh,
                      Tensors *t, const bnorm_activation &act)
{
    switch (op.op) {
    case Op::apply:
        return bnorm_inference_apply_with(k, &sh, t->buf[0], nullptr, t->buf[1], nullptr,
                                          t->gamma, t->beta, &act);
    case Op::training_forward:
        return bnorm_training_forward_with(k, &sh, t->buf[0], nullptr, t->buf[1], nullptr,
                                           t->gamma, t->beta, 1e-5f, t->out_c1,
                                           t->out_c2, nullptr);
    case Op::training_backward:
        return bnorm_training_backward_with(k, &sh, t->buf[0], nullptr, t->buf[1],
                                            nullptr, t->gamma, t->save_mean,
                                            t->save_invstd, t->buf[2], nullptr, t->out_c1,
                                            t->out_c2);
    default:
        return bnorm_inference_with(k, &sh, t->buf[0], nullptr, t->buf[1], nullptr,
                                    t->gamma, t->beta, t->mean, t->var, 1e-5f, &act);
    }
}

void bm_bnorm(benchmark::State &st, const bnorm_kernels *k, OpInfo op, bnorm_layout layout,
              Shape shape)
{
    Tensors *t = tensors(shape, op.buffers);
    if (!t) {
        st.SkipWithError("cannot allocate the tensors");
        return;
    }
    bnorm_shape sh = {shape.n, shape.c, shape.spatial(), layout};
    bnorm_activation act = activation(op.op);
    // One call outside the timed loop: a refused call is reported, not timed.
    bnorm_status status = run_once(k, op, sh, t, act);
    if (status != BNORM_OK) {
        st.SkipWithError(bnorm_status_name(status));
        return;
    }
    for (auto _ : st) {
        bnorm_status s = run_once(k, op, sh, t, act);
        benchmark::DoNotOptimize(s);
        benchmark::ClobberMemory();
    }
    finish_row(st, shape, op.bytes_per_elem, op.buffers);
}

#if BNORM_BENCH_HAVE_OPENMP
// The same operation with the work spread over `threads` OpenMP threads through
// bnorm's adapter (the results are bit-identical to one thread; tests/test_parallel.c).
void bm_bnorm_threads(benchmark::State &st, const bnorm_kernels *k, OpInfo op,
                      bnorm_layout layout, Shape shape, int threads)
{
    bnorm_set_parallel_for(bnorm_openmp_parallel_for, &threads);
    bm_bnorm(st, k, op, layout, shape);
    bnorm_set_parallel_for(nullptr, nullptr);
}
#endif

// Adds the "max" aggregate (of every value: its bytes_per_second is the best
// repetition's rate) that the report's two-thread table reads beside the median.
benchmark::internal::Benchmark *with_max(benchmark::internal::Benchmark *b)
{
    return b->ComputeStatistics("max", [](const std::vector<double> &v) {
        return *std::max_element(v.begin(), v.end());
    });
}

} // namespace

void register_bnorm(const Shape &shape, bool full)
{
    const bnorm_layout layouts[] = {BNORM_NCHW, BNORM_NHWC};
    for (const OpInfo &op : ops()) {
        if ((!full && !op.quick) || !op_applies(op.op, shape))
            continue;
        for (const Table &t : native_tables()) {
            for (bnorm_layout l : layouts) {
                std::string impl = "bnorm-" + t.label + "-" + layout_name(l);
                std::string name = row_name(op.name, impl, shape);
                with_max(benchmark::RegisterBenchmark(name.c_str(), bm_bnorm, t.k, op, l,
                                                      shape));
            }
        }
#if BNORM_BENCH_HAVE_OPENMP
        // Two threads, active ISA, for the apply, the inference from running statistics
        // and training; training also through a pool of one thread, the wall-clock
        // baseline of its two-thread rows.
        bool training = is_training(op.op);
        if (op.op != Op::apply && op.op != Op::inference && !training)
            continue;
        const bnorm_kernels *k = bnorm_active_kernels();
        for (bnorm_layout l : layouts) {
            for (int threads = training ? 1 : 2; threads <= 2; threads++) {
                std::string impl = std::string("bnorm-") + k->name + "-" + layout_name(l) +
                                   "-" + std::to_string(threads) + "t";
                // Wall-clock time: CPU time would count the calling thread only.
                std::string name = row_name(op.name, impl, shape);
                with_max(benchmark::RegisterBenchmark(name.c_str(), bm_bnorm_threads, k, op,
                                                      l, shape, threads))
                    ->UseRealTime();
            }
        }
#endif
    }
}

void context_bnorm()
{
    std::string names;
    for (const Table &t : native_tables())
        names += (names.empty() ? "" : ", ") + t.label;
    benchmark::AddCustomContext("bnorm_tables", names + " (native; active: " +
                                                    bnorm_active_kernels()->name + ")");
    benchmark::AddCustomContext("bnorm_stream_threshold_bytes",
                                std::to_string(bnorm_stream_threshold()));
}

} // namespace bench
