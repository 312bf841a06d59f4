/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The space allocator (alloc.h): free space of each allocation group in
 * two B+trees, as XFS keeps it in the bnobt and the cntbt.
 *
 *   bno: agbno -> len                  the free extent at or before a
 *                                      block: allocation at a hint, the
 *                                      neighbours of a freed extent
 *   cnt: len << 32 | agbno -> nothing  the first key >= len << 32 is the
 *                                      best fit: the smallest free extent
 *                                      of at least len blocks, the lowest
 *                                      agbno among equals
 *
 * Free extents are maximal: no two touch.  Only free_add(), free_del() and
 * free_resize() change the trees, and each changes both, so the two always
 * index the same extents.  A change that replaces extents inserts the new
 * records before it deletes the old ones: only an insert can fail
 * (-ENOMEM), so a failed allocation or free leaves the AG as it was.
 *
 * Accounting: every allocation consumes a reservation.  A caller that did
 * not reserve (!from_resv) gets a reservation taken for it first, of at
 * most the unreserved free space, so free_blocks >= reserved always holds
 * and every delalloc reservation can still be allocated.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/alloc.h"
#include "thinmap/btree.h"
#include "thinmap/error.h"

struct alloc_ag {
	pthread_mutex_t lock;	/* protects the trees and @free */
	struct btree bno;	/* agbno -> len (first 8 bytes of the value) */
	struct btree cnt;	/* (len << 32 | agbno) -> unused */
	uint64_t free;		/* blocks in the free extents */
};

/* A free extent of one AG, in blocks; len 0 means none. */
struct fext {
	uint32_t agbno;
	uint32_t len;
};

/* Which free extent an allocation in one AG may take. */
enum alloc_fit {
	FIT_HINT,	/* all of len at the hint, else as near it as can
			   be, else the best fit */
	FIT_BEST,	/* the smallest free extent that holds len */
	FIT_LONGEST,	/* the longest free extent, however short */
};

/* A hint agbno that no free extent contains. */
#define NO_AGBNO UINT32_MAX

static const unsigned char cnt_val[BTREE_VAL_SIZE];

static uint64_t cnt_key(uint32_t agbno, uint32_t len)
{
	return (uint64_t)len << 32 | agbno;
}

static void cnt_decode(uint64_t key, struct fext *fe)
{
	fe->agbno = (uint32_t)key;
	fe->len = (uint32_t)(key >> 32);
}

static void bno_decode(const struct btree_cursor *cur, struct fext *fe)
{
	uint64_t len;

	memcpy(&len, btree_val(cur), sizeof len);
	fe->agbno = (uint32_t)btree_key(cur);
	fe->len = (uint32_t)len;
}

static int bno_put(struct alloc_ag *ag, uint32_t agbno, uint32_t len)
{
	unsigned char val[BTREE_VAL_SIZE] = { 0 };
	uint64_t len64 = len;

	memcpy(val, &len64, sizeof len64);
	return btree_put(&ag->bno, agbno, val);
}

/*
 * Add the free extent [@agbno, @agbno + @len) to both trees; no free
 * extent starts at @agbno yet.  The caller holds the AG lock.
 * Returns 0, or -ENOMEM with the AG unchanged.
 */
static int free_add(struct alloc_ag *ag, uint32_t agbno, uint32_t len)
{
	int err;

	assert(len > 0);
	err = btree_put(&ag->cnt, cnt_key(agbno, len), cnt_val);
	if (err)
		return err;
	err = bno_put(ag, agbno, len);
	if (err) {
		btree_delete(&ag->cnt, cnt_key(agbno, len));
		return err;
	}
	ag->free += len;
	return 0;
}

/*
 * Remove the free extent [@agbno, @agbno + @len), which must be in both
 * trees.  The caller holds the AG lock.  Cannot fail.
 */
static void free_del(struct alloc_ag *ag, uint32_t agbno, uint32_t len)
{
	int err;

	err = btree_delete(&ag->bno, agbno);
	assert(err == 0);
	err = btree_delete(&ag->cnt, cnt_key(agbno, len));
	assert(err == 0);
	(void)err;
	ag->free -= len;
}

/*
 * Change the length of the free extent at @agbno from @old_len to
 * @new_len in both trees.  The caller holds the AG lock.  The bno record
 * keeps its key, so only its value is replaced, which allocates nothing.
 * Returns 0, or -ENOMEM with the AG unchanged.
 */
static int free_resize(struct alloc_ag *ag, uint32_t agbno, uint32_t old_len,
		       uint32_t new_len)
{
	int err;

	assert(old_len > 0 && new_len > 0 && old_len != new_len);
	err = btree_put(&ag->cnt, cnt_key(agbno, new_len), cnt_val);
	if (err)
		return err;
	err = bno_put(ag, agbno, new_len);
	if (err) {
		btree_delete(&ag->cnt, cnt_key(agbno, new_len));
		return err;
	}
	err = btree_delete(&ag->cnt, cnt_key(agbno, old_len));
	assert(err == 0);
	ag->free = ag->free - old_len + new_len;
	return 0;
}

/* The smallest free extent of at least @len blocks, lowest agbno first. */
static bool ag_find_best(struct alloc_ag *ag, uint32_t len, struct fext *fe)
{
	struct btree_cursor cur;

	if (!btree_seek_ge(&ag->cnt, cnt_key(0, len), &cur))
		return false;
	cnt_decode(btree_key(&cur), fe);
	return true;
}

/* Free extents looked at on each side of a hint (xfs_alloc_ag_vextent_near). */
#define NEAR_SCAN 64

/*
 * Where in the free extent @fe a run of @len blocks comes nearest to
 * @hint: its distance in blocks, and the run's start in *@agbno; UINT32_MAX
 * if @fe is shorter than @len.
 */
static uint32_t near_place(const struct fext *fe, uint32_t hint, uint32_t len,
			   uint32_t *agbno)
{
	uint32_t last;

	if (fe->len < len)
		return UINT32_MAX;
	last = fe->agbno + fe->len - len;	/* the last possible start */
	*agbno = hint < fe->agbno ? fe->agbno : hint > last ? last : hint;
	return *agbno > hint ? *agbno - hint : hint - *agbno;
}

/* A candidate of ag_find_near(): where it goes, and how far that is. */
struct near {
	uint32_t hint, len;
	uint32_t dist, agbno;	/* of the best so far: UINT32_MAX if none */
	struct fext fe;
};

/* Consider the free extent at @cur for @nr; true to go on looking. */
static bool near_consider(const struct btree_cursor *cur, struct near *nr)
{
	struct fext f;
	uint32_t d, at;

	bno_decode(cur, &f);
	d = near_place(&f, nr->hint, nr->len, &at);
	if (d < nr->dist) {
		nr->dist = d;
		nr->agbno = at;
		nr->fe = f;
	}
	return nr->dist > 0;
}

/*
 * The free extent of at least @len blocks nearest to @hint, looking at up
 * to NEAR_SCAN free extents on each side of it, and in *@agbno where the
 * run goes in it: the way XFS keeps an allocation close to its hint when
 * the hint itself is taken.  False if none is found.
 */
static bool ag_find_near(struct alloc_ag *ag, uint32_t hint, uint32_t len,
			 struct fext *fe, uint32_t *agbno)
{
	struct near nr = { .hint = hint, .len = len, .dist = UINT32_MAX };
	struct btree_cursor left, right;
	bool l, r;
	int i;

	l = btree_seek_le(&ag->bno, hint, &left);
	right = left;
	r = l ? btree_next(&right) : btree_seek_ge(&ag->bno, hint, &right);
	for (i = 0; i < NEAR_SCAN && (l || r); i++) {
		if (l && !near_consider(&left, &nr))
			break;
		l = l && btree_prev(&left);
		if (r && !near_consider(&right, &nr))
			break;
		r = r && btree_next(&right);
	}
	*fe = nr.fe;
	*agbno = nr.agbno;
	return nr.dist != UINT32_MAX;
}

/* The length of the longest free extent of @ag, 0 if it has none. */
static uint32_t ag_longest(struct alloc_ag *ag)
{
	struct btree_cursor cur;

	if (!btree_seek_le(&ag->cnt, UINT64_MAX, &cur))
		return 0;
	return (uint32_t)(btree_key(&cur) >> 32);
}

/*
 * Choose where an allocation of up to *@len blocks goes in @ag, by @fit:
 * sets the free extent @fe to carve from, the first block *@agbno and, for
 * FIT_LONGEST, trims *@len to what the extent holds.  False if nothing
 * fits.  The caller holds the AG lock.
 */
static bool ag_pick(struct alloc_ag *ag, enum alloc_fit fit,
		    uint32_t hint_agbno, uint32_t *len, struct fext *fe,
		    uint32_t *agbno)
{
	switch (fit) {
	case FIT_HINT:
		if (hint_agbno != NO_AGBNO &&
		    ag_find_near(ag, hint_agbno, *len, fe, agbno))
			return true;
		/* fall through */
	case FIT_BEST:
		if (!ag_find_best(ag, *len, fe))
			return false;
		break;
	case FIT_LONGEST:
		if (!ag_find_best(ag, ag_longest(ag), fe))
			return false;
		if (*len > fe->len)
			*len = fe->len;
		break;
	}
	*agbno = fe->agbno;
	return true;
}

/*
 * Take [@agbno, @agbno + @len) out of the free extent @fe that holds it,
 * leaving what is on either side free:
 *
 *   fe->agbno       agbno          agbno + len         fe end
 *   |---- left -----|xxxxx len xxxxx|------ right ------|
 *
 * The caller holds the AG lock.  Returns 0, or -ENOMEM with the AG
 * unchanged.
 */
static int ag_take(struct alloc_ag *ag, const struct fext *fe, uint32_t agbno,
		   uint32_t len)
{
	uint32_t left = agbno - fe->agbno;
	uint32_t right = fe->agbno + fe->len - (agbno + len);
	int err;

	assert(agbno >= fe->agbno && agbno + len <= fe->agbno + fe->len);
	if (right) {
		err = free_add(ag, agbno + len, right);
		if (err)
			return err;
	}
	if (!left) {
		free_del(ag, fe->agbno, fe->len);
		return 0;
	}
	err = free_resize(ag, fe->agbno, fe->len, left);
	if (err && right)
		free_del(ag, agbno + len, right);
	return err;
}

/*
 * Count @nblks allocated blocks out of the free blocks and, at the same
 * time, out of the reservation they were allocated against, so that
 * free_blocks - reserved never changes for an allocation.
 */
static void counters_take(struct alloc *a, uint32_t nblks)
{
	pthread_mutex_lock(&a->lock);
	assert(a->free_blocks >= nblks && a->reserved >= nblks);
	a->free_blocks -= nblks;
	a->reserved -= nblks;
	pthread_mutex_unlock(&a->lock);
}

static void counters_give(struct alloc *a, uint32_t nblks)
{
	pthread_mutex_lock(&a->lock);
	a->free_blocks += nblks;
	pthread_mutex_unlock(&a->lock);
}

static uint64_t counters_free(struct alloc *a)
{
	uint64_t free_blocks;

	pthread_mutex_lock(&a->lock);
	free_blocks = a->free_blocks;
	pthread_mutex_unlock(&a->lock);
	return free_blocks;
}

/*
 * Allocate up to @len reserved blocks in AG @agno, by @fit.  Takes the AG
 * lock.  Returns 0, -ENOSPC if nothing fits there, or -ENOMEM.
 */
static int ag_alloc(struct alloc *a, uint32_t agno, enum alloc_fit fit,
		    uint32_t hint_agbno, uint32_t len, uint64_t *pblk,
		    uint32_t *got)
{
	struct alloc_ag *ag = &a->ags[agno];
	struct fext fe;
	uint32_t agbno;
	int err = -ENOSPC;

	pthread_mutex_lock(&ag->lock);
	if (!ag_pick(ag, fit, hint_agbno, &len, &fe, &agbno))
		goto out;
	err = ag_take(ag, &fe, agbno, len);
	if (err)
		goto out;
	counters_take(a, len);
	*pblk = PBLK(agno, agbno);
	*got = len;
out:
	pthread_mutex_unlock(&ag->lock);
	return err;
}

/* The i-th AG in round-robin order from @agno. */
static uint32_t ag_next(const struct alloc *a, uint32_t agno, uint32_t i)
{
	return (uint32_t)(((uint64_t)agno + i) % a->ag_count);
}

/*
 * The AG with the longest free extent, the first in round-robin order
 * from @agno among equals; false if all are empty.  Takes each AG's lock
 * in turn, so the answer may be stale by the time it is used.
 */
static bool longest_ag(struct alloc *a, uint32_t agno, uint32_t *best)
{
	uint32_t i, n, longest = 0;

	for (i = 0; i < a->ag_count; i++) {
		struct alloc_ag *ag = &a->ags[ag_next(a, agno, i)];

		pthread_mutex_lock(&ag->lock);
		n = ag_longest(ag);
		pthread_mutex_unlock(&ag->lock);
		if (n > longest) {
			longest = n;
			*best = ag_next(a, agno, i);
		}
	}
	return longest > 0;
}

/*
 * One pass of the allocation policy for @len reserved blocks (alloc.h):
 * at the hint, best fit in the hint's AG, best fit in the others, the
 * longest free extent.  Returns 0, -ENOSPC, or -ENOMEM.
 */
static int alloc_pass(struct alloc *a, uint32_t agno, uint32_t hint_agbno,
		      uint32_t len, uint64_t *pblk, uint32_t *got)
{
	enum alloc_fit fit = FIT_HINT;
	uint32_t i;
	int err;

	for (i = 0; i < a->ag_count; i++, fit = FIT_BEST) {
		err = ag_alloc(a, ag_next(a, agno, i), fit, hint_agbno, len,
			       pblk, got);
		if (err != -ENOSPC)
			return err;
	}
	if (!longest_ag(a, agno, &agno))
		return -ENOSPC;
	return ag_alloc(a, agno, FIT_LONGEST, NO_AGBNO, len, pblk, got);
}

/*
 * Allocate up to @len blocks that the caller has reserved.  As long as
 * the reservation is held, free_blocks >= reserved > 0, so some AG has
 * free space: a pass that finds nothing raced with frees moving it into
 * AGs it had already looked at, and is repeated.
 */
static int alloc_reserved(struct alloc *a, uint64_t hint, uint32_t len,
			  uint64_t *pblk, uint32_t *got)
{
	uint32_t agno = 0, hint_agbno = NO_AGBNO;
	int err;

	if (hint != PBLK_NULL && PBLK_AG(hint) < a->ag_count) {
		agno = PBLK_AG(hint);
		hint_agbno = PBLK_AGBNO(hint);
	}
	do {
		err = alloc_pass(a, agno, hint_agbno, len, pblk, got);
	} while (err == -ENOSPC && counters_free(a) > 0);
	return err;
}

/*
 * Reserve up to @len blocks of the unreserved free space for an
 * allocation that has no reservation of its own: sets *@nblks to what was
 * reserved.  Returns 0 or -ENOSPC if every free block is reserved.
 */
static int reserve_upto(struct alloc *a, uint32_t len, uint32_t *nblks)
{
	uint64_t avail;
	int err = -ENOSPC;

	pthread_mutex_lock(&a->lock);
	avail = a->free_blocks - a->reserved;
	if (avail > 0) {
		*nblks = avail < len ? (uint32_t)avail : len;
		a->reserved += *nblks;
		err = 0;
	}
	pthread_mutex_unlock(&a->lock);
	return err;
}

int alloc_extent(struct alloc *a, uint64_t hint, uint32_t len, bool from_resv,
		 uint64_t *pblk, uint32_t *got)
{
	uint32_t nblks = len;
	int err;

	if (len == 0 || len > AG_MAX_BLOCKS)
		return -EINVAL;
	if (!from_resv) {
		err = reserve_upto(a, len, &nblks);
		if (err)
			return err;
	}
	err = alloc_reserved(a, hint, nblks, pblk, got);
	if (!from_resv)
		alloc_unreserve(a, err ? nblks : nblks - *got);
	return err;
}

/*
 * The free extents around [@agbno, ...): @left the last one that starts
 * at or before @agbno, @right the first one after it (len 0: none).
 */
static void ag_neighbours(struct alloc_ag *ag, uint32_t agbno,
			  struct fext *left, struct fext *right)
{
	struct btree_cursor cur;
	bool found;

	*left = *right = (struct fext){ 0, 0 };
	if (btree_seek_le(&ag->bno, agbno, &cur)) {
		bno_decode(&cur, left);
		found = btree_next(&cur);
	} else {
		found = btree_first(&ag->bno, &cur);
	}
	if (found)
		bno_decode(&cur, right);
}

bool alloc_is_free(struct alloc *a, uint64_t pblk, uint32_t len)
{
	uint32_t agno = PBLK_AG(pblk), agbno = PBLK_AGBNO(pblk);
	struct fext left, right;

	if (agno >= a->ag_count)
		return false;
	pthread_mutex_lock(&a->ags[agno].lock);
	ag_neighbours(&a->ags[agno], agbno, &left, &right);
	pthread_mutex_unlock(&a->ags[agno].lock);
	return left.len && left.agbno <= agbno &&
	       (uint64_t)agbno + len <= (uint64_t)left.agbno + left.len;
}

/*
 * Refuse to free [@agbno, @agbno + @len) of AG @agno, which overlaps the
 * free extent @fe: set the message, return -EFSCORRUPTED.
 */
static int report_double_free(uint32_t agno, uint32_t agbno, uint32_t len,
			      const struct fext *fe)
{
	tm_set_error("double free: AG %u blocks %u..%u (pblk %llu, %u "
		     "blocks) overlap the free extent at AG blocks %u..%u",
		     agno, agbno, agbno + len - 1,
		     (unsigned long long)PBLK(agno, agbno), len, fe->agbno,
		     fe->agbno + fe->len - 1);
	return -EFSCORRUPTED;
}

/*
 * Return [@agbno, @agbno + @len) of AG @agno to its free space, merged
 * with the free extents on either side when they touch it:
 *
 *   left            agbno          agbno + len
 *   |---- left ----|xxxxx len xxxxx|---- right ----|
 *
 * The caller holds the AG lock.  Returns 0, -EFSCORRUPTED if any block of
 * the range is free already, or -ENOMEM; the AG is unchanged on error.
 */
static int ag_free(struct alloc_ag *ag, uint32_t agno, uint32_t agbno,
		   uint32_t len)
{
	struct fext left, right;
	bool lmerge, rmerge;
	uint32_t total = len;
	int err;

	ag_neighbours(ag, agbno, &left, &right);
	if (left.len && left.agbno + left.len > agbno)
		return report_double_free(agno, agbno, len, &left);
	if (right.len && right.agbno < agbno + len)
		return report_double_free(agno, agbno, len, &right);
	lmerge = left.len && left.agbno + left.len == agbno;
	rmerge = right.len && right.agbno == agbno + len;
	total += (lmerge ? left.len : 0) + (rmerge ? right.len : 0);
	if (lmerge)
		err = free_resize(ag, left.agbno, left.len, total);
	else
		err = free_add(ag, agbno, total);
	if (!err && rmerge)
		free_del(ag, right.agbno, right.len);
	return err;
}

int alloc_free(struct alloc *a, uint64_t pblk, uint32_t len)
{
	uint32_t agno = PBLK_AG(pblk), agbno = PBLK_AGBNO(pblk);
	struct alloc_ag *ag;
	int err;

	if (len == 0)
		return 0;
	if (agno >= a->ag_count || agbno >= a->ag_blocks ||
	    len > a->ag_blocks - agbno) {
		tm_set_error("freeing pblk %llu (AG %u, block %u, %u blocks): "
			     "outside the %u AGs of %u blocks",
			     (unsigned long long)pblk, agno, agbno, len,
			     a->ag_count, a->ag_blocks);
		return -EFSCORRUPTED;
	}
	ag = &a->ags[agno];
	pthread_mutex_lock(&ag->lock);
	err = ag_free(ag, agno, agbno, len);
	if (!err)
		counters_give(a, len);
	pthread_mutex_unlock(&ag->lock);
	return err;
}

int alloc_reserve(struct alloc *a, uint64_t nblks)
{
	int err = -ENOSPC;

	pthread_mutex_lock(&a->lock);
	if (a->free_blocks - a->reserved >= nblks) {
		a->reserved += nblks;
		err = 0;
	}
	pthread_mutex_unlock(&a->lock);
	return err;
}

void alloc_unreserve(struct alloc *a, uint64_t nblks)
{
	pthread_mutex_lock(&a->lock);
	assert(a->reserved >= nblks);
	a->reserved -= nblks;
	pthread_mutex_unlock(&a->lock);
}

void alloc_stat(struct alloc *a, struct alloc_stat *st)
{
	uint32_t agno, longest;

	memset(st, 0, sizeof *st);
	for (agno = 0; agno < a->ag_count; agno++) {
		struct alloc_ag *ag = &a->ags[agno];

		pthread_mutex_lock(&ag->lock);
		st->free_extents += ag->bno.count;
		longest = ag_longest(ag);
		pthread_mutex_unlock(&ag->lock);
		if (longest > st->longest)
			st->longest = longest;
	}
	pthread_mutex_lock(&a->lock);
	st->free_blocks = a->free_blocks;
	st->reserved = a->reserved;
	pthread_mutex_unlock(&a->lock);
}

uint64_t alloc_home_hint(const struct alloc *a, uint64_t lblk,
			 uint64_t nr_lblks)
{
	uint64_t region = nr_lblks / a->ag_count +
			  (nr_lblks % a->ag_count != 0);
	uint64_t agno, off;

	if (region == 0)
		return PBLK(0, 0);
	agno = lblk / region;
	if (agno >= a->ag_count)
		return PBLK(a->ag_count - 1, 0);
	off = lblk - agno * region;
	return PBLK(agno, (unsigned __int128)off * a->ag_blocks / region);
}

/* Refuse @ext, the used extent at @what, with a message. */
static int used_corrupt(const struct extent *ext, const char *what)
{
	tm_set_error("used extent at logical block %llu (pblk %llu: AG %u, "
		     "block %u, %llu blocks) %s",
		     (unsigned long long)ext->lblk,
		     (unsigned long long)ext->pblk, PBLK_AG(ext->pblk),
		     PBLK_AGBNO(ext->pblk), (unsigned long long)ext->len, what);
	return -EFSCORRUPTED;
}

/*
 * Check that @ext, the next used extent in AG @agno, lies inside the AG
 * and at or after @next, the end of the previous one.
 */
static int used_check(const struct alloc *a, uint32_t agno, uint32_t next,
		      const struct extent *ext)
{
	uint32_t agbno = PBLK_AGBNO(ext->pblk);

	if (PBLK_AG(ext->pblk) != agno || agbno < next)
		return used_corrupt(ext, "overlaps or precedes the one before");
	if (ext->len == 0)
		return used_corrupt(ext, "is empty");
	if (agbno >= a->ag_blocks || ext->len > a->ag_blocks - agbno)
		return used_corrupt(ext, "runs past the end of its AG");
	return 0;
}

/*
 * Compute the free extents of AG @agno, the gaps between the used extents
 * used[*@i ..] in it, into @keys as cnt keys in agbno order; *@nkeys is
 * their number.  Advances *@i past the AG's used extents.
 */
static int ag_gaps(const struct alloc *a, uint32_t agno,
		   const struct extent *used, size_t n, size_t *i,
		   uint64_t *keys, size_t *nkeys)
{
	uint32_t next = 0, agbno;
	int err;

	*nkeys = 0;
	for (; *i < n && PBLK_AG(used[*i].pblk) <= agno; (*i)++) {
		err = used_check(a, agno, next, &used[*i]);
		if (err)
			return err;
		agbno = PBLK_AGBNO(used[*i].pblk);
		if (agbno > next)
			keys[(*nkeys)++] = cnt_key(next, agbno - next);
		next = agbno + (uint32_t)used[*i].len;
	}
	if (next < a->ag_blocks)
		keys[(*nkeys)++] = cnt_key(next, a->ag_blocks - next);
	return 0;
}

static int key_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/*
 * Load the free extents @keys[0 .. @nkeys) (cnt keys, in agbno order)
 * into the empty trees of @ag.  Both trees are filled in key order, which
 * appends and packs their leaves; @keys is sorted for the cnt tree.
 * Returns 0 or -ENOMEM (the caller destroys the trees).
 */
static int ag_load(struct alloc_ag *ag, uint64_t *keys, size_t nkeys)
{
	struct fext fe;
	size_t k;
	int err;

	for (k = 0; k < nkeys; k++) {
		cnt_decode(keys[k], &fe);
		err = bno_put(ag, fe.agbno, fe.len);
		if (err)
			return err;
		ag->free += fe.len;
	}
	qsort(keys, nkeys, sizeof *keys, key_cmp);
	for (k = 0; k < nkeys; k++) {
		err = btree_put(&ag->cnt, keys[k], cnt_val);
		if (err)
			return err;
	}
	return 0;
}

/* Build every AG's free space as the complement of @used[0 .. @n). */
static int alloc_build(struct alloc *a, const struct extent *used, size_t n)
{
	uint64_t *keys = malloc((n + 1) * sizeof *keys);
	size_t i = 0, nkeys;
	uint32_t agno;
	int err = -ENOMEM;

	if (!keys)
		goto out;
	for (agno = 0; agno < a->ag_count; agno++) {
		err = ag_gaps(a, agno, used, n, &i, keys, &nkeys);
		if (!err)
			err = ag_load(&a->ags[agno], keys, nkeys);
		if (err)
			goto out;
		a->free_blocks += a->ags[agno].free;
	}
	if (i < n)
		err = used_corrupt(&used[i], "lies outside the AGs");
out:
	free(keys);
	return err;
}

int alloc_init(struct alloc *a, uint32_t ag_count, uint32_t ag_blocks,
	       const struct extent *used, size_t n)
{
	uint32_t agno;
	int err;

	memset(a, 0, sizeof *a);
	if (ag_count == 0 || ag_blocks == 0 || ag_blocks > AG_MAX_BLOCKS) {
		tm_set_error("bad allocator geometry: %u AGs of %u blocks "
			     "(1 .. %u)", ag_count, ag_blocks, AG_MAX_BLOCKS);
		return -EINVAL;
	}
	a->ags = calloc(ag_count, sizeof *a->ags);
	if (!a->ags)
		return -ENOMEM;
	a->ag_count = ag_count;
	a->ag_blocks = ag_blocks;
	pthread_mutex_init(&a->lock, NULL);
	for (agno = 0; agno < ag_count; agno++) {
		pthread_mutex_init(&a->ags[agno].lock, NULL);
		btree_init(&a->ags[agno].bno);
		btree_init(&a->ags[agno].cnt);
	}
	err = alloc_build(a, used, n);
	if (err)
		alloc_destroy(a);
	return err;
}

void alloc_destroy(struct alloc *a)
{
	uint32_t agno;

	if (!a->ags)
		return;
	for (agno = 0; agno < a->ag_count; agno++) {
		btree_destroy(&a->ags[agno].bno);
		btree_destroy(&a->ags[agno].cnt);
		pthread_mutex_destroy(&a->ags[agno].lock);
	}
	free(a->ags);
	a->ags = NULL;
	pthread_mutex_destroy(&a->lock);
}
