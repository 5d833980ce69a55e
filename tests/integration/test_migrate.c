/* Integration: `errqd admin migrate` (issue 17), a SQLite database copied into PostgreSQL.
 *
 * A real errqd on SQLite takes failures in several groups, one rule trips on two of them and
 * fires alerts (one under a silence); it stops; the migration copies its database into a
 * fresh database of the private PostgreSQL server (the ctest fixture `pg`); errqd starts on
 * the PostgreSQL URL and `errq` must show the same groups, counts, events, alerts and
 * silences as before; a failure sent afterwards lands in its old group with a new row id.
 * Then the refusals, each with its own exit code: a target that is not empty (4; --replace
 * copies again), a copy that does not verify (5: triggers on the target change what it
 * receives; nothing committed), a source that is missing or in use by a running errqd (3),
 * URLs of the wrong kind (2).  The target's password never appears in what the command prints.
 * ERRQ_TEST_FILTER=test_refusals runs one test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <jansson.h>
#include <cmocka.h>

#include "errq_str.h"
#include "alerts_support.h"
#include "pg_support.h"

#define RULE "svc-errors"
#define SECRET "m1grate-S3cret"

static struct pg_test_db Db;
static bool Db_made;
static char Url[PG_TEST_URL_MAX + 64]; /* Db's URL with SECRET as the password */

static int setup(void **state)
{
	(void)state;
	char err[256];
	if (alerts_setup("/tmp/errq-migrate-XXXXXX"))
		return -1;
	if (pg_test_db_create(&Db, "migrate", err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	Db_made = true;
	/* the server trusts local connections: a password in the URL is ignored by it, but must
	 * never be printed by errqd */
	const char *scheme = strstr(Db.url, "://"), *at = scheme ? strchr(scheme + 3, '@') : NULL;
	if (!at || memchr(scheme + 3, ':', (size_t)(at - scheme - 3))) { /* none there already */
		fprintf(stderr, "cannot put a password into '%s'\n", Db.url);
		return -1;
	}
	errq_snprintf(Url, sizeof(Url), "%.*s:" SECRET "%s", (int)(at - Db.url), Db.url, at);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char err[256];
	int rc = alerts_teardown();
	if (Db_made && pg_test_db_drop(&Db, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		rc = -1;
	}
	Db_made = false;
	return rc;
}

static void write_config(void)
{
	/* the rule trips on 2 failures of a service and error type within 60 s */
	write_file(E.cfg,
		   "name: errqd-itest-migrate\n"
		   "notifiers:\n"
		   "  - {name: ops, type: webhook, url: \"http://127.0.0.1:%d/alerts\", timeout: 5s}\n"
		   "rules:\n"
		   "  - {name: " RULE ", match: {service: \"svc-*\"}, group_by: [service, error_type],\n"
		   "     trip: {failures: 2, window: 60s}, recovery_timeout: 60s, severity: critical, notify: [ops]}\n",
		   E.rv.port);
}

/* argv[n..] from the arguments a0... (NULL-terminated), at most max in all: the new n. */
static int add_args(const char **argv, int n, int max, const char *a0, va_list ap)
{
	for (const char *a = a0; a; a = va_arg(ap, const char *)) {
		if (n >= max - 1)
			fail_msg("more than %d arguments", max - 1);
		argv[n++] = a;
	}
	argv[n] = NULL;
	return n;
}

/* errq -o json ARGS... at errqd: the one JSON document it printed (it must exit 0). */
static json_t *errq_doc(const char *a0, ...) __attribute__((sentinel));
static json_t *errq_doc(const char *a0, ...)
{
	const char *args[16] = {"-o", "json"};
	va_list ap;
	va_start(ap, a0);
	add_args(args, 2, 16, a0, ap);
	va_end(ap);
	char *out = harness_errq(E.d.addr, 0, NULL, args);
	json_t *j = json_loads(out, 0, NULL);
	if (!j)
		fail_msg("errq %s printed no JSON document: %s", a0, out);
	free(out);
	return j;
}

/* What errq shows of the database, as one JSON text per view (members that depend on when it
 * is asked, such as an age, are left out by the views themselves: see compare()). */
struct views {
	char *groups, *events, *alerts, *silences, *circuits;
	char *event;   /* `errq event ID` of the newest event: frames, details */
	char *staging; /* groups of one environment (the counts by environment) */
};

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1));
	json_decref(j);
	assert_non_null(s);
	return s;
}

static void views_take(struct views *v)
{
	v->groups = dump(errq_doc("groups", "--limit", "1000", NULL));
	json_t *ev = errq_doc("events", "--limit", "1000", NULL);
	json_t *first = json_is_array(ev) ? json_array_get(ev, 0) : NULL;
	const char *id = first ? json_string_value(json_object_get(first, "event_id")) : NULL;
	if (!id)
		fail_msg("no event_id in errq events: %s", json_dumps(ev, 0));
	v->event = dump(errq_doc("event", id, NULL));
	v->events = dump(ev);
	v->alerts = dump(errq_doc("alerts", "--limit", "1000", NULL));
	v->staging = dump(errq_doc("groups", "--env", "staging", NULL));
	v->silences = dump(errq_doc("silence", "list", "--all", NULL));
	v->circuits = dump(errq_doc("circuits", NULL));
}

static void views_free(struct views *v)
{
	free(v->groups);
	free(v->events);
	free(v->alerts);
	free(v->silences);
	free(v->circuits);
	free(v->event);
	free(v->staging);
}

static void same_view(const char *what, const char *before, const char *after)
{
	if (strcmp(before, after))
		fail_msg("errq %s differs after the migration\nbefore (SQLite):\n%s\nafter (PostgreSQL):\n%s", what,
			 before, after);
}

/* errqd admin migrate ARGS...: its exit status, stdout and stderr (malloc'd). */
static int migrate(char **out, char **err, const char *a0, ...) __attribute__((sentinel));
static int migrate(char **out, char **err, const char *a0, ...)
{
	const char *argv[16] = {ERRQD_PATH, "admin", "migrate"};
	va_list ap;
	va_start(ap, a0);
	add_args(argv, 3, 16, a0, ap);
	va_end(ap);
	int rc = run_capture(argv, NULL, out, err);
	assert_non_null(*out);
	assert_non_null(*err);
	fprintf(stderr, "errqd admin migrate (exit %d):\n%s%s", rc, *out, *err);
	if (strstr(*out, SECRET) || strstr(*err, SECRET))
		fail_msg("the password is in errqd admin migrate's output");
	return rc;
}

/* The row of table in the report: its count, the same in the source and the target. */
static long long report_row(const char *out, const char *table)
{
	char needle[64];
	long long src, dst;
	errq_snprintf(needle, sizeof(needle), "\n%s ", table);
	const char *p = strstr(out, needle);
	if (!p || sscanf(p + strlen(needle), "%lld %lld", &src, &dst) != 2)
		fail_msg("no row for table '%s' in the report:\n%s", table, out);
	if (src != dst)
		fail_msg("table '%s': %lld rows in the source, %lld in the target", table, src, dst);
	return src;
}

static int64_t pg_int(const char *sql)
{
	char err[256];
	int64_t v = -1;
	PGconn *c = pg_test_connect(&Db, err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	int rc = pg_test_int(c, sql, &v, err, sizeof(err));
	PQfinish(c);
	if (rc)
		fail_msg("%s: %s", sql, err);
	return v;
}

/* Runs sql (statements, no result) on the target database. */
static void migrate_tamper(const char *sql)
{
	char err[256];
	PGconn *c = pg_test_connect(&Db, err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	int rc = pg_test_exec(c, sql, err, sizeof(err));
	PQfinish(c);
	if (rc)
		fail_msg("%s: %s", sql, err);
}

/* The SQLite database filled through errqd: 4 groups, alerts for 3 of them, one silenced. */
static void fill_sqlite(void)
{
	start_receiver(0);
	write_config();
	start_errqd();
	const char *silence[] = {"silence", "add", "--rule", RULE, "--match", "service=svc-b", "--for", "1h",
				 "--comment", "migration test", NULL};
	free(harness_errq(E.d.addr, 0, NULL, silence));
	send_failures(3, "svc-a", "TimeoutError", "sync", NULL);
	send_failures(2, "svc-a", "ValueError", NULL, NULL);
	send_failures(2, "svc-b", "TimeoutError", NULL, NULL); /* trips under the silence */
	send_failures(1, "other", "KeyError", NULL, NULL);      /* no rule */
	/* environments, and text COPY must escape (tab, newline, backslash) in the message and
	 * in a detail (events.extra) */
	for (int i = 0; i < 2; i++) {
		Errq__V1__TaskFailure *ev = tevent_new(&G, "envsvc", "EnvError", "tab\there\nnewline \\ backslash");
		tevent_set(&ev->environment, i ? "staging" : "prod");
		ev->n_details = 1;
		ev->details = calloc(1, sizeof(*ev->details));
		ev->details[0] = calloc(1, sizeof(**ev->details));
		errq__v1__task_failure__details_entry__init(ev->details[0]);
		ev->details[0]->key = strdup("path");
		ev->details[0]->value = strdup("C:\\tmp\tx\ny");
		assert_int_equal(report_event(E.d.addr, ev), 1);
		tevent_free(ev);
	}
	WAIT_FOR(q_int("SELECT count(*) FROM alerts", NULL) == 3);
	/* the two notices not silenced delivered, so nothing moves between the two looks */
	WAIT_FOR(q_int("SELECT count(*) FROM deliveries WHERE status = 1", NULL) == 2 &&
		 q_int("SELECT count(*) FROM deliveries WHERE status = 3", NULL) == 1);
}

static void test_migrate(void **state)
{
	(void)state;
	struct views before, after;
	char *out, *err;
	fill_sqlite();
	views_take(&before);
	assert_int_equal(errqd_stop(&E.d, SIGTERM), 0);
	E.d.pid = 0;
	int64_t src_events = q_int("SELECT count(*) FROM events", NULL);
	int64_t src_groups = q_int("SELECT count(*) FROM groups", NULL);
	int64_t max_id = q_int("SELECT max(id) FROM events", NULL);
	assert_int_equal(src_events, 10);
	assert_int_equal(src_groups, 5);

	char from[400];
	errq_snprintf(from, sizeof(from), "sqlite://%s", E.d.db);
	/* one row a batch: every table's keyset (composite, text, blob keys) crosses batches */
	assert_int_equal(migrate(&out, &err, "--from", from, "--to", Url, "--batch-rows", "1", NULL), 0);
	/* the report's rows: the same on both sides, and what the fill made */
	assert_int_equal(report_row(out, "events"), 10);
	assert_int_equal(report_row(out, "groups"), 5);
	assert_int_equal(report_row(out, "environments"), 2);
	assert_int_equal(report_row(out, "alerts"), 3);
	assert_int_equal(report_row(out, "silences"), 1);
	assert_int_equal(report_row(out, "deliveries"), 3);
	assert_true(report_row(out, "circuits") >= 3);
	assert_true(report_row(out, "transitions") >= 3);
	assert_true(report_row(out, "group_minutes") >= 4);
	assert_true(report_row(out, "service_minutes") >= 4);
	if (!strstr(out, "groups' totals compared: 5, different: 0"))
		fail_msg("no per-group verification in the report:\n%s", out);
	if (!strstr(err, "done: ") || !strstr(err, "***"))
		fail_msg("no progress naming the target redacted on stderr:\n%s", err);
	free(out);
	free(err);
	/* the ids kept, the events' sequence past them */
	assert_int_equal(pg_int("SELECT max(id) FROM events"), max_id);
	assert_int_equal(pg_int("SELECT count(*) FROM events e JOIN groups g ON g.id = e.group_id"), 10);

	/* errqd on PostgreSQL shows what it showed on SQLite */
	const char *args[] = {"--config", E.cfg, "--db", Url, NULL};
	assert_int_equal(errqd_start(&E.d, args), 0);
	views_take(&after);
	same_view("groups", before.groups, after.groups);
	same_view("events", before.events, after.events);
	same_view("alerts", before.alerts, after.alerts);
	same_view("silence list --all", before.silences, after.silences);
	same_view("circuits", before.circuits, after.circuits);
	same_view("event ID", before.event, after.event);
	same_view("groups --env staging", before.staging, after.staging);
	assert_non_null(strstr(before.event, "backslash"));
	assert_non_null(strstr(before.staging, "envsvc"));
	/* what was compared is the data, not empty lists */
	assert_non_null(strstr(before.groups, "svc-a"));
	assert_non_null(strstr(before.alerts, RULE));
	assert_non_null(strstr(before.silences, "migration test"));
	views_free(&before);
	views_free(&after);

	/* and goes on from there: an old group, a row id past the copied ones; a new alert with
	 * an id of its own (the identity sequences set past the copied ids) */
	int64_t max_alert = pg_int("SELECT max(id) FROM alerts");
	send_failures(1, "other", "KeyError", NULL, NULL);
	send_failures(2, "svc-c", "TimeoutError", NULL, NULL);
	WAIT_FOR(pg_int("SELECT count(*) FROM alerts") == 4);
	assert_int_equal(pg_int("SELECT count(DISTINCT id) FROM alerts"), 4);
	assert_true(pg_int("SELECT max(id) FROM alerts") > max_alert);
	assert_int_equal(pg_int("SELECT count(*) FROM groups"), 6);
	assert_int_equal(pg_int("SELECT total FROM groups WHERE service = 'other'"), 2);
	assert_true(pg_int("SELECT max(id) FROM events") > max_id);
	assert_int_equal(pg_int("SELECT count(DISTINCT id) FROM events"), 13);
	assert_int_equal(errqd_stop(&E.d, SIGTERM), 0);
	E.d.pid = 0;
	if (log_count(SECRET) > 0)
		fail_msg("the password is in errqd's log");
}

static void test_refusals(void **state)
{
	(void)state;
	char *out, *err, from[400], missing[400];
	fill_sqlite();
	errq_snprintf(from, sizeof(from), "sqlite://%s", E.d.db);

	/* the source in use by a running errqd: 3, and nothing written to the target */
	assert_int_equal(migrate(&out, &err, "--from", from, "--to", Url, NULL), 3);
	if (!strstr(err, "source"))
		fail_msg("the refusal does not say it is the source: %s", err);
	free(out);
	free(err);
	assert_int_equal(errqd_stop(&E.d, SIGTERM), 0);
	E.d.pid = 0;

	/* a source that does not exist: 3, and no file made */
	errq_snprintf(missing, sizeof(missing), "%s/nosuch.db", E.d.dir);
	assert_int_equal(migrate(&out, &err, "--from", missing, "--to", Url, NULL), 3);
	assert_non_null(strstr(err, "nosuch.db"));
	assert_int_equal(access(missing, F_OK), -1);
	free(out);
	free(err);

	/* arguments of the wrong kind: 2 */
	assert_int_equal(migrate(&out, &err, "--from", from, "--to", "mysql://root@db/errq", NULL), 2);
	assert_non_null(strstr(err, "mysql://"));
	free(out);
	free(err);
	assert_int_equal(migrate(&out, &err, "--from", from, "--to", missing, NULL), 2);
	assert_non_null(strstr(err, "not a PostgreSQL URL"));
	free(out);
	free(err);
	assert_int_equal(migrate(&out, &err, "--from", Url, "--to", Url, NULL), 2);
	assert_non_null(strstr(err, "not a SQLite database"));
	free(out);
	free(err);
	assert_int_equal(migrate(&out, &err, "--from", from, NULL), 2);
	free(out);
	free(err);
	assert_int_equal(migrate(&out, &err, "--from", from, "--to", Url, "--batch-rows", "0", NULL), 2);
	assert_non_null(strstr(err, "--batch-rows '0'"));
	free(out);
	free(err);

	/* a target that holds events: 4, untouched; --replace copies again */
	assert_int_equal(migrate(&out, &err, "--from", from, "--to", Url, NULL), 0);
	free(out);
	free(err);
	assert_int_equal(pg_int("SELECT count(*) FROM events"), 10);
	assert_int_equal(migrate(&out, &err, "--from", from, "--to", Url, NULL), 4);
	if (!strstr(err, "is not empty"))
		fail_msg("the refusal does not say why: %s", err);
	free(out);
	free(err);
	assert_int_equal(pg_int("SELECT count(*) FROM events"), 10);
	assert_int_equal(migrate(&out, &err, "--from", from, "--to", Url, "--replace", NULL), 0);
	free(out);
	free(err);
	assert_int_equal(pg_int("SELECT count(*) FROM events"), 10);
	assert_int_equal(pg_int("SELECT count(*) FROM alerts"), 3);

	/* a copy the target does not keep as sent: 5, and nothing committed (the copy before
	 * stands, --replace's TRUNCATE rolled back with the rest).  Triggers on the target stand
	 * for whatever could change rows between COPY and the counts (a server-side rule, an
	 * extension, another writer): one drops the events of service 'other', one adds to the
	 * totals of its group, so both checks (rows per table, each group's totals) differ. */
	migrate_tamper("CREATE FUNCTION itest_drop_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
		       " IF NEW.service = 'other' THEN RETURN NULL; END IF; RETURN NEW; END $$;"
		       " CREATE TRIGGER itest_drop_event BEFORE INSERT ON events FOR EACH ROW"
		       " EXECUTE FUNCTION itest_drop_event();"
		       " CREATE FUNCTION itest_bump_total() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
		       " IF NEW.service = 'other' THEN NEW.total := NEW.total + 1; END IF; RETURN NEW; END $$;"
		       " CREATE TRIGGER itest_bump_total BEFORE INSERT ON groups FOR EACH ROW"
		       " EXECUTE FUNCTION itest_bump_total()");
	assert_int_equal(migrate(&out, &err, "--from", from, "--to", Url, "--replace", NULL), 5);
	if (!strstr(out, "DIFFERENT") || !strstr(out, "groups' totals compared: 5, different: 1"))
		fail_msg("the report does not show the differences:\n%s", out);
	if (!strstr(err, "verification failed") || !strstr(err, "events"))
		fail_msg("the failure does not say what differs: %s", err);
	free(out);
	free(err);
	migrate_tamper("DROP TRIGGER itest_drop_event ON events; DROP TRIGGER itest_bump_total ON groups");
	assert_int_equal(pg_int("SELECT count(*) FROM events"), 10);
	assert_int_equal(pg_int("SELECT count(*) FROM events WHERE service = 'other'"), 1);
	assert_int_equal(pg_int("SELECT total FROM groups WHERE service = 'other'"), 1);
	assert_int_equal(pg_int("SELECT count(*) FROM alerts"), 3);

	/* an unreachable target: 4, the URL redacted */
	assert_int_equal(migrate(&out, &err, "--from", from, "--to",
				 "postgres://errq:" SECRET "@127.0.0.1:1/errq?connect_timeout=2", NULL),
			 4);
	free(out);
	free(err);
}

int main(void)
{
	grpc_init();
	errq_idgen_init(&G);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};
	if (getenv("ERRQ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("ERRQ_TEST_FILTER"));
	int rc = cmocka_run_group_tests_name("integration_migrate", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
