/* cmd_alerts.c: the alerting state of the collector (errq.v1.Alerts): `errq circuits`
 * (ListCircuits), `errq explain-circuit RULE KEY` (ExplainCircuit: a circuit now and its
 * transitions), `errq alerts` (ListAlerts), `errq alert ID` (GetAlert: one alert with every
 * delivery) and `errq alerts replay ID` (ReplayAlert: dead deliveries sent again). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "errq/v1/alerts.pb-c.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define CLI_KEY_ARG_MAX 8191       /* bytes of a key on the command line */
#define CLI_ALERT_RESOLVE_MAX 10000 /* alerts searched for a short id, newest first */
#define CLI_DELIVERY_CELL 512      /* bytes of a DELIVERY cell */

void cli_json_key(json_t *o, const char *name, const char *key, bool *ok)
{
	char text[64];
	cli_json_put(o, name, cli_key_json(key), ok);
	errq_snprintf(text, sizeof(text), "%s_text", name);
	cli_json_put(o, text, cli_json_str(key), ok);
}

void cli_rows_borrow(struct cli_rows *r, ProtobufCMessage *const *rows, size_t n)
{
	cli_rows_init(r);
	r->rows = (const ProtobufCMessage **)rows;
	r->nrows = n;
}

static const char *state_name(Errq__V1__CircuitState s)
{
	switch (s) {
	case ERRQ__V1__CIRCUIT_STATE__CIRCUIT_OPEN:
		return "open";
	case ERRQ__V1__CIRCUIT_STATE__CIRCUIT_HALF_OPEN:
		return "half_open";
	default:
		return "closed";
	}
}

static unsigned char state_style(Errq__V1__CircuitState s)
{
	return s == ERRQ__V1__CIRCUIT_STATE__CIRCUIT_OPEN        ? CLI_STYLE_RED
	       : s == ERRQ__V1__CIRCUIT_STATE__CIRCUIT_HALF_OPEN ? CLI_STYLE_YELLOW
								 : CLI_STYLE_GREEN;
}

static json_t *id_or_null(ProtobufCBinaryData b)
{
	return b.len ? cli_json_hex(b) : json_null();
}

/* ---- errq circuits ---- */

enum { CC_RULE, CC_KEY, CC_STATE, CC_SINCE, CC_FAILURES, CC_NEXT, CC_NCOLS };

/* The key is cut first, then the rule; states, times and counts never. */
static const struct cli_col circuit_cols[CC_NCOLS] = {
    [CC_RULE] = {"RULE", 0, 1, 12, 0},
    [CC_KEY] = {"KEY", 0, 2, 16, 0},
    [CC_STATE] = {"STATE", 0, 0, 0, 0},
    [CC_SINCE] = {"SINCE", 0, 0, 0, 0},
    [CC_FAILURES] = {"FAILURES", CLI_COL_RIGHT, 0, 0, 0},
    [CC_NEXT] = {"NEXT", 0, 0, 0, 0},
};

static json_t *circuit_json(const struct cli_ctx *ctx, const ProtobufCMessage *row)
{
	const Errq__V1__Circuit *c = (const Errq__V1__Circuit *)row;
	bool ok = true;
	json_t *o = json_object();
	if (!o)
		return NULL;
	cli_json_put(o, "rule", cli_json_str(c->rule), &ok);
	cli_json_key(o, "key", c->key, &ok);
	cli_json_put(o, "state", json_string(state_name(c->state)), &ok);
	cli_json_put(o, "since", cli_json_time(c->since_unix_nano), &ok);
	cli_json_put(o, "failures_in_window", cli_json_uint(c->failures_in_window), &ok);
	cli_json_put(o, "next_transition_at", cli_json_time(c->next_transition_unix_nano), &ok);
	cli_json_put(o, "window_seconds", cli_json_uint(c->window_seconds), &ok);
	/* beyond DESIGN.md's row: additions only */
	cli_json_put(o, "alert_id", id_or_null(c->alert_id), &ok);
	cli_json_put(o, "calls_ok", cli_json_uint(c->calls_ok), &ok);
	cli_json_put(o, "calls_failed", cli_json_uint(c->calls_failed), &ok);
	cli_json_put(o, "stale", json_boolean(c->stale), &ok);
	return cli_json_done(o, ok);
}

static void circuit_cells(const struct cli_ctx *ctx, const struct cli_view *v, size_t index,
			  const ProtobufCMessage *row, struct cli_cells *c)
{
	const Errq__V1__Circuit *ci = (const Errq__V1__Circuit *)row;
	c->text[CC_RULE] = ci->rule;
	c->text[CC_KEY] = ci->key;
	errq_snprintf(c->buf[CC_STATE], sizeof(c->buf[CC_STATE]), "%s%s", state_name(ci->state),
		      ci->stale ? " (stale)" : "");
	c->text[CC_STATE] = c->buf[CC_STATE];
	c->style[CC_STATE] = ci->stale ? CLI_STYLE_DIM : state_style(ci->state);
	cli_cell_ago(ctx, c, CC_SINCE, ci->since_unix_nano);
	c->style[CC_SINCE] = CLI_STYLE_DIM;
	if (ci->window_seconds)
		errq_snprintf(c->buf[CC_FAILURES], sizeof(c->buf[CC_FAILURES]), "%llu in %us",
			      (unsigned long long)ci->failures_in_window, ci->window_seconds);
	else
		errq_snprintf(c->buf[CC_FAILURES], sizeof(c->buf[CC_FAILURES]), "%llu",
			      (unsigned long long)ci->failures_in_window);
	c->text[CC_FAILURES] = c->buf[CC_FAILURES];
	c->text[CC_NEXT] = cli_fmt_until(c->buf[CC_NEXT], sizeof(c->buf[CC_NEXT]), ctx->now_ns,
					 ci->next_transition_unix_nano);
}

int cli_cmd_circuits(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__ListCircuitsRequest req = ERRQ__V1__LIST_CIRCUITS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct cli_rows rows;
	struct cli_view view = {
	    .noun = "circuits",
	    .cols = circuit_cols,
	    .ncols = CC_NCOLS,
	    .to_json = circuit_json,
	    .to_cells = circuit_cells,
	};
	req.rule = (char *)a->rule;
	req.state = (char *)a->state;
	int rc = cli_call(ctx, "/errq.v1.Alerts/ListCircuits", &req.base, &errq__v1__list_circuits_response__descriptor,
			  &resp);
	if (rc)
		return rc;
	const Errq__V1__ListCircuitsResponse *r = (const Errq__V1__ListCircuitsResponse *)resp;
	cli_rows_borrow(&rows, (ProtobufCMessage *const *)r->circuits, r->n_circuits);
	rc = cli_print_rows(ctx, &view, &rows);
	if (!rc && r->truncated)
		cli_error("the collector listed the first %zu circuits only: narrow with --rule or --state",
			  r->n_circuits);
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* ---- errq explain-circuit RULE KEY ---- */

static json_t *transition_json(const Errq__V1__Transition *t)
{
	bool ok = true;
	json_t *o = json_object();
	if (!o)
		return NULL;
	cli_json_put(o, "at", cli_json_time(t->at_unix_nano), &ok);
	cli_json_put(o, "from", json_string(state_name(t->from)), &ok);
	cli_json_put(o, "to", json_string(state_name(t->to)), &ok);
	cli_json_put(o, "reason", cli_json_str(t->reason), &ok);
	cli_json_put(o, "failures_in_window", cli_json_uint(t->failures_in_window), &ok);
	cli_json_put(o, "window_seconds", cli_json_uint(t->window_seconds), &ok);
	cli_json_put(o, "next_transition_at", cli_json_time(t->next_transition_unix_nano), &ok);
	cli_json_put(o, "alert_id", id_or_null(t->alert_id), &ok);
	return cli_json_done(o, ok);
}

static json_t *explain_json(const struct cli_ctx *ctx, const char *rule, const Errq__V1__ExplainCircuitResponse *r)
{
	bool ok = true;
	json_t *o = json_object(), *ts = json_array();
	if (!o || !ts) {
		ok = false;
		goto out;
	}
	for (size_t k = 0; k < r->n_transitions; k++)
		if (json_array_append_new(ts, transition_json(r->transitions[k])))
			ok = false;
	cli_json_put(o, "rule", cli_json_str(rule), &ok);
	cli_json_key(o, "key", r->canonical_key, &ok);
	cli_json_put(o, "circuit", r->circuit ? circuit_json(ctx, &r->circuit->base) : json_null(), &ok);
	cli_json_put(o, "transitions", ts, &ok);
	ts = NULL;
out:
	json_decref(ts);
	return cli_json_done(o, ok);
}

static void explain_detail(const struct cli_ctx *ctx, struct cli_detail *d, const char *rule,
			   const Errq__V1__ExplainCircuitResponse *r)
{
	const Errq__V1__Circuit *c = r->circuit;
	char when[ERRQ_RFC3339_BUFSZ + 64], until[48], ts[ERRQ_RFC3339_BUFSZ], hex[2 * CLI_ALERT_ID_LEN + 1];
	struct errq_buf b;
	errq_buf_init(&b, CLI_DETAIL_VALUE_MAX);
	cli_detail_field(d, "rule", rule, CLI_STYLE_BOLD);
	cli_detail_field(d, "key", *r->canonical_key ? r->canonical_key : "(empty: the rule has no group_by)",
			 CLI_STYLE_NONE);
	if (!c) {
		cli_detail_field(d, "state", "closed (no circuit stored for this key)", CLI_STYLE_GREEN);
	} else {
		cli_detail_fieldf(d, "state", state_style(c->state), "%s since %s", state_name(c->state),
				  cli_fmt_when(ctx, when, sizeof(when), c->since_unix_nano));
		if (c->window_seconds)
			cli_detail_fieldf(d, "failures", CLI_STYLE_NONE, "%llu in the last %us",
					  (unsigned long long)c->failures_in_window, c->window_seconds);
		else
			cli_detail_fieldf(d, "failures", CLI_STYLE_NONE, "%llu",
					  (unsigned long long)c->failures_in_window);
		if (c->calls_ok || c->calls_failed)
			cli_detail_fieldf(d, "calls", CLI_STYLE_NONE, "%llu failed of %llu in the window",
					  (unsigned long long)c->calls_failed,
					  (unsigned long long)(c->calls_ok + c->calls_failed));
		uint64_t next = c->next_transition_unix_nano;
		bool probing = c->state == ERRQ__V1__CIRCUIT_STATE__CIRCUIT_HALF_OPEN;
		if (next)
			cli_detail_fieldf(d, "next", CLI_STYLE_NONE, "%s %s (%s)", probing ? "the probe ends" : "half_open",
					  cli_fmt_until(until, sizeof(until), ctx->now_ns, next),
					  errq_fmt_rfc3339(ts, next));
		if (c->alert_id.len) {
			size_t n = c->alert_id.len < CLI_ALERT_ID_LEN ? c->alert_id.len : CLI_ALERT_ID_LEN;
			errq_hex_encode(c->alert_id.data, n, hex);
			cli_detail_field(d, "alert", hex, CLI_STYLE_NONE);
		}
		if (c->stale)
			cli_detail_field(d, "stale", "yes: its rule was changed or removed since (kept until resolved)",
					 CLI_STYLE_YELLOW);
	}
	cli_detail_section(d, "transitions (oldest first)");
	if (!r->n_transitions)
		cli_detail_text(d, "none", CLI_STYLE_DIM);
	for (size_t k = 0; k < r->n_transitions; k++) {
		const Errq__V1__Transition *t = r->transitions[k];
		errq_buf_reset(&b);
		int e = errq_buf_printf(&b, "%s  ", errq_fmt_rfc3339(ts, t->at_unix_nano));
		if (t->from == t->to)
			e |= errq_buf_printf(&b, "%s (reminder)", state_name(t->to));
		else
			e |= errq_buf_printf(&b, "%s -> %s", state_name(t->from), state_name(t->to));
		e |= errq_buf_printf(&b, ": %s (window %llu/%us", t->reason, (unsigned long long)t->failures_in_window,
				     t->window_seconds);
		if (t->next_transition_unix_nano)
			e |= errq_buf_printf(&b, "; next change %s",
					     errq_fmt_rfc3339(ts, t->next_transition_unix_nano));
		e |= errq_buf_addstr(&b, ")");
		if (e)
			d->failed = true;
		else
			cli_detail_text(d, b.p, t->to == ERRQ__V1__CIRCUIT_STATE__CIRCUIT_OPEN && t->from != t->to
						    ? CLI_STYLE_RED
						    : CLI_STYLE_NONE);
	}
	errq_buf_free(&b);
}

int cli_cmd_explain_circuit(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__ExplainCircuitRequest req = ERRQ__V1__EXPLAIN_CIRCUIT_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct cli_detail d;
	const char *rule = a->argv[0], *key = a->argc > 1 ? a->argv[1] : "";
	if (cli_rule_name_valid(rule)) {
		cli_error("invalid rule name '%s' (expected one as 'errq rules list' shows)", rule);
		return CLI_EXIT_USAGE;
	}
	if (strlen(key) > CLI_KEY_ARG_MAX) {
		cli_error("the key is longer than %d bytes", CLI_KEY_ARG_MAX);
		return CLI_EXIT_USAGE;
	}
	req.rule = (char *)rule;
	req.key = (char *)key;
	errq_snprintf(ctx->what, sizeof(ctx->what), "rule '%s'", rule);
	if (a->set & CLI_F_LIMIT)
		req.limit = a->limit;
	int rc = cli_call(ctx, "/errq.v1.Alerts/ExplainCircuit", &req.base,
			  &errq__v1__explain_circuit_response__descriptor, &resp);
	if (rc)
		return rc;
	const Errq__V1__ExplainCircuitResponse *r = (const Errq__V1__ExplainCircuitResponse *)resp;
	if (a->output != CLI_OUT_TABLE) {
		rc = cli_print_json(ctx, explain_json(ctx, rule, r));
	} else {
		cli_detail_init(&d);
		explain_detail(ctx, &d, rule, r);
		rc = cli_print_detail(ctx, &d);
		cli_detail_release(&d);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* ---- errq alerts, errq alert ID ---- */

static json_t *delivery_json(const Errq__V1__Delivery *d)
{
	bool ok = true;
	json_t *o = json_object();
	if (!o)
		return NULL;
	cli_json_put(o, "notifier", cli_json_str(d->notifier), &ok);
	cli_json_put(o, "status", cli_json_str(d->status), &ok);
	cli_json_put(o, "attempts", cli_json_uint(d->attempts), &ok);
	/* beyond DESIGN.md's row: additions only */
	cli_json_put(o, "kind", cli_json_str(d->kind), &ok);
	cli_json_put(o, "seq", cli_json_uint(d->seq), &ok);
	cli_json_put(o, "http_status", d->http_status ? json_integer(d->http_status) : json_null(), &ok);
	cli_json_put(o, "last_error", *d->last_error ? cli_json_str(d->last_error) : json_null(), &ok);
	cli_json_put(o, "next_attempt_at", cli_json_time(d->next_attempt_unix_nano), &ok);
	cli_json_put(o, "updated_at", cli_json_time(d->updated_unix_nano), &ok);
	return cli_json_done(o, ok);
}

static json_t *alert_json(const struct cli_ctx *ctx, const ProtobufCMessage *row)
{
	const Errq__V1__Alert *al = (const Errq__V1__Alert *)row;
	bool ok = true;
	json_t *o = json_object(), *dl = json_array(), *sample = NULL;
	if (!o || !dl) {
		ok = false;
		goto out;
	}
	for (size_t k = 0; k < al->n_delivery; k++)
		if (json_array_append_new(dl, delivery_json(al->delivery[k])))
			ok = false;
	if (*al->sample_json && !(sample = json_loads(al->sample_json, JSON_DECODE_ANY, NULL)))
		sample = cli_json_str(al->sample_json); /* not JSON after all: as text */
	cli_json_put(o, "alert_id", cli_json_hex(al->alert_id), &ok);
	cli_json_put(o, "rule", cli_json_str(al->rule), &ok);
	cli_json_key(o, "key", al->key, &ok);
	cli_json_put(o, "status", cli_json_str(al->status), &ok);
	cli_json_put(o, "severity", cli_json_str(al->severity), &ok);
	cli_json_put(o, "opened_at", cli_json_time(al->opened_unix_nano), &ok);
	cli_json_put(o, "resolved_at", cli_json_time(al->resolved_unix_nano), &ok);
	cli_json_put(o, "delivery", dl, &ok);
	dl = NULL;
	/* beyond DESIGN.md's row: additions only */
	cli_json_put(o, "silenced", json_boolean(al->silenced), &ok);
	cli_json_put(o, "state", json_string(state_name(al->state)), &ok);
	cli_json_put(o, "failures_in_window", cli_json_uint(al->failures_in_window), &ok);
	cli_json_put(o, "window_seconds", cli_json_uint(al->window_seconds), &ok);
	cli_json_put(o, "resolve_reason", *al->resolve_reason ? cli_json_str(al->resolve_reason) : json_null(), &ok);
	cli_json_put(o, "sample", sample ? sample : json_null(), &ok);
out:
	json_decref(dl);
	return cli_json_done(o, ok);
}

enum { CA_ID, CA_RULE, CA_KEY, CA_STATUS, CA_SEVERITY, CA_OPENED, CA_RESOLVED, CA_DELIVERY, CA_NCOLS };

/* The key is cut first, then the deliveries and the rule; on a narrow terminal the
 * severity and the resolution time go. */
static const struct cli_col alert_cols[CA_NCOLS] = {
    [CA_ID] = {"ALERT", 0, 0, 0, 0},
    [CA_RULE] = {"RULE", 0, 1, 12, 0},
    [CA_KEY] = {"KEY", 0, 3, 16, 0},
    [CA_STATUS] = {"STATUS", 0, 0, 0, 0},
    [CA_SEVERITY] = {"SEVERITY", 0, 0, 0, 2},
    [CA_OPENED] = {"OPENED", 0, 0, 0, 0},
    [CA_RESOLVED] = {"RESOLVED", 0, 0, 0, 1},
    [CA_DELIVERY] = {"DELIVERY", CLI_COL_HIDE_EMPTY, 2, 16, 0},
};

static unsigned char severity_style(const char *s)
{
	return !strcmp(s, "critical") || !strcmp(s, "error") ? CLI_STYLE_RED
	       : !strcmp(s, "warning")                       ? CLI_STYLE_YELLOW
							     : CLI_STYLE_NONE;
}

static const char *alert_status_text(const Errq__V1__Alert *al, char *buf, size_t n)
{
	errq_snprintf(buf, n, "%s%s", al->status, al->silenced ? " (silenced)" : "");
	return buf;
}

static void alert_cells(const struct cli_ctx *ctx, const struct cli_view *v, size_t index,
			const ProtobufCMessage *row, struct cli_cells *c)
{
	const Errq__V1__Alert *al = (const Errq__V1__Alert *)row;
	const char(*deliveries)[CLI_DELIVERY_CELL] = v->data;
	c->text[CA_ID] = cli_alert_short_id(c->buf[CA_ID], sizeof(c->buf[CA_ID]), al->alert_id.data, al->alert_id.len);
	c->style[CA_ID] = CLI_STYLE_DIM;
	c->text[CA_RULE] = al->rule;
	c->text[CA_KEY] = al->key;
	c->text[CA_STATUS] = alert_status_text(al, c->buf[CA_STATUS], sizeof(c->buf[CA_STATUS]));
	c->style[CA_STATUS] = al->silenced ? CLI_STYLE_DIM : !strcmp(al->status, "firing") ? CLI_STYLE_RED
											     : CLI_STYLE_GREEN;
	c->text[CA_SEVERITY] = al->severity;
	c->style[CA_SEVERITY] = severity_style(al->severity);
	cli_cell_ago(ctx, c, CA_OPENED, al->opened_unix_nano);
	cli_cell_ago(ctx, c, CA_RESOLVED, al->resolved_unix_nano);
	if (deliveries)
		c->text[CA_DELIVERY] = deliveries[index];
}

/* The DELIVERY cells of the rows (NULL when out of memory: the column stays empty). */
static char (*delivery_cells(const struct cli_rows *rows))[CLI_DELIVERY_CELL]
{
	char(*cells)[CLI_DELIVERY_CELL] = calloc(rows->nrows ? rows->nrows : 1, sizeof(*cells));
	struct errq_buf b;
	if (!cells)
		return NULL;
	for (size_t k = 0; k < rows->nrows; k++) {
		const Errq__V1__Alert *al = (const Errq__V1__Alert *)rows->rows[k];
		errq_buf_init_fixed(&b, cells[k], CLI_DELIVERY_CELL);
		for (size_t i = 0; i < al->n_delivery; i++) {
			const Errq__V1__Delivery *dl = al->delivery[i];
			if (cli_fmt_delivery(&b, dl->notifier, dl->status, dl->attempts))
				break;
		}
	}
	return cells;
}

int cli_cmd_alerts(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__ListAlertsRequest req = ERRQ__V1__LIST_ALERTS_REQUEST__INIT;
	struct cli_rows rows;
	char(*deliveries)[CLI_DELIVERY_CELL] = NULL;
	struct cli_view view = {
	    .noun = "alerts",
	    .cols = alert_cols,
	    .ncols = CA_NCOLS,
	    .to_json = alert_json,
	    .to_cells = alert_cells,
	};
	cli_rows_init(&rows);
	req.status = (char *)a->status;
	req.rule = (char *)a->rule;
	req.since_unix_nano = a->since_ns;
	int rc = cli_list(ctx, "/errq.v1.Alerts/ListAlerts", &req.base, &errq__v1__list_alerts_response__descriptor,
			  "alerts", a->limit, &rows);
	if (rc)
		goto out;
	if (a->output == CLI_OUT_TABLE)
		view.data = deliveries = delivery_cells(&rows);
	rc = cli_print_rows(ctx, &view, &rows);
out:
	free(deliveries);
	cli_rows_release(&rows);
	return rc;
}

/* The alert id of argv[0]: a full id, or the short id errq shows (its last hex digits),
 * looked up among the newest CLI_ALERT_RESOLVE_MAX alerts.  0 or an exit code. */
static int alert_id_arg(struct cli_ctx *ctx, uint8_t id[CLI_ALERT_ID_LEN])
{
	const char *s = ctx->args->argv[0];
	char suffix[2 * CLI_ALERT_ID_LEN + 1], hex[2 * CLI_ALERT_ID_LEN + 1];
	int kind = cli_alert_id_parse(s, id, suffix, sizeof(suffix));
	if (kind < 0) {
		cli_error("invalid alert id '%s' (expected 32 hex digits, or the short id 'errq alerts' shows)", s);
		return CLI_EXIT_USAGE;
	}
	if (kind == 1) {
		errq_hex_encode(id, CLI_ALERT_ID_LEN, hex);
		errq_snprintf(ctx->what, sizeof(ctx->what), "alert %s", hex);
		return 0;
	}
	Errq__V1__ListAlertsRequest req = ERRQ__V1__LIST_ALERTS_REQUEST__INIT;
	struct cli_rows rows;
	size_t found = 0, sl = strlen(suffix);
	cli_rows_init(&rows);
	int rc = cli_list(ctx, "/errq.v1.Alerts/ListAlerts", &req.base, &errq__v1__list_alerts_response__descriptor,
			  "alerts", CLI_ALERT_RESOLVE_MAX, &rows);
	for (size_t k = 0; !rc && k < rows.nrows; k++) {
		const Errq__V1__Alert *al = (const Errq__V1__Alert *)rows.rows[k];
		if (al->alert_id.len != CLI_ALERT_ID_LEN)
			continue;
		errq_hex_encode(al->alert_id.data, CLI_ALERT_ID_LEN, hex);
		if (!strcmp(hex + 2 * CLI_ALERT_ID_LEN - sl, suffix)) {
			if (!found++)
				memcpy(id, al->alert_id.data, CLI_ALERT_ID_LEN);
		}
	}
	if (!rc && !found) {
		cli_error("alert '%s' not found at collector %s (no alert id ends with it among the newest %zu%s)",
			  suffix, ctx->args->addr, rows.nrows, rows.nrows == 1 ? " alert" : " alerts");
		rc = CLI_EXIT_NOT_FOUND;
	} else if (!rc && found > 1) {
		cli_error("%zu alert ids end with '%s': give more of the id", found, suffix);
		rc = CLI_EXIT_USAGE;
	}
	cli_rows_release(&rows);
	if (!rc) {
		errq_hex_encode(id, CLI_ALERT_ID_LEN, hex);
		errq_snprintf(ctx->what, sizeof(ctx->what), "alert %s", hex);
	}
	return rc;
}

static void alert_detail(const struct cli_ctx *ctx, struct cli_detail *d, const Errq__V1__Alert *al)
{
	char when[ERRQ_RFC3339_BUFSZ + 64], hex[2 * CLI_ALERT_ID_LEN + 1], st[64], nf[48];
	struct errq_buf b;
	errq_buf_init(&b, CLI_DETAIL_VALUE_MAX);
	errq_hex_encode(al->alert_id.data, al->alert_id.len < CLI_ALERT_ID_LEN ? al->alert_id.len : CLI_ALERT_ID_LEN,
			hex);
	cli_detail_field(d, "alert", hex, CLI_STYLE_BOLD);
	cli_detail_field(d, "rule", al->rule, CLI_STYLE_NONE);
	cli_detail_field(d, "key", *al->key ? al->key : "(empty: the rule has no group_by)", CLI_STYLE_NONE);
	cli_detail_field(d, "status", alert_status_text(al, st, sizeof(st)),
			 !strcmp(al->status, "firing") ? CLI_STYLE_RED : CLI_STYLE_GREEN);
	cli_detail_field(d, "severity", al->severity, severity_style(al->severity));
	cli_detail_field(d, "opened", cli_fmt_when(ctx, when, sizeof(when), al->opened_unix_nano), CLI_STYLE_NONE);
	if (al->resolved_unix_nano)
		cli_detail_fieldf(d, "resolved", CLI_STYLE_NONE, "%s%s%s",
				  cli_fmt_when(ctx, when, sizeof(when), al->resolved_unix_nano),
				  *al->resolve_reason ? ": " : "", al->resolve_reason);
	cli_detail_field(d, "circuit", state_name(al->state), state_style(al->state));
	if (al->window_seconds)
		cli_detail_fieldf(d, "fired on", CLI_STYLE_NONE, "%s in %us",
				  cli_count(nf, sizeof(nf), al->failures_in_window, "failure", "failures"),
				  al->window_seconds);
	cli_detail_section(d, "deliveries (oldest first)");
	if (!al->n_delivery)
		cli_detail_text(d, "none (the rule notifies no one, or nothing was sent yet)", CLI_STYLE_DIM);
	for (size_t k = 0; k < al->n_delivery; k++) {
		const Errq__V1__Delivery *dl = al->delivery[k];
		errq_buf_reset(&b);
		int e = errq_buf_printf(&b, "%s #%u to %s: %s after %u attempt%s", dl->kind, dl->seq, dl->notifier,
					dl->status, dl->attempts, dl->attempts == 1 ? "" : "s");
		if (dl->http_status)
			e |= errq_buf_printf(&b, ", HTTP %d", dl->http_status);
		if (*dl->last_error)
			e |= errq_buf_printf(&b, ": %s", dl->last_error);
		if (!strcmp(dl->status, "pending") && dl->next_attempt_unix_nano)
			e |= errq_buf_printf(&b, "; next attempt %s",
					     cli_fmt_until(when, sizeof(when), ctx->now_ns,
							   dl->next_attempt_unix_nano));
		if (dl->updated_unix_nano)
			e |= errq_buf_printf(&b, " (%s)",
					     cli_fmt_ago(when, sizeof(when), ctx->now_ns, dl->updated_unix_nano));
		if (e)
			d->failed = true;
		else
			cli_detail_text(d, b.p,
					!strcmp(dl->status, "dead") ? CLI_STYLE_RED
					: !strcmp(dl->status, "pending") ? CLI_STYLE_YELLOW
									 : CLI_STYLE_NONE);
	}
	if (*al->sample_json) {
		/* indented, a line a member; as sent when it is not JSON */
		json_t *j = json_loads(al->sample_json, JSON_DECODE_ANY, NULL);
		char *pretty = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
		cli_detail_section(d, "sample event");
		if (!pretty) {
			cli_detail_text(d, al->sample_json, CLI_STYLE_NONE);
		} else {
			for (char *line = pretty, *nl; line && *line; line = nl ? nl + 1 : NULL) {
				if ((nl = strchr(line, '\n')))
					*nl = '\0';
				cli_detail_text(d, line, CLI_STYLE_NONE);
			}
		}
		free(pretty);
		json_decref(j);
	}
	errq_buf_free(&b);
}

int cli_cmd_alert(struct cli_ctx *ctx)
{
	Errq__V1__GetAlertRequest req = ERRQ__V1__GET_ALERT_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct cli_detail d;
	uint8_t id[CLI_ALERT_ID_LEN];
	int rc = alert_id_arg(ctx, id);
	if (rc)
		return rc;
	req.alert_id.data = id;
	req.alert_id.len = CLI_ALERT_ID_LEN;
	rc = cli_call(ctx, "/errq.v1.Alerts/GetAlert", &req.base, &errq__v1__alert__descriptor, &resp);
	if (rc)
		return rc;
	if (ctx->args->output != CLI_OUT_TABLE) {
		rc = cli_print_json(ctx, alert_json(ctx, resp));
	} else {
		cli_detail_init(&d);
		alert_detail(ctx, &d, (const Errq__V1__Alert *)resp);
		rc = cli_print_detail(ctx, &d);
		cli_detail_release(&d);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* ---- errq alerts replay ID ---- */

int cli_cmd_alerts_replay(struct cli_ctx *ctx)
{
	Errq__V1__ReplayAlertRequest req = ERRQ__V1__REPLAY_ALERT_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	uint8_t id[CLI_ALERT_ID_LEN];
	char hex[2 * CLI_ALERT_ID_LEN + 1];
	int rc = alert_id_arg(ctx, id);
	if (rc)
		return rc;
	req.alert_id.data = id;
	req.alert_id.len = CLI_ALERT_ID_LEN;
	errq_hex_encode(id, CLI_ALERT_ID_LEN, hex);
	rc = cli_call(ctx, "/errq.v1.Alerts/ReplayAlert", &req.base, &errq__v1__replay_alert_response__descriptor,
		      &resp);
	if (rc)
		return rc;
	const Errq__V1__ReplayAlertResponse *r = (const Errq__V1__ReplayAlertResponse *)resp;
	if (ctx->args->output != CLI_OUT_TABLE) {
		json_t *o = json_object();
		bool ok = o != NULL;
		if (o) {
			cli_json_put(o, "alert_id", json_string(hex), &ok);
			cli_json_put(o, "replayed", cli_json_uint(r->replayed), &ok);
		}
		rc = cli_print_json(ctx, cli_json_done(o, ok));
	} else {
		struct cli_detail d;
		cli_detail_init(&d);
		struct errq_buf b;
		char line[160];
		errq_buf_init_fixed(&b, line, sizeof(line));
		if (errq_buf_printf(&b, "alert %s: %u dead deliver%s sent again", hex, r->replayed,
				    r->replayed == 1 ? "y" : "ies"))
			d.failed = true;
		else
			cli_detail_text(&d, line, CLI_STYLE_NONE);
		rc = cli_print_detail(ctx, &d);
		cli_detail_release(&d);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}
