/* svc_alerts.c: errq.v1.Alerts, the alerting API behind the errq CLI (see svc_alerts.h).
 *
 * Reads run on the completion-queue threads, each with its own read-only SQLite connection
 * (pthread key; closed when the thread exits), one short statement at a time: a listing is
 * read whole into an arena first, and what decorates its rows (deliveries, silences) is
 * read after, never while a statement is open.  The live figures of a circuit (failures in
 * the window now, the next transition) come from its saved state (circuit_load) under the
 * rule in force, when that rule still has the definition the circuit was saved with.
 *
 * Writes go to the rule engine (alerts_reload, alerts_replay, alerts_silence_*), which
 * answers on the writer thread (or at once, on this thread, when it cannot take the
 * request); the answer callback replies to the call.  A silence is read back after the
 * write, through a reader connection of the answering thread. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "svc_common.h"
#include "circuit.h"
#include "errq/v1/alerts.pb-c.h"
#include "errq_arena.h"
#include "errq_grpc.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "rules.h"
#include "services.h"
#include "storage.h"
#include "storage_alerts.h"
#include "svc_alerts.h"
#include "transport.h"
#include "errq_banned.h"

#define ALERTS_SVC_MAX_RESPONSE_BYTES (4u << 20) /* a response stops growing here */
#define ALERTS_SVC_CIRCUITS_LISTED 10000         /* ListCircuits answers at most this many */
#define ALERTS_SVC_DEFAULT_TRANSITIONS 100
#define ALERTS_SVC_NOTIFIERS_LISTED 64           /* notifiers shown per alert in listings */
#define ALERTS_SVC_DELIVERIES_LISTED 1000        /* GetAlert: the newest rows of an alert */
#define ALERTS_SVC_DETAILS_MAX 1024
#define ALERTS_SVC_KEY_IN_MAX (2 * RULES_KEY_MAX) /* a key as typed (escapes optional) */
#define ALERTS_SVC_FIELD_MAX (RULES_DETAIL_KEY_MAX + 16)
/* "field=glob" with every byte of the glob escaped, for each match entry */
#define ALERTS_SVC_MATCH_MAX (RULES_MAX_MATCH * (ALERTS_SVC_FIELD_MAX + 2 * RULES_GLOB_MAX + 2))
#define ALERTS_SVC_TRIP_MAX 160

struct alerts_svc {
	char *db_path; /* NULL: storage none */
	struct alerts *alerts;
	struct svc_readers readers;
};

/* ---- messages built in an arena ---- */

static ProtobufCBinaryData bid(struct build *b, const uint8_t *id)
{
	ProtobufCBinaryData o = {0, NULL};
	if (id && (o.data = errq_arena_alloc(&b->a, 16))) {
		memcpy(o.data, id, 16);
		o.len = 16;
	}
	return o;
}



static Errq__V1__CircuitState state_msg(int st)
{
	return st == CIRCUIT_OPEN ? ERRQ__V1__CIRCUIT_STATE__CIRCUIT_OPEN
	       : st == CIRCUIT_HALF_OPEN ? ERRQ__V1__CIRCUIT_STATE__CIRCUIT_HALF_OPEN
					 : ERRQ__V1__CIRCUIT_STATE__CIRCUIT_CLOSED;
}

/* "closed" | "open" | "half_open" -> the state, "" -> -1 (any), else -2. */
static int state_parse(const char *s)
{
	if (!*s)
		return -1;
	for (int st = CIRCUIT_CLOSED; st <= CIRCUIT_HALF_OPEN; st++)
		if (!strcmp(s, circuit_state_name((enum circuit_state)st)))
			return st;
	return -2;
}

/* The rules in force (an empty set without an engine); give them back with rules_put. */
static const struct alerts_rules *rules_get(struct alerts_svc *svc)
{
	return svc->alerts ? alerts_rules_get(svc->alerts) : NULL;
}

static void rules_put(struct alerts_svc *svc, const struct alerts_rules *r)
{
	if (r)
		alerts_rules_put(svc->alerts, r);
}

static const struct rule *rule_named(const struct alerts_rules *r, const char *name)
{
	return r ? rules_find(r->rs, name) : NULL;
}

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
	o->state = state_msg(c->state);
	o->since_unix_nano = c->since_ns;
	o->failures_in_window = c->failures_in_window;
	o->next_transition_unix_nano = c->next_transition_ns;
	if (c->alert_id && c->state != CIRCUIT_CLOSED)
		o->alert_id = bid(b, c->alert_id);
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
	x->last = rule_named(x->rules, name);
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

static grpc_status_code list_circuits(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
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
	if ((x.state = state_parse(in->state)) == -2) {
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
	x.rules = rules_get(svc);
	int r = store_list_circuits(s, in->rule[0] ? in->rule : NULL, circuit_row, &x);
	if (r) {
		st = svc_query_failed(s, details, dsz);
		goto out;
	}
	if (x.oom) {
		st = svc_oom(details, dsz);
		goto out;
	}
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
	rules_put(svc, x.rules);
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
	o->from = state_msg(t->from);
	o->to = state_msg(t->to);
	o->reason = bstr(x->b, t->reason);
	o->failures_in_window = t->failures_in_window;
	o->window_seconds = t->window_seconds;
	o->next_transition_unix_nano = t->next_transition_ns;
	o->alert_id = bid(x->b, t->alert_id);
	if (x->b->a.failed) {
		x->oom = true;
		return 1;
	}
	x->items[x->n++] = o;
	return 0;
}

static grpc_status_code explain_circuit(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details,
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
	rules = rules_get(svc);
	const struct rule *rule = rule_named(rules, in->rule);
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
	rules_put(svc, rules);
	errq_arena_release(&b.a);
	return st;
}

/* ---- alerts, deliveries, silences ---- */

static bool silence_active(const struct store_silence *si, uint64_t now)
{
	return si->starts_ns <= now && now < si->ends_ns && (!si->expired_ns || si->expired_ns > now);
}

static Errq__V1__Silence *silence_msg(struct build *b, const struct store_silence *si, uint64_t now)
{
	Errq__V1__Silence *o = errq_arena_alloc(&b->a, sizeof(*o));
	if (!o)
		return NULL;
	errq__v1__silence__init(o);
	o->id = (uint64_t)si->id;
	o->rule = bstr(b, si->rule);
	o->matchers = bstr(b, si->matchers);
	o->comment = bstr(b, si->comment);
	o->created_by = bstr(b, si->created_by);
	o->created_unix_nano = si->created_ns;
	o->starts_unix_nano = si->starts_ns;
	o->ends_unix_nano = si->ends_ns;
	o->expired_unix_nano = si->expired_ns;
	o->active = silence_active(si, now);
	return b->a.failed ? NULL : o;
}

struct silences_ctx {
	struct build *b;
	uint64_t now;
	Errq__V1__Silence **items;
	size_t n;
	bool oom;
};

static int silence_row(void *arg, const struct store_silence *si)
{
	struct silences_ctx *x = arg;
	if (x->n == ALERTS_SVC_SILENCES_LISTED)
		return 1;
	Errq__V1__Silence *o = silence_msg(x->b, si, x->now);
	if (!o) {
		x->oom = true;
		return 1;
	}
	x->items[x->n++] = o;
	return 0;
}

/* The silences in force now (into x, from the arena).  0 or -1 (store error or memory). */
static int active_silences(struct store *s, struct build *b, uint64_t now, struct silences_ctx *x)
{
	memset(x, 0, sizeof(*x));
	x->b = b;
	x->now = now;
	if (!(x->items = errq_arena_alloc(&b->a, ALERTS_SVC_SILENCES_LISTED * sizeof(*x->items))))
		return -1;
	if (store_list_silences(s, false, now, ALERTS_SVC_SILENCES_LISTED, silence_row, x) || x->oom)
		return -1;
	return 0;
}

static bool alert_silenced(const struct silences_ctx *x, const char *rule, const char *key)
{
	for (size_t k = 0; k < x->n; k++)
		if (x->items[k]->active && !strcmp(x->items[k]->rule, rule) &&
		    alerts_matchers_match(x->items[k]->matchers, key))
			return true;
	return false;
}

struct deliveries_ctx {
	struct build *b;
	Errq__V1__Delivery **items;
	size_t n, cap, start; /* all: a ring of the newest cap rows from start */
	bool latest;          /* one row per notifier, the newest */
	bool oom;
};

static int delivery_row(void *arg, const struct store_delivery *d)
{
	struct deliveries_ctx *x = arg;
	size_t at = x->n;
	if (x->latest) {
		for (at = 0; at < x->n; at++)
			if (!strcmp(x->items[at]->notifier, d->notifier ? d->notifier : ""))
				break;
		if (at == x->cap)
			return 0; /* more notifiers than shown */
	} else if (x->n == x->cap) {
		at = x->start;
		x->start = (x->start + 1) % x->cap;
	}
	Errq__V1__Delivery *o = errq_arena_alloc(&x->b->a, sizeof(*o));
	if (!o) {
		x->oom = true;
		return 1;
	}
	errq__v1__delivery__init(o);
	o->notifier = bstr(x->b, d->notifier);
	o->kind = bstr(x->b, d->kind);
	o->seq = d->seq;
	o->status = bstr(x->b, store_delivery_status_name(d->status));
	o->attempts = d->attempts;
	o->next_attempt_unix_nano = d->next_attempt_ns;
	o->http_status = (int32_t)d->http_status;
	o->last_error = bstr(x->b, d->last_error);
	o->updated_unix_nano = d->updated_ns;
	o->id = (uint64_t)d->id;
	if (x->b->a.failed) {
		x->oom = true;
		return 1;
	}
	x->items[at] = o;
	if (at == x->n)
		x->n++;
	return 0;
}

/* Fills a->delivery: the newest row per notifier, or (all) every row, oldest first. */
static int alert_deliveries(struct store *s, struct build *b, Errq__V1__Alert *a, bool all)
{
	struct deliveries_ctx x = {.b = b, .latest = !all};
	x.cap = all ? ALERTS_SVC_DELIVERIES_LISTED : ALERTS_SVC_NOTIFIERS_LISTED;
	if (!(x.items = errq_arena_alloc(&b->a, x.cap * sizeof(*x.items))))
		return -1;
	if (a->alert_id.len != 16 || store_list_deliveries(s, a->alert_id.data, delivery_row, &x) || x.oom)
		return -1;
	if (x.start) { /* the ring wrapped: oldest first again */
		Errq__V1__Delivery **sorted = errq_arena_alloc(&b->a, x.n * sizeof(*sorted));
		if (!sorted)
			return -1;
		for (size_t k = 0; k < x.n; k++)
			sorted[k] = x.items[(x.start + k) % x.n];
		x.items = sorted;
	}
	a->n_delivery = x.n;
	a->delivery = x.items;
	return 0;
}

static Errq__V1__Alert *alert_msg(struct build *b, const struct store_alert *r)
{
	Errq__V1__Alert *o = errq_arena_alloc(&b->a, sizeof(*o));
	if (!o)
		return NULL;
	errq__v1__alert__init(o);
	o->alert_id = bid(b, r->alert_id);
	o->rule = bstr(b, r->rule);
	o->key = bstr(b, r->key);
	o->status = bstr(b, r->status);
	o->severity = bstr(b, r->severity);
	o->opened_unix_nano = r->opened_ns;
	o->resolved_unix_nano = r->resolved_ns;
	o->failures_in_window = r->failures_in_window;
	o->window_seconds = r->window_seconds;
	o->state = state_msg(r->state);
	o->resolve_reason = bstr(b, r->resolve_reason);
	o->sample_json = bstr(b, r->sample);
	return b->a.failed ? NULL : o;
}

/* Deliveries and `silenced` of alerts already read. */
static grpc_status_code decorate_alerts(struct store *s, struct build *b, Errq__V1__Alert **items, size_t n,
					bool all, char *details, size_t dsz)
{
	struct silences_ctx sx;
	if (!n)
		return GRPC_STATUS_OK;
	if (active_silences(s, b, errq_now_ns(), &sx))
		return sx.oom || b->a.failed ? svc_oom(details, dsz) : svc_query_failed(s, details, dsz);
	for (size_t k = 0; k < n; k++) {
		if (alert_deliveries(s, b, items[k], all))
			return b->a.failed ? svc_oom(details, dsz) : svc_query_failed(s, details, dsz);
		/* "a silence covers it now": a resolved alert has nothing left to silence */
		items[k]->silenced =
		    !strcmp(items[k]->status, "firing") && alert_silenced(&sx, items[k]->rule, items[k]->key);
	}
	return GRPC_STATUS_OK;
}

struct alerts_ctx {
	struct build *b;
	Errq__V1__Alert **items;
	size_t n, bytes;
	uint32_t limit;
	int64_t last_id;
	bool more, oom;
};

static int alert_row(void *arg, const struct store_alert *r)
{
	struct alerts_ctx *x = arg;
	size_t approx = 1024 + strlen(r->key) + (r->sample ? strlen(r->sample) : 0);
	if (x->n == x->limit || (x->n && x->bytes + approx > ALERTS_SVC_MAX_RESPONSE_BYTES)) {
		x->more = true;
		return 1;
	}
	Errq__V1__Alert *o = alert_msg(x->b, r);
	if (!o) {
		x->oom = true;
		return 1;
	}
	x->items[x->n++] = o;
	x->bytes += approx;
	x->last_id = r->id;
	return 0;
}

static bool valid_alert_status(const char *s)
{
	return !*s || !strcmp(s, "firing") || !strcmp(s, "resolved");
}

static grpc_status_code list_alerts(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct alerts_svc *svc = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	struct alerts_ctx x = {.b = &b};
	struct store *s;
	Errq__V1__ListAlertsRequest *in = svc_decode(&b, &errq__v1__list_alerts_request__descriptor, req, details, dsz);
	if (!in) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (in->cursor.len != 0 && in->cursor.len != 8) {
		errq_snprintf(details, dsz, "bad cursor: %zu bytes", in->cursor.len);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (!valid_alert_status(in->status)) {
		errq_snprintf(details, dsz, "unknown status '%.64s': firing or resolved", in->status);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (!(s = svc_reader(&svc->readers, details, dsz))) {
		st = GRPC_STATUS_UNAVAILABLE;
		goto out;
	}
	x.limit = !in->limit ? QUERY_DEFAULT_LIMIT : in->limit > QUERY_MAX_LIMIT ? QUERY_MAX_LIMIT : in->limit;
	if (!(x.items = errq_arena_alloc(&b.a, x.limit * sizeof(*x.items)))) {
		st = svc_oom(details, dsz);
		goto out;
	}
	struct store_alert_filter f = {
	    .status = in->status[0] ? in->status : NULL,
	    .rule = in->rule[0] ? in->rule : NULL,
	    .since_ns = in->since_unix_nano,
	    .before_id = in->cursor.len == 8 ? (int64_t)svc_get_be64(in->cursor.data) : 0,
	    .limit = x.limit + 1,
	};
	if (store_list_alerts(s, &f, alert_row, &x)) {
		st = svc_query_failed(s, details, dsz);
		goto out;
	}
	if (x.oom) {
		st = svc_oom(details, dsz);
		goto out;
	}
	if ((st = decorate_alerts(s, &b, x.items, x.n, false, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	Errq__V1__ListAlertsResponse o = ERRQ__V1__LIST_ALERTS_RESPONSE__INIT;
	uint8_t cursor[8];
	o.n_alerts = x.n;
	o.alerts = x.items;
	if (x.more && x.n) {
		svc_put_be64(cursor, (uint64_t)x.last_id);
		o.next_cursor.data = cursor;
		o.next_cursor.len = 8;
	}
	*resp = errq_bb_from_msg(&o.base);
out:
	errq_arena_release(&b.a);
	return st;
}

struct one_alert {
	struct build *b;
	Errq__V1__Alert *a;
};

static int one_alert_cb(void *arg, const struct store_alert *r)
{
	struct one_alert *x = arg;
	x->a = alert_msg(x->b, r);
	return 1;
}

static grpc_status_code get_alert(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct alerts_svc *svc = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	struct store *s;
	Errq__V1__GetAlertRequest *in = svc_decode(&b, &errq__v1__get_alert_request__descriptor, req, details, dsz);
	if (!in || in->alert_id.len != 16) {
		if (in)
			errq_snprintf(details, dsz, "alert_id is %zu bytes, want 16", in->alert_id.len);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (!(s = svc_reader(&svc->readers, details, dsz))) {
		st = GRPC_STATUS_UNAVAILABLE;
		goto out;
	}
	struct one_alert oa = {.b = &b};
	int r = store_get_alert(s, in->alert_id.data, one_alert_cb, &oa);
	if (r < 0) {
		st = svc_query_failed(s, details, dsz);
		goto out;
	}
	if (r == 0) {
		char hex[33];
		errq_hex_encode(in->alert_id.data, 16, hex);
		errq_snprintf(details, dsz, "no alert %s (never fired, or deleted with the alert history)", hex);
		st = GRPC_STATUS_NOT_FOUND;
		goto out;
	}
	if (!oa.a) {
		st = svc_oom(details, dsz);
		goto out;
	}
	if ((st = decorate_alerts(s, &b, &oa.a, 1, true, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	*resp = errq_bb_from_msg(&oa.a->base);
out:
	errq_arena_release(&b.a);
	return st;
}

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

static grpc_status_code list_rules(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct alerts_svc *svc = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	Errq__V1__ListRulesResponse o = ERRQ__V1__LIST_RULES_RESPONSE__INIT;
	const struct alerts_rules *rules = rules_get(svc);
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
		m->type = (char *)(n->type == RULES_NOTIFIER_WEBHOOK ? "webhook" : "log");
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
	rules_put(svc, rules);
	errq_arena_release(&b.a);
	return st;
}

/* ---- ListSilences ---- */

static grpc_status_code list_silences(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details,
				      size_t dsz)
{
	struct alerts_svc *svc = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	struct store *s;
	struct silences_ctx x = {.b = &b, .now = errq_now_ns()};
	Errq__V1__ListSilencesRequest *in = svc_decode(&b, &errq__v1__list_silences_request__descriptor, req, details, dsz);
	if (!in) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (!(s = svc_reader(&svc->readers, details, dsz))) {
		st = GRPC_STATUS_UNAVAILABLE;
		goto out;
	}
	if (!(x.items = errq_arena_alloc(&b.a, ALERTS_SVC_SILENCES_LISTED * sizeof(*x.items)))) {
		st = svc_oom(details, dsz);
		goto out;
	}
	if (store_list_silences(s, in->all, x.now, ALERTS_SVC_SILENCES_LISTED, silence_row, &x)) {
		st = svc_query_failed(s, details, dsz);
		goto out;
	}
	if (x.oom) {
		st = svc_oom(details, dsz);
		goto out;
	}
	Errq__V1__ListSilencesResponse o = ERRQ__V1__LIST_SILENCES_RESPONSE__INIT;
	o.n_silences = x.n;
	o.silences = x.items;
	*resp = errq_bb_from_msg(&o.base);
out:
	errq_arena_release(&b.a);
	return st;
}

/* ---- writes: answered by the rule engine ---- */

enum write_kind { W_REPLAY, W_RELOAD, W_SILENCE_ADD, W_SILENCE_EXPIRE };

struct write_call {
	struct alerts_svc *svc;
	struct unary_call *uc;
	enum write_kind kind;
	uint64_t at_ns;                /* when the request came */
	int64_t id;                    /* expire: the silence */
	uint8_t alert_id[16];          /* replay */
	struct alerts_silence_req req; /* add */
};

static grpc_status_code status_code(enum alerts_status s)
{
	switch (s) {
	case ALERTS_OK:
		return GRPC_STATUS_OK;
	case ALERTS_INVALID:
		return GRPC_STATUS_INVALID_ARGUMENT;
	case ALERTS_NOT_FOUND:
		return GRPC_STATUS_NOT_FOUND;
	case ALERTS_PRECONDITION:
		return GRPC_STATUS_FAILED_PRECONDITION;
	case ALERTS_UNAVAILABLE:
		return GRPC_STATUS_UNAVAILABLE;
	case ALERTS_INTERNAL:
		break;
	}
	return GRPC_STATUS_INTERNAL;
}

/* The silence as stored after the write, or, when it cannot be read back, as the request
 * described it. */
static Errq__V1__Silence *silence_after(struct write_call *w, struct build *b, int64_t id)
{
	char details[ALERTS_SVC_DETAILS_MAX];
	uint64_t now = errq_now_ns();
	struct store *s = svc_reader(&w->svc->readers, details, sizeof(details));
	struct silences_ctx x = {.b = b, .now = now};
	Errq__V1__Silence *one[1] = {NULL};
	x.items = one;
	int r = s ? store_get_silence(s, id, silence_row, &x) : -1;
	if (r == 1 && x.n)
		return one[0];
	if (!x.oom)
		errq_logkv(ERRQ_LOG_WARN, "cannot read a silence back", "error",
			   !s ? details : r < 0 ? store_errmsg(s) : "not found", NULL);
	struct store_silence si = {.id = id};
	if (w->kind == W_SILENCE_ADD) {
		si.rule = w->req.rule;
		si.matchers = w->req.matchers;
		si.comment = w->req.comment;
		si.created_by = w->req.created_by;
		si.created_ns = si.starts_ns = w->at_ns;
		si.ends_ns = w->at_ns + w->req.duration_ns;
	} else {
		si.ends_ns = si.expired_ns = now;
	}
	return silence_msg(b, &si, now);
}

static void write_done(void *arg, const struct alerts_answer *ans)
{
	struct write_call *w = arg;
	grpc_status_code st = status_code(ans->status);
	grpc_byte_buffer *resp = NULL;
	char details[ALERTS_SVC_DETAILS_MAX];
	struct build b;
	build_init(&b);
	errq_snprintf(details, sizeof(details), "%s", ans->msg);
	if (st != GRPC_STATUS_OK) {
		if (!details[0])
			errq_snprintf(details, sizeof(details), "%s", errq_status_name(st));
		goto out;
	}
	switch (w->kind) {
	case W_REPLAY: {
		Errq__V1__ReplayAlertResponse o = ERRQ__V1__REPLAY_ALERT_RESPONSE__INIT;
		o.replayed = ans->count;
		resp = errq_bb_from_msg(&o.base);
		break;
	}
	case W_RELOAD: {
		Errq__V1__ReloadRulesResponse o = ERRQ__V1__RELOAD_RULES_RESPONSE__INIT;
		o.rules = ans->rules;
		o.notifiers = ans->notifiers;
		o.kept = ans->kept;
		o.changed = ans->changed;
		o.removed = ans->removed;
		resp = errq_bb_from_msg(&o.base);
		break;
	}
	case W_SILENCE_ADD:
	case W_SILENCE_EXPIRE: {
		Errq__V1__Silence *si = silence_after(w, &b, w->kind == W_SILENCE_ADD ? ans->id : w->id);
		if (si)
			resp = errq_bb_from_msg(&si->base);
		break;
	}
	}
	if (!resp) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		errq_snprintf(details, sizeof(details), "out of memory");
	}
out:
	errq_arena_release(&b.a);
	transport_unary_reply(w->uc, st, details, resp);
	free(w);
}

/* A write call to hand to the engine, or NULL after replying (no engine, no memory). */
static struct write_call *write_new(struct alerts_svc *svc, struct unary_call *uc, enum write_kind kind)
{
	if (!svc->alerts) {
		transport_unary_reply(uc, GRPC_STATUS_FAILED_PRECONDITION,
				      "alerting is not configured on this collector (no rules engine)", NULL);
		return NULL;
	}
	struct write_call *w = calloc(1, sizeof(*w));
	if (!w) {
		transport_unary_reply(uc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return NULL;
	}
	w->svc = svc;
	w->uc = uc;
	w->kind = kind;
	w->at_ns = errq_now_ns();
	return w;
}

static void replay_alert(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct alerts_svc *svc = ctx;
	Errq__V1__ReplayAlertRequest *in =
	    errq__v1__replay_alert_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	char details[128];
	if (!in || in->alert_id.len != 16) {
		errq_snprintf(details, sizeof(details),
			      in ? "alert_id is %zu bytes, want 16" : "cannot decode ReplayAlertRequest",
			      in ? in->alert_id.len : 0);
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, details, NULL);
		goto out;
	}
	struct write_call *w = write_new(svc, uc, W_REPLAY);
	if (!w)
		goto out;
	memcpy(w->alert_id, in->alert_id.data, 16);
	alerts_replay(svc->alerts, w->alert_id, write_done, w); /* w is gone after this */
out:
	if (in)
		errq__v1__replay_alert_request__free_unpacked(in, NULL);
}

static void reload_rules(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct alerts_svc *svc = ctx;
	struct write_call *w = write_new(svc, uc, W_RELOAD);
	if (w)
		alerts_reload(svc->alerts, write_done, w);
}

/* "unknown rule 'x' (rules: a, b, c)" into details. */
static void unknown_rule(const struct alerts_rules *rules, const char *name, char *details, size_t dsz)
{
	size_t o = (size_t)errq_snprintf(details, dsz, "unknown rule '%.64s'", name);
	const struct ruleset *rs = rules ? rules->rs : NULL;
	if (!rs || !rs->n_rules) {
		if (o < dsz)
			errq_snprintf(details + o, dsz - o, " (no rules are loaded)");
		return;
	}
	for (size_t i = 0; i < rs->n_rules && o < dsz; i++)
		o += (size_t)errq_snprintf(details + o, dsz - o, "%s%s", i ? ", " : " (rules: ", rs->rules[i].name);
	if (o + 1 < dsz)
		errq_snprintf(details + o, dsz - o, ")");
}

static void add_silence(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct alerts_svc *svc = ctx;
	const struct alerts_rules *rules = NULL;
	char details[ALERTS_SVC_DETAILS_MAX], err[512];
	struct write_call *w = NULL;
	Errq__V1__AddSilenceRequest *in =
	    errq__v1__add_silence_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	const uint64_t max_ms = ALERTS_SVC_SILENCE_MAX_NS / 1000000, min_ms = ALERTS_SVC_SILENCE_MIN_NS / 1000000;
	if (!in) {
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, "cannot decode AddSilenceRequest", NULL);
		return;
	}
	if (!svc->alerts) {
		transport_unary_reply(uc, GRPC_STATUS_FAILED_PRECONDITION,
				      "alerting is not configured on this collector (no rules engine)", NULL);
		goto out;
	}
	details[0] = '\0';
	if (!in->rule[0])
		errq_snprintf(details, sizeof(details), "rule is empty");
	else if (in->duration_ms < min_ms || in->duration_ms > max_ms)
		errq_snprintf(details, sizeof(details), "duration %llums is out of range: 1s to 90d",
			      (unsigned long long)in->duration_ms);
	else if (strlen(in->matchers) >= sizeof(w->req.matchers))
		errq_snprintf(details, sizeof(details), "matchers are longer than %zu bytes",
			      sizeof(w->req.matchers) - 1);
	else if (strlen(in->comment) >= sizeof(w->req.comment))
		errq_snprintf(details, sizeof(details), "comment is longer than %zu bytes", sizeof(w->req.comment) - 1);
	else if (strlen(in->created_by) >= sizeof(w->req.created_by))
		errq_snprintf(details, sizeof(details), "created_by is longer than %zu bytes",
			      sizeof(w->req.created_by) - 1);
	if (details[0]) {
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, details, NULL);
		goto out;
	}
	rules = rules_get(svc);
	const struct rule *rule = rule_named(rules, in->rule);
	if (!rule) {
		unknown_rule(rules, in->rule, details, sizeof(details));
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, details, NULL);
		goto out;
	}
	if (alerts_matchers_check(rule, in->matchers, err, sizeof(err))) {
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, err, NULL);
		goto out;
	}
	if (!(w = write_new(svc, uc, W_SILENCE_ADD)))
		goto out;
	errq_snprintf(w->req.rule, sizeof(w->req.rule), "%s", rule->name);
	errq_snprintf(w->req.matchers, sizeof(w->req.matchers), "%s", in->matchers);
	errq_snprintf(w->req.comment, sizeof(w->req.comment), "%s", in->comment);
	errq_snprintf(w->req.created_by, sizeof(w->req.created_by), "%s", in->created_by);
	w->req.duration_ns = in->duration_ms * 1000000;
	rules_put(svc, rules);
	rules = NULL;
	alerts_silence_add(svc->alerts, &w->req, write_done, w); /* w is gone after this */
out:
	rules_put(svc, rules);
	errq__v1__add_silence_request__free_unpacked(in, NULL);
}

static void expire_silence(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct alerts_svc *svc = ctx;
	Errq__V1__ExpireSilenceRequest *in =
	    errq__v1__expire_silence_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	if (!in || !in->id || in->id > INT64_MAX) {
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT,
				      in ? "id must be a silence id (1 or more)" : "cannot decode ExpireSilenceRequest",
				      NULL);
		goto out;
	}
	struct write_call *w = write_new(svc, uc, W_SILENCE_EXPIRE);
	if (!w)
		goto out;
	w->id = (int64_t)in->id;
	alerts_silence_expire(svc->alerts, w->id, write_done, w);
out:
	if (in)
		errq__v1__expire_silence_request__free_unpacked(in, NULL);
}

/* ---- storage: none ---- */

#define NO_STORAGE "this collector runs with 'storage: none' and keeps no circuits, alerts or silences"

static grpc_status_code no_storage(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	errq_snprintf(details, dsz, "%s", NO_STORAGE);
	return GRPC_STATUS_FAILED_PRECONDITION;
}

static void no_storage_async(void *ctx, struct unary_call *uc, grpc_slice req)
{
	transport_unary_reply(uc, GRPC_STATUS_FAILED_PRECONDITION, NO_STORAGE, NULL);
}

struct alerts_svc *alerts_svc_new(const struct alerts_svc_opts *o)
{
	struct alerts_svc *svc = calloc(1, sizeof(*svc));
	if (!svc)
		return NULL;
	svc->alerts = o->alerts;
	svc->db_path = o->db_path ? strdup(o->db_path) : NULL;
	if ((o->db_path && !svc->db_path) || svc_readers_init(&svc->readers, svc->db_path)) {
		free(svc->db_path);
		free(svc);
		return NULL;
	}
	return svc;
}

int alerts_svc_register(struct alerts_svc *svc, struct transport *t)
{
	bool none = svc->db_path == NULL;
	if (transport_add_unary(t, "/errq.v1.Alerts/ListCircuits", none ? no_storage : list_circuits, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/ExplainCircuit", none ? no_storage : explain_circuit, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/ListAlerts", none ? no_storage : list_alerts, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/GetAlert", none ? no_storage : get_alert, svc) ||
	    transport_add_unary_async(t, "/errq.v1.Alerts/ReplayAlert", none ? no_storage_async : replay_alert, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/ListRules", list_rules, svc) ||
	    transport_add_unary_async(t, "/errq.v1.Alerts/ReloadRules", reload_rules, svc) ||
	    transport_add_unary_async(t, "/errq.v1.Alerts/AddSilence", none ? no_storage_async : add_silence, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/ListSilences", none ? no_storage : list_silences, svc) ||
	    transport_add_unary_async(t, "/errq.v1.Alerts/ExpireSilence", none ? no_storage_async : expire_silence,
				      svc))
		return -1;
	return 0;
}

void alerts_svc_free(struct alerts_svc *svc)
{
	if (!svc)
		return;
	/* the queue threads (and the writer) have exited: their readers were closed by the key's
	 * destructor */
	svc_readers_destroy(&svc->readers);
	free(svc->db_path);
	free(svc);
}
