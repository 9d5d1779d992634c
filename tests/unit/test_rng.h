/* test_rng.h: the unit tests' pseudo-random numbers, xorshift64
 * (Marsaglia, 2003) from a fixed seed, so that a failure reproduces. */
#ifndef FERRY_TEST_RNG_H
#define FERRY_TEST_RNG_H

#include <stdint.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static inline uint64_t rng_next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#endif /* FERRY_TEST_RNG_H */
