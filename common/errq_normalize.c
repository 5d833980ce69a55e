/* errq_normalize.c: the message normalizer (the rules are in errq_normalize.h).
 *
 * One pass over the message.  At each position the rules are tried in the header's order;
 * each scan is bounded by its shape (a UUID is 36 bytes, an address 47) except three that
 * follow a run to its end: a quoted value (its closing quote), an e-mail's local part and a
 * token.  A failed quote scan means that quote character does not occur again, and a failed
 * e-mail, token, query or IPv6 scan records how far it read (struct norm's *_skip) so that
 * the positions inside do not scan it again: no input makes the pass quadratic.  Character
 * classes are ASCII tests, not <ctype.h>, so the locale cannot change a fingerprint. */
#include "errq_normalize.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "errq_banned.h"

/* One table lookup per class test (the scans below test every byte several times). */
enum { C_DIGIT = 1, C_UPPER = 2, C_LOWER = 4, C_HEX = 8, C_SPACE = 16, C_USCORE = 32, C_TOKSYM = 64 };
static const uint8_t cls[256] = {
    ['0' ... '9'] = C_DIGIT | C_HEX,
    ['A' ... 'F'] = C_UPPER | C_HEX,
    ['G' ... 'Z'] = C_UPPER,
    ['a' ... 'f'] = C_LOWER | C_HEX,
    ['g' ... 'z'] = C_LOWER,
    ['_'] = C_USCORE,
    [' '] = C_SPACE, ['\t'] = C_SPACE, ['\n'] = C_SPACE, ['\r'] = C_SPACE, ['\f'] = C_SPACE, ['\v'] = C_SPACE,
    ['-'] = C_TOKSYM, ['+'] = C_TOKSYM, ['.'] = C_TOKSYM,
};

static inline unsigned cl(char c)
{
	return cls[(unsigned char)c];
}

static inline bool is_digit(char c)
{
	return cl(c) & C_DIGIT;
}

static inline bool is_upper(char c)
{
	return cl(c) & C_UPPER;
}

static inline bool is_lower(char c)
{
	return cl(c) & C_LOWER;
}

static inline bool is_alpha(char c)
{
	return cl(c) & (C_UPPER | C_LOWER);
}

static inline bool is_hex(char c)
{
	return cl(c) & C_HEX;
}

static inline bool is_word(char c)
{
	return cl(c) & (C_DIGIT | C_UPPER | C_LOWER | C_USCORE);
}

static inline bool is_space(char c)
{
	return cl(c) & C_SPACE;
}

struct norm {
	char *out;
	size_t o, cap; /* bytes written; room (out_sz - 1) */
	bool full;
	/* positions before which a rule already failed for the run it scanned */
	size_t email_skip, token_skip, query_skip, ipv6_skip;
};

/* A placeholder: whole, or the output ends here. */
static void put_ph(struct norm *n, const char *ph)
{
	size_t l = strlen(ph);
	if (n->o + l > n->cap) {
		n->full = true;
		return;
	}
	memcpy(n->out + n->o, ph, l);
	n->o += l;
}

/* Literal bytes: as many as fit. */
static void put_lit(struct norm *n, const char *p, size_t l)
{
	if (n->o + l > n->cap) {
		l = n->cap - n->o;
		n->full = true;
	}
	memcpy(n->out + n->o, p, l);
	n->o += l;
}

static size_t digits(const char *p, size_t max)
{
	size_t i = 0;
	while (i < max && is_digit(p[i]))
		i++;
	return i;
}

/* hh:mm[:ss[.frac]] (hour 1-2 digits); need_seconds for a time outside a date. */
static size_t time_len(const char *p, bool need_seconds)
{
	size_t h = digits(p, 3);
	if (h < 1 || h > 2 || p[h] != ':' || digits(p + h + 1, 3) != 2)
		return 0;
	size_t i = h + 3;
	if (p[i] == ':' && digits(p + i + 1, 3) == 2) {
		i += 3;
		if ((p[i] == '.' || p[i] == ',') && is_digit(p[i + 1]))
			i += 1 + digits(p + i + 1, 12);
	} else if (need_seconds) {
		return 0;
	}
	return i;
}

/* An ISO 8601 date, date and time, or a bare time with seconds; a zone after a time. */
static size_t ts_len(const char *p)
{
	size_t i, t = 0;
	if (digits(p, 5) == 4 && p[4] == '-' && digits(p + 5, 3) == 2 && p[7] == '-' && digits(p + 8, 3) == 2) {
		i = 10;
		if ((p[10] == 'T' || p[10] == 't' || p[10] == ' ' || p[10] == '_') && (t = time_len(p + 11, false)))
			i = 11 + t;
	} else if ((t = time_len(p, true))) {
		i = t;
	} else {
		return 0;
	}
	if (t) {
		if (p[i] == 'Z' || p[i] == 'z') {
			i++;
		} else if ((p[i] == '+' || p[i] == '-') && digits(p + i + 1, 3) == 2) {
			i += 3;
			if (p[i] == ':' && digits(p + i + 1, 3) == 2)
				i += 3;
			else if (digits(p + i, 3) == 2)
				i += 2;
		}
	}
	return is_word(p[i]) ? 0 : i;
}

/* A UUID: 8-4-4-4-12 hex digits, not inside a longer word. */
static size_t uuid_len(const char *p)
{
	static const uint8_t groups[] = {8, 4, 4, 4, 12};
	size_t i = 0;
	for (int g = 0; g < 5; g++) {
		for (int k = 0; k < groups[g]; k++, i++)
			if (!is_hex(p[i]))
				return 0;
		if (g < 4 && p[i++] != '-')
			return 0;
	}
	return is_word(p[i]) ? 0 : i;
}

/* ":port" (1-5 digits, not followed by a word character) at p, or 0. */
static size_t port_len(const char *p)
{
	if (p[0] != ':')
		return 0;
	size_t d = digits(p + 1, 6);
	return d >= 1 && d <= 5 && !is_word(p[1 + d]) ? 1 + d : 0;
}

/* a.b.c.d with an optional port; not a longer dotted number ("1.2.3.4.5"). */
static size_t ipv4_len(const char *p)
{
	size_t i = 0;
	for (int k = 0; k < 4; k++) {
		size_t d = digits(p + i, 4);
		if (d < 1 || d > 3)
			return 0;
		i += d;
		if (k < 3 && p[i++] != '.')
			return 0;
	}
	if (is_word(p[i]) || (p[i] == '.' && is_digit(p[i + 1])))
		return 0;
	return i + port_len(p + i);
}

/* An IPv6 address: groups of 1-4 hex digits separated by ':', either with one "::" (at most
 * seven groups) or exactly eight groups, holding a digit (so "dead::beef" is not one).
 * *scanned is how far it read. */
static size_t ipv6_len(const char *p, size_t *scanned)
{
	size_t i = 0;
	int groups = 0;
	bool dbl = false, digit = false, ok = false;
	if (p[0] == ':') {
		if (p[1] != ':')
			goto out;
		dbl = true;
		i = 2;
	}
	for (;;) {
		size_t d = 0;
		while (d < 5 && is_hex(p[i])) {
			digit |= is_digit(p[i]);
			i++;
			d++;
		}
		if (d > 4)
			goto out;
		if (d == 0)
			break; /* only after "::" (a single ':' below needs a hex digit next) */
		if (++groups > 8)
			goto out;
		if (p[i] == ':' && p[i + 1] == ':') {
			if (dbl)
				goto out;
			dbl = true;
			i += 2;
		} else if (p[i] == ':' && is_hex(p[i + 1])) {
			i++;
		} else {
			break;
		}
	}
	ok = digit && !is_word(p[i]) && (dbl ? groups <= 7 : groups == 8);
out:
	*scanned = i;
	return ok ? i : 0;
}

/* ipv6_len at s + at, unless an earlier scan failed over this position: then a scan from
 * here would re-read the same hex digits and colons (bounded, but up to ~40 bytes a word). */
static size_t ipv6_at(struct norm *n, const char *s, size_t at)
{
	size_t scanned, l;
	if (at < n->ipv6_skip)
		return 0;
	if (!(l = ipv6_len(s + at, &scanned)))
		n->ipv6_skip = at + scanned;
	return l;
}

/* [v6] with an optional port, at a '['. */
static size_t ipv6_bracketed_len(struct norm *n, const char *s, size_t at)
{
	const char *p = s + at;
	size_t l = ipv6_at(n, s, at + 1);
	if (!l || p[1 + l] != ']')
		return 0;
	return 2 + l + port_len(p + 2 + l);
}

static bool email_local(char c)
{
	return is_word(c) || c == '.' || c == '%' || c == '+' || c == '-';
}

/* local@domain.tld at a word start (the domain two or more labels, the last letters only). */
static size_t email_len(struct norm *n, const char *s, size_t at)
{
	const char *p = s + at;
	size_t i = 0;
	if (at < n->email_skip)
		return 0;
	while (email_local(p[i]))
		i++;
	size_t at_sign = i;
	int labels = 0;
	bool alpha_last = false;
	if (p[i] == '@') {
		for (i++;;) {
			size_t l = 0;
			bool alpha = true;
			while (is_alpha(p[i + l]) || is_digit(p[i + l]) || p[i + l] == '-') {
				alpha &= is_alpha(p[i + l]);
				l++;
			}
			if (!l)
				break;
			labels++;
			alpha_last = alpha && l >= 2;
			i += l;
			if (p[i] == '.' && (is_alpha(p[i + 1]) || is_digit(p[i + 1])))
				i++;
			else
				break;
		}
	}
	if (at_sign && labels >= 2 && alpha_last && !is_word(p[i]))
		return i;
	/* every word start inside the local part reaches the same '@' (or none): fails too */
	n->email_skip = at + at_sign;
	return 0;
}

static bool token_char(char c)
{
	return cl(c) & (C_DIGIT | C_UPPER | C_LOWER | C_USCORE | C_TOKSYM);
}

/* A base64-ish token at a word start (errq_normalize.h says which). */
static size_t token_len(struct norm *n, const char *s, size_t at)
{
	const char *p = s + at;
	if (at < n->token_skip)
		return 0;
	size_t i = 0, ndigit = 0, nalpha = 0, pairs = 0, changes = 0;
	int prev = 0; /* class of the previous byte: 0 none/symbol, 1 digit, 2 upper, 3 lower */
	for (; token_char(p[i]); i++) {
		unsigned k = cl(p[i]);
		int c = k & C_DIGIT ? 1 : k & C_UPPER ? 2 : k & C_LOWER ? 3 : 0;
		ndigit += c == 1;
		nalpha += c >= 2;
		if (c && prev) {
			pairs++;
			changes += c != prev;
		}
		prev = c;
	}
	size_t end = i;
	while (end && (p[end - 1] == '.' || p[end - 1] == '-')) /* a sentence's full stop */
		end--;
	if (end >= ERRQ_NORMALIZE_TOKEN_MIN && ndigit >= 2 && nalpha >= 2 && 3 * changes >= pairs) {
		if (end == i)
			for (int pad = 0; pad < 2 && p[end] == '='; pad++)
				end++;
		return end;
	}
	n->token_skip = at + i;
	return 0;
}

/* A time or size unit (case-insensitive) spelled by the letters p[0..l): 1 time (ns us ms
 * s sec secs m min mins h hr hrs d), 2 size (b k kb kib mb mib gb gib tb tib pb), 0 neither.
 * Compared letter by letter: a compound duration ("1h2m3s...") asks once per unit. */
static int unit_kind(const char *p, size_t l)
{
	char a = (char)(p[0] | 0x20), b = l > 1 ? (char)(p[1] | 0x20) : 0, c = l > 2 ? (char)(p[2] | 0x20) : 0;
	switch (l) {
	case 1:
		return a == 's' || a == 'm' || a == 'h' || a == 'd' ? 1 : a == 'b' || a == 'k' ? 2 : 0;
	case 2:
		if ((b == 's' && (a == 'n' || a == 'u' || a == 'm')) || (a == 'h' && b == 'r'))
			return 1;
		return b == 'b' && (a == 'k' || a == 'm' || a == 'g' || a == 't' || a == 'p') ? 2 : 0;
	case 3:
		if ((a == 's' && b == 'e' && c == 'c') || (a == 'm' && b == 'i' && c == 'n') ||
		    (a == 'h' && b == 'r' && c == 's'))
			return 1;
		return b == 'i' && c == 'b' && (a == 'k' || a == 'm' || a == 'g' || a == 't') ? 2 : 0;
	case 4:
		return (p[3] | 0x20) == 's' && ((a == 's' && b == 'e' && c == 'c') || (a == 'm' && b == 'i' && c == 'n'))
			   ? 1
			   : 0;
	default:
		return 0;
	}
}

/* A word that starts with a digit: a number, a number with units ("1h30m", "3.5s", "10MB")
 * or neither (returns 0).  *ph is the placeholder. */
static size_t number_len(const char *p, const char **ph)
{
	size_t i = 0;
	int kind = 0;
	for (;;) {
		i += digits(p + i, SIZE_MAX);
		while ((p[i] == '.' || p[i] == '_') && is_digit(p[i + 1]))
			i += 1 + digits(p + i + 1, SIZE_MAX);
		if (!is_word(p[i]))
			break; /* a number alone, or units that end in a number: "<n>" only alone */
		size_t l = 0;
		while (is_alpha(p[i + l]))
			l++;
		int k = unit_kind(p + i, l);
		if (!k || (kind && k != kind))
			return 0;
		kind = k;
		i += l;
		if (!is_digit(p[i]))
			break;
	}
	if (is_word(p[i]) || (kind && is_digit(p[i - 1])))
		return 0;
	*ph = kind == 1 ? "<duration>" : kind == 2 ? "<size>" : "<n>";
	return i;
}

/* A whole word of hex digits, ERRQ_NORMALIZE_HEX_MIN or longer, holding a digit. */
static size_t hexword_len(const char *p)
{
	size_t i = 0;
	bool digit = false;
	while (is_hex(p[i])) {
		digit |= is_digit(p[i]);
		i++;
	}
	return digit && i >= ERRQ_NORMALIZE_HEX_MIN && !is_word(p[i]) ? i : 0;
}

/* The rules that start at a word start; 0 when none matches. */
static size_t at_word(struct norm *n, const char *s, size_t at, const char **ph)
{
	const char *p = s + at;
	size_t l, hl = 0, wl;
	bool digit = false;
	while (is_hex(p[hl]))
		hl++;
	for (wl = 0; is_word(p[wl]); wl++)
		digit |= is_digit(p[wl]);
	/* A word without a digit can only start a UUID, an e-mail address or a token, each of
	 * which goes on past the word with one of these (or an IPv6 address, with a colon): the common case (an ordinary word)
	 * answered without the scans below. */
	if (!digit && (!p[wl] || !strchr("-+.@%:", p[wl])))
		return 0;
	if (hl == 8 && p[8] == '-' && (l = uuid_len(p))) {
		*ph = "<uuid>";
		return l;
	}
	if (is_digit(p[0])) {
		if ((l = ts_len(p))) {
			*ph = "<ts>";
			return l;
		}
		if ((l = ipv4_len(p))) {
			*ph = "<ip>";
			return l;
		}
		if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && is_hex(p[2])) {
			l = 2;
			while (is_hex(p[l]))
				l++;
			*ph = "<hex>";
			return l;
		}
	}
	if (hl && hl <= 4 && p[hl] == ':' && (l = ipv6_at(n, s, at))) {
		*ph = "<ip>";
		return l;
	}
	if ((l = email_len(n, s, at))) {
		*ph = "<email>";
		return l;
	}
	if (is_digit(p[0]) && (l = number_len(p, ph)))
		return l;
	if ((l = hexword_len(p))) {
		*ph = "<hex>";
		return l;
	}
	if ((l = token_len(n, s, at))) {
		*ph = "<token>";
		return l;
	}
	return 0;
}

/* "?k=v..." after a non-space, up to a space or a quote, holding an '='. */
static size_t query_len(struct norm *n, const char *s, size_t at)
{
	const char *p = s + at;
	if (at == 0 || is_space(p[-1]) || at < n->query_skip || !(is_word(p[1]) || p[1] == '%'))
		return 0;
	size_t i = 1;
	bool eq = false;
	while (p[i] && !is_space(p[i]) && !strchr("\"'`<>", p[i]))
		eq |= p[i++] == '=';
	if (eq)
		return i;
	n->query_skip = at + i;
	return 0;
}

size_t errq_normalize_message(const char *s, char *out, size_t out_sz)
{
	if (!out_sz)
		return 0;
	struct norm n = {.out = out, .cap = out_sz - 1};
	size_t i = 0;
	while (s[i] && !n.full) {
		char c = s[i];
		bool word_start = i == 0 || !is_word(s[i - 1]);
		const char *ph = NULL, *end;
		size_t l = 0;
		if (is_word(c)) {
			if (word_start && (l = at_word(&n, s, i, &ph))) {
				put_ph(&n, ph);
			} else { /* copy the rest of the word: nothing starts inside it */
				while (is_word(s[i + l]))
					l++;
				put_lit(&n, s + i, l);
			}
		} else if ((c == '"' || c == '`' || (c == '\'' && word_start)) && (end = strchr(s + i + 1, c))) {
			put_ph(&n, "<str>");
			l = (size_t)(end - (s + i)) + 1;
		} else if (c == '?' && (l = query_len(&n, s, i))) {
			put_ph(&n, "?<query>");
		} else if (c == '[' && (l = ipv6_bracketed_len(&n, s, i))) {
			put_ph(&n, "<ip>");
		} else if (c == ':' && word_start && (l = ipv6_at(&n, s, i))) {
			put_ph(&n, "<ip>");
		} else {
			put_lit(&n, s + i, l = 1);
		}
		i += l;
	}
	out[n.o] = '\0';
	return n.o;
}
