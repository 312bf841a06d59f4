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

static void (*log_fn)(const char *msg);

void tm_set_log(void (*fn)(const char *msg))
{
	log_fn = fn;
}

void tm_log(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (log_fn)
		log_fn(msg);
	else
		fprintf(stderr, "thinmap: %s\n", msg);
}
