/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `thinmap check`: verify a volume's metadata without changing it.
 *
 * It reads the records straight from the metadata store, not through the
 * extent map (which would refuse them at the first problem), and lists
 * every problem: records that are malformed or lie outside the virtual
 * size or their AG, records that overlap logically, blocks mapped twice,
 * and AG files that are missing or of the wrong size.  It opens the
 * volume read-only, so it works while the volume is being served.
 */
#ifndef THINMAP_CHECK_H
#define THINMAP_CHECK_H

#include <stdint.h>

struct check_result {
	uint64_t records;	/* extent records read */
	uint64_t problems;	/* problems reported */
};

/*
 * Check the volume in @dir, calling @report once per problem with a
 * message; @lblk is the logical block of the record at fault, or
 * UINT64_MAX for a problem with no record.  Returns 0 when the whole
 * volume was read (problems or not), or a negative errno (message set)
 * when it cannot be opened or read.
 */
int check_volume(const char *dir,
		 void (*report)(void *arg, uint64_t lblk, const char *msg),
		 void *arg, struct check_result *res);

#endif
