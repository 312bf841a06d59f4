/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-emap: speed and memory of the in-memory extent map at scale.
 *
 * Builds an extent map of N extents (default 10^6) that cannot merge:
 * lengths 1..16 blocks, a one-block hole after each, states alternating
 * MAPPED and UNWRITTEN.  It does so twice, inserting in ascending logical
 * order ("sequential") and in shuffled order ("random"), and for each map
 * measures:
 *
 *   insert/s      emap_set() of every extent into an empty map
 *   tree B/ext    emap_bytes() / emap_count(): the tree's own accounting
 *   heap B/ext    growth of the malloc heap (mallinfo2: in-use bytes,
 *                 chunk headers included) across the build, per extent;
 *                 this is the measured number the target applies to
 *   rss B/ext     growth of the resident set across the build, per extent
 *                 (informational: includes free memory malloc keeps)
 *   lookup rnd/s  emap_lookup() at uniformly random blocks of the whole
 *                 mapped range (holes included), one thread
 *   lookup seq/s  emap_lookup() striding through the range (-s blocks)
 *   remove/s      emap_remove() of each extent, in insertion order
 *
 * Before timing, every extent and the hole after it are looked up and
 * checked, so the numbers are for a map that holds what it should.
 *
 * Output: a table, then one "RESULT name value unit" line per metric and
 * one "TARGET" line per target with PASS or FAIL.  The targets hold for
 * both orders: >= 5e6 random lookups/s, <= 48 heap bytes per extent.
 * Exit status: 0 all targets pass, 1 a target fails, 2 an error.
 */
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thinmap/emap.h"
#include "thinmap/extent.h"

#include "../tests/model.h"
#include "bench.h"

#define PROG "bench-emap"

#define TARGET_LOOKUPS_PER_S 5e6
#define TARGET_BYTES_PER_EXTENT 48.0
#define MAX_EXTENT_LEN 16
#define NR_AGS 4

struct bench_opts {
	size_t nr_extents;
	uint64_t nr_lookups;
	uint64_t stride;
	uint64_t seed;
};

struct order_result {
	const char *name;
	double insert_per_s;
	double remove_per_s;
	double lookup_rnd_per_s;
	double lookup_seq_per_s;
	double tree_bytes; /* per extent */
	double heap_bytes; /* per extent */
	double rss_bytes; /* per extent */
};

/* Bytes malloc has handed out and not had back, headers included. */
static double heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (double)mi.uordblks + (double)mi.hblkhd;
}

/* Resident bytes, read without stdio so that reading allocates nothing. */
static double rss_bytes(void)
{
	unsigned long size, resident;
	char buf[128];
	ssize_t n;
	int fd;

	fd = open("/proc/self/statm", O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return 0;
	return (double)resident * sysconf(_SC_PAGESIZE);
}

/*
 * The extents, in logical order: a one-block hole after each, so no two
 * are adjacent, and physical blocks spread over a few AGs.
 *
 *   | e0 |.| e1  |.|e2|.| ...     (. = hole)
 */
static struct extent *make_extents(size_t n, struct rng *r, uint64_t *endp)
{
	struct extent *exts = calloc(n, sizeof(*exts));
	uint64_t lblk = 0;
	size_t i;

	if (!exts)
		return NULL;
	for (i = 0; i < n; i++) {
		exts[i].lblk = lblk;
		exts[i].len = 1 + rng_below(r, MAX_EXTENT_LEN);
		exts[i].pblk = PBLK(i % NR_AGS, lblk);
		exts[i].state = i % 2 ? EXT_UNWRITTEN : EXT_MAPPED;
		lblk += exts[i].len + 1;
	}
	*endp = lblk;
	return exts;
}

static void shuffle(struct extent *exts, size_t n, struct rng *r)
{
	struct extent tmp;
	size_t i, j;

	for (i = n - 1; i > 0; i--) {
		j = rng_below(r, i + 1);
		tmp = exts[i];
		exts[i] = exts[j];
		exts[j] = tmp;
	}
}

static int build_map(struct emap *map, const struct extent *exts, size_t n)
{
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = emap_set(map, &exts[i]);
		if (ret) {
			fprintf(stderr, "emap_set #%zu: %s\n", i,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static bool same_extent(const struct extent *a, const struct extent *b)
{
	return a->lblk == b->lblk && a->len == b->len && a->pblk == b->pblk &&
	       a->state == b->state;
}

/* Look up the middle of each extent and the hole after it. */
static int verify_map(const struct emap *map, const struct extent *exts,
		      size_t n)
{
	struct extent got;
	size_t i;

	if (emap_count(map) != n) {
		fprintf(stderr,
			"map holds %zu extents, not %zu: did some merge?\n",
			emap_count(map), n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		emap_lookup(map, exts[i].lblk + exts[i].len / 2, &got);
		if (!same_extent(&got, &exts[i]))
			goto bad;
		emap_lookup(map, extent_end(&exts[i]), &got);
		if (got.state != EXT_HOLE || got.lblk != extent_end(&exts[i]))
			goto bad;
	}
	return 0;
bad:
	fprintf(stderr,
		"lookup near block %llu: wrong extent [%llu, +%llu) %s\n",
		(unsigned long long)exts[i].lblk, (unsigned long long)got.lblk,
		(unsigned long long)got.len, extent_state_name(got.state));
	return -1;
}

/*
 * Lookups at random blocks of [0, @end).  The results are summed into a
 * volatile so that none can be optimized away.
 */
static double time_lookups_random(const struct emap *map, uint64_t end,
				  uint64_t count, uint64_t seed)
{
	struct rng r = { seed };
	struct extent ext;
	uint64_t i, sum = 0;
	volatile uint64_t sink;
	double t0 = bench_now();

	for (i = 0; i < count; i++) {
		emap_lookup(map, bench_rng_scaled(&r, end), &ext);
		sum += ext.lblk + ext.state;
	}
	sink = sum;
	(void)sink;
	return count / (bench_now() - t0);
}

/* Lookups every @stride blocks through [0, @end), wrapping around. */
static double time_lookups_stride(const struct emap *map, uint64_t end,
				  uint64_t count, uint64_t stride)
{
	struct extent ext;
	uint64_t i, lblk = 0, sum = 0;
	volatile uint64_t sink;
	double t0 = bench_now();

	for (i = 0; i < count; i++) {
		emap_lookup(map, lblk, &ext);
		sum += ext.lblk + ext.state;
		lblk += stride;
		if (lblk >= end)
			lblk -= end;
	}
	sink = sum;
	(void)sink;
	return count / (bench_now() - t0);
}

static int remove_all(struct emap *map, const struct extent *exts, size_t n)
{
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = emap_remove(map, exts[i].lblk, exts[i].len);
		if (ret) {
			fprintf(stderr, "emap_remove #%zu: %s\n", i,
				strerror(-ret));
			return ret;
		}
	}
	if (emap_count(map) != 0) {
		fprintf(stderr, "%zu extents left after removing all\n",
			emap_count(map));
		return -1;
	}
	return 0;
}

/* Build the map from @exts in their order and measure its memory. */
static int build_and_weigh(struct emap *map, const struct extent *exts,
			   size_t n, struct order_result *res)
{
	double heap0, rss0, t0;

	malloc_trim(0);
	heap0 = heap_in_use();
	rss0 = rss_bytes();
	t0 = bench_now();
	emap_init(map);
	if (build_map(map, exts, n))
		return -1;
	res->insert_per_s = n / (bench_now() - t0);
	res->heap_bytes = (heap_in_use() - heap0) / n;
	res->rss_bytes = (rss_bytes() - rss0) / n;
	res->tree_bytes = (double)emap_bytes(map) / emap_count(map);
	return 0;
}

static int run_order(const struct bench_opts *o, struct extent *exts,
		     uint64_t end, struct order_result *res)
{
	struct emap map;
	double t0;
	int ret = -1;

	if (build_and_weigh(&map, exts, o->nr_extents, res))
		goto out;
	if (verify_map(&map, exts, o->nr_extents))
		goto out;
	res->lookup_rnd_per_s =
		time_lookups_random(&map, end, o->nr_lookups, o->seed + 1);
	res->lookup_seq_per_s =
		time_lookups_stride(&map, end, o->nr_lookups, o->stride);
	t0 = bench_now();
	if (remove_all(&map, exts, o->nr_extents))
		goto out;
	res->remove_per_s = o->nr_extents / (bench_now() - t0);
	ret = 0;
out:
	emap_destroy(&map);
	return ret;
}

static void print_header(const struct bench_opts *o, uint64_t end)
{
	printf("bench-emap: %zu extents of 1..%d blocks with 1-block holes "
	       "over %llu blocks; %llu lookups per pattern, stride %llu, "
	       "seed %llu\n\n",
	       o->nr_extents, MAX_EXTENT_LEN, (unsigned long long)end,
	       (unsigned long long)o->nr_lookups, (unsigned long long)o->stride,
	       (unsigned long long)o->seed);
	printf("%-10s %11s %11s %13s %13s %7s %7s %7s\n", "order", "insert/s",
	       "remove/s", "lookup rnd/s", "lookup seq/s", "tree B", "heap B",
	       "rss B");
}

static void print_row(const struct order_result *r)
{
	printf("%-10s %11.0f %11.0f %13.0f %13.0f %7.1f %7.1f %7.1f\n", r->name,
	       r->insert_per_s, r->remove_per_s, r->lookup_rnd_per_s,
	       r->lookup_seq_per_s, r->tree_bytes, r->heap_bytes, r->rss_bytes);
}

static void print_results(const struct order_result *r)
{
	printf("RESULT emap.%s.insert %.0f ops/s\n", r->name, r->insert_per_s);
	printf("RESULT emap.%s.remove %.0f ops/s\n", r->name, r->remove_per_s);
	printf("RESULT emap.%s.lookup_random %.0f ops/s\n", r->name,
	       r->lookup_rnd_per_s);
	printf("RESULT emap.%s.lookup_stride %.0f ops/s\n", r->name,
	       r->lookup_seq_per_s);
	printf("RESULT emap.%s.tree_bytes_per_extent %.2f B\n", r->name,
	       r->tree_bytes);
	printf("RESULT emap.%s.heap_bytes_per_extent %.2f B\n", r->name,
	       r->heap_bytes);
	printf("RESULT emap.%s.rss_bytes_per_extent %.2f B\n", r->name,
	       r->rss_bytes);
}

/* Print one target line; returns true if it passes. */
static bool check_target(const char *what, const char *order, double value,
			 double target, bool at_least)
{
	bool pass = at_least ? value >= target : value <= target;

	printf("TARGET emap.%s.%s %s %.6g: %s (%.6g, %+.1f%%)\n", order, what,
	       at_least ? ">=" : "<=", target, pass ? "PASS" : "FAIL", value,
	       100.0 * (value - target) / target);
	return pass;
}

static bool check_targets(const struct order_result *r)
{
	bool pass = true;

	pass &= check_target("lookup_random", r->name, r->lookup_rnd_per_s,
			     TARGET_LOOKUPS_PER_S, true);
	pass &= check_target("heap_bytes_per_extent", r->name, r->heap_bytes,
			     TARGET_BYTES_PER_EXTENT, false);
	return pass;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-emap [-n EXTENTS] [-l LOOKUPS] "
			"[-s STRIDE] [-S SEED]\n");
	exit(2);
}

static void parse_opts(int argc, char **argv, struct bench_opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "n:l:s:S:h")) != -1) {
		switch (c) {
		case 'n':
			o->nr_extents =
				bench_parse_count(PROG, optarg, c, 1e12);
			break;
		case 'l':
			o->nr_lookups =
				bench_parse_count(PROG, optarg, c, 1e12);
			break;
		case 's':
			o->stride = bench_parse_count(PROG, optarg, c, 1e12);
			break;
		case 'S':
			o->seed = bench_parse_count(PROG, optarg, c, 1e12);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.nr_extents = 1000000,
		.nr_lookups = 10000000,
		.stride = 4,
		.seed = 1,
	};
	struct order_result res[2] = { { .name = "sequential" },
				       { .name = "random" } };
	struct rng r;
	struct extent *exts;
	uint64_t end;
	bool pass = true;
	int i;

	parse_opts(argc, argv, &o);
	r.s = o.seed;
	exts = make_extents(o.nr_extents, &r, &end);
	if (!exts) {
		perror("bench-emap");
		return 2;
	}
	print_header(&o, end);
	for (i = 0; i < 2; i++) {
		if (i == 1)
			shuffle(exts, o.nr_extents, &r);
		if (run_order(&o, exts, end, &res[i]))
			return 2;
		print_row(&res[i]);
	}
	printf("\n");
	for (i = 0; i < 2; i++)
		print_results(&res[i]);
	for (i = 0; i < 2; i++)
		pass &= check_targets(&res[i]);
	free(exts);
	return pass ? 0 : 1;
}
