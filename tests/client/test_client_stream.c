/* Unit: liberrq against an in-process fake collector (fake_collector.c): batching and acks,
 * what goes on the wire, rejections, a stream that breaks before its ack (reconnect and
 * resend, counted as duplicates), a collector that starts late, reports from 8 threads,
 * outcome counts (and their batch_id across a resend), the bearer token as metadata, a
 * collector that never answers (the ack timeout), the client-side circuit, and TLS. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "client_int.h"
#include "errq_str.h"
#include "errq_time.h"
#include "fake_collector.h"
#include "client_support.h"
#include "errq_banned.h"

#define GENEROUS_MS 30000

static errq_client_t *client_for(const char *addr, size_t batch_events)
{
	errq_options_t *o = errq_options_new();
	assert_non_null(o);
	assert_int_equal(errq_options_set_collector(o, addr), ERRQ_OK);
	assert_int_equal(errq_options_set_service(o, "stream-test"), ERRQ_OK);
	assert_int_equal(errq_options_set_environment(o, "test"), ERRQ_OK);
	assert_int_equal(errq_options_set_release(o, "9.9.9"), ERRQ_OK);
	assert_int_equal(errq_options_set_host(o, "host-1"), ERRQ_OK);
	assert_int_equal(errq_options_set_max_batch_events(o, batch_events), ERRQ_OK);
	assert_int_equal(errq_options_set_linger_ms(o, 5), ERRQ_OK);
	assert_int_equal(errq_options_set_reconnect_backoff(o, 5, 100), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	assert_non_null(c);
	return c;
}



static void report_n(errq_client_t *c, int first, int n)
{
	for (int i = first; i < first + n; i++)
		assert_int_equal(errq_report_failure(c, "TimeoutError", "TIMEOUT", "m%d", i), ERRQ_OK);
}

/* Number of distinct event ids among every request the fake received. */
static size_t ids_seen(struct fake_collector *f)
{
	pthread_mutex_lock(&f->mu);
	size_t n = f->n_ids;
	pthread_mutex_unlock(&f->mu);
	return n;
}

static void test_batches_are_acked(void **state)
{
	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_client_t *c = client_for(f.addr, 10);

	errq_event_t *ev = errq_event_new("other-service", "ValueError", "bad json");
	errq_event_set_code(ev, "BAD_FORMAT");
	errq_event_set_task(ev, "parse");
	errq_event_set_environment(ev, "canary");
	errq_event_set_fingerprint(ev, "fp-7");
	errq_event_add_detail(ev, "offset", "17");
	errq_event_add_frame(ev, "main", "main.c", 10, "app", true);
	errq_event_add_frame(ev, "parse", "json.c", 99, "libjson", false);
	errq_event_set_attempt(ev, 2);
	errq_event_set_handled(ev, false);
	errq_event_set_time_ns(ev, 1795629791482000000ULL);
	assert_int_equal(errq_report(c, ev), ERRQ_OK);
	report_n(c, 1, 94);

	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.queued, 95);
	assert_int_equal(st.acked, 95);
	assert_int_equal(st.accepted, 95);
	assert_int_equal(st.duplicates, 0);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.sent, 95);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.pending_bytes, 0);
	assert_true(st.batches_acked >= 10); /* at most 10 per batch */
	assert_int_equal(st.batches_acked, st.batches_sent);
	assert_int_equal(st.resends, 0);
	assert_int_equal(st.reconnects, 0);
	assert_int_equal(st.connected, 1);

	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.n_ids, 95);
	assert_int_equal(f.events_received, 95);
	assert_int_equal(f.calls, 1); /* one stream for everything */
	uint64_t last_seq = 0;
	const uint8_t *last_id = NULL;
	for (size_t r = 0; r < f.n_requests; r++) {
		Errq__V1__ReportRequest *req = f.requests[r];
		assert_true(req->seq > last_seq); /* increasing */
		last_seq = req->seq;
		assert_true(req->n_failures >= 1 && req->n_failures <= 10);
		assert_int_equal(req->batch_id.len, 16);
		if (r)
			assert_memory_not_equal(req->batch_id.data, f.requests[r - 1]->batch_id.data, 16);
		for (size_t i = 0; i < req->n_failures; i++) {
			const uint8_t *id = req->failures[i]->event_id.data;
			assert_int_equal(req->failures[i]->event_id.len, 16);
			assert_int_equal(id[6] >> 4, 7);      /* UUIDv7 */
			assert_int_equal(id[8] & 0xC0, 0x80); /* variant 10 */
			if (last_id) /* one reporting thread: ids are in report order */
				assert_true(memcmp(last_id, id, 16) < 0);
			last_id = id;
		}
	}
	Errq__V1__TaskFailure *t = f.requests[0]->failures[0];
	assert_string_equal(t->service, "other-service");
	assert_string_equal(t->environment, "canary");
	assert_string_equal(t->release, "9.9.9");
	assert_string_equal(t->host, "host-1");
	assert_string_equal(t->error_type, "ValueError");
	assert_string_equal(t->error_code, "BAD_FORMAT");
	assert_string_equal(t->message, "bad json");
	assert_string_equal(t->task, "parse");
	assert_string_equal(t->fingerprint, "fp-7");
	assert_int_equal(t->attempt, 2);
	assert_false(t->handled);
	assert_int_equal(t->time_unix_nano, 1795629791482000000ULL);
	assert_int_equal(t->n_details, 1);
	assert_string_equal(t->details[0]->key, "offset");
	assert_string_equal(t->details[0]->value, "17");
	assert_int_equal(t->n_frames, 2);
	assert_string_equal(t->frames[0]->function, "main");
	assert_true(t->frames[0]->in_app);
	assert_string_equal(t->frames[1]->module, "libjson");
	assert_int_equal(t->frames[1]->line, 99);
	/* errq_report_failure: the client's service, handled, the time stamped at report */
	/* the second event reported (the first batch may hold only the first, on a slow run) */
	Errq__V1__TaskFailure *t2 = f.requests[0]->n_failures > 1 ? f.requests[0]->failures[1]
								  : f.requests[1]->failures[0];
	assert_string_equal(t2->service, "stream-test");
	assert_string_equal(t2->environment, "test");
	assert_string_equal(t2->message, "m1");
	assert_string_equal(t2->error_code, "TIMEOUT");
	assert_true(t2->handled);
	assert_true(t2->time_unix_nano > 1700000000ULL * 1000000000ULL);
	pthread_mutex_unlock(&f.mu);

	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
}

static void test_rejections_are_counted(void **state)
{
	struct fake_collector f = {.reject_first = true};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_client_t *c = client_for(f.addr, 4);
	report_n(c, 0, 20);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.acked, 20);
	assert_int_equal(st.rejected, st.batches_acked); /* one per batch */
	assert_true(st.rejected >= 5);
	assert_int_equal(st.accepted + st.rejected, 20);
	assert_int_equal(st.pending, 0);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
}

/* The first two streams end right after their first message, which the collector stored but
 * never acknowledged: the client must reconnect, write the batch again (and everything after
 * it, in order), and the collector's dedupe turns the repeats into duplicates. */
static void test_broken_stream_resends(void **state)
{
	struct fake_collector f = {.fail_first_calls = 2};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_client_t *c = client_for(f.addr, 5);
	report_n(c, 0, 23);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.acked, 23);
	assert_int_equal(st.accepted + st.duplicates, 23);
	assert_true(st.duplicates >= 1);
	assert_true(st.resends >= 2);
	assert_true(st.reconnects >= 2);
	assert_true(st.stream_failures >= 2);
	assert_int_equal(st.sent, 23); /* first writes only */
	assert_int_equal(st.pending, 0);

	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.n_ids, 23); /* stored exactly once each */
	assert_true(f.events_received > 23);
	assert_true(f.calls >= 3);
	/* on the surviving stream the seqs still increase: old batches first, in order */
	uint64_t prev = 0;
	size_t dup_seq = 0;
	for (size_t r = 0; r < f.n_requests; r++) {
		if (f.requests[r]->seq <= prev)
			dup_seq++; /* a new stream starting over from the oldest unacknowledged batch */
		prev = f.requests[r]->seq;
	}
	assert_int_equal(dup_seq, 2);
	pthread_mutex_unlock(&f.mu);

	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
}

/* Reports made while no collector listens are kept (up to the capacity: the newest are
 * dropped) and delivered once one starts on that address. */
static void test_collector_starts_late(void **state)
{
	struct fake_collector probe = {0};
	assert_int_equal(fake_start(&probe, 0), 0); /* find a free port, then free it */
	int port = probe.port;
	char addr[64];
	memcpy(addr, probe.addr, sizeof(addr));
	fake_stop(&probe);

	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, addr);
	errq_options_set_service(o, "late");
	errq_options_set_queue_capacity(o, 5);
	errq_options_set_linger_ms(o, 1);
	errq_options_set_reconnect_backoff(o, 5, 50);
	errq_client_t *c = errq_client_new(o);
	for (int i = 0; i < 8; i++)
		assert_int_equal(errq_report_failure(c, "E", NULL, "m%d", i),
				 i < 5 ? ERRQ_OK : ERRQ_EQUEUEFULL);
	uint64_t t0 = errq_mono_ns();
	while (stats_of(c).stream_failures < 2 && errq_mono_ns() - t0 < GENEROUS_MS * ERRQ_NS_PER_MS)
		usleep(5000);
	assert_true(stats_of(c).stream_failures >= 2);

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.acked, 5);
	assert_int_equal(st.accepted, 5);
	assert_int_equal(st.dropped_queue_full, 3);

	pthread_mutex_lock(&f.mu);
	int seen[8] = {0};
	for (size_t r = 0; r < f.n_requests; r++)
		for (size_t i = 0; i < f.requests[r]->n_failures; i++) {
			int k = atoi(f.requests[r]->failures[i]->message + 1);
			assert_true(k >= 0 && k < 8);
			seen[k]++;
		}
	for (int k = 0; k < 8; k++) /* the oldest five were kept, the newest three dropped */
		assert_int_equal(seen[k], k < 5 ? 1 : 0);
	pthread_mutex_unlock(&f.mu);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
}

struct reporter_arg {
	errq_client_t *c;
	int id;
	int n;
	int failures;
};

static void *reporter(void *p)
{
	struct reporter_arg *a = p;
	for (int i = 0; i < a->n; i++) {
		errq_event_t *ev = errq_event_new(NULL, "ThreadError", "from a thread");
		char v[16];
		snprintf(v, sizeof(v), "%d", a->id);
		errq_event_add_detail(ev, "thread", v);
		if (errq_report(a->c, ev) != ERRQ_OK)
			a->failures++;
	}
	return NULL;
}

static void test_many_threads(void **state)
{
	enum { THREADS = 8, EACH = 250 };
	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_client_t *c = client_for(f.addr, 64);
	pthread_t th[THREADS];
	struct reporter_arg args[THREADS];
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct reporter_arg){c, i, EACH, 0};
		assert_int_equal(pthread_create(&th[i], NULL, reporter, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.acked, THREADS * EACH);
	assert_int_equal(st.accepted, THREADS * EACH);
	assert_int_equal(ids_seen(&f), THREADS * EACH); /* ids unique across threads */
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
}

/* Close delivers what is queued when the collector is there: nothing lost. */
static void test_close_flushes(void **state)
{
	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, f.addr);
	errq_options_set_service(o, "closer");
	errq_options_set_linger_ms(o, 60000); /* only close's flush sends it */
	errq_client_t *c = errq_client_new(o);
	report_n(c, 0, 3);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	assert_int_equal(ids_seen(&f), 3);
	fake_stop(&f);
}


/* Outcomes: summed per task, sent as Outcome records with the client's service, a window,
 * and a 16-byte batch_id; acknowledged counts show in the stats. */
static void test_outcomes_are_sent(void **state)
{
	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, f.addr);
	errq_options_set_service(o, "outcomes");
	errq_options_set_outcome_interval(o, 1);
	errq_client_t *c = errq_client_new(o);
	for (int i = 0; i < 30; i++)
		assert_int_equal(errq_record_outcome(c, "charge", i % 3 != 0), ERRQ_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(errq_record_outcome(c, NULL, true), ERRQ_OK);
	errq_stats_t st;
	WAIT_STATS(c, st, st.outcomes_acked == 35);
	assert_int_equal(st.outcomes_recorded, 35);
	assert_int_equal(st.outcomes_dropped, 0);
	assert_int_equal(st.acked, 0); /* no events */

	pthread_mutex_lock(&f.mu);
	uint64_t ok = 0, failed = 0, whole_ok = 0;
	for (size_t r = 0; r < f.n_requests; r++) {
		Errq__V1__ReportRequest *req = f.requests[r];
		assert_int_equal(req->batch_id.len, 16);
		for (size_t i = 0; i < req->n_outcomes; i++) {
			Errq__V1__Outcome *oc = req->outcomes[i];
			assert_string_equal(oc->service, "outcomes");
			assert_true(oc->window_seconds >= 1);
			assert_true(oc->window_start_unix_nano > 1700000000ULL * 1000000000ULL);
			if (strcmp(oc->task, "charge") == 0) {
				ok += oc->ok;
				failed += oc->failed;
			} else {
				assert_string_equal(oc->task, "");
				whole_ok += oc->ok;
			}
		}
	}
	assert_int_equal(ok, 20);
	assert_int_equal(failed, 10);
	assert_int_equal(whole_ok, 5);
	pthread_mutex_unlock(&f.mu);

	/* no service anywhere: outcomes have nothing to count against */
	errq_options_t *o2 = errq_options_new();
	errq_options_set_collector(o2, f.addr);
	errq_client_t *c2 = errq_client_new(o2);
	assert_int_equal(errq_record_outcome(c2, "t", true), ERRQ_EINVAL);
	assert_int_equal(errq_record_outcome(NULL, "t", true), ERRQ_EINVAL);
	assert_int_equal(stats_of(c2).outcomes_dropped, 1);
	assert_int_equal(errq_client_close(c2, 0), 0);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
}

/* The table of tasks is bounded: a new task beyond it is refused and counted, known ones
 * keep counting; the counts recorded before close are sent by close. */
static void test_outcome_table_is_bounded(void **state)
{
	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, f.addr);
	errq_options_set_service(o, "bounded");
	errq_options_set_outcome_interval(o, 3600); /* only close cuts the window */
	errq_client_t *c = errq_client_new(o);
	char task[32];
	for (unsigned i = 0; i < ERRQ__OUTCOME_MAX_TASKS; i++) {
		errq_snprintf(task, sizeof(task), "task-%u", i);
		assert_int_equal(errq_record_outcome(c, task, true), ERRQ_OK);
	}
	assert_int_equal(errq_record_outcome(c, "one-too-many", false), ERRQ_EQUEUEFULL);
	assert_int_equal(errq_record_outcome(c, "task-0", false), ERRQ_OK);
	errq_stats_t st;
	errq_client_close_stats(c, GENEROUS_MS, &st);
	assert_int_equal(st.outcomes_recorded, ERRQ__OUTCOME_MAX_TASKS + 1);
	assert_int_equal(st.outcomes_dropped, 1);
	assert_int_equal(st.outcomes_acked, ERRQ__OUTCOME_MAX_TASKS + 1);
	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.outcome_records, ERRQ__OUTCOME_MAX_TASKS);
	pthread_mutex_unlock(&f.mu);
	fake_stop(&f);
}

/* A batch of outcomes that is resent (its first stream broke before the answer) carries the
 * same batch_id both times, so the collector can count it once. */
static void test_outcome_resend_keeps_batch_id(void **state)
{
	struct fake_collector f = {.fail_first_calls = 1};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, f.addr);
	errq_options_set_service(o, "resend");
	errq_options_set_outcome_interval(o, 1);
	errq_options_set_reconnect_backoff(o, 5, 50);
	errq_client_t *c = errq_client_new(o);
	for (int i = 0; i < 7; i++)
		assert_int_equal(errq_record_outcome(c, "job", i != 3), ERRQ_OK);
	errq_stats_t st;
	WAIT_STATS(c, st, st.outcomes_acked == 7);
	assert_true(st.resends >= 1);
	pthread_mutex_lock(&f.mu);
	assert_true(f.n_requests >= 2);
	assert_int_equal(f.requests[0]->n_outcomes, 1);
	assert_int_equal(f.requests[1]->n_outcomes, 1);
	assert_memory_equal(f.requests[0]->batch_id.data, f.requests[1]->batch_id.data, 16);
	assert_int_equal(f.requests[1]->outcomes[0]->ok, 6);
	assert_int_equal(f.requests[1]->outcomes[0]->failed, 1);
	pthread_mutex_unlock(&f.mu);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
}

/* The bearer token travels as "authorization" metadata on every stream. */
static void test_token_is_sent_as_metadata(void **state)
{
	struct fake_collector f = {.fail_first_calls = 1};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, f.addr);
	errq_options_set_service(o, "token");
	errq_options_set_reconnect_backoff(o, 5, 50);
	assert_int_equal(errq_options_set_token(o, "s3cr3t-token"), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	report_n(c, 0, 3);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	pthread_mutex_lock(&f.mu);
	assert_string_equal(f.authorization, "Bearer s3cr3t-token");
	assert_true(f.calls >= 2); /* the reconnect carried it too */
	assert_int_equal(f.calls_with_authorization, f.calls);
	pthread_mutex_unlock(&f.mu);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);

	/* without a token, no such metadata */
	struct fake_collector g = {0};
	assert_int_equal(fake_start(&g, 0), 0);
	c = client_for(g.addr, 10);
	report_n(c, 0, 1);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	pthread_mutex_lock(&g.mu);
	assert_int_equal(g.calls_with_authorization, 0);
	pthread_mutex_unlock(&g.mu);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&g);
}

/* A collector that accepts the stream, reads everything and never answers: the ack timeout
 * cancels the stream and the batches go again on a new one, where they are answered. */
static void test_ack_timeout_unwedges(void **state)
{
	struct fake_collector f = {.silent_first_calls = 1};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, f.addr);
	errq_options_set_service(o, "wedged");
	errq_options_set_max_batch_events(o, 4);
	errq_options_set_linger_ms(o, 1);
	errq_options_set_reconnect_backoff(o, 5, 50);
	assert_int_equal(errq_options_set_ack_timeout(o, 300), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	report_n(c, 0, 10);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.acked, 10);
	assert_int_equal(st.accepted + st.duplicates, 10);
	assert_true(st.ack_timeouts >= 1);
	assert_true(st.reconnects >= 1);
	assert_true(st.resends >= 1);
	assert_int_equal(st.circuit_state, ERRQ_CIRCUIT_CLOSED);
	assert_int_equal(ids_seen(&f), 10);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
}

/* No collector: after the threshold of failures the circuit opens (and the stats say so);
 * when a collector appears the half-open probe succeeds and everything is delivered. */
static void test_circuit_opens_and_recovers(void **state)
{
	struct fake_collector probe = {0};
	assert_int_equal(fake_start(&probe, 0), 0);
	int port = probe.port;
	char addr[64];
	memcpy(addr, probe.addr, sizeof(addr));
	fake_stop(&probe);

	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, addr);
	errq_options_set_service(o, "circuit");
	errq_options_set_linger_ms(o, 1);
	errq_options_set_max_batch_events(o, 3);
	errq_options_set_reconnect_backoff(o, 5, 200);
	errq_options_set_circuit_threshold(o, 3);
	errq_client_t *c = errq_client_new(o);
	report_n(c, 0, 10);
	errq_stats_t st;
	WAIT_STATS(c, st, st.circuit_opens >= 1);
	assert_true(st.stream_failures >= 3);
	assert_true(st.circuit_state == ERRQ_CIRCUIT_OPEN ||
		    st.circuit_state == ERRQ_CIRCUIT_HALF_OPEN);
	assert_true(st.consecutive_failures >= 3);
	assert_int_equal(st.pending, 10); /* no spool: kept in memory */

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	st = stats_of(c);
	assert_int_equal(st.acked, 10);
	assert_int_equal(st.circuit_state, ERRQ_CIRCUIT_CLOSED);
	assert_int_equal(st.consecutive_failures, 0);
	assert_int_equal(ids_seen(&f), 10);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return NULL;
	char *buf = calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, fp);
	fclose(fp);
	buf[n] = '\0';
	return buf;
}

/* TLS: a collector with a self-signed certificate for 127.0.0.1, the client trusting it as
 * its CA.  Needs the openssl command; skipped without it. */
static void test_tls_delivers(void **state)
{
	char dir[] = "/tmp/errq-tls-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cmd[1024], cert[128], key[128];
	errq_snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	errq_snprintf(key, sizeof(key), "%s/key.pem", dir);
	errq_snprintf(cmd, sizeof(cmd),
		      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		      "-keyout %s -out %s -days 2 -subj /CN=localhost "
		      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1",
		      key, cert);
	if (system(cmd) != 0) {
		errq_snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		(void)!system(cmd);
		skip();
	}
	char *cert_pem = slurp(cert), *key_pem = slurp(key);
	assert_non_null(cert_pem);
	assert_non_null(key_pem);
	struct fake_collector f = {.tls_cert_pem = cert_pem, .tls_key_pem = key_pem};
	assert_int_equal(fake_start(&f, 0), 0);

	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, f.addr);
	errq_options_set_service(o, "tls");
	errq_options_set_token(o, "over-tls");
	assert_int_equal(errq_options_set_tls(o, cert, NULL, NULL), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	report_n(c, 0, 5);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	assert_int_equal(stats_of(c).acked, 5);
	pthread_mutex_lock(&f.mu);
	assert_string_equal(f.authorization, "Bearer over-tls");
	pthread_mutex_unlock(&f.mu);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);

	/* a plaintext client gets nowhere with a TLS collector (and loses nothing it says it
	 * delivered) */
	errq_options_t *p = errq_options_new();
	errq_options_set_collector(p, f.addr);
	errq_options_set_service(p, "plain");
	errq_options_set_reconnect_backoff(p, 5, 50);
	c = errq_client_new(p);
	report_n(c, 0, 1);
	assert_int_equal(errq_client_flush(c, 300), ERRQ_ETIMEDOUT);
	assert_int_equal(stats_of(c).acked, 0);
	assert_int_equal(errq_client_close(c, 0), 1);
	fake_stop(&f);
	free(cert_pem);
	free(key_pem);
	errq_snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batches_are_acked),
	    cmocka_unit_test(test_rejections_are_counted),
	    cmocka_unit_test(test_broken_stream_resends),
	    cmocka_unit_test(test_collector_starts_late),
	    cmocka_unit_test(test_many_threads),
	    cmocka_unit_test(test_close_flushes),
	    cmocka_unit_test(test_outcomes_are_sent),
	    cmocka_unit_test(test_outcome_table_is_bounded),
	    cmocka_unit_test(test_outcome_resend_keeps_batch_id),
	    cmocka_unit_test(test_token_is_sent_as_metadata),
	    cmocka_unit_test(test_ack_timeout_unwedges),
	    cmocka_unit_test(test_circuit_opens_and_recovers),
	    cmocka_unit_test(test_tls_delivers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
