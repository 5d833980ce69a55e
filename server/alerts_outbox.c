/* alerts_outbox.c: the outbox: notices written in the transition's transaction, the backlog
 * of pending rows fed to the notifier as room frees, and the notifier's delivery reports. */
#include "alerts_int.h"

#include "fleet.h"

#include "errq_banned.h"

/* ---- the outbox ---- */

static int sample_cb(void *ctx, const struct store_alert *al)
{
	struct centry *e = ctx;
	e->sample = al->sample ? strdup(al->sample) : NULL;
	e->notices = al->notices;
	return 0;
}

/* A firing notice (first or reminder) goes to those of names[] that the rules in force
 * define, held back (`silenced`) while a silence or an inhibition covers the alert.  A
 * resolved notice goes to every notifier that was sent one of the alert's firing notices
 * (even one the rule no longer names), is recorded as held back for those that only had held
 * ones, and goes to the other names[] like a firing notice (alerts_hold.c). */
int alerts__write_notice(struct alerts *a, struct store *s, const char *const *names, size_t n_names,
			const struct notice *n, uint64_t now)
{
	bool resolved = !strcmp(n->status, "resolved");
	struct alerts_fired f;
	f.n = 0;
	if (resolved && alerts__fired(s, n->alert_id, &f))
		return -1;
	if (!n_names && !f.n)
		return 0;
	bool quiet = alerts__held(a, n->rule, n->key, now);
	struct errq_buf b;
	errq_buf_init(&b, NOTIFY_BODY_MAX);
	if (alerts__build_body(a, n, &b)) {
		errq_buf_free(&b);
		LOG_ERROR("alerts: a webhook body passed NOTIFY_BODY_MAX; notice not written");
		return 0; /* bounded: cannot happen with the field limits; never fail the events for it */
	}
	char hex[ERRQ_ID_HEX_BUFSZ], idem[NOTIFY_KEY_MAX];
	errq_hex_encode(n->alert_id, 16, hex);
	errq_snprintf(idem, sizeof(idem), "%s:%s:%u", hex, n->status, n->seq);
	int rc = 0;
	for (size_t i = 0; i < f.n + n_names && !rc; i++) {
		bool fired = i < f.n; /* a notifier that had firing notices of this alert */
		const char *name = fired ? f.name[i] : names[i - f.n];
		bool defined = rules_find_notifier(a->dest_check ? a->dest_check : alerts__rs(a), name) != NULL;
		int status = quiet ? STORE_DELIVERY_SILENCED : STORE_DELIVERY_PENDING;
		char why[RULES_NAME_MAX + 64] = "";
		bool dup = false;
		for (size_t j = 0; j < f.n && !fired && !dup; j++)
			dup = !strcmp(f.name[j], name);
		if (dup) {
			continue; /* done above */
		} else if (fired && !f.sent[i]) {
			status = STORE_DELIVERY_SILENCED; /* it never heard of the incident */
		} else if (!defined && !fired) {
			continue;
		} else if (fired) {
			status = defined ? STORE_DELIVERY_PENDING : STORE_DELIVERY_DEAD; /* owed, whatever holds it */
		}
		if (status == STORE_DELIVERY_DEAD) { /* the notifier left the config: kept for replay */
			errq_snprintf(why, sizeof(why), "notifier '%s' is no longer in the config", name);
			errq_logkv(ERRQ_LOG_WARN, "alert resolved, but the notifier that had its firing is gone from the config "
				   "(dead-lettered: 'errq alerts replay' sends it once the notifier is back)",
				   "notifier", name, "alert_id", hex, NULL);
		}
		struct store_delivery d = {
		    .alert_id = n->alert_id,
		    .notifier = name,
		    .kind = n->status,
		    .seq = n->seq,
		    .idempotency_key = idem,
		    .body = b.p,
		    .body_len = b.len,
		    .status = status,
		    .last_error = why,
		    .created_ns = now,
		    .updated_ns = now,
		};
		int64_t id;
		if ((rc = store_delivery_add(s, &d, &id)))
			break;
		if (status == STORE_DELIVERY_SILENCED) {
			a->txn_st.deliveries_silenced++;
			continue;
		}
		if (status == STORE_DELIVERY_DEAD)
			continue;
		if (a->backlog)
			continue; /* the backlog sweep sends it, in id order */
		/* a fleet: this collector's notifier sends it; nobody else while the lease holds */
		if (a->fleet && (rc = alerts__fleet_lease(a, s, id, now + FLEET_LEASE_NS)))
			break;
		struct notify_delivery *nd = notify_delivery_new(b.p, b.len);
		struct sub *sb = nd ? malloc(sizeof(*sb)) : NULL;
		if (!sb) {
			free(nd);
			rc = alerts__oom();
			break;
		}
		nd->id = (uint64_t)id;
		errq_snprintf(nd->dest, sizeof(nd->dest), "%s", name);
		errq_snprintf(nd->order_key, sizeof(nd->order_key), "%s:%s", hex, name);
		errq_snprintf(nd->idempotency_key, sizeof(nd->idempotency_key), "%s", idem);
		sb->d = nd;
		sb->next = NULL;
		sb->resend = false;
		*a->subs_tail = sb;
		a->subs_tail = &sb->next;
	}
	errq_buf_free(&b);
	return rc;
}

/* The notifier names of a rule (of ruleset rs). */
static size_t rule_notifiers(const struct ruleset *rs, const struct rule *r, const char **names)
{
	for (size_t i = 0; i < r->n_notify; i++)
		names[i] = rs->notifiers[r->notify[i]].name;
	return r->n_notify;
}

/* Stores what one circuit call produced: its transitions, its alert, the alert's notices.
 * ev or oc is what caused it (the sample of an alert that fires); rs is the ruleset r
 * belongs to (the old one when a reload retires r). */
int alerts__apply(struct alerts *a, struct store *s, const struct ruleset *rs, const struct rule *r, struct centry *e,
		 const struct circuit_out *out, const struct ingest_event *ev, const Errq__V1__Outcome *oc, uint64_t now)
{
	const char *names[RULES_MAX_NOTIFY];
	size_t n_names = rule_notifiers(rs, r, names);
	a->txn_timers |= out->n != 0; /* a deadline may have come or gone */
	for (size_t i = 0; i < out->n; i++) {
		const struct circuit_record *rec = &out->rec[i];
		if (rec->alert == CIRCUIT_ALERT_FIRE) {
			errq_idgen_next(&a->idgen, rec->at / ERRQ_NS_PER_MS, e->alert_id);
			e->has_alert = true;
			e->notices = 0;
			e->opened_at = rec->at;
			if (e->sample != e->undo_sample)
				free(e->sample);
			e->sample = ev ? alerts__sample_from_event(ev)
				  : oc ? alerts__sample_from_outcome(oc)
				       : alerts__input_sample(a, s); /* the fleet's: its stored event, or none */
			e->sample_loaded = true;
		}
		if (e->has_alert && !e->sample_loaded) {
			if (e->sample != e->undo_sample)
				free(e->sample);
			e->sample = NULL;
			if (store_get_alert(s, e->alert_id, sample_cb, e) < 0)
				return -1;
			e->sample_loaded = true;
		}
		struct store_transition t = {
		    .rule = r->name,
		    .key = e->key,
		    .at_ns = rec->at,
		    .from = rec->from,
		    .to = rec->to,
		    .reason = rec->reason,
		    .failures_in_window = rec->failures_in_window,
		    .window_seconds = rec->window_seconds,
		    .next_transition_ns = rec->next_transition_at,
		    .alert_id = e->has_alert ? e->alert_id : NULL,
		};
		if (store_transition_add(s, &t))
			return -1;
		a->txn_st.transitions += rec->from != rec->to;
		if (!e->has_alert)
			continue;
		struct store_alert al = {
		    .alert_id = e->alert_id,
		    .rule = r->name,
		    .key = e->key,
		    .severity = rules_severity_name(r->severity),
		    .status = "firing",
		    .state = rec->to,
		    .opened_ns = e->opened_at,
		    .failures_in_window = rec->failures_in_window,
		    .window_seconds = rec->window_seconds,
		    .sample = e->sample,
		    .updated_ns = now,
		};
		struct notice n = {
		    .rule = r->name,
		    .key = e->key,
		    .severity = al.severity,
		    .status = "firing",
		    .reason = rec->reason,
		    .sample = e->sample,
		    .alert_id = e->alert_id,
		    .state = rec->to,
		    .prev = rec->from,
		    .failures = rec->failures_in_window,
		    .window = rec->window_seconds,
		    .opened = e->opened_at,
		    .rate = r->circuit.failure_rate_ppm != 0,
		};
		if (n.rate)
			circuit_window_calls(e->c, e->c->clock, &n.calls_ok, &n.calls_failed);
		bool notify = true;
		switch (rec->alert) {
		case CIRCUIT_ALERT_FIRE:
			a->txn_st.alerts_fired++;
			break;
		case CIRCUIT_ALERT_REMIND:
			a->txn_st.reminders++;
			break;
		case CIRCUIT_ALERT_RESOLVE:
			al.status = n.status = "resolved";
			al.resolved_ns = n.resolved = rec->at;
			al.resolve_reason = rec->reason;
			a->txn_st.alerts_resolved++;
			break;
		case CIRCUIT_ALERT_NONE:
			notify = false;
			break;
		}
		if (notify && rec->alert != CIRCUIT_ALERT_RESOLVE)
			e->notices++;
		al.notices = e->notices;
		n.seq = rec->alert == CIRCUIT_ALERT_RESOLVE ? 1 : e->notices;
		int64_t id;
		if (store_alert_put(s, &al, &id) || (notify && alerts__write_notice(a, s, names, n_names, &n, now)))
			return -1;
		if (rec->alert == CIRCUIT_ALERT_RESOLVE) {
			e->has_alert = false;
			e->notices = 0;
			e->opened_at = 0;
			if (alerts__release_inhibited_by(a, s, r, now)) /* what it muted goes out */
				return -1;
		}
	}
	alerts__set_active(a, e);
	return 0;
}

/* ---- the backlog: pending rows the notifier has not taken yet, in id order ---- */

struct feed {
	struct alerts *a;
	int64_t last;
	size_t rows;
	bool refused;
};

static int feed_cb(void *ctx, const struct store_delivery *d)
{
	struct feed *f = ctx;
	f->rows++;
	if (d->status != STORE_DELIVERY_PENDING) { /* a retried id that moved on */
		f->last = d->id;
		return 0;
	}
	struct notify_delivery *nd = d->body ? notify_delivery_new(d->body, d->body_len) : NULL;
	if (!nd) { /* out of memory, or a body too long to send (not written so): try later */
		f->refused = true;
		return 1;
	}
	char hex[ERRQ_ID_HEX_BUFSZ];
	errq_hex_encode(d->alert_id, 16, hex);
	nd->id = (uint64_t)d->id;
	nd->attempts = d->attempts;
	nd->not_before_ns = d->next_attempt_ns;
	errq_snprintf(nd->dest, sizeof(nd->dest), "%s", d->notifier);
	errq_snprintf(nd->order_key, sizeof(nd->order_key), "%s:%s", hex, d->notifier);
	errq_snprintf(nd->idempotency_key, sizeof(nd->idempotency_key), "%s", d->idempotency_key);
	if (notify_submit(f->a->notifier, nd)) {
		free(nd);
		f->refused = true;
		return 1;
	}
	f->a->held++;
	f->last = d->id;
	return 0;
}

/* The fleet's claims (alerts_fleet.c): every row claimed is this collector's until its lease
 * ends; one the notifier refuses is given back at the next tick (the release list). */
static int claim_cb(void *ctx, const struct store_delivery *d)
{
	struct feed *f = ctx;
	feed_cb(f, d);
	if (f->refused) {
		struct alerts *a = f->a;
		if (a->n_retry < NOTIFY_MAX_PENDING)
			a->retry_ids[a->n_retry++] = d->id;
		f->refused = false;
	}
	return 0;
}

void alerts__claim(struct alerts *a, struct store *s, uint32_t limit)
{
	struct feed f = {.a = a};
	if (store_delivery_claim(s, fleet_owner(a->fleet), a->clock(), FLEET_LEASE_NS, limit, claim_cb, &f) < 0)
		errq_logkv(ERRQ_LOG_WARN, "alerts: cannot claim deliveries", "error", store_errmsg(s), NULL);
}

void alerts__feed_backlog(struct alerts *a, struct store *s)
{
	if (a->fleet) {
		alerts__fleet_feed(a, s);
		return;
	}
	while (a->n_retry) {
		struct feed f = {.a = a};
		int64_t id = a->retry_ids[a->n_retry - 1];
		if (store_get_delivery(s, id, feed_cb, &f) < 0 || f.refused)
			return;
		a->n_retry--; /* sent, or no longer there */
	}
	while (a->backlog) {
		struct feed f = {.a = a, .last = a->backlog_from - 1};
		if (store_list_deliveries_by_status(s, STORE_DELIVERY_PENDING, a->backlog_from - 1, BACKLOG_PAGE, true,
						    feed_cb, &f)) {
			errq_logkv(ERRQ_LOG_WARN, "alerts: cannot read pending deliveries", "error", store_errmsg(s), NULL);
			return;
		}
		a->backlog_from = f.last + 1;
		if (f.refused)
			return;
		if (f.rows < BACKLOG_PAGE)
			a->backlog = false;
	}
}

/* ---- delivery reports: notifier thread -> writer ---- */

static int record_reports(struct alerts *a, struct store *s, void *arg)
{
	const struct notify_report *rep = ((const struct notify_report **)arg)[0];
	size_t n = *((size_t *)((void **)arg)[1]);
	uint64_t now = a->clock();
	for (size_t i = 0; i < n; i++) {
		const struct notify_report *r = &rep[i];
		int status = r->result == NOTIFY_DELIVERED ? STORE_DELIVERY_DELIVERED
			     : r->result == NOTIFY_DEAD    ? STORE_DELIVERY_DEAD
							   : STORE_DELIVERY_PENDING;
		if (store_delivery_update(s, (int64_t)r->id, status, r->attempts,
					  r->result == NOTIFY_RETRY ? r->retry_at_ns : 0, r->http_status, r->error,
					  now) < 0)
			return -1;
		/* a fleet: the notifier holds it until its next attempt: leased to this collector */
		if (a->fleet && r->result == NOTIFY_RETRY &&
		    alerts__fleet_lease(a, s, (int64_t)r->id,
					(r->retry_at_ns > now ? r->retry_at_ns : now) + FLEET_LEASE_NS))
			return -1;
	}
	return 0;
}

void alerts__apply_reports(struct alerts *a, struct store *s)
{
	pthread_mutex_lock(&a->rep_mu);
	struct notify_report *rep = a->reports;
	size_t n = a->n_reports;
	a->reports = NULL;
	a->n_reports = 0;
	pthread_mutex_unlock(&a->rep_mu);
	if (!n) {
		free(rep);
		return;
	}
	void *arg[2] = {rep, &n};
	if (alerts__in_txn(a, s, record_reports, arg)) {
		/* put them back, behind any newer report of the same row */
		pthread_mutex_lock(&a->rep_mu);
		for (size_t i = 0; i < n; i++) {
			bool newer = false;
			for (size_t j = 0; j < a->n_reports && !newer; j++)
				newer = a->reports[j].id == rep[i].id;
			if (!newer && a->n_reports < ALERTS_REPORT_SLOTS && a->reports)
				a->reports[a->n_reports++] = rep[i];
		}
		pthread_mutex_unlock(&a->rep_mu);
		free(rep);
		return;
	}
	uint64_t done = 0, dead = 0, retried = 0;
	for (size_t i = 0; i < n; i++) {
		done += rep[i].result == NOTIFY_DELIVERED;
		dead += rep[i].result == NOTIFY_DEAD;
		retried += rep[i].result == NOTIFY_RETRY;
		alerts__log_delivery(a, &rep[i]);
		if (rep[i].result == NOTIFY_DEAD) {
			char id[24], att[16];
			errq_snprintf(id, sizeof(id), "%llu", (unsigned long long)rep[i].id);
			errq_snprintf(att, sizeof(att), "%u", rep[i].attempts);
			errq_logkv(ERRQ_LOG_WARN, "alert delivery dead-lettered ('errq alerts replay' sends it again)",
				   "delivery", id, "attempts", att, "error", rep[i].error, NULL);
		}
	}
	a->held -= (uint32_t)(done + dead) <= a->held ? (uint32_t)(done + dead) : a->held;
	pthread_mutex_lock(&a->stats_mu);
	a->st.deliveries_delivered += done;
	a->st.deliveries_dead += dead;
	a->st.deliveries_retried += retried;
	pthread_mutex_unlock(&a->stats_mu);
	free(rep);
	if (done + dead)
		alerts__feed_backlog(a, s); /* the notifier has room again */
	if (alerts__log_poll(a) && alerts__ig(a))
		ingest_tick_soon(alerts__ig(a)); /* a recovery settling: the tick logs it then */
	alerts__publish_counts(a);
}

void alerts__report_job_run(struct ingest_job *j, struct store *s)
{
	struct alerts *a = (struct alerts *)(void *)((char *)j - offsetof(struct alerts, report_job));
	ALERTS_ON_WRITER(a);
	pthread_mutex_lock(&a->rep_mu);
	a->report_job_queued = false;
	pthread_mutex_unlock(&a->rep_mu);
	if (s && a->loaded)
		alerts__apply_reports(a, s);
}

/* Notifier thread: after every attempt. */
void alerts__on_report(void *ctx, const struct notify_report *r)
{
	struct alerts *a = ctx;
	bool schedule = false;
	pthread_mutex_lock(&a->rep_mu);
	size_t i = 0;
	while (i < a->n_reports && a->reports[i].id != r->id)
		i++;
	if (i == a->n_reports && !a->reports)
		a->reports = malloc(ALERTS_REPORT_SLOTS * sizeof(*a->reports));
	if (i < a->n_reports || (a->reports && a->n_reports < ALERTS_REPORT_SLOTS)) {
		a->reports[i] = *r; /* a newer report of the same row replaces the older */
		if (i == a->n_reports)
			a->n_reports++;
		schedule = !a->report_job_queued;
		a->report_job_queued = true;
	} else {
		LOG_WARN("alerts: delivery report dropped (report buffer full); the row is retried after a restart");
	}
	pthread_mutex_unlock(&a->rep_mu);
	struct ingest *ig = alerts__ig(a);
	if (schedule && (!ig || ingest_run_job(ig, &a->report_job))) {
		pthread_mutex_lock(&a->rep_mu);
		a->report_job_queued = false;
		pthread_mutex_unlock(&a->rep_mu);
		if (ig)
			ingest_tick_soon(ig); /* the tick records them instead */
	}
}
