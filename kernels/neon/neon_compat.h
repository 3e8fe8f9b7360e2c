/* NEON intrinsics: the real ones on ARM, SIMDe's translation elsewhere, so the same
 * NEON source is built and tested on x86. */
#ifndef BNORM_NEON_COMPAT_H
#define BNORM_NEON_COMPAT_H

#if defined(__ARM_NEON) || defined(__aarch64__)
#include <arm_neon.h>
#else
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#endif

#endif
