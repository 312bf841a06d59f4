/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Creating a volume (see create.h): geometry first, then the directory,
 * the metadata and the sparse AG files, removed again if any step fails.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thinmap/create.h"
#include "thinmap/error.h"

static uint64_t div_round_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* Set the message "@param: ..." and return -EINVAL. */
static int __attribute__((format(printf, 2, 3)))
plan_error(const char *param, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	tm_set_error("%s: %s", param, msg);
	return -EINVAL;
}

static int plan_block_size(const struct create_opts *o, uint32_t *bs)
{
	uint64_t b = o->block_size ? o->block_size : DEFAULT_BLOCK_SIZE;

	if (b < BLOCK_SIZE_MIN || b > BLOCK_SIZE_MAX || (b & (b - 1)))
		return plan_error("block-size",
				  "%" PRIu64 " is not a power of two from 512 "
				  "to 65536", b);
	*bs = (uint32_t)b;
	if (o->size == 0)
		return plan_error("size", "is required and must not be 0");
	if (o->size % b)
		return plan_error("size",
				  "%" PRIu64 " is not a multiple of the block "
				  "size (%" PRIu64 ")", o->size, b);
	return 0;
}

/*
 * The default AG count for @capacity bytes: AGs of at most 16 GiB, and at
 * least 4 of them while each still gets 16 MiB.
 */
static uint64_t default_ag_count(uint64_t capacity)
{
	uint64_t count = div_round_up(capacity, DEFAULT_AG_MAX_BYTES);
	uint64_t fit = capacity / DEFAULT_AG_MIN_BYTES;

	if (count < DEFAULT_AG_MIN_COUNT)
		count = fit < DEFAULT_AG_MIN_COUNT ? (fit ? fit : 1)
						   : DEFAULT_AG_MIN_COUNT;
	return count < AG_COUNT_MAX ? count : AG_COUNT_MAX;
}

/* Fill in whichever of capacity, ag_count and ag_size was not given. */
static int plan_ags(const struct create_opts *o, uint32_t bs,
		    uint64_t *count, uint64_t *ag_size)
{
	uint64_t capacity = o->capacity;

	*count = o->ag_count;
	*ag_size = o->ag_size;
	if (capacity && *count && *ag_size) {
		if (*count * *ag_size != capacity)
			return plan_error("capacity",
					  "%" PRIu64 " is not ag-count x "
					  "ag-size (%" PRIu64 "): give at most "
					  "two of them",
					  capacity, *count * *ag_size);
		return 0;
	}
	if (!capacity && !(*count && *ag_size))
		capacity = o->size;
	if (!*count && !*ag_size)
		*count = default_ag_count(capacity);
	if (!*ag_size)
		*ag_size = div_round_up(div_round_up(capacity, *count), bs) *
			   bs;
	else if (!*count)
		*count = div_round_up(capacity, *ag_size);
	return 0;
}

static int plan_check_ags(uint64_t count, uint64_t ag_size, uint32_t bs)
{
	if (count == 0 || count > AG_COUNT_MAX)
		return plan_error("ag-count", "%" PRIu64 " is not 1 .. %d",
				  count, AG_COUNT_MAX);
	if (ag_size == 0 || ag_size % bs)
		return plan_error("ag-size",
				  "%" PRIu64 " is not a positive multiple of "
				  "the block size (%" PRIu32 ")", ag_size, bs);
	if (ag_size / bs > AG_MAX_BLOCKS)
		return plan_error("ag-size",
				  "%" PRIu64 " is more than 2^31 blocks: use "
				  "more AGs", ag_size);
	return 0;
}

int create_plan(const struct create_opts *opts, struct thinmap_sb *sb)
{
	uint64_t count, ag_size;
	uint32_t bs;
	int err;

	err = plan_block_size(opts, &bs);
	if (!err)
		err = plan_ags(opts, bs, &count, &ag_size);
	if (!err)
		err = plan_check_ags(count, ag_size, bs);
	if (err)
		return err;
	memset(sb, 0, sizeof *sb);
	sb->version = THINMAP_FORMAT_VERSION;
	sb->features = THINMAP_FEATURE_LOG;
	sb->size = opts->size;
	sb->block_size = bs;
	sb->ag_count = (uint32_t)count;
	sb->ag_blocks = (uint32_t)(ag_size / bs);
	if (getrandom(sb->uuid, sizeof sb->uuid, 0) != sizeof sb->uuid) {
		tm_set_error("getrandom: %s", strerror(errno));
		return -errno;
	}
	sb->uuid[6] = (sb->uuid[6] & 0x0f) | 0x40;	/* RFC 4122 version 4 */
	sb->uuid[8] = (sb->uuid[8] & 0x3f) | 0x80;
	return 0;
}

char *ag_file_path(const char *dir, uint32_t ag)
{
	char *path;

	if (asprintf(&path, "%s/ag-%u.data", dir, ag) < 0)
		return NULL;
	return path;
}

/* Make @dir, or accept it if it exists and is empty. */
static int make_empty_dir(const char *dir, bool *made)
{
	struct dirent *d;
	DIR *dp;

	*made = mkdir(dir, 0755) == 0;
	if (*made)
		return 0;
	if (errno != EEXIST) {
		tm_set_error("%s: %s", dir, strerror(errno));
		return -errno;
	}
	dp = opendir(dir);
	if (!dp) {
		tm_set_error("%s: %s", dir, strerror(errno));
		return -errno;
	}
	while ((d = readdir(dp)) != NULL)
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			break;
	closedir(dp);
	if (d) {
		tm_set_error("%s: already exists and is not empty: "
			     "refusing to overwrite it", dir);
		return -EEXIST;
	}
	return 0;
}

static int create_ag_file(const char *dir, uint32_t ag, uint64_t bytes)
{
	char *path = ag_file_path(dir, ag);
	int fd, err = 0;

	if (!path)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0 || fsync(fd) != 0) {
		err = -errno;
		tm_set_error("%s: %s", path, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	free(path);
	return err;
}

/*
 * Remove what create_volume() made in @dir (AG files 0 .. @ags - 1, and
 * meta/ if @metadir), in reverse, ignoring errors.
 */
static void remove_created(const char *dir, const char *metadir,
			   uint32_t ags, bool made_dir)
{
	char path[4096];

	while (ags > 0) {
		snprintf(path, sizeof path, "%s/ag-%u.data", dir, --ags);
		unlink(path);
	}
	if (metadir) {
		snprintf(path, sizeof path, "%s/data.mdb", metadir);
		unlink(path);
		snprintf(path, sizeof path, "%s/lock.mdb", metadir);
		unlink(path);
		rmdir(metadir);
	}
	if (made_dir)
		rmdir(dir);
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0 || fsync(fd) != 0) {
		err = -errno;
		tm_set_error("%s: %s", dir, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return err;
}

int create_volume(const char *dir, const struct thinmap_sb *sb)
{
	uint64_t ag_bytes = (uint64_t)sb->ag_blocks * sb->block_size;
	char *metadir = NULL;
	uint32_t ag = 0;
	bool made_dir;
	int err;

	err = make_empty_dir(dir, &made_dir);
	if (err)
		return err;
	if (asprintf(&metadir, "%s/meta", dir) < 0) {
		metadir = NULL;
		err = -ENOMEM;
		goto fail;
	}
	if (mkdir(metadir, 0755) != 0) {
		err = -errno;
		tm_set_error("%s: %s", metadir, strerror(errno));
		goto fail;
	}
	err = meta_create(metadir, sb);
	while (!err && ag < sb->ag_count) {
		err = create_ag_file(dir, ag, ag_bytes);
		if (!err)
			ag++;
	}
	if (!err)
		err = sync_dir(dir);
	if (!err) {
		free(metadir);
		return 0;
	}
fail:
	remove_created(dir, metadir, ag, made_dir);
	free(metadir);
	return err;
}
