/* rules_notifier.c: the `notifiers:` section of a rules file. */
#include "rules_int.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "rules_template.h"

#include "errq_banned.h"

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
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	static const char *const reserved[] = {"content-length", "content-type", "transfer-encoding",
					       "idempotency-key", NULL};
	if (rules__is_null(n))
		return 0;
	if (rules__want_mapping(p, n, "headers", "{Authorization: \"Bearer ...\"}"))
		return -1;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = rules__node(p, pr->key), *vn = rules__node(p, pr->value);
		const char *k = errq_yaml_scalar(kn);
		char path[RULES_HEADER_NAME_MAX + 16];
		if (!k || !header_name_ok(k))
			return rules__fail(p, kn, "headers", "'%s' is not a header name", k ? errq_quote(k, qb) : "(not a string)");
		errq_snprintf(path, sizeof(path), "headers.%s", k);
		for (int i = 0; reserved[i]; i++)
			if (strcasecmp(k, reserved[i]) == 0)
				return rules__fail(p, kn, path, "set by errq, cannot be configured");
		for (size_t i = 0; i < nt->n_headers; i++)
			if (strcasecmp(nt->headers[i].name, k) == 0)
				return rules__fail(p, kn, path, "set twice");
		if (nt->n_headers == RULES_MAX_HEADERS)
			return rules__fail(p, kn, path, "more than %d headers", RULES_MAX_HEADERS);
		const char *v = rules__want_scalar(p, vn, path);
		if (!v)
			return -1;
		if (strlen(v) > RULES_HEADER_VALUE_MAX || strpbrk(v, "\r\n"))
			return rules__fail(p, vn, path, "a header value is one line of at most %d bytes", RULES_HEADER_VALUE_MAX);
		struct rules_header *h = &nt->headers[nt->n_headers];
		if (!(h->name = rules__dup(p, kn, k)) || !(h->value = rules__dup(p, vn, v)))
			return -1;
		nt->n_headers++;
	}
	return 0;
}

static const char *const type_names[] = {"webhook", "log", "alertmanager", "slack", "pagerduty", "email", NULL};

const char *rules_notifier_type_name(enum rules_notifier_type t)
{
	return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]) - 1 ? type_names[t] : "?";
}

enum {
	K_NAME, K_TYPE, K_URL, K_TIMEOUT, K_MAX_ATTEMPTS, K_HEADERS, K_SECRET, K_TEMPLATE, K_LINK_TEMPLATE,
	K_RESEND, K_ROUTING_KEY, K_ROUTING_KEY_FILE, K_ROUTING_KEY_ENV, K_FROM, K_TO, K_STARTTLS, K_USERNAME,
	K_PASSWORD, K_PASSWORD_FILE, K_SUBJECT, K_CA_FILE
};
static const char *const keys[] = {"name", "type", "url", "timeout", "max_attempts", "headers", "secret",
				   "template", "link_template", "resend_interval", "routing_key",
				   "routing_key_file", "routing_key_env", "from", "to", "starttls", "username",
				   "password", "password_file", "subject", "ca_file", NULL};
#define B(k) (1u << (k))
#define DELIVERY (B(K_URL) | B(K_TIMEOUT) | B(K_MAX_ATTEMPTS) | B(K_CA_FILE))
/* The keys each type takes (name and type aside). */
static const uint32_t type_keys[] = {
    [RULES_NOTIFIER_WEBHOOK] = DELIVERY | B(K_HEADERS) | B(K_SECRET),
    [RULES_NOTIFIER_LOG] = 0,
    [RULES_NOTIFIER_ALERTMANAGER] = DELIVERY | B(K_HEADERS) | B(K_LINK_TEMPLATE) | B(K_RESEND),
    [RULES_NOTIFIER_SLACK] = DELIVERY | B(K_TEMPLATE) | B(K_LINK_TEMPLATE),
    [RULES_NOTIFIER_PAGERDUTY] = DELIVERY | B(K_TEMPLATE) | B(K_LINK_TEMPLATE) | B(K_ROUTING_KEY) |
				 B(K_ROUTING_KEY_FILE) | B(K_ROUTING_KEY_ENV),
    [RULES_NOTIFIER_EMAIL] = DELIVERY | B(K_TEMPLATE) | B(K_LINK_TEMPLATE) | B(K_FROM) | B(K_TO) | B(K_STARTTLS) |
			     B(K_USERNAME) | B(K_PASSWORD) | B(K_PASSWORD_FILE) | B(K_SUBJECT),
};

/* A secret read whole from a file (one trailing newline dropped); its value never appears in
 * a message.  Returns the copy in the ruleset, or NULL after rules__fail. */
static const char *secret_from_file(struct parser *p, const yaml_node_t *vn, const char *path, const char *file,
				    size_t max)
{
	char qb[ERRQ_QUOTE_BUFSZ], buf[RULES_SECRET_MAX + 2];
	FILE *f = fopen(file, "r");
	if (!f) {
		rules__fail(p, vn, path, "cannot read '%s': %s", errq_quote(file, qb), strerror(errno));
		return NULL;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	bool more = fgetc(f) != EOF;
	fclose(f);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (!n || n > max || more || strpbrk(buf, "\r\n")) {
		rules__fail(p, vn, path, "'%s' must hold one line of 1 to %zu bytes", errq_quote(file, qb), max);
		return NULL;
	}
	const char *s = rules__dup(p, vn, buf);
	explicit_bzero(buf, sizeof(buf));
	return s;
}

/* A secret given in the config itself: 1..max bytes, one line. */
static const char *secret_value(struct parser *p, const yaml_node_t *vn, const char *path, size_t max)
{
	const char *v = rules__want_scalar(p, vn, path);
	if (!v)
		return NULL;
	if (!*v || strlen(v) > max || strpbrk(v, "\r\n")) {
		rules__fail(p, vn, path, "must be one line of 1 to %zu bytes", max);
		return NULL;
	}
	return rules__dup(p, vn, v);
}

/* A mail address as SMTP takes it: local@domain, printable, no spaces, brackets or commas. */
static bool mail_ok(const char *s)
{
	const char *at = strchr(s, '@');
	size_t n = strlen(s);
	if (!n || n > RULES_MAIL_ADDR_MAX || !at || at == s || !at[1] || strchr(at + 1, '@'))
		return false;
	for (const char *q = s; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f || strchr("<>,;\"()[]\\", *q))
			return false;
	return true;
}

static int get_mail(struct parser *p, const yaml_node_t *vn, const char *path, const char **out)
{
	char qb[ERRQ_QUOTE_BUFSZ];
	const char *v = rules__want_scalar(p, vn, path);
	if (!v)
		return -1;
	if (!mail_ok(v))
		return rules__fail(p, vn, path, "'%s' is not a mail address (local@domain, at most %d bytes)",
				   errq_quote(v, qb), RULES_MAIL_ADDR_MAX);
	return (*out = rules__dup(p, vn, v)) ? 0 : -1;
}

static int get_template(struct parser *p, const yaml_node_t *vn, const char *path, bool allow_link, bool one_line,
			const char **out)
{
	char why[600];
	const char *v = rules__want_scalar(p, vn, path);
	if (!v)
		return -1;
	if (rules_template_check(v, allow_link, one_line, why, sizeof(why)))
		return rules__fail(p, vn, path, "%s", why);
	return (*out = rules__dup(p, vn, v)) ? 0 : -1;
}

static bool smtp_url_ok(const char *s)
{
	const char *host = !strncmp(s, "smtp://", 7) ? s + 7 : !strncmp(s, "smtps://", 8) ? s + 8 : NULL;
	if (!host || !*host || *host == '/' || strlen(s) >= RULES_URL_MAX)
		return false;
	for (const char *q = s; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return false;
	return true;
}

static int parse_notifier(struct parser *p, yaml_node_t *n, size_t index, struct rules_notifier *nt)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	static const char *const starttls[] = {"optional", "required", NULL};
	uint32_t seen = 0;
	uint64_t u;
	int choice;
	errq_snprintf(p->what, sizeof(p->what), "notifier #%zu: ", index + 1);
	if (rules__want_mapping(p, n, NULL, "{name: ops, type: webhook, url: \"http://...\"}"))
		return -1;
	/* name and type first: messages name the notifier, and other keys depend on the type */
	yaml_node_t *name_n = rules__find_value(p, n, "name"), *type_n = rules__find_value(p, n, "type");
	if (!name_n)
		return rules__fail(p, n, "name", "missing");
	const char *name = rules__get_name(p, name_n, "name");
	if (!name)
		return -1;
	errq_snprintf(p->what, sizeof(p->what), "notifier '%s': ", name);
	for (size_t i = 0; i < index; i++)
		if (strcmp(p->rs->notifiers[i].name, name) == 0)
			return rules__fail(p, name_n, "name", "a notifier '%s' is already defined at line %d", name,
				    p->rs->notifiers[i].line);
	if (!type_n)
		return rules__fail(p, n, "type", "missing (webhook, log, alertmanager, slack, pagerduty or email)");
	int type;
	if (rules__get_choice(p, type_n, "type", type_names, &type))
		return -1;
	if (!(nt->name = rules__dup(p, name_n, name)))
		return -1;
	nt->line = errq_yaml_line(n);
	nt->type = (enum rules_notifier_type)type;
	nt->timeout_ns = RULES_DEFAULT_TIMEOUT_NS;
	nt->max_attempts = RULES_DEFAULT_MAX_ATTEMPTS;
	nt->resend_ns = RULES_DEFAULT_RESEND_NS;
	int secret_line = 0; /* routing_key / password given twice (value, file, env) */
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = rules__node(p, pr->key), *vn = rules__node(p, pr->value);
		int k = rules__map_key(p, kn, "", keys, &seen);
		if (k < 0)
			return -1;
		if (k > K_TYPE && !(type_keys[type] & B(k)))
			return rules__fail(p, kn, keys[k], "not a key of a %s notifier", type_names[type]);
		switch (k) {
		case K_NAME:
		case K_TYPE:
			break;
		case K_URL: {
			const char *v = rules__want_scalar(p, vn, "url");
			if (!v)
				return -1;
			if (type == RULES_NOTIFIER_EMAIL ? !smtp_url_ok(v) : !url_ok(v))
				return rules__fail(p, vn, "url", "'%s' is not an %s URL (at most %d bytes)",
						   errq_quote(v, qb),
						   type == RULES_NOTIFIER_EMAIL ? "smtp:// or smtps://" : "http:// or https://",
						   RULES_URL_MAX - 1);
			if (!(nt->url = rules__dup(p, vn, v)))
				return -1;
			break;
		}
		case K_TIMEOUT:
			if (rules__get_duration(p, vn, "timeout", RULES_MIN_TIMEOUT_NS, RULES_MAX_TIMEOUT_NS, false, &nt->timeout_ns))
				return -1;
			break;
		case K_MAX_ATTEMPTS:
			if (rules__get_uint(p, vn, "max_attempts", 1, RULES_MAX_ATTEMPTS, &u))
				return -1;
			nt->max_attempts = (uint32_t)u;
			break;
		case K_HEADERS:
			if (parse_headers(p, vn, nt))
				return -1;
			break;
		case K_SECRET: {
			const char *v = rules__want_scalar(p, vn, "secret");
			if (!v)
				return -1;
			if (!*v || strlen(v) > RULES_SECRET_MAX)
				return rules__fail(p, vn, "secret", "a secret is 1 to %d bytes", RULES_SECRET_MAX);
			if (!(nt->secret = rules__dup(p, vn, v)))
				return -1;
			break;
		}
		case K_TEMPLATE:
			if (get_template(p, vn, "template", true, false, &nt->template_text))
				return -1;
			break;
		case K_SUBJECT:
			if (get_template(p, vn, "subject", true, true, &nt->subject))
				return -1;
			break;
		case K_LINK_TEMPLATE: {
			if (get_template(p, vn, "link_template", false, true, &nt->link_template))
				return -1;
			if (strncmp(nt->link_template, "http://", 7) && strncmp(nt->link_template, "https://", 8))
				return rules__fail(p, vn, "link_template", "'%s' does not start with http:// or https://",
						   errq_quote(nt->link_template, qb));
			break;
		}
		case K_RESEND:
			if (rules__get_duration(p, vn, "resend_interval", RULES_MIN_RESEND_NS, RULES_MAX_RESEND_NS, false,
						&nt->resend_ns))
				return -1;
			break;
		case K_ROUTING_KEY:
		case K_ROUTING_KEY_FILE:
		case K_ROUTING_KEY_ENV:
		case K_PASSWORD:
		case K_PASSWORD_FILE: {
			bool rk = k <= K_ROUTING_KEY_ENV;
			const char **dst = rk ? &nt->routing_key : &nt->password;
			size_t max = rk ? RULES_ROUTING_KEY_MAX : RULES_SECRET_MAX;
			if (*dst)
				return rules__fail(p, kn, keys[k], "the %s is already given at line %d (one of %s)",
						   rk ? "routing key" : "password", secret_line,
						   rk ? "routing_key, routing_key_file, routing_key_env"
						      : "password, password_file");
			secret_line = errq_yaml_line(kn);
			if (k == K_ROUTING_KEY || k == K_PASSWORD) {
				*dst = secret_value(p, vn, keys[k], max);
			} else if (k == K_ROUTING_KEY_ENV) {
				const char *var = rules__want_scalar(p, vn, keys[k]);
				const char *val = var ? getenv(var) : NULL;
				if (!var)
					return -1;
				if (!val || !*val || strlen(val) > max || strpbrk(val, "\r\n"))
					return rules__fail(p, vn, keys[k],
							   "environment variable '%s' is %s (one line of 1 to %zu bytes)",
							   errq_quote(var, qb), val ? "not a routing key" : "not set", max);
				*dst = rules__dup(p, vn, val);
			} else {
				const char *file = rules__want_scalar(p, vn, keys[k]);
				if (!file)
					return -1;
				*dst = secret_from_file(p, vn, keys[k], file, max);
			}
			if (!*dst)
				return -1;
			break;
		}
		case K_FROM:
			if (get_mail(p, vn, "from", &nt->mail_from))
				return -1;
			break;
		case K_TO: {
			if (rules__want_list(p, vn, "to", "[oncall@example.com]"))
				return -1;
			FOR_ITEMS(vn, it)
			{
				if (nt->n_mail_to == RULES_MAX_MAIL_TO)
					return rules__fail(p, vn, "to", "more than %d recipients", RULES_MAX_MAIL_TO);
				if (get_mail(p, rules__node(p, *it), "to", &nt->mail_to[nt->n_mail_to]))
					return -1;
				nt->n_mail_to++;
			}
			if (!nt->n_mail_to)
				return rules__fail(p, vn, "to", "an empty list (name at least one recipient)");
			break;
		}
		case K_STARTTLS:
			if (rules__get_choice(p, vn, "starttls", starttls, &choice))
				return -1;
			nt->starttls = (enum rules_starttls)choice;
			break;
		case K_USERNAME:
			if (!(nt->username = secret_value(p, vn, "username", RULES_SECRET_MAX)))
				return -1;
			break;
		case K_CA_FILE: {
			const char *v = rules__want_scalar(p, vn, "ca_file");
			if (!v)
				return -1;
			if (!*v || strlen(v) >= RULES_PATH_MAX)
				return rules__fail(p, vn, "ca_file", "a path of 1 to %d bytes", RULES_PATH_MAX - 1);
			if (access(v, R_OK))
				return rules__fail(p, vn, "ca_file", "cannot read '%s': %s", errq_quote(v, qb), strerror(errno));
			if (!(nt->ca_file = rules__dup(p, vn, v)))
				return -1;
			break;
		}
		}
	}
	if (type == RULES_NOTIFIER_PAGERDUTY && !nt->url)
		nt->url = RULES_PAGERDUTY_URL;
	if (type != RULES_NOTIFIER_LOG && !nt->url)
		return rules__fail(p, n, "url", "missing (a %s notifier needs one)", type_names[type]);
	if (type == RULES_NOTIFIER_PAGERDUTY && !nt->routing_key)
		return rules__fail(p, n, "routing_key", "missing (routing_key, routing_key_file or routing_key_env)");
	if (type == RULES_NOTIFIER_EMAIL) {
		if (!nt->mail_from)
			return rules__fail(p, n, "from", "missing (an email notifier needs a sender)");
		if (!nt->n_mail_to)
			return rules__fail(p, n, "to", "missing (an email notifier needs recipients)");
		if (!nt->username != !nt->password)
			return rules__fail(p, n, nt->username ? "password" : "username",
					   "missing (SMTP auth takes both username and a password)");
		if ((seen & B(K_STARTTLS)) && !strncmp(nt->url, "smtps://", 8))
			return rules__fail(p, n, "starttls", "not with smtps:// (TLS from the first byte)");
	}
	return 0;
}

int rules__parse_notifiers(struct parser *p, yaml_node_t *n)
{
	if (rules__is_null(n))
		return 0;
	if (rules__want_list(p, n, "notifiers", "[{name: ops, type: webhook, url: \"http://...\"}]"))
		return -1;
	size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > RULES_MAX_NOTIFIERS)
		return rules__fail(p, n, "notifiers", "more than %d notifiers", RULES_MAX_NOTIFIERS);
	if (!(p->rs->notifiers = rules__zalloc(p, n, count * sizeof(struct rules_notifier))))
		return -1;
	FOR_ITEMS(n, it)
	{
		size_t i = p->rs->n_notifiers;
		if (parse_notifier(p, rules__node(p, *it), i, &p->rs->notifiers[i]))
			return -1;
		p->rs->n_notifiers++;
	}
	p->what[0] = '\0';
	return 0;
}
