/* pg_maint.c: the PostgreSQL writer's writes that are not ingest — group status changes and
 * the background upkeep, each step bounded and in short transactions of its own.
 *
 * Retention goes a day partition at a time: a day partition whose end (the next day's first
 * ms, by the ids' clock) is older than the retention cutoff is dropped whole — one catalog
 * change instead of a delete per row, and no dead rows for VACUUM.  So on PostgreSQL an
 * event is kept until its whole day has passed retention (up to a day longer than on
 * SQLite), and by the clock in its id (the client's), not received_ns.  events_default (ids
 * outside every day partition) is swept by received_ns, at most max_rows rows a step.  The
 * groups' stored counts are lowered by what each drop or delete removed.
 *
 * The per-group cap deletes the oldest events of the groups storing more than the cap
 * (their ids' order, from the index (group_id, id)), at most max_rows a step.  Folding
 * minute counts into hours and the alerting tables' pruning are SQLite's, in SQL of this
 * server.  Day partitions ahead are created when the day changes (pg_schema.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"
#include "errq_str.h"
#include "errq_banned.h"

#define NS_PER_MINUTE 60000000000ULL
#define MS_PER_DAY 86400000LL
#define CAP_GROUPS_STEP 64 /* groups over the cap one step looks at */

struct store_pg_maint {
	int64_t partitions_day;   /* the day whose partitions ahead were made (by this handle) */
	uint64_t detach_next_try; /* no detach before this (one timed out waiting for events) */
	uint64_t cap_next_check;  /* when to look for groups over the cap again */
	uint64_t fold_next_check; /* when to look for minute counts to fold again */
};

void store_pg__maint_free(struct store *s)
{
	free(store_pg(s)->m);
	store_pg(s)->m = NULL;
}

int store_pg_set_group_status(struct store *s, const char *fingerprint, const char *status, uint64_t now_ns)
{
	static const struct store_pg_stmt st = {
	    "errq_set_status",
	    "UPDATE groups SET status = $2::text,"
	    " regression = CASE WHEN $2::text = 'resolved' THEN false ELSE regression END,"
	    " resolved_at = CASE WHEN $2::text = 'resolved' THEN $3::bigint ELSE resolved_at END"
	    " WHERE fingerprint = $1::text",
	    3, NULL};
	if (strcmp(status, "unresolved") && strcmp(status, "resolved") && strcmp(status, "ignored"))
		return store_pg_fail(s, "unknown status '%s'", status);
	char now[24];
	errq_snprintf(now, sizeof(now), "%lld", (long long)now_ns);
	const char *v[] = {fingerprint, status, now};
	PGresult *r = store_pg_run(s, &st, "set status", v, NULL, NULL, 0);
	if (!r)
		return -1;
	int rc = atoi(PQcmdTuples(r)) > 0;
	PQclear(r);
	return rc;
}

/* Lowers the stored counts of the groups in r (rows of group_id, n: binary), in id order. */
static int lower_stored(struct store *s, PGresult *r)
{
	static const struct store_pg_stmt st = {
	    "errq_lower_stored",
	    "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS v(id, n)),"
	    " l AS MATERIALIZED (SELECT id FROM groups WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE)"
	    " UPDATE groups g SET stored = greatest(g.stored - v.n, 0) FROM v JOIN l ON l.id = v.id WHERE g.id = v.id",
	    2, NULL};
	if (!PQntuples(r))
		return 0;
	struct store_pg_array a[2];
	store_pg_array_init(&a[0], STORE_PG_INT8OID);
	store_pg_array_init(&a[1], STORE_PG_INT8OID);
	for (int i = 0; i < PQntuples(r); i++) {
		store_pg_array_i64(&a[0], store_pg_col_i64(r, i, 0));
		store_pg_array_i64(&a[1], store_pg_col_i64(r, i, 1));
	}
	const char *vals[2];
	int lens[2], fmts[2] = {1, 1};
	PGresult *u = NULL;
	if ((vals[0] = store_pg_array_finish(&a[0], &lens[0])) && (vals[1] = store_pg_array_finish(&a[1], &lens[1])))
		u = store_pg_run(s, &st, "lower stored counts", vals, lens, fmts, 0);
	else
		store_pg_fail(s, "lower stored counts: too many groups");
	store_pg_array_free(&a[0]);
	store_pg_array_free(&a[1]);
	PQclear(u);
	return u ? 0 : -1;
}

/* Accounts for the rows a step deleted, r (group_id, rows: binary; PQcleared here): lowers
 * those groups' stored counts, and counts them in the write stats (by_cause: which cause's
 * tally) and in *n when not NULL. */
static int deleted(struct store *s, PGresult *r, uint64_t *by_cause, uint64_t *n)
{
	uint64_t k = 0;
	for (int i = 0; i < PQntuples(r); i++)
		k += (uint64_t)store_pg_col_i64(r, i, 1);
	int rc = lower_stored(s, r);
	PQclear(r);
	if (rc)
		return -1;
	store_pg(s)->wst.events_deleted += k;
	*by_cause += k;
	if (n)
		*n = k;
	return 0;
}

/* Retention of a day partition, in two parts, so that nothing waits on events for longer
 * than a catalog change:
 *  1. detach_step, in a transaction of its own: the oldest day partition whose end is older
 *     than the cutoff is detached from events and renamed events_gone_YYYYMMDD, then
 *     committed at once.  DETACH PARTITION (as DROP TABLE of a partition) takes ACCESS
 *     EXCLUSIVE on events: every insert and query of every replica queues behind it while it
 *     waits, so it waits at most STORE_PG_DETACH_LOCK_TIMEOUT_MS (lock_timeout, then given up
 *     until STORE_PG_DETACH_RETRY_NS later) and holds it only for the catalog change.
 *     (DETACH ... CONCURRENTLY, which takes SHARE UPDATE EXCLUSIVE, is refused on a table
 *     with a default partition: events has events_default.)
 *  2. gone_step, inside the upkeep's transaction: at most max_rows rows of the detached table
 *     are deleted a step (the budget of every event sweep, as on SQLite), the groups' stored
 *     counts lowered by what went in the same transaction (exact after a crash: a row is
 *     gone if and only if it was discounted), and the emptied table dropped, which locks it
 *     alone: no replica's ingest or query sees it any more.
 * Between the two its rows are in no query's reach and still in the groups' stored counts
 * (the per-group cap then deletes a little early: the next steps run gone_step first). */

/* An advisory lock (ERRQ_PG_LOCK_PARTITION, ERRQ_PG_LOCK_SWEEP) taken with
 * pg_try_advisory_xact_lock: 1 when this transaction has it, 0 when another replica's upkeep
 * (or partition maker) holds it, -1. */
static int try_xact_lock(struct store *s, int64_t lock)
{
	static const struct store_pg_stmt trylock = {"errq_part_trylock",
						     "SELECT pg_try_advisory_xact_lock($1::bigint)::int", 1, NULL};
	char key[24];
	errq_snprintf(key, sizeof(key), "%lld", (long long)lock);
	const char *kv[] = {key};
	PGresult *r = store_pg_run(s, &trylock, "take an upkeep lock", kv, NULL, NULL, 1);
	if (!r)
		return -1;
	int mine = store_pg_col_i64(r, 0, 0) == 1;
	PQclear(r);
	return mine;
}

/* The date of an events_YYYYMMDD or events_gone_YYYYMMDD name (prefix: "events_" or
 * "events_gone_"): true and *day (days since 1970) when it is one. */
static bool name_day(const char *name, const char *prefix, int *y, int *mo, int *d, int64_t *day)
{
	size_t n = strlen(prefix);
	if (strncmp(name, prefix, n) || strlen(name) != n + 8 || sscanf(name + n, "%4d%2d%2d", y, mo, d) != 3 ||
	    *y < 1970 || *y > 9999 || *mo < 1 || *mo > 12 || *d < 1 || *d > 31)
		return false;
	/* days_from_civil (H. Hinnant) */
	int yy = *y - (*mo <= 2);
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;
	int64_t doy = (153 * (*mo > 2 ? *mo - 3 : *mo + 9) + 2) / 5 + *d - 1;
	*day = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
	return true;
}

/* Part 1 (above): detaches the oldest due day partition, in a transaction of its own (never
 * inside the caller's).  0 also when none is due, another replica holds the partitions'
 * lock, or the lock on events was not had in time (tried again later); -1 on an error. */
static int detach_step(struct store *s, int64_t cutoff_ms, uint64_t now_ns)
{
	static const struct store_pg_stmt oldest = {
	    "errq_oldest_partition",
	    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
	    " WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_[0-9]{8}$' ORDER BY c.relname LIMIT 1",
	    0, NULL};
	struct store_pg_maint *m = store_pg(s)->m;
	if (now_ns < m->detach_next_try)
		return 0;
	if (store_pg_own_txn_begin(s, "retention"))
		return -1;
	int rc = try_xact_lock(s, ERRQ_PG_LOCK_PARTITION);
	PGresult *r = NULL;
	int y = 0, mo = 0, d = 0;
	int64_t day = 0;
	/* another replica's upkeep at it (two DROPs that had each taken a partition's lock each
	 * waited for the other's: a deadlock): the holder does it, nobody waits */
	if (rc == 1 && (r = store_pg_run(s, &oldest, "find the oldest partition", NULL, NULL, NULL, 0)) == NULL)
		rc = -1;
	if (rc == 1 && (!PQntuples(r) || !name_day(PQgetvalue(r, 0, 0), "events_", &y, &mo, &d, &day) ||
			(day + 1) * MS_PER_DAY > cutoff_ms))
		rc = 0; /* none due */
	PQclear(r);
	if (rc == 1) {
		char sql[256];
		/* integers only in the SQL (the lock timeout, the day) */
		errq_snprintf(sql, sizeof(sql),
			      "SET LOCAL lock_timeout = %d; ALTER TABLE events DETACH PARTITION events_%04d%02d%02d;"
			      " ALTER TABLE events_%04d%02d%02d RENAME TO events_gone_%04d%02d%02d",
			      STORE_PG_DETACH_LOCK_TIMEOUT_MS, y, mo, d, y, mo, d, y, mo, d);
		rc = store_pg_exec(s, sql, "detach a day partition");
	}
	if (store_pg_own_txn_end(s, rc, "retention") >= 0)
		return 0;
	if (!store_pg_last_busy(s))
		return -1;
	/* queued behind a long transaction on events: given up so as not to hold every user of
	 * events behind this request; the rest of the upkeep goes on */
	m->detach_next_try = now_ns + STORE_PG_DETACH_RETRY_NS;
	return 0;
}

/* Part 2 (above), inside the upkeep's transaction: at most max_rows rows of the oldest
 * detached day, discounted from their groups; the table dropped once empty. */
static int gone_step(struct store *s, int max_rows, bool *more)
{
	static const struct store_pg_stmt gone = {
	    "errq_gone_partition",
	    "SELECT c.relname::text FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ '^events_gone_[0-9]{8}$'"
	    " AND pg_table_is_visible(c.oid) ORDER BY c.relname LIMIT 1",
	    0, NULL};
	PGresult *r = store_pg_run(s, &gone, "find a detached partition", NULL, NULL, NULL, 0);
	if (!r)
		return -1;
	int y = 0, mo = 0, d = 0;
	int64_t day;
	bool found = PQntuples(r) && name_day(PQgetvalue(r, 0, 0), "events_gone_", &y, &mo, &d, &day);
	PQclear(r);
	if (!found)
		return 0;
	/* its own lock, not the partitions': held to the end of the upkeep's transaction, which
	 * may wait for group rows, it must not hold back a replica making partitions */
	int mine = try_xact_lock(s, ERRQ_PG_LOCK_SWEEP);
	if (mine <= 0)
		return mine; /* another replica's upkeep is at it */
	char sql[512], lim[16];
	/* integers only in the SQL (the day); the oldest ids first, from the table's (id) index */
	errq_snprintf(sql, sizeof(sql),
		      "WITH d AS (DELETE FROM events_gone_%04d%02d%02d WHERE id IN (SELECT id FROM"
		      " events_gone_%04d%02d%02d ORDER BY id LIMIT $1::bigint) RETURNING group_id)"
		      " SELECT group_id, count(*) FROM d GROUP BY group_id ORDER BY group_id",
		      y, mo, d, y, mo, d);
	const struct store_pg_stmt del = {NULL, sql, 1, NULL};
	errq_snprintf(lim, sizeof(lim), "%d", max_rows);
	const char *v[] = {lim};
	if (!(r = store_pg_run(s, &del, "retention of a detached day", v, NULL, NULL, 1)))
		return -1;
	uint64_t n;
	if (deleted(s, r, &store_pg(s)->wst.events_deleted_retention, &n))
		return -1;
	*more = true; /* rows left, or the next day may be due too */
	if (n >= (uint64_t)max_rows)
		return 0;
	errq_snprintf(sql, sizeof(sql), "DROP TABLE events_gone_%04d%02d%02d", y, mo, d);
	return store_pg_exec(s, sql, "drop a detached day");
}

/* Deletes rows of events_default received before the cutoff, at most max_rows. */
static int default_retention_step(struct store *s, uint64_t cutoff_ns, int max_rows, bool *more)
{
	static const struct store_pg_stmt st = {
	    "errq_default_retention",
	    "WITH d AS (DELETE FROM events_default WHERE ctid = ANY(ARRAY(SELECT ctid FROM events_default"
	    " WHERE received_ns < $1::bigint LIMIT $2::bigint)) RETURNING group_id)"
	    " SELECT group_id, count(*) FROM d GROUP BY group_id ORDER BY group_id",
	    2, NULL};
	char cut[24], lim[16];
	errq_snprintf(cut, sizeof(cut), "%lld", (long long)cutoff_ns);
	errq_snprintf(lim, sizeof(lim), "%d", max_rows);
	const char *v[] = {cut, lim};
	PGresult *r = store_pg_run(s, &st, "retention of events_default", v, NULL, NULL, 1);
	if (!r)
		return -1;
	uint64_t n;
	if (deleted(s, r, &store_pg(s)->wst.events_deleted_retention, &n))
		return -1;
	if (n >= (uint64_t)max_rows)
		*more = true;
	return 0;
}

/* Folds minute counts older than the cutoff into hourly ones, an hour a step, the oldest
 * first (as SQLite's fold_step: whole hours, looked for at most every STORE_FOLD_CHECK_NS
 * after a look that found none). */
static int fold_step(struct store *s, int64_t cutoff_minute, uint64_t now_ns, bool *more)
{
	static const struct store_pg_stmt oldest = {"errq_fold_oldest", "SELECT min(minute) FROM group_minutes", 0,
						    NULL};
	static const struct store_pg_stmt fold[] = {
	    /* each answers the minute rows it folded */
	    {"errq_fold_groups",
	     "WITH d AS (DELETE FROM group_minutes WHERE minute >= $1::bigint AND minute < $2::bigint"
	     " RETURNING group_id, env_id, count),"
	     " i AS (INSERT INTO group_hours (group_id, hour, env_id, count)"
	     " SELECT group_id, $1::bigint / 60, env_id, sum(count) FROM d GROUP BY group_id, env_id"
	     " ORDER BY group_id, env_id"
	     " ON CONFLICT (group_id, hour, env_id) DO UPDATE SET count = group_hours.count + excluded.count"
	     " RETURNING 1) SELECT count(*) FROM d",
	     2, NULL},
	    {"errq_fold_services",
	     "WITH d AS (DELETE FROM service_minutes WHERE minute >= $1::bigint AND minute < $2::bigint"
	     " RETURNING service, count, dropped),"
	     " i AS (INSERT INTO service_hours (service, hour, count, dropped)"
	     " SELECT service, $1::bigint / 60, sum(count), sum(dropped) FROM d GROUP BY service ORDER BY service"
	     " ON CONFLICT (service, hour) DO UPDATE SET count = service_hours.count + excluded.count,"
	     " dropped = service_hours.dropped + excluded.dropped RETURNING 1) SELECT count(*) FROM d",
	     2, NULL},
	};
	struct store_pg_maint *m = store_pg(s)->m;
	if (now_ns < m->fold_next_check)
		return 0;
	PGresult *r = store_pg_run(s, &oldest, "fold", NULL, NULL, NULL, 1);
	if (!r)
		return -1;
	bool any = PQntuples(r) && !PQgetisnull(r, 0, 0);
	int64_t first = any ? store_pg_col_i64(r, 0, 0) : -1;
	PQclear(r);
	if (first < 0 || (first / 60 + 1) * 60 > cutoff_minute) {
		m->fold_next_check = now_ns + STORE_FOLD_CHECK_NS;
		return 0;
	}
	char lo[24], hi[24];
	errq_snprintf(lo, sizeof(lo), "%lld", (long long)(first / 60 * 60));
	errq_snprintf(hi, sizeof(hi), "%lld", (long long)(first / 60 * 60 + 60));
	const char *v[] = {lo, hi};
	for (size_t i = 0; i < sizeof(fold) / sizeof(fold[0]); i++) {
		if (!(r = store_pg_run(s, &fold[i], "fold minutes", v, NULL, NULL, 1)))
			return -1;
		if (i == 0)
			store_pg(s)->wst.minutes_folded += (uint64_t)store_pg_col_i64(r, 0, 0);
		PQclear(r);
	}
	*more = true;
	return 0;
}

/* The per-group cap: the oldest events of groups storing more than cap, at most max_rows a
 * step.  Looked for every STORE_CAP_CHECK_NS (a scan of groups), every STORE_CAP_RECHECK_NS
 * after a step that deleted. */
static int cap_step(struct store *s, uint32_t cap, uint64_t now_ns, int max_rows, bool *more)
{
	static const struct store_pg_stmt over = {
	    "errq_cap_over",
	    "SELECT id, stored - $1::bigint FROM groups WHERE stored > $1::bigint ORDER BY id LIMIT $2::bigint", 2,
	    NULL};
	/* the n oldest of a group: those at or before its n-th oldest id */
	static const struct store_pg_stmt del = {
	    "errq_cap_delete",
	    "WITH d AS (DELETE FROM events WHERE group_id = $1::bigint AND id <= (SELECT id FROM events"
	    " WHERE group_id = $1::bigint ORDER BY id OFFSET $2::bigint - 1 LIMIT 1) RETURNING group_id)"
	    " SELECT group_id, count(*) FROM d GROUP BY group_id",
	    2, NULL};
	static const struct store_pg_stmt recount = {
	    "errq_cap_recount",
	    "UPDATE groups SET stored = (SELECT count(*) FROM events WHERE group_id = $1::bigint)"
	    " WHERE id = $1::bigint",
	    1, NULL};
	struct store_pg *p = store_pg(s);
	struct store_pg_maint *m = p->m;
	if (now_ns < m->cap_next_check)
		return 0;
	char capv[16], lim[16];
	errq_snprintf(capv, sizeof(capv), "%u", cap);
	errq_snprintf(lim, sizeof(lim), "%d", CAP_GROUPS_STEP);
	const char *ov[] = {capv, lim};
	PGresult *r = store_pg_run(s, &over, "cap check", ov, NULL, NULL, 1);
	if (!r)
		return -1;
	int64_t budget = max_rows, total = 0;
	int groups = PQntuples(r), rc = 0;
	for (int i = 0; i < groups && budget > 0 && !rc; i++) {
		int64_t n = store_pg_col_i64(r, i, 1);
		if (n > budget)
			n = budget;
		char gid[24], nv[24];
		errq_snprintf(gid, sizeof(gid), "%lld", (long long)store_pg_col_i64(r, i, 0));
		errq_snprintf(nv, sizeof(nv), "%lld", (long long)n);
		const char *dv[] = {gid, nv};
		PGresult *d = store_pg_run(s, &del, "cap delete", dv, NULL, NULL, 1);
		if (!d) {
			rc = -1;
			break;
		}
		uint64_t k = 0;
		rc = deleted(s, d, &p->wst.events_deleted_cap, &k);
		budget -= (int64_t)k;
		total += (int64_t)k;
		if (!rc && k < (uint64_t)n) { /* stored counts rows the table does not have: true it up */
			PGresult *t = store_pg_run(s, &recount, "recount a group", dv, NULL, NULL, 0); /* gid */
			rc = t ? 0 : -1;
			PQclear(t);
			break;
		}
	}
	PQclear(r);
	if (rc)
		return -1;
	bool go_on = total && (budget <= 0 || groups == CAP_GROUPS_STEP); /* over the cap still, likely */
	m->cap_next_check = go_on ? now_ns : now_ns + (total ? STORE_CAP_RECHECK_NS : STORE_CAP_CHECK_NS);
	*more |= go_on;
	return 0;
}

int store_pg_maintain(struct store *s, const struct store_maint_opts *o, bool *more)
{
	struct store_pg *p = store_pg(s);
	*more = false;
	if (!p->w)
		return store_pg_fail(s, "maintenance on a read-only handle");
	if (!p->m && !(p->m = calloc(1, sizeof(*p->m))))
		return store_pg_fail(s, "out of memory for upkeep");
	/* the day partitions ahead, once a day (each in a transaction of its own) */
	int64_t today = (int64_t)(o->now_ns / 1000000ULL) / MS_PER_DAY;
	if (p->m->partitions_day != today) {
		if (store_pg_ensure_partitions(s, o->now_ns, STORE_PG_PARTITIONS_AHEAD, NULL))
			return -1;
		p->m->partitions_day = today;
	}
	int max_rows = o->max_rows ? (int)o->max_rows : STORE_MAINT_BATCH;
	if (max_rows > STORE_MAINT_MAX_ROWS)
		max_rows = STORE_MAINT_MAX_ROWS;
	bool retain = o->retention_ns && o->now_ns > o->retention_ns;
	uint64_t cutoff = retain ? o->now_ns - o->retention_ns : 0;
	if (retain && detach_step(s, (int64_t)(cutoff / 1000000ULL), o->now_ns))
		return -1;
	if (store_pg_own_txn_begin(s, "maintenance"))
		return -1;
	int rc = gone_step(s, max_rows, more); /* also when retention was turned off since */
	if (!rc && retain) {
		rc = default_retention_step(s, cutoff, max_rows, more);
		if (!rc)
			rc = fold_step(s, (int64_t)(cutoff / NS_PER_MINUTE), o->now_ns, more);
	}
	if (!rc && o->per_group_cap)
		rc = cap_step(s, o->per_group_cap, o->now_ns, max_rows, more);
	if (!rc && o->now_ns > STORE_OUTCOME_BATCH_HORIZON_NS &&
	    store_pg_outcome_batches_prune_step(s, o->now_ns - STORE_OUTCOME_BATCH_HORIZON_NS, STORE_MAINT_BATCH,
						more) < 0)
		rc = -1;
	uint64_t history = o->alert_history_ns ? o->alert_history_ns : STORE_ALERT_HISTORY_NS;
	if (!rc && o->now_ns > history &&
	    store_pg_alerts_prune_step(s, o->now_ns - history, STORE_MAINT_BATCH, more) < 0)
		rc = -1;
	return store_pg_own_txn_end(s, rc ? -1 : 0, "maintenance") < 0 ? -1 : 0;
}
