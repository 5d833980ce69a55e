#include "client_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <cmocka.h>

errq_stats_t stats_of(errq_client_t *c)
{
	errq_stats_t st;
	assert_int_equal(errq_client_stats(c, &st), ERRQ_OK);
	return st;
}

void client_msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}
