/* errq_grpc.h: small helpers over the gRPC C core shared by errqd, errq, errq-bench, liberrq
 * and the tests.  Every function here is safe to call from any thread. */
#ifndef ERRQ_GRPC_H
#define ERRQ_GRPC_H
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

/* Debian's gRPC is not built with ThreadSanitizer, so TSan cannot see that a thread which
 * fills a tag and starts an operation with it happens-before the completion-queue thread that
 * gets the tag back (the hand-off is inside gRPC).  ERRQ_TSAN_RELEASE(tag) just before handing
 * a tag to gRPC and ERRQ_TSAN_ACQUIRE(tag) where a queue returns it tell TSan so; without TSan
 * they are nothing.  They state an ordering gRPC guarantees; they hide no access of errq's. */
#if defined(__SANITIZE_THREAD__)
#define ERRQ_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ERRQ_UNDER_TSAN 1
#endif
#endif
#ifdef ERRQ_UNDER_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define ERRQ_TSAN_RELEASE(tag) __tsan_release((void *)(tag))
#define ERRQ_TSAN_ACQUIRE(tag) __tsan_acquire((void *)(tag))
#else
#define ERRQ_TSAN_RELEASE(tag) ((void)0)
#define ERRQ_TSAN_ACQUIRE(tag) ((void)0)
#endif

/* The whole message as one contiguous slice: a new reference when the buffer already is one
 * uncompressed slice, else a copy.  The caller unrefs the slice. */
grpc_slice errq_bb_flatten(grpc_byte_buffer *bb);

/* Packs m into a new byte buffer (the caller destroys it), or NULL when out of memory. */
grpc_byte_buffer *errq_bb_from_msg(const ProtobufCMessage *m);

const char *errq_status_name(grpc_status_code c);

/* A deadline ms milliseconds from now on the monotonic clock (ms < 0: infinite). */
gpr_timespec errq_deadline_ms(long ms);

/* errq's channel arguments, built in one place for every client of errqd (liberrq, the CLI,
 * the benchmarks, the tests): no retries (resends are errq's own, and gRPC's retries would
 * buffer every message sent), no BDP probing (flow-control windows stay bounded), and
 * replies up to ERRQ_CHANNEL_MAX_RECEIVE bytes.  A caller adds its own after these. */
#define ERRQ_CHANNEL_MAX_RECEIVE (16 << 20)
#define ERRQ_CHANNEL_MAX_EXTRA 8 /* extra arguments one channel may add */
struct errq_chan_arg {
	const char *key; /* a GRPC_ARG_* name (or a private one, to keep a channel apart) */
	int value;
};

/* A channel to "host:port" over creds (NULL: plaintext; the caller keeps and releases its
 * own) with errq's arguments and the n_extra of extra, which must not repeat errq's keys.
 * Returns NULL when n_extra > ERRQ_CHANNEL_MAX_EXTRA or gRPC refuses. */
grpc_channel *errq_channel_new_ex(const char *addr, grpc_channel_credentials *creds,
				  const struct errq_chan_arg *extra, size_t n_extra);

/* errq_channel_new_ex(addr, NULL, NULL, 0).  Returns NULL only on allocation failure. */
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
/* The same with n_md metadata entries sent with the request (an authorization header). */
int errq_unary_call_md(grpc_channel *ch, const char *method, const ProtobufCMessage *req, long timeout_ms,
		       const grpc_metadata *md, size_t n_md, struct errq_unary_result *r);
void errq_unary_result_free(struct errq_unary_result *r);
#endif
