/* client_int.h: liberrq internals shared by the client sources and the unit tests; never
 * installed.  Every limit of the library is a named constant here, with its policy.
 * The threading protocol is written at the top of errq_client.c. */
#ifndef ERRQ_CLIENT_INT_H
#define ERRQ_CLIENT_INT_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "errq.h"
#include "errq_id.h"

/* ---- field limits, in bytes of UTF-8 after repair: the collector's own (docs/protocol.md),
 * so the client never sends what the collector would cut.  Policy: a longer value is cut at
 * a character boundary and the event counted in stats.truncated; never rejected.  Options
 * (service, environment, release, host) over their limit are refused by the setter. */
#define ERRQ__MAX_SERVICE_LEN 128
#define ERRQ__MAX_ENVIRONMENT_LEN 64
#define ERRQ__MAX_RELEASE_LEN 128
#define ERRQ__MAX_HOST_LEN 255
#define ERRQ__MAX_TASK_LEN 256
#define ERRQ__MAX_ERROR_TYPE_LEN 256
#define ERRQ__MAX_ERROR_CODE_LEN 128
#define ERRQ__MAX_FINGERPRINT_LEN 128
#define ERRQ__MAX_MESSAGE_LEN 8192
#define ERRQ__MAX_DETAIL_KEY_LEN 128
#define ERRQ__MAX_DETAIL_VALUE_LEN 1024
#define ERRQ__MAX_FRAME_STR_LEN 512 /* each of a frame's function, file and module */
#define ERRQ__MAX_DETAILS 64        /* per event; later ones are ignored (the first are kept) */
#define ERRQ__MAX_FRAMES 64         /* per event; the outermost give way (the innermost are kept) */
#define ERRQ__MAX_ADDR_LEN 1024     /* collector address */

/* ---- event and batch sizes.  An event with every field at its limit encodes to about
 * 185 KiB, under ERRQ__MAX_EVENT_BYTES (a unit test checks it), so no event is refused for
 * its size alone; errq_report() refuses one (ERRQ_ETOOBIG, stats.dropped_too_big) only when
 * its cost exceeds the whole byte budget.  A batch holds at least one event, so an event
 * bigger than max_batch_bytes travels alone, always under the collector's 4 MiB. */
#define ERRQ__MAX_EVENT_BYTES (256u * 1024)
#define ERRQ__BATCH_OVERHEAD 32u        /* ReportRequest.seq (<= 11) + batch_id (18), rounded up */
#define ERRQ__EVENT_OVERHEAD 256u       /* charged to the byte budget per event: struct + malloc */
#define ERRQ__ITEM_OVERHEAD 64u         /* charged per detail or frame */
#define ERRQ__WIRE_MAX_MESSAGE (4u << 20) /* the collector ends a call on a bigger message */

/* ---- option ranges (errq_options_set_* refuse values outside) and defaults */
#define ERRQ__QUEUE_CAPACITY_MIN 1u
#define ERRQ__QUEUE_CAPACITY_MAX 10000000u
#define ERRQ__QUEUE_CAPACITY_DEFAULT 10000u
#define ERRQ__QUEUE_BYTES_MIN (64u * 1024)
#define ERRQ__QUEUE_BYTES_MAX (1024u * 1024 * 1024)
#define ERRQ__QUEUE_BYTES_DEFAULT (8u << 20)
#define ERRQ__BATCH_EVENTS_MAX 10000u
#define ERRQ__BATCH_EVENTS_DEFAULT 500u
#define ERRQ__BATCH_BYTES_MIN (64u * 1024)
#define ERRQ__BATCH_BYTES_MAX ERRQ__WIRE_MAX_MESSAGE
#define ERRQ__BATCH_BYTES_DEFAULT (1u << 20)
#define ERRQ__LINGER_MS_MAX 60000u
#define ERRQ__LINGER_MS_DEFAULT 50u
#define ERRQ__INFLIGHT_MAX 64u
#define ERRQ__INFLIGHT_DEFAULT 4u
#define ERRQ__BACKOFF_MS_MAX 3600000u
#define ERRQ__BACKOFF_INITIAL_MS_DEFAULT 100u
#define ERRQ__BACKOFF_MAX_MS_DEFAULT 30000u
#define ERRQ__DEFAULT_COLLECTOR "127.0.0.1:4770"

/* ---- background thread pacing.  While a stream has batches in flight the thread polls its
 * completion queue with deadlines of at most ERRQ__POLL_MS (a report cannot wake a completion
 * queue); otherwise it sleeps on a condition variable. */
#define ERRQ__POLL_MS 20
#define ERRQ__IDLE_POLL_MS 1000 /* an idle open stream is looked at this often (it may end) */
#define ERRQ__REPORT_METHOD "/errq.v1.Collector/Report"

struct errq_options {
	char *collector;
	char *service;
	char *environment;
	char *release;
	char *host;
	bool host_set; /* set (or cleared) by the caller: no host-name default */
	bool debug;
	size_t queue_capacity;
	size_t queue_bytes;
	size_t max_batch_events;
	size_t max_batch_bytes;
	unsigned linger_ms;
	unsigned max_inflight;
	unsigned backoff_initial_ms;
	unsigned backoff_max_ms;
};

struct errq_detail {
	char *key;
	char *value; /* NULL means "" */
};

struct errq_frame {
	char *function; /* each may be NULL */
	char *file;
	char *module;
	uint32_t line;
	bool in_app;
};

/* An event.  Owned by its builder until errq_report(), then by the client: first in the
 * queue (guarded by errq_client.mu), then by the sender thread, which frees it once it is
 * encoded into a batch.  Every string is a private copy, NULL when unset. */
struct errq_event {
	struct errq_event *next; /* queue link */
	uint64_t ordinal;        /* position in the report order, set by errq_report() */
	uint64_t enq_ns;         /* monotonic time of errq_report(), for the linger deadline */
	uint64_t time_ns;        /* Unix ns; 0 = stamped by errq_report() */
	uint8_t id[ERRQ_ID_LEN];
	char *service;
	char *environment;
	char *task;
	char *error_type;
	char *error_code;
	char *message;
	char *fingerprint;
	struct errq_detail *details;
	uint32_t n_details, cap_details;
	struct errq_frame *frames;
	uint32_t n_frames, cap_frames;
	uint32_t attempt;
	bool handled;
	bool truncated; /* some value was cut or dropped */
	size_t body;    /* encoded size of the strings, details and frames set so far */
	size_t wire;    /* set by errq_report(): exact size as one ReportRequest.failures entry */
	size_t cost;    /* set by errq_report(): what it is charged against the byte budget */
};

/* One encoded ReportRequest, kept until the collector answers its seq. */
struct errq_batch {
	struct errq_batch *next;
	uint64_t seq;
	uint64_t first_ordinal;
	size_t n_events;
	size_t cost;        /* sum of the events' costs, released on the answer */
	grpc_slice payload; /* the encoded message; every write refs it */
	uint64_t sent_gen;  /* generation of the stream it was last written to, 0 = never */
	unsigned writes;    /* times written, over all streams */
	bool counted_sent;  /* in stats.sent already (a write completed, or it was answered) */
};

/* The call state of one Report stream.  Freed only when no batch is outstanding on it. */
struct errq_stream {
	grpc_call *call;
	uint64_t gen;
	int ops;             /* grpc_call_start_batch()es not yet completed */
	bool send_busy;      /* a SEND_MESSAGE is outstanding (only one may be: trap #10) */
	bool recv_busy;      /* a RECV_MESSAGE is outstanding */
	bool md_sent;        /* SEND_INITIAL_METADATA went out with the first write */
	bool md_recv_posted; /* RECV_INITIAL_METADATA went with the first read */
	bool failed;         /* broken: send nothing more, cancel, reap when ops == 0 */
	bool status_received;
	const char *why;       /* why it failed (static); NULL when closing */
	uint64_t sending_seq;  /* batch of the outstanding write */
	grpc_byte_buffer *send_bb;
	grpc_byte_buffer *recv_bb;
	grpc_metadata_array init_md;
	grpc_metadata_array trail_md;
	grpc_status_code status;
	grpc_slice status_details;
};

/* State private to the background thread (never touched by another thread while it runs). */
struct errq_sender {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	struct errq_stream *stream; /* NULL when none is open */
	uint64_t gen;               /* streams opened so far */
	struct errq_event *p_head, *p_tail; /* taken from the queue, not yet batched, in order */
	size_t p_count;
	size_t p_wire;
	struct errq_batch *b_head, *b_tail; /* encoded, unanswered, in seq order */
	size_t b_count;
	uint64_t seq;
	unsigned fails;           /* consecutive streams that failed without an answer */
	uint64_t next_connect_ns; /* monotonic; no new stream before */
	uint64_t flush_seen;      /* client.flush_requests when last looked at */
	struct errq_idgen rng;    /* batch ids and jitter */
};

struct errq_client {
	/* immutable after errq_client_new() */
	struct errq_options cfg;
	size_t sz_service, sz_environment, sz_release, sz_host; /* encoded field sizes of cfg */
	uint64_t linger_ns;
	pid_t pid; /* creator's pid.  Fork safety (issue 6) goes in errq_report(): when getpid()
		    * differs, the child's copy is inert (its channel belongs to the parent), reports
		    * are dropped with their own counter, and idgen is reseeded. */

	pthread_mutex_t mu;
	pthread_cond_t wake_cv; /* the sender sleeps here: reports, flush and close signal it */
	pthread_cond_t done_cv; /* flushers sleep here: the sender broadcasts as events resolve */
	pthread_t thread;
	bool thread_started;
	bool grpc_inited;

	/* guarded by mu */
	struct errq_idgen idgen;
	struct errq_event *q_head, *q_tail; /* reported, not yet taken by the sender */
	size_t q_count;
	size_t q_wire;
	size_t held_count;     /* accepted and unresolved: queue + sender (capacity) */
	size_t held_bytes;     /* their cost (byte budget) */
	uint64_t next_ordinal; /* the next accepted event's ordinal */
	uint64_t sender_low;   /* lowest ordinal the sender holds, UINT64_MAX when none */
	uint64_t flush_requests;
	int flush_waiters;
	bool closing;        /* errq_report() refuses */
	bool stop;           /* the sender must exit */
	bool sender_waiting; /* the sender is asleep on wake_cv */
	bool connected;
	size_t lost_at_close;
	errq_stats_t st;

	/* the background thread's own */
	struct errq_sender snd;
};

/* errq_event.c */
/* Sizes as encoded by protobuf (exact for proto3, where empty strings are omitted). */
size_t errq__varint_size(uint64_t v);
size_t errq__str_field_size(const char *s); /* a string field with a one-byte tag */
/* Sets ev->wire and ev->cost for a report through c (service and context defaults). */
void errq__event_measure(const errq_client_t *c, errq_event_t *ev);
/* Encodes n events from first (following ->next) as one ReportRequest into *out (a new slice
 * the caller unrefs).  Returns ERRQ_OK or ERRQ_ENOMEM; the events are not modified. */
int errq__batch_encode(const struct errq_options *cfg, const errq_event_t *first, size_t n,
		       uint64_t seq, const uint8_t batch_id[ERRQ_ID_LEN], grpc_slice *out);

/* An absolute CLOCK_MONOTONIC time ms milliseconds from now, for pthread_cond_timedwait
 * on the client's condition variables (which use that clock). */
static inline void errq__deadline_after_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* errq_options.c */
void errq__options_release(struct errq_options *o); /* frees the strings, not o */

/* errq_client.c */
/* Marks the client closing: from now on errq_report() refuses with ERRQ_ECLOSED.  The first
 * step of errq_client_close(); separate so tests can observe the closing state. */
void errq__client_begin_close(errq_client_t *c);

/* errq_sender.c */
void *errq__sender_main(void *arg);
#endif
