/* Unit: liberrq against an in-process fake collector (fake_collector.c): batching and acks,
 * what goes on the wire, rejections, a stream that breaks before its ack (reconnect and
 * resend, counted as duplicates), a collector that starts late, and reports from several
 * threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "client_int.h"
#include "errq_time.h"
#include "fake_collector.h"
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

static errq_stats_t stats_of(errq_client_t *c)
{
	errq_stats_t st;
	assert_int_equal(errq_client_stats(c, &st), ERRQ_OK);
	return st;
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
	Errq__V1__TaskFailure *t2 = f.requests[0]->failures[1];
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
	enum { THREADS = 4, EACH = 250 };
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batches_are_acked),
	    cmocka_unit_test(test_rejections_are_counted),
	    cmocka_unit_test(test_broken_stream_resends),
	    cmocka_unit_test(test_collector_starts_late),
	    cmocka_unit_test(test_many_threads),
	    cmocka_unit_test(test_close_flushes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
