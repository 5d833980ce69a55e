/* rules_parse.c: the `rules:` section, the file's root, and loading a rules file (see rules.h). */
#include "rules_int.h"

#include "errq_banned.h"

/* ---- rules ---- */

static int parse_match(struct parser *p, yaml_node_t *n, struct rule *r, int *lines)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	if (rules__is_null(n))
		return 0;
	if (rules__want_mapping(p, n, "match", "{service: checkout, error_type: \"Timeout*\"}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = rules__node(p, pr->key), *vn = rules__node(p, pr->value);
		const char *k = errq_yaml_scalar(kn);
		char path[RULES_DETAIL_KEY_MAX + 32];
		struct rules_field f;
		if (!k)
			return rules__fail(p, kn, "match", "a field name must be a plain string");
		errq_snprintf(path, sizeof(path), "match.%s", k);
		if (rules__get_field(p, kn, path, k, F_MATCH, &f))
			return -1;
		for (size_t i = 0; i < r->n_match; i++)
			if (rules__same_field(&r->match[i].field, &f))
				return rules__fail(p, kn, path, "set twice");
		if (r->n_match == RULES_MAX_MATCH)
			return rules__fail(p, kn, path, "more than %d match entries", RULES_MAX_MATCH);
		const char *v = rules__want_scalar(p, vn, path);
		if (!v)
			return -1;
		struct rules_match *m = &r->match[r->n_match];
		m->field = f;
		if (f.id == RULES_F_HANDLED) {
			if (strcmp(v, "true") && strcmp(v, "false"))
				return rules__fail(p, vn, path, "'%s' is not true or false", errq_quote(v, qb));
			m->glob = strcmp(v, "true") == 0 ? "true" : "false";
		} else {
			if (strlen(v) > RULES_GLOB_MAX)
				return rules__fail(p, vn, path, "longer than %d bytes", RULES_GLOB_MAX);
			if (!(m->glob = rules__dup(p, vn, v)))
				return -1;
		}
		lines[r->n_match++] = errq_yaml_line(kn);
	}
	return 0;
}

static int parse_group_by(struct parser *p, yaml_node_t *n, struct rule *r, int *lines)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	if (rules__is_null(n))
		return 0;
	if (rules__want_list(p, n, "group_by", "[service, error_type]"))
		return -1;
	FOR_ITEMS(n, it)
	{
		yaml_node_t *vn = rules__node(p, *it);
		const char *v = rules__want_scalar(p, vn, "group_by");
		struct rules_field f;
		if (!v || rules__get_field(p, vn, "group_by", v, F_GROUP, &f))
			return -1;
		for (size_t i = 0; i < r->n_group_by; i++)
			if (rules__same_field(&r->group_by[i], &f))
				return rules__fail(p, vn, "group_by", "'%s' listed twice", errq_quote(v, qb));
		if (r->n_group_by == RULES_MAX_GROUP_BY)
			return rules__fail(p, vn, "group_by", "more than %d fields", RULES_MAX_GROUP_BY);
		lines[r->n_group_by] = errq_yaml_line(vn);
		r->group_by[r->n_group_by++] = f;
	}
	return 0;
}

static int parse_trip(struct parser *p, yaml_node_t *n, struct circuit_config *cfg)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	enum { K_FAILURES, K_RATE, K_MIN_CALLS, K_WINDOW };
	static const char *const keys[] = {"failures", "failure_rate", "min_calls", "window", NULL};
	uint32_t seen = 0;
	uint64_t u;
	yaml_node_t *min_calls_n = NULL;
	if (rules__want_mapping(p, n, "trip", "{failures: 3, window: 60s}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = rules__node(p, pr->key), *vn = rules__node(p, pr->value);
		switch (rules__map_key(p, kn, "trip.", keys, &seen)) {
		case K_FAILURES:
			if (rules__get_uint(p, vn, "trip.failures", 1, CIRCUIT_MAX_FAILURES, &u))
				return -1;
			cfg->failures = (uint32_t)u;
			break;
		case K_RATE:
			if (rules__get_decimal(p, vn, "trip.failure_rate", 6, 1, CIRCUIT_RATE_ONE, "in (0, 1]", &u))
				return -1;
			cfg->failure_rate_ppm = (uint32_t)u;
			break;
		case K_MIN_CALLS:
			if (rules__get_uint(p, vn, "trip.min_calls", 1, CIRCUIT_MAX_CALLS, &cfg->min_calls))
				return -1;
			min_calls_n = kn;
			break;
		case K_WINDOW:
			if (rules__get_duration(p, vn, "trip.window", CIRCUIT_MIN_WINDOW_S * ERRQ_NS_PER_SEC,
					 CIRCUIT_MAX_WINDOW_S * ERRQ_NS_PER_SEC, false, &cfg->window_ns))
				return -1;
			if (cfg->window_ns % ERRQ_NS_PER_SEC)
				return rules__fail(p, vn, "trip.window", "'%s' is not a whole number of seconds",
					    errq_quote(errq_yaml_scalar(vn), qb));
			break;
		default:
			return -1;
		}
	}
	if (!(seen & (1u << K_WINDOW)))
		return rules__fail(p, n, "trip.window", "missing (like window: 60s)");
	if (!cfg->failures && !cfg->failure_rate_ppm)
		return rules__fail(p, n, "trip", "needs failures, failure_rate or both");
	if (min_calls_n && !cfg->failure_rate_ppm)
		return rules__fail(p, min_calls_n, "trip.min_calls", "only with failure_rate");
	return 0;
}

static int parse_half_open(struct parser *p, yaml_node_t *n, struct circuit_config *cfg)
{
	enum { K_PROBE, K_FAILURES, K_SUCCESSES };
	static const char *const keys[] = {"probe", "failures", "successes", NULL};
	uint32_t seen = 0;
	uint64_t u;
	if (rules__want_mapping(p, n, "half_open", "{probe: 30s, failures: 1}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = rules__node(p, pr->key), *vn = rules__node(p, pr->value);
		switch (rules__map_key(p, kn, "half_open.", keys, &seen)) {
		case K_PROBE:
			if (rules__get_duration(p, vn, "half_open.probe", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_TIMEOUT_NS, false,
					 &cfg->probe_ns))
				return -1;
			break;
		case K_FAILURES:
			if (rules__get_uint(p, vn, "half_open.failures", 1, CIRCUIT_MAX_FAILURES, &u))
				return -1;
			cfg->probe_failures = (uint32_t)u;
			break;
		case K_SUCCESSES:
			if (rules__get_uint(p, vn, "half_open.successes", 0, CIRCUIT_MAX_CALLS, &cfg->probe_successes))
				return -1;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

static int parse_backoff(struct parser *p, yaml_node_t *n, struct circuit_config *cfg, yaml_node_t **max_n)
{
	enum { K_FACTOR, K_MAX };
	static const char *const keys[] = {"factor", "max", NULL};
	uint32_t seen = 0;
	uint64_t u = 0;
	if (rules__want_mapping(p, n, "backoff", "{factor: 2, max: 30m}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = rules__node(p, pr->key), *vn = rules__node(p, pr->value);
		switch (rules__map_key(p, kn, "backoff.", keys, &seen)) {
		case K_FACTOR:
			if (rules__get_decimal(p, vn, "backoff.factor", 3, CIRCUIT_FACTOR_ONE, CIRCUIT_MAX_FACTOR,
					"from 1 to 100", &u))
				return -1;
			cfg->backoff_factor = (uint32_t)u;
			break;
		case K_MAX:
			if (rules__get_duration(p, vn, "backoff.max", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_TIMEOUT_NS, false,
					 &cfg->backoff_max_ns))
				return -1;
			*max_n = vn;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

static int parse_notify(struct parser *p, yaml_node_t *n, struct rule *r)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	if (rules__is_null(n))
		return 0;
	if (rules__want_list(p, n, "notify", "[ops]"))
		return -1;
	FOR_ITEMS(n, it)
	{
		yaml_node_t *vn = rules__node(p, *it);
		const char *v = rules__want_scalar(p, vn, "notify");
		size_t i;
		if (!v)
			return -1;
		for (i = 0; i < p->rs->n_notifiers; i++)
			if (strcmp(p->rs->notifiers[i].name, v) == 0)
				break;
		if (i == p->rs->n_notifiers) {
			char list[256];
			size_t o = 0;
			list[0] = '\0';
			for (size_t j = 0; j < p->rs->n_notifiers && o < sizeof(list); j++)
				o += (size_t)errq_snprintf(list + o, sizeof(list) - o, "%s%s", j ? ", " : "",
							   p->rs->notifiers[j].name);
			if (!p->rs->n_notifiers)
				return rules__fail(p, vn, "notify", "unknown notifier '%s' (no notifiers are defined)",
					    errq_quote(v, qb));
			return rules__fail(p, vn, "notify", "unknown notifier '%s' (defined: %s)", errq_quote(v, qb), list);
		}
		for (size_t j = 0; j < r->n_notify; j++)
			if (r->notify[j] == i)
				return rules__fail(p, vn, "notify", "'%s' listed twice", errq_quote(v, qb));
		if (r->n_notify == RULES_MAX_NOTIFY)
			return rules__fail(p, vn, "notify", "more than %d notifiers", RULES_MAX_NOTIFY);
		r->notify[r->n_notify++] = i;
	}
	return 0;
}

static int match_cmp(const struct rules_match *a, const struct rules_match *b)
{
	if (a->field.id != b->field.id)
		return a->field.id < b->field.id ? -1 : 1;
	return a->field.id == RULES_F_DETAIL ? strcmp(a->field.detail, b->field.detail) : 0;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	return errq_fnv64(h, s, strlen(s) + 1); /* the NUL separates fields */
}

/* The definition hash: what decides which events a rule's circuits count and how they are
 * keyed.  Its input is versioned text; never change it without a new version string, or
 * every circuit would be resolved as rule_changed on upgrade. */
static uint64_t def_hash(const struct rule *r)
{
	char buf[160];
	uint64_t h = hash_str(ERRQ_FNV64_INIT, "errq-rule-definition-v1");
	h = hash_str(h, "match");
	for (size_t i = 0; i < r->n_match; i++) {
		h = hash_str(h, rules_field_name(&r->match[i].field, buf, sizeof(buf)));
		h = hash_str(h, r->match[i].glob);
	}
	h = hash_str(h, "group_by");
	for (size_t i = 0; i < r->n_group_by; i++)
		h = hash_str(h, rules_field_name(&r->group_by[i], buf, sizeof(buf)));
	const struct circuit_config *c = &r->circuit;
	errq_snprintf(buf, sizeof(buf), "trip failures=%" PRIu32 " failure_rate_ppm=%" PRIu32 " min_calls=%" PRIu64
		      " window_ns=%" PRIu64,
		      c->failures, c->failure_rate_ppm, c->failure_rate_ppm ? c->min_calls : 0, c->window_ns);
	return hash_str(h, buf);
}

static int parse_rule(struct parser *p, yaml_node_t *n, size_t index, struct rule *r)
{
	enum {
		K_NAME,
		K_MATCH,
		K_GROUP_BY,
		K_TRIP,
		K_RECOVERY,
		K_HALF_OPEN,
		K_BACKOFF,
		K_SEVERITY,
		K_REPEAT,
		K_MAX_AGE,
		K_NOTIFY,
		K_MAX_CIRCUITS,
		K_INHIBITS,
		K_INHIBIT_EQUAL
	};
	static const char *const keys[] = {"name",	     "match",	      "group_by",      "trip",
					   "recovery_timeout", "half_open",       "backoff",       "severity",
					   "repeat_interval",  "max_event_age",   "notify",        "max_circuits",
					   "inhibits",         "inhibit_equal",   NULL};
	uint32_t seen = 0;
	uint64_t u;
	int match_lines[RULES_MAX_MATCH], group_lines[RULES_MAX_GROUP_BY], sev;
	yaml_node_t *backoff_max_n = NULL;
	struct circuit_config *cfg = &r->circuit;
	char why[128];

	errq_snprintf(p->what, sizeof(p->what), "rule #%zu: ", index + 1);
	if (rules__want_mapping(p, n, NULL, "{name: ..., match: {...}, trip: {...}}"))
		return -1;
	yaml_node_t *name_n = rules__find_value(p, n, "name");
	if (!name_n)
		return rules__fail(p, n, "name", "missing");
	const char *name = rules__get_name(p, name_n, "name");
	if (!name)
		return -1;
	errq_snprintf(p->what, sizeof(p->what), "rule '%s': ", name);
	for (size_t i = 0; i < index; i++)
		if (strcmp(p->rs->rules[i].name, name) == 0)
			return rules__fail(p, name_n, "name", "a rule '%s' is already defined at line %d", name,
				    p->rs->rules[i].line);
	if (!(r->name = rules__dup(p, name_n, name)))
		return -1;
	r->line = errq_yaml_line(n);
	r->severity = RULES_SEV_WARNING;
	r->max_circuits = RULES_DEFAULT_MAX_CIRCUITS;
	cfg->min_calls = CIRCUIT_DEFAULT_MIN_CALLS;
	cfg->recovery_timeout_ns = CIRCUIT_DEFAULT_RECOVERY_NS;
	cfg->probe_ns = CIRCUIT_DEFAULT_PROBE_NS;
	cfg->probe_failures = CIRCUIT_DEFAULT_PROBE_FAILURES;
	cfg->backoff_factor = CIRCUIT_DEFAULT_FACTOR;
	cfg->repeat_interval_ns = CIRCUIT_DEFAULT_REPEAT_NS;

	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = rules__node(p, pr->key), *vn = rules__node(p, pr->value);
		int rc = 0;
		switch (rules__map_key(p, kn, "", keys, &seen)) {
		case K_NAME:
			break;
		case K_MATCH:
			rc = parse_match(p, vn, r, match_lines);
			break;
		case K_GROUP_BY:
			rc = parse_group_by(p, vn, r, group_lines);
			break;
		case K_TRIP:
			rc = parse_trip(p, vn, cfg);
			break;
		case K_RECOVERY:
			rc = rules__get_duration(p, vn, "recovery_timeout", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_TIMEOUT_NS, false,
					  &cfg->recovery_timeout_ns);
			break;
		case K_HALF_OPEN:
			rc = parse_half_open(p, vn, cfg);
			break;
		case K_BACKOFF:
			rc = parse_backoff(p, vn, cfg, &backoff_max_n);
			break;
		case K_SEVERITY:
			if (!(rc = rules__get_choice(p, vn, "severity", rules__severities, &sev)))
				r->severity = (enum rules_severity)sev;
			break;
		case K_REPEAT:
			rc = rules__get_duration(p, vn, "repeat_interval", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_INTERVAL_NS, true,
					  &cfg->repeat_interval_ns);
			break;
		case K_MAX_AGE:
			rc = rules__get_duration(p, vn, "max_event_age", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_INTERVAL_NS, true,
					  &cfg->max_event_age_ns);
			break;
		case K_NOTIFY:
			rc = parse_notify(p, vn, r);
			break;
		case K_MAX_CIRCUITS:
			if (!(rc = rules__get_uint(p, vn, "max_circuits", 1, RULES_MAX_CIRCUITS, &u)))
				r->max_circuits = (uint32_t)u;
			break;
		case K_INHIBITS: /* names checked once every rule is read (rules_inhibit.c) */
			p->inhibits_n[index] = vn;
			break;
		case K_INHIBIT_EQUAL:
			p->inhibit_equal_n[index] = vn;
			break;
		default:
			rc = -1;
		}
		if (rc)
			return -1;
	}
	if (!(seen & (1u << K_TRIP)))
		return rules__fail(p, n, "trip", "missing (like trip: {failures: 3, window: 60s})");
	/* defaults that depend on other keys */
	if (!backoff_max_n)
		cfg->backoff_max_ns = CIRCUIT_DEFAULT_BACKOFF_MAX_NS > cfg->recovery_timeout_ns
					      ? CIRCUIT_DEFAULT_BACKOFF_MAX_NS
					      : cfg->recovery_timeout_ns;
	else if (cfg->backoff_max_ns < cfg->recovery_timeout_ns) {
		char a[ERRQ_DURATION_BUFSZ], b[ERRQ_DURATION_BUFSZ];
		return rules__fail(p, backoff_max_n, "backoff.max", "%s is shorter than recovery_timeout (%s)",
			    errq_fmt_duration(a, cfg->backoff_max_ns), errq_fmt_duration(b, cfg->recovery_timeout_ns));
	}
	if (!(seen & (1u << K_MAX_AGE)))
		cfg->max_event_age_ns = cfg->window_ns;
	/* outcomes carry a service and a task only: a rate computed from them can be keyed and
	 * filtered by nothing else */
	r->wants_outcomes = cfg->failure_rate_ppm || cfg->probe_successes;
	if (cfg->failure_rate_ppm) {
		const char *by = "a failure_rate rule";
		char f[RULES_DETAIL_KEY_MAX + 16], path[RULES_DETAIL_KEY_MAX + 32];
		for (size_t i = 0; i < r->n_match; i++) {
			enum rules_field_id id = r->match[i].field.id;
			if (id != RULES_F_SERVICE && id != RULES_F_TASK) {
				errq_snprintf(path, sizeof(path), "match.%s", rules_field_name(&r->match[i].field, f, sizeof(f)));
				return rules__fail_line(p, match_lines[i], path,
						 "%s can match only on service and task (all that outcomes carry)", by);
			}
		}
		for (size_t i = 0; i < r->n_group_by; i++) {
			enum rules_field_id id = r->group_by[i].id;
			if (id != RULES_F_SERVICE && id != RULES_F_TASK)
				return rules__fail_line(p, group_lines[i], "group_by",
						 "%s can group only by service and task (all that outcomes carry), not '%s'",
						 by, rules_field_name(&r->group_by[i], f, sizeof(f)));
		}
	}
	if (circuit_config_check(cfg, why, sizeof(why))) /* a backstop: the checks above cover it */
		return rules__fail(p, n, NULL, "%s", why);
	/* sort match entries so the order they were written in does not change the hash */
	for (size_t i = 1; i < r->n_match; i++)
		for (size_t j = i; j > 0 && match_cmp(&r->match[j - 1], &r->match[j]) > 0; j--) {
			struct rules_match t = r->match[j];
			r->match[j] = r->match[j - 1];
			r->match[j - 1] = t;
		}
	r->def_hash = def_hash(r);
	return 0;
}

static int parse_rules(struct parser *p, yaml_node_t *n)
{
	if (rules__is_null(n))
		return 0;
	if (rules__want_list(p, n, "rules", "[{name: ..., match: {...}, trip: {...}}]"))
		return -1;
	size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > RULES_MAX_RULES)
		return rules__fail(p, n, "rules", "more than %d rules", RULES_MAX_RULES);
	if (!(p->rs->rules = rules__zalloc(p, n, count * sizeof(struct rule))))
		return -1;
	FOR_ITEMS(n, it)
	{
		size_t i = p->rs->n_rules;
		if (parse_rule(p, rules__node(p, *it), i, &p->rs->rules[i]))
			return -1;
		p->rs->n_rules++;
	}
	if (rules__resolve_inhibits(p))
		return -1;
	p->what[0] = '\0';
	return 0;
}

static int parse_root(struct parser *p)
{
	yaml_node_t *root = errq_yaml_root(&p->y), *notifiers = NULL, *rules = NULL;
	if (!root)
		return 0; /* an empty file */
	if (root->type != YAML_MAPPING_NODE)
		return rules__fail(p, root, NULL, "the top level must be a mapping");
	FOR_PAIRS(root, pr)
	{
		yaml_node_t *kn = rules__node(p, pr->key);
		const char *k = errq_yaml_scalar(kn);
		yaml_node_t **slot = NULL;
		if (k && strcmp(k, "notifiers") == 0)
			slot = &notifiers;
		else if (k && strcmp(k, "rules") == 0)
			slot = &rules;
		if (!slot)
			continue; /* a setting: settings_load_file's business */
		if (*slot)
			return rules__fail(p, kn, k, "set twice");
		*slot = rules__node(p, pr->value);
	}
	/* notifiers first: rules name them */
	if (notifiers && rules__parse_notifiers(p, notifiers))
		return -1;
	if (rules && parse_rules(p, rules))
		return -1;
	return 0;
}

static int load(struct ruleset **out, const char *path, const char *name, const char *text, size_t len, char *err,
		size_t errsz)
{
	int rc = -1;
	struct parser p;
	memset(&p, 0, sizeof(p));
	p.file = path ? path : name;
	p.err = err;
	p.errsz = errsz;
	*out = NULL;
	if (path ? errq_yaml_load(&p.y, path, err, errsz) : errq_yaml_load_mem(&p.y, name, text, len, err, errsz))
		goto out;
	if (!(p.rs = calloc(1, sizeof(*p.rs)))) {
		errq_snprintf(err, errsz, "'%s': out of memory", p.file);
		goto out;
	}
	errq_arena_init(&p.rs->arena, RULES_ARENA_FIRST, RULES_MEMORY_MAX);
	if (parse_root(&p))
		goto out;
	*out = p.rs;
	p.rs = NULL;
	rc = 0;
out:
	rules_free(p.rs);
	errq_yaml_free(&p.y);
	return rc;
}

int rules_load(struct ruleset **out, const char *path, char *err, size_t errsz)
{
	return load(out, path, NULL, NULL, 0, err, errsz);
}

int rules_load_mem(struct ruleset **out, const char *name, const char *text, size_t len, char *err, size_t errsz)
{
	return load(out, NULL, name, text, len, err, errsz);
}

void rules_free(struct ruleset *rs)
{
	if (!rs)
		return;
	errq_arena_release(&rs->arena);
	free(rs);
}

const struct rule *rules_find(const struct ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->n_rules; i++)
		if (strcmp(rs->rules[i].name, name) == 0)
			return &rs->rules[i];
	return NULL;
}

const struct rules_notifier *rules_find_notifier(const struct ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->n_notifiers; i++)
		if (strcmp(rs->notifiers[i].name, name) == 0)
			return &rs->notifiers[i];
	return NULL;
}

enum circuit_retire rules_reload_fate(const struct rule *old_rule, const struct ruleset *next,
				      const struct rule **now_rule)
{
	const struct rule *r = rules_find(next, old_rule->name);
	*now_rule = r;
	if (!r)
		return CIRCUIT_RETIRE_REMOVED;
	return r->def_hash == old_rule->def_hash ? CIRCUIT_RETIRE_NONE : CIRCUIT_RETIRE_CHANGED;
}
