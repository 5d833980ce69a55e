/* backend.h: the storage seam (issue 17).  The collector calls storage.h / storage_alerts.h
 * (store_*) and never knows which database it runs on; store_api.c turns each call that takes
 * a handle into one call through the handle's backend table:
 *
 *     int store_txn_begin(struct store *s) { return store_backend_of(s)->txn_begin(s); }
 *
 * A backend is a table of functions with the exact signatures of store_<op> (taking
 * `struct store *`; a backend whose handle is another struct casts it), named store_<kind>_<op>:
 * store_sqlite_* (storage/store*.c) and store_pg_* (storage/pg/).  Every backend's handle struct
 * begins with `const struct store_backend *be;` -- that first member is how store_api.c finds
 * the table (a pointer to a struct converts to a pointer to its first member: C11 6.7.2.1).
 *
 * STORE_BACKEND_OPS is the one list of operations: the table's members, store_api.c's
 * dispatchers and the backends' prototypes are generated from it, so they cannot drift.
 * Columns: X(need, kind, return type, name, (parameters), (arguments)).
 *   need: REQ, the backend must provide it (store_open refuses a table that lacks one:
 *         store_backend_missing); OPT, SQLite-only machinery or deferral that another backend
 *         may leave NULL, store_api.c then answers for it (storage.h says how: a commit that
 *         writes everything, no pending aggregates, no WAL to catch up, no pragmas).
 *   kind: R returns a value, V returns nothing. */
#ifndef ERRQ_STORE_BACKEND_H
#define ERRQ_STORE_BACKEND_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"
#include "storage_alerts.h"

#define STORE_BACKEND_OPS(X)                                                                                       \
	X(REQ, V, void, close, (struct store *s), (s))                                                            \
	X(REQ, R, const char *, errmsg, (const struct store *s), (s))                                               \
	X(REQ, R, bool, last_busy, (const struct store *s), (s))                                                    \
	X(REQ, R, int, last_errclass, (const struct store *s), (s))                                                 \
	/* the writer's transactions */                                                                            \
	X(REQ, R, int, txn_begin, (struct store *s), (s))                                                         \
	X(REQ, R, int, txn_add_event, (struct store *s, const struct store_event *e), (s, e))                     \
	X(REQ, R, int, txn_add_events, (struct store *s, const struct store_event *ev, size_t n, int8_t *result), \
	  (s, ev, n, result))                                                                                      \
	X(REQ, R, int, txn_count_event, (struct store *s, const struct store_event *e), (s, e))                   \
	X(REQ, R, int, txn_commit, (struct store *s), (s))                                                        \
	X(REQ, V, void, txn_rollback, (struct store *s), (s))                                                     \
	X(OPT, R, int, txn_commit_deferred, (struct store *s), (s))                                               \
	X(OPT, R, int, txn_commit_idle, (struct store *s), (s))                                                   \
	X(OPT, R, bool, agg_pending, (const struct store *s), (s))                                                  \
	X(OPT, R, int, agg_flush, (struct store *s), (s))                                                         \
	X(OPT, R, int, agg_flush_step, (struct store *s, bool *more), (s, more))                                  \
	/* queries */                                                                                              \
	X(REQ, R, int, list_events, (struct store *s, const struct store_event_filter *f, store_event_cb cb, void *ctx), \
	  (s, f, cb, ctx))                                                                                         \
	X(REQ, R, int, list_groups, (struct store *s, const struct store_group_filter *f, store_group_cb cb, void *ctx), \
	  (s, f, cb, ctx))                                                                                         \
	X(REQ, R, int, get_group,                                                                                  \
	  (struct store *s, const char *fingerprint, const struct store_group_filter *f, store_group_cb cb, void *ctx), \
	  (s, fingerprint, f, cb, ctx))                                                                            \
	X(REQ, R, int, group_histogram,                                                                            \
	  (struct store *s, int64_t group_id, const char *environment, int64_t first_minute, uint32_t n,         \
	   uint64_t *counts),                                                                                      \
	  (s, group_id, environment, first_minute, n, counts))                                                     \
	X(REQ, R, int, get_event, (struct store *s, const uint8_t event_id[16], store_event_cb cb, void *ctx),    \
	  (s, event_id, cb, ctx))                                                                                  \
	X(REQ, R, int, count_events, (struct store *s, uint64_t *n), (s, n))                                     \
	X(REQ, R, int, get_totals, (struct store *s, struct store_totals *t), (s, t))                            \
	X(REQ, R, int, overflow_group, (struct store *s, const char *service, uint64_t *total), (s, service, total)) \
	/* status and upkeep */                                                                                    \
	X(REQ, R, int, set_group_status, (struct store *s, const char *fingerprint, const char *status, uint64_t now_ns), \
	  (s, fingerprint, status, now_ns))                                                                        \
	X(REQ, R, int, maintain, (struct store *s, const struct store_maint_opts *o, bool *more), (s, o, more))   \
	X(REQ, V, void, get_write_stats, (struct store *s, struct store_write_stats *st), (s, st))               \
	/* the tail across collectors sharing one database (PostgreSQL; SQLite's has one collector) */          \
	X(OPT, R, int, tail_listen,                                                                                \
	  (struct store *s, uint32_t timeout_ms, store_tail_want_cb want, store_event_cb cb, void *ctx,             \
	   uint64_t *missed),                                                                                      \
	  (s, timeout_ms, want, cb, ctx, missed))                                                                  \
	/* SQLite's WAL and pragmas */                                                                             \
	X(OPT, V, void, set_ckpt, (struct store *s, struct store_ckpt *ck), (s, ck))                             \
	X(OPT, R, int, wal_catch_up, (struct store *s, int min_pages), (s, min_pages))                            \
	X(OPT, R, int, get_pragma_int, (struct store *s, const char *name, int64_t *v), (s, name, v))             \
	/* storage_alerts.h */                                                                                     \
	X(REQ, R, int, circuit_put, (struct store *s, const struct store_circuit *c, int64_t *id), (s, c, id))    \
	X(REQ, R, int, circuit_delete, (struct store *s, int64_t id), (s, id))                                    \
	X(REQ, R, int, list_circuits, (struct store *s, const char *rule, store_circuit_cb cb, void *ctx),        \
	  (s, rule, cb, ctx))                                                                                      \
	X(REQ, R, int, count_circuits, (struct store *s, store_circuit_count_cb cb, void *ctx), (s, cb, ctx))     \
	X(REQ, R, int, get_circuit,                                                                                \
	  (struct store *s, const char *rule, const char *key, store_circuit_cb cb, void *ctx),                  \
	  (s, rule, key, cb, ctx))                                                                                 \
	X(REQ, R, int, transition_add, (struct store *s, const struct store_transition *t), (s, t))               \
	X(REQ, R, int, list_transitions,                                                                           \
	  (struct store *s, const char *rule, const char *key, uint32_t limit, store_transition_cb cb, void *ctx), \
	  (s, rule, key, limit, cb, ctx))                                                                          \
	X(REQ, R, int, alert_put, (struct store *s, const struct store_alert *a, int64_t *id), (s, a, id))        \
	X(REQ, R, int, get_alert, (struct store *s, const uint8_t alert_id[16], store_alert_cb cb, void *ctx),    \
	  (s, alert_id, cb, ctx))                                                                                  \
	X(REQ, R, int, list_alerts, (struct store *s, const struct store_alert_filter *f, store_alert_cb cb, void *ctx), \
	  (s, f, cb, ctx))                                                                                         \
	X(REQ, R, int, delivery_add, (struct store *s, const struct store_delivery *d, int64_t *id), (s, d, id))  \
	X(REQ, R, int, delivery_update,                                                                            \
	  (struct store *s, int64_t id, int status, uint32_t attempts, uint64_t next_attempt_ns, long http_status, \
	   const char *last_error, uint64_t now_ns),                                                               \
	  (s, id, status, attempts, next_attempt_ns, http_status, last_error, now_ns))                             \
	X(REQ, R, int, list_deliveries_by_status,                                                                  \
	  (struct store *s, int status, int64_t after_id, uint32_t limit, bool with_body, store_delivery_cb cb,   \
	   void *ctx),                                                                                             \
	  (s, status, after_id, limit, with_body, cb, ctx))                                                        \
	X(REQ, R, int, delivery_claim,                                                                             \
	  (struct store *s, const char *owner, uint64_t now_ns, uint64_t lease_ns, uint32_t limit,                \
	   store_delivery_cb cb, void *ctx),                                                                       \
	  (s, owner, now_ns, lease_ns, limit, cb, ctx))                                                            \
	X(REQ, R, int, list_deliveries,                                                                            \
	  (struct store *s, const uint8_t alert_id[16], store_delivery_cb cb, void *ctx), (s, alert_id, cb, ctx)) \
	X(REQ, R, int, get_delivery, (struct store *s, int64_t id, store_delivery_cb cb, void *ctx), (s, id, cb, ctx)) \
	X(REQ, R, int, silence_add, (struct store *s, const struct store_silence *si, int64_t *id), (s, si, id))  \
	X(REQ, R, int, silence_expire, (struct store *s, int64_t id, uint64_t now_ns), (s, id, now_ns))           \
	X(REQ, R, int, get_silence, (struct store *s, int64_t id, store_silence_cb cb, void *ctx), (s, id, cb, ctx)) \
	X(REQ, R, int, list_silences,                                                                              \
	  (struct store *s, enum store_silence_list which, uint64_t now_ns, uint32_t limit, store_silence_cb cb,    \
	   void *ctx),                                                                                             \
	  (s, which, now_ns, limit, cb, ctx))                                                                        \
	X(REQ, R, int, outcome_batch_seen, (struct store *s, const uint8_t batch_id[16], uint64_t received_ns),   \
	  (s, batch_id, received_ns))                                                                              \
	X(REQ, R, int, outcome_batches_prune, (struct store *s, uint64_t older_than_ns, uint32_t limit),          \
	  (s, older_than_ns, limit))                                                                               \
	X(REQ, R, int, alerts_prune, (struct store *s, uint64_t older_than_ns, uint32_t limit), (s, older_than_ns, limit))

/* The fleet's operations (several collectors on one database: storage_alerts.h), a list of
 * their own: a backend has all of them (PostgreSQL) or none (SQLite runs one collector, its
 * table leaves them NULL), and store_api.c answers for a backend without them. */
#define STORE_BACKEND_FLEET_OPS(X)                                                                                 \
	X(OPT, R, int, leader_acquire, (struct store *s, const char *name, uint64_t *epoch), (s, name, epoch))    \
	X(OPT, R, int, leader_ping, (struct store *s), (s))                                                       \
	X(OPT, R, int, leader_check, (struct store *s, uint64_t epoch, struct store_leader *st), (s, epoch, st))  \
	X(OPT, R, int, leader_get, (struct store *s, struct store_leader *st), (s, st))                           \
	X(OPT, R, int, rule_inputs_add, (struct store *s, const struct store_rule_input *in, size_t n), (s, in, n)) \
	X(OPT, R, int, rule_inputs_take, (struct store *s, uint32_t limit, store_rule_input_cb cb, void *ctx),    \
	  (s, limit, cb, ctx))                                                                                     \
	X(OPT, R, int, delivery_lease, (struct store *s, int64_t id, const char *owner, uint64_t until_ns),       \
	  (s, id, owner, until_ns))                                                                                \
	X(OPT, R, int, deliveries_renew, (struct store *s, const char *owner, uint64_t now_ns, uint64_t until_ns), \
	  (s, owner, now_ns, until_ns))

struct store_backend {
	const char *name; /* "sqlite", "postgres": for messages and status */
#define STORE_BACKEND_MEMBER(need, kind, ret, op, params, args) ret(*op) params;
	STORE_BACKEND_OPS(STORE_BACKEND_MEMBER)
	STORE_BACKEND_FLEET_OPS(STORE_BACKEND_MEMBER)
#undef STORE_BACKEND_MEMBER
};

/* The backend of any handle: its first member. */
static inline const struct store_backend *store_backend_of(const struct store *s)
{
	return *(const struct store_backend *const *)(const void *)s;
}

/* Why store_delivery_claim's arguments are refused (the message both backends give), or NULL. */
const char *store_delivery_claim_refusal(const char *owner, uint64_t lease_ns, uint32_t limit);

/* The name of the first REQ operation be leaves NULL, or NULL when it has them all. */
const char *store_backend_missing(const struct store_backend *be);

/* The backends.  store_pg_backend exists when errq is built with PostgreSQL support
 * (ERRQ_HAVE_POSTGRES: storage/pg/ and libpq; see storage/CMakeLists.txt). */
extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;

/* Each backend's open, with store_open's contract; o->path is its own: the SQLite file path
 * (the URL's path, parsed: store_url.h) or the PostgreSQL URL as the user gave it (libpq's
 * conninfo: never put it in a message unredacted, store_url_redact). */
int store_sqlite_open(struct store **out, const struct store_opts *o, char *err, size_t errsz);
int store_pg_open(struct store **out, const struct store_opts *o, char *err, size_t errsz);
/* SQLite's calls that take a database, given its file's path (store_api.c parsed the URL). */
int store_sqlite_lock(struct store_lock **out, const char *path, char *err, size_t errsz);
int store_sqlite_ckpt_start(struct store_ckpt **out, const char *path, char *err, size_t errsz);
int store_sqlite_backup(const struct store_backup_opts *o, struct store_backup_result *r, char *err, size_t errsz);

/* Prototypes of store_<kind>_<op> for every operation, for the backends' own files. */
#define STORE_BACKEND_DECLARE(kind_prefix)                                                                          \
	STORE_BACKEND_OPS(STORE_BACKEND_PROTO_##kind_prefix)
/* ... and a backend with the fleet's operations */
#define STORE_BACKEND_DECLARE_FLEET(kind_prefix) STORE_BACKEND_FLEET_OPS(STORE_BACKEND_PROTO_##kind_prefix)
#define STORE_BACKEND_PROTO_sqlite(need, kind, ret, op, params, args) ret store_sqlite_##op params;
#define STORE_BACKEND_PROTO_pg(need, kind, ret, op, params, args) ret store_pg_##op params;
#endif
