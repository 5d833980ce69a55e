/* fake_collector.c: see fake_collector.h.  One thread drives one completion queue; every
 * call is served strictly in turn (read a message, answer it, read the next), so at most one
 * SEND is outstanding per call. */
#include "fake_collector.h"

#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

#include "errq_grpc.h"
#include "errq_banned.h"

enum { K_NEW, K_RECV, K_SEND, K_CLOSE };

struct fcall;
struct ftag {
	int kind;
	struct fcall *fc;
};

struct fcall {
	struct fake_collector *f;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *recv;
	grpc_byte_buffer *send;
	grpc_slice status_details;
	int cancelled;
	int ops;
	int index;
	bool md_sent;
	bool ended;
	struct ftag t_new, t_recv, t_send, t_close;
};

static struct fcall *fcall_new(struct fake_collector *f)
{
	struct fcall *fc = calloc(1, sizeof(*fc));
	if (!fc)
		abort();
	fc->f = f;
	grpc_metadata_array_init(&fc->md);
	fc->status_details = grpc_empty_slice();
	fc->t_new = (struct ftag){K_NEW, fc};
	fc->t_recv = (struct ftag){K_RECV, fc};
	fc->t_send = (struct ftag){K_SEND, fc};
	fc->t_close = (struct ftag){K_CLOSE, fc};
	return fc;
}

static void fcall_free(struct fcall *fc)
{
	if (fc->call)
		grpc_call_unref(fc->call);
	if (fc->recv)
		grpc_byte_buffer_destroy(fc->recv);
	if (fc->send)
		grpc_byte_buffer_destroy(fc->send);
	grpc_metadata_array_destroy(&fc->md);
	grpc_slice_unref(fc->status_details);
	free(fc);
}

static void request_call(struct fake_collector *f)
{
	pthread_mutex_lock(&f->mu);
	bool stopping = f->stopping;
	pthread_mutex_unlock(&f->mu);
	if (stopping)
		return;
	struct fcall *fc = fcall_new(f);
	if (grpc_server_request_registered_call(f->server, f->method, &fc->call, &fc->deadline,
						&fc->md, NULL, f->cq, f->cq, &fc->t_new) != GRPC_CALL_OK)
		fcall_free(fc);
}

/* Starts a batch; none once fake_stop began (the queue may be shut down already). */
static void start(struct fcall *fc, grpc_op *ops, size_t n, struct ftag *tag)
{
	pthread_mutex_lock(&fc->f->mu);
	bool stopping = fc->f->stopping;
	pthread_mutex_unlock(&fc->f->mu);
	if (stopping) {
		fc->ended = true;
		return;
	}
	if (grpc_call_start_batch(fc->call, ops, n, tag, NULL) != GRPC_CALL_OK)
		abort(); /* a test-server bug, not a client behaviour */
	fc->ops++;
}

static void post_recv(struct fcall *fc)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &fc->recv;
	start(fc, &op, 1, &fc->t_recv);
}

static void send_status(struct fcall *fc, grpc_status_code code, const char *details)
{
	grpc_op ops[2];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!fc->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		fc->md_sent = true;
	}
	grpc_slice_unref(fc->status_details);
	fc->status_details = grpc_slice_from_copied_string(details);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n].data.send_status_from_server.status_details = &fc->status_details;
	n++;
	fc->ended = true;
	start(fc, ops, n, &fc->t_send);
}

bool fake_has_id(struct fake_collector *f, const uint8_t id[16])
{
	for (size_t i = 0; i < f->n_ids; i++)
		if (memcmp(f->ids[i], id, 16) == 0)
			return true;
	return false;
}

/* Records a request; fills the response counts. */
static void record(struct fake_collector *f, Errq__V1__ReportRequest *req,
		   Errq__V1__ReportResponse *resp, Errq__V1__Rejection *rej, Errq__V1__Rejection **rejp)
{
	pthread_mutex_lock(&f->mu);
	if (f->n_requests < FAKE_MAX_REQUESTS)
		f->requests[f->n_requests] = req;
	else
		errq__v1__report_request__free_unpacked(req, NULL);
	f->n_requests++;
	f->outcome_records += req->n_outcomes;
	resp->seq = req->seq;
	for (size_t i = 0; i < req->n_failures; i++) {
		Errq__V1__TaskFailure *t = req->failures[i];
		f->events_received++;
		if (i == 0 && f->reject_first) {
			rej->index = 0;
			rej->reason = "missing_service: test rejection";
			*rejp = rej;
			resp->n_rejected = 1;
			resp->rejected = rejp;
			continue;
		}
		if (t->event_id.len == 16 && fake_has_id(f, t->event_id.data)) {
			resp->duplicates++;
		} else {
			if (t->event_id.len == 16 && f->n_ids < FAKE_MAX_IDS)
				memcpy(f->ids[f->n_ids++], t->event_id.data, 16);
			resp->accepted++;
		}
	}
	pthread_mutex_unlock(&f->mu);
}

static void on_message(struct fcall *fc)
{
	struct fake_collector *f = fc->f;
	grpc_slice s = errq_bb_flatten(fc->recv);
	grpc_byte_buffer_destroy(fc->recv);
	fc->recv = NULL;
	Errq__V1__ReportRequest *req =
	    errq__v1__report_request__unpack(NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	if (!req) {
		send_status(fc, GRPC_STATUS_INVALID_ARGUMENT, "cannot decode");
		return;
	}
	Errq__V1__ReportResponse resp = ERRQ__V1__REPORT_RESPONSE__INIT;
	Errq__V1__Rejection rej = ERRQ__V1__REJECTION__INIT, *rejp[1];
	record(f, req, &resp, &rej, rejp); /* "committed" before deciding to answer */
	if (fc->index < f->fail_first_calls) {
		send_status(fc, GRPC_STATUS_UNAVAILABLE, "fake collector: crashed before the ack");
		return;
	}
	if (fc->index < f->silent_first_calls) {
		post_recv(fc); /* keeps reading, never answers */
		return;
	}
	grpc_op ops[2];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!fc->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		fc->md_sent = true;
	}
	fc->send = errq_bb_from_msg(&resp.base);
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = fc->send;
	n++;
	start(fc, ops, n, &fc->t_send);
}

static void handle(struct fake_collector *f, struct ftag *t, int success)
{
	struct fcall *fc = t->fc;
	switch (t->kind) {
	case K_NEW:
		if (!success) { /* shutting down */
			fcall_free(fc);
			return;
		}
		request_call(f);
		pthread_mutex_lock(&f->mu);
		fc->index = (int)f->calls++;
		for (size_t i = 0; i < fc->md.count; i++) {
			const grpc_metadata *m = &fc->md.metadata[i];
			if (grpc_slice_str_cmp(m->key, "authorization") != 0)
				continue;
			size_t n = GRPC_SLICE_LENGTH(m->value);
			if (n >= sizeof(f->authorization))
				n = sizeof(f->authorization) - 1;
			memcpy(f->authorization, GRPC_SLICE_START_PTR(m->value), n);
			f->authorization[n] = '\0';
			f->calls_with_authorization++;
		}
		pthread_mutex_unlock(&f->mu);
		{
			grpc_op op;
			memset(&op, 0, sizeof(op));
			op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
			op.data.recv_close_on_server.cancelled = &fc->cancelled;
			start(fc, &op, 1, &fc->t_close);
		}
		post_recv(fc);
		break; /* nothing started when stopping: freed below */
	case K_RECV:
		fc->ops--;
		if (success && fc->recv)
			on_message(fc);
		else if (success && !fc->ended)
			send_status(fc, GRPC_STATUS_OK, ""); /* the client half-closed */
		break;
	case K_SEND:
		fc->ops--;
		if (fc->send) {
			grpc_byte_buffer_destroy(fc->send);
			fc->send = NULL;
		}
		if (success && !fc->ended)
			post_recv(fc);
		break;
	case K_CLOSE:
		fc->ops--;
		break;
	}
	if (fc->ops == 0)
		fcall_free(fc);
}

static void *serve(void *arg)
{
	struct fake_collector *f = arg;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(f->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		if (ev.tag == &f->shutdown_tag) { /* fake_stop destroys the server */
			pthread_mutex_lock(&f->mu);
			f->shutdown_done = true;
			pthread_cond_broadcast(&f->cv);
			pthread_mutex_unlock(&f->mu);
			continue;
		}
		handle(f, ev.tag, ev.success);
	}
	return NULL;
}

int fake_start(struct fake_collector *f, int port)
{
	char listen[64];
	grpc_init();
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->ids = calloc(FAKE_MAX_IDS, 16);
	if (!f->ids)
		return -1;
	f->server = grpc_server_create(NULL, NULL);
	f->method = grpc_server_register_method(f->server, "/errq.v1.Collector/Report", NULL,
						GRPC_SRM_PAYLOAD_NONE, 0);
	f->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(f->server, f->cq, NULL);
	grpc_server_credentials *creds;
	if (f->tls_cert_pem && f->tls_key_pem) {
		grpc_ssl_pem_key_cert_pair pair = {f->tls_key_pem, f->tls_cert_pem};
		grpc_ssl_server_certificate_config *cc =
		    grpc_ssl_server_certificate_config_create(NULL, &pair, 1);
		grpc_ssl_server_credentials_options *so =
		    grpc_ssl_server_credentials_create_options_using_config(
			GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, cc);
		creds = grpc_ssl_server_credentials_create_with_options(so); /* takes so and cc */
	} else {
		creds = grpc_insecure_server_credentials_create();
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	f->port = grpc_server_add_http2_port(f->server, listen, creds);
	grpc_server_credentials_release(creds);
	if (f->port <= 0)
		return -1;
	snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", f->port);
	grpc_server_start(f->server);
	for (int i = 0; i < 4; i++)
		request_call(f);
	return pthread_create(&f->thread, NULL, serve, f) ? -1 : 0;
}

void fake_stop(struct fake_collector *f)
{
	pthread_mutex_lock(&f->mu);
	f->stopping = true;
	pthread_mutex_unlock(&f->mu);
	grpc_server_shutdown_and_notify(f->server, f->cq, &f->shutdown_tag);
	grpc_server_cancel_all_calls(f->server);
	pthread_mutex_lock(&f->mu);
	while (!f->shutdown_done)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	grpc_server_destroy(f->server);
	f->server = NULL;
	grpc_completion_queue_shutdown(f->cq);
	pthread_join(f->thread, NULL); /* it drains the queue to GRPC_QUEUE_SHUTDOWN */
	grpc_completion_queue_destroy(f->cq);
	size_t n = f->n_requests < FAKE_MAX_REQUESTS ? f->n_requests : FAKE_MAX_REQUESTS;
	for (size_t i = 0; i < n; i++)
		errq__v1__report_request__free_unpacked(f->requests[i], NULL);
	free(f->ids);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	grpc_shutdown();
}
