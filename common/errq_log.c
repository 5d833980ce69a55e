#include "errq_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_time.h"

static atomic_int g_level = ERRQ_LOG_INFO;
static atomic_int g_fd = 2;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void errq_log_set_level(int level)
{
	atomic_store(&g_level, level);
}

int errq_log_get_level(void)
{
	return atomic_load(&g_level);
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

/* Formats and writes one line; fields is a NULL-terminated va_list of key, value strings. */
static void emit(int level, const char *msg, va_list *fields)
{
	char stackbuf[ERRQ_LOG_LINE_MAX + 8];
	char ts[ERRQ_RFC3339_BUFSZ];
	struct errq_buf b;
	errq_buf_init_fixed(&b, stackbuf, sizeof(stackbuf));
	b.toobig = sizeof(stackbuf) - 2; /* keep room for the closing "}\n" */

	errq_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":",
			errq_fmt_rfc3339(ts, errq_now_ns()), level_names[level]);
	size_t mlen = strlen(msg);
	int cut = 0;
	if (mlen > ERRQ_LOG_LINE_MAX / 2) {
		mlen = errq_utf8_trunc_len(msg, mlen, ERRQ_LOG_LINE_MAX / 2);
		cut = 1;
	}
	errq_buf_add_json_str(&b, msg, mlen);
	if (fields) {
		const char *k;
		while ((k = va_arg(*fields, const char *)) != NULL) {
			const char *v = va_arg(*fields, const char *);
			size_t mark = b.len;
			if (errq_buf_addstr(&b, ",") || errq_buf_add_json_str(&b, k, strlen(k)) ||
			    errq_buf_addstr(&b, ":") ||
			    errq_buf_add_json_str(&b, v ? v : "", v ? strlen(v) : 0)) {
				b.len = mark;
				cut = 1;
				break;
			}
		}
	}
	if (cut)
		errq_buf_addstr(&b, ",\"cut\":true");
	b.toobig = sizeof(stackbuf);
	errq_buf_add(&b, "}\n", 2);
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
	char ts[ERRQ_RFC3339_BUFSZ];
	struct errq_buf b;
	errq_buf_init(&b, ERRQ_LOG_JSON_MAX);
	int rc = errq_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":",
				 errq_fmt_rfc3339(ts, errq_now_ns()), level_names[level]);
	rc |= errq_buf_add_json_str(&b, msg, strlen(msg));
	rc |= errq_buf_addstr(&b, ",");
	rc |= errq_buf_add_json_str(&b, k, strlen(k));
	rc |= errq_buf_addstr(&b, ":");
	rc |= errq_buf_add_json_str(&b, v, strlen(v));
	rc |= errq_buf_addstr(&b, ",");
	rc |= errq_buf_add_json_str(&b, jk, strlen(jk));
	rc |= errq_buf_addstr(&b, ":");
	if (rc || errq_buf_add(&b, json, len) || errq_buf_addstr(&b, "}\n")) {
		errq_buf_free(&b);
		errq_logkv(level, msg, k, v, jk, json, NULL); /* cut by errq_logkv's bound */
		return;
	}
	ssize_t w = write(atomic_load(&g_fd), b.p, b.len);
	(void)w;
	errq_buf_free(&b);
}
