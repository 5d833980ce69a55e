/* Unit: server/grouping.c — the fingerprint, on real-looking failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "grouping.h"

struct fr {
	const char *function, *file, *module;
	uint32_t line;
	int in_app;
};

/* A TaskFailure over static strings and up to 8 frames (outermost first). */
struct ev {
	Errq__V1__TaskFailure tf;
	Errq__V1__Frame f[8];
	Errq__V1__Frame *fp[8];
};

static void mk(struct ev *e, const char *service, const char *type, const char *msg, const struct fr *frames, int n)
{
	errq__v1__task_failure__init(&e->tf);
	e->tf.service = (char *)service;
	e->tf.error_type = (char *)type;
	e->tf.message = (char *)msg;
	for (int i = 0; i < n; i++) {
		errq__v1__frame__init(&e->f[i]);
		e->f[i].function = (char *)frames[i].function;
		e->f[i].file = (char *)frames[i].file;
		e->f[i].module = (char *)(frames[i].module ? frames[i].module : "");
		e->f[i].line = frames[i].line;
		e->f[i].in_app = frames[i].in_app;
		e->fp[i] = &e->f[i];
	}
	e->tf.n_frames = (size_t)n;
	e->tf.frames = n ? e->fp : NULL;
}

static void fp(struct ev *e, char out[FINGERPRINT_HEX_LEN + 1])
{
	grouping_fingerprint(&e->tf, out, NULL, 0);
}

/* An asyncio task that timed out talking to the payment provider. */
static const struct fr charge_stack[] = {
    {"_run_once", "/usr/lib/python3.11/asyncio/base_events.py", "asyncio.base_events", 1936, 0},
    {"handle_order", "/srv/checkout/orders.py", "checkout.orders", 88, 1},
    {"charge_card", "/srv/checkout/payments.py", "checkout.payments", 142, 1},
    {"post", "/usr/lib/python3/site-packages/httpx/_client.py", "httpx._client", 1848, 0},
    {"wait_for", "/usr/lib/python3.11/asyncio/tasks.py", "asyncio.tasks", 479, 0},
};

static void test_numbers_in_message_do_not_split(void **state)
{
	char a[17], b[17];
	struct ev x, y;
	mk(&x, "checkout", "TimeoutError", "payment provider timed out after 3000 ms (attempt 2)", charge_stack, 5);
	mk(&y, "checkout", "TimeoutError", "payment provider timed out after 5000 ms (attempt 3)", charge_stack, 5);
	assert_int_equal(grouping_fingerprint(&x.tf, a, NULL, 0), GROUPING_BY_FRAMES);
	fp(&y, b);
	assert_string_equal(a, b);
	/* no frames: the normalized message decides, and numbers, ids and quotes still merge */
	mk(&x, "billing", "KeyError", "no invoice 0x7f3a9c for customer 'acme-42' (request 4f1c2a9e-77b0-4c1e-9a51-0e2b6d1f3c88)", NULL, 0);
	mk(&y, "billing", "KeyError", "no invoice 0x11 for customer 'globex' (request 0b8e1d55-3a2f-4e6b-8c7d-9f0a1b2c3d4e)", NULL, 0);
	assert_int_equal(grouping_fingerprint(&x.tf, a, NULL, 0), GROUPING_BY_MESSAGE);
	fp(&y, b);
	assert_string_equal(a, b);
	/* line numbers never count */
	struct fr moved[5];
	memcpy(moved, charge_stack, sizeof(moved));
	moved[2].line = 170;
	mk(&x, "checkout", "TimeoutError", "m", charge_stack, 5);
	mk(&y, "checkout", "TimeoutError", "m", moved, 5);
	fp(&x, a);
	fp(&y, b);
	assert_string_equal(a, b);
}

static void test_same_message_two_functions_split(void **state)
{
	static const struct fr refund_stack[] = {
	    {"_run_once", "/usr/lib/python3.11/asyncio/base_events.py", "asyncio.base_events", 1936, 0},
	    {"handle_refund", "/srv/checkout/refunds.py", "checkout.refunds", 40, 1},
	    {"refund_card", "/srv/checkout/payments.py", "checkout.payments", 201, 1},
	    {"post", "/usr/lib/python3/site-packages/httpx/_client.py", "httpx._client", 1848, 0},
	};
	char a[17], b[17];
	struct ev x, y;
	mk(&x, "checkout", "TimeoutError", "payment provider timed out after 3000 ms", charge_stack, 5);
	mk(&y, "checkout", "TimeoutError", "payment provider timed out after 3000 ms", refund_stack, 4);
	fp(&x, a);
	fp(&y, b);
	assert_string_not_equal(a, b);
	/* library frames do not count when the application's are marked: a different httpx
	 * frame under the same application frames is the same group */
	struct fr other_lib[5];
	memcpy(other_lib, charge_stack, sizeof(other_lib));
	other_lib[3].function = "send";
	other_lib[4].function = "_send_single_request";
	mk(&y, "checkout", "TimeoutError", "payment provider timed out after 3000 ms", other_lib, 5);
	fp(&y, b);
	assert_string_equal(a, b);
}

static void test_unmarked_frames_all_count_and_innermost_five(void **state)
{
	static const struct fr c_stack[] = {
	    {"main", "main.c", NULL, 10, 0},       {"serve", "server.c", NULL, 20, 0},
	    {"dispatch", "server.c", NULL, 30, 0}, {"handle", "handler.c", NULL, 40, 0},
	    {"parse", "parse.c", NULL, 50, 0},     {"read_field", "parse.c", NULL, 60, 0},
	    {"expect", "lexer.c", NULL, 70, 0},
	};
	char a[17], b[17], why[1024];
	struct ev x, y;
	mk(&x, "ingest", "ParseError", "bad token", c_stack, 7);
	assert_int_equal(grouping_fingerprint(&x.tf, a, why, sizeof(why)), GROUPING_BY_FRAMES);
	/* the five innermost, innermost first; main and serve are not among them */
	assert_non_null(strstr(why, "frame: expect in lexer.c"));
	assert_non_null(strstr(why, "frame: dispatch in server.c"));
	assert_null(strstr(why, "serve in"));
	assert_null(strstr(why, "main in"));
	/* so a different outer caller is the same group, a different inner one is not */
	struct fr st[7];
	memcpy(st, c_stack, sizeof(st));
	st[0].function = "worker_main";
	mk(&y, "ingest", "ParseError", "bad token", st, 7);
	fp(&y, b);
	assert_string_equal(a, b);
	st[6].function = "expect_char";
	mk(&y, "ingest", "ParseError", "bad token", st, 7);
	fp(&y, b);
	assert_string_not_equal(a, b);
}

static void test_client_fingerprint_service_and_type(void **state)
{
	char a[17], b[17], why[512];
	struct ev x, y;
	mk(&x, "checkout", "TimeoutError", "one", charge_stack, 5);
	mk(&y, "checkout", "TimeoutError", "two", NULL, 0);
	x.tf.fingerprint = y.tf.fingerprint = (char *)"payments-down";
	assert_int_equal(grouping_fingerprint(&x.tf, a, why, sizeof(why)), GROUPING_BY_CLIENT);
	assert_non_null(strstr(why, "client fingerprint: payments-down"));
	fp(&y, b);
	assert_string_equal(a, b);
	/* never across services or error types */
	mk(&y, "billing", "TimeoutError", "one", charge_stack, 5);
	y.tf.fingerprint = (char *)"payments-down";
	fp(&y, b);
	assert_string_not_equal(a, b);
	mk(&x, "checkout", "TimeoutError", "m", NULL, 0);
	mk(&y, "checkout", "ValueError", "m", NULL, 0);
	fp(&x, a);
	fp(&y, b);
	assert_string_not_equal(a, b);
	/* the separators matter: ("ab", "c") is not ("a", "bc") */
	mk(&x, "ab", "c", "m", NULL, 0);
	mk(&y, "a", "bc", "m", NULL, 0);
	fp(&x, a);
	fp(&y, b);
	assert_string_not_equal(a, b);
}

static void test_normalize(void **state)
{
	char out[256];
	const struct {
		const char *in, *want;
	} cases[] = {
	    {"timed out after 3000 ms", "timed out after <n> ms"},
	    {"connect to 10.0.3.17:5432 failed", "connect to <n>:<n> failed"},
	    {"object at 0x7ffd5e8c1a20", "object at <hex>"},
	    {"commit 9fceb02d0ae598e95dc970b74767f19372d61af8 missing", "commit <hex> missing"},
	    {"job deadbeef12 failed", "job <hex> failed"},
	    {"user \"bob\" not found in 'east'", "user <str> not found in <str>"},
	    {"id 550e8400-e29b-41d4-a716-446655440000 gone", "id <uuid> gone"},
	    {"the 3rd retry of 2xx checks", "the 3rd retry of 2xx checks"},
	    {"decade deadbeef", "decade deadbeef"},
	    {"it's fine", "it's fine"},
	    {"pi is 3.14159", "pi is <n>"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		grouping_normalize_message(cases[i].in, out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("normalize('%s') = '%s', want '%s'", cases[i].in, out, cases[i].want);
	}
	/* bounded output, always terminated */
	char small[8];
	grouping_normalize_message("abcdefghijklmnop 12345", small, sizeof(small));
	assert_int_equal(strlen(small), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numbers_in_message_do_not_split),
	    cmocka_unit_test(test_same_message_two_functions_split),
	    cmocka_unit_test(test_unmarked_frames_all_count_and_innermost_five),
	    cmocka_unit_test(test_client_fingerprint_service_and_type),
	    cmocka_unit_test(test_normalize),
	};
	return cmocka_run_group_tests_name("unit_grouping", tests, NULL, NULL);
}
