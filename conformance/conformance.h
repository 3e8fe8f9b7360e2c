/*
 * The conformance harness: every kernel table against the reference, over one shape
 * matrix, with one set of tolerances. Shared by tests/ (Criterion), tools/bnorm-check
 * and bench/ (which reuses the table list), so these facts live in one place.
 */
#ifndef BNORM_CONFORMANCE_H
#define BNORM_CONFORMANCE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels.h"

/* The number of elements of an array (not a pointer). */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Exactly the same value: NaN matches any NaN, everything else bit for bit (so +0
 * and -0 differ). */
static inline bool bnorm_conf_same_bits(float got, float want)
{
    return isnan(want) ? isnan(got) : memcmp(&got, &want, sizeof got) == 0;
}

/* ---- kernel tables ------------------------------------------------------------- */

typedef struct bnorm_conf_table {
    const char *label;        /* "scalar", "avx2", "neon-simde", ... */
    const bnorm_kernels *k;
    bool runnable;            /* this CPU can execute it */
    bool emulated;            /* another ISA's source translated by SIMDe */
} bnorm_conf_table;

/* Every table this build has: the library's own, then the test-only emulated ones.
 * Returns how many; writes at most cap of them. */
size_t bnorm_conf_tables(bnorm_conf_table *out, size_t cap);

/* ---- seeded random numbers ------------------------------------------------------ */

typedef struct bnorm_rng {
    uint64_t state;
} bnorm_rng;

/* The seed from BNORM_TEST_SEED if set (decimal or 0x hex), else fallback. */
uint64_t bnorm_conf_seed(uint64_t fallback);
void bnorm_rng_init(bnorm_rng *r, uint64_t seed);
uint64_t bnorm_rng_next(bnorm_rng *r);
double bnorm_rng_uniform(bnorm_rng *r);            /* [0, 1) */
double bnorm_rng_normal(bnorm_rng *r);             /* N(0, 1) */
size_t bnorm_rng_below(bnorm_rng *r, size_t n);    /* [0, n) */

/* ---- a pool for tests ------------------------------------------------------------ */

/* A bnorm_parallel_for_fn that runs the tasks last to first on this thread, and
 * counts the calls, their tasks and the calls made from inside a task (parallel
 * regions must never nest). */
static size_t reverse_ranges, reverse_tasks, reverse_depth, reverse_nested;
static inline void reverse_parallel_for(void *pool, bnorm_task_fn task, void *context,
                                        size_t range)
{
    (void)pool;
    reverse_ranges++;
    reverse_tasks += range;
    reverse_nested += reverse_depth > 0;
    reverse_depth++;
    for (size_t i = range; i-- > 0;)
        task(context, i);
    reverse_depth--;
}

/* ---- fenced buffers ------------------------------------------------------------- */

/* Every buffer lies between two inaccessible pages. BNORM_FENCE_AT_GUARD: the last
 * element ends exactly at the one after, so reading or writing one float past the
 * end faults. BNORM_FENCE_AT_LEAD: the first element starts exactly at the end of
 * the one before, so reading or writing one float before the start faults.
 * Otherwise the first element sits `misalign` floats past a 64-byte boundary. Canary
 * bytes fill the gaps between the data and the guard pages. */
#define BNORM_FENCE_AT_GUARD SIZE_MAX
#define BNORM_FENCE_AT_LEAD (SIZE_MAX - 1)

typedef struct bnorm_fence {
    unsigned char *map;
    size_t map_bytes;
    float *data;
    size_t count;
} bnorm_fence;

/* Allocates count floats (count >= 1); returns data, or NULL if mmap fails. */
float *bnorm_fence_alloc(bnorm_fence *f, size_t count, size_t misalign);
/* A random position: at the guard or at the lead (a quarter each), or 0..15 floats
 * past a 64-byte boundary (half). */
static inline size_t bnorm_fence_pick(bnorm_rng *r)
{
    size_t k = bnorm_rng_below(r, 4);
    return k == 0   ? BNORM_FENCE_AT_GUARD
           : k == 1 ? BNORM_FENCE_AT_LEAD
                    : bnorm_rng_below(r, 16);
}
/* True if no canary byte around the data changed. */
bool bnorm_fence_intact(const bnorm_fence *f);
void bnorm_fence_free(bnorm_fence *f);

/* ---- tolerance ------------------------------------------------------------------ */

/*
 * Error of an affine result y against the exact value ref, in units of
 * 2^-23 * (|x * a| + |b|) + 2^-149 (the last term is underflow: results below the
 * smallest normal float have an absolute, not relative, rounding error).
 * NaN ref requires NaN y, an infinite ref the same infinity, and a finite ref a
 * finite y; a violated rule returns INFINITY.
 */
double bnorm_conf_affine_ulps(float y, double ref, double xa_abs, double b_abs);

/* Tolerances, in those units of the magnitudes docs/guide.md names (the fuzz
 * harness uses them too). */
/* apply rounds x*a+b once (FMA) or twice: <= 1 unit. From statistics, the fold
 * rounds scale and shift once each on top: <= 2 units. */
#define BNORM_TOL_APPLY 1.0
#define BNORM_TOL_INFERENCE 2.0

/* y: centered apply fma(x - mean_f, a_f, beta) rounds mean, x - mean, a and the
 * result (0.5 each), the statistics add about 1 more: magnitude
 * (|x - mean| + max(|mean|, FLT_MIN) + std) * |a| + |beta| (a subnormal mean rounds
 * to float with an absolute error up to 2^-150, which a multiplies). */
#define BNORM_TOL_Y 3.0
/* save_mean: |mean| + std (float rounding of x - shift, then of the mean). */
#define BNORM_TOL_MEAN 1.0
/* save_invstd, relative: x - shift loses up to 2^-24 per term, amplified by
 * 1 + ((mean - shift) / std)^2 in the variance, then halved by the square root; the
 * shift is the channel's first value, within a few std of the mean. */
#define BNORM_TOL_INVSTD 4.0
/* running_mean = w_old * rm0 + w_new * mean, in double from the saved mean
 * (BNORM_TOL_MEAN, scaled by the weights, which sum to 1), then rounded to float once
 * more: one ulp of |rm0| + |mean| + std more. */
#define BNORM_TOL_RUNNING_MEAN (BNORM_TOL_MEAN + 1.0)
/* running_var, relative to |rv0| + var: the batch variance carries twice invstd's
 * relative error (invstd is its inverse square root, which halves the error), and
 * the blend's own rounding is far below that. */
#define BNORM_TOL_RUNNING_VAR (2.0 * BNORM_TOL_INVSTD)
/* dgamma: |dy * xhat| summed (x - mean rounded, then the product in double);
 * dbeta: |dy| summed. */
#define BNORM_TOL_DGAMMA 2.0
#define BNORM_TOL_DBETA 1.0
/* dx = a*dy + b*(x - m) + k: three rounded coefficients, the difference, and two or
 * four roundings of the evaluation (FMA or not), over |a dy| + |b'(x - m)| + |k|,
 * where b' uses sum|dy * xhat| in place of dgamma: b carries dgamma's error, which is
 * relative to that sum (see dgamma), not to dgamma itself. */
#define BNORM_TOL_DX 4.0

/* ---- operations over the shape matrix ------------------------------------------- */

typedef enum bnorm_conf_matrix {
    BNORM_MATRIX_QUICK = 0, /* a representative subset: seconds, also under qemu */
    BNORM_MATRIX_FULL = 1,  /* the whole shape matrix (conformance/matrix.c) */
} bnorm_conf_matrix;

typedef struct bnorm_conf_result {
    size_t cases;       /* tensors run */
    size_t failures;    /* tensors with any wrong value, fence or changed input */
    double worst_ulps;  /* largest error seen, in the units above */
    char first_failure[512];
} bnorm_conf_result;

/* One tensor of the matrix and how it is laid out in memory. */
typedef struct bnorm_conf_case {
    bnorm_shape shape;
    bnorm_strides xs, ys;       /* used when strided */
    bool strided;
    bool in_place;              /* y is x */
    size_t misalign;            /* BNORM_FENCE_AT_GUARD or _AT_LEAD, or 0..15 floats */
    bool specials;              /* NaN, +-Inf, -0 and denormals among the inputs */
    bnorm_activation act;
    const char *variant;        /* "dense", "dense from a guard page", "strided", ... */
    uint64_t seed;              /* everything random about this case */
} bnorm_conf_case;

/* Describes a case for messages: "nhwc 2x17x49 strided relu seed=0x...". */
void bnorm_conf_case_describe(const bnorm_conf_case *cs, char *buf, size_t size);

typedef struct bnorm_conf_op {
    const char *name;   /* "inference_apply", "training_forward", ... */
    double tol_ulps;    /* documented bound, in the units above */
    /* Runs the op on one case with table k; adds to *res. */
    void (*run)(const struct bnorm_conf_op *op, const bnorm_kernels *k,
                const bnorm_conf_case *cs, bnorm_conf_result *res);
} bnorm_conf_op;

extern const bnorm_conf_op *const bnorm_conf_ops[];
extern const size_t bnorm_conf_op_count;

/* Counts one failed case in res; the first one's description and `what` become
 * res->first_failure. For the operations' run functions. */
void bnorm_conf_fail(bnorm_conf_result *res, const bnorm_conf_op *op,
                     const bnorm_kernels *k, const bnorm_conf_case *cs, const char *what);

/* The case bnorm_conf_run is running on this thread ("" between cases): what a
 * crash handler prints so that a fault names its case and seed. */
const char *bnorm_conf_current_case(void);

/* Runs op with table k over the matrix; seed fixes every random choice. */
bnorm_conf_result bnorm_conf_run(const bnorm_conf_op *op, const bnorm_kernels *k,
                                 bnorm_conf_matrix matrix, uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif
