/* svc_health.c: grpc.health.v1.Health/Check.  "" (the server) and errq's own services answer
 * SERVING while the collector is ready (health.h: the very answer /readyz gives) and
 * NOT_SERVING otherwise (starting, a failing database, a saturated queue, draining); any other
 * service name is NOT_FOUND, as the health-checking protocol says. */
#include <string.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "health.h"
#include "grpc/health/v1/health.pb-c.h"
#include "services.h"
#include "transport.h"

static const char *const known[] = {"", "errq.v1.Collector", "errq.v1.Query", "errq.v1.Alerts",
				    "grpc.health.v1.Health"};

static grpc_status_code check(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct health *h = ctx;
	Grpc__Health__V1__HealthCheckRequest *in =
	    grpc__health__v1__health_check_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	if (!in) {
		errq_snprintf(details, dsz, "cannot decode HealthCheckRequest");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	grpc_status_code st = GRPC_STATUS_NOT_FOUND;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(in->service, known[i]) == 0)
			st = GRPC_STATUS_OK;
	if (st != GRPC_STATUS_OK) {
		errq_snprintf(details, dsz, "unknown service '%.200s'", in->service);
	} else {
		Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
		char why[HEALTH_REASON_MAX];
		out.status = health_ready(h, errq_mono_ns(), why, sizeof(why))
				 ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
						  : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
		*resp = errq_bb_from_msg(&out.base);
		if (!*resp) {
			errq_snprintf(details, dsz, "out of memory");
			st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		}
	}
	grpc__health__v1__health_check_request__free_unpacked(in, NULL);
	return st;
}

int health_svc_register(struct transport *t, struct health *h)
{
	return transport_add_unary(t, "/grpc.health.v1.Health/Check", check, h);
}
