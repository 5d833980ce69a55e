/* Unit: common/ — time, strings, ids, YAML loading, log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "errq_condlog.h"
#include "errq_id.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_yaml.h"

static void test_rfc3339_format_and_parse(void **state)
{
	char buf[ERRQ_RFC3339_BUFSZ];
	uint64_t ns = 1795629791482123456ULL; /* 2026-11-25T18:03:11.482Z */
	assert_string_equal(errq_fmt_rfc3339(buf, ns), "2026-11-25T18:03:11.482Z");
	uint64_t back;
	assert_int_equal(errq_parse_rfc3339("2026-11-25T18:03:11.482Z", &back), 0);
	assert_int_equal(back, 1795629791482000000ULL);
	assert_int_equal(errq_parse_rfc3339("2026-11-25T19:03:11+01:00", &back), 0);
	assert_int_equal(back, 1795629791000000000ULL);
	assert_int_equal(errq_parse_rfc3339("1970-01-01T00:00:00Z", &back), 0);
	assert_int_equal(back, 0);
	assert_int_equal(errq_parse_rfc3339("2024-02-29T00:00:00Z", &back), 0);
	assert_int_equal(back, 1709164800ULL * 1000000000ULL);
	assert_int_equal(errq_parse_rfc3339("2026-13-01T00:00:00Z", &back), -1);
	assert_int_equal(errq_parse_rfc3339("2026-11-25 18:03", &back), -1);
	assert_int_equal(errq_parse_rfc3339("2026-11-25T18:03:11", &back), -1); /* no zone */
	assert_int_equal(errq_parse_rfc3339("2026-11-25T18:03:11Zjunk", &back), -1);
}

static void test_durations_and_since(void **state)
{
	uint64_t ns;
	assert_int_equal(errq_parse_duration("250ms", &ns), 0);
	assert_int_equal(ns, 250 * ERRQ_NS_PER_MS);
	assert_int_equal(errq_parse_duration("30m", &ns), 0);
	assert_int_equal(ns, 1800 * ERRQ_NS_PER_SEC);
	assert_int_equal(errq_parse_duration("2d", &ns), 0);
	assert_int_equal(ns, 172800 * ERRQ_NS_PER_SEC);
	assert_int_equal(errq_parse_duration("1h30m", &ns), -1);
	assert_int_equal(errq_parse_duration("-5s", &ns), -1);
	assert_int_equal(errq_parse_duration("5", &ns), -1);
	assert_int_equal(errq_parse_duration("99999999999999999999d", &ns), -1);
	uint64_t now = 10000 * ERRQ_NS_PER_SEC, since;
	assert_int_equal(errq_parse_since("1h", now, &since), 0);
	assert_int_equal(since, now - 3600 * ERRQ_NS_PER_SEC);
	assert_int_equal(errq_parse_since("2026-11-25T18:03:11Z", now, &since), 0);
	assert_int_equal(errq_parse_since("yesterday", now, &since), -1);
	/* formatting reads back: the largest unit that divides */
	char d[ERRQ_DURATION_BUFSZ];
	assert_string_equal(errq_fmt_duration(d, 0), "0s");
	assert_string_equal(errq_fmt_duration(d, 30 * 86400 * ERRQ_NS_PER_SEC), "30d");
	assert_string_equal(errq_fmt_duration(d, 90 * 60 * ERRQ_NS_PER_SEC), "90m");
	assert_string_equal(errq_fmt_duration(d, 1500 * ERRQ_NS_PER_MS), "1500ms");
	assert_string_equal(errq_fmt_duration(d, 7), "7ns");
	assert_int_equal(errq_parse_duration(errq_fmt_duration(d, 36 * 3600 * ERRQ_NS_PER_SEC), &ns), 0);
	assert_int_equal(ns, 36 * 3600 * ERRQ_NS_PER_SEC);
}

/* The lines errq_logkv / errq_log_json write, read from a pipe, without the timestamp. */
static int log_pipe[2];

static void log_capture(int format)
{
	assert_int_equal(pipe(log_pipe), 0);
	errq_log_set_fd(log_pipe[1]);
	errq_log_set_format(format);
	errq_log_set_level(ERRQ_LOG_DEBUG);
}

static char *log_read(void)
{
	static char buf[16384];
	errq_log_set_fd(2);
	errq_log_set_format(ERRQ_LOG_FORMAT_JSON);
	close(log_pipe[1]);
	size_t n = 0;
	ssize_t r;
	while ((r = read(log_pipe[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(log_pipe[0]);
	buf[n] = '\0';
	return buf;
}

/* The text after the time: "2026-12-06T20:08:49.157Z info  ..." -> "info  ...". */
static const char *after_time(const char *line)
{
	assert_int_equal(strlen(line) > 25 && line[10] == 'T' && line[23] == 'Z' && line[24] == ' ', 1);
	return line + 25;
}

static void test_log_text_format(void **state)
{
	log_capture(ERRQ_LOG_FORMAT_TEXT);
	errq_logkv(ERRQ_LOG_INFO, "errqd started", "listen", "127.0.0.1:4770", "name", "two words", "quote",
		   "say \"hi\"", "nl", "a\nb", "empty", "", "eq", "a=b", "slash", "C:\\x", "utf8", "café", NULL);
	const char *out = log_read();
	assert_string_equal(after_time(out), "info  errqd started listen=127.0.0.1:4770 name=\"two words\" "
					      "quote=\"say \\\"hi\\\"\" nl=\"a\\nb\" empty=\"\" eq=\"a=b\" "
					      "slash=\"C:\\\\x\" utf8=café\n");

	/* a message with a newline or a tab stays on one line, quoted; one without stays bare */
	log_capture(ERRQ_LOG_FORMAT_TEXT);
	errq_logkv(ERRQ_LOG_WARN, "first\nsecond\tthird", NULL);
	errq_log(ERRQ_LOG_ERROR, "cannot open '%s'", "x y.db");
	out = log_read();
	const char *second = strchr(out, '\n') + 1;
	const char *first = "warn  \"first\\nsecond\\tthird\"\n";
	assert_int_equal(strncmp(after_time(out), first, strlen(first)), 0);
	assert_string_equal(after_time(second), "error cannot open 'x y.db'\n");

	/* the alert body of the log notifier: compact JSON, written bare */
	log_capture(ERRQ_LOG_FORMAT_TEXT);
	const char *json = "{\"status\":\"firing\",\"n\":1}";
	errq_log_json(ERRQ_LOG_INFO, "alert", "notifier", "ops log", "alert", json, strlen(json));
	out = log_read();
	assert_string_equal(after_time(out), "info  alert notifier=\"ops log\" alert={\"status\":\"firing\",\"n\":1}\n");

	/* a line past ERRQ_LOG_LINE_MAX is cut between fields and marked */
	static char big[ERRQ_LOG_LINE_MAX];
	memset(big, 'v', sizeof(big) - 1);
	log_capture(ERRQ_LOG_FORMAT_TEXT);
	errq_logkv(ERRQ_LOG_INFO, "big", "a", "1", "b", big, NULL);
	out = log_read();
	assert_string_equal(after_time(out), "info  big a=1 cut=true\n");

	/* json stays what it was */
	log_capture(ERRQ_LOG_FORMAT_JSON);
	errq_logkv(ERRQ_LOG_INFO, "errqd started", "name", "two words", NULL);
	out = log_read();
	assert_int_equal(strncmp(out, "{\"time\":\"", 9), 0);
	assert_non_null(strstr(out, "\",\"level\":\"info\",\"msg\":\"errqd started\",\"name\":\"two words\"}\n"));
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A condition that fails 1 000 times logs one line; successes between failures do not end it
 * until they settle (ERRQ_CONDLOG_SETTLE_MS), then one recovery line with the count. */
static void test_condlog_one_line_per_condition(void **state)
{
	struct errq_condlog c;
	errq_condlog_init(&c, "checkpoint failed", ERRQ_LOG_WARN);
	log_capture(ERRQ_LOG_FORMAT_JSON);
	errq_condlog_ok(&c); /* nothing to recover from */
	assert_false(errq_condlog_failing(&c));
	for (int i = 0; i < 1000; i++) {
		errq_condlog_fail(&c, "database or disk is full");
		errq_condlog_ok(&c); /* a small transaction got through: still the same episode */
	}
	errq_condlog_poll(&c);
	assert_true(errq_condlog_failing(&c));
	/* the recovery line, once successes alone were seen long enough (a wait for time itself:
	 * the bound is the semantics) */
	uint64_t t0 = errq_mono_ns();
	while (errq_mono_ns() - t0 < (ERRQ_CONDLOG_SETTLE_MS + 10) * ERRQ_NS_PER_MS)
		usleep(10 * 1000);
	errq_condlog_poll(&c);
	assert_false(errq_condlog_failing(&c));
	errq_condlog_fail(&c, "disk I/O error"); /* a new episode: its own first line */
	char *out = log_read();
	assert_int_equal(count_of(out, "\n"), 3);
	assert_int_equal(count_of(out, "\"msg\":\"checkpoint failed\",\"error\":\"database or disk is full\""), 1);
	assert_int_equal(count_of(out, "\"msg\":\"checkpoint failed: recovered\""), 1);
	assert_int_equal(count_of(out, "\"failures\":\"1000\""), 1);
	assert_int_equal(count_of(out, "\"error\":\"disk I/O error\""), 1);
}

/* summary_ms sets a condition's summary period (the alert notifier's is a minute): the same
 * failures log a summary after it and not before. */
static void test_condlog_summary_period(void **state)
{
	struct errq_condlog c;
	errq_condlog_init(&c, "deliveries failing", ERRQ_LOG_WARN);
	c.summary_ms = 50;
	log_capture(ERRQ_LOG_FORMAT_JSON);
	errq_condlog_fail(&c, "HTTP 503");
	errq_condlog_fail(&c, "HTTP 503"); /* within the period: no line */
	uint64_t t0 = errq_mono_ns();
	while (errq_mono_ns() - t0 < 60 * ERRQ_NS_PER_MS) /* a wait for time itself: the period */
		usleep(10 * 1000);
	errq_condlog_fail(&c, "HTTP 503");
	char *out = log_read();
	assert_int_equal(count_of(out, "\n"), 2);
	assert_int_equal(count_of(out, "\"msg\":\"deliveries failing (still failing)\""), 1);
	assert_int_equal(count_of(out, "\"failures\":\"3\""), 1);
}

static void test_utf8(void **state)
{
	size_t bad = 0;
	assert_true(errq_utf8_valid("plain", 5, NULL));
	assert_true(errq_utf8_valid("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80", 15, NULL));
	assert_false(errq_utf8_valid("ab\xC3\x28", 4, &bad));
	assert_int_equal(bad, 2);
	assert_false(errq_utf8_valid("\xC0\xAF", 2, &bad));         /* overlong '/' */
	assert_false(errq_utf8_valid("\xED\xA0\x80", 3, &bad));     /* surrogate */
	assert_false(errq_utf8_valid("\xF4\x90\x80\x80", 4, &bad)); /* > U+10FFFF */
	assert_false(errq_utf8_valid("\xE2\x82", 2, &bad));         /* cut sequence */
	assert_false(errq_utf8_valid("\xFF", 1, &bad));
	/* truncation never cuts a character */
	const char *s = "ab\xE2\x82\xAC" "cd"; /* a b € c d: 7 bytes */
	assert_int_equal(errq_utf8_trunc_len(s, 7, 10), 7);
	assert_int_equal(errq_utf8_trunc_len(s, 7, 5), 5);
	assert_int_equal(errq_utf8_trunc_len(s, 7, 4), 2);
	assert_int_equal(errq_utf8_trunc_len(s, 7, 3), 2);
	assert_int_equal(errq_utf8_trunc_len(s, 7, 2), 2);
}

static void test_buf_limit_and_json(void **state)
{
	struct errq_buf b;
	errq_buf_init(&b, 16);
	assert_int_equal(errq_buf_addstr(&b, "0123456789"), 0);
	assert_int_equal(errq_buf_addstr(&b, "abcdef"), -1); /* would reach the cap */
	assert_string_equal(b.p, "0123456789");               /* unchanged by the failure */
	assert_int_equal(errq_buf_printf(&b, "%d", 42), 0);
	assert_string_equal(b.p, "012345678942");
	errq_buf_free(&b);

	errq_buf_init(&b, 1024);
	const char in[] = "q\"b\\n\n\x01 \xC3\xA9 \xFF";
	assert_int_equal(errq_buf_add_json_str(&b, in, sizeof(in) - 1), 0);
	assert_string_equal(b.p, "\"q\\\"b\\\\n\\n\\u0001 \xC3\xA9 \xEF\xBF\xBD\"");
	errq_buf_free(&b);
}

static void test_hex(void **state)
{
	uint8_t in[3] = {0x00, 0xAB, 0xff}, out[3];
	char hex[7];
	errq_hex_encode(in, 3, hex);
	assert_string_equal(hex, "00abff");
	assert_int_equal(errq_hex_decode("00ABff", out, 3), 0);
	assert_memory_equal(in, out, 3);
	assert_int_equal(errq_hex_decode("00abf", out, 3), -1);
	assert_int_equal(errq_hex_decode("00abfg", out, 3), -1);
}

static void test_ids_are_ordered_uuidv7(void **state)
{
	struct errq_idgen g;
	errq_idgen_init(&g);
	uint8_t prev[16], cur[16];
	uint64_t ms = 1795716191482ULL;
	errq_idgen_next(&g, ms, prev);
	assert_int_equal(errq_id_ms(prev), ms);
	assert_int_equal(prev[6] >> 4, 7);      /* version */
	assert_int_equal(prev[8] >> 6, 2);      /* variant 10 */
	/* 10 000 ids in the same millisecond stay strictly increasing (the counter wraps by
	 * borrowing the next millisecond) */
	for (int i = 0; i < 10000; i++) {
		errq_idgen_next(&g, ms, cur);
		assert_true(memcmp(prev, cur, 16) < 0);
		memcpy(prev, cur, 16);
	}
	/* two generators do not produce the same ids */
	struct errq_idgen h;
	errq_idgen_init(&h);
	uint8_t a[16], b[16];
	errq_idgen_next(&g, ms + 100, a);
	errq_idgen_next(&h, ms + 100, b);
	assert_memory_not_equal(a, b, 16);
}

static void test_yaml_errors_have_lines(void **state)
{
	struct errq_yaml y;
	char err[256];
	const char bad[] = "a: 1\nb: [1, 2\nc: 3\n";
	assert_int_equal(errq_yaml_load_mem(&y, "x.yaml", bad, sizeof(bad) - 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'x.yaml' line"));
	errq_yaml_free(&y);
	const char good[] = "a: 1\nb: two\n";
	assert_int_equal(errq_yaml_load_mem(&y, "x.yaml", good, sizeof(good) - 1, err, sizeof(err)), 0);
	yaml_node_t *root = errq_yaml_root(&y);
	assert_non_null(root);
	assert_int_equal(root->type, YAML_MAPPING_NODE);
	yaml_node_pair_t *p = root->data.mapping.pairs.start + 1;
	assert_string_equal(errq_yaml_scalar(errq_yaml_node(&y, p->value)), "two");
	assert_int_equal(errq_yaml_line(errq_yaml_node(&y, p->key)), 2);
	errq_yaml_free(&y);
	assert_int_equal(errq_yaml_load(&y, "/nonexistent/errq.yaml", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open '/nonexistent/errq.yaml'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc3339_format_and_parse), cmocka_unit_test(test_durations_and_since),
	    cmocka_unit_test(test_utf8),                     cmocka_unit_test(test_buf_limit_and_json),
	    cmocka_unit_test(test_hex),                      cmocka_unit_test(test_ids_are_ordered_uuidv7),
	    cmocka_unit_test(test_yaml_errors_have_lines),   cmocka_unit_test(test_log_text_format),
	    cmocka_unit_test(test_condlog_one_line_per_condition),
	    cmocka_unit_test(test_condlog_summary_period),
	};
	return cmocka_run_group_tests_name("unit_common", tests, NULL, NULL);
}
