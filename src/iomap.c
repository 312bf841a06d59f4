/* SPDX-License-Identifier: BSD-3-Clause */
/* The iomap iteration, and struct iomap from extents (see iomap.h). */
#include <assert.h>
#include <errno.h>
#include <string.h>

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

/*
 * Move past what the last actor processed.  Returns 1 to map more, 0
 * when done, or the actor's negative errno.
 */
static int iomap_iter_advance(struct iomap_iter *iter)
{
	if (iter->iomap.length) {
		if (iter->processed < 0)
			return (int)iter->processed;
		if ((uint64_t)iter->processed > iomap_length(iter))
			return -EIO;
		iter->pos += (uint64_t)iter->processed;
		iter->len -= (uint64_t)iter->processed;
		if (iter->len == 0 || iter->processed == 0)
			return 0;
	}
	iter->processed = 0;
	memset(&iter->iomap, 0, sizeof iter->iomap);
	return iter->len ? 1 : 0;
}

int iomap_iter(struct iomap_iter *iter, const struct iomap_ops *ops)
{
	int ret;

	if (iter->iomap.length && ops->iomap_end) {
		ret = ops->iomap_end(iter->vol, iter->pos, iomap_length(iter),
				     iter->processed > 0
					     ? (uint64_t)iter->processed
					     : 0,
				     iter->flags, &iter->iomap);
		if (ret < 0 && !iter->processed)
			return ret;
	}
	ret = iomap_iter_advance(iter);
	if (ret <= 0)
		return ret;
	ret = ops->iomap_begin(iter->vol, iter->pos, iter->len, iter->flags,
			       &iter->iomap);
	if (ret < 0)
		return ret;
	assert(iter->iomap.offset <= iter->pos);
	assert(iter->iomap.offset + iter->iomap.length > iter->pos);
	return 1;
}
