/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Scratch volumes for the unit tests: a volume made by create_plan() and
 * create_volume() as DIR/vol in a fresh directory DIR under $TMPDIR (or
 * /tmp), and removed with everything around it.
 */
#ifndef THINMAP_TESTS_SCRATCH_H
#define THINMAP_TESTS_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "thinmap/create.h"
#include "thinmap/error.h"

/*
 * Create a volume of @opts for the test @name; fills *@sb if not NULL.
 * Returns the malloced path of the volume, or NULL with a message.
 */
static inline char *scratch_volume(const char *name,
				   const struct create_opts *opts,
				   struct thinmap_sb *sb)
{
	const char *tmpdir = getenv("TMPDIR");
	struct thinmap_sb local;
	char tmpl[4096], *dir;

	if (!sb)
		sb = &local;
	snprintf(tmpl, sizeof tmpl, "%s/thinmap-test-%s.XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp", name);
	if (!mkdtemp(tmpl) || asprintf(&dir, "%s/vol", tmpl) < 0) {
		perror("scratch dir");
		return NULL;
	}
	if (create_plan(opts, sb) != 0 || create_volume(dir, sb) != 0) {
		fprintf(stderr, "create: %s\n", tm_get_error());
		free(dir);
		return NULL;
	}
	return dir;
}

/* Remove the scratch directory around the volume @dir, and free @dir. */
static inline void scratch_remove(char *dir)
{
	char cmd[4200];

	if (!dir)
		return;
	*strrchr(dir, '/') = '\0';
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	free(dir);
}

#endif
