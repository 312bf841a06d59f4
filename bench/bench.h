/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench.h: the helpers the benchmark programs (bench/bench-*.c) share:
 * the clock, random numbers, error messages, options, the median of
 * repeated runs, and the scratch directory volumes are made in.
 *
 * Each benchmark is a single .c file built into its own program (see
 * EXTRA_PROGRAMS in Makefile.am), so the helpers live here as static
 * inline functions: a program that does not use one neither carries it
 * nor is warned about it.  Messages on stderr start with @prog, the
 * program's name, as "bench-io: ...".
 */
#ifndef THINMAP_BENCH_H
#define THINMAP_BENCH_H

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "thinmap/create.h"
#include "thinmap/error.h"

#include "../tests/model.h"

#define BENCH_MAX_REPEATS 100

/* The options of the benchmarks that make volumes: -r, -d DIR, -k. */
struct bench_run_opts {
	int repeats;
	const char *dir; /* NULL: a fresh one under $TMPDIR */
	bool keep;
};

/* Seconds on CLOCK_MONOTONIC. */
static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Uniform in [0, @n) without a division in the timed loop. */
static inline uint64_t bench_rng_scaled(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Report that @what failed with -errno @err, and the library's message. */
static inline void bench_fail(const char *prog, const char *what, int err)
{
	const char *msg = tm_get_error();

	fprintf(stderr, "%s: %s: %s%s%s\n", prog, what, strerror(-err),
		*msg ? ": " : "", msg);
}

/*
 * Option @opt's count @arg, a whole number in [1, @max], as strtod()
 * reads it so that "-n 1e6" works; anything else exits with status 2.
 */
static inline uint64_t bench_parse_count(const char *prog, const char *arg,
					 char opt, uint64_t max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || *end || v < 1 || v > max || v != (uint64_t)v) {
		fprintf(stderr, "%s: -%c: bad count '%s'\n", prog, opt, arg);
		exit(2);
	}
	return (uint64_t)v;
}

/* Take option @c into @run if it is -r, -d or -k; false if it is not. */
static inline bool bench_run_opt(const char *prog, int c, char *arg,
				 struct bench_run_opts *run)
{
	switch (c) {
	case 'r':
		run->repeats =
			bench_parse_count(prog, arg, c, BENCH_MAX_REPEATS);
		return true;
	case 'd':
		run->dir = arg;
		return true;
	case 'k':
		run->keep = true;
		return true;
	}
	return false;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sort @v[0..@n) in place, so @v[0] is the least, and return the median. */
static inline double bench_median(double *v, int n)
{
	qsort(v, n, sizeof(v[0]), bench_cmp_double);
	return v[n / 2];
}

/*
 * The scratch directory, malloced: @dir if the user gave one (-d), else a
 * fresh thinmap-bench-XXXXXX under $TMPDIR or /tmp.  NULL on failure.
 */
static inline char *bench_make_scratch(const char *prog, const char *dir)
{
	const char *tmp = getenv("TMPDIR");
	char *path;

	if (dir)
		return strdup(dir);
	if (asprintf(&path, "%s/thinmap-bench-XXXXXX", tmp ? tmp : "/tmp") < 0)
		return NULL;
	if (!mkdtemp(path)) {
		fprintf(stderr, "%s: mkdtemp: %s\n", prog, strerror(errno));
		free(path);
		return NULL;
	}
	return path;
}

static inline int bench_remove_one(const char *path, const struct stat *st,
				   int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path))
		perror(path);
	return 0;
}

/* Remove @dir and everything in it, saying what could not be removed. */
static inline void bench_remove_tree(const char *dir)
{
	nftw(dir, bench_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Create a volume of @bytes, as much capacity as size, in @dir with the
 * default geometry; fills @sb.  Returns 0 or -errno, reported.
 */
static inline int bench_create_volume(const char *prog, const char *dir,
				      uint64_t bytes, struct thinmap_sb *sb)
{
	struct create_opts co = { .size = bytes, .capacity = bytes };
	int ret;

	ret = create_plan(&co, sb);
	if (!ret)
		ret = create_volume(dir, sb);
	if (ret)
		bench_fail(prog, "creating the volume", ret);
	return ret;
}

#endif
