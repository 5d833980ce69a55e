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

/* ---- the rows one step deletes ----
 * Retention and the cap's dense passes scan events in rowid order and choose rows to delete.  The chosen rows are kept
 * as runs of consecutive scanned rows (a run holds no kept row, so a range DELETE removes
 * exactly them) and as a count per group, so a step runs one DELETE per run and one UPDATE per
 * group instead of two statements a row.  The scratch lives in the store (writer only) and
 * holds STORE_MAINT_MAX_ROWS rows; the group table is twice that, so it never fills. */
#define SCRATCH_SLOTS (2 * STORE_MAINT_MAX_ROWS)
/* the cap's marks (see "the per-group cap" below) */
struct cap_mark {
	int64_t pos, rowid;
};
struct cap_track {
	uint32_t cap;  /* the cap its marks are spaced for */
	int nmarks;
	struct cap_mark mark[STORE_CAP_MARKS]; /* oldest first; the last is the head last seen */
};
struct cap_state {
	int64_t pass[STORE_CAP_PASS_GROUPS]; /* the groups over the cap when the pass began */
	int npass, next;
	bool pass_full; /* more groups were over than one pass takes */
	bool scan;      /* this pass scans the table instead (see cap_pass_begin) */
	uint64_t pass_no;
	/* the tracked groups: ids (0 = free) and the pass that last trimmed each (the least
	 * recent is evicted) apart from their marks, so a lookup reads 16 KiB, not 4 MiB */
	int64_t track_gid[STORE_CAP_TRACK_GROUPS];
	uint64_t track_used[STORE_CAP_TRACK_GROUPS];
	struct cap_track track[STORE_CAP_TRACK_GROUPS];
};
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
	struct cap_state cap; /* the cap's passes and marks (pages touched only when a cap is set) */
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

/* ---- the per-group cap: a walk along the chains of the groups over it ----
 * (or a scan of the table while the rows over the cap are most of what it reads: cap_pass_begin)
 * A group's events form a chain from groups.last_event (the newest) through prev_in_group
 * to the oldest; a reader walking it stops at a row that is gone.  The cap keeps the newest
 * `cap` events of a group, so what it deletes is the chain's tail: everything past the
 * (cap+1)-th newest link (the cut).  A trim finds the cut, then deletes along the chain from
 * there, one rowid lookup a row, never reading another group's rows.
 *
 * Finding the cut by walking `cap` links from the head at every pass would read the kept
 * rows again and again, so upkeep remembers, per group (STORE_CAP_TRACK_GROUPS of them),
 * marks: (position, rowid) of chain links at most STORE_CAP_MARK_GAP(cap) apart, the newest
 * being the head it last saw.  A trim walks back from the new head to the old one (the
 * events added since: about what it will delete), adds marks, then walks from the nearest
 * mark above the cut to it (under a gap) and deletes from there.  Positions count up from
 * some origin along the chain, so the cut is (head's position - cap).  A group seen for the
 * first time, one whose new events alone fill the cap, or one evicted from the table is
 * walked from its head (cap reads), once.
 *
 * A step deletes at most max_rows rows.  When it stops inside a group's tail, the kept end
 * is linked to the next row to delete (one UPDATE of its prev_in_group), in the same
 * transaction: the chain stays whole, readers list every row still stored, and the next
 * step (or errqd after a restart, with no marks) finds the rest along the chain. */
enum { CQ_GROUP, CQ_LINK, CQ_DELETE, CQ_RELINK, CQ_LOWER, CQ_COUNT };
struct cap_step {
	struct store *s;
	sqlite3_stmt *q[CQ_COUNT];
	uint32_t cap;
	int64_t visited, deleted, max_rows;
};

static struct cap_track *track_get(struct cap_state *c, int64_t gid)
{
	int lru = 0;
	for (int i = 0; i < STORE_CAP_TRACK_GROUPS; i++) {
		if (c->track_gid[i] == gid) {
			c->track_used[i] = c->pass_no;
			return &c->track[i];
		}
		if (!c->track_gid[i]) { /* slots fill from the front and are never freed */
			lru = i;
			break;
		}
		if (c->track_used[i] < c->track_used[lru])
			lru = i;
	}
	c->track_gid[lru] = gid;
	c->track_used[lru] = c->pass_no;
	c->track[lru].nmarks = 0;
	return &c->track[lru];
}

/* Appends a mark (positions ascend), dropping the one before it when its neighbours are
 * within a gap anyway: so the table holds at most two marks a gap. */
static void track_push(struct cap_track *t, int64_t pos, int64_t rowid, int64_t gap)
{
	if (t->nmarks >= 2 && pos - t->mark[t->nmarks - 2].pos <= gap)
		t->nmarks--;
	if (t->nmarks == STORE_CAP_MARKS) { /* not reached (see STORE_CAP_MARK_GAP): lose the oldest */
		memmove(&t->mark[0], &t->mark[1], sizeof(t->mark[0]) * (STORE_CAP_MARKS - 1));
		t->nmarks--;
	}
	t->mark[t->nmarks++] = (struct cap_mark){pos, rowid};
}

/* The previous link of row id in group gid: 1 and *prev, 0 at the chain's end (the row is
 * gone, or a link that does not go back in time), -1 on error. */
static int chain_prev(struct cap_step *w, int64_t gid, int64_t id, int64_t *prev)
{
	sqlite3_stmt *q = w->q[CQ_LINK];
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, gid);
	int r = sqlite3_step(q);
	*prev = r == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	sqlite3_reset(q);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return store__set_err(w->s, "cap walk");
	w->visited += r == SQLITE_ROW;
	return r == SQLITE_ROW && *prev > 0 && *prev < id;
}

/* Brings t's marks up to head: walks back from head to the head last seen, at most cap
 * links.  Sets *tail and *first when it walked cap links without meeting it (the marks start
 * over: the cut is the link it stopped at), else leaves them 0 for the marks to find. */
static int track_catch_up(struct cap_step *w, struct cap_track *t, int64_t gid, int64_t head, int64_t *tail,
			  int64_t *first)
{
	const int64_t gap = (int64_t)STORE_CAP_MARK_GAP(w->cap);
	int64_t old = t->nmarks ? t->mark[t->nmarks - 1].rowid : 0;
	int64_t seen[STORE_CAP_MARKS / 2 + 2][2]; /* (links from head, rowid) every gap links */
	int nseen = 0;
	int64_t i = 0, r = head, prev = 0;
	*tail = *first = 0;
	if (old == head)
		return 0;
	for (;;) {
		if (i % gap == 0) {
			ERRQ_ASSERT(nseen < (int)(sizeof(seen) / sizeof(seen[0])));
			seen[nseen][0] = i, seen[nseen][1] = r, nseen++;
		}
		int c = chain_prev(w, gid, r, &prev);
		if (c < 0)
			return -1;
		i++;
		if (c == 0 || prev == old || i == w->cap)
			break;
		r = prev;
	}
	int64_t base;
	if (old && prev == old && i <= w->cap) { /* met the old head: i new links above it */
		base = t->mark[t->nmarks - 1].pos + i;
	} else { /* the chain ended, or the new links alone fill the cap: start over */
		t->nmarks = 0;
		base = (int64_t)1 << 40;
		if (i == w->cap && prev > 0) {
			*tail = r;
			*first = prev;
		}
	}
	for (int k = nseen - 1; k >= 0; k--)
		track_push(t, base - seen[k][0], seen[k][1], gap);
	return 0;
}

/* Trims one group to the cap, deleting at most what is left of the step's max_rows.
 * *done when its tail is gone (or it has nothing to trim). */
static int cap_trim(struct cap_step *w, struct cap_state *c, int64_t gid, bool *done)
{
	sqlite3_stmt *q = w->q[CQ_GROUP];
	int64_t stored = 0, head = 0, tail = 0, first = 0, prev;
	*done = true;
	sqlite3_bind_int64(q, 1, gid);
	int r = sqlite3_step(q);
	if (r == SQLITE_ROW) {
		stored = sqlite3_column_int64(q, 0);
		head = sqlite3_column_int64(q, 1);
	}
	sqlite3_reset(q);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return store__set_err(w->s, "cap group");
	if (stored <= w->cap || head <= 0)
		return 0;
	struct cap_track *t = track_get(c, gid);
	if (t->cap != w->cap)
		t->nmarks = 0, t->cap = w->cap;
	if (track_catch_up(w, t, gid, head, &tail, &first))
		return -1;
	int64_t cut = t->mark[t->nmarks - 1].pos - w->cap; /* position of the first link to delete */
	if (!tail) { /* from the nearest mark above the cut down to it */
		int j = 0;
		while (t->mark[j].pos <= cut)
			j++;
		int64_t pos = t->mark[j].pos, at = t->mark[j].rowid;
		int k = 1;
		for (; pos > cut + 1 && k > 0; pos--) {
			k = chain_prev(w, gid, at, &prev);
			at = prev;
		}
		if (k > 0)
			k = chain_prev(w, gid, at, &first);
		if (k <= 0) {
			/* fewer than cap + 1 links, or a mark's row is gone (the retention sweep took
			 * it): nothing to trim now, and the next trim walks from the head */
			t->nmarks = 0;
			return k;
		}
		tail = at;
	}
	int j = 0; /* marks at or below the cut go with their rows */
	while (j < t->nmarks && t->mark[j].pos <= cut)
		j++;
	memmove(&t->mark[0], &t->mark[j], sizeof(t->mark[0]) * (size_t)(t->nmarks - j));
	t->nmarks -= j;
	/* delete from the cut along the chain: read the row's link, then delete it (a DELETE
	 * ... RETURNING would do both in one statement, but SQLite builds a temporary table for
	 * each execution's RETURNING rows: measured at twice the cost) */
	int64_t n = 0, at = first;
	q = w->q[CQ_LINK];
	while (at > 0 && w->deleted < w->max_rows) {
		sqlite3_bind_int64(q, 1, at);
		sqlite3_bind_int64(q, 2, gid);
		r = sqlite3_step(q);
		prev = r == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
		sqlite3_reset(q);
		if (r != SQLITE_ROW && r != SQLITE_DONE)
			return store__set_err(w->s, "cap walk");
		if (r == SQLITE_DONE)
			break; /* the chain's end: gone already */
		sqlite3_bind_int64(w->q[CQ_DELETE], 1, at);
		if (store__step(w->s, w->q[CQ_DELETE], "cap delete") < 0)
			return -1;
		n++, w->deleted++, w->visited++;
		at = prev > 0 && prev < at ? prev : 0;
	}
	if (at > 0 && w->deleted >= w->max_rows) { /* more to delete next step: keep the chain whole */
		*done = false;
		sqlite3_bind_int64(w->q[CQ_RELINK], 1, tail);
		sqlite3_bind_int64(w->q[CQ_RELINK], 2, at);
		if (store__step(w->s, w->q[CQ_RELINK], "cap relink") < 0)
			return -1;
	}
	if (n) {
		sqlite3_bind_int64(w->q[CQ_LOWER], 1, gid);
		sqlite3_bind_int64(w->q[CQ_LOWER], 2, n);
		if (store__step(w->s, w->q[CQ_LOWER], "lower stored count") < 0)
			return -1;
	}
	return 0;
}

/* The dense case: a pass that scans the events table from the oldest row toward the newest,
 * at most max_rows rows a step, deleting events of groups that store more than cap, as
 * runs of consecutive rowids.  Deleting in age order keeps each group's newest events (the
 * chain's head side, so the chains stay whole).  The pass ends at the newest row or once
 * it deleted the backlog found when it began (the rows past that are newer than every row
 * it must delete). */
static int cap_scan_step(struct store *s, uint32_t cap, int max_rows, bool *pass_over, int *read, int *deleted)
{
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
	*pass_over = m->n >= s->cap_backlog || (r == SQLITE_DONE && scanned < max_rows);
	s->cap_backlog -= m->n;
	s->cap_pass_deleted += m->n;
	s->wst.cap_rows_visited += (uint64_t)scanned;
	*read = scanned;
	*deleted = m->n;
	rc = delete_chosen(s, m, &s->wst.events_deleted_cap);
out:
	sqlite3_finalize(q);
	sqlite3_finalize(st);
	return rc;
}

/* Begins a pass: the groups over the cap (a scan of the groups table, so it runs at most
 * every STORE_CAP_CHECK_NS, STORE_CAP_RECHECK_NS after a pass that deleted).  A pass starts
 * as a scan from the oldest row and goes on scanning while it pays (cap_step): when the rows
 * to delete lie at the table's old end (every group over the cap by what arrived since the
 * last pass, or a cap lowered or set on a big database) a scan deletes most of what it reads,
 * in runs that free whole pages.  Once a scan step deletes less than 1/STORE_CAP_SCAN_SHARE
 * of the rows it read (the rows to delete are spread through rows kept: a few groups over
 * the cap among many under it, the steady state of a big database), the pass walks the
 * chains of its groups instead. */
static int cap_pass_begin(struct store *s, struct cap_state *c, uint32_t cap)
{
	sqlite3_stmt *st = NULL;
	int64_t backlog = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT id, stored - ?1 FROM groups WHERE stored > ?1 LIMIT ?2", -1, &st,
			       NULL) != SQLITE_OK)
		return store__set_err(s, "prepare cap check");
	sqlite3_bind_int64(st, 1, cap);
	sqlite3_bind_int(st, 2, STORE_CAP_PASS_GROUPS);
	int r;
	c->npass = c->next = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		c->pass[c->npass++] = sqlite3_column_int64(st, 0);
		backlog += sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return store__set_err(s, "cap check");
	c->pass_full = c->npass == STORE_CAP_PASS_GROUPS;
	c->pass_no++;
	c->scan = true;
	s->cap_backlog = backlog;
	s->cap_cursor = 0;
	return 0;
}

/* One step of a pass that walks chains: trims the pass's groups one after the other, a new
 * one only while the step has budget left, the one under way first. */
static int cap_walk_step(struct store *s, struct cap_state *c, uint32_t cap, int max_rows)
{
	static const char *const sql[CQ_COUNT] = {
	    [CQ_GROUP] = "SELECT stored, last_event FROM groups WHERE id = ?1",
	    [CQ_LINK] = "SELECT prev_in_group FROM events WHERE id = ?1 AND group_id = ?2",
	    [CQ_DELETE] = "DELETE FROM events WHERE id = ?1",
	    [CQ_RELINK] = "UPDATE events SET prev_in_group = ?2 WHERE id = ?1",
	    [CQ_LOWER] = "UPDATE groups SET stored = max(stored - ?2, 0) WHERE id = ?1",
	};
	struct cap_step w = {.s = s, .cap = cap, .max_rows = max_rows};
	int rc = -1;
	for (int i = 0; i < CQ_COUNT; i++)
		if (sqlite3_prepare_v2(s->db, sql[i], -1, &w.q[i], NULL) != SQLITE_OK) {
			store__set_err(s, "prepare cap");
			goto out;
		}
	while (c->next < c->npass && w.deleted < max_rows && w.visited < max_rows) {
		bool done;
		if (cap_trim(&w, c, c->pass[c->next], &done))
			goto out;
		c->next += done;
	}
	rc = 0;
out: /* what a failed step deleted is rolled back with it: count nothing */
	if (!rc) {
		s->cap_pass_deleted += w.deleted;
		s->wst.events_deleted += (uint64_t)w.deleted;
		s->wst.events_deleted_cap += (uint64_t)w.deleted;
		s->wst.cap_rows_visited += (uint64_t)w.visited;
	}
	for (int i = 0; i < CQ_COUNT; i++)
		sqlite3_finalize(w.q[i]);
	return rc;
}

/* The per-group cap: when some group is over it, a pass trims the groups over it (by a scan
 * or along their chains, see cap_pass_begin), at most max_rows deletions a step.  The cap is
 * therefore enforced eventually, at the sweep's pace, not at every insert; the pace follows
 * ingest (see store_maint_opts.max_rows). */
static int cap_step(struct store *s, uint32_t cap, uint64_t now_ns, int max_rows, bool *more)
{
	struct store_maint_scratch *m = scratch_begin(s);
	if (!m)
		return -1;
	struct cap_state *c = &m->cap;
	if (!s->cap_sweeping) {
		if (now_ns < s->cap_next_check)
			return 0;
		s->cap_next_check = now_ns + STORE_CAP_CHECK_NS;
		if (cap_pass_begin(s, c, cap))
			return -1;
		if (!c->npass)
			return 0;
		s->cap_sweeping = true;
		s->cap_pass_deleted = 0;
	}
	if (c->scan) {
		bool over = false;
		int read = 0, deleted = 0;
		if (cap_scan_step(s, cap, max_rows, &over, &read, &deleted))
			return -1;
		c->next = over ? c->npass : 0;
		/* reading mostly rows it keeps: walk the chains (a cap above STORE_CAP_WALK_MAX
		 * always scans: a first trim reads cap links in one step, which must stay short) */
		if (!over && (int64_t)deleted * STORE_CAP_SCAN_SHARE < read && cap <= STORE_CAP_WALK_MAX)
			c->scan = false;
	} else if (cap_walk_step(s, c, cap, max_rows))
		return -1;
	if (c->next >= c->npass) { /* look again soon if the pass found work, else later */
		s->cap_sweeping = false;
		if (s->cap_pass_deleted || c->pass_full)
			s->cap_next_check = now_ns + STORE_CAP_RECHECK_NS;
	} else
		*more = true;
	return 0;
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
	if (store_get_pragma_int(s, "freelist_count", &free_pages) || store_get_pragma_int(s, "page_count", &pages))
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

int store_maintain(struct store *s, const struct store_maint_opts *o, bool *more)
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
