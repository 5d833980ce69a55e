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
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errq_log.h"
#include "errq_time.h"
#include "storage.h"

struct ingest {
	pthread_mutex_t mu;
	pthread_cond_t wake;  /* writer: work arrived or stopping */
	pthread_cond_t idle;  /* waiters: writer finished a round */
	struct ingest_batch *head, *tail;
	struct ingest_batch *parked_head, *parked_tail;
	size_t n_queued, queued_bytes, n_parked;
	bool writing, stopping;
	uint64_t stop_deadline; /* monotonic ns; abandon a failing store after it */
	struct ingest_opts o;
	struct ingest_stats st;
	pthread_t thread;
};

static bool has_room(struct ingest *ig, size_t bytes)
{
	/* an empty queue always takes one batch, however big, or a huge batch would never pass */
	return ig->n_queued == 0 ||
	       (ig->n_queued < ig->o.max_batches && ig->queued_bytes + bytes <= ig->o.max_bytes);
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

int ingest_submit(struct ingest *ig, struct ingest_batch *b)
{
	int rc;
	pthread_mutex_lock(&ig->mu);
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
		ig->st.parked_total++;
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
	while (ig->parked_head && has_room(ig, ig->parked_head->bytes)) {
		struct ingest_batch *b = ig->parked_head;
		ig->parked_head = b->next;
		if (!ig->parked_head)
			ig->parked_tail = NULL;
		ig->n_parked--;
		enqueue(ig, b);
		*mt = b;
		mt = &b->resume_next;
		*mt = NULL;
	}
	return moved;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Stores every event of the taken batches in one transaction.  Returns 0 when committed. */
static int write_batches(struct ingest *ig, struct ingest_batch *list)
{
	struct store *s = ig->o.store;
	if (store_txn_begin(s))
		return -1;
	for (struct ingest_batch *b = list; b; b = b->next) {
		for (size_t i = 0; i < b->n_events; i++) {
			struct ingest_event *ev = &b->events[i];
			Errq__V1__TaskFailure *tf = ev->tf;
			if (!tf)
				continue;
			struct store_event se = {
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
			    .extra = ev->extra_len ? b->extra + ev->extra_off : NULL,
			    .extra_len = ev->extra_len,
			};
			int r = store_txn_add_event(s, &se);
			if (r < 0) {
				store_txn_rollback(s);
				return -1;
			}
			ev->result = (int8_t)r;
		}
	}
	if (store_txn_commit(s)) {
		store_txn_rollback(s);
		return -1;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct ingest *ig = arg;
	unsigned backoff_ms = 0;
	uint64_t last_err_log = 0;
	for (;;) {
		pthread_mutex_lock(&ig->mu);
		ig->writing = false;
		pthread_cond_broadcast(&ig->idle);
		while (!ig->head && !ig->parked_head && !ig->stopping)
			pthread_cond_wait(&ig->wake, &ig->mu);
		if (!ig->head && !ig->parked_head) { /* stopping and drained */
			pthread_mutex_unlock(&ig->mu);
			break;
		}
		/* take up to the per-transaction bounds from the head of the queue */
		struct ingest_batch *list = ig->head, *last = NULL;
		size_t nb = 0, ne = 0;
		for (struct ingest_batch *b = ig->head; b; b = b->next) {
			if (nb && (nb >= INGEST_COMMIT_MAX_BATCHES || ne + b->n_events > INGEST_COMMIT_MAX_EVENTS))
				break;
			nb++;
			ne += b->n_events;
			ig->queued_bytes -= b->bytes;
			last = b;
		}
		if (last) {
			ig->head = last->next;
			if (!ig->head)
				ig->tail = NULL;
			last->next = NULL;
			ig->n_queued -= nb;
		} else {
			list = NULL;
		}
		struct ingest_batch *moved = unpark(ig);
		ig->writing = true;
		bool stopping = ig->stopping;
		uint64_t deadline = ig->stop_deadline;
		pthread_mutex_unlock(&ig->mu);

		/* batches that left the parked list: their streams may read again */
		for (struct ingest_batch *b = moved, *n; b; b = n) {
			n = b->resume_next;
			b->ops->resumed(b);
		}
		if (!list)
			continue;

		int rc = ig->o.store ? write_batches(ig, list) : 0;
		if (rc == 0) {
			backoff_ms = 0;
			uint64_t stored = 0, dup = 0;
			for (struct ingest_batch *b = list; b; b = b->next)
				for (size_t i = 0; i < b->n_events; i++)
					if (b->events[i].tf) {
						if (!ig->o.store)
							b->events[i].result = 1;
						stored += b->events[i].result == 1;
						dup += b->events[i].result == 0;
					}
			pthread_mutex_lock(&ig->mu);
			ig->st.commits++;
			ig->st.batches += nb;
			ig->st.events_stored += stored;
			ig->st.events_duplicate += dup;
			pthread_mutex_unlock(&ig->mu);
			for (struct ingest_batch *b = list, *n; b; b = n) {
				n = b->next;
				b->ops->done(b, true);
			}
			continue;
		}

		/* the store failed: nothing of these batches is acknowledged; put them back at the head
		 * and retry with backoff, unless shutdown's deadline has passed */
		uint64_t now = errq_mono_ns();
		bool abandon = stopping && now >= deadline;
		if (now - last_err_log > 5 * ERRQ_NS_PER_SEC || abandon) {
			errq_logkv(ERRQ_LOG_ERROR, abandon ? "store failing at shutdown; unacknowledged batches dropped"
							   : "store write failed; retrying",
				   "error", store_errmsg(ig->o.store), NULL);
			last_err_log = now;
		}
		pthread_mutex_lock(&ig->mu);
		ig->st.store_errors++;
		if (!abandon) {
			last->next = ig->head;
			ig->head = list;
			if (!ig->tail)
				ig->tail = last;
			ig->n_queued += nb;
			for (struct ingest_batch *b = list; b; b = b->next)
				ig->queued_bytes += b->bytes;
		}
		pthread_mutex_unlock(&ig->mu);
		if (abandon) {
			for (struct ingest_batch *b = list, *n; b; b = n) {
				n = b->next;
				b->ops->done(b, false);
			}
			continue;
		}
		backoff_ms = backoff_ms ? backoff_ms * 2 : 1;
		if (backoff_ms > INGEST_RETRY_MAX_MS)
			backoff_ms = INGEST_RETRY_MAX_MS;
		sleep_ms(backoff_ms);
	}
	return NULL;
}

int ingest_start(struct ingest **out, const struct ingest_opts *o)
{
	struct ingest *ig = calloc(1, sizeof(*ig));
	if (!ig)
		return -1;
	ig->o = *o;
	pthread_mutex_init(&ig->mu, NULL);
	pthread_cond_init(&ig->wake, NULL);
	pthread_cond_init(&ig->idle, NULL);
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
	uint64_t deadline = errq_now_ns() + timeout_ns;
	struct timespec ts = {(time_t)(deadline / ERRQ_NS_PER_SEC), (long)(deadline % ERRQ_NS_PER_SEC)};
	bool idle;
	pthread_mutex_lock(&ig->mu);
	while (!(idle = !ig->head && !ig->parked_head && !ig->writing))
		if (pthread_cond_timedwait(&ig->idle, &ig->mu, &ts))
			break;
	idle = !ig->head && !ig->parked_head && !ig->writing;
	pthread_mutex_unlock(&ig->mu);
	return idle;
}

void ingest_stop(struct ingest *ig, uint64_t timeout_ns)
{
	if (!ig)
		return;
	pthread_mutex_lock(&ig->mu);
	ig->stopping = true;
	ig->stop_deadline = errq_mono_ns() + timeout_ns;
	pthread_cond_signal(&ig->wake);
	pthread_mutex_unlock(&ig->mu);
	pthread_join(ig->thread, NULL);
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
	st->parked = ig->n_parked;
	pthread_mutex_unlock(&ig->mu);
}
