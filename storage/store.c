/* store.c: opening handles, and the writer's transactions.
 *
 * The writer resolves each event's fingerprint to a group id through a small direct-mapped
 * cache (a miss costs one indexed lookup, and an insert for a new group), inserts the event
 * with INSERT OR IGNORE on the unique event_id (ignored = duplicate), and accumulates per
 * (group, minute) counts in a bounded open-addressing table.
 *
 * A group's events are chained newest to oldest: each event stores the rowid of its group's
 * previous event (prev_in_group) and the group row the newest (last_event).  Listing a group's
 * events walks the chain — one rowid lookup per event — so no per-event secondary index is
 * needed: an index on (group_id, id) dirtied a page per group per transaction and cost a
 * third of the ingest rate.  The chain's head lives in the cache slot during a transaction;
 * a slot evicted while its head is newer than the database writes it first.  store_txn_commit writes the
 * aggregates (one UPDATE per group and one upsert per minute row) and commits: so a batch of
 * a thousand events of one group costs one group update, not a thousand. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "store_overflow.h"
#include "errq_time.h"
#include "errq_hash.h"
#include "errq_str.h"
#include "errq_banned.h"


#define UPDATE_GROUP(moved)                                                                                  \
	"UPDATE groups SET total = total + ?2, handled = handled + ?3, stored = stored + ?2 - ?10,"             \
	" dropped = dropped + ?10," moved " last_seen = max(last_seen, ?5),"                                      \
	" environment = coalesce(?6, environment), error_code = coalesce(?7, error_code),"                       \
	" message = coalesce(?8, message), last_event = max(last_event, ?9), agg_through = max(agg_through, ?11)," \
	" regression = CASE WHEN status = 'resolved' THEN 1 ELSE regression END,"                                 \
	" status = CASE WHEN status = 'resolved' THEN 'unresolved' ELSE status END WHERE id = ?1"

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_INSERT_EVENT] =
	"INSERT OR IGNORE INTO events (event_id, group_id, time_ns, received_ns, service, environment,"
	" release, host, task, error_type, error_code, message, attempt, handled, truncated, extra,"
	" prev_in_group) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
    [STMT_FIND_GROUP] = "SELECT id, last_event, first_seen, last_minute FROM groups WHERE fingerprint = ?1",
    [STMT_INSERT_GROUP] =
	"INSERT INTO groups (fingerprint, grouping_version, service, environment, error_type,"
	" error_code, message, first_seen, last_seen, last_minute, overflow)"
	" VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?8,?8 / 60000000000,?9)",
    /* a resolved group that sees a new event is unresolved again, and marked a regression
     * (every expression reads the row as it was before the update); the indexed first_seen
     * and last_minute are named only by the variants that move them (AGG_MOVES_*) */
    [STMT_UPDATE_GROUP] = UPDATE_GROUP(""),
    [STMT_UPDATE_GROUP_FIRST] = UPDATE_GROUP(" first_seen = min(first_seen, ?4),"),
    [STMT_UPDATE_GROUP_MINUTE] = UPDATE_GROUP(" last_minute = max(last_minute, ?12),"),
    [STMT_UPDATE_GROUP_BOTH] = UPDATE_GROUP(" first_seen = min(first_seen, ?4), last_minute = max(last_minute, ?12),"),
    [STMT_UPSERT_MINUTE] =
	"INSERT INTO group_minutes (group_id, minute, env_id, count) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT (group_id, minute, env_id) DO UPDATE SET count = count + excluded.count",
    [STMT_UPSERT_SERVICE_MINUTE] =
	"INSERT INTO service_minutes (service, minute, count, dropped) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT (service, minute) DO UPDATE SET count = count + excluded.count,"
	" dropped = dropped + excluded.dropped",
    [STMT_FIND_ENV] = "SELECT id FROM environments WHERE name = ?1",
    [STMT_INSERT_ENV] = "INSERT INTO environments (name) VALUES (?1)",
    [STMT_COUNT_SERVICE_GROUPS] = "SELECT count(*) FROM groups WHERE service = ?1 AND overflow = 0",
    [STMT_SET_HEAD] = "UPDATE groups SET last_event = max(last_event, ?2) WHERE id = ?1",
    [STMT_SET_AGG_THROUGH] = "UPDATE meta SET value = ?1 WHERE key = 'aggregated_through'",
    [STMT_EVENT_STORED] = "SELECT 1 FROM events WHERE event_id = ?1",
};

const char *store_trunc_name(int bit)
{
	static const char *const names[] = {
#define X(name, str) str,
	    STORE_TRUNC_FIELDS(X)
#undef X
	};
	return bit >= 0 && bit < STORE_TRUNC_NBITS ? names[bit] : "?";
}

int store__set_err(struct store *s, const char *what)
{
	int code = s->db ? sqlite3_errcode(s->db) : SQLITE_ERROR;
	s->busy = code == SQLITE_BUSY || code == SQLITE_LOCKED;
	switch (code & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: s->errclass = STORE_ERR_LOCKED; break;
	case SQLITE_FULL: s->errclass = STORE_ERR_FULL; break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR: s->errclass = STORE_ERR_UNWRITABLE; break;
	default: s->errclass = STORE_ERR_OTHER; break;
	}
	errq_snprintf(s->err, sizeof(s->err), "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : "no database");
	return -1;
}

int store__fail(struct store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	s->busy = false;
	s->errclass = STORE_ERR_OTHER;
	return -1;
}

int store__exec(struct store *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store__set_err(s, what ? what : sql);
	return 0;
}

int store__own_txn_begin(struct store *s, const char *what)
{
	char why[64];
	if (s->in_txn)
		return store__fail(s, "%s inside a transaction", what);
	errq_snprintf(why, sizeof(why), "begin %s", what);
	return store__exec(s, "BEGIN IMMEDIATE", why);
}

int store__own_txn_end(struct store *s, int rc, const char *what)
{
	char why[64];
	if (rc >= 0) {
		errq_snprintf(why, sizeof(why), "commit %s", what);
		if (!store__exec(s, "COMMIT", why))
			return rc;
	}
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* its own failure is only an echo */
	return -1;
}

const char *store_sqlite_errmsg(const struct store *s)
{
	return s->err;
}

bool store_sqlite_last_busy(const struct store *s)
{
	return s->busy;
}

int store_sqlite_last_errclass(const struct store *s)
{
	return s->errclass;
}

static int pragma(struct store *s, const char *sql)
{
	return store__exec(s, sql, NULL);
}

/* Runs after each commit on the writer (instead of SQLite's automatic checkpoint). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *s = arg;
	s->wal_pages = pages;
	if (s->ckpt && pages >= STORE_CKPT_WAL_PAGES)
		store_ckpt_kick(s->ckpt);
	return SQLITE_OK;
}

void store_sqlite_set_ckpt(struct store *s, struct store_ckpt *ck)
{
	s->ckpt = ck;
}

int store_sqlite_wal_catch_up(struct store *s, int min_pages)
{
	if (s->in_txn || s->wal_pages < min_pages || atomic_load(&store__backups_pinning))
		return 0;
	int log = 0, done = 0;
	/* RESTART: waits (busy handler) for the checkpointer thread's pass to end, copies what is
	 * left, and makes sure the next transaction writes from the WAL's start */
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
	if (rc == SQLITE_OK)
		s->wal_pages = 0;
	return rc == SQLITE_OK;
}

static void free_handle(struct store *s)
{
	free(s->maint);
	free(s->leases);
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	for (int i = 0; i < ASTMT_COUNT; i++)
		sqlite3_finalize(s->astmt[i]);
	free(s->gcache);
	free(s->gtags);
	store__agg_free(s);
	if (s->envs) {
		store__clear_name_cache(s->envs, STORE_ENV_CACHE);
		free(s->envs);
	}
	if (s->services) {
		store__clear_name_cache(s->services, STORE_SERVICE_CACHE);
		free(s->services);
	}
	sqlite3_close_v2(s->db);
	free(s);
}

int store_sqlite_open(struct store **out, const struct store_opts *o, char *err, size_t errsz)
{
	struct store *s = calloc(1, sizeof(*s));
	char sql[128];
	*out = NULL;
	if (!s) {
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	s->be = &store_sqlite_backend;
	s->readonly = o->readonly;
	int flags = o->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	flags |= SQLITE_OPEN_NOMUTEX; /* one thread per handle at a time */
	if (sqlite3_open_v2(o->path, &s->db, flags, NULL) != SQLITE_OK) {
		store__set_err(s, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 0);
	sqlite3_busy_timeout(s->db, o->busy_timeout_ms > 0 ? o->busy_timeout_ms : o->readonly ? 100 : 2000);
	int cache_mib = o->cache_mib > 0 ? o->cache_mib : (o->readonly ? 8 : 64);
	errq_snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%d", cache_mib * 1024);
	if (pragma(s, sql) || pragma(s, "PRAGMA foreign_keys=OFF") || pragma(s, "PRAGMA temp_store=MEMORY"))
		goto fail;
	if (!o->readonly) {
		/* before WAL: auto_vacuum can be chosen only while the file has no page yet (see
		 * store_migrate.c); on an existing database this is a no-op */
		if (pragma(s, "PRAGMA auto_vacuum=INCREMENTAL") || pragma(s, "PRAGMA journal_mode=WAL") ||
		    pragma(s, o->durability == STORE_DURABILITY_FULL ? "PRAGMA synchronous=FULL"
								      : "PRAGMA synchronous=NORMAL"))
			goto fail;
		if (store__migrate(s))
			goto fail;
		if (o->ckpt_external) {
			errq_snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%d", STORE_WAL_SIZE_LIMIT);
			if (pragma(s, "PRAGMA wal_autocheckpoint=0") || pragma(s, sql))
				goto fail;
			sqlite3_wal_hook(s->db, wal_hook, s);
		}
		for (int i = 0; i < STMT_COUNT; i++)
			if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
					       NULL) != SQLITE_OK) {
				store__set_err(s, "prepare");
				goto fail;
			}
		s->gcache = calloc(STORE_GROUP_CACHE_SLOTS, sizeof(*s->gcache));
		s->gtags = calloc(STORE_GROUP_CACHE_SLOTS, sizeof(*s->gtags));
		s->envs = calloc(STORE_ENV_CACHE, sizeof(*s->envs));
		s->services = calloc(STORE_SERVICE_CACHE, sizeof(*s->services));
		s->groups_per_service = o->groups_per_service;
		s->mono_ns = o->mono_ns;
		s->mono_ctx = o->mono_ctx;
		if (!s->gcache || !s->gtags || store__agg_alloc(s) || !s->envs || !s->services) {
			errq_snprintf(s->err, sizeof(s->err), "out of memory");
			goto fail;
		}
		/* counts of events stored before a crash, past the last written aggregates */
		s->agg_recover = true;
		if (store_sqlite_agg_flush(s))
			goto fail;
	} else {
		int v = 0;
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				v = sqlite3_column_int(st, 0);
			sqlite3_finalize(st);
		}
		if (v != STORE_SCHEMA_VERSION) {
			errq_snprintf(s->err, sizeof(s->err), "database schema version %d, this errq reads %d",
				      v, STORE_SCHEMA_VERSION);
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	errq_snprintf(err, errsz, "cannot open database '%s': %s", o->path, s->err);
	free_handle(s);
	return -1;
}

void store_sqlite_close(struct store *s)
{
	if (!s)
		return;
	if (s->in_txn)
		store_sqlite_txn_rollback(s);
	if (!s->readonly && s->db && store_sqlite_agg_flush(s)) /* else the next open aggregates them again */
		errq_snprintf(s->err, sizeof(s->err), "%s", "aggregates not written at close");
	free_handle(s);
}

int store__step(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store__set_err(s, what);
	return 0;
}

void store__clear_name_cache(struct name_slot *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].name);
		memset(&c[i], 0, sizeof(c[i]));
	}
}

int store_sqlite_txn_begin(struct store *s)
{
	if (s->in_txn) {
		errq_snprintf(s->err, sizeof(s->err), "transaction already open");
		return -1;
	}
	if (store__step(s, s->stmt[STMT_BEGIN], "begin"))
		return -1;
	s->in_txn = true;
	s->txn_overflow = 0;
	if (s->agg_recover && store__agg_recover(s)) {
		store__step(s, s->stmt[STMT_ROLLBACK], "rollback");
		s->in_txn = false;
		return -1;
	}
	return 0;
}

void store_sqlite_txn_rollback(struct store *s)
{
	if (!s->in_txn)
		return;
	/* SQLite may have rolled back already (an I/O error or a full disk during COMMIT ends the
	 * transaction); either way, keep the failure that made the caller roll back: a failing
	 * rollback is only its echo */
	if (!sqlite3_get_autocommit(s->db)) {
		char why[sizeof(s->err)];
		int cls = s->errclass;
		bool busy = s->busy;
		memcpy(why, s->err, sizeof(why));
		store__step(s, s->stmt[STMT_ROLLBACK], "rollback");
		memcpy(s->err, why, sizeof(why));
		s->errclass = cls;
		s->busy = busy;
	}
	/* groups and environments inserted by this transaction are gone: forget cached ids */
	memset(s->gcache, 0, STORE_GROUP_CACHE_SLOTS * sizeof(*s->gcache));
	memset(s->gtags, 0, STORE_GROUP_CACHE_SLOTS * sizeof(*s->gtags));
	store__clear_name_cache(s->envs, STORE_ENV_CACHE);
	store__clear_name_cache(s->services, STORE_SERVICE_CACHE);
	/* the aggregates held this transaction's events too: rebuild them from the database */
	store__agg_clear(s);
	s->agg_recover = true;
	s->txn_overflow = 0;
	s->txn_dropped = 0; /* the writer counts them again when it retries the batch */
	s->in_txn = false;
}

uint64_t store__now(const struct store *s)
{
	return s->mono_ns ? s->mono_ns(s->mono_ctx) : errq_mono_ns();
}

void store__bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v && *v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static uint64_t str_hash(const char *v)
{
	return errq_fnv64(ERRQ_FNV64_INIT, v, strlen(v));
}

/* A cached name -> value; NULL on a miss (*slot is where to put it). */
static struct name_slot *name_find(struct name_slot *c, size_t n, const char *name, struct name_slot **slot)
{
	uint64_t h = str_hash(name);
	struct name_slot *sl = &c[h % n];
	*slot = sl;
	if (sl->name && sl->hash == h && strcmp(sl->name, name) == 0)
		return sl;
	return NULL;
}

static int name_put(struct name_slot *sl, const char *name, int64_t value)
{
	char *dup = strdup(name);
	if (!dup)
		return -1;
	free(sl->name);
	sl->name = dup;
	sl->hash = str_hash(name);
	sl->value = value;
	return 0;
}

int64_t store__env_id(struct store *s, const char *env)
{
	struct name_slot *sl;
	if (!env || !*env)
		return 0;
	if (name_find(s->envs, STORE_ENV_CACHE, env, &sl))
		return sl->value;
	int64_t id = 0;
	sqlite3_stmt *st = s->stmt[STMT_FIND_ENV];
	sqlite3_bind_text(st, 1, env, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store__set_err(s, "find environment");
	if (!id) {
		st = s->stmt[STMT_INSERT_ENV];
		sqlite3_bind_text(st, 1, env, -1, SQLITE_STATIC);
		if (store__step(s, st, "insert environment"))
			return -1;
		id = sqlite3_last_insert_rowid(s->db);
	}
	if (name_put(sl, env, id))
		return -1;
	return id;
}

/* Whether service may open one more group (groups_per_service).  1 yes (and counts it), 0 no,
 * -1 on error. */
static int service_admits_group(struct store *s, const char *service)
{
	if (!s->groups_per_service)
		return 1;
	struct name_slot *sl;
	if (!name_find(s->services, STORE_SERVICE_CACHE, service, &sl)) {
		sqlite3_stmt *st = s->stmt[STMT_COUNT_SERVICE_GROUPS];
		sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			return store__set_err(s, "count groups");
		if (name_put(sl, service, n))
			return -1;
	}
	if (sl->value >= (int64_t)s->groups_per_service)
		return 0;
	sl->value++;
	return 1;
}

/* The cached slot of fingerprint fp (hash h), or NULL. */
static struct group_cache_slot *cache_find(struct store *s, const char *fp, uint64_t h)
{
	size_t set = (h % (STORE_GROUP_CACHE_SLOTS / STORE_GROUP_CACHE_WAYS)) * STORE_GROUP_CACHE_WAYS;
	uint64_t tag = h | 1, *tags = &s->gtags[set];
	for (int w = 0; w < STORE_GROUP_CACHE_WAYS; w++)
		if (tags[w] == tag && strcmp(s->gcache[set + w].fingerprint, fp) == 0) {
			s->gcache[set + w].used = ++s->gclock;
			return &s->gcache[set + w];
		}
	return NULL;
}

/* An empty way for hash h: its set's empty one, else the least recently used one, emptied (a
 * head not yet in the database is written through first); NULL on error. */
static struct group_cache_slot *cache_take(struct store *s, uint64_t h)
{
	size_t set = (h % (STORE_GROUP_CACHE_SLOTS / STORE_GROUP_CACHE_WAYS)) * STORE_GROUP_CACHE_WAYS;
	uint64_t *tags = &s->gtags[set];
	uint32_t now = ++s->gclock;
	int v = 0;
	for (int w = 0; w < STORE_GROUP_CACHE_WAYS; w++) {
		if (!tags[w]) {
			v = w;
			break;
		}
		if (now - s->gcache[set + w].used > now - s->gcache[set + v].used) /* wrap-safe age */
			v = w;
	}
	struct group_cache_slot *victim = &s->gcache[set + v];
	if (tags[v] && victim->dirty_gen > s->agg_written_gen) {
		/* the evicted group's head is only in memory: write it before forgetting it */
		sqlite3_stmt *st = s->stmt[STMT_SET_HEAD];
		sqlite3_bind_int64(st, 1, victim->id);
		sqlite3_bind_int64(st, 2, victim->head);
		if (store__step(s, st, "set group head"))
			return NULL;
	}
	memset(victim, 0, sizeof(*victim));
	tags[v] = h | 1;
	victim->used = now;
	return victim;
}

/* The cache slot of fingerprint fp (loading it, or inserting a new group described by e), or
 * NULL.  *missing tells whether NULL means the group does not exist and was not created (no
 * way was taken for it: a storm of new fingerprints does not empty the cache), else an error. */
static struct group_cache_slot *group_lookup(struct store *s, const char *fp, const struct store_event *e,
					     bool overflow, bool create, bool *missing)
{
	size_t len = strlen(fp);
	uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, fp, len);
	*missing = false;
	if (len > STORE_FINGERPRINT_MAX) {
		store__fail(s, "fingerprint of %zu bytes, over %d", len, STORE_FINGERPRINT_MAX);
		return NULL;
	}
	struct group_cache_slot *slot = cache_find(s, fp, h);
	if (slot)
		return slot;
	int64_t id = 0, head = 0, last_minute = (int64_t)(e->received_ns / NS_PER_MINUTE);
	uint64_t first_seen = e->received_ns;
	sqlite3_stmt *st = s->stmt[STMT_FIND_GROUP];
	s->wst.group_lookups++;
	sqlite3_bind_text(st, 1, fp, (int)len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		head = sqlite3_column_int64(st, 1);
		first_seen = (uint64_t)sqlite3_column_int64(st, 2);
		last_minute = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store__set_err(s, "find group");
		return NULL;
	}
	if (!id && !create) {
		*missing = true;
		return NULL;
	}
	if (!id) {
		st = s->stmt[STMT_INSERT_GROUP];
		sqlite3_bind_text(st, 1, fp, (int)len, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, e->grouping_version);
		sqlite3_bind_text(st, 3, e->service, -1, SQLITE_STATIC);
		store__bind_text(st, 4, e->environment);
		sqlite3_bind_text(st, 5, overflow ? "(overflow)" : e->error_type, -1, SQLITE_STATIC);
		store__bind_text(st, 6, overflow ? NULL : e->error_code);
		store__bind_text(st, 7, overflow ? "new groups of this service past groups_per_service" : e->message);
		sqlite3_bind_int64(st, 8, (int64_t)e->received_ns);
		sqlite3_bind_int(st, 9, overflow);
		if (store__step(s, st, "insert group"))
			return NULL;
		id = sqlite3_last_insert_rowid(s->db);
	}
	if (!(slot = cache_take(s, h)))
		return NULL;
	memcpy(slot->fingerprint, fp, len + 1);
	slot->id = id;
	slot->head = head;
	slot->first_seen = first_seen;
	slot->last_minute = last_minute;
	return slot;
}

/* The slot of e's group; a new group past the service's limit becomes the service's overflow
 * group.  *overflowed tells which. */
static struct group_cache_slot *group_slot(struct store *s, const struct store_event *e, bool *overflowed)
{
	bool missing;
	*overflowed = false;
	struct group_cache_slot *g = group_lookup(s, e->fingerprint, e, false, !s->groups_per_service, &missing);
	if (!missing)
		return g;
	int admit = service_admits_group(s, e->service);
	if (admit < 0)
		return NULL;
	if (admit)
		return group_lookup(s, e->fingerprint, e, false, true, &missing);
	char fp[STORE_OVERFLOW_FP_LEN + 1];
	store_overflow_fingerprint(e->service, fp);
	*overflowed = true;
	return group_lookup(s, fp, e, true, true, &missing);
}

/* Which of g's indexed columns e moves (AGG_MOVES_*), noted in the slot. */
static unsigned group_moves(struct group_cache_slot *g, const struct store_event *e)
{
	unsigned m = 0;
	int64_t minute = (int64_t)(e->received_ns / NS_PER_MINUTE);
	if (e->received_ns < g->first_seen) {
		g->first_seen = e->received_ns;
		m |= AGG_MOVES_FIRST;
	}
	if (minute > g->last_minute) {
		g->last_minute = minute;
		m |= AGG_MOVES_MINUTE;
	}
	return m;
}

/* e's group slot (created if new) and environment id; NULL on error. */
static struct group_cache_slot *event_group(struct store *s, const struct store_event *e, bool *overflowed,
					    int64_t *envid)
{
	struct group_cache_slot *g = group_slot(s, e, overflowed);
	if (!g || (*envid = store__env_id(s, e->environment)) < 0)
		return NULL;
	return g;
}

int store_sqlite_txn_add_event(struct store *s, const struct store_event *e)
{
	bool overflowed;
	int64_t envid;
	struct group_cache_slot *g = event_group(s, e, &overflowed, &envid);
	if (!g)
		return -1;
	sqlite3_stmt *st = s->stmt[STMT_INSERT_EVENT];
	sqlite3_bind_blob(st, 1, e->event_id, 16, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, g->id);
	sqlite3_bind_int64(st, 3, (int64_t)e->time_ns);
	sqlite3_bind_int64(st, 4, (int64_t)e->received_ns);
	sqlite3_bind_text(st, 5, e->service, -1, SQLITE_STATIC);
	store__bind_text(st, 6, e->environment);
	store__bind_text(st, 7, e->release);
	store__bind_text(st, 8, e->host);
	store__bind_text(st, 9, e->task);
	sqlite3_bind_text(st, 10, e->error_type, -1, SQLITE_STATIC);
	store__bind_text(st, 11, e->error_code);
	store__bind_text(st, 12, e->message);
	sqlite3_bind_int64(st, 13, e->attempt);
	sqlite3_bind_int(st, 14, e->handled);
	sqlite3_bind_int64(st, 15, e->truncated);
	if (e->extra && e->extra_len)
		sqlite3_bind_blob(st, 16, e->extra, (int)e->extra_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 16);
	sqlite3_bind_int64(st, 17, g->head);
	if (store__step(s, st, "insert event"))
		return -1;
	if (sqlite3_changes(s->db) == 0)
		return 0; /* event_id already stored */
	int64_t rowid = sqlite3_last_insert_rowid(s->db);
	g->head = rowid;
	g->dirty_gen = s->agg_open.gen;
	s->txn_overflow += overflowed; /* counted once the transaction commits */
	if (store__agg_add(s, g->id, envid, rowid, e, false, STORE_AGG_GROUP | STORE_AGG_SERVICE, group_moves(g, e),
			   g))
		return -1;
	return 1;
}

/* One call per batch (storage.h): SQLite's statements are in-process, so a loop over
 * store_sqlite_txn_add_event costs nothing a single statement would save. */
int store_sqlite_txn_add_events(struct store *s, const struct store_event *ev, size_t n, int8_t *result)
{
	for (size_t i = 0; i < n; i++) {
		int r = store_sqlite_txn_add_event(s, &ev[i]);
		if (r < 0)
			return -1;
		result[i] = (int8_t)r;
	}
	return 0;
}

int store_sqlite_txn_count_event(struct store *s, const struct store_event *e)
{
	bool overflowed;
	int64_t envid;
	if (!s->in_txn)
		return store__fail(s, "count event outside a transaction");
	/* a resend of an event stored before (after a reconnect) is a duplicate, quota or not */
	sqlite3_stmt *st = s->stmt[STMT_EVENT_STORED];
	sqlite3_bind_blob(st, 1, e->event_id, 16, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return store__set_err(s, "find event");
	struct group_cache_slot *g = event_group(s, e, &overflowed, &envid);
	if (!g)
		return -1;
	s->txn_overflow += overflowed;
	s->txn_dropped++; /* makes this transaction's commit write the aggregates */
	return store__agg_add(s, g->id, envid, 0, e, true, STORE_AGG_GROUP | STORE_AGG_SERVICE, group_moves(g, e),
			      g) ? -1 : 1;
}

int store__commit(struct store *s)
{
	if (store__step(s, s->stmt[STMT_COMMIT], "commit"))
		return -1;
	s->in_txn = false;
	s->wst.overflow_events += s->txn_overflow;
	s->txn_overflow = 0;
	s->txn_dropped = 0;
	return 0;
}

enum commit_mode { ALL, DUE, IDLE };

static int commit_with(struct store *s, enum commit_mode mode)
{
	if (!s->in_txn) {
		errq_snprintf(s->err, sizeof(s->err), "no open transaction");
		return -1;
	}
	/* counted-only events exist nowhere but in the aggregates: they go with this commit */
	if (s->txn_dropped || (mode == IDLE && store__agg_backlog(s) <= STORE_AGG_SYNC_MAX))
		mode = ALL;
	int rc = mode == ALL ? store__agg_write_all(s) : mode == IDLE ? store__agg_write_step(s) : store__agg_write_due(s);
	if (rc)
		return -1;
	return store__commit(s);
}

int store_sqlite_txn_commit(struct store *s)
{
	return commit_with(s, ALL);
}

int store_sqlite_txn_commit_deferred(struct store *s)
{
	return commit_with(s, DUE);
}

int store_sqlite_txn_commit_idle(struct store *s)
{
	return commit_with(s, IDLE);
}

void store_sqlite_get_write_stats(struct store *s, struct store_write_stats *st)
{
	*st = s->wst;
	st->agg_generations = s->agg_closes;
}

/* One collector per SQLite database (store_lock): no other collector's events to listen for. */
int store_sqlite_tail_listen(struct store *s, uint32_t timeout_ms, store_tail_want_cb want, store_event_cb cb, void *ctx,
			     uint64_t *missed)
{
	(void)timeout_ms;
	(void)want;
	(void)cb;
	(void)ctx;
	(void)missed;
	errq_snprintf(s->err, sizeof(s->err), "a SQLite database has one collector: no other collector's events to tail");
	return -1;
}

const struct store_backend store_sqlite_backend = {
    .name = "sqlite",
#define SQLITE_OP(need, kind, ret, op, params, args) .op = store_sqlite_##op,
    STORE_BACKEND_OPS(SQLITE_OP)
#undef SQLITE_OP
};
