/* store_maint.c: the writer's writes that are not ingest — group status changes and the
 * background upkeep (retention, the per-group cap, folding old minute counts into hours,
 * pruning the alerting tables, incremental vacuum).  Each runs in a short transaction of
 * its own on the writer handle, between ingest transactions, and does a bounded amount of
 * work (STORE_MAINT_BATCH rows), so the writer is never held for more than a few
 * milliseconds by upkeep. */
#include <string.h>

#include "store_int.h"
#include "storage_alerts.h"
#include "errq_str.h"
#include "errq_banned.h"

#define NS_PER_MINUTE 60000000000ULL

int store_set_group_status(struct store *s, const char *fingerprint, const char *status, uint64_t now_ns)
{
	if (strcmp(status, "unresolved") && strcmp(status, "resolved") && strcmp(status, "ignored")) {
		errq_snprintf(s->err, sizeof(s->err), "unknown status '%s'", status);
		return -1;
	}
	sqlite3_stmt *st = NULL;
	if (store_agg_flush(s)) /* events before the change must not count as a regression after it */
		return -1;
	if (sqlite3_prepare_v2(s->db,
			       "UPDATE groups SET status = ?2,"
			       " regression = CASE WHEN ?2 = 'resolved' THEN 0 ELSE regression END,"
			       " resolved_at = CASE WHEN ?2 = 'resolved' THEN ?3 ELSE resolved_at END"
			       " WHERE fingerprint = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare set status");
	sqlite3_bind_text(st, 1, fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)now_ns);
	int r = sqlite3_step(st);
	int rc = r == SQLITE_DONE ? (sqlite3_changes(s->db) > 0) : store__set_err(s, "set status");
	sqlite3_finalize(st);
	return rc;
}

/* Deletes the given events (rowid, group id pairs) and lowers their groups' stored counts. */
static int delete_rows(struct store *s, const int64_t (*rows)[2], int n, uint64_t *by_cause)
{
	sqlite3_stmt *del = NULL, *dec = NULL;
	int rc = -1;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM events WHERE id = ?1", -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE groups SET stored = max(stored - 1, 0) WHERE id = ?1", -1, &dec, NULL) !=
		SQLITE_OK) {
		store__set_err(s, "prepare delete");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		sqlite3_bind_int64(del, 1, rows[i][0]);
		if (sqlite3_step(del) != SQLITE_DONE) {
			store__set_err(s, "delete event");
			goto out;
		}
		sqlite3_reset(del);
		sqlite3_bind_int64(dec, 1, rows[i][1]);
		if (sqlite3_step(dec) != SQLITE_DONE) {
			store__set_err(s, "lower stored count");
			goto out;
		}
		sqlite3_reset(dec);
	}
	s->wst.events_deleted += (uint64_t)n;
	*by_cause += (uint64_t)n;
	rc = 0;
out:
	sqlite3_finalize(del);
	sqlite3_finalize(dec);
	return rc;
}

/* Retention: the oldest events (rowid order is receive order) received before the cutoff. */
static int retention_step(struct store *s, uint64_t cutoff_ns, bool *more)
{
	static int64_t rows[STORE_MAINT_BATCH][2];
	sqlite3_stmt *st = NULL;
	int n = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT id, group_id, received_ns FROM events ORDER BY id LIMIT ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return store__set_err(s, "prepare retention");
	sqlite3_bind_int(st, 1, STORE_MAINT_BATCH);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if ((uint64_t)sqlite3_column_int64(st, 2) >= cutoff_ns)
			break;
		rows[n][0] = sqlite3_column_int64(st, 0);
		rows[n][1] = sqlite3_column_int64(st, 1);
		n++;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return store__set_err(s, "retention scan");
	if (n == STORE_MAINT_BATCH)
		*more = true;
	return n ? delete_rows(s, (const int64_t(*)[2])rows, n, &s->wst.events_deleted_retention) : 0;
}

/* Whether some group stores more than cap: a scan of the groups table, so it runs at most
 * every STORE_CAP_CHECK_NS. */
static int any_group_over(struct store *s, uint32_t cap, bool *over)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM groups WHERE stored > ?1 LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare cap check");
	sqlite3_bind_int64(st, 1, cap);
	int r = sqlite3_step(st);
	*over = r == SQLITE_ROW;
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : store__set_err(s, "cap check");
}

/* The per-group cap: when some group is over it, sweeps the table from the oldest row to the
 * newest, STORE_MAINT_BATCH rows a step, deleting events of groups that store more than cap.
 * Deleting in age order keeps each group's newest events (its chain's head side).  The cap
 * is therefore enforced eventually, at the sweep's pace, not at every insert. */
static int cap_step(struct store *s, uint32_t cap, uint64_t now_ns, bool *more)
{
	static int64_t rows[STORE_MAINT_BATCH][2];
	if (!s->cap_sweeping) {
		if (now_ns < s->cap_next_check)
			return 0;
		s->cap_next_check = now_ns + STORE_CAP_CHECK_NS;
		bool over = false;
		if (any_group_over(s, cap, &over))
			return -1;
		if (!over)
			return 0;
		s->cap_sweeping = true;
		s->cap_cursor = 0;
	}
	sqlite3_stmt *st = NULL, *q = NULL;
	int n = 0, rc = -1;
	struct {
		int64_t gid, over;
	} over[STORE_MAINT_BATCH / 8];
	int nover = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT id, group_id FROM events WHERE id > ?1 ORDER BY id LIMIT ?2", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT stored FROM groups WHERE id = ?1", -1, &q, NULL) != SQLITE_OK) {
		store__set_err(s, "prepare cap");
		goto out;
	}
	sqlite3_bind_int64(st, 1, s->cap_cursor);
	sqlite3_bind_int(st, 2, STORE_MAINT_BATCH);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0), gid = sqlite3_column_int64(st, 1);
		int k;
		for (k = 0; k < nover && over[k].gid != gid; k++)
			;
		if (k == nover) {
			if (nover == (int)(sizeof(over) / sizeof(over[0])))
				break; /* enough groups for one step; go on from here next time */
			/* how far over the cap the group is, counted down as we delete (the UPDATEs
			 * come after the scan) */
			sqlite3_bind_int64(q, 1, gid);
			over[k].gid = gid;
			over[k].over = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) - cap : 0;
			sqlite3_reset(q);
			nover++;
		}
		s->cap_cursor = id;
		if (over[k].over <= 0)
			continue;
		over[k].over--;
		rows[n][0] = id;
		rows[n][1] = gid;
		n++;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		store__set_err(s, "cap scan");
		goto out;
	}
	if (r == SQLITE_DONE)
		s->cap_sweeping = false; /* a whole pass: check again later */
	else
		*more = true;
	rc = n ? delete_rows(s, (const int64_t(*)[2])rows, n, &s->wst.events_deleted_cap) : 0;
out:
	sqlite3_finalize(q);
	sqlite3_finalize(st);
	return rc;
}

/* Folds minute counts older than the cutoff into hourly ones, the oldest hour first. */
static int fold_step(struct store *s, int64_t cutoff_minute, bool *more)
{
	sqlite3_stmt *st = NULL;
	int64_t oldest = -1;
	if (sqlite3_prepare_v2(s->db, "SELECT min(minute) FROM group_minutes", -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare fold");
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		oldest = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* fold whole hours only: the hour of the oldest minute, when all of it is past the cutoff */
	if (oldest < 0 || (oldest / 60 + 1) * 60 > cutoff_minute)
		return 0;
	int64_t lo = oldest / 60 * 60, hi = lo + 60;
	const char *sql[] = {
	    "INSERT INTO group_hours (group_id, hour, env_id, count)"
	    " SELECT group_id, ?1 / 60, env_id, sum(count) FROM group_minutes"
	    " WHERE minute >= ?1 AND minute < ?2 GROUP BY group_id, env_id"
	    " ON CONFLICT (group_id, hour, env_id) DO UPDATE SET count = count + excluded.count",
	    "DELETE FROM group_minutes WHERE minute >= ?1 AND minute < ?2",
	    "INSERT INTO service_hours (service, hour, count, dropped)"
	    " SELECT service, ?1 / 60, sum(count), sum(dropped) FROM service_minutes"
	    " WHERE minute >= ?1 AND minute < ?2 GROUP BY service"
	    " ON CONFLICT (service, hour) DO UPDATE SET count = count + excluded.count,"
	    " dropped = dropped + excluded.dropped",
	    "DELETE FROM service_minutes WHERE minute >= ?1 AND minute < ?2",
	};
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK)
			return store__set_err(s, "prepare fold");
		sqlite3_bind_int64(st, 1, lo);
		sqlite3_bind_int64(st, 2, hi);
		int r = sqlite3_step(st);
		if (i == 1)
			s->wst.minutes_folded += (uint64_t)sqlite3_changes(s->db);
		sqlite3_finalize(st);
		if (r != SQLITE_DONE)
			return store__set_err(s, "fold minutes");
	}
	*more = true;
	return 0;
}

static int vacuum_step(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t free_pages = 0;
	if (sqlite3_prepare_v2(s->db, "PRAGMA freelist_count", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			free_pages = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (free_pages < STORE_VACUUM_PAGES)
		return 0;
	char sql[64];
	errq_snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", STORE_VACUUM_PAGES);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare vacuum");
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	int rc = sqlite3_finalize(st) == SQLITE_OK ? 0 : store__set_err(s, "incremental vacuum");
	if (!rc)
		s->wst.pages_vacuumed += STORE_VACUUM_PAGES;
	return rc;
}

int store_maintain(struct store *s, const struct store_maint_opts *o, bool *more)
{
	*more = false;
	/* Pending aggregates need not be written first: the sweeps delete the oldest events,
	 * which the written counts cover (the unwritten ones are the newest), and their
	 * decrements of stored counts add up with the increments still pending. */
	if (store__own_txn_begin(s, "maintenance"))
		return -1;
	int rc = 0;
	if (o->retention_ns && o->now_ns > o->retention_ns) {
		uint64_t cutoff = o->now_ns - o->retention_ns;
		rc = retention_step(s, cutoff, more);
		if (!rc)
			rc = fold_step(s, (int64_t)(cutoff / NS_PER_MINUTE), more);
	}
	if (!rc && o->per_group_cap)
		rc = cap_step(s, o->per_group_cap, o->now_ns, more);
	/* the alerting tables (store_alerts.c): outcome batches past their horizon, and alert
	 * history past its own (never firing alerts nor pending or dead deliveries) */
	if (!rc && o->now_ns > STORE_OUTCOME_BATCH_HORIZON_NS &&
	    store__outcome_batches_prune_step(s, o->now_ns - STORE_OUTCOME_BATCH_HORIZON_NS, STORE_MAINT_BATCH,
					      more) < 0)
		rc = -1;
	uint64_t history = o->alert_history_ns ? o->alert_history_ns : STORE_ALERT_HISTORY_NS;
	if (!rc && o->now_ns > history && store__alerts_prune_step(s, o->now_ns - history, STORE_MAINT_BATCH, more) < 0)
		rc = -1;
	if (store__own_txn_end(s, rc ? -1 : 0, "maintenance"))
		return -1;
	/* outside the transaction: incremental_vacuum commits by itself in autocommit mode */
	return vacuum_step(s);
}
