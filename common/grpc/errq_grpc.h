/* errq_grpc.h: small helpers over the gRPC C core shared by errqd, errq, errq-bench, liberrq
 * and the tests.  Every function here is safe to call from any thread. */
#ifndef ERRQ_GRPC_H
#define ERRQ_GRPC_H
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

/* The whole message as one contiguous slice: a new reference when the buffer already is one
 * uncompressed slice, else a copy.  The caller unrefs the slice. */
grpc_slice errq_bb_flatten(grpc_byte_buffer *bb);

/* Packs m into a new byte buffer (the caller destroys it), or NULL when out of memory. */
grpc_byte_buffer *errq_bb_from_msg(const ProtobufCMessage *m);

const char *errq_status_name(grpc_status_code c);

/* A deadline ms milliseconds from now on the monotonic clock (ms < 0: infinite). */
gpr_timespec errq_deadline_ms(long ms);

/* An insecure channel to "host:port" with errq's channel arguments (no retries, bounded
 * windows).  Returns NULL only on allocation failure. */
grpc_channel *errq_channel_new(const char *addr);

/* A blocking unary call on its own completion queue.  Returns 0 when the call completed
 * (inspect r->status), -1 on a local failure (r->details says what).  On status OK with a
 * message, r->resp holds it (unref with errq_unary_result_free). */
struct errq_unary_result {
	grpc_status_code status;
	char details[512];
	grpc_slice resp;
	int has_resp;
};
int errq_unary_call(grpc_channel *ch, const char *method, const ProtobufCMessage *req, long timeout_ms,
		    struct errq_unary_result *r);
void errq_unary_result_free(struct errq_unary_result *r);
#endif
