/* transport.c: see transport.h.
 *
 * Threads: one thread per completion queue, started by transport_start, each looping on
 * grpc_completion_queue_next until GRPC_QUEUE_SHUTDOWN.  Requested calls are pre-posted per
 * (method, queue) and re-posted as each one arrives, until shutdown begins (t->stopping).
 * Shutdown: transport_shutdown_server() -> grpc_server_shutdown_and_notify on queue 0, the
 * stop hooks (transport_on_stop: services that answer calls from threads of their own, a
 * backup, end them and answer), then cancel_all_calls; pre-posted requests come back with
 * ok=0 and are freed; the shutdown tag wakes the caller.  transport_free() then destroys the
 * server, shuts each queue down and joins its thread. */
#include "transport.h"

#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errq_grpc.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"

enum method_kind { M_UNARY, M_UNARY_ASYNC, M_STREAM, M_SERVER_STREAM };

struct method {
	const char *path;
	void *handle; /* from grpc_server_register_method; NULL for the generic catch-all */
	enum method_kind kind;
	bool stream;  /* no request payload read up front (bidirectional) */
	unary_fn unary;
	unary_async_fn unary_async;
	stream_fn start;
	sstream_fn sstart;
	void *ctx;
};

struct transport {
	struct transport_opts o;
	grpc_server *server;
	int ncq;
	grpc_completion_queue *cq[TRANSPORT_MAX_CQS];
	pthread_t thread[TRANSPORT_MAX_CQS];
	bool threads_started[TRANSPORT_MAX_CQS];
	struct cq_turn {
		grpc_completion_queue *cq;
		_Atomic uint64_t ns; /* errq_mono_ns() of the thread's last turn (liveness) */
	} turn[TRANSPORT_MAX_CQS];
	struct method methods[TRANSPORT_MAX_METHODS];
	int nmethods;
	struct method generic;
	grpc_resource_quota *quota;
	atomic_bool stopping;
	bool server_started;
	struct tag shutdown_tag;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool shutdown_done;
	int async_open; /* asynchronous unary calls not yet answered and released (under mu) */
	struct {
		void (*fn)(void *ctx);
		void *ctx;
	} stop_hooks[TRANSPORT_MAX_STOP_HOOKS];
	int nstop_hooks;
};

/* A requested (pre-posted) call, and then the unary call it becomes. */
struct unary_call {
	struct tag tag;
	struct transport *t;
	struct method *m;
	int cqi;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_call_details details; /* generic requests only */
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	/* unary reply */
	grpc_byte_buffer *resp;
	grpc_slice status_details;
	int cancelled;
	bool async; /* handed to an unary_async handler: counted in t->async_open until freed */
};

static void on_request(void *arg, bool ok);

static void request_free(struct unary_call *r)
{
	if (r->async) {
		struct transport *t = r->t;
		pthread_mutex_lock(&t->mu);
		if (--t->async_open == 0)
			pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
	}
	if (r->payload)
		grpc_byte_buffer_destroy(r->payload);
	if (r->resp)
		grpc_byte_buffer_destroy(r->resp);
	grpc_metadata_array_destroy(&r->md);
	if (!r->m->handle)
		grpc_call_details_destroy(&r->details);
	grpc_slice_unref(r->status_details);
	if (r->call)
		grpc_call_unref(r->call);
	free(r);
}

static int post_request(struct transport *t, struct method *m, int cqi)
{
	struct unary_call *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->t = t;
	r->m = m;
	r->cqi = cqi;
	r->tag.fn = on_request;
	r->tag.arg = r;
	r->status_details = grpc_empty_slice();
	grpc_metadata_array_init(&r->md);
	grpc_call_error e;
	if (m->handle) {
		ERRQ_TSAN_RELEASE(&r->tag);
		e = grpc_server_request_registered_call(t->server, m->handle, &r->call, &r->deadline, &r->md,
							m->stream ? NULL : &r->payload, t->cq[cqi], t->cq[cqi],
							&r->tag);
	} else {
		grpc_call_details_init(&r->details);
		ERRQ_TSAN_RELEASE(&r->tag);
		e = grpc_server_request_call(t->server, &r->call, &r->details, &r->md, t->cq[cqi], t->cq[cqi],
					     &r->tag);
	}
	if (e != GRPC_CALL_OK) {
		LOG_ERROR("cannot request a call for %s: error %d", m->path, (int)e);
		request_free(r);
		return -1;
	}
	return 0;
}

static void on_unary_done(void *arg, bool ok)
{
	request_free(arg);
}

/* Answers a unary (or unknown-method) call with one batch. */
static void reply_unary(struct unary_call *r, grpc_status_code st, const char *details)
{
	grpc_op ops[4];
	int n = 0;
	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (r->resp && st == GRPC_STATUS_OK) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = r->resp;
	}
	r->status_details = grpc_slice_from_copied_string(details);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = st;
	ops[n++].data.send_status_from_server.status_details = st == GRPC_STATUS_OK ? NULL : &r->status_details;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &r->cancelled;
	r->tag.fn = on_unary_done;
	grpc_call *call = r->call; /* read before the release: from then on r is the queue thread's */
	ERRQ_TSAN_RELEASE(&r->tag);
	if (grpc_call_start_batch(call, ops, (size_t)n, &r->tag, NULL) != GRPC_CALL_OK) {
		LOG_WARN("cannot answer a call to %s", r->m->path);
		request_free(r);
	}
}

static void on_request(void *arg, bool ok)
{
	struct unary_call *r = arg;
	struct transport *t = r->t;
	if (!ok) { /* the server is shutting down: this request will never be matched */
		request_free(r);
		return;
	}
	if (!atomic_load(&t->stopping))
		post_request(t, r->m, r->cqi);
	if (r->m->kind == M_STREAM) {
		grpc_call *call = r->call;
		r->call = NULL;
		r->m->start(r->m->ctx, call, t->cq[r->cqi], &r->md);
		request_free(r);
		return;
	}
	if (r->m->kind == M_SERVER_STREAM) {
		grpc_call *call = r->call;
		r->call = NULL;
		if (!r->payload) {
			grpc_call_cancel_with_status(call, GRPC_STATUS_INVALID_ARGUMENT, "no request message", NULL);
			grpc_call_unref(call);
		} else {
			grpc_slice req = errq_bb_flatten(r->payload);
			r->m->sstart(r->m->ctx, call, t->cq[r->cqi], req);
			grpc_slice_unref(req);
		}
		request_free(r);
		return;
	}
	if (!r->m->handle) {
		char msg[256];
		size_t n = GRPC_SLICE_LENGTH(r->details.method);
		errq_snprintf(msg, sizeof(msg), "unknown method '%.*s'", (int)(n > 200 ? 200 : n),
			      (const char *)GRPC_SLICE_START_PTR(r->details.method));
		reply_unary(r, GRPC_STATUS_UNIMPLEMENTED, msg);
		return;
	}
	char details[512] = "";
	grpc_status_code st;
	if (!r->payload) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
		errq_snprintf(details, sizeof(details), "no request message");
	} else if (r->m->kind == M_UNARY_ASYNC) {
		pthread_mutex_lock(&t->mu);
		t->async_open++;
		pthread_mutex_unlock(&t->mu);
		r->async = true;
		grpc_slice req = errq_bb_flatten(r->payload);
		r->m->unary_async(r->m->ctx, r, req); /* replies later, through transport_unary_reply */
		grpc_slice_unref(req);
		return;
	} else {
		grpc_slice req = errq_bb_flatten(r->payload);
		st = r->m->unary(r->m->ctx, req, &r->resp, details, sizeof(details));
		grpc_slice_unref(req);
	}
	reply_unary(r, st, details);
}

static void *cq_thread(void *arg)
{
	struct cq_turn *turn = arg;
	for (;;) {
		/* wake at least every TRANSPORT_TURN_MS, idle or not, to show the thread turns */
		gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
						     gpr_time_from_millis(TRANSPORT_TURN_MS, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(turn->cq, deadline, NULL);
		atomic_store(&turn->ns, errq_mono_ns());
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct tag *tg = ev.tag;
		ERRQ_TSAN_ACQUIRE(tg);
		tg->fn(tg->arg, ev.success != 0);
	}
	return NULL;
}

static void on_server_shutdown(void *arg, bool ok)
{
	struct transport *t = arg;
	pthread_mutex_lock(&t->mu);
	t->shutdown_done = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

int transport_new(struct transport **out, const struct transport_opts *o)
{
	struct transport *t = calloc(1, sizeof(*t));
	if (!t) {
		if (o->creds)
			grpc_server_credentials_release(o->creds);
		return -1;
	}
	t->o = *o;
	t->ncq = o->cq_threads < 1 ? 1 : o->cq_threads > TRANSPORT_MAX_CQS ? TRANSPORT_MAX_CQS : o->cq_threads;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	grpc_arg args[8];
	memset(args, 0, sizeof(args));
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = TRANSPORT_MAX_MESSAGE;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS;
	args[1].value.integer = o->max_streams;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = (char *)GRPC_ARG_HTTP2_BDP_PROBE;
	args[2].value.integer = 0;
	args[3].type = GRPC_ARG_INTEGER;
	args[3].key = (char *)GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES;
	args[3].value.integer = TRANSPORT_STREAM_LOOKAHEAD;
	args[4].type = GRPC_ARG_INTEGER;
	args[4].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[4].value.integer = 64 << 20;
	/* gRPC's own buffers (HTTP/2 windows, message assembly) are bounded by a memory quota:
	 * under pressure chttp2 shrinks the windows it announces, so many streams cannot make
	 * the transport hold more than this */
	t->quota = grpc_resource_quota_create("errqd");
	grpc_resource_quota_resize(t->quota, TRANSPORT_MEMORY_QUOTA);
	args[5].type = GRPC_ARG_POINTER;
	args[5].key = (char *)GRPC_ARG_RESOURCE_QUOTA;
	args[5].value.pointer.p = t->quota;
	args[5].value.pointer.vtable = grpc_resource_quota_arg_vtable();
	/* the C core sets SO_REUSEPORT by default: a second errqd on a port this one holds
	 * would then start without an error and take half of the connections */
	args[6].type = GRPC_ARG_INTEGER;
	args[6].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
	args[6].value.integer = 0;
	args[7].type = GRPC_ARG_INTEGER;
	args[7].key = (char *)GRPC_ARG_MAX_METADATA_SIZE;
	args[7].value.integer = TRANSPORT_MAX_METADATA_BYTES;
	grpc_channel_args ca = {8, args};
	t->server = grpc_server_create(&ca, NULL);
	for (int i = 0; i < t->ncq; i++) {
		t->cq[i] = grpc_completion_queue_create_for_next(NULL);
		t->turn[i].cq = t->cq[i];
		grpc_server_register_completion_queue(t->server, t->cq[i], NULL);
	}
	t->generic.path = "(unknown method)";
	*out = t;
	return 0;
}

static struct method *add_method(struct transport *t, const char *path, enum method_kind kind, void *ctx)
{
	if (t->nmethods >= TRANSPORT_MAX_METHODS)
		return NULL;
	struct method *m = &t->methods[t->nmethods];
	memset(m, 0, sizeof(*m));
	m->path = path;
	m->kind = kind;
	m->stream = kind == M_STREAM;
	m->ctx = ctx;
	m->handle = grpc_server_register_method(t->server, path, NULL,
						m->stream ? GRPC_SRM_PAYLOAD_NONE : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	if (!m->handle)
		return NULL;
	t->nmethods++;
	return m;
}

int transport_add_unary(struct transport *t, const char *path, unary_fn fn, void *ctx)
{
	struct method *m = add_method(t, path, M_UNARY, ctx);
	return m ? (m->unary = fn, 0) : -1;
}

int transport_add_unary_async(struct transport *t, const char *path, unary_async_fn fn, void *ctx)
{
	struct method *m = add_method(t, path, M_UNARY_ASYNC, ctx);
	return m ? (m->unary_async = fn, 0) : -1;
}

int transport_add_stream(struct transport *t, const char *path, stream_fn fn, void *ctx)
{
	struct method *m = add_method(t, path, M_STREAM, ctx);
	return m ? (m->start = fn, 0) : -1;
}

int transport_add_server_stream(struct transport *t, const char *path, sstream_fn fn, void *ctx)
{
	struct method *m = add_method(t, path, M_SERVER_STREAM, ctx);
	return m ? (m->sstart = fn, 0) : -1;
}

grpc_call *transport_unary_grpc_call(struct unary_call *uc)
{
	return uc->call;
}

const grpc_metadata_array *transport_unary_md(struct unary_call *uc)
{
	return &uc->md;
}

void transport_unary_reply(struct unary_call *uc, grpc_status_code st, const char *details, grpc_byte_buffer *resp)
{
	uc->resp = resp;
	reply_unary(uc, st, details ? details : "");
}

int transport_on_stop(struct transport *t, void (*fn)(void *ctx), void *ctx)
{
	if (t->nstop_hooks >= TRANSPORT_MAX_STOP_HOOKS)
		return -1;
	t->stop_hooks[t->nstop_hooks].fn = fn;
	t->stop_hooks[t->nstop_hooks++].ctx = ctx;
	return 0;
}

int transport_start(struct transport *t, char *err, size_t errsz)
{
	grpc_server_credentials *creds = t->o.creds ? t->o.creds : grpc_insecure_server_credentials_create();
	t->o.creds = NULL; /* the server holds its own reference from here */
	int port = creds ? grpc_server_add_http2_port(t->server, t->o.listen, creds) : 0;
	if (creds)
		grpc_server_credentials_release(creds);
	if (port <= 0) {
		errq_snprintf(err, errsz, "cannot listen on '%s' (address in use or invalid%s)", t->o.listen,
			      creds ? "" : "; no credentials");
		return -1;
	}
	grpc_server_start(t->server);
	t->server_started = true;
	for (int i = 0; i < t->ncq; i++) {
		for (int k = 0; k < t->nmethods; k++) {
			int n = t->methods[k].stream ? TRANSPORT_PREPOST_STREAM : TRANSPORT_PREPOST_UNARY;
			for (int j = 0; j < n; j++)
				if (post_request(t, &t->methods[k], i)) {
					errq_snprintf(err, errsz, "cannot request calls for %s", t->methods[k].path);
					return -1;
				}
		}
		for (int j = 0; j < TRANSPORT_PREPOST_UNARY; j++)
			if (post_request(t, &t->generic, i)) {
				errq_snprintf(err, errsz, "cannot request generic calls");
				return -1;
			}
	}
	for (int i = 0; i < t->ncq; i++) {
		atomic_store(&t->turn[i].ns, errq_mono_ns());
		if (pthread_create(&t->thread[i], NULL, cq_thread, &t->turn[i])) {
			errq_snprintf(err, errsz, "cannot start completion-queue thread");
			return -1;
		}
		t->threads_started[i] = true;
	}
	return port;
}

void transport_shutdown_server(struct transport *t)
{
	if (!t->server_started || atomic_exchange(&t->stopping, true))
		return;
	t->shutdown_tag.fn = on_server_shutdown;
	t->shutdown_tag.arg = t;
	ERRQ_TSAN_RELEASE(&t->shutdown_tag);
	grpc_server_shutdown_and_notify(t->server, t->cq[0], &t->shutdown_tag);
	/* calls a service answers from a thread of its own end before the queues go */
	for (int i = 0; i < t->nstop_hooks; i++)
		t->stop_hooks[i].fn(t->stop_hooks[i].ctx);
	/* ... and their answers reach the clients before the calls are cancelled (bounded: a
	 * handler that never answers is cancelled with the rest) */
	if (t->threads_started[0]) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)TRANSPORT_STOP_REPLY_WAIT_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&t->mu);
		while (t->async_open > 0)
			if (pthread_cond_timedwait(&t->cv, &t->mu, &until))
				break;
		pthread_mutex_unlock(&t->mu);
	}
	grpc_server_cancel_all_calls(t->server);
	pthread_mutex_lock(&t->mu);
	while (!t->shutdown_done) {
		if (t->threads_started[0]) {
			pthread_cond_wait(&t->cv, &t->mu);
			continue;
		}
		/* no thread runs queue 0 (start failed half-way): pump it here */
		pthread_mutex_unlock(&t->mu);
		grpc_event ev = grpc_completion_queue_next(t->cq[0], gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_OP_COMPLETE) {
			ERRQ_TSAN_ACQUIRE(ev.tag);
			((struct tag *)ev.tag)->fn(((struct tag *)ev.tag)->arg, ev.success != 0);
		}
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
}

void transport_free(struct transport *t)
{
	if (!t)
		return;
	transport_shutdown_server(t);
	grpc_server_destroy(t->server);
	for (int i = 0; i < t->ncq; i++)
		grpc_completion_queue_shutdown(t->cq[i]);
	for (int i = 0; i < t->ncq; i++) {
		if (t->threads_started[i])
			pthread_join(t->thread[i], NULL);
		else
			cq_thread(&t->turn[i]); /* drain what is left, inline */
	}
	for (int i = 0; i < t->ncq; i++)
		grpc_completion_queue_destroy(t->cq[i]);
	grpc_resource_quota_unref(t->quota);
	if (t->o.creds) /* never started */
		grpc_server_credentials_release(t->o.creds);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
}

int transport_cq_count(const struct transport *t)
{
	return t->ncq;
}

uint64_t transport_cq_last_turn(const struct transport *t, int i)
{
	return atomic_load(&((struct transport *)t)->turn[i].ns);
}
