/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The inside of struct volume, shared by volume.c (lifecycle), and
 * volume-io.c (I/O entry points) and volume-iomap.c (how the volume maps
 * blocks: iomap and writeback ops).  Nothing outside those three files
 * sees it.
 *
 * Locks, outermost first:
 *   invalidate_lock  shared by reads, writes and block status; exclusive
 *                    by zero and trim, which remove mappings and cached
 *                    blocks (the kernel's mapping->invalidate_lock);
 *                    writeback passes do not take it
 *   meta_lock        one writeback pass or commit at a time; it guards
 *                    the backing ring
 *   folio locks      (pagecache.h)
 *   pending_lock     the pending records and busy extents: held briefly,
 *                    never across I/O, never with a folio lock; trim and
 *                    zero queue their changes under it, so they never wait
 *                    for a pass
 *   map_lock         the extent map (XFS's ILOCK): held briefly, never
 *                    across I/O
 *   wb_lock          the writeback requests and the daemon's state
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
	pthread_mutex_t pending_lock;
	pthread_rwlock_t map_lock;
	struct emap map;	/* under map_lock */
	struct alloc alloc;
	uint64_t pack_next;	/* under map_lock: where small extents go */
	enum volume_discard discard;
	/* Under meta_lock: */
	struct writepage_ctx *wpc;
	struct extent_vec committing;	/* pending records being committed */
	struct extent_vec freeing;	/* busy extents they free */
	/*
	 * Under pending_lock: changes of the map not committed yet, in the
	 * order they were made: MAPPED or UNWRITTEN records, and holes
	 * (EXT_HOLE) for unmaps.  Like XFS's deferred ops, they reach the
	 * metadata in one transaction.
	 */
	struct extent_vec pending;
	/*
	 * Under pending_lock: blocks the pending unmaps free, free only after
	 * a durable commit.  An unmap queues its hole before its busy blocks,
	 * under one hold of the lock: a commit that takes the first N records
	 * and the first B busy extents in one hold never frees a block whose
	 * unmap it does not commit.
	 */
	struct extent_vec busy;
	int wb_error;		/* first writeback error since the last flush */
	/* Writeback requests and the daemon (volume-writeback.c): */
	pthread_mutex_t wb_lock;
	pthread_cond_t wb_cond;	/* a pass ended */
	uint64_t flush_req, flush_done;	/* flush passes asked for, done */
	uint64_t wb_req, wb_done;	/* writeback passes asked for, done */
	int flush_result;	/* of the last flush pass */
	int wb_result;		/* of the last requested pass */
	bool pass_running;	/* a pass runs */
	uint64_t pass_ends;	/* passes ended: the stat's count */
	struct wb_daemon *daemon;	/* NULL unless started */
	uint32_t dirty_expire_ms, writeback_interval_ms;
};

/* Most pending records before a trim or zero commits them itself. */
#define PENDING_MAX 16384
/*
 * Changes the metadata log holds before a commit checkpoints it: 16k
 * records cost 2.8 us each to apply in one transaction, against 6 us for
 * each record of ~1000 applied at once.
 */
#define LOG_MAX 16384

extern const struct iomap_ops volume_iomap_ops;
extern const struct iomap_writeback_ops volume_writeback_ops;

/*
 * Commit the records pending now in one transaction, durably if @sync (or
 * if blocks are busy, which are then freed, and punched out of the AG
 * files with discard=punch).  AG files are synced first: data before
 * mapping.  The caller holds meta_lock; records queued meanwhile stay
 * pending, and so do all on failure.  Returns 0 or a negative errno.
 */
int volume_commit(struct volume *vol, bool sync);

/* Are PENDING_MAX records or more pending?  Takes pending_lock. */
bool volume_pending_full(struct volume *vol);

/*
 * Write back every dirty folio and commit (a writeback pass, not durable),
 * waiting for it: run by the daemon if it runs, else by this thread.  The
 * caller holds invalidate_lock shared (or nothing).  Returns 0 or the
 * pass's error, which is also kept for the next volume_flush().
 */
int volume_writeback(struct volume *vol);

/*
 * Write back the dirty folios of [@offset, @offset + @count) (bytes) and
 * commit durably, in this thread: a FUA write.  0 or a negative errno.
 */
int volume_writeback_range(struct volume *vol, uint64_t offset,
			   uint64_t count);

/* The page cache's ->writeback (pagecache.h). */
int volume_writeback_cb(void *vol, enum pagecache_wb how);

/*
 * Stop the writeback daemon if it runs (pending requests are served
 * first).  Called by volume_close().
 */
void volume_stop_writeback(struct volume *vol);

/*
 * Allocate blocks for logical [@lblk, @lblk + @len) (from the delalloc
 * reservation if @reserved) where they belong: packed after the last
 * small extent packed if small and sparse, else contiguous with their
 * logical neighbours or at their home (volume-iomap.c: alloc_hint()).
 * The first block in *@pblk, how many in *@got (1 to @len: no more than
 * fit in one AG).  The caller holds map_lock exclusive.  Returns 0,
 * -ENOSPC, -ENOMEM.
 */
int volume_alloc_blocks(struct volume *vol, uint64_t lblk, uint64_t len,
			bool reserved, uint64_t *pblk, uint32_t *got);

/*
 * Remove the DELALLOC blocks of [@lblk, @lblk + @nblks) that hold no
 * dirty data: reservations of writes that failed.  The caller holds
 * invalidate_lock exclusive, so no write is in flight.
 */
int volume_punch_delalloc(struct volume *vol, uint64_t lblk, uint64_t nblks);

#endif
