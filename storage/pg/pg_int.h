/* pg_int.h: what the PostgreSQL backend's files share (storage/pg/) and nobody else sees.
 *
 * The backend implements every operation of storage.h and storage_alerts.h as
 * store_pg_<op>, with the exact signature of store_<op>: the handle is a `struct store *`
 * that really is a `struct store_pg` (its first member, like every backend's handle, is the
 * seam's table), so each function starts with `struct store_pg *p = (struct store_pg *)s;`.
 *
 * Connections.  One libpq connection per handle, used by one thread at a time, always in
 * blocking mode with a statement timeout, so a dead server costs a caller at most
 * STORE_PG_STMT_TIMEOUT_MS (or the TCP keepalives' time), never a hang.  A lost
 * connection is STORE_ERR_UNAVAILABLE; the handle reconnects at the next txn_begin or query
 * (not before STORE_PG_RECONNECT_MIN_MS, doubling to STORE_PG_RECONNECT_MAX_MS while it
 * keeps failing), and a transaction that was open is gone: the caller rolled it back.
 *
 * Statements.  Each is a static `struct store_pg_stmt`, prepared on first use on each
 * connection (a reconnect prepares again) under its unique name; store_pg_run runs one. */
#ifndef ERRQ_PG_INT_H
#define ERRQ_PG_INT_H
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"
#include "storage_alerts.h"
#include "backend.h"

struct store_backend; /* storage/backend.h (the seam) */

/* pg_advisory_lock key the migrator holds: replicas starting together migrate once.
 * ("errqmigr" in ASCII.) */
#define ERRQ_PG_LOCK_MIGRATE INT64_C(0x6572727161696772)
/* pg_advisory_xact_lock key of creating a day partition ("errqpart"). */
#define ERRQ_PG_LOCK_PARTITION INT64_C(0x6572727170617274)
/* pg_advisory_lock key of the fleet's rule-engine leader, held on a leader_session handle's
 * session ("errqlead"). */
#define ERRQ_PG_LOCK_LEADER INT64_C(0x6572727165616c64)
/* A leader_session's keepalives, both ends (seconds): a vanished peer's session ends within
 * idle + interval * count, and with it the leader lock. */
#define STORE_PG_LEADER_KEEPALIVE_IDLE_S 5
#define STORE_PG_LEADER_KEEPALIVE_INTERVAL_S 2
#define STORE_PG_LEADER_KEEPALIVE_COUNT 3
/* pg_try_advisory_xact_lock key of sweeping a detached day partition (retention, pg_maint.c:
 * "errqswep"): one replica's upkeep at a time, and never in the way of making partitions. */
#define ERRQ_PG_LOCK_SWEEP INT64_C(0x6572727173776570)
/* pg_advisory_xact_lock(ERRQ_PG_LOCK_SERVICE, hash of the service) of counting a service's
 * groups for groups_per_service ("errg": the two-key form, its own space). */
#define ERRQ_PG_LOCK_SERVICE 0x65727267
#define STORE_PG_SCHEMA_VERSION 2     /* errq_schema.version this backend writes */
#define STORE_PG_PARTITIONS_AHEAD 3   /* day partitions of events created ahead of today */
#define STORE_PG_PREPARED_MAX 128     /* statements one connection prepares (all the backend has) */
#define STORE_PG_STMT_TIMEOUT_MS 30000 /* statement_timeout of every connection */
#define STORE_PG_CONNECT_TIMEOUT_S 10 /* connect_timeout unless the URL gives one */
#define STORE_PG_RECONNECT_MIN_MS 100 /* backoff between reconnect attempts: first ... */
#define STORE_PG_RECONNECT_MAX_MS 5000 /* ... and most */
#define STORE_PG_GROUP_CACHE 65536    /* writer: fingerprint -> group id (direct-mapped) */
#define STORE_PG_BATCH_MAX 4096       /* events one store_pg_txn_add_events statement sends */
#define STORE_PG_TXN_AGG_MAX 32768    /* distinct aggregate rows of a table a transaction holds (more: written early) */
#define STORE_PG_DETACH_LOCK_TIMEOUT_MS 250 /* retention: the longest a detach of a day partition
					     * waits for its lock on events (all users queue behind) */
#define STORE_PG_DETACH_RETRY_NS (10ULL * 1000000000ULL) /* ... then tried again this much later */

/* One statement.  name is unique in the backend ("errq_<file>_<what>"): prepared once per
 * connection; NULL: sent with its parameters each time (a statement composed per call).
 * types: the parameters' type OIDs (NULL: the server infers them from the SQL's casts; a
 * composed statement that may leave a parameter unused must give them). */
struct store_pg_stmt {
	const char *name;
	const char *sql;
	int nparams;
	const Oid *types;
};
#define STORE_PG_INT8OID 20 /* type OIDs (catalog/pg_type_d.h, stable) */
#define STORE_PG_TEXTOID 25
#define STORE_PG_BYTEAOID 17
#define STORE_PG_BOOLOID 16

struct store_pg_write;  /* pg_write.c: the writer's caches and the open transaction's aggregates */
struct store_pg_maint;  /* pg_maint.c: upkeep's cursors */
struct store_pg_alerts; /* pg_alerts.c: whatever the alerting functions keep per handle */
struct store_pg_tail;   /* pg_tail.c: a tail listener's LISTEN state and queue of notices */

struct store_pg {
	const struct store_backend *be; /* first, in every backend's handle: the seam's table */
	PGconn *conn;                   /* NULL while disconnected */
	bool conn_stale;                /* conn answered as a server that is going away or became
					 * read-only: replaced at the next store_pg_conn */
	char *conninfo;                 /* owned: the URL, for reconnects */
	bool readonly;
	bool leader_session; /* store_opts.leader_session */
	bool side_session;   /* the writer's second session: groups and environments (pg_write.c) */
	bool lock_held;      /* leader_session: this session took the leader lock ... */
	uint64_t lock_reconnects; /* ... when reconnects was this (a reconnect is a new session) */
	bool in_txn;      /* BEGIN sent, no COMMIT/ROLLBACK yet */
	bool txn_failed;  /* a statement of the open transaction failed: only ROLLBACK is left */
	bool busy;        /* last failure: a lock (worth retrying) */
	int errclass;     /* enum store_errclass of the last failure */
	char err[512];
	/* statements prepared on this connection (cleared at each reconnect) */
	const struct store_pg_stmt *prepared[STORE_PG_PREPARED_MAX];
	uint32_t n_prepared;
	uint64_t reconnect_at_ms;       /* monotonic: no attempt before this */
	uint32_t reconnect_backoff_ms;  /* the next wait when this attempt fails */
	uint64_t reconnects;            /* successful reconnects (tests, stats) */
	uint32_t groups_per_service;
	uint64_t (*mono_ns)(void *ctx); /* store_opts.mono_ns, or NULL */
	void *mono_ctx;
	struct store_pg_write *w;       /* writer only */
	struct store_pg_maint *m;       /* writer only */
	struct store_pg_alerts *alerts; /* pg_alerts.c's, NULL until it wants one; freed by
					 * store_pg_alerts_free at close */
	struct store_pg_tail *tail;     /* store_tail_listen's, NULL until the first call */
	struct store_write_stats wst;
};

static inline struct store_pg *store_pg(struct store *s)
{
	return (struct store_pg *)s;
}

/* ---- pg_store.c: the connection, errors, running statements ---- */

/* The handle's connection, reconnecting first when it was lost (NULL when that fails too,
 * with the reason recorded: STORE_ERR_UNAVAILABLE). */
PGconn *store_pg_conn(struct store *s);
/* Records a failure on the connection as "<fmt...>: <libpq's message>" and classifies it
 * (a connection that is gone: STORE_ERR_UNAVAILABLE; else STORE_ERR_OTHER).  Returns -1. */
int store_pg_set_err(struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records a failed result as "what: <the server's message>" and classifies it by SQLSTATE
 * (08xxx, 57P0x, and 25006 on a writing handle: UNAVAILABLE, and the connection is replaced
 * at the next call; 40001, 40P01, 55P03: LOCKED, busy; 53100: FULL; 42501, and 25006 on a
 * read-only handle: UNWRITABLE; else OTHER); r may be NULL (libpq gave none).  Returns -1. */
int store_pg_set_err_result(struct store *s, const PGresult *r, const char *what);
/* Records a failure of the backend's own (bad input, wrong state): STORE_ERR_OTHER, not
 * busy.  Returns -1. */
int store_pg_fail(struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs st with its parameters (vals[i] NULL = SQL NULL; lens/fmts NULL = all text, else
 * fmts[i] 1 = binary of lens[i] bytes), results in binary when binary_result.  Returns the
 * result (COMMAND_OK or TUPLES_OK: the caller PQclears it), or NULL with the failure
 * recorded as "what: ...".  Inside a transaction a failure marks it failed. */
PGresult *store_pg_run(struct store *s, const struct store_pg_stmt *st, const char *what, const char *const *vals,
		       const int *lens, const int *fmts, int binary_result);
/* Runs SQL text with no parameters and no rows wanted (DDL, SET, ...): 0 or -1. */
int store_pg_exec(struct store *s, const char *sql, const char *what);
/* A transaction of its own for upkeep and the public prunes, refused inside one ("what
 * inside a transaction").  _end: rc < 0 rolls back and returns -1 (the error kept); else
 * commits and returns rc, or -1 when COMMIT fails. */
int store_pg_own_txn_begin(struct store *s, const char *what);
int store_pg_own_txn_end(struct store *s, int rc, const char *what);

/* Parameters and binary columns.  A binary int8 parameter: store_pg_be64 into 8 bytes. */
void store_pg_be64(char out[8], int64_t v);
/* A column of a binary result as int64 (int2/int4/int8/bool by its length; NULL = 0). */
int64_t store_pg_col_i64(const PGresult *r, int row, int col);
/* A one-dimensional array parameter in binary (array_recv's format: a header, then each
 * element's length and bytes), for `unnest($1::bigint[], ...)`: one statement for many rows.
 * At most STORE_PG_ARRAY_MAX_BYTES; an add past it fails (-1) and so does finish. */
#define STORE_PG_ARRAY_MAX_BYTES (64u << 20)
struct store_pg_array {
	char *p; /* header, then the elements */
	size_t len, cap;
	bool failed; /* an add failed (out of memory, over the limit) */
	uint32_t n;
	bool has_null;
	Oid elem;
};
void store_pg_array_init(struct store_pg_array *a, Oid elem);
int store_pg_array_i64(struct store_pg_array *a, int64_t v);
int store_pg_array_bool(struct store_pg_array *a, bool v);
/* p NULL: SQL NULL. */
int store_pg_array_bytes(struct store_pg_array *a, const void *p, size_t n);
/* NULL or "": SQL NULL (as the SQLite backend stores an empty optional string). */
int store_pg_array_text(struct store_pg_array *a, const char *v);
/* The parameter's bytes (valid until free or the next add), length in *len; NULL when an add
 * failed or it is too big. */
const char *store_pg_array_finish(struct store_pg_array *a, int *len);
void store_pg_array_free(struct store_pg_array *a);
/* A text column of any result: its value, or NULL when SQL NULL. */
const char *store_pg_col_text(const PGresult *r, int row, int col);
/* A bytea column of a binary result: its bytes (length in *len), or NULL when SQL NULL. */
const uint8_t *store_pg_col_bytes(const PGresult *r, int row, int col, size_t *len);
/* A GLOB pattern (SQLite's, the filters' syntax: * ? [...] [^...], case-sensitive) as an
 * anchored POSIX regular expression for `~`.  0, or -1 when it does not fit outsz. */
int store_pg_glob_to_regex(struct store *s, const char *glob, char *out, size_t outsz);

/* ---- pg_schema.c ---- */
/* Creates or migrates the schema under ERRQ_PG_LOCK_MIGRATE, then the day partitions up to
 * STORE_PG_PARTITIONS_AHEAD days from now_ns.  0 or -1. */
int store_pg_migrate(struct store *s, uint64_t now_ns);
/* Creates the partitions of events for the days [day(now_ns) - 1, day(now_ns) + ahead] that
 * do not exist, each in a transaction of its own that also moves its rows out of
 * events_default.  *created (may be NULL) counts them.  0 or -1. */
int store_pg_ensure_partitions(struct store *s, uint64_t now_ns, uint32_t ahead, uint32_t *created);

/* ---- pg_alerts.c (h17pga) ---- */
/* The alerting tables' DDL, run by the migrator as part of version 1 (one string of
 * statements; no transaction control in it). */
const char *store_pg_alerts_schema(void);
/* Frees p->alerts (accepts NULL); called by store_pg_close. */
void store_pg_alerts_free(struct store *s);
/* One step of the alerting tables' upkeep inside the caller's open transaction (pg_maint.c
 * and the public prunes): rows deleted, or -1; *more set when some kind had `limit` rows. */
int store_pg_alerts_prune_step(struct store *s, uint64_t older_than_ns, uint32_t limit, bool *more);
int store_pg_outcome_batches_prune_step(struct store *s, uint64_t older_than_ns, uint32_t limit, bool *more);

/* ---- pg_query.c ---- */
/* The columns of an event as queries and the tail read it (events e JOIN groups g), and one
 * row of them as a store_event (its pointers into r); false when the row is unusable. */
#define STORE_PG_EVENT_COLS                                                                         \
	"e.id, e.event_id, e.time_ns, e.received_ns, e.service, e.environment, e.release,"           \
	" e.host, e.task, e.error_type, e.error_code, e.message, g.fingerprint, g.grouping_version," \
	" e.attempt, e.handled, e.truncated, e.extra"
bool store_pg__event_from_row(const PGresult *r, int i, struct store_event *e);

/* ---- pg_tail.c: the tail across collectors (store_tail_listen) ---- */
/* Inside the writer's open transaction, before COMMIT: NOTIFY STORE_PG_TAIL_CHANNEL of the
 * rows it stored (events.id in [lo, hi], `rows` of them, this transaction's xmin).  0 or -1. */
int store_pg__tail_notify(struct store *s, int64_t lo, int64_t hi, uint64_t rows);
void store_pg__tail_free(struct store *s); /* at close; accepts a handle that never listened */
/* A COMMIT failed with PostgreSQL's notification queue full (SQLSTATE 54000): this process's
 * writer sends no notice for STORE_PG_TAIL_NOTIFY_PAUSE_MS, so its retried batch commits. */
void store_pg__tail_queue_full(void);

/* ---- the operations (storage.h, storage_alerts.h): store_pg_<op>, declared from the seam's
 * list (backend.h), so their signatures are store_<op>'s ---- */
STORE_BACKEND_DECLARE(pg)
STORE_BACKEND_DECLARE_FLEET(pg)

/* ---- the other files' internals ---- */
int store_pg__write_alloc(struct store *s);    /* pg_write.c: the writer's state */
/* pg_store.c: a second session of writer s's database (no migration, no writer state), for
 * what must commit on its own: new groups and environments (pg_write.c).  0, or -1 with the
 * reason recorded on s. */
int store_pg__open_side(struct store *s, struct store **out);
void store_pg__write_free(struct store *s);
void store_pg__write_reset(struct store *s);   /* at begin and reconnect: forget the
						* transaction's pending aggregates */
void store_pg__write_committed(struct store *s); /* after COMMIT: stats of the transaction */
void store_pg__write_rolled_back(struct store *s); /* after ROLLBACK: forget what it created */
bool store_pg__write_pending(const struct store *s); /* aggregates counted, not yet written */
int store_pg__write_flush(struct store *s);    /* in the transaction: writes them (commit) */
int store_pg__write_notify(struct store *s);   /* in the transaction: its rows' notice (commit) */
void store_pg__maint_free(struct store *s);     /* pg_maint.c */
uint64_t store_pg__now_ns(void);               /* wall clock, ns (partitions, upkeep) */
#endif
