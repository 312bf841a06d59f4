/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-memory extent map (see emap.h): struct extent records in a
 * B+tree keyed by logical block, changed through the shared range
 * operations of extent.c.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "thinmap/emap.h"

/* The B+tree value of an extent: 16 bytes, the key is its lblk. */
struct emap_rec {
	uint64_t pblk;
	uint32_t len;
	uint32_t state;
};

_Static_assert(sizeof(struct emap_rec) == BTREE_VAL_SIZE, "emap_rec size");

static void rec_to_extent(const struct btree_cursor *cur, struct extent *ext)
{
	const struct emap_rec *rec = btree_val(cur);

	ext->lblk = btree_key(cur);
	ext->len = rec->len;
	ext->pblk = rec->pblk;
	ext->state = (enum extent_state)rec->state;
}

static int store_lookup_le(void *store, uint64_t lblk, struct extent *ext)
{
	struct emap *map = store;
	struct btree_cursor cur;

	if (!btree_seek_le(&map->tree, lblk, &cur))
		return -ENOENT;
	rec_to_extent(&cur, ext);
	return 0;
}

static int store_lookup_ge(void *store, uint64_t lblk, struct extent *ext)
{
	struct emap *map = store;
	struct btree_cursor cur;

	if (!btree_seek_ge(&map->tree, lblk, &cur))
		return -ENOENT;
	rec_to_extent(&cur, ext);
	return 0;
}

static void no_extent(struct extent *ext)
{
	ext->state = EXT_HOLE;
}

/*
 * The search of store_neighbours(): the hint of the exclusive lookup that
 * found the hole at @lblk if there is one (no extent starts at @lblk, so
 * the last extent at or before it is the last one before it), else a
 * descent.  Returns whether there is an extent before @lblk.
 */
static bool seek_before(struct emap *map, uint64_t lblk,
			struct btree_cursor *cur)
{
	if (map->hint.hole && map->hint.hole_lblk == lblk) {
		*cur = map->hint.cur;
		return map->hint.found;
	}
	return lblk > 0 && btree_seek_le(&map->tree, lblk - 1, cur);
}

static void hint_forget(struct emap *map)
{
	map->hint.hole = map->hint.left = false;
}

static int store_neighbours(void *store, uint64_t lblk, struct extent *left,
			    struct extent *right)
{
	struct emap *map = store;
	struct btree_cursor cur;
	bool found;

	no_extent(left);
	no_extent(right);
	map->hint.left = seek_before(map, lblk, &cur);
	map->hint.hole = false;
	if (map->hint.left) {
		rec_to_extent(&cur, left);
		map->hint.cur = cur;
		found = btree_next(&cur);
	} else {
		found = btree_seek_ge(&map->tree, lblk, &cur);
	}
	if (found)
		rec_to_extent(&cur, right);
	return 0;
}

static int store_put(void *store, const struct extent *ext)
{
	const struct emap_rec rec = {
		.pblk = ext->pblk,
		.len = (uint32_t)ext->len,
		.state = ext->state,
	};

	struct emap *map = store;
	struct emap_hint *h = &map->hint;

	assert(ext->len > 0 && ext->len <= EXTENT_MAX_LEN);
	if (h->left && btree_key(&h->cur) == ext->lblk) {
		memcpy(btree_val(&h->cur), &rec, sizeof rec);	/* in place */
		hint_forget(map);
		return 0;
	}
	hint_forget(map);
	return btree_put(&map->tree, ext->lblk, &rec);
}

static int store_del(void *store, uint64_t lblk)
{
	struct emap *map = store;

	hint_forget(map);
	return btree_delete(&map->tree, lblk);
}

static const struct extent_store_ops emap_store_ops = {
	.lookup_le = store_lookup_le,
	.lookup_ge = store_lookup_ge,
	.neighbours = store_neighbours,
	.put = store_put,
	.del = store_del,
};

void emap_init(struct emap *map)
{
	btree_init(&map->tree);
	map->seq = 0;
	hint_forget(map);
}

void emap_destroy(struct emap *map)
{
	btree_destroy(&map->tree);
}

/* emap_lookup() with the first search's cursor in *@cur (if it found). */
static bool lookup(const struct emap *map, uint64_t lblk, struct extent *ext,
		   struct btree_cursor *cur)
{
	struct btree_cursor next;
	bool found, at;

	at = btree_seek_le(&map->tree, lblk, cur);
	if (at) {
		rec_to_extent(cur, ext);
		if (extent_end(ext) > lblk)
			return at;
		next = *cur;
		found = btree_next(&next);
	} else {
		found = btree_seek_ge(&map->tree, lblk, &next);
	}
	ext->lblk = lblk;
	ext->len = found ? btree_key(&next) - lblk : UINT64_MAX - lblk;
	ext->pblk = PBLK_NULL;
	ext->state = EXT_HOLE;
	return at;
}

void emap_lookup(const struct emap *map, uint64_t lblk, struct extent *ext)
{
	struct btree_cursor cur;

	lookup(map, lblk, ext, &cur);
}

void emap_lookup_excl(struct emap *map, uint64_t lblk, struct extent *ext)
{
	struct emap_hint *h = &map->hint;

	h->found = lookup(map, lblk, ext, &h->cur);
	h->hole_lblk = lblk;
	h->hole = ext->state == EXT_HOLE;	/* for an insert into it */
	h->left = false;
}

static bool allocated(const struct extent *ext)
{
	return ext->state == EXT_MAPPED || ext->state == EXT_UNWRITTEN;
}

/*
 * From @cur (if @found) on, in direction @step, the first allocated
 * extent within EMAP_NEAR_SKIP records, into *@ext.
 */
static void near_scan(struct btree_cursor *cur, bool found,
		      bool (*step)(struct btree_cursor *), struct extent *ext)
{
	int i;

	for (i = 0; found && i <= EMAP_NEAR_SKIP; i++, found = step(cur)) {
		rec_to_extent(cur, ext);
		if (allocated(ext))
			return;
	}
	no_extent(ext);
}

void emap_lookup_near(const struct emap *map, uint64_t lblk, uint64_t end,
		      struct extent *left, struct extent *right)
{
	struct btree_cursor cur;

	near_scan(&cur, lblk > 0 && btree_seek_le(&map->tree, lblk - 1, &cur),
		  btree_prev, left);
	near_scan(&cur, btree_seek_ge(&map->tree, end, &cur), btree_next,
		  right);
}

int emap_set(struct emap *map, const struct extent *ext)
{
	map->seq++;
	return extent_store_set(&emap_store_ops, map, ext);
}

/*
 * Overwrite the record at @cur, whose blocks @ext covers exactly, with
 * @ext, unless @ext merges with a neighbour (extent_store_set() then
 * does it).  Returns whether it did.
 */
static bool put_in_place(struct emap *map, const struct btree_cursor *cur,
			 const struct extent *ext)
{
	const struct emap_rec rec = {
		.pblk = ext->pblk,
		.len = (uint32_t)ext->len,
		.state = ext->state,
	};
	struct btree_cursor nb = *cur;
	struct extent n;

	if (btree_prev(&nb)) {
		rec_to_extent(&nb, &n);
		if (extent_can_merge(&n, ext))
			return false;
	}
	nb = *cur;
	if (btree_next(&nb)) {
		rec_to_extent(&nb, &n);
		if (extent_can_merge(ext, &n))
			return false;
	}
	memcpy(btree_val(cur), &rec, sizeof rec);
	map->seq++;
	hint_forget(map);
	return true;
}

/*
 * The last record at or before @lblk into *@cur and *@old; true if it is
 * exactly [@lblk, @lblk + @len).
 */
static bool seek_exact(const struct emap *map, uint64_t lblk, uint64_t len,
		       struct btree_cursor *cur, struct extent *old)
{
	if (!btree_seek_le(&map->tree, lblk, cur))
		return false;
	rec_to_extent(cur, old);
	return old->lblk == lblk && old->len == len;
}

int emap_replace(struct emap *map, const struct extent *ext)
{
	struct btree_cursor cur;
	struct extent old;

	if (ext->state != EXT_HOLE &&
	    seek_exact(map, ext->lblk, ext->len, &cur, &old) &&
	    put_in_place(map, &cur, ext))
		return 0;
	return emap_set(map, ext);
}

int emap_insert(struct emap *map, const struct extent *ext)
{
	map->seq++;
	return extent_store_insert(&emap_store_ops, map, ext);
}

int emap_remove(struct emap *map, uint64_t lblk, uint64_t len)
{
	map->seq++;
	return extent_store_remove(&emap_store_ops, map, lblk, len);
}

int emap_convert(struct emap *map, uint64_t lblk, uint64_t len,
		 enum extent_state from, enum extent_state to)
{
	struct btree_cursor cur;
	struct extent ext;

	if (seek_exact(map, lblk, len, &cur, &ext) && ext.state == from) {
		ext.state = to;
		if (put_in_place(map, &cur, &ext))
			return 0;
	}
	map->seq++;
	return extent_store_convert(&emap_store_ops, map, lblk, len,
				    from, to);
}

int emap_iterate(const struct emap *map, uint64_t lblk, uint64_t len,
		 int (*fn)(void *arg, const struct extent *ext), void *arg)
{
	uint64_t end = lblk + len;
	struct btree_cursor cur;
	struct extent ext;
	bool found;
	int ret;

	found = btree_seek_le(&map->tree, lblk, &cur);
	if (!found)
		found = btree_seek_ge(&map->tree, lblk, &cur);
	for (; found && btree_key(&cur) < end; found = btree_next(&cur)) {
		rec_to_extent(&cur, &ext);
		if (extent_end(&ext) <= lblk)
			continue;
		extent_clip(&ext, lblk, end);
		ret = fn(arg, &ext);
		if (ret)
			return ret;
	}
	return 0;
}

size_t emap_count(const struct emap *map)
{
	return map->tree.count;
}

size_t emap_bytes(const struct emap *map)
{
	return map->tree.bytes;
}
