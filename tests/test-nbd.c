/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The plugin in a real nbdkit, through libnbd: every NBD command and flag
 * against a model of the export's content.
 *
 * One server serves a 64M volume made with create=true.  A model buffer
 * holds what every byte must read; each write, zero and trim changes both.
 * Writes and reads of any size at odd offsets cross block (4K) and page
 * (64K) boundaries; block status is checked after writes, zeroes with and
 * without NO_HOLE, and trims, with and without REQ_ONE; two connections see
 * each other's flushed writes, and four write, zero, trim and read in
 * parallel.  Then the server is restarted (stopped
 * cleanly, and killed with SIGKILL after FUA requests and a flush) and
 * the content checked again, and a readonly=true server serves the volume
 * next to it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "model.h"
#include "nbd-server.h"

#define SIZE (UINT64_C(64) << 20)
#define BS 4096u		/* the volume's block size (the default) */
#define PAGE (64u << 10)	/* the page cache's page size (default) */
#define CHUNK (4u << 20)	/* reads of the whole export */
#define STATUS_REGION (UINT64_C(16) << 20)	/* block status tests */
#define RANDOM_WINDOW (UINT64_C(2) << 20)	/* random ops: here .. */
#define TAIL_WINDOW (UINT64_C(256) << 10)	/* .. and at the end */

static struct server srv;
static struct nbd_handle *h;	/* the connection most tests use */
static unsigned char *model;	/* what the export must read */
static char dir_arg[128];
static const char *vol_args[] = { dir_arg, "create=true", "size=64M", NULL };

/* Check a libnbd call's result; print its error if it failed. */
static bool ok(int64_t r)
{
	if (r == -1)
		fprintf(stderr, "libnbd: %s (errno %d)\n", nbd_get_error(),
			nbd_get_errno());
	return r != -1;
}

/* Connect to @s, asking for block status (base:allocation). */
static struct nbd_handle *open_handle(struct server *s)
{
	struct nbd_handle *nh = nbd_create();

	if (nh &&
	    ok(nbd_add_meta_context(nh, LIBNBD_CONTEXT_BASE_ALLOCATION)) &&
	    ok(nbd_connect_unix(nh, s->sock)))
		return nh;
	nbd_close(nh);
	return NULL;
}

/* Does [@off, @off + @len) of the export read as the model says? */
static bool same_as_model(struct nbd_handle *nh, uint64_t off, uint64_t len)
{
	unsigned char *buf = malloc(CHUNK);
	uint64_t done, n, i;
	bool same = buf != NULL;

	for (done = 0; same && done < len; done += n) {
		n = len - done < CHUNK ? len - done : CHUNK;
		same = ok(nbd_pread(nh, buf, n, off + done, 0));
		for (i = 0; same && i < n; i++)
			same = buf[i] == model[off + done + i];
		if (!same && i)
			fprintf(stderr, "byte %llu: read %#x, model %#x\n",
				(unsigned long long)(off + done + i - 1),
				buf[i - 1], model[off + done + i - 1]);
	}
	free(buf);
	return same;
}

/* Fill @buf with bytes of @r; never all zeros, so data shows. */
static void fill(struct rng *r, unsigned char *buf, uint64_t len)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(rng_next(r) | 1);
}

/* Write @len new bytes at @off with @flags, in the model too. */
static bool m_write(struct nbd_handle *nh, struct rng *r, uint64_t off,
		    uint64_t len, uint32_t flags)
{
	fill(r, model + off, len);
	return ok(nbd_pwrite(nh, model + off, len, off, flags));
}

/* Write zeroes over [@off, @off + @len) with @flags. */
static bool m_zero(struct nbd_handle *nh, uint64_t off, uint64_t len,
		   uint32_t flags)
{
	memset(model + off, 0, len);
	return ok(nbd_zero(nh, len, off, flags));
}

/* Trim: the whole blocks inside the range read as zeros, the edges stay. */
static bool m_trim(struct nbd_handle *nh, uint64_t off, uint64_t len,
		   uint32_t flags)
{
	uint64_t first = (off + BS - 1) / BS * BS, end = (off + len) / BS * BS;

	if (first < end)
		memset(model + first, 0, end - first);
	return ok(nbd_trim(nh, len, off, flags));
}

/* Block status as the server answered it: the runs of base:allocation. */
struct status {
	size_t n;
	uint64_t len[64];
	uint32_t flags[64];
};

static int status_cb(void *arg, const char *context, uint64_t offset,
		     uint32_t *entries, size_t nr_entries, int *error)
{
	struct status *st = arg;
	size_t i;

	if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
		return 0;
	for (i = 0; i + 1 < nr_entries && st->n < 64; i += 2) {
		st->len[st->n] = entries[i];
		st->flags[st->n++] = entries[i + 1];
	}
	return 0;
}

/* Ask for the block status of [@off, @off + @len) with @flags. */
static bool get_status(uint64_t off, uint64_t len, uint32_t flags,
		       struct status *st)
{
	nbd_extent_callback cb = { .callback = status_cb, .user_data = st };

	memset(st, 0, sizeof *st);
	return ok(nbd_block_status(h, len, off, cb, flags));
}

/* Is [@off, @off + @len) one run with the NBD state @flags? */
static bool one_run(uint64_t off, uint64_t len, uint32_t flags)
{
	struct status st;

	if (!get_status(off, len, 0, &st))
		return false;
	if (st.n >= 1 && st.len[0] >= len && st.flags[0] == flags)
		return true;
	fprintf(stderr, "status at %llu: %zu runs, first %llu bytes %#x, "
		"expected %llu bytes %#x\n", (unsigned long long)off, st.n,
		(unsigned long long)(st.n ? st.len[0] : 0),
		st.n ? st.flags[0] : 0, (unsigned long long)len, flags);
	return false;
}

/* ---- what the server advertises ---- */

static void test_flags(void)
{
	CU_ASSERT_EQUAL(nbd_get_size(h), (int64_t)SIZE);
	CU_ASSERT_EQUAL(nbd_is_read_only(h), 0);
	CU_ASSERT_EQUAL(nbd_can_flush(h), 1);
	CU_ASSERT_EQUAL(nbd_can_fua(h), 1);
	CU_ASSERT_EQUAL(nbd_can_trim(h), 1);
	CU_ASSERT_EQUAL(nbd_can_zero(h), 1);
	CU_ASSERT_EQUAL(nbd_can_fast_zero(h), 1);
	CU_ASSERT_EQUAL(nbd_can_cache(h), 1);
	CU_ASSERT_EQUAL(nbd_can_multi_conn(h), 1);
	CU_ASSERT_EQUAL(nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION),
			1);
	CU_ASSERT_EQUAL(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM), 1);
	CU_ASSERT_EQUAL(nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED), BS);
	CU_ASSERT_EQUAL(nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM), 32 << 20);
}

/* ---- data: unaligned, small and large ---- */

/* Single bytes and short runs on both sides of block and page edges. */
static void test_unaligned_bytes(void)
{
	static const uint64_t edges[] = { BS, 3 * BS, PAGE, 5 * PAGE,
					  PAGE + BS, SIZE - BS, SIZE - PAGE };
	struct rng r = { 7 };
	unsigned char byte;
	size_t i;
	int d;

	for (i = 0; i < sizeof edges / sizeof edges[0]; i++) {
		for (d = -3; d <= 2; d++)
			CU_ASSERT(m_write(h, &r, edges[i] + d, 1, 0));
		CU_ASSERT(m_write(h, &r, edges[i] - 1, 3, 0));
		for (d = -3; d <= 2; d++) {
			CU_ASSERT(ok(nbd_pread(h, &byte, 1, edges[i] + d, 0)));
			CU_ASSERT_EQUAL(byte, model[edges[i] + d]);
		}
		CU_ASSERT(same_as_model(h, edges[i] - BS, 2 * BS));
	}
	CU_ASSERT(m_write(h, &r, SIZE - 1, 1, 0));	/* the last byte */
	CU_ASSERT(same_as_model(h, SIZE - 2 * PAGE, 2 * PAGE));
}

/* Requests as large as the server takes (32M), unaligned. */
static void test_large(void)
{
	struct rng r = { 11 };

	CU_ASSERT(m_write(h, &r, (UINT64_C(24) << 20) + 17, 32 << 20, 0));
	CU_ASSERT(same_as_model(h, UINT64_C(24) << 20, 33 << 20));
	CU_ASSERT(m_zero(h, (UINT64_C(24) << 20) + 17, 32 << 20, 0));
	CU_ASSERT(same_as_model(h, UINT64_C(24) << 20, 33 << 20));
}

/* A random offset near a block or page edge inside the windows. */
static uint64_t random_offset(struct rng *r)
{
	uint64_t unit = rng_below(r, 2) ? BS : PAGE;
	uint64_t base = rng_below(r, 4) ? 0 : SIZE - TAIL_WINDOW;
	uint64_t span = base ? TAIL_WINDOW : RANDOM_WINDOW;
	uint64_t off = base + rng_below(r, span / unit) * unit;

	off += rng_below(r, 7);
	return off >= 3 ? off - 3 : off;
}

/* A random length: tiny, about a block, about a page, or more. */
static uint64_t random_length(struct rng *r, uint64_t off)
{
	static const uint64_t lens[] = { 1, 2, 3, BS - 1, BS, BS + 1,
					 PAGE - 1, PAGE, PAGE + 3 };
	uint64_t len = rng_below(r, 4) ? lens[rng_below(r, 9)]
				       : 1 + rng_below(r, 3 * PAGE);

	return len > SIZE - off ? SIZE - off : len;
}

/* One random request of every kind, checked against the model. */
static bool random_op(struct rng *r)
{
	static const uint32_t zero_flags[] = {
		0, LIBNBD_CMD_FLAG_NO_HOLE, LIBNBD_CMD_FLAG_FAST_ZERO,
		LIBNBD_CMD_FLAG_FUA,
		LIBNBD_CMD_FLAG_NO_HOLE | LIBNBD_CMD_FLAG_FAST_ZERO,
	};
	uint64_t off = random_offset(r), len = random_length(r, off);
	uint64_t lo = off > PAGE ? off - PAGE : 0;
	uint64_t hi = off + len + PAGE < SIZE ? off + len + PAGE : SIZE;
	unsigned int op = (unsigned int)rng_below(r, 20);
	bool done;

	if (op < 9)
		done = m_write(h, r, off, len, 0);
	else if (op < 10)
		done = m_write(h, r, off, len, LIBNBD_CMD_FLAG_FUA);
	else if (op < 13)
		done = m_zero(h, off, len, zero_flags[rng_below(r, 5)]);
	else if (op < 15)
		done = m_trim(h, off, len,
			      rng_below(r, 2) ? 0 : LIBNBD_CMD_FLAG_FUA);
	else if (op < 16)
		done = ok(nbd_flush(h, 0));
	else if (op < 17)
		done = ok(nbd_cache(h, len, off, 0));
	else
		done = true;	/* just read */
	return done && same_as_model(h, lo, hi - lo);
}

static int random_ops(uint64_t seed)
{
	struct rng r = { seed };
	unsigned long i, n = model_ops(600);

	for (i = 0; i < n; i++)
		if (!random_op(&r)) {
			fprintf(stderr, "random op %lu failed\n", i);
			return 1;
		}
	return 0;
}

static void test_random(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("nbd random ops", random_ops), 0);
}

/* ---- FUA, flush, cache ---- */

static void test_fua_flush_cache(void)
{
	struct rng r = { 13 };
	uint64_t off = UINT64_C(20) << 20;

	CU_ASSERT(m_write(h, &r, off + 1, PAGE, LIBNBD_CMD_FLAG_FUA));
	CU_ASSERT(m_write(h, &r, off + 2 * PAGE, 5, LIBNBD_CMD_FLAG_FUA));
	CU_ASSERT(ok(nbd_flush(h, 0)));
	CU_ASSERT(m_trim(h, off + 3, BS * 4, LIBNBD_CMD_FLAG_FUA));
	CU_ASSERT(m_zero(h, off + PAGE, BS, LIBNBD_CMD_FLAG_FUA));
	CU_ASSERT(ok(nbd_cache(h, 3 * PAGE, off, 0)));
	CU_ASSERT(ok(nbd_cache(h, 1, SIZE - 1, 0)));
	CU_ASSERT(ok(nbd_cache(h, 32 << 20, 0, 0)));
	CU_ASSERT(same_as_model(h, off, 3 * PAGE));
}

/* ---- block status ---- */

/* Writes are data; zeroes are holes, or with NO_HOLE unwritten zeros. */
static void test_status_zero_trim(void)
{
	struct rng r = { 17 };
	uint64_t off = STATUS_REGION, len = PAGE;

	CU_ASSERT(one_run(off, len, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO));
	CU_ASSERT(m_write(h, &r, off, len, 0));
	CU_ASSERT(one_run(off, len, 0));
	CU_ASSERT(ok(nbd_flush(h, 0)));
	CU_ASSERT(one_run(off, len, 0));
	CU_ASSERT(m_zero(h, off, len, 0));
	CU_ASSERT(one_run(off, len, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO));
	CU_ASSERT(m_write(h, &r, off, len, 0));
	CU_ASSERT(m_zero(h, off, len, LIBNBD_CMD_FLAG_NO_HOLE));
	CU_ASSERT(one_run(off, len, LIBNBD_STATE_ZERO));
	CU_ASSERT(ok(nbd_flush(h, 0)));
	CU_ASSERT(one_run(off, len, LIBNBD_STATE_ZERO));
	CU_ASSERT(m_zero(h, off, len,
			 LIBNBD_CMD_FLAG_NO_HOLE | LIBNBD_CMD_FLAG_FAST_ZERO));
	CU_ASSERT(one_run(off, len, LIBNBD_STATE_ZERO));
	CU_ASSERT(m_trim(h, off, len, LIBNBD_CMD_FLAG_FUA));
	CU_ASSERT(one_run(off, len, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO));
	CU_ASSERT(m_zero(h, off, len, LIBNBD_CMD_FLAG_FAST_ZERO));
	CU_ASSERT(one_run(off, len, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO));
	CU_ASSERT(same_as_model(h, off, len));
}

/* Runs of different states, all of them or the first (REQ_ONE). */
static void test_status_runs(void)
{
	struct rng r = { 19 };
	uint64_t off = STATUS_REGION + 2 * PAGE;
	struct status st;

	/* [unwritten 5 blocks][data 1 block][unwritten 10 blocks] */
	CU_ASSERT(m_zero(h, off, 16 * BS, LIBNBD_CMD_FLAG_NO_HOLE));
	CU_ASSERT(m_write(h, &r, off + 5 * BS + 100, 1, 0));
	CU_ASSERT(get_status(off, 16 * BS, 0, &st));
	CU_ASSERT_EQUAL_FATAL(st.n, 3);
	CU_ASSERT_EQUAL(st.len[0], 5 * BS);
	CU_ASSERT_EQUAL(st.flags[0], LIBNBD_STATE_ZERO);
	CU_ASSERT_EQUAL(st.len[1], BS);
	CU_ASSERT_EQUAL(st.flags[1], 0);
	CU_ASSERT_EQUAL(st.len[2], 10 * BS);
	CU_ASSERT_EQUAL(st.flags[2], LIBNBD_STATE_ZERO);
	CU_ASSERT(get_status(off, 16 * BS, LIBNBD_CMD_FLAG_REQ_ONE, &st));
	CU_ASSERT_EQUAL(st.n, 1);
	CU_ASSERT_EQUAL(st.len[0], 5 * BS);
	CU_ASSERT_EQUAL(st.flags[0], LIBNBD_STATE_ZERO);

	/* [data][hole][data], block by block */
	off += PAGE;
	CU_ASSERT(m_write(h, &r, off, BS, 0));
	CU_ASSERT(m_write(h, &r, off + 2 * BS, BS, 0));
	CU_ASSERT(get_status(off, 3 * BS, 0, &st));
	CU_ASSERT_EQUAL_FATAL(st.n, 3);
	CU_ASSERT_EQUAL(st.flags[0], 0);
	CU_ASSERT_EQUAL(st.flags[1], LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO);
	CU_ASSERT_EQUAL(st.flags[2], 0);
	CU_ASSERT(get_status(off, 3 * BS, LIBNBD_CMD_FLAG_REQ_ONE, &st));
	CU_ASSERT_EQUAL(st.n, 1);
	CU_ASSERT_EQUAL(st.len[0], BS);
	CU_ASSERT_EQUAL(st.flags[0], 0);
	CU_ASSERT(same_as_model(h, off - PAGE, 2 * PAGE));
}

/* ---- several connections ---- */

static void test_multi_conn(void)
{
	struct nbd_handle *h2 = open_handle(&srv);
	struct rng r = { 23 };
	uint64_t off = UINT64_C(40) << 20;

	CU_ASSERT_PTR_NOT_NULL_FATAL(h2);
	CU_ASSERT(m_write(h, &r, off + 5, 3 * PAGE, 0));
	CU_ASSERT(ok(nbd_flush(h, 0)));
	CU_ASSERT(same_as_model(h2, off, 4 * PAGE));
	CU_ASSERT(m_write(h2, &r, off + PAGE - 1, 2, 0));
	CU_ASSERT(m_trim(h2, off + 2 * PAGE, PAGE, 0));
	CU_ASSERT(ok(nbd_flush(h2, 0)));
	CU_ASSERT(same_as_model(h, off, 4 * PAGE));
	CU_ASSERT(ok(nbd_shutdown(h2, 0)));
	nbd_close(h2);
}

/*
 * Several clients at once, each with its own connection, on interleaved
 * blocks of one region: clients share pages but never blocks, so each
 * knows what its blocks must read.  Requests of all kinds run in parallel
 * in the server (PARALLEL thread model).
 */
#define CLIENTS 4
#define CLIENT_REGION (UINT64_C(52) << 20)
#define CLIENT_BLOCKS 256

struct client {
	pthread_t thread;
	unsigned int id;
	bool passed;
};

/* One request on a block of client @c at random, checked as it goes. */
static bool client_op(struct nbd_handle *nh, struct client *c, struct rng *r)
{
	uint64_t block = rng_below(r, CLIENT_BLOCKS / CLIENTS) * CLIENTS;
	uint64_t off = CLIENT_REGION + (block + c->id) * BS, len = BS;
	uint64_t skip;

	if (rng_below(r, 2)) {	/* part of the block */
		skip = rng_below(r, BS);
		off += skip;
		len = 1 + rng_below(r, BS - skip);
	}
	switch (rng_below(r, 8)) {
	case 0:
		return m_zero(nh, off, len,
			      rng_below(r, 2) ? LIBNBD_CMD_FLAG_NO_HOLE : 0);
	case 1:
		return m_trim(nh, off, len, 0);
	case 2:
		return ok(nbd_flush(nh, 0));
	case 3:
		return ok(nbd_cache(nh, len, off, 0));
	default:
		return m_write(nh, r, off, len, 0) &&
		       same_as_model(nh, off, len);
	}
}

static void *client_run(void *arg)
{
	struct client *c = arg;
	struct nbd_handle *nh = open_handle(&srv);
	struct rng r = { 100 + c->id };
	unsigned long i, n = model_ops(300);

	c->passed = nh != NULL;
	for (i = 0; i < n && c->passed; i++)
		c->passed = client_op(nh, c, &r);
	if (nh) {
		nbd_shutdown(nh, 0);
		nbd_close(nh);
	}
	return NULL;
}

static void test_parallel_clients(void)
{
	struct client c[CLIENTS];
	unsigned int i;

	for (i = 0; i < CLIENTS; i++) {
		c[i].id = i;
		c[i].passed = false;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&c[i].thread, NULL,
						     client_run, &c[i]),
				      0);
	}
	for (i = 0; i < CLIENTS; i++) {
		pthread_join(c[i].thread, NULL);
		CU_ASSERT(c[i].passed);
	}
	CU_ASSERT(ok(nbd_flush(h, 0)));
	CU_ASSERT(same_as_model(h, CLIENT_REGION, CLIENT_BLOCKS * BS));
}

/* ---- restarts ---- */

/* (Re)start the server and connect to it. */
static bool restart(void)
{
	nbd_close(h);
	h = NULL;
	if (server_start(&srv, "thinmap", vol_args) != 0)
		return false;
	h = open_handle(&srv);
	return h != NULL;
}

/* Stopped cleanly, the server writes everything back: all of it reads. */
static void test_restart(void)
{
	CU_ASSERT(ok(nbd_shutdown(h, 0)));
	CU_ASSERT(server_stop(&srv));
	CU_ASSERT_FATAL(restart());
	CU_ASSERT(same_as_model(h, 0, SIZE));
}

/*
 * Killed with SIGKILL, the server loses only what was neither flushed nor
 * FUA: each block of that reads as before or as written.
 */
static void test_kill(void)
{
	struct rng r = { 29 };
	uint64_t lost = UINT64_C(48) << 20, len = 4 * PAGE, b;
	unsigned char *old = malloc(len), *got = malloc(len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(old && got);
	CU_ASSERT(m_write(h, &r, UINT64_C(44) << 20, PAGE + 3, 0));
	CU_ASSERT(ok(nbd_flush(h, 0)));
	/* The FUA write last: nothing after it flushes it. */
	CU_ASSERT(m_zero(h, (UINT64_C(44) << 20) + 1, 7, LIBNBD_CMD_FLAG_FUA));
	CU_ASSERT(m_trim(h, UINT64_C(44) << 20, BS, LIBNBD_CMD_FLAG_FUA));
	CU_ASSERT(m_write(h, &r, (UINT64_C(45) << 20) + 1, BS,
			  LIBNBD_CMD_FLAG_FUA));
	memcpy(old, model + lost, len);
	CU_ASSERT(m_write(h, &r, lost, len, 0));	/* may be lost */
	server_kill(&srv);
	CU_ASSERT_FATAL(restart());
	CU_ASSERT(ok(nbd_pread(h, got, len, lost, 0)));
	for (b = 0; b < len; b += BS)
		CU_ASSERT(memcmp(got + b, old + b, BS) == 0 ||
			  memcmp(got + b, model + lost + b, BS) == 0);
	memcpy(model + lost, got, len);
	CU_ASSERT(same_as_model(h, 0, SIZE));
	free(old);
	free(got);
}

/* readonly=true serves the volume next to the read-write server. */
static void test_readonly(void)
{
	static const char *ro_args[] = { dir_arg, "readonly=true", NULL };
	struct server ro = { 0 };
	struct nbd_handle *hr;
	unsigned char byte = 1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT(ok(nbd_flush(h, 0)));
	CU_ASSERT_EQUAL_FATAL(server_start(&ro, "readonly", ro_args), 0);
	hr = open_handle(&ro);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hr);
	CU_ASSERT_EQUAL(nbd_is_read_only(hr), 1);
	CU_ASSERT_EQUAL(nbd_get_size(hr), (int64_t)SIZE);
	CU_ASSERT_EQUAL(nbd_pwrite(hr, &byte, 1, 0, 0), -1);
	CU_ASSERT(same_as_model(hr, 0, SIZE));
	CU_ASSERT(ok(nbd_shutdown(hr, 0)));
	nbd_close(hr);
	CU_ASSERT(server_stop(&ro));
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "advertised flags and block sizes", test_flags },
		{ "bytes across block and page edges", test_unaligned_bytes },
		{ "32M requests", test_large },
		{ "random requests against a model", test_random },
		{ "FUA, flush and cache", test_fua_flush_cache },
		{ "block status of writes, zeroes, trims",
		  test_status_zero_trim },
		{ "block status runs and REQ_ONE", test_status_runs },
		{ "two connections", test_multi_conn },
		{ "clients in parallel", test_parallel_clients },
		{ "clean restart keeps everything", test_restart },
		{ "SIGKILL keeps what was flushed", test_kill },
		{ "readonly=true next to the server", test_readonly },
		{ NULL, NULL },
	};
	int status;

	server_setup("test-nbd");
	snprintf(dir_arg, sizeof dir_arg, "dir=%s/vol", test_tmpdir);
	model = calloc(1, SIZE);
	if (!model || !restart()) {
		fprintf(stderr, "cannot start the server\n");
		return 99;
	}
	status = server_finish(&srv, h, unit_run("nbd", tests));
	free(model);
	return status;
}
