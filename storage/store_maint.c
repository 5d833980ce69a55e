/* store_maint.c: the writer's writes that are not ingest — group status changes and the
 * background upkeep (retention, the per-group cap, folding old minute counts into hours,
 * pruning the alerting tables, incremental vacuum).  Each runs in a short transaction of
 * its own on the writer handle, between ingest transactions, and does a bounded amount of
 * work (STORE_MAINT_BATCH rows), so the writer is never held for more than a few
 * milliseconds by upkeep. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "storage_alerts.h"
#include "errq_assert.h"
#include "errq_str.h"
#include "errq_banned.h"

#define NS_PER_MINUTE 60000000000ULL

int store_sqlite_set_group_status(struct store *s, const char *fingerprint, const char *status, uint64_t now_ns)
{
	if (strcmp(status, "unresolved") && strcmp(status, "resolved") && strcmp(status, "ignored")) {
		errq_snprintf(s->err, sizeof(s->err), "unknown status '%s'", status);
		return -1;
	}
	sqlite3_stmt *st = NULL;
	if (store_sqlite_agg_flush(s)) /* events before the change must not count as a regression after it */
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

/* ---- the rows one step deletes ----
 * Both sweeps scan events in rowid order and choose rows to delete.  The chosen rows are kept
 * as runs of consecutive scanned rows (a run holds no kept row, so a range DELETE removes
 * exactly them) and as a count per group, so a step runs one DELETE per run and one UPDATE per
 * group instead of two statements a row.  The scratch lives in the store (writer only) and
 * holds STORE_MAINT_MAX_ROWS rows; the group table is twice that, so it never fills. */
#define SCRATCH_SLOTS (2 * STORE_MAINT_MAX_ROWS)
struct maint_group {
	int64_t gid;   /* 0 = empty slot (group ids start at 1) */
	int64_t allow; /* rows of the group this step may still choose (cap: how far over it is) */
	int64_t n;     /* rows chosen */
};
struct store_maint_scratch {
	int64_t runs[STORE_MAINT_MAX_ROWS][2];
	int nruns, n;
	bool in_run; /* the last scanned row was chosen: the next chosen one extends its run */
	struct maint_group g[SCRATCH_SLOTS];
	int32_t touched[STORE_MAINT_MAX_ROWS]; /* slots in use, to clear them and for the UPDATEs */
	int ntouched;
};

static struct store_maint_scratch *scratch_begin(struct store *s)
{
	struct store_maint_scratch *m = s->maint;
	if (!m) {
		m = s->maint = calloc(1, sizeof(*m));
		if (!m) {
			errq_snprintf(s->err, sizeof(s->err), "%s", "out of memory for upkeep");
			return NULL;
		}
	}
	for (int i = 0; i < m->ntouched; i++)
		m->g[m->touched[i]] = (struct maint_group){0};
	m->nruns = m->n = m->ntouched = 0;
	m->in_run = false;
	return m;
}

/* The group's slot; *fresh when it was not seen in this step. */
static struct maint_group *scratch_group(struct store_maint_scratch *m, int64_t gid, bool *fresh)
{
	uint32_t i = (uint32_t)((uint64_t)gid * 0x9E3779B97F4A7C15ULL >> 40) & (SCRATCH_SLOTS - 1);
	while (m->g[i].gid && m->g[i].gid != gid)
		i = (i + 1) & (SCRATCH_SLOTS - 1);
	*fresh = !m->g[i].gid;
	if (*fresh) {
		ERRQ_ASSERT(m->ntouched < STORE_MAINT_MAX_ROWS);
		m->g[i].gid = gid;
		m->touched[m->ntouched++] = (int32_t)i;
	}
	return &m->g[i];
}

static void scratch_choose(struct store_maint_scratch *m, struct maint_group *g, int64_t id)
{
	if (m->in_run)
		m->runs[m->nruns - 1][1] = id;
	else {
		m->runs[m->nruns][0] = m->runs[m->nruns][1] = id;
		m->nruns++;
	}
	m->in_run = true;
	m->n++;
	g->n++;
	g->allow--;
}

/* Deletes the chosen rows and lowers their groups' stored counts. */
static int delete_chosen(struct store *s, struct store_maint_scratch *m, uint64_t *by_cause)
{
	sqlite3_stmt *del = NULL, *dec = NULL;
	int rc = -1;
	if (!m->n)
		return 0;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM events WHERE id >= ?1 AND id <= ?2", -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE groups SET stored = max(stored - ?2, 0) WHERE id = ?1", -1, &dec, NULL) !=
		SQLITE_OK) {
		store__set_err(s, "prepare delete");
		goto out;
	}
	for (int i = 0; i < m->nruns; i++) {
		sqlite3_bind_int64(del, 1, m->runs[i][0]);
		sqlite3_bind_int64(del, 2, m->runs[i][1]);
		if (store__step(s, del, "delete events") < 0)
			goto out;
	}
	for (int i = 0; i < m->ntouched; i++) {
		const struct maint_group *g = &m->g[m->touched[i]];
		if (!g->n)
			continue;
		sqlite3_bind_int64(dec, 1, g->gid);
		sqlite3_bind_int64(dec, 2, g->n);
		if (store__step(s, dec, "lower stored count") < 0)
			goto out;
	}
	s->wst.events_deleted += (uint64_t)m->n;
	*by_cause += (uint64_t)m->n;
	rc = 0;
out:
	sqlite3_finalize(del);
	sqlite3_finalize(dec);
	return rc;
}

/* Retention: the oldest events (rowid order is receive order) received before the cutoff,
 * at most max_rows: one run. */
static int retention_step(struct store *s, uint64_t cutoff_ns, int max_rows, bool *more)
{
	struct store_maint_scratch *m = scratch_begin(s);
	sqlite3_stmt *st = NULL;
	if (!m)
		return -1;
	if (sqlite3_prepare_v2(s->db, "SELECT id, group_id, received_ns FROM events ORDER BY id LIMIT ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return store__set_err(s, "prepare retention");
	sqlite3_bind_int(st, 1, max_rows);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if ((uint64_t)sqlite3_column_int64(st, 2) >= cutoff_ns)
			break;
		bool fresh;
		struct maint_group *g = scratch_group(m, sqlite3_column_int64(st, 1), &fresh);
		scratch_choose(m, g, sqlite3_column_int64(st, 0));
	}
	sqlite3_finalize(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return store__set_err(s, "retention scan");
	if (m->n == max_rows)
		*more = true;
	return delete_chosen(s, m, &s->wst.events_deleted_retention);
}

/* The events stored past the cap, summed over the groups over it (0 when none is): a scan of
 * the groups table, so it runs at most every STORE_CAP_CHECK_NS (STORE_CAP_RECHECK_NS after a
 * pass that deleted). */
static int cap_backlog(struct store *s, uint32_t cap, int64_t *backlog)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT coalesce(sum(stored - ?1), 0) FROM groups WHERE stored > ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return store__set_err(s, "prepare cap check");
	sqlite3_bind_int64(st, 1, cap);
	int r = sqlite3_step(st);
	*backlog = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : store__set_err(s, "cap check");
}

/* The per-group cap: when some group is over it, sweeps the table from the oldest row toward
 * the newest, at most max_rows rows a step, deleting events of groups that store more than
 * cap.  Deleting in age order keeps each group's newest events (its chain's head side).  A
 * pass ends at the newest row or once it deleted the backlog found when it began (the rows
 * past that are newer than every row it must delete).  The cap is therefore enforced
 * eventually, at the sweep's pace, not at every insert; the pace follows ingest (see
 * store_maint_opts.max_rows). */
static int cap_step(struct store *s, uint32_t cap, uint64_t now_ns, int max_rows, bool *more)
{
	if (!s->cap_sweeping) {
		if (now_ns < s->cap_next_check)
			return 0;
		s->cap_next_check = now_ns + STORE_CAP_CHECK_NS;
		if (cap_backlog(s, cap, &s->cap_backlog))
			return -1;
		if (s->cap_backlog <= 0)
			return 0;
		s->cap_sweeping = true;
		s->cap_cursor = 0;
	}
	struct store_maint_scratch *m = scratch_begin(s);
	sqlite3_stmt *st = NULL, *q = NULL;
	int rc = -1;
	if (!m)
		return -1;
	if (sqlite3_prepare_v2(s->db, "SELECT id, group_id FROM events WHERE id > ?1 ORDER BY id LIMIT ?2", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT stored FROM groups WHERE id = ?1", -1, &q, NULL) != SQLITE_OK) {
		store__set_err(s, "prepare cap");
		goto out;
	}
	sqlite3_bind_int64(st, 1, s->cap_cursor);
	sqlite3_bind_int(st, 2, max_rows);
	int r = SQLITE_DONE, scanned = 0;
	while (m->n < s->cap_backlog && (r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		scanned++;
		bool fresh;
		struct maint_group *g = scratch_group(m, sqlite3_column_int64(st, 1), &fresh);
		if (fresh) { /* how far over the cap the group is, counted down as rows are chosen */
			sqlite3_bind_int64(q, 1, g->gid);
			g->allow = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) - cap : 0;
			sqlite3_reset(q);
		}
		s->cap_cursor = id;
		if (g->allow > 0)
			scratch_choose(m, g, id);
		else
			m->in_run = false;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		store__set_err(s, "cap scan");
		goto out;
	}
	/* the pass is over at the newest row (fewer rows than asked) or at the backlog */
	bool pass_over = m->n >= s->cap_backlog || (r == SQLITE_DONE && scanned < max_rows);
	s->cap_backlog -= m->n;
	s->cap_pass_deleted += m->n;
	if (pass_over) { /* look again soon if the pass found work, else later */
		s->cap_sweeping = false;
		if (s->cap_pass_deleted)
			s->cap_next_check = now_ns + STORE_CAP_RECHECK_NS;
		s->cap_pass_deleted = 0;
	} else
		*more = true;
	rc = delete_chosen(s, m, &s->wst.events_deleted_cap);
out:
	sqlite3_finalize(q);
	sqlite3_finalize(st);
	return rc;
}

/* Folds minute counts older than the cutoff into hourly ones, the oldest hour first.  Finding
 * the oldest minute scans group_minutes (its key starts with the group), so after a look that
 * found nothing to fold the next waits STORE_FOLD_CHECK_NS: minute counts are folded within a
 * minute of their hour passing the cutoff. */
static int fold_step(struct store *s, int64_t cutoff_minute, uint64_t now_ns, bool *more)
{
	sqlite3_stmt *st = NULL;
	int64_t oldest = -1;
	if (now_ns < s->fold_next_check)
		return 0;
	if (sqlite3_prepare_v2(s->db, "SELECT min(minute) FROM group_minutes", -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare fold");
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		oldest = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* fold whole hours only: the hour of the oldest minute, when all of it is past the cutoff */
	if (oldest < 0 || (oldest / 60 + 1) * 60 > cutoff_minute) {
		s->fold_next_check = now_ns + STORE_FOLD_CHECK_NS;
		return 0;
	}
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

/* Gives free pages back to the file system, STORE_VACUUM_PAGES a step, while more than
 * 1/STORE_VACUUM_SLACK of the file (and at least STORE_VACUUM_PAGES) is free.  Below that the
 * free pages are slack that inserts reuse: under a steady churn (the cap deleting what ingest
 * adds) vacuuming them would move pages from the file's end only for inserts to grow it back. */
static int vacuum_step(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t free_pages = 0, pages = 0;
	if (store_sqlite_get_pragma_int(s, "freelist_count", &free_pages) || store_sqlite_get_pragma_int(s, "page_count", &pages))
		return -1;
	if (free_pages < STORE_VACUUM_PAGES || free_pages <= pages / STORE_VACUUM_SLACK)
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

int store_sqlite_maintain(struct store *s, const struct store_maint_opts *o, bool *more)
{
	*more = false;
	/* Pending aggregates need not be written first: the sweeps delete the oldest events,
	 * which the written counts cover (the unwritten ones are the newest), and their
	 * decrements of stored counts add up with the increments still pending. */
	if (store__own_txn_begin(s, "maintenance"))
		return -1;
	int rc = 0;
	int max_rows = o->max_rows ? (int)o->max_rows : STORE_MAINT_BATCH;
	if (max_rows > STORE_MAINT_MAX_ROWS)
		max_rows = STORE_MAINT_MAX_ROWS;
	if (o->retention_ns && o->now_ns > o->retention_ns) {
		uint64_t cutoff = o->now_ns - o->retention_ns;
		rc = retention_step(s, cutoff, max_rows, more);
		if (!rc)
			rc = fold_step(s, (int64_t)(cutoff / NS_PER_MINUTE), o->now_ns, more);
	}
	if (!rc && o->per_group_cap)
		rc = cap_step(s, o->per_group_cap, o->now_ns, max_rows, more);
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
