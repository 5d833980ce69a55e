/* cmd_tail.c: `errq tail`: events as the collector commits them (Query.Tail, a server
 * stream), one line each (a table row without a header) or one JSON object a line.
 *
 * Stops with exit 0 on Ctrl-C (SIGINT) or SIGTERM, when stdout goes away (SIGPIPE is
 * ignored; the EPIPE ends the tail), or after --limit events; with exit 2 when the collector
 * goes away.  The signal handler only sets a flag: cli_stream_next polls it. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "errq/v1/query.pb-c.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

enum { T_TIME, T_FP, T_SERVICE, T_ENV, T_TYPE, T_CODE, T_MESSAGE, TCOLS };

/* How wide a column may grow before its values are cut; the message takes the rest. */
static const struct cli_line_col tcols[TCOLS] = {
    [T_TIME] = {13, 0},     /* "18:03:11.482Z" */
    [T_FP] = {16, 0},
    [T_SERVICE] = {20, 0},
    [T_ENV] = {12, 0},
    [T_TYPE] = {28, 0},
    [T_CODE] = {16, 0},
    [T_MESSAGE] = {0, 0},
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

#define TAIL_LINE_MAX (8 * CLI_CELL_MAX * TCOLS)

/* Writes one event; returns 0, or errno of a failed write (EPIPE: the reader went away). */
static int print_event(struct cli_ctx *ctx, struct cli_line *line, const Errq__V1__Event *e)
{
	int rc = 0;
	if (ctx->args->output != CLI_OUT_TABLE) {
		json_t *o = cli_event_json(ctx, &e->base);
		if (!o)
			return ENOMEM;
		if (json_dumpf(o, ctx->out, JSON_COMPACT) || fputc('\n', ctx->out) == EOF)
			rc = errno ? errno : EIO;
		json_decref(o);
	} else {
		char ts[ERRQ_RFC3339_BUFSZ];
		const char *cells[TCOLS];
		unsigned char styles[TCOLS] = {
		    [T_TIME] = CLI_STYLE_DIM,
		    [T_FP] = CLI_STYLE_DIM,
		    [T_TYPE] = e->handled ? CLI_STYLE_NONE : CLI_STYLE_RED,
		};
		struct errq_buf b;
		/* the time of day ("18:03:11.482Z"): a tail runs now */
		cells[T_TIME] = e->received_at_unix_nano ? errq_fmt_rfc3339(ts, e->received_at_unix_nano) + 11 : "-";
		cells[T_FP] = e->fingerprint;
		cells[T_SERVICE] = e->service;
		cells[T_ENV] = e->environment;
		cells[T_TYPE] = e->error_type;
		cells[T_CODE] = e->error_code;
		cells[T_MESSAGE] = e->message;
		errq_buf_init(&b, TAIL_LINE_MAX);
		if (cli_line_format(line, cells, styles, ctx->width, ctx->color, &b))
			rc = ENOMEM;
		else if (fwrite(b.p, 1, b.len, ctx->out) != b.len)
			rc = errno ? errno : EIO;
		errq_buf_free(&b);
	}
	/* a tail is read as it comes: every event leaves at once, also into a pipe */
	if (!rc && fflush(ctx->out))
		rc = errno ? errno : EIO;
	return rc;
}

int cli_cmd_tail(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	Errq__V1__TailRequest req = ERRQ__V1__TAIL_REQUEST__INIT;
	struct cli_stream *s = NULL;
	struct cli_line line;
	struct sigaction sa, old_int, old_term;
	uint64_t seen = 0;
	int rc;

	req.service = (char *)a->service;
	req.environment = (char *)a->env;
	req.error_type = (char *)a->type_glob;
	req.error_code = (char *)a->code_glob;
	req.task = (char *)a->task_glob;
	char fp[CLI_FINGERPRINT_LEN + 1] = "";
	if (*a->group && (rc = cli_check_fingerprint("--group", a->group, fp)))
		return rc;
	req.fingerprint = fp;
	cli_line_init(&line, tcols, TCOLS);

	stop_flag = 0;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	/* a second Ctrl-C kills at once, should stopping ever hang */
	sa.sa_flags = SA_RESTART | SA_RESETHAND;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, NULL);

	ctx->keepalive = true;
	rc = cli_stream_open(ctx, "/errq.v1.Query/Tail", &req.base, &s);
	if (rc)
		goto out;
	if (a->output == CLI_OUT_TABLE && isatty(STDERR_FILENO))
		fprintf(stderr, "waiting for events at %s (Ctrl-C stops)\n", a->addr);

	for (;;) {
		ProtobufCMessage *msg;
		int code;
		enum cli_stream_next r =
		    cli_stream_next(s, &errq__v1__tail_message__descriptor, &msg, &stop_flag, &code);
		if (r == CLI_STREAM_STOPPED) {
			rc = 0;
			break;
		}
		if (r == CLI_STREAM_ENDED) {
			rc = code;
			break;
		}
		const Errq__V1__TailMessage *m = (const Errq__V1__TailMessage *)msg;
		int werr = 0;
		if (m->dropped)
			cli_error("the collector dropped %llu event%s for this tail: it could not keep up",
				  (unsigned long long)m->dropped, m->dropped == 1 ? "" : "s");
		if (m->event) {
			werr = print_event(ctx, &line, m->event);
			seen++;
		}
		protobuf_c_message_free_unpacked(msg, NULL);
		if (werr == EPIPE) {
			rc = 0; /* `errq tail | head`: the reader has what it wanted */
			break;
		}
		if (werr == ENOMEM) {
			cli_error("out of memory");
			rc = CLI_EXIT_USAGE;
			break;
		}
		if (werr) {
			rc = cli_output_error(werr);
			break;
		}
		if ((a->set & CLI_F_LIMIT) && seen >= a->limit) {
			rc = 0;
			break;
		}
	}
out:
	cli_stream_close(s);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	/* SIGPIPE stays ignored: exit() flushes what is left for a reader that went away */
	return rc;
}
