/* Unit: storage/ — schema, migrations (of real old databases too), durability, writes, dedupe,
 * aggregates, queries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <cmocka.h>

#include "storage.h"
#include "errq_hash.h"
#include "storage_alerts.h"

static char dir[64], path[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/errq-unit-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[160];
	const char *sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static struct store *open_writer(void)
{
	struct store *s = NULL;
	char err[512];
	struct store_opts o = {.path = path};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), 0);
	return s;
}

/* A writer whose aggregates read a clock that stands still (store_opts.mono_ns): no generation
 * closes by age while a test runs, however slowly (ASan beside other load). */
static uint64_t frozen_clock(void *ctx)
{
	(void)ctx;
	return 1000000000ULL;
}

static struct store *open_writer_frozen(void)
{
	struct store *s = NULL;
	char err[512];
	struct store_opts o = {.path = path, .mono_ns = frozen_clock};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), 0);
	return s;
}

static struct store_event ev(uint8_t id[16], uint8_t n, const char *fp, uint64_t recv)
{
	memset(id, 0, 16);
	id[15] = n;
	id[0] = 1;
	struct store_event e = {
	    .event_id = id, .time_ns = recv - 5, .received_ns = recv, .service = "checkout",
	    .error_type = "TimeoutError", .message = "took too long", .fingerprint = fp,
	    .grouping_version = 1, .attempt = 2, .handled = n % 2,
	};
	return e;
}

static void test_schema_and_pragmas(void **state)
{
	struct store *s = open_writer();
	store_close(s);
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	const struct {
		const char *sql;
		const char *want;
	} checks[] = {{"PRAGMA auto_vacuum", "2"}, {"PRAGMA journal_mode", "wal"}, {"PRAGMA user_version", "5"}};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sqlite3_prepare_v2(db, checks[i].sql, -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), checks[i].want);
		sqlite3_finalize(st);
	}
	/* a newer schema is refused with a clear error, and left untouched */
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=7", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char err[512];
	struct store_opts o = {.path = path};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), -1);
	assert_null(s);
	assert_non_null(strstr(err, "version 7 is newer"));
	assert_non_null(strstr(err, path));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 7);
	sqlite3_finalize(st);
	sqlite3_close(db);
	teardown(NULL);
	setup(NULL);
}

/* durability (docs/protocol.md, "Durability"): normal runs the writer with synchronous=NORMAL
 * (1), full with synchronous=FULL (2).  The setting is per connection and not stored in the
 * file, so it is read from the writer's own connection, at every open. */
static void test_durability_sets_synchronous(void **state)
{
	const struct {
		int durability;
		int64_t want;
	} opens[] = {{STORE_DURABILITY_FULL, 2}, {STORE_DURABILITY_NORMAL, 1}, {STORE_DURABILITY_FULL, 2}};
	for (size_t i = 0; i < sizeof(opens) / sizeof(opens[0]); i++) {
		/* the first open creates the file, the others open it again */
		struct store *s = NULL;
		char err[512];
		struct store_opts o = {.path = path, .durability = opens[i].durability};
		assert_int_equal(store_open(&s, &o, err, sizeof(err)), 0);
		int64_t v = -1;
		assert_int_equal(store_get_pragma_int(s, "synchronous", &v), 0);
		if (v != opens[i].want)
			fail_msg("open %zu with durability %s: PRAGMA synchronous is %lld, want %lld", i,
				 opens[i].durability == STORE_DURABILITY_FULL ? "full" : "normal", (long long)v,
				 (long long)opens[i].want);
		store_close(s);
	}
	/* the accessor reads pragmas, nothing else */
	struct store *s = open_writer();
	int64_t v = 7;
	assert_int_equal(store_get_pragma_int(s, "synchronous; DROP TABLE events", &v), -1);
	assert_non_null(strstr(store_errmsg(s), "is not a pragma name"));
	assert_int_equal(store_get_pragma_int(s, "", &v), -1);
	uint64_t n = 1;
	assert_int_equal(store_count_events(s, &n), 0);
	assert_int_equal(n, 0);
	store_close(s);
}

/* ------------------------------------------------------------------ real old databases
 *
 * Databases written by the real errqd of every earlier schema version
 * (tests/data/schema-vN.db, made by tests/data/make-old-dbs.sh) open with this code, migrate
 * forward, and keep every event, group, circuit, transition, alert, delivery and silence
 * they held.  What each file held is read twice: with plain SQL on a copy of the old file
 * (the old schema, before anything of this code touched it), and through the store API after
 * the migration.  Both are rendered as text rows and compared, and the counts the script
 * printed when it made the files are pinned, so an empty or replaced fixture cannot pass. */

#ifndef ERRQ_TEST_DATA_DIR
#error "ERRQ_TEST_DATA_DIR must name tests/data"
#endif

#define MAX_ROWS 64
#define ROW_MAX 4096

/* What make-old-dbs.sh printed when it made the files (see its recipe for each version). */
static const struct fixture {
	int version;
	int events, groups, resolved, ignored;
	int circuits, open, transitions, alerts, firing, deliveries, silences;
} fixtures[] = {
    {1, 12, 9, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {2, 12, 9, 1, 1, 6, 1, 10, 4, 1, 8, 1},
    {3, 12, 9, 1, 1, 6, 1, 10, 4, 1, 8, 1},
    {4, 12, 9, 1, 1, 6, 1, 10, 4, 1, 8, 1},
};

/* The fixture is copied: the committed file is never opened for writing. */
static void copy_fixture(int version)
{
	char src[256];
	snprintf(src, sizeof(src), "%s/schema-v%d.db", ERRQ_TEST_DATA_DIR, version);
	FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
	if (!in)
		fail_msg("cannot open fixture '%s' (tests/data/make-old-dbs.sh makes it)", src);
	assert_non_null(out);
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* ------------------------------------------------------------ rows as text */

struct rows {
	int n;
	char r[MAX_ROWS][ROW_MAX];
};

static void add_row(struct rows *rs, const char *fmt, ...)
{
	assert_true(rs->n < MAX_ROWS);
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(rs->r[rs->n], ROW_MAX, fmt, ap);
	va_end(ap);
	assert_true(len >= 0 && len < ROW_MAX);
	rs->n++;
}

static int cmp_row(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void assert_same_rows(struct rows *before, struct rows *after, const char *what)
{
	qsort(before->r, (size_t)before->n, ROW_MAX, cmp_row);
	qsort(after->r, (size_t)after->n, ROW_MAX, cmp_row);
	for (int i = 0; i < before->n && i < after->n; i++)
		if (strcmp(before->r[i], after->r[i]) != 0)
			fail_msg("%s differ after the migration:\n  before: %s\n  after:  %s", what, before->r[i],
				 after->r[i]);
	if (before->n != after->n)
		fail_msg("%d %s before the migration, %d after", before->n, what, after->n);
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

static void hex(const void *p, size_t n, char *out)
{
	static const char digits[] = "0123456789ABCDEF";
	const uint8_t *b = p;
	for (size_t i = 0; i < n && b; i++) {
		*out++ = digits[b[i] >> 4];
		*out++ = digits[b[i] & 15];
	}
	*out = '\0';
}

/* Every row of sql, its columns joined by '|' (NULL as ""). */
static void sql_rows(sqlite3 *db, const char *sql, struct rows *rs)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	rs->n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		char line[ROW_MAX];
		size_t len = 0;
		for (int c = 0; c < sqlite3_column_count(st); c++) {
			const char *v = (const char *)sqlite3_column_text(st, c);
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", c ? "|" : "", nz(v));
			assert_true(len < sizeof(line));
		}
		add_row(rs, "%s", line);
	}
	sqlite3_finalize(st);
}

static int sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The same columns, in the same order, as the SQL below reads from the old schema. */
static int event_row(void *ctx, const struct store_event *e)
{
	char id[33], extra[ROW_MAX / 2];
	assert_true(e->extra_len * 2 < sizeof(extra));
	hex(e->event_id, 16, id);
	hex(e->extra, e->extra_len, extra);
	add_row(ctx, "%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%d|%u|%d|%u|%llu|%llu|%s", id, e->fingerprint, e->service,
		nz(e->environment), nz(e->release), nz(e->host), nz(e->task), e->error_type, nz(e->error_code),
		nz(e->message), e->grouping_version, e->attempt, e->handled, e->truncated,
		(unsigned long long)e->time_ns, (unsigned long long)e->received_ns, extra);
	return 0;
}
static const char events_sql[] =
    "SELECT hex(e.event_id), g.fingerprint, e.service, e.environment, e.release, e.host, e.task, e.error_type,"
    " e.error_code, e.message, g.grouping_version, e.attempt, e.handled, e.truncated, e.time_ns, e.received_ns,"
    " hex(e.extra) FROM events e JOIN groups g ON g.id = e.group_id";

static int group_row(void *ctx, const struct store_group *g)
{
	add_row(ctx, "%s|%s|%s|%s|%s|%s|%llu|%llu|%llu|%llu|%s|%d|%d", g->fingerprint, g->service,
		nz(g->environment), g->error_type, nz(g->error_code), nz(g->message), (unsigned long long)g->total,
		(unsigned long long)g->handled, (unsigned long long)g->first_seen_ns,
		(unsigned long long)g->last_seen_ns, g->status, g->grouping_version, g->regression);
	return 0;
}
static const char groups_sql[] = "SELECT fingerprint, service, environment, error_type, error_code, message, total,"
				 " handled, first_seen, last_seen, status, grouping_version, regression FROM groups";

static int circuit_row(void *ctx, const struct store_circuit *c)
{
	char aid[33], saved[ROW_MAX / 2];
	assert_true(c->saved_len * 2 < sizeof(saved));
	hex(c->alert_id, c->alert_id ? 16 : 0, aid);
	hex(c->saved, c->saved_len, saved);
	add_row(ctx, "%s|%s|%lld|%d|%llu|%llu|%llu|%s|%s|%llu", c->rule, c->key, (long long)c->def_hash, c->state,
		(unsigned long long)c->since_ns, (unsigned long long)c->failures_in_window,
		(unsigned long long)c->next_transition_ns, aid, saved, (unsigned long long)c->updated_ns);
	return 0;
}
static const char circuits_sql[] = "SELECT rule, key, def_hash, state, since_ns, failures, next_ns, hex(alert_id),"
				   " hex(saved), updated_ns FROM circuits";

static int transition_row(void *ctx, const struct store_transition *t)
{
	char aid[33];
	hex(t->alert_id, t->alert_id ? 16 : 0, aid);
	add_row(ctx, "%s|%s|%llu|%d|%d|%s|%llu|%u|%llu|%s", t->rule, t->key, (unsigned long long)t->at_ns, t->from,
		t->to, nz(t->reason), (unsigned long long)t->failures_in_window, t->window_seconds,
		(unsigned long long)t->next_transition_ns, aid);
	return 0;
}
static const char transitions_sql[] = "SELECT rule, key, at_ns, from_state, to_state, reason, failures, window_s,"
				      " next_ns, hex(alert_id) FROM transitions";

static int alert_row(void *ctx, const struct store_alert *a)
{
	char aid[33];
	hex(a->alert_id, 16, aid);
	add_row(ctx, "%s|%s|%s|%s|%s|%d|%llu|%llu|%llu|%u|%s|%s|%u|%llu", aid, a->rule, a->key, a->severity,
		a->status, a->state, (unsigned long long)a->opened_ns, (unsigned long long)a->resolved_ns,
		(unsigned long long)a->failures_in_window, a->window_seconds, nz(a->sample), nz(a->resolve_reason),
		a->notices, (unsigned long long)a->updated_ns);
	return 0;
}
static const char alerts_sql[] = "SELECT hex(alert_id), rule, key, severity, status, state, opened_ns, resolved_ns,"
				 " failures, window_s, sample, resolve_reason, notices, updated_ns FROM alerts";

static int delivery_row(void *ctx, const struct store_delivery *d)
{
	char aid[33];
	hex(d->alert_id, 16, aid);
	add_row(ctx, "%s|%s|%s|%u|%s|%d|%u|%llu|%ld|%s|%llu|%llu", aid, d->notifier, d->kind, d->seq,
		nz(d->idempotency_key), d->status, d->attempts, (unsigned long long)d->next_attempt_ns,
		d->http_status, nz(d->last_error), (unsigned long long)d->created_ns,
		(unsigned long long)d->updated_ns);
	return 0;
}
/* idem_key NULL stands for the usual key (store_migrate.c) */
static const char deliveries_sql[] = "SELECT hex(alert_id), notifier, kind, seq,"
				     " coalesce(idem_key, lower(hex(alert_id)) || ':' || kind || ':' || seq), status, attempts,"
				     " next_attempt_ns, http_status, last_error, created_ns, updated_ns FROM deliveries";

static int silence_row(void *ctx, const struct store_silence *si)
{
	add_row(ctx, "%s|%s|%s|%s|%llu|%llu|%llu|%llu", si->rule, si->matchers, nz(si->comment), nz(si->created_by),
		(unsigned long long)si->created_ns, (unsigned long long)si->starts_ns, (unsigned long long)si->ends_ns,
		(unsigned long long)si->expired_ns);
	return 0;
}
static const char silences_sql[] = "SELECT rule, matchers, comment, created_by, created_ns, starts_ns, ends_ns,"
				   " expired_ns FROM silences";

/* ------------------------------------------------------------ the test */

struct snapshot {
	struct rows events, groups, circuits, transitions, alerts, deliveries, silences;
};

static struct snapshot before, after;

/* The old file, read with SQL on its own schema. */
static void read_before(const struct fixture *fx)
{
	sqlite3 *db;
	memset(&before, 0, sizeof(before)); /* schema 1 has no alerting tables: no rows */
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), fx->version);
	sql_rows(db, events_sql, &before.events);
	sql_rows(db, groups_sql, &before.groups);
	assert_int_equal(before.events.n, fx->events);
	assert_int_equal(before.groups.n, fx->groups);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM groups WHERE status = 'resolved'"), fx->resolved);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM groups WHERE status = 'ignored'"), fx->ignored);
	if (fx->version >= 2) {
		sql_rows(db, circuits_sql, &before.circuits);
		sql_rows(db, transitions_sql, &before.transitions);
		sql_rows(db, alerts_sql, &before.alerts);
		sql_rows(db, deliveries_sql, &before.deliveries);
		sql_rows(db, silences_sql, &before.silences);
		assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits WHERE state <> 0"), fx->open);
		assert_int_equal(sql_int(db, "SELECT count(*) FROM alerts WHERE status = 'firing'"), fx->firing);
	}
	assert_int_equal(before.circuits.n, fx->circuits);
	assert_int_equal(before.transitions.n, fx->transitions);
	assert_int_equal(before.alerts.n, fx->alerts);
	assert_int_equal(before.deliveries.n, fx->deliveries);
	assert_int_equal(before.silences.n, fx->silences);
	sqlite3_close(db);
}

static int alert_deliveries(void *ctx, const struct store_alert *a)
{
	struct store *s = ctx;
	assert_int_equal(store_list_deliveries(s, a->alert_id, delivery_row, &after.deliveries), 0);
	return 0;
}

static int circuit_transitions(void *ctx, const struct store_circuit *c)
{
	struct store *s = ctx;
	assert_int_equal(store_list_transitions(s, c->rule, c->key, 1000, transition_row, &after.transitions), 0);
	return 0;
}

/* The migrated file, through the store API. */
static void read_after(struct store *s)
{
	memset(&after, 0, sizeof(after));
	struct store_event_filter ef = {.limit = 1000};
	assert_int_equal(store_list_events(s, &ef, event_row, &after.events), 0);
	struct store_group_filter gf = {.limit = 1000};
	assert_int_equal(store_list_groups(s, &gf, group_row, &after.groups), 0);
	assert_int_equal(store_list_circuits(s, NULL, circuit_row, &after.circuits), 0);
	/* transitions are listed per circuit: those of a circuit without a row would be missed,
	 * so their count is also checked against the table below */
	assert_int_equal(store_list_circuits(s, NULL, circuit_transitions, s), 0);
	struct store_alert_filter af = {.limit = 1000};
	assert_int_equal(store_list_alerts(s, &af, alert_row, &after.alerts), 0);
	assert_int_equal(store_list_alerts(s, &af, alert_deliveries, s), 0);
	assert_int_equal(store_list_silences(s, STORE_SILENCES_ALL, 0, 0, silence_row, &after.silences), 0);
}

static void check_same(void)
{
	assert_same_rows(&before.events, &after.events, "events");
	assert_same_rows(&before.groups, &after.groups, "groups");
	assert_same_rows(&before.circuits, &after.circuits, "circuits");
	assert_same_rows(&before.transitions, &after.transitions, "transitions");
	assert_same_rows(&before.alerts, &after.alerts, "alerts");
	assert_same_rows(&before.deliveries, &after.deliveries, "deliveries");
	assert_same_rows(&before.silences, &after.silences, "silences");
}

static struct store *open_store(bool readonly, char *err, size_t errsz)
{
	struct store *s = NULL;
	struct store_opts o = {.path = path, .readonly = readonly};
	if (store_open(&s, &o, err, errsz))
		return NULL;
	return s;
}

static uint64_t hist_sum;
static int64_t hist_group;
static uint64_t hist_first, hist_last, hist_total;
static char hist_service[64], hist_type[64];
static int first_group(void *ctx, const struct store_group *g)
{
	hist_group = g->id;
	snprintf(hist_service, sizeof(hist_service), "%s", g->service);
	snprintf(hist_type, sizeof(hist_type), "%s", g->error_type);
	hist_first = g->first_seen_ns;
	hist_last = g->last_seen_ns;
	hist_total = g->total;
	snprintf(ctx, 17, "%s", g->fingerprint);
	return 1;
}

static int count_fp(void *ctx, const struct store_event *e)
{
	(*(int *)ctx)++;
	return 0;
}

static void upgrade(const struct fixture *fx)
{
	char err[512];
	copy_fixture(fx->version);
	read_before(fx);

	/* a reader refuses the old version: only the writer migrates */
	struct store *s = open_store(true, err, sizeof(err));
	assert_null(s);
	char want[64];
	snprintf(want, sizeof(want), "schema version %d", fx->version);
	assert_non_null(strstr(err, want));

	s = open_store(false, err, sizeof(err));
	if (!s)
		fail_msg("schema %d: %s", fx->version, err);
	read_after(s);
	check_same();
	/* a second open finds the current version and changes nothing */
	store_close(s);
	s = open_store(false, err, sizeof(err));
	assert_non_null(s);
	read_after(s);
	check_same();
	uint64_t n = 0;
	assert_int_equal(store_count_events(s, &n), 0);
	assert_int_equal(n, (uint64_t)fx->events);
	struct store_totals t;
	assert_int_equal(store_get_totals(s, &t), 0);
	assert_int_equal(t.events, (uint64_t)fx->events); /* the sum over groups */
	assert_int_equal(t.groups, (uint64_t)fx->groups);

	/* the minute counts survived: one group's histogram adds up to its total */
	char fp[17];
	struct store_group_filter gf = {.limit = 1, .status = "unresolved"};
	assert_int_equal(store_list_groups(s, &gf, first_group, fp), 0);
	uint64_t counts[16] = {0};
	int64_t m0 = (int64_t)(hist_first / 60000000000ULL);
	uint32_t nm = (uint32_t)(hist_last / 60000000000ULL - hist_first / 60000000000ULL + 1);
	assert_true(nm <= 16);
	assert_int_equal(store_group_histogram(s, hist_group, NULL, m0, nm, counts), 0);
	hist_sum = 0;
	for (uint32_t i = 0; i < nm; i++)
		hist_sum += counts[i];
	assert_int_equal(hist_sum, hist_total);

	/* and the upgraded file takes new events: one more in an old group joins its chain */
	uint8_t id[16] = {0xfe, 0xed, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (uint8_t)fx->version};
	struct store_event e = {.event_id = id, .time_ns = hist_last + 1, .received_ns = hist_last + 1,
				.service = hist_service, .error_type = hist_type, .fingerprint = fp,
				.grouping_version = 1, .attempt = 1};
	assert_int_equal(store_txn_begin(s), 0);
	assert_int_equal(store_txn_add_event(s, &e), 1);
	assert_int_equal(store_txn_commit(s), 0);
	int in_group = 0;
	struct store_event_filter ef = {.fingerprint = fp, .limit = 1000};
	assert_int_equal(store_list_events(s, &ef, count_fp, &in_group), 0);
	assert_int_equal((uint64_t)in_group, hist_total + 1);
	store_close(s);

	/* now at the current version, which a reader opens */
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	if (fx->version >= 2)
		assert_int_equal(sql_int(db, "SELECT count(*) FROM transitions"), fx->transitions);
	sqlite3_close(db);
	s = open_store(true, err, sizeof(err));
	if (!s)
		fail_msg("reader after the migration: %s", err);
	assert_int_equal(store_count_events(s, &n), 0);
	assert_int_equal(n, (uint64_t)fx->events + 1);
	store_close(s);
}

static void test_upgrade_schema_v1(void **state)
{
	upgrade(&fixtures[0]);
}

static void test_upgrade_schema_v2(void **state)
{
	upgrade(&fixtures[1]);
}

static void test_upgrade_schema_v3(void **state)
{
	upgrade(&fixtures[2]);
}

static void test_upgrade_schema_v4(void **state)
{
	upgrade(&fixtures[3]);
}

/* Every earlier version has a fixture: a new schema version must come with the file of the
 * one before it (tests/data/make-old-dbs.sh). */
static void test_every_old_version_has_a_fixture(void **state)
{
	int n = (int)(sizeof(fixtures) / sizeof(fixtures[0]));
	assert_int_equal(n, STORE_SCHEMA_VERSION - 1);
	for (int i = 0; i < n; i++)
		assert_int_equal(fixtures[i].version, i + 1);
}

static struct {
	int n;
	uint64_t total[4], count[4], sort_key[4];
	int64_t id[4];
	char fp[4][8];
} got;

static int cb(void *ctx, const struct store_group *g)
{
	(void)ctx;
	if (got.n >= 4)
		return 1;
	got.total[got.n] = g->total;
	got.count[got.n] = g->count;
	got.sort_key[got.n] = g->sort_key;
	got.id[got.n] = g->id;
	snprintf(got.fp[got.n], 8, "%s", g->fingerprint);
	got.n++;
	return 0;
}

static void test_insert_dedupe_and_groups(void **state)
{
	struct store *s = open_writer();
	uint8_t ids[8][16];
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 5; i++) {
		struct store_event e = ev(ids[i], (uint8_t)i, "aaaa", t0 + (uint64_t)i);
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	struct store_event dup = ev(ids[5], 2, "aaaa", t0 + 99);
	assert_int_equal(store_txn_add_event(s, &dup), 0); /* same id as event 2 */
	struct store_event other = ev(ids[6], 50, "bbbb", t0 + 70ULL * 1000000000ULL);
	assert_int_equal(store_txn_add_event(s, &other), 1);
	assert_int_equal(store_txn_commit(s), 0);

	/* a rolled-back transaction leaves nothing, and a group it created is forgotten */
	assert_int_equal(store_txn_begin(s), 0);
	struct store_event gone = ev(ids[7], 77, "cccc", t0);
	assert_int_equal(store_txn_add_event(s, &gone), 1);
	store_txn_rollback(s);
	assert_int_equal(store_txn_begin(s), 0);
	gone = ev(ids[7], 78, "cccc", t0);
	assert_int_equal(store_txn_add_event(s, &gone), 1); /* group re-created, not a stale id */
	assert_int_equal(store_txn_commit(s), 0);

	uint64_t n;
	assert_int_equal(store_count_events(s, &n), 0);
	assert_int_equal(n, 7);
	store_close(s);

	/* readers see the aggregates */
	struct store *r = NULL;
	char err[512];
	struct store_opts o = {.path = path, .readonly = true};
	assert_int_equal(store_open(&r, &o, err, sizeof(err)), 0);
	memset(&got, 0, sizeof(got));
	struct store_group_filter f = {.limit = 10};
	assert_int_equal(store_list_groups(r, &f, cb, NULL), 0);
	assert_int_equal(got.n, 3);
	/* newest last_seen first: bbbb (t0+70s), then aaaa/cccc */
	assert_string_equal(got.fp[0], "bbbb");
	assert_int_equal(got.total[0], 1);
	int ia = strcmp(got.fp[1], "aaaa") == 0 ? 1 : 2;
	assert_int_equal(got.total[ia], 5);
	assert_int_equal(got.count[ia], 5);
	/* since: minute-resolution window counts; aaaa has nothing in bbbb's minute */
	memset(&got, 0, sizeof(got));
	f.since_ns = t0 + 70ULL * 1000000000ULL;
	assert_int_equal(store_list_groups(r, &f, cb, NULL), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.fp[0], "bbbb");
	assert_int_equal(got.count[0], 1);
	store_close(r);
}

static int collect_rowids(void *ctx, const struct store_event *e)
{
	int64_t *ids = ctx;
	ids[++ids[0]] = e->rowid;
	return 0;
}

static void test_event_pagination(void **state)
{
	struct store *s = open_writer();
	uint8_t id[16];
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 25; i++) {
		struct store_event e = ev(id, (uint8_t)(100 + i), "pppp", t0 + (uint64_t)i);
		e.service = i % 2 ? "odd" : "even";
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(store_txn_commit(s), 0);
	/* pages of 10 newest first, following the cursor: no row skipped or repeated */
	int64_t seen[64] = {0}, page[16];
	int64_t cursor = 0;
	int total = 0;
	for (;;) {
		memset(page, 0, sizeof(page));
		struct store_event_filter f = {.before_rowid = cursor, .limit = 10};
		assert_int_equal(store_list_events(s, &f, collect_rowids, page), 0);
		for (int i = 1; i <= page[0]; i++) {
			if (total)
				assert_true(page[i] < seen[total - 1]);
			seen[total++] = page[i];
		}
		if (page[0] < 10)
			break;
		cursor = page[page[0]];
	}
	assert_int_equal(total, 25);
	memset(page, 0, sizeof(page));
	struct store_event_filter f = {.service = "odd", .limit = 100};
	int64_t odd[32] = {0};
	assert_int_equal(store_list_events(s, &f, collect_rowids, odd), 0);
	assert_int_equal(odd[0], 12);
	store_close(s);
}

static int collect_ids(void *ctx, const struct store_event *e)
{
	int64_t *ids = ctx;
	ids[++ids[0]] = e->rowid;
	return 0;
}

/* A group's events are listed through its chain (prev_in_group), newest first, with a cursor;
 * duplicates and rolled-back events do not break it, nor do cache evictions in a transaction
 * that touches more groups than a cache set has ways. */
static void test_group_chain(void **state)
{
	struct store *s = open_writer();
	uint8_t id[16];
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	assert_int_equal(store_txn_begin(s), 0);
	int64_t want_a[16] = {0};
	for (int i = 0; i < 12; i++) {
		struct store_event e = ev(id, (uint8_t)i, i % 3 == 0 ? "chain-a" : "chain-b", t0 + (uint64_t)i);
		id[1] = 0xA0; /* distinct from other tests' ids */
		assert_int_equal(store_txn_add_event(s, &e), 1);
		if (i % 3 == 0)
			want_a[++want_a[0]] = i;
	}
	struct store_event dup = ev(id, 0, "chain-a", t0 + 50);
	id[1] = 0xA0;
	assert_int_equal(store_txn_add_event(s, &dup), 0);
	assert_int_equal(store_txn_commit(s), 0);
	assert_int_equal(store_txn_begin(s), 0);
	struct store_event gone = ev(id, 99, "chain-a", t0 + 60);
	id[1] = 0xA0;
	assert_int_equal(store_txn_add_event(s, &gone), 1);
	store_txn_rollback(s);

	int64_t ids[32] = {0};
	struct store_event_filter f = {.fingerprint = "chain-a", .limit = 3};
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 3);
	f.before_rowid = ids[3];
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 4); /* 4 events of chain-a in all: a second page of one */
	for (int i = 1; i < 4; i++)
		assert_true(ids[i] > ids[i + 1]);
	/* the rows are chain-a's: rowids 1, 4, 7, 10 of this fresh database */
	assert_int_equal(ids[1], 10);
	assert_int_equal(ids[4], 1);

	/* more groups than a cache set has ways, three times over in one transaction: each pass
	 * evicts groups whose heads are only in memory (the counts are deferred), so they are
	 * written through, and the next pass finds them in the database */
	enum { NG = 3 * STORE_GROUP_CACHE_WAYS, PASSES = 3 };
	const size_t sets = STORE_GROUP_CACHE_SLOTS / STORE_GROUP_CACHE_WAYS;
	char fps[NG][24];
	int n = 0;
	uint64_t set = 0;
	for (long k = 0; n < NG; k++) {
		int len = snprintf(fps[n], sizeof(fps[n]), "many-%ld", k);
		uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, fps[n], (size_t)len) % sets;
		if (!n)
			set = h;
		if (h == set)
			n++;
	}
	assert_int_equal(store_txn_begin(s), 0);
	for (int pass = 0; pass < PASSES; pass++)
		for (int g = 0; g < NG; g++) {
			struct store_event e = ev(id, 0, fps[g], t0 + 100 + (uint64_t)pass);
			id[0] = 2;
			id[1] = (uint8_t)pass;
			id[4] = (uint8_t)g;
			assert_int_equal(store_txn_add_event(s, &e), 1);
		}
	assert_int_equal(store_txn_commit(s), 0);
	for (int g = 0; g < NG; g++) {
		memset(ids, 0, sizeof(ids));
		struct store_event_filter gf = {.fingerprint = fps[g], .limit = 10};
		assert_int_equal(store_list_events(s, &gf, collect_ids, ids), 0);
		assert_int_equal(ids[0], PASSES);
		for (int k = 1; k < PASSES; k++)
			assert_int_equal(ids[k] - ids[k + 1], NG); /* one pass apart */
	}
	store_close(s);
}

static int64_t q1(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Adds events n0..n1-1 of group fp (received one ns apart from t) in one transaction. */
static void add_range(struct store *s, const char *fp, int n0, int n1, uint64_t t, bool deferred)
{
	uint8_t id[16];
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = n0; i < n1; i++) {
		struct store_event e = ev(id, (uint8_t)i, fp, t + (uint64_t)i);
		id[1] = 0xD0;
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(deferred ? store_txn_commit_deferred(s) : store_txn_commit(s), 0);
}

/* Events refused by a quota are counted (group total, minutes, service minutes, a dropped
 * tally) but not stored; their counts go with their own commit, never deferred, so neither a
 * rollback nor a crash can count them twice or lose them.  One whose event_id is stored
 * already is a duplicate. */
static void test_count_only_events(void **state)
{
	struct store *s = open_writer();
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	uint8_t id[16];
	add_range(s, "storm", 0, 2, t0, true); /* 2 stored, counts deferred */
	assert_int_equal(store_txn_count_event(s, &(struct store_event){.service = "x"}), -1); /* no txn */
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 2; i < 7; i++) {
		struct store_event e = ev(id, (uint8_t)i, "storm", t0 + (uint64_t)i);
		assert_int_equal(store_txn_count_event(s, &e), 1);
	}
	struct store_event e = ev(id, 1, "storm", t0 + 9); /* an event_id stored already: a duplicate */
	id[1] = 0xD0; /* as add_range made it */
	assert_int_equal(store_txn_count_event(s, &e), 0);
	e = ev(id, 50, "new-group", t0 + 10); /* a new group made of a dropped event only */
	assert_int_equal(store_txn_count_event(s, &e), 1);
	assert_int_equal(store_txn_commit_deferred(s), 0); /* not deferred: written now */
	assert_false(store_agg_pending(s));
	assert_int_equal(q1("SELECT count(*) FROM events"), 2);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'storm'"), 7);
	assert_int_equal(q1("SELECT dropped FROM groups WHERE fingerprint = 'storm'"), 5);
	assert_int_equal(q1("SELECT stored FROM groups WHERE fingerprint = 'storm'"), 2);
	assert_int_equal(q1("SELECT last_seen FROM groups WHERE fingerprint = 'storm'"), (int64_t)(t0 + 6));
	assert_int_equal(q1("SELECT dropped FROM groups WHERE fingerprint = 'new-group'"), 1);
	assert_int_equal(q1("SELECT last_event FROM groups WHERE fingerprint = 'new-group'"), 0);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 8);
	assert_int_equal(q1("SELECT sum(count) FROM service_minutes"), 8);
	assert_int_equal(q1("SELECT sum(dropped) FROM service_minutes"), 6);
	struct store_totals t;
	assert_int_equal(store_get_totals(s, &t), 0);
	assert_int_equal(t.events, 2);
	assert_int_equal(t.dropped, 6);
	/* the chain still starts at the newest stored event */
	int64_t ids[8] = {0};
	struct store_event_filter f = {.fingerprint = "storm", .limit = 8};
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 2); /* listed */
	assert_int_equal(ids[1], 2); /* newest first */
	assert_int_equal(ids[2], 1);

	/* rolled back: counted nowhere (the writer counts them again when it retries) */
	assert_int_equal(store_txn_begin(s), 0);
	e = ev(id, 60, "storm", t0 + 20);
	assert_int_equal(store_txn_count_event(s, &e), 1);
	store_txn_rollback(s);
	add_range(s, "storm", 70, 71, t0, true);
	assert_int_equal(store_agg_flush(s), 0);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'storm'"), 8);
	assert_int_equal(q1("SELECT dropped FROM groups WHERE fingerprint = 'storm'"), 5);

	/* a crash right after a commit holding dropped counts (and a stored event whose counts
	 * were deferred before it): the next open counts nothing twice and loses nothing */
	store_close(s);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *c = open_writer();
		add_range(c, "storm", 90, 91, t0, true);
		assert_int_equal(store_txn_begin(c), 0);
		e = ev(id, 80, "storm", t0 + 30);
		assert_int_equal(store_txn_count_event(c, &e), 1);
		assert_int_equal(store_txn_commit_deferred(c), 0);
		_exit(0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	s = open_writer();
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'storm'"), 10);
	assert_int_equal(q1("SELECT dropped FROM groups WHERE fingerprint = 'storm'"), 6);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 11);
	assert_int_equal(q1("SELECT count(*) FROM events"), 4);
	store_close(s);
}

/* Deferred aggregates: events are stored at once, counts and chain heads when flushed; a
 * rollback or a crash loses no count (the events past 'aggregated_through' count again). */
static void test_deferred_aggregates(void **state)
{
	struct store *s = open_writer();
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	add_range(s, "agg", 0, 3, t0, true);
	/* the events are there; the group's counts not yet */
	assert_int_equal(q1("SELECT count(*) FROM events"), 3);
	assert_true(store_agg_pending(s));
	assert_int_equal(q1("SELECT coalesce(sum(total), 0) FROM groups WHERE fingerprint = 'agg'"), 0);
	/* a deferred commit after the interval writes them; so does store_agg_flush */
	add_range(s, "agg", 3, 5, t0, true);
	assert_int_equal(store_agg_flush(s), 0);
	assert_false(store_agg_pending(s));
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 5);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 5);
	assert_int_equal(q1("SELECT value FROM meta WHERE key = 'aggregated_through'"), 5);

	/* rollback: 2 deferred, 2 rolled back, 1 more: counts 8, chain of 8 */
	add_range(s, "agg", 5, 7, t0, true);
	uint8_t id[16];
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 7; i < 9; i++) {
		struct store_event e = ev(id, (uint8_t)i, "agg", t0 + (uint64_t)i);
		id[1] = 0xD0;
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	store_txn_rollback(s);
	add_range(s, "agg", 9, 10, t0, true);
	assert_int_equal(store_agg_flush(s), 0);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 8);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 8);
	assert_int_equal(q1("SELECT sum(count) FROM service_minutes"), 8);
	int64_t ids[32] = {0};
	struct store_event_filter f = {.fingerprint = "agg", .limit = 20};
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 8);

	/* a crash with counts unwritten: a child stores 4 more and exits without closing */
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *c = open_writer();
		add_range(c, "agg", 10, 12, t0, true);
		add_range(c, "agg-2", 12, 14, t0, true);
		_exit(store_agg_pending(c) ? 0 : 1);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	store_close(s);
	assert_int_equal(q1("SELECT count(*) FROM events"), 12);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 8); /* not yet */
	s = open_writer(); /* aggregates the 4 again */
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 10);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg-2'"), 2);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 12);
	assert_int_equal(q1("SELECT sum(stored) FROM groups"), 12);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 10); /* the chain reaches the events stored before the crash */
	/* and the next event of the group chains onto them */
	add_range(s, "agg", 14, 15, t0, false);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 11);
	store_close(s);
}

/* Adds one event to each of the groups "slice-<g0>".."slice-<g1 - 1>" (ids tagged by round) in
 * one transaction, committed deferred. */
static void add_groups(struct store *s, int g0, int g1, uint8_t round, uint64_t t)
{
	uint8_t id[16];
	char fp[32];
	assert_int_equal(store_txn_begin(s), 0);
	for (int g = g0; g < g1; g++) {
		snprintf(fp, sizeof(fp), "slice-%d", g);
		struct store_event e = ev(id, 0, fp, t);
		id[1] = 0x5C;
		id[2] = round;
		id[3] = (uint8_t)(g >> 8);
		id[4] = (uint8_t)g;
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(store_txn_commit_deferred(s), 0);
}

/* Every group's last_minute is its last_seen's minute (the index groups_last_minute keys on
 * it; the writer names it in an update only when it moves). */
static void assert_last_minutes(void)
{
	assert_int_equal(q1("SELECT count(*) FROM groups WHERE last_minute != last_seen / 60000000000"), 0);
}

/* A closed generation is written a slice (STORE_AGG_FLUSH_CHUNK groups) per transaction; a
 * crash between slices counts every event once: the groups already written (their
 * agg_through) are not counted again, the others and the services are. */
static void test_aggregate_slices(void **state)
{
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	enum { NG = 4 * STORE_AGG_FLUSH_CHUNK - 100, MORE = 500 };
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the clock stands still: no generation closes by age inside add_groups (under TSan
		 * one did, the deferred commit wrote it whole and the step found nothing left) */
		struct store *c = open_writer_frozen();
		bool more = false;
		add_groups(c, 0, NG, 1, t0);
		/* the first step closes the generation and writes one slice */
		if (store_agg_flush_step(c, &more) || !more)
			_exit(2);
		if (q1("SELECT count(*) FROM groups WHERE total > 0") != STORE_AGG_FLUSH_CHUNK ||
		    q1("SELECT value FROM meta WHERE key = 'aggregated_through'") != 0)
			_exit(3);
		/* new counts (in groups written already) go to the open generation; the deferred
		 * commit goes on with the closed one */
		add_groups(c, 0, MORE, 2, t0 + 1);
		if (q1("SELECT count(*) FROM groups WHERE total > 0") != 2 * STORE_AGG_FLUSH_CHUNK ||
		    q1("SELECT coalesce(sum(count), 0) FROM service_minutes") != 0)
			_exit(5);
		_exit(0); /* a crash: the rest of the closed generation and the open one unwritten */
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(q1("SELECT count(*) FROM events"), NG + MORE);
	struct store *s = open_writer(); /* aggregates the events past aggregated_through again */
	assert_false(store_agg_pending(s));
	assert_int_equal(q1("SELECT sum(total) FROM groups"), NG + MORE);
	assert_int_equal(q1("SELECT sum(stored) FROM groups"), NG + MORE);
	/* each group exactly: two events in the first MORE groups, one in the others */
	assert_int_equal(q1("SELECT count(*) FROM groups WHERE total != CASE WHEN"
			    " CAST(substr(fingerprint, 7) AS INTEGER) < 500 THEN 2 ELSE 1 END"),
			 0);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), NG + MORE);
	assert_int_equal(q1("SELECT sum(count) FROM service_minutes"), NG + MORE);
	assert_int_equal(q1("SELECT value FROM meta WHERE key = 'aggregated_through'"), NG + MORE);
	assert_last_minutes();
	/* the chains are whole: the first 500 groups have both events */
	int64_t ids[4] = {0};
	struct store_event_filter f = {.fingerprint = "slice-7", .limit = 4};
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 2);
	store_close(s);
}

/* The open generation fills while the closed one is still being written: the closed one is
 * written whole first, then the full one closes (the policy at the table's limit), and every
 * count is written once. */
static void test_generation_full(void **state)
{
	/* the clock stands still: the first generation closes at the flush step below, not by its
	 * age inside add_groups (then the deferred commit wrote it whole and `more` was false: one
	 * ASan run in 20 beside make test-long's other load) */
	struct store *s = open_writer_frozen();
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	enum { FIRST = 3 * STORE_AGG_FLUSH_CHUNK, FULL = STORE_AGG_SLOTS * 3 / 4 + 10 };
	bool more = false;
	struct store_write_stats ws;
	add_groups(s, 0, FIRST, 1, t0);
	assert_int_equal(store_agg_flush_step(s, &more), 0); /* closes it, writes one slice */
	assert_true(more);
	store_get_write_stats(s, &ws);
	uint64_t gens = ws.agg_generations;
	add_groups(s, 0, FULL, 2, t0 + 1); /* one transaction: the open table fills inside it */
	store_get_write_stats(s, &ws);
	assert_true(ws.agg_generations >= gens + 1);
	assert_int_equal(store_agg_flush(s), 0);
	assert_false(store_agg_pending(s));
	assert_int_equal(q1("SELECT count(*) FROM groups"), FULL);
	assert_int_equal(q1("SELECT sum(total) FROM groups"), FIRST + FULL);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), FIRST + FULL);
	assert_int_equal(q1("SELECT sum(count) FROM service_minutes"), FIRST + FULL);
	char sql[160];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM groups WHERE total != CASE WHEN"
		 " CAST(substr(fingerprint, 7) AS INTEGER) < %d THEN 2 ELSE 1 END",
		 (int)FIRST);
	assert_int_equal(q1(sql), 0);
	store_close(s);
}

/* The commit that empties the queue writes every aggregate when few are pending, else one
 * slice; store_agg_flush_step writes the rest a slice at a time. */
static void test_commit_idle(void **state)
{
	struct store *s = open_writer();
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	uint8_t id[16];
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 10; i++) {
		struct store_event e = ev(id, (uint8_t)i, "idle", t0 + (uint64_t)i);
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(store_txn_commit_idle(s), 0);
	assert_false(store_agg_pending(s));
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'idle'"), 10);

	enum { NG = STORE_AGG_SYNC_MAX + 10 };
	char fp[32];
	assert_int_equal(store_txn_begin(s), 0);
	for (int g = 0; g < NG; g++) {
		snprintf(fp, sizeof(fp), "idle-%d", g);
		struct store_event e = ev(id, 0, fp, t0);
		id[1] = 0x1D;
		id[3] = (uint8_t)(g >> 8);
		id[4] = (uint8_t)g;
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(store_txn_commit_idle(s), 0);
	assert_true(store_agg_pending(s));
	assert_int_equal(q1("SELECT count(*) FROM groups WHERE total > 0"), 1 + STORE_AGG_FLUSH_CHUNK);
	int steps = 0;
	bool more = true;
	while (more) {
		assert_int_equal(store_agg_flush_step(s, &more), 0);
		steps++;
	}
	assert_int_equal(steps, (NG + STORE_AGG_FLUSH_CHUNK - 1) / STORE_AGG_FLUSH_CHUNK - 1);
	assert_int_equal(q1("SELECT sum(total) FROM groups"), NG + 10);
	assert_int_equal(q1("SELECT sum(count) FROM service_minutes"), NG + 10);
	store_close(s);
}

/* first_seen moves back for an event received earlier than the group's first, last_minute
 * forward with each new minute, and the groups listed by last_seen keep that order across
 * minutes and pages. */
static void test_indexed_group_columns(void **state)
{
	struct store *s = open_writer();
	uint64_t t0 = 1800000000ULL * 1000000000ULL, min = 60000000000ULL;
	uint8_t id[16];
	const struct {
		const char *fp;
		uint64_t at;
	} evs[] = {{"lm", t0 + 61 * 1000000000ULL}, {"lm", t0 + 5}, {"lm", t0 + 2 * min + 5},
		   {"lm-b", t0 + 2 * min + 1}, {"lm-c", t0 + 3}, {"lm-d", t0 + 2 * min + 9}};
	for (int i = 0; i < 6; i++) {
		assert_int_equal(store_txn_begin(s), 0);
		struct store_event e = ev(id, (uint8_t)(40 + i), evs[i].fp, evs[i].at);
		assert_int_equal(store_txn_add_event(s, &e), 1);
		assert_int_equal(i % 2 ? store_txn_commit(s) : store_txn_commit_deferred(s), 0);
	}
	assert_int_equal(store_agg_flush(s), 0);
	assert_int_equal(q1("SELECT first_seen FROM groups WHERE fingerprint = 'lm'"), (int64_t)(t0 + 5));
	assert_int_equal(q1("SELECT last_seen FROM groups WHERE fingerprint = 'lm'"), (int64_t)(t0 + 2 * min + 5));
	assert_last_minutes();
	/* newest first, two per page: lm-d, lm | lm-b, lm-c */
	const char *want[] = {"lm-d", "lm", "lm-b", "lm-c"};
	struct store_group_filter f = {.limit = 2};
	for (int page = 0; page < 2; page++) {
		memset(&got, 0, sizeof(got));
		assert_int_equal(store_list_groups(s, &f, cb, NULL), 0);
		assert_int_equal(got.n, 2);
		for (int i = 0; i < 2; i++)
			assert_string_equal(got.fp[i], want[2 * page + i]);
		f.before_key = got.sort_key[1];
		f.before_id = got.id[1];
	}
	/* since the minute of t0 + 2 min: the two groups seen then, counted in the window */
	memset(&got, 0, sizeof(got));
	struct store_group_filter w = {.limit = 10, .since_ns = t0 + 2 * min + 6};
	assert_int_equal(store_list_groups(s, &w, cb, NULL), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.fp[0], "lm-d");
	store_close(s);
}

/* New fingerprints past groups_per_service (a storm of unique messages) go to the overflow
 * group without taking a way of the group cache: the groups cached before stay cached. */
static void test_storm_keeps_cache(void **state)
{
	struct store *s = NULL;
	char err[512];
	struct store_opts o = {.path = path, .groups_per_service = 2};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), 0);
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	uint8_t id[16];
	/* fingerprints that fall in keep-1's set of the cache: more than its ways */
	const size_t sets = STORE_GROUP_CACHE_SLOTS / STORE_GROUP_CACHE_WAYS;
	uint64_t want = errq_fnv64(ERRQ_FNV64_INIT, "keep-1", 6) % sets;
	char storm[2 * STORE_GROUP_CACHE_WAYS][24];
	int n = 0;
	for (long k = 0; n < 2 * STORE_GROUP_CACHE_WAYS; k++) {
		int len = snprintf(storm[n], sizeof(storm[n]), "storm-%ld", k);
		if (errq_fnv64(ERRQ_FNV64_INIT, storm[n], (size_t)len) % sets == want)
			n++;
	}
	struct store_write_stats ws;
	for (int round = 0; round < 2; round++) {
		assert_int_equal(store_txn_begin(s), 0);
		const char *keep[] = {"keep-1", "keep-2"};
		store_get_write_stats(s, &ws);
		uint64_t looked = ws.group_lookups;
		for (int i = 0; i < 2; i++) {
			struct store_event e = ev(id, (uint8_t)(10 * round + i), keep[i], t0);
			assert_int_equal(store_txn_add_event(s, &e), 1);
		}
		store_get_write_stats(s, &ws);
		/* the first round creates them (a miss, then the insert: two lookups each); the second
		 * finds both cached, after the storm */
		assert_int_equal(ws.group_lookups - looked, round ? 0 : 4);
		for (int i = 0; i < n; i++) {
			struct store_event e = ev(id, (uint8_t)(100 + 20 * round + i), storm[i], t0);
			assert_int_equal(store_txn_add_event(s, &e), 1);
		}
		assert_int_equal(store_txn_commit(s), 0);
	}
	store_get_write_stats(s, &ws);
	assert_int_equal(ws.overflow_events, 2 * n);
	assert_int_equal(q1("SELECT count(*) FROM groups"), 3); /* keep-1, keep-2, the overflow group */
	store_close(s);
}

/* The checkpointer really copies the WAL into the database (a connection that never read the
 * file used to report -1 frames and copy nothing, letting the WAL grow without bound). */
static void test_checkpointer_checkpoints(void **state)
{
	struct store *s = NULL;
	struct store_ckpt *ck = NULL;
	char err[512];
	struct store_opts o = {.path = path, .ckpt_external = true};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), 0);
	assert_int_equal(store_ckpt_start(&ck, path, err, sizeof(err)), 0);
	store_set_ckpt(s, ck);
	uint8_t id[16];
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 2000; i++) {
		struct store_event e = ev(id, 0, "ckpt", t0 + (uint64_t)i);
		id[0] = 3;
		id[13] = (uint8_t)(i >> 8);
		id[14] = (uint8_t)i;
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(store_txn_commit(s), 0);
	store_ckpt_kick(ck);
	struct store_ckpt_stats st = {0};
	for (int i = 0; i < 3000 && st.frames == 0; i++) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
		store_ckpt_get_stats(ck, &st);
	}
	assert_true(st.frames > 0);
	assert_int_equal(st.errors, 0);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size > 100 * 1024); /* the rows reached the database file itself */
	store_ckpt_stop(ck);
	store_close(s);
}

/* One collector per database: a second lock on the same file fails and names the holder. */
static void test_lock(void **state)
{
	struct store_lock *a = NULL, *b = NULL;
	char err[512], want[64], lockp[160];
	assert_int_equal(store_lock(&a, path, err, sizeof(err)), 0);
	assert_int_equal(store_lock(&b, path, err, sizeof(err)), -1);
	assert_null(b);
	snprintf(want, sizeof(want), "(pid %ld,", (long)getpid());
	assert_non_null(strstr(err, "is in use by another errqd"));
	assert_non_null(strstr(err, want));
	/* another name of the same file: a symlink to the database */
	char link[160];
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(link, sizeof(link), "%s/link.db", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(store_lock(&b, link, err, sizeof(err)), -1);
	assert_non_null(strstr(err, want));
	store_unlock(a);
	assert_int_equal(store_lock(&b, path, err, sizeof(err)), 0);
	store_unlock(b);
	store_unlock(NULL);
	snprintf(lockp, sizeof(lockp), "%s.lock", path);
	assert_int_equal(unlink(lockp), 0);
	assert_int_equal(unlink(link), 0);
}

static bool file_exists(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0;
}

static void test_backup(void **state)
{
	struct store *s = open_writer();
	add_range(s, "fp-backup", 0, 50, 1000000000ULL, false);

	char dest[160], tmp[170], err[512];
	struct store_backup_result r;
	snprintf(dest, sizeof(dest), "%s/copy.db", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
	struct store_backup_opts o = {.src_path = path, .tmp_path = tmp, .dest_path = dest};
	/* a copy while the writer's handle is open, checked, counted and renamed */
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_OK);
	assert_int_equal(r.events, 50);
	assert_true(r.pages > 0);
	assert_int_equal(r.bytes, r.pages * r.page_size);
	assert_false(file_exists(tmp));
	struct store *c = NULL;
	struct store_opts ro = {.path = dest, .readonly = true};
	assert_int_equal(store_open(&c, &ro, err, sizeof(err)), 0);
	uint64_t n = 0;
	assert_int_equal(store_count_events(c, &n), 0);
	assert_int_equal(n, 50);
	store_close(c);
	assert_int_equal(unlink(dest), 0);

	/* an existing temporary file is refused and left alone */
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_EXISTS);
	assert_true(file_exists(tmp));
	assert_int_equal(unlink(tmp), 0);

	/* paced to one page a step: cancelled after the first, or past its deadline; nothing left */
	atomic_bool cancel;
	atomic_init(&cancel, true);
	o.max_bytes_per_sec = 4096;
	o.cancel = &cancel;
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_CANCELLED);
	assert_non_null(strstr(err, "cancelled"));
	assert_false(file_exists(tmp));
	assert_false(file_exists(dest));
	atomic_store(&cancel, false);
	o.max_ns = 1;
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_TIMEOUT);
	assert_non_null(strstr(err, "took longer"));
	assert_false(file_exists(tmp));
	assert_false(file_exists(dest));
	store_close(s);
}

struct bg_backup {
	struct store_backup_opts o;
	atomic_bool cancel;
	int rc;
	char err[512];
};

static void *bg_backup_main(void *arg)
{
	struct bg_backup *b = arg;
	struct store_backup_result r;
	b->rc = store_backup(&b->o, &r, b->err, sizeof(b->err));
	return NULL;
}

/* While a backup holds its snapshot the writer neither waits on it nor stops committing: its
 * WAL catch-up (a RESTART checkpoint, which would wait for the snapshot through the busy
 * handler, here 10 minutes: far past the test's timeout) is skipped. */
static void test_backup_does_not_hold_writer(void **state)
{
	struct store *s = NULL;
	char err[512], dest[160], tmp[170];
	struct store_opts wo = {.path = path, .ckpt_external = true, .busy_timeout_ms = 600000};
	assert_int_equal(store_open(&s, &wo, err, sizeof(err)), 0);
	add_range(s, "fp-pin", 0, 20, 1000000000ULL, false);

	snprintf(dest, sizeof(dest), "%s/pinned.db", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
	struct bg_backup b = {.o = {.src_path = path, .tmp_path = tmp, .dest_path = dest, .max_bytes_per_sec = 1}};
	atomic_init(&b.cancel, false);
	b.o.cancel = &b.cancel;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_backup_main, &b), 0);
	/* paced to a byte a second, the backup holds its snapshot until cancelled */
	for (int waited = 0; !store_backup_pinning(); waited++) {
		if (waited > 30000)
			fail_msg("the backup did not take its snapshot");
		usleep(1000);
	}
	add_range(s, "fp-pin", 20, 40, 1000000000ULL, false);
	assert_int_equal(store_wal_catch_up(s, 1), 0); /* skipped, not waiting */
	atomic_store(&b.cancel, true);
	pthread_join(th, NULL);
	assert_int_equal(b.rc, STORE_BACKUP_CANCELLED);
	assert_false(file_exists(tmp));
	assert_int_equal(store_wal_catch_up(s, 1), 1); /* no snapshot left: it runs */
	store_close(s);
}

/* A backup taken between two aggregate flushes holds events past 'aggregated_through'; the
 * collector that opens the copy counts them again, so its groups agree with its events. */
static void test_backup_mid_flush(void **state)
{
	struct store *s = open_writer();
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	char dest[100], tmp[110], err[512], saved[128];
	add_range(s, "agg", 0, 3, t0, false);
	add_range(s, "agg", 3, 7, t0, true); /* stored, counts pending */
	assert_true(store_agg_pending(s));
	assert_true(strlen(dir) + sizeof("/mid.db") <= sizeof(dest));
	snprintf(dest, sizeof(dest), "%s/mid.db", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
	struct store_backup_opts o = {.src_path = path, .tmp_path = tmp, .dest_path = dest};
	struct store_backup_result r;
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_OK);
	assert_int_equal(r.events, 7);
	store_close(s);

	/* q1 reads `path`: point it at the copy */
	snprintf(saved, sizeof(saved), "%s", path);
	snprintf(path, sizeof(path), "%s", dest);
	assert_int_equal(q1("SELECT value FROM meta WHERE key = 'aggregated_through'"), 3);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 3);
	struct store *c = open_writer(); /* as errqd opens it: aggregates events 4..7 */
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 7);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 7);
	assert_int_equal(q1("SELECT value FROM meta WHERE key = 'aggregated_through'"), 7);
	int64_t ids[32] = {0};
	struct store_event_filter f = {.fingerprint = "agg", .limit = 20};
	assert_int_equal(store_list_events(c, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 7); /* the group's chain holds every event of the copy */
	store_close(c);
	const char *sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char p[200];
		snprintf(p, sizeof(p), "%s%s", dest, sfx[i]);
		unlink(p);
	}
	snprintf(path, sizeof(path), "%s", saved);
}

/* ---- retention: folding minutes into hours, incremental vacuum (injected now) ---- */

#define MIN_NS (60ULL * 1000000000ULL)
#define HOUR_NS (60 * MIN_NS)

/* One event of group fp (service svc, environment env or NULL) received at t, in the open
 * transaction; k makes its id unique. */
static void add_in_txn(struct store *s, const char *fp, const char *svc, const char *env, uint64_t t, int k,
		       const char *msg)
{
	uint8_t id[16];
	struct store_event e = ev(id, 0, fp, t);
	id[1] = 0xE0;
	id[2] = (uint8_t)(k >> 8);
	id[3] = (uint8_t)k;
	e.service = svc;
	e.environment = env;
	if (msg)
		e.message = msg;
	assert_int_equal(store_txn_add_event(s, &e), 1);
}

/* The same, committed on its own. */
static void add_at(struct store *s, const char *fp, const char *svc, const char *env, uint64_t t, int k,
		   const char *msg)
{
	assert_int_equal(store_txn_begin(s), 0);
	add_in_txn(s, fp, svc, env, t, k, msg);
	assert_int_equal(store_txn_commit(s), 0);
}

/* Runs upkeep at now until it has nothing left (bounded). */
static void maintain_all(struct store *s, const struct store_maint_opts *mo)
{
	bool more = true;
	for (int i = 0; more; i++) {
		assert_true(i < 1000);
		assert_int_equal(store_maintain(s, mo, &more), 0);
	}
}

/* q1 of a query made with printf. */
static int64_t q1f(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t q1f(const char *fmt, ...)
{
	char sql[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return q1(sql);
}

#define HOURS_OF(fp) \
	"FROM group_hours h JOIN groups g ON g.id = h.group_id WHERE g.fingerprint = '" fp "' AND h.hour = %lld"

/* Minute counts older than retention become hourly counts (per group and environment, and
 * per service), a whole hour at a time; newer minutes stay as they are; group totals and
 * the sum over minutes and hours never change. */
static void test_retention_folds_minutes_into_hours(void **state)
{
	struct store *s = open_writer();
	const uint64_t base = 500000ULL * HOUR_NS; /* an hour boundary */
	const int64_t h0 = (int64_t)(base / HOUR_NS), m0 = (int64_t)(base / MIN_NS);
	int k = 0;
	for (int i = 0; i < 3; i++) /* hour 0, minute 0: two without environment, one in prod */
		add_at(s, "fa", "checkout", i == 2 ? "prod" : NULL, base + (uint64_t)i * 1000, k++, NULL);
	add_at(s, "fb", "billing", NULL, base + 30 * MIN_NS, k++, NULL); /* hour 0, minute 30 */
	for (int i = 0; i < 2; i++) /* hour 0, minute 59 (in receive order: ids are) */
		add_at(s, "fa", "checkout", NULL, base + 59 * MIN_NS + (uint64_t)i, k++, NULL);
	for (int i = 0; i < 4; i++) /* hour 1, minute 10 */
		add_at(s, "fa", "checkout", NULL, base + 70 * MIN_NS + (uint64_t)i, k++, NULL);
	assert_int_equal(q1("SELECT count(*) FROM group_minutes"), 5);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 10);
	assert_int_equal(q1("SELECT count(*) FROM group_hours"), 0);

	/* an hour not wholly past the cutoff is not folded: cutoff at hour 0's minute 59 */
	struct store_maint_opts mo = {.now_ns = base + HOUR_NS + 59 * MIN_NS, .retention_ns = HOUR_NS};
	maintain_all(s, &mo);
	assert_int_equal(q1("SELECT count(*) FROM group_hours"), 0);
	assert_int_equal(q1("SELECT count(*) FROM group_minutes"), 5);
	assert_int_equal(q1("SELECT count(*) FROM events"), 6); /* the four of minute 59 and hour 1 */

	/* cutoff at hour 1's minute 5: hour 0 is folded, hour 1 is not */
	mo.now_ns = base + 2 * HOUR_NS + 5 * MIN_NS;
	maintain_all(s, &mo);
	assert_int_equal(q1f("SELECT count(*) FROM group_minutes WHERE minute < %lld", (long long)(m0 + 60)), 0);
	assert_int_equal(q1f("SELECT sum(count) FROM group_minutes WHERE minute = %lld", (long long)(m0 + 70)), 4);
	assert_int_equal(q1f("SELECT sum(h.count) " HOURS_OF("fa"), (long long)(h0)), 5);
	assert_int_equal(q1f("SELECT count(*) " HOURS_OF("fa"), (long long)(h0)), 2); /* one row per environment */
	assert_int_equal(q1f("SELECT max(h.count) * 10 + min(h.count) " HOURS_OF("fa"), (long long)(h0)), 41); /* 4 + 1 in prod */
	assert_int_equal(q1f("SELECT h.count " HOURS_OF("fb"), (long long)(h0)), 1);
	assert_int_equal(q1("SELECT count(*) FROM group_hours"), 3);
	/* per service, too */
	assert_int_equal(q1f("SELECT count FROM service_hours WHERE service = 'checkout' AND hour = %lld", (long long)(h0)), 5);
	assert_int_equal(q1f("SELECT count FROM service_hours WHERE service = 'billing' AND hour = %lld", (long long)(h0)), 1);
	assert_int_equal(q1f("SELECT count(*) FROM service_minutes WHERE minute < %lld", (long long)(m0 + 60)), 0);
	assert_int_equal(q1f("SELECT sum(count) FROM service_minutes WHERE minute = %lld", (long long)(m0 + 70)), 4);
	/* nothing counted twice or lost: minutes + hours = totals, which stay */
	assert_int_equal(q1("SELECT (SELECT sum(count) FROM group_minutes) + (SELECT sum(count) FROM group_hours)"), 10);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'fa'"), 9);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'fb'"), 1);
	assert_int_equal(q1("SELECT count(*) FROM events"), 4); /* hour 1's, newer than the cutoff */
	struct store_write_stats ws;
	store_get_write_stats(s, &ws);
	assert_int_equal(ws.minutes_folded, 4); /* group minute rows: fa 0 (x2 envs), fa 59, fb 30 */
	assert_int_equal(ws.events_deleted_retention, 6);

	/* a minute of an already folded hour (late aggregate) adds to the hour's count, at the
	 * next look for minutes to fold (STORE_FOLD_CHECK_NS after one that found none) */
	add_at(s, "fb", "billing", NULL, base + 31 * MIN_NS, k++, NULL);
	maintain_all(s, &mo);
	assert_int_equal(q1f("SELECT h.count " HOURS_OF("fb"), (long long)(h0)), 1);
	mo.now_ns += STORE_FOLD_CHECK_NS;
	maintain_all(s, &mo);
	assert_int_equal(q1f("SELECT h.count " HOURS_OF("fb"), (long long)(h0)), 2);
	assert_int_equal(q1("SELECT (SELECT sum(count) FROM group_minutes) + (SELECT sum(count) FROM group_hours)"), 11);
	store_close(s);
}

/* Deleted events leave free pages; upkeep gives them back to the file system
 * STORE_VACUUM_PAGES at a time (bounded work a step), until fewer than that are free. */
static void test_retention_incremental_vacuum(void **state)
{
	struct store *s = open_writer();
	const uint64_t base = 500000ULL * HOUR_NS;
	char msg[2048];
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	for (int k = 0; k < 2400; k++) { /* ~5 MB of messages: well over 1000 pages */
		msg[k % 2000] = (char)('a' + k % 26);
		add_at(s, "fv", "checkout", NULL, base + (uint64_t)k, k, msg);
	}
	int64_t pages0 = q1("PRAGMA page_count");
	assert_true(pages0 > 1200);
	assert_true(q1("PRAGMA freelist_count") < 256);

	/* retention deletes them all (1000 a step); each step then vacuums at most 256 pages */
	struct store_maint_opts mo = {.now_ns = base + 3 * HOUR_NS, .retention_ns = HOUR_NS};
	bool more = true;
	int steps = 0;
	while (more) {
		assert_int_equal(store_maintain(s, &mo, &more), 0);
		assert_true(++steps < 100);
	}
	assert_int_equal(q1("SELECT count(*) FROM events"), 0);
	struct store_write_stats ws;
	store_get_write_stats(s, &ws);
	assert_true(ws.pages_vacuumed > 0);
	assert_true(ws.pages_vacuumed <= (uint64_t)steps * 256);
	/* further steps: 256 free pages fewer each, the file shorter by as much */
	int64_t freel = q1("PRAGMA freelist_count"), pages = q1("PRAGMA page_count");
	assert_true(freel >= 256); /* more was freed than the deleting steps could vacuum */
	while (freel >= 256) {
		uint64_t vacuumed_before = ws.pages_vacuumed;
		assert_int_equal(store_maintain(s, &mo, &more), 0);
		assert_false(more);
		store_get_write_stats(s, &ws);
		assert_int_equal(ws.pages_vacuumed - vacuumed_before, 256);
		assert_int_equal(q1("PRAGMA freelist_count"), freel - 256);
		/* the file shrinks by the pages given back (and a pointer-map page at times) */
		int64_t now_pages = q1("PRAGMA page_count");
		assert_in_range(pages - now_pages, 256, 258);
		freel -= 256;
		pages = now_pages;
	}
	/* fewer than 256 free: left alone (not worth a step) */
	uint64_t vacuumed_before = ws.pages_vacuumed;
	assert_int_equal(store_maintain(s, &mo, &more), 0);
	store_get_write_stats(s, &ws);
	assert_int_equal(ws.pages_vacuumed, vacuumed_before);
	assert_int_equal(q1("PRAGMA freelist_count"), freel);
	assert_true(pages < pages0 / 2);
	store_close(s);
}

/* Free pages up to 1/STORE_VACUUM_SLACK of the file stay (inserts reuse them: vacuuming them
 * under a steady churn would only move pages); past that upkeep vacuums down to it. */
static void test_vacuum_leaves_slack(void **state)
{
	struct store *s = open_writer();
	const uint64_t base = 500000ULL * HOUR_NS;
	char msg[2048];
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	const int n = 9000; /* ~18 MB: over 4 096 pages, so 1/16 of the file is over 256 pages */
	assert_int_equal(store_txn_begin(s), 0);
	for (int k = 0; k < n; k++) {
		msg[k % 2000] = (char)('a' + k % 26);
		add_in_txn(s, "fv", "checkout", NULL, base + (uint64_t)k * MIN_NS / 100, k, msg);
	}
	assert_int_equal(store_txn_commit(s), 0);
	int64_t pages = q1("PRAGMA page_count");
	assert_true(pages / STORE_VACUUM_SLACK > STORE_VACUUM_PAGES + 100);
	/* delete about 300 pages' worth (between 256 and 1/16 of the file): no vacuum */
	int64_t del = (STORE_VACUUM_PAGES + 60) * n / pages;
	struct store_maint_opts mo = {.now_ns = base + (uint64_t)del * MIN_NS / 100 + HOUR_NS, .retention_ns = HOUR_NS};
	maintain_all(s, &mo);
	assert_int_equal(q1("SELECT count(*) FROM events"), n - del);
	int64_t freel = q1("PRAGMA freelist_count");
	assert_true(freel >= STORE_VACUUM_PAGES && freel <= pages / STORE_VACUUM_SLACK);
	struct store_write_stats ws;
	store_get_write_stats(s, &ws);
	assert_int_equal(ws.pages_vacuumed, 0);
	assert_int_equal(q1("PRAGMA page_count"), pages);
	/* delete half: vacuumed until no more than 1/16 of the (shrinking) file is free */
	mo.now_ns = base + (uint64_t)(n / 2) * MIN_NS / 100 + HOUR_NS;
	maintain_all(s, &mo);
	for (int i = 0; i < 200; i++) { /* the vacuum's own steps (bounded) */
		bool more;
		assert_int_equal(store_maintain(s, &mo, &more), 0);
	}
	store_get_write_stats(s, &ws);
	assert_true(ws.pages_vacuumed > 0);
	int64_t now_pages = q1("PRAGMA page_count");
	assert_true(now_pages < pages * 3 / 4);
	assert_true(q1("PRAGMA freelist_count") <= now_pages / STORE_VACUUM_SLACK + STORE_VACUUM_PAGES);
	store_close(s);
}

/* ---- the per-group cap ---- */

/* Events of group fp still stored, and the oldest one's receive time. */
static int64_t stored_of(const char *fp)
{
	return q1f("SELECT count(*) FROM events e JOIN groups g ON g.id = e.group_id WHERE g.fingerprint = '%s'", fp);
}
static int64_t oldest_of(const char *fp)
{
	return q1f("SELECT min(e.received_ns) FROM events e JOIN groups g ON g.id = e.group_id WHERE g.fingerprint = '%s'",
		   fp);
}

/* Groups over the cap keep their newest events, whatever the step size (a step of 7 rows
 * splits runs and groups across steps; one of 16 384 does all at once); groups under it keep
 * all; the stored counts follow; a second pass waits for STORE_CAP_RECHECK_NS. */
static void test_cap_keeps_newest(void **state)
{
	const uint32_t sizes[] = {7, STORE_MAINT_MAX_ROWS};
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		unlink(path);
		struct store *s = open_writer();
		const uint64_t base = 500000ULL * HOUR_NS;
		int k = 0;
		for (int i = 0; i < 60; i++) { /* interleaved: fa 60, fb 8, fc 25 */
			add_at(s, "fa", "checkout", NULL, base + (uint64_t)i * 3, k++, NULL);
			if (i < 8)
				add_at(s, "fb", "checkout", NULL, base + (uint64_t)i * 3 + 1, k++, NULL);
			if (i < 25)
				add_at(s, "fc", "billing", NULL, base + (uint64_t)i * 3 + 2, k++, NULL);
		}
		assert_int_equal(store_agg_flush(s), 0);
		struct store_maint_opts mo = {.now_ns = base + HOUR_NS, .per_group_cap = 10, .max_rows = sizes[z]};
		maintain_all(s, &mo);
		assert_int_equal(stored_of("fa"), 10);
		assert_int_equal(oldest_of("fa"), (int64_t)(base + 50 * 3));
		assert_int_equal(stored_of("fb"), 8);
		assert_int_equal(stored_of("fc"), 10);
		assert_int_equal(oldest_of("fc"), (int64_t)(base + 15 * 3 + 2));
		assert_int_equal(q1("SELECT count(*) FROM groups g WHERE stored <>"
				    " (SELECT count(*) FROM events e WHERE e.group_id = g.id)"), 0);
		assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'fa'"), 60); /* counts stay */
		struct store_write_stats ws;
		store_get_write_stats(s, &ws);
		assert_int_equal(ws.events_deleted_cap, 50 + 15);

		/* five more: not swept before the recheck interval, then swept */
		for (int i = 0; i < 5; i++)
			add_at(s, "fa", "checkout", NULL, base + 1000 + (uint64_t)i, k++, NULL);
		assert_int_equal(store_agg_flush(s), 0);
		mo.now_ns += STORE_CAP_RECHECK_NS / 2;
		maintain_all(s, &mo);
		assert_int_equal(stored_of("fa"), 15);
		mo.now_ns += STORE_CAP_RECHECK_NS;
		maintain_all(s, &mo);
		assert_int_equal(stored_of("fa"), 10);
		assert_int_equal(oldest_of("fa"), (int64_t)(base + 55 * 3)); /* 5 old, 5 new */
		store_close(s);
	}
}

/* A pass ends once it deleted the backlog it found, instead of scanning to the newest row:
 * one group 100 over the cap at the old end of a table of 3 200 rows is done in one step of
 * 1 000 rows; and a step deletes as many rows as max_rows allows, not STORE_MAINT_BATCH. */
static void test_cap_pass_ends_at_backlog(void **state)
{
	struct store *s = open_writer();
	const uint64_t base = 500000ULL * HOUR_NS;
	int k = 0;
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 200; i++)
		add_in_txn(s, "fa", "checkout", NULL, base + (uint64_t)k, k, NULL), k++;
	for (int g = 0; g < 30; g++) { /* 30 groups exactly at the cap */
		char fp[16];
		snprintf(fp, sizeof(fp), "fg%d", g);
		for (int i = 0; i < 100; i++)
			add_in_txn(s, fp, "checkout", NULL, base + (uint64_t)k, k, NULL), k++;
	}
	assert_int_equal(store_txn_commit(s), 0);
	assert_int_equal(store_agg_flush(s), 0);
	struct store_maint_opts mo = {.now_ns = base + HOUR_NS, .per_group_cap = 100, .max_rows = 1000};
	bool more = true;
	assert_int_equal(store_maintain(s, &mo, &more), 0);
	assert_false(more);
	assert_int_equal(stored_of("fa"), 100);
	assert_int_equal(oldest_of("fa"), (int64_t)(base + 100));
	assert_int_equal(q1("SELECT count(*) FROM events"), 3100);

	/* 3 900 over behind 3 100 kept: one step of max_rows 8 000 deletes them all */
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 4000; i++)
		add_in_txn(s, "fb", "checkout", NULL, base + (uint64_t)k, k, NULL), k++;
	assert_int_equal(store_txn_commit(s), 0);
	assert_int_equal(store_agg_flush(s), 0);
	mo.now_ns += STORE_CAP_CHECK_NS;
	mo.max_rows = 8000;
	assert_int_equal(store_maintain(s, &mo, &more), 0);
	assert_int_equal(stored_of("fb"), 100);
	assert_int_equal(oldest_of("fb"), (int64_t)(base + (uint64_t)k - 100));
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_schema_and_pragmas, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_durability_sets_synchronous, setup, teardown),
	    cmocka_unit_test(test_every_old_version_has_a_fixture),
	    cmocka_unit_test_setup_teardown(test_upgrade_schema_v1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_schema_v2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_schema_v3, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_schema_v4, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_insert_dedupe_and_groups, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_pagination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkpointer_checkpoints, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deferred_aggregates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aggregate_slices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_idle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_generation_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_indexed_group_columns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storm_keeps_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_count_only_events, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention_folds_minutes_into_hours, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention_incremental_vacuum, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vacuum_leaves_slack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cap_keeps_newest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cap_pass_ends_at_backlog, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_mid_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_does_not_hold_writer, setup, teardown),
	};
	return cmocka_run_group_tests_name("unit_storage", tests, NULL, NULL);
}
