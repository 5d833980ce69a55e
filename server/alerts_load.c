/* alerts_load.c: loading the circuits, alerts and silences at start (first writer job). */
#include "alerts_int.h"

#include "errq_banned.h"

/* ---- loading at start ---- */

struct saved_row {
	int64_t id;
	char *rule, *key;
	uint64_t def_hash;
	int state;
	uint64_t failures;
	bool has_alert;
	uint8_t alert_id[16];
	void *saved;
	size_t saved_len;
};

struct rows {
	struct saved_row *v;
	size_t n, cap;
	int rc;
};

static int rows_cb(void *ctx, const struct store_circuit *c)
{
	struct rows *r = ctx;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct saved_row *v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			r->rc = -1;
			return 1;
		}
		r->v = v;
		r->cap = cap;
	}
	struct saved_row *w = &r->v[r->n];
	memset(w, 0, sizeof(*w));
	w->id = c->id;
	w->rule = strdup(c->rule);
	w->key = strdup(c->key);
	w->saved = malloc(c->saved_len ? c->saved_len : 1);
	if (!w->rule || !w->key || !w->saved) {
		free(w->rule);
		free(w->key);
		free(w->saved);
		r->rc = -1;
		return 1;
	}
	memcpy(w->saved, c->saved, c->saved_len);
	w->saved_len = c->saved_len;
	w->def_hash = c->def_hash;
	w->state = c->state;
	w->failures = c->failures_in_window;
	w->has_alert = c->alert_id != NULL;
	if (c->alert_id)
		memcpy(w->alert_id, c->alert_id, 16);
	r->n++;
	return 0;
}

struct alert_copy {
	bool found;
	char severity[16];
	uint64_t opened, failures;
	uint32_t window;
	char *sample;
};

static int alert_copy_cb(void *ctx, const struct store_alert *al)
{
	struct alert_copy *c = ctx;
	c->found = true;
	errq_snprintf(c->severity, sizeof(c->severity), "%s", al->severity);
	c->opened = al->opened_ns;
	c->failures = al->failures_in_window;
	c->window = al->window_seconds;
	c->sample = al->sample ? strdup(al->sample) : NULL;
	return 0;
}

/* A saved circuit whose rule is gone or changed while the collector was down (or whose
 * state cannot be read): it closes now, and its alert resolves to the notifiers that were
 * sent its firing (alerts__write_notice). */
static int retire_row(struct alerts *a, struct store *s, const struct saved_row *w, const char *reason,
		      uint64_t now)
{
	if (w->state != CIRCUIT_CLOSED) {
		struct store_transition t = {
		    .rule = w->rule,
		    .key = w->key,
		    .at_ns = now,
		    .from = w->state,
		    .to = CIRCUIT_CLOSED,
		    .reason = reason,
		    .failures_in_window = w->failures,
		    .alert_id = w->has_alert ? w->alert_id : NULL,
		};
		if (store_transition_add(s, &t))
			return -1;
		a->txn_st.transitions++;
	}
	if (w->has_alert) {
		struct alert_copy c = {.found = false};
		if (store_get_alert(s, w->alert_id, alert_copy_cb, &c) < 0) {
			free(c.sample);
			return -1;
		}
		int rc = 0;
		if (c.found) {
			struct store_alert al = {
			    .alert_id = w->alert_id,
			    .rule = w->rule,
			    .key = w->key,
			    .severity = c.severity,
			    .status = "resolved",
			    .state = CIRCUIT_CLOSED,
			    .opened_ns = c.opened,
			    .resolved_ns = now,
			    .failures_in_window = c.failures,
			    .window_seconds = c.window,
			    .sample = c.sample,
			    .resolve_reason = reason,
			    .updated_ns = now,
			};
			struct notice n = {
			    .rule = w->rule,
			    .key = w->key,
			    .severity = c.severity,
			    .status = "resolved",
			    .reason = reason,
			    .sample = c.sample,
			    .alert_id = w->alert_id,
			    .state = CIRCUIT_CLOSED,
			    .prev = w->state,
			    .failures = w->failures,
			    .window = c.window,
			    .opened = c.opened,
			    .resolved = now,
			    .seq = 1,
			};
			int64_t id;
			rc = store_alert_put(s, &al, &id) || alerts__write_notice(a, s, NULL, 0, &n, now) ? -1 : 0;
			a->txn_st.alerts_resolved += rc == 0;
		}
		free(c.sample);
		if (rc)
			return -1;
	}
	return store_circuit_delete(s, w->id);
}

static int silence_load_cb(void *ctx, const struct store_silence *si)
{
	struct alerts *a = ctx;
	uint64_t now = a->clock();
	if (si->expired_ns || si->ends_ns <= now)
		return 0;
	return alerts__add_silence_mem(a, si->id, si->rule, si->matchers, si->starts_ns, si->ends_ns) ? 1 : 0;
}

static int load_txn(struct alerts *a, struct store *s, void *arg)
{
	(void)arg;
	const struct ruleset *rs = alerts__rs(a);
	uint64_t now = a->clock();
	struct rows rows = {.v = NULL};
	int rc = -1;
	while (a->n_sil)
		alerts__drop_silence_mem(a, a->n_sil - 1);
	if (store_list_silences(s, STORE_SILENCES_NOT_ENDED, now, MAX_SILENCES, silence_load_cb, a))
		goto out;
	if (store_list_circuits(s, NULL, rows_cb, &rows) || rows.rc)
		goto out;
	for (size_t i = 0; i < rows.n; i++) {
		struct saved_row *w = &rows.v[i];
		const struct rule *r = rules_find(rs, w->rule);
		struct circuit *c = NULL;
		if (!r || r->def_hash != w->def_hash || circuit_load(&c, &r->circuit, w->saved, w->saved_len)) {
			const char *why = !r ? "rule_removed" : r->def_hash != w->def_hash ? "rule_changed"
											   : "state_unreadable";
			if (retire_row(a, s, w, why, now))
				goto out;
			continue;
		}
		size_t idx = (size_t)(r - rs->rules);
		uint64_t h = alerts__entry_hash(r->name, w->key, strlen(w->key));
		struct centry *e = alerts__new_entry(a, idx, w->key, strlen(w->key), h, now);
		if (!e) {
			circuit_free(c);
			goto out;
		}
		circuit_free(e->c);
		e->c = c;
		e->row_id = w->id;
		e->has_alert = w->has_alert;
		memcpy(e->alert_id, w->alert_id, 16);
		e->opened_at = c->opened_at;
		e->sample_loaded = !w->has_alert;
		e->created = true;
		e->gen = a->gen;
		e->tnext = a->touched;
		a->touched = e;
		if (strcmp(e->key, RULES_OVERFLOW_KEY))
			a->rt[idx].n_circuits++;
		struct circuit_out out;
		circuit_restore(c, &r->circuit, now, &out);
		if (alerts__apply(a, s, rs, r, e, &out, NULL, NULL, now))
			goto out;
	}
	/* silences that ended, and inhibiting rules that resolved or went, while errqd was down */
	if (alerts__release_all(a, s, NULL))
		goto out;
	rc = alerts__save_touched(a, s, now);
out:
	for (size_t i = 0; i < rows.n; i++) {
		free(rows.v[i].rule);
		free(rows.v[i].key);
		free(rows.v[i].saved);
	}
	free(rows.v);
	return rc;
}

/* Reads circuits, silences and pending deliveries (writer, once, in its own transaction). */
int alerts__load(struct alerts *a, struct store *s)
{
	/* everything pending in the table goes to the notifier through the backlog sweep, in
	 * id order: the rows of before the restart first, then those the load writes */
	a->backlog = !a->fleet; /* a fleet's leader claims what nobody holds instead */
	a->backlog_from = 0;
	if (alerts__in_txn(a, s, load_txn, NULL))
		return -1;
	a->loaded = true;
	uint32_t n = 0, open = 0;
	for (struct centry *e = a->active; e; e = e->anext)
		open += e->c->state != CIRCUIT_CLOSED;
	n = (uint32_t)a->n_entries;
	char cs[24], os[24], ss[24];
	errq_snprintf(cs, sizeof(cs), "%u", n);
	errq_snprintf(os, sizeof(os), "%u", open);
	errq_snprintf(ss, sizeof(ss), "%zu", a->n_sil);
	errq_logkv(ERRQ_LOG_INFO, "alert circuits loaded", "circuits", cs, "not_closed", os, "silences", ss, NULL);
	alerts__resume_refresh(a, s);
	alerts__feed_backlog(a, s);
	return 0;
}
