/*
 * CPU feature and cache size detection. Built with the baseline flags only: nothing
 * here may execute an instruction the oldest supported CPU lacks.
 *   x86: CPUID for the instruction sets, XGETBV for the register state the OS saves
 *        (AVX needs XCR0 bits 1-2 = SSE+YMM; AVX-512 also bits 5-7 = opmask+ZMM).
 *   aarch64: getauxval(AT_HWCAP); Advanced SIMD is architectural.
 */
#include <stdint.h>
#include <unistd.h>

#include "dispatch.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

uint32_t bnorm_detect_cpu_features(void)
{
    unsigned a, b, c, d;
    uint32_t f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (d & (1u << 26))
        f |= BNORM_CPU_SSE2;
    unsigned ecx1 = c;
    int osxsave = (ecx1 >> 27) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_state = (xcr0 & 0x6) == 0x6;
    int zmm_state = (xcr0 & 0xe6) == 0xe6;
    unsigned ebx7 = 0;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        ebx7 = b;
    }
    if (ymm_state) {
        if (ecx1 & (1u << 28))
            f |= BNORM_CPU_AVX;
        if (ebx7 & (1u << 5))
            f |= BNORM_CPU_AVX2;
        if (ecx1 & (1u << 12))
            f |= BNORM_CPU_FMA;
        if (ecx1 & (1u << 29))
            f |= BNORM_CPU_F16C;
        if (zmm_state && (ebx7 & (1u << 16)))
            f |= BNORM_CPU_AVX512F;
    }
    return f;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>

uint32_t bnorm_detect_cpu_features(void)
{
    unsigned long hw = getauxval(AT_HWCAP);
    uint32_t f = BNORM_CPU_NEON;
    if ((hw & HWCAP_ASIMDHP) && (hw & HWCAP_FPHP))
        f |= BNORM_CPU_ASIMDHP;
    return f;
}

#elif defined(__aarch64__)
uint32_t bnorm_detect_cpu_features(void)
{
    return BNORM_CPU_NEON;
}

#else
uint32_t bnorm_detect_cpu_features(void)
{
    return 0;
}
#endif

size_t bnorm_cache_leaf_bytes(uint32_t eax, uint32_t ebx, uint32_t ecx)
{
    uint32_t type = eax & 0x1f; /* 0: end of list, 1: data, 2: instruction, 3: unified */
    if (type != 1 && type != 3)
        return 0;
    uint64_t ways = (ebx >> 22) + 1, partitions = ((ebx >> 12) & 0x3ff) + 1;
    uint64_t line = (ebx & 0xfff) + 1, sets = (uint64_t)ecx + 1, bytes;
    /* the first product is at most 2^32 */
    if (__builtin_mul_overflow(ways * partitions * line, sets, &bytes) ||
        bytes > SIZE_MAX)
        return 0;
    return (size_t)bytes;
}

/* The data or unified cache of `level` (0: the highest level there is, an L4 where
 * one is reported, as sysfs has it) from CPUID's deterministic cache parameters,
 * one subleaf per cache, in the leaf Linux reads for the vendor: 0x8000001D on AMD
 * and Hygon (with topology extensions), leaf 4 on the others. Each describes one
 * instance of the cache, the part a core shares with its neighbours. sysconf's sizes
 * come from these leaves on Intel but, for AMD's L3, from leaf 0x80000006, which may
 * give the whole package: 320 MiB in a 2-vCPU Zen 4 guest whose cores share 32 MiB
 * (the size 0x8000001D and Linux's sysfs give). 0 when the leaf describes none. The
 * answer is the calling core's: on CPUs with two kinds of core it can differ from
 * core to core (speed only: the stream threshold and the cached pass). */
#if defined(__x86_64__) || defined(__i386__)
static size_t cpuid_cache_bytes(unsigned level)
{
    unsigned a, b, c, d, vendor = 0, leaf = 0;
    unsigned max = (unsigned)__get_cpuid_max(0, &vendor);
    /* "Auth"enticAMD, "Hygo"nGenuine */
    if (vendor == 0x68747541u || vendor == 0x6f677948u) {
        if ((unsigned)__get_cpuid_max(0x80000000, NULL) >= 0x8000001du &&
            __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 22)))
            leaf = 0x8000001d;
    } else if (max >= 4) {
        leaf = 4;
    }
    size_t bytes = 0;
    unsigned best = 0;
    for (unsigned i = 0; leaf && i < 32; i++) {
        __cpuid_count(leaf, i, a, b, c, d);
        if ((a & 0x1f) == 0)
            break;
        unsigned l = (a >> 5) & 7;
        size_t n = bnorm_cache_leaf_bytes(a, b, c);
        if (n && (level ? l == level : l >= best)) {
            best = l;
            bytes = n;
        }
    }
    return bytes;
}
#else
static size_t cpuid_cache_bytes(unsigned level)
{
    (void)level;
    return 0;
}
#endif

#ifdef _SC_LEVEL2_CACHE_SIZE
static size_t sysconf_bytes(int name)
{
    long bytes = sysconf(name);
    return bytes > 0 ? (size_t)bytes : 0;
}
#endif

size_t bnorm_detect_llc_bytes(void)
{
    size_t bytes = cpuid_cache_bytes(0);
#ifdef _SC_LEVEL3_CACHE_SIZE
    if (!bytes)
        bytes = sysconf_bytes(_SC_LEVEL3_CACHE_SIZE);
    if (!bytes)
        bytes = sysconf_bytes(_SC_LEVEL2_CACHE_SIZE);
#endif
    return bytes;
}

size_t bnorm_detect_l2_bytes(void)
{
    size_t bytes = cpuid_cache_bytes(2);
#ifdef _SC_LEVEL2_CACHE_SIZE
    if (!bytes)
        bytes = sysconf_bytes(_SC_LEVEL2_CACHE_SIZE);
#endif
    return bytes;
}
