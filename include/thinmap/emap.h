/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-memory extent map: logical blocks -> extents, the counterpart of
 * XFS's in-core extent list (struct xfs_ifork).
 *
 * It holds DELALLOC, UNWRITTEN and MAPPED extents; a logical block in no
 * extent is a hole.  Extents never overlap, and after every change an
 * extent is merged with neighbours it can merge with (extent_can_merge()).
 * Lookup and update are O(log n); a record costs about 35 bytes at random
 * insertion order and 24 in order (the B+tree's fill).
 *
 * Units are blocks throughout.  The map has no lock: the volume holds its
 * map lock shared around lookups and iteration, and exclusive around
 * changes.  @seq changes with every change, so that a caller who cached a
 * mapping (writeback's map_blocks) can tell whether it is still valid.
 */
#ifndef THINMAP_EMAP_H
#define THINMAP_EMAP_H

#include <stddef.h>
#include <stdint.h>

#include "thinmap/btree.h"
#include "thinmap/extent.h"

/*
 * Searches an insert can skip.  @hole: the last exclusive lookup
 * (emap_lookup_excl) found a hole at @hole_lblk, and @cur is at the last
 * extent before it (if @found): an insert there needs no search for its
 * neighbours.  @left: @cur is at the left neighbour an insert just found,
 * whose value a merge can change in place.  Any change of the tree ends
 * both.
 */
struct emap_hint {
	bool hole, found, left;
	uint64_t hole_lblk;
	struct btree_cursor cur;
};

struct emap {
	struct btree tree;	/* lblk -> struct emap_rec */
	uint64_t seq;		/* bumped by every change */
	struct emap_hint hint;	/* only with the map held exclusive */
};

void emap_init(struct emap *map);
void emap_destroy(struct emap *map);

/*
 * The extent that covers @lblk, or the hole from @lblk up to the next
 * extent (state EXT_HOLE, pblk PBLK_NULL; up to 2^64 - 1 if none follows).
 * @ext->lblk is the start of the whole extent, which may be before @lblk.
 */
void emap_lookup(const struct emap *map, uint64_t lblk, struct extent *ext);

/*
 * As emap_lookup(), for a caller that holds the map exclusive and may
 * insert into the hole found next (emap_insert): remembers where it
 * looked.
 */
void emap_lookup_excl(struct emap *map, uint64_t lblk, struct extent *ext);

/*
 * The nearest allocated extents (MAPPED or UNWRITTEN) around the range
 * [@lblk, @end): *@left ends at or before @lblk, *@right starts at or
 * after @end.  Up to EMAP_NEAR_SKIP delalloc extents are looked past on
 * each side; a side with nothing allocated is reported as EXT_HOLE.  For
 * allocation hints (xfs_bmap_adjacent()).
 */
#define EMAP_NEAR_SKIP 8
void emap_lookup_near(const struct emap *map, uint64_t lblk, uint64_t end,
		      struct extent *left, struct extent *right);

/*
 * Map [@ext->lblk, + @ext->len) to @ext, replacing what was there and
 * merging with neighbours.  @ext->len is 1 .. EXTENT_MAX_LEN.
 * Returns 0, -EINVAL for a bad extent, or -ENOMEM (the map may then hold
 * part of the change: callers treat it as fatal for the volume).
 */
int emap_set(struct emap *map, const struct extent *ext);

/*
 * As emap_set(), quicker where [@ext->lblk, + @ext->len) is exactly one
 * extent of the map, as writeback's allocation of a whole delalloc
 * extent is: its record changes in place unless the new extent merges
 * with a neighbour (XFS's conversion of a whole extent in
 * xfs_bmap_add_extent_unwritten_real()).  One search instead of seven.
 */
int emap_replace(struct emap *map, const struct extent *ext);

/*
 * As emap_set() where [@ext->lblk, + @ext->len) is known to be a hole
 * (a delalloc reservation found it so under the map lock): no search for
 * what it would replace.
 */
int emap_insert(struct emap *map, const struct extent *ext);

/* Make [@lblk, @lblk + @len) a hole.  Returns 0 or -ENOMEM (as above). */
int emap_remove(struct emap *map, uint64_t lblk, uint64_t len);

/*
 * Change the extents in state @from within [@lblk, @lblk + @len) to @to,
 * keeping their physical blocks.  A range that is exactly one extent, as
 * an ioend's usually is, changes in place (as emap_replace()).  Returns 0
 * or -ENOMEM (as above).
 */
int emap_convert(struct emap *map, uint64_t lblk, uint64_t len,
		 enum extent_state from, enum extent_state to);

/*
 * Call @fn for each extent overlapping [@lblk, @lblk + @len), in order,
 * clipped to the range; holes are not reported.  Stops at the first
 * nonzero return of @fn and returns it; returns 0 after the last extent.
 */
int emap_iterate(const struct emap *map, uint64_t lblk, uint64_t len,
		 int (*fn)(void *arg, const struct extent *ext), void *arg);

/* Extents in the map, and bytes of memory its nodes hold. */
size_t emap_count(const struct emap *map);
size_t emap_bytes(const struct emap *map);

#endif
