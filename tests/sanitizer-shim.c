/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Preloaded after the sanitizer runtime into nbdkit (which is not built
 * with sanitizers) when the nbd tests of a sanitized build load the
 * sanitized plugin into it (tests/nbd-server.h, test-nbd-params.sh).
 *
 * A preloaded runtime initializes only after nbdkit's libraries, so it
 * initializes lazily, at the first malloc: in p11-kit's constructor,
 * inside glibc's newlocale(), which holds the setlocale lock.  There its
 * symbolizer looks up swift_demangle; the failed dlsym() makes dlerror()
 * translate its message, and dcgettext() takes and releases that same
 * lock, leaving it broken: nbdkit then hangs at exit, in freelocale()
 * from p11-kit's destructor.  With swift_demangle defined the lookup
 * succeeds and the lock is left alone.  It demangles nothing (NULL: the
 * runtime then tries C++ names).
 */
#include <stddef.h>

char *swift_demangle(const char *name, size_t len, char *out, size_t *outlen,
		     unsigned int flags);

char *swift_demangle(const char *name, size_t len, char *out, size_t *outlen,
		     unsigned int flags)
{
	return NULL;
}
