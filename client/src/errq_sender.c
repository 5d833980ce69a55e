/* errq_sender.c: the background thread of a client: batching, the Report stream, acks,
 * reconnects, the client-side circuit, the ack timeout, and moving batches to and from the
 * disk spool.
 *
 * Threading protocol: see the top of errq_client.c for the whole picture.  In this file:
 *  - everything in c->snd (channel, completion queue, stream, pending events, batches,
 *    replayed spool batches, sequence numbers, backoff and circuit state, random source,
 *    spool, spare outcome table) is touched by this thread only;
 *  - c->mu is taken briefly to take the report queue (pointer swap), to publish
 *    sender_low and release held_count/held_bytes when events resolve (acked, spooled or
 *    dropped), to update counters, and to sleep on wake_cv; never across a gRPC call, a
 *    disk operation or an allocation of event size.  c->omu only to cut an outcome window
 *    (errq_outcome.c);
 *  - one gRPC call at a time.  Its operations: one SEND_MESSAGE at most (a second one
 *    would break the call: GRPC_C_CORE_NOTES trap #10; batches queue here instead), one
 *    RECV_MESSAGE kept posted to read ReportResponses, and RECV_STATUS_ON_CLIENT.  Any
 *    failure marks the stream failed: it is cancelled, its completion queue is polled until
 *    all its operations have completed (stream->ops == 0), and only then is it freed (the
 *    operations point into it).  Every unanswered batch is then written again, in order,
 *    on the next stream, opened after an exponential backoff with full jitter.
 *  - Batches: b_* are made here from reported events (and outcome windows), in seq order;
 *    r_* are read from spool files.  A stream writes an r_ batch first, then alternates
 *    between b_ and r_ while both have unwritten batches (a backlog on disk must not starve
 *    live events).  A batch is freed only when the collector answers its seq (or when it moves to
 *    the spool, or at exit).
 *  - Circuit: after cfg.circuit_threshold streams in a row failed without an answer, the
 *    circuit opens: no stream for a random period in [cap/2, cap] (cap the current backoff
 *    cap); with a spool, every b_ batch and every batch formed while open goes to disk and
 *    leaves memory, and r_ batches are dropped from memory (their files stay).  Batches also
 *    go to disk whenever the queue is half full (the collector away or slower than the
 *    reports), except batches already written on a live stream.
 *    A report that finds the queue full with a spool that has free room waits on done_cv
 *    (c->spill_waiters): the loop then counts it as pressure, does not sleep, polls the
 *    completion queue at most ERRQ__SPILL_POLL_MS at a time while the queue is half full,
 *    and spills everything not in flight, and what is in flight too if the queue is still
 *    half full after that.  Those spills use free room only (errq__spool_write, !evict);
 *    writes while the circuit is open and at exit delete the oldest files as needed.
 *    Spool files are read back one at a time until a stream is answered, then up to
 *    ERRQ__SPOOL_REPLAY_BATCHES at once.  At the end
 *    of the period the circuit is half-open: a stream writes one batch and waits for its
 *    answer; an answer closes the circuit, a failure opens it again (for a longer period).
 *  - Ack timeout: when the oldest batch written on the open stream has waited longer than
 *    cfg.ack_timeout_ms for its answer, the stream is failed (cancelled) like any other:
 *    a collector that accepts a stream and never answers cannot wedge the client.
 *  - Waiting: while a stream has batches in flight (or is being torn down) the thread polls
 *    the completion queue with deadlines of at most ERRQ__POLL_MS, bounded by its timers;
 *    otherwise it sleeps on wake_cv until a report, a flush, close, a new outcome window or
 *    one of its timers (linger, reconnect, circuit, outcome window, spool retry; at most
 *    ERRQ__IDLE_POLL_MS while an idle stream is open, to notice that it ended).  It never
 *    spins.
 *  - Exit (c->stop): cancel the call, drain it, destroy the channel, shut down and drain the
 *    completion queue; cut the last outcome window; then, with a usable spool, write every
 *    unanswered batch (and the pending events, batched) to disk; drop (and count) whatever
 *    is left.
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

/* What the loop saw at its top. */
struct tick {
	uint64_t now;
	bool flushing; /* closing, or someone waits in errq_client_flush(): no lingering */
	bool pressure; /* the queue is half full: spool without lingering */
	bool spooling; /* the circuit is open and batches go to disk */
	bool spill;    /* reports wait for room (errq_report at the queue's limit) */
};

/* Sets sender_low to the lowest ordinal this thread holds.  mu held. */
static void publish_low_locked(errq_client_t *c)
{
	const struct errq_sender *s = &c->snd;
	uint64_t low = UINT64_MAX;
	for (const struct errq_batch *b = s->b_head; b; b = b->next) {
		if (b->n_events) { /* batches are made in report order */
			low = b->first_ordinal;
			break;
		}
	}
	if (s->p_head && s->p_head->ordinal < low)
		low = s->p_head->ordinal;
	c->sender_low = low;
}

/* n events of the given cost are answered, spooled or dropped.  mu held. */
static void resolve_locked(errq_client_t *c, size_t n, size_t cost)
{
	assert(c->held_count >= n && c->held_bytes >= cost);
	c->held_count -= n;
	c->held_bytes -= cost;
	publish_low_locked(c);
	if (c->flush_waiters || c->spill_waiters) /* flushes, and reports waiting for room */
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

static void free_qevs(struct errq_qev *q)
{
	while (q) {
		struct errq_qev *next = q->next;
		free(q);
		q = next;
	}
}

void errq__batch_free(struct errq_batch *b)
{
	grpc_slice_unref(b->body);
	free(b);
}

void errq__batch_append(errq_client_t *c, struct errq_batch *b)
{
	struct errq_sender *s = &c->snd;
	b->seq = ++s->seq;
	b->next = NULL;
	if (s->b_tail)
		s->b_tail->next = b;
	else
		s->b_head = b;
	s->b_tail = b;
	s->b_count++;
	if (b->n_outcomes)
		s->b_outcome_batches++;
}

/* Removes the batch with this seq from a list, or returns NULL. */
static struct errq_batch *unlink_seq(struct errq_batch **head, struct errq_batch **tail,
				     uint64_t seq)
{
	struct errq_batch *prev = NULL;
	for (struct errq_batch *b = *head; b; prev = b, b = b->next) {
		if (b->seq != seq)
			continue;
		if (prev)
			prev->next = b->next;
		else
			*head = b->next;
		if (*tail == b)
			*tail = prev;
		b->next = NULL;
		return b;
	}
	return NULL;
}

static struct errq_batch *find_seq(struct errq_batch *b, uint64_t seq)
{
	while (b && b->seq != seq)
		b = b->next;
	return b;
}

/* Takes the oldest made batch off the list (the caller frees or spools it). */
static struct errq_batch *pop_made(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	struct errq_batch *b = s->b_head;
	if (!b)
		return NULL;
	s->b_head = b->next;
	if (!s->b_head)
		s->b_tail = NULL;
	b->next = NULL;
	s->b_count--;
	if (b->n_outcomes)
		s->b_outcome_batches--;
	return b;
}

/* Forgets the replayed batches (their files stay, to be read again later). */
static void drop_replay(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	while (s->r_head) {
		struct errq_batch *b = s->r_head;
		s->r_head = b->next;
		errq__spool_unload(c, b->spool_no);
		errq__batch_free(b);
	}
	s->r_tail = NULL;
	s->r_count = 0;
	s->r_bytes = 0;
}

/* Counts a batch in stats.sent the first time one of its writes completes (or it is
 * answered, which proves a write arrived even if its completion came later). */
static void count_sent(errq_client_t *c, struct errq_batch *b)
{
	if (!b || b->counted_sent)
		return;
	b->counted_sent = true;
	pthread_mutex_lock(&c->mu);
	if (!b->spool_no)
		c->st.sent += b->n_events;
	c->st.batches_sent++;
	pthread_mutex_unlock(&c->mu);
}

static void publish_circuit(errq_client_t *c)
{
	pthread_mutex_lock(&c->mu);
	c->st.circuit_state = (uint64_t)c->snd.circuit;
	c->st.consecutive_failures = c->snd.fails;
	if (c->flush_waiters) /* close stops waiting for the spool while the circuit is open */
		pthread_cond_broadcast(&c->done_cv);
	pthread_mutex_unlock(&c->mu);
}

/* Publishes how many outcome batches this thread holds; close waits for none. */
static void publish_outcomes(errq_client_t *c)
{
	pthread_mutex_lock(&c->mu);
	c->o_unresolved = c->snd.b_outcome_batches;
	if (c->flush_waiters)
		pthread_cond_broadcast(&c->done_cv);
	pthread_mutex_unlock(&c->mu);
}

/* Events per batch: the option's, or for a batch bound for the spool the collector's own
 * limit (ERRQ__BATCH_EVENTS_MAX; max_batch_bytes still applies): fewer, larger files, fewer
 * fsync()s, so spooling keeps up with the reports. */
static size_t batch_events(const errq_client_t *c, bool spooling)
{
	return spooling ? ERRQ__BATCH_EVENTS_MAX : c->cfg.max_batch_events;
}

/* Encoded bytes per batch: the option's, and for the spool at most an eighth of its budget
 * (a small spool still holds several files, and no batch is too big for it). */
static size_t batch_bytes(const errq_client_t *c, bool spooling)
{
	uint64_t cap = c->cfg.spool_max_bytes / 8;
	return spooling && cap < c->cfg.max_batch_bytes ? (size_t)cap : c->cfg.max_batch_bytes;
}

/* True when the pending events should become a batch now. */
static bool batch_ready(const errq_client_t *c, const struct tick *t)
{
	const struct errq_sender *s = &c->snd;
	if (!s->p_count || (!t->spooling && s->b_count >= c->cfg.max_inflight))
		return false;
	if (t->flushing || s->p_count >= batch_events(c, t->spooling) ||
	    s->p_wire + ERRQ__BATCH_OVERHEAD >= batch_bytes(c, t->spooling))
		return true;
	if (t->spooling) /* fewer, larger files: wait longer unless memory is getting short */
		return t->pressure ||
		       t->now >= s->p_head->enq_ns + (uint64_t)ERRQ__SPOOL_LINGER_MS * ERRQ_NS_PER_MS;
	return t->now >= s->p_head->enq_ns + c->linger_ns;
}

/* Makes a new batch of the oldest pending events (up to the batch limits): their encodings
 * one after the other, then a fresh batch_id; frees them.  When memory runs out the events
 * are dropped and counted: the library never aborts and never retries an allocation in a
 * loop. */
static void form_batch(errq_client_t *c, bool spooling)
{
	struct errq_sender *s = &c->snd;
	struct errq_qev *first = s->p_head, *last = NULL;
	size_t n = 0, wire = 0, cost = 0, max = batch_events(c, spooling);
	size_t max_bytes = batch_bytes(c, spooling);

	for (struct errq_qev *q = first; q && n < max; q = q->next) {
		if (n && wire + q->wire + ERRQ__BATCH_OVERHEAD > max_bytes)
			break;
		wire += q->wire;
		cost += q->cost;
		n++;
		last = q;
	}
	s->p_head = last->next;
	if (!s->p_head)
		s->p_tail = NULL;
	s->p_count -= n;
	s->p_wire -= wire;
	last->next = NULL;

	/* our own allocation, not grpc_slice_malloc(): gRPC aborts the process when it runs out
	 * of memory, and the library must not */
	size_t len = wire + 2 + ERRQ_ID_LEN;
	uint8_t *buf = malloc(len);
	struct errq_batch *b = calloc(1, sizeof(*b));
	if (!buf || !b) {
		free(buf);
		free(b);
		pthread_mutex_lock(&c->mu);
		c->st.dropped_nomem += n;
		resolve_locked(c, n, cost);
		pthread_mutex_unlock(&c->mu);
		goto out;
	}
	uint8_t *p = buf;
	for (struct errq_qev *q = first; q; q = q->next) {
		memcpy(p, q->bytes, q->wire);
		p += q->wire;
	}
	*p++ = 0x22; /* ReportRequest.batch_id: field 4, length-delimited */
	*p++ = ERRQ_ID_LEN;
	uint64_t r0 = errq_idgen_rand(&s->rng), r1 = errq_idgen_rand(&s->rng);
	memcpy(p, &r0, 8);
	memcpy(p + 8, &r1, 8);
	b->body = grpc_slice_new(buf, len, free);
	b->first_ordinal = first->ordinal;
	b->n_events = n;
	b->cost = cost;
	errq__batch_append(c, b);
out:
	free_qevs(first);
}

/* Writes made batches to the spool: all of them when all (no stream is up, or reports wait
 * for room that only the batches in flight hold), else only those never written on a stream
 * (the others may be answered any moment; one spooled while in flight is sent again from its
 * file later, and its events come back as duplicates).  They leave memory, and their events
 * are resolved (flush stops waiting for them).  evict: delete the oldest files as the spool's
 * limits require (the circuit is open); otherwise use free room only.  Stops at the first
 * write error or when the spool is full (the rest stay in memory). */
static void spool_out(errq_client_t *c, bool all, bool evict)
{
	struct errq_sender *s = &c->snd;
	struct errq_batch *next;
	for (struct errq_batch *cand = s->b_head; cand; cand = next) {
		next = cand->next;
		if (!all && cand->writes)
			continue;
		int rc = errq__spool_write(c, cand, evict);
		if (rc == ERRQ__SPOOL_FAILED || rc == ERRQ__SPOOL_NO_ROOM)
			break;
		struct errq_batch *b = unlink_seq(&s->b_head, &s->b_tail, cand->seq);
		s->b_count--;
		if (b->n_outcomes)
			s->b_outcome_batches--;
		pthread_mutex_lock(&c->mu);
		if (rc == ERRQ__SPOOL_WRITTEN) {
			c->st.spooled += b->n_events;
		} else { /* bigger than the whole spool: it can never be written */
			c->st.dropped_spool += b->n_events;
			c->st.outcomes_dropped += b->n_calls;
		}
		if (b->n_events)
			resolve_locked(c, b->n_events, b->cost);
		pthread_mutex_unlock(&c->mu);
		if (b->n_outcomes)
			publish_outcomes(c);
		errq__batch_free(b);
	}
}

/* True when the queue is still half full (after a spill of what was not in flight). */
static bool still_pressed(errq_client_t *c)
{
	pthread_mutex_lock(&c->mu);
	bool p = c->held_count * 2 >= c->cfg.queue_capacity || c->held_bytes * 2 >= c->cfg.queue_bytes;
	pthread_mutex_unlock(&c->mu);
	return p;
}

/* Reads spool files into memory, oldest first, within the replay bounds: one file until a
 * stream has been answered (the collector may well still be away), then up to
 * ERRQ__SPOOL_REPLAY_BATCHES. */
static void replay_fill(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	bool healthy = s->circuit == ERRQ__CIRCUIT_CLOSED && s->stream && s->stream->answered &&
		       !s->stream->failed;
	size_t max = healthy ? ERRQ__SPOOL_REPLAY_BATCHES : 1;
	while (s->r_count < max && errq__spool_has_unloaded(c)) {
		size_t room = SIZE_MAX; /* the first one always fits */
		if (s->r_count)
			room = s->r_bytes < ERRQ__SPOOL_REPLAY_BYTES ? ERRQ__SPOOL_REPLAY_BYTES - s->r_bytes : 0;
		if (!room)
			break;
		struct errq_batch *b = errq__spool_load_next(c, room);
		if (!b)
			break;
		b->seq = ++s->seq;
		if (s->r_tail)
			s->r_tail->next = b;
		else
			s->r_head = b;
		s->r_tail = b;
		s->r_count++;
		s->r_bytes += GRPC_SLICE_LENGTH(b->body);
	}
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

/* The first batch of a list not yet written on stream gen. */
static struct errq_batch *first_unwritten(struct errq_batch *b, uint64_t gen)
{
	while (b && b->sent_gen == gen)
		b = b->next;
	return b;
}

/* Writes the next batch if no write is outstanding: spooled and new ones alternate,
 * spooled first.  Half-open, only one batch goes out until it is answered. */
static void stream_send_next(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	struct errq_stream *st = s->stream;
	grpc_op ops[2];
	size_t n = 0;
	uint8_t pre[11];

	if (!st || st->failed || st->send_busy)
		return;
	if (s->circuit == ERRQ__CIRCUIT_HALF_OPEN && !st->answered && st->writes > 0)
		return;
	/* spooled batches first, then alternating with new ones: a backlog on disk must not
	 * starve live events (they would fill the queue and be refused) */
	struct errq_batch *rb = first_unwritten(s->r_head, st->gen);
	struct errq_batch *mb = first_unwritten(s->b_head, st->gen);
	struct errq_batch *b = rb && (!mb || !st->last_replay) ? rb : mb;
	if (!b)
		return;
	st->last_replay = b == rb;
	/* seq in front of the body: protobuf merges the fields; both slices are referenced */
	grpc_slice sl[2];
	sl[0] = grpc_slice_from_copied_buffer((const char *)pre, errq__seq_prefix(b->seq, pre));
	sl[1] = b->body;
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(sl, 2);
	grpc_slice_unref(sl[0]);
	memset(ops, 0, sizeof(ops));
	if (!st->md_sent) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		if (s->have_auth) {
			ops[n].data.send_initial_metadata.count = 1;
			ops[n].data.send_initial_metadata.metadata = &s->auth_md;
		}
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
	st->writes++;
	b->sent_gen = st->gen;
	b->write_ns = errq_mono_ns();
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
	/* After a stream that failed without an answer, a fresh channel: a channel whose
	 * connection failed stays in TRANSIENT_FAILURE, where gRPC fails every new call at
	 * once with the old error until its own reconnect backoff runs out (seconds to
	 * minutes), so a collector that is back would not be seen; on a new channel (with its
	 * own subchannels: GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL) the call waits for a real
	 * connection attempt.  No call is alive here (the last stream was reaped).  Our backoff
	 * and circuit decide how often this happens. */
	if (s->fails > 0) {
		grpc_channel *ch = errq__channel_new(&c->cfg);
		if (ch) {
			grpc_channel_destroy(s->ch);
			s->ch = ch;
		}
	}
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

/* Frees a failed stream whose operations have all completed. */
static void stream_free(errq_client_t *c)
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
}

/* The backoff cap after the current run of failures: initial * 2^fails, at most max. */
static uint64_t backoff_cap_ms(const errq_client_t *c)
{
	uint64_t cap = c->cfg.backoff_initial_ms;
	for (unsigned i = 0; i < c->snd.fails && cap < c->cfg.backoff_max_ms; i++)
		cap *= 2;
	return cap > c->cfg.backoff_max_ms ? c->cfg.backoff_max_ms : cap;
}

/* Opens the circuit: no stream before a random time in [cap/2, cap]. */
static void circuit_open(errq_client_t *c, uint64_t now)
{
	struct errq_sender *s = &c->snd;
	uint64_t cap = backoff_cap_ms(c);
	uint64_t ms = cap / 2 + errq_idgen_rand(&s->rng) % (cap - cap / 2 + 1);
	s->circuit = ERRQ__CIRCUIT_OPEN;
	s->open_until_ns = now + ms * ERRQ_NS_PER_MS;
	s->next_connect_ns = s->open_until_ns;
	drop_replay(c); /* on disk already: memory is for what is not */
	pthread_mutex_lock(&c->mu);
	c->st.circuit_opens++;
	pthread_mutex_unlock(&c->mu);
	publish_circuit(c);
	char buf[24];
	errq_snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ms);
	DLOG(c, "errq: circuit open: no attempt for a while", "ms", buf);
}

/* A stream failed and is freed: schedule the next one (full jitter over an exponentially
 * growing cap), or open the circuit. */
static void stream_failed(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	uint64_t now = errq_mono_ns();
	bool was_half_open = s->circuit == ERRQ__CIRCUIT_HALF_OPEN;

	stream_free(c);
	uint64_t cap = backoff_cap_ms(c);
	if (s->fails < 64)
		s->fails++;
	if (was_half_open || s->fails >= c->cfg.circuit_threshold) {
		circuit_open(c, now);
		return;
	}
	s->next_connect_ns = now + (errq_idgen_rand(&s->rng) % (cap + 1)) * ERRQ_NS_PER_MS;
	publish_circuit(c);
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
	s->stream->answered = true;
	bool circuit_changed = s->fails != 0 || s->circuit != ERRQ__CIRCUIT_CLOSED;
	s->fails = 0;
	if (s->circuit != ERRQ__CIRCUIT_CLOSED) {
		s->circuit = ERRQ__CIRCUIT_CLOSED;
		DLOG(c, "errq: circuit closed: the collector answers", "state", "closed");
	}
	struct errq_batch *b = unlink_seq(&s->b_head, &s->b_tail, resp->seq);
	bool replayed = false;
	if (b) {
		s->b_count--;
		if (b->n_outcomes)
			s->b_outcome_batches--;
	} else if ((b = unlink_seq(&s->r_head, &s->r_tail, resp->seq))) {
		replayed = true;
		s->r_count--;
		s->r_bytes -= GRPC_SLICE_LENGTH(b->body);
		errq__spool_remove(c, b->spool_no); /* delivered: the file goes */
	}
	count_sent(c, b);
	pthread_mutex_lock(&c->mu);
	c->connected = true;
	if (b) {
		c->st.accepted += resp->accepted;
		c->st.duplicates += resp->duplicates;
		c->st.rejected += resp->n_rejected;
		/* quota_exceeded: counted by the collector already; resending would count the event
		 * again and feed the storm the quota is there to stop (docs/protocol.md) */
		for (size_t i = 0; i < resp->n_rejected; i++)
			c->st.rejected_quota += resp->rejected[i]->reason &&
						strncmp(resp->rejected[i]->reason, "quota_exceeded:", 15) == 0;
		c->st.batches_acked++;
		if (replayed) {
			c->st.spool_replayed += b->n_events;
		} else {
			c->st.acked += b->n_events;
			c->st.outcomes_acked += b->n_calls;
			if (b->n_events)
				resolve_locked(c, b->n_events, b->cost);
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (b && b->n_outcomes && !replayed)
		publish_outcomes(c);
	if (circuit_changed)
		publish_circuit(c);
	if (!b) {
		char seq[24];
		errq_snprintf(seq, sizeof(seq), "%llu", (unsigned long long)resp->seq);
		DLOG(c, "errq: response for an unknown batch", "seq", seq);
	}
	for (size_t i = 0; c->cfg.debug && i < resp->n_rejected; i++)
		DLOG(c, "errq: event rejected", "reason", resp->rejected[i]->reason);
	errq__v1__report_response__free_unpacked(resp, NULL);
	if (b)
		errq__batch_free(b);
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
		{
			struct errq_batch *b = find_seq(c->snd.b_head, st->sending_seq);
			if (!b)
				b = find_seq(c->snd.r_head, st->sending_seq);
			count_sent(c, b); /* NULL: answered already */
		}
		stream_send_next(c);
		break;
	case TAG_RECV:
		st->recv_busy = false;
		if (ev->success && st->recv_bb) {
			on_response(c, st->recv_bb);
			grpc_byte_buffer_destroy(st->recv_bb);
			st->recv_bb = NULL;
			stream_post_recv(c);
			stream_send_next(c); /* half-open: the probe was answered */
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

/* Fails the stream when the oldest batch written on it waited too long for its answer. */
static void check_ack_timeout(errq_client_t *c, uint64_t now)
{
	struct errq_sender *s = &c->snd;
	struct errq_stream *st = s->stream;
	uint64_t oldest = UINT64_MAX;
	if (!st || st->failed)
		return;
	for (int l = 0; l < 2; l++)
		for (const struct errq_batch *b = l ? s->b_head : s->r_head; b; b = b->next)
			if (b->sent_gen == st->gen && b->write_ns < oldest)
				oldest = b->write_ns;
	if (oldest == UINT64_MAX || oldest >= now || /* written after the loop's clock read */
	    now - oldest <= (uint64_t)c->cfg.ack_timeout_ms * ERRQ_NS_PER_MS)
		return;
	pthread_mutex_lock(&c->mu);
	c->st.ack_timeouts++;
	pthread_mutex_unlock(&c->mu);
	stream_fail(c, "no answer within the ack timeout");
}

static long ns_to_ms_ceil(uint64_t ns)
{
	uint64_t ms = (ns + ERRQ_NS_PER_MS - 1) / ERRQ_NS_PER_MS;
	return ms > 3600000 ? 3600000 : (long)ms;
}

/* Milliseconds until a timer of ours is due, or -1 for none. */
static long next_wait_ms(const errq_client_t *c, const struct tick *t, uint64_t outcome_due)
{
	const struct errq_sender *s = &c->snd;
	uint64_t due = UINT64_MAX;

	if (s->p_count && (t->spooling || s->b_count < c->cfg.max_inflight)) {
		uint64_t linger = t->spooling ? (uint64_t)ERRQ__SPOOL_LINGER_MS * ERRQ_NS_PER_MS
					      : c->linger_ns;
		due = t->flushing || (t->spooling && t->pressure) ? t->now : s->p_head->enq_ns + linger;
	}
	if (s->spool.retrying && s->spool.retry_ns < due)
		due = s->spool.retry_ns; /* spills may resume */
	if (s->circuit == ERRQ__CIRCUIT_OPEN) {
		if (s->open_until_ns < due)
			due = s->open_until_ns;
	} else if (!s->stream && (s->b_count || s->r_count) && s->next_connect_ns < due) {
		due = s->next_connect_ns;
	}
	if (outcome_due < due)
		due = outcome_due;
	if (due == UINT64_MAX)
		return -1;
	return due <= t->now ? 0 : ns_to_ms_ceil(due - t->now);
}

/* Sleeps on wake_cv for up to ms (< 0: until signalled), unless something arrived since the
 * top of the loop.  spooling: a half-full queue would go to disk: wake when it gets there. */
static void sleep_cv(errq_client_t *c, long ms, bool spooling)
{
	struct timespec ts;
	if (ms >= 0)
		errq__deadline_after_ms(&ts, ms);
	pthread_mutex_lock(&c->mu);
	if (!c->q_head && !c->stop && c->flush_requests == c->snd.flush_seen &&
	    c->o_windows == c->snd.o_windows_seen && c->spill_requests == c->snd.spill_seen) {
		c->sender_waiting = true;
		c->sender_lingers = c->snd.p_count > 0 && ms >= 0;
		c->sender_spools = c->sender_lingers && spooling;
		if (ms < 0)
			pthread_cond_wait(&c->wake_cv, &c->mu);
		else
			pthread_cond_timedwait(&c->wake_cv, &c->mu, &ts);
		c->sender_waiting = false;
		c->sender_lingers = c->sender_spools = false;
	}
	pthread_mutex_unlock(&c->mu);
}

/* The end of the thread: tear down gRPC state, spool what can be, drop what is left. */
static void sender_exit(errq_client_t *c)
{
	struct errq_sender *s = &c->snd;
	size_t n = 0, cost = 0, spooled = 0, spooled_cost = 0;
	uint64_t calls = 0;

	if (s->stream) {
		stream_fail(c, NULL);
		while (s->stream->ops > 0) {
			gpr_timespec forever = gpr_inf_future(GPR_CLOCK_MONOTONIC);
			grpc_event ev = grpc_completion_queue_next(s->cq, forever, NULL);
			if (ev.type != GRPC_OP_COMPLETE)
				break;
			on_event(c, &ev);
		}
		stream_free(c);
	}
	grpc_channel_destroy(s->ch);
	s->ch = NULL;
	grpc_completion_queue_shutdown(s->cq);
	while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(s->cq);
	s->cq = NULL;
	if (s->have_auth) {
		grpc_slice_unref(s->auth_md.key);
		grpc_slice_unref(s->auth_md.value);
		s->have_auth = false;
	}

	errq__outcomes_tick(c, errq_mono_ns(), true); /* the last counts, as a batch */
	pthread_mutex_lock(&c->mu);
	take_queue_locked(c);
	pthread_mutex_unlock(&c->mu);
	drop_replay(c);
	if (errq__spool_usable(&s->spool)) {
		while (s->p_head)
			form_batch(c, true); /* the window does not matter any more */
		s->spool.retry_ns = 0; /* the last chance: try even during a retry pause */
		s->spool.retrying = false;
		struct errq_batch *keep = NULL, **kt = &keep;
		while (s->b_head) {
			struct errq_batch *b = pop_made(c);
			if (errq__spool_write(c, b, true) == ERRQ__SPOOL_WRITTEN) {
				spooled += b->n_events;
				spooled_cost += b->cost;
				errq__batch_free(b);
			} else {
				*kt = b;
				kt = &b->next;
			}
		}
		s->b_head = keep; /* unwritable: dropped below */
	}

	pthread_mutex_lock(&c->mu);
	struct errq_qev *pending = s->p_head;
	struct errq_batch *batches = s->b_head;
	for (struct errq_qev *q = pending; q; q = q->next) {
		n++;
		cost += q->cost;
	}
	for (struct errq_batch *b = batches; b; b = b->next) {
		n += b->n_events;
		cost += b->cost;
		calls += b->n_calls;
	}
	s->p_head = s->p_tail = NULL;
	s->p_count = s->p_wire = 0;
	s->b_head = s->b_tail = NULL;
	s->b_count = s->b_outcome_batches = 0;
	c->st.spooled += spooled;
	c->st.dropped_closed += n;
	c->st.outcomes_dropped += calls;
	c->lost_at_close += n;
	c->connected = false;
	resolve_locked(c, n + spooled, cost + spooled_cost);
	pthread_mutex_unlock(&c->mu);

	free_qevs(pending);
	while (batches) {
		struct errq_batch *next = batches->next;
		errq__batch_free(batches);
		batches = next;
	}
	errq__spool_close(c);
}

void *errq__sender_main(void *arg)
{
	errq_client_t *c = arg;
	struct errq_sender *s = &c->snd;

	pthread_setname_np(pthread_self(), "errq-sender"); /* for top -H, perf, gdb */
	s->cq = grpc_completion_queue_create_for_next(NULL);
	if (c->cfg.token) {
		s->auth_md.key = grpc_slice_from_static_string("authorization");
		s->auth_md.value = grpc_slice_from_copied_string(c->cfg.token);
		s->have_auth = true;
	}
	errq__spool_open(c); /* disk I/O: here, never on the caller's thread */
	for (;;) {
		struct tick t = {.now = errq_mono_ns()};
		bool stop;

		pthread_mutex_lock(&c->mu);
		take_queue_locked(c);
		stop = c->stop;
		t.flushing = c->closing || c->flush_waiters > 0;
		bool closing = c->closing;
		t.spill = c->spill_waiters > 0;
		/* a waiting report counts as pressure: an event of more than half the byte
		 * budget can find it used up below half */
		t.pressure = c->held_count * 2 >= c->cfg.queue_capacity ||
			     c->held_bytes * 2 >= c->cfg.queue_bytes || t.spill;
		s->flush_seen = c->flush_requests;
		s->o_windows_seen = c->o_windows;
		s->spill_seen = c->spill_requests;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;

		uint64_t outcome_due = errq__outcomes_tick(c, t.now, false);
		if (closing && !s->o_final_done) {
			/* no record can arrive any more (o_closing): the last window goes now, so
			 * that close's flush delivers it */
			errq__outcomes_tick(c, t.now, true);
			s->o_final_done = true;
			pthread_mutex_lock(&c->mu);
			c->o_final_cut = true;
			pthread_mutex_unlock(&c->mu);
			publish_outcomes(c);
		}
		if (s->circuit == ERRQ__CIRCUIT_OPEN && t.now >= s->open_until_ns) {
			s->circuit = ERRQ__CIRCUIT_HALF_OPEN;
			publish_circuit(c);
		}
		/* to disk: while the circuit is open (making room by deleting the oldest files),
		 * and whenever the queue is half full while the spool has free room (the collector
		 * is away or slower than the reports: better on disk than refused; a batch already
		 * written on a live stream stays, it may be answered any moment, unless reports
		 * wait for room that only such batches hold) */
		errq__spool_tick(c, t.now);
		bool circuit_open = s->circuit == ERRQ__CIRCUIT_OPEN;
		bool could_spool = errq__spool_usable(&s->spool) && !s->spool.retrying &&
				   (circuit_open || !s->spool.full);
		t.spooling = could_spool && (circuit_open || t.pressure);
		while (batch_ready(c, &t))
			form_batch(c, t.spooling);
		if (t.spooling) {
			spool_out(c, !s->stream, circuit_open);
			if (t.spill && s->stream && still_pressed(c))
				spool_out(c, true, circuit_open);
		}
		if (s->circuit != ERRQ__CIRCUIT_OPEN)
			replay_fill(c);
		if (!s->stream && (s->b_count || s->r_count) && s->circuit != ERRQ__CIRCUIT_OPEN &&
		    t.now >= s->next_connect_ns)
			stream_open(c);
		stream_send_next(c);
		check_ack_timeout(c, t.now);

		struct errq_stream *st = s->stream;
		if (st && st->failed && st->ops == 0) {
			stream_failed(c);
			continue;
		}
		long wait = next_wait_ms(c, &t, outcome_due);
		if (st && (st->failed || s->b_count || s->r_count)) {
			/* a report that finds the queue full waits for this thread: look at the
			 * queue often while it may fill */
			long most = t.pressure && could_spool ? ERRQ__SPILL_POLL_MS : ERRQ__POLL_MS;
			poll_cq(c, wait < 0 || wait > most ? most : wait);
		} else {
			/* idle: collect what an idle stream completed, then sleep; with a stream
			 * open, wake now and then to notice that it ended */
			if (st && poll_cq(c, 0) > 0)
				continue;
			if (st && (wait < 0 || wait > ERRQ__IDLE_POLL_MS))
				wait = ERRQ__IDLE_POLL_MS;
			sleep_cv(c, wait, could_spool && !t.pressure);
		}
	}
	sender_exit(c);
	return NULL;
}
