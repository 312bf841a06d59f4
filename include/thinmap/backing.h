/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Backing files: the allocation groups' data files (ag-N.data), what the
 * kernel's iomap writes to through a block device.  Offsets and lengths
 * are bytes within one AG file.
 *
 * Writeback writes through io_uring, with O_DIRECT where the filesystem
 * takes it (straight from the page cache's folios, no copy), several
 * writes in flight.  The ring has one user at a time: the caller of
 * backing_submit_writev() and backing_reap() serializes them (the volume's
 * meta_lock).  Reads, syncs and discards are synchronous system calls,
 * and any thread may make them: the descriptors never change, and @dirty
 * (which AG files need an fdatasync) is atomic.
 */
#ifndef THINMAP_BACKING_H
#define THINMAP_BACKING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <liburing.h>

/* Operations a test can make fail (backing_inject_fault). */
enum backing_op {
	BACKING_WRITE,
	BACKING_SYNC,
	BACKING_NR_OPS,
};

/* How the AG files are opened (volume.h's backing-io=). */
enum backing_io {
	BACKING_IO_AUTO,	/* O_DIRECT if the filesystem takes it */
	BACKING_IO_DIRECT,	/* O_DIRECT or fail */
	BACKING_IO_BUFFERED,
};

/* Most buffers in one write (Linux's IOV_MAX). */
#define BACKING_IOV_MAX 1024
/* Most writes in flight. */
#define BACKING_QUEUE_DEPTH 16

/* A write in flight (backing_submit_writev). */
struct backing_write {
	uint32_t ag;
	uint64_t off;
	const struct iovec *iov;	/* kept until the write completes */
	int iovcnt;
	int result;			/* 0, or -errno once completed */
};

struct backing {
	uint32_t ag_count;
	int *fds;		/* one per AG */
	bool *dirty;		/* written since the last backing_sync() */
	bool direct;		/* the fds are O_DIRECT */
	bool have_ring;		/* else writes are synchronous */
	struct io_uring ring;
	unsigned int inflight;	/* submitted, not yet reaped */
	/* Completed without the ring (no ring, or a fault), to be reaped. */
	struct backing_write *done[BACKING_QUEUE_DEPTH];
	unsigned int nr_done;
	/* Test hook: calls of each op left before they fail (0: never). */
	unsigned long fault_in[BACKING_NR_OPS];
	int fault_err[BACKING_NR_OPS];
	/* Test hook (backing_hold_writes): writes wait while @held. */
	pthread_mutex_t hold_lock;
	pthread_cond_t hold_cond;
	bool held;		/* atomic; changed under hold_lock */
	unsigned int holding;	/* writes waiting, under hold_lock */
};

/*
 * Open the @ag_count AG files of the volume in @dir, read-only or
 * read-write, for blocks of @block_size bytes, by @mode: with
 * BACKING_IO_AUTO, O_DIRECT when the filesystem takes direct I/O of
 * @block_size alignment (statx STATX_DIOALIGN), else buffered; with
 * BACKING_IO_DIRECT, -EINVAL (message set) when it does not.  A read-write
 * open sets up an io_uring, or writes synchronously where io_uring is not
 * available.  Returns 0, or a negative errno with a message naming the
 * file.
 */
int backing_open(struct backing *b, const char *dir, uint32_t ag_count,
		 bool rdonly, uint32_t block_size, enum backing_io mode);
void backing_close(struct backing *b);

/*
 * Read @len bytes at @off of AG @ag into @buf, all of them (short reads
 * are retried; a read past the end of the file is -EIO).  Returns 0 or a
 * negative errno.
 */
int backing_read(struct backing *b, uint32_t ag, void *buf, size_t len,
		 uint64_t off);

/*
 * Start the write @w (its buffers block-aligned, and with O_DIRECT in
 * memory aligned to 4 KiB).  At most BACKING_QUEUE_DEPTH may be in flight:
 * the caller reaps first.  A write that fails at once completes at once.
 * @w and its iov stay untouched until backing_reap() returns it.
 */
void backing_submit_writev(struct backing *b, struct backing_write *w);

/*
 * A completed write, all of it written (a short write is finished
 * synchronously) or w->result < 0; waiting for one if @wait and any is in
 * flight.  NULL if none is ready (or, with @wait, none is in flight).
 */
struct backing_write *backing_reap(struct backing *b, bool wait);

/* fdatasync every AG file written since the last call.  0 or -errno. */
int backing_sync(struct backing *b);

/*
 * Give [@off, @off + @len) of AG @ag back to the filesystem below
 * (punch a hole; the range then reads as zeros).  0 or -errno.
 */
int backing_discard(struct backing *b, uint32_t ag, uint64_t off,
		    uint64_t len);

/*
 * Test hook: from the @nth next call of @op on (1: the next), fail it
 * with -@err without doing it, until called again with @nth 0.  Atomic:
 * any thread may call it.
 */
void backing_inject_fault(struct backing *b, enum backing_op op,
			  unsigned long nth, int err);

/*
 * Test hook: while @hold, backing_submit_writev() waits before it writes
 * (a disk that does not answer); returns how many writes wait now.  Any
 * thread may call it.
 */
unsigned int backing_hold_writes(struct backing *b, bool hold);

#endif
