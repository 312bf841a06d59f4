/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-open: how long volume_open() takes with many persisted extents.
 *
 * Creates a 1 TiB volume (1 TiB capacity, default geometry) in a scratch
 * directory, writes N extent records (default 10^6) straight into its
 * metadata with meta_txn_map() in batches, then opens the volume R times
 * (default 3) in each of four ways and reports the min and median time of
 * volume_open() alone (not close):
 *
 *   rw warm      read-write, metadata in the page cache
 *   ro warm      VOLUME_RDONLY, metadata in the page cache
 *   rw cold      read-write, the volume's files evicted from the page
 *                cache first (POSIX_FADV_DONTNEED: no privilege needed)
 *   ro cold      VOLUME_RDONLY, evicted likewise
 *
 * Record i is MAPPED, one block at logical block 2i (so no two are
 * adjacent), in AG i % ag_count at block 2 * (i / ag_count): physically
 * scattered over every AG, so free space is as fragmented as the map
 * (about one free extent per record), the worst case for open, which
 * derives free space from the records.  After each open volume_stat()
 * must report N extents, or the run fails.
 *
 * Options: -n records, -b records per transaction (default 10^4), -r opens
 * per way, -d DIR to make the volume in DIR (which must not exist or be
 * empty) instead of a fresh directory under $TMPDIR or /tmp, -k to keep
 * the volume.  The volume is removed at the end otherwise; a DIR that
 * already held anything is never touched.
 *
 * Output: a table, "RESULT name value unit" lines, and a "TARGET" line
 * per way of opening with PASS or FAIL against 1 s (median).  The time to
 * write the records is informational.  Exit status: 0 all targets pass,
 * 1 a target fails, 2 an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thinmap/create.h"
#include "thinmap/extent.h"
#include "thinmap/meta.h"
#include "thinmap/volume.h"

#include "bench.h"

#define PROG "bench-open"

#define TARGET_OPEN_S 1.0
#define VOLUME_BYTES (UINT64_C(1) << 40)

struct bench_opts {
	uint64_t nr_extents;
	uint64_t batch;
	struct bench_run_opts run;
};

struct open_mode {
	const char *name;
	unsigned int flags;
	bool cold;
};

static const struct open_mode modes[] = {
	{ "rw_warm", 0, false },
	{ "ro_warm", VOLUME_RDONLY, false },
	{ "rw_cold", 0, true },
	{ "ro_cold", VOLUME_RDONLY, true },
};
#define NR_MODES (sizeof(modes) / sizeof(modes[0]))

/* Record @i: see the comment at the top. */
static void bench_record(const struct thinmap_sb *sb, uint64_t i,
			 struct extent *ext)
{
	ext->lblk = 2 * i;
	ext->len = 1;
	ext->pblk = PBLK(i % sb->ag_count, 2 * (i / sb->ag_count));
	ext->state = EXT_MAPPED;
}

static int check_fits(const struct bench_opts *o, const struct thinmap_sb *sb)
{
	uint64_t blocks = sb->size / sb->block_size;
	uint64_t per_ag = (o->nr_extents + sb->ag_count - 1) / sb->ag_count;

	if (2 * o->nr_extents > blocks || 2 * per_ag > sb->ag_blocks) {
		fprintf(stderr,
			"bench-open: %llu records do not fit in the "
			"volume\n",
			(unsigned long long)o->nr_extents);
		return -EINVAL;
	}
	return 0;
}

/* Map records [@first, @first + @n) in one transaction. */
static int write_batch(struct meta *meta, uint64_t first, uint64_t n, bool sync)
{
	const struct thinmap_sb *sb = meta_sb(meta);
	struct meta_txn *txn;
	struct extent ext;
	uint64_t i;
	int ret;

	ret = meta_txn_begin(meta, &txn);
	if (ret)
		return ret;
	for (i = first; i < first + n; i++) {
		bench_record(sb, i, &ext);
		ret = meta_txn_map(txn, &ext);
		if (ret) {
			meta_txn_abort(txn);
			return ret;
		}
	}
	return meta_txn_commit(txn, sync);
}

/* Write every record, the last batch durably; returns seconds or < 0. */
static double write_records(const char *dir, const struct bench_opts *o)
{
	char metadir[PATH_MAX];
	struct meta *meta;
	uint64_t first, n;
	double t0 = bench_now();
	int ret;

	snprintf(metadir, sizeof(metadir), "%s/meta", dir);
	ret = meta_open(metadir, false, &meta);
	if (ret) {
		bench_fail(PROG, "meta_open", ret);
		return -1;
	}
	for (first = 0; first < o->nr_extents; first += n) {
		n = o->nr_extents - first < o->batch ? o->nr_extents - first
						     : o->batch;
		ret = write_batch(meta, first, n, first + n == o->nr_extents);
		if (ret) {
			bench_fail(PROG, "writing records", ret);
			break;
		}
	}
	meta_close(meta);
	return ret ? -1 : bench_now() - t0;
}

static int evict_one(const char *path, const struct stat *st, int type,
		     struct FTW *ftw)
{
	int fd;

	if (type != FTW_F)
		return 0;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	fdatasync(fd); /* dirty pages cannot be dropped */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return 0;
}

/* Evict every file of the volume from the page cache. */
static void evict_volume(const char *dir)
{
	nftw(dir, evict_one, 16, FTW_PHYS);
}

/* Open once in @mode; returns the seconds volume_open() took, or < 0. */
static double time_open(const char *dir, const struct open_mode *mode,
			uint64_t want)
{
	struct volume_stat st;
	struct volume *vol;
	double t0, secs;
	int ret;

	if (mode->cold)
		evict_volume(dir);
	t0 = bench_now();
	ret = volume_open(dir, mode->flags, NULL, &vol);
	secs = bench_now() - t0;
	if (ret) {
		bench_fail(PROG, "volume_open", ret);
		return -1;
	}
	volume_stat(vol, &st);
	volume_close(vol);
	if (st.extents != want) {
		fprintf(stderr,
			"bench-open: %s: volume has %llu extents, "
			"not %llu\n",
			mode->name, (unsigned long long)st.extents,
			(unsigned long long)want);
		return -1;
	}
	return secs;
}

/* Open @o->run.repeats times in @mode; sets min and median seconds. */
static int measure_mode(const char *dir, const struct bench_opts *o,
			const struct open_mode *mode, double *min,
			double *median)
{
	double secs[BENCH_MAX_REPEATS];
	int i;

	for (i = 0; i < o->run.repeats; i++) {
		secs[i] = time_open(dir, mode, o->nr_extents);
		if (secs[i] < 0)
			return -1;
	}
	*median = bench_median(secs, o->run.repeats);
	*min = secs[0];
	return 0;
}

/* Print one target line; returns true if it passes. */
static bool check_target(const char *name, double median)
{
	bool pass = median <= TARGET_OPEN_S;

	printf("TARGET open.%s.median <= %.3g s: %s (%.3f s, %+.1f%%)\n", name,
	       TARGET_OPEN_S, pass ? "PASS" : "FAIL", median,
	       100.0 * (median - TARGET_OPEN_S) / TARGET_OPEN_S);
	return pass;
}

/* Time every way of opening and print the table and target lines. */
static int measure_opens(const char *dir, const struct bench_opts *o,
			 double write_s)
{
	double min[NR_MODES], median[NR_MODES];
	bool pass = true;
	size_t m;

	printf("%-8s %9s %9s\n", "open", "min s", "median s");
	for (m = 0; m < NR_MODES; m++) {
		if (measure_mode(dir, o, &modes[m], &min[m], &median[m]))
			return 2;
		printf("%-8s %9.3f %9.3f\n", modes[m].name, min[m], median[m]);
	}
	printf("\nRESULT open.write_records %.3f s\n", write_s);
	printf("RESULT open.write_rate %.0f records/s\n",
	       o->nr_extents / write_s);
	for (m = 0; m < NR_MODES; m++) {
		printf("RESULT open.%s.min %.4f s\n", modes[m].name, min[m]);
		printf("RESULT open.%s.median %.4f s\n", modes[m].name,
		       median[m]);
	}
	for (m = 0; m < NR_MODES; m++)
		pass &= check_target(modes[m].name, median[m]);
	return pass ? 0 : 1;
}

/*
 * Create the volume in @dir, fill and open it.  Sets *@created once the
 * directory is ours to remove: never when create_volume() refused it.
 */
static int run(const char *dir, const struct bench_opts *o, bool *created)
{
	struct thinmap_sb sb;
	double write_s;

	if (bench_create_volume(PROG, dir, VOLUME_BYTES, &sb))
		return 2;
	*created = true;
	if (check_fits(o, &sb))
		return 2;
	printf("bench-open: %s, %llu records (1 block each, every other "
	       "block), %u AGs of %u blocks of %u bytes, %d opens per way\n",
	       dir, (unsigned long long)o->nr_extents, sb.ag_count,
	       sb.ag_blocks, sb.block_size, o->run.repeats);
	write_s = write_records(dir, o);
	if (write_s < 0)
		return 2;
	printf("wrote %llu records in %.3f s (%llu per transaction)\n\n",
	       (unsigned long long)o->nr_extents, write_s,
	       (unsigned long long)o->batch);
	return measure_opens(dir, o, write_s);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-open [-n EXTENTS] [-b BATCH] "
			"[-r REPEATS] [-d DIR] [-k]\n");
	exit(2);
}

static void parse_opts(int argc, char **argv, struct bench_opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "n:b:r:d:kh")) != -1) {
		if (bench_run_opt(PROG, c, optarg, &o->run))
			continue;
		switch (c) {
		case 'n':
			o->nr_extents =
				bench_parse_count(PROG, optarg, c, 1e10);
			break;
		case 'b':
			o->batch = bench_parse_count(PROG, optarg, c, 1e10);
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
		.batch = 10000,
		.run = { .repeats = 3 },
	};
	bool created = false;
	char *dir;
	int ret;

	parse_opts(argc, argv, &o);
	dir = bench_make_scratch(PROG, o.run.dir);
	if (!dir)
		return 2;
	ret = run(dir, &o, &created);
	if (o.run.keep && created)
		printf("kept the volume in %s\n", dir);
	else if (created || !o.run.dir)
		bench_remove_tree(dir);
	free(dir);
	return ret;
}
