/* alerts_log.c: the rule engine's log lines that need more than one call: delivery failures
 * rate-limited per notifier (errq_condlog: the first failure, a summary every
 * ALERTS_DELIVERY_SUMMARY_MS while it lasts, the recovery), and a reload's line (who asked,
 * rules added, changed, removed).  Writer thread only. */
#include "alerts_int.h"

#include "errq_banned.h"

struct alerts_dlog {
	char name[NOTIFY_NAME_MAX];
	char what[NOTIFY_NAME_MAX + 64]; /* condlog keeps a pointer to it */
	struct errq_condlog c;
	bool used;
};

static struct alerts_dlog *dlog_find(struct alerts *a, const char *name)
{
	if (!a->dlog && !(a->dlog = calloc(ALERTS_DLOG_MAX, sizeof(*a->dlog))))
		return NULL;
	struct alerts_dlog *spare = NULL;
	for (size_t i = 0; i < ALERTS_DLOG_MAX; i++) {
		struct alerts_dlog *d = &a->dlog[i];
		if (d->used && !strcmp(d->name, name))
			return d;
		if (!d->used || !errq_condlog_failing(&d->c))
			spare = spare && !spare->used ? spare : d; /* a free slot, else a quiet one */
	}
	if (!spare)
		return NULL; /* every slot is a failing notifier: that one goes unlogged (bounded) */
	errq_snprintf(spare->name, sizeof(spare->name), "%s", name);
	errq_snprintf(spare->what, sizeof(spare->what), "alert deliveries to notifier '%s' failing", name);
	errq_condlog_init(&spare->c, spare->what, ERRQ_LOG_WARN);
	spare->c.summary_ms = ALERTS_DELIVERY_SUMMARY_MS;
	spare->used = true;
	return spare;
}

void alerts__log_delivery(struct alerts *a, const struct notify_report *r)
{
	if (r->result == NOTIFY_DELIVERED) {
		for (size_t i = 0; a->dlog && i < ALERTS_DLOG_MAX; i++)
			if (a->dlog[i].used && !strcmp(a->dlog[i].name, r->dest))
				errq_condlog_ok(&a->dlog[i].c);
		return;
	}
	struct alerts_dlog *d = dlog_find(a, r->dest);
	if (!d)
		return;
	errq_condlog_fail(&d->c, r->error[0] ? r->error : "failed"); /* "HTTP 503", curl's reason */
}

bool alerts__log_poll(struct alerts *a)
{
	bool settling = false;
	for (size_t i = 0; a->dlog && i < ALERTS_DLOG_MAX; i++) {
		struct alerts_dlog *d = &a->dlog[i];
		if (!d->used)
			continue;
		errq_condlog_poll(&d->c);
		settling |= errq_condlog_failing(&d->c) && d->c.ok_since;
	}
	return settling;
}

void alerts__log_free(struct alerts *a)
{
	free(a->dlog);
	a->dlog = NULL;
}

/* Appends name to a comma list, or counts it past the room ("a, b and 3 more"). */
struct names {
	char s[ALERTS_RELOAD_NAMES_MAX];
	size_t len, n, more;
};

static void names_add(struct names *l, const char *name)
{
	l->n++;
	size_t need = strlen(name) + 2;
	if (l->more || l->len + need + 16 >= sizeof(l->s)) {
		l->more++;
		return;
	}
	l->len += (size_t)errq_snprintf(l->s + l->len, sizeof(l->s) - l->len, "%s%s", l->len ? ", " : "", name);
}

static const char *names_str(struct names *l)
{
	if (l->more)
		errq_snprintf(l->s + l->len, sizeof(l->s) - l->len, " and %zu more", l->more);
	return l->n ? l->s : "(none)";
}

/* A kept rule (same definition) whose other keys changed: circuits kept, new settings.  The
 * configs are compared whole (rules are zero-allocated, so padding compares equal). */
static bool rule_updated(const struct ruleset *os, const struct rule *o, const struct ruleset *ns, const struct rule *n)
{
	if (memcmp(&o->circuit, &n->circuit, sizeof(o->circuit)) || o->severity != n->severity ||
	    o->max_circuits != n->max_circuits || o->n_notify != n->n_notify || o->n_inhibits != n->n_inhibits ||
	    o->n_inhibit_equal != n->n_inhibit_equal)
		return true;
	for (size_t i = 0; i < o->n_notify; i++)
		if (strcmp(os->notifiers[o->notify[i]].name, ns->notifiers[n->notify[i]].name))
			return true;
	for (size_t i = 0; i < o->n_inhibits; i++)
		if (strcmp(os->rules[o->inhibits[i]].name, ns->rules[n->inhibits[i]].name))
			return true;
	char a[RULES_DETAIL_KEY_MAX + 16], b[RULES_DETAIL_KEY_MAX + 16];
	for (size_t i = 0; i < o->n_inhibit_equal; i++)
		if (strcmp(rules_field_name(&o->inhibit_equal[i], a, sizeof(a)),
			   rules_field_name(&n->inhibit_equal[i], b, sizeof(b))))
			return true;
	return false;
}

void alerts__log_reload(const char *who, const char *path, const struct ruleset *old, const struct ruleset *next,
			const enum circuit_retire *fate)
{
	struct names *l = calloc(4, sizeof(*l)); /* added, changed, removed, updated */
	if (!l) {
		errq_logkv(ERRQ_LOG_INFO, "rules reloaded", "by", who, "config", path, NULL);
		return;
	}
	for (size_t i = 0; i < next->n_rules; i++)
		if (!rules_find(old, next->rules[i].name))
			names_add(&l[0], next->rules[i].name);
	for (size_t i = 0; i < old->n_rules; i++) {
		const struct rule *o = &old->rules[i], *n = rules_find(next, o->name);
		if (fate[i] != CIRCUIT_RETIRE_NONE)
			names_add(&l[fate[i] == CIRCUIT_RETIRE_CHANGED ? 1 : 2], o->name);
		else if (n && rule_updated(old, o, next, n))
			names_add(&l[3], o->name);
	}
	char nr[24], nn[24];
	errq_snprintf(nr, sizeof(nr), "%zu", next->n_rules);
	errq_snprintf(nn, sizeof(nn), "%zu", next->n_notifiers);
	errq_logkv(ERRQ_LOG_INFO, "rules reloaded", "by", who, "config", path, "rules", nr, "notifiers", nn, "added",
		   names_str(&l[0]), "changed", names_str(&l[1]), "removed", names_str(&l[2]), "settings_changed", names_str(&l[3]), NULL);
	free(l);
}
