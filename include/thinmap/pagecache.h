/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page cache: folios of the volume's data, each a power of two of
 * blocks, with per-block uptodate and dirty bitmaps, as the kernel's
 * struct iomap_folio_state (seed 000) keeps them: a write of whole blocks
 * never reads, and writeback writes only dirty blocks.
 *
 * The cache has a hard size.  Clean folios that nobody holds sit on an
 * LRU list and are reused oldest first; dirty folios sit on the dirty list
 * and can go only after writeback has cleaned them: when every folio is
 * dirty or held, folio_get() fails with -EAGAIN and the caller writes back
 * and tries again.
 *
 * Locking: the cache's lock (innermost) protects the index, the lists,
 * reference counts and the folio count (the dirty count is atomic); a
 * folio's lock protects its data, bitmaps and writeback count.  Take a
 * folio's lock while holding a reference, never while holding the cache's
 * lock, and hold one folio lock at a time.
 *
 * Writeback, as the kernel's folio writeback bit: blocks taken for
 * writeback stop being dirty and count as being written; the folio is
 * unlocked while the write runs, and whoever changes its data first waits
 * until no block of it is being written (stable pages).
 */
#ifndef THINMAP_PAGECACHE_H
#define THINMAP_PAGECACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FOLIO_MAX_BLOCKS 256
#define FOLIO_WORDS (FOLIO_MAX_BLOCKS / 64)

/* What the cache asks of its ->writeback. */
enum pagecache_wb {
	PAGECACHE_WB_START,	/* over the background limit: start
				   writeback and return at once */
	PAGECACHE_WB_THROTTLE,	/* a writer over the dirty limit: return
				   once the writeback under way has
				   cleaned folios (balance_dirty_pages) */
	PAGECACHE_WB_RECLAIM,	/* every folio is dirty or held: write
				   back every dirty folio, and return when
				   that is done */
};

struct folio {
	uint64_t index;			/* position >> page_shift */
	pthread_mutex_t lock;		/* data and bitmaps */
	unsigned char *data;		/* page_size bytes, 4 KiB aligned */
	uint64_t uptodate[FOLIO_WORDS];	/* block holds the volume's data */
	uint64_t dirty[FOLIO_WORDS];	/* block must be written back */
	unsigned int writeback;		/* blocks being written */
	pthread_cond_t wb_done;		/* writeback dropped to 0 */
	/* The cache's, under its lock: */
	unsigned int refcount;
	unsigned char list;		/* which list: FOLIO_LIST_* */
	uint64_t dirtied_ms;		/* when it last became dirty */
	struct folio *hnext;		/* hash chain */
	struct folio *prev, *next;	/* on the LRU or the dirty list */
};

struct folio_list {
	struct folio head;		/* a sentinel */
	size_t count;			/* changed atomically under the
					   cache's lock: the dirty list's is
					   read without it */
};

struct pagecache {
	pthread_mutex_t lock;
	unsigned int page_shift, block_shift, blocks;	/* blocks per folio */
	size_t max_folios, nr_folios;
	unsigned char **chunks;		/* folio memory, CHUNK_BYTES each */
	size_t nr_chunks, chunk_used;	/* bytes used of the last chunk */
	struct folio **hash;
	size_t hash_mask;
	struct folio_list lru;		/* clean, unreferenced: oldest first */
	struct folio_list dirty;	/* with dirty blocks */
	struct folio_list free;		/* empty, out of the index */
	uint64_t dirty_blocks;		/* atomic */
	/* Blocks, compared with dirty.count * blocks: */
	uint64_t dirty_limit;		/* writers wait above */
	uint64_t background_limit;	/* writeback starts above */
	uint64_t ra_next;		/* where a sequential read goes next */
	/*
	 * Write back dirty folios as @how says.  Called with no folio lock
	 * held.  Returns 0 or a negative errno.
	 */
	int (*writeback)(void *owner, enum pagecache_wb how);
	void *owner;
};

/*
 * Set up a cache of at most @cache_size bytes of folios of @page_size
 * bytes (a power of two, @block_size .. 256 blocks) holding blocks of
 * @block_size bytes.  Writers start writeback through @writeback(@owner,
 * PAGECACHE_WB_START) when the dirty folios hold more than
 * @background_limit bytes, and wait for it (PAGECACHE_WB_THROTTLE) above
 * @dirty_limit.  A folio with one dirty block counts whole, as the
 * kernel's dirty accounting counts every page of a large folio: sparse
 * small writes start writeback before every folio of the cache is dirty.
 * Returns 0, -EINVAL for bad sizes (message set), or -ENOMEM.
 */
int pagecache_init(struct pagecache *pc, uint64_t cache_size,
		   uint32_t page_size, uint32_t block_size,
		   uint64_t dirty_limit, uint64_t background_limit,
		   int (*writeback)(void *owner, enum pagecache_wb how),
		   void *owner);

/* Free every folio; none may be held. */
void pagecache_destroy(struct pagecache *pc);

/*
 * The folio for @index, held (a reference), created empty (nothing
 * uptodate) if it is not cached and @create.  When every folio is dirty
 * or held it calls ->writeback (PAGECACHE_WB_RECLAIM) and tries again.
 * Returns 0 and sets *@foliop; -ENOENT if absent and !@create; -EAGAIN if
 * writeback freed nothing; its error if writeback failed; -ENOMEM.  No
 * folio lock may be held by the caller when @create.
 */
int folio_get(struct pagecache *pc, uint64_t index, bool create,
	      struct folio **foliop);

/* Drop a reference taken by folio_get() or folio_hold(). */
void folio_put(struct pagecache *pc, struct folio *folio);

/* Take another reference to @folio, which the caller holds already. */
void folio_hold(struct pagecache *pc, struct folio *folio);

/*
 * Start writing back blocks [@first, @first + @n): they are no longer
 * dirty, and count as being written.  Caller holds the folio's lock.
 */
void folio_start_writeback(struct pagecache *pc, struct folio *folio,
			   unsigned int first, unsigned int n);

/*
 * The write of blocks [@first, @first + @n) is done: dirty them again if
 * it failed (@error), and wake the waiters when no block is being written.
 * Caller holds the folio's lock.
 */
void folio_end_writeback(struct pagecache *pc, struct folio *folio,
			 unsigned int first, unsigned int n, int error);

/* Wait until @folio has no write in flight.  Caller holds its lock. */
void folio_wait_writeback(struct folio *folio);

/*
 * Mark blocks [@first, @first + @n) of @folio uptodate and dirty.  The
 * caller holds the folio's lock.
 */
void folio_mark_dirty(struct pagecache *pc, struct folio *folio,
		      unsigned int first, unsigned int n);

/*
 * Forget blocks [@first, @first + @n): neither uptodate nor dirty, once
 * no write of the folio is in flight.  The caller holds the folio's lock.
 */
void folio_invalidate(struct pagecache *pc, struct folio *folio,
		      unsigned int first, unsigned int n);

/* The time on the clock of dirtied_ms (CLOCK_MONOTONIC), milliseconds. */
uint64_t pagecache_now_ms(void);

/*
 * Fill @out with the indices of the folios in [@start, @end) that became
 * dirty before @dirtied_before (pagecache_now_ms() time; UINT64_MAX: all
 * dirty folios), in ascending order, and return how many; @out has room
 * for max_folios.  A snapshot: folios may be cleaned or dirtied
 * afterwards.  The dirty list is in the order folios became dirty, so
 * this stops at the first one too young (the kernel's b_io/b_more_io
 * expiry by dirtied_when).
 */
size_t pagecache_dirty_indices(struct pagecache *pc, uint64_t start,
			       uint64_t end, uint64_t dirtied_before,
			       uint64_t *out);

/*
 * balance_dirty_pages(): with the dirty folios over the dirty limit, write
 * back and wait; over the background limit, start writeback.  Returns 0
 * or writeback's error.  No folio lock may be held.
 */
int pagecache_balance_dirty(struct pagecache *pc);

typedef int (*pagecache_walk_fn)(struct pagecache *pc, struct folio *folio,
				 unsigned int first, unsigned int end,
				 void *arg);

/*
 * Call @fn for each cached folio with blocks in [@first, @end) (blocks of
 * the volume), in order, with the folio locked and [@first, @end) its
 * blocks in the range.  Stops at @fn's first nonzero return and returns
 * it.  A range longer than the cache visits only the cached folios, not
 * every index.  The caller holds no folio lock.
 */
int pagecache_walk(struct pagecache *pc, uint64_t first, uint64_t end,
		   pagecache_walk_fn fn, void *arg);

/*
 * The run of blocks from @first (below @end) that all hold data in the
 * cache (an uptodate block), or all do not: returns where it ends and sets
 * *@data.  Takes folio locks: the caller holds none.
 */
uint64_t pagecache_data_run(struct pagecache *pc, uint64_t first, uint64_t end,
			    bool *data);

/* Counters, in bytes. */
uint64_t pagecache_dirty_bytes(struct pagecache *pc);
uint64_t pagecache_bytes(struct pagecache *pc);

/* Bitmap helpers on a folio's uptodate or dirty map; bits are blocks. */
static inline bool block_test(const uint64_t *map, unsigned int bit)
{
	return map[bit / 64] >> (bit % 64) & 1;
}

/*
 * The first bit in [@from, @end) that is @set (true: 1, false: 0), or
 * @end if none.
 */
unsigned int block_find(const uint64_t *map, unsigned int from,
			unsigned int end, bool set);

void blocks_set(uint64_t *map, unsigned int first, unsigned int n);
void blocks_clear(uint64_t *map, unsigned int first, unsigned int n);

#endif
