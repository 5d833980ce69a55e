/* Integration: what clients can make errqd hold is bounded (docs/operations.md, "Memory").
 *  - Streams that send batches whose answers are large (thousands of rejections) and never
 *    read those answers: errqd stops reading them once their answers pass
 *    REPORT_MAX_ANSWER_BYTES (and, together, REPORT_MAX_ANSWER_BYTES_TOTAL), ends them with
 *    RESOURCE_EXHAUSTED after REPORT_ANSWER_STALL_MS, its peak RSS stays under
 *    UNREAD_RSS_BOUND, and a client that reads its answers is acknowledged meanwhile.  Before
 *    the bound each such stream held up to 64 answers (~26 MB).
 *  - Streams of messages that decode to ~60x their wire size (empty frames): what is decoded
 *    at once is bounded by ingest_queue_bytes, peak RSS stays under DECODED_RSS_BOUND; one
 *    message that would decode past 32 MiB ends its call.
 * errqd's memory is read from /proc/PID/status (VmHWM: the peak resident set). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

/* docs/operations.md, "Memory".  ASan's shadow and quarantine roughly triple a heap, and so
 * do valgrind's (make test-long, ERRQ_VALGRIND=1: 297.8 MiB where the plain build peaks at
 * ~110 MiB) and TSan's (make test-tsan: 502.7 MiB), so errqd is held to three times the bound
 * there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_SCALE 3ull
#else
#define RSS_SCALE (getenv("ERRQ_VALGRIND") && *getenv("ERRQ_VALGRIND") ? 3ull : 1ull)
#endif
#define UNREAD_RSS_BOUND (RSS_SCALE * (256ull << 20))
#define DECODED_RSS_BOUND (RSS_SCALE * (256ull << 20))
/* How long a wait here may last: the harness's deadline, four times it under valgrind (some
 * 50 times slower) or a sanitizer: make test-long runs them beside the 20 repeats and busy
 * loops, where 64 hogs' 340 KB answers took longer than 30 s to hold every hog back (valgrind)
 * and 32 decoded-size hogs longer than 30 s to send (ASan). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WAIT_MS (4 * HARNESS_DEADLINE_MS)
#else
#define WAIT_MS (getenv("ERRQ_VALGRIND") && *getenv("ERRQ_VALGRIND") == '1' ? 4 * HARNESS_DEADLINE_MS \
								     : HARNESS_DEADLINE_MS)
#endif

#define TAG_HOG_SEND ((void *)0x100)
#define TAG_RAW_STATUS ((void *)4) /* the harness's tag for RECV_STATUS_ON_CLIENT (raw_open) */

/* VmHWM or VmRSS of pid, bytes. */
static uint64_t proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	errq_snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	uint64_t v = 0;
	assert_non_null(f);
	size_t n = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtoull(line + n + 1, NULL, 10) * 1024;
	fclose(f);
	return v;
}

/* A stream that sends and never reads.  Its sends are not waited for: errqd stops reading
 * it, and then a send never completes (flow control), which is the point. */
struct hog {
	struct rawstream s;
	grpc_byte_buffer *bb; /* the send in flight */
	uint64_t since;       /* when it was started */
	int sent;             /* sends completed */
	bool blocked;         /* a send has been pending for HOG_BLOCKED_MS */
};
#define HOG_BLOCKED_MS 2000

static void hog_start_send(struct hog *h, grpc_slice msg)
{
	h->bb = grpc_raw_byte_buffer_create(&msg, 1);
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = h->bb;
	assert_int_equal(grpc_call_start_batch(h->s.call, &op, 1, TAG_HOG_SEND, NULL), GRPC_CALL_OK);
	h->since = errq_mono_ns();
}

/* Collects the send in flight if it completed within wait_ms; true when none is in flight. */
static bool hog_collect(struct hog *h, long wait_ms)
{
	if (!h->bb)
		return true;
	grpc_event ev = grpc_completion_queue_pluck(h->s.cq, TAG_HOG_SEND, errq_deadline_ms(wait_ms), NULL);
	if (ev.type != GRPC_OP_COMPLETE)
		return false;
	grpc_byte_buffer_destroy(h->bb);
	h->bb = NULL;
	h->sent += ev.success;
	return true;
}

/* Streams `n` hogs: each sends msgs (seq patched in by the caller's builder) until it has
 * sent max messages or errqd stopped reading it.  Returns how many got blocked. */
/* Returns when every hog has sent max messages or has had a send pending for HOG_BLOCKED_MS,
 * all at once (a hog slowed by a loaded machine goes on when its send completes); may be
 * called again to go on.  Returns how many are blocked. */
static int hogs_run(const char *addr, struct hog *hogs, int n, grpc_slice (*build)(int hog, int seq), int max)
{
	int blocked;
	for (int i = 0; i < n; i++)
		if (!hogs[i].s.call)
			assert_int_equal(raw_open(&hogs[i].s, addr), 0);
	for (bool busy = true; busy;) {
		busy = false;
		blocked = 0;
		for (int i = 0; i < n; i++) {
			struct hog *h = &hogs[i];
			if (h->sent >= max && !h->bb)
				continue;
			if (!hog_collect(h, 1)) {
				h->blocked = errq_mono_ns() - h->since > (uint64_t)HOG_BLOCKED_MS * ERRQ_NS_PER_MS;
				blocked += h->blocked;
				busy |= !h->blocked;
				continue;
			}
			h->blocked = false;
			busy = true;
			if (h->sent < max) {
				grpc_slice m = build(i, h->sent);
				hog_start_send(h, m);
				grpc_slice_unref(m);
			}
		}
	}
	return blocked;
}

/* The final status of a hog (waits for it up to the harness deadline).  The C core gives a
 * client its status only after the messages before it were read: once the send in flight
 * failed (the stream is over), the answers that made it are read, then the status. */
static grpc_status_code hog_status(struct hog *h, int i, grpc_slice (*build)(int hog, int seq), char *details,
				   size_t dsz)
{
	details[0] = '\0';
	/* a hog goes on hogging until errqd ends it: each send errqd reads is followed by the next
	 * (the pause counter counts pauses, not hogs: under valgrind a hog could be left with fewer
	 * answers than its stream's bound once the test stopped sending, and errqd rightly never
	 * ended it) */
	for (uint64_t t0 = errq_mono_ns();;) {
		int sent = h->sent;
		if (!hog_collect(h, 1000)) {
			if (errq_mono_ns() - t0 > (uint64_t)WAIT_MS * ERRQ_NS_PER_MS)
				return GRPC_STATUS_DEADLINE_EXCEEDED;
			continue;
		}
		if (h->sent == sent || h->sent >= 127) /* the send failed: the stream is over */
			break;
		grpc_slice m = build(i, h->sent);
		hog_start_send(h, m);
		grpc_slice_unref(m);
	}
	Errq__V1__ReportResponse *r;
	while (raw_recv(&h->s, &r, WAIT_MS) == 0)
		errq__v1__report_response__free_unpacked(r, NULL);
	grpc_event ev = grpc_completion_queue_pluck(h->s.cq, TAG_RAW_STATUS, errq_deadline_ms(WAIT_MS), NULL);
	if (ev.type != GRPC_OP_COMPLETE)
		return GRPC_STATUS_DEADLINE_EXCEEDED;
	h->s.status_received = true;
	size_t n = GRPC_SLICE_LENGTH(h->s.status_details);
	if (n >= dsz)
		n = dsz - 1;
	memcpy(details, GRPC_SLICE_START_PTR(h->s.status_details), n);
	details[n] = '\0';
	return h->s.status;
}

static void hog_free(struct hog *h)
{
	if (!h->s.call)
		return;
	grpc_call_cancel(h->s.call, NULL);
	hog_collect(h, WAIT_MS);
	raw_free(&h->s);
}

/* ---- streams that never read their answers ---- */

#define UNREAD_HOGS 64
#define REJECTS 8000 /* per batch: each answer carries 8000 rejections (~340 KB) */

static grpc_slice reject_cache[128]; /* by seq: every hog sends the same bytes */

static grpc_slice reject_batch(int hog, int seq)
{
	static struct errq_idgen g;
	static bool init;
	if (!init) {
		errq_idgen_init(&g);
		init = true;
	}
	(void)hog;
	assert_true(seq < 128);
	if (GRPC_SLICE_LENGTH(reject_cache[seq]))
		return grpc_slice_ref(reject_cache[seq]);
	/* no service: each event is rejected (missing_service), the batch is answered with all
	 * 8000 rejections */
	Errq__V1__ReportRequest *r = treq_new(&g, (uint64_t)seq, REJECTS, NULL, "E", NULL);
	size_t n = errq__v1__report_request__get_packed_size(r);
	uint8_t *buf = malloc(n);
	errq__v1__report_request__pack(r, buf);
	treq_free(r);
	reject_cache[seq] = grpc_slice_from_copied_buffer((const char *)buf, n);
	free(buf);
	return grpc_slice_ref(reject_cache[seq]);
}

static void test_unread_answers_bounded(void **state)
{
	(void)state;
	struct errqd_proc D;
	memset(&D, 0, sizeof(D));
	assert_int_equal(errqd_start(&D, NULL), 0);
	struct hog *hogs = calloc(UNREAD_HOGS, sizeof(*hogs));
	uint64_t t0 = errq_mono_ns();
	/* until errqd holds every hog back (each paused once at least) */
	int blocked = hogs_run(D.addr, hogs, UNREAD_HOGS, reject_batch, 80);
	while (http_metric(D.http_port, "errq_report_answer_paused_total") < UNREAD_HOGS) {
		if (errq_mono_ns() - t0 > (uint64_t)WAIT_MS * ERRQ_NS_PER_MS)
			fail_msg("errqd did not hold back %d streams that read no answers", UNREAD_HOGS);
		blocked = hogs_run(D.addr, hogs, UNREAD_HOGS, reject_batch, 80);
	}
	uint64_t t_blocked = errq_mono_ns();
	int sent = 0;
	for (int i = 0; i < UNREAD_HOGS; i++)
		sent += hogs[i].sent;
	/* every hog is held back: errqd read a few of its batches, not 64 */
	assert_int_equal(blocked, UNREAD_HOGS);

	/* a client that reads its answers is acknowledged meanwhile */
	struct errq_idgen g;
	errq_idgen_init(&g);
	uint64_t t_good = errq_mono_ns();
	assert_int_equal(report_batch(D.addr, &g, 5, "good-reader", "E"), 5);
	uint64_t good_ms = (errq_mono_ns() - t_good) / ERRQ_NS_PER_MS;
	uint64_t hwm_held = proc_kb(D.pid, "VmHWM");
	if (hwm_held > UNREAD_RSS_BOUND)
		fail_msg("errqd peaked at %.1f MiB with %d streams not reading their answers (bound %llu MiB)",
			 hwm_held / 1048576.0, UNREAD_HOGS, UNREAD_RSS_BOUND >> 20);

	/* ... and the hogs are ended, with the reason */
	char det[512];
	int ended = 0;
	for (int i = 0; i < UNREAD_HOGS; i++) {
		grpc_status_code st = hog_status(&hogs[i], i, reject_batch, det, sizeof(det));
		if (st != GRPC_STATUS_RESOURCE_EXHAUSTED || !strstr(det, "reads no answers"))
			fail_msg("hog %d ended with %s: \"%s\"", i, errq_status_name(st), det);
		ended++;
	}
	uint64_t t_ended = errq_mono_ns();
	uint64_t hwm = proc_kb(D.pid, "VmHWM"), rss = proc_kb(D.pid, "VmRSS");
	printf("unread answers: %d streams, %d batches of %d rejections read in all, held back after %llu ms; "
	       "good client acked in %llu ms; VmHWM %.1f MiB while held, %.1f MiB peak, VmRSS %.1f MiB after; "
	       "%d streams ended RESOURCE_EXHAUSTED %llu ms after start (\"%s\")\n",
	       UNREAD_HOGS, sent, REJECTS, (unsigned long long)((t_blocked - t0) / ERRQ_NS_PER_MS),
	       (unsigned long long)good_ms, hwm_held / 1048576.0, hwm / 1048576.0, rss / 1048576.0, ended,
	       (unsigned long long)((t_ended - t0) / ERRQ_NS_PER_MS), det);
	if (hwm > UNREAD_RSS_BOUND)
		fail_msg("errqd peaked at %.1f MiB with %d streams not reading their answers (bound %llu MiB)",
			 hwm / 1048576.0, UNREAD_HOGS, UNREAD_RSS_BOUND >> 20);
	for (int i = 0; i < UNREAD_HOGS; i++)
		hog_free(&hogs[i]);
	free(hogs);
	for (int i = 0; i < 128; i++)
		grpc_slice_unref(reject_cache[i]);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

/* ---- messages that decode large ---- */

#define DECODE_HOGS 32
#define DECODE_MSGS 4           /* per stream */
#define EMPTY_FRAMES 200000     /* 2 bytes each on the wire: a ~400 KB message */

static grpc_slice frames_msg;

static grpc_slice frames_batch(int hog, int seq)
{
	(void)hog;
	(void)seq;
	if (!GRPC_SLICE_LENGTH(frames_msg)) {
		/* one valid event with EMPTY_FRAMES empty frames, encoded by hand (field 2 of the
		 * request: the failure; field 11 of the failure: a frame); seq stays 0 */
		struct errq_idgen g;
		errq_idgen_init(&g);
		Errq__V1__ReportRequest *r = treq_new(&g, 0, 1, "decode-hog", "E", "m");
		size_t head = errq__v1__task_failure__get_packed_size(r->failures[0]);
		uint8_t *tf = malloc(head + 2 * EMPTY_FRAMES);
		errq__v1__task_failure__pack(r->failures[0], tf);
		treq_free(r);
		for (size_t i = 0; i < EMPTY_FRAMES; i++) {
			tf[head + 2 * i] = (uint8_t)((11 << 3) | 2);
			tf[head + 2 * i + 1] = 0;
		}
		size_t tflen = head + 2 * EMPTY_FRAMES, n = 0;
		uint8_t *msg = malloc(tflen + 16);
		msg[n++] = (2 << 3) | 2;
		for (size_t v = tflen; ; v >>= 7) { /* varint length */
			msg[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
			if (v < 0x80)
				break;
		}
		memcpy(msg + n, tf, tflen);
		frames_msg = grpc_slice_from_copied_buffer((const char *)msg, n + tflen);
		free(tf);
		free(msg);
	}
	return grpc_slice_ref(frames_msg);
}

static void test_decoded_size_bounded(void **state)
{
	(void)state;
	struct errqd_proc D;
	memset(&D, 0, sizeof(D));
	assert_int_equal(errqd_start(&D, NULL), 0);
	struct hog *hogs = calloc(DECODE_HOGS, sizeof(*hogs));
	uint64_t t0 = errq_mono_ns();
	/* a hog whose send is still pending after HOG_BLOCKED_MS is slow, not refused (a 400 KB
	 * message crosses the 4 KiB stream window a hundred times; under valgrind that outlasts
	 * it): go on until every hog has sent its messages */
	int sent = 0;
	for (;;) {
		hogs_run(D.addr, hogs, DECODE_HOGS, frames_batch, DECODE_MSGS);
		int all = 0;
		for (int i = 0; i < DECODE_HOGS; i++)
			all += hogs[i].sent >= DECODE_MSGS && !hogs[i].bb;
		if (all == DECODE_HOGS)
			break;
		if (errq_mono_ns() - t0 > (uint64_t)WAIT_MS * ERRQ_NS_PER_MS)
			fail_msg("%d of %d streams sent their %d messages", all, DECODE_HOGS, DECODE_MSGS);
	}
	for (int i = 0; i < DECODE_HOGS; i++)
		sent += hogs[i].sent;
	uint64_t t_sent = errq_mono_ns();
	/* every batch sent is decoded and committed: none was refused for its size */
	Errq__V1__StatusResponse *st = NULL;
	for (;;) {
		st = query_status(D.addr);
		assert_non_null(st);
		if (st->events_stored + st->events_duplicate >= (uint64_t)sent)
			break;
		errq__v1__status_response__free_unpacked(st, NULL);
		if (errq_mono_ns() - t_sent > (uint64_t)WAIT_MS * ERRQ_NS_PER_MS)
			fail_msg("%d batches sent, not all committed", sent);
		harness_msleep(10);
	}
	errq__v1__status_response__free_unpacked(st, NULL);
	uint64_t hwm = proc_kb(D.pid, "VmHWM");
	printf("decoded size: %d streams sent %d messages of %zu bytes (%d empty frames) in %llu ms; errqd VmHWM %.1f MiB\n",
	       DECODE_HOGS, sent, GRPC_SLICE_LENGTH(frames_msg), EMPTY_FRAMES,
	       (unsigned long long)((t_sent - t0) / ERRQ_NS_PER_MS), hwm / 1048576.0);
	assert_true(sent >= DECODE_HOGS);
	if (hwm > DECODED_RSS_BOUND)
		fail_msg("errqd peaked at %.1f MiB decoding %d streams of large-decoding messages (bound %llu MiB)",
			 hwm / 1048576.0, DECODE_HOGS, DECODED_RSS_BOUND >> 20);
	for (int i = 0; i < DECODE_HOGS; i++)
		hog_free(&hogs[i]);
	free(hogs);
	grpc_slice_unref(frames_msg);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

/* docs/protocol.md, Semantics 5: a message that decodes to more than 32 MiB ends its call
 * RESOURCE_EXHAUSTED (a 4 MB message of empty frames would take ~260 MiB), and the collector
 * goes on. */
static void test_decoded_limit_per_message(void **state)
{
	(void)state;
	struct errqd_proc D;
	memset(&D, 0, sizeof(D));
	assert_int_equal(errqd_start(&D, NULL), 0);
	enum { FRAMES = 2000000 }; /* 4 000 000 bytes: under the 4 MiB message limit */
	size_t n = 0, tflen = 2 * (size_t)FRAMES;
	uint8_t *msg = malloc(tflen + 16);
	msg[n++] = (2 << 3) | 2; /* ReportRequest.failures */
	for (size_t v = tflen;; v >>= 7) {
		msg[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		if (v < 0x80)
			break;
	}
	for (size_t i = 0; i < FRAMES; i++) { /* TaskFailure.frames, empty */
		msg[n++] = (11 << 3) | 2;
		msg[n++] = 0;
	}
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	assert_int_equal(raw_send_bytes(&s, msg, n), 0);
	char det[256];
	assert_int_equal(raw_finish(&s, det, sizeof(det)), GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_string_equal(det, "ReportRequest decodes to more than 32 MiB");
	raw_free(&s);
	free(msg);
	uint64_t hwm = proc_kb(D.pid, "VmHWM");
	struct errq_idgen g;
	errq_idgen_init(&g);
	assert_int_equal(report_batch(D.addr, &g, 3, "after-huge", "E"), 3);
	printf("decoded limit: a %zu-byte message of empty frames refused; errqd VmHWM %.1f MiB\n", n,
	       hwm / 1048576.0);
	assert_true(hwm < DECODED_RSS_BOUND);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

int main(void)
{
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unread_answers_bounded),
	    cmocka_unit_test(test_decoded_size_bounded),
	    cmocka_unit_test(test_decoded_limit_per_message),
	};
	int rc = cmocka_run_group_tests_name("integration_memory_bounds", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
