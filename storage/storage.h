/* storage.h: errq's store, the one interface to the database (and storage/ the one place SQL
 * lives).  Two backends answer it (backend.h, docs/architecture.md "Storage backends"): SQLite
 * (store*.c, the default) and PostgreSQL (pg/); store_opts.path's URL chooses (store_url.h).
 * What follows describes SQLite where the two differ; the PostgreSQL backend has no lock file,
 * checkpointer, WAL catch-up, deferred aggregates, pragmas or online backup, and those calls
 * answer for it as store_api.c says.
 *
 * Two kinds of handle:
 *  - the writer (store_open with readonly=0): exactly one per database, owned by the ingest
 *    writer thread.  It creates and migrates the schema, and every write goes through it, in
 *    transactions the caller brackets with store_txn_begin / store_txn_commit.
 *  - readers (readonly=1): one per query thread; each query is one statement, so each read
 *    transaction is short and never pins the WAL.
 *  - store_backup (store_backup.c) opens connections of its own and holds one read
 *    transaction for a whole copy: the one long reader, which the writer knows about.
 * A handle is used by one thread at a time.  Errors are returned as -1 with a one-line reason
 * in the handle (store_errmsg) or in the caller's buffer for store_open. */
#ifndef ERRQ_STORAGE_H
#define ERRQ_STORAGE_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 5 /* 2: the alerting tables (storage_alerts.h); 4: dropped counts;
				* 5: groups.agg_through, last_minute */
#define STORE_GROUP_CACHE_SLOTS 131072 /* fingerprint -> group id cache (~10 MiB) */
#define STORE_GROUP_CACHE_WAYS 4       /* ... in sets of 4: the least recently used way goes */
#define STORE_FINGERPRINT_MAX 23       /* bytes of a fingerprint the writer accepts (errqd: 16) */
#define STORE_AGG_SLOTS 65536          /* (group, minute, env) aggregates per generation, 3/4 used */
#define STORE_AGG_SERVICE_SLOTS 1024   /* (service, minute) aggregates per generation, 3/4 used */
#define STORE_AGG_MAX_BYTES (32u << 20) /* sample strings the pending aggregates may hold */
#define STORE_AGG_FLUSH_CHUNK 1024     /* entries of a closed generation written per transaction, at
					* least (a deferred commit: as many as it counted, if more) */
#define STORE_AGG_SYNC_MAX 4096        /* store_txn_commit_idle writes all when no more pending */
#define STORE_ENV_CACHE 256           /* environment name -> id (direct-mapped) */
#define STORE_SERVICE_CACHE 4096      /* service -> group count, for groups_per_service */

enum store_durability { STORE_DURABILITY_NORMAL = 0, STORE_DURABILITY_FULL = 1 };

struct store_opts {
	const char *path;    /* the database: a file path, sqlite:///PATH, or postgres://... (store_url.h) */
	bool readonly;
	int durability;      /* enum store_durability */
	int cache_mib;       /* SQLite page cache; 0 = default (64 MiB writer, 8 MiB reader) */
	int busy_timeout_ms; /* how long one statement waits on a lock; 0 = 2 s writer, 100 ms reader */
	bool ckpt_external;  /* writer: no automatic checkpoints (a store_ckpt runs them) */
	uint32_t groups_per_service; /* writer: new groups past this go to the service's overflow
				      * group; 0 = no limit */
	/* writer: the monotonic clock the aggregates' timing reads (tests and benchmarks inject
	 * one); NULL = errq_mono_ns */
	uint64_t (*mono_ns)(void *ctx);
	void *mono_ctx;
	/* PostgreSQL: a session only for the fleet's leadership (store_leader_*, storage_alerts.h):
	 * no migration (the writer's handle runs it), no writer state, and keepalives of a few
	 * seconds on both ends, so a vanished leader's lock goes within seconds.  SQLite refuses it. */
	bool leader_session;
};

/* Bits of store_event.truncated: which fields the collector shortened. */
#define STORE_TRUNC_FIELDS(X)                                                                        \
	X(SERVICE, "service") X(ENVIRONMENT, "environment") X(RELEASE, "release") X(HOST, "host")   \
	X(TASK, "task") X(ERROR_TYPE, "error_type") X(ERROR_CODE, "error_code")                     \
	X(MESSAGE, "message") X(FINGERPRINT, "fingerprint") X(FRAMES, "frames")                     \
	X(DETAILS, "details")
enum store_trunc_bit {
#define X(name, str) STORE_TRUNC_BIT_##name,
	STORE_TRUNC_FIELDS(X)
#undef X
	STORE_TRUNC_NBITS
};
const char *store_trunc_name(int bit);

/* One event as the writer stores it and as queries return it.  Strings are NUL-terminated;
 * empty optional strings may be NULL.  In query callbacks every pointer is valid only during
 * the callback. */
struct store_event {
	int64_t rowid;                 /* set by queries; ignored on insert */
	const uint8_t *event_id;       /* 16 bytes */
	uint64_t time_ns;              /* client time, 0 = unknown */
	uint64_t received_ns;          /* collector time */
	const char *service, *environment, *release, *host, *task;
	const char *error_type, *error_code, *message;
	const char *fingerprint;       /* the group key, computed by the collector */
	int grouping_version;
	uint32_t attempt;
	bool handled;
	uint32_t truncated;            /* STORE_TRUNC_BIT_* mask */
	const void *extra;             /* opaque blob (frames and details), may be NULL */
	size_t extra_len;
};

struct store;

int store_open(struct store **out, const struct store_opts *o, char *err, size_t errsz);
void store_close(struct store *s); /* accepts NULL */
const char *store_errmsg(const struct store *s);
/* True when the last failure was a lock held by another connection (worth retrying). */
bool store_last_busy(const struct store *s);
/* What kind of failure the last one was, for operators (readiness, metrics). */
enum store_errclass {
	STORE_ERR_NONE = 0,
	STORE_ERR_LOCKED,     /* SQLITE_BUSY / SQLITE_LOCKED: another connection holds a lock */
	STORE_ERR_FULL,       /* SQLITE_FULL: the disk (or the file size limit) is full */
	STORE_ERR_UNWRITABLE, /* read-only file, permissions, I/O errors, cannot open */
	STORE_ERR_OTHER,
	STORE_ERR_UNAVAILABLE, /* the database server cannot be reached (the connection was lost): the
				* backend reconnects with backoff at the next store_txn_begin */
};
int store_last_errclass(const struct store *s);

/* Writer: a transaction holding many batches.  store_txn_add_event returns 1 when the event
 * was stored, 0 when its event_id was already stored (a duplicate), -1 on error (the caller
 * then calls store_txn_rollback).  Group aggregates and minute counts are accumulated in
 * memory and written by store_txn_commit, once per group per transaction. */
int store_txn_begin(struct store *s);
int store_txn_add_event(struct store *s, const struct store_event *e);
/* Writer: store_txn_add_event for n events at once (one statement on PostgreSQL, a loop on
 * SQLite).  result[i] is 1 when ev[i] was stored, 0 when a duplicate (of a stored event or of
 * an earlier one of ev).  Returns 0, or -1 (the caller rolls back; result is then undefined). */
int store_txn_add_events(struct store *s, const struct store_event *ev, size_t n, int8_t *result);
/* Writer: counts e in its group (created if new, groups_per_service applies) and its service
 * like a stored event — total, minute counts, last seen — and in their `dropped` tally, but
 * stores no event row (the quota refused it: server/quota.h).  An event_id already stored is
 * a duplicate (a resend after a reconnect): not counted, returns 0.  An event counted so and
 * sent again is counted again: there is no row to find it by.  These counts are not derived
 * from events, so a transaction holding any is never deferred: it writes every pending
 * aggregate with its commit.  Returns 1 (counted), 0 (a duplicate), or -1 (the caller rolls
 * back). */
int store_txn_count_event(struct store *s, const struct store_event *e);
int store_txn_commit(struct store *s);
void store_txn_rollback(struct store *s);

/* Deferred aggregates (store_agg.c).  The per-group and per-minute counts and the groups'
 * chain heads (the "aggregates") are accumulated in memory across transactions and written
 * once per group per generation, not once per transaction: under load a transaction holds
 * one or two batches, and writing the aggregates every time was measured at ~60 % of the
 * writer's CPU.  A generation closes STORE_AGG_FLUSH_MS after its first count (or when its
 * table is 3/4 full, or the strings reach STORE_AGG_MAX_BYTES) and is then written in slices
 * of whole groups, one slice with each deferred commit (STORE_AGG_FLUSH_CHUNK entries, or as
 * many as the transaction counted if more), so no commit carries a whole generation.  Events are durable at every commit; counts trail them by at most about
 * two intervals under load.  A crash or a rollback loses only aggregates: the events after
 * the last written ones (meta 'aggregated_through', and each group's agg_through) are
 * aggregated again when the writer opens the store or begins the next transaction.  Upkeep
 * and status changes write pending aggregates first.
 * store_txn_commit writes every pending aggregate with the events; store_txn_commit_deferred
 * writes the slice that is due; store_txn_commit_idle (the queue is empty) writes all of them
 * when at most STORE_AGG_SYNC_MAX are pending, else a slice, and the caller goes on with
 * store_agg_flush_step while it stays idle. */
#define STORE_AGG_FLUSH_MS 1000
int store_txn_commit_deferred(struct store *s);
int store_txn_commit_idle(struct store *s);
bool store_agg_pending(const struct store *s);
/* Writes pending aggregates in a transaction of its own (nothing pending: returns 0). */
int store_agg_flush(struct store *s);
/* Writes one slice of them in a transaction of its own; *more tells whether any remain. */
int store_agg_flush_step(struct store *s, bool *more);

/* Queries (readers).  Each returns 0 and calls cb once per row (stop early by returning
 * non-zero from cb), or -1 on error. */
/* The longest GLOB pattern a filter may hold, bytes: the collector's 256-byte globs with each
 * '[' made the literal "[[]" (server/svc_common.h, SVC_GLOB_BUFSZ).  SQLite takes any length;
 * PostgreSQL's translation to a regular expression is sized for this (storage/pg/pg_query.c):
 * a longer one whose expression does not fit is refused. */
#define STORE_GLOB_MAX 768
struct store_event_filter {
	const char *service;      /* NULL = any */
	const char *environment;  /* NULL = any */
	const char *fingerprint;  /* NULL = any */
	const char *error_type;   /* GLOB pattern (SQLite's); NULL or "" = any */
	const char *error_code;   /* GLOB pattern; NULL or "" = any */
	const char *task;         /* GLOB pattern; NULL or "" = any */
	uint64_t since_ns;        /* received_ns >= since; 0 = all */
	int64_t before_rowid;     /* keyset cursor: rows with rowid < this; 0 = from the newest */
	uint32_t limit;
};
typedef int (*store_event_cb)(void *ctx, const struct store_event *e);
int store_list_events(struct store *s, const struct store_event_filter *f, store_event_cb cb, void *ctx);

struct store_group {
	int64_t id;
	const char *fingerprint, *service, *environment, *error_type, *error_code, *message, *status;
	uint64_t count, total, handled;
	uint64_t dropped; /* of total: counted but not stored (quota_exceeded), all time */
	uint64_t first_seen_ns, last_seen_ns, resolved_at_ns;
	int grouping_version;
	bool regression, overflow;
	uint64_t sort_key; /* the value the list is sorted by (for the next cursor) */
};
enum store_group_sort { STORE_SORT_LAST_SEEN = 0, STORE_SORT_COUNT = 1, STORE_SORT_FIRST_SEEN = 2 };
struct store_group_filter {
	const char *service;        /* exact; NULL = any */
	const char *environment;    /* count only this environment; hide groups without any */
	const char *error_type;     /* GLOB pattern; NULL = any */
	const char *error_code;     /* GLOB on the group's code (the last non-empty one); NULL = any */
	const char *status;         /* NULL = any */
	uint64_t since_ns;          /* count events since (minute resolution); hide groups idle since */
	uint64_t until_ns;          /* window end (exclusive); 0 = open */
	int sort;                   /* enum store_group_sort */
	uint64_t before_key;        /* keyset cursor (sort key, id); before_id 0 = from the top */
	int64_t before_id;
	uint32_t limit;
};
typedef int (*store_group_cb)(void *ctx, const struct store_group *g);
int store_list_groups(struct store *s, const struct store_group_filter *f, store_group_cb cb, void *ctx);
/* One group by fingerprint, its count over f's window (service/sort/cursor ignored).
 * Returns 1 (cb called), 0 when unknown, -1 on error. */
int store_get_group(struct store *s, const char *fingerprint, const struct store_group_filter *f,
		    store_group_cb cb, void *ctx);
/* Per-minute counts of a group for n minutes from first_minute (received_ns / 60e9), all
 * environments or one.  counts[n] is zeroed first.  Returns 0 or -1. */
int store_group_histogram(struct store *s, int64_t group_id, const char *environment, int64_t first_minute,
			  uint32_t n, uint64_t *counts);
/* One event by id.  Returns 1 (cb called), 0 when not stored, -1 on error. */
int store_get_event(struct store *s, const uint8_t event_id[16], store_event_cb cb, void *ctx);

/* Writer: sets a group's status (unresolved | resolved | ignored; resolving clears the
 * regression mark and stamps resolved_at).  Returns 1, 0 when unknown, -1 on error. */
int store_set_group_status(struct store *s, const char *fingerprint, const char *status, uint64_t now_ns);

/* Writer: one bounded step of background upkeep, in transactions of its own (never inside
 * store_txn_*): deletes raw events older than retention (their group counts stay), events of
 * groups past the per-group cap (oldest first), folds minute counts older than retention
 * into hourly ones, forgets outcome batches older than STORE_OUTCOME_BATCH_HORIZON_NS and
 * alert history older than alert_history_ns (see store_alerts_prune), and reclaims free
 * pages.  The event sweeps scan at most max_rows rows each (0 = STORE_MAINT_BATCH, at most
 * STORE_MAINT_MAX_ROWS), the alerting parts STORE_MAINT_BATCH rows (a pruned alert takes its
 * outbox rows along).  *more is set when there is work left.  Returns 0 or -1. */
#define STORE_MAINT_BATCH 1000
#define STORE_MAINT_MAX_ROWS 16384 /* the most rows an event sweep scans in one step */
#define STORE_CAP_CHECK_NS (10ULL * 1000000000ULL) /* how often to look for groups over the cap */
#define STORE_CAP_RECHECK_NS (1ULL * 1000000000ULL) /* ... after a pass that deleted some */
#define STORE_FOLD_CHECK_NS (60ULL * 1000000000ULL) /* how often to look for minutes to fold */
#define STORE_VACUUM_PAGES 256 /* pages given back a step */
#define STORE_VACUUM_SLACK 16  /* free pages up to 1/16 of the file stay for inserts to reuse */
struct store_maint_opts {
	uint64_t now_ns;
	uint64_t retention_ns;   /* 0 = keep forever */
	uint32_t per_group_cap;  /* 0 = no cap */
	uint64_t alert_history_ns; /* 0 = STORE_ALERT_HISTORY_NS (storage_alerts.h) */
	uint32_t max_rows;       /* rows each event sweep may scan this step (see above) */
};
int store_maintain(struct store *s, const struct store_maint_opts *o, bool *more);
struct store_write_stats {
	uint64_t events_deleted, overflow_events, minutes_folded, pages_vacuumed;
	uint64_t events_deleted_retention, events_deleted_cap; /* events_deleted, by cause */
	uint64_t group_lookups;   /* fingerprints the group cache did not hold (a SELECT each) */
	uint64_t agg_generations; /* generations of aggregates closed (store_agg.c) */
};
void store_get_write_stats(struct store *s, struct store_write_stats *st);

/* The tail across collectors (issue 17).  Several collectors on one PostgreSQL database each
 * publish to their own tail what their own writer commits; this brings each one what the
 * OTHERS commit.  Every writer transaction that stores events sends, inside it, a notice
 * naming its rows (NOTIFY, which PostgreSQL delivers at COMMIT and in commit order).
 * store_tail_listen, on a read-only handle of its own (its connection LISTENs: never the
 * writer's, nor one that serves queries), waits up to timeout_ms for notices, and for each
 * from another collector (this process's own are skipped: they came through the writer's
 * commit hook) fetches the rows and calls cb with each event (pointers valid during the call;
 * cb's return is ignored), in the order the collectors committed them.  want(ctx) is asked
 * each time notices have been read: false, it discards them (nobody tails: no fetch), so a
 * subscriber that came during the wait gets what was committed after it came.  *missed grows by the events it
 * knows it lost: notices past STORE_TAIL_QUEUE_MAX, a fetch that failed, a catch-up past its
 * bound.  Returns the events delivered, or -1 (the connection was lost:
 * STORE_ERR_UNAVAILABLE; the next call reconnects, with the handle's backoff, LISTENs again
 * and catches up on what the others committed meanwhile: storage/pg/pg_tail.c says what it
 * cannot).  SQLite: one collector per database, nothing to listen for: -1. */
#define STORE_TAIL_QUEUE_MAX 4096    /* notices read and not fetched yet; more: counted missed */
#define STORE_TAIL_FETCH_ROWS 1024   /* rows of one notice one statement fetches (more: again) */
typedef bool (*store_tail_want_cb)(void *ctx);
int store_tail_listen(struct store *s, uint32_t timeout_ms, store_tail_want_cb want, store_event_cb cb, void *ctx,
		      uint64_t *missed);

/* WAL checkpoints on a thread and connection of their own (store_checkpoint.c).  The writer
 * handle, opened with ckpt_external = true, never checkpoints by itself; it kicks the
 * checkpointer when its WAL has grown past STORE_CKPT_WAL_PAGES. */
#define STORE_CKPT_INTERVAL_MS 250
#define STORE_CKPT_WAL_PAGES 8192 /* 32 MiB of 4 KiB pages: kick the checkpointer */
/* The writer completes a checkpoint between transactions past these WAL sizes: early when
 * nothing waits for it (the stall delays no batch), late when batches are queued (each
 * catch-up stalls them: measured at 45 000 events/s, p99 32-38 ms when it came at 8 MiB,
 * 150-640 ms at 32-64 MiB; but catching up often under full load costs ~10 % of the rate). */
#define STORE_CKPT_CATCH_UP_IDLE_PAGES 2048  /* 8 MiB, when the ingest queue is empty */
#define STORE_CKPT_CATCH_UP_BUSY_PAGES 16384 /* 64 MiB, in any case */
#define STORE_WAL_SIZE_LIMIT (128 * 1024 * 1024) /* journal_size_limit: above the catch-up size, so a WAL that starts over reuses its blocks instead of being cut and grown again (growing a file costs the kernel zeroing) */
struct store_ckpt;
struct store_ckpt_stats {
	uint64_t checkpoints, frames, errors, last_wal_frames, max_ns;
};
/* Starts the checkpointer of database db.  A PostgreSQL database has none: 0 with *out NULL
 * (every store_ckpt_* call and store_set_ckpt accept NULL). */
int store_ckpt_start(struct store_ckpt **out, const char *db, char *err, size_t errsz);
void store_ckpt_kick(struct store_ckpt *ck);
void store_ckpt_get_stats(struct store_ckpt *ck, struct store_ckpt_stats *st);
void store_ckpt_stop(struct store_ckpt *ck); /* accepts NULL */
/* The writer's hook: called after each commit with the WAL size in pages. */
void store_set_ckpt(struct store *s, struct store_ckpt *ck);
/* Writer, between transactions: when the WAL has passed min_pages, a RESTART
 * checkpoint on the writer's own connection.  With no write in progress it copies every
 * frame, so the next transaction starts the WAL over; the checkpointer thread has already
 * copied all but the last few frames.  Returns 1 when it ran, 0 when not needed or busy
 * (always 0 on PostgreSQL). */
int store_wal_catch_up(struct store *s, int min_pages);

/* The value of PRAGMA name (one of a fixed list: synchronous, page_size, page_count,
 * freelist_count, auto_vacuum, cache_size, user_version) on this handle's own connection:
 * per-connection settings such as synchronous (what durability set) can be read nowhere
 * else.  For tests and diagnostics.  Returns 0 or -1 (always -1 on PostgreSQL: no pragmas). */
int store_get_pragma_int(struct store *s, const char *name, int64_t *v);
/* Exact count of stored events (a scan: for tests and small databases). */
int store_count_events(struct store *s, uint64_t *n);
/* Cheap totals for status: events stored all time (sum over groups of total - dropped), groups,
 * bytes on disk (file + WAL). */
struct store_totals {
	uint64_t events, groups, db_bytes; /* db_bytes: the main file and the WAL */
	uint64_t dropped;                  /* counted in groups but not stored (quota), all time */
	uint64_t wal_bytes;                /* the WAL alone */
};
int store_get_totals(struct store *s, struct store_totals *t);
/* Online backup (store_backup.c): a consistent copy of the database at src_path, taken from a
 * read-only connection of its own while the writer goes on committing.  The source holds one
 * read transaction for the whole copy, so the copy is one snapshot (WAL lets the writer
 * append meanwhile) and the backup never restarts; sqlite3_backup_step copies
 * STORE_BACKUP_STEP_PAGES pages at a time, and between steps the run checks *cancel and its
 * deadline.  While it runs, the writer skips its RESTART checkpoints (store_wal_catch_up),
 * which would otherwise wait on the pinned snapshot: the WAL grows by what is written during
 * the backup and is copied back after.  The copy goes to tmp_path (created exclusively: an
 * existing file fails), is verified (PRAGMA quick_check) and its events counted, fsynced,
 * renamed to dest_path and the directory fsynced.  On failure tmp_path is removed. */
#define STORE_BACKUP_STEP_PAGES 1024 /* 4 MiB of 4 KiB pages per sqlite3_backup_step */
#define STORE_BACKUP_MAX_NS (3600ULL * 1000000000ULL) /* a backup that takes longer is abandoned */
enum store_backup_rc {
	STORE_BACKUP_OK = 0,
	STORE_BACKUP_FAILED = -1,    /* I/O or SQLite error (err says which) */
	STORE_BACKUP_CANCELLED = -2, /* *cancel was set (shutdown) */
	STORE_BACKUP_TIMEOUT = -3,   /* max_ns passed */
	STORE_BACKUP_CORRUPT = -4,   /* the copy failed its check: removed */
	STORE_BACKUP_EXISTS = -5,    /* tmp_path exists */
	STORE_BACKUP_UNSUPPORTED = -6, /* src_path is no database errq can back up (a PostgreSQL one) */
};
struct store_backup_result {
	uint64_t bytes;       /* size of the copy */
	uint64_t pages;       /* its pages */
	uint32_t page_size;
	uint64_t steps;       /* sqlite3_backup_step calls */
	uint64_t events;      /* rows of events in the copy */
	uint64_t copy_ns, check_ns; /* time to copy (the snapshot was held), to verify */
};
struct store_backup_opts {
	const char *src_path, *tmp_path, *dest_path;
	uint64_t max_ns;            /* 0 = STORE_BACKUP_MAX_NS */
	uint64_t max_bytes_per_sec; /* throttle (smaller steps and pauses between them); 0 = none */
	const atomic_bool *cancel;  /* may be NULL */
};
int store_backup(const struct store_backup_opts *o, struct store_backup_result *r, char *err, size_t errsz);
/* 0 when store_backup can copy database db (src_path: a SQLite one), else -1 with the reason
 * (for a PostgreSQL database: use pg_dump or pg_basebackup). */
int store_backup_check(const char *db, char *err, size_t errsz);
/* True while some store_backup of this process holds its snapshot. */
bool store_backup_pinning(void);

/* One collector per SQLite database (store_lock.c): an exclusive, non-blocking flock on
 * "<db>.lock", taken before the database is opened or migrated and held until
 * store_unlock (for errqd: its lifetime; the kernel drops it when the process dies).  The
 * holder writes its pid into the file, so a second collector can say who holds it.
 * Returns 0, or -1 with a one-line reason.  A PostgreSQL database takes no lock (several
 * collectors share it): 0 with *out NULL. */
struct store_lock;
int store_lock(struct store_lock **out, const char *db, char *err, size_t errsz);
void store_unlock(struct store_lock *l); /* accepts NULL; leaves the file (removing it would race) */
#endif
