/* rules_notifier.c: the `notifiers:` section of a rules file. */
#include "rules_int.h"

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

static int parse_notifier(struct parser *p, yaml_node_t *n, size_t index, struct rules_notifier *nt)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a value quoted in a message (errq_quote) */
	enum { K_NAME, K_TYPE, K_URL, K_TIMEOUT, K_MAX_ATTEMPTS, K_HEADERS, K_SECRET };
	static const char *const keys[] = {"name", "type", "url", "timeout", "max_attempts", "headers", "secret", NULL};
	static const char *const types[] = {"webhook", "log", NULL};
	uint32_t seen = 0;
	uint64_t u;
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
		return rules__fail(p, n, "type", "missing (webhook or log)");
	int type;
	if (rules__get_choice(p, type_n, "type", types, &type))
		return -1;
	if (!(nt->name = rules__dup(p, name_n, name)))
		return -1;
	nt->line = errq_yaml_line(n);
	nt->type = (enum rules_notifier_type)type;
	nt->timeout_ns = RULES_DEFAULT_TIMEOUT_NS;
	nt->max_attempts = RULES_DEFAULT_MAX_ATTEMPTS;
	FOR_PAIRS(n, pr)
	{
		yaml_node_t *kn = rules__node(p, pr->key), *vn = rules__node(p, pr->value);
		int k = rules__map_key(p, kn, "", keys, &seen);
		if (k < 0)
			return -1;
		if (k >= K_URL && nt->type != RULES_NOTIFIER_WEBHOOK)
			return rules__fail(p, kn, keys[k], "only for webhook notifiers");
		switch (k) {
		case K_NAME:
		case K_TYPE:
			break;
		case K_URL: {
			const char *v = rules__want_scalar(p, vn, "url");
			if (!v)
				return -1;
			if (!url_ok(v))
				return rules__fail(p, vn, "url", "'%s' is not an http:// or https:// URL (at most %d bytes)",
						   errq_quote(v, qb),
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
		}
	}
	if (nt->type == RULES_NOTIFIER_WEBHOOK && !nt->url)
		return rules__fail(p, n, "url", "missing (a webhook notifier needs one)");
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
