/* services.h: the gRPC services errqd serves on top of transport.h. */
#ifndef ERRQD_SERVICES_H
#define ERRQD_SERVICES_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "validate.h"

struct transport;
struct ingest;
struct tail_hub;
struct alerts;
struct overflow_watch;

/* errq.v1.Collector/Report: the bidirectional ingest stream (svc_report.c). */
#ifdef ERRQ_TEST_LIMITS
#define REPORT_MAX_UNANSWERED 4   /* batches read from one stream and not yet answered */
#else
#define REPORT_MAX_UNANSWERED 64
#endif
/* failures in one ReportRequest; more ends the call with RESOURCE_EXHAUSTED, nothing stored */
#define REPORT_MAX_BATCH_EVENTS 10000
/* Bytes of answers a stream may hold (built or reserved for the batches it has in the
 * pipeline, not yet sent to a client that reads them): at the limit errqd reads no new batch
 * of that stream; and of all streams together: past it, only streams holding none are read.
 * A stream that stays over without one answer taken for REPORT_ANSWER_STALL_MS ends with
 * RESOURCE_EXHAUSTED (its unsent answers are dropped: those batches are committed, the
 * client resends them and they count as duplicates).  docs/protocol.md, Semantics. */
#define REPORT_MAX_ANSWER_BYTES (1u << 20)
#define REPORT_MAX_ANSWER_BYTES_TOTAL (64u << 20)
#define REPORT_ANSWER_STALL_MS 10000
#define REPORT_ANSWER_SWEEP_MS 500 /* how often stalled streams are looked for */
/* memory one decoded batch may take (8x the largest message); more ends the call with
 * RESOURCE_EXHAUSTED: nested empty frames or details decode to ~30x their wire size */
#define REPORT_MAX_DECODED_BYTES (32 << 20)
/* decoded bytes per wire byte, at most (measured: ~65 for a message of empty frames); the
 * room a message reserves in the decoded budget (ingest_queue_bytes) before it is decoded */
#define REPORT_DECODE_FACTOR_MAX 80
struct report_svc;
/* Since start: what the streams brought (counted as decoded, before storing). */
struct report_stats {
	_Atomic uint64_t events_received, batches_received;
	_Atomic uint64_t batches_malformed, batches_too_large; /* ended their call */
	_Atomic uint64_t answer_bytes;           /* held now, all streams (REPORT_MAX_ANSWER_BYTES_TOTAL) */
	_Atomic uint64_t answer_paused_total;     /* times a stream's reads stopped for its answers */
	_Atomic uint64_t answer_ended_total;      /* streams ended: answers unread past the stall deadline */
	_Atomic uint64_t rejected[VALIDATE_N_REJECT_CODES + 1]; /* by validate_reject_codes; last: other */
};
struct report_stats_snapshot {
	uint64_t events_received, batches_received, batches_malformed, batches_too_large;
	uint64_t answer_bytes, answer_paused_total, answer_ended_total;
	uint64_t rejected[VALIDATE_N_REJECT_CODES + 1];
};
void report_svc_get_stats(struct report_svc *r, struct report_stats_snapshot *out);
struct report_svc *report_svc_new(struct ingest *ig);
/* Events of a service the caller's credential may not report are rejected alone
 * (service_not_allowed; auth.h).  Before report_svc_register; without it, none is. */
struct auth;
void report_svc_set_auth(struct report_svc *r, struct auth *auth);
int report_svc_register(struct report_svc *r, struct transport *t);
/* The free-disk floor (diskguard.h): below it, each batch read ends its call with UNAVAILABLE
 * and the reason, unread and unacknowledged.  Set before the transport starts. */
struct diskguard;
void report_svc_set_diskguard(struct report_svc *r, struct diskguard *g);
/* Valid events over q's buckets are rejected with quota_exceeded and counted, not stored
 * (quota.h).  Before report_svc_register; q outlives r.  NULL (the default): no quota. */
struct quota;
void report_svc_set_quota(struct report_svc *r, struct quota *q);
/* Shutdown, step 1: read no more; every call ends with UNAVAILABLE once its read batches are
 * answered. */
void report_svc_drain(struct report_svc *r);
/* Waits until no call is left (true) or the timeout passes (false). */
bool report_svc_wait_calls(struct report_svc *r, uint64_t timeout_ns);
void report_svc_free(struct report_svc *r); /* after every call is gone; accepts NULL */
size_t report_svc_streams(struct report_svc *r); /* live streams now */

/* errq.v1.Query (svc_query.c): reads through per-thread read-only connections. */
#define QUERY_DEFAULT_LIMIT 100
#define QUERY_MAX_LIMIT 1000
struct query_svc;
struct query_svc_opts {
	const char *db_path;       /* NULL: storage none */
	struct ingest *ig;         /* for Status */
	struct report_svc *rs;     /* for Status */
	struct tail_hub *tail;     /* for Status */
	struct alerts *alerts;     /* for Status; NULL with storage: none */
	const char *name, *durability, *storage;
	uint64_t started_ns;
	uint32_t queue_capacity;
	struct overflow_watch *overflow; /* for Status; NULL: no groups_per_service */
	struct fleet *fleet;       /* for Status; NULL: not one of several collectors on one database */
};
struct query_svc *query_svc_new(const struct query_svc_opts *o);
int query_svc_register(struct query_svc *q, struct transport *t);
void query_svc_free(struct query_svc *q);

/* grpc.health.v1.Health/Check (svc_health.c): SERVING while health_ready(h). */
struct health;
int health_svc_register(struct transport *t, struct health *h);
#endif
