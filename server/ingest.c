/* ingest.c: the ingest queue and the writer thread.
 *
 * Threads and locks:
 *  - producers (gRPC completion-queue threads) call ingest_submit();
 *  - one writer thread owns the store handle and runs every transaction;
 *  - ig->mu guards the queue, the parked list and the counters; it is never held while
 *    calling into SQLite or into a batch's callbacks (done / resumed), so callbacks may take
 *    their own locks (a call's lock) without ordering problems.
 * Shutdown: ingest_stop() sets stopping; the writer keeps committing until the queue and the
 * parked list are empty (or the deadline passes with a failing store), then exits. */
#include "ingest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errq_condlog.h"
#include "errq_log.h"
#include "errq_time.h"
#include "overflow.h"
#include "storage.h"

/* Events one store_txn_add_events call takes: a batch's run of events to store (between the
 * quota's count-only ones) longer than this goes in several calls.  The writer's scratch below
 * (~150 KiB); PostgreSQL sends each call as one statement. */
#define INGEST_ADD_EVENTS_MAX 1024

struct ingest {
	pthread_mutex_t mu;
	pthread_cond_t wake;  /* writer: work arrived or stopping */
	pthread_cond_t idle;  /* waiters: writer finished a round */
	struct ingest_batch *head, *tail;
	struct ingest_batch *parked_head, *parked_tail;
	size_t n_queued, queued_bytes, n_parked;
	size_t parked_bytes, reserved_bytes; /* with queued_bytes: every decoded byte (ingest.h) */
	bool writing, stopping, joined, exited;
	struct ingest_job *jobs, *jobs_tail;
	struct ingest_waiter *waiters, *waiters_tail;
	size_t n_waiters, n_woken; /* woken: told there is room, not yet submitted */
	size_t n_jobs;
	uint64_t next_maint; /* monotonic ns */
	uint64_t maint_stored; /* st.events_stored at the last upkeep step */
	uint64_t next_tick;  /* monotonic ns: hooks->tick; UINT64_MAX = not before ingest_tick_soon */
	uint64_t stop_deadline; /* monotonic ns; abandon a failing store after it */
	struct ingest_opts o;
	struct ingest_stats st;
	struct ingest_health health;
	_Atomic uint64_t turn_ns; /* the writer's last turn (liveness) */
	/* the writer's: one log line per failing condition (errq_condlog.h), not one per retry */
	struct errq_condlog log_write, log_agg, log_maint;
	pthread_t thread;
	pthread_t writer;       /* set by the writer itself before its first job (ingest_on_writer) */
	_Atomic bool writer_set;
	/* the writer's: one store_txn_add_events call's events, results and where they came from */
	struct store_event add_ev[INGEST_ADD_EVENTS_MAX];
	int8_t add_res[INGEST_ADD_EVENTS_MAX];
	struct ingest_event *add_src[INGEST_ADD_EVENTS_MAX];
};

/* Commit latency buckets (seconds) and transaction sizes (events). */
static const double commit_seconds_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					       0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double commit_events_bounds[] = {1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 20000};

/* Under ig->mu, after the number of waiting streams changed: saturation starts when the
 * first stream has to wait and ends when none waits (health.h: readiness). */
static void note_saturation(struct ingest *ig)
{
	bool sat = ig->n_parked + ig->n_waiters > 0;
	if (sat && !ig->health.saturated_since)
		ig->health.saturated_since = errq_mono_ns();
	else if (!sat)
		ig->health.saturated_since = 0;
}

static bool has_room(struct ingest *ig, size_t bytes)
{
	/* an empty queue always takes one batch, however big, or a huge batch would never pass */
	size_t n = ig->n_queued + ig->n_woken;
	size_t held = ig->queued_bytes + ig->parked_bytes + ig->reserved_bytes;
	return (n == 0 && held == 0) || (n < ig->o.max_batches && held + bytes <= ig->o.max_bytes);
}

/* Under ig->mu: the first waiter could be let in now. */
static bool waiter_fits(struct ingest *ig)
{
	return ig->waiters && !ig->n_parked && has_room(ig, ig->waiters->need);
}

static void enqueue(struct ingest *ig, struct ingest_batch *b)
{
	b->next = NULL;
	if (ig->tail)
		ig->tail->next = b;
	else
		ig->head = b;
	ig->tail = b;
	ig->n_queued++;
	ig->queued_bytes += b->bytes;
	if (ig->n_queued > ig->st.max_queued_batches)
		ig->st.max_queued_batches = ig->n_queued;
}

bool ingest_room_or_wait(struct ingest *ig, struct ingest_waiter *w)
{
	bool room;
	pthread_mutex_lock(&ig->mu);
	room = !ig->n_parked && !ig->waiters && has_room(ig, w->need);
	if (room) {
		ig->reserved_bytes += w->need;
	} else {
		w->next = NULL;
		if (ig->waiters_tail)
			ig->waiters_tail->next = w;
		else
			ig->waiters = w;
		ig->waiters_tail = w;
		ig->n_waiters++;
		ig->st.parked_total++;
		note_saturation(ig);
	}
	pthread_mutex_unlock(&ig->mu);
	return room;
}

void ingest_unreserve(struct ingest *ig, size_t bytes)
{
	pthread_mutex_lock(&ig->mu);
	ig->reserved_bytes -= bytes;
	pthread_cond_signal(&ig->wake); /* the room it gave back may let a waiter in */
	pthread_mutex_unlock(&ig->mu);
}

void ingest_waiter_done(struct ingest *ig, const struct ingest_waiter *w)
{
	pthread_mutex_lock(&ig->mu);
	if (ig->n_woken)
		ig->n_woken--;
	ig->reserved_bytes -= w->need;
	pthread_cond_signal(&ig->wake); /* the room it gave back may let the next waiter in */
	pthread_cond_broadcast(&ig->idle);
	pthread_mutex_unlock(&ig->mu);
}

/* Under ig->mu: unlinks the waiters there is room for now (all of them when abandoning);
 * the caller wakes them after unlocking. */
static struct ingest_waiter *take_waiters(struct ingest *ig, bool all)
{
	struct ingest_waiter *list = NULL, **tail = &list;
	while (ig->waiters && (all || waiter_fits(ig))) {
		struct ingest_waiter *w = ig->waiters;
		ig->waiters = w->next;
		if (!ig->waiters)
			ig->waiters_tail = NULL;
		ig->n_waiters--;
		if (!all) {
			ig->n_woken++;
			ig->reserved_bytes += w->need; /* room claimed for its decoding */
		}
		*tail = w;
		tail = &w->next;
		*tail = NULL;
	}
	note_saturation(ig);
	return list;
}

static void wake_waiters(struct ingest_waiter *list, bool abandon)
{
	for (struct ingest_waiter *w = list, *n; w; w = n) {
		n = w->next;
		w->wake(w, abandon);
	}
}

int ingest_submit(struct ingest *ig, struct ingest_batch *b)
{
	int rc;
	pthread_mutex_lock(&ig->mu);
	if (b->from_waiter && ig->n_woken)
		ig->n_woken--; /* the room it was woken for is now taken by the batch itself */
	ig->reserved_bytes -= b->reserved; /* its decoded size is known now: b->bytes */
	b->reserved = 0;
	if (ig->exited) {
		pthread_mutex_unlock(&ig->mu);
		return INGEST_REFUSED;
	}
	if (!ig->n_parked && has_room(ig, b->bytes)) {
		enqueue(ig, b);
		pthread_cond_signal(&ig->wake);
		rc = INGEST_QUEUED;
	} else {
		b->next = NULL;
		if (ig->parked_tail)
			ig->parked_tail->next = b;
		else
			ig->parked_head = b;
		ig->parked_tail = b;
		ig->n_parked++;
		ig->parked_bytes += b->bytes;
		ig->st.parked_total++;
		note_saturation(ig);
		rc = INGEST_PARKED;
	}
	pthread_mutex_unlock(&ig->mu);
	return rc;
}

/* Under ig->mu: moves parked batches into the queue while there is room; returns them linked
 * by resume_next, for the caller to run their resumed() after unlocking.  Only the writer
 * (the caller) takes batches off the queue, so none is written before it is resumed. */
static struct ingest_batch *unpark(struct ingest *ig)
{
	struct ingest_batch *moved = NULL, **mt = &moved;
	while (ig->parked_head) {
		struct ingest_batch *b = ig->parked_head;
		ig->parked_bytes -= b->bytes; /* counted once: as parked, or as queued */
		if (!has_room(ig, b->bytes)) {
			ig->parked_bytes += b->bytes;
			break;
		}
		ig->parked_head = b->next;
		if (!ig->parked_head)
			ig->parked_tail = NULL;
		ig->n_parked--;
		enqueue(ig, b);
		*mt = b;
		mt = &b->resume_next;
		*mt = NULL;
	}
	note_saturation(ig);
	return moved;
}

void ingest_store_event(const struct ingest_batch *b, const struct ingest_event *ev, struct store_event *se)
{
	const Errq__V1__TaskFailure *tf = ev->tf;
	*se = (struct store_event){
	    .event_id = tf->event_id.data,
	    .time_ns = tf->time_unix_nano,
	    .received_ns = ev->received_ns,
	    .service = tf->service,
	    .environment = tf->environment,
	    .release = tf->release,
	    .host = tf->host,
	    .task = tf->task,
	    .error_type = tf->error_type,
	    .error_code = tf->error_code,
	    .message = tf->message,
	    .fingerprint = ev->v.fingerprint,
	    .grouping_version = GROUPING_VERSION,
	    .attempt = tf->attempt,
	    .handled = tf->handled,
	    .truncated = ev->v.truncated,
	    .extra = b && ev->extra_len ? b->extra + ev->extra_off : NULL,
	    .extra_len = b ? ev->extra_len : 0,
	};
}

/* Stores the events of batch b inside the open transaction: each run of events to store in
 * one store_txn_add_events call (at most INGEST_ADD_EVENTS_MAX), the quota's count-only ones
 * one by one.  Returns 0, or -1 (the caller rolls back). */
static int write_batch(struct ingest *ig, struct ingest_batch *b)
{
	struct store *s = ig->o.store;
	size_t i = 0;
	while (i < b->n_events) {
		struct ingest_event *ev = &b->events[i];
		if (!ev->tf) { /* rejected */
			i++;
			continue;
		}
		if (ev->count_only) {
			struct store_event se;
			ingest_store_event(b, ev, &se);
			int r = store_txn_count_event(s, &se);
			if (r < 0)
				return -1;
			ev->result = r ? INGEST_COUNTED : INGEST_DUPLICATE;
			i++;
			continue;
		}
		size_t n = 0;
		for (; i < b->n_events && n < INGEST_ADD_EVENTS_MAX; i++) {
			ev = &b->events[i];
			if (!ev->tf)
				continue;
			if (ev->count_only)
				break;
			ingest_store_event(b, ev, &ig->add_ev[n]);
			ig->add_src[n++] = ev;
		}
		if (store_txn_add_events(s, ig->add_ev, n, ig->add_res))
			return -1;
		for (size_t k = 0; k < n; k++)
			ig->add_src[k]->result = ig->add_res[k] ? INGEST_STORED : INGEST_DUPLICATE;
	}
	return 0;
}

/* Stores every event of the taken batches in one transaction.  Returns 0 when committed. */
static int write_batches(struct ingest *ig, struct ingest_batch *list)
{
	struct store *s = ig->o.store;
	if (store_txn_begin(s))
		return -1;
	for (struct ingest_batch *b = list; b; b = b->next)
		if (write_batch(ig, b)) {
			store_txn_rollback(s);
			return -1;
		}
	const struct ingest_hooks *h = ig->o.hooks;
	if (h && h->txn(h->ctx, s, list)) {
		store_txn_rollback(s);
		h->txn_end(h->ctx, s, false);
		return -1;
	}
	/* with more batches waiting, the aggregates wait too (storage.h: deferred aggregates);
	 * the last transaction before the queue empties writes them with its events when few are
	 * pending, else the idle writer writes them a slice at a time (writer_main) */
	pthread_mutex_lock(&ig->mu);
	bool more = ig->head != NULL;
	pthread_mutex_unlock(&ig->mu);
	if (more ? store_txn_commit_deferred(s) : store_txn_commit_idle(s)) {
		store_txn_rollback(s);
		if (h)
			h->txn_end(h->ctx, s, false);
		return -1;
	}
	if (h)
		h->txn_end(h->ctx, s, true);
	return 0;
}

void ingest_tick_soon(struct ingest *ig)
{
	pthread_mutex_lock(&ig->mu);
	ig->next_tick = 0;
	pthread_cond_signal(&ig->wake);
	pthread_mutex_unlock(&ig->mu);
}

/* Under ig->mu, which it drops while working: the hooks' timers, when due. */
static void tick(struct ingest *ig)
{
	const struct ingest_hooks *h = ig->o.hooks;
	if (!h || !ig->o.store || errq_mono_ns() < ig->next_tick)
		return;
	ig->next_tick = UINT64_MAX; /* a tick_soon while it runs brings it back */
	pthread_mutex_unlock(&ig->mu);
	uint64_t next = h->tick(h->ctx, ig->o.store);
	pthread_mutex_lock(&ig->mu);
	if (next && next < ig->next_tick)
		ig->next_tick = next;
}

/* Under ig->mu: unlinks everything queued and parked (for abandoning at shutdown). */
static struct ingest_batch *take_all(struct ingest *ig)
{
	struct ingest_batch *list = ig->head;
	if (ig->tail)
		ig->tail->next = ig->parked_head;
	else
		list = ig->parked_head;
	ig->head = ig->tail = ig->parked_head = ig->parked_tail = NULL;
	ig->n_queued = ig->queued_bytes = ig->n_parked = ig->parked_bytes = 0;
	return list;
}

int ingest_run_job(struct ingest *ig, struct ingest_job *j)
{
	int rc = -1;
	pthread_mutex_lock(&ig->mu);
	if (!ig->stopping && ig->n_jobs < INGEST_MAX_JOBS) {
		j->next = NULL;
		if (ig->jobs_tail)
			ig->jobs_tail->next = j;
		else
			ig->jobs = j;
		ig->jobs_tail = j;
		ig->n_jobs++;
		pthread_cond_signal(&ig->wake);
		rc = 0;
	}
	pthread_mutex_unlock(&ig->mu);
	return rc;
}

/* Under ig->mu, which it drops while working: runs the queued jobs. */
static void run_jobs(struct ingest *ig)
{
	while (ig->jobs) {
		struct ingest_job *j = ig->jobs;
		ig->jobs = j->next;
		if (!ig->jobs)
			ig->jobs_tail = NULL;
		ig->n_jobs--;
		pthread_mutex_unlock(&ig->mu);
		j->run(j, ig->o.store);
		pthread_mutex_lock(&ig->mu);
	}
}

/* Upkeep has work to do: retention, the per-group cap, or the alerting tables' history. */
static bool has_upkeep(const struct ingest *ig)
{
	return ig->o.retention_ns || ig->o.per_group_cap || ig->o.hooks;
}

/* Under ig->mu, which it drops while working: background upkeep when it is due.  While
 * ingest is busy, one step per INGEST_MAINT_STEP_MS, its event sweeps sized to twice the
 * events stored since the previous step (STORE_MAINT_BATCH to STORE_MAINT_MAX_ROWS rows), so
 * deletion keeps pace with ingest and each step stays short; when idle, steps for up to
 * INGEST_MAINT_BUDGET_MS. */
static void maintain(struct ingest *ig, bool idle)
{
	uint64_t now = errq_mono_ns();
	if (!ig->o.store || now < ig->next_maint || !has_upkeep(ig))
		return;
	/* the sweeps keep pace with ingest: each step may delete twice what was stored since the
	 * last one (so a backlog shrinks while ingest goes on), at least STORE_MAINT_BATCH rows */
	uint64_t since = ig->st.events_stored - ig->maint_stored;
	ig->maint_stored = ig->st.events_stored;
	uint32_t max_rows = since * 2 > STORE_MAINT_MAX_ROWS ? STORE_MAINT_MAX_ROWS
			    : since * 2 > STORE_MAINT_BATCH  ? (uint32_t)since * 2
							     : STORE_MAINT_BATCH;
	pthread_mutex_unlock(&ig->mu);
	struct store_maint_opts mo = {.now_ns = errq_now_ns(), .retention_ns = ig->o.retention_ns,
				      .per_group_cap = ig->o.per_group_cap, .alert_history_ns = ig->o.alert_history_ns,
				      .max_rows = max_rows};
	uint64_t until = now + INGEST_MAINT_BUDGET_MS * ERRQ_NS_PER_MS;
	bool more = false;
	int rc = 0;
	do {
		rc = store_maintain(ig->o.store, &mo, &more);
	} while (idle && more && rc == 0 && errq_mono_ns() < until);
	if (rc)
		errq_condlog_fail(&ig->log_maint, store_errmsg(ig->o.store));
	else
		errq_condlog_ok(&ig->log_maint);
	struct store_write_stats ws;
	store_get_write_stats(ig->o.store, &ws);
	pthread_mutex_lock(&ig->mu);
	ig->st.maint_errors += rc != 0;
	ig->st.events_deleted = ws.events_deleted;
	ig->st.events_deleted_retention = ws.events_deleted_retention;
	ig->st.events_deleted_cap = ws.events_deleted_cap;
	/* work left: come back after a short pause; else at the interval */
	ig->next_maint = errq_mono_ns() + (more && !rc ? INGEST_MAINT_STEP_MS : INGEST_MAINT_INTERVAL_MS) * ERRQ_NS_PER_MS;
}

/* Without ig->mu: the batches that left the parked list (linked by resume_next) may have their
 * streams read again; then the written ones (linked by next) are done. */
static void finish_batches(struct ingest_batch *moved, struct ingest_batch *list, bool committed)
{
	for (struct ingest_batch *b = moved, *n; b; b = n) {
		n = b->resume_next;
		b->ops->resumed(b);
	}
	for (struct ingest_batch *b = list, *n; b; b = n) {
		n = b->next;
		b->ops->done(b, committed);
	}
}

static void *writer_main(void *arg)
{
	struct ingest *ig = arg;
	unsigned backoff_ms = 0;
	ig->writer = pthread_self();
	atomic_store(&ig->writer_set, true);
	pthread_mutex_lock(&ig->mu);
	for (;;) {
		atomic_store(&ig->turn_ns, errq_mono_ns());
		ig->writing = false;
		pthread_cond_broadcast(&ig->idle);
		run_jobs(ig);
		tick(ig);
		maintain(ig, !ig->head && !ig->parked_head);
		if (ig->o.store && !ig->head && !ig->parked_head && store_agg_pending(ig->o.store)) {
			/* going idle with aggregates deferred: write them now, a slice at a time, so a
			 * batch that arrives meanwhile waits for one slice at most */
			bool more = false;
			pthread_mutex_unlock(&ig->mu);
			int rc = store_agg_flush_step(ig->o.store, &more);
			if (rc)
				errq_condlog_fail(&ig->log_agg, store_errmsg(ig->o.store));
			else
				errq_condlog_ok(&ig->log_agg);
			pthread_mutex_lock(&ig->mu);
			if (!rc && more)
				continue;
		}
		while (!ig->head && !ig->parked_head && !ig->jobs && !ig->stopping &&
		       !(waiter_fits(ig) && !ig->n_woken) &&
		       !(ig->o.hooks && ig->o.store && ig->next_tick <= errq_mono_ns())) {
			/* idle: sleep until work arrives, upkeep or a timer is due */
			uint64_t until = ig->next_maint > errq_mono_ns() ? ig->next_maint : errq_mono_ns() + ERRQ_NS_PER_MS;
			if (!ig->o.store || !has_upkeep(ig))
				until = errq_mono_ns() + 3600 * ERRQ_NS_PER_SEC;
			if (ig->o.hooks && ig->o.store && ig->next_tick < until)
				until = ig->next_tick;
			if (until > errq_mono_ns() + INGEST_TURN_MS * ERRQ_NS_PER_MS)
				until = errq_mono_ns() + INGEST_TURN_MS * ERRQ_NS_PER_MS;
			struct timespec ts = {(time_t)(until / ERRQ_NS_PER_SEC), (long)(until % ERRQ_NS_PER_SEC)};
			if (pthread_cond_timedwait(&ig->wake, &ig->mu, &ts)) {
				atomic_store(&ig->turn_ns, errq_mono_ns());
				pthread_mutex_unlock(&ig->mu);
				errq_condlog_poll(&ig->log_write); /* idle after a failure: its recovery line */
				errq_condlog_poll(&ig->log_agg);
				errq_condlog_poll(&ig->log_maint);
				pthread_mutex_lock(&ig->mu);
				maintain(ig, true);
				tick(ig);
			}
		}
		if (ig->jobs)
			continue;
		if (!ig->head && !ig->parked_head && !ig->stopping && !(waiter_fits(ig) && !ig->n_woken))
			continue; /* only a hook's timer ends the wait so: it runs at the top */
		if (!ig->head && !ig->parked_head && waiter_fits(ig) && !ig->n_woken) {
			/* the queue emptied while streams waited: let them in */
			struct ingest_waiter *woken = take_waiters(ig, false);
			pthread_mutex_unlock(&ig->mu);
			wake_waiters(woken, false);
			pthread_mutex_lock(&ig->mu);
			continue;
		}
		if (!ig->head && !ig->parked_head) {
			/* only a stop gets here.  Streams woken for room are about to submit: give them
			 * until the stop deadline (checking every 10 ms); waiters left are given up on
			 * when the loop ends. */
			if (ig->n_woken && errq_mono_ns() < ig->stop_deadline) {
				uint64_t until = errq_mono_ns() + 10 * ERRQ_NS_PER_MS;
				struct timespec ts = {(time_t)(until / ERRQ_NS_PER_SEC), (long)(until % ERRQ_NS_PER_SEC)};
				pthread_cond_timedwait(&ig->wake, &ig->mu, &ts);
				continue;
			}
			break; /* stopping and drained */
		}
		if (ig->stopping && errq_mono_ns() >= ig->stop_deadline) {
			/* shutdown's time is up and the store still fails: give everything back at once,
			 * unacknowledged (the clients resend), without touching SQLite again */
			struct ingest_batch *all = take_all(ig);
			struct ingest_waiter *gone = take_waiters(ig, true);
			pthread_mutex_unlock(&ig->mu);
			wake_waiters(gone, true);
			LOG_ERROR("store failing at shutdown; unacknowledged batches dropped (clients resend them)");
			for (struct ingest_batch *b = all, *n; b; b = n) {
				n = b->next;
				b->ops->done(b, false);
			}
			pthread_mutex_lock(&ig->mu);
			continue;
		}
		if (!ig->head) { /* only parked batches (cannot stay so: the queue is empty) */
			struct ingest_batch *moved = unpark(ig);
			struct ingest_waiter *woken = take_waiters(ig, false);
			pthread_mutex_unlock(&ig->mu);
			wake_waiters(woken, false);
			for (struct ingest_batch *b = moved, *n; b; b = n) {
				n = b->resume_next;
				b->ops->resumed(b);
			}
			pthread_mutex_lock(&ig->mu);
			continue;
		}
		/* Take up to the per-transaction bounds from the head.  Taken batches stay counted in
		 * n_queued / queued_bytes until their transaction commits, so the bound covers
		 * everything between the streams and the disk, and a failed write can put them back
		 * without overshooting it. */
		struct ingest_batch *list = ig->head, *last = NULL;
		size_t nb = 0, ne = 0, bytes = 0;
		for (struct ingest_batch *b = ig->head; b; b = b->next) {
			if (nb && (nb >= INGEST_COMMIT_MAX_BATCHES || ne + b->n_events > INGEST_COMMIT_MAX_EVENTS))
				break;
			nb++;
			ne += b->n_events;
			bytes += b->bytes;
			last = b;
		}
		ig->head = last->next;
		if (!ig->head)
			ig->tail = NULL;
		last->next = NULL;
		ig->writing = true;
		pthread_mutex_unlock(&ig->mu);

		uint64_t t_write = errq_mono_ns();
		int rc = ig->o.store ? write_batches(ig, list) : 0;
		uint64_t t_done = errq_mono_ns();

		pthread_mutex_lock(&ig->mu);
		if (rc != 0) {
			ig->st.store_errors++;
			if (!ig->health.failing_since)
				ig->health.failing_since = t_done;
			ig->health.last_failed = t_done;
			int cls = store_last_errclass(ig->o.store);
			ig->health.store_error = cls;
			errq_snprintf(ig->health.error, sizeof(ig->health.error), "%s", store_errmsg(ig->o.store));
			if (cls == STORE_ERR_FULL || cls == STORE_ERR_UNWRITABLE || cls == STORE_ERR_UNAVAILABLE) {
				/* A full disk, an unwritable file or a lost database server does not mend in a
				 * retry: the batches are given back unacknowledged now (their streams end with
				 * UNAVAILABLE and the reason; the clients resend later or elsewhere: to another
				 * collector of the same PostgreSQL) rather than held until the clients'
				 * deadlines with no answer; the backend reconnects at the next transaction.  The batches behind them meet the same
				 * fate at the next attempt, or commit if space came back. */
				ig->n_queued -= nb;
				ig->queued_bytes -= bytes;
				ig->st.batches_failed += nb;
				struct ingest_batch *moved = unpark(ig);
				struct ingest_waiter *woken = take_waiters(ig, false);
				pthread_mutex_unlock(&ig->mu);
				errq_condlog_fail(&ig->log_write, store_errmsg(ig->o.store));
				wake_waiters(woken, false);
				finish_batches(moved, list, false);
				pthread_mutex_lock(&ig->mu);
			} else {
				/* locked, or another error: nothing of these batches is acknowledged; back to
				 * the head, retried with backoff */
				last->next = ig->head;
				ig->head = list;
				if (!ig->tail)
					ig->tail = last;
				pthread_mutex_unlock(&ig->mu);
				errq_condlog_fail(&ig->log_write, store_errmsg(ig->o.store));
				pthread_mutex_lock(&ig->mu);
			}
			backoff_ms = backoff_ms ? backoff_ms * 2 : 1;
			if (backoff_ms > INGEST_RETRY_MAX_MS)
				backoff_ms = INGEST_RETRY_MAX_MS;
			/* sleep on the condition so that a stop request cuts the backoff short */
			uint64_t until = errq_mono_ns() + backoff_ms * ERRQ_NS_PER_MS;
			if (ig->stopping && until > ig->stop_deadline)
				until = ig->stop_deadline;
			struct timespec ts = {(time_t)(until / ERRQ_NS_PER_SEC), (long)(until % ERRQ_NS_PER_SEC)};
			bool was_stopping = ig->stopping;
			while (errq_mono_ns() < until && ig->stopping == was_stopping)
				if (pthread_cond_timedwait(&ig->wake, &ig->mu, &ts))
					break;
			continue;
		}
		backoff_ms = 0;
		ig->health.failing_since = 0;
		if (errq_condlog_failing(&ig->log_write)) {
			pthread_mutex_unlock(&ig->mu);
			errq_condlog_ok(&ig->log_write); /* logs nothing until it settles */
			pthread_mutex_lock(&ig->mu);
		}
		uint64_t stored = 0, dup = 0, dropped = 0;
		for (struct ingest_batch *b = list; b; b = b->next)
			for (size_t i = 0; i < b->n_events; i++)
				if (b->events[i].tf) {
					if (!ig->o.store)
						b->events[i].result = b->events[i].count_only ? INGEST_COUNTED : INGEST_STORED;
					stored += b->events[i].result == INGEST_STORED;
					dup += b->events[i].result == INGEST_DUPLICATE;
					dropped += b->events[i].result == INGEST_COUNTED;
				}
		ig->n_queued -= nb;
		ig->queued_bytes -= bytes;
		ig->st.commits++;
		ig->st.batches += nb;
		ig->st.events_stored += stored;
		ig->st.events_duplicate += dup;
		ig->st.events_dropped += dropped;
		if (ig->o.store) {
			struct store_write_stats ws;
			store_get_write_stats(ig->o.store, &ws); /* the writer's own handle: this thread */
			ig->st.overflow_events = ws.overflow_events;
			ig->st.group_lookups = ws.group_lookups;
			ig->st.agg_generations = ws.agg_generations;
			metrics_hist_observe(&ig->st.commit_seconds, (double)(t_done - t_write) / 1e9);
			metrics_hist_observe(&ig->st.commit_events, (double)(stored + dup));
		}
		struct ingest_batch *moved = unpark(ig);
		struct ingest_waiter *woken = take_waiters(ig, false);
		pthread_mutex_unlock(&ig->mu);

		wake_waiters(woken, false);
		if (ig->o.on_commit)
			ig->o.on_commit(ig->o.on_commit_ctx, list);
		if (ig->o.overflow && ig->o.store)
			overflow_watch_commit(ig->o.overflow, ig->o.store, list);

		finish_batches(moved, list, true);
		/* the answers are out: now, between transactions, let the WAL start over if needed —
		 * early when nothing is queued (no batch waits for it), late otherwise */
		pthread_mutex_lock(&ig->mu);
		bool queue_empty = !ig->head && !ig->parked_head;
		pthread_mutex_unlock(&ig->mu);
		if (ig->o.store)
			store_wal_catch_up(ig->o.store, queue_empty ? STORE_CKPT_CATCH_UP_IDLE_PAGES
								    : STORE_CKPT_CATCH_UP_BUSY_PAGES);
		pthread_mutex_lock(&ig->mu);
	}
	run_jobs(ig); /* answer whatever was asked before the stop */
	struct ingest_waiter *gone = take_waiters(ig, true);
	ig->exited = true; /* from now on ingest_submit refuses */
	pthread_mutex_unlock(&ig->mu);
	wake_waiters(gone, true);
	return NULL;
}

int ingest_start(struct ingest **out, const struct ingest_opts *o)
{
	struct ingest *ig = calloc(1, sizeof(*ig));
	if (!ig)
		return -1;
	ig->o = *o;
	errq_condlog_init(&ig->log_write, "store write failed", ERRQ_LOG_ERROR);
	errq_condlog_init(&ig->log_agg, "writing group counts failed", ERRQ_LOG_WARN);
	errq_condlog_init(&ig->log_maint, "upkeep failed", ERRQ_LOG_WARN);
	metrics_hist_init(&ig->st.commit_seconds, commit_seconds_bounds,
			  sizeof(commit_seconds_bounds) / sizeof(commit_seconds_bounds[0]));
	metrics_hist_init(&ig->st.commit_events, commit_events_bounds,
			  sizeof(commit_events_bounds) / sizeof(commit_events_bounds[0]));
	atomic_store(&ig->turn_ns, errq_mono_ns());
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines below are errq_mono_ns() */
	pthread_mutex_init(&ig->mu, NULL);
	pthread_cond_init(&ig->wake, &ca);
	pthread_cond_init(&ig->idle, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&ig->thread, NULL, writer_main, ig)) {
		pthread_mutex_destroy(&ig->mu);
		pthread_cond_destroy(&ig->wake);
		pthread_cond_destroy(&ig->idle);
		free(ig);
		return -1;
	}
	*out = ig;
	return 0;
}

bool ingest_wait_idle(struct ingest *ig, uint64_t timeout_ns)
{
	uint64_t deadline = errq_mono_ns() + timeout_ns;
	struct timespec ts = {(time_t)(deadline / ERRQ_NS_PER_SEC), (long)(deadline % ERRQ_NS_PER_SEC)};
	bool idle;
	pthread_mutex_lock(&ig->mu);
#define IDLE() (!ig->head && !ig->parked_head && !ig->writing && !ig->waiters && !ig->n_woken)
	while (!(idle = IDLE()))
		if (pthread_cond_timedwait(&ig->idle, &ig->mu, &ts))
			break;
	idle = IDLE();
#undef IDLE
	pthread_mutex_unlock(&ig->mu);
	return idle;
}

void ingest_stop(struct ingest *ig, uint64_t timeout_ns)
{
	if (!ig || ig->joined)
		return;
	pthread_mutex_lock(&ig->mu);
	ig->stopping = true;
	ig->stop_deadline = errq_mono_ns() + timeout_ns;
	pthread_cond_signal(&ig->wake);
	pthread_mutex_unlock(&ig->mu);
	pthread_join(ig->thread, NULL);
	ig->joined = true;
}

void ingest_free(struct ingest *ig)
{
	if (!ig)
		return;
	ingest_stop(ig, 0);
	pthread_mutex_destroy(&ig->mu);
	pthread_cond_destroy(&ig->wake);
	pthread_cond_destroy(&ig->idle);
	free(ig);
}

void ingest_get_stats(struct ingest *ig, struct ingest_stats *st)
{
	pthread_mutex_lock(&ig->mu);
	*st = ig->st;
	st->queued_batches = ig->n_queued;
	st->queued_bytes = ig->queued_bytes;
	st->decoded_bytes = ig->queued_bytes + ig->parked_bytes + ig->reserved_bytes;
	st->parked = ig->n_parked + ig->n_waiters; /* streams not read for want of room */
	pthread_mutex_unlock(&ig->mu);
}

void ingest_get_health(struct ingest *ig, struct ingest_health *h)
{
	pthread_mutex_lock(&ig->mu);
	*h = ig->health;
	pthread_mutex_unlock(&ig->mu);
}

uint64_t ingest_last_turn(void *ctx)
{
	struct ingest *ig = ctx;
	return atomic_load(&ig->turn_ns);
}

bool ingest_on_writer(struct ingest *ig)
{
	return atomic_load(&ig->writer_set) && pthread_equal(pthread_self(), ig->writer);
}
