/* Integration: the Report wire contract against a real errqd (ephemeral port, temp db). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "grpc/health/v1/health.pb-c.h"
#include "harness.h"

static struct errqd_proc D;
static struct errq_idgen G;

static int setup(void **state)
{
	grpc_init();
	errq_idgen_init(&G);
	memset(&D, 0, sizeof(D));
	return errqd_start(&D, NULL);
}

static int teardown(void **state)
{
	int st = errqd_stop(&D, SIGTERM);
	errqd_cleanup(&D);
	grpc_shutdown_blocking();
	return st == 0 ? 0 : -1;
}

/* A request holding n events (owned by the test; free with req_free). */
static Errq__V1__ReportRequest *req_new(uint64_t seq, size_t n, const char *service, const char *type)
{
	return treq_new(&G, seq, n, service, type, "connection reset by peer");
}

static Errq__V1__ReportResponse *roundtrip(struct rawstream *s, Errq__V1__ReportRequest *r)
{
	Errq__V1__ReportResponse *resp = NULL;
	assert_int_equal(raw_send(s, r), 0);
	assert_int_equal(raw_recv(s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_non_null(resp);
	return resp;
}

/* Sends r (freed here) alone on a new stream: it must be stored whole, and the stream end OK. */
static void send_stored(Errq__V1__ReportRequest *r)
{
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	Errq__V1__ReportResponse *resp = roundtrip(&s, r);
	assert_int_equal(resp->seq, r->seq);
	assert_int_equal(resp->accepted, r->n_failures);
	assert_int_equal(resp->duplicates, 0);
	assert_int_equal(resp->n_rejected, 0);
	errq__v1__report_response__free_unpacked(resp, NULL);
	treq_free(r);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
}

/* Sends r (freed here) alone on a new stream: the call must end RESOURCE_EXHAUSTED; its
 * details are left in det. */
static void send_refused(Errq__V1__ReportRequest *r, char *det, size_t detsz)
{
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	raw_send(&s, r); /* may fail: the server ends the call */
	assert_int_equal(raw_finish(&s, det, detsz), GRPC_STATUS_RESOURCE_EXHAUSTED);
	raw_free(&s);
	treq_free(r);
}

/* Counts stored events of a service by reading the database directly (read-only; SQLite or
 * PostgreSQL, harness_db). */
static int stored_count(const char *service)
{
	struct harness_db *h = harness_db_open(D.db);
	if (!h)
		return -1;
	int n = (int)harness_db_int(h, "SELECT count(*) FROM events WHERE service = $1", service);
	harness_db_close(h);
	return n;
}

static void test_batch_is_acknowledged_after_commit(void **state)
{
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	Errq__V1__ReportRequest *r = req_new(7, 25, "svc-commit", "ConnectionResetError");
	Errq__V1__ReportResponse *resp = roundtrip(&s, r);
	assert_int_equal(resp->seq, 7);
	assert_int_equal(resp->accepted, 25);
	assert_int_equal(resp->duplicates, 0);
	assert_int_equal(resp->n_rejected, 0);
	/* answered means committed: the rows are in the file now */
	assert_int_equal(stored_count("svc-commit"), 25);
	errq__v1__report_response__free_unpacked(resp, NULL);
	treq_free(r);
	char det[256];
	assert_int_equal(raw_finish(&s, det, sizeof(det)), GRPC_STATUS_OK);
	raw_free(&s);
}

static void test_invalid_events_rejected_alone(void **state)
{
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	Errq__V1__ReportRequest *r = req_new(1, 7, "svc-reject", "ValueError");
	tevent_set(&r->failures[1]->service, "");          /* missing_service */
	tevent_set(&r->failures[2]->error_type, "");       /* missing_error_type */
	r->failures[3]->event_id.len = 5;                  /* bad_event_id */
	tevent_set(&r->failures[5]->message, "bad \xC3\x28 byte"); /* invalid_utf8 */
	Errq__V1__ReportResponse *resp = roundtrip(&s, r);
	assert_int_equal(resp->accepted, 3);
	assert_int_equal(resp->duplicates, 0);
	assert_int_equal(resp->n_rejected, 4);
	assert_int_equal(resp->accepted + resp->duplicates + resp->n_rejected, 7);
	const struct {
		uint32_t index;
		const char *code;
	} want[] = {{1, "missing_service:"}, {2, "missing_error_type:"}, {3, "bad_event_id:"}, {5, "invalid_utf8:"}};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(resp->rejected[i]->index, want[i].index);
		assert_true(strncmp(resp->rejected[i]->reason, want[i].code, strlen(want[i].code)) == 0);
	}
	assert_non_null(strstr(resp->rejected[3]->reason, "'message'"));
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_int_equal(stored_count("svc-reject"), 3);
	/* the stream goes on */
	Errq__V1__ReportRequest *r2 = req_new(2, 2, "svc-reject", "ValueError");
	resp = roundtrip(&s, r2);
	assert_int_equal(resp->seq, 2);
	assert_int_equal(resp->accepted, 2);
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_int_equal(stored_count("svc-reject"), 5);
	r->failures[3]->event_id.len = 16;
	treq_free(r);
	treq_free(r2);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
}

static void test_resend_counts_duplicates_across_streams(void **state)
{
	struct rawstream a, b;
	assert_int_equal(raw_open(&a, D.addr), 0);
	assert_int_equal(raw_open(&b, D.addr), 0);
	Errq__V1__ReportRequest *r = req_new(10, 10, "svc-dup", "TimeoutError");
	Errq__V1__ReportResponse *resp = roundtrip(&a, r);
	assert_int_equal(resp->accepted, 10);
	errq__v1__report_response__free_unpacked(resp, NULL);
	/* the same batch again on the same stream, with the same seq (repeats are answered) */
	resp = roundtrip(&a, r);
	assert_int_equal(resp->seq, 10);
	assert_int_equal(resp->accepted, 0);
	assert_int_equal(resp->duplicates, 10);
	errq__v1__report_response__free_unpacked(resp, NULL);
	/* and on another stream, with a gap in seq */
	r->seq = 99;
	resp = roundtrip(&b, r);
	assert_int_equal(resp->seq, 99);
	assert_int_equal(resp->duplicates, 10);
	errq__v1__report_response__free_unpacked(resp, NULL);
	/* a duplicate inside one batch counts once */
	Errq__V1__ReportRequest *r2 = req_new(11, 2, "svc-dup", "TimeoutError");
	memcpy(r2->failures[1]->event_id.data, r2->failures[0]->event_id.data, 16);
	resp = roundtrip(&b, r2);
	assert_int_equal(resp->accepted, 1);
	assert_int_equal(resp->duplicates, 1);
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_int_equal(stored_count("svc-dup"), 11);
	treq_free(r);
	treq_free(r2);
	assert_int_equal(raw_finish(&a, NULL, 0), GRPC_STATUS_OK);
	assert_int_equal(raw_finish(&b, NULL, 0), GRPC_STATUS_OK);
	raw_free(&a);
	raw_free(&b);
}

static void test_empty_batch_zero_counts(void **state)
{
	send_stored(req_new(5, 0, NULL, NULL)); /* answered: seq 5, every count 0 */
}

static void test_just_under_limit_is_stored_truncated(void **state)
{
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	Errq__V1__ReportRequest *r = req_new(1, 1, "svc-long", "MemoryError");
	size_t n = 100000;
	char *big = malloc(n + 1);
	memset(big, 'y', n);
	big[n] = '\0';
	free(r->failures[0]->message);
	r->failures[0]->message = big;
	Errq__V1__ReportResponse *resp = roundtrip(&s, r);
	assert_int_equal(resp->accepted, 1);
	errq__v1__report_response__free_unpacked(resp, NULL);
	treq_free(r);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
	Errq__V1__ListEventsResponse *ev = query_events(D.addr, 1000);
	assert_non_null(ev);
	int found = 0;
	for (size_t i = 0; i < ev->n_events; i++) {
		if (strcmp(ev->events[i]->service, "svc-long") != 0)
			continue;
		found = 1;
		assert_int_equal(strlen(ev->events[i]->message), 8192);
		assert_int_equal(ev->events[i]->n_truncated, 1);
		assert_string_equal(ev->events[i]->truncated[0], "message");
	}
	assert_true(found);
	errq__v1__list_events_response__free_unpacked(ev, NULL);
}

static void test_too_many_failures_refused_before_decoding(void **state)
{
	/* 10 001 empty TaskFailures: 2 bytes each on the wire, but each would cost the collector
	 * hundreds of bytes decoded; the batch is refused whole and nothing is stored */
	enum { N = 10001 };
	uint8_t *buf = malloc(2 * N);
	for (int i = 0; i < N; i++) {
		buf[2 * i] = 0x12; /* field 2, length-delimited */
		buf[2 * i + 1] = 0x00;
	}
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	raw_send_bytes(&s, buf, 2 * N);
	char det[256];
	assert_int_equal(raw_finish(&s, det, sizeof(det)), GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(det, "10001 failures"));
	raw_free(&s);
	free(buf);
}

/* docs/protocol.md:90 "A message larger than 4 MiB (4194304 bytes, encoded) ends the call
 * with RESOURCE_EXHAUSTED": a ReportRequest of exactly 4194304 bytes is stored (its message
 * truncated to 8192 bytes), one of 4194305 ends the call and nothing of it is stored. */
#define DOC_MAX_MESSAGE_BYTES 4194304

/* A one-event request whose encoding is exactly `size` bytes. */
static Errq__V1__ReportRequest *req_of_size(const char *service, size_t size)
{
	Errq__V1__ReportRequest *r = req_new(1, 1, service, "MemoryError");
	size_t len = size - 200;
	for (int tries = 0; tries < 8; tries++) {
		char *m = malloc(len + 1);
		assert_non_null(m);
		memset(m, 'z', len);
		m[len] = '\0';
		free(r->failures[0]->message);
		r->failures[0]->message = m;
		size_t packed = errq__v1__report_request__get_packed_size(r);
		if (packed == size)
			return r;
		len = len + size - packed; /* the length prefixes do not change size this close */
	}
	fail_msg("cannot make a ReportRequest of exactly %zu bytes", size);
	return NULL;
}

static void test_message_at_the_4mib_limit(void **state)
{
	char det[256];
	send_stored(req_of_size("svc-4mib", DOC_MAX_MESSAGE_BYTES));
	assert_int_equal(stored_count("svc-4mib"), 1);
	send_refused(req_of_size("svc-4mib-over", DOC_MAX_MESSAGE_BYTES + 1), det, sizeof(det));
	assert_int_equal(stored_count("svc-4mib-over"), 0);
}

/* docs/protocol.md:92 "So does a batch of more than 10 000 failures (ReportRequest has N
 * failures, more than the limit of 10000)": 10 000 real events in one batch are all stored;
 * 10 001 end the call, and none of them is stored. */
#define DOC_MAX_BATCH_FAILURES 10000

static void test_batch_of_exactly_10000_failures(void **state)
{
	char det[256];
	send_stored(req_new(7, DOC_MAX_BATCH_FAILURES, "svc-10k", "ConnectionError"));
	assert_int_equal(stored_count("svc-10k"), DOC_MAX_BATCH_FAILURES);
	send_refused(req_new(8, DOC_MAX_BATCH_FAILURES + 1, "svc-10k-over", "ConnectionError"), det, sizeof(det));
	assert_string_equal(det, "ReportRequest has 10001 failures, more than the limit of 10000");
	assert_int_equal(stored_count("svc-10k-over"), 0);
}

static void test_garbage_invalid_argument(void **state)
{
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	/* field 2 (failures), wire type 2, length 100 but only 3 bytes follow */
	const uint8_t junk[] = {0x12, 0x64, 0x01, 0x02, 0x03};
	assert_int_equal(raw_send_bytes(&s, junk, sizeof(junk)), 0);
	char det[256];
	assert_int_equal(raw_finish(&s, det, sizeof(det)), GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(det, "ReportRequest"));
	raw_free(&s);
}

static void test_many_streams_at_once(void **state)
{
	enum { NS = 24, NB = 5, NE = 20 };
	struct rawstream s[NS];
	Errq__V1__ReportRequest *r[NS][NB];
	for (int i = 0; i < NS; i++)
		assert_int_equal(raw_open(&s[i], D.addr), 0);
	/* every stream sends all its batches before any reads an answer: the collector must
	 * serve them concurrently */
	for (int b = 0; b < NB; b++)
		for (int i = 0; i < NS; i++) {
			r[i][b] = req_new((uint64_t)b, NE, "svc-many", "OSError");
			assert_int_equal(raw_send(&s[i], r[i][b]), 0);
		}
	for (int i = 0; i < NS; i++)
		for (int b = 0; b < NB; b++) {
			Errq__V1__ReportResponse *resp;
			assert_int_equal(raw_recv(&s[i], &resp, HARNESS_DEADLINE_MS), 0);
			assert_int_equal(resp->seq, (uint64_t)b); /* answered in order */
			assert_int_equal(resp->accepted, NE);
			errq__v1__report_response__free_unpacked(resp, NULL);
			treq_free(r[i][b]);
		}
	for (int i = 0; i < NS; i++) {
		assert_int_equal(raw_finish(&s[i], NULL, 0), GRPC_STATUS_OK);
		raw_free(&s[i]);
	}
	assert_int_equal(stored_count("svc-many"), NS * NB * NE);
}

static void test_health_and_unknown(void **state)
{
	grpc_channel *ch = errq_channel_new(D.addr);
	struct errq_unary_result res;
	Grpc__Health__V1__HealthCheckRequest hr = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	assert_int_equal(errq_unary_call(ch, "/grpc.health.v1.Health/Check", &hr.base, HARNESS_DEADLINE_MS, &res), 0);
	assert_int_equal(res.status, GRPC_STATUS_OK);
	assert_true(res.has_resp);
	Grpc__Health__V1__HealthCheckResponse *out = grpc__health__v1__health_check_response__unpack(
	    NULL, GRPC_SLICE_LENGTH(res.resp), GRPC_SLICE_START_PTR(res.resp));
	assert_non_null(out);
	assert_int_equal(out->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	grpc__health__v1__health_check_response__free_unpacked(out, NULL);
	errq_unary_result_free(&res);

	hr.service = "no.such.Service";
	assert_int_equal(errq_unary_call(ch, "/grpc.health.v1.Health/Check", &hr.base, HARNESS_DEADLINE_MS, &res), 0);
	assert_int_equal(res.status, GRPC_STATUS_NOT_FOUND);
	errq_unary_result_free(&res);

	assert_int_equal(errq_unary_call(ch, "/errq.v1.Nope/Nothing", &hr.base, HARNESS_DEADLINE_MS, &res), 0);
	assert_int_equal(res.status, GRPC_STATUS_UNIMPLEMENTED);
	errq_unary_result_free(&res);
	grpc_channel_destroy(ch);
}

static void test_restart_keeps_dedupe(void **state)
{
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	Errq__V1__ReportRequest *r = req_new(1, 4, "svc-restart", "KeyError");
	Errq__V1__ReportResponse *resp = roundtrip(&s, r);
	assert_int_equal(resp->accepted, 4);
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);

	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	assert_int_equal(errqd_start(&D, NULL), 0); /* same directory, same database */

	assert_int_equal(raw_open(&s, D.addr), 0);
	resp = roundtrip(&s, r);
	assert_int_equal(resp->accepted, 0);
	assert_int_equal(resp->duplicates, 4);
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
	treq_free(r);
	assert_int_equal(stored_count("svc-restart"), 4);
}

static void test_groups_aggregate(void **state)
{
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	Errq__V1__ReportRequest *r = req_new(1, 6, "svc-groups", "TimeoutError");
	for (int i = 3; i < 6; i++)
		tevent_set(&r->failures[i]->error_type, "ConnectionError");
	Errq__V1__ReportResponse *resp = roundtrip(&s, r);
	assert_int_equal(resp->accepted, 6);
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
	treq_free(r);
	Errq__V1__ListGroupsResponse *g = query_groups(D.addr, 1000);
	assert_non_null(g);
	int seen = 0;
	for (size_t i = 0; i < g->n_groups; i++) {
		if (strcmp(g->groups[i]->service, "svc-groups") != 0)
			continue;
		seen++;
		assert_int_equal(g->groups[i]->total, 3);
		assert_int_equal(g->groups[i]->count, 3);
		assert_int_equal(strlen(g->groups[i]->fingerprint), 16);
		assert_true(g->groups[i]->first_seen_unix_nano <= g->groups[i]->last_seen_unix_nano);
		assert_string_equal(g->groups[i]->status, "unresolved");
	}
	assert_int_equal(seen, 2);
	errq__v1__list_groups_response__free_unpacked(g, NULL);
}

static void test_bad_config_refused(void **state)
{
	char path[400], *err = NULL;
	errq_snprintf(path, sizeof(path), "%s/bad.yaml", D.dir);
	FILE *f = fopen(path, "w");
	fputs("listen: 127.0.0.1:0\n# comment\nlisten_port: 9\n", f);
	fclose(f);
	const char *args[] = {"--config", path, NULL};
	assert_int_equal(errqd_run_once(args, &err), 1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "line 3"));
	assert_non_null(strstr(err, "listen_port"));
	free(err);

	f = fopen(path, "w");
	fputs("durability: sometimes\n", f);
	fclose(f);
	assert_int_equal(errqd_run_once(args, &err), 1);
	assert_non_null(strstr(err, "line 1"));
	assert_non_null(strstr(err, "durability"));
	free(err);
}

static void test_newer_schema_refused(void **state)
{
	char path[400], *err = NULL;
	errq_snprintf(path, sizeof(path), "%s/future.db", D.dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(a); PRAGMA user_version=99;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	const char *args[] = {"--listen", "127.0.0.1:0", "--db", path, NULL};
	assert_int_equal(errqd_run_once(args, &err), 1);
	assert_non_null(strstr(err, "newer"));
	assert_non_null(strstr(err, "99"));
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_is_acknowledged_after_commit),
	    cmocka_unit_test(test_invalid_events_rejected_alone),
	    cmocka_unit_test(test_resend_counts_duplicates_across_streams),
	    cmocka_unit_test(test_empty_batch_zero_counts),
	    cmocka_unit_test(test_just_under_limit_is_stored_truncated),
	    cmocka_unit_test(test_garbage_invalid_argument),
	    cmocka_unit_test(test_too_many_failures_refused_before_decoding),
	    cmocka_unit_test(test_message_at_the_4mib_limit),
	    cmocka_unit_test(test_batch_of_exactly_10000_failures),
	    cmocka_unit_test(test_many_streams_at_once),
	    cmocka_unit_test(test_health_and_unknown),
	    cmocka_unit_test(test_groups_aggregate),
	    cmocka_unit_test(test_restart_keeps_dedupe),
	    cmocka_unit_test(test_bad_config_refused),
	    cmocka_unit_test(test_newer_schema_refused),
	};
	return cmocka_run_group_tests_name("integration_report", tests, setup, teardown);
}
