/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Parsing and printing sizes in bytes, as the admin tool and the plugin
 * take them: a decimal number with an optional K, M, G, T, P or E suffix
 * (powers of 1024; an optional trailing "B" or "iB" is accepted, "1G",
 * "1GB" and "1GiB" are the same), like nbdkit_parse_size().
 */
#ifndef THINMAP_SIZE_H
#define THINMAP_SIZE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse @str into *@bytes.  Returns 0, or -EINVAL if @str is empty, has a
 * sign, trailing garbage or an unknown suffix, and -ERANGE if the value
 * does not fit in 63 bits.  No message is set: the caller names the
 * parameter.
 */
int parse_size(const char *str, uint64_t *bytes);

/*
 * Print @bytes into @buf (at least 16 bytes) as a short human-readable
 * size with a binary suffix ("512", "4.0K", "1.5G").  Returns @buf.
 */
char *format_size(uint64_t bytes, char *buf, size_t buflen);

#endif
