/* tail_fleet.h: `errq tail` across collectors on one PostgreSQL database (issue 17).
 *
 * tail.c publishes what this collector's writer commits.  On PostgreSQL several collectors
 * share the database, and a tail must show what every one of them commits: this module's
 * thread, with a read-only connection of its own, LISTENs for the notices each writer sends
 * in its transactions (storage.h, store_tail_listen), fetches the rows of the OTHER
 * collectors' notices and publishes them to the hub's subscribers (tail_publish_stored), with
 * the same filters and bounds.  It runs from start to stop, subscribers or not (with none it
 * reads and discards the notices, fetching nothing), so a new subscriber misses nothing while
 * a listener would connect.  It never runs on the writer's or the gRPC threads: a slow
 * database slows only it.  Events it knows it lost (its queue full, a failed fetch) go into
 * every subscriber's `dropped`; while its connection is down (reconnected with backoff), the
 * others' events are not tailed, and a warning says so. */
#ifndef ERRQD_TAIL_FLEET_H
#define ERRQD_TAIL_FLEET_H
#include <stdint.h>

#define TAIL_FLEET_WAIT_MS 250       /* one wait for notices: how soon a stop is seen */
#define TAIL_FLEET_RETRY_MS 100      /* after a failure: the first pause ... */
#define TAIL_FLEET_RETRY_MAX_MS 5000 /* ... doubling to this while opening fails */

struct tail_hub;
struct tail_fleet;

/* Starts the listener on database URL db (a PostgreSQL one) for hub.  0, or -1 (out of
 * memory, no thread).  A database that cannot be reached is not an error: it retries. */
int tail_fleet_start(struct tail_fleet **out, struct tail_hub *hub, const char *db);
/* Events published from the others, and events known missed, so far (f may be NULL). */
void tail_fleet_stats(struct tail_fleet *f, uint64_t *events, uint64_t *missed);
/* Stops and joins the thread (within TAIL_FLEET_WAIT_MS, or a statement's time), before the
 * hub's calls go.  Accepts NULL. */
void tail_fleet_stop(struct tail_fleet *f);
#endif
