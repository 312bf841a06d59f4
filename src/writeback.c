/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writeback of dirty folios in merged ioends (see writeback.h), after
 * seed 004's iomap_writepages() and iomap_writepage_map().
 *
 * The walk locks one folio at a time and moves its dirty blocks to
 * writeback (folio_start_writeback) as it adds them to an ioend; the write
 * carrying the ioend holds a reference to each of its folios, and its
 * completion ends their writeback, locking them one at a time.  So the
 * walk reaps completions only with its folio unlocked (nobody ever holds
 * two folio locks), when it must wait for an idle write; meanwhile a trim
 * or zero may change the folio's dirty blocks and their mapping, so the
 * walk then looks at the folio again (add_to_ioend()'s -EAGAIN).  Blocks
 * under writeback cannot change.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/writeback.h"

/*
 * End the writeback of @w's blocks, each with its ioend's error, and give
 * the write back.
 */
static void write_release(struct writepage_ctx *wpc, struct wb_write *w)
{
	int i, s;

	for (i = 0; i < w->nr_ioends; i++) {
		const struct ioend *ioend = &w->ioends[i];

		for (s = ioend->first_seg;
		     s < ioend->first_seg + ioend->nr_segs; s++) {
			struct ioend_seg *seg = &w->segs[s];

			pthread_mutex_lock(&seg->folio->lock);
			folio_end_writeback(wpc->cache, seg->folio, seg->first,
					    seg->n, ioend->error);
			pthread_mutex_unlock(&seg->folio->lock);
			if (s + 1 == w->nr_segs ||
			    w->segs[s + 1].folio != seg->folio)
				folio_put(wpc->cache, seg->folio);
		}
		if (ioend->error && !wpc->error)
			wpc->error = ioend->error;
	}
	wpc->free[wpc->nr_free++] = w;
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
 * Completion of the writes @done[0 .. @n): their ioends sorted, merged
 * where they continue each other (iomap_sort_ioends,
 * iomap_ioend_try_merge), each merged run told to the volume once (its
 * error then the error of every ioend in it), then their blocks released.
 */
static void writes_complete(struct writepage_ctx *wpc, struct wb_write **done,
			    int n)
{
	struct ioend **ioends = wpc->done;
	uint64_t size;
	int nr = 0, i, j, k;

	for (i = 0; i < n; i++)
		for (j = 0; j < done[i]->nr_ioends; j++) {
			done[i]->ioends[j].error = done[i]->io.result;
			ioends[nr++] = &done[i]->ioends[j];
		}
	qsort(ioends, (size_t)nr, sizeof *ioends, ioend_cmp);
	for (i = 0; i < nr; i = j) {
		size = ioends[i]->size;
		for (j = i + 1;
		     j < nr && ioend_can_merge(ioends[j - 1], ioends[j]); j++)
			ioends[i]->size += ioends[j]->size;
		wpc->ops->end_io(wpc, ioends[i]);
		ioends[i]->size = size;
		for (k = i + 1; k < j; k++)
			ioends[k]->error = ioends[i]->error;
	}
	for (i = 0; i < n; i++)
		write_release(wpc, done[i]);
}

/*
 * Reap completed writes, waiting for at least one if @wait (and one is in
 * flight), and complete them.
 */
static void writes_reap(struct writepage_ctx *wpc, bool wait)
{
	struct wb_write *done[BACKING_QUEUE_DEPTH];
	struct backing_write *io;
	int n = 0;

	while ((io = backing_reap(wpc->backing, wait && n == 0)))
		done[n++] = (struct wb_write *)io;
	if (n)
		writes_complete(wpc, done, n);
}

/* Take wpc->open[@i] out of the open writes. */
static struct wb_write *open_remove(struct writepage_ctx *wpc, int i)
{
	struct wb_write *w = wpc->open[i];

	wpc->nr_open--;
	memmove(&wpc->open[i], &wpc->open[i + 1],
		(size_t)(wpc->nr_open - i) * sizeof *wpc->open);
	return w;
}

/*
 * Start the open write wpc->open[@i], straight from its folios, and
 * close it.
 */
static void write_submit(struct writepage_ctx *wpc, int i)
{
	struct wb_write *w = open_remove(wpc, i);
	unsigned int shift = wpc->cache->block_shift;
	int s;

	for (s = 0; s < w->nr_segs; s++) {
		w->iov[s].iov_base = w->segs[s].folio->data +
				     ((size_t)w->segs[s].first << shift);
		w->iov[s].iov_len = (size_t)w->segs[s].n << shift;
	}
	w->io.iov = w->iov;
	w->io.iovcnt = w->nr_segs;
	backing_submit_writev(wpc->backing, &w->io);
}

/* Does @addr of AG @ag follow @w physically? */
static bool write_continues(const struct wb_write *w, uint32_t ag,
			    uint64_t addr)
{
	return w->io.ag == ag && w->io.off + w->size == addr;
}

/* Can @w take @len bytes more?  (iomap_can_add_to_ioend, for the size) */
static bool write_has_room(const struct wb_write *w, uint64_t len)
{
	return w->size + len <= IOEND_MAX_BYTES &&
	       w->nr_segs < BACKING_IOV_MAX;
}

/*
 * The open write that @len bytes at @addr of AG @ag can go on the end of,
 * made the most recently grown; NULL if none.  One they follow that is
 * full is started, and so is the least recently grown one if WB_OPEN_MAX
 * are still open: there is room for a new one then.
 */
static struct wb_write *write_find(struct writepage_ctx *wpc, uint32_t ag,
				   uint64_t addr, uint64_t len)
{
	struct wb_write *w;
	int i;

	for (i = 0; i < wpc->nr_open; i++) {
		if (!write_continues(wpc->open[i], ag, addr))
			continue;
		if (!write_has_room(wpc->open[i], len)) {
			write_submit(wpc, i);
			break;
		}
		w = open_remove(wpc, i);
		wpc->open[wpc->nr_open++] = w;
		return w;
	}
	if (wpc->nr_open == WB_OPEN_MAX)
		write_submit(wpc, 0);
	return NULL;
}

/*
 * Open a new write at @addr of AG @ag, the most recently grown, from an
 * idle one.  The caller made room for it (write_find()) and saw an idle
 * one.
 */
static struct wb_write *write_start(struct writepage_ctx *wpc, uint32_t ag,
				    uint64_t addr)
{
	struct wb_write *w;

	assert(wpc->nr_open < WB_OPEN_MAX && wpc->nr_free > 0);
	w = wpc->free[--wpc->nr_free];
	w->io = (struct backing_write){ .ag = ag, .off = addr };
	w->size = 0;
	w->nr_segs = w->nr_ioends = 0;
	wpc->open[wpc->nr_open++] = w;
	return w;
}

/*
 * The ioend of the open write @w that blocks of the current mapping at
 * @pos, @addr go in: its last if they continue it, else a new one.
 */
static struct ioend *ioend_for(struct writepage_ctx *wpc, struct wb_write *w,
			       uint64_t pos, uint64_t addr)
{
	struct ioend *ioend;

	if (w->nr_ioends) {
		ioend = &w->ioends[w->nr_ioends - 1];
		if (ioend_continues(ioend, wpc->iomap.type, wpc->iomap.ag, pos,
				    addr))
			return ioend;
	}
	ioend = &w->ioends[w->nr_ioends++];
	*ioend = (struct ioend){ .offset = pos, .ag = wpc->iomap.ag,
				 .addr = addr, .type = wpc->iomap.type,
				 .first_seg = w->nr_segs };
	return ioend;
}

/*
 * Add blocks [@blk, @blk + @n) of @folio, mapped by wpc->iomap, to an
 * ioend (iomap_add_to_ioend) of the open write they follow physically,
 * else of a new write.  The blocks go from dirty to writeback.  Returns
 * 0, or -EAGAIN when a new write had to wait for an idle one: completions
 * lock folios, so @folio was unlocked meanwhile, and a trim or zero may
 * have changed its dirty blocks and their mapping.  Nothing was added
 * then: the caller looks at the folio again.
 */
static int add_to_ioend(struct writepage_ctx *wpc, struct folio *folio,
			unsigned int blk, unsigned int n)
{
	struct pagecache *pc = wpc->cache;
	uint64_t pos = (folio->index << pc->page_shift) +
		       ((uint64_t)blk << pc->block_shift);
	uint64_t len = (uint64_t)n << pc->block_shift;
	uint64_t addr = wpc->iomap.addr + (pos - wpc->iomap.offset);
	struct ioend_seg *last;
	struct ioend *ioend;
	struct wb_write *w;

	w = write_find(wpc, wpc->iomap.ag, addr, len);
	if (!w) {
		if (!wpc->nr_free) {
			pthread_mutex_unlock(&folio->lock);
			writes_reap(wpc, true);
			pthread_mutex_lock(&folio->lock);
			return -EAGAIN;
		}
		w = write_start(wpc, wpc->iomap.ag, addr);
	}
	ioend = ioend_for(wpc, w, pos, addr);
	last = w->nr_segs ? &w->segs[w->nr_segs - 1] : NULL;
	if (ioend->nr_segs && last->folio == folio &&
	    last->first + last->n == blk) {
		last->n += n;
	} else {
		if (!last || last->folio != folio)
			folio_hold(pc, folio);
		w->segs[w->nr_segs++] = (struct ioend_seg){ folio, blk, n };
		ioend->nr_segs++;
	}
	ioend->size += len;
	w->size += len;
	folio_start_writeback(pc, folio, blk, n);
	return 0;
}

/*
 * Map and add the dirty blocks [@b, @e) of @folio to ioends, as far as
 * each mapping reaches.  Returns 0, -EAGAIN (add_to_ioend()), or an error
 * of map_blocks.
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
		err = add_to_ioend(wpc, folio, b, n);
		if (err)
			return err;
		b += n;
	}
	return 0;
}

/*
 * Write back the dirty blocks of @folio (iomap_writepage_map), looking at
 * them again from where a run stopped for -EAGAIN.
 */
static int writepage_map(struct writepage_ctx *wpc, struct folio *folio)
{
	unsigned int blocks = wpc->cache->blocks, b = 0, e;
	int err = 0;

	while (!err && (b = block_find(folio->dirty, b, blocks, true)) <
			       blocks) {
		e = block_find(folio->dirty, b, blocks, false);
		err = writeback_run(wpc, folio, b, e);
		if (err == -EAGAIN)
			err = 0;	/* blocks it wrote are dirty no more */
		else
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
		writes_reap(wpc, false);	/* no folio lock held here */
	}
	while (wpc->nr_open)
		write_submit(wpc, 0);
	while (wpc->nr_free < BACKING_QUEUE_DEPTH)
		writes_reap(wpc, true);
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
	wpc->done = calloc(BACKING_QUEUE_DEPTH * BACKING_IOV_MAX,
			   sizeof(struct ioend *));
	if (!wpc->indices || !wpc->done)
		return -ENOMEM;
	for (; wpc->nr_free < BACKING_QUEUE_DEPTH; wpc->nr_free++) {
		wpc->free[wpc->nr_free] = malloc(sizeof(struct wb_write));
		if (!wpc->free[wpc->nr_free])
			return -ENOMEM;
	}
	return 0;
}

void writepage_ctx_destroy(struct writepage_ctx *wpc)
{
	assert(!wpc->nr_open);
	while (wpc->nr_free > 0)
		free(wpc->free[--wpc->nr_free]);
	free(wpc->indices);
	free(wpc->done);
	wpc->indices = NULL;
	wpc->done = NULL;
}
