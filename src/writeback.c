/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writeback of dirty folios in merged ioends (see writeback.h), after
 * seed 004's iomap_writepages() and iomap_writepage_map().
 *
 * The walk locks one folio at a time and moves its dirty blocks to
 * writeback (folio_start_writeback) as it adds them to an ioend; the ioend
 * holds a reference to each of its folios, and its completion ends their
 * writeback, locking them one at a time.  The walk lets go of its folio
 * while an ioend is written: nobody ever holds two folio locks.  Meanwhile
 * the folio's blocks under writeback cannot change, and its dirty blocks
 * can only become more.
 */
#include <errno.h>

#include "thinmap/writeback.h"

/*
 * The ioend was written or failed: tell the volume, end the writeback of
 * its blocks (dirtying them again on failure), and drop its references.
 */
static void ioend_finish(struct writepage_ctx *wpc)
{
	struct ioend *ioend = &wpc->ioend;
	int i;

	wpc->ops->end_io(wpc, ioend);
	for (i = 0; i < ioend->nr_segs; i++) {
		struct ioend_seg *seg = &ioend->segs[i];

		pthread_mutex_lock(&seg->folio->lock);
		folio_end_writeback(wpc->cache, seg->folio, seg->first, seg->n,
				    ioend->error);
		pthread_mutex_unlock(&seg->folio->lock);
		if (i + 1 == ioend->nr_segs ||
		    ioend->segs[i + 1].folio != seg->folio)
			folio_put(wpc->cache, seg->folio);
	}
	if (ioend->error && !wpc->error)
		wpc->error = ioend->error;
	ioend->nr_segs = 0;
	ioend->size = 0;
}

/* Write the ioend being built, as one vectored write, and finish it. */
static void ioend_submit(struct writepage_ctx *wpc)
{
	struct ioend *ioend = &wpc->ioend;
	struct iovec iov[BACKING_IOV_MAX];
	unsigned int shift = wpc->cache->block_shift;
	int i;

	if (ioend->nr_segs == 0)
		return;
	for (i = 0; i < ioend->nr_segs; i++) {
		iov[i].iov_base = ioend->segs[i].folio->data +
				  ((size_t)ioend->segs[i].first << shift);
		iov[i].iov_len = (size_t)ioend->segs[i].n << shift;
	}
	ioend->error = backing_writev(wpc->backing, ioend->ag, iov,
				      ioend->nr_segs, ioend->addr);
	ioend_finish(wpc);
}

/*
 * Can [@pos, @pos + @len), at @addr of the current mapping, go on the end
 * of the ioend being built?  (iomap_can_add_to_ioend)
 */
static bool ioend_can_add(const struct writepage_ctx *wpc, uint64_t pos,
			  uint64_t len, uint64_t addr)
{
	const struct ioend *ioend = &wpc->ioend;

	return ioend->nr_segs > 0 && ioend->type == wpc->iomap.type &&
	       ioend->ag == wpc->iomap.ag && ioend->offset + ioend->size == pos &&
	       ioend->addr + ioend->size == addr &&
	       ioend->size + len <= IOEND_MAX_BYTES &&
	       ioend->nr_segs < BACKING_IOV_MAX;
}

static void ioend_start(struct writepage_ctx *wpc, uint64_t pos,
			uint64_t addr)
{
	struct ioend *ioend = &wpc->ioend;

	ioend->offset = pos;
	ioend->size = 0;
	ioend->ag = wpc->iomap.ag;
	ioend->addr = addr;
	ioend->type = wpc->iomap.type;
	ioend->error = 0;
}

/*
 * Add blocks [@blk, @blk + @n) of @folio, mapped by wpc->iomap, to an
 * ioend (iomap_add_to_ioend): the current one if they continue it, else a
 * new one after the current is written (with @folio unlocked meanwhile).
 * The blocks go from dirty to writeback.
 */
static void add_to_ioend(struct writepage_ctx *wpc, struct folio *folio,
			 unsigned int blk, unsigned int n)
{
	struct pagecache *pc = wpc->cache;
	struct ioend *ioend = &wpc->ioend;
	uint64_t pos = (folio->index << pc->page_shift) +
		       ((uint64_t)blk << pc->block_shift);
	uint64_t len = (uint64_t)n << pc->block_shift;
	uint64_t addr = wpc->iomap.addr + (pos - wpc->iomap.offset);
	struct ioend_seg *last;

	if (!ioend_can_add(wpc, pos, len, addr)) {
		pthread_mutex_unlock(&folio->lock);
		ioend_submit(wpc);
		pthread_mutex_lock(&folio->lock);
		ioend_start(wpc, pos, addr);
	}
	last = ioend->nr_segs ? &ioend->segs[ioend->nr_segs - 1] : NULL;
	if (last && last->folio == folio && last->first + last->n == blk) {
		last->n += n;
	} else {
		if (!last || last->folio != folio)
			folio_hold(pc, folio);
		ioend->segs[ioend->nr_segs++] =
			(struct ioend_seg){ folio, blk, n };
	}
	ioend->size += len;
	folio_start_writeback(pc, folio, blk, n);
}

/*
 * Map and add the dirty blocks [@b, @e) of @folio to ioends, as far as
 * each mapping reaches.
 */
static int writeback_run(struct writepage_ctx *wpc, struct folio *folio,
			 unsigned int b, unsigned int e)
{
	struct pagecache *pc = wpc->cache;
	uint64_t pos, end;
	unsigned int n;
	int err;

	while (b < e) {
		pos = (folio->index << pc->page_shift) +
		      ((uint64_t)b << pc->block_shift);
		err = wpc->ops->map_blocks(wpc, pos,
					   (uint64_t)(e - b) << pc->block_shift);
		if (err)
			return err;
		if (wpc->iomap.type != IOMAP_MAPPED &&
		    wpc->iomap.type != IOMAP_UNWRITTEN)
			return -EIO;	/* dirty data with nowhere to go */
		end = wpc->iomap.offset + wpc->iomap.length;
		n = (end - pos) >> pc->block_shift < e - b
			    ? (unsigned int)((end - pos) >> pc->block_shift)
			    : e - b;
		add_to_ioend(wpc, folio, b, n);
		b += n;
	}
	return 0;
}

/* Write back the dirty blocks of @folio (iomap_writepage_map). */
static int writepage_map(struct writepage_ctx *wpc, struct folio *folio)
{
	unsigned int blocks = wpc->cache->blocks, b = 0, e;
	int err = 0;

	while (!err && (b = block_find(folio->dirty, b, blocks, true)) <
			       blocks) {
		e = block_find(folio->dirty, b, blocks, false);
		err = writeback_run(wpc, folio, b, e);
		b = e;
	}
	return err;
}

int iomap_writepages(struct writepage_ctx *wpc, uint64_t start, uint64_t end)
{
	struct pagecache *pc = wpc->cache;
	uint64_t last = (end >> pc->page_shift) +
			((end & (((uint64_t)1 << pc->page_shift) - 1)) != 0);
	size_t i, n;
	int err;

	wpc->error = 0;
	n = pagecache_dirty_indices(pc, start >> pc->page_shift, last,
				    wpc->indices);
	for (i = 0; i < n; i++) {
		struct folio *folio;

		if (folio_get(pc, wpc->indices[i], false, &folio) != 0)
			continue;
		pthread_mutex_lock(&folio->lock);
		err = writepage_map(wpc, folio);
		if (err && !wpc->error)
			wpc->error = err;
		pthread_mutex_unlock(&folio->lock);
		folio_put(pc, folio);
	}
	ioend_submit(wpc);
	return wpc->error;
}
