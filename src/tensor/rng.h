/* rng.h - a small deterministic random number generator (PCG32, O'Neill 2014).
 *
 * Every random choice in shrinkwrap (initialisation, shuffling, augmentation, dropout) draws from
 * an sw_rng seeded from the user's --seed, so a run is reproducible: same seed, same threads,
 * same result. Caller storage; no allocation.
 */
#ifndef SW_RNG_H
#define SW_RNG_H

#include <stdint.h>

typedef struct sw_rng {
    uint64_t state;
    uint64_t inc;
} sw_rng;

/* Seeds a generator; `stream` selects one of 2^63 independent sequences for the same seed. */
void sw_rng_init(sw_rng *rng, uint64_t seed, uint64_t stream);
uint32_t sw_rng_u32(sw_rng *rng);
/* Uniform in [0, 1) with 24 random bits. */
float sw_rng_uniform(sw_rng *rng);
/* Uniform integer in [0, n), unbiased. n > 0. */
uint32_t sw_rng_below(sw_rng *rng, uint32_t n);
/* Standard normal (Box-Muller). */
float sw_rng_normal(sw_rng *rng);
/* Fisher-Yates shuffle of idx[0..n-1]. */
void sw_rng_shuffle(sw_rng *rng, int *idx, int n);

#endif
