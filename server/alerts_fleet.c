/* alerts_fleet.c: the rule engine when several collectors share one database (issue 17;
 * server/fleet.h says who leads, docs/scale-out.md the whole story).
 *
 * Every collector's writer matches its events and outcomes against the rules as alone, but
 * instead of feeding circuits it writes increments (storage_alerts.h: one row per rule, key
 * and receive second the transaction touched, failures summed, one event kept as the sample;
 * an outcome a row of its own) in the transaction of the events.  So a failure reported to
 * any collector is counted once it is committed, and a crash loses none.
 *
 * The leader's writer, every FLEET_EVAL_MS, takes the oldest increments in a transaction that
 * first checks the fleet's epoch (alerts__fleet_fence, in alerts__in_txn_keep), feeds them to
 * its circuits, and writes the transitions, alerts and outbox rows they cause: the rows go
 * when, and only when, what they caused commits.  Timers, silences ending and the Alertmanager
 * re-posts run on the leader only; a collector that stops leading frees its circuits and
 * loads them again from the database when it leads again.
 *
 * Deliveries: every outbox row a collector's notifier will send is leased to it
 * (fleet_owner(), FLEET_LEASE_NS), renewed every FLEET_RENEW_NS while it holds it, and leased
 * again up to its next attempt when one is retried.  The leader claims the rows nobody holds
 * (their collector died, or its notifier refused them), so no two collectors deliver one
 * notice at once, and none is left behind. */
#include "alerts_int.h"

#include <inttypes.h>

#include "fleet.h"
#include "errq_banned.h"

void alerts_set_fleet(struct alerts *a, struct fleet *f)
{
	a->fleet = f;
}

void alerts_get_fleet_stats(struct alerts *a, struct alerts_fleet_stats *st)
{
	pthread_mutex_lock(&a->stats_mu);
	*st = a->fst;
	pthread_mutex_unlock(&a->stats_mu);
}

/* ---- every collector: the open transaction's increments ---- */

#define FIN_SLOTS (2 * FLEET_TXN_INPUTS_MAX) /* the index: open addressing, half full at most */

static void fin_reset(struct alerts *a)
{
	for (size_t i = 0; i < a->n_fin; i++) {
		struct store_rule_input *in = &a->fin[i].in;
		free((char *)in->key);
		free((char *)in->service);
		free((char *)in->task);
	}
	a->n_fin = 0;
	if (a->fin_idx)
		memset(a->fin_idx, 0, FIN_SLOTS * sizeof(*a->fin_idx));
}

/* Writes what the transaction holds (one statement) and empties it. */
int alerts__fleet_flush(struct alerts *a, struct store *s)
{
	if (!a->n_fin)
		return 0;
	struct store_rule_input *v = malloc(a->n_fin * sizeof(*v));
	if (!v)
		return alerts__oom();
	for (size_t i = 0; i < a->n_fin; i++)
		v[i] = a->fin[i].in;
	int rc = store_rule_inputs_add(s, v, a->n_fin);
	free(v);
	if (rc) {
		errq_logkv(ERRQ_LOG_WARN, "alerts: cannot write rule increments", "error", store_errmsg(s), NULL);
		return -1;
	}
	a->fin_written += a->n_fin;
	fin_reset(a);
	return 0;
}

void alerts__fleet_txn_end(struct alerts *a, bool committed)
{
	fin_reset(a);
	if (committed && a->fin_written) {
		pthread_mutex_lock(&a->stats_mu);
		a->fst.inputs_written += a->fin_written;
		pthread_mutex_unlock(&a->stats_mu);
	}
	a->fin_written = 0;
}

/* A new increment (a->n_fin < FLEET_TXN_INPUTS_MAX), or NULL out of memory. */
static struct finput *fin_new(struct alerts *a)
{
	if (!a->fin && !(a->fin = malloc(FLEET_TXN_INPUTS_MAX * sizeof(*a->fin))))
		return NULL;
	if (!a->fin_idx && !(a->fin_idx = calloc(FIN_SLOTS, sizeof(*a->fin_idx))))
		return NULL;
	struct finput *f = &a->fin[a->n_fin];
	memset(f, 0, sizeof(*f));
	return f;
}

/* Room for one more increment: when the transaction holds FLEET_TXN_INPUTS_MAX, they are
 * written now (the policy at the limit: a transaction with that many distinct keys writes
 * its increments in several statements, never holds more). */
static int fin_room(struct alerts *a, struct store *s)
{
	return a->n_fin < FLEET_TXN_INPUTS_MAX ? 0 : alerts__fleet_flush(a, s);
}

int alerts__fleet_event(struct alerts *a, struct store *s, const struct rule *rule, const char *key, size_t key_len,
			const struct ingest_event *ev)
{
	const Errq__V1__TaskFailure *tf = ev->tf;
	uint64_t t = tf->time_unix_nano, recv = ev->received_ns, max_age = rule->circuit.max_event_age_ns;
	if (max_age && t && recv > t && recv - t > max_age) { /* what circuit_failure calls too old */
		a->txn_st.failures_too_old++;
		return 0;
	}
	uint64_t sec = recv / ERRQ_NS_PER_SEC;
	uint64_t h = errq_fnv64(errq_fnv64(errq_fnv64(ERRQ_FNV64_INIT, rule->name, strlen(rule->name) + 1), key, key_len),
				&sec, sizeof(sec));
	size_t slot = (size_t)h & (FIN_SLOTS - 1);
	struct finput *f = NULL;
	if (a->fin_idx)
		for (uint32_t i; (i = a->fin_idx[slot]) != 0; slot = (slot + 1) & (FIN_SLOTS - 1)) {
			struct finput *c = &a->fin[i - 1];
			if (c->hash == h && c->in.rule == rule->name && c->in.received_ns == sec * ERRQ_NS_PER_SEC &&
			    strlen(c->in.key) == key_len && memcmp(c->in.key, key, key_len) == 0) {
				f = c;
				break;
			}
		}
	if (!f) {
		if (fin_room(a, s))
			return -1;
		if (!(f = fin_new(a)) || !(f->in.key = strndup(key, key_len)))
			return alerts__oom();
		f->hash = h;
		f->in.kind = STORE_INPUT_FAILURES;
		f->in.rule = rule->name; /* the ruleset outlives the transaction */
		f->in.received_ns = sec * ERRQ_NS_PER_SEC;
		slot = (size_t)h & (FIN_SLOTS - 1);
		while (a->fin_idx[slot])
			slot = (slot + 1) & (FIN_SLOTS - 1);
		a->fin_idx[slot] = (uint32_t)++a->n_fin;
	}
	f->in.failures++;
	/* the sample: an event with a row (one a quota only counted has none to read back) */
	if (!f->in.sample_event && ev->result == INGEST_STORED && tf->event_id.len == 16) {
		memcpy(f->sample, tf->event_id.data, 16);
		f->in.sample_event = f->sample;
	}
	a->txn_st.failures_matched++;
	return 0;
}

int alerts__fleet_outcome(struct alerts *a, struct store *s, const struct rule *rule, const char *key, size_t key_len,
			  const Errq__V1__Outcome *oc, uint64_t now)
{
	if (fin_room(a, s))
		return -1;
	struct finput *f = fin_new(a);
	if (!f || !(f->in.key = key ? strndup(key, key_len) : strdup("")) ||
	    (oc->service && !(f->in.service = strdup(oc->service))) || (oc->task && !(f->in.task = strdup(oc->task)))) {
		if (f) {
			free((char *)f->in.key);
			free((char *)f->in.service);
		}
		return alerts__oom();
	}
	f->in.kind = key ? STORE_INPUT_OUTCOME : STORE_INPUT_OUTCOME_ALL;
	f->in.rule = rule->name;
	f->in.received_ns = now;
	f->in.ok = oc->ok;
	f->in.failed = oc->failed;
	f->in.window_end_ns = oc->window_start_unix_nano
				  ? oc->window_start_unix_nano + (uint64_t)oc->window_seconds * ERRQ_NS_PER_SEC
				  : 0;
	a->n_fin++; /* outcomes are not summed: no index entry */
	return 0;
}

/* ---- the leader ---- */

int alerts__fleet_fence(struct alerts *a, struct store *s)
{
	struct store_leader st;
	int r = store_leader_check(s, a->epoch, &st);
	if (r < 0)
		return -1;
	if (r == 0) {
		char mine[24], now[24];
		errq_snprintf(mine, sizeof(mine), "%" PRIu64, a->epoch);
		errq_snprintf(now, sizeof(now), "%" PRIu64, st.epoch);
		errq_logkv(ERRQ_LOG_WARN, "alerts: another collector leads the rule engine now; this one stops evaluating",
			   "epoch", mine, "fleet_epoch", now, "leader", st.leader, NULL);
		a->fenced = a->epoch;
		fleet_fenced(a->fleet, a->epoch);
		pthread_mutex_lock(&a->stats_mu);
		a->fst.fenced++;
		pthread_mutex_unlock(&a->stats_mu);
		return -1;
	}
	if (st.silence_gen != a->silence_gen) {
		a->silences_stale = true;
		a->silence_gen = st.silence_gen; /* what reload_silences reads is at least this new */
	}
	return 0;
}

int alerts__fleet_leads(struct alerts *a, struct store *s)
{
	if (!a->fleet)
		return 1; /* alone: it always evaluates */
	if (!a->epoch || a->epoch == a->fenced)
		return 0;
	if (!a->loaded)
		return 1; /* the caller waits for the tick to load the circuits */
	return alerts__fleet_fence(a, s) ? (a->fenced == a->epoch ? 0 : -1) : 1;
}

int alerts__fleet_lease(struct alerts *a, struct store *s, int64_t id, uint64_t until_ns)
{
	return store_delivery_lease(s, id, fleet_owner(a->fleet), until_ns) < 0 ? -1 : 0;
}

/* Stops leading: the circuits and silences go (the database has them; the next leader
 * loads them), the re-posts end.  Deliveries the notifier holds go on (leased to this
 * collector, renewed while it holds them). */
static void unload(struct alerts *a)
{
	for (size_t i = 0; i < a->n_buckets; i++) {
		for (struct centry *e = a->buckets[i], *next; e; e = next) {
			next = e->hnext;
			alerts__free_entry(a, e);
		}
		a->buckets[i] = NULL;
	}
	a->n_entries = 0;
	a->active = NULL;
	for (size_t i = 0; i < alerts__rs(a)->n_rules; i++)
		a->rt[i].n_circuits = 0, a->rt[i].overflow = NULL;
	while (a->n_sil)
		alerts__drop_silence_mem(a, a->n_sil - 1);
	a->loaded = false;
	a->backlog = false;
	notify_set_refresh(a->notifier, false);
	alerts__publish_counts(a);
}

/* The sample of an alert an increment fires: its stored event, or none. */
static int sample_cb(void *ctx, const struct store_event *e)
{
	*(char **)ctx = alerts__sample_from_stored(e);
	return 0;
}

char *alerts__input_sample(struct alerts *a, struct store *s)
{
	char *out = NULL;
	if (a->input_sample && store_get_event(s, a->input_sample, sample_cb, &out) < 0)
		LOG_WARN("alerts: cannot read an alert's sample event; the alert goes without one");
	return out;
}

struct eval {
	struct alerts *a;
	struct store *s;
	uint64_t now;
	int rc;
	int taken;
	uint64_t unknown, lag_ns;
};

static int feed_one(struct eval *ev, const struct rule *r, struct centry *e, const struct store_rule_input *in)
{
	struct alerts *a = ev->a;
	const struct ruleset *rs = alerts__rs(a);
	struct circuit_out out;
	if (in->kind == STORE_INPUT_FAILURES) {
		enum circuit_count cnt = circuit_failures(e->c, &r->circuit, ev->now, in->received_ns, in->failures, &out);
		a->txn_st.failures_expired += cnt == CIRCUIT_EXPIRED ? in->failures : 0;
		a->input_sample = in->sample_event;
		int rc = alerts__apply(a, ev->s, rs, r, e, &out, NULL, NULL, ev->now);
		a->input_sample = NULL;
		return rc;
	}
	Errq__V1__Outcome oc = ERRQ__V1__OUTCOME__INIT;
	oc.service = (char *)(in->service ? in->service : "");
	oc.task = (char *)(in->task ? in->task : "");
	oc.ok = in->ok;
	oc.failed = in->failed;
	oc.window_start_unix_nano = in->window_end_ns; /* with window_seconds 0: the end */
	circuit_outcome(e->c, &r->circuit, ev->now, in->received_ns, in->ok, in->failed, in->window_end_ns, &out);
	return alerts__apply(a, ev->s, rs, r, e, &out, NULL, &oc, ev->now);
}

static int eval_cb(void *ctx, const struct store_rule_input *in)
{
	struct eval *ev = ctx;
	struct alerts *a = ev->a;
	const struct ruleset *rs = alerts__rs(a);
	const struct rule *r = rules_find(rs, in->rule);
	if (!r) { /* written by a collector with other rules (a rolling update): not this one's */
		ev->unknown++;
		return 0;
	}
	size_t idx = (size_t)(r - rs->rules);
	if (ev->now > in->received_ns)
		ev->lag_ns = ev->now - in->received_ns;
	if (in->kind != STORE_INPUT_OUTCOME_ALL) {
		struct centry *e = alerts__get_entry(a, idx, in->key, strlen(in->key), ev->now);
		if (!e || feed_one(ev, r, e, in)) {
			ev->rc = e ? -1 : alerts__oom();
			return 1;
		}
		return 0;
	}
	/* an outcome for every HALF_OPEN circuit of the rule with its service and task */
	for (struct centry *e = a->active, *next; e; e = next) {
		next = e->anext;
		if (e->rule_idx != idx || e->c->state != CIRCUIT_HALF_OPEN ||
		    !rules_outcome_applies(r, e->key, in->service ? in->service : "", in->task ? in->task : ""))
			continue;
		if (alerts__touch(a, e) || feed_one(ev, r, e, in)) {
			ev->rc = -1;
			return 1;
		}
	}
	return 0;
}

static int eval_txn(struct alerts *a, struct store *s, void *arg)
{
	struct eval *ev = arg;
	ev->a = a;
	ev->s = s;
	ev->now = a->clock();
	int n = store_rule_inputs_take(s, STORE_RULE_INPUTS_TAKE_MAX, eval_cb, ev);
	if (n < 0 || ev->rc)
		return -1;
	ev->taken = n;
	return alerts__save_touched(a, s, ev->now);
}

/* The silences in force, read again after another collector added or expired one: new ones
 * are added, those gone end now (the tick then releases what they held). */
struct sil_list {
	int64_t *ids;
	size_t n;
	struct alerts *a;
	int rc;
};

static int sil_cb(void *ctx, const struct store_silence *si)
{
	struct sil_list *l = ctx;
	struct alerts *a = l->a;
	if (l->n < MAX_SILENCES)
		l->ids[l->n++] = si->id;
	for (size_t i = 0; i < a->n_sil; i++)
		if (a->sil[i].id == si->id)
			return 0;
	if (alerts__add_silence_mem(a, si->id, si->rule, si->matchers, si->starts_ns, si->ends_ns)) {
		l->rc = -1;
		return 1;
	}
	return 0;
}

static void reload_silences(struct alerts *a, struct store *s)
{
	struct sil_list l = {.ids = malloc(MAX_SILENCES * sizeof(int64_t)), .a = a};
	uint64_t now = a->clock();
	if (!l.ids || store_list_silences(s, STORE_SILENCES_NOT_ENDED, now, MAX_SILENCES, sil_cb, &l) || l.rc) {
		LOG_WARN("alerts: cannot read the silences again; retried at the next change");
		free(l.ids);
		a->silence_gen = 0; /* differs from the fleet's: the next fence marks them stale again */
		return;
	}
	for (size_t i = 0; i < a->n_sil; i++) {
		bool kept = false;
		for (size_t j = 0; j < l.n && !kept; j++)
			kept = l.ids[j] == a->sil[i].id;
		if (!kept && a->sil[i].ends > now)
			a->sil[i].ends = now; /* expired by some collector: ends at the next tick */
	}
	free(l.ids);
	a->silences_stale = false;
}

bool alerts__fleet_tick(struct alerts *a, struct store *s, uint64_t *wake)
{
	uint64_t mono = errq_mono_ns(), now = a->clock();
	uint64_t ep = fleet_epoch(a->fleet);
	if (ep && ep == a->fenced)
		ep = 0; /* the database said it is over; the fleet thread lets go */
	if (ep != a->epoch) {
		if (a->epoch)
			unload(a);
		a->epoch = ep;
		if (ep) {
			a->loaded = false;
			notify_set_refresh(a->notifier, true);
		}
	}
	if (mono >= a->renew_mono) { /* every collector: the leases of what its notifier holds */
		if (store_deliveries_renew(s, fleet_owner(a->fleet), now, now + FLEET_LEASE_NS) < 0)
			errq_logkv(ERRQ_LOG_WARN, "alerts: cannot renew delivery leases", "error", store_errmsg(s), NULL);
		a->renew_mono = mono + FLEET_RENEW_NS;
	}
	if (!a->epoch) {
		/* a follower keeps no silences: what a request added is the leader's (a row) */
		while (a->n_sil)
			alerts__drop_silence_mem(a, a->n_sil - 1);
		alerts__apply_reports(a, s);
		alerts__fleet_feed(a, s); /* gives back what the notifier refused */
		*wake = mono + FLEET_POLL_MS * ERRQ_NS_PER_MS;
		return false;
	}
	if (!a->loaded) {
		if (alerts__load(a, s)) {
			*wake = mono + ERRQ_NS_PER_SEC;
			return false;
		}
		a->silences_stale = false; /* the load read them, after the fence read the generation */
		pthread_mutex_lock(&a->stats_mu);
		a->fst.loads++;
		pthread_mutex_unlock(&a->stats_mu);
	}
	for (int round = 0; round < FLEET_TAKE_ROUNDS && a->epoch; round++) {
		struct eval ev = {.rc = 0};
		if (alerts__in_txn(a, s, eval_txn, &ev))
			break;
		pthread_mutex_lock(&a->stats_mu);
		a->fst.inputs_taken += (uint64_t)ev.taken;
		a->fst.inputs_unknown += ev.unknown;
		if (ev.taken)
			a->fst.eval_lag_ms = ev.lag_ns / ERRQ_NS_PER_MS;
		pthread_mutex_unlock(&a->stats_mu);
		if (ev.taken < STORE_RULE_INPUTS_TAKE_MAX)
			break;
	}
	if (a->fenced == a->epoch) { /* fenced in one of them: a follower from now on */
		unload(a);
		a->epoch = 0;
		*wake = mono + FLEET_POLL_MS * ERRQ_NS_PER_MS;
		return false;
	}
	if (a->silences_stale)
		reload_silences(a, s);
	alerts__fleet_feed(a, s); /* what nobody holds: its collector died, or its notifier was full */
	*wake = mono + FLEET_EVAL_MS * ERRQ_NS_PER_MS;
	return true;
}

/* ---- deliveries: claims and releases ---- */

void alerts_fleet_release(struct alerts *a, struct store *s)
{
	if (!a || !a->fleet || !s)
		return;
	int n = store_deliveries_renew(s, fleet_owner(a->fleet), 0, 0); /* every lease it holds ends now */
	if (n < 0)
		errq_logkv(ERRQ_LOG_WARN, "alerts: cannot release delivery leases (they end by themselves)", "error",
			   store_errmsg(s), NULL);
}

void alerts__fleet_feed(struct alerts *a, struct store *s)
{
	/* rows the notifier refused (full): their leases end now, so a claim takes them later */
	while (a->n_retry) {
		if (alerts__fleet_lease(a, s, a->retry_ids[a->n_retry - 1], 0))
			return;
		a->n_retry--;
	}
	if (!a->epoch || a->held >= NOTIFY_MAX_PENDING)
		return;
	uint32_t room = NOTIFY_MAX_PENDING - a->held;
	alerts__claim(a, s, room < STORE_DELIVERY_CLAIM_MAX ? room : STORE_DELIVERY_CLAIM_MAX);
}
