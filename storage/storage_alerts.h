/* storage_alerts.h: the alerting tables (schema version 2) — circuits, their transition
 * history, alerts, the delivery outbox, silences, and the outcome batches already counted.
 *
 * Writer calls (store opened read-write) run inside the caller's transaction
 * (store_txn_begin .. store_txn_commit): the rule engine writes a circuit's transitions, its
 * alert and the alert's outbox rows in the same transaction as the events that caused them,
 * so nothing acknowledged can be lost between an event and the alert it fires.  Reader calls
 * (any handle) are one statement each, like the other queries.
 *
 * Times are nanoseconds since the epoch; 0 means "none".  Alert ids are 16 bytes (UUIDv7).
 * Circuit states are the numbers of server/circuit.h: 0 closed, 1 open, 2 half_open.
 * Strings passed in are copied by SQLite; strings passed to callbacks are valid during the
 * callback only. */
#ifndef ERRQ_STORAGE_ALERTS_H
#define ERRQ_STORAGE_ALERTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/* ---- circuits: one row per (rule, key), its saved state (writer) ---- */
struct store_circuit {
	int64_t id;
	const char *rule, *key;
	uint64_t def_hash;           /* the rule's definition hash when saved */
	int state;                   /* 0 closed, 1 open, 2 half_open */
	uint64_t since_ns;           /* entered `state` */
	uint64_t failures_in_window; /* at updated_ns */
	uint64_t next_transition_ns; /* 0 = none */
	const uint8_t *alert_id;     /* 16 bytes: the alert while not closed; NULL = none */
	const void *saved;           /* circuit_save() bytes */
	size_t saved_len;
	uint64_t updated_ns;
};
/* Inserts (c->id == 0; the new id is stored in *id) or updates row c->id.  Returns 0/-1. */
int store_circuit_put(struct store *s, const struct store_circuit *c, int64_t *id);
/* Deletes a circuit row (its rule was removed or changed; its transitions stay). 0/-1. */
int store_circuit_delete(struct store *s, int64_t id);
typedef int (*store_circuit_cb)(void *ctx, const struct store_circuit *c);
/* Every circuit row, or those of one rule (rule != NULL), by (rule, key).  0/-1. */
int store_list_circuits(struct store *s, const char *rule, store_circuit_cb cb, void *ctx);
/* Circuits per rule: cb(ctx, rule, circuits, not_closed) once per rule that has any.  0/-1. */
typedef int (*store_circuit_count_cb)(void *ctx, const char *rule, uint64_t circuits, uint64_t not_closed);
int store_count_circuits(struct store *s, store_circuit_count_cb cb, void *ctx);
/* One circuit by rule and key: 1 (cb called), 0 unknown, -1 error. */
int store_get_circuit(struct store *s, const char *rule, const char *key, store_circuit_cb cb, void *ctx);

/* ---- transitions: the history of every circuit (writer adds, readers list) ---- */
struct store_transition {
	int64_t id;
	const char *rule, *key;
	uint64_t at_ns;
	int from, to;               /* states; from == to for a reminder */
	const char *reason;         /* "failures 3 >= 3 in 60s", "recovery_timeout elapsed", ... */
	uint64_t failures_in_window;
	uint32_t window_seconds;
	uint64_t next_transition_ns;
	const uint8_t *alert_id;    /* 16 bytes or NULL */
};
int store_transition_add(struct store *s, const struct store_transition *t);
typedef int (*store_transition_cb)(void *ctx, const struct store_transition *t);
/* The newest `limit` transitions of (rule, key), oldest first.  0/-1. */
int store_list_transitions(struct store *s, const char *rule, const char *key, uint32_t limit,
			   store_transition_cb cb, void *ctx);

/* ---- alerts: one row per incident (OPEN ... CLOSED of one circuit) ---- */
struct store_alert {
	int64_t id;                 /* rowid: the listing cursor */
	const uint8_t *alert_id;    /* 16 bytes */
	const char *rule, *key;
	const char *severity;       /* critical | error | warning | info */
	const char *status;         /* firing | resolved */
	int state;                  /* the circuit's state at the last update */
	uint64_t opened_ns, resolved_ns; /* resolved_ns 0 while firing */
	uint64_t failures_in_window;     /* when it fired */
	uint32_t window_seconds;
	const char *sample;         /* JSON object text of one event that caused it, or NULL */
	const char *resolve_reason; /* why it resolved ("probe quiet", "rule_removed", ...), or NULL */
	uint32_t notices;           /* firing notices made (the first, then reminders) */
	uint64_t updated_ns;
};
/* Inserts a new alert (a->id ignored; sets *id) or, when a row with a->alert_id exists,
 * updates its status, state, resolved_ns, resolve_reason, notices and updated_ns.  0/-1. */
int store_alert_put(struct store *s, const struct store_alert *a, int64_t *id);
typedef int (*store_alert_cb)(void *ctx, const struct store_alert *a);
/* 1 (cb called), 0 unknown, -1 error. */
int store_get_alert(struct store *s, const uint8_t alert_id[16], store_alert_cb cb, void *ctx);
struct store_alert_filter {
	const char *status;   /* "firing" | "resolved" | NULL = any */
	const char *rule;     /* NULL = any */
	uint64_t since_ns;    /* opened or updated at or after; 0 = all */
	int64_t before_id;    /* keyset cursor: rows with id < this; 0 = from the newest */
	uint32_t limit;
};
/* Newest first (by id).  0/-1. */
int store_list_alerts(struct store *s, const struct store_alert_filter *f, store_alert_cb cb, void *ctx);

/* ---- outbox: one row per (alert notice, notifier) ---- */
#define STORE_DELIVERY_STATUSES(X) \
	X(PENDING, "pending") X(DELIVERED, "delivered") X(DEAD, "dead") X(SILENCED, "silenced")
enum store_delivery_status {
#define X(n, s) STORE_DELIVERY_##n,
	STORE_DELIVERY_STATUSES(X)
#undef X
};
const char *store_delivery_status_name(int status);

struct store_delivery {
	int64_t id;
	const uint8_t *alert_id;      /* 16 bytes */
	const char *notifier;
	const char *kind;             /* firing | resolved */
	uint32_t seq;                 /* notice number of this kind for the alert (1, 2, ...) */
	const char *idempotency_key;  /* "<alert_id hex>:<kind>:<seq>" */
	const char *body;             /* the JSON sent */
	size_t body_len;
	int status;                   /* enum store_delivery_status */
	uint32_t attempts;
	uint64_t next_attempt_ns;     /* pending: not before; 0 = now */
	long http_status;             /* last response, 0 = none */
	const char *last_error;       /* "" or NULL = none */
	uint64_t created_ns, updated_ns;
};
/* Adds a row (d->id ignored; sets *id).  0/-1. */
int store_delivery_add(struct store *s, const struct store_delivery *d, int64_t *id);
/* Records an attempt's result or a status change of row id, and releases its lease
 * (store_delivery_claim) whoever holds it.  Returns 1, 0 unknown, -1. */
int store_delivery_update(struct store *s, int64_t id, int status, uint32_t attempts, uint64_t next_attempt_ns,
			  long http_status, const char *last_error, uint64_t now_ns);
typedef int (*store_delivery_cb)(void *ctx, const struct store_delivery *d);
/* Rows with the given status and id > after_id, by id, at most limit (for paging through
 * the pending rows after a restart), with their bodies when with_body.  0/-1. */
int store_list_deliveries_by_status(struct store *s, int status, int64_t after_id, uint32_t limit, bool with_body,
				    store_delivery_cb cb, void *ctx);
/* Leases on deliveries (issue 17: any replica delivers, no two the same row at once).
 * Claims, for owner, at most limit pending rows that are due (next_attempt_ns <= now_ns) and
 * not leased (never claimed, released by store_delivery_update, or their lease ended:
 * lease_until <= now_ns), leasing each until now_ns + lease_ns, and passes each to cb by id,
 * body included.  Every row claimed is passed (cb's return is ignored: a row the caller cannot
 * take stays leased until its lease ends and is claimed again then).  Two handles claiming at
 * once never get the same row before its lease ends; delivery stays at least once (a claimer
 * that outlives its lease may deliver a row another claims again: the receiver dedupes by the
 * Idempotency-Key).  The lease must outlast what the claimer does with a row (a delivery
 * attempt's timeout and the report's way back).  owner: 1 to STORE_DELIVERY_OWNER_MAX bytes
 * (the replica's name, for operators); 0 < lease_ns <= STORE_DELIVERY_LEASE_MAX; 1 <= limit
 * <= STORE_DELIVERY_CLAIM_MAX; anything else is refused with a message.  Returns the rows
 * claimed, or -1.  PostgreSQL keeps the lease in the row (claimed_by, lease_until); SQLite,
 * one collector by its lock, in the handle (docs/architecture.md, "Outbox leases"). */
#define STORE_DELIVERY_OWNER_MAX 128 /* bytes of a claimer's name */
#define STORE_DELIVERY_CLAIM_MAX 256 /* rows one claim takes at most (its result is read whole) */
/* Deliveries one SQLite handle holds leased at once: at the limit a claim takes nothing more
 * until leases end or are released (SQLite only: PostgreSQL keeps leases in the rows). */
#define STORE_SQLITE_LEASES_MAX 4096
#define STORE_DELIVERY_LEASE_MAX (24ULL * 3600 * 1000000000ULL) /* the longest lease: a day (ns) */
int store_delivery_claim(struct store *s, const char *owner, uint64_t now_ns, uint64_t lease_ns, uint32_t limit,
			 store_delivery_cb cb, void *ctx);
/* Every row of one alert, by id (the body is not read: body NULL, body_len 0).  0/-1. */
int store_list_deliveries(struct store *s, const uint8_t alert_id[16], store_delivery_cb cb, void *ctx);
/* One row, body included: 1 (cb called), 0 unknown, -1 error. */
int store_get_delivery(struct store *s, int64_t id, store_delivery_cb cb, void *ctx);

/* ---- silences ---- */
struct store_silence {
	int64_t id;
	const char *rule;        /* the rule it silences (exact name) */
	const char *matchers;    /* "field=glob,field=glob" on the circuit key, "" = every key */
	const char *comment;
	const char *created_by;  /* free text: user@host from the CLI */
	uint64_t created_ns, starts_ns, ends_ns;
	uint64_t expired_ns;     /* set by an explicit expire; 0 = runs until ends_ns */
};
int store_silence_add(struct store *s, const struct store_silence *si, int64_t *id);
/* Ends silence id now.  Returns 1, 0 when unknown or already ended (at now_ns), -1. */
int store_silence_expire(struct store *s, int64_t id, uint64_t now_ns);
typedef int (*store_silence_cb)(void *ctx, const struct store_silence *si);
/* One silence by id: 1 (cb called), 0 unknown, -1 error. */
int store_get_silence(struct store *s, int64_t id, store_silence_cb cb, void *ctx);
/* Which silences store_list_silences gives, newest first: those in force at now_ns (started,
 * not ended, not expired); every one; or those not ended at now_ns (in force or to come: what
 * the rule engine holds, so that the history's ended ones never crowd out one in force). */
enum store_silence_list { STORE_SILENCES_IN_FORCE = 0, STORE_SILENCES_ALL = 1, STORE_SILENCES_NOT_ENDED = 2 };
/* At most limit (0 = no limit).  0/-1.  In force: starts_ns <= now_ns < ends_ns, and
 * expired_ns == 0 or now_ns < expired_ns; not ended: the same without the start. */
int store_list_silences(struct store *s, enum store_silence_list which, uint64_t now_ns, uint32_t limit,
			store_silence_cb cb, void *ctx);

/* ---- outcome batches: each ReportRequest's outcomes count once, by batch_id ---- */
/* Records batch_id (16 bytes).  Returns 1 when new, 0 when seen before, -1 on error. */
int store_outcome_batch_seen(struct store *s, const uint8_t batch_id[16], uint64_t received_ns);
/* Forgets batch ids received before older_than_ns, at most limit rows.  Returns the number
 * deleted, or -1.  Runs in a transaction of its own (upkeep). */
int store_outcome_batches_prune(struct store *s, uint64_t older_than_ns, uint32_t limit);
#define STORE_OUTCOME_BATCH_HORIZON_NS (UINT64_C(24) * 3600 * 1000000000) /* kept a day */

/* ---- several collectors on one database (issue 17: the fleet) ----
 * Backends shared by several collectors (PostgreSQL) have these; store_fleet() says so.  On
 * the others (SQLite: one collector, by its lock) the collector evaluates its rules itself and
 * never calls them (each then fails with -1).
 *
 * Leadership.  One collector at a time is the rule engine's leader: the one whose
 * leader_session handle (store_opts) holds the database's leader lock (PostgreSQL: a session
 * advisory lock, ERRQ_PG_LOCK_LEADER).  Taking it bumps the fleet's epoch: the new leader's
 * fencing token.  Every transaction in which the leader changes circuits first checks the
 * epoch (store_leader_check), so a collector that lost its session cannot write a transition
 * after another took over. */
#define STORE_LEADER_NAME_MAX 128
struct store_leader {
	uint64_t epoch;       /* the fleet's current epoch (0: nobody ever led) */
	uint64_t silence_gen; /* bumped by every silence added or expired, by any collector */
	uint64_t since_ns;    /* when the current leader took over */
	char leader[STORE_LEADER_NAME_MAX];
};
bool store_fleet(const struct store *s);
/* leader_session handle: tries to take the leader lock without waiting.  1: taken (or held
 * already by this session): the epoch was bumped, *epoch is the new one, name recorded;
 * 0: another session holds it; -1: error (the session is gone: the lock with it). */
int store_leader_acquire(struct store *s, const char *name, uint64_t *epoch);
/* leader_session handle: 1 while this session still holds the lock it took (a round trip),
 * 0 when the session was lost meanwhile (even when the handle reconnected since: a new session
 * holds nothing), -1 on error. */
int store_leader_ping(struct store *s);
/* Inside a transaction of the writer: reads the fleet's row and locks it against a change of
 * leader until the transaction ends (FOR SHARE).  1 when st->epoch == epoch (still the
 * leader), 0 when another collector took over (roll back), -1 on error.  st may be NULL. */
int store_leader_check(struct store *s, uint64_t epoch, struct store_leader *st);
/* Any handle: the fleet's row without locking (status, metrics).  0/-1. */
int store_leader_get(struct store *s, struct store_leader *st);

/* Increments: what every collector's writer matched against the rules, written in the
 * transaction of the events; the leader takes them in id order and feeds its circuits.  One
 * row per (rule, key, receive second) a transaction touched. */
enum store_input_kind {
	STORE_INPUT_FAILURES = 0,    /* `failures` failures of circuit (rule, key) received in `second` */
	STORE_INPUT_OUTCOME = 1,     /* an outcome (ok, failed) for circuit (rule, key) */
	STORE_INPUT_OUTCOME_ALL = 2, /* an outcome for every HALF_OPEN circuit of the rule that
				      * applies to (service, task); key unused */
};
struct store_rule_input {
	int64_t id;                   /* set by take */
	int kind;                     /* enum store_input_kind */
	const char *rule, *key;       /* key "" when the rule has one circuit */
	uint64_t received_ns;         /* the receive time (kept to the second) */
	uint64_t failures;
	uint64_t ok, failed, window_end_ns; /* outcomes */
	const char *service, *task;   /* outcomes; may be NULL */
	const uint8_t *sample_event;  /* 16 bytes: one event of the row (the alert's sample), or NULL */
};
#define STORE_RULE_INPUTS_TAKE_MAX 4096 /* rows one take returns at most (its result is read whole) */
/* Writer, inside the transaction of the events: adds n rows (one statement).  0/-1. */
int store_rule_inputs_add(struct store *s, const struct store_rule_input *in, size_t n);
/* Writer (the leader), inside a transaction: deletes the oldest rows (by id) that no other
 * transaction holds, at most limit (1 .. STORE_RULE_INPUTS_TAKE_MAX), and passes each to cb in
 * id order (pointers valid during the call).  The rows are gone when the transaction commits,
 * back when it rolls back: taken exactly once with what the taker writes.  Returns the rows
 * taken, or -1. */
typedef int (*store_rule_input_cb)(void *ctx, const struct store_rule_input *in);
int store_rule_inputs_take(struct store *s, uint32_t limit, store_rule_input_cb cb, void *ctx);

/* Leases the leader's own deliveries (store_delivery_claim's leases): row id, pending, for
 * owner until until_ns.  1, 0 when the row is not pending, -1. */
int store_delivery_lease(struct store *s, int64_t id, const char *owner, uint64_t until_ns);
/* Extends every lease owner holds on a pending row that has not ended at now_ns to until_ns
 * (until_ns 0 with now_ns 0: ends them all, at shutdown).
 * Returns the rows renewed, or -1. */
int store_deliveries_renew(struct store *s, const char *owner, uint64_t now_ns, uint64_t until_ns);

/* ---- upkeep ---- */
/* Deletes history older than older_than_ns, at most limit rows of each kind: transitions,
 * resolved alerts (resolved before it) with their outbox rows, and silences ended before
 * it.  Firing alerts, pending and dead deliveries are never deleted (nor, so the outbox keeps
 * no row without its alert, a resolved alert that still has one).  Transitions go oldest
 * first (by id), stopping at the first one at or after the cutoff.  Runs in a transaction
 * of its own.  Returns the number of rows deleted (outbox rows included), or -1. */
int store_alerts_prune(struct store *s, uint64_t older_than_ns, uint32_t limit);
#define STORE_ALERT_HISTORY_NS (UINT64_C(30) * 86400 * 1000000000) /* default: 30 days */
#endif
