/* splitmix64: small, fast, and the same sequence on every architecture. */
#include <math.h>
#include <stdlib.h>

#include "conformance.h"

uint64_t bnorm_conf_seed(uint64_t fallback)
{
    const char *s = getenv("BNORM_TEST_SEED");
    if (!s || !*s)
        return fallback;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    return *end ? fallback : (uint64_t)v;
}

void bnorm_rng_init(bnorm_rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t bnorm_rng_next(bnorm_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double bnorm_rng_uniform(bnorm_rng *r)
{
    return (double)(bnorm_rng_next(r) >> 11) * 0x1p-53;
}

double bnorm_rng_normal(bnorm_rng *r)
{
    /* Box-Muller; 1 - u keeps the log argument in (0, 1]. */
    double u = 1.0 - bnorm_rng_uniform(r), v = bnorm_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

size_t bnorm_rng_below(bnorm_rng *r, size_t n)
{
    return (size_t)(bnorm_rng_uniform(r) * (double)n);
}
