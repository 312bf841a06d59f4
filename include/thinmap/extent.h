/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Extents: the unit of the logical-to-physical map, in blocks.
 *
 * An extent maps @len logical blocks from @lblk to the physical blocks from
 * @pblk, in one state.  Physical block numbers are XFS-style "fsblocks":
 * the allocation group in the high 32 bits and the block within the AG in
 * the low 32, so a run that crosses an AG boundary is never contiguous
 * (an AG holds at most AG_MAX_BLOCKS < 2^32 blocks).
 *
 * The same range operations (remove, insert with merging, set, convert)
 * work on any ordered store of extents keyed by logical block: the
 * in-memory extent map and the persistent records in LMDB both provide
 * the four primitives of struct extent_store_ops, and the algorithm that
 * splits, trims and merges lives once, here.
 */
#ifndef THINMAP_EXTENT_H
#define THINMAP_EXTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum extent_state {
	EXT_HOLE = 0,		/* no extent: only in lookup results */
	EXT_DELALLOC = 1,	/* reserved, no physical blocks yet; memory only */
	EXT_UNWRITTEN = 2,	/* allocated, reads as zeros */
	EXT_MAPPED = 3,		/* allocated and written */
};

/* Longest extent, in blocks, that one record holds. */
#define EXTENT_MAX_LEN (UINT32_C(1) << 31)

/* Largest allocation group, in blocks: agbno + len never reaches 2^32. */
#define AG_MAX_BLOCKS (UINT32_C(1) << 31)

#define PBLK_NULL UINT64_MAX
#define PBLK(ag, agbno) (((uint64_t)(ag) << 32) | (uint32_t)(agbno))
#define PBLK_AG(pblk) ((uint32_t)((pblk) >> 32))
#define PBLK_AGBNO(pblk) ((uint32_t)(pblk))

struct extent {
	uint64_t lblk;		/* first logical block */
	uint64_t len;		/* blocks; <= EXTENT_MAX_LEN except for holes */
	uint64_t pblk;		/* first physical block, PBLK_NULL if none */
	enum extent_state state;
};

static inline uint64_t extent_end(const struct extent *ext)
{
	return ext->lblk + ext->len;
}

/*
 * Clip @ext to [@lblk, @end), which must overlap it; the physical start
 * moves with the logical one for allocated states.
 */
void extent_clip(struct extent *ext, uint64_t lblk, uint64_t end);

/* A growable array of extents. */
struct extent_vec {
	struct extent *v;
	size_t n, cap;
};

/* Append @ext to @vec.  Returns 0 or -ENOMEM (@vec unchanged). */
int extent_vec_push(struct extent_vec *vec, const struct extent *ext);

/*
 * Copy the extents of @from onto the end of @vec.  Returns 0 or -ENOMEM
 * (@vec unchanged).
 */
int extent_vec_append(struct extent_vec *vec, const struct extent_vec *from);

/* Remove the first @n extents of @vec (n <= vec->n); the rest move up. */
void extent_vec_remove_front(struct extent_vec *vec, size_t n);

/* Free the array; @vec is empty afterwards. */
void extent_vec_free(struct extent_vec *vec);

/* Sort @vec by physical block. */
void extent_vec_sort_pblk(struct extent_vec *vec);

/* The name of @state for messages and `thinmap map`: "hole", "mapped"... */
const char *extent_state_name(enum extent_state state);

/*
 * Can @right be merged onto the end of @left?  Same state, logically
 * adjacent, physically adjacent for allocated states, and the result no
 * longer than EXTENT_MAX_LEN.
 */
bool extent_can_merge(const struct extent *left, const struct extent *right);

/*
 * An ordered store of extents keyed by lblk, with no two overlapping.
 * Each primitive returns 0, -ENOENT (lookups: no such extent) or another
 * negative errno from the store (-ENOMEM, -EIO, -EFSCORRUPTED...).
 */
struct extent_store_ops {
	/* The extent with the greatest lblk <= @lblk. */
	int (*lookup_le)(void *store, uint64_t lblk, struct extent *ext);
	/* The extent with the least lblk >= @lblk. */
	int (*lookup_ge)(void *store, uint64_t lblk, struct extent *ext);
	/*
	 * The extents on either side of @lblk: @left the last that starts
	 * before it, @right the first that starts at or after it; state
	 * EXT_HOLE for none.  (One search where two lookups would do two.)
	 */
	int (*neighbours)(void *store, uint64_t lblk, struct extent *left,
			  struct extent *right);
	/* Insert @ext, replacing the extent with the same lblk if any. */
	int (*put)(void *store, const struct extent *ext);
	/* Delete the extent that starts at @lblk. */
	int (*del)(void *store, uint64_t lblk);
};

/*
 * Remove the blocks [@lblk, @lblk + @len) from the store: extents inside
 * are deleted, extents across either edge are trimmed (one across both is
 * split in two).  Returns 0 or the store's negative errno.
 */
int extent_store_remove(const struct extent_store_ops *ops, void *store,
			uint64_t lblk, uint64_t len);

/*
 * Map the range of @ext to it, replacing whatever the range held, and merge
 * it with neighbours it can merge with.  Returns 0, -EINVAL if @ext is a
 * hole or its length is not 1 .. EXTENT_MAX_LEN, or the store's errno.
 */
int extent_store_set(const struct extent_store_ops *ops, void *store,
		     const struct extent *ext);

/*
 * As extent_store_set() for a range known to be a hole: skips the search
 * for what it overlaps.
 */
int extent_store_insert(const struct extent_store_ops *ops, void *store,
			const struct extent *ext);

/*
 * Change every extent in state @from within [@lblk, @lblk + @len) to state
 * @to, keeping its physical blocks (e.g. UNWRITTEN -> MAPPED at write
 * completion), splitting at the range edges and merging the results.
 * Returns 0 or the store's negative errno.
 */
int extent_store_convert(const struct extent_store_ops *ops, void *store,
			 uint64_t lblk, uint64_t len, enum extent_state from,
			 enum extent_state to);

#endif
