/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The metadata log (see meta.h): a commit appends its changes to the
 * "log" database under increasing keys, which touches a page or two
 * however scattered the changes are, where updating "extents" would
 * rewrite a leaf page for each (random 4 KiB writes, 256 per flush: 3 ms
 * a commit, against 0.9 ms logged).  A checkpoint applies the log to
 * "extents" in order and empties it, in one transaction, as XFS writes
 * its logged metadata back in place (the AIL) and moves the log tail.  A
 * read-write open checkpoints; readers see "extents" with the log applied
 * (meta_load), built in an emap while the log holds changes.
 */
#include <errno.h>
#include <string.h>

#include "thinmap/emap.h"
#include "thinmap/error.h"
#include "meta-impl.h"

#define LOG_KEY_BYTES 8
#define LOG_VAL_BYTES (REC_KEY_BYTES + REC_VAL_BYTES)

/* Decode a log record, a change; returns why it cannot be, or NULL. */
static const char *log_decode(const MDB_val *key, const MDB_val *val,
			      struct extent *ext)
{
	const unsigned char *v = val->mv_data;
	MDB_val rkey = { REC_KEY_BYTES, val->mv_data },
		rval = { REC_VAL_BYTES, (void *)(v + REC_KEY_BYTES) };

	memset(ext, 0, sizeof *ext);
	ext->pblk = PBLK_NULL;
	if (key->mv_size != LOG_KEY_BYTES)
		return "log record key is not 8 bytes";
	if (val->mv_size != LOG_VAL_BYTES)
		return "log record value is not 24 bytes";
	return meta_rec_decode(&rkey, &rval, ext);
}

/*
 * Why @ext is not a valid change for the log, or NULL: a valid record, or
 * a hole of 1 .. EXTENT_MAX_LEN blocks inside the virtual size.
 */
static const char *log_record_invalid(const struct thinmap_sb *sb,
				      const struct extent *ext)
{
	return ext->state == EXT_HOLE ? meta_range_invalid(sb, ext)
				      : meta_extent_invalid(sb, ext);
}

/* Records in the log of @meta, in a read transaction.  0 or an errno. */
static int log_count(struct meta *meta, MDB_txn *txn, uint64_t *n)
{
	MDB_stat st;
	int rc;

	*n = 0;
	if (!(meta->sb.features & THINMAP_FEATURE_LOG))
		return 0;
	rc = mdb_stat(txn, meta->log_dbi, &st);
	if (rc)
		return meta_error(meta, rc, "read log");
	*n = st.ms_entries;
	return 0;
}

/* Ready the log of a read-write open (meta-impl.h). */
int meta_log_open(struct meta *meta)
{
	struct thinmap_sb sb = meta->sb;
	struct meta_txn *txn;
	MDB_txn *rtxn;
	int rc, err;

	if (!(sb.features & THINMAP_FEATURE_LOG)) {
		sb.features |= THINMAP_FEATURE_LOG;
		err = meta_sb_write(meta, &sb);
		if (err)
			return err;
	}
	rc = mdb_txn_begin(meta->env, NULL, MDB_RDONLY, &rtxn);
	if (rc)
		return meta_error(meta, rc, "begin");
	err = log_count(meta, rtxn, &meta->log_n);
	mdb_txn_abort(rtxn);
	if (err || meta->log_n == 0)
		return err;
	err = meta_txn_begin(meta, &txn);
	if (err)
		return err;
	err = meta_txn_checkpoint(txn);
	if (err) {
		meta_txn_abort(txn);
		return err;
	}
	return meta_txn_commit(txn, true);
}

/*
 * Call @fn for each record of @dbi in key order, decoded by @decode, in
 * @txn (@what names the database in messages).  Stops at the first nonzero
 * return of @fn and returns it; 0 at the end, or an errno from LMDB.
 */
static int walk(struct meta *meta, MDB_txn *txn, MDB_dbi dbi,
		const char *(*decode)(const MDB_val *key, const MDB_val *val,
				      struct extent *ext),
		int (*fn)(void *arg, const struct extent *ext, const char *bad),
		void *arg, const char *what)
{
	MDB_cursor *cur;
	MDB_val key, val;
	struct extent ext;
	int rc, ret = 0;

	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return meta_error(meta, rc, what);
	rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (rc == 0 && ret == 0) {
		const char *bad = decode(&key, &val, &ext);

		ret = fn(arg, &ext, bad);
		if (ret == 0)
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	if (rc && rc != MDB_NOTFOUND)
		ret = meta_error(meta, rc, what);
	mdb_cursor_close(cur);
	return ret;
}

/* The extent records with the log applied, built in memory. */
struct merge {
	const struct thinmap_sb *sb;
	struct emap map;
	uint64_t end;		/* of the last record that went in */
	int (*fn)(void *arg, const struct extent *ext, const char *bad);
	void *arg;
};

/* A record into the merged map; one that cannot go in, to @fn with why. */
static int merge_record(void *arg, const struct extent *ext, const char *bad)
{
	struct merge *m = arg;

	if (!bad)
		bad = meta_extent_invalid(m->sb, ext);
	if (!bad && ext->lblk < m->end)
		bad = "overlaps the previous extent";
	if (bad)
		return m->fn(m->arg, ext, bad);
	m->end = extent_end(ext);
	return emap_set(&m->map, ext);
}

/* A change from the log onto the merged map; a bad one, to @fn. */
static int merge_change(void *arg, const struct extent *ext, const char *bad)
{
	struct merge *m = arg;

	if (!bad)
		bad = log_record_invalid(m->sb, ext);
	if (bad)
		return m->fn(m->arg, ext, bad);
	if (ext->state == EXT_HOLE)
		return emap_remove(&m->map, ext->lblk, ext->len);
	return emap_set(&m->map, ext);
}

static int merge_emit(void *arg, const struct extent *ext)
{
	struct merge *m = arg;

	return m->fn(m->arg, ext, NULL);
}

static int load_merged(struct meta *meta, MDB_txn *txn,
		       int (*fn)(void *arg, const struct extent *ext,
				 const char *bad),
		       void *arg)
{
	struct merge m = { .sb = &meta->sb, .fn = fn, .arg = arg };
	int ret;

	emap_init(&m.map);
	ret = walk(meta, txn, meta->ext_dbi, meta_rec_decode, merge_record, &m,
		   "read extents");
	if (!ret)
		ret = walk(meta, txn, meta->log_dbi, log_decode, merge_change,
			   &m, "read log");
	if (!ret)
		ret = emap_iterate(&m.map, 0,
				   meta->sb.size / meta->sb.block_size,
				   merge_emit, &m);
	emap_destroy(&m.map);
	return ret;
}

int meta_load(struct meta *meta,
	      int (*fn)(void *arg, const struct extent *ext, const char *bad),
	      void *arg)
{
	MDB_txn *txn;
	uint64_t logged;
	int rc, ret;

	rc = mdb_txn_begin(meta->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return meta_error(meta, rc, "begin");
	ret = log_count(meta, txn, &logged);
	if (!ret && logged)
		ret = load_merged(meta, txn, fn, arg);
	else if (!ret)
		ret = walk(meta, txn, meta->ext_dbi, meta_rec_decode, fn, arg,
			   "read extents");
	mdb_txn_abort(txn);
	return ret;
}

int meta_txn_log(struct meta_txn *txn, const struct extent *ext)
{
	struct meta *meta = txn->meta;
	const char *why = log_record_invalid(&meta->sb, ext);
	unsigned char kbuf[LOG_KEY_BYTES], vbuf[LOG_VAL_BYTES];
	MDB_val key = { sizeof kbuf, kbuf }, val = { sizeof vbuf, vbuf };
	int rc;

	if (why) {
		tm_set_error("%s: refusing to log extent %llu+%llu: %s",
			     meta->dir, (unsigned long long)ext->lblk,
			     (unsigned long long)ext->len, why);
		return -EINVAL;
	}
	meta_put_be64(kbuf, txn->log_n);	/* keys count up from 0 */
	meta_rec_encode(ext, vbuf, vbuf + REC_KEY_BYTES);
	rc = mdb_put(txn->txn, meta->log_dbi, &key, &val, MDB_APPEND);
	if (rc)
		return meta_error(meta, rc, "write log");
	txn->log_n++;
	return 0;
}

/* Apply @ext, a change from the log, to the records of @arg, a txn. */
static int checkpoint_change(void *arg, const struct extent *ext,
			     const char *bad)
{
	struct meta_txn *t = arg;

	if (!bad)
		bad = log_record_invalid(&t->meta->sb, ext);
	if (bad) {
		tm_set_error("%s: damaged metadata: log record for logical "
			     "block %llu: %s", t->meta->dir,
			     (unsigned long long)ext->lblk, bad);
		return -EFSCORRUPTED;
	}
	if (ext->state == EXT_HOLE)
		return meta_txn_unmap(t, ext->lblk, ext->len);
	return meta_txn_map(t, ext);
}

int meta_txn_checkpoint(struct meta_txn *txn)
{
	struct meta *meta = txn->meta;
	int rc, err;

	err = walk(meta, txn->txn, meta->log_dbi, log_decode,
		   checkpoint_change, txn, "read log");
	if (!err && (rc = mdb_drop(txn->txn, meta->log_dbi, 0)) != 0)
		err = meta_error(meta, rc, "empty the log");
	if (!err)
		txn->log_n = 0;
	return err;
}

uint64_t meta_log_records(const struct meta *meta)
{
	return meta->log_n;
}
