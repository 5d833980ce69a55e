/* cmd_rules.c: the alert rules: `errq rules list` (Alerts.ListRules: the rules in force with
 * their circuits), `errq rules reload` (Alerts.ReloadRules: the collector reads its rules
 * file again) and `errq rules check FILE` (offline: the file through the collector's own
 * parser, the errq_rulefile library of rules/, linked in). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "errq/v1/alerts.pb-c.h"
#include "errq_str.h"
#include "rules.h"
#include "errq_banned.h"

/* A list cell: RULES_MAX_GROUP_BY fields or RULES_MAX_NOTIFY names, cut beyond. */
#define CLI_RULE_LIST_CELL 1024

enum { CR_NAME, CR_MATCH, CR_GROUP_BY, CR_TRIP, CR_SEVERITY, CR_NOTIFY, CR_CIRCUITS, CR_OPEN, CR_NCOLS };

/* The match is cut first, then the fields and notifiers; the severity goes first when even
 * that does not fit. */
static const struct cli_col rule_cols[CR_NCOLS] = {
    [CR_NAME] = {"NAME", 0, 0, 0, 0},
    [CR_MATCH] = {"MATCH", 0, 3, 12, 0},
    [CR_GROUP_BY] = {"GROUP BY", CLI_COL_HIDE_EMPTY, 2, 10, 0},
    [CR_TRIP] = {"TRIP", 0, 1, 16, 0},
    [CR_SEVERITY] = {"SEVERITY", 0, 0, 0, 1},
    [CR_NOTIFY] = {"NOTIFY", CLI_COL_HIDE_EMPTY, 2, 8, 0},
    [CR_CIRCUITS] = {"CIRCUITS", CLI_COL_RIGHT, 0, 0, 0},
    [CR_OPEN] = {"OPEN", CLI_COL_RIGHT, 0, 0, 0},
};

struct rule_lists {
	char group_by[CLI_RULE_LIST_CELL];
	char notify[CLI_RULE_LIST_CELL];
};

static json_t *str_array(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t k = 0; a && k < n; k++) {
		if (json_array_append_new(a, cli_json_str(v[k]))) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

static json_t *rule_json(const struct cli_ctx *ctx, const ProtobufCMessage *row)
{
	const Errq__V1__Rule *r = (const Errq__V1__Rule *)row;
	bool ok = true;
	json_t *o = json_object();
	if (!o)
		return NULL;
	cli_json_put(o, "name", cli_json_str(r->name), &ok);
	cli_json_key(o, "match", r->match, &ok);
	cli_json_put(o, "group_by", str_array(r->group_by, r->n_group_by), &ok);
	cli_json_put(o, "trip", cli_json_str(r->trip), &ok);
	cli_json_put(o, "recovery_timeout_ms", cli_json_uint(r->recovery_timeout_ms), &ok);
	cli_json_put(o, "severity", cli_json_str(r->severity), &ok);
	cli_json_put(o, "notify", str_array(r->notify, r->n_notify), &ok);
	cli_json_put(o, "max_circuits", cli_json_uint(r->max_circuits), &ok);
	cli_json_put(o, "circuits", cli_json_uint(r->circuits), &ok);
	cli_json_put(o, "open", cli_json_uint(r->open), &ok);
	cli_json_put(o, "overflow_failures", cli_json_uint(r->overflow_failures), &ok);
	cli_json_put(o, "line", cli_json_uint(r->line), &ok);
	return cli_json_done(o, ok);
}

/* "a,b,c" of v into buf (cut when it does not fit). */
static void join(char *buf, size_t n, char *const *v, size_t nv)
{
	struct errq_buf b;
	errq_buf_init_fixed(&b, buf, n);
	for (size_t k = 0; k < nv; k++)
		if ((k && errq_buf_add(&b, ",", 1)) || errq_buf_addstr(&b, v[k]))
			break;
}

static void rule_cells(const struct cli_ctx *ctx, const struct cli_view *v, size_t index, const ProtobufCMessage *row,
		       struct cli_cells *c)
{
	const Errq__V1__Rule *r = (const Errq__V1__Rule *)row;
	const struct rule_lists *lists = v->data;
	c->text[CR_NAME] = r->name;
	c->style[CR_NAME] = CLI_STYLE_BOLD;
	c->text[CR_MATCH] = *r->match ? r->match : "(every failure)";
	c->style[CR_MATCH] = *r->match ? CLI_STYLE_NONE : CLI_STYLE_DIM;
	if (lists) {
		c->text[CR_GROUP_BY] = lists[index].group_by;
		c->text[CR_NOTIFY] = lists[index].notify;
	}
	c->text[CR_TRIP] = r->trip;
	c->text[CR_SEVERITY] = r->severity;
	cli_cell_uint(c, CR_CIRCUITS, r->circuits);
	cli_cell_uint(c, CR_OPEN, r->open);
	c->style[CR_OPEN] = r->open ? CLI_STYLE_RED : CLI_STYLE_NONE;
}

int cli_cmd_rules_list(struct cli_ctx *ctx)
{
	Errq__V1__ListRulesRequest req = ERRQ__V1__LIST_RULES_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct cli_rows rows;
	struct rule_lists *lists = NULL;
	struct cli_view view = {
	    .noun = "rules",
	    .cols = rule_cols,
	    .ncols = CR_NCOLS,
	    .to_json = rule_json,
	    .to_cells = rule_cells,
	};
	int rc = cli_call(ctx, "/errq.v1.Alerts/ListRules", &req.base, &errq__v1__list_rules_response__descriptor,
			  &resp);
	if (rc)
		return rc;
	const Errq__V1__ListRulesResponse *r = (const Errq__V1__ListRulesResponse *)resp;
	cli_rows_borrow(&rows, (ProtobufCMessage *const *)r->rules, r->n_rules);
	if (ctx->args->output == CLI_OUT_TABLE && r->n_rules && (lists = calloc(r->n_rules, sizeof(*lists)))) {
		for (size_t k = 0; k < r->n_rules; k++) {
			const Errq__V1__Rule *ru = r->rules[k];
			join(lists[k].group_by, sizeof(lists[k].group_by), ru->group_by, ru->n_group_by);
			join(lists[k].notify, sizeof(lists[k].notify), ru->notify, ru->n_notify);
		}
	}
	view.data = lists;
	rc = cli_print_rows(ctx, &view, &rows);
	free(lists);
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

int cli_cmd_rules_reload(struct cli_ctx *ctx)
{
	Errq__V1__ReloadRulesRequest req = ERRQ__V1__RELOAD_RULES_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int rc = cli_call(ctx, "/errq.v1.Alerts/ReloadRules", &req.base, &errq__v1__reload_rules_response__descriptor,
			  &resp);
	if (rc)
		return rc;
	const Errq__V1__ReloadRulesResponse *r = (const Errq__V1__ReloadRulesResponse *)resp;
	if (ctx->args->output != CLI_OUT_TABLE) {
		json_t *o = json_object();
		bool ok = o != NULL;
		if (o) {
			cli_json_put(o, "rules", cli_json_uint(r->rules), &ok);
			cli_json_put(o, "notifiers", cli_json_uint(r->notifiers), &ok);
			cli_json_put(o, "kept", cli_json_uint(r->kept), &ok);
			cli_json_put(o, "changed", cli_json_uint(r->changed), &ok);
			cli_json_put(o, "removed", cli_json_uint(r->removed), &ok);
		}
		rc = cli_print_json(ctx, cli_json_done(o, ok));
	} else {
		struct cli_detail d;
		char line[256];
		cli_detail_init(&d);
		errq_snprintf(line, sizeof(line),
			      "rules reloaded: %u rule%s, %u notifier%s; %u kept their circuits, %u changed (their "
			      "circuits resolved), %u removed",
			      r->rules, r->rules == 1 ? "" : "s", r->notifiers, r->notifiers == 1 ? "" : "s", r->kept,
			      r->changed, r->removed);
		cli_detail_text(&d, line, CLI_STYLE_NONE);
		rc = cli_print_detail(ctx, &d);
		cli_detail_release(&d);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

int cli_cmd_rules_check(struct cli_ctx *ctx)
{
	const char *path = ctx->args->argv[0];
	struct ruleset *rs = NULL;
	char err[1024];
	int rc;
	if (rules_load(&rs, path, err, sizeof(err))) {
		cli_error("%s", err);
		return CLI_EXIT_USAGE;
	}
	if (ctx->args->output != CLI_OUT_TABLE) {
		json_t *o = json_object();
		bool ok = o != NULL;
		if (o) {
			cli_json_put(o, "file", cli_json_str(path), &ok);
			cli_json_put(o, "rules", cli_json_uint(rs->n_rules), &ok);
			cli_json_put(o, "notifiers", cli_json_uint(rs->n_notifiers), &ok);
			cli_json_put(o, "ok", json_true(), &ok);
		}
		rc = cli_print_json(ctx, cli_json_done(o, ok));
	} else {
		struct cli_detail d;
		struct errq_buf b;
		cli_detail_init(&d);
		errq_buf_init(&b, CLI_DETAIL_VALUE_MAX);
		if (errq_buf_printf(&b, "%s: %zu rule%s, %zu notifier%s: ok", path, rs->n_rules,
				    rs->n_rules == 1 ? "" : "s", rs->n_notifiers, rs->n_notifiers == 1 ? "" : "s"))
			d.failed = true;
		else
			cli_detail_text(&d, b.p, CLI_STYLE_NONE);
		errq_buf_free(&b);
		rc = cli_print_detail(ctx, &d);
		cli_detail_release(&d);
	}
	rules_free(rs);
	return rc;
}
