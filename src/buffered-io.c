/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Buffered read, write and zero actors (see buffered-io.h), after the
 * kernel's fs/iomap/buffered-io.c.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "thinmap/backing.h"
#include "thinmap/buffered-io.h"
#include "thinmap/pagecache.h"

/* One folio's share of an actor's range: bytes [off, off + len). */
struct folio_span {
	uint64_t index;		/* the folio */
	unsigned int off, len;	/* bytes within it */
	unsigned int first, end;	/* blocks [first, end) it touches */
};

static void span_at(const struct pagecache *pc, uint64_t pos, uint64_t len,
		    struct folio_span *sp)
{
	uint64_t page_size = (uint64_t)1 << pc->page_shift;
	unsigned int bs = 1u << pc->block_shift;

	sp->index = pos >> pc->page_shift;
	sp->off = (unsigned int)(pos & (page_size - 1));
	sp->len = (unsigned int)(len < page_size - sp->off ? len
							: page_size - sp->off);
	sp->first = sp->off >> pc->block_shift;
	sp->end = (sp->off + sp->len + bs - 1) >> pc->block_shift;
}

/* Byte offset in the AG file of block @blk of the folio at @index. */
static uint64_t block_addr(const struct iomap_iter *iter, uint64_t index,
			   unsigned int blk)
{
	const struct pagecache *pc = iter->cache;
	uint64_t pos = (index << pc->page_shift) +
		       ((uint64_t)blk << pc->block_shift);

	return iter->iomap.addr + (pos - iter->iomap.offset);
}

/*
 * Read blocks [@first, @end) of @folio that are not uptodate from the
 * mapping, one read per run, and mark them uptodate.  The caller holds the
 * folio's lock; the blocks lie inside the MAPPED iomap.
 */
static int read_blocks(struct iomap_iter *iter, struct folio *folio,
		       unsigned int first, unsigned int end)
{
	unsigned int shift = iter->cache->block_shift, b = first, e;
	int err;

	while ((b = block_find(folio->uptodate, b, end, false)) < end) {
		e = block_find(folio->uptodate, b, end, true);
		err = backing_read(iter->backing, iter->iomap.ag,
				   folio->data + ((size_t)b << shift),
				   (size_t)(e - b) << shift,
				   block_addr(iter, folio->index, b));
		if (err)
			return err;
		blocks_set(folio->uptodate, b, e - b);
		b = e;
	}
	return 0;
}

/* Does a write of @sp leave part of block @blk unwritten? */
static bool partial_block(const struct folio_span *sp, unsigned int blk,
			  unsigned int shift)
{
	unsigned int start = blk << shift, end = (blk + 1) << shift;

	return sp->off > start || sp->off + sp->len < end;
}

/*
 * Make block @blk, which a write of @sp covers only in part, uptodate:
 * read it if it is MAPPED on disk, else zero it (iomap_block_needs_zeroing:
 * holes, unwritten and newly reserved blocks read as zeros).
 */
static int prepare_block(struct iomap_iter *iter, struct folio *folio,
			 const struct folio_span *sp, unsigned int blk)
{
	unsigned int shift = iter->cache->block_shift;

	if (!partial_block(sp, blk, shift) ||
	    block_test(folio->uptodate, blk))
		return 0;
	if (iter->iomap.type == IOMAP_MAPPED &&
	    !(iter->iomap.flags & IOMAP_F_NEW))
		return read_blocks(iter, folio, blk, blk + 1);
	memset(folio->data + ((size_t)blk << shift), 0, (size_t)1 << shift);
	blocks_set(folio->uptodate, blk, 1);
	return 0;
}

/*
 * Copy @len bytes between folio memory and a caller's buffer in 64-byte
 * vector steps.  Into folios (@stream) the stores are non-temporal: the
 * destination is most often cold (a random block of a large cache), and
 * streaming stores skip reading every line of it first.  Out of folios
 * they are ordinary: the caller reads the buffer next.  Folio locks order
 * the stores for readers (the sfence is for clarity).
 */
static void copy_vec(unsigned char *dst, const unsigned char *src, size_t len,
		     bool stream)
{
#if defined(__x86_64__)
	size_t head, i;

	if (len < 1024)
		goto tail;
	head = (64 - ((uintptr_t)dst & 63)) & 63;
	memcpy(dst, src, head);
	dst += head;
	src += head;
	len -= head;
	for (i = 0; i + 64 <= len; i += 64) {
		__m128i v[4];
		int k;

		for (k = 0; k < 4; k++)
			v[k] = _mm_loadu_si128((const __m128i *)(src + i) + k);
		for (k = 0; k < 4; k++) {
			if (stream)
				_mm_stream_si128((__m128i *)(dst + i) + k, v[k]);
			else
				_mm_store_si128((__m128i *)(dst + i) + k, v[k]);
		}
	}
	if (stream)
		_mm_sfence();
	dst += i;
	src += i;
	len -= i;
tail:
#endif
	memcpy(dst, src, len);
}

/*
 * Copy out of a folio: memcpy, except where glibc's memcpy is several
 * times slower on some CPUs, when the destination sits just past the
 * source modulo 4 KiB (glibc bug 30994), which is where malloc puts large
 * request buffers; vector steps do not care.
 */
static void copy_from_folio(unsigned char *dst, const unsigned char *src,
			    size_t len)
{
	uintptr_t skew = ((uintptr_t)dst - (uintptr_t)src) & 4095;

	if (skew > 0 && skew < 64)
		copy_vec(dst, src, len, false);
	else
		memcpy(dst, src, len);
}

/* Write @src (NULL: zeros) into the folio of @sp. */
static int write_folio(struct iomap_iter *iter, const struct folio_span *sp,
		       const unsigned char *src)
{
	struct pagecache *pc = iter->cache;
	struct folio *folio;
	int err;

	err = folio_get(pc, sp->index, true, &folio);
	if (err)
		return err;
	pthread_mutex_lock(&folio->lock);
	folio_wait_writeback(folio);
	err = prepare_block(iter, folio, sp, sp->first);
	if (!err && sp->end - 1 != sp->first)
		err = prepare_block(iter, folio, sp, sp->end - 1);
	if (!err) {
		if (src)
			copy_vec(folio->data + sp->off, src, sp->len, true);
		else
			memset(folio->data + sp->off, 0, sp->len);
		folio_mark_dirty(pc, folio, sp->first, sp->end - sp->first);
	}
	pthread_mutex_unlock(&folio->lock);
	folio_put(pc, folio);
	return err;
}

/* Write @src (NULL: zeros) folio by folio. */
static int64_t write_range(struct iomap_iter *iter, const unsigned char *src)
{
	uint64_t len = iomap_length(iter), done = 0;
	struct folio_span sp;
	int err;

	while (done < len) {
		span_at(iter->cache, iter->pos + done, len - done, &sp);
		err = write_folio(iter, &sp, src ? src + done : NULL);
		if (err)
			return done ? (int64_t)done : err;
		done += sp.len;
	}
	return (int64_t)done;
}

int64_t iomap_write_iter(struct iomap_iter *iter, const void *src)
{
	return write_range(iter, src);
}

/*
 * Copy @sp out of @folio into @dst: uptodate blocks as they are, the
 * others as zeros (they are holes or unwritten).
 */
static void copy_out(const struct pagecache *pc, const struct folio *folio,
		     const struct folio_span *sp, unsigned char *dst)
{
	unsigned int shift = pc->block_shift, pos = sp->off;
	unsigned int end = sp->off + sp->len;

	while (pos < end) {
		unsigned int blk = pos >> shift;
		bool up = block_test(folio->uptodate, blk);
		unsigned int run_end = block_find(folio->uptodate, blk,
						  sp->end, !up) << shift;
		unsigned int n = (run_end < end ? run_end : end) - pos;

		if (up)
			copy_from_folio(dst + (pos - sp->off),
					folio->data + pos, n);
		else
			memset(dst + (pos - sp->off), 0, n);
		pos += n;
	}
}

/*
 * The blocks to read for @sp: those it touches, or on to the end of the
 * folio (within the mapping) when the reads are sequential: readahead.
 */
static unsigned int read_end(struct iomap_iter *iter,
			     const struct folio_span *sp, uint64_t pos)
{
	struct pagecache *pc = iter->cache;
	uint64_t map_end = iter->iomap.offset + iter->iomap.length;
	uint64_t folio_pos = sp->index << pc->page_shift;
	uint64_t ra = __atomic_load_n(&pc->ra_next, __ATOMIC_RELAXED);
	unsigned int end;

	__atomic_store_n(&pc->ra_next, pos + sp->len, __ATOMIC_RELAXED);
	if (ra != pos)
		return sp->end;
	end = map_end - folio_pos >= ((uint64_t)pc->blocks << pc->block_shift)
		      ? pc->blocks
		      : (unsigned int)((map_end - folio_pos) >> pc->block_shift);
	return end > sp->end ? end : sp->end;
}

static int read_folio(struct iomap_iter *iter, const struct folio_span *sp,
		      uint64_t pos, unsigned char *dst)
{
	struct pagecache *pc = iter->cache;
	bool mapped = iter->iomap.type == IOMAP_MAPPED;
	struct folio *folio;
	int err;

	if (iter->iomap.type == IOMAP_HOLE) {
		if (dst)
			memset(dst, 0, sp->len);
		return 0;
	}
	err = folio_get(pc, sp->index, mapped, &folio);
	if (err == -ENOENT) {	/* unwritten or delalloc, nothing cached */
		if (dst)
			memset(dst, 0, sp->len);
		return 0;
	}
	if (err)
		return err;
	pthread_mutex_lock(&folio->lock);
	if (mapped)
		err = read_blocks(iter, folio, sp->first,
				  read_end(iter, sp, pos));
	if (!err && dst)
		copy_out(pc, folio, sp, dst);
	pthread_mutex_unlock(&folio->lock);
	folio_put(pc, folio);
	return err;
}

int64_t iomap_read_iter(struct iomap_iter *iter, void *dst)
{
	uint64_t len = iomap_length(iter), done = 0;
	unsigned char *d = dst;
	struct folio_span sp;
	int err;

	while (done < len) {
		span_at(iter->cache, iter->pos + done, len - done, &sp);
		err = read_folio(iter, &sp, iter->pos + done,
				 d ? d + done : NULL);
		if (err)
			return done ? (int64_t)done : err;
		done += sp.len;
	}
	return (int64_t)done;
}

/*
 * Zero the bytes of @sp in the blocks of its folio that hold data; blocks
 * without data in the cache read as zeros already (they are unwritten).
 */
static int zero_cached(struct iomap_iter *iter, const struct folio_span *sp)
{
	struct pagecache *pc = iter->cache;
	unsigned int shift = pc->block_shift, b = sp->first, e;
	struct folio *folio;

	if (folio_get(pc, sp->index, false, &folio) != 0)
		return 0;
	pthread_mutex_lock(&folio->lock);
	folio_wait_writeback(folio);
	while ((b = block_find(folio->uptodate, b, sp->end, true)) < sp->end) {
		unsigned int from, to;

		e = block_find(folio->uptodate, b, sp->end, false);
		from = b << shift > sp->off ? b << shift : sp->off;
		to = e << shift < sp->off + sp->len ? e << shift
						    : sp->off + sp->len;
		memset(folio->data + from, 0, to - from);
		folio_mark_dirty(pc, folio, b, e - b);
		b = e;
	}
	pthread_mutex_unlock(&folio->lock);
	folio_put(pc, folio);
	return 0;
}

int64_t iomap_zero_iter(struct iomap_iter *iter)
{
	uint64_t len = iomap_length(iter), done = 0;
	struct folio_span sp;

	if (iter->iomap.type == IOMAP_HOLE)
		return (int64_t)len;
	if (iter->iomap.type != IOMAP_UNWRITTEN)
		return write_range(iter, NULL);
	/*
	 * Unwritten blocks read as zeros unless the cache holds data for
	 * them (written since, not yet written back): zero only that.
	 */
	while (done < len) {
		span_at(iter->cache, iter->pos + done, len - done, &sp);
		zero_cached(iter, &sp);
		done += sp.len;
	}
	return (int64_t)done;
}
