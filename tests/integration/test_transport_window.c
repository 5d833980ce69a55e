/* Integration: the HTTP/2 limits errqd announces are the ones server/transport.h names, and
 * messages far larger than the per-stream window still pass (issue 16: the window is paid per
 * open stream, so it is small).
 *  - The server's first SETTINGS frame, read on a raw TCP connection, carries
 *    SETTINGS_INITIAL_WINDOW_SIZE = TRANSPORT_STREAM_LOOKAHEAD and
 *    SETTINGS_MAX_CONCURRENT_STREAMS = the max_streams setting.
 *  - Batches of ~50 times the window, several on one stream, are acknowledged and stored. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "errq_time.h"
#include "harness.h"
#include "transport.h"

#define H2_FRAME_HEADER 9
#define H2_SETTINGS 0x4
#define H2_FLAG_ACK 0x1
#define H2_SETTINGS_MAX_CONCURRENT_STREAMS 0x3
#define H2_SETTINGS_INITIAL_WINDOW_SIZE 0x4
#define READ_MAX (64u << 10) /* what the test reads before the server's SETTINGS, at most */

static struct errqd_proc D;
static struct errq_idgen G;

static int setup(void **state)
{
	grpc_init();
	errq_idgen_init(&G);
	memset(&D, 0, sizeof(D));
	return 0;
}

static int teardown(void **state)
{
	int st = D.pid ? errqd_stop(&D, SIGTERM) : 0;
	errqd_cleanup(&D);
	grpc_shutdown_blocking();
	return st == 0 ? 0 : -1;
}

static uint32_t be(const uint8_t *p, int n)
{
	uint32_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Opens an HTTP/2 connection to errqd by hand (preface, empty SETTINGS) and returns the value of
 * each setting id 1..6 in the server's first SETTINGS frame (UINT32_MAX: not announced). */
static void server_settings(uint32_t out[7])
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const uint8_t empty_settings[H2_FRAME_HEADER] = {0, 0, 0, H2_SETTINGS, 0, 0, 0, 0, 0};
	for (int i = 0; i < 7; i++)
		out[i] = UINT32_MAX;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)D.port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(send(fd, preface, sizeof(preface) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(preface) - 1));
	assert_int_equal(send(fd, empty_settings, sizeof(empty_settings), MSG_NOSIGNAL), (ssize_t)sizeof(empty_settings));
	uint8_t *buf = malloc(READ_MAX);
	assert_non_null(buf);
	size_t len = 0, off = 0;
	bool found = false;
	uint64_t deadline = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	while (!found) {
		/* every whole frame read so far: the first SETTINGS that is not an ACK ends the search */
		while (!found && len - off >= H2_FRAME_HEADER) {
			uint32_t flen = be(buf + off, 3);
			if (len - off < H2_FRAME_HEADER + flen)
				break;
			const uint8_t *p = buf + off + H2_FRAME_HEADER;
			if (buf[off + 3] == H2_SETTINGS && !(buf[off + 4] & H2_FLAG_ACK)) {
				if (flen % 6)
					fail_msg("SETTINGS frame of %u bytes, not a multiple of 6", flen);
				for (uint32_t i = 0; i < flen; i += 6) {
					uint32_t id = be(p + i, 2);
					if (id >= 1 && id <= 6)
						out[id] = be(p + i + 2, 4);
				}
				found = true;
			}
			off += H2_FRAME_HEADER + flen;
		}
		if (found)
			break;
		if (len == READ_MAX)
			fail_msg("no SETTINGS frame in the server's first %zu bytes", len);
		uint64_t now = errq_mono_ns();
		if (now >= deadline)
			fail_msg("no SETTINGS frame from the server within %d ms", HARNESS_DEADLINE_MS);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, (int)((deadline - now) / ERRQ_NS_PER_MS) + 1) != 1)
			continue;
		ssize_t n = recv(fd, buf + len, READ_MAX - len, 0);
		if (n <= 0)
			fail_msg("the server closed the connection before its SETTINGS (%zd)", n);
		len += (size_t)n;
	}
	free(buf);
	close(fd);
}

static void test_settings_announce_the_limits(void **state)
{
	const char *args[] = {"--set", "max_streams=77", NULL};
	assert_int_equal(errqd_start(&D, args), 0);
	uint32_t s[7];
	server_settings(s);
	assert_int_equal(s[H2_SETTINGS_INITIAL_WINDOW_SIZE], TRANSPORT_STREAM_LOOKAHEAD);
	assert_int_equal(s[H2_SETTINGS_MAX_CONCURRENT_STREAMS], 77);
}

static void test_messages_larger_than_the_window_pass(void **state)
{
	enum { BATCHES = 3, EVENTS = 100, MSG = 2000 };
	assert_int_equal(errqd_start(&D, NULL), 0);
	char *msg = malloc(MSG + 1);
	assert_non_null(msg);
	memset(msg, 'w', MSG);
	msg[MSG] = '\0';
	struct rawstream rs;
	assert_int_equal(raw_open(&rs, D.addr), 0);
	for (int b = 0; b < BATCHES; b++) {
		Errq__V1__ReportRequest *r = treq_new(&G, (uint64_t)b + 1, EVENTS, "window", "WideError", msg);
		size_t wire = errq__v1__report_request__get_packed_size(r);
		if (wire < 40u * TRANSPORT_STREAM_LOOKAHEAD)
			fail_msg("a batch of %zu bytes is not far over the window of %d", wire, TRANSPORT_STREAM_LOOKAHEAD);
		assert_int_equal(raw_send(&rs, r), 0);
		treq_free(r);
	}
	for (int b = 0; b < BATCHES; b++) {
		Errq__V1__ReportResponse *resp = NULL;
		assert_int_equal(raw_recv(&rs, &resp, HARNESS_DEADLINE_MS), 0);
		assert_int_equal(resp->seq, (uint64_t)b + 1);
		assert_int_equal(resp->accepted, EVENTS);
		errq__v1__report_response__free_unpacked(resp, NULL);
	}
	char det[256];
	assert_int_equal(raw_finish(&rs, det, sizeof(det)), GRPC_STATUS_OK);
	raw_free(&rs);
	free(msg);
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open_v2(D.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM events WHERE service = 'window'", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), BATCHES * EVENTS);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_settings_announce_the_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_messages_larger_than_the_window_pass, setup, teardown),
	};
	return cmocka_run_group_tests_name("integration_transport_window", tests, NULL, NULL);
}
