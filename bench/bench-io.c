/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-io: the buffered I/O path in process, one thread, no NBD.
 *
 * Each run creates a fresh 4 GiB volume (4 GiB capacity, default
 * geometry) and opens it with a page cache big enough for everything the
 * timed phases write (-c, default 1 GiB) and a dirty limit as big as the
 * cache, so that no writeback runs while they are timed: the numbers are
 * those of the cache path (iomap_begin, delalloc reservation, folio
 * lookup and copy, bitmaps), not of the disk.  volume_stat() checks this
 * after each phase.  The I/O buffer is page aligned, or -a bytes past a
 * page boundary.  The volume's layout, in bytes:
 *
 *   0          SEQ           SEQ+REGION      SEQ+2*REGION
 *   | seq write | random region | small-cache region |
 *
 * The phases, in this order:
 *
 *   seq write        volume_pwrite() of 1 MiB, in order, over SEQ bytes
 *                    (-s, default 512 MiB) of holes: GB/s (1e9 bytes)
 *   rand write hole  4 KiB writes at 4 KiB-aligned offsets of the random
 *                    region (-R, default 256 MiB) in shuffled order, each
 *                    block once: every write lands in a hole, the
 *                    delalloc reservation path; ops/s
 *   rand write over  -n (default 2^20) 4 KiB writes at uniformly random
 *                    blocks of the same region, now all delalloc and
 *                    dirty in the cache: the overwrite path; ops/s
 *   rand read        -n 4 KiB reads at random blocks of the region, all
 *                    in the cache; ops/s
 *   flush            volume_flush() of all of the above (SEQ + REGION
 *                    dirty bytes): seconds (informational)
 *   again, warm      volume_trim() of the sequential range and the
 *                    region, which makes them holes again and frees
 *                    their folios but not the cache's memory, then the
 *                    sequential and hole writes once more
 *   small cache      the volume closed and reopened with a 16 MiB cache
 *                    (default dirty limit), then the shuffled hole pass
 *                    over the next region: writeback runs inside the
 *                    timed loop; ops/s, and the flush after it
 *                    (informational)
 *
 * The first sequential and hole writes are the cache's first use of its
 * memory, and pay the kernel's page faults (zeroing every page) inside
 * the timed loop; they are reported as "cold" and are informational.  A
 * server pays that once per cache lifetime: the targets apply to the
 * writes after the trim, into memory the cache already has.
 *
 * Every 4 KiB block written carries its volume offset and the phase in
 * its first and last 8 bytes; after the timed phases everything is read
 * back and checked, through the small cache, so from the AG files.
 *
 * Options: -s, -R, -n as above, -c the cache size, -a the buffer's
 * offset, -r runs (default 3; the median is reported), -S seed, -d DIR
 * to work in DIR (which must not exist or be empty) instead of a fresh
 * directory under $TMPDIR or /tmp, -k to keep the volumes (one per run,
 * DIR/run-N).  The volumes are removed at the end otherwise.
 *
 * Output: a table, "RESULT name value unit" lines, and "TARGET" lines with
 * PASS or FAIL on the medians: seq write (after trim) >= 2 GB/s, random
 * hole writes (after trim) and overwrites >= 10^6 ops/s, random reads
 * >= 1.5 * 10^6 ops/s.  Exit status: 0 all targets pass, 1 a target
 * fails, 2 an error.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thinmap/create.h"
#include "thinmap/size.h"
#include "thinmap/volume.h"

#include "../tests/model.h"
#include "bench.h"

#define PROG "bench-io"

#define VOLUME_BYTES (UINT64_C(4) << 30)
#define SEQ_IO (1u << 20)
#define RAND_IO 4096u
#define SMALL_CACHE (UINT64_C(16) << 20)

#define TARGET_SEQ_GBS 2.0
#define TARGET_RAND_WRITE 1e6
#define TARGET_RAND_READ 1.5e6

/* Phase tags, stamped into the top byte of each block's marks. */
enum tag { TAG_SEQ = 1, TAG_HOLE, TAG_OVER, TAG_SMALL };
#define STAMP(pos, tag) ((pos) | (uint64_t)(tag) << 56)
#define STAMP_POS(v) ((v) & ((UINT64_C(1) << 56) - 1))
#define STAMP_TAG(v) ((unsigned int)((v) >> 56))

struct bench_opts {
	uint64_t seq_bytes;
	uint64_t region_bytes;
	uint64_t cache_bytes;
	uint64_t nr_ops;
	uint64_t seed;
	unsigned int buf_offset; /* of the I/O buffer from a page boundary */
	struct bench_run_opts run;
};

/* One run's numbers, in the order measured; medians are reported. */
enum metric {
	M_SEQ_COLD, /* GB/s */
	M_HOLE_COLD, /* ops/s */
	M_OVER_WRITE, /* ops/s */
	M_READ, /* ops/s */
	M_FLUSH, /* s */
	M_FLUSH_RATE, /* GB/s */
	M_SEQ_WRITE, /* GB/s */
	M_HOLE_WRITE, /* ops/s */
	M_SMALL_WRITE, /* ops/s */
	M_SMALL_FLUSH, /* s */
	NR_METRICS
};

struct metric_desc {
	const char *name; /* RESULT io.<name> */
	const char *label; /* table row */
	const char *unit;
	double target; /* >= target; 0: informational */
};

static const struct metric_desc metrics[NR_METRICS] = {
	[M_SEQ_COLD] = { "seq_write_cold", "seq write 1M, cold memory", "GB/s",
			 0 },
	[M_HOLE_COLD] = { "rand_write_hole_cold", "rand write 4K hole, cold",
			  "ops/s", 0 },
	[M_OVER_WRITE] = { "rand_write_over", "rand write 4K, overwrite",
			   "ops/s", TARGET_RAND_WRITE },
	[M_READ] = { "rand_read", "rand read 4K, cached", "ops/s",
		     TARGET_RAND_READ },
	[M_FLUSH] = { "flush", "flush (seq + region)", "s", 0 },
	[M_FLUSH_RATE] = { "flush_rate", "flush rate", "GB/s", 0 },
	[M_SEQ_WRITE] = { "seq_write", "seq write 1M, after trim", "GB/s",
			  TARGET_SEQ_GBS },
	[M_HOLE_WRITE] = { "rand_write_hole", "rand write 4K hole, trim",
			   "ops/s", TARGET_RAND_WRITE },
	[M_SMALL_WRITE] = { "small_cache.rand_write_hole",
			    "rand write 4K hole, 16M", "ops/s", 0 },
	[M_SMALL_FLUSH] = { "small_cache.flush", "flush after it", "s", 0 },
};

struct run_ctx {
	const struct bench_opts *o;
	struct volume *vol;
	void *mem;
	uint64_t *buf; /* SEQ_IO bytes at mem + buf_offset */
	uint32_t *perm; /* block indices of a region, shuffled */
	struct rng rng;
	double m[NR_METRICS];
};

/* Mark the 4 KiB block at @buf as written at @pos by phase @tag. */
static inline void stamp_block(uint64_t *buf, uint64_t pos, enum tag tag)
{
	buf[0] = STAMP(pos, tag);
	buf[RAND_IO / 8 - 1] = STAMP(pos, tag);
}

static void stamp_blocks(uint64_t *buf, uint64_t len, uint64_t pos,
			 enum tag tag)
{
	uint64_t i;

	for (i = 0; i < len; i += RAND_IO)
		stamp_block(buf + i / 8, pos + i, tag);
}

/* Make -d @dir if absent and check it is empty: the runs go in it. */
static int check_dir(const char *dir)
{
	struct dirent *de;
	DIR *d;

	if (mkdir(dir, 0755) && errno != EEXIST) {
		perror(dir);
		return -1;
	}
	d = opendir(dir);
	if (!d) {
		perror(dir);
		return -1;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			break;
	closedir(d);
	if (de) {
		fprintf(stderr, "bench-io: %s is not empty\n", dir);
		return -1;
	}
	return 0;
}

static int open_bench_volume(const char *dir, uint64_t cache, uint64_t dirty,
			     struct volume **volp)
{
	struct volume_params params = { .cache_size = cache,
					.dirty_bytes = dirty };
	int ret;

	ret = volume_open(dir, 0, &params, volp);
	if (ret)
		bench_fail(PROG, "volume_open", ret);
	return ret;
}

/*
 * Warn when the cache holds less dirty data than the timed phases wrote:
 * then writeback ran inside them and the numbers are not of the cache path.
 */
static void check_dirty(struct volume *vol, uint64_t want, const char *phase)
{
	struct volume_stat st;

	volume_stat(vol, &st);
	if (st.dirty_bytes < want)
		fprintf(stderr,
			"bench-io: warning: after %s %llu bytes dirty, not "
			"%llu: writeback ran while timed\n",
			phase, (unsigned long long)st.dirty_bytes,
			(unsigned long long)want);
}

/* Sequential SEQ_IO writes over [@start, @start + @len); GB/s. */
static int time_seq_write(struct run_ctx *c, uint64_t start, uint64_t len,
			  double *rate)
{
	uint64_t pos;
	double t0 = bench_now();
	int ret;

	for (pos = start; pos < start + len; pos += SEQ_IO) {
		stamp_blocks(c->buf, SEQ_IO, pos, TAG_SEQ);
		ret = volume_pwrite(c->vol, c->buf, SEQ_IO, pos, 0);
		if (ret) {
			bench_fail(PROG, "sequential write", ret);
			return ret;
		}
	}
	*rate = len / (bench_now() - t0) / 1e9;
	return 0;
}

static void shuffle_blocks(struct run_ctx *c, uint32_t nblks)
{
	uint32_t i, j, tmp;

	for (i = 0; i < nblks; i++)
		c->perm[i] = i;
	for (i = nblks - 1; i > 0; i--) {
		j = rng_below(&c->rng, i + 1);
		tmp = c->perm[i];
		c->perm[i] = c->perm[j];
		c->perm[j] = tmp;
	}
}

/* Write each block of [@start, +region) once, in shuffled order; ops/s. */
static int time_hole_write(struct run_ctx *c, uint64_t start, enum tag tag,
			   double *rate)
{
	uint32_t i, nblks = c->o->region_bytes / RAND_IO;
	uint64_t pos;
	double t0;
	int ret;

	shuffle_blocks(c, nblks);
	t0 = bench_now();
	for (i = 0; i < nblks; i++) {
		pos = start + (uint64_t)c->perm[i] * RAND_IO;
		stamp_block(c->buf, pos, tag);
		ret = volume_pwrite(c->vol, c->buf, RAND_IO, pos, 0);
		if (ret) {
			bench_fail(PROG, "random write", ret);
			return ret;
		}
	}
	*rate = nblks / (bench_now() - t0);
	return 0;
}

/* -n writes at random blocks of [@start, +region); ops/s. */
static int time_over_write(struct run_ctx *c, uint64_t start)
{
	uint64_t i, pos, nblks = c->o->region_bytes / RAND_IO;
	double t0 = bench_now();
	int ret;

	for (i = 0; i < c->o->nr_ops; i++) {
		pos = start + bench_rng_scaled(&c->rng, nblks) * RAND_IO;
		stamp_block(c->buf, pos, TAG_OVER);
		ret = volume_pwrite(c->vol, c->buf, RAND_IO, pos, 0);
		if (ret) {
			bench_fail(PROG, "random overwrite", ret);
			return ret;
		}
	}
	c->m[M_OVER_WRITE] = c->o->nr_ops / (bench_now() - t0);
	return 0;
}

/* -n reads at random blocks of [@start, +region); ops/s. */
static int time_read(struct run_ctx *c, uint64_t start)
{
	uint64_t i, pos, sum = 0, nblks = c->o->region_bytes / RAND_IO;
	volatile uint64_t sink;
	double t0 = bench_now();
	int ret;

	for (i = 0; i < c->o->nr_ops; i++) {
		pos = start + bench_rng_scaled(&c->rng, nblks) * RAND_IO;
		ret = volume_pread(c->vol, c->buf, RAND_IO, pos);
		if (ret) {
			bench_fail(PROG, "random read", ret);
			return ret;
		}
		sum += c->buf[0];
	}
	c->m[M_READ] = c->o->nr_ops / (bench_now() - t0);
	sink = sum;
	(void)sink;
	return 0;
}

static int time_flush(struct run_ctx *c, double *secs)
{
	double t0 = bench_now();
	int ret;

	ret = volume_flush(c->vol);
	*secs = bench_now() - t0;
	if (ret)
		bench_fail(PROG, "volume_flush", ret);
	return ret;
}

/* Is the block at @buf stamped with @pos and one of the tags in @tags? */
static bool block_ok(const uint64_t *buf, uint64_t pos, unsigned int tags)
{
	uint64_t head = buf[0], tail = buf[RAND_IO / 8 - 1];

	return head == tail && STAMP_POS(head) == pos && STAMP_TAG(head) < 32 &&
	       (tags & 1u << STAMP_TAG(head));
}

/* Read [@start, +@len) back in SEQ_IO pieces and check every block. */
static int verify_range(struct run_ctx *c, uint64_t start, uint64_t len,
			unsigned int tags)
{
	uint64_t pos, i;
	int ret;

	for (pos = start; pos < start + len; pos += SEQ_IO) {
		ret = volume_pread(c->vol, c->buf, SEQ_IO, pos);
		if (ret) {
			bench_fail(PROG, "reading back", ret);
			return ret;
		}
		for (i = 0; i < SEQ_IO; i += RAND_IO)
			if (!block_ok(c->buf + i / 8, pos + i, tags))
				goto bad;
	}
	return 0;
bad:
	fprintf(stderr,
		"bench-io: block at %llu reads back wrong (head %#llx, "
		"tail %#llx)\n",
		(unsigned long long)(pos + i),
		(unsigned long long)c->buf[i / 8],
		(unsigned long long)c->buf[i / 8 + RAND_IO / 8 - 1]);
	return -EIO;
}

static int verify_all(struct run_ctx *c)
{
	const struct bench_opts *o = c->o;
	int ret;

	ret = verify_range(c, 0, o->seq_bytes, 1u << TAG_SEQ);
	if (!ret)
		ret = verify_range(c, o->seq_bytes, o->region_bytes,
				   1u << TAG_HOLE);
	if (!ret)
		ret = verify_range(c, o->seq_bytes + o->region_bytes,
				   o->region_bytes, 1u << TAG_SMALL);
	return ret;
}

/* Write the sequential range and the random region's holes. */
static int write_holes(struct run_ctx *c, double *seq_rate, double *hole_rate)
{
	const struct bench_opts *o = c->o;
	int ret;

	ret = time_seq_write(c, 0, o->seq_bytes, seq_rate);
	if (ret)
		return ret;
	check_dirty(c->vol, o->seq_bytes, "the sequential writes");
	return time_hole_write(c, o->seq_bytes, TAG_HOLE, hole_rate);
}

/*
 * Into fresh memory: the cache's first use of its memory pays the page
 * faults (informational), then overwrites and reads of the cached data,
 * and the flush of it all.
 */
static int run_cold(struct run_ctx *c)
{
	const struct bench_opts *o = c->o;
	uint64_t region_pos = o->seq_bytes;
	int ret;

	ret = write_holes(c, &c->m[M_SEQ_COLD], &c->m[M_HOLE_COLD]);
	if (!ret)
		ret = time_over_write(c, region_pos);
	if (ret)
		return ret;
	check_dirty(c->vol, o->seq_bytes + o->region_bytes,
		    "the random writes");
	ret = time_read(c, region_pos);
	if (!ret)
		ret = verify_range(c, region_pos, o->region_bytes,
				   1u << TAG_HOLE | 1u << TAG_OVER);
	if (!ret)
		ret = time_flush(c, &c->m[M_FLUSH]);
	c->m[M_FLUSH_RATE] =
		(o->seq_bytes + o->region_bytes) / c->m[M_FLUSH] / 1e9;
	return ret;
}

/*
 * The steady state of a server whose cache has been in use: trim what
 * was written, so that it is holes again and its folios are free but
 * their memory stays, and write the same holes again.
 */
static int run_warm(struct run_ctx *c)
{
	const struct bench_opts *o = c->o;
	int ret;

	ret = volume_trim(c->vol, o->seq_bytes + o->region_bytes, 0, 0);
	if (ret) {
		bench_fail(PROG, "volume_trim", ret);
		return ret;
	}
	ret = write_holes(c, &c->m[M_SEQ_WRITE], &c->m[M_HOLE_WRITE]);
	if (!ret)
		check_dirty(c->vol, o->seq_bytes + o->region_bytes,
			    "the random writes after trim");
	return ret;
}

/* Reopen with a small cache: random writes that force writeback. */
static int run_small_cache(struct run_ctx *c, const char *dir)
{
	const struct bench_opts *o = c->o;
	int ret;

	ret = open_bench_volume(dir, SMALL_CACHE, 0, &c->vol);
	if (ret)
		return ret;
	ret = time_hole_write(c, o->seq_bytes + o->region_bytes, TAG_SMALL,
			      &c->m[M_SMALL_WRITE]);
	if (!ret)
		ret = time_flush(c, &c->m[M_SMALL_FLUSH]);
	if (!ret)
		ret = verify_all(c);
	return ret;
}

static int close_volume(struct run_ctx *c)
{
	int ret = volume_close(c->vol);

	c->vol = NULL;
	if (ret)
		bench_fail(PROG, "volume_close", ret);
	return ret;
}

/* One run on a fresh volume in @dir; fills @c->m. */
static int run_once(struct run_ctx *c, const char *dir)
{
	const struct bench_opts *o = c->o;
	struct thinmap_sb sb;
	int ret;

	ret = bench_create_volume(PROG, dir, VOLUME_BYTES, &sb);
	if (ret)
		return ret;
	ret = open_bench_volume(dir, o->cache_bytes, o->cache_bytes, &c->vol);
	if (ret)
		return ret;
	ret = run_cold(c);
	if (!ret)
		ret = run_warm(c);
	if (close_volume(c) || ret)
		return -EIO;
	ret = run_small_cache(c, dir);
	if (c->vol && close_volume(c))
		return -EIO;
	return ret;
}

static double median(const double (*m)[NR_METRICS], int n, enum metric k)
{
	double v[BENCH_MAX_REPEATS];
	int i;

	for (i = 0; i < n; i++)
		v[i] = m[i][k];
	return bench_median(v, n);
}

static void print_value(double v, const char *unit)
{
	if (!strcmp(unit, "ops/s"))
		printf(" %10.0f", v);
	else
		printf(" %10.3f", v);
}

static void print_table(const double (*m)[NR_METRICS], int n, const double *med)
{
	int i, k;

	printf("%-26s %-6s", "phase", "unit");
	for (i = 0; i < n && i < 5; i++)
		printf("      run %d", i + 1);
	printf(" %10s %10s\n", "median", "target");
	for (k = 0; k < NR_METRICS; k++) {
		printf("%-26s %-6s", metrics[k].label, metrics[k].unit);
		for (i = 0; i < n && i < 5; i++)
			print_value(m[i][k], metrics[k].unit);
		print_value(med[k], metrics[k].unit);
		if (metrics[k].target)
			printf("  >= %.3g\n", metrics[k].target);
		else
			printf("  (info)\n");
	}
	printf("\n");
}

/* Print one target line; returns true if it passes. */
static bool check_target(const struct metric_desc *d, double value)
{
	bool pass = value >= d->target;

	printf("TARGET io.%s.median >= %.6g %s: %s (%.6g, %+.1f%%)\n", d->name,
	       d->target, d->unit, pass ? "PASS" : "FAIL", value,
	       100.0 * (value - d->target) / d->target);
	return pass;
}

static int report(const double (*m)[NR_METRICS], int n)
{
	double med[NR_METRICS];
	bool pass = true;
	int k;

	for (k = 0; k < NR_METRICS; k++)
		med[k] = median(m, n, k);
	print_table(m, n, med);
	for (k = 0; k < NR_METRICS; k++)
		printf("RESULT io.%s %.6g %s\n", metrics[k].name, med[k],
		       metrics[k].unit);
	for (k = 0; k < NR_METRICS; k++)
		if (metrics[k].target)
			pass &= check_target(&metrics[k], med[k]);
	return pass ? 0 : 1;
}

static void print_header(const struct bench_opts *o, const char *dir)
{
	char seq[16], region[16], cache[16];

	printf("bench-io: %s, 4 GiB volumes, cache %s (dirty limit the same),"
	       " seq %s, random region %s, %llu random ops per pass, "
	       "buffer at page offset %u, %d runs, seed %llu\n\n",
	       dir, format_size(o->cache_bytes, cache, sizeof(cache)),
	       format_size(o->seq_bytes, seq, sizeof(seq)),
	       format_size(o->region_bytes, region, sizeof(region)),
	       (unsigned long long)o->nr_ops, o->buf_offset, o->run.repeats,
	       (unsigned long long)o->seed);
}

static int run_all(const struct bench_opts *o, const char *scratch)
{
	double m[BENCH_MAX_REPEATS][NR_METRICS];
	struct run_ctx c = { .o = o, .rng = { o->seed } };
	char dir[PATH_MAX];
	int i, ret = 2;

	c.perm = malloc(o->region_bytes / RAND_IO * sizeof(*c.perm));
	if (!c.perm || posix_memalign(&c.mem, 4096, SEQ_IO + 4096)) {
		perror("bench-io");
		goto out;
	}
	c.buf = (uint64_t *)((char *)c.mem + o->buf_offset);
	memset(c.buf, 0xa5, SEQ_IO);
	print_header(o, scratch);
	for (i = 0; i < o->run.repeats; i++) {
		snprintf(dir, sizeof(dir), "%s/run-%d", scratch, i + 1);
		if (run_once(&c, dir))
			goto out;
		memcpy(m[i], c.m, sizeof(c.m));
		if (!o->run.keep)
			bench_remove_tree(dir);
	}
	ret = report((const double(*)[NR_METRICS])m, o->run.repeats);
out:
	free(c.perm);
	free(c.mem);
	return ret;
}

/* A size in bytes, a positive multiple of SEQ_IO. */
static uint64_t parse_bytes(const char *arg, char opt)
{
	uint64_t v;

	if (parse_size(arg, &v) || !v || v % SEQ_IO) {
		fprintf(stderr,
			"bench-io: -%c: bad size '%s' (a multiple of 1M)\n",
			opt, arg);
		exit(2);
	}
	return v;
}

/* An offset from a page boundary: a multiple of 8 below 4096. */
static unsigned int parse_offset(const char *arg)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 0);
	if (errno || *end || v >= 4096 || v % 8) {
		fprintf(stderr,
			"bench-io: -a: bad offset '%s' (a multiple of 8 "
			"below 4096)\n",
			arg);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-io [-s SEQ] [-R REGION] [-c CACHE] "
			"[-n OPS] [-r REPEATS] [-S SEED] [-a OFFSET] [-d DIR] "
			"[-k]\n");
	exit(2);
}

static void check_opts(const struct bench_opts *o)
{
	if (o->seq_bytes + 2 * o->region_bytes > VOLUME_BYTES ||
	    o->region_bytes / RAND_IO > UINT32_MAX) {
		fprintf(stderr, "bench-io: -s and -R do not fit in the "
				"4 GiB volume (seq + 2 * region)\n");
		exit(2);
	}
	if (o->seq_bytes + o->region_bytes > o->cache_bytes) {
		fprintf(stderr, "bench-io: the cache (-c) must hold seq + "
				"region, or writeback is measured\n");
		exit(2);
	}
}

static void parse_opts(int argc, char **argv, struct bench_opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "s:R:c:n:r:S:a:d:kh")) != -1) {
		if (bench_run_opt(PROG, c, optarg, &o->run))
			continue;
		switch (c) {
		case 's':
			o->seq_bytes = parse_bytes(optarg, c);
			break;
		case 'R':
			o->region_bytes = parse_bytes(optarg, c);
			break;
		case 'c':
			o->cache_bytes = parse_bytes(optarg, c);
			break;
		case 'n':
			o->nr_ops = bench_parse_count(PROG, optarg, c, 1e12);
			break;
		case 'S':
			o->seed = bench_parse_count(PROG, optarg, c, 1e18);
			break;
		case 'a':
			o->buf_offset = parse_offset(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	check_opts(o);
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.seq_bytes = UINT64_C(512) << 20,
		.region_bytes = UINT64_C(256) << 20,
		.cache_bytes = UINT64_C(1) << 30,
		.nr_ops = UINT64_C(1) << 20,
		.seed = 1,
		.run = { .repeats = 3 },
	};
	char *dir;
	int ret;

	parse_opts(argc, argv, &o);
	if (o.run.dir && check_dir(o.run.dir))
		return 2;
	dir = bench_make_scratch(PROG, o.run.dir);
	if (!dir)
		return 2;
	ret = run_all(&o, dir);
	if (o.run.keep)
		printf("kept the volumes in %s\n", dir);
	else
		bench_remove_tree(dir);
	free(dir);
	return ret;
}
