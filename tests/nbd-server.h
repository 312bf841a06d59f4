/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A real nbdkit serving the thinmap plugin, for the libnbd tests.
 *
 * The server runs in the foreground (-f) as a child of the test, on a Unix
 * socket in the test's temporary directory, with --exit-with-parent so it
 * never outlives a test that dies; every other way out kills it by its
 * pid (server_stop(), server_kill(), and an atexit handler for the ones
 * still running).  It is ready once nbdkit has written its pid file.
 *
 * The environment (make check sets it): THINMAP_PLUGIN, the plugin;
 * THINMAP_NBDKIT_PRELOAD, what a sanitized plugin needs preloaded into an
 * nbdkit that is not (the sanitizer runtime, tests/sanitizer-shim.c);
 * then nbdkit's own leaks are not reported.  A test skips (exit 77)
 * without nbdkit or the plugin.
 */
#ifndef THINMAP_TESTS_NBD_SERVER_H
#define THINMAP_TESTS_NBD_SERVER_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#define SERVER_START_SECS 60	/* a sanitized build starts slowly */
#define SERVER_STOP_SECS 60	/* closing writes everything back */
#define SERVERS_MAX 4

struct server {
	pid_t pid;		/* 0: not running */
	char sock[100];	/* fits sun_path */
	char pidfile[160];
};

/* The test's temporary directory, removed at exit. */
static char test_tmpdir[64];
static struct server *running[SERVERS_MAX];

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Kill what still runs and remove the temporary directory. */
static inline void servers_atexit(void)
{
	char cmd[128];
	int i;

	for (i = 0; i < SERVERS_MAX; i++) {
		if (running[i] && running[i]->pid > 0) {
			kill(running[i]->pid, SIGKILL);
			waitpid(running[i]->pid, NULL, 0);
		}
	}
	if (test_tmpdir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", test_tmpdir);
	}
}

/*
 * Set up for @name: exit 77 (skip) without nbdkit or the plugin, make the
 * temporary directory and register the cleanup.  Returns the plugin.
 */
static inline const char *server_setup(const char *name)
{
	const char *plugin = getenv("THINMAP_PLUGIN");

	if (!plugin || access(plugin, R_OK) != 0) {
		printf("%s: skipped: no plugin (THINMAP_PLUGIN)\n", name);
		exit(77);
	}
	if (system("nbdkit --version >/dev/null 2>&1") != 0) {
		printf("%s: skipped: nbdkit is missing\n", name);
		exit(77);
	}
	snprintf(test_tmpdir, sizeof test_tmpdir, "/tmp/%s.XXXXXX", name);
	if (!mkdtemp(test_tmpdir)) {
		perror("mkdtemp");
		exit(99);
	}
	atexit(servers_atexit);
	return plugin;
}

/* Remember @s for the atexit handler. */
static inline void server_track(struct server *s)
{
	int i;

	for (i = 0; i < SERVERS_MAX; i++) {
		if (running[i] == s)
			return;
		if (!running[i]) {
			running[i] = s;
			return;
		}
	}
	fprintf(stderr, "too many servers\n");
	abort();
}

/* In the child: exec nbdkit with the plugin and its @args. */
static inline void __attribute__((noreturn))
server_exec(struct server *s, const char *const *args)
{
	const char *preload = getenv("THINMAP_NBDKIT_PRELOAD");
	const char *asan = getenv("ASAN_OPTIONS");
	char opts[256];
	const char *argv[64] = {
		"nbdkit", "-f", "--exit-with-parent", "-U", s->sock,
		"-P", s->pidfile, getenv("THINMAP_PLUGIN"),
	};
	size_t n = 8;

	if (preload && preload[0]) {
		/* nbdkit's own leaks are not ours to report */
		snprintf(opts, sizeof opts, "%s%sdetect_leaks=0",
			 asan ? asan : "", asan ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
		setenv("LD_PRELOAD", preload, 1);
	}
	while (*args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	execvp("nbdkit", (char *const *)argv);
	perror("nbdkit");
	_exit(126);
}

/*
 * Start nbdkit with the plugin and its NULL-terminated @args, serving on
 * a socket named @name in the temporary directory.  Returns 0 when it
 * serves, or -1 if it exited or did not get ready in time (then it is
 * killed).
 */
static inline int server_start(struct server *s, const char *name,
			       const char *const *args)
{
	struct stat st;
	int i;

	snprintf(s->sock, sizeof s->sock, "%s/%s.sock", test_tmpdir, name);
	snprintf(s->pidfile, sizeof s->pidfile, "%s/%s.pid", test_tmpdir, name);
	unlink(s->pidfile);
	unlink(s->sock);	/* a killed nbdkit leaves it behind */
	server_track(s);
	fflush(NULL);
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0)
		server_exec(s, args);
	for (i = 0; i < SERVER_START_SECS * 20; i++) {
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			return -1;
		}
		if (stat(s->pidfile, &st) == 0 && st.st_size > 0)
			return 0;
		sleep_ms(50);
	}
	fprintf(stderr, "nbdkit did not start in %d s\n", SERVER_START_SECS);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
	return -1;
}

/* Wait for @s to exit after @sig; SIGKILL it if it takes too long. */
static inline int server_wait(struct server *s, int sig)
{
	int i, wstatus = -1;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	for (i = 0; i < SERVER_STOP_SECS * 20; i++) {
		if (waitpid(s->pid, &wstatus, WNOHANG) == s->pid)
			break;
		sleep_ms(50);
	}
	if (i == SERVER_STOP_SECS * 20) {
		fprintf(stderr, "nbdkit did not stop in %d s\n",
			SERVER_STOP_SECS);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &wstatus, 0);
	}
	s->pid = 0;
	return wstatus;
}

/*
 * Stop @s as an admin would (SIGTERM: it closes the volume, writing
 * everything back).  Returns true if it exited cleanly, with status 0 (a
 * sanitizer's report makes it fail).
 */
static inline bool server_stop(struct server *s)
{
	int wstatus = server_wait(s, SIGTERM);

	if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
		fprintf(stderr, "nbdkit: wait status %#x\n", wstatus);
		return false;
	}
	return true;
}

/*
 * The end of a test program: disconnect @h (if any), and stop @s as
 * server_stop() does.  Returns @status, or 1 if the server did not exit
 * cleanly.
 */
static inline int server_finish(struct server *s, struct nbd_handle *h,
				int status)
{
	if (h) {
		nbd_shutdown(h, 0);
		nbd_close(h);
	}
	return server_stop(s) ? status : 1;
}

/* Kill @s with SIGKILL: a crash, nothing written back. */
static inline void server_kill(struct server *s)
{
	server_wait(s, SIGKILL);
}

#endif
