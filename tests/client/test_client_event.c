/* Unit: liberrq's event builder (copies, limits, UTF-8 repair), its size accounting against
 * what protobuf-c really packs, batch and outcome encoding, options validation, the spool's
 * checksum, error strings and the version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "client_int.h"
#include "errq/v1/collector.pb-c.h"
#include "errq_str.h"
#include "errq_banned.h"

#define NOWHERE "127.0.0.1:1" /* nothing listens there: the client never connects */

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_strerror_covers_every_code(void **state)
{
	static const struct {
		int code;
		const char *name;
	} codes[] = {
#define XX(name, value, msg) {ERRQ_##name, #name},
	    ERRQ_ERRNO_MAP(XX)
#undef XX
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);
	assert_true(n >= 7);
	assert_string_equal(errq_strerror(ERRQ_OK), "ok");
	assert_string_equal(errq_err_name(ERRQ_OK), "OK");
	for (size_t i = 0; i < n; i++) {
		const char *msg = errq_strerror(codes[i].code);
		assert_true(codes[i].code < 0);
		assert_non_null(msg);
		assert_true(strlen(msg) > 0);
		assert_string_not_equal(msg, "unknown error");
		assert_string_equal(errq_err_name(codes[i].code), codes[i].name);
		for (size_t j = 0; j < i; j++) {
			assert_int_not_equal(codes[i].code, codes[j].code);
			assert_string_not_equal(msg, errq_strerror(codes[j].code));
		}
	}
	assert_string_equal(errq_strerror(-9999), "unknown error");
	assert_string_equal(errq_strerror(7), "unknown error");
	assert_string_equal(errq_err_name(-9999), "UNKNOWN");
	/* values are part of the ABI: never renumbered */
	assert_int_equal(ERRQ_EINVAL, -1);
	assert_int_equal(ERRQ_ETIMEDOUT, -6);
}

static void test_version(void **state)
{
	char want[32];
	errq_snprintf(want, sizeof(want), "%d.%d.%d", ERRQ_VERSION_MAJOR, ERRQ_VERSION_MINOR,
		      ERRQ_VERSION_PATCH);
	assert_string_equal(errq_version(), want);
	assert_string_equal(errq_version(), ERRQ_VERSION_STRING); /* what CMake's project() says */
	assert_int_equal(ERRQ_VERSION_HEX,
			 (ERRQ_VERSION_MAJOR << 16) | (ERRQ_VERSION_MINOR << 8) | ERRQ_VERSION_PATCH);
}

static void test_event_copies_its_input(void **state)
{
	char type[] = "TimeoutError", msg[] = "timed out", svc[] = "checkout";
	char key[] = "host", val[] = "db1", fn[] = "main", file[] = "a.c", mod[] = "app";
	errq_event_t *ev = errq_event_new(svc, type, msg);
	assert_non_null(ev);
	assert_int_equal(errq_event_add_detail(ev, key, val), ERRQ_OK);
	assert_int_equal(errq_event_add_frame(ev, fn, file, 7, mod, true), ERRQ_OK);
	/* the caller scribbles over (or frees) its buffers: the event keeps its own copies */
	memset(type, 'X', sizeof(type) - 1);
	memset(msg, 'X', sizeof(msg) - 1);
	memset(svc, 'X', sizeof(svc) - 1);
	memset(key, 'X', sizeof(key) - 1);
	memset(val, 'X', sizeof(val) - 1);
	memset(fn, 'X', sizeof(fn) - 1);
	assert_string_equal(ev->error_type, "TimeoutError");
	assert_string_equal(ev->message, "timed out");
	assert_string_equal(ev->service, "checkout");
	assert_string_equal(ev->details[0].key, "host");
	assert_string_equal(ev->details[0].value, "db1");
	assert_string_equal(ev->frames[0].function, "main");
	assert_int_equal(ev->frames[0].line, 7);
	assert_true(ev->frames[0].in_app);
	assert_false(ev->handled); /* unhandled unless told */
	assert_int_equal(ev->attempt, 0);
	assert_false(ev->truncated);
	errq_event_free(ev);
}

static void test_event_requires_error_type(void **state)
{
	assert_null(errq_event_new("svc", NULL, "m"));
	assert_null(errq_event_new("svc", "", "m"));
	errq_event_t *ev = errq_event_new(NULL, "E", NULL); /* service and message optional */
	assert_non_null(ev);
	assert_null(ev->service);
	assert_null(ev->message);
	errq_event_free(ev);
	errq_event_free(NULL);
}

static void test_setters_reject_null_and_clear(void **state)
{
	assert_int_equal(errq_event_set_code(NULL, "x"), ERRQ_EINVAL);
	assert_int_equal(errq_event_set_task(NULL, "x"), ERRQ_EINVAL);
	assert_int_equal(errq_event_set_environment(NULL, "x"), ERRQ_EINVAL);
	assert_int_equal(errq_event_set_fingerprint(NULL, "x"), ERRQ_EINVAL);
	assert_int_equal(errq_event_add_detail(NULL, "k", "v"), ERRQ_EINVAL);
	assert_int_equal(errq_event_add_frame(NULL, "f", "x.c", 1, NULL, false), ERRQ_EINVAL);
	assert_int_equal(errq_event_set_attempt(NULL, 1), ERRQ_EINVAL);
	assert_int_equal(errq_event_set_handled(NULL, true), ERRQ_EINVAL);
	assert_int_equal(errq_event_set_time_ns(NULL, 1), ERRQ_EINVAL);

	errq_event_t *ev = errq_event_new(NULL, "E", "m");
	assert_int_equal(errq_event_add_detail(ev, NULL, "v"), ERRQ_EINVAL);
	assert_int_equal(errq_event_add_detail(ev, "", "v"), ERRQ_EINVAL);
	assert_int_equal(ev->n_details, 0);
	size_t body0 = ev->body;
	assert_int_equal(errq_event_set_code(ev, "TIMEOUT"), ERRQ_OK);
	assert_string_equal(ev->error_code, "TIMEOUT");
	assert_true(ev->body > body0);
	assert_int_equal(errq_event_set_code(ev, "E2"), ERRQ_OK); /* replace */
	assert_string_equal(ev->error_code, "E2");
	assert_int_equal(errq_event_set_code(ev, NULL), ERRQ_OK); /* clear */
	assert_null(ev->error_code);
	assert_int_equal(ev->body, body0); /* the size accounting follows */
	assert_int_equal(errq_event_add_detail(ev, "k", NULL), ERRQ_OK);
	assert_null(ev->details[0].value);
	errq_event_free(ev);
}

static void test_truncation_at_limits(void **state)
{
	char *big = repeat('a', ERRQ__MAX_MESSAGE_LEN + 100);
	errq_event_t *ev = errq_event_new(NULL, "E", big);
	assert_non_null(ev);
	assert_int_equal(strlen(ev->message), ERRQ__MAX_MESSAGE_LEN);
	assert_true(ev->truncated);
	errq_event_free(ev);

	/* exactly at the limit: kept whole, not truncated */
	big[ERRQ__MAX_MESSAGE_LEN] = '\0';
	ev = errq_event_new(NULL, "E", big);
	assert_int_equal(strlen(ev->message), ERRQ__MAX_MESSAGE_LEN);
	assert_false(ev->truncated);
	errq_event_free(ev);

	/* a two-byte character straddling the limit is dropped whole, never cut in half */
	memcpy(big + ERRQ__MAX_MESSAGE_LEN - 1, "\xC3\xA9", 3);
	ev = errq_event_new(NULL, "E", big);
	assert_int_equal(strlen(ev->message), ERRQ__MAX_MESSAGE_LEN - 1);
	assert_true(errq_utf8_valid(ev->message, strlen(ev->message), NULL));
	assert_true(ev->truncated);
	errq_event_free(ev);
	free(big);

	/* every field has the collector's limit (docs/protocol.md) */
	char *name = repeat('n', 5000);
	ev = errq_event_new(name, name, NULL);
	assert_int_equal(strlen(ev->service), 128);
	assert_int_equal(strlen(ev->error_type), 256);
	errq_event_set_code(ev, name);
	assert_int_equal(strlen(ev->error_code), 128);
	errq_event_set_task(ev, name);
	assert_int_equal(strlen(ev->task), 256);
	errq_event_set_environment(ev, name);
	assert_int_equal(strlen(ev->environment), 64);
	errq_event_set_fingerprint(ev, name);
	assert_int_equal(strlen(ev->fingerprint), 128);
	assert_int_equal(errq_event_add_detail(ev, name, name), ERRQ_OK);
	assert_int_equal(strlen(ev->details[0].key), 128);
	assert_int_equal(strlen(ev->details[0].value), 1024);
	assert_int_equal(errq_event_add_frame(ev, name, name, 1, name, false), ERRQ_OK);
	assert_int_equal(strlen(ev->frames[0].function), 512);
	assert_int_equal(strlen(ev->frames[0].file), 512);
	assert_int_equal(strlen(ev->frames[0].module), 512);
	assert_true(ev->truncated);
	errq_event_free(ev);
	free(name);
}

static void test_invalid_utf8_is_repaired(void **state)
{
	errq_event_t *ev = errq_event_new(NULL, "E", "ab\xFF" "cd\xC3");
	assert_non_null(ev);
	assert_string_equal(ev->message, "ab\xEF\xBF\xBD" "cd\xEF\xBF\xBD");
	assert_false(ev->truncated);
	assert_int_equal(errq_event_add_detail(ev, "k\x80", "\xED\xA0\x80"), ERRQ_OK); /* surrogate */
	assert_true(errq_utf8_valid(ev->details[0].key, strlen(ev->details[0].key), NULL));
	assert_true(errq_utf8_valid(ev->details[0].value, strlen(ev->details[0].value), NULL));
	errq_event_free(ev);

	/* a long run of invalid bytes triples in size when repaired: still bounded by the limit */
	char *bad = repeat('\xFF', ERRQ__MAX_MESSAGE_LEN);
	ev = errq_event_new(NULL, "E", bad);
	assert_true(strlen(ev->message) <= ERRQ__MAX_MESSAGE_LEN);
	assert_true(strlen(ev->message) >= ERRQ__MAX_MESSAGE_LEN - 3);
	assert_true(errq_utf8_valid(ev->message, strlen(ev->message), NULL));
	assert_true(ev->truncated);
	errq_event_free(ev);
	free(bad);
}

static void test_details_replace_and_limit(void **state)
{
	char k[16];
	errq_event_t *ev = errq_event_new(NULL, "E", NULL);
	assert_int_equal(errq_event_add_detail(ev, "host", "a"), ERRQ_OK);
	assert_int_equal(errq_event_add_detail(ev, "host", "bb"), ERRQ_OK);
	assert_int_equal(ev->n_details, 1);
	assert_string_equal(ev->details[0].value, "bb");
	assert_false(ev->truncated);
	for (int i = 0; i < ERRQ__MAX_DETAILS + 10; i++) {
		errq_snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(errq_event_add_detail(ev, k, "v"), ERRQ_OK);
	}
	assert_int_equal(ev->n_details, ERRQ__MAX_DETAILS);
	assert_true(ev->truncated);
	errq_event_free(ev);

	ev = errq_event_new(NULL, "E", NULL);
	size_t body0 = ev->body;
	for (int i = 0; i < ERRQ__MAX_FRAMES; i++)
		assert_int_equal(errq_event_add_frame(ev, "f", "x.c", (uint32_t)i + 1, NULL, i & 1), ERRQ_OK);
	assert_false(ev->truncated);
	size_t full = ev->body;
	for (int i = ERRQ__MAX_FRAMES; i < ERRQ__MAX_FRAMES + 3; i++)
		assert_int_equal(errq_event_add_frame(ev, "f", "x.c", (uint32_t)i + 1, NULL, i & 1), ERRQ_OK);
	assert_int_equal(ev->n_frames, ERRQ__MAX_FRAMES);
	/* the innermost (last added) are kept, in order; the three outermost gave way */
	for (int i = 0; i < ERRQ__MAX_FRAMES; i++)
		assert_int_equal(ev->frames[i].line, i + 4);
	assert_true(ev->truncated);
	assert_true(full > body0);
	assert_true(ev->body >= full - 8 && ev->body <= full + 8); /* same shapes, same size */
	errq_event_free(ev);
}

/* Builds an event with every kind of field, some empty, some with multi-byte varints. */
static errq_event_t *rich_event(int i)
{
	char msg[64];
	errq_snprintf(msg, sizeof(msg), "failure number %d \xE2\x9C\x93", i);
	errq_event_t *ev = errq_event_new(i % 3 ? NULL : "own-service", "TimeoutError", msg);
	errq_event_set_code(ev, "TIMEOUT");
	if (i % 2)
		errq_event_set_task(ev, "reserve_inventory");
	if (i % 4 == 1)
		errq_event_set_environment(ev, "staging");
	errq_event_set_attempt(ev, i % 5 ? (uint32_t)(i * 1000) : 0);
	errq_event_set_handled(ev, i % 2);
	if (i % 3 == 1)
		errq_event_set_fingerprint(ev, "fp-1");
	errq_event_add_detail(ev, "i", msg);
	errq_event_add_detail(ev, "empty", "");
	errq_event_add_frame(ev, "main", "main.c", 0, NULL, false);
	errq_event_add_frame(ev, NULL, NULL, 0, NULL, false); /* an all-empty frame still counts */
	errq_event_add_frame(ev, "deep", "deep.c", 4000000000u, "mod", true);
	if (i == 7) {
		char *m = repeat('z', 5000); /* two-byte length prefix */
		errq_event_set_fingerprint(ev, m + 4800);
		errq_event_add_detail(ev, "long", m);
		free(m);
	}
	return ev;
}

/* The accounting must equal protobuf-c's packing exactly: batches are cut by it. */
static void test_size_accounting_matches_encoding(void **state)
{
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, NOWHERE);
	errq_options_set_service(o, "svc");
	errq_options_set_environment(o, "prod");
	errq_options_set_release(o, "1.2.3");
	errq_options_set_host(o, "web-1");
	errq_client_t *c = errq_client_new(o);
	assert_non_null(c);

	enum { N = 12 };
	errq_event_t *evs[N];
	size_t sum = 0;
	for (int i = 0; i < N; i++) {
		evs[i] = rich_event(i);
		assert_non_null(evs[i]);
		for (int b = 0; b < ERRQ_ID_LEN; b++)
			evs[i]->id[b] = (uint8_t)(i * 16 + b);
		evs[i]->time_ns = i == 3 ? 0 : 1795629791482000000ULL + (uint64_t)i;
		evs[i]->next = NULL;
		if (i)
			evs[i - 1]->next = evs[i];
		errq__event_measure(c, evs[i]);
		sum += evs[i]->wire;
	}
	uint8_t bid[ERRQ_ID_LEN];
	memset(bid, 0xAB, sizeof(bid));
	grpc_slice out;
	uint64_t seq = 300; /* a two-byte varint */
	assert_int_equal(errq__batch_encode(&c->cfg, evs[0], N, bid, &out), ERRQ_OK);
	/* the body carries no seq: the sender puts it in front when it writes the batch */
	size_t body_header = 1 + 1 + ERRQ_ID_LEN;
	assert_int_equal(GRPC_SLICE_LENGTH(out), body_header + sum);
	uint8_t pre[11];
	size_t pl = errq__seq_prefix(seq, pre);
	assert_int_equal(pl, 1 + errq_pb_varint_size(seq));
	assert_true(pl + body_header <= ERRQ__BATCH_OVERHEAD);
	size_t wl = pl + GRPC_SLICE_LENGTH(out);
	uint8_t *wire = malloc(wl);
	memcpy(wire, pre, pl);
	memcpy(wire + pl, GRPC_SLICE_START_PTR(out), GRPC_SLICE_LENGTH(out));

	Errq__V1__ReportRequest *req = errq__v1__report_request__unpack(NULL, wl, wire);
	assert_non_null(req);
	/* the client's own encoder writes what protobuf-c packs, byte for byte */
	assert_int_equal(errq__v1__report_request__get_packed_size(req), wl);
	uint8_t *packed = malloc(wl);
	errq__v1__report_request__pack(req, packed);
	assert_memory_equal(packed, wire, wl);
	free(packed);
	free(wire);
	assert_int_equal(req->seq, seq);
	assert_int_equal(req->batch_id.len, ERRQ_ID_LEN);
	assert_memory_equal(req->batch_id.data, bid, ERRQ_ID_LEN);
	assert_int_equal(req->n_failures, N);
	for (int i = 0; i < N; i++) {
		Errq__V1__TaskFailure *t = req->failures[i];
		assert_int_equal(t->event_id.len, ERRQ_ID_LEN);
		assert_memory_equal(t->event_id.data, evs[i]->id, ERRQ_ID_LEN);
		assert_string_equal(t->service, i % 3 ? "svc" : "own-service");
		assert_string_equal(t->environment, i % 4 == 1 ? "staging" : "prod");
		assert_string_equal(t->release, "1.2.3");
		assert_string_equal(t->host, "web-1");
		assert_string_equal(t->error_type, "TimeoutError");
		assert_string_equal(t->error_code, "TIMEOUT");
		assert_string_equal(t->message, evs[i]->message);
		assert_int_equal(t->attempt, evs[i]->attempt);
		assert_int_equal(!!t->handled, i % 2);
		assert_int_equal(t->n_frames, 3);
		assert_string_equal(t->frames[2]->function, "deep");
		assert_int_equal(t->frames[2]->line, 4000000000u);
		assert_true(t->frames[2]->in_app);
		assert_int_equal(t->n_details, i == 7 ? 3 : 2);
		assert_string_equal(t->details[0]->key, "i");
		assert_string_equal(t->details[0]->value, evs[i]->message);
		/* and each entry alone matches its accounted size */
		size_t one = errq__v1__task_failure__get_packed_size(t);
		assert_int_equal(evs[i]->wire, 1 + errq_pb_varint_size(one) + one);
		assert_true(evs[i]->cost > evs[i]->wire);
	}
	errq__v1__report_request__free_unpacked(req, NULL);
	grpc_slice_unref(out);
	for (int i = 0; i < N; i++) {
		evs[i]->next = NULL;
		errq_event_free(evs[i]);
	}
	assert_int_equal(errq_client_close(c, 0), 0);
}

/* An event with every field at its limit is never refused for its size alone. */
static void test_largest_event_fits(void **state)
{
	errq_options_t *o = errq_options_new();
	char *s = malloc(3 * 9000 + 1); /* three-byte characters: cuts must respect them */
	for (int i = 0; i < 9000; i++)
		memcpy(s + 3 * i, "\xE2\x9C\x93", 3);
	s[3 * 9000] = '\0';
	char svc[ERRQ__MAX_SERVICE_LEN + 1], env[ERRQ__MAX_ENVIRONMENT_LEN + 1];
	char rel[ERRQ__MAX_RELEASE_LEN + 1], host[ERRQ__MAX_HOST_LEN + 1];
	memset(svc, 's', sizeof(svc) - 1);
	svc[sizeof(svc) - 1] = '\0';
	memset(env, 'e', sizeof(env) - 1);
	env[sizeof(env) - 1] = '\0';
	memset(rel, 'r', sizeof(rel) - 1);
	rel[sizeof(rel) - 1] = '\0';
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	errq_options_set_collector(o, NOWHERE);
	assert_int_equal(errq_options_set_service(o, svc), ERRQ_OK);
	assert_int_equal(errq_options_set_environment(o, env), ERRQ_OK);
	assert_int_equal(errq_options_set_release(o, rel), ERRQ_OK);
	assert_int_equal(errq_options_set_host(o, host), ERRQ_OK);
	errq_options_set_queue_bytes(o, ERRQ__QUEUE_BYTES_MAX);
	errq_client_t *c = errq_client_new(o);

	errq_event_t *ev = errq_event_new(NULL, s, s);
	errq_event_set_code(ev, s);
	errq_event_set_task(ev, s);
	errq_event_set_fingerprint(ev, s);
	errq_event_set_attempt(ev, UINT32_MAX);
	errq_event_set_handled(ev, true);
	for (int i = 0; i < ERRQ__MAX_DETAILS; i++) {
		char key[16];
		errq_snprintf(key, sizeof(key), "%02d", i);
		memcpy(s, key, 2); /* distinct keys, still cut at the limit */
		errq_event_add_detail(ev, s, s);
		memcpy(s, "\xE2\x9C\x93", 3);
	}
	for (int i = 0; i < ERRQ__MAX_FRAMES; i++)
		errq_event_add_frame(ev, s, s, UINT32_MAX, s, true);
	assert_int_equal(ev->n_details, ERRQ__MAX_DETAILS);
	assert_int_equal(ev->n_frames, ERRQ__MAX_FRAMES);
	errq__event_measure(c, ev);
	assert_true(ev->wire > 150 * 1024); /* it really is the worst case */
	assert_true(ev->wire <= ERRQ__MAX_EVENT_BYTES);
	assert_int_equal(errq_report(c, ev), ERRQ_OK);
	free(s);
	assert_int_equal(errq_client_close(c, 0), 1);
}

static void test_options_validation(void **state)
{
	errq_options_t *o = errq_options_new();
	assert_non_null(o);
	assert_string_equal(o->collector, ERRQ__DEFAULT_COLLECTOR);
	assert_int_equal(o->queue_capacity, ERRQ__QUEUE_CAPACITY_DEFAULT);
	assert_int_equal(o->backoff_initial_ms, 100);
	assert_int_equal(o->backoff_max_ms, 30000);

	assert_int_equal(errq_options_set_collector(o, NULL), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_collector(o, ""), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_collector(o, "collector:4770"), ERRQ_OK);
	assert_string_equal(o->collector, "collector:4770");
	assert_int_equal(errq_options_set_service(o, "bad\xFF"), ERRQ_EINVAL);
	char *longname = repeat('s', ERRQ__MAX_SERVICE_LEN + 1);
	assert_int_equal(errq_options_set_service(o, longname), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_release(o, longname), ERRQ_EINVAL);
	longname[ERRQ__MAX_SERVICE_LEN] = '\0';
	assert_int_equal(errq_options_set_service(o, longname), ERRQ_OK);
	longname[ERRQ__MAX_ENVIRONMENT_LEN + 1] = '\0';
	assert_int_equal(errq_options_set_environment(o, longname), ERRQ_EINVAL);
	free(longname);
	assert_int_equal(errq_options_set_service(o, NULL), ERRQ_OK);
	assert_null(o->service);

	assert_int_equal(errq_options_set_queue_capacity(o, 0), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_queue_capacity(o, ERRQ__QUEUE_CAPACITY_MAX + 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_queue_capacity(o, 7), ERRQ_OK);
	assert_int_equal(o->queue_capacity, 7);
	assert_int_equal(errq_options_set_queue_bytes(o, ERRQ__QUEUE_BYTES_MIN - 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_max_batch_events(o, 0), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_max_batch_bytes(o, ERRQ__BATCH_BYTES_MIN - 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_max_batch_bytes(o, ERRQ__WIRE_MAX_MESSAGE + 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_max_batch_bytes(o, ERRQ__WIRE_MAX_MESSAGE), ERRQ_OK);
	assert_int_equal(errq_options_set_linger_ms(o, ERRQ__LINGER_MS_MAX + 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_linger_ms(o, 0), ERRQ_OK);
	assert_int_equal(errq_options_set_max_inflight(o, 0), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_max_inflight(o, ERRQ__INFLIGHT_MAX + 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_reconnect_backoff(o, 0, 10), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_reconnect_backoff(o, 20, 10), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_reconnect_backoff(o, 5, 10), ERRQ_OK);
	assert_int_equal(o->backoff_initial_ms, 5);
	assert_int_equal(errq_options_set_debug(NULL, true), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_queue_capacity(NULL, 5), ERRQ_EINVAL);
	/* a batch of the largest event alone stays under the collector's message limit */
	assert_true(ERRQ__MAX_EVENT_BYTES + ERRQ__BATCH_OVERHEAD <= ERRQ__WIRE_MAX_MESSAGE);
	errq_options_free(o);
	errq_options_free(NULL);
}


static void test_delivery_options_validation(void **state)
{
	errq_options_t *o = errq_options_new();
	assert_non_null(o);
	assert_int_equal(o->ack_timeout_ms, ERRQ__ACK_TIMEOUT_MS_DEFAULT);
	assert_int_equal(o->circuit_threshold, ERRQ__CIRCUIT_THRESHOLD_DEFAULT);
	assert_int_equal(o->outcome_interval_s, ERRQ__OUTCOME_INTERVAL_S_DEFAULT);
	assert_int_equal(o->spool_max_bytes, ERRQ__SPOOL_BYTES_DEFAULT);
	assert_null(o->spool_dir);
	assert_false(o->tls);
	assert_null(o->token);

	assert_int_equal(errq_options_set_ack_timeout(o, ERRQ__ACK_TIMEOUT_MS_MIN - 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_ack_timeout(o, ERRQ__ACK_TIMEOUT_MS_MAX + 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_ack_timeout(o, 250), ERRQ_OK);
	assert_int_equal(o->ack_timeout_ms, 250);
	assert_int_equal(o->spill_wait_ms, ERRQ__SPILL_WAIT_MS_DEFAULT);
	assert_int_equal(errq_options_set_spill_wait(o, ERRQ__SPILL_WAIT_MS_MAX + 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_spill_wait(NULL, 0), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_spill_wait(o, 0), ERRQ_OK);
	assert_int_equal(o->spill_wait_ms, 0);
	assert_int_equal(errq_options_set_circuit_threshold(o, 0), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_circuit_threshold(o, ERRQ__CIRCUIT_THRESHOLD_MAX + 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_circuit_threshold(o, 2), ERRQ_OK);
	assert_int_equal(errq_options_set_outcome_interval(o, 0), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_outcome_interval(o, ERRQ__OUTCOME_INTERVAL_S_MAX + 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_outcome_interval(o, 1), ERRQ_OK);
	assert_int_equal(errq_options_set_spool_max_bytes(o, ERRQ__SPOOL_BYTES_MIN - 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_spool_max_bytes(o, ERRQ__SPOOL_BYTES_MAX + 1), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_spool_max_bytes(o, 1 << 20), ERRQ_OK);
	assert_int_equal(errq_options_set_spool_dir(o, "/tmp/spool"), ERRQ_OK);
	assert_string_equal(o->spool_dir, "/tmp/spool");
	char *longpath = repeat('p', ERRQ__MAX_PATH_LEN + 1);
	assert_int_equal(errq_options_set_spool_dir(o, longpath), ERRQ_EINVAL);
	assert_string_equal(o->spool_dir, "/tmp/spool"); /* unchanged */
	free(longpath);
	assert_int_equal(errq_options_set_spool_dir(o, ""), ERRQ_OK);
	assert_null(o->spool_dir);

	assert_int_equal(errq_options_set_token(o, "abc.def-123"), ERRQ_OK);
	assert_string_equal(o->token, "Bearer abc.def-123");
	assert_int_equal(errq_options_set_token(o, "new\nline"), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_token(o, "caf\xC3\xA9"), ERRQ_EINVAL);
	assert_string_equal(o->token, "Bearer abc.def-123");
	char *longtok = repeat('t', ERRQ__MAX_TOKEN_LEN + 1);
	assert_int_equal(errq_options_set_token(o, longtok), ERRQ_EINVAL);
	longtok[ERRQ__MAX_TOKEN_LEN] = '\0';
	assert_int_equal(errq_options_set_token(o, longtok), ERRQ_OK);
	free(longtok);
	assert_int_equal(errq_options_set_token(o, NULL), ERRQ_OK);
	assert_null(o->token);

	/* TLS: the files are read by the setter */
	char pem[] = "/tmp/errq-test-pem-XXXXXX";
	int fd = mkstemp(pem);
	assert_true(fd >= 0);
	const char body[] = "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n";
	assert_int_equal(write(fd, body, sizeof(body) - 1), (ssize_t)(sizeof(body) - 1));
	close(fd);
	assert_int_equal(errq_options_set_tls(o, "/nonexistent/ca.pem", NULL, NULL), ERRQ_EIO);
	assert_false(o->tls);
	assert_int_equal(errq_options_set_tls(o, pem, pem, NULL), ERRQ_EINVAL); /* key missing */
	assert_int_equal(errq_options_set_tls(o, pem, NULL, NULL), ERRQ_OK);
	assert_true(o->tls);
	assert_string_equal(o->tls_ca_pem, body);
	assert_null(o->tls_cert_pem);
	assert_int_equal(errq_options_set_tls(o, NULL, pem, pem), ERRQ_OK);
	assert_null(o->tls_ca_pem); /* default roots */
	assert_string_equal(o->tls_key_pem, body);
	unlink(pem);
	assert_int_equal(errq_options_set_tls(NULL, NULL, NULL, NULL), ERRQ_EINVAL);
	assert_int_equal(errq_options_set_spool_dir(NULL, "x"), ERRQ_EINVAL);
	errq_options_free(o);
}

static void test_crc32_and_seq_prefix(void **state)
{
	assert_int_equal(errq__crc32(0, "123456789", 9), 0xCBF43926u); /* the check value */
	assert_int_equal(errq__crc32(0, "", 0), 0);
	/* incremental == one shot */
	uint32_t a = errq__crc32(0, "12345", 5);
	assert_int_equal(errq__crc32(a, "6789", 4), 0xCBF43926u);
	uint8_t pre[11];
	assert_int_equal(errq__seq_prefix(1, pre), 2);
	assert_int_equal(pre[0], 0x08);
	assert_int_equal(pre[1], 1);
	assert_int_equal(errq__seq_prefix(UINT64_MAX, pre), 11);
	assert_int_equal(sizeof(errq_stats_t), 64 * sizeof(uint64_t));
}

/* Outcome records: one per task, the window and the batch id as given. */
static void test_outcome_encoding(void **state)
{
	errq_options_t *o = errq_options_new();
	errq_options_set_service(o, "svc");
	struct errq_outcome_entry *e[2];
	const char *tasks[2] = {"charge", "bad\xFFtask"};
	for (int i = 0; i < 2; i++) {
		size_t n = strlen(tasks[i]);
		e[i] = calloc(1, sizeof(*e[i]) + n + 1);
		memcpy(e[i]->task, tasks[i], n);
		e[i]->len = (uint32_t)n;
		e[i]->ok = 10u + (uint64_t)i;
		e[i]->failed = 3;
	}
	uint8_t bid[ERRQ_ID_LEN];
	memset(bid, 0x5A, sizeof(bid));
	grpc_slice out;
	assert_int_equal(errq__outcomes_encode(o, e, 2, 1795629791000000000ULL, 5, bid, &out), ERRQ_OK);
	Errq__V1__ReportRequest *req =
	    errq__v1__report_request__unpack(NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
	assert_non_null(req);
	assert_int_equal(req->seq, 0);
	assert_int_equal(req->n_failures, 0);
	assert_int_equal(req->n_outcomes, 2);
	assert_memory_equal(req->batch_id.data, bid, ERRQ_ID_LEN);
	assert_string_equal(req->outcomes[0]->service, "svc");
	assert_string_equal(req->outcomes[0]->task, "charge");
	assert_int_equal(req->outcomes[0]->ok, 10);
	assert_int_equal(req->outcomes[1]->ok, 11);
	assert_int_equal(req->outcomes[1]->failed, 3);
	assert_string_equal(req->outcomes[1]->task, "bad\xEF\xBF\xBDtask"); /* repaired */
	assert_int_equal(req->outcomes[1]->window_start_unix_nano, 1795629791000000000ULL);
	assert_int_equal(req->outcomes[1]->window_seconds, 5);
	errq__v1__report_request__free_unpacked(req, NULL);
	grpc_slice_unref(out);
	free(e[0]);
	free(e[1]);
	errq_options_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strerror_covers_every_code),
	    cmocka_unit_test(test_version),
	    cmocka_unit_test(test_event_copies_its_input),
	    cmocka_unit_test(test_event_requires_error_type),
	    cmocka_unit_test(test_setters_reject_null_and_clear),
	    cmocka_unit_test(test_truncation_at_limits),
	    cmocka_unit_test(test_invalid_utf8_is_repaired),
	    cmocka_unit_test(test_details_replace_and_limit),
	    cmocka_unit_test(test_size_accounting_matches_encoding),
	    cmocka_unit_test(test_largest_event_fits),
	    cmocka_unit_test(test_options_validation),
	    cmocka_unit_test(test_delivery_options_validation),
	    cmocka_unit_test(test_crc32_and_seq_prefix),
	    cmocka_unit_test(test_outcome_encoding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
