/* alerts.h: the rule engine in the collector — rules matched against committed events,
 * one circuit per (rule, key), transitions and alerts written to the outbox in the same
 * transaction as the events, and the outbox delivered by the notifier.
 *
 * Threads.  Everything that changes circuits runs on the ingest writer thread, through the
 * writer hooks below (inside each ingest transaction, and between transactions for timers)
 * or as writer jobs (reload, replay, silences, delivery reports).  The query service reads
 * the tables through its own read-only connections, and takes the rules in force with
 * alerts_rules_get().  The notifier (notify.c) runs on its own libuv thread; its reports
 * come back to the writer as jobs. */
#ifndef ERRQD_ALERTS_H
#define ERRQD_ALERTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "circuit.h"
#include "notify.h"
#include "rules.h"

struct store;
struct ingest;
struct ingest_batch;
struct alerts;

/* The rules in force, shared read-only by reference. */
struct alerts_rules {
	struct ruleset *rs;  /* never NULL (an empty set when there are no rules) */
	char source[512];    /* the file they came from, "" when none */
	uint64_t loaded_ns;
};
/* A reference to the rules in force (any thread); give it back with alerts_rules_put. */
const struct alerts_rules *alerts_rules_get(struct alerts *a);
void alerts_rules_put(struct alerts *a, const struct alerts_rules *r);

#define ALERTS_MAX_TRANSITIONS_LISTED 1000
#define ALERTS_REPORT_SLOTS (2 * NOTIFY_MAX_PENDING) /* delivery reports awaiting the writer */
#define ALERTS_RESUBMIT_MS 1000   /* how soon deliveries the notifier refused (full) are retried */
#define ALERTS_SAMPLE_MAX 32768   /* the sample event's JSON in an alert (escaped; bodies stay < NOTIFY_BODY_MAX) */

struct alerts_opts {
	const char *config_path;  /* rules and notifiers are (re)read from here; NULL = none */
	const char *collector;    /* the collector's name, in webhook bodies */
	struct ingest *ig;        /* for writer jobs (set with alerts_set_ingest once it exists) */
	const struct notify_opts *notify; /* retry timing (tests shrink it); NULL = defaults */
	uint64_t (*clock)(void);  /* realtime ns; NULL = errq_now_ns (tests inject one) */
	/* Tests without a writer thread: with ig NULL, requests run at once on the caller's
	 * thread against this store (which the caller must not be using). */
	struct store *inline_store;
	/* Something else the same file configures, reloaded with the rules (the credentials,
	 * auth.h): prepare reads and checks it (NULL with err refuses the whole reload), commit
	 * puts it in force once the new rules are; discard frees a prepared one not committed.
	 * NULL prepare: nothing else. */
	void *(*reload_prepare)(void *ctx, const char *path, char *err, size_t errsz);
	void (*reload_commit)(void *ctx, void *staged);
	void (*reload_discard)(void *staged);
	void *reload_ctx;
};

/* Creates the engine with the rules of o->config_path (loaded already by the caller and
 * handed over in rs, which the engine then owns; NULL = no rules) and starts the notifier.
 * Nothing is read from the database yet: that happens on the writer thread, in the first
 * hook call.  Returns 0, or -1 with err. */
int alerts_new(struct alerts **out, const struct alerts_opts *o, struct ruleset *rs, const char *source,
	       char *err, size_t errsz);
void alerts_set_ingest(struct alerts *a, struct ingest *ig);
/* Stops the notifier thread (deliveries in flight are cut; what they had not finished stays
 * in the outbox for the next start) and joins it: after this no code of the alerts engine
 * runs on a thread of its own, so the ingest writer its jobs go to may be freed.  The
 * gRPC threads (requests) must be gone already.  alerts_free does it too; accepts NULL. */
void alerts_stop(struct alerts *a);
/* Stops the notifier (deliveries still pending stay in the outbox) and frees.  After the
 * ingest writer has stopped.  Accepts NULL. */
void alerts_free(struct alerts *a);

/* ---- writer hooks (struct ingest_hooks calls them; writer thread only) ---- */
/* Inside the ingest transaction, after the batches' events were added (ev->result known):
 * matches new events and outcomes against the rules, updates circuits, writes transitions,
 * alerts and outbox rows.  Returns 0, or -1 (store error: the caller rolls back and calls
 * alerts_txn_end(false)). */
int alerts_hook_txn(void *ctx, struct store *s, const struct ingest_batch *list);
/* After the transaction: committed (then new outbox rows go to the notifier) or rolled back
 * (the circuits go back to their state before it). */
void alerts_hook_txn_end(void *ctx, struct store *s, bool committed);
/* Between transactions: fires due deadlines (circuit timers, silence ends, delivery
 * reports, resubmission), each batch of work in a transaction of its own.  Returns the
 * monotonic-clock time (errq_mono_ns) at which it wants to be called again, 0 = not before
 * new work (jobs wake the writer anyway). */
uint64_t alerts_hook_tick(void *ctx, struct store *s);

/* ---- requests from the Alerts service (any thread; answered on the writer thread) ---- */
enum alerts_status {
	ALERTS_OK = 0,
	ALERTS_INVALID,      /* bad request or bad rules file: msg says why */
	ALERTS_NOT_FOUND,
	ALERTS_PRECONDITION, /* e.g. nothing to replay */
	ALERTS_UNAVAILABLE,  /* the writer is stopping or its job queue is full */
	ALERTS_INTERNAL,     /* store error */
};
struct alerts_answer {
	enum alerts_status status;
	char msg[1024];
	/* results */
	int64_t id;          /* silence id (add, expire) */
	uint32_t count;      /* replayed deliveries */
	uint32_t rules, notifiers, kept, changed, removed; /* reload */
};
/* Called once, on the writer thread, for a request that was queued (with an inline store, as
 * in unit tests, before the request call returns).  A request that could not be queued is
 * refused by its return value and its callback never runs. */
typedef void (*alerts_answer_fn)(void *arg, const struct alerts_answer *ans);

/* The requests below return ALERTS_OK when the request is queued: fn then runs exactly once.
 * Any other status (ALERTS_UNAVAILABLE: the writer is stopping or its queue is full;
 * ALERTS_INTERNAL: out of memory) means refused: fn never runs, and alerts_refusal_msg()
 * gives the words for the caller's reply.
 *
 * Re-reads the rules file and swaps the rules atomically (a bad file keeps the old ones and
 * answers ALERTS_INVALID with "'FILE' line N: ...").  Also what SIGHUP does (fn NULL: the
 * result is logged). */
enum alerts_status alerts_reload(struct alerts *a, alerts_answer_fn fn, void *arg);
/* The same, saying who asked ("SIGHUP", "ReloadRules RPC (identity 'ops')"): the log line of
 * every reload, done or refused, names it with what changed (ALERTS_WHO_MAX bytes kept). */
#define ALERTS_WHO_MAX 160
enum alerts_status alerts_reload_by(struct alerts *a, const char *who, alerts_answer_fn fn, void *arg);
/* Sends the dead-lettered deliveries of an alert again. */
enum alerts_status alerts_replay(struct alerts *a, const uint8_t alert_id[16], alerts_answer_fn fn, void *arg);
struct alerts_silence_req {
	char rule[RULES_NAME_MAX];
	char matchers[RULES_KEY_MAX]; /* "field=glob,..." ("" = every key of the rule) */
	char comment[512];
	char created_by[128];
	uint64_t duration_ns;         /* from now; 1 s .. 90 days */
};
enum alerts_status alerts_silence_add(struct alerts *a, const struct alerts_silence_req *req, alerts_answer_fn fn,
				      void *arg);
enum alerts_status alerts_silence_expire(struct alerts *a, int64_t id, alerts_answer_fn fn, void *arg);
/* Why a request was refused, for a reply or a log line. */
const char *alerts_refusal_msg(enum alerts_status st);

/* Checks silence matchers against a rule: 0, or -1 with err ("unknown field 'x'", ...). */
int alerts_matchers_check(const struct rule *rule, const char *matchers, char *err, size_t errsz);
/* True when matchers ("field=glob,...", "" = any) match circuit key `key` of rule. */
bool alerts_matchers_match(const char *matchers, const char *key);

/* Several collectors on one database (server/fleet.h): the engine writes its matches as
 * increments (storage_alerts.h) and evaluates only while f says this collector leads.  Before
 * the writer starts; f outlives the engine's writer. */
struct fleet;
void alerts_set_fleet(struct alerts *a, struct fleet *f);
struct alerts_fleet_stats {
	uint64_t inputs_written;     /* increments this collector wrote (rows) */
	uint64_t inputs_taken;       /* increments it took as the leader (rows) */
	uint64_t inputs_unknown;     /* taken rows naming a rule it does not have (skipped) */
	uint64_t eval_lag_ms;        /* the leader: receive to evaluation of the last row taken */
	uint64_t fenced;             /* transactions refused because another collector took over */
	uint64_t loads;              /* times it loaded the circuits on becoming the leader */
};
void alerts_get_fleet_stats(struct alerts *a, struct alerts_fleet_stats *st);
/* At shutdown, after the writer and the notifier stopped (s: the writer's store, nobody else's
 * now): the deliveries leased to this collector are let go, so the others take them at once
 * instead of when the leases end.  Nothing without a fleet. */
void alerts_fleet_release(struct alerts *a, struct store *s);

struct alerts_stats {
	uint64_t failures_matched, failures_too_old, failures_expired, overflow_failures;
	uint64_t transitions, alerts_fired, alerts_resolved, reminders;
	uint64_t deliveries_delivered, deliveries_retried, deliveries_dead, deliveries_silenced;
	uint64_t outcome_batches, outcome_batches_duplicate;
	uint32_t circuits, circuits_open, pending_deliveries;
	uint32_t circuits_half_open; /* of circuits_open */
	uint32_t alerts_firing;      /* alerts not resolved now */
};
void alerts_get_stats(struct alerts *a, struct alerts_stats *st);
/* Delivery attempts per notifier since start (notify.h); returns the rows copied. */
size_t alerts_notifier_stats(struct alerts *a, struct notify_dest_stats *out, size_t max);
/* When the notifier's loop last turned (a health_turn_fn; ctx is the struct alerts). */
uint64_t alerts_notifier_last_turn(void *ctx);
/* Failures a rule put into its overflow circuit since start (for ListRules). */
uint64_t alerts_rule_overflow(struct alerts *a, const char *rule);
#endif
