/* cmd_groups.c: `errq groups` (Query.ListGroups, with a sparkline of the last hour per row
 * on a terminal from Query.GetGroup), `errq group FP` (Query.GetGroup: the group, its
 * minute histogram, its latest event) and `errq resolve|ignore|unresolve FP`
 * (Query.SetGroupStatus). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "errq/v1/query.pb-c.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define NS_PER_MIN (60 * ERRQ_NS_PER_SEC)

/* Sparklines in `errq groups`: one GetGroup per row, for at most CLI_SPARK_ROWS rows and
 * within CLI_SPARK_BUDGET_MS all together (and --timeout); rows past that show none.  The
 * hour is drawn in CLI_SPARK_COLS columns (5 minutes each). */
#define CLI_SPARK_ROWS 100
#define CLI_SPARK_BUDGET_MS 1500
#define CLI_SPARK_MINUTES 60
#define CLI_SPARK_COLS 12
#define CLI_SPARK_CELL (3 * CLI_SPARK_COLS + 1) /* a block is 3 bytes of UTF-8 */

/* `errq group FP`: the histogram covers the --since window (default an hour), up to the
 * day the collector serves at most. */
#define CLI_HIST_DEFAULT_MINUTES 60
#define CLI_HIST_MAX_MINUTES 1440
#define CLI_HIST_MIN_COLS 10

enum {
	C_FP,
	C_SERVICE,
	C_ENV,
	C_TYPE,
	C_CODE,
	C_COUNT,
	C_TOTAL,
	C_DROPPED,
	C_SPARK,
	C_FIRST,
	C_LAST,
	C_STATUS,
	C_MESSAGE,
	NCOLS
};

/* COUNT is the window's count: without --since and --env it equals TOTAL, and its cells stay
 * empty so the column goes away.  Text columns are cut (the widest first); ids, counts and
 * times never.  On a narrow terminal code, environment, status, the sparkline and first seen
 * go, in that order: "how often lately?" and "is it new?" are worth keeping longest.  The
 * status never goes silently: it folds into the message, "(resolved) connection reset". */
static const struct cli_col cols[NCOLS] = {
    [C_FP] = {"FINGERPRINT", 0, 1, 16, 0},
    [C_SERVICE] = {"SERVICE", 0, 2, 10, 0},
    [C_ENV] = {"ENV", CLI_COL_HIDE_EMPTY, 2, 6, 4},
    [C_TYPE] = {"TYPE", 0, 2, 12, 0},
    [C_CODE] = {"CODE", CLI_COL_HIDE_EMPTY, 2, 8, 5},
    [C_COUNT] = {"COUNT", CLI_COL_RIGHT | CLI_COL_HIDE_EMPTY, 0, 0, 0},
    [C_TOTAL] = {"TOTAL", CLI_COL_RIGHT, 0, 0, 0},
    /* of TOTAL, refused by a quota and only counted: shown only when some group has any */
    [C_DROPPED] = {"NOT STORED", CLI_COL_RIGHT | CLI_COL_HIDE_EMPTY, 0, 0, 0},
    [C_SPARK] = {"LAST HOUR", CLI_COL_HIDE_EMPTY, 0, 0, 2},
    [C_FIRST] = {"FIRST SEEN", 0, 0, 0, 1},
    [C_LAST] = {"LAST SEEN", 0, 0, 0, 0},
    [C_STATUS] = {"STATUS", CLI_COL_HIDE_EMPTY | CLI_COL_FOLD, 0, 0, 3},
    [C_MESSAGE] = {"MESSAGE", 0, 4, 24, 0},
};

json_t *cli_group_json(const struct cli_ctx *ctx, const ProtobufCMessage *row)
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
	/* beyond DESIGN.md's row: additions only */
	cli_json_put(o, "handled", cli_json_uint(g->handled), &ok);
	cli_json_put(o, "unhandled", cli_json_uint(g->unhandled), &ok);
	cli_json_put(o, "regression", json_boolean(g->regression), &ok);
	cli_json_put(o, "resolved_at", cli_json_time(g->resolved_at_unix_nano), &ok);
	cli_json_put(o, "grouping_version", json_integer(g->grouping_version), &ok);
	cli_json_put(o, "overflow", json_boolean(g->overflow), &ok);
	cli_json_put(o, "dropped", cli_json_uint(g->dropped), &ok); /* of total: not stored (quota) */
	return cli_json_done(o, ok);
}

static unsigned char status_style(const Errq__V1__Group *g)
{
	if (!strcmp(g->status, "unresolved"))
		return g->regression ? CLI_STYLE_RED : CLI_STYLE_YELLOW;
	if (!strcmp(g->status, "resolved"))
		return CLI_STYLE_GREEN;
	if (!strcmp(g->status, "ignored"))
		return CLI_STYLE_DIM;
	return CLI_STYLE_NONE;
}

/* "regression" for an unresolved group that had been resolved, else the status */
static const char *status_text(const Errq__V1__Group *g)
{
	return g->regression && !strcmp(g->status, "unresolved") ? "regression" : g->status;
}

/* COUNT differs from TOTAL only in a window or an environment */
static bool windowed(const struct cli_args *a)
{
	return a->since_ns || *a->env;
}

static void group_cells(const struct cli_ctx *ctx, const struct cli_view *v, size_t index,
			const ProtobufCMessage *row, struct cli_cells *c)
{
	const Errq__V1__Group *g = (const Errq__V1__Group *)row;
	const char(*sparks)[CLI_SPARK_CELL] = v->data;
	c->text[C_FP] = g->fingerprint;
	c->text[C_SERVICE] = g->service;
	c->text[C_ENV] = g->environment;
	c->text[C_TYPE] = g->error_type;
	c->text[C_CODE] = g->error_code;
	if (windowed(ctx->args))
		cli_cell_uint(c, C_COUNT, g->count);
	cli_cell_uint(c, C_TOTAL, g->total);
	if (g->dropped) {
		cli_cell_uint(c, C_DROPPED, g->dropped);
		c->style[C_DROPPED] = CLI_STYLE_YELLOW;
	}
	if (sparks && index < CLI_SPARK_ROWS)
		c->text[C_SPARK] = sparks[index];
	c->style[C_SPARK] = CLI_STYLE_YELLOW;
	cli_cell_ago(ctx, c, C_FIRST, g->first_seen_unix_nano);
	cli_cell_ago(ctx, c, C_LAST, g->last_seen_unix_nano);
	c->style[C_FIRST] = CLI_STYLE_DIM;
	c->text[C_STATUS] = status_text(g);
	c->style[C_STATUS] = status_style(g);
	c->text[C_MESSAGE] = g->message;
}

/* The last CLI_SPARK_MINUTES of a GetGroup answer as a sparkline into out (empty when the
 * collector sent no histogram). */
static void spark_cell(const Errq__V1__GetGroupResponse *r, char out[CLI_SPARK_CELL])
{
	struct errq_buf b;
	size_t n = r->n_minute_counts, from = n > CLI_SPARK_MINUTES ? n - CLI_SPARK_MINUTES : 0;
	out[0] = '\0';
	if (!n)
		return;
	errq_buf_init(&b, CLI_SPARK_CELL);
	if (!cli_sparkline(&b, r->minute_counts + from, n - from, CLI_SPARK_COLS, NULL))
		errq_snprintf(out, CLI_SPARK_CELL, "%s", b.p);
	errq_buf_free(&b);
}

/* Fills sparks[k] for the first rows (as many as the budget allows).  Decoration: a failure
 * leaves cells empty and prints nothing. */
static void fetch_sparks(struct cli_ctx *ctx, const struct cli_rows *rows, char (*sparks)[CLI_SPARK_CELL])
{
	size_t n = rows->nrows < CLI_SPARK_ROWS ? rows->nrows : CLI_SPARK_ROWS;
	Errq__V1__GetGroupRequest *reqs = calloc(n, sizeof(*reqs));
	const ProtobufCMessage **preqs = calloc(n, sizeof(*preqs));
	ProtobufCMessage **resps = calloc(n, sizeof(*resps));
	if (!reqs || !preqs || !resps)
		goto out;
	for (size_t k = 0; k < n; k++) {
		const Errq__V1__Group *g = (const Errq__V1__Group *)rows->rows[k];
		errq__v1__get_group_request__init(&reqs[k]);
		reqs[k].fingerprint = g->fingerprint;
		reqs[k].environment = (char *)ctx->args->env;
		reqs[k].histogram_minutes = CLI_SPARK_MINUTES;
		preqs[k] = &reqs[k].base;
	}
	cli_call_each(ctx, "/errq.v1.Query/GetGroup", preqs, n, &errq__v1__get_group_response__descriptor, resps,
		      CLI_SPARK_BUDGET_MS);
	for (size_t k = 0; k < n; k++) {
		if (!resps[k])
			continue;
		spark_cell((const Errq__V1__GetGroupResponse *)resps[k], sparks[k]);
		protobuf_c_message_free_unpacked(resps[k], NULL);
	}
out:
	free(reqs);
	free(preqs);
	free(resps);
}

int cli_cmd_groups(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__ListGroupsRequest req = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	struct cli_rows rows;
	char(*sparks)[CLI_SPARK_CELL] = NULL;
	struct cli_view view = {
	    .noun = "groups",
	    .cols = cols,
	    .ncols = NCOLS,
	    .to_json = cli_group_json,
	    .to_cells = group_cells,
	};
	cli_rows_init(&rows);
	req.service = (char *)a->service;
	req.environment = (char *)a->env;
	req.error_type = (char *)a->type_glob;
	req.error_code = (char *)a->code_glob;
	req.status = (char *)a->status;
	req.since_unix_nano = a->since_ns;
	req.until_unix_nano = a->until_ns;
	req.sort = (Errq__V1__GroupSort)a->sort;

	int rc = cli_list(ctx, "/errq.v1.Query/ListGroups", &req.base, &errq__v1__list_groups_response__descriptor,
			  "groups", a->limit, &rows);
	if (rc)
		goto out;
	/* a sparkline is for people: only in a table on a terminal */
	if (a->output == CLI_OUT_TABLE && ctx->tty && rows.nrows) {
		sparks = calloc(CLI_SPARK_ROWS, sizeof(*sparks));
		if (sparks)
			fetch_sparks(ctx, &rows, sparks);
		view.data = sparks;
	}
	rc = cli_print_rows(ctx, &view, &rows);
out:
	free(sparks);
	cli_rows_release(&rows);
	return rc;
}

/* ---- errq group FP ---- */

static json_t *group_doc(const struct cli_ctx *ctx, const ProtobufCMessage *m)
{
	const Errq__V1__GetGroupResponse *r = (const Errq__V1__GetGroupResponse *)m;
	bool ok = true;
	json_t *o = r->group ? cli_group_json(ctx, &r->group->base) : NULL;
	json_t *hist = json_object(), *mins = json_array();
	if (!o || !hist || !mins) {
		ok = false;
		goto out;
	}
	for (size_t k = 0; k < r->n_minute_counts; k++)
		if (json_array_append_new(mins, cli_json_uint(r->minute_counts[k])))
			ok = false;
	cli_json_put(hist, "start", cli_json_time(r->n_minute_counts ? r->histogram_start_unix_nano : 0), &ok);
	cli_json_put(hist, "minutes", mins, &ok);
	mins = NULL;
	cli_json_put(o, "histogram", hist, &ok);
	hist = NULL;
	cli_json_put(o, "latest", r->latest ? cli_event_json(ctx, &r->latest->base) : json_null(), &ok);
out:
	json_decref(hist);
	json_decref(mins);
	return cli_json_done(o, ok);
}

/* "last hour" / "last 6h" / "last 90m" for n minutes */
static void hist_label(char *buf, size_t n, size_t minutes)
{
	if (minutes == 60)
		errq_snprintf(buf, n, "last hour");
	else if (minutes % 60 == 0)
		errq_snprintf(buf, n, "last %zuh", minutes / 60);
	else
		errq_snprintf(buf, n, "last %zum", minutes);
}

#define GROUP_LABEL_COLS 13 /* "environment" and two spaces: where values start */

static void histogram_detail(const struct cli_ctx *ctx, struct cli_detail *d, const Errq__V1__GetGroupResponse *r)
{
	size_t n = r->n_minute_counts, w, peak_at = 0;
	uint64_t sum = 0;
	char label[32], ago[32], hhmm[ERRQ_RFC3339_BUFSZ];
	struct errq_buf b;
	if (!n)
		return;
	w = ctx->width > GROUP_LABEL_COLS + CLI_HIST_MIN_COLS ? ctx->width - GROUP_LABEL_COLS : CLI_HIST_MIN_COLS;
	if (w > n)
		w = n;
	for (size_t k = 0; k < n; k++) {
		sum += r->minute_counts[k];
		if (r->minute_counts[k] > r->minute_counts[peak_at])
			peak_at = k;
	}
	hist_label(label, sizeof(label), n);
	errq_buf_init(&b, 4 * CLI_SPARK_MAX_COLS + 64);
	if (cli_sparkline(&b, r->minute_counts, n, w, NULL)) {
		d->failed = true;
		goto out;
	}
	/* all spaces when nothing came: say so rather than show a blank */
	cli_detail_field(d, label, sum ? b.p : "no events", sum ? CLI_STYLE_YELLOW : CLI_STYLE_DIM);
	if (sum) {
		/* an axis under the sparkline: its start on the left, now on the right */
		/* n minutes back: "1h ago" for the hour, whatever second the first minute began */
		cli_fmt_ago(ago, sizeof(ago), ctx->now_ns, ctx->now_ns - (uint64_t)n * NS_PER_MIN);
		size_t la = strlen(ago);
		if (w >= la + 5) {
			errq_buf_reset(&b);
			errq_buf_printf(&b, "%s%*s", ago, (int)(w - la), "now");
			cli_detail_field(d, "", b.p, CLI_STYLE_DIM);
		}
		errq_fmt_rfc3339(hhmm, r->histogram_start_unix_nano + peak_at * NS_PER_MIN);
		hhmm[16] = '\0'; /* "2026-11-25T18:03" */
		cli_detail_fieldf(d, "peak", CLI_STYLE_NONE, "%llu in the minute from %sZ; %llu in all",
				  (unsigned long long)r->minute_counts[peak_at], hhmm + 11, (unsigned long long)sum);
	}
out:
	errq_buf_free(&b);
}

static void group_detail(const struct cli_ctx *ctx, struct cli_detail *d, const ProtobufCMessage *m)
{
	const Errq__V1__GetGroupResponse *r = (const Errq__V1__GetGroupResponse *)m;
	const struct cli_args *a = ctx->args;
	const Errq__V1__Group *g = r->group;
	char buf[ERRQ_RFC3339_BUFSZ + 64];

	cli_detail_field(d, "fingerprint", g->fingerprint, CLI_STYLE_BOLD);
	cli_detail_field(d, "service", g->service, CLI_STYLE_NONE);
	cli_detail_field(d, "environment", g->environment, CLI_STYLE_NONE);
	cli_detail_field(d, "type", g->error_type, CLI_STYLE_NONE);
	cli_detail_field(d, "code", g->error_code, CLI_STYLE_NONE);
	if (g->regression && !strcmp(g->status, "unresolved") && g->resolved_at_unix_nano)
		cli_detail_fieldf(d, "status", status_style(g), "unresolved: a regression (was resolved %s)",
				  cli_fmt_ago(buf, sizeof(buf), ctx->now_ns, g->resolved_at_unix_nano));
	else if (g->regression && !strcmp(g->status, "unresolved"))
		cli_detail_field(d, "status", "unresolved: a regression", status_style(g));
	else if (!strcmp(g->status, "resolved") && g->resolved_at_unix_nano)
		cli_detail_fieldf(d, "status", status_style(g), "resolved %s",
				  cli_fmt_ago(buf, sizeof(buf), ctx->now_ns, g->resolved_at_unix_nano));
	else
		cli_detail_field(d, "status", g->status, status_style(g));
	cli_detail_field(d, "message", g->message, CLI_STYLE_BOLD);
	if (windowed(a)) {
		cli_detail_fieldf(d, "count", CLI_STYLE_NONE, "%llu%s%s%s%s", (unsigned long long)g->count,
				  *a->env ? " in " : "", a->env, a->since_ns ? " since " : "",
				  a->since_ns ? cli_fmt_ago(buf, sizeof(buf), ctx->now_ns, a->since_ns) : "");
	}
	cli_detail_fieldf(d, "total", CLI_STYLE_NONE, "%llu: %llu unhandled, %llu handled",
			  (unsigned long long)g->total, (unsigned long long)g->unhandled,
			  (unsigned long long)g->handled);
	cli_detail_field(d, "first seen", cli_fmt_when(ctx, buf, sizeof(buf), g->first_seen_unix_nano), CLI_STYLE_NONE);
	cli_detail_field(d, "last seen", cli_fmt_when(ctx, buf, sizeof(buf), g->last_seen_unix_nano), CLI_STYLE_NONE);
	if (g->dropped)
		cli_detail_fieldf(d, "not stored", CLI_STYLE_YELLOW,
				  "%llu of the total: refused by a quota (quota_exceeded), counted but not stored",
				  (unsigned long long)g->dropped);
	if (g->overflow)
		cli_detail_fieldf(d, "overflow", CLI_STYLE_YELLOW,
				  "yes: %s has more groups than the collector keeps; new fingerprints are counted here",
				  g->service);
	histogram_detail(ctx, d, r);
	if (r->latest)
		cli_event_detail(ctx, d, &r->latest->base, false);
}

int cli_cmd_group(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__GetGroupRequest req = ERRQ__V1__GET_GROUP_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char fp[CLI_FINGERPRINT_LEN + 1];
	int rc = cli_arg_fingerprint(ctx, fp);
	if (rc)
		goto out;
	req.fingerprint = fp;
	req.since_unix_nano = a->since_ns;
	req.environment = (char *)a->env;
	req.histogram_minutes = CLI_HIST_DEFAULT_MINUTES;
	if (a->since_ns && a->since_ns < ctx->now_ns) {
		uint64_t m = (ctx->now_ns - a->since_ns + NS_PER_MIN - 1) / NS_PER_MIN;
		req.histogram_minutes = (uint32_t)(m > CLI_HIST_MAX_MINUTES ? CLI_HIST_MAX_MINUTES : m);
	}
	errq_snprintf(ctx->what, sizeof(ctx->what), "group %.100s", fp);
	rc = cli_call(ctx, "/errq.v1.Query/GetGroup", &req.base, &errq__v1__get_group_response__descriptor, &resp);
	if (rc)
		goto out;
	const Errq__V1__GetGroupResponse *r = (const Errq__V1__GetGroupResponse *)resp;
	if (!r->group) {
		cli_error("collector at %s answered GetGroup without a group", a->addr);
		rc = CLI_EXIT_UNREACHABLE;
		goto out;
	}
	rc = cli_print_item(ctx, resp, group_doc, group_detail);
out:
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* ---- errq resolve | ignore | unresolve FP ---- */

static int set_status(struct cli_ctx *ctx, const char *status)
{
	Errq__V1__SetGroupStatusRequest req = ERRQ__V1__SET_GROUP_STATUS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char fp[CLI_FINGERPRINT_LEN + 1];
	int rc = cli_arg_fingerprint(ctx, fp);
	if (rc)
		return rc;
	req.fingerprint = fp;
	req.status = (char *)status;
	errq_snprintf(ctx->what, sizeof(ctx->what), "group %.100s", fp);
	rc = cli_call(ctx, "/errq.v1.Query/SetGroupStatus", &req.base, &errq__v1__group__descriptor, &resp);
	if (rc)
		return rc;
	const Errq__V1__Group *g = (const Errq__V1__Group *)resp;
	if (ctx->args->output != CLI_OUT_TABLE) {
		rc = cli_print_json(ctx, cli_group_json(ctx, resp));
	} else {
		/* one line, sanitized like every view */
		struct cli_detail d;
		struct errq_buf b;
		cli_detail_init(&d);
		errq_buf_init(&b, CLI_DETAIL_VALUE_MAX);
		if (errq_buf_printf(&b, "group %s (%s %s) is now %s", g->fingerprint, g->service, g->error_type,
				    g->status))
			d.failed = true;
		else
			cli_detail_text(&d, b.p, CLI_STYLE_NONE);
		errq_buf_free(&b);
		rc = cli_print_detail(ctx, &d);
		cli_detail_release(&d);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

int cli_cmd_resolve(struct cli_ctx *ctx)
{
	return set_status(ctx, "resolved");
}

int cli_cmd_ignore(struct cli_ctx *ctx)
{
	return set_status(ctx, "ignored");
}

int cli_cmd_unresolve(struct cli_ctx *ctx)
{
	return set_status(ctx, "unresolved");
}
