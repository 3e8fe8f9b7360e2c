/*
 * The dispatcher: ISA names, what is compiled and supported, bnorm_set_isa, the
 * BNORM_ISA environment override, CPU feature names, and thread-safe first use.
 *
 * The library picks its kernel table once per process, on first use. These tests
 * rely on Criterion (2.4) running every test in a freshly executed process, so a test
 * can set BNORM_ISA before its first library call and see that call initialize the
 * library. The isolation tests below check that assumption, so a runner that shares
 * processes (e.g. --no-fork/--debug) fails them loudly instead of letting the
 * environment tests pass or fail by accident.
 */
#define _GNU_SOURCE /* sched_setaffinity */

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bnorm.h"
#include "conformance.h"
#include "dispatch.h"
#include "ops.h"

#if defined(__x86_64__) || defined(__i386__)
#define HOST_X86 1
/* An ISA this build can never run: the environment override must ignore it. */
#define FOREIGN_ISA BNORM_ISA_NEON
#elif defined(__aarch64__)
#define HOST_ARM64 1
#define FOREIGN_ISA BNORM_ISA_AVX2
#endif

/* A value no call may write over when it fails. */
#define UNTOUCHED ((bnorm_isa)0x5a5a)

/* The ISA the library picks without an override: the first supported one in this
 * order (dispatch.c's preference; restated here because it is the expectation). */
static bnorm_isa best_supported(void)
{
    static const bnorm_isa order[] = {BNORM_ISA_AVX2, BNORM_ISA_NEON, BNORM_ISA_SCALAR};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (bnorm_isa_supported(order[i]))
            return order[i];
    return BNORM_ISA_SCALAR;
}

static const char *isa_str(bnorm_isa isa)
{
    const char *n = bnorm_isa_name(isa);
    return n ? n : "(undefined)";
}

/* Sets BNORM_ISA (NULL: unsets it). Must run before the first library call. */
static void set_env(const char *value)
{
    int rc = value ? setenv("BNORM_ISA", value, 1) : unsetenv("BNORM_ISA");
    cr_assert_eq(rc, 0, "setting BNORM_ISA failed");
}

/* ============================================================================== */
/* The test runner gives each test a fresh process                                */
/* ============================================================================== */

static int tests_run_here;
static pid_t constructed_in;

__attribute__((constructor)) static void note_process(void)
{
    constructed_in = getpid();
}

/* If two of these ran in one process, the second would count 2. If the test ran in a
 * process forked from the runner without exec, its static constructors would have
 * run in another process. */
static void assert_fresh_process(void)
{
    tests_run_here++;
    cr_assert_eq(tests_run_here, 1, "tests share a process: the environment and first-use "
                                     "tests of this file are meaningless");
    cr_assert_eq(constructed_in, getpid(), "the test process was not freshly executed");
    cr_assert_null(getenv("BNORM_TEST_ISOLATION"), "environment leaked from another test");
    cr_assert_eq(setenv("BNORM_TEST_ISOLATION", "set", 1), 0);
}

Test(isolation, fresh_process_a) { assert_fresh_process(); }
Test(isolation, fresh_process_b) { assert_fresh_process(); }
Test(isolation, fresh_process_c) { assert_fresh_process(); }

/* ============================================================================== */
/* Names                                                                          */
/* ============================================================================== */

Test(isa_names, round_trip)
{
    static const char *const expected[BNORM_ISA_COUNT] = {"scalar", "avx2", "neon"};
    for (int i = 0; i < BNORM_ISA_COUNT; i++) {
        const char *name = bnorm_isa_name((bnorm_isa)i);
        cr_assert_not_null(name, "ISA %d has no name", i);
        cr_assert_str_eq(name, expected[i]);
        bnorm_isa back = UNTOUCHED;
        cr_assert_eq(bnorm_isa_from_name(name, &back), BNORM_OK, "\"%s\"", name);
        cr_assert_eq(back, (bnorm_isa)i, "\"%s\" -> %d", name, (int)back);
        /* a copy, not the library's own pointer, is looked up by content */
        char copy[32];
        strncpy(copy, name, sizeof copy - 1);
        copy[sizeof copy - 1] = '\0';
        back = UNTOUCHED;
        cr_assert_eq(bnorm_isa_from_name(copy, &back), BNORM_OK);
        cr_assert_eq(back, (bnorm_isa)i);
    }
}

Test(isa_names, undefined_isa_has_no_name)
{
    const bnorm_isa undefined[] = {BNORM_ISA_COUNT, (bnorm_isa)7, (bnorm_isa)-1,
                                   (bnorm_isa)0x7fffffff};
    for (size_t i = 0; i < sizeof undefined / sizeof undefined[0]; i++)
        cr_assert_null(bnorm_isa_name(undefined[i]), "ISA %d", (int)undefined[i]);
}

Test(isa_names, unknown_name_leaves_output_untouched)
{
    const char *unknown[] = {"bogus", "",       "AVX2",  "Scalar", "avx2 ", " avx2",
                             "avx",   "neon\n", "scalarx", "avx512", "sse2", "s"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        bnorm_isa out = UNTOUCHED;
        cr_assert_eq(bnorm_isa_from_name(unknown[i], &out), BNORM_ERR_UNKNOWN_ISA, "\"%s\"",
                     unknown[i]);
        cr_assert_eq(out, UNTOUCHED, "\"%s\" wrote the output", unknown[i]);
    }
}

Test(isa_names, null_arguments)
{
    bnorm_isa out = UNTOUCHED;
    cr_assert_eq(bnorm_isa_from_name(NULL, &out), BNORM_ERR_NULL_POINTER);
    cr_assert_eq(out, UNTOUCHED);
    cr_assert_eq(bnorm_isa_from_name("scalar", NULL), BNORM_ERR_NULL_POINTER);
    cr_assert_eq(bnorm_isa_from_name("bogus", NULL), BNORM_ERR_NULL_POINTER);
    cr_assert_eq(bnorm_isa_from_name(NULL, NULL), BNORM_ERR_NULL_POINTER);
}

Test(cpu_features, names)
{
    const struct {
        uint32_t bit;
        const char *name;
    } features[] = {
        {BNORM_CPU_SSE2, "sse2"}, {BNORM_CPU_AVX, "avx"},         {BNORM_CPU_AVX2, "avx2"},
        {BNORM_CPU_FMA, "fma"},   {BNORM_CPU_F16C, "f16c"},       {BNORM_CPU_AVX512F, "avx512f"},
        {BNORM_CPU_NEON, "neon"}, {BNORM_CPU_ASIMDHP, "asimdhp"},
    };
    const size_t n = sizeof features / sizeof features[0];
    uint32_t all = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = bnorm_cpu_feature_name(features[i].bit);
        cr_assert_not_null(name, "feature %#x", (unsigned)features[i].bit);
        cr_assert_str_eq(name, features[i].name);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(name, bnorm_cpu_feature_name(features[j].bit));
        all |= features[i].bit;
    }
    /* every other single bit, zero and combinations are not feature bits */
    for (unsigned b = 0; b < 32; b++) {
        uint32_t bit = 1u << b;
        if (!(all & bit))
            cr_assert_null(bnorm_cpu_feature_name(bit), "bit %u", b);
    }
    cr_assert_null(bnorm_cpu_feature_name(0));
    cr_assert_null(bnorm_cpu_feature_name(BNORM_CPU_AVX | BNORM_CPU_AVX2));
    cr_assert_null(bnorm_cpu_feature_name(all));
    cr_assert_null(bnorm_cpu_feature_name(UINT32_MAX));

    /* every detected feature is a named one */
    uint32_t f = bnorm_cpu_features();
    cr_assert_eq(f & ~all, 0u, "unnamed feature bits %#x", (unsigned)(f & ~all));
}

/* ============================================================================== */
/* Compiled, supported, detected                                                  */
/* ============================================================================== */

Test(isa_support, consistency)
{
    uint32_t f = bnorm_cpu_features();
    cr_assert(bnorm_isa_compiled(BNORM_ISA_SCALAR));
    cr_assert(bnorm_isa_supported(BNORM_ISA_SCALAR));
    for (int i = 0; i < BNORM_ISA_COUNT; i++) {
        bnorm_isa isa = (bnorm_isa)i;
        int compiled = bnorm_isa_compiled(isa), supported = bnorm_isa_supported(isa);
        cr_assert(compiled == 0 || compiled == 1, "%s: compiled %d", isa_str(isa), compiled);
        cr_assert(supported == 0 || supported == 1, "%s: supported %d", isa_str(isa), supported);
        cr_assert(!supported || compiled, "%s supported but not compiled", isa_str(isa));
        const bnorm_kernels *k = bnorm_kernels_for(isa);
        cr_assert_eq(k != NULL, compiled != 0, "%s: kernels_for vs compiled", isa_str(isa));
        if (k) {
            cr_assert_eq(k->isa, isa, "%s: table says ISA %d", isa_str(isa), (int)k->isa);
            cr_assert_str_eq(k->name, bnorm_isa_name(isa));
            cr_assert(k->apply_planes && k->apply_rows, "%s: table has NULL kernels",
                      isa_str(isa));
        }
    }
    const bnorm_isa undefined[] = {BNORM_ISA_COUNT, (bnorm_isa)7, (bnorm_isa)-1};
    for (size_t i = 0; i < sizeof undefined / sizeof undefined[0]; i++) {
        cr_assert_eq(bnorm_isa_compiled(undefined[i]), 0);
        cr_assert_eq(bnorm_isa_supported(undefined[i]), 0);
    }
    /* the detection does not change between calls */
    cr_assert_eq(bnorm_cpu_features(), f);

#if defined(HOST_X86)
    uint32_t need = BNORM_CPU_AVX | BNORM_CPU_AVX2 | BNORM_CPU_FMA;
    cr_assert(bnorm_isa_compiled(BNORM_ISA_AVX2), "AVX2 kernels are built on x86");
    cr_assert_eq(bnorm_isa_supported(BNORM_ISA_AVX2), (f & need) == need,
                 "features %#x: avx2 supported %d", (unsigned)f,
                 bnorm_isa_supported(BNORM_ISA_AVX2));
    cr_assert_eq(bnorm_isa_compiled(BNORM_ISA_NEON), 0, "NEON is not part of an x86 library");
    cr_assert_eq(bnorm_isa_supported(BNORM_ISA_NEON), 0);
    cr_assert_eq(f & (BNORM_CPU_NEON | BNORM_CPU_ASIMDHP), 0u, "ARM features on x86");
#elif defined(HOST_ARM64)
    cr_assert(bnorm_isa_compiled(BNORM_ISA_NEON));
    cr_assert(bnorm_isa_supported(BNORM_ISA_NEON));
    cr_assert(f & BNORM_CPU_NEON);
    cr_assert_eq(bnorm_isa_compiled(BNORM_ISA_AVX2), 0);
    cr_assert_eq(f & 0xffffu, 0u, "x86 features on aarch64");
#endif
}

/* The runnability rule on feature sets this CPU may not have (internal, pure):
 * AVX2 needs AVX (with OS YMM state), AVX2 and FMA, all three. */
Test(isa_support, runnable_rule_for_every_feature_set)
{
    const uint32_t x86[] = {BNORM_CPU_AVX, BNORM_CPU_AVX2, BNORM_CPU_FMA};
    for (unsigned m = 0; m < 8; m++) {
        uint32_t f = BNORM_CPU_SSE2 | BNORM_CPU_F16C;
        for (unsigned b = 0; b < 3; b++)
            if (m & (1u << b))
                f |= x86[b];
        cr_assert_eq(bnorm_isa_runnable(BNORM_ISA_AVX2, f), m == 7, "features %#x", (unsigned)f);
        cr_assert_eq(bnorm_isa_runnable(BNORM_ISA_AVX2, f | BNORM_CPU_AVX512F), m == 7);
        cr_assert_eq(bnorm_isa_runnable(BNORM_ISA_SCALAR, f), 1);
        cr_assert_eq(bnorm_isa_runnable(BNORM_ISA_NEON, f), 0, "features %#x", (unsigned)f);
    }
    cr_assert_eq(bnorm_isa_runnable(BNORM_ISA_SCALAR, 0), 1);
    cr_assert_eq(bnorm_isa_runnable(BNORM_ISA_NEON, BNORM_CPU_NEON), 1);
    cr_assert_eq(bnorm_isa_runnable(BNORM_ISA_NEON, BNORM_CPU_NEON | BNORM_CPU_ASIMDHP), 1);
    cr_assert_eq(bnorm_isa_runnable(BNORM_ISA_AVX2, BNORM_CPU_NEON | BNORM_CPU_ASIMDHP), 0);
    cr_assert_eq(bnorm_isa_runnable(BNORM_ISA_COUNT, UINT32_MAX), 0);
    cr_assert_eq(bnorm_isa_runnable((bnorm_isa)-1, UINT32_MAX), 0);
}

/* The library's detection agrees with the compiler's (which also checks that the
 * OS saves the vector registers). */
Test(cpu_features, agree_with_compiler_builtin)
{
#if defined(HOST_X86) && (defined(__GNUC__) || defined(__clang__))
    uint32_t f = bnorm_cpu_features();
    __builtin_cpu_init();
    cr_assert_eq(!!(f & BNORM_CPU_SSE2), !!__builtin_cpu_supports("sse2"), "sse2");
    cr_assert_eq(!!(f & BNORM_CPU_AVX), !!__builtin_cpu_supports("avx"), "avx");
    cr_assert_eq(!!(f & BNORM_CPU_AVX2), !!__builtin_cpu_supports("avx2"), "avx2");
    cr_assert_eq(!!(f & BNORM_CPU_FMA), !!__builtin_cpu_supports("fma"), "fma");
    cr_assert_eq(!!(f & BNORM_CPU_AVX512F), !!__builtin_cpu_supports("avx512f"), "avx512f");
#ifndef __clang__ /* clang 14 does not know "f16c" */
    cr_assert_eq(!!(f & BNORM_CPU_F16C), !!__builtin_cpu_supports("f16c"), "f16c");
#endif
    /* tiers imply each other */
    if (f & BNORM_CPU_AVX2)
        cr_assert(f & BNORM_CPU_AVX);
    if (f & BNORM_CPU_AVX512F)
        cr_assert(f & BNORM_CPU_AVX);
#else
    cr_skip_test("x86 only");
#endif
}

/* ============================================================================== */
/* bnorm_set_isa                                                                  */
/* ============================================================================== */

/* 1 + 2^-12 squared minus 1 is 2^-11 + 2^-24: exact with FMA, 2^-11 with a separate
 * multiply (the product's 2^-24 is half an ulp and rounds to even). So a scalar
 * (unfused) and a fused table give different bits, and an output tells which table
 * ran it. */
enum { PROBE_LEN = 37 };

static void probe(const bnorm_kernels *k, float *y)
{
    static float x[PROBE_LEN];
    for (size_t i = 0; i < PROBE_LEN; i++)
        x[i] = 1.0f + 0x1p-12f;
    const float scale = 1.0f + 0x1p-12f, shift = -1.0f;
    const bnorm_shape sh = {.n = 1, .c = 1, .spatial = PROBE_LEN, .layout = BNORM_NCHW};
    bnorm_status st = k ? bnorm_inference_apply_with(k, &sh, x, NULL, y, NULL, &scale, &shift,
                                                     NULL)
                        : bnorm_inference_apply(&sh, x, NULL, y, NULL, &scale, &shift, NULL);
    cr_assert_eq(st, BNORM_OK, "probe: %s", bnorm_status_name(st));
}

/* Every supported ISA can be made active, and operations then run its kernels. */
Test(set_isa, each_supported_isa)
{
    set_env(NULL);
    float out[BNORM_ISA_COUNT][PROBE_LEN];
    for (int i = 0; i < BNORM_ISA_COUNT; i++) {
        bnorm_isa isa = (bnorm_isa)i;
        if (!bnorm_isa_supported(isa))
            continue;
        cr_assert_eq(bnorm_set_isa(isa), BNORM_OK, "set %s", isa_str(isa));
        cr_assert_eq(bnorm_active_isa(), isa, "set %s, active %s", isa_str(isa),
                     isa_str(bnorm_active_isa()));
        float via_table[PROBE_LEN];
        probe(NULL, out[i]);
        probe(bnorm_kernels_for(isa), via_table);
        cr_assert(memcmp(out[i], via_table, sizeof via_table) == 0,
                  "after bnorm_set_isa(%s), bnorm_inference_apply did not run its kernels",
                  isa_str(isa));
    }
    /* The probe tells tables apart only if the unfused scalar table and a fused one
     * give different bits; otherwise the check above proves nothing. */
    for (int i = 0; i < BNORM_ISA_COUNT; i++) {
        if (i == BNORM_ISA_SCALAR || !bnorm_isa_supported((bnorm_isa)i))
            continue;
        cr_assert(memcmp(out[i], out[BNORM_ISA_SCALAR], sizeof out[i]) != 0,
                  "premise: %s and scalar give the same probe bits", isa_str((bnorm_isa)i));
    }
    /* and back */
    cr_assert_eq(bnorm_set_isa(BNORM_ISA_SCALAR), BNORM_OK);
    cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
    cr_assert_eq(bnorm_set_isa(best_supported()), BNORM_OK);
    cr_assert_eq(bnorm_active_isa(), best_supported());
}

Test(set_isa, unsupported_isa_is_refused)
{
    set_env(NULL);
    for (int start = 0; start < BNORM_ISA_COUNT; start++) {
        if (!bnorm_isa_supported((bnorm_isa)start))
            continue;
        cr_assert_eq(bnorm_set_isa((bnorm_isa)start), BNORM_OK);
        for (int i = 0; i < BNORM_ISA_COUNT; i++) {
            if (bnorm_isa_supported((bnorm_isa)i))
                continue;
            cr_assert_eq(bnorm_set_isa((bnorm_isa)i), BNORM_ERR_UNSUPPORTED_ISA, "set %s",
                         isa_str((bnorm_isa)i));
            cr_assert_eq(bnorm_active_isa(), (bnorm_isa)start,
                         "refused %s changed the active ISA", isa_str((bnorm_isa)i));
        }
    }
#ifdef FOREIGN_ISA
    /* There is always one on the hosts we know (neon on x86, avx2 on aarch64). */
    bnorm_isa before = bnorm_active_isa();
    cr_assert_eq(bnorm_set_isa(FOREIGN_ISA), BNORM_ERR_UNSUPPORTED_ISA);
    cr_assert_eq(bnorm_active_isa(), before);
#endif
}

Test(set_isa, undefined_isa_is_bad_enum)
{
    set_env(NULL);
    const bnorm_isa undefined[] = {BNORM_ISA_COUNT, (bnorm_isa)7, (bnorm_isa)-1,
                                   (bnorm_isa)0x7fffffff};
    cr_assert_eq(bnorm_set_isa(BNORM_ISA_SCALAR), BNORM_OK);
    for (size_t i = 0; i < sizeof undefined / sizeof undefined[0]; i++) {
        cr_assert_eq(bnorm_set_isa(undefined[i]), BNORM_ERR_BAD_ENUM, "ISA %d",
                     (int)undefined[i]);
        cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
    }
}

/* bnorm_set_isa as the very first call: the lazy first-use choice made afterwards
 * must not overwrite it. */
Test(set_isa, as_first_call_sticks)
{
    set_env(NULL);
    cr_assert_eq(bnorm_set_isa(BNORM_ISA_SCALAR), BNORM_OK);
    cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
    float y[PROBE_LEN], want[PROBE_LEN];
    probe(NULL, y);
    probe(bnorm_kernels_for(BNORM_ISA_SCALAR), want);
    cr_assert(memcmp(y, want, sizeof y) == 0);
    cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
    cr_assert_eq(bnorm_env_isa_status(), BNORM_OK);
}

/* An explicit call overrides the environment. */
Test(set_isa, overrides_environment)
{
    set_env("scalar");
    cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
    bnorm_isa best = best_supported();
    cr_assert_eq(bnorm_set_isa(best), BNORM_OK);
    cr_assert_eq(bnorm_active_isa(), best);
    cr_assert_eq(bnorm_env_isa_status(), BNORM_OK);
}

/* The environment names an ISA, then bnorm_set_isa runs before any other call. */
Test(set_isa, first_call_with_environment_set)
{
    set_env("bogus");
    cr_assert_eq(bnorm_set_isa(BNORM_ISA_SCALAR), BNORM_OK);
    cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
    cr_assert_eq(bnorm_env_isa_status(), BNORM_ERR_UNKNOWN_ISA);
}

/* ============================================================================== */
/* BNORM_ISA                                                                      */
/* ============================================================================== */

/* The first library call of each test is the first line after set_env. */

Test(environment, unset)
{
    set_env(NULL);
    bnorm_isa active = bnorm_active_isa();
    cr_assert_eq(bnorm_env_isa_status(), BNORM_OK);
    cr_assert_eq(active, best_supported(), "active %s", isa_str(active));
}

Test(environment, empty)
{
    set_env("");
    bnorm_isa active = bnorm_active_isa();
    cr_assert_eq(bnorm_env_isa_status(), BNORM_OK);
    cr_assert_eq(active, best_supported(), "active %s", isa_str(active));
}

Test(environment, scalar)
{
    set_env("scalar");
    bnorm_isa active = bnorm_active_isa();
    cr_assert_eq(bnorm_env_isa_status(), BNORM_OK);
    cr_assert_eq(active, BNORM_ISA_SCALAR, "active %s", isa_str(active));
    /* and the operations use it */
    float y[PROBE_LEN], want[PROBE_LEN];
    probe(NULL, y);
    probe(bnorm_kernels_for(BNORM_ISA_SCALAR), want);
    cr_assert(memcmp(y, want, sizeof y) == 0, "BNORM_ISA=scalar but another table ran");
}

/* Status queried first this time: it must initialize the library too. */
Test(environment, scalar_status_first)
{
    set_env("scalar");
    cr_assert_eq(bnorm_env_isa_status(), BNORM_OK);
    cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
}

/* An operation as the first call must honour the environment too. */
Test(environment, scalar_operation_first)
{
    set_env("scalar");
    float y[PROBE_LEN], want[PROBE_LEN];
    probe(NULL, y);
    probe(bnorm_kernels_for(BNORM_ISA_SCALAR), want);
    cr_assert(memcmp(y, want, sizeof y) == 0, "BNORM_ISA=scalar but another table ran");
    cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
}

Test(environment, avx2)
{
    set_env("avx2");
    bnorm_isa active = bnorm_active_isa();
    bnorm_status st = bnorm_env_isa_status();
    if (bnorm_isa_supported(BNORM_ISA_AVX2)) {
        cr_assert_eq(st, BNORM_OK, "%s", bnorm_status_name(st));
        cr_assert_eq(active, BNORM_ISA_AVX2, "active %s", isa_str(active));
    } else {
        cr_assert_eq(st, BNORM_ERR_UNSUPPORTED_ISA, "%s", bnorm_status_name(st));
        cr_assert_eq(active, best_supported(), "active %s", isa_str(active));
    }
}

Test(environment, neon)
{
    set_env("neon");
    bnorm_isa active = bnorm_active_isa();
    bnorm_status st = bnorm_env_isa_status();
    if (bnorm_isa_supported(BNORM_ISA_NEON)) {
        cr_assert_eq(st, BNORM_OK, "%s", bnorm_status_name(st));
        cr_assert_eq(active, BNORM_ISA_NEON, "active %s", isa_str(active));
    } else {
        cr_assert_eq(st, BNORM_ERR_UNSUPPORTED_ISA, "%s", bnorm_status_name(st));
        cr_assert_eq(active, best_supported(), "active %s", isa_str(active));
    }
#if defined(HOST_X86)
    cr_assert_eq(st, BNORM_ERR_UNSUPPORTED_ISA, "neon on x86");
#endif
}

Test(environment, unknown_name)
{
    set_env("bogus");
    bnorm_isa active = bnorm_active_isa();
    cr_assert_eq(bnorm_env_isa_status(), BNORM_ERR_UNKNOWN_ISA);
    cr_assert_eq(active, best_supported(), "active %s", isa_str(active));
}

/* Names are case-sensitive, also in the environment. */
Test(environment, wrong_case)
{
    set_env("SCALAR");
    bnorm_isa active = bnorm_active_isa();
    cr_assert_eq(bnorm_env_isa_status(), BNORM_ERR_UNKNOWN_ISA);
    cr_assert_eq(active, best_supported(), "active %s", isa_str(active));
}

/* Read once: changing the variable later changes nothing. */
Test(environment, read_once)
{
    set_env("scalar");
    cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
    set_env("bogus");
    cr_assert_eq(bnorm_active_isa(), BNORM_ISA_SCALAR);
    cr_assert_eq(bnorm_env_isa_status(), BNORM_OK);
}

/* ============================================================================== */
/* First use from many threads at once                                            */
/* ============================================================================== */

enum { THREADS = 8, TLEN = 3 * 21 };

typedef struct worker {
    int first; /* which call comes first: 0 active_isa, 1 apply, 2 env status */
    bnorm_isa isa_before, isa_after;
    bnorm_status apply_status, env_status;
    float y[TLEN];
} worker;

static pthread_barrier_t start_line;
static float t_x[TLEN];
static const float t_scale[3] = {2.0f, -0.5f, 0.25f};
static const float t_shift[3] = {1.0f, 0.0f, -3.0f};

static bnorm_status worker_apply(worker *w)
{
    const bnorm_shape sh = {.n = 1, .c = 3, .spatial = 21, .layout = BNORM_NHWC};
    return bnorm_inference_apply(&sh, t_x, NULL, w->y, NULL, t_scale, t_shift, NULL);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(&start_line);
    switch (w->first) {
    case 0:
        w->isa_before = bnorm_active_isa();
        w->apply_status = worker_apply(w);
        w->env_status = bnorm_env_isa_status();
        break;
    case 1:
        w->apply_status = worker_apply(w);
        w->isa_before = bnorm_active_isa();
        w->env_status = bnorm_env_isa_status();
        break;
    default:
        w->env_status = bnorm_env_isa_status();
        w->isa_before = bnorm_active_isa();
        w->apply_status = worker_apply(w);
        break;
    }
    w->isa_after = bnorm_active_isa();
    return NULL;
}

/* Starts THREADS threads whose first library calls race; first_of(i) says which
 * call thread i makes first. No library call happens in this thread before. */
static void race(int mode, const char *env, bnorm_isa (*want_isa)(void))
{
    set_env(env);
    for (size_t i = 0; i < TLEN; i++)
        t_x[i] = (float)((int)i - 30) * 0.25f; /* every y below is exact */
    static worker w[THREADS];
    pthread_t tid[THREADS];
    cr_assert_eq(pthread_barrier_init(&start_line, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.first = mode < 3 ? mode : i % 3};
        memset(w[i].y, 0x5a, sizeof w[i].y);
        cr_assert_eq(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_join(tid[i], NULL), 0);
    pthread_barrier_destroy(&start_line);

    bnorm_isa want = want_isa();
    cr_assert_eq(bnorm_active_isa(), want, "active %s, want %s", isa_str(bnorm_active_isa()),
                 isa_str(want));
    for (int i = 0; i < THREADS; i++) {
        cr_assert_eq(w[i].isa_before, want, "thread %d saw %s first", i, isa_str(w[i].isa_before));
        cr_assert_eq(w[i].isa_after, want, "thread %d saw %s last", i, isa_str(w[i].isa_after));
        cr_assert_eq(w[i].apply_status, BNORM_OK, "thread %d: %s", i,
                     bnorm_status_name(w[i].apply_status));
        cr_assert_eq(w[i].env_status, BNORM_OK, "thread %d: env %s", i,
                     bnorm_status_name(w[i].env_status));
        for (size_t e = 0; e < TLEN; e++) {
            float expect = t_x[e] * t_scale[e % 3] + t_shift[e % 3];
            cr_assert_eq(w[i].y[e], expect, "thread %d: y[%zu] = %a, want %a", i, e,
                         (double)w[i].y[e], (double)expect);
        }
    }
}

static bnorm_isa want_scalar(void)
{
    return BNORM_ISA_SCALAR;
}

Test(first_use, threads_ask_for_the_isa_first) { race(0, NULL, best_supported); }
Test(first_use, threads_apply_first) { race(1, NULL, best_supported); }
Test(first_use, threads_mixed_first_calls) { race(3, NULL, best_supported); }
Test(first_use, threads_with_environment) { race(3, "scalar", want_scalar); }

/* ============================================================================== */
/* Cache sizes (the streaming threshold and the cached passes derive from them)     */
/* ============================================================================== */

/* Subleaves of CPUID 0x8000001D read in a 2-vCPU Zen 4 (EPYC) guest: its L3 is 32
 * MiB, where sysconf (from leaf 0x80000006) says 320 MiB. */
Test(cache_sizes, leaf_decoding)
{
    cr_assert_eq(bnorm_cache_leaf_bytes(0x121, 0x1c0003f, 0x3f), (size_t)32 << 10, "L1d");
    cr_assert_eq(bnorm_cache_leaf_bytes(0x122, 0x1c0003f, 0x3f), 0, "L1i: not data");
    cr_assert_eq(bnorm_cache_leaf_bytes(0x143, 0x1c0003f, 0x7ff), (size_t)1 << 20, "L2");
    cr_assert_eq(bnorm_cache_leaf_bytes(0x4163, 0x3c0003f, 0x7fff), (size_t)32 << 20, "L3");
    cr_assert_eq(bnorm_cache_leaf_bytes(0, 0x3c0003f, 0x7fff), 0, "end of the list");
    cr_assert_eq(bnorm_cache_leaf_bytes(0x164, 0x3c0003f, 0x7fff), 0, "reserved type");
    /* 1024 ways x 1024 partitions x 4096-byte lines x 2^32 sets = 2^64 */
    cr_assert_eq(bnorm_cache_leaf_bytes(0x63, 0xffffffff, 0xffffffff), 0, "overflow");
    if (SIZE_MAX >= UINT64_MAX)
        cr_assert_eq(bnorm_cache_leaf_bytes(0x63, 0xffffffff, 0xfffffffe),
                     (size_t)(((uint64_t)1 << 32) * 0xffffffffu), "largest");
}

Test(cache_sizes, llc_holds_l2)
{
    size_t l2 = bnorm_detect_l2_bytes(), llc = bnorm_detect_llc_bytes();
    cr_assert(!l2 || !llc || llc >= l2, "L2 %zu bytes, LLC %zu", l2, llc);
}

#if defined(HOST_X86) && defined(__linux__)
/* A number from sysfs, with an optional K or M suffix; 0 if the file is absent. */
static size_t sysfs_number(const char *dir, const char *name, char *word, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t v = 0;
    word[0] = '\0';
    if (fscanf(f, "%zu", &v) != 1) { /* a word (the type) */
        if (fscanf(f, "%*[ \n]") < 0 || !fgets(word, (int)cap, f))
            word[0] = '\0';
        word[strcspn(word, "\n")] = '\0';
    } else {
        int c = fgetc(f);
        v <<= c == 'K' ? 10 : c == 'M' ? 20 : 0;
    }
    fclose(f);
    return v;
}

/* Linux's own view of the caches (on x86 the kernel reads the same CPUID leaves),
 * for the CPU this test is pinned to: CPUs with two kinds of core have two L2 (or
 * L3) sizes. */
Test(cache_sizes, agree_with_linux_sysfs)
{
    cpu_set_t set;
    int cpu = 0;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &set))
        cpu++;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    cr_assert_eq(sched_setaffinity(0, sizeof set, &set), 0, "pinning to CPU %d", cpu);
    size_t l2 = 0, llc = 0, llc_level = 0;
    int found = 0;
    for (int i = 0; i < 16; i++) {
        char dir[128], word[32];
        snprintf(dir, sizeof dir, "/sys/devices/system/cpu/cpu%d/cache/index%d", cpu, i);
        size_t level = sysfs_number(dir, "level", word, sizeof word);
        if (!level)
            continue;
        found = 1;
        sysfs_number(dir, "type", word, sizeof word);
        if (strcmp(word, "Data") != 0 && strcmp(word, "Unified") != 0)
            continue;
        size_t size = sysfs_number(dir, "size", word, sizeof word);
        if (level == 2)
            l2 = size;
        if (level >= llc_level) {
            llc_level = level;
            llc = size;
        }
    }
    if (!found)
        cr_skip_test("no cache information in /sys/devices/system/cpu/cpu%d/cache", cpu);
    cr_log_info("sysfs, CPU %d: L2 %zu bytes, L%zu %zu bytes", cpu, l2, llc_level, llc);
    cr_expect_eq(bnorm_detect_l2_bytes(), l2, "L2: bnorm %zu, sysfs %zu",
                 bnorm_detect_l2_bytes(), l2);
    cr_expect_eq(bnorm_detect_llc_bytes(), llc, "LLC: bnorm %zu, sysfs %zu",
                 bnorm_detect_llc_bytes(), llc);
}
#endif

/* ============================================================================== */
/* BNORM_STREAM_THRESHOLD (read once, at first use, like BNORM_ISA)               */
/* ============================================================================== */

static size_t default_threshold(void)
{
    size_t llc = bnorm_detect_llc_bytes();
    size_t t = llc ? llc / 2 : (size_t)16 << 20;
    return t > BNORM_STREAM_MIN_BYTES ? t : BNORM_STREAM_MIN_BYTES;
}

/* The threshold the library takes with BNORM_STREAM_THRESHOLD=value (NULL: unset),
 * as the public call reports it too, and what it says of the variable. */
static size_t threshold_with(const char *value, bnorm_status status)
{
    int rc = value ? setenv("BNORM_STREAM_THRESHOLD", value, 1)
                   : unsetenv("BNORM_STREAM_THRESHOLD");
    cr_assert_eq(rc, 0);
    size_t t = bnorm_stream_threshold();
    cr_assert_eq(bnorm_stream_threshold_bytes(), t);
    cr_assert_eq(bnorm_env_stream_threshold_status(), status, "BNORM_STREAM_THRESHOLD=%s",
                 value ? value : "(unset)");
    return t;
}

Test(stream_threshold, unset)
{
    cr_assert_eq(threshold_with(NULL, BNORM_OK), default_threshold());
}
Test(stream_threshold, bytes)
{
    cr_assert_eq(threshold_with("100000000", BNORM_OK), (size_t)100000000);
}
Test(stream_threshold, kib)
{
    cr_assert_eq(threshold_with("4096K", BNORM_OK), (size_t)4 << 20);
}
Test(stream_threshold, mib)
{
    cr_assert_eq(threshold_with("64M", BNORM_OK), (size_t)64 << 20);
}
Test(stream_threshold, gib)
{
    cr_assert_eq(threshold_with("2g", BNORM_OK), (size_t)2 << 30);
}
Test(stream_threshold, below_floor)
{
    cr_assert_eq(threshold_with("512K", BNORM_OK), BNORM_STREAM_MIN_BYTES);
}
Test(stream_threshold, empty)
{
    cr_assert_eq(threshold_with("", BNORM_OK), default_threshold());
}
/* Malformed or overflowing text leaves the default, and says so. */
Test(stream_threshold, not_a_number)
{
    cr_assert_eq(threshold_with("lots", BNORM_ERR_BAD_VALUE), default_threshold());
}
Test(stream_threshold, negative)
{
    cr_assert_eq(threshold_with("-64M", BNORM_ERR_BAD_VALUE), default_threshold());
}
Test(stream_threshold, bad_suffix)
{
    cr_assert_eq(threshold_with("64MB", BNORM_ERR_BAD_VALUE), default_threshold());
}
Test(stream_threshold, overflow)
{
    cr_assert_eq(threshold_with("99999999999999999999999", BNORM_ERR_BAD_VALUE),
                 default_threshold());
    /* read once: a value set after the first use changes nothing */
    cr_assert_eq(setenv("BNORM_STREAM_THRESHOLD", "64M", 1), 0);
    cr_assert_eq(bnorm_stream_threshold(), default_threshold(), "read once");
    cr_assert_eq(bnorm_env_stream_threshold_status(), BNORM_ERR_BAD_VALUE, "read once");
}
Test(stream_threshold, suffix_overflow)
{
    cr_assert_eq(threshold_with("18446744073709551615G", BNORM_ERR_BAD_VALUE),
                 default_threshold());
}

/* The apply plans stream an output (BNORM_KF_STREAM) from the threshold on and store
 * a smaller one normally, so that the next layer finds it in the cache. No value shows
 * which (the stores give the same bits): a table whose apply kernels record the flags
 * they get does. */
static unsigned recorded_flags;
#define RECORDING(kernel)                                                              \
    static void recording_##kernel(size_t count, size_t len, const float *x, size_t xs, \
                                   float *y, size_t ys, const float *a, const float *b, \
                                   const float *m, float lo, float hi, unsigned flags)  \
    {                                                                                  \
        recorded_flags |= flags;                                                       \
        bnorm_kernels_for(BNORM_ISA_SCALAR)                                            \
            ->kernel(count, len, x, xs, y, ys, a, b, m, lo, hi, flags);                \
    }
RECORDING(apply_planes)
RECORDING(apply_planes_dense)
RECORDING(apply_rows)

/* The scalar table with the recording apply kernels. */
static bnorm_kernels recording_table(void)
{
    bnorm_kernels rec = *bnorm_kernels_for(BNORM_ISA_SCALAR);
    rec.apply_planes = recording_apply_planes;
    rec.apply_planes_dense = recording_apply_planes_dense;
    rec.apply_rows = recording_apply_rows;
    return rec;
}

/* Above the threshold, outputs whose kernel spans are short (planes of fewer than
 * 8 floats, strided planes or rows of fewer than 256) are not streamed: each span
 * would start or end in part of a line. Dense planes of 8 or more are, and dense
 * rows are, in their periodic pattern (NCHW with spatial 1: rows of C per image). */
Test(stream_threshold, short_spans_are_not_streamed)
{
    const size_t t = threshold_with("1M", BNORM_OK);
    bnorm_kernels rec = recording_table();
    const struct {
        size_t c, spatial, inner; /* inner 0: dense */
        bnorm_layout layout;
        bool streams;
    } cases[] = {
        {64, 4, 0, BNORM_NCHW, false},  {64, 7, 0, BNORM_NCHW, false},
        {64, 8, 0, BNORM_NCHW, true},   {64, 49, 0, BNORM_NCHW, true},
        {64, 49, 52, BNORM_NCHW, false}, {64, 255, 256, BNORM_NCHW, false},
        {64, 256, 264, BNORM_NCHW, true}, {17, 0, 0, BNORM_NHWC, true},
        {17, 0, 20, BNORM_NHWC, false}, {300, 0, 0, BNORM_NHWC, true},
        {200, 0, 204, BNORM_NHWC, false}, {64, 1, 0, BNORM_NCHW, true},
        {1000, 1, 0, BNORM_NCHW, true},  {64, 1, 2, BNORM_NCHW, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t c = cases[i].c, inner = cases[i].inner;
        size_t per = cases[i].layout == BNORM_NCHW ? cases[i].spatial : c;
        size_t step = inner ? inner : per; /* floats per plane or pixel in memory */
        size_t spatial = cases[i].spatial;
        if (cases[i].layout == BNORM_NHWC) /* enough pixels for 2 x the threshold */
            spatial = 2 * t / sizeof(float) / step + 1;
        size_t n = cases[i].layout == BNORM_NCHW ? 2 * t / sizeof(float) / (c * step) + 1
                                                 : 1;
        size_t floats = n * (cases[i].layout == BNORM_NCHW ? c : spatial) * step;
        float *x = calloc(floats, sizeof(float)), *y = malloc(floats * sizeof(float));
        float *ab = calloc(2 * c, sizeof(float));
        cr_assert(x && y && ab);
        bnorm_shape sh = {n, c, spatial, cases[i].layout};
        bnorm_strides st = {step, floats / n};
        recorded_flags = 0;
        cr_assert_eq(bnorm_inference_apply_with(&rec, &sh, x, inner ? &st : NULL, y,
                                                inner ? &st : NULL, ab, ab + c, NULL),
                     BNORM_OK);
        cr_expect_eq((recorded_flags & BNORM_KF_STREAM) != 0, cases[i].streams,
                     "case %zu: %s C=%zu spatial=%zu inner=%zu: streamed %d", i,
                     cases[i].layout == BNORM_NCHW ? "nchw" : "nhwc", c, spatial, inner,
                     (recorded_flags & BNORM_KF_STREAM) != 0);
        free(x);
        free(y);
        free(ab);
    }
}

/* The active table's rows kernel, recording what it is asked to do: the flags, the
 * calls, the columns they cover (len summed), the longest and the shortest row (0:
 * none yet) and the rows that are no whole number of lines (16 floats). */
static struct {
    unsigned flags;
    size_t calls, columns, widest, narrowest, ragged;
} rows_seen;
static void recording_active_rows(size_t count, size_t len, const float *x, size_t xs,
                                  float *y, size_t ys, const float *a, const float *b,
                                  const float *m, float lo, float hi, unsigned flags)
{
    rows_seen.flags |= flags;
    rows_seen.calls++;
    rows_seen.columns += len;
    rows_seen.ragged += len % 16 != 0;
    if (len > rows_seen.widest)
        rows_seen.widest = len;
    if (!rows_seen.narrowest || len < rows_seen.narrowest)
        rows_seen.narrowest = len;
    bnorm_active_kernels()->apply_rows(count, len, x, xs, y, ys, a, b, m, lo, hi, flags);
}

/* n floats of N(0, scale^2). */
static void normal_floats(bnorm_rng *rng, float *p, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(bnorm_rng_normal(rng) * scale);
}

/* Streamed NHWC rows are expanded to a pattern of at least 256 floats where one fits
 * (apply_plan.c): the longest row the rows kernel gets (the last row can be shorter)
 * and its flags show it. The values are the rows kernel's over rows of C (an
 * elementwise operation: the rows it is cut into cannot change a bit). */
Test(stream_threshold, streamed_rows_are_periodic_and_exact)
{
    const size_t t = threshold_with("1M", BNORM_OK);
    const bnorm_kernels *k = bnorm_active_kernels();
    bnorm_kernels rec = *k;
    rec.apply_rows = recording_active_rows;
    /* C: the expected row (the shortest multiple of lcm(C, 8) of at least 256 floats,
     * C itself when that is over 512) */
    const size_t cs[][2] = {{3, 264}, {17, 272}, {64, 256}, {100, 400},
                            {128, 256}, {200, 400}, {300, 300}, {513, 513}};
    const bnorm_activation acts[] = {{BNORM_ACT_NONE, 0.0f, 0.0f},
                                     {BNORM_ACT_CLAMP, -0.5f, 0.75f}};
    uint64_t seed = bnorm_conf_seed(0x5354524dull);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed);
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        size_t c = cs[i][0], pixels = t / sizeof(float) / c + 3, n = pixels * c;
        float *x = malloc(n * sizeof(float)), *y = malloc((n + 1) * sizeof(float));
        float *want = malloc(n * sizeof(float)), *ab = malloc(2 * c * sizeof(float));
        cr_assert(x && y && want && ab);
        normal_floats(&rng, x, n, 3.0);
        normal_floats(&rng, ab, 2 * c, 1.0);
        for (size_t ai = 0; ai < 2; ai++) {
            const bnorm_activation *act = &acts[ai];
            bool clamp = act->kind == BNORM_ACT_CLAMP;
            k->apply_rows(pixels, c, x, c, want, c, ab, ab + c, NULL,
                          clamp ? act->lo : -INFINITY, clamp ? act->hi : INFINITY,
                          clamp ? BNORM_KF_CLAMP : 0);
            /* y where malloc puts it, and 4 bytes on */
            for (size_t off = 0; off < 2; off++) {
                float *yo = y + off;
                memset(yo, 0, n * sizeof(float));
                bnorm_shape sh = {1, c, pixels, BNORM_NHWC};
                memset(&rows_seen, 0, sizeof rows_seen);
                cr_assert_eq(bnorm_inference_apply_with(&rec, &sh, x, NULL, yo, NULL, ab,
                                                        ab + c, act),
                             BNORM_OK);
                cr_expect_eq(rows_seen.widest, cs[i][1], "C=%zu: rows of %zu", c,
                             rows_seen.widest);
                cr_expect(rows_seen.flags & BNORM_KF_STREAM, "C=%zu: not streamed", c);
                cr_expect(memcmp(yo, want, n * sizeof(float)) == 0,
                          "C=%zu act=%zu y+%zu: values differ from rows of C "
                          "(BNORM_TEST_SEED=0x%llx)",
                          c, ai, off, (unsigned long long)seed);
            }
        }
        free(x);
        free(y);
        free(want);
        free(ab);
    }
}

Test(stream_threshold, applies_stream_from_the_threshold_on)
{
    const size_t t = threshold_with("4M", BNORM_OK);
    cr_assert_eq(t, (size_t)4 << 20);
    bnorm_kernels rec = recording_table();
    const size_t bytes[] = {BNORM_STREAM_MIN_BYTES, t / 2, t - 64, t, 2 * t};
    float *x = calloc(2 * t / sizeof(float), sizeof(float)), *y = malloc(2 * t);
    cr_assert(x && y);
    const float scale[2] = {1.0f, 1.0f}, shift[2] = {0.0f, 0.0f};
    for (size_t i = 0; i < sizeof bytes / sizeof bytes[0]; i++) {
        for (int layout = 0; layout < 2; layout++) { /* planes, rows */
            bnorm_shape sh = {1, 2, bytes[i] / sizeof(float) / 2,
                              layout ? BNORM_NHWC : BNORM_NCHW};
            recorded_flags = 0;
            cr_assert_eq(bnorm_inference_apply_with(&rec, &sh, x, NULL, y, NULL, scale,
                                                    shift, NULL),
                         BNORM_OK);
            cr_expect_eq((recorded_flags & BNORM_KF_STREAM) != 0, bytes[i] >= t,
                         "%s output of %zu bytes, threshold %zu: streamed %d",
                         layout ? "nhwc" : "nchw", bytes[i], t,
                         (recorded_flags & BNORM_KF_STREAM) != 0);
        }
    }
    free(x);
    free(y);
}

/* Rows of more than 1024 floats run in column strips of at most 1024 floats, whole
 * lines but the last, each column once, where x and y together (x alone in place) are
 * under the stream threshold (apply_plan.c); rows of at most 1024, and larger tensors,
 * run whole. A recording rows kernel sees the calls; the values must be the whole
 * rows', bit for bit (the apply is elementwise), with images a gap apart too, in
 * place, and with a pool that runs the tasks in reverse order. There the tasks are
 * ranges of elements cut on y's lines (apply_plan.c), which start and end inside
 * rows, so only the widths are checked: some call is narrower than a strip (a
 * range ends inside one), and each range (and the elements before y's first line,
 * which the last task runs) has at most two strips of no whole number of lines,
 * where it starts and where it ends. */

static size_t pool_tasks;
static void reverse_pool(void *pool, bnorm_task_fn task, void *context, size_t range)
{
    (void)pool;
    pool_tasks += range;
    while (range)
        task(context, --range);
}

Test(row_strips, wide_cached_rows_run_in_strips)
{
    const size_t t = threshold_with("1M", BNORM_OK); /* before any other call reads it */
    cr_assert_eq(t, (size_t)1 << 20);
    const bnorm_kernels *k = bnorm_active_kernels();
    bnorm_kernels rec = *k;
    rec.apply_rows = recording_active_rows;
    const size_t half = t / (2 * 2048 * sizeof(float)); /* pixels of 2048: x + y = t */
    enum { DENSE, GAP, IN_PLACE, POOL };
    const struct {
        bnorm_layout layout;
        size_t n, c, spatial, strips; /* strips 0: whole rows */
        int variant;
    } cases[] = {
        {BNORM_NHWC, 1, 1025, 8, 2, DENSE},     {BNORM_NHWC, 1, 2048, 49, 2, DENSE},
        {BNORM_NHWC, 2, 4100, 3, 5, DENSE},     {BNORM_NCHW, 8, 2048, 1, 2, DENSE},
        {BNORM_NHWC, 3, 1100, 5, 2, GAP},       {BNORM_NCHW, 5, 1100, 1, 2, GAP},
        {BNORM_NHWC, 1, 1024, 49, 0, DENSE},    {BNORM_NCHW, 8, 1000, 1, 0, DENSE},
        {BNORM_NHWC, 1, 2048, half - 1, 2, DENSE}, {BNORM_NHWC, 1, 2048, half, 0, DENSE},
        {BNORM_NHWC, 1, 2048, half, 2, IN_PLACE}, {BNORM_NHWC, 1, 2048, 49, 2, POOL},
    };
    uint64_t seed = bnorm_conf_seed(0x53545250ull);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t c = cases[i].c, n = cases[i].n, per = cases[i].spatial * c;
        int variant = cases[i].variant;
        size_t image = per + (variant == GAP ? 16 : 0), floats = n * image;
        float *x = malloc(floats * sizeof(float)), *y = malloc(floats * sizeof(float));
        float *want = malloc(floats * sizeof(float)), *ab = malloc(2 * c * sizeof(float));
        cr_assert(x && y && want && ab);
        normal_floats(&rng, x, floats, 3.0);
        normal_floats(&rng, ab, 2 * c, 1.0);
        memcpy(want, x, floats * sizeof(float)); /* the gaps stay as they are */
        for (size_t g = 0; g < n; g++)
            k->apply_rows(per / c, c, x + g * image, c, want + g * image, c, ab, ab + c,
                          NULL, -INFINITY, INFINITY, 0);
        memcpy(y, x, floats * sizeof(float));
        bnorm_shape sh = {n, c, cases[i].spatial, cases[i].layout};
        bnorm_strides st = {cases[i].layout == BNORM_NHWC ? c : 1, image};
        const bnorm_strides *sp = variant == GAP ? &st : NULL;
        memset(&rows_seen, 0, sizeof rows_seen);
        pool_tasks = 0;
        if (variant == POOL)
            bnorm_set_parallel_for(reverse_pool, NULL);
        cr_assert_eq(bnorm_inference_apply_with(&rec, &sh, variant == IN_PLACE ? y : x, sp,
                                                y, sp, ab, ab + c, NULL),
                     BNORM_OK);
        bnorm_set_parallel_for(NULL, NULL);
        size_t strips = cases[i].strips ? cases[i].strips : 1;
        size_t calls = strips; /* NHWC images a gap apart: a call per image */
        if (variant == GAP && cases[i].layout == BNORM_NHWC)
            calls *= n;
        if (variant != POOL) {
            cr_expect_eq(rows_seen.calls, calls, "case %zu (C=%zu): %zu calls", i, c,
                         rows_seen.calls);
            cr_expect_eq(rows_seen.columns, calls / strips * c, "case %zu: columns %zu", i,
                         rows_seen.columns);
        }
        /* the pool's element ranges (four of 25088 floats here) end inside strips:
         * pieces narrower than one, which ranges of whole rows would not make */
        if (variant == POOL)
            cr_expect(rows_seen.narrowest < 1024,
                      "case %zu: no range ends inside a strip (narrowest call %zu, %zu "
                      "tasks)",
                      i, rows_seen.narrowest, pool_tasks);
        size_t ragged_max = variant == POOL ? 2 * (pool_tasks + 1) : calls / strips;
        cr_expect(cases[i].strips
                      ? rows_seen.widest <= 1024 && rows_seen.ragged <= ragged_max
                      : rows_seen.widest == c,
                  "case %zu (C=%zu): widest call %zu, %zu not whole lines", i, c,
                  rows_seen.widest, rows_seen.ragged);
        cr_expect(memcmp(y, want, floats * sizeof(float)) == 0,
                  "case %zu (C=%zu): values differ from whole rows "
                  "(BNORM_TEST_SEED=0x%llx)",
                  i, c, (unsigned long long)seed);
        free(x);
        free(y);
        free(want);
        free(ab);
    }
}
