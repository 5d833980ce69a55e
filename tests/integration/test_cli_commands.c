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
#include <ctype.h>
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
#define CLI_GLOB_MAX_TEST 256 /* errq's bound on a --type, --code or --task glob (CLI_GLOB_MAX) */
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
	assert_string_equal(jstr(o, "durability"), harness_durability_name());
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
	/* one line of errq's own, not gRPC's "Cancelling all calls" */
	if (!strstr(err, "shut down; tail ended") || strcasestr(err, "cancelling"))
		fail_msg("tail on a collector's shutdown: %s", err);
	free(err);
	errqd_cleanup(&P);
}

/* ---- the same words for every command (issue 15) ---- */

/* A malformed fingerprint is "invalid" (1) for every command that takes one, a well-formed
 * one without a group "not found" (3); so is an out-of-range port, from --addr or ERRQ_ADDR. */
static void test_same_words(void **state)
{
	const char *const bad[] = {"xyz!", "0123456789abcde", "0123456789abcdef0", "0123456789abcdeg"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_fails(1, "invalid fingerprint", "group", bad[i], NULL);
		assert_fails(1, "invalid fingerprint", "resolve", bad[i], NULL);
		assert_fails(1, "invalid fingerprint", "ignore", bad[i], NULL);
		assert_fails(1, "invalid fingerprint", "unresolve", bad[i], NULL);
		assert_fails(1, "invalid --group", "events", "--group", bad[i], NULL);
		assert_fails(1, "invalid --group", "tail", "--group", bad[i], NULL);
	}
	assert_fails(3, "not found", "events", "--group", NOT_A_FP, NULL);
	assert_fails(3, "not found", "unresolve", NOT_A_FP, NULL);
	/* either case of hex names the same group */
	char upper[sizeof(FP)];
	for (size_t i = 0; i < sizeof(upper); i++)
		upper[i] = (char)toupper((unsigned char)FP[i]);
	json_t *g = errq_json("group", upper, NULL);
	assert_string_equal(jstr(g, "fingerprint"), FP);
	json_decref(g);
	json_t *ev = errq_json("events", "--group", upper, NULL);
	assert_true(json_array_size(ev) >= 2);
	for (size_t i = 0; i < json_array_size(ev); i++)
		assert_string_equal(jstr(json_array_get(ev, i), "fingerprint"), FP);
	json_decref(ev);

	const char *const ports[] = {"127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:abc", "[::1]:65536", "localhost:"};
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		assert_fails(1, "invalid --addr", "--addr", ports[i], "status", NULL);
		char *out = NULL, *err = NULL;
		const char *argv[] = {ERRQ_CLI_PATH, "status", NULL};
		assert_int_equal(run_capture(argv, ports[i], &out, &err), 1);
		if (!strstr(err, "invalid ERRQ_ADDR") || !strstr(err, ports[i]))
			fail_msg("ERRQ_ADDR=%s: %s", ports[i], err);
		free(out);
		free(err);
	}
}

/* Singular and plural: "1 rule", "1 group", "0 duplicates" (errq status of a collector
 * with one rule and one event). */
static void test_singular_plural(void **state)
{
	char cfg[] = "/tmp/errq-cfg-XXXXXX";
	int fd = mkstemp(cfg);
	assert_true(fd >= 0);
	const char yaml[] = "notifiers:\n  - name: journal\n    type: log\n"
			    "rules:\n  - name: r1\n    match: {service: svc}\n    group_by: [service]\n"
			    "    trip: {failures: 5, window: 60s}\n    notify: [journal]\n";
	assert_int_equal(write(fd, yaml, sizeof(yaml) - 1), (ssize_t)(sizeof(yaml) - 1));
	close(fd);
	const char *extra[] = {"--config", cfg, NULL};
	struct errqd_proc P;
	memset(&P, 0, sizeof(P));
	assert_int_equal(errqd_start(&P, extra), 0);
	struct errq_idgen g;
	errq_idgen_init(&g);
	assert_int_equal(report_batch(P.addr, &g, 1, "svc", "OneError"), 1);
	const char *argv[] = {ERRQ_CLI_PATH, "status", NULL};
	char *out = NULL, *err = NULL;
	assert_int_equal(run_capture(argv, P.addr, &out, &err), 0);
	const char *want[] = {"1 stored in 1 group\n", "0 duplicates,", "1 rule, 1 circuit (", "0 streams waiting"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(out, want[i]))
			fail_msg("'%s' not in errq status:\n%s", want[i], out);
	free(out);
	free(err);
	assert_int_equal(errqd_stop(&P, SIGTERM), 0);
	errqd_cleanup(&P);
	unlink(cfg);
}

/* `errq events --type GLOB`: the collector filters (the newest-first scan and a group's
 * chain alike), as groups and tail do. */
static void test_events_type(void **state)
{
	json_t *ev = errq_json("events", "--type", "Timeout*", NULL);
	assert_true(json_array_size(ev) >= 2);
	for (size_t i = 0; i < json_array_size(ev); i++)
		assert_string_equal(jstr(json_array_get(ev, i), "error_type"), "TimeoutError");
	json_decref(ev);
	ev = errq_json("events", "--type", "Key?rror", "--service", "billing", NULL);
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(jstr(json_array_get(ev, 0), "error_type"), "KeyError");
	json_decref(ev);
	/* a group's events: the chain walk filters too; the group is there, so no "not found" */
	ev = errq_json("events", "--group", FP, "--type", "Key*", NULL);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	ev = errq_json("events", "--group", FP, "--type", "*Timeout*", NULL);
	assert_true(json_array_size(ev) >= 2);
	json_decref(ev);
	/* '[' is a character, not a class, as for groups */
	ev = errq_json("events", "--type", "[TK]*", NULL);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
}

/* `errq groups` never hides a group's status: at every width (COLUMNS, stdout a pipe) each
 * row says unresolved, resolved, ignored or regression, in its column or folded into the
 * message. */
static void test_groups_status_every_width(void **state)
{
	json_t *r = errq_json("resolve", FP, NULL);
	json_decref(r);
	for (int w = 20; w <= 200; w += 15) {
		char cols[16], *out = NULL, *err = NULL;
		errq_snprintf(cols, sizeof(cols), "%d", w);
		setenv("COLUMNS", cols, 1);
		int rc = errq(&out, &err, "groups", NULL);
		unsetenv("COLUMNS");
		if (rc != 0)
			fail_msg("errq groups (COLUMNS=%d) exited %d: %s", w, rc, err);
		size_t rows = 0;
		for (char *line = strchr(out, '\n') + 1; *line; line = strchr(line, '\n') + 1, rows++)
			if (!strstr(line, "resolved") && !strstr(line, "ignored") && !strstr(line, "regression"))
				fail_msg("COLUMNS=%d: a row without its status:\n%s", w, out);
		assert_true(rows >= 2); /* the groups of setup and of the tests before */
		free(out);
		free(err);
	}
	r = errq_json("unresolve", FP, NULL);
	json_decref(r);
}

/* ---- event content is data: hostile text reaches no terminal ---- */

/* Every way text could drive a terminal: a CSI that clears the screen, an OSC that sets the
 * title (ended by BEL), a carriage return and backspaces that overwrite the line, C1 controls
 * (CSI U+009B, NEL U+0085), and the bidirectional override, isolate and mark that reorder it
 * (RLO U+202E, LRI U+2066, PDI U+2069, RLM U+200F).  All valid UTF-8: the collector stores it. */
#define HOSTILE "\x1b[2J\x1b]0;pwned\x07" "x\rOVER\b\b" "\xc2\x9b" "31m\xc2\x85" "\xe2\x80\xae" "rev" \
		"\xe2\x81\xa6" "iso\xe2\x81\xa9\xe2\x80\x8f" "end"

/* The first byte sequence in out a terminal would act on, or NULL: C0 controls but the
 * newline, DEL, the C1 controls and the bidirectional controls. */
static const char *terminal_control(const char *out)
{
	for (const unsigned char *p = (const unsigned char *)out; *p; p++) {
		if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
			return (const char *)p;
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return (const char *)p;
		if (p[0] == 0xd8 && p[1] == 0x9c) /* U+061C */
			return (const char *)p;
		if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xaa && p[2] <= 0xae)))
			return (const char *)p;
		if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
			return (const char *)p;
	}
	return NULL;
}

static void assert_inert(const char *what, const char *out)
{
	const char *bad = terminal_control(out);
	if (bad)
		fail_msg("%s shows a terminal control (byte 0x%02x at offset %ld): %s", what, (unsigned char)*bad,
			 (long)(bad - out), out);
	/* and the text is shown, not dropped: the words between the controls are there (the
	 * message's, or the error type's where only the group is named) */
	if (!strstr(what, "stderr") && !strstr(out, "[2J") && !strstr(out, "Bad [31mError"))
		fail_msg("%s does not show the message: %s", what, out);
}

static void test_hostile_text_is_inert(void **state)
{
	const char *tail_args[] = {"tail", "--service", "hostile-svc", "--limit", "1", NULL};
	struct bg b;
	bg_start(&b, D.addr, tail_args);
	wait_subscribers(D.addr, 1);

	Errq__V1__TaskFailure *ev = tevent_new(&G, "hostile-svc", "Bad\x1b[31mError\xe2\x80\xae", HOSTILE);
	tevent_set(&ev->error_code, "E\rCODE\xc2\x9b");
	tevent_set(&ev->task, "task" HOSTILE);
	tevent_set(&ev->environment, "prod\xe2\x81\xa6");
	/* a detail and a frame carry it too (tevent_free frees them) */
	ev->n_details = 1;
	ev->details = calloc(1, sizeof(*ev->details));
	ev->details[0] = calloc(1, sizeof(**ev->details));
	errq__v1__task_failure__details_entry__init(ev->details[0]);
	ev->details[0]->key = strdup("k\x1b[1m");
	ev->details[0]->value = strdup(HOSTILE);
	ev->n_frames = 1;
	ev->frames = calloc(1, sizeof(*ev->frames));
	ev->frames[0] = calloc(1, sizeof(**ev->frames));
	errq__v1__frame__init(ev->frames[0]);
	ev->frames[0]->function = strdup("fn\r\xe2\x80\xae");
	ev->frames[0]->file = strdup("file" HOSTILE);
	ev->frames[0]->line = 7;
	assert_int_equal(report_event(D.addr, ev), 1);
	char id[33];
	hex32(ev->event_id.data, id);

	/* the tail's line: written as the event came */
	assert_int_equal(bg_wait(&b), 0);
	char *out = slurp(b.out);
	assert_inert("errq tail", out);
	free(out);
	wait_subscribers(D.addr, 0);

	/* the JSON keeps the text exactly (it is data for scripts, escaped by JSON) */
	json_t *e = errq_json("event", id, NULL);
	assert_string_equal(jstr(e, "message"), HOSTILE);
	char fp[128];
	errq_snprintf(fp, sizeof(fp), "%s", jstr(e, "fingerprint"));
	json_decref(e);

	/* tables and detail views */
	const char *const views[][6] = {
	    {"groups", NULL},
	    {"events", "--service", "hostile-svc", NULL},
	    {"group", fp, NULL},
	    {"event", id, NULL},
	    {"resolve", fp, NULL}, /* its confirmation names the group's service and type */
	};
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++) {
		const char *argv[8] = {ERRQ_CLI_PATH};
		size_t n = 1;
		for (; views[i][n - 1]; n++)
			argv[n] = views[i][n - 1];
		argv[n] = NULL;
		char *err = NULL;
		int rc = run_capture(argv, D.addr, &out, &err);
		char what[64];
		errq_snprintf(what, sizeof(what), "errq %s %s", views[i][0], views[i][1] ? views[i][1] : "");
		if (rc != 0)
			fail_msg("%s exited %d: %s", what, rc, err);
		assert_inert(what, out);
		errq_snprintf(what + strlen(what), sizeof(what) - strlen(what), " (stderr)");
		assert_inert(what, err);
		free(out);
		free(err);
	}
	tevent_free(ev);
}

/* ---- issue 15: --code and --task, the filters events shares with groups and tail ---- */

/* Reports one event of service "codesvc" with a code and a task (NULL: none); returns its
 * id in hex. */
static void report_coded(const char *type, const char *msg, const char *code, const char *task, char id[33])
{
	Errq__V1__TaskFailure *ev = tevent_new(&G, "codesvc", type, msg);
	if (code)
		tevent_set(&ev->error_code, code);
	if (task)
		tevent_set(&ev->task, task);
	hex32(ev->event_id.data, id);
	assert_int_equal(report_event(D.addr, ev), 1);
	tevent_free(ev);
}

/* The event ids of a JSON array of events, in order, joined by ' '. */
static void ids_of(json_t *ev, char *buf, size_t n)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < json_array_size(ev) && o < n; i++)
		o += (size_t)errq_snprintf(buf + o, n - o, "%s%s", i ? " " : "", jstr(json_array_get(ev, i), "event_id"));
}

/* Runs `errq ARGS... -o json` and asserts the events listed are exactly want (newest first,
 * ids joined by ' '). */
#define ASSERT_EVENTS(want, ...)                                                                                  \
	do {                                                                                                      \
		json_t *ev_ = errq_json(__VA_ARGS__, NULL);                                                      \
		char got_[4 * 33];                                                                                \
		ids_of(ev_, got_, sizeof(got_));                                                                  \
		assert_string_equal(got_, want);                                                                  \
		json_decref(ev_);                                                                                 \
	} while (0)

static void test_events_code_task(void **state)
{
	/* oldest first: two IOErrors of one group (same message), two ValueErrors of another */
	char a[33], b[33], c[33], d[33], want[4 * 33];
	report_coded("IOError", "disk full", "E_DISK_FULL", "flush", a);
	report_coded("IOError", "disk full", "E_TIMEOUT", "sync-orders", b);
	report_coded("ValueError", "bad value", "E_TIMEOUT", "flush", c);
	report_coded("ValueError", "bad value", NULL, NULL, d); /* no code, no task */

	errq_snprintf(want, sizeof(want), "%s %s", c, b);
	ASSERT_EVENTS(want, "events", "--service", "codesvc", "--code", "E_TIMEOUT");
	ASSERT_EVENTS(a, "events", "--code", "E_D?SK*");
	errq_snprintf(want, sizeof(want), "%s %s", c, a);
	ASSERT_EVENTS(want, "events", "--task", "flush");
	ASSERT_EVENTS(b, "events", "--task", "sync-*");
	/* with each other and with --type: all must match */
	ASSERT_EVENTS(c, "events", "--code", "E_T*", "--task", "fl*", "--service", "codesvc");
	ASSERT_EVENTS(b, "events", "--code", "E_T*", "--type", "IO*");
	ASSERT_EVENTS("", "events", "--code", "E_DISK_FULL", "--task", "sync-*");
	/* an event without a code or task has the empty one: only '*' matches it */
	errq_snprintf(want, sizeof(want), "%s %s %s %s", d, c, b, a);
	ASSERT_EVENTS(want, "events", "--service", "codesvc", "--code", "*", "--task", "*");
	ASSERT_EVENTS(c, "events", "--service", "codesvc", "--type", "Value*", "--code", "?*");
	ASSERT_EVENTS(c, "events", "--service", "codesvc", "--type", "Value*", "--task", "?*");
	/* '[' is a character, not a class, as for --type */
	ASSERT_EVENTS("", "events", "--code", "E_[DT]*");

	/* a group's events: the chain walk filters by both too */
	json_t *ev = errq_json("event", a, NULL);
	char fp[32];
	errq_snprintf(fp, sizeof(fp), "%s", jstr(ev, "fingerprint"));
	json_decref(ev);
	ASSERT_EVENTS(b, "events", "--group", fp, "--code", "E_TIMEOUT");
	ASSERT_EVENTS(a, "events", "--group", fp, "--task", "flush");
	ASSERT_EVENTS("", "events", "--group", fp, "--task", "flush", "--code", "E_TIMEOUT");

	/* groups --code: on the group's code, the last one its events reported (the ValueError
	 * group keeps E_TIMEOUT: its newest event has none) */
	json_t *g = errq_json("groups", "--service", "codesvc", "--code", "E_TIMEOUT", NULL);
	assert_int_equal(json_array_size(g), 2);
	for (size_t i = 0; i < json_array_size(g); i++)
		assert_string_equal(jstr(json_array_get(g, i), "error_code"), "E_TIMEOUT");
	json_decref(g);
	g = errq_json("groups", "--service", "codesvc", "--code", "E_DISK*", NULL);
	assert_int_equal(json_array_size(g), 0); /* the IOError group's code is E_TIMEOUT now */
	json_decref(g);
	g = errq_json("groups", "--code", "E_TIMEOUT", "--type", "Value*", NULL);
	assert_int_equal(json_array_size(g), 1);
	assert_string_equal(jstr(json_array_get(g, 0), "error_type"), "ValueError");
	json_decref(g);

	/* groups has no --task (a group spans tasks); bad values are usage errors, before any
	 * connection */
	assert_fails(1, "'errq groups' does not take --task", "groups", "--task", "flush", NULL);
	assert_fails(1, "empty --code", "events", "--code", "", NULL);
	assert_fails(1, "empty --task", "tail", "--task", "", NULL);
	char big[CLI_GLOB_MAX_TEST + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_fails(1, "--code is longer than 256 bytes", "events", "--code", big, NULL);
	assert_fails(1, "--task is longer than 256 bytes", "tail", "--task", big, NULL);
	assert_fails(1, "--code is longer than 256 bytes", "groups", "--code", big, NULL);
}

/* `errq tail --code GLOB --task GLOB`: the live tail filters by both. */
static void test_tail_code_task(void **state)
{
	const char *args[] = {"tail", "-o", "json", "--code", "E_T*", "--task", "sync-*", "--limit", "1", NULL};
	struct bg b;
	bg_start(&b, D.addr, args);
	wait_subscribers(D.addr, 1);
	char x[33], y[33], z[33], want[33];
	report_coded("IOError", "tail code", "E_TIMEOUT", "flush", x);     /* the task does not match */
	report_coded("IOError", "tail code", "E_DISK_FULL", "sync-a", y);  /* the code does not match */
	report_coded("IOError", "tail code", NULL, "sync-a", z);           /* no code: "" */
	report_coded("IOError", "tail code", "E_TIMEOUT", "sync-b", want); /* both match */
	assert_int_equal(bg_wait(&b), 0);
	char *out = slurp(b.out);
	json_error_t je;
	json_t *e = json_loads(out, 0, &je);
	if (!e)
		fail_msg("tail printed no JSON line: %s (%s)", je.text, out);
	assert_string_equal(jstr(e, "event_id"), want);
	assert_string_equal(jstr(e, "error_code"), "E_TIMEOUT");
	assert_string_equal(jstr(e, "task"), "sync-b");
	json_decref(e);
	free(out);
	wait_subscribers(D.addr, 0);
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
	    cmocka_unit_test(test_hostile_text_is_inert),
	    cmocka_unit_test(test_same_words),
	    cmocka_unit_test(test_events_type),
	    cmocka_unit_test(test_singular_plural),
	    cmocka_unit_test(test_groups_status_every_width),
	    cmocka_unit_test(test_events_code_task),
	    cmocka_unit_test(test_tail_code_task),
	};
	grpc_init();
	return cmocka_run_group_tests_name("integration_cli_commands", tests, setup, teardown);
}
