/* cli_fmt.c: exit codes, terminal text, relative times, column fitting, tables and key=value
 * lists for the errq CLI.  Pure: see cli_fmt.h. */
#include "cli_fmt.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "errq_time.h"
#include "rules.h"
#include "errq_banned.h"

int cli_exit_for_status(grpc_status_code c)
{
	switch (c) {
	case GRPC_STATUS_OK:
		return CLI_EXIT_OK;
	case GRPC_STATUS_INVALID_ARGUMENT: /* a usage problem the server saw */
	case GRPC_STATUS_ALREADY_EXISTS:   /* admin backup: the file is there (--force) */
		return CLI_EXIT_USAGE;
	case GRPC_STATUS_NOT_FOUND:
	case GRPC_STATUS_FAILED_PRECONDITION: /* nothing to act on: no dead delivery, no storage */
		return CLI_EXIT_NOT_FOUND;
	case GRPC_STATUS_UNAUTHENTICATED:
	case GRPC_STATUS_PERMISSION_DENIED:
		return CLI_EXIT_REFUSED;
	default: /* UNAVAILABLE, DEADLINE_EXCEEDED and every failure of the collector */
		return CLI_EXIT_UNREACHABLE;
	}
}

void cli_one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

void cli_reach_reason(const char *details, char *out, size_t n)
{
	if (!n)
		return;
	const char *p = details ? details : "";
	/* gRPC nests causes as "a: b: c"; the innermost one says what went wrong */
	const char *last = NULL;
	for (const char *q = strstr(p, ": "); q; q = strstr(q + 2, ": "))
		last = q + 2;
	if (last && *last)
		p = last;
	while (*p == ' ')
		p++;
	if (!*p)
		p = "unavailable";
	errq_snprintf(out, n, "%s", p);
	size_t l = strlen(out);
	while (l > 0 && (out[l - 1] == ' ' || out[l - 1] == '.'))
		out[--l] = '\0';
	/* "Connection refused" -> "connection refused", but leave "DNS ..." alone */
	if (isupper((unsigned char)out[0]) && islower((unsigned char)out[1]))
		out[0] = (char)tolower((unsigned char)out[0]);
	cli_one_line(out);
}

char *cli_fmt_ms(char *buf, size_t n, long ms)
{
	if (ms >= 1000 && ms % 100 == 0 && ms % 1000)
		errq_snprintf(buf, n, "%ld.%lds", ms / 1000, ms % 1000 / 100);
	else if (ms % 1000)
		errq_snprintf(buf, n, "%ldms", ms);
	else
		errq_snprintf(buf, n, "%lds", ms / 1000);
	return buf;
}

static void fmt_span(char *buf, size_t n, uint64_t secs)
{
	if (secs < 60)
		errq_snprintf(buf, n, "%llus", (unsigned long long)secs);
	else if (secs < 3600)
		errq_snprintf(buf, n, "%llum", (unsigned long long)(secs / 60));
	else if (secs < 86400)
		errq_snprintf(buf, n, "%lluh", (unsigned long long)(secs / 3600));
	else if (secs < 365 * 86400ULL)
		errq_snprintf(buf, n, "%llud", (unsigned long long)(secs / 86400));
	else
		errq_snprintf(buf, n, "%lluy", (unsigned long long)(secs / (365 * 86400ULL)));
}

char *cli_fmt_ago(char *buf, size_t n, uint64_t now_ns, uint64_t t_ns)
{
	char span[32];
	if (t_ns == 0) {
		errq_snprintf(buf, n, "-");
	} else if (t_ns > now_ns) {
		uint64_t secs = (t_ns - now_ns) / ERRQ_NS_PER_SEC;
		if (secs < 2) {
			errq_snprintf(buf, n, "just now");
		} else {
			fmt_span(span, sizeof(span), secs);
			errq_snprintf(buf, n, "in %s", span);
		}
	} else {
		uint64_t secs = (now_ns - t_ns) / ERRQ_NS_PER_SEC;
		if (secs < 1) {
			errq_snprintf(buf, n, "just now");
		} else {
			fmt_span(span, sizeof(span), secs);
			errq_snprintf(buf, n, "%s ago", span);
		}
	}
	return buf;
}

char *cli_fmt_until(char *buf, size_t n, uint64_t now_ns, uint64_t t_ns)
{
	char span[32];
	if (t_ns == 0) {
		errq_snprintf(buf, n, "-");
	} else if (t_ns <= now_ns) {
		errq_snprintf(buf, n, "due");
	} else {
		uint64_t secs = (t_ns - now_ns + ERRQ_NS_PER_SEC - 1) / ERRQ_NS_PER_SEC;
		errq_snprintf(buf, n, "in %s", cli_fmt_span(span, sizeof(span), secs * ERRQ_NS_PER_SEC));
	}
	return buf;
}

char *cli_fmt_bytes(char *buf, size_t n, uint64_t bytes)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	if (bytes < 1024) {
		errq_snprintf(buf, n, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	/* tenths of the unit, rounded: 1536 -> 15 tenths of a KiB */
	size_t u = 0;
	uint64_t div = 1024;
	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes / div >= 1024) {
		div *= 1024;
		u++;
	}
	unsigned long long tenths = (unsigned long long)(((long double)bytes * 10 / (long double)div) + 0.5L);
	if (tenths >= 10240 && u + 1 < sizeof(units) / sizeof(units[0])) {
		/* 1023.96 KiB rounds to 1024.0: say 1.0 MiB */
		u++;
		tenths = 10;
	}
	errq_snprintf(buf, n, "%llu.%llu %s", tenths / 10, tenths % 10, units[u]);
	return buf;
}

char *cli_fmt_span(char *buf, size_t n, uint64_t ns)
{
	uint64_t s = ns / ERRQ_NS_PER_SEC;
	unsigned long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
	if (d)
		errq_snprintf(buf, n, "%llud %lluh", d, h);
	else if (h)
		errq_snprintf(buf, n, "%lluh %llum", h, m);
	else if (m)
		errq_snprintf(buf, n, "%llum %llus", m, sec);
	else
		errq_snprintf(buf, n, "%llus", sec);
	return buf;
}

/* ---- code points ---- */

#define REPLACEMENT 0xFFFDu

/* Decodes the character at s[*i] and advances *i past it.  An invalid byte decodes as
 * U+FFFD and advances by one. */
static uint32_t next_cp(const unsigned char *s, size_t n, size_t *i)
{
	uint32_t c;
	size_t len = errq_utf8_decode(s + *i, n - *i, &c);
	if (!len) {
		(*i)++;
		return REPLACEMENT;
	}
	*i += len;
	return c;
}

/* What a terminal cell shows instead of c: controls (C0, DEL, C1) would move the cursor or
 * start escape sequences. */
static uint32_t clean_cp(uint32_t c)
{
	if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0))
		return ' ';
	return c;
}

struct cp_range {
	uint32_t lo, hi;
};

/* Combining marks and invisible format characters (a short table, not all of Unicode's
 * zero-width characters: enough for the scripts error messages are written in). */
static const struct cp_range zero_width[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
    {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
    {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064}, {0x20D0, 0x20FF}, {0xFE00, 0xFE0F},
    {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF},
};

/* East Asian Wide and Fullwidth blocks, and the emoji blocks terminals draw two wide. */
static const struct cp_range wide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x2614, 0x2615},   {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},
    {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xA960, 0xA97F},   {0xAC00, 0xD7A3},
    {0xF900, 0xFAFF},   {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},
    {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD},
    {0x30000, 0x3FFFD},
};

static bool in_ranges(uint32_t c, const struct cp_range *r, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (c >= r[k].lo && c <= r[k].hi)
			return true;
	return false;
}

static size_t cp_width(uint32_t c)
{
	if (c < 0x300)
		return 1;
	if (in_ranges(c, zero_width, sizeof(zero_width) / sizeof(zero_width[0])))
		return 0;
	if (in_ranges(c, wide, sizeof(wide) / sizeof(wide[0])))
		return 2;
	return 1;
}

static size_t cp_encode(uint32_t c, char out[4])
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

size_t cli_text_width(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, w = 0;
	while (i < n)
		w += cp_width(clean_cp(next_cp(u, n, &i)));
	return w;
}

int cli_cell_text(struct errq_buf *b, const char *s, size_t n, size_t max_cols, size_t *cols)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t start = b->len, i = 0, w = 0;
	int rc = 0;
	bool cut = cli_text_width(s, n) > max_cols;
	/* when cutting, keep one column for the ellipsis */
	size_t budget = cut ? (max_cols ? max_cols - 1 : 0) : max_cols;
	while (i < n) {
		uint32_t c = clean_cp(next_cp(u, n, &i));
		size_t cw = cp_width(c);
		if (w + cw > budget)
			break;
		char enc[4];
		if (errq_buf_add(b, enc, cp_encode(c, enc))) {
			rc = -1;
			goto out;
		}
		w += cw;
	}
	if (cut && max_cols) {
		if (errq_buf_addstr(b, CLI_ELLIPSIS)) {
			rc = -1;
			goto out;
		}
		w++;
	}
out:
	if (rc) {
		b->len = start;
		if (b->p)
			b->p[start] = '\0';
		w = 0;
	}
	if (cols)
		*cols = w;
	return rc;
}

int cli_utf8_fix(struct errq_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t start = b->len, i = 0;
	while (i < n) {
		char enc[4];
		if (errq_buf_add(b, enc, cp_encode(next_cp(u, n, &i), enc))) {
			b->len = start;
			if (b->p)
				b->p[start] = '\0';
			return -1;
		}
	}
	/* an empty s still leaves a NUL-terminated (allocated) buffer */
	return errq_buf_add(b, "", 0);
}

/* ---- column fitting ---- */

size_t cli_fit_columns(const struct cli_col *cols, const size_t *natural, size_t ncols, size_t width,
		       size_t gap, size_t *out)
{
	size_t total = ncols ? gap * (ncols - 1) : 0;
	for (size_t k = 0; k < ncols; k++) {
		out[k] = natural[k];
		total += natural[k];
	}
	/* Level the widest cuttable column down to the next widest, and so on: a long service
	 * name and a long message share the loss rather than one of them taking it all. */
	while (total > width) {
		size_t pick = ncols;
		for (size_t k = 0; k < ncols; k++) {
			if (!cols[k].shrink || out[k] <= cols[k].min)
				continue;
			if (pick == ncols || out[k] > out[pick] ||
			    (out[k] == out[pick] && cols[k].shrink > cols[pick].shrink))
				pick = k;
		}
		if (pick == ncols)
			break; /* nothing left to cut: the row stays too wide */
		size_t give = out[pick] - cols[pick].min;
		for (size_t k = 0; k < ncols; k++) {
			if (k == pick || !cols[k].shrink || out[k] <= cols[k].min)
				continue;
			if (out[k] == out[pick])
				give = 1; /* a tie: take turns, one column at a time */
			else if (out[k] < out[pick] && out[pick] - out[k] < give)
				give = out[pick] - out[k];
		}
		if (give > total - width)
			give = total - width;
		out[pick] -= give;
		total -= give;
	}
	return total;
}

/* ---- tables ---- */

void cli_table_init(struct cli_table *t, const struct cli_col *cols, size_t ncols)
{
	t->cols = cols;
	t->ncols = ncols < CLI_TABLE_MAX_COLS ? ncols : CLI_TABLE_MAX_COLS;
	t->cells = NULL;
	t->styles = NULL;
	t->nrows = t->cap = 0;
}

void cli_table_release(struct cli_table *t)
{
	for (size_t k = 0; k < t->nrows * t->ncols; k++)
		free(t->cells[k]);
	free(t->cells);
	free(t->styles);
	cli_table_init(t, t->cols, t->ncols);
}

int cli_table_add(struct cli_table *t, const char *const *cells, const unsigned char *styles)
{
	int rc = -1;
	struct errq_buf b;
	/* sanitizing at most triples the bytes (an invalid byte becomes U+FFFD) */
	errq_buf_init(&b, 3 * CLI_CELL_MAX + 8);
	if (t->nrows >= CLI_TABLE_MAX_ROWS)
		goto out;
	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		char **nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc));
		if (!nc)
			goto out;
		t->cells = nc;
		unsigned char *ns = realloc(t->styles, ncap * t->ncols);
		if (!ns)
			goto out;
		t->styles = ns;
		t->cap = ncap;
	}
	size_t base = t->nrows * t->ncols, k;
	for (k = 0; k < t->ncols; k++) {
		const char *s = cells[k] ? cells[k] : "";
		size_t n = errq_utf8_trunc_len(s, strlen(s), CLI_CELL_MAX);
		errq_buf_reset(&b);
		/* sanitize now, cut later: the width is decided once every row is in */
		if (cli_cell_text(&b, s, n, (size_t)-1, NULL) ||
		    !(t->cells[base + k] = strdup(b.p ? b.p : "")))
			break;
		t->styles[base + k] = styles ? styles[k] : CLI_STYLE_NONE;
	}
	if (k < t->ncols) {
		while (k > 0)
			free(t->cells[base + --k]);
		goto out;
	}
	t->nrows++;
	rc = 0;
out:
	errq_buf_free(&b);
	return rc;
}

static const char *style_on(unsigned char s)
{
	switch (s) {
	case CLI_STYLE_BOLD: return "\x1b[1m";
	case CLI_STYLE_DIM: return "\x1b[2m";
	case CLI_STYLE_RED: return "\x1b[31m";
	case CLI_STYLE_YELLOW: return "\x1b[33m";
	case CLI_STYLE_GREEN: return "\x1b[32m";
	default: return NULL;
	}
}

/* Appends one cell cut to w columns and padded per its column (no padding after the last). */
static int add_cell(struct errq_buf *line, const struct cli_col *col, const char *s, size_t w, bool last,
		    unsigned char style, bool color)
{
	size_t used = 0, at = line->len;
	const char *on = color ? style_on(style) : NULL;
	if (on && errq_buf_addstr(line, on))
		return -1;
	if (cli_cell_text(line, s, strlen(s), w, &used))
		return -1;
	if (on && errq_buf_addstr(line, "\x1b[0m"))
		return -1;
	size_t pad = w > used ? w - used : 0;
	if (col->flags & CLI_COL_RIGHT) {
		/* move the cell right by pad spaces */
		size_t cell_len = line->len - at;
		for (size_t k = 0; k < pad; k++)
			if (errq_buf_add(line, " ", 1))
				return -1;
		memmove(line->p + at + pad, line->p + at, cell_len);
		memset(line->p + at, ' ', pad);
	} else if (!last) {
		for (size_t k = 0; k < pad; k++)
			if (errq_buf_add(line, " ", 1))
				return -1;
	}
	return 0;
}

int cli_table_render(const struct cli_table *t, size_t width, bool color, FILE *f)
{
	int rc = -1;
	size_t vis[CLI_TABLE_MAX_COLS], nvis = 0;
	struct cli_col vcols[CLI_TABLE_MAX_COLS];
	size_t natural[CLI_TABLE_MAX_COLS], w[CLI_TABLE_MAX_COLS];
	struct errq_buf line;
	/* a cell: up to 3 * CLI_CELL_MAX bytes of text, padding (at most its columns), colors */
	errq_buf_init(&line, (4 * CLI_CELL_MAX + 32) * CLI_TABLE_MAX_COLS);

	for (size_t c = 0; c < t->ncols; c++) {
		const struct cli_col *col = &t->cols[c];
		size_t nat = cli_text_width(col->title, strlen(col->title));
		bool any = false;
		for (size_t r = 0; r < t->nrows; r++) {
			const char *s = t->cells[r * t->ncols + c];
			size_t cw = cli_text_width(s, strlen(s));
			any = any || cw > 0;
			if (cw > nat)
				nat = cw;
		}
		if (!any && (col->flags & CLI_COL_HIDE_EMPTY))
			continue;
		vis[nvis] = c;
		vcols[nvis] = *col;
		if (col->shrink && vcols[nvis].min < cli_text_width(col->title, strlen(col->title)))
			vcols[nvis].min = cli_text_width(col->title, strlen(col->title)); /* whole headers */
		natural[nvis] = nat;
		nvis++;
	}
	/* Leave out droppable columns, highest drop first, until the rest fits with only the
	 * most cuttable columns (the message) cut: a whole service name or error type is worth
	 * more than a column of codes.  Then level every cuttable column (below). */
	for (;;) {
		struct cli_col first[CLI_TABLE_MAX_COLS];
		unsigned top = 0;
		for (size_t k = 0; k < nvis; k++)
			if (vcols[k].shrink > top)
				top = vcols[k].shrink;
		for (size_t k = 0; k < nvis; k++) {
			first[k] = vcols[k];
			if (first[k].shrink != top)
				first[k].shrink = 0;
		}
		if (cli_fit_columns(first, natural, nvis, width, CLI_TABLE_GAP, w) <= width)
			break;
		size_t pick = nvis;
		for (size_t k = 0; k < nvis; k++)
			if (vcols[k].drop && (pick == nvis || vcols[k].drop > vcols[pick].drop))
				pick = k;
		if (pick == nvis)
			break;
		nvis--;
		memmove(&vis[pick], &vis[pick + 1], (nvis - pick) * sizeof(vis[0]));
		memmove(&vcols[pick], &vcols[pick + 1], (nvis - pick) * sizeof(vcols[0]));
		memmove(&natural[pick], &natural[pick + 1], (nvis - pick) * sizeof(natural[0]));
	}
	cli_fit_columns(vcols, natural, nvis, width, CLI_TABLE_GAP, w);

	for (size_t r = 0; r <= t->nrows; r++) { /* row 0 is the header */
		errq_buf_reset(&line);
		for (size_t k = 0; k < nvis; k++) {
			size_t c = vis[k];
			const char *s = r ? t->cells[(r - 1) * t->ncols + c] : t->cols[c].title;
			unsigned char st = r ? t->styles[(r - 1) * t->ncols + c] : CLI_STYLE_BOLD;
			if (k && errq_buf_add(&line, "  ", CLI_TABLE_GAP))
				goto out;
			if (add_cell(&line, &vcols[k], s, w[k], k + 1 == nvis, st, color))
				goto out;
		}
		if (errq_buf_add(&line, "\n", 1) || fwrite(line.p, 1, line.len, f) != line.len)
			goto out;
	}
	rc = 0;
out:
	errq_buf_free(&line);
	return rc;
}

/* ---- sparklines ---- */

size_t cli_spark_buckets(const uint64_t *counts, size_t n, uint64_t *out, size_t cols)
{
	if (cols > CLI_SPARK_MAX_COLS)
		cols = CLI_SPARK_MAX_COLS;
	if (n <= cols)
		cols = n;
	for (size_t k = 0; k < cols; k++) {
		size_t lo = k * n / cols, hi = (k + 1) * n / cols;
		uint64_t sum = 0;
		for (size_t i = lo; i < hi; i++)
			sum = counts[i] > UINT64_MAX - sum ? UINT64_MAX : sum + counts[i];
		out[k] = sum;
	}
	return cols;
}

int cli_sparkline(struct errq_buf *b, const uint64_t *counts, size_t n, size_t cols, uint64_t *maxp)
{
	static const char *const blocks[CLI_SPARK_LEVELS] = {
	    "\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
	    "\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88",
	};
	uint64_t bucket[CLI_SPARK_MAX_COLS], max = 0;
	size_t start = b->len, nb = cli_spark_buckets(counts, n, bucket, cols);
	for (size_t k = 0; k < nb; k++)
		if (bucket[k] > max)
			max = bucket[k];
	if (maxp)
		*maxp = max;
	for (size_t k = 0; k < nb; k++) {
		int rc;
		if (!bucket[k]) {
			rc = errq_buf_add(b, " ", 1);
		} else {
			/* ceil(v * levels / max), in 1..levels; long double keeps huge counts exact enough */
			long double x = (long double)bucket[k] * CLI_SPARK_LEVELS / (long double)max;
			size_t level = (size_t)x;
			if ((long double)level < x)
				level++;
			if (level < 1)
				level = 1;
			if (level > CLI_SPARK_LEVELS)
				level = CLI_SPARK_LEVELS;
			rc = errq_buf_addstr(b, blocks[level - 1]);
		}
		if (rc) {
			b->len = start;
			if (b->p)
				b->p[start] = '\0';
			return -1;
		}
	}
	/* an empty line still leaves a NUL-terminated (allocated) buffer */
	return errq_buf_add(b, "", 0);
}

/* ---- detail views ---- */

void cli_detail_init(struct cli_detail *d)
{
	memset(d, 0, sizeof(*d));
}

void cli_detail_release(struct cli_detail *d)
{
	for (size_t k = 0; k < d->n; k++) {
		free(d->items[k].label);
		free(d->items[k].value);
	}
	free(d->items);
	cli_detail_init(d);
}

static void detail_add(struct cli_detail *d, unsigned char kind, const char *label, const char *value,
		       unsigned char style)
{
	if (d->failed)
		return;
	if (d->n >= CLI_DETAIL_MAX_ITEMS)
		goto fail;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 32;
		struct cli_detail_item *ni = realloc(d->items, ncap * sizeof(*ni));
		if (!ni)
			goto fail;
		d->items = ni;
		d->cap = ncap;
	}
	struct cli_detail_item *it = &d->items[d->n];
	size_t vlen = errq_utf8_trunc_len(value, strlen(value), CLI_DETAIL_VALUE_MAX);
	it->kind = kind;
	it->style = style;
	it->label = label ? strdup(label) : NULL;
	it->value = strndup(value, vlen);
	if ((label && !it->label) || !it->value) {
		free(it->label);
		free(it->value);
		goto fail;
	}
	d->n++;
	return;
fail:
	d->failed = true;
}

void cli_detail_field(struct cli_detail *d, const char *label, const char *value, unsigned char style)
{
	if (value && *value)
		detail_add(d, CLI_DETAIL_FIELD, label ? label : "", value, style);
}

void cli_detail_fieldf(struct cli_detail *d, const char *label, unsigned char style, const char *fmt, ...)
{
	struct errq_buf b;
	va_list ap;
	errq_buf_init(&b, CLI_DETAIL_VALUE_MAX);
	va_start(ap, fmt);
	int rc = errq_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (rc)
		d->failed = true;
	else
		cli_detail_field(d, label, b.p, style);
	errq_buf_free(&b);
}

void cli_detail_section(struct cli_detail *d, const char *title)
{
	detail_add(d, CLI_DETAIL_SECTION, NULL, title, CLI_STYLE_BOLD);
}

void cli_detail_text(struct cli_detail *d, const char *text, unsigned char style)
{
	if (text && *text)
		detail_add(d, CLI_DETAIL_TEXT, NULL, text, style);
}

/* Bytes of the (sanitized) s[0..n) that fill at most cols columns, broken after the last
 * space that fits when there is one; *next receives where the next line starts (past the
 * spaces at the break).  Always takes at least one character. */
static size_t wrap_take(const char *s, size_t n, size_t cols, size_t *next)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, w = 0, brk = 0;
	bool text = false; /* a break needs text before it (not an indent) */
	while (i < n) {
		size_t at = i;
		uint32_t c = next_cp(u, n, &i);
		size_t cw = cp_width(c);
		if (w + cw > cols && at > 0) {
			size_t end = c == ' ' && text ? at : brk ? brk : at;
			size_t nx = end;
			while (nx < n && s[nx] == ' ')
				nx++;
			*next = nx;
			return end;
		}
		if (c == ' ' && text && (at == 0 || s[at - 1] != ' '))
			brk = at;
		text = text || c != ' ';
		w += cw;
	}
	*next = n;
	return n;
}

static int put_spaces(struct errq_buf *b, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (errq_buf_add(b, " ", 1))
			return -1;
	return 0;
}

/* Appends the styled piece s[0..n) without its trailing spaces. */
static int put_piece(struct errq_buf *b, const char *s, size_t n, unsigned char style, bool color)
{
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (!n)
		return 0;
	const char *on = color ? style_on(style) : NULL;
	if (on && errq_buf_addstr(b, on))
		return -1;
	if (errq_buf_add(b, s, n))
		return -1;
	if (on && errq_buf_addstr(b, "\x1b[0m"))
		return -1;
	return 0;
}

/* Writes value (split at newlines, sanitized, wrapped to cols) into b: the first line from
 * where b is, the next ones after `cont` spaces. */
static int put_wrapped(struct errq_buf *b, struct errq_buf *tmp, const char *value, size_t cols, size_t cont,
		       unsigned char style, bool color)
{
	bool first = true;
	const char *p = value;
	for (;;) {
		size_t seg = strcspn(p, "\n");
		errq_buf_reset(tmp);
		if (cli_cell_text(tmp, p, seg, (size_t)-1, NULL) || errq_buf_add(tmp, "", 0))
			return -1;
		const char *t = tmp->p;
		size_t tn = tmp->len, off = 0;
		do {
			size_t next, take = wrap_take(t + off, tn - off, cols, &next);
			if (!first) {
				/* trailing spaces of the line before go; so do the indent of an empty line */
				while (b->len > 0 && b->p[b->len - 1] == ' ')
					b->len--;
				if (errq_buf_add(b, "\n", 1) || (take && put_spaces(b, cont)))
					return -1;
			}
			if (put_piece(b, t + off, take, style, color))
				return -1;
			first = false;
			off += next;
		} while (off < tn);
		if (!p[seg])
			break;
		p += seg + 1;
	}
	while (b->len > 0 && b->p[b->len - 1] == ' ')
		b->len--;
	return errq_buf_add(b, "\n", 1);
}

int cli_detail_render(const struct cli_detail *d, size_t width, bool color, FILE *f)
{
	int rc = -1;
	struct errq_buf line, tmp, lab;
	/* a value line: its bytes (at most 3x when sanitized), indents, colors */
	errq_buf_init(&line, 8 * CLI_DETAIL_VALUE_MAX + 4096);
	errq_buf_init(&tmp, 3 * CLI_DETAIL_VALUE_MAX + 16);
	errq_buf_init(&lab, 4 * CLI_DETAIL_LABEL_MAX + 16);
	if (d->failed)
		goto out;
	size_t labw = 0, indent = 0;
	for (size_t k = 0; k < d->n; k++) {
		const struct cli_detail_item *it = &d->items[k];
		errq_buf_reset(&line);
		if (k == 0 || d->items[k - 1].kind == CLI_DETAIL_SECTION) {
			/* a new block: its labels line up */
			labw = 0;
			for (size_t j = k; j < d->n && d->items[j].kind != CLI_DETAIL_SECTION; j++) {
				if (d->items[j].kind != CLI_DETAIL_FIELD)
					continue;
				size_t lw = cli_text_width(d->items[j].label, strlen(d->items[j].label));
				if (lw > labw)
					labw = lw;
			}
			if (labw > CLI_DETAIL_LABEL_MAX)
				labw = CLI_DETAIL_LABEL_MAX;
		}
		if (it->kind == CLI_DETAIL_SECTION) {
			if (k > 0 && errq_buf_add(&line, "\n", 1))
				goto out;
			indent = CLI_DETAIL_INDENT;
			if (put_wrapped(&line, &tmp, it->value, width > 1 ? width : 1, 0, it->style, color))
				goto out;
		} else if (it->kind == CLI_DETAIL_TEXT) {
			/* wrapped lines go two further in, so every line is cut to what they have */
			size_t cont = indent + 2;
			size_t avail = width > cont + CLI_DETAIL_MIN_TEXT ? width - cont : CLI_DETAIL_MIN_TEXT;
			if (put_spaces(&line, indent) ||
			    put_wrapped(&line, &tmp, it->value, avail, cont, it->style, color))
				goto out;
		} else {
			size_t used = 0, vcol = indent + labw + 2;
			size_t avail = width > vcol + CLI_DETAIL_MIN_TEXT ? width - vcol : CLI_DETAIL_MIN_TEXT;
			errq_buf_reset(&lab);
			if (put_spaces(&line, indent) ||
			    cli_cell_text(&lab, it->label, strlen(it->label), labw, &used) ||
			    errq_buf_add(&lab, "", 0) || errq_buf_addstr(&line, lab.p) ||
			    put_spaces(&line, labw - used + 2) ||
			    put_wrapped(&line, &tmp, it->value, avail, vcol, it->style, color))
				goto out;
		}
		if (fwrite(line.p, 1, line.len, f) != line.len)
			goto out;
	}
	rc = ferror(f) ? -1 : 0;
out:
	errq_buf_free(&line);
	errq_buf_free(&tmp);
	errq_buf_free(&lab);
	return rc;
}

/* ---- streamed lines ---- */

void cli_line_init(struct cli_line *l, const struct cli_line_col *cols, size_t ncols)
{
	memset(l, 0, sizeof(*l));
	l->cols = cols;
	l->ncols = ncols < CLI_LINE_MAX_COLS ? ncols : CLI_LINE_MAX_COLS;
}

int cli_line_format(struct cli_line *l, const char *const *cells, const unsigned char *styles, size_t width,
		    bool color, struct errq_buf *b)
{
	size_t start = b->len, used = 0, w[CLI_LINE_MAX_COLS];
	bool any = false;
	if (!l->ncols)
		return errq_buf_add(b, "\n", 1);
	for (size_t k = 0; k + 1 < l->ncols; k++) {
		const char *s = cells[k] ? cells[k] : "";
		size_t nat = cli_text_width(s, strlen(s));
		if (nat > l->cols[k].max)
			nat = l->cols[k].max;
		w[k] = nat > l->w[k] ? nat : l->w[k];
	}
	for (size_t k = 0; k < l->ncols; k++) {
		bool last = k + 1 == l->ncols;
		const char *s = cells[k] ? cells[k] : "";
		size_t cw;
		if ((!last && !w[k]) || (last && !*s))
			continue; /* nothing in this column yet */
		if (any && put_spaces(b, CLI_TABLE_GAP))
			goto fail;
		any = true;
		if (last) {
			cw = width > used + CLI_TABLE_GAP + CLI_LINE_LAST_MIN ? width - used - CLI_TABLE_GAP
									   : CLI_LINE_LAST_MIN;
			if (!used)
				cw = width > CLI_LINE_LAST_MIN ? width : CLI_LINE_LAST_MIN;
		} else {
			cw = w[k];
			used += (used ? CLI_TABLE_GAP : 0) + cw;
		}
		if (add_cell(b, &(struct cli_col){.flags = l->cols[k].flags}, s, cw, last,
			     styles ? styles[k] : CLI_STYLE_NONE, color))
			goto fail;
	}
	while (b->len > start && b->p[b->len - 1] == ' ')
		b->len--;
	if (errq_buf_add(b, "\n", 1))
		goto fail;
	for (size_t k = 0; k + 1 < l->ncols; k++)
		l->w[k] = w[k];
	return 0;
fail:
	b->len = start;
	if (b->p)
		b->p[start] = '\0';
	return -1;
}

/* ---- key=value lists ---- */

static bool key_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

void cli_kv_free(struct cli_kv *kv, size_t n)
{
	if (!kv)
		return;
	for (size_t k = 0; k < n; k++) {
		free(kv[k].key);
		free(kv[k].value);
	}
	free(kv);
}

int cli_kv_parse(const char *s, struct cli_kv **kvp, size_t *np, char *err, size_t errlen)
{
	int rc = -1;
	struct cli_kv *kv = NULL;
	size_t n = 0;
	struct errq_buf val;
	errq_buf_init(&val, 4096);
	const char *p = s;

	if (!*p) {
		errq_snprintf(err, errlen, "empty key (expected field=value,...)");
		goto out;
	}
	for (;;) {
		const char *k0 = p;
		while (key_char(*p))
			p++;
		size_t klen = (size_t)(p - k0);
		if (!klen || *p != '=') {
			errq_snprintf(err, errlen, "expected field=value at '%.40s'", k0);
			goto out;
		}
		p++;
		errq_buf_reset(&val);
		while (*p && *p != ',') {
			if (*p == '\\' && (p[1] == ',' || p[1] == '=' || p[1] == '\\'))
				p++;
			if (errq_buf_add(&val, p, 1)) {
				errq_snprintf(err, errlen, "value too long");
				goto out;
			}
			p++;
		}
		for (size_t k = 0; k < n; k++) {
			if (strlen(kv[k].key) == klen && !memcmp(kv[k].key, k0, klen)) {
				errq_snprintf(err, errlen, "field '%.*s' given twice", (int)klen, k0);
				goto out;
			}
		}
		if (n == CLI_KV_MAX) {
			errq_snprintf(err, errlen, "more than %d fields", CLI_KV_MAX);
			goto out;
		}
		struct cli_kv *nkv = realloc(kv, (n + 1) * sizeof(*nkv));
		if (!nkv) {
			errq_snprintf(err, errlen, "out of memory");
			goto out;
		}
		kv = nkv;
		kv[n].key = strndup(k0, klen);
		kv[n].value = strdup(val.p ? val.p : "");
		n++;
		if (!kv[n - 1].key || !kv[n - 1].value) {
			errq_snprintf(err, errlen, "out of memory");
			goto out;
		}
		if (!*p)
			break;
		p++; /* ',' */
	}
	*kvp = kv;
	*np = n;
	kv = NULL;
	n = 0;
	rc = 0;
out:
	cli_kv_free(kv, n);
	errq_buf_free(&val);
	return rc;
}

/* ---- circuit keys and silence matchers ---- */

int cli_key_next(const char **p, char *field, size_t fieldsz, char *value, size_t valuesz)
{
	return rules_key_next(p, field, fieldsz, value, valuesz); /* the collector's own reader */
}

/* A JSON string of s, invalid UTF-8 bytes replaced; NULL when out of memory. */
static json_t *json_text(const char *s, struct errq_buf *tmp)
{
	size_t n = strlen(s);
	if (errq_utf8_valid(s, n, NULL))
		return json_stringn(s, n);
	errq_buf_reset(tmp);
	return cli_utf8_fix(tmp, s, n) ? NULL : json_stringn(tmp->p, tmp->len);
}

json_t *cli_key_json(const char *key)
{
	json_t *o = json_object();
	char *field = malloc(CLI_KEY_FIELD_MAX), *value = malloc(CLI_KEY_VALUE_MAX);
	struct errq_buf tmp;
	const char *p = key ? key : "";
	errq_buf_init(&tmp, 4 * CLI_KEY_VALUE_MAX);
	if (!o || !field || !value)
		goto fail;
	while (cli_key_next(&p, field, CLI_KEY_FIELD_MAX, value, CLI_KEY_VALUE_MAX) == 1) {
		json_t *v = json_text(value, &tmp);
		if (!v)
			goto fail;
		if (!errq_utf8_valid(field, strlen(field), NULL)) {
			char *k = NULL;
			errq_buf_reset(&tmp);
			if (cli_utf8_fix(&tmp, field, strlen(field)) || !(k = strdup(tmp.p))) {
				json_decref(v);
				goto fail;
			}
			int rc = json_object_set_new(o, k, v);
			free(k);
			if (rc)
				goto fail;
		} else if (json_object_set_new(o, field, v)) {
			goto fail;
		}
	}
	/* a malformed rest (or "(overflow)") adds nothing */
	free(field);
	free(value);
	errq_buf_free(&tmp);
	return o;
fail:
	json_decref(o);
	free(field);
	free(value);
	errq_buf_free(&tmp);
	return NULL;
}

int cli_matchers_join(const char *const *match, size_t n, char *out, size_t outsz)
{
	struct errq_buf b;
	if (!outsz)
		return -1;
	errq_buf_init_fixed(&b, out, outsz);
	out[0] = '\0';
	for (size_t k = 0; k < n; k++) {
		const char *eq = strchr(match[k], '=');
		if (!eq || (k && errq_buf_add(&b, ",", 1)) || errq_buf_add(&b, match[k], (size_t)(eq - match[k]) + 1))
			return -1;
		for (const char *g = eq + 1; *g; g++) {
			bool esc = *g == '\\' || *g == ',' || *g == '=';
			if ((esc && errq_buf_add(&b, "\\", 1)) || errq_buf_add(&b, g, 1))
				return -1;
		}
	}
	return 0;
}

int cli_alert_id_parse(const char *s, uint8_t out[CLI_ALERT_ID_LEN], char *suffix, size_t suffixsz)
{
	size_t n = strlen(s);
	if (n == 2 * CLI_ALERT_ID_LEN || n == 2 * CLI_ALERT_ID_LEN + 4) {
		char hex[2 * CLI_ALERT_ID_LEN + 1];
		size_t k = 0;
		if (n != 2 * CLI_ALERT_ID_LEN && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-'))
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (n != 2 * CLI_ALERT_ID_LEN && (i == 8 || i == 13 || i == 18 || i == 23))
				continue;
			if (!isxdigit((unsigned char)s[i]))
				return -1;
			hex[k++] = (char)tolower((unsigned char)s[i]);
		}
		hex[k] = '\0';
		return errq_hex_decode(hex, out, CLI_ALERT_ID_LEN) ? -1 : 1;
	}
	if (n < CLI_ALERT_MIN_HEX || n >= 2 * CLI_ALERT_ID_LEN || n >= suffixsz)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return -1;
		suffix[i] = (char)tolower((unsigned char)s[i]);
	}
	suffix[n] = '\0';
	return 0;
}

char *cli_alert_short_id(char *buf, size_t n, const uint8_t *id, size_t len)
{
	char hex[2 * CLI_ALERT_ID_LEN + 1];
	if (len > CLI_ALERT_ID_LEN)
		len = CLI_ALERT_ID_LEN;
	errq_hex_encode(id, len, hex);
	size_t h = 2 * len;
	errq_snprintf(buf, n, "%s", hex + (h > CLI_ALERT_SHORT_HEX ? h - CLI_ALERT_SHORT_HEX : 0));
	return buf;
}

int cli_fmt_delivery(struct errq_buf *b, const char *notifier, const char *status, uint32_t attempts)
{
	size_t start = b->len;
	if ((start && errq_buf_add(b, " ", 1)) || errq_buf_printf(b, "%s:%s", notifier, status) ||
	    (attempts > 1 && errq_buf_printf(b, "(%u)", attempts))) {
		b->len = start;
		if (b->p)
			b->p[start] = '\0';
		return -1;
	}
	return 0;
}
