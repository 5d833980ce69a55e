/* quota.h: spike protection, token buckets on events per second (issue 14).
 *
 * One bucket per service and one for the whole collector.  The Report service asks
 * quota_take() once per valid event, on the gRPC queue threads; an event that finds a bucket
 * empty is rejected with `quota_exceeded: ...`, and the writer still counts it in its group
 * and service (flagged as not stored), so a storm stays visible while storage is protected.
 *
 * Arithmetic: a bucket holds up to `burst` tokens and gains `rate` tokens per second of the
 * monotonic clock; an event takes one token from its service's bucket and one from the
 * global bucket, or from neither (checked both before either is taken, so an event the
 * global bucket refuses costs its service nothing).  Tokens are kept in nano-tokens (integer
 * arithmetic: 1 token = 1e9), so a rate of 1 event/s refills one nano-token per ns.
 *
 * Bounds and policy at the limit: the per-service table has QUOTA_MAX_SERVICES slots
 * (open addressing, QUOTA_PROBE slots looked at per service).  A service that finds no slot
 * takes a slot whose bucket has refilled to full (an idle service: forgetting it loses
 * nothing, a full bucket is what a new one starts with); when every slot it may use is busy,
 * the service shares one bucket with every other such service (`shared`, same rate and
 * burst), counted in quota_stats.shared_events.
 *
 * Overrides: per-service rate and burst, from quota.service_overrides ("svc=RATE[/BURST],..."),
 * at most QUOTA_MAX_OVERRIDES; an override of 0 turns the service's bucket off.
 *
 * Threads: every function may be called from any thread; one mutex guards the buckets (held
 * for a hash and a few comparisons per event: measured in docs/benchmarks.md). */
#ifndef ERRQD_QUOTA_H
#define ERRQD_QUOTA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUOTA_MAX_SERVICES 4096 /* per-service buckets (the shared bucket beyond): ~600 KiB */
#define QUOTA_PROBE 8              /* slots looked at for one service */
#define QUOTA_MAX_OVERRIDES 64     /* services with a rate of their own */
#define QUOTA_SERVICE_MAX 128      /* = VALIDATE_MAX_SERVICE: longer names are cut (validate does) */
#define QUOTA_MAX_RATE 10000000    /* events/s: keeps rate * elapsed in 64 bits */
#define QUOTA_REASON_MAX 160       /* = VALIDATE_REASON_MAX */

struct quota_opts {
	uint64_t rate, burst;                 /* global: events/s (0 = off) and bucket size */
	uint64_t service_rate, service_burst; /* each service's (0 = off) */
	const char *overrides;                /* "svc=RATE[/BURST],..." or NULL / "" */
	size_t max_services;                  /* slots; 0 = QUOTA_MAX_SERVICES (tests use fewer) */
};

struct quota_stats {
	uint64_t rejected_service; /* events refused by a service's bucket */
	uint64_t rejected_global;  /* ... by the global bucket */
	uint64_t shared_events;    /* events of services that found no slot (the shared bucket) */
	uint64_t services;         /* slots in use now */
};

struct quota;

/* Checks the options (burst 0 with a rate means burst = rate) and makes the buckets, full.
 * Returns 0, or -1 with a one-line reason (a bad override names it).  *out is NULL when every
 * bucket is off (no cost at all per event). */
int quota_new(struct quota **out, const struct quota_opts *o, char *err, size_t errsz);
void quota_free(struct quota *q); /* accepts NULL */

/* One event of service at now_ns (errq_mono_ns(), injected for tests).  Returns true when it
 * may be stored (a token taken from each bucket that is on), false with reason set to
 * "quota_exceeded: service 'x' over N events/s" or "quota_exceeded: collector over N
 * events/s".  q NULL: always true. */
bool quota_take(struct quota *q, const char *service, uint64_t now_ns, char reason[QUOTA_REASON_MAX]);

void quota_get_stats(struct quota *q, struct quota_stats *st); /* zeros for NULL */
#endif
