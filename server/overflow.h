/* overflow.h: says once which service passed groups_per_service (issue 16).
 *
 * When a service has groups_per_service groups, the writer counts the events of its new
 * fingerprints in the service's overflow group (storage/store_overflow.h) and adds them to
 * errq_overflow_events_total.  The watch turns that into one warning per service and process,
 *   service passed groups_per_service: its new fingerprints count in its overflow group
 * with the service, the limit and the overflow group's fingerprint, and a list of the services
 * that overflowed for `errq status` (StatusResponse.overflow_services).
 *
 * How it finds the service: after a commit in which the writer's overflow count grew, the
 * services of that commit's stored (or counted) events that are not yet known to overflow are
 * looked up by their overflow group's fingerprint (one indexed lookup each).  A service found
 * without an overflow group is not looked up again for OVERFLOW_RECHECK_NS, so a storm in one
 * service costs the others at most one lookup a second each; a service that overflows for the
 * first time within that second of being checked is logged at its next overflowing commit.
 * Known services are never looked up again: a service is logged once while errqd runs, and
 * once more after a restart, at its first new fingerprint past the limit (the overflow group
 * itself, with its count, survives).
 *
 * Bounds and policy: OVERFLOW_MAX_SERVICES services are listed (past it they are logged,
 * counted in `more`, not listed); OVERFLOW_MAX_LOOKUPS distinct services are looked at per
 * commit (the rest at a later commit); the recent checks live in OVERFLOW_CACHE_SLOTS slots
 * (a collision forgets a check: one lookup more, never a second log line of a listed service;
 * a service past the list may be logged again after one).
 *
 * Threads: overflow_watch_commit on the writer thread only (it reads with the writer's handle
 * between transactions); overflow_watch_list from any thread. */
#ifndef ERRQD_OVERFLOW_H
#define ERRQD_OVERFLOW_H
#include <stddef.h>
#include <stdint.h>

#define OVERFLOW_MAX_SERVICES 256
#define OVERFLOW_MAX_LOOKUPS 64
#define OVERFLOW_CACHE_SLOTS 1024
#define OVERFLOW_RECHECK_NS (1000ULL * 1000000ULL)
#define OVERFLOW_SERVICE_MAX 128 /* = VALIDATE_MAX_SERVICE */

struct overflow_watch;
struct store;
struct ingest_batch;

/* limit: groups_per_service (for the log line).  NULL when out of memory. */
struct overflow_watch *overflow_watch_new(uint32_t limit);
void overflow_watch_free(struct overflow_watch *w); /* accepts NULL */
/* Writer thread, after each commit, with the writer's store and the committed batches. */
void overflow_watch_commit(struct overflow_watch *w, struct store *s, const struct ingest_batch *list);

struct overflow_service {
	char service[OVERFLOW_SERVICE_MAX + 1];
	uint64_t since_ns; /* wall clock when the watch found it */
};
/* Copies up to max listed services (in the order found) to out; returns how many; *more: the
 * services that overflowed past OVERFLOW_MAX_SERVICES. */
size_t overflow_watch_list(struct overflow_watch *w, struct overflow_service *out, size_t max, uint64_t *more);
#endif
