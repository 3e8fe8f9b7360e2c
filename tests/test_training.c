/*
 * Training: bnorm_training_forward, bnorm_training_backward and bnorm_frozen_backward,
 * each run with every kernel table this CPU can execute, through the internal *_with
 * entry points.
 *
 *  1. gradient: backward's dx, dgamma, dbeta against central differences of a forward
 *     computed in double here (loss L = sum(w * y), so dy = w);
 *  2. identities of the gradient with gamma = 1: per channel sum(dx) = 0 and
 *     sum(dx * xhat) = 0;
 *  3. forward numerics: 1e4 + N(0, 1) over 2^22 values per channel; constant channels;
 *  4. running statistics over several steps, PyTorch and ONNX conventions;
 *  5. frozen backward, out of place and in place;
 *  6. in place (y == x, dx == dy) against out of place, bit for bit;
 *  7. rejected arguments return their documented status and write nothing;
 *  8. backward subsets (any of dx, dgamma, dbeta) against all three together.
 *
 * Randomness is seeded: BNORM_TEST_SEED overrides the default and every failure message
 * prints the seed. Buffers are fenced (a guard page right after the last element or
 * right before the first, canaries in any gap); the gaps of strided outputs must keep
 * their sentinel; inputs must be unchanged. Nothing here measures time.
 *
 * Tolerances are derived, not tuned. U = 2^-24 is the unit roundoff of float (one
 * rounding to nearest errs by at most U relative); 2^-53 that of double. The library's
 * documented algorithm (bnorm.h, training section; kernels.h):
 *   forward:  d_i = fl32(x_i - k), k the channel's first value; s1 = sum d_i,
 *             s2 = sum d_i^2 in double; d = s1/m, mean = k + d, var = s2/m - d^2,
 *             invstd = 1/sqrt(var + eps) in double; save_* rounded to float;
 *             y = (x - mean_f) * a + b with a = fl32(gamma * invstd);
 *   backward: dbeta = sum dy, sdyx = sum dy * fl32(x - mean_f) in double,
 *             dgamma = sdyx * invstd_f, and dx = A dy + B (x - mean_f) + K with
 *             A, B, K per channel rounded to float, evaluated in float.
 * The error bounds per channel (chan_ref below) follow from that, to first order in U.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnorm.h"
#include "conformance.h"
#include "test_util.h"
#include "ops.h"

/* BNORM_TEST_SEED overrides; printed with every failure. */
#define DEFAULT_SEED 0x747261696e31ull

/* Unit roundoff of float, and of double in units of U (2^-53 / 2^-24). */
#define U 0x1p-24
#define DOUBLE_IN_U 0x1p-29

/* ============================================================================== */
/* Helpers                                                                        */
/* ============================================================================== */

/* ---- seeds --------------------------------------------------------------------- */

static uint64_t seed_base(void)
{
    return bnorm_conf_seed(DEFAULT_SEED);
}

/* Each case of each test draws from its own stream, so cases do not depend on one
 * another and every table sees the same data. */
static void rng_for_case(bnorm_rng *r, uint64_t base, unsigned test, size_t index)
{
    bnorm_rng_init(r, base ^ ((uint64_t)test << 48) ^ ((uint64_t)index * 0x9e3779b97f4a7c15ull));
    (void)bnorm_rng_next(r);
}

/* Uniform in [lo, hi). */
static double uniform(bnorm_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * bnorm_rng_uniform(r);
}

/* ---- failure reports -------------------------------------------------------------- */

/* Counts the values checked and failed, the worst error / tolerance seen and the
 * first failure's description (formatted only when it happens). */
typedef struct report {
    size_t checked, failed;
    double worst;
    char first[512];
} report;

static void report_init(report *r)
{
    memset(r, 0, sizeof *r);
}

__attribute__((format(printf, 4, 5))) static void report_check(report *r, double err,
                                                                double tol, const char *fmt,
                                                                ...)
{
    r->checked++;
    double ratio = err == 0.0 ? 0.0 : tol > 0.0 ? err / tol : INFINITY;
    if (!(err <= tol)) {
        if (isnan(ratio))
            ratio = INFINITY;
        if (r->failed++ == 0) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->first, sizeof r->first, fmt, ap);
            va_end(ap);
        }
    }
    if (ratio > r->worst)
        r->worst = ratio;
}

/* An exact check: ok or not. */
__attribute__((format(printf, 3, 4))) static void report_exact(report *r, bool ok,
                                                               const char *fmt, ...)
{
    r->checked++;
    if (!ok && r->failed++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->first, sizeof r->first, fmt, ap);
        va_end(ap);
    }
}

#define EXPECT_REPORT(rep, ctx)                                                           \
    cr_expect((rep).failed == 0, "%s: %zu of %zu checks failed; first: %s", (ctx),        \
              (rep).failed, (rep).checked, (rep).first)

/* ---- tensors ----------------------------------------------------------------------- */

/* A fenced tensor; dense (NULL strides passed) unless padded. */
typedef struct tensor {
    bnorm_shape shape;
    bool dense;
    bnorm_strides st; /* resolved strides, also when dense */
    size_t extent;    /* first to last element, in floats */
    bnorm_fence fence;
    float *p;
} tensor;

static void tensor_alloc(tensor *t, bnorm_shape s, size_t pad_inner, size_t pad_batch,
                         size_t misalign)
{
    bool nchw = s.layout == BNORM_NCHW;
    size_t run = nchw ? s.spatial : s.c, outer = nchw ? s.c : s.spatial;
    t->shape = s;
    t->dense = pad_inner == 0 && pad_batch == 0;
    t->st.inner = run + pad_inner;
    size_t image = (outer - 1) * t->st.inner + run;
    t->st.batch = image + pad_batch;
    t->extent = (s.n - 1) * t->st.batch + image;
    t->p = bnorm_fence_alloc(&t->fence, t->extent, misalign);
    cr_assert_not_null(t->p, "mmap of %zu floats failed", t->extent);
    memset(t->p, SENTINEL_BYTE, t->extent * sizeof(float));
}

static void tensor_free(tensor *t)
{
    bnorm_fence_free(&t->fence);
}

static const bnorm_strides *tstrides(const tensor *t)
{
    return t->dense ? NULL : &t->st;
}

static size_t toff(const tensor *t, size_t n, size_t c, size_t i)
{
    return t->shape.layout == BNORM_NCHW ? n * t->st.batch + c * t->st.inner + i
                                         : n * t->st.batch + i * t->st.inner + c;
}

static float *tat(const tensor *t, size_t n, size_t c, size_t i)
{
    return t->p + toff(t, n, c, i);
}

/* Whether offset o (< extent) holds an element of the tensor rather than a gap. */
static bool is_element(const tensor *t, size_t o)
{
    size_t r = o % t->st.batch;
    size_t outer = r / t->st.inner, in = r % t->st.inner;
    const bnorm_shape *s = &t->shape;
    return s->layout == BNORM_NCHW ? outer < s->c && in < s->spatial
                                   : outer < s->spatial && in < s->c;
}

/* Canaries intact and every gap still holding the sentinel (for outputs). */
static bool tensor_clean_outside(const tensor *t)
{
    if (!bnorm_fence_intact(&t->fence))
        return false;
    if (t->dense)
        return true;
    float s = sentinel();
    for (size_t o = 0; o < t->extent; o++)
        if (!is_element(t, o) && bits(t->p[o]) != bits(s))
            return false;
    return true;
}

/* A fenced array of per-channel values. */
typedef struct vec {
    bnorm_fence f;
    float *p;
    size_t n;
} vec;

static float *vec_alloc(vec *v, size_t n, size_t misalign)
{
    v->p = bnorm_fence_alloc(&v->f, n, misalign);
    cr_assert_not_null(v->p, "mmap of %zu floats failed", n);
    v->n = n;
    memset(v->p, SENTINEL_BYTE, n * sizeof(float));
    return v->p;
}

static void vec_free(vec *v)
{
    bnorm_fence_free(&v->f);
}

/* A private copy of an input, to check it is unchanged. */
static float *snapshot(const float *p, size_t n)
{
    float *s = malloc(n * sizeof(float));
    cr_assert_not_null(s);
    memcpy(s, p, n * sizeof(float));
    return s;
}

static bool unchanged(const float *p, const float *snap, size_t n)
{
    return memcmp(p, snap, n * sizeof(float)) == 0;
}

/* Every gap of t (not an element) holds what snap holds there. */
static bool gaps_match(const tensor *t, const float *snap)
{
    if (t->dense)
        return true;
    for (size_t o = 0; o < t->extent; o++)
        if (!is_element(t, o) && bits(t->p[o]) != bits(snap[o]))
            return false;
    return true;
}

static void describe(char *buf, size_t size, const char *test, const char *table,
                     const bnorm_shape *s, const tensor *x, uint64_t seed)
{
    snprintf(buf, size, "%s [%s] %s %zux%zux%zu%s (BNORM_TEST_SEED=0x%llx)", test, table,
             layout_name(s->layout), s->n, s->c, s->spatial,
             x && !x->dense ? " strided" : "", (unsigned long long)seed);
}

/* ============================================================================== */
/* Per-channel reference statistics and error bounds                              */
/* ============================================================================== */

/*
 * Exact (double, two-pass) statistics of one channel of the float input, and bounds,
 * in units of U, on the library's deviation from them. With k the channel's first
 * value, mabs = mean|x - k|, msq = mean (x - k)^2, and acc = (m + 2) 2^-29 (a double
 * sum of m terms errs by at most m 2^-53 of the sum of magnitudes, i.e. m 2^-29 U):
 *
 *  - mean: fl32(x - k) errs by U|x - k| per term, so s1/m by U mabs; the sums add
 *    acc; rounding to float adds U|mean|. |save_mean - mu| <= U e_mean / invstd with
 *      e_mean = invstd (|mu| + mabs (1 + acc)).
 *  - var: d var / d d_i = 2 (x_i - mu) / m, so the per-term errors move var by at most
 *    (2/m) sum |x_i - mu| U |x_i - k| <= 2 U sqrt(var msq) (Cauchy-Schwarz); the sums
 *    (s2 and d^2) add 3 acc U msq. invstd = (var + eps)^-1/2 halves the relative error,
 *    and the float rounding adds U:
 *      e_stat = 1 + (sqrt(var msq) + 1.5 acc msq) / (var + eps).
 *  - var recovered as 1/save_invstd^2 - eps: twice invstd's rounding on var + eps,
 *    plus the library's var error, plus the double evaluation:
 *      e_var = (2 (var + eps) + 2 sqrt(var msq) + 3 acc msq) / var + 2^-2.
 */
typedef struct chan_ref {
    size_t m;
    double k, mu, var, is; /* is = 1 / sqrt(var + eps) */
    double e_stat, e_mean, e_var;
} chan_ref;

static chan_ref chan_reference(const tensor *x, size_t c, float eps)
{
    const bnorm_shape *s = &x->shape;
    chan_ref r = {.m = s->n * s->spatial};
    double m = (double)r.m;
    r.k = *tat(x, 0, c, 0);
    double sum = 0.0;
    for (size_t n = 0; n < s->n; n++)
        for (size_t i = 0; i < s->spatial; i++)
            sum += *tat(x, n, c, i);
    r.mu = sum / m;
    double v = 0.0, mabs = 0.0, msq = 0.0;
    for (size_t n = 0; n < s->n; n++)
        for (size_t i = 0; i < s->spatial; i++) {
            double xv = *tat(x, n, c, i), d = xv - r.mu, dk = xv - r.k;
            v += d * d;
            mabs += fabs(dk);
            msq += dk * dk;
        }
    r.var = v / m;
    mabs /= m;
    msq /= m;
    double ve = r.var + (double)eps;
    r.is = 1.0 / sqrt(ve);
    double acc = (m + 2.0) * DOUBLE_IN_U;
    r.e_stat = 1.0 + (ve > 0.0 ? (sqrt(r.var * msq) + 1.5 * acc * msq) / ve : 0.0);
    r.e_mean = r.is * (fabs(r.mu) + mabs * (1.0 + acc));
    r.e_var = r.var > 0.0
                  ? (2.0 * ve + 2.0 * sqrt(r.var * msq) + 3.0 * acc * msq) / r.var + 0.25
                  : INFINITY;
    return r;
}

/*
 * Tolerance of the forward's y = fl((fl(x - mean_f) * a_f) + b) (or with FMA), with
 * A = |gamma| invstd and D = |x - mu|: the mean's error moves y by A U e_mean/invstd =
 * |gamma| U e_mean; invstd's by U e_stat A D; rounding a, the subtraction, the product
 * and the sum add U A D each and the sum U |b|:
 *   |y - y_exact| <= U (|gamma| e_mean + (4 + e_stat) A D + |b|).
 */
static double y_tolerance(const chan_ref *r, double g, double b, double xv)
{
    return U * (fabs(g) * r->e_mean + (4.0 + r->e_stat) * fabs(g) * r->is * fabs(xv - r->mu) +
                fabs(b));
}

/*
 * Tolerance of backward's dx_i. Write T1 = |A dy|, T2 = |B (x - mean)|, T3 = |K| for
 * the three terms of dx = A dy + B (x - mean) + K (A = g is, B = -g is^2 dgamma / m,
 * K = -g is dbeta / m). With G0 = sum|dy| >= |dbeta|, G1 = sum|dy xhat| >= |dgamma|
 * (bounds that do not shrink under cancellation) all three are at most
 *   scale_i = |g| is (|dy_i| + (1 + |xhat_i|) (G0 + G1) / m).
 * Errors, in units of U times scale_i:
 *   rounding A, B, K to float                                  1 (one per term)
 *   float evaluation: x - m, B*(x-m), +K, A*dy, final +         4 (3 T1 + 5 T2 + 3 T3
 *                                                                  minus the above; FMA less)
 *   fl32(x - mean_f) in sdyx: dgamma off by U G1,
 *     moving T2 by U |g| is |xhat| G1 / m                       1
 *   save_invstd off by e_stat U: A, K linear in it, B cubic     3 e_stat
 *   save_mean off by delta = U e_mean / is: to first order dx moves by
 *     g is^2 delta (dgamma + xhat dbeta) / m                    e_mean
 * so |dx_i - exact| <= (6 + 3 e_stat + e_mean) U scale_i. For |mean| ~ sigma this is
 * about 18 U ~ 1e-6 of the gradient's scale, well inside the 1e-4 one might guess; a
 * channel with |mean| >> sigma gets e_mean ~ |mean|/sigma, as it must: a float mean
 * then carries an error of half an ulp of |mean|, a visible fraction of sigma.
 */
static double dx_factor(const chan_ref *r)
{
    return 6.0 + 3.0 * r->e_stat + r->e_mean;
}

/* ============================================================================== */
/* 1. Gradient against central differences of a double forward                    */
/* ============================================================================== */

/* L_c = sum_j w_j (g (x_j - mean) / sqrt(var + eps) + b) over one channel, in double,
 * two-pass: the forward's definition in bnorm.h. */
static double chan_loss(const double *xc, const double *wc, size_t m, double g, double b,
                        double eps)
{
    double mu = 0.0;
    for (size_t j = 0; j < m; j++)
        mu += xc[j];
    mu /= (double)m;
    double v = 0.0;
    for (size_t j = 0; j < m; j++)
        v += (xc[j] - mu) * (xc[j] - mu);
    v /= (double)m;
    double is = 1.0 / sqrt(v + eps), L = 0.0;
    for (size_t j = 0; j < m; j++)
        L += wc[j] * (g * (xc[j] - mu) * is + b);
    return L;
}

/* A power of two near 1e-4 * scale: x +- h and x +- 2h are then exact in double, so
 * the step taken is the step divided by. */
static double pow2_step(double scale)
{
    return ldexp(1.0, (int)lround(log2(1e-4 * scale)));
}

/* dL/dx_j: central differences with Richardson extrapolation, (4 D(h) - D(2h)) / 3,
 * whose truncation error is O(h^4 L^(5)); L_c is analytic in x_j with a radius of the
 * order of sigma, so with h ~ 1e-4 sigma that is ~1e-16 relative: negligible. */
static double fd_dx(double *xc, const double *wc, size_t m, size_t j, double g, double b,
                    double eps, double h)
{
    double x0 = xc[j], L[4];
    const double off[4] = {h, -h, 2.0 * h, -2.0 * h};
    for (int q = 0; q < 4; q++) {
        xc[j] = x0 + off[q];
        L[q] = chan_loss(xc, wc, m, g, b, eps);
    }
    xc[j] = x0;
    double d1 = (L[0] - L[1]) / (2.0 * h), d2 = (L[2] - L[3]) / (4.0 * h);
    return (4.0 * d1 - d2) / 3.0;
}

typedef struct grad_case {
    bnorm_shape shape;
    size_t pad_inner, pad_batch; /* x and dy; dx gets other strides */
    double mean_sigmas;          /* |channel mean| up to this many standard deviations */
    float eps;
    bool gamma_null;
} grad_case;

static const grad_case grad_cases[] = {
    {{2, 3, 5, BNORM_NCHW}, 0, 0, 1.0, 1e-5f, false},
    {{2, 3, 5, BNORM_NHWC}, 0, 0, 1.0, 1e-5f, false},
    {{1, 2, 7, BNORM_NCHW}, 0, 0, 1.0, 1e-3f, false},
    {{3, 9, 17, BNORM_NHWC}, 0, 0, 1.0, 0.1f, false},
    {{3, 9, 17, BNORM_NCHW}, 0, 0, 1.0, 0.1f, true},
    {{6, 3, 1, BNORM_NCHW}, 0, 0, 1.0, 1e-5f, false}, /* spatial 1: rows */
    {{4, 3, 1, BNORM_NCHW}, 2, 3, 1.0, 1e-5f, false},
    {{2, 3, 5, BNORM_NCHW}, 3, 7, 1.0, 1e-5f, false},
    {{2, 4, 6, BNORM_NHWC}, 2, 5, 1.0, 1e-5f, true},
    {{2, 3, 5, BNORM_NHWC}, 0, 0, 100.0, 1e-5f, false}, /* |mean| ~ 100 sigma */
    {{2, 3, 5, BNORM_NCHW}, 0, 0, 100.0, 1e-5f, false},
};

/* Random data for channel c: mean within +-mean_sigmas sigma, sigma in [0.5, 2). */
static void fill_channel(bnorm_rng *rng, tensor *x, size_t c, double mean_sigmas)
{
    double sigma = exp2(uniform(rng, -1.0, 1.0));
    double mu = sigma * mean_sigmas * uniform(rng, -1.0, 1.0);
    for (size_t n = 0; n < x->shape.n; n++)
        for (size_t i = 0; i < x->shape.spatial; i++)
            *tat(x, n, c, i) = (float)(mu + sigma * bnorm_rng_normal(rng));
}

static void fill_normal(bnorm_rng *rng, tensor *t)
{
    for (size_t n = 0; n < t->shape.n; n++)
        for (size_t c = 0; c < t->shape.c; c++)
            for (size_t i = 0; i < t->shape.spatial; i++)
                *tat(t, n, c, i) = (float)bnorm_rng_normal(rng);
}

/* Logical order j = n * spatial + i of one channel, in double. */
static void gather(const tensor *t, size_t c, double *out)
{
    for (size_t n = 0; n < t->shape.n; n++)
        for (size_t i = 0; i < t->shape.spatial; i++)
            out[n * t->shape.spatial + i] = *tat(t, n, c, i);
}

Test(training, gradient_finite_differences, .timeout = 300)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    for (size_t ci = 0; ci < sizeof grad_cases / sizeof grad_cases[0]; ci++) {
        const grad_case *gc = &grad_cases[ci];
        bnorm_shape s = gc->shape;
        size_t C = s.c, m = s.n * s.spatial;
        bnorm_rng rng;
        rng_for_case(&rng, base, 1, ci);

        tensor x, dy;
        tensor_alloc(&x, s, gc->pad_inner, gc->pad_batch, bnorm_fence_pick(&rng));
        tensor_alloc(&dy, s, gc->pad_inner, gc->pad_batch, bnorm_fence_pick(&rng));
        float *gamma = malloc(C * sizeof(float)), *beta = malloc(C * sizeof(float));
        cr_assert(gamma && beta);
        for (size_t c = 0; c < C; c++) {
            fill_channel(&rng, &x, c, gc->mean_sigmas);
            double sign = bnorm_rng_uniform(&rng) < 0.5 ? -1.0 : 1.0;
            gamma[c] = (float)(sign * uniform(&rng, 0.5, 1.5));
            beta[c] = (float)bnorm_rng_normal(&rng);
        }
        fill_normal(&rng, &dy);

        /* The references: for each channel, finite differences and tolerances. */
        chan_ref *ref = malloc(C * sizeof *ref);
        double *xc = malloc(m * sizeof(double)), *wc = malloc(m * sizeof(double));
        double *fdx = malloc(C * m * sizeof(double)), *tolx = malloc(C * m * sizeof(double));
        double *yref = malloc(C * m * sizeof(double)), *toly = malloc(C * m * sizeof(double));
        double *fdg = malloc(C * sizeof(double)), *tolg = malloc(C * sizeof(double));
        double *fdb = malloc(C * sizeof(double)), *tolb = malloc(C * sizeof(double));
        cr_assert(ref && xc && wc && fdx && tolx && yref && toly && fdg && tolg && fdb && tolb);
        double eps = gc->eps;
        for (size_t c = 0; c < C; c++) {
            ref[c] = chan_reference(&x, c, gc->eps);
            const chan_ref *r = &ref[c];
            gather(&x, c, xc);
            gather(&dy, c, wc);
            double g = gc->gamma_null ? 1.0 : gamma[c], b = beta[c];
            double G0 = 0.0, G1 = 0.0, Lmag = 0.0, xabs = 0.0;
            for (size_t j = 0; j < m; j++)
                xabs += fabs(xc[j]) / (double)m;
            for (size_t j = 0; j < m; j++) {
                double xh = (xc[j] - r->mu) * r->is;
                G0 += fabs(wc[j]);
                G1 += fabs(wc[j] * xh);
                Lmag += fabs(wc[j]) * (fabs(g) * r->is * (fabs(xc[j]) + fabs(r->mu) + xabs) +
                                       fabs(b));
            }
            /* Rounding error of one evaluation of L_c in double: every term carries
             * the errors of the two sums over m values and of a few operations. A
             * Richardson difference with step h then errs by at most 1.5 E / h, a
             * central difference (gamma, beta: L_c is linear in them, so it has no
             * truncation error) by E / h. */
            double E = (2.0 * (double)m + 16.0) * 0x1p-53 * Lmag;
            double h = pow2_step(sqrt(r->var + eps));
            double K = dx_factor(r);
            for (size_t j = 0; j < m; j++) {
                double xh = (xc[j] - r->mu) * r->is;
                double scale = fabs(g) * r->is * (fabs(wc[j]) + (1.0 + fabs(xh)) * (G0 + G1) / (double)m);
                fdx[c * m + j] = fd_dx(xc, wc, m, j, g, b, eps, h);
                tolx[c * m + j] = K * U * scale + 1.5 * E / h;
                yref[c * m + j] = g * (xc[j] - r->mu) * r->is + b;
                toly[c * m + j] = y_tolerance(r, g, b, xc[j]);
            }
            double hg = pow2_step(fmax(fabs(g), 1.0)), hb = pow2_step(fmax(fabs(b), 1.0));
            fdg[c] = (chan_loss(xc, wc, m, g + hg, b, eps) - chan_loss(xc, wc, m, g - hg, b, eps)) /
                     (2.0 * hg);
            fdb[c] = (chan_loss(xc, wc, m, g, b + hb, eps) - chan_loss(xc, wc, m, g, b - hb, eps)) /
                     (2.0 * hb);
            /* dgamma = fl32(sdyx * is_f): fl32(x - mean_f) per term (U G1), the mean
             * (delta is |dbeta| <= U e_mean G0), invstd (U e_stat G1), the rounding
             * (U G1). dbeta = fl32(sum dy): the rounding and the double sum. */
            tolg[c] = U * ((2.0 + r->e_stat) * G1 + r->e_mean * G0) + E / hg;
            tolb[c] = U * G0 * (1.0 + ((double)m + 2.0) * DOUBLE_IN_U) + E / hb;
        }

        float *sx = snapshot(x.p, x.extent), *sdy = snapshot(dy.p, dy.extent);
        float *sg = snapshot(gamma, C), *sb = snapshot(beta, C);
        for (size_t ti = 0; ti < tb.n; ti++) {
            const bnorm_kernels *kt = tb.t[ti].k;
            char ctx[256];
            describe(ctx, sizeof ctx, "gradient", tb.t[ti].label, &s, &x, base);
            tensor y, dx;
            vec smean, sinv, dgamma, dbeta;
            tensor_alloc(&y, s, gc->pad_inner, gc->pad_batch, bnorm_fence_pick(&rng));
            tensor_alloc(&dx, s, gc->pad_inner ? gc->pad_inner + 1 : 0, gc->pad_batch * 2,
                         bnorm_fence_pick(&rng));
            vec_alloc(&smean, C, bnorm_fence_pick(&rng));
            vec_alloc(&sinv, C, bnorm_fence_pick(&rng));
            vec_alloc(&dgamma, C, bnorm_fence_pick(&rng));
            vec_alloc(&dbeta, C, bnorm_fence_pick(&rng));
            const float *gp = gc->gamma_null ? NULL : gamma;

            bnorm_status st = bnorm_training_forward_with(kt, &s, x.p, tstrides(&x), y.p,
                                                          tstrides(&y), gp, beta, gc->eps,
                                                          smean.p, sinv.p, NULL);
            cr_assert_eq(st, BNORM_OK, "%s: forward returned %s", ctx, bnorm_status_name(st));
            st = bnorm_training_backward_with(kt, &s, x.p, tstrides(&x), dy.p, tstrides(&dy),
                                              gp, smean.p, sinv.p, dx.p, tstrides(&dx),
                                              dgamma.p, dbeta.p);
            cr_assert_eq(st, BNORM_OK, "%s: backward returned %s", ctx, bnorm_status_name(st));

            cr_expect(tensor_clean_outside(&y) && tensor_clean_outside(&dx) &&
                          bnorm_fence_intact(&smean.f) && bnorm_fence_intact(&sinv.f) &&
                          bnorm_fence_intact(&dgamma.f) && bnorm_fence_intact(&dbeta.f),
                      "%s: a write outside an output", ctx);
            cr_expect(unchanged(x.p, sx, x.extent) && unchanged(dy.p, sdy, dy.extent) &&
                          unchanged(gamma, sg, C) && unchanged(beta, sb, C),
                      "%s: an input changed", ctx);

            report rep, repx;
            report_init(&rep);
            report_init(&repx);
            for (size_t c = 0; c < C; c++) {
                const chan_ref *r = &ref[c];
                report_check(&rep, fabs(smean.p[c] - r->mu), U * r->e_mean / r->is,
                             "save_mean[%zu] = %.9g, exact %.17g", c, smean.p[c], r->mu);
                report_check(&rep, fabs(sinv.p[c] - r->is), U * r->e_stat * r->is,
                             "save_invstd[%zu] = %.9g, exact %.17g", c, sinv.p[c], r->is);
                report_check(&repx, fabs(dgamma.p[c] - fdg[c]), tolg[c],
                             "dgamma[%zu] = %.9g, finite difference %.17g, tol %.3g", c,
                             dgamma.p[c], fdg[c], tolg[c]);
                report_check(&repx, fabs(dbeta.p[c] - fdb[c]), tolb[c],
                             "dbeta[%zu] = %.9g, finite difference %.17g, tol %.3g", c,
                             dbeta.p[c], fdb[c], tolb[c]);
                for (size_t n = 0; n < s.n; n++)
                    for (size_t i = 0; i < s.spatial; i++) {
                        size_t j = c * m + n * s.spatial + i;
                        float got = *tat(&dx, n, c, i), yv = *tat(&y, n, c, i);
                        report_check(&repx, fabs(got - fdx[j]), tolx[j],
                                     "dx(n=%zu, c=%zu, i=%zu) = %.9g, finite difference "
                                     "%.17g, tol %.3g",
                                     n, c, i, got, fdx[j], tolx[j]);
                        report_check(&rep, fabs(yv - yref[j]), toly[j],
                                     "y(n=%zu, c=%zu, i=%zu) = %.9g, exact %.17g, tol %.3g", n,
                                     c, i, yv, yref[j], toly[j]);
                    }
            }
            EXPECT_REPORT(rep, ctx);
            EXPECT_REPORT(repx, ctx);
            cr_log_info("%s: gradient worst %.3f, forward worst %.3f of tolerance", ctx,
                        repx.worst, rep.worst);
            tensor_free(&y);
            tensor_free(&dx);
            vec_free(&smean);
            vec_free(&sinv);
            vec_free(&dgamma);
            vec_free(&dbeta);
        }
        free(sx), free(sdy), free(sg), free(sb);
        free(ref), free(xc), free(wc), free(fdx), free(tolx), free(yref), free(toly);
        free(fdg), free(tolg), free(fdb), free(tolb), free(gamma), free(beta);
        tensor_free(&x);
        tensor_free(&dy);
    }
}

/* ============================================================================== */
/* 2. Identities with gamma = 1                                                   */
/* ============================================================================== */

/*
 * With gamma = 1 and the exact statistics, dx = is (dy - mean(dy) - xhat mean(dy xhat)),
 * so sum(dx) = -is mean(dy xhat) sum(xhat) = 0 and
 * sum(dx xhat) = is sum(dy xhat) (1 - sum(xhat^2) / m) = is sum(dy xhat) eps is^2,
 * which is 0 only for eps = 0: these cases use eps = 0.
 * Bound: every dx_i is within tol_i = (6 + 3 e_stat + e_mean) U scale_i of the exact
 * value (the gradient test's derivation, which covers the float save_mean and
 * save_invstd backward starts from), so |sum dx| <= sum tol_i and
 * |sum dx xhat| <= sum tol_i |xhat_i|, plus the test's own double sums (m 2^-53 of the
 * sum of magnitudes). The messages give both sides relative to sum|dx| and
 * sum|dx xhat|: the bound is about 20 U times scale_i / |dx_i| ~ 5, i.e. ~5e-6.
 */
typedef struct ident_case {
    bnorm_shape shape;
    size_t pad_inner, pad_batch;
    double mean_sigmas;
} ident_case;

static const ident_case ident_cases[] = {
    {{2, 3, 5, BNORM_NCHW}, 0, 0, 1.0},    {{4, 7, 49, BNORM_NHWC}, 0, 0, 1.0},
    {{1, 17, 3136, BNORM_NCHW}, 0, 0, 3.0}, {{8, 9, 1, BNORM_NCHW}, 0, 0, 1.0},
    {{3, 64, 50, BNORM_NHWC}, 1, 3, 5.0},  {{2, 5, 1000, BNORM_NCHW}, 0, 0, 100.0},
    {{2, 300, 9, BNORM_NHWC}, 0, 0, 1.0},  {{2, 8, 33, BNORM_NCHW}, 5, 2, 1.0},
};

Test(training, gradient_identities, .timeout = 300)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    for (size_t ci = 0; ci < sizeof ident_cases / sizeof ident_cases[0]; ci++) {
        const ident_case *ic = &ident_cases[ci];
        bnorm_shape s = ic->shape;
        size_t C = s.c, m = s.n * s.spatial;
        bnorm_rng rng;
        rng_for_case(&rng, base, 2, ci);
        tensor x, dy;
        tensor_alloc(&x, s, ic->pad_inner, ic->pad_batch, bnorm_fence_pick(&rng));
        tensor_alloc(&dy, s, ic->pad_inner, ic->pad_batch, bnorm_fence_pick(&rng));
        for (size_t c = 0; c < C; c++)
            fill_channel(&rng, &x, c, ic->mean_sigmas);
        fill_normal(&rng, &dy);
        chan_ref *ref = malloc(C * sizeof *ref);
        double *G = malloc(2 * C * sizeof(double));
        cr_assert(ref && G);
        for (size_t c = 0; c < C; c++) {
            ref[c] = chan_reference(&x, c, 0.0f);
            G[2 * c] = G[2 * c + 1] = 0.0;
            for (size_t n = 0; n < s.n; n++)
                for (size_t i = 0; i < s.spatial; i++) {
                    double w = *tat(&dy, n, c, i), xh = (*tat(&x, n, c, i) - ref[c].mu) * ref[c].is;
                    G[2 * c] += fabs(w);
                    G[2 * c + 1] += fabs(w * xh);
                }
        }
        for (size_t ti = 0; ti < tb.n; ti++) {
            const bnorm_kernels *kt = tb.t[ti].k;
            char ctx[256];
            describe(ctx, sizeof ctx, "identities", tb.t[ti].label, &s, &x, base);
            tensor dx;
            vec smean, sinv;
            tensor_alloc(&dx, s, ic->pad_inner, ic->pad_batch, bnorm_fence_pick(&rng));
            vec_alloc(&smean, C, bnorm_fence_pick(&rng));
            vec_alloc(&sinv, C, bnorm_fence_pick(&rng));
            /* y goes to dx's buffer first: it is overwritten by backward. */
            bnorm_status st = bnorm_training_forward_with(kt, &s, x.p, tstrides(&x), dx.p,
                                                          tstrides(&dx), NULL, NULL, 0.0f,
                                                          smean.p, sinv.p, NULL);
            cr_assert_eq(st, BNORM_OK, "%s: forward returned %s", ctx, bnorm_status_name(st));
            st = bnorm_training_backward_with(kt, &s, x.p, tstrides(&x), dy.p, tstrides(&dy),
                                              NULL, smean.p, sinv.p, dx.p, tstrides(&dx), NULL,
                                              NULL);
            cr_assert_eq(st, BNORM_OK, "%s: backward returned %s", ctx, bnorm_status_name(st));
            cr_expect(tensor_clean_outside(&dx), "%s: a write outside dx", ctx);
            report rep;
            report_init(&rep);
            double worst0 = 0.0, worst1 = 0.0;
            for (size_t c = 0; c < C; c++) {
                const chan_ref *r = &ref[c];
                double G0 = G[2 * c], G1 = G[2 * c + 1], K = dx_factor(r);
                double s0 = 0.0, a0 = 0.0, s1 = 0.0, a1 = 0.0, t0 = 0.0, t1 = 0.0;
                for (size_t n = 0; n < s.n; n++)
                    for (size_t i = 0; i < s.spatial; i++) {
                        double d = *tat(&dx, n, c, i);
                        double xh = (*tat(&x, n, c, i) - r->mu) * r->is;
                        double w = *tat(&dy, n, c, i);
                        double scale = r->is * (fabs(w) + (1.0 + fabs(xh)) * (G0 + G1) / (double)m);
                        s0 += d;
                        a0 += fabs(d);
                        s1 += d * xh;
                        a1 += fabs(d * xh);
                        t0 += K * U * scale;
                        t1 += K * U * scale * fabs(xh);
                    }
                t0 += ((double)m + 2.0) * 0x1p-53 * a0;
                t1 += ((double)m + 2.0) * 0x1p-53 * a1;
                report_check(&rep, fabs(s0), t0,
                             "channel %zu: sum(dx) = %.3g = %.3g of sum|dx|, bound %.3g of it",
                             c, s0, fabs(s0) / a0, t0 / a0);
                report_check(&rep, fabs(s1), t1,
                             "channel %zu: sum(dx*xhat) = %.3g = %.3g of sum|dx*xhat|, bound "
                             "%.3g of it",
                             c, s1, fabs(s1) / a1, t1 / a1);
                worst0 = fmax(worst0, fabs(s0) / a0);
                worst1 = fmax(worst1, fabs(s1) / a1);
            }
            EXPECT_REPORT(rep, ctx);
            cr_log_info("%s: |sum dx|/sum|dx| <= %.3g, |sum dx xhat|/sum|dx xhat| <= %.3g, "
                        "worst %.3f of bound",
                        ctx, worst0, worst1, rep.worst);
            tensor_free(&dx);
            vec_free(&smean);
            vec_free(&sinv);
        }
        free(ref);
        free(G);
        tensor_free(&x);
        tensor_free(&dy);
    }
}

/* ============================================================================== */
/* 3. Forward numerics: large mean, long channels, constant channels              */
/* ============================================================================== */

typedef struct big_case {
    bnorm_shape shape;
    double mean, sigma;
} big_case;

/* m = 2^22 values per channel (the NCHW case is one plane of 2^22; the NHWC case
 * 2 images of 2^21 pixels, 2 channels); |mean| / sigma = 1e4. */
static const big_case big_cases[] = {
    {{1, 1, (size_t)1 << 22, BNORM_NCHW}, 1e4, 1.0},
    {{2, 2, (size_t)1 << 21, BNORM_NHWC}, 1e4, 1.0},
    {{2, 3, (size_t)1 << 19, BNORM_NCHW}, -100.0, 0.01},
};

/*
 * The variance implied by save_invstd, 1/invstd^2 - eps, against a two-pass double
 * reference: the requirement is 1e-5 relative; the header's promise (shifted sums in
 * double keep full float accuracy at |mean|/std = 1e4) is the tighter e_var U of
 * chan_reference, ~11 U ~ 7e-7 here. Both are checked. save_mean within
 * U e_mean / invstd (half an ulp of the mean and the sums' error); y within
 * y_tolerance.
 */
Test(training, forward_large_mean, .timeout = 600)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    const float eps = 1e-5f;
    for (size_t ci = 0; ci < sizeof big_cases / sizeof big_cases[0]; ci++) {
        const big_case *bc = &big_cases[ci];
        bnorm_shape s = bc->shape;
        size_t C = s.c;
        bnorm_rng rng;
        rng_for_case(&rng, base, 3, ci);
        tensor x;
        tensor_alloc(&x, s, 0, 0, BNORM_FENCE_AT_GUARD);
        for (size_t o = 0; o < x.extent; o++)
            x.p[o] = (float)(bc->mean + bc->sigma * bnorm_rng_normal(&rng));
        float *gamma = malloc(C * sizeof(float)), *beta = malloc(C * sizeof(float));
        chan_ref *ref = malloc(C * sizeof *ref);
        cr_assert(gamma && beta && ref);
        for (size_t c = 0; c < C; c++) {
            gamma[c] = (float)uniform(&rng, 0.5, 2.0);
            beta[c] = (float)bnorm_rng_normal(&rng);
            ref[c] = chan_reference(&x, c, eps);
        }
        tensor y;
        tensor_alloc(&y, s, 0, 0, BNORM_FENCE_AT_GUARD);
        for (size_t ti = 0; ti < tb.n; ti++) {
            const bnorm_kernels *kt = tb.t[ti].k;
            char ctx[256];
            describe(ctx, sizeof ctx, "large mean", tb.t[ti].label, &s, &x, base);
            vec smean, sinv;
            vec_alloc(&smean, C, bnorm_fence_pick(&rng));
            vec_alloc(&sinv, C, bnorm_fence_pick(&rng));
            memset(y.p, SENTINEL_BYTE, y.extent * sizeof(float));
            bnorm_status st = bnorm_training_forward_with(kt, &s, x.p, NULL, y.p, NULL, gamma,
                                                          beta, eps, smean.p, sinv.p, NULL);
            cr_assert_eq(st, BNORM_OK, "%s: forward returned %s", ctx, bnorm_status_name(st));
            cr_expect(bnorm_fence_intact(&y.fence) && bnorm_fence_intact(&smean.f) &&
                          bnorm_fence_intact(&sinv.f),
                      "%s: a write outside an output", ctx);
            report rep, repy;
            report_init(&rep);
            report_init(&repy);
            for (size_t c = 0; c < C; c++) {
                const chan_ref *r = &ref[c];
                double is = sinv.p[c], var = 1.0 / (is * is) - (double)eps;
                double rel = fabs(var - r->var) / r->var;
                report_check(&rep, rel, 1e-5,
                             "channel %zu: variance from save_invstd %.9g, exact %.17g, "
                             "relative error %.3g > 1e-5",
                             c, var, r->var, rel);
                report_check(&rep, rel, r->e_var * U,
                             "channel %zu: variance from save_invstd %.9g, exact %.17g, "
                             "relative error %.3g > derived %.3g",
                             c, var, r->var, rel, r->e_var * U);
                report_check(&rep, fabs(smean.p[c] - r->mu), U * r->e_mean / r->is,
                             "save_mean[%zu] = %.9g, exact %.17g", c, smean.p[c], r->mu);
                for (size_t n = 0; n < s.n; n++)
                    for (size_t i = 0; i < s.spatial; i++) {
                        double xv = *tat(&x, n, c, i);
                        double want = gamma[c] * (xv - r->mu) * r->is + beta[c];
                        float got = *tat(&y, n, c, i);
                        report_check(&repy, fabs(got - want), y_tolerance(r, gamma[c], beta[c], xv),
                                     "y(n=%zu, c=%zu, i=%zu) = %.9g, exact %.17g", n, c, i,
                                     got, want);
                    }
                cr_log_info("%s: channel %zu: variance relative error %.3g (derived bound "
                            "%.3g), mean error %.3g",
                            ctx, c, rel, r->e_var * U, fabs(smean.p[c] - r->mu));
            }
            EXPECT_REPORT(rep, ctx);
            EXPECT_REPORT(repy, ctx);
            cr_log_info("%s: y worst %.3f of tolerance", ctx, repy.worst);
            vec_free(&smean);
            vec_free(&sinv);
        }
        free(gamma);
        free(beta);
        free(ref);
        tensor_free(&x);
        tensor_free(&y);
    }
}

/*
 * Constant channels: every value equal (3.7f, 1e4f, -2.5e-3f; the fourth channel
 * random for contrast). The header promises var == 0 exactly and y == beta exactly:
 * save_mean is the value itself, save_invstd is 1/sqrt(eps) rounded once to float,
 * y == beta bit for bit (+0 and -0 compare equal), no NaN. Exact zero variance is
 * seen through the running statistics: ONNX with momentum 0 stores the biased batch
 * variance and PyTorch with momentum 1 the unbiased one, each rounded once.
 */
typedef struct const_case {
    bnorm_shape shape;
    size_t pad_inner, pad_batch;
    float eps;
    bool affine; /* gamma and beta given, else NULL */
} const_case;

static const const_case const_cases[] = {
    {{2, 4, 33, BNORM_NCHW}, 0, 0, 1e-5f, true},
    {{2, 4, 33, BNORM_NHWC}, 0, 0, 1e-5f, true},
    {{16, 4, 1, BNORM_NCHW}, 0, 0, 1e-3f, true},
    {{3, 4, 7, BNORM_NHWC}, 3, 1, 1e-5f, false},
    {{1, 4, 65536, BNORM_NCHW}, 0, 0, 1e-5f, true},
    {{2, 4, 40000, BNORM_NHWC}, 0, 0, 0.1f, true},
};

static const float const_values[3] = {3.7f, 1e4f, -2.5e-3f};

Test(training, forward_constant_channel, .timeout = 300)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    for (size_t ci = 0; ci < sizeof const_cases / sizeof const_cases[0]; ci++) {
        const const_case *cc = &const_cases[ci];
        bnorm_shape s = cc->shape;
        size_t C = s.c;
        bnorm_rng rng;
        rng_for_case(&rng, base, 4, ci);
        tensor x;
        tensor_alloc(&x, s, cc->pad_inner, cc->pad_batch, bnorm_fence_pick(&rng));
        for (size_t n = 0; n < s.n; n++)
            for (size_t i = 0; i < s.spatial; i++)
                for (size_t c = 0; c < C; c++)
                    *tat(&x, n, c, i) = c < 3 ? const_values[c]
                                              : (float)(1e4 + bnorm_rng_normal(&rng));
        float gamma[4], beta[4];
        for (size_t c = 0; c < C; c++) {
            gamma[c] = (float)(bnorm_rng_uniform(&rng) < 0.5 ? -1.5 : 0.75);
            beta[c] = (float)bnorm_rng_normal(&rng);
        }
        const float *gp = cc->affine ? gamma : NULL, *bp = cc->affine ? beta : NULL;
        float want_is = (float)(1.0 / sqrt((double)cc->eps));
        for (size_t ti = 0; ti < tb.n; ti++) {
            const bnorm_kernels *kt = tb.t[ti].k;
            char ctx[256];
            describe(ctx, sizeof ctx, "constant", tb.t[ti].label, &s, &x, base);
            report rep;
            report_init(&rep);
            for (int conv = 0; conv < 2; conv++) {
                tensor y;
                vec smean, sinv, rmean, rvar;
                tensor_alloc(&y, s, cc->pad_inner, cc->pad_batch, bnorm_fence_pick(&rng));
                vec_alloc(&smean, C, bnorm_fence_pick(&rng));
                vec_alloc(&sinv, C, bnorm_fence_pick(&rng));
                vec_alloc(&rmean, C, bnorm_fence_pick(&rng));
                vec_alloc(&rvar, C, bnorm_fence_pick(&rng));
                for (size_t c = 0; c < C; c++) {
                    rmean.p[c] = 123.0f;
                    rvar.p[c] = 456.0f;
                }
                /* Momentum that keeps only the batch value. */
                bnorm_running_stats run = {rmean.p, rvar.p, conv == 0 ? 1.0f : 0.0f,
                                           conv == 0 ? BNORM_MOMENTUM_PYTORCH
                                                     : BNORM_MOMENTUM_ONNX};
                bnorm_status st = bnorm_training_forward_with(kt, &s, x.p, tstrides(&x), y.p,
                                                              tstrides(&y), gp, bp, cc->eps,
                                                              smean.p, sinv.p, &run);
                cr_assert_eq(st, BNORM_OK, "%s: forward returned %s", ctx,
                             bnorm_status_name(st));
                cr_expect(tensor_clean_outside(&y) && bnorm_fence_intact(&smean.f) &&
                              bnorm_fence_intact(&sinv.f) && bnorm_fence_intact(&rmean.f) &&
                              bnorm_fence_intact(&rvar.f),
                          "%s: a write outside an output", ctx);
                for (size_t c = 0; c < 3; c++) {
                    float v = const_values[c], b = bp ? beta[c] : 0.0f;
                    const char *cv = conv == 0 ? "pytorch" : "onnx";
                    report_exact(&rep, same_bits(smean.p[c], v),
                                 "channel %zu (%.9g): save_mean %.9g", c, v, smean.p[c]);
                    report_exact(&rep, same_bits(sinv.p[c], want_is),
                                 "channel %zu (%.9g): save_invstd %.9g, want 1/sqrt(eps) = %.9g",
                                 c, v, sinv.p[c], want_is);
                    report_exact(&rep, same_bits(rmean.p[c], v),
                                 "channel %zu (%.9g): %s running mean %.9g", c, v, cv,
                                 rmean.p[c]);
                    report_exact(&rep, bits(rvar.p[c]) == 0,
                                 "channel %zu (%.9g): %s running var %.9g, want +0 (var "
                                 "== 0 exactly)",
                                 c, v, cv, rvar.p[c]);
                    for (size_t n = 0; n < s.n; n++)
                        for (size_t i = 0; i < s.spatial; i++) {
                            float got = *tat(&y, n, c, i);
                            report_exact(&rep, got == b && !isnan(got),
                                         "channel %zu (%.9g): y(n=%zu, i=%zu) = %.9g, want "
                                         "beta = %.9g",
                                         c, v, n, i, got, b);
                        }
                }
                for (size_t c = 3; c < C; c++) {
                    report_exact(&rep, isfinite(smean.p[c]) && isfinite(sinv.p[c]) &&
                                           sinv.p[c] < want_is,
                                 "random channel %zu: save_mean %.9g, save_invstd %.9g", c,
                                 smean.p[c], sinv.p[c]);
                }
                tensor_free(&y);
                vec_free(&smean);
                vec_free(&sinv);
                vec_free(&rmean);
                vec_free(&rvar);
            }
            EXPECT_REPORT(rep, ctx);
        }
        tensor_free(&x);
    }
}

/*
 * Extreme first values: the kernels take each channel's sums about its first value
 * unless that is infinite or NaN (then about 0), and form x - k in double. A +inf
 * first value gives the mean +inf, as +inf anywhere else does (an infinite shift
 * made every sum NaN); values of +-3e38 whose differences overflow a float give the
 * mean 0 and y = +-1 (a float difference made them infinite). Planes, rows, periodic
 * rows and split rows, both layouts, every table.
 */
static const bnorm_shape extreme_shapes[] = {
    {2, 3, 6, BNORM_NCHW}, {2, 3, 6, BNORM_NHWC},    {3, 17, 10, BNORM_NHWC},
    {2, 300, 4, BNORM_NHWC}, {6, 3, 1, BNORM_NCHW},
};

Test(training, forward_extreme_first_values)
{
    tables tb = runnable_tables();
    for (size_t si = 0; si < COUNT(extreme_shapes); si++) {
        bnorm_shape s = extreme_shapes[si];
        size_t C = s.c, m = s.n * s.spatial; /* m is even */
        tensor x, y;
        tensor_alloc(&x, s, 0, 0, BNORM_FENCE_AT_GUARD);
        tensor_alloc(&y, s, 0, 0, BNORM_FENCE_AT_GUARD);
        for (size_t n = 0; n < s.n; n++)
            for (size_t i = 0; i < s.spatial; i++) {
                size_t j = n * s.spatial + i; /* the value's place in its channel */
                for (size_t c = 0; c < C; c++)
                    *tat(&x, n, c, i) = c % 3 == 0   ? (j == 0 ? INFINITY : (float)j)
                                        : c % 3 == 1 ? (j % 2 ? -3e38f : 3e38f)
                                                     : (float)j * 0.5f;
            }
        for (size_t ti = 0; ti < tb.n; ti++) {
            char ctx[256];
            describe(ctx, sizeof ctx, "extreme first values", tb.t[ti].label, &s, &x, 0);
            vec smean;
            vec_alloc(&smean, C, 0);
            cr_assert_eq(bnorm_training_forward_with(tb.t[ti].k, &s, x.p, NULL, y.p, NULL, NULL,
                                                     NULL, 1e-5f, smean.p, NULL, NULL),
                         BNORM_OK, "%s", ctx);
            for (size_t c = 0; c < C; c++) {
                float mean = smean.p[c];
                if (c % 3 == 0) {
                    cr_expect(mean == INFINITY, "%s: channel %zu, +inf first: mean %a", ctx, c,
                              (double)mean);
                    continue;
                }
                float want = c % 3 == 1 ? 0.0f : (float)((double)(m - 1) * 0.25);
                cr_expect(mean == want, "%s: channel %zu: mean %a, want %a", ctx, c,
                          (double)mean, (double)want);
                for (size_t n = 0; c % 3 == 1 && n < s.n; n++)
                    for (size_t i = 0; i < s.spatial; i++) {
                        float got = *tat(&y, n, c, i);
                        float exact = (n * s.spatial + i) % 2 ? -1.0f : 1.0f;
                        cr_expect(fabsf(got - exact) <= 1e-5f,
                                  "%s: channel %zu, +-3e38: y(n=%zu, i=%zu) = %a", ctx, c, n, i,
                                  (double)got);
                    }
            }
            cr_expect(bnorm_fence_intact(&smean.f), "%s: a write outside save_mean", ctx);
            vec_free(&smean);
        }
        tensor_free(&x);
        tensor_free(&y);
    }
}

/*
 * A first value far out over many repeated values: the sums about it cancel in
 * var = s2/m - d^2, which multiplies their rounding by d^2 / var (about m here), so
 * such channels are summed again about their mean (REFINE_Z2 in src/training.c).
 * The guide's bounds, against a two-pass double reference: save_mean 1 unit,
 * save_invstd 4, y 3. 2^20 values in one channel (planes; periodic rows), and 300
 * channels of split rows.
 */
typedef struct outlier_case {
    bnorm_shape shape;
    float first, rest;
} outlier_case;

static const outlier_case outlier_cases[] = {
    {{1, 1, (size_t)1 << 20, BNORM_NCHW}, 3.7f, 0.0f},
    {{1, 1, (size_t)1 << 20, BNORM_NHWC}, 1000.0f, 0.1f},
    {{4, 1, (size_t)1 << 18, BNORM_NCHW}, 1000.0f, 0.1f},
    {{1, 300, 4096, BNORM_NHWC}, -250.0f, 0.3f},
};

Test(training, forward_outlying_first_value, .timeout = 300)
{
    tables tb = runnable_tables();
    for (size_t oi = 0; oi < COUNT(outlier_cases); oi++) {
        const outlier_case *oc = &outlier_cases[oi];
        bnorm_shape s = oc->shape;
        size_t C = s.c;
        tensor x, y;
        tensor_alloc(&x, s, 0, 0, BNORM_FENCE_AT_GUARD);
        tensor_alloc(&y, s, 0, 0, BNORM_FENCE_AT_GUARD);
        for (size_t n = 0; n < s.n; n++)
            for (size_t i = 0; i < s.spatial; i++)
                for (size_t c = 0; c < C; c++)
                    *tat(&x, n, c, i) = n + i == 0 ? oc->first : oc->rest;
        chan_ref *ref = malloc(C * sizeof *ref);
        cr_assert(ref);
        for (size_t c = 0; c < C; c++)
            ref[c] = chan_reference(&x, c, 1e-5f);
        for (size_t ti = 0; ti < tb.n; ti++) {
            char ctx[256];
            describe(ctx, sizeof ctx, "outlying first value", tb.t[ti].label, &s, &x, 0);
            vec smean, sinv;
            vec_alloc(&smean, C, 0);
            vec_alloc(&sinv, C, 0);
            cr_assert_eq(bnorm_training_forward_with(tb.t[ti].k, &s, x.p, NULL, y.p, NULL, NULL,
                                                     NULL, 1e-5f, smean.p, sinv.p, NULL),
                         BNORM_OK, "%s", ctx);
            report rep;
            report_init(&rep);
            for (size_t c = 0; c < C; c++) {
                const chan_ref *r = &ref[c];
                double sd = sqrt(r->var);
                /* errors in the guide's units (bnorm_conf_affine_ulps) against its bounds */
                report_check(&rep, bnorm_conf_affine_ulps(smean.p[c], r->mu, fabs(r->mu) + sd, 0),
                             1.0, "channel %zu: save_mean %.9g, exact %.17g", c, smean.p[c],
                             r->mu);
                report_check(&rep, bnorm_conf_affine_ulps(sinv.p[c], r->is, r->is, 0), 4.0,
                             "channel %zu: save_invstd %.9g, exact %.17g", c, sinv.p[c], r->is);
                for (size_t n = 0; n < s.n; n++)
                    for (size_t i = 0; i < s.spatial && i < 2; i++) {
                        double xv = *tat(&x, n, c, i), want = (xv - r->mu) * r->is;
                        double mag = (fabs(xv - r->mu) + fabs(r->mu) + sd) * r->is;
                        report_check(&rep, bnorm_conf_affine_ulps(*tat(&y, n, c, i), want, mag, 0),
                                     3.0, "y(n=%zu, c=%zu, i=%zu) = %.9g, exact %.17g", n, c,
                                     i, *tat(&y, n, c, i), want);
                    }
            }
            EXPECT_REPORT(rep, ctx);
            cr_log_info("%s: worst %.3f of the bound", ctx, rep.worst);
            vec_free(&smean);
            vec_free(&sinv);
        }
        free(ref);
        tensor_free(&x);
        tensor_free(&y);
    }
}

/* ============================================================================== */
/* 4. Running statistics over several steps                                       */
/* ============================================================================== */

/*
 * Inputs lie on a grid of 2^-8 with |x| < 64, so x - k is exact in float and the
 * library's batch mean and variance are exact up to double rounding (relative
 * ~m 2^-53; 2^-40 is allowed). Then the running value after step t errs only by the
 * float rounding of each stored value, carried forward with the old value's weight:
 *   tol_t = w_old tol_{t-1} + U |r_t| + w_new 2^-40 |batch_t|
 * (a few ulps over a few steps). The expected values are computed in double with the
 * same float momentum the library receives. For momentum = 1/t at step t (PyTorch) the
 * expected value is the plain average of the batch means and of the unbiased batch
 * variances; the float momentum fl32(1/t) differs from 1/t, which adds
 * |fl32(1/t) - 1/t| |batch_t - avg_{t-1}| to tol_t.
 */
typedef struct run_case {
    bnorm_shape shape;
    size_t pad_inner, pad_batch;
} run_case;

static const run_case run_cases[] = {
    {{2, 3, 7, BNORM_NCHW}, 0, 0},  {{3, 5, 4, BNORM_NHWC}, 0, 0},
    {{5, 2, 1, BNORM_NCHW}, 0, 0},  {{2, 300, 3, BNORM_NHWC}, 0, 0},
    {{2, 3, 5, BNORM_NCHW}, 2, 3},  {{1, 3, 2, BNORM_NHWC}, 1, 0},
};

enum { RUN_TORCH_01, RUN_TORCH_AVG, RUN_ONNX_09, RUN_MODES };

/* Grid data for one step: channel means in [-8, 8], sigma in [0.5, 4). */
static void fill_grid(bnorm_rng *rng, tensor *x)
{
    for (size_t c = 0; c < x->shape.c; c++) {
        double mu = uniform(rng, -8.0, 8.0), sigma = uniform(rng, 0.5, 4.0);
        for (size_t n = 0; n < x->shape.n; n++)
            for (size_t i = 0; i < x->shape.spatial; i++) {
                double v = ldexp(nearbyint(ldexp(mu + sigma * bnorm_rng_normal(rng), 8)), -8);
                v = fmin(fmax(v, -63.0), 63.0);
                *tat(x, n, c, i) = (float)v;
            }
    }
}

Test(training, running_stats, .timeout = 300)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    const float eps = 1e-5f;
    for (size_t ci = 0; ci < sizeof run_cases / sizeof run_cases[0]; ci++) {
        const run_case *rc = &run_cases[ci];
        bnorm_shape s = rc->shape;
        size_t C = s.c, m = s.n * s.spatial;
        for (int mode = 0; mode < RUN_MODES; mode++) {
            int steps = mode == RUN_TORCH_AVG ? 5 : 3;
            bnorm_momentum_convention conv =
                mode == RUN_ONNX_09 ? BNORM_MOMENTUM_ONNX : BNORM_MOMENTUM_PYTORCH;
            static const char *const mode_names[] = {"pytorch momentum 0.1",
                                                     "pytorch momentum 1/t", "onnx momentum 0.9"};
            for (size_t ti = 0; ti < tb.n; ti++) {
                const bnorm_kernels *kt = tb.t[ti].k;
                char ctx[320], d[256];
                describe(d, sizeof d, "running", tb.t[ti].label, &s, NULL, base);
                snprintf(ctx, sizeof ctx, "%s, %s", d, mode_names[mode]);
                /* Same data for every table. */
                bnorm_rng rng;
                rng_for_case(&rng, base, 5, ci * RUN_MODES + (size_t)mode);
                tensor x, y;
                vec rmean, rvar;
                tensor_alloc(&x, s, rc->pad_inner, rc->pad_batch, bnorm_fence_pick(&rng));
                tensor_alloc(&y, s, rc->pad_inner, rc->pad_batch, bnorm_fence_pick(&rng));
                vec_alloc(&rmean, C, bnorm_fence_pick(&rng));
                vec_alloc(&rvar, C, bnorm_fence_pick(&rng));
                double *em = malloc(C * sizeof(double)), *ev = malloc(C * sizeof(double));
                double *tm = malloc(C * sizeof(double)), *tv = malloc(C * sizeof(double));
                cr_assert(em && ev && tm && tv);
                for (size_t c = 0; c < C; c++) {
                    rmean.p[c] = (float)uniform(&rng, -2.0, 2.0);
                    rvar.p[c] = (float)uniform(&rng, 0.5, 2.0);
                    em[c] = rmean.p[c];
                    ev[c] = rvar.p[c];
                    tm[c] = tv[c] = 0.0;
                }
                report rep;
                report_init(&rep);
                for (int t = 1; t <= steps; t++) {
                    fill_grid(&rng, &x);
                    float mom = mode == RUN_TORCH_01 ? 0.1f
                                : mode == RUN_ONNX_09 ? 0.9f
                                                      : (float)(1.0 / t);
                    bnorm_running_stats run = {rmean.p, rvar.p, mom, conv};
                    bnorm_status st = bnorm_training_forward_with(
                        kt, &s, x.p, tstrides(&x), y.p, tstrides(&y), NULL, NULL, eps, NULL,
                        NULL, &run);
                    cr_assert_eq(st, BNORM_OK, "%s: step %d returned %s", ctx, t,
                                 bnorm_status_name(st));
                    cr_expect(bnorm_fence_intact(&rmean.f) && bnorm_fence_intact(&rvar.f),
                              "%s: a write outside the running statistics", ctx);
                    for (size_t c = 0; c < C; c++) {
                        chan_ref r = chan_reference(&x, c, eps);
                        double bm = r.mu;
                        double bv = conv == BNORM_MOMENTUM_PYTORCH
                                        ? r.var * (double)m / ((double)m - 1.0)
                                        : r.var;
                        double wnew = conv == BNORM_MOMENTUM_PYTORCH ? (double)mom
                                                                     : 1.0 - (double)mom;
                        double wold = 1.0 - wnew;
                        double extra_m = 0.0, extra_v = 0.0;
                        if (mode == RUN_TORCH_AVG) {
                            /* The exact average, and the float momentum's deviation. */
                            double dm = fabs((double)mom - 1.0 / t);
                            extra_m = dm * fabs(bm - em[c]);
                            extra_v = dm * fabs(bv - ev[c]);
                            em[c] = ((t - 1) * em[c] + bm) / t;
                            ev[c] = ((t - 1) * ev[c] + bv) / t;
                        } else {
                            em[c] = wold * em[c] + wnew * bm;
                            ev[c] = wold * ev[c] + wnew * bv;
                        }
                        tm[c] = wold * tm[c] + U * fabs(em[c]) + wnew * 0x1p-40 * fabs(bm) +
                                extra_m;
                        tv[c] = wold * tv[c] + U * fabs(ev[c]) + wnew * 0x1p-40 * fabs(bv) +
                                extra_v;
                        report_check(&rep, fabs(rmean.p[c] - em[c]), tm[c] * (1.0 + 0x1p-20),
                                     "step %d channel %zu: running mean %.9g, expected %.17g "
                                     "(%.2f ulps)",
                                     t, c, rmean.p[c], em[c],
                                     fabs(rmean.p[c] - em[c]) / (U * fabs(em[c])));
                        report_check(&rep, fabs(rvar.p[c] - ev[c]), tv[c] * (1.0 + 0x1p-20),
                                     "step %d channel %zu: running var %.9g, expected %.17g "
                                     "(%.2f ulps)",
                                     t, c, rvar.p[c], ev[c],
                                     fabs(rvar.p[c] - ev[c]) / (U * fabs(ev[c])));
                    }
                }
                EXPECT_REPORT(rep, ctx);
                cr_log_info("%s: worst %.3f of tolerance", ctx, rep.worst);
                free(em), free(ev), free(tm), free(tv);
                tensor_free(&x);
                tensor_free(&y);
                vec_free(&rmean);
                vec_free(&rvar);
            }
        }
    }
}

/* ============================================================================== */
/* 5. Frozen backward                                                             */
/* ============================================================================== */

/*
 * dx = dy * gamma / sqrt(var + eps): the library folds scale = gamma / sqrt(var + eps)
 * in double and rounds it once (U), then rounds dy * scale (U): |dx - exact| <=
 * 2 U |exact| (1 + U), plus 2^-149 where the result is subnormal. A NaN variance gives
 * NaN. In place (dx == dy, same strides) equals out of place bit for bit.
 */
typedef struct frozen_case {
    bnorm_shape shape;
    size_t pad_inner, pad_batch;
    bool gamma_null;
} frozen_case;

static const frozen_case frozen_cases[] = {
    {{2, 3, 5, BNORM_NCHW}, 0, 0, false},   {{2, 9, 7, BNORM_NHWC}, 0, 0, false},
    {{3, 17, 49, BNORM_NCHW}, 3, 5, false}, {{1, 1000, 3, BNORM_NHWC}, 0, 0, true},
    {{4, 7, 1, BNORM_NCHW}, 0, 0, false},   {{2, 8, 9, BNORM_NHWC}, 2, 1, true},
};

Test(training, frozen_backward, .timeout = 300)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    const float eps = 1e-5f;
    for (size_t ci = 0; ci < sizeof frozen_cases / sizeof frozen_cases[0]; ci++) {
        const frozen_case *fc = &frozen_cases[ci];
        bnorm_shape s = fc->shape;
        size_t C = s.c;
        bnorm_rng rng;
        rng_for_case(&rng, base, 6, ci);
        tensor dy;
        tensor_alloc(&dy, s, fc->pad_inner, fc->pad_batch, bnorm_fence_pick(&rng));
        fill_normal(&rng, &dy);
        float *gamma = malloc(C * sizeof(float)), *var = malloc(C * sizeof(float));
        cr_assert(gamma && var);
        for (size_t c = 0; c < C; c++) {
            gamma[c] = (float)(bnorm_rng_normal(&rng) * 2.0);
            var[c] = (float)uniform(&rng, 0.0, 4.0);
        }
        var[0] = 0.0f;
        if (C >= 3)
            var[2] = NAN;
        float *sdy = snapshot(dy.p, dy.extent), *sg = snapshot(gamma, C), *sv = snapshot(var, C);
        const float *gp = fc->gamma_null ? NULL : gamma;
        for (size_t ti = 0; ti < tb.n; ti++) {
            const bnorm_kernels *kt = tb.t[ti].k;
            char ctx[256];
            describe(ctx, sizeof ctx, "frozen", tb.t[ti].label, &s, &dy, base);
            tensor dx, ip;
            tensor_alloc(&dx, s, fc->pad_inner + 1, fc->pad_batch, bnorm_fence_pick(&rng));
            tensor_alloc(&ip, s, fc->pad_inner, fc->pad_batch, bnorm_fence_pick(&rng));
            memcpy(ip.p, dy.p, dy.extent * sizeof(float));
            bnorm_status st = bnorm_frozen_backward_with(kt, &s, dy.p, tstrides(&dy), gp, var,
                                                         eps, dx.p, tstrides(&dx));
            cr_assert_eq(st, BNORM_OK, "%s: returned %s", ctx, bnorm_status_name(st));
            st = bnorm_frozen_backward_with(kt, &s, ip.p, tstrides(&ip), gp, var, eps, ip.p,
                                            tstrides(&ip));
            cr_assert_eq(st, BNORM_OK, "%s: in place returned %s", ctx, bnorm_status_name(st));
            cr_expect(tensor_clean_outside(&dx) && bnorm_fence_intact(&ip.fence),
                      "%s: a write outside dx", ctx);
            cr_expect(unchanged(dy.p, sdy, dy.extent) && unchanged(gamma, sg, C) &&
                          unchanged(var, sv, C),
                      "%s: an input changed", ctx);
            report rep;
            report_init(&rep);
            for (size_t n = 0; n < s.n; n++)
                for (size_t c = 0; c < C; c++)
                    for (size_t i = 0; i < s.spatial; i++) {
                        double g = gp ? gp[c] : 1.0;
                        double want = *tat(&dy, n, c, i) * g / sqrt((double)var[c] + eps);
                        float got = *tat(&dx, n, c, i), inp = *tat(&ip, n, c, i);
                        if (isnan(want))
                            report_exact(&rep, isnan(got),
                                         "dx(n=%zu, c=%zu, i=%zu) = %.9g, want NaN (var NaN)",
                                         n, c, i, got);
                        else
                            report_check(&rep, fabs(got - want),
                                         2.0 * U * (1.0 + U) * fabs(want) + 0x1p-149,
                                         "dx(n=%zu, c=%zu, i=%zu) = %.9g, exact %.17g", n, c,
                                         i, got, want);
                        report_exact(&rep, same_bits(inp, got),
                                     "in place dx(n=%zu, c=%zu, i=%zu) = %.9g, out of place "
                                     "%.9g",
                                     n, c, i, inp, got);
                    }
            cr_expect(gaps_match(&ip, sdy), "%s: in place wrote into a gap", ctx);
            EXPECT_REPORT(rep, ctx);
            cr_log_info("%s: worst %.3f of tolerance", ctx, rep.worst);
            tensor_free(&dx);
            tensor_free(&ip);
        }
        free(sdy), free(sg), free(sv), free(gamma), free(var);
        tensor_free(&dy);
    }
}

/* ============================================================================== */
/* 6. In place against out of place                                               */
/* ============================================================================== */

/*
 * Forward with y == x (same strides) and backward with dx == dy (same strides) give
 * the out-of-place results bit for bit: the summation order is fixed by the shape
 * (bnorm.h), and every channel block is reduced before it is overwritten. Shapes cross
 * the channel blocks: NHWC with C > 256, and NCHW planes larger than a cached pass.
 */
typedef struct layout_case {
    bnorm_shape shape;
    size_t pad_inner, pad_batch;
} layout_case;

static const layout_case inplace_cases[] = {
    {{2, 3, 5, BNORM_NCHW}, 0, 0},     {{2, 300, 7, BNORM_NHWC}, 0, 0},
    {{2, 24, 20000, BNORM_NCHW}, 0, 0}, {{2, 3, 5, BNORM_NCHW}, 3, 2},
    {{3, 9, 7, BNORM_NHWC}, 2, 5},     {{8, 5, 1, BNORM_NCHW}, 0, 0},
    {{2, 600, 3, BNORM_NHWC}, 1, 0},
};

/* Element-wise bit equality of two tensors of one shape; the first difference goes
 * to rep. */
static void compare_tensors(report *rep, const tensor *got, const tensor *want,
                            const char *what)
{
    const bnorm_shape *s = &want->shape;
    for (size_t n = 0; n < s->n; n++)
        for (size_t c = 0; c < s->c; c++)
            for (size_t i = 0; i < s->spatial; i++) {
                float g = *tat(got, n, c, i), w = *tat(want, n, c, i);
                report_exact(rep, same_bits(g, w), "%s(n=%zu, c=%zu, i=%zu) = %.9g, want %.9g",
                             what, n, c, i, g, w);
            }
}

static void compare_vecs(report *rep, const float *got, const float *want, size_t C,
                         const char *what)
{
    for (size_t c = 0; c < C; c++)
        report_exact(rep, same_bits(got[c], want[c]), "%s[%zu] = %.9g, want %.9g", what, c,
                     got[c], want[c]);
}

/* Random x (channel means within 2 sigma), dy, gamma, beta for one case. */
static void random_problem(bnorm_rng *rng, tensor *x, tensor *dy, float *gamma, float *beta)
{
    for (size_t c = 0; c < x->shape.c; c++) {
        fill_channel(rng, x, c, 2.0);
        gamma[c] = (float)uniform(rng, -2.0, 2.0);
        beta[c] = (float)bnorm_rng_normal(rng);
    }
    fill_normal(rng, dy);
}

Test(training, in_place, .timeout = 300)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    const float eps = 1e-5f;
    for (size_t ci = 0; ci < sizeof inplace_cases / sizeof inplace_cases[0]; ci++) {
        const layout_case *lc = &inplace_cases[ci];
        bnorm_shape s = lc->shape;
        size_t C = s.c;
        bnorm_rng rng;
        rng_for_case(&rng, base, 7, ci);
        tensor x, dy;
        tensor_alloc(&x, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
        tensor_alloc(&dy, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
        float *gamma = malloc(C * sizeof(float)), *beta = malloc(C * sizeof(float));
        cr_assert(gamma && beta);
        random_problem(&rng, &x, &dy, gamma, beta);
        for (size_t ti = 0; ti < tb.n; ti++) {
            const bnorm_kernels *kt = tb.t[ti].k;
            char ctx[256];
            describe(ctx, sizeof ctx, "in place", tb.t[ti].label, &s, &x, base);
            tensor y, xi, dx, dyi;
            vec sm[2], si[2], rm[2], rv[2], dg[2], db[2];
            tensor_alloc(&y, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
            tensor_alloc(&xi, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
            tensor_alloc(&dx, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
            tensor_alloc(&dyi, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
            memcpy(xi.p, x.p, x.extent * sizeof(float));
            memcpy(dyi.p, dy.p, dy.extent * sizeof(float));
            for (int k = 0; k < 2; k++) {
                vec_alloc(&sm[k], C, bnorm_fence_pick(&rng));
                vec_alloc(&si[k], C, bnorm_fence_pick(&rng));
                vec_alloc(&rm[k], C, bnorm_fence_pick(&rng));
                vec_alloc(&rv[k], C, bnorm_fence_pick(&rng));
                vec_alloc(&dg[k], C, bnorm_fence_pick(&rng));
                vec_alloc(&db[k], C, bnorm_fence_pick(&rng));
                for (size_t c = 0; c < C; c++) {
                    rm[k].p[c] = 0.25f * (float)c;
                    rv[k].p[c] = 1.0f + 0.5f * (float)c;
                }
            }
            bnorm_running_stats r0 = {rm[0].p, rv[0].p, 0.1f, BNORM_MOMENTUM_PYTORCH};
            bnorm_running_stats r1 = {rm[1].p, rv[1].p, 0.1f, BNORM_MOMENTUM_PYTORCH};
            bnorm_status st = bnorm_training_forward_with(kt, &s, x.p, tstrides(&x), y.p,
                                                          tstrides(&y), gamma, beta, eps,
                                                          sm[0].p, si[0].p, &r0);
            cr_assert_eq(st, BNORM_OK, "%s: forward returned %s", ctx, bnorm_status_name(st));
            st = bnorm_training_forward_with(kt, &s, xi.p, tstrides(&xi), xi.p, tstrides(&xi),
                                             gamma, beta, eps, sm[1].p, si[1].p, &r1);
            cr_assert_eq(st, BNORM_OK, "%s: in-place forward returned %s", ctx,
                         bnorm_status_name(st));
            st = bnorm_training_backward_with(kt, &s, x.p, tstrides(&x), dy.p, tstrides(&dy),
                                              gamma, sm[0].p, si[0].p, dx.p, tstrides(&dx),
                                              dg[0].p, db[0].p);
            cr_assert_eq(st, BNORM_OK, "%s: backward returned %s", ctx, bnorm_status_name(st));
            st = bnorm_training_backward_with(kt, &s, x.p, tstrides(&x), dyi.p, tstrides(&dyi),
                                              gamma, sm[0].p, si[0].p, dyi.p, tstrides(&dyi),
                                              dg[1].p, db[1].p);
            cr_assert_eq(st, BNORM_OK, "%s: in-place backward returned %s", ctx,
                         bnorm_status_name(st));

            report rep;
            report_init(&rep);
            compare_tensors(&rep, &xi, &y, "in-place y");
            compare_vecs(&rep, sm[1].p, sm[0].p, C, "in-place save_mean");
            compare_vecs(&rep, si[1].p, si[0].p, C, "in-place save_invstd");
            compare_vecs(&rep, rm[1].p, rm[0].p, C, "in-place running mean");
            compare_vecs(&rep, rv[1].p, rv[0].p, C, "in-place running var");
            compare_tensors(&rep, &dyi, &dx, "in-place dx");
            compare_vecs(&rep, dg[1].p, dg[0].p, C, "in-place dgamma");
            compare_vecs(&rep, db[1].p, db[0].p, C, "in-place dbeta");
            EXPECT_REPORT(rep, ctx);
            cr_expect(gaps_match(&xi, x.p) && gaps_match(&dyi, dy.p) &&
                          bnorm_fence_intact(&xi.fence) && bnorm_fence_intact(&dyi.fence) &&
                          tensor_clean_outside(&y) && tensor_clean_outside(&dx),
                      "%s: a write outside a tensor", ctx);
            for (int k = 0; k < 2; k++) {
                cr_expect(bnorm_fence_intact(&sm[k].f) && bnorm_fence_intact(&si[k].f) &&
                              bnorm_fence_intact(&rm[k].f) && bnorm_fence_intact(&rv[k].f) &&
                              bnorm_fence_intact(&dg[k].f) && bnorm_fence_intact(&db[k].f),
                          "%s: a write outside a per-channel output", ctx);
                vec_free(&sm[k]), vec_free(&si[k]), vec_free(&rm[k]), vec_free(&rv[k]);
                vec_free(&dg[k]), vec_free(&db[k]);
            }
            tensor_free(&y), tensor_free(&xi), tensor_free(&dx), tensor_free(&dyi);
        }
        free(gamma), free(beta);
        tensor_free(&x), tensor_free(&dy);
    }
}

/* Copies t's elements into u (same shape, any strides). */
static void copy_elements(tensor *u, const tensor *t)
{
    const bnorm_shape *s = &t->shape;
    for (size_t n = 0; n < s->n; n++)
        for (size_t c = 0; c < s->c; c++)
            for (size_t i = 0; i < s->spatial; i++)
                *tat(u, n, c, i) = *tat(t, n, c, i);
}

/* The strides that must not change any sum: dense, a padded inner step (NCHW with
 * spatial 1: a channel step of 3), padded images as well. */
static const size_t stride_pads[][2] = {{0, 0}, {2, 0}, {2, 5}};
enum { N_PADS = COUNT(stride_pads) };

/* Shapes whose rows sums could follow the strides: periodic rows (C = 3, 5, 17; one
 * with 7 chunks of rows), several images, NCHW with spatial 1 (periodic, and C over a
 * block in 8 chunks); and NCHW planes, short (dense planes fused four at a time) and
 * long. */
static const bnorm_shape sums_shapes[] = {
    {1, 3, 200 * 200, BNORM_NHWC}, {3, 17, 21 * 23, BNORM_NHWC}, {2, 5, 37, BNORM_NHWC},
    {3000, 17, 1, BNORM_NCHW},     {600, 300, 1, BNORM_NCHW},    {4, 24, 7 * 7, BNORM_NCHW},
    {3, 5, 33 * 33, BNORM_NCHW},
};

/* The statistics and the parameter gradients are sums in an order fixed by the shape
 * (bnorm.h): the same bits whatever the strides of x, dy, y and dx, with dx or not,
 * serially or through a pool, and for rows (NHWC, NCHW spatial 1) in every table; y
 * and dx are the same values, and no gap of theirs is written. */
Test(training, sums_independent_of_strides, .timeout = 300)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    const float eps = 1e-5f;
    for (size_t ci = 0; ci < COUNT(sums_shapes); ci++) {
        bnorm_shape s = sums_shapes[ci];
        size_t C = s.c;
        bnorm_rng rng;
        rng_for_case(&rng, base, 9, ci);
        tensor x[N_PADS], dy[N_PADS], out[N_PADS], yref, dxref; /* the dense y and dx */
        tensor_alloc(&yref, s, 0, 0, 0);
        tensor_alloc(&dxref, s, 0, 0, 0);
        for (int p = 0; p < N_PADS; p++) {
            tensor_alloc(&x[p], s, stride_pads[p][0], stride_pads[p][1],
                         bnorm_fence_pick(&rng));
            tensor_alloc(&dy[p], s, stride_pads[p][0], stride_pads[p][1],
                         bnorm_fence_pick(&rng));
            tensor_alloc(&out[p], s, stride_pads[p][0], stride_pads[p][1],
                         bnorm_fence_pick(&rng));
        }
        float *gamma = malloc(C * sizeof(float)), *beta = malloc(C * sizeof(float));
        float *buf = malloc(18 * C * sizeof(float));
        cr_assert(gamma && beta && buf);
        random_problem(&rng, &x[0], &dy[0], gamma, beta);
        fill_cancelling(&s, x[0].p, &rng); /* x[0] and dy[0] are dense */
        fill_cancelling(&s, dy[0].p, &rng);
        for (int p = 1; p < N_PADS; p++) {
            copy_elements(&x[p], &x[0]);
            copy_elements(&dy[p], &dy[0]);
        }
        /* [0]: dense everything (dx NULL), [1]: the call compared with it */
        float *sm[2], *si[2], *rm[2], *rv[2], *dg[2], *db[2];
        for (int k = 0; k < 2; k++) {
            float *b = buf + 6 * C * (size_t)k;
            sm[k] = b, si[k] = b + C, rm[k] = b + 2 * C, rv[k] = b + 3 * C;
            dg[k] = b + 4 * C, db[k] = b + 5 * C;
        }
        /* rows sums (NHWC, NCHW spatial 1) are the scalar table's in every table */
        bool rows = s.layout == BNORM_NHWC || s.spatial == 1;
        float *scalar_stats = buf + 12 * C;
        cr_assert(tb.t[0].k->isa == BNORM_ISA_SCALAR && !tb.t[0].emulated,
                  "the scalar table is not listed first");
        for (size_t ti = 0; ti < tb.n; ti++) {
            const bnorm_kernels *kt = tb.t[ti].k;
            char ctx[256];
            describe(ctx, sizeof ctx, "sums and strides", tb.t[ti].label, &s, &x[0], base);
            report rep;
            report_init(&rep);
            char what[80];
            /* serially, then through a pool that runs the tasks last to first */
            for (int pooled = 0; pooled < 2; pooled++) {
                bnorm_set_parallel_for(pooled ? reverse_parallel_for : NULL, NULL);
                const char *how = pooled ? "pool: " : "";
                for (int px = 0; px < N_PADS; px++)
                    for (int po = 0; po < N_PADS; po++) {
                        int k = pooled || px || po;
                        for (size_t c = 0; c < C; c++)
                            rm[k][c] = 0.0f, rv[k][c] = 1.0f;
                        bnorm_running_stats run = {rm[k], rv[k], 0.1f, BNORM_MOMENTUM_PYTORCH};
                        bnorm_status st = bnorm_training_forward_with(
                            kt, &s, x[px].p, tstrides(&x[px]), out[po].p, tstrides(&out[po]),
                            gamma, beta, eps, sm[k], si[k], &run);
                        cr_assert_eq(st, BNORM_OK, "%s: forward returned %s", ctx,
                                     bnorm_status_name(st));
                        snprintf(what, sizeof what, "%sx pad %d, y pad %d", how, px, po);
                        if (!k)
                            copy_elements(&yref, &out[0]);
                        compare_tensors(&rep, &out[po], &yref, what);
                        report_exact(&rep, tensor_clean_outside(&out[po]), "%s: y's gaps",
                                     what);
                        compare_vecs(&rep, sm[k], sm[0], C, what);
                        compare_vecs(&rep, si[k], si[0], C, what);
                        compare_vecs(&rep, rm[k], rm[0], C, what);
                        compare_vecs(&rep, rv[k], rv[0], C, what);
                    }
                if (!pooled)
                    cr_assert_eq(bnorm_training_backward_with(kt, &s, x[0].p, NULL, dy[0].p,
                                                              NULL, gamma, sm[0], si[0],
                                                              dxref.p, NULL, NULL, NULL),
                                 BNORM_OK, "%s: backward returned an error", ctx);
                for (int px = 0; px < N_PADS; px++)
                    for (int pd = 0; pd < N_PADS; pd++)
                        for (int po = -1; po < N_PADS; po++) {
                            int k = pooled || px || pd || po >= 0;
                            bnorm_status st = bnorm_training_backward_with(
                                kt, &s, x[px].p, tstrides(&x[px]), dy[pd].p,
                                tstrides(&dy[pd]), gamma, sm[0], si[0],
                                po < 0 ? NULL : out[po].p, po < 0 ? NULL : tstrides(&out[po]),
                                dg[k], db[k]);
                            cr_assert_eq(st, BNORM_OK, "%s: backward returned %s", ctx,
                                         bnorm_status_name(st));
                            snprintf(what, sizeof what, "%sx pad %d, dy pad %d, dx pad %d",
                                     how, px, pd, po);
                            compare_vecs(&rep, dg[k], dg[0], C, what);
                            compare_vecs(&rep, db[k], db[0], C, what);
                            if (po >= 0) {
                                compare_tensors(&rep, &out[po], &dxref, what);
                                report_exact(&rep, tensor_clean_outside(&out[po]),
                                             "%s: dx's gaps", what);
                            }
                        }
                bnorm_set_parallel_for(NULL, NULL);
            }
            if (rows && ti == 0)
                memcpy(scalar_stats, buf, 6 * C * sizeof(float));
            else if (rows)
                compare_vecs(&rep, buf, scalar_stats, 6 * C,
                             "statistics and gradients against the scalar table's");
            EXPECT_REPORT(rep, ctx);
        }
        free(gamma), free(beta), free(buf);
        tensor_free(&yref), tensor_free(&dxref);
        for (int p = 0; p < N_PADS; p++)
            tensor_free(&x[p]), tensor_free(&dy[p]), tensor_free(&out[p]);
    }
}

/* A channel's results depend on its own values only: with every value of channel 1
 * infinite or NaN, channels 0 and 2 give the bits they gave with finite ones (kernels
 * read past a plane's end, into the next, where that saves a masked load, and must
 * zero what they read there). Short planes of every length modulo 8, rows. */
Test(training, channels_independent_of_neighbors, .timeout = 300)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    static const size_t spatials[] = {1, 2, 3, 5, 6, 7, 9, 12, 17, 33};
    for (size_t si = 0; si < 2 * COUNT(spatials); si++) {
        bnorm_shape s = {2, 3, spatials[si / 2], si % 2 ? BNORM_NHWC : BNORM_NCHW};
        bnorm_rng rng;
        rng_for_case(&rng, base, 10, si);
        tensor x[2], dy[2], y[2], dx[2], out;
        for (int v = 0; v < 2; v++) {
            tensor_alloc(&x[v], s, 0, 0, bnorm_fence_pick(&rng));
            tensor_alloc(&dy[v], s, 0, 0, bnorm_fence_pick(&rng));
            tensor_alloc(&y[v], s, 0, 0, 0);
            tensor_alloc(&dx[v], s, 0, 0, 0);
        }
        tensor_alloc(&out, s, 0, 0, bnorm_fence_pick(&rng));
        float gamma[3], beta[3];
        random_problem(&rng, &x[0], &dy[0], gamma, beta);
        copy_elements(&x[1], &x[0]);
        copy_elements(&dy[1], &dy[0]);
        static const float specials[] = {INFINITY, -INFINITY, NAN};
        for (size_t n = 0; n < s.n; n++)
            for (size_t i = 0; i < s.spatial; i++) {
                *tat(&x[1], n, 1, i) = specials[(n + i) % 3];
                *tat(&dy[1], n, 1, i) = specials[(n + i + 1) % 3];
            }
        for (size_t ti = 0; ti < tb.n; ti++) {
            const bnorm_kernels *kt = tb.t[ti].k;
            char ctx[256];
            describe(ctx, sizeof ctx, "neighbors", tb.t[ti].label, &s, &x[0], base);
            float sm[2][3], si_[2][3], dg[2][3], db[2][3];
            for (int v = 0; v < 2; v++) {
                cr_assert_eq(bnorm_training_forward_with(kt, &s, x[v].p, NULL, out.p, NULL,
                                                         gamma, beta, 1e-5f, sm[v], si_[v],
                                                         NULL),
                             BNORM_OK, "%s", ctx);
                copy_elements(&y[v], &out);
                /* the saved statistics of the finite run, so dx differs only by x, dy */
                cr_assert_eq(bnorm_training_backward_with(kt, &s, x[v].p, NULL, dy[v].p,
                                                          NULL, gamma, sm[0], si_[0], out.p,
                                                          NULL, dg[v], db[v]),
                             BNORM_OK, "%s", ctx);
                copy_elements(&dx[v], &out);
            }
            report rep;
            report_init(&rep);
            for (size_t c = 0; c < 3; c += 2) {
                report_exact(&rep, same_bits(sm[1][c], sm[0][c]), "save_mean[%zu]", c);
                report_exact(&rep, same_bits(si_[1][c], si_[0][c]), "save_invstd[%zu]", c);
                report_exact(&rep, same_bits(dg[1][c], dg[0][c]), "dgamma[%zu] = %a, want %a",
                             c, (double)dg[1][c], (double)dg[0][c]);
                report_exact(&rep, same_bits(db[1][c], db[0][c]), "dbeta[%zu] = %a, want %a",
                             c, (double)db[1][c], (double)db[0][c]);
                for (size_t n = 0; n < s.n; n++)
                    for (size_t i = 0; i < s.spatial; i++) {
                        report_exact(&rep,
                                     same_bits(*tat(&y[1], n, c, i), *tat(&y[0], n, c, i)),
                                     "y(%zu, %zu, %zu)", n, c, i);
                        report_exact(&rep,
                                     same_bits(*tat(&dx[1], n, c, i), *tat(&dx[0], n, c, i)),
                                     "dx(%zu, %zu, %zu)", n, c, i);
                    }
            }
            EXPECT_REPORT(rep, ctx);
        }
        for (int v = 0; v < 2; v++)
            tensor_free(&x[v]), tensor_free(&dy[v]), tensor_free(&y[v]), tensor_free(&dx[v]);
        tensor_free(&out);
    }
}

/* ============================================================================== */
/* 7. Rejected arguments: documented status, nothing written                      */
/* ============================================================================== */

/* One arena holds every buffer of a call, so aliasing cases can point anywhere in it
 * and "wrote nothing" is one comparison. Offsets in floats; the shape is 2 x 3 x 4
 * (24 elements, strided extents up to 31). */
enum {
    A_T = 64, /* each tensor region */
    A_P = 8,  /* each per-channel region */
    A_X = 0,
    A_Y = A_X + A_T,
    A_DY = A_Y + A_T,
    A_DX = A_DY + A_T,
    A_GAMMA = A_DX + A_T,
    A_BETA = A_GAMMA + A_P,
    A_SMEAN = A_BETA + A_P,
    A_SINV = A_SMEAN + A_P,
    A_RMEAN = A_SINV + A_P,
    A_RVAR = A_RMEAN + A_P,
    A_DG = A_RVAR + A_P,
    A_DB = A_DG + A_P,
    A_VAR = A_DB + A_P,
    A_LEN = A_VAR + A_P,
};

static float arena[A_LEN], arena_snap[A_LEN];

#define AR(off) (arena + (off))

/* Inputs valid; outputs hold the sentinel. save_mean/save_invstd are outputs of the
 * forward (sentinel) and inputs of backward (valid values). */
static void arena_reset(bool forward)
{
    for (size_t i = 0; i < A_T; i++) {
        AR(A_X)[i] = (float)((int)(i % 13) - 6) * 0.25f;
        AR(A_DY)[i] = (float)((int)(i % 7) - 3) * 0.5f;
    }
    memset(AR(A_Y), SENTINEL_BYTE, A_T * sizeof(float));
    memset(AR(A_DX), SENTINEL_BYTE, A_T * sizeof(float));
    memset(AR(A_DG), SENTINEL_BYTE, A_P * sizeof(float));
    memset(AR(A_DB), SENTINEL_BYTE, A_P * sizeof(float));
    for (size_t i = 0; i < A_P; i++) {
        AR(A_GAMMA)[i] = 1.5f;
        AR(A_BETA)[i] = 0.25f;
        AR(A_RMEAN)[i] = 0.5f;
        AR(A_RVAR)[i] = 2.0f;
        AR(A_VAR)[i] = 1.0f + (float)i;
        AR(A_SMEAN)[i] = forward ? sentinel() : 0.125f;
        AR(A_SINV)[i] = forward ? sentinel() : 2.0f;
    }
}

static void expect_arena_unchanged(const char *what)
{
    if (memcmp(arena, arena_snap, sizeof arena) == 0)
        return;
    size_t i = 0;
    while (bits(arena[i]) == bits(arena_snap[i]))
        i++;
    cr_assert_fail("%s: rejected, but wrote to memory (arena float %zu: %08x -> %08x)", what,
                   i, (unsigned)bits(arena_snap[i]), (unsigned)bits(arena[i]));
}

/* Strides other than dense, valid for the 2 x 3 x 4 shape of either layout. */
static bnorm_strides padded_strides(bnorm_layout l)
{
    return l == BNORM_NCHW ? (bnorm_strides){5, 15} : (bnorm_strides){4, 16};
}

/* The dense inner stride with padded images: in place needs both strides equal. */
static bnorm_strides batch_padded_strides(bnorm_layout l)
{
    return l == BNORM_NCHW ? (bnorm_strides){4, 14} : (bnorm_strides){3, 14};
}

typedef struct fwd_call {
    bnorm_shape shape;
    bool null_shape;
    const float *x;
    const bnorm_strides *xs;
    float *y;
    const bnorm_strides *ys;
    const float *gamma, *beta;
    float eps;
    float *smean, *sinv;
    bool use_running;
    bnorm_running_stats run;
} fwd_call;

static fwd_call fwd_base(bnorm_layout l)
{
    return (fwd_call){
        .shape = {2, 3, 4, l},
        .x = AR(A_X),
        .y = AR(A_Y),
        .gamma = AR(A_GAMMA),
        .beta = AR(A_BETA),
        .eps = 1e-5f,
        .smean = AR(A_SMEAN),
        .sinv = AR(A_SINV),
        .use_running = true,
        .run = {AR(A_RMEAN), AR(A_RVAR), 0.1f, BNORM_MOMENTUM_PYTORCH},
    };
}

/* Runs the call with every runnable table on a fresh arena: want, and for a
 * rejection an unchanged arena. */
static void expect_fwd(const tables *tb, const fwd_call *cl, bnorm_status want,
                       const char *what)
{
    for (size_t ti = 0; ti < tb->n; ti++) {
        arena_reset(true);
        memcpy(arena_snap, arena, sizeof arena);
        bnorm_status st = bnorm_training_forward_with(
            tb->t[ti].k, cl->null_shape ? NULL : &cl->shape, cl->x, cl->xs, cl->y, cl->ys,
            cl->gamma, cl->beta, cl->eps, cl->smean, cl->sinv,
            cl->use_running ? &cl->run : NULL);
        char ctx[200];
        snprintf(ctx, sizeof ctx, "forward %s %s [%s]", layout_name(cl->shape.layout), what,
                 tb->t[ti].label);
        cr_assert_eq(st, want, "%s: returned %s, want %s", ctx, bnorm_status_name(st),
                     bnorm_status_name(want));
        if (want != BNORM_OK)
            expect_arena_unchanged(ctx);
    }
}

typedef struct bwd_call {
    bnorm_shape shape;
    bool null_shape;
    const float *x;
    const bnorm_strides *xs;
    const float *dy;
    const bnorm_strides *dys;
    const float *gamma, *smean, *sinv;
    float *dx;
    const bnorm_strides *dxs;
    float *dgamma, *dbeta;
} bwd_call;

static bwd_call bwd_base(bnorm_layout l)
{
    return (bwd_call){
        .shape = {2, 3, 4, l},
        .x = AR(A_X),
        .dy = AR(A_DY),
        .gamma = AR(A_GAMMA),
        .smean = AR(A_SMEAN),
        .sinv = AR(A_SINV),
        .dx = AR(A_DX),
        .dgamma = AR(A_DG),
        .dbeta = AR(A_DB),
    };
}

static void expect_bwd(const tables *tb, const bwd_call *cl, bnorm_status want,
                       const char *what)
{
    for (size_t ti = 0; ti < tb->n; ti++) {
        arena_reset(false);
        memcpy(arena_snap, arena, sizeof arena);
        bnorm_status st = bnorm_training_backward_with(
            tb->t[ti].k, cl->null_shape ? NULL : &cl->shape, cl->x, cl->xs, cl->dy, cl->dys,
            cl->gamma, cl->smean, cl->sinv, cl->dx, cl->dxs, cl->dgamma, cl->dbeta);
        char ctx[200];
        snprintf(ctx, sizeof ctx, "backward %s %s [%s]", layout_name(cl->shape.layout), what,
                 tb->t[ti].label);
        cr_assert_eq(st, want, "%s: returned %s, want %s", ctx, bnorm_status_name(st),
                     bnorm_status_name(want));
        if (want != BNORM_OK)
            expect_arena_unchanged(ctx);
    }
}

typedef struct frz_call {
    bnorm_shape shape;
    bool null_shape;
    const float *dy;
    const bnorm_strides *dys;
    const float *gamma, *var;
    float eps;
    float *dx;
    const bnorm_strides *dxs;
} frz_call;

static frz_call frz_base(bnorm_layout l)
{
    return (frz_call){
        .shape = {2, 3, 4, l},
        .dy = AR(A_DY),
        .gamma = AR(A_GAMMA),
        .var = AR(A_VAR),
        .eps = 1e-5f,
        .dx = AR(A_DX),
    };
}

static void expect_frz(const tables *tb, const frz_call *cl, bnorm_status want,
                       const char *what)
{
    for (size_t ti = 0; ti < tb->n; ti++) {
        arena_reset(false);
        memcpy(arena_snap, arena, sizeof arena);
        bnorm_status st = bnorm_frozen_backward_with(
            tb->t[ti].k, cl->null_shape ? NULL : &cl->shape, cl->dy, cl->dys, cl->gamma,
            cl->var, cl->eps, cl->dx, cl->dxs);
        char ctx[200];
        snprintf(ctx, sizeof ctx, "frozen backward %s %s [%s]", layout_name(cl->shape.layout),
                 what, tb->t[ti].label);
        cr_assert_eq(st, want, "%s: returned %s, want %s", ctx, bnorm_status_name(st),
                     bnorm_status_name(want));
        if (want != BNORM_OK)
            expect_arena_unchanged(ctx);
    }
}

static const bnorm_layout layouts[] = {BNORM_NCHW, BNORM_NHWC};

Test(training_errors, forward)
{
    tables tb = runnable_tables();
    for (int li = 0; li < 2; li++) {
        bnorm_layout l = layouts[li];
        bnorm_strides pad = padded_strides(l), bpad = batch_padded_strides(l);
        fwd_call cl;

        /* Accepted: the baseline and the allowed corners. */
        cl = fwd_base(l);
        expect_fwd(&tb, &cl, BNORM_OK, "baseline");
        cl = fwd_base(l);
        cl.y = (float *)cl.x;
        expect_fwd(&tb, &cl, BNORM_OK, "y == x, both dense");
        cl = fwd_base(l);
        cl.y = (float *)cl.x;
        cl.xs = cl.ys = &pad;
        expect_fwd(&tb, &cl, BNORM_OK, "y == x, equal strides");
        cl = fwd_base(l);
        cl.smean = cl.sinv = NULL;
        cl.use_running = false;
        cl.gamma = cl.beta = NULL;
        expect_fwd(&tb, &cl, BNORM_OK, "no optional argument");
        cl = fwd_base(l);
        cl.shape = (bnorm_shape){2, 3, 1, l};
        expect_fwd(&tb, &cl, BNORM_OK, "m = 2 (N = 2, spatial = 1)");
        cl = fwd_base(l);
        cl.shape = (bnorm_shape){1, 3, 2, l};
        expect_fwd(&tb, &cl, BNORM_OK, "m = 2 (N = 1, spatial = 2)");
        static const float ok_momenta[] = {0.0f, 1.0f, -0.0f};
        for (size_t k = 0; k < 3; k++)
            for (int conv = 0; conv < 2; conv++) {
                cl = fwd_base(l);
                cl.run.momentum = ok_momenta[k];
                cl.run.convention = (bnorm_momentum_convention)conv;
                expect_fwd(&tb, &cl, BNORM_OK, "momentum at the ends of [0, 1]");
            }
        cl = fwd_base(l);
        cl.eps = 0.0f;
        expect_fwd(&tb, &cl, BNORM_OK, "eps = 0");

        /* Shape. */
        cl = fwd_base(l);
        cl.shape = (bnorm_shape){1, 3, 1, l};
        expect_fwd(&tb, &cl, BNORM_ERR_BAD_SHAPE, "m = 1 (N = 1, spatial = 1)");
        cl = fwd_base(l);
        cl.shape = (bnorm_shape){1, 1, 1, l};
        expect_fwd(&tb, &cl, BNORM_ERR_BAD_SHAPE, "m = 1, C = 1");
        cl = fwd_base(l);
        cl.shape.n = 0;
        expect_fwd(&tb, &cl, BNORM_ERR_BAD_SHAPE, "N = 0");
        cl = fwd_base(l);
        cl.shape.c = 0;
        expect_fwd(&tb, &cl, BNORM_ERR_BAD_SHAPE, "C = 0");
        cl = fwd_base(l);
        cl.shape.spatial = 0;
        expect_fwd(&tb, &cl, BNORM_ERR_BAD_SHAPE, "spatial = 0");
        cl = fwd_base(l);
        cl.shape.layout = (bnorm_layout)7;
        expect_fwd(&tb, &cl, BNORM_ERR_BAD_ENUM, "layout 7");
        cl = fwd_base(l);
        bnorm_strides narrow = {l == BNORM_NCHW ? 3u : 2u, 24};
        cl.xs = &narrow;
        expect_fwd(&tb, &cl, BNORM_ERR_BAD_STRIDE, "x inner stride too small");
        cl = fwd_base(l);
        bnorm_strides short_batch = {pad.inner, pad.batch - 2};
        cl.ys = &short_batch;
        expect_fwd(&tb, &cl, BNORM_ERR_BAD_STRIDE, "y batch stride too small");

        /* Pointers. */
        cl = fwd_base(l);
        cl.null_shape = true;
        expect_fwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL shape");
        cl = fwd_base(l);
        cl.x = NULL;
        expect_fwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL x");
        cl = fwd_base(l);
        cl.y = NULL;
        expect_fwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL y");
        cl = fwd_base(l);
        cl.run.mean = NULL;
        expect_fwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "running with NULL mean");
        cl = fwd_base(l);
        cl.run.var = NULL;
        expect_fwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "running with NULL var");

        /* Values. */
        static const float bad_momenta[] = {NAN, -0.1f, 1.5f, INFINITY, -INFINITY};
        for (size_t k = 0; k < sizeof bad_momenta / sizeof bad_momenta[0]; k++)
            for (int conv = 0; conv < 2; conv++) {
                char what[64];
                snprintf(what, sizeof what, "momentum %g, convention %d",
                         (double)bad_momenta[k], conv);
                cl = fwd_base(l);
                cl.run.momentum = bad_momenta[k];
                cl.run.convention = (bnorm_momentum_convention)conv;
                expect_fwd(&tb, &cl, BNORM_ERR_BAD_VALUE, what);
            }
        static const int bad_conventions[] = {2, -1, 1000};
        for (size_t k = 0; k < 3; k++) {
            cl = fwd_base(l);
            cl.run.convention = (bnorm_momentum_convention)bad_conventions[k];
            expect_fwd(&tb, &cl, BNORM_ERR_BAD_ENUM, "undefined convention");
        }
        static const float bad_eps[] = {NAN, -1e-5f, -INFINITY, INFINITY};
        for (size_t k = 0; k < 4; k++) {
            char what[64];
            snprintf(what, sizeof what, "eps %g", (double)bad_eps[k]);
            cl = fwd_base(l);
            cl.eps = bad_eps[k];
            expect_fwd(&tb, &cl, BNORM_ERR_BAD_VALUE, what);
            cl.use_running = false;
            expect_fwd(&tb, &cl, BNORM_ERR_BAD_VALUE, what);
        }

        /* Aliasing. */
        cl = fwd_base(l);
        cl.smean = cl.y + 5;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "save_mean inside y");
        cl = fwd_base(l);
        cl.sinv = cl.y + 20;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "save_invstd inside y");
        cl = fwd_base(l);
        cl.sinv = cl.smean;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "save_mean == save_invstd");
        cl = fwd_base(l);
        cl.sinv = cl.smean + 2;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "save_invstd overlapping save_mean");
        cl = fwd_base(l);
        cl.smean = (float *)cl.x + 10;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "save_mean inside x");
        cl = fwd_base(l);
        cl.sinv = (float *)cl.gamma;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "save_invstd == gamma");
        cl = fwd_base(l);
        cl.y = AR(A_BETA) - 20;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "y overlapping beta");
        cl = fwd_base(l);
        cl.y = (float *)cl.x;
        cl.ys = &pad;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "y == x, different strides");
        cl.ys = &bpad;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "y == x, different image strides");
        cl = fwd_base(l);
        cl.y = (float *)cl.x + 1;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "y == x + 1");
        cl = fwd_base(l);
        cl.run.var = cl.run.mean;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "running mean == running var");
        cl = fwd_base(l);
        cl.run.mean = cl.smean;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "running mean == save_mean");
        cl = fwd_base(l);
        cl.run.var = cl.y + 3;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "running var inside y");
        cl = fwd_base(l);
        cl.run.mean = (float *)cl.x;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "running mean inside x");
        cl = fwd_base(l);
        cl.run.var = (float *)cl.beta + 1;
        expect_fwd(&tb, &cl, BNORM_ERR_ALIAS, "running var overlapping beta");
    }
}

Test(training_errors, backward)
{
    tables tb = runnable_tables();
    for (int li = 0; li < 2; li++) {
        bnorm_layout l = layouts[li];
        bnorm_strides pad = padded_strides(l), bpad = batch_padded_strides(l);
        bwd_call cl;

        /* Accepted. */
        cl = bwd_base(l);
        expect_bwd(&tb, &cl, BNORM_OK, "baseline");
        cl = bwd_base(l);
        cl.dx = (float *)cl.dy;
        expect_bwd(&tb, &cl, BNORM_OK, "dx == dy, both dense");
        cl = bwd_base(l);
        cl.dx = (float *)cl.dy;
        cl.dys = cl.dxs = &pad;
        expect_bwd(&tb, &cl, BNORM_OK, "dx == dy, equal strides");
        cl = bwd_base(l);
        cl.gamma = NULL;
        cl.dx = NULL;
        expect_bwd(&tb, &cl, BNORM_OK, "gamma NULL, dx NULL");

        /* Shape. */
        cl = bwd_base(l);
        cl.shape = (bnorm_shape){1, 3, 1, l};
        expect_bwd(&tb, &cl, BNORM_ERR_BAD_SHAPE, "m = 1");
        cl = bwd_base(l);
        cl.shape.n = 0;
        expect_bwd(&tb, &cl, BNORM_ERR_BAD_SHAPE, "N = 0");
        cl = bwd_base(l);
        cl.shape.layout = (bnorm_layout)-1;
        expect_bwd(&tb, &cl, BNORM_ERR_BAD_ENUM, "layout -1");
        cl = bwd_base(l);
        bnorm_strides narrow = {l == BNORM_NCHW ? 3u : 2u, 24};
        cl.dys = &narrow;
        expect_bwd(&tb, &cl, BNORM_ERR_BAD_STRIDE, "dy inner stride too small");

        /* Pointers. */
        cl = bwd_base(l);
        cl.null_shape = true;
        expect_bwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL shape");
        cl = bwd_base(l);
        cl.x = NULL;
        expect_bwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL x");
        cl = bwd_base(l);
        cl.dy = NULL;
        expect_bwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL dy");
        cl = bwd_base(l);
        cl.smean = NULL;
        expect_bwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL save_mean");
        cl = bwd_base(l);
        cl.sinv = NULL;
        expect_bwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL save_invstd");
        cl = bwd_base(l);
        cl.dx = NULL;
        cl.dgamma = NULL;
        cl.dbeta = NULL;
        expect_bwd(&tb, &cl, BNORM_ERR_NULL_POINTER, "dx, dgamma, dbeta all NULL");

        /* Aliasing. */
        cl = bwd_base(l);
        cl.dx = (float *)cl.x + 1;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dx overlapping x");
        cl = bwd_base(l);
        cl.dx = (float *)cl.x;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dx == x (only dy may be overwritten)");
        cl = bwd_base(l);
        cl.dx = (float *)cl.dy;
        cl.dxs = &pad;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dx == dy, different strides");
        cl.dxs = &bpad;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dx == dy, different image strides");
        cl = bwd_base(l);
        cl.dx = (float *)cl.dy + 2;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dx == dy + 2");
        cl = bwd_base(l);
        cl.dbeta = cl.dgamma + 1;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dgamma overlapping dbeta");
        cl = bwd_base(l);
        cl.dbeta = cl.dgamma;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dgamma == dbeta");
        cl = bwd_base(l);
        cl.dgamma = (float *)cl.smean;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dgamma == save_mean");
        cl = bwd_base(l);
        cl.dbeta = (float *)cl.sinv + 2;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dbeta overlapping save_invstd");
        cl = bwd_base(l);
        cl.dbeta = (float *)cl.gamma;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dbeta == gamma");
        cl = bwd_base(l);
        cl.dgamma = cl.dx + 10;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dgamma inside dx");
        cl = bwd_base(l);
        cl.dgamma = (float *)cl.dy + 10;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dgamma inside dy");
        cl = bwd_base(l);
        cl.dx = NULL;
        cl.dbeta = (float *)cl.x + 4;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dbeta inside x, dx NULL");
        cl = bwd_base(l);
        cl.dx = AR(A_GAMMA) - 20;
        expect_bwd(&tb, &cl, BNORM_ERR_ALIAS, "dx overlapping gamma");
    }
}

Test(training_errors, frozen_backward)
{
    tables tb = runnable_tables();
    for (int li = 0; li < 2; li++) {
        bnorm_layout l = layouts[li];
        bnorm_strides pad = padded_strides(l), bpad = batch_padded_strides(l);
        frz_call cl;

        cl = frz_base(l);
        expect_frz(&tb, &cl, BNORM_OK, "baseline");
        cl = frz_base(l);
        cl.dx = (float *)cl.dy;
        cl.gamma = NULL;
        expect_frz(&tb, &cl, BNORM_OK, "dx == dy, gamma NULL");
        cl = frz_base(l);
        cl.shape = (bnorm_shape){1, 3, 1, l};
        expect_frz(&tb, &cl, BNORM_OK, "m = 1 (no statistics are computed)");

        cl = frz_base(l);
        cl.null_shape = true;
        expect_frz(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL shape");
        cl = frz_base(l);
        cl.dy = NULL;
        expect_frz(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL dy");
        cl = frz_base(l);
        cl.dx = NULL;
        expect_frz(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL dx");
        cl = frz_base(l);
        cl.var = NULL;
        expect_frz(&tb, &cl, BNORM_ERR_NULL_POINTER, "NULL running_var");
        cl = frz_base(l);
        cl.shape.spatial = 0;
        expect_frz(&tb, &cl, BNORM_ERR_BAD_SHAPE, "spatial = 0");
        cl = frz_base(l);
        cl.shape.layout = (bnorm_layout)2;
        expect_frz(&tb, &cl, BNORM_ERR_BAD_ENUM, "layout 2");
        static const float bad_eps[] = {NAN, -1e-5f, INFINITY};
        for (size_t k = 0; k < 3; k++) {
            cl = frz_base(l);
            cl.eps = bad_eps[k];
            expect_frz(&tb, &cl, BNORM_ERR_BAD_VALUE, "bad eps");
        }
        cl = frz_base(l);
        cl.dx = (float *)cl.dy + 1;
        expect_frz(&tb, &cl, BNORM_ERR_ALIAS, "dx == dy + 1");
        cl = frz_base(l);
        cl.dx = (float *)cl.dy;
        cl.dxs = &pad;
        expect_frz(&tb, &cl, BNORM_ERR_ALIAS, "dx == dy, different strides");
        cl.dxs = &bpad;
        expect_frz(&tb, &cl, BNORM_ERR_ALIAS, "dx == dy, different image strides");
        cl = frz_base(l);
        cl.dx = AR(A_GAMMA) - 20;
        expect_frz(&tb, &cl, BNORM_ERR_ALIAS, "dx overlapping gamma");
        cl = frz_base(l);
        cl.dx = AR(A_VAR) - 22;
        expect_frz(&tb, &cl, BNORM_ERR_ALIAS, "dx overlapping running_var");
    }
}

/* A negative variance needs its own arena value; the arena holds only valid ones. */
Test(training_errors, frozen_backward_negative_var)
{
    tables tb = runnable_tables();
    for (int li = 0; li < 2; li++) {
        for (size_t ti = 0; ti < tb.n; ti++) {
            arena_reset(false);
            AR(A_VAR)[1] = -1.0f;
            memcpy(arena_snap, arena, sizeof arena);
            bnorm_shape s = {2, 3, 4, layouts[li]};
            bnorm_status st = bnorm_frozen_backward_with(tb.t[ti].k, &s, AR(A_DY), NULL,
                                                         AR(A_GAMMA), AR(A_VAR), 1e-5f,
                                                         AR(A_DX), NULL);
            cr_assert_eq(st, BNORM_ERR_BAD_VALUE, "frozen backward %s var[1] = -1 [%s]: %s",
                         layout_name(layouts[li]), tb.t[ti].label, bnorm_status_name(st));
            expect_arena_unchanged("frozen backward, negative var");
        }
    }
}

/* ============================================================================== */
/* 8. Backward subsets                                                            */
/* ============================================================================== */

/* Any non-empty subset of dx, dgamma, dbeta equals those outputs of the full call bit
 * for bit (the sums do not depend on which outputs are wanted). */
static const layout_case subset_cases[] = {
    {{2, 3, 5, BNORM_NCHW}, 0, 0},     {{2, 9, 7, BNORM_NHWC}, 0, 0},
    {{3, 17, 49, BNORM_NCHW}, 2, 3},   {{2, 300, 5, BNORM_NHWC}, 0, 0},
    {{8, 5, 1, BNORM_NCHW}, 0, 0},     {{2, 24, 20000, BNORM_NCHW}, 0, 0},
};

Test(training, backward_subsets, .timeout = 300)
{
    uint64_t base = seed_base();
    tables tb = runnable_tables();
    const float eps = 1e-5f;
    for (size_t ci = 0; ci < sizeof subset_cases / sizeof subset_cases[0]; ci++) {
        const layout_case *lc = &subset_cases[ci];
        bnorm_shape s = lc->shape;
        size_t C = s.c;
        bnorm_rng rng;
        rng_for_case(&rng, base, 8, ci);
        tensor x, dy;
        tensor_alloc(&x, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
        tensor_alloc(&dy, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
        float *gamma = malloc(C * sizeof(float)), *beta = malloc(C * sizeof(float));
        float *smean = malloc(C * sizeof(float)), *sinv = malloc(C * sizeof(float));
        cr_assert(gamma && beta && smean && sinv);
        random_problem(&rng, &x, &dy, gamma, beta);
        for (size_t ti = 0; ti < tb.n; ti++) {
            const bnorm_kernels *kt = tb.t[ti].k;
            char ctx[256];
            describe(ctx, sizeof ctx, "subsets", tb.t[ti].label, &s, &x, base);
            tensor dx_all;
            vec dg_all, db_all;
            tensor_alloc(&dx_all, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
            vec_alloc(&dg_all, C, bnorm_fence_pick(&rng));
            vec_alloc(&db_all, C, bnorm_fence_pick(&rng));
            /* y into dx_all's buffer; backward overwrites it. */
            bnorm_status st = bnorm_training_forward_with(kt, &s, x.p, tstrides(&x), dx_all.p,
                                                          tstrides(&dx_all), gamma, beta, eps,
                                                          smean, sinv, NULL);
            cr_assert_eq(st, BNORM_OK, "%s: forward returned %s", ctx, bnorm_status_name(st));
            st = bnorm_training_backward_with(kt, &s, x.p, tstrides(&x), dy.p, tstrides(&dy),
                                              gamma, smean, sinv, dx_all.p, tstrides(&dx_all),
                                              dg_all.p, db_all.p);
            cr_assert_eq(st, BNORM_OK, "%s: backward returned %s", ctx, bnorm_status_name(st));
            report rep;
            report_init(&rep);
            for (unsigned mask = 1; mask < 7; mask++) {
                tensor dx;
                vec dg, db;
                tensor_alloc(&dx, s, lc->pad_inner, lc->pad_batch, bnorm_fence_pick(&rng));
                vec_alloc(&dg, C, bnorm_fence_pick(&rng));
                vec_alloc(&db, C, bnorm_fence_pick(&rng));
                st = bnorm_training_backward_with(
                    kt, &s, x.p, tstrides(&x), dy.p, tstrides(&dy), gamma, smean, sinv,
                    mask & 1 ? dx.p : NULL, tstrides(&dx), mask & 2 ? dg.p : NULL,
                    mask & 4 ? db.p : NULL);
                cr_assert_eq(st, BNORM_OK, "%s: subset %u returned %s", ctx, mask,
                             bnorm_status_name(st));
                char what[64];
                if (mask & 1) {
                    snprintf(what, sizeof what, "subset %u dx", mask);
                    compare_tensors(&rep, &dx, &dx_all, what);
                }
                if (mask & 2) {
                    snprintf(what, sizeof what, "subset %u dgamma", mask);
                    compare_vecs(&rep, dg.p, dg_all.p, C, what);
                }
                if (mask & 4) {
                    snprintf(what, sizeof what, "subset %u dbeta", mask);
                    compare_vecs(&rep, db.p, db_all.p, C, what);
                }
                cr_expect(tensor_clean_outside(&dx) && bnorm_fence_intact(&dg.f) &&
                              bnorm_fence_intact(&db.f),
                          "%s: subset %u wrote outside an output", ctx, mask);
                tensor_free(&dx);
                vec_free(&dg);
                vec_free(&db);
            }
            EXPECT_REPORT(rep, ctx);
            tensor_free(&dx_all);
            vec_free(&dg_all);
            vec_free(&db_all);
        }
        free(gamma), free(beta), free(smean), free(sinv);
        tensor_free(&x);
        tensor_free(&dy);
    }
}
