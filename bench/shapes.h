// The benchmark's shapes and operations: the one list every part of the suite (bnorm,
// the copies, oneDNN) and the report read, so that every figure of a shape is
// measured on the same tensor.
#ifndef BNORM_BENCH_SHAPES_H
#define BNORM_BENCH_SHAPES_H

#include <cstddef>
#include <string>
#include <vector>

namespace bench {

struct Shape {
    size_t n, c, h, w;
    const char *role; // what the tensor is in a real network, or why it is awkward
    bool dram;        // the DRAM row: sized from this machine's LLC at run time

    size_t spatial() const { return h * w; }
    size_t elems() const { return n * c * h * w; }
};

// ResNet-50 at batch 1 (the output of conv1 and of each stage), first layers, odd and
// (N, C) shapes, training batches and one tensor that is out of L3 on most machines.
// The DRAM row (dram_shape) is added at run time.
inline const std::vector<Shape> &fixed_shapes()
{
    static const std::vector<Shape> shapes = {
        {1, 3, 224, 224, "image input (3 channels)", false},
        {1, 64, 112, 112, "ResNet-50 conv1", false},
        {1, 256, 56, 56, "ResNet-50 stage 1", false},
        {1, 512, 28, 28, "ResNet-50 stage 2", false},
        {1, 1024, 14, 14, "ResNet-50 stage 3", false},
        {1, 2048, 7, 7, "ResNet-50 stage 4", false},
        {1, 17, 33, 33, "odd channels and size", false},
        {8, 1000, 1, 1, "(N, C): classifier", false},
        {256, 64, 1, 1, "(N, C): MLP batch", false},
        {1, 24, 1, 1, "tiny", false},
        {32, 64, 56, 56, "training batch, stage 1", false},
        {16, 256, 14, 14, "training batch, stage 3", false},
        {8, 512, 28, 28, "training batch, stage 2", false},
        {32, 2048, 7, 7, "training batch, stage 4", false},
        {1, 64, 512, 512, "64 MiB per tensor", false},
    };
    return shapes;
}

// N = 1, C = 64, H = W, each buffer at least twice the last-level cache (so one
// operation streams at least four times the LLC), each buffer at most 2 GiB.
inline Shape dram_shape(size_t llc_bytes)
{
    const size_t c = 64;
    const size_t max_elems = (size_t{2} << 30) / sizeof(float);
    size_t want = 2 * llc_bytes / sizeof(float);
    if (want > max_elems)
        want = max_elems;
    size_t side = 1;
    while (c * side * side < want)
        side++;
    while (side > 1 && c * side * side > max_elems)
        side--;
    return {1, c, side, side, "DRAM: each buffer >= 2 x LLC", true};
}

// "1x64x112x112"; (N, C) tensors (H = W = 1, N > 1) print as "8x1000".
inline std::string shape_name(const Shape &s)
{
    std::string out = std::to_string(s.n) + "x" + std::to_string(s.c);
    if (s.h * s.w != 1 || s.n == 1)
        out += "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
    return out;
}

// ---- operations ---------------------------------------------------------------------

enum class Op {
    apply,
    inference,
    inference_relu,
    inference_relu6,
    training_forward,
    training_backward
};

struct OpInfo {
    Op op;
    const char *name;
    // The minimal traffic per element, counted for bytes/s: inference reads x and
    // writes y; training forward reads x twice (statistics, then apply) and writes y;
    // backward reads x and dy twice (sums, then dx) and writes dx.
    size_t bytes_per_elem;
    // Distinct tensors touched (footprint = buffers x elements x 4 bytes).
    size_t buffers;
    bool quick; // in the default (quick) run
};

inline const std::vector<OpInfo> &ops()
{
    static const std::vector<OpInfo> list = {
        {Op::apply, "apply", 8, 2, true},
        {Op::inference, "inference", 8, 2, true},
        {Op::inference_relu, "inference_relu", 8, 2, false},
        {Op::inference_relu6, "inference_relu6", 8, 2, false},
        {Op::training_forward, "training_forward", 12, 2, true},
        {Op::training_backward, "training_backward", 20, 3, true},
    };
    return list;
}

inline bool is_training(Op op)
{
    return op == Op::training_forward || op == Op::training_backward;
}

// Training needs m = N * spatial >= 2 values per channel (bnorm refuses fewer).
inline bool op_applies(Op op, const Shape &s)
{
    return !is_training(op) || s.n * s.spatial() >= 2;
}

} // namespace bench

#endif
