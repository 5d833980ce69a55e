/* cli_stream.c: a server-streaming call on the gRPC C core, for `errq tail`.
 *
 * One completion queue, polled with short deadlines so that a stop flag set by a signal
 * handler is seen within CLI_STREAM_POLL_MS (the C core cannot be woken from a handler).
 * Three kinds of batch are out at once, each with its own tag:
 *   TAG_START:   SEND_INITIAL_METADATA + SEND_MESSAGE + SEND_CLOSE_FROM_CLIENT
 *   TAG_MD:      RECV_INITIAL_METADATA
 *   TAG_MSG:     RECV_MESSAGE, started again after each message
 * and, once a RECV_MESSAGE comes back empty (the server finished, the call failed or was
 * cancelled), TAG_STATUS: RECV_STATUS_ON_CLIENT.  The call has no deadline; --timeout only
 * bounds getting a connection.  Every started batch completes exactly once (also after
 * grpc_call_cancel), and the call and queue are released only when none is left. */
#include "cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

enum { TAG_START = 1, TAG_MD = 2, TAG_MSG = 4, TAG_STATUS = 8 };

struct cli_stream {
	struct cli_ctx *ctx;
	const char *method;
	grpc_completion_queue *cq;
	grpc_call *call;
	unsigned pending; /* TAG_* bits of the batches out */
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array md, trailing;
	grpc_status_code status;
	grpc_slice details;
	uint64_t opened_mono_ns;
	bool connected; /* initial metadata came, or the channel was seen READY */
	bool cancelled, ended;
	bool no_connection; /* cancelled by us: no connection within --timeout */
};

/* The tags are small integers, not pointers: one stream per queue. */
#define TAG(t) ((void *)(uintptr_t)(t))

static int start(struct cli_stream *s, const grpc_op *ops, size_t n, unsigned tag)
{
	if (grpc_call_start_batch(s->call, ops, n, TAG(tag), NULL) != GRPC_CALL_OK)
		return -1;
	s->pending |= tag;
	return 0;
}

static int start_recv(struct cli_stream *s)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	s->recv = NULL;
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &s->recv;
	return start(s, &op, 1, TAG_MSG);
}

static int start_status(struct cli_stream *s)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &s->trailing;
	op.data.recv_status_on_client.status = &s->status;
	op.data.recv_status_on_client.status_details = &s->details;
	return start(s, &op, 1, TAG_STATUS);
}

static void cancel(struct cli_stream *s)
{
	if (!s->cancelled && !s->ended) {
		grpc_call_cancel(s->call, NULL);
		s->cancelled = true;
	}
}

/* Waits for batches until none is out (after a cancel, they all come back soon). */
static void drain(struct cli_stream *s)
{
	while (s->pending) {
		grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			break;
		unsigned tag = (unsigned)(uintptr_t)ev.tag;
		s->pending &= ~tag;
		if (tag == TAG_MSG && s->recv) {
			grpc_byte_buffer_destroy(s->recv);
			s->recv = NULL;
		}
		if (tag == TAG_STATUS)
			s->ended = true;
	}
}

void cli_stream_close(struct cli_stream *s)
{
	if (!s)
		return;
	if (s->call) {
		if (s->pending & ~(unsigned)TAG_STATUS || !s->ended)
			cancel(s);
		drain(s);
		grpc_call_unref(s->call);
	}
	if (s->cq) {
		grpc_completion_queue_shutdown(s->cq);
		while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
		       GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(s->cq);
	}
	if (s->send)
		grpc_byte_buffer_destroy(s->send);
	if (s->recv)
		grpc_byte_buffer_destroy(s->recv);
	grpc_metadata_array_destroy(&s->md);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_slice_unref(s->details);
	free(s);
}

int cli_stream_open(struct cli_ctx *ctx, const char *method, const ProtobufCMessage *req, struct cli_stream **out)
{
	struct cli_stream *s = calloc(1, sizeof(*s));
	grpc_op ops[3];
	*out = NULL;
	if (!s) {
		cli_error("out of memory");
		return CLI_EXIT_USAGE;
	}
	s->ctx = ctx;
	s->method = method;
	grpc_metadata_array_init(&s->md);
	grpc_metadata_array_init(&s->trailing);
	s->details = grpc_empty_slice();
	s->opened_mono_ns = errq_mono_ns();
	if (!cli_channel(ctx)) {
		cli_error("cannot create a channel to %s: out of memory", ctx->args->addr);
		goto fail;
	}
	s->cq = grpc_completion_queue_create_for_next(NULL);
	s->send = errq_bb_from_msg(req);
	/* no deadline: a tail runs until it is stopped or the collector goes away */
	s->call = grpc_channel_create_call(ctx->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
					   grpc_slice_from_static_string(method), NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (!s->cq || !s->send || !s->call) {
		cli_error("cannot call %s on collector at %s: out of memory", cli_short_method(method),
			  ctx->args->addr);
		goto fail;
	}
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = ctx->n_md;
	ops[0].data.send_initial_metadata.metadata = ctx->n_md ? &ctx->auth_md : NULL;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	if (start(s, ops, 3, TAG_START))
		goto fail_start;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &s->md;
	if (start(s, ops, 1, TAG_MD) || start_recv(s))
		goto fail_start;
	*out = s;
	return 0;
fail_start:
	cli_error("cannot call %s on collector at %s: the call did not start", cli_short_method(method),
		  ctx->args->addr);
fail:
	cli_stream_close(s);
	return CLI_EXIT_UNREACHABLE;
}

/* The error for a stream that ended without being stopped; returns the exit code. */
static int ended(struct cli_stream *s)
{
	struct cli_ctx *ctx = s->ctx;
	char det[512], tmo[32];
	size_t dl = GRPC_SLICE_LENGTH(s->details);
	if (dl >= sizeof(det))
		dl = sizeof(det) - 1;
	memcpy(det, GRPC_SLICE_START_PTR(s->details), dl);
	det[dl] = '\0';
	cli_one_line(det);

	if (s->no_connection) {
		cli_error("cannot reach collector at %s: no connection within %s", ctx->args->addr,
			  cli_fmt_ms(tmo, sizeof(tmo), ctx->args->timeout_ms));
		return CLI_EXIT_UNREACHABLE;
	}
	if (s->connected) {
		/* errqd's shutdown cancels every call (gRPC's "Cancelling all calls"): one line
		 * of errq's own for it, not gRPC's text */
		bool shutdown = s->status == GRPC_STATUS_OK ||
				(s->status == GRPC_STATUS_UNAVAILABLE && strcasestr(det, "cancelling all calls"));
		if (shutdown) {
			cli_error("collector at %s shut down; %s ended", ctx->args->addr,
				  !strcmp(cli_short_method(s->method), "Tail") ? "tail" : "the stream");
			return CLI_EXIT_UNREACHABLE;
		}
		switch (s->status) {
		case GRPC_STATUS_UNAVAILABLE:
		case GRPC_STATUS_CANCELLED:
		case GRPC_STATUS_UNKNOWN:
		case GRPC_STATUS_INTERNAL: {
			char reason[256];
			if (*det) {
				cli_reach_reason(det, reason, sizeof(reason));
			} else {
				errq_snprintf(reason, sizeof(reason), "%s", errq_status_name(s->status));
				for (char *p = reason; *p; p++)
					*p = *p == '_' ? ' ' : (char)tolower((unsigned char)*p);
			}
			cli_error("lost the collector at %s: %s", ctx->args->addr, reason);
			return CLI_EXIT_UNREACHABLE;
		}
		default:
			break;
		}
	}
	if (s->status == GRPC_STATUS_OK) {
		cli_error("collector at %s ended the stream", ctx->args->addr);
		return CLI_EXIT_UNREACHABLE;
	}
	return cli_report_status(ctx, s->method, s->status, det);
}

enum cli_stream_next cli_stream_next(struct cli_stream *s, const ProtobufCMessageDescriptor *desc,
				     ProtobufCMessage **msg, volatile const sig_atomic_t *stop, int *exit_code)
{
	*msg = NULL;
	*exit_code = 0;
	for (;;) {
		if (*stop && !s->ended) {
			cancel(s);
			drain(s);
			return CLI_STREAM_STOPPED;
		}
		if (s->ended && !s->pending) {
			*exit_code = ended(s);
			return CLI_STREAM_ENDED;
		}
		if (!s->connected && !s->cancelled) {
			if (grpc_channel_check_connectivity_state(s->ctx->ch, 0) == GRPC_CHANNEL_READY) {
				s->connected = true;
			} else if (errq_mono_ns() - s->opened_mono_ns >=
				   (uint64_t)s->ctx->args->timeout_ms * ERRQ_NS_PER_MS) {
				s->no_connection = true;
				cancel(s);
			}
		}
		grpc_event ev = grpc_completion_queue_next(s->cq, errq_deadline_ms(CLI_STREAM_POLL_MS), NULL);
		if (ev.type == GRPC_QUEUE_TIMEOUT)
			continue;
		if (ev.type != GRPC_OP_COMPLETE) {
			cli_error("the completion queue of %s failed", cli_short_method(s->method));
			*exit_code = CLI_EXIT_UNREACHABLE;
			cancel(s);
			drain(s);
			return CLI_STREAM_ENDED;
		}
		unsigned tag = (unsigned)(uintptr_t)ev.tag;
		s->pending &= ~tag;
		switch (tag) {
		case TAG_START:
			break; /* a failed send shows as an empty RECV_MESSAGE and a status */
		case TAG_MD:
			if (ev.success)
				s->connected = true;
			break;
		case TAG_STATUS:
			s->ended = true;
			break;
		case TAG_MSG:
			if (!s->recv) {
				/* the server is done, or the call failed: the status says which */
				if (!(s->pending & TAG_STATUS) && !s->ended && start_status(s)) {
					cli_error("cannot finish %s", cli_short_method(s->method));
					*exit_code = CLI_EXIT_UNREACHABLE;
					cancel(s);
					drain(s);
					return CLI_STREAM_ENDED;
				}
				break;
			}
			s->connected = true;
			grpc_slice sl = errq_bb_flatten(s->recv);
			grpc_byte_buffer_destroy(s->recv);
			s->recv = NULL;
			*msg = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
			grpc_slice_unref(sl);
			if (!*msg || start_recv(s)) {
				if (*msg)
					protobuf_c_message_free_unpacked(*msg, NULL);
				*msg = NULL;
				cli_error("cannot decode a message of collector at %s on %s", s->ctx->args->addr,
					  cli_short_method(s->method));
				*exit_code = CLI_EXIT_UNREACHABLE;
				cancel(s);
				drain(s);
				return CLI_STREAM_ENDED;
			}
			return CLI_STREAM_MSG;
		}
	}
}
