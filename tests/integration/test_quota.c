/* Integration: spike protection against a real errqd (server/quota.h, docs/protocol.md).
 * A service over its bucket gets quota_exceeded for the excess, per event, and its stream stays
 * open; another service is not affected until the global bucket is empty; the refused events
 * are counted in their groups (a `dropped` tally), in Status, /metrics, the CLI and a rule's
 * circuit, and are not in the events table; once the bucket refills, events are stored again.
 * Also the per-connection limits of the transport: concurrent streams, metadata size, and the
 * per-stream HTTP/2 window (issue 16: paid per open stream, so small): the server's first
 * SETTINGS frame, read on a raw TCP connection, carries SETTINGS_INITIAL_WINDOW_SIZE =
 * TRANSPORT_STREAM_LOOKAHEAD and SETTINGS_MAX_CONCURRENT_STREAMS = max_streams, and batches of
 * ~50 times the window, several on one stream, are acknowledged and stored. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <jansson.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "grpc/health/v1/health.pb-c.h"
#include "errq_time.h"
#include "harness.h"
#include "transport.h"

#define H2_FRAME_HEADER 9
#define H2_SETTINGS 0x4
#define H2_FLAG_ACK 0x1
#define H2_SETTINGS_MAX_CONCURRENT_STREAMS 0x3
#define H2_SETTINGS_INITIAL_WINDOW_SIZE 0x4
#define READ_MAX (64u << 10) /* what the test reads before the server's SETTINGS, at most */

static struct errqd_proc D;
static struct errq_idgen G;

static int setup(void **state)
{
	grpc_init();
	errq_idgen_init(&G);
	memset(&D, 0, sizeof(D));
	return 0;
}

static int teardown(void **state)
{
	int st = D.pid ? errqd_stop(&D, SIGTERM) : 0;
	errqd_cleanup(&D);
	grpc_shutdown_blocking();
	return st == 0 ? 0 : -1;
}

static int64_t db_int(const char *sql)
{
	struct harness_db *h = harness_db_open(D.db);
	assert_non_null(h);
	int64_t v = harness_db_int(h, sql, NULL);
	harness_db_close(h);
	return v;
}

/* The events of several services in one request: {service, n} pairs until NULL. */
static Errq__V1__ReportRequest *mixed_req(uint64_t seq, const char *const *svc, const int *n)
{
	size_t total = 0;
	for (int i = 0; svc[i]; i++)
		total += (size_t)n[i];
	Errq__V1__ReportRequest *r = treq_new(&G, seq, 0, "x", "x", "x");
	free(r->failures);
	r->failures = calloc(total, sizeof(*r->failures));
	for (int i = 0; svc[i]; i++)
		for (int k = 0; k < n[i]; k++)
			r->failures[r->n_failures++] = tevent_new(&G, svc[i], "StormError", "the backend is down");
	return r;
}

static Errq__V1__ReportResponse *roundtrip(struct rawstream *s, Errq__V1__ReportRequest *r)
{
	Errq__V1__ReportResponse *resp = NULL;
	assert_int_equal(raw_send(s, r), 0);
	assert_int_equal(raw_recv(s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_non_null(resp);
	assert_int_equal(resp->seq, r->seq);
	assert_int_equal(resp->accepted + resp->duplicates + resp->n_rejected, r->n_failures);
	return resp;
}

static json_t *cli_json(const char *const *argv)
{
	char *out = NULL, *err = NULL;
	int rc = run_capture(argv, D.addr, &out, &err);
	if (rc != 0)
		fail_msg("%s %s: exit %d: %s", argv[1], argv[2], rc, err ? err : "");
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	if (!j)
		fail_msg("not JSON: %s", out);
	free(out);
	free(err);
	return j;
}

/* The group of service in `errq groups -o json`. */
static json_t *group_of(json_t *arr, const char *service)
{
	size_t i;
	json_t *g;
	json_array_foreach(arr, i, g)
	{
		if (!strcmp(json_string_value(json_object_get(g, "service")), service))
			return g;
	}
	fail_msg("no group of service '%s'", service);
	return NULL;
}

static uint64_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_integer(v))
		fail_msg("no integer '%s'", k);
	return (uint64_t)json_integer_value(v);
}

/* The value of a sample line "name{labels} value" (or "name value") of /metrics. */
static uint64_t metric(const char *body, const char *sample)
{
	char key[160];
	errq_snprintf(key, sizeof(key), "\n%s ", sample);
	const char *p = strstr(body, key);
	if (!p)
		fail_msg("no metric '%s'", sample);
	return strtoull(p + strlen(key), NULL, 10);
}

static uint32_t circuits_open(void)
{
	Errq__V1__StatusResponse *st = query_status(D.addr);
	uint32_t v = st ? st->circuits_open : 0;
	if (st)
		errq__v1__status_response__free_unpacked(st, NULL);
	return v;
}

static void test_storm_counted_not_stored(void **state)
{
	/* each service 1 event/s with a bucket of 10, the collector 1 event/s with 25: within
	 * one request every event sees the same instant, so the split below is exact */
	errq_snprintf(D.dir, sizeof(D.dir), "/tmp/errq-itest-quota.XXXXXX");
	assert_non_null(mkdtemp(D.dir));
	char cfg[320];
	errq_snprintf(cfg, sizeof(cfg), "%s/errqd.yaml", D.dir);
	FILE *f = fopen(cfg, "w");
	assert_non_null(f);
	/* the rule trips at 12 failures of storm-a: only 10 of its 15 are stored */
	fputs("quota:\n"
	      "  events_per_second: 1\n"
	      "  burst: 25\n"
	      "  service_events_per_second: 1\n"
	      "  service_burst: 10\n"
	      "notifiers:\n"
	      "  - name: journal\n"
	      "    type: log\n"
	      "rules:\n"
	      "  - name: storm\n"
	      "    match: {service: storm-a}\n"
	      "    group_by: [service]\n"
	      "    trip: {failures: 12, window: 1h}\n"
	      "    recovery_timeout: 7d\n"
	      "    notify: [journal]\n",
	      f);
	assert_int_equal(fclose(f), 0);
	const char *args[] = {"--config", cfg, NULL};
	assert_int_equal(errqd_start(&D, args), 0);

	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	const char *svc[] = {"storm-a", "calm-b", "late-c", NULL};
	const int n[] = {15, 15, 10};
	Errq__V1__ReportRequest *first = mixed_req(1, svc, n), *r;
	Errq__V1__ReportResponse *resp = roundtrip(&s, first);
	assert_int_equal(resp->accepted, 10 + 10 + 5);
	assert_int_equal(resp->n_rejected, 5 + 5 + 5);
	for (size_t i = 0; i < resp->n_rejected; i++) {
		uint32_t ix = resp->rejected[i]->index;
		const char *why = resp->rejected[i]->reason;
		if (ix >= 10 && ix < 15)
			assert_string_equal(why, "quota_exceeded: service 'storm-a' over 1 events/s");
		else if (ix >= 25 && ix < 30)
			assert_string_equal(why, "quota_exceeded: service 'calm-b' over 1 events/s");
		else if (ix >= 35 && ix < 40)
			assert_string_equal(why, "quota_exceeded: collector over 1 events/s");
		else
			fail_msg("event %u rejected: %s", ix, why);
	}
	errq__v1__report_response__free_unpacked(resp, NULL);
	/* the storm trips the rule: the refused events count in circuits too */
	WAIT_FOR(circuits_open() == 1);

	/* the stream stays open; storm-a is stored again once its bucket refills (1 token/s):
	 * one event at a time until one is accepted, counting the refusals on the way */
	uint64_t a_acc = 10, a_rej = 5, seq = 2, global_rej = 5;
	uint64_t dl = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	for (bool stored = false; !stored; seq++) {
		const char *one[] = {"storm-a", NULL};
		const int n1[] = {1};
		r = mixed_req(seq, one, n1);
		resp = roundtrip(&s, r);
		stored = resp->accepted == 1;
		a_acc += resp->accepted;
		a_rej += resp->n_rejected;
		if (resp->n_rejected && strstr(resp->rejected[0]->reason, "collector"))
			global_rej++;
		errq__v1__report_response__free_unpacked(resp, NULL);
		treq_free(r);
		if (!stored) {
			if (errq_mono_ns() > dl)
				fail_msg("storm-a not stored again within %d ms", HARNESS_DEADLINE_MS);
			harness_msleep(100); /* a poll's pause: the bucket gains a token per second */
		}
	}

	/* the first batch again, as after a reconnect: its 25 stored events are duplicates, quota
	 * or not; its 15 refused ones are new to the store (stored now, or refused and counted
	 * again: docs/protocol.md) */
	uint64_t acc[3] = {a_acc, 10, 5}, rej[3] = {a_rej, 5, 5};
	first->seq = seq;
	resp = roundtrip(&s, first);
	assert_int_equal(resp->duplicates, 25);
	uint64_t again[3] = {0};
	for (size_t i = 0; i < resp->n_rejected; i++) {
		uint32_t ix = resp->rejected[i]->index;
		int k = ix >= 10 && ix < 15 ? 0 : ix >= 25 && ix < 30 ? 1 : ix >= 35 && ix < 40 ? 2 : -1;
		if (k < 0)
			fail_msg("a stored event (%u) refused again: %s", ix, resp->rejected[i]->reason);
		again[k]++;
		global_rej += strstr(resp->rejected[i]->reason, "collector") != NULL;
	}
	for (int k = 0; k < 3; k++) {
		rej[k] += again[k];
		acc[k] += 5 - again[k];
	}
	assert_int_equal(resp->accepted, 15 - again[0] - again[1] - again[2]);
	errq__v1__report_response__free_unpacked(resp, NULL);
	treq_free(first);
	a_acc = acc[0];
	a_rej = rej[0];
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);

	/* the groups count every event; the events table holds only the stored ones */
	json_t *groups = cli_json((const char *[]){ERRQ_CLI_PATH, "groups", "-o", "json", NULL});
	json_t *ga = group_of(groups, "storm-a"), *gb = group_of(groups, "calm-b"), *gc = group_of(groups, "late-c");
	assert_int_equal(jint(ga, "total"), a_acc + a_rej);
	assert_int_equal(jint(ga, "dropped"), a_rej);
	assert_int_equal(jint(ga, "count"), a_acc + a_rej);
	assert_int_equal(jint(gb, "total"), acc[1] + rej[1]);
	assert_int_equal(jint(gb, "dropped"), rej[1]);
	assert_int_equal(jint(gc, "total"), acc[2] + rej[2]);
	assert_int_equal(jint(gc, "dropped"), rej[2]);
	json_t *one = cli_json(
	    (const char *[]){ERRQ_CLI_PATH, "group", json_string_value(json_object_get(ga, "fingerprint")), "-o", "json", NULL});
	assert_int_equal(jint(one, "dropped"), a_rej);
	json_decref(one);
	json_decref(groups);
	assert_int_equal(db_int("SELECT count(*) FROM events WHERE service = 'storm-a'"), (int64_t)a_acc);
	assert_int_equal(db_int("SELECT count(*) FROM events WHERE service = 'calm-b'"), (int64_t)acc[1]);
	assert_int_equal(db_int("SELECT count(*) FROM events WHERE service = 'late-c'"), (int64_t)acc[2]);
	uint64_t dropped = rej[0] + rej[1] + rej[2];
	assert_int_equal(db_int("SELECT sum(dropped) FROM service_minutes"), (int64_t)dropped);

	json_t *status = cli_json((const char *[]){ERRQ_CLI_PATH, "status", "-o", "json", NULL});
	assert_int_equal(jint(status, "events_dropped"), dropped);
	assert_int_equal(jint(status, "events_dropped_total"), dropped);
	assert_int_equal(jint(status, "events_total"), acc[0] + acc[1] + acc[2]);
	json_decref(status);

	int hs = 0;
	char *body = NULL;
	assert_int_equal(http_request(D.http_port, "GET", "/metrics", "", &hs, NULL, &body), 0);
	assert_int_equal(hs, 200);
	assert_int_equal(metric(body, "errq_events_dropped_total"), dropped);
	assert_int_equal(metric(body, "errq_events_rejected_total{reason=\"quota_exceeded\"}"), dropped);
	/* the buckets' refusals include stored events sent again (answered as duplicates) */
	uint64_t by_global = metric(body, "errq_quota_rejected_total{bucket=\"global\"}");
	uint64_t by_service = metric(body, "errq_quota_rejected_total{bucket=\"service\"}");
	assert_true(by_global >= global_rej);
	assert_true(by_global + by_service >= dropped);
	assert_int_equal(metric(body, "errq_quota_services"), 3);
	free(body);
}

/* A bad quota setting is refused at start, naming it. */
static void test_bad_quota_settings_refused(void **state)
{
	char *err = NULL;
	const char *bad[] = {"--set", "quota.service_overrides=checkout=fast", "--check-config", NULL};
	assert_int_equal(errqd_run_once(bad, &err), 1);
	assert_non_null(strstr(err, "quota.service_overrides: 'checkout=fast'"));
	free(err);
	const char *neg[] = {"--set", "quota.events_per_second=-5", "--check-config", NULL};
	assert_int_equal(errqd_run_once(neg, &err), 1);
	assert_non_null(strstr(err, "quota.events_per_second"));
	free(err);
}

/* ---- the transport's per-connection limits, with calls made by hand on one channel ---- */

enum { T_SEND = 1, T_RECV, T_STATUS, T_CLOSE, T_N };
struct mcall {
	grpc_completion_queue *cq;
	grpc_call *call;
	grpc_metadata_array mi, mt;
	grpc_status_code status;
	grpc_slice details;
	grpc_byte_buffer *sbb, *rbb;
	bool pending[T_N];
};

static void mcall_batch(struct mcall *m, grpc_op *ops, size_t n, int tag)
{
	assert_int_equal(grpc_call_start_batch(m->call, ops, n, (void *)(intptr_t)tag, NULL), GRPC_CALL_OK);
	m->pending[tag] = true;
}

/* Starts a call on ch: metadata md, one message, a half-close if close; posts its reads. */
static void mcall_start(struct mcall *m, grpc_channel *ch, const char *method, grpc_metadata *md, size_t nmd,
			const ProtobufCMessage *msg, bool close)
{
	memset(m, 0, sizeof(*m));
	m->cq = grpc_completion_queue_create_for_pluck(NULL);
	m->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, m->cq, grpc_slice_from_static_string(method),
					   NULL, errq_deadline_ms(HARNESS_DEADLINE_MS), NULL);
	grpc_metadata_array_init(&m->mi);
	grpc_metadata_array_init(&m->mt);
	m->details = grpc_empty_slice();
	m->sbb = errq_bb_from_msg(msg);
	grpc_op ops[3];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY; /* the channel may still be connecting */
	ops[0].data.send_initial_metadata.count = nmd;
	ops[0].data.send_initial_metadata.metadata = md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = m->sbb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	mcall_batch(m, ops, close ? 3 : 2, T_SEND);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &m->mi;
	ops[1].op = GRPC_OP_RECV_MESSAGE;
	ops[1].data.recv_message.recv_message = &m->rbb;
	mcall_batch(m, ops, 2, T_RECV);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &m->mt;
	ops[0].data.recv_status_on_client.status = &m->status;
	ops[0].data.recv_status_on_client.status_details = &m->details;
	mcall_batch(m, ops, 1, T_STATUS);
}

/* Waits up to ms for tag: true when it completed (successfully or not). */
static bool mcall_wait(struct mcall *m, int tag, long ms)
{
	grpc_event ev = grpc_completion_queue_pluck(m->cq, (void *)(intptr_t)tag, errq_deadline_ms(ms), NULL);
	if (ev.type != GRPC_OP_COMPLETE)
		return false;
	m->pending[tag] = false;
	return true;
}

static void mcall_half_close(struct mcall *m)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	mcall_batch(m, &op, 1, T_CLOSE);
}

static void mcall_free(struct mcall *m)
{
	grpc_call_cancel(m->call, NULL);
	for (int t = T_SEND; t < T_N; t++)
		if (m->pending[t])
			assert_true(mcall_wait(m, t, HARNESS_DEADLINE_MS));
	grpc_call_unref(m->call);
	grpc_completion_queue_shutdown(m->cq);
	grpc_completion_queue_destroy(m->cq);
	grpc_metadata_array_destroy(&m->mi);
	grpc_metadata_array_destroy(&m->mt);
	grpc_slice_unref(m->details);
	if (m->sbb)
		grpc_byte_buffer_destroy(m->sbb);
	if (m->rbb)
		grpc_byte_buffer_destroy(m->rbb);
}

/* gRPC shares connections between channels to one address (a global subchannel pool): the
 * test's channel gets a connection of its own, so the Status calls do not take its slots */
static grpc_channel *own_connection(void)
{
	struct errq_chan_arg a = {GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1};
	grpc_channel *ch = errq_channel_new_ex(D.addr, NULL, &a, 1);
	assert_non_null(ch);
	return ch;
}

static uint32_t streams_active(void)
{
	Errq__V1__StatusResponse *st = query_status(D.addr);
	uint32_t v = st ? st->streams_active : UINT32_MAX;
	if (st)
		errq__v1__status_response__free_unpacked(st, NULL);
	return v;
}

/* max_streams is HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS: the N+1th stream on one
 * connection is not refused, it waits in the client's transport until a stream ends. */
static void test_max_streams_per_connection(void **state)
{
	const char *args[] = {"--set", "max_streams=2", NULL};
	assert_int_equal(errqd_start(&D, args), 0);
	grpc_channel *ch = own_connection();
	struct mcall m[3];
	Errq__V1__ReportRequest *r[3];
	for (int i = 0; i < 2; i++) {
		r[i] = treq_new(&G, 1, 1, "streams", "LimitError", "one of three");
		mcall_start(&m[i], ch, "/errq.v1.Collector/Report", NULL, 0, &r[i]->base, false);
		assert_true(mcall_wait(&m[i], T_RECV, HARNESS_DEADLINE_MS));
		assert_non_null(m[i].rbb); /* answered: the stream is open on the collector */
	}
	r[2] = treq_new(&G, 1, 1, "streams", "LimitError", "the third");
	mcall_start(&m[2], ch, "/errq.v1.Collector/Report", NULL, 0, &r[2]->base, false);
	/* the third waits: never answered while the two are open (this can only miss a broken
	 * limit, not fail a working one), and the collector sees two streams */
	assert_false(mcall_wait(&m[2], T_RECV, 500));
	uint32_t active = streams_active();
	if (active != 2)
	{
		bool e1 = mcall_wait(&m[1], T_STATUS, 0), e2 = mcall_wait(&m[2], T_STATUS, 0);
		fail_msg("%u streams active; second ended %d (%d %s), third %d (%d %s)", active, e1, m[1].status,
			 grpc_slice_to_c_string(m[1].details), e2, m[2].status, grpc_slice_to_c_string(m[2].details));
	}
	mcall_half_close(&m[0]);
	assert_true(mcall_wait(&m[0], T_STATUS, HARNESS_DEADLINE_MS));
	if (m[0].status != GRPC_STATUS_OK)
		fail_msg("first stream ended %d: %s", m[0].status, grpc_slice_to_c_string(m[0].details));
	/* a slot is free: the third stream starts and is answered */
	assert_true(mcall_wait(&m[2], T_RECV, HARNESS_DEADLINE_MS));
	assert_non_null(m[2].rbb);
	for (int i = 0; i < 3; i++) {
		mcall_free(&m[i]);
		treq_free(r[i]);
	}
	grpc_channel_destroy(ch);
	assert_int_equal(db_int("SELECT count(*) FROM events WHERE service = 'streams'"), 3);
}

/* Health/Check with one metadata entry of value_len bytes: the call's status. */
static grpc_status_code health_with_metadata(grpc_channel *ch, size_t value_len)
{
	char *v = malloc(value_len);
	assert_non_null(v);
	memset(v, 'x', value_len);
	grpc_metadata md;
	memset(&md, 0, sizeof(md));
	md.key = grpc_slice_from_static_string("x-padding");
	md.value = grpc_slice_from_copied_buffer(v, value_len);
	free(v);
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	struct mcall m;
	mcall_start(&m, ch, "/grpc.health.v1.Health/Check", &md, 1, &req.base, true);
	assert_true(mcall_wait(&m, T_STATUS, HARNESS_DEADLINE_MS));
	grpc_status_code st = m.status;
	mcall_free(&m);
	grpc_slice_unref(md.value);
	return st;
}

/* TRANSPORT_MAX_METADATA_BYTES (16 KiB): 12 KiB of headers pass (over the C core's default of
 * 8 KiB), 32 KiB are refused, and the collector goes on serving (new connections, reports). */
static void test_metadata_size_limit(void **state)
{
	assert_int_equal(errqd_start(&D, NULL), 0);
	grpc_channel *ch = own_connection();
	assert_int_equal(health_with_metadata(ch, 12 << 10), GRPC_STATUS_OK);
	grpc_status_code big = health_with_metadata(ch, 32 << 10);
	if (big == GRPC_STATUS_OK)
		fail_msg("a call with 32 KiB of metadata was served");
	print_message("32 KiB of metadata: %s\n", errq_status_name(big));
	grpc_channel_destroy(ch); /* the C core may end that connection: a new one is served */
	grpc_status_code cs;
	assert_int_equal(health_check(D.addr, "", &cs), 1); /* SERVING */
	assert_int_equal(report_batch(D.addr, &G, 3, "after-metadata", "OkError"), 3);
}

static uint32_t be(const uint8_t *p, int n)
{
	uint32_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Opens an HTTP/2 connection to errqd by hand (preface, empty SETTINGS) and returns the value of
 * each setting id 1..6 in the server's first SETTINGS frame (UINT32_MAX: not announced). */
static void server_settings(uint32_t out[7])
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const uint8_t empty_settings[H2_FRAME_HEADER] = {0, 0, 0, H2_SETTINGS, 0, 0, 0, 0, 0};
	for (int i = 0; i < 7; i++)
		out[i] = UINT32_MAX;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)D.port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(send(fd, preface, sizeof(preface) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(preface) - 1));
	assert_int_equal(send(fd, empty_settings, sizeof(empty_settings), MSG_NOSIGNAL), (ssize_t)sizeof(empty_settings));
	uint8_t *buf = malloc(READ_MAX);
	assert_non_null(buf);
	size_t len = 0, off = 0;
	bool found = false;
	uint64_t deadline = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	while (!found) {
		/* every whole frame read so far: the first SETTINGS that is not an ACK ends the search */
		while (!found && len - off >= H2_FRAME_HEADER) {
			uint32_t flen = be(buf + off, 3);
			if (len - off < H2_FRAME_HEADER + flen)
				break;
			const uint8_t *p = buf + off + H2_FRAME_HEADER;
			if (buf[off + 3] == H2_SETTINGS && !(buf[off + 4] & H2_FLAG_ACK)) {
				if (flen % 6)
					fail_msg("SETTINGS frame of %u bytes, not a multiple of 6", flen);
				for (uint32_t i = 0; i < flen; i += 6) {
					uint32_t id = be(p + i, 2);
					if (id >= 1 && id <= 6)
						out[id] = be(p + i + 2, 4);
				}
				found = true;
			}
			off += H2_FRAME_HEADER + flen;
		}
		if (found)
			break;
		if (len == READ_MAX)
			fail_msg("no SETTINGS frame in the server's first %zu bytes", len);
		uint64_t now = errq_mono_ns();
		if (now >= deadline)
			fail_msg("no SETTINGS frame from the server within %d ms", HARNESS_DEADLINE_MS);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, (int)((deadline - now) / ERRQ_NS_PER_MS) + 1) != 1)
			continue;
		ssize_t n = recv(fd, buf + len, READ_MAX - len, 0);
		if (n <= 0)
			fail_msg("the server closed the connection before its SETTINGS (%zd)", n);
		len += (size_t)n;
	}
	free(buf);
	close(fd);
}

static void test_settings_announce_the_limits(void **state)
{
	const char *args[] = {"--set", "max_streams=77", NULL};
	assert_int_equal(errqd_start(&D, args), 0);
	uint32_t s[7];
	server_settings(s);
	assert_int_equal(s[H2_SETTINGS_INITIAL_WINDOW_SIZE], TRANSPORT_STREAM_LOOKAHEAD);
	assert_int_equal(s[H2_SETTINGS_MAX_CONCURRENT_STREAMS], 77);
}

static void test_messages_larger_than_the_window_pass(void **state)
{
	enum { BATCHES = 3, EVENTS = 100, MSG = 2000 };
	assert_int_equal(errqd_start(&D, NULL), 0);
	char *msg = malloc(MSG + 1);
	assert_non_null(msg);
	memset(msg, 'w', MSG);
	msg[MSG] = '\0';
	struct rawstream rs;
	assert_int_equal(raw_open(&rs, D.addr), 0);
	for (int b = 0; b < BATCHES; b++) {
		Errq__V1__ReportRequest *r = treq_new(&G, (uint64_t)b + 1, EVENTS, "window", "WideError", msg);
		size_t wire = errq__v1__report_request__get_packed_size(r);
		if (wire < 40u * TRANSPORT_STREAM_LOOKAHEAD)
			fail_msg("a batch of %zu bytes is not far over the window of %d", wire, TRANSPORT_STREAM_LOOKAHEAD);
		assert_int_equal(raw_send(&rs, r), 0);
		treq_free(r);
	}
	for (int b = 0; b < BATCHES; b++) {
		Errq__V1__ReportResponse *resp = NULL;
		assert_int_equal(raw_recv(&rs, &resp, HARNESS_DEADLINE_MS), 0);
		assert_int_equal(resp->seq, (uint64_t)b + 1);
		assert_int_equal(resp->accepted, EVENTS);
		errq__v1__report_response__free_unpacked(resp, NULL);
	}
	char det[256];
	assert_int_equal(raw_finish(&rs, det, sizeof(det)), GRPC_STATUS_OK);
	raw_free(&rs);
	free(msg);
	assert_int_equal(db_int("SELECT count(*) FROM events WHERE service = 'window'"), BATCHES * EVENTS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_storm_counted_not_stored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_quota_settings_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_streams_per_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metadata_size_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_settings_announce_the_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_messages_larger_than_the_window_pass, setup, teardown),
	};
	return cmocka_run_group_tests_name("integration_quota", tests, NULL, NULL);
}
