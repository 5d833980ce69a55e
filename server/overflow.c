/* overflow.c: one warning per service that passes groups_per_service (overflow.h). */
#include "overflow.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errq_hash.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "ingest.h"
#include "storage.h"
#include "store_overflow.h"
#include "errq_banned.h"

struct check_slot {
	uint64_t hash;       /* 0: empty */
	uint64_t checked_ns; /* monotonic; a service without an overflow group then */
	bool overflowing;    /* found: never looked up again */
};

struct overflow_watch {
	uint32_t limit;
	pthread_mutex_t mu; /* list, n, more: read by Status threads */
	struct overflow_service list[OVERFLOW_MAX_SERVICES];
	size_t n;
	uint64_t more;
	/* writer thread only */
	uint64_t seen_events; /* the writer's overflow_events at the last commit */
	struct check_slot cache[OVERFLOW_CACHE_SLOTS];
};

struct overflow_watch *overflow_watch_new(uint32_t limit)
{
	struct overflow_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->limit = limit;
	pthread_mutex_init(&w->mu, NULL);
	return w;
}

void overflow_watch_free(struct overflow_watch *w)
{
	if (!w)
		return;
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static uint64_t service_hash(const char *s)
{
	uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, s, strlen(s));
	return h ? h : 1; /* 0 marks an empty slot */
}

static void found(struct overflow_watch *w, const char *service)
{
	char fp[STORE_OVERFLOW_FP_LEN + 1], lim[24];
	store_overflow_fingerprint(service, fp);
	errq_snprintf(lim, sizeof(lim), "%u", w->limit);
	pthread_mutex_lock(&w->mu);
	bool listed = false;
	for (size_t i = 0; i < w->n && !listed; i++)
		listed = strcmp(w->list[i].service, service) == 0;
	pthread_mutex_unlock(&w->mu);
	if (listed)
		return; /* its check slot was taken by another service: said once already */
	errq_logkv(ERRQ_LOG_WARN, "service passed groups_per_service: its new fingerprints count in its overflow group",
		   "service", service, "groups_per_service", lim, "overflow_group", fp, NULL);
	pthread_mutex_lock(&w->mu);
	if (w->n < OVERFLOW_MAX_SERVICES) {
		errq_snprintf(w->list[w->n].service, sizeof(w->list[w->n].service), "%s", service);
		w->list[w->n].since_ns = errq_now_ns();
		w->n++;
	} else {
		w->more++;
	}
	pthread_mutex_unlock(&w->mu);
}

void overflow_watch_commit(struct overflow_watch *w, struct store *s, const struct ingest_batch *list)
{
	struct store_write_stats ws;
	store_get_write_stats(s, &ws);
	if (ws.overflow_events == w->seen_events)
		return; /* nothing went to an overflow group: the common case, one comparison */
	w->seen_events = ws.overflow_events;
	uint64_t now = errq_mono_ns(), looked[OVERFLOW_MAX_LOOKUPS];
	size_t nlooked = 0;
	const char *prev = NULL;
	for (const struct ingest_batch *b = list; b && nlooked < OVERFLOW_MAX_LOOKUPS; b = b->next)
		for (size_t i = 0; i < b->n_events && nlooked < OVERFLOW_MAX_LOOKUPS; i++) {
			const struct ingest_event *ev = &b->events[i];
			if (!ev->tf || ev->result == INGEST_DUPLICATE || !ev->tf->service)
				continue;
			const char *svc = ev->tf->service;
			if (prev && strcmp(prev, svc) == 0)
				continue; /* runs of one service: the usual batch */
			prev = svc;
			uint64_t h = service_hash(svc);
			struct check_slot *c = &w->cache[h % OVERFLOW_CACHE_SLOTS];
			if (c->hash == h && (c->overflowing || now - c->checked_ns < OVERFLOW_RECHECK_NS))
				continue;
			bool dup = false;
			for (size_t k = 0; k < nlooked && !dup; k++)
				dup = looked[k] == h;
			if (dup)
				continue;
			looked[nlooked++] = h;
			uint64_t total = 0;
			int rc = store_overflow_group(s, svc, &total);
			if (rc < 0)
				return; /* retried at the next commit that overflows */
			c->hash = h;
			c->checked_ns = now;
			c->overflowing = rc == 1;
			if (rc == 1)
				found(w, svc);
		}
}

size_t overflow_watch_list(struct overflow_watch *w, struct overflow_service *out, size_t max, uint64_t *more)
{
	pthread_mutex_lock(&w->mu);
	size_t n = w->n < max ? w->n : max;
	memcpy(out, w->list, n * sizeof(*out));
	*more = w->more + (w->n - n);
	pthread_mutex_unlock(&w->mu);
	return n;
}
