/* cli_table.c: tables for the errq CLI: column fitting, whole tables rendered at once, and streamed lines (errq tail) laid out the same way.  Pure: see cli_fmt.h. */
#include "cli_fmt.h"

#include <stdlib.h>
#include <string.h>

#include "cli_fmt_int.h"
#include "errq_banned.h"


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

const char *cli__style_on(unsigned char s)
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
	const char *on = color ? cli__style_on(style) : NULL;
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

/* "(folded) cell" of a folded column's cell and its target's (just cell when folded is
 * empty) into b.  0, or -1 out of memory. */
static int fold_text(struct errq_buf *b, const char *folded, const char *cell)
{
	errq_buf_reset(b);
	if (*folded && errq_buf_printf(b, "(%s) ", folded))
		return -1;
	return errq_buf_addstr(b, cell);
}

/* The widest of column c's header and cells with column src folded into them, and the
 * widest "(src) " part alone (what cutting must leave whole). */
static int fold_natural(const struct cli_table *t, size_t c, size_t src, struct errq_buf *b, size_t *nat,
			size_t *prefix)
{
	*nat = *prefix = 0;
	for (size_t r = 0; r <= t->nrows; r++) {
		const char *s = r ? t->cells[(r - 1) * t->ncols + c] : t->cols[c].title;
		const char *from = r ? t->cells[(r - 1) * t->ncols + src] : t->cols[src].title;
		if (fold_text(b, from, ""))
			return -1;
		size_t pw = b->p ? cli_text_width(b->p, b->len) : 0;
		if (fold_text(b, from, s))
			return -1;
		size_t cw = b->p ? cli_text_width(b->p, b->len) : 0;
		if (cw > *nat)
			*nat = cw;
		if (pw > *prefix)
			*prefix = pw;
	}
	return 0;
}

int cli_table_render(const struct cli_table *t, size_t width, bool color, FILE *f)
{
	int rc = -1;
	size_t vis[CLI_TABLE_MAX_COLS], nvis = 0, folded[CLI_TABLE_MAX_COLS];
	struct errq_buf fold;
	struct cli_col vcols[CLI_TABLE_MAX_COLS];
	size_t natural[CLI_TABLE_MAX_COLS], w[CLI_TABLE_MAX_COLS];
	struct errq_buf line;
	/* a cell: up to 3 * CLI_CELL_MAX bytes of text, padding (at most its columns), colors */
	errq_buf_init(&line, (4 * CLI_CELL_MAX + 32) * CLI_TABLE_MAX_COLS);
	/* a folded cell: two sanitized cells and "() " */
	errq_buf_init(&fold, 2 * 3 * CLI_CELL_MAX + 8);

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
		folded[nvis] = (size_t)-1;
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
		if (vcols[pick].flags & CLI_COL_FOLD) {
			/* its cells go before those of the last column (if that one shows) */
			for (size_t k = 0; k < nvis; k++) {
				if (vis[k] != t->ncols - 1 || k == pick || folded[k] != (size_t)-1)
					continue;
				size_t prefix;
				if (fold_natural(t, vis[k], vis[pick], &fold, &natural[k], &prefix))
					goto out;
				/* a cut keeps the folded part whole and as much of its own as before */
				vcols[k].min += prefix;
				folded[k] = vis[pick];
			}
		}
		nvis--;
		memmove(&vis[pick], &vis[pick + 1], (nvis - pick) * sizeof(vis[0]));
		memmove(&vcols[pick], &vcols[pick + 1], (nvis - pick) * sizeof(vcols[0]));
		memmove(&natural[pick], &natural[pick + 1], (nvis - pick) * sizeof(natural[0]));
		memmove(&folded[pick], &folded[pick + 1], (nvis - pick) * sizeof(folded[0]));
	}
	cli_fit_columns(vcols, natural, nvis, width, CLI_TABLE_GAP, w);

	for (size_t r = 0; r <= t->nrows; r++) { /* row 0 is the header */
		errq_buf_reset(&line);
		for (size_t k = 0; k < nvis; k++) {
			size_t c = vis[k];
			const char *s = r ? t->cells[(r - 1) * t->ncols + c] : t->cols[c].title;
			unsigned char st = r ? t->styles[(r - 1) * t->ncols + c] : CLI_STYLE_BOLD;
			if (folded[k] != (size_t)-1) {
				if (fold_text(&fold, r ? t->cells[(r - 1) * t->ncols + folded[k]] : t->cols[folded[k]].title, s))
					goto out;
				s = fold.p ? fold.p : "";
			}
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
	errq_buf_free(&fold);
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
		if (any && cli__put_spaces(b, CLI_TABLE_GAP))
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
