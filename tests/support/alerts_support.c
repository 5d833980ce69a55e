#include "alerts_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <signal.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "errq_str.h"

struct alert_env E;
struct errq_idgen G;

bool under_valgrind(void)
{
	const char *v = getenv("ERRQ_VALGRIND");
	return v && *v == '1';
}

/* ---- set-up ---- */

int alerts_setup(const char *tmpl)
{
	memset(&E, 0, sizeof(E));
	errq_snprintf(E.d.dir, sizeof(E.d.dir), "%s", tmpl);
	if (!mkdtemp(E.d.dir))
		return -1;
	errq_snprintf(E.cfg, sizeof(E.cfg), "%s/errqd.yaml", E.d.dir);
	return 0;
}

int alerts_teardown(void)
{
	int rc = 0;
	if (E.d.pid) {
		int st = errqd_stop(&E.d, SIGTERM);
		if (st != 0) {
			fprintf(stderr, "errqd exited with status %d (log %s)\n", st, E.d.log);
			rc = -1;
		}
	}
	if (E.rv_up)
		receiver_stop(&E.rv);
	E.rv_up = false;
	errqd_cleanup(&E.d);
	return rc;
}

void start_receiver(int port)
{
	assert_int_equal(receiver_start(&E.rv, port), 0);
	E.rv_up = true;
}

void stop_receiver(void)
{
	receiver_stop(&E.rv);
	E.rv_up = false;
}

void start_errqd(void)
{
	const char *args[] = {"--config", E.cfg, NULL};
	assert_int_equal(errqd_start(&E.d, args), 0);
}

void write_file(const char *path, const char *fmt, ...)
{
	char tmp[512];
	errq_snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

void send_failures(int n, const char *service, const char *type, const char *task, char (*ids)[ERRQ_ID_HEX_BUFSZ])
{
	assert_true(n > 0 && n <= 16);
	assert_int_equal(report_failures(E.d.addr, &G, n, service, type, "upstream timed out after 5000 ms", task, ids), n);
}

/* ---- the database, read-only (SQLite or PostgreSQL: harness_db) ---- */

static struct harness_db *db_open(void)
{
	struct harness_db *db = harness_db_open(E.d.db);
	if (!db)
		fail_msg("cannot open %s", E.d.db);
	return db;
}

struct first {
	bool row;
	char *text; /* malloc'd, NULL for NULL */
};

static int take_first(void *ctx, int ncols, const char *const *vals)
{
	struct first *f = ctx;
	f->row = true;
	f->text = ncols > 0 && vals[0] ? strdup(vals[0]) : NULL;
	return 1;
}

/* The first column of the first row: *row false when there is none. */
static char *q_first(const char *sql, const char *arg, bool *row)
{
	struct harness_db *db = db_open();
	struct first f = {0};
	if (harness_db_query(db, sql, arg, take_first, &f) < 0)
		fail_msg("%s: failed", sql);
	harness_db_close(db);
	*row = f.row;
	return f.text;
}

int64_t q_int(const char *sql, const char *arg)
{
	bool row;
	char *v = q_first(sql, arg, &row);
	int64_t n = !row ? -1 : v ? strtoll(v, NULL, 10) : 0;
	free(v);
	return n;
}

char *q_text(const char *sql, const char *arg)
{
	bool row;
	return q_first(sql, arg, &row);
}

int circuit_state(const char *rule)
{
	return (int)q_int("SELECT state FROM circuits WHERE rule = ?1", rule);
}

char *circuit_alert(const char *rule)
{
	/* hex(NULL) is '': keep NULL apart */
	return q_text("SELECT lower(hex(alert_id)) FROM circuits WHERE rule = ?1 AND alert_id IS NOT NULL", rule);
}

/* Column col (a fixed name) of the newest delivery of kind for the alert. */
static int64_t delivery_col(const char *alert_hex, const char *kind, const char *col)
{
	char sql[256];
	errq_snprintf(sql, sizeof(sql),
		      "SELECT %s FROM deliveries WHERE lower(hex(alert_id)) = ?1 AND kind = '%s' ORDER BY id DESC", col,
		      kind);
	return q_int(sql, alert_hex);
}

int64_t delivery_status(const char *alert_hex, const char *kind)
{
	return delivery_col(alert_hex, kind, "status");
}

int64_t delivery_attempts(const char *alert_hex, const char *kind)
{
	return delivery_col(alert_hex, kind, "attempts");
}

struct trans_rows {
	struct trans *t;
	int n, max;
};

static int take_transition(void *ctx, int ncols, const char *const *vals)
{
	struct trans_rows *r = ctx;
	if (r->n >= r->max || ncols < 4)
		return 1;
	struct trans *t = &r->t[r->n++];
	t->from = (int)strtol(vals[0] ? vals[0] : "0", NULL, 10);
	t->to = (int)strtol(vals[1] ? vals[1] : "0", NULL, 10);
	errq_snprintf(t->reason, sizeof(t->reason), "%s", vals[2] ? vals[2] : "");
	t->at = strtoull(vals[3] ? vals[3] : "0", NULL, 10);
	return 0;
}

int transitions(const char *rule, struct trans *t, int max)
{
	struct harness_db *db = db_open();
	struct trans_rows r = {t, 0, max};
	if (harness_db_query(db,
			     "SELECT from_state, to_state, coalesce(reason, ''), at_ns FROM transitions WHERE rule = ?1 ORDER BY id",
			     rule, take_transition, &r) < 0)
		fail_msg("transitions of %s: failed", rule);
	harness_db_close(db);
	return r.n;
}

void wait_state(const char *rule, int want, int line)
{
	wait_state_after(rule, want, line, 0);
}

void wait_state_after(const char *rule, int want, int line, uint64_t timer_ns)
{
	uint64_t dl = errq_mono_ns() + timer_ns + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	int st;
	while ((st = circuit_state(rule)) != want) {
		if (errq_mono_ns() > dl) {
			struct trans t[32];
			int n = transitions(rule, t, 32);
			for (int i = 0; i < n; i++)
				fprintf(stderr, "  %s: %d -> %d at %llu: %s\n", rule, t[i].from, t[i].to,
					(unsigned long long)t[i].at, t[i].reason);
			fail_msg("line %d: circuit of '%s' still in state %d after %llu ms, want %d (log %s)", line, rule,
				 st, (unsigned long long)(timer_ns / ERRQ_NS_PER_MS) + HARNESS_DEADLINE_MS, want, E.d.log);
		}
		harness_msleep(5);
	}
}

/* ---- errqd ---- */

int log_count(const char *needle)
{
	FILE *f = fopen(E.d.log, "r");
	if (!f)
		return 0;
	int n = 0;
	char line[8192];
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

bool errqd_running(void)
{
	int st;
	return E.d.pid && waitpid(E.d.pid, &st, WNOHANG) == 0;
}

/* ---- JSON and the receiver ---- */

json_t *body_json(int i)
{
	json_error_t je;
	json_t *j = json_loads(E.rv.req[i].body, 0, &je);
	if (!j)
		fail_msg("request %d: body is not JSON (%s): %s", i, je.text, E.rv.req[i].body);
	return j;
}

json_t *jget(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (!v)
		fail_msg("no member '%s'", k);
	return v;
}

const char *jstr(json_t *o, const char *k)
{
	json_t *v = jget(o, k);
	if (!json_is_string(v))
		fail_msg("'%s' is not a string", k);
	return json_string_value(v);
}

json_int_t jint(json_t *o, const char *k)
{
	json_t *v = jget(o, k);
	if (!json_is_integer(v))
		fail_msg("'%s' is not an integer", k);
	return json_integer_value(v);
}

bool is_hex32(const char *s)
{
	if (strlen(s) != 32)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

bool is_rfc3339_ms(const char *s)
{
	regex_t re;
	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	bool ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

void assert_rfc3339_ms(const char *s)
{
	if (!is_rfc3339_ms(s))
		fail_msg("'%s' is not an RFC 3339 UTC time with milliseconds", s);
}

void assert_header(int i, const char *name, const char *want)
{
	char v[256];
	if (!receiver_header(&E.rv, i, name, v, sizeof(v)))
		fail_msg("request %d has no %s header", i, name);
	assert_string_equal(v, want);
}
