/* SPDX-License-Identifier: BSD-3-Clause */
/* The AG data files (see backing.h). */
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

int backing_open(struct backing *b, const char *dir, uint32_t ag_count,
		 bool rdonly)
{
	uint32_t ag;

	memset(b, 0, sizeof *b);
	b->fds = malloc(ag_count * sizeof *b->fds);
	b->dirty = calloc(ag_count, sizeof *b->dirty);
	if (!b->fds || !b->dirty) {
		backing_close(b);
		return -ENOMEM;
	}
	for (ag = 0; ag < ag_count; ag++) {
		char *path = ag_file_path(dir, ag);
		int err;

		b->fds[ag] = path ? open(path, (rdonly ? O_RDONLY : O_RDWR) |
						       O_CLOEXEC)
				  : -1;
		err = !path ? ENOMEM : b->fds[ag] < 0 ? errno : 0;
		if (err) {
			tm_set_error("%s: %s", path ? path : dir,
				     strerror(err));
			free(path);
			backing_close(b);
			return -err;
		}
		free(path);
		b->ag_count = ag + 1;
	}
	return 0;
}

void backing_close(struct backing *b)
{
	uint32_t ag;

	for (ag = 0; ag < b->ag_count; ag++)
		close(b->fds[ag]);
	free(b->fds);
	free(b->dirty);
	memset(b, 0, sizeof *b);
}

int backing_read(struct backing *b, uint32_t ag, void *buf, size_t len,
		 uint64_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t r = pread(b->fds[ag], p, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Step @iov past @n bytes written; returns the new iovcnt. */
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

int backing_writev(struct backing *b, uint32_t ag, const struct iovec *iov,
		   int iovcnt, uint64_t off)
{
	struct iovec local[BACKING_IOV_MAX], *cur = local;
	int n = iovcnt, err;

	if (iovcnt > BACKING_IOV_MAX)
		return -EINVAL;
	err = injected(b, BACKING_WRITE);
	if (err)
		return err;
	memcpy(local, iov, (size_t)iovcnt * sizeof *iov);
	__atomic_store_n(&b->dirty[ag], true, __ATOMIC_RELAXED);
	while (n > 0) {
		ssize_t r = pwritev(b->fds[ag], cur, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += (uint64_t)r;
		n = iov_advance(&cur, n, (size_t)r);
	}
	return 0;
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
