/* Integration: the alerting engine (server/alerts.c) end to end.  Each test runs its own errqd
 * (ephemeral port, temporary directory and database) with its own config file whose rules
 * notify a real HTTP receiver on 127.0.0.1.  State is read from the database file with a
 * read-only SQLite connection and from what the receiver recorded; the Alerts service and
 * the CLI are not used.  Every wait is a deadline (HARNESS_DEADLINE_MS); absence is asserted
 * by counting once the next expected event has happened, never by sleeping.
 *
 * Timers are short (recovery 1-2 s, a 10 s probe, a silence of at least 3 s and 10 times what
 * starting errqd and one batch took; longer under valgrind, ERRQ_VALGRIND=1) so the file runs
 * in about 30 s; the notifier's retry timing is errqd's own
 * (1 s doubling, jittered).  ERRQ_TEST_FILTER=test_reload runs one test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <jansson.h>
#include <cmocka.h>

#include "errq_str.h"
#include "errq_time.h"
#include "alerts_support.h"

#define NS_PER_SEC ((uint64_t)ERRQ_NS_PER_SEC)

static int setup(void **state)
{
	(void)state;
	return alerts_setup("/tmp/errq-alerts-XXXXXX");
}

static int teardown(void **state)
{
	(void)state;
	return alerts_teardown();
}

/* ---- reports ---- */

/* Sends one ReportRequest holding only an outcome, with batch_id, and waits for its answer. */
static void send_outcome(const char *service, const char *task, uint64_t ok, uint64_t failed, const uint8_t batch[16])
{
	Errq__V1__Outcome o = ERRQ__V1__OUTCOME__INIT;
	Errq__V1__Outcome *op = &o;
	o.service = (char *)service;
	o.task = (char *)task;
	o.ok = ok;
	o.failed = failed;
	o.window_seconds = 10;
	o.window_start_unix_nano = errq_now_ns() - 10 * NS_PER_SEC;
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
	req.seq = 2;
	req.n_outcomes = 1;
	req.outcomes = &op;
	req.batch_id.len = 16;
	req.batch_id.data = (uint8_t *)batch;
	struct rawstream s;
	assert_int_equal(raw_open(&s, E.d.addr), 0);
	assert_int_equal(raw_send(&s, &req), 0);
	Errq__V1__ReportResponse *resp = NULL;
	assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(resp->seq, 2);
	assert_int_equal(resp->accepted, 0);
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
}

/* ---- what the receiver got ---- */

/* The wall-clock time at which request i arrived (the receiver records the monotonic one). */
static uint64_t arrival_realtime(int i)
{
	uint64_t now = errq_now_ns(), mono = errq_mono_ns();
	return now - (mono - E.rv.req[i].at_ns);
}

/* ---- 1. one incident: fire, flap through HALF_OPEN -> OPEN, resolve ---- */

static void test_lifecycle(void **state)
{
	/* the probe: the test must see HALF_OPEN and send a failure inside the first one, and
	 * errqd's timer must not wake so late that it goes OPEN -> HALF_OPEN -> CLOSED in one step
	 * (transitions are stamped at their deadlines, not at the wake-up).  Seeing the state and
	 * answering take a few ms (a 5 ms poll, one batch); 10 s covers a machine stalled for
	 * seconds by other load, 30 s one under valgrind.  The quiet second probe is waited out
	 * once, so this costs the file 10 s. */
	const int probe = under_valgrind() ? 30 : 10;
	char quiet[64];
	errq_snprintf(quiet, sizeof(quiet), "probe quiet for %ds", probe);
	start_receiver(0);
	write_file(E.cfg,
		   "name: errqd-itest\n"
		   "notifiers:\n"
		   "  - name: ops\n"
		   "    type: webhook\n"
		   "    url: http://127.0.0.1:%d/alerts\n"
		   "    timeout: 5s\n"
		   "rules:\n"
		   "  - name: checkout-timeouts\n"
		   "    match: {service: checkout, error_type: \"Timeout*\"}\n"
		   "    group_by: [service, error_type]\n"
		   "    trip: {failures: 3, window: 60s}\n"
		   "    recovery_timeout: 1s\n"
		   "    half_open: {probe: %ds, failures: 1}\n"
		   "    backoff: {factor: 2, max: 30s}\n"
		   "    severity: critical\n"
		   "    repeat_interval: 0s\n"
		   "    notify: [ops]\n",
		   E.rv.port, probe);
	start_errqd();
	const char *rule = "checkout-timeouts";

	char ids[3][ERRQ_ID_HEX_BUFSZ];
	send_failures(2, "checkout", "TimeoutError", "reserve_inventory", ids);
	assert_int_equal(circuit_state(rule), 0); /* two are not enough */
	send_failures(1, "checkout", "TimeoutError", "reserve_inventory", ids + 2);
	assert_int_equal(circuit_state(rule), 1); /* answered = committed, with its transition */

	/* the firing notice */
	assert_true(receiver_wait(&E.rv, 1) >= 1);
	json_t *f = body_json(0);
	assert_int_equal(jint(f, "version"), 1);
	assert_string_equal(jstr(f, "status"), "firing");
	const char *alert_id = jstr(f, "alert_id");
	assert_true(is_hex32(alert_id));
	char *db_alert = circuit_alert(rule);
	assert_non_null(db_alert);
	assert_string_equal(db_alert, alert_id);
	free(db_alert);
	assert_string_equal(jstr(f, "rule"), rule);
	json_t *key = json_object_get(f, "key");
	assert_true(json_is_object(key));
	assert_int_equal(json_object_size(key), 2);
	assert_string_equal(jstr(key, "service"), "checkout");
	assert_string_equal(jstr(key, "error_type"), "TimeoutError");
	assert_string_equal(jstr(f, "state"), "open");
	assert_string_equal(jstr(f, "previous_state"), "closed");
	assert_string_equal(jstr(f, "severity"), "critical");
	assert_int_equal(jint(f, "failures_in_window"), 3);
	assert_int_equal(jint(f, "window_seconds"), 60);
	assert_true(is_rfc3339_ms(jstr(f, "opened_at")));
	assert_true(json_is_null(json_object_get(f, "resolved_at")));
	assert_string_equal(jstr(f, "reason"), "failures 3 >= 3 in 60s");
	assert_int_equal(jint(f, "notice"), 1);
	json_t *sample = json_object_get(f, "sample");
	assert_true(json_is_object(sample));
	const char *sid = jstr(sample, "event_id");
	assert_true(!strcmp(sid, ids[0]) || !strcmp(sid, ids[1]) || !strcmp(sid, ids[2]));
	assert_string_equal(sid, ids[2]); /* the one that tripped it */
	assert_string_equal(jstr(sample, "service"), "checkout");
	assert_string_equal(jstr(sample, "task"), "reserve_inventory");
	assert_string_equal(jstr(sample, "error_type"), "TimeoutError");
	assert_string_equal(jstr(f, "collector"), "errqd-itest");
	char want[128];
	errq_snprintf(want, sizeof(want), "%s:firing:1", alert_id);
	assert_header(0, "Idempotency-Key", want);
	assert_header(0, "Content-Type", "application/json");
	char opened_at[64];
	errq_snprintf(opened_at, sizeof(opened_at), "%s", jstr(f, "opened_at"));
	char id[ERRQ_ID_HEX_BUFSZ];
	errq_snprintf(id, sizeof(id), "%s", alert_id);

	/* recovery_timeout (1 s) -> HALF_OPEN; one failure in the probe re-opens, no new alert */
	wait_state(rule, 2, __LINE__);
	send_failures(1, "checkout", "TimeoutError", "reserve_inventory", NULL);
	assert_int_equal(circuit_state(rule), 1);
	/* the recovery timeout doubled (2 s), then a quiet probe closes it */
	wait_state(rule, 2, __LINE__);
	wait_state_after(rule, 0, __LINE__, (uint64_t)probe * NS_PER_SEC);

	/* the resolved notice: the second and last request */
	assert_true(receiver_wait(&E.rv, 2) >= 2);
	json_t *r = body_json(1);
	assert_int_equal(jint(r, "version"), 1);
	assert_string_equal(jstr(r, "status"), "resolved");
	assert_string_equal(jstr(r, "alert_id"), id);
	assert_string_equal(jstr(r, "rule"), rule);
	assert_string_equal(jstr(r, "state"), "closed");
	assert_string_equal(jstr(r, "previous_state"), "half_open");
	assert_string_equal(jstr(r, "severity"), "critical");
	assert_string_equal(jstr(r, "opened_at"), opened_at);
	assert_true(is_rfc3339_ms(jstr(r, "resolved_at")));
	assert_true(strcmp(jstr(r, "resolved_at"), opened_at) > 0);
	assert_string_equal(jstr(r, "reason"), quiet);
	assert_int_equal(jint(r, "notice"), 1);
	assert_string_equal(jstr(r, "collector"), "errqd-itest");
	errq_snprintf(want, sizeof(want), "%s:resolved:1", id);
	assert_header(1, "Idempotency-Key", want);
	assert_header(1, "Content-Type", "application/json");
	/* both recorded as delivered, and nothing else was made for the alert: the resolved one
	 * went out after every earlier notice of its alert (one alert's notices keep their order) */
	WAIT_FOR(delivery_status(id, "resolved") == 1);
	assert_int_equal(delivery_status(id, "firing"), 1);
	assert_int_equal(q_int("SELECT count(*) FROM deliveries WHERE lower(hex(alert_id)) = ?1", id), 2);
	assert_int_equal(receiver_count(&E.rv), 2);
	char *st = q_text("SELECT status || ' ' || coalesce(resolve_reason, '') FROM alerts WHERE lower(hex(alert_id)) = ?1",
			  id);
	assert_non_null(st);
	assert_true(strncmp(st, "resolved ", 9) == 0);
	assert_string_equal(st + 9, quiet);
	free(st);
	assert_null(circuit_alert(rule));

	/* the history, with the deadlines exactly where they belong */
	struct trans t[16];
	int n = transitions(rule, t, 16);
	const struct {
		int from, to;
		const char *reason;
	} exp[] = {
	    {0, 1, "failures 3 >= 3 in 60s"},  {1, 2, "recovery_timeout elapsed"}, {2, 1, "1 failure in probe"},
	    {1, 2, "recovery_timeout elapsed"}, {2, 0, quiet},
	};
	for (int i = 0; i < n; i++)
		fprintf(stderr, "transition %d: %d -> %d at %llu: %s\n", i, t[i].from, t[i].to,
			(unsigned long long)t[i].at, t[i].reason);
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(t[i].from, exp[i].from);
		assert_int_equal(t[i].to, exp[i].to);
		assert_string_equal(t[i].reason, exp[i].reason);
	}
	assert_int_equal(t[1].at - t[0].at, 1 * NS_PER_SEC); /* recovery_timeout */
	assert_int_equal(t[3].at - t[2].at, 2 * NS_PER_SEC); /* doubled by the backoff */
	assert_int_equal(t[4].at - t[3].at, (uint64_t)probe * NS_PER_SEC); /* the probe */

	fprintf(stderr, "firing body:   %s\n", E.rv.req[0].body);
	fprintf(stderr, "resolved body: %s\n", E.rv.req[1].body);
	json_decref(f);
	json_decref(r);
}

/* ---- 2. 503, 503, 200: delivered once, three identical requests ---- */

static void test_retried_until_2xx(void **state)
{
	start_receiver(0);
	receiver_script(&E.rv, 503, 0);
	receiver_script(&E.rv, 503, 0);
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: ops\n"
		   "    type: webhook\n"
		   "    url: http://127.0.0.1:%d/alerts\n"
		   "    max_attempts: 5\n"
		   "rules:\n"
		   "  - name: retry\n"
		   "    match: {service: svc-retry}\n"
		   "    trip: {failures: 1, window: 60s}\n"
		   "    notify: [ops]\n",
		   E.rv.port);
	start_errqd();
	send_failures(1, "svc-retry", "ConnectionError", NULL, NULL);
	char *id = circuit_alert("retry");
	assert_non_null(id);
	WAIT_FOR(delivery_status(id, "firing") == 1);
	assert_int_equal(delivery_attempts(id, "firing"), 3);
	assert_int_equal(q_int("SELECT http_status FROM deliveries WHERE lower(hex(alert_id)) = ?1", id), 200);
	assert_int_equal(receiver_count(&E.rv), 3);
	char want[128];
	errq_snprintf(want, sizeof(want), "%s:firing:1", id);
	for (int i = 0; i < 3; i++) {
		assert_header(i, "Idempotency-Key", want);
		assert_string_equal(E.rv.req[i].body, E.rv.req[0].body);
	}
	assert_int_equal(E.rv.req[0].status, 503);
	assert_int_equal(E.rv.req[1].status, 503);
	assert_int_equal(E.rv.req[2].status, 200);
	free(id);
}

/* A notifier whose receiver is slow to accept does not hold up the same alert's notice to
 * another notifier (order is per alert *and* notifier). */
static void test_notifiers_independent(void **state)
{
	start_receiver(0);
	receiver_script(&E.rv, 503, 5); /* ops: come back in 5 s */
	struct http_receiver pager;
	memset(&pager, 0, sizeof(pager));
	assert_int_equal(receiver_start(&pager, 0), 0);
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: ops\n"
		   "    type: webhook\n"
		   "    url: http://127.0.0.1:%d/alerts\n"
		   "  - name: pager\n"
		   "    type: webhook\n"
		   "    url: http://127.0.0.1:%d/pager\n"
		   "rules:\n"
		   "  - name: both\n"
		   "    match: {service: svc-both}\n"
		   "    trip: {failures: 1, window: 60s}\n"
		   "    notify: [ops, pager]\n",
		   E.rv.port, pager.port);
	start_errqd();
	send_failures(1, "svc-both", "ConnectionError", NULL, NULL);
	/* pager gets it while ops still waits out its Retry-After (both first requests have
	 * arrived before they are compared: either may come first) */
	assert_int_equal(receiver_wait(&pager, 1), 1);
	assert_true(receiver_wait(&E.rv, 1) >= 1);
	assert_int_equal(receiver_count(&E.rv), 1);
	assert_int_equal(E.rv.req[0].status, 503);
	assert_true(pager.req[0].at_ns < E.rv.req[0].at_ns + 4 * ERRQ_NS_PER_SEC);
	/* and ops gets it after */
	assert_int_equal(receiver_wait(&E.rv, 2), 2);
	assert_true(E.rv.req[1].at_ns >= E.rv.req[0].at_ns + 4 * ERRQ_NS_PER_SEC);
	assert_string_equal(E.rv.req[1].body, pager.req[0].body);
	receiver_stop(&pager);
}

/* ---- 3. the receiver is down; errqd restarts; the receiver comes back ---- */

static int64_t delivery_updated(const char *alert_hex)
{
	return q_int("SELECT updated_ns FROM deliveries WHERE lower(hex(alert_id)) = ?1", alert_hex);
}

static void test_receiver_down_across_restart(void **state)
{
	/* a port with nothing listening */
	start_receiver(0);
	int port = E.rv.port;
	stop_receiver();
	/* max_attempts 2: the per-destination breaker opens after min(3, max_attempts) straight
	 * failures, so the refused connection that uses the last attempt opens it; an attempt
	 * used up while the breaker is open does not dead-letter, and its probes use none.  A row
	 * still pending with 2 attempts after a probe shows the breaker held it. */
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: ops\n"
		   "    type: webhook\n"
		   "    url: http://127.0.0.1:%d/alerts\n"
		   "    timeout: 1s\n"
		   "    max_attempts: 2\n"
		   "rules:\n"
		   "  - name: down\n"
		   "    match: {service: svc-down}\n"
		   "    trip: {failures: 2, window: 60s}\n"
		   "    notify: [ops]\n",
		   port);
	start_errqd();
	send_failures(2, "svc-down", "ConnectionError", NULL, NULL);
	char *id = circuit_alert("down");
	assert_non_null(id);
	WAIT_FOR(delivery_attempts(id, "firing") >= 1);
	assert_int_equal(delivery_status(id, "firing"), 0); /* pending, not dead */
	WAIT_FOR(delivery_attempts(id, "firing") >= 2);
	assert_int_equal(delivery_attempts(id, "firing"), 2);
	assert_int_equal(delivery_status(id, "firing"), 0);
	int64_t upd = delivery_updated(id);
	WAIT_FOR(delivery_updated(id) != upd); /* the breaker's probe, refused too */
	assert_int_equal(delivery_attempts(id, "firing"), 2);
	assert_int_equal(delivery_status(id, "firing"), 0);
	assert_int_equal(errqd_stop(&E.d, SIGTERM), 0);
	assert_int_equal(delivery_status(id, "firing"), 0);
	int64_t before = delivery_attempts(id, "firing");

	start_receiver(port);
	start_errqd(); /* same directory: the same database and config */
	WAIT_FOR(delivery_status(id, "firing") == 1);
	assert_int_equal(receiver_count(&E.rv), 1);
	char want[128];
	errq_snprintf(want, sizeof(want), "%s:firing:1", id);
	assert_header(0, "Idempotency-Key", want);
	json_t *b = body_json(0);
	assert_string_equal(jstr(b, "alert_id"), id);
	assert_string_equal(jstr(b, "status"), "firing");
	json_decref(b);
	/* the attempts made before the restart count: one more went through */
	assert_int_equal(delivery_attempts(id, "firing"), before + 1);
	assert_int_equal(q_int("SELECT count(*) FROM deliveries WHERE lower(hex(alert_id)) = ?1", id), 1);
	free(id);
}

/* ---- 4. a silence holds the firing back until it ends ---- */

static void test_silence(void **state)
{
	start_receiver(0);
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: ops\n"
		   "    type: webhook\n"
		   "    url: http://127.0.0.1:%d/alerts\n"
		   "rules:\n"
		   "  - name: quiet\n"
		   "    match: {service: svc-quiet}\n"
		   "    group_by: [service]\n"
		   "    trip: {failures: 1, window: 60s}\n"
		   "    recovery_timeout: 60s\n"
		   "    notify: [ops]\n",
		   E.rv.port);
	/* a first run makes the schema; the silence goes in while errqd is stopped.  The second
	 * run must start and trip the rule before the silence ends: the first run measures what
	 * that takes here (a start and one batch), and the silence lasts 10 times as long (at
	 * least 3 s, 15 s under valgrind), so a loaded machine gets a longer silence, not a
	 * failure */
	uint64_t t0 = errq_mono_ns();
	start_errqd();
	send_failures(1, "svc-other", "ValueError", NULL, NULL); /* matches no rule */
	uint64_t need = errq_mono_ns() - t0;
	assert_int_equal(errqd_stop(&E.d, SIGTERM), 0);
	uint64_t len = (under_valgrind() ? 15 : 3) * NS_PER_SEC;
	if (len < 10 * need)
		len = 10 * need;
	fprintf(stderr, "start and trip took %llu ms: a silence of %llu ms\n",
		(unsigned long long)(need / ERRQ_NS_PER_MS), (unsigned long long)(len / ERRQ_NS_PER_MS));
	uint64_t now = errq_now_ns(), ends = now + len;
	/* the silence written behind the stopped collector's back (SQLite or PostgreSQL: the same
	 * columns); integers only in the SQL */
	char sql[512];
	errq_snprintf(sql, sizeof(sql),
		      "INSERT INTO silences (rule, matchers, comment, created_by, created_ns, starts_ns, ends_ns, "
		      "expired_ns) VALUES ('quiet', '', 'itest', 'itest', %lld, %lld, %lld, 0)",
		      (long long)now, (long long)now, (long long)ends);
	struct harness_db *db = harness_db_open_rw(E.d.db);
	assert_non_null(db);
	assert_int_equal(harness_db_exec(db, sql), 0);
	harness_db_close(db);

	start_errqd();
	send_failures(1, "svc-quiet", "ValueError", NULL, NULL);
	char *id = circuit_alert("quiet");
	assert_non_null(id);
	/* recorded as silenced in the same transaction as the trip */
	assert_int_equal(delivery_status(id, "firing"), 3);
	if (errq_now_ns() >= ends)
		fail_msg("errqd started too slowly: the silence was over before the rule tripped");
	assert_int_equal(receiver_count(&E.rv), 0);
	/* the silence ends: the firing goes out then, once (waiting past its end: under
	 * valgrind the silence alone can outlast receiver_wait's deadline) */
	while (receiver_count(&E.rv) < 1 && errq_now_ns() < ends)
		harness_msleep(20);
	assert_true(receiver_wait(&E.rv, 1) >= 1);
	assert_true(arrival_realtime(0) + 5 * ERRQ_NS_PER_MS >= ends);
	WAIT_FOR(delivery_status(id, "firing") == 1);
	assert_int_equal(receiver_count(&E.rv), 1);
	assert_int_equal(q_int("SELECT count(*) FROM deliveries WHERE lower(hex(alert_id)) = ?1", id), 1);
	json_t *b = body_json(0);
	assert_string_equal(jstr(b, "status"), "firing");
	assert_string_equal(jstr(b, "alert_id"), id);
	json_decref(b);
	char want[128];
	errq_snprintf(want, sizeof(want), "%s:firing:1", id);
	assert_header(0, "Idempotency-Key", want);
	free(id);
}

/* ---- 5. SIGHUP: unchanged definitions keep their circuits, changed ones resolve ---- */

#define RELOAD_NOTIFIERS                                                                               \
	"notifiers:\n"                                                                                 \
	"  - name: ops\n"                                                                              \
	"    type: webhook\n"                                                                          \
	"    url: http://127.0.0.1:%d/alerts\n"                                                        \
	"  - name: journal\n"                                                                          \
	"    type: log\n"

static void test_reload(void **state)
{
	start_receiver(0);
	write_file(E.cfg,
		   RELOAD_NOTIFIERS
		   "rules:\n"
		   "  - name: reload-a\n"
		   "    match: {service: svc-reload-a}\n"
		   "    trip: {failures: 2, window: 60s}\n"
		   "    recovery_timeout: 60s\n"
		   "    severity: warning\n"
		   "    notify: [ops]\n",
		   E.rv.port);
	start_errqd();
	send_failures(2, "svc-reload-a", "IOError", NULL, NULL);
	assert_int_equal(circuit_state("reload-a"), 1);
	char *id = circuit_alert("reload-a");
	assert_non_null(id);
	assert_true(receiver_wait(&E.rv, 1) >= 1);
	int64_t next_ns = q_int("SELECT next_ns FROM circuits WHERE rule = 'reload-a'", NULL);

	/* same definition (match, group_by, trip); other keys changed; a rule added */
	write_file(E.cfg,
		   RELOAD_NOTIFIERS
		   "rules:\n"
		   "  - name: reload-a\n"
		   "    match: {service: svc-reload-a}\n"
		   "    trip: {failures: 2, window: 60s}\n"
		   "    recovery_timeout: 120s\n"
		   "    severity: critical\n"
		   "    notify: [ops, journal]\n"
		   "  - name: reload-b\n"
		   "    match: {service: svc-reload-b}\n"
		   "    trip: {failures: 1, window: 60s}\n"
		   "    notify: [ops]\n",
		   E.rv.port);
	assert_int_equal(kill(E.d.pid, SIGHUP), 0);
	WAIT_FOR(log_count("\"rules reloaded\"") == 1);
	assert_int_equal(circuit_state("reload-a"), 1);
	char *id2 = circuit_alert("reload-a");
	assert_non_null(id2);
	assert_string_equal(id2, id); /* the same incident */
	free(id2);
	assert_int_equal(q_int("SELECT next_ns FROM circuits WHERE rule = 'reload-a'", NULL), next_ns); /* not moved */
	assert_int_equal(q_int("SELECT count(*) FROM transitions WHERE rule = 'reload-a'", NULL), 1);
	assert_int_equal(q_int("SELECT count(*) FROM deliveries WHERE lower(hex(alert_id)) = ?1", id), 1);
	/* the new rule works */
	send_failures(1, "svc-reload-b", "IOError", NULL, NULL);
	assert_int_equal(circuit_state("reload-b"), 1);
	assert_true(receiver_wait(&E.rv, 2) >= 2);
	json_t *b = body_json(1);
	assert_string_equal(jstr(b, "rule"), "reload-b");
	assert_string_equal(jstr(b, "status"), "firing");
	json_decref(b);

	/* trip.failures changed: the circuit closes (rule_changed), its alert resolves */
	write_file(E.cfg,
		   RELOAD_NOTIFIERS
		   "rules:\n"
		   "  - name: reload-a\n"
		   "    match: {service: svc-reload-a}\n"
		   "    trip: {failures: 3, window: 60s}\n"
		   "    recovery_timeout: 120s\n"
		   "    severity: critical\n"
		   "    notify: [ops, journal]\n"
		   "  - name: reload-b\n"
		   "    match: {service: svc-reload-b}\n"
		   "    trip: {failures: 1, window: 60s}\n"
		   "    notify: [ops]\n",
		   E.rv.port);
	assert_int_equal(kill(E.d.pid, SIGHUP), 0);
	WAIT_FOR(log_count("\"rules reloaded\"") == 2);
	assert_true(receiver_wait(&E.rv, 3) >= 3);
	b = body_json(2);
	assert_string_equal(jstr(b, "status"), "resolved");
	assert_string_equal(jstr(b, "alert_id"), id);
	assert_string_equal(jstr(b, "rule"), "reload-a");
	assert_string_equal(jstr(b, "state"), "closed");
	assert_string_equal(jstr(b, "previous_state"), "open");
	assert_non_null(strstr(jstr(b, "reason"), "rule_changed"));
	assert_string_equal(jstr(b, "severity"), "critical"); /* the kept rule's new severity */
	assert_true(is_rfc3339_ms(jstr(b, "resolved_at")));
	fprintf(stderr, "resolved on reload: %s\n", E.rv.req[2].body);
	json_decref(b);
	char want[128];
	errq_snprintf(want, sizeof(want), "%s:resolved:1", id);
	assert_header(2, "Idempotency-Key", want);
	struct trans t[8];
	int n = transitions("reload-a", t, 8);
	assert_int_equal(n, 2);
	assert_int_equal(t[1].from, 1);
	assert_int_equal(t[1].to, 0);
	assert_non_null(strstr(t[1].reason, "rule_changed"));
	assert_int_equal(circuit_state("reload-a"), -1); /* starts afresh */
	assert_int_equal(circuit_state("reload-b"), 1);  /* untouched */
	WAIT_FOR(delivery_status(id, "resolved") == 1);
	/* and, with the notify list of the first reload, to the log notifier as well */
	assert_int_equal(q_int("SELECT count(*) FROM deliveries WHERE lower(hex(alert_id)) = ?1 AND kind = 'resolved'",
			       id),
			 2);
	WAIT_FOR(log_count("\"notifier\":\"journal\"") == 1);

	/* a file that does not parse: refused, the rules in force stay */
	write_file(E.cfg, "rules: [ {name: broken\n");
	assert_int_equal(kill(E.d.pid, SIGHUP), 0);
	WAIT_FOR(log_count("rules reload refused") == 1);
	assert_true(errqd_running());
	assert_int_equal(log_count("\"rules reloaded\""), 2);
	/* still alerting, with trip.failures 3 */
	send_failures(2, "svc-reload-a", "IOError", NULL, NULL);
	assert_int_equal(circuit_state("reload-a"), 0);
	send_failures(1, "svc-reload-a", "IOError", NULL, NULL);
	assert_int_equal(circuit_state("reload-a"), 1);
	assert_true(receiver_wait(&E.rv, 4) >= 4);
	b = body_json(3);
	assert_string_equal(jstr(b, "rule"), "reload-a");
	assert_string_equal(jstr(b, "status"), "firing");
	assert_string_equal(jstr(b, "severity"), "critical");
	assert_string_equal(jstr(b, "reason"), "failures 3 >= 3 in 60s");
	assert_string_not_equal(jstr(b, "alert_id"), id);
	json_decref(b);
	assert_int_equal(receiver_count(&E.rv), 4);
	free(id);
}

/* ---- 6. failure_rate from outcomes, each batch counted once ---- */

struct csnap {
	int64_t state, failures, transitions;
	char *saved;
};

static struct csnap snap(const char *task_key)
{
	struct csnap s;
	s.state = q_int("SELECT state FROM circuits WHERE rule = 'rate' AND key = ?1", task_key);
	s.failures = q_int("SELECT failures FROM circuits WHERE rule = 'rate' AND key = ?1", task_key);
	s.saved = q_text("SELECT hex(saved) FROM circuits WHERE rule = 'rate' AND key = ?1", task_key);
	s.transitions = q_int("SELECT count(*) FROM transitions WHERE rule = 'rate' AND key = ?1", task_key);
	return s;
}

static void test_failure_rate_outcomes(void **state)
{
	start_receiver(0);
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: ops\n"
		   "    type: webhook\n"
		   "    url: http://127.0.0.1:%d/alerts\n"
		   "rules:\n"
		   "  - name: rate\n"
		   "    match: {service: svc-rate}\n"
		   "    group_by: [service, task]\n"
		   "    trip: {failure_rate: 0.5, min_calls: 10, window: 60s}\n"
		   "    notify: [ops]\n",
		   E.rv.port);
	start_errqd();
	uint8_t b1[16], b2[16], b3[16];
	errq_idgen_next(&G, errq_now_ns() / ERRQ_NS_PER_MS, b1);
	errq_idgen_next(&G, errq_now_ns() / ERRQ_NS_PER_MS, b2);
	errq_idgen_next(&G, errq_now_ns() / ERRQ_NS_PER_MS, b3);
	const char *k1 = "service=svc-rate,task=charge";

	/* 6 failed of 10 calls: 0.6 >= 0.5 with min_calls 10 */
	send_outcome("svc-rate", "charge", 4, 6, b1);
	assert_true(receiver_wait(&E.rv, 1) >= 1);
	json_t *f = body_json(0);
	assert_string_equal(jstr(f, "status"), "firing");
	assert_string_equal(jstr(f, "rule"), "rate");
	json_t *key = json_object_get(f, "key");
	assert_string_equal(jstr(key, "service"), "svc-rate");
	assert_string_equal(jstr(key, "task"), "charge");
	json_t *sample = json_object_get(f, "sample");
	assert_true(json_is_true(json_object_get(sample, "outcome")));
	assert_int_equal(jint(sample, "ok"), 4);
	assert_int_equal(jint(sample, "failed"), 6);
	fprintf(stderr, "failure_rate firing: %s\n", E.rv.req[0].body);
	json_decref(f);
	struct csnap a = snap(k1);
	assert_int_equal(a.state, 1);
	assert_int_equal(a.transitions, 1);
	assert_non_null(a.saved);

	/* the same batch again, other counts: skipped */
	send_outcome("svc-rate", "charge", 0, 50, b1);
	struct csnap b = snap(k1);
	assert_int_equal(b.state, a.state);
	assert_int_equal(b.failures, a.failures);
	assert_int_equal(b.transitions, a.transitions);
	assert_non_null(b.saved);
	assert_string_equal(b.saved, a.saved);
	free(a.saved);
	free(b.saved);

	/* on a closed circuit, where counting it twice would trip: 4 failed of 8 calls (under
	 * min_calls), the resend of that batch (6 more failed) is not counted, a new batch is */
	const char *k2 = "service=svc-rate,task=refund";
	send_outcome("svc-rate", "refund", 4, 4, b2);
	struct csnap c = snap(k2);
	assert_int_equal(c.state, 0);
	free(c.saved);
	send_outcome("svc-rate", "refund", 0, 6, b2);
	c = snap(k2);
	assert_int_equal(c.state, 0);
	assert_int_equal(c.transitions, 0);
	free(c.saved);
	send_outcome("svc-rate", "refund", 1, 1, b3); /* 10 calls, 5 failed: 0.5 >= 0.5 */
	c = snap(k2);
	assert_int_equal(c.state, 1);
	assert_int_equal(c.transitions, 1);
	free(c.saved);
	char *reason = q_text("SELECT reason FROM transitions WHERE rule = 'rate' AND key = ?1", k2);
	assert_non_null(reason);
	assert_non_null(strstr(reason, "over 10 calls"));
	free(reason);
	assert_true(receiver_wait(&E.rv, 2) >= 2);
	assert_int_equal(q_int("SELECT count(*) FROM outcome_batches", NULL), 3);
}

/* ---- 7. a config whose rules are wrong is refused at start, with file and line ---- */

static void test_startup_refusal(void **state)
{
	write_file(E.cfg,
		   "log_level: info\n"
		   "rules:\n"
		   "  - name: checkout-timeouts\n"
		   "    match: {service: checkout}\n"
		   "    trip:\n"
		   "      failures: 3\n"
		   "      window: 90x\n");
	char *err = NULL;
	const char *check[] = {"--config", E.cfg, "--check-config", NULL};
	int rc = errqd_run_once(check, &err);
	fprintf(stderr, "--check-config: exit %d: %s", rc, err);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(err, E.cfg));
	assert_non_null(strstr(err, "line 7"));
	assert_non_null(strstr(err, "trip.window"));
	assert_non_null(strstr(err, "90x"));
	free(err);

	char db[400], portfile[400];
	errq_snprintf(db, sizeof(db), "%s/refused.db", E.d.dir);
	errq_snprintf(portfile, sizeof(portfile), "%s/refused.port", E.d.dir);
	const char *run[] = {"--config", E.cfg, "--listen", "127.0.0.1:0", "--db", db, "--port-file", portfile, NULL};
	err = NULL;
	rc = errqd_run_once(run, &err);
	fprintf(stderr, "start: exit %d: %s", rc, err);
	assert_int_not_equal(rc, 0);
	assert_true(rc < 128); /* an exit, not a crash */
	assert_non_null(strstr(err, E.cfg));
	assert_non_null(strstr(err, "line 7"));
	free(err);
	assert_int_equal(access(portfile, F_OK), -1); /* it never served */
	assert_int_equal(access(db, F_OK), -1);       /* nor touched a database */
}

int main(void)
{
	grpc_init();
	errq_idgen_init(&G);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retried_until_2xx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notifiers_independent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_receiver_down_across_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_rate_outcomes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_startup_refusal, setup, teardown),
	};
	if (getenv("ERRQ_TEST_FILTER")) /* e.g. ERRQ_TEST_FILTER=test_reload */
		cmocka_set_test_filter(getenv("ERRQ_TEST_FILTER"));
	int rc = cmocka_run_group_tests_name("integration_alerts", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
