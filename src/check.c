/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `thinmap check` (see check.h): every record is decoded and validated on
 * its own, against its logical predecessor, and, after sorting by
 * physical block, against the records mapped just below it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "thinmap/check.h"
#include "thinmap/create.h"
#include "thinmap/error.h"
#include "thinmap/meta.h"

struct checker {
	const struct thinmap_sb *sb;
	void (*report)(void *arg, uint64_t lblk, const char *msg);
	void *arg;
	struct check_result *res;
	struct extent prev;	/* the last valid record */
	bool have_prev;
	struct extent_vec valid;	/* for the physical check */
	int err;		/* -ENOMEM while collecting */
};

static void __attribute__((format(printf, 3, 4)))
problem(struct checker *c, uint64_t lblk, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->res->problems++;
	c->report(c->arg, lblk, msg);
}

static void check_ag_files(struct checker *c, const char *dir)
{
	uint64_t want = (uint64_t)c->sb->ag_blocks * c->sb->block_size;
	struct stat st;
	uint32_t ag;

	for (ag = 0; ag < c->sb->ag_count; ag++) {
		char *path = ag_file_path(dir, ag);

		if (!path) {
			c->err = -ENOMEM;
			return;
		}
		if (stat(path, &st) != 0)
			problem(c, UINT64_MAX, "AG file %s: %m", path);
		else if ((uint64_t)st.st_size != want)
			problem(c, UINT64_MAX,
				"AG file %s is %jd bytes, not %" PRIu64, path,
				(intmax_t)st.st_size, want);
		free(path);
	}
}

static int check_record(void *arg, const struct extent *ext, const char *bad)
{
	struct checker *c = arg;
	const char *why = bad ? bad : meta_extent_invalid(c->sb, ext);

	c->res->records++;
	if (why) {
		problem(c, ext->lblk, "record %" PRIu64 "+%" PRIu64 " (%s, "
			"pblk %#" PRIx64 "): %s", ext->lblk, ext->len,
			extent_state_name(ext->state), ext->pblk, why);
		return 0;
	}
	if (c->have_prev && ext->lblk < extent_end(&c->prev))
		problem(c, ext->lblk, "blocks %" PRIu64 "..%" PRIu64 " are "
			"also mapped by the record at logical block %" PRIu64,
			ext->lblk, extent_end(&c->prev) - 1, c->prev.lblk);
	if (!c->have_prev || extent_end(ext) > extent_end(&c->prev))
		c->prev = *ext;
	c->have_prev = true;
	return extent_vec_push(&c->valid, ext);
}

/* Blocks mapped twice: each record against the furthest-reaching below. */
static void check_physical(struct checker *c)
{
	const struct extent *far = NULL, *ext;
	size_t i;

	extent_vec_sort_pblk(&c->valid);
	for (i = 0; i < c->valid.n; i++) {
		ext = &c->valid.v[i];
		if (far && ext->pblk < far->pblk + far->len)
			problem(c, ext->lblk, "AG %" PRIu32 " block %" PRIu32
				" is mapped twice: also by the record at "
				"logical block %" PRIu64, PBLK_AG(ext->pblk),
				PBLK_AGBNO(ext->pblk), far->lblk);
		if (!far || ext->pblk + ext->len > far->pblk + far->len)
			far = ext;
	}
}

int check_volume(const char *dir,
		 void (*report)(void *arg, uint64_t lblk, const char *msg),
		 void *arg, struct check_result *res)
{
	struct checker c = { .report = report, .arg = arg, .res = res };
	struct meta *meta;
	char *metadir;
	int err;

	res->records = res->problems = 0;
	if (asprintf(&metadir, "%s/meta", dir) < 0)
		return -ENOMEM;
	err = meta_open(metadir, true, &meta);
	free(metadir);
	if (err)
		return err;
	c.sb = meta_sb(meta);
	check_ag_files(&c, dir);
	err = c.err ? c.err : meta_load(meta, check_record, &c);
	if (!err)
		check_physical(&c);
	extent_vec_free(&c.valid);
	meta_close(meta);
	return err;
}
