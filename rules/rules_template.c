/* rules_template.c: see rules_template.h. */
#include "rules_template.h"

#include <stdint.h>
#include <string.h>

#include "errq_str.h"

#include "errq_banned.h"

static const char *const field_names[TPL_N_FIELDS] = {
    "rule",    "key",        "severity", "status",   "count",     "window",      "service",
    "environment", "task",   "error_type", "error_code", "message", "link",      "alert_id",
    "reason",  "opened_at", "resolved_at", "event_id", "fingerprint", "collector",
};

const char *rules_tpl_field_name(enum rules_tpl_field f)
{
	return (unsigned)f < TPL_N_FIELDS ? field_names[f] : "?";
}

/* The field named by s[0..n) (spaces around the name allowed), or -1. */
static int field_of(const char *s, size_t n)
{
	while (n && *s == ' ') {
		s++;
		n--;
	}
	while (n && s[n - 1] == ' ')
		n--;
	for (int i = 0; i < TPL_N_FIELDS; i++)
		if (strlen(field_names[i]) == n && memcmp(field_names[i], s, n) == 0)
			return i;
	return -1;
}

int rules_template_check(const char *tpl, bool allow_link, bool one_line, char *err, size_t errsz)
{
	size_t len = strlen(tpl);
	if (!len || len > RULES_TEMPLATE_MAX) {
		errq_snprintf(err, errsz, "a template is 1 to %d bytes", RULES_TEMPLATE_MAX);
		return -1;
	}
	if (one_line && strpbrk(tpl, "\r\n")) {
		errq_snprintf(err, errsz, "must be one line (no CR or LF: it becomes a header)");
		return -1;
	}
	for (const char *p = tpl; (p = strstr(p, "{{"));) {
		const char *end = strstr(p + 2, "}}");
		if (!end) {
			errq_snprintf(err, errsz, "'{{' at byte %zu is not closed by '}}'", (size_t)(p - tpl) + 1);
			return -1;
		}
		int f = field_of(p + 2, (size_t)(end - p - 2));
		size_t n = (size_t)(end - p - 2) > 64 ? 64 : (size_t)(end - p - 2);
		if (f < 0) {
			char known[400];
			size_t k = 0;
			known[0] = '\0';
			for (int i = 0; i < TPL_N_FIELDS; i++)
				k += (size_t)errq_snprintf(known + k, sizeof(known) - k, "%s%s", i ? ", " : "",
							   field_names[i]);
			errq_snprintf(err, errsz, "unknown field '{{%.*s}}' (known: %s)", (int)n, p + 2, known);
			return -1;
		}
		if (f == TPL_LINK && !allow_link) {
			errq_snprintf(err, errsz, "'{{link}}' cannot be used in link_template");
			return -1;
		}
		p = end + 2;
	}
	return 0;
}

/* A writer that stops at a limit and remembers it did. */
struct out {
	char *p;
	size_t len, cap; /* cap: bytes of text that fit (the NUL and the "…" excluded) */
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full)
		return;
	if (n > o->cap - o->len) {
		size_t k = o->cap - o->len;
		while (k && ((unsigned char)s[k] & 0xC0) == 0x80) /* never inside a character */
			k--;
		memcpy(o->p + o->len, s, k);
		o->len += k;
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* s[0..n) whole or not at all (a character, an escape): never half of one at the cut. */
static void put_unit(struct out *o, const char *s, size_t n)
{
	if (o->full)
		return;
	if (n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* The length of the UTF-8 character at s (1 for a stray byte; never past the NUL). */
static size_t char_len(const char *s)
{
	unsigned char c = (unsigned char)*s;
	size_t n = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	for (size_t i = 1; i < n; i++)
		if (!s[i])
			return i;
	return n;
}

static void put_value(struct out *o, const char *v, enum rules_tpl_escape esc)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const char *s = v; *s && !o->full; ) {
		unsigned char c = (unsigned char)*s;
		size_t n = char_len(s);
		if (esc == TPL_ESC_SLACK && (c == '&' || c == '<' || c == '>')) {
			put_unit(o, c == '&' ? "&amp;" : c == '<' ? "&lt;" : "&gt;", c == '&' ? 5 : 4);
		} else if (esc == TPL_ESC_LINE && (c < 0x20 || c == 0x7f)) {
			put_unit(o, " ", 1);
		} else if (esc == TPL_ESC_URL) {
			for (size_t i = 0; i < n && !o->full; i++) {
				unsigned char b = (unsigned char)s[i];
				if ((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || strchr("-._~", b)) {
					put_unit(o, s + i, 1);
				} else {
					char e[3] = {'%', hex[b >> 4], hex[b & 15]};
					put_unit(o, e, 3);
				}
			}
		} else {
			put_unit(o, s, n);
		}
		s += n;
	}
}

size_t rules_template_render(const char *tpl, const char *const values[TPL_N_FIELDS], enum rules_tpl_escape esc,
			     char *out, size_t outsz, bool *cut)
{
	static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */
	size_t room = outsz > RULES_TEMPLATE_OUT_MAX + 1 ? RULES_TEMPLATE_OUT_MAX + 1 : outsz;
	struct out o = {.p = out, .cap = room - 1 - (sizeof(ellipsis) - 1)};
	const char *p = tpl;
	while (*p && !o.full) {
		const char *open = strstr(p, "{{");
		if (!open) {
			put(&o, p, strlen(p));
			break;
		}
		put(&o, p, (size_t)(open - p));
		const char *end = strstr(open + 2, "}}");
		if (!end) { /* checked at load: cannot happen; taken literally */
			put(&o, open, strlen(open));
			break;
		}
		int f = field_of(open + 2, (size_t)(end - open - 2));
		if (f >= 0 && values[f])
			put_value(&o, values[f], esc);
		p = end + 2;
	}
	if (o.full) {
		memcpy(out + o.len, ellipsis, sizeof(ellipsis) - 1);
		o.len += sizeof(ellipsis) - 1;
	}
	out[o.len] = '\0';
	if (cut)
		*cut = o.full;
	return o.len;
}
