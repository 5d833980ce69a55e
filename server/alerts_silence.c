/* alerts_silence.c: silences: matching, the list in force, adding and expiring one, and
 * delivering the firing notices a silence held back when it ends (writer thread only). */
#include "alerts_int.h"

#include "errq_banned.h"

/* ---- silences ---- */

bool alerts_matchers_match(const char *matchers, const char *key)
{
	const char *p = matchers;
	char field[RULES_NAME_MAX + RULES_DETAIL_KEY_MAX + 16], glob[RULES_GLOB_MAX + 1];
	int r;
	while ((r = rules_key_next(&p, field, sizeof(field), glob, sizeof(glob))) == 1) {
		const char *q = key;
		char kf[sizeof(field)], kv[RULES_KEY_MAX];
		bool found = false, ok = false;
		int kr;
		while ((kr = rules_key_next(&q, kf, sizeof(kf), kv, sizeof(kv))) == 1)
			if (!strcmp(kf, field)) {
				found = true;
				ok = fnmatch(glob, kv, 0) == 0;
				break;
			}
		if (!found || !ok)
			return false;
	}
	return r == 0;
}

int alerts_matchers_check(const struct rule *rule, const char *matchers, char *err, size_t errsz)
{
	const char *p = matchers;
	char field[RULES_NAME_MAX + RULES_DETAIL_KEY_MAX + 16], glob[RULES_GLOB_MAX + 2];
	int r;
	size_t n = 0;
	while ((r = rules_key_next(&p, field, sizeof(field), glob, sizeof(glob))) == 1) {
		bool known = false;
		char names[RULES_MAX_GROUP_BY * (RULES_DETAIL_KEY_MAX + 16)] = "";
		size_t len = 0;
		for (size_t i = 0; i < rule->n_group_by; i++) {
			char fb[RULES_DETAIL_KEY_MAX + 16];
			const char *fn = rules_field_name(&rule->group_by[i], fb, sizeof(fb));
			known |= !strcmp(fn, field);
			len += (size_t)errq_snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "", fn);
			if (len >= sizeof(names))
				len = sizeof(names) - 1;
		}
		if (!known) {
			errq_snprintf(err, errsz, "rule '%s' has no key field '%s' (its group_by: %s)", rule->name, field,
				      rule->n_group_by ? names : "none");
			return -1;
		}
		if (strlen(glob) > RULES_GLOB_MAX) {
			errq_snprintf(err, errsz, "the value of '%s' is longer than %d bytes", field, RULES_GLOB_MAX);
			return -1;
		}
		if (++n > RULES_MAX_GROUP_BY) {
			errq_snprintf(err, errsz, "more than %d matchers", RULES_MAX_GROUP_BY);
			return -1;
		}
	}
	if (r < 0) {
		errq_snprintf(err, errsz, "'%s' is not field=value[,field=value]", matchers);
		return -1;
	}
	return 0;
}

bool alerts__silenced(struct alerts *a, const char *rule, const char *key, uint64_t now)
{
	for (size_t i = 0; i < a->n_sil; i++) {
		struct silence *si = &a->sil[i];
		if (si->starts <= now && now < si->ends && !strcmp(si->rule, rule) && alerts_matchers_match(si->matchers, key))
			return true;
	}
	return false;
}

int alerts__add_silence_mem(struct alerts *a, int64_t id, const char *rule, const char *matchers, uint64_t starts,
			   uint64_t ends)
{
	if (a->n_sil >= MAX_SILENCES)
		return -1;
	struct silence *n = realloc(a->sil, (a->n_sil + 1) * sizeof(*n));
	if (!n)
		return -1;
	a->sil = n;
	struct silence *si = &a->sil[a->n_sil];
	if (!(si->matchers = strdup(matchers ? matchers : "")))
		return -1;
	si->id = id;
	errq_snprintf(si->rule, sizeof(si->rule), "%s", rule);
	si->starts = starts;
	si->ends = ends;
	a->n_sil++;
	return 0;
}

void alerts__drop_silence_mem(struct alerts *a, size_t i)
{
	free(a->sil[i].matchers);
	a->sil[i] = a->sil[--a->n_sil];
}

/* ---- silences ending: deliver the firing notices they held back ---- */

/* the silence that ended, for unsilence() */
struct unsilence_arg {
	char rule[RULES_NAME_MAX];
	char *matchers;
};

struct resend {
	struct alerts *a;
	int rc;
};

/* Makes row d pending again with no attempts, and queues it for the notifier. */
static int resend_cb(void *ctx, const struct store_delivery *d)
{
	struct resend *r = ctx;
	struct alerts *a = r->a;
	if (!d->body) {
		r->rc = -1;
		return 1;
	}
	if (a->backlog && d->id >= a->backlog_from)
		return 0; /* the backlog sweep will send it (at load it sweeps from 0): once only */
	struct notify_delivery *nd = notify_delivery_new(d->body, d->body_len);
	struct sub *sb = nd ? malloc(sizeof(*sb)) : NULL;
	if (!sb) {
		free(nd);
		r->rc = alerts__oom();
		return 1;
	}
	sb->resend = true;
	char hex[ERRQ_ID_HEX_BUFSZ];
	errq_hex_encode(d->alert_id, 16, hex);
	nd->id = (uint64_t)d->id;
	errq_snprintf(nd->dest, sizeof(nd->dest), "%s", d->notifier);
	errq_snprintf(nd->order_key, sizeof(nd->order_key), "%s:%s", hex, d->notifier);
	errq_snprintf(nd->idempotency_key, sizeof(nd->idempotency_key), "%s", d->idempotency_key);
	sb->d = nd;
	sb->next = NULL;
	*a->subs_tail = sb;
	a->subs_tail = &sb->next;
	return 0;
}

int alerts__resend(struct alerts *a, struct store *s, int64_t id, uint64_t now)
{
	struct resend r = {.a = a};
	if (store_delivery_update(s, id, STORE_DELIVERY_PENDING, 0, 0, 0, "", now) < 0)
		return -1;
	if (a->fleet && alerts__fleet_lease(a, s, id, now + FLEET_LEASE_NS)) /* this collector sends it */
		return -1;
	if (store_get_delivery(s, id, resend_cb, &r) < 0)
		return -1;
	return r.rc;
}

static int unsilence(struct alerts *a, struct store *s, void *arg)
{
	const struct unsilence_arg *u = arg;
	uint64_t now = a->clock();
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry *e = a->buckets[i]; e; e = e->hnext) {
			const struct rule *r = alerts__entry_rule(a, e);
			if (strcmp(r->name, u->rule) || !alerts_matchers_match(u->matchers, e->key))
				continue;
			if (alerts__release_if_free(a, s, e, now)) /* unless another silence or an inhibition holds it */
				return -1;
		}
	return 0;
}

void alerts__silence_ended(struct alerts *a, struct store *s, size_t i)
{
	struct unsilence_arg u;
	errq_snprintf(u.rule, sizeof(u.rule), "%s", a->sil[i].rule);
	u.matchers = a->sil[i].matchers;
	a->sil[i].matchers = NULL;
	alerts__drop_silence_mem(a, i);
	if (alerts__in_txn(a, s, unsilence, &u))
		LOG_WARN("alerts: could not deliver what an ended silence held back; it goes out after a restart");
	free(u.matchers);
}

struct silence_arg {
	const struct alerts_silence_req *req;
	uint64_t now;
	int64_t id;
};

static int silence_add_txn(struct alerts *a, struct store *s, void *arg)
{
	(void)a;
	struct silence_arg *sa = arg;
	struct store_silence si = {
	    .rule = sa->req->rule,
	    .matchers = sa->req->matchers,
	    .comment = sa->req->comment,
	    .created_by = sa->req->created_by,
	    .created_ns = sa->now,
	    .starts_ns = sa->now,
	    .ends_ns = sa->now + sa->req->duration_ns,
	};
	return store_silence_add(s, &si, &sa->id);
}

void alerts__do_silence_add(struct alerts *a, struct store *s, const struct alerts_silence_req *req,
			   struct alerts_answer *ans)
{
	const struct rule *r = rules_find(alerts__rs(a), req->rule);
	char err[512];
	if (!r)
		return alerts__fail(ans, ALERTS_NOT_FOUND, "no rule '%s'", req->rule); /* removed by a reload since */
	if (alerts_matchers_check(r, req->matchers, err, sizeof(err)))
		return alerts__fail(ans, ALERTS_INVALID, "%s", err);
	if (req->duration_ns < SILENCE_MIN_NS || req->duration_ns > SILENCE_MAX_NS)
		return alerts__fail(ans, ALERTS_INVALID, "%s", "a silence lasts from 1s to 90d");
	if (a->n_sil >= MAX_SILENCES)
		return alerts__fail(ans, ALERTS_PRECONDITION, "%s", "too many silences in force (expire some first)");
	struct silence_arg sa = {.req = req, .now = a->clock()};
	if (alerts__in_txn(a, s, silence_add_txn, &sa))
		return alerts__fail(ans, alerts__store_status(s), "%s", store_errmsg(s));
	if (alerts__add_silence_mem(a, sa.id, req->rule, req->matchers, sa.now, sa.now + req->duration_ns))
		LOG_ERROR("alerts: out of memory keeping a silence; it takes effect after a restart");
	ans->id = sa.id;
	char id[24];
	errq_snprintf(id, sizeof(id), "%lld", (long long)sa.id);
	errq_logkv(ERRQ_LOG_INFO, "silence added", "id", id, "rule", req->rule, "matchers", req->matchers, NULL);
}

struct expire_arg {
	int64_t id;
	int r;
};

static int silence_expire_txn(struct alerts *a, struct store *s, void *arg)
{
	struct expire_arg *ea = arg;
	ea->r = store_silence_expire(s, ea->id, a->clock());
	return ea->r < 0 ? -1 : 0;
}

void alerts__do_silence_expire(struct alerts *a, struct store *s, int64_t id, struct alerts_answer *ans)
{
	struct expire_arg ea = {.id = id};
	char ids[24];
	errq_snprintf(ids, sizeof(ids), "%lld", (long long)id);
	if (alerts__in_txn(a, s, silence_expire_txn, &ea))
		return alerts__fail(ans, alerts__store_status(s), "%s", store_errmsg(s));
	if (ea.r == 0)
		return alerts__fail(ans, ALERTS_NOT_FOUND, "no silence %s in force", ids);
	ans->id = id;
	for (size_t i = 0; i < a->n_sil; i++)
		if (a->sil[i].id == id) {
			alerts__silence_ended(a, s, i);
			break;
		}
	errq_logkv(ERRQ_LOG_INFO, "silence expired", "id", ids, NULL);
}
