/* Integration: hostile clients against one errqd while a well-behaved client reports beside
 * them (issue 14, "Hostile clients").
 *
 * The good client sends a batch, waits for its answer, sends the next; it measures each
 * answer's latency.  First alone (the quiet p99), then through the hostile phases:
 *   A. random bytes on the gRPC port, with and without the HTTP/2 preface;
 *   B. truncated HTTP/2 frames (a SETTINGS and a HEADERS frame cut short, one left hanging);
 *   C. odd messages, each on its own stream and checked: a 1 MiB message string (stored,
 *      truncated), a message over 4 MiB (RESOURCE_EXHAUSTED), invalid UTF-8 (rejected alone),
 *      100 000 details and 10 000 frames (stored, cut to 64), absurd timestamps (stored),
 *      seq going backwards (each batch answered with its own seq), 10 001 failures
 *      (RESOURCE_EXHAUSTED);
 *   D. authorization metadata with a wrong token and a 64 KiB one (with or without token
 *      checking: the call gets an answer or a status, never a crash);
 *   E. 1 000 idle streams (10 connections of 100), held open through F;
 *   F. 100 streams that send batches of HOSTILE_NR_BATCH invalid events (each answer carries
 *      that many rejections) and never read their answers.
 * Throughout, a monitor reads errqd's VmRSS from /proc every 10 ms.  Asserted:
 *   - errqd stays up, answers health checks, and exits 0 on SIGTERM at the end;
 *   - its peak RSS stays under HOSTILE_RSS_BOUND_MIB (docs/architecture.md, "Hostile
 *     clients"); the monitor kills errqd when it passes the bound, so that a regression fails
 *     the test instead of exhausting the machine;
 *   - the good client's acks keep coming: its p99 under the hostile load is within
 *     HOSTILE_P99_FACTOR of the quiet p99 (floored at HOSTILE_P99_FLOOR_MS: a quiet p99 of a
 *     few milliseconds would make scheduler noise a failure: under ASan beside make
 *     test-long's other load a quiet 6.7 ms met a hostile 72.6 ms; a starved client waits
 *     seconds);
 *   - every batch acknowledged to it is in the database.
 * It runs twice: against an open collector (no credentials, loopback), and against one that
 * requires credentials, where the good client and the misbehaving ones carry a valid ingest
 * token (a hostile client may well be authenticated) and the wrong token must get
 * UNAUTHENTICATED.
 * Prints the quiet p99, the hostile p99 and the peak RSS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/evp.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

/* What errqd may take with its default settings whatever its clients do: the SQLite cache
 * (64 MiB), the ingest queue's byte budget and the decoded batches it holds, the answers it
 * holds for streams that do not read them, gRPC's buffers, with room to spare.  Main before
 * the pending-answer bound took ~26 MB per non-reading stream (issue 14). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* ASan holds freed memory in its quarantine (256 MiB by default) and adds shadow memory and
 * redzones (about 2x); TSan's shadow is larger still (errqd 256.1 MiB in make test-tsan): the
 * same bound, scaled */
#define HOSTILE_RSS_BOUND_MIB (2 * 256 + 256)
#else
#define HOSTILE_RSS_BOUND_MIB 256
#endif
#define HOSTILE_P99_FACTOR 10
#define HOSTILE_P99_FLOOR_MS 25.0
#define HOSTILE_QUIET_BATCHES 300
#define HOSTILE_GOOD_BATCH 5
#define HOSTILE_MAX_SAMPLES 200000
#define HOSTILE_IDLE_CONNS 10
#define HOSTILE_IDLE_PER_CONN 100
#define HOSTILE_NONREADERS 100
#define HOSTILE_NR_BATCHES 40 /* per non-reading stream, under the 64 unanswered it may have */
#define HOSTILE_NR_BATCH 2500 /* invalid events per batch: an answer of ~95 KB */
#define HOSTILE_NR_SEND_MS 3000 /* a send not done by then: errqd stopped reading; stop there */

static struct errqd_proc D;
/* The ingest token every well-formed client here carries; NULL: the collector is open. */
static const char *TOKEN;
#define HOSTILE_TOKEN "errq_hostile_ingest_0123456789abcdef0123456789abcdef"

/* ---- errqd's memory ---- */

static struct {
	pthread_t th;
	atomic_bool stop, over;
	_Atomic uint64_t peak_kib;
	pid_t pid;
} Mon;

static uint64_t rss_kib(pid_t pid)
{
	char path[64], line[256];
	errq_snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	uint64_t kib = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtoull(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

static void *monitor(void *arg)
{
	(void)arg;
	while (!atomic_load(&Mon.stop)) {
		uint64_t k = rss_kib(Mon.pid);
		if (k > atomic_load(&Mon.peak_kib))
			atomic_store(&Mon.peak_kib, k);
		if (k > (uint64_t)HOSTILE_RSS_BOUND_MIB * 1024 && !atomic_load(&Mon.over)) {
			atomic_store(&Mon.over, true);
			fprintf(stderr, "hostile: errqd RSS %llu MiB is over the bound of %d MiB: killing it\n",
				(unsigned long long)(k / 1024), HOSTILE_RSS_BOUND_MIB);
			kill(Mon.pid, SIGKILL);
		}
		harness_msleep(10);
	}
	return NULL;
}

/* ---- the good client ---- */

static struct {
	pthread_t th;
	atomic_bool stop;
	atomic_int phase; /* 0 quiet, 1 hostile, 2 after */
	double *lat_ms[3];
	atomic_int n[3];
	uint8_t (*acked)[16];
	atomic_int nacked;
	atomic_int failures; /* streams that broke or answers missing */
	struct errq_idgen g;
} Good;

static void *good_main(void *arg)
{
	(void)arg;
	uint64_t seq = 0;
	while (!atomic_load(&Good.stop)) {
		struct rawstream s;
		if (raw_open_ex(&s, D.addr, TOKEN, 1)) { /* a connection of its own, as another service's */
			atomic_fetch_add(&Good.failures, 1);
			raw_free(&s);
			harness_msleep(10);
			continue;
		}
		while (!atomic_load(&Good.stop)) {
			Errq__V1__ReportRequest *r = treq_new(&Good.g, ++seq, HOSTILE_GOOD_BATCH, "good-svc", "TimeoutError",
							      "upstream timed out");
			int ph = atomic_load(&Good.phase);
			uint64_t t0 = errq_mono_ns();
			Errq__V1__ReportResponse *resp = NULL;
			int ok = raw_send(&s, r) == 0 && raw_recv(&s, &resp, HARNESS_DEADLINE_MS) == 0;
			double ms = (double)(errq_mono_ns() - t0) / 1e6;
			if (ok && resp->seq == seq && resp->accepted == HOSTILE_GOOD_BATCH) {
				int i = atomic_load(&Good.n[ph]);
				if (i < HOSTILE_MAX_SAMPLES) {
					Good.lat_ms[ph][i] = ms;
					atomic_store(&Good.n[ph], i + 1);
				}
				int a = atomic_load(&Good.nacked);
				for (int k = 0; k < HOSTILE_GOOD_BATCH && a < HOSTILE_MAX_SAMPLES; k++)
					memcpy(Good.acked[a++], r->failures[k]->event_id.data, 16);
				atomic_store(&Good.nacked, a);
			} else {
				ok = 0;
			}
			if (resp)
				errq__v1__report_response__free_unpacked(resp, NULL);
			treq_free(r);
			if (!ok) {
				atomic_fetch_add(&Good.failures, 1);
				break;
			}
		}
		raw_free(&s);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double p99(int ph)
{
	int n = atomic_load(&Good.n[ph]);
	if (n == 0)
		return -1;
	double *c = malloc((size_t)n * sizeof(double));
	memcpy(c, Good.lat_ms[ph], (size_t)n * sizeof(double));
	qsort(c, (size_t)n, sizeof(double), cmp_double);
	double v = c[(size_t)((n - 1) * 0.99)];
	free(c);
	return v;
}

/* ---- A, B: bytes on the socket ---- */

static int tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Sends what it can of p (the server may close first), then reads until close or 2 s. */
static void send_and_drain(int fd, const void *p, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t w = send(fd, (const char *)p + off, n - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	char buf[4096];
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 2000) != 1 || recv(fd, buf, sizeof(buf), 0) <= 0)
			break;
	}
}

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void phase_random_bytes(unsigned *seed)
{
	uint8_t *junk = malloc(64 << 10);
	for (int c = 0; c < 20; c++) {
		for (size_t i = 0; i < (64u << 10); i++)
			junk[i] = (uint8_t)rand_r(seed);
		int fd = tcp_connect(D.port);
		if (c % 2) { /* past the preface: random frames */
			memcpy(junk, PREFACE, sizeof(PREFACE) - 1);
		}
		send_and_drain(fd, junk, 64u << 10);
		close(fd);
	}
	free(junk);
}

/* Returns a connection left hanging inside a frame (closed at the end of the test). */
static int phase_truncated_frames(void)
{
	/* a SETTINGS frame announcing 60 bytes, 7 sent, then the connection closed */
	uint8_t settings[9 + 7] = {0, 0, 60, 0x4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100};
	int fd = tcp_connect(D.port);
	send(fd, PREFACE, sizeof(PREFACE) - 1, MSG_NOSIGNAL);
	send(fd, settings, sizeof(settings), MSG_NOSIGNAL);
	close(fd);
	/* an empty SETTINGS, then a HEADERS frame on stream 1 announcing 16 KiB with 100 bytes
	 * given: this one stays open, mid-frame, for the rest of the test */
	uint8_t empty_settings[9] = {0, 0, 0, 0x4, 0, 0, 0, 0, 0};
	uint8_t headers[9 + 100] = {0, 0x40, 0, 0x1, 0x4, 0, 0, 0, 1};
	memset(headers + 9, 0x82, 100);
	fd = tcp_connect(D.port);
	send(fd, PREFACE, sizeof(PREFACE) - 1, MSG_NOSIGNAL);
	send(fd, empty_settings, sizeof(empty_settings), MSG_NOSIGNAL);
	send(fd, headers, sizeof(headers), MSG_NOSIGNAL);
	/* and a DATA frame cut short on a stream never opened, on a third connection */
	uint8_t data[9 + 10] = {0, 0x10, 0, 0x0, 0, 0, 0, 0, 3};
	int fd2 = tcp_connect(D.port);
	send(fd2, PREFACE, sizeof(PREFACE) - 1, MSG_NOSIGNAL);
	send(fd2, empty_settings, sizeof(empty_settings), MSG_NOSIGNAL);
	send_and_drain(fd2, data, sizeof(data));
	close(fd2);
	return fd;
}

/* ---- C: odd messages ---- */

/* Sends req on a stream of its own; returns the final status, the first answer in *out. */
static grpc_status_code one_batch(const Errq__V1__ReportRequest *req, Errq__V1__ReportResponse **out, char *det,
				  size_t dsz)
{
	struct rawstream s;
	*out = NULL;
	assert_int_equal(raw_open_ex(&s, D.addr, TOKEN, 0), 0);
	raw_send(&s, req); /* may fail: the server may end the call first */
	if (raw_recv(&s, out, HARNESS_DEADLINE_MS) != 0)
		*out = NULL;
	grpc_status_code st = raw_finish(&s, det, dsz);
	raw_free(&s);
	return st;
}

static struct errq_idgen HG;

static void expect_stored(Errq__V1__ReportRequest *req, uint32_t accepted, size_t rejected, const char *what)
{
	Errq__V1__ReportResponse *r;
	char det[256];
	grpc_status_code st = one_batch(req, &r, det, sizeof(det));
	if (st != GRPC_STATUS_OK || !r)
		fail_msg("%s: status %s (%s), %s", what, errq_status_name(st), det, r ? "answered" : "no answer");
	if (r->accepted != accepted || r->n_rejected != rejected)
		fail_msg("%s: accepted %u rejected %zu, want %u and %zu", what, r->accepted, r->n_rejected, accepted,
			 rejected);
	errq__v1__report_response__free_unpacked(r, NULL);
}

static void expect_status(Errq__V1__ReportRequest *req, grpc_status_code want, const char *what)
{
	Errq__V1__ReportResponse *r;
	char det[256];
	grpc_status_code st = one_batch(req, &r, det, sizeof(det));
	if (r)
		errq__v1__report_response__free_unpacked(r, NULL);
	if (st != want)
		fail_msg("%s: status %s (%s), want %s", what, errq_status_name(st), det, errq_status_name(want));
}

static char *big_string(size_t n, char c)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void phase_odd_messages(void)
{
	/* a 1 MiB message string: stored, truncated */
	Errq__V1__ReportRequest *r = treq_new(&HG, 1, 1, "odd-svc", "BigError", "x");
	free(r->failures[0]->message);
	r->failures[0]->message = big_string(1u << 20, 'm');
	expect_stored(r, 1, 0, "a 1 MiB message");
	/* the same at 5 MiB: over the 4 MiB message limit */
	free(r->failures[0]->message);
	r->failures[0]->message = big_string(5u << 20, 'm');
	expect_status(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "a 5 MiB message");
	treq_free(r);

	/* invalid UTF-8 beside a valid event: rejected alone */
	r = treq_new(&HG, 1, 2, "odd-svc", "Utf8Error", "fine");
	free(r->failures[1]->message);
	r->failures[1]->message = strdup("bad \xc3\x28 byte \xff");
	Errq__V1__ReportResponse *resp;
	char det[256];
	assert_int_equal(one_batch(r, &resp, det, sizeof(det)), GRPC_STATUS_OK);
	assert_non_null(resp);
	assert_int_equal(resp->accepted, 1);
	assert_int_equal(resp->n_rejected, 1);
	assert_int_equal(resp->rejected[0]->index, 1);
	assert_memory_equal(resp->rejected[0]->reason, "invalid_utf8:", 13);
	errq__v1__report_response__free_unpacked(resp, NULL);
	treq_free(r);

	/* 100 000 details */
	r = treq_new(&HG, 1, 1, "odd-svc", "DetailError", "many details");
	Errq__V1__TaskFailure *tf = r->failures[0];
	tf->n_details = 100000;
	tf->details = calloc(tf->n_details, sizeof(*tf->details));
	for (size_t i = 0; i < tf->n_details; i++) {
		tf->details[i] = calloc(1, sizeof(**tf->details));
		errq__v1__task_failure__details_entry__init(tf->details[i]);
		char k[24];
		errq_snprintf(k, sizeof(k), "k%zu", i);
		tf->details[i]->key = strdup(k);
		tf->details[i]->value = strdup("v");
	}
	expect_stored(r, 1, 0, "100 000 details");
	treq_free(r);

	/* 10 000 frames */
	r = treq_new(&HG, 1, 1, "odd-svc", "FrameError", "deep stack");
	tf = r->failures[0];
	tf->n_frames = 10000;
	tf->frames = calloc(tf->n_frames, sizeof(*tf->frames));
	for (size_t i = 0; i < tf->n_frames; i++) {
		tf->frames[i] = calloc(1, sizeof(**tf->frames));
		errq__v1__frame__init(tf->frames[i]);
		tf->frames[i]->function = strdup("recurse");
		tf->frames[i]->file = strdup("deep.c");
		tf->frames[i]->line = (uint32_t)i;
	}
	expect_stored(r, 1, 0, "10 000 frames");
	treq_free(r);

	/* absurd timestamps: the end of time, the epoch's first nanosecond */
	r = treq_new(&HG, 1, 2, "odd-svc", "ClockError", "time travel");
	r->failures[0]->time_unix_nano = UINT64_MAX;
	r->failures[1]->time_unix_nano = 1;
	r->failures[1]->attempt = UINT32_MAX;
	expect_stored(r, 2, 0, "absurd timestamps");
	treq_free(r);

	/* seq going backwards on one stream: each batch answered with its own seq */
	struct rawstream s;
	assert_int_equal(raw_open_ex(&s, D.addr, TOKEN, 0), 0);
	const uint64_t seqs[] = {10, 5, 1, 0, UINT64_MAX};
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		r = treq_new(&HG, seqs[i], 1, "odd-svc", "SeqError", "backwards");
		assert_int_equal(raw_send(&s, r), 0);
		treq_free(r);
		assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 0);
		assert_true(resp->seq == seqs[i]);
		assert_int_equal(resp->accepted, 1);
		errq__v1__report_response__free_unpacked(resp, NULL);
	}
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);

	/* 10 001 failures: over the batch limit */
	r = treq_new(&HG, 1, 10001, "odd-svc", "CountError", "too many");
	expect_status(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "10 001 failures");
	treq_free(r);
}

/* ---- D: tokens ---- */

/* One Report call carrying `authorization: token`, one batch; returns its status. */
static grpc_status_code with_token(const char *token)
{
	grpc_channel *ch = errq_channel_new(D.addr);
	grpc_metadata md = {.key = grpc_slice_from_static_string("authorization"),
			    .value = grpc_slice_from_copied_string(token)};
	Errq__V1__ReportRequest *r = treq_new(&HG, 1, 1, "token-svc", "TokenError", "who am i");
	struct errq_unary_result res;
	/* one message and a half-close: a Report stream of one batch */
	assert_int_equal(errq_unary_call_md(ch, "/errq.v1.Collector/Report", &r->base, 2 * HARNESS_DEADLINE_MS, &md, 1,
					    &res),
			 0);
	grpc_status_code st = res.status;
	errq_unary_result_free(&res);
	treq_free(r);
	grpc_slice_unref(md.value);
	grpc_channel_destroy(ch);
	return st;
}

static void phase_tokens(void)
{
	grpc_status_code a = with_token("Bearer errq_wrong_0000000000000000");
	char *huge = big_string(64u << 10, 'A');
	memcpy(huge, "Bearer ", 7);
	grpc_status_code b = with_token(huge);
	free(huge);
	fprintf(stderr, "hostile: a wrong token: %s; a 64 KiB token: %s\n", errq_status_name(a), errq_status_name(b));
	/* open collector: anything but a crash (errqd is checked after the phases); a header list
	 * over the limit is refused by the transport either way */
	if (TOKEN) {
		assert_int_equal(a, GRPC_STATUS_UNAUTHENTICATED);
		assert_int_not_equal(b, GRPC_STATUS_OK);
	}
}

/* ---- E: idle streams ---- */

struct idle_conn {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	grpc_call *calls[HOSTILE_IDLE_PER_CONN];
	grpc_status_code st[HOSTILE_IDLE_PER_CONN];
	grpc_slice det[HOSTILE_IDLE_PER_CONN];
	grpc_metadata_array trail[HOSTILE_IDLE_PER_CONN];
	int pending; /* batches not yet completed */
};

static void idle_open(struct idle_conn *c, int conn)
{
	const struct errq_chan_arg apart = {"errq.test.connection", conn};
	grpc_metadata authz = {.key = grpc_slice_from_static_string("authorization"),
			       .value = grpc_slice_from_static_string("Bearer " HOSTILE_TOKEN)};
	memset(c, 0, sizeof(*c));
	c->ch = errq_channel_new_ex(D.addr, NULL, &apart, 1);
	c->cq = grpc_completion_queue_create_for_next(NULL);
	for (int i = 0; i < HOSTILE_IDLE_PER_CONN; i++) {
		c->calls[i] = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
						       grpc_slice_from_static_string("/errq.v1.Collector/Report"), NULL,
						       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		grpc_metadata_array_init(&c->trail[i]);
		c->det[i] = grpc_empty_slice();
		grpc_op ops[2];
		memset(ops, 0, sizeof(ops));
		ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
		if (TOKEN) { /* authenticated, and idle */
			ops[0].data.send_initial_metadata.count = 1;
			ops[0].data.send_initial_metadata.metadata = &authz;
		}
		ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
		ops[1].data.recv_status_on_client.trailing_metadata = &c->trail[i];
		ops[1].data.recv_status_on_client.status = &c->st[i];
		ops[1].data.recv_status_on_client.status_details = &c->det[i];
		assert_int_equal(grpc_call_start_batch(c->calls[i], ops, 1, &c->calls[i], NULL), GRPC_CALL_OK);
		assert_int_equal(grpc_call_start_batch(c->calls[i], ops + 1, 1, &c->st[i], NULL), GRPC_CALL_OK);
		c->pending += 2;
	}
}

static void idle_close(struct idle_conn *c)
{
	for (int i = 0; i < HOSTILE_IDLE_PER_CONN; i++)
		grpc_call_cancel(c->calls[i], NULL);
	while (c->pending > 0) {
		grpc_event ev = grpc_completion_queue_next(c->cq, errq_deadline_ms(HARNESS_DEADLINE_MS), NULL);
		assert_int_equal(ev.type, GRPC_OP_COMPLETE);
		c->pending--;
	}
	for (int i = 0; i < HOSTILE_IDLE_PER_CONN; i++) {
		grpc_call_unref(c->calls[i]);
		grpc_metadata_array_destroy(&c->trail[i]);
		grpc_slice_unref(c->det[i]);
	}
	grpc_completion_queue_shutdown(c->cq);
	while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(c->cq);
	grpc_channel_destroy(c->ch);
}

/* ---- F: streams that never read their answers ---- */

#define TAG_NR_SEND ((void *)0x77)

struct nonreader {
	pthread_t th;
	struct rawstream s;
	const uint8_t *batch;
	size_t len;
	int sent, conn;
	bool send_pending, open;
};

static void *nonreader_main(void *arg)
{
	struct nonreader *n = arg;
	if (raw_open_ex(&n->s, D.addr, TOKEN, n->conn))
		return NULL;
	n->open = true;
	for (int i = 0; i < HOSTILE_NR_BATCHES; i++) {
		grpc_slice sl = grpc_slice_from_static_buffer(n->batch, n->len);
		grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_SEND_MESSAGE;
		op.data.send_message.send_message = bb;
		if (grpc_call_start_batch(n->s.call, &op, 1, TAG_NR_SEND, NULL) != GRPC_CALL_OK) {
			grpc_byte_buffer_destroy(bb);
			break;
		}
		grpc_event ev = grpc_completion_queue_pluck(n->s.cq, TAG_NR_SEND, errq_deadline_ms(HOSTILE_NR_SEND_MS), NULL);
		grpc_byte_buffer_destroy(bb); /* the call holds its own reference while sending */
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			n->send_pending = true; /* errqd stopped reading us: the backpressure works */
			break;
		}
		if (!ev.success)
			break;
		n->sent++;
	}
	return NULL;
}

static void nonreader_free(struct nonreader *n)
{
	if (!n->open)
		return;
	grpc_call_cancel(n->s.call, NULL);
	if (n->send_pending)
		grpc_completion_queue_pluck(n->s.cq, TAG_NR_SEND, errq_deadline_ms(HARNESS_DEADLINE_MS), NULL);
	raw_free(&n->s);
}

/* A batch of HOSTILE_NR_BATCH events without a service: each is rejected, so the answer holds
 * HOSTILE_NR_BATCH rejections (~38 bytes each). */
static uint8_t *nonreader_batch(size_t *len)
{
	Errq__V1__ReportRequest *r = treq_new(&HG, 1, HOSTILE_NR_BATCH, NULL, "NoService", NULL);
	*len = errq__v1__report_request__get_packed_size(r);
	uint8_t *b = malloc(*len);
	errq__v1__report_request__pack(r, b);
	treq_free(r);
	return b;
}

/* ---- the test ---- */

static bool errqd_serving(void)
{
	grpc_status_code cs;
	return health_check(D.addr, "", &cs) == 1;
}

/* The SHA-256 of token in hex (the form the config file holds). */
static void sha256_hex(const char *token, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	assert_int_equal(EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(n, 32);
	for (unsigned i = 0; i < n; i++)
		errq_snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void run_hostile(const char *token)
{
	unsigned seed = (unsigned)errq_now_ns();
	memset(&D, 0, sizeof(D));
	memset(&Mon, 0, sizeof(Mon));
	memset(&Good, 0, sizeof(Good));
	TOKEN = token;
	/* every event kept: the good client's are looked up at the end */
	const char *args[] = {"--set", "events_per_group=0", NULL, NULL, NULL};
	char cfg[400];
	if (token) {
		errq_snprintf(D.dir, sizeof(D.dir), "/tmp/errq-test-XXXXXX");
		assert_non_null(mkdtemp(D.dir));
		errq_snprintf(cfg, sizeof(cfg), "%s/errqd.yaml", D.dir);
		char hex[65];
		sha256_hex(token, hex);
		FILE *f = fopen(cfg, "w");
		assert_non_null(f);
		fprintf(f, "credentials:\n  - name: hostile-ingest\n    token_sha256: %s\n    role: ingest\n"
			   "    services: [\"*\"]\n", hex);
		assert_int_equal(fclose(f), 0);
		args[2] = "--config";
		args[3] = cfg;
	}
	assert_int_equal(errqd_start(&D, args), 0);
	errq_idgen_init(&HG);
	Mon.pid = D.pid;
	assert_int_equal(pthread_create(&Mon.th, NULL, monitor, NULL), 0);

	errq_idgen_init(&Good.g);
	for (int i = 0; i < 3; i++)
		Good.lat_ms[i] = calloc(HOSTILE_MAX_SAMPLES, sizeof(double));
	Good.acked = calloc(HOSTILE_MAX_SAMPLES, 16);
	assert_int_equal(pthread_create(&Good.th, NULL, good_main, NULL), 0);
	WAIT_FOR(atomic_load(&Good.n[0]) >= HOSTILE_QUIET_BATCHES);
	uint64_t quiet_peak_kib = atomic_load(&Mon.peak_kib);
	atomic_store(&Good.phase, 1);

	fprintf(stderr, "hostile: errqd log %s\n", D.log);
	uint64_t t0 = errq_mono_ns();
	phase_random_bytes(&seed);
	int hanging = phase_truncated_frames();
	fprintf(stderr, "hostile: A, B (bytes, frames) done at %.1f s\n", (double)(errq_mono_ns() - t0) / 1e9);
	assert_true(errqd_serving());
	phase_odd_messages();
	fprintf(stderr, "hostile: C (odd messages) done at %.1f s\n", (double)(errq_mono_ns() - t0) / 1e9);
	phase_tokens();
	assert_true(errqd_serving());

	struct idle_conn *idle = calloc(HOSTILE_IDLE_CONNS, sizeof(*idle));
	for (int i = 0; i < HOSTILE_IDLE_CONNS; i++)
		idle_open(&idle[i], 100 + i);
	size_t len;
	uint8_t *batch = nonreader_batch(&len);
	struct nonreader *nr = calloc(HOSTILE_NONREADERS, sizeof(*nr));
	for (int i = 0; i < HOSTILE_NONREADERS; i++) {
		nr[i].batch = batch;
		nr[i].len = len;
		nr[i].conn = 1000 + i;
		assert_int_equal(pthread_create(&nr[i].th, NULL, nonreader_main, &nr[i]), 0);
	}
	int sent = 0, stuck = 0;
	for (int i = 0; i < HOSTILE_NONREADERS; i++) {
		pthread_join(nr[i].th, NULL);
		sent += nr[i].sent;
		stuck += nr[i].send_pending;
	}
	fprintf(stderr, "hostile: E, F (idle, non-readers) sent at %.1f s\n", (double)(errq_mono_ns() - t0) / 1e9);
	/* the answers are all written or held by now; the good client goes on beside them */
	int before = atomic_load(&Good.n[1]);
	WAIT_FOR(atomic_load(&Good.n[1]) >= before + 100 || atomic_load(&Mon.over));
	bool serving = !atomic_load(&Mon.over) && errqd_serving();
	/* Status needs the read role, which the ingest token has not */
	Errq__V1__StatusResponse *st = serving && !TOKEN ? query_status(D.addr) : NULL;
	uint32_t streams_seen = st ? st->streams_active : 0;
	if (st)
		errq__v1__status_response__free_unpacked(st, NULL);

	for (int i = 0; i < HOSTILE_NONREADERS; i++)
		nonreader_free(&nr[i]);
	for (int i = 0; i < HOSTILE_IDLE_CONNS; i++)
		idle_close(&idle[i]);
	close(hanging);
	free(nr);
	free(idle);
	free(batch);

	/* after: the good client still gets its answers */
	atomic_store(&Good.phase, 2);
	if (serving)
		WAIT_FOR(atomic_load(&Good.n[2]) >= 50);
	atomic_store(&Good.stop, true);
	pthread_join(Good.th, NULL);
	atomic_store(&Mon.stop, true);
	pthread_join(Mon.th, NULL);

	double qp = p99(0), hp = p99(1), ap = p99(2);
	double peak = (double)atomic_load(&Mon.peak_kib) / 1024.0;
	fprintf(stderr,
		"hostile: quiet p99 %.2f ms (%d batches), hostile p99 %.2f ms (%d batches), after p99 %.2f ms; "
		"peak RSS %.1f MiB (quiet %.1f MiB, bound %d MiB); non-readers sent %d batches of %d invalid events, "
		"%d held back by errqd; %u streams active with 1000 idle; good client stream failures %d\n",
		qp, atomic_load(&Good.n[0]), hp, atomic_load(&Good.n[1]), ap, peak, quiet_peak_kib / 1024.0,
		HOSTILE_RSS_BOUND_MIB, sent, HOSTILE_NR_BATCH, stuck, streams_seen, atomic_load(&Good.failures));

	assert_false(atomic_load(&Mon.over));
	assert_true(serving);
	assert_true(peak < HOSTILE_RSS_BOUND_MIB);
	double limit = HOSTILE_P99_FACTOR * (qp > HOSTILE_P99_FLOOR_MS ? qp : HOSTILE_P99_FLOOR_MS);
	if (hp > limit)
		fail_msg("the good client's p99 under hostile load is %.2f ms, over %d x the quiet %.2f ms", hp,
			 HOSTILE_P99_FACTOR, qp);
	assert_int_equal(atomic_load(&Good.failures), 0);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);

	/* nothing acknowledged is lost */
	struct harness_db *db = harness_db_open(D.db);
	assert_non_null(db);
	int missing = 0, n = atomic_load(&Good.nacked);
	for (int i = 0; i < n; i++)
		missing += harness_db_has_event(db, Good.acked[i]) != 1;
	fprintf(stderr, "hostile: %d events acknowledged to the good client, %d missing\n", n, missing);
	assert_int_equal(missing, 0);
	/* the odd messages: stored as docs/protocol.md says (cut, marked truncated), the refused
	 * ones not at all */
	static const struct {
		const char *type;
		int count, truncated;
	} odd[] = {{"BigError", 1, 1}, {"Utf8Error", 1, 0}, {"DetailError", 1, 1}, {"FrameError", 1, 1},
		   {"ClockError", 2, 0}, {"SeqError", 5, 0}, {"CountError", 0, 0}, {"NoService", 0, 0}};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		const char *where = "FROM events WHERE service = 'odd-svc' AND error_type = $1";
		char sql[3][200];
		errq_snprintf(sql[0], sizeof(sql[0]), "SELECT count(*) %s", where);
		errq_snprintf(sql[1], sizeof(sql[1]), "SELECT count(*) %s AND truncated != 0", where);
		errq_snprintf(sql[2], sizeof(sql[2]), "SELECT coalesce(max(length(message)), 0) %s", where);
		int cnt = (int)harness_db_int(db, sql[0], odd[i].type), cut = (int)harness_db_int(db, sql[1], odd[i].type),
		    mlen = (int)harness_db_int(db, sql[2], odd[i].type);
		if (cnt != odd[i].count || cut != odd[i].truncated * odd[i].count || (i == 0 && mlen != 8192))
			fail_msg("%s: %d stored (%d truncated, message %d bytes), want %d (%d truncated)", odd[i].type, cnt,
				 cut, mlen, odd[i].count, odd[i].truncated * odd[i].count);
	}
	harness_db_close(db);
	for (int i = 0; i < 3; i++)
		free(Good.lat_ms[i]);
	free(Good.acked);
	errqd_cleanup(&D);
}

static void test_hostile_clients_open(void **state)
{
	run_hostile(NULL);
}

static void test_hostile_clients_with_credentials(void **state)
{
	run_hostile(HOSTILE_TOKEN);
}

int main(void)
{
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostile_clients_open),
	    cmocka_unit_test(test_hostile_clients_with_credentials),
	};
	int rc = cmocka_run_group_tests_name("integration_hostile", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
