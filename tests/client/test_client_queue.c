/* Unit: liberrq's queue and lifecycle without a collector: the bounds and their drop
 * counters, invalid reports, reports while closing, flush timeouts, and a close that has to
 * give up on everything (run under ASan/valgrind: it must free all of it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "client_int.h"
#include "errq_str.h"
#include "errq_time.h"
#include "client_support.h"
#include "errq_banned.h"

#define NOWHERE "127.0.0.1:1" /* connection refused at once: a collector that is down */
#define GENEROUS_MS 20000     /* deadlines far beyond what any machine needs */

static errq_options_t *nowhere_options(void)
{
	errq_options_t *o = errq_options_new();
	assert_non_null(o);
	assert_int_equal(errq_options_set_collector(o, NOWHERE), ERRQ_OK);
	assert_int_equal(errq_options_set_service(o, "queue-test"), ERRQ_OK);
	return o;
}


static uint64_t elapsed_ms(uint64_t t0)
{
	return (errq_mono_ns() - t0) / ERRQ_NS_PER_MS;
}

static void test_overflow_drops_newest_and_counts(void **state)
{
	errq_options_t *o = nowhere_options();
	assert_int_equal(errq_options_set_queue_capacity(o, 5), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	assert_non_null(c);
	for (int i = 0; i < 8; i++) {
		int rc = errq_report_failure(c, "OverflowError", "FULL", "event %d", i);
		assert_int_equal(rc, i < 5 ? ERRQ_OK : ERRQ_EQUEUEFULL);
	}
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.queued, 5);
	assert_int_equal(st.dropped_queue_full, 3);
	assert_int_equal(st.pending, 5);
	assert_true(st.pending_bytes > 0);
	assert_int_equal(st.acked, 0);
	/* the capacity counts events in flight too: with nothing acknowledged it stays full */
	assert_int_equal(errq_report_failure(c, "OverflowError", NULL, "late"), ERRQ_EQUEUEFULL);
	assert_int_equal(stats_of(c).dropped_queue_full, 4);
	assert_int_equal(errq_client_close(c, 0), 5); /* five accepted, none delivered */
}

static void test_byte_budget(void **state)
{
	errq_options_t *o = nowhere_options();
	assert_int_equal(errq_options_set_queue_bytes(o, ERRQ__QUEUE_BYTES_MIN), ERRQ_OK);
	assert_int_equal(errq_options_set_queue_capacity(o, 100000), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	char *msg = malloc(ERRQ__MAX_MESSAGE_LEN + 1);
	memset(msg, 'm', ERRQ__MAX_MESSAGE_LEN);
	msg[ERRQ__MAX_MESSAGE_LEN] = '\0';

	size_t ok = 0, cost = 0;
	int rc = ERRQ_OK;
	while (rc == ERRQ_OK && ok < 1000) {
		errq_event_t *ev = errq_event_new(NULL, "BigError", msg);
		errq_event_set_time_ns(ev, 1795629791482000000ULL); /* measured as reported */
		errq__event_measure(c, ev);
		cost = ev->cost;
		rc = errq_report(c, ev);
		if (rc == ERRQ_OK)
			ok++;
	}
	assert_int_equal(rc, ERRQ_EQUEUEFULL);
	/* the budget, not the capacity, stopped it: as many as fit, and not one more */
	assert_true(ok >= 2);
	assert_true(ok * cost <= ERRQ__QUEUE_BYTES_MIN);
	assert_true((ok + 1) * cost > ERRQ__QUEUE_BYTES_MIN);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.queued, ok);
	assert_int_equal(st.dropped_queue_full, 1);
	assert_int_equal(st.pending, ok);
	assert_true(st.pending_bytes <= ERRQ__QUEUE_BYTES_MIN);
	assert_int_equal(st.pending_bytes, ok * cost);
	free(msg);
	assert_int_equal(errq_client_close(c, 0), ok);
}

static void test_too_big_and_invalid(void **state)
{
	errq_options_t *o = nowhere_options();
	assert_int_equal(errq_options_set_queue_bytes(o, ERRQ__QUEUE_BYTES_MIN), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	char key[16];
	char *val = malloc(ERRQ__MAX_DETAIL_VALUE_LEN + 1);
	memset(val, 'v', ERRQ__MAX_DETAIL_VALUE_LEN);
	val[ERRQ__MAX_DETAIL_VALUE_LEN] = '\0';
	errq_event_t *ev = errq_event_new(NULL, "HugeError", "too many details");
	for (int i = 0; i < ERRQ__MAX_DETAILS; i++) {
		errq_snprintf(key, sizeof(key), "key%d", i);
		assert_int_equal(errq_event_add_detail(ev, key, val), ERRQ_OK);
	}
	free(val);
	/* 64 KiB of details: more than the whole 64 KiB budget */
	assert_int_equal(errq_report(c, ev), ERRQ_ETOOBIG); /* ev is freed: ASan would tell */
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.dropped_too_big, 1);
	assert_int_equal(st.queued, 0);

	assert_int_equal(errq_report(c, NULL), ERRQ_EINVAL);
	assert_int_equal(errq_report(NULL, errq_event_new(NULL, "E", "m")), ERRQ_EINVAL);
	assert_int_equal(errq_report_failure(c, NULL, NULL, "x"), ERRQ_EINVAL);
	assert_int_equal(errq_report_failure(NULL, "E", NULL, "x"), ERRQ_EINVAL);
	assert_int_equal(errq_client_stats(c, NULL), ERRQ_EINVAL);
	assert_int_equal(errq_client_stats(NULL, &st), ERRQ_EINVAL);
	assert_int_equal(errq_client_flush(NULL, 0), ERRQ_EINVAL);
	st = stats_of(c);
	assert_int_equal(st.dropped_invalid, 1);

	/* truncated fields are counted, the event still goes */
	char *huge = malloc(3 * ERRQ__MAX_MESSAGE_LEN);
	memset(huge, 'h', 3 * ERRQ__MAX_MESSAGE_LEN - 1);
	huge[3 * ERRQ__MAX_MESSAGE_LEN - 1] = '\0';
	assert_int_equal(errq_report_failure(c, "LongError", "LONG", "%s!", huge), ERRQ_OK);
	free(huge);
	st = stats_of(c);
	assert_int_equal(st.truncated, 1);
	assert_int_equal(st.queued, 1);
	assert_int_equal(errq_client_close(c, 0), 1);
}

static void test_no_service_anywhere(void **state)
{
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, NOWHERE); /* and no default service */
	errq_client_t *c = errq_client_new(o);
	assert_int_equal(errq_report(c, errq_event_new(NULL, "E", "m")), ERRQ_EINVAL);
	assert_int_equal(errq_report(c, errq_event_new("own", "E", "m")), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.dropped_invalid, 1);
	assert_int_equal(st.queued, 1);
	assert_int_equal(errq_client_close(c, 0), 1);
}

static void test_report_after_close(void **state)
{
	errq_client_t *c = errq_client_new(nowhere_options());
	assert_int_equal(errq_report_failure(c, "E", NULL, "before"), ERRQ_OK);
	assert_int_equal(errq_report_failure(c, "E", NULL, "before"), ERRQ_OK);
	errq__client_begin_close(c); /* the first step of errq_client_close() */
	assert_int_equal(errq_report_failure(c, "E", NULL, "after"), ERRQ_ECLOSED);
	assert_int_equal(errq_report(c, errq_event_new(NULL, "E", "after")), ERRQ_ECLOSED);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.dropped_closed, 2);
	assert_int_equal(st.queued, 2);
	assert_int_equal(errq_client_close(c, 0), 2);
}

static void test_flush_times_out_without_collector(void **state)
{
	errq_options_t *o = nowhere_options();
	errq_options_set_reconnect_backoff(o, 1, 50);
	errq_client_t *c = errq_client_new(o);
	uint64_t t0 = errq_mono_ns();
	assert_int_equal(errq_client_flush(c, 1000), ERRQ_OK); /* nothing reported: nothing to wait for */
	assert_true(elapsed_ms(t0) < GENEROUS_MS);

	assert_int_equal(errq_report_failure(c, "E", NULL, "undeliverable"), ERRQ_OK);
	assert_int_equal(errq_client_flush(c, 0), ERRQ_ETIMEDOUT);
	t0 = errq_mono_ns();
	assert_int_equal(errq_client_flush(c, 300), ERRQ_ETIMEDOUT);
	uint64_t ms = elapsed_ms(t0);
	assert_true(ms >= 290);         /* it did wait */
	assert_true(ms < GENEROUS_MS);  /* and did not hang */
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.pending, 1); /* still queued after the timeout */
	assert_int_equal(st.acked, 0);
	assert_int_equal(errq_client_close(c, 0), 1);
}

static void test_close_with_collector_down(void **state)
{
	errq_options_t *o = nowhere_options();
	errq_options_set_reconnect_backoff(o, 1, 20);
	errq_options_set_max_batch_events(o, 7);
	errq_options_set_linger_ms(o, 1);
	errq_client_t *c = errq_client_new(o);
	for (int i = 0; i < 50; i++) {
		errq_event_t *ev = errq_event_new(NULL, "DownError", "collector is down");
		errq_event_add_detail(ev, "i", "x");
		errq_event_add_frame(ev, "f", "f.c", 1, NULL, true);
		assert_int_equal(errq_report(c, ev), ERRQ_OK);
	}
	/* the background thread keeps trying, with backoff, and keeps every event */
	uint64_t t0 = errq_mono_ns();
	errq_stats_t st = stats_of(c);
	while (st.stream_failures < 3 && elapsed_ms(t0) < GENEROUS_MS) {
		usleep(10000);
		st = stats_of(c);
	}
	assert_true(st.stream_failures >= 3);
	assert_true(st.reconnects >= 2);
	assert_int_equal(st.pending, 50);
	assert_int_equal(st.connected, 0);
	assert_int_equal(st.acked, 0);

	t0 = errq_mono_ns();
	assert_int_equal(errq_client_close(c, 200), 50); /* batched or not, all given up */
	assert_true(elapsed_ms(t0) >= 190);
	assert_true(elapsed_ms(t0) < GENEROUS_MS);
}

static void test_null_and_defaults(void **state)
{
	assert_int_equal(errq_client_close(NULL, 1000), 0);
	errq_options_free(NULL);
	errq_event_free(NULL);
	errq_client_t *c = errq_client_new(NULL); /* all defaults: 127.0.0.1:4770, lazy connect */
	assert_non_null(c);
	assert_non_null(c->cfg.collector);
	assert_string_equal(c->cfg.collector, ERRQ__DEFAULT_COLLECTOR);
	assert_int_equal(errq_client_close(c, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_overflow_drops_newest_and_counts),
	    cmocka_unit_test(test_byte_budget),
	    cmocka_unit_test(test_too_big_and_invalid),
	    cmocka_unit_test(test_no_service_anywhere),
	    cmocka_unit_test(test_report_after_close),
	    cmocka_unit_test(test_flush_times_out_without_collector),
	    cmocka_unit_test(test_close_with_collector_down),
	    cmocka_unit_test(test_null_and_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
