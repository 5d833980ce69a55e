/* notify_refresh.c: Alertmanager re-posts (notify_int.h).  A firing delivered to a type that
 * re-posts stays in the pending list as its alert's refresh entry and goes again every
 * refresh_ms, so that Alertmanager keeps the alert until errq resolves it; a newer notice of
 * the alert ends it.  The loop thread's, like the list. */
#include <string.h>

#include "notify_int.h"
#include "errq_log.h"
#include "errq_time.h"
#include "errq_banned.h"

/* True when the list holds a delivery of p's key other than p (a newer notice). */
static bool newer_of_key(struct notifier *n, const struct pending *p)
{
	for (struct pending *q = n->head; q; q = q->next)
		if (q != p && strcmp(q->d->order_key, p->d->order_key) == 0)
			return true;
	return false;
}

/* True when NOTIFY_MAX_REFRESH entries are held (p cannot be one more); warns once. */
bool notify__refresh_full(struct notifier *n, const struct pending *p)
{
	if (n->nrefresh < NOTIFY_MAX_REFRESH)
		return false;
	if (!n->refresh_full_logged)
		errq_logkv(ERRQ_LOG_WARN, "notifier: too many firing alerts to re-post; Alertmanager resolves the others "
					  "when their endsAt passes", "notifier", p->d->dest, NULL);
	n->refresh_full_logged = true;
	return true;
}

/* p, a firing just delivered to a type that re-posts (Alertmanager), becomes its alert's
 * refresh entry: it leaves the NOTIFY_MAX_PENDING count (its outbox row is done) and goes
 * again every refresh_ms until a newer notice of the alert comes.  False when it cannot (a
 * newer notice is already queued, or NOTIFY_MAX_REFRESH are held): the caller frees it. */
bool notify__to_refresh(struct notifier *n, struct pending *p, uint64_t now)
{
	if (newer_of_key(n, p) || atomic_load(&n->no_refresh))
		return false;
	if (notify__refresh_full(n, p))
		return false;
	pthread_mutex_lock(&n->mu);
	n->held--;
	pthread_mutex_unlock(&n->mu);
	n->nrefresh++;
	p->refresh = true;
	p->d->id = 0;
	p->due = now + (uint64_t)p->refresh_ms * ERRQ_NS_PER_MS;
	notify__unlink_pending(n, p); /* to the tail: behind nothing of its key (newer_of_key) */
	notify__list_append(&n->head, &n->tail, p);
	n->npending++;
	return true;
}

/* A re-post ended: it teaches the breaker like any attempt, and goes again in refresh_ms
 * (a failed one too: endsAt leaves room for NOTIFY_AM_ENDS_FACTOR - 1 missed re-posts). */
void notify__refresh_done(struct notifier *n, struct pending *p, struct dest_state *ds, bool ok, bool dest_down,
			  uint64_t now)
{
	notify__count_attempt(n, p->d->dest, ok ? NOTIFY_DELIVERED : NOTIFY_RETRY);
	notify__breaker_result(n, ds, ok, dest_down, now);
	if (p->superseded || !ds || !p->refresh_ms) {
		notify__unlink_pending(n, p);
		notify__release(n, p);
		return;
	}
	p->due = now + (uint64_t)p->refresh_ms * ERRQ_NS_PER_MS;
}

/* A new notice of np's key arrived: the key's refresh entry ends (now, or when its request
 * in flight ends: order per alert). */
void notify__end_refresh(struct notifier *n, const struct pending *np)
{
	for (struct pending *q = n->head, *nx; q && n->nrefresh; q = nx) {
		nx = q->next;
		if (!q->refresh || strcmp(q->d->order_key, np->d->order_key) != 0)
			continue;
		if (q->inflight) {
			q->superseded = true;
		} else {
			notify__unlink_pending(n, q);
			notify__release(n, q);
		}
	}
}
