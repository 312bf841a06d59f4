/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * struct iomap: a mapping of a byte range of the volume, as the kernel's
 * include/linux/iomap.h has it (seeds 001, 002).  The extent map speaks in
 * blocks; iomap_from_extent() turns its answer into bytes for the iomap
 * iteration, as xfs_bmbt_to_iomap() does.
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

#endif
