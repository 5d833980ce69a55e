/* health.h: is errqd alive, and is it ready?  One answer for /livez, /readyz (/healthz) and
 * grpc.health.v1.Health, so that the HTTP probes and the gRPC health service never disagree.
 *
 * Liveness: every long-lived thread that does errqd's work (the ingest writer, each
 * completion-queue thread, the notifier's loop) turns at least once a second, even when idle,
 * and records when (a getter per thread, registered with health_add_thread).  errqd is alive
 * while each of them turned within HEALTH_STALL_NS.  Liveness is for restarts: nothing that a
 * restart cannot mend (a full disk, a locked database, a flood of clients) affects it.
 *
 * Readiness: errqd can accept and commit events.  Not ready, with a one-line reason, when
 *  - it is shutting down (draining);
 *  - the writer's transactions have failed for HEALTH_STORE_FAILING_NS or more (disk full,
 *    database unwritable or locked), until one commits again or none has been tried for
 *    HEALTH_STORE_FRESH_NS;
 *  - the database's filesystem has less free space than min_free_disk (diskguard.h);
 *  - the ingest queue has had streams waiting for room without a break for longer than the
 *    readiness_queue_full_after setting (0: never).
 * Readiness is for routing traffic away from a collector that cannot take it, never for
 * restarting it.
 *
 * Threads: health_add_thread and health_set_ingest are called at start-up, before any probe;
 * health_live and health_ready may be called from any thread at once (they only read). */
#ifndef ERRQD_HEALTH_H
#define ERRQD_HEALTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEALTH_MAX_THREADS 72                    /* writer + notifier + up to 64 queues + headroom */
#define HEALTH_STALL_NS (30ull * 1000000000ull)  /* a thread that has not turned for this long is stuck */
#define HEALTH_STORE_FAILING_NS (1000000000ull)  /* failing writes for this long make errqd unready */
/* ... while the last one failed this recently: a full disk with no write since (no traffic
 * came, or it was refused) does not keep errqd unready forever after space came back */
#define HEALTH_STORE_FRESH_NS (10ull * 1000000000ull)
#define HEALTH_REASON_MAX 256

struct ingest;
struct health;

/* Returns the errq_mono_ns() time the thread last turned. */
typedef uint64_t (*health_turn_fn)(void *ctx);

struct health *health_new(void);
void health_free(struct health *h); /* accepts NULL */
/* name is copied.  Returns 0, or -1 past HEALTH_MAX_THREADS. */
int health_add_thread(struct health *h, const char *name, health_turn_fn fn, void *ctx);
/* The ingest queue whose store failures and saturation decide readiness (NULL: none yet). */
void health_set_ingest(struct health *h, struct ingest *ig, uint64_t queue_full_after_ns);
/* The free-disk floor that decides readiness (NULL: none). */
struct diskguard;
void health_set_diskguard(struct health *h, struct diskguard *g);
/* "disk full", "database unwritable", ...: the words for an enum store_errclass. */
const char *health_store_class_words(int cls);
/* Not ready from now on (shutdown). */
void health_set_draining(struct health *h);
/* Ready once start-up is over (until then: "starting"). */
void health_set_started(struct health *h);

/* True when every registered thread turned recently; otherwise false with the first stuck
 * thread's name and how long it has been stuck in reason. */
bool health_live(struct health *h, uint64_t now_mono_ns, char *reason, size_t rsz);
/* True when errqd can accept and commit; otherwise false with the reason. */
bool health_ready(struct health *h, uint64_t now_mono_ns, char *reason, size_t rsz);
#endif
