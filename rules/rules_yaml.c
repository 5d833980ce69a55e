/* rules_yaml.c: the field and severity names, and the parser's typed YAML getters: each reads
 * one node, checks it against its limits, and on a problem fails with file, line and key. */
#include "rules_int.h"

#include "errq_banned.h"

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

const char *const rules__severities[] = {"critical", "error", "warning", "info", NULL};

const char *rules_severity_name(enum rules_severity s)
{
	return (unsigned)s < 4 ? rules__severities[s] : "unknown";
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

static int vfail(struct parser *p, int line, const char *key, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int vfail(struct parser *p, int line, const char *key, const char *fmt, va_list ap)
{
	char why[512], kb[ERRQ_QUOTE_BUFSZ];
	vsnprintf(why, sizeof(why), fmt, ap);
	if (key) /* a key path holds a details key from the file: quoted in part, like values */
		errq_snprintf(p->err, p->errsz, "'%s' line %d: %skey '%s': %s", p->file, line, p->what,
			      errq_quote(key, kb), why);
	else
		errq_snprintf(p->err, p->errsz, "'%s' line %d: %s%s", p->file, line, p->what, why);
	return -1;
}

int rules__fail_line(struct parser *p, int line, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(p, line, key, fmt, ap);
	va_end(ap);
	return rc;
}

/* Always returns -1 (the caller returns it). */
int rules__fail(struct parser *p, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(p, errq_yaml_line(n), key, fmt, ap);
	va_end(ap);
	return rc;
}

yaml_node_t *rules__node(struct parser *p, int i)
{
	return errq_yaml_node(&p->y, i);
}

bool rules__is_null(const yaml_node_t *n)
{
	const char *v = errq_yaml_scalar(n);
	return v && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0);
}

void *rules__zalloc(struct parser *p, const yaml_node_t *n, size_t size)
{
	void *m = errq_arena_alloc(&p->rs->arena, size ? size : 1);
	if (!m) {
		rules__fail(p, n, NULL, "out of memory (a ruleset may use %u MiB)", RULES_MEMORY_MAX >> 20);
		return NULL;
	}
	memset(m, 0, size);
	return m;
}

char *rules__dup(struct parser *p, const yaml_node_t *n, const char *s)
{
	size_t l = strlen(s);
	char *d = rules__zalloc(p, n, l + 1);
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
int rules__map_key(struct parser *p, const yaml_node_t *kn, const char *prefix, const char *const *keys,
		   uint32_t *seen)
{
	const char *k = errq_yaml_scalar(kn);
	char path[160], list[256];
	if (!k)
		return rules__fail(p, kn, NULL, "a key must be a plain string");
	errq_snprintf(path, sizeof(path), "%s%s", prefix, k);
	int i = key_index(keys, k);
	if (i < 0) {
		join(list, sizeof(list), keys);
		return rules__fail(p, kn, path, "unknown key (expected one of: %s)", list);
	}
	if (*seen & (1u << i))
		return rules__fail(p, kn, path, "set twice");
	*seen |= 1u << i;
	return i;
}

/* The value node of key k in mapping map (the first, if set twice), or NULL. */
yaml_node_t *rules__find_value(struct parser *p, yaml_node_t *map, const char *k)
{
	FOR_PAIRS(map, pr)
	{
		const char *s = errq_yaml_scalar(rules__node(p, pr->key));
		if (s && strcmp(s, k) == 0)
			return rules__node(p, pr->value);
	}
	return NULL;
}

const char *rules__want_scalar(struct parser *p, const yaml_node_t *n, const char *path)
{
	const char *v = errq_yaml_scalar(n);
	if (!v)
		rules__fail(p, n, path, "expected a single value, not a %s",
		     n->type == YAML_MAPPING_NODE ? "mapping" : "list");
	return v;
}

int rules__want_mapping(struct parser *p, const yaml_node_t *n, const char *path, const char *example)
{
	if (n->type == YAML_MAPPING_NODE)
		return 0;
	return rules__fail(p, n, path, "expected a mapping, like %s", example);
}

int rules__want_list(struct parser *p, const yaml_node_t *n, const char *path, const char *example)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return 0;
	return rules__fail(p, n, path, "expected a list, like %s", example);
}

int rules__get_duration(struct parser *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
			bool zero_ok, uint64_t *out)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	char a[ERRQ_DURATION_BUFSZ], b[ERRQ_DURATION_BUFSZ];
	const char *v = rules__want_scalar(p, n, path);
	uint64_t ns;
	if (!v)
		return -1;
	if (errq_parse_duration(v, &ns))
		return rules__fail(p, n, path, "'%s' is not a duration (like 500ms, 10s, 5m, 2h)", errq_quote(v, qb));
	if (ns == 0 && zero_ok) {
		*out = 0;
		return 0;
	}
	if (ns < min || ns > max)
		return rules__fail(p, n, path, "'%s' is out of range (%s%s to %s)", errq_quote(v, qb),
				   zero_ok ? "0s to turn it off, or " : "",
			    errq_fmt_duration(a, min), errq_fmt_duration(b, max));
	*out = ns;
	return 0;
}

int rules__get_uint(struct parser *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
		    uint64_t *out)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	const char *v = rules__want_scalar(p, n, path);
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
	return rules__fail(p, n, path, "'%s' is not an integer in [%" PRIu64 ", %" PRIu64 "]", errq_quote(v, qb),
			   min, max);
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

int rules__get_decimal(struct parser *p, const yaml_node_t *n, const char *path, int digits, uint64_t min,
		       uint64_t max, const char *range, uint64_t *out)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	const char *v = rules__want_scalar(p, n, path);
	uint64_t x;
	if (!v)
		return -1;
	int rc = parse_decimal(v, digits, &x);
	if (rc == -2)
		return rules__fail(p, n, path, "'%s' has more than %d decimals", errq_quote(v, qb), digits);
	if (rc || x < min || x > max)
		return rules__fail(p, n, path, "'%s' is not a number %s", errq_quote(v, qb), range);
	*out = x;
	return 0;
}

int rules__get_choice(struct parser *p, const yaml_node_t *n, const char *path, const char *const *choices,
		      int *out)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	char list[128];
	const char *v = rules__want_scalar(p, n, path);
	if (!v)
		return -1;
	int i = key_index(choices, v);
	if (i < 0) {
		join(list, sizeof(list), choices);
		return rules__fail(p, n, path, "'%s' is not one of: %s", errq_quote(v, qb), list);
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

const char *rules__get_name(struct parser *p, const yaml_node_t *n, const char *path)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	const char *v = rules__want_scalar(p, n, path);
	if (v && !name_ok(v)) {
		rules__fail(p, n, path, "'%s' is not a name (1 to %d letters, digits, '_', '.', '-')", errq_quote(v, qb),
			    RULES_NAME_MAX - 1);
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
int rules__get_field(struct parser *p, const yaml_node_t *n, const char *path, const char *name, unsigned use,
		     struct rules_field *f)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	if (strncmp(name, "details.", 8) == 0) {
		if (!detail_key_ok(name + 8))
			return rules__fail(p, n, path,
				    "'%s' is not a details key (1 to %d bytes, no spaces, ',', '=' or '\\')",
				    errq_quote(name + 8, qb),
				    RULES_DETAIL_KEY_MAX);
		f->id = RULES_F_DETAIL;
		f->detail = rules__dup(p, n, name + 8);
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
		return rules__fail(p, n, path, "unknown field (expected one of: %s)", list);
	return rules__fail(p, n, path, "'%s' is not a field to group by (expected one of: %s)", errq_quote(name, qb),
			   list);
}

bool rules__same_field(const struct rules_field *a, const struct rules_field *b)
{
	return a->id == b->id && (a->id != RULES_F_DETAIL || strcmp(a->detail, b->detail) == 0);
}
