/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The volume's I/O entry points (see volume.h): one per NBD command, each
 * an iomap iteration with the right actor, or a change of whole blocks'
 * mappings (zero, trim) under the exclusive invalidate lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "thinmap/buffered-io.h"
#include "thinmap/error.h"
#include "volume-impl.h"

typedef int64_t (*actor_t)(struct iomap_iter *iter, void *arg);

/* A caller's buffer for [start, ...): the data actors' argument. */
struct io_buf {
	unsigned char *base;	/* NULL: none (zeroing, filling the cache) */
	uint64_t start;
};

/* The part of @b at iter->pos. */
static void *buf_at(const struct iomap_iter *iter, const struct io_buf *b)
{
	return b->base ? b->base + (iter->pos - b->start) : NULL;
}

static int check_range(struct volume *vol, uint64_t count, uint64_t offset,
		       bool write)
{
	if (write && (vol->flags & VOLUME_RDONLY))
		return -EROFS;
	if (count == 0 || offset > vol->sb.size ||
	    count > vol->sb.size - offset) {
		tm_set_error("%s: request of %" PRIu64 " bytes at %" PRIu64
			     " is outside the volume (%" PRIu64 " bytes)",
			     vol->dir, count, offset, vol->sb.size);
		return -EINVAL;
	}
	return 0;
}

/*
 * Run @actor(iter, @arg) over [@pos, @pos + @len) with mappings for
 * @flags.  Returns 0 or a negative errno.
 */
static int iterate(struct volume *vol, uint64_t pos, uint64_t len,
		   unsigned int flags, actor_t actor, void *arg)
{
	struct iomap_iter iter = {
		.vol = vol,
		.cache = &vol->cache,
		.backing = &vol->backing,
		.pos = pos,
		.len = len,
		.flags = flags,
	};
	int ret;

	while ((ret = iomap_iter(&iter, &volume_iomap_ops)) > 0)
		iter.processed = actor(&iter, arg);
	return ret;
}

static int64_t read_actor(struct iomap_iter *iter, void *arg)
{
	return iomap_read_iter(iter, buf_at(iter, arg));
}

static int64_t write_actor(struct iomap_iter *iter, void *arg)
{
	return iomap_write_iter(iter, buf_at(iter, arg));
}

static int64_t zero_actor(struct iomap_iter *iter, void *arg)
{
	return iomap_zero_iter(iter);
}

int volume_pread(struct volume *vol, void *buf, uint64_t count,
		 uint64_t offset)
{
	struct io_buf b = { buf, offset };
	int err = check_range(vol, count, offset, false);

	if (err)
		return err;
	pthread_rwlock_rdlock(&vol->invalidate_lock);
	err = iterate(vol, offset, count, 0, read_actor, &b);
	pthread_rwlock_unlock(&vol->invalidate_lock);
	return err;
}

int volume_cache(struct volume *vol, uint64_t count, uint64_t offset)
{
	return volume_pread(vol, NULL, count, offset);
}

/* The whole blocks [*first, *end) inside [offset, offset + count). */
static void whole_blocks(const struct volume *vol, uint64_t count,
			 uint64_t offset, uint64_t *first, uint64_t *end)
{
	uint64_t bmask = ((uint64_t)1 << vol->blkbits) - 1;

	*first = (offset + bmask) >> vol->blkbits;
	*end = (offset + count) >> vol->blkbits;
}

/* After a failed write: give back what it reserved and did not use. */
static void write_failed(struct volume *vol, uint64_t count, uint64_t offset)
{
	uint64_t bmask = ((uint64_t)1 << vol->blkbits) - 1;
	uint64_t first = offset >> vol->blkbits;
	uint64_t end = (offset + count + bmask) >> vol->blkbits;

	pthread_rwlock_wrlock(&vol->invalidate_lock);
	volume_punch_delalloc(vol, first, end - first);
	pthread_rwlock_unlock(&vol->invalidate_lock);
}

/*
 * Run @op(@vol, @arg); if it runs out of space, once more after a
 * writeback pass, whose commit frees the blocks that trims and zeroes
 * released (busy until their unmap is durable), as XFS forces the log
 * and retries an allocation that found only busy extents
 * (xfs_extent_busy_flush()).  @op must be safe to run again after a
 * partial failure.
 */
static int retry_enospc(struct volume *vol,
			int (*op)(struct volume *vol, void *arg), void *arg)
{
	int err = op(vol, arg);

	if (err == -ENOSPC) {
		volume_writeback(vol);
		err = op(vol, arg);
	}
	return err;
}

/* A write or a zero, for retry_enospc(). */
struct request {
	const void *buf;	/* the data of a write */
	uint64_t count, offset;
	unsigned int flags;	/* a zero's VOLUME_MAY_TRIM */
};

static int write_once(struct volume *vol, void *arg)
{
	const struct request *rq = arg;
	struct io_buf b = { (unsigned char *)rq->buf, rq->offset };
	int err;

	pthread_rwlock_rdlock(&vol->invalidate_lock);
	err = iterate(vol, rq->offset, rq->count, IOMAP_WRITE, write_actor,
		      &b);
	pthread_rwlock_unlock(&vol->invalidate_lock);
	return err;
}

int volume_pwrite(struct volume *vol, const void *buf, uint64_t count,
		  uint64_t offset, unsigned int flags)
{
	struct request rq = { .buf = buf, .count = count, .offset = offset };
	int err = check_range(vol, count, offset, true);

	if (err)
		return err;
	err = retry_enospc(vol, write_once, &rq);
	if (err) {
		write_failed(vol, count, offset);
		return err;
	}
	pagecache_balance_dirty(&vol->cache);	/* errors go to flush */
	return flags & VOLUME_FUA ? volume_writeback_range(vol, offset, count)
				  : 0;
}

/* ---- whole blocks: trim and zero ---- */

static int folio_forget(struct pagecache *pc, struct folio *folio,
			unsigned int first, unsigned int end, void *arg)
{
	folio_invalidate(pc, folio, first, end - first);
	return 0;
}

/* Forget the cached blocks [@lblk, @lblk + @n): they change under it. */
static void invalidate_blocks(struct volume *vol, uint64_t lblk, uint64_t n)
{
	pagecache_walk(&vol->cache, lblk, lblk + n, folio_forget, NULL);
}

static int collect_extent(void *arg, const struct extent *ext)
{
	return extent_vec_push(arg, ext);
}

/*
 * After trim or zero queued map changes: commit them at once (durably)
 * if @sync, or if too many are pending.  Takes meta_lock; called without
 * invalidate_lock, so that reads and writes go on during the commit's
 * syncs.
 */
static int commit_queued(struct volume *vol, bool sync)
{
	int err;

	if (!sync && !volume_pending_full(vol))
		return 0;
	pthread_mutex_lock(&vol->meta_lock);
	err = volume_commit(vol, sync);
	pthread_mutex_unlock(&vol->meta_lock);
	return err;
}

/*
 * Trim the blocks [@lblk, @lblk + @n): drop their reservations and
 * mappings now, and queue the unmap; their space is freed once the unmap
 * is durable (busy extents: free after unmap).  The caller holds
 * invalidate_lock exclusive, and commits (commit_queued()).  Takes
 * pending_lock, not meta_lock: a writeback pass under way does not hold
 * it up, nor every reader and writer behind it.
 */
static int punch_blocks(struct volume *vol, uint64_t lblk, uint64_t n)
{
	struct extent hole = { .lblk = lblk, .len = n, .pblk = PBLK_NULL,
			       .state = EXT_HOLE };
	struct extent_vec gone = { 0 };
	uint64_t delalloc = 0;
	size_t i;
	int err;

	invalidate_blocks(vol, lblk, n);
	pthread_mutex_lock(&vol->pending_lock);
	err = extent_vec_push(&vol->pending, &hole);	/* first: see busy */
	if (err)
		goto out;
	pthread_rwlock_wrlock(&vol->map_lock);
	err = emap_iterate(&vol->map, lblk, n, collect_extent, &gone);
	if (!err)
		err = emap_remove(&vol->map, lblk, n);
	pthread_rwlock_unlock(&vol->map_lock);
	for (i = 0; i < gone.n && !err; i++) {
		if (gone.v[i].state == EXT_DELALLOC)
			delalloc += gone.v[i].len;
		else	/* on failure the blocks leak until reopened */
			err = extent_vec_push(&vol->busy, &gone.v[i]);
	}
	alloc_unreserve(&vol->alloc, delalloc);
out:
	pthread_mutex_unlock(&vol->pending_lock);
	extent_vec_free(&gone);
	return err;
}

/*
 * Make @ext (a run of the map) UNWRITTEN: MAPPED blocks in place, holes
 * and delalloc with real blocks, as many as one allocation gives; set
 * *@u to the UNWRITTEN run that @ext now starts with.  The caller holds
 * map_lock exclusive.  Returns 0, -ENOSPC when a hole cannot be backed,
 * -ENOMEM.
 */
static int make_unwritten(struct volume *vol, const struct extent *ext,
			  struct extent *u)
{
	uint32_t got;
	int err;

	*u = *ext;
	u->state = EXT_UNWRITTEN;
	if (ext->state == EXT_MAPPED)
		return emap_set(&vol->map, u);
	if (ext->state == EXT_UNWRITTEN)
		return 0;
	err = volume_alloc_blocks(vol, ext->lblk, ext->len,
				  ext->state == EXT_DELALLOC, &u->pblk, &got);
	if (err)
		return err;
	u->len = got;
	return emap_set(&vol->map, u);
}

/*
 * Zero the blocks [@lblk, @lblk + @n) keeping them allocated (NBD's
 * NO_HOLE): every block becomes UNWRITTEN, and each change is queued for
 * the next commit as it is made (so what was done is kept even where
 * space runs out part way).  The caller holds invalidate_lock exclusive,
 * and commits (commit_queued()).  Takes pending_lock, as punch_blocks().
 */
static int unwrite_blocks(struct volume *vol, uint64_t lblk, uint64_t n)
{
	uint64_t b = lblk, end = lblk + n;
	struct extent ext, u;
	int err = 0;

	invalidate_blocks(vol, lblk, n);
	pthread_mutex_lock(&vol->pending_lock);
	pthread_rwlock_wrlock(&vol->map_lock);
	while (!err && b < end) {
		emap_lookup(&vol->map, b, &ext);
		extent_clip(&ext, b, end);
		err = make_unwritten(vol, &ext, &u);
		if (!err)
			err = extent_vec_push(&vol->pending, &u);
		b = extent_end(&u);
	}
	pthread_rwlock_unlock(&vol->map_lock);
	pthread_mutex_unlock(&vol->pending_lock);
	return err;
}

/* Zero [@pos, @pos + @len) through the page cache (partial blocks). */
static int zero_range(struct volume *vol, uint64_t pos, uint64_t len)
{
	return len ? iterate(vol, pos, len, IOMAP_ZERO, zero_actor, NULL) : 0;
}

int volume_trim(struct volume *vol, uint64_t count, uint64_t offset,
		unsigned int flags)
{
	uint64_t first, end;
	int err = check_range(vol, count, offset, true);

	if (err)
		return err;
	whole_blocks(vol, count, offset, &first, &end);
	if (first >= end)
		return 0;
	pthread_rwlock_wrlock(&vol->invalidate_lock);
	err = punch_blocks(vol, first, end - first);
	pthread_rwlock_unlock(&vol->invalidate_lock);
	return err ? err : commit_queued(vol, flags & VOLUME_FUA);
}

/* Zero the whole blocks of @rq, then its partial blocks at each end. */
static int zero_once(struct volume *vol, void *arg)
{
	const struct request *rq = arg;
	uint64_t first, end, head, tail;
	int err;

	whole_blocks(vol, rq->count, rq->offset, &first, &end);
	pthread_rwlock_wrlock(&vol->invalidate_lock);
	if (first >= end) {
		err = zero_range(vol, rq->offset, rq->count);
	} else {
		head = (first << vol->blkbits) - rq->offset;
		tail = rq->offset + rq->count - (end << vol->blkbits);
		err = rq->flags & VOLUME_MAY_TRIM
			      ? punch_blocks(vol, first, end - first)
			      : unwrite_blocks(vol, first, end - first);
		if (!err)
			err = zero_range(vol, rq->offset, head);
		if (!err)
			err = zero_range(vol, end << vol->blkbits, tail);
	}
	pthread_rwlock_unlock(&vol->invalidate_lock);
	return err;
}

int volume_zero(struct volume *vol, uint64_t count, uint64_t offset,
		unsigned int flags)
{
	struct request rq = { .count = count, .offset = offset,
			      .flags = flags };
	int err = check_range(vol, count, offset, true);

	if (!err)
		err = retry_enospc(vol, zero_once, &rq);
	if (err)
		return err;
	return flags & VOLUME_FUA ? volume_writeback_range(vol, offset, count)
				  : commit_queued(vol, false);
}

/* ---- block status ---- */

/* The run being built for volume_extents(): flushed when flags change. */
struct report {
	uint64_t start, len;
	uint32_t flags;
	int ret;		/* @fn's nonzero return, which stops it */
	int (*fn)(void *arg, uint64_t offset, uint64_t length, uint32_t flags);
	void *arg;
};

static int report_flush(struct report *r)
{
	if (r->len)
		r->ret = r->fn(r->arg, r->start, r->len, r->flags);
	r->len = 0;
	return r->ret;
}

/*
 * NBD flags of the mapping of @iter from iter->pos on, and in *@len how
 * far they hold.  Unwritten blocks read as zeros unless the cache has data
 * for them (written since, not yet written back), block by block.
 */
static uint32_t extent_flags(struct iomap_iter *iter, uint64_t *len)
{
	struct pagecache *pc = iter->cache;
	unsigned int shift = pc->block_shift;
	uint64_t first = iter->pos >> shift, end;
	bool data;

	*len = iomap_length(iter);
	switch (iter->iomap.type) {
	case IOMAP_HOLE:
		return VOLUME_EXTENT_HOLE | VOLUME_EXTENT_ZERO;
	case IOMAP_UNWRITTEN:
		end = (iter->pos + *len + ((uint64_t)1 << shift) - 1) >> shift;
		end = pagecache_data_run(pc, first, end, &data);
		if ((end << shift) - iter->pos < *len)
			*len = (end << shift) - iter->pos;
		return data ? 0 : VOLUME_EXTENT_ZERO;
	default:
		return 0;
	}
}

static int64_t report_actor(struct iomap_iter *iter, void *arg)
{
	struct report *r = arg;
	uint64_t len;
	uint32_t flags = extent_flags(iter, &len);

	if (r->len && flags != r->flags && report_flush(r))
		return -ECANCELED;	/* stop: volume_extents returns r->ret */
	if (!r->len) {
		r->start = iter->pos;
		r->flags = flags;
	}
	r->len += len;
	return (int64_t)len;
}

int volume_extents(struct volume *vol, uint64_t count, uint64_t offset,
		   int (*fn)(void *arg, uint64_t offset, uint64_t length,
			     uint32_t flags),
		   void *arg)
{
	struct report r = { .fn = fn, .arg = arg };
	int err = check_range(vol, count, offset, false);

	if (err)
		return err;
	pthread_rwlock_rdlock(&vol->invalidate_lock);
	err = iterate(vol, offset, count, IOMAP_REPORT, report_actor, &r);
	pthread_rwlock_unlock(&vol->invalidate_lock);
	if (err == -ECANCELED && r.ret)
		return r.ret;
	return err ? err : report_flush(&r);
}
