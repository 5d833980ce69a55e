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
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

enum { NSTREAMS = 6, BATCH = 40, INFLIGHT = 4, MAX_BATCHES = 4000 };

static struct errqd_proc D;
static atomic_int acked_batches;

struct streamer {
	pthread_t th;
	int idx;
	struct errq_idgen g;
	uint8_t (*ids)[BATCH][16]; /* ids[seq][i] */
	bool *acked;               /* acked[seq] */
	int sent;
	grpc_status_code status;
	char details[256];
};

static void *stream_main(void *arg)
{
	struct streamer *st = arg;
	struct rawstream s;
	if (raw_open(&s, D.addr))
		return NULL;
	Errq__V1__TaskFailure *evs[BATCH];
	for (int seq = 0; seq < MAX_BATCHES; seq++) {
		Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
		req.seq = (uint64_t)seq;
		req.n_failures = BATCH;
		req.failures = evs;
		char svc[32];
		errq_snprintf(svc, sizeof(svc), "svc-shutdown-%d", st->idx);
		for (int i = 0; i < BATCH; i++) {
			evs[i] = tevent_new(&st->g, svc, "TimeoutError", "deadline exceeded");
			memcpy(st->ids[seq][i], evs[i]->event_id.data, 16);
		}
		int rc = raw_send(&s, &req);
		for (int i = 0; i < BATCH; i++)
			tevent_free(evs[i]);
		if (rc)
			break;
		st->sent = seq + 1;
		if (st->sent - INFLIGHT >= 0) { /* keep INFLIGHT batches outstanding */
			Errq__V1__ReportResponse *r;
			if (raw_recv(&s, &r, HARNESS_DEADLINE_MS) != 0)
				break;
			if (r->seq < MAX_BATCHES && r->accepted + r->duplicates == BATCH)
				st->acked[r->seq] = true;
			errq__v1__report_response__free_unpacked(r, NULL);
			atomic_fetch_add(&acked_batches, 1);
		}
	}
	/* collect whatever answers still come, then the final status */
	Errq__V1__ReportResponse *r;
	while (raw_recv(&s, &r, HARNESS_DEADLINE_MS) == 0) {
		if (r->seq < MAX_BATCHES && r->accepted + r->duplicates == BATCH)
			st->acked[r->seq] = true;
		errq__v1__report_response__free_unpacked(r, NULL);
	}
	st->status = raw_finish(&s, st->details, sizeof(st->details));
	raw_free(&s);
	return NULL;
}

static bool stored(sqlite3_stmt *q, const uint8_t id[16])
{
	sqlite3_reset(q);
	sqlite3_bind_blob(q, 1, id, 16, SQLITE_STATIC);
	return sqlite3_step(q) == SQLITE_ROW;
}

static void test_sigterm_loses_nothing_acknowledged(void **state)
{
	static struct streamer st[NSTREAMS];
	memset(&D, 0, sizeof(D));
	assert_int_equal(errqd_start(&D, NULL), 0);
	for (int i = 0; i < NSTREAMS; i++) {
		st[i].idx = i;
		errq_idgen_init(&st[i].g);
		st[i].ids = calloc(MAX_BATCHES, sizeof(*st[i].ids));
		st[i].acked = calloc(MAX_BATCHES, sizeof(bool));
		assert_int_equal(pthread_create(&st[i].th, NULL, stream_main, &st[i]), 0);
	}
	/* let the streams get going, then stop the collector in the middle of them */
	uint64_t deadline = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	while (atomic_load(&acked_batches) < NSTREAMS * 10 && errq_mono_ns() < deadline) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	assert_true(atomic_load(&acked_batches) >= NSTREAMS * 10);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	for (int i = 0; i < NSTREAMS; i++)
		pthread_join(st[i].th, NULL);

	/* errqd's own account: drained well within the 10 s contract */
	char *log = NULL, *cmd_err = NULL;
	const char *cat[] = {"/bin/cat", D.log, NULL};
	assert_int_equal(run_capture(cat, NULL, &log, &cmd_err), 0);
	const char *dr = strstr(log, "\"msg\":\"drained\",\"ms\":\"");
	assert_non_null(dr);
	long ms = strtol(dr + strlen("\"msg\":\"drained\",\"ms\":\""), NULL, 10);
	assert_true(ms >= 0 && ms < 10000);
	free(log);
	free(cmd_err);

	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open_v2(D.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM events WHERE event_id = ?", -1, &q, NULL), SQLITE_OK);
	int acked = 0, unavailable = 0, sent = 0;
	for (int i = 0; i < NSTREAMS; i++) {
		sent += st[i].sent;
		if (st[i].status == GRPC_STATUS_UNAVAILABLE)
			unavailable++;
		for (int seq = 0; seq < st[i].sent; seq++) {
			if (!st[i].acked[seq])
				continue;
			acked++;
			for (int k = 0; k < BATCH; k++)
				if (!stored(q, st[i].ids[seq][k]))
					fail_msg("stream %d batch %d event %d acknowledged but not stored", i, seq, k);
		}
		free(st[i].ids);
		free(st[i].acked);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	print_message("sent %d batches, %d acknowledged and all stored; %d streams ended UNAVAILABLE; "
		      "drained in %ld ms\n", sent, acked, unavailable, ms);
	assert_true(acked >= NSTREAMS * 10);
	assert_true(unavailable >= 1); /* the streams were ended by the collector, with a status */
	errqd_cleanup(&D);
}

int main(void)
{
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sigterm_loses_nothing_acknowledged),
	};
	int rc = cmocka_run_group_tests_name("integration_shutdown", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
