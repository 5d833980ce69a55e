/* Unit: quota.c, the token buckets, on an injected clock (every now is given). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "errq_time.h"
#include "quota.h"

#define S ERRQ_NS_PER_SEC
#define T0 (1000 * S) /* any start: the buckets start full whatever the clock says */

static struct quota *make(uint64_t rate, uint64_t burst, uint64_t srate, uint64_t sburst, const char *ov, size_t slots)
{
	struct quota *q = NULL;
	char err[256];
	struct quota_opts o = {.rate = rate, .burst = burst, .service_rate = srate, .service_burst = sburst,
			       .overrides = ov, .max_services = slots};
	if (quota_new(&q, &o, err, sizeof(err)))
		fail_msg("quota_new: %s", err);
	assert_non_null(q);
	return q;
}

/* How many of n events of service at now pass. */
static int take_n(struct quota *q, const char *service, uint64_t now, int n)
{
	char why[QUOTA_REASON_MAX];
	int ok = 0;
	for (int i = 0; i < n; i++)
		ok += quota_take(q, service, now, why);
	return ok;
}

static void test_all_off_is_no_object(void **state)
{
	struct quota *q = (struct quota *)1;
	char err[128], why[QUOTA_REASON_MAX];
	struct quota_opts o = {.burst = 50, .service_burst = 7}; /* bursts without rates: off */
	assert_int_equal(quota_new(&q, &o, err, sizeof(err)), 0);
	assert_null(q);
	assert_true(quota_take(NULL, "svc", T0, why));
	struct quota_stats st;
	quota_get_stats(NULL, &st);
	assert_int_equal(st.rejected_service + st.rejected_global, 0);
	quota_free(NULL);
}

static void test_service_burst_then_rate(void **state)
{
	struct quota *q = make(0, 0, 10, 5, NULL, 0); /* 10 events/s, bucket of 5 */
	char why[QUOTA_REASON_MAX];
	assert_int_equal(take_n(q, "checkout", T0, 8), 5); /* the burst, at one instant */
	assert_false(quota_take(q, "checkout", T0, why));
	assert_string_equal(why, "quota_exceeded: service 'checkout' over 10 events/s");
	/* one token per 100 ms: 99 ms is not enough, 100 ms is exactly one */
	assert_int_equal(take_n(q, "checkout", T0 + 99 * ERRQ_NS_PER_MS, 1), 0);
	assert_int_equal(take_n(q, "checkout", T0 + 100 * ERRQ_NS_PER_MS, 2), 1);
	/* 250 ms later: 2.5 tokens, 2 events; the half token is kept */
	assert_int_equal(take_n(q, "checkout", T0 + 350 * ERRQ_NS_PER_MS, 3), 2);
	assert_int_equal(take_n(q, "checkout", T0 + 400 * ERRQ_NS_PER_MS, 1), 1); /* 0.5 + 0.5 */
	/* a long pause refills to the burst, never past it */
	assert_int_equal(take_n(q, "checkout", T0 + 3600 * S, 100), 5);
	/* a clock that goes back (another thread's older now) takes nothing away, adds nothing */
	assert_int_equal(take_n(q, "checkout", T0 + 3599 * S, 1), 0);
	struct quota_stats st;
	quota_get_stats(q, &st);
	assert_int_equal(st.rejected_service, 3 + 1 + 1 + 1 + 1 + 95 + 1);
	assert_int_equal(st.rejected_global, 0);
	assert_int_equal(st.services, 1);
	quota_free(q);
}

static void test_burst_defaults_to_rate(void **state)
{
	struct quota *q = make(0, 0, 7, 0, NULL, 0);
	assert_int_equal(take_n(q, "a", T0, 20), 7);
	quota_free(q);
}

static void test_services_are_isolated_until_the_global_bucket(void **state)
{
	/* each service 10 (burst 10), the collector 25 */
	struct quota *q = make(1, 25, 1, 10, NULL, 0);
	char why[QUOTA_REASON_MAX];
	assert_int_equal(take_n(q, "a", T0, 15), 10);
	assert_int_equal(take_n(q, "b", T0, 15), 10); /* a's storm cost b nothing */
	assert_int_equal(take_n(q, "c", T0, 4), 4);
	assert_int_equal(take_n(q, "c", T0, 4), 1); /* the global bucket is empty now */
	assert_false(quota_take(q, "d", T0, why));
	assert_string_equal(why, "quota_exceeded: collector over 1 events/s");
	/* refused by the global bucket, c's own bucket kept its tokens: 10 - 5 = 5 */
	assert_int_equal(take_n(q, "c", T0 + 5 * S, 100), 5); /* global refilled 5 */
	struct quota_stats st;
	quota_get_stats(q, &st);
	assert_int_equal(st.rejected_service, 5 + 5);
	assert_int_equal(st.rejected_global, 3 + 1 + 95);
	quota_free(q);
}

static void test_global_only(void **state)
{
	struct quota *q = make(100, 3, 0, 0, NULL, 0);
	assert_int_equal(take_n(q, "a", T0, 2) + take_n(q, "b", T0, 2), 3);
	assert_int_equal(take_n(q, "b", T0 + 10 * ERRQ_NS_PER_MS, 5), 1);
	quota_free(q);
}

static void test_overrides(void **state)
{
	struct quota *q = make(0, 0, 2, 2, " noisy=1/1, vip=0 ,batch=5", 0);
	assert_int_equal(take_n(q, "noisy", T0, 10), 1);
	assert_int_equal(take_n(q, "vip", T0, 1000), 1000); /* 0: no bucket of its own */
	assert_int_equal(take_n(q, "batch", T0, 10), 5);  /* burst = rate */
	assert_int_equal(take_n(q, "other", T0, 10), 2);
	assert_int_equal(take_n(q, "noisy2", T0, 10), 2); /* a name, not a prefix */
	quota_free(q);

	const char *bad[] = {"x", "=5", "x=", "x=-1", "x=5/", "x=5/y", "x=1e3", "x=20000000", "a=1,a=2", "x=5/2000000000"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct quota_opts o = {.service_rate = 1, .overrides = bad[i]};
		char err[256] = "";
		q = (struct quota *)1;
		assert_int_equal(quota_new(&q, &o, err, sizeof(err)), -1);
		assert_null(q);
		if (!strstr(err, "quota.service_overrides: "))
			fail_msg("'%s': %s", bad[i], err);
	}
	char many[QUOTA_MAX_OVERRIDES * 8 + 16] = "";
	size_t len = 0;
	for (int i = 0; i <= QUOTA_MAX_OVERRIDES; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len, "s%d=1,", i);
	struct quota_opts o = {.overrides = many};
	char err[256];
	assert_int_equal(quota_new(&q, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 64 services"));
	struct quota_opts big = {.rate = QUOTA_MAX_RATE + 1};
	assert_int_equal(quota_new(&q, &big, err, sizeof(err)), -1);
}

/* The table is bounded: services past it share one bucket; an idle service's slot is reused. */
static void test_table_full_shares_one_bucket(void **state)
{
	struct quota *q = make(0, 0, 1, 2, NULL, 4); /* 4 slots, 1 event/s, burst 2 */
	char name[16];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(take_n(q, name, T0, 1), 1); /* each holds a slot, not full */
	}
	struct quota_stats st;
	quota_get_stats(q, &st);
	assert_int_equal(st.services, 4);
	/* two newcomers find no slot: they share one bucket of 2 */
	assert_int_equal(take_n(q, "n1", T0, 2), 2);
	assert_int_equal(take_n(q, "n2", T0, 2), 0);
	quota_get_stats(q, &st);
	assert_int_equal(st.shared_events, 4);
	/* a second later s0..s3 are full again (idle): a newcomer takes one's slot */
	assert_int_equal(take_n(q, "n3", T0 + S, 5), 2);
	quota_get_stats(q, &st);
	assert_int_equal(st.shared_events, 4); /* n3 has a slot of its own */
	assert_int_equal(st.services, 4);
	quota_free(q);
}

/* Huge pauses and rates stay in 64 bits. */
static void test_no_overflow(void **state)
{
	struct quota *q = make(QUOTA_MAX_RATE, 1000000000, QUOTA_MAX_RATE, 1000000000, NULL, 0);
	assert_int_equal(take_n(q, "a", T0, 3), 3);
	assert_int_equal(take_n(q, "a", UINT64_MAX - 1, 3), 3);
	quota_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_off_is_no_object),
	    cmocka_unit_test(test_service_burst_then_rate),
	    cmocka_unit_test(test_burst_defaults_to_rate),
	    cmocka_unit_test(test_services_are_isolated_until_the_global_bucket),
	    cmocka_unit_test(test_global_only),
	    cmocka_unit_test(test_overrides),
	    cmocka_unit_test(test_table_full_shares_one_bucket),
	    cmocka_unit_test(test_no_overflow),
	};
	return cmocka_run_group_tests_name("unit_quota", tests, NULL, NULL);
}
