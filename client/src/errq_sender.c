/* errq_sender.c: the background thread of a client: batching, the Report stream, acks,
 * reconnects.
 *
 * Threading protocol: see the top of errq_client.c for the whole picture.  In this file:
 *  - everything in c->snd (channel, completion queue, stream, pending events, batches,
 *    sequence numbers, backoff state, random source) is touched by this thread only;
 *  - c->mu is taken briefly to take the report queue (pointer swap), to publish
 *    sender_low and release held_count/held_bytes when events resolve (acked or dropped),
 *    to update counters, and to sleep on wake_cv; never across a gRPC call or an allocation
 *    of event size;
 *  - one gRPC call at a time.  Its operations: one SEND_MESSAGE at most (a second one
 *    would break the call: GRPC_C_CORE_NOTES trap #10; batches queue here instead), one
 *    RECV_MESSAGE kept posted to read ReportResponses, and RECV_STATUS_ON_CLIENT.  Any
 *    failure marks the stream failed: it is cancelled, its completion queue is polled until
 *    all its operations have completed (stream->ops == 0), and only then is it freed (the
 *    operations point into it).  Every unanswered batch is then written again, in seq order,
 *    on the next stream, opened after an exponential backoff with full jitter.
 *  - Waiting: while a stream has batches in flight (or is being torn down) the thread polls
 *    the completion queue with deadlines of at most ERRQ__POLL_MS, bounded by the linger
 *    deadline; otherwise it sleeps on wake_cv until a report, a flush, close, the linger
 *    deadline or the reconnect time (at most ERRQ__IDLE_POLL_MS while an idle stream is
 *    open, to notice that it ended).  It never spins.
 *  - Exit (c->stop): cancel the call, drain it, destroy the channel, shut down and drain the
 *    completion queue, then drop (and count) every event still held.
 */
#include "client_int.h"

#include <assert.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

#include "errq/v1/collector.pb-c.h"
#include "errq_grpc.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

enum { TAG_SEND = 1, TAG_RECV, TAG_STATUS };
#define TAG(t) ((void *)(uintptr_t)(t))

/* Logs a line when the client was built with errq_options_set_debug(). */
#define DLOG(c, msg, ...)                                                                    \
	do {                                                                                 \
		if ((c)->cfg.debug)                                                          \
			errq_logkv(ERRQ_LOG_WARN, (msg), "collector", (c)->cfg.collector,    \
				   __VA_ARGS__, (const char *)NULL);                         \
	} while (0)

/* Sets sender_low to the lowest ordinal this thread holds.  mu held. */
static void publish_low_locked(errq_client_t *c)
{
	const struct errq_sender *s = &c->snd;
	if (s->b_head)
		c->sender_low = s->b_head->first_ordinal;
	else if (s->p_head)
		c->sender_low = s->p_head->ordinal;
	else
		c->sender_low = UINT64_MAX;
}

/* n events of the given cost are answered or dropped.  mu held. */
static void resolve_locked(errq_client_t *c, size_t n, size_t cost)
{
	assert(c->held_count >= n && c->held_bytes >= cost);
	c->held_count -= n;
	c->held_bytes -= cost;
	publish_low_locked(c);
	if (c->flush_waiters)
		pthread_cond_broadcast(&c->done_cv);
}

/* Moves the whole report queue to the pending list.  mu held. */
static void take_queue_locked(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	if (!c->q_head)
		return;
	if (s->p_tail)
		s->p_tail->next = c->q_head;
	else
		s->p_head = c->q_head;
	s->p_tail = c->q_tail;
	s->p_count += c->q_count;
	s->p_wire += c->q_wire;
	c->q_head = c->q_tail = NULL;
	c->q_count = 0;
	c->q_wire = 0;
	publish_low_locked(c);
}

static void free_events(errq_event_t *ev)
{
	while (ev) {
		errq_event_t *next = ev->next;
		errq_event_free(ev);
		ev = next;
	}
}

static void batch_free(struct errq_batch *b)
{
	grpc_slice_unref(b->payload);
	free(b);
}

/* Removes and returns the batch with this seq, or NULL. */
static struct errq_batch *unlink_batch(struct errq_sender *s, uint64_t seq)
{
	struct errq_batch *prev = NULL;
	for (struct errq_batch *b = s->b_head; b; prev = b, b = b->next) {
		if (b->seq != seq)
			continue;
		if (prev)
			prev->next = b->next;
		else
			s->b_head = b->next;
		if (s->b_tail == b)
			s->b_tail = prev;
		s->b_count--;
		return b;
	}
	return NULL;
}

static struct errq_batch *find_batch(struct errq_sender *s, uint64_t seq)
{
	struct errq_batch *b = s->b_head;
	while (b && b->seq != seq)
		b = b->next;
	return b;
}

/* Counts a batch in stats.sent the first time one of its writes completes (or it is
 * answered, which proves a write arrived even if its completion came later). */
static void count_sent(errq_client_t *c, struct errq_batch *b)
{
	if (!b || b->counted_sent)
		return;
	b->counted_sent = true;
	pthread_mutex_lock(&c->mu);
	c->st.sent += b->n_events;
	c->st.batches_sent++;
	pthread_mutex_unlock(&c->mu);
}

/* True when the pending events should become a batch now. */
static bool batch_ready(const errq_client_t *c, uint64_t now, bool flushing)
{
	const struct errq_sender *s = &c->snd;
	if (!s->p_count || s->b_count >= c->cfg.max_inflight)
		return false;
	return flushing || s->p_count >= c->cfg.max_batch_events ||
	       s->p_wire + ERRQ__BATCH_OVERHEAD >= c->cfg.max_batch_bytes ||
	       now >= s->p_head->enq_ns + c->linger_ns;
}

/* Encodes the oldest pending events (up to the batch limits) into a new batch and frees
 * them.  When memory runs out the events are dropped and counted: the library never aborts
 * and never retries an allocation in a loop. */
static void form_batch(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	errq_event_t *first = s->p_head, *last = NULL;
	size_t n = 0, wire = 0, cost = 0;
	uint8_t id[ERRQ_ID_LEN];

	for (errq_event_t *ev = first; ev && n < c->cfg.max_batch_events; ev = ev->next) {
		if (n && wire + ev->wire + ERRQ__BATCH_OVERHEAD > c->cfg.max_batch_bytes)
			break;
		wire += ev->wire;
		cost += ev->cost;
		n++;
		last = ev;
	}
	s->p_head = last->next;
	if (!s->p_head)
		s->p_tail = NULL;
	s->p_count -= n;
	s->p_wire -= wire;
	last->next = NULL;

	uint64_t r0 = errq_idgen_rand(&s->rng), r1 = errq_idgen_rand(&s->rng);
	memcpy(id, &r0, 8);
	memcpy(id + 8, &r1, 8);
	struct errq_batch *b = calloc(1, sizeof(*b));
	if (!b || errq__batch_encode(&c->cfg, first, n, s->seq + 1, id, &b->payload) != ERRQ_OK) {
		free(b);
		pthread_mutex_lock(&c->mu);
		c->st.dropped_nomem += n;
		resolve_locked(c, n, cost);
		pthread_mutex_unlock(&c->mu);
		goto out;
	}
	b->seq = ++s->seq;
	b->first_ordinal = first->ordinal;
	b->n_events = n;
	b->cost = cost;
	if (s->b_tail)
		s->b_tail->next = b;
	else
		s->b_head = b;
	s->b_tail = b;
	s->b_count++;
out:
	free_events(first);
}

/* Marks the stream broken and cancels its call; the operations still outstanding then
 * complete (with failure) and the stream is reaped.  why == NULL: the client is closing. */
static void stream_fail(errq_client_t *c, const char *why)
{
	struct errq_stream *st = c->snd.stream;
	if (st->failed)
		return;
	st->failed = true;
	st->why = why;
	if (st->call)
		grpc_call_cancel(st->call, NULL);
	pthread_mutex_lock(&c->mu);
	if (why)
		c->st.stream_failures++;
	c->connected = false;
	pthread_mutex_unlock(&c->mu);
}

static int start_ops(errq_client_t *c, const grpc_op *ops, size_t n, int tag)
{
	struct errq_stream *st = c->snd.stream;
	grpc_call_error e = grpc_call_start_batch(st->call, ops, n, TAG(tag), NULL);
	if (e != GRPC_CALL_OK) {
		/* any refusal leaves the call unusable (trap #10): give up on it */
		stream_fail(c, "cannot start a call operation");
		return -1;
	}
	st->ops++;
	return 0;
}

/* Keeps one RECV_MESSAGE posted (with RECV_INITIAL_METADATA the first time). */
static void stream_post_recv(errq_client_t *c)
{
	struct errq_stream *st = c->snd.stream;
	grpc_op ops[2];
	size_t n = 0;
	if (!st || st->failed || st->recv_busy)
		return;
	memset(ops, 0, sizeof(ops));
	if (!st->md_recv_posted) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n].data.recv_initial_metadata.recv_initial_metadata = &st->init_md;
		n++;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n].data.recv_message.recv_message = &st->recv_bb;
	n++;
	if (start_ops(c, ops, n, TAG_RECV) == 0) {
		st->recv_busy = true;
		st->md_recv_posted = true;
	}
}

/* Writes the oldest batch not yet written on this stream, if no write is outstanding. */
static void stream_send_next(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	struct errq_stream *st = s->stream;
	struct errq_batch *b;
	grpc_op ops[2];
	size_t n = 0;

	if (!st || st->failed || st->send_busy)
		return;
	for (b = s->b_head; b && b->sent_gen == st->gen; b = b->next)
		;
	if (!b)
		return;
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&b->payload, 1); /* refs the slice */
	memset(ops, 0, sizeof(ops));
	if (!st->md_sent) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		n++;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = bb;
	n++;
	if (start_ops(c, ops, n, TAG_SEND)) {
		grpc_byte_buffer_destroy(bb);
		return;
	}
	st->md_sent = true;
	st->send_busy = true;
	st->send_bb = bb;
	st->sending_seq = b->seq;
	b->sent_gen = st->gen;
	if (b->writes++ > 0) {
		pthread_mutex_lock(&c->mu);
		c->st.resends++;
		pthread_mutex_unlock(&c->mu);
	}
}

/* Opens a Report stream and writes the first unanswered batch on it. */
static void stream_open(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	struct errq_stream *st = calloc(1, sizeof(*st));
	grpc_op op;

	if (!st) {
		s->next_connect_ns = errq_mono_ns() + (uint64_t)c->cfg.backoff_max_ms * ERRQ_NS_PER_MS;
		return;
	}
	/* our backoff has run; do not let the channel's own (up to 120 s) delay the attempt */
	if (s->gen > 0)
		grpc_channel_reset_connect_backoff(s->ch);
	st->gen = ++s->gen;
	grpc_metadata_array_init(&st->init_md);
	grpc_metadata_array_init(&st->trail_md);
	st->status_details = grpc_empty_slice();
	st->call = grpc_channel_create_call(s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
					    grpc_slice_from_static_string(ERRQ__REPORT_METHOD), NULL,
					    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	s->stream = st;
	if (st->gen > 1) {
		pthread_mutex_lock(&c->mu);
		c->st.reconnects++;
		pthread_mutex_unlock(&c->mu);
	}
	if (!st->call) {
		stream_fail(c, "cannot create a call");
		return;
	}
	stream_send_next(c); /* SEND_INITIAL_METADATA goes first, with the first message */
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &st->trail_md;
	op.data.recv_status_on_client.status = &st->status;
	op.data.recv_status_on_client.status_details = &st->status_details;
	if (!st->failed && start_ops(c, &op, 1, TAG_STATUS))
		return;
	stream_post_recv(c);
}

/* Frees a failed stream whose operations have all completed, and schedules the next one:
 * full jitter over an exponentially growing cap. */
static void stream_reap(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	struct errq_stream *st = s->stream;

	assert(st->failed && st->ops == 0);
	if (st->why) {
		char details[256];
		size_t dl = GRPC_SLICE_LENGTH(st->status_details);
		if (dl >= sizeof(details))
			dl = sizeof(details) - 1;
		memcpy(details, GRPC_SLICE_START_PTR(st->status_details), dl);
		details[dl] = '\0';
		DLOG(c, "errq: stream to the collector ended", "reason", st->why, "status",
		     st->status_received ? errq_status_name(st->status) : "none", "details", details);
	}
	if (st->recv_bb)
		grpc_byte_buffer_destroy(st->recv_bb);
	if (st->send_bb)
		grpc_byte_buffer_destroy(st->send_bb);
	if (st->call)
		grpc_call_unref(st->call);
	grpc_metadata_array_destroy(&st->init_md);
	grpc_metadata_array_destroy(&st->trail_md);
	grpc_slice_unref(st->status_details);
	free(st);
	s->stream = NULL;

	uint64_t cap = c->cfg.backoff_initial_ms;
	for (unsigned i = 0; i < s->fails && cap < c->cfg.backoff_max_ms; i++)
		cap *= 2;
	if (cap > c->cfg.backoff_max_ms)
		cap = c->cfg.backoff_max_ms;
	uint64_t delay_ms = errq_idgen_rand(&s->rng) % (cap + 1);
	s->next_connect_ns = errq_mono_ns() + delay_ms * ERRQ_NS_PER_MS;
	if (s->fails < 64)
		s->fails++;
}

/* A ReportResponse arrived: resolve the batch with its seq. */
static void on_response(errq_client_t *c, grpc_byte_buffer *bb)
{
	struct errq_sender *s = &c->snd;
	grpc_slice sl = errq_bb_flatten(bb);
	Errq__V1__ReportResponse *resp = errq__v1__report_response__unpack(
	    NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
	grpc_slice_unref(sl);
	if (!resp) {
		stream_fail(c, "cannot decode a response");
		return;
	}
	s->fails = 0;
	struct errq_batch *b = unlink_batch(s, resp->seq);
	count_sent(c, b);
	pthread_mutex_lock(&c->mu);
	c->connected = true;
	if (b) {
		c->st.acked += b->n_events;
		c->st.accepted += resp->accepted;
		c->st.duplicates += resp->duplicates;
		c->st.rejected += resp->n_rejected;
		c->st.batches_acked++;
		resolve_locked(c, b->n_events, b->cost);
	}
	pthread_mutex_unlock(&c->mu);
	if (!b) {
		char seq[24];
		errq_snprintf(seq, sizeof(seq), "%llu", (unsigned long long)resp->seq);
		DLOG(c, "errq: response for an unknown batch", "seq", seq);
	}
	for (size_t i = 0; c->cfg.debug && i < resp->n_rejected; i++)
		DLOG(c, "errq: event rejected", "reason", resp->rejected[i]->reason);
	errq__v1__report_response__free_unpacked(resp, NULL);
	if (b)
		batch_free(b);
}

static void on_event(errq_client_t *c, const grpc_event *ev)
{
	struct errq_stream *st = c->snd.stream;
	assert(st && st->ops > 0); /* every operation belongs to the one live stream */
	st->ops--;
	switch ((uintptr_t)ev->tag) {
	case TAG_SEND:
		st->send_busy = false;
		grpc_byte_buffer_destroy(st->send_bb);
		st->send_bb = NULL;
		if (!ev->success) {
			stream_fail(c, "write failed");
			break;
		}
		count_sent(c, find_batch(&c->snd, st->sending_seq)); /* NULL: answered already */
		stream_send_next(c);
		break;
	case TAG_RECV:
		st->recv_busy = false;
		if (ev->success && st->recv_bb) {
			on_response(c, st->recv_bb);
			grpc_byte_buffer_destroy(st->recv_bb);
			st->recv_bb = NULL;
			stream_post_recv(c);
		} else {
			stream_fail(c, ev->success ? "the collector ended the stream" : "read failed");
		}
		break;
	case TAG_STATUS:
		st->status_received = true;
		stream_fail(c, "the collector ended the stream");
		break;
	default:
		assert(!"unknown completion tag");
	}
}

/* Handles completions for up to ms milliseconds (0: only those already there).  Returns how
 * many were handled. */
static int poll_cq(errq_client_t *c, long ms)
{
	int n = 0;
	gpr_timespec dl = ms > 0 ? errq_deadline_ms(ms) : gpr_inf_past(GPR_CLOCK_MONOTONIC);
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(c->snd.cq, dl, NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			break;
		on_event(c, &ev);
		n++;
		dl = gpr_inf_past(GPR_CLOCK_MONOTONIC);
	}
	return n;
}

static long ns_to_ms_ceil(uint64_t ns)
{
	return (long)((ns + ERRQ_NS_PER_MS - 1) / ERRQ_NS_PER_MS);
}

/* Milliseconds until a timer of ours is due (linger, reconnect), or -1 for none. */
static long next_wait_ms(const errq_client_t *c, uint64_t now, bool flushing)
{
	const struct errq_sender *s = &c->snd;
	long w = -1;
	if (s->p_count && s->b_count < c->cfg.max_inflight) {
		uint64_t due = s->p_head->enq_ns + c->linger_ns;
		w = flushing || due <= now ? 0 : ns_to_ms_ceil(due - now);
	}
	if (!s->stream && s->b_count) {
		long d = s->next_connect_ns <= now ? 0 : ns_to_ms_ceil(s->next_connect_ns - now);
		if (w < 0 || d < w)
			w = d;
	}
	return w;
}

/* Sleeps on wake_cv for up to ms (< 0: until signalled), unless something arrived since the
 * top of the loop. */
static void sleep_cv(errq_client_t *c, long ms)
{
	struct timespec ts;
	if (ms >= 0)
		errq__deadline_after_ms(&ts, ms);
	pthread_mutex_lock(&c->mu);
	if (!c->q_head && !c->stop && c->flush_requests == c->snd.flush_seen) {
		c->sender_waiting = true;
		if (ms < 0)
			pthread_cond_wait(&c->wake_cv, &c->mu);
		else
			pthread_cond_timedwait(&c->wake_cv, &c->mu, &ts);
		c->sender_waiting = false;
	}
	pthread_mutex_unlock(&c->mu);
}

/* The end of the thread: tear down gRPC state and drop what is left. */
static void sender_exit(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	size_t n = 0, cost = 0;

	if (s->stream) {
		stream_fail(c, NULL);
		while (s->stream->ops > 0) {
			gpr_timespec forever = gpr_inf_future(GPR_CLOCK_MONOTONIC);
			grpc_event ev = grpc_completion_queue_next(s->cq, forever, NULL);
			if (ev.type != GRPC_OP_COMPLETE)
				break;
			on_event(c, &ev);
		}
		stream_reap(c);
	}
	grpc_channel_destroy(s->ch);
	s->ch = NULL;
	grpc_completion_queue_shutdown(s->cq);
	while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(s->cq);
	s->cq = NULL;

	pthread_mutex_lock(&c->mu);
	take_queue_locked(c);
	errq_event_t *pending = s->p_head;
	struct errq_batch *batches = s->b_head;
	for (errq_event_t *ev = pending; ev; ev = ev->next) {
		n++;
		cost += ev->cost;
	}
	for (struct errq_batch *b = batches; b; b = b->next) {
		n += b->n_events;
		cost += b->cost;
	}
	s->p_head = s->p_tail = NULL;
	s->p_count = s->p_wire = 0;
	s->b_head = s->b_tail = NULL;
	s->b_count = 0;
	c->st.dropped_closed += n;
	c->lost_at_close += n;
	c->connected = false;
	resolve_locked(c, n, cost);
	pthread_mutex_unlock(&c->mu);

	free_events(pending);
	while (batches) {
		struct errq_batch *next = batches->next;
		batch_free(batches);
		batches = next;
	}
}

void *errq__sender_main(void *arg)
{
	errq_client_t *c = arg;
	struct errq_sender *s = &c->snd;

	s->cq = grpc_completion_queue_create_for_next(NULL);
	for (;;) {
		uint64_t now = errq_mono_ns();
		bool flushing, stop;

		pthread_mutex_lock(&c->mu);
		take_queue_locked(c);
		stop = c->stop;
		flushing = c->closing || c->flush_waiters > 0;
		s->flush_seen = c->flush_requests;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;

		while (batch_ready(c, now, flushing))
			form_batch(c);
		if (!s->stream && s->b_count && now >= s->next_connect_ns)
			stream_open(c);
		stream_send_next(c);

		struct errq_stream *st = s->stream;
		if (st && st->failed && st->ops == 0) {
			stream_reap(c);
			continue;
		}
		long wait = next_wait_ms(c, now, flushing);
		if (st && (st->failed || s->b_count)) {
			poll_cq(c, wait < 0 || wait > ERRQ__POLL_MS ? ERRQ__POLL_MS : wait);
		} else {
			/* idle: collect what an idle stream completed, then sleep; with a stream
			 * open, wake now and then to notice that it ended */
			if (st && poll_cq(c, 0) > 0)
				continue;
			if (st && (wait < 0 || wait > ERRQ__IDLE_POLL_MS))
				wait = ERRQ__IDLE_POLL_MS;
			sleep_cv(c, wait);
		}
	}
	sender_exit(c);
	return NULL;
}
