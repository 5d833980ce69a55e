/* alerts.c: the rule engine in the collector (see alerts.h).
 *
 * State on the writer thread:
 *  - a hash table of circuits by (rule, key), each with its alert (id, notices, sample);
 *  - the "active" list: circuits with a deadline (OPEN, HALF_OPEN, a reminder due), the
 *    only ones a timer concerns, so a tick costs O(active), not O(circuits);
 *  - the silences in force or to come;
 *  - the deliveries made in the open transaction, handed to the notifier after COMMIT.
 * Every change to a circuit inside a transaction first snapshots it (touch()), so a rolled
 * back transaction puts memory back where the database is; the snapshot costs one copy of
 * a circuit per circuit per transaction, not per event.
 *
 * Deliveries: an outbox row is written in the transaction of the transition, with the body
 * it will send (so every resend is byte for byte the same, with the same Idempotency-Key).
 * After COMMIT the row goes to the notifier; each attempt's report comes back on the
 * notifier's thread, is kept (coalesced per row) in `reports`, and recorded by the writer
 * in a transaction of its own.  When the notifier is full (NOTIFY_MAX_PENDING held), new
 * rows stay pending in the table ("backlog") and are fed to it in id order as room frees,
 * so per-alert order holds and no row is held twice. */
#include "alerts.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "errq_hash.h"
#include "errq_id.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "ingest.h"
#include "storage.h"
#include "storage_alerts.h"
#include "errq_banned.h"

#define HASH_MIN_BUCKETS 1024
#define BACKLOG_PAGE 256          /* pending rows read per backlog step */
#define MAX_SILENCES 10000        /* silences in force or to come */
#define SILENCE_MIN_NS (UINT64_C(1) * 1000000000)
#define SILENCE_MAX_NS (UINT64_C(90) * 86400 * 1000000000)
#define SAMPLE_MESSAGE_MAX 1024
#define SAMPLE_DETAILS_MAX 16
#define SAMPLE_DETAIL_VALUE_MAX 256

struct rules_ref {
	struct alerts_rules pub;
	int refs; /* under a->rules_mu */
};

struct centry {
	struct centry *hnext;
	struct centry *anext, *aprev; /* the active list */
	bool active;
	size_t rule_idx;              /* into the current ruleset */
	int64_t row_id;               /* 0 = no row yet */
	uint64_t hash;
	struct circuit *c;
	bool has_alert;
	uint8_t alert_id[16];
	uint32_t notices;             /* firing notices made */
	uint64_t opened_at;           /* when the alert fired */
	bool doomed;                  /* a reload retires it: not saved, freed after COMMIT */
	char *sample;                 /* owned JSON; NULL with sample_loaded = none */
	bool sample_loaded;
	/* the open transaction */
	uint64_t gen;                 /* == a->gen when touched in it */
	bool created;                 /* created in it */
	struct centry *tnext;         /* the touched list */
	struct circuit *undo_c;
	int64_t undo_row_id;
	bool undo_has_alert, undo_sample_loaded;
	uint8_t undo_alert_id[16];
	uint32_t undo_notices;
	uint64_t undo_opened_at;
	char *undo_sample;
	size_t key_len;
	char key[];
};

struct rule_rt {
	uint32_t n_circuits;
	struct centry *overflow;
	uint64_t overflow_failures; /* atomic reads from query threads: under stats_mu */
	uint64_t txn_overflow;      /* in the open transaction (writer only) */
};

struct silence {
	int64_t id;
	char rule[RULES_NAME_MAX];
	char *matchers;
	uint64_t starts, ends;
};

struct sub { /* a delivery to hand to the notifier after COMMIT */
	struct sub *next;
	struct notify_delivery *d;
	bool resend; /* an old row made pending again (replay, a silence's end): not in id order */
};

struct request {
	struct ingest_job job;
	struct alerts *a;
	int kind;
	alerts_answer_fn fn;
	void *arg;
	uint8_t alert_id[16];
	int64_t id;
	struct alerts_silence_req sil;
};
enum { REQ_RELOAD, REQ_REPLAY, REQ_SILENCE_ADD, REQ_SILENCE_EXPIRE };

struct alerts {
	struct alerts_opts o;
	char config_path[1024];
	char collector[128];
	uint64_t (*clock)(void);
	struct errq_idgen idgen;

	pthread_mutex_t rules_mu;
	struct rules_ref *cur; /* the writer's; readers take references */

	/* writer thread only */
	bool loaded;
	struct centry **buckets;
	size_t n_buckets, n_entries;
	struct centry *active;
	struct rule_rt *rt;   /* per rule of cur */
	struct silence *sil;
	size_t n_sil;
	uint64_t gen;
	struct centry *touched;
	struct sub *subs, **subs_tail;
	bool txn_timers;       /* the open transaction changed some circuit's deadline */
	uint32_t held;         /* deliveries the notifier holds (submitted, not final) */
	bool backlog;          /* rows from backlog_from on wait in the table, not the notifier */
	int64_t backlog_from;
	int64_t *retry_ids;    /* resent rows the notifier refused (full): fed before the backlog */
	size_t n_retry;
	uint8_t save_buf[CIRCUIT_SAVE_MAX];
	struct alerts_stats txn_st; /* counted in the open transaction, added at commit */

	const struct ruleset *dest_check; /* a reload: notices go to the notifiers of this set */
	struct notifier *notifier;

	pthread_mutex_t rep_mu; /* reports from the notifier's thread */
	struct notify_report *reports;
	size_t n_reports;
	bool report_job_queued;
	struct ingest_job report_job;

	pthread_mutex_t stats_mu;
	struct alerts_stats st;
};

static int oom(void)
{
	LOG_ERROR("alerts: out of memory");
	return -1;
}

static uint64_t default_clock(void)
{
	return errq_now_ns();
}

/* ---- rules references ---- */

static struct rules_ref *rules_ref_new(struct ruleset *rs, const char *source, uint64_t now)
{
	struct rules_ref *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->pub.rs = rs;
	errq_snprintf(r->pub.source, sizeof(r->pub.source), "%s", source ? source : "");
	r->pub.loaded_ns = now;
	r->refs = 1;
	return r;
}

const struct alerts_rules *alerts_rules_get(struct alerts *a)
{
	pthread_mutex_lock(&a->rules_mu);
	struct rules_ref *r = a->cur;
	r->refs++;
	pthread_mutex_unlock(&a->rules_mu);
	return &r->pub;
}

static void rules_ref_put(struct alerts *a, struct rules_ref *r)
{
	pthread_mutex_lock(&a->rules_mu);
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&a->rules_mu);
	if (last) {
		rules_free(r->pub.rs);
		free(r);
	}
}

void alerts_rules_put(struct alerts *a, const struct alerts_rules *pub)
{
	if (pub)
		rules_ref_put(a, (struct rules_ref *)(void *)((char *)pub - offsetof(struct rules_ref, pub)));
}

static const struct ruleset *RS(struct alerts *a)
{
	return a->cur->pub.rs;
}

/* ---- circuits by (rule, key) ---- */

static uint64_t entry_hash(const char *rule, const char *key, size_t key_len)
{
	uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, rule, strlen(rule) + 1);
	return errq_fnv64(h, key, key_len);
}

static const struct rule *entry_rule(struct alerts *a, const struct centry *e)
{
	return &RS(a)->rules[e->rule_idx];
}

static struct centry *find_entry(struct alerts *a, size_t rule_idx, const char *key, size_t key_len, uint64_t h)
{
	if (!a->n_buckets)
		return NULL;
	for (struct centry *e = a->buckets[h & (a->n_buckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->rule_idx == rule_idx && e->key_len == key_len && !memcmp(e->key, key, key_len))
			return e;
	return NULL;
}

static int grow(struct alerts *a)
{
	size_t n = a->n_buckets ? a->n_buckets * 2 : HASH_MIN_BUCKETS;
	struct centry **b = calloc(n, sizeof(*b));
	if (!b)
		return -1;
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry *e = a->buckets[i], *next; e; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	free(a->buckets);
	a->buckets = b;
	a->n_buckets = n;
	return 0;
}

static void unlink_entry(struct alerts *a, struct centry *e)
{
	struct centry **pp = &a->buckets[e->hash & (a->n_buckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	a->n_entries--;
}

static void active_unlink(struct alerts *a, struct centry *e)
{
	if (e->aprev)
		e->aprev->anext = e->anext;
	else
		a->active = e->anext;
	if (e->anext)
		e->anext->aprev = e->aprev;
	e->anext = e->aprev = NULL;
	e->active = false;
}

static void set_active(struct alerts *a, struct centry *e)
{
	bool want = circuit_next_deadline(e->c) != 0;
	if (want == e->active)
		return;
	if (want) {
		e->aprev = NULL;
		e->anext = a->active;
		if (a->active)
			a->active->aprev = e;
		a->active = e;
		e->active = true;
	} else {
		active_unlink(a, e);
	}
}

static void free_entry(struct alerts *a, struct centry *e)
{
	if (e->active)
		active_unlink(a, e);
	circuit_free(e->c);
	free(e->sample);
	free(e);
}

/* A new CLOSED circuit for (rule, key), not yet stored. */
static struct centry *new_entry(struct alerts *a, size_t rule_idx, const char *key, size_t key_len, uint64_t h,
				uint64_t now)
{
	if (a->n_entries >= a->n_buckets && grow(a))
		return NULL;
	struct centry *e = calloc(1, sizeof(*e) + key_len + 1);
	if (!e)
		return NULL;
	e->c = circuit_new(&RS(a)->rules[rule_idx].circuit, now);
	if (!e->c) {
		free(e);
		return NULL;
	}
	e->rule_idx = rule_idx;
	e->hash = h;
	e->key_len = key_len;
	memcpy(e->key, key, key_len);
	e->sample_loaded = true;
	e->hnext = a->buckets[h & (a->n_buckets - 1)];
	a->buckets[h & (a->n_buckets - 1)] = e;
	a->n_entries++;
	return e;
}

/* Snapshots e before its first change in the open transaction. */
static int touch(struct alerts *a, struct centry *e)
{
	if (e->gen == a->gen)
		return 0;
	size_t sz = circuit_size(&entry_rule(a, e)->circuit);
	struct circuit *u = malloc(sz);
	if (!u)
		return -1;
	memcpy(u, e->c, sz);
	e->undo_c = u;
	e->undo_row_id = e->row_id;
	e->undo_has_alert = e->has_alert;
	memcpy(e->undo_alert_id, e->alert_id, 16);
	e->undo_notices = e->notices;
	e->undo_opened_at = e->opened_at;
	e->undo_sample = e->sample;
	e->undo_sample_loaded = e->sample_loaded;
	e->gen = a->gen;
	e->tnext = a->touched;
	a->touched = e;
	return 0;
}

/* The circuit of (rule, key), created when new (or the rule's overflow circuit past its
 * bound), touched for the open transaction.  NULL when out of memory. */
static struct centry *get_entry(struct alerts *a, size_t rule_idx, const char *key, size_t key_len, uint64_t now)
{
	const struct rule *r = &RS(a)->rules[rule_idx];
	uint64_t h = entry_hash(r->name, key, key_len);
	struct centry *e = find_entry(a, rule_idx, key, key_len, h);
	if (!e) {
		struct rule_rt *rt = &a->rt[rule_idx];
		if (rt->n_circuits >= r->max_circuits) {
			key = RULES_OVERFLOW_KEY;
			key_len = strlen(key);
			h = entry_hash(r->name, key, key_len);
			e = find_entry(a, rule_idx, key, key_len, h);
			rt->txn_overflow++; /* counted when the transaction commits */
			a->txn_st.overflow_failures++;
		}
		if (!e) {
			if (!(e = new_entry(a, rule_idx, key, key_len, h, now)))
				return NULL;
			e->created = true;
			e->gen = a->gen;
			e->tnext = a->touched;
			a->touched = e;
			e->undo_c = NULL;
			if (strcmp(e->key, RULES_OVERFLOW_KEY))
				rt->n_circuits++;
		}
	}
	return touch(a, e) ? NULL : e;
}

/* ---- silences ---- */

bool alerts_matchers_match(const char *matchers, const char *key)
{
	const char *p = matchers;
	char field[RULES_NAME_MAX + RULES_DETAIL_KEY_MAX + 16], glob[RULES_GLOB_MAX + 1];
	int r;
	while ((r = rules_key_next(&p, field, sizeof(field), glob, sizeof(glob))) == 1) {
		const char *q = key;
		char kf[sizeof(field)], kv[RULES_KEY_MAX];
		bool found = false, ok = false;
		int kr;
		while ((kr = rules_key_next(&q, kf, sizeof(kf), kv, sizeof(kv))) == 1)
			if (!strcmp(kf, field)) {
				found = true;
				ok = fnmatch(glob, kv, 0) == 0;
				break;
			}
		if (!found || !ok)
			return false;
	}
	return r == 0;
}

int alerts_matchers_check(const struct rule *rule, const char *matchers, char *err, size_t errsz)
{
	const char *p = matchers;
	char field[RULES_NAME_MAX + RULES_DETAIL_KEY_MAX + 16], glob[RULES_GLOB_MAX + 2];
	int r;
	size_t n = 0;
	while ((r = rules_key_next(&p, field, sizeof(field), glob, sizeof(glob))) == 1) {
		bool known = false;
		char names[RULES_MAX_GROUP_BY * (RULES_DETAIL_KEY_MAX + 16)] = "";
		size_t len = 0;
		for (size_t i = 0; i < rule->n_group_by; i++) {
			char fb[RULES_DETAIL_KEY_MAX + 16];
			const char *fn = rules_field_name(&rule->group_by[i], fb, sizeof(fb));
			known |= !strcmp(fn, field);
			len += (size_t)errq_snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "", fn);
			if (len >= sizeof(names))
				len = sizeof(names) - 1;
		}
		if (!known) {
			errq_snprintf(err, errsz, "rule '%s' has no key field '%s' (its group_by: %s)", rule->name, field,
				      rule->n_group_by ? names : "none");
			return -1;
		}
		if (strlen(glob) > RULES_GLOB_MAX) {
			errq_snprintf(err, errsz, "the value of '%s' is longer than %d bytes", field, RULES_GLOB_MAX);
			return -1;
		}
		if (++n > RULES_MAX_GROUP_BY) {
			errq_snprintf(err, errsz, "more than %d matchers", RULES_MAX_GROUP_BY);
			return -1;
		}
	}
	if (r < 0) {
		errq_snprintf(err, errsz, "'%s' is not field=value[,field=value]", matchers);
		return -1;
	}
	return 0;
}

static bool silenced(struct alerts *a, const char *rule, const char *key, uint64_t now)
{
	for (size_t i = 0; i < a->n_sil; i++) {
		struct silence *si = &a->sil[i];
		if (si->starts <= now && now < si->ends && !strcmp(si->rule, rule) && alerts_matchers_match(si->matchers, key))
			return true;
	}
	return false;
}

static int add_silence_mem(struct alerts *a, int64_t id, const char *rule, const char *matchers, uint64_t starts,
			   uint64_t ends)
{
	if (a->n_sil >= MAX_SILENCES)
		return -1;
	struct silence *n = realloc(a->sil, (a->n_sil + 1) * sizeof(*n));
	if (!n)
		return -1;
	a->sil = n;
	struct silence *si = &a->sil[a->n_sil];
	if (!(si->matchers = strdup(matchers ? matchers : "")))
		return -1;
	si->id = id;
	errq_snprintf(si->rule, sizeof(si->rule), "%s", rule);
	si->starts = starts;
	si->ends = ends;
	a->n_sil++;
	return 0;
}

static void drop_silence_mem(struct alerts *a, size_t i)
{
	free(a->sil[i].matchers);
	a->sil[i] = a->sil[--a->n_sil];
}

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

struct notice {
	const char *rule, *key, *severity, *status, *reason, *sample;
	const uint8_t *alert_id;
	int state, prev;
	uint64_t failures, opened, resolved;
	uint32_t window, seq;
	bool rate;                   /* a failure_rate rule: the calls in the window too */
	uint64_t calls_ok, calls_failed;
};

static int build_body(struct alerts *a, const struct notice *n, struct errq_buf *b)
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
static char *sample_from_event(const struct ingest_event *ev)
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

static char *sample_from_outcome(const Errq__V1__Outcome *o)
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

/* ---- the outbox ---- */

static int sample_cb(void *ctx, const struct store_alert *al)
{
	struct centry *e = ctx;
	e->sample = al->sample ? strdup(al->sample) : NULL;
	e->notices = al->notices;
	return 0;
}


/* The notifier names a notice goes to: those of names[] that the rules in force define. */
static int write_notice(struct alerts *a, struct store *s, const char *const *names, size_t n_names,
			const struct notice *n, uint64_t now)
{
	if (!n_names)
		return 0;
	bool quiet = silenced(a, n->rule, n->key, now);
	struct errq_buf b;
	errq_buf_init(&b, NOTIFY_BODY_MAX);
	if (build_body(a, n, &b)) {
		errq_buf_free(&b);
		LOG_ERROR("alerts: a webhook body passed NOTIFY_BODY_MAX; notice not written");
		return 0; /* bounded: cannot happen with the field limits; never fail the events for it */
	}
	char hex[ERRQ_ID_HEX_BUFSZ], idem[NOTIFY_KEY_MAX];
	errq_hex_encode(n->alert_id, 16, hex);
	errq_snprintf(idem, sizeof(idem), "%s:%s:%u", hex, n->status, n->seq);
	int rc = 0;
	for (size_t i = 0; i < n_names && !rc; i++) {
		if (!rules_find_notifier(a->dest_check ? a->dest_check : RS(a), names[i]))
			continue;
		struct store_delivery d = {
		    .alert_id = n->alert_id,
		    .notifier = names[i],
		    .kind = n->status,
		    .seq = n->seq,
		    .idempotency_key = idem,
		    .body = b.p,
		    .body_len = b.len,
		    .status = quiet ? STORE_DELIVERY_SILENCED : STORE_DELIVERY_PENDING,
		    .created_ns = now,
		    .updated_ns = now,
		};
		int64_t id;
		if ((rc = store_delivery_add(s, &d, &id)))
			break;
		if (quiet) {
			a->txn_st.deliveries_silenced++;
			continue;
		}
		if (a->backlog)
			continue; /* the backlog sweep sends it, in id order */
		struct notify_delivery *nd = notify_delivery_new(b.p, b.len);
		struct sub *sb = nd ? malloc(sizeof(*sb)) : NULL;
		if (!sb) {
			free(nd);
			rc = oom();
			break;
		}
		nd->id = (uint64_t)id;
		errq_snprintf(nd->dest, sizeof(nd->dest), "%s", names[i]);
		errq_snprintf(nd->order_key, sizeof(nd->order_key), "%s:%s", hex, names[i]);
		errq_snprintf(nd->idempotency_key, sizeof(nd->idempotency_key), "%s", idem);
		sb->d = nd;
		sb->next = NULL;
		sb->resend = false;
		*a->subs_tail = sb;
		a->subs_tail = &sb->next;
	}
	errq_buf_free(&b);
	return rc;
}

/* The notifier names of a rule (of ruleset rs). */
static size_t rule_notifiers(const struct ruleset *rs, const struct rule *r, const char **names)
{
	for (size_t i = 0; i < r->n_notify; i++)
		names[i] = rs->notifiers[r->notify[i]].name;
	return r->n_notify;
}

/* Stores what one circuit call produced: its transitions, its alert, the alert's notices.
 * ev or oc is what caused it (the sample of an alert that fires); rs is the ruleset r
 * belongs to (the old one when a reload retires r). */
static int apply(struct alerts *a, struct store *s, const struct ruleset *rs, const struct rule *r, struct centry *e,
		 const struct circuit_out *out, const struct ingest_event *ev, const Errq__V1__Outcome *oc, uint64_t now)
{
	const char *names[RULES_MAX_NOTIFY];
	size_t n_names = rule_notifiers(rs, r, names);
	a->txn_timers |= out->n != 0; /* a deadline may have come or gone */
	for (size_t i = 0; i < out->n; i++) {
		const struct circuit_record *rec = &out->rec[i];
		if (rec->alert == CIRCUIT_ALERT_FIRE) {
			errq_idgen_next(&a->idgen, rec->at / ERRQ_NS_PER_MS, e->alert_id);
			e->has_alert = true;
			e->notices = 0;
			e->opened_at = rec->at;
			if (e->sample != e->undo_sample)
				free(e->sample);
			e->sample = ev ? sample_from_event(ev) : oc ? sample_from_outcome(oc) : NULL;
			e->sample_loaded = true;
		}
		if (e->has_alert && !e->sample_loaded) {
			if (e->sample != e->undo_sample)
				free(e->sample);
			e->sample = NULL;
			if (store_get_alert(s, e->alert_id, sample_cb, e) < 0)
				return -1;
			e->sample_loaded = true;
		}
		struct store_transition t = {
		    .rule = r->name,
		    .key = e->key,
		    .at_ns = rec->at,
		    .from = rec->from,
		    .to = rec->to,
		    .reason = rec->reason,
		    .failures_in_window = rec->failures_in_window,
		    .window_seconds = rec->window_seconds,
		    .next_transition_ns = rec->next_transition_at,
		    .alert_id = e->has_alert ? e->alert_id : NULL,
		};
		if (store_transition_add(s, &t))
			return -1;
		a->txn_st.transitions += rec->from != rec->to;
		if (!e->has_alert)
			continue;
		struct store_alert al = {
		    .alert_id = e->alert_id,
		    .rule = r->name,
		    .key = e->key,
		    .severity = rules_severity_name(r->severity),
		    .status = "firing",
		    .state = rec->to,
		    .opened_ns = e->opened_at,
		    .failures_in_window = rec->failures_in_window,
		    .window_seconds = rec->window_seconds,
		    .sample = e->sample,
		    .updated_ns = now,
		};
		struct notice n = {
		    .rule = r->name,
		    .key = e->key,
		    .severity = al.severity,
		    .status = "firing",
		    .reason = rec->reason,
		    .sample = e->sample,
		    .alert_id = e->alert_id,
		    .state = rec->to,
		    .prev = rec->from,
		    .failures = rec->failures_in_window,
		    .window = rec->window_seconds,
		    .opened = e->opened_at,
		    .rate = r->circuit.failure_rate_ppm != 0,
		};
		if (n.rate)
			circuit_window_calls(e->c, e->c->clock, &n.calls_ok, &n.calls_failed);
		bool notify = true;
		switch (rec->alert) {
		case CIRCUIT_ALERT_FIRE:
			a->txn_st.alerts_fired++;
			break;
		case CIRCUIT_ALERT_REMIND:
			a->txn_st.reminders++;
			break;
		case CIRCUIT_ALERT_RESOLVE:
			al.status = n.status = "resolved";
			al.resolved_ns = n.resolved = rec->at;
			al.resolve_reason = rec->reason;
			a->txn_st.alerts_resolved++;
			break;
		case CIRCUIT_ALERT_NONE:
			notify = false;
			break;
		}
		if (notify && rec->alert != CIRCUIT_ALERT_RESOLVE)
			e->notices++;
		al.notices = e->notices;
		n.seq = rec->alert == CIRCUIT_ALERT_RESOLVE ? 1 : e->notices;
		int64_t id;
		if (store_alert_put(s, &al, &id) || (notify && write_notice(a, s, names, n_names, &n, now)))
			return -1;
		if (rec->alert == CIRCUIT_ALERT_RESOLVE) {
			e->has_alert = false;
			e->notices = 0;
			e->opened_at = 0;
		}
	}
	set_active(a, e);
	return 0;
}

/* ---- transactions: begin, save, end ---- */

static void begin_work(struct alerts *a)
{
	a->gen++;
	a->touched = NULL;
	a->subs = NULL;
	a->subs_tail = &a->subs;
	memset(&a->txn_st, 0, sizeof(a->txn_st));
}

static int save_touched(struct alerts *a, struct store *s, uint64_t now)
{
	for (struct centry *e = a->touched; e; e = e->tnext) {
		if (e->doomed)
			continue;
		size_t n = circuit_save(e->c, a->save_buf, sizeof(a->save_buf));
		uint64_t at = now > e->c->clock ? now : e->c->clock;
		struct store_circuit row = {
		    .id = e->row_id,
		    .rule = entry_rule(a, e)->name,
		    .key = e->key,
		    .def_hash = entry_rule(a, e)->def_hash,
		    .state = (int)e->c->state,
		    .since_ns = e->c->since,
		    .failures_in_window = circuit_window_failures(e->c, at),
		    .next_transition_ns = circuit_next_transition(e->c),
		    .alert_id = e->has_alert ? e->alert_id : NULL,
		    .saved = a->save_buf,
		    .saved_len = n,
		    .updated_ns = now,
		};
		int64_t id = 0;
		if (store_circuit_put(s, &row, &id))
			return -1;
		if (!e->row_id)
			e->row_id = id;
	}
	return 0;
}

static void add_stats(struct alerts_stats *to, const struct alerts_stats *d)
{
	to->failures_matched += d->failures_matched;
	to->failures_too_old += d->failures_too_old;
	to->failures_expired += d->failures_expired;
	to->overflow_failures += d->overflow_failures;
	to->transitions += d->transitions;
	to->alerts_fired += d->alerts_fired;
	to->alerts_resolved += d->alerts_resolved;
	to->reminders += d->reminders;
	to->deliveries_silenced += d->deliveries_silenced;
	to->outcome_batches += d->outcome_batches;
	to->outcome_batches_duplicate += d->outcome_batches_duplicate;
}

/* Hands the deliveries of the committed transaction to the notifier, in id order.  One
 * refused (the notifier holds NOTIFY_MAX_PENDING) starts the backlog at its id. */
static void flush_subs(struct alerts *a)
{
	for (struct sub *sb = a->subs, *next; sb; sb = next) {
		next = sb->next;
		int64_t id = (int64_t)sb->d->id;
		if ((!a->backlog || sb->resend) && notify_submit(a->notifier, sb->d) == 0) {
			a->held++;
		} else {
			free(sb->d);
			if (sb->resend) {
				if (a->retry_ids && a->n_retry < NOTIFY_MAX_PENDING)
					a->retry_ids[a->n_retry++] = id;
				else
					LOG_WARN("alerts: a resent delivery waits for a restart (notifier and retry list full)");
			} else if (!a->backlog) {
				a->backlog = true; /* new rows have the largest ids: all of them wait from here */
				a->backlog_from = id;
			}
		}
		free(sb);
	}
	a->subs = NULL;
	a->subs_tail = &a->subs;
}

static void end_work_entries(struct alerts *a, bool committed)
{
	for (struct centry *e = a->touched, *next; e; e = next) {
		next = e->tnext;
		e->tnext = NULL;
		if (committed) {
			free(e->undo_c);
			if (e->undo_sample != e->sample)
				free(e->undo_sample);
		} else if (e->created) {
			unlink_entry(a, e);
			if (strcmp(e->key, RULES_OVERFLOW_KEY) && e->rule_idx < RS(a)->n_rules)
				a->rt[e->rule_idx].n_circuits--;
			free_entry(a, e);
			continue;
		} else {
			memcpy(e->c, e->undo_c, circuit_size(&entry_rule(a, e)->circuit));
			free(e->undo_c);
			e->row_id = e->undo_row_id;
			e->has_alert = e->undo_has_alert;
			memcpy(e->alert_id, e->undo_alert_id, 16);
			e->notices = e->undo_notices;
			e->opened_at = e->undo_opened_at;
			if (e->sample != e->undo_sample)
				free(e->sample);
			e->sample = e->undo_sample;
			e->sample_loaded = e->undo_sample_loaded;
			e->doomed = false;
			set_active(a, e);
		}
		e->undo_c = NULL;
		e->undo_sample = NULL;
		e->created = false;
	}
	a->touched = NULL;
}

static void publish_counts(struct alerts *a)
{
	uint32_t open = 0, half_open = 0, firing = 0;
	for (struct centry *e = a->active; e; e = e->anext) {
		open += e->c->state != CIRCUIT_CLOSED;
		half_open += e->c->state == CIRCUIT_HALF_OPEN;
		firing += e->c->state != CIRCUIT_CLOSED && e->has_alert;
	}
	pthread_mutex_lock(&a->stats_mu);
	a->st.circuits = (uint32_t)a->n_entries;
	a->st.circuits_open = open;
	a->st.circuits_half_open = half_open;
	a->st.alerts_firing = firing;
	a->st.pending_deliveries = a->held;
	pthread_mutex_unlock(&a->stats_mu);
}

static void end_work_subs(struct alerts *a, bool committed)
{
	if (a->txn_st.overflow_failures) /* per rule, like the totals: only what committed */
		for (size_t i = 0; i < RS(a)->n_rules; i++) {
			if (committed && a->rt[i].txn_overflow) {
				pthread_mutex_lock(&a->stats_mu);
				a->rt[i].overflow_failures += a->rt[i].txn_overflow;
				pthread_mutex_unlock(&a->stats_mu);
			}
			a->rt[i].txn_overflow = 0;
		}
	if (committed) {
		pthread_mutex_lock(&a->stats_mu);
		add_stats(&a->st, &a->txn_st);
		pthread_mutex_unlock(&a->stats_mu);
		flush_subs(a);
		publish_counts(a);
	} else {
		for (struct sub *sb = a->subs, *next; sb; sb = next) {
			next = sb->next;
			free(sb->d);
			free(sb);
		}
		a->subs = NULL;
		a->subs_tail = &a->subs;
	}
	memset(&a->txn_st, 0, sizeof(a->txn_st));
}

static void end_work(struct alerts *a, bool committed)
{
	end_work_entries(a, committed);
	end_work_subs(a, committed);
}

/* Runs fn(a, s, arg) in a transaction of its own.  On success the caller must end_work. */
static int in_txn_keep(struct alerts *a, struct store *s, int (*fn)(struct alerts *, struct store *, void *),
		       void *arg)
{
	if (store_txn_begin(s))
		return -1;
	begin_work(a);
	if (fn(a, s, arg) || store_txn_commit(s)) {
		errq_logkv(ERRQ_LOG_WARN, "alerts: write failed", "error", store_errmsg(s), NULL);
		store_txn_rollback(s);
		end_work(a, false);
		return -1;
	}
	return 0;
}

static int in_txn(struct alerts *a, struct store *s, int (*fn)(struct alerts *, struct store *, void *), void *arg)
{
	if (in_txn_keep(a, s, fn, arg))
		return -1;
	end_work(a, true);
	return 0;
}

/* ---- silences ending: deliver the firing notices they held back ---- */

struct held {
	int64_t id[RULES_MAX_NOTIFY * 4];
	uint32_t seq[RULES_MAX_NOTIFY * 4];
	char notifier[RULES_MAX_NOTIFY * 4][RULES_NAME_MAX];
	size_t n;
};

static int held_cb(void *ctx, const struct store_delivery *d)
{
	struct held *h = ctx;
	if (d->status != STORE_DELIVERY_SILENCED || strcmp(d->kind, "firing"))
		return 0;
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->notifier[i], d->notifier)) { /* the latest notice per notifier */
			if (d->seq > h->seq[i]) {
				h->seq[i] = d->seq;
				h->id[i] = d->id;
			}
			return 0;
		}
	if (h->n < sizeof(h->id) / sizeof(h->id[0])) {
		h->id[h->n] = d->id;
		h->seq[h->n] = d->seq;
		errq_snprintf(h->notifier[h->n], RULES_NAME_MAX, "%s", d->notifier);
		h->n++;
	}
	return 0;
}

struct resend {
	struct alerts *a;
	int rc;
};

/* Makes row d pending again with no attempts, and queues it for the notifier. */
static int resend_cb(void *ctx, const struct store_delivery *d)
{
	struct resend *r = ctx;
	struct alerts *a = r->a;
	if (!d->body) {
		r->rc = -1;
		return 1;
	}
	if (a->backlog && d->id >= a->backlog_from)
		return 0; /* the backlog sweep will send it (at load it sweeps from 0): once only */
	struct notify_delivery *nd = notify_delivery_new(d->body, d->body_len);
	struct sub *sb = nd ? malloc(sizeof(*sb)) : NULL;
	if (!sb) {
		free(nd);
		r->rc = oom();
		return 1;
	}
	sb->resend = true;
	char hex[ERRQ_ID_HEX_BUFSZ];
	errq_hex_encode(d->alert_id, 16, hex);
	nd->id = (uint64_t)d->id;
	errq_snprintf(nd->dest, sizeof(nd->dest), "%s", d->notifier);
	errq_snprintf(nd->order_key, sizeof(nd->order_key), "%s:%s", hex, d->notifier);
	errq_snprintf(nd->idempotency_key, sizeof(nd->idempotency_key), "%s", d->idempotency_key);
	sb->d = nd;
	sb->next = NULL;
	*a->subs_tail = sb;
	a->subs_tail = &sb->next;
	return 0;
}

static int resend(struct alerts *a, struct store *s, int64_t id, uint64_t now)
{
	struct resend r = {.a = a};
	if (store_delivery_update(s, id, STORE_DELIVERY_PENDING, 0, 0, 0, "", now) < 0)
		return -1;
	if (store_get_delivery(s, id, resend_cb, &r) < 0)
		return -1;
	return r.rc;
}

/* A firing alert no silence covers any more: its held-back firing notice goes out. */
static int unsilence_entry(struct alerts *a, struct store *s, struct centry *e, uint64_t now)
{
	struct held h = {.n = 0};
	if (store_list_deliveries(s, e->alert_id, held_cb, &h))
		return -1;
	for (size_t i = 0; i < h.n; i++)
		if (resend(a, s, h.id[i], now))
			return -1;
	return 0;
}

struct unsilence_arg {
	char rule[RULES_NAME_MAX];
	char *matchers;
};

static int unsilence(struct alerts *a, struct store *s, void *arg)
{
	const struct unsilence_arg *u = arg;
	uint64_t now = a->clock();
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry *e = a->buckets[i]; e; e = e->hnext) {
			const struct rule *r = entry_rule(a, e);
			if (!e->has_alert || strcmp(r->name, u->rule) || !alerts_matchers_match(u->matchers, e->key) ||
			    silenced(a, r->name, e->key, now))
				continue;
			if (unsilence_entry(a, s, e, now))
				return -1;
		}
	return 0;
}

/* ---- the writer's hooks ---- */

struct match_ctx {
	struct alerts *a;
	struct store *s;
	const struct ingest_event *ev;
	const Errq__V1__Outcome *oc;
	uint64_t now;
	int rc;
};

static int on_event_match(void *arg, const struct rule *rule, const char *key, size_t key_len)
{
	struct match_ctx *m = arg;
	struct alerts *a = m->a;
	size_t idx = (size_t)(rule - RS(a)->rules);
	struct centry *e = get_entry(a, idx, key, key_len, m->now);
	if (!e) {
		m->rc = oom();
		return 1;
	}
	struct circuit_out out;
	enum circuit_count cnt = circuit_failure(e->c, &rule->circuit, m->now, m->ev->received_ns,
						 m->ev->tf->time_unix_nano, &out);
	a->txn_st.failures_matched += cnt == CIRCUIT_COUNTED;
	a->txn_st.failures_too_old += cnt == CIRCUIT_TOO_OLD;
	a->txn_st.failures_expired += cnt == CIRCUIT_EXPIRED;
	if (apply(a, m->s, RS(a), rule, e, &out, m->ev, NULL, m->now)) {
		m->rc = -1;
		return 1;
	}
	return 0;
}

static int feed_outcome(struct match_ctx *m, const struct rule *rule, struct centry *e)
{
	const Errq__V1__Outcome *o = m->oc;
	uint64_t end = o->window_start_unix_nano
			   ? o->window_start_unix_nano + (uint64_t)o->window_seconds * ERRQ_NS_PER_SEC
			   : 0;
	struct circuit_out out;
	circuit_outcome(e->c, &rule->circuit, m->now, m->now, o->ok, o->failed, end, &out);
	return apply(m->a, m->s, RS(m->a), rule, e, &out, NULL, o, m->now);
}

static int on_outcome_match(void *arg, const struct rule *rule, const char *key, size_t key_len)
{
	struct match_ctx *m = arg;
	struct alerts *a = m->a;
	size_t idx = (size_t)(rule - RS(a)->rules);
	if (key) {
		struct centry *e = get_entry(a, idx, key, key_len, m->now);
		if (!e)
			m->rc = oom();
		else if (feed_outcome(m, rule, e))
			m->rc = -1;
		return m->rc != 0;
	}
	/* an outcome for every HALF_OPEN circuit of the rule with its service and task */
	for (struct centry *e = a->active, *next; e; e = next) {
		next = e->anext;
		if (e->rule_idx != idx || e->c->state != CIRCUIT_HALF_OPEN ||
		    !rules_outcome_applies(rule, e->key, m->oc->service, m->oc->task))
			continue;
		if (touch(a, e)) {
			m->rc = oom();
			return 1;
		}
		if (feed_outcome(m, rule, e)) {
			m->rc = -1;
			return 1;
		}
	}
	return 0;
}

static bool wants_outcomes(const struct ruleset *rs)
{
	for (size_t i = 0; i < rs->n_rules; i++)
		if (rs->rules[i].wants_outcomes)
			return true;
	return false;
}

int alerts_hook_txn(void *ctx, struct store *s, const struct ingest_batch *list)
{
	struct alerts *a = ctx;
	begin_work(a);
	if (!a->loaded)
		return -1; /* the tick loads circuits first; it failed: retry */
	const struct ruleset *rs = RS(a);
	if (!rs->n_rules)
		return 0;
	bool outcomes = wants_outcomes(rs);
	struct match_ctx m = {.a = a, .s = s, .now = a->clock()};
	const char *dk[VALIDATE_MAX_DETAILS], *dv[VALIDATE_MAX_DETAILS];
	for (const struct ingest_batch *b = list; b; b = b->next) {
		for (size_t i = 0; i < b->n_events; i++) {
			const struct ingest_event *ev = &b->events[i];
			if (!ev->tf || ev->result != 1)
				continue; /* rejected, or a duplicate: counted when first stored */
			const Errq__V1__TaskFailure *tf = ev->tf;
			size_t nd = ev->v.details_kept < VALIDATE_MAX_DETAILS ? ev->v.details_kept : VALIDATE_MAX_DETAILS;
			for (size_t j = 0; j < nd; j++) {
				dk[j] = tf->details[j]->key ? tf->details[j]->key : "";
				dv[j] = tf->details[j]->value ? tf->details[j]->value : "";
			}
			struct rule_event re = {
			    .service = tf->service,
			    .environment = tf->environment,
			    .task = tf->task,
			    .error_type = tf->error_type,
			    .error_code = tf->error_code,
			    .fingerprint = ev->v.fingerprint,
			    .handled = tf->handled,
			    .detail_keys = dk,
			    .detail_values = dv,
			    .n_details = nd,
			};
			m.ev = ev;
			rules_match(rs, &re, on_event_match, &m);
			if (m.rc)
				return -1;
		}
		if (!outcomes || !b->req || !b->req->n_outcomes)
			continue;
		if (b->req->batch_id.len == 16) {
			int r = store_outcome_batch_seen(s, b->req->batch_id.data, m.now);
			if (r < 0)
				return -1;
			a->txn_st.outcome_batches++;
			if (r == 0) {
				a->txn_st.outcome_batches_duplicate++;
				continue; /* a resent batch: its outcomes counted already */
			}
		}
		m.ev = NULL;
		for (size_t i = 0; i < b->req->n_outcomes; i++) {
			m.oc = b->req->outcomes[i];
			rules_match_outcome(rs, m.oc->service, m.oc->task, on_outcome_match, &m);
			if (m.rc)
				return -1;
		}
	}
	return save_touched(a, s, m.now);
}

void alerts_hook_txn_end(void *ctx, struct store *s, bool committed)
{
	struct alerts *a = ctx;
	(void)s;
	bool timers = a->txn_timers && committed;
	a->txn_timers = false;
	end_work(a, committed);
	if (timers && a->o.ig)
		ingest_tick_soon(a->o.ig); /* the tick works out the next wake-up */
}

/* ---- the backlog: pending rows the notifier has not taken yet, in id order ---- */

struct feed {
	struct alerts *a;
	int64_t last;
	size_t rows;
	bool refused;
};

static int feed_cb(void *ctx, const struct store_delivery *d)
{
	struct feed *f = ctx;
	f->rows++;
	if (d->status != STORE_DELIVERY_PENDING) { /* a retried id that moved on */
		f->last = d->id;
		return 0;
	}
	struct notify_delivery *nd = d->body ? notify_delivery_new(d->body, d->body_len) : NULL;
	if (!nd) { /* out of memory, or a body too long to send (not written so): try later */
		f->refused = true;
		return 1;
	}
	char hex[ERRQ_ID_HEX_BUFSZ];
	errq_hex_encode(d->alert_id, 16, hex);
	nd->id = (uint64_t)d->id;
	nd->attempts = d->attempts;
	nd->not_before_ns = d->next_attempt_ns;
	errq_snprintf(nd->dest, sizeof(nd->dest), "%s", d->notifier);
	errq_snprintf(nd->order_key, sizeof(nd->order_key), "%s:%s", hex, d->notifier);
	errq_snprintf(nd->idempotency_key, sizeof(nd->idempotency_key), "%s", d->idempotency_key);
	if (notify_submit(f->a->notifier, nd)) {
		free(nd);
		f->refused = true;
		return 1;
	}
	f->a->held++;
	f->last = d->id;
	return 0;
}

static void feed_backlog(struct alerts *a, struct store *s)
{
	while (a->n_retry) {
		struct feed f = {.a = a};
		int64_t id = a->retry_ids[a->n_retry - 1];
		if (store_get_delivery(s, id, feed_cb, &f) < 0 || f.refused)
			return;
		a->n_retry--; /* sent, or no longer there */
	}
	while (a->backlog) {
		struct feed f = {.a = a, .last = a->backlog_from - 1};
		if (store_list_deliveries_by_status(s, STORE_DELIVERY_PENDING, a->backlog_from - 1, BACKLOG_PAGE, true,
						    feed_cb, &f)) {
			errq_logkv(ERRQ_LOG_WARN, "alerts: cannot read pending deliveries", "error", store_errmsg(s), NULL);
			return;
		}
		a->backlog_from = f.last + 1;
		if (f.refused)
			return;
		if (f.rows < BACKLOG_PAGE)
			a->backlog = false;
	}
}

/* ---- delivery reports: notifier thread -> writer ---- */

static int record_reports(struct alerts *a, struct store *s, void *arg)
{
	const struct notify_report *rep = ((const struct notify_report **)arg)[0];
	size_t n = *((size_t *)((void **)arg)[1]);
	uint64_t now = a->clock();
	for (size_t i = 0; i < n; i++) {
		const struct notify_report *r = &rep[i];
		int status = r->result == NOTIFY_DELIVERED ? STORE_DELIVERY_DELIVERED
			     : r->result == NOTIFY_DEAD    ? STORE_DELIVERY_DEAD
							   : STORE_DELIVERY_PENDING;
		if (store_delivery_update(s, (int64_t)r->id, status, r->attempts,
					  r->result == NOTIFY_RETRY ? r->retry_at_ns : 0, r->http_status, r->error,
					  now) < 0)
			return -1;
	}
	return 0;
}

static void apply_reports(struct alerts *a, struct store *s)
{
	pthread_mutex_lock(&a->rep_mu);
	struct notify_report *rep = a->reports;
	size_t n = a->n_reports;
	a->reports = NULL;
	a->n_reports = 0;
	pthread_mutex_unlock(&a->rep_mu);
	if (!n) {
		free(rep);
		return;
	}
	void *arg[2] = {rep, &n};
	if (in_txn(a, s, record_reports, arg)) {
		/* put them back, behind any newer report of the same row */
		pthread_mutex_lock(&a->rep_mu);
		for (size_t i = 0; i < n; i++) {
			bool newer = false;
			for (size_t j = 0; j < a->n_reports && !newer; j++)
				newer = a->reports[j].id == rep[i].id;
			if (!newer && a->n_reports < ALERTS_REPORT_SLOTS && a->reports)
				a->reports[a->n_reports++] = rep[i];
		}
		pthread_mutex_unlock(&a->rep_mu);
		free(rep);
		return;
	}
	uint64_t done = 0, dead = 0, retried = 0;
	for (size_t i = 0; i < n; i++) {
		done += rep[i].result == NOTIFY_DELIVERED;
		dead += rep[i].result == NOTIFY_DEAD;
		retried += rep[i].result == NOTIFY_RETRY;
		if (rep[i].result == NOTIFY_DEAD) {
			char id[24], att[16];
			errq_snprintf(id, sizeof(id), "%llu", (unsigned long long)rep[i].id);
			errq_snprintf(att, sizeof(att), "%u", rep[i].attempts);
			errq_logkv(ERRQ_LOG_WARN, "alert delivery dead-lettered ('errq alerts replay' sends it again)",
				   "delivery", id, "attempts", att, "error", rep[i].error, NULL);
		}
	}
	a->held -= (uint32_t)(done + dead) <= a->held ? (uint32_t)(done + dead) : a->held;
	pthread_mutex_lock(&a->stats_mu);
	a->st.deliveries_delivered += done;
	a->st.deliveries_dead += dead;
	a->st.deliveries_retried += retried;
	pthread_mutex_unlock(&a->stats_mu);
	free(rep);
	if (done + dead)
		feed_backlog(a, s); /* the notifier has room again */
	publish_counts(a);
}

static void report_job_run(struct ingest_job *j, struct store *s)
{
	struct alerts *a = (struct alerts *)(void *)((char *)j - offsetof(struct alerts, report_job));
	pthread_mutex_lock(&a->rep_mu);
	a->report_job_queued = false;
	pthread_mutex_unlock(&a->rep_mu);
	if (s && a->loaded)
		apply_reports(a, s);
}

/* Notifier thread: after every attempt. */
static void on_report(void *ctx, const struct notify_report *r)
{
	struct alerts *a = ctx;
	bool schedule = false;
	pthread_mutex_lock(&a->rep_mu);
	size_t i = 0;
	while (i < a->n_reports && a->reports[i].id != r->id)
		i++;
	if (i == a->n_reports && !a->reports)
		a->reports = malloc(ALERTS_REPORT_SLOTS * sizeof(*a->reports));
	if (i < a->n_reports || (a->reports && a->n_reports < ALERTS_REPORT_SLOTS)) {
		a->reports[i] = *r; /* a newer report of the same row replaces the older */
		if (i == a->n_reports)
			a->n_reports++;
		schedule = !a->report_job_queued;
		a->report_job_queued = true;
	} else {
		LOG_WARN("alerts: delivery report dropped (report buffer full); the row is retried after a restart");
	}
	pthread_mutex_unlock(&a->rep_mu);
	if (schedule && (!a->o.ig || ingest_run_job(a->o.ig, &a->report_job))) {
		pthread_mutex_lock(&a->rep_mu);
		a->report_job_queued = false;
		pthread_mutex_unlock(&a->rep_mu);
		if (a->o.ig)
			ingest_tick_soon(a->o.ig); /* the tick records them instead */
	}
}

/* ---- loading at start ---- */

struct saved_row {
	int64_t id;
	char *rule, *key;
	uint64_t def_hash;
	int state;
	uint64_t failures;
	bool has_alert;
	uint8_t alert_id[16];
	void *saved;
	size_t saved_len;
};

struct rows {
	struct saved_row *v;
	size_t n, cap;
	int rc;
};

static int rows_cb(void *ctx, const struct store_circuit *c)
{
	struct rows *r = ctx;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct saved_row *v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			r->rc = -1;
			return 1;
		}
		r->v = v;
		r->cap = cap;
	}
	struct saved_row *w = &r->v[r->n];
	memset(w, 0, sizeof(*w));
	w->id = c->id;
	w->rule = strdup(c->rule);
	w->key = strdup(c->key);
	w->saved = malloc(c->saved_len ? c->saved_len : 1);
	if (!w->rule || !w->key || !w->saved) {
		free(w->rule);
		free(w->key);
		free(w->saved);
		r->rc = -1;
		return 1;
	}
	memcpy(w->saved, c->saved, c->saved_len);
	w->saved_len = c->saved_len;
	w->def_hash = c->def_hash;
	w->state = c->state;
	w->failures = c->failures_in_window;
	w->has_alert = c->alert_id != NULL;
	if (c->alert_id)
		memcpy(w->alert_id, c->alert_id, 16);
	r->n++;
	return 0;
}

struct alert_copy {
	bool found;
	char severity[16];
	uint64_t opened, failures;
	uint32_t window;
	char *sample;
};

static int alert_copy_cb(void *ctx, const struct store_alert *al)
{
	struct alert_copy *c = ctx;
	c->found = true;
	errq_snprintf(c->severity, sizeof(c->severity), "%s", al->severity);
	c->opened = al->opened_ns;
	c->failures = al->failures_in_window;
	c->window = al->window_seconds;
	c->sample = al->sample ? strdup(al->sample) : NULL;
	return 0;
}

struct fired_to {
	const char *names[RULES_MAX_NOTIFY * 4];
	char buf[RULES_MAX_NOTIFY * 4][RULES_NAME_MAX];
	size_t n;
};

static int fired_to_cb(void *ctx, const struct store_delivery *d)
{
	struct fired_to *f = ctx;
	if (strcmp(d->kind, "firing"))
		return 0;
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->buf[i], d->notifier))
			return 0;
	if (f->n < sizeof(f->names) / sizeof(f->names[0])) {
		errq_snprintf(f->buf[f->n], RULES_NAME_MAX, "%s", d->notifier);
		f->names[f->n] = f->buf[f->n];
		f->n++;
	}
	return 0;
}

/* A saved circuit whose rule is gone or changed while the collector was down (or whose
 * state cannot be read): it closes now, and its alert resolves to the notifiers that had
 * its firing. */
static int retire_row(struct alerts *a, struct store *s, const struct saved_row *w, const char *reason,
		      uint64_t now)
{
	if (w->state != CIRCUIT_CLOSED) {
		struct store_transition t = {
		    .rule = w->rule,
		    .key = w->key,
		    .at_ns = now,
		    .from = w->state,
		    .to = CIRCUIT_CLOSED,
		    .reason = reason,
		    .failures_in_window = w->failures,
		    .alert_id = w->has_alert ? w->alert_id : NULL,
		};
		if (store_transition_add(s, &t))
			return -1;
		a->txn_st.transitions++;
	}
	if (w->has_alert) {
		struct alert_copy c = {.found = false};
		struct fired_to f = {.n = 0};
		if (store_get_alert(s, w->alert_id, alert_copy_cb, &c) < 0 ||
		    store_list_deliveries(s, w->alert_id, fired_to_cb, &f)) {
			free(c.sample);
			return -1;
		}
		int rc = 0;
		if (c.found) {
			struct store_alert al = {
			    .alert_id = w->alert_id,
			    .rule = w->rule,
			    .key = w->key,
			    .severity = c.severity,
			    .status = "resolved",
			    .state = CIRCUIT_CLOSED,
			    .opened_ns = c.opened,
			    .resolved_ns = now,
			    .failures_in_window = c.failures,
			    .window_seconds = c.window,
			    .sample = c.sample,
			    .resolve_reason = reason,
			    .updated_ns = now,
			};
			struct notice n = {
			    .rule = w->rule,
			    .key = w->key,
			    .severity = c.severity,
			    .status = "resolved",
			    .reason = reason,
			    .sample = c.sample,
			    .alert_id = w->alert_id,
			    .state = CIRCUIT_CLOSED,
			    .prev = w->state,
			    .failures = w->failures,
			    .window = c.window,
			    .opened = c.opened,
			    .resolved = now,
			    .seq = 1,
			};
			int64_t id;
			rc = store_alert_put(s, &al, &id) || write_notice(a, s, f.names, f.n, &n, now) ? -1 : 0;
			a->txn_st.alerts_resolved += rc == 0;
		}
		free(c.sample);
		if (rc)
			return -1;
	}
	return store_circuit_delete(s, w->id);
}

static int silence_load_cb(void *ctx, const struct store_silence *si)
{
	struct alerts *a = ctx;
	uint64_t now = a->clock();
	if (si->expired_ns || si->ends_ns <= now)
		return 0;
	return add_silence_mem(a, si->id, si->rule, si->matchers, si->starts_ns, si->ends_ns) ? 1 : 0;
}

static int load_txn(struct alerts *a, struct store *s, void *arg)
{
	(void)arg;
	const struct ruleset *rs = RS(a);
	uint64_t now = a->clock();
	struct rows rows = {.v = NULL};
	int rc = -1;
	while (a->n_sil)
		drop_silence_mem(a, a->n_sil - 1);
	if (store_list_silences(s, true, now, MAX_SILENCES, silence_load_cb, a))
		goto out;
	if (store_list_circuits(s, NULL, rows_cb, &rows) || rows.rc)
		goto out;
	for (size_t i = 0; i < rows.n; i++) {
		struct saved_row *w = &rows.v[i];
		const struct rule *r = rules_find(rs, w->rule);
		struct circuit *c = NULL;
		if (!r || r->def_hash != w->def_hash || circuit_load(&c, &r->circuit, w->saved, w->saved_len)) {
			const char *why = !r ? "rule_removed" : r->def_hash != w->def_hash ? "rule_changed"
											   : "state_unreadable";
			if (retire_row(a, s, w, why, now))
				goto out;
			continue;
		}
		size_t idx = (size_t)(r - rs->rules);
		uint64_t h = entry_hash(r->name, w->key, strlen(w->key));
		struct centry *e = new_entry(a, idx, w->key, strlen(w->key), h, now);
		if (!e) {
			circuit_free(c);
			goto out;
		}
		circuit_free(e->c);
		e->c = c;
		e->row_id = w->id;
		e->has_alert = w->has_alert;
		memcpy(e->alert_id, w->alert_id, 16);
		e->opened_at = c->opened_at;
		e->sample_loaded = !w->has_alert;
		e->created = true;
		e->gen = a->gen;
		e->tnext = a->touched;
		a->touched = e;
		if (strcmp(e->key, RULES_OVERFLOW_KEY))
			a->rt[idx].n_circuits++;
		struct circuit_out out;
		circuit_restore(c, &r->circuit, now, &out);
		if (apply(a, s, rs, r, e, &out, NULL, NULL, now))
			goto out;
	}
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry *e = a->buckets[i]; e; e = e->hnext)
			if (e->has_alert && !silenced(a, entry_rule(a, e)->name, e->key, now) &&
			    unsilence_entry(a, s, e, now))
				goto out;
	rc = save_touched(a, s, now);
out:
	for (size_t i = 0; i < rows.n; i++) {
		free(rows.v[i].rule);
		free(rows.v[i].key);
		free(rows.v[i].saved);
	}
	free(rows.v);
	return rc;
}

/* Reads circuits, silences and pending deliveries (writer, once, in its own transaction). */
static int load(struct alerts *a, struct store *s)
{
	/* everything pending in the table goes to the notifier through the backlog sweep, in
	 * id order: the rows of before the restart first, then those the load writes */
	a->backlog = true;
	a->backlog_from = 0;
	if (in_txn(a, s, load_txn, NULL))
		return -1;
	a->loaded = true;
	uint32_t n = 0, open = 0;
	for (struct centry *e = a->active; e; e = e->anext)
		open += e->c->state != CIRCUIT_CLOSED;
	n = (uint32_t)a->n_entries;
	char cs[24], os[24], ss[24];
	errq_snprintf(cs, sizeof(cs), "%u", n);
	errq_snprintf(os, sizeof(os), "%u", open);
	errq_snprintf(ss, sizeof(ss), "%zu", a->n_sil);
	errq_logkv(ERRQ_LOG_INFO, "alert circuits loaded", "circuits", cs, "not_closed", os, "silences", ss, NULL);
	feed_backlog(a, s);
	return 0;
}

/* ---- timers ---- */

static int tick_txn(struct alerts *a, struct store *s, void *arg)
{
	(void)arg;
	uint64_t now = a->clock();
	const struct ruleset *rs = RS(a);
	for (struct centry *e = a->active, *next; e; e = next) {
		next = e->anext;
		uint64_t d = circuit_next_deadline(e->c);
		if (!d || d > now)
			continue;
		if (touch(a, e))
			return oom();
		const struct rule *r = entry_rule(a, e);
		struct circuit_out out;
		circuit_tick(e->c, &r->circuit, now, &out);
		if (apply(a, s, rs, r, e, &out, NULL, NULL, now))
			return -1;
	}
	return save_touched(a, s, now);
}

uint64_t alerts_hook_tick(void *ctx, struct store *s)
{
	struct alerts *a = ctx;
	uint64_t mono = errq_mono_ns();
	if (!a->loaded && load(a, s))
		return mono + ERRQ_NS_PER_SEC;
	apply_reports(a, s);
	uint64_t now = a->clock();
	bool due = false;
	for (struct centry *e = a->active; e && !due; e = e->anext)
		due = circuit_next_deadline(e->c) <= now;
	if (due && in_txn(a, s, tick_txn, NULL))
		return mono + ERRQ_NS_PER_SEC;
	/* silences that ended: their firing alerts are delivered now */
	for (size_t i = 0; i < a->n_sil;) {
		if (a->sil[i].ends > now) {
			i++;
			continue;
		}
		struct unsilence_arg u;
		errq_snprintf(u.rule, sizeof(u.rule), "%s", a->sil[i].rule);
		u.matchers = a->sil[i].matchers;
		a->sil[i].matchers = NULL;
		drop_silence_mem(a, i);
		if (in_txn(a, s, unsilence, &u))
			LOG_WARN("alerts: could not deliver what an ended silence held back; it goes out after a restart");
		free(u.matchers);
	}
	if (a->backlog || a->n_retry)
		feed_backlog(a, s);
	/* when to come back: the earliest deadline or silence end */
	uint64_t next = 0;
	now = a->clock();
	for (struct centry *e = a->active; e; e = e->anext) {
		uint64_t d = circuit_next_deadline(e->c);
		if (d && (!next || d < next))
			next = d;
	}
	for (size_t i = 0; i < a->n_sil; i++)
		if (!next || a->sil[i].ends < next)
			next = a->sil[i].ends;
	uint64_t wake = next ? mono + (next > now ? next - now : 0) : 0;
	pthread_mutex_lock(&a->rep_mu);
	bool reports = a->n_reports && !a->report_job_queued;
	pthread_mutex_unlock(&a->rep_mu);
	uint64_t soon = mono + ALERTS_RESUBMIT_MS * ERRQ_NS_PER_MS;
	if ((a->backlog || a->n_retry || reports) && (!wake || soon < wake))
		wake = soon;
	return wake;
}

/* ---- requests from the Alerts service ---- */

static void answer(struct request *rq, struct alerts_answer *ans)
{
	if (rq->fn) {
		rq->fn(rq->arg, ans);
	} else if (rq->kind == REQ_RELOAD) {
		if (ans->status == ALERTS_OK)
			errq_logkv(ERRQ_LOG_INFO, "rules reloaded", "detail", ans->msg, NULL);
		else
			errq_logkv(ERRQ_LOG_ERROR, "rules reload refused; the rules in force stay", "error", ans->msg, NULL);
	}
}

static void fail(struct alerts_answer *ans, enum alerts_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct alerts_answer *ans, enum alerts_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ans->status = st;
	vsnprintf(ans->msg, sizeof(ans->msg), fmt, ap);
	va_end(ap);
}

struct reload_arg {
	size_t *map; /* old rule index -> new, SIZE_MAX = retired */
	enum circuit_retire *fate;
};

static int reload_txn(struct alerts *a, struct store *s, void *arg)
{
	struct reload_arg *ra = arg;
	const struct ruleset *old = RS(a);
	uint64_t now = a->clock();
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry *e = a->buckets[i]; e; e = e->hnext) {
			if (ra->map[e->rule_idx] != SIZE_MAX)
				continue;
			const struct rule *r = &old->rules[e->rule_idx];
			if (touch(a, e))
				return oom();
			struct circuit_out out;
			circuit_retire(e->c, &r->circuit, now, ra->fate[e->rule_idx], &out);
			/* the resolved notices go to the notifiers the new rules still have (write_notice
			 * checks names against the rules in force: swap first for that check) */
			if (apply(a, s, old, r, e, &out, NULL, NULL, now))
				return -1;
			if (e->row_id && store_circuit_delete(s, e->row_id))
				return -1;
			e->doomed = true;
		}
	return save_touched(a, s, now);
}

static void set_dests(struct alerts *a, const struct ruleset *rs)
{
	struct notify_dest *d = calloc(rs->n_notifiers ? rs->n_notifiers : 1, sizeof(*d));
	if (!d) {
		LOG_ERROR("alerts: out of memory setting notifiers");
		return;
	}
	for (size_t i = 0; i < rs->n_notifiers; i++) {
		const struct rules_notifier *n = &rs->notifiers[i];
		errq_snprintf(d[i].name, sizeof(d[i].name), "%s", n->name);
		d[i].type = n->type == RULES_NOTIFIER_LOG ? NOTIFY_LOG : NOTIFY_WEBHOOK;
		errq_snprintf(d[i].url, sizeof(d[i].url), "%s", n->url ? n->url : "");
		d[i].timeout_ms = (uint32_t)(n->timeout_ns / ERRQ_NS_PER_MS);
		d[i].max_attempts = n->max_attempts;
		d[i].n_headers = n->n_headers < NOTIFY_MAX_HEADERS ? n->n_headers : NOTIFY_MAX_HEADERS;
		for (size_t j = 0; j < d[i].n_headers; j++)
			errq_snprintf(d[i].headers[j], sizeof(d[i].headers[j]), "%s: %s", n->headers[j].name,
				      n->headers[j].value);
		errq_snprintf(d[i].secret, sizeof(d[i].secret), "%s", n->secret ? n->secret : "");
	}
	if (notify_set_dests(a->notifier, d, rs->n_notifiers))
		LOG_ERROR("alerts: the notifier refused the destinations");
	free(d);
}

static struct rule_rt *new_rt(size_t n)
{
	return calloc(n ? n : 1, sizeof(struct rule_rt));
}

static void do_reload(struct alerts *a, struct store *s, struct alerts_answer *ans)
{
	struct ruleset *next = NULL;
	char err[sizeof(ans->msg)];
	if (!a->config_path[0])
		return fail(ans, ALERTS_INVALID, "%s", "errqd runs without a config file (--config): no rules to reload");
	if (rules_load(&next, a->config_path, err, sizeof(err)))
		return fail(ans, ALERTS_INVALID, "%s", err);
	const struct ruleset *old = RS(a);
	struct reload_arg ra = {.map = NULL};
	ra.map = calloc(old->n_rules ? old->n_rules : 1, sizeof(*ra.map));
	ra.fate = calloc(old->n_rules ? old->n_rules : 1, sizeof(*ra.fate));
	struct rule_rt *rt = new_rt(next->n_rules);
	struct rules_ref *ref = rules_ref_new(next, a->config_path, a->clock());
	if (!ra.map || !ra.fate || !rt || !ref) {
		fail(ans, ALERTS_INTERNAL, "%s", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < old->n_rules; i++) {
		const struct rule *now_rule = NULL;
		ra.fate[i] = rules_reload_fate(&old->rules[i], next, &now_rule);
		ra.map[i] = ra.fate[i] == CIRCUIT_RETIRE_NONE ? (size_t)(now_rule - next->rules) : SIZE_MAX;
		ans->kept += ra.fate[i] == CIRCUIT_RETIRE_NONE;
		ans->changed += ra.fate[i] == CIRCUIT_RETIRE_CHANGED;
		ans->removed += ra.fate[i] == CIRCUIT_RETIRE_REMOVED;
	}
	/* the retiring circuits' resolved notices go to the notifiers the new rules still have */
	a->dest_check = next;
	int rc = in_txn_keep(a, s, reload_txn, &ra);
	a->dest_check = NULL;
	if (rc) {
		fail(ans, ALERTS_INTERNAL, "cannot store the retired circuits: %s", store_errmsg(s));
		goto out;
	}
	struct rules_ref *prev = a->cur;
	end_work_entries(a, true);
	/* committed: drop retired circuits, renumber kept ones, swap the rules, then send */
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry **pp = &a->buckets[i], *e; (e = *pp);) {
			if (e->doomed) {
				*pp = e->hnext;
				a->n_entries--;
				free_entry(a, e);
				continue;
			}
			e->rule_idx = ra.map[e->rule_idx];
			if (strcmp(e->key, RULES_OVERFLOW_KEY))
				rt[e->rule_idx].n_circuits++;
			pp = &e->hnext;
		}
	for (size_t i = 0; i < next->n_rules; i++) {
		const struct rule *orule = rules_find(old, next->rules[i].name);
		if (orule)
			rt[i].overflow_failures = a->rt[orule - old->rules].overflow_failures;
	}
	pthread_mutex_lock(&a->stats_mu); /* alerts_rule_overflow reads rt and cur together */
	free(a->rt);
	a->rt = rt;
	rt = NULL;
	pthread_mutex_lock(&a->rules_mu);
	a->cur = ref;
	pthread_mutex_unlock(&a->rules_mu);
	pthread_mutex_unlock(&a->stats_mu);
	ref = NULL;
	next = NULL;
	set_dests(a, RS(a));
	end_work_subs(a, true);
	rules_ref_put(a, prev);
	ans->rules = (uint32_t)RS(a)->n_rules;
	ans->notifiers = (uint32_t)RS(a)->n_notifiers;
	errq_snprintf(ans->msg, sizeof(ans->msg), "%u rules, %u notifiers from '%s': %u kept, %u changed, %u removed",
		      ans->rules, ans->notifiers, a->config_path, ans->kept, ans->changed, ans->removed);
out:
	free(ra.map);
	free(ra.fate);
	free(rt);
	if (ref)
		free(ref); /* never published: next is freed below */
	rules_free(next);
}

struct replay_arg {
	int64_t dead[NOTIFY_MAX_PENDING];
	size_t n;
	uint32_t total;
};

static int dead_cb(void *ctx, const struct store_delivery *d)
{
	struct replay_arg *r = ctx;
	r->total++;
	if (d->status == STORE_DELIVERY_DEAD && r->n < sizeof(r->dead) / sizeof(r->dead[0]))
		r->dead[r->n++] = d->id;
	return 0;
}

static int replay_txn(struct alerts *a, struct store *s, void *arg)
{
	struct replay_arg *r = arg;
	uint64_t now = a->clock();
	for (size_t i = 0; i < r->n; i++)
		if (resend(a, s, r->dead[i], now))
			return -1;
	return 0;
}

static int found_cb(void *ctx, const struct store_alert *al)
{
	(void)al;
	*(bool *)ctx = true;
	return 0;
}

static void do_replay(struct alerts *a, struct store *s, const uint8_t alert_id[16], struct alerts_answer *ans)
{
	char hex[ERRQ_ID_HEX_BUFSZ];
	errq_hex_encode(alert_id, 16, hex);
	bool found = false;
	struct replay_arg *r = calloc(1, sizeof(*r));
	if (!r)
		return fail(ans, ALERTS_INTERNAL, "%s", "out of memory");
	if (store_get_alert(s, alert_id, found_cb, &found) < 0 || store_list_deliveries(s, alert_id, dead_cb, r)) {
		fail(ans, ALERTS_INTERNAL, "%s", store_errmsg(s));
	} else if (!found) {
		fail(ans, ALERTS_NOT_FOUND, "no alert %s", hex);
	} else if (!r->n) {
		fail(ans, ALERTS_PRECONDITION, "alert %s has no dead-lettered delivery to replay", hex);
	} else if (in_txn(a, s, replay_txn, r)) {
		fail(ans, ALERTS_INTERNAL, "%s", store_errmsg(s));
	} else {
		ans->count = (uint32_t)r->n;
		errq_snprintf(ans->msg, sizeof(ans->msg), "%zu deliveries of alert %s sent again", r->n, hex);
		errq_logkv(ERRQ_LOG_INFO, "alert replayed", "alert_id", hex, NULL);
	}
	free(r);
}

struct silence_arg {
	const struct alerts_silence_req *req;
	uint64_t now;
	int64_t id;
};

static int silence_add_txn(struct alerts *a, struct store *s, void *arg)
{
	(void)a;
	struct silence_arg *sa = arg;
	struct store_silence si = {
	    .rule = sa->req->rule,
	    .matchers = sa->req->matchers,
	    .comment = sa->req->comment,
	    .created_by = sa->req->created_by,
	    .created_ns = sa->now,
	    .starts_ns = sa->now,
	    .ends_ns = sa->now + sa->req->duration_ns,
	};
	return store_silence_add(s, &si, &sa->id);
}

static void do_silence_add(struct alerts *a, struct store *s, const struct alerts_silence_req *req,
			   struct alerts_answer *ans)
{
	const struct rule *r = rules_find(RS(a), req->rule);
	char err[512];
	if (!r)
		return fail(ans, ALERTS_INVALID, "no rule '%s'", req->rule);
	if (alerts_matchers_check(r, req->matchers, err, sizeof(err)))
		return fail(ans, ALERTS_INVALID, "%s", err);
	if (req->duration_ns < SILENCE_MIN_NS || req->duration_ns > SILENCE_MAX_NS)
		return fail(ans, ALERTS_INVALID, "%s", "a silence lasts from 1s to 90d");
	if (a->n_sil >= MAX_SILENCES)
		return fail(ans, ALERTS_PRECONDITION, "%s", "too many silences in force (expire some first)");
	struct silence_arg sa = {.req = req, .now = a->clock()};
	if (in_txn(a, s, silence_add_txn, &sa))
		return fail(ans, ALERTS_INTERNAL, "%s", store_errmsg(s));
	if (add_silence_mem(a, sa.id, req->rule, req->matchers, sa.now, sa.now + req->duration_ns))
		LOG_ERROR("alerts: out of memory keeping a silence; it takes effect after a restart");
	ans->id = sa.id;
	char id[24];
	errq_snprintf(id, sizeof(id), "%lld", (long long)sa.id);
	errq_logkv(ERRQ_LOG_INFO, "silence added", "id", id, "rule", req->rule, "matchers", req->matchers, NULL);
}

struct expire_arg {
	int64_t id;
	int r;
};

static int silence_expire_txn(struct alerts *a, struct store *s, void *arg)
{
	struct expire_arg *ea = arg;
	ea->r = store_silence_expire(s, ea->id, a->clock());
	return ea->r < 0 ? -1 : 0;
}

static void do_silence_expire(struct alerts *a, struct store *s, int64_t id, struct alerts_answer *ans)
{
	struct expire_arg ea = {.id = id};
	char ids[24];
	errq_snprintf(ids, sizeof(ids), "%lld", (long long)id);
	if (in_txn(a, s, silence_expire_txn, &ea))
		return fail(ans, ALERTS_INTERNAL, "%s", store_errmsg(s));
	if (ea.r == 0)
		return fail(ans, ALERTS_NOT_FOUND, "no silence %s in force", ids);
	ans->id = id;
	for (size_t i = 0; i < a->n_sil; i++)
		if (a->sil[i].id == id) {
			struct unsilence_arg u;
			errq_snprintf(u.rule, sizeof(u.rule), "%s", a->sil[i].rule);
			u.matchers = a->sil[i].matchers;
			a->sil[i].matchers = NULL;
			drop_silence_mem(a, i);
			if (in_txn(a, s, unsilence, &u))
				LOG_WARN("alerts: could not deliver what the silence held back; it goes out after a restart");
			free(u.matchers);
			break;
		}
	errq_logkv(ERRQ_LOG_INFO, "silence expired", "id", ids, NULL);
}

static void request_run(struct ingest_job *j, struct store *s)
{
	struct request *rq = (struct request *)j;
	struct alerts *a = rq->a;
	struct alerts_answer ans = {.status = ALERTS_OK};
	if (!s)
		fail(&ans, ALERTS_PRECONDITION, "%s", "this collector runs with 'storage: none': no alerting");
	else if (!a->loaded && load(a, s))
		fail(&ans, ALERTS_INTERNAL, "cannot load circuits: %s", store_errmsg(s));
	else if (rq->kind == REQ_RELOAD)
		do_reload(a, s, &ans);
	else if (rq->kind == REQ_REPLAY)
		do_replay(a, s, rq->alert_id, &ans);
	else if (rq->kind == REQ_SILENCE_ADD)
		do_silence_add(a, s, &rq->sil, &ans);
	else
		do_silence_expire(a, s, rq->id, &ans);
	answer(rq, &ans);
	free(rq);
	if (a->o.ig)
		ingest_tick_soon(a->o.ig); /* deadlines and silences may have changed */
}

static void queue_request(struct alerts *a, struct request *rq)
{
	rq->a = a;
	rq->job.run = request_run;
	if (!a->o.ig && a->o.inline_store) {
		request_run(&rq->job, a->o.inline_store);
		return;
	}
	if (!a->o.ig || ingest_run_job(a->o.ig, &rq->job)) {
		struct alerts_answer ans = {.status = ALERTS_UNAVAILABLE};
		errq_snprintf(ans.msg, sizeof(ans.msg), "the collector is busy or stopping; try again");
		answer(rq, &ans);
		free(rq);
	}
}

static struct request *new_request(int kind, alerts_answer_fn fn, void *arg)
{
	struct request *rq = calloc(1, sizeof(*rq));
	if (!rq) {
		struct alerts_answer ans = {.status = ALERTS_INTERNAL};
		errq_snprintf(ans.msg, sizeof(ans.msg), "out of memory");
		if (fn)
			fn(arg, &ans);
		return NULL;
	}
	rq->kind = kind;
	rq->fn = fn;
	rq->arg = arg;
	return rq;
}

void alerts_reload(struct alerts *a, alerts_answer_fn fn, void *arg)
{
	struct request *rq = new_request(REQ_RELOAD, fn, arg);
	if (rq)
		queue_request(a, rq);
}

void alerts_replay(struct alerts *a, const uint8_t alert_id[16], alerts_answer_fn fn, void *arg)
{
	struct request *rq = new_request(REQ_REPLAY, fn, arg);
	if (rq) {
		memcpy(rq->alert_id, alert_id, 16);
		queue_request(a, rq);
	}
}

void alerts_silence_add(struct alerts *a, const struct alerts_silence_req *req, alerts_answer_fn fn, void *arg)
{
	struct request *rq = new_request(REQ_SILENCE_ADD, fn, arg);
	if (rq) {
		rq->sil = *req;
		rq->sil.rule[sizeof(rq->sil.rule) - 1] = '\0';
		rq->sil.matchers[sizeof(rq->sil.matchers) - 1] = '\0';
		rq->sil.comment[sizeof(rq->sil.comment) - 1] = '\0';
		rq->sil.created_by[sizeof(rq->sil.created_by) - 1] = '\0';
		queue_request(a, rq);
	}
}

void alerts_silence_expire(struct alerts *a, int64_t id, alerts_answer_fn fn, void *arg)
{
	struct request *rq = new_request(REQ_SILENCE_EXPIRE, fn, arg);
	if (rq) {
		rq->id = id;
		queue_request(a, rq);
	}
}

/* ---- life ---- */

int alerts_new(struct alerts **out, const struct alerts_opts *o, struct ruleset *rs, const char *source, char *err,
	       size_t errsz)
{
	struct alerts *a = calloc(1, sizeof(*a));
	if (!a) {
		rules_free(rs);
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	a->o = *o;
	a->clock = o->clock ? o->clock : default_clock;
	errq_snprintf(a->config_path, sizeof(a->config_path), "%s", o->config_path ? o->config_path : "");
	errq_snprintf(a->collector, sizeof(a->collector), "%s", o->collector ? o->collector : "errqd");
	errq_idgen_init(&a->idgen);
	pthread_mutex_init(&a->rules_mu, NULL);
	pthread_mutex_init(&a->rep_mu, NULL);
	pthread_mutex_init(&a->stats_mu, NULL);
	a->subs_tail = &a->subs;
	a->report_job.run = report_job_run;
	a->retry_ids = malloc(NOTIFY_MAX_PENDING * sizeof(*a->retry_ids));
	if (!rs && rules_load_mem(&rs, "(none)", "", 0, err, errsz)) {
		alerts_free(a);
		return -1;
	}
	if (!(a->cur = rules_ref_new(rs, source, a->clock()))) {
		rules_free(rs);
		alerts_free(a);
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (!(a->rt = new_rt(rs->n_rules)) || notify_start(&a->notifier, on_report, a, o->notify, err, errsz)) {
		if (!a->rt)
			errq_snprintf(err, errsz, "out of memory");
		alerts_free(a);
		return -1;
	}
	set_dests(a, rs);
	*out = a;
	return 0;
}

void alerts_set_ingest(struct alerts *a, struct ingest *ig)
{
	a->o.ig = ig;
}

void alerts_free(struct alerts *a)
{
	if (!a)
		return;
	notify_stop(a->notifier);
	for (size_t i = 0; i < a->n_buckets; i++)
		for (struct centry *e = a->buckets[i], *next; e; e = next) {
			next = e->hnext;
			free_entry(a, e);
		}
	free(a->buckets);
	while (a->n_sil)
		drop_silence_mem(a, a->n_sil - 1);
	free(a->sil);
	free(a->rt);
	free(a->reports);
	free(a->retry_ids);
	if (a->cur)
		rules_ref_put(a, a->cur);
	pthread_mutex_destroy(&a->rules_mu);
	pthread_mutex_destroy(&a->rep_mu);
	pthread_mutex_destroy(&a->stats_mu);
	free(a);
}

void alerts_get_stats(struct alerts *a, struct alerts_stats *st)
{
	pthread_mutex_lock(&a->stats_mu);
	*st = a->st;
	pthread_mutex_unlock(&a->stats_mu);
}

size_t alerts_notifier_stats(struct alerts *a, struct notify_dest_stats *out, size_t max)
{
	return notify_get_stats(a->notifier, out, max);
}

uint64_t alerts_notifier_last_turn(void *ctx)
{
	struct alerts *a = ctx;
	return notify_last_turn(a->notifier);
}

uint64_t alerts_rule_overflow(struct alerts *a, const char *rule)
{
	uint64_t n = 0;
	const struct alerts_rules *r = alerts_rules_get(a);
	const struct rule *ru = rules_find(r->rs, rule);
	pthread_mutex_lock(&a->stats_mu);
	if (ru && r == &a->cur->pub)
		n = a->rt[ru - r->rs->rules].overflow_failures;
	pthread_mutex_unlock(&a->stats_mu);
	alerts_rules_put(a, r);
	return n;
}
