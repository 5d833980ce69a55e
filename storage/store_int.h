/* store_int.h: what the storage files share and nobody else sees. */
#ifndef ERRQ_STORE_INT_H
#define ERRQ_STORE_INT_H
#include <sqlite3.h>
#include <stdatomic.h>

#include "backend.h"
#include "storage.h"

/* The SQLite backend: store_sqlite_<op> for every operation of backend.h (the table is
 * store_sqlite_backend, in store.c). */
STORE_BACKEND_DECLARE(sqlite)

#define NS_PER_MINUTE 60000000000ULL

/* Prepared statements of the writer, reused for the life of the handle. */
enum store_stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_INSERT_EVENT,
	STMT_FIND_GROUP,
	STMT_INSERT_GROUP,
	STMT_UPDATE_GROUP,        /* + AGG_MOVES_* flags: the variants below */
	STMT_UPDATE_GROUP_FIRST,
	STMT_UPDATE_GROUP_MINUTE,
	STMT_UPDATE_GROUP_BOTH,
	STMT_UPSERT_MINUTE,
	STMT_UPSERT_SERVICE_MINUTE,
	STMT_SET_HEAD,
	STMT_FIND_ENV,
	STMT_INSERT_ENV,
	STMT_COUNT_SERVICE_GROUPS,
	STMT_SET_AGG_THROUGH,
	STMT_EVENT_STORED,
	STMT_COUNT
};

/* The writer's statements of store_alerts.c, prepared on first use (a handle that never
 * alerts prepares none). */
enum store_alert_stmt {
	ASTMT_CIRCUIT_INSERT,
	ASTMT_CIRCUIT_UPDATE,
	ASTMT_CIRCUIT_DELETE,
	ASTMT_TRANSITION_INSERT,
	ASTMT_ALERT_UPSERT,
	ASTMT_DELIVERY_INSERT,
	ASTMT_DELIVERY_UPDATE,
	ASTMT_SILENCE_INSERT,
	ASTMT_SILENCE_EXPIRE,
	ASTMT_BATCH_INSERT,
	ASTMT_BATCH_PRUNE,
	ASTMT_PRUNE_TRANSITIONS_SCAN,
	ASTMT_PRUNE_TRANSITIONS,
	ASTMT_PRUNE_DELIVERIES,
	ASTMT_PRUNE_ALERTS,
	ASTMT_PRUNE_SILENCES,
	ASTMT_COUNT
};

/* One way of the writer's group cache (STORE_GROUP_CACHE_SLOTS in sets of
 * STORE_GROUP_CACHE_WAYS): fingerprint -> group id and chain head.  Its fingerprint's hash is
 * in store.gtags (a set's tags share a cache line; 0 = empty way). */
struct group_cache_slot {
	int64_t id;
	int64_t head;       /* rowid of the group's newest event (its chain's head) */
	uint64_t dirty_gen; /* aggregate generation of head; > agg_written_gen: not in the database */
	uint64_t first_seen; /* as the database will have it once the aggregates are written */
	int64_t last_minute; /* likewise (groups.last_minute: last_seen's minute) */
	uint32_t used;      /* the cache's clock when last used (replacement: the least recent) */
	uint32_t agg_idx;   /* where the group's newest entry was in the open generation ... */
	uint64_t agg_gen;   /* ... of this number (a hint for store__agg_add) */
	char fingerprint[STORE_FINGERPRINT_MAX + 1];
};

struct name_slot { /* environment -> id, service -> group count */
	uint64_t hash;
	int64_t value;
	char *name; /* owned */
};

/* One pending (group, minute, environment) aggregate (store_agg.c). */
struct agg_entry {
	int64_t group_id; /* 0 = free slot */
	int64_t minute;
	int64_t env_id;
	uint64_t count, handled;
	uint64_t dropped; /* of count: counted, not stored (store_txn_count_event) */
	int64_t head;     /* newest rowid of the group in this generation */
	uint64_t first_ns, last_ns;
	unsigned moves;   /* AGG_MOVES_*: the group's indexed columns change */
	char *environment, *error_code, *message; /* last seen values (owned) */
};

/* One pending (service, minute) aggregate. */
struct agg_service {
	char *service; /* owned; NULL = free slot */
	int64_t minute;
	uint64_t count, dropped;
};

/* A generation of pending aggregates: open (hash tables) or closed (entries compacted to the
 * front, sorted by group, being written a slice at a time). */
struct agg_gen {
	struct agg_entry *e;  /* open: STORE_AGG_SLOTS; closed: 3/4 of them (its most) */
	struct agg_service *sv; /* STORE_AGG_SERVICE_SLOTS */
	uint32_t n, n_sv;     /* entries in use */
	int64_t through;      /* the newest event rowid counted in it */
	uint64_t since_ns;    /* monotonic time of its first entry; 0 = none */
	size_t bytes;         /* strings it holds */
	uint64_t gen;         /* its number: the open one's grows by one at each close */
};

/* the claimed deliveries of a handle (store_delivery_claim), STORE_SQLITE_LEASES_MAX */
struct store_lease {
	int64_t id;     /* the delivery */
	uint64_t until; /* ns */
};

struct store {
	const struct store_backend *be; /* &store_sqlite_backend: first, as in every backend's handle */
	sqlite3 *db;
	bool readonly;
	bool in_txn;
	bool busy;
	int errclass; /* enum store_errclass of the last failure */
	char err[512];
	sqlite3_stmt *stmt[STMT_COUNT];
	sqlite3_stmt *astmt[ASTMT_COUNT]; /* writer: store_alerts.c's, prepared on first use */
	uint32_t groups_per_service;
	struct group_cache_slot *gcache; /* writer only, STORE_GROUP_CACHE_SLOTS */
	uint64_t *gtags;                 /* their fingerprints' hashes, | 1 (0 = empty) */
	struct name_slot *envs;          /* writer only, STORE_ENV_CACHE */
	struct name_slot *services;      /* writer only, STORE_SERVICE_CACHE: groups per service */
	uint32_t gclock;                 /* the group cache's use clock */
	uint64_t (*mono_ns)(void *ctx);  /* store_opts.mono_ns, or NULL */
	void *mono_ctx;
	struct agg_gen agg_open;         /* writer only: the generation taking counts */
	struct agg_gen agg_closed;       /* writer only: the one being written (agg_closing) */
	uint32_t *agg_used;              /* the open table's used slots, in the order taken */
	bool agg_closing;
	uint32_t agg_pos;                /* the closed generation's next entry to write */
	uint32_t agg_counted;            /* counts taken since the last deferred slice (its pace) */
	uint64_t agg_written_gen;        /* the newest generation written in full */
	size_t agg_bytes;                /* strings held by both generations */
	uint64_t agg_closes;             /* generations closed (tests, stats) */
	bool agg_recover;                /* aggregate the events past 'aggregated_through' again */
	struct store_ckpt *ckpt;         /* writer only: kicked when the WAL grows */
	int wal_pages;                   /* from the WAL hook: frames in the WAL after the last commit */
	int64_t cap_cursor;              /* the per-group cap's sweep position (rowid) */
	int64_t cap_backlog;             /* rows over the cap the pass has still to delete */
	int64_t cap_pass_deleted;        /* rows the pass deleted so far */
	bool cap_sweeping;               /* a sweep is under way (some group was over the cap) */
	struct store_maint_scratch *maint; /* writer only: the rows an upkeep step deletes */
	uint64_t cap_next_check;         /* when to look for groups over the cap again */
	uint64_t fold_next_check;        /* when to look for minute counts to fold again */
	struct store_write_stats wst;
	struct store_lease *leases;      /* writer only: the claimed deliveries (store_alerts.c) */
	uint32_t n_leases;               /* at most STORE_SQLITE_LEASES_MAX */
	uint64_t txn_overflow;           /* overflow events of the open transaction */
	uint64_t txn_dropped;            /* events counted, not stored, in the open transaction */
};

/* ---- running SQL: the one set of wrappers (store.c) ----
 * Busy policy: storage never loops on SQLITE_BUSY itself.  The connection's busy handler
 * (sqlite3_busy_timeout, set at open: the busy_timeout_ms option, else 2 s for the writer and
 * 100 ms read-only; 0 on the checkpointer's own connection) waits for the lock; when it gives
 * up the call fails, store__set_err records errclass STORE_ERR_LOCKED and store_last_busy()
 * turns true, and the caller decides (the writer retries its batch, upkeep tries again on its
 * next pass, a reader answers UNAVAILABLE).  A failure that is not SQLite's (store__fail)
 * clears the busy flag, so a stale one never makes a caller retry a refusal. */

/* Records the connection's last error as "what: sqlite's message" and classifies it.
 * Returns -1. */
int store__set_err(struct store *s, const char *what);
/* Records a failure of storage's own (bad input, wrong state): not busy, STORE_ERR_OTHER.
 * Returns -1. */
int store__fail(struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs SQL text (no rows): 0, or -1 recorded as "what: ..." (what NULL: the SQL itself). */
int store__exec(struct store *s, const char *sql, const char *what);
/* Steps a statement once and resets it (a prepared writer statement): 0, or -1 with the
 * reason recorded as `what: sqlite's message`. */
int store__step(struct store *s, sqlite3_stmt *st, const char *what);
/* A transaction of its own for upkeep between the writer's transactions: refused inside one
 * ("what inside a transaction"); BEGIN IMMEDIATE, so the write lock is taken (or the busy
 * handler gives up) at the start, not halfway. */
int store__own_txn_begin(struct store *s, const char *what);
/* Ends it: rc < 0 rolls back (keeping the error that caused it) and returns -1; else
 * commits and returns rc, or rolls back and returns -1 ("commit what: ...") when COMMIT
 * fails. */
int store__own_txn_end(struct store *s, int rc, const char *what);
static inline const char *store__col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}
int store__migrate(struct store *s);
/* The writer's monotonic clock (store_opts.mono_ns or errq_mono_ns). */
uint64_t store__now(const struct store *s);
/* Binds text, or NULL for NULL or "" (store.c). */
void store__bind_text(sqlite3_stmt *st, int i, const char *v);
/* Id of an environment name (0 for none), inserting it when new; -1 on error (store.c). */
int64_t store__env_id(struct store *s, const char *env);
/* Commits the open transaction as it is (store.c). */
int store__commit(struct store *s);

/* ---- the deferred aggregates (store_agg.c) ---- */
int store__agg_alloc(struct store *s);
void store__agg_free(struct store *s);
/* Forgets every pending aggregate (after a rollback, before recovering). */
void store__agg_clear(struct store *s);
#define STORE_AGG_GROUP 1u   /* store__agg_add: count in the group and its minute */
#define STORE_AGG_SERVICE 2u /* and/or in the service's minute */
/* The indexed columns of groups a count moves: first_seen (earlier) and last_minute (a later
 * minute).  Each index a statement names is rewritten even when the value stays, so the group
 * update names them only when they change (STMT_UPDATE_GROUP + these flags). */
#define AGG_MOVES_FIRST 1u
#define AGG_MOVES_MINUTE 2u
/* Counts e (stored as rowid, or 0 with dropped: counted only) in the open generation.  slot
 * (or NULL) is the group's cache slot: its hint saves the table probe. */
int store__agg_add(struct store *s, int64_t gid, int64_t envid, int64_t rowid, const struct store_event *e,
		   bool dropped, unsigned what, unsigned moves, struct group_cache_slot *slot);
/* Inside the open transaction: writes every pending aggregate. */
int store__agg_write_all(struct store *s);
/* Inside the open transaction: closes the open generation when it is due and writes a slice
 * of the closed one (STORE_AGG_FLUSH_CHUNK entries, or the counts taken since the last one). */
int store__agg_write_due(struct store *s);
/* Inside the open transaction: closes the open generation unless one is closed already, and
 * writes a slice of the closed one. */
int store__agg_write_step(struct store *s);
/* Entries not written yet (the open generation's and the rest of the closed one's). */
uint32_t store__agg_backlog(const struct store *s);
/* Inside a transaction: aggregates the events past 'aggregated_through' again and writes
 * them (after a crash or a rollback). */
int store__agg_recover(struct store *s);
/* Backups holding a snapshot now (store_backup.c): the writer's RESTART checkpoint would wait
 * on them (its busy timeout, each time), so store_wal_catch_up skips while this is not 0. */
extern atomic_int store__backups_pinning;
void store__clear_name_cache(struct name_slot *c, size_t n);
/* One step of the alerting tables' upkeep inside the caller's open transaction (store_maint.c
 * and the public prunes): the number of rows deleted, or -1; *more is set when some kind
 * had `limit` rows to delete. */
int store__alerts_prune_step(struct store *s, uint64_t older_than_ns, uint32_t limit, bool *more);
int store__outcome_batches_prune_step(struct store *s, uint64_t older_than_ns, uint32_t limit, bool *more);
#endif
