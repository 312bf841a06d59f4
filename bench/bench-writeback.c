/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-writeback: the writeback targets of the writeback issue.
 *
 *   1. Writeback throughput: SIZE bytes written into the cache, then the
 *      time of the flush that writes them to the AG files, against the
 *      same filesystem's raw sequential O_DIRECT write speed (dd
 *      oflag=direct conv=fsync of SIZE bytes in 4 MiB blocks), measured
 *      in pairs, one right after the other.  Target: at least 0.8x.
 *   2. Random 4 KiB writes over a RANGE (default 1 GiB) volume with a
 *      flush every 256 writes, the writeback daemon running.  Target:
 *      50,000 writes/s.  The share of writes that overwrite blocks
 *      written before grows with WRITES / RANGE.  Right after, fio does
 *      the same on a raw sparse file (O_DIRECT, 16 in flight, fdatasync
 *      every 256): this disk's own rate for the pattern, which varies a
 *      lot from minute to minute here.
 *
 * Usage: bench-writeback [-r REPEATS] [-d DIR] [-k] [-s SIZE_MIB]
 *                        [-n WRITES] [-R RANGE_MIB] [-b auto|buffered]
 */
#include <getopt.h>
#include <unistd.h>

#include "thinmap/volume.h"
#include "bench.h"

#define PROG "bench-writeback"
#define MiB (UINT64_C(1) << 20)

struct opts {
	struct bench_run_opts run;
	uint64_t size;		/* bytes for the throughput test */
	uint64_t writes;	/* random writes */
	uint64_t range;		/* bytes the random writes cover */
	enum volume_backing_io io;
};

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [-r REPEATS] [-d DIR] [-k] [-s SIZE_MIB] "
		"[-n WRITES] [-R RANGE_MIB] [-b auto|buffered]\n", PROG);
	exit(status);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "r:d:ks:n:R:b:h")) != -1) {
		if (bench_run_opt(PROG, c, optarg, &o->run))
			continue;
		switch (c) {
		case 's':
			o->size = bench_parse_count(PROG, optarg, c, 65536) * MiB;
			break;
		case 'n':
			o->writes = bench_parse_count(PROG, optarg, c, 100000000);
			break;
		case 'R':
			o->range = bench_parse_count(PROG, optarg, c, 1 << 20) * MiB;
			break;
		case 'b':
			if (strcmp(optarg, "auto") && strcmp(optarg, "buffered"))
				usage(2);
			o->io = strcmp(optarg, "auto") ? VOLUME_IO_BUFFERED
						       : VOLUME_IO_AUTO;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
}

/* A fresh volume of @bytes in @dir/vol, opened with @p. */
static struct volume *fresh_volume(const char *dir, uint64_t bytes,
				   const struct volume_params *p, char *path,
				   size_t pathlen)
{
	struct thinmap_sb sb;
	struct volume *vol;
	int err;

	snprintf(path, pathlen, "%s/vol", dir);
	bench_remove_tree(path);
	if (bench_create_volume(PROG, path, bytes, &sb))
		return NULL;
	err = volume_open(path, 0, p, &vol);
	if (err) {
		bench_fail(PROG, "volume_open", err);
		return NULL;
	}
	return vol;
}

/* MB/s of the flush that writes @o->size dirty bytes back; <0 on error. */
static double writeback_speed(const char *dir, const struct opts *o)
{
	struct volume_params p = { .cache_size = o->size + 64 * MiB,
				   .dirty_bytes = o->size + 64 * MiB,
				   .dirty_background_bytes = o->size + 64 * MiB,
				   .backing_io = o->io };
	static unsigned char buf[MiB] __attribute__((aligned(4096)));
	struct volume_stat st;
	char path[4096];
	struct volume *vol = fresh_volume(dir, 2 * o->size, &p, path,
					  sizeof path);
	uint64_t off;
	double t;
	int err = 0;

	if (!vol)
		return -1;
	memset(buf, 0x5a, sizeof buf);
	for (off = 0; !err && off < o->size; off += MiB) {
		buf[0] = (unsigned char)(off >> 20);
		err = volume_pwrite(vol, buf, MiB, off, 0);
	}
	t = bench_now();
	if (!err)
		err = volume_flush(vol);
	t = bench_now() - t;
	volume_stat(vol, &st);
	if (!err && !st.direct_io && o->io == VOLUME_IO_AUTO)
		fprintf(stderr, "%s: note: the filesystem refused O_DIRECT\n",
			PROG);
	err = err ? err : volume_close(vol);
	if (err) {
		bench_fail(PROG, "writeback", err);
		return -1;
	}
	return (double)o->size / MiB / t;
}

/* MB/s of dd oflag=direct conv=fsync writing @o->size bytes in @dir. */
static double dd_speed(const char *dir, const struct opts *o)
{
	char cmd[4096 + 128];
	double t;

	snprintf(cmd, sizeof cmd,
		 "dd if=/dev/zero of='%s/dd.raw' bs=4M count=%llu "
		 "oflag=direct conv=fsync status=none", dir,
		 (unsigned long long)(o->size / (4 * MiB)));
	t = bench_now();
	if (system(cmd) != 0) {
		fprintf(stderr, "%s: dd failed\n", PROG);
		return -1;
	}
	t = bench_now() - t;
	snprintf(cmd, sizeof cmd, "%s/dd.raw", dir);
	unlink(cmd);
	return (double)o->size / MiB / t;
}

/*
 * The disk's side of the random test: fio's O_DIRECT random 4 KiB writes,
 * 16 in flight, an fdatasync every 256, as many as @o->writes over a
 * fresh sparse file of @o->range bytes in @dir.  IOPS; 0 when fio is
 * missing or fails (the comparison is then left out).
 */
static double fio_rate(const char *dir, const struct opts *o)
{
	char cmd[4096 + 512], line[4096], *f;
	double iops = 0;
	FILE *p;
	int i;

	snprintf(cmd, sizeof cmd,
		 "fio --name=raw --filename='%s/fio.raw' --size=%llu "
		 "--rw=randwrite --bs=4k --direct=1 --ioengine=io_uring "
		 "--iodepth=16 --fdatasync=256 --number_ios=%llu "
		 "--output-format=terse --terse-version=3 2>/dev/null",
		 dir, (unsigned long long)o->range,
		 (unsigned long long)o->writes);
	p = popen(cmd, "r");
	if (p && fgets(line, sizeof line, p)) {
		/* terse v3: field 49 is the write IOPS */
		for (f = line, i = 1; f && i < 49; i++)
			if ((f = strchr(f, ';')))
				f++;
		if (f)
			iops = strtod(f, NULL);
	}
	if (p)
		pclose(p);
	snprintf(cmd, sizeof cmd, "%s/fio.raw", dir);
	unlink(cmd);
	return iops;
}

/* Random 4 KiB writes per second, a flush every 256; <0 on error. */
static double random_flush_rate(const char *dir, const struct opts *o,
				uint64_t seed)
{
	struct volume_params p = { .backing_io = o->io };
	static unsigned char buf[4096] __attribute__((aligned(4096)));
	struct rng r = { seed };
	char path[4096];
	struct volume *vol = fresh_volume(dir, o->range, &p, path,
					  sizeof path);
	uint64_t i;
	double t;
	int err;

	if (!vol)
		return -1;
	err = volume_start_writeback(vol);
	memset(buf, 0xa5, sizeof buf);
	t = bench_now();
	for (i = 0; !err && i < o->writes; i++) {
		buf[0] = (unsigned char)i;
		err = volume_pwrite(vol, buf, 4096,
				    bench_rng_scaled(&r, o->range / 4096) * 4096,
				    0);
		if (!err && i % 256 == 255)
			err = volume_flush(vol);
	}
	if (!err)
		err = volume_flush(vol);
	t = bench_now() - t;
	err = err ? err : volume_close(vol);
	if (err) {
		bench_fail(PROG, "random writes", err);
		return -1;
	}
	return (double)o->writes / t;
}

static int run(const char *dir, const struct opts *o)
{
	double wb[BENCH_MAX_REPEATS], dd[BENCH_MAX_REPEATS];
	double ratio[BENCH_MAX_REPEATS], rate[BENCH_MAX_REPEATS];
	double fio[BENCH_MAX_REPEATS], vs_fio[BENCH_MAX_REPEATS];
	int i, n = o->run.repeats;

	for (i = 0; i < n; i++) {
		wb[i] = writeback_speed(dir, o);
		dd[i] = dd_speed(dir, o);
		rate[i] = random_flush_rate(dir, o, (uint64_t)i + 1);
		fio[i] = fio_rate(dir, o);
		if (wb[i] < 0 || dd[i] < 0 || rate[i] < 0)
			return 1;
		ratio[i] = wb[i] / dd[i];
		vs_fio[i] = fio[i] > 0 ? rate[i] / fio[i] : 0;
		printf("run %d: writeback %.0f MB/s, dd oflag=direct %.0f MB/s "
		       "(%.2fx); random 4K + flush/256: %.0f writes/s, fio on "
		       "a raw file %.0f IOPS (%.2fx)\n",
		       i + 1, wb[i], dd[i], ratio[i], rate[i], fio[i],
		       vs_fio[i]);
	}
	printf("median of %d (backing-io=%s, %llu MiB; %llu writes over "
	       "%llu MiB): "
	       "writeback %.0f MB/s, dd %.0f MB/s, ratio %.2fx "
	       "(target 0.80x: %s); random+flush %.0f writes/s "
	       "(target 50000: %s)\n",
	       n, o->io == VOLUME_IO_BUFFERED ? "buffered" : "auto",
	       (unsigned long long)(o->size / MiB),
	       (unsigned long long)o->writes,
	       (unsigned long long)(o->range / MiB), bench_median(wb, n),
	       bench_median(dd, n), bench_median(ratio, n),
	       bench_median(ratio, n) >= 0.8 ? "PASS" : "MISS",
	       bench_median(rate, n),
	       bench_median(rate, n) >= 50000 ? "PASS" : "MISS");
	printf("random+flush against fio on a raw file, same pattern: "
	       "median %.2fx\n", bench_median(vs_fio, n));
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.run = { .repeats = 3 },
		.size = 1024 * MiB,
		.writes = 100000,
		.range = 1024 * MiB,
	};
	char *dir;
	int ret;

	parse_opts(argc, argv, &o);
	dir = bench_make_scratch(PROG, o.run.dir);
	if (!dir)
		return 2;
	ret = run(dir, &o);
	if (!o.run.dir && !o.run.keep)
		bench_remove_tree(dir);
	free(dir);
	return ret;
}
