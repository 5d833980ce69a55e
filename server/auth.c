/* auth.c: see auth.h.
 *
 * Threads: struct auth's mutex guards `cur` and every table's `refs`; a check takes a
 * reference to the table in force for its duration and drops it after, so auth_reload can
 * swap tables while calls are checked on gRPC's threads.  The processor answers its callback
 * synchronously: it does no I/O (a hash and a scan of at most AUTH_MAX_ENTRIES entries). */
#include "auth.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errq_log.h"
#include "errq_str.h"
#include "errq_yaml.h"
#include "errq_banned.h"

#define HEALTH_PREFIX "/grpc.health.v1.Health/"

const struct auth_method auth_methods[] = {
    {"/errq.v1.Collector/Report", AUTH_ROLE_INGEST},
    {"/errq.v1.Query/ListEvents", AUTH_ROLE_READ},
    {"/errq.v1.Query/ListGroups", AUTH_ROLE_READ},
    {"/errq.v1.Query/Status", AUTH_ROLE_READ},
    {"/errq.v1.Query/GetGroup", AUTH_ROLE_READ},
    {"/errq.v1.Query/GetEvent", AUTH_ROLE_READ},
    {"/errq.v1.Query/ExplainEvent", AUTH_ROLE_READ},
    {"/errq.v1.Query/Tail", AUTH_ROLE_READ},
    {"/errq.v1.Query/SetGroupStatus", AUTH_ROLE_ADMIN},
    {"/errq.v1.Query/Backup", AUTH_ROLE_ADMIN},
    {"/errq.v1.Alerts/ListCircuits", AUTH_ROLE_READ},
    {"/errq.v1.Alerts/ExplainCircuit", AUTH_ROLE_READ},
    {"/errq.v1.Alerts/ListAlerts", AUTH_ROLE_READ},
    {"/errq.v1.Alerts/GetAlert", AUTH_ROLE_READ},
    {"/errq.v1.Alerts/ListRules", AUTH_ROLE_READ},
    {"/errq.v1.Alerts/ListSilences", AUTH_ROLE_READ},
    {"/errq.v1.Alerts/ReplayAlert", AUTH_ROLE_ADMIN},
    {"/errq.v1.Alerts/ReloadRules", AUTH_ROLE_ADMIN},
    {"/errq.v1.Alerts/AddSilence", AUTH_ROLE_ADMIN},
    {"/errq.v1.Alerts/ExpireSilence", AUTH_ROLE_ADMIN},
    {"/grpc.health.v1.Health/Check", AUTH_ROLE_OPEN},
};
const size_t auth_n_methods = sizeof(auth_methods) / sizeof(auth_methods[0]);

static const char *const role_names[] = {"open", "ingest", "read", "admin"};

const char *auth_role_name(enum auth_role r)
{
	return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "?";
}

int auth_method_role(const char *path, size_t len)
{
	if (len >= sizeof(HEALTH_PREFIX) - 1 && memcmp(path, HEALTH_PREFIX, sizeof(HEALTH_PREFIX) - 1) == 0)
		return AUTH_ROLE_OPEN;
	for (size_t i = 0; i < auth_n_methods; i++)
		if (strlen(auth_methods[i].path) == len && memcmp(auth_methods[i].path, path, len) == 0)
			return (int)auth_methods[i].role;
	return -1;
}

void auth_token_hash(const char *token, size_t len, uint8_t out[32])
{
	SHA256((const unsigned char *)token, len, out);
}

/* ---- the file ---- */

struct parser {
	struct errq_yaml y;
	const char *name;
	char *err;
	size_t errsz;
};

/* "'FILE' line N: credentials[I]: key 'K': reason"; always -1. */
static int fail(struct parser *p, const yaml_node_t *n, int idx, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int fail(struct parser *p, const yaml_node_t *n, int idx, const char *key, const char *fmt, ...)
{
	char why[256], where[64] = "", k[96] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (idx >= 0)
		errq_snprintf(where, sizeof(where), "[%d]", idx);
	if (key)
		errq_snprintf(k, sizeof(k), " key '%s':", key);
	errq_snprintf(p->err, p->errsz, "'%s' line %d: credentials%s:%s %s", p->name, errq_yaml_line(n), where, k, why);
	return -1;
}

/* A scalar without NUL bytes inside, or NULL. */
static const char *scalar(const yaml_node_t *n)
{
	const char *s = errq_yaml_scalar(n);
	return s && strlen(s) == n->data.scalar.length ? s : NULL;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= AUTH_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.@-", s[i]))
			return false;
	return true;
}

/* Printable ASCII (a certificate name; a services glob may also be UTF-8). */
static bool text_ok(const char *s, bool utf8)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7f || (!utf8 && *c > 0x7e))
			return false;
	return !utf8 || errq_utf8_valid(s, strlen(s), NULL);
}

static int parse_services(struct parser *p, yaml_node_t *vn, int idx, struct auth_cred *c)
{
	if (vn->type != YAML_SEQUENCE_NODE)
		return fail(p, vn, idx, "services", "expected a list of service names or globs, like [checkout, \"pay*\"]");
	size_t n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
	if (n == 0)
		return fail(p, vn, idx, "services", "empty (\"*\" allows every service)");
	if (n > AUTH_MAX_SERVICES)
		return fail(p, vn, idx, "services", "more than %d entries", AUTH_MAX_SERVICES);
	if (!(c->services = calloc(n, sizeof(*c->services))))
		return fail(p, vn, idx, "services", "out of memory");
	for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++) {
		yaml_node_t *sn = errq_yaml_node(&p->y, *it);
		const char *s = scalar(sn);
		if (!s || !*s)
			return fail(p, sn, idx, "services", "each entry must be a non-empty string");
		if (strlen(s) >= AUTH_SERVICE_MAX)
			return fail(p, sn, idx, "services", "'%.40s...' is longer than %d bytes", s, AUTH_SERVICE_MAX - 1);
		if (!text_ok(s, true))
			return fail(p, sn, idx, "services", "'%.40s' has control characters or invalid UTF-8", s);
		errq_snprintf(c->services[c->n_services++], AUTH_SERVICE_MAX, "%s", s);
	}
	return 0;
}

static const char *const cred_keys[] = {"name", "token_sha256", "tls_identity", "role", "services", NULL};

static int parse_cred(struct parser *p, yaml_node_t *en, int idx, struct auth_cred *c)
{
	if (en->type != YAML_MAPPING_NODE)
		return fail(p, en, idx, NULL, "expected a mapping: {name: N, token_sha256: HEX, role: ingest|read|admin, "
					      "services: [...]}");
	c->line = errq_yaml_line(en);
	c->role = AUTH_ROLE_OPEN; /* = unset */
	bool has_name = false, has_tls = false, has_services = false;
	unsigned seen = 0;
	yaml_node_t *services = NULL;
	for (yaml_node_pair_t *pr = en->data.mapping.pairs.start; pr < en->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = errq_yaml_node(&p->y, pr->key), *vn = errq_yaml_node(&p->y, pr->value);
		const char *k = scalar(kn);
		int ki = -1;
		for (int i = 0; k && cred_keys[i]; i++)
			if (strcmp(cred_keys[i], k) == 0)
				ki = i;
		if (ki < 0) {
			if (k && strcmp(k, "token") == 0)
				return fail(p, kn, idx, "token",
					    "tokens are never stored in clear: put the SHA-256 of the token in "
					    "token_sha256 ('errq token new' prints the entry)");
			return fail(p, kn, idx, k ? k : "?",
				    "unknown key (expected one of: name, token_sha256, tls_identity, role, services)");
		}
		if (seen & (1u << ki))
			return fail(p, kn, idx, k, "set twice");
		seen |= 1u << ki;
		if (ki == 4) {
			services = vn;
			has_services = true;
			continue;
		}
		const char *v = scalar(vn);
		if (!v)
			return fail(p, vn, idx, k, "expected a single string");
		switch (ki) {
		case 0:
			if (!name_ok(v))
				return fail(p, vn, idx, k, "'%.64s' is not 1 to %d of [A-Za-z0-9_.@-]", v, AUTH_NAME_MAX - 1);
			errq_snprintf(c->name, sizeof(c->name), "%s", v);
			has_name = true;
			break;
		case 1:
			if (strlen(v) != 64 || errq_hex_decode(v, c->token_sha256, 32))
				return fail(p, vn, idx, k, "expected the 64 hex digits of the token's SHA-256");
			c->has_token = true;
			break;
		case 2:
			if (!*v || strlen(v) >= AUTH_IDENTITY_MAX || !text_ok(v, false))
				return fail(p, vn, idx, k, "expected a certificate name: 1 to %d printable ASCII bytes",
					    AUTH_IDENTITY_MAX - 1);
			errq_snprintf(c->tls_identity, sizeof(c->tls_identity), "%s", v);
			has_tls = true;
			break;
		case 3:
			for (int r = AUTH_ROLE_INGEST; r <= AUTH_ROLE_ADMIN; r++)
				if (strcmp(v, role_names[r]) == 0)
					c->role = (enum auth_role)r;
			if (c->role == AUTH_ROLE_OPEN)
				return fail(p, vn, idx, k, "'%.32s' is not one of: ingest, read, admin", v);
			break;
		}
	}
	if (!has_name)
		return fail(p, en, idx, "name", "missing (it names the credential in logs and audit lines)");
	if (c->has_token == has_tls)
		return fail(p, en, idx, NULL, "credential '%s': give exactly one of token_sha256 and tls_identity", c->name);
	if (c->role == AUTH_ROLE_OPEN)
		return fail(p, en, idx, "role", "missing (ingest, read or admin)");
	if (c->role == AUTH_ROLE_INGEST && !has_services)
		return fail(p, en, idx, "services", "required for role ingest (the services it may report; \"*\" for all)");
	if (c->role != AUTH_ROLE_INGEST && has_services)
		return fail(p, services, idx, "services", "only for role ingest");
	return services ? parse_services(p, services, idx, c) : 0;
}

static int parse(struct parser *p, struct auth_table *t)
{
	yaml_node_t *root = errq_yaml_root(&p->y), *list = NULL;
	if (!root || root->type != YAML_MAPPING_NODE)
		return 0; /* empty, or not a mapping: the settings' loader says what is wrong */
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
		const char *k = scalar(errq_yaml_node(&p->y, pr->key));
		if (k && strcmp(k, "credentials") == 0) {
			if (list)
				return fail(p, errq_yaml_node(&p->y, pr->key), -1, NULL, "set twice");
			list = errq_yaml_node(&p->y, pr->value);
		}
	}
	if (!list)
		return 0;
	if (list->type == YAML_SCALAR_NODE && list->data.scalar.length == 0)
		return 0; /* "credentials:" with nothing: none */
	if (list->type != YAML_SEQUENCE_NODE)
		return fail(p, list, -1, NULL, "expected a list of credentials");
	size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
	if (n > AUTH_MAX_ENTRIES)
		return fail(p, list, -1, NULL, "more than %d credentials", AUTH_MAX_ENTRIES);
	if (n && !(t->creds = calloc(n, sizeof(*t->creds))))
		return fail(p, list, -1, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *en = errq_yaml_node(&p->y, list->data.sequence.items.start[i]);
		struct auth_cred *c = &t->creds[i];
		t->n = i + 1; /* so that auth_table_free frees c's services */
		if (parse_cred(p, en, (int)i, c))
			return -1;
		for (size_t j = 0; j < i; j++) {
			const struct auth_cred *o = &t->creds[j];
			if (strcmp(o->name, c->name) == 0)
				return fail(p, en, (int)i, "name", "'%s' is also credentials[%zu] (line %d)", c->name, j, o->line);
			if (c->has_token && o->has_token && memcmp(o->token_sha256, c->token_sha256, 32) == 0)
				return fail(p, en, (int)i, "token_sha256", "the same token as credentials[%zu] '%s' (line %d)", j,
					    o->name, o->line);
			if (!c->has_token && !o->has_token && strcmp(o->tls_identity, c->tls_identity) == 0)
				return fail(p, en, (int)i, "tls_identity", "the same identity as credentials[%zu] '%s' (line %d)",
					    j, o->name, o->line);
		}
	}
	return 0;
}

static int load(struct auth_table **out, struct parser *p, int loaded)
{
	*out = NULL;
	struct auth_table *t = calloc(1, sizeof(*t));
	int rc = -1;
	if (!t) {
		errq_snprintf(p->err, p->errsz, "'%s': out of memory", p->name);
		goto out;
	}
	if (loaded || parse(p, t))
		goto out;
	*out = t;
	t = NULL;
	rc = 0;
out:
	auth_table_free(t);
	errq_yaml_free(&p->y);
	return rc;
}

int auth_table_load(struct auth_table **out, const char *path, char *err, size_t errsz)
{
	struct parser p = {.name = path, .err = err, .errsz = errsz};
	return load(out, &p, errq_yaml_load(&p.y, path, err, errsz));
}

int auth_table_load_mem(struct auth_table **out, const char *name, const char *text, size_t len, char *err,
			size_t errsz)
{
	struct parser p = {.name = name, .err = err, .errsz = errsz};
	return load(out, &p, errq_yaml_load_mem(&p.y, name, text, len, err, errsz));
}

void auth_table_free(struct auth_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->creds[i].services);
	free(t->creds);
	free(t);
}

int auth_table_check(const struct auth_table *t, const struct auth_policy *p, char *err, size_t errsz)
{
	if ((!t || t->n == 0) && !p->open_ok) {
		errq_snprintf(err, errsz,
			      "listen %s without credentials: set credentials (docs/security.md) or auth.open: true",
			      p->listen ? p->listen : "?");
		return -1;
	}
	for (size_t i = 0; t && i < t->n; i++)
		if (!t->creds[i].has_token && !p->tls_verified) {
			errq_snprintf(err, errsz,
				      "credentials[%zu] '%s' (line %d): tls_identity needs verified client certificates "
				      "(tls.client_ca)",
				      i, t->creds[i].name, t->creds[i].line);
			return -1;
		}
	return 0;
}

/* ---- the decision ---- */

bool auth_cred_allows(const struct auth_cred *c, const char *service)
{
	if (c->role != AUTH_ROLE_INGEST)
		return true;
	for (size_t i = 0; i < c->n_services; i++)
		if (fnmatch(c->services[i], service, 0) == 0)
			return true;
	return false;
}

/* The token of "Bearer TOKEN" (scheme case-insensitive, RFC 6750), or NULL. */
static const char *bearer(const char *v, size_t len, size_t *tlen)
{
	if (len < 7 || strncasecmp(v, "Bearer", 6) != 0 || v[6] != ' ')
		return NULL;
	size_t o = 7;
	while (o < len && v[o] == ' ')
		o++;
	*tlen = len - o;
	return v + o;
}

static const struct auth_cred *find_token(const struct auth_table *t, const char *tok, size_t n)
{
	uint8_t h[32];
	const struct auth_cred *found = NULL;
	auth_token_hash(tok, n, h);
	/* every entry is compared, in constant time each: how long the check takes says
	 * nothing about how close a guess came */
	for (size_t i = 0; i < t->n; i++)
		if (t->creds[i].has_token && CRYPTO_memcmp(t->creds[i].token_sha256, h, 32) == 0)
			found = &t->creds[i];
	OPENSSL_cleanse(h, sizeof(h));
	return found;
}

static const char *short_path(const char *path, size_t len, size_t *n)
{
	const char *s = memrchr(path, '/', len);
	s = s ? s + 1 : path;
	*n = len - (size_t)(s - path);
	return s;
}

void auth_decide(const struct auth_table *t, const char *path, size_t len, const char *authz, size_t authz_len,
		 int n_authz, const char *const *peer_ids, const size_t *peer_id_lens, size_t n_peer_ids,
		 struct auth_decision *d)
{
	memset(d, 0, sizeof(*d));
	int need = path ? auth_method_role(path, len) : -1;
	d->status = GRPC_STATUS_OK;
	d->need = need < 0 ? AUTH_ROLE_ADMIN : (enum auth_role)need;
	if (need == AUTH_ROLE_OPEN || !t || t->n == 0)
		return; /* health, or open mode (an unknown method then gets UNIMPLEMENTED, as before) */
	d->status = GRPC_STATUS_UNAUTHENTICATED;
	if (n_authz > 1) {
		errq_snprintf(d->msg, sizeof(d->msg), "more than one authorization header");
		return;
	}
	const struct auth_cred *c = NULL;
	if (authz) {
		size_t tlen = 0;
		const char *tok = bearer(authz, authz_len, &tlen);
		if (!tok) {
			errq_snprintf(d->msg, sizeof(d->msg), "authorization header is not 'Bearer TOKEN'");
			return;
		}
		if (tlen == 0 || tlen > AUTH_TOKEN_MAX) {
			errq_snprintf(d->msg, sizeof(d->msg), tlen ? "bearer token longer than %d bytes" : "empty bearer token",
				      AUTH_TOKEN_MAX);
			return;
		}
		if (!(c = find_token(t, tok, tlen))) {
			errq_snprintf(d->msg, sizeof(d->msg), "unknown token");
			return;
		}
	} else {
		for (size_t i = 0; i < n_peer_ids && !c; i++)
			for (size_t j = 0; j < t->n && !c; j++)
				if (!t->creds[j].has_token && strlen(t->creds[j].tls_identity) == peer_id_lens[i] &&
				    memcmp(t->creds[j].tls_identity, peer_ids[i], peer_id_lens[i]) == 0)
					c = &t->creds[j];
		if (!c) {
			if (n_peer_ids)
				errq_snprintf(d->msg, sizeof(d->msg), "client certificate '%.*s' matches no credential",
					      (int)(peer_id_lens[0] > 64 ? 64 : peer_id_lens[0]), peer_ids[0]);
			else
				errq_snprintf(d->msg, sizeof(d->msg),
					      "no credentials: send 'authorization: Bearer TOKEN' (errq --token, ERRQ_TOKEN)");
			return;
		}
	}
	d->cred = c;
	d->status = GRPC_STATUS_PERMISSION_DENIED;
	size_t sn;
	const char *sp = short_path(path ? path : "", path ? len : 0, &sn);
	if (need < 0) {
		errq_snprintf(d->msg, sizeof(d->msg), "unknown method '%.*s'", (int)(len > 100 ? 100 : len), path ? path : "");
		return;
	}
	bool ok = need == AUTH_ROLE_INGEST ? c->role == AUTH_ROLE_INGEST
		  : need == AUTH_ROLE_READ ? c->role == AUTH_ROLE_READ || c->role == AUTH_ROLE_ADMIN
					   : c->role == AUTH_ROLE_ADMIN;
	if (!ok) {
		errq_snprintf(d->msg, sizeof(d->msg), "credential '%s' has role %s; %.*s needs role %s", c->name,
			      role_names[c->role], (int)(sn > 64 ? 64 : sn), sp, role_names[need]);
		return;
	}
	d->status = GRPC_STATUS_OK;
}

/* ---- the table in force ---- */

struct auth {
	pthread_mutex_t mu;
	struct auth_table *cur; /* under mu; never NULL */
	struct auth_policy policy;
	char listen[256];
	/* refused calls, logged at most once per AUTH_LOG_INTERVAL_S (under mu) */
	time_t log_at;
	uint64_t refused_unlogged;
};

static struct auth_table *table_get(struct auth *a)
{
	pthread_mutex_lock(&a->mu);
	struct auth_table *t = a->cur;
	t->refs++;
	pthread_mutex_unlock(&a->mu);
	return t;
}

static void table_put(struct auth *a, struct auth_table *t)
{
	pthread_mutex_lock(&a->mu);
	bool last = --t->refs == 0;
	pthread_mutex_unlock(&a->mu);
	if (last)
		auth_table_free(t);
}

int auth_new(struct auth **out, struct auth_table *t, const struct auth_policy *p, char *err, size_t errsz)
{
	*out = NULL;
	struct auth *a = NULL;
	if (!t && !(t = calloc(1, sizeof(*t)))) {
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (auth_table_check(t, p, err, errsz))
		goto fail;
	if (!(a = calloc(1, sizeof(*a)))) {
		errq_snprintf(err, errsz, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&a->mu, NULL);
	a->policy = *p;
	errq_snprintf(a->listen, sizeof(a->listen), "%s", p->listen ? p->listen : "");
	a->policy.listen = a->listen;
	t->refs = 1;
	a->cur = t;
	*out = a;
	return 0;
fail:
	auth_table_free(t);
	return -1;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	table_put(a, a->cur);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

size_t auth_count(struct auth *a)
{
	struct auth_table *t = table_get(a);
	size_t n = t->n;
	table_put(a, t);
	return n;
}

struct auth_table *auth_reload_prepare(struct auth *a, const char *path, char *err, size_t errsz)
{
	struct auth_table *t = NULL;
	if (auth_table_load(&t, path, err, errsz))
		return NULL;
	if (auth_table_check(t, &a->policy, err, errsz)) {
		auth_table_free(t);
		return NULL;
	}
	return t;
}

void auth_reload_commit(struct auth *a, struct auth_table *t)
{
	t->refs = 1;
	pthread_mutex_lock(&a->mu);
	struct auth_table *old = a->cur;
	a->cur = t;
	pthread_mutex_unlock(&a->mu);
	table_put(a, old); /* freed once the last check using it ends */
	char n[24];
	errq_snprintf(n, sizeof(n), "%zu", t->n);
	errq_logkv(ERRQ_LOG_INFO, "credentials reloaded", "credentials", n, NULL);
}

int auth_reload(struct auth *a, const char *path, char *err, size_t errsz)
{
	struct auth_table *t = auth_reload_prepare(a, path, err, errsz);
	if (!t)
		return -1;
	auth_reload_commit(a, t);
	return 0;
}

static bool slice_is(grpc_slice s, const char *lit)
{
	size_t n = strlen(lit);
	return GRPC_SLICE_LENGTH(s) == n && memcmp(GRPC_SLICE_START_PTR(s), lit, n) == 0;
}

/* Logs a refused call, at most once per AUTH_LOG_INTERVAL_S: a client retrying with a bad
 * token, or a scan, must not flood the log. */
static void log_refused(struct auth *a, const struct auth_decision *d, const char *path, size_t plen)
{
	time_t now = time(NULL);
	uint64_t skipped;
	pthread_mutex_lock(&a->mu);
	if (now - a->log_at < AUTH_LOG_INTERVAL_S) {
		a->refused_unlogged++;
		pthread_mutex_unlock(&a->mu);
		return;
	}
	a->log_at = now;
	skipped = a->refused_unlogged;
	a->refused_unlogged = 0;
	pthread_mutex_unlock(&a->mu);
	char method[128], more[24];
	errq_snprintf(method, sizeof(method), "%.*s", (int)(plen > 100 ? 100 : plen), path ? path : "");
	errq_snprintf(more, sizeof(more), "%llu", (unsigned long long)skipped);
	errq_logkv(ERRQ_LOG_WARN, "call refused", "status", d->status == GRPC_STATUS_UNAUTHENTICATED ? "UNAUTHENTICATED" : "PERMISSION_DENIED",
		   "reason", d->msg, "method", method, "credential", d->cred ? d->cred->name : "",
		   "refused_since_last_line", more, NULL);
}

/* What the checks read from a call: its :path, its authorization header (and how many came),
 * the peer's certificate names (CN and SANs, set at the handshake and never changed). */
struct call_facts {
	const char *path, *authz;
	size_t plen, alen;
	int n_authz;
	const char *ids[AUTH_PEER_IDS_MAX];
	size_t lens[AUTH_PEER_IDS_MAX], n_ids;
};

static void call_facts(const grpc_metadata *md, size_t num_md, grpc_auth_context *ctx, struct call_facts *f)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < num_md; i++) {
		if (slice_is(md[i].key, ":path")) {
			f->path = (const char *)GRPC_SLICE_START_PTR(md[i].value);
			f->plen = GRPC_SLICE_LENGTH(md[i].value);
		} else if (slice_is(md[i].key, "authorization") && f->n_authz++ == 0) {
			f->authz = (const char *)GRPC_SLICE_START_PTR(md[i].value);
			f->alen = GRPC_SLICE_LENGTH(md[i].value);
		}
	}
	static const char *const props[] = {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME};
	for (size_t k = 0; k < 2 && ctx; k++) {
		grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ctx, props[k]);
		const grpc_auth_property *p;
		while (f->n_ids < AUTH_PEER_IDS_MAX && (p = grpc_auth_property_iterator_next(&it))) {
			f->ids[f->n_ids] = p->value;
			f->lens[f->n_ids++] = p->value_length;
		}
	}
}

/* The processor.  gRPC hands it the connection's auth context, shared by every call of the
 * connection (server_auth_filter): it reads the certificate names there and writes nothing
 * (a property added per call named whichever call came first, grew without bound and raced
 * with readers on other threads).  Handlers that need the caller's identity decide again
 * from their own metadata (auth_identity); the authorization header is left in it. */
static void process(void *state, grpc_auth_context *ctx, const grpc_metadata *md, size_t num_md,
		    grpc_process_auth_metadata_done_cb cb, void *user_data)
{
	struct auth *a = state;
	struct call_facts f;
	call_facts(md, num_md, ctx, &f);
	struct auth_table *t = table_get(a);
	struct auth_decision d;
	auth_decide(t, f.path, f.plen, f.authz, f.alen, f.n_authz, f.ids, f.lens, f.n_ids, &d);
	if (d.status == GRPC_STATUS_OK && d.need == AUTH_ROLE_ADMIN) {
		char method[128];
		errq_snprintf(method, sizeof(method), "%.*s", (int)(f.plen > 100 ? 100 : f.plen), f.path ? f.path : "");
		errq_logkv(ERRQ_LOG_INFO, "audit: admin call", "credential", d.cred ? d.cred->name : "(open mode)",
			   "method", method, NULL);
	}
	if (d.status != GRPC_STATUS_OK)
		log_refused(a, &d, f.path, f.plen);
	table_put(a, t);
	cb(user_data, NULL, 0, NULL, 0, d.status, d.status == GRPC_STATUS_OK ? NULL : d.msg);
}

void auth_identity(struct auth *a, const char *path, const grpc_metadata_array *md, grpc_call *call, char *buf,
		   size_t bufsz)
{
	buf[0] = '\0';
	if (!a)
		return;
	grpc_auth_context *ctx = grpc_call_auth_context(call);
	struct call_facts f;
	call_facts(md->metadata, md->count, ctx, &f);
	struct auth_table *t = table_get(a);
	struct auth_decision d;
	auth_decide(t, path, strlen(path), f.authz, f.alen, f.n_authz, f.ids, f.lens, f.n_ids, &d);
	if (d.status == GRPC_STATUS_OK && d.cred)
		errq_snprintf(buf, bufsz, "%s", d.cred->name);
	table_put(a, t);
	if (ctx)
		grpc_auth_context_release(ctx);
}

void auth_attach(struct auth *a, grpc_server_credentials *creds)
{
	grpc_auth_metadata_processor p = {.process = process, .destroy = NULL, .state = a};
	grpc_server_credentials_set_auth_metadata_processor(creds, p);
}

/* ---- Report's per-event check ---- */

void auth_scope_begin(struct auth *a, const char *identity, struct auth_scope *s)
{
	memset(s, 0, sizeof(*s));
	s->a = a;
	s->identity = identity ? identity : "";
	if (!a)
		return;
	s->t = table_get(a);
	for (size_t i = 0; i < s->t->n && *s->identity; i++)
		if (strcmp(s->t->creds[i].name, s->identity) == 0)
			s->cred = &s->t->creds[i];
}

int auth_scope_allows(const struct auth_scope *s, const char *service, char *reason, size_t rsz)
{
	if (!s->a || s->t->n == 0)
		return 0; /* open mode */
	if (!s->cred) {
		if (*s->identity)
			errq_snprintf(reason, rsz, "service_not_allowed: credential '%s' is no longer configured", s->identity);
		else
			errq_snprintf(reason, rsz, "service_not_allowed: the stream began before credentials were configured");
		return -1;
	}
	if (s->cred->role != AUTH_ROLE_INGEST) {
		errq_snprintf(reason, rsz, "service_not_allowed: credential '%s' has role %s, not ingest", s->cred->name,
			      role_names[s->cred->role]);
		return -1;
	}
	if (!auth_cred_allows(s->cred, service)) {
		errq_snprintf(reason, rsz, "service_not_allowed: credential '%s' may not report service '%.48s'",
			      s->cred->name, service);
		return -1;
	}
	return 0;
}

void auth_scope_end(struct auth_scope *s)
{
	if (s->a && s->t)
		table_put(s->a, s->t);
	s->t = NULL;
	s->cred = NULL;
}

bool auth_listen_is_loopback(const char *listen)
{
	const char *colon = strrchr(listen, ':');
	if (!colon)
		return false;
	char host[256];
	size_t n = (size_t)(colon - listen);
	if (n >= sizeof(host))
		return false;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	if (strcasecmp(host, "localhost") == 0)
		return true;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
	}
	return false; /* "", "0.0.0.0", "::", a host name: maybe reachable from elsewhere */
}
