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
#include "errq_pb.h"

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
#define ERRQ__INFLIGHT_DEFAULT 16u /* the collector reads up to 64 unanswered per stream */
#define ERRQ__BACKOFF_MS_MAX 3600000u
#define ERRQ__BACKOFF_INITIAL_MS_DEFAULT 100u
#define ERRQ__BACKOFF_MAX_MS_DEFAULT 30000u
#define ERRQ__DEFAULT_COLLECTOR "127.0.0.1:4770"
/* fork() with no live client after one used gRPC: how long the fork waits for gRPC to finish
 * shutting down (it ends a closed client's channel on its own threads, ~ms); past it the
 * child's clients are inert (errq_client.c, "Fork") */
#define ERRQ__FORK_GRPC_WAIT_MS 1000u
#define ERRQ__ACK_TIMEOUT_MS_MIN 100u
#define ERRQ__ACK_TIMEOUT_MS_MAX 3600000u
#define ERRQ__ACK_TIMEOUT_MS_DEFAULT 30000u
#define ERRQ__CIRCUIT_THRESHOLD_MAX 1000u
#define ERRQ__CIRCUIT_THRESHOLD_DEFAULT 5u
#define ERRQ__OUTCOME_INTERVAL_S_MAX 3600u
#define ERRQ__OUTCOME_INTERVAL_S_DEFAULT 5u
#define ERRQ__SPOOL_BYTES_MIN (64u * 1024)
#define ERRQ__SPOOL_BYTES_MAX (1ull << 40)
#define ERRQ__SPOOL_BYTES_DEFAULT (64ull << 20)
#define ERRQ__MAX_PATH_LEN 4000        /* spool directory and TLS file paths */
#define ERRQ__MAX_PEM_BYTES (1u << 20) /* a CA bundle, certificate or key file; bigger: EINVAL */
#define ERRQ__MAX_TOKEN_LEN 4096       /* bearer token: printable ASCII, like any header value */

/* ---- outcomes (errq_record_outcome).  Counts are aggregated per task in a table of at most
 * ERRQ__OUTCOME_MAX_TASKS keys per window (policy: a call for a new task when the table is
 * full is refused with ERRQ_EQUEUEFULL and counted in stats.outcomes_dropped; known tasks
 * keep counting).  Each window becomes one batch of Outcome records; at most
 * ERRQ__OUTCOME_MAX_BATCHES such batches wait in memory (policy: while that many wait, the
 * current window is not cut but grows longer, so no count is lost and memory stays
 * bounded).  A task name is cut to ERRQ__MAX_TASK_LEN like an event's. */
#ifdef ERRQ_TEST_LIMITS
#define ERRQ__OUTCOME_MAX_TASKS 8u
#else
#define ERRQ__OUTCOME_MAX_TASKS 1024u
#endif
#define ERRQ__OUTCOME_SLOTS (2u * ERRQ__OUTCOME_MAX_TASKS) /* open addressing, load <= 1/2 */
#define ERRQ__OUTCOME_MAX_BATCHES 8u

/* ---- disk spool (errq_spool.c).  One file per batch, oldest first.  Bounded by
 * spool_max_bytes (an option) and by ERRQ__SPOOL_MAX_FILES (the in-memory index, 24 bytes a
 * file); policy at either limit: the oldest files are deleted and their events counted in
 * stats.dropped_spool.  Replaying, at most ERRQ__SPOOL_REPLAY_BATCHES files (and
 * ERRQ__SPOOL_REPLAY_BYTES, but always one) are in memory at once, and only one until a
 * stream is answered: this memory is outside the queue's byte budget, and bounded by
 * max(ERRQ__SPOOL_REPLAY_BYTES, one batch).  While the collector is unreachable, events are
 * spooled in batches that wait up to ERRQ__SPOOL_LINGER_MS for more events (fewer, larger
 * files) unless the queue is half full.  After a write error no file is written for
 * ERRQ__SPOOL_RETRY_MS (the batches stay in memory meanwhile). */
#ifdef ERRQ_TEST_LIMITS
#define ERRQ__SPOOL_MAX_FILES 16u
#else
#define ERRQ__SPOOL_MAX_FILES 16384u
#endif
/* Spill at the queue's limit.  errq_report() that finds the capacity or the byte budget used
 * up, with a spool that has free room, waits (on done_cv, holding no lock) for the background
 * thread to move what it holds to disk, at most spill_wait_ms (an option: 0 never waits,
 * default ERRQ__SPILL_WAIT_MS_DEFAULT, at most ERRQ__SPILL_WAIT_MS_MAX); then, or at once when the
 * spool is full, unusable or in its write-retry pause, it refuses (ERRQ_EQUEUEFULL).  Such a
 * spill never deletes spooled files to make room (only writes while the circuit is open and at
 * close do).  While the queue is half full the background thread polls its completion queue
 * at most ERRQ__SPILL_POLL_MS at a time, so a waiting report is seen soon. */
#define ERRQ__SPILL_WAIT_MS_DEFAULT 1000u
#define ERRQ__SPILL_WAIT_MS_MAX 60000u
#define ERRQ__SPILL_POLL_MS 2
#define ERRQ__SPOOL_REPLAY_BATCHES 4u
#define ERRQ__SPOOL_REPLAY_BYTES (1u << 20)
#define ERRQ__SPOOL_LINGER_MS 2000u
#define ERRQ__SPOOL_RETRY_MS 5000u
#define ERRQ__SPOOL_HDR_LEN 32u
#define ERRQ__SPOOL_VERSION 1u
#define ERRQ__SPOOL_MAGIC "EQSB"
#define ERRQ__SPOOL_SUFFIX ".batch"
#define ERRQ__SPOOL_TMP_SUFFIX ".tmp"
#define ERRQ__SPOOL_LOCK_NAME "lock"

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
	unsigned ack_timeout_ms;
	unsigned spill_wait_ms;
	unsigned circuit_threshold;
	unsigned outcome_interval_s;
	char *spool_dir;          /* NULL: no spool */
	uint64_t spool_max_bytes;
	bool tls;                 /* TLS on; the PEM strings below may each be NULL */
	char *tls_ca_pem;         /* NULL: gRPC's default roots */
	char *tls_cert_pem;       /* with tls_key_pem: a client certificate (mTLS) */
	char *tls_key_pem;
	char *token;              /* the whole header value, "Bearer ...", NULL: none */
};

struct errq_detail {
	char *key;   /* one allocation holds "key\0value\0": free key only */
	char *value; /* NULL means "" */
};

struct errq_frame {
	char *function; /* each may be NULL; all three point into mem */
	char *file;
	char *module;
	char *mem;      /* one allocation for the three strings */
	uint32_t line;
	bool in_app;
};

/* An event being built.  Owned by its builder until errq_report(), which encodes it into an
 * errq_qev and frees it.  Every string is a private copy, NULL when unset. */
struct errq_event {
	struct errq_event *next; /* only to hand a list to errq__batch_encode (tests) */
	uint64_t time_ns;        /* Unix ns; 0 = stamped by errq_report() */
	uint8_t id[ERRQ_ID_LEN]; /* set by errq__batch_encode's callers; errq_report() patches the
				  * encoded copy instead */
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
	size_t wire;    /* set by errq__event_measure(): size as one ReportRequest.failures entry */
	size_t wire_body; /* ... of which the TaskFailure message itself (after tag and length) */
	size_t cost;    /* set by errq__event_measure(): what it is charged against the byte
			 * budget once reported (the errq_qev allocation) */
};

/* A reported event, encoded: what the queue and the background thread hold.  One allocation,
 * made by errq_report() on the reporting thread; freed by the sender once it is copied into a
 * batch (or by close).  Belongs to the queue (under mu), then to the sender alone. */
struct errq_qev {
	struct errq_qev *next;
	uint64_t ordinal; /* position in the report order, set under mu */
	uint64_t enq_ns;  /* monotonic time of errq_report(), for the linger deadline */
	size_t wire;      /* bytes[] length: one ReportRequest.failures entry, id included */
	size_t cost;      /* charged to the byte budget: this allocation */
	uint8_t bytes[];
};

/* One batch: an encoded ReportRequest without its seq (the "body": failures, outcomes,
 * batch_id), kept until the collector answers.  The seq goes in front of the body when it is
 * written (protobuf merges concatenated fields), so the same body can be spooled to disk and
 * sent again later, by another process, under another seq, with the same batch_id. */
struct errq_batch {
	struct errq_batch *next;
	uint64_t seq;           /* correlation id on the wire, unique within the client */
	uint64_t first_ordinal; /* of its first event; meaningless when n_events == 0 */
	size_t n_events;        /* failures in it */
	size_t n_outcomes;      /* Outcome records in it */
	uint64_t n_calls;       /* errq_record_outcome() calls those records sum up */
	size_t cost;            /* sum of the events' costs, released on the answer */
	uint64_t spool_no;      /* 0: made by this client in memory; else the spool file it
				 * was read from (its events are not in held_* nor in flush) */
	grpc_slice body;        /* the encoded message without seq; every write refs it */
	uint64_t sent_gen;      /* generation of the stream it was last written to, 0 = never */
	uint64_t write_ns;      /* monotonic start of its last write (the ack timeout) */
	unsigned writes;        /* times written, over all streams */
	bool counted_sent;      /* in stats.sent already (a write completed, or it was answered) */
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
	bool answered;       /* at least one ReportResponse arrived on it */
	unsigned writes;     /* batches written on it */
	bool last_replay;    /* the last batch written was a spooled one (they alternate) */
	const char *why;       /* why it failed (static); NULL when closing */
	uint64_t sending_seq;  /* batch of the outstanding write */
	grpc_byte_buffer *send_bb;
	grpc_byte_buffer *recv_bb;
	grpc_metadata_array init_md;
	grpc_metadata_array trail_md;
	grpc_status_code status;
	grpc_slice status_details;
};

/* The spool's index: one entry per file, in file-number order (= age).  Sender thread only. */
struct errq_spool_entry {
	uint64_t no;       /* file name: 16 hex digits + ERRQ__SPOOL_SUFFIX */
	uint32_t bytes;    /* file size, header included */
	uint32_t n_events; /* failures in it (from its header) */
	bool loaded;       /* read into memory as a replay batch */
};

struct errq_spool {
	int dirfd;         /* -1: no usable spool (not configured, or it failed to open) */
	int lockfd;        /* flock(LOCK_EX) on ERRQ__SPOOL_LOCK_NAME: one client per directory */
	bool opened;       /* errq__spool_open() ran */
	struct errq_spool_entry *ents; /* live entries are ents[head .. head + n) */
	size_t head, n, cap;
	size_t loaded;     /* entries loaded */
	uint64_t bytes;    /* sum of the entries' sizes */
	uint64_t next_no;  /* the next file's number: above every number seen */
	uint64_t retry_ns; /* monotonic; after a write error no write before */
	bool retrying;     /* a write failed and retry_ns is not past yet */
	bool full;         /* a spill (no eviction) found no room; cleared when a file goes */
};

/* One task's counts in the current outcome window. */
struct errq_outcome_entry {
	uint64_t ok, failed;
	uint32_t hash;
	uint32_t len;
	char task[]; /* the caller's bytes (at most ERRQ__MAX_TASK_LEN + 1), NUL-terminated;
		      * repaired and cut when encoded */
};

/* An outcome window: an open-addressing table of ERRQ__OUTCOME_SLOTS slots. */
struct errq_outcome_table {
	struct errq_outcome_entry **slots;
	uint32_t count;
	uint64_t start_unix_ns; /* realtime of the window's first record */
	uint64_t start_mono_ns; /* the same moment on the monotonic clock */
};

enum { ERRQ__CIRCUIT_CLOSED = 0, ERRQ__CIRCUIT_OPEN = 1, ERRQ__CIRCUIT_HALF_OPEN = 2 };

/* State private to the background thread (never touched by another thread while it runs). */
struct errq_sender {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	struct errq_stream *stream; /* NULL when none is open */
	uint64_t gen;               /* streams opened so far */
	struct errq_qev *p_head, *p_tail; /* taken from the queue, not yet batched, in order */
	size_t p_count;
	size_t p_wire;
	struct errq_batch *b_head, *b_tail; /* made here, unanswered, in seq order */
	size_t b_count;
	size_t b_outcome_batches;           /* of those, batches of outcomes */
	struct errq_batch *r_head, *r_tail; /* read from the spool, unanswered, oldest first */
	size_t r_count;
	size_t r_bytes;
	uint64_t seq;
	unsigned fails;           /* consecutive streams that failed without an answer */
	uint64_t next_connect_ns; /* monotonic; no new stream before */
	int circuit;              /* ERRQ__CIRCUIT_* */
	uint64_t open_until_ns;   /* monotonic; while open, no stream before */
	uint64_t flush_seen;      /* client.flush_requests when last looked at */
	uint64_t o_windows_seen;  /* client.o_windows when last looked at */
	uint64_t spill_seen;      /* client.spill_requests when last looked at */
	bool o_final_done;        /* the last window was cut (closing) */
	struct errq_idgen rng;    /* batch ids and jitter */
	struct errq_spool spool;
	struct errq_outcome_table *o_spare; /* the table swapped in at the next cut */
	grpc_metadata auth_md;    /* "authorization: Bearer ..." when a token is set */
	bool have_auth;
};

struct errq_client {
	/* immutable after errq_client_new() */
	struct errq_options cfg;
	size_t sz_service, sz_environment, sz_release, sz_host; /* encoded field sizes of cfg */
	uint64_t linger_ns;
	pid_t pid;     /* creator's pid */
	bool inert;    /* made in a forked child that cannot use gRPC: no thread, no channel */

	/* Fork safety.  Written only by the pthread_atfork child handler (in the child, while it
	 * is the only thread), so every other thread of the parent sees it false forever: read
	 * without a lock.  See the top of errq_client.c. */
	bool forked;
	struct errq_client *reg_prev, *reg_next; /* the process's clients; guarded by reg_mu */

	pthread_mutex_t mu;
	pthread_cond_t wake_cv; /* the sender sleeps here: reports, flush and close signal it */
	pthread_cond_t done_cv; /* flushers sleep here: the sender broadcasts as events resolve */
	pthread_t thread;
	bool thread_started;
	bool grpc_inited;

	/* guarded by mu */
	struct errq_idgen idgen;
	struct errq_qev *q_head, *q_tail; /* reported, not yet taken by the sender */
	size_t q_count;
	size_t q_wire;
	size_t held_count;     /* accepted and unresolved: queue + sender (capacity) */
	size_t held_bytes;     /* their cost (byte budget) */
	uint64_t next_ordinal; /* the next accepted event's ordinal */
	uint64_t sender_low;   /* lowest ordinal the sender holds, UINT64_MAX when none */
	uint64_t flush_requests;
	uint64_t o_windows;  /* outcome windows opened (the sender must wake to cut them) */
	bool o_final_cut;    /* closing: the sender cut the last outcome window */
	size_t o_unresolved; /* outcome batches the sender holds (close waits for them) */
	int flush_waiters;
	bool closing;        /* errq_report() refuses */
	bool stop;           /* the sender must exit */
	bool sender_waiting; /* the sender is asleep on wake_cv */
	bool sender_lingers; /* ... with events pending and a timer of its own for them: one
			      * more event needs no wake-up, only a full batch does */
	bool sender_spools;  /* ... lingering to spool: wake it when the queue passes half */
	bool connected;
	int spill_waiters;   /* reports waiting for room (a spill to disk), on done_cv */
	uint64_t spill_requests; /* bumped by each such wait: the sender must look again */
	bool spill_room;     /* the spool can take a spill now (usable, not full, no retry) */
	bool spool_scanned;  /* the sender has opened (or given up on) the spool directory */
	int spool_lockfd;    /* a copy of snd.spool.lockfd, for the fork child handler */
	size_t lost_at_close;
	errq_stats_t st;

	/* guarded by omu (outcomes; taken after mu when both are needed, never before) */
	pthread_mutex_t omu;
	struct errq_outcome_table *o_live; /* the current window */
	bool o_closing;
	uint64_t o_recorded, o_dropped;    /* calls; folded into stats by errq_client_stats() */

	/* the background thread's own */
	struct errq_sender snd;
};

/* errq_event.c */
/* Sizes as encoded by protobuf (exact for proto3, where empty strings are omitted); varints
 * are errq_pb_varint_size (common/errq_pb.h). */
size_t errq__str_field_size(const char *s); /* a string field with a one-byte tag */
/* Copies s into *out: at most max bytes of valid UTF-8 (invalid bytes become U+FFFD, a longer
 * value is cut at a character boundary and *cut set).  NULL or "" gives *out = NULL.
 * Reads at most max + 1 bytes of s.  Returns ERRQ_OK or ERRQ_ENOMEM. */
int errq__copy_text(const char *s, size_t max, char **out, bool *cut);
/* Sets ev->wire, wire_body and cost for a report through c (service and context defaults);
 * ev->time_ns must be final. */
void errq__event_measure(const errq_client_t *c, errq_event_t *ev);
/* Writes ev (measured) as one ReportRequest.failures entry at p (ev->wire bytes), with
 * ev->id.  Returns the end, or NULL when the result does not have the measured size (an
 * accounting bug: never expected). */
uint8_t *errq__event_encode(uint8_t *p, const struct errq_options *cfg, const errq_event_t *ev);
/* Where the 16 id bytes are in that encoding. */
size_t errq__event_id_offset(const errq_event_t *ev);
/* Encodes n measured events from first (following ->next) as the body of one ReportRequest
 * (no seq) into *out (a new slice the caller unrefs), writing protobuf directly from the
 * events (what protobuf-c would pack, byte for byte: a unit test compares).  Returns ERRQ_OK
 * or ERRQ_ENOMEM (also for an event whose measured size does not match: never expected);
 * the events are not modified. */
int errq__batch_encode(const struct errq_options *cfg, const errq_event_t *first, size_t n,
		       const uint8_t batch_id[ERRQ_ID_LEN], grpc_slice *out);
/* Encodes a window's outcome entries as the body of one ReportRequest (no seq), service
 * cfg->service.  window_s >= 1.  Returns ERRQ_OK or ERRQ_ENOMEM. */
int errq__outcomes_encode(const struct errq_options *cfg, struct errq_outcome_entry *const *ents,
			  size_t n, uint64_t start_unix_ns, uint32_t window_s,
			  const uint8_t batch_id[ERRQ_ID_LEN], grpc_slice *out);
/* The bytes that put seq in front of a body: field 1, varint.  Returns their length (<= 11). */
size_t errq__seq_prefix(uint64_t seq, uint8_t out[11]);

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
/* A channel to cfg->collector with errq's arguments and credentials; NULL if gRPC refuses. */
grpc_channel *errq__channel_new(const struct errq_options *cfg);
/* Marks the client closing: from now on errq_report() refuses with ERRQ_ECLOSED.  The first
 * step of errq_client_close(); separate so tests can observe the closing state. */
void errq__client_begin_close(errq_client_t *c);

/* errq_outcome.c (the sender's side; errq_record_outcome is public) */
int errq__outcomes_init(errq_client_t *c);   /* allocates both tables; ERRQ_OK/ERRQ_ENOMEM */
void errq__outcomes_free(errq_client_t *c);  /* both tables and their entries */
/* Frees the live table's entries and the table; what a forked child may free. */
void errq__outcomes_free_live(errq_client_t *c);
/* Cuts the current window into a batch appended to the sender's list when it is due (or
 * always, when final).  Sender thread.  Returns the monotonic time the next cut is due, or
 * UINT64_MAX when none is pending. */
uint64_t errq__outcomes_tick(errq_client_t *c, uint64_t now_mono, bool final);

/* errq_spool.c: the disk spool; every function runs on the sender thread. */
uint32_t errq__crc32(uint32_t crc, const void *p, size_t n); /* IEEE 802.3, as zlib's crc32() */
/* Opens (creating the last path component) and locks the directory, removes leftover
 * temporary files, reads every file's header into the index.  A spool that cannot be used
 * is disabled (dirfd -1) and counted in stats.spool_errors. */
void errq__spool_open(errq_client_t *c);
void errq__spool_close(errq_client_t *c);
static inline bool errq__spool_usable(const struct errq_spool *sp)
{
	return sp->dirfd >= 0;
}
/* What errq__spool_write returns. */
enum { ERRQ__SPOOL_WRITTEN = 0, ERRQ__SPOOL_FAILED = -1, ERRQ__SPOOL_NEVER_FITS = -2,
       ERRQ__SPOOL_NO_ROOM = -3 };
/* Writes b's body as a new file (temporary name, fsync, rename, fsync of the directory).
 * evict: first delete the oldest files as the limits require; otherwise (a spill to make
 * room in memory) only use free room.  Returns ERRQ__SPOOL_WRITTEN; ERRQ__SPOOL_FAILED when
 * it could not (the caller keeps the batch; spool_errors counted, retry_ns set);
 * ERRQ__SPOOL_NEVER_FITS for a batch bigger than the whole spool; ERRQ__SPOOL_NO_ROOM when
 * !evict and the spool is full (the full flag is set until a file goes). */
int errq__spool_write(errq_client_t *c, const struct errq_batch *b, bool evict);
/* Ends the write-retry pause once its time has come (publishes spill_room). */
void errq__spool_tick(errq_client_t *c, uint64_t now);
/* Reads the oldest file not yet loaded into a new batch (spool_no set, seq 0), deleting
 * corrupt ones on the way (counted).  NULL when there is none, when the oldest is bigger
 * than max_bytes, or when memory runs out. */
struct errq_batch *errq__spool_load_next(errq_client_t *c, size_t max_bytes);
/* The collector answered file no: delete it. */
void errq__spool_remove(errq_client_t *c, uint64_t no);
/* Forgets that file no is loaded (its batch was dropped from memory; the file stays). */
void errq__spool_unload(errq_client_t *c, uint64_t no);
/* True when some file is not loaded. */
bool errq__spool_has_unloaded(const errq_client_t *c);

/* errq_sender.c */
void *errq__sender_main(void *arg);
void errq__batch_free(struct errq_batch *b);
/* Gives b (made on the sender thread) the next seq and appends it to the unanswered batches. */
void errq__batch_append(errq_client_t *c, struct errq_batch *b);
#endif
