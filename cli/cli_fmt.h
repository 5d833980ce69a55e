/* cli_fmt.h: the pure parts of the errq CLI: exit codes, terminal text (width, sanitizing,
 * UTF-8-safe truncation), relative times, column fitting, tables and key=value lists.
 *
 * Nothing here talks to the network or reads the environment, so tests/unit/test_cli.c links
 * it directly (static library errq_cli_fmt).  The only output is cli_table_render, which writes
 * to the FILE it is given.
 *
 * Where each part lives: cli_fmt.c exit codes, error text and values (times, sizes);
 * cli_text.c terminal text (width, cells); cli_table.c column fitting, tables and streamed
 * lines; cli_detail.c detail views; cli_spark.c sparklines; cli_keys.c key=value lists,
 * circuit keys, matchers and alert ids.  cli_fmt_int.h is what they share. */
#ifndef ERRQ_CLI_FMT_H
#define ERRQ_CLI_FMT_H
#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "errq_str.h"

/* Exit codes (DESIGN.md, fixed).  A local failure (out of memory, stdout unwritable) also
 * exits with CLI_EXIT_USAGE: it is not the collector's fault. */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_USAGE = 1,
	CLI_EXIT_UNREACHABLE = 2, /* also: the collector failed or answered nonsense */
	CLI_EXIT_NOT_FOUND = 3,
	CLI_EXIT_REFUSED = 4,     /* authentication or role */
};

/* "1 rule", "2 rules", "0 rules": n and the noun for it into buf (one: the singular, many:
 * the plural).  Returns buf. */
char *cli_count(char *buf, size_t n, uint64_t count, const char *one, const char *many);

/* The exit code for a call that ended with status c (see docs/errq.1, EXIT STATUS). */
int cli_exit_for_status(grpc_status_code c);

/* The useful tail of a gRPC UNAVAILABLE details text, for "cannot reach collector at A: R":
 * "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:4770: Failed to
 * connect to remote host: Connection refused" -> "connection refused".  Empty details give
 * "unavailable".  out is always NUL-terminated, control characters become spaces. */
void cli_reach_reason(const char *details, char *out, size_t n);

/* Replaces control characters (and so newlines) in s with spaces, in place: error messages
 * are one line. */
void cli_one_line(char *s);

/* "250ms", "5s", "90s": the --timeout value as written back in messages. */
char *cli_fmt_ms(char *buf, size_t n, long ms);

/* "just now", "42s ago", "3m ago", "5h ago", "2d ago", "1y ago"; "in 3m" for a time ahead of
 * now (clock skew); "-" for t_ns == 0 (unknown).  Returns buf. */
char *cli_fmt_ago(char *buf, size_t n, uint64_t now_ns, uint64_t t_ns);

/* The time left until t_ns for people: "in 42s", "in 1m 57s", "in 2h 5m" (cli_fmt_span,
 * rounded up to the second); "due" when t_ns is not after now_ns; "-" for 0 (none).
 * Returns buf. */
char *cli_fmt_until(char *buf, size_t n, uint64_t now_ns, uint64_t t_ns);

/* "0 B", "512 B", "1.5 KiB", "12.3 MiB", "2.0 GiB" (binary units, one decimal).  Returns buf. */
char *cli_fmt_bytes(char *buf, size_t n, uint64_t bytes);

/* A span of time for people, its two largest units: "45s", "12m 3s", "3h 12m", "2d 4h".
 * Returns buf. */
char *cli_fmt_span(char *buf, size_t n, uint64_t ns);

/* Terminal columns taken by s[0..n) once sanitized as cli_cell_text does (wide East Asian
 * characters count 2, combining marks 0, everything else 1). */
size_t cli_text_width(const char *s, size_t n);

/* Appends s[0..n) to b made fit for one terminal cell: control characters become spaces (no
 * escape sequence from an event reaches the terminal), invalid UTF-8 bytes become U+FFFD, and
 * the text is cut on a character boundary to at most max_cols columns, the last of them an
 * ellipsis when anything was cut.  *cols (may be NULL) receives the columns written.
 * Returns 0, or -1 when b is full (b is unchanged then). */
#define CLI_ELLIPSIS "\xe2\x80\xa6" /* U+2026 */
int cli_cell_text(struct errq_buf *b, const char *s, size_t n, size_t max_cols, size_t *cols);

/* Appends s[0..n) to b with every invalid UTF-8 byte replaced by U+FFFD (control characters
 * kept: this is for JSON, which escapes them).  Returns 0 or -1 (b unchanged). */
int cli_utf8_fix(struct errq_buf *b, const char *s, size_t n);

/* ---- column fitting and tables ---- */

#define CLI_TABLE_MAX_COLS 16
#define CLI_TABLE_GAP 2           /* spaces between columns */
#define CLI_CELL_MAX 4096         /* bytes kept of one cell */
#define CLI_TABLE_MAX_ROWS 1000000

enum {
	CLI_COL_RIGHT = 1u << 0,      /* right-align (counts) */
	CLI_COL_HIDE_EMPTY = 1u << 1, /* drop the column when no row has a value */
	/* when it must be left out for the width (drop), its cells go before those of the
	 * table's last column as "(cell) ", cut never: what it says (a group's status) does
	 * not silently disappear */
	CLI_COL_FOLD = 1u << 2,
};

/* Cell styles, shown only when color is on. */
enum cli_style {
	CLI_STYLE_NONE,
	CLI_STYLE_BOLD,
	CLI_STYLE_DIM,
	CLI_STYLE_RED,
	CLI_STYLE_YELLOW,
	CLI_STYLE_GREEN,
};

struct cli_col {
	const char *title;
	unsigned flags;  /* CLI_COL_* */
	unsigned shrink; /* 0: never cut (ids, counts); else cut when too wide, the widest such
			  * column first (among equals, the higher shrink) */
	size_t min;      /* a cut column keeps at least this many columns */
	unsigned drop;   /* 0: always shown; else left out, highest first, when cutting is not
			  * enough to fit the width */
};

/* Widths for columns whose content needs natural[i] columns so that the row (with `gap`
 * spaces between columns) fits in `width`: columns with shrink > 0 give up space, the widest
 * first (so the widest are levelled down together; among equals the higher shrink first),
 * never below min.  When even that does not fit, the row is wider than `width` rather than
 * losing an id or a count.  out[i] <= natural[i].  Returns the total row width. */
size_t cli_fit_columns(const struct cli_col *cols, const size_t *natural, size_t ncols, size_t width,
		       size_t gap, size_t *out);

/* A table of sanitized cells (rows are kept until render, since every cell decides the
 * widths).  init allocates nothing; release frees everything and re-inits. */
struct cli_table {
	const struct cli_col *cols;
	size_t ncols;
	char **cells;          /* nrows * ncols, each sanitized and NUL-terminated */
	unsigned char *styles; /* nrows * ncols enum cli_style */
	size_t nrows, cap;
};

void cli_table_init(struct cli_table *t, const struct cli_col *cols, size_t ncols);
void cli_table_release(struct cli_table *t);
/* Adds one row of ncols cells (NULL = empty); styles may be NULL.  Returns 0 or -1 (out of
 * memory, or CLI_TABLE_MAX_ROWS reached). */
int cli_table_add(struct cli_table *t, const char *const *cells, const unsigned char *styles);
/* Writes the header and the rows fitted to `width` columns (cutting, then leaving out or
 * folding columns as struct cli_col says), without trailing spaces.
 * Returns 0 or -1 (out of memory or a write error on f). */
int cli_table_render(const struct cli_table *t, size_t width, bool color, FILE *f);

/* ---- sparklines ---- */

#define CLI_SPARK_LEVELS 8   /* U+2581 .. U+2588 */
#define CLI_SPARK_MAX_COLS 1440

/* Sums counts[0..n) into cols buckets, oldest first: bucket k holds counts[k*n/cols ..
 * (k+1)*n/cols), so every count lands in exactly one bucket and the newest bucket ends
 * with counts[n-1].  With n <= cols, one bucket per count.  Returns the buckets written
 * (min(n, cols), at most CLI_SPARK_MAX_COLS). */
size_t cli_spark_buckets(const uint64_t *counts, size_t n, uint64_t *out, size_t cols);

/* Appends a sparkline of counts[0..n) in at most cols columns (see cli_spark_buckets): a
 * space for an empty bucket, else one of the eight blocks scaled to the fullest bucket, the
 * smallest non-zero bucket at least the lowest block (a single event still shows).
 * *max (may be NULL) receives the fullest bucket.  Returns 0 or -1 (b unchanged). */
int cli_sparkline(struct errq_buf *b, const uint64_t *counts, size_t n, size_t cols, uint64_t *max);

/* ---- detail views (`errq group FP`, `errq event ID`, `errq status`) ----
 *
 * A list of "label  value" fields, with titled sections whose fields are indented by two.
 * Labels line up within a block (the fields between two section titles); values are
 * sanitized like table cells (nothing escapes to the terminal) and wrapped, at spaces when
 * possible, to the width, continuation lines under the value; a newline in a value starts a
 * new line.  Nothing is cut but labels (at CLI_DETAIL_LABEL_MAX columns) and values (at
 * CLI_DETAIL_VALUE_MAX bytes).  Adding never fails the caller: out of memory sets `failed`
 * and cli_detail_render returns -1. */

#define CLI_DETAIL_MAX_ITEMS 10000
#define CLI_DETAIL_LABEL_MAX 24
#define CLI_DETAIL_VALUE_MAX 65536
#define CLI_DETAIL_MIN_TEXT 20     /* value columns kept however narrow the terminal */
#define CLI_DETAIL_INDENT 2        /* of a section's fields and lines */

enum cli_detail_kind { CLI_DETAIL_FIELD, CLI_DETAIL_SECTION, CLI_DETAIL_TEXT };

struct cli_detail_item {
	unsigned char kind;  /* enum cli_detail_kind */
	unsigned char style; /* enum cli_style of the value (a section title is bold) */
	char *label;         /* FIELD only */
	char *value;
};

struct cli_detail {
	struct cli_detail_item *items;
	size_t n, cap;
	bool failed;
};

void cli_detail_init(struct cli_detail *d);
void cli_detail_release(struct cli_detail *d); /* frees everything and re-inits */
/* A field; a NULL or empty value adds nothing (absent fields are left out).  An empty label
 * leaves the label column blank (a second line for the field above). */
void cli_detail_field(struct cli_detail *d, const char *label, const char *value, unsigned char style);
void cli_detail_fieldf(struct cli_detail *d, const char *label, unsigned char style, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A section title (after a blank line); what follows until the next title is indented. */
void cli_detail_section(struct cli_detail *d, const char *title);
/* A line of text without a label (a stack frame); wrapped lines are indented two more. */
void cli_detail_text(struct cli_detail *d, const char *text, unsigned char style);
/* Writes the view fitted to width.  Returns 0, or -1 (out of memory while adding, or a
 * write error on f). */
int cli_detail_render(const struct cli_detail *d, size_t width, bool color, FILE *f);

/* ---- streamed lines (`errq tail` in table mode) ----
 *
 * One line per row without a header: a column is as wide as its widest value so far (up to
 * its max), so lines line up after the first few rows and never jump back; a column no row
 * has filled yet takes no room.  The last column gets what is left of the width (at least
 * CLI_LINE_LAST_MIN columns) and is cut there. */

#define CLI_LINE_MAX_COLS 8
#define CLI_LINE_LAST_MIN 20

struct cli_line_col {
	size_t max;     /* the widest this column grows (cells are cut beyond) */
	unsigned flags; /* CLI_COL_RIGHT */
};

struct cli_line {
	const struct cli_line_col *cols;
	size_t ncols;
	size_t w[CLI_LINE_MAX_COLS]; /* widths so far */
};

void cli_line_init(struct cli_line *l, const struct cli_line_col *cols, size_t ncols);
/* Appends one row (ncols cells, NULL = empty; styles may be NULL) and a newline to b,
 * without trailing spaces.  Returns 0 or -1 (b full; b unchanged). */
int cli_line_format(struct cli_line *l, const char *const *cells, const unsigned char *styles, size_t width,
		    bool color, struct errq_buf *b);

/* ---- key=value lists ("field=value,field=value", the CLI form of a circuit key) ---- */

#define CLI_KV_MAX 32

struct cli_kv {
	char *key;
	char *value;
};

/* Parses s into *kv (n pairs, n >= 1, in the order written; free with cli_kv_free).  Keys are
 * [A-Za-z0-9_.-]+ and unique; a value may be empty; "\," "\=" and "\\" escape inside values.
 * Returns 0, or -1 with a lowercase reason in err. */
int cli_kv_parse(const char *s, struct cli_kv **kv, size_t *n, char *err, size_t errlen);
void cli_kv_free(struct cli_kv *kv, size_t n); /* accepts NULL */
/* ---- circuit keys and silence matchers ("field=value,field=value") ----
 *
 * A circuit key is the rule's group_by fields in order, "field=value" joined by ',', with
 * '\', ',' and '=' in values escaped by '\' (docs/alerts.md); a rule without group_by has the
 * empty key, and a rule's overflow circuit the key "(overflow)".  The collector's parser is
 * server/rules.c's rules_key_next; the CLI does not link the server, so this is the same
 * parser again. */

#define CLI_KEY_FIELD_MAX 160   /* a field: "details." and a detail key of up to 128 bytes */
#define CLI_KEY_VALUE_MAX 4096  /* a value (a key is shorter than 4 KiB) */
#define CLI_ALERT_ID_LEN 16     /* bytes of an alert id (32 hex digits) */
#define CLI_ALERT_SHORT_HEX 12  /* hex digits of an alert's short id (its last ones: random) */
#define CLI_ALERT_MIN_HEX 6     /* hex digits a short id needs at least */

/* Reads the next "field=value" of key at *p into field and value (unescaped, NUL-terminated,
 * cut to their buffers) and moves *p past it.  Returns 1, 0 at the end of the key, or -1 when
 * the key is malformed (no '=', an empty field, '\' in a field, a trailing ',' or '\'). */
int cli_key_next(const char **p, char *field, size_t fieldsz, char *value, size_t valuesz);

/* The key as a JSON object keyed by its fields in order: {"service": "checkout",
 * "error_type": "TimeoutError"}; {} for the empty key, and for one that is not field=value
 * pairs (the overflow circuit's "(overflow)").  Invalid UTF-8 bytes become U+FFFD.  Returns
 * a new reference, or NULL when out of memory. */
struct json_t;
struct json_t *cli_key_json(const char *key);

/* The --match values ("field=glob", checked by cli_match_valid) joined into the API's
 * silence matchers: "field=glob,field=glob", each glob with '\', ',' and '=' escaped by '\'
 * (so it reads back with cli_key_next).  Returns 0, or -1 when out is too small. */
int cli_matchers_join(const char *const *match, size_t n, char *out, size_t outsz);

/* An alert id as given on the command line: 32 hex digits (or the UUID form), returns 1
 * with the id in out; CLI_ALERT_MIN_HEX to 31 hex digits (the short id errq shows, its
 * last digits), returns 0 with them in lowercase in suffix (32 bytes or more); else -1. */
int cli_alert_id_parse(const char *s, uint8_t out[CLI_ALERT_ID_LEN], char *suffix, size_t suffixsz);
/* The short id of an alert: the last CLI_ALERT_SHORT_HEX of its hex digits, into buf. */
char *cli_alert_short_id(char *buf, size_t n, const uint8_t *id, size_t len);

/* Appends one notifier's delivery to a DELIVERY cell: "ops:delivered", with the attempts
 * made in parentheses when more than one ("pager:dead(8)"), separated from what b holds by
 * a space.  Returns 0 or -1 (b full; b unchanged). */
int cli_fmt_delivery(struct errq_buf *b, const char *notifier, const char *status, uint32_t attempts);
#endif
