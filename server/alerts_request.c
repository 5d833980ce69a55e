/* alerts_request.c: the Alerts service's requests run on the writer thread: reload, replay;
 * the silences' requests are in alerts_silence.c. */
#include "alerts_int.h"
#include "notify_kinds.h"

#include "errq_banned.h"

/* ---- requests from the Alerts service ---- */

void alerts__answer(struct request *rq, struct alerts_answer *ans)
{
	if (rq->fn) {
		rq->fn(rq->arg, ans);
	}
	if (rq->kind == REQ_RELOAD && ans->status != ALERTS_OK) /* done: alerts__log_reload */
		errq_logkv(ERRQ_LOG_ERROR, "rules reload refused; the rules in force stay", "by", rq->who, "config",
			   rq->a->config_path[0] ? rq->a->config_path : "(none)", "error", ans->msg, NULL);
}

void alerts__fail(struct alerts_answer *ans, enum alerts_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ans->status = st;
	vsnprintf(ans->msg, sizeof(ans->msg), fmt, ap);
	va_end(ap);
}

struct reload_arg {
	size_t *map; /* old rule index -> new, SIZE_MAX = retired */
	enum circuit_retire *fate;
};

static int reload_txn(struct alerts *a, struct store *s, void *arg)
{
	struct reload_arg *ra = arg;
	const struct ruleset *old = alerts__rs(a);
	uint64_t now = a->clock();
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry *e = a->buckets[i]; e; e = e->hnext) {
			if (ra->map[e->rule_idx] != SIZE_MAX)
				continue;
			const struct rule *r = &old->rules[e->rule_idx];
			if (alerts__touch(a, e))
				return alerts__oom();
			struct circuit_out out;
			circuit_retire(e->c, &r->circuit, now, ra->fate[e->rule_idx], &out);
			/* the resolved notices go to the notifiers the new rules still have (write_notice
			 * checks names against the rules in force: swap first for that check) */
			if (alerts__apply(a, s, old, r, e, &out, NULL, NULL, now))
				return -1;
			if (e->row_id && store_circuit_delete(s, e->row_id))
				return -1;
			e->doomed = true;
		}
	return alerts__save_touched(a, s, now);
}

void alerts__set_dests(struct alerts *a, const struct ruleset *rs)
{
	struct notify_dest *d = calloc(rs->n_notifiers ? rs->n_notifiers : 1, sizeof(*d));
	if (!d) {
		LOG_ERROR("alerts: out of memory setting notifiers");
		return;
	}
	for (size_t i = 0; i < rs->n_notifiers; i++) {
		const struct rules_notifier *n = &rs->notifiers[i];
		errq_snprintf(d[i].name, sizeof(d[i].name), "%s", n->name);
		d[i].type = notify_type_of_rules(n->type);
		errq_snprintf(d[i].url, sizeof(d[i].url), "%s", n->url ? n->url : "");
		d[i].timeout_ms = (uint32_t)(n->timeout_ns / ERRQ_NS_PER_MS);
		d[i].max_attempts = n->max_attempts;
		d[i].n_headers = n->n_headers < NOTIFY_MAX_HEADERS ? n->n_headers : NOTIFY_MAX_HEADERS;
		for (size_t j = 0; j < d[i].n_headers; j++)
			errq_snprintf(d[i].headers[j], sizeof(d[i].headers[j]), "%s: %s", n->headers[j].name,
				      n->headers[j].value);
		errq_snprintf(d[i].secret, sizeof(d[i].secret), "%s", n->secret ? n->secret : "");
		notify_dest_from_rules(&d[i], n);
	}
	if (notify_set_dests(a->notifier, d, rs->n_notifiers))
		LOG_ERROR("alerts: the notifier refused the destinations");
	free(d);
}

struct rule_rt *alerts__new_rt(size_t n)
{
	return calloc(n ? n : 1, sizeof(struct rule_rt));
}

static void do_reload(struct alerts *a, struct store *s, const char *who, struct alerts_answer *ans)
{
	struct ruleset *next = NULL;
	char err[sizeof(ans->msg)];
	if (!a->config_path[0])
		return alerts__fail(ans, ALERTS_INVALID, "%s", "errqd runs without a config file (--config): no rules to reload");
	if (rules_load(&next, a->config_path, err, sizeof(err)))
		return alerts__fail(ans, ALERTS_INVALID, "%s", err);
	void *staged = NULL; /* the credentials of the same file, in force only if the rules are */
	if (a->o.reload_prepare && !(staged = a->o.reload_prepare(a->o.reload_ctx, a->config_path, err, sizeof(err)))) {
		rules_free(next);
		return alerts__fail(ans, ALERTS_INVALID, "%s", err);
	}
	const struct ruleset *old = alerts__rs(a);
	struct reload_arg ra = {.map = NULL};
	ra.map = calloc(old->n_rules ? old->n_rules : 1, sizeof(*ra.map));
	ra.fate = calloc(old->n_rules ? old->n_rules : 1, sizeof(*ra.fate));
	struct rule_rt *rt = alerts__new_rt(next->n_rules);
	struct rules_ref *ref = alerts__rules_ref_new(next, a->config_path, a->clock());
	if (!ra.map || !ra.fate || !rt || !ref) {
		alerts__fail(ans, ALERTS_INTERNAL, "%s", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < old->n_rules; i++) {
		const struct rule *now_rule = NULL;
		ra.fate[i] = rules_reload_fate(&old->rules[i], next, &now_rule);
		ra.map[i] = ra.fate[i] == CIRCUIT_RETIRE_NONE ? (size_t)(now_rule - next->rules) : SIZE_MAX;
		ans->kept += ra.fate[i] == CIRCUIT_RETIRE_NONE;
		ans->changed += ra.fate[i] == CIRCUIT_RETIRE_CHANGED;
		ans->removed += ra.fate[i] == CIRCUIT_RETIRE_REMOVED;
	}
	/* the retiring circuits' resolved notices go to the notifiers the new rules still have */
	a->dest_check = next;
	int rc = alerts__in_txn_keep(a, s, reload_txn, &ra);
	a->dest_check = NULL;
	if (rc) {
		alerts__fail(ans, alerts__store_status(s), "cannot store the retired circuits: %s", store_errmsg(s));
		goto out;
	}
	struct rules_ref *prev = a->cur;
	alerts__end_work_entries(a, true);
	/* committed: drop retired circuits, renumber kept ones, swap the rules, then send */
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry **pp = &a->buckets[i], *e; (e = *pp);) {
			if (e->doomed) {
				*pp = e->hnext;
				a->n_entries--;
				alerts__free_entry(a, e);
				continue;
			}
			e->rule_idx = ra.map[e->rule_idx];
			if (strcmp(e->key, RULES_OVERFLOW_KEY))
				rt[e->rule_idx].n_circuits++;
			pp = &e->hnext;
		}
	for (size_t i = 0; i < next->n_rules; i++) {
		const struct rule *orule = rules_find(old, next->rules[i].name);
		if (orule)
			rt[i].overflow_failures = a->rt[orule - old->rules].overflow_failures;
	}
	pthread_mutex_lock(&a->stats_mu); /* alerts_rule_overflow reads rt and cur together */
	free(a->rt);
	a->rt = rt;
	rt = NULL;
	pthread_mutex_lock(&a->rules_mu);
	a->cur = ref;
	pthread_mutex_unlock(&a->rules_mu);
	pthread_mutex_unlock(&a->stats_mu);
	ref = NULL;
	next = NULL;
	alerts__log_reload(who, a->config_path, prev->pub.rs, alerts__rs(a), ra.fate);
	alerts__set_dests(a, alerts__rs(a));
	alerts__end_work_subs(a, true);
	/* an inhibiting rule removed, or its inhibits changed: what it muted goes out now */
	if (alerts__in_txn(a, s, alerts__release_all, NULL))
		LOG_WARN("alerts: could not deliver what a reload released; it goes out after a restart");
	alerts__rules_ref_put(a, prev);
	if (staged)
		a->o.reload_commit(a->o.reload_ctx, staged);
	staged = NULL;
	ans->rules = (uint32_t)alerts__rs(a)->n_rules;
	ans->notifiers = (uint32_t)alerts__rs(a)->n_notifiers;
	errq_snprintf(ans->msg, sizeof(ans->msg), "%u rules, %u notifiers from '%s': %u kept, %u changed, %u removed",
		      ans->rules, ans->notifiers, a->config_path, ans->kept, ans->changed, ans->removed);
out:
	if (staged)
		a->o.reload_discard(staged);
	free(ra.map);
	free(ra.fate);
	free(rt);
	if (ref)
		free(ref); /* never published: next is freed below */
	rules_free(next);
}

struct replay_arg {
	int64_t dead[NOTIFY_MAX_PENDING];
	size_t n;
	uint32_t total;
};

static int dead_cb(void *ctx, const struct store_delivery *d)
{
	struct replay_arg *r = ctx;
	r->total++;
	if (d->status == STORE_DELIVERY_DEAD && r->n < sizeof(r->dead) / sizeof(r->dead[0]))
		r->dead[r->n++] = d->id;
	return 0;
}

static int replay_txn(struct alerts *a, struct store *s, void *arg)
{
	struct replay_arg *r = arg;
	uint64_t now = a->clock();
	for (size_t i = 0; i < r->n; i++)
		if (alerts__resend(a, s, r->dead[i], now))
			return -1;
	return 0;
}

static int found_cb(void *ctx, const struct store_alert *al)
{
	(void)al;
	*(bool *)ctx = true;
	return 0;
}

static void do_replay(struct alerts *a, struct store *s, const uint8_t alert_id[16], struct alerts_answer *ans)
{
	char hex[ERRQ_ID_HEX_BUFSZ];
	errq_hex_encode(alert_id, 16, hex);
	bool found = false;
	struct replay_arg *r = calloc(1, sizeof(*r));
	if (!r)
		return alerts__fail(ans, ALERTS_INTERNAL, "%s", "out of memory");
	if (store_get_alert(s, alert_id, found_cb, &found) < 0 || store_list_deliveries(s, alert_id, dead_cb, r)) {
		alerts__fail(ans, alerts__store_status(s), "%s", store_errmsg(s));
	} else if (!found) {
		alerts__fail(ans, ALERTS_NOT_FOUND, "no alert %s", hex);
	} else if (!r->n) {
		alerts__fail(ans, ALERTS_PRECONDITION, "alert %s has no dead-lettered delivery to replay", hex);
	} else if (alerts__in_txn(a, s, replay_txn, r)) {
		alerts__fail(ans, alerts__store_status(s), "%s", store_errmsg(s));
	} else {
		ans->count = (uint32_t)r->n;
		errq_snprintf(ans->msg, sizeof(ans->msg), "%zu deliveries of alert %s sent again", r->n, hex);
		errq_logkv(ERRQ_LOG_INFO, "alert replayed", "alert_id", hex, NULL);
	}
	free(r);
}

void alerts__request_run(struct ingest_job *j, struct store *s)
{
	struct request *rq = (struct request *)j;
	struct alerts *a = rq->a;
	ALERTS_ON_WRITER(a);
	struct alerts_answer ans = {.status = ALERTS_OK};
	if (!s)
		alerts__fail(&ans, ALERTS_PRECONDITION, "%s", "this collector runs with 'storage: none': no alerting");
	else if (!a->loaded && (!a->fleet || a->epoch) && alerts__load(a, s)) /* a fleet's follower holds none */
		alerts__fail(&ans, alerts__store_status(s), "cannot load circuits: %s", store_errmsg(s));
	else if (rq->kind == REQ_RELOAD)
		do_reload(a, s, rq->who, &ans);
	else if (rq->kind == REQ_REPLAY)
		do_replay(a, s, rq->alert_id, &ans);
	else if (rq->kind == REQ_SILENCE_ADD)
		alerts__do_silence_add(a, s, &rq->sil, &ans);
	else
		alerts__do_silence_expire(a, s, rq->id, &ans);
	alerts__answer(rq, &ans);
	free(rq);
	if (alerts__ig(a))
		ingest_tick_soon(alerts__ig(a)); /* deadlines and silences may have changed */
}
