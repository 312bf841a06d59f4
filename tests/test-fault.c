/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Failed backing writes and syncs (the backing files' test hook): a flush
 * returns the error, the data still reads back from the cache and stays
 * dirty, and once the fault is gone a flush succeeds and makes the data
 * durable (it reads back after reopening).  Nothing is dropped silently.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/create.h"
#include "thinmap/error.h"
#include "thinmap/volume.h"
#include "model.h"
#include "scratch.h"

#define SIZE (8u << 20)
#define LEN (1u << 20)
#define OFFSET 12345u

/* A fresh volume, opened; its path in *@dir. */
static struct volume *scratch_open(char **dir)
{
	struct create_opts opts = { .size = SIZE };
	struct volume *vol = NULL;

	*dir = scratch_volume("fault", &opts, NULL);
	if (*dir && volume_open(*dir, 0, NULL, &vol))
		fprintf(stderr, "scratch volume: %s\n", tm_get_error());
	return vol;
}

static unsigned char *pattern(unsigned char seed)
{
	unsigned char *p = malloc(LEN);
	size_t i;

	for (i = 0; i < LEN; i++)
		p[i] = (unsigned char)(i * 31 + seed);
	return p;
}

/* Does [OFFSET, +LEN) of @vol hold @want? */
static bool holds(struct volume *vol, const unsigned char *want)
{
	unsigned char *got = malloc(LEN);
	bool same = volume_pread(vol, got, LEN, OFFSET) == 0 &&
		    memcmp(got, want, LEN) == 0;

	free(got);
	return same;
}

/*
 * Write, fail the flush with @err on a write (@sync false) or a sync,
 * check the data is still there and dirty, clear the fault, flush, and
 * check the data survives a reopen; passes run by the writeback daemon
 * if @daemon, else by the flushing thread.
 */
static void fault_then_recover(bool sync, int err, bool daemon)
{
	char *dir;
	struct volume *vol = scratch_open(&dir);
	unsigned char *data = pattern((unsigned char)err);
	struct volume_stat st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(vol);
	if (daemon)
		CU_ASSERT_EQUAL(volume_start_writeback(vol), 0);
	CU_ASSERT_EQUAL(volume_pwrite(vol, data, LEN, OFFSET, 0), 0);
	volume_inject_fault(vol, sync, 1, err);
	CU_ASSERT_EQUAL(volume_flush(vol), -err);
	CU_ASSERT_EQUAL(volume_flush(vol), -err);	/* until it is gone */
	CU_ASSERT(holds(vol, data));
	volume_stat(vol, &st);
	if (!sync)	/* a failed write leaves its blocks dirty */
		CU_ASSERT(st.dirty_bytes >= LEN);
	volume_inject_fault(vol, sync, 0, 0);
	CU_ASSERT_EQUAL(volume_flush(vol), 0);
	CU_ASSERT_EQUAL(volume_flush(vol), 0);		/* reported once */
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	CU_ASSERT_EQUAL_FATAL(volume_open(dir, 0, NULL, &vol), 0);
	CU_ASSERT(holds(vol, data));
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	free(data);
	scratch_remove(dir);
}

static void test_write_eio(void)
{
	fault_then_recover(false, EIO, false);
}

static void test_write_enospc(void)
{
	fault_then_recover(false, ENOSPC, false);
}

static void test_sync_eio(void)
{
	fault_then_recover(true, EIO, false);
}

static void test_daemon_write_eio(void)
{
	fault_then_recover(false, EIO, true);
}

static void test_daemon_sync_eio(void)
{
	fault_then_recover(true, EIO, true);
}

/* The Nth write fails, not the ones before it. */
static void test_nth_write(void)
{
	char *dir;
	struct volume *vol = scratch_open(&dir);
	unsigned char *data = pattern(7);

	CU_ASSERT_PTR_NOT_NULL_FATAL(vol);
	volume_inject_fault(vol, false, 1000000, EIO);	/* far away */
	CU_ASSERT_EQUAL(volume_pwrite(vol, data, LEN, OFFSET, 0), 0);
	CU_ASSERT_EQUAL(volume_flush(vol), 0);
	volume_inject_fault(vol, false, 0, 0);
	CU_ASSERT_EQUAL(volume_close(vol), 0);
	free(data);
	scratch_remove(dir);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "write fails with EIO", test_write_eio },
		{ "write fails with ENOSPC", test_write_enospc },
		{ "sync fails with EIO", test_sync_eio },
		{ "write fails with EIO (daemon)", test_daemon_write_eio },
		{ "sync fails with EIO (daemon)", test_daemon_sync_eio },
		{ "only from the Nth write", test_nth_write },
		{ NULL, NULL },
	};

	return unit_run("fault", tests);
}
