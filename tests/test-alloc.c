/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The space allocator against a plain array model (one byte per block):
 * random allocations at random and neighbour hints, with and without
 * reservations, frees of whole and partial extents, reservations, and
 * double frees that must be refused without changing anything.  The
 * allocation policy is deterministic, so the model predicts every result
 * exactly.  Then building free space from used extents, ENOSPC, home
 * hints, and threads allocating in their own AGs at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/alloc.h"
#include "thinmap/error.h"
#include "model.h"

/* Allocated extents that the test may free later. */
struct piece {
	uint64_t pblk;
	uint32_t len;
};

struct pieces {
	struct piece *v;
	size_t n, cap;
};

static void pieces_add(struct pieces *p, uint64_t pblk, uint32_t len)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 64;
		p->v = realloc(p->v, p->cap * sizeof *p->v);
		if (!p->v)
			abort();
	}
	p->v[p->n].pblk = pblk;
	p->v[p->n++].len = len;
}

/* Cut [@off, @off + @len) out of piece @k, keeping what is left of it. */
static void pieces_cut(struct pieces *p, size_t k, uint32_t off, uint32_t len)
{
	struct piece old = p->v[k];
	uint32_t right = old.len - off - len;

	if (off)
		p->v[k].len = off;
	else
		p->v[k] = p->v[--p->n];
	if (right)
		pieces_add(p, old.pblk + off + len, right);
}

static uint64_t pieces_blocks(const struct pieces *p)
{
	uint64_t sum = 0;
	size_t k;

	for (k = 0; k < p->n; k++)
		sum += p->v[k].len;
	return sum;
}

static const char *errname(int err)
{
	return err ? strerror(-err) : "ok";
}

/* ---- The model: one byte per block, 1 when used ---- */

struct model {
	uint32_t ag_count, ag_blocks;
	unsigned char *used;	/* AG after AG */
	uint64_t free_blocks, reserved;
	struct pieces pieces;	/* what the test allocated */
};

/* The expected result of an allocation. */
struct expect {
	int err;
	uint64_t pblk;
	uint32_t got;
};

static const unsigned char *model_ag(const struct model *m, uint32_t agno)
{
	return m->used + (size_t)agno * m->ag_blocks;
}

static size_t model_index(const struct model *m, uint64_t pblk)
{
	return (size_t)PBLK_AG(pblk) * m->ag_blocks + PBLK_AGBNO(pblk);
}

static uint64_t model_total(const struct model *m)
{
	return (uint64_t)m->ag_count * m->ag_blocks;
}

static void model_mark(struct model *m, uint64_t pblk, uint32_t len,
		       unsigned char used)
{
	memset(m->used + model_index(m, pblk), used, len);
}

/* Is every block of [@pblk, @pblk + @len) in state @used? */
static bool model_all(const struct model *m, uint64_t pblk, uint32_t len,
		      unsigned char used)
{
	const unsigned char *p = m->used + model_index(m, pblk);

	return memchr(p, !used, len) == NULL;
}

/* The first free run of AG @agno at or after @from.  False if none. */
static bool model_next_run(const struct model *m, uint32_t agno,
			   uint32_t from, uint32_t *start, uint32_t *len)
{
	const unsigned char *ag = model_ag(m, agno), *p, *q;

	if (from >= m->ag_blocks)
		return false;
	p = memchr(ag + from, 0, m->ag_blocks - from);
	if (!p)
		return false;
	q = memchr(p, 1, (size_t)(ag + m->ag_blocks - p));
	*start = (uint32_t)(p - ag);
	*len = (uint32_t)((q ? q : ag + m->ag_blocks) - p);
	return true;
}

/* The smallest free run of @agno of at least @len, the first among equals. */
static bool model_best(const struct model *m, uint32_t agno, uint32_t len,
		       uint32_t *best_start, uint32_t *best_len)
{
	uint32_t start, n, from = 0;

	*best_len = 0;
	while (model_next_run(m, agno, from, &start, &n)) {
		if (n >= len && (*best_len == 0 || n < *best_len)) {
			*best_start = start;
			*best_len = n;
		}
		from = start + n;
	}
	return *best_len > 0;
}

/* alloc.c's NEAR_SCAN: free extents looked at on each side of a hint. */
#define NEAR_SCAN 64

/*
 * Consider the free run [@start, + @n) for @len blocks near @hint: keep it
 * in *@at and *@dist if it is nearer than the best so far.
 */
static void model_consider(uint32_t start, uint32_t n, uint32_t hint,
			   uint32_t len, uint32_t *at, uint32_t *dist)
{
	uint32_t place, d;

	if (n < len)
		return;
	place = hint < start ? start : hint > start + n - len
					       ? start + n - len : hint;
	d = place > hint ? place - hint : hint - place;
	if (d < *dist) {
		*dist = d;
		*at = place;
	}
}

/*
 * The place for @len blocks nearest to @hint in AG @agno, among the
 * NEAR_SCAN free runs on each side of it (the run holding or before the
 * hint first, then the one after, and so on outwards), the first seen
 * among equals.  False if none holds @len.
 */
static bool model_near(const struct model *m, uint32_t agno, uint32_t hint,
		       uint32_t len, uint32_t *at)
{
	uint32_t *starts = calloc(m->ag_blocks / 2 + 1, sizeof *starts);
	uint32_t *lens = calloc(m->ag_blocks / 2 + 1, sizeof *lens);
	uint32_t from = 0, nr = 0, dist = UINT32_MAX, i;
	int64_t left = -1;

	CU_ASSERT_FATAL(starts && lens);
	while (model_next_run(m, agno, from, &starts[nr], &lens[nr])) {
		from = starts[nr] + lens[nr];
		if (starts[nr] <= hint)
			left = nr;
		nr++;
	}
	for (i = 0; i < NEAR_SCAN; i++) {
		if (left - (int64_t)i >= 0)
			model_consider(starts[left - i], lens[left - i], hint,
				       len, at, &dist);
		if (left + 1 + i < nr)
			model_consider(starts[left + 1 + i],
				       lens[left + 1 + i], hint, len, at,
				       &dist);
	}
	free(starts);
	free(lens);
	return dist != UINT32_MAX;
}

/* The longest free run of all AGs, the first in order from @agno. */
static uint32_t model_longest(const struct model *m, uint32_t agno,
			      uint64_t *pblk)
{
	uint32_t i, ag, from, start, len, longest = 0;

	for (i = 0; i < m->ag_count; i++) {
		ag = (agno + i) % m->ag_count;
		for (from = 0; model_next_run(m, ag, from, &start, &len);
		     from = start + len) {
			if (len > longest) {
				longest = len;
				*pblk = PBLK(ag, start);
			}
		}
	}
	return longest;
}

/*
 * Expect the allocation of @len blocks at @hint, by alloc.h's policy:
 * as near the hint as can be, best fit in the hint's AG then in the
 * others, the longest.
 */
static void model_expect(const struct model *m, uint64_t hint, uint32_t len,
			 struct expect *e)
{
	uint32_t agno = 0, ag, i, start, n;

	e->err = 0;
	e->got = len;
	if (hint != PBLK_NULL && PBLK_AG(hint) < m->ag_count) {
		agno = PBLK_AG(hint);
		if (model_near(m, agno, PBLK_AGBNO(hint), len, &start)) {
			e->pblk = PBLK(agno, start);
			return;
		}
	}
	for (i = 0; i < m->ag_count; i++) {
		ag = (agno + i) % m->ag_count;
		if (model_best(m, ag, len, &start, &n)) {
			e->pblk = PBLK(ag, start);
			return;
		}
	}
	e->got = model_longest(m, agno, &e->pblk);
	e->err = e->got ? 0 : -ENOSPC;
}

static int check_counters(const struct alloc *a, const struct model *m)
{
	if (a->free_blocks == m->free_blocks && a->reserved == m->reserved)
		return 0;
	fprintf(stderr, "counters: free %llu reserved %llu, model %llu %llu\n",
		(unsigned long long)a->free_blocks,
		(unsigned long long)a->reserved,
		(unsigned long long)m->free_blocks,
		(unsigned long long)m->reserved);
	return -1;
}

/*
 * Compare the whole state: the counters, and the number and longest of
 * the maximal free runs of the model with alloc_stat().  Equal counts of
 * extents and of free blocks mean the allocator's extents are maximal too.
 */
static int check_full(struct alloc *a, const struct model *m)
{
	uint64_t extents = 0, longest = 0, blocks = 0;
	struct alloc_stat st;
	uint32_t agno, from, start, len;

	for (agno = 0; agno < m->ag_count; agno++) {
		for (from = 0; model_next_run(m, agno, from, &start, &len);
		     from = start + len) {
			extents++;
			blocks += len;
			if (len > longest)
				longest = len;
		}
	}
	alloc_stat(a, &st);
	if (blocks == m->free_blocks && st.free_blocks == m->free_blocks &&
	    st.reserved == m->reserved && st.free_extents == extents &&
	    st.longest == longest)
		return 0;
	fprintf(stderr,
		"stat: free %llu reserved %llu extents %llu longest %llu; "
		"model: %llu (%llu in runs) %llu %llu %llu\n",
		(unsigned long long)st.free_blocks,
		(unsigned long long)st.reserved,
		(unsigned long long)st.free_extents,
		(unsigned long long)st.longest,
		(unsigned long long)m->free_blocks,
		(unsigned long long)blocks, (unsigned long long)m->reserved,
		(unsigned long long)extents, (unsigned long long)longest);
	return -1;
}

static int model_init(struct model *m, struct alloc *a, uint32_t ag_count,
		      uint32_t ag_blocks)
{
	memset(m, 0, sizeof *m);
	m->ag_count = ag_count;
	m->ag_blocks = ag_blocks;
	m->used = calloc(model_total(m), 1);
	m->free_blocks = model_total(m);
	if (!m->used)
		abort();
	return alloc_init(a, ag_count, ag_blocks, NULL, 0);
}

static void model_destroy(struct model *m)
{
	free(m->used);
	free(m->pieces.v);
}

/* ---- Operations, each checked against the model ---- */

/*
 * Allocate @len at @hint and compare with the model's prediction.  Without
 * @from_resv an allocation is limited to the unreserved free blocks.
 */
static int do_alloc(struct alloc *a, struct model *m, uint64_t hint,
		    uint32_t len, bool from_resv)
{
	uint64_t avail = m->free_blocks - m->reserved, pblk = 0;
	uint32_t want = len, got = 0;
	struct expect e = { -ENOSPC, 0, 0 };
	int err;

	if (!from_resv && want > avail)
		want = (uint32_t)avail;
	if (want > 0)
		model_expect(m, hint, want, &e);
	err = alloc_extent(a, hint, len, from_resv, &pblk, &got);
	if (err != e.err || (!err && (pblk != e.pblk || got != e.got))) {
		fprintf(stderr,
			"alloc_extent(hint %#llx, len %u, resv %d): %s pblk "
			"%#llx got %u; model: %s pblk %#llx got %u\n",
			(unsigned long long)hint, len, from_resv, errname(err),
			(unsigned long long)pblk, got, errname(e.err),
			(unsigned long long)e.pblk, e.got);
		return -1;
	}
	if (err)
		return 0;
	if (got == 0 || got > len || PBLK_AG(pblk) >= m->ag_count ||
	    PBLK_AGBNO(pblk) + (uint64_t)got > m->ag_blocks ||
	    !model_all(m, pblk, got, 0)) {
		fprintf(stderr, "alloc_extent: bad extent %#llx+%u\n",
			(unsigned long long)pblk, got);
		return -1;
	}
	model_mark(m, pblk, got, 1);
	m->free_blocks -= got;
	if (from_resv)
		m->reserved -= got;
	pieces_add(&m->pieces, pblk, got);
	return check_counters(a, m);
}

/* Free piece @k, or a random part of it. */
static int do_free(struct alloc *a, struct model *m, struct rng *r, size_t k,
		   bool whole)
{
	struct piece p = m->pieces.v[k];
	uint32_t off = 0, len = p.len;
	int err;

	if (!whole && rng_below(r, 2)) {
		off = (uint32_t)rng_below(r, p.len);
		len = 1 + (uint32_t)rng_below(r, p.len - off);
	}
	err = alloc_free(a, p.pblk + off, len);
	if (err) {
		fprintf(stderr, "alloc_free(%#llx, %u): %s: %s\n",
			(unsigned long long)(p.pblk + off), len, errname(err),
			tm_get_error());
		return -1;
	}
	model_mark(m, p.pblk + off, len, 0);
	m->free_blocks += len;
	pieces_cut(&m->pieces, k, off, len);
	return check_counters(a, m);
}

/* Freeing [@pblk, @pblk + @len) must fail, with a message, changing nothing. */
static int expect_refused(struct alloc *a, const struct model *m,
			  uint64_t pblk, uint32_t len)
{
	struct alloc_stat before, after;
	int err;

	alloc_stat(a, &before);
	tm_set_error("%s", "");
	err = alloc_free(a, pblk, len);
	alloc_stat(a, &after);
	if (err != -EFSCORRUPTED || !*tm_get_error() ||
	    memcmp(&before, &after, sizeof before) != 0) {
		fprintf(stderr, "alloc_free(%#llx, %u) of free space: %s\n",
			(unsigned long long)pblk, len, errname(err));
		return -1;
	}
	return check_counters(a, m);
}

/* A random free block of the model.  False if there is none. */
static bool model_random_free(const struct model *m, struct rng *r,
			      uint64_t *pblk)
{
	uint64_t total = model_total(m), b = 0;
	const unsigned char *p;
	int i;

	if (m->free_blocks == 0)
		return false;
	for (i = 0; i < 16; i++) {
		b = rng_below(r, total);
		if (!m->used[b])
			break;
	}
	if (m->used[b]) {
		p = memchr(m->used + b, 0, total - b);
		if (!p)
			p = memchr(m->used, 0, total);
		b = (uint64_t)(p - m->used);
	}
	*pblk = PBLK(b / m->ag_blocks, b % m->ag_blocks);
	return true;
}

/* Free a range that overlaps free space, or lies outside the AGs. */
static int do_bad_free(struct alloc *a, struct model *m, struct rng *r)
{
	uint32_t agno, agbno, back, len;
	uint64_t pblk;

	switch (rng_below(r, 4)) {
	case 0:		/* an AG that does not exist */
		return expect_refused(a, m,
				      PBLK(m->ag_count + rng_below(r, 2),
					   rng_below(r, m->ag_blocks)),
				      1 + (uint32_t)rng_below(r, 8));
	case 1:		/* across the end of an AG */
		agno = (uint32_t)rng_below(r, m->ag_count);
		back = (uint32_t)rng_below(r, 4);
		return expect_refused(a, m,
				      PBLK(agno, m->ag_blocks - 1 - back),
				      back + 2 + (uint32_t)rng_below(r, 4));
	default:	/* a double free: part of the range is free */
		if (!model_random_free(m, r, &pblk))
			return 0;
		agno = PBLK_AG(pblk);
		agbno = PBLK_AGBNO(pblk);
		back = (uint32_t)rng_below(r, (agbno < 8 ? agbno : 8) + 1);
		len = back + 1 + (uint32_t)rng_below(r, 8);
		if (len > m->ag_blocks - (agbno - back))
			len = m->ag_blocks - (agbno - back);
		return expect_refused(a, m, PBLK(agno, agbno - back), len);
	}
}

static int do_reserve(struct alloc *a, struct model *m, uint64_t nblks)
{
	int want = m->free_blocks - m->reserved >= nblks ? 0 : -ENOSPC;
	int err = alloc_reserve(a, nblks);

	if (err != want) {
		fprintf(stderr, "alloc_reserve(%llu): %s, model %s\n",
			(unsigned long long)nblks, errname(err),
			errname(want));
		return -1;
	}
	if (!err)
		m->reserved += nblks;
	return check_counters(a, m);
}

static int do_unreserve(struct alloc *a, struct model *m, uint64_t nblks)
{
	alloc_unreserve(a, nblks);
	m->reserved -= nblks;
	return check_counters(a, m);
}

/* Mostly short extents, sometimes longer than an AG. */
static uint32_t random_len(const struct model *m, struct rng *r)
{
	uint64_t dice = rng_below(r, 100), max;

	if (dice < 50)
		max = 8;
	else if (dice < 80)
		max = 64;
	else if (dice < 95)
		max = 512;
	else
		max = 2 * (uint64_t)m->ag_blocks;
	return 1 + (uint32_t)rng_below(r, max);
}

/* No hint, a random block, a free block, or the end of an allocation. */
static uint64_t random_hint(const struct model *m, struct rng *r)
{
	uint64_t pblk;
	struct piece *p;

	switch (rng_below(r, 8)) {
	case 0:
		return PBLK_NULL;
	case 1:		/* an AG that does not exist */
		return PBLK(m->ag_count + rng_below(r, 2), 0);
	case 2:
	case 3:		/* after a neighbour: perhaps the end of an AG */
		if (m->pieces.n == 0)
			return PBLK_NULL;
		p = &m->pieces.v[rng_below(r, m->pieces.n)];
		return p->pblk + p->len;
	case 4:
	case 5:
		if (model_random_free(m, r, &pblk))
			return pblk;
		/* fall through */
	default:
		return PBLK(rng_below(r, m->ag_count),
			    rng_below(r, m->ag_blocks));
	}
}

/* Allocate, half the time from a reservation taken just before. */
static int random_alloc(struct alloc *a, struct model *m, struct rng *r)
{
	uint32_t len = random_len(m, r);
	uint64_t hint = random_hint(m, r);
	int err;

	if (rng_below(r, 2) == 0)
		return do_alloc(a, m, hint, len, false);
	if (m->reserved < len) {
		err = do_reserve(a, m, len - m->reserved);
		if (err)
			return err;
		if (m->reserved == 0)
			return 0;
		if (len > m->reserved)
			len = (uint32_t)m->reserved;
	}
	return do_alloc(a, m, hint, len, true);
}

static int random_op(struct alloc *a, struct model *m, struct rng *r)
{
	uint64_t used = model_total(m) - m->free_blocks;
	unsigned int dice = (unsigned int)rng_below(r, 100);
	unsigned int alloc_pct = used * 4 < model_total(m) * 3 ? 50 : 35;

	if (dice < 4)
		return do_bad_free(a, m, r);
	if (dice < 10)
		return do_reserve(a, m,
				  rng_below(r, 8) ? 1 + rng_below(r, 64)
						  : rng_below(r, used + 1));
	if (dice < 16)
		return do_unreserve(a, m, rng_below(r, m->reserved + 1));
	if (dice < 16 + alloc_pct || m->pieces.n == 0)
		return random_alloc(a, m, r);
	return do_free(a, m, r, rng_below(r, m->pieces.n), false);
}

/*
 * Allocate everything that is left, each allocation as the model
 * predicts, then free everything: each AG must be one free extent again.
 */
static int drain_and_refill(struct alloc *a, struct model *m, struct rng *r)
{
	struct alloc_stat st;
	uint64_t i, total = model_total(m);
	int err;

	err = do_unreserve(a, m, m->reserved);
	for (i = 0; !err && m->free_blocks > 0 && i <= total; i++)
		err = do_alloc(a, m, random_hint(m, r), random_len(m, r),
			       false);
	if (!err)
		err = do_alloc(a, m, random_hint(m, r), 1, false); /* ENOSPC */
	if (!err)
		err = check_full(a, m);
	while (!err && m->pieces.n > 0)
		err = do_free(a, m, r, rng_below(r, m->pieces.n), true);
	if (err)
		return err;
	alloc_stat(a, &st);
	if (st.free_extents != m->ag_count || st.longest != m->ag_blocks) {
		fprintf(stderr, "refilled: %llu extents, longest %llu\n",
			(unsigned long long)st.free_extents,
			(unsigned long long)st.longest);
		return -1;
	}
	return check_full(a, m);
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define __SANITIZE_THREAD__ 1
#endif
#endif

/*
 * Operations per seed.  The model tests run in one thread, so ThreadSanitizer
 * has nothing to find in them and only slows their memchr() scans down
 * (by 15x): under it they run the quick count.
 */
static unsigned long run_model_ops(void)
{
#ifdef __SANITIZE_THREAD__
	return model_ops(100000) / 20;
#else
	return model_ops(100000);
#endif
}

static int run_model(uint64_t seed, uint32_t ag_count, uint32_t ag_blocks)
{
	unsigned long i, ops = run_model_ops();
	struct rng r = { seed };
	struct model m;
	struct alloc a;
	int err;

	err = model_init(&m, &a, ag_count, ag_blocks);
	if (err) {
		model_destroy(&m);
		return err;
	}
	for (i = 0; i < ops && !err; i++) {
		err = random_op(&a, &m, &r);
		if (!err && i % 1000 == 999)
			err = check_full(&a, &m);
	}
	if (err)
		fprintf(stderr,
			"model: %u AGs of %u blocks, failed at op %lu\n",
			ag_count, ag_blocks, i - 1);
	else
		err = check_full(&a, &m);
	if (!err)
		err = drain_and_refill(&a, &m, &r);
	alloc_destroy(&a);
	model_destroy(&m);
	return err;
}

static int model_4x4096(uint64_t seed)
{
	return run_model(seed, 4, 4096);
}

static int model_3x1000(uint64_t seed)
{
	return run_model(seed, 3, 1000);
}

static int model_1x97(uint64_t seed)
{
	return run_model(seed, 1, 97);
}

static void test_model_4x4096(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("alloc 4x4096", model_4x4096), 0);
}

static void test_model_3x1000(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("alloc 3x1000", model_3x1000), 0);
}

static void test_model_1x97(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("alloc 1x97", model_1x97), 0);
}

/* ---- Policy, by example ---- */

/*
 * One AG of 100 blocks, free:  10..14  30..32  50..54  70..89
 * (lengths 5, 3, 5, 20).
 */
static void test_policy(void)
{
	static const struct extent used[] = {
		{ .pblk = PBLK(0, 0), .len = 10 },
		{ .pblk = PBLK(0, 15), .len = 15 },
		{ .pblk = PBLK(0, 33), .len = 17 },
		{ .pblk = PBLK(0, 55), .len = 15 },
		{ .pblk = PBLK(0, 90), .len = 10 },
	};
	struct alloc a;
	uint64_t pblk;
	uint32_t got;

	CU_ASSERT_EQUAL_FATAL(alloc_init(&a, 1, 100, used, 5), 0);
	/* At the hint when the free extent there holds all of it. */
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(0, 75), 10, false, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(0, 75) && got == 10);
	/* Else as near it as can be: in 70..74, which holds the hint... */
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(0, 72), 4, false, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(0, 71) && got == 4);
	CU_ASSERT_EQUAL(alloc_free(&a, PBLK(0, 71), 4), 0);
	/* ...or in 85..89, 5 blocks after the hint, not 9 before. */
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(0, 80), 4, false, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(0, 85) && got == 4);
	CU_ASSERT_EQUAL(alloc_free(&a, PBLK(0, 85), 4), 0);
	/* Without a hint, the smallest that fits, the lowest among equals. */
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK_NULL, 4, false, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(0, 10) && got == 4);
	/* Left: 14, 30..32, 50..54, 70..74, 85..89.  No 6: the longest. */
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK_NULL, 6, false, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(0, 50) && got == 5);
	/* Freeing 50..54 merges with nothing; 55..69 with both sides. */
	CU_ASSERT_EQUAL(alloc_free(&a, PBLK(0, 50), 5), 0);
	CU_ASSERT_EQUAL(alloc_free(&a, PBLK(0, 55), 15), 0);
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(0, 3), 25, false, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(0, 50) && got == 25);
	alloc_destroy(&a);
}

/* ---- Building free space from used extents ---- */

/* Random used extents: some touch, some at either end of an AG. */
static struct extent *random_used(struct model *m, struct rng *r,
				  size_t *n)
{
	struct extent *used = calloc(model_total(m), sizeof *used);
	uint32_t agno, pos, len;

	*n = 0;
	for (agno = 0; used && agno < m->ag_count; agno++) {
		pos = (uint32_t)rng_below(r, 3) * (uint32_t)rng_below(r, 20);
		while (pos < m->ag_blocks) {
			len = 1 + (uint32_t)rng_below(r, 30);
			if (len > m->ag_blocks - pos || rng_below(r, 50) == 0)
				len = m->ag_blocks - pos;
			used[*n].lblk = *n * 1000;
			used[*n].pblk = PBLK(agno, pos);
			used[(*n)++].len = len;
			model_mark(m, PBLK(agno, pos), len, 1);
			m->free_blocks -= len;
			pos += len + (uint32_t)rng_below(r, 3) *
					     (uint32_t)rng_below(r, 20);
		}
	}
	return used;
}

/* Each free run of the model, allocated at its start, must be all free. */
static int take_complement(struct alloc *a, struct model *m)
{
	uint32_t agno, from, start, len, got;
	uint64_t pblk;
	int err;

	for (agno = 0; agno < m->ag_count; agno++) {
		for (from = 0; model_next_run(m, agno, from, &start, &len);
		     from = start + len) {
			err = alloc_extent(a, PBLK(agno, start), len, false,
					   &pblk, &got);
			if (err || pblk != PBLK(agno, start) || got != len) {
				fprintf(stderr, "complement: %u:%u+%u\n", agno,
					start, len);
				return -1;
			}
		}
	}
	err = alloc_extent(a, PBLK_NULL, 1, false, &pblk, &got);
	return err == -ENOSPC ? 0 : -1;
}

/* Build an allocator from random used extents and check the complement. */
static int init_used_once(struct rng *r)
{
	struct extent *used;
	struct alloc a;
	struct model m;
	size_t n, k;
	int err;

	memset(&m, 0, sizeof m);
	m.ag_count = 1 + (uint32_t)rng_below(r, 4);
	m.ag_blocks = 1 + (uint32_t)rng_below(r, 3000);
	m.used = calloc(model_total(&m), 1);
	m.free_blocks = model_total(&m);
	used = random_used(&m, r, &n);
	if (!m.used || !used)
		abort();
	err = alloc_init(&a, m.ag_count, m.ag_blocks, used, n);
	if (!err) {
		err = check_full(&a, &m);
		if (!err)
			err = take_complement(&a, &m);
		for (k = 0; k < n && !err; k++)
			err = alloc_free(&a, used[k].pblk,
					 (uint32_t)used[k].len);
		/* Now exactly the used blocks are free. */
		if (!err && a.free_blocks != model_total(&m) - m.free_blocks)
			err = -1;
		alloc_destroy(&a);
	}
	if (err)
		fprintf(stderr,
			"init from %zu used extents, %u AGs of %u blocks: %s\n",
			n, m.ag_count, m.ag_blocks, tm_get_error());
	free(used);
	model_destroy(&m);
	return err;
}

static int init_used(uint64_t seed)
{
	struct rng r = { seed };
	unsigned long i;
	int err = 0;

	for (i = 0; i < model_ops(1000) && !err; i++)
		err = init_used_once(&r);
	return err;
}

static void test_init_used(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("alloc init", init_used), 0);
}

/* Used lists that must be refused, naming the extent at fault. */
static void test_init_refused(void)
{
	static const struct {
		struct extent used[2];
		const char *names;	/* in the message */
	} bad[] = {
		{ { { 0, 10, PBLK(0, 10), 0 }, { 1, 5, PBLK(0, 15), 0 } },
		  "pblk 15" },					/* overlap */
		{ { { 0, 5, PBLK(0, 50), 0 }, { 1, 5, PBLK(0, 10), 0 } },
		  "pblk 10" },					/* unsorted */
		{ { { 0, 5, PBLK(1, 0), 0 }, { 1, 5, PBLK(0, 10), 0 } },
		  "pblk 10" },			/* unsorted across AGs */
		{ { { 0, 5, PBLK(0, 0), 0 }, { 1, 10, PBLK(0, 95), 0 } },
		  "pblk 95" },				/* past the AG's end */
		{ { { 0, 5, PBLK(0, 0), 0 }, { 1, 1, PBLK(0, 100), 0 } },
		  "pblk 100" },				/* beyond the AG */
		{ { { 0, 5, PBLK(0, 0), 0 }, { 1, 1, PBLK(2, 0), 0 } },
		  "pblk 8589934592" },			/* no such AG */
		{ { { 0, 5, PBLK(0, 0), 0 }, { 1, 1, PBLK_NULL, 0 } },
		  "pblk 18446744073709551615" },
		{ { { 0, 5, PBLK(0, 0), 0 }, { 1, 0, PBLK(0, 20), 0 } },
		  "pblk 20" },					/* empty */
		{ { { 0, 5, PBLK(0, 0), 0 },
		    { 1, UINT64_C(1) << 40, PBLK(1, 20), 0 } },
		  "pblk 4294967316" },				/* huge */
	};
	struct alloc a;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tm_set_error("%s", "");
		CU_ASSERT_EQUAL(alloc_init(&a, 2, 100, bad[i].used, 2),
				-EFSCORRUPTED);
		CU_ASSERT_PTR_NOT_NULL(strstr(tm_get_error(), bad[i].names));
		CU_ASSERT_PTR_NULL(a.ags);
	}
	CU_ASSERT_EQUAL(alloc_init(&a, 0, 100, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(alloc_init(&a, 2, 0, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(alloc_init(&a, 2, AG_MAX_BLOCKS + 1, NULL, 0),
			-EINVAL);
}

/* The largest AG: one free extent of AG_MAX_BLOCKS, allocated whole. */
static void test_largest_ag(void)
{
	struct alloc_stat st;
	struct alloc a;
	uint64_t pblk;
	uint32_t got;

	CU_ASSERT_EQUAL_FATAL(alloc_init(&a, 2, AG_MAX_BLOCKS, NULL, 0), 0);
	alloc_stat(&a, &st);
	CU_ASSERT(st.free_blocks == 2 * (uint64_t)AG_MAX_BLOCKS &&
		  st.longest == AG_MAX_BLOCKS && st.free_extents == 2);
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(1, 0), AG_MAX_BLOCKS, false,
				     &pblk, &got), 0);
	CU_ASSERT(pblk == PBLK(1, 0) && got == AG_MAX_BLOCKS);
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(1, 0), 0, false, &pblk, &got),
			-EINVAL);
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(1, 0), AG_MAX_BLOCKS + 1, false,
				     &pblk, &got), -EINVAL);
	CU_ASSERT_EQUAL(alloc_free(&a, PBLK(1, 0), AG_MAX_BLOCKS), 0);
	CU_ASSERT_EQUAL(alloc_free(&a, PBLK(1, 1), AG_MAX_BLOCKS),
			-EFSCORRUPTED);
	alloc_stat(&a, &st);
	CU_ASSERT(st.free_blocks == 2 * (uint64_t)AG_MAX_BLOCKS &&
		  st.free_extents == 2);
	alloc_destroy(&a);
}

/* ---- ENOSPC ---- */

static void test_enospc(void)
{
	struct alloc_stat st;
	struct alloc a;
	uint64_t pblk, b;
	uint32_t got;

	CU_ASSERT_EQUAL_FATAL(alloc_init(&a, 2, 100, NULL, 0), 0);
	CU_ASSERT_EQUAL(alloc_reserve(&a, 150), 0);
	CU_ASSERT_EQUAL(alloc_reserve(&a, 51), -ENOSPC);
	CU_ASSERT_EQUAL(alloc_reserve(&a, 50), 0);
	CU_ASSERT_EQUAL(alloc_reserve(&a, 1), -ENOSPC);
	alloc_stat(&a, &st);
	CU_ASSERT(st.free_blocks == 200 && st.reserved == 200);
	/* Every free block is reserved: none for an unreserved caller. */
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK_NULL, 1, false, &pblk, &got),
			-ENOSPC);
	/* Reserved blocks come out longest first when nothing fits. */
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(1, 0), 150, true, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(1, 0) && got == 100);
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(1, 0), 100, true, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(0, 0) && got == 100);
	alloc_stat(&a, &st);
	CU_ASSERT(st.free_blocks == 0 && st.reserved == 0 &&
		  st.free_extents == 0 && st.longest == 0);
	CU_ASSERT_EQUAL(alloc_reserve(&a, 1), -ENOSPC);
	CU_ASSERT_EQUAL(alloc_reserve(&a, 0), 0);
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(0, 5), 1, false, &pblk, &got),
			-ENOSPC);
	/* Every other block of AG 0 free: any length gets one block. */
	for (b = 0; b < 100; b += 2)
		CU_ASSERT_EQUAL(alloc_free(&a, PBLK(0, b), 1), 0);
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(1, 0), 10, false, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(0, 0) && got == 1);
	/* 59 free, 55 reserved: an unreserved caller gets at most 4. */
	CU_ASSERT_EQUAL(alloc_free(&a, PBLK(1, 0), 10), 0);
	CU_ASSERT_EQUAL(alloc_reserve(&a, 55), 0);
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(1, 0), 10, false, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(1, 0) && got == 4);
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(1, 4), 1, false, &pblk, &got),
			-ENOSPC);
	/* A reserved caller gets the rest of AG 1's free extent. */
	CU_ASSERT_EQUAL(alloc_extent(&a, PBLK(1, 4), 10, true, &pblk, &got),
			0);
	CU_ASSERT(pblk == PBLK(1, 4) && got == 6);
	alloc_stat(&a, &st);
	CU_ASSERT(st.free_blocks == 49 && st.reserved == 49 &&
		  st.free_extents == 49 && st.longest == 1);
	alloc_destroy(&a);
}

/* ---- Home hints ---- */

static void test_home_hint(void)
{
	struct alloc a;

	CU_ASSERT_EQUAL_FATAL(alloc_init(&a, 4, 100, NULL, 0), 0);
	/* 1000 blocks: regions of 250, placed in proportion in 100. */
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 0, 1000), PBLK(0, 0));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 249, 1000), PBLK(0, 99));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 250, 1000), PBLK(1, 0));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 375, 1000), PBLK(1, 50));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 500, 1000), PBLK(2, 0));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 999, 1000), PBLK(3, 99));
	/* 10 blocks: regions of 3, the last one short. */
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 2, 10), PBLK(0, 66));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 3, 10), PBLK(1, 0));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 9, 10), PBLK(3, 0));
	/* 400 blocks, as many as the AGs hold: each block maps to itself. */
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 123, 400), PBLK(1, 23));
	/* Beyond the end, and fewer blocks than AGs: clamped. */
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 5000, 1000), PBLK(3, 0));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 2, 3), PBLK(2, 0));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 7, 3), PBLK(3, 0));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, 0, 0), PBLK(0, 0));
	CU_ASSERT_EQUAL(alloc_home_hint(&a, UINT64_MAX - 1, UINT64_MAX),
			PBLK(3, 99));
	alloc_destroy(&a);
}

/* ---- Threads in their own AGs ---- */

#define WORKERS 4

struct worker {
	struct alloc *a;
	uint64_t home;
	uint64_t seed;
	struct pieces pieces;
	unsigned long enospc;
	int err;
};

/* Allocate up to 64 blocks after the last allocation, or at home. */
static int worker_alloc(struct worker *w, struct rng *r)
{
	uint32_t len = 1 + (uint32_t)rng_below(r, 64), got = 0;
	bool from_resv = rng_below(r, 4) != 0;
	struct piece *last = w->pieces.n ? &w->pieces.v[w->pieces.n - 1]
					 : NULL;
	uint64_t hint = last ? last->pblk + last->len : w->home, pblk = 0;
	int err;

	if (from_resv && alloc_reserve(w->a, len) == -ENOSPC) {
		w->enospc++;
		return 0;
	}
	err = alloc_extent(w->a, hint, len, from_resv, &pblk, &got);
	if (from_resv && !err)
		alloc_unreserve(w->a, len - got);
	if (err == -ENOSPC && !from_resv) {
		w->enospc++;
		return 0;
	}
	if (err || got == 0 || got > len ||
	    PBLK_AGBNO(pblk) + (uint64_t)got > w->a->ag_blocks) {
		fprintf(stderr, "worker: alloc_extent(%u): %s %#llx+%u\n", len,
			errname(err), (unsigned long long)pblk, got);
		return -1;
	}
	pieces_add(&w->pieces, pblk, got);
	return 0;
}

static int worker_free(struct worker *w, struct rng *r)
{
	size_t k = rng_below(r, w->pieces.n);
	struct piece p = w->pieces.v[k];
	uint32_t off = (uint32_t)rng_below(r, p.len);
	uint32_t len = 1 + (uint32_t)rng_below(r, p.len - off);
	int err = alloc_free(w->a, p.pblk + off, len);

	if (err) {
		fprintf(stderr, "worker: alloc_free: %s\n", tm_get_error());
		return -1;
	}
	pieces_cut(&w->pieces, k, off, len);
	return 0;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct rng r = { w->seed };
	unsigned long i, iters = model_ops(40000);

	for (i = 0; i < iters && !w->err; i++) {
		if (w->pieces.n > 0 &&
		    (rng_below(&r, 100) < 45 || w->pieces.n > 150))
			w->err = worker_free(w, &r);
		else
			w->err = worker_alloc(w, &r);
	}
	return NULL;
}

static int pieces_free_all(struct alloc *a, struct pieces *p)
{
	int err = 0;

	for (; p->n > 0 && !err; p->n--)
		err = alloc_free(a, p->v[p->n - 1].pblk, p->v[p->n - 1].len);
	return err;
}

static int piece_cmp(const void *x, const void *y)
{
	const struct piece *a = x, *b = y;

	return a->pblk < b->pblk ? -1 : a->pblk > b->pblk;
}

/* No two workers hold the same block. */
static int check_disjoint(struct worker *w)
{
	struct pieces all = { 0 };
	size_t i, k;
	int err = 0;

	for (i = 0; i < WORKERS; i++)
		for (k = 0; k < w[i].pieces.n; k++)
			pieces_add(&all, w[i].pieces.v[k].pblk,
				   w[i].pieces.v[k].len);
	if (all.n > 1)
		qsort(all.v, all.n, sizeof *all.v, piece_cmp);
	for (k = 1; k < all.n; k++)
		if (all.v[k - 1].pblk + all.v[k - 1].len > all.v[k].pblk)
			err = -1;
	free(all.v);
	return err;
}

static void test_threads(void)
{
	const uint64_t nr_lblks = 1 << 20;
	struct worker w[WORKERS];
	pthread_t tid[WORKERS];
	struct alloc_stat st;
	uint64_t held = 0;
	struct alloc a;
	size_t i;

	CU_ASSERT_EQUAL_FATAL(alloc_init(&a, WORKERS, 4096, NULL, 0), 0);
	for (i = 0; i < WORKERS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].a = &a;
		w[i].home = alloc_home_hint(&a, i * (nr_lblks / WORKERS),
					    nr_lblks);
		w[i].seed = 1000 + i;
		CU_ASSERT_EQUAL(PBLK_AG(w[i].home), i);
		CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[i], NULL, worker_run,
						     &w[i]), 0);
	}
	for (i = 0; i < WORKERS; i++) {
		pthread_join(tid[i], NULL);
		CU_ASSERT_EQUAL(w[i].err, 0);
		held += pieces_blocks(&w[i].pieces);
	}
	alloc_stat(&a, &st);
	CU_ASSERT_EQUAL(st.free_blocks, WORKERS * 4096 - held);
	CU_ASSERT_EQUAL(st.reserved, 0);
	CU_ASSERT_EQUAL(check_disjoint(w), 0);
	for (i = 0; i < WORKERS; i++) {
		CU_ASSERT_EQUAL(pieces_free_all(&a, &w[i].pieces), 0);
		free(w[i].pieces.v);
	}
	alloc_stat(&a, &st);
	CU_ASSERT(st.free_blocks == WORKERS * 4096 && st.reserved == 0 &&
		  st.free_extents == WORKERS && st.longest == 4096);
	alloc_destroy(&a);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "policy by example", test_policy },
		{ "home hints", test_home_hint },
		{ "ENOSPC", test_enospc },
		{ "init refuses bad used lists", test_init_refused },
		{ "init from used extents", test_init_used },
		{ "largest AG", test_largest_ag },
		{ "model, 4 AGs of 4096", test_model_4x4096 },
		{ "model, 3 AGs of 1000", test_model_3x1000 },
		{ "model, 1 AG of 97", test_model_1x97 },
		{ "threads", test_threads },
		{ NULL, NULL },
	};

	return unit_run("alloc", tests);
}
