/**
 * @file bnorm.h
 * bnorm: SIMD batch-normalization kernels for CPUs.
 *
 * One header, one library, a plain C ABI. No function allocates memory, prints,
 * aborts, creates threads, or changes the caller's floating-point controls; every
 * function may be called from any number of threads at once. Operations split their
 * work over the host's thread pool when given one (bnorm_set_parallel_for).
 *
 * Conventions used throughout:
 *  - Tensors are float32 with N images, C channels and `spatial` values per channel
 *    and image (H*W, D*H*W, or 1 for an (N, C) tensor).
 *  - Sizes and strides are counted in elements (floats), not bytes.
 *  - Per-channel arrays (scale, shift, gamma, beta, mean, var) hold C floats.
 *  - Every function validates all of its arguments before it writes anything: a
 *    function that returns a status other than BNORM_OK has written nothing.
 *  - When several arguments are invalid, BNORM_ERR_NULL_POINTER takes precedence;
 *    otherwise which of the applicable statuses is returned is unspecified.
 */
#ifndef BNORM_H
#define BNORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(BNORM_SHARED_BUILD)
#define BNORM_API __declspec(dllexport)
#elif defined(__GNUC__)
#define BNORM_API __attribute__((visibility("default")))
#else
#define BNORM_API
#endif

/* ------------------------------------------------------------------------------ */
/* Version                                                                         */
/* ------------------------------------------------------------------------------ */

#define BNORM_VERSION_MAJOR 0 /**< Major version of this header. */
#define BNORM_VERSION_MINOR 1 /**< Minor version of this header. */
#define BNORM_VERSION_PATCH 0 /**< Patch level of this header. */
/** The version as one number: major * 10000 + minor * 100 + patch. */
#define BNORM_VERSION \
    (BNORM_VERSION_MAJOR * 10000 + BNORM_VERSION_MINOR * 100 + BNORM_VERSION_PATCH)

/** @return the version of the library linked at run time, encoded as BNORM_VERSION. */
BNORM_API unsigned bnorm_version(void);

/** @return the version of the library linked at run time as "major.minor.patch". */
BNORM_API const char *bnorm_version_string(void);

/* ------------------------------------------------------------------------------ */
/* Status codes                                                                    */
/* ------------------------------------------------------------------------------ */

/** What every function that can fail returns: BNORM_OK, or why it did nothing. */
typedef enum bnorm_status {
    /** Success. */
    BNORM_OK = 0,
    /** A required pointer argument is NULL. */
    BNORM_ERR_NULL_POINTER = 1,
    /** A size is zero where at least one element is required (N, C or spatial). */
    BNORM_ERR_BAD_SHAPE = 2,
    /** A stride is smaller than the extent it has to skip over. */
    BNORM_ERR_BAD_STRIDE = 3,
    /** A buffer's extent in bytes exceeds PTRDIFF_MAX. */
    BNORM_ERR_OVERFLOW = 4,
    /** An output overlaps an input or another output in a way that is not allowed. */
    BNORM_ERR_ALIAS = 5,
    /** A numeric parameter is out of its domain (NaN, infinite or negative eps,
     *  lo > hi, a NaN clamp bound, a negative variance, a momentum that is NaN or
     *  outside [0, 1]). */
    BNORM_ERR_BAD_VALUE = 6,
    /** An enumeration argument holds a value this version does not define. */
    BNORM_ERR_BAD_ENUM = 7,
    /** An ISA name that this library does not know. */
    BNORM_ERR_UNKNOWN_ISA = 8,
    /** An ISA that is not compiled into this library or that this CPU cannot run. */
    BNORM_ERR_UNSUPPORTED_ISA = 9,
} bnorm_status;

/** The name of a status, for messages.
 *  @param status  any value
 *  @return a constant, human-readable name ("BNORM_OK", ...); "unknown status" for
 *  a value this version does not define. Never NULL. */
BNORM_API const char *bnorm_status_name(bnorm_status status);

/* ------------------------------------------------------------------------------ */
/* Tensors                                                                         */
/* ------------------------------------------------------------------------------ */

/** Memory order of a tensor. */
typedef enum bnorm_layout {
    /** Channel-major: the `spatial` values of one (image, channel) are contiguous. */
    BNORM_NCHW = 0,
    /** Channel-last: the C channels of one (image, pixel) are contiguous. */
    BNORM_NHWC = 1,
} bnorm_layout;

/** The logical shape of a tensor. */
typedef struct bnorm_shape {
    size_t n;            /**< images, >= 1 */
    size_t c;            /**< channels, >= 1 */
    size_t spatial;      /**< values per image and channel (H*W), >= 1 */
    bnorm_layout layout; /**< memory order of one image */
} bnorm_shape;

/**
 * Strides of one buffer, in elements. Pass NULL instead of a pointer to this struct
 * for a dense tensor (inner = spatial for NCHW or C for NHWC; batch = C * spatial).
 * Given explicitly, both fields are used as they are and must satisfy:
 *  - NCHW: inner (distance between channel planes) >= spatial;
 *    NHWC: inner (distance between pixels) >= C;
 *  - batch (distance between images) >= the extent of one image, that is
 *    (C - 1) * inner + spatial for NCHW and (spatial - 1) * inner + C for NHWC.
 */
typedef struct bnorm_strides {
    size_t inner; /**< NCHW: distance between channel planes; NHWC: between pixels */
    size_t batch; /**< distance between images */
} bnorm_strides;

/* ------------------------------------------------------------------------------ */
/* Activations                                                                     */
/* ------------------------------------------------------------------------------ */

/** Activation kinds (see bnorm_activation). */
typedef enum bnorm_act_kind {
    BNORM_ACT_NONE = 0,  /**< y = v */
    BNORM_ACT_RELU = 1,  /**< y = max(v, 0) */
    BNORM_ACT_CLAMP = 2, /**< y = min(max(v, lo), hi); ReLU6 is clamp(0, 6) */
} bnorm_act_kind;

/**
 * An activation applied to each output value v. NaN rule (the same in every ISA):
 * an activation never turns a NaN into a number; ReLU and clamp of NaN are NaN.
 * The sign of a zero produced by ReLU or clamp (0 or -0) is not specified.
 * Passing NULL where an activation is taken means BNORM_ACT_NONE.
 */
typedef struct bnorm_activation {
    bnorm_act_kind kind; /**< which activation */
    float lo; /**< clamp only: lower bound, not NaN, may be -INFINITY */
    float hi; /**< clamp only: upper bound, not NaN, >= lo, may be +INFINITY */
} bnorm_activation;

/* ------------------------------------------------------------------------------ */
/* Inference                                                                       */
/* ------------------------------------------------------------------------------ */

/**
 * Fold batch-norm parameters into a per-channel affine transform:
 *   scale[c] = gamma[c] / sqrt(var[c] + eps)
 *   shift[c] = beta[c] - mean[c] * scale[c]
 * computed in double precision and rounded to float once per output.
 *
 * @param c      number of channels, >= 1
 * @param gamma  C floats, or NULL for gamma = 1
 * @param beta   C floats, or NULL for beta = 0
 * @param mean   C floats (running mean), required
 * @param var    C floats (running variance), required; each >= 0 or NaN
 * @param eps    added to the variance; finite and >= 0
 * @param scale  C floats written
 * @param shift  C floats written
 * @return BNORM_OK;
 *   BNORM_ERR_NULL_POINTER if mean, var, scale or shift is NULL;
 *   BNORM_ERR_BAD_SHAPE if c == 0;
 *   BNORM_ERR_OVERFLOW if c floats take more than PTRDIFF_MAX bytes;
 *   BNORM_ERR_BAD_VALUE if eps is NaN, infinite or negative, or some var[c] < 0;
 *   BNORM_ERR_ALIAS if scale and shift overlap each other or any input.
 * A NaN in an input gives NaN in the outputs of that channel that depend on it.
 */
BNORM_API bnorm_status bnorm_fold(size_t c, const float *gamma, const float *beta,
                                  const float *mean, const float *var, float eps,
                                  float *scale, float *shift);

/**
 * Inference apply: y = act(x * scale[c] + shift[c]) for every element.
 *
 * Any alignment is valid. Rows of channels (NHWC, and NCHW with spatial 1) load
 * scale and shift at the offsets of x and y, so with all four on 64-byte boundaries
 * and C a multiple of 8, no load splits a cache line (AVX2, NCHW 256x64 in L2: 1.16
 * us, against 1.31 with scale and shift 16 bytes past one).
 *
 * @param shape      the tensor's shape and layout (x and y share it)
 * @param x          input tensor
 * @param x_strides  strides of x, or NULL for dense
 * @param y          output tensor; may be x itself (in place) when its strides are
 *                   equal to x's; any other overlap with x, scale or shift is
 *                   rejected (the first-to-last-element ranges must be disjoint)
 * @param y_strides  strides of y, or NULL for dense
 * @param scale      C floats
 * @param shift      C floats
 * @param act        activation, or NULL for none
 * @return BNORM_OK;
 *   BNORM_ERR_NULL_POINTER if shape, x, y, scale or shift is NULL;
 *   BNORM_ERR_BAD_ENUM if shape->layout or act->kind is not defined;
 *   BNORM_ERR_BAD_SHAPE if n, c or spatial is 0;
 *   BNORM_ERR_BAD_STRIDE if a stride is smaller than allowed (see bnorm_strides);
 *   BNORM_ERR_OVERFLOW if a buffer's extent in bytes exceeds PTRDIFF_MAX;
 *   BNORM_ERR_BAD_VALUE if a clamp bound is NaN or lo > hi;
 *   BNORM_ERR_ALIAS for an overlap other than exact in-place.
 */
BNORM_API bnorm_status bnorm_inference_apply(const bnorm_shape *shape, const float *x,
                                             const bnorm_strides *x_strides, float *y,
                                             const bnorm_strides *y_strides,
                                             const float *scale, const float *shift,
                                             const bnorm_activation *act);

/**
 * Inference from statistics in one call:
 *   y = act(gamma[c] * (x - mean[c]) / sqrt(var[c] + eps) + beta[c]),
 * computed as bnorm_fold followed by bnorm_inference_apply, without allocating
 * (channels are folded in blocks on the stack). A channel with var[c] + eps == 0
 * has an infinite scale: its y is NaN where x is 0 or has mean[c]'s sign (every x
 * if mean[c] == 0) and +-inf elsewhere, as x * scale + shift gives it.
 *
 * @param shape, x, x_strides, y, y_strides, act  as for bnorm_inference_apply
 * @param gamma, beta, mean, var, eps            as for bnorm_fold (gamma and beta may
 *                                               be NULL)
 * @return every status either bnorm_fold or bnorm_inference_apply returns, under the
 *   same conditions; y may not overlap gamma, beta, mean or var.
 */
BNORM_API bnorm_status bnorm_inference(const bnorm_shape *shape, const float *x,
                                       const bnorm_strides *x_strides, float *y,
                                       const bnorm_strides *y_strides,
                                       const float *gamma, const float *beta,
                                       const float *mean, const float *var, float eps,
                                       const bnorm_activation *act);

/* ------------------------------------------------------------------------------ */
/* Folding into weights                                                            */
/* ------------------------------------------------------------------------------ */

/** Memory order of a convolution's or linear layer's weights. */
typedef enum bnorm_weight_layout {
    /** Output channel outermost: weights[o * per_channel + k]. PyTorch and ONNX
     *  convolutions (OIHW, OIDHW, grouped: O x I/groups x H x W) and linear layers
     *  (O x I). */
    BNORM_WEIGHTS_OC_MAJOR = 0,
    /** Output channel innermost: weights[k * out_channels + o]. TensorFlow/Keras
     *  convolutions (HWIO; depthwise HWCM with out_channels = C * M) and dense
     *  layers (I x O). */
    BNORM_WEIGHTS_OC_LAST = 1,
} bnorm_weight_layout;

/**
 * Fold an inference batch norm that follows a convolution or linear layer into that
 * layer's weights and bias, so that the layer alone computes layer-then-BN:
 *   s[o]        = gamma[o] / sqrt(var[o] + eps),
 *   w'[o][k]    = w[o][k] * s[o]                       (weights, in place),
 *   bias_out[o] = (bias_in[o] - mean[o]) * s[o] + beta[o],
 * each value computed in double precision and rounded to float once. With
 * bias_in == NULL, bias_out equals bnorm_fold's shift and a weight of 1 becomes its
 * scale, bit for bit.
 *
 * @param layout        BNORM_WEIGHTS_OC_MAJOR or BNORM_WEIGHTS_OC_LAST
 * @param out_channels  output channels of the layer (the batch norm's C), >= 1
 * @param per_channel   weights per output channel (I * H * W; I for a linear
 *                      layer), >= 1
 * @param weights       out_channels * per_channel floats, read and rewritten in
 *                      place (copy them first to keep the originals)
 * @param bias_in       out_channels floats, or NULL for a layer without bias (0)
 * @param bias_out      out_channels floats written; may be bias_in itself (in place)
 * @param gamma         out_channels floats, or NULL for gamma = 1
 * @param beta          out_channels floats, or NULL for beta = 0
 * @param mean          out_channels floats (running mean), required
 * @param var           out_channels floats (running variance), required; each >= 0
 *                      or NaN
 * @param eps           added to the variance; finite and >= 0
 * @return BNORM_OK;
 *   BNORM_ERR_NULL_POINTER if weights, bias_out, mean or var is NULL;
 *   BNORM_ERR_BAD_ENUM if layout is not defined;
 *   BNORM_ERR_BAD_SHAPE if out_channels or per_channel is 0;
 *   BNORM_ERR_OVERFLOW if the weights take more than PTRDIFF_MAX bytes;
 *   BNORM_ERR_BAD_VALUE if eps is NaN, infinite or negative, or some var[o] < 0;
 *   BNORM_ERR_ALIAS if weights overlap any other argument, or bias_out overlaps
 *   gamma, beta, mean, var, or bias_in other than being equal to it.
 * A NaN in an input gives NaN in the outputs of that channel that depend on it.
 */
BNORM_API bnorm_status bnorm_fold_into_weights(bnorm_weight_layout layout,
                                               size_t out_channels, size_t per_channel,
                                               float *weights, const float *bias_in,
                                               float *bias_out, const float *gamma,
                                               const float *beta, const float *mean,
                                               const float *var, float eps);

/* ------------------------------------------------------------------------------ */
/* Training                                                                        */
/* ------------------------------------------------------------------------------ */

/** How the running statistics are updated; the caller says which, explicitly. */
typedef enum bnorm_momentum_convention {
    /** PyTorch: running = (1 - momentum) * running + momentum * batch, with the
     *  unbiased batch variance var * m / (m - 1). momentum = 1/k over k steps gives
     *  the cumulative average. */
    BNORM_MOMENTUM_PYTORCH = 0,
    /** ONNX: running = momentum * running + (1 - momentum) * batch, with the biased
     *  batch variance. ONNX's momentum is 1 - PyTorch's. */
    BNORM_MOMENTUM_ONNX = 1,
} bnorm_momentum_convention;

/** Running statistics updated in place by bnorm_training_forward. */
typedef struct bnorm_running_stats {
    float *mean;        /**< C floats, read and written */
    float *var;         /**< C floats, read and written */
    float momentum;     /**< in [0, 1], meaning set by convention */
    bnorm_momentum_convention convention; /**< how momentum is applied */
} bnorm_running_stats;

/**
 * Training forward with the batch's own statistics. Per channel c, over the
 * m = N * spatial values of that channel:
 *   mean = sum(x) / m,  var = sum((x - mean)^2) / m  (biased),
 *   invstd = 1 / sqrt(var + eps),
 *   y = gamma[c] * (x - mean) * invstd + beta[c].
 * The statistics are accumulated in double about a per-channel shift (the channel's
 * first value, or 0 if that is not finite; x - shift is formed in double), so
 * |mean| / std up to 1e4 and more keeps full float accuracy and a constant channel
 * has var == 0 exactly and, with eps > 0, y == beta exactly where gamma * invstd is
 * finite as a float (with eps == 0 its invstd is +inf and y is NaN, as in PyTorch). The summation order
 * is fixed by the shape, never by how the work is split.
 *
 * @param shape        the tensor's shape and layout (x and y share it)
 * @param x            input tensor
 * @param x_strides    strides of x, or NULL for dense
 * @param y            output tensor; may be x (same strides); no other overlap with
 *                     any input or output
 * @param y_strides    strides of y, or NULL for dense
 * @param gamma        C floats, or NULL for 1
 * @param beta         C floats, or NULL for 0
 * @param eps          finite, >= 0
 * @param save_mean    C floats written with mean, or NULL
 * @param save_invstd  C floats written with invstd, or NULL (what backward takes)
 * @param running      running statistics to update in place, or NULL
 * @return BNORM_OK, or as bnorm_inference_apply for shape, pointers and strides;
 *   BNORM_ERR_BAD_SHAPE also if m = N * spatial < 2 (the variance of one value is
 *   undefined; PyTorch refuses it too);
 *   BNORM_ERR_NULL_POINTER if running is given with a NULL mean or var;
 *   BNORM_ERR_BAD_ENUM for an undefined running->convention;
 *   BNORM_ERR_BAD_VALUE for a bad eps or a momentum that is NaN or outside [0, 1];
 *   BNORM_ERR_ALIAS if an output overlaps an input or another output (y == x with
 *   equal strides excepted).
 */
BNORM_API bnorm_status bnorm_training_forward(const bnorm_shape *shape, const float *x,
                                              const bnorm_strides *x_strides, float *y,
                                              const bnorm_strides *y_strides,
                                              const float *gamma, const float *beta,
                                              float eps, float *save_mean,
                                              float *save_invstd,
                                              const bnorm_running_stats *running);

/**
 * Training backward, from the statistics the forward saved. With
 * xhat = (x - save_mean[c]) * save_invstd[c] and sums over the m = N * spatial
 * values of each channel:
 *   dbeta[c]  = sum(dy),
 *   dgamma[c] = sum(dy * xhat),
 *   dx = gamma[c] * save_invstd[c] * (dy - dbeta[c] / m - xhat * dgamma[c] / m).
 * Any subset of dx, dgamma and dbeta may be requested (NULL: not computed); at least
 * one must be. Sums are accumulated in double, in an order fixed by the shape.
 *
 * @param shape, x, x_strides   the forward's input
 * @param dy, dy_strides        gradient of the output
 * @param gamma                 C floats, or NULL for 1
 * @param save_mean, save_invstd  C floats each, from bnorm_training_forward
 * @param dx, dx_strides        gradient of the input, or NULL (dx_strides is then
 *                              ignored); may be dy (same strides); no other overlap
 * @param dgamma, dbeta         C floats each, or NULL
 * @return BNORM_OK, or as bnorm_training_forward for shape, pointers and strides;
 *   BNORM_ERR_NULL_POINTER also if dx, dgamma and dbeta are all NULL;
 *   BNORM_ERR_ALIAS if an output overlaps an input or another output (dx == dy with
 *   equal strides excepted).
 */
BNORM_API bnorm_status bnorm_training_backward(const bnorm_shape *shape, const float *x,
                                               const bnorm_strides *x_strides,
                                               const float *dy,
                                               const bnorm_strides *dy_strides,
                                               const float *gamma, const float *save_mean,
                                               const float *save_invstd, float *dx,
                                               const bnorm_strides *dx_strides,
                                               float *dgamma, float *dbeta);

/**
 * Backward through batch norm with frozen statistics (the statistics were
 * constants, as when fine-tuning with batch norm in evaluation mode):
 *   dx = dy * gamma[c] / sqrt(running_var[c] + eps)
 * computed as dx = dy * scale[c] (the fold of gamma and running_var alone, then
 * the apply): a channel with running_var[c] + eps == 0 gives the formula's +-inf,
 * and NaN where dy is 0.
 *
 * @param shape, dy, dy_strides  gradient of the output
 * @param gamma                  C floats, or NULL for 1
 * @param running_var            C floats, each >= 0 (or NaN)
 * @param eps                    finite, >= 0
 * @param dx, dx_strides         gradient of the input; may be dy (same strides)
 * @return as bnorm_inference, under the same conditions.
 */
BNORM_API bnorm_status bnorm_frozen_backward(const bnorm_shape *shape, const float *dy,
                                             const bnorm_strides *dy_strides,
                                             const float *gamma, const float *running_var,
                                             float eps, float *dx,
                                             const bnorm_strides *dx_strides);

/* ------------------------------------------------------------------------------ */
/* Host-driven parallelism                                                         */
/* ------------------------------------------------------------------------------ */

/** One unit of work: bnorm calls it with every index of a range. */
typedef void (*bnorm_task_fn)(void *context, size_t index);

/**
 * A parallel-for the host provides (the shape of pthreadpool_parallelize_1d): call
 * task(context, i) once for every i in [0, range), on any threads, in any order,
 * and return when every call has returned. pool is the host's own pointer, passed
 * through untouched.
 */
typedef void (*bnorm_parallel_for_fn)(void *pool, bnorm_task_fn task, void *context,
                                      size_t range);

/**
 * Give the operations that THIS thread calls from now on a parallel-for to split
 * their work with; NULL parallel_for makes them serial again (the default). bnorm
 * never creates threads. The setting is per calling thread, so each engine thread
 * can use its own pool, and tasks running on pool threads (which have no setting)
 * never nest.
 *
 * Work is cut into tasks fixed by the tensor's shape, never by the number of
 * threads, and every reduction is merged in an order fixed by the shape: results
 * are bit-identical for any pool and any number of threads, serial included.
 *
 * @param parallel_for  the host's parallel-for, or NULL for serial operations
 * @param pool          passed to parallel_for as its first argument (ignored when
 *                      parallel_for is NULL)
 */
BNORM_API void bnorm_set_parallel_for(bnorm_parallel_for_fn parallel_for, void *pool);

/* ------------------------------------------------------------------------------ */
/* CPU features and ISA dispatch                                                   */
/* ------------------------------------------------------------------------------ */

/** Kernel sets. Every operation runs the kernels of the active ISA. */
typedef enum bnorm_isa {
    BNORM_ISA_SCALAR = 0, /**< portable C, any CPU */
    BNORM_ISA_AVX2 = 1,   /**< x86-64 with AVX2 and FMA */
    BNORM_ISA_NEON = 2,   /**< aarch64 Advanced SIMD */
    BNORM_ISA_COUNT = 3   /**< number of ISAs this version defines */
} bnorm_isa;

/** CPU feature bits reported by bnorm_cpu_features(). */
enum {
    BNORM_CPU_SSE2 = 1u << 0,
    BNORM_CPU_AVX = 1u << 1,  /**< AVX, with the OS saving YMM state */
    BNORM_CPU_AVX2 = 1u << 2,
    BNORM_CPU_FMA = 1u << 3,
    BNORM_CPU_F16C = 1u << 4,
    BNORM_CPU_AVX512F = 1u << 5, /**< AVX-512F, with the OS saving ZMM state */
    BNORM_CPU_NEON = 1u << 16,
    BNORM_CPU_ASIMDHP = 1u << 17, /**< aarch64 fp16 arithmetic */
};

/** @return the features detected on this CPU, a set of BNORM_CPU_* bits. */
BNORM_API uint32_t bnorm_cpu_features(void);

/** The name of a CPU feature.
 *  @param feature  one BNORM_CPU_* bit
 *  @return its name ("avx2", ...), or NULL if feature is not one BNORM_CPU_* bit. */
BNORM_API const char *bnorm_cpu_feature_name(uint32_t feature);

/** The name of an ISA.
 *  @param isa  any value
 *  @return its lower-case name ("scalar", "avx2", "neon"), or NULL if isa is not
 *  defined. */
BNORM_API const char *bnorm_isa_name(bnorm_isa isa);

/**
 * Look up an ISA by its name (as bnorm_isa_name gives it, case-sensitive).
 * @param name  the name
 * @param isa   where the ISA is written
 * @return BNORM_OK and *isa set; BNORM_ERR_NULL_POINTER if name or isa is NULL;
 *   BNORM_ERR_UNKNOWN_ISA if no ISA has that name (*isa is not written).
 */
BNORM_API bnorm_status bnorm_isa_from_name(const char *name, bnorm_isa *isa);

/** Whether this library contains kernels for an ISA.
 *  @param isa  any value
 *  @return 1 if this library contains kernels for isa, else 0. */
BNORM_API int bnorm_isa_compiled(bnorm_isa isa);

/** Whether an ISA can run here.
 *  @param isa  any value
 *  @return 1 if isa is compiled in and this CPU can run it, else 0. */
BNORM_API int bnorm_isa_supported(bnorm_isa isa);

/**
 * The ISA whose kernels run now. On first use the library picks the best supported
 * ISA, or the one the environment variable BNORM_ISA names if that one is supported
 * (see bnorm_env_isa_status). Thread-safe.
 * @return the active ISA
 */
BNORM_API bnorm_isa bnorm_active_isa(void);

/**
 * Make isa the active ISA for all threads, from the next operation on.
 * @param isa  the ISA to use
 * @return BNORM_OK; BNORM_ERR_BAD_ENUM if isa is not defined;
 *   BNORM_ERR_UNSUPPORTED_ISA if it is not compiled in or this CPU cannot run it
 *   (the active ISA is then unchanged).
 */
BNORM_API bnorm_status bnorm_set_isa(bnorm_isa isa);

/**
 * What became of the BNORM_ISA environment variable when the library initialized.
 * @return BNORM_OK if it was unset, empty, or applied; BNORM_ERR_UNKNOWN_ISA if it
 * names no ISA; BNORM_ERR_UNSUPPORTED_ISA if it names one this build or CPU cannot
 * run. In the two error cases the variable was ignored and the best supported ISA is
 * active.
 */
BNORM_API bnorm_status bnorm_env_isa_status(void);

/**
 * The size from which outputs are written with non-temporal stores, around the
 * caches (an output that large would not stay cached beside its input): half the
 * last-level cache detected on first use (16 MiB where none is found), or the
 * environment variable BNORM_STREAM_THRESHOLD (see bnorm_env_stream_threshold_status);
 * never below 1 MiB. Only speed depends on it: the results are the same bits either
 * way. Thread-safe.
 * @return the threshold, in bytes
 */
BNORM_API size_t bnorm_stream_threshold_bytes(void);

/**
 * What became of the BNORM_STREAM_THRESHOLD environment variable (bytes, or with a
 * K, M or G suffix: "32M") when the library initialized.
 * @return BNORM_OK if it was unset, empty, or applied (a value below 1 MiB applies
 * as 1 MiB); BNORM_ERR_BAD_VALUE if it is not such a number or does not fit a
 * size_t: it was then ignored.
 */
BNORM_API bnorm_status bnorm_env_stream_threshold_status(void);

#ifdef __cplusplus
}
#endif

#endif /* BNORM_H */
