/* Unit: health.c (liveness and readiness on an injected clock) and metrics.c (histograms and
 * the Prometheus text format). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "errq_str.h"
#include "errq_time.h"
#include "health.h"
#include "ingest.h"
#include "metrics.h"
#include "validate.h"

static uint64_t fixed_turn(void *ctx)
{
	return *(const uint64_t *)ctx;
}

static void test_live_until_a_thread_stops_turning(void **state)
{
	struct health *h = health_new();
	uint64_t writer = 100 * ERRQ_NS_PER_SEC, cq = 0 /* not started yet */;
	char why[HEALTH_REASON_MAX];
	assert_int_equal(health_add_thread(h, "ingest writer", fixed_turn, &writer), 0);
	assert_int_equal(health_add_thread(h, "completion queue 0", fixed_turn, &cq), 0);
	assert_true(health_live(h, writer + HEALTH_STALL_NS, why, sizeof(why))); /* exactly at the limit */
	assert_false(health_live(h, writer + HEALTH_STALL_NS + 1, why, sizeof(why)));
	assert_string_equal(why, "thread 'ingest writer' has not turned for 30s");
	writer += HEALTH_STALL_NS; /* it turned again */
	assert_true(health_live(h, writer + 1, why, sizeof(why)));
	cq = writer - HEALTH_STALL_NS - ERRQ_NS_PER_SEC;
	assert_false(health_live(h, writer, why, sizeof(why)));
	assert_non_null(strstr(why, "completion queue 0"));
	health_free(h);
}

static void test_thread_table_is_bounded(void **state)
{
	struct health *h = health_new();
	uint64_t t = 1;
	for (int i = 0; i < HEALTH_MAX_THREADS; i++)
		assert_int_equal(health_add_thread(h, "t", fixed_turn, &t), 0);
	assert_int_equal(health_add_thread(h, "one too many", fixed_turn, &t), -1);
	health_free(h);
}

/* A writer over no store (storage: none) never fails: readiness is starting / ready /
 * shutting down; a saturated queue past the threshold makes it unready. */
static void test_ready_follows_start_saturation_and_drain(void **state)
{
	struct health *h = health_new();
	char why[HEALTH_REASON_MAX];
	struct ingest *ig = NULL;
	struct ingest_opts io = {.max_batches = 1, .max_bytes = 1 << 20};
	assert_int_equal(ingest_start(&ig, &io), 0);
	health_set_ingest(h, ig, 5 * ERRQ_NS_PER_SEC);
	assert_false(health_ready(h, errq_mono_ns(), why, sizeof(why)));
	assert_string_equal(why, "starting");
	health_set_started(h);
	assert_true(health_ready(h, errq_mono_ns(), why, sizeof(why)));
	assert_string_equal(why, "ok");

	struct ingest_health ih;
	ingest_get_health(ig, &ih);
	assert_int_equal(ih.failing_since, 0);
	assert_int_equal(ih.saturated_since, 0);

	health_set_draining(h);
	assert_false(health_ready(h, errq_mono_ns(), why, sizeof(why)));
	assert_string_equal(why, "shutting down");
	ingest_free(ig);
	health_free(h);
}

/* A job that holds the writer until released, so the queue fills behind it. */
struct blocker {
	struct ingest_job job;
	atomic_int running, release;
};

static void block_run(struct ingest_job *j, struct store *s)
{
	struct blocker *b = (struct blocker *)(void *)j;
	b->running = 1;
	while (!b->release)
		usleep(1000);
}

static atomic_int batches_done, waiter_woken;
static void b_done(struct ingest_batch *b, bool committed)
{
	batches_done++;
	free(b);
}
static void b_resumed(struct ingest_batch *b)
{
}
static const struct ingest_batch_ops bops = {.done = b_done, .resumed = b_resumed};
static void w_wake(struct ingest_waiter *w, bool abandon)
{
	waiter_woken++;
}

static void spin_until(atomic_int *v, int want)
{
	for (uint64_t end = errq_mono_ns() + 30 * ERRQ_NS_PER_SEC; *v < want && errq_mono_ns() < end;)
		usleep(1000);
	assert_true(*v >= want);
}

/* Streams waiting for room make errqd unready only after readiness_queue_full_after without
 * a break; the first commit that lets them in ends it. */
static void test_saturated_queue_makes_unready_after_threshold(void **state)
{
	struct health *h = health_new();
	char why[HEALTH_REASON_MAX];
	struct ingest *ig = NULL;
	struct ingest_opts io = {.max_batches = 1, .max_bytes = 1 << 20};
	assert_int_equal(ingest_start(&ig, &io), 0);
	health_set_ingest(h, ig, 5 * ERRQ_NS_PER_SEC);
	health_set_started(h);

	struct blocker bl = {.job.run = block_run};
	assert_int_equal(ingest_run_job(ig, &bl.job), 0);
	spin_until(&bl.running, 1);
	struct ingest_batch *b = calloc(1, sizeof(*b));
	b->ops = &bops;
	assert_int_equal(ingest_submit(ig, b), INGEST_QUEUED); /* the one batch of room */
	struct ingest_waiter w = {.wake = w_wake};
	assert_false(ingest_room_or_wait(ig, &w)); /* a stream has to wait */

	struct ingest_health ih;
	ingest_get_health(ig, &ih);
	assert_true(ih.saturated_since > 0);
	assert_true(health_ready(h, ih.saturated_since + 5 * ERRQ_NS_PER_SEC, why, sizeof(why))); /* at the threshold */
	assert_false(health_ready(h, ih.saturated_since + 6 * ERRQ_NS_PER_SEC, why, sizeof(why)));
	assert_string_equal(why, "ingest queue full for 6s (streams wait for room)");

	bl.release = 1; /* the writer commits the batch and lets the waiter in */
	spin_until(&waiter_woken, 1);
	spin_until(&batches_done, 1);
	ingest_waiter_done(ig, &w); /* the woken stream submits nothing */
	ingest_get_health(ig, &ih);
	assert_int_equal(ih.saturated_since, 0);
	assert_true(health_ready(h, errq_mono_ns() + 60 * ERRQ_NS_PER_SEC, why, sizeof(why)));

	/* 0 = never unready for a full queue */
	health_set_ingest(h, ig, 0);
	assert_true(health_ready(h, errq_mono_ns(), why, sizeof(why)));
	ingest_free(ig);
	health_free(h);
}

static void test_histogram_buckets(void **state)
{
	static const double bounds[] = {0.1, 1, 10};
	struct metrics_hist hh;
	metrics_hist_init(&hh, bounds, 3);
	metrics_hist_observe(&hh, 0.1); /* le is inclusive */
	metrics_hist_observe(&hh, 0.5);
	metrics_hist_observe(&hh, 10);
	metrics_hist_observe(&hh, 11);
	struct errq_buf b;
	errq_buf_init(&b, 1 << 16);
	prom_hist(&b, "x_seconds", "", &hh);
	assert_string_equal(b.p, "x_seconds_bucket{le=\"0.1\"} 1\n"
				 "x_seconds_bucket{le=\"1\"} 2\n"
				 "x_seconds_bucket{le=\"10\"} 3\n"
				 "x_seconds_bucket{le=\"+Inf\"} 4\n"
				 "x_seconds_sum 21.6\n"
				 "x_seconds_count 4\n");
	errq_buf_reset(&b);
	prom_hist(&b, "y", "a=\"b\"", &hh);
	assert_non_null(strstr(b.p, "y_bucket{a=\"b\",le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(b.p, "y_count{a=\"b\"} 4\n"));
	errq_buf_free(&b);
}

static void test_text_format_escapes_and_bounds(void **state)
{
	struct errq_buf b;
	errq_buf_init(&b, 1 << 16);
	prom_family(&b, "errq_x_total", "counter", "Things.");
	errq_buf_addstr(&b, "errq_x_total{notifier=\"");
	prom_label_value(&b, "a\"b\\c\nd");
	errq_buf_addstr(&b, "\"} 1\n");
	assert_string_equal(b.p, "# HELP errq_x_total Things.\n# TYPE errq_x_total counter\n"
				 "errq_x_total{notifier=\"a\\\"b\\\\c\\nd\"} 1\n");
	assert_false(b.failed);
	errq_buf_free(&b);

	/* a buffer that overflows remembers it, so a scrape can fail whole, never truncated */
	char mem[16];
	errq_buf_init_fixed(&b, mem, sizeof(mem));
	prom_sample_u64(&b, "errq_a_rather_long_name", "", 1);
	assert_true(b.failed);
	errq_buf_reset(&b);
	assert_false(b.failed);
}

static void test_reject_codes(void **state)
{
	assert_int_equal(validate_reject_index("missing_service: service is empty"), 0);
	assert_int_equal(validate_reject_index("invalid_utf8: field 'message' is not valid UTF-8 at byte 3"), 3);
	assert_int_equal(validate_reject_index("missing_service_x: no"), -1);
	assert_int_equal(validate_reject_index("quota"), -1);
	assert_string_equal(validate_reject_codes[2], "bad_event_id");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_live_until_a_thread_stops_turning),
	    cmocka_unit_test(test_thread_table_is_bounded),
	    cmocka_unit_test(test_ready_follows_start_saturation_and_drain),
	    cmocka_unit_test(test_saturated_queue_makes_unready_after_threshold),
	    cmocka_unit_test(test_histogram_buckets),
	    cmocka_unit_test(test_text_format_escapes_and_bounds),
	    cmocka_unit_test(test_reject_codes),
	};
	return cmocka_run_group_tests_name("unit_health", tests, NULL, NULL);
}
