/* errq.h: liberrq, the errq client library.  This is its only public header.
 *
 * A service reports task failures with errq_report(); a background thread batches them and
 * streams them over gRPC to the errq collector (errqd), and frees each batch only once the
 * collector has answered that it is stored.  Nothing here blocks on the network, allocates
 * without bound, or aborts the host process: when the collector is away the client keeps
 * what fits in its queue and drops the rest, counting why (errq_client_stats).
 *
 *	errq_options_t *o = errq_options_new();
 *	errq_options_set_collector(o, "127.0.0.1:4770");
 *	errq_options_set_service(o, "checkout");
 *	errq_client_t *c = errq_client_new(o);          // takes o, also on failure
 *
 *	errq_event_t *ev = errq_event_new(NULL, "TimeoutError", "payment provider timed out");
 *	errq_event_set_code(ev, "TIMEOUT");
 *	errq_event_set_attempt(ev, 2);
 *	errq_report(c, ev);                             // takes ev, also on failure
 *
 *	errq_client_close(c, 5000);                     // delivers what it can in 5 s, frees c
 *
 * Ownership, in one rule: a function that takes a pointer to an errq object documents
 * whether it borrows it or takes it; strings passed in are always copied (the caller keeps
 * its own); nothing returned by the library has to be freed unless its doc comment says so.
 * Every *_free / *_close function accepts NULL.
 *
 * Errors: functions that can fail return an int, ERRQ_OK (0) or a negative ERRQ_E* code
 * from the enum below; errq_strerror() names it.  Codes are only ever appended.
 *
 * Thread safety: an errq_client_t may be used from any number of threads at once, except that
 * errq_client_close() must be the last call on it.  An errq_event_t or errq_options_t
 * belongs to one thread at a time (the one building it).
 *
 * fork(): a client belongs to the process that created it.  In a child, the parent's client
 * is inert: errq_report() and errq_record_outcome() drop with ERRQ_EFORKED (counted in
 * stats.dropped_forked / outcomes_dropped), errq_client_flush() returns ERRQ_EFORKED at
 * once, and errq_client_close() frees only plain memory (never gRPC state, never the
 * parent's thread).  Create clients after forking (in each worker).  See docs/client.md.
 *
 * docs/client.md describes the delivery guarantee, every limit and what happens at it, the
 * spool's file format and its crash semantics.
 */
#ifndef ERRQ_H
#define ERRQ_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ERRQ_EXPORT __attribute__((visibility("default")))
#define ERRQ_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ERRQ_EXPORT
#define ERRQ_PRINTF(f, a)
#endif

#define ERRQ_VERSION_MAJOR 0
#define ERRQ_VERSION_MINOR 1
#define ERRQ_VERSION_PATCH 0
/* 0xMMmmpp, for #if comparisons */
#define ERRQ_VERSION_HEX ((ERRQ_VERSION_MAJOR << 16) | (ERRQ_VERSION_MINOR << 8) | ERRQ_VERSION_PATCH)

/* The error codes.  XX(name, value, message); values are negative and never renumbered;
 * new codes are appended. */
#define ERRQ_ERRNO_MAP(XX)                                                                 \
	XX(EINVAL, -1, "invalid argument")                                                 \
	XX(ENOMEM, -2, "out of memory")                                                    \
	XX(EQUEUEFULL, -3, "queue full: event dropped")                                    \
	XX(ETOOBIG, -4, "event too big: event dropped")                                    \
	XX(ECLOSED, -5, "client is closing: event dropped")                                \
	XX(ETIMEDOUT, -6, "timed out")                                                     \
	XX(ETHREAD, -7, "cannot start the background thread")                             \
	XX(EFORKED, -8, "client belongs to the parent process (fork): dropped")           \
	XX(EIO, -9, "cannot read the file")

typedef enum {
	ERRQ_OK = 0,
#define ERRQ_XX_(name, value, msg) ERRQ_##name = (value),
	ERRQ_ERRNO_MAP(ERRQ_XX_)
#undef ERRQ_XX_
} errq_errno_t;

/* A static, lowercase description of an errq code ("ok" for ERRQ_OK, "unknown error" for a
 * code this version does not know).  Never NULL; never freed. */
ERRQ_EXPORT const char *errq_strerror(int err);
/* The ERRQ_ name of a code without the prefix ("EINVAL"), "OK", or "UNKNOWN". */
ERRQ_EXPORT const char *errq_err_name(int err);

/* The library's version as "MAJOR.MINOR.PATCH" (the one it was built as, which may differ
 * from the ERRQ_VERSION_* macros the caller compiled against).  Static; never freed. */
ERRQ_EXPORT const char *errq_version(void);

/* ------------------------------------------------------------------------------------------
 * Options.  Built by the caller, then handed to errq_client_new(), which takes them.
 * Every setter copies what it is given and returns ERRQ_OK, ERRQ_EINVAL (NULL options or a
 * value out of the documented range; the option keeps its previous value) or ERRQ_ENOMEM.
 * Limits marked [bytes] count what events take in memory: errq_report() encodes an event at
 * once (protobuf, as it goes on the wire) and frees the builder, so an event costs its
 * encoded size plus a small allocation overhead until the collector answers it.
 */
typedef struct errq_options errq_options_t;

/* New options with every default below.  Returns NULL only when out of memory.  The caller
 * owns the result until it passes it to errq_client_new(); errq_options_free() otherwise. */
ERRQ_EXPORT errq_options_t *errq_options_new(void);
/* Frees options that were never given to errq_client_new().  Accepts NULL. */
ERRQ_EXPORT void errq_options_free(errq_options_t *opts);

/* Collector address "host:port" (any gRPC target string).  Default "127.0.0.1:4770".
 * The service, environment, release and host setters refuse values over the collector's
 * limits (128, 64, 128, 255 bytes) or not valid UTF-8 with ERRQ_EINVAL. */
ERRQ_EXPORT int errq_options_set_collector(errq_options_t *opts, const char *addr);
/* Service name used for events that do not name one.  Default: none (such events are then
 * refused by errq_report() with ERRQ_EINVAL). */
ERRQ_EXPORT int errq_options_set_service(errq_options_t *opts, const char *service);
/* Environment ("production"), release ("1.4.2") and host name stamped on every event;
 * an event's own environment wins.  Defaults: none, none, the machine's host name.
 * NULL or "" clears the value. */
ERRQ_EXPORT int errq_options_set_environment(errq_options_t *opts, const char *environment);
ERRQ_EXPORT int errq_options_set_release(errq_options_t *opts, const char *release);
ERRQ_EXPORT int errq_options_set_host(errq_options_t *opts, const char *host);
/* Events held at most (queued or sent and not yet acknowledged), 1..10000000.  Default
 * 10000.  At the limit errq_report() drops the new event (ERRQ_EQUEUEFULL). */
ERRQ_EXPORT int errq_options_set_queue_capacity(errq_options_t *opts, size_t events);
/* [bytes] held at most, 64 KiB..1 GiB.  Default 8 MiB.  Same policy as the capacity. */
ERRQ_EXPORT int errq_options_set_queue_bytes(errq_options_t *opts, size_t bytes);
/* Events per batch, 1..10000.  Default 500. */
ERRQ_EXPORT int errq_options_set_max_batch_events(errq_options_t *opts, size_t events);
/* Encoded bytes per batch, 64 KiB..4 MiB; an event bigger than this travels alone.
 * Default 1 MiB. */
ERRQ_EXPORT int errq_options_set_max_batch_bytes(errq_options_t *opts, size_t bytes);
/* How long a partly filled batch may wait for more events, 0..60000 ms.  Default 50. */
ERRQ_EXPORT int errq_options_set_linger_ms(errq_options_t *opts, unsigned ms);
/* Batches sent and not yet acknowledged, 1..64.  Default 16 (the collector commits what
 * arrives together: a deeper pipeline, more throughput; the memory stays within the byte
 * budget, which counts events in flight). */
ERRQ_EXPORT int errq_options_set_max_inflight(errq_options_t *opts, unsigned batches);
/* Reconnect backoff: after the n-th consecutive failure the client waits a uniformly random
 * time in [0, min(max_ms, initial_ms * 2^n)] ("full jitter").  1 <= initial_ms <= max_ms
 * <= 3600000.  Defaults 100 and 30000. */
ERRQ_EXPORT int errq_options_set_reconnect_backoff(errq_options_t *opts, unsigned initial_ms,
						   unsigned max_ms);
/* When on, the background thread logs stream failures, circuit changes and spool problems
 * to stderr, one JSON object per line.  Default off: the library prints nothing. */
ERRQ_EXPORT int errq_options_set_debug(errq_options_t *opts, bool on);
/* Client-side circuit: after this many consecutive streams failed without an answer (the
 * collector refused, was unreachable or timed out), the client stops trying for a backoff
 * period (a random time in [cap/2, cap], cap as above), spools what it holds when a spool is
 * configured, then probes with one batch (half-open) and resumes when it is answered.
 * 1..1000.  Default 5. */
ERRQ_EXPORT int errq_options_set_circuit_threshold(errq_options_t *opts, unsigned failures);
/* When the oldest batch written on a stream has had no answer for this long, the client
 * cancels the stream and resends on a new one (a collector that accepts the connection
 * but never answers cannot wedge it).  100..3600000 ms.  Default 30000. */
ERRQ_EXPORT int errq_options_set_ack_timeout(errq_options_t *opts, unsigned ms);
/* With a spool: how long errq_report() may wait, at the queue's limit, for the background
 * thread to spill the overflow to disk before it refuses the event (ERRQ_EQUEUEFULL).
 * 0..60000 ms; 0 never waits (the overflow is refused at once, as without a spool, while the
 * background thread still spills at half full).  Default 1000.  See errq_report(). */
ERRQ_EXPORT int errq_options_set_spill_wait(errq_options_t *opts, unsigned ms);
/* errq_record_outcome() counts are sent every this many seconds, 1..3600.  Default 5. */
ERRQ_EXPORT int errq_options_set_outcome_interval(errq_options_t *opts, unsigned seconds);
/* Disk spool: a directory (created if its parent exists; one client per directory, others
 * find it locked and run without a spool) where batches go when the collector is unreachable
 * (the circuit is open), when the queue is half full or full (instead of refusing reports,
 * while the spool has free room: see errq_report), and when errq_client_close() gives up on
 * them; the client sends them (first, then alternating with new ones) once the collector
 * answers, also the next client started on the directory (errq_client_close() waits for that
 * within its timeout), and deletes each file once it is answered.
 * All disk I/O runs on the background thread.  NULL or "" disables.  Default: none.
 * Refuses paths over 4000 bytes (ERRQ_EINVAL). */
ERRQ_EXPORT int errq_options_set_spool_dir(errq_options_t *opts, const char *dir);
/* Bytes of spool files kept at most (headers included), 64 KiB..1 TiB.  Default 64 MiB.
 * At the limit, a write while the circuit is open or at close deletes the oldest files (their
 * events counted in stats.dropped_spool); an overflow of the queue is not written (the
 * reports are refused at the queue's limit, ERRQ_EQUEUEFULL). */
ERRQ_EXPORT int errq_options_set_spool_max_bytes(errq_options_t *opts, uint64_t bytes);
/* TLS to the collector.  Each path may be NULL: ca_pem_path names the PEM roots that must
 * have signed the collector's certificate (NULL: gRPC's default roots); cert_path and
 * key_path, both or neither, a client certificate and its key (mutual TLS).  The files are
 * read now (at most 1 MiB each): ERRQ_EIO when one cannot be read, ERRQ_EINVAL when only one
 * of cert_path and key_path is given.  Default: no TLS (plaintext). */
ERRQ_EXPORT int errq_options_set_tls(errq_options_t *opts, const char *ca_pem_path,
				     const char *cert_path, const char *key_path);
/* A bearer token sent as "authorization: Bearer TOKEN" metadata on every stream.  Printable
 * ASCII, at most 4096 bytes (ERRQ_EINVAL otherwise).  NULL or "" clears.  Default: none.
 * Send it only over TLS outside a trusted network. */
ERRQ_EXPORT int errq_options_set_token(errq_options_t *opts, const char *token);

/* ------------------------------------------------------------------------------------------
 * Events.  A builder that copies everything it is given.  Strings must be NUL-terminated;
 * invalid UTF-8 bytes are replaced with U+FFFD and over-long values are cut at a character
 * boundary (errq_client_stats counts such events in `truncated`).  The limits are the
 * collector's, in bytes: message 8192; detail values 1024; each frame string 512; task and
 * error type 256; service, release, error code, fingerprint and detail keys 128;
 * environment 64; and per event 64 details (the first are kept) and 64 frames (the
 * innermost are kept).
 * Setters return ERRQ_OK, ERRQ_EINVAL (NULL event or missing required argument) or
 * ERRQ_ENOMEM; a failed setter leaves the event as it was.
 */
typedef struct errq_event errq_event_t;

/* A new event.  service may be NULL (the client's default service is used); error_type is
 * required (the exception class, e.g. "TimeoutError"); message may be NULL.  handled
 * defaults to false, attempt to 0 (unknown), time to the moment of errq_report().
 * Returns NULL when error_type is NULL or empty, or when out of memory.  The caller owns the
 * event until it passes it to errq_report(); errq_event_free() otherwise. */
ERRQ_EXPORT errq_event_t *errq_event_new(const char *service, const char *error_type,
					 const char *message);
/* Frees an event that was never given to errq_report().  Accepts NULL. */
ERRQ_EXPORT void errq_event_free(errq_event_t *ev);

/* Application error code ("TIMEOUT", "ECONNRESET").  NULL or "" clears. */
ERRQ_EXPORT int errq_event_set_code(errq_event_t *ev, const char *code);
/* Task, coroutine or operation name.  NULL or "" clears. */
ERRQ_EXPORT int errq_event_set_task(errq_event_t *ev, const char *task);
/* Overrides the client's environment for this event.  NULL or "" clears. */
ERRQ_EXPORT int errq_event_set_environment(errq_event_t *ev, const char *environment);
/* Overrides the collector's grouping: within the event's service, every event with this
 * fingerprint is one group, whatever its error type, message or frames.  NULL or "" clears. */
ERRQ_EXPORT int errq_event_set_fingerprint(errq_event_t *ev, const char *fingerprint);
/* Adds a key/value detail; a key added twice keeps the last value.  key is required, value
 * NULL means "".  Details beyond the limit are ignored (and the event counted as truncated). */
ERRQ_EXPORT int errq_event_add_detail(errq_event_t *ev, const char *key, const char *value);
/* Appends a stack frame; add them outermost first.  Every string may be NULL; line 0 means
 * unknown; in_app is true when the frame is application code.  Past the limit the outermost
 * frame is dropped to make room (and the event counted as truncated). */
ERRQ_EXPORT int errq_event_add_frame(errq_event_t *ev, const char *function, const char *file,
				     uint32_t line, const char *module, bool in_app);
/* Retry attempt number, 1 = first try, 0 = unknown. */
ERRQ_EXPORT int errq_event_set_attempt(errq_event_t *ev, uint32_t attempt);
/* true when the application caught and dealt with the failure. */
ERRQ_EXPORT int errq_event_set_handled(errq_event_t *ev, bool handled);
/* When it happened, nanoseconds since the Unix epoch; 0 means "now" at errq_report(). */
ERRQ_EXPORT int errq_event_set_time_ns(errq_event_t *ev, uint64_t unix_ns);

/* ------------------------------------------------------------------------------------------
 * The client.
 */
typedef struct errq_client errq_client_t;

/* Starts a client.  Takes opts on every path (the client keeps them, or they are freed on
 * failure): the caller never touches or frees them again.  NULL opts means all defaults.
 * Starts the background thread and returns at once; the connection is made when there is
 * something to send (or spooled batches to deliver).  Returns NULL when out of memory or
 * when the thread cannot be started.  In a forked child of a process that had a client
 * (gRPC cannot be used there) it returns an inert client that drops with ERRQ_EFORKED.
 * Release with errq_client_close(). */
ERRQ_EXPORT errq_client_t *errq_client_new(errq_options_t *opts);

/* Reports an event.  Takes ev on every path: it is freed before this returns (the caller
 * never touches it again).  Thread-safe, never blocks on the network: it stamps the time,
 * encodes the event into one allocation (outside any lock), then takes one short lock to
 * stamp the id and append it to the queue.  Returns ERRQ_OK (queued; delivery follows in
 * the background), ERRQ_EINVAL (NULL client or event, or no service anywhere),
 * ERRQ_EQUEUEFULL (the capacity or the byte budget is used up: the new event is dropped, the
 * queued ones stay), ERRQ_ETOOBIG (the event alone is bigger than the byte budget),
 * ERRQ_ENOMEM, ERRQ_ECLOSED or ERRQ_EFORKED (called in a forked child); every error is also
 * counted in errq_client_stats().  Its cost is a few hundred nanoseconds, no system call in
 * the common case.
 * With a spool that has free room, a report that finds the queue full does not fail at once:
 * it waits (holding no lock) for the background thread to write what the client holds to the
 * spool, at most errq_options_set_spill_wait() (1 s by default), typically about one
 * fsync()ed file write (docs/client.md, "The disk spool"), counted in stats.spill_waits; ERRQ_EQUEUEFULL only when no room was made by then,
 * or at once when the spool is full, unusable or paused after a write error.  It never waits
 * for the network. */
ERRQ_EXPORT int errq_report(errq_client_t *client, errq_event_t *ev);

/* Convenience: builds an event of the client's service with error_type, code (may be NULL)
 * and a printf-formatted message, marks it handled (the caller caught it), and reports it.
 * Returns what errq_report() returns (or ERRQ_EINVAL / ERRQ_ENOMEM from building). */
ERRQ_EXPORT int errq_report_failure(errq_client_t *client, const char *error_type,
				    const char *code, const char *fmt, ...) ERRQ_PRINTF(4, 5);
ERRQ_EXPORT int errq_report_failurev(errq_client_t *client, const char *error_type,
				     const char *code, const char *fmt, va_list ap) ERRQ_PRINTF(4, 0);

/* Counts one call of task (NULL or "": the service as a whole) of the client's service as
 * succeeded (ok) or failed, for failure-rate rules.  Counts are summed per task in memory and
 * sent every outcome interval as Outcome records, in a batch whose batch_id makes a resend
 * count once.  Thread-safe, never blocks on the network; allocates only the first time a
 * task is seen in a window.  Returns ERRQ_OK, ERRQ_EINVAL (NULL client, or the client has no
 * service), ERRQ_EQUEUEFULL (a new task while 1024 tasks are counted in this window),
 * ERRQ_ECLOSED, ERRQ_EFORKED or ERRQ_ENOMEM; every refusal is counted in
 * stats.outcomes_dropped. */
ERRQ_EXPORT int errq_record_outcome(errq_client_t *client, const char *task, bool ok);

/* Waits until every event reported before this call has been answered by the collector
 * (stored, a duplicate, or rejected), written to the spool, or dropped.  timeout_ms < 0
 * waits without limit.  Returns ERRQ_OK, ERRQ_ETIMEDOUT, ERRQ_EFORKED (in a forked child,
 * at once) or ERRQ_EINVAL for a NULL client.  Thread-safe; the events stay queued after a
 * timeout.  Outcome counts are not waited for. */
ERRQ_EXPORT int errq_client_flush(errq_client_t *client, int timeout_ms);

/* The client-side circuit's states (errq_stats_t.circuit_state). */
typedef enum {
	ERRQ_CIRCUIT_CLOSED = 0,   /* streams are opened as needed */
	ERRQ_CIRCUIT_OPEN = 1,     /* too many failures in a row: no attempt until the period ends */
	ERRQ_CIRCUIT_HALF_OPEN = 2 /* probing: one batch in flight until it is answered */
} errq_circuit_t;

/* Counters since errq_client_new().  Event counts unless named otherwise.  The struct only
 * grows into its reserved tail, so its size (64 uint64_t) never changes.
 * Identities: queued = acked + spooled + pending + (dropped_closed at close) + (dropped_nomem
 * while batching) (dropped_closed also counts reports refused while closing, dropped_nomem
 * reports that could not be encoded); accepted + duplicates + rejected = acked +
 * spool_replayed. */
typedef struct errq_stats {
	uint64_t queued;             /* accepted by errq_report() */
	uint64_t pending;            /* now: accepted and not yet answered or dropped */
	uint64_t pending_bytes;      /* now: [bytes] of those */
	uint64_t sent;               /* written to a stream (once per event, resends aside) */
	uint64_t acked;              /* answered by the collector: accepted + duplicates + rejected */
	uint64_t accepted;           /* stored as new */
	uint64_t duplicates;         /* already stored (a resend, or an id reported twice) */
	uint64_t rejected;           /* refused as invalid by the collector */
	uint64_t dropped_queue_full; /* refused by errq_report(): capacity or byte budget */
	uint64_t dropped_too_big;    /* refused by errq_report(): one event over the byte budget */
	uint64_t dropped_closed;     /* reported while closing, or unacknowledged at close */
	uint64_t dropped_invalid;    /* refused by errq_report(): NULL event or no service */
	uint64_t dropped_nomem;      /* lost to an allocation failure (reporting or batching) */
	uint64_t truncated;          /* accepted with at least one field cut */
	uint64_t batches_sent;       /* batches written (once per batch, resends aside) */
	uint64_t batches_acked;      /* batches answered */
	uint64_t resends;            /* batches written again on a new stream */
	uint64_t reconnects;         /* streams opened after the first one */
	uint64_t stream_failures;    /* streams that ended in an error */
	uint64_t connected;          /* now: 1 while a stream is open and has been answered */
	uint64_t dropped_forked;     /* refused: called in a forked child (the parent's client) */
	uint64_t spooled;            /* written to the spool (no longer in memory nor pending) */
	uint64_t spool_replayed;     /* events of spool files answered by the collector */
	uint64_t dropped_spool;      /* lost from the spool: the oldest files deleted at its limits */
	uint64_t spool_corrupt;      /* spool files found torn or corrupt, deleted (files) */
	uint64_t spool_errors;       /* spool directory or write failures (operations) */
	uint64_t spool_files;        /* now: files in the spool */
	uint64_t spool_bytes;        /* now: their bytes */
	uint64_t circuit_state;      /* now: an errq_circuit_t */
	uint64_t circuit_opens;      /* times the circuit opened */
	uint64_t consecutive_failures; /* now: streams failed in a row without an answer */
	uint64_t ack_timeouts;       /* streams given up for an answer overdue (errq_options_set_ack_timeout) */
	uint64_t outcomes_recorded;  /* errq_record_outcome() calls counted */
	uint64_t outcomes_acked;     /* of those, answered by the collector (calls) */
	uint64_t outcomes_dropped;   /* calls refused or lost (table full, close without spool) */
	uint64_t rejected_quota;     /* of rejected: over the collector's quota (quota_exceeded); the
				      * collector counted them in their group, so they are not resent */
	uint64_t spill_waits;        /* reports that found the queue full and waited for a spill
				      * to the spool (see errq_report) */
	uint64_t reserved_[27];
} errq_stats_t;

/* Fills *stats.  Returns ERRQ_OK, or ERRQ_EINVAL when an argument is NULL.  Works in a
 * forked child too (the counters of the child's copy). */
ERRQ_EXPORT int errq_client_stats(errq_client_t *client, errq_stats_t *stats);

/* Closes the client: refuses new reports (ERRQ_ECLOSED), flushes for up to timeout_ms
 * (< 0: without limit, 0: not at all) — the events, the last outcome counts and, with a
 * spool, the spooled files (those found at start and those written since), until they are
 * answered or the circuit opens (the collector is unreachable: the files stay for the next
 * client) — then stops the background thread.  What is still
 * unacknowledged then (events and the last outcome counts) is written to the spool when one
 * is configured and usable, otherwise dropped; writing the spool takes what the disk takes
 * beyond timeout_ms.  Frees everything.  Accepts NULL (returns 0).  Returns the number of
 * events that were accepted by errq_report() but are neither acknowledged nor spooled: lost
 * (0 when everything was delivered or spooled).  client is invalid afterwards.  In a forked
 * child it only frees memory and returns the events in the child's queue. */
ERRQ_EXPORT size_t errq_client_close(errq_client_t *client, int timeout_ms);
/* The same, and when final is not NULL fills it with the client's last counters (after the
 * spool was written), e.g. to log them at exit. */
ERRQ_EXPORT size_t errq_client_close_stats(errq_client_t *client, int timeout_ms,
					   errq_stats_t *final);

#ifdef __cplusplus
}
#endif
#endif
