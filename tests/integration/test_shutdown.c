/* Integration: SIGTERM while clients stream.  errqd must stop reading, commit what it read,
 * answer it, end the calls with a status and exit 0 within 10 s — and every event it
 * acknowledged must be in the database afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <cmocka.h>

#include "errq_time.h"
#include "harness.h"

static void test_sigterm_loses_nothing_acknowledged(void **state)
{
	struct errqd_proc D;
	struct loadgen lg = {.nstreams = 6, .batch = 40, .inflight = 4, .max_batches = 4000,
			     .service_prefix = "svc-shutdown"};
	memset(&D, 0, sizeof(D));
	assert_int_equal(errqd_start(&D, NULL), 0);
	lg.addr = D.addr;
	assert_int_equal(loadgen_start(&lg), 0);
	/* let the streams get going, then stop the collector in the middle of them */
	uint64_t deadline = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	while (atomic_load(&lg.acked_batches) < lg.nstreams * 10 && errq_mono_ns() < deadline) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	assert_true(atomic_load(&lg.acked_batches) >= lg.nstreams * 10);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	loadgen_stop(&lg);

	/* errqd's own account: drained well within the 10 s contract */
	char *log = NULL;
	const char *cat[] = {"/bin/cat", D.log, NULL};
	assert_int_equal(run_capture(cat, NULL, &log, NULL), 0);
	const char *key = "\"msg\":\"drained\",\"ms\":\"";
	const char *dr = strstr(log, key);
	assert_non_null(dr);
	long ms = strtol(dr + strlen(key), NULL, 10);
	free(log);
	assert_true(ms >= 0 && ms < 10000);

	int sent, acked, unavailable;
	loadgen_totals(&lg, &sent, &acked, &unavailable);
	assert_int_equal(loadgen_missing_acked(&lg, D.db), 0);
	print_message("sent %d batches, %d acknowledged and all stored; %d streams ended UNAVAILABLE; "
		      "drained in %ld ms\n", sent, acked, unavailable, ms);
	assert_true(acked >= lg.nstreams * 10);
	assert_true(unavailable >= 1); /* the streams were ended by the collector, with a status */
	loadgen_free(&lg);
	errqd_cleanup(&D);
}

int main(void)
{
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sigterm_loses_nothing_acknowledged),
	};
	int rc = cmocka_run_group_tests_name("integration_shutdown", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
