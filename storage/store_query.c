/* store_query.c: the read side.  Every query is one statement with a LIMIT and a keyset
 * cursor, run in autocommit mode: its read transaction lasts as long as the statement and
 * no longer, so a reader never pins the WAL between calls. */
#include <string.h>
#include <sys/stat.h>

#include "store_int.h"
#include "errq_str.h"
#include "errq_banned.h"

#include <stdint.h>

#define EVENT_COLS                                                                                  \
	"e.id, e.event_id, e.time_ns, e.received_ns, e.service, e.environment, e.release,"           \
	" e.host, e.task, e.error_type, e.error_code, e.message, g.fingerprint, g.grouping_version," \
	" e.attempt, e.handled, e.truncated, e.extra, e.prev_in_group"

/* Fills e from a row of EVENT_COLS; false when the row is unusable. */
static bool event_from_row(sqlite3_stmt *st, struct store_event *e, int64_t *prev)
{
	memset(e, 0, sizeof(*e));
	e->rowid = sqlite3_column_int64(st, 0);
	if (sqlite3_column_bytes(st, 1) != 16)
		return false; /* cannot happen: the writer stores only 16-byte ids */
	e->event_id = sqlite3_column_blob(st, 1);
	e->time_ns = (uint64_t)sqlite3_column_int64(st, 2);
	e->received_ns = (uint64_t)sqlite3_column_int64(st, 3);
	e->service = store__col_text(st, 4);
	e->environment = store__col_text(st, 5);
	e->release = store__col_text(st, 6);
	e->host = store__col_text(st, 7);
	e->task = store__col_text(st, 8);
	e->error_type = store__col_text(st, 9);
	e->error_code = store__col_text(st, 10);
	e->message = store__col_text(st, 11);
	e->fingerprint = store__col_text(st, 12);
	e->grouping_version = sqlite3_column_int(st, 13);
	e->attempt = (uint32_t)sqlite3_column_int64(st, 14);
	e->handled = sqlite3_column_int(st, 15) != 0;
	e->truncated = (uint32_t)sqlite3_column_int64(st, 16);
	e->extra = sqlite3_column_blob(st, 17);
	e->extra_len = (size_t)sqlite3_column_bytes(st, 17);
	*prev = sqlite3_column_int64(st, 18);
	return true;
}

/* Whether a chain walk's event field matches a filter's pattern (NULL or "" = any): the same
 * matcher as the GLOB of store_list_events' statement, and as there an absent field (NULL)
 * is "" (so '*' matches an event without a code or task, as the live tail's does). */
static bool glob_ok(const char *pattern, const char *value)
{
	return !pattern || !*pattern || sqlite3_strglob(pattern, value ? value : "") == 0;
}

/* A group's events, newest first, by walking its chain (see store.c): one rowid lookup per
 * event, whatever the size of the table. */
static int list_group_chain(struct store *s, const struct store_event_filter *f, store_event_cb cb, void *ctx)
{
	sqlite3_stmt *start = NULL, *row = NULL;
	int rc = -1;
	int64_t next = 0;
	if (f->before_rowid) {
		/* the cursor is the last event returned: continue from its predecessor, provided
		 * it belongs to this group */
		if (sqlite3_prepare_v2(s->db,
				       "SELECT e.prev_in_group FROM events e JOIN groups g ON g.id = e.group_id"
				       " WHERE e.id = ?1 AND g.fingerprint = ?2",
				       -1, &start, NULL) != SQLITE_OK)
			return store__set_err(s, "prepare group events");
		sqlite3_bind_int64(start, 1, f->before_rowid);
	} else if (sqlite3_prepare_v2(s->db, "SELECT last_event FROM groups WHERE fingerprint = ?2", -1, &start,
				      NULL) != SQLITE_OK) {
		return store__set_err(s, "prepare group events");
	}
	sqlite3_bind_text(start, 2, f->fingerprint, -1, SQLITE_STATIC);
	int r = sqlite3_step(start);
	if (r == SQLITE_ROW)
		next = sqlite3_column_int64(start, 0);
	else if (r != SQLITE_DONE) {
		store__set_err(s, "group events");
		goto out;
	}
	if (sqlite3_prepare_v2(s->db,
			       "SELECT " EVENT_COLS " FROM events e JOIN groups g ON g.id = e.group_id WHERE e.id = ?1",
			       -1, &row, NULL) != SQLITE_OK) {
		store__set_err(s, "prepare group events");
		goto out;
	}
	/* one read transaction for the whole page, so the chain cannot change under the walk */
	if (store__exec(s, "BEGIN", "begin read"))
		goto out;
	uint32_t n = 0;
	rc = 0;
	while (next > 0 && n < f->limit) {
		sqlite3_reset(row);
		sqlite3_bind_int64(row, 1, next);
		r = sqlite3_step(row);
		if (r == SQLITE_DONE)
			break; /* the rest of the chain is older than retention: deleted */
		if (r != SQLITE_ROW) {
			rc = store__set_err(s, "group events");
			break;
		}
		struct store_event e;
		int64_t prev;
		if (!event_from_row(row, &e, &prev))
			break;
		if (f->since_ns && e.received_ns < f->since_ns)
			break;
		next = prev;
		if (f->service && *f->service && (!e.service || strcmp(e.service, f->service) != 0))
			continue;
		if (f->environment && *f->environment && (!e.environment || strcmp(e.environment, f->environment) != 0))
			continue;
		if (!glob_ok(f->error_type, e.error_type) || !glob_ok(f->error_code, e.error_code) ||
		    !glob_ok(f->task, e.task))
			continue;
		n++;
		if (cb(ctx, &e))
			break;
	}
	sqlite3_reset(row);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
out:
	sqlite3_finalize(start);
	sqlite3_finalize(row);
	return rc;
}

int store_sqlite_list_events(struct store *s, const struct store_event_filter *f, store_event_cb cb, void *ctx)
{
	if (f->fingerprint && *f->fingerprint)
		return list_group_chain(s, f, cb, ctx);
	/* The statement is composed from the filters that are set, so that the cursor becomes a
	 * rowid range search rather than a predicate evaluated on every row of a scan. */
	char sql[1024];
	struct errq_buf q;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, "SELECT " EVENT_COLS " FROM events e JOIN groups g ON g.id = e.group_id WHERE 1");
	if (f->before_rowid)
		errq_buf_addstr(&q, " AND e.id < :before");
	if (f->service && *f->service)
		errq_buf_addstr(&q, " AND e.service = :service");
	if (f->environment && *f->environment)
		errq_buf_addstr(&q, " AND e.environment = :env");
	if (f->since_ns)
		errq_buf_addstr(&q, " AND e.received_ns >= :since");
	if (f->error_type && *f->error_type)
		errq_buf_addstr(&q, " AND e.error_type GLOB :type");
	if (f->error_code && *f->error_code)
		errq_buf_addstr(&q, " AND coalesce(e.error_code, '') GLOB :code");
	if (f->task && *f->task)
		errq_buf_addstr(&q, " AND coalesce(e.task, '') GLOB :task");
	errq_buf_addstr(&q, " ORDER BY e.id DESC LIMIT :limit");
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare list events");
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":before"), f->before_rowid);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":service"), f->service, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":env"), f->environment, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":type"), f->error_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":code"), f->error_code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":task"), f->task, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), (int64_t)f->since_ns);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"), f->limit);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_event e;
		int64_t prev;
		if (!event_from_row(st, &e, &prev))
			continue;
		if (cb(ctx, &e))
			break;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		store__set_err(s, "list events");
	else
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

#define GROUP_COLS                                                                                   \
	"g.id, g.fingerprint, g.service, g.environment, g.error_type, g.error_code, g.message,"       \
	" g.status, g.total, g.handled, g.first_seen, g.last_seen, g.resolved_at, g.grouping_version," \
	" g.regression, g.overflow, g.dropped"
#define N_GROUP_COLS 17

static void group_from_row(sqlite3_stmt *st, struct store_group *g)
{
	memset(g, 0, sizeof(*g));
	g->id = sqlite3_column_int64(st, 0);
	g->fingerprint = store__col_text(st, 1);
	g->service = store__col_text(st, 2);
	g->environment = store__col_text(st, 3);
	g->error_type = store__col_text(st, 4);
	g->error_code = store__col_text(st, 5);
	g->message = store__col_text(st, 6);
	g->status = store__col_text(st, 7);
	g->total = (uint64_t)sqlite3_column_int64(st, 8);
	g->handled = (uint64_t)sqlite3_column_int64(st, 9);
	g->first_seen_ns = (uint64_t)sqlite3_column_int64(st, 10);
	g->last_seen_ns = (uint64_t)sqlite3_column_int64(st, 11);
	g->resolved_at_ns = (uint64_t)sqlite3_column_int64(st, 12);
	g->grouping_version = sqlite3_column_int(st, 13);
	g->regression = sqlite3_column_int(st, 14) != 0;
	g->overflow = sqlite3_column_int(st, 15) != 0;
	g->dropped = (uint64_t)sqlite3_column_int64(st, 16);
}

/* The count-in-window expression for group g: from minute counts (and hourly ones, for the
 * part older than retention), or the all-time total when nothing narrows it. */
static bool windowed(const struct store_group_filter *f)
{
	return f->since_ns || f->until_ns || (f->environment && *f->environment);
}

static void add_count_expr(struct errq_buf *q, const struct store_group_filter *f)
{
	if (!windowed(f)) {
		errq_buf_addstr(q, "g.total");
		return;
	}
	/* fixed fragments only (tests/lint/check_sql.py): the environment is a bound :env */
	bool env = f->environment && *f->environment;
	errq_buf_addstr(q, "((SELECT coalesce(sum(count), 0) FROM group_minutes WHERE group_id = g.id"
			    " AND minute >= :smin AND minute < :umin");
	if (env)
		errq_buf_addstr(q, " AND env_id = (SELECT coalesce((SELECT id FROM environments WHERE name = :env), -1))");
	errq_buf_addstr(q, ") + (SELECT coalesce(sum(count), 0) FROM group_hours WHERE group_id = g.id"
			    " AND hour >= :shour AND hour < :uhour");
	if (env)
		errq_buf_addstr(q, " AND env_id = (SELECT coalesce((SELECT id FROM environments WHERE name = :env), -1))");
	errq_buf_addstr(q, "))");
}

static void bind_window(sqlite3_stmt *st, const struct store_group_filter *f)
{
	int64_t smin = (int64_t)(f->since_ns / NS_PER_MINUTE);
	int64_t umin = f->until_ns ? (int64_t)((f->until_ns + NS_PER_MINUTE - 1) / NS_PER_MINUTE) : INT64_MAX;
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":smin"), smin);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":umin"), umin);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":shour"), smin / 60);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":uhour"), umin == INT64_MAX ? INT64_MAX : (umin + 59) / 60);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":env"), f->environment, -1, SQLITE_STATIC);
}

int store_sqlite_list_groups(struct store *s, const struct store_group_filter *f, store_group_cb cb, void *ctx)
{
	/* Composed from the filters that are set.  Sorted by first_seen, the scan walks that
	 * index from the top and stops after LIMIT rows; sorted by count, every group seen in
	 * the window is counted and the top ones kept (bounded by the window).  Sorted by
	 * last_seen, the index is on its minute (last_minute, store_migrate.c 5): the scan walks
	 * it a minute at a time and sorts within the minute, so during a storm one minute can
	 * hold every group.  So when the window needs no count to decide (no environment, no
	 * until: a group seen since `since` has counts in it), the LIMIT ids are chosen first
	 * from the groups' rows alone and only they are counted. */
	char sql[3072];
	struct errq_buf q;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	/* the cursor and order clauses per sort, a constant table (STORE_SORT_*) */
	static const char *const cursor_sql[] = {" AND (g.last_minute, g.last_seen, g.id) < (:bmin, :bkey, :bid)", "",
						 " AND (g.first_seen, g.id) < (:bkey, :bid)"};
	static const char *const order_sql[] = {" ORDER BY lm DESC, last_seen DESC, id DESC LIMIT :limit",
						" ORDER BY cnt DESC, id DESC LIMIT :limit",
						" ORDER BY first_seen DESC, id DESC LIMIT :limit"};
	int sort = f->sort >= 0 && f->sort <= 2 ? f->sort : 0;
	bool ids_first = sort == STORE_SORT_LAST_SEEN && !f->until_ns && !(f->environment && *f->environment);
	errq_buf_addstr(&q, "SELECT * FROM (SELECT " GROUP_COLS ", ");
	add_count_expr(&q, f);
	errq_buf_addstr(&q, " AS cnt, g.last_minute AS lm FROM groups g WHERE ");
	if (ids_first)
		errq_buf_addstr(&q, "g.id IN (SELECT g.id FROM groups g WHERE 1");
	else
		errq_buf_addstr(&q, "1");
	if (f->service && *f->service)
		errq_buf_addstr(&q, " AND g.service = :service");
	if (f->error_type && *f->error_type)
		errq_buf_addstr(&q, " AND g.error_type GLOB :type");
	if (f->error_code && *f->error_code)
		errq_buf_addstr(&q, " AND coalesce(g.error_code, '') GLOB :code");
	if (f->status && *f->status)
		errq_buf_addstr(&q, " AND g.status = :status");
	if (f->since_ns)
		errq_buf_addstr(&q, " AND g.last_minute >= :smin AND g.last_seen >= :since");
	if (f->until_ns)
		errq_buf_addstr(&q, " AND g.first_seen < :until");
	if (sort != STORE_SORT_COUNT && f->before_id)
		errq_buf_addstr(&q, cursor_sql[sort]);
	if (ids_first)
		errq_buf_addstr(&q, " ORDER BY g.last_minute DESC, g.last_seen DESC, g.id DESC LIMIT :limit)");
	errq_buf_addstr(&q, ") g WHERE 1");
	if (windowed(f) && !ids_first)
		errq_buf_addstr(&q, " AND cnt > 0");
	if (sort == STORE_SORT_COUNT && f->before_id)
		errq_buf_addstr(&q, " AND (cnt, id) < (:bkey, :bid)");
	errq_buf_addstr(&q, order_sql[sort]);
	if (q.len >= sizeof(sql) - 1) {
		errq_snprintf(s->err, sizeof(s->err), "query too long");
		return -1;
	}
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare list groups");
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":service"), f->service, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":type"), f->error_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":code"), f->error_code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":status"), f->status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), (int64_t)f->since_ns);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":until"), (int64_t)f->until_ns);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":bkey"), (int64_t)f->before_key);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":bmin"), (int64_t)(f->before_key / NS_PER_MINUTE));
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":bid"), f->before_id);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"), f->limit);
	bind_window(st, f);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_group g;
		group_from_row(st, &g);
		g.count = (uint64_t)sqlite3_column_int64(st, N_GROUP_COLS);
		g.sort_key = sort == STORE_SORT_COUNT ? g.count : sort == STORE_SORT_FIRST_SEEN ? g.first_seen_ns : g.last_seen_ns;
		if (cb(ctx, &g))
			break;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		store__set_err(s, "list groups");
	else
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

int store_sqlite_get_group(struct store *s, const char *fingerprint, const struct store_group_filter *f,
		    store_group_cb cb, void *ctx)
{
	char sql[1536];
	struct errq_buf q;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, "SELECT " GROUP_COLS ", ");
	add_count_expr(&q, f);
	errq_buf_addstr(&q, " FROM groups g WHERE g.fingerprint = :fp");
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare get group");
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":fp"), fingerprint, -1, SQLITE_STATIC);
	bind_window(st, f);
	int r = sqlite3_step(st), rc;
	if (r == SQLITE_ROW) {
		struct store_group g;
		group_from_row(st, &g);
		g.count = (uint64_t)sqlite3_column_int64(st, N_GROUP_COLS);
		cb(ctx, &g);
		rc = 1;
	} else {
		rc = r == SQLITE_DONE ? 0 : store__set_err(s, "get group");
	}
	sqlite3_finalize(st);
	return rc;
}

int store_sqlite_group_histogram(struct store *s, int64_t group_id, const char *environment, int64_t first_minute,
			  uint32_t n, uint64_t *counts)
{
	memset(counts, 0, n * sizeof(*counts));
	sqlite3_stmt *st = NULL;
	const char *sql =
	    environment && *environment
		? "SELECT minute, sum(count) FROM group_minutes WHERE group_id = ?1 AND minute >= ?2 AND minute < ?3"
		  " AND env_id = (SELECT coalesce((SELECT id FROM environments WHERE name = ?4), -1)) GROUP BY minute"
		: "SELECT minute, sum(count) FROM group_minutes WHERE group_id = ?1 AND minute >= ?2 AND minute < ?3"
		  " GROUP BY minute";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare histogram");
	sqlite3_bind_int64(st, 1, group_id);
	sqlite3_bind_int64(st, 2, first_minute);
	sqlite3_bind_int64(st, 3, first_minute + n);
	if (environment && *environment)
		sqlite3_bind_text(st, 4, environment, -1, SQLITE_STATIC);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t m = sqlite3_column_int64(st, 0) - first_minute;
		if (m >= 0 && m < (int64_t)n)
			counts[m] = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : store__set_err(s, "histogram");
}

int store_sqlite_get_event(struct store *s, const uint8_t event_id[16], store_event_cb cb, void *ctx)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT " EVENT_COLS " FROM events e JOIN groups g ON g.id = e.group_id WHERE e.event_id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare get event");
	sqlite3_bind_blob(st, 1, event_id, 16, SQLITE_STATIC);
	int r = sqlite3_step(st), rc;
	if (r == SQLITE_ROW) {
		struct store_event e;
		int64_t prev;
		rc = event_from_row(st, &e, &prev) ? 1 : 0;
		if (rc)
			cb(ctx, &e);
	} else {
		rc = r == SQLITE_DONE ? 0 : store__set_err(s, "get event");
	}
	sqlite3_finalize(st);
	return rc;
}

int store_sqlite_count_events(struct store *s, uint64_t *n)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM events", -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare count");
	int r = sqlite3_step(st);
	*n = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : store__set_err(s, "count events");
}

/* The pragmas store_get_pragma_int reads: a name is looked up here, never written into SQL. */
static const struct {
	const char *name, *sql;
} pragma_sql[] = {
    {"synchronous", "PRAGMA synchronous"},       {"page_size", "PRAGMA page_size"},
    {"page_count", "PRAGMA page_count"},         {"freelist_count", "PRAGMA freelist_count"},
    {"auto_vacuum", "PRAGMA auto_vacuum"},       {"cache_size", "PRAGMA cache_size"},
    {"user_version", "PRAGMA user_version"},
};

int store_sqlite_get_pragma_int(struct store *s, const char *name, int64_t *v)
{
	const char *sql = NULL;
	*v = 0;
	for (size_t i = 0; i < sizeof(pragma_sql) / sizeof(pragma_sql[0]) && !sql; i++)
		if (strcmp(name, pragma_sql[i].name) == 0)
			sql = pragma_sql[i].sql;
	if (!sql) {
		errq_snprintf(s->err, sizeof(s->err), "'%.40s' is not a pragma name", name);
		return -1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare pragma");
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : store__set_err(s, "read pragma");
}

int store_sqlite_get_totals(struct store *s, struct store_totals *t)
{
	sqlite3_stmt *st;
	memset(t, 0, sizeof(*t));
	if (sqlite3_prepare_v2(s->db,
			       "SELECT coalesce(sum(total), 0), count(*),"
			       " (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size()),"
			       " coalesce(sum(dropped), 0) FROM groups",
			       -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare totals");
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		t->dropped = (uint64_t)sqlite3_column_int64(st, 3);
		t->events = (uint64_t)sqlite3_column_int64(st, 0) - t->dropped; /* stored, all time */
		t->groups = (uint64_t)sqlite3_column_int64(st, 1);
		t->db_bytes = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_ROW)
		return store__set_err(s, "totals");
	const char *main_path = sqlite3_db_filename(s->db, "main");
	if (main_path && *main_path) {
		char wal[4096];
		struct stat sb;
		if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", main_path) < sizeof(wal) && stat(wal, &sb) == 0) {
			t->wal_bytes = (uint64_t)sb.st_size;
			t->db_bytes += t->wal_bytes;
		}
	}
	return 0;
}
