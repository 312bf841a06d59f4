/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The volume object's life (see volume.h): opening a volume loads its
 * extent records into the extent map, refusing any that fail validation,
 * derives free space from them, and sets up the page cache and the
 * backing files; closing writes everything back.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "thinmap/error.h"
#include "volume-impl.h"

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

/* Does the fdinfo file @name in @dir show a flock of the inode @st? */
static bool fdinfo_locks(DIR *dir, const char *name, const struct stat *st)
{
	int fd = openat(dirfd(dir), name, O_RDONLY | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	unsigned int maj, min;
	unsigned long ino;
	char line[160];
	bool locks = false;

	while (f && !locks && fgets(line, sizeof line, f))
		locks = sscanf(line, "lock: %*s FLOCK %*s WRITE %*d %x:%x:%lu",
			       &maj, &min, &ino) == 3 &&
			ino == st->st_ino && makedev(maj, min) == st->st_dev;
	if (f)
		fclose(f);
	else if (fd >= 0)
		close(fd);
	return locks;
}

/*
 * Name the process that holds the lock on the directory @st in @buf
 * (" (pid 123, nbdkit)"), or leave @buf "".  Not from /proc/locks: its
 * pid is the process that took the lock, gone if that forked and exited
 * (as nbdkit does when it becomes a daemon); the holder is the process
 * whose descriptor of the directory shows the lock in its fdinfo.
 */
static void lock_holder(const struct stat *st, char *buf, size_t len)
{
	DIR *proc = opendir("/proc"), *fds;
	struct dirent *p = NULL, *e = NULL;
	char path[64], comm[64] = "";
	bool found = false;
	FILE *f;

	while (proc && !found && (p = readdir(proc))) {
		if (atoi(p->d_name) <= 0 || atoi(p->d_name) == getpid())
			continue;
		snprintf(path, sizeof path, "/proc/%.16s/fdinfo", p->d_name);
		fds = opendir(path);
		while (fds && !found && (e = readdir(fds)))
			found = fdinfo_locks(fds, e->d_name, st);
		if (fds)
			closedir(fds);
	}
	snprintf(path, sizeof path, "/proc/%.16s/comm", p ? p->d_name : "");
	f = found ? fopen(path, "re") : NULL;
	if (f && fgets(comm, sizeof comm, f))
		snprintf(buf, len, " (pid %.16s, %.*s)", p->d_name,
			 (int)strcspn(comm, "\n"), comm);
	if (f)
		fclose(f);
	if (proc)
		closedir(proc);
}

/* Open the directory, and lock it for a read-write open. */
static int open_dir(struct volume *vol)
{
	char holder[128] = "";
	struct stat st;

	vol->dirfd = open(vol->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (vol->dirfd < 0) {
		tm_set_error("%s: %s", vol->dir, strerror(errno));
		return -errno;
	}
	if (vol->flags & VOLUME_RDONLY)
		return 0;
	if (flock(vol->dirfd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno == EWOULDBLOCK ? EBUSY : errno;

		if (err == EBUSY && fstat(vol->dirfd, &st) == 0)
			lock_holder(&st, holder, sizeof holder);
		tm_set_error("%s: %s%s", vol->dir,
			     err == EBUSY ? "the volume is in use by another "
					    "process" : strerror(err),
			     err == EBUSY ? holder : "");
		return -err;
	}
	return 0;
}

_Static_assert((int)VOLUME_IO_AUTO == (int)BACKING_IO_AUTO &&
	       (int)VOLUME_IO_DIRECT == (int)BACKING_IO_DIRECT &&
	       (int)VOLUME_IO_BUFFERED == (int)BACKING_IO_BUFFERED,
	       "backing-io values");

/* @v, or @def if @v is 0 (a parameter left to its default). */
static uint64_t or_default(uint64_t v, uint64_t def)
{
	return v ? v : def;
}

uint64_t volume_default_cache_size(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t quarter = (uint64_t)pages * (uint64_t)page / 4;

	return pages > 0 && page > 0 && quarter < DEFAULT_CACHE_SIZE
		       ? quarter : DEFAULT_CACHE_SIZE;
}

int volume_params_resolve(const struct volume_params *params,
			  uint32_t block_size, struct volume_params *p)
{
	static const struct volume_params none;

	*p = params ? *params : none;
	p->cache_size = or_default(p->cache_size, volume_default_cache_size());
	if (!p->page_size)
		p->page_size = block_size > DEFAULT_PAGE_SIZE
				       ? block_size : DEFAULT_PAGE_SIZE;
	p->dirty_bytes = or_default(p->dirty_bytes, p->cache_size / 2);
	p->dirty_background_bytes = or_default(p->dirty_background_bytes,
					       p->dirty_bytes / 2);
	p->dirty_expire_ms = (uint32_t)or_default(p->dirty_expire_ms, 5000);
	p->writeback_interval_ms =
		(uint32_t)or_default(p->writeback_interval_ms, 1000);
	if (p->dirty_bytes > p->cache_size) {
		tm_set_error("dirty-bytes: %" PRIu64 " is more than cache-size "
			     "(%" PRIu64 ")", p->dirty_bytes, p->cache_size);
		return -EINVAL;
	}
	if (p->dirty_background_bytes > p->dirty_bytes) {
		tm_set_error("dirty-background-bytes: %" PRIu64 " is more "
			     "than dirty-bytes (%" PRIu64 ")",
			     p->dirty_background_bytes, p->dirty_bytes);
		return -EINVAL;
	}
	return 0;
}

/* The page cache and writeback context for @p. */
static int cache_setup(struct volume *vol, const struct volume_params *p)
{
	int err;

	err = pagecache_init(&vol->cache, p->cache_size, p->page_size,
			     vol->sb.block_size, p->dirty_bytes,
			     p->dirty_background_bytes, volume_writeback_cb,
			     vol);
	if (err)
		return err;
	vol->wpc = malloc(sizeof *vol->wpc);
	if (!vol->wpc)
		return -ENOMEM;
	return writepage_ctx_init(vol->wpc, &volume_writeback_ops, vol,
				  &vol->cache, &vol->backing);
}

static int volume_setup(struct volume *vol, const struct volume_params *params)
{
	bool rdonly = vol->flags & VOLUME_RDONLY;
	struct volume_params p;
	char *metadir;
	int err;

	err = open_dir(vol);
	if (err)
		return err;
	if (asprintf(&metadir, "%s/meta", vol->dir) < 0)
		return -ENOMEM;
	err = meta_open(metadir, rdonly, &vol->meta);
	free(metadir);
	if (err)
		return err;
	vol->sb = *meta_sb(vol->meta);
	vol->blkbits = (unsigned int)__builtin_ctz(vol->sb.block_size);
	vol->nr_blocks = vol->sb.size >> vol->blkbits;
	err = volume_params_resolve(params, vol->sb.block_size, &p);
	if (!err)
		err = volume_load(vol);
	if (!err)
		err = backing_open(&vol->backing, vol->dir, vol->sb.ag_count,
				   rdonly, vol->sb.block_size,
				   (enum backing_io)p.backing_io);
	vol->discard = p.discard;
	vol->dirty_expire_ms = p.dirty_expire_ms;
	vol->writeback_interval_ms = p.writeback_interval_ms;
	return err ? err : cache_setup(vol, &p);
}

/* Undo volume_setup(), whatever part of it was done. */
static void volume_free(struct volume *vol)
{
	if (vol->wpc)
		writepage_ctx_destroy(vol->wpc);
	free(vol->wpc);
	pagecache_destroy(&vol->cache);
	backing_close(&vol->backing);
	alloc_destroy(&vol->alloc);
	emap_destroy(&vol->map);
	extent_vec_free(&vol->pending);
	extent_vec_free(&vol->busy);
	extent_vec_free(&vol->committing);
	extent_vec_free(&vol->freeing);
	meta_close(vol->meta);
	if (vol->dirfd >= 0)
		close(vol->dirfd);	/* drops the flock */
	pthread_rwlock_destroy(&vol->invalidate_lock);
	pthread_mutex_destroy(&vol->meta_lock);
	pthread_mutex_destroy(&vol->pending_lock);
	pthread_rwlock_destroy(&vol->map_lock);
	pthread_mutex_destroy(&vol->wb_lock);
	pthread_cond_destroy(&vol->wb_cond);
	free(vol->dir);
	free(vol);
}

int volume_open(const char *dir, unsigned int flags,
		const struct volume_params *params, struct volume **volp)
{
	struct volume *vol = calloc(1, sizeof *vol);
	int err;

	if (!vol || !(vol->dir = strdup(dir))) {
		free(vol);
		return -ENOMEM;
	}
	vol->flags = flags;
	vol->dirfd = -1;
	vol->pack_next = PBLK_NULL;
	emap_init(&vol->map);
	pthread_rwlock_init(&vol->invalidate_lock, NULL);
	pthread_mutex_init(&vol->meta_lock, NULL);
	pthread_mutex_init(&vol->pending_lock, NULL);
	pthread_rwlock_init(&vol->map_lock, NULL);
	pthread_mutex_init(&vol->wb_lock, NULL);
	pthread_cond_init(&vol->wb_cond, NULL);
	err = volume_setup(vol, params);
	if (err) {
		volume_free(vol);
		return err;
	}
	*volp = vol;
	return 0;
}

int volume_close(struct volume *vol)
{
	int err;

	if (!vol)
		return 0;
	volume_stop_writeback(vol);
	err = volume_flush(vol);
	volume_free(vol);
	return err;
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
	st->cache_bytes = pagecache_bytes(&vol->cache);
	st->dirty_bytes = pagecache_dirty_bytes(&vol->cache);
	pthread_mutex_lock(&vol->wb_lock);
	st->writeback_passes = vol->pass_ends;
	pthread_mutex_unlock(&vol->wb_lock);
	st->direct_io = vol->backing.direct;
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

void volume_inject_fault(struct volume *vol, bool sync, unsigned long nth,
			 int err)
{
	backing_inject_fault(&vol->backing, sync ? BACKING_SYNC : BACKING_WRITE,
			     nth, err);
}

unsigned int volume_hold_writes(struct volume *vol, bool hold)
{
	return backing_hold_writes(&vol->backing, hold);
}
