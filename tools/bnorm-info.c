/*
 * bnorm-info: what the bnorm library linked at run time is and what it will do on
 * this CPU: its version, the CPU features it detected, the ISAs compiled into it and
 * which of them this CPU can run, the one it chose (with what became of the
 * BNORM_ISA environment variable), and the size from which it streams its outputs
 * (with what became of BNORM_STREAM_THRESHOLD). Uses the public API only, so it
 * reports on the installed shared library exactly as an application sees it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnorm.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: bnorm-info\n"
               "Prints the bnorm version, the CPU features detected, the ISAs compiled\n"
               "in, the one chosen, and the output size from which stores bypass the\n"
               "caches. BNORM_ISA=NAME asks for an ISA and BNORM_STREAM_THRESHOLD=BYTES\n"
               "(K, M or G suffix) for that size, as for any program.\n");
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        int help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
        usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }

    unsigned v = bnorm_version();
    printf("bnorm %s (header %d.%d.%d)\n", bnorm_version_string(), BNORM_VERSION_MAJOR,
           BNORM_VERSION_MINOR, BNORM_VERSION_PATCH);
    if (v / 100 != BNORM_VERSION / 100)
        printf("warning: the library's version differs from the header's\n");

    uint32_t features = bnorm_cpu_features();
    printf("cpu features:");
    int any = 0;
    for (unsigned bit = 0; bit < 32; bit++) {
        const char *name = bnorm_cpu_feature_name(1u << bit);
        if (name && (features & (1u << bit))) {
            printf(" %s", name);
            any = 1;
        }
    }
    printf("%s\n", any ? "" : " (none)");

    printf("isa compiled:");
    for (int i = 0; i < BNORM_ISA_COUNT; i++) {
        if (bnorm_isa_compiled((bnorm_isa)i))
            printf(" %s", bnorm_isa_name((bnorm_isa)i));
    }
    printf("\nisa supported:");
    for (int i = 0; i < BNORM_ISA_COUNT; i++) {
        if (bnorm_isa_supported((bnorm_isa)i))
            printf(" %s", bnorm_isa_name((bnorm_isa)i));
    }
    printf("\n");

    bnorm_isa active = bnorm_active_isa();
    const char *env = getenv("BNORM_ISA");
    bnorm_status env_status = bnorm_env_isa_status();
    printf("isa chosen: %s", bnorm_isa_name(active));
    if (env && *env) {
        if (env_status == BNORM_OK)
            printf(" (BNORM_ISA=%s)", env);
        else
            printf(" (BNORM_ISA=%s ignored: %s)", env, bnorm_status_name(env_status));
    } else {
        printf(" (the best this CPU supports)");
    }
    printf("\n");

    size_t threshold = bnorm_stream_threshold_bytes();
    env = getenv("BNORM_STREAM_THRESHOLD");
    env_status = bnorm_env_stream_threshold_status();
    printf("stream threshold: %zu bytes (%.1f MiB, ", threshold,
           (double)threshold / (1 << 20));
    if (env && *env && env_status == BNORM_OK)
        printf("BNORM_STREAM_THRESHOLD=%s)\n", env);
    else if (env && *env)
        printf("the default; BNORM_STREAM_THRESHOLD=%s ignored: %s)\n", env,
               bnorm_status_name(env_status));
    else
        printf("the default: half the last-level cache, or 16 MiB if none is found)\n");
    return 0;
}
