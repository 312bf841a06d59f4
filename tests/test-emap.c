/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The extent map against a plain array model (one state and physical
 * block per logical block): random set, remove and convert operations,
 * checked by lookups and by walking the map, which must hold exactly the
 * maximal runs of the model (every mergeable pair merged).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/emap.h"
#include "thinmap/iomap.h"
#include "model.h"

#define NBLOCKS 2048

struct model {
	enum extent_state state[NBLOCKS];
	uint64_t pblk[NBLOCKS];
};

static bool allocated(enum extent_state state)
{
	return state == EXT_MAPPED || state == EXT_UNWRITTEN;
}

static void model_set(struct model *m, const struct extent *ext)
{
	uint64_t i;

	for (i = 0; i < ext->len; i++) {
		m->state[ext->lblk + i] = ext->state;
		m->pblk[ext->lblk + i] = allocated(ext->state) ? ext->pblk + i
							      : PBLK_NULL;
	}
}

/* Does block @lblk of the model hold what @ext says it holds? */
static bool model_has(const struct model *m, const struct extent *ext,
		      uint64_t lblk)
{
	uint64_t want = allocated(ext->state) ? ext->pblk + (lblk - ext->lblk)
					      : PBLK_NULL;

	return lblk < NBLOCKS && m->state[lblk] == ext->state &&
	       m->pblk[lblk] == want;
}

static int check_lookup(const struct emap *map, const struct model *m,
			uint64_t lblk)
{
	struct extent ext;
	uint64_t i;

	emap_lookup(map, lblk, &ext);
	if (ext.state == EXT_HOLE) {
		for (i = lblk; i < NBLOCKS && m->state[i] == EXT_HOLE; i++)
			;
		if (ext.lblk == lblk &&
		    ext.len == (i < NBLOCKS ? i - lblk : UINT64_MAX - lblk))
			return 0;
	} else if (ext.lblk <= lblk && lblk < extent_end(&ext) &&
		   model_has(m, &ext, lblk)) {
		return 0;
	}
	fprintf(stderr, "lookup(%llu): %s %llu+%llu\n",
		(unsigned long long)lblk, extent_state_name(ext.state),
		(unsigned long long)ext.lblk, (unsigned long long)ext.len);
	return -1;
}

struct walk {
	const struct model *m;
	struct extent prev;
	uint64_t next;		/* first block not yet accounted for */
	size_t count;
};

/* Each extent matches the model, holes between, and none could merge. */
static int walk_one(void *arg, const struct extent *ext)
{
	struct walk *w = arg;
	uint64_t i;

	for (i = w->next; i < ext->lblk; i++)
		if (w->m->state[i] != EXT_HOLE)
			return -1;
	for (i = ext->lblk; i < extent_end(ext); i++)
		if (!model_has(w->m, ext, i))
			return -1;
	if (w->count > 0 && extent_can_merge(&w->prev, ext))
		return -1;
	w->prev = *ext;
	w->next = extent_end(ext);
	w->count++;
	return 0;
}

static int check_all(const struct emap *map, const struct model *m)
{
	struct walk w = { .m = m };
	uint64_t i;

	if (emap_iterate(map, 0, UINT64_MAX, walk_one, &w) != 0)
		goto bad;
	for (i = w.next; i < NBLOCKS; i++)
		if (m->state[i] != EXT_HOLE)
			goto bad;
	if (w.count == emap_count(map))
		return 0;
bad:
	fprintf(stderr, "walk differs from the model after %zu extents\n",
		w.count);
	return -1;
}

/*
 * A physical start for an extent at @lblk: often right after the left
 * neighbour's blocks so that merges happen, else anywhere in two AGs.
 */
static uint64_t pick_pblk(const struct model *m, struct rng *r, uint64_t lblk)
{
	if (lblk > 0 && m->pblk[lblk - 1] != PBLK_NULL && rng_below(r, 2))
		return m->pblk[lblk - 1] + 1;
	return PBLK(rng_below(r, 2), rng_below(r, 1 << 12));
}

/*
 * Half the time, make @ext the whole extent at its first block (if any),
 * as writeback's changes are: emap_replace() and emap_convert() then
 * change a record in place.
 */
static void maybe_whole(const struct emap *map, struct rng *r,
			struct extent *ext)
{
	struct extent found;

	emap_lookup(map, ext->lblk, &found);
	if (found.state != EXT_HOLE && rng_below(r, 2)) {
		ext->lblk = found.lblk;
		ext->len = found.len;
	}
}

static int random_op(struct emap *map, struct model *m, struct rng *r)
{
	static const enum extent_state states[] = {
		EXT_DELALLOC, EXT_UNWRITTEN, EXT_MAPPED
	};
	struct extent ext;
	unsigned int dice = (unsigned int)rng_below(r, 100);
	int err;

	ext.lblk = rng_below(r, NBLOCKS);
	ext.len = 1 + rng_below(r, dice < 5 ? NBLOCKS - ext.lblk
					    : (NBLOCKS - ext.lblk < 48 ?
					       NBLOCKS - ext.lblk : 48));
	if (dice < 55) {
		maybe_whole(map, r, &ext);
		ext.state = states[rng_below(r, 3)];
		ext.pblk = allocated(ext.state) ? pick_pblk(m, r, ext.lblk)
						: PBLK_NULL;
		err = dice % 2 ? emap_replace(map, &ext) : emap_set(map, &ext);
		model_set(m, &ext);
	} else if (dice < 65) {
		/* A delalloc reservation: exclusive lookup, insert into it. */
		struct extent hole;

		emap_lookup_excl(map, ext.lblk, &hole);
		if (hole.state != EXT_HOLE)
			return 0;
		ext.len = hole.len < ext.len ? hole.len : ext.len;
		ext.state = EXT_DELALLOC;
		ext.pblk = PBLK_NULL;
		err = emap_insert(map, &ext);
		model_set(m, &ext);
	} else if (dice < 75) {
		err = emap_remove(map, ext.lblk, ext.len);
		ext.state = EXT_HOLE;
		model_set(m, &ext);
	} else if (dice < 90) {
		enum extent_state from = dice < 85 ? EXT_UNWRITTEN : EXT_MAPPED;
		enum extent_state to = from == EXT_MAPPED ? EXT_UNWRITTEN
							  : EXT_MAPPED;
		uint64_t i;

		maybe_whole(map, r, &ext);
		err = emap_convert(map, ext.lblk, ext.len, from, to);
		for (i = ext.lblk; i < extent_end(&ext); i++)
			if (m->state[i] == from)
				m->state[i] = to;
	} else {
		return check_lookup(map, m, ext.lblk);
	}
	return err;
}

static int model_emap(uint64_t seed)
{
	struct model *m = calloc(1, sizeof *m);
	unsigned long i, ops = model_ops(150000);
	struct rng r = { seed };
	struct emap map;
	int err = 0;

	emap_init(&map);
	for (i = 0; i < NBLOCKS; i++)
		m->pblk[i] = PBLK_NULL;
	for (i = 0; i < ops && !err; i++) {
		err = random_op(&map, m, &r);
		if (!err && i % 1024 == 0)
			err = check_all(&map, m);
	}
	if (!err)
		err = check_all(&map, m);
	emap_destroy(&map);
	free(m);
	return err;
}

static void test_model(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("emap", model_emap), 0);
}

/* Iteration clips extents to the range asked for. */
static void test_iterate_clip(void)
{
	struct extent ext = { 10, 20, PBLK(1, 100), EXT_MAPPED };
	struct walk w = { 0 };
	struct model *m = calloc(1, sizeof *m);
	struct emap map;

	emap_init(&map);
	CU_ASSERT_EQUAL(emap_set(&map, &ext), 0);
	CU_ASSERT_NOT_EQUAL(map.seq, 0);	/* changes bump seq */
	model_set(m, &ext);
	w.m = m;
	w.next = 15;
	CU_ASSERT_EQUAL(emap_iterate(&map, 15, 5, walk_one, &w), 0);
	CU_ASSERT_EQUAL(w.count, 1);
	CU_ASSERT_EQUAL(w.prev.lblk, 15);
	CU_ASSERT_EQUAL(w.prev.len, 5);
	CU_ASSERT_EQUAL(w.prev.pblk, PBLK(1, 105));
	emap_destroy(&map);
	free(m);
}

/* Extents in different AGs never merge, even at the AG boundary. */
static void test_no_merge_across_ags(void)
{
	struct extent a = { 0, 8, PBLK(0, AG_MAX_BLOCKS - 8), EXT_MAPPED };
	struct extent b = { 8, 8, PBLK(1, 0), EXT_MAPPED };
	struct emap map;

	emap_init(&map);
	CU_ASSERT_EQUAL(emap_set(&map, &a), 0);
	CU_ASSERT_EQUAL(emap_set(&map, &b), 0);
	CU_ASSERT_EQUAL(emap_count(&map), 2);
	emap_destroy(&map);
}

static void test_bad_extents(void)
{
	struct extent hole = { 0, 8, PBLK_NULL, EXT_HOLE };
	struct extent empty = { 0, 0, PBLK_NULL, EXT_DELALLOC };
	struct extent huge = { 0, EXTENT_MAX_LEN + 1ULL, PBLK_NULL,
			       EXT_DELALLOC };
	struct emap map;

	emap_init(&map);
	CU_ASSERT_EQUAL(emap_set(&map, &hole), -EINVAL);
	CU_ASSERT_EQUAL(emap_set(&map, &empty), -EINVAL);
	CU_ASSERT_EQUAL(emap_set(&map, &huge), -EINVAL);
	CU_ASSERT_EQUAL(emap_count(&map), 0);
	emap_destroy(&map);
}

/* A whole extent replaced or converted changes in place, or merges. */
static void test_replace(void)
{
	struct extent a = { 0, 4, 100, EXT_MAPPED };
	struct extent d = { 4, 2, PBLK_NULL, EXT_DELALLOC };
	struct extent b = { 10, 1, PBLK_NULL, EXT_DELALLOC };
	struct extent u = { 10, 1, 500, EXT_UNWRITTEN };
	struct extent m = { 4, 2, 104, EXT_MAPPED };
	struct extent part = { 1, 2, 900, EXT_UNWRITTEN };
	struct extent got;
	struct emap map;

	emap_init(&map);
	CU_ASSERT_EQUAL(emap_set(&map, &a), 0);
	CU_ASSERT_EQUAL(emap_set(&map, &d), 0);
	CU_ASSERT_EQUAL(emap_set(&map, &b), 0);
	CU_ASSERT_EQUAL(emap_replace(&map, &u), 0);	/* in place */
	emap_lookup(&map, 10, &got);
	CU_ASSERT(got.state == EXT_UNWRITTEN && got.pblk == 500 &&
		  got.len == 1);
	CU_ASSERT_EQUAL(emap_convert(&map, 10, 1, EXT_UNWRITTEN, EXT_MAPPED),
			0);
	emap_lookup(&map, 10, &got);
	CU_ASSERT(got.state == EXT_MAPPED && got.pblk == 500);
	CU_ASSERT_EQUAL(emap_replace(&map, &m), 0);	/* merges with a */
	emap_lookup(&map, 5, &got);
	CU_ASSERT(got.lblk == 0 && got.len == 6 && got.pblk == 100);
	CU_ASSERT_EQUAL(emap_count(&map), 2);
	CU_ASSERT_EQUAL(emap_replace(&map, &part), 0);	/* not whole: splits */
	emap_lookup(&map, 2, &got);
	CU_ASSERT(got.lblk == 1 && got.len == 2 && got.pblk == 900);
	emap_lookup(&map, 3, &got);
	CU_ASSERT(got.lblk == 3 && got.len == 3 && got.pblk == 103);
	CU_ASSERT_EQUAL(emap_count(&map), 4);
	emap_destroy(&map);
}

/* The iomap of an extent is in bytes, its address in its AG file. */
static void test_iomap(void)
{
	struct extent ext = { 3, 2, PBLK(5, 7), EXT_UNWRITTEN };
	struct extent hole = { 100, UINT64_MAX - 100, PBLK_NULL, EXT_HOLE };
	struct iomap iomap;

	iomap_from_extent(&ext, 12, &iomap);
	CU_ASSERT_EQUAL(iomap.offset, 3 << 12);
	CU_ASSERT_EQUAL(iomap.length, 2 << 12);
	CU_ASSERT_EQUAL(iomap.addr, 7 << 12);
	CU_ASSERT_EQUAL(iomap.ag, 5);
	CU_ASSERT_EQUAL(iomap.type, IOMAP_UNWRITTEN);
	iomap_from_extent(&hole, 12, &iomap);
	CU_ASSERT_EQUAL(iomap.type, IOMAP_HOLE);
	CU_ASSERT_EQUAL(iomap.addr, IOMAP_NULL_ADDR);
	CU_ASSERT(iomap.offset + iomap.length >= iomap.offset);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "bad extents", test_bad_extents },
		{ "iterate clips", test_iterate_clip },
		{ "no merge across AGs", test_no_merge_across_ags },
		{ "replace a whole extent", test_replace },
		{ "iomap from extent", test_iomap },
		{ "model", test_model },
		{ NULL, NULL },
	};

	return unit_run("emap", tests);
}
