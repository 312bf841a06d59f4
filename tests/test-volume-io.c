/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The volume's I/O entry points on real volumes in temporary directories,
 * checked against a model: the bytes of the volume, and the state each
 * block must report through volume_extents() (DESIGN.md, "Zero and trim"):
 *
 *   BLK_HOLE  never written, trimmed, or zeroed with VOLUME_MAY_TRIM:
 *             HOLE|ZERO
 *   BLK_ZERO  zeroed without VOLUME_MAY_TRIM (UNWRITTEN): ZERO
 *   BLK_DATA  written (DELALLOC or MAPPED), even partly: data
 *
 * Only whole blocks change state on zero and trim; a partial block keeps
 * its state (zeroing a partial HOLE or UNWRITTEN block needs no work) and,
 * on trim, its bytes.  Once flushed, the extent map itself (volume_map)
 * must agree block for block: MAPPED is DATA, UNWRITTEN is ZERO, no
 * DELALLOC, no physical block mapped twice; and volume_stat with it.
 *
 * Tests: an alignment sweep over block and folio boundaries; random
 * operation mixes; the zero and trim transitions with their space
 * accounting; ENOSPC on a thin volume; the page cache's hard limit;
 * writers and readers on many threads; bad arguments and read-only opens.
 * Scratch volumes go in $TMPDIR (default /tmp).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "thinmap/create.h"
#include "thinmap/error.h"
#include "thinmap/extent.h"
#include "thinmap/volume.h"
#include "model.h"
#include "scratch.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)

#define HOLE_ZERO (VOLUME_EXTENT_HOLE | VOLUME_EXTENT_ZERO)

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static bool quick(void)
{
	return model_ops(20) < 20;
}

/* Print a failed library call with its errno and message; return -1. */
static int call_failed(const char *what, int err)
{
	fprintf(stderr, "%s: %s (%s)\n", what, strerror(-err),
		tm_get_error());
	return -1;
}

/* ---- Scratch volumes ---- */

struct geometry {
	uint64_t size;
	uint64_t capacity;	/* 0: the size */
	uint32_t block_size;	/* 0: the default */
	uint32_t ag_count;	/* 0: the default */
};

struct scratch {
	char *dir;		/* the volume, inside its own temp dir */
	struct volume *vol;	/* NULL while closed */
	struct volume_params params;
	uint64_t size;
	uint32_t bs;
};

static int scratch_open(struct scratch *s, unsigned int flags)
{
	int err = volume_open(s->dir, flags, &s->params, &s->vol);

	if (err) {
		s->vol = NULL;
		return call_failed("volume_open", err);
	}
	return 0;
}

static int scratch_close(struct scratch *s)
{
	int err = 0;

	if (s->vol)
		err = volume_close(s->vol);
	s->vol = NULL;
	return err ? call_failed("volume_close", err) : 0;
}

static int scratch_reopen(struct scratch *s, unsigned int flags)
{
	int err = scratch_close(s);

	return err ? err : scratch_open(s, flags);
}

/* Close the volume and remove its scratch directory. */
static void scratch_destroy(struct scratch *s)
{
	scratch_close(s);
	scratch_remove(s->dir);
	s->dir = NULL;
}

/* Create a volume of geometry @g in a fresh temp dir and open it. */
static bool scratch_create(struct scratch *s, const struct geometry *g,
			   const struct volume_params *params)
{
	struct create_opts opts = {
		.size = g->size,
		.capacity = g->capacity,
		.block_size = g->block_size,
		.ag_count = g->ag_count,
	};
	struct thinmap_sb sb;

	memset(s, 0, sizeof *s);
	if (params)
		s->params = *params;
	s->dir = scratch_volume("volume-io", &opts, &sb);
	if (!s->dir)
		return false;
	s->size = sb.size;
	s->bs = sb.block_size;
	if (scratch_open(s, 0) != 0) {
		scratch_destroy(s);
		return false;
	}
	return true;
}

/* ---- Data patterns ---- */

/*
 * The pattern @salt is a function of the volume position, so data found
 * at the wrong place never matches.  Salt 0 is all zeros.
 */
static void fill_pattern(uint8_t *buf, uint64_t pos, uint64_t len,
			 uint64_t salt)
{
	if (salt == 0) {
		memset(buf, 0, len);
		return;
	}
	while (len > 0) {
		struct rng r = { salt ^ ((pos >> 3) * UINT64_C(0xff51afd7)) };
		uint64_t w = rng_next(&r);
		uint64_t skip = pos & 7, n = min_u64(8 - skip, len);

		memcpy(buf, (uint8_t *)&w + skip, n);
		buf += n;
		pos += n;
		len -= n;
	}
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Compare @got, read at volume offset @pos, with @want. */
static bool same_bytes(const uint8_t *got, const uint8_t *want, uint64_t len,
		       uint64_t pos)
{
	uint64_t first, last;

	if (memcmp(got, want, len) == 0)
		return true;
	for (first = 0; got[first] == want[first]; first++)
		;
	for (last = len - 1; got[last] == want[last]; last--)
		;
	fprintf(stderr,
		"read [%llu, +%llu): bytes %llu .. %llu differ; first: "
		"0x%02x, want 0x%02x\n", (unsigned long long)pos,
		(unsigned long long)len, (unsigned long long)(pos + first),
		(unsigned long long)(pos + last), got[first], want[first]);
	return false;
}

/* Read [@pos, +@len) and compare with pattern @salt, a MiB at a time. */
static bool pattern_matches(struct volume *vol, uint64_t pos, uint64_t len,
			    uint64_t salt)
{
	uint8_t *got = malloc(MiB), *want = malloc(MiB);
	bool ok = got && want;

	while (ok && len > 0) {
		uint64_t n = min_u64(len, MiB);
		int err = volume_pread(vol, got, n, pos);

		fill_pattern(want, pos, n, salt);
		if (err)
			ok = call_failed("volume_pread", err) == 0;
		else
			ok = same_bytes(got, want, n, pos);
		pos += n;
		len -= n;
	}
	free(got);
	free(want);
	return ok;
}

static int write_pattern(struct volume *vol, uint8_t *buf, uint64_t pos,
			 uint64_t len, uint64_t salt)
{
	fill_pattern(buf, pos, len, salt);
	return volume_pwrite(vol, buf, len, pos, 0);
}

/* ---- The model ---- */

enum { BLK_HOLE, BLK_ZERO, BLK_DATA };

static const char *const blk_names[] = { "HOLE", "ZERO", "DATA" };

/* What volume_extents() must report for a block in each state. */
static const uint32_t blk_flags[] = {
	[BLK_HOLE] = HOLE_ZERO,
	[BLK_ZERO] = VOLUME_EXTENT_ZERO,
	[BLK_DATA] = 0,
};

struct model {
	uint8_t *bytes;		/* the volume's contents */
	uint8_t *state;		/* BLK_* of each block */
	uint64_t size;
	uint32_t bs;
};

static bool model_init(struct model *m, uint64_t size, uint32_t bs)
{
	m->size = size;
	m->bs = bs;
	m->bytes = calloc(1, size);
	m->state = calloc(1, size / bs);	/* BLK_HOLE */
	return m->bytes && m->state;
}

static void model_destroy(struct model *m)
{
	free(m->bytes);
	free(m->state);
}

/* The whole blocks inside [@pos, +@len): [*first, *end). */
static void whole_blocks(const struct model *m, uint64_t pos, uint64_t len,
			 uint64_t *first, uint64_t *end)
{
	*first = (pos + m->bs - 1) / m->bs;
	*end = (pos + len) / m->bs;
	if (*end < *first)
		*end = *first;
}

static void model_write(struct model *m, uint64_t pos, uint64_t len,
			uint64_t salt)
{
	uint64_t first = pos / m->bs, end = (pos + len - 1) / m->bs + 1;

	fill_pattern(m->bytes + pos, pos, len, salt);
	memset(m->state + first, BLK_DATA, end - first);
}

/* Zero (@trim: only whole blocks) and set whole blocks to @state. */
static void model_zero(struct model *m, uint64_t pos, uint64_t len,
		       bool trim, uint8_t state)
{
	uint64_t first, end;

	whole_blocks(m, pos, len, &first, &end);
	memset(m->state + first, state, end - first);
	if (trim)
		memset(m->bytes + first * m->bs, 0, (end - first) * m->bs);
	else
		memset(m->bytes + pos, 0, len);
}

/* ---- Extents against the model ---- */

struct extents_walk {
	const struct model *m;
	uint64_t next;		/* where the next run must start */
	uint64_t end;		/* end of the range asked for */
	uint32_t prev;		/* flags of the previous run */
	unsigned long runs;
	uint64_t bad_blk;
};

/* Why the run [@off, +@len) with @flags is wrong, or NULL. */
static const char *run_wrong(struct extents_walk *w, uint64_t off,
			     uint64_t len, uint32_t flags)
{
	const struct model *m = w->m;
	uint64_t blk;

	if (off != w->next)
		return "does not start where the last one ended";
	if (len == 0 || len > w->end - off)
		return "is empty or runs past the range";
	if (w->runs && flags == w->prev)
		return "has the flags of the previous run (not merged)";
	if (flags & ~(uint32_t)HOLE_ZERO)
		return "has unknown flags";
	if ((flags & VOLUME_EXTENT_HOLE) && !(flags & VOLUME_EXTENT_ZERO))
		return "is a hole that does not read as zeros";
	if ((flags & VOLUME_EXTENT_ZERO) && !all_zero(m->bytes + off, len))
		return "is flagged ZERO but holds data";
	for (blk = off / m->bs; blk * m->bs < off + len; blk++) {
		if (blk_flags[m->state[blk]] != flags) {
			w->bad_blk = blk;
			return "disagrees with the model's state of a block";
		}
	}
	return NULL;
}

static int check_run(void *arg, uint64_t off, uint64_t len, uint32_t flags)
{
	struct extents_walk *w = arg;
	const char *why = run_wrong(w, off, len, flags);

	if (why) {
		fprintf(stderr, "extents: run [%llu, +%llu) flags %#x %s\n",
			(unsigned long long)off, (unsigned long long)len,
			flags, why);
		if (w->bad_blk != UINT64_MAX)
			fprintf(stderr, "extents: block %llu is %s\n",
				(unsigned long long)w->bad_blk,
				blk_names[w->m->state[w->bad_blk]]);
		return -1;
	}
	w->next = off + len;
	w->prev = flags;
	w->runs++;
	return 0;
}

static int extents_match(struct volume *vol, const struct model *m,
			 uint64_t pos, uint64_t len)
{
	struct extents_walk w = { m, pos, pos + len, 0, 0, UINT64_MAX };
	int err = volume_extents(vol, len, pos, check_run, &w);

	if (err > 0 || err < -1)
		return call_failed("volume_extents", err);
	if (!err && w.next != pos + len) {
		fprintf(stderr, "extents: runs end at %llu, not %llu\n",
			(unsigned long long)w.next,
			(unsigned long long)(pos + len));
		return -1;
	}
	return err;
}

/* ---- Space accounting against the model ---- */

/* Bytes of the model's blocks in each state. */
static void model_count(const struct model *m, uint64_t bytes[3])
{
	uint64_t blk;

	bytes[BLK_HOLE] = bytes[BLK_ZERO] = bytes[BLK_DATA] = 0;
	for (blk = 0; blk < m->size / m->bs; blk++)
		bytes[m->state[blk]] += m->bs;
}

/*
 * Once everything is written back (@settled), mapped and unwritten bytes
 * are exactly the model's DATA and ZERO blocks and the rest is free.
 * Before that, the unwritten bytes are the ZERO blocks (zero is metadata
 * only) as long as nothing was written into them; freed space may still
 * be busy, so only the sum is bounded.
 */
static const char *stat_wrong(const struct volume_stat *st,
			      const uint64_t want[3], uint64_t size,
			      bool settled)
{
	if (st->size != size)
		return "size";
	if (st->unwritten != want[BLK_ZERO])
		return "unwritten";
	if (!settled)
		return st->mapped + st->unwritten + st->delalloc + st->free >
				       st->capacity ? "free (over capacity)"
						    : NULL;
	if (st->mapped != want[BLK_DATA])
		return "mapped";
	if (st->delalloc != 0 || st->dirty_bytes != 0)
		return "delalloc or dirty after flush";
	if (st->mapped + st->unwritten + st->free != st->capacity)
		return "free";
	return NULL;
}

static int stat_check(struct volume *vol, const struct model *m,
		      bool settled)
{
	struct volume_stat st;
	uint64_t want[3];
	const char *why;

	volume_stat(vol, &st);
	model_count(m, want);
	why = stat_wrong(&st, want, m->size, settled);
	if (!why)
		return 0;
	fprintf(stderr,
		"volume_stat: wrong %s: size %llu capacity %llu mapped %llu "
		"unwritten %llu delalloc %llu free %llu dirty %llu; model: "
		"data %llu zero %llu\n", why,
		(unsigned long long)st.size, (unsigned long long)st.capacity,
		(unsigned long long)st.mapped,
		(unsigned long long)st.unwritten,
		(unsigned long long)st.delalloc, (unsigned long long)st.free,
		(unsigned long long)st.dirty_bytes,
		(unsigned long long)want[BLK_DATA],
		(unsigned long long)want[BLK_ZERO]);
	return -1;
}

/* ---- The extent map against the model, once settled ---- */

/*
 * After a flush the map holds no DELALLOC, each MAPPED block is a DATA
 * block of the model, each UNWRITTEN one a ZERO block, the rest are
 * holes; and no physical block is mapped twice.
 */
struct map_walk {
	const struct model *m;
	uint64_t next;		/* first block not yet seen */
	struct extent_vec phys;
	uint64_t bad_blk;
	enum extent_state bad_state;
};

static int map_wrong_blocks(struct map_walk *w, uint64_t lblk, uint64_t end,
			    enum extent_state state)
{
	static const uint8_t want[] = {
		[EXT_HOLE] = BLK_HOLE,
		[EXT_DELALLOC] = 0xff,	/* never, once settled */
		[EXT_UNWRITTEN] = BLK_ZERO,
		[EXT_MAPPED] = BLK_DATA,
	};

	for (; lblk < end; lblk++) {
		if (w->m->state[lblk] != want[state]) {
			w->bad_blk = lblk;
			w->bad_state = state;
			return -1;
		}
	}
	return 0;
}

static int map_one(void *arg, const struct extent *ext)
{
	struct map_walk *w = arg;

	if (map_wrong_blocks(w, w->next, ext->lblk, EXT_HOLE) ||
	    map_wrong_blocks(w, ext->lblk, extent_end(ext), ext->state))
		return -1;
	w->next = extent_end(ext);
	return extent_vec_push(&w->phys, ext);
}

/* Index of the first extent that overlaps the next one physically. */
static size_t phys_overlap(struct extent_vec *phys)
{
	size_t i;

	extent_vec_sort_pblk(phys);
	for (i = 0; i + 1 < phys->n; i++)
		if (phys->v[i].pblk + phys->v[i].len > phys->v[i + 1].pblk)
			return i;
	return phys->n;
}

static int map_check(struct volume *vol, const struct model *m)
{
	struct map_walk w = { .m = m };
	int err = volume_map(vol, map_one, &w);
	size_t i;

	if (!err)
		err = map_wrong_blocks(&w, w.next, m->size / m->bs, EXT_HOLE);
	if (err)
		fprintf(stderr, "map: block %llu is %s, the model has %s\n",
			(unsigned long long)w.bad_blk,
			extent_state_name(w.bad_state),
			blk_names[m->state[w.bad_blk]]);
	i = err ? 0 : phys_overlap(&w.phys);
	if (!err && i < w.phys.n) {
		fprintf(stderr, "map: logical blocks %llu and %llu share "
			"physical block %#llx\n",
			(unsigned long long)w.phys.v[i].lblk,
			(unsigned long long)w.phys.v[i + 1].lblk,
			(unsigned long long)w.phys.v[i + 1].pblk);
		err = -1;
	}
	extent_vec_free(&w.phys);
	return err;
}

/* Everything written back: space and map exactly as the model says. */
static int settled_check(struct volume *vol, const struct model *m)
{
	return map_check(vol, m) ? -1 : stat_check(vol, m, true);
}

/* ---- Operations on a volume and its model together ---- */

enum op_kind {
	OP_WRITE,	/* pattern @salt */
	OP_READ,	/* and compare */
	OP_ZERO,
	OP_TRIM,
	OP_EXTENTS,	/* and compare */
	OP_CACHE,
	OP_FLUSH,	/* and compare volume_stat and map, settled */
	OP_REOPEN,	/* close, open, compare as OP_FLUSH */
	OP_STAT,	/* compare volume_stat, unsettled */
	OP_CHECK,	/* read and extents of the whole volume */
};

static const char *const op_names[] = {
	"pwrite", "pread", "zero", "trim", "extents",
	"cache", "flush", "reopen", "stat", "check",
};

struct op {
	enum op_kind kind;
	uint64_t pos, len;
	unsigned int flags;
	uint64_t salt;
};

/* Initializers for tables of operations. */
#define DO(k) { .kind = OP_##k }
#define ON(k, p, l, f) { .kind = OP_##k, .pos = (p), .len = (l), .flags = (f) }
#define WRITE(p, l, s) { .kind = OP_WRITE, .pos = (p), .len = (l), .salt = (s) }

#define LOG_LEN 24

struct tester {
	struct scratch s;
	struct model m;
	uint8_t *buf;		/* read buffer: the volume's size */
	unsigned long nops;	/* operations applied */
	struct op log[LOG_LEN];	/* the last ones */
};

static int op_write(struct tester *t, const struct op *op)
{
	int err;

	model_write(&t->m, op->pos, op->len, op->salt);
	err = volume_pwrite(t->s.vol, t->m.bytes + op->pos, op->len, op->pos,
			    op->flags);
	return err ? call_failed("volume_pwrite", err) : 0;
}

static int op_read(struct tester *t, const struct op *op)
{
	int err = volume_pread(t->s.vol, t->buf, op->len, op->pos);

	if (err)
		return call_failed("volume_pread", err);
	return same_bytes(t->buf, t->m.bytes + op->pos, op->len, op->pos) ?
		       0 : -1;
}

static int op_zero(struct tester *t, const struct op *op)
{
	bool punch = op->flags & VOLUME_MAY_TRIM;
	int err;

	model_zero(&t->m, op->pos, op->len, false,
		   punch ? BLK_HOLE : BLK_ZERO);
	err = volume_zero(t->s.vol, op->len, op->pos, op->flags);
	return err ? call_failed("volume_zero", err) : 0;
}

static int op_trim(struct tester *t, const struct op *op)
{
	int err;

	model_zero(&t->m, op->pos, op->len, true, BLK_HOLE);
	err = volume_trim(t->s.vol, op->len, op->pos, op->flags);
	return err ? call_failed("volume_trim", err) : 0;
}

static int op_extents(struct tester *t, const struct op *op)
{
	return extents_match(t->s.vol, &t->m, op->pos, op->len);
}

static int op_cache(struct tester *t, const struct op *op)
{
	int err = volume_cache(t->s.vol, op->len, op->pos);

	return err ? call_failed("volume_cache", err) : 0;
}

static int op_flush(struct tester *t, const struct op *op)
{
	int err = volume_flush(t->s.vol);

	(void)op;
	if (err)
		return call_failed("volume_flush", err);
	return settled_check(t->s.vol, &t->m);
}

static int op_reopen(struct tester *t, const struct op *op)
{
	(void)op;
	if (scratch_reopen(&t->s, 0) != 0)
		return -1;
	return settled_check(t->s.vol, &t->m);
}

static int op_stat(struct tester *t, const struct op *op)
{
	(void)op;
	return stat_check(t->s.vol, &t->m, false);
}

static int op_check(struct tester *t, const struct op *op)
{
	struct op all = { OP_READ, 0, t->m.size, 0, 0 };

	(void)op;
	return op_read(t, &all) ? -1 : op_extents(t, &all);
}

typedef int (*op_fn)(struct tester *t, const struct op *op);

static const op_fn op_fns[] = {
	op_write, op_read, op_zero, op_trim, op_extents,
	op_cache, op_flush, op_reopen, op_stat, op_check,
};

static void log_dump(const struct tester *t)
{
	unsigned long i = t->nops > LOG_LEN ? t->nops - LOG_LEN : 0;

	fprintf(stderr,
		"page size %u, cache size %llu; operations (0-based "
		"numbers; the last failed):\n", t->s.params.page_size,
		(unsigned long long)t->s.params.cache_size);
	for (; i < t->nops; i++) {
		const struct op *op = &t->log[i % LOG_LEN];

		fprintf(stderr, "  #%lu %s offset %llu count %llu flags %#x\n",
			i, op_names[op->kind], (unsigned long long)op->pos,
			(unsigned long long)op->len, op->flags);
	}
}

static int apply_op(struct tester *t, const struct op *op)
{
	int err;

	t->log[t->nops++ % LOG_LEN] = *op;
	err = op_fns[op->kind](t, op);
	if (err)
		log_dump(t);
	return err;
}

static int apply_ops(struct tester *t, const struct op *ops, size_t n)
{
	size_t i;
	int err = 0;

	for (i = 0; i < n && !err; i++)
		err = apply_op(t, &ops[i]);
	return err;
}

static bool tester_init(struct tester *t, const struct geometry *g,
			const struct volume_params *params)
{
	memset(t, 0, sizeof *t);
	if (!scratch_create(&t->s, g, params))
		return false;
	t->buf = malloc(t->s.size);
	if (t->buf && model_init(&t->m, t->s.size, t->s.bs))
		return true;
	model_destroy(&t->m);
	free(t->buf);
	scratch_destroy(&t->s);
	return false;
}

static void tester_destroy(struct tester *t)
{
	scratch_destroy(&t->s);
	model_destroy(&t->m);
	free(t->buf);
}

/* Run @ops on a fresh volume of geometry @g. */
static int run_sequence(const struct geometry *g, const struct op *ops,
			size_t n)
{
	struct tester t;
	int err;

	if (!tester_init(&t, g, NULL))
		return -1;
	err = apply_ops(&t, ops, n);
	tester_destroy(&t);
	return err;
}

/* ---- 1. Alignment sweep ---- */

/* Offsets in a block: 0 .. 16, then every @step-th, then bs - 1, bs. */
static uint64_t next_offset(uint64_t o, uint32_t bs, uint64_t step)
{
	if (o < 16)
		return o + 1;
	if (o + step < bs - 1)
		return o + step;
	return o < bs - 1 ? bs - 1 : o + 1;
}

/*
 * Write at every offset of a block, with lengths that end on either side
 * of block and folio boundaries, at places that move over the volume (so
 * over holes and over earlier writes) and sometimes start in a folio's
 * last block; read back each write with a block either side.
 */
static int sweep(struct tester *t, uint64_t salt)
{
	const uint64_t bs = t->s.bs, page = DEFAULT_PAGE_SIZE;
	const uint64_t lens[] = {
		1, 2, bs - 1, bs, bs + 1, page - 1, page, page + bs + 1,
		2 * page + 3,
	};
	const uint64_t nslots = t->s.size / page - 3;
	uint64_t o, i, k = 0;
	int err = 0;

	for (o = 0; o <= bs && !err; o = next_offset(o, bs, quick() ? 61 : 7)) {
		for (i = 0; i < sizeof lens / sizeof lens[0] && !err; i++) {
			uint64_t pos = (k * 7919 % nslots) * page + o +
				       (k % 4 == 3 ? page - bs : 0);
			uint64_t from = pos > bs ? pos - bs : 0;
			struct op w = { OP_WRITE, pos, lens[i], 0, salt + k };
			struct op r = { OP_READ, from,
					pos + lens[i] + bs - from, 0, 0 };

			k++;
			err = apply_op(t, &w);
			if (!err)
				err = apply_op(t, &r);
		}
	}
	return err;
}

static int alignment_sweep(uint32_t block_size)
{
	static const struct op settle[] = {
		DO(CHECK), DO(FLUSH), DO(CHECK),
		DO(REOPEN), DO(CHECK),
	};
	struct geometry g = { 8 * MiB, 0, block_size, 0 };
	struct tester t;
	int err;

	if (!tester_init(&t, &g, NULL))
		return -1;
	/* The second pass writes into MAPPED blocks not in the cache. */
	err = sweep(&t, 1);
	if (!err)
		err = apply_ops(&t, settle, sizeof settle / sizeof settle[0]);
	if (!err)
		err = sweep(&t, UINT64_C(1) << 32);
	if (!err)
		err = apply_ops(&t, settle, sizeof settle / sizeof settle[0]);
	tester_destroy(&t);
	return err;
}

static void test_alignment_4096(void)
{
	CU_ASSERT_EQUAL(alignment_sweep(4096), 0);
}

static void test_alignment_512(void)
{
	CU_ASSERT_EQUAL(alignment_sweep(512), 0);
}

/* ---- 2. Random operation mixes ---- */

/*
 * Mostly small requests (the length is skewed to short ones), one in a
 * hundred up to 1 MiB, a third of them block aligned.
 */
static void random_range(struct rng *r, uint64_t size, uint32_t bs,
			 uint64_t *pos, uint64_t *len)
{
	uint64_t max = rng_below(r, 100) == 0 ? MiB : 64 * KiB;
	bool aligned = rng_below(r, 3) == 0;

	*len = 1 + rng_below(r, 1 + rng_below(r, max));
	if (aligned)
		*len = (*len + bs - 1) / bs * bs;
	*pos = rng_below(r, size - *len + 1);
	if (aligned)
		*pos -= *pos % bs;
}

static unsigned int random_fua(struct rng *r)
{
	return rng_below(r, 1000) == 0 ? VOLUME_FUA : 0;
}

static struct op random_op(struct rng *r, uint64_t size, uint32_t bs)
{
	/*
	 * Percentages of each kind, in enum order.  Zero and trim commit
	 * metadata each time (an fdatasync): keep them few enough to run
	 * in seconds.
	 */
	static const unsigned int mix[] = { 48, 31, 3, 2, 11, 5 };
	unsigned int dice = (unsigned int)rng_below(r, 100);
	struct op op = WRITE(0, 0, 0);

	while (dice >= mix[op.kind])
		dice -= mix[op.kind++];
	random_range(r, size, bs, &op.pos, &op.len);
	if (op.kind == OP_WRITE) {
		op.salt = rng_next(r) | 1;
		op.flags = random_fua(r);
	} else if (op.kind == OP_ZERO) {
		op.flags = random_fua(r) |
			   (rng_below(r, 2) ? VOLUME_MAY_TRIM : 0);
	} else if (op.kind == OP_TRIM) {
		op.flags = random_fua(r);
	} else if (op.kind == OP_EXTENTS && rng_below(r, 10) == 0) {
		op.pos = 0;
		op.len = size;
	}
	return op;
}

/* The periodic operation due after operation @i of @ops, or OP_READ. */
static enum op_kind periodic_op(unsigned long i, unsigned long ops)
{
	unsigned long reopen = ops / 4 + 1, check = ops / 10 + 1;

	if (i % reopen == reopen - 1)
		return OP_REOPEN;
	if (i % check == check - 1)
		return OP_CHECK;
	if (i % 1000 == 999)
		return OP_FLUSH;
	return OP_READ;
}

/*
 * Folios of 1 to 16 blocks, and half the time a cache of a quarter of
 * the volume, so that clean folios are evicted and dirty ones written
 * back under pressure.
 */
static struct volume_params random_params(struct rng *r)
{
	struct volume_params p = {
		.page_size = 4096u << rng_below(r, 5),
		.cache_size = rng_below(r, 2) ? 4 * MiB : 0,
	};

	return p;
}

static int random_mix(uint64_t seed)
{
	static const struct geometry g = { 16 * MiB, 0, 4096, 4 };
	static const struct op finish[] = {
		DO(FLUSH), DO(CHECK), DO(REOPEN), DO(CHECK),
	};
	unsigned long ops = model_ops(100000), i;
	struct rng r = { seed };
	struct volume_params params = random_params(&r);
	struct tester t;
	int err = 0;

	if (!tester_init(&t, &g, &params))
		return -1;
	for (i = 0; i < ops && !err; i++) {
		struct op op = random_op(&r, t.s.size, t.s.bs);
		struct op extra = { .kind = periodic_op(i, ops) };

		err = apply_op(&t, &op);
		if (!err && extra.kind != OP_READ)
			err = apply_op(&t, &extra);
	}
	if (!err)
		err = apply_ops(&t, finish, sizeof finish / sizeof finish[0]);
	tester_destroy(&t);
	return err;
}

static void test_random_mix(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("volume io random mix", random_mix), 0);
}

/* ---- 3. Specific semantics ---- */

#define BS 4096
#define SMALL_VOLUME { 4 * MiB, 0, BS, 0 }
#define N_OPS(ops) (sizeof(ops) / sizeof((ops)[0]))

/* A sub-block write into a hole reads zeros around it. */
static void test_write_into_hole(void)
{
	static const struct geometry g = SMALL_VOLUME;
	static const struct op ops[] = {
		WRITE(5 * BS + 1000, 100, 1),
		ON(READ, 4 * BS, 3 * BS, 0),
		ON(EXTENTS, 0, 4 * MiB, 0),
		WRITE(9 * BS - 50, 100, 2),	/* two hole blocks */
		ON(READ, 8 * BS, 2 * BS, 0),
		DO(FLUSH), DO(REOPEN),
		ON(READ, 4 * BS, 6 * BS, 0),
		DO(CHECK),
	};

	CU_ASSERT_EQUAL(run_sequence(&g, ops, N_OPS(ops)), 0);
}

/*
 * Partial writes into MAPPED blocks that are not in the cache keep their
 * other bytes; a partial write into UNWRITTEN blocks reads as data, and
 * zeros around it, before and after writeback.
 */
static void test_write_into_mapped(void)
{
	static const struct geometry g = SMALL_VOLUME;
	static const struct op ops[] = {
		WRITE(16 * BS, 4 * BS, 1),
		ON(ZERO, 24 * BS, 4 * BS, 0),
		DO(FLUSH), DO(REOPEN),
		WRITE(17 * BS + 7, 10, 2),
		ON(READ, 16 * BS, 4 * BS, 0),
		WRITE(19 * BS - 5, 10, 3),	/* across a block */
		WRITE(20 * BS - 1, 1, 4),
		ON(READ, 16 * BS, 4 * BS, 0),
		WRITE(25 * BS + 3, 10, 5),	/* into UNWRITTEN */
		ON(READ, 24 * BS, 4 * BS, 0),
		ON(EXTENTS, 16 * BS, 12 * BS, 0),
		DO(FLUSH),
		ON(EXTENTS, 16 * BS, 12 * BS, 0),
		DO(REOPEN),
		DO(CHECK),
	};

	CU_ASSERT_EQUAL(run_sequence(&g, ops, N_OPS(ops)), 0);
}

/*
 * write -> zero (UNWRITTEN: ZERO, still allocated) -> trim (HOLE|ZERO,
 * freed once committed) -> zero of a hole (UNWRITTEN again, allocated)
 * -> zero with MAY_TRIM (a hole); then partial edges of zero and trim.
 * OP_FLUSH and OP_STAT compare volume_stat with the model each time.
 */
static void test_zero_trim_transitions(void)
{
	static const struct geometry g = SMALL_VOLUME;
	static const struct op ops[] = {
		WRITE(32 * BS, 16 * BS, 1),
		DO(FLUSH), DO(CHECK),
		ON(ZERO, 32 * BS, 16 * BS, 0),
		DO(STAT), DO(CHECK), DO(FLUSH),
		ON(TRIM, 32 * BS, 16 * BS, 0),
		DO(CHECK), DO(FLUSH),
		ON(ZERO, 32 * BS, 16 * BS, 0),
		DO(STAT), DO(CHECK), DO(FLUSH),
		DO(REOPEN), DO(CHECK),
		ON(ZERO, 32 * BS, 16 * BS, VOLUME_MAY_TRIM),
		DO(STAT), DO(CHECK), DO(FLUSH),
		/* Partial edges. */
		WRITE(32 * BS, 16 * BS, 2),
		ON(ZERO, 32 * BS + 100, 16 * BS - 200, 0),
		DO(CHECK), DO(FLUSH),
		ON(TRIM, 32 * BS + 100, 16 * BS - 200, 0),
		DO(CHECK), DO(FLUSH),
		ON(ZERO, 33 * BS - 1, 2, VOLUME_MAY_TRIM),
		ON(TRIM, 47 * BS + 1, BS - 2, 0),
		DO(CHECK), DO(REOPEN), DO(CHECK),
	};

	CU_ASSERT_EQUAL(run_sequence(&g, ops, N_OPS(ops)), 0);
}

/* ---- 4. ENOSPC ---- */

/*
 * Write pattern @salt in @chunk pieces from @pos until an error or @end;
 * return the bytes written and the error in *@err.
 */
static uint64_t fill_until_error(struct volume *vol, uint64_t pos,
				 uint64_t end, uint64_t chunk, uint64_t salt,
				 int *err)
{
	uint8_t *buf = malloc(chunk);
	uint64_t done = 0;

	*err = buf ? 0 : -ENOMEM;
	while (!*err && pos + done < end) {
		uint64_t n = min_u64(chunk, end - pos - done);

		*err = write_pattern(vol, buf, pos + done, n, salt);
		if (!*err)
			done += n;
	}
	free(buf);
	return done;
}

/*
 * Blocks of [@pos, +@len) that hold pattern @salt; -1 if any holds
 * neither it nor zeros.
 */
static long count_written(struct volume *vol, uint64_t pos, uint64_t len,
			  uint32_t bs, uint64_t salt)
{
	uint8_t *got = malloc(bs), *want = malloc(bs);
	long n = 0;

	for (; n >= 0 && len >= bs; pos += bs, len -= bs) {
		fill_pattern(want, pos, bs, salt);
		if (volume_pread(vol, got, bs, pos) != 0)
			n = -1;
		else if (memcmp(got, want, bs) == 0)
			n++;
		else if (!all_zero(got, bs))
			n = -1;
	}
	free(got);
	free(want);
	return n;
}

static void expect_space(struct volume *vol, uint64_t used, uint64_t free)
{
	struct volume_stat st;

	volume_stat(vol, &st);
	CU_ASSERT_EQUAL(st.mapped + st.unwritten + st.delalloc, used);
	CU_ASSERT_EQUAL(st.free, free);
	if (st.free != free)
		fprintf(stderr, "free %llu, want %llu\n",
			(unsigned long long)st.free, (unsigned long long)free);
}

/*
 * Fill a thin volume: 64 KiB writes until ENOSPC, which must come only
 * when less than 64 KiB is left; then single blocks fill it exactly.
 * The failed write may have written some of its blocks, no more.
 */
static uint64_t fill_volume(struct scratch *s, uint64_t cap, uint64_t salt)
{
	const uint64_t chunk = 64 * KiB;
	uint64_t big, small;
	long partial;
	int err;

	big = fill_until_error(s->vol, 0, s->size, chunk, salt, &err);
	CU_ASSERT_EQUAL(err, -ENOSPC);
	CU_ASSERT(big + chunk > cap);
	small = fill_until_error(s->vol, big + chunk, s->size, s->bs, salt,
				 &err);
	CU_ASSERT_EQUAL(err, -ENOSPC);
	partial = count_written(s->vol, big, chunk, s->bs, salt);
	CU_ASSERT(partial >= 0);
	CU_ASSERT_EQUAL(big + small + (uint64_t)partial * s->bs, cap);
	if (big + small + (uint64_t)partial * s->bs != cap)
		fprintf(stderr,
			"ENOSPC after %llu + %llu + %ld blocks; "
			"capacity %llu\n",
			(unsigned long long)big, (unsigned long long)small,
			partial, (unsigned long long)cap);
	CU_ASSERT(pattern_matches(s->vol, 0, big, salt));
	CU_ASSERT(pattern_matches(s->vol, big + chunk, small, salt));
	expect_space(s->vol, cap, 0);
	return big;
}

static void test_enospc(void)
{
	static const struct geometry g = { 64 * MiB, 8 * MiB, 4096, 2 };
	const uint64_t cap = 8 * MiB, refill = 32 * MiB;
	uint64_t big, half, again;
	struct scratch s;
	int err;

	CU_ASSERT_FATAL(scratch_create(&s, &g, NULL));
	big = fill_volume(&s, cap, 1);
	CU_ASSERT_EQUAL(volume_flush(s.vol), 0);
	CU_ASSERT(pattern_matches(s.vol, 0, big, 1));
	expect_space(s.vol, cap, 0);

	/* Trim half of it: once committed, that space can be written. */
	half = big / 2 / s.bs * s.bs;
	CU_ASSERT_EQUAL(volume_trim(s.vol, half, 0, 0), 0);
	CU_ASSERT_EQUAL(volume_flush(s.vol), 0);
	expect_space(s.vol, cap - half, half);
	again = fill_until_error(s.vol, refill, refill + half, 64 * KiB, 2,
				 &err);
	CU_ASSERT_EQUAL(err, 0);
	CU_ASSERT_EQUAL(again, half);
	fill_until_error(s.vol, refill + half, s.size, s.bs, 2, &err);
	CU_ASSERT_EQUAL(err, -ENOSPC);
	CU_ASSERT_EQUAL(volume_flush(s.vol), 0);
	CU_ASSERT(pattern_matches(s.vol, 0, half, 0));
	CU_ASSERT(pattern_matches(s.vol, half, big - half, 1));
	CU_ASSERT(pattern_matches(s.vol, refill, half, 2));
	scratch_destroy(&s);
}

/*
 * Space a trim frees comes back when the trim is committed.  A zero that
 * must allocate (no may-trim) into a full volume gets it then, as a
 * write does, and does not fail with ENOSPC.
 */
static void test_enospc_zero(void)
{
	static const struct geometry g = { 64 * MiB, 8 * MiB, 4096, 2 };
	const uint64_t cap = 8 * MiB, zero_at = 32 * MiB;
	uint64_t big, half;
	struct scratch s;

	CU_ASSERT_FATAL(scratch_create(&s, &g, NULL));
	big = fill_volume(&s, cap, 1);
	CU_ASSERT_EQUAL(volume_flush(s.vol), 0);
	half = big / 2 / s.bs * s.bs;
	CU_ASSERT_EQUAL(volume_trim(s.vol, half, 0, 0), 0);
	CU_ASSERT_EQUAL(volume_zero(s.vol, half, zero_at, 0), 0);
	CU_ASSERT_EQUAL(volume_flush(s.vol), 0);
	expect_space(s.vol, cap, 0);
	CU_ASSERT(pattern_matches(s.vol, 0, half, 0));
	CU_ASSERT(pattern_matches(s.vol, half, big - half, 1));
	CU_ASSERT(pattern_matches(s.vol, zero_at, half, 0));
	scratch_destroy(&s);
}

/* ---- 5. The page cache's hard limit ---- */

/* RSS says little under sanitizers (shadow memory) and valgrind. */
static bool rss_meaningful(void)
{
	const char *preload = getenv("LD_PRELOAD");

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return false;
#endif
	return !preload || !strstr(preload, "vgpreload");
}

static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

struct mem_watch {
	uint64_t cache_size;
	uint64_t rss_base;
	uint64_t cache_peak, rss_peak;
	bool over;
};

/* After each request: the cache within its limit, RSS growth bounded. */
static void mem_watch_check(struct mem_watch *w, struct volume *vol)
{
	struct volume_stat st;
	uint64_t rss = rss_bytes();

	volume_stat(vol, &st);
	if (st.cache_bytes > w->cache_peak)
		w->cache_peak = st.cache_bytes;
	if (rss > w->rss_peak)
		w->rss_peak = rss;
	if (!w->over && (st.cache_bytes > w->cache_size ||
			 (rss_meaningful() &&
			  rss > w->rss_base + w->cache_size + 32 * MiB))) {
		fprintf(stderr, "cache %llu bytes, RSS grew by %llu\n",
			(unsigned long long)st.cache_bytes,
			(unsigned long long)(rss - w->rss_base));
		w->over = true;
	}
}

static void test_cache_limit(void)
{
	static const struct geometry g = { 256 * MiB, 0, 4096, 0 };
	const struct volume_params params = { .cache_size = 8 * MiB };
	const uint64_t total = model_ops(256) * MiB, chunk = 512 * KiB;
	struct mem_watch w = { .cache_size = 8 * MiB };
	uint8_t *buf = malloc(chunk), *got = malloc(chunk);
	struct rng r = { 7 };
	struct scratch s;
	uint64_t pos, len;

	CU_ASSERT_FATAL(buf && got && scratch_create(&s, &g, &params));
	memset(got, 0, chunk);		/* resident before the baseline */
	w.rss_base = rss_bytes();
	for (pos = 0; pos < total; pos += len) {
		len = min_u64(1 + rng_below(&r, chunk), total - pos);
		if (write_pattern(s.vol, buf, pos, len, 3) != 0) {
			CU_FAIL("volume_pwrite");
			break;
		}
		mem_watch_check(&w, s.vol);
	}
	for (pos = 0; pos < total; pos += len) {
		len = min_u64(chunk, total - pos);
		CU_ASSERT(volume_pread(s.vol, got, len, pos) == 0);
		fill_pattern(buf, pos, len, 3);
		CU_ASSERT(same_bytes(got, buf, len, pos));
		mem_watch_check(&w, s.vol);
	}
	CU_ASSERT_FALSE(w.over);
	fprintf(stderr, "cache peak %llu KiB, RSS growth peak %llu KiB\n",
		(unsigned long long)(w.cache_peak >> 10),
		(unsigned long long)((w.rss_peak - w.rss_base) >> 10));
	scratch_destroy(&s);
	free(buf);
	free(got);
}

/* ---- 6. Threads ---- */

/*
 * Writers write block-aligned requests over a small region, each filled
 * with its request id (or zero or trim it, as id 0 reads); readers read
 * and see only ids already issued, and flush or ask for extents.  At the
 * end each block must hold one request's id, of a request that covered
 * it, never a mix.
 */
#define RACE_WRITERS 8
#define RACE_READERS 2
#define RACE_MAX_BLKS 8		/* longest request, in blocks */
#define RACE_BLKS 128		/* the region, in blocks */

struct race_req {
	uint64_t lblk, nblks;
	bool zero;
};

struct race {
	struct volume *vol;
	uint32_t bs;
	unsigned long ops;	/* per thread */
	time_t deadline;
	atomic_uint next_id;
	atomic_int errors;
	struct race_req *reqs;	/* by id, set by the thread issuing it */
};

struct race_thread {
	struct race *race;
	pthread_t tid;
	uint64_t seed;
	unsigned int index;
};

static bool race_going(const struct race *race, unsigned long i)
{
	return i < race->ops && time(NULL) < race->deadline &&
	       atomic_load(&race->errors) == 0;
}

static void race_error(struct race *race, const char *what, int err)
{
	call_failed(what, err);
	atomic_fetch_add(&race->errors, 1);
}

static void race_random_req(struct race_req *req, struct rng *r)
{
	req->nblks = 1 + rng_below(r, RACE_MAX_BLKS);
	req->lblk = rng_below(r, RACE_BLKS - req->nblks + 1);
	req->zero = rng_below(r, 10) == 0;
}

/* Issue request @id: write its id, or zero or trim its blocks. */
static int race_issue(struct race *race, unsigned int id, uint32_t *buf,
		      struct rng *r)
{
	const struct race_req *req = &race->reqs[id];
	uint64_t pos = req->lblk * race->bs, len = req->nblks * race->bs;
	uint64_t i;

	if (req->zero && rng_below(r, 2))
		return volume_trim(race->vol, len, pos, 0);
	if (req->zero)
		return volume_zero(race->vol, len, pos,
				   rng_below(r, 2) ? VOLUME_MAY_TRIM : 0);
	for (i = 0; i < len / sizeof *buf; i++)
		buf[i] = id;
	return volume_pwrite(race->vol, buf, len, pos, 0);
}

static void *race_writer(void *arg)
{
	struct race_thread *rt = arg;
	struct race *race = rt->race;
	uint32_t *buf = malloc(RACE_MAX_BLKS * race->bs);
	struct rng r = { rt->seed };
	unsigned long i;

	for (i = 0; buf && race_going(race, i); i++) {
		unsigned int id = atomic_fetch_add(&race->next_id, 1);
		int err;

		race_random_req(&race->reqs[id], &r);
		err = race_issue(race, id, buf, &r);
		if (err)
			race_error(race, "writer", err);
	}
	free(buf);
	return NULL;
}

static int race_no_op(void *arg, uint64_t off, uint64_t len, uint32_t flags)
{
	(void)arg, (void)off, (void)len, (void)flags;
	return 0;
}

/* Every 16th read, reader 0 flushes and the others ask for extents. */
static int race_side_op(struct race_thread *rt)
{
	struct race *race = rt->race;

	if (rt->index == 0)
		return volume_flush(race->vol);
	return volume_extents(race->vol, RACE_BLKS * race->bs, 0, race_no_op,
			      NULL);
}

static void *race_reader(void *arg)
{
	struct race_thread *rt = arg;
	struct race *race = rt->race;
	uint64_t region = RACE_BLKS * race->bs, len, pos, j;
	uint32_t *buf = malloc(region);
	struct rng r = { rt->seed };
	unsigned long i;

	for (i = 0; buf && race_going(race, i); i++) {
		int err;

		len = 4 * (1 + rng_below(&r, region / 4));
		pos = rng_below(&r, (region - len) / 4 + 1) * 4;
		err = volume_pread(race->vol, buf, len, pos);
		for (j = 0; !err && j < len / 4; j++)
			if (buf[j] >= atomic_load(&race->next_id))
				break;
		if (!err && j < len / 4) {
			fprintf(stderr, "reader: id %u at %llu not issued\n",
				buf[j], (unsigned long long)(pos + 4 * j));
			err = -EILSEQ;
		}
		if (!err && i % 16 == 15)
			err = race_side_op(rt);
		if (err)
			race_error(race, "reader", err);
	}
	free(buf);
	return NULL;
}

/* Is block @blk of @words one id, of a write that covered it? */
static bool race_block_ok(const struct race *race, const uint32_t *words,
			  uint64_t blk)
{
	const uint64_t per = race->bs / sizeof *words;
	const uint32_t *w = words + blk * per;
	const struct race_req *req;
	uint64_t i;

	for (i = 1; i < per; i++) {
		if (w[i] != w[0]) {
			fprintf(stderr, "block %llu torn: ids %u and %u\n",
				(unsigned long long)blk, w[0], w[i]);
			return false;
		}
	}
	if (w[0] == 0)
		return true;
	req = w[0] < atomic_load(&race->next_id) ? &race->reqs[w[0]] : NULL;
	if (!req || req->zero || blk < req->lblk ||
	    blk >= req->lblk + req->nblks) {
		fprintf(stderr, "block %llu holds id %u, not written there\n",
			(unsigned long long)blk, w[0]);
		return false;
	}
	return true;
}

static void race_run_threads(struct race *race, uint64_t seed)
{
	struct race_thread t[RACE_WRITERS + RACE_READERS];
	unsigned int i;

	for (i = 0; i < RACE_WRITERS + RACE_READERS; i++) {
		bool writer = i < RACE_WRITERS;

		t[i].race = race;
		t[i].seed = seed + i;
		t[i].index = writer ? i : i - RACE_WRITERS;
		CU_ASSERT_FATAL(pthread_create(&t[i].tid, NULL, writer ?
					       race_writer : race_reader,
					       &t[i]) == 0);
	}
	for (i = 0; i < RACE_WRITERS + RACE_READERS; i++)
		pthread_join(t[i].tid, NULL);
}

static void test_threads(void)
{
	static const struct geometry g = { 4 * MiB, 0, 4096, 0 };
	struct race race = { .ops = model_ops(2000) };
	uint32_t *before, *after;
	struct scratch s;
	uint64_t blk, region;

	CU_ASSERT_FATAL(scratch_create(&s, &g, NULL));
	race.vol = s.vol;
	race.bs = s.bs;
	race.deadline = time(NULL) + 10;
	atomic_init(&race.next_id, 1);
	atomic_init(&race.errors, 0);
	race.reqs = calloc(RACE_WRITERS * race.ops + 1, sizeof *race.reqs);
	region = RACE_BLKS * s.bs;
	before = malloc(region);
	after = malloc(region);
	CU_ASSERT_FATAL(race.reqs && before && after);
	race_run_threads(&race, (uint64_t)time(NULL));
	CU_ASSERT_EQUAL(atomic_load(&race.errors), 0);
	CU_ASSERT_EQUAL(volume_flush(s.vol), 0);
	CU_ASSERT_EQUAL(volume_pread(s.vol, before, region, 0), 0);
	for (blk = 0; blk < RACE_BLKS; blk++)
		CU_ASSERT(race_block_ok(&race, before, blk));
	CU_ASSERT_EQUAL(scratch_reopen(&s, 0), 0);
	CU_ASSERT_FATAL(s.vol != NULL);
	CU_ASSERT_EQUAL(volume_pread(s.vol, after, region, 0), 0);
	CU_ASSERT(same_bytes((uint8_t *)after, (uint8_t *)before, region, 0));
	fprintf(stderr, "%u requests\n", atomic_load(&race.next_id) - 1);
	scratch_destroy(&s);
	free(race.reqs);
	free(before);
	free(after);
}

/* ---- 7. Bad input ---- */

/*
 * Every I/O call on [@pos, +@len) must return @want (the read calls only
 * if @reads).  A @len past the buffer must be refused before any copy.
 */
static void expect_io(struct volume *vol, uint64_t len, uint64_t pos,
		      int want, bool reads)
{
	static uint8_t buf[4 * 4096];

	CU_ASSERT_EQUAL(volume_pwrite(vol, buf, len, pos, 0), want);
	CU_ASSERT_EQUAL(volume_zero(vol, len, pos, 0), want);
	CU_ASSERT_EQUAL(volume_zero(vol, len, pos, VOLUME_MAY_TRIM), want);
	CU_ASSERT_EQUAL(volume_trim(vol, len, pos, 0), want);
	if (!reads)
		return;
	CU_ASSERT_EQUAL(volume_pread(vol, buf, len, pos), want);
	CU_ASSERT_EQUAL(volume_cache(vol, len, pos), want);
	CU_ASSERT_EQUAL(volume_extents(vol, len, pos, race_no_op, NULL), want);
}

static void test_bad_input(void)
{
	static const struct geometry g = { 1 * MiB, 0, 4096, 0 };
	static const struct {
		uint64_t len, pos;
	} bad[] = {
		{ 0, 0 },
		{ 0, 4096 },
		{ 1, 1 * MiB },
		{ 2, 1 * MiB - 1 },
		{ 4096, 1 * MiB - 4095 },
		{ 1, UINT64_MAX },
		{ 8, UINT64_MAX - 3 },
		{ UINT64_MAX, 1 },
	};
	uint8_t buf[100];
	struct scratch s;
	size_t i;

	CU_ASSERT_FATAL(scratch_create(&s, &g, NULL));
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_io(s.vol, bad[i].len, bad[i].pos, -EINVAL, true);
	/* Still working, up to the last byte. */
	CU_ASSERT(pattern_matches(s.vol, 0, s.size, 0));
	CU_ASSERT_EQUAL(write_pattern(s.vol, buf, s.size - 100, 100, 5), 0);
	CU_ASSERT(pattern_matches(s.vol, s.size - 100, 100, 5));
	expect_io(s.vol, 4096, 4096, 0, true);
	CU_ASSERT_EQUAL(volume_flush(s.vol), 0);

	/* A read-only open reads, and refuses changes with EROFS. */
	CU_ASSERT_EQUAL_FATAL(scratch_reopen(&s, VOLUME_RDONLY), 0);
	expect_io(s.vol, 4096, 0, -EROFS, false);
	CU_ASSERT_EQUAL(volume_pwrite(s.vol, buf, 1, s.size - 1, VOLUME_FUA),
			-EROFS);
	CU_ASSERT(pattern_matches(s.vol, s.size - 100, 100, 5));
	CU_ASSERT(pattern_matches(s.vol, 0, s.size - 100, 0));
	scratch_destroy(&s);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "bad input", test_bad_input },
		{ "write into a hole", test_write_into_hole },
		{ "write into mapped", test_write_into_mapped },
		{ "zero and trim transitions", test_zero_trim_transitions },
		{ "alignment sweep, 4096", test_alignment_4096 },
		{ "alignment sweep, 512", test_alignment_512 },
		{ "random mix", test_random_mix },
		{ "ENOSPC", test_enospc },
		{ "ENOSPC: zero into trimmed space", test_enospc_zero },
		{ "cache limit", test_cache_limit },
		{ "threads", test_threads },
		{ NULL, NULL },
	};

	return unit_run("volume io", tests);
}
