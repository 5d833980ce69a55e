/* alerts_refresh.c: after a restart, the alerts still firing whose `firing` an Alertmanager
 * notifier received go back to the notifier to be re-posted (notify_refresh): Alertmanager
 * holds an alert only until its endsAt, a few resend periods, so without this an alert open
 * across a restart would resolve there by itself.  Writer thread, at load. */
#include "alerts_int.h"

#include "errq_banned.h"

/* What one notifier's rows of an alert say about resuming its re-posts. */
struct last_row {
	const char *notifier;
	int64_t fired_id;   /* its latest delivered firing (the first or a reminder), 0: none */
	bool pending;       /* a row still to send: the backlog sends it, and it is re-posted after */
	bool resolved;      /* its latest row is a resolved notice: the alert ended there */
};

static int last_cb(void *ctx, const struct store_delivery *d)
{
	struct last_row *l = ctx;
	if (strcmp(d->notifier, l->notifier) != 0)
		return 0;
	/* rows come by id: the last one seen is the latest */
	bool firing = strcmp(d->kind, "firing") == 0;
	l->resolved = !firing;
	l->pending |= d->status == STORE_DELIVERY_PENDING;
	if (firing && d->status == STORE_DELIVERY_DELIVERED)
		l->fired_id = d->id;
	return 0;
}

struct resend {
	struct alerts *a;
	const char *hex;
	int rc;
};

static int resend_cb(void *ctx, const struct store_delivery *d)
{
	struct resend *r = ctx;
	struct notify_delivery *nd = d->body ? notify_delivery_new(d->body, d->body_len) : NULL;
	if (!nd)
		return r->rc = -1;
	errq_snprintf(nd->dest, sizeof(nd->dest), "%s", d->notifier);
	errq_snprintf(nd->order_key, sizeof(nd->order_key), "%s:%s", r->hex, d->notifier);
	errq_snprintf(nd->idempotency_key, sizeof(nd->idempotency_key), "%s", d->idempotency_key);
	if (notify_refresh(r->a->notifier, nd)) {
		free(nd);
		return r->rc = -1;
	}
	return 0;
}

void alerts__resume_refresh(struct alerts *a, struct store *s)
{
	const struct ruleset *rs = alerts__rs(a);
	size_t n = 0;
	for (struct centry *e = a->active; e; e = e->anext) {
		if (!e->has_alert || e->rule_idx >= rs->n_rules)
			continue;
		const struct rule *r = &rs->rules[e->rule_idx];
		for (size_t i = 0; i < r->n_notify; i++) {
			const struct rules_notifier *nt = &rs->notifiers[r->notify[i]];
			if (nt->type != RULES_NOTIFIER_ALERTMANAGER)
				continue;
			/* from its latest delivered firing, which Alertmanager holds until its endsAt:
			 * also when reminders after it were held back (a silence, an inhibition) or
			 * went dead — they were never posted, and the alert still fires.  Not when a
			 * row is pending (the backlog sends it, and it is re-posted after) or the
			 * latest row is a resolved notice (it ended there) */
			struct last_row l = {.notifier = nt->name};
			if (store_list_deliveries(s, e->alert_id, last_cb, &l) || !l.fired_id || l.pending || l.resolved)
				continue;
			char hex[ERRQ_ID_HEX_BUFSZ];
			errq_hex_encode(e->alert_id, 16, hex);
			struct resend rsd = {.a = a, .hex = hex};
			if (store_get_delivery(s, l.fired_id, resend_cb, &rsd) == 1 && !rsd.rc)
				n++;
		}
	}
	if (n) {
		char c[24];
		errq_snprintf(c, sizeof(c), "%zu", n);
		errq_logkv(ERRQ_LOG_INFO, "alertmanager: re-posting the alerts still firing", "alerts", c, NULL);
	}
}
