/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The volume: the object that ties a volume's subsystems together (its
 * metadata store, extent map, space allocator, page cache and backing
 * files) and that the plugin and the admin tool open.  Its I/O entry
 * points are all the plugin needs: one per NBD command.
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

#include <stdbool.h>
#include <stdint.h>

#include "thinmap/extent.h"
#include "thinmap/meta.h"

struct volume;

#define VOLUME_RDONLY 0x1

#define DEFAULT_CACHE_SIZE (UINT64_C(1) << 30)
#define DEFAULT_PAGE_SIZE (64 << 10)

/* How writeback reaches the AG files (backing-io=). */
enum volume_backing_io {
	VOLUME_IO_AUTO,		/* O_DIRECT where the filesystem takes it,
				   else buffered: the default */
	VOLUME_IO_DIRECT,	/* O_DIRECT, or refuse to open */
	VOLUME_IO_BUFFERED,	/* through the kernel's page cache */
};

/* What happens to space that trim and zero free (discard=). */
enum volume_discard {
	VOLUME_DISCARD_PUNCH,	/* punch it out of the AG files: default */
	VOLUME_DISCARD_IGNORE,	/* leave the AG files as they are */
};

/*
 * Tunables of an open volume; 0 takes the default.  Sizes are bytes,
 * times milliseconds.
 */
struct volume_params {
	uint64_t cache_size;	/* page cache memory, hard limit:
				   volume_default_cache_size() */
	uint32_t page_size;	/* folio size: a power of two >= the block
				   size, at most 256 blocks: 64 KiB */
	uint64_t dirty_bytes;	/* writers wait for writeback above this:
				   half the cache; <= cache_size */
	uint64_t dirty_background_bytes; /* the daemon starts writeback
				   above this: half of dirty_bytes */
	uint32_t dirty_expire_ms;	/* data dirty longer than this is
				   written back: 5000 */
	uint32_t writeback_interval_ms;	/* the daemon looks for expired
				   data this often: 1000 */
	enum volume_backing_io backing_io;
	enum volume_discard discard;
};

/*
 * The default cache size, bytes: DEFAULT_CACHE_SIZE, or a quarter of the
 * machine's memory if that is less (the cache holds whole pages of it:
 * cache_size / page_size), since the cache, unlike the kernel's, is not
 * given back under memory pressure.
 */
uint64_t volume_default_cache_size(void);

/*
 * Fill in the defaults of @params (NULL: all defaults) into *@out, for a
 * volume of @block_size blocks, and check the limits: dirty_bytes <=
 * cache_size, dirty_background_bytes <= dirty_bytes.  Returns 0, or
 * -EINVAL with a message naming the parameter.  volume_open() calls it;
 * a front end may call it first to refuse bad settings early.
 */
int volume_params_resolve(const struct volume_params *params,
			  uint32_t block_size, struct volume_params *out);

/*
 * Open the volume in directory @dir with @params (NULL: defaults).
 * Returns 0 and sets *@volp, or a negative errno with a message:
 * -ENOENT no volume there; -EBUSY another process has it open read-write;
 * -EFSCORRUPTED damaged metadata; -EOPNOTSUPP a newer format; -EINVAL bad
 * @params; -ENOMEM; others from the system.
 */
int volume_open(const char *dir, unsigned int flags,
		const struct volume_params *params, struct volume **volp);
/*
 * Start the writeback daemon: a thread that writes back expired dirty
 * data and data above dirty_background_bytes, and that runs every
 * writeback pass (flushes and throttled writers wait for it).  Call it
 * after any fork (nbdkit's after_fork); without it every pass runs in the
 * thread that needs it.  Not for read-only volumes.  Returns 0, -EINVAL
 * if it runs already, or a negative errno from thread or event loop
 * creation.
 */
int volume_start_writeback(struct volume *vol);

/*
 * Stop the writeback daemon (if it runs), write back everything (as
 * volume_flush()) and close.  Returns 0, or the
 * error of that last flush (the volume is closed either way).
 */
int volume_close(struct volume *vol);

const struct thinmap_sb *volume_sb(const struct volume *vol);

/* Space and extent counts, in bytes and extents, and writeback state. */
struct volume_stat {
	uint64_t size;		/* virtual size */
	uint64_t capacity;	/* ag_count * AG size */
	uint64_t mapped;	/* MAPPED bytes */
	uint64_t unwritten;	/* UNWRITTEN bytes */
	uint64_t delalloc;	/* DELALLOC bytes (reserved, in memory) */
	uint64_t free;		/* capacity - allocated */
	uint64_t extents;	/* extents in the map */
	uint64_t free_extents;	/* free-space extents over all AGs */
	uint64_t cache_bytes;	/* memory of the page cache's folios */
	uint64_t dirty_bytes;	/* dirty blocks in the page cache */
	uint64_t writeback_passes;	/* passes run since open */
	bool direct_io;		/* the AG files are written with O_DIRECT */
};

/* Fill @st.  Takes the map lock shared, and the writeback lock. */
void volume_stat(struct volume *vol, struct volume_stat *st);

/*
 * Call @fn for every extent of the volume in logical order (holes are not
 * reported), under the map lock held shared; @fn must not call back into
 * the volume.  Returns 0 or the first nonzero return of @fn.
 */
int volume_map(struct volume *vol,
	       int (*fn)(void *arg, const struct extent *ext), void *arg);

/*
 * I/O.  Offsets and counts are bytes, at any alignment; [offset, offset +
 * count) must lie inside the volume (-EINVAL otherwise), count > 0.  Any
 * number of threads may call these at once.  Errors: -EINVAL, -EROFS (a
 * read-only open), -ENOSPC (no space to back a write or a zero, even
 * once a writeback pass has freed what trims left busy), -EIO, -ENOMEM.
 */
#define VOLUME_FUA 0x1		/* the request is durable on return */
#define VOLUME_MAY_TRIM 0x2	/* zero: punch whole blocks (no NO_HOLE) */

/* Read: holes and unwritten blocks read as zeros, without I/O. */
int volume_pread(struct volume *vol, void *buf, uint64_t count,
		 uint64_t offset);

/*
 * Write into the page cache, reserving space for holes (delalloc): once
 * this returns 0 the write can always be written back.
 */
int volume_pwrite(struct volume *vol, const void *buf, uint64_t count,
		  uint64_t offset, unsigned int flags);

/*
 * NBD write zeroes: whole blocks become holes (VOLUME_MAY_TRIM) or
 * UNWRITTEN, allocated and reading zeros; partial blocks are zeroed in the
 * page cache.  Metadata only, so it is always fast.
 */
int volume_zero(struct volume *vol, uint64_t count, uint64_t offset,
		unsigned int flags);

/*
 * NBD trim: whole blocks become holes and their space is freed; partial
 * blocks at the edges are left as they are.  With VOLUME_FUA the trim is
 * durable on return (as NBD asks: the request, not earlier writes).
 */
int volume_trim(struct volume *vol, uint64_t count, uint64_t offset,
		unsigned int flags);

/*
 * NBD flush: every write completed before the call is durable on return
 * (data written back and synced, then the metadata committed with sync).
 * Returns the first writeback error since the last flush, if any.
 */
int volume_flush(struct volume *vol);

/* What volume_extents() reports of a run, as NBD block status flags. */
#define VOLUME_EXTENT_HOLE 0x1	/* NBD_STATE_HOLE: not allocated */
#define VOLUME_EXTENT_ZERO 0x2	/* NBD_STATE_ZERO: reads as zeros */

/*
 * NBD block status: call @fn for each run of [offset, offset + count)
 * with one state (adjacent extents with the same flags merged), in order,
 * covering the range.  Stops at the first nonzero return of @fn and
 * returns it.
 */
int volume_extents(struct volume *vol, uint64_t count, uint64_t offset,
		   int (*fn)(void *arg, uint64_t offset, uint64_t length,
			     uint32_t flags),
		   void *arg);

/* NBD cache: read the range into the page cache. */
int volume_cache(struct volume *vol, uint64_t count, uint64_t offset);

/*
 * Test hook: from the @nth next backing write (@sync false) or sync
 * (@sync true) on, fail it with -@err, until called again with @nth 0.
 */
void volume_inject_fault(struct volume *vol, bool sync, unsigned long nth,
			 int err);

/*
 * Test hook: while @hold, backing writes wait (a disk that does not
 * answer); returns how many wait now.
 */
unsigned int volume_hold_writes(struct volume *vol, bool hold);

#endif
