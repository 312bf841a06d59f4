/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Range operations on an ordered store of extents (see extent.h).
 *
 * They are written against four primitives so that the in-memory extent
 * map and the LMDB records split, trim and merge in exactly the same way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/extent.h"

static const char *const state_names[] = {
	[EXT_HOLE] = "hole",
	[EXT_DELALLOC] = "delalloc",
	[EXT_UNWRITTEN] = "unwritten",
	[EXT_MAPPED] = "mapped",
};

const char *extent_state_name(enum extent_state state)
{
	if ((unsigned int)state >= sizeof state_names / sizeof state_names[0])
		return "invalid";
	return state_names[state];
}

int extent_vec_push(struct extent_vec *vec, const struct extent *ext)
{
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? 2 * vec->cap : 4096;
		struct extent *v = realloc(vec->v, cap * sizeof *v);

		if (!v)
			return -ENOMEM;
		vec->v = v;
		vec->cap = cap;
	}
	vec->v[vec->n++] = *ext;
	return 0;
}

int extent_vec_append(struct extent_vec *vec, const struct extent_vec *from)
{
	size_t i, n0 = vec->n;

	for (i = 0; i < from->n; i++)
		if (extent_vec_push(vec, &from->v[i])) {
			vec->n = n0;
			return -ENOMEM;
		}
	return 0;
}

void extent_vec_remove_front(struct extent_vec *vec, size_t n)
{
	if (n == 0)
		return;		/* vec->v may be NULL */
	memmove(vec->v, vec->v + n, (vec->n - n) * sizeof *vec->v);
	vec->n -= n;
}

void extent_vec_free(struct extent_vec *vec)
{
	free(vec->v);
	vec->v = NULL;
	vec->n = vec->cap = 0;
}

static int cmp_pblk(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->pblk < y->pblk ? -1 : x->pblk > y->pblk;
}

void extent_vec_sort_pblk(struct extent_vec *vec)
{
	if (vec->n > 1)	/* qsort() must not see the NULL of an empty vec */
		qsort(vec->v, vec->n, sizeof *vec->v, cmp_pblk);
}

static bool has_blocks(enum extent_state state)
{
	return state == EXT_UNWRITTEN || state == EXT_MAPPED;
}

bool extent_can_merge(const struct extent *left, const struct extent *right)
{
	if (left->state != right->state || extent_end(left) != right->lblk)
		return false;
	if (left->len + right->len > EXTENT_MAX_LEN)
		return false;
	/* PBLK's gap between AGs keeps this from joining two AGs. */
	return !has_blocks(left->state) ||
	       left->pblk + left->len == right->pblk;
}

void extent_clip(struct extent *ext, uint64_t lblk, uint64_t end)
{
	if (ext->lblk < lblk) {
		uint64_t skip = lblk - ext->lblk;

		ext->lblk = lblk;
		ext->len -= skip;
		if (has_blocks(ext->state))
			ext->pblk += skip;
	}
	if (extent_end(ext) > end)
		ext->len = end - ext->lblk;
}

/* The part of @ext from logical block @lblk on (inside @ext). */
static struct extent extent_tail(const struct extent *ext, uint64_t lblk)
{
	struct extent tail = *ext;

	extent_clip(&tail, lblk, UINT64_MAX);
	return tail;
}

/*
 * The extent that starts before @lblk and reaches past it loses what is
 * at and after @lblk; if it reaches past @end too, its part from @end on
 * becomes an extent of its own.
 */
static int trim_left_overlap(const struct extent_store_ops *ops, void *store,
			     uint64_t lblk, uint64_t end)
{
	struct extent ext, tail;
	int err;

	err = ops->lookup_le(store, lblk, &ext);
	if (err == -ENOENT || (!err && (ext.lblk == lblk ||
					extent_end(&ext) <= lblk)))
		return 0;
	if (err)
		return err;
	if (extent_end(&ext) > end) {
		tail = extent_tail(&ext, end);
		err = ops->put(store, &tail);
		if (err)
			return err;
	}
	ext.len = lblk - ext.lblk;
	return ops->put(store, &ext);
}

int extent_store_remove(const struct extent_store_ops *ops, void *store,
			uint64_t lblk, uint64_t len)
{
	uint64_t end = lblk + len;
	struct extent ext, tail;
	int err;

	err = trim_left_overlap(ops, store, lblk, end);
	while (!err) {
		err = ops->lookup_ge(store, lblk, &ext);
		if (err == -ENOENT || (!err && ext.lblk >= end))
			return 0;
		if (!err && extent_end(&ext) > end) {
			tail = extent_tail(&ext, end);
			err = ops->put(store, &tail);
		}
		if (!err)
			err = ops->del(store, ext.lblk);
	}
	return err;
}

/*
 * Insert @ext into the hole between @left and @right (EXT_HOLE: none),
 * merged with them if they can merge.
 */
static int insert_between(const struct extent_store_ops *ops, void *store,
			  const struct extent *ext, struct extent left,
			  const struct extent *right)
{
	struct extent merged = *ext;
	int err;

	if (left.state != EXT_HOLE && extent_can_merge(&left, &merged)) {
		left.len += merged.len;
		merged = left;		/* put() below replaces left */
	}
	if (right->state == EXT_HOLE || !extent_can_merge(&merged, right))
		return ops->put(store, &merged);
	/* Put before del: right of the neighbours just found is untouched. */
	merged.len += right->len;
	err = ops->put(store, &merged);
	return err ? err : ops->del(store, right->lblk);
}

/* Insert @ext into a hole, merged with its neighbours. */
static int insert_merged(const struct extent_store_ops *ops, void *store,
			 const struct extent *ext)
{
	struct extent left, right;
	int err;

	err = ops->neighbours(store, ext->lblk, &left, &right);
	return err ? err : insert_between(ops, store, ext, left, &right);
}

static bool extent_ok(const struct extent *ext)
{
	return ext->len > 0 && ext->len <= EXTENT_MAX_LEN &&
	       ext->state != EXT_HOLE;
}

/*
 * Does nothing between @left and @right (found by neighbours() at
 * @ext->lblk) overlap @ext?
 */
static bool between_is_hole(const struct extent *left,
			    const struct extent *right,
			    const struct extent *ext)
{
	return (left->state == EXT_HOLE || extent_end(left) <= ext->lblk) &&
	       (right->state == EXT_HOLE || right->lblk >= extent_end(ext));
}

int extent_store_set(const struct extent_store_ops *ops, void *store,
		     const struct extent *ext)
{
	struct extent left, right;
	int err;

	if (!extent_ok(ext))
		return -EINVAL;
	/* Mostly a hole (new allocations, loading): one search then. */
	err = ops->neighbours(store, ext->lblk, &left, &right);
	if (!err && between_is_hole(&left, &right, ext))
		return insert_between(ops, store, ext, left, &right);
	if (!err)
		err = extent_store_remove(ops, store, ext->lblk, ext->len);
	return err ? err : insert_merged(ops, store, ext);
}

int extent_store_insert(const struct extent_store_ops *ops, void *store,
			const struct extent *ext)
{
	return extent_ok(ext) ? insert_merged(ops, store, ext) : -EINVAL;
}

/*
 * The next extent in state @from that overlaps [@lblk, @end), clipped to
 * it.  Returns 0, -ENOENT when there is none, or the store's error.
 */
static int next_in_state(const struct extent_store_ops *ops, void *store,
			 uint64_t lblk, uint64_t end, enum extent_state from,
			 struct extent *ext)
{
	int err = ops->lookup_le(store, lblk, ext);

	if (err == -ENOENT || (!err && extent_end(ext) <= lblk))
		err = ops->lookup_ge(store, lblk, ext);
	while (!err && ext->lblk < end) {
		if (ext->state == from) {
			extent_clip(ext, lblk, end);
			return 0;
		}
		err = ops->lookup_ge(store, extent_end(ext), ext);
	}
	return err ? err : -ENOENT;
}

int extent_store_convert(const struct extent_store_ops *ops, void *store,
			 uint64_t lblk, uint64_t len, enum extent_state from,
			 enum extent_state to)
{
	uint64_t end = lblk + len;
	struct extent ext;
	int err;

	for (;;) {
		err = next_in_state(ops, store, lblk, end, from, &ext);
		if (err)
			return err == -ENOENT ? 0 : err;
		ext.state = to;
		err = extent_store_set(ops, store, &ext);
		if (err)
			return err;
		lblk = extent_end(&ext);
	}
}
