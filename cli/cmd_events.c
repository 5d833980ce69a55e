/* cmd_events.c: `errq events`: stored events, newest first (Query.ListEvents). */
#include "cli.h"

#include "errq/v1/query.pb-c.h"
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
	if (!ok) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static json_t *event_json(const struct cli_ctx *ctx, const ProtobufCMessage *row)
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
	if (!ok) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static void event_cells(const struct cli_ctx *ctx, const ProtobufCMessage *row, struct cli_cells *c)
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
    .to_json = event_json,
    .to_cells = event_cells,
};

int cli_cmd_events(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__ListEventsRequest req = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	struct cli_rows rows;
	cli_rows_init(&rows);
	req.service = (char *)a->service;
	req.since_unix_nano = a->since_ns;
	req.fingerprint = (char *)a->group;

	int rc = cli_list(ctx, "/errq.v1.Query/ListEvents", &req.base, &errq__v1__list_events_response__descriptor,
			  "events", a->limit, &rows);
	if (!rc)
		rc = cli_print_rows(ctx, &view, &rows);
	cli_rows_release(&rows);
	return rc;
}
