/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writeback daemon and the backing I/O settings: dirty data reaches
 * the AG files within dirty-expire + writeback-interval without a flush,
 * and as soon as it passes dirty-background-bytes (counting pages with
 * dirty blocks whole), its new mappings committed by the next flush or
 * expire pass; concurrent flushes share passes; every backing-io mode
 * keeps the data; discard=punch gives trimmed space back to the
 * filesystem and discard=ignore does not; sparse small writes are packed
 * side by side; the default cache fits the machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "thinmap/create.h"
#include "thinmap/error.h"
#include "thinmap/volume.h"
#include "model.h"
#include "scratch.h"

#define MiB (1u << 20)
#define SIZE (64 * MiB)

/* A fresh volume of one AG. */
static char *scratch_create(void)
{
	struct create_opts opts = { .size = SIZE, .ag_count = 1 };

	return scratch_volume("writeback", &opts, NULL);
}

/* A fresh volume opened with @params; its path in *@dir. */
static struct volume *scratch_open(char **dir,
				   const struct volume_params *params)
{
	struct volume *vol = NULL;

	*dir = scratch_create();
	if (!*dir || volume_open(*dir, 0, params, &vol))
		fprintf(stderr, "open: %s\n", tm_get_error());
	return vol;
}

static unsigned char *pattern(size_t len, unsigned char seed)
{
	unsigned char *p = malloc(len);
	size_t i;

	for (i = 0; p && i < len; i++)
		p[i] = (unsigned char)(i * 7 + seed + i / 4096);
	return p;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool ag_file_holds(struct volume *vol, const char *dir,
			  const unsigned char *want, size_t len);

/*
 * Seconds until @vol has no dirty data and the AG file holds @want at
 * the start of the volume, polling; -1 after @limit s.
 */
static double wait_written(struct volume *vol, const char *dir,
			   const unsigned char *want, size_t len, double limit)
{
	double start = now_s();
	struct volume_stat st;

	for (;;) {
		volume_stat(vol, &st);
		if (st.dirty_bytes == 0 && ag_file_holds(vol, dir, want, len))
			return now_s() - start;
		if (now_s() - start > limit)
			return -1;
		usleep(10000);
	}
}

/* Slack for timing bounds: much more under valgrind (THINMAP_TEST_QUICK). */
static double slack(void)
{
	return model_ops(20) < 20 ? 30 : 1;
}

/* Does the AG file hold @want at the physical place of volume byte 0? */
static int first_extent(void *arg, const struct extent *ext)
{
	*(struct extent *)arg = *ext;
	return 1;
}

static bool ag_file_holds(struct volume *vol, const char *dir,
			  const unsigned char *want, size_t len)
{
	struct extent ext = { .state = EXT_HOLE };
	unsigned char *got = malloc(len);
	char *path = ag_file_path(dir, 0);
	int fd = path ? open(path, O_RDONLY) : -1;
	bool same;

	volume_map(vol, first_extent, &ext);
	same = got && fd >= 0 && ext.state == EXT_MAPPED && ext.lblk == 0 &&
	       pread(fd, got, len, (off_t)(PBLK_AGBNO(ext.pblk) * 4096)) ==
		       (ssize_t)len &&
	       memcmp(got, want, len) == 0;
	if (fd >= 0)
		close(fd);
	free(path);
	free(got);
	return same;
}

/*
 * The mapped bytes that a read-only open of @dir sees, once they are not
 * 0 (the commit follows the write by a little), polling for up to @limit
 * seconds (0: look once).
 */
static uint64_t committed_bytes(const char *dir, double limit)
{
	double start = now_s();
	struct volume_stat st = { 0 };
	struct volume *ro;

	do {
		if (volume_open(dir, VOLUME_RDONLY, NULL, &ro) == 0) {
			volume_stat(ro, &st);
			volume_close(ro);
		}
		if (st.mapped)
			break;
		usleep(10000);
	} while (now_s() - start < limit);
	return st.mapped;
}

/*
 * Data dirtied and left alone reaches the AG file after dirty-expire and
 * before dirty-expire + writeback-interval (with slack for a busy
 * machine), and its mapping is committed: a read-only open sees it.
 */
static void test_expire(void)
{
	struct volume_params p = { .dirty_expire_ms = 300,
				   .writeback_interval_ms = 100 };
	char *dir;
	struct volume *vol = scratch_open(&dir, &p);
	unsigned char *data = pattern(MiB, 1);
	double t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(vol);
	CU_ASSERT_EQUAL_FATAL(volume_start_writeback(vol), 0);
	CU_ASSERT_EQUAL(volume_start_writeback(vol), -EINVAL);
	CU_ASSERT_EQUAL(volume_pwrite(vol, data, MiB, 0, 0), 0);
	t = wait_written(vol, dir, data, MiB, 60);
	fprintf(stderr, "expired data written back after %.3f s\n", t);
	CU_ASSERT(t >= 0.25);
	CU_ASSERT(t >= 0 && t <= 0.4 + slack());
	CU_ASSERT_EQUAL(committed_bytes(dir, slack()), MiB);
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	free(data);
	scratch_remove(dir);
}

/*
 * Past dirty-background-bytes the daemon writes back at once, but leaves
 * the new mappings to the next flush (or expire pass): a read-only open
 * sees them only after the flush.
 */
static void test_background(void)
{
	struct volume_params p = { .dirty_background_bytes = MiB,
				   .dirty_expire_ms = 3600000,
				   .writeback_interval_ms = 3600000 };
	char *dir;
	struct volume *vol = scratch_open(&dir, &p);
	unsigned char *data = pattern(4 * MiB, 2);
	double t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(vol);
	CU_ASSERT_EQUAL_FATAL(volume_start_writeback(vol), 0);
	CU_ASSERT_EQUAL(volume_pwrite(vol, data, 4 * MiB, 0, 0), 0);
	t = wait_written(vol, dir, data, 4 * MiB, 60);
	fprintf(stderr, "background writeback done after %.3f s\n", t);
	CU_ASSERT(t >= 0 && t <= 4 * slack());
	CU_ASSERT_EQUAL(committed_bytes(dir, 0), 0);
	CU_ASSERT_EQUAL(volume_flush(vol), 0);
	CU_ASSERT_EQUAL(committed_bytes(dir, 0), 4 * MiB);
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	free(data);
	scratch_remove(dir);
}

/*
 * A page with one dirty block counts whole against the limits: 4 KiB
 * writes to 24 pages of 64 KiB (96 KiB of data, 1.5 MiB of pages) pass a
 * background limit of 1 MiB, and writeback brings them under it (16
 * pages) without a flush.  Writes made after a pass began may stay dirty.
 */
static void test_background_sparse(void)
{
	struct volume_params p = { .cache_size = 4 * MiB,
				   .dirty_background_bytes = MiB,
				   .dirty_expire_ms = 3600000,
				   .writeback_interval_ms = 3600000 };
	char *dir;
	struct volume *vol = scratch_open(&dir, &p);
	unsigned char *buf = pattern(4096, 6);
	double start = now_s();
	struct volume_stat st;
	int i;

	CU_ASSERT_FATAL(vol && buf);
	CU_ASSERT_EQUAL_FATAL(volume_start_writeback(vol), 0);
	for (i = 0; i < 24; i++)
		CU_ASSERT_EQUAL(volume_pwrite(vol, buf, 4096,
					      (uint64_t)i * 128 * 1024, 0), 0);
	do {
		usleep(10000);
		volume_stat(vol, &st);
	} while (st.dirty_bytes > 16 * 4096 && now_s() - start < 4 * slack());
	CU_ASSERT(st.dirty_bytes <= 16 * 4096);
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	free(buf);
	scratch_remove(dir);
}

#define FLUSHERS 8

struct flushers {
	struct volume *vol;
	pthread_barrier_t start;	/* all flush at once */
};

static void *flusher(void *arg)
{
	struct flushers *f = arg;

	pthread_barrier_wait(&f->start);
	return (void *)(intptr_t)volume_flush(f->vol);
}

/*
 * Flushes that arrive while a pass runs share the next one: 8 flushes
 * behind a long pass take 2 passes, not 9.  Run with and without the
 * daemon.  The flushers start together (a barrier): under valgrind, a
 * thread that started late found the first passes over and ran its own.
 */
static void shared_flushes(bool daemon)
{
	struct volume_params p = { .cache_size = 256 * MiB,
				   .dirty_expire_ms = 3600000,
				   .writeback_interval_ms = 3600000 };
	char *dir;
	struct volume *vol = scratch_open(&dir, &p);
	unsigned char *data = pattern(48 * MiB, 3);
	pthread_t threads[FLUSHERS];
	struct flushers f = { .vol = vol };
	struct volume_stat before, after;
	int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(vol);
	pthread_barrier_init(&f.start, NULL, FLUSHERS);
	if (daemon)
		CU_ASSERT_EQUAL_FATAL(volume_start_writeback(vol), 0);
	CU_ASSERT_EQUAL(volume_pwrite(vol, data, 48 * MiB, 0, 0), 0);
	volume_stat(vol, &before);
	for (i = 0; i < FLUSHERS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[i], NULL,
						     flusher, &f), 0);
	for (i = 0; i < FLUSHERS; i++) {
		void *ret;

		pthread_join(threads[i], &ret);
		CU_ASSERT_PTR_NULL(ret);
	}
	pthread_barrier_destroy(&f.start);
	volume_stat(vol, &after);
	fprintf(stderr, "%d flushes (%s): %llu passes\n", FLUSHERS,
		daemon ? "daemon" : "inline",
		(unsigned long long)(after.writeback_passes -
				     before.writeback_passes));
	CU_ASSERT(after.writeback_passes - before.writeback_passes <= 3);
	CU_ASSERT_EQUAL(after.dirty_bytes, 0);
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	free(data);
	scratch_remove(dir);
}

static void test_shared_flushes_daemon(void)
{
	shared_flushes(true);
}

static void test_shared_flushes_inline(void)
{
	shared_flushes(false);
}

/* Every backing-io mode keeps the data across a reopen. */
static void *flush_one(void *arg)
{
	return (void *)(intptr_t)volume_flush(arg);
}

/* A trim of 4 KiB at 32 MiB, in its own thread; @done once it returns. */
struct trimmer {
	struct volume *vol;
	int result;
	bool done;		/* atomic */
};

static void *trimmer(void *arg)
{
	struct trimmer *t = arg;

	t->result = volume_trim(t->vol, 4096, 32 * MiB, 0);
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Wait up to @limit seconds for @done; was it set? */
static bool wait_flag(const bool *done, double limit)
{
	double start = now_s();

	while (!__atomic_load_n(done, __ATOMIC_ACQUIRE) &&
	       now_s() - start < limit)
		usleep(1000);
	return __atomic_load_n(done, __ATOMIC_ACQUIRE);
}

/*
 * A trim, and reads, go on while a flush's pass waits for the disk: the
 * trim queues its unmap without waiting for the pass (which holds
 * meta_lock), so it does not stall every reader and writer behind it.
 */
static void test_trim_during_pass(void)
{
	struct volume_params p = { .cache_size = 16 * MiB,
				   .dirty_expire_ms = 3600000,
				   .writeback_interval_ms = 3600000 };
	char *dir;
	struct volume *vol = scratch_open(&dir, &p);
	unsigned char *data = pattern(MiB, 5), got[4096];
	struct trimmer t = { .vol = vol };
	pthread_t flush, trim;
	bool held = false;
	void *ret;
	double start;

	CU_ASSERT_PTR_NOT_NULL_FATAL(vol);
	CU_ASSERT_EQUAL(volume_pwrite(vol, data, 4096, 32 * MiB, 0), 0);
	CU_ASSERT_EQUAL(volume_flush(vol), 0);
	CU_ASSERT_EQUAL(volume_pwrite(vol, data, MiB, 0, 0), 0);
	volume_hold_writes(vol, true);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&flush, NULL, flush_one, vol),
			      0);
	for (start = now_s(); !held && now_s() - start < 10 * slack();
	     usleep(1000))
		held = volume_hold_writes(vol, true) > 0;
	CU_ASSERT_TRUE(held);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&trim, NULL, trimmer, &t), 0);
	CU_ASSERT_TRUE(wait_flag(&t.done, 5 * slack()));
	if (t.done)	/* else the read would wait behind the trim */
		CU_ASSERT_EQUAL(volume_pread(vol, got, sizeof got, 16 * MiB),
				0);
	volume_hold_writes(vol, false);
	pthread_join(trim, NULL);
	pthread_join(flush, &ret);
	CU_ASSERT_EQUAL(t.result, 0);
	CU_ASSERT_PTR_NULL(ret);
	CU_ASSERT_EQUAL(volume_flush(vol), 0);
	CU_ASSERT_EQUAL(volume_pread(vol, got, sizeof got, 32 * MiB), 0);
	CU_ASSERT_EQUAL(got[0] | got[4095], 0);
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	free(data);
	scratch_remove(dir);
}

static void test_backing_modes(void)
{
	static const enum volume_backing_io modes[] = {
		VOLUME_IO_AUTO, VOLUME_IO_DIRECT, VOLUME_IO_BUFFERED,
	};
	unsigned char *data = pattern(3 * MiB, 4), *got = malloc(3 * MiB);
	bool direct_ok = true;
	size_t i;

	for (i = 0; i < 3; i++) {
		struct volume_params p = { .backing_io = modes[i] };
		struct volume_stat st;
		struct volume *vol;
		char *dir;
		int err;

		dir = scratch_create();
		CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
		err = volume_open(dir, 0, &p, &vol);
		if (modes[i] == VOLUME_IO_DIRECT && err == -EINVAL) {
			direct_ok = false;	/* the filesystem refuses it */
			scratch_remove(dir);
			continue;
		}
		CU_ASSERT_EQUAL_FATAL(err, 0);
		volume_stat(vol, &st);
		CU_ASSERT_EQUAL(st.direct_io, modes[i] != VOLUME_IO_BUFFERED &&
						      direct_ok);
		CU_ASSERT_EQUAL(volume_start_writeback(vol), 0);
		CU_ASSERT_EQUAL(volume_pwrite(vol, data, 3 * MiB, 4096 + 17,
					      0), 0);
		CU_ASSERT_EQUAL(volume_close(vol), 0);
		CU_ASSERT_EQUAL_FATAL(volume_open(dir, 0, &p, &vol), 0);
		CU_ASSERT_EQUAL(volume_pread(vol, got, 3 * MiB, 4096 + 17), 0);
		CU_ASSERT(memcmp(got, data, 3 * MiB) == 0);
		CU_ASSERT_EQUAL(volume_close(vol), 0);
		scratch_remove(dir);
	}
	free(data);
	free(got);
}

/* Bytes the AG file takes on disk. */
static uint64_t ag_allocated(const char *dir)
{
	char *path = ag_file_path(dir, 0);
	struct stat st;
	int err = path ? stat(path, &st) : -1;

	free(path);
	return err ? 0 : (uint64_t)st.st_blocks * 512;
}

static void trim_space(enum volume_discard discard)
{
	struct volume_params p = { .discard = discard };
	char *dir;
	struct volume *vol = scratch_open(&dir, &p);
	unsigned char *data = pattern(8 * MiB, 5);
	uint64_t written, trimmed;

	CU_ASSERT_PTR_NOT_NULL_FATAL(vol);
	CU_ASSERT_EQUAL(volume_pwrite(vol, data, 8 * MiB, 0, 0), 0);
	CU_ASSERT_EQUAL(volume_flush(vol), 0);
	written = ag_allocated(dir);
	CU_ASSERT_EQUAL(volume_trim(vol, 8 * MiB, 0, 0), 0);
	CU_ASSERT_EQUAL(volume_flush(vol), 0);
	trimmed = ag_allocated(dir);
	CU_ASSERT(written >= 8 * MiB);
	CU_ASSERT(discard == VOLUME_DISCARD_PUNCH ? trimmed < MiB
						  : trimmed == written);
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	free(data);
	scratch_remove(dir);
}

static void test_discard_punch(void)
{
	trim_space(VOLUME_DISCARD_PUNCH);
}

static void test_discard_ignore(void)
{
	trim_space(VOLUME_DISCARD_IGNORE);
}

/* Bad tunables are refused with a message naming them. */
static void test_bad_params(void)
{
	struct volume_params p = { .cache_size = 8 * MiB,
				   .dirty_bytes = 16 * MiB };
	char *dir;
	struct volume *vol = NULL;

	dir = scratch_create();
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	CU_ASSERT_EQUAL(volume_open(dir, 0, &p, &vol), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(tm_get_error(), "dirty-bytes"));
	p.dirty_bytes = 2 * MiB;
	p.dirty_background_bytes = 3 * MiB;
	CU_ASSERT_EQUAL(volume_open(dir, 0, &p, &vol), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(tm_get_error(),
				      "dirty-background-bytes"));
	scratch_remove(dir);
}

/* The default cache: 1 GiB, or a quarter of the memory if less. */
static void test_default_cache(void)
{
	uint64_t mem = (uint64_t)sysconf(_SC_PHYS_PAGES) *
		       (uint64_t)sysconf(_SC_PAGESIZE);
	struct volume_params p;

	CU_ASSERT_EQUAL_FATAL(volume_params_resolve(NULL, 4096, &p), 0);
	CU_ASSERT_EQUAL(p.cache_size, volume_default_cache_size());
	CU_ASSERT(p.cache_size <= DEFAULT_CACHE_SIZE);
	CU_ASSERT(p.cache_size <= mem / 4);
	CU_ASSERT(p.cache_size == DEFAULT_CACHE_SIZE ||
		  p.cache_size > mem / 4 - DEFAULT_PAGE_SIZE);
	CU_ASSERT_EQUAL(p.dirty_bytes, p.cache_size / 2);
}

/* Counts the MAPPED blocks and the physical runs they make, in order. */
struct run_walk {
	uint64_t blocks, runs, next_pblk;
};

static int run_one(void *arg, const struct extent *ext)
{
	struct run_walk *w = arg;

	if (ext->state != EXT_MAPPED)
		return 0;
	w->runs += ext->pblk != w->next_pblk;
	w->next_pblk = ext->pblk + ext->len;
	w->blocks += ext->len;
	return 0;
}

/*
 * 4 KiB writes 1 MiB apart, in shuffled order, are packed: they land in
 * logical order in one physical run, and go out as one write.
 */
static void test_sparse_packed(void)
{
	const int n = SIZE / MiB;
	struct run_walk w = { 0, 0, PBLK_NULL };
	unsigned char *buf = pattern(4096, 9);
	char *dir;
	struct volume *vol = scratch_open(&dir, NULL);
	int i;

	CU_ASSERT_FATAL(vol && buf);
	for (i = 0; i < n; i++)
		CU_ASSERT_EQUAL(volume_pwrite(vol, buf, 4096,
					      (uint64_t)(i * 37 % n) * MiB, 0),
				0);
	CU_ASSERT_EQUAL(volume_flush(vol), 0);
	CU_ASSERT_EQUAL(volume_map(vol, run_one, &w), 0);
	CU_ASSERT_EQUAL(w.blocks, (uint64_t)n);
	CU_ASSERT_EQUAL(w.runs, 1);
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	scratch_remove(dir);
	free(buf);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "dirty data expires", test_expire },
		{ "background limit", test_background },
		{ "background limit, sparse writes", test_background_sparse },
		{ "flushes share passes (daemon)", test_shared_flushes_daemon },
		{ "flushes share passes (inline)", test_shared_flushes_inline },
		{ "trim during a pass", test_trim_during_pass },
		{ "backing-io modes", test_backing_modes },
		{ "discard=punch", test_discard_punch },
		{ "discard=ignore", test_discard_ignore },
		{ "bad parameters", test_bad_params },
		{ "default cache size", test_default_cache },
		{ "sparse small writes are packed", test_sparse_packed },
		{ NULL, NULL },
	};

	return unit_run("writeback", tests);
}
