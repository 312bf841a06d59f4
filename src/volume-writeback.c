/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The volume's writeback: passes over the dirty folios, the commit of the
 * map changes they and trim and zero make, flush, and the writeback
 * daemon (DESIGN.md, "Durability and crash consistency").
 *
 * A pass writes back dirty folios (iomap_writepages) and commits the
 * pending records in one transaction.  Passes are asked for, not run by
 * whoever needs one: a flush asks for a flush pass (everything, then a
 * durable commit), a throttled writer for a writeback pass, and each waits
 * until a pass that began after its request has ended (but a throttled
 * writer that finds a pass under way waits only for its end).  Requests that
 * arrive together share one pass (sequence numbers), so N concurrent
 * flushes cost one pass, not N.  When the daemon runs it runs every
 * requested pass; before it starts (or without it, as in the admin tool)
 * the first waiter runs the pass for everyone.
 *
 * The daemon is one thread with a libev loop: an ev_async wakes it for
 * requests and when dirty data passes the background limit, and an
 * ev_timer every writeback-interval writes back what has been dirty for
 * longer than dirty-expire (the kernel's wb_workfn with dirty_expire and
 * dirty_writeback_centisecs).  A pass waits for its own writes in the
 * callback that runs it, so the loop needs no watcher on the ring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "thinmap/error.h"
#include "volume-impl.h"

enum pass_kind {
	PASS_EXPIRE,		/* folios dirty for longer than dirty-expire */
	PASS_WRITEBACK,		/* every dirty folio */
	PASS_FLUSH,		/* every dirty folio, then a durable commit */
};

struct wb_daemon {
	struct volume *vol;
	pthread_t thread;
	struct ev_loop *loop;
	ev_async wake;
	ev_timer timer;
	bool stop;		/* under wb_lock */
	bool background;	/* atomic: a background pass is asked for */
};

/* ---- commit ---- */

/*
 * Log @recs, the records being committed; with none, make earlier commits
 * durable.  A commit that takes the log to LOG_MAX records or more
 * checkpoints it.
 */
static int commit_records(struct volume *vol, const struct extent_vec *recs,
			  bool sync)
{
	struct meta_txn *txn;
	size_t i;
	int err;

	if (recs->n == 0)
		return sync ? meta_sync(vol->meta) : 0;
	err = meta_txn_begin(vol->meta, &txn);
	if (err)
		return err;
	for (i = 0; !err && i < recs->n; i++)
		err = meta_txn_log(txn, &recs->v[i]);
	if (!err && meta_log_records(vol->meta) + recs->n >= LOG_MAX)
		err = meta_txn_checkpoint(txn);
	if (err) {
		meta_txn_abort(txn);
		return err;
	}
	return meta_txn_commit(txn, sync);
}

/* The unmaps that made @busy busy are durable: free the blocks. */
static int free_busy(struct volume *vol, const struct extent_vec *busy)
{
	size_t i;
	int err = 0;

	for (i = 0; !err && i < busy->n; i++) {
		const struct extent *e = &busy->v[i];

		err = alloc_free(&vol->alloc, e->pblk, (uint32_t)e->len);
		if (!err && vol->discard == VOLUME_DISCARD_PUNCH)
			backing_discard(&vol->backing, PBLK_AG(e->pblk),
					(uint64_t)PBLK_AGBNO(e->pblk)
						<< vol->blkbits,
					e->len << vol->blkbits);
	}
	return err;
}

/*
 * Take a copy of the records and busy extents pending now, for a commit:
 * vol->committing and vol->freeing.  0 or -ENOMEM.
 */
static int take_pending(struct volume *vol)
{
	int err;

	vol->committing.n = vol->freeing.n = 0;
	pthread_mutex_lock(&vol->pending_lock);
	err = extent_vec_append(&vol->committing, &vol->pending);
	if (!err)
		err = extent_vec_append(&vol->freeing, &vol->busy);
	pthread_mutex_unlock(&vol->pending_lock);
	return err;
}

/* What take_pending() took is committed: it is pending no more. */
static void drop_committed(struct volume *vol)
{
	pthread_mutex_lock(&vol->pending_lock);
	extent_vec_remove_front(&vol->pending, vol->committing.n);
	extent_vec_remove_front(&vol->busy, vol->freeing.n);
	pthread_mutex_unlock(&vol->pending_lock);
}

int volume_commit(struct volume *vol, bool sync)
{
	int err = take_pending(vol);

	if (err)
		return err;
	sync = sync || vol->freeing.n > 0;
	if (vol->committing.n == 0 && !sync)
		return 0;
	err = backing_sync(&vol->backing);	/* data before mapping */
	if (!err)
		err = commit_records(vol, &vol->committing, sync);
	if (err)
		return err;
	drop_committed(vol);
	return free_busy(vol, &vol->freeing);
}

/* How many records are pending, and extents busy, now. */
static void pending_counts(struct volume *vol, size_t *n, size_t *busy)
{
	pthread_mutex_lock(&vol->pending_lock);
	*n = vol->pending.n;
	*busy = vol->busy.n;
	pthread_mutex_unlock(&vol->pending_lock);
}

bool volume_pending_full(struct volume *vol)
{
	size_t n, busy;

	pending_counts(vol, &n, &busy);
	return n >= PENDING_MAX;
}

/* ---- passes ---- */

/*
 * Does a pass of @kind commit the records of what it wrote?  Flush and
 * expire passes do.  A background pass leaves them pending, as XFS leaves
 * committed transactions in its CIL until a log force or until the CIL
 * grows too big (xlog_cil_push_background): the next flush or expire pass
 * commits them all in one transaction.  It commits anyway when too many
 * records are pending, or when busy blocks wait for a commit to be freed.
 * Until then the map in memory has the new mappings, and a crash loses
 * only unflushed writes.
 */
static bool pass_commits(struct volume *vol, enum pass_kind kind)
{
	size_t n, busy;

	if (kind != PASS_WRITEBACK)
		return true;
	pending_counts(vol, &n, &busy);
	return busy > 0 || n >= PENDING_MAX;
}

/*
 * Write back what @wbc selects and commit as a pass of @kind does:
 * durably for PASS_FLUSH.  The caller holds meta_lock.  Returns the first
 * error.
 */
static int write_and_commit(struct volume *vol,
			    const struct writeback_control *wbc,
			    enum pass_kind kind)
{
	int err = iomap_writepages(vol->wpc, wbc);
	int err2 = pass_commits(vol, kind)
			   ? volume_commit(vol, kind == PASS_FLUSH)
			   : 0;

	return err ? err : err2;
}

/*
 * One pass of @kind: write back, commit.  Takes meta_lock.  Returns the
 * pass's error; a flush pass also returns (and clears) an error kept from
 * an earlier pass, which other passes keep for it.
 */
static int writeback_pass(struct volume *vol, enum pass_kind kind)
{
	struct writeback_control wbc = { 0, UINT64_MAX, UINT64_MAX };
	uint64_t now = pagecache_now_ms();
	int err;

	if (kind == PASS_EXPIRE)
		wbc.dirtied_before = now > vol->dirty_expire_ms
					     ? now - vol->dirty_expire_ms : 0;
	pthread_mutex_lock(&vol->meta_lock);
	err = write_and_commit(vol, &wbc, kind);
	if (kind == PASS_FLUSH) {
		if (!err)
			err = vol->wb_error;
		vol->wb_error = 0;
	} else if (err && !vol->wb_error) {
		vol->wb_error = err;
	}
	pthread_mutex_unlock(&vol->meta_lock);
	if (err)
		tm_log("%s: writeback failed, the data stays dirty: %s",
		       vol->dir, strerror(-err));
	return err;
}

/*
 * Run a pass of @kind, called and returning with wb_lock held, which it
 * drops meanwhile: throttled writers see that it runs, and when it ended.
 * The caller wakes the waiters (wb_cond).  Returns the pass's result.
 */
static int run_pass(struct volume *vol, enum pass_kind kind)
{
	int err;

	vol->pass_running = true;
	pthread_mutex_unlock(&vol->wb_lock);
	err = writeback_pass(vol, kind);
	pthread_mutex_lock(&vol->wb_lock);
	vol->pass_running = false;
	vol->pass_ends++;
	return err;
}

/*
 * Run passes until every request made so far is served.  Called, and
 * returns, with wb_lock held; drops it while a pass runs.
 */
static void serve_requests(struct volume *vol)
{
	while (vol->flush_done < vol->flush_req ||
	       vol->wb_done < vol->wb_req) {
		bool flush = vol->flush_done < vol->flush_req;
		uint64_t flush_to = vol->flush_req, wb_to = vol->wb_req;
		int err = run_pass(vol, flush ? PASS_FLUSH : PASS_WRITEBACK);

		if (flush) {
			vol->flush_done = flush_to;
			vol->flush_result = err;
		}
		vol->wb_done = wb_to;	/* a flush pass writes back too */
		vol->wb_result = err;
		pthread_cond_broadcast(&vol->wb_cond);
	}
}

/*
 * Ask for a pass (a flush pass if @flush) and wait for one that began
 * after the request to end.  Returns its result.
 */
static int request_pass(struct volume *vol, bool flush)
{
	uint64_t *done = flush ? &vol->flush_done : &vol->wb_done;
	uint64_t mine;
	int err;

	pthread_mutex_lock(&vol->wb_lock);
	mine = flush ? ++vol->flush_req : ++vol->wb_req;
	if (vol->daemon)
		ev_async_send(vol->daemon->loop, &vol->daemon->wake);
	while (*done < mine) {
		if (!vol->daemon && !vol->pass_running)
			serve_requests(vol);
		else
			pthread_cond_wait(&vol->wb_cond, &vol->wb_lock);
	}
	err = flush ? vol->flush_result : vol->wb_result;
	pthread_mutex_unlock(&vol->wb_lock);
	return err;
}

int volume_writeback(struct volume *vol)
{
	return request_pass(vol, false);
}

/*
 * A writer over the dirty limit (balance_dirty_pages): wait for the end
 * of the pass under way, which has been cleaning folios since it began,
 * not for a pass of its own after it; ask for one only if none runs.
 * Returns the result of the pass asked for, or 0: an error of a pass
 * under way is kept for the next flush (writeback_pass()).
 */
static int throttle(struct volume *vol)
{
	uint64_t ends;

	pthread_mutex_lock(&vol->wb_lock);
	if (!vol->pass_running) {
		pthread_mutex_unlock(&vol->wb_lock);
		return request_pass(vol, false);
	}
	ends = vol->pass_ends;
	while (vol->pass_ends == ends)
		pthread_cond_wait(&vol->wb_cond, &vol->wb_lock);
	pthread_mutex_unlock(&vol->wb_lock);
	return 0;
}

int volume_writeback_cb(void *arg, enum pagecache_wb how)
{
	struct volume *vol = arg;
	struct wb_daemon *d;

	if (how == PAGECACHE_WB_RECLAIM)
		return request_pass(vol, false);
	if (how == PAGECACHE_WB_THROTTLE)
		return throttle(vol);
	/* Over the background limit: let the daemon know, once. */
	pthread_mutex_lock(&vol->wb_lock);
	d = vol->daemon;
	if (d && !__atomic_exchange_n(&d->background, true, __ATOMIC_ACQ_REL))
		ev_async_send(d->loop, &d->wake);
	pthread_mutex_unlock(&vol->wb_lock);
	return 0;
}

int volume_flush(struct volume *vol)
{
	if (vol->flags & VOLUME_RDONLY)
		return 0;
	return request_pass(vol, true);
}

int volume_writeback_range(struct volume *vol, uint64_t offset,
			   uint64_t count)
{
	struct writeback_control wbc = { offset, offset + count, UINT64_MAX };
	int err;

	pthread_mutex_lock(&vol->meta_lock);
	err = write_and_commit(vol, &wbc, PASS_FLUSH);
	pthread_mutex_unlock(&vol->meta_lock);
	return err;
}

/* ---- the daemon ---- */

/* A pass of the daemon's own; called with wb_lock held. */
static void daemon_pass(struct volume *vol, enum pass_kind kind)
{
	run_pass(vol, kind);
	pthread_cond_broadcast(&vol->wb_cond);
}

static void daemon_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct wb_daemon *d = w->data;
	struct volume *vol = d->vol;
	bool stop;

	pthread_mutex_lock(&vol->wb_lock);
	if (__atomic_exchange_n(&d->background, false, __ATOMIC_ACQ_REL))
		daemon_pass(vol, PASS_WRITEBACK);
	serve_requests(vol);
	stop = d->stop;
	pthread_mutex_unlock(&vol->wb_lock);
	if (stop)
		ev_break(loop, EVBREAK_ALL);
}

static void daemon_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wb_daemon *d = w->data;

	pthread_mutex_lock(&d->vol->wb_lock);
	daemon_pass(d->vol, PASS_EXPIRE);
	pthread_mutex_unlock(&d->vol->wb_lock);
}

static void *daemon_main(void *arg)
{
	struct wb_daemon *d = arg;

	ev_run(d->loop, 0);
	return NULL;
}

static void daemon_free(struct wb_daemon *d)
{
	if (d->loop)
		ev_loop_destroy(d->loop);
	free(d);
}

int volume_start_writeback(struct volume *vol)
{
	double interval = vol->writeback_interval_ms / 1000.0;
	struct wb_daemon *d;
	int err;

	if (vol->daemon || (vol->flags & VOLUME_RDONLY))
		return -EINVAL;
	d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	d->vol = vol;
	d->loop = ev_loop_new(EVFLAG_AUTO);
	if (!d->loop) {
		tm_set_error("%s: cannot create the writeback event loop",
			     vol->dir);
		daemon_free(d);
		return -ENOMEM;
	}
	ev_async_init(&d->wake, daemon_wake);
	d->wake.data = d;
	ev_async_start(d->loop, &d->wake);
	ev_timer_init(&d->timer, daemon_timer, interval, interval);
	d->timer.data = d;
	ev_timer_start(d->loop, &d->timer);
	err = pthread_create(&d->thread, NULL, daemon_main, d);
	if (err) {
		tm_set_error("%s: cannot start the writeback thread: %s",
			     vol->dir, strerror(err));
		daemon_free(d);
		return -err;
	}
	pthread_mutex_lock(&vol->wb_lock);
	vol->daemon = d;
	pthread_mutex_unlock(&vol->wb_lock);
	return 0;
}

void volume_stop_writeback(struct volume *vol)
{
	struct wb_daemon *d;

	pthread_mutex_lock(&vol->wb_lock);
	d = vol->daemon;
	if (d) {
		d->stop = true;
		ev_async_send(d->loop, &d->wake);
	}
	pthread_mutex_unlock(&vol->wb_lock);
	if (!d)
		return;
	pthread_join(d->thread, NULL);
	pthread_mutex_lock(&vol->wb_lock);
	vol->daemon = NULL;
	pthread_cond_broadcast(&vol->wb_cond);	/* waiters serve themselves */
	pthread_mutex_unlock(&vol->wb_lock);
	daemon_free(d);
}
