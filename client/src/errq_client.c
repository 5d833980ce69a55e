/* errq_client.c: the client object: create, report, flush, stats, close; fork safety.
 *
 * Threading protocol (the sender side is in errq_sender.c, outcomes in errq_outcome.c, the
 * disk spool in errq_spool.c)
 * ----------------------------------------------------------------------------------------
 * Threads: any number of application threads call errq_report(), errq_report_failure(),
 * errq_record_outcome(), errq_client_flush() and errq_client_stats() concurrently; exactly
 * one thread calls errq_client_close(), last.  One background thread per client (the
 * sender) runs errq__sender_main() from errq_client_new() until errq_client_close(); it
 * alone touches gRPC and the disk.
 *
 * Ownership:
 *  - c->cfg and the sz_* sizes are written before the sender starts and never after: read
 *    freely by every thread without the lock.
 *  - c->mu guards everything in the "guarded by mu" block of struct errq_client: the report
 *    queue (q_*), the accounting (held_*, next_ordinal, sender_low), the id generator, the
 *    flags (closing, stop, sender_waiting, connected), flush bookkeeping, o_windows,
 *    spool_lockfd and every counter in c->st.  Nothing under mu ever blocks: no
 *    allocation, no gRPC call, no I/O.
 *  - c->omu guards the outcome window (errq_outcome.c).  Lock order: reg_mu, mu, omu.
 *  - c->snd (channel, completion queue, stream, pending events, batches, spool, spare
 *    outcome table) belongs to the sender thread alone from errq_client_new() until it
 *    exits; errq_client_close() reads it only after joining the thread.
 *  - An event belongs to the caller until errq_report().  errq_report() encodes it (outside
 *    the lock, on the caller's thread, where it is in cache) into one errq_qev allocation,
 *    frees the builder, and puts the errq_qev on the queue under mu: from then on it belongs
 *    to the client.  The sender moves the whole queue to its pending list under mu (O(1)),
 *    copies encoded events into batches outside the lock and frees them; a batch is freed
 *    when the collector answers its seq, or when it has been written to the spool.
 *
 * Accounting: held_count/held_bytes count every accepted event until it is answered,
 * spooled or dropped, wherever it is (queue, pending, batch), so the capacity and byte
 * budget bound all the memory the client keeps for events, including what is in flight.
 * Spool files being replayed are bounded apart (ERRQ__SPOOL_REPLAY_*).
 *
 * Flush: events get consecutive ordinals under mu.  The lowest unresolved ordinal is
 * min(queue head, sender_low, next_ordinal); the sender keeps sender_low <= the lowest
 * ordinal it holds and raises it only under mu, when events resolve, then broadcasts
 * done_cv.  errq_client_flush() waits on done_cv until that minimum passes the ordinal it
 * saw on entry, so it waits exactly for the events reported before it.
 *
 * Wake-ups: the sender sleeps on wake_cv only when it has nothing to poll; errq_report()
 * signals it (after unlocking mu) only when it is asleep and the queue just became non-empty
 * while the sender had nothing pending (sender_lingers false: with events pending it has
 * its own timer), or the queue reached a full batch; so a report costs no system call in
 * the common case.  mu is an adaptive mutex: a contended report spins briefly.  errq_record_outcome()
 * signals it when a window opens.  While batches are in flight the sender polls its
 * completion queue with short deadlines instead.
 *
 * Fork: gRPC 1.51 cannot be used in a child after fork() (its threads are gone), and the
 * child must never touch the parent's channel, call or thread.  Every live client is on a
 * process-wide list (reg_mu).  pthread_atfork handlers (registered once): prepare takes
 * reg_mu and every client's mu and omu, so the fork happens while no queue, counter or
 * outcome table is half-updated; parent releases them; child releases them too, then marks
 * every client forked, reseeds its id generator (parent and child must never make the same
 * event ids: they share the generator's state at the fork), closes its copy of the spool's
 * lock file (the parent keeps the lock), and remembers that gRPC is unusable in this
 * process when a client was alive, or when gRPC was still initialized at the fork.  That
 * second case: gRPC finishes a destroyed channel on its own threads, and the channel holds
 * a grpc_init() reference, so the last errq_client_close() can return while gRPC still
 * counts itself initialized; a child forked then inherits a gRPC that believes it runs and
 * has none of its threads (its new client would queue and never send).  So prepare, when
 * no client is alive but one used gRPC, first waits (at most ERRQ__FORK_GRPC_WAIT_MS) for
 * gRPC to shut down, and the child is tainted if it did not (the host holds gRPC itself).  A forked copy is inert: reports and outcomes are
 * dropped and counted (ERRQ_EFORKED), flush returns at once; its close frees only what
 * mu/omu guard (queue, outcome window) and the options, never c->snd (the sender may have
 * been in the middle of changing it), gRPC objects or condition variables, and joins no
 * thread; the struct is parked on a list, reachable, so that what it holds is not a leak.
 * errq_client_new() in such a child makes an inert client.
 * The check in errq_report() reads c->forked (one load: getpid() is a system call, ~150 ns);
 * flush, stats and close also compare getpid() with the creator's pid, which catches a
 * child made without the atfork handlers (a raw clone()): there close frees nothing.
 *
 * Spill waits: errq_report() at the queue's limit, when the spool can take the overflow
 * (spill_room, published by the sender under mu; or the spool not read yet), waits on done_cv
 * (mu released while waiting) for at most cfg.spill_wait_ms, counted in spill_waiters (and
 * spill_requests, which keeps the sender from sleeping until it has looked) so
 * that the sender spills at once (errq_sender.c) and broadcasts done_cv as events resolve or
 * the spool's state changes.  A waiting report holds only its own encoded event.
 *
 * Shutdown (errq_client_close): (1) under mu set closing (and under omu o_closing): reports
 * and outcomes now fail with ERRQ_ECLOSED; (2) flush for up to the timeout: the events, the
 * last outcome window and the spool's files (until they are answered, or the circuit opens:
 * spool_undelivered_locked); (3) under mu set
 * stop and signal wake_cv; (4) the sender cancels its call, drains its completion queue
 * until every operation has completed, unrefs the call, destroys the channel, shuts down and
 * drains the completion queue, cuts the last outcome window, writes what is unanswered to
 * the spool if there is one, and drops (counting) the rest; (5) the closing thread joins it,
 * unregisters the client, destroys the locks and condition variables, frees the options and
 * the client, and releases gRPC with grpc_shutdown().
 */
#include "client_int.h"

#include <errno.h>
#include <grpc/grpc_security.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

_Static_assert(sizeof(errq_stats_t) == 64 * sizeof(uint64_t), "errq_stats_t keeps its size");

/* ---- the process's clients, for the fork handlers */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static errq_client_t *reg_head; /* guarded by reg_mu */
static unsigned reg_grpc;       /* clients that use gRPC in this process; guarded by reg_mu */
static bool reg_tainted;        /* a child of a process whose clients used gRPC; reg_mu */
static bool reg_used_grpc;      /* a client of this process has used gRPC; reg_mu */
static bool fork_grpc_live;     /* gRPC was initialized at the fork (prepare sets it) */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
/* Forked copies closed in this process: kept, never freed, because what their sender held
 * (c->snd) may have been half-updated at the fork; on this list it stays reachable instead
 * of leaking.  Guarded by reg_mu. */
static errq_client_t *parked;

static void atfork_prepare(void)
{
	/* before any lock is taken: gRPC's own threads may need them to finish the teardown */
	pthread_mutex_lock(&reg_mu);
	bool wait = reg_used_grpc && reg_grpc == 0;
	pthread_mutex_unlock(&reg_mu);
	fork_grpc_live = false;
	if (wait) {
		for (unsigned ms = 0; grpc_is_initialized() && ms < ERRQ__FORK_GRPC_WAIT_MS; ms++)
			usleep(1000);
		fork_grpc_live = grpc_is_initialized() != 0;
	}
	pthread_mutex_lock(&reg_mu);
	for (errq_client_t *c = reg_head; c; c = c->reg_next) {
		pthread_mutex_lock(&c->mu);
		pthread_mutex_lock(&c->omu);
	}
}

static void atfork_parent(void)
{
	for (errq_client_t *c = reg_head; c; c = c->reg_next) {
		pthread_mutex_unlock(&c->omu);
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_unlock(&reg_mu);
}

/* In the child, the only thread, holding every lock prepare took. */
static void atfork_child(void)
{
	for (errq_client_t *c = reg_head; c; c = c->reg_next) {
		c->forked = true;
		errq_idgen_reseed(&c->idgen);
		if (c->spool_lockfd >= 0) { /* the parent's flock stays with the parent */
			close(c->spool_lockfd);
			c->spool_lockfd = -1;
		}
		pthread_mutex_unlock(&c->omu);
		pthread_mutex_unlock(&c->mu);
	}
	if (reg_grpc || fork_grpc_live)
		reg_tainted = true;
	reg_grpc = 0;
	pthread_mutex_unlock(&reg_mu);
}

static void atfork_register(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static void reg_add(errq_client_t *c)
{
	pthread_mutex_lock(&reg_mu);
	c->reg_prev = NULL;
	c->reg_next = reg_head;
	if (reg_head)
		reg_head->reg_prev = c;
	reg_head = c;
	pthread_mutex_unlock(&reg_mu);
}

static void reg_remove(errq_client_t *c)
{
	pthread_mutex_lock(&reg_mu);
	if (c->reg_prev)
		c->reg_prev->reg_next = c->reg_next;
	else if (reg_head == c)
		reg_head = c->reg_next;
	if (c->reg_next)
		c->reg_next->reg_prev = c->reg_prev;
	c->reg_prev = c->reg_next = NULL;
	pthread_mutex_unlock(&reg_mu);
}

/* A forked copy, or a client of a child that cannot use gRPC. */
static bool is_forked(const errq_client_t *c)
{
	return c->forked || getpid() != c->pid;
}

/* The channel to the collector: errq's channel arguments (no retries: resends are ours; no
 * BDP probing: bounded windows; subchannels of its own, see errq_sender.c stream_open) over
 * plaintext or TLS.  NULL when gRPC refuses. */
grpc_channel *errq__channel_new(const struct errq_options *o)
{
	/* gRPC's own reconnect backoff (1 s, x1.6, up to 120 s by default) follows the client's:
	 * the client opens a fresh channel for each attempt after a failure (errq_sender.c,
	 * stream_open), so this only paces gRPC's background reconnects of the current one */
	const struct errq_chan_arg extra[] = {
	    {GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, (int)o->backoff_initial_ms},
	    /* (not MIN_RECONNECT_BACKOFF: that is the connect timeout) */
	    {GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, (int)o->backoff_max_ms},
	    {GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1},
	};
	grpc_channel_credentials *creds;
	if (o->tls) {
		grpc_ssl_pem_key_cert_pair pair = {o->tls_key_pem, o->tls_cert_pem};
		creds = grpc_ssl_credentials_create(o->tls_ca_pem, o->tls_cert_pem ? &pair : NULL,
						    NULL, NULL);
	} else {
		creds = grpc_insecure_credentials_create();
	}
	if (!creds)
		return NULL;
	grpc_channel *ch = errq_channel_new_ex(o->collector, creds, extra, sizeof(extra) / sizeof(extra[0]));
	grpc_channel_credentials_release(creds);
	return ch;
}

/* Frees a fully constructed client whose sender has exited (and destroyed the channel). */
static void client_free(errq_client_t *c)
{
	reg_remove(c);
	if (c->snd.ch)
		grpc_channel_destroy(c->snd.ch);
	if (c->grpc_inited) {
		grpc_shutdown();
		pthread_mutex_lock(&reg_mu);
		if (reg_grpc) /* 0 in a child, where gRPC was never ours */
			reg_grpc--;
		pthread_mutex_unlock(&reg_mu);
	}
	errq__outcomes_free(c);
	pthread_mutex_destroy(&c->omu);
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
	bool have_mu = false, have_omu = false, have_wake = false, have_done = false;
	bool registered = false, counted = false;

	pthread_once(&atfork_once, atfork_register);
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
	c->spool_lockfd = -1;
	c->snd.spool.dirfd = c->snd.spool.lockfd = -1;
	errq_idgen_init(&c->idgen);
	errq_idgen_init(&c->snd.rng);
	if (errq__outcomes_init(c) != ERRQ_OK)
		goto fail;

	/* adaptive: critical sections are a few dozen instructions, so a contended report spins
	 * briefly instead of sleeping in the kernel (the tail latency of errq_report) */
	pthread_mutexattr_t ma;
	if (pthread_mutexattr_init(&ma))
		goto fail;
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	int mrc = pthread_mutex_init(&c->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	if (mrc)
		goto fail;
	have_mu = true;
	if (pthread_mutex_init(&c->omu, NULL))
		goto fail;
	have_omu = true;
	if (pthread_condattr_init(&ca))
		goto fail;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* flush timeouts ignore clock steps */
	have_wake = pthread_cond_init(&c->wake_cv, &ca) == 0;
	have_done = have_wake && pthread_cond_init(&c->done_cv, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!have_done)
		goto fail;

	/* count this client as a gRPC user before grpc_init(), so that a fork from here on
	 * leaves an inert child; or find that this process is such a child */
	pthread_mutex_lock(&reg_mu);
	c->inert = reg_tainted;
	if (!c->inert) {
		reg_grpc++;
		reg_used_grpc = true;
	}
	pthread_mutex_unlock(&reg_mu);
	reg_add(c);
	registered = true;
	if (c->inert) {
		c->forked = true; /* drops with ERRQ_EFORKED; no thread, no gRPC */
		return c;
	}
	counted = true;

	grpc_init();
	c->grpc_inited = true;
	c->snd.ch = errq__channel_new(&c->cfg);
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
		if (registered)
			reg_remove(c);
		if (c->snd.ch)
			grpc_channel_destroy(c->snd.ch);
		if (c->grpc_inited)
			grpc_shutdown();
		if (counted) {
			pthread_mutex_lock(&reg_mu);
			if (reg_grpc)
				reg_grpc--;
			pthread_mutex_unlock(&reg_mu);
		}
		if (have_done)
			pthread_cond_destroy(&c->done_cv);
		if (have_wake)
			pthread_cond_destroy(&c->wake_cv);
		if (have_omu)
			pthread_mutex_destroy(&c->omu);
		if (have_mu)
			pthread_mutex_destroy(&c->mu);
		errq__outcomes_free(c);
		errq__options_release(&c->cfg);
		free(c);
	}
	return NULL;
}

/* True when q does not fit in the capacity or the byte budget.  mu held. */
static bool over_limit_locked(const errq_client_t *c, const struct errq_qev *q)
{
	return c->held_count >= c->cfg.queue_capacity ||
	       c->held_bytes + q->cost > c->cfg.queue_bytes;
}

/* True when a report at the queue's limit may wait for the sender to spill to the spool: it
 * has free room, or the sender has not opened it yet (the first thing it does).  mu held. */
static bool spill_possible_locked(const errq_client_t *c)
{
	return c->cfg.spool_dir && c->cfg.spill_wait_ms && !c->closing &&
	       (!c->spool_scanned || c->spill_room);
}

/* At the queue's limit with a spool that can take the overflow: waits (mu released while
 * waiting, no other lock held) until the sender has moved enough to disk for q to fit, at
 * most cfg.spill_wait_ms, or until the spool can take no more.  mu held. */
static void wait_for_spill_locked(errq_client_t *c, const struct errq_qev *q)
{
	struct timespec dl;
	if (!over_limit_locked(c, q) || !spill_possible_locked(c))
		return;
	c->st.spill_waits++;
	errq__deadline_after_ms(&dl, (long)c->cfg.spill_wait_ms);
	while (over_limit_locked(c, q) && spill_possible_locked(c)) {
		c->spill_waiters++;
		c->spill_requests++;
		pthread_cond_signal(&c->wake_cv); /* the sender may sleep, or linger */
		int w = pthread_cond_timedwait(&c->done_cv, &c->mu, &dl);
		c->spill_waiters--;
		if (w == ETIMEDOUT)
			break;
	}
}

ERRQ_EXPORT int errq_report(errq_client_t *c, errq_event_t *ev)
{
	int rc = ERRQ_OK;
	uint64_t now_ns = 0;
	bool wake = false, truncated = false;
	struct errq_qev *q = NULL;
	size_t id_off = 0;

	if (!c) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	if (c->forked) { /* the parent's client: its queue has no sender here */
		pthread_mutex_lock(&c->mu);
		c->st.dropped_forked++;
		pthread_mutex_unlock(&c->mu);
		rc = ERRQ_EFORKED;
		goto out;
	}
	/* Before the lock: check what needs no lock, and encode the event here, where its
	 * strings are still in this thread's cache; the builder is freed at once. */
	if (!ev || (!ev->service && !c->cfg.service)) {
		rc = ERRQ_EINVAL;
	} else {
		now_ns = errq_now_ns();
		if (!ev->time_ns)
			ev->time_ns = now_ns;
		errq__event_measure(c, ev); /* after the time: it is part of the encoding */
		if (ev->wire > ERRQ__MAX_EVENT_BYTES || ev->cost > c->cfg.queue_bytes) {
			rc = ERRQ_ETOOBIG;
		} else if (!(q = malloc(sizeof(*q) + ev->wire)) ||
			   !errq__event_encode(q->bytes, &c->cfg, ev)) {
			rc = ERRQ_ENOMEM;
		} else {
			q->enq_ns = errq_mono_ns();
			q->wire = ev->wire;
			q->cost = ev->cost;
			id_off = errq__event_id_offset(ev);
			truncated = ev->truncated;
		}
	}
	errq_event_free(ev);
	ev = NULL;

	pthread_mutex_lock(&c->mu);
	if (rc == ERRQ_OK)
		wait_for_spill_locked(c, q);
	if (rc == ERRQ_EINVAL) {
		c->st.dropped_invalid++;
	} else if (rc == ERRQ_ETOOBIG) {
		c->st.dropped_too_big++;
	} else if (rc == ERRQ_ENOMEM) {
		c->st.dropped_nomem++;
	} else if (c->closing) {
		rc = ERRQ_ECLOSED;
		c->st.dropped_closed++;
	} else if (over_limit_locked(c, q)) {
		rc = ERRQ_EQUEUEFULL;
		c->st.dropped_queue_full++;
	} else {
		errq_idgen_next(&c->idgen, now_ns / ERRQ_NS_PER_MS, q->bytes + id_off);
		q->ordinal = c->next_ordinal++;
		q->next = NULL;
		if (c->q_tail)
			c->q_tail->next = q;
		else
			c->q_head = q;
		c->q_tail = q;
		c->q_count++;
		c->q_wire += q->wire;
		c->held_count++;
		c->held_bytes += q->cost;
		c->st.queued++;
		if (truncated)
			c->st.truncated++;
		/* wake the sender only when it sleeps with nothing to do, or a batch is full */
		wake = c->sender_waiting &&
		       ((c->q_count == 1 && !c->sender_lingers) ||
			c->q_count == c->cfg.max_batch_events ||
			(c->sender_spools && (c->held_count * 2 >= c->cfg.queue_capacity ||
					      c->held_bytes * 2 >= c->cfg.queue_bytes)));
		q = NULL; /* the client's now */
	}
	pthread_mutex_unlock(&c->mu);
	if (wake) /* after unlocking: the woken sender does not wait for our lock */
		pthread_cond_signal(&c->wake_cv);
out:
	errq_event_free(ev);
	free(q);
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

/* Closing: the spool still holds files that this client can deliver now: it has not been
 * read yet, or it has files and the circuit is not open (the collector answers, or is being
 * tried).  With the circuit open the files stay for a later client.  mu held. */
static bool spool_undelivered_locked(const errq_client_t *c)
{
	if (!c->cfg.spool_dir)
		return false;
	if (!c->spool_scanned)
		return true;
	return c->st.spool_files > 0 && c->st.circuit_state != ERRQ__CIRCUIT_OPEN;
}

/* Waits until the events reported before the call are resolved and, when closing, until
 * the last outcome window is cut and its batches are resolved and the spool is delivered
 * (spool_undelivered_locked); dl NULL: no limit. */
static int flush_wait(errq_client_t *c, const struct timespec *dl, bool closing)
{
	int rc = ERRQ_OK;
	pthread_mutex_lock(&c->mu);
	uint64_t target = c->next_ordinal;
	c->flush_waiters++;
	c->flush_requests++; /* the sender stops lingering */
	pthread_cond_signal(&c->wake_cv);
#define FLUSH_PENDING()                                                                      \
	(low_watermark(c) < target ||                                                        \
	 (closing && (!c->o_final_cut || c->o_unresolved || spool_undelivered_locked(c))))
	while (FLUSH_PENDING()) {
		if (!dl) {
			pthread_cond_wait(&c->done_cv, &c->mu);
		} else if (pthread_cond_timedwait(&c->done_cv, &c->mu, dl) == ETIMEDOUT) {
			if (FLUSH_PENDING())
				rc = ERRQ_ETIMEDOUT;
			break;
		}
	}
#undef FLUSH_PENDING
	c->flush_waiters--;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

ERRQ_EXPORT int errq_client_flush(errq_client_t *c, int timeout_ms)
{
	struct timespec dl;
	if (!c)
		return ERRQ_EINVAL;
	if (is_forked(c) || c->inert) /* no sender here: nothing would ever resolve */
		return ERRQ_EFORKED;
	if (timeout_ms >= 0)
		errq__deadline_after_ms(&dl, timeout_ms);
	return flush_wait(c, timeout_ms >= 0 ? &dl : NULL, false);
}

ERRQ_EXPORT int errq_client_stats(errq_client_t *c, errq_stats_t *stats)
{
	if (!c || !stats)
		return ERRQ_EINVAL;
	if (getpid() != c->pid && !c->forked)
		return ERRQ_EFORKED; /* a child made without the atfork handlers: no lock is safe */
	pthread_mutex_lock(&c->mu);
	pthread_mutex_lock(&c->omu);
	*stats = c->st;
	stats->pending = c->held_count;
	stats->pending_bytes = c->held_bytes;
	stats->connected = c->connected;
	stats->outcomes_recorded = c->o_recorded;
	stats->outcomes_dropped += c->o_dropped;
	pthread_mutex_unlock(&c->omu);
	pthread_mutex_unlock(&c->mu);
	return ERRQ_OK;
}

void errq__client_begin_close(errq_client_t *c)
{
	pthread_mutex_lock(&c->omu);
	c->o_closing = true; /* first: the sender cuts the last window once it sees closing */
	pthread_mutex_unlock(&c->omu);
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	c->flush_requests++; /* nothing lingers once closing */
	pthread_cond_signal(&c->wake_cv);
	if (c->spill_waiters) /* they refuse now (ECLOSED) */
		pthread_cond_broadcast(&c->done_cv);
	pthread_mutex_unlock(&c->mu);
}

/* Close of a forked copy (or of an inert client): frees what mu and omu guard and the
 * options; never c->snd, gRPC objects or condition variables (a parent thread may have been
 * in the middle of them at the fork); joins nothing.  The copy itself is parked (see
 * `parked`); an inert client, made in this process, is freed.  Returns the events in the
 * queue. */
static size_t close_forked(errq_client_t *c, errq_stats_t *final)
{
	size_t lost = 0;
	if (!c->forked) /* forked without the atfork handlers: no lock can be trusted */
		return 0;
	reg_remove(c);
	pthread_mutex_lock(&c->mu);
	struct errq_qev *q = c->q_head;
	lost = c->q_count;
	c->q_head = c->q_tail = NULL;
	c->q_count = 0;
	c->st.dropped_closed += lost;
	pthread_mutex_unlock(&c->mu);
	while (q) {
		struct errq_qev *next = q->next;
		free(q);
		q = next;
	}
	if (final)
		errq_client_stats(c, final);
	pthread_mutex_lock(&c->omu);
	errq__outcomes_free_live(c);
	pthread_mutex_unlock(&c->omu);
	errq__options_release(&c->cfg);
	if (!c->inert) {
		pthread_mutex_lock(&reg_mu);
		c->reg_next = parked;
		parked = c;
		pthread_mutex_unlock(&reg_mu);
		return lost;
	}
	errq__outcomes_free(c); /* made in this process: everything in it is ours */
	pthread_mutex_destroy(&c->omu);
	pthread_mutex_destroy(&c->mu);
	free(c);
	return lost;
}

ERRQ_EXPORT size_t errq_client_close_stats(errq_client_t *c, int timeout_ms, errq_stats_t *final)
{
	size_t lost;
	if (!c)
		return 0;
	if (is_forked(c))
		return close_forked(c, final);
	errq__client_begin_close(c);
	if (timeout_ms != 0) { /* events and the last outcome counts */
		struct timespec dl;
		if (timeout_ms > 0)
			errq__deadline_after_ms(&dl, timeout_ms);
		flush_wait(c, timeout_ms > 0 ? &dl : NULL, true);
	}
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->wake_cv);
	pthread_mutex_unlock(&c->mu);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	/* the sender spooled or dropped everything it held and the queue; snd.ch is gone */
	lost = c->lost_at_close;
	if (final)
		errq_client_stats(c, final);
	client_free(c);
	return lost;
}

ERRQ_EXPORT size_t errq_client_close(errq_client_t *c, int timeout_ms)
{
	return errq_client_close_stats(c, timeout_ms, NULL);
}
