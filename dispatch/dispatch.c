/*
 * The choice of kernel table: once, on first use (pthread_once), the best ISA this
 * CPU runs, unless BNORM_ISA names another supported one. bnorm_set_isa replaces it
 * later; the active table is an atomic pointer, so readers never lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bnorm_config.h"
#include "dispatch.h"

static const char *const isa_names[BNORM_ISA_COUNT] = {
    [BNORM_ISA_SCALAR] = "scalar",
    [BNORM_ISA_AVX2] = "avx2",
    [BNORM_ISA_NEON] = "neon",
};

/* Best first: the order in which the default choice tries them. */
static const bnorm_isa isa_preference[] = {BNORM_ISA_AVX2, BNORM_ISA_NEON,
                                           BNORM_ISA_SCALAR};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic(const bnorm_kernels *) active;
static uint32_t cpu_features;
/* Set once by init (at least BNORM_STREAM_MIN_BYTES), read without pthread_once on
 * every apply: 0 means init has not run in this thread's view yet. */
static _Atomic size_t stream_threshold;
static size_t cached_pass_bytes;
static bnorm_status env_status;
static bnorm_status env_threshold_status;

const bnorm_kernels *bnorm_kernels_for(bnorm_isa isa)
{
    switch (isa) {
    case BNORM_ISA_SCALAR:
        return &bnorm_kernels_scalar;
#if BNORM_HAVE_AVX2
    case BNORM_ISA_AVX2:
        return &bnorm_kernels_avx2;
#endif
#if BNORM_HAVE_NEON
    case BNORM_ISA_NEON:
        return &bnorm_kernels_neon;
#endif
    default:
        return NULL;
    }
}

int bnorm_isa_runnable(bnorm_isa isa, uint32_t features)
{
    switch (isa) {
    case BNORM_ISA_SCALAR:
        return 1;
    case BNORM_ISA_AVX2: {
        uint32_t need = BNORM_CPU_AVX | BNORM_CPU_AVX2 | BNORM_CPU_FMA;
        return (features & need) == need;
    }
    case BNORM_ISA_NEON:
        return (features & BNORM_CPU_NEON) != 0;
    default:
        return 0;
    }
}

static int supported(bnorm_isa isa, uint32_t features)
{
    return bnorm_kernels_for(isa) != NULL && bnorm_isa_runnable(isa, features);
}

/* A byte count with an optional binary suffix K, M or G ("64M"). Returns false
 * (and leaves *bytes alone) for NULL, empty, malformed or overflowing text. */
static bool parse_bytes(const char *text, size_t *bytes)
{
    if (!text || *text < '0' || *text > '9')
        return false;
    size_t v = 0;
    for (; *text >= '0' && *text <= '9'; text++) {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (size_t)(*text - '0'), &v))
            return false;
    }
    unsigned shift = 0;
    switch (*text) {
    case '\0': break;
    case 'K': case 'k': shift = 10; text++; break;
    case 'M': case 'm': shift = 20; text++; break;
    case 'G': case 'g': shift = 30; text++; break;
    default: return false;
    }
    if (*text || (shift && v > (SIZE_MAX >> shift)))
        return false;
    *bytes = v << shift;
    return true;
}

/* Runs once; must not call anything that calls ensure_init. */
static void init(void)
{
    cpu_features = bnorm_detect_cpu_features();

    /* Outputs larger than half the last-level cache cannot stay cached next to
     * their input: write them around the cache. BNORM_STREAM_THRESHOLD overrides
     * it where the reported LLC is not what a thread gets (a VM, a shared server). */
    size_t llc = bnorm_detect_llc_bytes();
    size_t threshold = llc ? llc / 2 : (size_t)16 << 20;
    const char *text = getenv("BNORM_STREAM_THRESHOLD");
    env_threshold_status = !text || !*text || parse_bytes(text, &threshold)
                               ? BNORM_OK
                               : BNORM_ERR_BAD_VALUE; /* and the default stays */
    atomic_store_explicit(&stream_threshold,
                          threshold > BNORM_STREAM_MIN_BYTES ? threshold
                                                             : BNORM_STREAM_MIN_BYTES,
                          memory_order_relaxed);
    /* Half of L2 leaves room for the other operands and what else runs. */
    size_t l2 = bnorm_detect_l2_bytes();
    cached_pass_bytes = l2 ? l2 / 2 : (size_t)256 << 10;

    bnorm_isa choice = BNORM_ISA_SCALAR;
    for (size_t i = 0; i < sizeof isa_preference / sizeof isa_preference[0]; i++) {
        if (supported(isa_preference[i], cpu_features)) {
            choice = isa_preference[i];
            break;
        }
    }

    const char *env = getenv("BNORM_ISA");
    env_status = BNORM_OK;
    if (env && *env) {
        bnorm_isa requested;
        env_status = bnorm_isa_from_name(env, &requested);
        if (env_status == BNORM_OK) {
            if (supported(requested, cpu_features))
                choice = requested;
            else
                env_status = BNORM_ERR_UNSUPPORTED_ISA;
        }
    }
    atomic_store_explicit(&active, bnorm_kernels_for(choice), memory_order_release);
}

static void ensure_init(void)
{
    pthread_once(&init_once, init);
}

const bnorm_kernels *bnorm_active_kernels(void)
{
    const bnorm_kernels *k = atomic_load_explicit(&active, memory_order_acquire);
    if (k)
        return k;
    ensure_init();
    return atomic_load_explicit(&active, memory_order_acquire);
}

size_t bnorm_stream_threshold(void)
{
    size_t t = atomic_load_explicit(&stream_threshold, memory_order_relaxed);
    if (t)
        return t;
    ensure_init();
    return atomic_load_explicit(&stream_threshold, memory_order_relaxed);
}

size_t bnorm_cached_pass_bytes(void)
{
    ensure_init();
    return cached_pass_bytes;
}

uint32_t bnorm_cpu_features(void)
{
    ensure_init();
    return cpu_features;
}

const char *bnorm_cpu_feature_name(uint32_t feature)
{
    switch (feature) {
    case BNORM_CPU_SSE2: return "sse2";
    case BNORM_CPU_AVX: return "avx";
    case BNORM_CPU_AVX2: return "avx2";
    case BNORM_CPU_FMA: return "fma";
    case BNORM_CPU_F16C: return "f16c";
    case BNORM_CPU_AVX512F: return "avx512f";
    case BNORM_CPU_NEON: return "neon";
    case BNORM_CPU_ASIMDHP: return "asimdhp";
    default: return NULL;
    }
}

const char *bnorm_isa_name(bnorm_isa isa)
{
    return (unsigned)isa < BNORM_ISA_COUNT ? isa_names[isa] : NULL;
}

bnorm_status bnorm_isa_from_name(const char *name, bnorm_isa *isa)
{
    if (!name || !isa)
        return BNORM_ERR_NULL_POINTER;
    for (int i = 0; i < BNORM_ISA_COUNT; i++) {
        if (strcmp(name, isa_names[i]) == 0) {
            *isa = (bnorm_isa)i;
            return BNORM_OK;
        }
    }
    return BNORM_ERR_UNKNOWN_ISA;
}

int bnorm_isa_compiled(bnorm_isa isa)
{
    return bnorm_kernels_for(isa) != NULL;
}

int bnorm_isa_supported(bnorm_isa isa)
{
    return supported(isa, bnorm_cpu_features());
}

bnorm_isa bnorm_active_isa(void)
{
    return bnorm_active_kernels()->isa;
}

bnorm_status bnorm_set_isa(bnorm_isa isa)
{
    if ((unsigned)isa >= BNORM_ISA_COUNT)
        return BNORM_ERR_BAD_ENUM;
    if (!bnorm_isa_supported(isa))
        return BNORM_ERR_UNSUPPORTED_ISA;
    ensure_init(); /* so a later first use cannot overwrite this choice */
    atomic_store_explicit(&active, bnorm_kernels_for(isa), memory_order_release);
    return BNORM_OK;
}

bnorm_status bnorm_env_isa_status(void)
{
    ensure_init();
    return env_status;
}

size_t bnorm_stream_threshold_bytes(void)
{
    return bnorm_stream_threshold();
}

bnorm_status bnorm_env_stream_threshold_status(void)
{
    ensure_init();
    return env_threshold_status;
}
