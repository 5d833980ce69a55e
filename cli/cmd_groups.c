/* cmd_groups.c: `errq groups`: error groups, most recently seen first (Query.ListGroups). */
#include "cli.h"

#include <string.h>

#include "errq/v1/query.pb-c.h"
#include "errq_banned.h"

enum {
	C_FP,
	C_SERVICE,
	C_ENV,
	C_TYPE,
	C_CODE,
	C_COUNT,
	C_TOTAL,
	C_FIRST,
	C_LAST,
	C_STATUS,
	C_MESSAGE,
	NCOLS
};

/* COUNT is the window's count: without --since it equals TOTAL, and its cells stay empty so
 * the column goes away.  Text columns are cut (the widest first); ids, counts and times
 * never.  On a narrow terminal status, environment, code and first seen go, in that order:
 * "is it new?" is worth keeping longest. */
static const struct cli_col cols[NCOLS] = {
    [C_FP] = {"FINGERPRINT", 0, 1, 16, 0},
    [C_SERVICE] = {"SERVICE", 0, 2, 10, 0},
    [C_ENV] = {"ENV", CLI_COL_HIDE_EMPTY, 2, 6, 3},
    [C_TYPE] = {"TYPE", 0, 2, 12, 0},
    [C_CODE] = {"CODE", CLI_COL_HIDE_EMPTY, 2, 8, 2},
    [C_COUNT] = {"COUNT", CLI_COL_RIGHT | CLI_COL_HIDE_EMPTY, 0, 0, 0},
    [C_TOTAL] = {"TOTAL", CLI_COL_RIGHT, 0, 0, 0},
    [C_FIRST] = {"FIRST SEEN", 0, 0, 0, 1},
    [C_LAST] = {"LAST SEEN", 0, 0, 0, 0},
    [C_STATUS] = {"STATUS", CLI_COL_HIDE_EMPTY, 0, 0, 4},
    [C_MESSAGE] = {"MESSAGE", 0, 4, 24, 0},
};

static json_t *group_json(const struct cli_ctx *ctx, const ProtobufCMessage *row)
{
	const Errq__V1__Group *g = (const Errq__V1__Group *)row;
	bool ok = true;
	json_t *o = json_object();
	if (!o)
		return NULL;
	cli_json_put(o, "fingerprint", cli_json_str(g->fingerprint), &ok);
	cli_json_put(o, "service", cli_json_str(g->service), &ok);
	cli_json_put(o, "environment", cli_json_str(g->environment), &ok);
	cli_json_put(o, "error_type", cli_json_str(g->error_type), &ok);
	cli_json_put(o, "error_code", cli_json_str(g->error_code), &ok);
	cli_json_put(o, "message", cli_json_str(g->message), &ok);
	cli_json_put(o, "count", cli_json_uint(g->count), &ok);
	cli_json_put(o, "total", cli_json_uint(g->total), &ok);
	cli_json_put(o, "first_seen", cli_json_time(g->first_seen_unix_nano), &ok);
	cli_json_put(o, "last_seen", cli_json_time(g->last_seen_unix_nano), &ok);
	cli_json_put(o, "status", cli_json_str(g->status), &ok);
	if (!ok) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static unsigned char status_style(const char *s)
{
	if (!strcmp(s, "unresolved"))
		return CLI_STYLE_RED;
	if (!strcmp(s, "resolved"))
		return CLI_STYLE_GREEN;
	if (!strcmp(s, "ignored"))
		return CLI_STYLE_DIM;
	return CLI_STYLE_NONE;
}

static void group_cells(const struct cli_ctx *ctx, const ProtobufCMessage *row, struct cli_cells *c)
{
	const Errq__V1__Group *g = (const Errq__V1__Group *)row;
	c->text[C_FP] = g->fingerprint;
	c->text[C_SERVICE] = g->service;
	c->text[C_ENV] = g->environment;
	c->text[C_TYPE] = g->error_type;
	c->text[C_CODE] = g->error_code;
	if (ctx->args->since_ns)
		cli_cell_uint(c, C_COUNT, g->count);
	cli_cell_uint(c, C_TOTAL, g->total);
	cli_cell_ago(ctx, c, C_FIRST, g->first_seen_unix_nano);
	cli_cell_ago(ctx, c, C_LAST, g->last_seen_unix_nano);
	c->style[C_FIRST] = CLI_STYLE_DIM;
	c->text[C_STATUS] = g->status;
	c->style[C_STATUS] = status_style(g->status);
	c->text[C_MESSAGE] = g->message;
}

static const struct cli_view view = {
    .noun = "groups",
    .cols = cols,
    .ncols = NCOLS,
    .to_json = group_json,
    .to_cells = group_cells,
};

int cli_cmd_groups(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__ListGroupsRequest req = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	struct cli_rows rows;
	cli_rows_init(&rows);
	req.service = (char *)a->service;
	req.since_unix_nano = a->since_ns;

	int rc = cli_list(ctx, "/errq.v1.Query/ListGroups", &req.base, &errq__v1__list_groups_response__descriptor,
			  "groups", a->limit, &rows);
	if (!rc)
		rc = cli_print_rows(ctx, &view, &rows);
	cli_rows_release(&rows);
	return rc;
}
