/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Backing files: the allocation groups' data files (ag-N.data), what the
 * kernel's iomap writes to through a block device.  Offsets and lengths
 * are bytes within one AG file.
 *
 * The descriptors are opened once and never change, so any thread may do
 * I/O at once; @dirty (which AG files need an fdatasync) is atomic.
 */
#ifndef THINMAP_BACKING_H
#define THINMAP_BACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Operations a test can make fail (backing_inject_fault). */
enum backing_op {
	BACKING_WRITE,
	BACKING_SYNC,
	BACKING_NR_OPS,
};

/* Most buffers in one backing_writev() (Linux's IOV_MAX). */
#define BACKING_IOV_MAX 1024

struct backing {
	uint32_t ag_count;
	int *fds;		/* one per AG */
	bool *dirty;		/* written since the last backing_sync() */
	/* Test hook: calls of each op left before they fail (0: never). */
	unsigned long fault_in[BACKING_NR_OPS];
	int fault_err[BACKING_NR_OPS];
};

/*
 * Open the @ag_count AG files of the volume in @dir, read-only or
 * read-write.  Returns 0, or a negative errno with a message naming the
 * file.
 */
int backing_open(struct backing *b, const char *dir, uint32_t ag_count,
		 bool rdonly);
void backing_close(struct backing *b);

/*
 * Read @len bytes at @off of AG @ag into @buf, all of them (short reads
 * are retried; a read past the end of the file is -EIO).  Returns 0 or a
 * negative errno.
 */
int backing_read(struct backing *b, uint32_t ag, void *buf, size_t len,
		 uint64_t off);

/*
 * Write @iov (@iovcnt buffers, at most BACKING_IOV_MAX) at @off of AG @ag,
 * all of it; as above.
 */
int backing_writev(struct backing *b, uint32_t ag, const struct iovec *iov,
		   int iovcnt, uint64_t off);

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

#endif
