/* cli_keys.c: what the errq CLI parses and prints as identifiers: key=value lists, circuit keys, silence matchers and alert ids.  Pure: see cli_fmt.h. */
#include "cli_fmt.h"
#include "cli_args.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "errq_banned.h"


/* ---- key=value lists ---- */

static bool key_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

void cli_kv_free(struct cli_kv *kv, size_t n)
{
	if (!kv)
		return;
	for (size_t k = 0; k < n; k++) {
		free(kv[k].key);
		free(kv[k].value);
	}
	free(kv);
}

int cli_kv_parse(const char *s, struct cli_kv **kvp, size_t *np, char *err, size_t errlen)
{
	int rc = -1;
	struct cli_kv *kv = NULL;
	size_t n = 0;
	struct errq_buf val;
	errq_buf_init(&val, 4096);
	const char *p = s;

	if (!*p) {
		errq_snprintf(err, errlen, "empty key (expected field=value,...)");
		goto out;
	}
	for (;;) {
		const char *k0 = p;
		while (key_char(*p))
			p++;
		size_t klen = (size_t)(p - k0);
		if (!klen || *p != '=') {
			errq_snprintf(err, errlen, "expected field=value at '%.40s'", k0);
			goto out;
		}
		p++;
		errq_buf_reset(&val);
		while (*p && *p != ',') {
			if (*p == '\\' && (p[1] == ',' || p[1] == '=' || p[1] == '\\'))
				p++;
			if (errq_buf_add(&val, p, 1)) {
				errq_snprintf(err, errlen, "value too long");
				goto out;
			}
			p++;
		}
		for (size_t k = 0; k < n; k++) {
			if (strlen(kv[k].key) == klen && !memcmp(kv[k].key, k0, klen)) {
				errq_snprintf(err, errlen, "field '%.*s' given twice", (int)klen, k0);
				goto out;
			}
		}
		if (n == CLI_KV_MAX) {
			errq_snprintf(err, errlen, "more than %d fields", CLI_KV_MAX);
			goto out;
		}
		struct cli_kv *nkv = realloc(kv, (n + 1) * sizeof(*nkv));
		if (!nkv) {
			errq_snprintf(err, errlen, "out of memory");
			goto out;
		}
		kv = nkv;
		kv[n].key = strndup(k0, klen);
		kv[n].value = strdup(val.p ? val.p : "");
		n++;
		if (!kv[n - 1].key || !kv[n - 1].value) {
			errq_snprintf(err, errlen, "out of memory");
			goto out;
		}
		if (!*p)
			break;
		p++; /* ',' */
	}
	*kvp = kv;
	*np = n;
	kv = NULL;
	n = 0;
	rc = 0;
out:
	cli_kv_free(kv, n);
	errq_buf_free(&val);
	return rc;
}

/* ---- circuit keys and silence matchers ---- */

int cli_key_next(const char **p, char *field, size_t fieldsz, char *value, size_t valuesz)
{
	return rules_key_next(p, field, fieldsz, value, valuesz); /* the collector's own reader */
}

/* A JSON string of s, invalid UTF-8 bytes replaced; NULL when out of memory. */
static json_t *json_text(const char *s, struct errq_buf *tmp)
{
	size_t n = strlen(s);
	if (errq_utf8_valid(s, n, NULL))
		return json_stringn(s, n);
	errq_buf_reset(tmp);
	return cli_utf8_fix(tmp, s, n) ? NULL : json_stringn(tmp->p, tmp->len);
}

json_t *cli_key_json(const char *key)
{
	json_t *o = json_object();
	char *field = malloc(CLI_KEY_FIELD_MAX), *value = malloc(CLI_KEY_VALUE_MAX);
	struct errq_buf tmp;
	const char *p = key ? key : "";
	errq_buf_init(&tmp, 4 * CLI_KEY_VALUE_MAX);
	if (!o || !field || !value)
		goto fail;
	while (cli_key_next(&p, field, CLI_KEY_FIELD_MAX, value, CLI_KEY_VALUE_MAX) == 1) {
		json_t *v = json_text(value, &tmp);
		if (!v)
			goto fail;
		if (!errq_utf8_valid(field, strlen(field), NULL)) {
			char *k = NULL;
			errq_buf_reset(&tmp);
			if (cli_utf8_fix(&tmp, field, strlen(field)) || !(k = strdup(tmp.p))) {
				json_decref(v);
				goto fail;
			}
			int rc = json_object_set_new(o, k, v);
			free(k);
			if (rc)
				goto fail;
		} else if (json_object_set_new(o, field, v)) {
			goto fail;
		}
	}
	/* a malformed rest (or "(overflow)") adds nothing */
	free(field);
	free(value);
	errq_buf_free(&tmp);
	return o;
fail:
	json_decref(o);
	free(field);
	free(value);
	errq_buf_free(&tmp);
	return NULL;
}

int cli_matchers_join(const char *const *match, size_t n, char *out, size_t outsz)
{
	struct errq_buf b;
	if (!outsz)
		return -1;
	errq_buf_init_fixed(&b, out, outsz);
	out[0] = '\0';
	for (size_t k = 0; k < n; k++) {
		const char *eq = strchr(match[k], '=');
		if (!eq || (k && errq_buf_add(&b, ",", 1)) || errq_buf_add(&b, match[k], (size_t)(eq - match[k]) + 1))
			return -1;
		for (const char *g = eq + 1; *g; g++) {
			bool esc = *g == '\\' || *g == ',' || *g == '=';
			if ((esc && errq_buf_add(&b, "\\", 1)) || errq_buf_add(&b, g, 1))
				return -1;
		}
	}
	return 0;
}

int cli_alert_id_parse(const char *s, uint8_t out[CLI_ALERT_ID_LEN], char *suffix, size_t suffixsz)
{
	size_t n = strlen(s);
	if (n == 2 * CLI_ALERT_ID_LEN || n == 2 * CLI_ALERT_ID_LEN + 4) {
		char hex[2 * CLI_ALERT_ID_LEN + 1];
		size_t k = 0;
		if (n != 2 * CLI_ALERT_ID_LEN && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-'))
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (n != 2 * CLI_ALERT_ID_LEN && (i == 8 || i == 13 || i == 18 || i == 23))
				continue;
			if (!isxdigit((unsigned char)s[i]))
				return -1;
			hex[k++] = (char)tolower((unsigned char)s[i]);
		}
		hex[k] = '\0';
		return errq_hex_decode(hex, out, CLI_ALERT_ID_LEN) ? -1 : 1;
	}
	if (n < CLI_ALERT_MIN_HEX || n >= 2 * CLI_ALERT_ID_LEN || n >= suffixsz)
		return -1;
	return cli_hex_lower(s, n, suffix);
}

char *cli_alert_short_id(char *buf, size_t n, const uint8_t *id, size_t len)
{
	char hex[2 * CLI_ALERT_ID_LEN + 1];
	if (len > CLI_ALERT_ID_LEN)
		len = CLI_ALERT_ID_LEN;
	errq_hex_encode(id, len, hex);
	size_t h = 2 * len;
	errq_snprintf(buf, n, "%s", hex + (h > CLI_ALERT_SHORT_HEX ? h - CLI_ALERT_SHORT_HEX : 0));
	return buf;
}
