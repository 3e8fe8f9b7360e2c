/*
 * CPU feature detection. Built with the baseline flags only: nothing here may
 * execute an instruction the oldest supported CPU lacks.
 *   x86: CPUID for the instruction sets, XGETBV for the register state the OS saves
 *        (AVX needs XCR0 bits 1-2 = SSE+YMM; AVX-512 also bits 5-7 = opmask+ZMM).
 *   aarch64: getauxval(AT_HWCAP); Advanced SIMD is architectural.
 */
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

size_t bnorm_detect_llc_bytes(void)
{
    long bytes = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
    bytes = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (bytes <= 0)
        bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return bytes > 0 ? (size_t)bytes : 0;
}

size_t bnorm_detect_l2_bytes(void)
{
    long bytes = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
    bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return bytes > 0 ? (size_t)bytes : 0;
}
