/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The inside of struct volume, shared by volume.c (lifecycle), and
 * volume-io.c (I/O entry points) and volume-iomap.c (how the volume maps
 * blocks: iomap and writeback ops).  Nothing outside those three files
 * sees it.
 *
 * Locks, outermost first:
 *   invalidate_lock  shared by reads, writes, flush; exclusive by zero and
 *                    trim, which remove mappings and cached blocks (the
 *                    kernel's mapping->invalidate_lock)
 *   meta_lock        one writeback pass or metadata transaction at a time
 *   folio locks      (pagecache.h)
 *   map_lock         the extent map (XFS's ILOCK): held briefly, never
 *                    across I/O
 *   allocator and cache locks (innermost)
 */
#ifndef THINMAP_VOLUME_IMPL_H
#define THINMAP_VOLUME_IMPL_H

#include <pthread.h>

#include "thinmap/alloc.h"
#include "thinmap/backing.h"
#include "thinmap/emap.h"
#include "thinmap/iomap.h"
#include "thinmap/meta.h"
#include "thinmap/pagecache.h"
#include "thinmap/volume.h"
#include "thinmap/writeback.h"

struct volume {
	char *dir;
	int dirfd;		/* holds the flock of a read-write open */
	unsigned int flags;
	struct thinmap_sb sb;
	unsigned int blkbits;
	uint64_t nr_blocks;	/* virtual size in blocks */
	struct meta *meta;
	struct backing backing;
	struct pagecache cache;
	pthread_rwlock_t invalidate_lock;
	pthread_mutex_t meta_lock;
	pthread_rwlock_t map_lock;
	struct emap map;	/* under map_lock */
	struct alloc alloc;
	/* Under meta_lock: */
	struct writepage_ctx *wpc;
	struct extent_vec written;	/* unwritten extents written back */
	int wb_error;		/* first writeback error since the last flush */
};

extern const struct iomap_ops volume_iomap_ops;
extern const struct iomap_writeback_ops volume_writeback_ops;

/*
 * Write back every dirty folio, record the new mappings (data synced
 * first) and commit, durably if @sync.  Takes meta_lock.  Returns 0 or the
 * first error, which is also kept for the next volume_flush().
 */
int volume_writeback(struct volume *vol, bool sync);

/*
 * Record the extents written back since the last commit as MAPPED, in one
 * transaction, after syncing their data (data before mapping); with
 * @sync, durably.  On failure they stay pending for the next try.  The
 * caller holds meta_lock.  Returns 0 or a negative errno.
 */
int volume_record_written(struct volume *vol, bool sync);

/*
 * Where to allocate the blocks for logical [@lblk, @lblk + @len), a pblk
 * (xfs_bmap_adjacent()): where the nearer of its allocated logical
 * neighbours puts it if physical distances follow logical ones, so that a
 * range written in any order ends up contiguous; else its place in its
 * home AG (alloc_home_hint()).  The caller holds map_lock.
 */
uint64_t volume_alloc_hint(struct volume *vol, uint64_t lblk, uint64_t len);

/*
 * How many of @len blocks to allocate at @hint: no more than fit between
 * the hint and the end of its AG (the rest gets its own hint, in the next
 * AG's region), nor than AG_MAX_BLOCKS.
 */
uint64_t volume_alloc_len(const struct volume *vol, uint64_t hint,
			  uint64_t len);

/* The page cache's ->writeback: volume_writeback(vol, false). */
int volume_writeback_cb(void *vol);

/*
 * Remove the DELALLOC blocks of [@lblk, @lblk + @nblks) that hold no
 * dirty data: reservations of writes that failed.  The caller holds
 * invalidate_lock exclusive, so no write is in flight.
 */
int volume_punch_delalloc(struct volume *vol, uint64_t lblk, uint64_t nblks);

#endif
