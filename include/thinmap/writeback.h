/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writeback: dirty folios to the AG files, in logical order, merged into
 * large ioends (seed 004: iomap_writepages, iomap_writepage_map,
 * ->map_blocks, iomap_add_to_ioend, ->submit_ioend, completion).
 *
 * The generic part here walks the dirty folios and builds ioends; the
 * volume's writeback ops map blocks (turning delalloc into real blocks)
 * and learn of each finished ioend, to record its mapping.  An ioend
 * grows while the logical and physical ranges stay contiguous and the type
 * is the same; a write carries ioends while they stay physically
 * contiguous, up to IOEND_MAX_BYTES.
 *
 * Blocks in an ioend are under writeback (pagecache.h): writers wait for
 * it to end before they change them.  Up to BACKING_QUEUE_DEPTH writes
 * are in flight at once; completed ioends are sorted and merged
 * (iomap_sort_ioends, iomap_ioend_try_merge) before the volume hears of
 * them, so that it records one mapping for many ioends.  One writeback
 * runs at a time, and it has the backing files' ring to itself: the
 * caller serializes iomap_writepages() calls.
 */
#ifndef THINMAP_WRITEBACK_H
#define THINMAP_WRITEBACK_H

#include <stdint.h>

#include "thinmap/backing.h"
#include "thinmap/iomap.h"
#include "thinmap/pagecache.h"

#define IOEND_MAX_BYTES (UINT64_C(4) << 20)
/* Most writes being built at once (struct wb_write). */
#define WB_OPEN_MAX 4

/* A run of blocks of one folio in a write. */
struct ioend_seg {
	struct folio *folio;
	unsigned int first, n;		/* blocks */
};

/*
 * Blocks written back together that are contiguous both logically and
 * physically, of one type: the unit of completion (the kernel's struct
 * iomap_ioend).  Its blocks are the segs [first_seg, first_seg + nr_segs)
 * of the write that carries it.
 */
struct ioend {
	uint64_t offset;		/* logical start, bytes */
	uint64_t size;			/* bytes */
	uint32_t ag;
	uint64_t addr;			/* start in the AG file, bytes */
	uint16_t type;			/* IOMAP_MAPPED or IOMAP_UNWRITTEN */
	int error;			/* of the write: 0 or -errno */
	int first_seg, nr_segs;
};

/*
 * One vectored write to an AG file, carrying ioends that follow each
 * other physically but not always logically: sparse blocks allocated side
 * by side go out as one write, as the kernel's block layer merges the bios
 * of such ioends in its plug (blk_attempt_plug_merge).  Like the plug,
 * writepages keeps up to WB_OPEN_MAX writes open and grows whichever one
 * a block continues: an overwrite in place among blocks allocated side by
 * side does not split their write.
 */
struct wb_write {
	struct backing_write io;	/* first: backing_reap() returns it */
	uint64_t size;			/* bytes */
	int nr_segs, nr_ioends;
	struct ioend_seg segs[BACKING_IOV_MAX];
	struct iovec iov[BACKING_IOV_MAX];
	struct ioend ioends[BACKING_IOV_MAX];	/* each has a seg or more */
};

/* Which dirty folios a writeback pass takes (the kernel's wbc). */
struct writeback_control {
	uint64_t range_start, range_end;	/* bytes */
	uint64_t dirtied_before;	/* pagecache_now_ms() time; UINT64_MAX:
					   however recently dirtied */
};

struct writepage_ctx;

struct iomap_writeback_ops {
	/*
	 * Map the dirty range [@pos, @pos + @len) from @pos on into
	 * wpc->iomap (the cached mapping may still be good: the volume
	 * checks), allocating delalloc blocks.  0 or -errno.
	 */
	int (*map_blocks)(struct writepage_ctx *wpc, uint64_t pos,
			  uint64_t len);
	/*
	 * @ioend was written (ioend->error 0) or failed; its blocks are
	 * still under writeback.  On failure they are dirtied again after
	 * this returns.  Completed ioends that continue each other, and did
	 * not fail, come merged: @ioend's offset and size cover them all.
	 */
	void (*end_io)(struct writepage_ctx *wpc, struct ioend *ioend);
};

struct writepage_ctx {
	const struct iomap_writeback_ops *ops;
	struct volume *vol;
	struct pagecache *cache;
	struct backing *backing;
	struct iomap iomap;		/* the last mapping from map_blocks */
	uint64_t seq;			/* the volume's, for iomap */
	/* The writes being built, the most recently grown last. */
	struct wb_write *open[WB_OPEN_MAX];
	int nr_open;
	struct wb_write *free[BACKING_QUEUE_DEPTH];	/* idle writes */
	int nr_free;
	struct ioend **done;		/* room for every ioend in flight */
	uint64_t *indices;		/* room for cache->max_folios */
	int error;			/* the first error of this pass */
};

/*
 * Set up @wpc, with ops and volume, for @cache and @backing.  Returns 0
 * or -ENOMEM.
 */
int writepage_ctx_init(struct writepage_ctx *wpc,
		       const struct iomap_writeback_ops *ops,
		       struct volume *vol, struct pagecache *cache,
		       struct backing *backing);
void writepage_ctx_destroy(struct writepage_ctx *wpc);

/*
 * Write back the dirty folios that @wbc selects, and wait for every write
 * to complete.  Returns 0, or the first error of a write or of map_blocks
 * (the blocks concerned stay dirty).  The caller holds no folio lock.
 */
int iomap_writepages(struct writepage_ctx *wpc,
		     const struct writeback_control *wbc);

#endif
