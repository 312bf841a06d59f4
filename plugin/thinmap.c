/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nbdkit-thinmap-plugin(1): serve a thinmap volume over NBD.
 *
 * A table of nbdkit callbacks, each translating one NBD request into the
 * volume operation of thinmap/volume.h that does it, and nothing more.
 * The parameters fill a struct volume_params (and, for create=true, a
 * struct create_opts); the volume is opened in get_ready, before nbdkit
 * forks, so that its errors reach the admin's terminal, and its writeback
 * daemon is started in after_fork, whose threads survive.
 *
 * nbdkit tells a plugin about `nbdkit -r` only per connection (the
 * readonly argument of .open), after get_ready: a volume that must be
 * opened without its read-write lock is asked for with readonly=true.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <lmdb.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "thinmap/create.h"
#include "thinmap/error.h"
#include "thinmap/size.h"
#include "thinmap/volume.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

#define MAX_REQUEST (32u << 20)	/* the block size constraint we advertise */

/* -D thinmap.verbose=1: log every request (with -v). */
NBDKIT_DLL_PUBLIC int thinmap_debug_verbose;

/* What the parameters asked for; 0 or NULL where one was not given. */
struct config {
	char *dir;		/* absolute: nbdkit changes directory */
	bool create;
	bool readonly;
	struct create_opts geometry;	/* size= .. block-size= */
	struct volume_params params;	/* cache-size= .. discard= */
	uint64_t dirty_ratio;		/* percent of cache-size */
	uint64_t dirty_background_ratio;
};

static struct config cfg;
static struct volume *vol;

/*
 * An error before serving: nbdkit names the plugin only in the errors of
 * connections, so these name it themselves.
 */
#define config_error(fmt, ...) nbdkit_error("thinmap: " fmt, ##__VA_ARGS__)

/*
 * Parameters.
 */

enum param_kind {
	P_DIR,
	P_BOOL,
	P_SIZE,		/* bytes, with a K/M/G.. suffix */
	P_SIZE32,	/* the same, into a uint32_t */
	P_COUNT,	/* a positive decimal number */
	P_PERCENT,	/* 1 .. 100 */
	P_SECONDS,	/* decimals allowed, into uint32_t milliseconds */
	P_BACKING_IO,
	P_DISCARD,
};

struct param {
	const char *key;
	enum param_kind kind;
	void *val;		/* char *, bool, enum, uint64_t or uint32_t */
	uint64_t max;		/* numbers: the largest value */
};

static const struct param params[] = {
	{ "dir", P_DIR, &cfg.dir, 0 },
	{ "create", P_BOOL, &cfg.create, 0 },
	{ "readonly", P_BOOL, &cfg.readonly, 0 },
	{ "size", P_SIZE, &cfg.geometry.size, INT64_MAX },
	{ "capacity", P_SIZE, &cfg.geometry.capacity, INT64_MAX },
	{ "ag-count", P_COUNT, &cfg.geometry.ag_count, AG_COUNT_MAX },
	{ "ag-size", P_SIZE, &cfg.geometry.ag_size, INT64_MAX },
	{ "block-size", P_SIZE, &cfg.geometry.block_size, BLOCK_SIZE_MAX },
	{ "cache-size", P_SIZE, &cfg.params.cache_size, INT64_MAX },
	{ "page-size", P_SIZE32, &cfg.params.page_size, UINT32_MAX },
	{ "dirty-bytes", P_SIZE, &cfg.params.dirty_bytes, INT64_MAX },
	{ "dirty-background-bytes", P_SIZE, &cfg.params.dirty_background_bytes,
	  INT64_MAX },
	{ "dirty-ratio", P_PERCENT, &cfg.dirty_ratio, 100 },
	{ "dirty-background-ratio", P_PERCENT, &cfg.dirty_background_ratio,
	  100 },
	{ "dirty-expire", P_SECONDS, &cfg.params.dirty_expire_ms, UINT32_MAX },
	{ "writeback-interval", P_SECONDS, &cfg.params.writeback_interval_ms,
	  UINT32_MAX },
	{ "backing-io", P_BACKING_IO, &cfg.params.backing_io, 0 },
	{ "discard", P_DISCARD, &cfg.params.discard, 0 },
};

/* The values of the enum parameters, in the order of their enums. */
static const char *const backing_io_names[] = {
	[VOLUME_IO_AUTO] = "auto",
	[VOLUME_IO_DIRECT] = "direct",
	[VOLUME_IO_BUFFERED] = "buffered",
	NULL,
};

static const char *const discard_names[] = {
	[VOLUME_DISCARD_PUNCH] = "punch",
	[VOLUME_DISCARD_IGNORE] = "ignore",
	NULL,
};

/* Parse a decimal number with no sign or suffix, at most @max. */
static int parse_count(const char *str, uint64_t max, uint64_t *n)
{
	char *end;

	if (str[0] < '0' || str[0] > '9')
		return -EINVAL;
	errno = 0;
	*n = strtoull(str, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	return errno || *n > max ? -ERANGE : 0;
}

/*
 * Parse seconds with at most three decimals ("5", "0.5", "1.25") into
 * milliseconds, at most @max.
 */
static int parse_seconds(const char *str, uint64_t max, uint64_t *ms)
{
	int decimals = -1;	/* digits after the point; -1: no point */
	int scale;
	const char *p;

	*ms = 0;
	for (p = str; *p; p++) {
		if (*p == '.' && decimals < 0) {
			decimals = 0;
			continue;
		}
		if (*p < '0' || *p > '9' || decimals == 3)
			return -EINVAL;
		*ms = *ms * 10 + (uint64_t)(*p - '0');
		decimals += decimals >= 0;
		if (*ms > max)
			return -ERANGE;
	}
	if (p == str || (p == str + 1 && decimals == 0))
		return -EINVAL;		/* "" or "." */
	for (scale = decimals < 0 ? 3 : 3 - decimals; scale > 0; scale--)
		*ms *= 10;
	return *ms > max ? -ERANGE : 0;
}

/* Index of @str in the NULL-terminated @names, or -EINVAL. */
static int parse_name(const char *str, const char *const *names)
{
	int i;

	for (i = 0; names[i]; i++)
		if (strcmp(str, names[i]) == 0)
			return i;
	return -EINVAL;
}

/* Parse @value of the numeric parameter @p into *@n, which is not 0. */
static int parse_number(const struct param *p, const char *value, uint64_t *n)
{
	int err;

	switch (p->kind) {
	case P_SIZE:
	case P_SIZE32:
		err = parse_size(value, n);
		if (!err && *n > p->max)
			err = -ERANGE;
		break;
	case P_SECONDS:
		err = parse_seconds(value, p->max, n);
		break;
	default:
		err = parse_count(value, p->max, n);
	}
	if (err == -EINVAL)
		config_error("%s: cannot parse '%s'", p->key, value);
	else if (err == -ERANGE)
		config_error("%s: '%s' is too large", p->key, value);
	else if (*n == 0)
		config_error("%s: must not be zero", p->key);
	return err || *n == 0 ? -1 : 0;
}

/* Store @value for the parameter @p. */
static int param_set(const struct param *p, const char *value)
{
	uint64_t n;
	int r;

	switch (p->kind) {
	case P_DIR:
		free(cfg.dir);
		cfg.dir = nbdkit_absolute_path(value);
		return cfg.dir ? 0 : -1;
	case P_BOOL:
		r = nbdkit_parse_bool(value);
		if (r < 0) {
			config_error("%s: cannot parse '%s'", p->key, value);
			return -1;
		}
		*(bool *)p->val = r;
		return 0;
	case P_BACKING_IO:
	case P_DISCARD:
		r = parse_name(value, p->kind == P_DISCARD ? discard_names
							   : backing_io_names);
		if (r < 0) {
			config_error("%s: cannot parse '%s'", p->key, value);
			return -1;
		}
		if (p->kind == P_DISCARD)
			*(enum volume_discard *)p->val = r;
		else
			*(enum volume_backing_io *)p->val = r;
		return 0;
	default:
		if (parse_number(p, value, &n))
			return -1;
		if (p->kind == P_SIZE32 || p->kind == P_SECONDS)
			*(uint32_t *)p->val = (uint32_t)n;
		else
			*(uint64_t *)p->val = n;
		return 0;
	}
}

/* param_set() stores P_SIZE32 and P_SECONDS values as uint32_t. */
_Static_assert(sizeof cfg.params.page_size == sizeof(uint32_t) &&
		       sizeof cfg.params.dirty_expire_ms == sizeof(uint32_t) &&
		       sizeof cfg.params.writeback_interval_ms ==
			       sizeof(uint32_t),
	       "32-bit parameters");

/* .config: one key=value. */
static int thinmap_config(const char *key, const char *value)
{
	size_t i;

	for (i = 0; i < sizeof params / sizeof params[0]; i++)
		if (strcmp(key, params[i].key) == 0)
			return param_set(&params[i], value);
	config_error("%s: unknown parameter (see nbdkit thinmap --help)", key);
	return -1;
}

/*
 * A limit given as bytes or as a percentage of the cache, not both:
 * the percentage turned into bytes in *@bytes.
 */
static int ratio_to_bytes(const char *name, uint64_t ratio, uint64_t cache,
			  uint64_t *bytes)
{
	if (ratio && *bytes) {
		config_error("%s-ratio: cannot be used with %s-bytes", name,
			     name);
		return -1;
	}
	if (ratio)
		*bytes = cache / 100 * ratio;
	return 0;
}

/*
 * The writeback limits: from ratios, and in order (checked by the
 * library, before anything is created).
 */
static int check_dirty_limits(void)
{
	struct volume_params *vp = &cfg.params, resolved;
	uint64_t cache = vp->cache_size ? vp->cache_size
					: volume_default_cache_size();

	if (ratio_to_bytes("dirty", cfg.dirty_ratio, cache, &vp->dirty_bytes) ||
	    ratio_to_bytes("dirty-background", cfg.dirty_background_ratio,
			   cache, &vp->dirty_background_bytes))
		return -1;
	if (volume_params_resolve(vp, DEFAULT_BLOCK_SIZE, &resolved)) {
		config_error("%s", tm_get_error());
		return -1;
	}
	return 0;
}

/* The geometry parameters need create=true (size= may check a volume). */
static int check_create(void)
{
	const struct create_opts *g = &cfg.geometry;
	const char *alone = g->capacity ? "capacity"
			    : g->ag_count ? "ag-count"
			    : g->ag_size ? "ag-size"
			    : g->block_size ? "block-size"
					    : NULL;

	if (!cfg.create && alone) {
		config_error("%s: only used with create=true", alone);
		return -1;
	}
	if (cfg.create && cfg.readonly) {
		config_error("readonly: cannot be used with create=true");
		return -1;
	}
	return 0;
}

/* .config_complete: dir= is required, and the parameters must agree. */
static int thinmap_config_complete(void)
{
	if (!cfg.dir) {
		config_error("dir: required: the volume directory "
			     "(nbdkit thinmap dir=DIR)");
		return -1;
	}
	return check_create() || check_dirty_limits() ? -1 : 0;
}

#define thinmap_config_help \
	"dir=DIR                (required) The volume directory.\n" \
	"create=true            Create a volume if DIR has none: false.\n" \
	"size=SIZE              Virtual size (create; else checked).\n" \
	"capacity=SIZE          Physical capacity (create): size.\n" \
	"ag-count=N             Allocation groups (create): chosen.\n" \
	"ag-size=SIZE           Allocation group size (create): chosen.\n" \
	"block-size=SIZE        Block size (create): 4K.\n" \
	"readonly=true          Open read-only, without the lock: false.\n" \
	"cache-size=SIZE        Page cache memory: 1G (at most 1/4 of RAM).\n" \
	"page-size=SIZE         Page (folio) size: 64K.\n" \
	"dirty-bytes=SIZE       Writers wait above this: cache-size/2.\n" \
	"dirty-ratio=PERCENT    The same in percent of cache-size.\n" \
	"dirty-background-bytes=SIZE\n" \
	"                       Writeback starts above this: dirty-bytes/2.\n" \
	"dirty-background-ratio=PERCENT\n" \
	"                       The same in percent of cache-size.\n" \
	"dirty-expire=SECONDS   Write back data dirty this long: 5.\n" \
	"writeback-interval=SECONDS\n" \
	"                       Look for expired dirty data this often: 1.\n" \
	"backing-io=auto|direct|buffered\n" \
	"                       How the AG files are written: auto.\n" \
	"discard=punch|ignore   Punch freed space out of AG files: punch."

/* .dump_plugin: the versions of thinmap and the libraries it uses. */
static void thinmap_dump_plugin(void)
{
	int major, minor, patch;

	mdb_version(&major, &minor, &patch);
	printf("thinmap_version=%s\n", PACKAGE_VERSION);
	printf("lmdb_version=%d.%d.%d\n", major, minor, patch);
	printf("liburing_version=%s\n", LIBURING_VERSION);
	printf("libev_version=%d.%d\n", ev_version_major(), ev_version_minor());
}

/*
 * Opening.
 */

/*
 * Print the library's message for @err (a negative errno), or strerror,
 * after @prefix.
 */
static void report(const char *prefix, int err)
{
	const char *msg = tm_get_error();

	nbdkit_error("%s%s", prefix, msg[0] ? msg : strerror(-err));
	tm_set_error("%s", "");	/* a later error may come without one */
}

/* Create the volume that create=true asks for, and open it. */
static int create_and_open(unsigned int flags)
{
	char *why_not_open = strdup(tm_get_error());
	struct thinmap_sb sb;
	int err;

	if (!why_not_open)
		return -ENOMEM;
	if (!cfg.geometry.size) {
		tm_set_error("size: required to create a volume in %s",
			     cfg.dir);
		err = -EINVAL;
		goto out;
	}
	err = create_plan(&cfg.geometry, &sb);
	if (!err)
		err = create_volume(cfg.dir, &sb);
	if (err == -EEXIST)	/* why it holds no volume matters more */
		tm_set_error("%s (create=true: %s is not empty, so no volume "
			     "is created there)", why_not_open, cfg.dir);
	if (!err) {
		nbdkit_debug("created a volume in %s", cfg.dir);
		err = volume_open(cfg.dir, flags, &cfg.params, &vol);
	}
out:
	free(why_not_open);
	return err;
}

/* A volume that exists must have the geometry that was asked for. */
static int check_geometry(void)
{
	const struct thinmap_sb *sb = volume_sb(vol);
	const struct create_opts *g = &cfg.geometry;

	if (g->size && g->size != sb->size) {
		tm_set_error("size: the volume in %s has size %" PRIu64
			     ", not %" PRIu64, cfg.dir, sb->size, g->size);
		return -EINVAL;
	}
	if (g->block_size && g->block_size != sb->block_size) {
		tm_set_error("block-size: the volume in %s has block size "
			     "%" PRIu32 ", not %" PRIu64, cfg.dir,
			     sb->block_size, g->block_size);
		return -EINVAL;
	}
	return 0;
}

/* The library's reports of failures nobody waits for (tm_log). */
static void log_error(const char *msg)
{
	nbdkit_error("thinmap: %s", msg);
}

/* .get_ready: open the volume (creating it first if asked to). */
static int thinmap_get_ready(void)
{
	unsigned int flags = cfg.readonly ? VOLUME_RDONLY : 0;
	int err;

	tm_set_log(log_error);
	err = volume_open(cfg.dir, flags, &cfg.params, &vol);
	if (err == -ENOENT && cfg.create)
		err = create_and_open(flags);
	if (!err)
		err = check_geometry();
	if (err) {
		report("thinmap: ", err);
		volume_close(vol);
		vol = NULL;
		return -1;
	}
	return 0;
}

/* .after_fork: the writeback daemon's thread must start after the fork. */
static int thinmap_after_fork(void)
{
	int err = cfg.readonly ? 0 : volume_start_writeback(vol);

	if (err) {
		report("thinmap: ", err);
		return -1;
	}
	return 0;
}

/* .cleanup: close the volume, which writes everything back. */
static void thinmap_cleanup(void)
{
	int err = volume_close(vol);

	vol = NULL;
	if (err)
		report("thinmap: ", err);
}

/* .unload: free what the parameters allocated. */
static void thinmap_unload(void)
{
	free(cfg.dir);
}

/*
 * Connections and what they are told.
 */

/* .open: every connection shares the one volume. */
static void *thinmap_open(int readonly)
{
	return NBDKIT_HANDLE_NOT_NEEDED;
}

/* .get_size: the virtual size. */
static int64_t thinmap_get_size(void *handle)
{
	return (int64_t)volume_sb(vol)->size;
}

/*
 * .block_size: any alignment works; a request of whole blocks avoids
 * reading what a partial block keeps (read-modify-write).
 */
static int thinmap_block_size(void *handle, uint32_t *minimum,
			      uint32_t *preferred, uint32_t *maximum)
{
	*minimum = 1;
	*preferred = volume_sb(vol)->block_size;
	*maximum = MAX_REQUEST;
	return 0;
}

/* .can_write: unless opened with readonly=true. */
static int thinmap_can_write(void *handle)
{
	return !cfg.readonly;
}

/*
 * .can_flush, .can_trim, .can_zero, .can_fast_zero, .can_extents and
 * .can_multi_conn: always.  Flush is volume-wide, so multi-conn holds.
 */
static int thinmap_can_always(void *handle)
{
	return 1;
}

/* .can_fua: FUA is done by the volume, not emulated by a flush. */
static int thinmap_can_fua(void *handle)
{
	return NBDKIT_FUA_NATIVE;
}

/* .can_cache: reading into the page cache. */
static int thinmap_can_cache(void *handle)
{
	return NBDKIT_CACHE_NATIVE;
}

/*
 * Requests.
 */

/* Log a request for -D thinmap.verbose=1. */
static void trace(const char *what, uint32_t count, uint64_t offset,
		  uint32_t flags)
{
	if (thinmap_debug_verbose)
		nbdkit_debug("%s count=%" PRIu32 " offset=%" PRIu64
			     " flags=%#" PRIx32, what, count, offset, flags);
}

/* The reply to a request the volume answered @err (0 or -errno). */
static int reply(int err)
{
	if (err >= 0)
		return 0;
	nbdkit_set_error(-err);
	report("", err);
	return -1;
}

/* The volume's flags for nbdkit's @flags of a write, trim or zero. */
static unsigned int volume_flags(uint32_t flags)
{
	return (flags & NBDKIT_FLAG_FUA ? VOLUME_FUA : 0) |
	       (flags & NBDKIT_FLAG_MAY_TRIM ? VOLUME_MAY_TRIM : 0);
}

/* .pread: holes and unwritten blocks read as zeros. */
static int thinmap_pread(void *handle, void *buf, uint32_t count,
			 uint64_t offset, uint32_t flags)
{
	trace("pread", count, offset, flags);
	return reply(volume_pread(vol, buf, count, offset));
}

/* .pwrite: FUA makes it durable before the reply. */
static int thinmap_pwrite(void *handle, const void *buf, uint32_t count,
			  uint64_t offset, uint32_t flags)
{
	trace("pwrite", count, offset, flags);
	return reply(volume_pwrite(vol, buf, count, offset,
				   volume_flags(flags)));
}

/* .flush: every write completed before it is durable. */
static int thinmap_flush(void *handle, uint32_t flags)
{
	trace("flush", 0, 0, flags);
	return reply(volume_flush(vol));
}

/* .trim: whole blocks become holes. */
static int thinmap_trim(void *handle, uint32_t count, uint64_t offset,
			uint32_t flags)
{
	trace("trim", count, offset, flags);
	return reply(volume_trim(vol, count, offset, volume_flags(flags)));
}

/*
 * .zero: holes with MAY_TRIM, else unwritten blocks.  Metadata only, so
 * FAST_ZERO needs nothing.
 */
static int thinmap_zero(void *handle, uint32_t count, uint64_t offset,
			uint32_t flags)
{
	trace("zero", count, offset, flags);
	return reply(volume_zero(vol, count, offset, volume_flags(flags)));
}

/* .cache: read into the page cache. */
static int thinmap_cache(void *handle, uint32_t count, uint64_t offset,
			 uint32_t flags)
{
	trace("cache", count, offset, flags);
	return reply(volume_cache(vol, count, offset));
}

/* Where volume_extents() reports to, and whether one run is enough. */
struct extents_ctx {
	struct nbdkit_extents *extents;
	bool req_one;
};

/* Add one run of block status; stop after it for REQ_ONE. */
static int add_extent(void *arg, uint64_t offset, uint64_t length,
		      uint32_t flags)
{
	struct extents_ctx *ctx = arg;
	uint32_t type = (flags & VOLUME_EXTENT_HOLE ? NBDKIT_EXTENT_HOLE : 0) |
			(flags & VOLUME_EXTENT_ZERO ? NBDKIT_EXTENT_ZERO : 0);

	if (nbdkit_add_extent(ctx->extents, offset, length, type) == -1)
		return -errno;
	return ctx->req_one;	/* 1 stops volume_extents() */
}

/* .extents: block status. */
static int thinmap_extents(void *handle, uint32_t count, uint64_t offset,
			   uint32_t flags, struct nbdkit_extents *extents)
{
	struct extents_ctx ctx = {
		.extents = extents,
		.req_one = flags & NBDKIT_FLAG_REQ_ONE,
	};
	int err;

	trace("extents", count, offset, flags);
	err = volume_extents(vol, count, offset, add_extent, &ctx);
	return reply(err > 0 ? 0 : err);
}

static struct nbdkit_plugin plugin = {
	.name = "thinmap",
	.longname = "nbdkit thinmap plugin",
	.version = PACKAGE_VERSION,
	.description = "Serve a thin-provisioned, extent-mapped thinmap "
		       "volume.",
	.unload = thinmap_unload,
	.config = thinmap_config,
	.config_complete = thinmap_config_complete,
	.config_help = thinmap_config_help,
	.magic_config_key = "dir",
	.dump_plugin = thinmap_dump_plugin,
	.get_ready = thinmap_get_ready,
	.after_fork = thinmap_after_fork,
	.cleanup = thinmap_cleanup,
	.open = thinmap_open,
	.get_size = thinmap_get_size,
	.block_size = thinmap_block_size,
	.can_write = thinmap_can_write,
	.can_flush = thinmap_can_always,
	.can_trim = thinmap_can_always,
	.can_zero = thinmap_can_always,
	.can_fast_zero = thinmap_can_always,
	.can_extents = thinmap_can_always,
	.can_multi_conn = thinmap_can_always,
	.can_fua = thinmap_can_fua,
	.can_cache = thinmap_can_cache,
	.pread = thinmap_pread,
	.pwrite = thinmap_pwrite,
	.flush = thinmap_flush,
	.trim = thinmap_trim,
	.zero = thinmap_zero,
	.cache = thinmap_cache,
	.extents = thinmap_extents,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
