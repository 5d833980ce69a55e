/* cmd_silence.c: silences — alerts of a rule (all its circuits, or those whose key matches)
 * that are recorded but not delivered for a while: `errq silence add` (Alerts.AddSilence),
 * `errq silence list` (ListSilences) and `errq silence expire ID` (ExpireSilence). */
#include "cli.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errq/v1/alerts.pb-c.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define CLI_MATCHERS_MAX 4096   /* the collector's bound on matchers (RULES_KEY_MAX) */
#define CLI_CREATED_BY_MAX 128  /* "user@host", NUL included (alerts.h) */
#define CLI_HOST_MAX 256

static json_t *silence_json(const struct cli_ctx *ctx, const ProtobufCMessage *row)
{
	const Errq__V1__Silence *s = (const Errq__V1__Silence *)row;
	bool ok = true;
	json_t *o = json_object();
	if (!o)
		return NULL;
	cli_json_put(o, "id", cli_json_uint(s->id), &ok);
	cli_json_put(o, "rule", cli_json_str(s->rule), &ok);
	cli_json_key(o, "matchers", s->matchers, &ok);
	cli_json_put(o, "comment", cli_json_str(s->comment), &ok);
	cli_json_put(o, "created_by", cli_json_str(s->created_by), &ok);
	cli_json_put(o, "created_at", cli_json_time(s->created_unix_nano), &ok);
	cli_json_put(o, "starts_at", cli_json_time(s->starts_unix_nano), &ok);
	cli_json_put(o, "ends_at", cli_json_time(s->ends_unix_nano), &ok);
	cli_json_put(o, "expired_at", cli_json_time(s->expired_unix_nano), &ok);
	cli_json_put(o, "active", json_boolean(s->active), &ok);
	return cli_json_done(o, ok);
}

/* "active", "pending" (not started), "expired" (ended early) or "ended". */
static const char *silence_status(const struct cli_ctx *ctx, const Errq__V1__Silence *s)
{
	if (s->active)
		return "active";
	if (s->expired_unix_nano)
		return "expired";
	if (s->starts_unix_nano > ctx->now_ns)
		return "pending";
	return "ended";
}

enum { CS_ID, CS_RULE, CS_MATCHERS, CS_STATUS, CS_ENDS, CS_BY, CS_COMMENT, CS_NCOLS };

static const struct cli_col silence_cols[CS_NCOLS] = {
    [CS_ID] = {"ID", CLI_COL_RIGHT, 0, 0, 0},
    [CS_RULE] = {"RULE", 0, 1, 12, 0},
    [CS_MATCHERS] = {"MATCHERS", 0, 2, 12, 0},
    [CS_STATUS] = {"STATUS", 0, 0, 0, 0},
    [CS_ENDS] = {"ENDS", 0, 0, 0, 0},
    [CS_BY] = {"CREATED BY", 0, 2, 10, 1},
    [CS_COMMENT] = {"COMMENT", 0, 4, 16, 0},
};

static void silence_cells(const struct cli_ctx *ctx, const struct cli_view *v, size_t index,
			  const ProtobufCMessage *row, struct cli_cells *c)
{
	const Errq__V1__Silence *s = (const Errq__V1__Silence *)row;
	uint64_t end = s->expired_unix_nano && s->expired_unix_nano < s->ends_unix_nano ? s->expired_unix_nano
											 : s->ends_unix_nano;
	cli_cell_uint(c, CS_ID, s->id);
	c->text[CS_RULE] = s->rule;
	c->text[CS_MATCHERS] = *s->matchers ? s->matchers : "(every key)";
	c->style[CS_MATCHERS] = *s->matchers ? CLI_STYLE_NONE : CLI_STYLE_DIM;
	c->text[CS_STATUS] = silence_status(ctx, s);
	c->style[CS_STATUS] = s->active ? CLI_STYLE_YELLOW : CLI_STYLE_DIM;
	if (end > ctx->now_ns)
		c->text[CS_ENDS] = cli_fmt_until(c->buf[CS_ENDS], sizeof(c->buf[CS_ENDS]), ctx->now_ns, end);
	else
		cli_cell_ago(ctx, c, CS_ENDS, end);
	c->text[CS_BY] = s->created_by;
	c->style[CS_BY] = CLI_STYLE_DIM;
	c->text[CS_COMMENT] = s->comment;
}

/* "silence 12 on rule R (service=x) ends in 2h (2026-...Z): comment" */
static int print_silence(struct cli_ctx *ctx, const Errq__V1__Silence *s, const char *what)
{
	if (ctx->args->output != CLI_OUT_TABLE)
		return cli_print_json(ctx, silence_json(ctx, &s->base));
	struct cli_detail d;
	struct errq_buf b;
	char until[48], ts[ERRQ_RFC3339_BUFSZ];
	uint64_t end = s->expired_unix_nano ? s->expired_unix_nano : s->ends_unix_nano;
	cli_detail_init(&d);
	errq_buf_init(&b, CLI_DETAIL_VALUE_MAX);
	int e = errq_buf_printf(&b, "silence %llu %s: rule %s, %s%s; ", (unsigned long long)s->id, what, s->rule,
				*s->matchers ? "keys matching " : "every key", s->matchers);
	if (s->expired_unix_nano)
		e |= errq_buf_printf(&b, "ended early %s", errq_fmt_rfc3339(ts, end));
	else if (end > ctx->now_ns)
		e |= errq_buf_printf(&b, "ends %s (%s)", cli_fmt_until(until, sizeof(until), ctx->now_ns, end),
				     errq_fmt_rfc3339(ts, end));
	else
		e |= errq_buf_printf(&b, "ended %s", errq_fmt_rfc3339(ts, end));
	if (*s->comment)
		e |= errq_buf_printf(&b, ": %s", s->comment);
	if (e)
		d.failed = true;
	else
		cli_detail_text(&d, b.p, CLI_STYLE_NONE);
	errq_buf_free(&b);
	int rc = cli_print_detail(ctx, &d);
	cli_detail_release(&d);
	return rc;
}

/* "user@host" of who runs errq, into buf. */
static void whoami(char *buf, size_t n)
{
	char host[CLI_HOST_MAX];
	const char *user = getenv("USER");
	if (!user || !*user) {
		struct passwd *pw = getpwuid(getuid());
		user = pw && pw->pw_name ? pw->pw_name : "unknown";
	}
	if (gethostname(host, sizeof(host)))
		errq_snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	errq_snprintf(buf, n, "%s@%s", user, host);
}

int cli_cmd_silence_add(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__AddSilenceRequest req = ERRQ__V1__ADD_SILENCE_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char matchers[CLI_MATCHERS_MAX], by[CLI_CREATED_BY_MAX];
	if (cli_matchers_join(a->match, a->nmatch, matchers, sizeof(matchers))) {
		cli_error("the --match values are longer than %d bytes together", CLI_MATCHERS_MAX - 1);
		return CLI_EXIT_USAGE;
	}
	whoami(by, sizeof(by));
	req.rule = (char *)a->rule;
	req.matchers = matchers;
	req.duration_ms = a->for_ns / ERRQ_NS_PER_MS;
	req.comment = (char *)a->comment;
	req.created_by = by;
	/* a rule not in force: "rule 'x' not found at collector A (rules: ...)", exit 3 */
	errq_snprintf(ctx->what, sizeof(ctx->what), "rule '%s'", a->rule);
	int rc = cli_call(ctx, "/errq.v1.Alerts/AddSilence", &req.base, &errq__v1__silence__descriptor, &resp);
	if (rc)
		return rc;
	rc = print_silence(ctx, (const Errq__V1__Silence *)resp, "added");
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

int cli_cmd_silence_list(struct cli_ctx *ctx)
{
	Errq__V1__ListSilencesRequest req = ERRQ__V1__LIST_SILENCES_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct cli_rows rows;
	struct cli_view view = {
	    .noun = ctx->args->all ? "silences" : "active silences",
	    .cols = silence_cols,
	    .ncols = CS_NCOLS,
	    .to_json = silence_json,
	    .to_cells = silence_cells,
	};
	req.all = ctx->args->all;
	int rc = cli_call(ctx, "/errq.v1.Alerts/ListSilences", &req.base, &errq__v1__list_silences_response__descriptor,
			  &resp);
	if (rc)
		return rc;
	const Errq__V1__ListSilencesResponse *r = (const Errq__V1__ListSilencesResponse *)resp;
	cli_rows_borrow(&rows, (ProtobufCMessage *const *)r->silences, r->n_silences);
	rc = cli_print_rows(ctx, &view, &rows);
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

int cli_cmd_silence_expire(struct cli_ctx *ctx)
{
	Errq__V1__ExpireSilenceRequest req = ERRQ__V1__EXPIRE_SILENCE_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	const char *s = ctx->args->argv[0];
	char *end;
	errno = 0;
	unsigned long long id = strtoull(s, &end, 10);
	if (!*s || *end || errno || id == 0 || id > INT64_MAX || s[0] == '-' || s[0] == '+') {
		cli_error("invalid silence id '%s' (expected the number 'errq silence list' shows)", s);
		return CLI_EXIT_USAGE;
	}
	req.id = id;
	errq_snprintf(ctx->what, sizeof(ctx->what), "active silence %llu", id);
	int rc = cli_call(ctx, "/errq.v1.Alerts/ExpireSilence", &req.base, &errq__v1__silence__descriptor, &resp);
	if (rc)
		return rc;
	rc = print_silence(ctx, (const Errq__V1__Silence *)resp, "expired");
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}
