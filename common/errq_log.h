/* errq_log.h: structured logs, one record per line on stderr, in one of two formats:
 *  json (default): {"time":"2026-11-25T18:03:11.482Z","level":"info","msg":"...","key":"value"}
 *  text (for humans): 2026-11-25T18:03:11.482Z info  ... key=value key="two words"
 * In text, the message is written as is unless it holds a control character or invalid UTF-8,
 * and a value is quoted (with JSON's escapes: \" \\ \n) when it is empty or holds a space, '"',
 * '=', '\\', a control character or invalid UTF-8; so one record is always one line.
 * Thread-safe: each line is formatted on the caller's stack and written with one write(2).
 * A line longer than ERRQ_LOG_LINE_MAX is cut (the message first) and marked "cut":true
 * (cut=true in text). */
#ifndef ERRQ_LOG_H
#define ERRQ_LOG_H
#include "errq_banned.h"

#define ERRQ_LOG_LINE_MAX 4096

enum errq_log_level { ERRQ_LOG_DEBUG, ERRQ_LOG_INFO, ERRQ_LOG_WARN, ERRQ_LOG_ERROR, ERRQ_LOG_OFF };
enum errq_log_format { ERRQ_LOG_FORMAT_JSON, ERRQ_LOG_FORMAT_TEXT };

void errq_log_set_level(int level);
int errq_log_get_level(void);
/* "debug" | "info" | "warn" | "error" | "off" -> level, or -1 */
int errq_log_level_parse(const char *s);
/* enum errq_log_format (default ERRQ_LOG_FORMAT_JSON). */
void errq_log_set_format(int format);
/* Where lines go (default 2 = stderr). */
void errq_log_set_fd(int fd);

/* Logs msg (printf format) with no extra fields. */
void errq_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs msg with string fields: errq_logkv(level, "msg", "key", "value", ..., NULL). */
void errq_logkv(int level, const char *msg, ...) __attribute__((sentinel));

/* Logs msg with one string field and one field whose value is JSON the caller built (an
 * alert's body: the log notifier), written as is: {"...","msg":msg,"k":"v","jk":<json>}.
 * Lines up to ERRQ_LOG_JSON_MAX; a longer json is written as a string, cut, marked "cut". */
#define ERRQ_LOG_JSON_MAX (128u * 1024)
void errq_log_json(int level, const char *msg, const char *k, const char *v, const char *jk, const char *json,
		   size_t len);

#define LOG_DEBUG(...) errq_log(ERRQ_LOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) errq_log(ERRQ_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...) errq_log(ERRQ_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) errq_log(ERRQ_LOG_ERROR, __VA_ARGS__)
#endif
