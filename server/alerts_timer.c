/* alerts_timer.c: the writer's tick: deadlines of open circuits, reminders, silences ending. */
#include "alerts_int.h"

#include "errq_banned.h"

/* ---- timers ---- */

static int tick_txn(struct alerts *a, struct store *s, void *arg)
{
	(void)arg;
	uint64_t now = a->clock();
	const struct ruleset *rs = alerts__rs(a);
	for (struct centry *e = a->active, *next; e; e = next) {
		next = e->anext;
		uint64_t d = circuit_next_deadline(e->c);
		if (!d || d > now)
			continue;
		if (alerts__touch(a, e))
			return alerts__oom();
		const struct rule *r = alerts__entry_rule(a, e);
		struct circuit_out out;
		circuit_tick(e->c, &r->circuit, now, &out);
		if (alerts__apply(a, s, rs, r, e, &out, NULL, NULL, now))
			return -1;
	}
	return alerts__save_touched(a, s, now);
}

uint64_t alerts_hook_tick(void *ctx, struct store *s)
{
	struct alerts *a = ctx;
	ALERTS_ON_WRITER(a);
	uint64_t mono = errq_mono_ns(), fleet_wake = 0;
	if (a->fleet && !alerts__fleet_tick(a, s, &fleet_wake))
		return fleet_wake; /* not the leader: nothing of the rest is this collector's */
	if (!a->loaded && alerts__load(a, s))
		return mono + ERRQ_NS_PER_SEC;
	alerts__apply_reports(a, s);
	uint64_t now = a->clock();
	bool due = false;
	for (struct centry *e = a->active; e && !due; e = e->anext)
		due = circuit_next_deadline(e->c) <= now;
	if (due && alerts__in_txn(a, s, tick_txn, NULL))
		return mono + ERRQ_NS_PER_SEC;
	/* silences that ended: their firing alerts are delivered now */
	for (size_t i = 0; i < a->n_sil;) {
		if (a->sil[i].ends > now) {
			i++;
			continue;
		}
		alerts__silence_ended(a, s, i);
	}
	if (a->backlog || a->n_retry)
		alerts__feed_backlog(a, s);
	/* when to come back: the earliest deadline or silence end */
	uint64_t next = 0;
	now = a->clock();
	for (struct centry *e = a->active; e; e = e->anext) {
		uint64_t d = circuit_next_deadline(e->c);
		if (d && (!next || d < next))
			next = d;
	}
	for (size_t i = 0; i < a->n_sil; i++)
		if (!next || a->sil[i].ends < next)
			next = a->sil[i].ends;
	uint64_t wake = next ? mono + (next > now ? next - now : 0) : 0;
	pthread_mutex_lock(&a->rep_mu);
	bool reports = a->n_reports && !a->report_job_queued;
	pthread_mutex_unlock(&a->rep_mu);
	uint64_t soon = mono + ALERTS_RESUBMIT_MS * ERRQ_NS_PER_MS;
	if ((a->backlog || a->n_retry || reports || alerts__log_poll(a)) && (!wake || soon < wake))
		wake = soon;
	if (fleet_wake && (!wake || fleet_wake < wake))
		wake = fleet_wake; /* the leader takes increments every FLEET_EVAL_MS */
	return wake;
}
