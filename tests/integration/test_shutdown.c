/* Integration: SIGTERM while clients stream.  errqd must stop reading, commit what it read,
 * answer it, end the calls with a status and exit 0 within 10 s — and every event it
 * acknowledged must be in the database afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "errq_time.h"
#include "errq_str.h"
#include "grpc/health/v1/health.pb-c.h"
#include "harness.h"

/* The contract (docs/operations.md): after SIGTERM errqd exits 0 within this. */
#define SHUTDOWN_CONTRACT_NS (10ull * ERRQ_NS_PER_SEC)

/* errqd's log, whole (malloc'd). */
static char *read_log(const struct errqd_proc *p)
{
	char *log = NULL;
	const char *cat[] = {"/bin/cat", p->log, NULL};
	assert_int_equal(run_capture(cat, NULL, &log, NULL), 0);
	return log;
}

/* The "drained" line must say the queue was committed and every stream ended in time. */
static void assert_drained_flags(const char *log)
{
	const char *dr = strstr(log, "\"msg\":\"drained\"");
	if (!dr)
		fail_msg("errqd logged no 'drained' line:\n%s", log);
	const char *eol = strchr(dr, '\n');
	size_t n = eol ? (size_t)(eol - dr) : strlen(dr);
	char line[1024];
	errq_snprintf(line, sizeof(line), "%.*s", (int)n, dr);
	if (!strstr(line, "\"queue_drained\":\"true\"") || !strstr(line, "\"streams_ended\":\"true\""))
		fail_msg("errqd did not drain: %s", line);
}

/* Events stored for services named prefix%. */
static long count_events(const char *db_path, const char *prefix)
{
	char like[128];
	errq_snprintf(like, sizeof(like), "%s%%", prefix);
	struct harness_db *h = harness_db_open(db_path);
	assert_non_null(h);
	long n = (long)harness_db_int(h, "SELECT count(*) FROM events WHERE service LIKE $1", like);
	harness_db_close(h);
	return n;
}

static void test_sigterm_loses_nothing_acknowledged(void **state)
{
	struct errqd_proc D;
	struct loadgen lg = {.nstreams = 6, .batch = 40, .inflight = 4, .max_batches = 4000,
			     .service_prefix = "svc-shutdown"};
	memset(&D, 0, sizeof(D));
	assert_int_equal(errqd_start(&D, NULL), 0);
	lg.addr = D.addr;
	assert_int_equal(loadgen_start(&lg), 0);
	/* let the streams get going, then stop the collector in the middle of them */
	uint64_t deadline = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	while (atomic_load(&lg.acked_batches) < lg.nstreams * 10 && errq_mono_ns() < deadline) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	assert_true(atomic_load(&lg.acked_batches) >= lg.nstreams * 10);
	/* the process's exit, measured here from the signal: not errqd's own account of it */
	uint64_t t0 = errq_mono_ns();
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	uint64_t exit_ns = errq_mono_ns() - t0;
	assert_true(exit_ns <= SHUTDOWN_CONTRACT_NS);
	loadgen_stop(&lg);

	char *log = read_log(&D);
	assert_drained_flags(log);
	free(log);

	int sent, acked, unavailable;
	loadgen_totals(&lg, &sent, &acked, &unavailable);
	assert_int_equal(loadgen_missing_acked(&lg, D.db), 0);
	/* Every batch it committed was answered: stored == acknowledged.  Without errqd's linger
	 * after the drain, 2 runs in 12 under load lost answers to a reset connection (the client
	 * was still writing as errqd exited). */
	long stored = count_events(D.db, lg.service_prefix);
	print_message("sent %d batches, %d acknowledged and all stored (%ld events); %d of %d streams ended "
		      "UNAVAILABLE; exit %llu ms after SIGTERM\n", sent, acked, stored, unavailable, lg.nstreams,
		      (unsigned long long)(exit_ns / ERRQ_NS_PER_MS));
	assert_int_equal(stored, (long)acked * lg.batch);
	assert_true(acked >= lg.nstreams * 10);
	assert_int_equal(unavailable, lg.nstreams); /* every stream ended by the collector, UNAVAILABLE */
	loadgen_free(&lg);
	errqd_cleanup(&D);
}

static void assert_health(const char *addr, const char *service, int want)
{
	grpc_status_code cs;
	int st = health_check(addr, service, &cs);
	if (st != want)
		fail_msg("health of '%s': %d (call %d), wanted %d", service, st, (int)cs, want);
}

#define DRAIN_STREAMS 6

static Errq__V1__ReportRequest *batch_new(struct errq_idgen *g, uint64_t seq, int stream)
{
	static char svc[DRAIN_STREAMS][32];
	errq_snprintf(svc[stream], sizeof(svc[stream]), "svc-drain-%d", stream);
	Errq__V1__ReportRequest *r = calloc(1, sizeof(*r));
	errq__v1__report_request__init(r);
	r->seq = seq;
	r->n_failures = 3;
	r->failures = calloc(3, sizeof(*r->failures));
	for (int i = 0; i < 3; i++)
		r->failures[i] = tevent_new(g, svc[stream], "TimeoutError", "deadline exceeded");
	return r;
}

static void batch_free(Errq__V1__ReportRequest *r)
{
	for (size_t i = 0; i < r->n_failures; i++)
		tevent_free(r->failures[i]);
	free(r->failures);
	free(r);
}

/* The drain, held open by a database the test keeps locked: batches read but not committed
 * when SIGTERM comes.  During the drain errqd says NOT_SERVING (gRPC health, for the server
 * and each service by name, and /readyz with the reason); once the store commits again every
 * in-flight batch is answered, then each stream ends UNAVAILABLE, and the process exits 0
 * within the contract, measured from the signal. */
static void test_drain_answers_in_flight_then_unavailable(void **state)
{
	struct errqd_proc D;
	struct errq_idgen g;
	struct rawstream s[DRAIN_STREAMS];
	Errq__V1__ReportResponse *resp;
	memset(&D, 0, sizeof(D));
	errq_idgen_init(&g);
	assert_int_equal(errqd_start(&D, NULL), 0);
	assert_true(D.http_port > 0);

	/* health by service name: the server, errq's services, and an unknown name */
	const char *const names[] = {"", "errq.v1.Collector", "errq.v1.Query", "errq.v1.Alerts",
				     "grpc.health.v1.Health"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_health(D.addr, names[i], GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	grpc_status_code cs;
	assert_int_equal(health_check(D.addr, "errq.v1.Nope", &cs), -1);
	assert_int_equal(cs, GRPC_STATUS_NOT_FOUND);

	/* each stream: one batch answered (the stream is live), then the database is locked */
	for (int i = 0; i < DRAIN_STREAMS; i++) {
		assert_int_equal(raw_open(&s[i], D.addr), 0);
		Errq__V1__ReportRequest *r = batch_new(&g, 1, i);
		assert_int_equal(raw_send(&s[i], r), 0);
		batch_free(r);
		assert_int_equal(raw_recv(&s[i], &resp, HARNESS_DEADLINE_MS), 0);
		assert_int_equal(resp->seq, 1);
		errq__v1__report_response__free_unpacked(resp, NULL);
	}
	struct harness_db *lock = harness_db_lock(D.db);
	assert_non_null(lock);

	/* two more batches a stream: read by errqd, not committable */
	for (int i = 0; i < DRAIN_STREAMS; i++)
		for (uint64_t seq = 2; seq <= 3; seq++) {
			Errq__V1__ReportRequest *r = batch_new(&g, seq, i);
			assert_int_equal(raw_send(&s[i], r), 0);
			batch_free(r);
		}
	uint64_t end = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	for (;;) {
		Errq__V1__StatusResponse *st = query_status(D.addr);
		assert_non_null(st);
		uint32_t q = st->ingest_queue_batches;
		errq__v1__status_response__free_unpacked(st, NULL);
		if (q == 2 * DRAIN_STREAMS)
			break;
		assert_true(errq_mono_ns() < end);
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	/* none of them is answered while the store is locked */
	for (int i = 0; i < DRAIN_STREAMS; i++)
		assert_int_equal(raw_recv(&s[i], &resp, 50), -1);

	uint64_t t0 = errq_mono_ns();
	assert_int_equal(kill(D.pid, SIGTERM), 0);
	/* the drain: NOT_SERVING on both ports, for the reason that it is shutting down */
	end = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	for (;;) {
		int status = 0;
		char *body = NULL;
		assert_int_equal(http_request(D.http_port, "GET", "/readyz", "", &status, NULL, &body), 0);
		bool draining = status == 503 && strstr(body, "shutting down");
		if (!draining && status != 200 && status != 503)
			fail_msg("/readyz answered %d: %s", status, body);
		free(body);
		if (draining)
			break;
		assert_true(errq_mono_ns() < end);
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_health(D.addr, names[i], GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	/* still draining: nothing answered, no stream ended */
	for (int i = 0; i < DRAIN_STREAMS; i++)
		assert_int_equal(raw_recv(&s[i], &resp, 10), -1);
	assert_int_equal(waitpid(D.pid, NULL, WNOHANG), 0);

	harness_db_close(lock); /* rolls back */

	/* each stream: both in-flight batches answered, in order, then UNAVAILABLE */
	for (int i = 0; i < DRAIN_STREAMS; i++) {
		for (uint64_t seq = 2; seq <= 3; seq++) {
			assert_int_equal(raw_recv(&s[i], &resp, HARNESS_DEADLINE_MS), 0);
			assert_int_equal(resp->seq, seq);
			assert_int_equal(resp->accepted, 3);
			errq__v1__report_response__free_unpacked(resp, NULL);
		}
		assert_int_equal(raw_recv(&s[i], &resp, HARNESS_DEADLINE_MS), 1);
		char details[256];
		assert_int_equal(raw_finish(&s[i], details, sizeof(details)), GRPC_STATUS_UNAVAILABLE);
		assert_non_null(strstr(details, "shutting down"));
		raw_free(&s[i]);
	}
	assert_int_equal(errqd_stop(&D, SIGTERM), 0); /* waits for the exit of the first SIGTERM */
	uint64_t exit_ns = errq_mono_ns() - t0;
	print_message("exit %llu ms after SIGTERM\n", (unsigned long long)(exit_ns / ERRQ_NS_PER_MS));
	assert_true(exit_ns <= SHUTDOWN_CONTRACT_NS);
	char *log = read_log(&D);
	assert_drained_flags(log);
	free(log);
	assert_int_equal(count_events(D.db, "svc-drain-"), DRAIN_STREAMS * 3 * 3);
	errqd_cleanup(&D);
}

int main(void)
{
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sigterm_loses_nothing_acknowledged),
	    cmocka_unit_test(test_drain_answers_in_flight_then_unavailable),
	};
	int rc = cmocka_run_group_tests_name("integration_shutdown", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
