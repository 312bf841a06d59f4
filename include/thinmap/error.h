/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Error messages of the thinmap library.
 *
 * Library functions return a negative errno and, where the errno alone
 * would not tell an admin what went wrong, also leave a message naming the
 * file, parameter or record at fault.  The message is per thread (like
 * libnbd's nbd_get_error), so several volumes can be used from one process
 * and callers on different threads do not see each other's errors.
 */
#ifndef THINMAP_ERROR_H
#define THINMAP_ERROR_H

/* Errno for a volume whose metadata fails validation, as in XFS. */
#define EFSCORRUPTED EUCLEAN

/*
 * Set the calling thread's last error message (printf format).  The errno
 * value is preserved.  Messages longer than 1023 bytes are truncated.
 */
void tm_set_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/*
 * The calling thread's last error message, or "" if none was set.  The
 * string is valid until the next tm_set_error() on this thread.
 */
const char *tm_get_error(void);

/*
 * Report @msg, an event nobody is waiting to hear of (a failed background
 * writeback): through the function set by tm_set_log() (the plugin sends
 * it to nbdkit_error), else to stderr.  Any thread.
 */
void tm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Where tm_log() sends its messages; NULL: stderr.  Set it once, early. */
void tm_set_log(void (*fn)(const char *msg));

#endif
