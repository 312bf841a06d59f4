/* SPDX-License-Identifier: BSD-3-Clause */
/* struct iomap from extents (see iomap.h). */
#include "thinmap/iomap.h"

static const uint16_t iomap_type[] = {
	[EXT_HOLE] = IOMAP_HOLE,
	[EXT_DELALLOC] = IOMAP_DELALLOC,
	[EXT_UNWRITTEN] = IOMAP_UNWRITTEN,
	[EXT_MAPPED] = IOMAP_MAPPED,
};

void iomap_from_extent(const struct extent *ext, unsigned int blkbits,
		       struct iomap *iomap)
{
	uint64_t max_blocks = (UINT64_MAX >> blkbits) - ext->lblk;

	iomap->offset = ext->lblk << blkbits;
	iomap->length = (ext->len < max_blocks ? ext->len : max_blocks)
			<< blkbits;
	iomap->type = iomap_type[ext->state];
	iomap->flags = 0;
	if (ext->pblk == PBLK_NULL) {
		iomap->addr = IOMAP_NULL_ADDR;
		iomap->ag = 0;
	} else {
		iomap->addr = (uint64_t)PBLK_AGBNO(ext->pblk) << blkbits;
		iomap->ag = PBLK_AG(ext->pblk);
	}
}
