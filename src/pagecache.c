/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page cache (see pagecache.h): a hash of folios by index, an LRU of
 * clean unreferenced folios, and a list of dirty ones.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "thinmap/error.h"
#include "thinmap/pagecache.h"

enum {
	FOLIO_LIST_NONE,	/* held, clean */
	FOLIO_LIST_LRU,		/* unreferenced, clean */
	FOLIO_LIST_DIRTY,	/* has dirty blocks */
	FOLIO_LIST_FREE,	/* unreferenced, empty, not in the index */
};

/* ---- bitmaps ---- */

unsigned int block_find(const uint64_t *map, unsigned int from,
			unsigned int end, bool set)
{
	while (from < end) {
		uint64_t word = set ? map[from / 64] : ~map[from / 64];

		word &= ~UINT64_C(0) << (from % 64);
		if (word) {
			from = (from & ~63u) + (unsigned int)__builtin_ctzll(word);
			return from < end ? from : end;
		}
		from = (from | 63) + 1;
	}
	return end;
}

/* The bits of [@first, @end) that fall in word @w of a bitmap. */
static uint64_t word_mask(unsigned int w, unsigned int first, unsigned int end)
{
	unsigned int lo = first > w * 64 ? first - w * 64 : 0;
	unsigned int hi = end < (w + 1) * 64 ? end - w * 64 : 64;

	if (lo >= hi)
		return 0;
	return (hi == 64 ? ~UINT64_C(0) : (UINT64_C(1) << hi) - 1) &
	       ~((UINT64_C(1) << lo) - 1);
}

void blocks_set(uint64_t *map, unsigned int first, unsigned int n)
{
	unsigned int w;

	for (w = first / 64; w * 64 < first + n; w++)
		map[w] |= word_mask(w, first, first + n);
}

void blocks_clear(uint64_t *map, unsigned int first, unsigned int n)
{
	unsigned int w;

	for (w = first / 64; w * 64 < first + n; w++)
		map[w] &= ~word_mask(w, first, first + n);
}

static unsigned int blocks_count(const uint64_t *map, unsigned int first,
				 unsigned int n)
{
	unsigned int w, count = 0;

	for (w = first / 64; w * 64 < first + n; w++)
		count += (unsigned int)__builtin_popcountll(
			map[w] & word_mask(w, first, first + n));
	return count;
}

/* ---- lists, under the cache's lock ---- */

static void list_init(struct folio_list *l)
{
	l->head.prev = l->head.next = &l->head;
	l->count = 0;
}

static struct folio_list *list_of(struct pagecache *pc, unsigned char which)
{
	switch (which) {
	case FOLIO_LIST_LRU:
		return &pc->lru;
	case FOLIO_LIST_DIRTY:
		return &pc->dirty;
	default:
		return &pc->free;
	}
}

static void list_del(struct pagecache *pc, struct folio *folio)
{
	if (folio->list == FOLIO_LIST_NONE)
		return;
	folio->prev->next = folio->next;
	folio->next->prev = folio->prev;
	__atomic_sub_fetch(&list_of(pc, folio->list)->count, 1,
			   __ATOMIC_RELAXED);
	folio->list = FOLIO_LIST_NONE;
}

/* Move @folio to the tail of list @which (its youngest end). */
static void list_move_tail(struct pagecache *pc, struct folio *folio,
			   unsigned char which)
{
	struct folio_list *l = list_of(pc, which);

	list_del(pc, folio);
	folio->prev = l->head.prev;
	folio->next = &l->head;
	l->head.prev->next = folio;
	l->head.prev = folio;
	__atomic_add_fetch(&l->count, 1, __ATOMIC_RELAXED);
	folio->list = which;
}

/* ---- the index ---- */

static size_t hash_slot(const struct pagecache *pc, uint64_t index)
{
	return (size_t)((index * UINT64_C(0x9e3779b97f4a7c15)) >> 20) &
	       pc->hash_mask;
}

static struct folio *hash_find(const struct pagecache *pc, uint64_t index)
{
	struct folio *f = pc->hash[hash_slot(pc, index)];

	while (f && f->index != index)
		f = f->hnext;
	return f;
}

static void hash_add(struct pagecache *pc, struct folio *folio)
{
	struct folio **slot = &pc->hash[hash_slot(pc, folio->index)];

	folio->hnext = *slot;
	*slot = folio;
}

static void hash_del(struct pagecache *pc, struct folio *folio)
{
	struct folio **p = &pc->hash[hash_slot(pc, folio->index)];

	while (*p != folio)
		p = &(*p)->hnext;
	*p = folio->hnext;
}

/* ---- folio memory ---- */

/*
 * Folio data comes from chunks of 2 MiB (or one folio, if larger), which
 * live as long as the cache.  They ask for no transparent huge pages:
 * with THP "defrag=madvise" (Debian's default) a fault in a region that
 * asks for them compacts memory to find one, and zeroes it whole.
 * Measured (1 GiB cache of fresh memory, random 4 KiB writes, qd32): 6x
 * the writes per second without huge pages; sequential 1 MiB writes used
 * 40% less CPU; reads from the cache were no slower.  Nor is a chunk
 * populated when it is made: a 4 KiB write into a fresh folio then costs
 * one page, not 64 KiB of zeroed memory (64 MiB of random 4 KiB writes
 * and a flush: 0.67 s and 77 MiB of RSS, against 1.1 s and 943 MiB with
 * MAP_POPULATE, which saved 18% of the CPU of sequential writes).
 */
#define CHUNK_MIN_BYTES ((size_t)2 << 20)

static size_t chunk_bytes(const struct pagecache *pc)
{
	size_t page = (size_t)1 << pc->page_shift;

	return page > CHUNK_MIN_BYTES ? page : CHUNK_MIN_BYTES;
}

static unsigned char *chunk_new(struct pagecache *pc)
{
	size_t bytes = chunk_bytes(pc);
	unsigned char **chunks, *mem;

	chunks = realloc(pc->chunks, (pc->nr_chunks + 1) * sizeof *chunks);
	if (!chunks)
		return NULL;
	pc->chunks = chunks;
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	madvise(mem, bytes, MADV_NOHUGEPAGE);	/* a hint only */
	chunks[pc->nr_chunks++] = mem;
	pc->chunk_used = 0;
	return mem;
}

/* Memory for one more folio's data (page_size bytes, aligned to it). */
static unsigned char *folio_mem(struct pagecache *pc)
{
	size_t page = (size_t)1 << pc->page_shift;
	unsigned char *mem;

	if (pc->nr_chunks == 0 || pc->chunk_used + page > chunk_bytes(pc)) {
		if (!chunk_new(pc))
			return NULL;
	}
	mem = pc->chunks[pc->nr_chunks - 1] + pc->chunk_used;
	pc->chunk_used += page;
	return mem;
}

/* ---- folios ---- */

static struct folio *folio_alloc(struct pagecache *pc)
{
	struct folio *folio = calloc(1, sizeof *folio);

	if (!folio)
		return NULL;
	folio->data = folio_mem(pc);
	if (!folio->data) {
		free(folio);
		return NULL;
	}
	pthread_mutex_init(&folio->lock, NULL);
	pthread_cond_init(&folio->wb_done, NULL);
	pc->nr_folios++;
	return folio;
}

static void folio_free(struct folio *folio)
{
	pthread_cond_destroy(&folio->wb_done);
	pthread_mutex_destroy(&folio->lock);
	free(folio);
}

/*
 * A folio to hold a new index: an empty one, a new one while under the
 * limit, else the oldest clean unreferenced one, taken out of the index.
 * NULL with *@err set when there is none.
 */
static struct folio *folio_reclaim(struct pagecache *pc, int *err)
{
	struct folio *folio;

	if (pc->free.count > 0) {
		folio = pc->free.head.next;
		list_del(pc, folio);
		*err = 0;
		return folio;
	}
	if (pc->nr_folios < pc->max_folios) {
		folio = folio_alloc(pc);
		*err = folio ? 0 : -ENOMEM;
		return folio;
	}
	if (pc->lru.count == 0) {
		*err = -EAGAIN;
		return NULL;
	}
	folio = pc->lru.head.next;
	list_del(pc, folio);
	hash_del(pc, folio);
	memset(folio->uptodate, 0, sizeof folio->uptodate);
	assert(block_find(folio->dirty, 0, pc->blocks, true) == pc->blocks);
	return folio;
}

/* One try of folio_get(): -EAGAIN when every folio is dirty or held. */
static int folio_get_once(struct pagecache *pc, uint64_t index, bool create,
			  struct folio **foliop)
{
	struct folio *folio;
	int err = 0;

	pthread_mutex_lock(&pc->lock);
	folio = hash_find(pc, index);
	if (folio) {
		if (folio->list == FOLIO_LIST_LRU)
			list_del(pc, folio);
	} else if (!create) {
		err = -ENOENT;
	} else {
		folio = folio_reclaim(pc, &err);
		if (folio) {
			folio->index = index;
			hash_add(pc, folio);
		}
	}
	if (folio)
		folio->refcount++;
	pthread_mutex_unlock(&pc->lock);
	*foliop = folio;
	return err;
}

/* Most writeback passes a folio_get() makes before it gives up. */
#define FOLIO_GET_TRIES 8

int folio_get(struct pagecache *pc, uint64_t index, bool create,
	      struct folio **foliop)
{
	int err, tries = 0;

	while ((err = folio_get_once(pc, index, create, foliop)) == -EAGAIN &&
	       tries++ < FOLIO_GET_TRIES) {
		int wb = pc->writeback(pc->owner, PAGECACHE_WB_RECLAIM);

		if (wb)
			return wb;
	}
	return err;
}

int pagecache_balance_dirty(struct pagecache *pc)
{
	uint64_t dirty = __atomic_load_n(&pc->dirty.count, __ATOMIC_RELAXED) *
			 pc->blocks;

	if (dirty > pc->dirty_limit)
		return pc->writeback(pc->owner, PAGECACHE_WB_THROTTLE);
	if (dirty > pc->background_limit)
		return pc->writeback(pc->owner, PAGECACHE_WB_START);
	return 0;
}

/*
 * Nobody holds @folio any more: keep it on the LRU, or forget it if it
 * holds nothing (invalidated), so that the index only has folios with data.
 * Its bits are stable here: changing them takes a reference.
 */
static void folio_unused(struct pagecache *pc, struct folio *folio)
{
	if (block_find(folio->uptodate, 0, pc->blocks, true) < pc->blocks) {
		list_move_tail(pc, folio, FOLIO_LIST_LRU);
		return;
	}
	hash_del(pc, folio);
	list_move_tail(pc, folio, FOLIO_LIST_FREE);
}

void folio_put(struct pagecache *pc, struct folio *folio)
{
	pthread_mutex_lock(&pc->lock);
	assert(folio->refcount > 0);
	if (--folio->refcount == 0 && folio->list == FOLIO_LIST_NONE)
		folio_unused(pc, folio);
	pthread_mutex_unlock(&pc->lock);
}

/*
 * Account @delta dirty blocks of @folio and put it on the right list.  The
 * caller holds the folio's lock and a reference: its list is then NONE or
 * DIRTY and changes only here, so it can be read without the cache's lock,
 * which is taken only to move it.
 */
static void dirty_account(struct pagecache *pc, struct folio *folio,
			  int64_t delta)
{
	bool dirty = block_find(folio->dirty, 0, pc->blocks, true) <
		     pc->blocks;

	if (delta == 0)
		return;
	__atomic_add_fetch(&pc->dirty_blocks, (uint64_t)delta,
			   __ATOMIC_RELAXED);
	if ((folio->list == FOLIO_LIST_DIRTY) == dirty)
		return;
	pthread_mutex_lock(&pc->lock);
	if (dirty) {
		folio->dirtied_ms = pagecache_now_ms();
		list_move_tail(pc, folio, FOLIO_LIST_DIRTY);
	} else
		list_del(pc, folio);	/* held: folio_put() files it */
	pthread_mutex_unlock(&pc->lock);
}

void folio_mark_dirty(struct pagecache *pc, struct folio *folio,
		      unsigned int first, unsigned int n)
{
	unsigned int was = blocks_count(folio->dirty, first, n);

	blocks_set(folio->uptodate, first, n);
	blocks_set(folio->dirty, first, n);
	dirty_account(pc, folio, (int64_t)n - was);
}

/* Clear the dirty bits of blocks [@first, @first + @n); folio locked. */
static void folio_clear_dirty(struct pagecache *pc, struct folio *folio,
			      unsigned int first, unsigned int n)
{
	unsigned int was = blocks_count(folio->dirty, first, n);

	blocks_clear(folio->dirty, first, n);
	dirty_account(pc, folio, -(int64_t)was);
}

void folio_hold(struct pagecache *pc, struct folio *folio)
{
	pthread_mutex_lock(&pc->lock);
	folio->refcount++;
	pthread_mutex_unlock(&pc->lock);
}

void folio_start_writeback(struct pagecache *pc, struct folio *folio,
			   unsigned int first, unsigned int n)
{
	folio_clear_dirty(pc, folio, first, n);
	folio->writeback += n;
}

void folio_end_writeback(struct pagecache *pc, struct folio *folio,
			 unsigned int first, unsigned int n, int error)
{
	assert(folio->writeback >= n);
	if (error)
		folio_mark_dirty(pc, folio, first, n);
	folio->writeback -= n;
	if (folio->writeback == 0)
		pthread_cond_broadcast(&folio->wb_done);
}

void folio_wait_writeback(struct folio *folio)
{
	while (folio->writeback > 0)
		pthread_cond_wait(&folio->wb_done, &folio->lock);
}

void folio_invalidate(struct pagecache *pc, struct folio *folio,
		      unsigned int first, unsigned int n)
{
	folio_wait_writeback(folio);
	blocks_clear(folio->uptodate, first, n);
	folio_clear_dirty(pc, folio, first, n);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t pagecache_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

size_t pagecache_dirty_indices(struct pagecache *pc, uint64_t start,
			       uint64_t end, uint64_t dirtied_before,
			       uint64_t *out)
{
	struct folio *f;
	size_t n = 0;

	pthread_mutex_lock(&pc->lock);
	for (f = pc->dirty.head.next;
	     f != &pc->dirty.head && f->dirtied_ms < dirtied_before;
	     f = f->next)
		if (f->index >= start && f->index < end)
			out[n++] = f->index;
	pthread_mutex_unlock(&pc->lock);
	if (n > 1)
		qsort(out, n, sizeof *out, cmp_u64);
	return n;
}

/*
 * Sorted indices of the cached folios in [@start, @stop) into @out (room
 * for max_folios); returns how many.
 */
static size_t cached_indices(struct pagecache *pc, uint64_t start,
			     uint64_t stop, uint64_t *out)
{
	size_t i, n = 0;

	pthread_mutex_lock(&pc->lock);
	for (i = 0; i <= pc->hash_mask; i++) {
		struct folio *f;

		for (f = pc->hash[i]; f; f = f->hnext)
			if (f->index >= start && f->index < stop)
				out[n++] = f->index;
	}
	pthread_mutex_unlock(&pc->lock);
	if (n > 1)
		qsort(out, n, sizeof *out, cmp_u64);
	return n;
}

/* pagecache_walk() for the folio at @index, if it is cached. */
static int walk_one(struct pagecache *pc, uint64_t index, uint64_t first,
		    uint64_t end, pagecache_walk_fn fn, void *arg)
{
	uint64_t base = index * pc->blocks;
	unsigned int fb = first > base ? (unsigned int)(first - base) : 0;
	unsigned int fe = end - base < pc->blocks ? (unsigned int)(end - base)
						  : pc->blocks;
	struct folio *folio;
	int ret;

	if (folio_get(pc, index, false, &folio) != 0)
		return 0;
	pthread_mutex_lock(&folio->lock);
	ret = fn(pc, folio, fb, fe, arg);
	pthread_mutex_unlock(&folio->lock);
	folio_put(pc, folio);
	return ret;
}

int pagecache_walk(struct pagecache *pc, uint64_t first, uint64_t end,
		   pagecache_walk_fn fn, void *arg)
{
	uint64_t start = first / pc->blocks, stop, n, i, *idx = NULL;
	int ret = 0;

	if (first >= end)
		return 0;
	stop = (end - 1) / pc->blocks + 1;
	n = stop - start;
	if (n > pc->max_folios) {	/* long: visit only what is cached */
		idx = malloc(pc->max_folios * sizeof *idx);
		if (idx)	/* else every index: slower, still right */
			n = cached_indices(pc, start, stop, idx);
	}
	for (i = 0; i < n && !ret; i++)
		ret = walk_one(pc, idx ? idx[i] : start + i, first, end, fn,
			       arg);
	free(idx);
	return ret;
}

/* The run pagecache_data_run() is looking at: from @first to @pos so far. */
struct data_run {
	uint64_t pos;		/* next block to account for */
	bool started, data;
	uint64_t end;		/* where the run ends, once known */
};

/* Account blocks up to @to as @data; nonzero when the run ends at pos. */
static int run_extend(struct data_run *r, uint64_t to, bool data)
{
	if (!r->started) {
		r->started = true;
		r->data = data;
	} else if (data != r->data) {
		r->end = r->pos;
		return 1;
	}
	r->pos = to;
	return 0;
}

static int folio_data(struct pagecache *pc, struct folio *folio,
		      unsigned int first, unsigned int end, void *arg)
{
	struct data_run *r = arg;
	uint64_t base = folio->index * pc->blocks;
	unsigned int b = first, e;

	if (base + first > r->pos && run_extend(r, base + first, false))
		return 1;	/* uncached blocks hold no data */
	while (b < end) {
		bool up = block_test(folio->uptodate, b);

		e = block_find(folio->uptodate, b, end, !up);
		if (run_extend(r, base + e, up))
			return 1;
		b = e;
	}
	return 0;
}

uint64_t pagecache_data_run(struct pagecache *pc, uint64_t first, uint64_t end,
			    bool *data)
{
	struct data_run r = { .pos = first };

	if (!pagecache_walk(pc, first, end, folio_data, &r) &&
	    run_extend(&r, end, false) == 0)
		r.end = end;
	*data = r.data;
	return r.end;
}

uint64_t pagecache_dirty_bytes(struct pagecache *pc)
{
	return __atomic_load_n(&pc->dirty_blocks, __ATOMIC_RELAXED)
	       << pc->block_shift;
}

uint64_t pagecache_bytes(struct pagecache *pc)
{
	size_t n;

	pthread_mutex_lock(&pc->lock);
	n = pc->nr_folios;
	pthread_mutex_unlock(&pc->lock);
	return (uint64_t)n << pc->page_shift;
}

static unsigned int log2_exact(uint64_t v)
{
	return v ? (unsigned int)__builtin_ctzll(v) : 0;
}

int pagecache_init(struct pagecache *pc, uint64_t cache_size,
		   uint32_t page_size, uint32_t block_size,
		   uint64_t dirty_limit, uint64_t background_limit,
		   int (*writeback)(void *owner, enum pagecache_wb how),
		   void *owner)
{
	size_t buckets = 16;

	memset(pc, 0, sizeof *pc);
	if ((page_size & (page_size - 1)) || page_size < block_size ||
	    page_size / block_size > FOLIO_MAX_BLOCKS ||
	    cache_size < page_size) {
		tm_set_error("page-size %u must be a power of two from the "
			     "block size (%u) to 256 blocks, and no larger "
			     "than cache-size", page_size, block_size);
		return -EINVAL;
	}
	pc->page_shift = log2_exact(page_size);
	pc->block_shift = log2_exact(block_size);
	pc->blocks = page_size / block_size;
	pc->max_folios = cache_size / page_size;
	pc->dirty_limit = dirty_limit / block_size;
	pc->background_limit = background_limit / block_size;
	pc->writeback = writeback;
	pc->owner = owner;
	while (buckets < 2 * pc->max_folios)
		buckets *= 2;
	pc->hash = calloc(buckets, sizeof *pc->hash);
	if (!pc->hash)
		return -ENOMEM;
	pc->hash_mask = buckets - 1;
	pthread_mutex_init(&pc->lock, NULL);
	list_init(&pc->lru);
	list_init(&pc->dirty);
	list_init(&pc->free);
	return 0;
}

void pagecache_destroy(struct pagecache *pc)
{
	size_t i;

	if (!pc->hash)
		return;
	for (i = 0; i <= pc->hash_mask; i++) {
		while (pc->hash[i]) {
			struct folio *f = pc->hash[i];

			pc->hash[i] = f->hnext;
			assert(f->refcount == 0);
			folio_free(f);
		}
	}
	while (pc->free.count > 0) {
		struct folio *f = pc->free.head.next;

		list_del(pc, f);
		folio_free(f);
	}
	for (i = 0; i < pc->nr_chunks; i++)
		munmap(pc->chunks[i], chunk_bytes(pc));
	free(pc->chunks);
	free(pc->hash);
	pthread_mutex_destroy(&pc->lock);
	memset(pc, 0, sizeof *pc);
}
