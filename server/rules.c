/* rules.c: alert rules and notifiers from YAML (docs/alerts.md), and matching events to them.
 *
 * Loading checks everything a rule or notifier can get wrong and refuses the whole file at
 * the first problem, with the file, the line of the offending node, the rule or notifier,
 * the key and the reason: "'FILE' line N: rule 'R': key 'trip.window': reason".  Defaults
 * are applied after a mapping is read, so keys may come in any order. */
#include "rules.h"

#include <ctype.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errq_hash.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_yaml.h"
#include "errq_banned.h"

/* The longest field name is "details." + a detail key; each value escapes to at most twice
 * its length; plus '=' and ','. */
_Static_assert(RULES_MAX_GROUP_BY * (sizeof("details.") - 1 + RULES_DETAIL_KEY_MAX + 2 + 2 * RULES_KEY_VALUE_MAX) <
		       RULES_KEY_MAX,
	       "RULES_KEY_MAX cannot hold the longest key");
_Static_assert(RULES_MAX_MATCH <= 32 && RULES_MAX_GROUP_BY <= 32, "bit sets of 32");

#define RULES_ARENA_FIRST (16u << 10)

enum { F_MATCH = 1, F_GROUP = 2 };

static const struct {
	const char *name;
	enum rules_field_id id;
	unsigned use;
} field_table[] = {
    {"service", RULES_F_SERVICE, F_MATCH | F_GROUP},
    {"environment", RULES_F_ENVIRONMENT, F_MATCH | F_GROUP},
    {"task", RULES_F_TASK, F_MATCH | F_GROUP},
    {"error_type", RULES_F_ERROR_TYPE, F_MATCH | F_GROUP},
    {"error_code", RULES_F_ERROR_CODE, F_MATCH | F_GROUP},
    {"fingerprint", RULES_F_FINGERPRINT, F_GROUP},
    {"handled", RULES_F_HANDLED, F_MATCH},
};
#define N_FIELDS (sizeof(field_table) / sizeof(field_table[0]))

static const char *const severities[] = {"critical", "error", "warning", "info", NULL};

const char *rules_severity_name(enum rules_severity s)
{
	return (unsigned)s < 4 ? severities[s] : "unknown";
}

const char *rules_field_name(const struct rules_field *f, char *buf, size_t bufsz)
{
	if (f->id == RULES_F_DETAIL) {
		errq_snprintf(buf, bufsz, "details.%s", f->detail);
		return buf;
	}
	for (size_t i = 0; i < N_FIELDS; i++)
		if (field_table[i].id == f->id) {
			errq_snprintf(buf, bufsz, "%s", field_table[i].name);
			return buf;
		}
	errq_snprintf(buf, bufsz, "?");
	return buf;
}

/* ---- the parser ---- */

struct parser {
	struct errq_yaml y;
	const char *file;
	char *err;
	size_t errsz;
	struct ruleset *rs;
	char what[RULES_NAME_MAX + 32]; /* "rule 'x': ", "notifier #2: " or "" */
};

static int fail_line(struct parser *p, int line, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct parser *p, const yaml_node_t *n, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int vfail(struct parser *p, int line, const char *key, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int vfail(struct parser *p, int line, const char *key, const char *fmt, va_list ap)
{
	char why[512];
	vsnprintf(why, sizeof(why), fmt, ap);
	if (key)
		errq_snprintf(p->err, p->errsz, "'%s' line %d: %skey '%s': %s", p->file, line, p->what, key, why);
	else
		errq_snprintf(p->err, p->errsz, "'%s' line %d: %s%s", p->file, line, p->what, why);
	return -1;
}

static int fail_line(struct parser *p, int line, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(p, line, key, fmt, ap);
	va_end(ap);
	return rc;
}

/* Always returns -1 (the caller returns it). */
static int fail(struct parser *p, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(p, errq_yaml_line(n), key, fmt, ap);
	va_end(ap);
	return rc;
}

static yaml_node_t *node(struct parser *p, int i)
{
	return errq_yaml_node(&p->y, i);
}

#define FOR_PAIRS(map, pr)                                                                         \
	for (yaml_node_pair_t *pr = (map)->data.mapping.pairs.start; pr < (map)->data.mapping.pairs.top; pr++)
#define FOR_ITEMS(seq, it)                                                                         \
	for (yaml_node_item_t *it = (seq)->data.sequence.items.start; it < (seq)->data.sequence.items.top; it++)

/* `key:` with nothing after it (or ~, null): an empty section. */
static bool is_null(const yaml_node_t *n)
{
	const char *v = errq_yaml_scalar(n);
	return v && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0);
}

static void *zalloc(struct parser *p, const yaml_node_t *n, size_t size)
{
	void *m = errq_arena_alloc(&p->rs->arena, size ? size : 1);
	if (!m) {
		fail(p, n, NULL, "out of memory (a ruleset may use %u MiB)", RULES_MEMORY_MAX >> 20);
		return NULL;
	}
	memset(m, 0, size);
	return m;
}

static char *dup(struct parser *p, const yaml_node_t *n, const char *s)
{
	size_t l = strlen(s);
	char *d = zalloc(p, n, l + 1);
	if (d)
		memcpy(d, s, l + 1);
	return d;
}

static void join(char *buf, size_t bufsz, const char *const *words)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; words[i] && o < bufsz; i++)
		o += (size_t)errq_snprintf(buf + o, bufsz - o, "%s%s", i ? ", " : "", words[i]);
}

static int key_index(const char *const *keys, const char *k)
{
	for (int i = 0; keys[i]; i++)
		if (strcmp(keys[i], k) == 0)
			return i;
	return -1;
}

/* The index of mapping key kn in keys (NULL-terminated), marking it seen; or -1 with err
 * set (not a string, unknown, set twice).  prefix is prepended to the key in messages. */
static int map_key(struct parser *p, const yaml_node_t *kn, const char *prefix, const char *const *keys,
		   uint32_t *seen)
{
	const char *k = errq_yaml_scalar(kn);
	char path[160], list[256];
	if (!k)
		return fail(p, kn, NULL, "a key must be a plain string");
	errq_snprintf(path, sizeof(path), "%s%s", prefix, k);
	int i = key_index(keys, k);
	if (i < 0) {
		join(list, sizeof(list), keys);
		return fail(p, kn, path, "unknown key (expected one of: %s)", list);
	}
	if (*seen & (1u << i))
		return fail(p, kn, path, "set twice");
	*seen |= 1u << i;
	return i;
}

/* The value node of key k in mapping map (the first, if set twice), or NULL. */
static yaml_node_t *find_value(struct parser *p, yaml_node_t *map, const char *k)
{
	FOR_PAIRS(map, pr)
	{
		const char *s = errq_yaml_scalar(node(p, pr->key));
		if (s && strcmp(s, k) == 0)
			return node(p, pr->value);
	}
	return NULL;
}

static const char *want_scalar(struct parser *p, const yaml_node_t *n, const char *path)
{
	const char *v = errq_yaml_scalar(n);
	if (!v)
		fail(p, n, path, "expected a single value, not a %s",
		     n->type == YAML_MAPPING_NODE ? "mapping" : "list");
	return v;
}

static int want_mapping(struct parser *p, const yaml_node_t *n, const char *path, const char *example)
{
	if (n->type == YAML_MAPPING_NODE)
		return 0;
	return fail(p, n, path, "expected a mapping, like %s", example);
}

static int want_list(struct parser *p, const yaml_node_t *n, const char *path, const char *example)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return 0;
	return fail(p, n, path, "expected a list, like %s", example);
}

static int get_duration(struct parser *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
			bool zero_ok, uint64_t *out)
{
	char a[ERRQ_DURATION_BUFSZ], b[ERRQ_DURATION_BUFSZ];
	const char *v = want_scalar(p, n, path);
	uint64_t ns;
	if (!v)
		return -1;
	if (errq_parse_duration(v, &ns))
		return fail(p, n, path, "'%s' is not a duration (like 500ms, 10s, 5m, 2h)", v);
	if (ns == 0 && zero_ok) {
		*out = 0;
		return 0;
	}
	if (ns < min || ns > max)
		return fail(p, n, path, "'%s' is out of range (%s%s to %s)", v, zero_ok ? "0s to turn it off, or " : "",
			    errq_fmt_duration(a, min), errq_fmt_duration(b, max));
	*out = ns;
	return 0;
}

static int get_uint(struct parser *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
		    uint64_t *out)
{
	const char *v = want_scalar(p, n, path);
	uint64_t x = 0;
	if (!v)
		return -1;
	const char *q = v;
	if (!isdigit((unsigned char)*q))
		goto bad;
	for (; isdigit((unsigned char)*q); q++) {
		if (x > (UINT64_MAX - 9) / 10)
			goto bad;
		x = x * 10 + (uint64_t)(*q - '0');
	}
	if (*q || x < min || x > max)
		goto bad;
	*out = x;
	return 0;
bad:
	return fail(p, n, path, "'%s' is not an integer in [%" PRIu64 ", %" PRIu64 "]", v, min, max);
}

/* A non-negative decimal with at most `digits` significant decimals ("0.5", "2", "1.25"),
 * as an integer scaled by 10^digits: exact, so thresholds compare without rounding.
 * Returns 0, -1 (not a number) or -2 (too many decimals). */
static int parse_decimal(const char *s, int digits, uint64_t *out)
{
	uint64_t ip = 0, fp = 0, scale = 1;
	int nd = 0;
	const char *q = s;
	for (int i = 0; i < digits; i++)
		scale *= 10;
	if (!isdigit((unsigned char)*q) && !(*q == '.' && isdigit((unsigned char)q[1])))
		return -1;
	for (; isdigit((unsigned char)*q); q++) {
		ip = ip * 10 + (uint64_t)(*q - '0');
		if (ip > 1000000)
			return -1;
	}
	if (*q == '.') {
		q++;
		if (!isdigit((unsigned char)*q))
			return -1;
		for (; isdigit((unsigned char)*q); q++) {
			if (nd == digits) {
				if (*q != '0')
					return -2;
				continue;
			}
			fp = fp * 10 + (uint64_t)(*q - '0');
			nd++;
		}
	}
	if (*q)
		return -1;
	for (; nd < digits; nd++)
		fp *= 10;
	*out = ip * scale + fp;
	return 0;
}

static int get_decimal(struct parser *p, const yaml_node_t *n, const char *path, int digits, uint64_t min,
		       uint64_t max, const char *range, uint64_t *out)
{
	const char *v = want_scalar(p, n, path);
	uint64_t x;
	if (!v)
		return -1;
	int rc = parse_decimal(v, digits, &x);
	if (rc == -2)
		return fail(p, n, path, "'%s' has more than %d decimals", v, digits);
	if (rc || x < min || x > max)
		return fail(p, n, path, "'%s' is not a number %s", v, range);
	*out = x;
	return 0;
}

static int get_choice(struct parser *p, const yaml_node_t *n, const char *path, const char *const *choices,
		      int *out)
{
	char list[128];
	const char *v = want_scalar(p, n, path);
	if (!v)
		return -1;
	int i = key_index(choices, v);
	if (i < 0) {
		join(list, sizeof(list), choices);
		return fail(p, n, path, "'%s' is not one of: %s", v, list);
	}
	*out = i;
	return 0;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= RULES_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

static const char *get_name(struct parser *p, const yaml_node_t *n, const char *path)
{
	const char *v = want_scalar(p, n, path);
	if (v && !name_ok(v)) {
		fail(p, n, path, "'%s' is not a name (1 to %d letters, digits, '_', '.', '-')", v, RULES_NAME_MAX - 1);
		return NULL;
	}
	return v;
}

/* A details key: what follows "details." in match and group_by.  Keys end at '=' and ','
 * and escapes start with '\' (in circuit keys), so those are refused, as are spaces and
 * control characters. */
static bool detail_key_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > RULES_DETAIL_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == ',' || c == '=' || c == '\\')
			return false;
	}
	return true;
}

/* Resolves a field name of match (use F_MATCH) or group_by (F_GROUP) into f.  Returns 0,
 * or -1 when unknown or invalid (with err set against node n). */
static int get_field(struct parser *p, const yaml_node_t *n, const char *path, const char *name, unsigned use,
		     struct rules_field *f)
{
	if (strncmp(name, "details.", 8) == 0) {
		if (!detail_key_ok(name + 8))
			return fail(p, n, path,
				    "'%s' is not a details key (1 to %d bytes, no spaces, ',', '=' or '\\')", name + 8,
				    RULES_DETAIL_KEY_MAX);
		f->id = RULES_F_DETAIL;
		f->detail = dup(p, n, name + 8);
		return f->detail ? 0 : -1;
	}
	for (size_t i = 0; i < N_FIELDS; i++)
		if (strcmp(field_table[i].name, name) == 0 && (field_table[i].use & use)) {
			f->id = field_table[i].id;
			f->detail = NULL;
			return 0;
		}
	char list[256];
	size_t o = 0;
	list[0] = '\0';
	for (size_t i = 0; i < N_FIELDS; i++)
		if (field_table[i].use & use)
			o += (size_t)errq_snprintf(list + o, sizeof(list) - o, "%s, ", field_table[i].name);
	errq_snprintf(list + o, sizeof(list) - o, "details.KEY");
	if (use == F_MATCH)
		return fail(p, n, path, "unknown field (expected one of: %s)", list);
	return fail(p, n, path, "'%s' is not a field to group by (expected one of: %s)", name, list);
}

static bool same_field(const struct rules_field *a, const struct rules_field *b)
{
	return a->id == b->id && (a->id != RULES_F_DETAIL || strcmp(a->detail, b->detail) == 0);
}

/* ---- notifiers ---- */

static bool url_ok(const char *s)
{
	const char *host;
	if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else
		return false;
	if (!*host || *host == '/' || strlen(s) >= RULES_URL_MAX)
		return false;
	for (const char *q = s; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return false;
	return true;
}

static bool header_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > RULES_HEADER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) /* RFC 9110 token */
		if (!isalnum((unsigned char)s[i]) && !strchr("!#$%&'*+-.^_`|~", s[i]))
			return false;
	return true;
}

static int parse_headers(struct parser *p, yaml_node_t *n, struct rules_notifier *nt)
{
	static const char *const reserved[] = {"content-length", "content-type", "transfer-encoding",
					       "idempotency-key", NULL};
	if (is_null(n))
		return 0;
	if (want_mapping(p, n, "headers", "{Authorization: \"Bearer ...\"}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
		const char *k = errq_yaml_scalar(kn);
		char path[RULES_HEADER_NAME_MAX + 16];
		if (!k || !header_name_ok(k))
			return fail(p, kn, "headers", "'%s' is not a header name", k ? k : "(not a string)");
		errq_snprintf(path, sizeof(path), "headers.%s", k);
		for (int i = 0; reserved[i]; i++)
			if (strcasecmp(k, reserved[i]) == 0)
				return fail(p, kn, path, "set by errq, cannot be configured");
		for (size_t i = 0; i < nt->n_headers; i++)
			if (strcasecmp(nt->headers[i].name, k) == 0)
				return fail(p, kn, path, "set twice");
		if (nt->n_headers == RULES_MAX_HEADERS)
			return fail(p, kn, path, "more than %d headers", RULES_MAX_HEADERS);
		const char *v = want_scalar(p, vn, path);
		if (!v)
			return -1;
		if (strlen(v) > RULES_HEADER_VALUE_MAX || strpbrk(v, "\r\n"))
			return fail(p, vn, path, "a header value is one line of at most %d bytes", RULES_HEADER_VALUE_MAX);
		struct rules_header *h = &nt->headers[nt->n_headers];
		if (!(h->name = dup(p, kn, k)) || !(h->value = dup(p, vn, v)))
			return -1;
		nt->n_headers++;
	}
	return 0;
}

static int parse_notifier(struct parser *p, yaml_node_t *n, size_t index, struct rules_notifier *nt)
{
	enum { K_NAME, K_TYPE, K_URL, K_TIMEOUT, K_MAX_ATTEMPTS, K_HEADERS, K_SECRET };
	static const char *const keys[] = {"name", "type", "url", "timeout", "max_attempts", "headers", "secret", NULL};
	static const char *const types[] = {"webhook", "log", NULL};
	uint32_t seen = 0;
	uint64_t u;
	errq_snprintf(p->what, sizeof(p->what), "notifier #%zu: ", index + 1);
	if (want_mapping(p, n, NULL, "{name: ops, type: webhook, url: \"http://...\"}"))
		return -1;
	/* name and type first: messages name the notifier, and other keys depend on the type */
	yaml_node_t *name_n = find_value(p, n, "name"), *type_n = find_value(p, n, "type");
	if (!name_n)
		return fail(p, n, "name", "missing");
	const char *name = get_name(p, name_n, "name");
	if (!name)
		return -1;
	errq_snprintf(p->what, sizeof(p->what), "notifier '%s': ", name);
	for (size_t i = 0; i < index; i++)
		if (strcmp(p->rs->notifiers[i].name, name) == 0)
			return fail(p, name_n, "name", "a notifier '%s' is already defined at line %d", name,
				    p->rs->notifiers[i].line);
	if (!type_n)
		return fail(p, n, "type", "missing (webhook or log)");
	int type;
	if (get_choice(p, type_n, "type", types, &type))
		return -1;
	if (!(nt->name = dup(p, name_n, name)))
		return -1;
	nt->line = errq_yaml_line(n);
	nt->type = (enum rules_notifier_type)type;
	nt->timeout_ns = RULES_DEFAULT_TIMEOUT_NS;
	nt->max_attempts = RULES_DEFAULT_MAX_ATTEMPTS;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
		int k = map_key(p, kn, "", keys, &seen);
		if (k < 0)
			return -1;
		if (k >= K_URL && nt->type != RULES_NOTIFIER_WEBHOOK)
			return fail(p, kn, keys[k], "only for webhook notifiers");
		switch (k) {
		case K_NAME:
		case K_TYPE:
			break;
		case K_URL: {
			const char *v = want_scalar(p, vn, "url");
			if (!v)
				return -1;
			if (!url_ok(v))
				return fail(p, vn, "url", "'%s' is not an http:// or https:// URL (at most %d bytes)", v,
					    RULES_URL_MAX - 1);
			if (!(nt->url = dup(p, vn, v)))
				return -1;
			break;
		}
		case K_TIMEOUT:
			if (get_duration(p, vn, "timeout", RULES_MIN_TIMEOUT_NS, RULES_MAX_TIMEOUT_NS, false, &nt->timeout_ns))
				return -1;
			break;
		case K_MAX_ATTEMPTS:
			if (get_uint(p, vn, "max_attempts", 1, RULES_MAX_ATTEMPTS, &u))
				return -1;
			nt->max_attempts = (uint32_t)u;
			break;
		case K_HEADERS:
			if (parse_headers(p, vn, nt))
				return -1;
			break;
		case K_SECRET: {
			const char *v = want_scalar(p, vn, "secret");
			if (!v)
				return -1;
			if (!*v || strlen(v) > RULES_SECRET_MAX)
				return fail(p, vn, "secret", "a secret is 1 to %d bytes", RULES_SECRET_MAX);
			if (!(nt->secret = dup(p, vn, v)))
				return -1;
			break;
		}
		}
	}
	if (nt->type == RULES_NOTIFIER_WEBHOOK && !nt->url)
		return fail(p, n, "url", "missing (a webhook notifier needs one)");
	return 0;
}

static int parse_notifiers(struct parser *p, yaml_node_t *n)
{
	if (is_null(n))
		return 0;
	if (want_list(p, n, "notifiers", "[{name: ops, type: webhook, url: \"http://...\"}]"))
		return -1;
	size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > RULES_MAX_NOTIFIERS)
		return fail(p, n, "notifiers", "more than %d notifiers", RULES_MAX_NOTIFIERS);
	if (!(p->rs->notifiers = zalloc(p, n, count * sizeof(struct rules_notifier))))
		return -1;
	FOR_ITEMS(n, it)
	{
		size_t i = p->rs->n_notifiers;
		if (parse_notifier(p, node(p, *it), i, &p->rs->notifiers[i]))
			return -1;
		p->rs->n_notifiers++;
	}
	p->what[0] = '\0';
	return 0;
}

/* ---- rules ---- */

static int parse_match(struct parser *p, yaml_node_t *n, struct rule *r, int *lines)
{
	if (is_null(n))
		return 0;
	if (want_mapping(p, n, "match", "{service: checkout, error_type: \"Timeout*\"}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
		const char *k = errq_yaml_scalar(kn);
		char path[RULES_DETAIL_KEY_MAX + 32];
		struct rules_field f;
		if (!k)
			return fail(p, kn, "match", "a field name must be a plain string");
		errq_snprintf(path, sizeof(path), "match.%s", k);
		if (get_field(p, kn, path, k, F_MATCH, &f))
			return -1;
		for (size_t i = 0; i < r->n_match; i++)
			if (same_field(&r->match[i].field, &f))
				return fail(p, kn, path, "set twice");
		if (r->n_match == RULES_MAX_MATCH)
			return fail(p, kn, path, "more than %d match entries", RULES_MAX_MATCH);
		const char *v = want_scalar(p, vn, path);
		if (!v)
			return -1;
		struct rules_match *m = &r->match[r->n_match];
		m->field = f;
		if (f.id == RULES_F_HANDLED) {
			if (strcmp(v, "true") && strcmp(v, "false"))
				return fail(p, vn, path, "'%s' is not true or false", v);
			m->glob = strcmp(v, "true") == 0 ? "true" : "false";
		} else {
			if (strlen(v) > RULES_GLOB_MAX)
				return fail(p, vn, path, "longer than %d bytes", RULES_GLOB_MAX);
			if (!(m->glob = dup(p, vn, v)))
				return -1;
		}
		lines[r->n_match++] = errq_yaml_line(kn);
	}
	return 0;
}

static int parse_group_by(struct parser *p, yaml_node_t *n, struct rule *r, int *lines)
{
	if (is_null(n))
		return 0;
	if (want_list(p, n, "group_by", "[service, error_type]"))
		return -1;
	FOR_ITEMS(n, it)
	{
		yaml_node_t *vn = node(p, *it);
		const char *v = want_scalar(p, vn, "group_by");
		struct rules_field f;
		if (!v || get_field(p, vn, "group_by", v, F_GROUP, &f))
			return -1;
		for (size_t i = 0; i < r->n_group_by; i++)
			if (same_field(&r->group_by[i], &f))
				return fail(p, vn, "group_by", "'%s' listed twice", v);
		if (r->n_group_by == RULES_MAX_GROUP_BY)
			return fail(p, vn, "group_by", "more than %d fields", RULES_MAX_GROUP_BY);
		lines[r->n_group_by] = errq_yaml_line(vn);
		r->group_by[r->n_group_by++] = f;
	}
	return 0;
}

static int parse_trip(struct parser *p, yaml_node_t *n, struct circuit_config *cfg)
{
	enum { K_FAILURES, K_RATE, K_MIN_CALLS, K_WINDOW };
	static const char *const keys[] = {"failures", "failure_rate", "min_calls", "window", NULL};
	uint32_t seen = 0;
	uint64_t u;
	yaml_node_t *min_calls_n = NULL;
	if (want_mapping(p, n, "trip", "{failures: 3, window: 60s}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
		switch (map_key(p, kn, "trip.", keys, &seen)) {
		case K_FAILURES:
			if (get_uint(p, vn, "trip.failures", 1, CIRCUIT_MAX_FAILURES, &u))
				return -1;
			cfg->failures = (uint32_t)u;
			break;
		case K_RATE:
			if (get_decimal(p, vn, "trip.failure_rate", 6, 1, CIRCUIT_RATE_ONE, "in (0, 1]", &u))
				return -1;
			cfg->failure_rate_ppm = (uint32_t)u;
			break;
		case K_MIN_CALLS:
			if (get_uint(p, vn, "trip.min_calls", 1, CIRCUIT_MAX_CALLS, &cfg->min_calls))
				return -1;
			min_calls_n = kn;
			break;
		case K_WINDOW:
			if (get_duration(p, vn, "trip.window", CIRCUIT_MIN_WINDOW_S * ERRQ_NS_PER_SEC,
					 CIRCUIT_MAX_WINDOW_S * ERRQ_NS_PER_SEC, false, &cfg->window_ns))
				return -1;
			if (cfg->window_ns % ERRQ_NS_PER_SEC)
				return fail(p, vn, "trip.window", "'%s' is not a whole number of seconds",
					    errq_yaml_scalar(vn));
			break;
		default:
			return -1;
		}
	}
	if (!(seen & (1u << K_WINDOW)))
		return fail(p, n, "trip.window", "missing (like window: 60s)");
	if (!cfg->failures && !cfg->failure_rate_ppm)
		return fail(p, n, "trip", "needs failures, failure_rate or both");
	if (min_calls_n && !cfg->failure_rate_ppm)
		return fail(p, min_calls_n, "trip.min_calls", "only with failure_rate");
	return 0;
}

static int parse_half_open(struct parser *p, yaml_node_t *n, struct circuit_config *cfg)
{
	enum { K_PROBE, K_FAILURES, K_SUCCESSES };
	static const char *const keys[] = {"probe", "failures", "successes", NULL};
	uint32_t seen = 0;
	uint64_t u;
	if (want_mapping(p, n, "half_open", "{probe: 30s, failures: 1}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
		switch (map_key(p, kn, "half_open.", keys, &seen)) {
		case K_PROBE:
			if (get_duration(p, vn, "half_open.probe", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_TIMEOUT_NS, false,
					 &cfg->probe_ns))
				return -1;
			break;
		case K_FAILURES:
			if (get_uint(p, vn, "half_open.failures", 1, CIRCUIT_MAX_FAILURES, &u))
				return -1;
			cfg->probe_failures = (uint32_t)u;
			break;
		case K_SUCCESSES:
			if (get_uint(p, vn, "half_open.successes", 0, CIRCUIT_MAX_CALLS, &cfg->probe_successes))
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
	if (want_mapping(p, n, "backoff", "{factor: 2, max: 30m}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
		switch (map_key(p, kn, "backoff.", keys, &seen)) {
		case K_FACTOR:
			if (get_decimal(p, vn, "backoff.factor", 3, CIRCUIT_FACTOR_ONE, CIRCUIT_MAX_FACTOR,
					"from 1 to 100", &u))
				return -1;
			cfg->backoff_factor = (uint32_t)u;
			break;
		case K_MAX:
			if (get_duration(p, vn, "backoff.max", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_TIMEOUT_NS, false,
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
	if (is_null(n))
		return 0;
	if (want_list(p, n, "notify", "[ops]"))
		return -1;
	FOR_ITEMS(n, it)
	{
		yaml_node_t *vn = node(p, *it);
		const char *v = want_scalar(p, vn, "notify");
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
				return fail(p, vn, "notify", "unknown notifier '%s' (no notifiers are defined)", v);
			return fail(p, vn, "notify", "unknown notifier '%s' (defined: %s)", v, list);
		}
		for (size_t j = 0; j < r->n_notify; j++)
			if (r->notify[j] == i)
				return fail(p, vn, "notify", "'%s' listed twice", v);
		if (r->n_notify == RULES_MAX_NOTIFY)
			return fail(p, vn, "notify", "more than %d notifiers", RULES_MAX_NOTIFY);
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
		K_MAX_CIRCUITS
	};
	static const char *const keys[] = {"name",	     "match",	      "group_by",      "trip",
					   "recovery_timeout", "half_open",       "backoff",       "severity",
					   "repeat_interval",  "max_event_age",   "notify",        "max_circuits",
					   NULL};
	uint32_t seen = 0;
	uint64_t u;
	int match_lines[RULES_MAX_MATCH], group_lines[RULES_MAX_GROUP_BY], sev;
	yaml_node_t *backoff_max_n = NULL;
	struct circuit_config *cfg = &r->circuit;
	char why[128];

	errq_snprintf(p->what, sizeof(p->what), "rule #%zu: ", index + 1);
	if (want_mapping(p, n, NULL, "{name: ..., match: {...}, trip: {...}}"))
		return -1;
	yaml_node_t *name_n = find_value(p, n, "name");
	if (!name_n)
		return fail(p, n, "name", "missing");
	const char *name = get_name(p, name_n, "name");
	if (!name)
		return -1;
	errq_snprintf(p->what, sizeof(p->what), "rule '%s': ", name);
	for (size_t i = 0; i < index; i++)
		if (strcmp(p->rs->rules[i].name, name) == 0)
			return fail(p, name_n, "name", "a rule '%s' is already defined at line %d", name,
				    p->rs->rules[i].line);
	if (!(r->name = dup(p, name_n, name)))
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
		yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
		int rc = 0;
		switch (map_key(p, kn, "", keys, &seen)) {
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
			rc = get_duration(p, vn, "recovery_timeout", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_TIMEOUT_NS, false,
					  &cfg->recovery_timeout_ns);
			break;
		case K_HALF_OPEN:
			rc = parse_half_open(p, vn, cfg);
			break;
		case K_BACKOFF:
			rc = parse_backoff(p, vn, cfg, &backoff_max_n);
			break;
		case K_SEVERITY:
			if (!(rc = get_choice(p, vn, "severity", severities, &sev)))
				r->severity = (enum rules_severity)sev;
			break;
		case K_REPEAT:
			rc = get_duration(p, vn, "repeat_interval", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_INTERVAL_NS, true,
					  &cfg->repeat_interval_ns);
			break;
		case K_MAX_AGE:
			rc = get_duration(p, vn, "max_event_age", CIRCUIT_MIN_TIMEOUT_NS, CIRCUIT_MAX_INTERVAL_NS, true,
					  &cfg->max_event_age_ns);
			break;
		case K_NOTIFY:
			rc = parse_notify(p, vn, r);
			break;
		case K_MAX_CIRCUITS:
			if (!(rc = get_uint(p, vn, "max_circuits", 1, RULES_MAX_CIRCUITS, &u)))
				r->max_circuits = (uint32_t)u;
			break;
		default:
			rc = -1;
		}
		if (rc)
			return -1;
	}
	if (!(seen & (1u << K_TRIP)))
		return fail(p, n, "trip", "missing (like trip: {failures: 3, window: 60s})");
	/* defaults that depend on other keys */
	if (!backoff_max_n)
		cfg->backoff_max_ns = CIRCUIT_DEFAULT_BACKOFF_MAX_NS > cfg->recovery_timeout_ns
					      ? CIRCUIT_DEFAULT_BACKOFF_MAX_NS
					      : cfg->recovery_timeout_ns;
	else if (cfg->backoff_max_ns < cfg->recovery_timeout_ns) {
		char a[ERRQ_DURATION_BUFSZ], b[ERRQ_DURATION_BUFSZ];
		return fail(p, backoff_max_n, "backoff.max", "%s is shorter than recovery_timeout (%s)",
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
				return fail_line(p, match_lines[i], path,
						 "%s can match only on service and task (all that outcomes carry)", by);
			}
		}
		for (size_t i = 0; i < r->n_group_by; i++) {
			enum rules_field_id id = r->group_by[i].id;
			if (id != RULES_F_SERVICE && id != RULES_F_TASK)
				return fail_line(p, group_lines[i], "group_by",
						 "%s can group only by service and task (all that outcomes carry), not '%s'",
						 by, rules_field_name(&r->group_by[i], f, sizeof(f)));
		}
	}
	if (circuit_config_check(cfg, why, sizeof(why))) /* a backstop: the checks above cover it */
		return fail(p, n, NULL, "%s", why);
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
	if (is_null(n))
		return 0;
	if (want_list(p, n, "rules", "[{name: ..., match: {...}, trip: {...}}]"))
		return -1;
	size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > RULES_MAX_RULES)
		return fail(p, n, "rules", "more than %d rules", RULES_MAX_RULES);
	if (!(p->rs->rules = zalloc(p, n, count * sizeof(struct rule))))
		return -1;
	FOR_ITEMS(n, it)
	{
		size_t i = p->rs->n_rules;
		if (parse_rule(p, node(p, *it), i, &p->rs->rules[i]))
			return -1;
		p->rs->n_rules++;
	}
	p->what[0] = '\0';
	return 0;
}

static int parse_root(struct parser *p)
{
	yaml_node_t *root = errq_yaml_root(&p->y), *notifiers = NULL, *rules = NULL;
	if (!root)
		return 0; /* an empty file */
	if (root->type != YAML_MAPPING_NODE)
		return fail(p, root, NULL, "the top level must be a mapping");
	FOR_PAIRS(root, pr)
	{
		yaml_node_t *kn = node(p, pr->key);
		const char *k = errq_yaml_scalar(kn);
		yaml_node_t **slot = NULL;
		if (k && strcmp(k, "notifiers") == 0)
			slot = &notifiers;
		else if (k && strcmp(k, "rules") == 0)
			slot = &rules;
		if (!slot)
			continue; /* a setting: settings_load_file's business */
		if (*slot)
			return fail(p, kn, k, "set twice");
		*slot = node(p, pr->value);
	}
	/* notifiers first: rules name them */
	if (notifiers && parse_notifiers(p, notifiers))
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

/* ---- matching and keys ---- */

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* The event's value of f; NULL when the event has no such detail. */
static const char *event_value(const struct rule_event *ev, const struct rules_field *f)
{
	switch (f->id) {
	case RULES_F_SERVICE:
		return or_empty(ev->service);
	case RULES_F_ENVIRONMENT:
		return or_empty(ev->environment);
	case RULES_F_TASK:
		return or_empty(ev->task);
	case RULES_F_ERROR_TYPE:
		return or_empty(ev->error_type);
	case RULES_F_ERROR_CODE:
		return or_empty(ev->error_code);
	case RULES_F_FINGERPRINT:
		return or_empty(ev->fingerprint);
	case RULES_F_HANDLED:
		return ev->handled ? "true" : "false";
	case RULES_F_DETAIL:
		for (size_t i = 0; i < ev->n_details; i++)
			if (ev->detail_keys[i] && strcmp(ev->detail_keys[i], f->detail) == 0)
				return or_empty(ev->detail_values[i]);
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

struct keybuf {
	char *p;
	size_t cap, len;
};

static void kb_put(struct keybuf *k, char c)
{
	if (k->len + 1 < k->cap)
		k->p[k->len++] = c;
}

static void kb_puts(struct keybuf *k, const char *s)
{
	for (; *s; s++)
		kb_put(k, *s);
}

/* Builds the canonical key from one value per group_by field (NULL = empty). */
static size_t key_build(const struct rule *r, const char *const *values, char *out, size_t outsz)
{
	struct keybuf k = {out, outsz, 0};
	char f[RULES_DETAIL_KEY_MAX + 16];
	if (!outsz)
		return 0;
	for (size_t i = 0; i < r->n_group_by; i++) {
		const char *v = or_empty(values[i]);
		size_t n = errq_utf8_trunc_len(v, strlen(v), RULES_KEY_VALUE_MAX);
		if (i)
			kb_put(&k, ',');
		kb_puts(&k, rules_field_name(&r->group_by[i], f, sizeof(f)));
		kb_put(&k, '=');
		for (size_t j = 0; j < n; j++) {
			if (v[j] == '\\' || v[j] == ',' || v[j] == '=')
				kb_put(&k, '\\');
			kb_put(&k, v[j]);
		}
	}
	out[k.len] = '\0';
	return k.len;
}

size_t rules_key(const struct rule *r, const struct rule_event *ev, char *out, size_t outsz)
{
	const char *values[RULES_MAX_GROUP_BY];
	for (size_t i = 0; i < r->n_group_by; i++)
		values[i] = event_value(ev, &r->group_by[i]);
	return key_build(r, values, out, outsz);
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
		const char *want = strcmp(f, "service") == 0 ? or_empty(service)
				   : strcmp(f, "task") == 0  ? or_empty(task)
							     : NULL;
		if (!want)
			continue;
		size_t n = errq_utf8_trunc_len(want, strlen(want), RULES_KEY_VALUE_MAX);
		if (strlen(v) != n || memcmp(v, want, n) != 0)
			return false;
	}
	return rc == 0;
}

int rules_key_next(const char **p, char *field, size_t fieldsz, char *value, size_t valuesz)
{
	const char *s = *p;
	size_t fl = 0, vl = 0;
	if (!*s)
		return 0;
	for (; *s && *s != '=' && *s != ','; s++) {
		if (*s == '\\')
			return -1;
		if (fl + 1 < fieldsz)
			field[fl++] = *s;
	}
	if (*s != '=' || s == *p)
		return -1;
	for (s++; *s && *s != ','; s++) {
		if (*s == '\\' && !*++s)
			return -1;
		if (vl + 1 < valuesz)
			value[vl++] = *s;
	}
	if (*s == ',' && !*++s)
		return -1; /* a trailing comma */
	if (fieldsz)
		field[fl] = '\0';
	if (valuesz)
		value[vl] = '\0';
	*p = s;
	return 1;
}

int rules_key_canonical(const struct rule *r, const char *in, char *out, size_t outsz, char *err, size_t errsz)
{
	char fields[256], f[RULES_DETAIL_KEY_MAX + 16], name[RULES_DETAIL_KEY_MAX + 16], v[RULES_KEY_VALUE_MAX + 8];
	char values[RULES_MAX_GROUP_BY][RULES_KEY_VALUE_MAX + 8]; /* longer than the cut: key_build cuts */
	const char *vp[RULES_MAX_GROUP_BY];
	uint32_t given = 0;
	const char *p = in;
	int rc;
	size_t o = 0;
	fields[0] = '\0';
	for (size_t i = 0; i < r->n_group_by && o < sizeof(fields); i++)
		o += (size_t)errq_snprintf(fields + o, sizeof(fields) - o, "%s%s", i ? ", " : "",
					   rules_field_name(&r->group_by[i], name, sizeof(name)));
	if (!r->n_group_by) {
		if (*in) {
			errq_snprintf(err, errsz, "rule '%s' has no group_by: its only key is empty", r->name);
			return -1;
		}
		errq_snprintf(out, outsz, "%s", "");
		return 0;
	}
	if (strcmp(in, RULES_OVERFLOW_KEY) == 0) {
		errq_snprintf(out, outsz, "%s", RULES_OVERFLOW_KEY);
		return 0;
	}
	while ((rc = rules_key_next(&p, f, sizeof(f), v, sizeof(v))) == 1) {
		size_t i;
		for (i = 0; i < r->n_group_by; i++)
			if (strcmp(rules_field_name(&r->group_by[i], name, sizeof(name)), f) == 0)
				break;
		if (i == r->n_group_by) {
			errq_snprintf(err, errsz, "rule '%s' does not group by '%s' (its key fields: %s)", r->name, f,
				      fields);
			return -1;
		}
		if (given & (1u << i)) {
			errq_snprintf(err, errsz, "field '%s' given twice", f);
			return -1;
		}
		given |= 1u << i;
		memcpy(values[i], v, sizeof(v));
		vp[i] = values[i];
	}
	if (rc < 0) {
		errq_snprintf(err, errsz,
			      "'%s' is not a key (field=value,field=value; escape '\\', ',' and '=' with '\\')", in);
		return -1;
	}
	for (size_t i = 0; i < r->n_group_by; i++)
		if (!(given & (1u << i))) {
			errq_snprintf(err, errsz, "missing field '%s' (rule '%s' key fields: %s)",
				      rules_field_name(&r->group_by[i], f, sizeof(f)), r->name, fields);
			return -1;
		}
	if (outsz < RULES_KEY_MAX) {
		errq_snprintf(err, errsz, "key buffer smaller than RULES_KEY_MAX");
		return -1;
	}
	key_build(r, vp, out, outsz);
	return 0;
}
