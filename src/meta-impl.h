/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What meta.c and meta-log.c share: the handles, the record encoding, and
 * LMDB's errors as errnos.  Private to the metadata store.
 */
#ifndef THINMAP_META_IMPL_H
#define THINMAP_META_IMPL_H

#include <lmdb.h>

#include "thinmap/meta.h"

#define REC_KEY_BYTES 8
#define REC_VAL_BYTES 16

struct meta {
	char *dir;
	MDB_env *env;
	MDB_dbi super_dbi, ext_dbi, log_dbi;	/* log_dbi: with the feature */
	bool rdonly;
	struct thinmap_sb sb;
	/*
	 * Read-write: records in the log, and the key of the next one: the
	 * log is empty after the open and after each checkpoint, and its
	 * keys count up from 0.
	 */
	uint64_t log_n;
};

struct meta_txn {
	struct meta *meta;
	MDB_txn *txn;
	MDB_cursor *cur;
	uint64_t log_n;			/* meta's, once committed */
};

/* Store @v big-endian in the 8 bytes at @p (keys sort as numbers). */
void meta_put_be64(unsigned char *p, uint64_t v);

/*
 * Encode @ext (MAPPED, UNWRITTEN, or a hole: state 0, only in the log)
 * as an "extents" record: REC_KEY_BYTES of @key, REC_VAL_BYTES of @val.
 */
void meta_rec_encode(const struct extent *ext, unsigned char *key,
		     unsigned char *val);

/*
 * Decode a record; returns why it cannot be (a static string), or NULL.
 * An unknown state decodes to a value no enum extent_state has.
 */
const char *meta_rec_decode(const MDB_val *key, const MDB_val *val,
			    struct extent *ext);

/*
 * Why the logical range of @ext is not valid, or NULL: 1 ..
 * EXTENT_MAX_LEN blocks, inside the virtual size of @sb.
 */
const char *meta_range_invalid(const struct thinmap_sb *sb,
			       const struct extent *ext);

/*
 * Turn LMDB's @rc into a negative errno, with a message "@what: reason".
 * LMDB returns system errnos as they are and its own codes below zero.
 */
int meta_error(const struct meta *meta, int rc, const char *what);

/*
 * Write @sb, durably, creating the databases it needs that are not there
 * yet: a new environment's, or the log of a volume that gains the
 * feature.  Sets meta->sb.  0 or an errno (message set).
 */
int meta_sb_write(struct meta *meta, const struct thinmap_sb *sb);

/*
 * meta-log.c: make the log of a read-write open ready for commits: give a
 * volume made before it the log (the feature), and checkpoint what a
 * crash left there.  0 or an errno (message set).
 */
int meta_log_open(struct meta *meta);

#endif
