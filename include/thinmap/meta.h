/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The metadata store: the superblock and the persistent extent records of
 * a volume, in an LMDB environment (the volume's meta/ directory).
 *
 * LMDB gives crash-safe copy-on-write transactions and readers that do
 * not block the writer, so `thinmap check` can read a volume while nbdkit
 * serves it.  Two named databases:
 *
 *   "super"    "sb" -> the superblock, 56 bytes, little-endian: u64 magic,
 *              u32 version, u32 block_size, u64 features, u8 uuid[16],
 *              u64 size, u32 ag_count, u32 ag_blocks.  Magic and version
 *              stay at offsets 0 and 8 in every format version.
 *   "extents"  8-byte big-endian logical block -> 16 bytes, little-endian:
 *              u64 pblk, u32 len, u8 state (1 MAPPED, 2 UNWRITTEN), 3 zero
 *   "log"      8-byte big-endian sequence number -> 24 bytes: a change,
 *              the key then the value of an "extents" record, state 0
 *              meaning that the range becomes a hole (THINMAP_FEATURE_LOG)
 *
 * Only MAPPED and UNWRITTEN extents are persisted; a block with no record
 * is a hole.  DELALLOC is never written here.
 *
 * Commits append their changes to the log, in order; a checkpoint applies
 * the log to "extents" and empties it (meta_txn_checkpoint).  The map is
 * "extents" with the log applied: what meta_load() gives.  A read-write
 * open checkpoints, and gives a volume made before the log its log.
 *
 * One write transaction at a time (LMDB's rule): the caller serializes
 * them, and uses each on one thread.  Read-only opens take no write lock.
 */
#ifndef THINMAP_META_H
#define THINMAP_META_H

#include <stdbool.h>
#include <stdint.h>

#include "thinmap/extent.h"

#define THINMAP_MAGIC UINT64_C(0x50414d4e49485400)	/* "\0THINMAP" */
#define THINMAP_FORMAT_VERSION 1
/* Incompatible features: a thinmap that does not know one refuses. */
#define THINMAP_FEATURE_LOG UINT64_C(1)		/* the "log" database */
#define THINMAP_FEATURES_KNOWN THINMAP_FEATURE_LOG

#define BLOCK_SIZE_MIN 512
#define BLOCK_SIZE_MAX 65536
#define AG_COUNT_MAX 4096

/* The superblock, as the code sees it (the encoding is private). */
struct thinmap_sb {
	uint32_t version;	/* THINMAP_FORMAT_VERSION of the writer */
	uint64_t features;	/* incompatible features: unknown ones refuse */
	uint8_t uuid[16];
	uint64_t size;		/* virtual size, bytes, multiple of block_size */
	uint32_t block_size;	/* bytes: power of two, 512 .. 65536 */
	uint32_t ag_count;	/* 1 .. AG_COUNT_MAX */
	uint32_t ag_blocks;	/* blocks in each AG: 1 .. AG_MAX_BLOCKS */
};

struct meta;
struct meta_txn;

/*
 * Why @sb is not a valid superblock (a static string), or NULL if it is.
 * Checks ranges and consistency of every field, not the version.
 */
const char *meta_sb_invalid(const struct thinmap_sb *sb);

/*
 * Why @ext is not a valid persistent record for a volume with superblock
 * @sb (a static string), or NULL: state MAPPED or UNWRITTEN, length
 * 1 .. EXTENT_MAX_LEN, inside the virtual size, inside its AG.
 */
const char *meta_extent_invalid(const struct thinmap_sb *sb,
				const struct extent *ext);

/*
 * Create the LMDB environment in the directory @metadir (which must exist
 * and be empty) and write @sb into it, durably.  Returns 0, -EINVAL if @sb
 * is invalid, or the errno of the failure (message set).
 */
int meta_create(const char *metadir, const struct thinmap_sb *sb);

/*
 * Open the metadata in @metadir, read-only or read-write, and check the
 * superblock.  A read-write open adds the log to a volume without one and
 * checkpoints what the log holds.  Returns 0 and sets *@metap; or, with a
 * message:
 * -ENOENT no metadata there; -EFSCORRUPTED damaged environment or bad
 * superblock (magic, fields); -EOPNOTSUPP written by a newer format version
 * or with unknown features; other errnos from the system.
 */
int meta_open(const char *metadir, bool rdonly, struct meta **metap);
void meta_close(struct meta *meta);

const struct thinmap_sb *meta_sb(const struct meta *meta);

/*
 * Call @fn for every extent of the map in logical order, in one read
 * transaction (a consistent snapshot).  A record whose key or value has
 * the wrong size is passed with @bad saying so (and @ext holding what
 * could be decoded); otherwise @bad is NULL and @ext is decoded but not
 * validated (see meta_extent_invalid()).  When the log holds changes, the
 * map is built in memory first: records that cannot go in it (invalid,
 * overlapping, or a bad change from the log) are passed first, with @bad
 * saying why, then the extents, valid.  Stops when @fn returns nonzero
 * and returns that; returns 0 at the end, -ENOMEM, or -EFSCORRUPTED if
 * LMDB finds the environment damaged (message set).
 */
int meta_load(struct meta *meta,
	      int (*fn)(void *arg, const struct extent *ext, const char *bad),
	      void *arg);

/*
 * Begin the write transaction.  Returns 0, -EROFS for a read-only open, or
 * an errno from LMDB (message set).
 */
int meta_txn_begin(struct meta *meta, struct meta_txn **txnp);

/*
 * The next three change the extent records themselves, which is right
 * only while the log is empty (or in a checkpoint): a change that the log
 * holds would be applied over them later.
 */

/* Record that [@ext->lblk, + @ext->len) maps to @ext (MAPPED/UNWRITTEN). */
int meta_txn_map(struct meta_txn *txn, const struct extent *ext);

/* Record that [@lblk, @lblk + @len) is a hole. */
int meta_txn_unmap(struct meta_txn *txn, uint64_t lblk, uint64_t len);

/* Record that the UNWRITTEN blocks in [@lblk, @lblk + @len) are MAPPED. */
int meta_txn_convert(struct meta_txn *txn, uint64_t lblk, uint64_t len);

/*
 * Append a change to the log: [@ext->lblk, + @ext->len) maps to @ext
 * (MAPPED or UNWRITTEN), or is a hole (EXT_HOLE).  Returns 0, -EINVAL for
 * an invalid change (message set), or an errno from LMDB.
 */
int meta_txn_log(struct meta_txn *txn, const struct extent *ext);

/*
 * Apply the log's changes to the extent records, in order, and empty the
 * log.  Returns 0, -EFSCORRUPTED for a change that cannot be decoded or
 * is invalid, or an errno from LMDB (message set).
 */
int meta_txn_checkpoint(struct meta_txn *txn);

/* Changes in the log of a read-write open, as of the last commit. */
uint64_t meta_log_records(const struct meta *meta);

/*
 * Commit; with @sync, the transaction is on stable storage on return.
 * Without it, a crash may lose it (and later unsynced ones) but never
 * leaves the environment damaged.  The transaction is gone either way.
 * Returns 0 or an errno (message set).
 */
int meta_txn_commit(struct meta_txn *txn, bool sync);
void meta_txn_abort(struct meta_txn *txn);

/*
 * Make every committed transaction durable (after commits without sync).
 * Returns 0 or an errno (message set).
 */
int meta_sync(struct meta *meta);

#endif
