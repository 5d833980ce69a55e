/* store_alerts.c: the alerting tables (storage_alerts.h; schema in store_migrate.c, version 2).
 *
 * Writer calls use statements prepared once, on first use, and kept in s->astmt (finalized
 * with the handle); they run in the caller's transaction.  Reader calls prepare their one
 * statement per call, like store_query.c, so they work on read-only handles.  The prunes
 * delete in the order the tables can be walked cheaply: transitions by id (insertion order),
 * resolved alerts by the partial index on resolved_ns, outcome batches by their index on
 * received_ns; silences are few and scanned. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "storage_alerts.h"
#include "errq_str.h"
#include "errq_banned.h"

static const char *const astmt_sql[ASTMT_COUNT] = {
    [ASTMT_CIRCUIT_INSERT] =
	"INSERT INTO circuits (rule, key, def_hash, state, since_ns, failures, next_ns, alert_id, saved,"
	" updated_ns) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [ASTMT_CIRCUIT_UPDATE] = /* ?1, ?2 (rule, key) unused: the binds are the insert's; a row keeps its name */
	"UPDATE circuits SET def_hash = ?3, state = ?4, since_ns = ?5, failures = ?6, next_ns = ?7,"
	" alert_id = ?8, saved = ?9, updated_ns = ?10 WHERE id = ?11",
    [ASTMT_CIRCUIT_DELETE] = "DELETE FROM circuits WHERE id = ?1",
    [ASTMT_TRANSITION_INSERT] =
	"INSERT INTO transitions (rule, key, at_ns, from_state, to_state, reason, failures, window_s,"
	" next_ns, alert_id) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [ASTMT_ALERT_UPSERT] =
	"INSERT INTO alerts (alert_id, rule, key, severity, status, state, opened_ns, resolved_ns, failures,"
	" window_s, sample, resolve_reason, notices, updated_ns)"
	" VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
	" ON CONFLICT (alert_id) DO UPDATE SET status = excluded.status, state = excluded.state,"
	" resolved_ns = excluded.resolved_ns, resolve_reason = excluded.resolve_reason,"
	" notices = excluded.notices, updated_ns = excluded.updated_ns RETURNING id",
    [ASTMT_DELIVERY_INSERT] =
	/* the idempotency key is stored only when it is not the usual one (see DELIVERY_COLS) */
	"INSERT INTO deliveries (alert_id, notifier, kind, seq, idem_key, status, attempts,"
	" next_attempt_ns, http_status, last_error, created_ns, updated_ns, body)"
	" VALUES (?1,?2,?3,?4,"
	" CASE WHEN ?5 = lower(hex(?1)) || ':' || ?3 || ':' || ?4 THEN NULL ELSE ?5 END,"
	" ?6,?7,?8,?9,?10,?11,?12,?13)",
    [ASTMT_DELIVERY_UPDATE] =
	"UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_ns = ?4, http_status = ?5,"
	" last_error = ?6, updated_ns = ?7 WHERE id = ?1",
    [ASTMT_SILENCE_INSERT] =
	"INSERT INTO silences (rule, matchers, comment, created_by, created_ns, starts_ns, ends_ns,"
	" expired_ns) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
    [ASTMT_SILENCE_EXPIRE] =
	/* not when it has ended already, by its end or by an earlier expire */
	"UPDATE silences SET expired_ns = ?2 WHERE id = ?1 AND ends_ns > ?2"
	" AND (expired_ns = 0 OR expired_ns > ?2)",
    [ASTMT_BATCH_INSERT] = "INSERT OR IGNORE INTO outcome_batches (batch_id, received_ns) VALUES (?1, ?2)",
    [ASTMT_BATCH_PRUNE] =
	"DELETE FROM outcome_batches WHERE batch_id IN (SELECT batch_id FROM outcome_batches"
	" WHERE received_ns < ?1 ORDER BY received_ns LIMIT ?2)",
    [ASTMT_PRUNE_TRANSITIONS_SCAN] = "SELECT id, at_ns FROM transitions ORDER BY id LIMIT ?1",
    [ASTMT_PRUNE_TRANSITIONS] = "DELETE FROM transitions WHERE id <= ?1",
/* resolved before the cutoff, and no delivery of it waits (pending) or may be replayed
 * (dead): those are never deleted, so neither is their alert.  INDEXED BY: without
 * statistics the planner prefers alerts_status (an equality) and then sorts every resolved
 * alert; the partial index is a range in the order wanted */
#define PRUNABLE_ALERTS                                                                                 \
	"FROM alerts a INDEXED BY alerts_resolved WHERE a.status = 'resolved' AND a.resolved_ns < ?1"   \
	" AND NOT EXISTS"                                                                               \
	" (SELECT 1 FROM deliveries d WHERE d.alert_id = a.alert_id AND d.status IN (0, 2))"            \
	" ORDER BY a.resolved_ns, a.id LIMIT ?2"
    [ASTMT_PRUNE_DELIVERIES] = "DELETE FROM deliveries WHERE alert_id IN (SELECT a.alert_id " PRUNABLE_ALERTS ")",
    [ASTMT_PRUNE_ALERTS] = "DELETE FROM alerts WHERE id IN (SELECT a.id " PRUNABLE_ALERTS ")",
#undef PRUNABLE_ALERTS
    [ASTMT_PRUNE_SILENCES] =
	"DELETE FROM silences WHERE id IN (SELECT id FROM silences WHERE"
	" CASE WHEN expired_ns > 0 AND expired_ns < ends_ns THEN expired_ns ELSE ends_ns END < ?1"
	" ORDER BY id LIMIT ?2)",
};

_Static_assert(STORE_DELIVERY_PENDING == 0 && STORE_DELIVERY_DEAD == 2,
	       "the schema's partial index deliveries_open and the prune name these numbers");

const char *store_delivery_status_name(int status)
{
	static const char *const names[] = {
#define X(n, str) str,
	    STORE_DELIVERY_STATUSES(X)
#undef X
	};
	return status >= 0 && status < (int)(sizeof(names) / sizeof(names[0])) ? names[status] : "?";
}

static bool delivery_status_valid(int status)
{
	return status >= STORE_DELIVERY_PENDING && status <= STORE_DELIVERY_SILENCED;
}

/* The writer statement i, prepared on first use; NULL on error. */
static sqlite3_stmt *astmt(struct store *s, enum store_alert_stmt i)
{
	if (!s->astmt[i] &&
	    sqlite3_prepare_v3(s->db, astmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->astmt[i], NULL) != SQLITE_OK) {
		store__set_err(s, "prepare alerting statement");
		return NULL;
	}
	return s->astmt[i];
}

static void bind_str(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_id16(sqlite3_stmt *st, int i, const uint8_t *id)
{
	if (id)
		sqlite3_bind_blob(st, i, id, 16, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
	sqlite3_bind_int64(st, i, (int64_t)v);
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
	return (uint64_t)sqlite3_column_int64(st, i);
}

/* A 16-byte id column, or NULL. */
static const uint8_t *col_id16(sqlite3_stmt *st, int i)
{
	const void *p = sqlite3_column_blob(st, i);
	return p && sqlite3_column_bytes(st, i) == 16 ? p : NULL;
}

static sqlite3_stmt *prepare(struct store *s, const char *sql, const char *what)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		store__set_err(s, what);
		return NULL;
	}
	return st;
}

/* Ends a reader's loop over st: 0 when it ran to the end or the callback stopped it (r is
 * the last step's result), else -1.  Finalizes st. */
static int finish(struct store *s, sqlite3_stmt *st, int r, const char *what)
{
	int rc = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : store__set_err(s, what);
	sqlite3_finalize(st);
	return rc;
}

/* ---- circuits ---- */

#define CIRCUIT_COLS \
	"id, rule, key, def_hash, state, since_ns, failures, next_ns, alert_id, saved, updated_ns"

static void circuit_from_row(sqlite3_stmt *st, struct store_circuit *c)
{
	memset(c, 0, sizeof(*c));
	c->id = sqlite3_column_int64(st, 0);
	c->rule = store__col_text(st, 1);
	c->key = store__col_text(st, 2);
	c->def_hash = col_u64(st, 3);
	c->state = sqlite3_column_int(st, 4);
	c->since_ns = col_u64(st, 5);
	c->failures_in_window = col_u64(st, 6);
	c->next_transition_ns = col_u64(st, 7);
	c->alert_id = col_id16(st, 8);
	c->saved = sqlite3_column_blob(st, 9);
	c->saved_len = (size_t)sqlite3_column_bytes(st, 9);
	c->updated_ns = col_u64(st, 10);
}

int store_sqlite_circuit_put(struct store *s, const struct store_circuit *c, int64_t *id)
{
	bool insert = c->id == 0;
	sqlite3_stmt *st = astmt(s, insert ? ASTMT_CIRCUIT_INSERT : ASTMT_CIRCUIT_UPDATE);
	if (!st)
		return -1;
	if (insert) {
		bind_str(st, 1, c->rule);
		bind_str(st, 2, c->key);
	}
	bind_u64(st, 3, c->def_hash);
	sqlite3_bind_int(st, 4, c->state);
	bind_u64(st, 5, c->since_ns);
	bind_u64(st, 6, c->failures_in_window);
	bind_u64(st, 7, c->next_transition_ns);
	bind_id16(st, 8, c->alert_id);
	if (c->saved && c->saved_len)
		sqlite3_bind_blob(st, 9, c->saved, (int)c->saved_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 9);
	bind_u64(st, 10, c->updated_ns);
	if (!insert)
		sqlite3_bind_int64(st, 11, c->id);
	if (store__step(s, st, insert ? "insert circuit" : "update circuit"))
		return -1;
	if (!insert && sqlite3_changes(s->db) == 0) {
		return store__fail(s, "update circuit: no circuit %lld", (long long)c->id);
	}
	if (id)
		*id = insert ? sqlite3_last_insert_rowid(s->db) : c->id;
	return 0;
}

int store_sqlite_circuit_delete(struct store *s, int64_t id)
{
	sqlite3_stmt *st = astmt(s, ASTMT_CIRCUIT_DELETE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return store__step(s, st, "delete circuit");
}

int store_sqlite_list_circuits(struct store *s, const char *rule, store_circuit_cb cb, void *ctx)
{
	/* both walk the UNIQUE (rule, key) index */
	sqlite3_stmt *st = prepare(s,
				   rule ? "SELECT " CIRCUIT_COLS " FROM circuits WHERE rule = ?1 ORDER BY rule, key"
					: "SELECT " CIRCUIT_COLS " FROM circuits ORDER BY rule, key",
				   "prepare list circuits");
	if (!st)
		return -1;
	if (rule)
		sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_circuit c;
		circuit_from_row(st, &c);
		if (cb(ctx, &c))
			break;
	}
	return finish(s, st, r, "list circuits");
}

int store_sqlite_count_circuits(struct store *s, store_circuit_count_cb cb, void *ctx)
{
	sqlite3_stmt *st = prepare(s, "SELECT rule, count(*), sum(state != 0) FROM circuits GROUP BY rule",
				   "prepare count circuits");
	if (!st)
		return -1;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		if (cb(ctx, store__col_text(st, 0), col_u64(st, 1), col_u64(st, 2)))
			break;
	return finish(s, st, r, "count circuits");
}

int store_sqlite_get_circuit(struct store *s, const char *rule, const char *key, store_circuit_cb cb, void *ctx)
{
	sqlite3_stmt *st =
	    prepare(s, "SELECT " CIRCUIT_COLS " FROM circuits WHERE rule = ?1 AND key = ?2", "prepare get circuit");
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		struct store_circuit c;
		circuit_from_row(st, &c);
		cb(ctx, &c);
		sqlite3_finalize(st);
		return 1;
	}
	return finish(s, st, r, "get circuit");
}

/* ---- transitions ---- */

int store_sqlite_transition_add(struct store *s, const struct store_transition *t)
{
	sqlite3_stmt *st = astmt(s, ASTMT_TRANSITION_INSERT);
	if (!st)
		return -1;
	bind_str(st, 1, t->rule);
	bind_str(st, 2, t->key);
	bind_u64(st, 3, t->at_ns);
	sqlite3_bind_int(st, 4, t->from);
	sqlite3_bind_int(st, 5, t->to);
	bind_str(st, 6, t->reason);
	bind_u64(st, 7, t->failures_in_window);
	sqlite3_bind_int64(st, 8, t->window_seconds);
	bind_u64(st, 9, t->next_transition_ns);
	bind_id16(st, 10, t->alert_id);
	return store__step(s, st, "insert transition");
}

int store_sqlite_list_transitions(struct store *s, const char *rule, const char *key, uint32_t limit,
			   store_transition_cb cb, void *ctx)
{
	/* the newest `limit` through the (rule, key) index, newest first, then turned around
	 * (a sort of at most `limit` rows) */
	sqlite3_stmt *st = prepare(s,
				   "SELECT * FROM (SELECT id, rule, key, at_ns, from_state, to_state, reason, failures,"
				   " window_s, next_ns, alert_id FROM transitions WHERE rule = ?1 AND key = ?2"
				   " ORDER BY id DESC LIMIT ?3) ORDER BY id",
				   "prepare list transitions");
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, limit);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_transition t = {
		    .id = sqlite3_column_int64(st, 0),
		    .rule = store__col_text(st, 1),
		    .key = store__col_text(st, 2),
		    .at_ns = col_u64(st, 3),
		    .from = sqlite3_column_int(st, 4),
		    .to = sqlite3_column_int(st, 5),
		    .reason = store__col_text(st, 6),
		    .failures_in_window = col_u64(st, 7),
		    .window_seconds = (uint32_t)sqlite3_column_int64(st, 8),
		    .next_transition_ns = col_u64(st, 9),
		    .alert_id = col_id16(st, 10),
		};
		if (cb(ctx, &t))
			break;
	}
	return finish(s, st, r, "list transitions");
}

/* ---- alerts ---- */

#define ALERT_COLS                                                                                 \
	"id, alert_id, rule, key, severity, status, state, opened_ns, resolved_ns, failures, window_s," \
	" sample, resolve_reason, notices, updated_ns"

static bool alert_from_row(sqlite3_stmt *st, struct store_alert *a)
{
	memset(a, 0, sizeof(*a));
	a->id = sqlite3_column_int64(st, 0);
	a->alert_id = col_id16(st, 1);
	a->rule = store__col_text(st, 2);
	a->key = store__col_text(st, 3);
	a->severity = store__col_text(st, 4);
	a->status = store__col_text(st, 5);
	a->state = sqlite3_column_int(st, 6);
	a->opened_ns = col_u64(st, 7);
	a->resolved_ns = col_u64(st, 8);
	a->failures_in_window = col_u64(st, 9);
	a->window_seconds = (uint32_t)sqlite3_column_int64(st, 10);
	a->sample = store__col_text(st, 11);
	a->resolve_reason = store__col_text(st, 12);
	a->notices = (uint32_t)sqlite3_column_int64(st, 13);
	a->updated_ns = col_u64(st, 14);
	return a->alert_id != NULL; /* cannot fail: only 16-byte ids are stored */
}

int store_sqlite_alert_put(struct store *s, const struct store_alert *a, int64_t *id)
{
	if (!a->alert_id) {
		return store__fail(s, "alert without an alert_id");
	}
	sqlite3_stmt *st = astmt(s, ASTMT_ALERT_UPSERT);
	if (!st)
		return -1;
	bind_id16(st, 1, a->alert_id);
	bind_str(st, 2, a->rule);
	bind_str(st, 3, a->key);
	bind_str(st, 4, a->severity);
	bind_str(st, 5, a->status);
	sqlite3_bind_int(st, 6, a->state);
	bind_u64(st, 7, a->opened_ns);
	bind_u64(st, 8, a->resolved_ns);
	bind_u64(st, 9, a->failures_in_window);
	sqlite3_bind_int64(st, 10, a->window_seconds);
	bind_str(st, 11, a->sample);
	bind_str(st, 12, a->resolve_reason);
	sqlite3_bind_int64(st, 13, a->notices);
	bind_u64(st, 14, a->updated_ns);
	/* RETURNING: the row's id on both paths (an update does not set last_insert_rowid); all
	 * changes are made by the first step */
	int r = sqlite3_step(st);
	int64_t rowid = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (r != SQLITE_ROW) {
		store__set_err(s, "put alert");
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	if (id)
		*id = rowid;
	return 0;
}

int store_sqlite_get_alert(struct store *s, const uint8_t alert_id[16], store_alert_cb cb, void *ctx)
{
	sqlite3_stmt *st = prepare(s, "SELECT " ALERT_COLS " FROM alerts WHERE alert_id = ?1", "prepare get alert");
	if (!st)
		return -1;
	sqlite3_bind_blob(st, 1, alert_id, 16, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		struct store_alert a;
		int rc = alert_from_row(st, &a) ? 1 : 0;
		if (rc)
			cb(ctx, &a);
		sqlite3_finalize(st);
		return rc;
	}
	return finish(s, st, r, "get alert");
}

int store_sqlite_list_alerts(struct store *s, const struct store_alert_filter *f, store_alert_cb cb, void *ctx)
{
	/* composed from the filters that are set: with a status, a range of alerts_status
	 * (status, rowid) from the cursor down; otherwise the table from the cursor down */
	char sql[512];
	struct errq_buf q;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, "SELECT " ALERT_COLS " FROM alerts WHERE 1");
	if (f->before_id)
		errq_buf_addstr(&q, " AND id < :before");
	if (f->status && *f->status)
		errq_buf_addstr(&q, " AND status = :status");
	if (f->rule && *f->rule)
		errq_buf_addstr(&q, " AND rule = :rule");
	if (f->since_ns)
		errq_buf_addstr(&q, " AND (opened_ns >= :since OR updated_ns >= :since)");
	errq_buf_addstr(&q, " ORDER BY id DESC LIMIT :limit");
	if (q.len >= sizeof(sql) - 1) {
		errq_snprintf(s->err, sizeof(s->err), "query too long");
		return -1;
	}
	sqlite3_stmt *st = prepare(s, sql, "prepare list alerts");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":before"), f->before_id);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":status"), f->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":rule"), f->rule, -1, SQLITE_STATIC);
	bind_u64(st, sqlite3_bind_parameter_index(st, ":since"), f->since_ns);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"), f->limit);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_alert a;
		if (!alert_from_row(st, &a))
			continue;
		if (cb(ctx, &a))
			break;
	}
	return finish(s, st, r, "list alerts");
}

/* ---- outbox ---- */

/* Without the body; DELIVERY_COLS ", body" with it. */
#define DELIVERY_COLS                                                                             \
	"id, alert_id, notifier, kind, seq,"                                                       \
	" coalesce(idem_key, lower(hex(alert_id)) || ':' || kind || ':' || seq), status, attempts," \
	" next_attempt_ns, http_status, last_error, created_ns, updated_ns"
#define N_DELIVERY_COLS 13

static bool delivery_from_row(sqlite3_stmt *st, struct store_delivery *d, bool body)
{
	memset(d, 0, sizeof(*d));
	d->id = sqlite3_column_int64(st, 0);
	d->alert_id = col_id16(st, 1);
	d->notifier = store__col_text(st, 2);
	d->kind = store__col_text(st, 3);
	d->seq = (uint32_t)sqlite3_column_int64(st, 4);
	d->idempotency_key = store__col_text(st, 5);
	d->status = sqlite3_column_int(st, 6);
	d->attempts = (uint32_t)sqlite3_column_int64(st, 7);
	d->next_attempt_ns = col_u64(st, 8);
	d->http_status = (long)sqlite3_column_int64(st, 9);
	d->last_error = store__col_text(st, 10);
	d->created_ns = col_u64(st, 11);
	d->updated_ns = col_u64(st, 12);
	if (body) {
		d->body = store__col_text(st, N_DELIVERY_COLS);
		d->body_len = (size_t)sqlite3_column_bytes(st, N_DELIVERY_COLS);
	}
	return d->alert_id != NULL;
}

static int bad_status(struct store *s, int status)
{
	return store__fail(s, "unknown delivery status %d", status);
}

int store_sqlite_delivery_add(struct store *s, const struct store_delivery *d, int64_t *id)
{
	if (!delivery_status_valid(d->status))
		return bad_status(s, d->status);
	sqlite3_stmt *st = astmt(s, ASTMT_DELIVERY_INSERT);
	if (!st)
		return -1;
	bind_id16(st, 1, d->alert_id);
	bind_str(st, 2, d->notifier);
	bind_str(st, 3, d->kind);
	sqlite3_bind_int64(st, 4, d->seq);
	bind_str(st, 5, d->idempotency_key);
	sqlite3_bind_int(st, 6, d->status);
	sqlite3_bind_int64(st, 7, d->attempts);
	bind_u64(st, 8, d->next_attempt_ns);
	sqlite3_bind_int64(st, 9, d->http_status);
	bind_str(st, 10, d->last_error && *d->last_error ? d->last_error : NULL);
	bind_u64(st, 11, d->created_ns);
	bind_u64(st, 12, d->updated_ns);
	sqlite3_bind_text(st, 13, d->body ? d->body : "", d->body ? (int)d->body_len : 0, SQLITE_STATIC);
	if (store__step(s, st, "insert delivery"))
		return -1;
	if (id)
		*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int store_sqlite_delivery_update(struct store *s, int64_t id, int status, uint32_t attempts, uint64_t next_attempt_ns,
			  long http_status, const char *last_error, uint64_t now_ns)
{
	if (!delivery_status_valid(status))
		return bad_status(s, status);
	sqlite3_stmt *st = astmt(s, ASTMT_DELIVERY_UPDATE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, status);
	sqlite3_bind_int64(st, 3, attempts);
	bind_u64(st, 4, next_attempt_ns);
	sqlite3_bind_int64(st, 5, http_status);
	bind_str(st, 6, last_error && *last_error ? last_error : NULL);
	bind_u64(st, 7, now_ns);
	if (store__step(s, st, "update delivery"))
		return -1;
	for (uint32_t i = 0; i < s->n_leases; i++) /* released: the attempt is recorded */
		if (s->leases[i].id == id)
			s->leases[i] = s->leases[--s->n_leases];
	return sqlite3_changes(s->db) > 0;
}

/* Leases live in the handle, not the file: SQLite has one collector (store_lock), so there is
 * no other claimer to exclude but this process's own later claims, and a crash ends every
 * lease at once (docs/architecture.md, "Outbox leases"). */
static bool leased(const struct store *s, int64_t id)
{
	for (uint32_t i = 0; i < s->n_leases; i++)
		if (s->leases[i].id == id)
			return true;
	return false;
}

int store_sqlite_delivery_claim(struct store *s, const char *owner, uint64_t now_ns, uint64_t lease_ns, uint32_t limit,
				store_delivery_cb cb, void *ctx)
{
	const char *why = store_delivery_claim_refusal(owner, lease_ns, limit);
	if (why)
		return store__fail(s, "%s", why);
	if (s->readonly)
		return store__fail(s, "claim deliveries: the handle is read-only");
	if (!s->leases && !(s->leases = malloc(STORE_SQLITE_LEASES_MAX * sizeof(*s->leases))))
		return store__fail(s, "claim deliveries: out of memory");
	uint32_t kept = 0;
	for (uint32_t i = 0; i < s->n_leases; i++) /* ended leases: claimable again */
		if (s->leases[i].until > now_ns)
			s->leases[kept++] = s->leases[i];
	s->n_leases = kept;
	if (limit > STORE_SQLITE_LEASES_MAX - s->n_leases)
		limit = STORE_SQLITE_LEASES_MAX - s->n_leases;
	if (!limit)
		return 0;
	/* pending is a literal: the partial index deliveries_open; the rows leased here are
	 * skipped below, so read that many more */
	sqlite3_stmt *st = prepare(s,
				   "SELECT " DELIVERY_COLS ", body FROM deliveries WHERE status = 0"
				   " AND next_attempt_ns <= ?1 ORDER BY id LIMIT ?2",
				   "prepare claim deliveries");
	if (!st)
		return -1;
	bind_u64(st, 1, now_ns);
	sqlite3_bind_int64(st, 2, (int64_t)limit + s->n_leases);
	int r = SQLITE_DONE, n = 0;
	while ((uint32_t)n < limit && (r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_delivery d;
		if (!delivery_from_row(st, &d, true) || leased(s, d.id))
			continue;
		s->leases[s->n_leases++] = (struct store_lease){.id = d.id, .until = now_ns + lease_ns};
		n++;
		cb(ctx, &d);
	}
	return finish(s, st, r, "claim deliveries") ? -1 : n;
}

int store_sqlite_list_deliveries_by_status(struct store *s, int status, int64_t after_id, uint32_t limit, bool with_body,
				    store_delivery_cb cb, void *ctx)
{
	if (!delivery_status_valid(status))
		return bad_status(s, status);
	/* the status is written into the statement: the planner uses the partial index
	 * deliveries_open (pending, dead) only for a literal it can match against the index's
	 * WHERE; the other statuses walk the table by id */
	char sql[512];
	struct errq_buf q;
	errq_buf_init_fixed(&q, sql, sizeof(sql));
	errq_buf_addstr(&q, with_body ? "SELECT " DELIVERY_COLS ", body" : "SELECT " DELIVERY_COLS);
	/* an integer, checked by delivery_status_valid: no text of input enters the statement */
	errq_buf_printf(&q, " FROM deliveries WHERE status = %d AND id > ?1 ORDER BY id LIMIT ?2", status);
	sqlite3_stmt *st = prepare(s, sql, "prepare list deliveries");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int64(st, 2, limit);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_delivery d;
		if (!delivery_from_row(st, &d, with_body))
			continue;
		if (cb(ctx, &d))
			break;
	}
	return finish(s, st, r, "list deliveries");
}

int store_sqlite_list_deliveries(struct store *s, const uint8_t alert_id[16], store_delivery_cb cb, void *ctx)
{
	sqlite3_stmt *st = prepare(s, "SELECT " DELIVERY_COLS " FROM deliveries WHERE alert_id = ?1 ORDER BY id",
				   "prepare list deliveries");
	if (!st)
		return -1;
	sqlite3_bind_blob(st, 1, alert_id, 16, SQLITE_STATIC);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_delivery d;
		if (!delivery_from_row(st, &d, false))
			continue;
		if (cb(ctx, &d))
			break;
	}
	return finish(s, st, r, "list deliveries");
}

int store_sqlite_get_delivery(struct store *s, int64_t id, store_delivery_cb cb, void *ctx)
{
	sqlite3_stmt *st =
	    prepare(s, "SELECT " DELIVERY_COLS ", body FROM deliveries WHERE id = ?1", "prepare get delivery");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		struct store_delivery d;
		int rc = delivery_from_row(st, &d, true) ? 1 : 0;
		if (rc)
			cb(ctx, &d);
		sqlite3_finalize(st);
		return rc;
	}
	return finish(s, st, r, "get delivery");
}

/* ---- silences ---- */

int store_sqlite_silence_add(struct store *s, const struct store_silence *si, int64_t *id)
{
	sqlite3_stmt *st = astmt(s, ASTMT_SILENCE_INSERT);
	if (!st)
		return -1;
	bind_str(st, 1, si->rule);
	bind_str(st, 2, si->matchers ? si->matchers : "");
	bind_str(st, 3, si->comment);
	bind_str(st, 4, si->created_by);
	bind_u64(st, 5, si->created_ns);
	bind_u64(st, 6, si->starts_ns);
	bind_u64(st, 7, si->ends_ns);
	bind_u64(st, 8, si->expired_ns);
	if (store__step(s, st, "insert silence"))
		return -1;
	if (id)
		*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int store_sqlite_silence_expire(struct store *s, int64_t id, uint64_t now_ns)
{
	sqlite3_stmt *st = astmt(s, ASTMT_SILENCE_EXPIRE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	bind_u64(st, 2, now_ns);
	if (store__step(s, st, "expire silence"))
		return -1;
	return sqlite3_changes(s->db) > 0;
}

#define SILENCE_COLS "id, rule, matchers, comment, created_by, created_ns, starts_ns, ends_ns, expired_ns"

static void silence_from_row(sqlite3_stmt *st, struct store_silence *si)
{
	*si = (struct store_silence){
	    .id = sqlite3_column_int64(st, 0),
	    .rule = store__col_text(st, 1),
	    .matchers = store__col_text(st, 2),
	    .comment = store__col_text(st, 3),
	    .created_by = store__col_text(st, 4),
	    .created_ns = col_u64(st, 5),
	    .starts_ns = col_u64(st, 6),
	    .ends_ns = col_u64(st, 7),
	    .expired_ns = col_u64(st, 8),
	};
}

int store_sqlite_get_silence(struct store *s, int64_t id, store_silence_cb cb, void *ctx)
{
	sqlite3_stmt *st = prepare(s, "SELECT " SILENCE_COLS " FROM silences WHERE id = ?1", "prepare get silence");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		struct store_silence si;
		silence_from_row(st, &si);
		cb(ctx, &si);
	}
	int rc = finish(s, st, r, "get silence");
	return rc ? -1 : r == SQLITE_ROW;
}

int store_sqlite_list_silences(struct store *s, enum store_silence_list which, uint64_t now_ns, uint32_t limit,
			       store_silence_cb cb, void *ctx)
{
	/* in force: starts_ns <= now < ends_ns, and not expired at or before now; not ended: the
	 * same without the start */
	static const char *const sql[] = {
	    [STORE_SILENCES_IN_FORCE] = "SELECT " SILENCE_COLS " FROM silences WHERE starts_ns <= ?1 AND ends_ns > ?1"
					" AND (expired_ns = 0 OR expired_ns > ?1) ORDER BY id DESC LIMIT ?2",
	    [STORE_SILENCES_ALL] = "SELECT " SILENCE_COLS " FROM silences ORDER BY id DESC LIMIT ?2",
	    [STORE_SILENCES_NOT_ENDED] = "SELECT " SILENCE_COLS " FROM silences WHERE ends_ns > ?1"
					 " AND (expired_ns = 0 OR expired_ns > ?1) ORDER BY id DESC LIMIT ?2",
	};
	if ((unsigned)which > STORE_SILENCES_NOT_ENDED)
		return store__fail(s, "list silences: no list %d", which);
	sqlite3_stmt *st = prepare(s, sql[which], "prepare list silences");
	if (!st)
		return -1;
	bind_u64(st, 1, now_ns);
	sqlite3_bind_int64(st, 2, limit ? (int64_t)limit : -1);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_silence si;
		silence_from_row(st, &si);
		if (cb(ctx, &si))
			break;
	}
	return finish(s, st, r, "list silences");
}

/* ---- outcome batches ---- */

int store_sqlite_outcome_batch_seen(struct store *s, const uint8_t batch_id[16], uint64_t received_ns)
{
	sqlite3_stmt *st = astmt(s, ASTMT_BATCH_INSERT);
	if (!st)
		return -1;
	sqlite3_bind_blob(st, 1, batch_id, 16, SQLITE_STATIC);
	bind_u64(st, 2, received_ns);
	if (store__step(s, st, "record outcome batch"))
		return -1;
	return sqlite3_changes(s->db) > 0; /* 0: ignored, the id was there */
}

/* Runs one DELETE statement i bound with (cutoff, limit): the rows deleted, or -1. */
static int prune_rows(struct store *s, enum store_alert_stmt i, uint64_t cutoff, uint32_t limit, const char *what)
{
	sqlite3_stmt *st = astmt(s, i);
	if (!st)
		return -1;
	bind_u64(st, 1, cutoff);
	sqlite3_bind_int64(st, 2, limit);
	if (store__step(s, st, what))
		return -1;
	return sqlite3_changes(s->db);
}

int store__outcome_batches_prune_step(struct store *s, uint64_t older_than_ns, uint32_t limit, bool *more)
{
	int n = prune_rows(s, ASTMT_BATCH_PRUNE, older_than_ns, limit, "prune outcome batches");
	if (n >= 0 && limit && (uint32_t)n >= limit)
		*more = true;
	return n;
}

/* Transitions received before the cutoff, oldest first, stopping at the first younger one
 * (ids are in time order, as events are for retention): reads at most limit rows. */
static int prune_transitions(struct store *s, uint64_t cutoff, uint32_t limit, bool *more)
{
	sqlite3_stmt *st = astmt(s, ASTMT_PRUNE_TRANSITIONS_SCAN);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, limit);
	int64_t last = 0;
	uint32_t n = 0;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (col_u64(st, 1) >= cutoff)
			break;
		last = sqlite3_column_int64(st, 0);
		n++;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		store__set_err(s, "prune transitions");
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	if (!n)
		return 0;
	if (n >= limit)
		*more = true;
	st = astmt(s, ASTMT_PRUNE_TRANSITIONS);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, last);
	if (store__step(s, st, "prune transitions"))
		return -1;
	return sqlite3_changes(s->db);
}

int store__alerts_prune_step(struct store *s, uint64_t older_than_ns, uint32_t limit, bool *more)
{
	if (!limit)
		return 0;
	int total = 0, n;
	if ((n = prune_transitions(s, older_than_ns, limit, more)) < 0)
		return -1;
	total += n;
	/* the outbox rows of the alerts about to go, then the alerts (the same selection: the
	 * first delete removes only delivered and silenced rows, which it does not look at) */
	if ((n = prune_rows(s, ASTMT_PRUNE_DELIVERIES, older_than_ns, limit, "prune deliveries")) < 0)
		return -1;
	total += n;
	if ((n = prune_rows(s, ASTMT_PRUNE_ALERTS, older_than_ns, limit, "prune alerts")) < 0)
		return -1;
	total += n;
	if ((uint32_t)n >= limit)
		*more = true;
	if ((n = prune_rows(s, ASTMT_PRUNE_SILENCES, older_than_ns, limit, "prune silences")) < 0)
		return -1;
	total += n;
	if ((uint32_t)n >= limit)
		*more = true;
	return total;
}

/* Runs step in a transaction of its own (upkeep, between the writer's transactions). */
static int in_own_txn(struct store *s, uint64_t older_than_ns, uint32_t limit,
		      int (*step)(struct store *, uint64_t, uint32_t, bool *))
{
	if (store__own_txn_begin(s, "prune"))
		return -1;
	bool more = false;
	return store__own_txn_end(s, step(s, older_than_ns, limit, &more), "prune");
}

int store_sqlite_outcome_batches_prune(struct store *s, uint64_t older_than_ns, uint32_t limit)
{
	return in_own_txn(s, older_than_ns, limit, store__outcome_batches_prune_step);
}

int store_sqlite_alerts_prune(struct store *s, uint64_t older_than_ns, uint32_t limit)
{
	return in_own_txn(s, older_than_ns, limit, store__alerts_prune_step);
}
