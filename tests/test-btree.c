/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The B+tree against a plain array model: random puts, deletes and seeks
 * over a bounded key space, in phases that grow and shrink the tree so
 * that leaves and interior nodes split, borrow and merge at every height.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/btree.h"
#include "model.h"

struct model {
	uint64_t nkeys;
	bool *present;
	uint64_t *val;		/* first 8 bytes of each value */
	size_t count;
};

static void val_make(uint64_t v, unsigned char out[BTREE_VAL_SIZE])
{
	memset(out, 0, BTREE_VAL_SIZE);
	memcpy(out, &v, sizeof v);
	out[BTREE_VAL_SIZE - 1] = (unsigned char)~v;
}

static bool val_is(const void *val, uint64_t v)
{
	unsigned char want[BTREE_VAL_SIZE];

	val_make(v, want);
	return memcmp(val, want, BTREE_VAL_SIZE) == 0;
}

/* The least present key >= @key (or > for @strict), or nkeys. */
static uint64_t model_ge(const struct model *m, uint64_t key)
{
	while (key < m->nkeys && !m->present[key])
		key++;
	return key;
}

/* The greatest present key <= @key, or UINT64_MAX. */
static uint64_t model_le(const struct model *m, uint64_t key)
{
	if (key >= m->nkeys)
		key = m->nkeys - 1;
	for (;; key--) {
		if (m->present[key])
			return key;
		if (key == 0)
			return UINT64_MAX;
	}
}

static int check_seek(const struct btree *bt, const struct model *m,
		      uint64_t key)
{
	struct btree_cursor cur;
	uint64_t ge = model_ge(m, key), le = model_le(m, key);
	bool found;

	found = btree_seek_ge(bt, key, &cur);
	if (found != (ge < m->nkeys) ||
	    (found && (btree_key(&cur) != ge || !val_is(btree_val(&cur),
							  m->val[ge])))) {
		fprintf(stderr, "seek_ge(%llu) wrong\n", (unsigned long long)key);
		return -1;
	}
	found = btree_seek_le(bt, key, &cur);
	if (found != (le != UINT64_MAX) ||
	    (found && btree_key(&cur) != le)) {
		fprintf(stderr, "seek_le(%llu) wrong\n", (unsigned long long)key);
		return -1;
	}
	return 0;
}

/* Walk the whole tree both ways and compare it with the model. */
static int check_all(const struct btree *bt, const struct model *m)
{
	struct btree_cursor cur;
	uint64_t key = model_ge(m, 0);
	size_t n = 0;
	bool ok;

	for (ok = btree_first(bt, &cur); ok; ok = btree_next(&cur), n++) {
		if (btree_key(&cur) != key || !val_is(btree_val(&cur),
						       m->val[key])) {
			fprintf(stderr, "walk: key %llu, model %llu\n",
				(unsigned long long)btree_key(&cur),
				(unsigned long long)key);
			return -1;
		}
		key = model_ge(m, key + 1);
	}
	if (n != m->count || bt->count != m->count || key != m->nkeys) {
		fprintf(stderr, "walk: %zu records, model %zu\n", n, m->count);
		return -1;
	}
	if (n > 0 && btree_seek_le(bt, UINT64_MAX, &cur)) {
		for (ok = true; ok; ok = btree_prev(&cur))
			n--;
	}
	return n == 0 ? 0 : -1;
}

static int do_put(struct btree *bt, struct model *m, uint64_t key,
		  uint64_t v)
{
	unsigned char val[BTREE_VAL_SIZE];

	val_make(v, val);
	if (btree_put(bt, key, val) != 0)
		return -1;
	if (!m->present[key])
		m->count++;
	m->present[key] = true;
	m->val[key] = v;
	return 0;
}

static int do_delete(struct btree *bt, struct model *m, uint64_t key)
{
	int want = m->present[key] ? 0 : -ENOENT;

	if (btree_delete(bt, key) != want) {
		fprintf(stderr, "delete(%llu) != %d\n",
			(unsigned long long)key, want);
		return -1;
	}
	if (m->present[key])
		m->count--;
	m->present[key] = false;
	return 0;
}

/* One random operation; @grow_pct is the chance of a put. */
static int random_op(struct btree *bt, struct model *m, struct rng *r,
		     unsigned int grow_pct)
{
	uint64_t key = rng_below(r, m->nkeys);
	unsigned int dice = (unsigned int)rng_below(r, 100);

	if (dice < grow_pct)
		return do_put(bt, m, key, rng_next(r));
	if (dice < grow_pct + 30)
		return do_delete(bt, m, key);
	return check_seek(bt, m, key);
}

static int run_model(uint64_t seed, uint64_t nkeys)
{
	static const unsigned int phases[] = { 60, 10, 65, 5, 40 };
	struct model m = { .nkeys = nkeys };
	unsigned long i, ops = model_ops(100000);
	struct btree bt;
	struct rng r = { seed };
	unsigned int p;
	int err = 0;

	m.present = calloc(nkeys, sizeof *m.present);
	m.val = calloc(nkeys, sizeof *m.val);
	btree_init(&bt);
	for (p = 0; p < 5 && !err; p++) {
		for (i = 0; i < ops / 5 && !err; i++) {
			err = random_op(&bt, &m, &r, phases[p]);
			if (!err && i % 4096 == 0)
				err = check_all(&bt, &m);
		}
		if (!err)
			err = check_all(&bt, &m);
	}
	for (i = 0; i < nkeys && !err; i++)	/* empty it completely */
		if (m.present[i])
			err = do_delete(&bt, &m, i);
	if (!err && (bt.count != 0 || bt.bytes != 0 || bt.root)) {
		fprintf(stderr, "empty tree holds %zu bytes\n", bt.bytes);
		err = -1;
	}
	btree_destroy(&bt);
	free(m.present);
	free(m.val);
	return err;
}

static int model_small(uint64_t seed)
{
	return run_model(seed, 3000);
}

static int model_large(uint64_t seed)
{
	return run_model(seed, 300000);
}

static void test_model_small(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("btree small", model_small), 0);
}

static void test_model_large(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("btree large", model_large), 0);
}

/*
 * Records put in ascending, then descending order pack leaves: the
 * memory per record stays near the 24 bytes of key and value.
 */
static void test_ordered_fill(void)
{
	unsigned char val[BTREE_VAL_SIZE] = { 0 };
	struct btree bt;
	uint64_t k, n = model_ops(200000);

	btree_init(&bt);
	for (k = 0; k < n; k++)
		CU_ASSERT_EQUAL_FATAL(btree_put(&bt, 2 * k + 1, val), 0);
	CU_ASSERT(bt.bytes / bt.count <= 27);
	btree_destroy(&bt);
	btree_init(&bt);
	for (k = n; k > 0; k--)
		CU_ASSERT_EQUAL_FATAL(btree_put(&bt, k, val), 0);
	CU_ASSERT(bt.bytes / bt.count <= 27);
	btree_destroy(&bt);
}

/* Putting an existing key replaces its value and adds no record. */
static void test_replace(void)
{
	unsigned char a[BTREE_VAL_SIZE], b[BTREE_VAL_SIZE];
	struct btree_cursor cur;
	struct btree bt;

	val_make(1, a);
	val_make(2, b);
	btree_init(&bt);
	CU_ASSERT_EQUAL(btree_put(&bt, 7, a), 0);
	CU_ASSERT_EQUAL(btree_put(&bt, 7, b), 0);
	CU_ASSERT_EQUAL(bt.count, 1);
	CU_ASSERT(btree_seek_le(&bt, 100, &cur));
	CU_ASSERT(val_is(btree_val(&cur), 2));
	CU_ASSERT_FALSE(btree_seek_ge(&bt, 8, &cur));
	CU_ASSERT_FALSE(btree_seek_le(&bt, 6, &cur));
	CU_ASSERT_EQUAL(btree_delete(&bt, 8), -ENOENT);
	btree_destroy(&bt);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "replace", test_replace },
		{ "ordered fill", test_ordered_fill },
		{ "model, 3000 keys", test_model_small },
		{ "model, 300000 keys", test_model_large },
		{ NULL, NULL },
	};

	return unit_run("btree", tests);
}
