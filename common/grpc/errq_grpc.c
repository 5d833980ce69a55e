#include "errq_grpc.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

#include "errq_str.h"
#include "errq_banned.h"

grpc_slice errq_bb_flatten(grpc_byte_buffer *bb)
{
	if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
	    bb->data.raw.slice_buffer.count == 1)
		return grpc_slice_ref(bb->data.raw.slice_buffer.slices[0]);
	grpc_byte_buffer_reader rd;
	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return grpc_empty_slice();
	grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	return s;
}

grpc_byte_buffer *errq_bb_from_msg(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	grpc_slice s = grpc_slice_malloc(n);
	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

const char *errq_status_name(grpc_status_code c)
{
	static const char *const names[] = {
	    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	    "UNAUTHENTICATED"};
	if ((unsigned)c < sizeof(names) / sizeof(names[0]))
		return names[c];
	return "UNKNOWN_STATUS";
}

gpr_timespec errq_deadline_ms(long ms)
{
	if (ms < 0)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

grpc_channel *errq_channel_new_ex(const char *addr, grpc_channel_credentials *creds,
				  const struct errq_chan_arg *extra, size_t n_extra)
{
	static const struct errq_chan_arg base[] = {
	    {GRPC_ARG_ENABLE_RETRIES, 0},
	    {GRPC_ARG_HTTP2_BDP_PROBE, 0},
	    {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, ERRQ_CHANNEL_MAX_RECEIVE},
	};
	enum { N_BASE = sizeof(base) / sizeof(base[0]) };
	grpc_arg args[N_BASE + ERRQ_CHANNEL_MAX_EXTRA];
	if (n_extra > ERRQ_CHANNEL_MAX_EXTRA)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < N_BASE + n_extra; i++, n++) {
		const struct errq_chan_arg *a = i < N_BASE ? &base[i] : &extra[i - N_BASE];
		memset(&args[n], 0, sizeof(args[n]));
		args[n].type = GRPC_ARG_INTEGER;
		args[n].key = (char *)a->key;
		args[n].value.integer = a->value;
	}
	grpc_channel_args ca = {n, args};
	grpc_channel_credentials *own = creds ? NULL : grpc_insecure_credentials_create();
	grpc_channel *ch = grpc_channel_create(addr, creds ? creds : own, &ca);
	if (own)
		grpc_channel_credentials_release(own);
	return ch;
}

grpc_channel *errq_channel_new(const char *addr)
{
	return errq_channel_new_ex(addr, NULL, NULL, 0);
}

void errq_unary_result_free(struct errq_unary_result *r)
{
	if (r->has_resp) {
		grpc_slice_unref(r->resp);
		r->has_resp = 0;
	}
}

int errq_unary_call(grpc_channel *ch, const char *method, const ProtobufCMessage *req, long timeout_ms,
		    struct errq_unary_result *r)
{
	return errq_unary_call_md(ch, method, req, timeout_ms, NULL, 0, r);
}

int errq_unary_call_md(grpc_channel *ch, const char *method, const ProtobufCMessage *req, long timeout_ms,
		       const grpc_metadata *md, size_t n_md, struct errq_unary_result *r)
{
	int rc = -1;
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_slice mslice = grpc_slice_from_static_string(method);
	grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, mslice, NULL,
						   errq_deadline_ms(timeout_ms), NULL);
	grpc_byte_buffer *sendbb = errq_bb_from_msg(req);
	grpc_byte_buffer *recvbb = NULL;
	grpc_metadata_array initial_md, trailing_md;
	grpc_metadata_array_init(&initial_md);
	grpc_metadata_array_init(&trailing_md);
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	memset(ops, 0, sizeof(ops));
	memset(r, 0, sizeof(*r));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = n_md;
	ops[0].data.send_initial_metadata.metadata = (grpc_metadata *)md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = sendbb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recvbb;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
	ops[5].data.recv_status_on_client.status = &r->status;
	ops[5].data.recv_status_on_client.status_details = &details;
	grpc_call_error ce = grpc_call_start_batch(call, ops, 6, (void *)1, NULL);
	if (ce != GRPC_CALL_OK) {
		errq_snprintf(r->details, sizeof(r->details), "cannot start call (error %d)", (int)ce);
		goto out;
	}
	grpc_event ev = grpc_completion_queue_pluck(cq, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE) {
		errq_snprintf(r->details, sizeof(r->details), "completion queue failed");
		goto out;
	}
	size_t dl = GRPC_SLICE_LENGTH(details);
	if (dl >= sizeof(r->details))
		dl = sizeof(r->details) - 1;
	memcpy(r->details, GRPC_SLICE_START_PTR(details), dl);
	r->details[dl] = '\0';
	if (recvbb) {
		r->resp = errq_bb_flatten(recvbb);
		r->has_resp = 1;
	}
	rc = 0;
out:
	if (recvbb)
		grpc_byte_buffer_destroy(recvbb);
	grpc_byte_buffer_destroy(sendbb);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial_md);
	grpc_metadata_array_destroy(&trailing_md);
	grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return rc;
}
