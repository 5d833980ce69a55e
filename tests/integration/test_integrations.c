/* Integration: the notifier types of issue 15 end to end — a real errqd trips a rule and each
 * receiver sees the alert fire and then resolve:
 *  - alertmanager: Debian's prometheus-alertmanager on an unused loopback port (its API shows
 *    the alert active, its endsAt moving on as errqd re-posts, then gone; its own webhook
 *    reports firing and resolved to this test's receiver);
 *  - slack: this test's HTTP receiver checks the message (text, attachment, escaping, link);
 *  - pagerduty: the receiver stands in for the Events API v2 (answers 202, the schema and the
 *    dedup_key are checked; the routing key is read from a file and never logged) — and,
 *    for every type's machinery, a 503 retried, a 400 dead-lettered, `errq alerts replay`;
 *  - email: python3-aiosmtpd (tests/integration/smtp_sink.py) with AUTH; the messages it
 *    stored are checked (headers, one-line subject whatever the event says, body).
 * Every wait is a deadline (HARNESS_DEADLINE_MS); timers are short (recovery 1 s, probe 1 s).
 * ERRQ_TEST_FILTER=test_slack runs one test; ERRQ_SHOW_PAYLOADS=1 prints what each got (stderr,
 * whole: cmocka's print_message cuts long lines). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>
#include <curl/curl.h>
#include <jansson.h>
#include <cmocka.h>

#include "errq_spawn.h"
#include "errq_str.h"
#include "errq_time.h"
#include "alerts_support.h"
#include "certs.h"

#ifndef SMTP_SINK_PATH
#error "SMTP_SINK_PATH: tests/integration/smtp_sink.py"
#endif

/* A rule that fires on one failure and resolves after a quiet 1 s probe following 1 s open. */
#define QUICK_RULE(name, service, sev, notifier)                                                  \
	"rules:\n"                                                                                 \
	"  - name: " name "\n"                                                                     \
	"    match: {service: " service "}\n"                                                      \
	"    group_by: [service, error_type]\n"                                                    \
	"    trip: {failures: 1, window: 60s}\n"                                                   \
	"    recovery_timeout: 1s\n"                                                               \
	"    half_open: {probe: 1s, failures: 1}\n"                                                \
	"    severity: " sev "\n"                                                                  \
	"    repeat_interval: 0s\n"                                                                \
	"    notify: [" notifier "]\n"

static int setup(void **state)
{
	(void)state;
	return alerts_setup("/tmp/errq-integr-XXXXXX");
}

static int teardown(void **state)
{
	(void)state;
	return alerts_teardown();
}

static bool show(void)
{
	const char *s = getenv("ERRQ_SHOW_PAYLOADS");
	return s && *s == '1';
}

/* Request i's request line ("POST /path HTTP/1.1") has path. */
static void assert_path(int i, const char *path)
{
	char want[256];
	errq_snprintf(want, sizeof(want), "POST %s HTTP/1.1\r\n", path);
	if (strncmp(E.rv.req[i].headers, want, strlen(want)) != 0)
		fail_msg("request %d: want '%s', got '%.80s'", i, path, E.rv.req[i].headers);
}

/* ---- slack ---- */

static void test_slack(void **state)
{
	(void)state;
	start_receiver(0);
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: chat\n"
		   "    type: slack\n"
		   "    url: http://127.0.0.1:%d/hooks/T000/B000\n"
		   "    template: \"{{status}}: <{{link}}|{{rule}}> [{{severity}}] {{count}} in {{window}}s: {{message}}\"\n"
		   "    link_template: \"https://errq.example/events/{{event_id}}?rule={{rule}}&key={{key}}\"\n"
		   QUICK_RULE("checkout-timeouts", "checkout", "critical", "chat"),
		   E.rv.port);
	start_errqd();
	char ids[1][ERRQ_ID_HEX_BUFSZ];
	assert_int_equal(report_failures(E.d.addr, &G, 1, "checkout", "TimeoutError", "reserve <b> & retry", "reserve",
					 ids),
			 1);
	assert_int_equal(receiver_wait(&E.rv, 2), 2);
	if (show())
		fprintf(stderr, "slack firing: %s\nslack resolved: %s\n", E.rv.req[0].body, E.rv.req[1].body);
	for (int i = 0; i < 2; i++) {
		assert_path(i, "/hooks/T000/B000");
		assert_header(i, "Content-Type", "application/json");
	}
	char link[512], text[1024];
	errq_snprintf(link, sizeof(link),
		      "https://errq.example/events/%s?rule=checkout-timeouts&key=service%%3Dcheckout%%2Cerror_type%%3DTimeoutError",
		      ids[0]);
	json_t *f = body_json(0), *r = body_json(1);
	/* the values are escaped for Slack (& < >: the link's & too, as Slack wants in <url|text>),
	 * the template's own <link|text> is kept */
	errq_snprintf(text, sizeof(text),
		      "firing: <https://errq.example/events/%s?rule=checkout-timeouts&amp;key=service%%3Dcheckout%%2Cerror_type%%3DTimeoutError"
		      "|checkout-timeouts> [critical] 1 in 60s: reserve &lt;b&gt; &amp; retry",
		      ids[0]);
	assert_string_equal(jstr(f, "text"), text);
	json_t *att = json_array_get(jget(f, "attachments"), 0);
	assert_non_null(att);
	assert_string_equal(jstr(att, "title"), "[FIRING] checkout-timeouts");
	assert_string_equal(jstr(att, "title_link"), link);
	assert_string_equal(jstr(att, "color"), "#d00000");
	const char *want[][2] = {{"Severity", "critical"},
				 {"Status", "firing"},
				 {"Rule", "checkout-timeouts"},
				 {"Key", "service=checkout,error_type=TimeoutError"},
				 {"Failures", "1 in 60s"},
				 {"Error type", "TimeoutError"},
				 {"Message", "reserve &lt;b&gt; &amp; retry"}};
	json_t *fields = jget(att, "fields");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		json_t *fl = json_array_get(fields, i);
		assert_non_null(fl);
		assert_string_equal(jstr(fl, "title"), want[i][0]);
		assert_string_equal(jstr(fl, "value"), want[i][1]);
	}
	/* the resolved message: same alert, green */
	assert_true(strncmp(jstr(r, "text"), "resolved: <", 11) == 0);
	json_t *ratt = json_array_get(jget(r, "attachments"), 0);
	assert_string_equal(jstr(ratt, "title"), "[RESOLVED] checkout-timeouts");
	assert_string_equal(jstr(ratt, "color"), "#2eb67d");
	assert_string_equal(jstr(att, "footer"), jstr(ratt, "footer")); /* names the alert id */
	json_decref(f);
	json_decref(r);
}

/* ---- pagerduty ---- */

#define ROUTING_KEY "R0ut1ngKey-0123456789abcdef0123"

static void test_pagerduty(void **state)
{
	(void)state;
	char keyfile[400];
	start_receiver(0);
	receiver_script(&E.rv, 202, 0); /* PagerDuty answers 202 Accepted */
	receiver_script(&E.rv, 202, 0);
	errq_snprintf(keyfile, sizeof(keyfile), "%s/pd.key", E.d.dir);
	write_file(keyfile, "%s\n", ROUTING_KEY);
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: pager\n"
		   "    type: pagerduty\n"
		   "    url: http://127.0.0.1:%d/v2/enqueue\n"
		   "    routing_key_file: %s\n"
		   "    template: \"{{rule}} on {{service}}: {{error_type}} ({{count}} in {{window}}s)\"\n"
		   "    link_template: \"https://errq.example/events/{{event_id}}\"\n"
		   QUICK_RULE("payments-errors", "payments", "error", "pager"),
		   E.rv.port, keyfile);
	start_errqd();
	char ids[1][ERRQ_ID_HEX_BUFSZ];
	assert_int_equal(report_failures(E.d.addr, &G, 1, "payments", "CardDeclined", "issuer said no", NULL, ids), 1);
	assert_int_equal(receiver_wait(&E.rv, 2), 2);
	if (show())
		fprintf(stderr, "pagerduty trigger: %s\npagerduty resolve: %s\n", E.rv.req[0].body, E.rv.req[1].body);
	json_t *t = body_json(0), *r = body_json(1);
	assert_path(0, "/v2/enqueue");
	assert_string_equal(jstr(t, "routing_key"), ROUTING_KEY);
	assert_string_equal(jstr(t, "event_action"), "trigger");
	const char *dedup = jstr(t, "dedup_key");
	char *alert = q_text("SELECT lower(hex(alert_id)) FROM alerts WHERE rule = ?1", "payments-errors");
	assert_non_null(alert);
	char want[64];
	errq_snprintf(want, sizeof(want), "errq-%s", alert);
	assert_string_equal(dedup, want);
	json_t *pl = jget(t, "payload");
	assert_string_equal(jstr(pl, "summary"), "payments-errors on payments: CardDeclined (1 in 60s)");
	assert_string_equal(jstr(pl, "source"), "payments");
	assert_string_equal(jstr(pl, "severity"), "error");
	assert_string_equal(jstr(pl, "class"), "CardDeclined");
	assert_rfc3339_ms(jstr(pl, "timestamp"));
	assert_string_equal(jstr(jget(pl, "custom_details"), "message"), "issuer said no");
	char link[256];
	errq_snprintf(link, sizeof(link), "https://errq.example/events/%s", ids[0]);
	assert_string_equal(jstr(json_array_get(jget(t, "links"), 0), "href"), link);
	/* resolve: the same dedup_key, no payload */
	assert_string_equal(jstr(r, "routing_key"), ROUTING_KEY);
	assert_string_equal(jstr(r, "event_action"), "resolve");
	assert_string_equal(jstr(r, "dedup_key"), want);
	assert_null(json_object_get(r, "payload"));
	assert_int_equal(E.rv.req[0].status, 202);
	/* the outbox took 202 as delivered; the secret is nowhere in errqd's log */
	WAIT_FOR(q_int("SELECT count(*) FROM deliveries WHERE status = 1", NULL) == 2);
	assert_int_equal(log_count(ROUTING_KEY), 0);
	free(alert);
	json_decref(t);
	json_decref(r);
}


/* The machinery every type keeps, on PagerDuty: a 503 is "down" (retried), a 400 refuses
 * the event (max_attempts 2: dead-lettered), `errq alerts replay` sends it again (202). */
static void test_pagerduty_retry_dead_replay(void **state)
{
	(void)state;
	start_receiver(0);
	receiver_script(&E.rv, 503, 0);
	receiver_script(&E.rv, 400, 0);
	receiver_script(&E.rv, 202, 0);
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: pager\n"
		   "    type: pagerduty\n"
		   "    url: http://127.0.0.1:%d/v2/enqueue\n"
		   "    routing_key: \"" ROUTING_KEY "\"\n"
		   "    max_attempts: 2\n"
		   "rules:\n"
		   "  - name: replayed\n"
		   "    match: {service: replay}\n"
		   "    trip: {failures: 1, window: 60s}\n"
		   "    recovery_timeout: 1h\n"
		   "    notify: [pager]\n",
		   E.rv.port);
	start_errqd();
	assert_int_equal(report_failures(E.d.addr, &G, 1, "replay", "E", "m", NULL, NULL), 1);
	WAIT_FOR(q_int("SELECT count(*) FROM deliveries WHERE status = 2", NULL) == 1); /* dead */
	assert_int_equal(receiver_count(&E.rv), 2);
	assert_int_equal(E.rv.req[0].status, 503);
	assert_int_equal(E.rv.req[1].status, 400);
	assert_int_equal(q_int("SELECT attempts FROM deliveries WHERE status = 2", NULL), 2);
	char *alert = q_text("SELECT lower(hex(alert_id)) FROM alerts WHERE rule = ?1", "replayed");
	assert_non_null(alert);
	const char *args[] = {"alerts", "replay", alert, NULL};
	char *out = harness_errq(E.d.addr, 0, NULL, args);
	assert_non_null(strstr(out, "1 dead delivery sent again"));
	free(out);
	WAIT_FOR(q_int("SELECT count(*) FROM deliveries WHERE status = 1", NULL) == 1); /* delivered */
	assert_int_equal(receiver_count(&E.rv), 3);
	assert_int_equal(E.rv.req[2].status, 202);
	assert_string_equal(E.rv.req[2].body, E.rv.req[0].body); /* the same trigger, built again */
	free(alert);
}


/* A bad template refuses the config at load (errqd --check-config, as at start), with the
 * file, the line, the notifier, the key and the field. */
static void test_bad_template_refused(void **state)
{
	(void)state;
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: chat\n"
		   "    type: slack\n"
		   "    url: http://127.0.0.1:9/hook\n"
		   "    template: \"{{rule}} is {{sttaus}}\"\n"
		   "rules: []\n");
	char *err = NULL;
	const char *check[] = {"--config", E.cfg, "--check-config", NULL};
	int rc = errqd_run_once(check, &err);
	fprintf(stderr, "--check-config: exit %d: %s", rc, err);
	assert_int_not_equal(rc, 0);
	assert_true(rc < 128);
	assert_non_null(strstr(err, E.cfg));
	assert_non_null(strstr(err, "line 5: notifier 'chat': key 'template': unknown field '{{sttaus}}' (known: rule, key,"));
	free(err);
}

/* ---- email ---- */

struct sink {
	struct errq_child child;
	char dir[400];
	int port;
};

static void sink_start(struct sink *s, const char *user, const char *password)
{
	char log[480], portf[420], err[256];
	errq_snprintf(s->dir, sizeof(s->dir), "%s/mail", E.d.dir);
	assert_int_equal(mkdir(s->dir, 0700), 0);
	errq_snprintf(log, sizeof(log), "%s/sink.log", E.d.dir);
	const char *argv[] = {"/usr/bin/python3", "-W", "ignore", SMTP_SINK_PATH, s->dir, user, password, NULL};
	struct errq_spawn_opts o = {.argv = argv, .out_path = log, .pdeath_sig = SIGTERM};
	if (errq_spawn(&s->child, &o, err, sizeof(err)))
		fail_msg("cannot start the SMTP sink: %s", err);
	errq_snprintf(portf, sizeof(portf), "%s/port", s->dir);
	int ports[2];
	if (errq_child_wait_ports(&s->child, portf, HARNESS_DEADLINE_MS, ports, err, sizeof(err)))
		fail_msg("the SMTP sink did not start (is python3-aiosmtpd installed?): %s (log %s)", err, log);
	s->port = ports[0];
}

/* Message i as the sink stored it (malloc'd), or NULL while it has not come. */
static char *sink_message(struct sink *s, int i)
{
	char path[480];
	errq_snprintf(path, sizeof(path), "%s/%03d.eml", s->dir, i);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = calloc(1, 128 * 1024);
	size_t n = fread(buf, 1, 128 * 1024 - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The value of header name in the header block of msg (folded lines joined), into out. */
static const char *mail_header(const char *msg, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name), o = 0;
	const char *end = strstr(msg, "\r\n\r\n");
	for (const char *p = msg; p && p < end; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
		if (strncasecmp(p, name, nl) || p[nl] != ':')
			continue;
		for (const char *q = p + nl + 1; q < end; q++) {
			if (q[0] == '\r' && q[1] == '\n' && q[2] != ' ' && q[2] != '\t')
				break;
			if (*q != '\r' && *q != '\n' && o + 1 < outsz)
				out[o++] = *q;
		}
		out[o] = '\0';
		return out + (out[0] == ' ');
	}
	return NULL;
}

static void test_email(void **state)
{
	(void)state;
	struct sink s;
	char pwfile[400], h[1024];
	memset(&s, 0, sizeof(s));
	sink_start(&s, "errq", "s3cret-pw");
	errq_snprintf(pwfile, sizeof(pwfile), "%s/smtp.pw", E.d.dir);
	write_file(pwfile, "s3cret-pw\n");
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: mail\n"
		   "    type: email\n"
		   "    url: smtp://127.0.0.1:%d\n"
		   "    starttls: optional\n"
		   "    from: errq@example.com\n"
		   "    to: [oncall@example.com, sre@example.com]\n"
		   "    username: errq\n"
		   "    password_file: %s\n"
		   "    subject: \"[errq] {{status}} {{rule}}: {{message}}\"\n"
		   QUICK_RULE("inventory-down", "inventory", "warning", "mail"),
		   s.port, pwfile);
	start_errqd();
	/* a message that tries to add a header through the subject */
	assert_int_equal(report_failures(E.d.addr, &G, 1, "inventory", "DbError", "db gone\r\nBcc: evil@example.com",
					 NULL, NULL),
			 1);
	char *m0 = NULL, *m1 = NULL;
	WAIT_FOR((m1 = sink_message(&s, 1)) != NULL);
	m0 = sink_message(&s, 0);
	assert_non_null(m0);
	if (show())
		fprintf(stderr, "email firing:\n%s\nemail resolved:\n%s\n", m0, m1);
	for (int i = 0; i < 2; i++) {
		const char *m = i ? m1 : m0;
		assert_string_equal(mail_header(m, "X-Sink-Mail-From", h, sizeof(h)), "errq@example.com");
		assert_string_equal(mail_header(m, "X-Sink-Rcpt-To", h, sizeof(h)), "oncall@example.com,sre@example.com");
		assert_string_equal(mail_header(m, "X-Sink-Auth", h, sizeof(h)), "errq");
		assert_string_equal(mail_header(m, "From", h, sizeof(h)), "errq <errq@example.com>");
		assert_string_equal(mail_header(m, "To", h, sizeof(h)), "<oncall@example.com>, <sre@example.com>");
		assert_non_null(mail_header(m, "Date", h, sizeof(h)));
		assert_non_null(mail_header(m, "Message-ID", h, sizeof(h)));
		assert_string_equal(mail_header(m, "Content-Type", h, sizeof(h)), "text/plain; charset=utf-8");
		assert_null(mail_header(m, "Bcc", h, sizeof(h))); /* no header injection */
	}
	assert_string_equal(mail_header(m0, "Subject", h, sizeof(h)),
			    "[errq] firing inventory-down: db gone  Bcc: evil@example.com");
	assert_string_equal(mail_header(m1, "Subject", h, sizeof(h)),
			    "[errq] resolved inventory-down: db gone  Bcc: evil@example.com");
	char id0[256], id1[256];
	assert_non_null(mail_header(m0, "Message-ID", id0, sizeof(id0)));
	assert_non_null(mail_header(m1, "Message-ID", id1, sizeof(id1)));
	assert_string_not_equal(id0, id1);
	assert_true(strstr(id0, ".firing.1@example.com>") != NULL);
	assert_non_null(strstr(m0, "\r\n\r\nAlert firing: inventory-down (warning)\r\nKey: service=inventory,error_type=DbError\r\n"));
	assert_non_null(strstr(m1, "\r\n\r\nAlert resolved: inventory-down (warning)\r\n"));
	assert_non_null(strstr(m0, "Message: db gone\r\nBcc: evil@example.com\r\n")); /* the body keeps it, as text */
	assert_int_equal(log_count("s3cret-pw"), 0);
	free(m0);
	free(m1);
	errq_child_stop(&s.child, SIGTERM, HARNESS_DEADLINE_MS);
}

/* STARTTLS required and a server that has none: the server answered, the message is refused
 * (never sent in clear), and after max_attempts it is dead-lettered. */
static void test_email_starttls_required(void **state)
{
	(void)state;
	struct sink s;
	memset(&s, 0, sizeof(s));
	sink_start(&s, NULL, NULL);
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: mail\n"
		   "    type: email\n"
		   "    url: smtp://127.0.0.1:%d\n"
		   "    starttls: required\n"
		   "    max_attempts: 1\n"
		   "    from: errq@example.com\n"
		   "    to: [oncall@example.com]\n"
		   QUICK_RULE("tls-rule", "tls", "info", "mail"),
		   s.port);
	start_errqd();
	assert_int_equal(report_failures(E.d.addr, &G, 1, "tls", "E", "m", NULL, NULL), 1);
	WAIT_FOR(q_int("SELECT count(*) FROM deliveries WHERE status = 2", NULL) == 1); /* dead */
	char *err = q_text("SELECT last_error FROM deliveries WHERE status = 2", NULL);
	print_message("dead-lettered with: %s\n", err ? err : "(null)");
	assert_null(sink_message(&s, 0));
	free(err);
	errq_child_stop(&s.child, SIGTERM, HARNESS_DEADLINE_MS);
}

/* STARTTLS for real: a sink that requires it, with a certificate from the tests' CA
 * (make_certs.sh).  A notifier with `ca_file` naming that CA delivers over TLS; one without
 * it does not trust the certificate (the system store knows no test CA), records the failure
 * and sends nothing, in clear or otherwise. */
static void test_email_starttls(void **state)
{
	(void)state;
	char cert[400], key[400], ca[400], h[256];
	assert_int_equal(certs_setup(NULL), 0);
	errq_snprintf(cert, sizeof(cert), "%s", certs_path("server.pem"));
	errq_snprintf(key, sizeof(key), "%s", certs_path("server.key"));
	errq_snprintf(ca, sizeof(ca), "%s", certs_path("ca.pem"));
	struct sink s;
	memset(&s, 0, sizeof(s));
	setenv("SINK_TLS_CERT", cert, 1);
	setenv("SINK_TLS_KEY", key, 1);
	sink_start(&s, NULL, NULL);
	unsetenv("SINK_TLS_CERT");
	unsetenv("SINK_TLS_KEY");
	write_file(E.cfg,
		   "notifiers:\n"
		   "  - name: mail\n"
		   "    type: email\n"
		   "    url: smtp://127.0.0.1:%d\n"
		   "    starttls: required\n"
		   "    ca_file: %s\n"
		   "    from: errq@example.com\n"
		   "    to: [trusted@example.com]\n"
		   "  - name: untrusted\n"
		   "    type: email\n"
		   "    url: smtp://127.0.0.1:%d\n"
		   "    starttls: required\n"
		   "    from: errq@example.com\n"
		   "    to: [untrusted@example.com]\n"
		   QUICK_RULE("tls-rule", "tls", "info", "mail, untrusted"),
		   s.port, ca, s.port);
	start_errqd();
	assert_int_equal(report_failures(E.d.addr, &G, 1, "tls", "E", "m", NULL, NULL), 1);
	char *m0 = NULL;
	WAIT_FOR((m0 = sink_message(&s, 0)) != NULL);
	assert_string_equal(mail_header(m0, "X-Sink-TLS", h, sizeof(h)), "yes");
	assert_string_equal(mail_header(m0, "X-Sink-Rcpt-To", h, sizeof(h)), "trusted@example.com");
	free(m0);
	/* the other one failed on the certificate */
	WAIT_FOR(q_int("SELECT count(*) FROM deliveries WHERE notifier = 'untrusted' AND attempts >= 1"
		       " AND last_error IS NOT NULL",
		       NULL) >= 1);
	char *err = q_text("SELECT last_error FROM deliveries WHERE notifier = 'untrusted' AND last_error IS NOT NULL", NULL);
	print_message("untrusted: %s\n", err ? err : "(null)");
	assert_non_null(err);
	free(err);
	for (int i = 0; i < 4; i++) { /* what came: never for the untrusted notifier */
		char *m = sink_message(&s, i);
		if (m)
			assert_string_not_equal(mail_header(m, "X-Sink-Rcpt-To", h, sizeof(h)), "untrusted@example.com");
		free(m);
	}
	errq_child_stop(&s.child, SIGTERM, HARNESS_DEADLINE_MS);
	certs_teardown(NULL);
}

/* ---- alertmanager ---- */

struct fetch {
	char *p;
	size_t len;
};

static size_t fetch_cb(char *d, size_t sz, size_t nm, void *u)
{
	struct fetch *f = u;
	size_t n = sz * nm;
	char *np = realloc(f->p, f->len + n + 1);
	if (!np)
		return 0;
	f->p = np;
	memcpy(f->p + f->len, d, n);
	f->len += n;
	f->p[f->len] = '\0';
	return n;
}

/* GET url: the status, the body in *body (malloc'd) */
static long http_get(const char *url, char **body)
{
	struct fetch f = {NULL, 0};
	CURL *e = curl_easy_init();
	long code = 0;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &f);
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(e);
	*body = f.p;
	return code;
}

struct am {
	struct errq_child child;
	int port;
	char base[64];
};

/* Alertmanager's view of alertname: its active alert (json, decref) or NULL. */
static json_t *am_alert(struct am *am, const char *alertname)
{
	char url[160], *body = NULL;
	errq_snprintf(url, sizeof(url), "%s/api/v2/alerts?filter=alertname%%3D%%22%s%%22", am->base, alertname);
	json_t *arr = NULL, *a = NULL;
	if (http_get(url, &body) == 200 && body && (arr = json_loads(body, 0, NULL)) && json_array_size(arr) == 1)
		a = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	free(body);
	return a;
}

static bool am_has_alert(struct am *am, const char *alertname)
{
	json_t *a = am_alert(am, alertname);
	json_decref(a);
	return a != NULL;
}

static char *am_ends_at(struct am *am, const char *alertname)
{
	json_t *a = am_alert(am, alertname);
	char *s = a && json_string_value(json_object_get(a, "endsAt")) ? strdup(json_string_value(json_object_get(a, "endsAt"))) : NULL;
	json_decref(a);
	return s;
}

static void am_start(struct am *am, int webhook_port)
{
	char cfg[420], data[420], log[420], listen[64], err[256], *body = NULL;
	errq_snprintf(cfg, sizeof(cfg), "%s/alertmanager.yml", E.d.dir);
	errq_snprintf(data, sizeof(data), "--storage.path=%s/am-data", E.d.dir);
	errq_snprintf(log, sizeof(log), "%s/alertmanager.log", E.d.dir);
	/* route everything to this test's receiver at once, resolved notices included */
	write_file(cfg,
		   "route:\n"
		   "  receiver: errq-test\n"
		   "  group_by: [alertname]\n"
		   "  group_wait: 0s\n"
		   "  group_interval: 1s\n"
		   "  repeat_interval: 1h\n"
		   "receivers:\n"
		   "  - name: errq-test\n"
		   "    webhook_configs:\n"
		   "      - url: http://127.0.0.1:%d/am\n"
		   "        send_resolved: true\n",
		   webhook_port);
	am->port = harness_quiet_port();
	assert_true(am->port > 0);
	errq_snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", am->port);
	errq_snprintf(am->base, sizeof(am->base), "http://127.0.0.1:%d", am->port);
	char cfgarg[440];
	errq_snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", cfg);
	const char *argv[] = {"prometheus-alertmanager", cfgarg, listen, data, "--cluster.listen-address=", NULL};
	struct errq_spawn_opts o = {.argv = argv, .out_path = log, .pdeath_sig = SIGTERM};
	if (errq_spawn(&am->child, &o, err, sizeof(err)))
		fail_msg("cannot start prometheus-alertmanager (scripts/install-deps installs it): %s", err);
	char ready[128];
	errq_snprintf(ready, sizeof(ready), "%s/-/ready", am->base);
	uint64_t dl = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	while (http_get(ready, &body) != 200) {
		free(body);
		body = NULL;
		if (!errq_child_running(&am->child) || errq_mono_ns() > dl)
			fail_msg("alertmanager did not become ready (log %s)", log);
		harness_msleep(20);
	}
	free(body);
}

/* Starts Alertmanager (its webhook to this test's receiver) and writes the two configs of an
 * Alertmanager test into cfg: notifier 'am' (re-posts every 1 s, 5 s under valgrind, then
 * notifier_extra) and a rule open for an hour (then rule_extra) that trips on one failure in
 * cfg[0] and on two in cfg[1] — a changed definition, so a reload to cfg[1] resolves its
 * alert.  Writes cfg[0]. */
static void am_setup(struct am *am, char cfg[2][1024], const char *notifier_extra, const char *rule_extra)
{
	/* Alertmanager keeps a firing alert until endsAt = 4 re-post periods: under valgrind a
	 * restart of errqd alone takes over 4 s, and with 1 s periods Alertmanager resolved the
	 * alert by itself during it (test_alertmanager_held_reminder_restart in make test-long) */
	const char *resend = under_valgrind() ? "5s" : "1s";
	memset(am, 0, sizeof(*am));
	start_receiver(0); /* Alertmanager's own webhook receiver */
	am_start(am, E.rv.port);
	for (int i = 0; i < 2; i++)
		errq_snprintf(cfg[i], 1024,
			      "notifiers:\n"
			      "  - name: am\n"
			      "    type: alertmanager\n"
			      "    url: %s\n"
			      "    resend_interval: %s\n"
			      "%s"
			      "rules:\n"
			      "%s"
			      "    trip: {failures: %d, window: 60s}\n"
			      "    recovery_timeout: 1h\n"
			      "    notify: [am]\n",
			      am->base, resend, notifier_extra, rule_extra, i + 1);
	write_file(E.cfg, "%s", cfg[0]);
}

static void test_alertmanager(void **state)
{
	(void)state;
	struct am am;
	/* open for an hour: the test resolves it by changing the rule (a reload), after it saw
	 * errqd re-post the firing alert */
	char cfg[2][1024];
	am_setup(&am, cfg, "    link_template: \"https://errq.example/events/{{event_id}}\"\n",
		 "  - name: search-latency\n"
		 "    match: {service: search}\n"
		 "    group_by: [service, details.region]\n"
		 "    severity: critical\n"
		 "    repeat_interval: 0s\n");
	start_errqd();
	assert_int_equal(report_failures(E.d.addr, &G, 1, "search", "SlowQuery", "p99 over 2s", NULL, NULL), 1);
	json_t *a = NULL;
	WAIT_FOR((a = am_alert(&am, "search-latency")) != NULL);
	if (show()) {
		char *s = json_dumps(a, JSON_COMPACT);
		fprintf(stderr, "alertmanager GET /api/v2/alerts (firing): %s\n", s);
		free(s);
	}
	json_t *labels = jget(a, "labels");
	assert_string_equal(jstr(labels, "alertname"), "search-latency");
	assert_string_equal(jstr(labels, "severity"), "critical");
	assert_string_equal(jstr(labels, "service"), "search");
	assert_null(json_object_get(labels, "details_region")); /* empty: Alertmanager drops it, like Prometheus */
	assert_string_equal(jstr(jget(a, "status"), "state"), "active");
	assert_string_equal(jstr(jget(a, "annotations"), "message"), "p99 over 2s");
	assert_true(strncmp(jstr(a, "generatorURL"), "https://errq.example/events/", 28) == 0);
	char *ends0 = strdup(jstr(a, "endsAt"));
	json_decref(a);
	/* re-posted while firing: endsAt moves on */
	char *ends = NULL;
	WAIT_FOR((free(ends), ends = am_ends_at(&am, "search-latency")) && strcmp(ends, ends0) > 0);
	print_message("alertmanager endsAt %s -> %s (re-posted)\n", ends0, ends);
	free(ends);
	ends = NULL;
	/* across a restart of errqd the re-posts go on (the firing is not sent again as a notice) */
	assert_int_equal(errqd_stop(&E.d, SIGTERM), 0);
	char *before = am_ends_at(&am, "search-latency");
	assert_non_null(before);
	start_errqd();
	WAIT_FOR((free(ends), ends = am_ends_at(&am, "search-latency")) && strcmp(ends, before) > 0);
	print_message("alertmanager endsAt %s -> %s (re-posted after a restart)\n", before, ends);
	assert_int_equal(log_count("re-posting the alerts still firing"), 1);
	free(before);
	free(ends);
	/* Alertmanager's own webhook said firing */
	assert_true(receiver_wait(&E.rv, 1) >= 1);
	/* a changed rule resolves the alert: it leaves Alertmanager's active alerts */
	write_file(E.cfg, "%s", cfg[1]);
	assert_int_equal(kill(E.d.pid, SIGHUP), 0);
	WAIT_FOR(!am_has_alert(&am, "search-latency"));
	/* and Alertmanager's webhook reports it resolved */
	json_t *last = NULL;
	WAIT_FOR((json_decref(last), last = receiver_count(&E.rv) ? body_json(receiver_count(&E.rv) - 1) : NULL) &&
		 !strcmp(jstr(last, "status"), "resolved"));
	json_t *first = body_json(0);
	assert_string_equal(jstr(first, "status"), "firing");
	if (show())
		fprintf(stderr, "alertmanager webhook (firing): %s\nalertmanager webhook (resolved): %s\n", E.rv.req[0].body,
			      E.rv.req[receiver_count(&E.rv) - 1].body);
	json_t *ra = json_array_get(jget(last, "alerts"), 0);
	assert_string_equal(jstr(jget(ra, "labels"), "alertname"), "search-latency");
	assert_string_equal(jstr(ra, "status"), "resolved");
	json_decref(first);
	json_decref(last);
	free(ends0);
	errq_child_stop(&am.child, SIGTERM, HARNESS_DEADLINE_MS);
}

/* `errq silence add --rule R --for 1h` (the silence's id is not needed). */
static void silence_rule(const char *rule)
{
	const char *args[] = {"silence", "add", "--rule", rule, "--for", "1h", "--comment", "itest", NULL};
	char *out = harness_errq(E.d.addr, 0, NULL, args);
	assert_non_null(strstr(out, "silence "));
	free(out);
}

/* Alertmanager's view of alertname: its endsAt as ns (0: no active alert). */
static uint64_t am_ends_ns(struct am *am, const char *alertname)
{
	char *s = am_ends_at(am, alertname);
	uint64_t ns = 0;
	if (s && errq_parse_rfc3339(s, &ns))
		fail_msg("alertmanager endsAt '%s' is not RFC 3339", s);
	free(s);
	return ns;
}

/* An alert whose firing Alertmanager received, silenced in errq so that its reminders are held
 * back (the latest outbox row is `silenced`), across a restart of errqd: the re-posts resume
 * from the delivered firing, so Alertmanager keeps it open until errq resolves it. */
static void test_alertmanager_held_reminder_restart(void **state)
{
	(void)state;
	struct am am;
	/* open for an hour, a reminder every second; resolved by a changed rule (a reload) */
	char cfg[2][1024];
	am_setup(&am, cfg, "",
		 "  - name: db-down\n"
		 "    match: {service: db}\n"
		 "    group_by: [service]\n"
		 "    repeat_interval: 1s\n");
	start_errqd();
	assert_int_equal(report_failures(E.d.addr, &G, 1, "db", "Unavailable", "db gone", NULL, NULL), 1);
	WAIT_FOR(am_has_alert(&am, "db-down"));
	WAIT_FOR(q_int("SELECT count(*) FROM deliveries WHERE kind = 'firing' AND status = 1", NULL) >= 1);
	silence_rule("db-down");
	/* a reminder held back, and nothing left to send (rows made before the silence delivered) */
	WAIT_FOR(q_int("SELECT count(*) FROM deliveries WHERE status = 3", NULL) >= 1 &&
		 q_int("SELECT count(*) FROM deliveries WHERE status = 0", NULL) == 0);
	assert_int_equal(errqd_stop(&E.d, SIGTERM), 0);
	/* the case: the latest row is a held reminder, after a delivered firing */
	assert_int_equal(q_int("SELECT status FROM deliveries ORDER BY id DESC LIMIT 1", NULL), 3);
	assert_int_equal(q_int("SELECT CASE WHEN kind = 'firing' THEN 1 ELSE 0 END FROM deliveries ORDER BY id DESC LIMIT 1", NULL),
			 1); /* CASE: PostgreSQL's comparison is a boolean, not 1 */
	uint64_t before = am_ends_ns(&am, "db-down");
	assert_true(before > 0);
	uint64_t down_ns = errq_mono_ns();
	start_errqd();
	/* re-posted after the restart: endsAt moves on (before the fix it stayed, and Alertmanager
	 * resolved the alert by itself when it passed) */
	uint64_t e1 = 0;
	WAIT_FOR((e1 = am_ends_ns(&am, "db-down")) > before);
	print_message("alertmanager endsAt +%.3f s after a restart of %.3f s (reminders held by a silence)\n",
		      (double)(e1 - before) / 1e9, (double)(errq_mono_ns() - down_ns) / 1e9);
	assert_int_equal(log_count("re-posting the alerts still firing"), 1);
	/* and they go on: once that endsAt has passed, the alert is still active there, later */
	WAIT_FOR(errq_now_ns() > e1);
	json_t *a = am_alert(&am, "db-down");
	assert_non_null(a);
	assert_string_equal(jstr(jget(a, "status"), "state"), "active");
	uint64_t e2 = 0;
	assert_int_equal(errq_parse_rfc3339(jstr(a, "endsAt"), &e2), 0);
	assert_true(e2 > e1);
	json_decref(a);
	/* errq resolves it (a changed rule; the silence holds back no resolved): gone there too */
	WAIT_FOR(receiver_count(&E.rv) >= 1); /* its firing */
	int hooks = receiver_count(&E.rv);
	write_file(E.cfg, "%s", cfg[1]);
	assert_int_equal(kill(E.d.pid, SIGHUP), 0);
	WAIT_FOR(!am_has_alert(&am, "db-down"));
	WAIT_FOR(q_int("SELECT count(*) FROM deliveries WHERE kind = 'resolved' AND status = 1", NULL) == 1);
	/* Alertmanager's webhook: firing, and resolved only once errq resolved it (had it resolved
	 * the alert by itself meanwhile, a resolved would come before the last) */
	json_t *last = NULL;
	int nh = 0;
	WAIT_FOR((json_decref(last), nh = receiver_count(&E.rv), last = nh > hooks ? body_json(nh - 1) : NULL) &&
		 !strcmp(jstr(last, "status"), "resolved"));
	json_decref(last);
	for (int i = 0; i < nh - 1; i++) {
		json_t *b = body_json(i);
		assert_string_equal(jstr(b, "status"), "firing");
		json_decref(b);
	}
	errq_child_stop(&am.child, SIGTERM, HARNESS_DEADLINE_MS);
}

int main(void)
{
	grpc_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_slack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pagerduty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pagerduty_retry_dead_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_email, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_email_starttls_required, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_email_starttls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alertmanager, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alertmanager_held_reminder_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_template_refused, setup, teardown),
	};
	const char *filter = getenv("ERRQ_TEST_FILTER");
	if (filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests_name("integration_integrations", tests, NULL, NULL);
}
