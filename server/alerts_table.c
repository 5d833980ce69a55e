/* alerts_table.c: the circuits by (rule, key), the active list, and the undo snapshot a
 * transaction takes of each circuit it changes (writer thread only). */
#include "alerts_int.h"

#include "errq_banned.h"

/* ---- circuits by (rule, key) ---- */

uint64_t alerts__entry_hash(const char *rule, const char *key, size_t key_len)
{
	uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, rule, strlen(rule) + 1);
	return errq_fnv64(h, key, key_len);
}

const struct rule *alerts__entry_rule(struct alerts *a, const struct centry *e)
{
	return &alerts__rs(a)->rules[e->rule_idx];
}

static struct centry *find_entry(struct alerts *a, size_t rule_idx, const char *key, size_t key_len, uint64_t h)
{
	if (!a->n_buckets)
		return NULL;
	for (struct centry *e = a->buckets[h & (a->n_buckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->rule_idx == rule_idx && e->key_len == key_len && !memcmp(e->key, key, key_len))
			return e;
	return NULL;
}

static int grow(struct alerts *a)
{
	size_t n = a->n_buckets ? a->n_buckets * 2 : HASH_MIN_BUCKETS;
	struct centry **b = calloc(n, sizeof(*b));
	if (!b)
		return -1;
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry *e = a->buckets[i], *next; e; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	free(a->buckets);
	a->buckets = b;
	a->n_buckets = n;
	return 0;
}

void alerts__unlink_entry(struct alerts *a, struct centry *e)
{
	struct centry **pp = &a->buckets[e->hash & (a->n_buckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	a->n_entries--;
}

static void active_unlink(struct alerts *a, struct centry *e)
{
	if (e->aprev)
		e->aprev->anext = e->anext;
	else
		a->active = e->anext;
	if (e->anext)
		e->anext->aprev = e->aprev;
	e->anext = e->aprev = NULL;
	e->active = false;
}

void alerts__set_active(struct alerts *a, struct centry *e)
{
	bool want = circuit_next_deadline(e->c) != 0;
	if (want == e->active)
		return;
	if (want) {
		e->aprev = NULL;
		e->anext = a->active;
		if (a->active)
			a->active->aprev = e;
		a->active = e;
		e->active = true;
	} else {
		active_unlink(a, e);
	}
}

void alerts__free_entry(struct alerts *a, struct centry *e)
{
	if (e->active)
		active_unlink(a, e);
	circuit_free(e->c);
	free(e->sample);
	free(e);
}

/* A new CLOSED circuit for (rule, key), not yet stored. */
struct centry *alerts__new_entry(struct alerts *a, size_t rule_idx, const char *key, size_t key_len, uint64_t h,
				uint64_t now)
{
	if (a->n_entries >= a->n_buckets && grow(a))
		return NULL;
	struct centry *e = calloc(1, sizeof(*e) + key_len + 1);
	if (!e)
		return NULL;
	e->c = circuit_new(&alerts__rs(a)->rules[rule_idx].circuit, now);
	if (!e->c) {
		free(e);
		return NULL;
	}
	e->rule_idx = rule_idx;
	e->hash = h;
	e->key_len = key_len;
	memcpy(e->key, key, key_len);
	e->sample_loaded = true;
	e->hnext = a->buckets[h & (a->n_buckets - 1)];
	a->buckets[h & (a->n_buckets - 1)] = e;
	a->n_entries++;
	return e;
}

/* Snapshots e before its first change in the open transaction. */
int alerts__touch(struct alerts *a, struct centry *e)
{
	if (e->gen == a->gen)
		return 0;
	size_t sz = circuit_size(&alerts__entry_rule(a, e)->circuit);
	struct circuit *u = malloc(sz);
	if (!u)
		return -1;
	memcpy(u, e->c, sz);
	e->undo_c = u;
	e->undo_row_id = e->row_id;
	e->undo_has_alert = e->has_alert;
	memcpy(e->undo_alert_id, e->alert_id, 16);
	e->undo_notices = e->notices;
	e->undo_opened_at = e->opened_at;
	e->undo_sample = e->sample;
	e->undo_sample_loaded = e->sample_loaded;
	e->gen = a->gen;
	e->tnext = a->touched;
	a->touched = e;
	return 0;
}

/* The circuit of (rule, key), created when new (or the rule's overflow circuit past its
 * bound), touched for the open transaction.  NULL when out of memory. */
struct centry *alerts__get_entry(struct alerts *a, size_t rule_idx, const char *key, size_t key_len, uint64_t now)
{
	const struct rule *r = &alerts__rs(a)->rules[rule_idx];
	uint64_t h = alerts__entry_hash(r->name, key, key_len);
	struct centry *e = find_entry(a, rule_idx, key, key_len, h);
	if (!e) {
		struct rule_rt *rt = &a->rt[rule_idx];
		if (rt->n_circuits >= r->max_circuits) {
			key = RULES_OVERFLOW_KEY;
			key_len = strlen(key);
			h = alerts__entry_hash(r->name, key, key_len);
			e = find_entry(a, rule_idx, key, key_len, h);
			rt->txn_overflow++; /* counted when the transaction commits */
			a->txn_st.overflow_failures++;
		}
		if (!e) {
			if (!(e = alerts__new_entry(a, rule_idx, key, key_len, h, now)))
				return NULL;
			e->created = true;
			e->gen = a->gen;
			e->tnext = a->touched;
			a->touched = e;
			e->undo_c = NULL;
			if (strcmp(e->key, RULES_OVERFLOW_KEY))
				rt->n_circuits++;
		}
	}
	return alerts__touch(a, e) ? NULL : e;
}
