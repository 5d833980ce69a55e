/* rules_inhibit.c: a rule's `inhibits:` and `inhibit_equal:` keys, checked once every rule is
 * read (a rule may name one written after it), and the test of whether an open circuit of
 * one rule mutes an alert of another (docs/alerts.md, "Inhibition"). */
#include "rules_int.h"

#include "errq_banned.h"

static bool has_field(const struct rule *r, const struct rules_field *f)
{
	for (size_t i = 0; i < r->n_group_by; i++)
		if (rules__same_field(&r->group_by[i], f))
			return true;
	return false;
}

static int parse_names(struct parser *p, yaml_node_t *n, size_t self, struct rule *r)
{
	char qb[ERRQ_QUOTE_BUFSZ];
	if (rules__want_list(p, n, "inhibits", "[checkout-timeouts]"))
		return -1;
	FOR_ITEMS(n, it)
	{
		yaml_node_t *vn = rules__node(p, *it);
		const char *v = rules__want_scalar(p, vn, "inhibits");
		if (!v)
			return -1;
		const struct rule *t = rules_find(p->rs, v);
		if (!t) {
			char list[256];
			size_t o = 0;
			list[0] = '\0';
			for (size_t j = 0; j < p->rs->n_rules && o < sizeof(list); j++)
				if (j != self)
					o += (size_t)errq_snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "",
								   p->rs->rules[j].name);
			return rules__fail(p, vn, "inhibits", "unknown rule '%s' (defined: %s)", errq_quote(v, qb),
					   o ? list : "no other rule");
		}
		size_t ti = (size_t)(t - p->rs->rules);
		if (ti == self)
			return rules__fail(p, vn, "inhibits", "a rule cannot inhibit itself");
		for (size_t j = 0; j < r->n_inhibits; j++)
			if (r->inhibits[j] == ti)
				return rules__fail(p, vn, "inhibits", "'%s' listed twice", errq_quote(v, qb));
		if (r->n_inhibits == RULES_MAX_INHIBITS)
			return rules__fail(p, vn, "inhibits", "more than %d rules", RULES_MAX_INHIBITS);
		r->inhibits[r->n_inhibits++] = ti;
	}
	return 0;
}

static int parse_equal(struct parser *p, yaml_node_t *n, struct rule *r)
{
	char qb[ERRQ_QUOTE_BUFSZ], fb[RULES_DETAIL_KEY_MAX + 16];
	if (rules__want_list(p, n, "inhibit_equal", "[service]"))
		return -1;
	if (!r->n_inhibits)
		return rules__fail(p, n, "inhibit_equal", "without inhibits (it says which of their alerts are muted)");
	FOR_ITEMS(n, it)
	{
		yaml_node_t *vn = rules__node(p, *it);
		const char *v = rules__want_scalar(p, vn, "inhibit_equal");
		struct rules_field f;
		if (!v || rules__get_field(p, vn, "inhibit_equal", v, F_GROUP, &f))
			return -1;
		for (size_t i = 0; i < r->n_inhibit_equal; i++)
			if (rules__same_field(&r->inhibit_equal[i], &f))
				return rules__fail(p, vn, "inhibit_equal", "'%s' listed twice", errq_quote(v, qb));
		if (!has_field(r, &f))
			return rules__fail(p, vn, "inhibit_equal", "'%s' is not in this rule's group_by",
					   rules_field_name(&f, fb, sizeof(fb)));
		for (size_t j = 0; j < r->n_inhibits; j++) {
			const struct rule *t = &p->rs->rules[r->inhibits[j]];
			if (!has_field(t, &f))
				return rules__fail(p, vn, "inhibit_equal", "rule '%s' does not group by '%s'", t->name,
						   rules_field_name(&f, fb, sizeof(fb)));
		}
		if (r->n_inhibit_equal == RULES_MAX_GROUP_BY) /* cannot happen: each is in group_by */
			return rules__fail(p, vn, "inhibit_equal", "more than %d fields", RULES_MAX_GROUP_BY);
		r->inhibit_equal[r->n_inhibit_equal++] = f;
	}
	return 0;
}

/* A cycle (a inhibits b, b inhibits a) would let two open incidents mute each other, so
 * neither pages: refused.  Depth-first from each rule; colour 1 = on the path. */
static int find_cycle(const struct ruleset *rs, size_t i, uint8_t *colour, size_t *path, size_t depth,
		      size_t *cycle_len)
{
	colour[i] = 1;
	path[depth] = i;
	for (size_t j = 0; j < rs->rules[i].n_inhibits; j++) {
		size_t t = rs->rules[i].inhibits[j];
		if (colour[t] == 1) {
			size_t k = 0;
			while (path[k] != t)
				k++;
			memmove(path, path + k, (depth + 1 - k) * sizeof(*path));
			*cycle_len = depth + 1 - k;
			return 1;
		}
		if (!colour[t] && find_cycle(rs, t, colour, path, depth + 1, cycle_len))
			return 1;
	}
	colour[i] = 2;
	return 0;
}

int rules__resolve_inhibits(struct parser *p)
{
	struct ruleset *rs = p->rs;
	for (size_t i = 0; i < rs->n_rules; i++) {
		struct rule *r = &rs->rules[i];
		errq_snprintf(p->what, sizeof(p->what), "rule '%s': ", r->name);
		if (p->inhibits_n[i] && !rules__is_null(p->inhibits_n[i]) && parse_names(p, p->inhibits_n[i], i, r))
			return -1;
		if (p->inhibit_equal_n[i] && !rules__is_null(p->inhibit_equal_n[i]) &&
		    parse_equal(p, p->inhibit_equal_n[i], r))
			return -1;
		for (size_t j = 0; j < r->n_inhibits; j++)
			rs->rules[r->inhibits[j]].inhibited = true;
	}
	uint8_t colour[RULES_MAX_RULES] = {0};
	size_t path[RULES_MAX_RULES], len = 0;
	for (size_t i = 0; i < rs->n_rules; i++) {
		if (colour[i] || !find_cycle(rs, i, colour, path, 0, &len))
			continue;
		char list[512];
		size_t o = 0;
		for (size_t k = 0; k <= len && o < sizeof(list); k++)
			o += (size_t)errq_snprintf(list + o, sizeof(list) - o, "%s%s", k ? " -> " : "",
						   rs->rules[path[k % len]].name);
		const struct rule *r = &rs->rules[path[0]];
		errq_snprintf(p->what, sizeof(p->what), "rule '%s': ", r->name);
		return rules__fail(p, p->inhibits_n[path[0]], "inhibits",
				   "rules may not inhibit each other in a cycle (%s): open together, they would mute "
				   "each other",
				   list);
	}
	return 0;
}

/* The unescaped value of field `name` in key into out; false when the key has no such field. */
static bool key_value(const char *key, const char *name, char *out, size_t outsz)
{
	char f[RULES_DETAIL_KEY_MAX + 16];
	const char *q = key;
	while (rules_key_next(&q, f, sizeof(f), out, outsz) == 1)
		if (!strcmp(f, name))
			return true;
	return false;
}

bool rules_inhibit_applies(const struct rule *src, const char *src_key, const char *target_key)
{
	char name[RULES_DETAIL_KEY_MAX + 16], a[RULES_KEY_VALUE_MAX * 2 + 1], b[RULES_KEY_VALUE_MAX * 2 + 1];
	for (size_t i = 0; i < src->n_inhibit_equal; i++) {
		rules_field_name(&src->inhibit_equal[i], name, sizeof(name));
		if (!key_value(src_key, name, a, sizeof(a)) || !key_value(target_key, name, b, sizeof(b)) || strcmp(a, b))
			return false;
	}
	return true;
}
