/* circuit.h: the alerting circuit of one (rule, key) — a pure state machine.
 *
 * No clock is read, no I/O happens, nothing is allocated after circuit_new(): every call
 * takes `now` (nanoseconds since the epoch, the collector's clock, the same clock as the
 * events' received_at) and the rule's struct circuit_config, and returns what happened as
 * records in a struct circuit_out.  The caller stores the records (transition history,
 * alert outbox), saves the circuit (circuit_save) in the same transaction, and schedules one
 * timer at circuit_next_deadline().  The same code serves the collector, the tests (a fake
 * clock stepped by hand) and backtests (history replayed with now = received_at).
 *
 *                failures >= trip.failures in the window,
 *                or failure rate >= trip.failure_rate (with min_calls)
 *   CLOSED ───────────────────────────────────────────────────► OPEN    (alert fires)
 *     ▲                                                          │  ▲
 *     │                                   recovery timeout       │  │ half_open.failures in the
 *     │                                   elapsed: the probe     │  │ probe: recovery timeout
 *     │                                   starts                 ▼  │ *= backoff.factor (up to
 *     └───────────────────────────────────────────────────── HALF_OPEN  backoff.max); no new alert
 *       probe over with fewer than half_open.failures failures, or
 *       half_open.successes ok calls: the alert resolves; window and backoff start afresh
 *
 * Time.  A circuit has a clock: the latest time it has applied (an input's time, a deadline,
 * a tick), which never goes back.  An input (failure, outcome) is applied at its received_at
 * clamped to [clock, now]: transitions it causes happen then, it lands in the window bucket
 * of its received_at, and it belongs to a probe when received at or after the probe start.
 * Transitions caused by a deadline happen at the deadline, even when the call that notices
 * it comes later.  So processing lag, a late timer or a replay give the same history.  Each
 * call first fires the deadlines due by the input's time, then applies the input, then fires
 * the deadlines due by now.  A `now` before the clock means the collector's clock was set
 * back: inputs then count at the circuit's clock (rather than as long expired) until the
 * clock catches up.  After a restart (circuit_restore) deadlines that passed while the
 * collector was down fire at the restart instead, and a HALF_OPEN probe starts over: time
 * the collector did not see is not quiet time.
 *
 * Window.  Failures are counted in a ring of buckets on received_at.  A window of up to
 * CIRCUIT_MAX_BUCKETS seconds has 1-second buckets; a longer one has buckets of
 * ceil(window / CIRCUIT_MAX_BUCKETS) seconds (a 1 h window: 12 s; 24 h: 288 s), so a circuit
 * never holds more than CIRCUIT_MAX_BUCKETS buckets.  An event is taken as received at the
 * start of its bucket, and counts while now - bucket_start < window: with 1-second buckets
 * that is exactly "now - received_at < window" for received_at on a second boundary, and
 * an event inside a second stops counting up to 1 s early (up to one bucket early with
 * coarse buckets: the window never counts a failure older than the window).
 *
 * Threading: none; a circuit belongs to one thread at a time (the caller's rule engine). */
#ifndef ERRQD_CIRCUIT_H
#define ERRQD_CIRCUIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "circuit_config.h"

#define CIRCUIT_REASON_MAX 96 /* a record's reason, NUL included */
#define CIRCUIT_MAX_OUT 8     /* records one call can produce (at most 7 happen) */
/* circuit_save() never needs more than this many bytes. */
#define CIRCUIT_SAVE_MAX (128u + CIRCUIT_MAX_BUCKETS * 20u)

enum circuit_state { CIRCUIT_CLOSED = 0, CIRCUIT_OPEN = 1, CIRCUIT_HALF_OPEN = 2 };

/* One outcome of a call, for the caller to store and act on. */
enum circuit_alert {
	CIRCUIT_ALERT_NONE = 0, /* a transition that does not change the alert (OPEN <-> HALF_OPEN) */
	CIRCUIT_ALERT_FIRE,     /* CLOSED -> OPEN: the alert fires */
	CIRCUIT_ALERT_RESOLVE,  /* -> CLOSED: the alert resolves */
	CIRCUIT_ALERT_REMIND,   /* not a transition (from == to): repeat_interval reminder */
};

struct circuit_record {
	enum circuit_alert alert;
	enum circuit_state from, to;
	uint64_t at;                  /* ns since the epoch */
	char reason[CIRCUIT_REASON_MAX]; /* "failures 3 >= 3 in 60s", "recovery_timeout elapsed", ... */
	uint64_t failures_in_window;  /* failures counted in the window at `at` (before a reset) */
	uint32_t window_seconds;
	uint64_t next_transition_at;  /* after this record; 0 = none (CLOSED) */
};

struct circuit_out {
	size_t n;
	struct circuit_record rec[CIRCUIT_MAX_OUT];
};

/* Why circuit_failure()/circuit_outcome() did or did not count an input. */
enum circuit_count {
	CIRCUIT_COUNTED = 0,
	CIRCUIT_TOO_OLD = 1, /* received_at - time > max_event_age: a flushed backlog; ignored */
	CIRCUIT_EXPIRED = 2, /* received_at already outside the window (and the probe): ignored */
};

/* The state of one circuit.  Read it freely; change it only through the calls below.  The
 * whole of it (this header and the ring) is what circuit_save() writes. */
struct circuit {
	enum circuit_state state;
	uint64_t clock;       /* latest time applied; never goes back */
	uint64_t since;       /* when it entered `state` */
	uint64_t opened_at;   /* when the alert fired (the CLOSED -> OPEN); 0 while CLOSED */
	uint64_t deadline;    /* OPEN: -> HALF_OPEN; HALF_OPEN: end of the probe; CLOSED: 0 */
	uint64_t remind_at;   /* next reminder; 0 = none */
	uint64_t recovery_ns; /* the recovery timeout in force (grows by backoff while firing) */
	uint64_t probe_start; /* HALF_OPEN: events received from here on are in the probe */
	uint64_t probe_failures; /* failure events in the probe */
	uint64_t probe_failed;   /* failed calls reported by outcomes in the probe */
	uint64_t probe_ok;       /* ok calls reported by outcomes in the probe */
	uint32_t reopens;        /* HALF_OPEN -> OPEN since the alert fired */
	/* the window: geometry fixed at creation from the config's window and failure_rate */
	uint32_t window_s;
	uint32_t bucket_s;    /* seconds per bucket */
	uint32_t n_buckets;
	uint32_t has_calls;   /* the ring has ok/failed columns (a failure_rate rule) */
	uint64_t head;        /* bucket number (time / bucket) of the newest slot */
	uint64_t sum_failures, sum_ok, sum_failed; /* over the whole ring */
	uint32_t ring[];      /* failures[n_buckets], then ok[n_buckets], failed[n_buckets] */
};

/* "closed", "open", "half_open" (the JSON names). */
const char *circuit_state_name(enum circuit_state s);

/* Bytes a circuit for cfg takes (struct and ring). */
size_t circuit_size(const struct circuit_config *cfg);
/* Makes c (circuit_size(cfg) bytes, caller's memory) a CLOSED circuit with an empty window
 * at now.  Allocates nothing.  Every call here takes a cfg that passes circuit_config_check
 * (a window out of range is a programmer error: assert), and for one circuit always a
 * config with the same window and failure_rate presence (the ring's geometry); other fields
 * may change between calls (a reload that keeps the rule's definition hash). */
void circuit_init(struct circuit *c, const struct circuit_config *cfg, uint64_t now);
/* malloc + circuit_init; NULL when out of memory.  Free with circuit_free (accepts NULL). */
struct circuit *circuit_new(const struct circuit_config *cfg, uint64_t now);
void circuit_free(struct circuit *c);

/* One failure event that matched the circuit's rule and key.  received_at is the
 * collector's receive time, time_unix_nano the client's (0 = unknown).  Fires due deadlines
 * up to the event, counts it (window; probe when received at or after the probe start),
 * evaluates the trip or the probe, then fires the deadlines due by now.  out is reset and
 * filled.  O(1): at most CIRCUIT_MAX_BUCKETS slot clears when time has jumped. */
enum circuit_count circuit_failure(struct circuit *c, const struct circuit_config *cfg, uint64_t now,
				   uint64_t received_at, uint64_t time_unix_nano, struct circuit_out *out);

/* count failures received at received_at at once (the fleet's increments: one row per rule,
 * key and receive second, their age checked where they were received): what count calls of
 * circuit_failure with an unknown client time do, evaluated once, after all of them. */
enum circuit_count circuit_failures(struct circuit *c, const struct circuit_config *cfg, uint64_t now,
				    uint64_t received_at, uint64_t count, struct circuit_out *out);

/* Outcome counts (ok and failed calls) that matched the circuit's rule and key, received at
 * received_at; end_unix_nano is the end of the client's counting window (0 = unknown), for
 * max_event_age.  Feeds the failure rate (rules with failure_rate) and the probe: ok calls
 * count toward half_open.successes; with a failure_rate (where an outcome belongs to the
 * circuit exactly) failed calls count toward half_open.failures too, as the larger of
 * failure events and failed calls, so a failure reported both ways counts once. */
enum circuit_count circuit_outcome(struct circuit *c, const struct circuit_config *cfg, uint64_t now,
				   uint64_t received_at, uint64_t ok, uint64_t failed, uint64_t end_unix_nano,
				   struct circuit_out *out);

/* Fires the deadlines (recovery timeout, probe end, reminder) due by now, each at its
 * deadline.  Call it when the timer set at circuit_next_deadline() expires. */
void circuit_tick(struct circuit *c, const struct circuit_config *cfg, uint64_t now, struct circuit_out *out);

/* After a restart, once per circuit loaded with circuit_load(), before anything else: an
 * OPEN whose recovery timeout passed while the collector was down goes HALF_OPEN now (the
 * probe starts now); a HALF_OPEN circuit restarts its probe now; a reminder that fell due
 * while down is sent now.  The window keeps the counts saved. */
void circuit_restore(struct circuit *c, const struct circuit_config *cfg, uint64_t now, struct circuit_out *out);

/* The rule behind the circuit changed (match, group_by or trip) or was removed: a circuit
 * that is not CLOSED closes now with reason "rule_changed" / "rule_removed" (its alert
 * resolves).  cfg is the old rule's config.  The caller then drops the circuit. */
void circuit_retire(struct circuit *c, const struct circuit_config *cfg, uint64_t now,
		    enum circuit_retire why, struct circuit_out *out);

/* The earliest time at which circuit_tick() has something to do, or 0 for never (CLOSED).
 * After any call with now, it is later than now. */
uint64_t circuit_next_deadline(const struct circuit *c);
/* The next state change (OPEN: end of the recovery timeout; HALF_OPEN: end of the probe),
 * or 0 — a circuit row's next_transition_at (reminders are not transitions). */
uint64_t circuit_next_transition(const struct circuit *c);

/* Failures counted in the window at now (>= c->clock), without changing c: for listings. */
uint64_t circuit_window_failures(const struct circuit *c, uint64_t now);
/* Ok and failed calls from outcomes in the window at now (0 without failure_rate). */
void circuit_window_calls(const struct circuit *c, uint64_t now, uint64_t *ok, uint64_t *failed);

/* Serializes c (versioned, little-endian, sparse ring) into buf.  Returns the length it
 * needs (<= CIRCUIT_SAVE_MAX); writes only when that fits in bufsz. */
size_t circuit_save(const struct circuit *c, void *buf, size_t bufsz);
/* Rebuilds a circuit saved by circuit_save() for the same rule definition.  Returns 0 with
 * *out (free with circuit_free), or -1 when buf is damaged or was saved for another window
 * geometry (the caller treats that circuit as new). */
int circuit_load(struct circuit **out, const struct circuit_config *cfg, const void *buf, size_t n);
#endif
