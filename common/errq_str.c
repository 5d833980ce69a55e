#include "errq_str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errq_banned.h"

void errq_buf_init(struct errq_buf *b, size_t toobig)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->toobig = toobig;
	b->failed = false;
}

void errq_buf_init_fixed(struct errq_buf *b, char *mem, size_t n)
{
	b->p = mem;
	b->len = 0;
	b->cap = n;
	b->toobig = n; /* reserve() fails before it would need more than the array */
	b->failed = false;
	mem[0] = '\0';
}

void errq_buf_free(struct errq_buf *b)
{
	free(b->p);
	errq_buf_init(b, b->toobig);
}

void errq_buf_reset(struct errq_buf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->p)
		b->p[0] = '\0';
}

static int buf_reserve(struct errq_buf *b, size_t extra)
{
	if (extra >= b->toobig || b->len + extra >= b->toobig) {
		b->failed = true;
		return -1;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap *= 2;
	if (ncap > b->toobig)
		ncap = b->toobig;
	char *np = realloc(b->p, ncap);
	if (!np) {
		b->failed = true;
		return -1;
	}
	b->p = np;
	b->cap = ncap;
	return 0;
}

int errq_buf_add(struct errq_buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n))
		return -1;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int errq_buf_addstr(struct errq_buf *b, const char *s)
{
	return errq_buf_add(b, s, strlen(s));
}

int errq_buf_vprintf(struct errq_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->failed = true;
		return -1;
	}
	if (buf_reserve(b, (size_t)n))
		return -1;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int errq_buf_printf(struct errq_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = errq_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

size_t errq_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
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
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	uint32_t cp;
	return errq_utf8_decode(s, n, &cp);
}

bool errq_utf8_valid(const char *s, size_t n, size_t *bad_off)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		if (u[i] < 0x80) { /* fast path for ASCII */
			i++;
			continue;
		}
		size_t l = utf8_seq(u + i, n - i);
		if (!l) {
			if (bad_off)
				*bad_off = i;
			return false;
		}
		i += l;
	}
	return true;
}

size_t errq_utf8_trunc_len(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t l = max;
	/* step back over continuation bytes to the start of the cut sequence */
	while (l > 0 && ((unsigned char)s[l] & 0xC0) == 0x80)
		l--;
	return l;
}

const char *errq_quote(const char *s, char buf[ERRQ_QUOTE_BUFSZ])
{
	size_t n = strlen(s);
	if (n <= ERRQ_QUOTE_MAX)
		return s;
	n = errq_utf8_trunc_len(s, n, ERRQ_QUOTE_MAX);
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

void errq_hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int errq_hex_decode(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int errq_buf_add_json_str(struct errq_buf *b, const char *s, size_t n)
{
	size_t start = b->len;
	const unsigned char *u = (const unsigned char *)s;
	if (errq_buf_add(b, "\"", 1))
		return -1;
	size_t i = 0;
	while (i < n) {
		unsigned c = u[i];
		int rc = 0;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			rc = errq_buf_add(b, e, 2);
			i++;
		} else if (c < 0x20) {
			switch (c) {
			case '\n': rc = errq_buf_add(b, "\\n", 2); break;
			case '\r': rc = errq_buf_add(b, "\\r", 2); break;
			case '\t': rc = errq_buf_add(b, "\\t", 2); break;
			default: rc = errq_buf_printf(b, "\\u%04x", c); break;
			}
			i++;
		} else if (c < 0x80) {
			size_t j = i;
			while (j < n && u[j] >= 0x20 && u[j] < 0x80 && u[j] != '"' && u[j] != '\\')
				j++;
			rc = errq_buf_add(b, s + i, j - i);
			i = j;
		} else {
			size_t l = utf8_seq(u + i, n - i);
			if (l) {
				rc = errq_buf_add(b, s + i, l);
				i += l;
			} else {
				rc = errq_buf_add(b, "\xEF\xBF\xBD", 3);
				i++;
			}
		}
		if (rc) {
			b->len = start;
			b->p[start] = '\0';
			return -1;
		}
	}
	return errq_buf_add(b, "\"", 1);
}

int errq_snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}
