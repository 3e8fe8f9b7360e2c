/*
 * Kernel contracts checked directly, on every runnable table:
 *  1. the apply family with BNORM_KF_STREAM (non-temporal stores), a path the
 *     operations reach only for outputs of at least half the last-level cache (and 1 MiB), which
 *     no other test allocates;
 *  2. the fused moments_apply_planes and dot_apply2_planes against the two kernels
 *     each one fuses;
 *  3. apply_planes_dense against apply_planes on planes that follow each other;
 *  4. the fold against its formula, bit for bit.
 *
 * STREAM is a hint about where y goes, never about its value: with it every table
 * must write exactly what it writes without it, bit for bit, and nothing else. Both
 * outputs start as the same sentinel; the whole extents (gaps between strided items
 * included) must then be equal, fences intact, x unchanged. Shapes cover the
 * streaming path's cases: fewer than four items, items in groups of four with a
 * remainder, spans shorter and longer than the point where one span is split in
 * quarters (4096 floats), every flag combination, strides with gaps, in place,
 * misaligned and guard-page-ended buffers.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conformance.h"
#include "test_util.h"

#define DEFAULT_SEED 0x6b65726e31ull
#define SENTINEL (-777.0f)

static const size_t lens[] = {1,  2,  3,  7,   8,   9,    15,   16,   17,   31,   32,
                              33, 40, 63, 64,  65,  100,  255,  4095, 4096, 4097, 4103,
                              5000, 8191, 12345};
static const size_t counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 13};

typedef struct bufs {
    bnorm_fence fx, fy1, fy2, fa, fb, fm;
    float *x, *y1, *y2, *a, *b, *m;
} bufs;

static bool alloc_bufs(bufs *u, size_t extent, size_t nab, size_t misalign)
{
    memset(u, 0, sizeof *u);
    u->x = bnorm_fence_alloc(&u->fx, extent, misalign);
    u->y1 = bnorm_fence_alloc(&u->fy1, extent, misalign);
    u->y2 = bnorm_fence_alloc(&u->fy2, extent, misalign);
    u->a = bnorm_fence_alloc(&u->fa, nab, BNORM_FENCE_AT_GUARD);
    u->b = bnorm_fence_alloc(&u->fb, nab, BNORM_FENCE_AT_GUARD);
    u->m = bnorm_fence_alloc(&u->fm, nab, BNORM_FENCE_AT_GUARD);
    return u->x && u->y1 && u->y2 && u->a && u->b && u->m;
}

static void free_bufs(bufs *u)
{
    bnorm_fence *f[] = {&u->fx, &u->fy1, &u->fy2, &u->fa, &u->fb, &u->fm};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i]->map)
            bnorm_fence_free(f[i]);
}

/* One case: STREAM against plain with table k; false (and a message) on a mismatch. */
static bool stream_case(const bnorm_conf_table *t, bool rows, size_t count, size_t len,
                        unsigned flags, bnorm_rng *rng, uint64_t seed)
{
    bnorm_f32_apply_fn fn = rows ? t->k->apply_rows : t->k->apply_planes;
    size_t pad = bnorm_rng_below(rng, 3) == 0 ? bnorm_rng_below(rng, 9) : 0;
    size_t stride = len + pad, extent = (count - 1) * stride + len;
    size_t misalign = bnorm_rng_below(rng, 3) == 0 ? BNORM_FENCE_AT_GUARD
                                                   : bnorm_rng_below(rng, 16);
    bool in_place = bnorm_rng_below(rng, 4) == 0;
    size_t nab = rows ? len : count;
    bufs u;
    cr_assert(alloc_bufs(&u, extent, nab, misalign), "mmap failed");
    for (size_t i = 0; i < extent; i++) {
        u.x[i] = (float)(bnorm_rng_normal(rng) * 3.0);
        u.y1[i] = u.y2[i] = SENTINEL;
    }
    for (size_t i = 0; i < nab; i++) {
        u.a[i] = (float)bnorm_rng_normal(rng);
        u.b[i] = (float)bnorm_rng_normal(rng);
        u.m[i] = (float)bnorm_rng_normal(rng);
    }
    const float *m = (flags & BNORM_KF_CENTER) ? u.m : NULL;
    unsigned plain = flags & ~(unsigned)BNORM_KF_STREAM;
    const float *x1 = u.x, *x2 = u.x;
    if (in_place) {
        for (size_t p = 0; p < count; p++) {
            memcpy(u.y1 + p * stride, u.x + p * stride, len * sizeof(float));
            memcpy(u.y2 + p * stride, u.x + p * stride, len * sizeof(float));
        }
        x1 = u.y1;
        x2 = u.y2;
    }
    fn(count, len, x1, stride, u.y1, stride, u.a, u.b, m, -0.5f, 0.75f, flags);
    fn(count, len, x2, stride, u.y2, stride, u.a, u.b, m, -0.5f, 0.75f, plain);
    bool ok = memcmp(u.y1, u.y2, extent * sizeof(float)) == 0 &&
              bnorm_fence_intact(&u.fy1) && bnorm_fence_intact(&u.fy2) &&
              bnorm_fence_intact(&u.fx);
    cr_expect(ok,
              "%s %s count=%zu len=%zu pad=%zu misalign=%zu in_place=%d flags=%u: "
              "STREAM output differs from plain (BNORM_TEST_SEED=0x%llx)",
              t->label, rows ? "rows" : "planes", count, len, pad, misalign, (int)in_place,
              flags, (unsigned long long)seed);
    free_bufs(&u);
    return ok;
}

Test(kernels, apply_stream_equals_plain, .timeout = 300)
{
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed);
    tables run = runnable_tables();
    for (size_t ti = 0; ti < run.n; ti++) {
        for (int rows = 0; rows < 2; rows++)
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
                for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++)
                    for (unsigned fl = 0; fl < 8; fl++) {
                        if (!(fl & BNORM_KF_STREAM))
                            continue;
                        stream_case(&run.t[ti], rows, counts[ci], lens[li], fl, &rng,
                                    seed);
                    }
    }
}

/*
 * moments_apply_planes is moments_planes followed by apply_planes (centered, no
 * clamp), bit for bit: the same sums (accumulated onto nonzero starting values) and
 * the same output, for lens across every vector and unroll boundary, padded strides,
 * the apply in place (ya == xa) or not, misaligned and guard-ended buffers.
 */
static bool fused_case(const bnorm_conf_table *t, size_t count, size_t len, bnorm_rng *rng,
                       uint64_t seed)
{
    size_t pad = bnorm_rng_below(rng, 3) == 0 ? bnorm_rng_below(rng, 9) : 0;
    size_t stride = len + pad, extent = (count - 1) * stride + len;
    size_t misalign = bnorm_rng_below(rng, 3) == 0 ? BNORM_FENCE_AT_GUARD
                                                   : bnorm_rng_below(rng, 16);
    bool in_place = bnorm_rng_below(rng, 4) == 0;
    bnorm_fence fxm, fxa, fy1, fy2;
    float *xm = bnorm_fence_alloc(&fxm, extent, misalign);
    float *xa = bnorm_fence_alloc(&fxa, extent, misalign);
    float *y1 = bnorm_fence_alloc(&fy1, extent, misalign);
    float *y2 = bnorm_fence_alloc(&fy2, extent, misalign);
    cr_assert(xm && xa && y1 && y2, "mmap failed");
    float k[16], a[16], b[16], m[16];
    double s1[2][16], s2[2][16];
    for (size_t i = 0; i < extent; i++) {
        xm[i] = (float)(5.0 + bnorm_rng_normal(rng));
        xa[i] = (float)(bnorm_rng_normal(rng) * 3.0);
        y1[i] = y2[i] = SENTINEL;
    }
    for (size_t p = 0; p < count; p++) {
        k[p] = xm[p * stride];
        a[p] = (float)bnorm_rng_normal(rng);
        b[p] = (float)bnorm_rng_normal(rng);
        m[p] = (float)bnorm_rng_normal(rng);
        s1[0][p] = s1[1][p] = bnorm_rng_normal(rng);
        s2[0][p] = s2[1][p] = bnorm_rng_uniform(rng);
    }
    const float *in1 = xa, *in2 = xa;
    if (in_place) {
        for (size_t p = 0; p < count; p++) {
            memcpy(y1 + p * stride, xa + p * stride, len * sizeof(float));
            memcpy(y2 + p * stride, xa + p * stride, len * sizeof(float));
        }
        in1 = y1;
        in2 = y2;
    }
    t->k->moments_apply_planes(count, len, xm, stride, k, s1[0], s2[0], in1, stride, y1,
                               stride, a, b, m);
    t->k->moments_planes(count, len, xm, stride, k, s1[1], s2[1]);
    t->k->apply_planes(count, len, in2, stride, y2, stride, a, b, m, -INFINITY, INFINITY,
                       BNORM_KF_CENTER);
    bool ok = memcmp(y1, y2, extent * sizeof(float)) == 0 &&
              memcmp(s1[0], s1[1], count * sizeof(double)) == 0 &&
              memcmp(s2[0], s2[1], count * sizeof(double)) == 0 &&
              bnorm_fence_intact(&fy1) && bnorm_fence_intact(&fy2) &&
              bnorm_fence_intact(&fxm) && bnorm_fence_intact(&fxa);
    cr_expect(ok,
              "%s count=%zu len=%zu pad=%zu misalign=%zu in_place=%d: fused moments+apply "
              "differs from the two kernels (BNORM_TEST_SEED=0x%llx)",
              t->label, count, len, pad, misalign, (int)in_place, (unsigned long long)seed);
    bnorm_fence_free(&fxm);
    bnorm_fence_free(&fxa);
    bnorm_fence_free(&fy1);
    bnorm_fence_free(&fy2);
    return ok;
}

/* The shapes both fused-kernel tests run, on every runnable table: every len up to
 * 80 with counts 1, 2, 3, 5 and 16 (at most 16: the cases' per-plane arrays), then
 * lens. */
typedef bool (*fused_case_fn)(const bnorm_conf_table *t, size_t count, size_t len,
                              bnorm_rng *rng, uint64_t seed);

static void run_fused_cases(fused_case_fn one, uint64_t salt)
{
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed ^ salt);
    tables run = runnable_tables();
    static const size_t fcounts[] = {1, 2, 3, 5, 16};
    for (size_t ti = 0; ti < run.n; ti++) {
        for (size_t len = 1; len <= 80; len++)
            for (size_t ci = 0; ci < sizeof fcounts / sizeof fcounts[0]; ci++)
                one(&run.t[ti], fcounts[ci], len, &rng, seed);
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            one(&run.t[ti], 3, lens[li], &rng, seed);
    }
}

Test(kernels, moments_apply_equals_moments_then_apply, .timeout = 300)
{
    run_fused_cases(fused_case, 0x66757365ull);
}

/*
 * dot_apply2_planes is dot_planes followed by apply2_planes, bit for bit, on the same
 * kinds of shapes and buffers; in place here means dxa == dya.
 */
static bool dot_fused_case(const bnorm_conf_table *t, size_t count, size_t len,
                           bnorm_rng *rng, uint64_t seed)
{
    size_t pad = bnorm_rng_below(rng, 3) == 0 ? bnorm_rng_below(rng, 9) : 0;
    size_t stride = len + pad, extent = (count - 1) * stride + len;
    size_t misalign = bnorm_rng_below(rng, 3) == 0 ? BNORM_FENCE_AT_GUARD
                                                   : bnorm_rng_below(rng, 16);
    bool in_place = bnorm_rng_below(rng, 4) == 0;
    bnorm_fence f[6];
    float *p[6]; /* x, dy of the dot block; xa, dya of the apply block; dx1, dx2 */
    for (int i = 0; i < 6; i++) {
        p[i] = bnorm_fence_alloc(&f[i], extent, misalign);
        cr_assert(p[i], "mmap failed");
    }
    for (size_t i = 0; i < extent; i++) {
        for (int j = 0; j < 4; j++)
            p[j][i] = (float)(bnorm_rng_normal(rng) * 2.0);
        p[4][i] = p[5][i] = SENTINEL;
    }
    float m[16], a[16], b[16], ma[16], k[16];
    double sdy[2][16], sdyx[2][16];
    for (size_t q = 0; q < count; q++) {
        m[q] = (float)bnorm_rng_normal(rng);
        a[q] = (float)bnorm_rng_normal(rng);
        b[q] = (float)bnorm_rng_normal(rng);
        ma[q] = (float)bnorm_rng_normal(rng);
        k[q] = (float)bnorm_rng_normal(rng);
        sdy[0][q] = sdy[1][q] = bnorm_rng_normal(rng);
        sdyx[0][q] = sdyx[1][q] = bnorm_rng_normal(rng);
    }
    const float *dya1 = p[3], *dya2 = p[3];
    if (in_place) {
        for (size_t q = 0; q < count; q++) {
            memcpy(p[4] + q * stride, p[3] + q * stride, len * sizeof(float));
            memcpy(p[5] + q * stride, p[3] + q * stride, len * sizeof(float));
        }
        dya1 = p[4];
        dya2 = p[5];
    }
    t->k->dot_apply2_planes(count, len, p[0], stride, p[1], stride, m, sdy[0], sdyx[0],
                            p[2], stride, dya1, stride, p[4], stride, a, b, ma, k);
    t->k->dot_planes(count, len, p[0], stride, p[1], stride, m, sdy[1], sdyx[1]);
    t->k->apply2_planes(count, len, p[2], stride, dya2, stride, p[5], stride, a, b, ma, k);
    bool ok = memcmp(p[4], p[5], extent * sizeof(float)) == 0 &&
              memcmp(sdy[0], sdy[1], count * sizeof(double)) == 0 &&
              memcmp(sdyx[0], sdyx[1], count * sizeof(double)) == 0;
    for (int i = 0; i < 6; i++)
        ok = ok && bnorm_fence_intact(&f[i]);
    cr_expect(ok,
              "%s count=%zu len=%zu pad=%zu misalign=%zu in_place=%d: fused dot+apply2 "
              "differs from the two kernels (BNORM_TEST_SEED=0x%llx)",
              t->label, count, len, pad, misalign, (int)in_place, (unsigned long long)seed);
    for (int i = 0; i < 6; i++)
        bnorm_fence_free(&f[i]);
    return ok;
}

Test(kernels, dot_apply2_equals_dot_then_apply2, .timeout = 300)
{
    run_fused_cases(dot_fused_case, 0x646f7432ull);
}

/*
 * apply_planes_dense is apply_planes, bit for bit, on planes that follow each other:
 * plane lengths below, at and above every vector width (vectors that straddle plane
 * boundaries at every lane), counts around the unroll widths, every flag combination
 * (STREAM included), clamps with lo == 0 and lo == hi, special inputs (NaN, +-Inf,
 * -0), in place or not, misaligned and guard-ended buffers.
 */
static const size_t dense_lens[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
                                    14, 15, 16, 17, 24, 31, 33, 49, 63, 64, 196};
static const size_t dense_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33};

static bool dense_case(const bnorm_conf_table *t, size_t count, size_t len, unsigned flags,
                       bnorm_rng *rng, uint64_t seed)
{
    size_t extent = count * len;
    size_t misalign = bnorm_rng_below(rng, 3) == 0 ? BNORM_FENCE_AT_GUARD
                                                   : bnorm_rng_below(rng, 16);
    bool in_place = bnorm_rng_below(rng, 4) == 0;
    bufs u;
    cr_assert(alloc_bufs(&u, extent, count, misalign), "mmap failed");
    static const float specials[] = {NAN, -NAN, INFINITY, -INFINITY, -0.0f, 0.0f};
    for (size_t i = 0; i < extent; i++) {
        u.x[i] = bnorm_rng_below(rng, 16) == 0
                     ? specials[bnorm_rng_below(rng, sizeof specials / sizeof specials[0])]
                     : (float)(bnorm_rng_normal(rng) * 3.0);
        u.y1[i] = u.y2[i] = SENTINEL;
    }
    for (size_t p = 0; p < count; p++) {
        u.a[p] = bnorm_rng_below(rng, 8) == 0 ? 0.0f : (float)bnorm_rng_normal(rng);
        u.b[p] = bnorm_rng_below(rng, 8) == 0 ? -0.0f : (float)bnorm_rng_normal(rng);
        u.m[p] = (float)bnorm_rng_normal(rng);
    }
    float lo = bnorm_rng_below(rng, 2) ? 0.0f : -0.5f;
    float hi = bnorm_rng_below(rng, 4) == 0 ? lo : 0.75f;
    const float *m = (flags & BNORM_KF_CENTER) ? u.m : NULL;
    const float *x1 = u.x, *x2 = u.x;
    if (in_place) {
        memcpy(u.y1, u.x, extent * sizeof(float));
        memcpy(u.y2, u.x, extent * sizeof(float));
        x1 = u.y1;
        x2 = u.y2;
    }
    t->k->apply_planes_dense(count, len, x1, len, u.y1, len, u.a, u.b, m, lo, hi, flags);
    t->k->apply_planes(count, len, x2, len, u.y2, len, u.a, u.b, m, lo, hi, flags);
    bool ok = memcmp(u.y1, u.y2, extent * sizeof(float)) == 0 &&
              bnorm_fence_intact(&u.fy1) && bnorm_fence_intact(&u.fy2) &&
              bnorm_fence_intact(&u.fx) && bnorm_fence_intact(&u.fa) &&
              bnorm_fence_intact(&u.fb) && bnorm_fence_intact(&u.fm);
    cr_expect(ok,
              "%s count=%zu len=%zu misalign=%zu in_place=%d flags=%u lo=%g hi=%g: "
              "apply_planes_dense differs from apply_planes (BNORM_TEST_SEED=0x%llx)",
              t->label, count, len, misalign, (int)in_place, flags, lo, hi,
              (unsigned long long)seed);
    free_bufs(&u);
    return ok;
}

Test(kernels, apply_dense_equals_apply_planes, .timeout = 300)
{
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed ^ 0x64656e7365ull);
    tables run = runnable_tables();
    for (size_t ti = 0; ti < run.n; ti++) {
        for (size_t li = 0; li < sizeof dense_lens / sizeof dense_lens[0]; li++)
            for (size_t ci = 0; ci < sizeof dense_counts / sizeof dense_counts[0]; ci++)
                for (unsigned fl = 0; fl < 8; fl++)
                    dense_case(&run.t[ti], dense_counts[ci], dense_lens[li], fl, &rng,
                               seed);
    }
}

/*
 * The fold at float rounding boundaries, where an estimate that is not exact rounds
 * the other way. The conformance op "fold" checks every table on random channels;
 * here the channels' outputs lie at or within 2^-45 of halfway between two floats:
 * shifts exactly halfway (var = k^2, gamma = 3k: scale exactly 3; 3 * mean odd in
 * [2^24, 2^25), where floats are 2 apart), and scales searched for over consecutive
 * gammas. Each is repeated over 12 channels, so that it lands in every position of
 * AVX2's blocks (8 by the formula, 4 by the estimate); the outputs end at guard pages.
 */
enum { FOLD_SPREAD = 12, FOLD_TIES = 24, FOLD_SCALES = 12,
       FOLD_C = (FOLD_TIES + FOLD_SCALES) * FOLD_SPREAD };

/* A gamma from g upward whose gamma / sqrt(var) is within 2^-45 of halfway. */
static float gamma_near_halfway(float g, float var)
{
    double q = sqrt((double)var);
    for (;; g = nextafterf(g, INFINITY)) {
        double s = (double)g / q;
        float f = (float)s;
        double up = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
        double down = ((double)f + (double)nextafterf(f, 0.0f)) / 2;
        if (fmin(fabs(s - up), fabs(s - down)) < ldexp(s, -45))
            return g;
    }
}

Test(kernels, fold_rounding_boundaries_match_formula, .timeout = 60)
{
    static float gamma[FOLD_C], beta[FOLD_C], mean[FOLD_C], var[FOLD_C];
    /* The odd k < 4096 whose estimate of 1 / k is furthest off on x86 (2^-44 to 2^-46;
     * most are within 2^-48), so that a bound set too tight shows. Newton's method
     * approaches 1 / k from below, so the estimated shift lies on one side of the
     * tie; mean alternates between ties that round to either side. */
    static const uint32_t ks[FOLD_TIES] = {
        3117, 1591, 3151, 3591, 2965, 373,  2387, 2159, 3013, 2937, 2069, 2961,
        2933, 2349, 2205, 3205, 3629, 767,  3847, 3967, 2177, 4079, 3025, 1891};
    for (uint32_t i = 0; i < FOLD_TIES; i++) {
        uint32_t k = ks[i];
        var[i] = (float)(k * k);
        gamma[i] = (float)(3 * k);
        mean[i] = (float)((1u << 23) + 1 + 2 * (k % 1024 + i % 2));
        beta[i] = i % 2 ? 0.0f : 4.0f;
        cr_assert(fmod(3.0 * mean[i], 2.0) == 1.0 && 3.0 * mean[i] < 0x1p25);
    }
    static const float vars[] = {2.0f, 3.0f, 0.3f, 7.0f, 1e-3f, 5e4f};
    for (size_t i = FOLD_TIES; i < FOLD_TIES + FOLD_SCALES; i++) {
        var[i] = vars[i % COUNT(vars)];
        gamma[i] = gamma_near_halfway(1.0f + (float)i * 0.37f, var[i]);
        mean[i] = beta[i] = 0.0f;
    }
    for (size_t i = FOLD_TIES + FOLD_SCALES; i-- > 0;)
        for (size_t j = FOLD_SPREAD; j-- > 0;) {
            gamma[i * FOLD_SPREAD + j] = gamma[i];
            beta[i * FOLD_SPREAD + j] = beta[i];
            mean[i * FOLD_SPREAD + j] = mean[i];
            var[i * FOLD_SPREAD + j] = var[i];
        }
    tables run = runnable_tables();
    for (size_t ti = 0; ti < run.n; ti++) {
        bnorm_fence fs, fh;
        float *scale = bnorm_fence_alloc(&fs, FOLD_C, BNORM_FENCE_AT_GUARD);
        float *shift = bnorm_fence_alloc(&fh, FOLD_C, BNORM_FENCE_AT_GUARD);
        cr_assert(scale && shift, "mmap failed");
        run.t[ti].k->fold(FOLD_C, gamma, beta, mean, var, 0.0f, scale, shift);
        for (size_t i = 0; i < FOLD_C; i++) {
            double s = (double)gamma[i] / sqrt((double)var[i]);
            float want_scale = (float)s;
            float want_shift = (float)((double)beta[i] - (double)mean[i] * s);
            cr_expect(bits(scale[i]) == bits(want_scale) &&
                          bits(shift[i]) == bits(want_shift),
                      "%s channel %zu (gamma %a beta %a mean %a var %a): scale %a shift %a, "
                      "want %a %a",
                      run.t[ti].label, i, (double)gamma[i], (double)beta[i],
                      (double)mean[i], (double)var[i], (double)scale[i], (double)shift[i],
                      (double)want_scale, (double)want_shift);
        }
        cr_expect(bnorm_fence_intact(&fs) && bnorm_fence_intact(&fh), "%s: wrote past c",
                  run.t[ti].label);
        bnorm_fence_free(&fs);
        bnorm_fence_free(&fh);
    }
}
