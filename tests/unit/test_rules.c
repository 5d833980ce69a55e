/* Unit: server/rules.c — loading rules and notifiers (defaults, every refusal with file, line
 * and reason), matching with globs and details, circuit keys, the definition hash. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "rules.h"
#include "rules_template.h"

#define NS UINT64_C(1000000000)
#define S(x) ((uint64_t)(x) * NS)

static char err[1024];

static struct ruleset *load(const char *text)
{
	struct ruleset *rs = NULL;
	int rc = rules_load_mem(&rs, "rules.yaml", text, strlen(text), err, sizeof(err));
	if (rc)
		fail_msg("refused: %s", err);
	assert_non_null(rs);
	return rs;
}

/* The example, as written there. */
static const char *example =
    "notifiers:\n"
    "  - name: ops\n"
    "    type: webhook            # webhook | log\n"
    "    url: http://127.0.0.1:9000/alerts\n"
    "    timeout: \"5s\"\n"
    "    max_attempts: 8\n"
    "    headers: {Authorization: \"Bearer abc\"}\n"
    "rules:\n"
    "  - name: checkout-timeouts\n"
    "    match: {service: checkout, error_type: \"Timeout*\"}\n"
    "    group_by: [service, error_type]\n"
    "    trip: {failures: 3, window: \"60s\"}\n"
    "    recovery_timeout: \"60s\"\n"
    "    half_open: {probe: \"30s\", failures: 1, successes: 10}\n"
    "    backoff: {factor: 2, max: \"30m\"}\n"
    "    severity: critical\n"
    "    repeat_interval: \"4h\"\n"
    "    max_event_age: \"60s\"\n"
    "    notify: [ops]\n";

static void test_example(void **state)
{
	struct ruleset *rs = load(example);
	assert_int_equal(rs->n_notifiers, 1);
	const struct rules_notifier *n = rules_find_notifier(rs, "ops");
	assert_non_null(n);
	assert_int_equal(n->type, RULES_NOTIFIER_WEBHOOK);
	assert_string_equal(n->url, "http://127.0.0.1:9000/alerts");
	assert_int_equal(n->timeout_ns, S(5));
	assert_int_equal(n->max_attempts, 8);
	assert_int_equal(n->n_headers, 1);
	assert_string_equal(n->headers[0].name, "Authorization");
	assert_string_equal(n->headers[0].value, "Bearer abc");
	assert_null(n->secret);
	assert_int_equal(n->line, 2);

	assert_int_equal(rs->n_rules, 1);
	const struct rule *r = rules_find(rs, "checkout-timeouts");
	assert_non_null(r);
	assert_null(rules_find(rs, "nope"));
	assert_int_equal(r->line, 9);
	assert_int_equal(r->n_match, 2);
	assert_int_equal(r->match[0].field.id, RULES_F_SERVICE);
	assert_string_equal(r->match[0].glob, "checkout");
	assert_int_equal(r->match[1].field.id, RULES_F_ERROR_TYPE);
	assert_string_equal(r->match[1].glob, "Timeout*");
	assert_int_equal(r->n_group_by, 2);
	assert_int_equal(r->group_by[0].id, RULES_F_SERVICE);
	assert_int_equal(r->group_by[1].id, RULES_F_ERROR_TYPE);
	const struct circuit_config *c = &r->circuit;
	assert_int_equal(c->failures, 3);
	assert_int_equal(c->failure_rate_ppm, 0);
	assert_int_equal(c->window_ns, S(60));
	assert_int_equal(c->recovery_timeout_ns, S(60));
	assert_int_equal(c->probe_ns, S(30));
	assert_int_equal(c->probe_failures, 1);
	assert_int_equal(c->probe_successes, 10);
	assert_int_equal(c->backoff_factor, 2000);
	assert_int_equal(c->backoff_max_ns, S(1800));
	assert_int_equal(c->repeat_interval_ns, S(4 * 3600));
	assert_int_equal(c->max_event_age_ns, S(60));
	assert_int_equal(r->severity, RULES_SEV_CRITICAL);
	assert_int_equal(r->n_notify, 1);
	assert_int_equal(r->notify[0], 0);
	assert_true(r->wants_outcomes); /* half_open.successes */
	assert_int_equal(r->max_circuits, RULES_DEFAULT_MAX_CIRCUITS);
	assert_int_equal(circuit_config_check(c, err, sizeof(err)), 0);
	rules_free(rs);
	rules_free(NULL);
}

static void test_defaults(void **state)
{
	struct ruleset *rs = load("rules:\n"
				  "  - name: r\n"
				  "    trip: {failures: 1, window: 30s}\n"
				  "  - name: slow.recovery_1\n"
				  "    trip: {failure_rate: 0.25, window: 5m}\n"
				  "    recovery_timeout: 1h\n"
				  "    repeat_interval: 0s\n"
				  "    max_event_age: 0s\n");
	const struct rule *r = &rs->rules[0];
	const struct circuit_config *c = &r->circuit;
	assert_int_equal(r->n_match, 0);
	assert_int_equal(r->n_group_by, 0);
	assert_int_equal(r->n_notify, 0);
	assert_int_equal(r->severity, RULES_SEV_WARNING);
	assert_int_equal(r->max_circuits, 1000);
	assert_false(r->wants_outcomes);
	assert_int_equal(c->recovery_timeout_ns, S(60));
	assert_int_equal(c->probe_ns, S(30));
	assert_int_equal(c->probe_failures, 1);
	assert_int_equal(c->probe_successes, 0);
	assert_int_equal(c->backoff_factor, 2000);
	assert_int_equal(c->backoff_max_ns, S(1800));
	assert_int_equal(c->repeat_interval_ns, S(4 * 3600));
	assert_int_equal(c->max_event_age_ns, S(30)); /* the window */
	r = &rs->rules[1];
	c = &r->circuit;
	assert_int_equal(c->failures, 0);
	assert_int_equal(c->failure_rate_ppm, 250000);
	assert_int_equal(c->min_calls, 10);
	assert_int_equal(c->window_ns, S(300));
	assert_int_equal(c->backoff_max_ns, S(3600)); /* not below recovery_timeout */
	assert_int_equal(c->repeat_interval_ns, 0);
	assert_int_equal(c->max_event_age_ns, 0);
	assert_true(r->wants_outcomes);
	rules_free(rs);
}

static void test_empty(void **state)
{
	const char *texts[] = {"", "# nothing\n", "listen: 127.0.0.1:4770\nretention: 7d\n", "rules:\n",
			       "rules: []\nnotifiers: []\n", "notifiers: ~\nrules: null\n"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct ruleset *rs = load(texts[i]);
		assert_int_equal(rs->n_rules, 0);
		assert_int_equal(rs->n_notifiers, 0);
		rules_free(rs);
	}
}

/* text must be refused with "'rules.yaml' line N: ..." containing each of want[]. */
static void refused_(const char *text, int line, const char *want1, const char *want2, int src_line)
{
	struct ruleset *rs = (struct ruleset *)1;
	char prefix[64];
	int rc = rules_load_mem(&rs, "rules.yaml", text, strlen(text), err, sizeof(err));
	if (rc != -1)
		fail_msg("test_rules.c:%d: accepted:\n%s", src_line, text);
	assert_null(rs);
	snprintf(prefix, sizeof(prefix), "'rules.yaml' line %d: ", line);
	if (getenv("SHOW_ERRORS")) /* SHOW_ERRORS=1 ./test_rules prints every refusal for review */
		printf("%s\n", err);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || (want1 && !strstr(err, want1)) ||
	    (want2 && !strstr(err, want2)))
		fail_msg("test_rules.c:%d: got \"%s\", want \"%s...%s...%s\"", src_line, err, prefix,
			 want1 ? want1 : "", want2 ? want2 : "");
}
#define refused(text, line, w1, w2) refused_(text, line, w1, w2, __LINE__)

#define RULE_HEAD "rules:\n  - name: a\n    trip: {failures: 1, window: 60s}\n" /* lines 1-3 */

static void test_refusals_rules(void **state)
{
	refused(RULE_HEAD "    sevrity: high\n", 4, "rule 'a': key 'sevrity'",
		"unknown key (expected one of: name, match, group_by, trip, recovery_timeout");
	refused(RULE_HEAD "    match: [service]\n", 4, "key 'match'", "expected a mapping");
	refused(RULE_HEAD "    group_by: service\n", 4, "key 'group_by'", "expected a list");
	refused(RULE_HEAD "    severity: high\n", 4, "key 'severity'", "'high' is not one of: critical, error, warning, info");
	refused(RULE_HEAD "    severity: [a]\n", 4, "key 'severity'", "expected a single value");
	refused(RULE_HEAD "  - name: a\n    trip: {failures: 2, window: 1s}\n", 4, "rule 'a': key 'name'",
		"already defined at line 2");
	refused(RULE_HEAD "    trip: {failures: 2, window: 1s}\n", 4, "key 'trip'", "set twice");
	refused("rules:\n  - trip: {failures: 1, window: 60s}\n", 2, "rule #1: key 'name'", "missing");
	refused("rules:\n  - name: \"a b\"\n    trip: {failures: 1, window: 60s}\n", 2, "key 'name'", "is not a name");
	refused("rules:\n  - name: a\n", 2, "key 'trip'", "missing");
	refused("rules:\n  - name: a\n    trip: {failures: 1}\n", 3, "key 'trip.window'", "missing");
	refused("rules:\n  - name: a\n    trip: {window: 1m}\n", 3, "key 'trip'", "needs failures, failure_rate or both");
	refused("rules:\n  - name: a\n    trip: {failures: 0, window: 1m}\n", 3, "key 'trip.failures'",
		"'0' is not an integer in [1, 1000000]");
	refused("rules:\n  - name: a\n    trip: {failures: -1, window: 1m}\n", 3, "key 'trip.failures'", "not an integer");
	refused("rules:\n  - name: a\n    trip: {failures: 3, window: 25h}\n", 3, "key 'trip.window'",
		"'25h' is out of range (1s to 1d)");
	refused("rules:\n  - name: a\n    trip: {failures: 3, window: 1500ms}\n", 3, "key 'trip.window'",
		"not a whole number of seconds");
	refused("rules:\n  - name: a\n    trip: {failures: 3, window: soon}\n", 3, "key 'trip.window'",
		"'soon' is not a duration");
	refused("rules:\n  - name: a\n    trip: {failure_rate: 1.5, window: 1m}\n", 3, "key 'trip.failure_rate'",
		"'1.5' is not a number in (0, 1]");
	refused("rules:\n  - name: a\n    trip: {failure_rate: 0, window: 1m}\n", 3, "key 'trip.failure_rate'", "(0, 1]");
	refused("rules:\n  - name: a\n    trip: {failure_rate: 0.1234567, window: 1m}\n", 3, "key 'trip.failure_rate'",
		"more than 6 decimals");
	refused("rules:\n  - name: a\n    trip: {failures: 2, min_calls: 5, window: 1m}\n", 3, "key 'trip.min_calls'",
		"only with failure_rate");
	refused("rules:\n  - name: a\n    trip: {failures: 2, windw: 1m}\n", 3, "key 'trip.windw'", "unknown key");
	refused(RULE_HEAD "    recovery_timeout: 0s\n", 4, "key 'recovery_timeout'", "out of range (1s to 7d)");
	refused(RULE_HEAD "    half_open: {probe: 30s, failures: 0}\n", 4, "key 'half_open.failures'", "[1, 1000000]");
	refused(RULE_HEAD "    half_open: {probes: 30s}\n", 4, "key 'half_open.probes'", "unknown key");
	refused(RULE_HEAD "    backoff: {factor: 0.5}\n", 4, "key 'backoff.factor'", "'0.5' is not a number from 1 to 100");
	refused(RULE_HEAD "    backoff: {factor: 1.0001}\n", 4, "key 'backoff.factor'", "more than 3 decimals");
	refused(RULE_HEAD "    recovery_timeout: 10m\n    backoff: {max: 5m}\n", 5, "key 'backoff.max'",
		"5m is shorter than recovery_timeout (10m)");
	refused(RULE_HEAD "    repeat_interval: 31d\n", 4, "key 'repeat_interval'", "0s to turn it off, or 1s to 30d");
	refused(RULE_HEAD "    max_event_age: forever\n", 4, "key 'max_event_age'", "not a duration");
	refused(RULE_HEAD "    max_circuits: 0\n", 4, "key 'max_circuits'", "[1, 100000]");
	/* match and group_by */
	refused(RULE_HEAD "    match: {handled: maybe}\n", 4, "key 'match.handled'", "'maybe' is not true or false");
	refused(RULE_HEAD "    match: {fingerprint: abc}\n", 4, "key 'match.fingerprint'",
		"unknown field (expected one of: service, environment, task, error_type, error_code, handled, details.KEY)");
	refused(RULE_HEAD "    match: {\"details.a b\": x}\n", 4, "key 'match.details.a b'", "not a details key");
	refused(RULE_HEAD "    match: {\"details.\": x}\n", 4, "key 'match.details.'", "not a details key");
	refused(RULE_HEAD "    match: {service: a, service: b}\n", 4, "key 'match.service'", "set twice");
	refused(RULE_HEAD "    match: {service: {a: b}}\n", 4, "key 'match.service'", "expected a single value");
	refused(RULE_HEAD "    group_by: [service, handled]\n", 4, "key 'group_by'", "'handled' is not a field to group by");
	refused(RULE_HEAD "    group_by: [service, task, service]\n", 4, "key 'group_by'", "'service' listed twice");
	refused(RULE_HEAD "    group_by: [a, b, c, d, e, f, g, h, i]\n", 4, "key 'group_by'", "not a field");
	refused(RULE_HEAD "    group_by: [service, environment, task, error_type, error_code, fingerprint, details.a, "
			  "details.b, details.c]\n",
		4, "key 'group_by'", "more than 8 fields");
	/* outcomes carry only service and task */
	refused("rules:\n  - name: a\n    trip: {failure_rate: 0.5, window: 1m}\n    match:\n      service: x\n"
		"      error_type: T\n",
		6, "key 'match.error_type'", "a failure_rate rule can match only on service and task");
	refused("rules:\n  - name: a\n    trip: {failure_rate: 0.5, window: 1m}\n    group_by:\n      - task\n"
		"      - details.region\n",
		6, "key 'group_by'", "can group only by service and task");
	/* structure */
	refused("- a\n- b\n", 1, "the top level must be a mapping", NULL);
	refused("rules: {a: 1}\n", 1, "key 'rules'", "expected a list");
	refused("rules: []\nrules: []\n", 2, "key 'rules'", "set twice");
	refused("rules:\n  - just-a-name\n", 2, "rule #1: ", "expected a mapping");
	refused("rules:\n  - name: a\n    trip: {failures: 1, window: 60s\n", 4, NULL, NULL); /* YAML syntax */
}

static void test_refusals_notifiers(void **state)
{
	refused("notifiers:\n  - name: ops\n    url: http://x/\n", 2, "notifier 'ops': key 'type'", "missing");
	refused("notifiers:\n  - name: ops\n    type: sms\n", 3, "key 'type'",
		"'sms' is not one of: webhook, log, alertmanager, slack, pagerduty, email");
	refused("notifiers:\n  - name: ops\n    type: webhook\n", 2, "notifier 'ops': key 'url'", "missing");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: ftp://x/\n", 4, "key 'url'",
		"'ftp://x/' is not an http:// or https:// URL");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: \"http://x/a b\"\n", 4, "key 'url'", "URL");
	refused("notifiers:\n  - name: ops\n    type: log\n    url: http://x/\n", 4, "key 'url'", "not a key of a log notifier");
	refused("notifiers:\n  - name: ops\n    type: log\n  - name: ops\n    type: log\n", 4, "notifier 'ops': key 'name'",
		"already defined at line 2");
	refused("notifiers:\n  - type: log\n", 2, "notifier #1: key 'name'", "missing");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: http://x/\n    max_attempts: 0\n", 5,
		"key 'max_attempts'", "[1, 100]");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: http://x/\n    timeout: 90s\n", 5, "key 'timeout'",
		"out of range (100ms to 1m)");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: http://x/\n    retries: 3\n", 5, "key 'retries'",
		"unknown key (expected one of: name, type, url, timeout, max_attempts, headers, secret, template,");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: http://x/\n    headers: {Idempotency-Key: x}\n", 5,
		"key 'headers.Idempotency-Key'", "set by errq");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: http://x/\n    headers: {\"X A\": x}\n", 5,
		"key 'headers'", "'X A' is not a header name");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: http://x/\n    headers: {X-A: \"a\\nb\"}\n", 5,
		"key 'headers.X-A'", "one line");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: http://x/\n    headers: {X-A: a, x-a: b}\n", 5,
		"key 'headers.x-a'", "set twice");
	refused("notifiers:\n  - name: ops\n    type: webhook\n    url: http://x/\n    secret: \"\"\n", 5, "key 'secret'",
		"1 to 256 bytes");
	/* the integrations (docs/alerts.md "Notifier types") */
	refused("notifiers:\n  - name: s\n    type: slack\n    url: http://x/\n    template: \"{{rule}} {{nope}}\"\n", 5,
		"notifier 's': key 'template'", "unknown field '{{nope}}' (known: rule, key, severity, status, count,");
	refused("notifiers:\n  - name: s\n    type: slack\n    url: http://x/\n    template: \"{{rule\"\n", 5,
		"key 'template'", "'{{' at byte 1 is not closed by '}}'");
	refused("notifiers:\n  - name: s\n    type: slack\n    url: http://x/\n    secret: k\n", 5, "key 'secret'",
		"not a key of a slack notifier");
	refused("notifiers:\n  - name: s\n    type: slack\n    url: http://x/\n    link_template: \"http://e/{{link}}\"\n", 5,
		"key 'link_template'", "'{{link}}' cannot be used in link_template");
	refused("notifiers:\n  - name: s\n    type: slack\n    url: http://x/\n    link_template: \"ftp://e/{{event_id}}\"\n",
		5, "key 'link_template'", "does not start with http:// or https://");
	refused("notifiers:\n  - name: p\n    type: pagerduty\n", 2, "notifier 'p': key 'routing_key'",
		"missing (routing_key, routing_key_file or routing_key_env)");
	refused("notifiers:\n  - name: p\n    type: pagerduty\n    routing_key_env: ERRQ_TEST_NO_SUCH_VAR\n", 4,
		"key 'routing_key_env'", "environment variable 'ERRQ_TEST_NO_SUCH_VAR' is not set");
	refused("notifiers:\n  - name: p\n    type: pagerduty\n    routing_key_file: /nonexistent/key\n", 4,
		"key 'routing_key_file'", "cannot read '/nonexistent/key': No such file or directory");
	refused("notifiers:\n  - name: p\n    type: pagerduty\n    routing_key: abc\n    routing_key_env: HOME\n", 5,
		"key 'routing_key_env'", "the routing key is already given at line 4");
	refused("notifiers:\n  - name: m\n    type: email\n    url: http://x/\n", 4, "key 'url'",
		"'http://x/' is not an smtp:// or smtps:// URL");
	refused("notifiers:\n  - name: m\n    type: email\n    url: smtp://x\n    to: [a@b]\n", 2, "key 'from'", "missing");
	refused("notifiers:\n  - name: m\n    type: email\n    url: smtp://x\n    from: \"a@b\\r\\nBcc: c@d\"\n", 5,
		"key 'from'", "is not a mail address");
	refused("notifiers:\n  - name: m\n    type: email\n    url: smtp://x\n    from: a@b\n    to: [a@b]\n"
		"    subject: \"x\\r\\nBcc: evil@x {{rule}}\"\n", 7, "key 'subject'", "must be one line (no CR or LF");
	refused("notifiers:\n  - name: m\n    type: email\n    url: smtp://x\n    from: a@b\n    to: [a@b]\n    username: u\n",
		2, "key 'password'", "missing (SMTP auth takes both");
	refused("notifiers:\n  - name: m\n    type: email\n    url: smtps://x\n    from: a@b\n    to: [a@b]\n    starttls: required\n",
		2, "key 'starttls'", "not with smtps://");
	refused("notifiers:\n  - name: w\n    type: webhook\n    url: https://x/\n    ca_file: /nonexistent/ca.pem\n", 5,
		"key 'ca_file'", "cannot read '/nonexistent/ca.pem': No such file or directory");
	refused("notifiers:\n  - name: l\n    type: log\n    ca_file: /etc/hostname\n", 4, "key 'ca_file'",
		"not a key of a log notifier");
	refused("notifiers:\n  - name: a\n    type: alertmanager\n    url: http://am:9093\n    resend_interval: 500ms\n", 5,
		"key 'resend_interval'", "out of range (1s to 1h)");
	/* rules name notifiers */
	refused(RULE_HEAD "    notify: [pager]\n", 4, "key 'notify'", "unknown notifier 'pager' (no notifiers are defined)");
	refused("notifiers:\n  - {name: ops, type: log}\n  - {name: mail, type: log}\n" RULE_HEAD "    notify: [ops, pager]\n",
		7, "key 'notify'", "unknown notifier 'pager' (defined: ops, mail)");
	refused("notifiers:\n  - {name: ops, type: log}\n" RULE_HEAD "    notify: [ops, ops]\n", 6, "key 'notify'",
		"'ops' listed twice");
	refused("notifiers:\n  - {name: ops, type: log}\n" RULE_HEAD "    notify: ops\n", 6, "key 'notify'",
		"expected a list, like [ops]");
}

/* Templates render each value escaped for its target; the literal text as written. */
static void test_template_render(void **state)
{
	char out[RULES_TEMPLATE_OUT_MAX + 1], why[600];
	const char *v[TPL_N_FIELDS] = {[TPL_RULE] = "r<1>", [TPL_MESSAGE] = "a & b\r\nSubject: x", [TPL_KEY] = "service=a b/c"};
	rules_template_render("*{{rule}}*: {{ message }}{{link}}", v, TPL_ESC_SLACK, out, sizeof(out), NULL);
	assert_string_equal(out, "*r&lt;1&gt;*: a &amp; b\r\nSubject: x");
	rules_template_render("[{{rule}}] {{message}}", v, TPL_ESC_LINE, out, sizeof(out), NULL);
	assert_string_equal(out, "[r<1>] a & b  Subject: x");
	rules_template_render("http://e/?k={{key}}", v, TPL_ESC_URL, out, sizeof(out), NULL);
	assert_string_equal(out, "http://e/?k=service%3Da%20b%2Fc");
	/* cut to the output's size at a character boundary, with an ellipsis */
	const char *w[TPL_N_FIELDS] = {[TPL_MESSAGE] = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"};
	bool cut = false;
	size_t n = rules_template_render("{{message}}", w, TPL_ESC_NONE, out, 10, &cut);
	assert_true(cut);
	assert_int_equal(n, 9); /* 6 bytes of text (three 2-byte characters), then the 3-byte ellipsis */
	assert_string_equal(out, "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x80\xa6");
	/* a value cut inside never leaves half a character or half an escape */
	const char *x[TPL_N_FIELDS] = {[TPL_MESSAGE] = "ab\xc3\xa9&"};
	rules_template_render("{{message}}", x, TPL_ESC_NONE, out, 2 + 1 + 3 + 1, &cut); /* room for "ab" + 1 */
	assert_string_equal(out, "ab\xe2\x80\xa6");
	rules_template_render("{{message}}", x, TPL_ESC_SLACK, out, 6 + 3 + 1, &cut); /* "ab\xc3\xa9" fits, "&amp;" not */
	assert_string_equal(out, "ab\xc3\xa9\xe2\x80\xa6");
	assert_int_equal(rules_template_check("{{count}} in {{window}}s", true, true, why, sizeof(why)), 0);
	assert_int_equal(rules_template_check("", true, false, why, sizeof(why)), -1);
}

static void test_limits(void **state)
{
	char *text = malloc(64 * 1024);
	size_t o = (size_t)snprintf(text, 64 * 1024, "rules:\n");
	for (int i = 0; i <= RULES_MAX_RULES; i++)
		o += (size_t)snprintf(text + o, 64 * 1024 - o, "  - {name: r%d, trip: {failures: 1, window: 1s}}\n", i);
	refused(text, 2, "key 'rules'", "more than 256 rules");
	/* exactly the limit loads */
	char *last = strstr(text, "  - {name: r256,");
	*last = '\0';
	struct ruleset *rs = load(text);
	assert_int_equal(rs->n_rules, RULES_MAX_RULES);
	rules_free(rs);
	o = (size_t)snprintf(text, 64 * 1024, "notifiers:\n");
	for (int i = 0; i <= RULES_MAX_NOTIFIERS; i++)
		o += (size_t)snprintf(text + o, 64 * 1024 - o, "  - {name: n%d, type: log}\n", i);
	refused(text, 2, "key 'notifiers'", "more than 32 notifiers");
	/* a name at the length limit */
	char name[RULES_NAME_MAX + 1];
	memset(name, 'n', RULES_NAME_MAX);
	name[RULES_NAME_MAX] = '\0';
	snprintf(text, 64 * 1024, "rules:\n  - {name: %s, trip: {failures: 1, window: 1s}}\n", name);
	refused(text, 2, "key 'name'", "is not a name (1 to 63");
	name[RULES_NAME_MAX - 1] = '\0';
	snprintf(text, 64 * 1024, "rules:\n  - {name: %s, trip: {failures: 1, window: 1s}}\n", name);
	rs = load(text);
	rules_free(rs);
	free(text);
}

static void test_load_file(void **state)
{
	char path[64];
	struct ruleset *rs = NULL;
	snprintf(path, sizeof(path), "/tmp/errq-rules-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *bad = "listen: 127.0.0.1:1\nrules:\n  - name: a\n    trip: {failures: 1, window: 1s}\n    notify: [x]\n";
	assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	assert_int_equal(rules_load(&rs, path, err, sizeof(err)), -1);
	assert_null(rs);
	char want[128];
	snprintf(want, sizeof(want), "'%s' line 5: rule 'a': key 'notify': unknown notifier 'x'", path);
	assert_non_null(strstr(err, want));
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, example, strlen(example)), (ssize_t)strlen(example));
	close(fd);
	assert_int_equal(rules_load(&rs, path, err, sizeof(err)), 0);
	assert_int_equal(rs->n_rules, 1);
	rules_free(rs);
	unlink(path);
	assert_int_equal(rules_load(&rs, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
}

/* ---- matching ---- */

struct hit {
	const char *rule;
	char key[RULES_KEY_MAX];
	bool null_key;
};
static struct hit hits[16];
static size_t n_hits;

static int collect(void *arg, const struct rule *r, const char *key, size_t key_len)
{
	assert_true(n_hits < 16);
	hits[n_hits].rule = r->name;
	hits[n_hits].null_key = key == NULL;
	if (key) {
		assert_int_equal(strlen(key), key_len);
		snprintf(hits[n_hits].key, sizeof(hits[n_hits].key), "%s", key);
	}
	n_hits++;
	return arg ? 1 : 0; /* non-NULL arg: stop at the first */
}

static const char *match_rules =
    "rules:\n"
    "  - name: timeouts\n"
    "    match: {service: \"check*\", error_type: \"Timeout*\"}\n"
    "    group_by: [service, error_type]\n"
    "    trip: {failures: 3, window: 60s}\n"
    "  - name: eu-unhandled\n"
    "    match: {details.region: \"eu-*\", handled: false}\n"
    "    group_by: [details.region, fingerprint]\n"
    "    trip: {failures: 1, window: 10s}\n"
    "  - name: no-env\n"
    "    match: {environment: \"\"}\n"
    "    trip: {failures: 1, window: 10s}\n"
    "  - name: code-class\n"
    "    match: {error_code: \"[45]??\", task: \"pay\\\\*\"}\n" /* task matches a literal "pay*" */
    "    group_by: [task, error_code]\n"
    "    trip: {failures: 1, window: 10s}\n";

static void test_match_globs(void **state)
{
	struct ruleset *rs = load(match_rules);
	struct rule_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.service = "checkout";
	ev.environment = "prod";
	ev.error_type = "TimeoutError";
	ev.handled = true;
	n_hits = 0;
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 1);
	assert_string_equal(hits[0].rule, "timeouts");
	assert_string_equal(hits[0].key, "service=checkout,error_type=TimeoutError");

	/* a glob matches the whole value, case-sensitively */
	ev.error_type = "ReadTimeout";
	n_hits = 0;
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 0);
	ev.error_type = "timeoutError";
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 0);

	/* details: present and matching; an absent detail never matches */
	const char *keys[] = {"host", "region"}, *values[] = {"h1", "eu-west-1"};
	memset(&ev, 0, sizeof(ev));
	ev.service = "api";
	ev.environment = "prod";
	ev.error_type = "ValueError";
	ev.fingerprint = "0123456789abcdef";
	ev.handled = false;
	ev.detail_keys = keys;
	ev.detail_values = values;
	ev.n_details = 2;
	n_hits = 0;
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 1);
	assert_string_equal(hits[0].rule, "eu-unhandled");
	assert_string_equal(hits[0].key, "details.region=eu-west-1,fingerprint=0123456789abcdef");
	ev.handled = true;
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 0);
	ev.handled = false;
	ev.n_details = 1; /* no region */
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 0);

	/* an empty glob matches an absent (empty) field */
	memset(&ev, 0, sizeof(ev));
	ev.service = "api";
	ev.error_type = "E";
	n_hits = 0;
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 1);
	assert_string_equal(hits[0].rule, "no-env");
	assert_string_equal(hits[0].key, ""); /* no group_by: one circuit */

	/* character classes and escapes */
	ev.environment = "prod";
	ev.task = "pay*";
	ev.error_code = "503";
	n_hits = 0;
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 1);
	assert_string_equal(hits[0].key, "task=pay*,error_code=503");
	ev.task = "payments"; /* the '*' was escaped */
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 0);
	ev.task = "pay*";
	ev.error_code = "200";
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 0);

	/* every matching rule, in file order; the callback can stop */
	ev.environment = NULL;
	ev.error_code = "404";
	n_hits = 0;
	assert_int_equal(rules_match(rs, &ev, collect, NULL), 2);
	assert_string_equal(hits[0].rule, "no-env");
	assert_string_equal(hits[1].rule, "code-class");
	n_hits = 0;
	assert_int_equal(rules_match(rs, &ev, collect, (void *)1), 1);
	rules_free(rs);
}

static void test_keys(void **state)
{
	struct ruleset *rs = load("rules:\n  - name: k\n    group_by: [service, details.region, error_type]\n"
				  "    trip: {failures: 1, window: 1s}\n");
	const struct rule *r = &rs->rules[0];
	struct rule_event ev;
	char key[RULES_KEY_MAX], f[64], v[RULES_KEY_VALUE_MAX + 8], out[RULES_KEY_MAX];
	memset(&ev, 0, sizeof(ev));
	/* ',', '=' and '\' are escaped; an absent detail is empty */
	ev.service = "a,b=c\\d";
	ev.error_type = "E";
	assert_int_equal(rules_key(r, &ev, key, sizeof(key)), strlen("service=a\\,b\\=c\\\\d,details.region=,error_type=E"));
	assert_string_equal(key, "service=a\\,b\\=c\\\\d,details.region=,error_type=E");
	/* reading it back unescapes */
	const char *p = key;
	assert_int_equal(rules_key_next(&p, f, sizeof(f), v, sizeof(v)), 1);
	assert_string_equal(f, "service");
	assert_string_equal(v, "a,b=c\\d");
	assert_int_equal(rules_key_next(&p, f, sizeof(f), v, sizeof(v)), 1);
	assert_string_equal(f, "details.region");
	assert_string_equal(v, "");
	assert_int_equal(rules_key_next(&p, f, sizeof(f), v, sizeof(v)), 1);
	assert_string_equal(f, "error_type");
	assert_string_equal(v, "E");
	assert_int_equal(rules_key_next(&p, f, sizeof(f), v, sizeof(v)), 0);
	const char *bad[] = {"service", "=x", "a=b,", "a=b\\", "a\\b=c"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = bad[i];
		int rc;
		while ((rc = rules_key_next(&p, f, sizeof(f), v, sizeof(v))) == 1)
			;
		assert_int_equal(rc, -1);
	}

	/* long values are cut to RULES_KEY_VALUE_MAX bytes, never inside a UTF-8 sequence */
	char longv[300];
	memset(longv, 'x', sizeof(longv));
	longv[sizeof(longv) - 1] = '\0';
	ev.service = longv;
	rules_key(r, &ev, key, sizeof(key));
	assert_true(strncmp(key, "service=", 8) == 0);
	assert_int_equal(strcspn(key + 8, ","), RULES_KEY_VALUE_MAX);
	memset(longv, 'x', RULES_KEY_VALUE_MAX - 1);
	memcpy(longv + RULES_KEY_VALUE_MAX - 1, "\xc3\xa9tail", 7); /* é straddles the cut */
	rules_key(r, &ev, key, sizeof(key));
	assert_int_equal(strcspn(key + 8, ","), RULES_KEY_VALUE_MAX - 1);

	/* the worst case fits RULES_KEY_MAX */
	char commas[RULES_KEY_VALUE_MAX + 50];
	memset(commas, ',', sizeof(commas));
	commas[sizeof(commas) - 1] = '\0';
	const char *dk[] = {"region"}, *dv[] = {commas};
	ev.service = ev.error_type = commas;
	ev.detail_keys = dk;
	ev.detail_values = dv;
	ev.n_details = 1;
	assert_int_equal(rules_key(r, &ev, key, sizeof(key)),
			 3 * 2 * RULES_KEY_VALUE_MAX + strlen("service=,details.region=,error_type="));

	/* what a person types, in any order, becomes the canonical key */
	assert_int_equal(rules_key_canonical(r, "error_type=E,service=a\\,b,details.region=eu", out, sizeof(out), err,
					     sizeof(err)),
			 0);
	assert_string_equal(out, "service=a\\,b,details.region=eu,error_type=E");
	/* an unescaped '=' in a value is taken literally */
	assert_int_equal(rules_key_canonical(r, "service=a=b,details.region=,error_type=E", out, sizeof(out), err,
					     sizeof(err)),
			 0);
	assert_string_equal(out, "service=a\\=b,details.region=,error_type=E");
	assert_int_equal(rules_key_canonical(r, RULES_OVERFLOW_KEY, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "(overflow)");
	assert_int_equal(rules_key_canonical(r, "service=a,task=b", out, sizeof(out), err, sizeof(err)), -1);
	assert_string_equal(err, "rule 'k' does not group by 'task' (its key fields: service, details.region, error_type)");
	assert_int_equal(rules_key_canonical(r, "service=a,error_type=E", out, sizeof(out), err, sizeof(err)), -1);
	assert_string_equal(err, "missing field 'details.region' (rule 'k' key fields: service, details.region, error_type)");
	assert_int_equal(rules_key_canonical(r, "service=a,service=b", out, sizeof(out), err, sizeof(err)), -1);
	assert_string_equal(err, "field 'service' given twice");
	assert_int_equal(rules_key_canonical(r, "service", out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a key"));
	rules_free(rs);

	rs = load("rules:\n  - name: one\n    trip: {failures: 1, window: 1s}\n");
	assert_int_equal(rules_key_canonical(&rs->rules[0], "", out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "");
	assert_int_equal(rules_key_canonical(&rs->rules[0], "a=b", out, sizeof(out), err, sizeof(err)), -1);
	rules_free(rs);
}

static void test_outcomes(void **state)
{
	struct ruleset *rs = load("rules:\n"
				  "  - name: rate\n"
				  "    match: {service: checkout}\n"
				  "    group_by: [service, task]\n"
				  "    trip: {failure_rate: 0.5, min_calls: 20, window: 60s}\n"
				  "  - name: typed\n"
				  "    match: {service: checkout, error_type: \"Timeout*\"}\n"
				  "    group_by: [service, error_type]\n"
				  "    trip: {failures: 3, window: 60s}\n"
				  "    half_open: {successes: 5}\n"
				  "  - name: counts\n"
				  "    match: {service: checkout}\n"
				  "    trip: {failures: 3, window: 60s}\n");
	n_hits = 0;
	assert_int_equal(rules_match_outcome(rs, "checkout", "pay", collect, NULL), 2);
	assert_string_equal(hits[0].rule, "rate");
	assert_string_equal(hits[0].key, "service=checkout,task=pay");
	assert_string_equal(hits[1].rule, "typed");
	assert_true(hits[1].null_key); /* every circuit of the rule with this service */
	const struct rule *typed = rules_find(rs, "typed");
	assert_true(rules_outcome_applies(typed, "service=checkout,error_type=TimeoutError", "checkout", "pay"));
	assert_false(rules_outcome_applies(typed, "service=search,error_type=TimeoutError", "checkout", "pay"));
	assert_true(rules_outcome_applies(typed, RULES_OVERFLOW_KEY, "checkout", "pay"));
	const struct rule *rate = rules_find(rs, "rate");
	assert_false(rules_outcome_applies(rate, "service=checkout,task=refund", "checkout", "pay"));
	n_hits = 0;
	assert_int_equal(rules_match_outcome(rs, "search", "pay", collect, NULL), 0);
	rules_free(rs);
}

/* ---- definition hash and reload ---- */

#define HASH_BASE                                                                                  \
	"  - name: h\n"                                                                            \
	"    match: {service: checkout, error_type: \"Timeout*\"}\n"                              \
	"    group_by: [service, error_type]\n"                                                    \
	"    trip: {failures: 3, window: 60s}\n"

static uint64_t hash_of(const char *rule_text)
{
	char text[2048];
	snprintf(text, sizeof(text), "notifiers:\n  - {name: ops, type: log}\n  - {name: b, type: log}\nrules:\n%s",
		 rule_text);
	struct ruleset *rs = load(text);
	uint64_t h = rs->rules[0].def_hash;
	rules_free(rs);
	return h;
}

static void test_definition_hash(void **state)
{
	uint64_t h = hash_of(HASH_BASE);
	/* the hash's input is a fixed, versioned format: stored hashes stay valid across
	 * releases (a change here resolves every circuit as rule_changed on upgrade) */
	assert_int_equal(h, UINT64_C(0xd59d40738076a375));
	/* unchanged by what does not decide which events count or how they are keyed */
	const char *same[] = {
	    HASH_BASE "    severity: critical\n    notify: [ops, b]\n",
	    HASH_BASE "    recovery_timeout: 5m\n    half_open: {probe: 1m, failures: 2, successes: 3}\n",
	    HASH_BASE "    backoff: {factor: 3, max: 1h}\n    repeat_interval: 1h\n    max_event_age: 10s\n",
	    HASH_BASE "    max_circuits: 10\n",
	    "  - name: h\n    trip: {window: 60s, failures: 3}\n    group_by: [service, error_type]\n"
	    "    match: {error_type: \"Timeout*\", service: checkout}\n", /* keys in another order */
	    "  - name: h\n    match: {service: checkout, error_type: \"Timeout*\"}\n    group_by: [service, error_type]\n"
	    "    trip: {failures: 3, window: 1m}\n", /* the same window written otherwise */
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		if (hash_of(same[i]) != h)
			fail_msg("hash changed for:\n%s", same[i]);
	const char *changed[] = {
	    "  - name: h\n    match: {service: checkout, error_type: \"Timeout\"}\n    group_by: [service, error_type]\n"
	    "    trip: {failures: 3, window: 60s}\n",
	    "  - name: h\n    match: {service: checkout, error_type: \"Timeout*\", handled: false}\n"
	    "    group_by: [service, error_type]\n    trip: {failures: 3, window: 60s}\n",
	    "  - name: h\n    match: {service: checkout}\n    group_by: [service, error_type]\n"
	    "    trip: {failures: 3, window: 60s}\n",
	    "  - name: h\n    match: {service: checkout, error_type: \"Timeout*\"}\n    group_by: [error_type, service]\n"
	    "    trip: {failures: 3, window: 60s}\n",
	    "  - name: h\n    match: {service: checkout, error_type: \"Timeout*\"}\n    group_by: [service]\n"
	    "    trip: {failures: 3, window: 60s}\n",
	    "  - name: h\n    match: {service: checkout, error_type: \"Timeout*\"}\n    group_by: [service, error_type]\n"
	    "    trip: {failures: 4, window: 60s}\n",
	    "  - name: h\n    match: {service: checkout, error_type: \"Timeout*\"}\n    group_by: [service, error_type]\n"
	    "    trip: {failures: 3, window: 61s}\n",
	    "  - name: h\n    match: {service: checkout, error_type: \"Timeout*\"}\n    group_by: [service, error_type]\n"
	    "    trip: {failures: 3, window: 60s}\n    half_open: {successes: 0}\n", /* (same: control) */
	};
	size_t n_changed = sizeof(changed) / sizeof(changed[0]);
	for (size_t i = 0; i + 1 < n_changed; i++)
		if (hash_of(changed[i]) == h)
			fail_msg("hash unchanged for:\n%s", changed[i]);
	assert_int_equal(hash_of(changed[n_changed - 1]), h);
	/* rate parameters are part of the trip */
	uint64_t r1 = hash_of("  - name: h\n    match: {service: checkout}\n    trip: {failure_rate: 0.5, window: 60s}\n");
	uint64_t r2 = hash_of("  - name: h\n    match: {service: checkout}\n    trip: {failure_rate: 0.5, min_calls: 10, "
			      "window: 60s}\n");
	uint64_t r3 = hash_of("  - name: h\n    match: {service: checkout}\n    trip: {failure_rate: 0.5, min_calls: 20, "
			      "window: 60s}\n");
	uint64_t r4 = hash_of("  - name: h\n    match: {service: checkout}\n    trip: {failure_rate: 0.6, window: 60s}\n");
	assert_int_equal(r1, r2); /* min_calls 10 is the default */
	assert_true(r1 != r3 && r1 != r4 && r3 != r4);
}

static void test_reload_fate(void **state)
{
	struct ruleset *old = load("rules:\n"
				   "  - {name: same, trip: {failures: 1, window: 1s}}\n"
				   "  - {name: tuned, trip: {failures: 1, window: 1s}}\n"
				   "  - {name: changed, trip: {failures: 1, window: 1s}}\n"
				   "  - {name: gone, trip: {failures: 1, window: 1s}}\n");
	struct ruleset *next = load("rules:\n"
				    "  - {name: changed, trip: {failures: 2, window: 1s}}\n"
				    "  - {name: same, trip: {failures: 1, window: 1s}}\n"
				    "  - {name: tuned, trip: {failures: 1, window: 1s}, recovery_timeout: 5m}\n"
				    "  - {name: new, trip: {failures: 1, window: 1s}}\n");
	const struct rule *now;
	assert_int_equal(rules_reload_fate(rules_find(old, "same"), next, &now), CIRCUIT_RETIRE_NONE);
	assert_ptr_equal(now, &next->rules[1]);
	assert_int_equal(rules_reload_fate(rules_find(old, "tuned"), next, &now), CIRCUIT_RETIRE_NONE);
	assert_int_equal(now->circuit.recovery_timeout_ns, S(300));
	assert_int_equal(rules_reload_fate(rules_find(old, "changed"), next, &now), CIRCUIT_RETIRE_CHANGED);
	assert_ptr_equal(now, &next->rules[0]);
	assert_int_equal(rules_reload_fate(rules_find(old, "gone"), next, &now), CIRCUIT_RETIRE_REMOVED);
	assert_null(now);
	rules_free(old);
	rules_free(next);
}

/* inhibits: names resolved after every rule is read; each refusal names the rule and line */
static void test_inhibits(void **state)
{
	struct ruleset *rs = load("rules:\n"
				  "  - name: down\n"
				  "    group_by: [service]\n"
				  "    trip: {failures: 1, window: 60s}\n"
				  "    inhibits: [timeouts, slow]\n"
				  "    inhibit_equal: [service]\n"
				  "  - name: timeouts\n"
				  "    group_by: [task, service]\n"
				  "    trip: {failures: 1, window: 60s}\n"
				  "  - name: slow\n"
				  "    group_by: [service]\n"
				  "    trip: {failures: 1, window: 60s}\n");
	const struct rule *d = rules_find(rs, "down"), *t = rules_find(rs, "timeouts");
	assert_int_equal(d->n_inhibits, 2);
	assert_ptr_equal(&rs->rules[d->inhibits[0]], t);
	assert_int_equal(d->n_inhibit_equal, 1);
	assert_true(t->inhibited);
	assert_false(d->inhibited);
	assert_true(rules_inhibit_applies(d, "service=checkout", "task=x,service=checkout"));
	assert_false(rules_inhibit_applies(d, "service=checkout", "task=x,service=payments"));
	assert_false(rules_inhibit_applies(d, "(overflow)", "task=x,service=checkout"));
	rules_free(rs);
	/* the same, without inhibit_equal: every alert of the rule */
	rs = load("rules:\n  - name: a\n    trip: {failures: 1, window: 60s}\n    inhibits: [b]\n"
		  "  - name: b\n    group_by: [service]\n    trip: {failures: 1, window: 60s}\n");
	assert_true(rules_inhibit_applies(rules_find(rs, "a"), "", "service=x"));
	rules_free(rs);
	refused(RULE_HEAD "    inhibits: [nope]\n", 4, "rule 'a': key 'inhibits'", "unknown rule 'nope' (defined: no other rule)");
	refused(RULE_HEAD "    inhibits: [nope]\n  - name: b\n    trip: {failures: 1, window: 60s}\n", 4,
		"rule 'a': key 'inhibits'", "unknown rule 'nope' (defined: b)");
	refused(RULE_HEAD "    inhibits: [a]\n", 4, "key 'inhibits'", "a rule cannot inhibit itself");
	refused(RULE_HEAD "    inhibits: b\n  - name: b\n    trip: {failures: 1, window: 60s}\n", 4, "key 'inhibits'",
		"expected a list");
	refused(RULE_HEAD "    inhibits: [b, b]\n  - name: b\n    trip: {failures: 1, window: 60s}\n", 4,
		"key 'inhibits'", "'b' listed twice");
	refused(RULE_HEAD "    inhibits: [b]\n  - name: b\n    trip: {failures: 1, window: 60s}\n    inhibits: [a]\n", 4,
		"rule 'a': key 'inhibits'", "cycle (a -> b -> a)");
	refused(RULE_HEAD "    inhibit_equal: [service]\n", 4, "key 'inhibit_equal'", "without inhibits");
	refused(RULE_HEAD "    inhibits: [b]\n    inhibit_equal: [service]\n  - name: b\n    group_by: [service]\n"
			  "    trip: {failures: 1, window: 60s}\n",
		5, "key 'inhibit_equal'", "'service' is not in this rule's group_by");
	refused("rules:\n  - name: a\n    group_by: [service]\n    trip: {failures: 1, window: 60s}\n"
		"    inhibits: [b]\n    inhibit_equal: [service]\n  - name: b\n    trip: {failures: 1, window: 60s}\n",
		6, "key 'inhibit_equal'", "rule 'b' does not group by 'service'");
	refused("rules:\n  - name: a\n    group_by: [service]\n    trip: {failures: 1, window: 60s}\n"
		"    inhibits: [b]\n    inhibit_equal: [colour]\n  - name: b\n    trip: {failures: 1, window: 60s}\n",
		6, "key 'inhibit_equal'", "'colour' is not a field to group by");
}

static void test_names(void **state)
{
	char buf[64];
	struct rules_field f = {RULES_F_DETAIL, "region"};
	assert_string_equal(rules_field_name(&f, buf, sizeof(buf)), "details.region");
	f.id = RULES_F_ERROR_TYPE;
	f.detail = NULL;
	assert_string_equal(rules_field_name(&f, buf, sizeof(buf)), "error_type");
	assert_string_equal(rules_severity_name(RULES_SEV_CRITICAL), "critical");
	assert_string_equal(rules_severity_name(RULES_SEV_INFO), "info");

	struct ruleset *rs = load("notifiers:\n"
				  "  - name: hook\n"
				  "    type: webhook\n"
				  "    url: https://example.com/hook\n"
				  "    timeout: 250ms\n"
				  "    max_attempts: 3\n"
				  "    secret: s3cret\n"
				  "    headers:\n"
				  "      X-A: \"1\"\n"
				  "      X-B: two words\n"
				  "  - {name: logs, type: log}\n");
	const struct rules_notifier *n = rules_find_notifier(rs, "hook");
	assert_int_equal(n->timeout_ns, 250 * UINT64_C(1000000));
	assert_int_equal(n->max_attempts, 3);
	assert_string_equal(n->secret, "s3cret");
	assert_int_equal(n->n_headers, 2);
	assert_string_equal(n->headers[1].value, "two words");
	n = rules_find_notifier(rs, "logs");
	assert_int_equal(n->type, RULES_NOTIFIER_LOG);
	assert_null(n->url);
	assert_int_equal(n->max_attempts, RULES_DEFAULT_MAX_ATTEMPTS);
	assert_null(rules_find_notifier(rs, "x"));
	rules_free(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_refusals_rules),
	    cmocka_unit_test(test_refusals_notifiers),
	    cmocka_unit_test(test_template_render),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_match_globs),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_outcomes),
	    cmocka_unit_test(test_definition_hash),
	    cmocka_unit_test(test_reload_fate),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_inhibits),
	};
	return cmocka_run_group_tests_name("unit_rules", tests, NULL, NULL);
}
