/* Integration: the example reports through liberrq, errq lists what errqd stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <regex.h>
#include <jansson.h>
#include <cmocka.h>

#include "harness.h"

static struct errqd_proc D;

static int setup(void **state)
{
	memset(&D, 0, sizeof(D));
	if (errqd_start(&D, NULL))
		return -1;
	/* the example reports three failures and exits 0 once all three are acknowledged */
	const char *ex[] = {ERRQ_EXAMPLE_PATH, NULL};
	char *out = NULL, *err = NULL;
	int rc = run_capture(ex, D.addr, &out, &err);
	if (rc != 0)
		fprintf(stderr, "example failed (%d): %s%s", rc, out, err);
	free(out);
	free(err);
	return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	int st = errqd_stop(&D, SIGTERM);
	errqd_cleanup(&D);
	return st == 0 ? 0 : -1;
}

static json_t *cli_json(const char *const *argv)
{
	char *out = NULL, *err = NULL;
	assert_int_equal(run_capture(argv, D.addr, &out, &err), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	if (!j)
		fail_msg("errq printed no JSON document: %s (%s)", je.text, out);
	free(out);
	free(err);
	return j;
}

static void assert_matches(const char *s, const char *re)
{
	regex_t r;
	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&r, s, 0, NULL, 0) != 0)
		fail_msg("'%s' does not match /%s/", s, re);
	regfree(&r);
}

#define RFC3339_MS "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"

static void test_events_json(void **state)
{
	const char *argv[] = {ERRQ_CLI_PATH, "events", "-o", "json", NULL};
	json_t *a = cli_json(argv);
	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), 3);
	const char *types[3];
	for (size_t i = 0; i < 3; i++) {
		json_t *e = json_array_get(a, i);
		assert_matches(json_string_value(json_object_get(e, "event_id")), "^[0-9a-f]{32}$");
		assert_string_equal(json_string_value(json_object_get(e, "service")), "example-checkout");
		assert_matches(json_string_value(json_object_get(e, "time")), RFC3339_MS);
		assert_matches(json_string_value(json_object_get(e, "received_at")), RFC3339_MS);
		assert_non_null(json_string_value(json_object_get(e, "message")));
		types[i] = json_string_value(json_object_get(e, "error_type"));
	}
	/* newest first: the example reported network, format, timeout in that order */
	assert_string_equal(types[0], "TimeoutError");
	assert_string_equal(types[1], "JSONDecodeError");
	assert_string_equal(types[2], "ConnectionResetError");
	json_t *t = json_array_get(a, 0);
	assert_string_equal(json_string_value(json_object_get(t, "error_code")), "TIMEOUT");
	assert_int_equal(json_integer_value(json_object_get(t, "attempt")), 2);
	assert_true(json_is_false(json_object_get(t, "handled")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(t, "details"), "timeout_ms")), "5000");
	assert_int_equal(json_array_size(json_object_get(t, "frames")), 3);
	json_decref(a);

	/* -o before the subcommand, and jsonl: one object a line */
	const char *jl[] = {ERRQ_CLI_PATH, "-o", "jsonl", "events", NULL};
	char *out = NULL;
	assert_int_equal(run_capture(jl, D.addr, &out, NULL), 0);
	int lines = 0;
	for (char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, 3);
	free(out);
}

static void test_groups_json_and_table(void **state)
{
	const char *argv[] = {ERRQ_CLI_PATH, "groups", "-o", "json", NULL};
	json_t *a = cli_json(argv);
	assert_int_equal(json_array_size(a), 3); /* a group is service + error_type */
	for (size_t i = 0; i < 3; i++) {
		json_t *g = json_array_get(a, i);
		assert_matches(json_string_value(json_object_get(g, "fingerprint")), "^[0-9a-f]{16}$");
		assert_string_equal(json_string_value(json_object_get(g, "service")), "example-checkout");
		assert_int_equal(json_integer_value(json_object_get(g, "count")), 1);
		assert_int_equal(json_integer_value(json_object_get(g, "total")), 1);
		assert_matches(json_string_value(json_object_get(g, "first_seen")), RFC3339_MS);
		assert_matches(json_string_value(json_object_get(g, "last_seen")), RFC3339_MS);
		assert_string_equal(json_string_value(json_object_get(g, "status")), "unresolved");
	}
	json_decref(a);
	const char *tbl[] = {ERRQ_CLI_PATH, "groups", NULL};
	char *out = NULL;
	assert_int_equal(run_capture(tbl, D.addr, &out, NULL), 0);
	assert_non_null(strstr(out, "TimeoutError"));
	assert_non_null(strstr(out, "JSONDecodeError"));
	assert_non_null(strstr(out, "ConnectionResetError"));
	free(out);
}

static void test_unreachable_and_usage(void **state)
{
	const char *argv[] = {ERRQ_CLI_PATH, "--addr", "127.0.0.1:1", "events", NULL};
	char *out = NULL, *err = NULL;
	assert_int_equal(run_capture(argv, NULL, &out, &err), 2);
	assert_non_null(strstr(err, "cannot reach collector at 127.0.0.1:1"));
	assert_int_equal(strchr(err, '\n') - err, (long)strlen(err) - 1); /* one line */
	assert_string_equal(out, "");
	free(out);
	free(err);
	const char *bad[] = {ERRQ_CLI_PATH, "evnets", NULL};
	assert_int_equal(run_capture(bad, D.addr, NULL, NULL), 1);
	const char *since[] = {ERRQ_CLI_PATH, "events", "--since", "yesterday", NULL};
	assert_int_equal(run_capture(since, D.addr, NULL, NULL), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_events_json),
	    cmocka_unit_test(test_groups_json_and_table),
	    cmocka_unit_test(test_unreachable_and_usage),
	};
	return cmocka_run_group_tests_name("integration_cli", tests, setup, teardown);
}
