/* rules_key.c: the key codec: "field=value,..." with escaping, read back field by field, and
 * a key typed by a person put in canonical form. */
#include "rules_int.h"

#include "errq_banned.h"

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
size_t rules__key_build(const struct rule *r, const char *const *values, char *out, size_t outsz)
{
	struct keybuf k = {out, outsz, 0};
	char f[RULES_DETAIL_KEY_MAX + 16];
	if (!outsz)
		return 0;
	for (size_t i = 0; i < r->n_group_by; i++) {
		const char *v = rules__or_empty(values[i]);
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
	rules__key_build(r, vp, out, outsz);
	return 0;
}
