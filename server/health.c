/* health.c: liveness and readiness (health.h).  Everything here reads state that other
 * modules publish under their own locks or in atomics; the table of threads is written only
 * at start-up, before the HTTP listener and the gRPC health service can read it. */
#include "health.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "errq_str.h"
#include "diskguard.h"
#include "errq_time.h"
#include "ingest.h"
#include "storage.h"

struct health_thread {
	char name[48];
	health_turn_fn fn;
	void *ctx;
};

struct health {
	struct health_thread threads[HEALTH_MAX_THREADS];
	size_t n_threads;
	struct ingest *ig;
	struct diskguard *guard;
	uint64_t queue_full_after_ns;
	atomic_bool started, draining;
};

struct health *health_new(void)
{
	return calloc(1, sizeof(struct health));
}

void health_free(struct health *h)
{
	free(h);
}

int health_add_thread(struct health *h, const char *name, health_turn_fn fn, void *ctx)
{
	if (h->n_threads == HEALTH_MAX_THREADS)
		return -1;
	struct health_thread *t = &h->threads[h->n_threads++];
	errq_snprintf(t->name, sizeof(t->name), "%s", name);
	t->fn = fn;
	t->ctx = ctx;
	return 0;
}

void health_set_ingest(struct health *h, struct ingest *ig, uint64_t queue_full_after_ns)
{
	h->ig = ig;
	h->queue_full_after_ns = queue_full_after_ns;
}

void health_set_diskguard(struct health *h, struct diskguard *g)
{
	h->guard = g;
}

void health_set_draining(struct health *h)
{
	atomic_store(&h->draining, true);
}

void health_set_started(struct health *h)
{
	atomic_store(&h->started, true);
}

static unsigned secs(uint64_t ns)
{
	return (unsigned)(ns / ERRQ_NS_PER_SEC);
}

bool health_live(struct health *h, uint64_t now, char *reason, size_t rsz)
{
	for (size_t i = 0; i < h->n_threads; i++) {
		uint64_t turned = h->threads[i].fn(h->threads[i].ctx);
		if (turned && now > turned && now - turned > HEALTH_STALL_NS) {
			errq_snprintf(reason, rsz, "thread '%s' has not turned for %us", h->threads[i].name,
				      secs(now - turned));
			return false;
		}
	}
	errq_snprintf(reason, rsz, "ok");
	return true;
}

const char *health_store_class_words(int cls)
{
	switch (cls) {
	case STORE_ERR_FULL: return "disk full";
	case STORE_ERR_UNWRITABLE: return "database unwritable";
	case STORE_ERR_LOCKED: return "database locked";
	case STORE_ERR_UNAVAILABLE: return "database unavailable";
	default: return "database error";
	}
}

bool health_ready(struct health *h, uint64_t now, char *reason, size_t rsz)
{
	if (atomic_load(&h->draining)) {
		errq_snprintf(reason, rsz, "shutting down");
		return false;
	}
	if (!atomic_load(&h->started)) {
		errq_snprintf(reason, rsz, "starting");
		return false;
	}
	if (h->ig) {
		struct ingest_health ih;
		ingest_get_health(h->ig, &ih);
		if (ih.failing_since && now - ih.failing_since >= HEALTH_STORE_FAILING_NS &&
		    now - ih.last_failed < HEALTH_STORE_FRESH_NS) {
			errq_snprintf(reason, rsz, "%s for %us: %s", health_store_class_words(ih.store_error),
				      secs(now - ih.failing_since), ih.error);
			return false;
		}
		if (diskguard_low(h->guard, reason, rsz))
			return false;
		if (h->queue_full_after_ns && ih.saturated_since && now - ih.saturated_since > h->queue_full_after_ns) {
			errq_snprintf(reason, rsz, "ingest queue full for %us (streams wait for room)",
				      secs(now - ih.saturated_since));
			return false;
		}
	}
	errq_snprintf(reason, rsz, "ok");
	return true;
}
