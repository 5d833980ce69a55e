/* Integration: the grouping semantics of issue 16, against a real errqd over gRPC — a client
 * fingerprint groups a service's events by itself alone (not the error type, the message or
 * the frames), messages that differ only by ids of every common shape are one group, distinct
 * messages stay apart, and ExplainEvent and `errq explain` say what a client fingerprint
 * covers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

static struct errq_idgen G;

/* The message variants of one error: every id shape changes from one to the next. */
static const char *const storm[] = {
    "order 9f1c2b3a-77b0-4c1e-9a51-0e2b6d1f3c88 for bob.smith@example.com not found at 2026-12-07T04:31:22.123Z "
    "(db 10.0.3.17:5432, peer [2001:db8::1]:443, took 250ms, 10MB, 42%, token "
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlMTIz, GET /v1/orders?id=123&page=2, epoch [1733545882], "
    "commit 9fceb02, customer 'acme-42')",
    "order 0b8e1d55-3a2f-4e6b-8c7d-9f0a1b2c3d4e for ops+alerts@mail.example.co.uk not found at 2026-01-30 23:59:59Z "
    "(db 192.168.7.2:6432, peer [fe80::1ff:fe23:4567:890a]:8443, took 3.5s, 512KiB, 7%, token "
    "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MzM1NDU4ODJ9.ZXhhbXBsZTk4NzY1, GET /v1/orders?id=9, epoch [1733549999], "
    "commit 4f1c2a9e77, customer \"globex corp\")",
    "order 5f0c7a8e-1b2d-4c3e-8f9a-0b1c2d3e4f5a for a_b-c@x.io not found at 2026-12-07T04:31:22+01:00 "
    "(db 10.0.9.201:5432, peer [::1]:443, took 1h30m5s, 2GB, 100%, token "
    "dGhpcyBpcyBhIHNlY3JldCAxMjM0NQ==, GET /v1/orders?token=abc, epoch [1733545882123], "
    "commit a1b2c3d4e5f6, customer `initech`)",
};

/* Reports the events (taking them) in one request and asserts all were accepted. */
static void report_all(const char *addr, Errq__V1__TaskFailure **evs, size_t n)
{
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
	req.seq = 1;
	req.n_failures = n;
	req.failures = evs;
	assert_int_equal(report_request(addr, &req), (int)n);
	for (size_t i = 0; i < n; i++)
		tevent_free(evs[i]);
}

static Errq__V1__ListGroupsResponse *list_groups(const char *addr, const char *service)
{
	Errq__V1__ListGroupsRequest req = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	req.service = (char *)service;
	req.sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_COUNT;
	grpc_slice out;
	char det[256];
	grpc_status_code st = query_call(addr, "/errq.v1.Query/ListGroups", &req.base, &out, det, sizeof(det));
	if (st != GRPC_STATUS_OK)
		fail_msg("ListGroups: status %d: %s", (int)st, det);
	Errq__V1__ListGroupsResponse *r =
	    errq__v1__list_groups_response__unpack(NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
	grpc_slice_unref(out);
	assert_non_null(r);
	return r;
}

static uint64_t sum_totals(const Errq__V1__ListGroupsResponse *r)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < r->n_groups; i++)
		sum += r->groups[i]->total;
	return sum;
}

/* The service's groups once their totals add up to want (the counts may trail the commit). */
static Errq__V1__ListGroupsResponse *groups_totalling(const char *addr, const char *service, uint64_t want)
{
	Errq__V1__ListGroupsResponse *r = list_groups(addr, service);
	WAIT_FOR(sum_totals(r) == want ||
		 (errq__v1__list_groups_response__free_unpacked(r, NULL), r = list_groups(addr, service), false));
	return r;
}

/* ExplainEvent for the newest event of a group. */
static Errq__V1__ExplainEventResponse *explain_group(const char *addr, const char *fingerprint, char evid[33])
{
	Errq__V1__ListEventsRequest lr = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	lr.fingerprint = (char *)fingerprint;
	lr.limit = 1;
	grpc_slice out;
	assert_int_equal(query_call(addr, "/errq.v1.Query/ListEvents", &lr.base, &out, NULL, 0), GRPC_STATUS_OK);
	Errq__V1__ListEventsResponse *ev =
	    errq__v1__list_events_response__unpack(NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
	grpc_slice_unref(out);
	assert_non_null(ev);
	assert_int_equal(ev->n_events, 1);
	assert_int_equal(ev->events[0]->event_id.len, 16);
	errq_hex_encode(ev->events[0]->event_id.data, 16, evid);
	Errq__V1__GetEventRequest er = ERRQ__V1__GET_EVENT_REQUEST__INIT;
	er.event_id = ev->events[0]->event_id;
	assert_int_equal(query_call(addr, "/errq.v1.Query/ExplainEvent", &er.base, &out, NULL, 0), GRPC_STATUS_OK);
	errq__v1__list_events_response__free_unpacked(ev, NULL);
	Errq__V1__ExplainEventResponse *x =
	    errq__v1__explain_event_response__unpack(NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
	grpc_slice_unref(out);
	assert_non_null(x);
	return x;
}

/* ExplainEvent for the newest event of r's first group (r is freed), whose fingerprint goes
 * to fp; asserts this collector computes that fingerprint again. */
static Errq__V1__ExplainEventResponse *explain_first(const char *addr, Errq__V1__ListGroupsResponse *r, char fp[32],
						     char evid[33])
{
	errq_snprintf(fp, 32, "%s", r->groups[0]->fingerprint);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	Errq__V1__ExplainEventResponse *x = explain_group(addr, fp, evid);
	assert_string_equal(x->recomputed, fp);
	return x;
}

static void test_client_fingerprint_alone(void **state)
{
	struct errqd_proc D = {0};
	assert_int_equal(errqd_start(&D, NULL), 0);
	/* three exception types, three messages, one with frames: one fingerprint the client chose */
	Errq__V1__TaskFailure *evs[5] = {
	    tevent_new(&G, "checkout", "TimeoutError", "payment provider timed out after 3000 ms"),
	    tevent_new(&G, "checkout", "ConnectionRefusedError", "connect call failed ('10.0.3.17', 443)"),
	    tevent_new(&G, "checkout", "ssl.SSLError", "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
	    /* the same fingerprint in another service: its own group */
	    tevent_new(&G, "billing", "TimeoutError", "payment provider timed out after 3000 ms"),
	    /* no fingerprint: the error type still counts */
	    tevent_new(&G, "checkout", "TimeoutError", "payment provider timed out after 3000 ms"),
	};
	for (int i = 0; i < 4; i++)
		tevent_set(&evs[i]->fingerprint, "payments-provider-down");
	evs[2]->frames = calloc(1, sizeof(*evs[2]->frames));
	evs[2]->frames[0] = calloc(1, sizeof(**evs[2]->frames));
	errq__v1__frame__init(evs[2]->frames[0]);
	tevent_set(&evs[2]->frames[0]->function, "charge_card");
	tevent_set(&evs[2]->frames[0]->file, "payments.py");
	evs[2]->frames[0]->in_app = 1;
	evs[2]->n_frames = 1;
	report_all(D.addr, evs, 5);

	Errq__V1__ListGroupsResponse *r = groups_totalling(D.addr, "checkout", 4);
	assert_int_equal(r->n_groups, 2); /* the client's group and the unfingerprinted timeout */
	assert_int_equal(r->groups[0]->total, 3);
	assert_int_equal(r->groups[0]->grouping_version, 2);
	/* ExplainEvent: the basis, and exactly what was hashed: the service and the fingerprint */
	char fp[32], evid[33];
	Errq__V1__ExplainEventResponse *x = explain_first(D.addr, r, fp, evid);
	assert_string_equal(x->basis, "client_fingerprint");
	assert_int_equal(x->grouping_version, 2);
	assert_int_equal(x->n_components, 2);
	assert_string_equal(x->components[0], "service: checkout");
	assert_string_equal(x->components[1], "client fingerprint: payments-provider-down");
	errq__v1__explain_event_response__free_unpacked(x, NULL);
	r = groups_totalling(D.addr, "billing", 1);
	assert_int_equal(r->n_groups, 1);
	assert_string_not_equal(r->groups[0]->fingerprint, fp);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	/* `errq explain` says it to people */
	char *err = NULL;
	char *out = harness_errq(D.addr, 0, &err, (const char *const[]){"explain", evid, NULL});
	fprintf(stderr, "errq explain %s:\n%s", evid, out);
	/* the table wraps long fields: compare with each run of white space as one space */
	size_t o = 0;
	for (size_t i = 0; out[i]; i++)
		if (!(out[i] == ' ' || out[i] == '\n') || (o && out[o - 1] != ' '))
			out[o++] = out[i] == '\n' ? ' ' : out[i];
	out[o] = '\0';
	assert_non_null(strstr(out, "client_fingerprint"));
	assert_non_null(strstr(out, "not the error type, the message or the frames"));
	assert_non_null(strstr(out, "the current grouping agrees"));
	free(out);
	free(err);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

static void test_id_storm_is_one_group(void **state)
{
	struct errqd_proc D = {0};
	assert_int_equal(errqd_start(&D, NULL), 0);
	enum { N = sizeof(storm) / sizeof(storm[0]) };
	Errq__V1__TaskFailure *evs[N + 3];
	for (size_t i = 0; i < N; i++)
		evs[i] = tevent_new(&G, "orders", "LookupError", storm[i]);
	/* distinct: other words around the same ids, or another error type */
	evs[N] = tevent_new(&G, "orders", "LookupError",
			    "order 9f1c2b3a-77b0-4c1e-9a51-0e2b6d1f3c88 was cancelled by bob.smith@example.com");
	evs[N + 1] = tevent_new(&G, "orders", "LookupError", "connection to 10.0.3.17:5432 refused");
	evs[N + 2] = tevent_new(&G, "orders", "KeyError", storm[0]);
	report_all(D.addr, evs, N + 3);

	Errq__V1__ListGroupsResponse *r = groups_totalling(D.addr, "orders", N + 3);
	assert_int_equal(r->n_groups, 4);
	assert_int_equal(r->groups[0]->total, N);
	for (size_t i = 1; i < r->n_groups; i++)
		assert_int_equal(r->groups[i]->total, 1);
	/* explain shows the normalized message that was hashed */
	char fp[32], evid[33];
	Errq__V1__ExplainEventResponse *x = explain_first(D.addr, r, fp, evid);
	assert_string_equal(x->basis, "message");
	assert_int_equal(x->n_components, 3);
	assert_string_equal(x->components[1], "error_type: LookupError");
	assert_string_equal(x->components[2],
			    "message: order <uuid> for <email> not found at <ts> (db <ip>, peer <ip>, took <duration>, "
			    "<size>, <n>%, token <token>, GET /v1/orders?<query> epoch [<n>], commit <hex>, customer <str>)");
	errq__v1__explain_event_response__free_unpacked(x, NULL);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

int main(void)
{
	grpc_init();
	errq_idgen_init(&G);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_fingerprint_alone),
	    cmocka_unit_test(test_id_storm_is_one_group),
	};
	int rc = cmocka_run_group_tests_name("integration_grouping", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
