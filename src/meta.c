/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The metadata store on LMDB (see meta.h).
 *
 * Commits that are not asked to sync still write LMDB's data pages with
 * fdatasync before its meta page (MDB_NOMETASYNC): a power loss may undo
 * the last transactions, but never leaves a meta page that points at
 * pages that were not written.  A syncing commit also flushes the meta
 * page (mdb_env_sync), which is what a durable NBD flush needs.
 *
 * The log, its checkpoints and meta_load() are in meta-log.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "thinmap/error.h"
#include "thinmap/meta.h"
#include "meta-impl.h"

/* LMDB reserves address space, not disk: room for ~10^8 extents. */
#define META_MAPSIZE (UINT64_C(16) << 30)

#define SB_KEY "sb"
#define SB_BYTES 56

/* On-disk extent states (never reorder); a hole only in the log. */
#define DISK_HOLE 0
#define DISK_MAPPED 1
#define DISK_UNWRITTEN 2

/* ---- encoding ---- */

static void put_le(unsigned char *p, uint64_t v, unsigned int bytes)
{
	unsigned int i;

	for (i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, unsigned int bytes)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void meta_put_be64(unsigned char *p, uint64_t v)
{
	unsigned int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void sb_encode(const struct thinmap_sb *sb, unsigned char *p)
{
	memset(p, 0, SB_BYTES);
	put_le(p + 0, THINMAP_MAGIC, 8);
	put_le(p + 8, sb->version, 4);
	put_le(p + 12, sb->block_size, 4);
	put_le(p + 16, sb->features, 8);
	memcpy(p + 24, sb->uuid, 16);
	put_le(p + 40, sb->size, 8);
	put_le(p + 48, sb->ag_count, 4);
	put_le(p + 52, sb->ag_blocks, 4);
}

/* Magic and version are at fixed offsets in every format version. */
static void sb_decode(const unsigned char *p, struct thinmap_sb *sb)
{
	sb->version = (uint32_t)get_le(p + 8, 4);
	sb->block_size = (uint32_t)get_le(p + 12, 4);
	sb->features = get_le(p + 16, 8);
	memcpy(sb->uuid, p + 24, 16);
	sb->size = get_le(p + 40, 8);
	sb->ag_count = (uint32_t)get_le(p + 48, 4);
	sb->ag_blocks = (uint32_t)get_le(p + 52, 4);
}

void meta_rec_encode(const struct extent *ext, unsigned char *key,
		     unsigned char *val)
{
	meta_put_be64(key, ext->lblk);
	memset(val, 0, REC_VAL_BYTES);
	put_le(val, ext->pblk, 8);
	put_le(val + 8, ext->len, 4);
	val[12] = ext->state == EXT_MAPPED	? DISK_MAPPED
		  : ext->state == EXT_UNWRITTEN ? DISK_UNWRITTEN
						: DISK_HOLE;
}

/* Decode a record; returns why it cannot be, or NULL. */
const char *meta_rec_decode(const MDB_val *key, const MDB_val *val,
			    struct extent *ext)
{
	const unsigned char *v = val->mv_data;

	memset(ext, 0, sizeof *ext);
	ext->pblk = PBLK_NULL;
	if (key->mv_size != REC_KEY_BYTES)
		return "record key is not 8 bytes";
	ext->lblk = get_be64(key->mv_data);
	if (val->mv_size != REC_VAL_BYTES)
		return "record value is not 16 bytes";
	ext->pblk = get_le(v, 8);
	ext->len = get_le(v + 8, 4);
	switch (v[12]) {
	case DISK_HOLE:
		ext->state = EXT_HOLE;
		break;
	case DISK_MAPPED:
		ext->state = EXT_MAPPED;
		break;
	case DISK_UNWRITTEN:
		ext->state = EXT_UNWRITTEN;
		break;
	default:
		ext->state = (enum extent_state)(0x100 | v[12]);
	}
	return NULL;
}

/* ---- validation ---- */

const char *meta_sb_invalid(const struct thinmap_sb *sb)
{
	uint32_t bs = sb->block_size;

	if (bs < BLOCK_SIZE_MIN || bs > BLOCK_SIZE_MAX || (bs & (bs - 1)))
		return "block size is not a power of two from 512 to 65536";
	if (sb->size == 0 || sb->size % bs)
		return "virtual size is not a positive multiple of the block size";
	if (sb->ag_count == 0 || sb->ag_count > AG_COUNT_MAX)
		return "AG count is not 1 .. 4096";
	if (sb->ag_blocks == 0 || sb->ag_blocks > AG_MAX_BLOCKS)
		return "AG size is not 1 .. 2^31 blocks";
	return NULL;
}

/* Why the logical range of @ext is not valid (meta-impl.h), or NULL. */
const char *meta_range_invalid(const struct thinmap_sb *sb,
			       const struct extent *ext)
{
	uint64_t nblocks = sb->size / sb->block_size;

	if (ext->len == 0 || ext->len > EXTENT_MAX_LEN)
		return "length is not 1 .. 2^31 blocks";
	if (ext->lblk >= nblocks || ext->len > nblocks - ext->lblk)
		return "extends past the virtual size";
	return NULL;
}

const char *meta_extent_invalid(const struct thinmap_sb *sb,
				const struct extent *ext)
{
	uint32_t agbno = PBLK_AGBNO(ext->pblk);
	const char *why;

	if (ext->state != EXT_MAPPED && ext->state != EXT_UNWRITTEN)
		return "state is neither mapped nor unwritten";
	if ((why = meta_range_invalid(sb, ext)))
		return why;
	if (PBLK_AG(ext->pblk) >= sb->ag_count)
		return "AG does not exist";
	if (agbno >= sb->ag_blocks || ext->len > sb->ag_blocks - agbno)
		return "extends past the end of its AG";
	return NULL;
}

/* ---- errors ---- */

/* LMDB's @rc as a negative errno, with a message (meta-impl.h). */
int meta_error(const struct meta *meta, int rc, const char *what)
{
	int err;

	switch (rc) {
	case MDB_INVALID:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE:
	case MDB_BAD_VALSIZE:
		err = EFSCORRUPTED;
		break;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		err = ENOSPC;
		break;
	case MDB_NOTFOUND:
		err = ENOENT;
		break;
	case MDB_READERS_FULL:
		err = EAGAIN;
		break;
	default:
		err = rc > 0 ? rc : EIO;
	}
	tm_set_error("%s: %s: %s%s", meta ? meta->dir : "metadata", what,
		     err == EFSCORRUPTED ? "damaged metadata: " : "",
		     mdb_strerror(rc));
	return -err;
}

/* ---- environment ---- */

/*
 * LMDB maps data.mdb and trusts its meta page: pages past the end of a
 * truncated file would fault (SIGBUS) when read.  Refuse such a file
 * before any page is touched.  (mdb_env_open has already read both meta
 * pages with pread, so they are inside the file.)
 */
static int env_check_size(struct meta *meta)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat fst;
	uint64_t need;
	int fd;

	if (mdb_env_info(meta->env, &info) || mdb_env_stat(meta->env, &st) ||
	    mdb_env_get_fd(meta->env, &fd) || fstat(fd, &fst) != 0)
		return meta_error(meta, EIO, "stat data.mdb");
	need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	if ((uint64_t)fst.st_size >= need)
		return 0;
	tm_set_error("%s: damaged metadata: data.mdb is %jd bytes, but its "
		     "pages reach byte %" PRIu64 " (truncated?)", meta->dir,
		     (intmax_t)fst.st_size, need);
	return -EFSCORRUPTED;
}

static int env_open(struct meta *meta, unsigned int flags)
{
	int rc;

	rc = mdb_env_create(&meta->env);
	if (rc)
		return meta_error(meta, rc, "mdb_env_create");
	rc = mdb_env_set_maxdbs(meta->env, 3);
	if (!rc)
		rc = mdb_env_set_mapsize(meta->env, META_MAPSIZE);
	if (!rc)
		rc = mdb_env_open(meta->env, meta->dir, flags, 0644);
	if (rc) {
		mdb_env_close(meta->env);
		meta->env = NULL;
		return meta_error(meta, rc, "open");
	}
	return env_check_size(meta);
}

/*
 * Open the databases in @txn, with the log if @log (the feature), with
 * @flags (MDB_CREATE: make them).
 */
static int dbis_open(struct meta *meta, MDB_txn *txn, unsigned int flags,
		     bool log)
{
	int rc;

	rc = mdb_dbi_open(txn, "super", flags, &meta->super_dbi);
	if (!rc)
		rc = mdb_dbi_open(txn, "extents", flags, &meta->ext_dbi);
	if (!rc && log)
		rc = mdb_dbi_open(txn, "log", flags, &meta->log_dbi);
	if (rc == MDB_NOTFOUND) {
		tm_set_error("%s: damaged metadata: a database is missing",
			     meta->dir);
		return -EFSCORRUPTED;
	}
	return rc ? meta_error(meta, rc, "open databases") : 0;
}

static struct meta *meta_alloc(const char *metadir, bool rdonly)
{
	struct meta *meta = calloc(1, sizeof *meta);

	if (meta)
		meta->dir = strdup(metadir);
	if (!meta || !meta->dir) {
		free(meta);
		tm_set_error("%s: out of memory", metadir);
		return NULL;
	}
	meta->rdonly = rdonly;
	return meta;
}

static void meta_free(struct meta *meta)
{
	if (meta->env)
		mdb_env_close(meta->env);
	free(meta->dir);
	free(meta);
}

/* Write @sb, durably, creating databases as needed (meta-impl.h). */
int meta_sb_write(struct meta *meta, const struct thinmap_sb *sb)
{
	unsigned char buf[SB_BYTES];
	MDB_val key = { sizeof SB_KEY - 1, SB_KEY }, val = { SB_BYTES, buf };
	MDB_txn *txn;
	int rc, err;

	rc = mdb_txn_begin(meta->env, NULL, 0, &txn);
	if (rc)
		return meta_error(meta, rc, "begin");
	err = dbis_open(meta, txn, MDB_CREATE,
			sb->features & THINMAP_FEATURE_LOG);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	sb_encode(sb, buf);
	rc = mdb_put(txn, meta->super_dbi, &key, &val, 0);
	if (rc) {
		mdb_txn_abort(txn);
		return meta_error(meta, rc, "write superblock");
	}
	rc = mdb_txn_commit(txn);
	if (!rc)
		rc = mdb_env_sync(meta->env, 1);
	if (!rc)
		meta->sb = *sb;
	return rc ? meta_error(meta, rc, "write superblock") : 0;
}

int meta_create(const char *metadir, const struct thinmap_sb *sb)
{
	struct meta *meta;
	int err;

	if (meta_sb_invalid(sb)) {
		tm_set_error("invalid superblock: %s", meta_sb_invalid(sb));
		return -EINVAL;
	}
	meta = meta_alloc(metadir, false);
	if (!meta)
		return -ENOMEM;
	err = env_open(meta, 0);
	if (!err)
		err = meta_sb_write(meta, sb);
	meta_free(meta);
	return err;
}

/* Check the superblock record @val; fills meta->sb. */
static int sb_check(struct meta *meta, const MDB_val *val)
{
	const char *why;

	if (val->mv_size < SB_BYTES ||
	    get_le(val->mv_data, 8) != THINMAP_MAGIC) {
		tm_set_error("%s: not a thinmap volume (bad superblock magic)",
			     meta->dir);
		return -EFSCORRUPTED;
	}
	sb_decode(val->mv_data, &meta->sb);
	if (meta->sb.version > THINMAP_FORMAT_VERSION) {
		tm_set_error("%s: volume format version %u is newer than this "
			     "thinmap supports (%u): upgrade thinmap",
			     meta->dir, meta->sb.version,
			     THINMAP_FORMAT_VERSION);
		return -EOPNOTSUPP;
	}
	if (meta->sb.features & ~THINMAP_FEATURES_KNOWN) {
		tm_set_error("%s: volume uses unknown features 0x%llx: "
			     "upgrade thinmap", meta->dir,
			     (unsigned long long)meta->sb.features);
		return -EOPNOTSUPP;
	}
	why = meta_sb_invalid(&meta->sb);
	if (why) {
		tm_set_error("%s: damaged superblock: %s", meta->dir, why);
		return -EFSCORRUPTED;
	}
	return 0;
}

static int sb_read(struct meta *meta)
{
	MDB_val key = { sizeof SB_KEY - 1, SB_KEY }, val;
	MDB_txn *txn;
	int rc, err;

	rc = mdb_txn_begin(meta->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return meta_error(meta, rc, "begin");
	err = dbis_open(meta, txn, 0, false);
	if (!err) {
		rc = mdb_get(txn, meta->super_dbi, &key, &val);
		if (rc == MDB_NOTFOUND) {
			tm_set_error("%s: damaged metadata: no superblock",
				     meta->dir);
			err = -EFSCORRUPTED;
		} else if (rc) {
			err = meta_error(meta, rc, "read superblock");
		} else {
			err = sb_check(meta, &val);
		}
	}
	if (!err && (meta->sb.features & THINMAP_FEATURE_LOG))
		err = dbis_open(meta, txn, 0, true);
	if (err)
		mdb_txn_abort(txn);
	else if ((rc = mdb_txn_commit(txn)) != 0)	/* keeps the dbis */
		err = meta_error(meta, rc, "read superblock");
	return err;
}

int meta_open(const char *metadir, bool rdonly, struct meta **metap)
{
	struct meta *meta;
	struct stat st;
	char *path;
	int err = 0;

	if (asprintf(&path, "%s/data.mdb", metadir) < 0)
		return -ENOMEM;
	if (stat(path, &st) != 0) {
		err = -errno;
		tm_set_error("%s: no thinmap metadata: %s", path,
			     strerror(errno));
	} else if (st.st_size == 0) {
		err = -EFSCORRUPTED;
		tm_set_error("%s: damaged metadata: the file is empty", path);
	}
	free(path);
	if (err)
		return err;
	meta = meta_alloc(metadir, rdonly);
	if (!meta)
		return -ENOMEM;
	err = env_open(meta, rdonly ? MDB_RDONLY : MDB_NOMETASYNC);
	if (!err)
		err = sb_read(meta);
	if (!err && !rdonly)
		err = meta_log_open(meta);
	if (err) {
		meta_free(meta);
		return err;
	}
	*metap = meta;
	return 0;
}

void meta_close(struct meta *meta)
{
	if (meta)
		meta_free(meta);
}

const struct thinmap_sb *meta_sb(const struct meta *meta)
{
	return &meta->sb;
}

/* ---- the extent store primitives on the write transaction ---- */

static int txn_decode(struct meta_txn *t, const MDB_val *key,
		      const MDB_val *val, struct extent *ext)
{
	const char *bad = meta_rec_decode(key, val, ext);

	if (!bad)
		return 0;
	tm_set_error("%s: damaged metadata: %s", t->meta->dir, bad);
	return -EFSCORRUPTED;
}

/* Position the cursor with @op and decode what it lands on. */
static int txn_get(struct meta_txn *t, uint64_t lblk, MDB_cursor_op op,
		   struct extent *ext)
{
	unsigned char kbuf[REC_KEY_BYTES];
	MDB_val key = { sizeof kbuf, kbuf }, val;
	int rc;

	meta_put_be64(kbuf, lblk);
	rc = mdb_cursor_get(t->cur, &key, &val, op);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	return rc ? meta_error(t->meta, rc, "read extents")
		  : txn_decode(t, &key, &val, ext);
}

static int txn_lookup_ge(void *store, uint64_t lblk, struct extent *ext)
{
	return txn_get(store, lblk, MDB_SET_RANGE, ext);
}

static int txn_lookup_le(void *store, uint64_t lblk, struct extent *ext)
{
	struct meta_txn *t = store;
	int err = txn_get(t, lblk, MDB_SET_RANGE, ext);

	if (!err && ext->lblk == lblk)
		return 0;
	if (err == -ENOENT)
		return txn_get(t, lblk, MDB_LAST, ext);
	return err ? err : txn_get(t, lblk, MDB_PREV, ext);
}

static int txn_neighbours(void *store, uint64_t lblk, struct extent *left,
			  struct extent *right)
{
	struct meta_txn *t = store;
	int err = txn_get(t, lblk, MDB_SET_RANGE, right);

	left->state = EXT_HOLE;
	if (err == -ENOENT) {
		right->state = EXT_HOLE;
		err = txn_get(t, lblk, MDB_LAST, left);
	} else if (!err) {
		err = txn_get(t, lblk, MDB_PREV, left);
	}
	if (err == -ENOENT)
		left->state = EXT_HOLE;
	return err == -ENOENT ? 0 : err;
}

static int txn_put(void *store, const struct extent *ext)
{
	struct meta_txn *t = store;
	unsigned char kbuf[REC_KEY_BYTES], vbuf[REC_VAL_BYTES];
	MDB_val key = { sizeof kbuf, kbuf }, val = { sizeof vbuf, vbuf };
	int rc;

	meta_rec_encode(ext, kbuf, vbuf);
	/* The cursor sits by the key: LMDB then skips the descent. */
	rc = mdb_cursor_put(t->cur, &key, &val, 0);
	return rc ? meta_error(t->meta, rc, "write extent") : 0;
}

static int txn_del(void *store, uint64_t lblk)
{
	struct meta_txn *t = store;
	unsigned char kbuf[REC_KEY_BYTES];
	MDB_val key = { sizeof kbuf, kbuf };
	int rc;

	meta_put_be64(kbuf, lblk);
	rc = mdb_del(t->txn, t->meta->ext_dbi, &key, NULL);
	return rc ? meta_error(t->meta, rc, "delete extent") : 0;
}

static const struct extent_store_ops txn_store_ops = {
	.lookup_le = txn_lookup_le,
	.lookup_ge = txn_lookup_ge,
	.neighbours = txn_neighbours,
	.put = txn_put,
	.del = txn_del,
};

int meta_txn_begin(struct meta *meta, struct meta_txn **txnp)
{
	struct meta_txn *t;
	int rc;

	if (meta->rdonly) {
		tm_set_error("%s: opened read-only", meta->dir);
		return -EROFS;
	}
	t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->meta = meta;
	t->log_n = meta->log_n;
	rc = mdb_txn_begin(meta->env, NULL, 0, &t->txn);
	if (!rc) {
		rc = mdb_cursor_open(t->txn, meta->ext_dbi, &t->cur);
		if (rc)
			mdb_txn_abort(t->txn);
	}
	if (rc) {
		free(t);
		return meta_error(meta, rc, "begin");
	}
	*txnp = t;
	return 0;
}

int meta_txn_map(struct meta_txn *txn, const struct extent *ext)
{
	const char *why = meta_extent_invalid(&txn->meta->sb, ext);

	if (why) {
		tm_set_error("%s: refusing to record extent %llu+%llu: %s",
			     txn->meta->dir, (unsigned long long)ext->lblk,
			     (unsigned long long)ext->len, why);
		return -EINVAL;
	}
	return extent_store_set(&txn_store_ops, txn, ext);
}

int meta_txn_unmap(struct meta_txn *txn, uint64_t lblk, uint64_t len)
{
	return extent_store_remove(&txn_store_ops, txn, lblk, len);
}

int meta_txn_convert(struct meta_txn *txn, uint64_t lblk, uint64_t len)
{
	return extent_store_convert(&txn_store_ops, txn, lblk, len,
				    EXT_UNWRITTEN, EXT_MAPPED);
}

int meta_txn_commit(struct meta_txn *txn, bool sync)
{
	struct meta *meta = txn->meta;
	int rc;

	mdb_cursor_close(txn->cur);
	rc = mdb_txn_commit(txn->txn);
	if (!rc) {
		meta->log_n = txn->log_n;
	}
	free(txn);
	if (!rc && sync)
		rc = mdb_env_sync(meta->env, 1);
	return rc ? meta_error(meta, rc, "commit") : 0;
}

void meta_txn_abort(struct meta_txn *txn)
{
	mdb_cursor_close(txn->cur);
	mdb_txn_abort(txn->txn);
	free(txn);
}

int meta_sync(struct meta *meta)
{
	int rc = meta->rdonly ? 0 : mdb_env_sync(meta->env, 1);

	return rc ? meta_error(meta, rc, "sync") : 0;
}
