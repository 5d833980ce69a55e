/* svc_report.c: errq.v1.Collector/Report, one state machine per stream (a message's decoding
 * into a validated batch, and a committed batch's answer, are report_decode.c's: svc_report.h).
 *
 * Threads and locks:
 *  - every completion of a call (read, send, close) runs on the call's queue thread;
 *  - the ingest writer thread calls on_resumed() and on_done() for the call's batches;
 *  - c->mu guards every mutable field of a call; grpc_call_start_batch is called under it
 *    (it never runs our callbacks synchronously).  svc->mu guards the list of live calls and
 *    is taken before c->mu, never after.
 * Lifetime: c->refs counts one reference for the RECV_CLOSE_ON_SERVER op, one per read or
 * send in flight and one per batch inside the ingest pipeline; the call is freed by whoever
 * drops the last one (never from inside a locked section).
 * Flow control: at most one read is posted; the next is posted only when the last batch went
 * into the ingest queue (not parked), fewer than REPORT_MAX_UNANSWERED batches await their
 * answer, the stream's answers are within their byte bounds (services.h), and the service is
 * not draining.  Answer bytes are reserved when a batch is decoded (an upper bound of its
 * answer's size), made exact when the answer is built and released when its send completes
 * or it is dropped.  A sweeper thread (svc->sweeper) ends streams that stay over their bound
 * without taking an answer for REPORT_ANSWER_STALL_MS; it takes svc->mu then each c->mu.  Responses go out one SEND_MESSAGE at a time from
 * a per-call queue, in commit order; the final status follows the last response. */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "diskguard.h"
#include "errq_grpc.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "auth.h"
#include "health.h"
#include "ingest.h"
#include "quota.h"
#include "services.h"
#include "svc_report.h"
#include "transport.h"

struct sendq {
	struct sendq *next;
	grpc_byte_buffer *bb;
	size_t bytes; /* counted in answer_bytes */
};

struct rcall {
	pthread_mutex_t mu;
	int refs; /* under mu */
	struct report_svc *svc;
	grpc_call *call;
	struct rcall *prev, *next; /* svc->calls, under svc->mu */
	char identity[AUTH_NAME_MAX]; /* the caller's credential ("" = none), set at start */

	struct tag recv_tag, send_tag, close_tag, resume_tag;
	grpc_byte_buffer *recv_bb;
	bool reading, parked, half_closed, dead;
	/* waiting for room in the ingest queue with the message undecoded */
	struct ingest_waiter waiter;
	grpc_slice raw;
	bool raw_waiting, resume_abandon;
	int cancelled;
	unsigned unanswered;

	bool sending, md_sent;
	grpc_byte_buffer *send_bb;
	size_t send_bytes;        /* of send_bb, counted in answer_bytes */
	size_t answer_bytes;      /* answers held and reserved (REPORT_MAX_ANSWER_BYTES) */
	uint64_t sends_done;      /* answers taken by the client (progress, for the sweeper) */
	uint64_t stall_mark;      /* sends_done at the sweeper's last look */
	uint64_t over_since;      /* errq_mono_ns() since when over its bound without progress; 0 = not */
	bool paused_for_answers;  /* counted once per pause */
	struct sendq *sq_head, *sq_tail;

	bool final_set, status_started;
	grpc_status_code final_code;
	char final_details[512];
	grpc_slice status_slice;
};

struct report_svc {
	struct ingest *ig;
	struct diskguard *guard; /* the free-disk floor; NULL: none */
	struct auth *auth;   /* NULL: every service allowed */
	struct quota *quota; /* NULL: no quota */
	struct report_stats st; /* atomics: counted by the queue threads */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a call was freed */
	struct rcall *calls;
	size_t ncalls;
	bool draining;
	bool sweeper_stop;   /* under mu */
	bool sweeper_started;
	pthread_cond_t sweep_cv; /* the sweeper's sleep; signalled to stop it */
	pthread_t sweeper;   /* ends streams whose answers stay unread */
};

static void maybe_read(struct rcall *c);
static void maybe_send(struct rcall *c);

static void call_free(struct rcall *c)
{
	struct report_svc *svc = c->svc;
	pthread_mutex_lock(&svc->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		svc->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	svc->ncalls--;
	pthread_cond_broadcast(&svc->cv);
	pthread_mutex_unlock(&svc->mu);
	grpc_slice_unref(c->status_slice);
	grpc_slice_unref(c->raw);
	grpc_call_unref(c->call);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Drops one reference taken under c->mu; call with c->mu held, returns with it released. */
static void unlock_unref(struct rcall *c)
{
	int left = --c->refs;
	pthread_mutex_unlock(&c->mu);
	if (left == 0)
		call_free(c);
}

/* An upper bound of the encoded size of b's answer: seq, accepted, duplicates (<= 24 bytes)
 * and per rejection its tag, length, index and reason (<= 12 bytes + the reason). */
static size_t answer_estimate(const struct ingest_batch *b)
{
	size_t n = 24;
	for (uint32_t i = 0; i < b->n_rejected; i++)
		n += 12 + strnlen(b->rejected_reason[i], VALIDATE_REASON_MAX);
	return n;
}

/* Under c->mu: answer bytes of c change by +add -sub (here and in the service's total). */
static void answer_bytes_move(struct rcall *c, size_t add, size_t sub)
{
	c->answer_bytes += add;
	c->answer_bytes -= sub;
	if (add > sub)
		atomic_fetch_add_explicit(&c->svc->st.answer_bytes, add - sub, memory_order_relaxed);
	else if (sub > add)
		atomic_fetch_sub_explicit(&c->svc->st.answer_bytes, sub - add, memory_order_relaxed);
}

/* Under c->mu: c holds too many answer bytes to be read (its own bound, or the total's while
 * it holds any). */
static bool answers_over(const struct rcall *c)
{
	return c->answer_bytes >= REPORT_MAX_ANSWER_BYTES ||
	       (c->answer_bytes && atomic_load_explicit(&c->svc->st.answer_bytes, memory_order_relaxed) >=
				       REPORT_MAX_ANSWER_BYTES_TOTAL);
}

static void set_final(struct rcall *c, grpc_status_code code, const char *details)
{
	if (c->final_set)
		return;
	c->final_set = true;
	c->final_code = code;
	errq_snprintf(c->final_details, sizeof(c->final_details), "%s", details);
}

/* ---- batches ---- */

/* Under c->mu: a batch of c was given back uncommitted: the stream ends with UNAVAILABLE and
 * the store's reason (a full disk, an unwritable file), so the client resends later or
 * elsewhere. */
static void set_final_uncommitted(struct rcall *c)
{
	struct ingest_health h;
	char why[sizeof(c->final_details)];
	ingest_get_health(c->svc->ig, &h);
	if (h.failing_since && h.error[0])
		errq_snprintf(why, sizeof(why), "collector cannot store the batch: %s (%s); resend later",
			      health_store_class_words(h.store_error), h.error);
	else
		errq_snprintf(why, sizeof(why), "collector could not store the batch; resend");
	set_final(c, GRPC_STATUS_UNAVAILABLE, why);
}

/* Writer thread: the batch's transaction committed (or was abandoned). */
static void on_done(struct ingest_batch *b, bool committed)
{
	struct rcall *c = b->owner;
	grpc_byte_buffer *bb = committed ? report_build_response(b, &c->svc->st) : NULL;
	size_t reserved = b->answer_reserved;
	report_batch_free(b);
	pthread_mutex_lock(&c->mu);
	answer_bytes_move(c, 0, reserved);
	bool queued = false;
	if (bb && !c->dead) {
		struct sendq *q = malloc(sizeof(*q));
		if (q) {
			q->next = NULL;
			q->bb = bb;
			q->bytes = grpc_byte_buffer_length(bb);
			answer_bytes_move(c, q->bytes, 0);
			if (c->sq_tail)
				c->sq_tail->next = q;
			else
				c->sq_head = q;
			c->sq_tail = q;
			queued = true;
		}
	}
	if (!queued) {
		/* nothing will be sent for this batch: it stays unacknowledged (the client resends) */
		if (bb)
			grpc_byte_buffer_destroy(bb);
		c->unanswered--;
		if (c->dead)
			; /* nothing can be sent anyway */
		else if (!committed)
			set_final_uncommitted(c);
		else
			set_final(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "collector out of memory");
	}
	maybe_send(c);
	maybe_read(c);
	unlock_unref(c);
}

static void on_resumed(struct ingest_batch *b)
{
	struct rcall *c = b->owner;
	pthread_mutex_lock(&c->mu);
	c->parked = false;
	maybe_read(c);
	pthread_mutex_unlock(&c->mu);
}

static const struct ingest_batch_ops batch_ops = {on_done, on_resumed};

/* ---- reads ---- */

/* Under c->mu: hands a decoded batch (already counted in unanswered) to the writer. */
static void submit(struct rcall *c, struct ingest_batch *b)
{
	b->owner = c;
	c->refs++;
	switch (ingest_submit(c->svc->ig, b)) {
	case INGEST_PARKED:
		c->parked = true;
		break;
	case INGEST_REFUSED: /* shutting down: not stored, not answered; the client resends */
		c->refs--;
		c->unanswered--;
		answer_bytes_move(c, 0, b->answer_reserved);
		report_batch_free(b);
		set_final(c, GRPC_STATUS_UNAVAILABLE, "collector shutting down");
		break;
	default:
		break;
	}
}

/* Counts a decoded batch (b) or one that ended its call (b NULL, with status st). */
static void count_batch(struct report_stats *rs, const struct ingest_batch *b, grpc_status_code st)
{
	if (!b) {
		atomic_fetch_add_explicit(st == GRPC_STATUS_INVALID_ARGUMENT ? &rs->batches_malformed : &rs->batches_too_large,
					  1, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&rs->batches_received, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&rs->events_received, b->n_events, memory_order_relaxed);
	/* rejections are counted as answered (report_build_response) */
}

void report_svc_get_stats(struct report_svc *r, struct report_stats_snapshot *out)
{
	out->events_received = atomic_load(&r->st.events_received);
	out->batches_received = atomic_load(&r->st.batches_received);
	out->batches_malformed = atomic_load(&r->st.batches_malformed);
	out->batches_too_large = atomic_load(&r->st.batches_too_large);
	out->answer_bytes = atomic_load(&r->st.answer_bytes);
	out->answer_paused_total = atomic_load(&r->st.answer_paused_total);
	out->answer_ended_total = atomic_load(&r->st.answer_ended_total);
	for (int i = 0; i <= VALIDATE_N_REJECT_CODES; i++)
		out->rejected[i] = atomic_load(&r->st.rejected[i]);
}

/* Decodes the message of c into a batch and submits it; on failure ends the call. */
static void decode_and_submit(struct rcall *c, grpc_slice s, bool from_waiter)
{
	char why[128];
	grpc_status_code st;
	struct auth_scope scope; /* the credentials in force now: a reload applies to live streams */
	auth_scope_begin(c->svc->auth, c->identity, &scope);
	struct ingest_batch *b = report_decode_batch(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), &scope,
						     c->svc->quota, &st, why, sizeof(why));
	auth_scope_end(&scope);
	count_batch(&c->svc->st, b, st);
	if (!b) {
		c->unanswered--;
		if (from_waiter)
			ingest_waiter_done(c->svc->ig, &c->waiter);
		else
			ingest_unreserve(c->svc->ig, c->waiter.need);
		set_final(c, st, why);
		return;
	}
	b->ops = &batch_ops;
	b->from_waiter = from_waiter;
	b->reserved = c->waiter.need; /* given back when it is submitted (its real size is known) */
	b->answer_reserved = answer_estimate(b);
	answer_bytes_move(c, b->answer_reserved, 0); /* its answer's room, until it is sent */
	submit(c, b);
}

/* Under c->mu: true (the call set to end with UNAVAILABLE and the reason) when the database's
 * disk is below min_free_disk: the message is not decoded, stored nor acknowledged. */
static bool refuse_for_disk(struct rcall *c)
{
	char why[DISKGUARD_REASON_MAX + 32];
	if (!diskguard_refuse(c->svc->guard, why, sizeof(why) - 32))
		return false;
	errq_snprintf(why + strlen(why), 32, "; resend later");
	set_final(c, GRPC_STATUS_UNAVAILABLE, why);
	return true;
}

/* Queue thread, after the writer woke the waiter (a zero-op batch posts this tag). */
static void on_resume(void *arg, bool ok)
{
	struct rcall *c = arg;
	pthread_mutex_lock(&c->mu);
	grpc_slice s = c->raw;
	c->raw = grpc_empty_slice();
	c->raw_waiting = false;
	c->parked = false;
	if (c->resume_abandon || c->dead) {
		c->unanswered--;
		if (!c->resume_abandon)
			ingest_waiter_done(c->svc->ig, &c->waiter);
		if (c->resume_abandon)
			set_final(c, GRPC_STATUS_UNAVAILABLE, "collector shutting down");
	} else if (refuse_for_disk(c)) {
		c->unanswered--;
		ingest_waiter_done(c->svc->ig, &c->waiter);
	} else {
		/* read before any drain began: decode and commit it even if the call is ending now */
		decode_and_submit(c, s, true);
	}
	grpc_slice_unref(s);
	maybe_read(c);
	maybe_send(c);
	unlock_unref(c); /* the waiter's reference */
}

/* Writer thread: room in the queue (or the writer stops). */
static void on_wake(struct ingest_waiter *w, bool abandon)
{
	struct rcall *c = (struct rcall *)((char *)w - offsetof(struct rcall, waiter));
	pthread_mutex_lock(&c->mu);
	c->resume_abandon = abandon;
	/* a batch of no ops completes at once on the call's queue: decoding happens there, not
	 * on the writer */
	ERRQ_TSAN_RELEASE(&c->resume_tag);
	if (grpc_call_start_batch(c->call, NULL, 0, &c->resume_tag, NULL) != GRPC_CALL_OK) {
		pthread_mutex_unlock(&c->mu);
		on_resume(c, false);
		return;
	}
	pthread_mutex_unlock(&c->mu);
}

static void on_read(void *arg, bool ok)
{
	struct rcall *c = arg;
	pthread_mutex_lock(&c->mu);
	c->reading = false;
	grpc_byte_buffer *bb = c->recv_bb;
	c->recv_bb = NULL;
	if (!ok) {
		c->dead = true; /* broken or cancelled (an oversized message ends here too) */
	} else if (!bb) {
		c->half_closed = true;
		set_final(c, GRPC_STATUS_OK, "");
	} else if (c->final_set) {
		/* ending (draining or failed): the message is not acknowledged; the client resends */
	} else {
		grpc_slice s = errq_bb_flatten(bb);
		size_t len = GRPC_SLICE_LENGTH(s);
		size_t nfail = 0;
		char why[128];
		if (len != grpc_byte_buffer_length(bb)) {
			set_final(c, GRPC_STATUS_INTERNAL, "collector cannot read the message");
		} else if (report_count_failures(GRPC_SLICE_START_PTR(s), len, &nfail)) {
			set_final(c, GRPC_STATUS_INVALID_ARGUMENT, "cannot decode ReportRequest: malformed protobuf");
		} else if (refuse_for_disk(c)) {
			/* below the free-disk floor: refused before it costs a decode */
		} else if (nfail > REPORT_MAX_BATCH_EVENTS) {
			/* decoding would cost ~0.5 KiB per event however small it is on the wire */
			errq_snprintf(why, sizeof(why), "ReportRequest has %zu failures, more than the limit of %d",
				      nfail, REPORT_MAX_BATCH_EVENTS);
			set_final(c, GRPC_STATUS_RESOURCE_EXHAUSTED, why);
		} else {
			c->unanswered++;
			c->waiter.need = report_decode_bound(len, nfail);
			if (ingest_room_or_wait(c->svc->ig, &c->waiter)) {
				decode_and_submit(c, s, false);
			} else {
				/* no room: keep the bytes, read nothing more until the writer wakes us */
				c->raw = grpc_slice_ref(s);
				c->raw_waiting = true;
				c->parked = true;
				c->refs++; /* the waiter's */
			}
		}
		grpc_slice_unref(s);
	}
	if (bb)
		grpc_byte_buffer_destroy(bb);
	maybe_read(c);
	maybe_send(c);
	unlock_unref(c);
}

static void maybe_read(struct rcall *c)
{
	if (c->reading || c->parked || c->half_closed || c->dead || c->final_set ||
	    c->unanswered >= REPORT_MAX_UNANSWERED)
		return;
	if (answers_over(c)) {
		/* the client does not take its answers: read nothing more until it does (each
		 * completed send calls here again); the sweeper ends it if that never happens */
		if (!c->paused_for_answers)
			atomic_fetch_add_explicit(&c->svc->st.answer_paused_total, 1, memory_order_relaxed);
		c->paused_for_answers = true;
		return;
	}
	c->paused_for_answers = false;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv_bb;
	ERRQ_TSAN_RELEASE(&c->recv_tag);
	if (grpc_call_start_batch(c->call, &op, 1, &c->recv_tag, NULL) != GRPC_CALL_OK) {
		c->dead = true; /* cannot happen with one read at a time; end the call rather than hang */
		grpc_call_cancel_with_status(c->call, GRPC_STATUS_INTERNAL, "collector cannot read the stream", NULL);
		return;
	}
	c->reading = true;
	c->refs++;
}

/* ---- sends ---- */

static void on_send(void *arg, bool ok)
{
	struct rcall *c = arg;
	pthread_mutex_lock(&c->mu);
	c->sending = false;
	if (c->send_bb) {
		grpc_byte_buffer_destroy(c->send_bb);
		c->send_bb = NULL;
		c->unanswered--;
		answer_bytes_move(c, 0, c->send_bytes);
		c->send_bytes = 0;
		c->sends_done += ok;
	}
	if (!ok)
		c->dead = true;
	maybe_send(c);
	maybe_read(c);
	unlock_unref(c);
}

static void maybe_send(struct rcall *c)
{
	if (c->sending)
		return;
	if (c->dead) { /* nothing more can be sent: drop queued answers */
		while (c->sq_head) {
			struct sendq *q = c->sq_head;
			c->sq_head = q->next;
			grpc_byte_buffer_destroy(q->bb);
			answer_bytes_move(c, 0, q->bytes);
			free(q);
			c->unanswered--;
		}
		c->sq_tail = NULL;
		return;
	}
	grpc_op ops[2];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!c->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	}
	if (c->sq_head) {
		struct sendq *q = c->sq_head;
		c->sq_head = q->next;
		if (!c->sq_head)
			c->sq_tail = NULL;
		c->send_bb = q->bb;
		c->send_bytes = q->bytes;
		free(q);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->send_bb;
	} else if (c->final_set && c->unanswered == 0 && !c->status_started) {
		c->status_started = true;
		c->status_slice = grpc_slice_from_copied_string(c->final_details);
		ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		ops[n].data.send_status_from_server.status = c->final_code;
		ops[n++].data.send_status_from_server.status_details =
		    c->final_code == GRPC_STATUS_OK ? NULL : &c->status_slice;
	} else {
		return;
	}
	c->md_sent = true;
	ERRQ_TSAN_RELEASE(&c->send_tag);
	if (grpc_call_start_batch(c->call, ops, n, &c->send_tag, NULL) != GRPC_CALL_OK) {
		/* fatal for the call (GRPC_CORE_NOTES #10): never try to send again */
		if (c->send_bb) {
			grpc_byte_buffer_destroy(c->send_bb);
			c->send_bb = NULL;
			c->unanswered--;
			answer_bytes_move(c, 0, c->send_bytes);
			c->send_bytes = 0;
		}
		c->dead = true;
		maybe_send(c);
		return;
	}
	c->sending = true;
	c->refs++;
}

/* ---- call lifecycle ---- */

static void on_close(void *arg, bool ok)
{
	struct rcall *c = arg;
	pthread_mutex_lock(&c->mu);
	if (c->cancelled || !ok)
		c->dead = true;
	maybe_send(c);
	unlock_unref(c);
}

static void on_new_call(void *ctx, grpc_call *call, grpc_completion_queue *cq, const grpc_metadata_array *md)
{
	struct report_svc *svc = ctx;
	struct rcall *c = calloc(1, sizeof(*c));
	if (!c) {
		grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "collector out of memory", NULL);
		grpc_call_unref(call);
		return;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->svc = svc;
	c->call = call;
	c->status_slice = grpc_empty_slice();
	c->recv_tag = (struct tag){on_read, c};
	c->send_tag = (struct tag){on_send, c};
	c->close_tag = (struct tag){on_close, c};
	c->resume_tag = (struct tag){on_resume, c};
	c->waiter.wake = on_wake;
	c->raw = grpc_empty_slice();
	auth_identity(svc->auth, "/errq.v1.Collector/Report", md, call, c->identity, sizeof(c->identity));
	/* The reference count and the close op are set up before the call is listed: from then
	 * on report_svc_drain may start a status send (and take a reference) on it.  This
	 * function holds one reference of its own until it is done with the call. */
	c->refs = 2;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	ERRQ_TSAN_RELEASE(&c->close_tag);
	if (grpc_call_start_batch(call, &op, 1, &c->close_tag, NULL) != GRPC_CALL_OK) {
		grpc_call_cancel(call, NULL);
		grpc_slice_unref(c->status_slice);
		grpc_call_unref(call);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return;
	}
	pthread_mutex_lock(&svc->mu);
	c->next = svc->calls;
	if (svc->calls)
		svc->calls->prev = c;
	svc->calls = c;
	svc->ncalls++;
	bool draining = svc->draining;
	pthread_mutex_unlock(&svc->mu);

	pthread_mutex_lock(&c->mu);
	if (draining)
		set_final(c, GRPC_STATUS_UNAVAILABLE, "collector shutting down");
	maybe_read(c);
	maybe_send(c);
	unlock_unref(c);
}

/* Under c->mu, on the sweeper: c is over its answer bound; ends it when it has not taken one
 * answer for REPORT_ANSWER_STALL_MS. */
static void sweep_call(struct rcall *c, uint64_t now)
{
	bool over = !c->dead && !c->status_started && answers_over(c);
	if (!over || c->sends_done != c->stall_mark) {
		c->over_since = over ? now : 0;
		c->stall_mark = c->sends_done;
		return;
	}
	if (!c->over_since) {
		c->over_since = now;
		return;
	}
	if (now - c->over_since < (uint64_t)REPORT_ANSWER_STALL_MS * ERRQ_NS_PER_MS)
		return;
	char why[200];
	errq_snprintf(why, sizeof(why),
		      "client reads no answers: %zu bytes of answers held for %d s (limit %u per stream, %u in all); "
		      "resend the unanswered batches",
		      c->answer_bytes, REPORT_ANSWER_STALL_MS / 1000, REPORT_MAX_ANSWER_BYTES, REPORT_MAX_ANSWER_BYTES_TOTAL);
	/* its completions (a failed send, the close) drop the unsent answers and free the call */
	c->dead = true;
	c->over_since = 0;
	grpc_call_cancel_with_status(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED, why, NULL);
	atomic_fetch_add_explicit(&c->svc->st.answer_ended_total, 1, memory_order_relaxed);
	errq_logkv(ERRQ_LOG_WARN, "stream ended: its answers stay unread", "detail", why, NULL);
}

static void *sweeper_main(void *arg)
{
	struct report_svc *r = arg;
	pthread_mutex_lock(&r->mu);
	while (!r->sweeper_stop) {
		uint64_t until = errq_mono_ns() + REPORT_ANSWER_SWEEP_MS * ERRQ_NS_PER_MS;
		struct timespec ts = {(time_t)(until / ERRQ_NS_PER_SEC), (long)(until % ERRQ_NS_PER_SEC)};
		while (!r->sweeper_stop && errq_mono_ns() < until)
			if (pthread_cond_timedwait(&r->sweep_cv, &r->mu, &ts))
				break;
		if (r->sweeper_stop)
			break;
		uint64_t now = errq_mono_ns();
		for (struct rcall *c = r->calls; c; c = c->next) {
			pthread_mutex_lock(&c->mu);
			sweep_call(c, now);
			pthread_mutex_unlock(&c->mu);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

struct report_svc *report_svc_new(struct ingest *ig)
{
	struct report_svc *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ig = ig;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, &ca);
	pthread_cond_init(&r->sweep_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&r->sweeper, NULL, sweeper_main, r) == 0)
		r->sweeper_started = true;
	else
		LOG_WARN("cannot start the Report sweeper: streams that read no answers are paused, never ended");
	return r;
}

void report_svc_set_diskguard(struct report_svc *r, struct diskguard *g)
{
	r->guard = g;
}

void report_svc_set_auth(struct report_svc *r, struct auth *auth)
{
	r->auth = auth;
}

void report_svc_set_quota(struct report_svc *r, struct quota *q)
{
	r->quota = q;
}

int report_svc_register(struct report_svc *r, struct transport *t)
{
	return transport_add_stream(t, "/errq.v1.Collector/Report", on_new_call, r);
}

void report_svc_drain(struct report_svc *r)
{
	pthread_mutex_lock(&r->mu);
	r->draining = true;
	for (struct rcall *c = r->calls; c; c = c->next) {
		pthread_mutex_lock(&c->mu);
		set_final(c, GRPC_STATUS_UNAVAILABLE, "collector shutting down");
		maybe_send(c);
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_unlock(&r->mu);
}

bool report_svc_wait_calls(struct report_svc *r, uint64_t timeout_ns)
{
	uint64_t deadline = errq_mono_ns() + timeout_ns;
	struct timespec ts = {(time_t)(deadline / ERRQ_NS_PER_SEC), (long)(deadline % ERRQ_NS_PER_SEC)};
	pthread_mutex_lock(&r->mu);
	while (r->ncalls)
		if (pthread_cond_timedwait(&r->cv, &r->mu, &ts))
			break;
	bool none = r->ncalls == 0;
	pthread_mutex_unlock(&r->mu);
	return none;
}

void report_svc_free(struct report_svc *r)
{
	if (!r)
		return;
	if (r->sweeper_started) {
		pthread_mutex_lock(&r->mu);
		r->sweeper_stop = true;
		pthread_cond_signal(&r->sweep_cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->sweeper, NULL);
	}
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	pthread_cond_destroy(&r->sweep_cv);
	free(r);
}

size_t report_svc_streams(struct report_svc *r)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->ncalls;
	pthread_mutex_unlock(&r->mu);
	return n;
}
