/* tail.c: see tail.h.
 *
 * Threads and locks: the writer calls tail_publish; each subscriber's completions (send,
 * close) run on its call's queue thread; h->mu guards the list of subscribers and is taken
 * before a subscriber's mu, never after.  A subscriber holds one reference for its close op,
 * one for being listed in the hub and one per send in flight; the last one frees it. */
#include "tail.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "errq/v1/query.pb-c.h"
#include "errq_grpc.h"
#include "errq_pb.h"
#include "errq_log.h"
#include "errq_str.h"
#include "ingest.h"
#include "storage.h"
#include "svc_common.h"
#include "transport.h"

struct tail_sub {
	pthread_mutex_t mu;
	int refs;
	struct tail_hub *hub;
	grpc_call *call;
	struct tail_sub *prev, *next; /* hub list, under hub->mu */
	bool listed, dead, sending;
	int cancelled;
	char *service, *environment, *fingerprint;   /* filters; NULL = any */
	char *error_type, *error_code, *task;        /* globs as svc_glob makes them; NULL = any */
	grpc_slice ring[TAIL_MAX_PENDING];
	size_t head, count, bytes;
	uint64_t dropped;
	grpc_byte_buffer *send_bb;
	struct tag send_tag, close_tag;
};

struct tail_hub {
	pthread_mutex_t mu;
	struct tail_sub *subs;
	atomic_size_t nsubs;
};

static char *dup_filter(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static void sub_free(struct tail_sub *t)
{
	while (t->count) {
		grpc_slice_unref(t->ring[t->head]);
		t->head = (t->head + 1) % TAIL_MAX_PENDING;
		t->count--;
	}
	if (t->send_bb)
		grpc_byte_buffer_destroy(t->send_bb);
	free(t->service);
	free(t->environment);
	free(t->error_type);
	free(t->error_code);
	free(t->task);
	free(t->fingerprint);
	grpc_call_unref(t->call);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void unlock_unref(struct tail_sub *t)
{
	int left = --t->refs;
	pthread_mutex_unlock(&t->mu);
	if (!left)
		sub_free(t);
}

static void unlist(struct tail_sub *t)
{
	struct tail_hub *h = t->hub;
	pthread_mutex_lock(&h->mu);
	pthread_mutex_lock(&t->mu);
	bool was = t->listed;
	if (was) {
		t->listed = false;
		if (t->prev)
			t->prev->next = t->next;
		else
			h->subs = t->next;
		if (t->next)
			t->next->prev = t->prev;
		atomic_fetch_sub(&h->nsubs, 1);
	}
	pthread_mutex_unlock(&h->mu);
	if (was)
		unlock_unref(t); /* the hub's reference */
	else
		pthread_mutex_unlock(&t->mu);
}

/* Under t->mu: sends the oldest queued event (with the drop count) if nothing is in flight. */
static void maybe_send(struct tail_sub *t)
{
	if (t->sending || t->dead || !t->count)
		return;
	grpc_slice ev = t->ring[t->head];
	t->head = (t->head + 1) % TAIL_MAX_PENDING;
	t->count--;
	t->bytes -= GRPC_SLICE_LENGTH(ev);
	/* TailMessage { Event event = 1; uint64 dropped = 2; } written by hand around the shared
	 * encoded event */
	size_t n = GRPC_SLICE_LENGTH(ev);
	grpc_slice msg = grpc_slice_malloc(n + 2 * (1 + ERRQ_PB_VARINT_MAX));
	struct errq_pb_buf w = errq_pb_buf_init(GRPC_SLICE_START_PTR(msg), GRPC_SLICE_LENGTH(msg));
	errq_pb_w_len(&w, 1, GRPC_SLICE_START_PTR(ev), n);
	if (t->dropped) {
		errq_pb_w_uint(&w, 2, t->dropped);
		t->dropped = 0;
	}
	grpc_slice_unref(ev);
	grpc_slice out = grpc_slice_sub(msg, 0, w.len); /* room for both fields: no overflow */
	grpc_slice_unref(msg);
	t->send_bb = grpc_raw_byte_buffer_create(&out, 1);
	grpc_slice_unref(out);
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = t->send_bb;
	ERRQ_TSAN_RELEASE(&t->send_tag);
	if (grpc_call_start_batch(t->call, &op, 1, &t->send_tag, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(t->send_bb);
		t->send_bb = NULL;
		t->dead = true;
		return;
	}
	t->sending = true;
	t->refs++;
}

static void on_send(void *arg, bool ok)
{
	struct tail_sub *t = arg;
	pthread_mutex_lock(&t->mu);
	t->sending = false;
	if (t->send_bb)
		grpc_byte_buffer_destroy(t->send_bb);
	t->send_bb = NULL;
	if (!ok)
		t->dead = true;
	maybe_send(t);
	unlock_unref(t);
}

static void on_close(void *arg, bool ok)
{
	struct tail_sub *t = arg;
	pthread_mutex_lock(&t->mu);
	t->dead = true;
	pthread_mutex_unlock(&t->mu);
	unlist(t);
	pthread_mutex_lock(&t->mu);
	unlock_unref(t); /* the close op's reference */
}

static void on_start(void *ctx, grpc_call *call, grpc_completion_queue *cq, grpc_slice req)
{
	struct tail_hub *h = ctx;
	Errq__V1__TailRequest *in =
	    errq__v1__tail_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	if (!in) {
		grpc_call_cancel_with_status(call, GRPC_STATUS_INVALID_ARGUMENT, "cannot decode TailRequest", NULL);
		grpc_call_unref(call);
		return;
	}
	char details[64];
	grpc_status_code st = svc_check_globs(in->error_type, in->error_code, in->task, details, sizeof(details));
	if (st != GRPC_STATUS_OK) {
		grpc_call_cancel_with_status(call, st, details, NULL);
		grpc_call_unref(call);
		errq__v1__tail_request__free_unpacked(in, NULL);
		return;
	}
	if (atomic_load(&h->nsubs) >= TAIL_MAX_SUBSCRIBERS) {
		grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many tail subscribers", NULL);
		grpc_call_unref(call);
		errq__v1__tail_request__free_unpacked(in, NULL);
		return;
	}
	struct tail_sub *t = calloc(1, sizeof(*t));
	if (!t) {
		grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "collector out of memory", NULL);
		grpc_call_unref(call);
		errq__v1__tail_request__free_unpacked(in, NULL);
		return;
	}
	pthread_mutex_init(&t->mu, NULL);
	t->hub = h;
	t->call = call;
	char type[SVC_GLOB_BUFSZ], code[SVC_GLOB_BUFSZ], task[SVC_GLOB_BUFSZ];
	svc_glob(in->error_type, type);
	svc_glob(in->error_code, code);
	svc_glob(in->task, task);
	t->service = dup_filter(in->service);
	t->environment = dup_filter(in->environment);
	t->error_type = dup_filter(type);
	t->error_code = dup_filter(code);
	t->task = dup_filter(task);
	t->fingerprint = dup_filter(in->fingerprint);
	/* a filter that could not be kept would widen the tail: refuse it instead */
	bool lost = (*in->service && !t->service) || (*in->environment && !t->environment) ||
		    (*type && !t->error_type) || (*code && !t->error_code) || (*task && !t->task) ||
		    (*in->fingerprint && !t->fingerprint);
	errq__v1__tail_request__free_unpacked(in, NULL);
	if (lost) {
		grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "collector out of memory", NULL);
		sub_free(t); /* unrefs the call */
		return;
	}
	t->send_tag = (struct tag){on_send, t};
	t->close_tag = (struct tag){on_close, t};
	t->refs = 1; /* the close op */
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[0].data.recv_close_on_server.cancelled = &t->cancelled;
	ERRQ_TSAN_RELEASE(&t->close_tag);
	if (grpc_call_start_batch(call, ops, 1, &t->close_tag, NULL) != GRPC_CALL_OK) {
		grpc_call_cancel(call, NULL);
		sub_free(t);
		return;
	}
	/* headers now, so the client knows the tail is live before the first event */
	pthread_mutex_lock(&t->mu);
	t->sending = true;
	t->refs++;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ERRQ_TSAN_RELEASE(&t->send_tag);
	if (grpc_call_start_batch(call, ops, 1, &t->send_tag, NULL) != GRPC_CALL_OK) {
		t->sending = false;
		t->refs--;
		t->dead = true;
	}
	pthread_mutex_unlock(&t->mu);

	pthread_mutex_lock(&h->mu);
	pthread_mutex_lock(&t->mu);
	if (!t->dead) {
		t->listed = true;
		t->refs++;
		t->next = h->subs;
		if (h->subs)
			h->subs->prev = t;
		h->subs = t;
		atomic_fetch_add(&h->nsubs, 1);
	}
	pthread_mutex_unlock(&t->mu);
	pthread_mutex_unlock(&h->mu);
}

/* What a subscriber's filters look at, from a batch's event or a stored row ("" for none). */
struct tail_fields {
	const char *service, *environment, *error_type, *error_code, *task, *fingerprint;
};

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static bool matches(const struct tail_sub *t, const struct tail_fields *f)
{
	if (t->service && strcmp(t->service, f->service) != 0)
		return false;
	if (t->environment && strcmp(t->environment, f->environment) != 0)
		return false;
	if (t->error_type && fnmatch(t->error_type, f->error_type, 0) != 0)
		return false;
	if (t->error_code && fnmatch(t->error_code, f->error_code, 0) != 0)
		return false;
	if (t->task && fnmatch(t->task, f->task, 0) != 0)
		return false;
	if (t->fingerprint && strcmp(t->fingerprint, f->fingerprint) != 0)
		return false;
	return true;
}

/* Under t->mu: queues a copy of enc (full: drops the oldest, counted) and sends.  A copy, not a
 * reference: the publisher's last unref of a shared slice and a sender still copying it out
 * on a completion-queue thread are ordered only by gRPC's refcount, which ThreadSanitizer
 * cannot see in Debian's uninstrumented libgrpc (integration_pg_tail_fleet under make
 * test-tsan reported it); a copy is handed over under t->mu alone.  A tail message is one
 * event, and copying it per subscriber costs what encoding it would not. */
static void enqueue(struct tail_sub *t, grpc_slice enc)
{
	size_t len = GRPC_SLICE_LENGTH(enc);
	while (t->count && (t->count == TAIL_MAX_PENDING || t->bytes + len > TAIL_MAX_PENDING_BYTES)) {
		t->bytes -= GRPC_SLICE_LENGTH(t->ring[t->head]);
		grpc_slice_unref(t->ring[t->head]);
		t->head = (t->head + 1) % TAIL_MAX_PENDING;
		t->count--;
		t->dropped++;
	}
	t->ring[(t->head + t->count) % TAIL_MAX_PENDING] = grpc_slice_from_copied_buffer(
	    (const char *)GRPC_SLICE_START_PTR(enc), len);
	t->count++;
	t->bytes += len;
	maybe_send(t);
}

/* Under h->mu: queues one event on every subscriber whose filters match it, encoded (by enc,
 * from arg) once, when the first one does. */
static void publish_one(struct tail_hub *h, const struct tail_fields *f, grpc_slice (*enc)(const void *arg),
			const void *arg)
{
	grpc_slice bytes;
	bool encoded = false;
	for (struct tail_sub *t = h->subs; t; t = t->next) {
		if (!matches(t, f))
			continue;
		if (!encoded) {
			bytes = enc(arg);
			encoded = true;
		}
		pthread_mutex_lock(&t->mu);
		enqueue(t, bytes);
		pthread_mutex_unlock(&t->mu);
	}
	if (encoded)
		grpc_slice_unref(bytes);
}

/* The committed event as an encoded errq.v1.Event (one reference for the caller). */
static grpc_slice encode_event(const void *arg)
{
	const struct ingest_event *ev = arg;
	const Errq__V1__TaskFailure *tf = ev->tf;
	Errq__V1__Event e = ERRQ__V1__EVENT__INIT;
	char *trunc[STORE_TRUNC_NBITS];
	e.event_id = tf->event_id;
	e.time_unix_nano = tf->time_unix_nano;
	e.received_at_unix_nano = ev->received_ns;
	e.service = tf->service;
	e.environment = tf->environment;
	e.release = tf->release;
	e.host = tf->host;
	e.task = tf->task;
	e.error_type = tf->error_type;
	e.error_code = tf->error_code;
	e.message = tf->message;
	e.n_frames = tf->n_frames - ev->v.frames_skip;
	e.frames = tf->frames + ev->v.frames_skip;
	e.n_details = ev->v.details_kept;
	e.details = (Errq__V1__Event__DetailsEntry **)tf->details; /* same layout */
	e.fingerprint = (char *)ev->v.fingerprint;
	e.attempt = tf->attempt;
	e.handled = tf->handled;
	for (int b = 0; b < STORE_TRUNC_NBITS; b++)
		if (ev->v.truncated & (1u << b))
			trunc[e.n_truncated++] = (char *)store_trunc_name(b);
	e.truncated = trunc;
	size_t n = errq__v1__event__get_packed_size(&e);
	grpc_slice s = grpc_slice_malloc(n);
	errq__v1__event__pack(&e, GRPC_SLICE_START_PTR(s));
	return s;
}

void tail_publish(void *ctx, const struct ingest_batch *list)
{
	struct tail_hub *h = ctx;
	if (!atomic_load(&h->nsubs))
		return;
	pthread_mutex_lock(&h->mu);
	for (const struct ingest_batch *b = list; b; b = b->next) {
		for (size_t i = 0; i < b->n_events; i++) {
			const struct ingest_event *ev = &b->events[i];
			if (!ev->tf || ev->result != INGEST_STORED)
				continue;
			const Errq__V1__TaskFailure *tf = ev->tf;
			struct tail_fields f = {tf->service,		  or_empty(tf->environment), tf->error_type,
						or_empty(tf->error_code), or_empty(tf->task),	     ev->v.fingerprint};
			publish_one(h, &f, encode_event, ev);
		}
	}
	pthread_mutex_unlock(&h->mu);
}

/* A stored event (another collector's, read back) as an encoded errq.v1.Event, as ListEvents
 * shows it: its frames and details are the row's extra blob, decoded. */
static grpc_slice encode_stored(const void *arg)
{
	const struct store_event *se = arg;
	Errq__V1__Event e = ERRQ__V1__EVENT__INIT;
	char *trunc[STORE_TRUNC_NBITS];
	e.event_id.data = (uint8_t *)se->event_id;
	e.event_id.len = 16;
	e.time_unix_nano = se->time_ns;
	e.received_at_unix_nano = se->received_ns;
	e.service = (char *)or_empty(se->service);
	e.environment = (char *)or_empty(se->environment);
	e.release = (char *)or_empty(se->release);
	e.host = (char *)or_empty(se->host);
	e.task = (char *)or_empty(se->task);
	e.error_type = (char *)or_empty(se->error_type);
	e.error_code = (char *)or_empty(se->error_code);
	e.message = (char *)or_empty(se->message);
	e.fingerprint = (char *)or_empty(se->fingerprint);
	e.attempt = se->attempt;
	e.handled = se->handled;
	for (int b = 0; b < STORE_TRUNC_NBITS; b++)
		if (se->truncated & (1u << b))
			trunc[e.n_truncated++] = (char *)store_trunc_name(b);
	e.truncated = trunc;
	Errq__V1__TaskFailure *x = NULL;
	if (se->extra && se->extra_len &&
	    (x = errq__v1__task_failure__unpack(NULL, se->extra_len, se->extra))) {
		e.n_frames = x->n_frames;
		e.frames = x->frames;
		e.n_details = x->n_details;
		e.details = (Errq__V1__Event__DetailsEntry **)x->details; /* same layout */
	}
	size_t n = errq__v1__event__get_packed_size(&e);
	grpc_slice s = grpc_slice_malloc(n);
	errq__v1__event__pack(&e, GRPC_SLICE_START_PTR(s));
	if (x)
		errq__v1__task_failure__free_unpacked(x, NULL);
	return s;
}

void tail_publish_stored(struct tail_hub *h, const struct store_event *e)
{
	if (!atomic_load(&h->nsubs))
		return;
	struct tail_fields f = {or_empty(e->service),	 or_empty(e->environment), or_empty(e->error_type),
				or_empty(e->error_code), or_empty(e->task),	   or_empty(e->fingerprint)};
	pthread_mutex_lock(&h->mu);
	publish_one(h, &f, encode_stored, e);
	pthread_mutex_unlock(&h->mu);
}

void tail_hub_add_dropped(struct tail_hub *h, uint64_t n)
{
	if (!n || !atomic_load(&h->nsubs))
		return;
	pthread_mutex_lock(&h->mu);
	for (struct tail_sub *t = h->subs; t; t = t->next) {
		pthread_mutex_lock(&t->mu);
		t->dropped += n;
		pthread_mutex_unlock(&t->mu);
	}
	pthread_mutex_unlock(&h->mu);
}

struct tail_hub *tail_hub_new(void)
{
	struct tail_hub *h = calloc(1, sizeof(*h));
	if (h)
		pthread_mutex_init(&h->mu, NULL);
	return h;
}

int tail_hub_register(struct tail_hub *h, struct transport *t)
{
	return transport_add_server_stream(t, "/errq.v1.Query/Tail", on_start, h);
}

size_t tail_hub_subscribers(struct tail_hub *h)
{
	return h ? atomic_load(&h->nsubs) : 0;
}

void tail_hub_free(struct tail_hub *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h);
}
