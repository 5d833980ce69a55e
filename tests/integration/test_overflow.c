/* Integration: the groups-per-service cap against a real errqd (issue 16; server/overflow.h).
 * With groups_per_service = 5, a service that reports 16 distinct error types keeps exactly 5
 * groups plus its overflow group, which counts exactly the 11 events of the fingerprints past
 * the limit (an event of a group it already has still goes to that group); errqd logs one
 * warning for the service however many of its events overflow, none for a service under the
 * limit, and `errq status` (text and JSON) names the service with its overflow group's count.
 * After a restart the group and its count survive and the warning comes once more, at the
 * service's first new fingerprint past the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <jansson.h>
#include <cmocka.h>

#include "errq_str.h"
#include "harness.h"

#define LIMIT 5
#define WARNING "\"msg\":\"service passed groups_per_service: its new fingerprints count in its overflow group\""

static struct errqd_proc D;
static struct errq_idgen G;

static int setup(void **state)
{
	errq_idgen_init(&G);
	harness_fixture_setup(&D);
	return 0;
}

static int teardown(void **state)
{
	return harness_fixture_teardown(&D);
}

/* Sends one request of service's events, one per type in types[lo..hi), and waits for the
 * answer: every event accepted. */
static void send_types(uint64_t seq, const char *service, int lo, int hi)
{
	Errq__V1__ReportRequest *r = treq_new(&G, seq, 0, "x", "x", "x");
	free(r->failures);
	r->failures = calloc((size_t)(hi - lo), sizeof(*r->failures));
	assert_non_null(r->failures);
	for (int i = lo; i < hi; i++) {
		char type[32];
		errq_snprintf(type, sizeof(type), "CheckoutError%02d", i);
		r->failures[r->n_failures++] = tevent_new(&G, service, type, "the payment backend refused");
	}
	assert_int_equal(report_request(D.addr, r), hi - lo);
	treq_free(r);
}

/* Lines of errqd's log that contain both a and b. */
static int log_lines(const char *a, const char *b)
{
	FILE *f = fopen(D.log, "r");
	char line[4096];
	int n = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, a) && strstr(line, b);
	fclose(f);
	return n;
}

/* `errq groups --service S -o json`. */
static json_t *groups_of(const char *service)
{
	const char *args[] = {"-o", "json", "groups", "--service", service, "--limit", "100", NULL};
	char *out = harness_errq(D.addr, 0, NULL, args);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	if (!j || !json_is_array(j))
		fail_msg("errq groups: not a JSON array: %s", out);
	free(out);
	return j;
}

/* The total of service's overflow group as `errq groups` shows it; -1 when it has none; the
 * service's other groups in *plain. */
static int64_t overflow_total(const char *service, size_t *plain)
{
	json_t *arr = groups_of(service), *g;
	size_t i;
	int64_t total = -1;
	*plain = 0;
	json_array_foreach(arr, i, g)
	{
		if (json_is_true(json_object_get(g, "overflow"))) {
			assert_int_equal(total, -1); /* one overflow group per service */
			assert_string_equal(json_string_value(json_object_get(g, "error_type")), "(overflow)");
			total = json_integer_value(json_object_get(g, "total"));
		} else {
			(*plain)++;
		}
	}
	json_decref(arr);
	return total;
}

/* The overflow group's count for service in Status (and that it is the only service listed). */
static int64_t status_overflow(const char *service)
{
	Errq__V1__StatusResponse *st = query_status(D.addr);
	int64_t v = -1;
	assert_non_null(st);
	assert_int_equal(st->overflow_services_more, 0);
	if (st->n_overflow_services == 1) {
		assert_string_equal(st->overflow_services[0]->service, service);
		assert_true(st->overflow_services[0]->since_unix_nano > 0);
		v = (int64_t)st->overflow_services[0]->events;
	} else {
		assert_int_equal(st->n_overflow_services, 0);
	}
	errq__v1__status_response__free_unpacked(st, NULL);
	return v;
}

static void test_cap_holds_and_is_said_once(void **state)
{
	const char *args[] = {"--set", "groups_per_service=5", NULL};
	assert_int_equal(errqd_start(&D, args), 0);
	size_t plain;

	/* a calm service under the limit, and checkout up to the limit: nothing overflows */
	send_types(1, "calm", 0, 3);
	send_types(2, "checkout", 0, LIMIT);
	assert_int_equal(overflow_total("checkout", &plain), -1);
	assert_int_equal(plain, LIMIT);
	assert_int_equal(status_overflow("checkout"), -1);
	assert_int_equal(log_lines(WARNING, "\"service\""), 0);

	/* 7 new fingerprints past the limit, then 4 more and 2 events of groups it has */
	send_types(3, "checkout", LIMIT, LIMIT + 7);
	WAIT_FOR(log_lines(WARNING, "\"service\":\"checkout\"") == 1);
	send_types(4, "checkout", LIMIT + 7, LIMIT + 11);
	send_types(5, "checkout", 0, 2);
	WAIT_FOR(overflow_total("checkout", &plain) == 11);
	assert_int_equal(plain, LIMIT); /* the groups stay at the limit + 1 */
	assert_int_equal(overflow_total("calm", &plain), -1);
	assert_int_equal(plain, 3);
	WAIT_FOR(status_overflow("checkout") == 11);
	assert_int_equal(log_lines(WARNING, "\"service\":\"checkout\""), 1); /* once, not per event or commit */
	assert_int_equal(log_lines(WARNING, "\"groups_per_service\":\"5\""), 1);
	assert_int_equal(log_lines(WARNING, "\"service\":\"calm\""), 0);
	Errq__V1__StatusResponse *st = query_status(D.addr);
	assert_non_null(st);
	assert_int_equal(st->overflow_events, 11);
	assert_int_equal(st->groups_total, 3 + LIMIT + 1);
	errq__v1__status_response__free_unpacked(st, NULL);

	/* errq status says so, in text and JSON */
	const char *text_args[] = {"status", NULL};
	char *out = harness_errq(D.addr, 0, NULL, text_args);
	if (!strstr(out, "service \"checkout\": 11 events in its overflow group"))
		fail_msg("errq status does not name the overflowing service:\n%s", out);
	assert_null(strstr(out, "\"calm\""));
	free(out);
	const char *json_args[] = {"-o", "json", "status", NULL};
	out = harness_errq(D.addr, 0, NULL, json_args);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je), *ovs = j ? json_object_get(j, "overflow_services") : NULL;
	assert_true(json_is_array(ovs) && json_array_size(ovs) == 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ovs, 0), "service")), "checkout");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ovs, 0), "events")), 11);
	json_decref(j);
	free(out);

	/* a restart: the overflow group and its count survive; Status lists the service again
	 * once it overflows again, and the warning comes once more */
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	assert_int_equal(errqd_start(&D, args), 0);
	assert_int_equal(status_overflow("checkout"), -1);
	send_types(6, "checkout", 0, LIMIT); /* its own groups: nothing overflows */
	assert_int_equal(log_lines(WARNING, "\"service\":\"checkout\""), 1);
	send_types(7, "checkout", 100, 103);
	send_types(8, "checkout", 103, 105);
	WAIT_FOR(overflow_total("checkout", &plain) == 16);
	assert_int_equal(plain, LIMIT);
	WAIT_FOR(status_overflow("checkout") == 16);
	assert_int_equal(log_lines(WARNING, "\"service\":\"checkout\""), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_cap_holds_and_is_said_once, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
