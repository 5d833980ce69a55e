/* alerts_body.c: the webhook body of a notice and the sample event it carries. */
#include "alerts_int.h"

#include "errq_banned.h"

/* ---- webhook bodies ---- */

static int json_key_object(struct errq_buf *b, const char *key)
{
	const char *p = key;
	char field[RULES_NAME_MAX + RULES_DETAIL_KEY_MAX + 16], value[RULES_KEY_MAX];
	bool first = true;
	int rc = errq_buf_addstr(b, "{");
	if (!strcmp(key, RULES_OVERFLOW_KEY))
		return rc | errq_buf_addstr(b, "\"(overflow)\":true}");
	while (rules_key_next(&p, field, sizeof(field), value, sizeof(value)) == 1) {
		rc |= errq_buf_addstr(b, first ? "" : ",");
		rc |= errq_buf_add_json_str(b, field, strlen(field));
		rc |= errq_buf_addstr(b, ":");
		rc |= errq_buf_add_json_str(b, value, strlen(value));
		first = false;
	}
	return rc | errq_buf_addstr(b, "}");
}

static int json_time(struct errq_buf *b, uint64_t ns)
{
	char t[ERRQ_RFC3339_BUFSZ];
	return ns ? errq_buf_printf(b, "\"%s\"", errq_fmt_rfc3339(t, ns)) : errq_buf_addstr(b, "null");
}

int alerts__build_body(struct alerts *a, const struct notice *n, struct errq_buf *b)
{
	char hex[ERRQ_ID_HEX_BUFSZ];
	int rc = 0;
	errq_hex_encode(n->alert_id, 16, hex);
	rc |= errq_buf_printf(b, "{\"version\":1,\"status\":\"%s\",\"alert_id\":\"%s\",\"rule\":", n->status, hex);
	rc |= errq_buf_add_json_str(b, n->rule, strlen(n->rule));
	rc |= errq_buf_addstr(b, ",\"key\":");
	rc |= json_key_object(b, n->key);
	rc |= errq_buf_printf(b, ",\"state\":\"%s\",\"previous_state\":\"%s\",\"severity\":\"%s\"",
			circuit_state_name((enum circuit_state)n->state), circuit_state_name((enum circuit_state)n->prev),
			n->severity);
	rc |= errq_buf_printf(b, ",\"failures_in_window\":%llu,\"window_seconds\":%u,",
			(unsigned long long)n->failures, n->window);
	if (n->rate)
		rc |= errq_buf_printf(b, "\"calls_in_window\":%llu,\"failed_calls_in_window\":%llu,",
				      (unsigned long long)(n->calls_ok + n->calls_failed),
				      (unsigned long long)n->calls_failed);
	rc |= errq_buf_addstr(b, "\"opened_at\":");
	rc |= json_time(b, n->opened);
	rc |= errq_buf_addstr(b, ",\"resolved_at\":");
	rc |= json_time(b, n->resolved);
	rc |= errq_buf_addstr(b, ",\"reason\":");
	rc |= errq_buf_add_json_str(b, n->reason ? n->reason : "", n->reason ? strlen(n->reason) : 0);
	rc |= errq_buf_printf(b, ",\"notice\":%u,\"sample\":%s,\"collector\":", n->seq, n->sample ? n->sample : "null");
	rc |= errq_buf_add_json_str(b, a->collector, strlen(a->collector));
	return rc | errq_buf_addstr(b, "}");
}

static int json_kv(struct errq_buf *b, const char *k, const char *v, size_t max)
{
	size_t n = v ? errq_utf8_trunc_len(v, strlen(v), max) : 0;
	return errq_buf_printf(b, ",\"%s\":", k) | errq_buf_add_json_str(b, v ? v : "", n);
}

/* The sample event of an alert: what a person needs to recognise the failure. */
char *alerts__sample_from_event(const struct ingest_event *ev)
{
	const Errq__V1__TaskFailure *tf = ev->tf;
	struct errq_buf b;
	char hex[ERRQ_ID_HEX_BUFSZ];
	int rc = 0;
	errq_buf_init(&b, ALERTS_SAMPLE_MAX);
	errq_hex_encode(tf->event_id.data, 16, hex);
	rc |= errq_buf_printf(&b, "{\"event_id\":\"%s\",\"time\":", hex);
	rc |= json_time(&b, tf->time_unix_nano);
	rc |= errq_buf_addstr(&b, ",\"received_at\":");
	rc |= json_time(&b, ev->received_ns);
	rc |= json_kv(&b, "service", tf->service, VALIDATE_MAX_SERVICE);
	rc |= json_kv(&b, "environment", tf->environment, VALIDATE_MAX_ENVIRONMENT);
	rc |= json_kv(&b, "release", tf->release, VALIDATE_MAX_RELEASE);
	rc |= json_kv(&b, "host", tf->host, VALIDATE_MAX_HOST);
	rc |= json_kv(&b, "task", tf->task, VALIDATE_MAX_TASK);
	rc |= json_kv(&b, "error_type", tf->error_type, VALIDATE_MAX_ERROR_TYPE);
	rc |= json_kv(&b, "error_code", tf->error_code, VALIDATE_MAX_ERROR_CODE);
	rc |= json_kv(&b, "message", tf->message, SAMPLE_MESSAGE_MAX);
	rc |= json_kv(&b, "fingerprint", ev->v.fingerprint, VALIDATE_MAX_FINGERPRINT);
	rc |= errq_buf_printf(&b, ",\"attempt\":%u,\"handled\":%s,\"details\":{", tf->attempt, tf->handled ? "true" : "false");
	size_t nd = ev->v.details_kept < SAMPLE_DETAILS_MAX ? ev->v.details_kept : SAMPLE_DETAILS_MAX;
	for (size_t i = 0; i < nd; i++) {
		const char *k = tf->details[i]->key ? tf->details[i]->key : "";
		const char *v = tf->details[i]->value ? tf->details[i]->value : "";
		rc |= errq_buf_addstr(&b, i ? "," : "");
		rc |= errq_buf_add_json_str(&b, k, strlen(k));
		rc |= errq_buf_addstr(&b, ":");
		rc |= errq_buf_add_json_str(&b, v, errq_utf8_trunc_len(v, strlen(v), SAMPLE_DETAIL_VALUE_MAX));
	}
	rc |= errq_buf_addstr(&b, "}}");
	char *s = rc ? NULL : strdup(b.p);
	errq_buf_free(&b);
	return s;
}

char *alerts__sample_from_outcome(const Errq__V1__Outcome *o)
{
	struct errq_buf b;
	int rc = 0;
	errq_buf_init(&b, ALERTS_SAMPLE_MAX);
	rc |= errq_buf_addstr(&b, "{\"outcome\":true");
	rc |= json_kv(&b, "service", o->service, VALIDATE_MAX_SERVICE);
	rc |= json_kv(&b, "task", o->task, VALIDATE_MAX_TASK);
	rc |= errq_buf_printf(&b, ",\"ok\":%llu,\"failed\":%llu}", (unsigned long long)o->ok, (unsigned long long)o->failed);
	char *s = rc ? NULL : strdup(b.p);
	errq_buf_free(&b);
	return s;
}
