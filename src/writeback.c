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
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/writeback.h"

/* End the writeback of @ioend's blocks and give the ioend back. */
static void ioend_release(struct writepage_ctx *wpc, struct ioend *ioend)
{
	int i;

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
	wpc->free[wpc->nr_free++] = ioend;
}

/*
 * Do blocks of @type at logical @pos, physical @addr of AG @ag continue
 * @ioend, in both address spaces?
 */
static bool ioend_continues(const struct ioend *ioend, uint16_t type,
			    uint32_t ag, uint64_t pos, uint64_t addr)
{
	return ioend->type == type && ioend->ag == ag &&
	       ioend->offset + ioend->size == pos &&
	       ioend->addr + ioend->size == addr;
}

/* Can @next's completion be merged into @ioend's?  (iomap_ioend_can_merge) */
static bool ioend_can_merge(const struct ioend *ioend, const struct ioend *next)
{
	return !ioend->error && !next->error &&
	       ioend_continues(ioend, next->type, next->ag, next->offset,
			       next->addr);
}

static int ioend_cmp(const void *a, const void *b)
{
	const struct ioend *x = *(struct ioend *const *)a;
	const struct ioend *y = *(struct ioend *const *)b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * Completion of the ioends @done[0 .. @n): sorted, merged where they
 * continue each other (iomap_sort_ioends, iomap_ioend_try_merge), each
 * merged run told to the volume once, then their blocks released.
 */
static void ioends_complete(struct writepage_ctx *wpc, struct ioend **done,
			    int n)
{
	uint64_t size;
	int i, j;

	qsort(done, (size_t)n, sizeof *done, ioend_cmp);
	for (i = 0; i < n; i = j) {
		size = done[i]->size;
		for (j = i + 1; j < n && ioend_can_merge(done[j - 1], done[j]);
		     j++)
			done[i]->size += done[j]->size;
		wpc->ops->end_io(wpc, done[i]);
		done[i]->size = size;
		for (; i < j; i++)
			ioend_release(wpc, done[i]);
	}
}

/*
 * Reap completed writes, waiting for at least one if @wait (and one is in
 * flight), and complete their ioends.
 */
static void ioends_reap(struct writepage_ctx *wpc, bool wait)
{
	struct ioend *done[BACKING_QUEUE_DEPTH];
	struct backing_write *w;
	int n = 0;

	while ((w = backing_reap(wpc->backing, wait && n == 0))) {
		struct ioend *ioend = (struct ioend *)w;

		ioend->error = w->result;
		done[n++] = ioend;
	}
	if (n)
		ioends_complete(wpc, done, n);
}

/* Start writing the ioend being built, as one vectored write. */
static void ioend_submit(struct writepage_ctx *wpc)
{
	struct ioend *ioend = wpc->ioend;
	unsigned int shift = wpc->cache->block_shift;
	int i;

	if (!ioend)
		return;
	wpc->ioend = NULL;
	for (i = 0; i < ioend->nr_segs; i++) {
		ioend->iov[i].iov_base = ioend->segs[i].folio->data +
					 ((size_t)ioend->segs[i].first << shift);
		ioend->iov[i].iov_len = (size_t)ioend->segs[i].n << shift;
	}
	ioend->write = (struct backing_write){
		.ag = ioend->ag,
		.off = ioend->addr,
		.iov = ioend->iov,
		.iovcnt = ioend->nr_segs,
	};
	backing_submit_writev(wpc->backing, &ioend->write);
}

/*
 * Can [@pos, @pos + @len), at @addr of the current mapping, go on the end
 * of the ioend being built?  (iomap_can_add_to_ioend)
 */
static bool ioend_can_add(const struct writepage_ctx *wpc, uint64_t pos,
			  uint64_t len, uint64_t addr)
{
	const struct ioend *ioend = wpc->ioend;

	return ioend &&
	       ioend_continues(ioend, wpc->iomap.type, wpc->iomap.ag, pos,
			       addr) &&
	       ioend->size + len <= IOEND_MAX_BYTES &&
	       ioend->nr_segs < BACKING_IOV_MAX;
}

/*
 * Start a new ioend at @pos, @addr of the current mapping, once an idle
 * one is free (reaping completions for it).
 */
static void ioend_start(struct writepage_ctx *wpc, uint64_t pos,
			uint64_t addr)
{
	struct ioend *ioend;

	while (!wpc->nr_free)
		ioends_reap(wpc, true);
	ioend = wpc->free[--wpc->nr_free];
	ioend->offset = pos;
	ioend->size = 0;
	ioend->ag = wpc->iomap.ag;
	ioend->addr = addr;
	ioend->type = wpc->iomap.type;
	ioend->error = 0;
	ioend->nr_segs = 0;
	wpc->ioend = ioend;
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
	struct ioend *ioend;
	uint64_t pos = (folio->index << pc->page_shift) +
		       ((uint64_t)blk << pc->block_shift);
	uint64_t len = (uint64_t)n << pc->block_shift;
	uint64_t addr = wpc->iomap.addr + (pos - wpc->iomap.offset);
	struct ioend_seg *last;

	if (!ioend_can_add(wpc, pos, len, addr)) {
		pthread_mutex_unlock(&folio->lock);
		ioend_submit(wpc);
		ioends_reap(wpc, false);
		ioend_start(wpc, pos, addr);
		pthread_mutex_lock(&folio->lock);
	}
	ioend = wpc->ioend;
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

int iomap_writepages(struct writepage_ctx *wpc,
		     const struct writeback_control *wbc)
{
	struct pagecache *pc = wpc->cache;
	uint64_t mask = ((uint64_t)1 << pc->page_shift) - 1;
	uint64_t last = (wbc->range_end >> pc->page_shift) +
			((wbc->range_end & mask) != 0);
	size_t i, n;
	int err;

	wpc->error = 0;
	n = pagecache_dirty_indices(pc, wbc->range_start >> pc->page_shift,
				    last, wbc->dirtied_before, wpc->indices);
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
	while (wpc->nr_free < BACKING_QUEUE_DEPTH)
		ioends_reap(wpc, true);
	return wpc->error;
}

int writepage_ctx_init(struct writepage_ctx *wpc,
		       const struct iomap_writeback_ops *ops,
		       struct volume *vol, struct pagecache *cache,
		       struct backing *backing)
{
	memset(wpc, 0, sizeof *wpc);
	wpc->ops = ops;
	wpc->vol = vol;
	wpc->cache = cache;
	wpc->backing = backing;
	wpc->indices = calloc(cache->max_folios, sizeof(uint64_t));
	if (!wpc->indices)
		return -ENOMEM;
	for (; wpc->nr_free < BACKING_QUEUE_DEPTH; wpc->nr_free++) {
		wpc->free[wpc->nr_free] = malloc(sizeof(struct ioend));
		if (!wpc->free[wpc->nr_free])
			return -ENOMEM;
	}
	return 0;
}

void writepage_ctx_destroy(struct writepage_ctx *wpc)
{
	assert(!wpc->ioend);
	while (wpc->nr_free > 0)
		free(wpc->free[--wpc->nr_free]);
	free(wpc->indices);
	wpc->indices = NULL;
}
