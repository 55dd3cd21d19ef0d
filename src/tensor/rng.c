/* rng.c - PCG32 (XSH-RR variant) and the distributions built on it. */
#include "rng.h"

#include <math.h>

void sw_rng_init(sw_rng *rng, uint64_t seed, uint64_t stream) {
    rng->state = 0;
    rng->inc = (stream << 1u) | 1u;
    sw_rng_u32(rng);
    rng->state += seed;
    sw_rng_u32(rng);
}

uint32_t sw_rng_u32(sw_rng *rng) {
    uint64_t old = rng->state;
    rng->state = old * 6364136223846793005ULL + rng->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float sw_rng_uniform(sw_rng *rng) { return (float)(sw_rng_u32(rng) >> 8) * 0x1p-24f; }

uint32_t sw_rng_below(sw_rng *rng, uint32_t n) {
    /* Rejection keeps the draw unbiased: discard the top partial range. */
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t r = sw_rng_u32(rng);
        if (r >= threshold) return r % n;
    }
}

float sw_rng_normal(sw_rng *rng) {
    /* u1 in (0, 1] so that log(u1) is finite. */
    float u1 = 1.0f - sw_rng_uniform(rng);
    float u2 = sw_rng_uniform(rng);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

void sw_rng_shuffle(sw_rng *rng, int *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)sw_rng_below(rng, (uint32_t)(i + 1));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
