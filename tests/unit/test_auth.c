/* Unit tests of server/auth.c: the credentials parser (each refusal with its file, line and
 * index), the method -> role table against the services of the .proto files, the decision
 * for every kind of caller, the per-event service check across a reload, and which listen
 * addresses are loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auth.h"
#include "errq/v1/alerts.pb-c.h"
#include "errq/v1/collector.pb-c.h"
#include "errq/v1/query.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "errq_str.h"

/* 64 hex digits: a token_sha256 the tests need only to be well formed */
#define H_READ "f3b0d9a4d5bd4b2a1e7f9b2e04bd06ecfdc7b7d32cc9c3b66f9ac8d2a6ac1bd4"

static char hash_hex[3][65];

static const char *hex_of(const char *token, int slot)
{
	uint8_t h[32];
	auth_token_hash(token, strlen(token), h);
	errq_hex_encode(h, 32, hash_hex[slot]);
	return hash_hex[slot];
}

static struct auth_table *load_ok(const char *text)
{
	struct auth_table *t = NULL;
	char err[512] = "";
	if (auth_table_load_mem(&t, "c.yaml", text, strlen(text), err, sizeof(err)))
		fail_msg("refused: %s\n%s", err, text);
	return t;
}

/* The error text for a file that must be refused. */
static const char *load_err(const char *text)
{
	static char err[512];
	struct auth_table *t = NULL;
	err[0] = '\0';
	if (!auth_table_load_mem(&t, "c.yaml", text, strlen(text), err, sizeof(err)))
		fail_msg("accepted:\n%s", text);
	assert_null(t);
	return err;
}

static struct auth_table *three(void)
{
	char text[2048];
	errq_snprintf(text, sizeof(text),
		      "listen: 0.0.0.0:4770\n"
		      "rules: []\n"
		      "credentials:\n"
		      "  - name: oncall\n"
		      "    token_sha256: %s\n"
		      "    role: read\n"
		      "  - name: ops\n"
		      "    token_sha256: %s\n"
		      "    role: admin\n"
		      "  - name: checkout-prod\n"
		      "    token_sha256: %s\n"
		      "    role: ingest\n"
		      "    services: [checkout, \"pay*\"]\n"
		      "  - name: mtls-reader\n"
		      "    tls_identity: reader.example.com\n"
		      "    role: read\n",
		      hex_of("errq_read", 0), hex_of("errq_admin", 1), hex_of("errq_ingest", 2));
	return load_ok(text);
}

static void test_parse_ok(void **state)
{
	(void)state;
	struct auth_table *t = three();
	assert_int_equal(t->n, 4);
	assert_string_equal(t->creds[0].name, "oncall");
	assert_int_equal(t->creds[0].role, AUTH_ROLE_READ);
	assert_true(t->creds[0].has_token);
	assert_int_equal(t->creds[2].role, AUTH_ROLE_INGEST);
	assert_int_equal(t->creds[2].n_services, 2);
	assert_string_equal(t->creds[2].services[1], "pay*");
	assert_int_equal(t->creds[2].line, 10);
	assert_false(t->creds[3].has_token);
	assert_string_equal(t->creds[3].tls_identity, "reader.example.com");
	assert_true(auth_cred_allows(&t->creds[2], "checkout"));
	assert_true(auth_cred_allows(&t->creds[2], "payments"));
	assert_false(auth_cred_allows(&t->creds[2], "checkout-eu"));
	assert_false(auth_cred_allows(&t->creds[2], "billing"));
	assert_true(auth_cred_allows(&t->creds[1], "anything")); /* only ingest has services */
	auth_table_free(t);
	/* no credentials key, or an empty one: an empty table */
	t = load_ok("listen: 127.0.0.1:4770\n");
	assert_int_equal(t->n, 0);
	auth_table_free(t);
	t = load_ok("credentials:\n");
	assert_int_equal(t->n, 0);
	auth_table_free(t);
	/* upper-case hex is the same hash */
	char text[512], up[65];
	errq_snprintf(up, sizeof(up), "%s", hex_of("errq_read", 0));
	for (char *c = up; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	errq_snprintf(text, sizeof(text), "credentials:\n  - {name: a, token_sha256: %s, role: read}\n", up);
	t = load_ok(text);
	uint8_t h[32];
	auth_token_hash("errq_read", 9, h);
	assert_memory_equal(t->creds[0].token_sha256, h, 32);
	auth_table_free(t);
}

static void test_parse_refusals(void **state)
{
	(void)state;
	const char *H = H_READ;
	char text[1024];
	struct {
		const char *yaml;
		const char *want;
	} cases[] = {
	    {"credentials: {name: a}\n", "'c.yaml' line 1: credentials: expected a list of credentials"},
	    {"credentials:\n  - oops\n", "'c.yaml' line 2: credentials[0]: expected a mapping"},
	    {"credentials:\n  - {token_sha256: %s, role: read}\n", "credentials[0]: key 'name': missing"},
	    {"credentials:\n  - {name: 'a b', token_sha256: %s, role: read}\n",
	     "credentials[0]: key 'name': 'a b' is not 1 to 63 of [A-Za-z0-9_.@-]"},
	    {"credentials:\n  - {name: a, role: read}\n",
	     "credentials[0]: credential 'a': give exactly one of token_sha256 and tls_identity"},
	    {"credentials:\n  - {name: a, token_sha256: %s, tls_identity: x.example, role: read}\n",
	     "give exactly one of token_sha256 and tls_identity"},
	    {"credentials:\n  - {name: a, token_sha256: abc, role: read}\n",
	     "credentials[0]: key 'token_sha256': expected the 64 hex digits of the token's SHA-256"},
	    {"credentials:\n  - {name: a, token_sha256: %s}\n", "credentials[0]: key 'role': missing (ingest, read or admin)"},
	    {"credentials:\n  - {name: a, token_sha256: %s, role: root}\n",
	     "key 'role': 'root' is not one of: ingest, read, admin"},
	    {"credentials:\n  - {name: a, token_sha256: %s, role: ingest}\n",
	     "key 'services': required for role ingest"},
	    {"credentials:\n  - {name: a, token_sha256: %s, role: read, services: [x]}\n",
	     "key 'services': only for role ingest"},
	    {"credentials:\n  - {name: a, token_sha256: %s, role: ingest, services: []}\n", "key 'services': empty"},
	    {"credentials:\n  - {name: a, token_sha256: %s, role: ingest, services: checkout}\n",
	     "key 'services': expected a list"},
	    {"credentials:\n  - {name: a, token: errq_x, role: read}\n",
	     "line 2: credentials[0]: key 'token': tokens are never stored in clear"},
	    {"credentials:\n  - {name: a, token_sha256: %s, role: read, colour: red}\n",
	     "key 'colour': unknown key (expected one of: name, token_sha256, tls_identity, role, services)"},
	    {"credentials:\n  - {name: a, token_sha256: %s, role: read, role: admin}\n", "key 'role': set twice"},
	    {"credentials:\n  - {name: a, token_sha256: %s, role: read}\n  - {name: a, tls_identity: x, role: read}\n",
	     "line 3: credentials[1]: key 'name': 'a' is also credentials[0] (line 2)"},
	    {"credentials:\n  - {name: a, token_sha256: %s, role: read}\n  - {name: b, token_sha256: " H_READ
	     ", role: admin}\n",
	     "credentials[1]: key 'token_sha256': the same token as credentials[0] 'a'"},
	    {"credentials:\n  - {name: a, tls_identity: \"x\\ty\", role: read}\n", "key 'tls_identity': expected a certificate name"},
	    {"credentials: []\ncredentials: []\n", "line 2: credentials: set twice"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* "%s" in a case stands for a well-formed hash */
		struct errq_buf y;
		errq_buf_init_fixed(&y, text, sizeof(text));
		for (const char *c = cases[i].yaml; *c; c++)
			if (c[0] == '%' && c[1] == 's')
				errq_buf_addstr(&y, H), c++;
			else
				errq_buf_add(&y, c, 1);
		errq_buf_add(&y, "", 1);
		const char *err = load_err(text);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
		assert_non_null(strstr(err, "'c.yaml' line "));
	}
	/* the bounds: entries, services per entry, a service's length */
	struct errq_buf b;
	errq_buf_init(&b, 1u << 20);
	errq_buf_addstr(&b, "credentials:\n");
	for (int i = 0; i <= AUTH_MAX_ENTRIES; i++)
		errq_buf_printf(&b, "  - {name: c%d, tls_identity: id%d, role: read}\n", i, i);
	assert_non_null(strstr(load_err(b.p), "more than 256 credentials"));
	errq_buf_reset(&b);
	errq_buf_addstr(&b, "credentials:\n  - {name: a, tls_identity: x, role: ingest, services: [");
	for (int i = 0; i <= AUTH_MAX_SERVICES; i++)
		errq_buf_printf(&b, "%ss%d", i ? ", " : "", i);
	errq_buf_addstr(&b, "]}\n");
	assert_non_null(strstr(load_err(b.p), "key 'services': more than 64 entries"));
	errq_buf_reset(&b);
	errq_buf_addstr(&b, "credentials:\n  - {name: a, tls_identity: x, role: ingest, services: [");
	for (int i = 0; i < AUTH_SERVICE_MAX; i++)
		errq_buf_addstr(&b, "s");
	errq_buf_addstr(&b, "]}\n");
	assert_non_null(strstr(load_err(b.p), "is longer than 128 bytes"));
	errq_buf_free(&b);
}

/* Every method of every service in the .proto files has a role, and the table lists no
 * method the protos do not have: a new RPC without a role fails here (and would be refused
 * by errqd with credentials configured). */
static void test_method_table_complete(void **state)
{
	(void)state;
	const ProtobufCServiceDescriptor *svcs[] = {&errq__v1__collector__descriptor, &errq__v1__query__descriptor,
						    &errq__v1__alerts__descriptor, &grpc__health__v1__health__descriptor};
	size_t seen = 0;
	char path[256];
	for (size_t s = 0; s < sizeof(svcs) / sizeof(svcs[0]); s++)
		for (unsigned m = 0; m < svcs[s]->n_methods; m++) {
			int n = errq_snprintf(path, sizeof(path), "/%s/%s", svcs[s]->name, svcs[s]->methods[m].name);
			int role = auth_method_role(path, (size_t)n);
			if (role < 0)
				fail_msg("%s has no role in auth_methods[] (server/auth.c)", path);
			if (s == 3)
				assert_int_equal(role, AUTH_ROLE_OPEN);
			else
				assert_int_not_equal(role, AUTH_ROLE_OPEN);
			for (size_t k = 0; k < auth_n_methods; k++)
				seen += strcmp(auth_methods[k].path, path) == 0;
		}
	assert_int_equal(seen, auth_n_methods); /* no entry for a method that does not exist */
	/* the roles the issue names */
	struct {
		const char *path;
		int role;
	} want[] = {
	    {"/errq.v1.Collector/Report", AUTH_ROLE_INGEST},   {"/errq.v1.Query/ListEvents", AUTH_ROLE_READ},
	    {"/errq.v1.Query/Tail", AUTH_ROLE_READ},	      {"/errq.v1.Alerts/ListAlerts", AUTH_ROLE_READ},
	    {"/errq.v1.Query/SetGroupStatus", AUTH_ROLE_ADMIN}, {"/errq.v1.Query/Backup", AUTH_ROLE_ADMIN},
	    {"/errq.v1.Alerts/AddSilence", AUTH_ROLE_ADMIN},    {"/errq.v1.Alerts/ExpireSilence", AUTH_ROLE_ADMIN},
	    {"/errq.v1.Alerts/ReplayAlert", AUTH_ROLE_ADMIN},   {"/errq.v1.Alerts/ReloadRules", AUTH_ROLE_ADMIN},
	    {"/grpc.health.v1.Health/Watch", AUTH_ROLE_OPEN},   {"/errq.v1.Query/Nope", -1},
	    {"/errq.v1.Query/ListEventsX", -1},		      {"", -1},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(auth_method_role(want[i].path, strlen(want[i].path)), want[i].role);
}

static grpc_status_code decide(const struct auth_table *t, const char *path, const char *authz, const char *peer,
			       struct auth_decision *d)
{
	const char *ids[1] = {peer};
	size_t lens[1] = {peer ? strlen(peer) : 0};
	auth_decide(t, path, strlen(path), authz, authz ? strlen(authz) : 0, authz ? 1 : 0, ids, lens, peer ? 1 : 0, d);
	return d->status;
}

static void test_decide(void **state)
{
	(void)state;
	struct auth_table *t = three();
	struct auth_decision d;
	const char *rep = "/errq.v1.Collector/Report", *list = "/errq.v1.Query/ListGroups",
		   *sil = "/errq.v1.Alerts/AddSilence";
	/* missing, unknown, malformed */
	assert_int_equal(decide(t, list, NULL, NULL, &d), GRPC_STATUS_UNAUTHENTICATED);
	assert_non_null(strstr(d.msg, "no credentials"));
	assert_int_equal(decide(t, list, "Bearer errq_nope", NULL, &d), GRPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(d.msg, "unknown token");
	assert_int_equal(decide(t, list, "Basic abc", NULL, &d), GRPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(decide(t, list, "Bearer", NULL, &d), GRPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(decide(t, list, "Bearer ", NULL, &d), GRPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(d.msg, "empty bearer token");
	char big[AUTH_TOKEN_MAX + 16];
	memcpy(big, "Bearer ", 7);
	memset(big + 7, 'a', AUTH_TOKEN_MAX + 1);
	big[7 + AUTH_TOKEN_MAX + 1] = '\0';
	assert_int_equal(decide(t, list, big, NULL, &d), GRPC_STATUS_UNAUTHENTICATED);
	assert_non_null(strstr(d.msg, "longer than 512 bytes"));
	const char *two[1] = {NULL};
	auth_decide(t, list, strlen(list), "Bearer errq_read", 16, 2, two, NULL, 0, &d);
	assert_int_equal(d.status, GRPC_STATUS_UNAUTHENTICATED);
	/* roles */
	assert_int_equal(decide(t, list, "Bearer errq_read", NULL, &d), GRPC_STATUS_OK);
	assert_string_equal(d.cred->name, "oncall");
	assert_int_equal(decide(t, list, "bearer   errq_read", NULL, &d), GRPC_STATUS_OK);
	assert_int_equal(decide(t, sil, "Bearer errq_read", NULL, &d), GRPC_STATUS_PERMISSION_DENIED);
	assert_string_equal(d.msg, "credential 'oncall' has role read; AddSilence needs role admin");
	assert_int_equal(decide(t, rep, "Bearer errq_read", NULL, &d), GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(decide(t, sil, "Bearer errq_admin", NULL, &d), GRPC_STATUS_OK);
	assert_int_equal(d.need, AUTH_ROLE_ADMIN);
	assert_int_equal(decide(t, list, "Bearer errq_admin", NULL, &d), GRPC_STATUS_OK); /* admin reads */
	assert_int_equal(decide(t, rep, "Bearer errq_admin", NULL, &d), GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(decide(t, rep, "Bearer errq_ingest", NULL, &d), GRPC_STATUS_OK);
	assert_string_equal(d.cred->name, "checkout-prod");
	assert_int_equal(decide(t, list, "Bearer errq_ingest", NULL, &d), GRPC_STATUS_PERMISSION_DENIED);
	/* an unknown method: refused even to admin */
	assert_int_equal(decide(t, "/errq.v1.Query/DropAll", "Bearer errq_admin", NULL, &d), GRPC_STATUS_PERMISSION_DENIED);
	assert_non_null(strstr(d.msg, "unknown method '/errq.v1.Query/DropAll'"));
	assert_int_equal(decide(t, "/errq.v1.Query/DropAll", NULL, NULL, &d), GRPC_STATUS_UNAUTHENTICATED);
	/* health: open, whatever the header */
	assert_int_equal(decide(t, "/grpc.health.v1.Health/Check", NULL, NULL, &d), GRPC_STATUS_OK);
	assert_int_equal(decide(t, "/grpc.health.v1.Health/Check", "Bearer wrong", NULL, &d), GRPC_STATUS_OK);
	assert_null(d.cred);
	/* mTLS identities; a token, when sent, is what counts */
	assert_int_equal(decide(t, list, NULL, "reader.example.com", &d), GRPC_STATUS_OK);
	assert_string_equal(d.cred->name, "mtls-reader");
	assert_int_equal(decide(t, sil, NULL, "reader.example.com", &d), GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(decide(t, list, NULL, "other.example.com", &d), GRPC_STATUS_UNAUTHENTICATED);
	assert_non_null(strstr(d.msg, "client certificate 'other.example.com' matches no credential"));
	assert_int_equal(decide(t, list, "Bearer errq_nope", "reader.example.com", &d), GRPC_STATUS_UNAUTHENTICATED);
	auth_table_free(t);
	/* open mode: every call passes, unknown methods go on to UNIMPLEMENTED */
	t = load_ok("listen: 127.0.0.1:4770\n");
	assert_int_equal(decide(t, sil, NULL, NULL, &d), GRPC_STATUS_OK);
	assert_int_equal(decide(t, "/x.Y/Z", "Bearer junk", NULL, &d), GRPC_STATUS_OK);
	assert_null(d.cred);
	auth_table_free(t);
}

static void test_policy_and_scope(void **state)
{
	(void)state;
	char err[512];
	struct auth *a = NULL;
	struct auth_policy open_no = {.listen = "0.0.0.0:4770", .open_ok = false, .tls_verified = false};
	struct auth_policy open_yes = {.listen = "127.0.0.1:4770", .open_ok = true, .tls_verified = false};
	assert_int_equal(auth_new(&a, NULL, &open_no, err, sizeof(err)), -1);
	assert_string_equal(err,
			    "listen 0.0.0.0:4770 without credentials: set credentials (docs/security.md) or auth.open: true");
	/* a tls_identity needs verified client certificates */
	assert_int_equal(auth_new(&a, three(), &open_no, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "credentials[3] 'mtls-reader' (line 14): tls_identity needs verified client"));
	open_no.tls_verified = true;
	assert_int_equal(auth_new(&a, three(), &open_no, err, sizeof(err)), 0);
	assert_int_equal(auth_count(a), 4);

	struct auth_scope s;
	char reason[160];
	auth_scope_begin(a, "checkout-prod", &s);
	assert_int_equal(auth_scope_allows(&s, "checkout", reason, sizeof(reason)), 0);
	assert_int_equal(auth_scope_allows(&s, "payroll", reason, sizeof(reason)), 0);
	assert_int_equal(auth_scope_allows(&s, "billing", reason, sizeof(reason)), -1);
	assert_string_equal(reason, "service_not_allowed: credential 'checkout-prod' may not report service 'billing'");
	/* a reload while the scope is open: the scope keeps its table (refcounted) */
	struct auth_table *next = load_ok("credentials:\n  - {name: other, tls_identity: x, role: read}\n");
	auth_reload_commit(a, next);
	assert_int_equal(auth_scope_allows(&s, "checkout", reason, sizeof(reason)), 0);
	auth_scope_end(&s);
	/* the next batch sees the new table: the identity is gone */
	auth_scope_begin(a, "checkout-prod", &s);
	assert_int_equal(auth_scope_allows(&s, "checkout", reason, sizeof(reason)), -1);
	assert_string_equal(reason, "service_not_allowed: credential 'checkout-prod' is no longer configured");
	auth_scope_end(&s);
	auth_scope_begin(a, "", &s);
	assert_int_equal(auth_scope_allows(&s, "checkout", reason, sizeof(reason)), -1);
	auth_scope_end(&s);
	/* a reload to no credentials is refused where open mode is not allowed */
	struct auth_table *empty = load_ok("credentials: []\n");
	assert_int_equal(auth_table_check(empty, &open_no, err, sizeof(err)), -1);
	assert_int_equal(auth_table_check(empty, &open_yes, err, sizeof(err)), 0);
	auth_table_free(empty);
	auth_free(a);
	/* open mode: every service, any identity */
	assert_int_equal(auth_new(&a, NULL, &open_yes, err, sizeof(err)), 0);
	auth_scope_begin(a, "", &s);
	assert_int_equal(auth_scope_allows(&s, "anything", reason, sizeof(reason)), 0);
	auth_scope_end(&s);
	auth_free(a);
	auth_scope_begin(NULL, "", &s); /* no auth at all */
	assert_int_equal(auth_scope_allows(&s, "anything", reason, sizeof(reason)), 0);
	auth_scope_end(&s);
}

static void test_loopback(void **state)
{
	(void)state;
	const char *yes[] = {"127.0.0.1:4770", "127.1.2.3:0", "[::1]:4770", "localhost:4770", "LOCALHOST:1",
			     "[::ffff:127.0.0.1]:4770"};
	const char *no[] = {"0.0.0.0:4770", "[::]:4770", ":4770", "10.0.0.5:4770", "errq.example.com:4770",
			    "128.0.0.1:4770", "[::2]:4770", "localhost.evil.com:1", "4770"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!auth_listen_is_loopback(yes[i]))
			fail_msg("%s should be loopback", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (auth_listen_is_loopback(no[i]))
			fail_msg("%s should not be loopback", no[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),	   cmocka_unit_test(test_parse_refusals),
	    cmocka_unit_test(test_method_table_complete), cmocka_unit_test(test_decide),
	    cmocka_unit_test(test_policy_and_scope), cmocka_unit_test(test_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
