/* Integration: the alerting commands of the errq CLI end to end, through the real errq binary
 * against a real errqd: `errq circuits`, `errq alerts`, `errq alert ID`, `errq alerts replay
 * ID`, `errq explain-circuit RULE KEY`, `errq rules list|reload|check FILE` and `errq silence
 * add|list|expire`.  Each test runs its own errqd (ephemeral port, temporary directory and
 * database) with a config whose webhook notifier posts to a real HTTP receiver on 127.0.0.1,
 * and one rule grouping by [service, error_type] that trips on 2 failures in 60s (recovery
 * 60s, so nothing moves on its own while a test runs).
 *
 * What is checked is what DESIGN.md ("CLI and webhook JSON conventions") and docs/errq.1 say:
 * the JSON members and their types (the DESIGN fields plus the additions errq.1 lists, no
 * others), the texts errq.1 quotes, and the exit codes (0 ok, 1 usage, 2 unreachable or
 * failed, 3 not found).  Every wait is a deadline (HARNESS_DEADLINE_MS); absence is asserted
 * by counting once the next expected event has happened, never by sleeping.
 * ERRQ_TEST_FILTER=test_replay runs one test. */
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
#include <jansson.h>
#include <cmocka.h>

#include "errq_str.h"
#include "errq_time.h"
#include "alerts_support.h"

#define RULE "svc-errors"
/* the line of RULE's "- name:" in write_config's file, before any extra notifier lines */
#define RULE_LINE 8
#define ERRQ_MAX_ARGS 24
#define POLL_MS 20

/* Where errq goes: errqd's address, unless a test points it elsewhere. */
static const char *Addr;

/* ---- set-up: a directory for the database and the config, a receiver, errqd ---- */

static int setup(void **state)
{
	(void)state;
	Addr = NULL;
	return alerts_setup("/tmp/errq-alerts-cli-XXXXXX");
}

static int teardown(void **state)
{
	(void)state;
	return alerts_teardown();
}

/* The config: notifier ops (the receiver's /alerts), then more_notifiers (YAML list items),
 * rule RULE notifying `notify` (a YAML flow list), then more_rules.  RULE's "- name:" is at
 * line RULE_LINE plus the lines of more_notifiers; its 7 lines are followed by more_rules. */
static void write_config(const char *notify, const char *more_notifiers, const char *more_rules)
{
	write_file(E.cfg,
		   "name: errqd-itest-cli\n"
		   "notifiers:\n"
		   "  - name: ops\n"
		   "    type: webhook\n"
		   "    url: http://127.0.0.1:%d/alerts\n"
		   "    timeout: 5s\n"
		   "%s"
		   "rules:\n"
		   "  - name: " RULE "\n"
		   "    match: {service: \"svc-*\"}\n"
		   "    group_by: [service, error_type]\n"
		   "    trip: {failures: 2, window: 60s}\n"
		   "    recovery_timeout: 60s\n"
		   "    severity: critical\n"
		   "    notify: %s\n"
		   "%s",
		   E.rv.port, more_notifiers, notify, more_rules);
}

/* A receiver, the config, errqd; errq goes to errqd. */
static void start(const char *notify, const char *more_notifiers, const char *more_rules)
{
	start_receiver(0);
	write_config(notify, more_notifiers, more_rules);
	start_errqd();
	Addr = E.d.addr;
}

/* ---- running errq ---- */

struct run {
	int rc;
	char *out, *err;
	char cmd[1024]; /* for messages */
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static void errq_vrun(struct run *r, const char *a0, va_list ap)
{
	const char *argv[ERRQ_MAX_ARGS + 2];
	int n = 0;
	memset(r, 0, sizeof(*r));
	argv[n++] = ERRQ_CLI_PATH;
	size_t o = (size_t)errq_snprintf(r->cmd, sizeof(r->cmd), "errq");
	for (const char *a = a0; a; a = va_arg(ap, const char *)) {
		if (n > ERRQ_MAX_ARGS)
			fail_msg("%s: more than %d arguments", r->cmd, ERRQ_MAX_ARGS);
		argv[n++] = a;
		if (o < sizeof(r->cmd))
			o += (size_t)errq_snprintf(r->cmd + o, sizeof(r->cmd) - o, " %s", a);
	}
	argv[n] = NULL;
	r->rc = run_capture(argv, Addr, &r->out, &r->err);
	if (!r->out || !r->err)
		fail_msg("'%s' could not be run (exit %d)", r->cmd, r->rc);
}

/* Runs errq (at Addr) and checks its exit status; free r with run_free. */
static void errq_expect(struct run *r, int want, const char *a0, ...) __attribute__((sentinel));
static void errq_expect(struct run *r, int want, const char *a0, ...)
{
	va_list ap;
	va_start(ap, a0);
	errq_vrun(r, a0, ap);
	va_end(ap);
	if (r->rc != want)
		fail_msg("'%s' exited %d, want %d\nstdout: %s\nstderr: %s", r->cmd, r->rc, want, r->out, r->err);
}

/* Runs errq, which must exit 0 and print one JSON document: that document. */
static json_t *errq_json(const char *a0, ...) __attribute__((sentinel));
static json_t *errq_json(const char *a0, ...)
{
	struct run r;
	va_list ap;
	va_start(ap, a0);
	errq_vrun(&r, a0, ap);
	va_end(ap);
	if (r.rc != 0)
		fail_msg("'%s' exited %d, want 0\nstdout: %s\nstderr: %s", r.cmd, r.rc, r.out, r.err);
	json_error_t je;
	json_t *j = json_loads(r.out, 0, &je);
	if (!j)
		fail_msg("'%s' printed no JSON document (%s): %s", r.cmd, je.text, r.out);
	run_free(&r);
	return j;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' is not in:\n%s", needle, hay);
}

/* ---- JSON ---- */

static void assert_jnull(json_t *o, const char *k)
{
	if (!json_is_null(jget(o, k)))
		fail_msg("'%s' is not null", k);
}

/* o has exactly the members of want (NULL-terminated), no more, no fewer. */
static void assert_members(json_t *o, const char *const *want)
{
	const char *k;
	json_t *v;
	size_t n = 0;
	assert_true(json_is_object(o));
	for (; want[n]; n++)
		if (!json_object_get(o, want[n]))
			fail_msg("member '%s' is missing", want[n]);
	json_object_foreach(o, k, v)
	{
		bool known = false;
		(void)v;
		for (size_t i = 0; want[i] && !known; i++)
			known = !strcmp(want[i], k);
		if (!known)
			fail_msg("member '%s' is neither in DESIGN.md nor among errq.1's additions", k);
	}
	assert_int_equal(json_object_size(o), n);
}

/* An RFC 3339 UTC time with milliseconds as milliseconds since the epoch. */
static int64_t time_ms(const char *s)
{
	struct tm tm;
	int ms;
	memset(&tm, 0, sizeof(tm));
	assert_rfc3339_ms(s);
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		   &tm.tm_sec, &ms) != 7)
		fail_msg("cannot read the time '%s'", s);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* A circuit key object: {"service": service, "error_type": type}, in the group_by order. */
static void assert_key(json_t *key, const char *service, const char *type)
{
	assert_true(json_is_object(key));
	assert_int_equal(json_object_size(key), 2);
	void *it = json_object_iter(key);
	assert_non_null(it);
	assert_string_equal(json_object_iter_key(it), "service");
	assert_string_equal(jstr(key, "service"), service);
	assert_string_equal(jstr(key, "error_type"), type);
}

/* DESIGN.md's circuit row, then the additions errq.1 lists. */
static const char *const CIRCUIT_MEMBERS[] = {
    "rule",     "key",	      "state",   "since",	 "failures_in_window", "next_transition_at",
    "key_text", "window_seconds", "alert_id", "calls_ok", "calls_failed",	    "stale",
    NULL,
};
/* DESIGN.md's alert row, then the additions errq.1 lists. */
static const char *const ALERT_MEMBERS[] = {
    "alert_id", "rule",	 "key",	       "status", "severity",	       "opened_at",	 "resolved_at", "delivery",
    "key_text", "silenced", "state", "failures_in_window", "window_seconds", "resolve_reason", "sample",
    NULL,
};
static const char *const DELIVERY_MEMBERS[] = {
    "notifier", "status", "attempts", "kind", "seq", "http_status", "last_error", "next_attempt_at", "updated_at", NULL,
};
static const char *const RULE_MEMBERS[] = {
    "name",    "match",	 "match_text",	    "group_by", "notify", "trip", "recovery_timeout_ms",
    "severity", "max_circuits", "circuits", "open",	"overflow_failures", "line", NULL,
};
static const char *const SILENCE_MEMBERS[] = {
    "id", "rule", "matchers", "matchers_text", "comment", "created_by", "created_at", "starts_at", "ends_at",
    "expired_at", "active", NULL,
};

/* The row of array a whose member k is the string v (borrowed), or NULL. */
static json_t *row_with(json_t *a, const char *k, const char *v)
{
	size_t i;
	json_t *row;
	assert_true(json_is_array(a));
	json_array_foreach(a, i, row)
	{
		const char *s = json_string_value(json_object_get(row, k));
		if (s && !strcmp(s, v))
			return row;
	}
	return NULL;
}

/* The newest delivery to notifier in an alert object (borrowed), or NULL. */
static json_t *delivery_of(json_t *alert, const char *notifier)
{
	json_t *dl = jget(alert, "delivery"), *found = NULL, *d;
	size_t i;
	assert_true(json_is_array(dl));
	json_array_foreach(dl, i, d)
	{
		const char *n = json_string_value(json_object_get(d, "notifier"));
		if (n && !strcmp(n, notifier))
			found = d; /* oldest first: the last one is the newest */
	}
	return found;
}

/* Polls `errq alert ID -o json` until the newest delivery to notifier has status want;
 * returns that answer. */
static json_t *wait_delivery(const char *alert_id, const char *notifier, const char *want)
{
	uint64_t dl = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	for (;;) {
		json_t *a = errq_json("alert", alert_id, "-o", "json", NULL);
		json_t *d = delivery_of(a, notifier);
		const char *st = d ? json_string_value(json_object_get(d, "status")) : NULL;
		if (st && !strcmp(st, want))
			return a;
		if (errq_mono_ns() > dl) {
			char *s = json_dumps(a, 0);
			fail_msg("timed out after %d ms waiting for alert %s's delivery to %s to be %s: %s (log %s)",
				 HARNESS_DEADLINE_MS, alert_id, notifier, want, s, E.d.log);
		}
		json_decref(a);
		harness_msleep(POLL_MS);
	}
}

/* ---- what the receiver got ---- */

/* The path of request i ("POST /alerts HTTP/1.1" -> "/alerts"). */
static void request_path(int i, char *out, size_t n)
{
	const char *h = E.rv.req[i].headers;
	const char *p = strchr(h, ' ');
	assert_non_null(p);
	p++;
	size_t len = strcspn(p, " \r\n");
	assert_true(len < n);
	memcpy(out, p, len);
	out[len] = '\0';
}

/* ---- 1. errq circuits ---- */

static void test_circuits(void **state)
{
	start("[ops]", "", "");

	/* nothing failed yet: an empty array, exit 0 */
	json_t *a = errq_json("circuits", "-o", "json", NULL);
	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);

	send_failures(2, "svc-a", "ValueError", NULL, NULL); /* trips: failures 2 >= 2 */
	a = errq_json("circuits", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 1);
	json_t *c = json_array_get(a, 0);
	assert_members(c, CIRCUIT_MEMBERS);
	assert_string_equal(jstr(c, "rule"), RULE);
	assert_key(jget(c, "key"), "svc-a", "ValueError");
	assert_string_equal(jstr(c, "key_text"), "service=svc-a,error_type=ValueError");
	assert_string_equal(jstr(c, "state"), "open");
	int64_t since = time_ms(jstr(c, "since"));
	assert_int_equal(jint(c, "failures_in_window"), 2);
	/* open: the probe starts recovery_timeout (60s) after it opened */
	assert_int_equal(time_ms(jstr(c, "next_transition_at")) - since, 60000);
	assert_int_equal(jint(c, "window_seconds"), 60);
	assert_true(is_hex32(jstr(c, "alert_id")));
	assert_int_equal(jint(c, "calls_ok"), 0);
	assert_int_equal(jint(c, "calls_failed"), 0);
	assert_true(json_is_false(jget(c, "stale")));
	char alert_id[ERRQ_ID_HEX_BUFSZ];
	errq_snprintf(alert_id, sizeof(alert_id), "%s", jstr(c, "alert_id"));
	json_decref(a);

	/* a second circuit of the rule, closed with one failure */
	send_failures(1, "svc-b", "ValueError", NULL, NULL);
	a = errq_json("circuits", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 2);
	c = row_with(a, "key_text", "service=svc-b,error_type=ValueError");
	assert_non_null(c);
	assert_members(c, CIRCUIT_MEMBERS);
	assert_string_equal(jstr(c, "state"), "closed");
	assert_int_equal(jint(c, "failures_in_window"), 1);
	assert_jnull(c, "next_transition_at");
	assert_jnull(c, "alert_id");
	json_decref(a);

	/* --state filters: closed leaves the open one out, open keeps only it */
	a = errq_json("circuits", "--state", "closed", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 1);
	assert_string_equal(jstr(json_array_get(a, 0), "state"), "closed");
	assert_null(row_with(a, "key_text", "service=svc-a,error_type=ValueError"));
	json_decref(a);
	a = errq_json("circuits", "--state", "open", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 1);
	c = json_array_get(a, 0);
	assert_string_equal(jstr(c, "key_text"), "service=svc-a,error_type=ValueError");
	assert_string_equal(jstr(c, "alert_id"), alert_id);
	json_decref(a);
	a = errq_json("circuits", "--state", "half_open", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);

	/* --rule: the rule's circuits; an unknown rule has none (an empty list exits 0) */
	a = errq_json("circuits", "--rule", RULE, "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 2);
	json_decref(a);
	a = errq_json("circuits", "--rule", "nope", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);

	struct run r;
	errq_expect(&r, 1, "circuits", "--state", "ajar", NULL); /* a bad --state is a usage error */
	assert_contains(r.err, "invalid --state 'ajar'");
	assert_string_equal(r.out, "");
	run_free(&r);

	/* the table: FAILURES as "2 in 60s" */
	errq_expect(&r, 0, "circuits", NULL);
	assert_contains(r.out, "RULE");
	assert_contains(r.out, "service=svc-a,error_type=ValueError");
	assert_contains(r.out, "open");
	assert_contains(r.out, "2 in 60s");
	assert_contains(r.out, "1 in 60s");
	fprintf(stderr, "errq circuits:\n%s", r.out);
	run_free(&r);
}

/* ---- 2. errq alerts, errq alert ID ---- */

static void test_alerts(void **state)
{
	start("[ops]", "", "");
	json_t *a = errq_json("alerts", "-o", "json", NULL);
	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);

	send_failures(2, "svc-a", "ValueError", NULL, NULL);
	assert_true(receiver_wait(&E.rv, 1) >= 1);
	json_t *b = body_json(0);
	char id[ERRQ_ID_HEX_BUFSZ];
	errq_snprintf(id, sizeof(id), "%s", jstr(b, "alert_id"));
	json_decref(b);
	json_decref(wait_delivery(id, "ops", "delivered"));

	a = errq_json("alerts", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 1);
	json_t *al = json_array_get(a, 0);
	assert_members(al, ALERT_MEMBERS);
	assert_true(is_hex32(jstr(al, "alert_id")));
	assert_string_equal(jstr(al, "alert_id"), id); /* the one the webhook carried */
	assert_string_equal(jstr(al, "rule"), RULE);
	assert_key(jget(al, "key"), "svc-a", "ValueError");
	assert_string_equal(jstr(al, "key_text"), "service=svc-a,error_type=ValueError");
	assert_string_equal(jstr(al, "status"), "firing");
	assert_string_equal(jstr(al, "severity"), "critical");
	assert_rfc3339_ms(jstr(al, "opened_at"));
	assert_jnull(al, "resolved_at");
	json_t *dl = jget(al, "delivery");
	assert_true(json_is_array(dl));
	assert_int_equal(json_array_size(dl), 1);
	json_t *d = json_array_get(dl, 0);
	assert_members(d, DELIVERY_MEMBERS);
	assert_string_equal(jstr(d, "notifier"), "ops");
	assert_string_equal(jstr(d, "status"), "delivered");
	assert_int_equal(jint(d, "attempts"), 1);
	assert_string_equal(jstr(d, "kind"), "firing");
	assert_int_equal(jint(d, "seq"), 1);
	assert_int_equal(jint(d, "http_status"), 200);
	assert_jnull(d, "last_error");
	assert_rfc3339_ms(jstr(d, "updated_at"));
	assert_true(json_is_false(jget(al, "silenced")));
	assert_string_equal(jstr(al, "state"), "open");
	assert_int_equal(jint(al, "failures_in_window"), 2);
	assert_int_equal(jint(al, "window_seconds"), 60);
	assert_jnull(al, "resolve_reason");
	json_t *sample = jget(al, "sample");
	assert_true(json_is_object(sample));
	assert_string_equal(jstr(sample, "service"), "svc-a");
	assert_string_equal(jstr(sample, "error_type"), "ValueError");
	char opened_at[64];
	errq_snprintf(opened_at, sizeof(opened_at), "%s", jstr(al, "opened_at"));
	json_decref(a);

	/* filters */
	a = errq_json("alerts", "--status", "firing", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 1);
	json_decref(a);
	a = errq_json("alerts", "--status", "resolved", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);
	a = errq_json("alerts", "--rule", "nope", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);

	/* one alert: one object, every delivery */
	json_t *one = errq_json("alert", id, "-o", "json", NULL);
	assert_members(one, ALERT_MEMBERS);
	assert_string_equal(jstr(one, "alert_id"), id);
	assert_string_equal(jstr(one, "status"), "firing");
	assert_string_equal(jstr(one, "opened_at"), opened_at);
	assert_jnull(one, "resolved_at");
	assert_int_equal(json_array_size(jget(one, "delivery")), 1);
	d = delivery_of(one, "ops");
	assert_non_null(d);
	assert_string_equal(jstr(d, "status"), "delivered");
	assert_int_equal(jint(d, "attempts"), 1);
	json_decref(one);

	/* by the short id errq alerts shows (the last 12 hex digits), and the UUID form */
	const char *short_id = id + 20;
	one = errq_json("alert", short_id, "-o", "json", NULL);
	assert_string_equal(jstr(one, "alert_id"), id);
	json_decref(one);
	char uuid[40];
	errq_snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", id, id + 8, id + 12, id + 16, id + 20);
	one = errq_json("alert", uuid, "-o", "json", NULL);
	assert_string_equal(jstr(one, "alert_id"), id);
	json_decref(one);

	struct run r;
	errq_expect(&r, 0, "alerts", NULL);
	assert_contains(r.out, short_id);
	assert_contains(r.out, "ops:delivered");
	assert_contains(r.out, "firing");
	fprintf(stderr, "errq alerts:\n%s", r.out);
	run_free(&r);

	/* not found: 3 */
	errq_expect(&r, 3, "alert", "0123456789abcdef0123456789abcdef", NULL);
	assert_contains(r.err, "alert 0123456789abcdef0123456789abcdef not found");
	assert_string_equal(r.out, "");
	run_free(&r);
	char other[16];
	errq_snprintf(other, sizeof(other), "%s", short_id);
	other[11] = other[11] == 'f' ? '0' : 'f';
	errq_expect(&r, 3, "alert", other, NULL);
	assert_contains(r.err, "not found at collector");
	assert_contains(r.err, "no alert id ends with");
	run_free(&r);
	/* malformed: 1 */
	errq_expect(&r, 1, "alert", "xyz", NULL);
	assert_contains(r.err, "invalid alert id 'xyz'");
	run_free(&r);
}

/* ---- 3. errq explain-circuit ---- */

static void test_explain_circuit(void **state)
{
	start("[ops]", "", "");
	send_failures(2, "svc-a", "ValueError", NULL, NULL);

	/* the key's fields in the other order than group_by */
	struct run r;
	errq_expect(&r, 0, "explain-circuit", RULE, "error_type=ValueError,service=svc-a", NULL);
	fprintf(stderr, "errq explain-circuit:\n%s", r.out);
	assert_contains(r.out, "service=svc-a,error_type=ValueError");
	assert_contains(r.out, "open since");
	assert_contains(r.out, "closed -> open: failures 2 >= 2 in 60s");
	run_free(&r);

	json_t *x = errq_json("explain-circuit", RULE, "error_type=ValueError,service=svc-a", "-o", "json", NULL);
	assert_string_equal(jstr(x, "rule"), RULE);
	assert_key(jget(x, "key"), "svc-a", "ValueError");
	assert_string_equal(jstr(x, "key_text"), "service=svc-a,error_type=ValueError");
	json_t *c = jget(x, "circuit");
	assert_members(c, CIRCUIT_MEMBERS);
	assert_string_equal(jstr(c, "state"), "open");
	json_t *ts = jget(x, "transitions");
	assert_true(json_is_array(ts));
	assert_int_equal(json_array_size(ts), 1);
	json_t *t = json_array_get(ts, 0);
	assert_string_equal(jstr(t, "from"), "closed");
	assert_string_equal(jstr(t, "to"), "open");
	assert_string_equal(jstr(t, "reason"), "failures 2 >= 2 in 60s");
	assert_int_equal(jint(t, "failures_in_window"), 2);
	assert_int_equal(jint(t, "window_seconds"), 60);
	assert_string_equal(jstr(t, "at"), jstr(c, "since"));
	assert_int_equal(time_ms(jstr(t, "next_transition_at")) - time_ms(jstr(t, "at")), 60000);
	assert_string_equal(jstr(t, "alert_id"), jstr(c, "alert_id"));
	json_decref(x);

	/* a key the rule can have but no circuit: circuit null, no transitions */
	x = errq_json("explain-circuit", RULE, "service=svc-z,error_type=E", "-o", "json", NULL);
	assert_jnull(x, "circuit");
	assert_int_equal(json_array_size(jget(x, "transitions")), 0);
	json_decref(x);

	/* no such rule: 3 */
	errq_expect(&r, 3, "explain-circuit", "nope", "service=svc-a,error_type=ValueError", NULL);
	assert_contains(r.err, "rule 'nope' not found");
	assert_string_equal(r.out, "");
	run_free(&r);
	/* a key the rule cannot have (an unknown field, a missing one): 1 */
	errq_expect(&r, 1, "explain-circuit", RULE, "service=svc-a,error_type=ValueError,task=x", NULL);
	assert_contains(r.err, "does not group by 'task'");
	run_free(&r);
	errq_expect(&r, 1, "explain-circuit", RULE, "service=svc-a", NULL);
	assert_contains(r.err, "missing field 'error_type'");
	run_free(&r);
}

/* ---- 4. errq rules list|check|reload ---- */

#define OTHER_RULE                                                                                     \
	"  - name: other\n"                                                                            \
	"    match: {service: other}\n"                                                               \
	"    trip: {failures: 5, window: 60s}\n"                                                       \
	"    notify: [ops]\n"
/* the same rule with a bad window, on line RULE_LINE + 7 + 2 */
#define OTHER_RULE_BAD                                                                                 \
	"  - name: other\n"                                                                            \
	"    match: {service: other}\n"                                                               \
	"    trip: {failures: 5, window: 90x}\n"                                                       \
	"    notify: [ops]\n"

static void test_rules(void **state)
{
	start("[ops]", "", "");
	send_failures(2, "svc-a", "ValueError", NULL, NULL);
	assert_true(receiver_wait(&E.rv, 1) >= 1);

	json_t *a = errq_json("rules", "list", "-o", "json", NULL);
	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), 1);
	json_t *ru = json_array_get(a, 0);
	assert_members(ru, RULE_MEMBERS);
	assert_string_equal(jstr(ru, "name"), RULE);
	json_t *m = jget(ru, "match");
	assert_true(json_is_object(m));
	assert_int_equal(json_object_size(m), 1);
	assert_string_equal(jstr(m, "service"), "svc-*");
	assert_string_equal(jstr(ru, "match_text"), "service=svc-*");
	json_t *gb = jget(ru, "group_by");
	assert_int_equal(json_array_size(gb), 2);
	assert_string_equal(json_string_value(json_array_get(gb, 0)), "service");
	assert_string_equal(json_string_value(json_array_get(gb, 1)), "error_type");
	json_t *nt = jget(ru, "notify");
	assert_int_equal(json_array_size(nt), 1);
	assert_string_equal(json_string_value(json_array_get(nt, 0)), "ops");
	assert_string_equal(jstr(ru, "trip"), "2 failures in 60s");
	assert_int_equal(jint(ru, "recovery_timeout_ms"), 60000);
	assert_string_equal(jstr(ru, "severity"), "critical");
	assert_int_equal(jint(ru, "circuits"), 1);
	assert_int_equal(jint(ru, "open"), 1);
	assert_int_equal(jint(ru, "line"), RULE_LINE);
	json_decref(a);

	json_t *circ = errq_json("circuits", "-o", "json", NULL);
	assert_int_equal(json_array_size(circ), 1);
	char since[64], alert_id[ERRQ_ID_HEX_BUFSZ];
	errq_snprintf(since, sizeof(since), "%s", jstr(json_array_get(circ, 0), "since"));
	errq_snprintf(alert_id, sizeof(alert_id), "%s", jstr(json_array_get(circ, 0), "alert_id"));
	json_decref(circ);

	/* rules check needs no collector: errq points at a closed port, where a command that
	 * needs one fails (2) */
	char bad[400], want[600];
	errq_snprintf(bad, sizeof(bad), "%s/bad.yaml", E.d.dir);
	write_file(bad, "rules:\n"
			"  - name: bad-window\n"
			"    match: {service: checkout}\n"
			"    trip:\n"
			"      failures: 3\n"
			"      window: 90x\n");
	Addr = "127.0.0.1:1";
	struct run r;
	errq_expect(&r, 2, "rules", "list", NULL);
	assert_contains(r.err, "cannot reach collector at 127.0.0.1:1");
	run_free(&r);
	errq_expect(&r, 0, "rules", "check", E.cfg, NULL);
	errq_snprintf(want, sizeof(want), "%s: 1 rule, 1 notifier: ok", E.cfg);
	assert_contains(r.out, want);
	run_free(&r);
	json_t *ck = errq_json("rules", "check", E.cfg, "-o", "json", NULL);
	assert_string_equal(jstr(ck, "file"), E.cfg);
	assert_int_equal(jint(ck, "rules"), 1);
	assert_int_equal(jint(ck, "notifiers"), 1);
	assert_true(json_is_true(jget(ck, "ok")));
	json_decref(ck);
	errq_expect(&r, 1, "rules", "check", bad, NULL);
	fprintf(stderr, "errq rules check (bad): %s", r.err);
	assert_string_equal(r.out, "");
	assert_contains(r.err, bad);
	assert_contains(r.err, "line 6");
	assert_contains(r.err, "trip.window");
	assert_contains(r.err, "'90x' is not a duration");
	run_free(&r);
	errq_expect(&r, 1, "rules", "check", "/nonexistent/errqd.yaml", NULL);
	assert_contains(r.err, "/nonexistent/errqd.yaml");
	run_free(&r);
	Addr = E.d.addr;

	/* a rule added: reloaded; the unchanged rule keeps its open circuit */
	write_config("[ops]", "", OTHER_RULE);
	errq_expect(&r, 0, "rules", "reload", NULL);
	assert_contains(r.out, "rules reloaded: 2 rules, 1 notifier; 1 kept their circuits, 0 changed (their "
			       "circuits resolved), 0 removed");
	run_free(&r);
	a = errq_json("rules", "list", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 2);
	ru = row_with(a, "name", RULE);
	assert_non_null(ru);
	assert_int_equal(jint(ru, "circuits"), 1);
	assert_int_equal(jint(ru, "open"), 1);
	ru = row_with(a, "name", "other");
	assert_non_null(ru);
	assert_members(ru, RULE_MEMBERS);
	assert_string_equal(jstr(ru, "trip"), "5 failures in 60s");
	assert_int_equal(jint(ru, "circuits"), 0);
	assert_int_equal(jint(ru, "line"), RULE_LINE + 7);
	assert_int_equal(json_array_size(jget(ru, "group_by")), 0);
	json_decref(a);
	circ = errq_json("circuits", "-o", "json", NULL);
	assert_int_equal(json_array_size(circ), 1);
	json_t *c = json_array_get(circ, 0);
	assert_string_equal(jstr(c, "rule"), RULE);
	assert_string_equal(jstr(c, "state"), "open");
	assert_string_equal(jstr(c, "since"), since);
	assert_string_equal(jstr(c, "alert_id"), alert_id);
	assert_true(json_is_false(jget(c, "stale")));
	json_decref(circ);

	/* a file with an error: refused with its file and line, exit 1; nothing changed */
	write_config("[ops]", "", OTHER_RULE_BAD);
	errq_expect(&r, 1, "rules", "reload", NULL);
	fprintf(stderr, "errq rules reload (bad): %s", r.err);
	assert_string_equal(r.out, "");
	assert_contains(r.err, E.cfg);
	char line[32];
	errq_snprintf(line, sizeof(line), "line %d", RULE_LINE + 7 + 2);
	assert_contains(r.err, line);
	assert_contains(r.err, "trip.window");
	run_free(&r);
	a = errq_json("rules", "list", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 2);
	assert_non_null(row_with(a, "name", RULE));
	ru = row_with(a, "name", "other");
	assert_non_null(ru);
	assert_string_equal(jstr(ru, "trip"), "5 failures in 60s");
	json_decref(a);
	circ = errq_json("circuits", "-o", "json", NULL);
	assert_int_equal(json_array_size(circ), 1);
	assert_string_equal(jstr(json_array_get(circ, 0), "state"), "open");
	assert_string_equal(jstr(json_array_get(circ, 0), "alert_id"), alert_id);
	json_decref(circ);

	/* the good file again, as JSON: both rules kept */
	write_config("[ops]", "", OTHER_RULE);
	json_t *rl = errq_json("rules", "reload", "-o", "json", NULL);
	assert_int_equal(jint(rl, "rules"), 2);
	assert_int_equal(jint(rl, "notifiers"), 1);
	assert_int_equal(jint(rl, "kept"), 2);
	assert_int_equal(jint(rl, "changed"), 0);
	assert_int_equal(jint(rl, "removed"), 0);
	json_decref(rl);
	/* the kept circuit's alert never resolved: the firing notice is all the receiver got
	 * (the circuits above, still open with the same alert, are the proof; this is a check) */
	assert_int_equal(receiver_count(&E.rv), 1);
}

/* ---- 5. silences ---- */

static void test_silences(void **state)
{
	start("[ops]", "", "");
	struct run r;

	/* refused: a field the rule's key does not have, a rule not in force, no --comment */
	errq_expect(&r, 1, "silence", "add", "--rule", RULE, "--match", "nosuchfield=x", "--for", "1h", "--comment",
		    "maint", NULL);
	assert_contains(r.err, "has no key field 'nosuchfield'");
	run_free(&r);
	/* a well-formed rule name that is not in force is "not found" (exit 3), with the rules
	 * that are (issue 15: the same words as explain-circuit) */
	errq_expect(&r, 3, "silence", "add", "--rule", "nope", "--match", "service=svc-a", "--for", "1h", "--comment",
		    "maint", NULL);
	assert_contains(r.err, "rule 'nope' not found at collector");
	assert_contains(r.err, "(rules: " RULE);
	run_free(&r);
	errq_expect(&r, 1, "silence", "add", "--rule", RULE, "--for", "1h", NULL);
	assert_contains(r.err, "--comment");
	run_free(&r);
	json_t *l = errq_json("silence", "list", "--all", "-o", "json", NULL);
	assert_int_equal(json_array_size(l), 0); /* none of those was added */
	json_decref(l);

	errq_expect(&r, 0, "silence", "add", "--rule", RULE, "--match", "service=svc-a", "--for", "1h", "--comment",
		    "maint", NULL);
	fprintf(stderr, "errq silence add: %s", r.out);
	long long sid = 0;
	if (sscanf(r.out, "silence %lld added: ", &sid) != 1 || sid <= 0)
		fail_msg("no silence id in: %s", r.out);
	assert_contains(r.out, "added: rule " RULE ", keys matching service=svc-a; ends in ");
	assert_contains(r.out, ": maint\n");
	run_free(&r);
	char sids[24];
	errq_snprintf(sids, sizeof(sids), "%lld", sid);

	l = errq_json("silence", "list", "-o", "json", NULL);
	assert_true(json_is_array(l));
	assert_int_equal(json_array_size(l), 1);
	json_t *s = json_array_get(l, 0);
	assert_members(s, SILENCE_MEMBERS);
	assert_int_equal(jint(s, "id"), sid);
	assert_string_equal(jstr(s, "rule"), RULE);
	json_t *m = jget(s, "matchers");
	assert_true(json_is_object(m));
	assert_int_equal(json_object_size(m), 1);
	assert_string_equal(jstr(m, "service"), "svc-a");
	assert_string_equal(jstr(s, "matchers_text"), "service=svc-a");
	assert_string_equal(jstr(s, "comment"), "maint");
	assert_non_null(strchr(jstr(s, "created_by"), '@'));
	assert_int_equal(time_ms(jstr(s, "ends_at")) - time_ms(jstr(s, "starts_at")), 3600 * 1000);
	assert_rfc3339_ms(jstr(s, "created_at"));
	assert_jnull(s, "expired_at");
	assert_true(json_is_true(jget(s, "active")));
	json_decref(l);

	/* svc-a trips under the silence: recorded as silenced, in the same transaction; svc-b
	 * trips after it and is delivered, and is the only request the receiver gets */
	send_failures(2, "svc-a", "ValueError", NULL, NULL);
	send_failures(2, "svc-b", "ValueError", NULL, NULL);
	json_t *al = errq_json("alerts", "-o", "json", NULL);
	assert_int_equal(json_array_size(al), 2);
	json_t *qa = row_with(al, "key_text", "service=svc-a,error_type=ValueError");
	json_t *qb = row_with(al, "key_text", "service=svc-b,error_type=ValueError");
	assert_non_null(qa);
	assert_non_null(qb);
	char ida[ERRQ_ID_HEX_BUFSZ], idb[ERRQ_ID_HEX_BUFSZ];
	errq_snprintf(ida, sizeof(ida), "%s", jstr(qa, "alert_id"));
	errq_snprintf(idb, sizeof(idb), "%s", jstr(qb, "alert_id"));
	json_t *d = delivery_of(qa, "ops");
	assert_non_null(d);
	assert_string_equal(jstr(d, "status"), "silenced");
	assert_int_equal(jint(d, "attempts"), 0);
	assert_true(json_is_true(jget(qa, "silenced")));
	assert_string_equal(jstr(qa, "status"), "firing");
	assert_true(json_is_false(jget(qb, "silenced")));
	json_decref(al);

	json_t *one = wait_delivery(idb, "ops", "delivered");
	assert_int_equal(jint(delivery_of(one, "ops"), "attempts"), 1);
	json_decref(one);
	assert_true(receiver_wait(&E.rv, 1) >= 1);
	assert_int_equal(receiver_count(&E.rv), 1);
	json_t *b = body_json(0);
	assert_string_equal(jstr(b, "alert_id"), idb);
	assert_string_equal(jstr(jget(b, "key"), "service"), "svc-b");
	json_decref(b);
	/* still silenced */
	one = errq_json("alert", ida, "-o", "json", NULL);
	assert_string_equal(jstr(delivery_of(one, "ops"), "status"), "silenced");
	json_decref(one);
	errq_expect(&r, 0, "alerts", NULL);
	assert_contains(r.out, "firing (silenced)");
	assert_contains(r.out, "ops:silenced");
	fprintf(stderr, "errq alerts:\n%s", r.out);
	run_free(&r);

	/* expired: the held firing goes out, once */
	errq_expect(&r, 0, "silence", "expire", sids, NULL);
	fprintf(stderr, "errq silence expire: %s", r.out);
	char want[128];
	errq_snprintf(want, sizeof(want), "silence %s expired: rule " RULE ", keys matching service=svc-a; ended early ",
		      sids);
	assert_contains(r.out, want);
	run_free(&r);
	assert_true(receiver_wait(&E.rv, 2) >= 2);
	b = body_json(1);
	assert_string_equal(jstr(b, "alert_id"), ida);
	assert_string_equal(jstr(b, "status"), "firing");
	assert_string_equal(jstr(jget(b, "key"), "service"), "svc-a");
	json_decref(b);
	errq_snprintf(want, sizeof(want), "%s:firing:1", ida);
	assert_header(1, "Idempotency-Key", want);
	one = wait_delivery(ida, "ops", "delivered");
	assert_int_equal(jint(delivery_of(one, "ops"), "attempts"), 1);
	assert_true(json_is_false(jget(one, "silenced")));
	assert_int_equal(json_array_size(jget(one, "delivery")), 1); /* the held row itself went out */
	json_decref(one);
	assert_int_equal(receiver_count(&E.rv), 2);

	/* ended: not in force any more (3 when expired again), listed with --all */
	errq_expect(&r, 3, "silence", "expire", sids, NULL);
	assert_contains(r.err, "active silence");
	assert_contains(r.err, "not found");
	assert_string_equal(r.out, "");
	run_free(&r);
	errq_expect(&r, 3, "silence", "expire", "999", NULL);
	run_free(&r);
	errq_expect(&r, 1, "silence", "expire", "x1", NULL);
	run_free(&r);
	l = errq_json("silence", "list", "-o", "json", NULL);
	assert_int_equal(json_array_size(l), 0);
	json_decref(l);
	l = errq_json("silence", "list", "--all", "-o", "json", NULL);
	assert_int_equal(json_array_size(l), 1);
	s = json_array_get(l, 0);
	assert_int_equal(jint(s, "id"), sid);
	assert_true(json_is_false(jget(s, "active")));
	assert_rfc3339_ms(jstr(s, "expired_at"));
	json_decref(l);
	assert_int_equal(receiver_count(&E.rv), 2);
}

/* ---- 6. a dead delivery replayed ---- */

static void test_replay(void **state)
{
	char fragile[256];
	/* a second notifier on the same receiver (path /fragile, one attempt), needing the
	 * receiver's port: the set-up of start(), by hand.  The rule notifies only fragile, so
	 * the receiver's first answer (400: refused, not down, so dead at once) is fragile's
	 * whatever order the notifier sends one alert's notices to several notifiers in. */
	assert_int_equal(receiver_start(&E.rv, 0), 0);
	E.rv_up = true;
	errq_snprintf(fragile, sizeof(fragile),
		      "  - name: fragile\n"
		      "    type: webhook\n"
		      "    url: http://127.0.0.1:%d/fragile\n"
		      "    max_attempts: 1\n",
		      E.rv.port);
	receiver_script(&E.rv, 400, 0);
	write_config("[fragile]", fragile, "");
	const char *args[] = {"--config", E.cfg, NULL};
	assert_int_equal(errqd_start(&E.d, args), 0);
	Addr = E.d.addr;

	send_failures(2, "svc-a", "ValueError", NULL, NULL);
	assert_true(receiver_wait(&E.rv, 1) >= 1);
	char path[64];
	request_path(0, path, sizeof(path));
	assert_string_equal(path, "/fragile");
	assert_int_equal(E.rv.req[0].status, 400);
	json_t *b = body_json(0);
	char id[ERRQ_ID_HEX_BUFSZ], idem[128];
	errq_snprintf(id, sizeof(id), "%s", jstr(b, "alert_id"));
	json_decref(b);
	errq_snprintf(idem, sizeof(idem), "%s:firing:1", id);
	assert_header(0, "Idempotency-Key", idem);

	json_decref(wait_delivery(id, "fragile", "dead"));
	json_t *a = errq_json("alerts", "-o", "json", NULL);
	assert_int_equal(json_array_size(a), 1);
	json_t *al = json_array_get(a, 0);
	assert_string_equal(jstr(al, "alert_id"), id);
	assert_int_equal(json_array_size(jget(al, "delivery")), 1);
	assert_null(delivery_of(al, "ops")); /* not in the rule's notify */
	json_t *d = delivery_of(al, "fragile");
	assert_non_null(d);
	assert_members(d, DELIVERY_MEMBERS);
	assert_string_equal(jstr(d, "status"), "dead");
	assert_int_equal(jint(d, "attempts"), 1);
	assert_int_equal(jint(d, "http_status"), 400);
	assert_string_equal(jstr(d, "last_error"), "HTTP 400");
	json_decref(a);
	struct run r;
	errq_expect(&r, 0, "alerts", NULL);
	assert_contains(r.out, "fragile:dead");
	run_free(&r);

	/* replayed (by the short id): the same body with the same key, answered 200 now */
	errq_expect(&r, 0, "alerts", "replay", id + 20, NULL);
	char want[128];
	errq_snprintf(want, sizeof(want), "alert %s: 1 dead delivery sent again", id);
	assert_contains(r.out, want);
	run_free(&r);
	assert_true(receiver_wait(&E.rv, 2) >= 2);
	request_path(1, path, sizeof(path));
	assert_string_equal(path, "/fragile");
	assert_int_equal(E.rv.req[1].status, 200);
	assert_string_equal(E.rv.req[1].body, E.rv.req[0].body);
	assert_header(1, "Idempotency-Key", idem);
	json_t *one = wait_delivery(id, "fragile", "delivered");
	d = delivery_of(one, "fragile");
	assert_int_equal(jint(d, "attempts"), 1); /* a fresh set of attempts */
	assert_int_equal(jint(d, "http_status"), 200);
	assert_int_equal(json_array_size(jget(one, "delivery")), 1); /* the dead row itself went out */
	json_decref(one);

	/* nothing dead any more: FAILED_PRECONDITION, which errq.1 maps to 3, in the collector's words */
	errq_expect(&r, 3, "alerts", "replay", id, NULL);
	fprintf(stderr, "errq alerts replay (again): %s", r.err);
	assert_string_equal(r.out, "");
	assert_contains(r.err, "no dead-lettered delivery to replay");
	run_free(&r);
	/* no such alert: 3 */
	errq_expect(&r, 3, "alerts", "replay", "0123456789abcdef0123456789abcdef", NULL);
	assert_contains(r.err, "alert 0123456789abcdef0123456789abcdef not found");
	run_free(&r);
	assert_int_equal(receiver_count(&E.rv), 2);
}

int main(void)
{
	grpc_init();
	errq_idgen_init(&G);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_circuits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alerts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_explain_circuit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silences, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
	};
	if (getenv("ERRQ_TEST_FILTER")) /* e.g. ERRQ_TEST_FILTER=test_replay */
		cmocka_set_test_filter(getenv("ERRQ_TEST_FILTER"));
	int rc = cmocka_run_group_tests_name("integration_alerts_cli", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
