/* cli_fmt.c: exit codes, terminal text, relative times, column fitting, tables and key=value
 * lists for the errq CLI.  Pure: see cli_fmt.h. */
#include "cli_fmt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "errq_time.h"
#include "errq_banned.h"

int cli_exit_for_status(grpc_status_code c)
{
	switch (c) {
	case GRPC_STATUS_OK:
		return CLI_EXIT_OK;
	case GRPC_STATUS_INVALID_ARGUMENT: /* a usage problem the server saw */
		return CLI_EXIT_USAGE;
	case GRPC_STATUS_NOT_FOUND:
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

/* ---- code points ---- */

#define REPLACEMENT 0xFFFDu

/* Decodes the character at s[*i] and advances *i past it.  An invalid byte decodes as
 * U+FFFD and advances by one. */
static uint32_t next_cp(const unsigned char *s, size_t n, size_t *i)
{
	uint32_t c = s[*i];
	if (c < 0x80) {
		(*i)++;
		return c;
	}
	size_t len;
	uint32_t min;
	if ((c & 0xE0) == 0xC0) {
		len = 2;
		min = 0x80;
		c &= 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3;
		min = 0x800;
		c &= 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4;
		min = 0x10000;
		c &= 0x07;
	} else {
		(*i)++;
		return REPLACEMENT;
	}
	if (len > n - *i) {
		(*i)++;
		return REPLACEMENT;
	}
	for (size_t k = 1; k < len; k++) {
		if ((s[*i + k] & 0xC0) != 0x80) {
			(*i)++;
			return REPLACEMENT;
		}
		c = (c << 6) | (s[*i + k] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
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
