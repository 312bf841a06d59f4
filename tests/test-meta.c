/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The metadata store and volume open on real volumes in a temporary
 * directory: random transactions of map, unmap and convert, made on the
 * records or logged and checkpointed (some aborted, some synced), against
 * an extent map as the reference; the same extents
 * and free space after close and reopen; the log: changes read through
 * it, checkpointed, given to a volume made before it; and refusal of
 * damaged volumes: bad magic, newer version, unknown features, invalid or
 * overlapping records and bad log records written straight into LMDB.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thinmap/create.h"
#include "thinmap/emap.h"
#include "thinmap/error.h"
#include "thinmap/volume.h"
#include "model.h"
#include "scratch.h"

#define AG_BLOCKS 1024
#define AGS 4
#define NBLOCKS (2 * AG_BLOCKS * AGS)	/* virtual size: twice capacity */

static char *new_volume(void)
{
	struct create_opts opts = {
		.size = (uint64_t)NBLOCKS * 4096,
		.ag_count = AGS,
		.ag_size = (uint64_t)AG_BLOCKS * 4096,
	};

	return scratch_volume("meta", &opts, NULL);
}

static struct meta *open_meta(const char *dir, bool rdonly)
{
	struct meta *meta = NULL;
	char path[4200];

	snprintf(path, sizeof path, "%s/meta", dir);
	if (meta_open(path, rdonly, &meta) != 0)
		fprintf(stderr, "meta_open: %s\n", tm_get_error());
	return meta;
}

/*
 * A random allocated extent.  Its physical blocks are the logical ones
 * folded onto the capacity (logical halves share AGs, so an extent in one
 * half unmaps the other half's blocks first in the model), so that no
 * block is ever mapped twice.
 */
static struct extent random_extent(struct rng *r)
{
	struct extent ext;
	uint64_t phys;

	ext.lblk = rng_below(r, NBLOCKS);
	phys = ext.lblk % (AG_BLOCKS * AGS);
	ext.len = 1 + rng_below(r, 40);
	if (phys % AG_BLOCKS + ext.len > AG_BLOCKS)
		ext.len = AG_BLOCKS - phys % AG_BLOCKS;
	ext.pblk = PBLK(phys / AG_BLOCKS, phys % AG_BLOCKS);
	ext.state = rng_below(r, 2) ? EXT_MAPPED : EXT_UNWRITTEN;
	return ext;
}

/* Map @ext in @txn: on the records, or in the log if @log. */
static int txn_map(struct meta_txn *txn, bool log, const struct extent *ext)
{
	return log ? meta_txn_log(txn, ext) : meta_txn_map(txn, ext);
}

/* Unmap [@lblk, @lblk + @len) in @txn, as txn_map() maps. */
static int txn_unmap(struct meta_txn *txn, bool log, uint64_t lblk,
		     uint64_t len)
{
	struct extent hole = { lblk, len, PBLK_NULL, EXT_HOLE };

	return log ? meta_txn_log(txn, &hole) : meta_txn_unmap(txn, lblk, len);
}

/*
 * Apply one random change to both the transaction and the model: logged
 * if @log (the log has no convert), else on the records.
 */
static int random_change(struct meta_txn *txn, struct emap *model,
			 struct rng *r, bool log)
{
	struct extent ext = random_extent(r);
	uint64_t twin = (ext.lblk + AG_BLOCKS * AGS) % NBLOCKS;
	unsigned int dice = (unsigned int)rng_below(r, log ? 8 : 10);
	int err;

	if (dice < 6) {
		/* The other logical half uses the same physical blocks. */
		err = txn_unmap(txn, log, twin, ext.len);
		if (!err)
			err = txn_map(txn, log, &ext);
		return err ? err : emap_remove(model, twin, ext.len) ||
					   emap_set(model, &ext);
	}
	if (dice < 8) {
		err = txn_unmap(txn, log, ext.lblk, ext.len);
		return err ? err : emap_remove(model, ext.lblk, ext.len);
	}
	err = meta_txn_convert(txn, ext.lblk, ext.len);
	return err ? err : emap_convert(model, ext.lblk, ext.len,
					EXT_UNWRITTEN, EXT_MAPPED);
}

struct compare {
	const struct emap *model;
	size_t seen;
};

static int compare_one(void *arg, const struct extent *ext)
{
	struct compare *c = arg;
	struct extent want;

	emap_lookup(c->model, ext->lblk, &want);
	c->seen++;
	return want.lblk != ext->lblk || want.len != ext->len ||
	       want.pblk != ext->pblk || want.state != ext->state;
}

static int compare_record(void *arg, const struct extent *ext,
			  const char *bad)
{
	return bad ? -1 : compare_one(arg, ext);
}

/* Do the records in @meta equal the extents of @model, one for one? */
static bool meta_matches(struct meta *meta, const struct emap *model)
{
	struct compare c = { model, 0 };

	return meta_load(meta, compare_record, &c) == 0 &&
	       c.seen == emap_count(model);
}

static int copy_one(void *arg, const struct extent *ext)
{
	return emap_set(arg, ext);
}

static int run_transactions(const char *dir, struct emap *model,
			    struct rng *r, unsigned long ops)
{
	struct meta *meta = open_meta(dir, false);
	struct meta_txn *txn;
	struct emap shadow;	/* the model as of the last commit */
	unsigned long i;
	int err = meta ? 0 : -1;

	while (!err && ops > 0) {
		unsigned long n = 1 + rng_below(r, 200);
		/* Changes on the records only while the log is empty. */
		bool log = meta_log_records(meta) > 0 || rng_below(r, 2);

		err = meta_txn_begin(meta, &txn);
		emap_init(&shadow);
		emap_iterate(model, 0, UINT64_MAX, copy_one, &shadow);
		for (i = 0; i < n && i < ops && !err; i++)
			err = random_change(txn, model, r, log);
		ops -= i;
		if (!err && log && rng_below(r, 4) == 0)
			err = meta_txn_checkpoint(txn);
		if (err) {
			fprintf(stderr, "change: %s\n", tm_get_error());
		} else if (rng_below(r, 5) == 0) {	/* abort: undo model */
			meta_txn_abort(txn);
			emap_destroy(model);
			*model = shadow;
			emap_init(&shadow);
		} else {
			err = meta_txn_commit(txn, rng_below(r, 4) == 0);
		}
		emap_destroy(&shadow);
		if (!err && !meta_matches(meta, model))
			err = -1;
	}
	meta_close(meta);
	return err;
}

/* Free space after reopening is the complement of the model's extents. */
static int check_reopened(const char *dir, const struct emap *model)
{
	struct compare c = { model, 0 };
	struct volume_stat st;
	struct volume *vol;
	int err;

	err = volume_open(dir, 0, NULL, &vol);
	if (err) {
		fprintf(stderr, "volume_open: %s\n", tm_get_error());
		return err;
	}
	err = volume_map(vol, compare_one, &c);
	volume_stat(vol, &st);
	if (!err && (c.seen != emap_count(model) ||
		     st.mapped + st.unwritten + st.free != st.capacity ||
		     st.extents != emap_count(model)))
		err = -1;
	volume_close(vol);
	return err;
}

static int round_trip(uint64_t seed)
{
	struct rng r = { seed };
	struct emap model;
	char *dir = new_volume();
	int err = dir ? 0 : -1;

	emap_init(&model);
	if (!err)
		err = run_transactions(dir, &model, &r, model_ops(20000));
	if (!err)
		err = check_reopened(dir, &model);
	emap_destroy(&model);
	if (dir)
		scratch_remove(dir);
	return err;
}

static void test_round_trip(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("meta round trip", round_trip), 0);
}

/* Write @val under @key into database @db of the volume, behind its back. */
static void raw_put(const char *dir, const char *db, const void *key,
		    size_t klen, const void *val, size_t vlen)
{
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
	char path[4200];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	snprintf(path, sizeof path, "%s/meta", dir);
	CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 3);
	CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, path, 0, 0644), 0);
	CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, db, 0, &dbi), 0);
	CU_ASSERT_EQUAL(mdb_put(txn, dbi, &k, &v, 0), 0);
	CU_ASSERT_EQUAL(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Rewrite the superblock with byte @off set to @byte. */
static void poke_sb(const char *dir, size_t off, unsigned char byte)
{
	unsigned char sb[56] = { 0 };
	char path[4200];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 2, "sb" }, v;

	snprintf(path, sizeof path, "%s/meta", dir);
	CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 3);
	CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, path, MDB_RDONLY, 0644), 0);
	CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, "super", 0, &dbi), 0);
	CU_ASSERT_EQUAL_FATAL(mdb_get(txn, dbi, &k, &v), 0);
	memcpy(sb, v.mv_data, sizeof sb);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	sb[off] = byte;
	raw_put(dir, "super", "sb", 2, sb, sizeof sb);
}

static void expect_refused(const char *dir, int err, const char *words)
{
	struct volume *vol = NULL;

	CU_ASSERT_EQUAL(volume_open(dir, VOLUME_RDONLY, NULL, &vol), err);
	CU_ASSERT_PTR_NOT_NULL(strstr(tm_get_error(), words));
	if (!strstr(tm_get_error(), words))
		fprintf(stderr, "message: %s\n", tm_get_error());
	volume_close(vol);
}

static void test_bad_superblock(void)
{
	char *dir = new_volume();

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	poke_sb(dir, 8, THINMAP_FORMAT_VERSION + 1);	/* version */
	expect_refused(dir, -EOPNOTSUPP, "newer");
	poke_sb(dir, 8, THINMAP_FORMAT_VERSION);
	poke_sb(dir, 16, 0x80);				/* features */
	expect_refused(dir, -EOPNOTSUPP, "unknown features");
	poke_sb(dir, 16, 0);
	poke_sb(dir, 12, 0x33);				/* block size */
	expect_refused(dir, -EFSCORRUPTED, "block size");
	poke_sb(dir, 0, 'X');				/* magic */
	expect_refused(dir, -EFSCORRUPTED, "magic");
	scratch_remove(dir);
}

/* Write a record in the on-disk format of meta.h. */
static void raw_record(const char *dir, uint64_t lblk, uint64_t pblk,
		       uint32_t len, unsigned char state)
{
	unsigned char key[8], val[16] = { 0 };
	int i;

	for (i = 0; i < 8; i++) {
		key[i] = (unsigned char)(lblk >> (56 - 8 * i));
		val[i] = (unsigned char)(pblk >> (8 * i));
	}
	for (i = 0; i < 4; i++)
		val[8 + i] = (unsigned char)(len >> (8 * i));
	val[12] = state;
	raw_put(dir, "extents", key, sizeof key, val, sizeof val);
}

static void test_bad_records(void)
{
	static const struct {
		uint64_t lblk, pblk;
		uint32_t len;
		unsigned char state;
		const char *words;
	} cases[] = {
		{ 0, PBLK(0, 0), 4, 7, "state" },
		{ NBLOCKS - 2, PBLK(0, 0), 4, 1, "virtual size" },
		{ 0, PBLK(AGS, 0), 4, 1, "AG does not exist" },
		{ 0, PBLK(1, AG_BLOCKS - 2), 4, 2, "end of its AG" },
		{ 0, PBLK(0, 0), 0, 1, "length" },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *dir = new_volume();

		CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
		raw_record(dir, cases[i].lblk, cases[i].pblk, cases[i].len,
			   cases[i].state);
		expect_refused(dir, -EFSCORRUPTED, cases[i].words);
		scratch_remove(dir);
	}
}

static void test_overlapping_records(void)
{
	char *dir = new_volume();

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	raw_record(dir, 0, PBLK(0, 0), 8, 1);
	raw_record(dir, 4, PBLK(1, 0), 8, 1);		/* logical overlap */
	expect_refused(dir, -EFSCORRUPTED, "overlaps");
	scratch_remove(dir);
	dir = new_volume();
	raw_record(dir, 0, PBLK(0, 0), 8, 1);
	raw_record(dir, 100, PBLK(0, 4), 8, 1);		/* mapped twice */
	expect_refused(dir, -EFSCORRUPTED, "");
	scratch_remove(dir);
}

/* Log @n changes of @ext in one synced commit, checkpointing after @cp. */
static void log_changes(struct meta *meta, const struct extent *ext,
			size_t n, size_t cp)
{
	struct meta_txn *txn;
	size_t i;

	CU_ASSERT_EQUAL_FATAL(meta_txn_begin(meta, &txn), 0);
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(meta_txn_log(txn, &ext[i]), 0);
		if (i + 1 == cp)
			CU_ASSERT_EQUAL(meta_txn_checkpoint(txn), 0);
	}
	CU_ASSERT_EQUAL(meta_txn_commit(txn, true), 0);
}

/*
 * Changes in the log are the map, in order, for a read-write open and for
 * a read-only one beside it; a checkpoint keeps them; the next read-write
 * open checkpoints the log.
 */
static void test_log(void)
{
	static const struct extent ext[] = {
		{ 0, 16, PBLK(0, 0), EXT_UNWRITTEN },
		{ 4, 4, PBLK_NULL, EXT_HOLE },
		{ 100, 8, PBLK(1, 0), EXT_MAPPED },
		{ 100, 2, PBLK_NULL, EXT_HOLE },
	};
	char *dir = new_volume();
	struct meta *meta, *ro;
	struct emap model;

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	emap_init(&model);
	emap_set(&model, &ext[0]);
	emap_remove(&model, 4, 4);
	emap_set(&model, &ext[2]);
	emap_remove(&model, 100, 2);
	meta = open_meta(dir, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(meta);
	log_changes(meta, ext, 2, 0);
	log_changes(meta, ext + 2, 2, 1);	/* checkpoint after the 3rd */
	CU_ASSERT_EQUAL(meta_log_records(meta), 1);
	CU_ASSERT_TRUE(meta_matches(meta, &model));
	ro = open_meta(dir, true);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ro);
	CU_ASSERT_TRUE(meta_matches(ro, &model));
	meta_close(ro);
	meta_close(meta);
	meta = open_meta(dir, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(meta);
	CU_ASSERT_EQUAL(meta_log_records(meta), 0);
	CU_ASSERT_TRUE(meta_matches(meta, &model));
	meta_close(meta);
	emap_destroy(&model);
	scratch_remove(dir);
}

/* A volume made before the log: a read-write open gives it one. */
static void test_log_upgrade(void)
{
	struct extent ext = { 8, 8, PBLK(2, 8), EXT_MAPPED };
	char *dir = new_volume();
	char path[4200];
	struct meta *meta;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	poke_sb(dir, 16, 0);				/* features */
	snprintf(path, sizeof path, "%s/meta", dir);
	CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 3);
	CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, path, 0, 0644), 0);
	CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, "log", 0, &dbi), 0);
	CU_ASSERT_EQUAL(mdb_drop(txn, dbi, 1), 0);
	CU_ASSERT_EQUAL(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	meta = open_meta(dir, true);
	CU_ASSERT_PTR_NOT_NULL_FATAL(meta);
	CU_ASSERT_EQUAL(meta_sb(meta)->features, 0);
	meta_close(meta);
	meta = open_meta(dir, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(meta);
	CU_ASSERT_EQUAL(meta_sb(meta)->features, THINMAP_FEATURE_LOG);
	log_changes(meta, &ext, 1, 0);
	meta_close(meta);
	meta = open_meta(dir, true);
	CU_ASSERT_PTR_NOT_NULL_FATAL(meta);
	CU_ASSERT_EQUAL(meta_sb(meta)->features, THINMAP_FEATURE_LOG);
	meta_close(meta);
	scratch_remove(dir);
}

/* A log record that cannot be decoded: refused by both kinds of open. */
static void test_bad_log_record(void)
{
	static const unsigned char key[8] = { 0 }, val[5] = { 0 };
	struct meta *meta = NULL;
	char *dir = new_volume();
	char path[4200];

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	raw_put(dir, "log", key, sizeof key, val, sizeof val);
	expect_refused(dir, -EFSCORRUPTED, "log record value");
	snprintf(path, sizeof path, "%s/meta", dir);
	CU_ASSERT_EQUAL(meta_open(path, false, &meta), -EFSCORRUPTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(tm_get_error(), "log record"));
	scratch_remove(dir);
}

/* A read-write open excludes another; read-only opens do not. */
static void test_exclusive_open(void)
{
	char *dir = new_volume();
	struct volume *a, *b, *c;
	struct meta *meta;
	struct meta_txn *txn;
	struct extent bad = { 0, 8, PBLK(AGS, 0), EXT_MAPPED };

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	CU_ASSERT_EQUAL_FATAL(volume_open(dir, 0, NULL, &a), 0);
	CU_ASSERT_EQUAL(volume_open(dir, 0, NULL, &b), -EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(tm_get_error(), "in use"));
	CU_ASSERT_EQUAL(volume_open(dir, VOLUME_RDONLY, NULL, &c), 0);
	volume_close(c);
	volume_close(a);
	meta = open_meta(dir, true);
	CU_ASSERT_EQUAL(meta_txn_begin(meta, &txn), -EROFS);
	meta_close(meta);
	meta = open_meta(dir, false);
	CU_ASSERT_EQUAL_FATAL(meta_txn_begin(meta, &txn), 0);
	CU_ASSERT_EQUAL(meta_txn_map(txn, &bad), -EINVAL);
	meta_txn_abort(txn);
	meta_close(meta);
	scratch_remove(dir);
}

static void test_missing_volume(void)
{
	struct volume *vol;

	CU_ASSERT_EQUAL(volume_open("/nonexistent/thinmap", 0, NULL, &vol), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(tm_get_error(), "/nonexistent"));
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "missing volume", test_missing_volume },
		{ "exclusive open", test_exclusive_open },
		{ "bad superblock", test_bad_superblock },
		{ "bad records", test_bad_records },
		{ "overlapping records", test_overlapping_records },
		{ "log", test_log },
		{ "log given to an older volume", test_log_upgrade },
		{ "bad log record", test_bad_log_record },
		{ "round trip", test_round_trip },
		{ NULL, NULL },
	};

	return unit_run("meta", tests);
}
