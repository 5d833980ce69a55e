/* svc_alerts_write.c: the writes (ReplayAlert, ReloadRules, AddSilence, ExpireSilence),
 * answered by the rule engine on the writer thread. */
#include "svc_alerts_int.h"

#include "auth.h"

#include "errq_banned.h"

/* ---- writes: answered by the rule engine ---- */

enum write_kind { W_REPLAY, W_RELOAD, W_SILENCE_ADD, W_SILENCE_EXPIRE };

struct write_call {
	struct alerts_svc *svc;
	struct unary_call *uc;
	enum write_kind kind;
	uint64_t at_ns;                /* when the request came */
	int64_t id;                    /* expire: the silence */
	uint8_t alert_id[16];          /* replay */
	struct alerts_silence_req req; /* add */
};

static grpc_status_code status_code(enum alerts_status s)
{
	switch (s) {
	case ALERTS_OK:
		return GRPC_STATUS_OK;
	case ALERTS_INVALID:
		return GRPC_STATUS_INVALID_ARGUMENT;
	case ALERTS_NOT_FOUND:
		return GRPC_STATUS_NOT_FOUND;
	case ALERTS_PRECONDITION:
		return GRPC_STATUS_FAILED_PRECONDITION;
	case ALERTS_UNAVAILABLE:
		return GRPC_STATUS_UNAVAILABLE;
	case ALERTS_INTERNAL:
		break;
	}
	return GRPC_STATUS_INTERNAL;
}

/* The silence as stored after the write, or, when it cannot be read back, as the request
 * described it. */
static Errq__V1__Silence *silence_after(struct write_call *w, struct build *b, int64_t id)
{
	char details[ALERTS_SVC_DETAILS_MAX];
	uint64_t now = errq_now_ns();
	struct store *s = svc_reader(&w->svc->readers, details, sizeof(details));
	struct silences_ctx x = {.b = b, .now = now};
	Errq__V1__Silence *one[1] = {NULL};
	x.items = one;
	int r = s ? store_get_silence(s, id, svc_alerts__silence_row, &x) : -1;
	if (r == 1 && x.n)
		return one[0];
	if (!x.oom)
		errq_logkv(ERRQ_LOG_WARN, "cannot read a silence back", "error",
			   !s ? details : r < 0 ? store_errmsg(s) : "not found", NULL);
	struct store_silence si = {.id = id};
	if (w->kind == W_SILENCE_ADD) {
		si.rule = w->req.rule;
		si.matchers = w->req.matchers;
		si.comment = w->req.comment;
		si.created_by = w->req.created_by;
		si.created_ns = si.starts_ns = w->at_ns;
		si.ends_ns = w->at_ns + w->req.duration_ns;
	} else {
		si.ends_ns = si.expired_ns = now;
	}
	return svc_alerts__silence_msg(b, &si, now);
}

static void write_done(void *arg, const struct alerts_answer *ans)
{
	struct write_call *w = arg;
	grpc_status_code st = status_code(ans->status);
	grpc_byte_buffer *resp = NULL;
	char details[ALERTS_SVC_DETAILS_MAX];
	struct build b;
	build_init(&b);
	errq_snprintf(details, sizeof(details), "%s", ans->msg);
	if (st != GRPC_STATUS_OK) {
		if (!details[0])
			errq_snprintf(details, sizeof(details), "%s", errq_status_name(st));
		goto out;
	}
	switch (w->kind) {
	case W_REPLAY: {
		Errq__V1__ReplayAlertResponse o = ERRQ__V1__REPLAY_ALERT_RESPONSE__INIT;
		o.replayed = ans->count;
		resp = errq_bb_from_msg(&o.base);
		break;
	}
	case W_RELOAD: {
		Errq__V1__ReloadRulesResponse o = ERRQ__V1__RELOAD_RULES_RESPONSE__INIT;
		o.rules = ans->rules;
		o.notifiers = ans->notifiers;
		o.kept = ans->kept;
		o.changed = ans->changed;
		o.removed = ans->removed;
		resp = errq_bb_from_msg(&o.base);
		break;
	}
	case W_SILENCE_ADD:
	case W_SILENCE_EXPIRE: {
		Errq__V1__Silence *si = silence_after(w, &b, w->kind == W_SILENCE_ADD ? ans->id : w->id);
		if (si)
			resp = errq_bb_from_msg(&si->base);
		break;
	}
	}
	if (!resp) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		errq_snprintf(details, sizeof(details), "out of memory");
	}
out:
	errq_arena_release(&b.a);
	transport_unary_reply(w->uc, st, details, resp);
	free(w);
}

/* A write call to hand to the engine, or NULL after replying (no engine, no memory). */
/* The engine refused the request (its callback will not run): answer the call here. */
static void write_refused(struct write_call *w, enum alerts_status st)
{
	if (st == ALERTS_OK)
		return;
	struct alerts_answer ans = {.status = st};
	errq_snprintf(ans.msg, sizeof(ans.msg), "%s", alerts_refusal_msg(st));
	write_done(w, &ans);
}

static struct write_call *write_new(struct alerts_svc *svc, struct unary_call *uc, enum write_kind kind)
{
	if (!svc->alerts) {
		transport_unary_reply(uc, GRPC_STATUS_FAILED_PRECONDITION,
				      "alerting is not configured on this collector (no rules engine)", NULL);
		return NULL;
	}
	struct write_call *w = calloc(1, sizeof(*w));
	if (!w) {
		transport_unary_reply(uc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return NULL;
	}
	w->svc = svc;
	w->uc = uc;
	w->kind = kind;
	w->at_ns = errq_now_ns();
	return w;
}

void svc_alerts__replay_alert(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct alerts_svc *svc = ctx;
	Errq__V1__ReplayAlertRequest *in =
	    errq__v1__replay_alert_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	char details[128];
	if (!in || in->alert_id.len != 16) {
		errq_snprintf(details, sizeof(details),
			      in ? "alert_id is %zu bytes, want 16" : "cannot decode ReplayAlertRequest",
			      in ? in->alert_id.len : 0);
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, details, NULL);
		goto out;
	}
	struct write_call *w = write_new(svc, uc, W_REPLAY);
	if (!w)
		goto out;
	memcpy(w->alert_id, in->alert_id.data, 16);
	write_refused(w, alerts_replay(svc->alerts, w->alert_id, write_done, w)); /* w is gone after this */
out:
	if (in)
		errq__v1__replay_alert_request__free_unpacked(in, NULL);
}

void svc_alerts__reload_rules(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct alerts_svc *svc = ctx;
	struct write_call *w = write_new(svc, uc, W_RELOAD);
	char id[AUTH_NAME_MAX + AUTH_IDENTITY_MAX], who[ALERTS_WHO_MAX];
	auth_identity(svc->auth, "/errq.v1.Alerts/ReloadRules", transport_unary_md(uc), transport_unary_grpc_call(uc), id,
		      sizeof(id));
	if (id[0])
		errq_snprintf(who, sizeof(who), "ReloadRules RPC (identity '%s')", id);
	else
		errq_snprintf(who, sizeof(who), "ReloadRules RPC (no identity: open mode)");
	if (w)
		write_refused(w, alerts_reload_by(svc->alerts, who, write_done, w));
}

/* "no rule 'x' (rules: a, b, c)" into details, the words of NOT_FOUND (as ExplainCircuit's).
 * The list ends in ", ..." past UNKNOWN_RULE_LIST_MAX bytes, so that the whole line, hint
 * and closing parenthesis, reaches the CLI (which keeps 511 bytes of details). */
#define UNKNOWN_RULE_LIST_MAX 384
static void unknown_rule(const struct alerts_rules *rules, const char *name, char *details, size_t dsz)
{
	size_t o = (size_t)errq_snprintf(details, dsz, "no rule '%.64s'", name);
	const struct ruleset *rs = rules ? rules->rs : NULL;
	if (!rs || !rs->n_rules) {
		if (o < dsz)
			errq_snprintf(details + o, dsz - o, " (no rules are loaded)");
		return;
	}
	for (size_t i = 0; i < rs->n_rules && o < dsz; i++) {
		if (i && o + 2 + strlen(rs->rules[i].name) > UNKNOWN_RULE_LIST_MAX) {
			o += (size_t)errq_snprintf(details + o, dsz - o, ", ...");
			break;
		}
		o += (size_t)errq_snprintf(details + o, dsz - o, "%s%s", i ? ", " : " (rules: ", rs->rules[i].name);
	}
	if (o + 1 < dsz)
		errq_snprintf(details + o, dsz - o, ")");
}

void svc_alerts__add_silence(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct alerts_svc *svc = ctx;
	const struct alerts_rules *rules = NULL;
	char details[ALERTS_SVC_DETAILS_MAX], err[512];
	struct write_call *w = NULL;
	Errq__V1__AddSilenceRequest *in =
	    errq__v1__add_silence_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	const uint64_t max_ms = ALERTS_SVC_SILENCE_MAX_NS / 1000000, min_ms = ALERTS_SVC_SILENCE_MIN_NS / 1000000;
	if (!in) {
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, "cannot decode AddSilenceRequest", NULL);
		return;
	}
	if (!svc->alerts) {
		transport_unary_reply(uc, GRPC_STATUS_FAILED_PRECONDITION,
				      "alerting is not configured on this collector (no rules engine)", NULL);
		goto out;
	}
	details[0] = '\0';
	if (!in->rule[0])
		errq_snprintf(details, sizeof(details), "rule is empty");
	else if (in->duration_ms < min_ms || in->duration_ms > max_ms)
		errq_snprintf(details, sizeof(details), "duration %llums is out of range: 1s to 90d",
			      (unsigned long long)in->duration_ms);
	else if (strlen(in->matchers) >= sizeof(w->req.matchers))
		errq_snprintf(details, sizeof(details), "matchers are longer than %zu bytes",
			      sizeof(w->req.matchers) - 1);
	else if (strlen(in->comment) >= sizeof(w->req.comment))
		errq_snprintf(details, sizeof(details), "comment is longer than %zu bytes", sizeof(w->req.comment) - 1);
	else if (strlen(in->created_by) >= sizeof(w->req.created_by))
		errq_snprintf(details, sizeof(details), "created_by is longer than %zu bytes",
			      sizeof(w->req.created_by) - 1);
	if (details[0]) {
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, details, NULL);
		goto out;
	}
	rules = svc_alerts__rules_get(svc);
	const struct rule *rule = svc_alerts__rule_named(rules, in->rule);
	if (!rule) {
		unknown_rule(rules, in->rule, details, sizeof(details));
		transport_unary_reply(uc, GRPC_STATUS_NOT_FOUND, details, NULL);
		goto out;
	}
	if (alerts_matchers_check(rule, in->matchers, err, sizeof(err))) {
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, err, NULL);
		goto out;
	}
	if (!(w = write_new(svc, uc, W_SILENCE_ADD)))
		goto out;
	errq_snprintf(w->req.rule, sizeof(w->req.rule), "%s", rule->name);
	errq_snprintf(w->req.matchers, sizeof(w->req.matchers), "%s", in->matchers);
	errq_snprintf(w->req.comment, sizeof(w->req.comment), "%s", in->comment);
	errq_snprintf(w->req.created_by, sizeof(w->req.created_by), "%s", in->created_by);
	w->req.duration_ns = in->duration_ms * 1000000;
	svc_alerts__rules_put(svc, rules);
	rules = NULL;
	write_refused(w, alerts_silence_add(svc->alerts, &w->req, write_done, w)); /* w is gone after this */
out:
	svc_alerts__rules_put(svc, rules);
	errq__v1__add_silence_request__free_unpacked(in, NULL);
}

void svc_alerts__expire_silence(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct alerts_svc *svc = ctx;
	Errq__V1__ExpireSilenceRequest *in =
	    errq__v1__expire_silence_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	if (!in || !in->id || in->id > INT64_MAX) {
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT,
				      in ? "id must be a silence id (1 or more)" : "cannot decode ExpireSilenceRequest",
				      NULL);
		goto out;
	}
	struct write_call *w = write_new(svc, uc, W_SILENCE_EXPIRE);
	if (!w)
		goto out;
	w->id = (int64_t)in->id;
	write_refused(w, alerts_silence_expire(svc->alerts, w->id, write_done, w));
out:
	if (in)
		errq__v1__expire_silence_request__free_unpacked(in, NULL);
}
