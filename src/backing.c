/* SPDX-License-Identifier: BSD-3-Clause */
/* The AG data files (see backing.h). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thinmap/backing.h"
#include "thinmap/create.h"
#include "thinmap/error.h"

void backing_inject_fault(struct backing *b, enum backing_op op,
			  unsigned long nth, int err)
{
	__atomic_store_n(&b->fault_err[op], err, __ATOMIC_RELAXED);
	__atomic_store_n(&b->fault_in[op], nth, __ATOMIC_RELEASE);
}

unsigned int backing_hold_writes(struct backing *b, bool hold)
{
	unsigned int n;

	pthread_mutex_lock(&b->hold_lock);
	__atomic_store_n(&b->held, hold, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&b->hold_cond);
	n = b->holding;
	pthread_mutex_unlock(&b->hold_lock);
	return n;
}

/* Wait while the test hook holds writes. */
static void hold_wait(struct backing *b)
{
	pthread_mutex_lock(&b->hold_lock);
	b->holding++;
	while (b->held)
		pthread_cond_wait(&b->hold_cond, &b->hold_lock);
	b->holding--;
	pthread_mutex_unlock(&b->hold_lock);
}

/* The injected error for this call of @op, or 0 (see backing.h). */
static int injected(struct backing *b, enum backing_op op)
{
	unsigned long left = __atomic_load_n(&b->fault_in[op],
					     __ATOMIC_ACQUIRE);

	while (left > 1 &&
	       !__atomic_compare_exchange_n(&b->fault_in[op], &left, left - 1,
					    false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE))
		;
	if (left != 1)
		return 0;
	return -__atomic_load_n(&b->fault_err[op], __ATOMIC_RELAXED);
}

/*
 * Does @fd take direct I/O of @block_size blocks?  A probe: one aligned
 * read of a block (O_DIRECT refuses misaligned I/O with EINVAL).
 */
static bool direct_io_works(int fd, uint32_t block_size)
{
	void *buf = aligned_alloc(4096, block_size < 4096 ? 4096 : block_size);
	bool ok = buf && pread(fd, buf, block_size, 0) >= 0;

	free(buf);
	return ok;
}

/*
 * Open AG file @path, O_DIRECT if *@direct and it works (else clear
 * *@direct, or fail for BACKING_IO_DIRECT).  Returns the fd or -errno.
 */
static int open_ag(const char *path, bool rdonly, uint32_t block_size,
		   enum backing_io mode, bool *direct)
{
	int flags = (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	int fd = *direct ? open(path, flags | O_DIRECT) : -1;

	if (fd >= 0 && direct_io_works(fd, block_size))
		return fd;
	if (fd >= 0)
		close(fd);
	if (*direct && mode == BACKING_IO_DIRECT) {
		tm_set_error("%s: backing-io=direct: the filesystem refuses "
			     "direct I/O of %u-byte blocks", path, block_size);
		return -EINVAL;
	}
	*direct = false;
	fd = open(path, flags);
	if (fd < 0) {
		tm_set_error("%s: %s", path, strerror(errno));
		return -errno;
	}
	return fd;
}

/* Set up the ring, if the kernel lets us: else writes are synchronous. */
static void ring_setup(struct backing *b)
{
	b->have_ring = io_uring_queue_init(BACKING_QUEUE_DEPTH, &b->ring,
					   0) == 0;
}

int backing_open(struct backing *b, const char *dir, uint32_t ag_count,
		 bool rdonly, uint32_t block_size, enum backing_io mode)
{
	uint32_t ag;

	memset(b, 0, sizeof *b);
	pthread_mutex_init(&b->hold_lock, NULL);
	pthread_cond_init(&b->hold_cond, NULL);
	b->fds = malloc(ag_count * sizeof *b->fds);
	b->dirty = calloc(ag_count, sizeof *b->dirty);
	if (!b->fds || !b->dirty) {
		backing_close(b);
		return -ENOMEM;
	}
	b->direct = mode != BACKING_IO_BUFFERED;
	for (ag = 0; ag < ag_count; ag++) {
		char *path = ag_file_path(dir, ag);
		bool direct = b->direct;
		int fd = path ? open_ag(path, rdonly, block_size, mode, &direct)
			      : -ENOMEM;

		free(path);
		if (fd < 0) {
			backing_close(b);
			return fd;
		}
		b->fds[ag] = fd;
		b->ag_count = ag + 1;
		b->direct = direct;	/* one refusal: the rest buffered */
	}
	if (!rdonly)
		ring_setup(b);
	return 0;
}

void backing_close(struct backing *b)
{
	uint32_t ag;

	if (b->have_ring)
		io_uring_queue_exit(&b->ring);
	for (ag = 0; ag < b->ag_count; ag++)
		close(b->fds[ag]);
	free(b->fds);
	free(b->dirty);
	pthread_cond_destroy(&b->hold_cond);
	pthread_mutex_destroy(&b->hold_lock);
	memset(b, 0, sizeof *b);
}

/* Step @iov past @n bytes done; returns the new iovcnt. */
static int iov_advance(struct iovec **iov, int iovcnt, size_t n)
{
	while (iovcnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		iovcnt--;
	}
	if (iovcnt > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
	return iovcnt;
}

/*
 * Write (@write) or read all of @iov at @off of AG @ag but the first
 * @done bytes, retrying short transfers; reading past the end of the
 * file is -EIO.  0 or -errno.
 */
static int rw_all(struct backing *b, uint32_t ag, const struct iovec *iov,
		  int iovcnt, uint64_t off, size_t done, bool write)
{
	struct iovec local[BACKING_IOV_MAX], *cur = local;
	int n;

	memcpy(local, iov, (size_t)iovcnt * sizeof *iov);
	n = iov_advance(&cur, iovcnt, done);
	off += done;
	while (n > 0) {
		ssize_t r = write ? pwritev(b->fds[ag], cur, n, (off_t)off)
				  : preadv(b->fds[ag], cur, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += (uint64_t)r;
		n = iov_advance(&cur, n, (size_t)r);
	}
	return 0;
}

int backing_read(struct backing *b, uint32_t ag, void *buf, size_t len,
		 uint64_t off)
{
	struct iovec iov = { buf, len };

	return rw_all(b, ag, &iov, 1, off, 0, false);
}

/* @w is done with @result: queue it for backing_reap(). */
static void complete_now(struct backing *b, struct backing_write *w,
			 int result)
{
	w->result = result;
	b->done[b->nr_done++] = w;
}

void backing_submit_writev(struct backing *b, struct backing_write *w)
{
	struct io_uring_sqe *sqe;
	int err = injected(b, BACKING_WRITE);

	assert(b->inflight + b->nr_done < BACKING_QUEUE_DEPTH);
	if (__atomic_load_n(&b->held, __ATOMIC_ACQUIRE))
		hold_wait(b);
	__atomic_store_n(&b->dirty[w->ag], true, __ATOMIC_RELAXED);
	if (err || !b->have_ring) {
		complete_now(b, w, err ? err : rw_all(b, w->ag, w->iov,
						      w->iovcnt, w->off, 0, true));
		return;
	}
	sqe = io_uring_get_sqe(&b->ring);	/* the depth guarantees one */
	io_uring_prep_writev(sqe, b->fds[w->ag], w->iov, (unsigned)w->iovcnt,
			     w->off);
	io_uring_sqe_set_data(sqe, w);
	err = io_uring_submit(&b->ring);
	if (err < 0) {
		complete_now(b, w, err);	/* not submitted: take it back */
		return;
	}
	b->inflight++;
}

/*
 * Finish @w after the ring wrote @done bytes of it (or failed, @done < 0):
 * the rest of a short write is written synchronously.
 */
static int finish_write(struct backing *b, struct backing_write *w,
			int done)
{
	if (done < 0)
		return done;
	return rw_all(b, w->ag, w->iov, w->iovcnt, w->off, (size_t)done,
		      true);
}

struct backing_write *backing_reap(struct backing *b, bool wait)
{
	struct io_uring_cqe *cqe;
	struct backing_write *w;
	int err;

	if (b->nr_done)
		return b->done[--b->nr_done];
	if (!b->inflight)
		return NULL;
	do {
		err = wait ? io_uring_wait_cqe(&b->ring, &cqe)
			   : io_uring_peek_cqe(&b->ring, &cqe);
	} while (err == -EINTR);
	if (err)
		return NULL;
	w = io_uring_cqe_get_data(cqe);
	w->result = finish_write(b, w, cqe->res);
	io_uring_cqe_seen(&b->ring, cqe);
	b->inflight--;
	return w;
}

int backing_sync(struct backing *b)
{
	uint32_t ag;
	int err = injected(b, BACKING_SYNC);

	if (err)
		return err;
	for (ag = 0; ag < b->ag_count; ag++) {
		if (!__atomic_exchange_n(&b->dirty[ag], false,
					 __ATOMIC_ACQ_REL))
			continue;
		if (fdatasync(b->fds[ag]) != 0 && !err) {
			err = -errno;
			__atomic_store_n(&b->dirty[ag], true, __ATOMIC_RELAXED);
		}
	}
	return err;
}

int backing_discard(struct backing *b, uint32_t ag, uint64_t off,
		    uint64_t len)
{
	if (fallocate(b->fds[ag], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) != 0)
		return -errno;
	return 0;
}
