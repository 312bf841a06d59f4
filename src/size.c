/* SPDX-License-Identifier: BSD-3-Clause */
/* Sizes with binary suffixes (see size.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "thinmap/size.h"

static const char suffixes[] = "KMGTPE";

/* log2 of the multiplier for suffix @s ("", "K", "KB", "KiB"...), or -1. */
static int suffix_shift(const char *s)
{
	const char *p;

	if (*s == '\0')
		return 0;
	p = strchr(suffixes, toupper((unsigned char)*s));
	if (!p)
		return -1;
	s++;
	if (strcmp(s, "") != 0 && strcmp(s, "B") != 0 && strcmp(s, "iB") != 0)
		return -1;
	return 10 * (int)(p - suffixes + 1);
}

int parse_size(const char *str, uint64_t *bytes)
{
	uint64_t n = 0;
	int shift;

	if (!isdigit((unsigned char)*str))
		return -EINVAL;
	for (; isdigit((unsigned char)*str); str++) {
		if (n > (INT64_MAX - 9) / 10)
			return -ERANGE;
		n = n * 10 + (uint64_t)(*str - '0');
	}
	shift = suffix_shift(str);
	if (shift < 0)
		return -EINVAL;
	if (shift > 0 && n > ((uint64_t)INT64_MAX >> shift))
		return -ERANGE;
	*bytes = n << shift;
	return 0;
}

char *format_size(uint64_t bytes, char *buf, size_t buflen)
{
	unsigned int i = 0;
	double v = (double)bytes;

	if (bytes < 1024) {
		snprintf(buf, buflen, "%" PRIu64, bytes);
		return buf;
	}
	while (v >= 1024 && i < sizeof suffixes - 1) {
		v /= 1024;
		i++;
	}
	snprintf(buf, buflen, "%.1f%c", v, suffixes[i - 1]);
	return buf;
}
