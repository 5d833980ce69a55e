/* notify_kinds.c: see notify_kinds.h.  One table entry per type: webhook, alertmanager,
 * slack, pagerduty, email.
 *
 * Every type reads the notice from its webhook body (docs/alerts.md "Webhook payload") into
 * a view of strings (struct view), renders its templates from that view with the escaping of
 * its target (rules_template.h), and builds its JSON with jansson (which escapes strings as
 * JSON).  Secrets (routing_key, password) go into the request only, never into a message. */
#include "notify_kinds.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errq_time.h"
#include "rules_template.h"

#include "errq_banned.h"

/* ---- the notice, read from its webhook body ---- */

struct view {
	json_t *root;                    /* owns the strings below that point into it */
	const char *v[TPL_N_FIELDS];     /* template values; NULL = empty */
	json_t *key;                     /* the key object */
	char count[24], window[24], key_text[RULES_KEY_MAX], link[NOTIFY_LINK_MAX + 1];
	bool firing;
	const char *idem;                /* the notice's Idempotency-Key */
	uint64_t opened_ns, resolved_ns;
};

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The template fields that are members of the body, or of its sample, of the same name. */
static const struct {
	enum rules_tpl_field f;
	bool in_sample;
} from_body[] = {
    {TPL_RULE, false},      {TPL_SEVERITY, false},    {TPL_STATUS, false},     {TPL_ALERT_ID, false},
    {TPL_REASON, false},    {TPL_OPENED_AT, false},   {TPL_RESOLVED_AT, false}, {TPL_COLLECTOR, false},
    {TPL_SERVICE, true},    {TPL_ENVIRONMENT, true},  {TPL_TASK, true},        {TPL_ERROR_TYPE, true},
    {TPL_ERROR_CODE, true}, {TPL_MESSAGE, true},      {TPL_EVENT_ID, true},    {TPL_FINGERPRINT, true},
};

static void view_release(struct view *w)
{
	json_decref(w->root);
	w->root = NULL;
}

static int view_read(struct view *w, const struct notify_dest *d, const struct notify_delivery *dv, char *err,
		     size_t errsz)
{
	json_error_t je;
	memset(w, 0, sizeof(*w));
	w->root = json_loadb(dv->body, dv->body_len, 0, &je);
	if (!json_is_object(w->root)) {
		errq_snprintf(err, errsz, "the notice is not a JSON object: %s", je.text);
		return -1;
	}
	json_t *r = w->root, *s = json_object_get(r, "sample");
	for (size_t i = 0; i < sizeof(from_body) / sizeof(from_body[0]); i++)
		w->v[from_body[i].f] = jstr(from_body[i].in_sample ? s : r, rules_tpl_field_name(from_body[i].f));
	if (!w->v[TPL_RULE] || !w->v[TPL_STATUS] || !w->v[TPL_ALERT_ID] || !w->v[TPL_OPENED_AT]) {
		errq_snprintf(err, errsz, "the notice lacks rule, status, alert_id or opened_at");
		return -1;
	}
	w->firing = strcmp(w->v[TPL_STATUS], "resolved") != 0;
	errq_snprintf(w->count, sizeof(w->count), "%lld", (long long)json_integer_value(json_object_get(r, "failures_in_window")));
	errq_snprintf(w->window, sizeof(w->window), "%lld", (long long)json_integer_value(json_object_get(r, "window_seconds")));
	w->v[TPL_COUNT] = w->count;
	w->v[TPL_WINDOW] = w->window;
	w->key = json_object_get(r, "key");
	size_t kl = 0;
	const char *k;
	json_t *kv;
	w->key_text[0] = '\0';
	json_object_foreach(w->key, k, kv)
	{
		kl += (size_t)errq_snprintf(w->key_text + kl, sizeof(w->key_text) - kl, "%s%s=%s", kl ? "," : "", k,
					    json_is_string(kv) ? json_string_value(kv) : "");
		if (kl >= sizeof(w->key_text))
			kl = sizeof(w->key_text) - 1;
	}
	w->v[TPL_KEY] = w->key_text;
	if (!w->v[TPL_SERVICE]) /* a key field when the sample has none */
		w->v[TPL_SERVICE] = jstr(w->key, "service");
	if (d->link_template[0]) {
		bool cut = false;
		rules_template_render(d->link_template, w->v, TPL_ESC_URL, w->link, sizeof(w->link), &cut);
		if (cut) /* a cut URL leads nowhere: left out */
			w->link[0] = '\0';
	}
	w->v[TPL_LINK] = w->link[0] ? w->link : NULL;
	w->idem = dv->idempotency_key;
	if (errq_parse_rfc3339(w->v[TPL_OPENED_AT], &w->opened_ns))
		w->opened_ns = 0;
	if (w->v[TPL_RESOLVED_AT] && errq_parse_rfc3339(w->v[TPL_RESOLVED_AT], &w->resolved_ns))
		w->resolved_ns = 0;
	return 0;
}

/* Sets o[k] = v (taken); returns -1 when v is NULL (out of memory, or not UTF-8). */
static int put(json_t *o, const char *k, json_t *v)
{
	return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *str(const char *s)
{
	return json_string(s ? s : "");
}

/* The compact text of o (consumed) as rq's body. */
static int dump_body(json_t *o, struct notify_request *rq, char *err, size_t errsz)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	int rc = s ? errq_buf_addstr(&rq->body, s) : -1;
	free(s);
	if (rc)
		errq_snprintf(err, errsz, "the request body passes %u bytes", NOTIFY_REQ_BODY_MAX);
	return rc;
}

/* The end of a JSON build: releases the view, and o (consumed) becomes rq's body unless the
 * build failed (rc). */
static int json_done(struct view *w, int rc, json_t *o, const char *type, struct notify_request *rq, char *err,
		     size_t errsz)
{
	view_release(w);
	if (rc) {
		json_decref(o);
		errq_snprintf(err, errsz, "cannot build the %s request", type);
		return -1;
	}
	return dump_body(o, rq, err, errsz);
}

static void add_header(struct notify_request *rq, const char *name, const char *value)
{
	char h[NOTIFY_HEADER_MAX + 128];
	errq_snprintf(h, sizeof(h), "%s: %s", name, value);
	rq->hdrs = curl_slist_append(rq->hdrs, h);
}

/* The headers every HTTP type sends, then the notifier's own. */
static void json_headers(const struct notify_dest *d, const struct notify_delivery *dv, struct notify_request *rq)
{
	rq->hdrs = curl_slist_append(rq->hdrs, "Content-Type: application/json");
	add_header(rq, "Idempotency-Key", dv->idempotency_key);
	rq->hdrs = curl_slist_append(rq->hdrs, "User-Agent: errqd/" ERRQ_VERSION_STRING);
	for (size_t i = 0; i < d->n_headers; i++)
		rq->hdrs = curl_slist_append(rq->hdrs, d->headers[i]);
}

/* HTTP: a 2xx delivers; 5xx, 408 and 429 (and no answer) say the receiver is down; any other
 * answer refuses this notice. */
static enum notify_verdict classify_http(CURLcode res, long code)
{
	if (res != CURLE_OK)
		return NOTIFY_V_DOWN;
	if (code >= 200 && code < 300)
		return NOTIFY_V_OK;
	return code >= 500 || code == 408 || code == 429 ? NOTIFY_V_DOWN : NOTIFY_V_REFUSED;
}

/* ---- webhook: the stored body as is ---- */

static int build_webhook(const struct notify_dest *d, const struct notify_delivery *dv, uint64_t now_ns,
			 struct notify_request *rq, char *err, size_t errsz)
{
	errq_snprintf(rq->url, sizeof(rq->url), "%s", d->url);
	json_headers(d, dv, rq);
	if (d->secret[0]) {
		char sig[160];
		notify_sign(d->secret, now_ns / ERRQ_NS_PER_SEC, dv->body, dv->body_len, sig);
		add_header(rq, "X-Errq-Signature", sig);
	}
	if (errq_buf_add(&rq->body, dv->body, dv->body_len)) {
		errq_snprintf(err, errsz, "the request body passes %u bytes", NOTIFY_REQ_BODY_MAX);
		return -1;
	}
	return 0;
}

/* ---- alertmanager: POST /api/v2/alerts ---- */

/* A label name as Prometheus allows them ([a-zA-Z_][a-zA-Z0-9_]*): "details.region" ->
 * "details_region". */
static void label_name(const char *in, char *out, size_t outsz)
{
	size_t n = 0;
	if (!((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z') || *in == '_') && n + 1 < outsz)
		out[n++] = '_';
	for (const char *p = in; *p && n + 1 < outsz; p++)
		out[n++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) ? *p : '_';
	out[n] = '\0';
}

static const char am_summary[] = "{{rule}}: {{count}} failures in {{window}}s ({{error_type}}: {{message}})";

static int build_alertmanager(const struct notify_dest *d, const struct notify_delivery *dv, uint64_t now_ns,
			      struct notify_request *rq, char *err, size_t errsz)
{
	struct view w;
	char t[ERRQ_RFC3339_BUFSZ], lname[RULES_NAME_MAX + RULES_DETAIL_KEY_MAX + 16];
	char summary[RULES_TEMPLATE_OUT_MAX + 1];
	if (view_read(&w, d, dv, err, errsz)) {
		view_release(&w);
		return -1;
	}
	size_t ul = strlen(d->url);
	while (ul && d->url[ul - 1] == '/')
		ul--;
	static const char path[] = "/api/v2/alerts";
	bool has_path = ul >= sizeof(path) - 1 && !memcmp(d->url + ul - (sizeof(path) - 1), path, sizeof(path) - 1);
	errq_snprintf(rq->url, sizeof(rq->url), "%.*s%s", (int)ul, d->url, has_path ? "" : path);
	json_headers(d, dv, rq);
	json_t *labels = json_object(), *ann = json_object(), *a = json_object(), *arr = json_array();
	int rc = labels && ann && a && arr ? 0 : -1;
	rc |= put(labels, "alertname", str(w.v[TPL_RULE]));
	rc |= put(labels, "severity", str(w.v[TPL_SEVERITY]));
	const char *k;
	json_t *kv;
	json_object_foreach(w.key, k, kv)
	{
		label_name(k, lname, sizeof(lname));
		if (strcmp(lname, "alertname") && strcmp(lname, "severity"))
			rc |= put(labels, lname, json_is_string(kv) ? json_incref(kv) : json_string("true"));
	}
	if (w.v[TPL_SERVICE] && !json_object_get(labels, "service"))
		rc |= put(labels, "service", str(w.v[TPL_SERVICE]));
	rules_template_render(am_summary, w.v, TPL_ESC_NONE, summary, sizeof(summary), NULL);
	rc |= put(ann, "summary", str(summary));
	rc |= put(ann, "description", str(w.v[TPL_REASON]));
	rc |= put(ann, "alert_id", str(w.v[TPL_ALERT_ID]));
	if (w.v[TPL_ERROR_TYPE])
		rc |= put(ann, "error_type", str(w.v[TPL_ERROR_TYPE]));
	if (w.v[TPL_MESSAGE])
		rc |= put(ann, "message", str(w.v[TPL_MESSAGE]));
	if (w.v[TPL_EVENT_ID])
		rc |= put(ann, "event_id", str(w.v[TPL_EVENT_ID]));
	rc |= put(ann, "failures_in_window", str(w.count));
	rc |= put(a, "labels", labels);
	rc |= put(a, "annotations", ann);
	labels = ann = NULL;
	rc |= put(a, "startsAt", str(w.v[TPL_OPENED_AT]));
	/* firing: valid for NOTIFY_AM_ENDS_FACTOR re-post periods (Alertmanager resolves it by
	 * itself if errqd stops re-posting); resolved: ends when it resolved */
	uint64_t ends = w.firing ? now_ns + (uint64_t)NOTIFY_AM_ENDS_FACTOR * d->resend_ms * ERRQ_NS_PER_MS
				 : (w.resolved_ns ? w.resolved_ns : now_ns);
	rc |= put(a, "endsAt", str(errq_fmt_rfc3339(t, ends)));
	if (w.link[0])
		rc |= put(a, "generatorURL", str(w.link));
	if (!rc)
		rc = json_array_append_new(arr, a);
	else
		json_decref(a);
	a = NULL;
	json_decref(labels);
	json_decref(ann);
	rq->refresh_ms = !rc && w.firing ? d->resend_ms : 0;
	return json_done(&w, rc, arr, "alertmanager", rq, err, errsz);
}

/* ---- slack: an incoming webhook's text and one attachment ---- */

static const char slack_default[] =
    "*{{status}}* [{{severity}}] {{rule}} {{key}}: {{count}} failures in {{window}}s, {{error_type}}: {{message}}";

static json_t *field(const char *title, const char *value, bool shortf)
{
	char esc[RULES_TEMPLATE_OUT_MAX + 1];
	const char *vals[TPL_N_FIELDS] = {[TPL_MESSAGE] = value};
	rules_template_render("{{message}}", vals, TPL_ESC_SLACK, esc, sizeof(esc), NULL);
	return json_pack("{s:s, s:s, s:b}", "title", title, "value", esc, "short", shortf);
}

static int build_slack(const struct notify_dest *d, const struct notify_delivery *dv, uint64_t now_ns,
		       struct notify_request *rq, char *err, size_t errsz)
{
	struct view w;
	char text[RULES_TEMPLATE_OUT_MAX + 1], title[RULES_NAME_MAX + 64], failures[64];
	char event[NOTIFY_LINK_MAX + 128];
	if (view_read(&w, d, dv, err, errsz)) {
		view_release(&w);
		return -1;
	}
	errq_snprintf(rq->url, sizeof(rq->url), "%s", d->url);
	json_headers(d, dv, rq);
	rules_template_render(d->template_text[0] ? d->template_text : slack_default, w.v, TPL_ESC_SLACK, text,
			      sizeof(text), NULL);
	const char *sev = w.v[TPL_SEVERITY] ? w.v[TPL_SEVERITY] : "";
	const char *color = !w.firing ? "#2eb67d" : !strcmp(sev, "critical") ? "#d00000" : !strcmp(sev, "error") ? "#e01e5a"
			    : !strcmp(sev, "warning") ? "#ecb22e" : "#439fe0";
	errq_snprintf(title, sizeof(title), "[%s] %s", w.firing ? "FIRING" : "RESOLVED", w.v[TPL_RULE]);
	errq_snprintf(failures, sizeof(failures), "%s in %ss", w.count, w.window);
	json_t *fields = json_array(), *att = json_object(), *o = json_object(), *atts = json_array();
	int rc = fields && att && o && atts ? 0 : -1;
	rc |= json_array_append_new(fields, field("Severity", sev, true));
	rc |= json_array_append_new(fields, field("Status", w.v[TPL_STATUS], true));
	rc |= json_array_append_new(fields, field("Rule", w.v[TPL_RULE], true));
	rc |= json_array_append_new(fields, field("Key", w.key_text[0] ? w.key_text : "(none)", true));
	rc |= json_array_append_new(fields, field("Failures", failures, true));
	if (w.v[TPL_ERROR_TYPE])
		rc |= json_array_append_new(fields, field("Error type", w.v[TPL_ERROR_TYPE], true));
	if (w.v[TPL_MESSAGE])
		rc |= json_array_append_new(fields, field("Message", w.v[TPL_MESSAGE], false));
	if (w.link[0] && w.v[TPL_EVENT_ID]) { /* <url|text>: the URL is percent-encoded, so no '|' or '>' */
		errq_snprintf(event, sizeof(event), "<%s|%s>", w.link, w.v[TPL_EVENT_ID]);
		json_t *f = json_pack("{s:s, s:s, s:b}", "title", "Event", "value", event, "short", false);
		rc |= json_array_append_new(fields, f);
	}
	rc |= put(att, "fallback", str(text));
	rc |= put(att, "color", str(color));
	rc |= put(att, "title", str(title));
	if (w.link[0])
		rc |= put(att, "title_link", str(w.link));
	rc |= put(att, "fields", fields);
	fields = NULL;
	rc |= put(att, "footer", json_sprintf("errq %s, alert %s", w.v[TPL_COLLECTOR] ? w.v[TPL_COLLECTOR] : "",
					       w.v[TPL_ALERT_ID]));
	rc |= put(att, "ts", json_integer((json_int_t)((w.firing ? w.opened_ns : w.resolved_ns) / ERRQ_NS_PER_SEC)));
	rc |= json_array_append_new(atts, att);
	att = NULL;
	rc |= put(o, "text", str(text));
	rc |= put(o, "attachments", atts);
	atts = NULL;
	json_decref(fields);
	(void)now_ns;
	return json_done(&w, rc, o, "slack", rq, err, errsz);
}

/* ---- pagerduty: Events API v2 ---- */

static const char pd_default[] = "{{rule}} {{key}}: {{count}} failures in {{window}}s, {{error_type}}: {{message}}";

static const char *pd_severity(const char *s)
{
	/* errq's severities are PagerDuty's four; anything else is the least urgent */
	static const char *const known[] = {"critical", "error", "warning", "info"};
	for (size_t i = 0; s && i < 4; i++)
		if (!strcmp(s, known[i]))
			return known[i];
	return "info";
}

static int build_pagerduty(const struct notify_dest *d, const struct notify_delivery *dv, uint64_t now_ns,
			   struct notify_request *rq, char *err, size_t errsz)
{
	struct view w;
	char summary[NOTIFY_PD_SUMMARY_MAX + 1], dedup[64];
	if (view_read(&w, d, dv, err, errsz)) {
		view_release(&w);
		return -1;
	}
	errq_snprintf(rq->url, sizeof(rq->url), "%s", d->url);
	json_headers(d, dv, rq);
	/* stable for the whole incident (every notice of one alert), distinct between incidents */
	errq_snprintf(dedup, sizeof(dedup), "errq-%s", w.v[TPL_ALERT_ID]);
	json_t *o = json_object();
	int rc = o ? 0 : -1;
	rc |= put(o, "routing_key", str(d->routing_key));
	rc |= put(o, "event_action", str(w.firing ? "trigger" : "resolve"));
	rc |= put(o, "dedup_key", str(dedup));
	if (w.firing) {
		rules_template_render(d->template_text[0] ? d->template_text : pd_default, w.v, TPL_ESC_NONE, summary,
				      sizeof(summary), NULL);
		json_t *det = json_object(), *pl = json_object();
		rc |= det && pl ? 0 : -1;
		rc |= put(det, "rule", str(w.v[TPL_RULE]));
		rc |= put(det, "key", w.key ? json_incref(w.key) : json_object());
		rc |= put(det, "failures_in_window", json_integer(json_integer_value(json_object_get(w.root, "failures_in_window"))));
		rc |= put(det, "window_seconds", json_integer(json_integer_value(json_object_get(w.root, "window_seconds"))));
		rc |= put(det, "reason", str(w.v[TPL_REASON]));
		rc |= put(det, "alert_id", str(w.v[TPL_ALERT_ID]));
		if (w.v[TPL_MESSAGE])
			rc |= put(det, "message", str(w.v[TPL_MESSAGE]));
		if (w.v[TPL_EVENT_ID])
			rc |= put(det, "event_id", str(w.v[TPL_EVENT_ID]));
		rc |= put(pl, "summary", str(summary));
		rc |= put(pl, "source", str(w.v[TPL_SERVICE] ? w.v[TPL_SERVICE] : w.v[TPL_COLLECTOR]));
		rc |= put(pl, "severity", str(pd_severity(w.v[TPL_SEVERITY])));
		rc |= put(pl, "timestamp", str(w.v[TPL_OPENED_AT]));
		if (w.v[TPL_SERVICE])
			rc |= put(pl, "component", str(w.v[TPL_SERVICE]));
		rc |= put(pl, "group", str(w.v[TPL_RULE]));
		if (w.v[TPL_ERROR_TYPE])
			rc |= put(pl, "class", str(w.v[TPL_ERROR_TYPE]));
		rc |= put(pl, "custom_details", det);
		rc |= put(o, "payload", pl);
		rc |= put(o, "client", str("errq"));
		if (w.link[0]) {
			rc |= put(o, "client_url", str(w.link));
			rc |= put(o, "links", json_pack("[{s:s, s:s}]", "href", w.link, "text", "the event in errq"));
		}
	}
	(void)now_ns;
	return json_done(&w, rc, o, "pagerduty", rq, err, errsz);
}

/* ---- email: one plain-text message per notice, by SMTP ---- */

static const char mail_subject_default[] = "[errq] {{status}} {{severity}}: {{rule}} {{key}}";
static const char mail_body_default[] = "Alert {{status}}: {{rule}} ({{severity}})\n"
					"Key: {{key}}\n"
					"Failures: {{count}} in {{window}}s\n"
					"Reason: {{reason}}\n"
					"Opened at: {{opened_at}}\n"
					"Resolved at: {{resolved_at}}\n"
					"\n"
					"Service: {{service}}  Environment: {{environment}}  Task: {{task}}\n"
					"Error: {{error_type}} {{error_code}}\n"
					"Message: {{message}}\n"
					"Event: {{event_id}} {{link}}\n"
					"\n"
					"Alert id {{alert_id}}, from errq collector {{collector}}\n";

/* RFC 2047 (B encoding) when s has a byte outside printable ASCII. */
static void add_subject(struct errq_buf *b, const char *s)
{
	bool ascii = true;
	for (const char *p = s; *p; p++)
		ascii &= (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f;
	if (ascii) {
		errq_buf_printf(b, "Subject: %s\r\n", s);
		return;
	}
	/* encoded words of at most 45 input bytes (60 encoded), cut between characters */
	errq_buf_addstr(b, "Subject:");
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = n - i > 45 ? 45 : n - i;
		while (k < n - i && k && ((unsigned char)s[i + k] & 0xC0) == 0x80)
			k--;
		unsigned char enc[64];
		EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)k);
		errq_buf_printf(b, " =?UTF-8?B?%s?=%s", (char *)enc, i + k < n ? "\r\n" : "");
		i += k;
	}
	errq_buf_addstr(b, "\r\n");
}

/* The body text with CRLF line ends, lines broken at NOTIFY_MAIL_LINE_MAX bytes (between
 * characters), bare CRs dropped. */
static void add_text(struct errq_buf *b, const char *s)
{
	size_t col = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n') {
			errq_buf_add(b, "\r\n", 2);
			col = 0;
			continue;
		}
		if (col >= NOTIFY_MAIL_LINE_MAX - 4 && ((unsigned char)*p & 0xC0) != 0x80) {
			errq_buf_add(b, "\r\n", 2);
			col = 0;
		}
		errq_buf_add(b, p, 1);
		col++;
	}
	if (col)
		errq_buf_add(b, "\r\n", 2);
}

static int build_email(const struct notify_dest *d, const struct notify_delivery *dv, uint64_t now_ns,
		       struct notify_request *rq, char *err, size_t errsz)
{
	struct view w;
	char subject[NOTIFY_MAIL_SUBJECT_MAX + 1], text[RULES_TEMPLATE_OUT_MAX + 1], date[64], addr[NOTIFY_MAIL_SZ + 2];
	if (view_read(&w, d, dv, err, errsz)) {
		view_release(&w);
		return -1;
	}
	rq->smtp = true;
	errq_snprintf(rq->url, sizeof(rq->url), "%s", d->url);
	for (size_t i = 0; i < d->n_mail_to; i++) {
		errq_snprintf(addr, sizeof(addr), "<%s>", d->mail_to[i]);
		rq->rcpt = curl_slist_append(rq->rcpt, addr);
	}
	/* the subject is one line whatever the values hold (ESC_LINE): no header injection */
	rules_template_render(d->subject[0] ? d->subject : mail_subject_default, w.v, TPL_ESC_LINE, subject,
			      sizeof(subject), NULL);
	rules_template_render(d->template_text[0] ? d->template_text : mail_body_default, w.v, TPL_ESC_NONE, text,
			      sizeof(text), NULL);
	time_t secs = (time_t)(now_ns / ERRQ_NS_PER_SEC);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* Message-ID from the Idempotency-Key: the same on every attempt of one notice */
	char mid[NOTIFY_KEY_MAX];
	errq_snprintf(mid, sizeof(mid), "%s", dv->idempotency_key);
	for (char *p = mid; *p; p++)
		if (*p == ':')
			*p = '.';
	const char *at = strchr(d->mail_from, '@'); /* the config checked it has one */
	const char *domain = at ? at + 1 : "errq.invalid";
	struct errq_buf *b = &rq->body;
	errq_buf_printf(b, "From: errq <%s>\r\n", d->mail_from);
	errq_buf_addstr(b, "To: ");
	for (size_t i = 0; i < d->n_mail_to; i++)
		errq_buf_printf(b, "%s<%s>", i ? ",\r\n " : "", d->mail_to[i]);
	errq_buf_addstr(b, "\r\n");
	add_subject(b, subject);
	errq_buf_printf(b, "Date: %s\r\n", date);
	errq_buf_printf(b, "Message-ID: <%s@%s>\r\n", mid, domain);
	errq_buf_addstr(b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
			   "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n");
	errq_buf_printf(b, "X-Errq-Alert-Id: %s\r\nX-Errq-Status: %s\r\n\r\n", w.v[TPL_ALERT_ID], w.v[TPL_STATUS]);
	add_text(b, text);
	view_release(&w);
	if (b->failed) {
		errq_snprintf(err, errsz, "the message passes %u bytes", NOTIFY_REQ_BODY_MAX);
		return -1;
	}
	return 0;
}

/* SMTP: delivered when the server took the message; a 5xx reply (a refused sender, recipient
 * or login, STARTTLS required but not offered) refuses it; no connection, a timeout or a 4xx
 * (try later) is the server being down. */
static enum notify_verdict classify_smtp(CURLcode res, long code)
{
	if (res == CURLE_OK)
		return NOTIFY_V_OK;
	if ((code >= 500 && code < 600) || res == CURLE_USE_SSL_FAILED || res == CURLE_LOGIN_DENIED)
		return NOTIFY_V_REFUSED;
	return NOTIFY_V_DOWN;
}

/* ---- the table ---- */

static const struct notify_kind kinds[] = {
    [NOTIFY_WEBHOOK] = {"webhook", build_webhook, classify_http},
    [NOTIFY_LOG] = {"log", NULL, NULL},
    [NOTIFY_ALERTMANAGER] = {"alertmanager", build_alertmanager, classify_http, true},
    [NOTIFY_SLACK] = {"slack", build_slack, classify_http},
    [NOTIFY_PAGERDUTY] = {"pagerduty", build_pagerduty, classify_http},
    [NOTIFY_EMAIL] = {"email", build_email, classify_smtp},
};

const struct notify_kind *notify_kind_of(int type)
{
	if (type < 0 || (size_t)type >= sizeof(kinds) / sizeof(kinds[0]) || !kinds[type].build)
		return NULL;
	return &kinds[type];
}

void notify_request_init(struct notify_request *rq)
{
	memset(rq, 0, sizeof(*rq));
	errq_buf_init(&rq->body, NOTIFY_REQ_BODY_MAX + 1); /* + its NUL */
}

void notify_request_release(struct notify_request *rq)
{
	curl_slist_free_all(rq->hdrs);
	curl_slist_free_all(rq->rcpt);
	errq_buf_free(&rq->body);
	rq->hdrs = rq->rcpt = NULL;
}

static size_t read_body(char *buf, size_t sz, size_t nm, void *u)
{
	struct notify_request *rq = u;
	size_t n = rq->body.len - rq->sent;
	if (n > sz * nm)
		n = sz * nm;
	memcpy(buf, rq->body.p + rq->sent, n);
	rq->sent += n;
	return n;
}

void notify_request_setopt(CURL *e, const struct notify_dest *d, struct notify_request *rq)
{
	long tmo = (long)(d->timeout_ms ? d->timeout_ms : 5000);
	curl_easy_setopt(e, CURLOPT_URL, rq->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, tmo);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, tmo);
	if (rq->smtp) {
		char from[NOTIFY_MAIL_SZ + 2];
		errq_snprintf(from, sizeof(from), "<%s>", d->mail_from);
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
		curl_easy_setopt(e, CURLOPT_MAIL_FROM, from); /* curl copies it */
		curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rq->rcpt);
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, read_body);
		curl_easy_setopt(e, CURLOPT_READDATA, rq);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body.len);
		if (strncmp(rq->url, "smtps://", 8) != 0)
			curl_easy_setopt(e, CURLOPT_USE_SSL, (long)(d->starttls_required ? CURLUSESSL_ALL : CURLUSESSL_TRY));
		if (d->username[0]) {
			curl_easy_setopt(e, CURLOPT_USERNAME, d->username);
			curl_easy_setopt(e, CURLOPT_PASSWORD, d->password);
		}
		rq->sent = 0;
		return;
	}
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body.p ? rq->body.p : "");
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)rq->body.len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, rq->hdrs);
}

int notify_type_of_rules(enum rules_notifier_type t)
{
	switch (t) {
	case RULES_NOTIFIER_LOG:
		return NOTIFY_LOG;
	case RULES_NOTIFIER_ALERTMANAGER:
		return NOTIFY_ALERTMANAGER;
	case RULES_NOTIFIER_SLACK:
		return NOTIFY_SLACK;
	case RULES_NOTIFIER_PAGERDUTY:
		return NOTIFY_PAGERDUTY;
	case RULES_NOTIFIER_EMAIL:
		return NOTIFY_EMAIL;
	case RULES_NOTIFIER_WEBHOOK:
		break;
	}
	return NOTIFY_WEBHOOK;
}

void notify_dest_from_rules(struct notify_dest *d, const struct rules_notifier *n)
{
#define COPY(dst, src) errq_snprintf(dst, sizeof(dst), "%s", (src) ? (src) : "")
	COPY(d->template_text, n->template_text);
	COPY(d->subject, n->subject);
	COPY(d->link_template, n->link_template);
	COPY(d->routing_key, n->routing_key);
	COPY(d->mail_from, n->mail_from);
	COPY(d->username, n->username);
	COPY(d->password, n->password);
	COPY(d->ca_file, n->ca_file);
	d->n_mail_to = n->n_mail_to < NOTIFY_MAX_MAIL_TO ? n->n_mail_to : NOTIFY_MAX_MAIL_TO;
	for (size_t i = 0; i < d->n_mail_to; i++)
		COPY(d->mail_to[i], n->mail_to[i]);
#undef COPY
	d->starttls_required = n->starttls == RULES_STARTTLS_REQUIRED;
	d->resend_ms = (uint32_t)(n->resend_ns / ERRQ_NS_PER_MS);
}
