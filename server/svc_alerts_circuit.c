/* svc_alerts_circuit.c: ListCircuits and ExplainCircuit. */
#include "svc_alerts_int.h"

#include "errq_banned.h"

/* ---- circuits ---- */

/* A circuit row as a message, with its live figures when its rule (same definition) is in
 * force; else the figures stored, and stale. */
static Errq__V1__Circuit *circuit_msg(struct build *b, const struct store_circuit *c, const struct rule *rule,
				      uint64_t now)
{
	Errq__V1__Circuit *o = errq_arena_alloc(&b->a, sizeof(*o));
	if (!o)
		return NULL;
	errq__v1__circuit__init(o);
	o->rule = bstr(b, c->rule);
	o->key = bstr(b, c->key);
	o->state = svc_alerts__state_msg(c->state);
	o->since_unix_nano = c->since_ns;
	o->failures_in_window = c->failures_in_window;
	o->next_transition_unix_nano = c->next_transition_ns;
	if (c->alert_id && c->state != CIRCUIT_CLOSED)
		o->alert_id = svc_alerts__bid(b, c->alert_id);
	o->stale = !rule || rule->def_hash != c->def_hash;
	struct circuit *live = NULL;
	if (rule && c->saved && c->saved_len && !circuit_load(&live, &rule->circuit, c->saved, c->saved_len)) {
		o->window_seconds = live->window_s;
		if (!o->stale) {
			uint64_t t = now > live->clock ? now : live->clock;
			o->failures_in_window = circuit_window_failures(live, t);
			o->next_transition_unix_nano = circuit_next_transition(live);
			circuit_window_calls(live, t, &o->calls_ok, &o->calls_failed);
		}
		circuit_free(live);
	}
	return b->a.failed ? NULL : o;
}

struct circuit_item {
	Errq__V1__Circuit *c;
	size_t rule_index; /* in the rules in force; n_rules for a rule not in force */
	size_t seq;        /* order of the store: (rule, key) */
};

struct circuits_ctx {
	struct build *b;
	const struct alerts_rules *rules;
	int state; /* -1 = any */
	uint64_t now;
	struct circuit_item *items;
	size_t n, bytes;
	bool truncated, oom;
	/* the rows come by rule: the last rule looked up */
	char last_rule[RULES_NAME_MAX];
	const struct rule *last;
	size_t last_index;
};

static void lookup_rule(struct circuits_ctx *x, const char *name)
{
	if (x->last_rule[0] && !strcmp(x->last_rule, name))
		return;
	errq_snprintf(x->last_rule, sizeof(x->last_rule), "%s", name);
	x->last = svc_alerts__rule_named(x->rules, name);
	x->last_index = x->rules ? x->rules->rs->n_rules : 0;
	if (x->last)
		x->last_index = (size_t)(x->last - x->rules->rs->rules);
}

static int circuit_row(void *arg, const struct store_circuit *c)
{
	struct circuits_ctx *x = arg;
	if (x->state >= 0 && c->state != x->state)
		return 0;
	size_t approx = 256 + strlen(c->rule) + strlen(c->key);
	if (x->n == ALERTS_SVC_CIRCUITS_LISTED || x->bytes + approx > ALERTS_SVC_MAX_RESPONSE_BYTES) {
		x->truncated = true;
		return 1;
	}
	lookup_rule(x, c->rule);
	Errq__V1__Circuit *o = circuit_msg(x->b, c, x->last, x->now);
	if (!o) {
		x->oom = true;
		return 1;
	}
	x->items[x->n].c = o;
	x->items[x->n].rule_index = x->last_index;
	x->items[x->n].seq = x->n;
	x->n++;
	x->bytes += approx;
	return 0;
}

/* By rule in file order (rules no longer in force last, by name), then key. */
static int item_cmp(const void *pa, const void *pb)
{
	const struct circuit_item *a = pa, *b = pb;
	if (a->rule_index != b->rule_index)
		return a->rule_index < b->rule_index ? -1 : 1;
	int r = strcmp(a->c->rule, b->c->rule);
	if (r)
		return r;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

grpc_status_code svc_alerts__list_circuits(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct alerts_svc *svc = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	struct circuits_ctx x = {.b = &b, .now = errq_now_ns()};
	struct store *s;
	Errq__V1__ListCircuitsRequest *in = svc_decode(&b, &errq__v1__list_circuits_request__descriptor, req, details, dsz);
	if (!in) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if ((x.state = svc_alerts__state_parse(in->state)) == -2) {
		errq_snprintf(details, dsz, "unknown state '%.64s': closed, open or half_open", in->state);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (!(s = svc_reader(&svc->readers, details, dsz))) {
		st = GRPC_STATUS_UNAVAILABLE;
		goto out;
	}
	if (!(x.items = errq_arena_alloc(&b.a, ALERTS_SVC_CIRCUITS_LISTED * sizeof(*x.items)))) {
		st = svc_oom(details, dsz);
		goto out;
	}
	x.rules = svc_alerts__rules_get(svc);
	int r = store_list_circuits(s, in->rule[0] ? in->rule : NULL, circuit_row, &x);
	if ((st = svc_listed(s, r, x.oom, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	qsort(x.items, x.n, sizeof(*x.items), item_cmp);
	Errq__V1__Circuit **list = errq_arena_alloc(&b.a, (x.n ? x.n : 1) * sizeof(*list));
	if (!list) {
		st = svc_oom(details, dsz);
		goto out;
	}
	for (size_t k = 0; k < x.n; k++)
		list[k] = x.items[k].c;
	Errq__V1__ListCircuitsResponse o = ERRQ__V1__LIST_CIRCUITS_RESPONSE__INIT;
	o.n_circuits = x.n;
	o.circuits = list;
	o.truncated = x.truncated;
	*resp = errq_bb_from_msg(&o.base);
out:
	svc_alerts__rules_put(svc, x.rules);
	errq_arena_release(&b.a);
	return st;
}

/* ---- ExplainCircuit ---- */

struct one_circuit {
	struct build *b;
	const struct rule *rule;
	uint64_t now;
	Errq__V1__Circuit *c;
	bool oom;
};

static int one_circuit_cb(void *arg, const struct store_circuit *c)
{
	struct one_circuit *x = arg;
	x->c = circuit_msg(x->b, c, x->rule, x->now);
	x->oom = !x->c;
	return 1;
}

struct transitions_ctx {
	struct build *b;
	Errq__V1__Transition **items;
	size_t n, cap;
	bool oom;
};

static int transition_row(void *arg, const struct store_transition *t)
{
	struct transitions_ctx *x = arg;
	if (x->n == x->cap)
		return 1;
	Errq__V1__Transition *o = errq_arena_alloc(&x->b->a, sizeof(*o));
	if (!o) {
		x->oom = true;
		return 1;
	}
	errq__v1__transition__init(o);
	o->at_unix_nano = t->at_ns;
	o->from = svc_alerts__state_msg(t->from);
	o->to = svc_alerts__state_msg(t->to);
	o->reason = bstr(x->b, t->reason);
	o->failures_in_window = t->failures_in_window;
	o->window_seconds = t->window_seconds;
	o->next_transition_unix_nano = t->next_transition_ns;
	o->alert_id = svc_alerts__bid(x->b, t->alert_id);
	if (x->b->a.failed) {
		x->oom = true;
		return 1;
	}
	x->items[x->n++] = o;
	return 0;
}

grpc_status_code svc_alerts__explain_circuit(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details,
					size_t dsz)
{
	struct alerts_svc *svc = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	const struct alerts_rules *rules = NULL;
	struct store *s;
	char err[512];
	Errq__V1__ExplainCircuitRequest *in = svc_decode(&b, &errq__v1__explain_circuit_request__descriptor, req, details, dsz);
	if (!in || !in->rule[0]) {
		if (in)
			errq_snprintf(details, dsz, "rule is empty");
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (strlen(in->key) >= ALERTS_SVC_KEY_IN_MAX) {
		errq_snprintf(details, dsz, "key is longer than %d bytes", ALERTS_SVC_KEY_IN_MAX - 1);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (!(s = svc_reader(&svc->readers, details, dsz))) {
		st = GRPC_STATUS_UNAVAILABLE;
		goto out;
	}
	char *canon = errq_arena_alloc(&b.a, RULES_KEY_MAX);
	uint32_t limit = in->limit ? in->limit : ALERTS_SVC_DEFAULT_TRANSITIONS;
	if (limit > ALERTS_MAX_TRANSITIONS_LISTED)
		limit = ALERTS_MAX_TRANSITIONS_LISTED;
	struct transitions_ctx tx = {.b = &b, .cap = limit};
	if (!canon || !(tx.items = errq_arena_alloc(&b.a, limit * sizeof(*tx.items)))) {
		st = svc_oom(details, dsz);
		goto out;
	}
	rules = svc_alerts__rules_get(svc);
	const struct rule *rule = svc_alerts__rule_named(rules, in->rule);
	if (rule) {
		if (rules_key_canonical(rule, in->key, canon, RULES_KEY_MAX, err, sizeof(err))) {
			errq_snprintf(details, dsz, "%s", err);
			st = GRPC_STATUS_INVALID_ARGUMENT;
			goto out;
		}
	} else {
		/* a rule no longer in force: its history is under the key as it was stored */
		errq_snprintf(canon, RULES_KEY_MAX, "%s", in->key);
	}
	struct one_circuit oc = {.b = &b, .rule = rule, .now = errq_now_ns()};
	if (store_get_circuit(s, in->rule, canon, one_circuit_cb, &oc) < 0 ||
	    store_list_transitions(s, in->rule, canon, limit, transition_row, &tx)) {
		st = svc_query_failed(s, details, dsz);
		goto out;
	}
	if (oc.oom || tx.oom) {
		st = svc_oom(details, dsz);
		goto out;
	}
	if (!rule && !oc.c && !tx.n) {
		errq_snprintf(details, dsz, "no rule '%.64s'", in->rule);
		st = GRPC_STATUS_NOT_FOUND;
		goto out;
	}
	Errq__V1__ExplainCircuitResponse o = ERRQ__V1__EXPLAIN_CIRCUIT_RESPONSE__INIT;
	o.circuit = oc.c;
	o.n_transitions = tx.n;
	o.transitions = tx.items;
	o.canonical_key = canon;
	*resp = errq_bb_from_msg(&o.base);
out:
	svc_alerts__rules_put(svc, rules);
	errq_arena_release(&b.a);
	return st;
}
