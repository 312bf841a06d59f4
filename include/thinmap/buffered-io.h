/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Buffered I/O actors: what the kernel's fs/iomap/buffered-io.c does for
 * one mapping of an iomap iteration (seeds 000, 002).  Each works on
 * [iter->pos, iter->pos + iomap_length(iter)), folio by folio, and returns
 * the bytes it processed or a negative errno (the iteration's
 * iter->processed).  Buffers correspond to iter->pos.
 *
 * Per-block state decides what touches the disk: a write of whole blocks
 * never reads; a partial write into a block that is not uptodate reads it
 * first if it is MAPPED and zeroes the rest otherwise (HOLE, UNWRITTEN,
 * new DELALLOC: iomap_block_needs_zeroing); reads of holes and unwritten
 * blocks do no I/O.
 */
#ifndef THINMAP_BUFFERED_IO_H
#define THINMAP_BUFFERED_IO_H

#include <stdint.h>

#include "thinmap/iomap.h"

/*
 * Copy @src into the page cache and dirty it (iomap_write_iter); @src
 * NULL writes zeros.  Writes back first if the cache is full of dirty
 * folios.
 */
int64_t iomap_write_iter(struct iomap_iter *iter, const void *src);

/*
 * Copy the data into @dst (iomap_read_iter), reading MAPPED blocks that
 * are not uptodate with one read per run, extended to the end of the
 * folio when the reads are sequential (readahead); @dst NULL only fills
 * the cache.
 */
int64_t iomap_read_iter(struct iomap_iter *iter, void *dst);

/*
 * Zero through the page cache (iomap_zero_iter): nothing to do for holes,
 * nor for unwritten blocks that have no data in the cache.
 */
int64_t iomap_zero_iter(struct iomap_iter *iter);

#endif
