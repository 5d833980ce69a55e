/* transport.h: the gRPC C-core server — completion queues, their threads, registered methods.
 *
 * Every operation started on a call carries a `struct tag`; a completion-queue thread calls
 * tag->fn(tag->arg, ok) for each completion.  Each call is bound to one queue and each queue
 * has exactly one thread, so all completions of one call run on one thread, one at a time;
 * other threads (the ingest writer) may still start operations on it, under the call's lock.
 *
 * Unary methods are served here entirely: the handler runs on the queue's thread and returns
 * a status and a response.  Streaming methods hand each new call to their service. */
#ifndef ERRQD_TRANSPORT_H
#define ERRQD_TRANSPORT_H
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdbool.h>
#include <stddef.h>

#define TRANSPORT_MAX_MESSAGE (4u << 20)   /* a larger message ends its call: RESOURCE_EXHAUSTED */
#define TRANSPORT_MAX_CQS 64
#define TRANSPORT_PREPOST_STREAM 32        /* requested calls waiting per queue, streaming methods */
#define TRANSPORT_PREPOST_UNARY 4          /* ... unary methods and unknown methods */
/* HTTP/2 receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE), bytes: what a client may
 * send on a stream beyond the message errqd is reading.  Each open stream keeps about this much
 * unread in gRPC's buffers (and the larger TCP read slices it pins), so it is paid per stream:
 * 1 000 busy streams held 11-14 MiB more at 16 KiB than at 4 KiB.  A message larger than the
 * window still passes: while a read is posted the C core widens the stream's window to the rest
 * of the message it is assembling (test integration_quota).  4 KiB cost no throughput, with
 * storage or without (docs/benchmarks.md, "errqd memory with 1 000 streams"). */
#define TRANSPORT_STREAM_LOOKAHEAD 4096
#define TRANSPORT_MAX_METHODS 32          /* Report, Health, Query (8), Alerts (10), headroom */
/* gRPC's resource quota for the server's buffers.  Not a lever for RSS: past it the C core's
 * destructive reclaimer resets streams (RST_STREAM ENHANCE_YOUR_CALM, the client sees
 * RESOURCE_EXHAUSTED): 16 MiB reset 324 of 1 000 busy streams in a 7 s run.  It stays above
 * what the transport holds (heaptrack, 1 000 busy streams with a 16 KiB window: 41 MiB of read
 * slices; the 4 KiB window leaves more room). */
#define TRANSPORT_MEMORY_QUOTA (48u << 20)
#define TRANSPORT_TURN_MS 1000            /* a queue thread wakes at least this often (liveness) */
#define TRANSPORT_MAX_STOP_HOOKS 4         /* transport_on_stop registrations */
#define TRANSPORT_STOP_REPLY_WAIT_MS 500   /* shutdown waits this long for asynchronous answers */
/* A call's metadata (headers) over this is refused by the C core (the call fails, the
 * connection and errqd go on): tokens and ids fit many times over; the default is 8 KiB. */
#define TRANSPORT_MAX_METADATA_BYTES (16u << 10)

struct tag {
	void (*fn)(void *arg, bool ok);
	void *arg;
};

struct transport;

/* A unary handler: decodes req, sets *resp (a new byte buffer the transport sends and
 * destroys) and returns GRPC_STATUS_OK, or returns an error status with details. */
typedef grpc_status_code (*unary_fn)(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details,
				     size_t dsz);
/* A new streaming call on queue cq (already bound to it).  The service owns `call` (one
 * reference) and must unref it. */
typedef void (*stream_fn)(void *ctx, grpc_call *call, grpc_completion_queue *cq, const grpc_metadata_array *md);
/* A unary call answered later: the handler (or whoever it hands the call to, on any thread)
 * must call transport_unary_reply exactly once. */
struct unary_call;
typedef void (*unary_async_fn)(void *ctx, struct unary_call *uc, grpc_slice req);
/* resp (may be NULL) is taken over and destroyed by the transport. */
void transport_unary_reply(struct unary_call *uc, grpc_status_code st, const char *details, grpc_byte_buffer *resp);
/* The call behind uc (for its auth context: auth_identity), valid until the reply. */
grpc_call *transport_unary_grpc_call(struct unary_call *uc);
/* The request metadata of uc (for auth_identity), valid until the reply. */
const grpc_metadata_array *transport_unary_md(struct unary_call *uc);
/* A server-streaming call with its one request message (req is valid during the call of fn
 * only; the service owns `call`, one reference, and must unref it). */
typedef void (*sstream_fn)(void *ctx, grpc_call *call, grpc_completion_queue *cq, grpc_slice req);

struct transport_opts {
	const char *listen; /* HOST:PORT */
	int cq_threads;
	int max_streams;    /* concurrent streams per connection */
	/* the listener's credentials (tls.h: TLS or insecure), taken over by transport_new
	 * whatever it returns (released by transport_start or transport_free); NULL: insecure.
	 * main.c attaches the auth processor to them first (auth_attach). */
	grpc_server_credentials *creds;
};

int transport_new(struct transport **out, const struct transport_opts *o);
/* Registrations happen before transport_start. */
int transport_add_unary(struct transport *t, const char *path, unary_fn fn, void *ctx);
int transport_add_stream(struct transport *t, const char *path, stream_fn fn, void *ctx);
int transport_add_unary_async(struct transport *t, const char *path, unary_async_fn fn, void *ctx);
int transport_add_server_stream(struct transport *t, const char *path, sstream_fn fn, void *ctx);
/* fn(ctx) runs once when the server begins to shut down (transport_shutdown_server, on the
 * caller's thread), after new calls are refused and before live ones are cancelled: a service
 * that answers calls from threads of its own stops them there and answers what it holds, so
 * that no reply comes after the queues are gone; the answers of asynchronous unary calls then
 * get up to TRANSPORT_STOP_REPLY_WAIT_MS to complete before the remaining calls are
 * cancelled.  Before transport_start; -1 when full. */
int transport_on_stop(struct transport *t, void (*fn)(void *ctx), void *ctx);
/* Binds, starts the server and its threads.  Returns the bound port, or -1 (err says why). */
int transport_start(struct transport *t, char *err, size_t errsz);
/* Stops accepting calls, cancels the live ones and waits for the server's shutdown; queue
 * threads keep running so that the services can finish their calls. */
void transport_shutdown_server(struct transport *t);
/* The number of completion-queue threads, and when thread i (0 <= i < count) last turned
 * (errq_mono_ns(); it turns at least every TRANSPORT_TURN_MS once started). */
int transport_cq_count(const struct transport *t);
uint64_t transport_cq_last_turn(const struct transport *t, int i);
/* Destroys the server, drains and joins the queue threads, frees t.  Accepts NULL. */
void transport_free(struct transport *t);
#endif
