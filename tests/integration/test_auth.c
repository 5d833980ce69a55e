/* Integration: credentials (server/auth.c) against a real errqd over real gRPC.
 *
 *  - the tokens are made by `errq token new` and its printed entries pasted into the
 *    config file as they are;
 *  - no token, an unknown token: UNAUTHENTICATED (errq exits 4 and says why);
 *  - a read token: reads work; silence add, resolve, rules reload, admin backup, alerts
 *    replay are PERMISSION_DENIED (exit 4) and change nothing (no backup file);
 *  - an ingest token for [checkout, "pay*"]: one batch with an allowed and a forbidden
 *    service stores the allowed events and rejects the others alone (service_not_allowed),
 *    the stream stays open; the same token may not query;
 *  - health (gRPC and HTTP) answers without a token;
 *  - malformed and huge authorization headers (64 KiB, 4 KiB, "Basic", two headers, an
 *    empty bearer) are refused, and errqd goes on serving;
 *  - an admin call leaves an audit line naming the credential; no token reaches the log;
 *  - reload: a credential removed from the file (SIGHUP) stops working; a broken
 *    credentials list refuses `errq rules reload` and the credentials in force stay;
 *  - open mode: a non-loopback listen without credentials is refused at start, and with
 *    auth.open: true it starts and warns.
 * Every wait is a deadline (HARNESS_DEADLINE_MS); nothing sleeps for an outcome.
 * ERRQ_TEST_FILTER=test_ingest_services runs one test. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "harness.h"

static struct errq_idgen G;
static struct errqd_proc P;
static char CONFIG[400];
static char READ_TOKEN[128], ADMIN_TOKEN[128], INGEST_TOKEN[128], BILLING_TOKEN[128];
static char READ_ENTRY[1024], ADMIN_ENTRY[1024], INGEST_ENTRY[1024], BILLING_ENTRY[1024];

#define RULES "rules:\n  - name: trip-errors\n    match: {service: \"checkout\"}\n    trip: {failures: 1000, window: 60s}\n"

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	struct errq_buf b;
	errq_buf_init(&b, 64u << 20);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(errq_buf_add(&b, chunk, n), 0);
	fclose(f);
	assert_int_equal(errq_buf_add(&b, "", 1), 0);
	return b.p;
}

/* errq ARGS against P (harness_errq). */
static char *errq_run(int want, char **err, const char *const *args)
{
	return harness_errq(P.addr, want, err, args);
}
#define ERRQ(want, err, ...) errq_run((want), (err), (const char *const[]){__VA_ARGS__, NULL})

/* `errq token new ARGS`: the token (from "token: X") and the entry (from "  - name:" on). */
static void token_new(char *token, size_t tsz, char *entry, size_t esz, const char *const *args)
{
	char *out = errq_run(0, NULL, args);
	char *t = strstr(out, "token: "), *e = strstr(out, "  - name: ");
	assert_non_null(t);
	assert_non_null(e);
	t += strlen("token: ");
	size_t tl = strcspn(t, "\n");
	assert_true(tl == 48 && strncmp(t, "errq_", 5) == 0); /* errq_ + 43 base64url characters */
	errq_snprintf(token, tsz, "%.*s", (int)tl, t);
	errq_snprintf(entry, esz, "%s", e);
	assert_null(strstr(entry, token)); /* the config gets the hash only */
	free(out);
}

static void write_config(const char *creds)
{
	FILE *f = fopen(CONFIG, "w");
	assert_non_null(f);
	fprintf(f, RULES "credentials:\n%s", creds);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	(void)state;
	errq_idgen_init(&G);
	errq_snprintf(P.dir, sizeof(P.dir), "/tmp/errq-auth-XXXXXX");
	assert_non_null(mkdtemp(P.dir));
	errq_snprintf(CONFIG, sizeof(CONFIG), "%s/errqd.yaml", P.dir);
	token_new(READ_TOKEN, sizeof(READ_TOKEN), READ_ENTRY, sizeof(READ_ENTRY),
		  (const char *const[]){"token", "new", "--name", "oncall", "--role", "read", NULL});
	token_new(ADMIN_TOKEN, sizeof(ADMIN_TOKEN), ADMIN_ENTRY, sizeof(ADMIN_ENTRY),
		  (const char *const[]){"token", "new", "--role", "admin", "--name", "ops", NULL});
	token_new(INGEST_TOKEN, sizeof(INGEST_TOKEN), INGEST_ENTRY, sizeof(INGEST_ENTRY),
		  (const char *const[]){"token", "new", "--name", "checkout-prod", "--role", "ingest", "--service",
					"checkout", "--service", "pay*", NULL});
	token_new(BILLING_TOKEN, sizeof(BILLING_TOKEN), BILLING_ENTRY, sizeof(BILLING_ENTRY),
		  (const char *const[]){"token", "new", "--name", "billing-prod", "--role", "ingest", "--service",
					"billing", NULL});
	char all[4096];
	errq_snprintf(all, sizeof(all), "%s%s%s%s", READ_ENTRY, ADMIN_ENTRY, INGEST_ENTRY, BILLING_ENTRY);
	write_config(all);
	const char *extra[] = {"--config", CONFIG, NULL};
	assert_int_equal(errqd_start(&P, extra), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (P.pid)
		assert_int_equal(errqd_stop(&P, SIGTERM), 0);
	char *log = read_all(P.log);
	/* no token ever reaches the log, whatever happened */
	assert_null(strstr(log, READ_TOKEN));
	assert_null(strstr(log, ADMIN_TOKEN));
	assert_null(strstr(log, INGEST_TOKEN));
	assert_null(strstr(log, BILLING_TOKEN));
	free(log);
	errqd_cleanup(&P);
	return 0;
}

static void test_no_token(void **state)
{
	(void)state;
	char *err = NULL;
	free(ERRQ(4, &err, "groups"));
	assert_non_null(strstr(err, "refused the request: unauthenticated: no credentials"));
	free(err);
	/* a raw Report stream without a token ends UNAUTHENTICATED, nothing stored */
	struct rawstream s;
	assert_int_equal(raw_open(&s, P.addr), 0);
	Errq__V1__ReportRequest *req = treq_new(&G, 1, 2, "checkout", "Timeout", "upstream timed out");
	raw_send(&s, req);
	treq_free(req);
	char det[256];
	assert_int_equal(raw_finish(&s, det, sizeof(det)), GRPC_STATUS_UNAUTHENTICATED);
	raw_free(&s);
}

static void test_unknown_token(void **state)
{
	(void)state;
	char *err = NULL;
	free(ERRQ(4, &err, "--token", "errq_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "status"));
	assert_non_null(strstr(err, "unauthenticated: unknown token"));
	free(err);
	/* ERRQ_TOKEN is read like --token (here: through the environment of errq) */
	setenv("ERRQ_TOKEN", "errq_wrong", 1);
	free(ERRQ(4, &err, "groups"));
	unsetenv("ERRQ_TOKEN");
	assert_non_null(strstr(err, "unknown token"));
	free(err);
}

static void test_read_token(void **state)
{
	(void)state;
	char *err = NULL, backup[400];
	free(ERRQ(0, NULL, "--token", READ_TOKEN, "groups"));
	free(ERRQ(0, NULL, "--token", READ_TOKEN, "status"));
	free(ERRQ(0, NULL, "--token", READ_TOKEN, "rules", "list"));
	setenv("ERRQ_TOKEN", READ_TOKEN, 1);
	free(ERRQ(0, NULL, "silence", "list"));
	unsetenv("ERRQ_TOKEN");
	errq_snprintf(backup, sizeof(backup), "%s/copy.db", P.dir);
	const char *const admin[][10] = {
	    {"silence", "add", "--rule", "trip-errors", "--for", "1h", "--comment", "maintenance", NULL},
	    {"resolve", "0123456789abcdef", NULL},
	    {"rules", "reload", NULL},
	    {"admin", "backup", backup, NULL},
	    {"alerts", "replay", "0123456789abcdef0123456789abcdef", NULL},
	};
	for (size_t i = 0; i < sizeof(admin) / sizeof(admin[0]); i++) {
		const char *args[14] = {"--token", READ_TOKEN};
		for (int k = 0; admin[i][k]; k++)
			args[2 + k] = admin[i][k];
		free(errq_run(4, &err, args));
		if (!strstr(err, "permission denied: credential 'oncall' has role read") || !strstr(err, "needs role admin"))
			fail_msg("errq %s %s: %s", admin[i][0], admin[i][1], err);
		free(err);
	}
	struct stat sb;
	assert_int_not_equal(stat(backup, &sb), 0); /* refused means not done */
	char *out = ERRQ(0, NULL, "--token", READ_TOKEN, "-o", "json", "silence", "list");
	assert_non_null(strstr(out, "[]"));
	free(out);
}

/* Events of service in the collector, through a read token. */
static int count_events(const char *service)
{
	char *out = ERRQ(0, NULL, "--token", READ_TOKEN, "-o", "json", "events", "--service", service);
	json_error_t je;
	json_t *a = json_loads(out, 0, &je);
	assert_non_null(a);
	int n = (int)json_array_size(a);
	json_decref(a);
	free(out);
	return n;
}

static void test_ingest_services(void **state)
{
	(void)state;
	struct rawstream s;
	assert_int_equal(raw_open_token(&s, P.addr, INGEST_TOKEN), 0);
	Errq__V1__ReportRequest *req = treq_new(&G, 1, 5, "checkout", "Timeout", "upstream timed out");
	tevent_set(&req->failures[1]->service, "payments");
	tevent_set(&req->failures[2]->service, "billing");
	tevent_set(&req->failures[4]->service, "billing");
	assert_int_equal(raw_send(&s, req), 0);
	treq_free(req);
	Errq__V1__ReportResponse *resp = NULL;
	assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(resp->seq, 1);
	assert_int_equal(resp->accepted, 3);
	assert_int_equal(resp->n_rejected, 2);
	assert_int_equal(resp->rejected[0]->index, 2);
	assert_int_equal(resp->rejected[1]->index, 4);
	assert_string_equal(resp->rejected[0]->reason,
			    "service_not_allowed: credential 'checkout-prod' may not report service 'billing'");
	errq__v1__report_response__free_unpacked(resp, NULL);
	/* the stream stays open: the next batch is answered */
	req = treq_new(&G, 2, 1, "payments-eu", "Timeout", "upstream timed out");
	assert_int_equal(raw_send(&s, req), 0);
	treq_free(req);
	assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(resp->seq, 2);
	assert_int_equal(resp->accepted, 1);
	assert_int_equal(resp->n_rejected, 0);
	errq__v1__report_response__free_unpacked(resp, NULL);
	char det[256];
	assert_int_equal(raw_finish(&s, det, sizeof(det)), GRPC_STATUS_OK);
	raw_free(&s);
	assert_int_equal(count_events("checkout"), 2);
	assert_int_equal(count_events("payments"), 1);
	assert_int_equal(count_events("payments-eu"), 1);
	assert_int_equal(count_events("billing"), 0);
	/* the ingest token may not read */
	char *err = NULL;
	free(ERRQ(4, &err, "--token", INGEST_TOKEN, "groups"));
	assert_non_null(strstr(err, "permission denied: credential 'checkout-prod' has role ingest"));
	free(err);
	/* nor may a read token report */
	assert_int_equal(raw_open_token(&s, P.addr, READ_TOKEN), 0);
	req = treq_new(&G, 1, 1, "checkout", "Timeout", "upstream timed out");
	raw_send(&s, req);
	treq_free(req);
	assert_int_equal(raw_finish(&s, det, sizeof(det)), GRPC_STATUS_PERMISSION_DENIED);
	raw_free(&s);
	assert_int_equal(count_events("checkout"), 2);
	/* the rejections are counted by reason */
	int st = 0;
	char *body = NULL;
	assert_int_equal(http_request(P.http_port, "GET", "/metrics", "", &st, NULL, &body), 0);
	assert_int_equal(st, 200);
	assert_non_null(strstr(body, "errq_events_rejected_total{reason=\"service_not_allowed\"} 2"));
	free(body);
}

/* One Report of the given services on stream s (seq); the accepted count. */
static size_t report_services(struct rawstream *s, uint64_t seq, const char *a, const char *b, char *reason, size_t rsz)
{
	Errq__V1__ReportRequest *req = treq_new(&G, seq, 2, a, "Timeout", "upstream timed out");
	tevent_set(&req->failures[1]->service, b);
	assert_int_equal(raw_send(s, req), 0);
	treq_free(req);
	Errq__V1__ReportResponse *resp = NULL;
	assert_int_equal(raw_recv(s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(resp->seq, seq);
	size_t n = resp->accepted;
	errq_snprintf(reason, rsz, "%s", resp->n_rejected ? resp->rejected[0]->reason : "");
	errq__v1__report_response__free_unpacked(resp, NULL);
	return n;
}

/* Two credentials on one connection (channels with equal arguments share it): each call is
 * judged by its own token.  gRPC hands the metadata processor the connection's auth
 * context, not the call's: an identity written into it named whichever call came first
 * (here 'billing-prod' would have reported as 'checkout-prod'), the context grew by one
 * property a call, and calls of one connection raced on it (errqd crashed under ASan in
 * integration_hostile). */
static void test_two_credentials_one_connection(void **state)
{
	(void)state;
	struct rawstream a, b;
	char why[256], det[256];
	assert_int_equal(raw_open_ex(&a, P.addr, INGEST_TOKEN, 77), 0);
	assert_int_equal(report_services(&a, 1, "checkout", "billing", why, sizeof(why)), 1);
	assert_string_equal(why, "service_not_allowed: credential 'checkout-prod' may not report service 'billing'");
	assert_int_equal(raw_open_ex(&b, P.addr, BILLING_TOKEN, 77), 0);
	assert_int_equal(report_services(&b, 1, "billing", "checkout", why, sizeof(why)), 1);
	assert_string_equal(why, "service_not_allowed: credential 'billing-prod' may not report service 'checkout'");
	/* and each stream keeps its own, many calls later */
	for (uint64_t i = 2; i < 20; i++) {
		assert_int_equal(report_services(i % 2 ? &a : &b, i, i % 2 ? "checkout" : "billing", i % 2 ? "payments" : "billing",
						 why, sizeof(why)),
				 2);
	}
	assert_int_equal(raw_finish(&a, det, sizeof(det)), GRPC_STATUS_OK);
	assert_int_equal(raw_finish(&b, det, sizeof(det)), GRPC_STATUS_OK);
	raw_free(&a);
	raw_free(&b);
}

static void test_health_open(void **state)
{
	(void)state;
	grpc_status_code cs = GRPC_STATUS_OK;
	assert_int_equal(health_check(P.addr, "", &cs), 1); /* SERVING, no token */
	int st = 0;
	assert_int_equal(http_request(P.http_port, "GET", "/readyz", "", &st, NULL, NULL), 0);
	assert_int_equal(st, 200);
}

/* Query/Status with the given authorization values (n of them). */
static grpc_status_code status_with(const char *const *values, size_t n, char *details, size_t dsz)
{
	grpc_metadata md[4];
	assert_true(n <= 4);
	for (size_t i = 0; i < n; i++) {
		md[i].key = grpc_slice_from_static_string("authorization");
		md[i].value = grpc_slice_from_copied_string(values[i]);
	}
	grpc_channel *ch = errq_channel_new(P.addr);
	Errq__V1__StatusRequest req = ERRQ__V1__STATUS_REQUEST__INIT;
	struct errq_unary_result r;
	assert_int_equal(errq_unary_call_md(ch, "/errq.v1.Query/Status", &req.base, HARNESS_DEADLINE_MS, md, n, &r), 0);
	errq_snprintf(details, dsz, "%s", r.details);
	errq_unary_result_free(&r);
	grpc_channel_destroy(ch);
	for (size_t i = 0; i < n; i++)
		grpc_slice_unref(md[i].value);
	return r.status;
}

static void test_bad_headers(void **state)
{
	(void)state;
	char det[512], bearer[80];
	size_t big = 64 * 1024;
	char *huge = malloc(big + 8);
	memcpy(huge, "Bearer ", 7);
	memset(huge + 7, 'A', big);
	huge[7 + big] = '\0';
	/* 64 KiB: over gRPC's metadata limit or ours; refused either way, never served */
	grpc_status_code c = status_with((const char *const[]){huge}, 1, det, sizeof(det));
	assert_int_not_equal(c, GRPC_STATUS_OK);
	huge[7 + 4096] = '\0'; /* 4 KiB: errqd's own bound, before any hashing */
	assert_int_equal(status_with((const char *const[]){huge}, 1, det, sizeof(det)), GRPC_STATUS_UNAUTHENTICATED);
	assert_non_null(strstr(det, "bearer token longer than 512 bytes"));
	free(huge);
	assert_int_equal(status_with((const char *const[]){"Basic b3BzOnNlY3JldA=="}, 1, det, sizeof(det)),
			 GRPC_STATUS_UNAUTHENTICATED);
	assert_non_null(strstr(det, "not 'Bearer TOKEN'"));
	assert_int_equal(status_with((const char *const[]){"Bearer "}, 1, det, sizeof(det)), GRPC_STATUS_UNAUTHENTICATED);
	errq_snprintf(bearer, sizeof(bearer), "Bearer %s", READ_TOKEN);
	assert_int_equal(status_with((const char *const[]){bearer, bearer}, 2, det, sizeof(det)),
			 GRPC_STATUS_UNAUTHENTICATED);
	assert_non_null(strstr(det, "more than one authorization header"));
	/* the scheme is case-insensitive (RFC 6750) and the good token still works */
	errq_snprintf(bearer, sizeof(bearer), "bearer %s", READ_TOKEN);
	assert_int_equal(status_with((const char *const[]){bearer}, 1, det, sizeof(det)), GRPC_STATUS_OK);
	/* and errqd is unharmed */
	assert_int_equal(kill(P.pid, 0), 0);
	grpc_status_code cs;
	assert_int_equal(health_check(P.addr, "", &cs), 1);
}

static void test_admin_audit(void **state)
{
	(void)state;
	char *out = ERRQ(0, NULL, "--token", ADMIN_TOKEN, "rules", "reload");
	free(out);
	free(ERRQ(0, NULL, "--token", ADMIN_TOKEN, "groups")); /* admin may also read */
	char *log = NULL;
	WAIT_FOR(((free(log), log = read_all(P.log)), strstr(log, "audit: admin call")));
	char *line = strstr(log, "audit: admin call");
	size_t ll = strcspn(line, "\n");
	line[ll] = '\0';
	assert_non_null(strstr(line, "ops"));
	assert_non_null(strstr(line, "/errq.v1.Alerts/ReloadRules"));
	free(log);
	log = NULL;
	/* the reload's own line names the caller's credential (issue 15) */
	WAIT_FOR(((free(log), log = read_all(P.log)), strstr(log, "\"rules reloaded\"")));
	assert_non_null(strstr(log, "\"rules reloaded\",\"by\":\"ReloadRules RPC (identity 'ops')\""));
	free(log);
}

static void test_reload(void **state)
{
	(void)state;
	char creds[4096], *err = NULL;
	/* the reader is removed from the file: after SIGHUP its token is unknown */
	errq_snprintf(creds, sizeof(creds), "%s%s", ADMIN_ENTRY, INGEST_ENTRY);
	write_config(creds);
	assert_int_equal(kill(P.pid, SIGHUP), 0);
	const char *argv[] = {ERRQ_CLI_PATH, "--token", READ_TOKEN, "status", NULL};
	WAIT_FOR(run_capture(argv, P.addr, NULL, NULL) == 4);
	/* a broken list refuses the whole reload; the credentials in force stay */
	errq_snprintf(creds, sizeof(creds), "%s  - name: leak\n    token: errq_in_clear\n    role: read\n", ADMIN_ENTRY);
	write_config(creds);
	free(ERRQ(1, &err, "--token", ADMIN_TOKEN, "rules", "reload"));
	assert_non_null(strstr(err, "errqd.yaml' line 10: credentials[1]: key 'token': tokens are never stored in clear"));
	free(err);
	free(ERRQ(0, NULL, "--token", ADMIN_TOKEN, "status"));
	struct rawstream s; /* the ingest credential is still in force */
	assert_int_equal(raw_open_token(&s, P.addr, INGEST_TOKEN), 0);
	Errq__V1__ReportRequest *req = treq_new(&G, 1, 1, "checkout", "Timeout", "upstream timed out");
	assert_int_equal(raw_send(&s, req), 0);
	treq_free(req);
	Errq__V1__ReportResponse *resp = NULL;
	assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(resp->accepted, 1);
	errq__v1__report_response__free_unpacked(resp, NULL);
	char det[128];
	raw_finish(&s, det, sizeof(det));
	raw_free(&s);
}

static void test_open_mode(void **state)
{
	(void)state;
	struct errqd_proc q;
	memset(&q, 0, sizeof(q));
	errq_snprintf(q.dir, sizeof(q.dir), "/tmp/errq-auth-open-XXXXXX");
	assert_non_null(mkdtemp(q.dir));
	char db[400], *err = NULL;
	errq_snprintf(db, sizeof(db), "%s/refused.db", q.dir);
	const char *refused[] = {"--listen", "0.0.0.0:0", "--db", db, "--http-listen", "127.0.0.1:0", NULL};
	assert_int_equal(errqd_run_once(refused, &err), 1);
	assert_non_null(strstr(err, "listen 0.0.0.0:0 without credentials: set credentials (docs/security.md) or "
				    "auth.open: true"));
	free(err);
	struct stat sb;
	assert_int_not_equal(stat(db, &sb), 0); /* refused before opening anything */
	/* auth.open: true starts, and says so */
	const char *open[] = {"--listen", "0.0.0.0:0", "--set", "auth.open=true", NULL};
	assert_int_equal(errqd_start(&q, open), 0);
	char *log = read_all(q.log);
	assert_non_null(strstr(log, "no credentials: every caller that reaches listen may report, read and administer"));
	free(log);
	free(harness_errq(q.addr, 0, NULL, (const char *const[]){"status", NULL}));
	assert_int_equal(errqd_stop(&q, SIGTERM), 0);
	errqd_cleanup(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_token),	cmocka_unit_test(test_unknown_token), cmocka_unit_test(test_read_token),
	    cmocka_unit_test(test_ingest_services), cmocka_unit_test(test_two_credentials_one_connection),
	    cmocka_unit_test(test_health_open), cmocka_unit_test(test_bad_headers),
	    cmocka_unit_test(test_admin_audit),	cmocka_unit_test(test_reload),	      cmocka_unit_test(test_open_mode),
	};
	if (getenv("ERRQ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("ERRQ_TEST_FILTER"));
	grpc_init();
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	grpc_shutdown_blocking();
	return rc;
}
