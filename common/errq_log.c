#include "errq_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_time.h"

static atomic_int g_level = ERRQ_LOG_INFO;
static atomic_int g_fd = 2;
static atomic_int g_format = ERRQ_LOG_FORMAT_JSON;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void errq_log_set_level(int level)
{
	atomic_store(&g_level, level);
}

int errq_log_get_level(void)
{
	return atomic_load(&g_level);
}

void errq_log_set_format(int format)
{
	atomic_store(&g_format, format == ERRQ_LOG_FORMAT_TEXT ? ERRQ_LOG_FORMAT_TEXT : ERRQ_LOG_FORMAT_JSON);
}

void errq_log_set_fd(int fd)
{
	atomic_store(&g_fd, fd);
}

int errq_log_level_parse(const char *s)
{
	for (int i = 0; i <= ERRQ_LOG_OFF; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* True when s[0..n) can be written bare in a text line: valid UTF-8 with no control character,
 * and (for a value) not empty and no space, '"', '=' or '\\' that would make it ambiguous. */
static bool text_bare(const char *s, size_t n, bool value)
{
	if (value && n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if (value && (c == ' ' || c == '"' || c == '=' || c == '\\'))
			return false;
	}
	return errq_utf8_valid(s, n, NULL);
}

static int text_add(struct errq_buf *b, const char *s, size_t n, bool value)
{
	return text_bare(s, n, value) ? errq_buf_add(b, s, n) : errq_buf_add_json_str(b, s, n);
}

/* The start of a line up to the message, in the current format. */
static int add_head(struct errq_buf *b, int format, int level, const char *msg, size_t mlen)
{
	char ts[ERRQ_RFC3339_BUFSZ];
	errq_fmt_rfc3339(ts, errq_now_ns());
	if (format == ERRQ_LOG_FORMAT_TEXT)
		return errq_buf_printf(b, "%s %-5s ", ts, level_names[level]) || text_add(b, msg, mlen, false);
	return errq_buf_printf(b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[level]) ||
	       errq_buf_add_json_str(b, msg, mlen);
}

/* One field: ,"k":"v" or  k=v.  On failure the buffer is as it was. */
static int add_field(struct errq_buf *b, int format, const char *k, const char *v, size_t vlen)
{
	size_t mark = b->len;
	int rc;
	if (format == ERRQ_LOG_FORMAT_TEXT)
		rc = errq_buf_addstr(b, " ") || text_add(b, k, strlen(k), true) || errq_buf_addstr(b, "=") ||
		     text_add(b, v, vlen, true);
	else
		rc = errq_buf_addstr(b, ",") || errq_buf_add_json_str(b, k, strlen(k)) || errq_buf_addstr(b, ":") ||
		     errq_buf_add_json_str(b, v, vlen);
	if (rc) {
		b->len = mark;
		b->p[mark] = '\0';
	}
	return rc;
}

/* Formats and writes one line; fields is a NULL-terminated va_list of key, value strings. */
static void emit(int level, const char *msg, va_list *fields)
{
	char stackbuf[ERRQ_LOG_LINE_MAX + 16];
	struct errq_buf b;
	int format = atomic_load(&g_format);
	errq_buf_init_fixed(&b, stackbuf, sizeof(stackbuf));
	b.toobig = sizeof(stackbuf) - 16; /* keep room for the cut mark and the end of the line */

	size_t mlen = strlen(msg);
	int cut = 0;
	if (mlen > ERRQ_LOG_LINE_MAX / 2) {
		mlen = errq_utf8_trunc_len(msg, mlen, ERRQ_LOG_LINE_MAX / 2);
		cut = 1;
	}
	add_head(&b, format, level, msg, mlen);
	if (fields) {
		const char *k;
		while ((k = va_arg(*fields, const char *)) != NULL) {
			const char *v = va_arg(*fields, const char *);
			if (add_field(&b, format, k, v ? v : "", v ? strlen(v) : 0)) {
				cut = 1;
				break;
			}
		}
	}
	b.toobig = sizeof(stackbuf);
	if (cut)
		errq_buf_addstr(&b, format == ERRQ_LOG_FORMAT_TEXT ? " cut=true" : ",\"cut\":true");
	errq_buf_addstr(&b, format == ERRQ_LOG_FORMAT_TEXT ? "\n" : "}\n");
	ssize_t w = write(atomic_load(&g_fd), b.p, b.len);
	(void)w;
}

void errq_log(int level, const char *fmt, ...)
{
	if (level < atomic_load(&g_level) || level >= ERRQ_LOG_OFF)
		return;
	char msg[ERRQ_LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(level, msg, NULL);
}

void errq_logkv(int level, const char *msg, ...)
{
	if (level < atomic_load(&g_level) || level >= ERRQ_LOG_OFF)
		return;
	va_list ap;
	va_start(ap, msg);
	emit(level, msg, &ap);
	va_end(ap);
}

void errq_log_json(int level, const char *msg, const char *k, const char *v, const char *jk, const char *json,
		   size_t len)
{
	if (level < atomic_load(&g_level) || level >= ERRQ_LOG_OFF)
		return;
	int format = atomic_load(&g_format);
	bool text = format == ERRQ_LOG_FORMAT_TEXT;
	struct errq_buf b;
	errq_buf_init(&b, ERRQ_LOG_JSON_MAX);
	int rc = add_head(&b, format, level, msg, strlen(msg)) || add_field(&b, format, k, v, strlen(v));
	/* compact JSON has no control character: in text it is written bare like a message */
	if (text)
		rc = rc || errq_buf_addstr(&b, " ") || text_add(&b, jk, strlen(jk), true) || errq_buf_addstr(&b, "=") ||
		     text_add(&b, json, len, false);
	else
		rc = rc || errq_buf_addstr(&b, ",") || errq_buf_add_json_str(&b, jk, strlen(jk)) ||
		     errq_buf_addstr(&b, ":") || errq_buf_add(&b, json, len);
	if (rc || errq_buf_addstr(&b, text ? "\n" : "}\n")) {
		errq_buf_free(&b);
		errq_logkv(level, msg, k, v, jk, json, NULL); /* cut by errq_logkv's bound */
		return;
	}
	ssize_t w = write(atomic_load(&g_fd), b.p, b.len);
	(void)w;
	errq_buf_free(&b);
}
