/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers for the model-based randomized unit tests.
 *
 * Each randomized test runs with fixed seeds, so that a failure can be
 * replayed, plus one fresh seed per run, so that every run explores new
 * sequences.  The seed of a failing run is printed; THINMAP_TEST_SEED=N
 * runs seed N alone.  THINMAP_TEST_QUICK=1 (set by `make check-valgrind`)
 * divides the operation counts by 20.
 */
#ifndef THINMAP_TESTS_MODEL_H
#define THINMAP_TESTS_MODEL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* splitmix64: small, fast, and good enough to drive operation mixes. */
struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

/* Scale an operation count for quick (valgrind) runs. */
static inline unsigned long model_ops(unsigned long n)
{
	const char *q = getenv("THINMAP_TEST_QUICK");

	return q && *q == '1' ? n / 20 : n;
}

/*
 * Run @fn(seed) for each fixed seed and one fresh one, or for the seed in
 * THINMAP_TEST_SEED alone.  @fn returns nonzero on failure; the seed is
 * then printed.  Returns the number of failing seeds.
 */
static inline int model_run_seeds(const char *name, int (*fn)(uint64_t seed))
{
	static const uint64_t fixed[] = { 1, 42, 0xdeadbeef };
	const char *env = getenv("THINMAP_TEST_SEED");
	uint64_t seeds[4];
	size_t n = 0, i;
	int failures = 0;

	if (env) {
		seeds[n++] = strtoull(env, NULL, 0);
	} else {
		for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
			seeds[n++] = fixed[i];
		seeds[n++] = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	}
	for (i = 0; i < n; i++) {
		if (fn(seeds[i]) != 0) {
			fprintf(stderr,
				"%s: FAILED with seed %llu "
				"(replay: THINMAP_TEST_SEED=%llu)\n",
				name, (unsigned long long)seeds[i],
				(unsigned long long)seeds[i]);
			failures++;
		}
	}
	return failures;
}

/* ---- CUnit runner shared by the unit tests ---- */
#include <CUnit/Basic.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

/*
 * Run the NULL-terminated @tests as one CUnit suite @suite, verbosely.
 * Returns the process exit status: 0 if every assertion passed.
 */
static inline int unit_run(const char *suite, const struct unit_test *tests)
{
	CU_pSuite s;
	unsigned int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 99;
	s = CU_add_suite(suite, NULL, NULL);
	for (; s && tests->name; tests++)
		if (!CU_add_test(s, tests->name, tests->fn))
			s = NULL;
	if (!s) {
		CU_cleanup_registry();
		return 99;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}

#endif
