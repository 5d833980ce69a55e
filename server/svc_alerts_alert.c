/* svc_alerts_alert.c: ListAlerts and GetAlert with their deliveries and silences, and
 * ListSilences. */
#include "svc_alerts_int.h"

#include "errq_banned.h"

/* ---- alerts, deliveries, silences ---- */

static bool silence_active(const struct store_silence *si, uint64_t now)
{
	return si->starts_ns <= now && now < si->ends_ns && (!si->expired_ns || si->expired_ns > now);
}

Errq__V1__Silence *svc_alerts__silence_msg(struct build *b, const struct store_silence *si, uint64_t now)
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

int svc_alerts__silence_row(void *arg, const struct store_silence *si)
{
	struct silences_ctx *x = arg;
	if (x->n == ALERTS_SVC_SILENCES_LISTED)
		return 1;
	Errq__V1__Silence *o = svc_alerts__silence_msg(x->b, si, x->now);
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
	if (store_list_silences(s, STORE_SILENCES_IN_FORCE, now, ALERTS_SVC_SILENCES_LISTED, svc_alerts__silence_row, x) ||
	    x->oom)
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
	o->alert_id = svc_alerts__bid(b, r->alert_id);
	o->rule = bstr(b, r->rule);
	o->key = bstr(b, r->key);
	o->status = bstr(b, r->status);
	o->severity = bstr(b, r->severity);
	o->opened_unix_nano = r->opened_ns;
	o->resolved_unix_nano = r->resolved_ns;
	o->failures_in_window = r->failures_in_window;
	o->window_seconds = r->window_seconds;
	o->state = svc_alerts__state_msg(r->state);
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

grpc_status_code svc_alerts__list_alerts(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct alerts_svc *svc = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	struct alerts_ctx x = {.b = &b};
	struct svc_page pg;
	Errq__V1__ListAlertsRequest *in = svc_decode(&b, &errq__v1__list_alerts_request__descriptor, req, details, dsz);
	if (!in) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if ((st = svc_check_cursor(in->cursor, 8, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	if (!valid_alert_status(in->status)) {
		errq_snprintf(details, dsz, "unknown status '%.64s': firing or resolved", in->status);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if ((st = svc_page_open(&pg, &svc->readers, &b, in->limit, sizeof(*x.items), details, dsz)) != GRPC_STATUS_OK)
		goto out;
	x.limit = pg.limit;
	x.items = pg.items;
	struct store_alert_filter f = {
	    .status = in->status[0] ? in->status : NULL,
	    .rule = in->rule[0] ? in->rule : NULL,
	    .since_ns = in->since_unix_nano,
	    .before_id = in->cursor.len == 8 ? (int64_t)svc_get_be64(in->cursor.data) : 0,
	    .limit = x.limit + 1,
	};
	int listed = store_list_alerts(pg.s, &f, alert_row, &x);
	if ((st = svc_listed(pg.s, listed, x.oom, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	if ((st = decorate_alerts(pg.s, &b, x.items, x.n, false, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	Errq__V1__ListAlertsResponse o = ERRQ__V1__LIST_ALERTS_RESPONSE__INIT;
	uint8_t cursor[8];
	o.n_alerts = x.n;
	o.alerts = x.items;
	svc_next_cursor(&o.next_cursor, cursor, sizeof(cursor), x.more, x.n, (uint64_t)x.last_id, 0);
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

grpc_status_code svc_alerts__get_alert(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
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

/* ---- ListSilences ---- */

grpc_status_code svc_alerts__list_silences(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details,
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
	int listed = store_list_silences(s, in->all ? STORE_SILENCES_ALL : STORE_SILENCES_IN_FORCE, x.now,
					 ALERTS_SVC_SILENCES_LISTED, svc_alerts__silence_row, &x);
	if ((st = svc_listed(s, listed, x.oom, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	Errq__V1__ListSilencesResponse o = ERRQ__V1__LIST_SILENCES_RESPONSE__INIT;
	o.n_silences = x.n;
	o.silences = x.items;
	*resp = errq_bb_from_msg(&o.base);
out:
	errq_arena_release(&b.a);
	return st;
}
