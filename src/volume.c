/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The volume object (see volume.h): opening a volume loads its extent
 * records into the extent map, refusing any that fail validation, and
 * derives free space from them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "thinmap/alloc.h"
#include "thinmap/emap.h"
#include "thinmap/error.h"
#include "thinmap/volume.h"

struct volume {
	char *dir;
	int dirfd;		/* holds the flock of a read-write open */
	unsigned int flags;
	struct meta *meta;
	struct thinmap_sb sb;
	pthread_rwlock_t map_lock;	/* protects map */
	struct emap map;
	struct alloc alloc;
};

/* Extents read at open, and the allocated ones for building free space. */
struct loader {
	struct volume *vol;
	uint64_t end;		/* end of the previous extent */
	struct extent_vec used;
};

static int loader_refuse(struct loader *ld, const struct extent *ext,
			 const char *why)
{
	tm_set_error("%s: damaged metadata: extent record at logical block "
		     "%llu: %s (run thinmap check)", ld->vol->dir,
		     (unsigned long long)ext->lblk, why);
	return -EFSCORRUPTED;
}

static int load_one(void *arg, const struct extent *ext, const char *bad)
{
	struct loader *ld = arg;
	const char *why = bad ? bad : meta_extent_invalid(&ld->vol->sb, ext);
	int err;

	if (why)
		return loader_refuse(ld, ext, why);
	if (ext->lblk < ld->end)
		return loader_refuse(ld, ext, "overlaps the previous extent");
	ld->end = extent_end(ext);
	err = emap_set(&ld->vol->map, ext);
	return err ? err : extent_vec_push(&ld->used, ext);
}

static int volume_load(struct volume *vol)
{
	struct loader ld = { .vol = vol };
	int err;

	err = meta_load(vol->meta, load_one, &ld);
	if (!err) {
		extent_vec_sort_pblk(&ld.used);
		err = alloc_init(&vol->alloc, vol->sb.ag_count,
				 vol->sb.ag_blocks, ld.used.v, ld.used.n);
	}
	extent_vec_free(&ld.used);
	return err;
}

/* Open the directory, and lock it for a read-write open. */
static int open_dir(struct volume *vol)
{
	vol->dirfd = open(vol->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (vol->dirfd < 0) {
		tm_set_error("%s: %s", vol->dir, strerror(errno));
		return -errno;
	}
	if (vol->flags & VOLUME_RDONLY)
		return 0;
	if (flock(vol->dirfd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno == EWOULDBLOCK ? EBUSY : errno;

		tm_set_error("%s: %s", vol->dir,
			     err == EBUSY ? "the volume is in use by another "
					    "process" : strerror(err));
		return -err;
	}
	return 0;
}

static int volume_setup(struct volume *vol)
{
	char *metadir;
	int err;

	err = open_dir(vol);
	if (err)
		return err;
	if (asprintf(&metadir, "%s/meta", vol->dir) < 0)
		return -ENOMEM;
	err = meta_open(metadir, vol->flags & VOLUME_RDONLY, &vol->meta);
	free(metadir);
	if (err)
		return err;
	vol->sb = *meta_sb(vol->meta);
	return volume_load(vol);
}

int volume_open(const char *dir, unsigned int flags, struct volume **volp)
{
	struct volume *vol = calloc(1, sizeof *vol);
	int err;

	if (!vol || !(vol->dir = strdup(dir))) {
		free(vol);
		return -ENOMEM;
	}
	vol->flags = flags;
	vol->dirfd = -1;
	emap_init(&vol->map);
	pthread_rwlock_init(&vol->map_lock, NULL);
	err = volume_setup(vol);
	if (err) {
		/* alloc was not set up: alloc_init is the last step */
		emap_destroy(&vol->map);
		meta_close(vol->meta);
		if (vol->dirfd >= 0)
			close(vol->dirfd);
		pthread_rwlock_destroy(&vol->map_lock);
		free(vol->dir);
		free(vol);
		return err;
	}
	*volp = vol;
	return 0;
}

void volume_close(struct volume *vol)
{
	if (!vol)
		return;
	alloc_destroy(&vol->alloc);
	emap_destroy(&vol->map);
	meta_close(vol->meta);
	close(vol->dirfd);	/* drops the flock */
	pthread_rwlock_destroy(&vol->map_lock);
	free(vol->dir);
	free(vol);
}

const struct thinmap_sb *volume_sb(const struct volume *vol)
{
	return &vol->sb;
}

static int stat_one(void *arg, const struct extent *ext)
{
	struct volume_stat *st = arg;

	switch (ext->state) {
	case EXT_MAPPED:
		st->mapped += ext->len;
		break;
	case EXT_UNWRITTEN:
		st->unwritten += ext->len;
		break;
	default:
		st->delalloc += ext->len;
	}
	st->extents++;
	return 0;
}

void volume_stat(struct volume *vol, struct volume_stat *st)
{
	uint64_t bs = vol->sb.block_size;
	struct alloc_stat ast;

	memset(st, 0, sizeof *st);
	volume_map(vol, stat_one, st);
	alloc_stat(&vol->alloc, &ast);
	st->size = vol->sb.size;
	st->capacity = (uint64_t)vol->sb.ag_count * vol->sb.ag_blocks * bs;
	st->mapped *= bs;
	st->unwritten *= bs;
	st->delalloc *= bs;
	st->free = ast.free_blocks * bs;
	st->free_extents = ast.free_extents;
}

int volume_map(struct volume *vol,
	       int (*fn)(void *arg, const struct extent *ext), void *arg)
{
	int ret;

	pthread_rwlock_rdlock(&vol->map_lock);
	ret = emap_iterate(&vol->map, 0, UINT64_MAX, fn, arg);
	pthread_rwlock_unlock(&vol->map_lock);
	return ret;
}
