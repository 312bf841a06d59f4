/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An in-memory B+tree mapping 64-bit keys to fixed 16-byte values.
 *
 * This is the ordered index under the extent map (key: logical block) and
 * under each allocation group's free-space indices (by block and by size),
 * the userspace counterpart of XFS's in-core extent tree (xfs_iext_tree.c)
 * and of the bnobt/cntbt.
 *
 * Records live in leaves as two parallel arrays (keys, values), so a search
 * touches only keys and a record costs 24 bytes plus the unused part of its
 * leaf.  Leaves are linked for iteration.  A split that appends at the end
 * (or prepends at the start) of a node leaves the old node full, so records
 * inserted in order pack leaves completely; random inserts leave them about
 * 70% full, and a delete that empties a node below a third refills it from
 * a sibling or merges the two.
 *
 * Every operation is O(log n).  The tree has no lock: its owner serializes
 * writers against everything else, and readers against writers.
 */
#ifndef THINMAP_BTREE_H
#define THINMAP_BTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BTREE_VAL_SIZE 16

struct btree_leaf;

struct btree {
	void *root;		/* a leaf when height == 0; NULL when empty */
	unsigned int height;	/* levels of interior nodes above the leaves */
	size_t count;		/* records */
	size_t bytes;		/* memory held by nodes */
};

/* A position in the tree: valid until the tree is next modified. */
struct btree_cursor {
	struct btree_leaf *leaf;
	unsigned int slot;
};

void btree_init(struct btree *bt);

/* Free every node.  The tree is empty afterwards and may be reused. */
void btree_destroy(struct btree *bt);

/*
 * Insert the record @key -> @val (BTREE_VAL_SIZE bytes), replacing the
 * value if @key is present.  Returns 0, or -ENOMEM (the tree is unchanged).
 */
int btree_put(struct btree *bt, uint64_t key, const void *val);

/* Delete the record with @key.  Returns 0, or -ENOENT if it is absent. */
int btree_delete(struct btree *bt, uint64_t key);

/*
 * Position @cur at the record with the greatest key <= @key (seek_le) or
 * the least key >= @key (seek_ge).  Return false, leaving @cur invalid,
 * when there is no such record.
 */
bool btree_seek_le(const struct btree *bt, uint64_t key,
		   struct btree_cursor *cur);
bool btree_seek_ge(const struct btree *bt, uint64_t key,
		   struct btree_cursor *cur);

/* Position @cur at the first record.  False when the tree is empty. */
bool btree_first(const struct btree *bt, struct btree_cursor *cur);

/* Step @cur to the next / previous record.  False past either end. */
bool btree_next(struct btree_cursor *cur);
bool btree_prev(struct btree_cursor *cur);

/* The key, and a pointer to the value, of the record under @cur. */
uint64_t btree_key(const struct btree_cursor *cur);
void *btree_val(const struct btree_cursor *cur);

#endif
