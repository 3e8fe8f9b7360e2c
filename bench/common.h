// What every part of the suite shares: the machine's caches, the tensors of the shape
// being measured, the counters and the names of rows.
//
// Row names are "<op>/<implementation>/<shape>", for example
// "inference/bnorm-avx2-nchw/1x64x112x112", "copy/memcpy/8x1000" or
// "training_backward/onednn-nChw8c/32x64x56x56"; the label is "<role>;<where>" with
// <where> the cache level the row's tensors fit in (L1, L2, LLC) or DRAM. The report
// (scripts/bench-report) reads these.
#ifndef BNORM_BENCH_COMMON_H
#define BNORM_BENCH_COMMON_H

#include <cstddef>
#include <string>

#include <benchmark/benchmark.h>

#include "shapes.h"

namespace bench {

struct Caches {
    size_t l1, l2, llc;
};

// Detected once (sysconf, through the library's own detection for L2 and LLC).
const Caches &caches();

// BNORM_BENCH_HUGEPAGES is set and not "0": tensors() asks for transparent huge pages
// (madvise MADV_HUGEPAGE).
bool want_hugepages();

// BNORM_BENCH_OFFSET: tensors() places each buffer that many bytes (a multiple of 4,
// below 4096) past the start of its mapping, e.g. 16 as glibc's malloc does for large
// blocks; 0 (page-aligned) when unset.
size_t tensor_offset_bytes();

// "L1", "L2", "LLC" or "DRAM": the smallest level that holds footprint_bytes.
const char *cache_level(size_t footprint_bytes);

// The tensors of one shape: up to three buffers of shape.elems() floats, and the
// per-channel parameters. Buffer 0 (x) is only read; buffer 1 (y of inference and
// forward, dy of backward) and buffer 2 (dx) are written. No output is fed back as
// an input to the op that wrote it, so values stay in [-8, 8] and never drift into
// denormals however many iterations run.
struct Tensors {
    float *buf[3];
    size_t elems;
    // C floats each: gamma, beta, running mean and variance (inference); saved mean
    // and 1/std (backward, as if x had come through the forward); outputs.
    float *gamma, *beta, *mean, *var, *save_mean, *save_invstd, *out_c1, *out_c2;
    // Variance matching save_invstd (oneDNN's backward takes the variance).
    float *save_var;
};

// The tensors of shape with buffers 0..count-1 allocated, filled with finite values
// in [-4, 4) (every page touched), outside any timed region. The previous shape's
// tensors are freed when another shape is asked for, so rows of one shape should run
// together (they are registered that way). Returns nullptr when memory runs out.
Tensors *tensors(const Shape &shape, size_t count);

// Frees whatever tensors() holds.
void free_tensors();

// bytes/s over the minimal traffic, elements per ns, and the label
// "<role>;<where>[;<note>]" (oneDNN rows note the implementation oneDNN chose).
void finish_row(benchmark::State &st, const Shape &shape, size_t bytes_per_elem,
                size_t buffers, const std::string &note = std::string());

// "<op>/<impl>/<shape>".
std::string row_name(const char *op, const std::string &impl, const Shape &shape);

// Registers the rows of each part for one shape. `full` adds the rows the quick run
// leaves out (activations).
void register_copy(const Shape &shape);
void register_bnorm(const Shape &shape, bool full);
void register_onednn(const Shape &shape, bool full);

// Context lines (JSON "context" and the console header) of each part.
void context_bnorm();
void context_onednn();

// Sets the threading of the peers (oneDNN) to one thread, before anything runs.
void onednn_init();

} // namespace bench

#endif
