/* cmd_events.c: `errq events`: stored events, newest first (Query.ListEvents), and
 * `errq event ID`: one event with its frames and details (Query.GetEvent). */
#include "cli.h"

#include <string.h>

#include "errq/v1/query.pb-c.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

enum { C_ID, C_RECEIVED, C_SERVICE, C_ENV, C_TASK, C_TYPE, C_CODE, C_MESSAGE, NCOLS };

/* The message is cut first, then the task, then the names; the id and the time never.
 * When that is not enough (80 columns), the task, environment and code columns go. */
static const struct cli_col cols[NCOLS] = {
    [C_ID] = {"EVENT ID", 0, 0, 0, 0},
    [C_RECEIVED] = {"RECEIVED", 0, 0, 0, 0},
    [C_SERVICE] = {"SERVICE", 0, 2, 10, 0},
    [C_ENV] = {"ENV", CLI_COL_HIDE_EMPTY, 2, 6, 2},
    [C_TASK] = {"TASK", CLI_COL_HIDE_EMPTY, 3, 8, 3},
    [C_TYPE] = {"TYPE", 0, 2, 12, 0},
    [C_CODE] = {"CODE", CLI_COL_HIDE_EMPTY, 2, 8, 1},
    [C_MESSAGE] = {"MESSAGE", 0, 4, 24, 0},
};

static json_t *frame_json(const Errq__V1__Frame *f)
{
	bool ok = true;
	json_t *o = json_object();
	if (!o)
		return NULL;
	cli_json_put(o, "function", cli_json_str(f->function), &ok);
	cli_json_put(o, "file", cli_json_str(f->file), &ok);
	cli_json_put(o, "line", json_integer(f->line), &ok);
	cli_json_put(o, "module", cli_json_str(f->module), &ok);
	cli_json_put(o, "in_app", json_boolean(f->in_app), &ok);
	return cli_json_done(o, ok);
}

json_t *cli_event_json(const struct cli_ctx *ctx, const ProtobufCMessage *row)
{
	const Errq__V1__Event *e = (const Errq__V1__Event *)row;
	bool ok = true;
	json_t *o = json_object(), *details = json_object(), *frames = json_array(), *trunc = json_array();
	if (!o || !details || !frames || !trunc) {
		ok = false;
		goto out;
	}
	for (size_t k = 0; k < e->n_details; k++)
		cli_json_put(details, e->details[k]->key, cli_json_str(e->details[k]->value), &ok);
	for (size_t k = 0; k < e->n_frames; k++)
		if (json_array_append_new(frames, frame_json(e->frames[k])))
			ok = false;
	for (size_t k = 0; k < e->n_truncated; k++)
		if (json_array_append_new(trunc, cli_json_str(e->truncated[k])))
			ok = false;

	cli_json_put(o, "event_id", cli_json_hex(e->event_id), &ok);
	cli_json_put(o, "service", cli_json_str(e->service), &ok);
	cli_json_put(o, "environment", cli_json_str(e->environment), &ok);
	cli_json_put(o, "release", cli_json_str(e->release), &ok);
	cli_json_put(o, "host", cli_json_str(e->host), &ok);
	cli_json_put(o, "error_type", cli_json_str(e->error_type), &ok);
	cli_json_put(o, "error_code", cli_json_str(e->error_code), &ok);
	cli_json_put(o, "message", cli_json_str(e->message), &ok);
	cli_json_put(o, "time", cli_json_time(e->time_unix_nano), &ok);
	cli_json_put(o, "received_at", cli_json_time(e->received_at_unix_nano), &ok);
	cli_json_put(o, "task", cli_json_str(e->task), &ok);
	cli_json_put(o, "attempt", json_integer(e->attempt), &ok);
	cli_json_put(o, "handled", json_boolean(e->handled), &ok);
	cli_json_put(o, "fingerprint", cli_json_str(e->fingerprint), &ok);
	/* o owns them from here */
	cli_json_put(o, "details", details, &ok);
	cli_json_put(o, "frames", frames, &ok);
	cli_json_put(o, "truncated", trunc, &ok);
	details = frames = trunc = NULL;
out:
	json_decref(details);
	json_decref(frames);
	json_decref(trunc);
	return cli_json_done(o, ok);
}

static void event_cells(const struct cli_ctx *ctx, const struct cli_view *v, size_t index,
			const ProtobufCMessage *row, struct cli_cells *c)
{
	const Errq__V1__Event *e = (const Errq__V1__Event *)row;
	cli_cell_hex(c, C_ID, e->event_id);
	cli_cell_ago(ctx, c, C_RECEIVED, e->received_at_unix_nano);
	c->style[C_RECEIVED] = CLI_STYLE_DIM;
	c->text[C_SERVICE] = e->service;
	c->text[C_ENV] = e->environment;
	c->text[C_TASK] = e->task;
	c->text[C_TYPE] = e->error_type;
	c->style[C_TYPE] = e->handled ? CLI_STYLE_NONE : CLI_STYLE_RED; /* nothing caught it */
	c->text[C_CODE] = e->error_code;
	c->text[C_MESSAGE] = e->message;
}

static const struct cli_view view = {
    .noun = "events",
    .cols = cols,
    .ncols = NCOLS,
    .to_json = cli_event_json,
    .to_cells = event_cells,
};

/* No events of --group FP: "not found" (exit 3) unless the group is there (its events
 * all deleted by retention, or none in the window).  0 or an exit code. */
static int group_exists(struct cli_ctx *ctx, const char *fp)
{
	Errq__V1__GetGroupRequest req = ERRQ__V1__GET_GROUP_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	req.fingerprint = (char *)fp;
	req.histogram_minutes = 1;
	errq_snprintf(ctx->what, sizeof(ctx->what), "group %s", fp);
	int rc = cli_call(ctx, "/errq.v1.Query/GetGroup", &req.base, &errq__v1__get_group_response__descriptor, &resp);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

int cli_cmd_events(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__ListEventsRequest req = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	struct cli_rows rows;
	cli_rows_init(&rows);
	req.service = (char *)a->service;
	req.environment = (char *)a->env;
	req.error_type = (char *)a->type_glob;
	req.error_code = (char *)a->code_glob;
	req.task = (char *)a->task_glob;
	req.since_unix_nano = a->since_ns;
	char fp[CLI_FINGERPRINT_LEN + 1] = "";
	int rc = 0;
	if (*a->group && (rc = cli_check_fingerprint("--group", a->group, fp)))
		return rc;
	req.fingerprint = fp;

	rc = cli_list(ctx, "/errq.v1.Query/ListEvents", &req.base, &errq__v1__list_events_response__descriptor,
		      "events", a->limit, &rows);
	if (!rc && !rows.nrows && *fp)
		rc = group_exists(ctx, fp);
	if (!rc)
		rc = cli_print_rows(ctx, &view, &rows);
	cli_rows_release(&rows);
	return rc;
}

/* ---- errq event ID ---- */

#define FRAME_TEXT_MAX 2048

/* "charge_card at payments.c:142 (payments)" */
static void frame_text(const Errq__V1__Frame *f, bool mark, char *buf, size_t n)
{
	char loc[FRAME_TEXT_MAX / 2];
	const char *fn = f->function && *f->function ? f->function : "?";
	loc[0] = '\0';
	if (f->file && *f->file && f->line)
		errq_snprintf(loc, sizeof(loc), " at %s:%u", f->file, f->line);
	else if (f->file && *f->file)
		errq_snprintf(loc, sizeof(loc), " at %s", f->file);
	else if (f->line)
		errq_snprintf(loc, sizeof(loc), " at line %u", f->line);
	errq_snprintf(buf, n, "%s%s%s%s%s%s", mark ? (f->in_app ? "* " : "  ") : "", fn, loc,
		      f->module && *f->module ? " (" : "", f->module && *f->module ? f->module : "",
		      f->module && *f->module ? ")" : "");
}

void cli_event_detail(const struct cli_ctx *ctx, struct cli_detail *d, const ProtobufCMessage *msg, bool full)
{
	const Errq__V1__Event *e = (const Errq__V1__Event *)msg;
	char buf[ERRQ_RFC3339_BUFSZ + 64], id[2 * CLI_EVENT_ID_LEN + 1];
	errq_hex_encode(e->event_id.data, e->event_id.len < CLI_EVENT_ID_LEN ? e->event_id.len : CLI_EVENT_ID_LEN,
			id);

	if (!full)
		cli_detail_section(d, "latest event");
	cli_detail_field(d, "event", id, CLI_STYLE_NONE);
	cli_detail_field(d, "received", cli_fmt_when(ctx, buf, sizeof(buf), e->received_at_unix_nano),
			 CLI_STYLE_NONE);
	if (full && e->time_unix_nano)
		cli_detail_field(d, "time", cli_fmt_when(ctx, buf, sizeof(buf), e->time_unix_nano), CLI_STYLE_DIM);
	if (full) {
		cli_detail_field(d, "service", e->service, CLI_STYLE_NONE);
		cli_detail_field(d, "environment", e->environment, CLI_STYLE_NONE);
	}
	cli_detail_field(d, "release", e->release, CLI_STYLE_NONE);
	cli_detail_field(d, "host", e->host, CLI_STYLE_NONE);
	cli_detail_field(d, "task", e->task, CLI_STYLE_NONE);
	if (e->attempt)
		cli_detail_fieldf(d, "attempt", CLI_STYLE_NONE, "%u", e->attempt);
	if (full) {
		cli_detail_field(d, "type", e->error_type, e->handled ? CLI_STYLE_NONE : CLI_STYLE_RED);
		cli_detail_field(d, "code", e->error_code, CLI_STYLE_NONE);
	}
	cli_detail_field(d, "handled", e->handled ? "yes" : "no: nothing caught it",
			 e->handled ? CLI_STYLE_NONE : CLI_STYLE_RED);
	if (full)
		cli_detail_field(d, "fingerprint", e->fingerprint, CLI_STYLE_NONE);
	cli_detail_field(d, "message", e->message, CLI_STYLE_BOLD);
	if (e->n_truncated) {
		struct errq_buf b;
		errq_buf_init(&b, CLI_DETAIL_VALUE_MAX);
		for (size_t k = 0; k < e->n_truncated; k++)
			if (errq_buf_printf(&b, "%s%s", k ? ", " : "", e->truncated[k]))
				break;
		cli_detail_fieldf(d, "truncated", CLI_STYLE_YELLOW, "%s (cut by the collector)", b.p ? b.p : "");
		errq_buf_free(&b);
	}

	if (e->n_frames) {
		bool marked = false;
		char text[FRAME_TEXT_MAX];
		for (size_t k = 0; k < e->n_frames; k++)
			marked = marked || e->frames[k]->in_app;
		cli_detail_section(d, marked ? "frames (outermost first; * = application code)"
					     : "frames (outermost first)");
		for (size_t k = 0; k < e->n_frames; k++) {
			const Errq__V1__Frame *f = e->frames[k];
			frame_text(f, marked, text, sizeof(text));
			cli_detail_text(d, text, marked && !f->in_app ? CLI_STYLE_DIM : CLI_STYLE_NONE);
		}
	}
	if (e->n_details) {
		cli_detail_section(d, "details");
		for (size_t k = 0; k < e->n_details; k++) {
			const char *v = e->details[k]->value;
			/* an empty value still shows that the key was there */
			cli_detail_field(d, e->details[k]->key, v && *v ? v : "\"\"", CLI_STYLE_NONE);
		}
	}
}

int cli_cmd_event(struct cli_ctx *ctx)
{
	Errq__V1__GetEventRequest req = ERRQ__V1__GET_EVENT_REQUEST__INIT;
	uint8_t id[CLI_EVENT_ID_LEN];
	ProtobufCMessage *resp = NULL;
	struct cli_detail d;
	int rc = cli_arg_event_id(ctx, id);
	cli_detail_init(&d);
	if (rc)
		goto out;
	req.event_id.data = id;
	req.event_id.len = sizeof(id);
	char hex[2 * CLI_EVENT_ID_LEN + 1];
	errq_hex_encode(id, sizeof(id), hex);
	errq_snprintf(ctx->what, sizeof(ctx->what), "event %s", hex);
	rc = cli_call(ctx, "/errq.v1.Query/GetEvent", &req.base, &errq__v1__event__descriptor, &resp);
	if (rc)
		goto out;
	if (ctx->args->output != CLI_OUT_TABLE) {
		rc = cli_print_json(ctx, cli_event_json(ctx, resp));
		goto out;
	}
	cli_event_detail(ctx, &d, resp, true);
	rc = cli_print_detail(ctx, &d);
out:
	cli_detail_release(&d);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}
