/* Integration: webhook delivery (server/notify.c) against a real HTTP receiver on loopback:
 * retries until a 2xx, Retry-After, max_attempts then dead, per-alert order, a receiver that
 * is down and comes back (the breaker waits without consuming attempts), signatures, the log
 * notifier.  Timings are shrunk through notify_opts; waits are deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"
#include "http_receiver.h"
#include "notify.h"

struct reports {
	pthread_mutex_t mu;
	struct notify_report r[512];
	int n;
};
static struct reports R = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_report(void *ctx, const struct notify_report *r)
{
	pthread_mutex_lock(&R.mu);
	if (R.n < 512)
		R.r[R.n++] = *r;
	pthread_mutex_unlock(&R.mu);
}

/* The last report of delivery id once it is final (delivered or dead); waits by deadline. */
static struct notify_report final_of(uint64_t id)
{
	uint64_t deadline = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	for (;;) {
		pthread_mutex_lock(&R.mu);
		for (int i = R.n - 1; i >= 0; i--)
			if (R.r[i].id == id && R.r[i].result != NOTIFY_RETRY) {
				struct notify_report r = R.r[i];
				pthread_mutex_unlock(&R.mu);
				return r;
			}
		pthread_mutex_unlock(&R.mu);
		if (errq_mono_ns() > deadline)
			fail_msg("delivery %llu never finished", (unsigned long long)id);
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
}

/* How many reports delivery id has had (one after every attempt or probe). */
static int reports_of(uint64_t id)
{
	int n = 0;
	pthread_mutex_lock(&R.mu);
	for (int i = 0; i < R.n; i++)
		n += R.r[i].id == id;
	pthread_mutex_unlock(&R.mu);
	return n;
}

static struct notifier *N;
static const struct notify_opts FAST = {.retry_base_ms = 40, .retry_max_ms = 400, .breaker_min_ms = 100,
					.breaker_max_ms = 400};

static void dest(struct notify_dest *d, const char *name, int port, uint32_t max_attempts, const char *secret)
{
	memset(d, 0, sizeof(*d));
	errq_snprintf(d->name, sizeof(d->name), "%s", name);
	d->type = NOTIFY_WEBHOOK;
	errq_snprintf(d->url, sizeof(d->url), "http://127.0.0.1:%d/alerts", port);
	d->timeout_ms = 2000;
	d->max_attempts = max_attempts;
	if (secret)
		errq_snprintf(d->secret, sizeof(d->secret), "%s", secret);
	d->n_headers = 1;
	errq_snprintf(d->headers[0], sizeof(d->headers[0]), "Authorization: Bearer t0k3n");
}

static void submit(uint64_t id, const char *to, const char *key, const char *body)
{
	struct notify_delivery *d = notify_delivery_new(body, strlen(body));
	d->id = id;
	errq_snprintf(d->dest, sizeof(d->dest), "%s", to);
	errq_snprintf(d->order_key, sizeof(d->order_key), "%s", key);
	errq_snprintf(d->idempotency_key, sizeof(d->idempotency_key), "%s:%llu", key, (unsigned long long)id);
	assert_int_equal(notify_submit(N, d), 0);
}

static void test_503_twice_then_200_delivered_once(void **state)
{
	struct http_receiver rv;
	assert_int_equal(receiver_start(&rv, 0), 0);
	receiver_script(&rv, 503, 0);
	receiver_script(&rv, 503, 0);
	struct notify_dest d;
	dest(&d, "ops", rv.port, 8, "s3cret");
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	submit(1, "ops", "alert-1", "{\"status\":\"firing\"}");
	struct notify_report r = final_of(1);
	assert_int_equal(r.result, NOTIFY_DELIVERED);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(r.http_status, 200);
	assert_int_equal(receiver_count(&rv), 3);
	/* one delivery: the same idempotency key on every attempt, so the receiver can drop copies */
	char a[128], b[128], sig[200], auth[64];
	assert_non_null(receiver_header(&rv, 0, "Idempotency-Key", a, sizeof(a)));
	assert_non_null(receiver_header(&rv, 2, "Idempotency-Key", b, sizeof(b)));
	assert_string_equal(a, b);
	assert_non_null(receiver_header(&rv, 2, "Authorization", auth, sizeof(auth)));
	assert_string_equal(auth, "Bearer t0k3n");
	/* the signature checks out over "<t>.<body>" with the shared secret */
	assert_non_null(receiver_header(&rv, 2, "X-Errq-Signature", sig, sizeof(sig)));
	unsigned long long t = strtoull(sig + 2, NULL, 10);
	char want[160];
	notify_sign("s3cret", t, rv.req[2].body, strlen(rv.req[2].body), want);
	assert_string_equal(sig, want);
	receiver_stop(&rv);
}

static void test_retry_after_and_dead_letter(void **state)
{
	struct http_receiver rv;
	assert_int_equal(receiver_start(&rv, 0), 0);
	receiver_script(&rv, 429, 1); /* Retry-After: 1 s, much longer than the 40 ms backoff */
	for (int i = 0; i < 10; i++)
		receiver_script(&rv, 400, 0); /* then refusals: attempts run out */
	struct notify_dest d;
	dest(&d, "ops", rv.port, 3, NULL);
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	submit(2, "ops", "alert-2", "{}");
	struct notify_report r = final_of(2);
	assert_int_equal(r.result, NOTIFY_DEAD);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(r.http_status, 400);
	assert_int_equal(receiver_count(&rv), 3);
	uint64_t gap = rv.req[1].at_ns - rv.req[0].at_ns;
	assert_true(gap >= 900 * ERRQ_NS_PER_MS); /* honoured Retry-After */
	receiver_stop(&rv);
}

static void test_order_per_alert(void **state)
{
	struct http_receiver rv;
	assert_int_equal(receiver_start(&rv, 0), 0);
	receiver_script(&rv, 500, 0); /* the firing fails first: the resolved must wait for it */
	struct notify_dest d;
	dest(&d, "ops", rv.port, 8, NULL);
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	submit(10, "ops", "alert-10", "{\"status\":\"firing\"}");
	submit(11, "ops", "alert-10", "{\"status\":\"resolved\"}");
	submit(12, "ops", "alert-12", "{\"status\":\"firing\",\"other\":true}");
	assert_int_equal(final_of(11).result, NOTIFY_DELIVERED);
	assert_int_equal(final_of(10).result, NOTIFY_DELIVERED);
	assert_int_equal(final_of(12).result, NOTIFY_DELIVERED);
	int firing = -1, resolved = -1;
	for (int i = 0; i < receiver_count(&rv); i++) {
		if (rv.req[i].status != 200)
			continue;
		if (strstr(rv.req[i].body, "\"status\":\"firing\"}"))
			firing = i;
		if (strstr(rv.req[i].body, "resolved"))
			resolved = i;
	}
	assert_true(firing >= 0 && resolved > firing);
	receiver_stop(&rv);
}

static void test_receiver_down_then_back(void **state)
{
	/* find a free port, then leave nothing listening on it */
	struct http_receiver rv;
	assert_int_equal(receiver_start(&rv, 0), 0);
	int port = rv.port;
	receiver_stop(&rv);
	struct notify_dest d;
	dest(&d, "ops", port, 8, NULL);
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	submit(20, "ops", "alert-20", "{\"status\":\"firing\"}");
	/* down until the breaker has opened and three of its probes were refused: 8 attempts
	 * would be gone by then (a report follows every attempt and every probe) — unless the
	 * breaker holds them back while the receiver is down */
	WAIT_FOR(reports_of(20) >= NOTIFY_BREAKER_FAILURES + 3);
	assert_int_equal(receiver_start(&rv, port), 0);
	struct notify_report r = final_of(20);
	assert_int_equal(r.result, NOTIFY_DELIVERED);
	/* the attempts before the breaker opened, and the one that went through: probes into the
	 * outage used none */
	assert_int_equal(r.attempts, NOTIFY_BREAKER_FAILURES + 1);
	assert_int_equal(receiver_count(&rv), 1);
	print_message("delivered after the receiver came back, on attempt %u\n", r.attempts);
	receiver_stop(&rv);
}

static void test_unknown_notifier_and_log(void **state)
{
	struct notify_dest d;
	memset(&d, 0, sizeof(d));
	errq_snprintf(d.name, sizeof(d.name), "logs");
	d.type = NOTIFY_LOG;
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	submit(30, "logs", "alert-30", "{\"status\":\"firing\"}");
	assert_int_equal(final_of(30).result, NOTIFY_DELIVERED);
	submit(31, "nope", "alert-31", "{}");
	struct notify_report r = final_of(31);
	assert_int_equal(r.result, NOTIFY_DEAD);
	assert_string_equal(r.error, "unknown notifier");
}

int main(void)
{
	char err[256];
	if (notify_start(&N, on_report, NULL, &FAST, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_503_twice_then_200_delivered_once),
	    cmocka_unit_test(test_retry_after_and_dead_letter),
	    cmocka_unit_test(test_order_per_alert),
	    cmocka_unit_test(test_receiver_down_then_back),
	    cmocka_unit_test(test_unknown_notifier_and_log),
	};
	int rc = cmocka_run_group_tests_name("integration_notify", tests, NULL, NULL);
	notify_stop(N);
	return rc;
}
