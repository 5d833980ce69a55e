/* alerts_txn.c: the writer's transaction hooks: matching a batch against the rules, saving
 * the circuits it touched, and after COMMIT or ROLLBACK keeping or undoing memory. */
#include "alerts_int.h"

#include "errq_banned.h"

/* ---- transactions: begin, save, end ---- */

static void begin_work(struct alerts *a)
{
	a->gen++;
	a->touched = NULL;
	a->subs = NULL;
	a->subs_tail = &a->subs;
	memset(&a->txn_st, 0, sizeof(a->txn_st));
}

int alerts__save_touched(struct alerts *a, struct store *s, uint64_t now)
{
	for (struct centry *e = a->touched; e; e = e->tnext) {
		if (e->doomed)
			continue;
		size_t n = circuit_save(e->c, a->save_buf, sizeof(a->save_buf));
		uint64_t at = now > e->c->clock ? now : e->c->clock;
		struct store_circuit row = {
		    .id = e->row_id,
		    .rule = alerts__entry_rule(a, e)->name,
		    .key = e->key,
		    .def_hash = alerts__entry_rule(a, e)->def_hash,
		    .state = (int)e->c->state,
		    .since_ns = e->c->since,
		    .failures_in_window = circuit_window_failures(e->c, at),
		    .next_transition_ns = circuit_next_transition(e->c),
		    .alert_id = e->has_alert ? e->alert_id : NULL,
		    .saved = a->save_buf,
		    .saved_len = n,
		    .updated_ns = now,
		};
		int64_t id = 0;
		if (store_circuit_put(s, &row, &id))
			return -1;
		if (!e->row_id)
			e->row_id = id;
	}
	return 0;
}

static void add_stats(struct alerts_stats *to, const struct alerts_stats *d)
{
	to->failures_matched += d->failures_matched;
	to->failures_too_old += d->failures_too_old;
	to->failures_expired += d->failures_expired;
	to->overflow_failures += d->overflow_failures;
	to->transitions += d->transitions;
	to->alerts_fired += d->alerts_fired;
	to->alerts_resolved += d->alerts_resolved;
	to->reminders += d->reminders;
	to->deliveries_silenced += d->deliveries_silenced;
	to->outcome_batches += d->outcome_batches;
	to->outcome_batches_duplicate += d->outcome_batches_duplicate;
}

/* Hands the deliveries of the committed transaction to the notifier, in id order.  One
 * refused (the notifier holds NOTIFY_MAX_PENDING) starts the backlog at its id. */
static void flush_subs(struct alerts *a)
{
	for (struct sub *sb = a->subs, *next; sb; sb = next) {
		next = sb->next;
		int64_t id = (int64_t)sb->d->id;
		if ((!a->backlog || sb->resend) && notify_submit(a->notifier, sb->d) == 0) {
			a->held++;
		} else {
			free(sb->d);
			if (a->fleet) { /* leased to this collector: the lease ends at the next tick */
				if (a->retry_ids && a->n_retry < NOTIFY_MAX_PENDING)
					a->retry_ids[a->n_retry++] = id;
				else
					LOG_WARN("alerts: a refused delivery stays leased until its lease ends (retry list full)");
			} else if (sb->resend) {
				if (a->retry_ids && a->n_retry < NOTIFY_MAX_PENDING)
					a->retry_ids[a->n_retry++] = id;
				else
					LOG_WARN("alerts: a resent delivery waits for a restart (notifier and retry list full)");
			} else if (!a->backlog) {
				a->backlog = true; /* new rows have the largest ids: all of them wait from here */
				a->backlog_from = id;
			}
		}
		free(sb);
	}
	a->subs = NULL;
	a->subs_tail = &a->subs;
}

void alerts__end_work_entries(struct alerts *a, bool committed)
{
	for (struct centry *e = a->touched, *next; e; e = next) {
		next = e->tnext;
		e->tnext = NULL;
		if (committed) {
			free(e->undo_c);
			if (e->undo_sample != e->sample)
				free(e->undo_sample);
		} else if (e->created) {
			alerts__unlink_entry(a, e);
			if (strcmp(e->key, RULES_OVERFLOW_KEY) && e->rule_idx < alerts__rs(a)->n_rules)
				a->rt[e->rule_idx].n_circuits--;
			alerts__free_entry(a, e);
			continue;
		} else {
			memcpy(e->c, e->undo_c, circuit_size(&alerts__entry_rule(a, e)->circuit));
			free(e->undo_c);
			e->row_id = e->undo_row_id;
			e->has_alert = e->undo_has_alert;
			memcpy(e->alert_id, e->undo_alert_id, 16);
			e->notices = e->undo_notices;
			e->opened_at = e->undo_opened_at;
			if (e->sample != e->undo_sample)
				free(e->sample);
			e->sample = e->undo_sample;
			e->sample_loaded = e->undo_sample_loaded;
			e->doomed = false;
			alerts__set_active(a, e);
		}
		e->undo_c = NULL;
		e->undo_sample = NULL;
		e->created = false;
	}
	a->touched = NULL;
}

void alerts__publish_counts(struct alerts *a)
{
	uint32_t open = 0, half_open = 0, firing = 0;
	for (struct centry *e = a->active; e; e = e->anext) {
		open += e->c->state != CIRCUIT_CLOSED;
		half_open += e->c->state == CIRCUIT_HALF_OPEN;
		firing += e->c->state != CIRCUIT_CLOSED && e->has_alert;
	}
	pthread_mutex_lock(&a->stats_mu);
	a->st.circuits = (uint32_t)a->n_entries;
	a->st.circuits_open = open;
	a->st.circuits_half_open = half_open;
	a->st.alerts_firing = firing;
	a->st.pending_deliveries = a->held;
	pthread_mutex_unlock(&a->stats_mu);
}

void alerts__end_work_subs(struct alerts *a, bool committed)
{
	if (a->txn_st.overflow_failures) /* per rule, like the totals: only what committed */
		for (size_t i = 0; i < alerts__rs(a)->n_rules; i++) {
			if (committed && a->rt[i].txn_overflow) {
				pthread_mutex_lock(&a->stats_mu);
				a->rt[i].overflow_failures += a->rt[i].txn_overflow;
				pthread_mutex_unlock(&a->stats_mu);
			}
			a->rt[i].txn_overflow = 0;
		}
	if (committed) {
		pthread_mutex_lock(&a->stats_mu);
		add_stats(&a->st, &a->txn_st);
		pthread_mutex_unlock(&a->stats_mu);
		flush_subs(a);
		alerts__publish_counts(a);
	} else {
		for (struct sub *sb = a->subs, *next; sb; sb = next) {
			next = sb->next;
			free(sb->d);
			free(sb);
		}
		a->subs = NULL;
		a->subs_tail = &a->subs;
	}
	memset(&a->txn_st, 0, sizeof(a->txn_st));
}

static void end_work(struct alerts *a, bool committed)
{
	alerts__end_work_entries(a, committed);
	alerts__end_work_subs(a, committed);
}

/* Runs fn(a, s, arg) in a transaction of its own.  On success the caller must end_work. */
int alerts__in_txn_keep(struct alerts *a, struct store *s, int (*fn)(struct alerts *, struct store *, void *),
		       void *arg)
{
	if (store_txn_begin(s))
		return -1;
	begin_work(a);
	/* the fleet's leader: the epoch first, so a collector another one replaced writes nothing */
	bool fence = a->fleet && a->epoch && alerts__fleet_fence(a, s);
	if (fence || fn(a, s, arg) || store_txn_commit(s)) {
		if (!fence || a->fenced != a->epoch) /* a fence said so already, in its own words */
			errq_logkv(ERRQ_LOG_WARN, "alerts: write failed", "error", store_errmsg(s), NULL);
		store_txn_rollback(s);
		end_work(a, false);
		return -1;
	}
	return 0;
}

int alerts__in_txn(struct alerts *a, struct store *s, int (*fn)(struct alerts *, struct store *, void *), void *arg)
{
	if (alerts__in_txn_keep(a, s, fn, arg))
		return -1;
	end_work(a, true);
	return 0;
}

/* ---- the writer's hooks ---- */

struct match_ctx {
	struct alerts *a;
	struct store *s;
	const struct ingest_event *ev;
	const Errq__V1__Outcome *oc;
	uint64_t now;
	int rc;
	bool inputs; /* a fleet's collector that does not lead: increments for the leader */
};

static int on_event_match(void *arg, const struct rule *rule, const char *key, size_t key_len)
{
	struct match_ctx *m = arg;
	struct alerts *a = m->a;
	if (m->inputs) { /* an increment for the leader, whichever collector that is */
		m->rc = alerts__fleet_event(a, m->s, rule, key, key_len, m->ev);
		return m->rc != 0;
	}
	size_t idx = (size_t)(rule - alerts__rs(a)->rules);
	struct centry *e = alerts__get_entry(a, idx, key, key_len, m->now);
	if (!e) {
		m->rc = alerts__oom();
		return 1;
	}
	struct circuit_out out;
	enum circuit_count cnt = circuit_failure(e->c, &rule->circuit, m->now, m->ev->received_ns,
						 m->ev->tf->time_unix_nano, &out);
	a->txn_st.failures_matched += cnt == CIRCUIT_COUNTED;
	a->txn_st.failures_too_old += cnt == CIRCUIT_TOO_OLD;
	a->txn_st.failures_expired += cnt == CIRCUIT_EXPIRED;
	if (alerts__apply(a, m->s, alerts__rs(a), rule, e, &out, m->ev, NULL, m->now)) {
		m->rc = -1;
		return 1;
	}
	return 0;
}

static int feed_outcome(struct match_ctx *m, const struct rule *rule, struct centry *e)
{
	const Errq__V1__Outcome *o = m->oc;
	uint64_t end = o->window_start_unix_nano
			   ? o->window_start_unix_nano + (uint64_t)o->window_seconds * ERRQ_NS_PER_SEC
			   : 0;
	struct circuit_out out;
	circuit_outcome(e->c, &rule->circuit, m->now, m->now, o->ok, o->failed, end, &out);
	return alerts__apply(m->a, m->s, alerts__rs(m->a), rule, e, &out, NULL, o, m->now);
}

static int on_outcome_match(void *arg, const struct rule *rule, const char *key, size_t key_len)
{
	struct match_ctx *m = arg;
	struct alerts *a = m->a;
	if (m->inputs) {
		m->rc = alerts__fleet_outcome(a, m->s, rule, key, key_len, m->oc, m->now);
		return m->rc != 0;
	}
	size_t idx = (size_t)(rule - alerts__rs(a)->rules);
	if (key) {
		struct centry *e = alerts__get_entry(a, idx, key, key_len, m->now);
		if (!e)
			m->rc = alerts__oom();
		else if (feed_outcome(m, rule, e))
			m->rc = -1;
		return m->rc != 0;
	}
	/* an outcome for every HALF_OPEN circuit of the rule with its service and task */
	for (struct centry *e = a->active, *next; e; e = next) {
		next = e->anext;
		if (e->rule_idx != idx || e->c->state != CIRCUIT_HALF_OPEN ||
		    !rules_outcome_applies(rule, e->key, m->oc->service, m->oc->task))
			continue;
		if (alerts__touch(a, e)) {
			m->rc = alerts__oom();
			return 1;
		}
		if (feed_outcome(m, rule, e)) {
			m->rc = -1;
			return 1;
		}
	}
	return 0;
}

static bool wants_outcomes(const struct ruleset *rs)
{
	for (size_t i = 0; i < rs->n_rules; i++)
		if (rs->rules[i].wants_outcomes)
			return true;
	return false;
}

int alerts_hook_txn(void *ctx, struct store *s, const struct ingest_batch *list)
{
	struct alerts *a = ctx;
	ALERTS_ON_WRITER(a);
	begin_work(a);
	/* a fleet's leader evaluates its own events at once, like a lone collector (after checking
	 * it still leads); the others write increments (alerts_fleet.c) */
	int lead = alerts__fleet_leads(a, s);
	if (lead < 0 || (!a->loaded && lead))
		return -1; /* the tick loads circuits first; it failed: retry */
	const struct ruleset *rs = alerts__rs(a);
	if (!rs->n_rules)
		return 0;
	bool outcomes = wants_outcomes(rs);
	struct match_ctx m = {.a = a, .s = s, .now = a->clock(), .inputs = !lead};
	const char *dk[VALIDATE_MAX_DETAILS], *dv[VALIDATE_MAX_DETAILS];
	for (const struct ingest_batch *b = list; b; b = b->next) {
		for (size_t i = 0; i < b->n_events; i++) {
			const struct ingest_event *ev = &b->events[i];
			if (!ev->tf || ev->result == INGEST_DUPLICATE)
				continue; /* invalid, or a duplicate: counted when first stored.  Events
					   * refused by a quota count (INGEST_COUNTED): a storm trips alerts */
			const Errq__V1__TaskFailure *tf = ev->tf;
			size_t nd = ev->v.details_kept < VALIDATE_MAX_DETAILS ? ev->v.details_kept : VALIDATE_MAX_DETAILS;
			for (size_t j = 0; j < nd; j++) {
				dk[j] = tf->details[j]->key ? tf->details[j]->key : "";
				dv[j] = tf->details[j]->value ? tf->details[j]->value : "";
			}
			struct rule_event re = {
			    .service = tf->service,
			    .environment = tf->environment,
			    .task = tf->task,
			    .error_type = tf->error_type,
			    .error_code = tf->error_code,
			    .fingerprint = ev->v.fingerprint,
			    .handled = tf->handled,
			    .detail_keys = dk,
			    .detail_values = dv,
			    .n_details = nd,
			};
			m.ev = ev;
			rules_match(rs, &re, on_event_match, &m);
			if (m.rc)
				return -1;
		}
		if (!outcomes || !b->req || !b->req->n_outcomes)
			continue;
		if (b->req->batch_id.len == 16) {
			int r = store_outcome_batch_seen(s, b->req->batch_id.data, m.now);
			if (r < 0)
				return -1;
			a->txn_st.outcome_batches++;
			if (r == 0) {
				a->txn_st.outcome_batches_duplicate++;
				continue; /* a resent batch: its outcomes counted already */
			}
		}
		m.ev = NULL;
		for (size_t i = 0; i < b->req->n_outcomes; i++) {
			m.oc = b->req->outcomes[i];
			rules_match_outcome(rs, m.oc->service, m.oc->task, on_outcome_match, &m);
			if (m.rc)
				return -1;
		}
	}
	return m.inputs ? alerts__fleet_flush(a, s) : alerts__save_touched(a, s, m.now);
}

void alerts_hook_txn_end(void *ctx, struct store *s, bool committed)
{
	struct alerts *a = ctx;
	ALERTS_ON_WRITER(a);
	(void)s;
	bool timers = a->txn_timers && committed;
	a->txn_timers = false;
	if (a->fleet)
		alerts__fleet_txn_end(a, committed);
	end_work(a, committed);
	if (timers && alerts__ig(a))
		ingest_tick_soon(alerts__ig(a)); /* the tick works out the next wake-up */
}
