/* cli_detail.c: detail views for the errq CLI (errq events show, alerts show): labelled fields, sections and wrapped text.  Pure: see cli_fmt.h. */
#include "cli_fmt.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_fmt_int.h"
#include "errq_banned.h"


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
		uint32_t c = cli__next_cp(u, n, &i);
		size_t cw = cli__cp_width(c);
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

int cli__put_spaces(struct errq_buf *b, size_t n)
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
	const char *on = color ? cli__style_on(style) : NULL;
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
				if (errq_buf_add(b, "\n", 1) || (take && cli__put_spaces(b, cont)))
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
			if (cli__put_spaces(&line, indent) ||
			    put_wrapped(&line, &tmp, it->value, avail, cont, it->style, color))
				goto out;
		} else {
			size_t used = 0, vcol = indent + labw + 2;
			size_t avail = width > vcol + CLI_DETAIL_MIN_TEXT ? width - vcol : CLI_DETAIL_MIN_TEXT;
			errq_buf_reset(&lab);
			if (cli__put_spaces(&line, indent) ||
			    cli_cell_text(&lab, it->label, strlen(it->label), labw, &used) ||
			    errq_buf_add(&lab, "", 0) || errq_buf_addstr(&line, lab.p) ||
			    cli__put_spaces(&line, labw - used + 2) ||
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
