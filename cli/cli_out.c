/* cli_out.c: the run context (terminal, colors, width) and output: tables, a JSON document,
 * JSON lines, and the JSON/cell conversions DESIGN.md fixes (RFC 3339 times, hex ids). */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define CLI_MAX_WIDTH 10000

static size_t term_width(int fd)
{
	struct winsize ws;
	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	if (c && *c) {
		char *end;
		long v = strtol(c, &end, 10);
		if (!*end && v > 0 && v <= CLI_MAX_WIDTH)
			return (size_t)v;
	}
	return CLI_DEFAULT_WIDTH;
}

void cli_ctx_init(struct cli_ctx *ctx, const struct cli_args *a, const struct cli_cmd *cmds, size_t ncmds,
		  uint64_t now_ns)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->args = a;
	ctx->cmds = cmds;
	ctx->ncmds = ncmds;
	ctx->out = stdout;
	const char *term = getenv("TERM");
	ctx->tty = isatty(STDOUT_FILENO);
	ctx->color = ctx->tty && !a->no_color && !(term && !strcmp(term, "dumb"));
	ctx->width = term_width(STDOUT_FILENO);
	ctx->now_ns = now_ns;
	ctx->deadline_mono_ns = errq_mono_ns() + (uint64_t)a->timeout_ms * ERRQ_NS_PER_MS;
}

/* ---- JSON values ---- */

json_t *cli_json_str(const char *s)
{
	if (!s)
		s = "";
	size_t n = strlen(s);
	if (errq_utf8_valid(s, n, NULL))
		return json_stringn(s, n);
	struct errq_buf b;
	errq_buf_init(&b, 4 * n + 16);
	json_t *j = cli_utf8_fix(&b, s, n) ? NULL : json_stringn(b.p, b.len);
	errq_buf_free(&b);
	return j;
}

json_t *cli_json_time(uint64_t ns)
{
	char buf[ERRQ_RFC3339_BUFSZ];
	if (!ns)
		return json_null();
	return json_string(errq_fmt_rfc3339(buf, ns));
}

#define CLI_HEX_MAX 64 /* bytes of an id shown; ids are 16 */

json_t *cli_json_hex(ProtobufCBinaryData b)
{
	char hex[2 * CLI_HEX_MAX + 1];
	errq_hex_encode(b.data, b.len < CLI_HEX_MAX ? b.len : CLI_HEX_MAX, hex);
	return json_string(hex);
}

json_t *cli_json_uint(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

void cli_json_put(json_t *o, const char *key, json_t *value, bool *ok)
{
	size_t n = strlen(key);
	if (errq_utf8_valid(key, n, NULL)) {
		if (json_object_set_new(o, key, value))
			*ok = false;
		return;
	}
	struct errq_buf b;
	errq_buf_init(&b, 4 * n + 16);
	if (cli_utf8_fix(&b, key, n)) {
		json_decref(value); /* json_object_set_new would have taken it */
		*ok = false;
	} else if (json_object_set_new(o, b.p, value)) {
		*ok = false;
	}
	errq_buf_free(&b);
}

json_t *cli_json_done(json_t *o, bool ok)
{
	if (!ok) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* ---- cells ---- */

void cli_cell_ago(const struct cli_ctx *ctx, struct cli_cells *c, size_t i, uint64_t ns)
{
	c->text[i] = cli_fmt_ago(c->buf[i], sizeof(c->buf[i]), ctx->now_ns, ns);
}

void cli_cell_uint(struct cli_cells *c, size_t i, uint64_t v)
{
	errq_snprintf(c->buf[i], sizeof(c->buf[i]), "%llu", (unsigned long long)v);
	c->text[i] = c->buf[i];
}

void cli_cell_hex(struct cli_cells *c, size_t i, ProtobufCBinaryData b)
{
	size_t max = (sizeof(c->buf[i]) - 1) / 2;
	errq_hex_encode(b.data, b.len < max ? b.len : max, c->buf[i]);
	c->text[i] = c->buf[i];
}

char *cli_fmt_when(const struct cli_ctx *ctx, char *buf, size_t n, uint64_t ns)
{
	char ago[32], ts[ERRQ_RFC3339_BUFSZ];
	if (!ns)
		errq_snprintf(buf, n, "-");
	else
		errq_snprintf(buf, n, "%s (%s)", cli_fmt_ago(ago, sizeof(ago), ctx->now_ns, ns),
			      errq_fmt_rfc3339(ts, ns));
	return buf;
}

int cli_arg_event_id(const struct cli_ctx *ctx, uint8_t id[CLI_EVENT_ID_LEN])
{
	const char *s = ctx->args->argv[0];
	if (cli_event_id_parse(s, id)) {
		cli_error("invalid event id '%s' (expected 32 hex digits, as 'errq events' shows)", s);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

int cli_check_fingerprint(const char *what, const char *s, char fp[CLI_FINGERPRINT_LEN + 1])
{
	if (cli_fingerprint_parse(s, fp)) {
		cli_error("invalid %s '%.100s' (expected %d hex digits, as 'errq groups' shows)", what, s,
			  CLI_FINGERPRINT_LEN);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

int cli_arg_fingerprint(const struct cli_ctx *ctx, char fp[CLI_FINGERPRINT_LEN + 1])
{
	return cli_check_fingerprint("fingerprint", ctx->args->argv[0], fp);
}

/* ---- printing ---- */

int cli_output_error(int err)
{
	char msg[128];
	errq_snprintf(msg, sizeof(msg), "%s", strerror(err));
	if (isupper((unsigned char)msg[0]) && islower((unsigned char)msg[1]))
		msg[0] = (char)tolower((unsigned char)msg[0]);
	cli_error("cannot write output: %s", msg);
	return CLI_EXIT_USAGE;
}

/* After the last write: a full disk is an error too. */
static int finish(struct cli_ctx *ctx)
{
	if (fflush(ctx->out) == 0 && !ferror(ctx->out))
		return 0;
	return cli_output_error(errno);
}

/* A dump or a write failed half-way: an I/O error on the stream, else memory. */
static int write_failed(struct cli_ctx *ctx)
{
	int err = errno;
	if (ferror(ctx->out))
		return cli_output_error(err);
	cli_error("out of memory");
	return CLI_EXIT_USAGE;
}

int cli_print_json(struct cli_ctx *ctx, json_t *doc)
{
	int rc = 0;
	if (!doc) {
		cli_error("out of memory");
		return CLI_EXIT_USAGE;
	}
	size_t flags = ctx->args->output == CLI_OUT_JSONL ? JSON_COMPACT : JSON_INDENT(2);
	if (json_dumpf(doc, ctx->out, flags) || fputc('\n', ctx->out) == EOF)
		rc = write_failed(ctx);
	else
		rc = finish(ctx);
	json_decref(doc);
	return rc;
}

int cli_print_detail(struct cli_ctx *ctx, const struct cli_detail *d)
{
	if (d->failed) {
		cli_error("out of memory");
		return CLI_EXIT_USAGE;
	}
	if (cli_detail_render(d, ctx->width, ctx->color, ctx->out))
		return write_failed(ctx);
	return finish(ctx);
}

static int print_jsonl(struct cli_ctx *ctx, const struct cli_view *v, const struct cli_rows *rows)
{
	int rc = 0;
	for (size_t k = 0; k < rows->nrows && !rc; k++) {
		json_t *o = v->to_json(ctx, rows->rows[k]);
		if (!o) {
			cli_error("out of memory");
			rc = CLI_EXIT_USAGE;
		} else if (json_dumpf(o, ctx->out, JSON_COMPACT) || fputc('\n', ctx->out) == EOF) {
			rc = write_failed(ctx);
		}
		json_decref(o);
	}
	return rc ? rc : finish(ctx);
}

static int print_table(struct cli_ctx *ctx, const struct cli_view *v, const struct cli_rows *rows)
{
	int rc = 0;
	struct cli_table t;
	struct cli_cells *c = malloc(sizeof(*c));
	cli_table_init(&t, v->cols, v->ncols);
	if (!c) {
		cli_error("out of memory");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	for (size_t k = 0; k < rows->nrows; k++) {
		memset(c->text, 0, sizeof(c->text));
		memset(c->style, 0, sizeof(c->style));
		v->to_cells(ctx, v, k, rows->rows[k], c);
		if (cli_table_add(&t, c->text, c->style)) {
			cli_error("out of memory");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	if (cli_table_render(&t, ctx->width, ctx->color, ctx->out)) {
		rc = write_failed(ctx);
		goto out;
	}
	rc = finish(ctx);
out:
	free(c);
	cli_table_release(&t);
	return rc;
}

int cli_print_rows(struct cli_ctx *ctx, const struct cli_view *v, const struct cli_rows *rows)
{
	switch (ctx->args->output) {
	case CLI_OUT_JSON: {
		json_t *arr = json_array();
		for (size_t k = 0; arr && k < rows->nrows; k++) {
			if (json_array_append_new(arr, v->to_json(ctx, rows->rows[k]))) {
				json_decref(arr);
				arr = NULL;
			}
		}
		return cli_print_json(ctx, arr);
	}
	case CLI_OUT_JSONL:
		return print_jsonl(ctx, v, rows);
	case CLI_OUT_TABLE:
		break;
	}
	if (!rows->nrows) {
		fprintf(stderr, "no %s\n", v->noun);
		return 0;
	}
	return print_table(ctx, v, rows);
}

int cli_print_item(struct cli_ctx *ctx, const ProtobufCMessage *m,
		   json_t *(*to_json)(const struct cli_ctx *ctx, const ProtobufCMessage *m),
		   void (*to_detail)(const struct cli_ctx *ctx, struct cli_detail *d, const ProtobufCMessage *m))
{
	if (ctx->args->output != CLI_OUT_TABLE)
		return cli_print_json(ctx, to_json(ctx, m));
	struct cli_detail d;
	cli_detail_init(&d);
	to_detail(ctx, &d, m);
	int rc = cli_print_detail(ctx, &d);
	cli_detail_release(&d);
	return rc;
}
