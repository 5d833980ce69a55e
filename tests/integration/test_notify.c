/* Integration: webhook delivery (server/notify.c) against a real HTTP receiver on loopback:
 * retries until a 2xx, Retry-After, max_attempts then dead, per-alert order, a receiver that
 * is down and comes back (the breaker waits without consuming attempts), signatures (checked
 * with OpenSSL's HMAC and a fixed vector), User-Agent, 5xx/408 never dead-lettered, the body
 * and pending bounds, the log notifier.  Timings are shrunk through notify_opts; waits are deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

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

/* ---- checked without the code under test: signature, User-Agent, what never dead-letters ---- */

/* HMAC-SHA256 of "<t>.<body>" with OpenSSL's one-shot HMAC(), as a receiver would check it. */
static void hmac_hex(const char *secret, const char *signed_part, size_t n, char out[65])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signed_part, n, mac,
			     &len));
	assert_int_equal(len, 32);
	for (unsigned i = 0; i < len; i++)
		errq_snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static void test_signature_verified_independently(void **state)
{
	/* a fixed vector (Python: hmac.new(b"s3cret", b'1700000000.{"status":"firing"}', sha256)) */
	char sig[160];
	notify_sign("s3cret", 1700000000, "{\"status\":\"firing\"}", 19, sig);
	assert_string_equal(sig, "t=1700000000,v1=f999630ee8daeb8c3b8187f658991aff85e7acf4fd52490cf409ab5b95127425");

	/* what went over the wire: t=<unix seconds of the attempt>,v1=<hex HMAC of "t.body"> */
	struct http_receiver rv;
	assert_int_equal(receiver_start(&rv, 0), 0);
	struct notify_dest d;
	dest(&d, "signed", rv.port, 3, "an0ther s3cret");
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	uint64_t before = errq_now_ns() / ERRQ_NS_PER_SEC;
	const char *body = "{\"version\":1,\"status\":\"firing\",\"sample\":{\"message\":\"caf\\u00e9 \\\"x\\\"\"}}";
	submit(40, "signed", "alert-40", body);
	assert_int_equal(final_of(40).result, NOTIFY_DELIVERED);
	uint64_t after = errq_now_ns() / ERRQ_NS_PER_SEC;
	assert_string_equal(rv.req[0].body, body);
	assert_non_null(receiver_header(&rv, 0, "X-Errq-Signature", sig, sizeof(sig)));
	assert_int_equal(strncmp(sig, "t=", 2), 0);
	char *comma = strchr(sig, ',');
	assert_non_null(comma);
	unsigned long long t = strtoull(sig + 2, NULL, 10);
	assert_true(t >= before && t <= after);
	assert_int_equal(strncmp(comma, ",v1=", 4), 0);
	char signed_part[512], want[65];
	int n = errq_snprintf(signed_part, sizeof(signed_part), "%llu.%s", t, body);
	hmac_hex("an0ther s3cret", signed_part, (size_t)n, want);
	assert_string_equal(comma + 4, want);
	/* and a different secret does not verify */
	hmac_hex("s3cret", signed_part, (size_t)n, want);
	assert_string_not_equal(comma + 4, want);
	receiver_stop(&rv);
}

static void test_headers_user_agent_and_unsigned(void **state)
{
	struct http_receiver rv;
	assert_int_equal(receiver_start(&rv, 0), 0);
	struct notify_dest d;
	dest(&d, "plain", rv.port, 3, NULL);
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	submit(41, "plain", "alert-41", "{}");
	assert_int_equal(final_of(41).result, NOTIFY_DELIVERED);
	char v[256];
	assert_non_null(receiver_header(&rv, 0, "User-Agent", v, sizeof(v)));
	assert_string_equal(v, "errqd/" ERRQ_VERSION_STRING);
	assert_non_null(receiver_header(&rv, 0, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
	assert_non_null(receiver_header(&rv, 0, "Idempotency-Key", v, sizeof(v)));
	assert_string_equal(v, "alert-41:41");
	assert_null(receiver_header(&rv, 0, "X-Errq-Signature", v, sizeof(v))); /* no secret: unsigned */
	assert_int_equal(strncmp(rv.req[0].headers, "POST /alerts HTTP/1.1\r\n", 23), 0);
	receiver_stop(&rv);
}

/* 5xx, 408 and 429 say "not now": however many, with max_attempts 2 the delivery waits for the
 * breaker's probes and is delivered when the receiver takes it; a 404 dead-letters. */
static void test_5xx_and_408_never_dead_letter(void **state)
{
	struct http_receiver rv;
	assert_int_equal(receiver_start(&rv, 0), 0);
	const int down[] = {500, 502, 503, 408, 429, 504, 408};
	for (size_t i = 0; i < sizeof(down) / sizeof(down[0]); i++)
		receiver_script(&rv, down[i], 0);
	struct notify_dest d;
	dest(&d, "flaky", rv.port, 2, NULL);
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	submit(42, "flaky", "alert-42", "{\"status\":\"firing\"}");
	struct notify_report r = final_of(42);
	assert_int_equal(r.result, NOTIFY_DELIVERED);
	assert_int_equal(r.http_status, 200);
	assert_int_equal(receiver_count(&rv), 8);
	for (int i = 0; i < 7; i++)
		assert_int_equal(rv.req[i].status, down[i]);
	pthread_mutex_lock(&R.mu);
	for (int i = 0; i < R.n; i++)
		assert_false(R.r[i].id == 42 && R.r[i].result == NOTIFY_DEAD);
	pthread_mutex_unlock(&R.mu);
	receiver_stop(&rv);

	/* the same budget with a refusal that is not "not now": dead after two attempts */
	assert_int_equal(receiver_start(&rv, 0), 0);
	receiver_script(&rv, 404, 0);
	receiver_script(&rv, 404, 0);
	dest(&d, "flaky", rv.port, 2, NULL);
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	submit(43, "flaky", "alert-43", "{}");
	r = final_of(43);
	assert_int_equal(r.result, NOTIFY_DEAD);
	assert_int_equal(r.attempts, 2);
	assert_int_equal(r.http_status, 404);
	receiver_stop(&rv);
}

/* The documented bounds (docs/alerts.md "Bounds"), not the code's constants. */
#define DOC_BODY_MAX (64 * 1024)  /* "Bodies are at most 64 KiB" */
#define DOC_MAX_PENDING 4096      /* "The notifier holds at most 4 096 deliveries" */

/* A body of exactly the limit goes out whole; one byte more is refused. */
static void test_body_limit(void **state)
{
	assert_null(notify_delivery_new("x", DOC_BODY_MAX + 1));
	char *big = malloc(DOC_BODY_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', DOC_BODY_MAX);
	big[0] = '"';
	big[DOC_BODY_MAX - 1] = '"';
	big[DOC_BODY_MAX] = '\0';
	struct http_receiver rv;
	assert_int_equal(receiver_start(&rv, 0), 0);
	struct notify_dest d;
	dest(&d, "big", rv.port, 3, NULL);
	assert_int_equal(notify_set_dests(N, &d, 1), 0);
	submit(44, "big", "alert-44", big);
	assert_int_equal(final_of(44).result, NOTIFY_DELIVERED);
	assert_int_equal(strlen(rv.req[0].body), DOC_BODY_MAX);
	assert_string_equal(rv.req[0].body, big);
	free(big);
	receiver_stop(&rv);
}

/* 4 096 deliveries held at most: the next submit is refused (the caller keeps it
 * in the outbox), and taken again once one of them is done. */
static atomic_int pending_dead;

static void on_pending_report(void *ctx, const struct notify_report *r)
{
	if (r->result == NOTIFY_DEAD)
		atomic_fetch_add(&pending_dead, 1);
}

static void test_pending_limit(void **state)
{
	struct notifier *n2;
	char err[256];
	assert_int_equal(notify_start(&n2, on_pending_report, NULL, &FAST, err, sizeof(err)), 0);
	struct notify_dest d;
	dest(&d, "later", 1, 3, NULL); /* never contacted: every delivery is due in an hour */
	assert_int_equal(notify_set_dests(n2, &d, 1), 0);
	uint64_t later = errq_now_ns() + 3600 * ERRQ_NS_PER_SEC;
	for (int i = 0; i <= DOC_MAX_PENDING; i++) {
		struct notify_delivery *dl = notify_delivery_new("{}", 2);
		dl->id = (uint64_t)i + 1;
		dl->not_before_ns = later;
		errq_snprintf(dl->dest, sizeof(dl->dest), "later");
		errq_snprintf(dl->order_key, sizeof(dl->order_key), "k%d", i);
		int rc = notify_submit(n2, dl);
		if (i < DOC_MAX_PENDING) {
			assert_int_equal(rc, 0);
		} else {
			assert_int_equal(rc, -1); /* the caller still owns it */
			/* removing the destination ends them (dead): room again */
			assert_int_equal(notify_set_dests(n2, NULL, 0), 0);
			uint64_t dl_ns = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
			while (notify_submit(n2, dl) != 0) {
				assert_true(errq_mono_ns() < dl_ns);
				struct timespec ts = {0, 5000000};
				nanosleep(&ts, NULL);
			}
			assert_true(atomic_load(&pending_dead) > 0);
		}
	}
	notify_stop(n2);
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
	    cmocka_unit_test(test_signature_verified_independently),
	    cmocka_unit_test(test_headers_user_agent_and_unsigned),
	    cmocka_unit_test(test_5xx_and_408_never_dead_letter),
	    cmocka_unit_test(test_body_limit),
	    cmocka_unit_test(test_pending_limit),
	};
	int rc = cmocka_run_group_tests_name("integration_notify", tests, NULL, NULL);
	notify_stop(N);
	return rc;
}
