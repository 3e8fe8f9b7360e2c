/*
 * A coverage-guided libFuzzer harness for bnorm's public API.
 *
 * Each input decodes into one call of one operation (bnorm_fold,
 * bnorm_inference_apply, bnorm_inference, bnorm_training_forward,
 * bnorm_training_backward, bnorm_frozen_backward, bnorm_fold_into_weights): its
 * shape and layout, strides (none, padded, dense, too small, or any 64-bit value),
 * where each pointer goes (its own buffer, misaligned by up to 7 floats; NULL; the
 * in-place partner; somewhere inside another argument), eps, momentum, activation,
 * enumeration values (defined or not) and the data (from the input's bytes, so NaN,
 * infinities and subnormals appear, then from a generator seeded by the input).
 *
 * The harness states the contract of bnorm.h and docs/guide.md independently of the
 * library and checks every call against it:
 *  - the status is one that the arguments allow (NULL pointers first, otherwise any
 *    of the applicable errors, BNORM_OK only when nothing is wrong);
 *  - a call that fails writes nothing (and reads no tensor: a tensor too large to
 *    allocate is a 16-float stand-in); a call that succeeds writes nothing but its
 *    outputs' elements (no gap of a padded output, no input, nothing before a
 *    misaligned buffer), and AddressSanitizer sees every buffer at its exact size;
 *  - results against a double-precision computation written here, with the guide's
 *    bounds (in units of 2^-23 times the guide's magnitude, plus 2^-149), where the
 *    guide promises them (finite inputs, normal per-channel coefficients); the
 *    fold and bnorm_fold_into_weights bit for bit; the NaN and constant-channel rules;
 *  - every kernel table this CPU can run (bnorm_conf_tables: scalar, avx2 and, in a
 *    test build on x86, the SIMDe-translated NEON table), serially and through a
 *    pool that runs its tasks last to first, with its pure outputs filled with NaN
 *    before the pooled call (an element left unwritten then differs): identical bits
 *    for one table, and identical bits between tables where the guide promises them
 *    (the fold, the training statistics over rows);
 *  - training statistics identical bit for bit with dense buffers (the summation
 *    order is fixed by the shape, not the strides), the backward's parameter
 *    gradients the same with dx or without, and every output the same value with
 *    dense buffers.
 * Also: the caller's MXCSR controls unchanged by every call (x86), and some calls made
 * with flush-to-zero and/or denormals-are-zero set (then only calls are compared with
 * calls: the fold's bits in every table); the small functions (names, ISA lookup,
 * bnorm_set_isa's refusals) from every input's first bytes.
 *
 * A violation prints the decoded case and aborts, so libFuzzer keeps the input.
 * Environment: FUZZ_API_VERBOSE=1 prints every case; FUZZ_API_DUMP=1 also prints
 * every argument's floats (hex) before the call, to turn a failure into a program.
 *
 * Build (clang; -Dfuzz=true instruments every target for libFuzzer):
 *   CC=clang meson setup build-fuzz --buildtype=debugoptimized \
 *     -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true \
 *     -Dtests=false -Dtools=false -Dbench=disabled -Dexamples=false
 *   meson test -C build-fuzz fuzz_api    # what scripts/test runs: 3000 inputs
 * Fuzz for longer (fuzz/run writes the seed corpus, then passes its options on):
 *   UBSAN_OPTIONS=halt_on_error=1 fuzz/run build-fuzz/fuzz/fuzz_api python3 \
 *     fuzz/seeds.py /tmp/fuzz-work -max_total_time=3600
 * and replay a failing input with build-fuzz/fuzz/fuzz_api FILE.
 */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnorm.h"
#include "conformance.h"
#include "ops.h"
#include "reference.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FUZZ_MXCSR 1
/* MXCSR's flush-to-zero and denormals-are-zero bits, and its exception flags. */
#define MXCSR_FTZ 0x8000u
#define MXCSR_DAZ 0x0040u
#define MXCSR_FLAGS 0x003fu
#else
#define FUZZ_MXCSR 0
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define FUZZ_ASAN 1
#endif
#endif
#ifndef FUZZ_ASAN
#define FUZZ_ASAN 0
#endif

/* ---- limits ----------------------------------------------------------------------- */

/* Logical elements of a tensor (shapes above are cut down): 1.2 MB, a little above
 * the smallest threshold for streaming stores (1 MiB), so every path is reachable
 * and an input runs in under a second. Valid calls over it are skipped; calls that
 * must fail keep any size, for the size checks. */
#define MAX_ELEMS ((size_t)300000)
/* Floats in one buffer the harness allocates (padding makes buffers larger). */
#define MAX_ALLOC ((size_t)1 << 21)
/* Channels, except bnorm_fold's c beyond what any array can hold: above SPLIT (1024)
 * of training's rows. */
#define C_CAP ((size_t)1100)
/* Floats given for an argument whose extent cannot be allocated, in a call that
 * must fail before touching it. */
#define SMALL_ALLOC ((size_t)16)
/* Largest extent, in elements, whose bytes fit in ptrdiff_t. */
#define PMAX4 ((usat)(PTRDIFF_MAX / sizeof(float)))

/* Before a call, every byte of an output buffer holds this: 0x5a5a5a5a is a finite
 * positive float (1.5e16), so an input pointed into an output is still valid data. */
#define SENTINEL_BYTE 0x5a


/* Magnitudes at and above this are not checked against a bound (float results
 * near the overflow threshold). */
#define MAG_MAX 1e37

/* Sizes in 64 bits, saturated at UINT64_MAX: beyond every address, whatever the
 * width of size_t. */
typedef uint64_t usat;

static usat sat_mul(usat a, usat b)
{
    usat r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static usat sat_add(usat a, usat b)
{
    usat r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* ---- input bytes ------------------------------------------------------------------ */

/* Structure bytes come from the input (0 once it is used up); data bytes too, then
 * from a generator seeded by the whole input, so a short input still fills a large
 * tensor, deterministically. */
typedef struct src {
    const uint8_t *p;
    size_t n, pos;
    uint64_t rng;
} src;

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint8_t take8(src *s)
{
    return s->pos < s->n ? s->p[s->pos++] : 0;
}

static uint16_t take16(src *s)
{
    uint16_t lo = take8(s);
    return (uint16_t)(lo | take8(s) << 8);
}

static uint32_t take32(src *s)
{
    uint32_t lo = take16(s);
    return lo | (uint32_t)take16(s) << 16;
}

static uint64_t take64(src *s)
{
    uint64_t lo = take32(s);
    return lo | (uint64_t)take32(s) << 32;
}

static uint8_t data8(src *s)
{
    return s->pos < s->n ? s->p[s->pos++] : (uint8_t)splitmix(&s->rng);
}

static float data_bits(src *s)
{
    uint32_t u = 0;
    for (int i = 0; i < 4; i++)
        u |= (uint32_t)data8(s) << (8 * i);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float take_float_bits(src *s)
{
    uint32_t u = take32(s);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Roughly N(0, 1) from two data bytes (a sum of uniforms: cheap, deterministic). */
static double normalish(src *s)
{
    double u = 0.0;
    for (int i = 0; i < 2; i++)
        u += (data8(s) + 0.5) / 256.0;
    return (u - 1.0) * 2.45;
}

/* ---- operations and their arguments ------------------------------------------------- */

enum op { OP_FOLD, OP_APPLY, OP_INFER, OP_FWD, OP_BWD, OP_FROZEN, OP_WEIGHTS, OP_COUNT };

/* Every pointer argument of any operation. The four tensors come first: their index
 * is also the index of their strides (x_strides, y_strides, dy_strides, dx_strides). */
enum role {
    R_X, R_Y, R_DY, R_DX,
    R_GAMMA, R_BETA, R_MEAN, R_VAR, R_SCALE, R_SHIFT, R_SAVE_MEAN, R_SAVE_INVSTD,
    R_RUN_MEAN, R_RUN_VAR, R_DGAMMA, R_DBETA, R_WEIGHTS, R_BIAS_IN, R_BIAS_OUT,
    R_COUNT
};
#define SLOTS 4

static const char *const role_names[R_COUNT] = {
    "x", "y", "dy", "dx", "gamma", "beta", "mean", "var", "scale", "shift", "save_mean",
    "save_invstd", "running.mean", "running.var", "dgamma", "dbeta", "weights",
    "bias_in", "bias_out",
};

typedef struct role_spec {
    int role;
    bool out;      /* written by the call (outputs and read-and-written arguments) */
    bool required; /* NULL is BNORM_ERR_NULL_POINTER */
    bool data;     /* holds data before the call (inputs and read-and-written ones) */
} role_spec;

typedef struct op_spec {
    const char *name;
    bool tensor; /* takes a bnorm_shape */
    int nroles;
    role_spec roles[8];
} op_spec;

static const op_spec op_specs[OP_COUNT] = {
    [OP_FOLD] = {"bnorm_fold", false, 6,
                 {{R_GAMMA, false, false, true}, {R_BETA, false, false, true},
                  {R_MEAN, false, true, true}, {R_VAR, false, true, true},
                  {R_SCALE, true, true, false}, {R_SHIFT, true, true, false}}},
    [OP_APPLY] = {"bnorm_inference_apply", true, 4,
                  {{R_X, false, true, true}, {R_Y, true, true, false},
                   {R_SCALE, false, true, true}, {R_SHIFT, false, true, true}}},
    [OP_INFER] = {"bnorm_inference", true, 6,
                  {{R_X, false, true, true}, {R_Y, true, true, false},
                   {R_GAMMA, false, false, true}, {R_BETA, false, false, true},
                   {R_MEAN, false, true, true}, {R_VAR, false, true, true}}},
    /* running.mean and running.var are required only when running is given. */
    [OP_FWD] = {"bnorm_training_forward", true, 8,
                {{R_X, false, true, true}, {R_Y, true, true, false},
                 {R_GAMMA, false, false, true}, {R_BETA, false, false, true},
                 {R_SAVE_MEAN, true, false, false}, {R_SAVE_INVSTD, true, false, false},
                 {R_RUN_MEAN, true, true, true}, {R_RUN_VAR, true, true, true}}},
    /* dx, dgamma, dbeta: at least one. */
    [OP_BWD] = {"bnorm_training_backward", true, 8,
                {{R_X, false, true, true}, {R_DY, false, true, true},
                 {R_DX, true, false, false}, {R_GAMMA, false, false, true},
                 {R_SAVE_MEAN, false, true, true}, {R_SAVE_INVSTD, false, true, true},
                 {R_DGAMMA, true, false, false}, {R_DBETA, true, false, false}}},
    [OP_FROZEN] = {"bnorm_frozen_backward", true, 4,
                   {{R_DY, false, true, true}, {R_DX, true, true, false},
                    {R_GAMMA, false, false, true}, {R_VAR, false, true, true}}},
    [OP_WEIGHTS] = {"bnorm_fold_into_weights", false, 7,
                    {{R_WEIGHTS, true, true, true}, {R_BIAS_IN, false, false, true},
                     {R_BIAS_OUT, true, true, false}, {R_GAMMA, false, false, true},
                     {R_BETA, false, false, true}, {R_MEAN, false, true, true},
                     {R_VAR, false, true, true}}},
};

/* Where a pointer argument goes. */
enum place { P_OWN, P_NULL, P_PARTNER, P_ALIAS };

/* How an argument's values are made. */
typedef struct dspec {
    uint8_t mode, param;
} dspec;

/* One decoded input. */
typedef struct fcase {
    int op;
    uint8_t isa_pick;
    bool reverse_first; /* the public call runs through the reverse-order pool */
    bool shape_null;
    /* bnorm_fold_into_weights: c is out_channels, spatial is per_channel. */
    bnorm_shape shape;
    uint32_t weight_layout;
    bool has_strides[SLOTS];
    bnorm_strides strides[SLOTS];
    uint8_t place[R_COUNT];
    uint8_t alias_target[R_COUNT]; /* index into the op's roles */
    uint16_t alias_offset[R_COUNT];
    uint8_t misalign[R_COUNT];
    float eps;
    bool running;
    bnorm_running_stats run; /* momentum and convention; the pointers are the roles' */
    bool act_null;
    bnorm_activation act;
    bool raw_var;   /* var, save_invstd and running.var keep negative values */
    bool real_stats; /* the backward's save_mean and save_invstd are x's statistics */
    dspec data[R_COUNT];
    /* x86: MXCSR_FTZ and/or MXCSR_DAZ set by the "caller" around every library call
     * (results are then only compared between calls, not with the reference). */
    unsigned fp_mode;
} fcase;

static const role_spec *find_role(int op, int role)
{
    const op_spec *o = &op_specs[op];
    for (int i = 0; i < o->nroles; i++)
        if (o->roles[i].role == role)
            return &o->roles[i];
    return NULL;
}

/* Whether a role is an argument of this call (the running statistics only with a
 * running struct). */
static bool role_used(const fcase *cs, int role)
{
    if (!find_role(cs->op, role))
        return false;
    if ((role == R_RUN_MEAN || role == R_RUN_VAR) && !cs->running)
        return false;
    return true;
}

/* ---- decoding ----------------------------------------------------------------------- */

static const size_t edge_sizes[] = {0,   1,   2,   3,   4,   5,   7,    8,    9,   15,  16,
                                    17,  24,  31,  32,  33,  48,  63,   64,   65,  127, 128,
                                    129, 255, 256, 257, 300, 511, 512,  513,  1000, 1023,
                                    1024, 1025, 1100, 2048, 3136, 4096, 8192, 50176};

static size_t huge_size(src *s)
{
    static const size_t list[] = {
        SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2, SIZE_MAX / 2 + 1, PTRDIFF_MAX / 4,
        PTRDIFF_MAX / 4 + 1, PTRDIFF_MAX / 8, (size_t)1 << 32, ((size_t)1 << 32) + 1,
        (size_t)1 << 31, (size_t)1 << 62, (size_t)1 << 61, (size_t)1 << 40, 3037000500u,
    };
    uint8_t b = take8(s);
    return b < 240 ? list[b % (COUNT(list))] : (size_t)take64(s);
}

static size_t take_size(src *s)
{
    uint8_t b = take8(s);
    if (b < 150)
        return 1 + b % 10;
    if (b < 210)
        return edge_sizes[take8(s) % (COUNT(edge_sizes))];
    if (b < 245)
        return 1 + take16(s) % 2048;
    return huge_size(s);
}

/* Contiguous elements of one run (NCHW: a plane; NHWC: a pixel), and how many runs
 * an image has; saturated. */
static usat run_len(const bnorm_shape *sh)
{
    return sh->layout == BNORM_NCHW ? sh->spatial : sh->c;
}

static usat runs_per_image(const bnorm_shape *sh)
{
    return sh->layout == BNORM_NCHW ? sh->c : sh->spatial;
}

static size_t to_size(usat v)
{
    return v >= SIZE_MAX ? SIZE_MAX : (size_t)v;
}

static size_t round16(size_t v)
{
    return v > SIZE_MAX - 15 ? v : (v + 15) / 16 * 16;
}

static void take_strides(src *s, fcase *cs, int slot)
{
    const bnorm_shape *sh = &cs->shape;
    bool layout_ok = sh->layout == BNORM_NCHW || sh->layout == BNORM_NHWC;
    uint8_t b = take8(s);
    uint8_t p1 = take8(s), p2 = take8(s);
    size_t run = layout_ok ? to_size(run_len(sh)) : sh->spatial;
    size_t outer = layout_ok ? to_size(runs_per_image(sh)) : sh->c;
    bnorm_strides *st = &cs->strides[slot];
    cs->has_strides[slot] = true;
    if (b < 120) {
        cs->has_strides[slot] = false;
    } else if (b < 185) { /* padded, sometimes to whole 64-byte lines */
        size_t inner = run + p1 % 9;
        if (p1 & 0x80)
            inner = round16(inner);
        size_t image = to_size(sat_add(sat_mul(outer ? outer - 1 : 0, inner), run));
        size_t batch = image + p2 % 20;
        if (p2 & 0x80)
            batch = round16(batch);
        *st = (bnorm_strides){inner, batch};
    } else if (b < 200) { /* dense, given explicitly */
        *st = (bnorm_strides){run, to_size(sat_mul(sh->c, sh->spatial))};
    } else if (b < 215) { /* one stride one element short, or both exact */
        size_t image = to_size(sat_add(sat_mul(outer ? outer - 1 : 0, run), run));
        *st = (bnorm_strides){run - (p1 & 1), image - ((p1 >> 1) & 1)};
    } else if (b < 235 && slot != 0) { /* the strides of x (or dy for dx) */
        int from = slot == 3 ? 2 : 0;
        cs->has_strides[slot] = cs->has_strides[from];
        *st = cs->strides[from];
    } else { /* anything */
        st->inner = (p1 & 1) ? huge_size(s) : run + take16(s);
        st->batch = (p1 & 2) ? huge_size(s) : (size_t)take32(s);
    }
}

/* A float from a list: mostly one of its first `common` entries, sometimes any entry,
 * rarely any bits. */
static float take_listed(src *s, const float *list, size_t n, size_t common)
{
    uint8_t b = take8(s);
    if (b < 200)
        return list[b % common];
    return b < 250 ? list[b % n] : take_float_bits(s);
}

static float take_eps(src *s)
{
    static const float list[] = {1e-5f, 0.0f,  1e-3f, 1.0f,    0.1f,      -0.0f,
                                 FLT_TRUE_MIN, FLT_MIN, 1e30f, FLT_MAX,   NAN,
                                 INFINITY,     -INFINITY, -1e-5f, -FLT_TRUE_MIN};
    return take_listed(s, list, COUNT(list), 5);
}

static float take_momentum(src *s)
{
    static const float list[] = {0.1f, 0.9f, 0.0f,  1.0f,      0.5f,      0.01f,
                                 -0.0f, 1e-8f, NAN, -0.1f, 1.0000001f, INFINITY, -INFINITY};
    return take_listed(s, list, COUNT(list), 6);
}

static float take_bound(src *s)
{
    static const float list[] = {0.0f, 6.0f, -INFINITY, INFINITY, -1.0f, 1.0f,
                                 -0.0f, 0.5f, -6.0f,    NAN,      1e30f, -1e-40f};
    return take_listed(s, list, COUNT(list), COUNT(list));
}

static uint32_t take_enum(src *s, uint32_t defined)
{
    static const uint32_t bad[] = {2, 3, 7, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    uint8_t b = take8(s);
    if (b < 245)
        return b % defined;
    if (b < 251) {
        uint32_t v = bad[b % COUNT(bad)];
        return v < defined ? defined : v;
    }
    return take32(s);
}

static void decode(src *s, fcase *cs)
{
    memset(cs, 0, sizeof *cs);
    cs->op = take8(s) % OP_COUNT;
    cs->isa_pick = take8(s);
    uint8_t flags = take8(s);
    cs->reverse_first = flags & 1;
    cs->shape_null = (flags & 0xfe) == 0xfe;
    cs->raw_var = (flags & 0x1c) == 0x1c;
    cs->real_stats = (flags & 0x20) != 0;

    bnorm_shape *sh = &cs->shape;
    sh->n = take_size(s);
    sh->c = take_size(s);
    sh->spatial = take_size(s);
    sh->layout = (bnorm_layout)take_enum(s, 2);
    cs->weight_layout = take_enum(s, 2);
    if (cs->op == OP_WEIGHTS)
        sh->n = 1;
    /* Channels beyond C_CAP only where no array could hold them (bnorm_fold): the
     * per-channel arrays are read when a call is checked, whatever else is wrong. */
    if (sh->c > C_CAP && !(cs->op == OP_FOLD && sh->c > PTRDIFF_MAX / sizeof(float)))
        sh->c = 1 + sh->c % C_CAP;
    /* Ordinary sizes are cut down to MAX_ELEMS; huge ones stay, for the size checks. */
    if (cs->op != OP_FOLD && sh->n <= 65536 && sh->spatial <= 65536) {
        size_t nc = sh->n * sh->c;
        if (nc && sh->spatial > MAX_ELEMS / nc)
            sh->spatial = MAX_ELEMS / nc ? MAX_ELEMS / nc : 1;
        if (sh->c && sh->spatial && sh->n > MAX_ELEMS / (sh->c * sh->spatial))
            sh->n =
                MAX_ELEMS / (sh->c * sh->spatial) ? MAX_ELEMS / (sh->c * sh->spatial) : 1;
    }
    for (int slot = 0; slot < SLOTS; slot++)
        take_strides(s, cs, slot);

    const op_spec *o = &op_specs[cs->op];
    for (int i = 0; i < o->nroles; i++) {
        int r = o->roles[i].role;
        uint8_t b = take8(s);
        cs->place[r] = b < 185 ? P_OWN : b < 205 ? P_NULL : b < 228 ? P_PARTNER : P_ALIAS;
        cs->misalign[r] = b >= 100 && b < 185 ? b % 8 : 0;
        if (cs->place[r] == P_ALIAS) {
            cs->alias_target[r] = take8(s);
            cs->alias_offset[r] = take16(s);
        }
    }
    cs->eps = take_eps(s);
    uint8_t rb = take8(s);
    cs->running = rb < 180;
    cs->run.momentum = take_momentum(s);
    cs->run.convention = (bnorm_momentum_convention)take_enum(s, 2);
    uint8_t ab = take8(s);
    cs->act_null = ab < 40;
    cs->act.kind = (bnorm_act_kind)(ab < 250 ? ab % 3 : take_enum(s, 3));
    cs->act.lo = take_bound(s);
    cs->act.hi = take_bound(s);
    if (ab & 0x40 && cs->act.lo > cs->act.hi) { /* mostly ordered bounds */
        float t = cs->act.lo;
        cs->act.lo = cs->act.hi;
        cs->act.hi = t;
    }
    for (int i = 0; i < o->nroles; i++) {
        int r = o->roles[i].role;
        cs->data[r].mode = take8(s);
        cs->data[r].param = take8(s);
    }
    uint8_t fb = take8(s);
#if FUZZ_MXCSR
    static const unsigned modes[] = {MXCSR_FTZ, MXCSR_DAZ, MXCSR_FTZ | MXCSR_DAZ};
    cs->fp_mode = fb < 232 ? 0 : modes[fb % 3];
#else
    (void)fb;
#endif
}

/* ---- values ----------------------------------------------------------------------- */

static const float specials[] = {
    NAN, -NAN, INFINITY, -INFINITY, -0.0f, 0.0f, FLT_TRUE_MIN, -FLT_MIN / 4, FLT_MAX,
    -FLT_MAX, FLT_MIN, 1e-40f,
};

/* Value idx (of channel ch) of an argument made as d says. */
static float gen_value(src *s, dspec d, size_t ch, size_t idx)
{
    static const double offsets[] = {0.0, 1.0, 1e3, 1e4, -1e4, 1e6, -3.0, 0.5};
    static const double scales[] = {1.0, 1e-3, 1e3, 0.1};
    switch (d.mode % 8) {
    case 0: /* small multiples of a power of two: ties, zeros */
        return (float)(int8_t)data8(s) / (float)(1u << (d.param % 8));
    case 1:
        return (float)(offsets[d.param % 8] + scales[(d.param >> 3) % 4] * normalish(s));
    case 2: /* any bits */
        return data_bits(s);
    case 3: /* mostly ordinary, some special */
        if ((data8(s) & 15) == 0)
            return specials[data8(s) % (COUNT(specials))];
        return (float)(offsets[d.param % 8] + scales[(d.param >> 3) % 4] * normalish(s));
    case 4: { /* constant per channel */
        uint64_t h = ch * 0x9e3779b97f4a7c15ull + d.param;
        return (float)((double)(splitmix(&h) % 2001) - 1000.0) / 8.0f;
    }
    case 5: /* large values that cancel among tiny ones: sums show their order */
        if (idx % 5 == 2)
            return (float)((idx / 5) % 2 ? -1e6 : 1e6) * (float)(1 + (idx / 10) % 7);
        return (float)(1e-4 * normalish(s));
    case 6: /* small integers */
        return (float)((int)(data8(s) % 7) - 3);
    default: { /* huge magnitudes */
        double m = pow(10.0, 30 + data8(s) % 9) * (1.0 + data8(s) / 256.0);
        return (float)((d.param & 1 ? -m : m) * (data8(s) & 1 ? 1.0 : 0.5));
    }
    }
}

/* ---- the model of the library's argument checks ------------------------------------- */

typedef struct slot_geom {
    unsigned err;        /* (1 << status) of each error these strides raise */
    size_t inner, batch; /* resolved (when err == 0) */
    usat extent;         /* first to last element, saturated */
} slot_geom;

#define BIT(st) (1u << (st))

static bool layout_ok(const bnorm_shape *sh)
{
    return sh->layout == BNORM_NCHW || sh->layout == BNORM_NHWC;
}

static bool sizes_ok(const bnorm_shape *sh)
{
    return sh->n && sh->c && sh->spatial;
}

/* The geometry of one tensor (strides NULL: dense), for a shape whose layout and
 * sizes are valid (bnorm_strides' rules). */
static void model_slot(const bnorm_shape *sh, const bnorm_strides *st, slot_geom *g)
{
    usat run = run_len(sh), outer = runs_per_image(sh);
    usat dense_image = sat_mul(sh->c, sh->spatial);
    g->err = 0;
    if (!st) {
        g->inner = to_size(run);
        g->batch = to_size(dense_image);
        g->extent = sat_mul(sh->n, dense_image);
        if (g->extent > PMAX4)
            g->err |= BIT(BNORM_ERR_OVERFLOW);
        return;
    }
    g->inner = st->inner;
    g->batch = st->batch;
    if ((usat)st->inner < run)
        g->err |= BIT(BNORM_ERR_BAD_STRIDE);
    usat image = sat_add(sat_mul(outer - 1, st->inner), run);
    if (image > PMAX4)
        g->err |= BIT(BNORM_ERR_OVERFLOW);
    if ((usat)st->batch < image)
        g->err |= BIT(BNORM_ERR_BAD_STRIDE);
    g->extent = sat_add(sat_mul(sh->n - 1, st->batch), image);
    if (g->extent > PMAX4)
        g->err |= BIT(BNORM_ERR_OVERFLOW);
}

/* Everything the model knows about a case before any pointer exists. */
typedef struct model {
    bool null_err;       /* a NULL where one is not allowed (checked first) */
    unsigned err;        /* errors not depending on addresses or data */
    bool extents_known;  /* layout and sizes valid: every extent below is exact or
                          * saturated */
    bool shape_err;      /* shape or strides wrong: extents may be saturated */
    slot_geom g[SLOTS];
    usat count[R_COUNT]; /* floats each argument spans (saturated) */
} model;

static const bnorm_strides *strides_of(const fcase *cs, int slot)
{
    return cs->has_strides[slot] ? &cs->strides[slot] : NULL;
}

/* A parameter as the library's checks compare it: under DAZ, which the call runs
 * with, a subnormal is a zero of its sign (docs/guide.md, errors). */
static float as_compared(const fcase *cs, float v)
{
#if FUZZ_MXCSR
    if ((cs->fp_mode & MXCSR_DAZ) && fpclassify(v) == FP_SUBNORMAL)
        return copysignf(0.0f, v);
#else
    (void)cs;
#endif
    return v;
}

static bool eps_bad(const fcase *cs)
{
    float eps = as_compared(cs, cs->eps);
    return !(eps >= 0.0f) || isinf(eps);
}

static void model_structure(const fcase *cs, model *m)
{
    memset(m, 0, sizeof *m);
    const bnorm_shape *sh = &cs->shape;
    const op_spec *o = &op_specs[cs->op];

    /* NULL pointers */
    if (o->tensor && cs->shape_null)
        m->null_err = true;
    for (int i = 0; i < o->nroles; i++) {
        const role_spec *rs = &o->roles[i];
        if (role_used(cs, rs->role) && rs->required && cs->place[rs->role] == P_NULL)
            m->null_err = true;
    }
    if (cs->op == OP_BWD && cs->place[R_DX] == P_NULL && cs->place[R_DGAMMA] == P_NULL &&
        cs->place[R_DBETA] == P_NULL)
        m->null_err = true;

    /* sizes, enumerations, values */
    usat c = sh->c;
    switch (cs->op) {
    case OP_FOLD:
        if (sh->c == 0)
            m->err |= BIT(BNORM_ERR_BAD_SHAPE);
        if (c > PMAX4)
            m->err |= BIT(BNORM_ERR_OVERFLOW);
        m->extents_known = true;
        m->shape_err = m->err != 0;
        break;
    case OP_WEIGHTS: {
        if (cs->weight_layout > BNORM_WEIGHTS_OC_LAST)
            m->err |= BIT(BNORM_ERR_BAD_ENUM);
        if (sh->c == 0 || sh->spatial == 0)
            m->err |= BIT(BNORM_ERR_BAD_SHAPE);
        usat count = sat_mul(sh->c, sh->spatial);
        if (count > PMAX4)
            m->err |= BIT(BNORM_ERR_OVERFLOW);
        m->count[R_WEIGHTS] = count;
        m->extents_known = true;
        m->shape_err = m->err != 0;
        break;
    }
    default: {
        if (!layout_ok(sh))
            m->err |= BIT(BNORM_ERR_BAD_ENUM);
        if (!sizes_ok(sh))
            m->err |= BIT(BNORM_ERR_BAD_SHAPE);
        if ((cs->op == OP_FWD || cs->op == OP_BWD) && sat_mul(sh->n, sh->spatial) < 2)
            m->err |= BIT(BNORM_ERR_BAD_SHAPE);
        m->extents_known = layout_ok(sh) && sizes_ok(sh);
        if (m->extents_known) {
            slot_geom dense;
            model_slot(sh, NULL, &dense);
            m->err |= dense.err;
            for (int slot = 0; slot < SLOTS; slot++) {
                if (!role_used(cs, slot))
                    continue;
                /* dx_strides are ignored without dx */
                bool ignored =
                    cs->op == OP_BWD && slot == R_DX && cs->place[R_DX] == P_NULL;
                model_slot(sh, ignored ? NULL : strides_of(cs, slot), &m->g[slot]);
                m->err |= m->g[slot].err;
                m->count[slot] = m->g[slot].extent;
            }
        }
        m->shape_err = m->err != 0;
        break;
    }
    }
    for (int r = SLOTS; r < R_COUNT; r++)
        if (r != R_WEIGHTS)
            m->count[r] = c;

    if (cs->op != OP_APPLY && cs->op != OP_BWD && eps_bad(cs))
        m->err |= BIT(BNORM_ERR_BAD_VALUE);
    if ((cs->op == OP_APPLY || cs->op == OP_INFER) && !cs->act_null) {
        switch (cs->act.kind) {
        case BNORM_ACT_NONE:
        case BNORM_ACT_RELU:
            break;
        case BNORM_ACT_CLAMP:
            if (isnan(cs->act.lo) || isnan(cs->act.hi) ||
                as_compared(cs, cs->act.lo) > as_compared(cs, cs->act.hi))
                m->err |= BIT(BNORM_ERR_BAD_VALUE);
            break;
        default:
            m->err |= BIT(BNORM_ERR_BAD_ENUM);
        }
    }
    if (cs->op == OP_FWD && cs->running) {
        if (cs->run.convention != BNORM_MOMENTUM_PYTORCH &&
            cs->run.convention != BNORM_MOMENTUM_ONNX)
            m->err |= BIT(BNORM_ERR_BAD_ENUM);
        float momentum = as_compared(cs, cs->run.momentum);
        if (!(momentum >= 0.0f && momentum <= 1.0f))
            m->err |= BIT(BNORM_ERR_BAD_VALUE);
    }
}

/* ---- buffers ------------------------------------------------------------------------ */

/* A buffer the harness owns: `count` floats at data, `lead` floats before it (the
 * misalignment; poisoned for AddressSanitizer where whole granules allow), and a
 * copy of every byte as it was before the call. */
typedef struct own_buf {
    unsigned char *base;
    float *data;
    size_t count, lead;
    unsigned char *snap;
} own_buf;

typedef struct inst {
    bool dense; /* strides NULL, every pointer its own buffer */
    own_buf buf[R_COUNT];
    float *ptr[R_COUNT];
    int host[R_COUNT];     /* the buffer ptr points into, or -1 */
    size_t off[R_COUNT];   /* ptr - buf[host].data */
    const bnorm_strides *st[SLOTS];
    size_t inner[SLOTS], batch[SLOTS];
    bnorm_running_stats run;
} inst;

static size_t buf_bytes(const own_buf *b)
{
    return (b->lead + b->count) * sizeof(float);
}

static void buf_alloc(own_buf *b, size_t count, size_t lead)
{
    b->count = count;
    b->lead = lead;
    void *p = NULL;
    if (posix_memalign(&p, 64, buf_bytes(b)) != 0 || !p)
        abort();
    b->base = p;
    b->data = (float *)(void *)(b->base + lead * sizeof(float));
    memset(b->base, SENTINEL_BYTE, buf_bytes(b));
    b->snap = malloc(buf_bytes(b));
    if (!b->snap)
        abort();
#if FUZZ_ASAN
    size_t granules = lead * sizeof(float) / 8 * 8;
    if (granules)
        ASAN_POISON_MEMORY_REGION(b->base, granules);
#endif
}

static void buf_free(own_buf *b)
{
    if (!b->base)
        return;
#if FUZZ_ASAN
    ASAN_UNPOISON_MEMORY_REGION(b->base, buf_bytes(b));
#endif
    free(b->base);
    free(b->snap);
    memset(b, 0, sizeof *b);
}

/* Reading and writing a buffer with its poisoned lead. */
static void buf_copy_out(const own_buf *b, unsigned char *dst)
{
#if FUZZ_ASAN
    ASAN_UNPOISON_MEMORY_REGION(b->base, buf_bytes(b));
#endif
    memcpy(dst, b->base, buf_bytes(b));
#if FUZZ_ASAN
    size_t granules = b->lead * sizeof(float) / 8 * 8;
    if (granules)
        ASAN_POISON_MEMORY_REGION(b->base, granules);
#endif
}

static void buf_restore(own_buf *b)
{
#if FUZZ_ASAN
    ASAN_UNPOISON_MEMORY_REGION(b->base, buf_bytes(b));
#endif
    memcpy(b->base, b->snap, buf_bytes(b));
#if FUZZ_ASAN
    size_t granules = b->lead * sizeof(float) / 8 * 8;
    if (granules)
        ASAN_POISON_MEMORY_REGION(b->base, granules);
#endif
}

static void inst_free(inst *in)
{
    for (int r = 0; r < R_COUNT; r++)
        buf_free(&in->buf[r]);
}

static void inst_restore(inst *in)
{
    for (int r = 0; r < R_COUNT; r++)
        if (in->buf[r].base)
            buf_restore(&in->buf[r]);
}

/* Logical elements of an argument (tensors in logical NCHW order n, c, s). */
static size_t logical_count(const fcase *cs, int role)
{
    const bnorm_shape *sh = &cs->shape;
    if (role < SLOTS)
        return sh->n * sh->c * sh->spatial;
    if (role == R_WEIGHTS)
        return sh->c * sh->spatial;
    return sh->c;
}

/* The offset, from the argument's pointer, of its logical element i. */
static size_t logical_pos(const fcase *cs, const inst *in, int role, size_t i)
{
    if (role >= SLOTS)
        return i;
    const bnorm_shape *sh = &cs->shape;
    size_t s = i % sh->spatial, c = i / sh->spatial % sh->c, n = i / sh->spatial / sh->c;
    if (sh->layout == BNORM_NCHW)
        return n * in->batch[role] + c * in->inner[role] + s;
    return n * in->batch[role] + s * in->inner[role] + c;
}

/* Channel of logical element i. */
static size_t logical_channel(const fcase *cs, int role, size_t i)
{
    if (role >= SLOTS)
        return role == R_WEIGHTS ? i / cs->shape.spatial : i;
    return i / cs->shape.spatial % cs->shape.c;
}

/* Value before the call (from the snapshot) of an argument's element at pos. */
static float init_at(const inst *in, int role, size_t pos)
{
    const own_buf *b = &in->buf[in->host[role]];
    float v;
    memcpy(&v, b->snap + (b->lead + in->off[role] + pos) * sizeof(float), sizeof v);
    return v;
}

static float init_val(const fcase *cs, const inst *in, int role, size_t i)
{
    return init_at(in, role, logical_pos(cs, in, role, i));
}

/* Value now (after the call). */
static float now_val(const fcase *cs, const inst *in, int role, size_t i)
{
    return in->ptr[role][logical_pos(cs, in, role, i)];
}

/* Whether a role's values must be kept non-negative when generated. */
static bool nonnegative_role(const fcase *cs, int role)
{
    return !cs->raw_var && (role == R_VAR || role == R_SAVE_INVSTD || role == R_RUN_VAR);
}

/* The roles a partner placement points at: in place. */
static int partner_of(int role)
{
    switch (role) {
    case R_Y: return R_X;
    case R_DX: return R_DY;
    case R_BIAS_OUT: return R_BIAS_IN;
    default: return -1;
    }
}

/* Argument r in a buffer of its own, `lead` floats past 64 bytes: false where it
 * spans more than MAX_ALLOC floats, unless small_ok (a call that must fail), which
 * gives it SMALL_ALLOC. */
static bool place_own(inst *in, int r, usat count, size_t lead, bool small_ok)
{
    size_t n;
    if (count <= MAX_ALLOC)
        n = count ? (size_t)count : 1;
    else if (small_ok)
        n = SMALL_ALLOC;
    else
        return false;
    buf_alloc(&in->buf[r], n, lead);
    in->ptr[r] = in->buf[r].data;
    in->host[r] = r;
    in->off[r] = 0;
    return true;
}

/* Argument r at `off` floats into target's own buffer. */
static void place_in(inst *in, int r, int target, size_t off)
{
    in->ptr[r] = in->buf[target].data + off;
    in->host[r] = target;
    in->off[r] = off;
}

/*
 * Builds the arguments of a case. For the fuzzed instance (orig NULL): placements,
 * strides and misalignment as decoded, data from s. For a dense one (orig given):
 * NULL strides, every non-NULL argument in its own buffer, data copied logically from
 * orig's. `small_ok`: arguments too large to allocate get SMALL_ALLOC floats (a call
 * that must fail); otherwise such a case returns false.
 */
static bool inst_build(const fcase *cs, const model *m, inst *in, src *s, const inst *orig,
                       bool small_ok)
{
    memset(in, 0, sizeof *in);
    in->dense = orig != NULL;
    for (int r = 0; r < R_COUNT; r++)
        in->host[r] = -1;
    const op_spec *o = &op_specs[cs->op];
    for (int slot = 0; slot < SLOTS; slot++) {
        in->st[slot] = in->dense ? NULL : strides_of(cs, slot);
        in->inner[slot] = m->g[slot].inner;
        in->batch[slot] = m->g[slot].batch;
        if (in->dense && m->extents_known && !m->shape_err) {
            slot_geom d;
            model_slot(&cs->shape, NULL, &d);
            in->inner[slot] = d.inner;
            in->batch[slot] = d.batch;
        }
    }
    /* counts: a dense instance's tensors are n * c * spatial */
    usat count[R_COUNT];
    for (int r = 0; r < R_COUNT; r++)
        count[r] = in->dense && r < SLOTS ? (usat)logical_count(cs, r) : m->count[r];

    /* own buffers and NULLs first, then the pointers into them */
    for (int i = 0; i < o->nroles; i++) {
        int r = o->roles[i].role;
        if (!role_used(cs, r) || cs->place[r] == P_NULL)
            continue;
        if (!in->dense && cs->place[r] != P_OWN)
            continue;
        if (!place_own(in, r, count[r], in->dense ? 0 : cs->misalign[r], small_ok))
            return false;
    }
    for (int i = 0; !in->dense && i < o->nroles; i++) {
        int r = o->roles[i].role;
        if (!role_used(cs, r) || cs->place[r] == P_NULL || cs->place[r] == P_OWN)
            continue;
        int target = cs->place[r] == P_PARTNER
                         ? partner_of(r)
                         : o->roles[cs->alias_target[r] % o->nroles].role;
        bool placed = false;
        if (target >= 0 && target != r && role_used(cs, target) &&
            in->host[target] == target) {
            size_t room = in->buf[target].count, off = cs->alias_offset[r];
            placed = true;
            if (cs->place[r] == P_PARTNER)
                place_in(in, r, target, 0);
            else if (count[r] <= room) /* inside the target, all of it addressable */
                place_in(in, r, target, off % (room - (size_t)count[r] + 1));
            else if (count[r] > MAX_ALLOC && small_ok)
                place_in(in, r, target, off % room);
            else
                placed = false;
        }
        if (!placed && !place_own(in, r, count[r], cs->misalign[r], small_ok))
            return false;
    }

    /* data: the logical elements of each own buffer's argument that holds data */
    bool can_fill = m->extents_known && !m->shape_err;
    for (int i = 0; i < o->nroles; i++) {
        const role_spec *rs = &o->roles[i];
        int r = rs->role;
        if (!rs->data || in->host[r] != r || !in->ptr[r])
            continue;
        if (count[r] > MAX_ALLOC) /* a small stand-in: sentinel bytes */
            continue;
        if (!can_fill && r < SLOTS) { /* geometry unknown: fill every float */
            for (size_t j = 0; j < in->buf[r].count; j++)
                in->ptr[r][j] = gen_value(s, cs->data[r], 0, j);
            continue;
        }
        size_t total = logical_count(cs, r);
        if (count[r] < total) /* (only with shape errors) */
            total = (size_t)count[r];
        for (size_t j = 0; j < total; j++) {
            size_t pos = logical_pos(cs, in, r, j);
            float v = orig ? init_val(cs, orig, r, j)
                           : gen_value(s, cs->data[r], logical_channel(cs, r, j), j);
            if (!orig && nonnegative_role(cs, r))
                v = fabsf(v);
            in->ptr[r][pos] = v;
        }
    }
    /* realistic saved statistics: x's mean and 1 / sqrt(var + 1e-5) */
    if (!orig && cs->op == OP_BWD && cs->real_stats && can_fill &&
        count[R_X] <= MAX_ALLOC && in->host[R_X] == R_X &&
        in->host[R_SAVE_MEAN] == R_SAVE_MEAN && in->host[R_SAVE_INVSTD] == R_SAVE_INVSTD) {
        size_t c = cs->shape.c;
        double *mean = malloc(c * sizeof(double)), *var = malloc(c * sizeof(double));
        if (!mean || !var)
            abort();
        bnorm_ref_batch_stats(&cs->shape, in->ptr[R_X], in->inner[R_X], in->batch[R_X],
                              mean, var);
        for (size_t i = 0; i < c; i++) {
            in->ptr[R_SAVE_MEAN][i] = (float)mean[i];
            in->ptr[R_SAVE_INVSTD][i] = (float)(1.0 / sqrt(var[i] + 1e-5));
        }
        free(mean);
        free(var);
    }
    for (int r = 0; r < R_COUNT; r++)
        if (in->buf[r].base)
            buf_copy_out(&in->buf[r], in->buf[r].snap);
    in->run = cs->run;
    in->run.mean = in->ptr[R_RUN_MEAN];
    in->run.var = in->ptr[R_RUN_VAR];
    return true;
}

/* ---- the rest of the model: addresses and data -------------------------------------- */

static bool regions_overlap(const float *a, usat an, const float *b, usat bn)
{
    usat a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < sat_add(b0, sat_mul(bn, sizeof(float))) &&
           b0 < sat_add(a0, sat_mul(an, sizeof(float)));
}

/* Whether output o may overlap argument r: the documented in-place forms only. */
static bool overlap_allowed(const inst *in, const model *m, int o, int r)
{
    if ((o == R_Y && r == R_X) || (o == R_DX && r == R_DY))
        return in->ptr[o] == in->ptr[r] && m->g[o].inner == m->g[r].inner &&
               m->g[o].batch == m->g[r].batch;
    if (o == R_BIAS_OUT && r == R_BIAS_IN)
        return in->ptr[o] == in->ptr[r];
    return false;
}

static bool any_alias(const fcase *cs, const inst *in, const model *m)
{
    const op_spec *o = &op_specs[cs->op];
    for (int i = 0; i < o->nroles; i++) {
        int a = o->roles[i].role;
        if (!o->roles[i].out || !role_used(cs, a) || !in->ptr[a])
            continue;
        for (int j = 0; j < o->nroles; j++) {
            int b = o->roles[j].role;
            if (b == a || !role_used(cs, b) || !in->ptr[b] || overlap_allowed(in, m, a, b))
                continue;
            if (regions_overlap(in->ptr[a], m->count[a], in->ptr[b], m->count[b]))
                return true;
        }
    }
    return false;
}

/* The statuses the call may return: a set of BIT(status). */
static unsigned expected_statuses(const fcase *cs, const inst *in, const model *m)
{
    if (m->null_err)
        return BIT(BNORM_ERR_NULL_POINTER);
    unsigned err = m->err;
    /* a negative variance (read only where the array exists in full) */
    bool var_checked = cs->op == OP_FOLD || cs->op == OP_INFER || cs->op == OP_FROZEN ||
                       cs->op == OP_WEIGHTS;
    if (var_checked && cs->shape.c <= C_CAP && in->ptr[R_VAR]) {
        for (size_t c = 0; c < cs->shape.c; c++)
            if (as_compared(cs, init_at(in, R_VAR, c)) < 0.0f)
                err |= BIT(BNORM_ERR_BAD_VALUE);
    }
    if (!m->extents_known) {
        err |= BIT(BNORM_ERR_ALIAS); /* nothing to compare extents with: any */
    } else if (any_alias(cs, in, m)) {
        err |= BIT(BNORM_ERR_ALIAS);
    }
    return err ? err : BIT(BNORM_OK);
}

/* ---- describing a case -------------------------------------------------------------- */

static const char *layout_str(uint32_t l)
{
    return l == BNORM_NCHW ? "NCHW" : l == BNORM_NHWC ? "NHWC" : "(undefined)";
}

/* FUZZ_API_DUMP=1: every argument's floats before the call, in full (hex), for
 * turning a failure into a standalone program. */
static bool dump;

static void dump_args(const fcase *cs, const inst *in)
{
    const op_spec *o = &op_specs[cs->op];
    for (int i = 0; in && i < o->nroles; i++) {
        int r = o->roles[i].role;
        if (!role_used(cs, r) || in->host[r] != r || !o->roles[i].data)
            continue;
        fprintf(stderr, "  float %s_init[%zu] = {", role_names[r], in->buf[r].count);
        for (size_t j = 0; j < in->buf[r].count; j++)
            fprintf(stderr, "%s%a", j ? ", " : "", init_at(in, r, j));
        fprintf(stderr, "};\n");
    }
}

static void describe(const fcase *cs, const inst *in)
{
    const bnorm_shape *sh = &cs->shape;
    const op_spec *o = &op_specs[cs->op];
    fprintf(stderr, "  operation: %s\n", o->name);
    if (cs->op == OP_WEIGHTS)
        fprintf(stderr, "  layout %u, out_channels %zu, per_channel %zu\n",
                cs->weight_layout, sh->c, sh->spatial);
    else if (cs->op == OP_FOLD)
        fprintf(stderr, "  c %zu\n", sh->c);
    else
        fprintf(stderr, "  shape %s{n %zu, c %zu, spatial %zu, layout %u %s}\n",
                cs->shape_null ? "NULL, would be " : "", sh->n, sh->c, sh->spatial,
                (unsigned)sh->layout, layout_str(sh->layout));
    for (int slot = 0; o->tensor && slot < SLOTS; slot++) {
        if (!role_used(cs, slot))
            continue;
        if (cs->has_strides[slot])
            fprintf(stderr, "  %s_strides {inner %zu, batch %zu}\n", role_names[slot],
                    cs->strides[slot].inner, cs->strides[slot].batch);
        else
            fprintf(stderr, "  %s_strides NULL\n", role_names[slot]);
    }
    for (int i = 0; i < o->nroles; i++) {
        int r = o->roles[i].role;
        if (!role_used(cs, r))
            continue;
        fprintf(stderr, "  %-12s ", role_names[r]);
        if (!in || !in->ptr[r]) {
            fprintf(stderr, "NULL\n");
            continue;
        }
        if (in->host[r] == r)
            fprintf(stderr, "own buffer of %zu floats, %zu floats past 64 bytes",
                    in->buf[r].count, in->buf[r].lead);
        else
            fprintf(stderr, "%s + %zu floats", role_names[in->host[r]], in->off[r]);
        if (o->roles[i].data && in->host[r] == r && in->buf[r].count) {
            fprintf(stderr, ": ");
            for (size_t j = 0; j < in->buf[r].count && j < 6; j++)
                fprintf(stderr, "%.9g ", init_at(in, r, j));
            if (in->buf[r].count > 6)
                fprintf(stderr, "...");
        }
        fprintf(stderr, "\n");
    }
    if (cs->op != OP_APPLY && cs->op != OP_BWD)
        fprintf(stderr, "  eps %.9g (%a)\n", cs->eps, cs->eps);
    if (cs->op == OP_APPLY || cs->op == OP_INFER) {
        if (cs->act_null)
            fprintf(stderr, "  act NULL\n");
        else
            fprintf(stderr, "  act {kind %u, lo %.9g, hi %.9g}\n", (unsigned)cs->act.kind,
                    cs->act.lo, cs->act.hi);
    }
    if (cs->fp_mode)
        fprintf(stderr, "  called with MXCSR%s%s set\n",
                cs->fp_mode & 0x8000u ? " FTZ" : "", cs->fp_mode & 0x40u ? " DAZ" : "");
    if (dump)
        dump_args(cs, in);
    if (cs->op == OP_FWD) {
        if (cs->running)
            fprintf(stderr, "  running {momentum %.9g, convention %u}\n", cs->run.momentum,
                    (unsigned)cs->run.convention);
        else
            fprintf(stderr, "  running NULL\n");
    }
}

/* The case being run, for failure messages. */
static const fcase *cur_case;
static const inst *cur_inst;
static const char *cur_what = "";
static char what[160]; /* cur_what, where it is formatted */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\n==== bnorm fuzz_api failure (%s): ", cur_what);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (cur_case)
        describe(cur_case, cur_inst);
    abort();
}

/* ---- running the operation ---------------------------------------------------------- */

/* The caller's floating-point controls for a call of case cs (x86: FTZ and DAZ as
 * decoded); returns the MXCSR to restore. */
static unsigned fp_enter(const fcase *cs)
{
#if FUZZ_MXCSR
    unsigned saved = _mm_getcsr();
    _mm_setcsr((saved & ~(MXCSR_FTZ | MXCSR_DAZ)) | cs->fp_mode);
    return saved;
#else
    (void)cs;
    return 0;
#endif
}

static void fp_leave(unsigned saved)
{
#if FUZZ_MXCSR
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

/* The controls now (the exception flags masked off), which no call may change. */
static unsigned fp_controls(void)
{
#if FUZZ_MXCSR
    return _mm_getcsr() & ~MXCSR_FLAGS;
#else
    return 0;
#endif
}

static void set_pool(bool reverse)
{
    bnorm_set_parallel_for(reverse ? reverse_parallel_for : NULL, NULL);
}

static const bnorm_activation *act_of(const fcase *cs)
{
    return cs->act_null ? NULL : &cs->act;
}

/* One call: through the public API (k NULL: the active ISA) or an explicit table. */
static bnorm_status call_op(const fcase *cs, inst *in, const bnorm_kernels *k)
{
    const bnorm_shape *sh = cs->shape_null && !in->dense ? NULL : &cs->shape;
    float *const *p = in->ptr;
    const bnorm_strides *const *st = in->st;
    reverse_nested = 0;
    bnorm_status r = BNORM_OK;
    unsigned saved = fp_enter(cs), controls = fp_controls();
    switch (cs->op) {
    case OP_FOLD:
        /* bnorm_fold runs the active table's fold; a test-only table is called
         * directly, on arguments already checked. */
        r = bnorm_fold(cs->shape.c, p[R_GAMMA], p[R_BETA], p[R_MEAN], p[R_VAR], cs->eps,
                       p[R_SCALE], p[R_SHIFT]);
        break;
    case OP_APPLY:
        r = k ? bnorm_inference_apply_with(k, sh, p[R_X], st[R_X], p[R_Y], st[R_Y],
                                           p[R_SCALE], p[R_SHIFT], act_of(cs))
              : bnorm_inference_apply(sh, p[R_X], st[R_X], p[R_Y], st[R_Y], p[R_SCALE],
                                      p[R_SHIFT], act_of(cs));
        break;
    case OP_INFER:
        r = k ? bnorm_inference_with(k, sh, p[R_X], st[R_X], p[R_Y], st[R_Y], p[R_GAMMA],
                                     p[R_BETA], p[R_MEAN], p[R_VAR], cs->eps, act_of(cs))
              : bnorm_inference(sh, p[R_X], st[R_X], p[R_Y], st[R_Y], p[R_GAMMA], p[R_BETA],
                                p[R_MEAN], p[R_VAR], cs->eps, act_of(cs));
        break;
    case OP_FWD: {
        const bnorm_running_stats *run = cs->running ? &in->run : NULL;
        r = k ? bnorm_training_forward_with(k, sh, p[R_X], st[R_X], p[R_Y], st[R_Y],
                                            p[R_GAMMA], p[R_BETA], cs->eps, p[R_SAVE_MEAN],
                                            p[R_SAVE_INVSTD], run)
              : bnorm_training_forward(sh, p[R_X], st[R_X], p[R_Y], st[R_Y], p[R_GAMMA],
                                       p[R_BETA], cs->eps, p[R_SAVE_MEAN], p[R_SAVE_INVSTD],
                                       run);
        break;
    }
    case OP_BWD:
        r = k ? bnorm_training_backward_with(k, sh, p[R_X], st[R_X], p[R_DY], st[R_DY],
                                             p[R_GAMMA], p[R_SAVE_MEAN], p[R_SAVE_INVSTD],
                                             p[R_DX], st[R_DX], p[R_DGAMMA], p[R_DBETA])
              : bnorm_training_backward(sh, p[R_X], st[R_X], p[R_DY], st[R_DY], p[R_GAMMA],
                                        p[R_SAVE_MEAN], p[R_SAVE_INVSTD], p[R_DX], st[R_DX],
                                        p[R_DGAMMA], p[R_DBETA]);
        break;
    case OP_FROZEN:
        r = k ? bnorm_frozen_backward_with(k, sh, p[R_DY], st[R_DY], p[R_GAMMA], p[R_VAR],
                                           cs->eps, p[R_DX], st[R_DX])
              : bnorm_frozen_backward(sh, p[R_DY], st[R_DY], p[R_GAMMA], p[R_VAR], cs->eps,
                                      p[R_DX], st[R_DX]);
        break;
    case OP_WEIGHTS:
        r = bnorm_fold_into_weights((bnorm_weight_layout)cs->weight_layout, cs->shape.c,
                                    cs->shape.spatial, p[R_WEIGHTS], p[R_BIAS_IN],
                                    p[R_BIAS_OUT], p[R_GAMMA], p[R_BETA], p[R_MEAN],
                                    p[R_VAR], cs->eps);
        break;
    }
    unsigned after = fp_controls();
    fp_leave(saved);
    if (after != controls)
        fail("the call changed MXCSR's controls: 0x%04x -> 0x%04x", controls, after);
    if (reverse_nested)
        fail("%zu parallel-for calls from inside a task", reverse_nested);
    return r;
}

/* ---- what a call may write ---------------------------------------------------------- */

/* After a failed call nothing changed; after a successful one only the logical
 * elements of its outputs. */
static void check_writes(const fcase *cs, const inst *in, bool ok)
{
    const op_spec *o = &op_specs[cs->op];
    for (int b = 0; b < R_COUNT; b++) {
        const own_buf *buf = &in->buf[b];
        if (!buf->base)
            continue;
        size_t total = buf->lead + buf->count;
        unsigned char *now = malloc(total * sizeof(float));
        bool *writable = calloc(total, sizeof(bool));
        if (!now || !writable)
            abort();
        buf_copy_out(buf, now);
        for (int i = 0; ok && i < o->nroles; i++) {
            int r = o->roles[i].role;
            if (!o->roles[i].out || !role_used(cs, r) || !in->ptr[r] || in->host[r] != b)
                continue;
            size_t cnt = logical_count(cs, r);
            for (size_t j = 0; j < cnt; j++)
                writable[buf->lead + in->off[r] + logical_pos(cs, in, r, j)] = true;
        }
        for (size_t f = 0; f < total; f++) {
            if (writable[f] || !memcmp(now + f * sizeof(float),
                                       buf->snap + f * sizeof(float), sizeof(float)))
                continue;
            float was, is;
            memcpy(&was, buf->snap + f * sizeof(float), sizeof was);
            memcpy(&is, now + f * sizeof(float), sizeof is);
            long idx = (long)f - (long)buf->lead;
            fail("%s wrote %s's buffer at float %ld (%s): %.9g -> %.9g",
                 ok ? "a successful call" : "a failed call", role_names[b], idx,
                 idx < 0 ? "before the pointer" : ok ? "not an output element" : "",
                 was, is);
        }
        free(now);
        free(writable);
    }
}

/* ---- results ---------------------------------------------------------------------- */

/* The outputs of one call, logically ordered (independent of strides). */
typedef struct result {
    float *v[R_COUNT];
    size_t n[R_COUNT];
} result;

static void extract(const fcase *cs, const inst *in, result *res)
{
    memset(res, 0, sizeof *res);
    const op_spec *o = &op_specs[cs->op];
    for (int i = 0; i < o->nroles; i++) {
        int r = o->roles[i].role;
        if (!o->roles[i].out || !role_used(cs, r) || !in->ptr[r])
            continue;
        size_t cnt = logical_count(cs, r);
        res->v[r] = malloc(cnt * sizeof(float));
        if (!res->v[r])
            abort();
        res->n[r] = cnt;
        for (size_t j = 0; j < cnt; j++)
            res->v[r][j] = now_val(cs, in, r, j);
    }
}

static void result_free(result *res)
{
    for (int r = 0; r < R_COUNT; r++)
        free(res->v[r]);
    memset(res, 0, sizeof *res);
}

/* The same bits (any NaN matching any NaN), or with any_zero, zeros of either sign. */
static bool same_result(float a, float b, bool any_zero)
{
    return (any_zero && a == 0.0f && b == 0.0f) || bnorm_conf_same_bits(a, b);
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static const char *index_str(const fcase *cs, int role, size_t i, char *buf, size_t size)
{
    const bnorm_shape *sh = &cs->shape;
    if (role < SLOTS)
        snprintf(buf, size, "[n %zu, c %zu, s %zu]", i / sh->spatial / sh->c,
                 i / sh->spatial % sh->c, i % sh->spatial);
    else
        snprintf(buf, size, "[%zu]", i);
    return buf;
}

/* Every role in `roles` (a set of 1 << role) present in both must agree. */
static void compare(const fcase *cs, const result *a, const result *b, unsigned roles,
                    bool any_zero, const char *a_name, const char *b_name)
{
    for (int r = 0; r < R_COUNT; r++) {
        if (!(roles & 1u << r) || !a->v[r] || !b->v[r])
            continue;
        for (size_t j = 0; j < a->n[r]; j++)
            if (!same_result(a->v[r][j], b->v[r][j], any_zero)) {
                char idx[64];
                fail("%s%s: %s gives %.9g (0x%08x), %s gives %.9g (0x%08x)", role_names[r],
                     index_str(cs, r, j, idx, sizeof idx), a_name, a->v[r][j],
                     bits_of(a->v[r][j]), b_name, b->v[r][j], bits_of(b->v[r][j]));
            }
    }
}

#define ALL_ROLES 0xffffffffu
#define ROLE(r) (1u << (r))

/* ---- the double-precision reference ------------------------------------------------- */

static void check_units(const fcase *cs, int role, size_t i, float got, double ref,
                        double mag, double tol)
{
    double u = bnorm_conf_affine_ulps(got, ref, mag, 0.0);
    if (!(u <= tol)) {
        char idx[64];
        fail("%s%s = %.9g (0x%08x), reference %.17g: %.3g units of %.3g, bound %g",
             role_names[role], index_str(cs, role, i, idx, sizeof idx), got, bits_of(got),
             ref, u, mag, tol);
    }
}

/* A per-channel coefficient for which the guide's bounds hold: zero or a normal
 * float, not near overflow. */
static bool coef_ok(double v)
{
    return v == 0.0 || (fabs(v) >= 0x1p-120 && fabs(v) <= 0x1p120);
}

static float act_f(const bnorm_activation *act, float v)
{
    return (float)bnorm_ref_activate(act, v);
}

/* gamma[c] (or 1) and friends, before the call. */
static double param(const inst *in, int role, size_t c, double absent)
{
    return in->ptr[role] ? (double)init_at(in, role, c) : absent;
}

/* The fold's bits: s = gamma / sqrt(var + eps); (float)s, (float)(beta - mean * s). */
static void fold_formula(double g, double b, double mean, double var, float eps,
                         bool has_mean, double *s, float *scale, float *shift)
{
    *s = g / sqrt(var + (double)eps);
    *scale = (float)*s;
    *shift = (float)(has_mean ? b - mean * *s : b);
}

/*
 * An affine output y = act(x * sf + bf) per channel (the apply, inference and the
 * frozen backward), against S and B in double, within tol units of |x S| + |B|. Where
 * the float evaluations (fused or not) agree on NaN or an infinity, y must too.
 */
static void check_affine(const fcase *cs, const inst *in, int xr, int yr, const float *sf,
                         const float *bf, const double *S, const double *B, double tol,
                         const bnorm_activation *act)
{
    size_t total = logical_count(cs, xr);
    for (size_t i = 0; i < total; i++) {
        size_t c = logical_channel(cs, xr, i);
        float x = init_val(cs, in, xr, i), y = now_val(cs, in, yr, i);
        float c1 = act_f(act, fmaf(x, sf[c], bf[c])), c2 = act_f(act, x * sf[c] + bf[c]);
        if (isnan(c1) && isnan(c2)) {
            if (!isnan(y))
                check_units(cs, yr, i, y, NAN, 0.0, tol);
        } else if (isinf(c1) && c1 == c2) {
            if (y != c1)
                check_units(cs, yr, i, y, c1, 0.0, tol);
        } else if (isfinite(c1) && isfinite(c2) && isfinite(x) && isfinite(S[c]) &&
                   isfinite(B[c]) && coef_ok(S[c])) {
            double mag = fabs(x * S[c]) + fabs(B[c]);
            if (mag < MAG_MAX)
                check_units(cs, yr, i, y, bnorm_ref_activate(act, x * S[c] + B[c]), mag,
                            tol);
        }
    }
}

static void reference_fold(const fcase *cs, const inst *in)
{
    for (size_t c = 0; c < cs->shape.c; c++) {
        double s;
        float scale, shift;
        fold_formula(param(in, R_GAMMA, c, 1.0), param(in, R_BETA, c, 0.0),
                     init_at(in, R_MEAN, c), init_at(in, R_VAR, c), cs->eps, true, &s,
                     &scale, &shift);
        float got_scale = in->ptr[R_SCALE][c], got_shift = in->ptr[R_SHIFT][c];
        if (!bnorm_conf_same_bits(got_scale, scale) ||
            !bnorm_conf_same_bits(got_shift, shift))
            fail("fold channel %zu: scale %.9g (0x%08x), shift %.9g (0x%08x); the formula "
                 "gives %.9g (0x%08x), %.9g (0x%08x)",
                 c, got_scale, bits_of(got_scale), got_shift, bits_of(got_shift), scale,
                 bits_of(scale), shift, bits_of(shift));
    }
}

static void reference_weights(const fcase *cs, const inst *in)
{
    size_t oc = cs->shape.c, pc = cs->shape.spatial;
    for (size_t o = 0; o < oc; o++) {
        double s;
        float scale, shift;
        double mean = init_at(in, R_MEAN, o), b = param(in, R_BETA, o, 0.0);
        fold_formula(param(in, R_GAMMA, o, 1.0), b, mean, init_at(in, R_VAR, o), cs->eps,
                     true, &s, &scale, &shift);
        float want = in->ptr[R_BIAS_IN]
                         ? (float)(b + ((double)init_at(in, R_BIAS_IN, o) - mean) * s)
                         : shift;
        float got = in->ptr[R_BIAS_OUT][o];
        if (!bnorm_conf_same_bits(got, want))
            fail("bias_out[%zu] = %.9g (0x%08x), the formula gives %.9g (0x%08x)", o, got,
                 bits_of(got), want, bits_of(want));
        for (size_t k = 0; k < pc; k++) {
            size_t pos =
                cs->weight_layout == BNORM_WEIGHTS_OC_MAJOR ? o * pc + k : k * oc + o;
            float w = init_at(in, R_WEIGHTS, pos), wnew = (float)((double)w * s);
            if (!bnorm_conf_same_bits(in->ptr[R_WEIGHTS][pos], wnew))
                fail("weights[%zu] (channel %zu) = %.9g (0x%08x), the formula gives %.9g "
                     "(0x%08x)",
                     pos, o, in->ptr[R_WEIGHTS][pos], bits_of(in->ptr[R_WEIGHTS][pos]),
                     wnew, bits_of(wnew));
        }
    }
}

static void reference_affine_op(const fcase *cs, const inst *in)
{
    size_t c = cs->shape.c;
    float *sf = malloc(c * sizeof(float)), *bf = malloc(c * sizeof(float));
    double *S = malloc(c * sizeof(double)), *B = malloc(c * sizeof(double));
    if (!sf || !bf || !S || !B)
        abort();
    for (size_t i = 0; i < c; i++) {
        switch (cs->op) {
        case OP_APPLY:
            sf[i] = init_at(in, R_SCALE, i);
            bf[i] = init_at(in, R_SHIFT, i);
            S[i] = sf[i];
            B[i] = bf[i];
            break;
        case OP_INFER: {
            double mean = init_at(in, R_MEAN, i), b = param(in, R_BETA, i, 0.0);
            fold_formula(param(in, R_GAMMA, i, 1.0), b, mean, init_at(in, R_VAR, i),
                         cs->eps, true, &S[i], &sf[i], &bf[i]);
            B[i] = b - mean * S[i];
            break;
        }
        default: /* frozen: the fold without mean or beta */
            fold_formula(param(in, R_GAMMA, i, 1.0), 0.0, 0.0, init_at(in, R_VAR, i),
                         cs->eps, false, &S[i], &sf[i], &bf[i]);
            B[i] = 0.0;
            break;
        }
    }
    if (cs->op == OP_FROZEN)
        check_affine(cs, in, R_DY, R_DX, sf, bf, S, B, BNORM_TOL_INFERENCE, NULL);
    else
        check_affine(cs, in, R_X, R_Y, sf, bf, S, B,
                     cs->op == OP_APPLY ? BNORM_TOL_APPLY : BNORM_TOL_INFERENCE,
                     act_of(cs));
    free(sf);
    free(bf);
    free(S);
    free(B);
}

/* The logical indices of channel c's values, one after another. */
static size_t chan_index(const fcase *cs, size_t c, size_t j)
{
    size_t sp = cs->shape.spatial;
    return (j / sp * cs->shape.c + c) * sp + j % sp;
}

static void reference_forward(const fcase *cs, const inst *in)
{
    size_t m = cs->shape.n * cs->shape.spatial;
    const bnorm_running_stats *run = cs->running ? &in->run : NULL;
    bool torch = run && run->convention == BNORM_MOMENTUM_PYTORCH;
    double w_new =
        run ? (torch ? (double)run->momentum : 1.0 - (double)run->momentum) : 0.0;
    double unbias = torch ? (double)m / (double)(m - 1) : 1.0;
    for (size_t c = 0; c < cs->shape.c; c++) {
        bool has_nan = false, finite = true, constant = true;
        double sum = 0.0;
        float first = init_val(cs, in, R_X, chan_index(cs, c, 0));
        for (size_t j = 0; j < m; j++) {
            float x = init_val(cs, in, R_X, chan_index(cs, c, j));
            has_nan |= isnan(x);
            finite &= isfinite(x);
            constant &= x == first;
            sum += x;
        }
        double mean = sum / (double)m, sq = 0.0;
        for (size_t j = 0; j < m; j++) {
            double d = init_val(cs, in, R_X, chan_index(cs, c, j)) - mean;
            sq += d * d;
        }
        double var = sq / (double)m, std = sqrt(var);
        double invstd = 1.0 / sqrt(var + (double)cs->eps);
        double g = param(in, R_GAMMA, c, 1.0), b = param(in, R_BETA, c, 0.0);
        float *sm = in->ptr[R_SAVE_MEAN], *si = in->ptr[R_SAVE_INVSTD];

        if (!finite) { /* the statistics are NaN or infinite: so is every y */
            if (sm)
                check_units(cs, R_SAVE_MEAN, c, sm[c], has_nan ? NAN : mean, 0.0,
                            BNORM_TOL_MEAN);
            if (si && !isnan(si[c]))
                check_units(cs, R_SAVE_INVSTD, c, si[c], NAN, 0.0, BNORM_TOL_INVSTD);
            for (size_t j = 0; j < m; j++) {
                size_t i = chan_index(cs, c, j);
                float y = now_val(cs, in, R_Y, i);
                if (!isnan(y))
                    check_units(cs, R_Y, i, y, NAN, 0.0, BNORM_TOL_Y);
            }
            if (has_nan && run && !isnan(in->run.mean[c]))
                check_units(cs, R_RUN_MEAN, c, in->run.mean[c], NAN, 0.0,
                            BNORM_TOL_RUNNING_MEAN);
            continue;
        }
        if (sm)
            check_units(cs, R_SAVE_MEAN, c, sm[c], mean, fabs(mean) + std, BNORM_TOL_MEAN);
        /* (a constant channel's var is 0 exactly, here and in the library: +inf where
         * eps is 0) */
        if (si && (isinf(invstd) || (invstd >= 0x1p-120 && invstd <= 0x1p120)))
            check_units(cs, R_SAVE_INVSTD, c, si[c], invstd, invstd, BNORM_TOL_INVSTD);
        if (constant) {
            float a = (float)(g * invstd);
            for (size_t j = 0; j < m && isfinite(a); j++) {
                size_t i = chan_index(cs, c, j);
                float y = now_val(cs, in, R_Y, i);
                if (!((double)y == b || (isnan(b) && isnan(y))))
                    fail("constant channel %zu: y%s = %.9g (0x%08x), not beta %.9g", c,
                         index_str(cs, R_Y, i, (char[64]){0}, 64), y, bits_of(y), b);
            }
            if (!isfinite(a))
                for (size_t j = 0; j < m; j++) {
                    size_t i = chan_index(cs, c, j);
                    if (!isnan(now_val(cs, in, R_Y, i)))
                        check_units(cs, R_Y, i, now_val(cs, in, R_Y, i), NAN, 0.0,
                                    BNORM_TOL_Y);
                }
        } else if (isnan(g) || isnan(b)) { /* NaN parameters: NaN y */
            for (size_t j = 0; j < m; j++) {
                size_t i = chan_index(cs, c, j);
                if (!isnan(now_val(cs, in, R_Y, i)))
                    check_units(cs, R_Y, i, now_val(cs, in, R_Y, i), NAN, 0.0, BNORM_TOL_Y);
            }
        }
        double a = g * invstd;
        if (!constant && coef_ok(a) && isfinite(b) && fabs(b) < MAG_MAX) {
            for (size_t j = 0; j < m; j++) {
                size_t i = chan_index(cs, c, j);
                double x = init_val(cs, in, R_X, i);
                if (fabs(x - mean) >= FLT_MAX)
                    continue;
                /* the mean rounds to float: by up to 2^-150 where subnormal */
                double mean_mag = fmax(fabs(mean), FLT_MIN);
                double mag = (fabs(x - mean) + mean_mag + std) * fabs(a) + fabs(b);
                if (mag < MAG_MAX)
                    check_units(cs, R_Y, i, now_val(cs, in, R_Y, i),
                                g * (x - mean) * invstd + b, mag, BNORM_TOL_Y);
            }
        }
        if (run) {
            double rm0 = init_at(in, R_RUN_MEAN, c), rv0 = init_at(in, R_RUN_VAR, c);
            double w_old = 1.0 - w_new, bvar = var * unbias;
            if (isfinite(rm0) && fabs(rm0) < MAG_MAX)
                check_units(cs, R_RUN_MEAN, c, in->run.mean[c], w_old * rm0 + w_new * mean,
                            fabs(rm0) + fabs(mean) + std, BNORM_TOL_RUNNING_MEAN);
            double rv = w_old * rv0 + w_new * bvar, mag = fabs(rv0) + bvar;
            if (isfinite(rv0) && mag < MAG_MAX)
                check_units(cs, R_RUN_VAR, c, in->run.var[c], rv, mag,
                            BNORM_TOL_RUNNING_VAR);
        }
    }
}

/* Expects NaN in every dx of channel c. */
static void expect_nan_dx(const fcase *cs, const inst *in, size_t c)
{
    size_t m = cs->shape.n * cs->shape.spatial;
    for (size_t j = 0; j < m; j++) {
        size_t i = chan_index(cs, c, j);
        if (!isnan(now_val(cs, in, R_DX, i)))
            check_units(cs, R_DX, i, now_val(cs, in, R_DX, i), NAN, 0.0, BNORM_TOL_DX);
    }
}

/* Each output is checked on what it depends on: dbeta = sum dy on dy alone, dgamma =
 * save_invstd * sum dy (x - save_mean) not on gamma, dx on everything. NaN in any of
 * its inputs gives NaN; a value is checked where its inputs and terms are finite. */
static void reference_backward(const fcase *cs, const inst *in)
{
    size_t m = cs->shape.n * cs->shape.spatial;
    float *dg = in->ptr[R_DGAMMA], *db = in->ptr[R_DBETA], *dx = in->ptr[R_DX];
    for (size_t c = 0; c < cs->shape.c; c++) {
        double sm = init_at(in, R_SAVE_MEAN, c), si = init_at(in, R_SAVE_INVSTD, c);
        double g = param(in, R_GAMMA, c, 1.0);
        bool nan_x = false, nan_dy = false, inf_x = false, inf_dy = false;
        bool pos = false, neg = false; /* signs of the terms dy (x - mean) */
        double sdy = 0.0, sabs_dy = 0.0, sdyxh = 0.0, sabs_dyxh = 0.0;
        for (size_t j = 0; j < m; j++) {
            size_t i = chan_index(cs, c, j);
            double x = init_val(cs, in, R_X, i), dy = init_val(cs, in, R_DY, i);
            nan_x |= isnan(x);
            nan_dy |= isnan(dy);
            inf_x |= isinf(x) || fabs(x - sm) >= FLT_MAX; /* x - mean is a float */
            inf_dy |= isinf(dy);
            pos |= dy * (x - sm) > 0.0; /* (x - mean rounded to float: the same sign) */
            neg |= dy * (x - sm) < 0.0;
            double xh = (x - sm) * si;
            sdy += dy;
            sabs_dy += fabs(dy);
            sdyxh += dy * xh;
            sabs_dyxh += fabs(dy * xh);
        }
        bool nan_dgamma = nan_x || nan_dy || isnan(sm) || isnan(si);
        bool stats_finite = isfinite(sm) && isfinite(si) && !inf_x;
        if (db && nan_dy && !isnan(db[c]))
            check_units(cs, R_DBETA, c, db[c], NAN, 0.0, BNORM_TOL_DBETA);
        else if (db && sabs_dy < MAG_MAX) /* (false for an infinite dy) */
            check_units(cs, R_DBETA, c, db[c], sdy, sabs_dy, BNORM_TOL_DBETA);
        if (dg && nan_dgamma && !isnan(dg[c]))
            check_units(cs, R_DGAMMA, c, dg[c], NAN, 0.0, BNORM_TOL_DGAMMA);
        else if (dg && !nan_dgamma && stats_finite && sabs_dyxh < MAG_MAX)
            check_units(cs, R_DGAMMA, c, dg[c], sdyxh, sabs_dyxh, BNORM_TOL_DGAMMA);
        else if (dg && !nan_dgamma && isinf(si) && isfinite(sm) && !inf_x && !inf_dy &&
                 !(pos && neg)) /* invstd * sum: inf * 0 or an infinity (the guide) */
            check_units(cs, R_DGAMMA, c, dg[c],
                        pos || neg ? copysign(INFINITY, si) * (pos ? 1.0 : -1.0) : NAN, 0.0,
                        BNORM_TOL_DGAMMA);
        if (!dx)
            continue;
        if (nan_dgamma || isnan(g)) {
            expect_nan_dx(cs, in, c);
            continue;
        }
        if (!stats_finite || !isfinite(g) || !(sabs_dy < MAG_MAX))
            continue;
        /* dx = a dy + b (x - mean) + k */
        double a = g * si, b = -g * si * si * sdyxh / (double)m,
               k = -g * si * sdy / (double)m;
        double b_mag = fabs(g) * si * si * sabs_dyxh / (double)m;
        double k_mag = fabs(g * si) * sabs_dy / (double)m;
        if (!coef_ok(a) || !coef_ok(b) || !coef_ok(k) || !coef_ok(b_mag) || !coef_ok(k_mag))
            continue;
        for (size_t j = 0; j < m; j++) {
            size_t i = chan_index(cs, c, j);
            double x = init_val(cs, in, R_X, i), dy = init_val(cs, in, R_DY, i);
            double mag = fabs(a * dy) + b_mag * fabs(x - sm) + k_mag;
            if (mag < MAG_MAX)
                check_units(cs, R_DX, i, now_val(cs, in, R_DX, i),
                            a * dy + b * (x - sm) + k, mag, BNORM_TOL_DX);
        }
    }
}

static void check_reference(const fcase *cs, const inst *in)
{
    if (cs->fp_mode) /* flushed subnormals: only calls compare with calls */
        return;
    switch (cs->op) {
    case OP_FOLD: reference_fold(cs, in); break;
    case OP_WEIGHTS: reference_weights(cs, in); break;
    case OP_FWD: reference_forward(cs, in); break;
    case OP_BWD: reference_backward(cs, in); break;
    default: reference_affine_op(cs, in); break;
    }
}

/* ---- one input ---------------------------------------------------------------------- */

/* The kernel tables this CPU runs (bnorm_conf_tables: the library's and the test-only
 * SIMDe ones). */
static bnorm_conf_table tables[8];
static size_t ntables;

static void init_tables(void)
{
    bnorm_conf_table all[8];
    size_t total = bnorm_conf_tables(all, 8);
    for (size_t i = 0; i < total && i < 8; i++)
        if (all[i].runnable)
            tables[ntables++] = all[i];
    if (!ntables)
        abort();
}

/* Runs the call with table t (the public API after bnorm_set_isa where t is one of
 * the library's; bnorm_fold's kernel itself for a test-only table). */
static bnorm_status call_table(const fcase *cs, inst *in, const bnorm_conf_table *t)
{
    if (cs->op == OP_FOLD || cs->op == OP_WEIGHTS) {
        if (t->emulated) {
            if (cs->op == OP_WEIGHTS)
                return call_op(cs, in, NULL);
            unsigned saved = fp_enter(cs);
            t->k->fold(cs->shape.c, in->ptr[R_GAMMA], in->ptr[R_BETA], in->ptr[R_MEAN],
                       in->ptr[R_VAR], cs->eps, in->ptr[R_SCALE], in->ptr[R_SHIFT]);
            fp_leave(saved);
            return BNORM_OK;
        }
        if (bnorm_set_isa(t->k->isa) != BNORM_OK)
            fail("bnorm_set_isa(%s) refused a runnable table", t->label);
        return call_op(cs, in, NULL);
    }
    return call_op(cs, in, t->k);
}

/* Whether the training statistics walk rows (identical in every ISA). */
static bool walks_rows(const fcase *cs)
{
    return cs->shape.layout == BNORM_NHWC || cs->shape.spatial == 1;
}

/* The outputs every table must give bit for bit. */
static unsigned isa_identical_roles(const fcase *cs)
{
    if (cs->fp_mode && cs->op != OP_FOLD && cs->op != OP_WEIGHTS)
        return 0; /* the guide promises the fold's bits under FTZ and DAZ */
    switch (cs->op) {
    case OP_FOLD: return ROLE(R_SCALE) | ROLE(R_SHIFT);
    case OP_FWD:
        return walks_rows(cs) ? ROLE(R_SAVE_MEAN) | ROLE(R_SAVE_INVSTD) | ROLE(R_RUN_MEAN) |
                                    ROLE(R_RUN_VAR)
                              : 0;
    case OP_BWD: return walks_rows(cs) ? ROLE(R_DGAMMA) | ROLE(R_DBETA) : 0;
    default: return 0;
    }
}

/* Statistics that must not depend on the strides, bit for bit. */
static unsigned stride_identical_roles(const fcase *cs)
{
    if (cs->op == OP_FWD)
        return ROLE(R_SAVE_MEAN) | ROLE(R_SAVE_INVSTD) | ROLE(R_RUN_MEAN) | ROLE(R_RUN_VAR);
    if (cs->op == OP_BWD)
        return ROLE(R_DGAMMA) | ROLE(R_DBETA);
    return 0;
}

static bool verbose;

/* The same call with the same data in dense buffers (NULL strides, nothing in place,
 * nothing misaligned): the statistics bit for bit, every output the same value. And
 * the backward's parameter gradients the same without dx. */
static void run_dense(const fcase *cs, const model *m, const inst *in,
                      const bnorm_conf_table *t, const result *strided)
{
    inst dense;
    if (!inst_build(cs, m, &dense, NULL, in, false))
        abort();
    snprintf(what, sizeof what, "table %s, dense buffers", t->label);
    cur_what = what;
    cur_inst = &dense;
    bnorm_status st = call_op(cs, &dense, t->k);
    if (st != BNORM_OK)
        fail("status %s with dense buffers", bnorm_status_name(st));
    check_writes(cs, &dense, true);
    result dres;
    extract(cs, &dense, &dres);
    compare(cs, &dres, strided, stride_identical_roles(cs), false, "dense", "strided");
    compare(cs, &dres, strided, ALL_ROLES, true, "dense", "strided");
    result_free(&dres);
    if (cs->op == OP_BWD && dense.ptr[R_DX] &&
        (dense.ptr[R_DGAMMA] || dense.ptr[R_DBETA])) {
        float *dx = dense.ptr[R_DX];
        inst_restore(&dense);
        dense.ptr[R_DX] = NULL;
        snprintf(what, sizeof what, "table %s, dense, without dx", t->label);
        st = call_op(cs, &dense, t->k);
        if (st != BNORM_OK)
            fail("status %s without dx", bnorm_status_name(st));
        check_writes(cs, &dense, true);
        result nodx;
        extract(cs, &dense, &nodx);
        compare(cs, &nodx, strided, ROLE(R_DGAMMA) | ROLE(R_DBETA), false, "without dx",
                "with dx");
        result_free(&nodx);
        dense.ptr[R_DX] = dx;
    }
    cur_inst = in;
    inst_free(&dense);
}

/* Fills with NaN the elements of the outputs that hold no data before the call and
 * share their buffer with no other argument (not y == x, not the running
 * statistics). */
static void fill_outputs_nan(const fcase *cs, inst *in)
{
    const op_spec *o = &op_specs[cs->op];
    for (int i = 0; i < o->nroles; i++) {
        int r = o->roles[i].role;
        if (!o->roles[i].out || o->roles[i].data || !role_used(cs, r) || !in->ptr[r] ||
            in->host[r] != r)
            continue;
        bool shared = false;
        for (int j = 0; j < o->nroles; j++)
            shared |= o->roles[j].role != r && in->host[o->roles[j].role] == r;
        for (size_t k = 0, n = logical_count(cs, r); !shared && k < n; k++)
            in->ptr[r][logical_pos(cs, in, r, k)] = NAN;
    }
}

static void run_valid(const fcase *cs, const model *m, inst *in,
                      const bnorm_conf_table *primary)
{
    /* The public call already ran (the caller checked its writes); its results: */
    cur_what = "public call vs reference";
    check_reference(cs, in);
    result pub;
    extract(cs, in, &pub);

    if (cs->op == OP_WEIGHTS && !in->ptr[R_BIAS_IN]) {
        /* bias_out is bnorm_fold's shift, bit for bit */
        size_t c = cs->shape.c;
        float *scale = malloc(c * sizeof(float)), *shift = malloc(c * sizeof(float));
        if (!scale || !shift)
            abort();
        inst_restore(in);
        unsigned saved = fp_enter(cs);
        bnorm_status st = bnorm_fold(c, in->ptr[R_GAMMA], in->ptr[R_BETA], in->ptr[R_MEAN],
                                     in->ptr[R_VAR], cs->eps, scale, shift);
        fp_leave(saved);
        cur_what = "fold_into_weights vs bnorm_fold";
        if (st != BNORM_OK)
            fail("bnorm_fold on the same parameters returned %s", bnorm_status_name(st));
        for (size_t o = 0; o < c; o++)
            if (!bnorm_conf_same_bits(shift[o], pub.v[R_BIAS_OUT][o]))
                fail("bias_out[%zu] = %.9g, bnorm_fold's shift %.9g", o,
                     pub.v[R_BIAS_OUT][o], shift[o]);
        free(scale);
        free(shift);
    }

    if (cs->op == OP_WEIGHTS) { /* no kernel table: the public call was the call */
        result_free(&pub);
        return;
    }
    result first_table = {0};
    const char *first_label = NULL;
    unsigned isa_roles = isa_identical_roles(cs);
    int pools = op_specs[cs->op].tensor ? 2 : 1; /* bnorm_fold never calls a pool */
    for (size_t t = 0; t < ntables; t++) {
        result res[2];
        for (int pool = 0; pool < pools; pool++) {
            snprintf(what, sizeof what, "table %s, %s", tables[t].label,
                     pool ? "reverse pool" : "serial");
            cur_what = what;
            inst_restore(in);
            if (pool) /* an element the call leaves unwritten then differs */
                fill_outputs_nan(cs, in);
            set_pool(pool);
            bnorm_status st = call_table(cs, in, &tables[t]);
            set_pool(false);
            if (st != BNORM_OK)
                fail("status %s, the public call returned BNORM_OK", bnorm_status_name(st));
            check_writes(cs, in, true);
            if (pool == 0)
                check_reference(cs, in);
            extract(cs, in, &res[pool]);
        }
        if (pools == 2) {
            snprintf(what, sizeof what, "table %s, serial vs reverse pool",
                     tables[t].label);
            compare(cs, &res[0], &res[1], ALL_ROLES, false, "serial", "reverse pool");
            result_free(&res[1]);
        }
        if (tables[t].k == primary->k && !tables[t].emulated) {
            snprintf(what, sizeof what, "table %s vs the public call", tables[t].label);
            compare(cs, &res[0], &pub, ALL_ROLES, false, "the table", "the public call");
        }
        if (op_specs[cs->op].tensor)
            run_dense(cs, m, in, &tables[t], &res[0]);
        if (!first_label) {
            first_table = res[0]; /* kept for the next tables */
            first_label = tables[t].label;
        } else {
            snprintf(what, sizeof what, "table %s vs %s", tables[t].label, first_label);
            cur_what = what;
            compare(cs, &res[0], &first_table, isa_roles, false, tables[t].label,
                    first_label);
            result_free(&res[0]);
        }
    }
    result_free(&first_table);
    result_free(&pub);
}

/* The small functions: names, ISA lookup, bnorm_set_isa's refusals; from the input's
 * first bytes, every input. */
static void check_small_functions(const uint8_t *data, size_t size)
{
    cur_what = "small functions";
    uint32_t v = 0;
    for (size_t i = 0; i < 4 && i < size; i++)
        v |= (uint32_t)data[i] << (8 * i);
    if (!bnorm_status_name((bnorm_status)v) || !bnorm_version_string())
        fail("a name is NULL for value %u", v);
    const char *isa_name = bnorm_isa_name((bnorm_isa)v);
    if ((v < BNORM_ISA_COUNT) != (isa_name != NULL))
        fail("bnorm_isa_name(%u) is %s", v, isa_name ? isa_name : "NULL");
    uint32_t bit = size > 4 && data[4] < 64 ? 1u << (data[4] % 32) : v;
    const char *feature = bnorm_cpu_feature_name(bit);
    static const uint32_t defined = BNORM_CPU_SSE2 | BNORM_CPU_AVX | BNORM_CPU_AVX2 |
                                    BNORM_CPU_FMA | BNORM_CPU_F16C | BNORM_CPU_AVX512F |
                                    BNORM_CPU_NEON | BNORM_CPU_ASIMDHP;
    bool one_bit = bit && !(bit & (bit - 1)) && (bit & defined);
    if (one_bit != (feature != NULL))
        fail("bnorm_cpu_feature_name(0x%x) is %s", bit, feature ? feature : "NULL");
    int compiled = bnorm_isa_compiled((bnorm_isa)v),
        supported = bnorm_isa_supported((bnorm_isa)v);
    if ((compiled != 0 && compiled != 1) || (supported != 0 && supported != 1) ||
        (supported && !compiled) || (v >= BNORM_ISA_COUNT && compiled))
        fail("bnorm_isa_compiled(%u) %d, bnorm_isa_supported %d", v, compiled, supported);
    bnorm_isa before = bnorm_active_isa();
    bnorm_status st = bnorm_set_isa((bnorm_isa)v);
    bnorm_status want = v >= BNORM_ISA_COUNT ? BNORM_ERR_BAD_ENUM
                        : supported          ? BNORM_OK
                                             : BNORM_ERR_UNSUPPORTED_ISA;
    if (st != want || (st != BNORM_OK && bnorm_active_isa() != before) ||
        (st == BNORM_OK && bnorm_active_isa() != (bnorm_isa)v))
        fail("bnorm_set_isa(%u) returned %s", v, bnorm_status_name(st));
    /* a name from the input's bytes (up to the first zero, at most 15) */
    char name[16];
    size_t len = 0;
    for (size_t i = 5; i < size && len < sizeof name - 1 && data[i]; i++)
        name[len++] = (char)data[i];
    name[len] = '\0';
    bnorm_isa found = (bnorm_isa)12345;
    st = bnorm_isa_from_name(name, &found);
    int match = -1;
    for (int i = 0; i < BNORM_ISA_COUNT; i++)
        if (!strcmp(name, bnorm_isa_name((bnorm_isa)i)))
            match = i;
    if (match >= 0 ? st != BNORM_OK || found != (bnorm_isa)match
                   : st != BNORM_ERR_UNKNOWN_ISA || found != (bnorm_isa)12345)
        fail("bnorm_isa_from_name(\"%s\") returned %s", name, bnorm_status_name(st));
    if (bnorm_isa_from_name(NULL, &found) != BNORM_ERR_NULL_POINTER ||
        bnorm_isa_from_name(name, NULL) != BNORM_ERR_NULL_POINTER)
        fail("bnorm_isa_from_name accepted a NULL");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Outputs from 1 MiB on (the smallest threshold) take the streaming stores, which
     * MAX_ELEMS reaches. Before the library's first use, which reads it once. */
    setenv("BNORM_STREAM_THRESHOLD", "1M", 0);
    init_tables();
    const char *v = getenv("FUZZ_API_VERBOSE");
    verbose = v && *v && *v != '0';
    const char *d = getenv("FUZZ_API_DUMP");
    dump = d && *d && *d != '0';
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_small_functions(data, size);
    src s = {data, size, 0, 0x5eed};
    for (size_t i = 0; i < size; i++)
        s.rng = s.rng * 0x100000001b3ull ^ data[i];
    fcase cs;
    decode(&s, &cs);
    model m;
    model_structure(&cs, &m);
    bool must_fail = m.null_err || m.err;
    if (!must_fail && op_specs[cs.op].tensor &&
        sat_mul(sat_mul(cs.shape.n, cs.shape.c), cs.shape.spatial) > MAX_ELEMS)
        return 0; /* valid, but over the time budget of an input */

    inst in;
    if (!inst_build(&cs, &m, &in, &s, NULL, must_fail)) {
        inst_free(&in);
        return 0; /* valid, but too large to run */
    }
    cur_case = &cs;
    cur_inst = &in;
    unsigned expected = expected_statuses(&cs, &in, &m);

    /* the primary call: the public API, one of the library's ISAs */
    size_t nlib = 0;
    const bnorm_conf_table *lib[8];
    for (size_t t = 0; t < ntables; t++)
        if (!tables[t].emulated)
            lib[nlib++] = &tables[t];
    const bnorm_conf_table *primary = lib[cs.isa_pick % nlib];
    if (verbose) {
        fprintf(stderr, "case (isa %s, %s pool, expects 0x%x):\n", primary->label,
                cs.reverse_first ? "reverse" : "serial", expected);
        describe(&cs, &in);
    }
    cur_what = "public call";
    if (bnorm_set_isa(primary->k->isa) != BNORM_OK)
        fail("bnorm_set_isa(%s) refused", primary->label);
    set_pool(cs.reverse_first);
    bnorm_status st = call_op(&cs, &in, NULL);
    set_pool(false);
    if (!(expected & BIT(st))) {
        char list[256] = "";
        for (int e = 0; e <= BNORM_ERR_UNSUPPORTED_ISA; e++)
            if (expected & BIT(e)) {
                strncat(list, " ", sizeof list - strlen(list) - 1);
                strncat(list, bnorm_status_name((bnorm_status)e),
                        sizeof list - strlen(list) - 1);
            }
        fail("returned %s; the contract allows:%s", bnorm_status_name(st), list);
    }
    check_writes(&cs, &in, st == BNORM_OK);

    if (st != BNORM_OK) {
        /* every table refuses too, writing nothing */
        for (size_t t = 0; t < ntables && op_specs[cs.op].tensor; t++) {
            cur_what = tables[t].label;
            bnorm_status st2 = call_op(&cs, &in, tables[t].k);
            if (!(expected & BIT(st2)))
                fail("table %s returned %s", tables[t].label, bnorm_status_name(st2));
            check_writes(&cs, &in, false);
        }
    } else {
        run_valid(&cs, &m, &in, primary);
    }
    inst_free(&in);
    cur_case = NULL;
    cur_inst = NULL;
    return 0;
}
