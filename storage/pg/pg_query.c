/* pg_query.c: the read side of the PostgreSQL backend.  Each query is one statement with a
 * LIMIT and a keyset cursor (events.id, the API's rowid), composed from fixed fragments for
 * the filters that are set (values always go as parameters) and run on its own: one
 * implicit transaction, one snapshot.  Filters' GLOB patterns (SQLite's syntax) become
 * anchored regular expressions (`~`, case-sensitive like GLOB).
 *
 * A group's events come from the index (group_id, id), newest first.  Ids come from one
 * sequence shared by the replicas, so they order events by when each replica inserted them:
 * two collectors' events interleave, and an id smaller than the newest may still commit
 * after a reader passed it (a page is a snapshot, not a log position). */
#include <string.h>

#include "pg_int.h"
#include "store_overflow.h"
#include "errq_str.h"
#include "errq_banned.h"

#define NS_PER_MINUTE 60000000000ULL
/* bytes of a filter's pattern once a regular expression: a glob's byte is at most 2 of it
 * (an unterminated class at most 8 in all), with '^', '$' and the NUL (store_pg_glob_to_regex) */
#define PATTERN_MAX (2 * STORE_GLOB_MAX + 8)

/* Fills e from row i of STORE_PG_EVENT_COLS (a binary result); false when the row is unusable. */
bool store_pg__event_from_row(const PGresult *r, int i, struct store_event *e)
{
	size_t len;
	memset(e, 0, sizeof(*e));
	e->rowid = store_pg_col_i64(r, i, 0);
	e->event_id = store_pg_col_bytes(r, i, 1, &len);
	if (!e->event_id || len != 16)
		return false; /* cannot happen: the writer stores only 16-byte ids */
	e->time_ns = (uint64_t)store_pg_col_i64(r, i, 2);
	e->received_ns = (uint64_t)store_pg_col_i64(r, i, 3);
	e->service = store_pg_col_text(r, i, 4);
	e->environment = store_pg_col_text(r, i, 5);
	e->release = store_pg_col_text(r, i, 6);
	e->host = store_pg_col_text(r, i, 7);
	e->task = store_pg_col_text(r, i, 8);
	e->error_type = store_pg_col_text(r, i, 9);
	e->error_code = store_pg_col_text(r, i, 10);
	e->message = store_pg_col_text(r, i, 11);
	e->fingerprint = store_pg_col_text(r, i, 12);
	e->grouping_version = (int)store_pg_col_i64(r, i, 13);
	e->attempt = (uint32_t)store_pg_col_i64(r, i, 14);
	e->handled = store_pg_col_i64(r, i, 15) != 0;
	e->truncated = (uint32_t)store_pg_col_i64(r, i, 16);
	e->extra = store_pg_col_bytes(r, i, 17, &e->extra_len);
	return true;
}

/* Calls cb for each row until it returns non-zero. */
static void each_event(const PGresult *r, store_event_cb cb, void *ctx)
{
	for (int i = 0; i < PQntuples(r); i++) {
		struct store_event e;
		if (store_pg__event_from_row(r, i, &e) && cb(ctx, &e))
			break;
	}
}

/* Parameter text of an integer (ints go as text: the composed statements give their types). */
struct num {
	char b[24];
};
static const char *num(struct num *n, int64_t v)
{
	errq_snprintf(n->b, sizeof(n->b), "%lld", (long long)v);
	return n->b;
}

int store_pg_list_events(struct store *s, const struct store_event_filter *f, store_event_cb cb, void *ctx)
{
	/* $1 before, $2 service, $3 environment, $4 since, $5 type, $6 code, $7 task, $8 limit,
	 * $9 fingerprint: every one is passed (typed), the statement names those that are set */
	static const Oid types[9] = {STORE_PG_INT8OID, STORE_PG_TEXTOID, STORE_PG_TEXTOID,
				     STORE_PG_INT8OID, STORE_PG_TEXTOID, STORE_PG_TEXTOID,
				     STORE_PG_TEXTOID, STORE_PG_INT8OID, STORE_PG_TEXTOID};
	char sql[1536], type[PATTERN_MAX], code[PATTERN_MAX], task[PATTERN_MAX];
	struct num before, since, limit;
	struct errq_buf q;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, "SELECT " STORE_PG_EVENT_COLS " FROM events e JOIN groups g ON g.id = e.group_id WHERE true");
	if (f->fingerprint && *f->fingerprint) /* the index (group_id, id) */
		errq_buf_addstr(&q, " AND e.group_id = (SELECT id FROM groups WHERE fingerprint = $9)");
	if (f->before_rowid)
		errq_buf_addstr(&q, " AND e.id < $1");
	if (f->service && *f->service)
		errq_buf_addstr(&q, " AND e.service = $2");
	if (f->environment && *f->environment)
		errq_buf_addstr(&q, " AND e.environment = $3");
	if (f->since_ns)
		errq_buf_addstr(&q, " AND e.received_ns >= $4");
	if (f->error_type && *f->error_type)
		errq_buf_addstr(&q, " AND e.error_type ~ $5");
	if (f->error_code && *f->error_code)
		errq_buf_addstr(&q, " AND coalesce(e.error_code, '') ~ $6");
	if (f->task && *f->task)
		errq_buf_addstr(&q, " AND coalesce(e.task, '') ~ $7");
	errq_buf_addstr(&q, " ORDER BY e.id DESC LIMIT $8");
	if (q.failed)
		return store_pg_fail(s, "list events: query too long");
	type[0] = code[0] = task[0] = 0;
	if ((f->error_type && *f->error_type && store_pg_glob_to_regex(s, f->error_type, type, sizeof(type))) ||
	    (f->error_code && *f->error_code && store_pg_glob_to_regex(s, f->error_code, code, sizeof(code))) ||
	    (f->task && *f->task && store_pg_glob_to_regex(s, f->task, task, sizeof(task))))
		return -1;
	const char *v[9] = {num(&before, f->before_rowid),
			    f->service ? f->service : "",
			    f->environment ? f->environment : "",
			    num(&since, (int64_t)f->since_ns),
			    type,
			    code,
			    task,
			    num(&limit, f->limit),
			    f->fingerprint ? f->fingerprint : ""};
	const struct store_pg_stmt st = {NULL, sql, 9, types};
	PGresult *r = store_pg_run(s, &st, "list events", v, NULL, NULL, 1);
	if (!r)
		return -1;
	each_event(r, cb, ctx);
	PQclear(r);
	return 0;
}

int store_pg_get_event(struct store *s, const uint8_t event_id[16], store_event_cb cb, void *ctx)
{
	static const struct store_pg_stmt st = {
	    "errq_get_event",
	    "SELECT " STORE_PG_EVENT_COLS " FROM events e JOIN groups g ON g.id = e.group_id WHERE e.event_id = $1::bytea", 1,
	    NULL};
	const char *v[] = {(const char *)event_id};
	int len[] = {16}, fmt[] = {1};
	PGresult *r = store_pg_run(s, &st, "get event", v, len, fmt, 1);
	if (!r)
		return -1;
	struct store_event e;
	int rc = PQntuples(r) && store_pg__event_from_row(r, 0, &e);
	if (rc)
		cb(ctx, &e);
	PQclear(r);
	return rc;
}

#define GROUP_COLS                                                                                   \
	"g.id, g.fingerprint, g.service, g.environment, g.error_type, g.error_code, g.message,"       \
	" g.status, g.total, g.handled, g.first_seen, g.last_seen, g.resolved_at, g.grouping_version," \
	" g.regression, g.overflow, g.dropped"
#define N_GROUP_COLS 17

static void group_from_row(const PGresult *r, int i, struct store_group *g)
{
	memset(g, 0, sizeof(*g));
	g->id = store_pg_col_i64(r, i, 0);
	g->fingerprint = store_pg_col_text(r, i, 1);
	g->service = store_pg_col_text(r, i, 2);
	g->environment = store_pg_col_text(r, i, 3);
	g->error_type = store_pg_col_text(r, i, 4);
	g->error_code = store_pg_col_text(r, i, 5);
	g->message = store_pg_col_text(r, i, 6);
	g->status = store_pg_col_text(r, i, 7);
	g->total = (uint64_t)store_pg_col_i64(r, i, 8);
	g->handled = (uint64_t)store_pg_col_i64(r, i, 9);
	g->first_seen_ns = (uint64_t)store_pg_col_i64(r, i, 10);
	g->last_seen_ns = (uint64_t)store_pg_col_i64(r, i, 11);
	g->resolved_at_ns = (uint64_t)store_pg_col_i64(r, i, 12);
	g->grouping_version = (int)store_pg_col_i64(r, i, 13);
	g->regression = store_pg_col_i64(r, i, 14) != 0;
	g->overflow = store_pg_col_i64(r, i, 15) != 0;
	g->dropped = (uint64_t)store_pg_col_i64(r, i, 16);
	g->count = (uint64_t)store_pg_col_i64(r, i, N_GROUP_COLS);
}

static bool windowed(const struct store_group_filter *f)
{
	return f->since_ns || f->until_ns || (f->environment && *f->environment);
}

/* The count-in-window expression (as SQLite's: minute counts, and hourly ones for the part
 * older than retention; the all-time total when nothing narrows it).  Parameters: $11 smin,
 * $12 umin, $13 shour, $14 uhour, $15 environment. */
static void add_count_expr(struct errq_buf *q, const struct store_group_filter *f)
{
	if (!windowed(f)) {
		errq_buf_addstr(q, "g.total");
		return;
	}
	bool env = f->environment && *f->environment;
	errq_buf_addstr(q, "((SELECT coalesce(sum(count), 0) FROM group_minutes WHERE group_id = g.id"
			   " AND minute >= $11 AND minute < $12");
	if (env)
		errq_buf_addstr(q, " AND env_id = coalesce((SELECT id FROM environments WHERE name = $15), -1)");
	errq_buf_addstr(q, ") + (SELECT coalesce(sum(count), 0) FROM group_hours WHERE group_id = g.id"
			   " AND hour >= $13 AND hour < $14");
	if (env)
		errq_buf_addstr(q, " AND env_id = coalesce((SELECT id FROM environments WHERE name = $15), -1)");
	errq_buf_addstr(q, "))::bigint");
}

/* The parameters every group statement is given ($1..$16; $16 the fingerprint). */
#define GROUP_PARAMS 16
static const Oid group_types[GROUP_PARAMS] = {
    STORE_PG_TEXTOID, STORE_PG_TEXTOID, STORE_PG_TEXTOID, STORE_PG_TEXTOID, STORE_PG_INT8OID, STORE_PG_INT8OID,
    STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_INT8OID,
    STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_TEXTOID, STORE_PG_TEXTOID};
struct group_params {
	char type[PATTERN_MAX], code[PATTERN_MAX];
	struct num n[10];
	const char *v[GROUP_PARAMS];
};

/* $1 service, $2 type, $3 code, $4 status, $5 since, $6 until, $7 bkey, $8 bmin, $9 bid,
 * $10 limit, $11-$15 the window (add_count_expr), $16 fingerprint. */
static int group_params(struct store *s, const struct store_group_filter *f, const char *fingerprint,
			struct group_params *gp)
{
	gp->type[0] = gp->code[0] = 0;
	if ((f->error_type && *f->error_type && store_pg_glob_to_regex(s, f->error_type, gp->type, sizeof(gp->type))) ||
	    (f->error_code && *f->error_code && store_pg_glob_to_regex(s, f->error_code, gp->code, sizeof(gp->code))))
		return -1;
	int64_t smin = (int64_t)(f->since_ns / NS_PER_MINUTE);
	int64_t umin = f->until_ns ? (int64_t)((f->until_ns + NS_PER_MINUTE - 1) / NS_PER_MINUTE) : INT64_MAX;
	gp->v[0] = f->service ? f->service : "";
	gp->v[1] = gp->type;
	gp->v[2] = gp->code;
	gp->v[3] = f->status ? f->status : "";
	gp->v[4] = num(&gp->n[0], (int64_t)f->since_ns);
	gp->v[5] = num(&gp->n[1], (int64_t)f->until_ns);
	gp->v[6] = num(&gp->n[2], (int64_t)f->before_key);
	gp->v[7] = num(&gp->n[3], (int64_t)(f->before_key / NS_PER_MINUTE));
	gp->v[8] = num(&gp->n[4], f->before_id);
	gp->v[9] = num(&gp->n[5], f->limit);
	gp->v[10] = num(&gp->n[6], smin);
	gp->v[11] = num(&gp->n[7], umin);
	gp->v[12] = num(&gp->n[8], smin / 60);
	gp->v[13] = num(&gp->n[9], umin == INT64_MAX ? INT64_MAX : (umin + 59) / 60);
	gp->v[14] = f->environment ? f->environment : "";
	gp->v[15] = fingerprint ? fingerprint : "";
	return 0;
}

int store_pg_list_groups(struct store *s, const struct store_group_filter *f, store_group_cb cb, void *ctx)
{
	/* As SQLite's (storage/store_query.c): sorted by last seen, with no count needed to
	 * decide, the LIMIT ids are chosen from the groups' rows alone and only they counted. */
	static const char *const cursor_sql[] = {" AND (g.last_minute, g.last_seen, g.id) < ($8, $7, $9)", "",
						 " AND (g.first_seen, g.id) < ($7, $9)"};
	static const char *const order_sql[] = {" ORDER BY lm DESC, last_seen DESC, id DESC LIMIT $10",
						" ORDER BY cnt DESC, id DESC LIMIT $10",
						" ORDER BY first_seen DESC, id DESC LIMIT $10"};
	char sql[3072];
	struct errq_buf q;
	struct group_params gp;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	int sort = f->sort >= 0 && f->sort <= 2 ? f->sort : 0;
	bool ids_first = sort == STORE_SORT_LAST_SEEN && !f->until_ns && !(f->environment && *f->environment);
	errq_buf_addstr(&q, "SELECT * FROM (SELECT " GROUP_COLS ", ");
	add_count_expr(&q, f);
	errq_buf_addstr(&q, " AS cnt, g.last_minute AS lm FROM groups g WHERE ");
	if (ids_first)
		errq_buf_addstr(&q, "g.id IN (SELECT g.id FROM groups g WHERE true");
	else
		errq_buf_addstr(&q, "true");
	if (f->service && *f->service)
		errq_buf_addstr(&q, " AND g.service = $1");
	if (f->error_type && *f->error_type)
		errq_buf_addstr(&q, " AND g.error_type ~ $2");
	if (f->error_code && *f->error_code)
		errq_buf_addstr(&q, " AND coalesce(g.error_code, '') ~ $3");
	if (f->status && *f->status)
		errq_buf_addstr(&q, " AND g.status = $4");
	if (f->since_ns)
		errq_buf_addstr(&q, " AND g.last_minute >= $11 AND g.last_seen >= $5");
	if (f->until_ns)
		errq_buf_addstr(&q, " AND g.first_seen < $6");
	if (sort != STORE_SORT_COUNT && f->before_id)
		errq_buf_addstr(&q, cursor_sql[sort]);
	if (ids_first)
		errq_buf_addstr(&q, " ORDER BY g.last_minute DESC, g.last_seen DESC, g.id DESC LIMIT $10)");
	errq_buf_addstr(&q, ") g WHERE true");
	if (windowed(f) && !ids_first)
		errq_buf_addstr(&q, " AND cnt > 0");
	if (sort == STORE_SORT_COUNT && f->before_id)
		errq_buf_addstr(&q, " AND (cnt, id) < ($7, $9)");
	errq_buf_addstr(&q, order_sql[sort]);
	if (q.failed)
		return store_pg_fail(s, "list groups: query too long");
	if (group_params(s, f, NULL, &gp))
		return -1;
	const struct store_pg_stmt st = {NULL, sql, GROUP_PARAMS, group_types};
	PGresult *r = store_pg_run(s, &st, "list groups", gp.v, NULL, NULL, 1);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct store_group g;
		group_from_row(r, i, &g);
		g.sort_key = sort == STORE_SORT_COUNT ? g.count : sort == STORE_SORT_FIRST_SEEN ? g.first_seen_ns : g.last_seen_ns;
		if (cb(ctx, &g))
			break;
	}
	PQclear(r);
	return 0;
}

int store_pg_get_group(struct store *s, const char *fingerprint, const struct store_group_filter *f,
		       store_group_cb cb, void *ctx)
{
	char sql[1536];
	struct errq_buf q;
	struct group_params gp;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, "SELECT " GROUP_COLS ", ");
	add_count_expr(&q, f);
	errq_buf_addstr(&q, " FROM groups g WHERE g.fingerprint = $16");
	if (q.failed)
		return store_pg_fail(s, "get group: query too long");
	if (group_params(s, f, fingerprint, &gp))
		return -1;
	const struct store_pg_stmt st = {NULL, sql, GROUP_PARAMS, group_types};
	PGresult *r = store_pg_run(s, &st, "get group", gp.v, NULL, NULL, 1);
	if (!r)
		return -1;
	int rc = PQntuples(r) > 0;
	if (rc) {
		struct store_group g;
		group_from_row(r, 0, &g);
		cb(ctx, &g);
	}
	PQclear(r);
	return rc;
}

int store_pg_group_histogram(struct store *s, int64_t group_id, const char *environment, int64_t first_minute,
			     uint32_t n, uint64_t *counts)
{
	static const struct store_pg_stmt all = {
	    "errq_histogram",
	    "SELECT minute, sum(count)::bigint FROM group_minutes WHERE group_id = $1::bigint AND minute >= $2::bigint"
	    " AND minute < $3::bigint GROUP BY minute",
	    3, NULL};
	static const struct store_pg_stmt env = {
	    "errq_histogram_env",
	    "SELECT minute, sum(count)::bigint FROM group_minutes WHERE group_id = $1::bigint AND minute >= $2::bigint"
	    " AND minute < $3::bigint AND env_id = coalesce((SELECT id FROM environments WHERE name = $4::text), -1)"
	    " GROUP BY minute",
	    4, NULL};
	memset(counts, 0, n * sizeof(*counts));
	struct num a, b, c;
	const char *v[] = {num(&a, group_id), num(&b, first_minute), num(&c, first_minute + n), environment};
	bool by_env = environment && *environment;
	PGresult *r = store_pg_run(s, by_env ? &env : &all, "histogram", v, NULL, NULL, 1);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t m = store_pg_col_i64(r, i, 0) - first_minute;
		if (m >= 0 && m < (int64_t)n)
			counts[m] = (uint64_t)store_pg_col_i64(r, i, 1);
	}
	PQclear(r);
	return 0;
}

int store_pg_count_events(struct store *s, uint64_t *n)
{
	static const struct store_pg_stmt st = {"errq_count_events", "SELECT count(*) FROM events", 0, NULL};
	PGresult *r = store_pg_run(s, &st, "count events", NULL, NULL, NULL, 1);
	*n = 0;
	if (!r)
		return -1;
	*n = (uint64_t)store_pg_col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int store_pg_get_totals(struct store *s, struct store_totals *t)
{
	/* db_bytes: the database's size as the server counts it (every table, index and its
	 * share of nothing else); PostgreSQL's WAL is the server's, not the database's: 0 */
	static const struct store_pg_stmt st = {
	    "errq_totals",
	    "SELECT coalesce(sum(total), 0)::bigint, count(*), pg_database_size(current_database()),"
	    " coalesce(sum(dropped), 0)::bigint FROM groups",
	    0, NULL};
	memset(t, 0, sizeof(*t));
	PGresult *r = store_pg_run(s, &st, "totals", NULL, NULL, NULL, 1);
	if (!r)
		return -1;
	t->dropped = (uint64_t)store_pg_col_i64(r, 0, 3);
	t->events = (uint64_t)store_pg_col_i64(r, 0, 0) - t->dropped; /* stored, all time */
	t->groups = (uint64_t)store_pg_col_i64(r, 0, 1);
	t->db_bytes = (uint64_t)store_pg_col_i64(r, 0, 2);
	PQclear(r);
	return 0;
}

int store_pg_overflow_group(struct store *s, const char *service, uint64_t *total)
{
	static const struct store_pg_stmt st = {
	    "errq_overflow_group", "SELECT total FROM groups WHERE fingerprint = $1::text AND overflow", 1, NULL};
	char fp[STORE_OVERFLOW_FP_LEN + 1];
	store_overflow_fingerprint(service, fp);
	const char *v[] = {fp};
	PGresult *r = store_pg_run(s, &st, "find overflow group", v, NULL, NULL, 1);
	if (!r)
		return -1;
	int rc = PQntuples(r) > 0;
	if (rc)
		*total = (uint64_t)store_pg_col_i64(r, 0, 0);
	PQclear(r);
	return rc;
}
