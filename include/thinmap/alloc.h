/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The space allocator: free space of each allocation group, and the
 * reservations that delayed allocation holds against it.
 *
 * Each AG keeps its free space as extents in two indices, like XFS's bnobt
 * and cntbt: by block number (to find the neighbours of a freed extent and
 * the free extent at an allocation hint) and by length (best fit).  Each AG
 * has its own lock, taken only by allocations and frees in that AG, so
 * writers to different regions of the volume (different home AGs,
 * alloc_home_hint()) rarely contend.
 *
 * Space accounting is volume-wide: free blocks and blocks reserved by
 * delalloc.  A reservation succeeds only while free - reserved covers it,
 * so every accepted delalloc write can be allocated later (DESIGN.md,
 * "thin provisioning").
 *
 * Units are blocks; physical blocks are PBLK(ag, agbno) (extent.h).
 * Lock order: an AG's lock, then the counters' lock; never two AG locks.
 */
#ifndef THINMAP_ALLOC_H
#define THINMAP_ALLOC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thinmap/extent.h"

struct alloc_ag;

struct alloc {
	uint32_t ag_count;
	uint32_t ag_blocks;		/* blocks in each AG */
	struct alloc_ag *ags;
	pthread_mutex_t lock;		/* protects the two counters */
	uint64_t free_blocks;		/* sum over the AGs */
	uint64_t reserved;		/* promised to delalloc */
};

/*
 * Set up @a for @ag_count AGs of @ag_blocks blocks (1 .. AG_MAX_BLOCKS)
 * where the extents @used[0 .. @n) are in use (their pblk and len count;
 * they must be sorted by pblk) and everything else is free.
 * Returns 0; -EFSCORRUPTED (message set) if a used extent lies outside its
 * AG, is empty, or overlaps or precedes the one before; -EINVAL (message
 * set) for bad geometry; -ENOMEM.  Takes O(n log n) time for n used extents.
 */
int alloc_init(struct alloc *a, uint32_t ag_count, uint32_t ag_blocks,
	       const struct extent *used, size_t n);
void alloc_destroy(struct alloc *a);

/*
 * The hint for allocating logical block @lblk of a volume of @nr_lblks
 * blocks when it has no allocated logical neighbour: its place in its home
 * AG.  The logical space is cut into ag_count equal regions, one per AG,
 * so writers to distant regions take different AG locks, and a block's
 * place in its AG is proportional to its place in its region, so blocks
 * written in any order land in logical order (a volume no bigger than its
 * capacity maps each block to itself).  Blocks past @nr_lblks go to the
 * start of the last AG.
 */
uint64_t alloc_home_hint(const struct alloc *a, uint64_t lblk,
			 uint64_t nr_lblks);

/*
 * Allocate up to @len blocks (1 .. AG_MAX_BLOCKS), contiguous in one AG:
 * at @hint if the free extent there holds all of @len, else the best
 * (smallest sufficient, lowest agbno among equals) fit in the hint's AG,
 * then in the other AGs in turn, and when no AG has @len contiguous
 * blocks, the longest free extent, the first such AG from the hint's on.
 * @hint is a pblk (PBLK_NULL, or an AG that does not exist: AG 0).
 * If @from_resv, the caller holds a reservation of @len blocks from
 * alloc_reserve() and it shrinks by *@got as the blocks are allocated (the
 * caller unreserves the rest).  Without @from_resv only unreserved free
 * space is taken, at most free - reserved blocks, so that what delalloc
 * was promised stays free.  Sets *@pblk and *@got (1 .. @len).
 * Returns 0; -ENOSPC when no block is free (without @from_resv: no
 * unreserved block); -EINVAL for a @len out of range; -ENOMEM.
 */
int alloc_extent(struct alloc *a, uint64_t hint, uint32_t len, bool from_resv,
		 uint64_t *pblk, uint32_t *got);

/*
 * Are [@pblk, @pblk + @len) all free (reserved or not)?  Takes the AG
 * lock; the answer may be stale by the time it is used.  False for blocks
 * outside the AGs.
 */
bool alloc_is_free(struct alloc *a, uint64_t pblk, uint32_t len);

/*
 * Return [@pblk, @pblk + @len) to free space, merging with free
 * neighbours.  Returns 0, -EFSCORRUPTED (message set) if any of the blocks
 * is outside its AG or already free (a double free: nothing is changed),
 * or -ENOMEM.
 */
int alloc_free(struct alloc *a, uint64_t pblk, uint32_t len);

/*
 * Reserve @nblks blocks for delalloc.  Returns 0, or -ENOSPC if free -
 * reserved is less than @nblks (nothing is reserved then).
 */
int alloc_reserve(struct alloc *a, uint64_t nblks);

/* Give back @nblks reserved blocks that will not be allocated. */
void alloc_unreserve(struct alloc *a, uint64_t nblks);

struct alloc_stat {
	uint64_t free_blocks;	/* free, including reserved */
	uint64_t reserved;	/* reserved by delalloc */
	uint64_t free_extents;	/* free extents over all AGs */
	uint64_t longest;	/* longest free extent */
};

/* A consistent snapshot of the counters, taking each AG's lock in turn. */
void alloc_stat(struct alloc *a, struct alloc_stat *st);

#endif
