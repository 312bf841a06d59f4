/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Creating a volume: choosing its geometry and laying out its directory
 * (DESIGN.md, "The volume on disk"), what mkfs is to a filesystem.
 */
#ifndef THINMAP_CREATE_H
#define THINMAP_CREATE_H

#include <stdint.h>

#include "thinmap/meta.h"

#define DEFAULT_BLOCK_SIZE 4096
#define DEFAULT_AG_MAX_BYTES (UINT64_C(16) << 30)	/* at most 16 GiB */
#define DEFAULT_AG_MIN_BYTES (UINT64_C(16) << 20)	/* at least 16 MiB */
#define DEFAULT_AG_MIN_COUNT 4

/* What the admin asked for, in bytes; 0 means "choose". */
struct create_opts {
	uint64_t size;		/* virtual size: required */
	uint64_t capacity;	/* physical capacity: default = size */
	uint64_t ag_count;
	uint64_t ag_size;
	uint64_t block_size;	/* default DEFAULT_BLOCK_SIZE */
};

/*
 * Choose the geometry for @opts and fill @sb (with a fresh UUID).
 * Any two of capacity, ag_count and ag_size determine the third; all
 * three must agree.  By default an AG is at most 16 GiB and there are at
 * least 4 of them when each can still have 16 MiB.  The capacity is
 * rounded up to a whole number of equal AGs.  Returns 0, or -EINVAL with
 * a message that names the parameter at fault ("size", "capacity",
 * "ag-count", "ag-size", "block-size"), in the words both the admin
 * tool's options and the plugin's parameters use.
 */
int create_plan(const struct create_opts *opts, struct thinmap_sb *sb);

/*
 * Create the volume @sb in directory @dir: the directory itself (its parent
 * must exist; an existing empty directory is used), meta/, and the AG
 * files, sparse, at their full size.  Returns 0; -EEXIST if @dir holds
 * anything already (an existing volume is never overwritten); or the
 * errno of the failure, with a message naming the file.  On failure
 * nothing that this call created is left behind.
 */
int create_volume(const char *dir, const struct thinmap_sb *sb);

/* Path of AG file @ag of the volume in @dir ("DIR/ag-N.data"), malloced. */
char *ag_file_path(const char *dir, uint32_t ag);

#endif
