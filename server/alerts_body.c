/* alerts_body.c: the webhook body of a notice and the sample event it carries, built with
 * jansson (compact, keys in insertion order: the order below is the documented one).
 *
 * A body is built once, when its outbox row is written, and every attempt sends those bytes
 * again.  Every string here was checked to be UTF-8 before it came (ingest refuses invalid
 * UTF-8; rule names and the collector come from YAML): a string jansson refuses fails the
 * body like running out of memory does. */
#include "alerts_int.h"

#include <jansson.h>

#include "errq_banned.h"

/* Adds v to o under k, taking v (NULL: the build has failed); returns -1 on failure. */
static int put(json_t *o, const char *k, json_t *v)
{
	return v ? json_object_set_new_nocheck(o, k, v) : -1;
}

static json_t *str_n(const char *s, size_t n)
{
	return json_stringn(s ? s : "", s ? n : 0);
}

static json_t *str(const char *s)
{
	return str_n(s, s ? strlen(s) : 0);
}

static json_t *uint_(uint64_t v)
{
	return json_integer((json_int_t)v);
}

/* RFC 3339 with nanoseconds, or null for 0 (not yet). */
static json_t *time_(uint64_t ns)
{
	char t[ERRQ_RFC3339_BUFSZ];
	return ns ? json_string(errq_fmt_rfc3339(t, ns)) : json_null();
}

/* The key "service=a,task=b" as {"service":"a","task":"b"}. */
static json_t *key_object(const char *key)
{
	const char *p = key;
	char field[RULES_NAME_MAX + RULES_DETAIL_KEY_MAX + 16], value[RULES_KEY_MAX];
	json_t *o = json_object();
	int rc = o ? 0 : -1;
	if (!rc && !strcmp(key, RULES_OVERFLOW_KEY))
		rc = put(o, "(overflow)", json_true());
	else
		while (!rc && rules_key_next(&p, field, sizeof(field), value, sizeof(value)) == 1)
			rc = put(o, field, str(value));
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The compact text of o (consumed), appended to b; -1 when it cannot be. */
static int dump_to(json_t *o, struct errq_buf *b)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	int rc = s ? errq_buf_addstr(b, s) : -1;
	free(s);
	json_decref(o);
	return rc;
}

int alerts__build_body(struct alerts *a, const struct notice *n, struct errq_buf *b)
{
	char hex[ERRQ_ID_HEX_BUFSZ];
	errq_hex_encode(n->alert_id, 16, hex);
	json_t *o = json_object();
	if (!o)
		return -1;
	int rc = put(o, "version", json_integer(1));
	rc |= put(o, "status", str(n->status));
	rc |= put(o, "alert_id", str(hex));
	rc |= put(o, "rule", str(n->rule));
	rc |= put(o, "key", key_object(n->key));
	rc |= put(o, "state", str(circuit_state_name((enum circuit_state)n->state)));
	rc |= put(o, "previous_state", str(circuit_state_name((enum circuit_state)n->prev)));
	rc |= put(o, "severity", str(n->severity));
	rc |= put(o, "failures_in_window", uint_(n->failures));
	rc |= put(o, "window_seconds", uint_(n->window));
	if (n->rate) {
		rc |= put(o, "calls_in_window", uint_(n->calls_ok + n->calls_failed));
		rc |= put(o, "failed_calls_in_window", uint_(n->calls_failed));
	}
	rc |= put(o, "opened_at", time_(n->opened));
	rc |= put(o, "resolved_at", time_(n->resolved));
	rc |= put(o, "reason", str(n->reason));
	rc |= put(o, "notice", uint_(n->seq));
	/* the stored sample is our own JSON; a row that does not parse (none should) goes as null */
	json_t *sample = n->sample ? json_loads(n->sample, JSON_DECODE_ANY, NULL) : NULL;
	rc |= put(o, "sample", sample ? sample : json_null());
	rc |= put(o, "collector", str(a->collector));
	if (rc) {
		json_decref(o);
		return -1;
	}
	return dump_to(o, b);
}

/* A string field cut at max bytes (on a UTF-8 boundary). */
static int put_cut(json_t *o, const char *k, const char *v, size_t max)
{
	return put(o, k, str_n(v, v ? errq_utf8_trunc_len(v, strlen(v), max) : 0));
}

/* The sample's text, or NULL when it cannot be built or reaches ALERTS_SAMPLE_MAX. */
static char *sample_text(json_t *o, int rc)
{
	struct errq_buf b;
	errq_buf_init(&b, ALERTS_SAMPLE_MAX);
	if (rc)
		json_decref(o);
	char *s = !rc && !dump_to(o, &b) ? strdup(b.p) : NULL;
	errq_buf_free(&b);
	return s;
}

/* The sample event of an alert: what a person needs to recognise the failure.  e's strings
 * and the details (the TaskFailure's, nd of them) are the event's, whichever way it came. */
static char *sample_of(const struct store_event *e, Errq__V1__TaskFailure__DetailsEntry *const *d, size_t nd)
{
	char hex[ERRQ_ID_HEX_BUFSZ];
	errq_hex_encode(e->event_id, 16, hex);
	json_t *o = json_object(), *details = json_object();
	if (!o || !details) {
		json_decref(o);
		json_decref(details);
		return NULL;
	}
	int rc = put(o, "event_id", str(hex));
	rc |= put(o, "time", time_(e->time_ns));
	rc |= put(o, "received_at", time_(e->received_ns));
	rc |= put_cut(o, "service", e->service, VALIDATE_MAX_SERVICE);
	rc |= put_cut(o, "environment", e->environment, VALIDATE_MAX_ENVIRONMENT);
	rc |= put_cut(o, "release", e->release, VALIDATE_MAX_RELEASE);
	rc |= put_cut(o, "host", e->host, VALIDATE_MAX_HOST);
	rc |= put_cut(o, "task", e->task, VALIDATE_MAX_TASK);
	rc |= put_cut(o, "error_type", e->error_type, VALIDATE_MAX_ERROR_TYPE);
	rc |= put_cut(o, "error_code", e->error_code, VALIDATE_MAX_ERROR_CODE);
	rc |= put_cut(o, "message", e->message, SAMPLE_MESSAGE_MAX);
	rc |= put_cut(o, "fingerprint", e->fingerprint, VALIDATE_MAX_FINGERPRINT);
	rc |= put(o, "attempt", uint_(e->attempt));
	rc |= put(o, "handled", json_boolean(e->handled));
	nd = nd < SAMPLE_DETAILS_MAX ? nd : SAMPLE_DETAILS_MAX;
	for (size_t i = 0; i < nd; i++)
		rc |= put_cut(details, d[i]->key ? d[i]->key : "", d[i]->value, SAMPLE_DETAIL_VALUE_MAX);
	rc |= put(o, "details", details);
	return sample_text(o, rc);
}

char *alerts__sample_from_event(const struct ingest_event *ev)
{
	struct store_event e;
	ingest_store_event(NULL, ev, &e);
	return sample_of(&e, ev->tf->details, ev->v.details_kept);
}

char *alerts__sample_from_outcome(const Errq__V1__Outcome *o)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	int rc = put(j, "outcome", json_true());
	rc |= put_cut(j, "service", o->service, VALIDATE_MAX_SERVICE);
	rc |= put_cut(j, "task", o->task, VALIDATE_MAX_TASK);
	rc |= put(j, "ok", uint_(o->ok));
	rc |= put(j, "failed", uint_(o->failed));
	return sample_text(j, rc);
}

/* The sample of an alert the fleet's leader fires (alerts_fleet.c): the stored event an
 * increment named (its details from the stored extra blob, a packed TaskFailure). */
char *alerts__sample_from_stored(const struct store_event *e)
{
	Errq__V1__TaskFailure *x = e->extra && e->extra_len
					   ? errq__v1__task_failure__unpack(NULL, e->extra_len, e->extra)
					   : NULL;
	char *out = sample_of(e, x ? x->details : NULL, x ? x->n_details : 0);
	if (x)
		errq__v1__task_failure__free_unpacked(x, NULL);
	return out;
}
