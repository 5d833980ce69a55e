/* rules_match.c: matching an event or an outcome to the rules, and the key of a match. */
#include "rules_int.h"

#include "errq_banned.h"

/* ---- matching and keys ---- */

const char *rules__or_empty(const char *s)
{
	return s ? s : "";
}

/* The event's value of f; NULL when the event has no such detail. */
static const char *event_value(const struct rule_event *ev, const struct rules_field *f)
{
	switch (f->id) {
	case RULES_F_SERVICE:
		return rules__or_empty(ev->service);
	case RULES_F_ENVIRONMENT:
		return rules__or_empty(ev->environment);
	case RULES_F_TASK:
		return rules__or_empty(ev->task);
	case RULES_F_ERROR_TYPE:
		return rules__or_empty(ev->error_type);
	case RULES_F_ERROR_CODE:
		return rules__or_empty(ev->error_code);
	case RULES_F_FINGERPRINT:
		return rules__or_empty(ev->fingerprint);
	case RULES_F_HANDLED:
		return ev->handled ? "true" : "false";
	case RULES_F_DETAIL:
		for (size_t i = 0; i < ev->n_details; i++)
			if (ev->detail_keys[i] && strcmp(ev->detail_keys[i], f->detail) == 0)
				return rules__or_empty(ev->detail_values[i]);
		return NULL;
	}
	return NULL;
}

static bool outcome_field(enum rules_field_id id)
{
	return id == RULES_F_SERVICE || id == RULES_F_TASK;
}

/* outcome: judge on the service and task entries only (an Outcome has nothing else). */
static bool rule_matches(const struct rule *r, const struct rule_event *ev, bool outcome)
{
	for (size_t i = 0; i < r->n_match; i++) {
		if (outcome && !outcome_field(r->match[i].field.id))
			continue;
		const char *v = event_value(ev, &r->match[i].field);
		if (!v || fnmatch(r->match[i].glob, v, 0) != 0)
			return false;
	}
	return true;
}

size_t rules_key(const struct rule *r, const struct rule_event *ev, char *out, size_t outsz)
{
	const char *values[RULES_MAX_GROUP_BY];
	for (size_t i = 0; i < r->n_group_by; i++)
		values[i] = event_value(ev, &r->group_by[i]);
	return rules__key_build(r, values, out, outsz);
}

size_t rules_match(const struct ruleset *rs, const struct rule_event *ev, rules_match_fn fn, void *arg)
{
	char key[RULES_KEY_MAX];
	size_t calls = 0;
	for (size_t i = 0; i < rs->n_rules; i++) {
		const struct rule *r = &rs->rules[i];
		if (!rule_matches(r, ev, false))
			continue;
		size_t len = rules_key(r, ev, key, sizeof(key));
		calls++;
		if (fn(arg, r, key, len))
			break;
	}
	return calls;
}

size_t rules_match_outcome(const struct ruleset *rs, const char *service, const char *task, rules_match_fn fn,
			   void *arg)
{
	struct rule_event ev;
	char key[RULES_KEY_MAX];
	size_t calls = 0;
	memset(&ev, 0, sizeof(ev));
	ev.service = service;
	ev.task = task;
	for (size_t i = 0; i < rs->n_rules; i++) {
		const struct rule *r = &rs->rules[i];
		if (!r->wants_outcomes || !rule_matches(r, &ev, true))
			continue;
		bool exact = true;
		for (size_t j = 0; j < r->n_group_by; j++)
			exact &= outcome_field(r->group_by[j].id);
		size_t len = exact ? rules_key(r, &ev, key, sizeof(key)) : 0;
		calls++;
		if (fn(arg, r, exact ? key : NULL, len))
			break;
	}
	return calls;
}

bool rules_outcome_applies(const struct rule *r, const char *key, const char *service, const char *task)
{
	char f[RULES_DETAIL_KEY_MAX + 16], v[RULES_KEY_VALUE_MAX + 8];
	const char *p = key;
	int rc;
	if (!key || strcmp(key, RULES_OVERFLOW_KEY) == 0)
		return true; /* the overflow circuit stands for keys of every kind */
	while ((rc = rules_key_next(&p, f, sizeof(f), v, sizeof(v))) == 1) {
		const char *want = strcmp(f, "service") == 0 ? rules__or_empty(service)
				   : strcmp(f, "task") == 0  ? rules__or_empty(task)
							     : NULL;
		if (!want)
			continue;
		size_t n = errq_utf8_trunc_len(want, strlen(want), RULES_KEY_VALUE_MAX);
		if (strlen(v) != n || memcmp(v, want, n) != 0)
			return false;
	}
	return rc == 0;
}
