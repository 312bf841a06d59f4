/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The iomap iteration, as the kernel's include/linux/iomap.h and
 * fs/iomap/iter.c have it (seeds 001, 002: iomap_apply, today iomap_iter).
 *
 * An operation on a byte range asks the volume, through iomap_ops, for
 * the mapping of the range's start (->iomap_begin: the longest run in one
 * state, reserving delalloc space for a write into a hole); an actor
 * works on that run; ->iomap_end cleans up what the actor did not use;
 * the iteration moves on by what the actor processed:
 *
 *	struct iomap_iter iter = { .vol = vol, .pos = pos, .len = len,
 *				   .flags = IOMAP_WRITE };
 *	while ((ret = iomap_iter(&iter, &ops)) > 0)
 *		iter.processed = actor(&iter);
 *
 * The extent map speaks in blocks; iomap_from_extent() turns its answer
 * into bytes, as xfs_bmbt_to_iomap() does.
 */
#ifndef THINMAP_IOMAP_H
#define THINMAP_IOMAP_H

#include <stdint.h>

#include "thinmap/extent.h"

/* Types, with the kernel's names and values. */
#define IOMAP_HOLE 0		/* no blocks allocated */
#define IOMAP_DELALLOC 1	/* delayed allocation blocks */
#define IOMAP_MAPPED 2		/* blocks allocated at @addr */
#define IOMAP_UNWRITTEN 3	/* blocks allocated at @addr, read as zeros */

#define IOMAP_NULL_ADDR UINT64_MAX	/* @addr is not valid */

/* Flags of a mapping. */
#define IOMAP_F_NEW 0x1		/* blocks reserved by this iomap_begin */

/* What an iteration is for (struct iomap_iter.flags). */
#define IOMAP_WRITE 0x1		/* buffered write */
#define IOMAP_ZERO 0x2		/* zeroing partial blocks: no reservation */
#define IOMAP_REPORT 0x4	/* block status: no I/O */

struct iomap {
	uint64_t offset;	/* logical start, bytes */
	uint64_t length;	/* bytes */
	uint64_t addr;		/* byte offset in AG file @ag, or NULL_ADDR */
	uint32_t ag;		/* allocation group (the kernel's bdev) */
	uint16_t type;		/* IOMAP_HOLE ... */
	uint16_t flags;		/* IOMAP_F_* (the iomap layer's) */
};

/*
 * Fill @iomap from @ext, for a volume whose block size is 1 << @blkbits
 * bytes.  A hole's length is clamped so that offset + length fits in 64
 * bits.  @iomap->flags is cleared.
 */
void iomap_from_extent(const struct extent *ext, unsigned int blkbits,
		       struct iomap *iomap);

struct volume;
struct pagecache;
struct backing;

struct iomap_ops {
	/*
	 * Map [@pos, @pos + @len) from @pos on into @iomap (which must
	 * start at or before @pos and may end before @pos + @len).
	 * Returns 0 or a negative errno (-ENOSPC for a write that cannot
	 * be backed).
	 */
	int (*iomap_begin)(struct volume *vol, uint64_t pos, uint64_t len,
			   unsigned int flags, struct iomap *iomap);
	/*
	 * The actor processed @written of the @len bytes from @pos that
	 * @iomap covered: undo what iomap_begin did for the rest.
	 */
	int (*iomap_end)(struct volume *vol, uint64_t pos, uint64_t len,
			 uint64_t written, unsigned int flags,
			 struct iomap *iomap);
};

struct iomap_iter {
	struct volume *vol;		/* the kernel's inode */
	struct pagecache *cache;	/* its i_mapping */
	struct backing *backing;	/* the iomap's bdev */
	uint64_t pos;		/* next byte to process */
	uint64_t len;		/* bytes left */
	int64_t processed;	/* the actor's result: bytes, or -errno */
	unsigned int flags;	/* IOMAP_WRITE ... */
	struct iomap iomap;	/* the current mapping */
	void *private;		/* the actor's */
};

/* Bytes of the current mapping from iter->pos on, capped at iter->len. */
static inline uint64_t iomap_length(const struct iomap_iter *iter)
{
	uint64_t end = iter->iomap.offset + iter->iomap.length;

	return end - iter->pos < iter->len ? end - iter->pos : iter->len;
}

/*
 * Advance @iter past what the actor processed and map what comes next.
 * Returns 1 when there is a mapping for the actor, 0 when the range is
 * done (or the actor processed nothing), or a negative errno (the
 * actor's, or iomap_begin's).  Port of fs/iomap/iter.c iomap_iter().
 */
int iomap_iter(struct iomap_iter *iter, const struct iomap_ops *ops);

#endif
