/* alerts_hold.c: what silences and inhibitions hold back, and the resolved guarantee
 * (docs/alerts.md, "What is delivered"; writer thread only).
 *
 * A silence or an inhibition holds back an alert's new notices of kind `firing` (the first
 * one and reminders): they are written with status `silenced`.  It never holds back the end
 * of an incident a notifier was told about: a `resolved` notice goes to exactly the
 * notifiers that were sent one of the alert's `firing` notices (a row not `silenced`), read
 * from the deliveries table, so rule changes, notifiers taken off a rule, reloads and
 * restarts in between change nothing.  When nothing holds an alert any more and it still
 * fires, each notifier that was never sent one of its firing notices gets the latest one
 * held back; an alert that resolved while held sends nothing (its resolved is recorded as
 * `silenced` for the notifiers that only had held notices). */
#include "alerts_int.h"

#include "errq_banned.h"

bool alerts__inhibited(struct alerts *a, const char *rule, const char *key)
{
	const struct ruleset *rs = alerts__rs(a);
	const struct rule *t = rules_find(rs, rule);
	if (!t || !t->inhibited)
		return false;
	size_t ti = (size_t)(t - rs->rules);
	for (struct centry *e = a->active; e; e = e->anext) {
		if (e->c->state == CIRCUIT_CLOSED || !e->has_alert || e->rule_idx >= rs->n_rules)
			continue;
		const struct rule *src = &rs->rules[e->rule_idx];
		for (size_t j = 0; j < src->n_inhibits; j++)
			if (src->inhibits[j] == ti && rules_inhibit_applies(src, e->key, key))
				return true;
	}
	return false;
}

bool alerts__held(struct alerts *a, const char *rule, const char *key, uint64_t now)
{
	return alerts__silenced(a, rule, key, now) || alerts__inhibited(a, rule, key);
}

static int fired_cb(void *ctx, const struct store_delivery *d)
{
	struct alerts_fired *f = ctx;
	if (strcmp(d->kind, "firing"))
		return 0;
	size_t i = 0;
	while (i < f->n && strcmp(f->name[i], d->notifier))
		i++;
	if (i == f->n) {
		if (f->n == ALERTS_FIRED_MAX) {
			f->truncated = true;
			return 0;
		}
		memset(&f->sent[i], 0, sizeof(f->sent[i]));
		f->held_id[i] = 0;
		f->held_seq[i] = 0;
		errq_snprintf(f->name[i], sizeof(f->name[i]), "%s", d->notifier);
		f->n++;
	}
	if (d->status != STORE_DELIVERY_SILENCED) {
		f->sent[i] = true;
	} else if (!f->held_id[i] || d->seq > f->held_seq[i]) {
		f->held_id[i] = d->id;
		f->held_seq[i] = d->seq;
	}
	return 0;
}

int alerts__fired(struct store *s, const uint8_t alert_id[16], struct alerts_fired *f)
{
	memset(f, 0, sizeof(*f));
	if (store_list_deliveries(s, alert_id, fired_cb, f))
		return -1;
	if (f->truncated)
		LOG_WARN("alerts: an alert had firing notices for more than ALERTS_FIRED_MAX notifiers; the rest get no "
			 "resolved");
	return 0;
}

int alerts__release_entry(struct alerts *a, struct store *s, struct centry *e, uint64_t now)
{
	struct alerts_fired f;
	if (alerts__fired(s, e->alert_id, &f))
		return -1;
	for (size_t i = 0; i < f.n; i++)
		if (!f.sent[i] && f.held_id[i] && alerts__resend(a, s, f.held_id[i], now))
			return -1;
	return 0;
}

int alerts__release_if_free(struct alerts *a, struct store *s, struct centry *e, uint64_t now)
{
	if (!e->has_alert || e->c->state == CIRCUIT_CLOSED || e->doomed ||
	    alerts__held(a, alerts__entry_rule(a, e)->name, e->key, now))
		return 0;
	return alerts__release_entry(a, s, e, now);
}

int alerts__release_inhibited_by(struct alerts *a, struct store *s, const struct rule *src, uint64_t now)
{
	const struct ruleset *rs = alerts__rs(a);
	if (!src->n_inhibits || src < rs->rules || src >= rs->rules + rs->n_rules)
		return 0; /* not a rule in force (indexes would not match); the pass after a reload releases */
	for (struct centry *e = a->active; e; e = e->anext) {
		bool target = false;
		for (size_t j = 0; j < src->n_inhibits && !target; j++)
			target = e->rule_idx == src->inhibits[j];
		if (target && alerts__release_if_free(a, s, e, now))
			return -1;
	}
	return 0;
}

int alerts__release_all(struct alerts *a, struct store *s, void *arg)
{
	(void)arg;
	uint64_t now = a->clock();
	for (struct centry *e = a->active; e; e = e->anext)
		if (alerts__release_if_free(a, s, e, now))
			return -1;
	return 0;
}
