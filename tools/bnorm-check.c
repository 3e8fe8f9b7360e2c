/*
 * bnorm-check: every kernel table this CPU can run, over the shape matrix, against
 * the double-precision reference. A plain program (no test framework, no fork), so
 * it also runs under qemu user emulation and on a user's new CPU.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bnorm.h"
#include "conformance.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bnorm-check [--quick | --full] [--seed N] [--isa NAME[,NAME...]]\n"
            "                   [--op NAME]\n"
            "  --quick      a representative subset of the shape matrix (default)\n"
            "  --full       the whole shape matrix\n"
            "  --seed N     seed for every random choice (default: BNORM_TEST_SEED, else\n"
            "               random); printed, so a run can be repeated exactly\n"
            "  --isa LIST   only these kernel tables (e.g. avx2,neon-simde)\n"
            "  --op NAME    only this operation\n"
            "Exit status: 0 if everything run passed, 1 if anything failed, 2 on usage.\n");
}

/* A fault in a kernel kills the process: say which case it was first. */
static void on_fault(int sig)
{
    const char *c = bnorm_conf_current_case();
    static const char head[] = "\nFATAL: signal during ";
    ssize_t ignored = write(2, head, sizeof head - 1);
    ignored = write(2, c, strlen(c));
    ignored = write(2, "\n", 1);
    (void)ignored;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* The dispatcher's word on every compiled ISA: bnorm_set_isa accepts those the CPU
 * can run and refuses the others, leaving the active ISA as it was (a CPU without
 * one of them, such as qemu's x86 models without AVX2, is where a refusal can be
 * seen). Prints a FAIL line for each disagreement; returns their number. */
static unsigned check_set_isa(void)
{
    unsigned failed = 0;
    bnorm_isa chosen = bnorm_active_isa();
    for (int i = 0; i < BNORM_ISA_COUNT; i++) {
        bnorm_isa isa = (bnorm_isa)i;
        if (!bnorm_isa_compiled(isa))
            continue;
        bnorm_isa before = bnorm_active_isa();
        bnorm_status st = bnorm_set_isa(isa);
        bnorm_isa after = bnorm_active_isa();
        int ok = bnorm_isa_supported(isa)
                     ? st == BNORM_OK && after == isa
                     : st == BNORM_ERR_UNSUPPORTED_ISA && after == before;
        if (!ok) {
            printf("FAIL %-16s %-12s returned %s, active isa %s\n", "set_isa",
                   bnorm_isa_name(isa), bnorm_status_name(st), bnorm_isa_name(after));
            failed++;
        }
    }
    if (bnorm_set_isa(chosen) != BNORM_OK || bnorm_active_isa() != chosen) {
        printf("FAIL %-16s %-12s cannot restore the chosen isa\n", "set_isa",
               bnorm_isa_name(chosen));
        failed++;
    }
    return failed;
}

int main(int argc, char **argv)
{
    bnorm_conf_matrix matrix = BNORM_MATRIX_QUICK;
    uint64_t seed = bnorm_conf_seed((uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid());
    const char *isa_filter = NULL, *op_filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            matrix = BNORM_MATRIX_QUICK;
        } else if (strcmp(argv[i], "--full") == 0) {
            matrix = BNORM_MATRIX_FULL;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            char *end;
            seed = strtoull(argv[++i], &end, 0);
            if (*end) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) {
            isa_filter = argv[++i];
        } else if (strcmp(argv[i], "--op") == 0 && i + 1 < argc) {
            op_filter = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    signal(SIGSEGV, on_fault);
    signal(SIGBUS, on_fault);
    signal(SIGILL, on_fault);
    signal(SIGFPE, on_fault);

    printf("bnorm %s, bnorm-check\n", bnorm_version_string());
    printf("cpu features:");
    uint32_t features = bnorm_cpu_features();
    for (int b = 0; b < 32; b++)
        if (features & (1u << b))
            printf(" %s", bnorm_cpu_feature_name(1u << b));
    printf("%s\n", features ? "" : " (none detected)");
    printf("compiled isas:");
    for (int i = 0; i < BNORM_ISA_COUNT; i++)
        if (bnorm_isa_compiled((bnorm_isa)i))
            printf(" %s%s", bnorm_isa_name((bnorm_isa)i),
                   bnorm_isa_supported((bnorm_isa)i) ? "" : " (cpu cannot run)");
    printf("\n");
    const char *env = getenv("BNORM_ISA");
    bnorm_status env_status = bnorm_env_isa_status();
    printf("active isa: %s (BNORM_ISA=%s%s%s)\n", bnorm_isa_name(bnorm_active_isa()),
           env ? env : "unset", env_status == BNORM_OK ? "" : ", ignored: ",
           env_status == BNORM_OK ? "" : bnorm_status_name(env_status));
    printf("matrix: %s, seed: 0x%llx (repeat with --seed 0x%llx)\n",
           matrix == BNORM_MATRIX_FULL ? "full" : "quick", (unsigned long long)seed,
           (unsigned long long)seed);
    fflush(stdout);

    bnorm_conf_table tables[16];
    size_t ntables = bnorm_conf_tables(tables, sizeof tables / sizeof tables[0]);
    unsigned passed = 0, failed = check_set_isa();
    fflush(stdout); /* before any kernel runs: a fault kills the process */
    for (size_t t = 0; t < ntables; t++) {
        if (isa_filter && !in_list(isa_filter, tables[t].label))
            continue;
        if (!tables[t].runnable) {
            printf("skip %-16s %-12s this CPU cannot run it\n", "*", tables[t].label);
            continue;
        }
        for (size_t o = 0; o < bnorm_conf_op_count; o++) {
            const bnorm_conf_op *op = bnorm_conf_ops[o];
            if (op_filter && strcmp(op_filter, op->name) != 0)
                continue;
            bnorm_conf_result r = bnorm_conf_run(op, tables[t].k, matrix, seed);
            int ok = r.failures == 0 && r.cases > 0;
            printf("%s %-16s %-12s %5zu cases  worst %6.3f ulps (tolerance %.0f)%s\n",
                   ok ? "PASS" : "FAIL", op->name, tables[t].label, r.cases, r.worst_ulps,
                   op->tol_ulps, tables[t].emulated ? "  [SIMDe]" : "");
            if (!ok)
                printf("     %zu failed; first: %s\n", r.failures,
                       r.cases ? r.first_failure : "no case ran");
            fflush(stdout);
            ok ? passed++ : failed++;
        }
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed || passed == 0 ? 1 : 0;
}
