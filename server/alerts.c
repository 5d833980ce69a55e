/* alerts.c: the rule engine's life (new, free), the rules in force and the public entry points
 * of the Alerts service's requests (see alerts.h; the design is in alerts_int.h). */
#include "alerts_int.h"

#include "errq_banned.h"

int alerts__oom(void)
{
	LOG_ERROR("alerts: out of memory");
	return -1;
}

enum alerts_status alerts__store_status(const struct store *s)
{
	return store_last_errclass(s) == STORE_ERR_UNAVAILABLE ? ALERTS_UNAVAILABLE : ALERTS_INTERNAL;
}

static uint64_t default_clock(void)
{
	return errq_now_ns();
}

/* ---- rules references ---- */

struct rules_ref *alerts__rules_ref_new(struct ruleset *rs, const char *source, uint64_t now)
{
	struct rules_ref *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->pub.rs = rs;
	errq_snprintf(r->pub.source, sizeof(r->pub.source), "%s", source ? source : "");
	r->pub.loaded_ns = now;
	r->refs = 1;
	return r;
}

const struct alerts_rules *alerts_rules_get(struct alerts *a)
{
	pthread_mutex_lock(&a->rules_mu);
	struct rules_ref *r = a->cur;
	r->refs++;
	pthread_mutex_unlock(&a->rules_mu);
	return &r->pub;
}

void alerts__rules_ref_put(struct alerts *a, struct rules_ref *r)
{
	pthread_mutex_lock(&a->rules_mu);
	ERRQ_ASSERT(r->refs > 0); /* a reference given back twice */
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&a->rules_mu);
	if (last) {
		rules_free(r->pub.rs);
		free(r);
	}
}

void alerts_rules_put(struct alerts *a, const struct alerts_rules *pub)
{
	if (pub)
		alerts__rules_ref_put(a, (struct rules_ref *)(void *)((char *)pub - offsetof(struct rules_ref, pub)));
}

const struct ruleset *alerts__rs(struct alerts *a)
{
	return a->cur->pub.rs;
}

/* Queues rq for the writer (or runs it now against the inline store of a test).  On
 * failure rq is freed and its callback never runs (STYLE.md point 6). */
static enum alerts_status queue_request(struct alerts *a, struct request *rq)
{
	rq->a = a;
	rq->job.run = alerts__request_run;
	struct ingest *ig = alerts__ig(a);
	if (!ig && a->o.inline_store) {
		alerts__request_run(&rq->job, a->o.inline_store);
		return ALERTS_OK;
	}
	if (!ig || ingest_run_job(ig, &rq->job)) {
		free(rq);
		return ALERTS_UNAVAILABLE;
	}
	return ALERTS_OK;
}

static struct request *new_request(int kind, alerts_answer_fn fn, void *arg)
{
	struct request *rq = calloc(1, sizeof(*rq));
	if (!rq)
		return NULL;
	rq->kind = kind;
	rq->fn = fn;
	rq->arg = arg;
	return rq;
}

enum alerts_status alerts_reload(struct alerts *a, alerts_answer_fn fn, void *arg)
{
	return alerts_reload_by(a, "", fn, arg);
}

enum alerts_status alerts_reload_by(struct alerts *a, const char *who, alerts_answer_fn fn, void *arg)
{
	struct request *rq = new_request(REQ_RELOAD, fn, arg);
	if (!rq)
		return ALERTS_INTERNAL;
	errq_snprintf(rq->who, sizeof(rq->who), "%s", who && *who ? who : "(not said)");
	return queue_request(a, rq);
}

enum alerts_status alerts_replay(struct alerts *a, const uint8_t alert_id[16], alerts_answer_fn fn, void *arg)
{
	struct request *rq = new_request(REQ_REPLAY, fn, arg);
	if (!rq)
		return ALERTS_INTERNAL;
	memcpy(rq->alert_id, alert_id, 16);
	return queue_request(a, rq);
}

enum alerts_status alerts_silence_add(struct alerts *a, const struct alerts_silence_req *req, alerts_answer_fn fn,
				      void *arg)
{
	struct request *rq = new_request(REQ_SILENCE_ADD, fn, arg);
	if (!rq)
		return ALERTS_INTERNAL;
	rq->sil = *req;
	rq->sil.rule[sizeof(rq->sil.rule) - 1] = '\0';
	rq->sil.matchers[sizeof(rq->sil.matchers) - 1] = '\0';
	rq->sil.comment[sizeof(rq->sil.comment) - 1] = '\0';
	rq->sil.created_by[sizeof(rq->sil.created_by) - 1] = '\0';
	return queue_request(a, rq);
}

enum alerts_status alerts_silence_expire(struct alerts *a, int64_t id, alerts_answer_fn fn, void *arg)
{
	struct request *rq = new_request(REQ_SILENCE_EXPIRE, fn, arg);
	if (!rq)
		return ALERTS_INTERNAL;
	rq->id = id;
	return queue_request(a, rq);
}

const char *alerts_refusal_msg(enum alerts_status st)
{
	return st == ALERTS_UNAVAILABLE ? "the collector is busy or stopping; try again" : "out of memory";
}

/* ---- life ---- */

int alerts_new(struct alerts **out, const struct alerts_opts *o, struct ruleset *rs, const char *source, char *err,
	       size_t errsz)
{
	struct alerts *a = calloc(1, sizeof(*a));
	if (!a) {
		rules_free(rs);
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	a->o = *o;
	a->clock = o->clock ? o->clock : default_clock;
	errq_snprintf(a->config_path, sizeof(a->config_path), "%s", o->config_path ? o->config_path : "");
	errq_snprintf(a->collector, sizeof(a->collector), "%s", o->collector ? o->collector : "errqd");
	errq_idgen_init(&a->idgen);
	pthread_mutex_init(&a->rules_mu, NULL);
	pthread_mutex_init(&a->rep_mu, NULL);
	pthread_mutex_init(&a->stats_mu, NULL);
	a->subs_tail = &a->subs;
	a->report_job.run = alerts__report_job_run;
	a->retry_ids = malloc(NOTIFY_MAX_PENDING * sizeof(*a->retry_ids));
	if (!rs && rules_load_mem(&rs, "(none)", "", 0, err, errsz)) {
		alerts_free(a);
		return -1;
	}
	if (!(a->cur = alerts__rules_ref_new(rs, source, a->clock()))) {
		rules_free(rs);
		alerts_free(a);
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (!(a->rt = alerts__new_rt(rs->n_rules)) || notify_start(&a->notifier, alerts__on_report, a, o->notify, err, errsz)) {
		if (!a->rt)
			errq_snprintf(err, errsz, "out of memory");
		alerts_free(a);
		return -1;
	}
	alerts__set_dests(a, rs);
	*out = a;
	return 0;
}

void alerts_set_ingest(struct alerts *a, struct ingest *ig)
{
	__atomic_store_n(&a->o.ig, ig, __ATOMIC_RELEASE);
}

void alerts_stop(struct alerts *a)
{
	if (!a)
		return;
	notify_stop(a->notifier); /* joins its thread: no delivery, timer or job after this */
	a->notifier = NULL;
}

void alerts_free(struct alerts *a)
{
	if (!a)
		return;
	alerts_stop(a);
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry *e = a->buckets[i], *next; e; e = next) {
			next = e->hnext;
			alerts__free_entry(a, e);
		}
	free(a->buckets);
	while (a->n_sil)
		alerts__drop_silence_mem(a, a->n_sil - 1);
	free(a->sil);
	free(a->rt);
	free(a->reports);
	free(a->retry_ids);
	if (a->fin) {
		alerts__fleet_txn_end(a, false);
		free(a->fin);
	}
	free(a->fin_idx);
	alerts__log_free(a);
	if (a->cur)
		alerts__rules_ref_put(a, a->cur);
	pthread_mutex_destroy(&a->rules_mu);
	pthread_mutex_destroy(&a->rep_mu);
	pthread_mutex_destroy(&a->stats_mu);
	free(a);
}

void alerts_get_stats(struct alerts *a, struct alerts_stats *st)
{
	pthread_mutex_lock(&a->stats_mu);
	*st = a->st;
	pthread_mutex_unlock(&a->stats_mu);
}

size_t alerts_notifier_stats(struct alerts *a, struct notify_dest_stats *out, size_t max)
{
	return notify_get_stats(a->notifier, out, max);
}

uint64_t alerts_notifier_last_turn(void *ctx)
{
	struct alerts *a = ctx;
	return notify_last_turn(a->notifier);
}

uint64_t alerts_rule_overflow(struct alerts *a, const char *rule)
{
	uint64_t n = 0;
	const struct alerts_rules *r = alerts_rules_get(a);
	const struct rule *ru = rules_find(r->rs, rule);
	pthread_mutex_lock(&a->stats_mu);
	if (ru && r == &a->cur->pub)
		n = a->rt[ru - r->rs->rules].overflow_failures;
	pthread_mutex_unlock(&a->stats_mu);
	alerts_rules_put(a, r);
	return n;
}
