#include "conformance.h"
#include "dispatch.h"

#if BNORM_EMULATED_NEON
/* The NEON source built with SIMDe (kernels/meson.build): runs where AVX2 runs. */
extern const bnorm_kernels bnorm_kernels_neon;
#endif
#if BNORM_EMULATED_AVX2
/* The AVX2 source built with SIMDe on aarch64 (kernels/meson.build): runs on any
 * aarch64 CPU. */
extern const bnorm_kernels bnorm_kernels_avx2;
#endif

size_t bnorm_conf_tables(bnorm_conf_table *out, size_t cap)
{
    uint32_t features = bnorm_cpu_features();
    size_t n = 0;
    for (int i = 0; i < BNORM_ISA_COUNT; i++) {
        const bnorm_kernels *k = bnorm_kernels_for((bnorm_isa)i);
        if (!k)
            continue;
        if (n < cap)
            out[n] = (bnorm_conf_table){k->name, k, bnorm_isa_runnable(k->isa, features) != 0,
                                        false};
        n++;
    }
#if BNORM_EMULATED_NEON
    if (n < cap)
        out[n] = (bnorm_conf_table){"neon-simde", &bnorm_kernels_neon,
                                    bnorm_isa_runnable(BNORM_ISA_AVX2, features) != 0, true};
    n++;
#endif
#if BNORM_EMULATED_AVX2
    if (n < cap)
        out[n] = (bnorm_conf_table){"avx2-simde", &bnorm_kernels_avx2,
                                    bnorm_isa_runnable(BNORM_ISA_NEON, features) != 0, true};
    n++;
#endif
    return n;
}
