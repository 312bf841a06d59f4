/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Durability and crash consistency (DESIGN.md, "Durability and crash
 * consistency"), and the fragmentation of random-order writes.
 *
 * Crash rounds: a forked child runs a deterministic operation sequence
 * (a pure function of seed, round and step) on a small scratch volume and
 * reports through a pipe the step of each flush or FUA operation that
 * returned 0; the parent kills it with SIGKILL at a random moment, then
 * checks the volume: it opens (the child's lock died with it), `check`
 * finds no problem, every block untouched since the last durable step
 * holds exactly what the replayed model says, and every other block holds
 * zeros or a version that some operation after that step wrote to it.
 * Every block written is stamped with (seed, round, step, block) and
 * filled with a pattern derived from the stamp, so a block's content
 * names the write that produced it and a torn or misplaced block shows.
 *
 * Fragmentation: 64 KiB writes in shuffled order over a 32 MiB range,
 * then a flush, must leave at most 2 physical runs per AG touched.
 * Scratch volumes go in $TMPDIR (default /tmp).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "thinmap/check.h"
#include "thinmap/create.h"
#include "thinmap/error.h"
#include "thinmap/extent.h"
#include "thinmap/volume.h"
#include "model.h"
#include "scratch.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)

#define BS 4096u
#define CRASH_SIZE (8 * MiB)
#define CRASH_BLOCKS (CRASH_SIZE / BS)
#define CRASH_CACHE (1 * MiB)
#define MAX_STEPS 200000u	/* steps a child runs if never killed */
#define FRESH_EVERY 8		/* rounds on one volume */
#define SEED_SECONDS 5.0	/* time box of one seed's rounds */
#define STAMP_MAGIC UINT64_C(0x7468696e64757261)	/* "thindura" */

static int call_failed(const char *what, int err)
{
	fprintf(stderr, "%s: %s (%s)\n", what, strerror(-err),
		tm_get_error());
	return -1;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- Scratch volumes ---- */

/* Create a volume in a fresh temp dir; returns the malloced path. */
static char *scratch_create(uint64_t size, uint64_t capacity)
{
	struct create_opts opts = { .size = size, .capacity = capacity,
				    .block_size = BS };

	return scratch_volume("durability", &opts, NULL);
}

/* ---- Stamps ---- */

/* Which write produced a block's content; round 0 means zeros. */
struct ver {
	uint32_t round;
	uint32_t step;
};

struct stamp {
	uint64_t magic, seed, round, step, block;
};

static uint64_t mix(uint64_t a, uint64_t b)
{
	struct rng r = { a * UINT64_C(0x9e3779b97f4a7c15) ^ b };

	return rng_next(&r);
}

/* Fill one block with the stamp (seed, @v, @block) and its pattern. */
static void stamp_fill(uint8_t *buf, uint64_t seed, struct ver v,
		       uint64_t block)
{
	struct stamp st = { STAMP_MAGIC, seed, v.round, v.step, block };
	struct rng r = { mix(mix(seed, v.round), mix(v.step, block)) };
	uint64_t *w = (uint64_t *)buf;
	size_t i;

	memcpy(buf, &st, sizeof st);
	for (i = sizeof st / 8; i < BS / 8; i++)
		w[i] = rng_next(&r);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

/*
 * Decode the block @buf read at @block: 0 and *@v (round 0 for zeros), or
 * -1 when it is no whole, valid stamp of this block (*@v as read).
 */
static int stamp_decode(const uint8_t *buf, uint64_t seed, uint64_t block,
			struct ver *v)
{
	static uint8_t want[BS];
	struct stamp st;

	memset(v, 0, sizeof *v);
	if (all_zero(buf, BS))
		return 0;
	memcpy(&st, buf, sizeof st);
	v->round = st.round;
	v->step = st.step;
	if (st.magic != STAMP_MAGIC || st.seed != seed || st.block != block)
		return -1;
	stamp_fill(want, seed, *v, block);
	return memcmp(want, buf, BS) == 0 ? 0 : -1;
}

/* ---- The child's operations: a pure function of (seed, round, step) ---- */

enum op_kind { OP_WRITE, OP_ZERO, OP_TRIM, OP_FLUSH };

struct op {
	enum op_kind kind;
	uint64_t block, nblocks;
	unsigned int flags;
};

static struct op op_at(uint64_t seed, uint32_t round, uint32_t step)
{
	struct rng r = { mix(mix(seed, round), step) };
	uint64_t pick = rng_below(&r, 100);
	struct op op = { OP_WRITE, 0, 0, 0 };

	op.nblocks = 1 + rng_below(&r, rng_below(&r, 4) == 0 ? 64 : 16);
	op.block = rng_below(&r, CRASH_BLOCKS - op.nblocks + 1);
	if (pick < 8)
		op.kind = OP_FLUSH;
	else if (pick < 16)
		op.kind = OP_ZERO;
	else if (pick < 22)
		op.kind = OP_TRIM;
	if (op.kind == OP_ZERO && rng_below(&r, 2))
		op.flags |= VOLUME_MAY_TRIM;
	if (op.kind != OP_FLUSH && rng_below(&r, 40) == 0)
		op.flags |= VOLUME_FUA;
	return op;
}

static bool op_durable(const struct op *op)
{
	return op->kind == OP_FLUSH || (op->flags & VOLUME_FUA);
}

/*
 * A request with FUA makes only itself durable (NBD's FUA), not the
 * writes before it: volume_pwrite() and volume_zero() write back and
 * commit their own range, volume_trim() commits its own unmap.  Only a
 * flush is a barrier: everything before it is durable.
 */
#define SELF_ONLY 0x80000000u

static bool op_barrier(const struct op *op)
{
	return op->kind == OP_FLUSH;
}

static bool op_covers(const struct op *op, uint64_t block)
{
	return op->kind != OP_FLUSH && block >= op->block &&
	       block < op->block + op->nblocks;
}

static const char *op_name(const struct op *op)
{
	static const char *const names[] = { "write", "zero", "trim",
					     "flush" };

	return names[op->kind];
}

/* ---- The child ---- */

struct child_ctx {
	const char *dir;
	uint64_t seed;
	uint32_t round;
	int fd;			/* the pipe's write end */
	volatile uint32_t *progress;	/* shared: step being run + 1 */
};

static int child_write(struct volume *vol, const struct child_ctx *c,
		       uint32_t step, const struct op *op, uint8_t *buf)
{
	struct ver v = { c->round, step };
	uint64_t i;

	for (i = 0; i < op->nblocks; i++)
		stamp_fill(buf + i * BS, c->seed, v, op->block + i);
	return volume_pwrite(vol, buf, op->nblocks * BS, op->block * BS,
			     op->flags & VOLUME_FUA);
}

static int child_op(struct volume *vol, const struct child_ctx *c,
		    uint32_t step, uint8_t *buf)
{
	struct op op = op_at(c->seed, c->round, step);

	switch (op.kind) {
	case OP_WRITE:
		return child_write(vol, c, step, &op, buf);
	case OP_ZERO:
		return volume_zero(vol, op.nblocks * BS, op.block * BS,
				   op.flags);
	case OP_TRIM:
		return volume_trim(vol, op.nblocks * BS, op.block * BS,
				   op.flags);
	default:
		return volume_flush(vol);
	}
}

static bool report_step(int fd, uint32_t step)
{
	return write(fd, &step, sizeof step) == sizeof step;
}

/* Run until killed; exit 0 after MAX_STEPS, 2-5 on errors. */
static void __attribute__((noreturn)) child_run(const struct child_ctx *c)
{
	struct volume_params params = { .cache_size = CRASH_CACHE };
	static uint8_t buf[64 * BS];
	struct volume *vol;
	uint32_t step;
	int err;
	struct op op;

	err = volume_open(c->dir, 0, &params, &vol);
	if (!err && c->round % 2)	/* odd rounds: with the daemon */
		err = volume_start_writeback(vol);
	if (err) {
		call_failed("child volume_open", err);
		_exit(2);
	}
	for (step = 0; step < MAX_STEPS; step++) {
		*c->progress = step + 1;
		err = child_op(vol, c, step, buf);
		op = op_at(c->seed, c->round, step);
		if (err) {
			fprintf(stderr, "child: round %u step %u %s: ",
				c->round, step, op_name(&op));
			call_failed("", err);
			_exit(3);
		}
		if (op_durable(&op) &&
		    !report_step(c->fd, op_barrier(&op) ? step
							: step | SELF_ONLY))
			_exit(4);
	}
	err = volume_close(vol);
	if (err || !report_step(c->fd, MAX_STEPS - 1))
		_exit(5);
	_exit(0);
}

/* ---- The parent ---- */

struct crash_state {
	char *dir;
	uint64_t seed;
	struct rng rng;		/* kill delays */
	struct ver *base;	/* each block's content before the round */
	struct ver *cur;	/* the model at the last durable step */
	bool *zeroed_later;	/* zeroed or trimmed after it */
	/* Written, zeroed or trimmed with FUA after it, then untouched: */
	bool *pinned;
	struct ver *pinned_ver;	/* what such a block must hold */
	uint32_t self_only[64];	/* the FUA requests reported after it */
	unsigned int n_self_only;
	volatile uint32_t *progress;
	unsigned int rounds;
	unsigned long steps, durable;	/* sums over the rounds */
	unsigned int no_flush;		/* rounds killed before any */
	unsigned int violations;
};

static void note_durable(struct crash_state *s, uint32_t step, long *last)
{
	if (!(step & SELF_ONLY)) {
		*last = step;
		s->n_self_only = 0;
	} else if (s->n_self_only < 64) {
		s->self_only[s->n_self_only++] = step & ~SELF_ONLY;
	}
}

/* Fork the child, kill it after a random delay; the last durable step. */
static int crash_child(struct crash_state *s, uint32_t round, long *last)
{
	struct child_ctx c = { s->dir, s->seed, round, -1, s->progress };
	long delay_us = (2000 + rng_below(&s->rng, 100000)) *
			(model_ops(20) < 20 ? 10 : 1);	/* valgrind */
	int fds[2], status;
	uint32_t step;
	pid_t pid;

	*last = -1;
	s->n_self_only = 0;
	*s->progress = 0;
	if (pipe(fds) != 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(fds[0]);
		c.fd = fds[1];
		child_run(&c);
	}
	close(fds[1]);
	usleep(delay_us);
	kill(pid, SIGKILL);
	while (read(fds[0], &step, sizeof step) == sizeof step)
		note_durable(s, step, last);
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	fprintf(stderr, "round %u: child failed, status 0x%x\n", round,
		status);
	return -1;
}

static void model_apply(struct ver *m, const struct op *op, uint32_t round,
			uint32_t step)
{
	uint64_t i;
	struct ver v = { round, step };

	if (op->kind == OP_FLUSH)
		return;
	for (i = op->block; i < op->block + op->nblocks; i++)
		m[i] = op->kind == OP_WRITE ? v : (struct ver){ 0, 0 };
}

/* Pin the blocks of the FUA request at @t that no later step (< @end) touches. */
static void mark_pinned(struct crash_state *s, uint32_t round, uint32_t t,
			uint32_t end)
{
	struct op fua = op_at(s->seed, round, t), op;
	uint64_t b;
	uint32_t step;

	for (b = fua.block; b < fua.block + fua.nblocks; b++) {
		s->pinned[b] = true;
		s->pinned_ver[b] = fua.kind == OP_WRITE ? (struct ver){ round, t }
							: (struct ver){ 0, 0 };
	}
	for (step = t + 1; step < end; step++) {
		op = op_at(s->seed, round, step);
		for (b = fua.block; b < fua.block + fua.nblocks; b++)
			if (op_covers(&op, b))
				s->pinned[b] = false;
	}
}

/* Build cur (the model at @last) and zeroed_later (up to @end). */
static void model_build(struct crash_state *s, uint32_t round, long last,
			uint32_t end)
{
	uint32_t step;
	uint64_t i;
	struct op op;

	memcpy(s->cur, s->base, CRASH_BLOCKS * sizeof *s->cur);
	memset(s->zeroed_later, 0, CRASH_BLOCKS * sizeof *s->zeroed_later);
	for (step = 0; (long)step <= last; step++) {
		op = op_at(s->seed, round, step);
		model_apply(s->cur, &op, round, step);
	}
	for (step = last + 1; step < end; step++) {
		op = op_at(s->seed, round, step);
		if (op.kind != OP_ZERO && op.kind != OP_TRIM)
			continue;
		for (i = op.block; i < op.block + op.nblocks; i++)
			s->zeroed_later[i] = true;
	}
	memset(s->pinned, 0, CRASH_BLOCKS * sizeof *s->pinned);
	for (i = 0; i < s->n_self_only; i++)
		mark_pinned(s, round, s->self_only[i], end);
}

static bool ver_eq(struct ver a, struct ver b)
{
	return a.round == b.round && a.step == b.step;
}

/* May block @b hold @got, given the model?  @end bounds the steps run. */
static bool block_allowed(const struct crash_state *s, uint32_t round,
			  long last, uint32_t end, uint64_t b, struct ver got)
{
	struct op op;

	if (s->pinned[b])
		return ver_eq(got, s->pinned_ver[b]);
	if (ver_eq(got, s->cur[b]))
		return true;
	if (got.round == 0)
		return s->zeroed_later[b];
	if (got.round != round || (long)got.step <= last || got.step >= end)
		return false;
	op = op_at(s->seed, round, got.step);
	return op.kind == OP_WRITE && op_covers(&op, b);
}

static void report_violation(const struct crash_state *s, uint32_t round,
			     long last, uint64_t b, struct ver got, int bad)
{
	fprintf(stderr,
		"DURABILITY: seed %llu round %u last durable step %ld: "
		"block %llu expected (round %u step %u)%s, got %s"
		"(round %u step %u)\n",
		(unsigned long long)s->seed, round, last,
		(unsigned long long)b, s->cur[b].round, s->cur[b].step,
		s->pinned[b] ? " (pinned by FUA)"
		: s->zeroed_later[b] ? " or zeros" : "",
		bad ? "NOT A STAMP OF THIS BLOCK " : "", got.round, got.step);
}

/* The history of block @b in @round: every op that touched it. */
static void report_history(const struct crash_state *s, uint32_t round,
			   long last, uint32_t end, uint64_t b)
{
	struct op op = { OP_FLUSH, 0, 0, 0 };
	uint32_t step;

	if (last >= 0)
		op = op_at(s->seed, round, last);
	fprintf(stderr, "  last durable op: step %ld %s flags 0x%x; steps "
		"run < %u; block %llu before the round: (round %u step %u)\n",
		last, op_name(&op), op.flags, end, (unsigned long long)b,
		s->base[b].round, s->base[b].step);
	for (step = 0; step < end; step++) {
		op = op_at(s->seed, round, step);
		if (op_covers(&op, b))
			fprintf(stderr, "  step %u: %s blocks %llu+%llu flags "
				"0x%x\n", step, op_name(&op),
				(unsigned long long)op.block,
				(unsigned long long)op.nblocks, op.flags);
	}
}

/* Read every block and check it against the model; update base. */
static int verify_blocks(struct crash_state *s, struct volume *vol,
			 uint32_t round, long last, uint32_t end)
{
	static uint8_t buf[64 * BS];
	uint64_t b, i;
	struct ver got;
	int err, bad, fails = 0;

	for (b = 0; b < CRASH_BLOCKS; b += 64) {
		err = volume_pread(vol, buf, sizeof buf, b * BS);
		if (err)
			return call_failed("volume_pread", err);
		for (i = 0; i < 64; i++) {
			bad = stamp_decode(buf + i * BS, s->seed, b + i, &got);
			if (!bad && block_allowed(s, round, last, end, b + i,
						  got)) {
				s->base[b + i] = got;
				continue;
			}
			if (fails < 10)
				report_violation(s, round, last, b + i, got,
						 bad);
			if (fails++ == 0)
				report_history(s, round, last, end, b + i);
		}
	}
	return fails ? -1 : 0;
}

static void check_report(void *arg, uint64_t lblk, const char *msg)
{
	fprintf(stderr, "check (round %u): lblk %llu: %s\n",
		*(uint32_t *)arg, (unsigned long long)lblk, msg);
}

static int crash_verify(struct crash_state *s, uint32_t round, long last)
{
	uint32_t end = *s->progress;
	struct check_result res;
	struct volume *vol;
	int err, ret;

	err = check_volume(s->dir, check_report, &round, &res);
	if (err)
		return call_failed("check_volume", err);
	if (res.problems) {
		fprintf(stderr, "seed %llu round %u: %llu problems\n",
			(unsigned long long)s->seed, round,
			(unsigned long long)res.problems);
		return -1;
	}
	err = volume_open(s->dir, 0, NULL, &vol);
	if (err)
		return call_failed("parent volume_open", err);
	model_build(s, round, last, end);
	ret = verify_blocks(s, vol, round, last, end);
	err = volume_close(vol);
	if (err)
		return call_failed("parent volume_close", err);
	return ret;
}

static int crash_fresh(struct crash_state *s)
{
	scratch_remove(s->dir);
	s->dir = scratch_create(CRASH_SIZE, 0);
	memset(s->base, 0, CRASH_BLOCKS * sizeof *s->base);
	return s->dir ? 0 : -1;
}

static int crash_round(struct crash_state *s, uint32_t round)
{
	long last;

	if ((round - 1) % FRESH_EVERY == 0 && crash_fresh(s) != 0)
		return -1;
	if (crash_child(s, round, &last) != 0)
		return -1;
	s->rounds++;
	s->steps += *s->progress;
	s->durable += last + 1;
	s->no_flush += last < 0;
	return crash_verify(s, round, last);
}

static unsigned int crash_rounds(void)
{
	unsigned long n = model_ops(32 * 20) / 20;

	return n < 2 ? 2 : n;
}

static bool crash_alloc(struct crash_state *s)
{
	s->base = calloc(CRASH_BLOCKS, sizeof *s->base);
	s->cur = calloc(CRASH_BLOCKS, sizeof *s->cur);
	s->zeroed_later = calloc(CRASH_BLOCKS, sizeof *s->zeroed_later);
	s->pinned = calloc(CRASH_BLOCKS, sizeof *s->pinned);
	s->pinned_ver = calloc(CRASH_BLOCKS, sizeof *s->pinned_ver);
	s->progress = mmap(NULL, sizeof *s->progress, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->progress == MAP_FAILED)
		s->progress = NULL;
	return s->base && s->cur && s->zeroed_later && s->pinned &&
	       s->pinned_ver &&
	       s->progress;
}

static void crash_free(struct crash_state *s)
{
	scratch_remove(s->dir);
	free(s->base);
	free(s->cur);
	free(s->zeroed_later);
	free(s->pinned);
	free(s->pinned_ver);
	if (s->progress)
		munmap((void *)s->progress, sizeof *s->progress);
}

static unsigned int total_rounds;

static int crash_seed(uint64_t seed)
{
	struct crash_state s = { .seed = seed, .rng = { seed } };
	unsigned int n = crash_rounds();
	double start = now_sec();
	uint32_t round;
	int ret = -1;

	if (crash_alloc(&s)) {
		for (round = 1; round <= n; round++) {
			ret = crash_round(&s, round);
			if (ret != 0 || now_sec() - start > SEED_SECONDS)
				break;
		}
	}
	total_rounds += s.rounds;
	fprintf(stderr, "seed %llu: %u rounds in %.1f s, %lu steps run, "
		"%lu durable, %u rounds with none\n",
		(unsigned long long)seed, s.rounds, now_sec() - start,
		s.steps, s.durable, s.no_flush);
	crash_free(&s);
	return ret;
}

static void test_crash(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("crash consistency", crash_seed), 0);
}

/* ---- Fragmentation ---- */

#define FRAG_SIZE (64 * MiB)
#define FRAG_START (8 * MiB)
#define FRAG_LEN (32 * MiB)
#define FRAG_CHUNK (64 * KiB)

struct frag_walk {
	uint64_t start, end;	/* logical blocks */
	uint64_t next_lblk, next_pblk;
	uint64_t covered, runs, bad;
	uint64_t ags;		/* bitmask of AGs touched */
};

static int frag_one(void *arg, const struct extent *ext)
{
	struct frag_walk *w = arg;
	struct extent e = *ext;

	if (extent_end(&e) <= w->start || e.lblk >= w->end)
		return 0;
	extent_clip(&e, e.lblk < w->start ? w->start : e.lblk,
		    extent_end(&e) > w->end ? w->end : extent_end(&e));
	if (e.state != EXT_MAPPED) {
		w->bad++;
		return 0;
	}
	if (e.lblk != w->next_lblk || e.pblk != w->next_pblk)
		w->runs++;
	w->next_lblk = extent_end(&e);
	w->next_pblk = e.pblk + e.len;
	w->covered += e.len;
	w->ags |= UINT64_C(1) << (PBLK_AG(e.pblk) & 63);
	w->ags |= UINT64_C(1) << (PBLK_AG(e.pblk + e.len - 1) & 63);
	return 0;
}

/* Fisher-Yates: @order becomes a random permutation of 0 .. @n - 1. */
static void shuffle(size_t *order, size_t n, uint64_t seed)
{
	struct rng r = { seed };
	size_t i, j, t;

	for (i = 0; i < n; i++)
		order[i] = i;
	for (i = n - 1; i > 0; i--) {
		j = rng_below(&r, i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
}

static int write_shuffled(struct volume *vol, uint64_t seed)
{
	size_t n = FRAG_LEN / FRAG_CHUNK, i;
	size_t *order = malloc(n * sizeof *order);
	uint8_t *buf = malloc(FRAG_CHUNK);
	int err = -ENOMEM;

	if (!order || !buf)
		goto out;
	memset(buf, 0xa5, FRAG_CHUNK);
	shuffle(order, n, seed);
	for (i = 0, err = 0; i < n && !err; i++)
		err = volume_pwrite(vol, buf, FRAG_CHUNK,
				    FRAG_START + order[i] * FRAG_CHUNK, 0);
out:
	free(order);
	free(buf);
	return err;
}

static int frag_seed(uint64_t seed, uint64_t cache)
{
	struct volume_params params = { .cache_size = cache };
	struct frag_walk w = { FRAG_START / BS, (FRAG_START + FRAG_LEN) / BS,
			       UINT64_MAX, UINT64_MAX, 0, 0, 0, 0 };
	char *dir = scratch_create(FRAG_SIZE, 0);
	struct volume *vol = NULL;
	int err, ret = -1;

	if (!dir)
		return -1;
	err = volume_open(dir, 0, &params, &vol);
	if (err)
		call_failed("volume_open", err);
	else if ((err = write_shuffled(vol, seed)) != 0)
		call_failed("volume_pwrite", err);
	else if ((err = volume_flush(vol)) != 0)
		call_failed("volume_flush", err);
	else if (volume_map(vol, frag_one, &w) == 0)
		ret = 0;
	if (vol && (err = volume_close(vol)) != 0)
		ret = call_failed("volume_close", err);
	fprintf(stderr, "fragmentation (cache %llu MiB): %llu runs over %d "
		"AGs, %llu of %llu blocks mapped, %llu not MAPPED\n",
		(unsigned long long)(cache >> 20), (unsigned long long)w.runs,
		__builtin_popcountll(w.ags), (unsigned long long)w.covered,
		(unsigned long long)(w.end - w.start),
		(unsigned long long)w.bad);
	if (!ret && (w.covered != w.end - w.start || w.bad ||
		     w.runs > 2 * (uint64_t)__builtin_popcountll(w.ags)))
		ret = -1;
	scratch_remove(dir);
	return ret;
}

static int frag_default_cache(uint64_t seed)
{
	return frag_seed(seed, 0);
}

static int frag_small_cache(uint64_t seed)
{
	return frag_seed(seed, 4 * MiB);
}

static void test_fragmentation(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("fragmentation", frag_default_cache),
			0);
}

/*
 * The same with a 4 MiB cache, so folios are written back (and
 * allocated) in the shuffled order under memory pressure: the allocation
 * hints (alloc_hint() in volume-iomap.c) still put every block in logical
 * order.
 */
static void test_fragmentation_pressure(void)
{
	CU_ASSERT_EQUAL(model_run_seeds("fragmentation under cache pressure",
					frag_small_cache),
			0);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "crash consistency", test_crash },
		{ "fragmentation", test_fragmentation },
		{ "fragmentation under cache pressure",
		  test_fragmentation_pressure },
		{ NULL, NULL },
	};

	return unit_run("durability", tests);
}
