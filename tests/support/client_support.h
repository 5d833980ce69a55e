/* client_support.h: what the liberrq tests (tests/client/) share: a client's counters, and a
 * wait on them by deadline.  With harness.h (errqd_start, WAIT_FOR) they run a real errqd. */
#ifndef ERRQ_CLIENT_SUPPORT_H
#define ERRQ_CLIENT_SUPPORT_H
#include <stdint.h>

#include "errq.h"
#include "errq_time.h"

/* A wait on a client's counters: far beyond what the machine needs, ASan and load included. */
#define CLIENT_WAIT_MS 60000

/* The client's counters; fails the running cmocka test when errq_client_stats does. */
errq_stats_t stats_of(errq_client_t *c);
/* Sleeps ms milliseconds between two polls. */
void client_msleep(int ms);

/* Polls the stats into st until cond holds; fails the test at CLIENT_WAIT_MS. */
#define WAIT_STATS(c, st, cond)                                                              \
	do {                                                                                 \
		uint64_t t0_ = errq_mono_ns();                                               \
		st = stats_of(c);                                                            \
		while (!(cond) && errq_mono_ns() - t0_ < CLIENT_WAIT_MS * ERRQ_NS_PER_MS) {  \
			client_msleep(5);                                                    \
			st = stats_of(c);                                                    \
		}                                                                            \
		assert_true(cond);                                                           \
	} while (0)
#endif
