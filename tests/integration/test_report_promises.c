/* Integration: promises of docs/protocol.md that need the collector held mid-batch.  The test
 * holds the database's write lock (BEGIN IMMEDIATE on its own connection), so batches errqd
 * has read cannot commit: what it does with them before and after is then deterministic.
 *  - a malformed message after good batches: the good ones are committed and answered first,
 *    then the call ends INVALID_ARGUMENT (Semantics 5);
 *  - at most 64 batches of one stream await their answer; errqd reads no more of it until
 *    answers go out (Semantics 7), while another stream is still read;
 *  - a string with an embedded NUL byte is stored up to that byte (Fields). */
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

#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

/* docs/protocol.md, Semantics 7 (a test build shrinks the bound: services.h) */
#ifdef ERRQ_TEST_LIMITS
#define DOC_MAX_UNANSWERED 4
#else
#define DOC_MAX_UNANSWERED 64
#endif

static struct errqd_proc D;
static struct errq_idgen G;
static struct harness_db *LOCK;

static int setup(void **state)
{
	memset(&D, 0, sizeof(D));
	errq_idgen_init(&G);
	return errqd_start(&D, NULL);
}

static int teardown(void **state)
{
	int st = errqd_stop(&D, SIGTERM);
	errqd_cleanup(&D);
	return st == 0 ? 0 : -1;
}

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void lock_db(void)
{
	LOCK = harness_db_lock(D.db);
	assert_non_null(LOCK);
}

static void unlock_db(void)
{
	harness_db_close(LOCK); /* rolls back */
	LOCK = NULL;
}

static uint32_t queued_batches(void)
{
	Errq__V1__StatusResponse *st = query_status(D.addr);
	assert_non_null(st);
	uint32_t q = st->ingest_queue_batches;
	errq__v1__status_response__free_unpacked(st, NULL);
	return q;
}

static void wait_queued(uint32_t n)
{
	uint64_t end = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	uint32_t q;
	while ((q = queued_batches()) != n) {
		if (errq_mono_ns() > end)
			fail_msg("the ingest queue holds %u batches, never %u", q, n);
		msleep(5);
	}
}

static void send_batch(struct rawstream *s, uint64_t seq, const char *service)
{
	Errq__V1__TaskFailure *ev = tevent_new(&G, service, "TimeoutError", "upstream timed out");
	Errq__V1__TaskFailure *evs[1] = {ev};
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
	req.seq = seq;
	req.n_failures = 1;
	req.failures = evs;
	assert_int_equal(raw_send(s, &req), 0);
	tevent_free(ev);
}

static void expect_answer(struct rawstream *s, uint64_t seq)
{
	Errq__V1__ReportResponse *r;
	assert_int_equal(raw_recv(s, &r, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(r->seq, seq);
	assert_int_equal(r->accepted, 1);
	errq__v1__report_response__free_unpacked(r, NULL);
}

/* errqd's count of messages that ended their stream as malformed (/metrics). */
static long malformed_total(void)
{
	int status;
	char *body = NULL;
	assert_int_equal(http_request(D.http_port, "GET", "/metrics", "", &status, NULL, &body), 0);
	assert_int_equal(status, 200);
	const char *k = "errq_batches_failed_total{reason=\"malformed\"} ";
	const char *p = strstr(body, k);
	long v = p ? strtol(p + strlen(k), NULL, 10) : -1;
	free(body);
	return v;
}

static void test_malformed_after_good_batches_answers_them_first(void **state)
{
	struct rawstream s;
	long malformed0 = malformed_total();
	assert_true(malformed0 >= 0);
	lock_db();
	assert_int_equal(raw_open(&s, D.addr), 0);
	send_batch(&s, 1, "svc-malformed");
	send_batch(&s, 2, "svc-malformed");
	/* counts one failure (so it is decoded), whose event_id says 5 bytes and has 1 */
	const uint8_t junk[] = {0x12, 0x03, 0x0a, 0x05, 0x01};
	assert_int_equal(raw_send_bytes(&s, junk, sizeof(junk)), 0);
	wait_queued(2);
	uint64_t end = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	while (malformed_total() != malformed0 + 1) {
		assert_true(errq_mono_ns() < end);
		msleep(5);
	}
	/* the call is ending, but not before the two batches it read are answered */
	Errq__V1__ReportResponse *r;
	assert_int_equal(raw_recv(&s, &r, 50), -1);
	unlock_db();
	expect_answer(&s, 1);
	expect_answer(&s, 2);
	assert_int_equal(raw_recv(&s, &r, HARNESS_DEADLINE_MS), 1);
	char det[256];
	assert_int_equal(raw_finish(&s, det, sizeof(det)), GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(det, "cannot decode ReportRequest"));
	raw_free(&s);
}

static void test_unanswered_batches_per_stream_bounded(void **state)
{
	struct rawstream s, other;
	const int extra = 3;
	lock_db();
	assert_int_equal(raw_open(&s, D.addr), 0);
	for (int i = 1; i <= DOC_MAX_UNANSWERED + extra; i++)
		send_batch(&s, (uint64_t)i, "svc-inflight");
	wait_queued(DOC_MAX_UNANSWERED);
	/* another stream is still read: its batch joins the queue, the first stream's do not */
	assert_int_equal(raw_open(&other, D.addr), 0);
	send_batch(&other, 1, "svc-inflight-other");
	wait_queued(DOC_MAX_UNANSWERED + 1);
	/* the first stream's batches were all sent before the other's one: had errqd read past
	 * the bound, they would be in the queue by now */
	assert_int_equal(queued_batches(), DOC_MAX_UNANSWERED + 1);
	unlock_db();
	/* answers free the slots: the rest is read, and every batch answered in order */
	for (int i = 1; i <= DOC_MAX_UNANSWERED + extra; i++)
		expect_answer(&s, (uint64_t)i);
	expect_answer(&other, 1);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	assert_int_equal(raw_finish(&other, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
	raw_free(&other);
}

static void test_embedded_nul_stored_up_to_it(void **state)
{
	Errq__V1__TaskFailure *ev = tevent_new(&G, "svc-nul", "ValueError", "before#after");
	tevent_set(&ev->task, "task#tail");
	Errq__V1__TaskFailure *evs[1] = {ev};
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
	req.seq = 7;
	req.n_failures = 1;
	req.failures = evs;
	size_t n = errq__v1__report_request__get_packed_size(&req);
	uint8_t *buf = malloc(n);
	errq__v1__report_request__pack(&req, buf);
	/* protobuf-c packs C strings: put the NUL bytes in on the wire (in the two strings, not
	 * in a random byte of the id that happens to be '#') */
	const char *const marked[] = {"before#after", "task#tail"};
	for (size_t k = 0; k < 2; k++) {
		uint8_t *at = memmem(buf, n, marked[k], strlen(marked[k]));
		assert_non_null(at);
		at[strchr(marked[k], '#') - marked[k]] = 0;
	}
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	assert_int_equal(raw_send_bytes(&s, buf, n), 0);
	Errq__V1__ReportResponse *r;
	assert_int_equal(raw_recv(&s, &r, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(r->seq, 7);
	assert_int_equal(r->accepted, 1);
	assert_int_equal(r->n_rejected, 0);
	errq__v1__report_response__free_unpacked(r, NULL);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
	free(buf);

	Errq__V1__ListEventsResponse *le = query_events(D.addr, 100);
	assert_non_null(le);
	const Errq__V1__Event *got = NULL;
	for (size_t i = 0; i < le->n_events; i++)
		if (!strcmp(le->events[i]->service, "svc-nul"))
			got = le->events[i];
	assert_non_null(got);
	assert_memory_equal(got->event_id.data, ev->event_id.data, 16);
	assert_string_equal(got->message, "before");
	assert_string_equal(got->task, "task");
	assert_string_equal(got->error_type, "ValueError");
	errq__v1__list_events_response__free_unpacked(le, NULL);
	tevent_free(ev);
}

/* After each test: a test that failed while holding the lock must not fail the next ones. */
static int release_lock(void **state)
{
	if (LOCK) {
		harness_db_close(LOCK);
		LOCK = NULL;
	}
	return 0;
}

int main(void)
{
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_malformed_after_good_batches_answers_them_first, release_lock),
	    cmocka_unit_test_teardown(test_unanswered_batches_per_stream_bounded, release_lock),
	    cmocka_unit_test_teardown(test_embedded_nul_stored_up_to_it, release_lock),
	};
	return cmocka_run_group_tests_name("integration_report_promises", tests, setup, teardown);
}
