/* store_agg.c: the writer's deferred aggregates (storage.h: "Deferred aggregates").
 *
 * The groups' counters, last-seen values and chain heads, group_minutes and service_minutes
 * are derived from the events, so they are accumulated in memory and written in generations:
 *  - the open generation takes every event's counts (an open-addressed table of
 *    (group, minute, environment) entries and one of (service, minute) entries);
 *  - when it is due (STORE_AGG_FLUSH_MS after its first entry) or full, it closes: its entries
 *    move to an array sorted by group, and a fresh table opens;
 *  - the closed generation is written a slice at a time with each transaction, whole groups
 *    of at least STORE_AGG_FLUSH_CHUNK entries or as many as the transaction counted (so it is
 *    written before the open one can fill), in group order (so the groups' rows and minute rows are visited in key
 *    order).  Each group's row records the generation's last event rowid (groups.agg_through)
 *    with its counts; the last slice writes the service counts and meta.aggregated_through.
 * So a crash or rollback between slices loses nothing and counts nothing twice: the events
 * past aggregated_through are aggregated again, each counted in its group only when its rowid
 * is past the group's agg_through, in its service always.  Memory: the open table of
 * STORE_AGG_SLOTS entries, the closed array of 3/4 of that (a generation's most), and their
 * strings, at most STORE_AGG_MAX_BYTES; at either limit the open generation closes early (after
 * the closed one is written in full). */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "errq_hash.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

static uint64_t str_hash(const char *v)
{
	return errq_fnv64(ERRQ_FNV64_INIT, v, strlen(v));
}

#define AGG_MAX_ENTRIES (STORE_AGG_SLOTS * 3 / 4) /* a generation's entries, at most */

/* Empties g: its entries are used[0..n) (the open generation's table) or, with used NULL, the
 * first n (a closed generation, compacted). */
static void gen_clear(struct store *s, struct agg_gen *g, const uint32_t *used)
{
	for (uint32_t k = 0; k < g->n; k++) {
		struct agg_entry *a = &g->e[used ? used[k] : k];
		free(a->environment);
		free(a->error_code);
		free(a->message);
		memset(a, 0, sizeof(*a));
	}
	for (int i = 0; i < STORE_AGG_SERVICE_SLOTS; i++) {
		free(g->sv[i].service);
		g->sv[i].service = NULL;
	}
	s->agg_bytes -= g->bytes;
	g->n = g->n_sv = 0;
	g->bytes = 0;
	g->through = 0;
	g->since_ns = 0;
}

void store__agg_clear(struct store *s)
{
	gen_clear(s, &s->agg_open, s->agg_used);
	gen_clear(s, &s->agg_closed, NULL);
	s->agg_pos = 0;
	s->agg_counted = 0;
	s->agg_closing = false;
}

int store__agg_alloc(struct store *s)
{
	for (int i = 0; i < 2; i++) {
		struct agg_gen *g = i ? &s->agg_closed : &s->agg_open;
		g->e = calloc(i ? AGG_MAX_ENTRIES : STORE_AGG_SLOTS, sizeof(*g->e));
		g->sv = calloc(STORE_AGG_SERVICE_SLOTS, sizeof(*g->sv));
		if (!g->e || !g->sv)
			return -1;
	}
	if (!(s->agg_used = calloc(AGG_MAX_ENTRIES, sizeof(*s->agg_used))))
		return -1;
	s->agg_open.gen = 1;
	return 0;
}

void store__agg_free(struct store *s)
{
	if (!s->agg_open.e || !s->agg_closed.e || !s->agg_open.sv || !s->agg_closed.sv || !s->agg_used) {
		free(s->agg_used);
		free(s->agg_open.e);
		free(s->agg_closed.e);
		free(s->agg_open.sv);
		free(s->agg_closed.sv);
		return;
	}
	store__agg_clear(s);
	free(s->agg_used);
	free(s->agg_open.e);
	free(s->agg_closed.e);
	free(s->agg_open.sv);
	free(s->agg_closed.sv);
}

bool store_sqlite_agg_pending(const struct store *s)
{
	return s->agg_open.n || s->agg_open.n_sv || s->agg_closing || s->agg_recover;
}

/* Keeps the last non-empty value; counts the bytes held. */
static void set_owned(struct store *s, struct agg_gen *g, char **dst, const char *v)
{
	if (!v || !*v)
		return;
	if (*dst && strcmp(*dst, v) == 0)
		return;
	char *n = strdup(v);
	if (!n)
		return; /* a sample value, not a count: keep the older one */
	size_t old = *dst ? strlen(*dst) + 1 : 0, add = strlen(n) + 1;
	free(*dst);
	*dst = n;
	g->bytes += add - old;
	s->agg_bytes += add - old;
}

static int cmp_entry(const void *pa, const void *pb)
{
	const struct agg_entry *a = pa, *b = pb;
	if (a->group_id != b->group_id)
		return a->group_id < b->group_id ? -1 : 1;
	if (a->minute != b->minute)
		return a->minute < b->minute ? -1 : 1;
	return (a->env_id > b->env_id) - (a->env_id < b->env_id);
}

/* Closes the open generation (only when none is closing): its entries move to the closed
 * generation's array, compacted (through the open table's list of used slots: the cost follows
 * the entries, not the table's size) and sorted by group; its service table is swapped with the
 * emptied one; the open table, emptied the same way, takes the next generation's counts. */
static void rotate(struct store *s)
{
	struct agg_gen *o = &s->agg_open, *c = &s->agg_closed; /* c was emptied when written */
	for (uint32_t k = 0; k < o->n; k++) {
		struct agg_entry *a = &o->e[s->agg_used[k]];
		c->e[k] = *a; /* its strings move with it */
		memset(a, 0, sizeof(*a));
	}
	qsort(c->e, o->n, sizeof(*c->e), cmp_entry);
	struct agg_service *sv = c->sv;
	c->sv = o->sv;
	o->sv = sv;
	c->n = o->n;
	c->n_sv = o->n_sv;
	c->through = o->through;
	c->since_ns = o->since_ns;
	c->bytes = o->bytes;
	c->gen = o->gen;
	o->n = o->n_sv = 0;
	o->through = 0;
	o->since_ns = 0;
	o->bytes = 0;
	o->gen++;
	s->agg_pos = 0;
	s->agg_closing = true;
	s->agg_closes++;
}

/* Writes whole groups of the closed generation until at least max_entries entries are
 * written (0 = all of it); the last slice writes its service counts and aggregated_through
 * and empties it. */
static int write_slice(struct store *s, uint32_t max_entries)
{
	struct agg_gen *g = &s->agg_closed;
	uint32_t start = s->agg_pos;
	while (s->agg_pos < g->n && (!max_entries || s->agg_pos - start < max_entries)) {
		/* one group: its entries are adjacent (sorted) */
		uint32_t i = s->agg_pos, end = i;
		uint64_t count = 0, handled = 0, dropped = 0, first = UINT64_MAX, last = 0;
		int64_t head = 0, minute = 0;
		unsigned moves = 0;
		const struct agg_entry *newest = &g->e[i];
		const char *env = NULL, *code = NULL, *msg = NULL;
		while (end < g->n && g->e[end].group_id == g->e[i].group_id) {
			const struct agg_entry *a = &g->e[end++];
			count += a->count;
			handled += a->handled;
			dropped += a->dropped;
			if (a->first_ns < first)
				first = a->first_ns;
			if (a->last_ns >= last) {
				last = a->last_ns;
				newest = a;
			}
			if (a->head > head)
				head = a->head;
			if (a->minute > minute)
				minute = a->minute;
			moves |= a->moves;
		}
		/* the newest entry's values, else any other entry's */
		env = newest->environment;
		code = newest->error_code;
		msg = newest->message;
		for (uint32_t k = i; k < end && (!env || !code || !msg); k++) {
			if (!env)
				env = g->e[k].environment;
			if (!code)
				code = g->e[k].error_code;
			if (!msg)
				msg = g->e[k].message;
		}
		sqlite3_stmt *st = s->stmt[STMT_UPDATE_GROUP + moves];
		sqlite3_bind_int64(st, 1, g->e[i].group_id);
		sqlite3_bind_int64(st, 2, (int64_t)count);
		sqlite3_bind_int64(st, 3, (int64_t)handled);
		sqlite3_bind_int64(st, 4, (int64_t)first);
		sqlite3_bind_int64(st, 5, (int64_t)last);
		store__bind_text(st, 6, env);
		store__bind_text(st, 7, code);
		store__bind_text(st, 8, msg);
		sqlite3_bind_int64(st, 9, head);
		sqlite3_bind_int64(st, 10, (int64_t)dropped);
		sqlite3_bind_int64(st, 11, g->through);
		if (moves & AGG_MOVES_MINUTE)
			sqlite3_bind_int64(st, 12, minute);
		if (store__step(s, st, "update group"))
			return -1;
		for (uint32_t k = i; k < end; k++) {
			const struct agg_entry *a = &g->e[k];
			st = s->stmt[STMT_UPSERT_MINUTE];
			sqlite3_bind_int64(st, 1, a->group_id);
			sqlite3_bind_int64(st, 2, a->minute);
			sqlite3_bind_int64(st, 3, a->env_id);
			sqlite3_bind_int64(st, 4, (int64_t)a->count);
			if (store__step(s, st, "update minute counts"))
				return -1;
		}
		s->agg_pos = end;
	}
	if (s->agg_pos < g->n)
		return 0;
	for (int i = 0; i < STORE_AGG_SERVICE_SLOTS; i++) {
		struct agg_service *sa = &g->sv[i];
		if (!sa->service)
			continue;
		sqlite3_stmt *st = s->stmt[STMT_UPSERT_SERVICE_MINUTE];
		sqlite3_bind_text(st, 1, sa->service, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, sa->minute);
		sqlite3_bind_int64(st, 3, (int64_t)sa->count);
		sqlite3_bind_int64(st, 4, (int64_t)sa->dropped);
		if (store__step(s, st, "update service minute counts"))
			return -1;
	}
	if (g->through) {
		sqlite3_stmt *st = s->stmt[STMT_SET_AGG_THROUGH];
		sqlite3_bind_int64(st, 1, g->through);
		if (store__step(s, st, "record aggregated events"))
			return -1;
	}
	s->agg_written_gen = g->gen; /* its chain heads are in the database now */
	gen_clear(s, g, NULL);
	s->agg_pos = 0;
	s->agg_closing = false;
	return 0;
}

int store__agg_write_all(struct store *s)
{
	if (s->agg_closing && write_slice(s, 0))
		return -1;
	if (!s->agg_open.n && !s->agg_open.n_sv)
		return 0;
	rotate(s);
	return write_slice(s, 0);
}

int store__agg_write_due(struct store *s)
{
	if (!s->agg_closing && s->agg_open.since_ns &&
	    store__now(s) - s->agg_open.since_ns >= STORE_AGG_FLUSH_MS * ERRQ_NS_PER_MS)
		rotate(s);
	/* pace: at least one entry written per count taken since the last slice, so the closed
	 * generation is written before the open one can fill (each count adds one entry at most) */
	uint32_t budget = s->agg_counted > STORE_AGG_FLUSH_CHUNK ? s->agg_counted : STORE_AGG_FLUSH_CHUNK;
	s->agg_counted = 0;
	return s->agg_closing ? write_slice(s, budget) : 0;
}

int store__agg_write_step(struct store *s)
{
	if (!s->agg_closing && (s->agg_open.n || s->agg_open.n_sv))
		rotate(s);
	return s->agg_closing ? write_slice(s, STORE_AGG_FLUSH_CHUNK) : 0;
}

uint32_t store__agg_backlog(const struct store *s)
{
	return s->agg_open.n + (s->agg_closing ? s->agg_closed.n - s->agg_pos : 0);
}

/* The open generation is full (entries, services or bytes): write the closed one, close it. */
static int make_room(struct store *s)
{
	if (s->agg_closing && write_slice(s, 0))
		return -1;
	rotate(s);
	return 0;
}

int store__agg_add(struct store *s, int64_t gid, int64_t envid, int64_t rowid, const struct store_event *e,
		   bool dropped, unsigned what, unsigned moves, struct group_cache_slot *slot)
{
	struct agg_gen *g = &s->agg_open;
	int64_t minute = (int64_t)(e->received_ns / NS_PER_MINUTE);
	if (g->n >= AGG_MAX_ENTRIES || g->n_sv >= STORE_AGG_SERVICE_SLOTS * 3 / 4 ||
	    s->agg_bytes >= STORE_AGG_MAX_BYTES) {
		if (make_room(s))
			return -1;
		g = &s->agg_open;
	}
	if (!g->since_ns)
		g->since_ns = store__now(s);
	if (s->agg_counted < UINT32_MAX)
		s->agg_counted++;
	if (rowid > g->through)
		g->through = rowid;
	if (what & STORE_AGG_GROUP) {
		uint64_t h = ((uint64_t)gid * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)minute ^ ((uint64_t)envid << 40);
		uint32_t i = (uint32_t)(h % STORE_AGG_SLOTS);
		struct agg_entry *a;
		struct agg_entry *hint = slot && slot->agg_gen == g->gen ? &g->e[slot->agg_idx] : NULL;
		if (hint && hint->group_id == gid && hint->minute == minute && hint->env_id == envid)
			i = slot->agg_idx; /* where its last count went (the probe below stops there) */
		for (;;) {
			a = &g->e[i];
			if (!a->group_id) {
				a->group_id = gid;
				a->minute = minute;
				a->env_id = envid;
				a->first_ns = e->received_ns;
				s->agg_used[g->n++] = i;
				break;
			}
			if (a->group_id == gid && a->minute == minute && a->env_id == envid)
				break;
			i = (i + 1) % STORE_AGG_SLOTS;
		}
		if (slot) {
			slot->agg_idx = i;
			slot->agg_gen = g->gen;
		}
		a->count++;
		a->moves |= moves;
		a->dropped += dropped;
		a->handled += e->handled;
		if (rowid > a->head)
			a->head = rowid;
		if (e->received_ns < a->first_ns)
			a->first_ns = e->received_ns;
		if (e->received_ns > a->last_ns)
			a->last_ns = e->received_ns;
		set_owned(s, g, &a->environment, e->environment);
		set_owned(s, g, &a->error_code, e->error_code);
		set_owned(s, g, &a->message, e->message);
	}
	if (!(what & STORE_AGG_SERVICE))
		return 0;
	uint32_t j = (uint32_t)((str_hash(e->service) ^ (uint64_t)minute) % STORE_AGG_SERVICE_SLOTS);
	for (;;) {
		struct agg_service *sa = &g->sv[j];
		if (!sa->service) {
			if (!(sa->service = strdup(e->service)))
				return store__fail(s, "out of memory");
			size_t add = strlen(e->service) + 1;
			g->bytes += add;
			s->agg_bytes += add;
			sa->minute = minute;
			sa->count = 0;
			sa->dropped = 0;
			g->n_sv++;
		}
		if (sa->minute == minute && strcmp(sa->service, e->service) == 0) {
			sa->count++;
			sa->dropped += dropped;
			break;
		}
		j = (j + 1) % STORE_AGG_SERVICE_SLOTS;
	}
	return 0;
}

int store__agg_recover(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t through = 0;
	store__agg_clear(s);
	if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'aggregated_through'", -1, &st, NULL) !=
	    SQLITE_OK)
		return store__set_err(s, "prepare recover");
	if (sqlite3_step(st) == SQLITE_ROW)
		through = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* a group whose row records a later agg_through was written with a slice of a generation
	 * that did not finish: its events up to there are counted in it already */
	if (sqlite3_prepare_v2(s->db,
			       "SELECT e.id, e.group_id, e.received_ns, e.handled, e.environment, e.error_code,"
			       " e.message, e.service, coalesce(g.agg_through, 0)"
			       " FROM events e LEFT JOIN groups g ON g.id = e.group_id WHERE e.id > ?1 ORDER BY e.id",
			       -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "prepare recover");
	sqlite3_bind_int64(st, 1, through);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_event e = {
		    .received_ns = (uint64_t)sqlite3_column_int64(st, 2),
		    .handled = sqlite3_column_int(st, 3) != 0,
		    .environment = (const char *)sqlite3_column_text(st, 4),
		    .error_code = (const char *)sqlite3_column_text(st, 5),
		    .message = (const char *)sqlite3_column_text(st, 6),
		    .service = (const char *)sqlite3_column_text(st, 7),
		};
		if (!e.service)
			e.service = "";
		int64_t id = sqlite3_column_int64(st, 0);
		unsigned what = STORE_AGG_SERVICE | (id > sqlite3_column_int64(st, 8) ? STORE_AGG_GROUP : 0);
		int64_t envid = store__env_id(s, e.environment);
		if (envid < 0 || store__agg_add(s, sqlite3_column_int64(st, 1), envid, id, &e, false, what,
						AGG_MOVES_FIRST | AGG_MOVES_MINUTE, NULL)) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store__set_err(s, "recover aggregates");
	if (store__agg_write_all(s))
		return -1;
	s->agg_recover = false;
	return 0;
}

int store_sqlite_agg_flush(struct store *s)
{
	if (s->readonly || s->in_txn || !store_sqlite_agg_pending(s))
		return 0;
	if (store_sqlite_txn_begin(s))
		return -1;
	if (store_sqlite_txn_commit(s)) {
		store_sqlite_txn_rollback(s);
		return -1;
	}
	return 0;
}

int store_sqlite_agg_flush_step(struct store *s, bool *more)
{
	*more = false;
	if (s->readonly || s->in_txn || !store_sqlite_agg_pending(s))
		return 0;
	if (store_sqlite_txn_begin(s)) /* recovers first when it must */
		return -1;
	if (store__agg_write_step(s) || store__commit(s)) {
		store_sqlite_txn_rollback(s);
		return -1;
	}
	*more = store_sqlite_agg_pending(s);
	return 0;
}
