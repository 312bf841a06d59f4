/* SPDX-License-Identifier: BSD-3-Clause */
/* Per-thread error messages of the thinmap library (see error.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "thinmap/error.h"

static __thread char last_error[1024];

void tm_set_error(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
	errno = saved;
}

const char *tm_get_error(void)
{
	return last_error;
}
