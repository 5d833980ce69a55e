/* Integration: the errq commands that show or change one thing (group, event, resolve,
 * ignore, unresolve, explain, status) and tail, run as a process against a real errqd:
 * their table and -o json output (DESIGN.md's CLI conventions, docs/errq.1) and their exit
 * codes (0 ok, 1 usage, 2 unreachable, 3 not found). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <regex.h>
#include <sys/wait.h>
#include <jansson.h>
#include <cmocka.h>

#include "harness.h"
#include "errq_id.h"
#include "errq_str.h"
#include "errq_time.h"

static struct errqd_proc D;
static struct errq_idgen G;
static char FP[128];       /* the group of the two "checkout" TimeoutErrors */
static char EVID[33];      /* the newest of them */

#define NOT_A_FP "0123456789abcdef" /* well-formed, no such group */
#define NOT_AN_ID "00000000000000000000000000000001"
#define RFC3339_MS "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"

static void hex32(const uint8_t *id, char out[33])
{
	for (int i = 0; i < 16; i++)
		errq_snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int setup(void **state)
{
	memset(&D, 0, sizeof(D));
	if (errqd_start(&D, NULL))
		return -1;
	errq_idgen_init(&G);
	if (report_batch(D.addr, &G, 2, "checkout", "TimeoutError") != 2 ||
	    report_batch(D.addr, &G, 1, "billing", "KeyError") != 1)
		return -1;
	Errq__V1__ListEventsResponse *ev = query_events(D.addr, 10);
	if (!ev || ev->n_events != 3)
		return -1;
	/* newest first: the KeyError, then the newer TimeoutError */
	errq_snprintf(FP, sizeof(FP), "%s", ev->events[1]->fingerprint);
	hex32(ev->events[1]->event_id.data, EVID);
	int same = !strcmp(ev->events[1]->fingerprint, ev->events[2]->fingerprint) &&
		   strcmp(ev->events[0]->fingerprint, FP);
	errq__v1__list_events_response__free_unpacked(ev, NULL);
	return same ? 0 : -1;
}

static int teardown(void **state)
{
	int st = errqd_stop(&D, SIGTERM);
	errqd_cleanup(&D);
	return st == 0 ? 0 : -1;
}

static void assert_matches(const char *s, const char *re)
{
	regex_t r;
	assert_non_null(s);
	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&r, s, 0, NULL, 0) != 0)
		fail_msg("'%s' does not match /%s/", s, re);
	regfree(&r);
}

/* Runs errq with the arguments (NULL-terminated) against D; returns the exit code. */
static int errq_v(char **out, char **err, const char *addr, va_list ap)
{
	const char *argv[24] = {ERRQ_CLI_PATH};
	int n = 1;
	for (const char *s; (s = va_arg(ap, const char *)) && n < 23;)
		argv[n++] = s;
	argv[n] = NULL;
	return run_capture(argv, addr, out, err);
}

static int errq(char **out, char **err, ...)
{
	va_list ap;
	va_start(ap, err);
	int rc = errq_v(out, err, D.addr, ap);
	va_end(ap);
	return rc;
}

/* Runs errq expecting exit 0 and one JSON document on stdout. */
static json_t *errq_json(const char *first, ...)
{
	const char *argv[24] = {ERRQ_CLI_PATH, first};
	int n = 2;
	va_list ap;
	va_start(ap, first);
	for (const char *s; (s = va_arg(ap, const char *)) && n < 21;)
		argv[n++] = s;
	va_end(ap);
	argv[n++] = "-o";
	argv[n++] = "json";
	argv[n] = NULL;
	char *out = NULL, *err = NULL;
	int rc = run_capture(argv, D.addr, &out, &err);
	if (rc != 0)
		fail_msg("errq %s exited %d: %s", first, rc, err);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	if (!j)
		fail_msg("errq %s printed no JSON document: %s (%s)", first, je.text, out);
	free(out);
	free(err);
	return j;
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_string(v))
		fail_msg("member '%s' is not a string", k);
	return json_string_value(v);
}

static void assert_group_members(json_t *g)
{
	static const char *const members[] = {"fingerprint", "service", "environment", "error_type", "error_code",
					      "message", "count", "total", "first_seen", "last_seen", "status"};
	assert_true(json_is_object(g));
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (!json_object_get(g, members[i]))
			fail_msg("group has no '%s'", members[i]);
	assert_matches(jstr(g, "first_seen"), RFC3339_MS);
	assert_matches(jstr(g, "last_seen"), RFC3339_MS);
}

/* One line on stderr, naming the subject, exit code as given. */
static void assert_fails(int want, const char *subject, ...)
{
	char *out = NULL, *err = NULL;
	va_list ap;
	va_start(ap, subject);
	int rc = errq_v(&out, &err, D.addr, ap);
	va_end(ap);
	if (rc != want)
		fail_msg("exit %d, wanted %d (stderr: %s)", rc, want, err);
	assert_string_equal(out, "");
	if (!strstr(err, subject))
		fail_msg("'%s' not in stderr: %s", subject, err);
	assert_int_equal(strchr(err, '\n') - err, (long)strlen(err) - 1);
	free(out);
	free(err);
}

/* The table form of `errq cmd [arg]`: exit 0 and each of want (NULL-terminated) printed. */
static void assert_table(const char *cmd, const char *arg, const char *const *want)
{
	char *out = NULL;
	assert_int_equal(errq(&out, NULL, cmd, arg, NULL), 0);
	for (size_t i = 0; want[i]; i++)
		if (!strstr(out, want[i]))
			fail_msg("errq %s: '%s' not in:\n%s", cmd, want[i], out);
	free(out);
}

static void test_group(void **state)
{
	json_t *g = errq_json("group", FP, NULL);
	assert_group_members(g);
	assert_string_equal(jstr(g, "fingerprint"), FP);
	assert_string_equal(jstr(g, "service"), "checkout");
	assert_string_equal(jstr(g, "error_type"), "TimeoutError");
	assert_int_equal(json_integer_value(json_object_get(g, "total")), 2);
	assert_int_equal(json_integer_value(json_object_get(g, "count")), 2);
	assert_int_equal(json_integer_value(json_object_get(g, "unhandled")), 2);
	json_t *h = json_object_get(g, "histogram");
	assert_matches(jstr(h, "start"), RFC3339_MS);
	json_t *mins = json_object_get(h, "minutes");
	assert_true(json_is_array(mins));
	json_int_t sum = 0;
	for (size_t i = 0; i < json_array_size(mins); i++)
		sum += json_integer_value(json_array_get(mins, i));
	assert_int_equal(sum, 2); /* both events in the last hour's minutes */
	json_t *latest = json_object_get(g, "latest");
	assert_string_equal(jstr(latest, "event_id"), EVID);
	assert_string_equal(jstr(latest, "fingerprint"), FP);
	json_decref(g);

	assert_table("group", FP, (const char *const[]){FP, "TimeoutError", "checkout", "upstream timed out", NULL});

	assert_fails(3, "not found", "group", NOT_A_FP, NULL);
	assert_fails(1, "invalid fingerprint", "group", "a\tb", NULL);
	assert_fails(1, "", "group", NULL);
	assert_fails(1, "", "group", FP, FP, NULL);
}

static void test_event(void **state)
{
	json_t *e = errq_json("event", EVID, NULL);
	assert_true(json_is_object(e));
	assert_string_equal(jstr(e, "event_id"), EVID);
	assert_string_equal(jstr(e, "service"), "checkout");
	assert_string_equal(jstr(e, "error_type"), "TimeoutError");
	assert_string_equal(jstr(e, "message"), "upstream timed out");
	assert_string_equal(jstr(e, "fingerprint"), FP);
	assert_matches(jstr(e, "time"), RFC3339_MS);
	assert_matches(jstr(e, "received_at"), RFC3339_MS);
	assert_int_equal(json_integer_value(json_object_get(e, "attempt")), 1);
	assert_true(json_is_false(json_object_get(e, "handled")));
	assert_true(json_is_object(json_object_get(e, "details")));
	assert_true(json_is_array(json_object_get(e, "frames")));
	json_decref(e);

	/* the UUID form with dashes names the same event */
	char uuid[40];
	errq_snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", EVID, EVID + 8, EVID + 12, EVID + 16, EVID + 20);
	e = errq_json("event", uuid, NULL);
	assert_string_equal(jstr(e, "event_id"), EVID);
	json_decref(e);

	assert_table("event", EVID, (const char *const[]){EVID, "upstream timed out", "TimeoutError", NULL});

	assert_fails(3, "not found", "event", NOT_AN_ID, NULL);
	assert_fails(1, "invalid event id 'abc'", "event", "abc", NULL);
}

static const char *group_status_now(json_t **keep)
{
	json_t *a = errq_json("groups", NULL);
	const char *st = NULL;
	for (size_t i = 0; i < json_array_size(a); i++)
		if (!strcmp(jstr(json_array_get(a, i), "fingerprint"), FP))
			st = jstr(json_array_get(a, i), "status");
	*keep = a;
	return st;
}

static void test_resolve_ignore_unresolve(void **state)
{
	const char *cmds[] = {"resolve", "ignore", "unresolve"};
	const char *want[] = {"resolved", "ignored", "unresolved"};
	for (int i = 0; i < 3; i++) {
		json_t *g = errq_json(cmds[i], FP, NULL);
		assert_group_members(g); /* -o json prints the group */
		assert_string_equal(jstr(g, "fingerprint"), FP);
		assert_string_equal(jstr(g, "status"), want[i]);
		json_decref(g);
		json_t *keep;
		const char *st = group_status_now(&keep);
		assert_non_null(st);
		assert_string_equal(st, want[i]); /* the change is stored, not just printed */
		json_decref(keep);
		assert_fails(3, "not found", cmds[i], NOT_A_FP, NULL);
		assert_fails(1, "invalid fingerprint", cmds[i], "a\tb", NULL);
	}

	/* the table form says what it did and names the group */
	assert_table("resolve", FP, (const char *const[]){FP, "resolved", NULL});

	/* a resolved group that sees a new event is unresolved again, a regression */
	assert_int_equal(report_batch(D.addr, &G, 1, "checkout", "TimeoutError"), 1);
	json_t *g = errq_json("group", FP, NULL);
	assert_string_equal(jstr(g, "status"), "unresolved");
	assert_true(json_is_true(json_object_get(g, "regression")));
	assert_int_equal(json_integer_value(json_object_get(g, "total")), 3);
	json_decref(g);

	/* an ignored group keeps counting; new events leave it ignored */
	json_decref(errq_json("ignore", FP, NULL));
	assert_int_equal(report_batch(D.addr, &G, 1, "checkout", "TimeoutError"), 1);
	g = errq_json("group", FP, NULL);
	assert_string_equal(jstr(g, "status"), "ignored");
	assert_int_equal(json_integer_value(json_object_get(g, "total")), 4);
	json_decref(g);
	json_decref(errq_json("unresolve", FP, NULL));
}

static void test_explain(void **state)
{
	json_t *x = errq_json("explain", EVID, NULL);
	assert_true(json_is_object(x));
	assert_string_equal(jstr(x, "event_id"), EVID);
	assert_string_equal(jstr(x, "fingerprint"), FP);
	assert_true(json_integer_value(json_object_get(x, "grouping_version")) >= 1);
	/* the harness's events have no frames and no client fingerprint */
	assert_string_equal(jstr(x, "basis"), "message");
	json_t *c = json_object_get(x, "components");
	assert_true(json_is_array(c));
	assert_true(json_array_size(c) >= 2);
	assert_string_equal(jstr(x, "recomputed"), FP);
	assert_true(json_is_true(json_object_get(x, "agrees")));
	assert_string_equal(jstr(json_object_get(x, "event"), "event_id"), EVID);
	json_decref(x);

	assert_table("explain", EVID, (const char *const[]){FP, "the current grouping agrees", NULL});

	assert_fails(3, "not found", "explain", NOT_AN_ID, NULL);
	assert_fails(1, "invalid event id", "explain", "xyz", NULL);
}

static void test_status(void **state)
{
	Errq__V1__StatusResponse *s = query_status(D.addr);
	assert_non_null(s);
	uint64_t events = s->events_total, groups = s->groups_total;
	errq__v1__status_response__free_unpacked(s, NULL);

	json_t *o = errq_json("status", NULL);
	assert_true(json_is_object(o));
	assert_string_equal(jstr(o, "version"), ERRQ_VERSION_STRING);
	assert_matches(jstr(o, "started_at"), RFC3339_MS);
	assert_matches(jstr(o, "now"), RFC3339_MS);
	assert_true(json_is_integer(json_object_get(o, "uptime_seconds")));
	assert_int_equal(json_integer_value(json_object_get(o, "events_total")), (json_int_t)events);
	assert_int_equal(json_integer_value(json_object_get(o, "groups_total")), (json_int_t)groups);
	assert_true(events >= 3);
	assert_int_equal(groups, 2);
	assert_true(json_integer_value(json_object_get(o, "database_bytes")) > 0);
	assert_string_equal(jstr(o, "durability"), "normal");
	static const char *const members[] = {"name", "events_stored", "events_duplicate", "commits",
					      "store_errors", "ingest_queue_batches", "ingest_queue_capacity",
					      "parked", "streams_active", "tail_subscribers", "rss_bytes",
					      "rules", "circuits", "alerts_fired", "storage"};
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (!json_object_get(o, members[i]))
			fail_msg("status has no '%s'", members[i]);
	json_decref(o);

	char *out = NULL;
	assert_int_equal(errq(&out, NULL, "status", NULL), 0);
	assert_non_null(strstr(out, "errqd " ERRQ_VERSION_STRING));
	assert_non_null(strstr(out, D.addr));
	assert_non_null(strstr(out, "durability"));
	free(out);
	assert_fails(1, "", "status", "extra", NULL);
}

/* Every command: exit 2 and one line naming the address when no collector answers. */
static void test_unreachable(void **state)
{
	const char *const cmds[][2] = {{"group", FP},       {"event", EVID},   {"resolve", FP},
				       {"ignore", FP},      {"unresolve", FP}, {"explain", EVID},
				       {"status", NULL},    {"tail", NULL}};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *argv[] = {ERRQ_CLI_PATH, "--addr", "127.0.0.1:1", "--timeout", "2s",
				      cmds[i][0],     cmds[i][1], NULL};
		char *out = NULL, *err = NULL;
		int rc = run_capture(argv, NULL, &out, &err);
		if (rc != 2)
			fail_msg("errq %s exited %d, wanted 2: %s", cmds[i][0], rc, err);
		assert_non_null(strstr(err, "127.0.0.1:1"));
		assert_int_equal(strchr(err, '\n') - err, (long)strlen(err) - 1);
		assert_string_equal(out, "");
		free(out);
		free(err);
	}
}

/* ---- tail: a process running beside the test ---- */

struct bg {
	pid_t pid;
	char out[400], err[400];
};

static void bg_start(struct bg *b, const char *addr, const char *const *args)
{
	const char *argv[24] = {ERRQ_CLI_PATH};
	int n = 1;
	for (; args[n - 1] && n < 23; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	static int seq;
	errq_snprintf(b->out, sizeof(b->out), "%s/tail%d.out", D.dir, seq);
	errq_snprintf(b->err, sizeof(b->err), "%s/tail%d.err", D.dir, seq++);
	b->pid = fork();
	assert_true(b->pid >= 0);
	if (b->pid == 0) {
		int o = open(b->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(b->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(127);
		setenv("ERRQ_ADDR", addr, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
}

/* Waits for the exit; returns the exit code, 128+N for a signal, -1 after the deadline. */
static int bg_wait(struct bg *b)
{
	uint64_t end = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	int st;
	for (;;) {
		pid_t r = waitpid(b->pid, &st, WNOHANG);
		if (r == b->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (errq_mono_ns() > end) {
			kill(b->pid, SIGKILL);
			waitpid(b->pid, &st, 0);
			return -1;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Waits until the collector counts n tail subscribers (the tail is live). */
static void wait_subscribers(const char *addr, uint64_t n)
{
	uint64_t end = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	for (;;) {
		Errq__V1__StatusResponse *s = query_status(addr);
		uint64_t have = s ? s->tail_subscribers : UINT64_MAX;
		if (s)
			errq__v1__status_response__free_unpacked(s, NULL);
		if (have == n)
			return;
		if (errq_mono_ns() > end)
			fail_msg("the collector never had %llu tail subscribers", (unsigned long long)n);
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void test_tail_limit_and_filter(void **state)
{
	/* --service filters; --limit 2 ends the tail with exit 0 after two events */
	const char *args[] = {"tail", "-o", "json", "--service", "tailsvc", "--limit", "2", NULL};
	struct bg b;
	bg_start(&b, D.addr, args);
	wait_subscribers(D.addr, 1);
	assert_int_equal(report_batch(D.addr, &G, 1, "other", "ValueError"), 1);
	assert_int_equal(report_batch(D.addr, &G, 3, "tailsvc", "OSError"), 3);
	assert_int_equal(bg_wait(&b), 0);
	char *out = slurp(b.out);
	int lines = 0;
	for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
		*nl = '\0';
		json_error_t je;
		json_t *e = json_loads(line, 0, &je);
		if (!e)
			fail_msg("tail line %d is not JSON: %s", lines, line);
		assert_string_equal(jstr(e, "service"), "tailsvc");
		assert_string_equal(jstr(e, "error_type"), "OSError");
		assert_matches(jstr(e, "event_id"), "^[0-9a-f]{32}$");
		assert_matches(jstr(e, "received_at"), RFC3339_MS);
		json_decref(e);
	}
	assert_int_equal(lines, 2);
	free(out);
	wait_subscribers(D.addr, 0);

	/* the table form: one line an event, with fingerprint, service and type */
	const char *tbl[] = {"tail", "--type", "Perm*", "--limit", "1", NULL};
	bg_start(&b, D.addr, tbl);
	wait_subscribers(D.addr, 1);
	assert_int_equal(report_batch(D.addr, &G, 1, "tailsvc", "OSError"), 1);
	assert_int_equal(report_batch(D.addr, &G, 1, "tailsvc", "PermissionError"), 1);
	assert_int_equal(bg_wait(&b), 0);
	out = slurp(b.out);
	assert_non_null(strstr(out, "PermissionError"));
	assert_non_null(strstr(out, "tailsvc"));
	assert_null(strstr(out, "OSError"));
	assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
	free(out);
	wait_subscribers(D.addr, 0);

	/* a bad filter is a usage error before any connection */
	assert_fails(1, "invalid --group", "tail", "--group", "a\tb", NULL);
	assert_fails(1, "empty --type", "tail", "--type", "", NULL);
	assert_fails(1, "--limit", "tail", "--limit", "-3", NULL);
	assert_fails(1, "does not take --status", "tail", "--status", "resolved", NULL);
}

static void test_tail_sigterm(void **state)
{
	const char *args[] = {"tail", NULL};
	struct bg b;
	bg_start(&b, D.addr, args);
	wait_subscribers(D.addr, 1);
	assert_int_equal(kill(b.pid, SIGTERM), 0);
	assert_int_equal(bg_wait(&b), 0);
	wait_subscribers(D.addr, 0);
}

/* Last: a collector of its own goes away under a running tail, which exits 2. */
static void test_tail_collector_gone(void **state)
{
	struct errqd_proc P;
	memset(&P, 0, sizeof(P));
	assert_int_equal(errqd_start(&P, NULL), 0);
	const char *args[] = {"tail", "-o", "json", NULL};
	struct bg b;
	bg_start(&b, P.addr, args);
	wait_subscribers(P.addr, 1);
	assert_int_equal(errqd_stop(&P, SIGTERM), 0);
	assert_int_equal(bg_wait(&b), 2);
	char *err = slurp(b.err);
	assert_non_null(strstr(err, P.addr));
	assert_int_equal(strchr(err, '\n') - err, (long)strlen(err) - 1);
	free(err);
	errqd_cleanup(&P);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_group),
	    cmocka_unit_test(test_event),
	    cmocka_unit_test(test_explain),
	    cmocka_unit_test(test_status),
	    cmocka_unit_test(test_resolve_ignore_unresolve),
	    cmocka_unit_test(test_unreachable),
	    cmocka_unit_test(test_tail_limit_and_filter),
	    cmocka_unit_test(test_tail_sigterm),
	    cmocka_unit_test(test_tail_collector_gone),
	};
	grpc_init();
	return cmocka_run_group_tests_name("integration_cli_commands", tests, setup, teardown);
}
