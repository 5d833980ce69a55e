/* Unit: server/alerts.c — the rule engine driven exactly as the ingest writer drives it, on
 * the test's thread, with a fake clock stepped by hand and a real SQLite store: events go
 * in with store_txn_add_event inside store_txn_begin .. commit (or rollback), with
 * alerts_hook_txn inside and alerts_hook_txn_end after; timers run in alerts_hook_tick.
 * Notices go to a `log` notifier: the log is redirected to a file and its "alert" lines
 * parsed; the tables are read on a second, read-only SQLite connection.  Requests (reload,
 * replay, silences) run inline (alerts_opts.inline_store, no ingest). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "alerts.h"
#include "errq_hash.h"
#include "errq_id.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "grouping.h"
#include "ingest.h"
#include "rules.h"
#include "storage.h"
#include "storage_alerts.h"

#define NS UINT64_C(1000000000)
#define S(x) ((uint64_t)(x) * NS)
#define MS(x) ((uint64_t)(x) * UINT64_C(1000000))
#define T0 S(1800000000) /* on a second boundary */

/* ---- the fixture ---- */

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

static struct {
	char dir[64], db[128], cfg[128], logp[128];
	int log_fd;
	struct store *s;
	struct alerts *a;
	sqlite3 *ro;
	uint32_t next_id;
} F;

#define MAX_LINES 256
static json_t *L[MAX_LINES]; /* the "alert" bodies logged so far, in order */
static size_t nL;

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/errq-unit-alerts-XXXXXX");
	if (!mkdtemp(F.dir))
		return -1;
	snprintf(F.db, sizeof(F.db), "%s/t.db", F.dir);
	snprintf(F.cfg, sizeof(F.cfg), "%s/errqd.yaml", F.dir);
	snprintf(F.logp, sizeof(F.logp), "%s/log", F.dir);
	F.log_fd = open(F.logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (F.log_fd < 0)
		return -1;
	errq_log_set_level(ERRQ_LOG_INFO);
	errq_log_set_fd(F.log_fd);
	fake_now = T0;
	F.next_id = 1;
	nL = 0;
	return 0;
}

static void stop(void)
{
	alerts_free(F.a);
	store_close(F.s);
	F.a = NULL;
	F.s = NULL;
}

static int teardown(void **state)
{
	if (F.a || F.s)
		stop();
	if (F.ro)
		sqlite3_close(F.ro);
	F.ro = NULL;
	errq_log_set_fd(2);
	close(F.log_fd);
	for (size_t i = 0; i < nL; i++)
		json_decref(L[i]);
	nL = 0;
	const char *sfx[] = {"", "-wal", "-shm"};
	char p[200];
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", F.db, sfx[i]);
		unlink(p);
	}
	unlink(F.cfg);
	unlink(F.logp);
	return rmdir(F.dir);
}

static void write_cfg(const char *yaml)
{
	FILE *f = fopen(F.cfg, "w");
	assert_non_null(f);
	assert_int_equal(fputs(yaml, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Opens the store and a new engine on the rules of F.cfg, then the first tick (the load). */
static void start(void)
{
	char err[1024];
	struct store_opts so = {.path = F.db};
	if (store_open(&F.s, &so, err, sizeof(err)))
		fail_msg("store_open: %s", err);
	struct ruleset *rs = NULL;
	if (rules_load(&rs, F.cfg, err, sizeof(err)))
		fail_msg("rules_load: %s", err);
	struct alerts_opts o = {
	    .config_path = F.cfg,
	    .collector = "unit",
	    .clock = fake_clock,
	    .inline_store = F.s,
	};
	if (alerts_new(&F.a, &o, rs, F.cfg, err, sizeof(err)))
		fail_msg("alerts_new: %s", err);
	if (!F.ro)
		assert_int_equal(sqlite3_open_v2(F.db, &F.ro, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	alerts_hook_tick(F.a, F.s);
}

static uint64_t tick_at(uint64_t t)
{
	fake_now = t;
	return alerts_hook_tick(F.a, F.s);
}

/* ---- ingest batches built by hand ---- */

#define TB_MAX 16
struct tb {
	struct ingest_batch b;
	Errq__V1__ReportRequest req;
	Errq__V1__TaskFailure tf[TB_MAX];
	Errq__V1__TaskFailure *tfp[TB_MAX];
	Errq__V1__Outcome oc[TB_MAX];
	Errq__V1__Outcome *ocp[TB_MAX];
	struct ingest_event ev[TB_MAX];
	uint8_t ids[TB_MAX][16];
	uint8_t batch_id[16];
};

static struct tb *tb_new(void)
{
	struct tb *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	errq__v1__report_request__init(&t->req);
	t->b.req = &t->req;
	t->b.events = t->ev;
	t->req.failures = t->tfp;
	t->req.outcomes = t->ocp;
	return t;
}

static void make_id(uint8_t out[16], uint32_t n)
{
	memset(out, 0, 16);
	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	out[6] = 0x70;
	out[8] = 0x80;
	out[15] = 0x5a;
}

static void id_hex(uint32_t n, char hex[ERRQ_ID_HEX_BUFSZ])
{
	uint8_t id[16];
	make_id(id, n);
	errq_hex_encode(id, 16, hex);
}

/* A failure with event id number `id`, received now. */
static void tb_fail_id(struct tb *t, uint32_t id, const char *service, const char *error_type)
{
	size_t i = t->b.n_events++;
	assert_true(i < TB_MAX);
	Errq__V1__TaskFailure *tf = &t->tf[i];
	errq__v1__task_failure__init(tf);
	make_id(t->ids[i], id);
	tf->event_id.data = t->ids[i];
	tf->event_id.len = 16;
	tf->time_unix_nano = fake_now - MS(2);
	tf->service = (char *)service;
	tf->environment = (char *)"prod";
	tf->host = (char *)"vm";
	tf->task = (char *)"work";
	tf->error_type = (char *)error_type;
	tf->error_code = (char *)"E1";
	tf->message = (char *)"it failed";
	tf->attempt = 1;
	t->tfp[i] = tf;
	t->req.n_failures = i + 1;
	struct ingest_event *ev = &t->ev[i];
	ev->tf = tf;
	ev->received_ns = fake_now;
	ev->result = -1;
	snprintf(ev->v.fingerprint, sizeof(ev->v.fingerprint), "%016llx",
		 (unsigned long long)errq_fnv64(ERRQ_FNV64_INIT, error_type, strlen(error_type)));
}

static uint32_t tb_fail(struct tb *t, const char *service, const char *error_type)
{
	uint32_t id = F.next_id++;
	tb_fail_id(t, id, service, error_type);
	return id;
}

static void tb_outcome(struct tb *t, const char *service, const char *task, uint64_t ok, uint64_t failed)
{
	size_t i = t->req.n_outcomes++;
	assert_true(i < TB_MAX);
	Errq__V1__Outcome *o = &t->oc[i];
	errq__v1__outcome__init(o);
	o->service = (char *)service;
	o->task = (char *)task;
	o->ok = ok;
	o->failed = failed;
	o->window_start_unix_nano = fake_now - S(10);
	o->window_seconds = 10;
	t->ocp[i] = o;
}

static void tb_batch_id(struct tb *t, uint8_t n)
{
	memset(t->batch_id, n, sizeof(t->batch_id));
	t->req.batch_id.data = t->batch_id;
	t->req.batch_id.len = sizeof(t->batch_id);
}

/* One ingest transaction of batch t, as write_batches() runs it. */
static void tb_run(struct tb *t, bool commit)
{
	assert_int_equal(store_txn_begin(F.s), 0);
	for (size_t i = 0; i < t->b.n_events; i++) {
		struct ingest_event *ev = &t->ev[i];
		const Errq__V1__TaskFailure *tf = ev->tf;
		struct store_event se = {
		    .event_id = tf->event_id.data,
		    .time_ns = tf->time_unix_nano,
		    .received_ns = ev->received_ns,
		    .service = tf->service,
		    .environment = tf->environment,
		    .host = tf->host,
		    .task = tf->task,
		    .error_type = tf->error_type,
		    .error_code = tf->error_code,
		    .message = tf->message,
		    .fingerprint = ev->v.fingerprint,
		    .grouping_version = GROUPING_VERSION,
		    .attempt = tf->attempt,
		};
		int r = store_txn_add_event(F.s, &se);
		if (r < 0)
			fail_msg("store_txn_add_event: %s", store_errmsg(F.s));
		ev->result = (int8_t)r;
	}
	assert_int_equal(alerts_hook_txn(F.a, F.s, &t->b), 0);
	if (commit) {
		if (store_txn_commit(F.s))
			fail_msg("store_txn_commit: %s", store_errmsg(F.s));
		alerts_hook_txn_end(F.a, F.s, true);
	} else {
		store_txn_rollback(F.s);
		alerts_hook_txn_end(F.a, F.s, false);
	}
}

static void tb_commit(struct tb *t)
{
	tb_run(t, true);
	free(t);
}

/* n failures of (service, error_type) received now, in one committed batch. */
static uint32_t fail_now(const char *service, const char *error_type, int n)
{
	struct tb *t = tb_new();
	uint32_t id = 0;
	for (int i = 0; i < n; i++)
		id = tb_fail(t, service, error_type);
	tb_commit(t);
	return id;
}

/* ---- reading the tables (a read-only connection of our own) ---- */

static int64_t q1(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t q1(const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(F.ro, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(F.ro));
	int rc = sqlite3_step(st);
	int64_t v = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL ? sqlite3_column_int64(st, 0) : -1;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		fail_msg("%s: %s", sql, sqlite3_errmsg(F.ro));
	sqlite3_finalize(st);
	return v;
}

/* The first column of the first row as text into out ("" when none). */
static const char *qs(char *out, size_t outsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *qs(char *out, size_t outsz, const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(F.ro, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(F.ro));
	out[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

/* The state of circuit (rule, key), -1 when it has no row. */
static int64_t cstate(const char *rule, const char *key)
{
	return q1("SELECT state FROM circuits WHERE rule = '%s' AND key = '%s'", rule, key);
}

static int64_t cnext(const char *rule, const char *key)
{
	return q1("SELECT next_ns FROM circuits WHERE rule = '%s' AND key = '%s'", rule, key);
}

/* The newest alert of (rule, key): its id as hex. */
static const char *alert_hex(char out[ERRQ_ID_HEX_BUFSZ], const char *rule, const char *key)
{
	qs(out, ERRQ_ID_HEX_BUFSZ,
	   "SELECT lower(hex(alert_id)) FROM alerts WHERE rule = '%s' AND key = '%s' ORDER BY id DESC LIMIT 1", rule,
	   key);
	assert_int_equal(strlen(out), 32);
	return out;
}

static void alert_blob(uint8_t out[16], const char *hex)
{
	sqlite3_stmt *st;
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT alert_id FROM alerts WHERE lower(hex(alert_id)) = '%s'", hex);
	assert_int_equal(sqlite3_prepare_v2(F.ro, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_bytes(st, 0), 16);
	memcpy(out, sqlite3_column_blob(st, 0), 16);
	sqlite3_finalize(st);
}

static const char *last_reason(char *out, size_t outsz, const char *rule, const char *key)
{
	return qs(out, outsz, "SELECT reason FROM transitions WHERE rule = '%s' AND key = '%s' ORDER BY id DESC LIMIT 1",
		  rule, key);
}

static int64_t n_pending(void)
{
	return q1("SELECT count(*) FROM deliveries WHERE status = 0");
}

/* Ticks until the notifier's reports are recorded (no delivery pending). */
static void settle(void)
{
	uint64_t end = errq_mono_ns() + S(10);
	for (;;) {
		alerts_hook_tick(F.a, F.s);
		if (n_pending() == 0)
			return;
		if (errq_mono_ns() > end)
			fail_msg("deliveries still pending after 10 s");
		sleep_ms(5);
	}
}

/* ---- the log notifier's lines ---- */

static void log_refresh(void)
{
	for (size_t i = 0; i < nL; i++)
		json_decref(L[i]);
	nL = 0;
	FILE *f = fopen(F.logp, "r");
	assert_non_null(f);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] != '\n')
			break; /* being written */
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		if (!j)
			fail_msg("log line is not JSON (%s): %s", je.text, line);
		const char *msg = json_string_value(json_object_get(j, "msg"));
		json_t *al = json_object_get(j, "alert");
		if (msg && !strcmp(msg, "alert")) {
			assert_non_null(al);
			assert_true(json_is_object(al)); /* the body, as JSON, not a string */
			assert_string_equal(json_string_value(json_object_get(j, "notifier")), "journal");
			assert_true(nL < MAX_LINES);
			L[nL++] = json_incref(al);
		}
		json_decref(j);
	}
	free(line);
	fclose(f);
}

/* Waits until n alert lines have been logged in all. */
static void wait_lines(size_t n)
{
	uint64_t end = errq_mono_ns() + S(10);
	for (;;) {
		log_refresh();
		if (nL >= n)
			return;
		if (errq_mono_ns() > end)
			fail_msg("%zu alert lines logged, waited for %zu", nL, n);
		sleep_ms(5);
	}
}

/* Once every delivery is reported (a line that should not exist would be a pending delivery
 * first, and settle waits it out): exactly n alert lines in all. */
static void expect_lines(size_t n)
{
	settle();
	log_refresh();
	if (nL != n)
		fail_msg("%zu alert lines logged, expected %zu", nL, n);
}

static const char *bs(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_string(v))
		fail_msg("body field '%s' is not a string", k);
	return json_string_value(v);
}

static long long bi(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_integer(v))
		fail_msg("body field '%s' is not an integer", k);
	return json_integer_value(v);
}

static void expect_time(json_t *o, const char *k, uint64_t ns)
{
	char t[ERRQ_RFC3339_BUFSZ];
	assert_string_equal(bs(o, k), errq_fmt_rfc3339(t, ns));
}

/* The logged body with this alert id, status and notice number; NULL when none. */
static json_t *find_line(const char *alert_id, const char *status, long long notice)
{
	json_t *found = NULL;
	for (size_t i = 0; i < nL; i++)
		if (!strcmp(bs(L[i], "alert_id"), alert_id) && !strcmp(bs(L[i], "status"), status) &&
		    bi(L[i], "notice") == notice) {
			if (found) { /* one line per notice */
				for (size_t j = 0; j < nL; j++) {
					char *d = json_dumps(L[j], JSON_COMPACT);
					print_error("line %zu: %s\n", j, d);
					free(d);
				}
				fail_msg("two lines for notice %s:%s:%lld", alert_id, status, notice);
			}
			found = L[i];
		}
	return found;
}

static size_t count_lines(const char *alert_id, const char *status)
{
	size_t n = 0;
	for (size_t i = 0; i < nL; i++)
		n += !strcmp(bs(L[i], "alert_id"), alert_id) && !strcmp(bs(L[i], "status"), status);
	return n;
}

/* ---- requests ---- */

struct answered {
	bool called;
	struct alerts_answer ans;
};

static void on_answer(void *arg, const struct alerts_answer *ans)
{
	struct answered *w = arg;
	assert_false(w->called); /* once */
	w->called = true;
	w->ans = *ans;
}

static struct alerts_answer do_reload(void)
{
	struct answered w = {.called = false};
	alerts_reload(F.a, on_answer, &w);
	assert_true(w.called); /* answered inline */
	return w.ans;
}

static struct alerts_answer silence(const char *rule, const char *matchers, uint64_t duration_ns)
{
	struct alerts_silence_req req;
	memset(&req, 0, sizeof(req));
	snprintf(req.rule, sizeof(req.rule), "%s", rule);
	snprintf(req.matchers, sizeof(req.matchers), "%s", matchers);
	snprintf(req.comment, sizeof(req.comment), "unit test");
	snprintf(req.created_by, sizeof(req.created_by), "test@host");
	req.duration_ns = duration_ns;
	struct answered w = {.called = false};
	alerts_silence_add(F.a, &req, on_answer, &w);
	assert_true(w.called);
	return w.ans;
}

static struct alerts_answer expire(int64_t id)
{
	struct answered w = {.called = false};
	alerts_silence_expire(F.a, id, on_answer, &w);
	assert_true(w.called);
	return w.ans;
}

static struct alerts_answer replay(const uint8_t id[16])
{
	struct answered w = {.called = false};
	alerts_replay(F.a, id, on_answer, &w);
	assert_true(w.called);
	return w.ans;
}

/* ---- rules ---- */

static const char CFG_BASIC[] =
    "notifiers:\n"
    "  - name: journal\n"
    "    type: log\n"
    "rules:\n"
    "  - name: r1\n"
    "    match: {service: checkout}\n"
    "    group_by: [service, error_type]\n"
    "    trip: {failures: 3, window: 60s}\n"
    "    recovery_timeout: 60s\n"
    "    half_open: {probe: 30s, failures: 1}\n"
    "    backoff: {factor: 2, max: 30m}\n"
    "    severity: critical\n"
    "    notify: [journal]\n";

#define KT "service=checkout,error_type=TimeoutError"
#define KV "service=checkout,error_type=ValueError"

/* ---- 1. the trip ---- */

static void test_trip_on_nth_failure(void **state)
{
	write_cfg(CFG_BASIC);
	start();
	fake_now = T0 + S(1);
	uint32_t id1 = fail_now("checkout", "TimeoutError", 1);
	fake_now = T0 + S(2);
	uint32_t id2 = fail_now("checkout", "TimeoutError", 1);
	assert_int_equal(q1("SELECT failures FROM circuits WHERE key = '%s'", KT), 2);

	/* another key of the rule, a service the rule does not match, and two resent events */
	fake_now = T0 + S(2) + MS(500);
	struct tb *t = tb_new();
	tb_fail(t, "checkout", "ValueError");
	tb_fail(t, "checkout", "ValueError");
	tb_fail(t, "payments", "TimeoutError");
	tb_fail_id(t, id1, "checkout", "TimeoutError");
	tb_fail_id(t, id2, "checkout", "TimeoutError");
	tb_run(t, true);
	assert_int_equal(t->ev[0].result, 1);
	assert_int_equal(t->ev[2].result, 1);
	assert_int_equal(t->ev[3].result, 0); /* duplicates: the store says so */
	assert_int_equal(t->ev[4].result, 0);
	free(t);
	assert_int_equal(q1("SELECT count(*) FROM alerts"), 0);
	assert_int_equal(q1("SELECT count(*) FROM transitions"), 0);
	assert_int_equal(cstate("r1", KT), CIRCUIT_CLOSED);
	assert_int_equal(q1("SELECT failures FROM circuits WHERE key = '%s'", KT), 2);
	assert_int_equal(q1("SELECT failures FROM circuits WHERE key = '%s'", KV), 2);
	assert_int_equal(q1("SELECT count(*) FROM circuits"), 2);

	/* the third: trips at its receive time */
	fake_now = T0 + S(3);
	uint32_t id3 = fail_now("checkout", "TimeoutError", 1);
	assert_int_equal(cstate("r1", KT), CIRCUIT_OPEN);
	assert_int_equal(cstate("r1", KV), CIRCUIT_CLOSED);
	assert_int_equal(cnext("r1", KT), (int64_t)(T0 + S(63)));
	assert_int_equal(q1("SELECT count(*) FROM alerts"), 1);
	char hex[ERRQ_ID_HEX_BUFSZ], buf[256];
	alert_hex(hex, "r1", KT);
	assert_string_equal(qs(buf, sizeof(buf), "SELECT status FROM alerts"), "firing");
	assert_int_equal(q1("SELECT state FROM alerts"), CIRCUIT_OPEN);
	assert_int_equal(q1("SELECT opened_ns FROM alerts"), (int64_t)(T0 + S(3)));
	assert_int_equal(q1("SELECT failures FROM alerts"), 3);
	assert_int_equal(q1("SELECT notices FROM alerts"), 1);
	assert_string_equal(qs(buf, sizeof(buf), "SELECT severity FROM alerts"), "critical");
	assert_string_equal(qs(buf, sizeof(buf), "SELECT lower(hex(alert_id)) FROM circuits WHERE key = '%s'", KT), hex);
	assert_int_equal(q1("SELECT count(*) FROM transitions"), 1);
	assert_string_equal(last_reason(buf, sizeof(buf), "r1", KT), "failures 3 >= 3 in 60s");
	assert_int_equal(q1("SELECT at_ns FROM transitions"), (int64_t)(T0 + S(3)));
	assert_int_equal(q1("SELECT from_state * 10 + to_state FROM transitions"), 1);
	assert_int_equal(q1("SELECT next_ns FROM transitions"), (int64_t)(T0 + S(63)));
	/* the outbox row, pending until the notifier's report is recorded at a tick */
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1);
	assert_int_equal(q1("SELECT status FROM deliveries"), STORE_DELIVERY_PENDING);
	assert_string_equal(qs(buf, sizeof(buf), "SELECT kind || ':' || seq || ':' || notifier FROM deliveries"),
			    "firing:1:journal");

	wait_lines(1);
	json_t *b = L[0];
	assert_int_equal(bi(b, "version"), 1);
	assert_string_equal(bs(b, "status"), "firing");
	assert_string_equal(bs(b, "alert_id"), hex);
	assert_string_equal(bs(b, "rule"), "r1");
	json_t *key = json_object_get(b, "key");
	assert_int_equal(json_object_size(key), 2);
	assert_string_equal(bs(key, "service"), "checkout");
	assert_string_equal(bs(key, "error_type"), "TimeoutError");
	assert_string_equal(bs(b, "state"), "open");
	assert_string_equal(bs(b, "previous_state"), "closed");
	assert_string_equal(bs(b, "severity"), "critical");
	assert_int_equal(bi(b, "failures_in_window"), 3);
	assert_int_equal(bi(b, "window_seconds"), 60);
	expect_time(b, "opened_at", T0 + S(3));
	assert_true(json_is_null(json_object_get(b, "resolved_at")));
	assert_string_equal(bs(b, "reason"), "failures 3 >= 3 in 60s");
	assert_int_equal(bi(b, "notice"), 1);
	assert_string_equal(bs(b, "collector"), "unit");
	json_t *sample = json_object_get(b, "sample");
	char eh[ERRQ_ID_HEX_BUFSZ];
	id_hex(id3, eh);
	assert_string_equal(bs(sample, "event_id"), eh); /* the event that tripped it */
	assert_string_equal(bs(sample, "service"), "checkout");
	assert_string_equal(bs(sample, "error_type"), "TimeoutError");
	assert_string_equal(bs(sample, "message"), "it failed");
	expect_time(sample, "received_at", T0 + S(3));
	expect_time(sample, "time", T0 + S(3) - MS(2));
	/* the stored alert has the same sample */
	char sbuf[4096];
	json_t *stored = json_loads(qs(sbuf, sizeof(sbuf), "SELECT sample FROM alerts"), 0, NULL);
	assert_non_null(stored);
	assert_true(json_equal(stored, sample));
	json_decref(stored);

	settle();
	assert_int_equal(q1("SELECT status FROM deliveries"), STORE_DELIVERY_DELIVERED);
	assert_int_equal(q1("SELECT attempts FROM deliveries"), 1);
	expect_lines(1);

	struct alerts_stats st;
	alerts_get_stats(F.a, &st);
	assert_int_equal(st.failures_matched, 5);
	assert_int_equal(st.alerts_fired, 1);
	assert_int_equal(st.transitions, 1);
	assert_int_equal(st.deliveries_delivered, 1);
	assert_int_equal(st.circuits, 2);
	assert_int_equal(st.circuits_open, 1);

	/* failures while OPEN are counted and change nothing */
	fake_now = T0 + S(13);
	fail_now("checkout", "TimeoutError", 1);
	assert_int_equal(q1("SELECT failures FROM circuits WHERE key = '%s'", KT), 4);
	assert_int_equal(q1("SELECT count(*) FROM transitions"), 1);
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1);
}

/* ---- 2. OPEN -> HALF_OPEN -> OPEN (backoff) -> HALF_OPEN -> CLOSED ---- */

static void test_probe_backoff_resolve(void **state)
{
	write_cfg(CFG_BASIC);
	start();
	fake_now = T0 + S(3);
	fail_now("checkout", "TimeoutError", 3);
	assert_int_equal(cstate("r1", KT), CIRCUIT_OPEN);
	char hex[ERRQ_ID_HEX_BUFSZ], buf[256];
	alert_hex(hex, "r1", KT);
	wait_lines(1);
	settle();
	/* the writer is told to come back at the deadline */
	uint64_t mono = errq_mono_ns();
	uint64_t wake = tick_at(T0 + S(3));
	assert_true(wake > mono + S(59));
	assert_true(wake <= errq_mono_ns() + S(60));

	tick_at(T0 + S(63) - 1);
	assert_int_equal(cstate("r1", KT), CIRCUIT_OPEN);
	assert_int_equal(q1("SELECT count(*) FROM transitions"), 1);
	tick_at(T0 + S(63));
	assert_int_equal(cstate("r1", KT), CIRCUIT_HALF_OPEN);
	assert_string_equal(last_reason(buf, sizeof(buf), "r1", KT), "recovery_timeout elapsed");
	assert_int_equal(q1("SELECT at_ns FROM transitions ORDER BY id DESC LIMIT 1"), (int64_t)(T0 + S(63)));
	assert_int_equal(cnext("r1", KT), (int64_t)(T0 + S(93)));
	assert_int_equal(q1("SELECT state FROM alerts"), CIRCUIT_HALF_OPEN);
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1); /* no notice for OPEN <-> HALF_OPEN */

	/* a failure in the probe: OPEN again, recovery doubled, no new alert */
	fake_now = T0 + S(65);
	fail_now("checkout", "TimeoutError", 1);
	assert_int_equal(cstate("r1", KT), CIRCUIT_OPEN);
	assert_string_equal(last_reason(buf, sizeof(buf), "r1", KT), "1 failure in probe");
	assert_int_equal(cnext("r1", KT), (int64_t)(T0 + S(185)));
	assert_int_equal(q1("SELECT count(*) FROM alerts"), 1);
	assert_int_equal(q1("SELECT notices FROM alerts"), 1);
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1);
	assert_string_equal(alert_hex(buf, "r1", KT), hex);

	tick_at(T0 + S(185) - 1);
	assert_int_equal(cstate("r1", KT), CIRCUIT_OPEN);
	tick_at(T0 + S(185));
	assert_int_equal(cstate("r1", KT), CIRCUIT_HALF_OPEN);
	assert_int_equal(cnext("r1", KT), (int64_t)(T0 + S(215)));
	tick_at(T0 + S(215) - 1);
	assert_int_equal(cstate("r1", KT), CIRCUIT_HALF_OPEN);
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1);

	/* the quiet probe ends: CLOSED, the alert resolves, one notice */
	tick_at(T0 + S(215));
	assert_int_equal(cstate("r1", KT), CIRCUIT_CLOSED);
	assert_int_equal(cnext("r1", KT), 0);
	assert_int_equal(q1("SELECT alert_id IS NULL FROM circuits WHERE key = '%s'", KT), 1);
	assert_string_equal(last_reason(buf, sizeof(buf), "r1", KT), "probe quiet for 30s");
	assert_int_equal(q1("SELECT count(*) FROM alerts"), 1);
	assert_string_equal(qs(buf, sizeof(buf), "SELECT status FROM alerts"), "resolved");
	assert_string_equal(qs(buf, sizeof(buf), "SELECT resolve_reason FROM alerts"), "probe quiet for 30s");
	assert_int_equal(q1("SELECT resolved_ns FROM alerts"), (int64_t)(T0 + S(215)));
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 2);
	assert_string_equal(qs(buf, sizeof(buf), "SELECT kind || ':' || seq FROM deliveries ORDER BY id DESC LIMIT 1"),
			    "resolved:1");
	assert_string_equal(
	    qs(buf, sizeof(buf), "SELECT lower(hex(alert_id)) FROM deliveries ORDER BY id DESC LIMIT 1"), hex);
	assert_int_equal(q1("SELECT count(*) FROM transitions WHERE key = '%s'", KT), 5);

	wait_lines(2);
	json_t *r = find_line(hex, "resolved", 1);
	assert_non_null(r);
	assert_string_equal(bs(r, "state"), "closed");
	assert_string_equal(bs(r, "previous_state"), "half_open");
	assert_string_equal(bs(r, "reason"), "probe quiet for 30s");
	expect_time(r, "resolved_at", T0 + S(215));
	expect_time(r, "opened_at", T0 + S(3));
	settle();
	expect_lines(2);
	assert_int_equal(count_lines(hex, "firing"), 1);
	assert_int_equal(count_lines(hex, "resolved"), 1);
	struct alerts_stats st;
	alerts_get_stats(F.a, &st);
	assert_int_equal(st.alerts_fired, 1);
	assert_int_equal(st.alerts_resolved, 1);
	assert_int_equal(st.circuits_open, 0);

	/* a new incident gets a new alert id */
	fake_now = T0 + S(300);
	fail_now("checkout", "TimeoutError", 3);
	assert_int_equal(cstate("r1", KT), CIRCUIT_OPEN);
	assert_int_equal(cnext("r1", KT), (int64_t)(T0 + S(360))); /* backoff started afresh */
	assert_int_equal(q1("SELECT count(*) FROM alerts"), 2);
	assert_string_not_equal(alert_hex(buf, "r1", KT), hex);
}

/* ---- 3. a rolled-back transaction leaves memory as the database is ---- */

static void test_rollback(void **state)
{
	write_cfg(CFG_BASIC);
	start();
	/* (a) a new circuit created in a rolled-back transaction */
	fake_now = T0 + S(1);
	struct tb *t = tb_new();
	uint32_t a1 = tb_fail(t, "checkout", "TimeoutError");
	uint32_t a2 = tb_fail(t, "checkout", "TimeoutError");
	tb_run(t, false);
	free(t);
	assert_int_equal(q1("SELECT count(*) FROM circuits"), 0);
	/* the ingest retries: the same events, then one more */
	t = tb_new();
	tb_fail_id(t, a1, "checkout", "TimeoutError");
	tb_run(t, true);
	assert_int_equal(t->ev[0].result, 1);
	free(t);
	assert_int_equal(cstate("r1", KT), CIRCUIT_CLOSED);
	fake_now = T0 + S(2);
	t = tb_new();
	tb_fail_id(t, a2, "checkout", "TimeoutError");
	tb_commit(t);
	assert_int_equal(cstate("r1", KT), CIRCUIT_CLOSED);
	assert_int_equal(q1("SELECT failures FROM circuits WHERE key = '%s'", KT), 2);
	fake_now = T0 + S(3);
	fail_now("checkout", "TimeoutError", 1);
	assert_int_equal(cstate("r1", KT), CIRCUIT_OPEN);

	/* (b) an existing circuit that trips inside a rolled-back transaction */
	fake_now = T0 + S(4);
	fail_now("checkout", "ValueError", 1);
	fake_now = T0 + S(5);
	t = tb_new();
	uint32_t v2 = tb_fail(t, "checkout", "ValueError");
	uint32_t v3 = tb_fail(t, "checkout", "ValueError");
	tb_run(t, false);
	free(t);
	assert_int_equal(cstate("r1", KV), CIRCUIT_CLOSED);
	assert_int_equal(q1("SELECT count(*) FROM alerts WHERE key = '%s'", KV), 0);
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1);
	t = tb_new();
	tb_fail_id(t, v2, "checkout", "ValueError");
	tb_commit(t);
	assert_int_equal(cstate("r1", KV), CIRCUIT_CLOSED); /* 2 failures, not 4 */
	assert_int_equal(q1("SELECT failures FROM circuits WHERE key = '%s'", KV), 2);
	fake_now = T0 + S(6);
	t = tb_new();
	tb_fail_id(t, v3, "checkout", "ValueError");
	tb_commit(t);
	assert_int_equal(cstate("r1", KV), CIRCUIT_OPEN);
	assert_int_equal(q1("SELECT opened_ns FROM alerts WHERE key = '%s'", KV), (int64_t)(T0 + S(6)));
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 2);
	char hk[ERRQ_ID_HEX_BUFSZ], hv[ERRQ_ID_HEX_BUFSZ], eh[ERRQ_ID_HEX_BUFSZ], buf[256];
	alert_hex(hk, "r1", KT);
	alert_hex(hv, "r1", KV);
	wait_lines(2);
	json_t *b = find_line(hv, "firing", 1);
	assert_non_null(b);
	id_hex(v3, eh);
	assert_string_equal(bs(json_object_get(b, "sample"), "event_id"), eh);
	settle();
	expect_lines(2); /* nothing from the rolled-back trip */

	/* (c) a probe failure rolled back: the circuit stays HALF_OPEN with its probe deadline */
	tick_at(T0 + S(63));
	assert_int_equal(cstate("r1", KT), CIRCUIT_HALF_OPEN);
	fake_now = T0 + S(64);
	t = tb_new();
	tb_fail(t, "checkout", "TimeoutError");
	tb_run(t, false);
	free(t);
	assert_int_equal(cstate("r1", KT), CIRCUIT_HALF_OPEN);
	tick_at(T0 + S(93) - 1);
	assert_int_equal(cstate("r1", KT), CIRCUIT_HALF_OPEN);
	tick_at(T0 + S(93));
	assert_int_equal(cstate("r1", KT), CIRCUIT_CLOSED);
	assert_string_equal(last_reason(buf, sizeof(buf), "r1", KT), "probe quiet for 30s");
	wait_lines(3);
	assert_non_null(find_line(hk, "resolved", 1));
	settle();
	expect_lines(3);
}

/* ---- 4. restart ---- */

static void test_restart(void **state)
{
	write_cfg(CFG_BASIC);
	start();
	fake_now = T0 + S(1);
	fail_now("checkout", "ValueError", 1);
	fake_now = T0 + S(2);
	fail_now("checkout", "ValueError", 1);
	fake_now = T0 + S(3);
	fail_now("checkout", "TimeoutError", 3);
	char hk[ERRQ_ID_HEX_BUFSZ], hv[ERRQ_ID_HEX_BUFSZ], buf[256];
	alert_hex(hk, "r1", KT);
	wait_lines(1);
	settle();

	stop();
	fake_now = T0 + S(10);
	start();
	assert_int_equal(cstate("r1", KT), CIRCUIT_OPEN);
	assert_int_equal(cnext("r1", KT), (int64_t)(T0 + S(63)));
	assert_int_equal(q1("SELECT count(*) FROM transitions"), 1); /* the load changed nothing */
	struct alerts_stats st;
	alerts_get_stats(F.a, &st);
	assert_int_equal(st.circuits, 2);
	assert_int_equal(st.circuits_open, 1);
	/* the window kept its counts: 2 before the restart + 1 after trip */
	fake_now = T0 + S(11);
	fail_now("checkout", "ValueError", 1);
	assert_int_equal(cstate("r1", KV), CIRCUIT_OPEN);
	assert_string_equal(last_reason(buf, sizeof(buf), "r1", KV), "failures 3 >= 3 in 60s");
	alert_hex(hv, "r1", KV);
	wait_lines(2);
	settle();
	expect_lines(2); /* the delivered firing of before is not sent again */
	/* the recovery timer resumed */
	tick_at(T0 + S(63) - 1);
	assert_int_equal(cstate("r1", KT), CIRCUIT_OPEN);
	tick_at(T0 + S(63));
	assert_int_equal(cstate("r1", KT), CIRCUIT_HALF_OPEN);
	assert_int_equal(q1("SELECT at_ns FROM transitions WHERE key = '%s' ORDER BY id DESC LIMIT 1", KT),
			 (int64_t)(T0 + S(63)));

	/* down across deadlines: KV's recovery (T0+71) passed -> HALF_OPEN at the restart; KT's
	 * probe (to T0+93) passed -> it starts over at the restart (downtime is not quiet time) */
	stop();
	fake_now = T0 + S(100);
	start();
	assert_int_equal(cstate("r1", KV), CIRCUIT_HALF_OPEN);
	assert_int_equal(q1("SELECT at_ns FROM transitions WHERE key = '%s' ORDER BY id DESC LIMIT 1", KV),
			 (int64_t)(T0 + S(100)));
	assert_string_equal(last_reason(buf, sizeof(buf), "r1", KV), "recovery_timeout elapsed");
	assert_int_equal(cnext("r1", KV), (int64_t)(T0 + S(130)));
	assert_int_equal(cstate("r1", KT), CIRCUIT_HALF_OPEN);
	assert_int_equal(cnext("r1", KT), (int64_t)(T0 + S(130)));
	assert_int_equal(q1("SELECT count(*) FROM alerts WHERE status = 'firing'"), 2);
	tick_at(T0 + S(130) - 1);
	assert_int_equal(cstate("r1", KT), CIRCUIT_HALF_OPEN);
	tick_at(T0 + S(130));
	assert_int_equal(cstate("r1", KT), CIRCUIT_CLOSED);
	assert_int_equal(cstate("r1", KV), CIRCUIT_CLOSED);
	assert_int_equal(q1("SELECT count(*) FROM alerts WHERE status = 'resolved'"), 2);
	wait_lines(4);
	assert_non_null(find_line(hk, "resolved", 1));
	assert_non_null(find_line(hv, "resolved", 1));
	settle();
	expect_lines(4);
}

/* A firing not yet delivered when the collector stopped goes out after the restart. */
static void test_restart_resends_pending(void **state)
{
	write_cfg(CFG_BASIC);
	start();
	fake_now = T0 + S(3);
	fail_now("checkout", "TimeoutError", 3);
	char hk[ERRQ_ID_HEX_BUFSZ];
	alert_hex(hk, "r1", KT);
	wait_lines(1);
	stop(); /* before a tick recorded the report: the row is still pending */
	assert_int_equal(n_pending(), 1);
	fake_now = T0 + S(5);
	start();
	wait_lines(2);
	assert_int_equal(count_lines(hk, "firing"), 2); /* at least once: the same notice again */
	assert_true(json_equal(L[0], L[1]));             /* byte for byte the same body */
	settle();
	assert_int_equal(q1("SELECT status FROM deliveries"), STORE_DELIVERY_DELIVERED);
}

/* ---- 5. max_circuits ---- */

static const char CFG_MC[] = "notifiers:\n"
			     "  - name: journal\n"
			     "    type: log\n"
			     "rules:\n"
			     "  - name: mc\n"
			     "    group_by: [error_type]\n"
			     "    trip: {failures: 3, window: 60s}\n"
			     "    max_circuits: 2\n"
			     "    notify: [journal]\n";

static void test_max_circuits(void **state)
{
	write_cfg(CFG_MC);
	start();
	fake_now = T0 + S(1);
	fail_now("svc", "A", 1);
	/* a circuit created in a rolled-back transaction does not take a place */
	struct tb *t = tb_new();
	tb_fail(t, "svc", "B");
	tb_run(t, false);
	free(t);
	fake_now = T0 + S(2);
	fail_now("svc", "C", 1);
	assert_int_equal(alerts_rule_overflow(F.a, "mc"), 0);
	assert_int_equal(q1("SELECT count(*) FROM circuits WHERE key = 'error_type=C'"), 1);
	/* the third key: the overflow circuit */
	fake_now = T0 + S(3);
	fail_now("svc", "B", 1);
	assert_int_equal(alerts_rule_overflow(F.a, "mc"), 1);
	assert_int_equal(q1("SELECT count(*) FROM circuits WHERE key = 'error_type=B'"), 0);
	assert_int_equal(q1("SELECT failures FROM circuits WHERE key = '(overflow)'"), 1);
	/* a failure counted in the overflow circuit by a rolled-back transaction counts nowhere */
	t = tb_new();
	tb_fail(t, "svc", "Z");
	tb_run(t, false);
	free(t);
	assert_int_equal(alerts_rule_overflow(F.a, "mc"), 1);
	fake_now = T0 + S(4);
	fail_now("svc", "D", 1);
	assert_int_equal(alerts_rule_overflow(F.a, "mc"), 2);
	/* a known key still goes to its own circuit */
	fail_now("svc", "A", 1);
	assert_int_equal(alerts_rule_overflow(F.a, "mc"), 2);
	assert_int_equal(q1("SELECT failures FROM circuits WHERE key = 'error_type=A'"), 2);
	assert_int_equal(alerts_rule_overflow(F.a, "nope"), 0);
	/* the overflow circuit trips on B, D, E together */
	fake_now = T0 + S(5);
	fail_now("svc", "E", 1);
	assert_int_equal(alerts_rule_overflow(F.a, "mc"), 3);
	assert_int_equal(cstate("mc", "(overflow)"), CIRCUIT_OPEN);
	assert_int_equal(q1("SELECT count(*) FROM circuits"), 3);
	char hex[ERRQ_ID_HEX_BUFSZ];
	alert_hex(hex, "mc", "(overflow)");
	wait_lines(1);
	json_t *key = json_object_get(L[0], "key");
	assert_int_equal(json_object_size(key), 1);
	assert_true(json_is_true(json_object_get(key, "(overflow)")));
	assert_string_equal(bs(L[0], "alert_id"), hex);
	settle();
	struct alerts_stats st;
	alerts_get_stats(F.a, &st);
	assert_int_equal(st.overflow_failures, 3);
	assert_int_equal(st.circuits, 3);
}

/* ---- 6. reload ---- */

static const char CFG_R1[] = "notifiers:\n"
			     "  - name: journal\n"
			     "    type: log\n"
			     "rules:\n"
			     "  - name: keep\n"
			     "    match: {service: svc-keep}\n"
			     "    trip: {failures: 2, window: 60s}\n"
			     "    notify: [journal]\n"
			     "  - name: chg\n"
			     "    match: {service: svc-chg}\n"
			     "    trip: {failures: 2, window: 60s}\n"
			     "    notify: [journal]\n"
			     "  - name: gone\n"
			     "    match: {service: svc-gone}\n"
			     "    trip: {failures: 2, window: 60s}\n"
			     "    notify: [journal]\n";

/* keep: same definition (its severity is not part of it); chg: a new trip; gone: removed */
static const char CFG_R2[] = "notifiers:\n"
			     "  - name: journal\n"
			     "    type: log\n"
			     "rules:\n"
			     "  - name: added\n"
			     "    match: {service: svc-added}\n"
			     "    trip: {failures: 1, window: 60s}\n"
			     "    notify: [journal]\n"
			     "  - name: chg\n"
			     "    match: {service: svc-chg}\n"
			     "    trip: {failures: 3, window: 60s}\n"
			     "    notify: [journal]\n"
			     "  - name: keep\n"
			     "    match: {service: svc-keep}\n"
			     "    trip: {failures: 2, window: 60s}\n"
			     "    severity: info\n"
			     "    notify: [journal]\n";

static void test_reload(void **state)
{
	write_cfg(CFG_R1);
	start();
	fake_now = T0 + S(1);
	fail_now("svc-keep", "E", 2);
	fail_now("svc-chg", "E", 2);
	fail_now("svc-gone", "E", 2);
	assert_int_equal(cstate("keep", ""), CIRCUIT_OPEN);
	assert_int_equal(cstate("chg", ""), CIRCUIT_OPEN);
	assert_int_equal(cstate("gone", ""), CIRCUIT_OPEN);
	char hk[ERRQ_ID_HEX_BUFSZ], hc[ERRQ_ID_HEX_BUFSZ], hg[ERRQ_ID_HEX_BUFSZ], buf[512];
	alert_hex(hk, "keep", "");
	alert_hex(hc, "chg", "");
	alert_hex(hg, "gone", "");
	wait_lines(3);
	settle();

	write_cfg(CFG_R2);
	fake_now = T0 + S(5);
	struct alerts_answer ans = do_reload();
	if (ans.status != ALERTS_OK)
		fail_msg("reload: %d %s", ans.status, ans.msg);
	assert_int_equal(ans.rules, 3);
	assert_int_equal(ans.notifiers, 1);
	assert_int_equal(ans.kept, 1);
	assert_int_equal(ans.changed, 1);
	assert_int_equal(ans.removed, 1);
	const struct alerts_rules *ar = alerts_rules_get(F.a);
	assert_int_equal(ar->rs->n_rules, 3);
	assert_non_null(rules_find(ar->rs, "added"));
	assert_null(rules_find(ar->rs, "gone"));
	assert_string_equal(ar->source, F.cfg);
	alerts_rules_put(F.a, ar);

	/* kept: still OPEN with the same alert */
	assert_int_equal(cstate("keep", ""), CIRCUIT_OPEN);
	assert_string_equal(qs(buf, sizeof(buf), "SELECT status FROM alerts WHERE rule = 'keep'"), "firing");
	/* changed and removed: resolved, their circuits gone */
	assert_int_equal(cstate("chg", ""), -1);
	assert_int_equal(cstate("gone", ""), -1);
	assert_string_equal(qs(buf, sizeof(buf), "SELECT status || ':' || resolve_reason FROM alerts WHERE rule = 'chg'"),
			    "resolved:rule_changed");
	assert_string_equal(
	    qs(buf, sizeof(buf), "SELECT status || ':' || resolve_reason FROM alerts WHERE rule = 'gone'"),
	    "resolved:rule_removed");
	assert_int_equal(q1("SELECT resolved_ns FROM alerts WHERE rule = 'chg'"), (int64_t)(T0 + S(5)));
	assert_string_equal(last_reason(buf, sizeof(buf), "chg", ""), "rule_changed");
	assert_string_equal(last_reason(buf, sizeof(buf), "gone", ""), "rule_removed");
	wait_lines(5);
	json_t *c = find_line(hc, "resolved", 1), *g = find_line(hg, "resolved", 1);
	assert_non_null(c);
	assert_non_null(g);
	assert_string_equal(bs(c, "reason"), "rule_changed");
	assert_string_equal(bs(c, "state"), "closed");
	assert_string_equal(bs(c, "previous_state"), "open");
	assert_string_equal(bs(g, "reason"), "rule_removed");
	settle();
	expect_lines(5);

	/* the changed rule counts afresh with its new trip */
	fake_now = T0 + S(6);
	fail_now("svc-chg", "E", 2);
	assert_int_equal(cstate("chg", ""), CIRCUIT_CLOSED);
	fail_now("svc-chg", "E", 1);
	assert_int_equal(cstate("chg", ""), CIRCUIT_OPEN);
	assert_string_equal(last_reason(buf, sizeof(buf), "chg", ""), "failures 3 >= 3 in 60s");
	/* the removed rule matches nothing, the new one works */
	fail_now("svc-gone", "E", 5);
	assert_int_equal(cstate("gone", ""), -1);
	fail_now("svc-added", "E", 1);
	assert_int_equal(cstate("added", ""), CIRCUIT_OPEN);
	/* the kept circuit's timer still runs */
	tick_at(T0 + S(61));
	assert_int_equal(cstate("keep", ""), CIRCUIT_HALF_OPEN);
	wait_lines(7);
	settle();

	/* a bad file is refused and changes nothing */
	write_cfg("rules:\n"
		  "  - name: keep\n"
		  "    trip: {failures: 2, window: 90x}\n");
	ans = do_reload();
	assert_int_equal(ans.status, ALERTS_INVALID);
	assert_non_null(strstr(ans.msg, "line 3"));
	assert_non_null(strstr(ans.msg, "90x"));
	ar = alerts_rules_get(F.a);
	assert_int_equal(ar->rs->n_rules, 3);
	assert_non_null(rules_find(ar->rs, "added"));
	alerts_rules_put(F.a, ar);
	assert_int_equal(cstate("keep", ""), CIRCUIT_HALF_OPEN);
	assert_int_equal(cstate("chg", ""), CIRCUIT_OPEN);
	assert_int_equal(cstate("added", ""), CIRCUIT_OPEN);
	fake_now = T0 + S(62);
	fail_now("svc-added", "F", 1); /* the rules in force still count */
	assert_int_equal(q1("SELECT failures FROM circuits WHERE rule = 'added'"), 2);
	/* an empty file: every rule removed */
	write_cfg("");
	ans = do_reload();
	assert_int_equal(ans.status, ALERTS_OK);
	assert_int_equal(ans.rules, 0);
	assert_int_equal(ans.removed, 3);
	assert_int_equal(q1("SELECT count(*) FROM circuits"), 0);
	assert_int_equal(q1("SELECT count(*) FROM alerts WHERE status = 'firing'"), 0);
	/* their resolved notices had nowhere to go: the notifier is gone too */
	expect_lines(7);
}

/* A rule changed (or removed) while the collector was down resolves at the load. */
static void test_rule_changed_while_down(void **state)
{
	write_cfg(CFG_R1);
	start();
	fake_now = T0 + S(1);
	fail_now("svc-chg", "E", 2);
	fail_now("svc-gone", "E", 2);
	fail_now("svc-keep", "E", 2);
	char hc[ERRQ_ID_HEX_BUFSZ], hg[ERRQ_ID_HEX_BUFSZ], buf[256];
	alert_hex(hc, "chg", "");
	alert_hex(hg, "gone", "");
	wait_lines(3);
	settle();
	stop();
	write_cfg(CFG_R2);
	fake_now = T0 + S(10);
	start();
	assert_int_equal(cstate("chg", ""), -1);
	assert_int_equal(cstate("gone", ""), -1);
	assert_int_equal(cstate("keep", ""), CIRCUIT_OPEN);
	assert_string_equal(qs(buf, sizeof(buf), "SELECT status || ':' || resolve_reason FROM alerts WHERE rule = 'chg'"),
			    "resolved:rule_changed");
	assert_string_equal(
	    qs(buf, sizeof(buf), "SELECT status || ':' || resolve_reason FROM alerts WHERE rule = 'gone'"),
	    "resolved:rule_removed");
	assert_int_equal(q1("SELECT resolved_ns FROM alerts WHERE rule = 'chg'"), (int64_t)(T0 + S(10)));
	assert_string_equal(last_reason(buf, sizeof(buf), "chg", ""), "rule_changed");
	assert_int_equal(q1("SELECT at_ns FROM transitions WHERE rule = 'chg' ORDER BY id DESC LIMIT 1"),
			 (int64_t)(T0 + S(10)));
	wait_lines(5);
	json_t *c = find_line(hc, "resolved", 1);
	assert_non_null(c);
	assert_string_equal(bs(c, "reason"), "rule_changed");
	assert_string_equal(bs(c, "previous_state"), "open");
	expect_time(c, "resolved_at", T0 + S(10));
	expect_time(c, "opened_at", T0 + S(1));
	assert_non_null(find_line(hg, "resolved", 1));
	settle();
	expect_lines(5);
	/* the changed rule counts afresh */
	fake_now = T0 + S(11);
	fail_now("svc-chg", "E", 2);
	assert_int_equal(cstate("chg", ""), CIRCUIT_CLOSED);
}

/* ---- 7. silences ---- */

static void test_silences(void **state)
{
	write_cfg(CFG_BASIC);
	start();
	char err[512], buf[256];
	/* checks */
	const struct alerts_rules *ar = alerts_rules_get(F.a);
	const struct rule *r1 = rules_find(ar->rs, "r1");
	assert_non_null(r1);
	assert_int_equal(alerts_matchers_check(r1, "", err, sizeof(err)), 0);
	assert_int_equal(alerts_matchers_check(r1, "error_type=Timeout*,service=check?ut", err, sizeof(err)), 0);
	assert_int_equal(alerts_matchers_check(r1, "task=x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'task'"));
	assert_int_equal(alerts_matchers_check(r1, "nonsense", err, sizeof(err)), -1);
	alerts_rules_put(F.a, ar);
	assert_true(alerts_matchers_match("", KT));
	assert_true(alerts_matchers_match("error_type=Timeout*", KT));
	assert_true(alerts_matchers_match("service=checkout,error_type=*Error", KT));
	assert_false(alerts_matchers_match("error_type=Timeout*", KV));
	assert_false(alerts_matchers_match("error_type=timeout*", KT)); /* case counts */
	assert_false(alerts_matchers_match("task=*", KT));               /* a field the key lacks */

	struct alerts_answer ans = silence("r1", "nope=x", S(30));
	assert_int_equal(ans.status, ALERTS_INVALID);
	assert_non_null(strstr(ans.msg, "nope"));
	assert_int_equal(silence("no-such-rule", "", S(30)).status, ALERTS_NOT_FOUND); /* issue 15: exit 3 */
	assert_int_equal(silence("r1", "", MS(500)).status, ALERTS_INVALID);
	assert_int_equal(silence("r1", "", S(91 * 86400)).status, ALERTS_INVALID);
	assert_int_equal(q1("SELECT count(*) FROM silences"), 0);
	ans = expire(999);
	assert_int_equal(ans.status, ALERTS_NOT_FOUND);

	/* a silence from T0 for 30 s on TimeoutError keys */
	ans = silence("r1", "error_type=Timeout*", S(30));
	if (ans.status != ALERTS_OK)
		fail_msg("silence: %s", ans.msg);
	int64_t s1 = ans.id;
	assert_true(s1 > 0);
	assert_int_equal(q1("SELECT ends_ns FROM silences WHERE id = %lld", (long long)s1), (int64_t)(T0 + S(30)));
	fake_now = T0 + S(1);
	fail_now("checkout", "TimeoutError", 3);
	fail_now("checkout", "ValueError", 3);
	char ht[ERRQ_ID_HEX_BUFSZ], hv[ERRQ_ID_HEX_BUFSZ];
	alert_hex(ht, "r1", KT);
	alert_hex(hv, "r1", KV);
	assert_int_equal(q1("SELECT status FROM deliveries WHERE lower(hex(alert_id)) = '%s'", ht),
			 STORE_DELIVERY_SILENCED);
	assert_int_equal(q1("SELECT status FROM deliveries WHERE lower(hex(alert_id)) = '%s'", hv),
			 STORE_DELIVERY_PENDING);
	wait_lines(1);
	assert_string_equal(bs(L[0], "alert_id"), hv);
	settle();
	expect_lines(1); /* nothing for the silenced alert */
	struct alerts_stats st;
	alerts_get_stats(F.a, &st);
	assert_int_equal(st.deliveries_silenced, 1);

	/* the silence ends: the held firing goes out */
	tick_at(T0 + S(30) - 1);
	assert_int_equal(q1("SELECT status FROM deliveries WHERE lower(hex(alert_id)) = '%s'", ht),
			 STORE_DELIVERY_SILENCED);
	tick_at(T0 + S(30));
	assert_int_equal(q1("SELECT status FROM deliveries WHERE lower(hex(alert_id)) = '%s'", ht),
			 STORE_DELIVERY_PENDING);
	wait_lines(2);
	json_t *b = find_line(ht, "firing", 1);
	assert_non_null(b);
	assert_string_equal(bs(b, "state"), "open");
	expect_time(b, "opened_at", T0 + S(1));
	settle();
	assert_int_equal(q1("SELECT status FROM deliveries WHERE lower(hex(alert_id)) = '%s'", ht),
			 STORE_DELIVERY_DELIVERED);
	expect_lines(2);

	/* expiring a silence by hand releases what it held at once */
	fake_now = T0 + S(31);
	ans = silence("r1", "", S(3600));
	assert_int_equal(ans.status, ALERTS_OK);
	int64_t s2 = ans.id;
	fake_now = T0 + S(32);
	fail_now("checkout", "KeyError", 3);
	char hkey[ERRQ_ID_HEX_BUFSZ];
	alert_hex(hkey, "r1", "service=checkout,error_type=KeyError");
	assert_int_equal(q1("SELECT status FROM deliveries WHERE lower(hex(alert_id)) = '%s'", hkey),
			 STORE_DELIVERY_SILENCED);
	expect_lines(2);
	fake_now = T0 + S(33);
	ans = expire(s2);
	assert_int_equal(ans.status, ALERTS_OK);
	assert_int_equal(ans.id, s2);
	assert_int_equal(q1("SELECT expired_ns FROM silences WHERE id = %lld", (long long)s2), (int64_t)(T0 + S(33)));
	assert_int_equal(q1("SELECT status FROM deliveries WHERE lower(hex(alert_id)) = '%s'", hkey),
			 STORE_DELIVERY_PENDING);
	wait_lines(3);
	assert_non_null(find_line(hkey, "firing", 1));
	settle();
	assert_int_equal(expire(s2).status, ALERTS_NOT_FOUND); /* ended already */

	/* an alert that resolved while silenced sends nothing when the silence ends */
	fake_now = T0 + S(40);
	ans = silence("r1", "error_type=IOError", S(200));
	assert_int_equal(ans.status, ALERTS_OK);
	fake_now = T0 + S(41);
	fail_now("checkout", "IOError", 3);
	char hio[ERRQ_ID_HEX_BUFSZ];
	alert_hex(hio, "r1", "service=checkout,error_type=IOError");
	for (uint64_t t = 60; t <= 250; t += 10)
		tick_at(T0 + S(t));
	assert_string_equal(qs(buf, sizeof(buf), "SELECT status FROM alerts WHERE lower(hex(alert_id)) = '%s'", hio),
			    "resolved");
	assert_int_equal(
	    q1("SELECT count(*) FROM deliveries WHERE lower(hex(alert_id)) = '%s' AND status = %d", hio,
	       STORE_DELIVERY_SILENCED),
	    2); /* its firing and its resolved, both held back */
	settle(); /* every delivery reported: the count below is final */
	log_refresh();
	assert_int_equal(count_lines(hio, "firing"), 0);
	assert_int_equal(count_lines(hio, "resolved"), 0);
	/* the others resolved in the meantime, and said so */
	assert_int_equal(count_lines(ht, "resolved"), 1);
	assert_int_equal(count_lines(hv, "resolved"), 1);
	assert_int_equal(count_lines(hkey, "resolved"), 1);
}

/* Silences survive a restart; one that ended while down releases its alerts at the load. */
static void test_silence_across_restart(void **state)
{
	write_cfg(CFG_BASIC);
	start();
	struct alerts_answer ans = silence("r1", "", S(20));
	assert_int_equal(ans.status, ALERTS_OK);
	fake_now = T0 + S(1);
	fail_now("checkout", "TimeoutError", 3);
	char ht[ERRQ_ID_HEX_BUFSZ];
	alert_hex(ht, "r1", KT);
	stop();
	fake_now = T0 + S(5);
	start(); /* still silenced */
	fail_now("checkout", "ValueError", 3);
	assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE status = %d", STORE_DELIVERY_SILENCED), 2);
	expect_lines(0);
	stop();
	fake_now = T0 + S(25);
	start(); /* ended while down */
	wait_lines(2);
	assert_non_null(find_line(ht, "firing", 1));
	settle();
	assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE status = %d", STORE_DELIVERY_DELIVERED), 2);
	expect_lines(2);
}

/* A silence in force is loaded at a start whatever the number of ended ones newer than it
 * (kept for alert history, 30 days by default): the load lists the newest 10 000 silences
 * (MAX_SILENCES) of every state and keeps those in force, so 10 000 newer ended ones hid it. */
static void test_silence_loaded_past_ended_ones(void **state)
{
	write_cfg(CFG_BASIC);
	start();
	struct alerts_answer ans = silence("r1", "", S(3600));
	assert_int_equal(ans.status, ALERTS_OK);
	stop();
	sqlite3 *rw;
	assert_int_equal(sqlite3_open_v2(F.db, &rw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)"
		 " INSERT INTO silences (rule, matchers, comment, created_by, created_ns, starts_ns, ends_ns, expired_ns)"
		 " SELECT 'r1', 'service=gone', 'ended', 'test', %lld, %lld, %lld, 0 FROM n",
		 (long long)T0, (long long)T0, (long long)(T0 + S(1)));
	assert_int_equal(sqlite3_exec(rw, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(rw);
	fake_now = T0 + S(5);
	start();
	fail_now("checkout", "TimeoutError", 3);
	assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE status = %d", STORE_DELIVERY_SILENCED), 1);
	expect_lines(0);
}

/* ---- 8. replay ---- */

static void test_replay(void **state)
{
	write_cfg(CFG_BASIC);
	start();
	uint8_t unknown[16];
	memset(unknown, 0xab, sizeof(unknown));
	assert_int_equal(replay(unknown).status, ALERTS_NOT_FOUND);
	fake_now = T0 + S(1);
	fail_now("checkout", "TimeoutError", 3);
	char hex[ERRQ_ID_HEX_BUFSZ];
	uint8_t id[16];
	alert_hex(hex, "r1", KT);
	alert_blob(id, hex);
	wait_lines(1);
	settle();
	struct alerts_answer ans = replay(id);
	assert_int_equal(ans.status, ALERTS_PRECONDITION); /* delivered: nothing dead */
	int64_t row = q1("SELECT id FROM deliveries");

	sqlite3 *rw;
	assert_int_equal(sqlite3_open_v2(F.db, &rw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(rw, 2000);
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "UPDATE deliveries SET status = 2, attempts = 8, last_error = 'HTTP 500' WHERE id = %lld",
		 (long long)row);
	assert_int_equal(sqlite3_exec(rw, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(rw);

	fake_now = T0 + S(2);
	ans = replay(id);
	if (ans.status != ALERTS_OK)
		fail_msg("replay: %d %s", ans.status, ans.msg);
	assert_int_equal(ans.count, 1);
	assert_int_equal(q1("SELECT status FROM deliveries"), STORE_DELIVERY_PENDING);
	assert_int_equal(q1("SELECT attempts FROM deliveries"), 0);
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1); /* the same row, not a copy */
	wait_lines(2);
	assert_true(json_equal(L[0], L[1])); /* the same notice again */
	settle();
	assert_int_equal(q1("SELECT status FROM deliveries"), STORE_DELIVERY_DELIVERED);
	assert_int_equal(q1("SELECT attempts FROM deliveries"), 1);
	assert_int_equal(replay(id).status, ALERTS_PRECONDITION);
	expect_lines(2);

	/* two dead notices of one alert (its firing and its resolved) go again, in order */
	tick_at(T0 + S(61));
	tick_at(T0 + S(91));
	assert_int_equal(cstate("r1", KT), CIRCUIT_CLOSED);
	wait_lines(3);
	settle();
	assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE status = %d", STORE_DELIVERY_DELIVERED), 2);
	assert_int_equal(sqlite3_open_v2(F.db, &rw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(rw, 2000);
	assert_int_equal(sqlite3_exec(rw, "UPDATE deliveries SET status = 2, attempts = 8", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(rw);
	ans = replay(id);
	assert_int_equal(ans.status, ALERTS_OK);
	assert_int_equal(ans.count, 2);
	assert_int_equal(n_pending(), 2);
	wait_lines(5);
	assert_string_equal(bs(L[3], "status"), "firing");
	assert_string_equal(bs(L[4], "status"), "resolved");
	assert_true(json_equal(L[2], L[4]));
	settle();
	expect_lines(5);
}

/* ---- 9. outcomes: failure rates ---- */

static const char CFG_RATE[] = "notifiers:\n"
			       "  - name: journal\n"
			       "    type: log\n"
			       "rules:\n"
			       "  - name: rate\n"
			       "    match: {service: payments}\n"
			       "    group_by: [service, task]\n"
			       "    trip: {failure_rate: 0.3, min_calls: 10, window: 60s}\n"
			       "    notify: [journal]\n";

static void outcome_batch(uint8_t batch_id, const char *task, uint64_t ok, uint64_t failed)
{
	struct tb *t = tb_new();
	if (batch_id)
		tb_batch_id(t, batch_id);
	tb_outcome(t, "payments", task, ok, failed);
	tb_commit(t);
}

static void test_failure_rate(void **state)
{
	write_cfg(CFG_RATE);
	start();
#define KC "service=payments,task=charge"
#define KR "service=payments,task=refund"
	fake_now = T0 + S(1);
	outcome_batch(1, "charge", 4, 2); /* 6 calls */
	assert_int_equal(cstate("rate", KC), CIRCUIT_CLOSED);
	/* the same batch again counts nothing (counted twice it would trip: 12 calls, 1/3) */
	outcome_batch(1, "charge", 4, 2);
	assert_int_equal(cstate("rate", KC), CIRCUIT_CLOSED);
	assert_int_equal(q1("SELECT count(*) FROM outcome_batches"), 1);
	struct alerts_stats st;
	alerts_get_stats(F.a, &st);
	assert_int_equal(st.outcome_batches, 2);
	assert_int_equal(st.outcome_batches_duplicate, 1);
	fake_now = T0 + S(2);
	outcome_batch(2, "charge", 3, 0); /* 9 calls, 2 failed: under min_calls */
	assert_int_equal(cstate("rate", KC), CIRCUIT_CLOSED);
	fake_now = T0 + S(3);
	outcome_batch(3, "charge", 0, 1); /* 10 calls, 3 failed: exactly 0.3 */
	assert_int_equal(cstate("rate", KC), CIRCUIT_OPEN);
	char buf[256], hex[ERRQ_ID_HEX_BUFSZ];
	assert_string_equal(last_reason(buf, sizeof(buf), "rate", KC), "failure rate 0.3 >= 0.3 over 10 calls in 60s");
	alert_hex(hex, "rate", KC);

	/* enough calls, rate under the threshold: nothing */
	outcome_batch(4, "refund", 8, 2); /* 10 calls, 0.2 */
	assert_int_equal(cstate("rate", KR), CIRCUIT_CLOSED);
	outcome_batch(0, "refund", 0, 1); /* 11 calls, 0.27 (no batch id: counts) */
	assert_int_equal(cstate("rate", KR), CIRCUIT_CLOSED);
	outcome_batch(0, "refund", 0, 1); /* 12 calls, 0.33 */
	assert_int_equal(cstate("rate", KR), CIRCUIT_OPEN);
	/* another service: not the rule's */
	struct tb *t = tb_new();
	tb_outcome(t, "shipping", "charge", 0, 100);
	tb_commit(t);
	assert_int_equal(q1("SELECT count(*) FROM circuits"), 2);

	wait_lines(2);
	json_t *b = find_line(hex, "firing", 1);
	assert_non_null(b);
	assert_string_equal(bs(b, "reason"), "failure rate 0.3 >= 0.3 over 10 calls in 60s");
	json_t *sample = json_object_get(b, "sample");
	assert_true(json_is_true(json_object_get(sample, "outcome")));
	assert_string_equal(bs(sample, "service"), "payments");
	assert_string_equal(bs(sample, "task"), "charge");
	assert_int_equal(bi(sample, "ok"), 0);
	assert_int_equal(bi(sample, "failed"), 1);
	json_t *key = json_object_get(b, "key");
	assert_string_equal(bs(key, "service"), "payments");
	assert_string_equal(bs(key, "task"), "charge");
	settle();
#undef KC
#undef KR
}

/* ---- 10. reminders ---- */

static const char CFG_REMIND[] = "notifiers:\n"
				 "  - name: journal\n"
				 "    type: log\n"
				 "rules:\n"
				 "  - name: rem\n"
				 "    group_by: [error_type]\n"
				 "    trip: {failures: 1, window: 10s}\n"
				 "    recovery_timeout: 1h\n"
				 "    repeat_interval: 10s\n"
				 "    notify: [journal]\n";

struct dl {
	size_t n;
	char kind[8][16];
	uint32_t seq[8];
	char idem[8][NOTIFY_KEY_MAX];
};

static int dl_cb(void *ctx, const struct store_delivery *d)
{
	struct dl *l = ctx;
	if (l->n < 8) {
		snprintf(l->kind[l->n], sizeof(l->kind[0]), "%s", d->kind);
		l->seq[l->n] = d->seq;
		snprintf(l->idem[l->n], sizeof(l->idem[0]), "%s", d->idempotency_key);
		l->n++;
	}
	return 0;
}

static void test_reminders(void **state)
{
	write_cfg(CFG_REMIND);
	start();
	fake_now = T0 + S(3);
	fail_now("svc", "E", 1);
	assert_int_equal(cstate("rem", "error_type=E"), CIRCUIT_OPEN);
	char hex[ERRQ_ID_HEX_BUFSZ], buf[256];
	uint8_t id[16];
	alert_hex(hex, "rem", "error_type=E");
	alert_blob(id, hex);
	wait_lines(1);
	settle();
	tick_at(T0 + S(13) - 1);
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1);
	tick_at(T0 + S(13));
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 2);
	assert_int_equal(q1("SELECT notices FROM alerts"), 2);
	assert_string_equal(last_reason(buf, sizeof(buf), "rem", "error_type=E"), "still open: repeat_interval 10s");
	assert_int_equal(q1("SELECT from_state * 10 + to_state FROM transitions ORDER BY id DESC LIMIT 1"), 11);
	assert_int_equal(q1("SELECT at_ns FROM transitions ORDER BY id DESC LIMIT 1"), (int64_t)(T0 + S(13)));
	assert_int_equal(cstate("rem", "error_type=E"), CIRCUIT_OPEN);

	/* the delivery's Idempotency-Key, through the store's reader API */
	struct store *rs = NULL;
	char err[512];
	struct store_opts so = {.path = F.db, .readonly = true};
	if (store_open(&rs, &so, err, sizeof(err)))
		fail_msg("store_open: %s", err);
	struct dl l = {.n = 0};
	assert_int_equal(store_list_deliveries(rs, id, dl_cb, &l), 0);
	assert_int_equal(l.n, 2);
	char want[NOTIFY_KEY_MAX];
	snprintf(want, sizeof(want), "%s:firing:1", hex);
	assert_string_equal(l.idem[0], want);
	snprintf(want, sizeof(want), "%s:firing:2", hex);
	assert_string_equal(l.kind[1], "firing");
	assert_int_equal(l.seq[1], 2);
	assert_string_equal(l.idem[1], want);

	wait_lines(2);
	json_t *b = find_line(hex, "firing", 2);
	assert_non_null(b);
	assert_string_equal(bs(b, "state"), "open");
	assert_string_equal(bs(b, "previous_state"), "open");
	assert_string_equal(bs(b, "reason"), "still open: repeat_interval 10s");
	expect_time(b, "opened_at", T0 + S(3));
	assert_non_null(json_object_get(b, "sample"));
	assert_string_equal(bs(json_object_get(b, "sample"), "error_type"), "E"); /* kept from the firing */
	settle();

	/* several periods unseen: one reminder, then the next future period */
	tick_at(T0 + S(48));
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 3);
	assert_int_equal(q1("SELECT max(seq) FROM deliveries"), 3);
	tick_at(T0 + S(53) - 1);
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 3);
	tick_at(T0 + S(53));
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 4);
	wait_lines(4);
	assert_non_null(find_line(hex, "firing", 4));
	settle();
	struct alerts_stats st;
	alerts_get_stats(F.a, &st);
	assert_int_equal(st.reminders, 3);
	assert_int_equal(st.alerts_fired, 1);
	l.n = 0;
	assert_int_equal(store_list_deliveries(rs, id, dl_cb, &l), 0);
	assert_int_equal(l.n, 4);
	snprintf(want, sizeof(want), "%s:firing:4", hex);
	assert_string_equal(l.idem[3], want);
	store_close(rs);

	/* after a restart the reminder count goes on (the notices come from the alert row) */
	stop();
	fake_now = T0 + S(60);
	start();
	tick_at(T0 + S(63));
	assert_int_equal(q1("SELECT max(seq) FROM deliveries"), 5);
	assert_int_equal(q1("SELECT notices FROM alerts"), 5);
	wait_lines(5);
	assert_non_null(find_line(hex, "firing", 5));
	settle();
}

/* docs/alerts.md, after a restart: "A reminder that fell due while errqd was down is sent at
 * the restart" — once, however many periods passed, and the schedule goes on from there. */
static void test_reminder_due_while_down_sent_at_restart(void **state)
{
	write_cfg(CFG_REMIND);
	start();
	fake_now = T0 + S(3);
	fail_now("svc", "E", 1);
	assert_int_equal(cstate("rem", "error_type=E"), CIRCUIT_OPEN);
	char hex[ERRQ_ID_HEX_BUFSZ];
	alert_hex(hex, "rem", "error_type=E");
	wait_lines(1);
	settle();
	tick_at(T0 + S(12));
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1);
	stop();
	/* down from 12 s to 35 s: the reminders of 13 s and 23 s and 33 s fell due meanwhile */
	fake_now = T0 + S(35);
	start(); /* its first tick is at the restart */
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 2);
	assert_int_equal(q1("SELECT max(seq) FROM deliveries"), 2);
	assert_int_equal(q1("SELECT notices FROM alerts"), 2);
	assert_int_equal(q1("SELECT at_ns FROM transitions ORDER BY id DESC LIMIT 1"), (int64_t)(T0 + S(35)));
	char buf[256];
	assert_string_equal(last_reason(buf, sizeof(buf), "rem", "error_type=E"), "still open: repeat_interval 10s");
	wait_lines(2);
	assert_non_null(find_line(hex, "firing", 2));
	settle();
	/* the next one is the firing's next period after the restart, at 43 s (not 35 + 10) */
	tick_at(T0 + S(43) - 1);
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 2);
	tick_at(T0 + S(43));
	assert_int_equal(q1("SELECT count(*) FROM deliveries"), 3);
	settle();
}

/* A request the engine cannot queue (no writer, no inline store) is refused by the return
 * value and its callback never runs (STYLE.md point 6). */
/* ---- 10. what is delivered: silences, inhibitions and the resolved guarantee ---- */

static int64_t n_rows(const char *hex, const char *kind, int status)
{
	return q1("SELECT count(*) FROM deliveries WHERE lower(hex(alert_id)) = '%s' AND kind = '%s' AND status = %d",
		  hex, kind, status);
}

/* CFG_BASIC started; r1's KT alert fires at T0+1 and its firing is delivered: its id in ht. */
static void fire_basic(char ht[ERRQ_ID_HEX_BUFSZ])
{
	write_cfg(CFG_BASIC);
	start();
	fake_now = T0 + S(1);
	fail_now("checkout", "TimeoutError", 3);
	alert_hex(ht, "r1", KT);
	wait_lines(1);
	settle();
}

/* CFG_BASIC's circuit opened at T0+1 closes at T0+91 (60 s recovery, 30 s quiet probe). */
static void resolve_basic(void)
{
	tick_at(T0 + S(61));
	tick_at(T0 + S(91));
}

/* The bug of issue 15: a silence added while an alert fires (its firing delivered) held
 * back its resolved for good, and the silence's end sent nothing. */
static void test_silence_during_firing_resolves(void **state)
{
	char ht[ERRQ_ID_HEX_BUFSZ];
	fire_basic(ht);
	fake_now = T0 + S(2);
	struct alerts_answer ans = silence("r1", "", S(3600));
	assert_int_equal(ans.status, ALERTS_OK);
	resolve_basic();
	assert_int_equal(cstate("r1", KT), CIRCUIT_CLOSED);
	wait_lines(2);
	json_t *b = find_line(ht, "resolved", 1);
	assert_non_null(b);
	assert_string_equal(bs(b, "reason"), "probe quiet for 30s");
	settle();
	assert_int_equal(n_rows(ht, "resolved", STORE_DELIVERY_DELIVERED), 1);
	/* the silence's end sends nothing more */
	fake_now = T0 + S(100);
	assert_int_equal(expire(ans.id).status, ALERTS_OK);
	tick_at(T0 + S(101));
	expect_lines(2);
}

/* Reminders are held back by a silence; when it ends on an alert whose firing went out,
 * nothing is sent again (the receiver knows); the resolved goes out. */
static void test_silence_holds_reminders(void **state)
{
	write_cfg("notifiers:\n"
		  "  - name: journal\n"
		  "    type: log\n"
		  "rules:\n"
		  "  - name: r1\n"
		  "    match: {service: checkout}\n"
		  "    trip: {failures: 1, window: 60s}\n"
		  "    recovery_timeout: 1h\n"
		  "    repeat_interval: 10s\n"
		  "    notify: [journal]\n");
	start();
	fake_now = T0 + S(1);
	fail_now("checkout", "E", 1);
	char h[ERRQ_ID_HEX_BUFSZ];
	alert_hex(h, "r1", "");
	wait_lines(1);
	settle();
	fake_now = T0 + S(2);
	struct alerts_answer ans = silence("r1", "", S(25));
	assert_int_equal(ans.status, ALERTS_OK);
	tick_at(T0 + S(11));
	tick_at(T0 + S(21));
	assert_int_equal(n_rows(h, "firing", STORE_DELIVERY_SILENCED), 2); /* reminders 2 and 3 held */
	tick_at(T0 + S(28));                                                /* the silence ended */
	settle();
	assert_int_equal(n_rows(h, "firing", STORE_DELIVERY_SILENCED), 2);
	expect_lines(1);
	tick_at(T0 + S(41)); /* the next reminder goes out */
	wait_lines(2);
	assert_non_null(find_line(h, "firing", 4));
	settle();
}

/* A rule removed by a reload while its alert fires under a silence: the resolved goes out;
 * a notifier taken off a rule that had the firing still gets the resolved. */
static void test_resolved_after_reload_and_notify_change(void **state)
{
	static const char two[] = "notifiers:\n"
				  "  - name: journal\n"
				  "    type: log\n"
				  "rules:\n"
				  "  - name: a\n"
				  "    match: {service: svc-a}\n"
				  "    trip: {failures: 1, window: 60s}\n"
				  "    notify: [journal]\n"
				  "  - name: b\n"
				  "    match: {service: svc-b}\n"
				  "    trip: {failures: 1, window: 60s}\n"
				  "    notify: [journal]\n";
	write_cfg(two);
	start();
	fake_now = T0 + S(1);
	fail_now("svc-a", "E", 1);
	fail_now("svc-b", "E", 1);
	char ha[ERRQ_ID_HEX_BUFSZ], hb[ERRQ_ID_HEX_BUFSZ];
	alert_hex(ha, "a", "");
	alert_hex(hb, "b", "");
	wait_lines(2);
	settle();
	fake_now = T0 + S(2);
	assert_int_equal(silence("a", "", S(3600)).status, ALERTS_OK);
	assert_int_equal(silence("b", "", S(3600)).status, ALERTS_OK);
	/* a removed; b kept (same definition) but notifies nobody now */
	write_cfg("notifiers:\n"
		  "  - name: journal\n"
		  "    type: log\n"
		  "rules:\n"
		  "  - name: b\n"
		  "    match: {service: svc-b}\n"
		  "    trip: {failures: 1, window: 60s}\n"
		  "    recovery_timeout: 60s\n"
		  "    notify: []\n");
	fake_now = T0 + S(3);
	struct alerts_answer ans = do_reload();
	if (ans.status != ALERTS_OK)
		fail_msg("reload: %s", ans.msg);
	wait_lines(3);
	json_t *ra = find_line(ha, "resolved", 1);
	assert_non_null(ra);
	assert_string_equal(bs(ra, "reason"), "rule_removed");
	tick_at(T0 + S(61));
	tick_at(T0 + S(91));
	assert_int_equal(cstate("b", ""), CIRCUIT_CLOSED);
	wait_lines(4);
	assert_non_null(find_line(hb, "resolved", 1));
	settle();
	expect_lines(4);
}

/* The notifier that had the firing leaves the config: its resolved is dead-lettered with
 * the reason (replay sends it once the notifier is back), not silently dropped. */
static void test_resolved_notifier_gone(void **state)
{
	char ht[ERRQ_ID_HEX_BUFSZ], buf[256];
	fire_basic(ht);
	write_cfg("rules:\n"
		  "  - name: r1\n"
		  "    match: {service: checkout}\n"
		  "    group_by: [service, error_type]\n"
		  "    trip: {failures: 3, window: 60s}\n");
	assert_int_equal(do_reload().status, ALERTS_OK);
	resolve_basic();
	assert_int_equal(cstate("r1", KT), CIRCUIT_CLOSED);
	assert_int_equal(n_rows(ht, "resolved", STORE_DELIVERY_DEAD), 1);
	assert_string_equal(qs(buf, sizeof(buf), "SELECT last_error FROM deliveries WHERE kind = 'resolved'"),
			    "notifier 'journal' is no longer in the config");
	/* back in the config: replay sends it */
	write_cfg(CFG_BASIC);
	assert_int_equal(do_reload().status, ALERTS_OK);
	uint8_t id[16];
	alert_blob(id, ht);
	assert_int_equal(replay(id).status, ALERTS_OK);
	wait_lines(2);
	assert_non_null(find_line(ht, "resolved", 1));
	settle();
}

/* Across a restart: the firing went out, a silence came, errqd restarted, the alert
 * resolved: the resolved goes out (what was sent is read from the deliveries table). */
static void test_resolved_across_restart(void **state)
{
	char ht[ERRQ_ID_HEX_BUFSZ];
	fire_basic(ht);
	fake_now = T0 + S(2);
	assert_int_equal(silence("r1", "", S(3600)).status, ALERTS_OK);
	stop();
	fake_now = T0 + S(10);
	start();
	resolve_basic();
	wait_lines(2);
	assert_non_null(find_line(ht, "resolved", 1));
	settle();
	expect_lines(2);
}

static const char CFG_INHIBIT[] = "notifiers:\n"
				  "  - name: journal\n"
				  "    type: log\n"
				  "rules:\n"
				  "  - name: down\n"
				  "    match: {error_type: Down}\n"
				  "    group_by: [service]\n"
				  "    trip: {failures: 1, window: 60s}\n"
				  "    recovery_timeout: 100s\n"
				  "    half_open: {probe: 10s}\n"
				  "    inhibits: [timeouts]\n"
				  "    inhibit_equal: [service]\n"
				  "    notify: [journal]\n"
				  "  - name: timeouts\n"
				  "    match: {error_type: Timeout}\n"
				  "    group_by: [service, task]\n"
				  "    trip: {failures: 1, window: 60s}\n"
				  "    recovery_timeout: 20s\n"
				  "    half_open: {probe: 10s}\n"
				  "    notify: [journal]\n";

/* Inhibition: while "down" is open for a service, "timeouts" alerts of that service are
 * held; another service's are not; when "down" resolves, a muted alert still firing goes
 * out, one that resolved meanwhile never does; one delivered before still gets its resolved. */
static void test_inhibition(void **state)
{
	write_cfg(CFG_INHIBIT);
	start();
	/* delivered before the inhibition: its resolved goes out although muted now */
	fake_now = T0 + S(1);
	fail_now("checkout", "Timeout", 1);
	char h0[ERRQ_ID_HEX_BUFSZ];
	alert_hex(h0, "timeouts", "service=checkout,task=work");
	wait_lines(1);
	settle();
	fake_now = T0 + S(2);
	fail_now("checkout", "Down", 1); /* down opens at 2, half-open at 102, closes at 112 */
	char hd[ERRQ_ID_HEX_BUFSZ];
	alert_hex(hd, "down", "service=checkout");
	wait_lines(2);
	settle();
	tick_at(T0 + S(21));
	tick_at(T0 + S(31)); /* h0 resolves */
	wait_lines(3);
	assert_non_null(find_line(h0, "resolved", 1));
	settle();
	/* muted: same service; not muted: another service */
	fake_now = T0 + S(40);
	fail_now("checkout", "Timeout", 1); /* resolves at 70, muted throughout */
	char h1[ERRQ_ID_HEX_BUFSZ];
	alert_hex(h1, "timeouts", "service=checkout,task=work");
	fail_now("payments", "Timeout", 1);
	char hp[ERRQ_ID_HEX_BUFSZ];
	alert_hex(hp, "timeouts", "service=payments,task=work");
	wait_lines(4);
	assert_non_null(find_line(hp, "firing", 1));
	settle();
	assert_int_equal(n_rows(h1, "firing", STORE_DELIVERY_SILENCED), 1);
	tick_at(T0 + S(60));
	tick_at(T0 + S(70));
	assert_int_equal(n_rows(h1, "resolved", STORE_DELIVERY_SILENCED), 1);
	fake_now = T0 + S(95);
	fail_now("checkout", "Timeout", 1); /* muted, still firing when down resolves */
	char h2[ERRQ_ID_HEX_BUFSZ];
	alert_hex(h2, "timeouts", "service=checkout,task=work");
	assert_int_equal(n_rows(h2, "firing", STORE_DELIVERY_SILENCED), 1);
	expect_lines(5); /* hp resolved at 70 */
	tick_at(T0 + S(102));
	tick_at(T0 + S(112)); /* down resolves: h2's held firing goes out */
	assert_int_equal(cstate("down", "service=checkout"), CIRCUIT_CLOSED);
	assert_int_equal(cstate("timeouts", "service=checkout,task=work"), CIRCUIT_OPEN);
	wait_lines(7);
	assert_non_null(find_line(hd, "resolved", 1));
	assert_non_null(find_line(h2, "firing", 1));
	tick_at(T0 + S(115));
	tick_at(T0 + S(125)); /* h2 resolves, and says so */
	wait_lines(8);
	assert_non_null(find_line(h2, "resolved", 1));
	settle();
	expect_lines(8);
	log_refresh();
	assert_int_equal(count_lines(h1, "firing") + count_lines(h1, "resolved"), 0);
}

/* A reload that drops the inhibits key releases what it muted, at once. */
static void test_inhibition_reload(void **state)
{
	write_cfg(CFG_INHIBIT);
	start();
	fake_now = T0 + S(1);
	fail_now("checkout", "Down", 1);
	fail_now("checkout", "Timeout", 1);
	char h1[ERRQ_ID_HEX_BUFSZ];
	alert_hex(h1, "timeouts", "service=checkout,task=work");
	wait_lines(1);
	settle();
	expect_lines(1);
	char cfg[sizeof(CFG_INHIBIT)];
	snprintf(cfg, sizeof(cfg), "%s", CFG_INHIBIT);
	char *p = strstr(cfg, "    inhibits: [timeouts]\n    inhibit_equal: [service]\n");
	assert_non_null(p);
	size_t cut = strlen("    inhibits: [timeouts]\n    inhibit_equal: [service]\n");
	memmove(p, p + cut, strlen(p + cut) + 1);
	write_cfg(cfg);
	fake_now = T0 + S(2);
	struct alerts_answer ans = do_reload();
	if (ans.status != ALERTS_OK)
		fail_msg("reload: %s", ans.msg);
	assert_int_equal(ans.kept, 2);
	wait_lines(2);
	assert_non_null(find_line(h1, "firing", 1));
	settle();
}

/* Held by both an inhibition and a silence: the end of one alone releases nothing; the end of
 * the second releases the held firing. */
static void test_inhibition_and_silence(void **state)
{
	write_cfg(CFG_INHIBIT);
	start();
	fake_now = T0 + S(1);
	struct alerts_answer sil = silence("timeouts", "", S(3600));
	assert_int_equal(sil.status, ALERTS_OK);
	fail_now("checkout", "Down", 1);
	fail_now("checkout", "Timeout", 1); /* open until 21 */
	char h1[ERRQ_ID_HEX_BUFSZ];
	alert_hex(h1, "timeouts", "service=checkout,task=work");
	wait_lines(1);
	fake_now = T0 + S(5);
	assert_int_equal(expire(sil.id).status, ALERTS_OK); /* still inhibited */
	expect_lines(1);
	assert_int_equal(n_rows(h1, "firing", STORE_DELIVERY_SILENCED), 1);
	fake_now = T0 + S(6);
	sil = silence("timeouts", "", S(3600));
	assert_int_equal(sil.status, ALERTS_OK);
	/* the inhibiting rule leaves the config: its resolved goes out, h1 stays held (silenced) */
	char cfg[sizeof(CFG_INHIBIT)];
	const char *rules = strstr(CFG_INHIBIT, "rules:\n"), *timeouts = strstr(CFG_INHIBIT, "  - name: timeouts\n");
	assert_non_null(rules);
	assert_non_null(timeouts);
	snprintf(cfg, sizeof(cfg), "%.*s%s", (int)(rules - CFG_INHIBIT) + 7, CFG_INHIBIT, timeouts);
	write_cfg(cfg);
	fake_now = T0 + S(7);
	struct alerts_answer ans = do_reload();
	if (ans.status != ALERTS_OK)
		fail_msg("reload: %s", ans.msg);
	assert_int_equal(ans.removed, 1);
	wait_lines(2);
	assert_string_equal(bs(L[1], "status"), "resolved");
	expect_lines(2);
	assert_int_equal(n_rows(h1, "firing", STORE_DELIVERY_SILENCED), 1);
	/* the silence ends too: now the held firing goes out */
	fake_now = T0 + S(8);
	assert_int_equal(expire(sil.id).status, ALERTS_OK);
	assert_int_equal(cstate("timeouts", "service=checkout,task=work"), CIRCUIT_OPEN);
	wait_lines(3);
	assert_non_null(find_line(h1, "firing", 1));
	settle();
	expect_lines(3);
}

/* ---- Alertmanager re-posts resumed at a start (alerts_refresh.c) ---- */

/* The "alerts" field of the start's "re-posting the alerts still firing" log line ("" when
 * there is none). */
static const char *reposted(char *out, size_t outsz)
{
	FILE *f = fopen(F.logp, "r");
	assert_non_null(f);
	char *line = NULL;
	size_t cap = 0;
	out[0] = '\0';
	while (getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		const char *msg = json_string_value(json_object_get(j, "msg"));
		if (msg && !strcmp(msg, "alertmanager: re-posting the alerts still firing"))
			snprintf(out, outsz, "%s", json_string_value(json_object_get(j, "alerts")));
		json_decref(j);
	}
	free(line);
	fclose(f);
	return out;
}

/* Sets the status of an alert's notice (kind, seq) to its notifier, through the store (errqd
 * stopped), as its delivery left it. */
static void set_status(const char *hex, int seq, int status)
{
	int64_t id = q1("SELECT id FROM deliveries WHERE lower(hex(alert_id)) = '%s' AND kind = 'firing' AND seq = %d",
			hex, seq);
	assert_true(id > 0);
	char err[256];
	struct store *s = NULL;
	struct store_opts so = {.path = F.db};
	if (store_open(&s, &so, err, sizeof(err)))
		fail_msg("store_open: %s", err);
	assert_int_equal(store_delivery_update(s, id, status, 1, 0, status == STORE_DELIVERY_DEAD ? 400 : 200,
					       status == STORE_DELIVERY_DEAD ? "HTTP 400" : "", fake_now),
			 1);
	store_close(s);
}

/* Which alerts still firing have their Alertmanager re-posts resumed at a start, from their
 * outbox rows: those whose notifier had a firing (the first or a reminder) delivered, unless
 * a row is still pending (the backlog sends it, re-posted after) — also when later reminders
 * were held back by a silence or went dead (Alertmanager still holds the delivered one until
 * its endsAt).  The receiver is a closed port: only the choice is checked here, by the start's
 * log line; integration test_alertmanager_held_reminder_restart posts to a real Alertmanager. */
static void test_alertmanager_resume_choice(void **state)
{
	write_cfg("notifiers:\n"
		  "  - name: am\n"
		  "    type: alertmanager\n"
		  "    url: http://127.0.0.1:9\n"
		  "rules:\n"
		  "  - name: r1\n"
		  "    group_by: [error_type]\n"
		  "    trip: {failures: 1, window: 60s}\n"
		  "    recovery_timeout: 1h\n"
		  "    repeat_interval: 10s\n"
		  "    notify: [am]\n");
	start();
	fake_now = T0 + S(1);
	struct tb *t = tb_new();
	const char *types[] = {"Held", "Dead", "Pending", "NeverDelivered", "Delivered"};
	enum { N = 5 };
	for (int i = 0; i < N; i++)
		tb_fail(t, "svc", types[i]);
	tb_commit(t);
	tick_at(T0 + S(11)); /* a reminder each */
	assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE kind = 'firing' AND seq = 2"), N);
	char h[N][ERRQ_ID_HEX_BUFSZ], key[64];
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "error_type=%s", types[i]);
		alert_hex(h[i], "r1", key);
	}
	stop();
	/* the outbox as deliveries left it: firing (seq 1) then the reminder (seq 2) */
	const int rows[N][2] = {
	    {STORE_DELIVERY_DELIVERED, STORE_DELIVERY_SILENCED},  /* reminder held by a silence: resumes */
	    {STORE_DELIVERY_DELIVERED, STORE_DELIVERY_DEAD},      /* reminder refused (dead): resumes */
	    {STORE_DELIVERY_DELIVERED, STORE_DELIVERY_PENDING},   /* the backlog sends it first: not now */
	    {STORE_DELIVERY_DEAD, STORE_DELIVERY_SILENCED},       /* Alertmanager never had it: no */
	    {STORE_DELIVERY_DELIVERED, STORE_DELIVERY_DELIVERED}, /* resumes (from the reminder) */
	};
	for (int i = 0; i < N; i++)
		for (int k = 0; k < 2; k++)
			set_status(h[i], k + 1, rows[i][k]);
	char buf[32];
	assert_string_equal(reposted(buf, sizeof(buf)), "");
	fake_now = T0 + S(12);
	start();
	assert_string_equal(reposted(buf, sizeof(buf)), "3");
}

static void test_request_refused_without_callback(void **state)
{
	(void)state;
	char err[1024];
	struct alerts *a = NULL;
	struct alerts_opts o = {.collector = "unit", .clock = fake_clock};
	if (alerts_new(&a, &o, NULL, "(none)", err, sizeof(err)))
		fail_msg("alerts_new: %s", err);
	struct answered w = {.called = false};
	assert_int_equal(alerts_reload(a, on_answer, &w), ALERTS_UNAVAILABLE);
	uint8_t id[16] = {1};
	assert_int_equal(alerts_replay(a, id, on_answer, &w), ALERTS_UNAVAILABLE);
	struct alerts_silence_req req;
	memset(&req, 0, sizeof(req));
	snprintf(req.rule, sizeof(req.rule), "r");
	req.duration_ns = UINT64_C(60) * 1000000000;
	assert_int_equal(alerts_silence_add(a, &req, on_answer, &w), ALERTS_UNAVAILABLE);
	assert_int_equal(alerts_silence_expire(a, 1, on_answer, &w), ALERTS_UNAVAILABLE);
	assert_false(w.called);
	assert_string_equal(alerts_refusal_msg(ALERTS_UNAVAILABLE), "the collector is busy or stopping; try again");
	alerts_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_trip_on_nth_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_backoff_resolve, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_resends_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_circuits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rule_changed_while_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silences, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silence_loaded_past_ended_ones, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silence_across_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_rate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reminders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reminder_due_while_down_sent_at_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silence_during_firing_resolves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silence_holds_reminders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolved_after_reload_and_notify_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolved_notifier_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolved_across_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inhibition, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inhibition_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inhibition_and_silence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alertmanager_resume_choice, setup, teardown),
	    cmocka_unit_test(test_request_refused_without_callback),
	};
	const char *filter = getenv("ERRQ_TEST_FILTER"); /* one test: ERRQ_TEST_FILTER=test_replay */
	if (filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
