/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * thinmap(8): the admin tool for thinmap volumes.
 *
 *   thinmap create DIR --size SIZE [--capacity SIZE | --ag-count N
 *                  --ag-size SIZE] [--block-size BYTES]
 *   thinmap info DIR [--json]      geometry and space usage
 *   thinmap check DIR [--json]     verify the metadata, change nothing
 *   thinmap map DIR [--json]       the extents, like `qemu-img map`
 *
 * The tool is a thin front end: every subcommand parses its options with
 * one shared getopt_long loop into struct cli, then calls one library
 * entry point (create_plan/create_volume, volume_open, check_volume) and
 * prints the answer as text or JSON.  info, check and map open the volume
 * read-only, so they work while nbdkit serves it.
 *
 * Exit status: 0 success; 1 a library error (or, for check, problems
 * found); 2 bad usage (or, for check, a volume that cannot be read).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmap/check.h"
#include "thinmap/create.h"
#include "thinmap/error.h"
#include "thinmap/extent.h"
#include "thinmap/meta.h"
#include "thinmap/size.h"
#include "thinmap/volume.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define EXIT_USAGE 2 /* bad arguments */
#define EXIT_CHECK_PROBLEMS 1 /* check: the volume has problems */
#define EXIT_CHECK_UNREADABLE 2 /* check: the volume cannot be read */

/* Everything the options of any subcommand can set. */
struct cli {
	const char *prog; /* "thinmap SUBCMD", the prefix of messages */
	const char *dir;
	bool json;
	struct create_opts create;
};

struct subcmd {
	const char *name;
	const char *synopsis; /* what follows "thinmap NAME" */
	const char *brief; /* what it does, in a few words */
	const char *help; /* what it does, then its options */
	const struct option *options;
	int (*run)(const struct cli *cli);
};

enum {
	OPT_HELP = 'h',
	OPT_JSON = 256,
	OPT_SIZE,
	OPT_CAPACITY,
	OPT_AG_COUNT,
	OPT_AG_SIZE,
	OPT_BLOCK_SIZE,
};

#define HELP_JSON "  --json              print JSON instead of text\n"
#define HELP_HELP "  -h, --help          print this help and exit\n"

/*
 * Messages and exits.
 */

/* Print "PROG: message" on stderr and exit with @status. */
static void __attribute__((noreturn, format(printf, 3, 4)))
die(const struct cli *cli, int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* After a message about bad arguments: where to find help, exit 2. */
static void __attribute__((noreturn)) usage_hint(const struct cli *cli)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", cli->prog);
	exit(EXIT_USAGE);
}

/* A bad argument: say what is wrong and where to find help, exit 2. */
static void __attribute__((noreturn, format(printf, 2, 3)))
usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage_hint(cli);
}

/*
 * Print "PROG: DIR: why" for the library error @err (a negative errno)
 * and exit with @status.  The library's message says more than the errno
 * when it set one, and usually names the file at fault already: then DIR
 * is not repeated.
 */
static void __attribute__((noreturn))
die_lib(const struct cli *cli, int status, int err)
{
	const char *msg = tm_get_error();
	size_t len = strlen(cli->dir);

	if (msg[0] == '\0')
		msg = strerror(-err);
	if (strncmp(msg, cli->dir, len) == 0 &&
	    (msg[len] == '/' || msg[len] == ':'))
		die(cli, status, "%s", msg);
	die(cli, status, "%s: %s", cli->dir, msg);
}

/*
 * Output helpers.
 */

/* Print @s as a JSON string, quoted and escaped (RFC 8259). */
static void json_string(FILE *fp, const char *s)
{
	const unsigned char *p;

	fputc('"', fp);
	for (p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", fp);
			break;
		case '\\':
			fputs("\\\\", fp);
			break;
		case '\n':
			fputs("\\n", fp);
			break;
		case '\t':
			fputs("\\t", fp);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(fp, "\\u%04x", *p);
			else
				fputc(*p, fp);
		}
	}
	fputc('"', fp);
}

/* Format a 16-byte UUID as 8-4-4-4-12 lowercase hex into @buf (37 bytes). */
static char *format_uuid(const uint8_t uuid[16], char buf[37])
{
	char *p = buf;
	int i;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", uuid[i]);
	}
	return buf;
}

/*
 * Option parsing, shared by every subcommand.
 */

/* Parse the SIZE argument @arg of option @name: > 0, else exit 2. */
static uint64_t size_arg(const struct cli *cli, const char *name,
			 const char *arg)
{
	uint64_t bytes;
	int r = parse_size(arg, &bytes);

	if (r == -ERANGE)
		usage_error(cli, "--%s: size too large '%s'", name, arg);
	if (r < 0)
		usage_error(cli, "--%s: invalid size '%s'", name, arg);
	if (bytes == 0)
		usage_error(cli, "--%s: size must not be zero", name);
	return bytes;
}

/* Parse the decimal count @arg of option @name: > 0, else exit 2. */
static uint64_t count_arg(const struct cli *cli, const char *name,
			  const char *arg)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0)
		usage_error(cli, "--%s: invalid number '%s'", name, arg);
	if (n == 0)
		usage_error(cli, "--%s: must not be zero", name);
	return n;
}

static void print_help(const char *prog, const struct subcmd *cmd)
{
	printf("Usage: %s %s\n%s", prog, cmd->synopsis, cmd->help);
}

/* Apply option @opt (long name @name, argument @arg) to @cli. */
static void apply_option(struct cli *cli, const struct subcmd *cmd, int opt,
			 const char *name, const char *arg)
{
	struct create_opts *c = &cli->create;

	switch (opt) {
	case OPT_HELP:
		print_help(cli->prog, cmd);
		exit(EXIT_SUCCESS);
	case OPT_JSON:
		cli->json = true;
		break;
	case OPT_SIZE:
		c->size = size_arg(cli, name, arg);
		break;
	case OPT_CAPACITY:
		c->capacity = size_arg(cli, name, arg);
		break;
	case OPT_AG_COUNT:
		c->ag_count = count_arg(cli, name, arg);
		break;
	case OPT_AG_SIZE:
		c->ag_size = size_arg(cli, name, arg);
		break;
	case OPT_BLOCK_SIZE:
		c->block_size = size_arg(cli, name, arg);
		break;
	default: /* getopt_long has printed what is wrong */
		usage_hint(cli);
	}
}

/* The long name of option @opt in @options, for messages. */
static const char *option_name(const struct option *options, int opt)
{
	for (; options->name; options++)
		if (options->val == opt)
			return options->name;
	return "?";
}

/*
 * Parse @argv (argv[0] is the subcommand) into @cli: @cmd's options, in
 * any order around exactly one DIR.  Exits 2 on bad arguments, 0 after
 * --help.  getopt_long's own messages start with argv[0], so that is
 * replaced by "thinmap SUBCMD".
 */
static void parse_args(struct cli *cli, const struct subcmd *cmd, int argc,
		       char **argv)
{
	int opt;

	argv[0] = (char *)cli->prog;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", cmd->options, NULL)) != -1)
		apply_option(cli, cmd, opt, option_name(cmd->options, opt),
			     optarg);
	if (optind >= argc)
		usage_error(cli, "missing DIR");
	if (optind + 1 < argc)
		usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	cli->dir = argv[optind];
}

/*
 * thinmap create
 */

static const struct option create_options[] = {
	{"size", required_argument, NULL, OPT_SIZE},
	{"capacity", required_argument, NULL, OPT_CAPACITY},
	{"ag-count", required_argument, NULL, OPT_AG_COUNT},
	{"ag-size", required_argument, NULL, OPT_AG_SIZE},
	{"block-size", required_argument, NULL, OPT_BLOCK_SIZE},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

/* Say what was created, like mkfs does. */
static void print_created(const char *dir, const struct thinmap_sb *sb)
{
	uint64_t ag_size = (uint64_t)sb->ag_blocks * sb->block_size;
	char size[32], cap[32], agsz[32], uuid[37];

	printf("created %s: size %s, capacity %s in %" PRIu32
	       " AGs of %s, block size %" PRIu32 ", uuid %s\n",
	       dir, format_size(sb->size, size, sizeof size),
	       format_size(ag_size * sb->ag_count, cap, sizeof cap),
	       sb->ag_count, format_size(ag_size, agsz, sizeof agsz),
	       sb->block_size, format_uuid(sb->uuid, uuid));
}

/*
 * Does @msg from create_plan() start with the parameter at fault, which
 * is also the name of the option ("block-size: ...")?
 */
static bool names_option(const char *msg)
{
	const struct option *o;
	size_t len;

	for (o = create_options; o->name; o++) {
		len = strlen(o->name);
		if (strncmp(msg, o->name, len) == 0 && msg[len] == ':')
			return true;
	}
	return false;
}

static int run_create(const struct cli *cli)
{
	struct thinmap_sb sb;
	int r;

	if (cli->create.size == 0)
		usage_error(cli, "--size is required");
	r = create_plan(&cli->create, &sb);
	if (r == -EINVAL)
		usage_error(cli, "%s%s",
			    names_option(tm_get_error()) ? "--" : "",
			    tm_get_error());
	if (r < 0)
		die_lib(cli, EXIT_FAILURE, r);
	r = create_volume(cli->dir, &sb);
	if (r < 0)
		die_lib(cli, EXIT_FAILURE, r);
	print_created(cli->dir, &sb);
	return EXIT_SUCCESS;
}

/*
 * thinmap info
 */

/* One line of `thinmap info`: a string, a number, or a size in bytes. */
struct field {
	const char *label; /* text output */
	const char *key; /* JSON output */
	const char *str; /* a string field when not NULL */
	uint64_t num;
	bool is_size; /* text output adds the human form */
};

static void print_field_text(const struct field *f)
{
	char human[32];

	printf("%s: ", f->label);
	if (f->str)
		printf("%s\n", f->str);
	else if (f->is_size)
		printf("%" PRIu64 " (%s)\n", f->num,
		       format_size(f->num, human, sizeof human));
	else
		printf("%" PRIu64 "\n", f->num);
}

static void print_field_json(const struct field *f, bool last)
{
	printf("    ");
	json_string(stdout, f->key);
	printf(": ");
	if (f->str)
		json_string(stdout, f->str);
	else
		printf("%" PRIu64, f->num);
	printf("%s\n", last ? "" : ",");
}

static void print_fields(const struct field *fields, size_t n, bool json)
{
	size_t i;

	if (json)
		printf("{\n");
	for (i = 0; i < n; i++) {
		if (json)
			print_field_json(&fields[i], i + 1 == n);
		else
			print_field_text(&fields[i]);
	}
	if (json)
		printf("}\n");
}

/* Open the volume in cli->dir read-only, or print why not and exit 1. */
static struct volume *open_volume_or_die(const struct cli *cli)
{
	struct volume *vol;
	int r = volume_open(cli->dir, VOLUME_RDONLY, NULL, &vol);

	if (r < 0)
		die_lib(cli, EXIT_FAILURE, r);
	return vol;
}

static void print_info(const struct cli *cli, const struct thinmap_sb *sb,
		       const struct volume_stat *st)
{
	uint64_t ag_size = (uint64_t)sb->ag_blocks * sb->block_size;
	uint64_t allocated = st->mapped + st->unwritten;
	uint64_t mean = st->extents ? allocated / st->extents : 0;
	char uuid[37];
	const struct field fields[] = {
		{"uuid", "uuid", format_uuid(sb->uuid, uuid), 0, false},
		{"format version", "format_version", NULL, sb->version, false},
		{"virtual size", "size", NULL, st->size, true},
		{"block size", "block_size", NULL, sb->block_size, true},
		{"AG count", "ag_count", NULL, sb->ag_count, false},
		{"AG size", "ag_size", NULL, ag_size, true},
		{"capacity", "capacity", NULL, st->capacity, true},
		{"allocated", "allocated", NULL, allocated, true},
		{"  mapped", "mapped", NULL, st->mapped, true},
		{"  unwritten", "unwritten", NULL, st->unwritten, true},
		{"free", "free", NULL, st->free, true},
		{"extents", "extents", NULL, st->extents, false},
		{"mean extent length", "mean_extent_length", NULL, mean, true},
	};

	print_fields(fields, sizeof fields / sizeof fields[0], cli->json);
}

static int run_info(const struct cli *cli)
{
	struct volume *vol = open_volume_or_die(cli);
	struct volume_stat st;

	volume_stat(vol, &st);
	print_info(cli, volume_sb(vol), &st);
	volume_close(vol);
	return EXIT_SUCCESS;
}

/*
 * thinmap check
 *
 * Text output streams each problem as it is found.  JSON output collects
 * the problems in a memory stream, so that a volume that cannot be read
 * halfway leaves no half-written JSON on stdout.
 */

struct check_ctx {
	bool json;
	FILE *out; /* stdout, or the memory stream for JSON */
	uint64_t reported;
};

static void report_problem(void *arg, uint64_t lblk, const char *msg)
{
	struct check_ctx *ctx = arg;

	if (!ctx->json) {
		if (lblk != UINT64_MAX)
			fprintf(ctx->out, "lblk %" PRIu64 ": ", lblk);
		fprintf(ctx->out, "%s\n", msg);
	} else {
		fprintf(ctx->out,
			"%s\n    {\"lblk\": ", ctx->reported ? "," : "");
		if (lblk != UINT64_MAX)
			fprintf(ctx->out, "%" PRIu64, lblk);
		else
			fputs("null", ctx->out);
		fputs(", \"message\": ", ctx->out);
		json_string(ctx->out, msg);
		fputc('}', ctx->out);
	}
	ctx->reported++;
}

static void print_check_json(const struct check_result *res,
			     const char *problems)
{
	printf("{\n  \"records\": %" PRIu64 ",\n  \"problems\": [%s%s],\n"
	       "  \"clean\": %s\n}\n",
	       res->records, problems, res->problems ? "\n  " : "",
	       res->problems ? "false" : "true");
}

static int run_check(const struct cli *cli)
{
	struct check_ctx ctx = {.json = cli->json, .out = stdout};
	struct check_result res = {0, 0};
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (cli->json && !(ctx.out = open_memstream(&buf, &len)))
		die(cli, EXIT_FAILURE, "%s", strerror(errno));
	r = check_volume(cli->dir, report_problem, &ctx, &res);
	if (cli->json && fclose(ctx.out) != 0)
		die(cli, EXIT_FAILURE, "%s", strerror(errno));
	if (r < 0) {
		free(buf);
		die_lib(cli, EXIT_CHECK_UNREADABLE, r);
	}
	if (cli->json)
		print_check_json(&res, buf);
	else
		printf("%" PRIu64 " records, %" PRIu64 " problems\n",
		       res.records, res.problems);
	free(buf);
	return res.problems ? EXIT_CHECK_PROBLEMS : EXIT_SUCCESS;
}

/*
 * thinmap map
 */

struct map_ctx {
	bool json;
	uint32_t block_size;
	uint64_t count;
};

static int print_extent(void *arg, const struct extent *ext)
{
	struct map_ctx *ctx = arg;
	uint64_t start = ext->lblk * ctx->block_size;
	uint64_t length = ext->len * ctx->block_size;
	uint64_t ag_offset = (uint64_t)PBLK_AGBNO(ext->pblk) * ctx->block_size;
	const char *state = extent_state_name(ext->state);

	if (!ctx->json) {
		printf("%-20" PRIu64 " %-20" PRIu64 " %-10s %-6" PRIu32
		       " %" PRIu64 "\n",
		       start, length, state, PBLK_AG(ext->pblk), ag_offset);
	} else {
		printf("%s{\"start\": %" PRIu64 ", \"length\": %" PRIu64
		       ", \"state\": ",
		       ctx->count ? ",\n" : "", start, length);
		json_string(stdout, state);
		printf(", \"ag\": %" PRIu32 ", \"ag_offset\": %" PRIu64 "}",
		       PBLK_AG(ext->pblk), ag_offset);
	}
	ctx->count++;
	return 0;
}

static int run_map(const struct cli *cli)
{
	struct volume *vol = open_volume_or_die(cli);
	struct map_ctx ctx = {
		.json = cli->json,
		.block_size = volume_sb(vol)->block_size,
	};

	if (cli->json)
		printf("[");
	else
		printf("%-20s %-20s %-10s %-6s %s\n", "start", "length",
		       "state", "ag", "ag offset");
	volume_map(vol, print_extent, &ctx);
	if (cli->json)
		printf("]\n");
	volume_close(vol);
	return EXIT_SUCCESS;
}

/*
 * The subcommands, and main.
 */

static const struct option json_options[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static const struct subcmd subcmds[] = {
	{
		"create",
		"DIR --size SIZE [OPTIONS]",
		"create a volume",
		"Create a thin-provisioned volume in DIR, which must not exist "
		"or be empty.\n\n"
		"  --size SIZE         virtual size of the volume (required)\n"
		"  --capacity SIZE     physical capacity (default: the "
		"virtual size)\n"
		"  --ag-count N        number of allocation groups\n"
		"  --ag-size SIZE      capacity of each allocation group\n"
		"  --block-size BYTES  a power of two, 512 to 65536 "
		"(default 4096)\n" HELP_HELP
		"\nOf --capacity, --ag-count and --ag-size, any two determine "
		"the third.\nSIZE is a number with an optional K, M, G, T, P "
		"or E suffix (powers of 1024).\n",
		create_options,
		run_create,
	},
	{
		"info",
		"DIR [--json]",
		"show the geometry and space usage",
		"Show the geometry and space usage of the volume in "
		"DIR.\n\n" HELP_JSON HELP_HELP,
		json_options,
		run_info,
	},
	{
		"check",
		"DIR [--json]",
		"verify the metadata",
		"Verify the metadata of the volume in DIR without changing "
		"it.\nExit status: 0 clean, 1 problems found, 2 cannot read "
		"the volume.\n\n" HELP_JSON HELP_HELP,
		json_options,
		run_check,
	},
	{
		"map",
		"DIR [--json]",
		"list the allocated extents",
		"List the allocated extents of the volume in DIR, in "
		"bytes.\n\n" HELP_JSON HELP_HELP,
		json_options,
		run_map,
	},
};

#define NR_SUBCMDS (sizeof subcmds / sizeof subcmds[0])

static void print_main_help(void)
{
	size_t i;

	printf("Usage: thinmap COMMAND DIR [OPTIONS]\n"
	       "       thinmap --help | --version\n"
	       "Manage thinmap volumes, the storage of the nbdkit thinmap "
	       "plugin.\n\nCommands:\n");
	for (i = 0; i < NR_SUBCMDS; i++)
		printf("  %-6s %-26s %s\n", subcmds[i].name,
		       subcmds[i].synopsis, subcmds[i].brief);
	printf("\nRun 'thinmap COMMAND --help' for the options of "
	       "COMMAND.\n");
}

static const struct subcmd *find_subcmd(const char *name)
{
	size_t i;

	for (i = 0; i < NR_SUBCMDS; i++)
		if (strcmp(subcmds[i].name, name) == 0)
			return &subcmds[i];
	return NULL;
}

/* Handle "thinmap [--help | --version]"; exits. */
static void __attribute__((noreturn)) run_toplevel(const char *arg)
{
	struct cli cli = {.prog = "thinmap"};

	if (arg && (!strcmp(arg, "--help") || !strcmp(arg, "-h"))) {
		print_main_help();
		exit(EXIT_SUCCESS);
	}
	if (arg && (!strcmp(arg, "--version") || !strcmp(arg, "-V"))) {
		printf("thinmap %s\n", PACKAGE_VERSION);
		exit(EXIT_SUCCESS);
	}
	if (!arg)
		usage_error(&cli, "missing COMMAND");
	usage_error(&cli, "unknown %s '%s'",
		    arg[0] == '-' ? "option" : "command", arg);
}

int main(int argc, char **argv)
{
	const struct subcmd *cmd = argc > 1 ? find_subcmd(argv[1]) : NULL;
	struct cli cli = {0};
	char prog[64];
	int status;

	if (!cmd)
		run_toplevel(argc > 1 ? argv[1] : NULL);
	snprintf(prog, sizeof prog, "thinmap %s", cmd->name);
	cli.prog = prog;
	parse_args(&cli, cmd, argc - 1, argv + 1);
	status = cmd->run(&cli);
	if (fflush(stdout) != 0 || ferror(stdout))
		die(&cli, EXIT_FAILURE, "error writing output: %s",
		    strerror(errno));
	return status;
}
