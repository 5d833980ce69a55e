/* errq_client.c: the client object: create, report, flush, stats, close.
 *
 * Threading protocol (the sender side is in errq_sender.c)
 * ---------------------------------------------------------
 * Threads: any number of application threads call errq_report(), errq_report_failure(),
 * errq_client_flush() and errq_client_stats() concurrently; exactly one thread calls
 * errq_client_close(), last.  One background thread per client (the sender) runs
 * errq__sender_main() from errq_client_new() until errq_client_close().
 *
 * Ownership:
 *  - c->cfg and the sz_* sizes are written before the sender starts and never after: read
 *    freely by every thread without the lock.
 *  - c->mu guards everything in the "guarded by mu" block of struct errq_client: the report
 *    queue (q_*), the accounting (held_*, next_ordinal, sender_low), the id generator, the
 *    flags (closing, stop, sender_waiting, connected), flush bookkeeping and every counter
 *    in c->st.  Nothing under mu ever blocks: no allocation, no gRPC call, no I/O.
 *  - c->snd (channel, completion queue, stream, pending events, batches) belongs to the
 *    sender thread alone from errq_client_new() until it exits; errq_client_close() reads
 *    it only after joining the thread.
 *  - An event belongs to the caller until errq_report(); inside errq_report() it is put on
 *    the queue under mu and from then on belongs to the client.  The sender moves the whole
 *    queue to its pending list under mu (O(1)), encodes events into batches outside the lock
 *    and frees them; a batch is freed when the collector answers its seq.
 *
 * Accounting: held_count/held_bytes count every accepted event until it is answered or
 * dropped, wherever it is (queue, pending, batch), so the capacity and byte budget bound all
 * the memory the client keeps for events, including what is in flight.
 *
 * Flush: events get consecutive ordinals under mu.  The lowest unresolved ordinal is
 * min(queue head, sender_low, next_ordinal); the sender keeps sender_low <= the lowest
 * ordinal it holds and raises it only under mu, when events resolve, then broadcasts
 * done_cv.  errq_client_flush() waits on done_cv until that minimum passes the ordinal it
 * saw on entry, so it waits exactly for the events reported before it.
 *
 * Wake-ups: the sender sleeps on wake_cv only when it has nothing to poll; errq_report()
 * signals it only when it is asleep and the queue just became non-empty or reached a full
 * batch, so a report costs no system call in the common case.  While batches are in
 * flight the sender polls its completion queue with short deadlines instead.
 *
 * Shutdown (errq_client_close): (1) under mu set closing: reports now fail with ERRQ_ECLOSED;
 * (2) flush for up to the timeout; (3) under mu set stop and signal wake_cv; (4) the sender
 * cancels its call, drains its completion queue until every operation has completed,
 * unrefs the call, destroys the channel, shuts down and drains the completion queue, and
 * drops (counting) every event it still holds and every event left in the queue; (5) the
 * closing thread joins it, destroys the lock and condition variables, frees the options and
 * the client, and releases gRPC with grpc_shutdown().
 */
#include "client_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

/* Frees a fully constructed client whose sender has exited (and destroyed the channel). */
static void client_free(errq_client_t *c)
{
	if (c->snd.ch)
		grpc_channel_destroy(c->snd.ch);
	if (c->grpc_inited)
		grpc_shutdown();
	pthread_cond_destroy(&c->done_cv);
	pthread_cond_destroy(&c->wake_cv);
	pthread_mutex_destroy(&c->mu);
	errq__options_release(&c->cfg);
	free(c);
}

ERRQ_EXPORT errq_client_t *errq_client_new(errq_options_t *opts)
{
	errq_client_t *c = NULL;
	pthread_condattr_t ca;
	sigset_t all, old;
	bool have_mu = false, have_wake = false, have_done = false;

	if (!opts)
		opts = errq_options_new();
	if (!opts)
		goto fail;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->cfg = *opts; /* the strings move into the client */
	free(opts);
	opts = NULL;
	if (!c->cfg.host_set) {
		char hn[ERRQ__MAX_HOST_LEN + 1];
		if (gethostname(hn, sizeof(hn)) == 0) {
			hn[sizeof(hn) - 1] = '\0';
			if (hn[0] && errq_utf8_valid(hn, strlen(hn), NULL) && !(c->cfg.host = strdup(hn)))
				goto fail;
		}
	}
	c->sz_service = errq__str_field_size(c->cfg.service);
	c->sz_environment = errq__str_field_size(c->cfg.environment);
	c->sz_release = errq__str_field_size(c->cfg.release);
	c->sz_host = errq__str_field_size(c->cfg.host);
	c->linger_ns = (uint64_t)c->cfg.linger_ms * ERRQ_NS_PER_MS;
	c->pid = getpid();
	c->sender_low = UINT64_MAX;
	errq_idgen_init(&c->idgen);
	errq_idgen_init(&c->snd.rng);

	if (pthread_mutex_init(&c->mu, NULL))
		goto fail;
	have_mu = true;
	if (pthread_condattr_init(&ca))
		goto fail;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* flush timeouts ignore clock steps */
	have_wake = pthread_cond_init(&c->wake_cv, &ca) == 0;
	have_done = have_wake && pthread_cond_init(&c->done_cv, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!have_done)
		goto fail;

	grpc_init();
	c->grpc_inited = true;
	c->snd.ch = errq_channel_new(c->cfg.collector);
	if (!c->snd.ch)
		goto fail;

	/* the sender must never run the host's signal handlers: start it with all blocked */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int prc = pthread_create(&c->thread, NULL, errq__sender_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (prc)
		goto fail;
	c->thread_started = true;
	return c;

fail:
	errq_options_free(opts);
	if (c) {
		if (c->snd.ch)
			grpc_channel_destroy(c->snd.ch);
		if (c->grpc_inited)
			grpc_shutdown();
		if (have_done)
			pthread_cond_destroy(&c->done_cv);
		if (have_wake)
			pthread_cond_destroy(&c->wake_cv);
		if (have_mu)
			pthread_mutex_destroy(&c->mu);
		errq__options_release(&c->cfg);
		free(c);
	}
	return NULL;
}

ERRQ_EXPORT int errq_report(errq_client_t *c, errq_event_t *ev)
{
	int rc = ERRQ_OK;
	uint64_t now_ns = 0, mono_ns;

	if (!c) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	/* Fork safety (issue 6): compare getpid() with c->pid here; in a child, drop with a
	 * "forked" counter and never touch c->snd (the parent's gRPC state). */
	if (ev) {
		errq__event_measure(c, ev);
		now_ns = errq_now_ns();
		mono_ns = errq_mono_ns();
		if (!ev->time_ns)
			ev->time_ns = now_ns;
		ev->enq_ns = mono_ns;
	}
	pthread_mutex_lock(&c->mu);
	if (!ev || (!ev->service && !c->cfg.service)) {
		rc = ERRQ_EINVAL;
		c->st.dropped_invalid++;
	} else if (c->closing) {
		rc = ERRQ_ECLOSED;
		c->st.dropped_closed++;
	} else if (ev->wire > ERRQ__MAX_EVENT_BYTES || ev->cost > c->cfg.queue_bytes) {
		rc = ERRQ_ETOOBIG;
		c->st.dropped_too_big++;
	} else if (c->held_count >= c->cfg.queue_capacity ||
		   c->held_bytes + ev->cost > c->cfg.queue_bytes) {
		rc = ERRQ_EQUEUEFULL;
		c->st.dropped_queue_full++;
	} else {
		errq_idgen_next(&c->idgen, now_ns / ERRQ_NS_PER_MS, ev->id);
		ev->ordinal = c->next_ordinal++;
		ev->next = NULL;
		if (c->q_tail)
			c->q_tail->next = ev;
		else
			c->q_head = ev;
		c->q_tail = ev;
		c->q_count++;
		c->q_wire += ev->wire;
		c->held_count++;
		c->held_bytes += ev->cost;
		c->st.queued++;
		if (ev->truncated)
			c->st.truncated++;
		if (c->sender_waiting && (c->q_count == 1 || c->q_count >= c->cfg.max_batch_events))
			pthread_cond_signal(&c->wake_cv);
		ev = NULL; /* the client's now */
	}
	pthread_mutex_unlock(&c->mu);
out:
	errq_event_free(ev);
	return rc;
}

ERRQ_EXPORT int errq_report_failurev(errq_client_t *c, const char *error_type, const char *code,
				     const char *fmt, va_list ap)
{
	int rc = ERRQ_OK;
	char small[256], *msg = small, *big = NULL;
	errq_event_t *ev = NULL;

	if (!c || !error_type || !*error_type || !fmt) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		small[0] = '\0';
	} else if ((size_t)n >= sizeof(small)) {
		/* one byte over the limit, so the event builder sees (and counts) the cut */
		size_t cap = (size_t)n;
		if (cap > ERRQ__MAX_MESSAGE_LEN + 1)
			cap = ERRQ__MAX_MESSAGE_LEN + 1;
		big = malloc(cap + 1);
		if (!big) {
			rc = ERRQ_ENOMEM;
			goto out;
		}
		vsnprintf(big, cap + 1, fmt, ap);
		msg = big;
	}
	ev = errq_event_new(NULL, error_type, msg);
	if (!ev || (code && (rc = errq_event_set_code(ev, code)))) {
		if (!rc)
			rc = ERRQ_ENOMEM;
		goto out;
	}
	errq_event_set_handled(ev, true);
	rc = errq_report(c, ev);
	ev = NULL;
out:
	errq_event_free(ev);
	free(big);
	return rc;
}

ERRQ_EXPORT int errq_report_failure(errq_client_t *c, const char *error_type, const char *code,
				    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = errq_report_failurev(c, error_type, code, fmt, ap);
	va_end(ap);
	return rc;
}

/* The lowest ordinal not yet answered or dropped.  Called with mu held. */
static uint64_t low_watermark(const errq_client_t *c)
{
	uint64_t low = c->next_ordinal;
	if (c->q_head && c->q_head->ordinal < low)
		low = c->q_head->ordinal;
	if (c->sender_low < low)
		low = c->sender_low;
	return low;
}

ERRQ_EXPORT int errq_client_flush(errq_client_t *c, int timeout_ms)
{
	int rc = ERRQ_OK;
	struct timespec dl;
	if (!c)
		return ERRQ_EINVAL;
	if (timeout_ms >= 0)
		errq__deadline_after_ms(&dl, timeout_ms);
	pthread_mutex_lock(&c->mu);
	uint64_t target = c->next_ordinal;
	c->flush_waiters++;
	c->flush_requests++; /* the sender stops lingering */
	pthread_cond_signal(&c->wake_cv);
	while (low_watermark(c) < target) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&c->done_cv, &c->mu);
		} else if (pthread_cond_timedwait(&c->done_cv, &c->mu, &dl) == ETIMEDOUT) {
			if (low_watermark(c) < target)
				rc = ERRQ_ETIMEDOUT;
			break;
		}
	}
	c->flush_waiters--;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

ERRQ_EXPORT int errq_client_stats(errq_client_t *c, errq_stats_t *stats)
{
	if (!c || !stats)
		return ERRQ_EINVAL;
	pthread_mutex_lock(&c->mu);
	*stats = c->st;
	stats->pending = c->held_count;
	stats->pending_bytes = c->held_bytes;
	stats->connected = c->connected;
	pthread_mutex_unlock(&c->mu);
	return ERRQ_OK;
}

void errq__client_begin_close(errq_client_t *c)
{
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	c->flush_requests++; /* nothing lingers once closing */
	pthread_cond_signal(&c->wake_cv);
	pthread_mutex_unlock(&c->mu);
}

ERRQ_EXPORT size_t errq_client_close(errq_client_t *c, int timeout_ms)
{
	size_t lost;
	if (!c)
		return 0;
	errq__client_begin_close(c);
	if (timeout_ms != 0)
		errq_client_flush(c, timeout_ms);
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->wake_cv);
	pthread_mutex_unlock(&c->mu);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	/* the sender dropped everything it held and the queue; snd.ch is gone */
	lost = c->lost_at_close;
	client_free(c);
	return lost;
}
