/* cli_text.c: terminal text for the errq CLI: code points, display width, sanitized and UTF-8-safe cells.  Pure: see cli_fmt.h. */
#include "cli_fmt.h"

#include <stdlib.h>
#include <string.h>

#include "cli_fmt_int.h"
#include "errq_banned.h"


/* ---- code points ---- */

#define REPLACEMENT 0xFFFDu

/* Decodes the character at s[*i] and advances *i past it.  An invalid byte decodes as
 * U+FFFD and advances by one. */
uint32_t cli__next_cp(const unsigned char *s, size_t n, size_t *i)
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
 * start escape sequences; bidirectional controls (embeddings, overrides, isolates, marks)
 * would reorder what follows them on the line, so a message could make the columns after it
 * read backwards or hide text (CVE-2021-42574, "Trojan Source"): they show as U+FFFD. */
static uint32_t clean_cp(uint32_t c)
{
	if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0))
		return ' ';
	if (c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069))
		return REPLACEMENT;
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

size_t cli__cp_width(uint32_t c)
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
		w += cli__cp_width(clean_cp(cli__next_cp(u, n, &i)));
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
		uint32_t c = clean_cp(cli__next_cp(u, n, &i));
		size_t cw = cli__cp_width(c);
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
		if (errq_buf_add(b, enc, cp_encode(cli__next_cp(u, n, &i), enc))) {
			b->len = start;
			if (b->p)
				b->p[start] = '\0';
			return -1;
		}
	}
	/* an empty s still leaves a NUL-terminated (allocated) buffer */
	return errq_buf_add(b, "", 0);
}
