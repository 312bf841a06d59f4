/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * How the volume maps blocks for the iomap layer, as fs/xfs/xfs_iomap.c
 * and xfs_aops.c do for XFS: ->iomap_begin reserves delalloc for writes
 * into holes; writeback's ->map_blocks turns a whole delalloc extent into
 * real blocks, contiguous in one AG when it can; and each finished ioend
 * records its mapping, after the data is on disk.
 *
 * Blocks allocated for delalloc are UNWRITTEN until their ioend finishes
 * (XFS converts delalloc to unwritten too): a block of the extent that is
 * not written yet reads as zeros, never as stale data, and the persistent
 * records only learn of blocks once they hold their data.
 */
#include <errno.h>

#include "volume-impl.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * Reserve space for the hole @ext and map it DELALLOC.  The caller holds
 * map_lock exclusive.  Returns 0 or -ENOSPC, -ENOMEM.
 */
static int reserve_delalloc(struct volume *vol, struct extent *ext)
{
	int err = alloc_reserve(&vol->alloc, ext->len);

	if (err)
		return err;
	ext->state = EXT_DELALLOC;
	ext->pblk = PBLK_NULL;
	err = emap_insert(&vol->map, ext);
	if (err)
		alloc_unreserve(&vol->alloc, ext->len);
	return err;
}

/*
 * Look up the extent at @lblk; for a write into a hole, reserve the hole
 * up to @end (exclusive) as DELALLOC, which *@new reports.  Writes take
 * the map lock exclusive from the start, as XFS's buffered write
 * iomap_begin takes its ILOCK: one lookup, and the hole cannot change
 * before it is reserved.
 */
static int map_for(struct volume *vol, uint64_t lblk, uint64_t end,
		   bool write, struct extent *ext, bool *new)
{
	int err = 0;

	*new = false;
	if (write) {
		pthread_rwlock_wrlock(&vol->map_lock);
		emap_lookup_excl(&vol->map, lblk, ext);
	} else {
		pthread_rwlock_rdlock(&vol->map_lock);
		emap_lookup(&vol->map, lblk, ext);
	}
	if (write && ext->state == EXT_HOLE) {
		ext->len = min_u64(min_u64(ext->len, end - lblk),
				   EXTENT_MAX_LEN);
		err = reserve_delalloc(vol, ext);
		*new = !err;
	}
	pthread_rwlock_unlock(&vol->map_lock);
	return err;
}

static int volume_iomap_begin(struct volume *vol, uint64_t pos, uint64_t len,
			      unsigned int flags, struct iomap *iomap)
{
	uint64_t bmask = ((uint64_t)1 << vol->blkbits) - 1;
	uint64_t lblk = pos >> vol->blkbits;
	uint64_t end = (pos + len + bmask) >> vol->blkbits;
	struct extent ext;
	bool new;
	int err;

	err = map_for(vol, lblk, end, flags & IOMAP_WRITE, &ext, &new);
	if (err)
		return err;
	iomap_from_extent(&ext, vol->blkbits, iomap);
	if (new)
		iomap->flags |= IOMAP_F_NEW;
	return 0;
}

/*
 * No ->iomap_end: the delalloc that a failed write reserved and did not
 * use is punched by volume_pwrite() under the exclusive invalidate lock
 * (volume_punch_delalloc()), where no other write can be using it.
 */
const struct iomap_ops volume_iomap_ops = {
	.iomap_begin = volume_iomap_begin,
};

/* ---- writeback ---- */

/* Extents shorter than this are packed when sparse (alloc_hint()). */
#define PACK_MAX_BYTES (UINT64_C(64) << 10)

/*
 * Where @nbr, an allocated extent, puts the block @lblk if physical
 * distances follow logical ones, when that is inside @nbr's AG; else
 * PBLK_NULL.
 */
static uint64_t hint_from(const struct volume *vol, const struct extent *nbr,
			  uint64_t lblk)
{
	int64_t agbno = (int64_t)PBLK_AGBNO(nbr->pblk) +
			((int64_t)lblk - (int64_t)nbr->lblk);

	if (nbr->state == EXT_HOLE || agbno < 0 ||
	    (uint64_t)agbno >= vol->sb.ag_blocks)
		return PBLK_NULL;
	return PBLK(PBLK_AG(nbr->pblk), agbno);
}

/*
 * Where to allocate the blocks for logical [@lblk, @lblk + @len), a pblk,
 * and whether that packs them (*@pack).  A small extent goes right next
 * to an allocated logical neighbour it touches if that space is free;
 * else right after the last one packed, so that sparse random writes go
 * out as one sequential write (ext4's locality-group preallocation for
 * small requests, mb_stream_req).  Other extents go where the nearer
 * allocated logical neighbour puts them if physical distances follow
 * logical ones (xfs_bmap_adjacent()), so that a range written in any
 * order ends up contiguous; else to their place in their home AG
 * (alloc_home_hint()).  The caller holds map_lock.
 */
static uint64_t alloc_hint(struct volume *vol, uint64_t lblk, uint64_t len,
			   bool *pack)
{
	struct extent left, right;
	uint64_t hl, hr;

	emap_lookup_near(&vol->map, lblk, lblk + len, &left, &right);
	hl = hint_from(vol, &left, lblk);
	hr = hint_from(vol, &right, lblk);
	*pack = false;
	if (len < (PACK_MAX_BYTES >> vol->blkbits)) {
		if (hl != PBLK_NULL && extent_end(&left) == lblk &&
		    alloc_is_free(&vol->alloc, hl, len))
			return hl;
		if (hr != PBLK_NULL && right.lblk == lblk + len &&
		    alloc_is_free(&vol->alloc, hr, len))
			return hr;
		*pack = true;
		if (vol->pack_next != PBLK_NULL &&
		    PBLK_AGBNO(vol->pack_next) < vol->sb.ag_blocks)
			return vol->pack_next;
		return alloc_home_hint(&vol->alloc, lblk, vol->nr_blocks);
	}
	if (hl != PBLK_NULL &&
	    (hr == PBLK_NULL || lblk - extent_end(&left) <= right.lblk - lblk))
		return hl;
	if (hr != PBLK_NULL)
		return hr;
	return alloc_home_hint(&vol->alloc, lblk, vol->nr_blocks);
}

/*
 * How many of @len blocks to allocate at @hint: no more than fit between
 * the hint and the end of its AG (the rest gets its own hint, in the next
 * AG's region), nor than AG_MAX_BLOCKS.
 */
static uint64_t alloc_len(const struct volume *vol, uint64_t hint,
			  uint64_t len)
{
	uint64_t room = vol->sb.ag_blocks - PBLK_AGBNO(hint);

	if (hint != PBLK_NULL && len > room)
		len = room;
	return len < AG_MAX_BLOCKS ? len : AG_MAX_BLOCKS;
}

int volume_alloc_blocks(struct volume *vol, uint64_t lblk, uint64_t len,
			bool reserved, uint64_t *pblk, uint32_t *got)
{
	bool pack;
	uint64_t hint = alloc_hint(vol, lblk, len, &pack);
	int err = alloc_extent(&vol->alloc, hint,
			       (uint32_t)alloc_len(vol, hint, len), reserved,
			       pblk, got);

	if (!err && pack)
		vol->pack_next = *pblk + *got;
	return err;
}

/*
 * Allocate real blocks for the whole delalloc extent @ext, from its
 * reservation, and map them UNWRITTEN.  The caller holds map_lock
 * exclusive.  Returns 0, or -ENOMEM (fatal for the volume).
 */
static int convert_delalloc(struct volume *vol, const struct extent *ext)
{
	uint64_t lblk = ext->lblk, left = ext->len;
	struct extent u = { .state = EXT_UNWRITTEN };
	uint32_t got;
	int err;

	while (left > 0) {
		err = volume_alloc_blocks(vol, lblk, left, true, &u.pblk, &got);
		if (err)	/* the reservation guarantees the space */
			return err == -ENOSPC ? -EIO : err;
		u.lblk = lblk;
		u.len = got;
		err = emap_replace(&vol->map, &u);
		if (err)
			return err;
		lblk += got;
		left -= got;
	}
	return 0;
}

/* Is wpc->iomap, looked up at map seq wpc->seq, still the map at @pos? */
static bool wpc_valid(const struct writepage_ctx *wpc, uint64_t pos,
		      uint64_t seq)
{
	return wpc->iomap.length && seq == wpc->seq &&
	       pos >= wpc->iomap.offset &&
	       pos < wpc->iomap.offset + wpc->iomap.length;
}

/*
 * The map at @lblk, and the seq it was read at; delalloc is allocated
 * first, under the exclusive lock it needs.  *@ext and *@seq come in as
 * a lookup made under the shared lock, still good if the map has not
 * changed since.  Returns 0 or -EIO, -ENOMEM.
 */
static int map_for_writeback(struct volume *vol, uint64_t lblk,
			     struct extent *ext, uint64_t *seq)
{
	int err = 0;

	pthread_rwlock_wrlock(&vol->map_lock);
	if (vol->map.seq != *seq)
		emap_lookup(&vol->map, lblk, ext);
	if (ext->state == EXT_DELALLOC) {
		err = convert_delalloc(vol, ext);
		emap_lookup(&vol->map, lblk, ext);
	}
	*seq = vol->map.seq;
	pthread_rwlock_unlock(&vol->map_lock);
	return err;
}

static int volume_map_blocks(struct writepage_ctx *wpc, uint64_t pos,
			     uint64_t len)
{
	struct volume *vol = wpc->vol;
	uint64_t lblk = pos >> vol->blkbits, seq;
	struct extent ext;
	bool valid;
	int err = 0;

	pthread_rwlock_rdlock(&vol->map_lock);
	valid = wpc_valid(wpc, pos, vol->map.seq);
	if (!valid) {
		emap_lookup(&vol->map, lblk, &ext);
		seq = vol->map.seq;
	}
	pthread_rwlock_unlock(&vol->map_lock);
	if (valid)
		return 0;
	if (ext.state == EXT_DELALLOC)
		err = map_for_writeback(vol, lblk, &ext, &seq);
	iomap_from_extent(&ext, vol->blkbits, &wpc->iomap);
	wpc->seq = seq;
	return err;
}

/*
 * An ioend is on disk: unwritten blocks in it now hold data.  The map
 * learns it now (reads go to the disk from here on); the persistent
 * records learn it at the next commit (volume_commit()), after the data
 * is synced.
 */
static void volume_end_io(struct writepage_ctx *wpc, struct ioend *ioend)
{
	struct volume *vol = wpc->vol;
	struct extent ext = {
		.lblk = ioend->offset >> vol->blkbits,
		.len = ioend->size >> vol->blkbits,
		.pblk = PBLK(ioend->ag, ioend->addr >> vol->blkbits),
		.state = EXT_MAPPED,
	};

	if (ioend->error || ioend->type != IOMAP_UNWRITTEN)
		return;
	pthread_mutex_lock(&vol->pending_lock);
	ioend->error = extent_vec_push(&vol->pending, &ext);
	if (!ioend->error) {
		pthread_rwlock_wrlock(&vol->map_lock);
		ioend->error = emap_convert(&vol->map, ext.lblk, ext.len,
					    EXT_UNWRITTEN, EXT_MAPPED);
		pthread_rwlock_unlock(&vol->map_lock);
	}
	pthread_mutex_unlock(&vol->pending_lock);
}

const struct iomap_writeback_ops volume_writeback_ops = {
	.map_blocks = volume_map_blocks,
	.end_io = volume_end_io,
};

static int folio_dirty(struct pagecache *pc, struct folio *folio,
		       unsigned int first, unsigned int end, void *arg)
{
	return block_find(folio->dirty, first, end, true) < end;
}

/* Does any block of [@lblk, @lblk + @n) hold dirty data in the cache? */
static bool range_dirty(struct volume *vol, uint64_t lblk, uint64_t n)
{
	return pagecache_walk(&vol->cache, lblk, lblk + n, folio_dirty,
			      NULL) != 0;
}

int volume_punch_delalloc(struct volume *vol, uint64_t lblk, uint64_t nblks)
{
	uint64_t b = lblk, end = lblk + nblks;
	struct extent ext;
	int err = 0;

	while (!err && b < end) {
		pthread_rwlock_rdlock(&vol->map_lock);
		emap_lookup(&vol->map, b, &ext);
		pthread_rwlock_unlock(&vol->map_lock);
		extent_clip(&ext, b, end);
		if (ext.state == EXT_DELALLOC &&
		    !range_dirty(vol, ext.lblk, ext.len)) {
			pthread_rwlock_wrlock(&vol->map_lock);
			err = emap_remove(&vol->map, ext.lblk, ext.len);
			pthread_rwlock_unlock(&vol->map_lock);
			alloc_unreserve(&vol->alloc, ext.len);
		}
		b = extent_end(&ext);
	}
	return err;
}
