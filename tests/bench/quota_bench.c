/* errq-quota-bench (built from tests/, as it measures an errqd internal): the cost of quota_take() (server/quota.h), which runs on the gRPC threads
 * once per valid event when a quota is set.  One thread, then two threads on one quota (the
 * mutex contended as on a 2-queue errqd); services cycle over 1, 100 and 5 000 names (the
 * last past the 4 096-slot table: the shared bucket).  Prints ns per call.
 *   errq-quota-bench [calls per case, default 2000000] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "errq_str.h"
#include "errq_time.h"
#include "quota.h"

struct run {
	struct quota *q;
	int services;
	long calls;
	char (*names)[24];
};

static void *worker(void *arg)
{
	struct run *r = arg;
	char why[QUOTA_REASON_MAX];
	uint64_t now = errq_mono_ns();
	long ok = 0;
	for (long i = 0; i < r->calls; i++)
		ok += quota_take(r->q, r->names[i % r->services], now + (uint64_t)i, why);
	return (void *)ok;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 2000000;
	static char names[5000][24];
	for (int i = 0; i < 5000; i++)
		errq_snprintf(names[i], sizeof(names[i]), "service-%d", i);
	const int services[] = {1, 100, 5000};
	printf("threads services ns_per_call\n");
	for (int threads = 1; threads <= 2; threads++)
		for (size_t k = 0; k < sizeof(services) / sizeof(services[0]); k++) {
			struct quota *q;
			char err[256];
			/* rates high enough that the buckets rarely refuse: the common path */
			struct quota_opts o = {.rate = 10000000, .burst = 1000000000, .service_rate = 1000000,
					       .service_burst = 1000000000};
			if (quota_new(&q, &o, err, sizeof(err))) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
			struct run r = {q, services[k], calls, names};
			pthread_t t[2];
			uint64_t t0 = errq_mono_ns();
			for (int i = 0; i < threads; i++)
				pthread_create(&t[i], NULL, worker, &r);
			for (int i = 0; i < threads; i++)
				pthread_join(t[i], NULL);
			double ns = (double)(errq_mono_ns() - t0) / (double)calls; /* wall time per call per thread */
			printf("%d %d %.1f\n", threads, services[k], ns);
			quota_free(q);
		}
	return 0;
}
