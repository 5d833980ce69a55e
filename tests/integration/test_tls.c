/* Integration: TLS on a real errqd (tls.cert, tls.key, tls.client_ca) with certificates made
 * at each run by tests/support/make_certs.sh (two CAs, a server and a client certificate from
 * each): a plain-text client is refused; liberrq and the CLI with the right CA report and
 * query; a wrong CA is refused with a clear CLI error (exit 2); mutual TLS refuses a client
 * without a certificate or with one from another CA; the pair is reloaded from disk and on
 * SIGHUP without a restart, a broken new pair is refused with one log line and the old one
 * stays; a bad pair at start stops errqd naming the file; HTTPS /readyz and /metrics (curl);
 * a client certificate's CN or SAN is a credential's tls_identity (roles enforced). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "certs.h"
#include "client_support.h"
#include "errq.h"
#include "errq_file.h"
#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"
#include "errq_banned.h"

/* The path of one of the run's certificates (certs.h: valid for the next 7 calls only). */
static const char *crt(const char *name)
{
	return certs_path(name);
}

/* errqd with TLS; cert and key are copied into its directory (d->dir/server.pem, .key; their
 * paths in installed[0] and [1] when not NULL) so a test can replace them.  client_ca NULL: no
 * mutual TLS.  config: NULL, or the text of a config file to start with. */
static void start_tls_config(struct errqd_proc *d, const char *cert, const char *key, const char *client_ca,
			     char (*installed)[320], const char *config)
{
	static char set_cert[400], set_key[400], set_ca[400], dcert[320], dkey[320], dconf[320];
	memset(d, 0, sizeof(*d));
	errq_snprintf(d->dir, sizeof(d->dir), "/tmp/errq-test-XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	errq_snprintf(dcert, sizeof(dcert), "%s/server.pem", d->dir);
	errq_snprintf(dkey, sizeof(dkey), "%s/server.key", d->dir);
	certs_install(cert, dcert);
	certs_install(key, dkey);
	errq_snprintf(set_cert, sizeof(set_cert), "tls.cert=%s", dcert);
	errq_snprintf(set_key, sizeof(set_key), "tls.key=%s", dkey);
	errq_snprintf(set_ca, sizeof(set_ca), "tls.client_ca=%s", client_ca ? client_ca : "");
	const char *args[] = {"--set", set_cert, "--set", set_key, "--set", set_ca, NULL, NULL, NULL};
	if (config) {
		errq_snprintf(dconf, sizeof(dconf), "%s/errqd.yaml", d->dir);
		FILE *f = fopen(dconf, "w");
		assert_non_null(f);
		assert_true(fputs(config, f) >= 0);
		assert_int_equal(fclose(f), 0);
		args[6] = "--config";
		args[7] = dconf;
	}
	assert_int_equal(errqd_start(d, args), 0);
	if (installed) {
		errq_snprintf(installed[0], 320, "%s", dcert);
		errq_snprintf(installed[1], 320, "%s", dkey);
	}
}

static void start_tls(struct errqd_proc *d, const char *cert, const char *key, const char *client_ca,
		      char (*installed)[320])
{
	start_tls_config(d, cert, key, client_ca, installed, NULL);
}

static void stop(struct errqd_proc *d)
{
	assert_int_equal(errqd_stop(d, SIGTERM), 0);
	errqd_cleanup(d);
}

/* errq --timeout 10s ARGS... against addr: the exit code; stdout and stderr in *out, *err
 * (freed by the caller; NULL: discarded). */
static int cli(const char *addr, char **out, char **err, ...)
{
	const char *argv[24] = {ERRQ_CLI_PATH, "--timeout", "10s"};
	int n = 3;
	va_list ap;
	va_start(ap, err);
	for (const char *a; (a = va_arg(ap, const char *)) && n < 23;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	return run_capture(argv, addr, out, err);
}

/* `errq status` with TLS flags (NULL-terminated after addr): its exit code. */
#define STATUS(addr, ...) cli(addr, NULL, NULL, __VA_ARGS__, "status", NULL)

/* How many lines of errqd's log hold every one of the NULL-terminated needles. */
static int log_lines(const struct errqd_proc *d, ...)
{
	char *text = NULL, err[512];
	int n = 0;
	if (errq_file_read(d->log, 64u << 20, &text, NULL, err, sizeof(err)))
		return 0;
	for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		bool all = true;
		va_list ap;
		va_start(ap, d);
		for (const char *s; (s = va_arg(ap, const char *));)
			all = all && strstr(line, s);
		va_end(ap);
		n += all;
	}
	free(text);
	return n;
}

/* curl over HTTPS to errqd's HTTP port: the exit code, the body in *out. */
static int curl(const struct errqd_proc *d, const char *cacert, const char *path, char **out)
{
	char url[128];
	errq_snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", d->http_port, path);
	const char *argv[] = {"/usr/bin/curl", "-sS", "--fail", "--max-time", "10", "--cacert", cacert, url, NULL};
	return run_capture(argv, NULL, out, NULL);
}

/* The value of one series ("name" or "name{labels}") in a scrape; fails the test when absent. */
static double metric(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	fail_msg("no series '%s' in the scrape", series);
	return 0;
}

/* Failures of service through liberrq over TLS (plain text without ca and cert).  n > 0: n
 * events, delivery expected: waits for every answer and returns how many were accepted.
 * n == 0: one event, refusal expected: waits for the first failed stream and returns how
 * many were accepted (0 when the refusal holds). */
static uint64_t lib_report(const char *addr, const char *ca, const char *cert, const char *key, const char *service,
			   int n)
{
	errq_options_t *o = errq_options_new();
	assert_non_null(o);
	assert_int_equal(errq_options_set_collector(o, addr), ERRQ_OK);
	assert_int_equal(errq_options_set_service(o, service), ERRQ_OK);
	if (ca || cert) /* else plain text */
		assert_int_equal(errq_options_set_tls(o, ca, cert, key), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	assert_non_null(c);
	for (int i = 0; i < (n > 0 ? n : 1); i++)
		assert_int_equal(errq_report_failure(c, "TlsCheck", NULL, "m%d", i), ERRQ_OK);
	errq_stats_t st;
	if (n > 0) /* delivery expected: every answer (a stream that fails on the way is retried) */
		WAIT_STATS(c, st, st.acked == (uint64_t)n);
	else /* refusal expected: the first failed stream */
		WAIT_STATS(c, st, st.stream_failures > 0);
	uint64_t accepted = st.accepted;
	errq_client_close(c, 0);
	return accepted;
}

static void test_plaintext_refused(void **state)
{
	(void)state;
	struct errqd_proc d;
	start_tls(&d, crt("server.pem"), crt("server.key"), NULL, NULL);
	/* liberrq's Report stream and a health check in plain text both fail */
	assert_int_equal(lib_report(d.addr, NULL, NULL, NULL, "plain", 0), 0);
	grpc_status_code st = GRPC_STATUS_OK;
	grpc_init(); /* only around direct gRPC use: see certs.h */
	assert_int_equal(health_check(d.addr, "", &st), -1);
	grpc_shutdown_blocking();
	assert_int_equal(st, GRPC_STATUS_UNAVAILABLE);
	/* the CLI without TLS: exit 2 and the likely cause */
	char *err = NULL;
	assert_int_equal(cli(d.addr, NULL, &err, "status", NULL), 2);
	assert_non_null(strstr(err, "a collector that serves TLS closes plain-text connections"));
	free(err);
	/* plain HTTP is refused too */
	char url[64];
	errq_snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", d.http_port);
	const char *argv[] = {"/usr/bin/curl", "-sS", "--fail", "--max-time", "10", url, NULL};
	assert_int_not_equal(run_capture(argv, NULL, NULL, NULL), 0);
	assert_int_equal(log_lines(&d, "errqd started", "\"tls\":\"on\"", NULL), 1);
	stop(&d);
}

static void test_right_ca_reports_and_queries(void **state)
{
	(void)state;
	struct errqd_proc d;
	start_tls(&d, crt("server.pem"), crt("server.key"), NULL, NULL);
	/* liberrq over TLS */
	assert_int_equal(lib_report(d.addr, crt("ca.pem"), NULL, NULL, "tls-lib", 5), 5);
	/* the CLI over TLS reads them back */
	char *out = NULL, *err = NULL;
	assert_int_equal(cli(d.addr, &out, &err, "--ca", crt("ca.pem"), "events", "--service", "tls-lib", "-o",
			     "jsonl", NULL),
			 0);
	int lines = 0;
	for (const char *p = out; (p = strstr(p, "\"service\":\"tls-lib\"")); p++)
		lines++;
	assert_int_equal(lines, 5);
	free(out);
	free(err);
	/* the same through the environment */
	setenv("ERRQ_CA", crt("ca.pem"), 1);
	assert_int_equal(cli(d.addr, NULL, NULL, "status", NULL), 0);
	unsetenv("ERRQ_CA");
	/* HTTPS with the same certificate */
	assert_int_equal(curl(&d, crt("ca.pem"), "/readyz", &out), 0);
	assert_non_null(strstr(out, "\"status\":\"ready\""));
	free(out);
	assert_int_equal(curl(&d, crt("ca.pem"), "/metrics", &out), 0);
	assert_non_null(strstr(out, "errq_build_info{"));
	free(out);
	stop(&d);
}

static void test_wrong_ca_refused(void **state)
{
	(void)state;
	struct errqd_proc d;
	start_tls(&d, crt("server.pem"), crt("server.key"), NULL, NULL);
	char *err = NULL;
	assert_int_equal(cli(d.addr, NULL, &err, "--ca", crt("ca2.pem"), "status", NULL), 2);
	assert_non_null(strstr(err, "certificate verify failed (the collector's certificate is not signed by a CA in --ca)"));
	assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1); /* one line */
	free(err);
	assert_int_equal(lib_report(d.addr, crt("ca2.pem"), NULL, NULL, "tls-wrong-ca", 0), 0);
	assert_int_not_equal(curl(&d, crt("ca2.pem"), "/readyz", NULL), 0);
	/* a --ca file that is not there: a usage error naming it */
	assert_int_equal(cli(d.addr, NULL, &err, "--ca", "/nonexistent/ca.pem", "status", NULL), 1);
	assert_non_null(strstr(err, "--ca: cannot read '/nonexistent/ca.pem'"));
	free(err);
	stop(&d);
}

static void test_mutual_tls(void **state)
{
	(void)state;
	struct errqd_proc d;
	start_tls(&d, crt("server.pem"), crt("server.key"), crt("ca.pem"), NULL);
	char *err = NULL;
	/* no client certificate */
	assert_int_equal(cli(d.addr, NULL, &err, "--ca", crt("ca.pem"), "status", NULL), 2);
	assert_non_null(strstr(err, "closes connections without one: --cert and --key"));
	free(err);
	assert_int_equal(lib_report(d.addr, crt("ca.pem"), NULL, NULL, "tls-no-cert", 0), 0);
	/* a client certificate from another CA */
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca.pem"), "--cert", crt("client2.pem"), "--key", crt("client2.key")), 2);
	assert_int_equal(lib_report(d.addr, crt("ca.pem"), crt("client2.pem"), crt("client2.key"), "tls-other-ca", 0), 0);
	/* the right one */
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca.pem"), "--cert", crt("client.pem"), "--key", crt("client.key")), 0);
	assert_int_equal(lib_report(d.addr, crt("ca.pem"), crt("client.pem"), crt("client.key"), "tls-mtls", 3), 3);
	/* HTTP asks for no client certificate: the probes stay open */
	char *out = NULL;
	assert_int_equal(curl(&d, crt("ca.pem"), "/readyz", &out), 0);
	assert_non_null(strstr(out, "\"status\":\"ready\""));
	free(out);
	assert_int_equal(log_lines(&d, "errqd started", "\"tls\":\"mutual\"", NULL), 1);
	stop(&d);
}

/* The seam with credentials (server/auth.c): a verified client certificate's common name, or
 * one of its SANs, is a tls_identity mapped to a role. */
static void test_mtls_identity_roles(void **state)
{
	(void)state;
	struct errqd_proc d;
	start_tls_config(&d, crt("server.pem"), crt("server.key"), crt("ca.pem"), NULL,
			 "credentials:\n"
			 "  - name: reader\n"
			 "    tls_identity: errq-test-client\n" /* client.pem's CN (it has no SAN) */
			 "    role: read\n"
			 "  - name: reporter\n"
			 "    tls_identity: spiffe://errq.test/svc\n" /* a SAN of client3.pem */
			 "    role: ingest\n"
			 "    services: [tls-svc]\n");
	/* the flags of the two clients (own copies: crt() reuses its buffers) */
	char ca[256], k1[2][256], k3[2][256];
	errq_snprintf(ca, sizeof(ca), "%s", crt("ca.pem"));
	errq_snprintf(k1[0], 256, "%s", crt("client.pem"));
	errq_snprintf(k1[1], 256, "%s", crt("client.key"));
	errq_snprintf(k3[0], 256, "%s", crt("client3.pem"));
	errq_snprintf(k3[1], 256, "%s", crt("client3.key"));
	const char *c1[] = {"--ca", ca, "--cert", k1[0], "--key", k1[1]};
	const char *c3[] = {"--ca", ca, "--cert", k3[0], "--key", k3[1]};
	char *err = NULL;
	/* the reader reads, and may not resolve a group (admin) nor report */
	assert_int_equal(STATUS(d.addr, c1[0], c1[1], c1[2], c1[3], c1[4], c1[5]), 0);
	assert_int_equal(cli(d.addr, NULL, &err, c1[0], c1[1], c1[2], c1[3], c1[4], c1[5], "resolve",
			     "0123456789abcdef", NULL),
			 4);
	assert_non_null(strstr(err, "permission denied"));
	free(err);
	assert_int_equal(lib_report(d.addr, crt("ca.pem"), crt("client.pem"), crt("client.key"), "tls-svc", 0), 0);
	/* the reporter (by SAN) reports its service, not another one, and reads nothing */
	assert_int_equal(lib_report(d.addr, crt("ca.pem"), crt("client3.pem"), crt("client3.key"), "tls-svc", 2), 2);
	assert_int_equal(lib_report(d.addr, crt("ca.pem"), crt("client3.pem"), crt("client3.key"), "tls-other", 1), 0);
	assert_int_equal(STATUS(d.addr, c3[0], c3[1], c3[2], c3[3], c3[4], c3[5]), 4);
	/* what the reporter stored, read by the reader */
	char *out = NULL;
	assert_int_equal(cli(d.addr, &out, NULL, c1[0], c1[1], c1[2], c1[3], c1[4], c1[5], "events", "--service",
			     "tls-svc", "-o", "jsonl", NULL),
			 0);
	int lines = 0;
	for (const char *p = out; (p = strstr(p, "\"service\":\"tls-svc\"")); p++)
		lines++;
	assert_int_equal(lines, 2);
	free(out);
	stop(&d);
}

/* Replacing the files is seen by new connections (gRPC and HTTPS) without a restart. */
static void test_reload_from_disk(void **state)
{
	(void)state;
	struct errqd_proc d;
	char files[2][320]; /* the certificate and key errqd reads */
	const char *cert = files[0], *key = files[1];
	start_tls(&d, crt("server.pem"), crt("server.key"), NULL, files);
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca.pem")), 0);
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca2.pem")), 2);
	pid_t pid = d.pid;
	certs_install(crt("server2.key"), key);
	certs_install(crt("server2.pem"), cert);
	WAIT_FOR(STATUS(d.addr, "--ca", crt("ca2.pem")) == 0);
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca.pem")), 2);
	WAIT_FOR(curl(&d, crt("ca2.pem"), "/readyz", NULL) == 0);
	assert_int_not_equal(curl(&d, crt("ca.pem"), "/readyz", NULL), 0);
	assert_int_equal(lib_report(d.addr, crt("ca2.pem"), NULL, NULL, "tls-reloaded", 2), 2);
	assert_int_equal(d.pid, pid); /* the same process */
	assert_int_equal(kill(d.pid, 0), 0);
	assert_true(log_lines(&d, "tls: certificate loaded", "changed on disk", "errq test server 2", NULL) >= 1);
	char *text = NULL;
	assert_int_equal(curl(&d, crt("ca2.pem"), "/metrics", &text), 0);
	assert_true(metric(text, "errq_tls_reloads_total{result=\"loaded\"}") >= 1);
	/* make_certs.sh's certificates end in 2 days */
	double expiry = metric(text, "errq_tls_certificate_expiry_timestamp_seconds");
	double now = (double)errq_now_ns() / 1e9;
	assert_true(expiry > now + 86400 && expiry < now + 3 * 86400);
	free(text);
	stop(&d);
}

/* SIGHUP re-reads at once; a broken new pair is refused with a log line and the old pair
 * keeps serving, on disk and on SIGHUP. */
static void test_sighup_and_broken_pair(void **state)
{
	(void)state;
	struct errqd_proc d;
	char files[2][320]; /* the certificate and key errqd reads */
	const char *cert = files[0], *key = files[1];
	start_tls(&d, crt("server.pem"), crt("server.key"), NULL, files);

	/* a certificate whose key is not beside it: refused, the old pair stays (the files are
	 * looked at when a handshake comes: connect while waiting) */
	certs_install(crt("server2.pem"), cert);
	WAIT_FOR((STATUS(d.addr, "--ca", crt("ca.pem")),
		  log_lines(&d, "tls: new certificate refused", "is not the key of the certificate", NULL) == 1));
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca.pem")), 0);
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca2.pem")), 2);
	assert_int_equal(curl(&d, crt("ca.pem"), "/readyz", NULL), 0);
	/* the same on SIGHUP */
	assert_int_equal(kill(d.pid, SIGHUP), 0);
	WAIT_FOR(log_lines(&d, "tls: new certificate refused", "SIGHUP", "is not the key of the certificate", NULL) == 1);
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca.pem")), 0);
	/* an unreadable key: refused too */
	assert_int_equal(unlink(key), 0);
	assert_int_equal(kill(d.pid, SIGHUP), 0);
	WAIT_FOR(log_lines(&d, "tls: new certificate refused", "SIGHUP", "cannot read", "server.key", NULL) == 1);
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca.pem")), 0);

	/* the matching key arrives: a SIGHUP loads the pair, new connections get it */
	certs_install(crt("server2.key"), key);
	assert_int_equal(kill(d.pid, SIGHUP), 0);
	WAIT_FOR(log_lines(&d, "tls: certificate loaded", "SIGHUP", "errq test server 2", NULL) == 1);
	assert_int_equal(STATUS(d.addr, "--ca", crt("ca2.pem")), 0);
	char *text = NULL;
	assert_int_equal(curl(&d, crt("ca2.pem"), "/metrics", &text), 0);
	assert_true(metric(text, "errq_tls_reloads_total{result=\"refused\"}") >= 3);
	assert_true(metric(text, "errq_tls_reloads_total{result=\"loaded\"}") >= 1);
	free(text);
	/* without a config file there are no rules to reload: no error line about them */
	assert_int_equal(log_lines(&d, "rules reload refused", NULL), 0);
	assert_int_equal(kill(d.pid, 0), 0);
	stop(&d);
}

/* A bad pair at start stops errqd with an error naming the file. */
static void test_bad_pair_at_start(void **state)
{
	(void)state;
	char set_cert[300], set_key[300], set_ca[300], *err = NULL;
	const char *args[] = {"--listen", "127.0.0.1:0", "--http-listen", "", "--storage", "none",
			      "--set", set_cert, "--set", set_key, "--set", set_ca, NULL};
	struct {
		const char *cert, *key, *ca, *want;
	} cases[] = {
	    {"server.pem", "server2.key", "", "is not the key of the certificate in tls.cert"},
	    {"server.pem", "missing.key", "", "tls.key: cannot read '"},
	    {"server.key", "server.key", "", "no PEM certificate in it"},
	    {"server.pem", "server.pem", "", "no PEM private key in it"},
	    {"server.pem", "server.key", "server.key", "tls.client_ca '"},
	    {"server.pem", NULL, "", "tls.cert is set without tls.key"},
	    {NULL, NULL, "ca.pem", "tls.client_ca is set without tls.cert and tls.key"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errq_snprintf(set_cert, sizeof(set_cert), "tls.cert=%s", cases[i].cert ? crt(cases[i].cert) : "");
		errq_snprintf(set_key, sizeof(set_key), "tls.key=%s", cases[i].key ? crt(cases[i].key) : "");
		errq_snprintf(set_ca, sizeof(set_ca), "tls.client_ca=%s", cases[i].ca[0] ? crt(cases[i].ca) : "");
		assert_int_equal(errqd_run_once(args, &err), 1);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: want '%s' in: %s", i, cases[i].want, err);
		free(err);
		err = NULL;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plaintext_refused),
	    cmocka_unit_test(test_right_ca_reports_and_queries),
	    cmocka_unit_test(test_wrong_ca_refused),
	    cmocka_unit_test(test_mutual_tls),
	    cmocka_unit_test(test_mtls_identity_roles),
	    cmocka_unit_test(test_reload_from_disk),
	    cmocka_unit_test(test_sighup_and_broken_pair),
	    cmocka_unit_test(test_bad_pair_at_start),
	};
	return cmocka_run_group_tests_name("integration_tls", tests, certs_setup, certs_teardown);
}
