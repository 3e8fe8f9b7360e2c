/*
 * Inference with bnorm, as an engine would do it: load a network's batch-norm
 * parameters from a file (examples/data/README.md describes the format), fold each
 * layer once into scale and shift, then run BN + ReLU over a batch of images per
 * layer, timed. Every output of the first run is checked against the formula in
 * double, within the documented bound (docs/guide.md: 2 units of
 * 2^-23 * (|x * scale| + |shift|) from statistics).
 *
 *   inference PARAMS.bnp [--batch N] [--iters N] [--nhwc]
 *
 * Exit status: 0 if every output was within the bound, 1 if not, 2 for bad usage or
 * a bad parameter file.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bnorm.h>

#define MAX_NAME 63
#define MAX_CHANNELS 65536
#define MAX_SIDE 4096

/* ============================================================================== */
/* The parameter file                                                             */
/* ============================================================================== */

typedef struct layer {
    char name[MAX_NAME + 1];
    size_t c, h, w;
    float eps;
    float *gamma, *beta, *mean, *var; /* as loaded */
    float *scale, *shift;             /* folded once */
} layer;

typedef struct network {
    layer *layers;
    size_t count;
} network;

/* A tokenizer over the whole file: white space separates, '#' comments to the end
 * of the line; line numbers for messages. */
typedef struct reader {
    const char *path;
    char *text, *p;
    unsigned line;
    char token[128];
} reader;

static int fail(const reader *r, const char *what)
{
    fprintf(stderr, "%s:%u: %s\n", r->path, r->line, what);
    return -1;
}

/* The next token into r->token; 0, or -1 at the end of the file. */
static int next(reader *r)
{
    for (;;) {
        while (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n')
            r->line += *r->p++ == '\n';
        if (*r->p != '#')
            break;
        while (*r->p && *r->p != '\n')
            r->p++;
    }
    if (!*r->p)
        return -1;
    size_t n = 0;
    while (*r->p && !strchr(" \t\r\n#", *r->p)) {
        if (n + 1 < sizeof r->token)
            r->token[n++] = *r->p;
        r->p++;
    }
    r->token[n] = '\0';
    return 0;
}

static int expect_word(reader *r, const char *word)
{
    char msg[160];
    if (next(r) != 0 || strcmp(r->token, word) != 0) {
        snprintf(msg, sizeof msg, "expected '%s'", word);
        return fail(r, msg);
    }
    return 0;
}

static int read_size(reader *r, const char *what, size_t max, size_t *out)
{
    char msg[160];
    snprintf(msg, sizeof msg, "expected %s, an integer from 1 to %zu", what, max);
    if (next(r) != 0)
        return fail(r, msg);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(r->token, &end, 10);
    if (*end || errno || r->token[0] == '-' || v < 1 || v > max)
        return fail(r, msg);
    *out = (size_t)v;
    return 0;
}

static int read_float(reader *r, const char *what, float *out)
{
    char msg[160];
    snprintf(msg, sizeof msg, "expected %s, a number", what);
    if (next(r) != 0)
        return fail(r, msg);
    char *end;
    float v = strtof(r->token, &end);
    if (end == r->token || *end)
        return fail(r, msg);
    *out = v;
    return 0;
}

static int read_array(reader *r, const char *key, size_t c, float **out)
{
    if (expect_word(r, key) != 0)
        return -1;
    *out = malloc(c * sizeof **out);
    if (!*out)
        return fail(r, "out of memory");
    for (size_t i = 0; i < c; i++) {
        if (read_float(r, key, &(*out)[i]) != 0)
            return -1;
    }
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len - 1 == 0) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) { /* a NUL byte: not a text file */
        free(buf);
        return NULL;
    }
    return buf;
}

static int read_layer(reader *r, layer *l)
{
    if (next(r) != 0 || strlen(r->token) == 0)
        return fail(r, "expected a layer name");
    if (strlen(r->token) > MAX_NAME)
        return fail(r, "layer name longer than 63 characters");
    strcpy(l->name, r->token);
    if (read_size(r, "the channel count", MAX_CHANNELS, &l->c) != 0 ||
        read_float(r, "eps", &l->eps) != 0)
        return -1;
    if (!(l->eps >= 0.0f) || isinf(l->eps))
        return fail(r, "eps must be finite and >= 0");
    if (read_size(r, "the height", MAX_SIDE, &l->h) != 0 ||
        read_size(r, "the width", MAX_SIDE, &l->w) != 0)
        return -1;
    if (read_array(r, "gamma", l->c, &l->gamma) != 0 ||
        read_array(r, "beta", l->c, &l->beta) != 0 ||
        read_array(r, "mean", l->c, &l->mean) != 0 ||
        read_array(r, "var", l->c, &l->var) != 0)
        return -1;
    for (size_t i = 0; i < l->c; i++) {
        if (l->var[i] < 0.0f)
            return fail(r, "a negative variance");
    }
    return 0;
}

static void network_free(network *net)
{
    for (size_t i = 0; i < net->count; i++) {
        layer *l = &net->layers[i];
        free(l->gamma);
        free(l->beta);
        free(l->mean);
        free(l->var);
        free(l->scale);
        free(l->shift);
    }
    free(net->layers);
    net->layers = NULL;
    net->count = 0;
}

/* Loads path into *net; 0, or -1 after printing why. */
static int load_network(const char *path, network *net)
{
    reader r = {path, NULL, NULL, 1, {0}};
    *net = (network){NULL, 0};
    if (!(r.text = slurp(path))) {
        fprintf(stderr, "%s: cannot read it as a text file\n", path);
        return -1;
    }
    r.p = r.text;
    int st = expect_word(&r, "bnorm-params");
    if (st == 0)
        st = expect_word(&r, "1");
    while (st == 0 && next(&r) == 0) {
        if (strcmp(r.token, "layer") != 0) {
            st = fail(&r, "expected 'layer'");
            break;
        }
        layer *more = realloc(net->layers, (net->count + 1) * sizeof *more);
        if (!more) {
            st = fail(&r, "out of memory");
            break;
        }
        net->layers = more;
        layer *l = &net->layers[net->count++];
        memset(l, 0, sizeof *l);
        st = read_layer(&r, l);
    }
    if (st == 0 && net->count == 0)
        st = fail(&r, "no layers");
    free(r.text);
    if (st != 0)
        network_free(net);
    return st;
}

/* ============================================================================== */
/* Running it                                                                     */
/* ============================================================================== */

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Deterministic inputs: what a convolution might produce, roughly N(mean, var). */
static float pseudo_random(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 40) / (double)(1u << 24) * 4.0 - 2.0);
}

/* Checks y against relu(gamma * (x - mean) / sqrt(var + eps) + beta) in double,
 * within 2 units of 2^-23 * (|x * scale| + |shift|). Returns the worst error in those
 * units. */
static double check_layer(const layer *l, const bnorm_shape *s, const float *x,
                          const float *y)
{
    double worst = 0;
    size_t hw = s->spatial;
    for (size_t n = 0; n < s->n; n++)
        for (size_t c = 0; c < s->c; c++)
            for (size_t i = 0; i < hw; i++) {
                size_t at = s->layout == BNORM_NCHW ? (n * s->c + c) * hw + i
                                                    : (n * hw + i) * s->c + c;
                double v = (double)l->gamma[c] * ((double)x[at] - l->mean[c]) /
                               sqrt((double)l->var[c] + l->eps) +
                           l->beta[c];
                double ref = v < 0 ? 0 : v;
                double unit = 0x1p-23 * (fabs((double)x[at] * l->scale[c]) +
                                         fabs((double)l->shift[c])) +
                              0x1p-149;
                double err = fabs((double)y[at] - ref) / unit;
                if (!(err <= worst))
                    worst = err; /* NaN too */
            }
    return worst;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: inference PARAMS.bnp [--batch N] [--iters N] [--nhwc]\n"
               "  --batch N  images per batch (default 8)\n"
               "  --iters N  timed runs per layer; the best is reported (default 20)\n"
               "  --nhwc     channel-last tensors (default NCHW)\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    size_t batch = 8, iters = 20;
    bnorm_layout layout = BNORM_NCHW;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            batch = strtoul(argv[++i], &end, 10);
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            iters = strtoul(argv[++i], &end, 10);
        } else if (strcmp(argv[i], "--nhwc") == 0) {
            layout = BNORM_NHWC;
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
        if ((end && *end) || batch < 1 || batch > 4096 || iters < 1) {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    network net;
    if (load_network(path, &net) != 0)
        return 2;

    /* Once, at load time: fold every layer. */
    for (size_t i = 0; i < net.count; i++) {
        layer *l = &net.layers[i];
        l->scale = malloc(l->c * sizeof *l->scale);
        l->shift = malloc(l->c * sizeof *l->shift);
        if (!l->scale || !l->shift) {
            fprintf(stderr, "out of memory\n");
            network_free(&net);
            return 2;
        }
        bnorm_status st = bnorm_fold(l->c, l->gamma, l->beta, l->mean, l->var, l->eps,
                                     l->scale, l->shift);
        if (st != BNORM_OK) {
            fprintf(stderr, "%s: bnorm_fold: %s\n", l->name, bnorm_status_name(st));
            network_free(&net);
            return 2;
        }
    }

    printf("bnorm %s, ISA %s; %zu layers from %s; batch %zu, %s, BN + ReLU, best of %zu\n",
           bnorm_version_string(), bnorm_isa_name(bnorm_active_isa()), net.count, path,
           batch, layout == BNORM_NCHW ? "NCHW" : "NHWC", iters);
    printf("err: worst error of the first run, in units of 2^-23 * (|x * scale| + |shift|)"
           " (bound 2)\n");
    printf("%-12s %5s %9s %10s %9s %9s\n", "layer", "C", "HxW", "time/us", "GB/s", "err");

    bnorm_activation relu = {.kind = BNORM_ACT_RELU, .lo = 0, .hi = 0};
    int failed = 0;
    double total = 0;
    uint64_t seed = 0x5eed;
    for (size_t i = 0; i < net.count && !failed; i++) {
        const layer *l = &net.layers[i];
        bnorm_shape shape = {.n = batch, .c = l->c, .spatial = l->h * l->w,
                             .layout = layout};
        size_t count = batch * l->c * l->h * l->w;
        float *x = malloc(count * sizeof *x), *y = malloc(count * sizeof *y);
        if (!x || !y) {
            fprintf(stderr, "out of memory\n");
            free(x);
            free(y);
            network_free(&net);
            return 2;
        }
        for (size_t k = 0; k < count; k++)
            x[k] = pseudo_random(&seed);

        double best = INFINITY, worst = 0;
        for (size_t it = 0; it < iters; it++) {
            double t0 = now_seconds();
            bnorm_status st = bnorm_inference_apply(&shape, x, NULL, y, NULL, l->scale,
                                                    l->shift, &relu);
            double t = now_seconds() - t0;
            if (st != BNORM_OK) {
                fprintf(stderr, "%s: bnorm_inference_apply: %s\n", l->name,
                        bnorm_status_name(st));
                failed = 1;
                break;
            }
            if (t < best)
                best = t;
            if (it == 0)
                worst = check_layer(l, &shape, x, y);
        }
        if (!failed) {
            total += best;
            char hw[24];
            snprintf(hw, sizeof hw, "%zux%zu", l->h, l->w);
            printf("%-12s %5zu %9s %10.1f %9.2f %9.3f\n", l->name, l->c, hw, best * 1e6,
                   8.0 * (double)count / best * 1e-9, worst);
            if (!(worst <= 2.0)) {
                fprintf(stderr, "%s: an output is %.3g units from the reference (bound 2)\n",
                        l->name, worst);
                failed = 1;
            }
        }
        free(x);
        free(y);
    }
    if (!failed)
        printf("all layers: %.1f us per batch, %.2f us per image\n", total * 1e6,
               total * 1e6 / (double)batch);
    network_free(&net);
    return failed;
}
