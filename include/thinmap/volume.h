/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The volume: the object that ties a volume's subsystems together (its
 * metadata store, extent map and space allocator) and that the plugin and
 * the admin tool open.
 *
 * Opening a volume loads every extent record into the extent map and
 * derives free space as the complement of what is mapped, per AG.  A
 * volume whose records fail validation is refused (-EFSCORRUPTED), never
 * repaired.  A read-write open holds an exclusive lock on the volume
 * directory, so two servers never share a volume; read-only opens take no
 * lock and see a consistent snapshot (LMDB readers).
 */
#ifndef THINMAP_VOLUME_H
#define THINMAP_VOLUME_H

#include <stdint.h>

#include "thinmap/extent.h"
#include "thinmap/meta.h"

struct volume;

#define VOLUME_RDONLY 0x1

/*
 * Open the volume in directory @dir.  Returns 0 and sets *@volp, or a
 * negative errno with a message: -ENOENT no volume there; -EBUSY another
 * process has it open read-write; -EFSCORRUPTED damaged metadata;
 * -EOPNOTSUPP a newer format; -ENOMEM; others from the system.
 */
int volume_open(const char *dir, unsigned int flags, struct volume **volp);
void volume_close(struct volume *vol);

const struct thinmap_sb *volume_sb(const struct volume *vol);

/* Space and extent counts, in bytes and extents. */
struct volume_stat {
	uint64_t size;		/* virtual size */
	uint64_t capacity;	/* ag_count * AG size */
	uint64_t mapped;	/* MAPPED bytes */
	uint64_t unwritten;	/* UNWRITTEN bytes */
	uint64_t delalloc;	/* DELALLOC bytes (reserved, in memory) */
	uint64_t free;		/* capacity - allocated */
	uint64_t extents;	/* extents in the map */
	uint64_t free_extents;	/* free-space extents over all AGs */
};

/* Fill @st.  Takes the map lock shared. */
void volume_stat(struct volume *vol, struct volume_stat *st);

/*
 * Call @fn for every extent of the volume in logical order (holes are not
 * reported), under the map lock held shared; @fn must not call back into
 * the volume.  Returns 0 or the first nonzero return of @fn.
 */
int volume_map(struct volume *vol,
	       int (*fn)(void *arg, const struct extent *ext), void *arg);

#endif
