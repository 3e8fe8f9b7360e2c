// oneDNN's batch_normalization on the same tensors, where oneDNN was found at build
// time (BNORM_BENCH_HAVE_ONEDNN): formats nchw, nhwc and nChw8c (oneDNN's AVX2
// blocking), and nChw16c (its AVX-512 blocking) where oneDNN runs AVX-512 code (the
// CPU has it, and ONEDNN_MAX_CPU_ISA does not cap it below); one thread, the
// primitive cache off.
//
// inference*         forward_inference, use_global_stats | use_scale | use_shift
//                    (+ fuse_norm_relu for ReLU; oneDNN has no fused clamp, so
//                    inference_relu6 has no oneDNN row)
// training_forward   forward_training, use_scale | use_shift (mean and variance out)
// training_backward  backward, use_scale | use_shift: diff_src into its own buffer,
//                    diff_scale and diff_shift
//
// Everything but execute() + wait() happens outside the timed loop: engine, stream,
// primitive descriptor and primitive creation, and for a blocked format whose block
// does not divide C the reorder of the inputs into the padded layout (a user of that
// format already has the data in it). Where the blocked layout has no padding the
// buffers are used as they are: random values in nChw8c order are as good an input
// as random values in nchw order.
//
// The primitive cache is off: for spatial == 1 the nchw and nhwc descriptors are
// equal, and a cache would hand back whichever primitive was made first.
#include "common.h"

#if BNORM_BENCH_HAVE_ONEDNN

#include <dlfcn.h>

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace bench {

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using flags = dnnl::normalization_flags;

enum class Fmt { nchw, nhwc, nChw8c, nChw16c };

const char *fmt_name(Fmt f)
{
    switch (f) {
    case Fmt::nchw:
        return "nchw";
    case Fmt::nhwc:
        return "nhwc";
    case Fmt::nChw8c:
        return "nChw8c";
    default:
        return "nChw16c";
    }
}

tag fmt_tag(Fmt f)
{
    switch (f) {
    case Fmt::nchw:
        return tag::nchw;
    case Fmt::nhwc:
        return tag::nhwc;
    case Fmt::nChw8c:
        return tag::nChw8c;
    default:
        return tag::nChw16c;
    }
}

// The runtime's own thread count control, looked up in the process (libdnnl brings
// libgomp in with it), so the benchmark needs no OpenMP flags of its own.
template <typename Fn> Fn omp_fn(const char *name)
{
    return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

const char *runtime_name(unsigned r)
{
    switch (r) {
    case DNNL_RUNTIME_SEQ:
        return "SEQ";
    case DNNL_RUNTIME_OMP:
        return "OMP";
    case DNNL_RUNTIME_TBB:
        return "TBB";
    case DNNL_RUNTIME_THREADPOOL:
        return "THREADPOOL";
    default:
        return "other";
    }
}

struct Run {
    dnnl::engine eng{dnnl::engine::kind::cpu, 0};
    dnnl::stream strm{eng};
    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
    std::string impl;
};

// A data tensor in format f over buffer `buf`: wrapped as it is when the format has
// no padding, else a oneDNN allocation filled by a reorder from buf (read as nchw).
memory data_memory(Run &r, const memory::desc &md, const memory::desc &plain_md,
                   float *buf, bool input)
{
    if (md.get_size() == plain_md.get_size())
        return memory(md, r.eng, buf);
    memory m(md, r.eng);
    if (input) {
        memory plain(plain_md, r.eng, buf);
        dnnl::reorder(plain, m).execute(r.strm, plain, m);
        r.strm.wait();
    }
    return m;
}

// Builds the primitive and its arguments; throws dnnl::error if oneDNN refuses.
void build(Run &r, const OpInfo &op, Fmt f, const Shape &s, Tensors *t)
{
    memory::dims dims = {static_cast<memory::dim>(s.n), static_cast<memory::dim>(s.c),
                         static_cast<memory::dim>(s.h), static_cast<memory::dim>(s.w)};
    memory::desc md(dims, memory::data_type::f32, fmt_tag(f));
    memory::desc plain_md(dims, memory::data_type::f32, tag::nchw);
    memory::desc c_md({static_cast<memory::dim>(s.c)}, memory::data_type::f32, tag::x);
    const float eps = 1e-5f;
    auto chan = [&](float *p) { return memory(c_md, r.eng, p); };

    if (op.op == Op::training_backward) {
        flags fl = flags::use_scale | flags::use_shift;
        dnnl::batch_normalization_forward::primitive_desc hint(
            {dnnl::prop_kind::forward_training, md, eps, fl}, r.eng);
        dnnl::batch_normalization_backward::primitive_desc pd(
            {dnnl::prop_kind::backward, md, md, eps, fl}, r.eng, hint);
        r.prim = dnnl::batch_normalization_backward(pd);
        r.impl = pd.impl_info_str();
        r.args = {
            {DNNL_ARG_SRC, data_memory(r, md, plain_md, t->buf[0], true)},
            {DNNL_ARG_DIFF_DST, data_memory(r, md, plain_md, t->buf[1], true)},
            {DNNL_ARG_DIFF_SRC, data_memory(r, md, plain_md, t->buf[2], false)},
            {DNNL_ARG_MEAN, chan(t->save_mean)},
            {DNNL_ARG_VARIANCE, chan(t->save_var)},
            {DNNL_ARG_SCALE, chan(t->gamma)},
            {DNNL_ARG_SHIFT, chan(t->beta)}, // not read, but oneDNN 2.6 requires it
            {DNNL_ARG_DIFF_SCALE, chan(t->out_c1)},
            {DNNL_ARG_DIFF_SHIFT, chan(t->out_c2)},
        };
        if (pd.workspace_desc().get_size() != 0)
            r.args.insert({DNNL_ARG_WORKSPACE, memory(pd.workspace_desc(), r.eng)});
        return;
    }

    bool training = op.op == Op::training_forward;
    flags fl = flags::use_scale | flags::use_shift;
    if (!training)
        fl = fl | flags::use_global_stats;
    if (op.op == Op::inference_relu)
        fl = fl | flags::fuse_norm_relu;
    dnnl::batch_normalization_forward::primitive_desc pd(
        {training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
         md, eps, fl},
        r.eng);
    r.prim = dnnl::batch_normalization_forward(pd);
    r.impl = pd.impl_info_str();
    r.args = {
        {DNNL_ARG_SRC, data_memory(r, md, plain_md, t->buf[0], true)},
        {DNNL_ARG_DST, data_memory(r, md, plain_md, t->buf[1], false)},
        {DNNL_ARG_MEAN, chan(training ? t->out_c1 : t->mean)},
        {DNNL_ARG_VARIANCE, chan(training ? t->out_c2 : t->var)},
        {DNNL_ARG_SCALE, chan(t->gamma)},
        {DNNL_ARG_SHIFT, chan(t->beta)},
    };
    if (pd.workspace_desc().get_size() != 0)
        r.args.insert({DNNL_ARG_WORKSPACE, memory(pd.workspace_desc(), r.eng)});
}

void bm_onednn(benchmark::State &st, OpInfo op, Fmt f, Shape shape)
{
    Tensors *t = tensors(shape, op.buffers);
    if (!t) {
        st.SkipWithError("cannot allocate the tensors");
        return;
    }
    Run r;
    try {
        build(r, op, f, shape, t);
        r.prim.execute(r.strm, r.args); // once outside the timed loop
        r.strm.wait();
    } catch (const dnnl::error &e) {
        st.SkipWithError((std::string("oneDNN: ") + e.what()).c_str());
        return;
    }
    for (auto _ : st) {
        r.prim.execute(r.strm, r.args);
        r.strm.wait();
        benchmark::ClobberMemory();
    }
    finish_row(st, shape, op.bytes_per_elem, op.buffers, r.impl);
}

} // namespace

void onednn_init()
{
    dnnl::set_primitive_cache_capacity(0);
    if (auto set = omp_fn<void (*)(int)>("omp_set_num_threads"))
        set(1);
}

namespace {

// Whether the instruction set oneDNN's JIT uses here (the CPU's, or less under
// ONEDNN_MAX_CPU_ISA) includes isa: each value's bits include those of every set it
// extends.
bool onednn_has(dnnl::cpu_isa isa)
{
    unsigned have = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    unsigned want = static_cast<unsigned>(isa);
    return (have & want) == want;
}

const char *onednn_isa_name()
{
    static const std::pair<dnnl::cpu_isa, const char *> names[] = {
        {dnnl::cpu_isa::avx512_core_amx, "avx512_core_amx"},
        {dnnl::cpu_isa::avx512_core_bf16, "avx512_core_bf16"},
        {dnnl::cpu_isa::avx512_core_vnni, "avx512_core_vnni"},
        {dnnl::cpu_isa::avx512_core, "avx512_core"},
        {dnnl::cpu_isa::avx2_vnni, "avx2_vnni"},
        {dnnl::cpu_isa::avx2, "avx2"},
        {dnnl::cpu_isa::avx, "avx"},
        {dnnl::cpu_isa::sse41, "sse41"},
    };
    for (const auto &n : names)
        if (onednn_has(n.first))
            return n.second;
    return "none";
}

} // namespace

void register_onednn(const Shape &shape, bool full)
{
    std::vector<Fmt> fmts = {Fmt::nchw, Fmt::nhwc, Fmt::nChw8c};
    if (onednn_has(dnnl::cpu_isa::avx512_core))
        fmts.push_back(Fmt::nChw16c);
    for (const OpInfo &op : ops()) {
        // No pre-folded form in oneDNN (the report compares apply with its
        // inference); no fused clamp.
        if ((!full && !op.quick) || !op_applies(op.op, shape) || op.op == Op::apply ||
            op.op == Op::inference_relu6)
            continue;
        for (Fmt f : fmts) {
            std::string impl = std::string("onednn-") + fmt_name(f);
            benchmark::RegisterBenchmark(row_name(op.name, impl, shape).c_str(), bm_onednn,
                                         op, f, shape);
        }
    }
}

void context_onednn()
{
    const dnnl_version_t *v = dnnl_version();
    int threads = -1;
    if (auto get = omp_fn<int (*)()>("omp_get_max_threads"))
        threads = get();
    std::string s = std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                    std::to_string(v->patch) + " runtime=" + runtime_name(v->cpu_runtime) +
                    " isa=" + onednn_isa_name() +
                    " threads=" + (threads > 0 ? std::to_string(threads) : "n/a") +
                    " primitive_cache=" +
                    std::to_string(dnnl::get_primitive_cache_capacity());
    benchmark::AddCustomContext("onednn", s);
}

} // namespace bench

#else // no oneDNN: no rows, and the context says why

namespace bench {

void onednn_init() {}

void register_onednn(const Shape &, bool) {}

void context_onednn()
{
    benchmark::AddCustomContext("onednn", "not built (libdnnl-dev not found at configure)");
}

} // namespace bench

#endif
