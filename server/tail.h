/* tail.h: errq.v1.Query/Tail — committed events pushed to subscribers.
 *
 * The ingest writer publishes every batch it commits (tail_publish, its commit hook).  With
 * no subscriber that costs one atomic load.  Otherwise each new event is encoded once (when
 * some subscriber's filters match it) and a reference to the bytes is queued on each
 * matching subscriber.  A subscriber queues at most TAIL_MAX_PENDING messages and
 * TAIL_MAX_PENDING_BYTES bytes: past that its oldest are dropped and counted, and the count
 * goes out in the next message's `dropped`.  A slow subscriber never slows ingest: the writer
 * only appends to queues; sends happen on the call's completion-queue thread.
 *
 * On PostgreSQL, where several collectors share the database, the events the OTHER
 * collectors commit come in through tail_fleet.c's listener (tail_publish_stored), into the
 * same queues with the same filters and bounds. */
#ifndef ERRQD_TAIL_H
#define ERRQD_TAIL_H
#include <stddef.h>
#include <stdint.h>

#define TAIL_MAX_PENDING 1024
#define TAIL_MAX_PENDING_BYTES (4u << 20)
#define TAIL_MAX_SUBSCRIBERS 256 /* more: RESOURCE_EXHAUSTED */

struct transport;
struct ingest_batch;
struct store_event;
struct tail_hub;

struct tail_hub *tail_hub_new(void);
int tail_hub_register(struct tail_hub *h, struct transport *t);
/* The ingest commit hook (ctx is the hub). */
void tail_publish(void *ctx, const struct ingest_batch *list);
/* An event another collector committed, read back from the database (tail_fleet.c's thread). */
void tail_publish_stored(struct tail_hub *h, const struct store_event *e);
/* Adds n to every subscriber's drop count, sent with its next message: events the hub knows
 * it could not bring (tail_fleet.c: its queue was full, a fetch failed). */
void tail_hub_add_dropped(struct tail_hub *h, uint64_t n);
size_t tail_hub_subscribers(struct tail_hub *h);
/* After every call is gone (the transport is shut down and its queues drained).  Accepts NULL. */
void tail_hub_free(struct tail_hub *h);
#endif
