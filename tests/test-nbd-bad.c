/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bad clients of a real nbdkit with the plugin: requests past the end of
 * the export, garbage bytes before and after the handshake, and clients
 * that hang up in the middle of a request or of a write's payload.  Each
 * time the server keeps serving a well-behaved client whose connection
 * stays open throughout, the flushed data does not change, and in the end
 * the server stops cleanly (no crash, no sanitizer report) and the data
 * is still there after a restart.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <libnbd.h>

#include "model.h"
#include "nbd-server.h"

#define SIZE (UINT64_C(64) << 20)
#define DATA_OFF (UINT64_C(1) << 20)	/* the flushed data */
#define DATA_LEN (UINT64_C(1) << 20)
#define ROUNDS 20

/* NBD protocol constants (the NBD spec's proto.md). */
#define NBD_IHAVEOPT UINT64_C(0x49484156454F5054)
#define NBD_OPT_EXPORT_NAME 1
#define NBD_FLAG_C_FIXED_NEWSTYLE 1
#define NBD_FLAG_C_NO_ZEROES 2
#define NBD_REQUEST_MAGIC 0x25609513
#define NBD_CMD_WRITE 1

static struct server srv;
static struct nbd_handle *good;	/* the client that behaves */
static unsigned char *data;	/* what DATA_OFF holds, flushed */
static char dir_arg[128];
static const char *vol_args[] = { dir_arg, "create=true", "size=64M", NULL };

static bool ok(int64_t r)
{
	if (r == -1)
		fprintf(stderr, "libnbd: %s (errno %d)\n", nbd_get_error(),
			nbd_get_errno());
	return r != -1;
}

/* Connect with libnbd, leaving the bounds to the server to check. */
static struct nbd_handle *open_handle(void)
{
	struct nbd_handle *h = nbd_create();

	if (h && ok(nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION)) &&
	    ok(nbd_set_strict_mode(h, 0)) &&
	    ok(nbd_connect_unix(h, srv.sock)))
		return h;
	nbd_close(h);
	return NULL;
}

/* Does the good client still get answers, and the flushed data? */
static bool still_serving(void)
{
	unsigned char *buf = malloc(DATA_LEN);
	bool same = buf && ok(nbd_pread(good, buf, DATA_LEN, DATA_OFF, 0)) &&
		    memcmp(buf, data, DATA_LEN) == 0;

	free(buf);
	return same;
}

/* A raw connection to the server's socket, with a receive timeout. */
static int raw_connect(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof addr.sun_path, "%s", srv.sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)) {
		perror("raw connection");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static bool send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	for (; len; p += n, len -= (size_t)n) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
	}
	return true;
}

static bool recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	for (; len; p += n, len -= (size_t)n) {
		n = recv(fd, p, len, 0);
		if (n <= 0)
			return false;
	}
	return true;
}

/*
 * The fixed newstyle handshake, by hand: read the greeting, send our
 * flags and NBD_OPT_EXPORT_NAME "", read the export size and flags.
 * Returns the connection, in the transmission phase, or -1.
 */
static int raw_handshake(void)
{
	unsigned char greeting[18], reply[10];
	uint32_t flags = htobe32(NBD_FLAG_C_FIXED_NEWSTYLE |
				 NBD_FLAG_C_NO_ZEROES);
	struct __attribute__((packed)) {
		uint64_t magic;
		uint32_t option, len;
	} opt = { htobe64(NBD_IHAVEOPT), htobe32(NBD_OPT_EXPORT_NAME), 0 };
	int fd = raw_connect();

	if (fd < 0)
		return -1;
	if (!recv_all(fd, greeting, sizeof greeting) ||
	    memcmp(greeting, "NBDMAGIC", 8) != 0 ||
	    !send_all(fd, &flags, sizeof flags) ||
	    !send_all(fd, &opt, sizeof opt) ||
	    !recv_all(fd, reply, sizeof reply)) {
		fprintf(stderr, "raw handshake failed\n");
		close(fd);
		return -1;
	}
	return fd;
}

/* An NBD request header for @type at @offset of @len bytes. */
struct __attribute__((packed)) request {
	uint32_t magic;
	uint16_t flags, type;
	uint64_t cookie, offset;
	uint32_t len;
};

static struct request request(uint16_t type, uint64_t offset, uint32_t len)
{
	struct request rq = {
		.magic = htobe32(NBD_REQUEST_MAGIC),
		.type = htobe16(type),
		.cookie = htobe64(1),
		.offset = htobe64(offset),
		.len = htobe32(len),
	};

	return rq;
}

/* Give the server time to notice a closed connection. */
static void settle(void)
{
	sleep_ms(20);
}

/* ---- requests past the end ---- */

/* Every command past the end fails; the connection stays usable. */
static void test_past_end(void)
{
	struct nbd_handle *h = open_handle();
	nbd_extent_callback cb = { 0 };
	unsigned char buf[2] = { 1, 2 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL(nbd_pread(h, buf, 2, SIZE - 1, 0), -1);
	CU_ASSERT(nbd_get_errno() == EINVAL || nbd_get_errno() == ENOSPC);
	CU_ASSERT_EQUAL(nbd_pwrite(h, buf, 2, SIZE - 1, 0), -1);
	CU_ASSERT(nbd_get_errno() == EINVAL || nbd_get_errno() == ENOSPC);
	CU_ASSERT_EQUAL(nbd_pwrite(h, buf, 1, SIZE, LIBNBD_CMD_FLAG_FUA), -1);
	CU_ASSERT_EQUAL(nbd_zero(h, 2, SIZE - 1, 0), -1);
	CU_ASSERT_EQUAL(nbd_trim(h, 4096, SIZE, 0), -1);
	CU_ASSERT_EQUAL(nbd_cache(h, 2, SIZE - 1, 0), -1);
	CU_ASSERT_EQUAL(nbd_pread(h, buf, 1, UINT64_MAX - 1, 0), -1);
	CU_ASSERT_EQUAL(nbd_block_status(h, 2, SIZE, cb, 0), -1);
	CU_ASSERT_EQUAL(nbd_aio_is_ready(h), 1);
	CU_ASSERT(ok(nbd_pread(h, buf, 1, SIZE - 1, 0)));
	CU_ASSERT(ok(nbd_pwrite(h, buf, 1, SIZE - 1, 0)));
	CU_ASSERT(ok(nbd_flush(h, 0)));
	CU_ASSERT(ok(nbd_shutdown(h, 0)));
	nbd_close(h);
	CU_ASSERT(still_serving());
}

/* ---- garbage ---- */

/*
 * ROUNDS connections made by @connect, each sent random bytes (the rng
 * seeded with @seed) and closed: the server must keep serving.
 */
static void send_garbage(int (*connect)(void), uint64_t seed)
{
	struct rng r = { seed };
	unsigned char junk[4096];
	size_t i;
	int round, fd;

	for (round = 0; round < ROUNDS; round++) {
		fd = connect();
		CU_ASSERT_FATAL(fd >= 0);
		for (i = 0; i < sizeof junk; i++)
			junk[i] = (unsigned char)rng_next(&r);
		send_all(fd, junk, 1 + rng_below(&r, sizeof junk));
		close(fd);
	}
	settle();
	CU_ASSERT(still_serving());
}

/* Random bytes instead of a handshake. */
static void test_garbage_handshake(void)
{
	send_garbage(raw_connect, 31);
}

/* A good handshake, then random bytes instead of requests. */
static void test_garbage_requests(void)
{
	send_garbage(raw_handshake, 37);
}

/* ---- hanging up mid-request ---- */

/*
 * Write requests over the flushed data whose client hangs up: after part
 * of the header, after the header, and after part of the payload.  None
 * of them may change the data.
 */
static void test_hangup_mid_write(void)
{
	struct request rq = request(NBD_CMD_WRITE, DATA_OFF, DATA_LEN);
	unsigned char *junk = malloc(DATA_LEN);
	static const size_t payload[] = { 0, 1, 4096, 65536 + 7,
					  DATA_LEN / 2, DATA_LEN - 1 };
	size_t i;
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(junk);
	memset(junk, 0xee, DATA_LEN);
	fd = raw_handshake();
	CU_ASSERT_FATAL(fd >= 0);
	send_all(fd, &rq, 10);			/* part of the header */
	close(fd);
	for (i = 0; i < sizeof payload / sizeof payload[0]; i++) {
		fd = raw_handshake();
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT(send_all(fd, &rq, sizeof rq));
		send_all(fd, junk, payload[i]);
		close(fd);
		settle();
		CU_ASSERT(still_serving());
	}
	free(junk);
}

/*
 * A client that sends a request and leaves without reading the reply.
 * One request, not more: nbdkit 1.32 (Debian 12) aborts, whatever the
 * plugin, when a client leaves with two or more replies unsent
 * ("raw_send_socket: Assertion `sock >= 0' failed").
 */
static void test_hangup_unread_reply(void)
{
	struct nbd_handle *h;
	unsigned char *buf = malloc(DATA_LEN);
	int round;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (round = 0; round < ROUNDS; round++) {
		h = open_handle();
		CU_ASSERT_PTR_NOT_NULL_FATAL(h);
		CU_ASSERT(ok(nbd_aio_pread(h, buf, DATA_LEN, DATA_OFF,
					   NBD_NULL_COMPLETION, 0)));
		nbd_close(h);	/* without waiting: the socket just closes */
	}
	settle();
	CU_ASSERT(still_serving());
	free(buf);
}

/* In the end: a clean stop, and the data is still there after it. */
static void test_restart(void)
{
	CU_ASSERT(ok(nbd_shutdown(good, 0)));
	nbd_close(good);
	good = NULL;
	CU_ASSERT(server_stop(&srv));
	CU_ASSERT_EQUAL_FATAL(server_start(&srv, "thinmap", vol_args), 0);
	good = open_handle();
	CU_ASSERT_PTR_NOT_NULL_FATAL(good);
	CU_ASSERT(still_serving());
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "requests past the end", test_past_end },
		{ "garbage instead of a handshake", test_garbage_handshake },
		{ "garbage instead of requests", test_garbage_requests },
		{ "hang-ups in the middle of a write", test_hangup_mid_write },
		{ "hang-ups with a reply unread", test_hangup_unread_reply },
		{ "clean stop and restart", test_restart },
		{ NULL, NULL },
	};
	struct rng r = { 41 };
	size_t i;
	int status;

	server_setup("test-nbd-bad");
	snprintf(dir_arg, sizeof dir_arg, "dir=%s/vol", test_tmpdir);
	data = malloc(DATA_LEN);
	if (!data || server_start(&srv, "thinmap", vol_args) != 0 ||
	    !(good = open_handle())) {
		fprintf(stderr, "cannot start the server\n");
		return 99;
	}
	for (i = 0; i < DATA_LEN; i++)
		data[i] = (unsigned char)rng_next(&r);
	if (!ok(nbd_pwrite(good, data, DATA_LEN, DATA_OFF, 0)) ||
	    !ok(nbd_flush(good, 0)))
		return 99;
	status = server_finish(&srv, good, unit_run("nbd-bad", tests));
	free(data);
	return status;
}
