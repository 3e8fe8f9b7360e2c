/*
 * Kernel contracts checked directly, on every runnable table:
 *  1. the apply family with BNORM_KF_STREAM (non-temporal stores), a path the
 *     operations reach only for outputs of at least half the last-level cache (and
 *     1 MiB) in long spans, which only test_dispatch's stream_threshold tests
 *     allocate (through the API, with the threshold lowered);
 *  2. the fused moments_apply_planes and dot_apply2_planes against the two kernels
 *     each one fuses;
 *  3. apply_planes_dense against apply_planes on planes that follow each other;
 *  4. the fold against its formula, bit for bit;
 *  5. the rows apply and apply2 give the same bits wherever their output lies (AVX2
 *     starts rows of 256 floats or more with a masked vector up to the output's
 *     32-byte boundary, which must compute what the loop does);
 *  6. rows in one call give the bits of one call per row (AVX2's tiles for wide
 *     rows, its short_row for a short row alone).
 * (That the rows reductions give every table's bits is conformance's rows_sums.)
 *
 * STREAM is a hint about where y goes, never about its value: with it every table
 * must write exactly what it writes without it, bit for bit, and nothing else. Both
 * outputs start as the same sentinel; the whole extents (gaps between strided items
 * included) must then be equal, fences intact, x unchanged. Shapes cover the
 * streaming path's cases: fewer than four items, items in groups of four with a
 * remainder, spans shorter and longer than the point where one span is split in
 * quarters (4096 floats), every flag combination, strides with gaps, in place,
 * misaligned buffers and buffers that end at a guard page or start right after one.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conformance.h"
#include "reference.h"
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
    /* a, b and m start right after a guard page where x does, else end at one */
    size_t at = misalign == BNORM_FENCE_AT_LEAD ? misalign : BNORM_FENCE_AT_GUARD;
    u->a = bnorm_fence_alloc(&u->fa, nab, at);
    u->b = bnorm_fence_alloc(&u->fb, nab, at);
    u->m = bnorm_fence_alloc(&u->fm, nab, at);
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
    size_t misalign = bnorm_fence_pick(rng);
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
 * Rows outputs at 0..7 floats past a line (every head length of an AVX2 row), each
 * against the output at 0: apply_rows with each flag but STREAM, and apply2_rows;
 * counts below and at the rows tiles' 4, in place (x, or dy, in the output) or not;
 * fences intact.
 */
static const size_t pos_lens[] = {256, 257, 263, 1000, 1003};
static const size_t pos_counts[] = {1, 3, 5};

/* flags: apply_rows's, or ~0u for apply2_rows. */
static void position_case(const bnorm_conf_table *t, size_t count, size_t len,
                          unsigned flags, bool in_place, bnorm_rng *rng, uint64_t seed)
{
    bool two = flags == ~0u;
    size_t n = count * len;
    float *in = malloc(2 * n * sizeof(float)), *ref = malloc(n * sizeof(float));
    float *p = malloc(4 * len * sizeof(float));
    cr_assert(in && ref && p);
    for (size_t i = 0; i < 2 * n; i++)
        in[i] = (float)(bnorm_rng_normal(rng) * 3.0);
    for (size_t i = 0; i < 4 * len; i++)
        p[i] = (float)bnorm_rng_normal(rng);
    const float *x = in, *dy = in + n; /* apply2: dy; apply: the in-place input */
    for (size_t off = 0; off < 8; off++) {
        bnorm_fence f;
        float *y = bnorm_fence_alloc(&f, n, off);
        cr_assert(y, "mmap failed");
        if (in_place)
            memcpy(y, two ? dy : x, n * sizeof(float));
        else
            for (size_t i = 0; i < n; i++)
                y[i] = SENTINEL;
        if (two)
            t->k->apply2_rows(count, len, x, len, in_place ? y : dy, len, y, len, p,
                              p + len, p + 2 * len, p + 3 * len);
        else
            t->k->apply_rows(count, len, in_place ? y : x, len, y, len, p, p + len,
                             (flags & BNORM_KF_CENTER) ? p + 2 * len : NULL, -0.5f, 0.75f,
                             flags);
        if (off == 0)
            memcpy(ref, y, n * sizeof(float));
        cr_expect(memcmp(y, ref, n * sizeof(float)) == 0 && bnorm_fence_intact(&f),
                  "%s %s count=%zu len=%zu flags=%u in_place=%d: output %zu floats past a "
                  "line differs from the output on a line (BNORM_TEST_SEED=0x%llx)",
                  t->label, two ? "apply2_rows" : "apply_rows", count, len, two ? 0 : flags,
                  (int)in_place, off, (unsigned long long)seed);
        bnorm_fence_free(&f);
    }
    free(in), free(ref), free(p);
}

Test(kernels, rows_output_position_changes_no_bit)
{
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed);
    static const unsigned flags[] = {0, BNORM_KF_CLAMP, BNORM_KF_CENTER,
                                     BNORM_KF_CLAMP | BNORM_KF_CENTER, ~0u};
    tables run = runnable_tables();
    for (size_t ti = 0; ti < run.n; ti++)
        for (size_t li = 0; li < COUNT(pos_lens); li++)
            for (size_t ci = 0; ci < COUNT(pos_counts); ci++)
                for (size_t fi = 0; fi < COUNT(flags); fi++)
                    for (int in_place = 0; in_place < 2; in_place++)
                        position_case(&run.t[ti], pos_counts[ci], pos_lens[li], flags[fi],
                                      in_place, &rng, seed);
}

/*
 * apply_rows over count rows in one call equals one call per row, bit for bit, every
 * flag but STREAM, padded strides, in place or not, NaN, infinities and -0 among the
 * values, misaligned and fenced buffers, for
 *  - rows about and above 2048 floats (AVX2 shares a, b and m between four rows there:
 *    its tiles), counts below and above the tile's 4;
 *  - every row of 1..255 floats, two or five rows a call: alone in a call, such a row
 *    takes AVX2's short_row (no masked store; the last vector computed before any
 *    store and stored over its neighbours; a row shorter than a vector whose windows
 *    cross into the next page takes the other path: hardware reads no masked-out
 *    lane, so it is scripts/cross-check's qemu row that faults where that check is
 *    missing).
 */
static const size_t wide_lens[] = {2047, 2048, 2049, 2055, 2080, 4103};
static const size_t wide_counts[] = {3, 4, 5, 8, 9};
static const size_t short_counts[] = {2, 5};

/* A value of x: normal, or one in eight NaN, an infinity or -0. */
static float row_value(bnorm_rng *rng)
{
    static const float specials[] = {NAN, INFINITY, -INFINITY, -0.0f};
    if (bnorm_rng_below(rng, 8) == 0)
        return specials[bnorm_rng_below(rng, COUNT(specials))];
    return (float)(bnorm_rng_normal(rng) * 3.0);
}

/* x and y get their own padding and placement (in place: y's); y1 and y2 share
 * theirs, so the two outputs compare float for float. */
static void rows_case(const bnorm_conf_table *t, size_t count, size_t len,
                      unsigned flags, bnorm_rng *rng, uint64_t seed)
{
    bool in_place = bnorm_rng_below(rng, 4) == 0;
    size_t ypad = bnorm_rng_below(rng, 2) ? bnorm_rng_below(rng, 9) : 0;
    size_t xpad = in_place ? ypad : bnorm_rng_below(rng, 2) ? bnorm_rng_below(rng, 9) : 0;
    size_t xs = len + xpad, ys = len + ypad;
    size_t xext = (count - 1) * xs + len, yext = (count - 1) * ys + len;
    size_t ymis = bnorm_fence_pick(rng), xmis = bnorm_fence_pick(rng);
    bufs u; /* y1, y2, a, b and m (its x is not used: x is placed on its own) */
    cr_assert(alloc_bufs(&u, yext, len, ymis), "mmap failed");
    bnorm_fence fx;
    float *x = bnorm_fence_alloc(&fx, xext, xmis);
    cr_assert(x, "mmap failed");
    for (size_t i = 0; i < xext; i++)
        x[i] = row_value(rng);
    for (size_t i = 0; i < yext; i++)
        u.y1[i] = in_place ? row_value(rng) : SENTINEL;
    memcpy(u.y2, u.y1, yext * sizeof(float));
    for (size_t i = 0; i < len; i++) {
        u.a[i] = (float)bnorm_rng_normal(rng);
        u.b[i] = (float)bnorm_rng_normal(rng);
        u.m[i] = (float)bnorm_rng_normal(rng);
    }
    const float *m = (flags & BNORM_KF_CENTER) ? u.m : NULL;
    const float *x1 = in_place ? u.y1 : x, *x2 = in_place ? u.y2 : x;
    size_t xs1 = in_place ? ys : xs;
    t->k->apply_rows(count, len, x1, xs1, u.y1, ys, u.a, u.b, m, -0.5f, 0.75f, flags);
    for (size_t r = 0; r < count; r++)
        t->k->apply_rows(1, len, x2 + r * xs1, xs1, u.y2 + r * ys, ys, u.a, u.b, m, -0.5f,
                         0.75f, flags);
    cr_expect(memcmp(u.y1, u.y2, yext * sizeof(float)) == 0 &&
                  bnorm_fence_intact(&u.fy1) && bnorm_fence_intact(&u.fy2) &&
                  bnorm_fence_intact(&fx),
              "%s count=%zu len=%zu x: pad %zu at %zu, y: pad %zu at %zu, in_place=%d "
              "flags=%u: rows in one call differ from one call per row "
              "(BNORM_TEST_SEED=0x%llx)",
              t->label, count, len, xpad, xmis, ypad, ymis, (int)in_place, flags,
              (unsigned long long)seed);
    bnorm_fence_free(&fx);
    free_bufs(&u);
}

Test(kernels, rows_in_one_call_equal_rows_one_by_one)
{
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed ^ 0x57494445ull);
    tables run = runnable_tables();
    for (size_t ti = 0; ti < run.n; ti++)
        for (unsigned fl = 0; fl < 8; fl++) {
            if (fl & BNORM_KF_STREAM)
                continue;
            for (size_t li = 0; li < COUNT(wide_lens); li++)
                for (size_t ci = 0; ci < COUNT(wide_counts); ci++)
                    rows_case(&run.t[ti], wide_counts[ci], wide_lens[li], fl, &rng, seed);
            for (size_t len = 1; len < 256; len++)
                for (size_t ci = 0; ci < COUNT(short_counts); ci++)
                    rows_case(&run.t[ti], short_counts[ci], len, fl, &rng, seed);
        }
}

/*
 * moments_apply_planes is moments_planes followed by apply_planes (centered, no
 * clamp), bit for bit: the same sums (accumulated onto nonzero starting values) and
 * the same output, for lens across every vector and unroll boundary, padded strides,
 * the apply in place (ya == xa) or not, misaligned buffers and buffers against a guard
 * page at either end.
 */
static bool fused_case(const bnorm_conf_table *t, size_t count, size_t len, bnorm_rng *rng,
                       uint64_t seed)
{
    size_t pad = bnorm_rng_below(rng, 3) == 0 ? bnorm_rng_below(rng, 9) : 0;
    size_t stride = len + pad, extent = (count - 1) * stride + len;
    size_t misalign = bnorm_fence_pick(rng);
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
    size_t misalign = bnorm_fence_pick(rng);
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
 * -0), in place or not, misaligned buffers and buffers against a guard page at either
 * end.
 */
static const size_t dense_lens[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
                                    14, 15, 16, 17, 24, 31, 33, 49, 63, 64, 196, 255};
static const size_t dense_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33};

static bool dense_case(const bnorm_conf_table *t, size_t count, size_t len, unsigned flags,
                       bnorm_rng *rng, uint64_t seed)
{
    size_t extent = count * len;
    size_t misalign = bnorm_fence_pick(rng);
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
 * The fold where an estimate that is not exact rounds the other way. The conformance
 * op "fold" checks every table on random channels; here each table's fold, against
 * the formula, on channels made for it:
 *  - shifts exactly halfway between two floats: var = k^2, gamma = 3k (scale exactly
 *    3), 3 * mean odd in [2^24, 2^25), where floats are 2 apart;
 *  - scales 1 to 3 double ulps above halfway: Newton's method approaches 1 / sqrt(v)
 *    from below, so an estimate lands below halfway and rounds down;
 *  - shifts exactly zero at tiny magnitudes (beta = mean * scale, scale a power of
 *    2): an estimate gives a tiny shift of either sign, whose interval holds -0 and
 *    +0, different bits (the formula's is +0);
 *  - shifts where beta dominates (mean * scale below 2^-15 of it) and the double
 *    subtraction's rounding, not the estimate's error, decides the float: found by
 *    a search with this machine's vrsqrtps, where an estimate without the interval's
 *    term for that rounding gives the next float;
 *  - the same channels and random ones with subnormals under FTZ, DAZ and both, in
 *    MXCSR on x86: there every table must give the scalar table's bits.
 * Each channel is repeated over 12, so that it lands in every position of AVX2's
 * blocks (8 by the formula, 4 by the estimate); the outputs end at guard pages.
 */
enum { FOLD_SPREAD = 12, FOLD_TIES = 24, FOLD_SCALES = 12, FOLD_ZEROS = 12,
       FOLD_DOMINANT = 4,
       FOLD_C = (FOLD_TIES + FOLD_SCALES + FOLD_ZEROS + FOLD_DOMINANT) * FOLD_SPREAD };

typedef struct fold_channels {
    float gamma[FOLD_C], beta[FOLD_C], mean[FOLD_C], var[FOLD_C];
} fold_channels;

static void boundary_channels(fold_channels *f)
{
    /* The odd k < 4096 whose estimate of 1 / k is furthest off on this machine's CPU
     * (2^-44 to 2^-46; most are within 2^-48), so that an interval set too narrow
     * shows. The estimated shift lies on one side of the tie; mean alternates between
     * ties that round to either side. */
    static const uint32_t ks[FOLD_TIES] = {
        3117, 1591, 3151, 3591, 2965, 373,  2387, 2159, 3013, 2937, 2069, 2961,
        2933, 2349, 2205, 3205, 3629, 767,  3847, 3967, 2177, 4079, 3025, 1891};
    /* gamma, var: gamma / sqrt(var) 1 to 3 double ulps above halfway */
    static const float scales[FOLD_SCALES][2] = {
        {0x1.420eaep+0f, 0x1.17f94cp-3f}, {0x1.26acf0p+0f, 0x1.16d83cp+8f},
        {0x1.46b0b2p+0f, 0x1.288bf8p+1f}, {0x1.1947aap-1f, 0x1.55f34ep-10f},
        {0x1.6ad356p+0f, 0x1.86f194p+0f}, {0x1.6c772ep+0f, 0x1.379aa2p-1f},
        {0x1.7b2d40p+0f, 0x1.db3f54p-1f}, {0x1.a988c6p-1f, 0x1.f10dd6p+7f},
        {0x1.cb8398p-1f, 0x1.77fb66p+4f}, {0x1.51a1e8p-1f, 0x1.515f3ap-7f},
        {0x1.3b5eb8p-1f, 0x1.237dd6p-5f}, {0x1.9594ccp-1f, 0x1.4f4b10p-7f}};
    /* gamma, mean, var, with beta = 1 */
    static const float dominant[FOLD_DOMINANT][3] = {
        {0x1.27c23ap-1f, 0x1.29c40cp-20f, 0x1.44ac7ep-1f},
        {0x1.73d6aep+0f, 0x1.343282p-19f, 0x1.35405ap+7f},
        {0x1.036b6ep+0f, 0x1.8f310cp-16f, 0x1.433d24p+8f},
        {0x1.c22ee0p-1f, 0x1.4637aap-22f, 0x1.306502p-7f}};
    size_t n = 0;
    for (uint32_t i = 0; i < FOLD_TIES; i++, n++) {
        uint32_t k = ks[i];
        f->var[n] = (float)(k * k);
        f->gamma[n] = (float)(3 * k);
        f->mean[n] = (float)((1u << 23) + 1 + 2 * (k % 1024 + i % 2));
        f->beta[n] = i % 2 ? 0.0f : 4.0f;
        cr_assert(fmod(3.0 * f->mean[n], 2.0) == 1.0 && 3.0 * f->mean[n] < 0x1p25);
    }
    for (size_t i = 0; i < FOLD_SCALES; i++, n++) {
        f->gamma[n] = scales[i][0];
        f->var[n] = scales[i][1];
        double s = (double)f->gamma[n] / sqrt((double)f->var[n]);
        float lo = (float)s, below = nextafterf(lo, 0.0f);
        double half = ((double)lo + (double)below) / 2;
        cr_assert(s > half && s - half <= ldexp(s, -51), "scale %zu: not just above halfway", i);
        f->mean[n] = f->beta[n] = 0.0f;
    }
    for (int i = 0; i < FOLD_ZEROS; i++, n++) {
        f->var[n] = ldexpf(1.0f, 2 * (i % 5) - 4);  /* sqrt: 2^(i % 5 - 2) */
        f->gamma[n] = ldexpf(i % 2 ? -1.0f : 1.0f, i % 3);
        f->mean[n] = ldexpf(1.5f, -100 - 4 * i);
        f->beta[n] = (float)((double)f->mean[n] * f->gamma[n] / sqrt((double)f->var[n]));
        cr_assert(f->beta[n] != 0.0f);
    }
    for (size_t i = 0; i < FOLD_DOMINANT; i++, n++) {
        f->gamma[n] = dominant[i][0];
        f->mean[n] = dominant[i][1];
        f->var[n] = dominant[i][2];
        f->beta[n] = 1.0f;
    }
    for (size_t i = n; i-- > 0;)
        for (size_t j = FOLD_SPREAD; j-- > 0;) {
            f->gamma[i * FOLD_SPREAD + j] = f->gamma[i];
            f->beta[i * FOLD_SPREAD + j] = f->beta[i];
            f->mean[i * FOLD_SPREAD + j] = f->mean[i];
            f->var[i * FOLD_SPREAD + j] = f->var[i];
        }
}

/* Table t's fold of f (eps 0) into fenced outputs, compared channel by channel with
 * want (up to the first that differs); nothing may be written past them. */
static void fold_agrees(const bnorm_conf_table *t, const fold_channels *f,
                        const float *want_scale, const float *want_shift, const char *what)
{
    bnorm_fence fs, fh;
    float *scale = bnorm_fence_alloc(&fs, FOLD_C, BNORM_FENCE_AT_GUARD);
    float *shift = bnorm_fence_alloc(&fh, FOLD_C, BNORM_FENCE_AT_GUARD);
    cr_assert(scale && shift, "mmap failed");
    t->k->fold(FOLD_C, f->gamma, f->beta, f->mean, f->var, 0.0f, scale, shift);
    bool ok = bnorm_fence_intact(&fs) && bnorm_fence_intact(&fh);
    cr_expect(ok, "%s %s: the fold wrote past its outputs", t->label, what);
    for (size_t i = 0; i < FOLD_C && ok; i++) {
        float ws = want_scale[i], wh = want_shift[i];
        ok = same_bits(scale[i], ws) && same_bits(shift[i], wh);
        cr_expect(ok,
                  "%s %s channel %zu (gamma %a beta %a mean %a var %a): scale %a shift %a, "
                  "want %a %a",
                  t->label, what, i, (double)f->gamma[i], (double)f->beta[i],
                  (double)f->mean[i], (double)f->var[i], (double)scale[i], (double)shift[i],
                  (double)ws, (double)wh);
    }
    bnorm_fence_free(&fs);
    bnorm_fence_free(&fh);
}

Test(kernels, fold_rounding_boundaries_match_formula)
{
    static fold_channels f;
    static float want_scale[FOLD_C], want_shift[FOLD_C];
    boundary_channels(&f);
    bnorm_ref_fold(FOLD_C, f.gamma, f.beta, f.mean, f.var, 0.0f, want_scale, want_shift);
    tables run = runnable_tables();
    for (size_t ti = 0; ti < run.n; ti++)
        fold_agrees(&run.t[ti], &f, want_scale, want_shift, "rounding boundaries");
}

/* The frozen backward's fold (no mean, no beta): scale by the formula and shift +0
 * for every channel, also where scale is infinite or NaN (a mean of 0 would make
 * 0 * inf a NaN shift, and every dx NaN). Specials in gamma and var at every position
 * of AVX2's blocks of 12. */
Test(kernels, fold_without_mean_matches_formula)
{
    static const float gammas[] = {1.0f, -2.5f, 0.0f, INFINITY, -INFINITY, NAN, 3e38f};
    static const float vars[] = {1.0f, 0.0f, 1e-45f, 0.25f, INFINITY, NAN, 4e-38f};
    enum { G = COUNT(gammas), V = COUNT(vars), C = G * V * 12 };
    static float gamma[C], var[C], want_scale[C], want_shift[C];
    for (size_t i = 0; i < C; i++) {
        gamma[i] = gammas[i / 12 % G];
        var[i] = vars[(i / 12 / G + i) % V];
    }
    bnorm_ref_fold(C, gamma, NULL, NULL, var, 0.0f, want_scale, want_shift);
    tables run = runnable_tables();
    for (size_t ti = 0; ti < run.n; ti++) {
        bnorm_fence fs, fh;
        float *scale = bnorm_fence_alloc(&fs, C, BNORM_FENCE_AT_GUARD);
        float *shift = bnorm_fence_alloc(&fh, C, BNORM_FENCE_AT_GUARD);
        cr_assert(scale && shift, "mmap failed");
        run.t[ti].k->fold(C, gamma, NULL, NULL, var, 0.0f, scale, shift);
        cr_expect(bnorm_fence_intact(&fs) && bnorm_fence_intact(&fh),
                  "%s: the fold wrote past its outputs", run.t[ti].label);
        for (size_t i = 0; i < C; i++)
            cr_assert(same_bits(scale[i], want_scale[i]) && bits(shift[i]) == 0,
                      "%s channel %zu (gamma %a var %a): scale %a shift %a, want %a +0",
                      run.t[ti].label, i, (double)gamma[i], (double)var[i],
                      (double)scale[i], (double)shift[i], (double)want_scale[i]);
        bnorm_fence_free(&fs);
        bnorm_fence_free(&fh);
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>

/* Random channels with subnormal or tiny gamma, beta and mean (var kept). */
static void tiny_channels(fold_channels *f, bnorm_rng *rng)
{
    for (size_t i = 0; i < FOLD_C; i++) {
        f->gamma[i] = (float)bnorm_rng_normal(rng) *
                      ldexpf(1.0f, -120 - (int)bnorm_rng_below(rng, 30));
        f->mean[i] = (float)bnorm_rng_normal(rng) *
                     ldexpf(1.0f, -100 - (int)bnorm_rng_below(rng, 50));
        f->beta[i] = bnorm_rng_below(rng, 2)
                         ? (float)((double)f->mean[i] * f->gamma[i] / sqrt((double)f->var[i]))
                         : (float)bnorm_rng_normal(rng) * 0x1p-128f;
    }
}

Test(kernels, fold_under_ftz_and_daz_matches_scalar)
{
    static const struct {
        unsigned bits;
        const char *name;
    } modes[] = {{0x8000, "FTZ"}, {0x0040, "DAZ"}, {0x8040, "FTZ+DAZ"}};
    uint64_t seed = bnorm_conf_seed(DEFAULT_SEED);
    bnorm_rng rng;
    bnorm_rng_init(&rng, seed ^ 0x66747a);
    static fold_channels f;
    static float want_scale[FOLD_C], want_shift[FOLD_C];
    tables run = runnable_tables();
    const bnorm_conf_table *scalar = NULL;
    for (size_t ti = 0; ti < run.n; ti++)
        if (run.t[ti].k->isa == BNORM_ISA_SCALAR)
            scalar = &run.t[ti];
    cr_assert_not_null(scalar);
    unsigned csr = _mm_getcsr();
    for (int tiny = 0; tiny < 2; tiny++) {
        boundary_channels(&f);
        if (tiny)
            tiny_channels(&f, &rng);
        for (size_t m = 0; m < COUNT(modes); m++) {
            _mm_setcsr(csr | modes[m].bits);
            scalar->k->fold(FOLD_C, f.gamma, f.beta, f.mean, f.var, 0.0f, want_scale,
                            want_shift);
            for (size_t ti = 0; ti < run.n; ti++)
                if (&run.t[ti] != scalar)
                    fold_agrees(&run.t[ti], &f, want_scale, want_shift, modes[m].name);
            _mm_setcsr(csr);
        }
    }
}
#endif
