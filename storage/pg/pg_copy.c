/* pg_copy.c: a SQLite database copied into a PostgreSQL one (storage/store_copy.h says what
 * and in which order; docs/operations.md, "Moving from SQLite to PostgreSQL", for operators).
 *
 * The source is opened once through the SQLite backend (store_open: its schema migrated, the
 * counts a crash left unwritten written), closed, and read through a read-only connection of
 * this file's own in short read transactions, one per batch, by keyset on each table's key:
 * nothing holds a table in memory, and a source of any size costs one batch.  Nothing writes the source meanwhile:
 * the copy holds its collector lock (store_lock), so an errqd started on it refuses to run.
 * The target is written with COPY (text format) on the PostgreSQL handle's connection, all
 * in one transaction, so an interrupted copy leaves nothing to clean up.
 *
 * What is not copied, and why: SQLite's group chains (events.prev_in_group,
 * groups.last_event) and its deferred-aggregate bookkeeping (groups.agg_through,
 * meta.aggregated_through) have no column on PostgreSQL (pg_schema.c: a group's events are
 * found by an index there, and aggregates are written with their events). */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store_copy.h"
#include "pg_int.h"
#include "store_url.h"
#include "errq_str.h"
#include "errq_banned.h"

#define ROW_MAX_BYTES (64u << 20) /* one row's COPY text (the longest: an event's extra, hex) */
#define KEY_MAX 3                 /* columns of the widest key */
#define MS_PER_DAY 86400000LL

/* A table copied: cols are the same on both sides (SQLite's names are PostgreSQL's);
 * key is its primary key, the batches' order; where filters the source's rows.  The SQL is
 * composed of these entries (constants) only. */
static const struct table {
	const char *name, *cols, *key, *where;
	int nkey;
	bool has_id; /* an id column whose sequence is set past the copied maximum */
} tables[] = {
    {"environments", "id, name", "id", NULL, 1, true},
    {"groups",
     "id, fingerprint, grouping_version, service, environment, error_type, error_code, message, first_seen,"
     " last_seen, last_minute, total, handled, dropped, stored, status, regression, resolved_at, overflow",
     "id", NULL, 1, true},
    {"events",
     "id, event_id, group_id, time_ns, received_ns, service, environment, release, host, task, error_type,"
     " error_code, message, attempt, handled, truncated, extra",
     "id", NULL, 1, true},
    {"group_minutes", "group_id, minute, env_id, count", "group_id, minute, env_id", NULL, 3, false},
    {"group_hours", "group_id, hour, env_id, count", "group_id, hour, env_id", NULL, 3, false},
    {"service_minutes", "service, minute, count, dropped", "service, minute", NULL, 2, false},
    {"service_hours", "service, hour, count, dropped", "service, hour", NULL, 2, false},
    {"circuits", "id, rule, key, def_hash, state, since_ns, failures, next_ns, alert_id, saved, updated_ns", "id",
     NULL, 1, true},
    {"transitions", "id, rule, key, at_ns, from_state, to_state, reason, failures, window_s, next_ns, alert_id",
     "id", NULL, 1, true},
    {"alerts",
     "id, alert_id, rule, key, severity, status, state, opened_ns, resolved_ns, failures, window_s, sample,"
     " resolve_reason, notices, updated_ns",
     "id", NULL, 1, true},
    {"deliveries",
     "id, alert_id, notifier, kind, seq, idem_key, status, attempts, next_attempt_ns, http_status, last_error,"
     " created_ns, updated_ns, body",
     "id", NULL, 1, true},
    {"silences", "id, rule, matchers, comment, created_by, created_ns, starts_ns, ends_ns, expired_ns", "id", NULL,
     1, true},
    {"outcome_batches", "batch_id, received_ns", "batch_id", NULL, 1, false},
    /* SQLite's only key, aggregated_through, is its deferred aggregates' (see the top) */
    {"meta", "key, value", "key", "key <> 'aggregated_through'", 1, false},
};
#define N_TABLES ((int)(sizeof(tables) / sizeof(tables[0])))
_Static_assert(N_TABLES == STORE_COPY_TABLES, "the report has a row for every table");

struct copy {
	const struct store_copy_opts *o;
	struct store_copy_report *r;
	sqlite3 *src; /* the source, read-only */
	struct store *dst;
	PGconn *pg;
	char *err;
	size_t errsz;
	int code;                         /* enum store_copy_rc of the first failure */
	uint32_t batch;                   /* rows a batch */
	char red[STORE_URL_REDACTED_MAX]; /* the target's URL, redacted */
	/* the CopyData message being filled: rows of COPY's text format (data, never SQL) */
	struct errq_buf msg;
};

static void progress(struct copy *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct copy *c, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	if (!c->o->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->o->progress(c->o->ctx, line);
}

static int fail(struct copy *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records the first failure (its kind, rc, and its reason) and returns -1. */
static int fail(struct copy *c, int rc, const char *fmt, ...)
{
	va_list ap;
	if (c->code)
		return -1;
	c->code = rc;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errsz, fmt, ap);
	va_end(ap);
	return -1;
}

/* The source's failure: "what: SQLite's message". */
static int src_fail(struct copy *c, const char *what)
{
	return fail(c, STORE_COPY_ERR_SOURCE, "source database '%s': %s: %s", c->o->from, what,
		    c->src ? sqlite3_errmsg(c->src) : "out of memory");
}

/* The target's failure: "what: the server's message" (one line). */
static int dst_fail(struct copy *c, const PGresult *res, const char *what)
{
	const char *m = res ? PQresultErrorMessage(res) : "";
	if (!m || !*m)
		m = PQerrorMessage(c->pg);
	size_t n = strcspn(m, "\n");
	return fail(c, STORE_COPY_ERR_TARGET, "target database '%s': %s: %.*s", c->red, what, (int)n, m);
}

/* Runs sql on the target: 0 when it gave want, else -1 with the failure recorded. */
static int dst_exec(struct copy *c, const char *sql, ExecStatusType want, PGresult **out, const char *what)
{
	PGresult *res = PQexec(c->pg, sql);
	if (!res || PQresultStatus(res) != want) {
		dst_fail(c, res, what);
		PQclear(res);
		return -1;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/* ---------------------------------------------------------------- COPY text format */

static void put_text(struct errq_buf *msg, const unsigned char *p, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		const char *esc = p[i] == '\\' ? "\\\\" : p[i] == '\n' ? "\\n" : p[i] == '\r' ? "\\r" : p[i] == '\t' ? "\\t" : NULL;
		if (!esc)
			continue;
		errq_buf_add(msg, p + start, i - start);
		errq_buf_addstr(msg, esc);
		start = i + 1;
	}
	errq_buf_add(msg, p + start, n - start);
}

static void put_value(struct errq_buf *msg, sqlite3_stmt *st, int i)
{
	static const char hex[] = "0123456789abcdef";
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL: errq_buf_addstr(msg, "\\N"); break;
	case SQLITE_INTEGER: errq_buf_printf(msg, "%lld", (long long)sqlite3_column_int64(st, i)); break;
	case SQLITE_FLOAT: errq_buf_printf(msg, "%.17g", sqlite3_column_double(st, i)); break;
	case SQLITE_TEXT:
		put_text(msg, sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
		break;
	default: { /* a blob: bytea's hex input, its backslash escaped for COPY */
		const unsigned char *p = sqlite3_column_blob(st, i);
		size_t n = (size_t)sqlite3_column_bytes(st, i);
		errq_buf_addstr(msg, "\\\\x");
		for (size_t k = 0; k < n; k++) {
			char two[2] = {hex[p[k] >> 4], hex[p[k] & 15]};
			errq_buf_add(msg, two, 2);
		}
	}
	}
}

static int send_buf(struct copy *c)
{
	if (c->msg.failed)
		return fail(c, STORE_COPY_ERR_SOURCE, "source database '%s': a row is longer than %u bytes",
			    c->o->from, ROW_MAX_BYTES);
	if (c->msg.len && PQputCopyData(c->pg, c->msg.p, (int)c->msg.len) != 1)
		return dst_fail(c, NULL, "send rows");
	errq_buf_reset(&c->msg);
	return 0;
}

/* Ends the COPY in progress: ok sends the end, else aborts it with why. */
static int copy_end(struct copy *c, bool ok, const char *table)
{
	char what[96];
	errq_snprintf(what, sizeof(what), "copy table '%s'", table);
	if (ok && send_buf(c))
		ok = false;
	int rc = ok ? 0 : -1;
	if (PQputCopyEnd(c->pg, ok ? NULL : "errq: copy abandoned") != 1)
		return rc ? rc : dst_fail(c, NULL, what);
	PGresult *res;
	while ((res = PQgetResult(c->pg))) {
		if (!rc && PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = dst_fail(c, res, what);
		PQclear(res);
	}
	return rc;
}

/* ---------------------------------------------------------------- the source */

static int src_exec(struct copy *c, const char *sql, const char *what)
{
	return sqlite3_exec(c->src, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : src_fail(c, what);
}

static int count_cols(const char *cols)
{
	int n = 1;
	for (const char *p = cols; *p; p++)
		n += *p == ',';
	return n;
}

/* One batch of tables[ti] after the key in last[] (none: from the start), sent in the open
 * COPY or one begun for it.  *rows: rows read; last[] moves to the batch's last key.  The SQL
 * is composed of the table list's entries (constants) and integers; the key is bound. */
static int copy_batch(struct copy *c, int ti, sqlite3_value **last, bool *copying, uint32_t *rows)
{
	const struct table *t = &tables[ti];
	char sql[1024];
	struct errq_buf q;
	sqlite3_stmt *st = NULL;
	int ncols = count_cols(t->cols), rc = 0, step;
	*rows = 0;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, "SELECT ");
	errq_buf_addstr(&q, tables[ti].cols);
	errq_buf_addstr(&q, ", ");
	errq_buf_addstr(&q, tables[ti].key);
	errq_buf_addstr(&q, " FROM ");
	errq_buf_addstr(&q, tables[ti].name);
	if (t->where) {
		errq_buf_addstr(&q, " WHERE ");
		errq_buf_addstr(&q, tables[ti].where);
	}
	if (last[0]) { /* (a, b) > (?1, ?2): SQLite's row values */
		errq_buf_addstr(&q, t->where ? " AND (" : " WHERE (");
		errq_buf_addstr(&q, tables[ti].key);
		errq_buf_addstr(&q, ") > (?1");
		for (int k = 1; k < t->nkey; k++)
			errq_buf_printf(&q, ", ?%d", k + 1);
		errq_buf_addstr(&q, ")");
	}
	errq_buf_addstr(&q, " ORDER BY ");
	errq_buf_addstr(&q, tables[ti].key);
	errq_buf_printf(&q, " LIMIT %u", c->batch);
	if (q.failed)
		return fail(c, STORE_COPY_ERR_SOURCE, "the read of table '%s' does not fit %zu bytes", t->name,
			    sizeof(sql));
	if (src_exec(c, "BEGIN", "begin a read"))
		return -1;
	if (sqlite3_prepare_v2(c->src, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = src_fail(c, "prepare a read");
		goto out;
	}
	for (int k = 0; last[0] && k < t->nkey; k++)
		sqlite3_bind_value(st, k + 1, last[k]);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (!*copying) {
			char copy[512];
			errq_buf_init_fixed(&q, copy, sizeof(copy));
			errq_buf_addstr(&q, "COPY ");
			errq_buf_addstr(&q, tables[ti].name);
			errq_buf_addstr(&q, " (");
			errq_buf_addstr(&q, tables[ti].cols);
			errq_buf_addstr(&q, ") FROM STDIN");
			if (q.failed || dst_exec(c, copy, PGRES_COPY_IN, NULL, "begin a copy")) {
				if (q.failed)
					fail(c, STORE_COPY_ERR_TARGET, "the copy of '%s' does not fit", t->name);
				rc = -1;
				goto out;
			}
			*copying = true;
		}
		for (int i = 0; i < ncols; i++) {
			if (i)
				errq_buf_add(&c->msg, "\t", 1);
			put_value(&c->msg, st, i);
		}
		errq_buf_add(&c->msg, "\n", 1);
		if ((c->msg.failed || c->msg.len >= STORE_COPY_CHUNK_BYTES) && send_buf(c)) {
			rc = -1;
			goto out;
		}
		(*rows)++;
		/* the key of the last row read (the statement's values go with it) */
		for (int k = 0; k < t->nkey; k++) {
			sqlite3_value *v = sqlite3_value_dup(sqlite3_column_value(st, ncols + k));
			if (!v) {
				rc = fail(c, STORE_COPY_ERR_SOURCE, "out of memory");
				goto out;
			}
			sqlite3_value_free(last[k]);
			last[k] = v;
		}
	}
	if (step != SQLITE_DONE)
		rc = src_fail(c, "read rows");
out:
	sqlite3_finalize(st);
	sqlite3_exec(c->src, "COMMIT", NULL, NULL, NULL); /* a read: nothing to keep or lose */
	return rc ? -1 : 0;
}

static int copy_table(struct copy *c, int ti)
{
	const struct table *t = &tables[ti];
	sqlite3_value *last[KEY_MAX] = {NULL};
	uint64_t total = 0, next_note = STORE_COPY_PROGRESS_ROWS;
	bool copying = false;
	int rc = 0;
	uint32_t rows;
	do {
		/* one COPY per batch: a statement's time stays bounded (statement_timeout) */
		if ((rc = copy_batch(c, ti, last, &copying, &rows)))
			break;
		total += rows;
		if (copying) {
			copying = false; /* ended, whatever the answer */
			if ((rc = copy_end(c, true, t->name)))
				break;
		}
		if (total >= next_note) {
			progress(c, "%s: %llu rows", t->name, (unsigned long long)total);
			next_note += STORE_COPY_PROGRESS_ROWS;
		}
	} while (rows == c->batch);
	if (rc && copying)
		copy_end(c, false, t->name); /* the reason recorded is the first */
	for (int k = 0; k < KEY_MAX; k++)
		sqlite3_value_free(last[k]);
	if (!rc) {
		c->r->rows_copied += total;
		progress(c, "%s: %llu rows copied", t->name, (unsigned long long)total);
	}
	return rc;
}

/* ---------------------------------------------------------------- the target */

/* What is asked of a table on the target: one integer, SQL around the table's name. */
enum { DST_HAS_ROWS, DST_COUNT };
static const struct dst_query {
	const char *before, *after, *what;
} dst_queries[] = {
    [DST_HAS_ROWS] = {"SELECT EXISTS (SELECT 1 FROM ", ")::int", "look for rows"},
    [DST_COUNT] = {"SELECT count(*) FROM ", "", "count rows"},
};

static int dst_int(struct copy *c, int k, int ti, uint64_t *v)
{
	char sql[128];
	struct errq_buf q;
	PGresult *res;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, dst_queries[k].before);
	errq_buf_addstr(&q, tables[ti].name);
	errq_buf_addstr(&q, dst_queries[k].after);
	if (dst_exec(c, sql, PGRES_TUPLES_OK, &res, dst_queries[k].what))
		return -1;
	*v = PQntuples(res) == 1 ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return 0;
}

static int src_count(struct copy *c, int ti, uint64_t *n)
{
	char sql[256];
	struct errq_buf q;
	sqlite3_stmt *st;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, "SELECT count(*) FROM ");
	errq_buf_addstr(&q, tables[ti].name);
	if (tables[ti].where) {
		errq_buf_addstr(&q, " WHERE ");
		errq_buf_addstr(&q, tables[ti].where);
	}
	if (sqlite3_prepare_v2(c->src, sql, -1, &st, NULL) != SQLITE_OK)
		return src_fail(c, "count rows");
	int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
	*n = rc ? 0 : (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc ? src_fail(c, "count rows") : 0;
}

/* The sequence of t.id past its largest id, so the next row the collector writes takes a
 * new one. */
static int dst_set_sequence(struct copy *c, int ti)
{
	const char *table = tables[ti].name;
	char sql[256], what[96];
	struct errq_buf q;
	PGresult *res;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, "SELECT setval(pg_get_serial_sequence('");
	errq_buf_addstr(&q, tables[ti].name);
	errq_buf_addstr(&q, "', 'id'), coalesce(max(id), 0) + 1, false) FROM ");
	errq_buf_addstr(&q, tables[ti].name);
	errq_snprintf(what, sizeof(what), "set the id sequence of '%s'", table);
	if (dst_exec(c, sql, PGRES_TUPLES_OK, &res, what))
		return -1;
	bool none = PQntuples(res) != 1 || PQgetisnull(res, 0, 0);
	PQclear(res);
	return none ? fail(c, STORE_COPY_ERR_TARGET, "target database '%s': table '%s' has no id sequence", c->red,
			   table)
		    : 0;
}

/* Day partitions of events for the days the source's ids span (from at most
 * STORE_COPY_PARTITION_DAYS_MAX days back; ids outside go to events_default, as at ingest). */
static int dst_partitions(struct copy *c)
{
	sqlite3_stmt *st;
	int64_t lo_ms = -1;
	if (sqlite3_prepare_v2(c->src, "SELECT min(event_id) FROM events", -1, &st, NULL) != SQLITE_OK)
		return src_fail(c, "read the oldest event id");
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
		const unsigned char *p = sqlite3_column_blob(st, 0);
		lo_ms = 0;
		for (int i = 0; i < 6; i++)
			lo_ms = lo_ms << 8 | p[i];
	}
	sqlite3_finalize(st);
	uint64_t now_ns = store_pg__now_ns();
	int64_t today = (int64_t)(now_ns / 1000000u) / MS_PER_DAY;
	int64_t first = lo_ms < 0 ? today : lo_ms / MS_PER_DAY;
	if (first < today - STORE_COPY_PARTITION_DAYS_MAX)
		first = today - STORE_COPY_PARTITION_DAYS_MAX;
	if (first > today)
		first = today;
	uint32_t made = 0;
	/* ensure_partitions makes [day(now) - 1, day(now) + ahead]: now = the day after the first */
	uint64_t from_ns = (uint64_t)(first + 1) * (uint64_t)MS_PER_DAY * 1000000u;
	if (store_pg_ensure_partitions(c->dst, from_ns, (uint32_t)(today - first - 1 + STORE_PG_PARTITIONS_AHEAD),
				       &made))
		return fail(c, STORE_COPY_ERR_TARGET, "target database '%s': %s", c->red, store_errmsg(c->dst));
	progress(c, "target: %u day partitions of events made", made);
	return 0;
}

/* ---------------------------------------------------------------- verification */

static void differ(struct copy *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void differ(struct copy *c, const char *fmt, ...)
{
	va_list ap;
	if (c->r->n_differ >= STORE_COPY_DIFFER_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(c->r->differ[c->r->n_differ++], STORE_COPY_DIFFER_LEN, fmt, ap);
	va_end(ap);
}

#define GROUP_COLS "id, fingerprint, total, handled, dropped, stored"
#define GROUP_NCOLS 6

/* Each group's totals, source against target, a batch of ids at a time. */
static int verify_groups(struct copy *c)
{
	static const char *const names[GROUP_NCOLS] = {"id", "fingerprint", "total", "handled", "dropped", "stored"};
	int64_t after = 0;
	for (;;) {
		char sql[256];
		sqlite3_stmt *st = NULL;
		PGresult *res = NULL;
		int rc = 0, n = 0, step;
		if (src_exec(c, "BEGIN", "begin a read"))
			return -1;
		errq_snprintf(sql, sizeof(sql), "SELECT " GROUP_COLS " FROM groups WHERE id > %lld ORDER BY id LIMIT %d",
			      (long long)after, (int)c->batch);
		if (sqlite3_prepare_v2(c->src, sql, -1, &st, NULL) != SQLITE_OK) {
			rc = src_fail(c, "read groups");
			goto next;
		}
		/* the source's batch decides the id range; the target's rows in it come at once */
		int64_t hi = after;
		while ((step = sqlite3_step(st)) == SQLITE_ROW)
			hi = sqlite3_column_int64(st, 0), n++;
		if (step != SQLITE_DONE) {
			rc = src_fail(c, "read groups");
			goto next;
		}
		sqlite3_reset(st);
		if (n == 0) {
			errq_snprintf(sql, sizeof(sql), "SELECT count(*) FROM groups WHERE id > %lld", (long long)after);
			uint64_t extra = 0;
			if (dst_exec(c, sql, PGRES_TUPLES_OK, &res, "read groups")) {
				rc = -1;
				goto next;
			}
			extra = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
			if (extra) {
				c->r->groups_differ += extra;
				differ(c, "%llu groups past id %lld are in the target only", (unsigned long long)extra,
				       (long long)after);
			}
			rc = 1;
			goto next;
		}
		errq_snprintf(sql, sizeof(sql), "SELECT " GROUP_COLS " FROM groups WHERE id > %lld AND id <= %lld ORDER BY id",
			      (long long)after, (long long)hi);
		if (dst_exec(c, sql, PGRES_TUPLES_OK, &res, "read groups")) {
			rc = -1;
			goto next;
		}
		int j = 0, nt = PQntuples(res);
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(st, 0);
			c->r->groups_checked++;
			while (j < nt && strtoll(PQgetvalue(res, j, 0), NULL, 10) < id) {
				c->r->groups_differ++;
				differ(c, "group %s is in the target only", PQgetvalue(res, j, 0));
				j++;
			}
			if (j == nt || strtoll(PQgetvalue(res, j, 0), NULL, 10) != id) {
				c->r->groups_differ++;
				differ(c, "group %lld is missing from the target", (long long)id);
				continue;
			}
			for (int k = 1; k < GROUP_NCOLS; k++) {
				const char *sv = (const char *)sqlite3_column_text(st, k), *tv = PQgetvalue(res, j, k);
				if (strcmp(sv ? sv : "", tv)) {
					c->r->groups_differ++;
					differ(c, "group %lld: %s is %s in the source, %s in the target", (long long)id,
					       names[k], sv ? sv : "NULL", tv);
					break;
				}
			}
			j++;
		}
		if (step != SQLITE_DONE)
			rc = src_fail(c, "read groups");
		for (; !rc && j < nt; j++) {
			c->r->groups_differ++;
			differ(c, "group %s is in the target only", PQgetvalue(res, j, 0));
		}
		after = hi;
	next:
		sqlite3_finalize(st);
		PQclear(res);
		sqlite3_exec(c->src, "COMMIT", NULL, NULL, NULL);
		if (rc)
			return rc > 0 ? 0 : -1;
	}
}

static int verify(struct copy *c)
{
	bool same = true;
	for (int i = 0; i < N_TABLES; i++) {
		struct store_copy_count *n = &c->r->tables[i];
		n->table = tables[i].name;
		if (src_count(c, i, &n->source) || dst_int(c, DST_COUNT, i, &n->target))
			return -1;
		c->r->n_tables = i + 1;
		if (n->source != n->target) {
			same = false;
			differ(c, "table %s: %llu rows in the source, %llu in the target", n->table,
			       (unsigned long long)n->source, (unsigned long long)n->target);
		}
	}
	if (verify_groups(c))
		return -1;
	if (!same || c->r->groups_differ)
		return fail(c, STORE_COPY_ERR_VERIFY, "verification failed: %s%s", c->r->differ[0],
			    c->r->n_differ > 1 ? " (and more)" : "");
	return 0;
}

/* ---------------------------------------------------------------- the copy */

static int open_source(struct copy *c, struct store_lock **lock)
{
	struct store_url u;
	struct stat sb;
	char why[512];
	if (store_url_parse(c->o->from, &u, why, sizeof(why)))
		return fail(c, STORE_COPY_ERR_ARGS, "--from: %s", why);
	if (u.kind != STORE_URL_SQLITE)
		return fail(c, STORE_COPY_ERR_ARGS, "--from '%s': not a SQLite database (a path or sqlite:///PATH)",
			    store_url_redact(c->o->from, why, sizeof(why)));
	/* store_open would make a new, empty database: a typing error must not copy nothing */
	if (stat(u.path, &sb))
		return fail(c, STORE_COPY_ERR_SOURCE, "source database '%s': %s", u.path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return fail(c, STORE_COPY_ERR_SOURCE, "source database '%s': not a regular file", u.path);
	if (store_lock(lock, c->o->from, why, sizeof(why)))
		return fail(c, STORE_COPY_ERR_SOURCE, "source %s", why);
	/* once as errqd opens it: an older schema migrated, the counts a crash left unwritten
	 * written (the only writes to the source); closed at once */
	struct store *s;
	struct store_opts so = {.path = c->o->from, .cache_mib = STORE_COPY_SOURCE_CACHE_MIB};
	if (store_open(&s, &so, why, sizeof(why)))
		return fail(c, STORE_COPY_ERR_SOURCE, "source: %s", why);
	store_close(s);
	/* then read-only; a sequential read needs no big page cache */
	char sql[64];
	if (sqlite3_open_v2(u.path, &c->src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return src_fail(c, "open");
	sqlite3_busy_timeout(c->src, STORE_COPY_SOURCE_BUSY_MS);
	errq_snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", STORE_COPY_SOURCE_CACHE_MIB * 1024);
	return src_exec(c, sql, "set the page cache");
}

static int open_target(struct copy *c)
{
	char why[512];
	struct store_opts so = {.path = c->o->to};
	if (store_open(&c->dst, &so, why, sizeof(why))) /* migrates it to the current schema */
		return fail(c, STORE_COPY_ERR_TARGET, "target: %s", why);
	if (!(c->pg = store_pg_conn(c->dst)))
		return fail(c, STORE_COPY_ERR_TARGET, "target database '%s': %s", c->red, store_errmsg(c->dst));
	return 0;
}

static int copy_all(struct copy *c)
{
	char sql[1024];
	errq_snprintf(sql, sizeof(sql), "SET LOCAL statement_timeout = %d", STORE_COPY_STMT_TIMEOUT_S * 1000);
	if (dst_exec(c, "BEGIN", PGRES_COMMAND_OK, NULL, "begin the copy") ||
	    dst_exec(c, sql, PGRES_COMMAND_OK, NULL, "set the statement timeout"))
		return -1;
	if (c->o->replace) {
		struct errq_buf q;
		errq_buf_init_fixed(&q, sql, sizeof(sql));
		errq_buf_addstr(&q, "TRUNCATE ");
		for (int i = 0; i < N_TABLES; i++) {
			errq_buf_addstr(&q, i ? ", " : "");
			errq_buf_addstr(&q, tables[i].name);
		}
		if (dst_exec(c, sql, PGRES_COMMAND_OK, NULL, "empty the target's tables"))
			return -1;
		progress(c, "target: errq's tables emptied (--replace)");
	} else {
		for (int i = 0; i < N_TABLES; i++) {
			uint64_t has;
			if (dst_int(c, DST_HAS_ROWS, i, &has))
				return -1;
			if (has)
				return fail(c, STORE_COPY_ERR_TARGET,
					    "target database '%s' is not empty: table '%s' has rows; migrate into an "
					    "empty database, or pass --replace to empty errq's tables there first",
					    c->red, tables[i].name);
		}
	}
	for (int i = 0; i < N_TABLES; i++)
		if (copy_table(c, i))
			return -1;
	for (int i = 0; i < N_TABLES; i++)
		if (tables[i].has_id && dst_set_sequence(c, i))
			return -1;
	progress(c, "verifying");
	if (verify(c))
		return -1;
	return dst_exec(c, "COMMIT", PGRES_COMMAND_OK, NULL, "commit the copy");
}

int store_copy(const struct store_copy_opts *o, struct store_copy_report *r, char *err, size_t errsz)
{
	struct copy c = {.o = o, .r = r, .err = err, .errsz = errsz};
	struct store_lock *lock = NULL;
	int rc;
	memset(r, 0, sizeof(*r));
	err[0] = '\0';
	errq_buf_init(&c.msg, ROW_MAX_BYTES);
	if (!o->from || !*o->from || !o->to || !*o->to) {
		fail(&c, STORE_COPY_ERR_ARGS, "both --from and --to are needed");
		goto out;
	}
	if (o->batch_rows > STORE_COPY_BATCH_ROWS_MAX) {
		fail(&c, STORE_COPY_ERR_ARGS, "batch of %u rows: at most %u", o->batch_rows, STORE_COPY_BATCH_ROWS_MAX);
		goto out;
	}
	c.batch = o->batch_rows ? o->batch_rows : STORE_COPY_BATCH_ROWS;
	store_url_redact(o->to, c.red, sizeof(c.red));
	/* the arguments first, both, before anything is opened */
	struct store_url u;
	char why[512];
	if (store_url_parse(o->to, &u, why, sizeof(why))) {
		fail(&c, STORE_COPY_ERR_ARGS, "--to: %s", why);
		goto out;
	}
	if (u.kind != STORE_URL_POSTGRES) {
		fail(&c, STORE_COPY_ERR_ARGS, "--to '%s': not a PostgreSQL URL (postgres://...)", c.red);
		goto out;
	}
	if (open_source(&c, &lock))
		goto out;
	progress(&c, "source: %s (locked: no errqd can run on it until the copy ends)", o->from);
	if (open_target(&c))
		goto out;
	progress(&c, "target: %s (schema version %d)", c.red, STORE_PG_SCHEMA_VERSION);
	if (dst_partitions(&c))
		goto out;
	if (copy_all(&c)) {
		if (PQtransactionStatus(c.pg) != PQTRANS_IDLE) {
			PGresult *res = PQexec(c.pg, "ROLLBACK");
			PQclear(res);
		}
		goto out;
	}
	progress(&c, "committed: %llu rows", (unsigned long long)r->rows_copied);
out:
	rc = c.code;
	errq_buf_free(&c.msg);
	store_close(c.dst);
	sqlite3_close(c.src); /* accepts NULL */
	store_unlock(lock);
	return rc;
}
