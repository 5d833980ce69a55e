/* cli_values.c: the parsers and checks of single flag and argument values of the errq CLI
 * (output formats, timeouts, limits, sorts, statuses, rule names, states, globs, matches,
 * tokens, names, fingerprints, addresses, event ids), declared in cli_args.h. */
#include "cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

int cli_output_parse(const char *s, enum cli_output *out)
{
	if (!strcmp(s, "table"))
		*out = CLI_OUT_TABLE;
	else if (!strcmp(s, "json"))
		*out = CLI_OUT_JSON;
	else if (!strcmp(s, "jsonl"))
		*out = CLI_OUT_JSONL;
	else
		return -1;
	return 0;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

int cli_max_rate_parse(const char *s, long *mib)
{
	char *end = NULL;
	errno = 0;
	long v = all_digits(s) ? strtol(s, &end, 10) : 0;
	if (errno || v < 1 || v > CLI_MAX_RATE_MIB_MAX)
		return -1;
	*mib = v;
	return 0;
}

int cli_timeout_parse(const char *s, long *ms)
{
	uint64_t ns;
	if (all_digits(s)) {
		errno = 0;
		unsigned long long v = strtoull(s, NULL, 10);
		if (errno || v > (unsigned long long)CLI_TIMEOUT_MAX_MS / 1000)
			return -1;
		ns = v * ERRQ_NS_PER_SEC;
	} else if (errq_parse_duration(s, &ns)) {
		return -1;
	}
	if (ns < ERRQ_NS_PER_MS || ns / ERRQ_NS_PER_MS > (uint64_t)CLI_TIMEOUT_MAX_MS)
		return -1;
	*ms = (long)(ns / ERRQ_NS_PER_MS);
	return 0;
}

int cli_limit_parse(const char *s, uint32_t *limit)
{
	if (!all_digits(s) || strlen(s) > 9)
		return -1;
	unsigned long v = strtoul(s, NULL, 10);
	if (v < 1 || v > CLI_LIMIT_MAX)
		return -1;
	*limit = (uint32_t)v;
	return 0;
}

int cli_sort_parse(const char *s, enum cli_sort *sort)
{
	static const struct {
		const char *name;
		enum cli_sort sort;
	} sorts[] = {
	    {"count", CLI_SORT_COUNT},           {"last_seen", CLI_SORT_LAST_SEEN},
	    {"last-seen", CLI_SORT_LAST_SEEN},   {"first_seen", CLI_SORT_FIRST_SEEN},
	    {"first-seen", CLI_SORT_FIRST_SEEN},
	};
	for (size_t k = 0; k < sizeof(sorts) / sizeof(sorts[0]); k++) {
		if (!strcmp(s, sorts[k].name)) {
			*sort = sorts[k].sort;
			return 0;
		}
	}
	return -1;
}

int cli_status_valid(const char *s)
{
	return !strcmp(s, "unresolved") || !strcmp(s, "resolved") || !strcmp(s, "ignored") ? 0 : -1;
}

int cli_word_in(const char *s, const char *list)
{
	size_t n = strlen(s);
	for (const char *p = list; *p;) {
		size_t w = strcspn(p, "|");
		if (w == n && n && !memcmp(p, s, n))
			return 0;
		p += w;
		if (*p == '|')
			p++;
	}
	return -1;
}

/* "a, b or c" of the words of list ("a|b|c") into buf. */
int cli_rule_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > CLI_RULE_NAME_MAX)
		return -1;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
			return -1;
	return 0;
}

int cli_state_parse(const char *s, const char **state)
{
	static const char *const states[] = {"closed", "open", "half_open"};
	for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
		if (!strcmp(s, states[k])) {
			*state = states[k];
			return 0;
		}
	}
	if (!strcmp(s, "half-open")) {
		*state = states[2];
		return 0;
	}
	return -1;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

int cli_filter_glob_valid(const char *flag, const char *s, char *err, size_t errlen)
{
	/* what an empty value should have been, per filter flag */
	static const struct {
		const char *flag, *want;
	} wants[] = {
	    {"type", "an error type or a glob such as 'Timeout*'"},
	    {"code", "an error code or a glob such as 'E_TIMEOUT*'"},
	    {"task", "a task name or a glob such as 'sync-*'"},
	};
	const char *want = "a glob";
	for (size_t k = 0; k < sizeof(wants) / sizeof(wants[0]); k++)
		if (!strcmp(wants[k].flag, flag))
			want = wants[k].want;
	size_t n = strlen(s);
	if (!n) {
		errq_snprintf(err, errlen, "empty --%s (expected %s)", flag, want);
		return -1;
	}
	if (n > CLI_GLOB_MAX) {
		errq_snprintf(err, errlen, "--%s is longer than %d bytes", flag, CLI_GLOB_MAX);
		return -1;
	}
	if (!errq_utf8_valid(s, n, NULL) || has_control(s)) {
		errq_snprintf(err, errlen, "--%s holds control characters or invalid UTF-8", flag);
		return -1;
	}
	return 0;
}

int cli_glob_valid(const char *s, char *err, size_t errlen)
{
	return cli_filter_glob_valid("type", s, err, errlen);
}

int cli_match_valid(const char *s, char *err, size_t errlen)
{
	const char *eq = strchr(s, '=');
	size_t flen = eq ? (size_t)(eq - s) : 0;
	if (!eq || !flen) {
		errq_snprintf(err, errlen, "invalid --match '%s' (expected FIELD=GLOB, such as error_type='Timeout*')",
			      s);
		return -1;
	}
	if (flen > CLI_MATCH_FIELD_MAX) {
		errq_snprintf(err, errlen, "--match field is longer than %d bytes", CLI_MATCH_FIELD_MAX);
		return -1;
	}
	for (size_t i = 0; i < flen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == ',' || c == '\\') {
			errq_snprintf(err, errlen, "invalid --match field '%.*s' (no spaces, ',' or '\\')", (int)flen,
				      s);
			return -1;
		}
	}
	size_t glen = strlen(eq + 1);
	if (glen > CLI_GLOB_MAX || !errq_utf8_valid(eq + 1, glen, NULL) || has_control(eq + 1)) {
		errq_snprintf(err, errlen,
			      "invalid --match glob for '%.*s' (at most %d bytes of text, no control characters)",
			      (int)flen, s, CLI_GLOB_MAX);
		return -1;
	}
	return 0;
}

int cli_token_valid(const char *s)
{
	size_t n = strnlen(s, CLI_TOKEN_MAX + 1);
	if (n == 0 || n > CLI_TOKEN_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return -1;
	return 0;
}

int cli_name_valid(const char *s)
{
	size_t n = strlen(s);
	return n && n <= CLI_NAME_MAX && !has_control(s) ? 0 : -1;
}

int cli_hex_lower(const char *s, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return -1;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[n] = '\0';
	return 0;
}

int cli_fingerprint_parse(const char *s, char out[CLI_FINGERPRINT_LEN + 1])
{
	if (strnlen(s, CLI_FINGERPRINT_LEN + 1) != CLI_FINGERPRINT_LEN)
		return -1;
	return cli_hex_lower(s, CLI_FINGERPRINT_LEN, out);
}

#define CLI_PORT_MAX 65535

int cli_addr_check(const char *addr, char *err, size_t errlen)
{
	const char *port;
	if (!strncmp(addr, "unix:", 5) || !strncmp(addr, "unix-abstract:", 14))
		return 0;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (!end || (end[1] && end[1] != ':')) {
			errq_snprintf(err, errlen, "expected [ADDRESS]:PORT");
			return -1;
		}
		if (!end[1])
			return 0; /* no port: gRPC's default */
		port = end + 2;
	} else {
		port = strrchr(addr, ':');
		if (!port)
			return 0;
		port++;
	}
	char *e = NULL;
	errno = 0;
	long v = all_digits(port) ? strtol(port, &e, 10) : -1;
	if (!*port || !all_digits(port) || errno || v < 1 || v > CLI_PORT_MAX) {
		errq_snprintf(err, errlen, "port '%.16s' is %s 1 to %d", port,
			      all_digits(port) && *port ? "out of range" : "not a number from", CLI_PORT_MAX);
		return -1;
	}
	return 0;
}

int cli_event_id_parse(const char *s, uint8_t out[CLI_EVENT_ID_LEN])
{
	char hex[2 * CLI_EVENT_ID_LEN + 1];
	size_t n = strlen(s), k = 0;
	/* 8-4-4-4-12: hyphens after the 8th, 12th, 16th and 20th digit, or none at all */
	if (n == 2 * CLI_EVENT_ID_LEN + 4) {
		if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
			return -1;
	} else if (n != 2 * CLI_EVENT_ID_LEN) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (n != 2 * CLI_EVENT_ID_LEN && (i == 8 || i == 13 || i == 18 || i == 23))
			continue;
		if (!isxdigit((unsigned char)s[i]))
			return -1;
		hex[k++] = (char)tolower((unsigned char)s[i]);
	}
	hex[k] = '\0';
	return errq_hex_decode(hex, out, CLI_EVENT_ID_LEN);
}
