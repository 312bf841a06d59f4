/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The generic writeback (writeback.c) with stub ops on one AG file: two
 * folios far apart logically but allocated side by side go out as one
 * write, completed as two ioends, even with an overwrite elsewhere between
 * them in logical order; when the completion of one ioend fails,
 * its blocks stay dirty, the other's do not, and the pass returns the
 * error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/writeback.h"
#include "model.h"
#include "scratch.h"

#define BLOCK 4096u
#define PAGE (16 * BLOCK)
#define FAR_INDEX 3		/* the second folio: logical page 3 */
#define ELSEWHERE 8		/* where other pages are, in pages of the AG */

static struct {
	int nr_end_io;
	uint64_t offset[4], size[4];
	uint64_t fail_offset;	/* end_io of the ioend here fails */
} stub;

/*
 * Logical page 0 at AG bytes 0, page FAR_INDEX right after it, any other
 * page ELSEWHERE pages further on.
 */
static int stub_map_blocks(struct writepage_ctx *wpc, uint64_t pos,
			   uint64_t len)
{
	uint64_t page = pos / PAGE;

	wpc->iomap = (struct iomap){
		.offset = page * PAGE,
		.length = PAGE,
		.addr = page == 0 ? 0
			: page == FAR_INDEX ? PAGE
					    : (page + ELSEWHERE) * PAGE,
		.ag = 0,
		.type = IOMAP_UNWRITTEN,
	};
	return 0;
}

static void stub_end_io(struct writepage_ctx *wpc, struct ioend *ioend)
{
	if (stub.nr_end_io < 4) {
		stub.offset[stub.nr_end_io] = ioend->offset;
		stub.size[stub.nr_end_io] = ioend->size;
	}
	stub.nr_end_io++;
	if (ioend->offset == stub.fail_offset)
		ioend->error = -ENOMEM;
}

static const struct iomap_writeback_ops stub_ops = {
	.map_blocks = stub_map_blocks,
	.end_io = stub_end_io,
};

static int no_writeback(void *owner, enum pagecache_wb how)
{
	return -EAGAIN;
}

struct rig {
	char *dir;
	struct backing backing;
	struct pagecache cache;
	struct writepage_ctx wpc;
};

/* Fill folio @index with @byte, all of it dirty. */
static int dirty_folio(struct rig *r, uint64_t index, int byte)
{
	struct folio *f;

	if (folio_get(&r->cache, index, true, &f))
		return -1;
	pthread_mutex_lock(&f->lock);
	memset(f->data, byte, PAGE);
	folio_mark_dirty(&r->cache, f, 0, PAGE / BLOCK);
	pthread_mutex_unlock(&f->lock);
	folio_put(&r->cache, f);
	return 0;
}

/*
 * A volume's AG file, a cache, and folios 0 and FAR_INDEX dirty, filled
 * with 0x11 and 0x22.
 */
static int rig_setup(struct rig *r)
{
	struct create_opts opts = { .size = 4 << 20, .ag_count = 1 };

	memset(r, 0, sizeof *r);
	r->dir = scratch_volume("ioend", &opts, NULL);
	if (!r->dir)
		return -1;
	if (backing_open(&r->backing, r->dir, 1, false, BLOCK,
			 BACKING_IO_BUFFERED) ||
	    pagecache_init(&r->cache, 4 * PAGE, PAGE, BLOCK, 4 * PAGE,
			   4 * PAGE, no_writeback, NULL) ||
	    writepage_ctx_init(&r->wpc, &stub_ops, NULL, &r->cache,
			       &r->backing))
		return -1;
	if (dirty_folio(r, 0, 0x11) || dirty_folio(r, FAR_INDEX, 0x22))
		return -1;
	memset(&stub, 0, sizeof stub);
	stub.fail_offset = UINT64_MAX;
	return 0;
}

static void rig_teardown(struct rig *r)
{
	writepage_ctx_destroy(&r->wpc);
	pagecache_destroy(&r->cache);
	backing_close(&r->backing);
	scratch_remove(r->dir);
}

/* Does folio @index have dirty blocks? */
static bool folio_is_dirty(struct rig *r, uint64_t index)
{
	struct folio *f;
	bool dirty;

	if (folio_get(&r->cache, index, false, &f))
		return false;
	pthread_mutex_lock(&f->lock);
	dirty = block_find(f->dirty, 0, PAGE / BLOCK, true) < PAGE / BLOCK;
	pthread_mutex_unlock(&f->lock);
	folio_put(&r->cache, f);
	return dirty;
}

static int writepages_all(struct rig *r)
{
	struct writeback_control wbc = { 0, UINT64_MAX, UINT64_MAX };

	return iomap_writepages(&r->wpc, &wbc);
}

static void test_packed(void)
{
	static unsigned char got[2 * PAGE];
	struct rig r;

	CU_ASSERT_FATAL(rig_setup(&r) == 0);
	backing_inject_fault(&r.backing, BACKING_WRITE, 2, EIO); /* one only */
	CU_ASSERT_EQUAL(writepages_all(&r), 0);
	backing_inject_fault(&r.backing, BACKING_WRITE, 0, 0);
	CU_ASSERT_EQUAL(stub.nr_end_io, 2);
	CU_ASSERT_EQUAL(stub.offset[0], 0);
	CU_ASSERT_EQUAL(stub.size[0], PAGE);
	CU_ASSERT_EQUAL(stub.offset[1], FAR_INDEX * PAGE);
	CU_ASSERT_EQUAL(stub.size[1], PAGE);
	CU_ASSERT_EQUAL(backing_read(&r.backing, 0, got, sizeof got, 0), 0);
	CU_ASSERT(got[0] == 0x11 && got[PAGE - 1] == 0x11);
	CU_ASSERT(got[PAGE] == 0x22 && got[2 * PAGE - 1] == 0x22);
	CU_ASSERT_FALSE(folio_is_dirty(&r, 0));
	CU_ASSERT_FALSE(folio_is_dirty(&r, FAR_INDEX));
	rig_teardown(&r);
}

/*
 * Folio 1, written back in place elsewhere, comes between folios 0 and
 * FAR_INDEX in logical order: they still go out as one write, folio 1 as
 * a second one (a third would fail).
 */
static void test_overwrite_between(void)
{
	static unsigned char got[2 * PAGE];
	struct rig r;

	CU_ASSERT_FATAL(rig_setup(&r) == 0);
	CU_ASSERT_FATAL(dirty_folio(&r, 1, 0x33) == 0);
	backing_inject_fault(&r.backing, BACKING_WRITE, 3, EIO);
	CU_ASSERT_EQUAL(writepages_all(&r), 0);
	backing_inject_fault(&r.backing, BACKING_WRITE, 0, 0);
	CU_ASSERT_EQUAL(stub.nr_end_io, 3);
	CU_ASSERT_EQUAL(backing_read(&r.backing, 0, got, sizeof got, 0), 0);
	CU_ASSERT(got[0] == 0x11 && got[PAGE] == 0x22);
	CU_ASSERT_EQUAL(backing_read(&r.backing, 0, got, PAGE,
				     (1 + ELSEWHERE) * PAGE), 0);
	CU_ASSERT(got[0] == 0x33 && got[PAGE - 1] == 0x33);
	CU_ASSERT_FALSE(folio_is_dirty(&r, 1));
	rig_teardown(&r);
}

static void test_end_io_fails(void)
{
	struct rig r;

	CU_ASSERT_FATAL(rig_setup(&r) == 0);
	stub.fail_offset = FAR_INDEX * PAGE;
	CU_ASSERT_EQUAL(writepages_all(&r), -ENOMEM);
	CU_ASSERT_FALSE(folio_is_dirty(&r, 0));
	CU_ASSERT_TRUE(folio_is_dirty(&r, FAR_INDEX));
	/* Once the volume copes again, the next pass writes it. */
	stub.fail_offset = UINT64_MAX;
	stub.nr_end_io = 0;
	CU_ASSERT_EQUAL(writepages_all(&r), 0);
	CU_ASSERT_EQUAL(stub.nr_end_io, 1);
	CU_ASSERT_FALSE(folio_is_dirty(&r, FAR_INDEX));
	rig_teardown(&r);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "sparse blocks side by side: one write, two ioends",
		  test_packed },
		{ "an overwrite between them does not split their write",
		  test_overwrite_between },
		{ "a failed completion keeps its blocks dirty",
		  test_end_io_fails },
		{ NULL, NULL },
	};

	return unit_run("ioend", tests);
}
