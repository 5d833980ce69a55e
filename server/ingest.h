/* ingest.h: the bounded queue between the gRPC threads and the single SQLite writer.
 *
 * Producers (completion-queue threads) hand over decoded, validated batches with
 * ingest_submit().  The writer thread takes every batch that is waiting (bounded by
 * INGEST_COMMIT_MAX_* per transaction), stores them in one transaction, commits, and only
 * then calls each batch's done() — which sends the acknowledgement.  That is group commit:
 * the cost of a COMMIT is shared by all the batches that arrived while the previous one ran.
 *
 * Bounds and policy at the limit: the queue — counting the batches the writer is working on
 * until they commit — holds at most max_batches batches and max_bytes bytes.  max_bytes
 * bounds everything decoded, across all streams: the queued batches, the parked ones, and
 * room reserved for the messages being decoded (an upper bound of their decoded size,
 * ingest_waiter.need / ingest_batch.reserved, given back when the batch is submitted): a
 * message decodes to up to ~65x its wire size, so room is claimed before decoding, not after.  A batch that arrives when the queue is full is *parked*: ingest_submit
 * returns INGEST_PARKED, the producer must not read more from that stream, and the writer
 * moves the batch into the queue (calling its resumed()) when there is room.  Each stream
 * holds at most one parked batch, so memory is bounded by the queue plus one message per
 * stream, and gRPC flow control holds the clients back: that is the backpressure.
 *
 * A locked store is retried with backoff; nothing is acknowledged until it commits.  A
 * transaction that fails for a full disk or an unwritable file gives its batches back at once
 * with done(committed = false): their streams end with UNAVAILABLE and the reason.  ingest_stop() drains: everything queued or parked is committed (or, when the
 * store keeps failing past the deadline, given back with committed = false). */
#ifndef ERRQD_INGEST_H
#define ERRQD_INGEST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errq/v1/collector.pb-c.h"
#include "errq_arena.h"
#include "metrics.h"
#include "validate.h"

#ifdef ERRQ_TEST_LIMITS
#define INGEST_COMMIT_MAX_BATCHES 4
#define INGEST_COMMIT_MAX_EVENTS 64
#else
#define INGEST_COMMIT_MAX_BATCHES 256
#define INGEST_COMMIT_MAX_EVENTS 20000
#endif
#define INGEST_RETRY_MAX_MS 1000
#define INGEST_TURN_MS 1000 /* the writer turns at least this often, even idle (liveness) */

struct store;
struct ingest_batch;

/* One event of a batch.  tf points into the batch's decoded request. */
struct ingest_event {
	Errq__V1__TaskFailure *tf; /* NULL when rejected */
	struct validated v;
	uint64_t received_ns;
	size_t extra_off, extra_len; /* frames + details, packed, in batch->extra */
	/* Refused by a quota (quota.h) and listed in the batch's rejections, but counted in its
	 * group and service (store_txn_count_event): valid, tf set, not stored.  If its event_id
	 * is stored already, the writer makes it a duplicate instead (result). */
	bool count_only;
	int8_t result; /* after commit: INGEST_STORED, INGEST_DUPLICATE or INGEST_COUNTED */
};
enum { INGEST_DUPLICATE = 0, INGEST_STORED = 1, INGEST_COUNTED = 2 /* count_only: counted, not stored */ };
/* The store's view of valid event ev of batch b (b NULL: without its extra blob).  Pointers
 * into ev and b. */
struct store_event;
void ingest_store_event(const struct ingest_batch *b, const struct ingest_event *ev, struct store_event *se);

struct ingest_batch_ops {
	/* Writer thread, after the batch's transaction committed (committed = true) or was
	 * abandoned (false: at shutdown, or the disk is full or the file unwritable; the reason
	 * is in ingest_get_health).  Owns the batch from then on. */
	void (*done)(struct ingest_batch *b, bool committed);
	/* Writer thread: a parked batch entered the queue; the producer may read again. */
	void (*resumed)(struct ingest_batch *b);
};

/* A stream waiting for room in the queue.  It holds only its message's bytes, not decoded
 * (a decoded batch takes ~4x the wire size), so 1 000 waiting streams cost ~1 000 messages. */
struct ingest_waiter {
	struct ingest_waiter *next;
	size_t need; /* decoded bytes to reserve for its message (set before ingest_room_or_wait) */
	/* Writer thread: there is room now (abandon = false: decode and ingest_submit with
	 * from_waiter set), or the writer is stopping (abandon = true: give up; the message is
	 * not acknowledged).  Either way the owner calls ingest_waiter_done if it submits nothing. */
	void (*wake)(struct ingest_waiter *w, bool abandon);
};

struct ingest_batch {
	struct ingest_batch *next;
	bool from_waiter;              /* submitted after a wake: releases its claim on room */
	size_t reserved;               /* decoded bytes reserved for it (w->need), released at submit */
	size_t answer_reserved;        /* the producer's: bytes its answer may take (svc_report.c) */
	struct ingest_batch *resume_next;
	const struct ingest_batch_ops *ops;
	void *owner;
	struct errq_arena arena;       /* holds req and every array below */
	Errq__V1__ReportRequest *req;  /* decoded into the arena */
	size_t bytes;                  /* memory held, for the byte bound */
	size_t n_events;
	struct ingest_event *events;   /* n_events, same order as req->failures */
	uint8_t *extra;                /* packed frames/details of all events */
	uint32_t n_rejected;
	uint32_t *rejected_index;      /* n_rejected */
	char (*rejected_reason)[VALIDATE_REASON_MAX];
};

/* Work for the writer thread that is not ingest: status changes, and later rules and
 * alerts.  run() is called on the writer thread between transactions, with the store (NULL
 * under storage: none), and owns the job from then on. */
struct ingest_job {
	struct ingest_job *next;
	void (*run)(struct ingest_job *j, struct store *s);
};

/* Called on the writer thread after each commit with the committed batches (linked by next;
 * events with result == 1 are new), before their answers go out. */
typedef void (*ingest_commit_hook)(void *ctx, const struct ingest_batch *list);

/* The rule engine's place in the writer (alerts_txn.c, alerts_timer.c).  All on the writer thread. */
struct ingest_hooks {
	/* Inside each ingest transaction, after the events were added (ev->result set), before
	 * COMMIT.  Returns 0, or -1 to roll the transaction back (it is retried). */
	int (*txn)(void *ctx, struct store *s, const struct ingest_batch *list);
	/* After that transaction committed (true) or was rolled back (false). */
	void (*txn_end)(void *ctx, struct store *s, bool committed);
	/* Between transactions when its time has come (and at start): timers.  Returns the
	 * errq_mono_ns() time to be called again, 0 = only after ingest_tick_soon(). */
	uint64_t (*tick)(void *ctx, struct store *s);
	void *ctx;
};

struct ingest_opts {
	const struct ingest_hooks *hooks; /* NULL: none (also with store NULL: never called) */
	struct store *store; /* NULL: store nothing (storage: none), acknowledge at once */
	size_t max_batches;
	size_t max_bytes;
	uint64_t retention_ns;      /* raw events older than this are deleted; 0 = never */
	uint32_t per_group_cap;     /* newest events kept per group; 0 = no cap */
	uint64_t alert_history_ns;  /* resolved alerts, transitions kept (with hooks); 0 = default */
	ingest_commit_hook on_commit;
	void *on_commit_ctx;
	struct overflow_watch *overflow; /* NULL: none; told of each commit (overflow.h) */
};

#define INGEST_MAINT_INTERVAL_MS 1000 /* upkeep runs at least this often */
#define INGEST_MAINT_BUDGET_MS 20     /* ... when idle, for at most this long per round */
#define INGEST_MAINT_STEP_MS 10       /* while busy: one step per this interval when work is left */
#define INGEST_MAX_JOBS 1024          /* queued jobs; more are refused (the caller answers busy) */

struct ingest_stats {
	uint64_t batches, events_stored, events_duplicate, commits, store_errors, parked_total, maint_errors;
	uint64_t batches_failed; /* given back unacknowledged: the disk full or the file unwritable */
	uint64_t events_dropped; /* count_only events counted in their groups (quota), not stored */
	uint64_t events_deleted, overflow_events; /* from the store's writer */
	uint64_t group_lookups, agg_generations;  /* likewise (storage.h: store_write_stats) */
	uint64_t events_deleted_retention, events_deleted_cap; /* events_deleted, by cause */
	size_t queued_batches, queued_bytes, parked, max_queued_batches;
	size_t decoded_bytes; /* queued + parked + reserved for decoding: what max_bytes bounds */
	struct metrics_hist commit_seconds; /* each transaction of events, begin to commit */
	struct metrics_hist commit_events;  /* events (stored, duplicate) per committed transaction */
};

/* What readiness and liveness need to know (health.h). */
struct ingest_health {
	uint64_t failing_since;   /* errq_mono_ns() of the first failed write since the last commit; 0 = none */
	uint64_t last_failed;     /* errq_mono_ns() of the last failed write (0 = none yet) */
	int store_error;          /* enum store_errclass of the last failure */
	char error[256];          /* its message */
	uint64_t saturated_since; /* since when streams have waited for room without a break; 0 = none */
};

enum { INGEST_QUEUED = 0, INGEST_PARKED = 1, INGEST_REFUSED = 2 /* the writer has stopped */ };

struct ingest;
int ingest_start(struct ingest **out, const struct ingest_opts *o);
int ingest_submit(struct ingest *ig, struct ingest_batch *b);
/* True when the queue has room for a batch now, w->need bytes reserved for decoding it
 * (decode it and ingest_submit it with b->reserved = w->need, or ingest_unreserve).  False
 * after registering w, whose wake() the writer calls when room frees — in FIFO order, as many
 * at a time as there is room, each with its need reserved. */
bool ingest_room_or_wait(struct ingest *ig, struct ingest_waiter *w);
/* A woken waiter that will not submit (its call died, or its message did not decode): gives
 * back its claim and its reservation (w->need). */
void ingest_waiter_done(struct ingest *ig, const struct ingest_waiter *w);
/* A stream let in at once (ingest_room_or_wait true) that will not submit: gives back bytes. */
void ingest_unreserve(struct ingest *ig, size_t bytes);
/* Queues a job for the writer.  Returns 0, or -1 when INGEST_MAX_JOBS are waiting or the
 * writer is stopping (the job is not taken: the caller still owns it). */
int ingest_run_job(struct ingest *ig, struct ingest_job *j);
/* Makes the writer call hooks->tick at its next turn (any thread). */
void ingest_tick_soon(struct ingest *ig);
/* True on the writer thread (for ERRQ_ASSERT: what says "writer thread only" checks it). */
bool ingest_on_writer(struct ingest *ig);
/* Waits until nothing is queued, parked or being written, or until timeout; true if idle. */
bool ingest_wait_idle(struct ingest *ig, uint64_t timeout_ns);
/* Stops the writer after draining; past timeout_ns a failing store is given up on: what is
 * left is handed back with done(committed = false).  ig stays valid (stats) until
 * ingest_free.  Accepts NULL; a second call does nothing. */
void ingest_stop(struct ingest *ig, uint64_t timeout_ns);
/* Stops (if still running) and frees.  Accepts NULL. */
void ingest_free(struct ingest *ig);
void ingest_get_stats(struct ingest *ig, struct ingest_stats *st);
void ingest_get_health(struct ingest *ig, struct ingest_health *h);
/* errq_mono_ns() of the writer's last turn (a health_turn_fn; ctx is the struct ingest). */
uint64_t ingest_last_turn(void *ctx);
#endif
