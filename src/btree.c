/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * In-memory B+tree of 64-bit keys and 16-byte values (see btree.h).
 *
 * Interior nodes hold child pointers and, for each child, a lower bound of
 * its keys: key[i] <= every key below child[i] < key[i + 1].  key[0] of a
 * node is the bound its parent holds for it (0 in the root) and is not
 * used for searching.  Bounds may be lower than the least key below them
 * (deleting the first record of a leaf does not update its ancestors);
 * they are never higher.
 *
 * Every change records the path from the root to the leaf, then fixes
 * nodes bottom up along it.  An insert allocates every node it may need
 * before it changes anything, so -ENOMEM leaves the tree as it was.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/btree.h"

#define LEAF_MAX 64
#define NODE_MAX 64
#define LEAF_MIN (LEAF_MAX / 3)
#define NODE_MIN (NODE_MAX / 3)
#define MAX_HEIGHT 16	/* 64 * 22^15 records: far beyond memory */

struct btree_leaf {
	unsigned int nr;
	struct btree_leaf *prev, *next;
	uint64_t key[LEAF_MAX];
	unsigned char val[LEAF_MAX][BTREE_VAL_SIZE];
};

struct btree_node {
	unsigned int nr;		/* children */
	uint64_t key[NODE_MAX];
	void *child[NODE_MAX];
};

/* The interior nodes from the root down to a leaf, and the slot taken. */
struct btree_path {
	unsigned int height;				/* the tree's, then */
	struct btree_node *node[MAX_HEIGHT + 1];	/* [1] above leaves */
	unsigned int slot[MAX_HEIGHT + 1];
};

void btree_init(struct btree *bt)
{
	memset(bt, 0, sizeof *bt);
}

static void free_subtree(void *n, unsigned int level)
{
	struct btree_node *node = n;
	unsigned int i;

	if (level > 0)
		for (i = 0; i < node->nr; i++)
			free_subtree(node->child[i], level - 1);
	free(n);
}

void btree_destroy(struct btree *bt)
{
	if (bt->root)
		free_subtree(bt->root, bt->height);
	btree_init(bt);
}

/* First slot whose key is >= @key (nr if none). */
static unsigned int leaf_lower_bound(const struct btree_leaf *leaf,
				     uint64_t key)
{
	unsigned int lo = 0, hi = leaf->nr;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (leaf->key[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The child whose range holds @key: the last i with i == 0 or key[i] <= key. */
static unsigned int node_slot(const struct btree_node *node, uint64_t key)
{
	unsigned int lo = 1, hi = node->nr;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (node->key[mid] <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

/* Walk from the root to the leaf whose range holds @key. */
static struct btree_leaf *descend(const struct btree *bt, uint64_t key,
				  struct btree_path *path)
{
	void *n = bt->root;
	unsigned int level;

	if (path)
		path->height = bt->height;
	for (level = bt->height; level > 0; level--) {
		struct btree_node *node = n;
		unsigned int slot = node_slot(node, key);

		if (path) {
			path->node[level] = node;
			path->slot[level] = slot;
		}
		n = node->child[slot];
	}
	return n;
}

static void leaf_insert_at(struct btree_leaf *leaf, unsigned int slot,
			   uint64_t key, const void *val)
{
	unsigned int tail = leaf->nr - slot;

	assert(leaf->nr < LEAF_MAX && slot <= leaf->nr);
	memmove(&leaf->key[slot + 1], &leaf->key[slot], tail * sizeof(uint64_t));
	memmove(leaf->val[slot + 1], leaf->val[slot], tail * BTREE_VAL_SIZE);
	leaf->key[slot] = key;
	memcpy(leaf->val[slot], val, BTREE_VAL_SIZE);
	leaf->nr++;
}

static void leaf_remove_at(struct btree_leaf *leaf, unsigned int slot)
{
	unsigned int tail = leaf->nr - slot - 1;

	memmove(&leaf->key[slot], &leaf->key[slot + 1], tail * sizeof(uint64_t));
	memmove(leaf->val[slot], leaf->val[slot + 1], tail * BTREE_VAL_SIZE);
	leaf->nr--;
}

/* Move @n records from slot @from of @src to slot @at of @dst. */
static void leaf_copy(struct btree_leaf *dst, unsigned int at,
		      const struct btree_leaf *src, unsigned int from,
		      unsigned int n)
{
	memmove(&dst->key[at], &src->key[from], n * sizeof(uint64_t));
	memmove(dst->val[at], src->val[from], n * BTREE_VAL_SIZE);
}

static void node_insert_at(struct btree_node *node, unsigned int slot,
			   uint64_t key, void *child)
{
	unsigned int tail = node->nr - slot;

	assert(node->nr < NODE_MAX && slot <= node->nr);
	memmove(&node->key[slot + 1], &node->key[slot], tail * sizeof(uint64_t));
	memmove(&node->child[slot + 1], &node->child[slot],
		tail * sizeof(void *));
	node->key[slot] = key;
	node->child[slot] = child;
	node->nr++;
}

static void node_remove_at(struct btree_node *node, unsigned int slot)
{
	unsigned int tail = node->nr - slot - 1;

	memmove(&node->key[slot], &node->key[slot + 1], tail * sizeof(uint64_t));
	memmove(&node->child[slot], &node->child[slot + 1],
		tail * sizeof(void *));
	node->nr--;
}

static void node_copy(struct btree_node *dst, unsigned int at,
		      const struct btree_node *src, unsigned int from,
		      unsigned int n)
{
	memmove(&dst->key[at], &src->key[from], n * sizeof(uint64_t));
	memmove(&dst->child[at], &src->child[from], n * sizeof(void *));
}

/*
 * Where to split a full node of @max entries for an insert at @slot:
 * the new node takes the entries from the returned index on.  Inserting
 * past the end leaves the old node (nearly) full, so records inserted in
 * ascending order fill leaves completely; inserting at the front does the
 * same the other way round; otherwise split in the middle.  Each half
 * keeps at least @edge old entries: interior nodes need two children so
 * that every child has a sibling to rebalance with.
 */
static unsigned int split_point(unsigned int slot, unsigned int max,
				unsigned int edge)
{
	if (slot == max)
		return max - edge;
	if (slot == 0)
		return edge;
	return max / 2;
}

/* Does an insert at @slot go to the left half of a split at @at? */
static bool goes_left(unsigned int slot, unsigned int at, unsigned int max)
{
	return slot < at || (slot == at && at < max);
}

/* Nodes allocated up front by an insert that must split. */
struct btree_spare {
	struct btree_leaf *leaf;
	struct btree_node *node[MAX_HEIGHT + 1];
	unsigned int nr;
};

static struct btree_node *spare_node(struct btree_spare *sp)
{
	assert(sp->nr > 0);
	return sp->node[--sp->nr];
}

static void spare_free(struct btree_spare *sp)
{
	free(sp->leaf);
	while (sp->nr > 0)
		free(sp->node[--sp->nr]);
}

/*
 * Allocate what splitting the leaf at the end of @path needs: a leaf, a
 * node for each full ancestor, and a new root if they are all full.
 */
static int spare_fill(const struct btree_path *path, struct btree_spare *sp)
{
	unsigned int level, i;

	sp->nr = 0;
	for (level = 1; level <= path->height; level++) {
		if (path->node[level]->nr < NODE_MAX)
			break;
		sp->nr++;
	}
	if (level > path->height)
		sp->nr++;
	sp->leaf = calloc(1, sizeof *sp->leaf);
	for (i = 0; i < sp->nr; i++)
		sp->node[i] = calloc(1, sizeof(struct btree_node));
	for (i = 0; i < sp->nr; i++)
		if (!sp->node[i])
			break;
	if (sp->leaf && i == sp->nr)
		return 0;
	spare_free(sp);
	return -ENOMEM;
}

/* Grow the tree by one level: a new root over @left and @right. */
static void new_root(struct btree *bt, struct btree_spare *sp, void *left,
		     uint64_t right_key, void *right)
{
	struct btree_node *root = spare_node(sp);

	bt->bytes += sizeof *root;
	root->nr = 2;
	root->key[0] = 0;
	root->child[0] = left;
	root->key[1] = right_key;
	root->child[1] = right;
	bt->root = root;
	bt->height++;
}

/*
 * Insert (@key, @child) at @slot of the full-or-not node at @level of
 * @path, splitting nodes upwards as needed.
 */
static void node_insert(struct btree *bt, struct btree_path *path,
			unsigned int level, unsigned int slot, uint64_t key,
			void *child, struct btree_spare *sp)
{
	struct btree_node *node, *right;
	unsigned int at;

	if (level > path->height) {
		new_root(bt, sp, bt->root, key, child);
		return;
	}
	node = path->node[level];
	if (node->nr < NODE_MAX) {
		node_insert_at(node, slot, key, child);
		return;
	}
	right = spare_node(sp);
	bt->bytes += sizeof *right;
	at = split_point(slot, NODE_MAX, 1);
	node_copy(right, 0, node, at, NODE_MAX - at);
	right->nr = NODE_MAX - at;
	node->nr = at;
	if (goes_left(slot, at, NODE_MAX))
		node_insert_at(node, slot, key, child);
	else
		node_insert_at(right, slot - at, key, child);
	node_insert(bt, path, level + 1, path->slot[level + 1] + 1,
		    right->key[0], right, sp);
}

/* Split the full @leaf to insert (@key, @val) at @slot. */
static void leaf_split_insert(struct btree *bt, struct btree_path *path,
			      struct btree_leaf *leaf, unsigned int slot,
			      uint64_t key, const void *val,
			      struct btree_spare *sp)
{
	struct btree_leaf *right = sp->leaf;
	unsigned int at = split_point(slot, LEAF_MAX, 0);

	sp->leaf = NULL;
	bt->bytes += sizeof *right;
	leaf_copy(right, 0, leaf, at, LEAF_MAX - at);
	right->nr = LEAF_MAX - at;
	leaf->nr = at;
	right->prev = leaf;
	right->next = leaf->next;
	if (leaf->next)
		leaf->next->prev = right;
	leaf->next = right;
	if (goes_left(slot, at, LEAF_MAX))
		leaf_insert_at(leaf, slot, key, val);
	else
		leaf_insert_at(right, slot - at, key, val);
	node_insert(bt, path, 1, path->slot[1] + 1, right->key[0], right, sp);
}

static int put_first(struct btree *bt, uint64_t key, const void *val)
{
	struct btree_leaf *leaf = calloc(1, sizeof *leaf);

	if (!leaf)
		return -ENOMEM;
	bt->bytes += sizeof *leaf;
	leaf_insert_at(leaf, 0, key, val);
	bt->root = leaf;
	bt->height = 0;
	bt->count = 1;
	return 0;
}

/* Insert (@key, @val), absent from the tree, where the leaf is full. */
static int put_split(struct btree *bt, uint64_t key, const void *val)
{
	struct btree_path path;
	struct btree_spare spare;
	struct btree_leaf *leaf;
	int err;

	leaf = descend(bt, key, &path);
	err = spare_fill(&path, &spare);
	if (err)
		return err;
	leaf_split_insert(bt, &path, leaf, leaf_lower_bound(leaf, key), key,
			  val, &spare);
	assert(!spare.leaf && spare.nr == 0);
	bt->count++;
	return 0;
}

int btree_put(struct btree *bt, uint64_t key, const void *val)
{
	struct btree_leaf *leaf;
	unsigned int slot;

	if (!bt->root)
		return put_first(bt, key, val);
	leaf = descend(bt, key, NULL);
	slot = leaf_lower_bound(leaf, key);
	if (slot < leaf->nr && leaf->key[slot] == key) {
		memcpy(leaf->val[slot], val, BTREE_VAL_SIZE);
		return 0;
	}
	if (leaf->nr == LEAF_MAX)
		return put_split(bt, key, val);
	leaf_insert_at(leaf, slot, key, val);
	bt->count++;
	return 0;
}

static void leaf_unlink(struct btree *bt, struct btree_leaf *leaf)
{
	if (leaf->prev)
		leaf->prev->next = leaf->next;
	if (leaf->next)
		leaf->next->prev = leaf->prev;
	bt->bytes -= sizeof *leaf;
	free(leaf);
}

/*
 * Rebalance the leaves @a and @b, adjacent children of @parent with @b at
 * slot @j: merge them if they fit in one (freeing @b), else share the
 * records evenly.
 */
static void leaf_rebalance(struct btree *bt, struct btree_node *parent,
			   unsigned int j, struct btree_leaf *a,
			   struct btree_leaf *b)
{
	unsigned int total = a->nr + b->nr, want = total / 2, n;

	if (total <= LEAF_MAX) {
		leaf_copy(a, a->nr, b, 0, b->nr);
		a->nr = total;
		leaf_unlink(bt, b);
		node_remove_at(parent, j);
		return;
	}
	if (a->nr < want) {		/* move b's first records to a */
		n = want - a->nr;
		leaf_copy(a, a->nr, b, 0, n);
		a->nr += n;
		leaf_copy(b, 0, b, n, b->nr - n);	/* overlapping: forward */
		b->nr -= n;
	} else {			/* move a's last records to b */
		n = a->nr - want;
		memmove(&b->key[n], &b->key[0], b->nr * sizeof(uint64_t));
		memmove(b->val[n], b->val[0], b->nr * BTREE_VAL_SIZE);
		leaf_copy(b, 0, a, want, n);
		b->nr += n;
		a->nr = want;
	}
	parent->key[j] = b->key[0];
}

/* As leaf_rebalance(), for interior nodes. */
static void node_rebalance(struct btree *bt, struct btree_node *parent,
			   unsigned int j, struct btree_node *a,
			   struct btree_node *b)
{
	unsigned int total = a->nr + b->nr, want = total / 2, n;

	b->key[0] = parent->key[j];
	if (total <= NODE_MAX) {
		node_copy(a, a->nr, b, 0, b->nr);
		a->nr = total;
		bt->bytes -= sizeof *b;
		free(b);
		node_remove_at(parent, j);
		return;
	}
	if (a->nr < want) {
		n = want - a->nr;
		node_copy(a, a->nr, b, 0, n);
		a->nr += n;
		memmove(&b->key[0], &b->key[n], (b->nr - n) * sizeof(uint64_t));
		memmove(&b->child[0], &b->child[n], (b->nr - n) * sizeof(void *));
		b->nr -= n;
	} else {
		n = a->nr - want;
		memmove(&b->key[n], &b->key[0], b->nr * sizeof(uint64_t));
		memmove(&b->child[n], &b->child[0], b->nr * sizeof(void *));
		node_copy(b, 0, a, want, n);
		b->nr += n;
		a->nr = want;
	}
	parent->key[j] = b->key[0];
}

/*
 * The child at @level of @path is underfull: rebalance it with a sibling
 * (the left one if it has one).
 */
static void rebalance(struct btree *bt, struct btree_path *path,
		      unsigned int level)
{
	struct btree_node *parent = path->node[level + 1];
	unsigned int s = path->slot[level + 1];
	unsigned int j = s > 0 ? s : s + 1;	/* slot of the right one */

	if (level == 0)
		leaf_rebalance(bt, parent, j, parent->child[j - 1],
			       parent->child[j]);
	else
		node_rebalance(bt, parent, j, parent->child[j - 1],
			       parent->child[j]);
}

/* A root with one child gives way to that child. */
static void shrink_root(struct btree *bt)
{
	struct btree_node *root = bt->root;

	while (bt->height > 0 && root->nr == 1) {
		bt->root = root->child[0];
		bt->height--;
		bt->bytes -= sizeof *root;
		free(root);
		root = bt->root;
	}
}

static bool underfull(const struct btree_path *path,
		      const struct btree_leaf *leaf, unsigned int level)
{
	if (level == 0)
		return leaf->nr < LEAF_MIN;
	return path->node[level]->nr < NODE_MIN;
}

int btree_delete(struct btree *bt, uint64_t key)
{
	struct btree_path path;
	struct btree_leaf *leaf;
	unsigned int slot, level;

	if (!bt->root)
		return -ENOENT;
	leaf = descend(bt, key, &path);
	slot = leaf_lower_bound(leaf, key);
	if (slot == leaf->nr || leaf->key[slot] != key)
		return -ENOENT;
	leaf_remove_at(leaf, slot);
	bt->count--;
	if (bt->count == 0) {
		btree_destroy(bt);
		return 0;
	}
	for (level = 0; level < path.height; level++) {
		if (!underfull(&path, leaf, level))
			break;
		rebalance(bt, &path, level);
	}
	shrink_root(bt);
	return 0;
}

bool btree_seek_ge(const struct btree *bt, uint64_t key,
		   struct btree_cursor *cur)
{
	if (!bt->root)
		return false;
	cur->leaf = descend(bt, key, NULL);
	cur->slot = leaf_lower_bound(cur->leaf, key);
	if (cur->slot < cur->leaf->nr)
		return true;
	cur->slot = cur->leaf->nr - 1;
	return btree_next(cur);
}

bool btree_seek_le(const struct btree *bt, uint64_t key,
		   struct btree_cursor *cur)
{
	unsigned int slot;

	if (!bt->root)
		return false;
	cur->leaf = descend(bt, key, NULL);
	slot = leaf_lower_bound(cur->leaf, key);
	if (slot < cur->leaf->nr && cur->leaf->key[slot] == key) {
		cur->slot = slot;
		return true;
	}
	cur->slot = slot;
	return btree_prev(cur);
}

bool btree_first(const struct btree *bt, struct btree_cursor *cur)
{
	return btree_seek_ge(bt, 0, cur);
}

bool btree_next(struct btree_cursor *cur)
{
	if (cur->slot + 1 < cur->leaf->nr) {
		cur->slot++;
		return true;
	}
	if (!cur->leaf->next)
		return false;
	cur->leaf = cur->leaf->next;
	cur->slot = 0;
	return true;
}

bool btree_prev(struct btree_cursor *cur)
{
	if (cur->slot > 0) {
		cur->slot--;
		return true;
	}
	if (!cur->leaf->prev)
		return false;
	cur->leaf = cur->leaf->prev;
	cur->slot = cur->leaf->nr - 1;
	return true;
}

uint64_t btree_key(const struct btree_cursor *cur)
{
	return cur->leaf->key[cur->slot];
}

void *btree_val(const struct btree_cursor *cur)
{
	return cur->leaf->val[cur->slot];
}
