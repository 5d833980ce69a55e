/* Integration: a full ingest queue stops reads instead of growing memory, and nothing is
 * acknowledged that is not stored.  While clients stream into a collector with a tiny queue,
 * the test holds the database with BEGIN IMMEDIATE from another connection for a few
 * seconds: the writer cannot commit, so the queue fills, streams are parked and not read,
 * no batch is acknowledged, and errqd's memory stays flat.  After the lock is released every
 * acknowledged id must be in the database. */
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

#include "errq_time.h"
#include "harness.h"

#define QUEUE_CAPACITY 4
#define HOLD_MS 3000

static void wait_acked(struct loadgen *lg, int n)
{
	uint64_t deadline = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	while (atomic_load(&lg->acked_batches) < n && errq_mono_ns() < deadline)
		harness_msleep(2);
	assert_true(atomic_load(&lg->acked_batches) >= n);
}

/* The events committed, as seen by db's own (write-locked) transaction. */
static int committed_events(struct harness_db *db)
{
	int64_t n = harness_db_int(db, "SELECT count(*) FROM events", NULL);
	assert_true(n >= 0);
	return (int)n;
}

static void test_full_queue_stops_reads_and_loses_nothing(void **state)
{
	struct errqd_proc D;
	memset(&D, 0, sizeof(D));
	const char *args[] = {"--set", "ingest_queue_batches=" "4", NULL};
	assert_int_equal(errqd_start(&D, args), 0);
	struct loadgen lg = {.addr = D.addr, .nstreams = 12, .batch = 20, .inflight = 8, .max_batches = 20000,
			     .service_prefix = "svc-bp"};
	assert_int_equal(loadgen_start(&lg), 0);
	wait_acked(&lg, 50);

	/* take the write lock away from the collector */
	struct harness_db *db = harness_db_lock(D.db);
	assert_non_null(db);
	/* nothing commits from now on; the answers to what did commit may still be on their way:
	 * wait until every committed batch (the events this transaction sees, all of them the
	 * load's, `batch` to a batch) has been acknowledged */
	WAIT_FOR(atomic_load(&lg.acked_batches) * lg.batch == committed_events(db));

	Errq__V1__StatusResponse *s0 = query_status(D.addr);
	assert_non_null(s0);
	assert_int_equal(s0->ingest_queue_capacity, QUEUE_CAPACITY);
	int acked_at_lock = atomic_load(&lg.acked_batches);
	uint64_t rss_peak = s0->rss_bytes, rss_start = s0->rss_bytes;
	uint32_t parked_peak = 0;
	for (int t = 0; t < HOLD_MS; t += 100) {
		Errq__V1__StatusResponse *s = query_status(D.addr);
		assert_non_null(s);
		if (s->ingest_queue_batches > QUEUE_CAPACITY || s->ingest_queue_max_batches > QUEUE_CAPACITY)
			fail_msg("queue %u, high-water %u, capacity %u", s->ingest_queue_batches,
				 s->ingest_queue_max_batches, QUEUE_CAPACITY);
		assert_true(s->ingest_queue_max_batches <= QUEUE_CAPACITY);
		if (s->rss_bytes > rss_peak)
			rss_peak = s->rss_bytes;
		if (s->parked > parked_peak)
			parked_peak = s->parked;
		errq__v1__status_response__free_unpacked(s, NULL);
		harness_msleep(100);
	}
	/* nothing could commit, so nothing was acknowledged */
	assert_int_equal(atomic_load(&lg.acked_batches), acked_at_lock);
	Errq__V1__StatusResponse *s1 = query_status(D.addr);
	assert_non_null(s1);
	assert_true(s1->store_errors > s0->store_errors); /* the writer met the lock and retried */
	assert_true(s1->parked_total > 0);                /* streams had to wait: backpressure */
	assert_true(parked_peak > 0);
	/* memory stays flat while twelve clients push: the queue and one batch per stream */
	assert_true(rss_peak < rss_start + 32u * 1024 * 1024);

	harness_db_close(db); /* rolls back: the lock is released */
	/* the collector recovers by itself and the streams go on */
	wait_acked(&lg, acked_at_lock + 50);
	loadgen_stop(&lg);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);

	int sent, acked, unavailable;
	loadgen_totals(&lg, &sent, &acked, &unavailable);
	assert_int_equal(loadgen_missing_acked(&lg, D.db), 0);
	print_message("sent %d batches, %d acknowledged, all stored; queue high-water %u of %u; "
		      "%u streams parked at once; %llu parkings; %llu failed commits retried; "
		      "rss %.1f -> peak %.1f MiB during the hold\n",
		      sent, acked, s1->ingest_queue_max_batches, QUEUE_CAPACITY, parked_peak,
		      (unsigned long long)s1->parked_total, (unsigned long long)s1->store_errors,
		      rss_start / 1048576.0, rss_peak / 1048576.0);
	errq__v1__status_response__free_unpacked(s0, NULL);
	errq__v1__status_response__free_unpacked(s1, NULL);
	loadgen_free(&lg);
	errqd_cleanup(&D);
}

int main(void)
{
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_queue_stops_reads_and_loses_nothing),
	};
	int rc = cmocka_run_group_tests_name("integration_backpressure", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
