/* svc_alerts_rule.c: ListRules: the rules in force as text, with their circuit counts. */
#include "svc_alerts_int.h"

#include "errq_banned.h"

/* ---- ListRules ---- */

/* Appends s with '\', ',' and '=' escaped by a backslash (the form of circuit keys). */
static int add_escaped(struct errq_buf *o, const char *s)
{
	for (; *s; s++)
		if (((*s == '\\' || *s == ',' || *s == '=') && errq_buf_add(o, "\\", 1)) || errq_buf_add(o, s, 1))
			return -1;
	return 0;
}

/* "service=checkout,error_type=Timeout*": the match entries in their canonical order. */
static char *match_text(struct build *b, const struct rule *r)
{
	struct errq_buf o;
	char f[ALERTS_SVC_FIELD_MAX];
	char *res = NULL;
	errq_buf_init(&o, ALERTS_SVC_MATCH_MAX);
	for (size_t i = 0; i < r->n_match; i++) {
		if ((i && errq_buf_add(&o, ",", 1)) ||
		    errq_buf_printf(&o, "%s=", rules_field_name(&r->match[i].field, f, sizeof(f))) ||
		    add_escaped(&o, r->match[i].glob))
			goto out;
	}
	res = bstr(b, o.p ? o.p : "");
out:
	errq_buf_free(&o);
	return res;
}

/* A rate in parts per million as a decimal: 500000 -> "0.5", 1000000 -> "1". */
static void fmt_ppm(char *buf, size_t n, uint32_t ppm)
{
	uint32_t whole = ppm / CIRCUIT_RATE_ONE, frac = ppm % CIRCUIT_RATE_ONE;
	int digits = 6;
	if (!frac) {
		errq_snprintf(buf, n, "%u", whole);
		return;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	errq_snprintf(buf, n, "%u.%0*u", whole, digits, frac);
}

/* "3 failures in 60s", "failure rate >= 0.5 (min 20 calls) in 60s", or both joined by "or". */
static char *trip_text(struct build *b, const struct circuit_config *c)
{
	char out[ALERTS_SVC_TRIP_MAX], rate[32];
	size_t o = 0;
	out[0] = '\0';
	if (c->failures)
		o += (size_t)errq_snprintf(out, sizeof(out), "%u failure%s", c->failures, c->failures == 1 ? "" : "s");
	if (c->failure_rate_ppm && o < sizeof(out)) {
		fmt_ppm(rate, sizeof(rate), c->failure_rate_ppm);
		o += (size_t)errq_snprintf(out + o, sizeof(out) - o, "%sfailure rate >= %s (min %llu calls)",
					   o ? " or " : "", rate, (unsigned long long)c->min_calls);
	}
	/* the window as written in a rules file: 60s, 5m, 1h */
	unsigned long long w = c->window_ns / CIRCUIT_NS_PER_SEC;
	if (o < sizeof(out) && w % 3600 == 0)
		errq_snprintf(out + o, sizeof(out) - o, " in %lluh", w / 3600);
	else if (o < sizeof(out) && w >= 120 && w % 60 == 0)
		errq_snprintf(out + o, sizeof(out) - o, " in %llum", w / 60);
	else if (o < sizeof(out))
		errq_snprintf(out + o, sizeof(out) - o, " in %llus", w);
	return bstr(b, out);
}

static Errq__V1__Rule *rule_msg(struct build *b, const struct ruleset *rs, const struct rule *r)
{
	char f[ALERTS_SVC_FIELD_MAX];
	Errq__V1__Rule *o = errq_arena_alloc(&b->a, sizeof(*o));
	if (!o)
		return NULL;
	errq__v1__rule__init(o);
	o->name = bstr(b, r->name);
	o->match = match_text(b, r);
	o->group_by = errq_arena_alloc(&b->a, (r->n_group_by + 1) * sizeof(char *));
	o->notify = errq_arena_alloc(&b->a, (r->n_notify + 1) * sizeof(char *));
	if (!o->match || !o->group_by || !o->notify)
		return NULL;
	for (size_t i = 0; i < r->n_group_by; i++)
		o->group_by[o->n_group_by++] = bstr(b, rules_field_name(&r->group_by[i], f, sizeof(f)));
	for (size_t i = 0; i < r->n_notify; i++)
		if (r->notify[i] < rs->n_notifiers)
			o->notify[o->n_notify++] = bstr(b, rs->notifiers[r->notify[i]].name);
	o->trip = trip_text(b, &r->circuit);
	o->recovery_timeout_ms = r->circuit.recovery_timeout_ns / 1000000;
	o->severity = bstr(b, rules_severity_name(r->severity));
	o->max_circuits = r->max_circuits;
	o->line = r->line > 0 ? (uint32_t)r->line : 0;
	return b->a.failed ? NULL : o;
}

struct count_ctx {
	const struct ruleset *rs;
	Errq__V1__Rule **rules;
};

static int count_row(void *arg, const char *rule, uint64_t circuits, uint64_t not_closed)
{
	struct count_ctx *x = arg;
	const struct rule *r = rules_find(x->rs, rule);
	if (r) {
		x->rules[r - x->rs->rules]->circuits = (uint32_t)circuits;
		x->rules[r - x->rs->rules]->open = (uint32_t)not_closed;
	}
	return 0;
}

grpc_status_code svc_alerts__list_rules(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct alerts_svc *svc = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	Errq__V1__ListRulesResponse o = ERRQ__V1__LIST_RULES_RESPONSE__INIT;
	const struct alerts_rules *rules = svc_alerts__rules_get(svc);
	if (!rules) { /* alerting not configured */
		*resp = errq_bb_from_msg(&o.base);
		goto out;
	}
	const struct ruleset *rs = rules->rs;
	o.rules = errq_arena_alloc(&b.a, (rs->n_rules + 1) * sizeof(*o.rules));
	o.notifiers = errq_arena_alloc(&b.a, (rs->n_notifiers + 1) * sizeof(*o.notifiers));
	if (!o.rules || !o.notifiers) {
		st = svc_oom(details, dsz);
		goto out;
	}
	for (size_t i = 0; i < rs->n_rules; i++) {
		if (!(o.rules[i] = rule_msg(&b, rs, &rs->rules[i]))) {
			st = svc_oom(details, dsz);
			goto out;
		}
		o.rules[i]->overflow_failures = alerts_rule_overflow(svc->alerts, rs->rules[i].name);
	}
	o.n_rules = rs->n_rules;
	for (size_t i = 0; i < rs->n_notifiers; i++) {
		const struct rules_notifier *n = &rs->notifiers[i];
		Errq__V1__Notifier *m = errq_arena_alloc(&b.a, sizeof(*m));
		if (!m) {
			st = svc_oom(details, dsz);
			goto out;
		}
		errq__v1__notifier__init(m);
		m->name = bstr(&b, n->name);
		m->type = (char *)rules_notifier_type_name(n->type);
		m->url = bstr(&b, n->url);
		o.notifiers[o.n_notifiers++] = m;
	}
	if (svc->db_path && rs->n_rules) {
		struct store *s = svc_reader(&svc->readers, details, dsz);
		struct count_ctx cx = {.rs = rs, .rules = o.rules};
		if (!s) {
			st = GRPC_STATUS_UNAVAILABLE;
			goto out;
		}
		if (store_count_circuits(s, count_row, &cx)) {
			st = svc_query_failed(s, details, dsz);
			goto out;
		}
	}
	o.source = (char *)rules->source;
	o.loaded_unix_nano = rules->loaded_ns;
	if (b.a.failed) {
		st = svc_oom(details, dsz);
		goto out;
	}
	*resp = errq_bb_from_msg(&o.base);
out:
	svc_alerts__rules_put(svc, rules);
	errq_arena_release(&b.a);
	return st;
}
