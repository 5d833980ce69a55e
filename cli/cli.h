/* cli.h: what errq's subcommands share: the run context, calls to the collector (with the
 * status -> message -> exit code mapping), cursor pagination, a server stream, and output.
 *
 * A list subcommand is three pieces: a request it fills from ctx->args, cli_list() to collect
 * the rows page by page, and a struct cli_view (JSON object and table cells of one row) for
 * cli_print_rows().  A one-item subcommand (`errq group FP`, `errq event ID`) is cli_call(),
 * then cli_print_json() of one object or cli_print_detail() of a detail view (cli_fmt.h).
 * `errq tail` reads a server stream (cli_stream_*).  Single-threaded: a command runs on
 * main's thread. */
#ifndef ERRQ_CLI_H
#define ERRQ_CLI_H
#include <grpc/grpc.h>
#include <jansson.h>
#include <signal.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli_args.h"
#include "cli_fmt.h"

#define CLI_PAGE_MAX 1000 /* rows the collector returns at most per page */
#define CLI_DEFAULT_WIDTH 120

struct cli_ctx {
	const struct cli_args *args;
	const struct cli_cmd *cmds; /* the subcommand table, for `errq help` */
	size_t ncmds;
	FILE *out;                  /* stdout */
	bool tty;                   /* stdout is a terminal */
	bool color;                 /* stdout is a terminal and no --no-color / NO_COLOR */
	size_t width;               /* table width: the terminal's, else $COLUMNS, else 120 */
	uint64_t now_ns;            /* one "now" for the whole command (relative times, --since) */
	uint64_t deadline_mono_ns;  /* --timeout covers every call of the command together */
	grpc_channel *ch;           /* made on the first call (after grpc_init), else NULL */
	grpc_metadata auth_md;      /* "authorization: Bearer TOKEN" with ch when a token is set */
	size_t n_md;                /* 0 or 1: the metadata every call sends */
	bool keepalive;             /* make ch with HTTP/2 keepalive pings (long streams) */
	char what[128];             /* what a NOT_FOUND means: "group 9a81..." ("" = the details) */
	char *tls_pem[3];           /* --ca, --cert, --key read by cli_tls_load (NULL: not given) */
};

/* Fills ctx for one run of a (terminal probing, environment); now_ns is the "now" --since
 * was parsed against.  Allocates nothing. */
void cli_ctx_init(struct cli_ctx *ctx, const struct cli_args *a, const struct cli_cmd *cmds, size_t ncmds,
		  uint64_t now_ns);
/* Reads the PEM files of --ca, --cert and --key (at most CLI_PEM_MAX bytes each) for the
 * channel.  0, or -1 with "--ca: cannot read 'FILE': reason" in err (a usage error). */
#define CLI_PEM_MAX (1u << 20)
int cli_tls_load(struct cli_ctx *ctx, char *err, size_t errsz);
/* Closes the channel and shuts gRPC down when a call was made; wipes and frees the PEMs. */
void cli_ctx_release(struct cli_ctx *ctx);

/* "errq: <message>\n" on stderr, with control characters flattened: one line, always. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the one-line error for a call of method that ended with status c (details as the
 * collector sent them) and returns the exit code (cli_exit_for_status). */
int cli_report_status(struct cli_ctx *ctx, const char *method, grpc_status_code c, const char *details);
/* "ListEvents" of "/errq.v1.Query/ListEvents" */
const char *cli_short_method(const char *method);
/* The channel to --addr (over TLS with --tls or --ca), made on first use (grpc_init then), or
 * NULL when out of memory. */
grpc_channel *cli_channel(struct cli_ctx *ctx);

/* One unary call to method ("/errq.v1.Query/ListEvents").  Returns 0 with *resp unpacked
 * (the caller frees it with protobuf_c_message_free_unpacked), or an exit code > 0 after
 * printing the one-line error (unreachable, refused, not found ...). */
int cli_call(struct cli_ctx *ctx, const char *method, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp);

/* Up to n calls of one method, CLI_EACH_INFLIGHT at a time on one completion queue, each
 * within budget_ms and the command's deadline: for what only decorates an answer (the
 * sparklines of `errq groups`).  resps[i] receives the unpacked answer of reqs[i] or stays
 * NULL when that call failed; nothing is printed.  Returns how many succeeded; after an
 * UNIMPLEMENTED answer no further calls are started.  The caller frees every resps[i]. */
#define CLI_EACH_INFLIGHT 16
size_t cli_call_each(struct cli_ctx *ctx, const char *method, const ProtobufCMessage *const *reqs, size_t n,
		     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resps, long budget_ms);

/* Rows collected over pages.  The rows point into the pages, which it owns. */
struct cli_rows {
	ProtobufCMessage **pages;
	size_t npages, pages_cap;
	const ProtobufCMessage **rows;
	size_t nrows, rows_cap;
};

void cli_rows_init(struct cli_rows *r);
void cli_rows_release(struct cli_rows *r); /* frees pages and rows, re-inits */

/* Calls a list method page after page until `limit` rows are in or the collector says there
 * is no more.  By convention (query.proto) the request has `uint32 limit` and `bytes cursor`,
 * the response a repeated message field named rows_field and `bytes next_cursor`; cli_list
 * sets limit and cursor itself (and leaves them zeroed).  Returns 0 or an exit code > 0 after
 * printing the error (rows already collected stay in out for the caller to release). */
int cli_list(struct cli_ctx *ctx, const char *method, ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, const char *rows_field, uint32_t limit,
	     struct cli_rows *out);

/* One table row being made: text[i] points at a row's string or into buf[i]. */
#define CLI_CELL_BUFSZ 48
struct cli_cells {
	const char *text[CLI_TABLE_MAX_COLS];
	unsigned char style[CLI_TABLE_MAX_COLS];
	char buf[CLI_TABLE_MAX_COLS][CLI_CELL_BUFSZ];
};

/* How a kind of row prints.  to_cells gets the row's index in the rows and the view (whose
 * data may hold what a command fetched besides the rows, such as sparklines). */
struct cli_view {
	const char *noun; /* "events": "no events" on stderr for an empty table */
	const struct cli_col *cols;
	size_t ncols;
	json_t *(*to_json)(const struct cli_ctx *ctx, const ProtobufCMessage *row); /* NULL: out of memory */
	void (*to_cells)(const struct cli_ctx *ctx, const struct cli_view *v, size_t index,
			 const ProtobufCMessage *row, struct cli_cells *c);
	const void *data;
};

/* Prints rows per -o: a table (a note on stderr when empty), one JSON array, or JSON lines.
 * Returns 0 or an exit code after printing the error. */
int cli_print_rows(struct cli_ctx *ctx, const struct cli_view *v, const struct cli_rows *rows);
/* "errq: cannot write output: <strerror(err)>"; returns CLI_EXIT_USAGE. */
int cli_output_error(int err);
/* Prints one JSON document (takes the reference): indented, or on one line with -o jsonl.
 * Returns 0 or an exit code. */
int cli_print_json(struct cli_ctx *ctx, json_t *doc);

/* JSON values following DESIGN.md's conventions.  Each returns a new reference or NULL. */
json_t *cli_json_str(const char *s);     /* invalid UTF-8 bytes become U+FFFD; NULL s -> "" */
json_t *cli_json_time(uint64_t ns);      /* RFC 3339 UTC with ms and Z; null for 0 (unknown) */
json_t *cli_json_hex(ProtobufCBinaryData b); /* lowercase hex */
json_t *cli_json_uint(uint64_t v);
/* json_object_set_new that takes any key (invalid UTF-8 bytes become U+FFFD) and, instead of
 * returning an error, clears *ok (a NULL value, i.e. out of memory, clears it too). */
void cli_json_put(json_t *o, const char *key, json_t *value, bool *ok);
/* o when every cli_json_put into it succeeded (ok), else NULL (o is released). */
json_t *cli_json_done(json_t *o, bool ok);

/* Cell helpers: relative time, decimal count, hex id into c->buf[i]. */
void cli_cell_ago(const struct cli_ctx *ctx, struct cli_cells *c, size_t i, uint64_t ns);
void cli_cell_uint(struct cli_cells *c, size_t i, uint64_t v);
void cli_cell_hex(struct cli_cells *c, size_t i, ProtobufCBinaryData b);

/* A server-streaming call (cli_stream.c): started with no deadline (--timeout bounds only
 * getting a connection), read message by message, cancelled on a stop flag that a signal
 * handler sets.  Single-threaded like everything here. */
struct cli_stream;
enum cli_stream_next {
	CLI_STREAM_MSG,     /* *msg holds the next message (free it) */
	CLI_STREAM_STOPPED, /* *stop was set: the call is cancelled */
	CLI_STREAM_ENDED,   /* the call ended: an error is printed, *exit_code says which */
};
/* Starts method with req.  Returns 0 or an exit code after printing the error. */
int cli_stream_open(struct cli_ctx *ctx, const char *method, const ProtobufCMessage *req, struct cli_stream **out);
/* Waits for the next message, looking at *stop every CLI_STREAM_POLL_MS. */
#define CLI_STREAM_POLL_MS 100
enum cli_stream_next cli_stream_next(struct cli_stream *s, const ProtobufCMessageDescriptor *desc,
				     ProtobufCMessage **msg, volatile const sig_atomic_t *stop, int *exit_code);
/* Cancels the call if it is still running, waits for gRPC to let go of it, frees s (NULL ok). */
void cli_stream_close(struct cli_stream *s);

/* Views of one item, shared by the subcommands that show it. */
json_t *cli_event_json(const struct cli_ctx *ctx, const ProtobufCMessage *event);
json_t *cli_group_json(const struct cli_ctx *ctx, const ProtobufCMessage *group);
/* "3m ago (2026-11-25T18:03:11.482Z)" into buf ("-" for 0). */
char *cli_fmt_when(const struct cli_ctx *ctx, char *buf, size_t n, uint64_t ns);
/* The event's fields, frames and details into d (full: every field; else what a group's
 * latest event adds to the group's view). */
void cli_event_detail(const struct cli_ctx *ctx, struct cli_detail *d, const ProtobufCMessage *event, bool full);
/* Prints d to ctx->out fitted to the width.  Returns 0 or an exit code. */
int cli_print_detail(struct cli_ctx *ctx, const struct cli_detail *d);
/* Prints one answer m per -o: the JSON object to_json makes, or the detail view to_detail
 * fills.  Returns 0 or an exit code. */
int cli_print_item(struct cli_ctx *ctx, const ProtobufCMessage *m,
		   json_t *(*to_json)(const struct cli_ctx *ctx, const ProtobufCMessage *m),
		   void (*to_detail)(const struct cli_ctx *ctx, struct cli_detail *d, const ProtobufCMessage *m));
/* For commands that take an event id / a fingerprint: parses argv[0] (a fingerprint
 * lowercased into fp), printing the usage error: "invalid event id 'X' ..." (the same
 * word, and exit 1, for every malformed id; a well-formed one the collector does not have
 * is "... not found", exit 3).  Return 0 or CLI_EXIT_USAGE. */
int cli_arg_event_id(const struct cli_ctx *ctx, uint8_t id[CLI_EVENT_ID_LEN]);
int cli_arg_fingerprint(const struct cli_ctx *ctx, char fp[CLI_FINGERPRINT_LEN + 1]);
/* The same for a fingerprint s given as what ("--group"). */
int cli_check_fingerprint(const char *what, const char *s, char fp[CLI_FINGERPRINT_LEN + 1]);

/* `errq --help` (c NULL) or `errq help CMD` to f; returns the exit code (cli_cmds.c). */
int cli_help_to(FILE *f, const struct cli_cmd *c);

/* Subcommands (cmd_<name>.c). */
int cli_cmd_events(struct cli_ctx *ctx);
int cli_cmd_event(struct cli_ctx *ctx);
int cli_cmd_groups(struct cli_ctx *ctx);
int cli_cmd_group(struct cli_ctx *ctx);
int cli_cmd_resolve(struct cli_ctx *ctx);
int cli_cmd_ignore(struct cli_ctx *ctx);
int cli_cmd_unresolve(struct cli_ctx *ctx);
int cli_cmd_explain(struct cli_ctx *ctx);
int cli_cmd_status(struct cli_ctx *ctx);
int cli_cmd_tail(struct cli_ctx *ctx);
int cli_cmd_circuits(struct cli_ctx *ctx);        /* cmd_alerts.c */
int cli_cmd_explain_circuit(struct cli_ctx *ctx);
int cli_cmd_alerts(struct cli_ctx *ctx);
int cli_cmd_alert(struct cli_ctx *ctx);
int cli_cmd_alerts_replay(struct cli_ctx *ctx);
int cli_cmd_rules_list(struct cli_ctx *ctx);      /* cmd_rules.c */
int cli_cmd_rules_reload(struct cli_ctx *ctx);
int cli_cmd_rules_check(struct cli_ctx *ctx);
int cli_cmd_token_new(struct cli_ctx *ctx);
int cli_cmd_silence_add(struct cli_ctx *ctx);     /* cmd_silence.c */
int cli_cmd_silence_list(struct cli_ctx *ctx);
int cli_cmd_silence_expire(struct cli_ctx *ctx);
int cli_cmd_admin_backup(struct cli_ctx *ctx);    /* cmd_admin.c */

/* A circuit key (or silence matchers) into o as "<name>" (an object keyed by the fields,
 * cli_key_json) and "<name>_text" (the string, as errq takes it on the command line). */
void cli_json_key(json_t *o, const char *name, const char *key, bool *ok);
/* One unary call whose answer is printed as is: the rows of a response that is not paged
 * (ListCircuits) as a struct cli_rows that borrows them (no cli_rows_release). */
void cli_rows_borrow(struct cli_rows *r, ProtobufCMessage *const *rows, size_t n);
#endif
