/* cli.h: what errq's subcommands share: the run context, calls to the collector (with the
 * status -> message -> exit code mapping), cursor pagination, and output.
 *
 * A list subcommand is three pieces: a request it fills from ctx->args, cli_list() to collect
 * the rows page by page, and a struct cli_view (JSON object and table cells of one row) for
 * cli_print_rows().  A one-item subcommand (`errq group FP`, `errq event ID`) is cli_call()
 * and cli_print_json() of one object.  Single-threaded: a command runs on main's thread. */
#ifndef ERRQ_CLI_H
#define ERRQ_CLI_H
#include <grpc/grpc.h>
#include <jansson.h>
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
	bool color;                 /* stdout is a terminal and no --no-color / NO_COLOR */
	size_t width;               /* table width: the terminal's, else $COLUMNS, else 120 */
	uint64_t now_ns;            /* one "now" for the whole command (relative times, --since) */
	uint64_t deadline_mono_ns;  /* --timeout covers every call of the command together */
	grpc_channel *ch;           /* made on the first call (after grpc_init), else NULL */
};

/* Fills ctx for one run of a (terminal probing, environment); now_ns is the "now" --since
 * was parsed against.  Allocates nothing. */
void cli_ctx_init(struct cli_ctx *ctx, const struct cli_args *a, const struct cli_cmd *cmds, size_t ncmds,
		  uint64_t now_ns);
/* Closes the channel and shuts gRPC down when a call was made. */
void cli_ctx_release(struct cli_ctx *ctx);

/* "errq: <message>\n" on stderr, with control characters flattened: one line, always. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One unary call to method ("/errq.v1.Query/ListEvents").  Returns 0 with *resp unpacked
 * (the caller frees it with protobuf_c_message_free_unpacked), or an exit code > 0 after
 * printing the one-line error (unreachable, refused, not found ...). */
int cli_call(struct cli_ctx *ctx, const char *method, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp);

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

/* How a kind of row prints. */
struct cli_view {
	const char *noun; /* "events": "no events" on stderr for an empty table */
	const struct cli_col *cols;
	size_t ncols;
	json_t *(*to_json)(const struct cli_ctx *ctx, const ProtobufCMessage *row); /* NULL: out of memory */
	void (*to_cells)(const struct cli_ctx *ctx, const ProtobufCMessage *row, struct cli_cells *c);
};

/* Prints rows per -o: a table (a note on stderr when empty), one JSON array, or JSON lines.
 * Returns 0 or an exit code after printing the error. */
int cli_print_rows(struct cli_ctx *ctx, const struct cli_view *v, const struct cli_rows *rows);
/* "errq: cannot write output: <strerror(err)>"; returns CLI_EXIT_USAGE. */
int cli_output_error(int err);
/* Prints one JSON document (takes the reference).  Returns 0 or an exit code. */
int cli_print_json(struct cli_ctx *ctx, json_t *doc);

/* JSON values following DESIGN.md's conventions.  Each returns a new reference or NULL. */
json_t *cli_json_str(const char *s);     /* invalid UTF-8 bytes become U+FFFD; NULL s -> "" */
json_t *cli_json_time(uint64_t ns);      /* RFC 3339 UTC with ms and Z; null for 0 (unknown) */
json_t *cli_json_hex(ProtobufCBinaryData b); /* lowercase hex */
json_t *cli_json_uint(uint64_t v);
/* json_object_set_new that takes any key (invalid UTF-8 bytes become U+FFFD) and, instead of
 * returning an error, clears *ok (a NULL value, i.e. out of memory, clears it too). */
void cli_json_put(json_t *o, const char *key, json_t *value, bool *ok);

/* Cell helpers: relative time, decimal count, hex id into c->buf[i]. */
void cli_cell_ago(const struct cli_ctx *ctx, struct cli_cells *c, size_t i, uint64_t ns);
void cli_cell_uint(struct cli_cells *c, size_t i, uint64_t v);
void cli_cell_hex(struct cli_cells *c, size_t i, ProtobufCBinaryData b);

/* Subcommands (cmd_<name>.c). */
int cli_cmd_events(struct cli_ctx *ctx);
int cli_cmd_groups(struct cli_ctx *ctx);
#endif
