/* load.c: the client side of a benchmark session.
 *
 * Threads and ownership:
 *  - the caller of load_run ("main") owns the phases (ld->phase: WARMUP -> MEASURE -> DRAIN
 *    -> CANCEL), the /proc samples and the signals (sigtimedwait is its sleep);
 *  - each worker thread owns one completion queue and the streams bound to it; no other
 *    thread touches a stream.  A stream is driven by tags only: no call blocks per message.
 *  - shared: ld->phase (atomic, written by main; ld->t_drain is written before the release
 *    store of PH_DRAIN), ld->budget (atomic: events not yet reserved, --events mode), each
 *    worker's counters (atomic, written by their worker, summed by main at the measure
 *    boundary) and ld->workers_done.  Everything else of a worker is read by main only after
 *    pthread_join.
 *
 * A stream keeps a ring of records, one per batch: reserved (the client decided to send it,
 * its latency clock starts), sent, answered.  seq of record i is i + 1, so an answer finds its
 * record directly.  The bytes of a batch are built only when it is its turn to be sent: at
 * most ONE SEND_MESSAGE is outstanding per call (GRPC_CORE_NOTES trap #10), so a client's
 * memory is one batch per stream whatever --inflight says.  A send carries
 * GRPC_WRITE_BUFFER_HINT when another batch is queued behind it on the same stream: the
 * transport may then coalesce, and the following send (without the hint) flushes.  A worker
 * handles its completions in rounds (the one it waited for plus whatever else is ready, up to
 * LOAD_ROUND_MAX) and starts the sends they allow only at the end of the round, so answers
 * that arrive together turn into back-to-back sends: measured, this halves the client's CPU
 * per batch with batches of one event.  One RECV_MESSAGE is always posted.
 *
 * Closed loop: a stream keeps --inflight batches awaiting their answer; latency runs from
 * the reservation.  Open loop (--rate): stream j sends batch k at t_start + j*I/S + k*I
 * (I = streams * batch / rate); a batch that cannot go at its time because --inflight are
 * already out is sent as soon as one is answered, and its latency still runs from its
 * scheduled time (no coordinated omission).  Due batches never sent before the end are
 * counted as behind_batches.
 *
 * The end: in DRAIN no batch is reserved; a stream half-closes once every batch is answered,
 * then waits for its status.  After BENCH_DRAIN_TIMEOUT_NS (or a second signal) main moves
 * to CANCEL and the workers cancel their calls.  A worker exits when every stream has
 * completed all its operations; it then unrefs the calls and drains and destroys its queue. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "bench.h"
#include "errq/v1/collector.pb-c.h"
#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define LOAD_TICK_NS ((uint64_t)BENCH_TICK_MS * ERRQ_NS_PER_MS)
#define LOAD_OPS_MAX 2 /* operations in one grpc_call_start_batch */
#define LOAD_ROUND_MAX 256 /* completions handled before the sends they allow are started */
/* a batch due this close to the end may just not have been served yet: not "behind" */
#define LOAD_BEHIND_SLACK_NS (10 * ERRQ_NS_PER_MS)

enum tag_kind { TAG_SEND, TAG_RECV, TAG_STATUS, TAG_CLOSE };

struct stream;

struct tag {
	enum tag_kind kind;
	struct stream *s;
};

struct rec {
	uint64_t t0; /* latency clock start, monotonic ns */
	uint32_t n;  /* events */
	bool acked;
};

struct stream {
	struct worker *w;
	grpc_call *call;
	struct tag t_send, t_recv, t_status, t_close;
	int ops; /* batches started and not completed */
	bool opened, finished, md_sent, got_md, sending, close_sent, broken, cancelled;
	bool dirty; /* in w->dirty: may send or close at the end of this round */
	grpc_byte_buffer *send_bb, *recv_bb;
	grpc_metadata_array md_initial, md_trailing;
	grpc_status_code status;
	grpc_slice status_details;
	struct rec *ring;                 /* cfg->inflight records */
	/* records [r_head, r_send) are sent and await their answer (answered ones past r_head wait
	 * for the older ones), [r_send, r_tail) are reserved and not yet sent; the ring slot of
	 * record i is i % inflight */
	uint64_t r_head, r_send, r_tail;
	uint64_t sched_start, sched_k;    /* open loop: next batch k is due at sched_start + k*I */
};

struct counters {
	_Atomic uint64_t events_sent, batches_sent, events_accepted, duplicates, rejected, batches_acked;
};

struct worker {
	struct load *ld;
	int index;
	pthread_t th;
	grpc_completion_queue *cq;
	struct stream *streams;
	int nstreams, active, seen_phase;
	uint64_t next_slot; /* open loop: the next slot to serve (see schedule) */
	struct stream **dirty; /* nstreams entries: streams to flush at the end of a round */
	int ndirty;
	uint64_t last_sweep;
	struct gen *gen;
	struct hist *hist;
	struct counters c;
	_Atomic uint64_t last_ack_ns;
	uint64_t bad_status, mismatched, unacked, behind;
	char first_error[BENCH_ERR_MAX];
};

struct load {
	const struct load_cfg *cfg;
	_Atomic int phase;
	_Atomic int64_t budget;
	_Atomic int workers_done;
	uint64_t t_start, t_drain;
	uint64_t interval_ns; /* open loop: between two batches of one stream */
	struct worker *w;
	int nw;
};

struct snap {
	uint64_t events_sent, batches_sent, events_accepted, duplicates, rejected, batches_acked;
	uint64_t t, user_us, sys_us, client_us;
	bool have_server;
};

#define RELAXED memory_order_relaxed

static void count(_Atomic uint64_t *c, uint64_t n)
{
	/* only the owning worker writes: a relaxed load and store is enough */
	atomic_store_explicit(c, atomic_load_explicit(c, RELAXED) + n, RELAXED);
}

static void note(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct worker *w, const char *fmt, ...)
{
	if (w->first_error[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
	va_end(ap);
}

static int phase(const struct load *ld)
{
	return atomic_load_explicit(&ld->phase, memory_order_acquire);
}

/* ---- one stream ---- */

static void stream_fail(struct stream *s, const char *why, int code)
{
	struct worker *w = s->w;
	w->bad_status++;
	if (code)
		note(w, "%s (error %d)", why, code);
	else
		note(w, "%s", why);
	s->broken = true;
	if (!s->cancelled) {
		grpc_call_cancel(s->call, NULL);
		s->cancelled = true;
	}
}

static bool start(struct stream *s, const grpc_op *ops, size_t n, struct tag *t)
{
	grpc_call_error e = grpc_call_start_batch(s->call, ops, n, t, NULL);
	if (e != GRPC_CALL_OK) {
		stream_fail(s, "grpc_call_start_batch failed", (int)e);
		return false;
	}
	s->ops++;
	return true;
}

static void post_recv(struct stream *s)
{
	grpc_op ops[LOAD_OPS_MAX];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!s->got_md) { /* the first receive also takes the initial metadata */
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->md_initial;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &s->recv_bb;
	if (start(s, ops, n, &s->t_recv))
		s->got_md = true;
}

static bool over(const struct load *ld, int ph)
{
	return ph >= PH_DRAIN || (ld->cfg->events && atomic_load_explicit(&ld->budget, RELAXED) <= 0);
}

/* Clears ops (LOAD_OPS_MAX of them) for a send or the half-close, and puts the initial metadata
 * first while the stream has not sent it; returns how many ops are filled. */
static size_t send_ops_begin(const struct stream *s, grpc_op *ops)
{
	size_t n = 0;
	memset(ops, 0, LOAD_OPS_MAX * sizeof(*ops));
	if (!s->md_sent) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[n++].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
	}
	return n;
}

/* Half-closes once the stream has nothing left to send or await and the session is over. */
static void maybe_close(struct stream *s, int ph)
{
	if (s->close_sent || s->broken || s->sending || s->r_tail != s->r_head || !over(s->w->ld, ph))
		return;
	grpc_op ops[LOAD_OPS_MAX];
	size_t n = send_ops_begin(s, ops);
	ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	if (start(s, ops, n, &s->t_close)) {
		s->md_sent = true;
		s->close_sent = true;
	}
}

/* Starts the next send if none is outstanding: the batch's bytes are built here. */
static void kick_send(struct stream *s)
{
	if (s->sending || s->broken || s->r_send == s->r_tail)
		return;
	struct worker *w = s->w;
	const struct load_cfg *cfg = w->ld->cfg;
	struct rec *rc = &s->ring[s->r_send % (uint64_t)cfg->inflight];
	grpc_slice sl = payload_batch(cfg->pl, w->gen, s->r_send + 1, (int)rc->n, errq_now_ns());
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	grpc_op ops[LOAD_OPS_MAX];
	size_t n = send_ops_begin(s, ops);
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].flags = s->r_tail - s->r_send > 1 ? GRPC_WRITE_BUFFER_HINT : 0;
	ops[n++].data.send_message.send_message = bb;
	if (!start(s, ops, n, &s->t_send)) {
		grpc_byte_buffer_destroy(bb);
		return;
	}
	s->md_sent = true;
	s->sending = true;
	s->send_bb = bb;
	s->r_send++; /* before the completion: its answer may come first */
	count(&w->c.events_sent, rc->n);
	count(&w->c.batches_sent, 1);
}

/* Events for the next batch (fewer for the last one in --events mode), or 0. */
static int reserve(struct load *ld)
{
	int b = ld->cfg->batch;
	if (!ld->cfg->events)
		return b;
	int64_t left = atomic_fetch_sub_explicit(&ld->budget, b, RELAXED);
	if (left <= 0)
		return 0;
	return left < b ? (int)left : b;
}

/* Reserves what the loop allows, sends, closes when over. */
static void pump(struct stream *s)
{
	struct worker *w = s->w;
	struct load *ld = w->ld;
	const struct load_cfg *cfg = ld->cfg;
	if (s->broken || s->close_sent || s->finished)
		return;
	int ph = phase(ld);
	uint64_t cap = (uint64_t)cfg->inflight;
	if (ph < PH_DRAIN && s->r_tail - s->r_head < cap) {
		uint64_t now = errq_mono_ns();
		while (s->r_tail - s->r_head < cap) {
			uint64_t t0 = now;
			if (cfg->rate > 0) {
				t0 = s->sched_start + s->sched_k * ld->interval_ns;
				if (t0 > now)
					break;
			}
			int n = reserve(ld);
			if (!n)
				break;
			struct rec *rc = &s->ring[s->r_tail % cap];
			rc->t0 = t0;
			rc->n = (uint32_t)n;
			rc->acked = false;
			s->r_tail++;
			s->sched_k++;
		}
	}
	if (!s->dirty) {
		s->dirty = true;
		w->dirty[w->ndirty++] = s;
	}
}

/* The end of a round: sends (and closes) what the round's completions made possible.  Doing
 * it after the whole round rather than per completion lets a stream with several batches
 * ready send them back to back with GRPC_WRITE_BUFFER_HINT: fewer writes, fewer syscalls. */
static void flush(struct worker *w)
{
	int ph = phase(w->ld);
	for (int i = 0; i < w->ndirty; i++) {
		struct stream *s = w->dirty[i];
		s->dirty = false;
		if (s->broken || s->finished)
			continue;
		kick_send(s);
		maybe_close(s, ph);
	}
	w->ndirty = 0;
}

static void on_answer(struct stream *s, const Errq__V1__ReportResponse *r)
{
	struct worker *w = s->w;
	uint64_t cap = (uint64_t)w->ld->cfg->inflight;
	uint64_t idx = r->seq - 1;
	if (r->seq == 0 || idx < s->r_head || idx >= s->r_send || s->ring[idx % cap].acked) {
		w->mismatched++;
		note(w, "an answer with unexpected seq %llu", (unsigned long long)r->seq);
		return;
	}
	struct rec *rc = &s->ring[idx % cap];
	uint64_t now = errq_mono_ns();
	rc->acked = true;
	count(&w->c.events_accepted, r->accepted);
	count(&w->c.duplicates, r->duplicates);
	count(&w->c.rejected, r->n_rejected);
	count(&w->c.batches_acked, 1);
	atomic_store_explicit(&w->last_ack_ns, now, RELAXED);
	if ((uint64_t)r->accepted + r->duplicates + r->n_rejected != rc->n) {
		w->mismatched++;
		note(w, "answer to seq %llu counts %u+%u+%zu events, sent %u", (unsigned long long)r->seq,
		     r->accepted, r->duplicates, r->n_rejected, rc->n);
	}
	if (r->n_rejected)
		note(w, "rejected: %s", r->rejected[0]->reason ? r->rejected[0]->reason : "?");
	if (phase(w->ld) >= PH_MEASURE)
		hist_record(w->hist, (now > rc->t0 ? now - rc->t0 : 0) / 1000);
	while (s->r_head < s->r_send && s->ring[s->r_head % cap].acked) {
		s->ring[s->r_head % cap].acked = false;
		s->r_head++;
	}
}

static void on_recv(struct stream *s, bool ok)
{
	if (!ok || !s->recv_bb)
		return; /* the stream is over; its status follows */
	grpc_slice sl = errq_bb_flatten(s->recv_bb);
	grpc_byte_buffer_destroy(s->recv_bb);
	s->recv_bb = NULL;
	Errq__V1__ReportResponse *r =
	    errq__v1__report_response__unpack(NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
	grpc_slice_unref(sl);
	if (!r) {
		stream_fail(s, "cannot decode a ReportResponse", 0);
		return;
	}
	on_answer(s, r);
	errq__v1__report_response__free_unpacked(r, NULL);
	post_recv(s);
	pump(s);
}

static void on_send(struct stream *s, bool ok)
{
	grpc_byte_buffer_destroy(s->send_bb);
	s->send_bb = NULL;
	s->sending = false;
	if (!ok) {
		s->broken = true; /* the call is dead; its status says why */
		return;
	}
	pump(s);
}

static void on_status(struct stream *s)
{
	struct worker *w = s->w;
	if (s->status == GRPC_STATUS_OK || s->cancelled)
		return;
	w->bad_status++;
	char details[BENCH_ERR_MAX];
	size_t n = GRPC_SLICE_LENGTH(s->status_details);
	if (n >= sizeof(details))
		n = sizeof(details) - 1;
	memcpy(details, GRPC_SLICE_START_PTR(s->status_details), n);
	details[n] = '\0';
	note(w, "stream ended with %s: %s", errq_status_name(s->status), details);
}

static void maybe_finish(struct stream *s)
{
	if (s->finished || s->ops > 0)
		return;
	s->finished = true;
	s->w->active--;
	s->w->unacked += s->r_send - s->r_head;
}

static void dispatch(struct tag *t, bool ok)
{
	struct stream *s = t->s;
	s->ops--;
	switch (t->kind) {
	case TAG_SEND: on_send(s, ok); break;
	case TAG_RECV: on_recv(s, ok); break;
	case TAG_STATUS: on_status(s); break;
	case TAG_CLOSE: break;
	}
	maybe_finish(s);
}

static void stream_open(struct stream *s, grpc_channel *ch)
{
	struct worker *w = s->w;
	grpc_metadata_array_init(&s->md_initial);
	grpc_metadata_array_init(&s->md_trailing);
	s->status_details = grpc_empty_slice();
	s->t_send = (struct tag){TAG_SEND, s};
	s->t_recv = (struct tag){TAG_RECV, s};
	s->t_status = (struct tag){TAG_STATUS, s};
	s->t_close = (struct tag){TAG_CLOSE, s};
	s->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
					   grpc_slice_from_static_string(BENCH_METHOD), NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	s->opened = true;
	w->active++;
	if (!s->call) {
		w->bad_status++;
		note(w, "cannot create a call");
		s->broken = true;
		maybe_finish(s);
		return;
	}
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &s->md_trailing;
	op.data.recv_status_on_client.status = &s->status;
	op.data.recv_status_on_client.status_details = &s->status_details;
	if (start(s, &op, 1, &s->t_status)) {
		post_recv(s);
		pump(s);
	}
	maybe_finish(s);
}

static void stream_release(struct stream *s)
{
	if (!s->opened)
		return;
	if (s->call)
		grpc_call_unref(s->call);
	if (s->recv_bb)
		grpc_byte_buffer_destroy(s->recv_bb);
	if (s->send_bb)
		grpc_byte_buffer_destroy(s->send_bb);
	grpc_metadata_array_destroy(&s->md_initial);
	grpc_metadata_array_destroy(&s->md_trailing);
	grpc_slice_unref(s->status_details);
}

/* ---- one worker ---- */

/* Open loop: the due times of a worker's streams interleave in a fixed order (one interval
 * I for all, offsets ascending with the stream's position j), so slot q = k * n + j, batch k of
 * stream j, falls due at a time that grows with q.  The worker walks the slots in order,
 * pumps the stream of each due slot (which reserves every batch of that stream already due,
 * as --inflight allows; a stream at its limit catches up when an answer frees a place) and
 * sleeps until the next slot: exact, and O(1) per batch whatever the number of streams. */
static uint64_t slot_due(const struct worker *w, uint64_t q)
{
	return w->streams[q % (uint64_t)w->nstreams].sched_start + q / (uint64_t)w->nstreams * w->ld->interval_ns;
}

static uint64_t schedule(struct worker *w, uint64_t now)
{
	uint64_t due;
	while ((due = slot_due(w, w->next_slot)) <= now) {
		pump(&w->streams[w->next_slot % (uint64_t)w->nstreams]);
		w->next_slot++;
	}
	return due;
}

static void on_phase(struct worker *w, int was, int ph)
{
	struct load *ld = w->ld;
	if (was < PH_DRAIN && ph >= PH_DRAIN && ld->cfg->rate > 0 && !ld->cfg->events) {
		uint64_t end = ld->t_drain - LOAD_BEHIND_SLACK_NS;
		for (int i = 0; i < w->nstreams; i++) { /* due well before the end and never sent */
			struct stream *s = &w->streams[i];
			if (end >= s->sched_start) {
				uint64_t due = (end - s->sched_start) / ld->interval_ns + 1;
				if (due > s->sched_k)
					w->behind += due - s->sched_k;
			}
		}
	}
	if (ph == PH_CANCEL)
		for (int i = 0; i < w->nstreams; i++) {
			struct stream *s = &w->streams[i];
			if (s->call && !s->finished && !s->cancelled) {
				grpc_call_cancel(s->call, NULL);
				s->cancelled = true;
			}
		}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct load *ld = w->ld;
	const struct load_cfg *cfg = ld->cfg;
	for (int i = 0; i < w->nstreams; i++) {
		int global = w->index + i * ld->nw;
		stream_open(&w->streams[i], cfg->chans[global % cfg->nchans]);
	}
	w->seen_phase = phase(ld);
	w->last_sweep = errq_mono_ns();
	while (w->active > 0) {
		int ph = phase(ld);
		uint64_t now = errq_mono_ns();
		bool sweep = now - w->last_sweep >= LOAD_TICK_NS;
		if (ph != w->seen_phase) {
			on_phase(w, w->seen_phase, ph);
			w->seen_phase = ph;
			sweep = true;
		}
		if (sweep) { /* catches what no completion will: the phase, the shared budget */
			for (int i = 0; i < w->nstreams; i++)
				pump(&w->streams[i]);
			w->last_sweep = now;
		}
		uint64_t wake = now + LOAD_TICK_NS;
		if (cfg->rate > 0 && ph < PH_DRAIN) {
			uint64_t due = schedule(w, now);
			if (due < wake)
				wake = due;
		}
		flush(w);
		now = errq_mono_ns();
		int64_t wait_ns = wake > now ? (int64_t)(wake - now) : 0;
		gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(wait_ns, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(w->cq, dl, NULL);
		/* a round: this completion and whatever else is ready, then flush */
		for (int k = 0; ev.type == GRPC_OP_COMPLETE; k++) {
			dispatch(ev.tag, ev.success != 0);
			if (k + 1 == LOAD_ROUND_MAX)
				break;
			ev = grpc_completion_queue_next(w->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
		}
		flush(w);
	}
	for (int i = 0; i < w->nstreams; i++)
		stream_release(&w->streams[i]);
	grpc_completion_queue_shutdown(w->cq);
	while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(w->cq);
	w->cq = NULL;
	atomic_fetch_add(&ld->workers_done, 1);
	return NULL;
}

/* ---- the session ---- */

static void take_snap(const struct load *ld, struct snap *sn)
{
	memset(sn, 0, sizeof(*sn));
	for (int i = 0; i < ld->nw; i++) {
		const struct counters *c = &ld->w[i].c;
		sn->events_sent += atomic_load_explicit(&c->events_sent, RELAXED);
		sn->batches_sent += atomic_load_explicit(&c->batches_sent, RELAXED);
		sn->events_accepted += atomic_load_explicit(&c->events_accepted, RELAXED);
		sn->duplicates += atomic_load_explicit(&c->duplicates, RELAXED);
		sn->rejected += atomic_load_explicit(&c->rejected, RELAXED);
		sn->batches_acked += atomic_load_explicit(&c->batches_acked, RELAXED);
	}
	sn->t = errq_mono_ns();
	sn->client_us = self_cpu_us();
	if (ld->cfg->server_pid > 0)
		sn->have_server = proc_cpu_us(ld->cfg->server_pid, &sn->user_us, &sn->sys_us) == 0;
}

static void free_workers(struct load *ld)
{
	for (int i = 0; ld->w && i < ld->nw; i++) {
		struct worker *w = &ld->w[i];
		for (int j = 0; w->streams && j < w->nstreams; j++)
			free(w->streams[j].ring);
		free(w->streams);
		free(w->dirty);
		free(w->gen);
		free(w->hist);
	}
	free(ld->w);
	ld->w = NULL;
}

static int setup_workers(struct load *ld, char *err, size_t errsz)
{
	const struct load_cfg *cfg = ld->cfg;
	ld->nw = cfg->threads < cfg->streams ? cfg->threads : cfg->streams;
	ld->w = calloc((size_t)ld->nw, sizeof(*ld->w));
	if (!ld->w)
		goto oom;
	for (int i = 0; i < ld->nw; i++) {
		struct worker *w = &ld->w[i];
		w->ld = ld;
		w->index = i;
		w->nstreams = cfg->streams / ld->nw + (i < cfg->streams % ld->nw);
		w->streams = calloc((size_t)w->nstreams, sizeof(*w->streams));
		w->dirty = calloc((size_t)w->nstreams, sizeof(*w->dirty));
		w->gen = malloc(sizeof(*w->gen));
		w->hist = malloc(sizeof(*w->hist));
		if (!w->streams || !w->dirty || !w->gen || !w->hist)
			goto oom;
		gen_init(w->gen, cfg->seed, i, cfg->ids);
		hist_init(w->hist);
		for (int j = 0; j < w->nstreams; j++) {
			struct stream *s = &w->streams[j];
			int global = i + j * ld->nw;
			s->w = w;
			s->ring = calloc((size_t)cfg->inflight, sizeof(*s->ring));
			if (!s->ring)
				goto oom;
			if (cfg->rate > 0)
				s->sched_start =
				    ld->t_start + (uint64_t)global * ld->interval_ns / (uint64_t)cfg->streams;
		}
	}
	return 0;
oom:
	errq_snprintf(err, errsz, "out of memory for %d streams", cfg->streams);
	return -1;
}

int load_run(const struct load_cfg *cfg, struct load_result *r, char *err, size_t errsz)
{
	struct load ld;
	struct snap base, fin;
	int started = 0, rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&ld, 0, sizeof(ld));
	r->lat = malloc(sizeof(*r->lat));
	if (!r->lat) {
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	hist_init(r->lat);
	ld.cfg = cfg;
	bool warm = !cfg->events && cfg->warmup_ns > 0;
	atomic_init(&ld.phase, warm ? PH_WARMUP : PH_MEASURE);
	atomic_init(&ld.budget, (int64_t)cfg->events);
	atomic_init(&ld.workers_done, 0);
	if (cfg->rate > 0) {
		double iv = 1e9 * (double)cfg->streams * (double)cfg->batch / cfg->rate;
		ld.interval_ns = iv < 1 ? 1 : (uint64_t)iv;
	}
	ld.t_start = errq_mono_ns();
	if (setup_workers(&ld, err, errsz))
		goto out;

	uint64_t t_measure = ld.t_start + (warm ? cfg->warmup_ns : 0);
	uint64_t t_end = cfg->events ? UINT64_MAX : t_measure + cfg->duration_ns;
	uint64_t next_sample = 0, t_drain = 0, rss = 0, hwm = 0;
	take_snap(&ld, &base);
	for (started = 0; started < ld.nw; started++) {
		ld.w[started].cq = grpc_completion_queue_create_for_next(NULL);
		int e = pthread_create(&ld.w[started].th, NULL, worker_main, &ld.w[started]);
		if (e) {
			grpc_completion_queue_destroy(ld.w[started].cq);
			errq_snprintf(err, errsz, "cannot start a client thread: %s", strerror(e));
			atomic_store(&ld.phase, PH_CANCEL);
			goto join;
		}
	}
	for (;;) {
		uint64_t now = errq_mono_ns();
		int ph = phase(&ld);
		if (cfg->server_pid > 0 && now >= next_sample) {
			if (proc_mem_kib(cfg->server_pid, &rss, &hwm) == 0 && ph >= PH_MEASURE && rss > r->peak_rss_kib)
				r->peak_rss_kib = rss;
			next_sample = now + BENCH_SAMPLE_NS;
		}
		if (ph == PH_WARMUP && now >= t_measure) {
			take_snap(&ld, &base);
			atomic_store_explicit(&ld.phase, PH_MEASURE, memory_order_release);
		} else if (ph == PH_MEASURE && now >= t_end) {
			ld.t_drain = t_drain = now;
			atomic_store_explicit(&ld.phase, PH_DRAIN, memory_order_release);
		} else if (ph == PH_DRAIN && now - t_drain >= BENCH_DRAIN_TIMEOUT_NS) {
			fprintf(stderr, "errq-bench: answers still missing %llu s after the end: cancelling\n",
				(unsigned long long)(BENCH_DRAIN_TIMEOUT_NS / ERRQ_NS_PER_SEC));
			atomic_store_explicit(&ld.phase, PH_CANCEL, memory_order_release);
		}
		if (atomic_load(&ld.workers_done) == ld.nw)
			break;
		uint64_t wake = now + BENCH_SAMPLE_NS;
		if (ph == PH_WARMUP && t_measure < wake)
			wake = t_measure;
		if (ph <= PH_MEASURE && t_end < wake)
			wake = t_end;
		if (cfg->server_pid > 0 && next_sample < wake)
			wake = next_sample;
		uint64_t d = wake > now ? wake - now : 0;
		if (d < ERRQ_NS_PER_MS)
			d = ERRQ_NS_PER_MS;
		if (d > BENCH_SAMPLE_NS)
			d = BENCH_SAMPLE_NS;
		struct timespec ts = {(time_t)(d / ERRQ_NS_PER_SEC), (long)(d % ERRQ_NS_PER_SEC)};
		int sig = cfg->sigs ? sigtimedwait(cfg->sigs, NULL, &ts) : (nanosleep(&ts, NULL), -1);
		if (sig > 0) {
			r->interrupted = true;
			ph = phase(&ld);
			if (ph == PH_WARMUP)
				take_snap(&ld, &base);
			if (ph < PH_DRAIN) {
				fprintf(stderr, "errq-bench: interrupted: waiting for the answers (again to cancel)\n");
				ld.t_drain = t_drain = errq_mono_ns();
				atomic_store_explicit(&ld.phase, PH_DRAIN, memory_order_release);
			} else {
				atomic_store_explicit(&ld.phase, PH_CANCEL, memory_order_release);
			}
		}
	}
	rc = 0;
join:
	for (int i = 0; i < started; i++)
		pthread_join(ld.w[i].th, NULL);
	if (rc)
		goto out;
	take_snap(&ld, &fin);
	if (cfg->server_pid > 0 && proc_mem_kib(cfg->server_pid, &rss, &hwm) == 0) {
		if (rss > r->peak_rss_kib)
			r->peak_rss_kib = rss;
		r->hwm_kib = hwm;
	}
	uint64_t last_ack = 0;
	for (int i = 0; i < ld.nw; i++) {
		struct worker *w = &ld.w[i];
		uint64_t la = atomic_load(&w->last_ack_ns);
		if (la > last_ack)
			last_ack = la;
		hist_merge(r->lat, w->hist);
		r->bad_status += w->bad_status;
		r->mismatched += w->mismatched;
		r->unacked_batches += w->unacked;
		r->behind_batches += w->behind;
		if (!r->first_error[0] && w->first_error[0])
			errq_snprintf(r->first_error, sizeof(r->first_error), "%s", w->first_error);
	}
	uint64_t t_from = warm ? base.t : ld.t_start;
	uint64_t t_to = last_ack > t_from ? last_ack : fin.t;
	r->seconds = (double)(t_to - t_from) / 1e9;
	r->events_sent = fin.events_sent - base.events_sent;
	r->batches_sent = fin.batches_sent - base.batches_sent;
	r->events_accepted = fin.events_accepted - base.events_accepted;
	r->duplicates = fin.duplicates - base.duplicates;
	r->rejected = fin.rejected - base.rejected;
	r->batches_acked = fin.batches_acked - base.batches_acked;
	r->client_cpu_us = fin.client_us - base.client_us;
	r->have_server = base.have_server && fin.have_server;
	if (r->have_server) {
		r->server_user_us = fin.user_us - base.user_us;
		r->server_sys_us = fin.sys_us - base.sys_us;
	}
out:
	free_workers(&ld);
	return rc;
}

void load_result_free(struct load_result *r)
{
	free(r->lat);
	r->lat = NULL;
}

uint64_t load_errors(const struct load_result *r)
{
	return r->bad_status + r->mismatched + r->unacked_batches + r->rejected + r->duplicates;
}

/* ---- channels ---- */

grpc_channel *load_channel_new(const char *addr, int index)
{
	/* a private subchannel pool and a distinct argument: each channel its own TCP connection */
	const struct errq_chan_arg extra[] = {
	    {GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1},
	    {"errq.bench.channel", index},
	};
	return errq_channel_new_ex(addr, NULL, extra, sizeof(extra) / sizeof(extra[0]));
}

static const char *state_name(grpc_connectivity_state s)
{
	switch (s) {
	case GRPC_CHANNEL_IDLE: return "idle";
	case GRPC_CHANNEL_CONNECTING: return "connecting";
	case GRPC_CHANNEL_READY: return "ready";
	case GRPC_CHANNEL_TRANSIENT_FAILURE: return "transient failure";
	case GRPC_CHANNEL_SHUTDOWN: return "shut down";
	}
	return "unknown";
}

int load_connect(grpc_channel **chans, int n, char *err, size_t errsz)
{
	int rc = 0;
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	gpr_timespec deadline = errq_deadline_ms(BENCH_CONNECT_TIMEOUT_MS);
	for (int i = 0; i < n && rc == 0; i++) {
		grpc_connectivity_state st = grpc_channel_check_connectivity_state(chans[i], 1);
		while (st != GRPC_CHANNEL_READY) {
			if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) >= 0) {
				errq_snprintf(err, errsz, "connection %d not ready within %d ms (%s)", i,
					      BENCH_CONNECT_TIMEOUT_MS, state_name(st));
				rc = -1;
				break;
			}
			grpc_channel_watch_connectivity_state(chans[i], st, deadline, cq, NULL);
			grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
			st = grpc_channel_check_connectivity_state(chans[i], 1);
		}
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return rc;
}

void load_block_signals(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGINT);
	sigaddset(sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}
