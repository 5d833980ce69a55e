/* Unit: the wire contract's generated code — round trips, and every field number, type and
 * name of the public protos, which other programs rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "errq/v1/collector.pb-c.h"
#include "errq/v1/query.pb-c.h"
#include "errq/v1/alerts.pb-c.h"

static void test_task_failure_round_trip(void **state)
{
	uint8_t id[16];
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(i * 7);
	Errq__V1__Frame f1 = ERRQ__V1__FRAME__INIT, f2 = ERRQ__V1__FRAME__INIT, *frames[2] = {&f1, &f2};
	f1.function = "main";
	f1.file = "app.c";
	f1.line = 10;
	f2.function = "handle";
	f2.module = "http";
	f2.in_app = 1;
	Errq__V1__TaskFailure__DetailsEntry d1 = ERRQ__V1__TASK_FAILURE__DETAILS_ENTRY__INIT, *details[1] = {&d1};
	d1.key = "host";
	d1.value = "db1:5432";
	Errq__V1__TaskFailure tf = ERRQ__V1__TASK_FAILURE__INIT, *tfs[1] = {&tf};
	tf.event_id.data = id;
	tf.event_id.len = 16;
	tf.time_unix_nano = 1795629791482000000ULL;
	tf.service = "checkout";
	tf.environment = "prod";
	tf.release = "1.2.3";
	tf.host = "web-1";
	tf.task = "charge_card";
	tf.error_type = "TimeoutError";
	tf.error_code = "TIMEOUT";
	tf.message = "h\xC3\xA9 timed out";
	tf.n_frames = 2;
	tf.frames = frames;
	tf.n_details = 1;
	tf.details = details;
	tf.fingerprint = "fp";
	tf.attempt = 3;
	tf.handled = 0;
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
	req.seq = 42;
	req.n_failures = 1;
	req.failures = tfs;

	size_t n = errq__v1__report_request__get_packed_size(&req);
	uint8_t *buf = malloc(n);
	assert_int_equal(errq__v1__report_request__pack(&req, buf), n);
	Errq__V1__ReportRequest *back = errq__v1__report_request__unpack(NULL, n, buf);
	assert_non_null(back);
	assert_int_equal(back->seq, 42);
	assert_int_equal(back->n_failures, 1);
	Errq__V1__TaskFailure *b = back->failures[0];
	assert_memory_equal(b->event_id.data, id, 16);
	assert_int_equal(b->time_unix_nano, tf.time_unix_nano);
	assert_string_equal(b->service, "checkout");
	assert_string_equal(b->environment, "prod");
	assert_string_equal(b->release, "1.2.3");
	assert_string_equal(b->host, "web-1");
	assert_string_equal(b->task, "charge_card");
	assert_string_equal(b->error_type, "TimeoutError");
	assert_string_equal(b->error_code, "TIMEOUT");
	assert_string_equal(b->message, tf.message);
	assert_int_equal(b->n_frames, 2);
	assert_string_equal(b->frames[1]->module, "http");
	assert_true(b->frames[1]->in_app);
	assert_int_equal(b->frames[0]->line, 10);
	assert_int_equal(b->n_details, 1);
	assert_string_equal(b->details[0]->value, "db1:5432");
	assert_int_equal(b->attempt, 3);
	assert_false(b->handled);
	errq__v1__report_request__free_unpacked(back, NULL);
	free(buf);
}

static void test_unknown_fields_tolerated_and_garbage_refused(void **state)
{
	/* field 99 (varint 1) that this version does not know, then seq = 5 */
	const uint8_t with_unknown[] = {0x98, 0x06, 0x01, 0x08, 0x05};
	Errq__V1__ReportRequest *r = errq__v1__report_request__unpack(NULL, sizeof(with_unknown), with_unknown);
	assert_non_null(r);
	assert_int_equal(r->seq, 5);
	errq__v1__report_request__free_unpacked(r, NULL);
	const uint8_t truncated[] = {0x12, 0x64, 0x01};
	assert_null(errq__v1__report_request__unpack(NULL, sizeof(truncated), truncated));
	/* an empty message is a valid empty batch */
	r = errq__v1__report_request__unpack(NULL, 0, (const uint8_t *)"");
	assert_non_null(r);
	assert_int_equal(r->n_failures, 0);
	errq__v1__report_request__free_unpacked(r, NULL);
}

/* ------------------------------------------------------------------ the wire contract
 *
 * Every field of every message of collector.proto, query.proto and alerts.proto, with its
 * number, type, label and (for messages and enums) the type's name; the enums' values; the
 * services' methods.  Programs outside this repository compile these protos: a renumbered,
 * retyped, renamed or removed field is a wire break and fails here.  A NEW field (a new
 * number) or message passes: append it to the .proto and, to pin it too, here.  The table
 * was generated from the descriptors at d496bce and checked against the .proto text. */

struct wire_field {
	const char *message; /* full name without "errq.v1." */
	const char *name;
	uint32_t id;
	ProtobufCType type;
	ProtobufCLabel label; /* proto3: NONE for singular fields, REPEATED for repeated and maps */
	const char *type_name; /* full name of a message or enum type, else NULL */
};

static const struct wire_field wire_fields[] = {
    /* Frame */
    {"Frame", "function", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Frame", "file", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Frame", "line", 3, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Frame", "module", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Frame", "in_app", 5, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    /* TaskFailure */
    {"TaskFailure", "event_id", 1, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "time_unix_nano", 2, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "service", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "environment", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "release", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "host", 6, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "task", 7, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "error_type", 8, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "error_code", 9, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "message", 10, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "frames", 11, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Frame"},
    {"TaskFailure", "details", 12, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.TaskFailure.DetailsEntry"},
    {"TaskFailure", "fingerprint", 13, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "attempt", 14, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure", "handled", 15, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    /* TaskFailure.DetailsEntry */
    {"TaskFailure.DetailsEntry", "key", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TaskFailure.DetailsEntry", "value", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* Outcome */
    {"Outcome", "service", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Outcome", "task", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Outcome", "ok", 3, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Outcome", "failed", 4, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Outcome", "window_start_unix_nano", 5, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Outcome", "window_seconds", 6, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    /* ReportRequest */
    {"ReportRequest", "seq", 1, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"ReportRequest", "failures", 2, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.TaskFailure"},
    {"ReportRequest", "outcomes", 3, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Outcome"},
    {"ReportRequest", "batch_id", 4, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    /* Rejection */
    {"Rejection", "index", 1, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rejection", "reason", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* ReportResponse */
    {"ReportResponse", "seq", 1, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"ReportResponse", "accepted", 2, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ReportResponse", "duplicates", 3, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ReportResponse", "rejected", 4, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Rejection"},
    /* Event */
    {"Event", "event_id", 1, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "time_unix_nano", 2, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "received_at_unix_nano", 3, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "service", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "environment", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "release", 6, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "host", 7, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "task", 8, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "error_type", 9, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "error_code", 10, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "message", 11, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "frames", 12, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Frame"},
    {"Event", "details", 13, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Event.DetailsEntry"},
    {"Event", "fingerprint", 14, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "attempt", 15, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "handled", 16, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event", "truncated", 17, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_REPEATED, NULL},
    /* Event.DetailsEntry */
    {"Event.DetailsEntry", "key", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Event.DetailsEntry", "value", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* Group */
    {"Group", "fingerprint", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "service", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "environment", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "error_type", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "error_code", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "message", 6, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "count", 7, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "total", 8, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "first_seen_unix_nano", 9, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "last_seen_unix_nano", 10, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "status", 11, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "handled", 12, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "unhandled", 13, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "regression", 14, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "grouping_version", 15, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "resolved_at_unix_nano", 16, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Group", "overflow", 17, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListEventsRequest */
    {"ListEventsRequest", "service", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListEventsRequest", "since_unix_nano", 2, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListEventsRequest", "limit", 3, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListEventsRequest", "cursor", 4, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListEventsRequest", "fingerprint", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListEventsRequest", "environment", 6, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListEventsRequest", "error_type", 7, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListEventsRequest", "error_code", 8, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListEventsRequest", "task", 9, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListEventsResponse */
    {"ListEventsResponse", "events", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Event"},
    {"ListEventsResponse", "next_cursor", 2, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListGroupsRequest */
    {"ListGroupsRequest", "service", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListGroupsRequest", "since_unix_nano", 2, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListGroupsRequest", "limit", 3, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListGroupsRequest", "cursor", 4, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListGroupsRequest", "environment", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListGroupsRequest", "error_type", 6, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListGroupsRequest", "status", 7, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListGroupsRequest", "until_unix_nano", 8, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListGroupsRequest", "sort", 9, PROTOBUF_C_TYPE_ENUM, PROTOBUF_C_LABEL_NONE, "errq.v1.GroupSort"},
    {"ListGroupsRequest", "error_code", 10, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListGroupsResponse */
    {"ListGroupsResponse", "groups", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Group"},
    {"ListGroupsResponse", "next_cursor", 2, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    /* GetGroupRequest */
    {"GetGroupRequest", "fingerprint", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"GetGroupRequest", "since_unix_nano", 2, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"GetGroupRequest", "environment", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"GetGroupRequest", "histogram_minutes", 4, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    /* GetGroupResponse */
    {"GetGroupResponse", "group", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_NONE, "errq.v1.Group"},
    {"GetGroupResponse", "histogram_start_unix_nano", 2, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"GetGroupResponse", "minute_counts", 3, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_REPEATED, NULL},
    {"GetGroupResponse", "latest", 4, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_NONE, "errq.v1.Event"},
    /* GetEventRequest */
    {"GetEventRequest", "event_id", 1, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    /* ExplainEventResponse */
    {"ExplainEventResponse", "event", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_NONE, "errq.v1.Event"},
    {"ExplainEventResponse", "fingerprint", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ExplainEventResponse", "grouping_version", 3, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ExplainEventResponse", "basis", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ExplainEventResponse", "components", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_REPEATED, NULL},
    {"ExplainEventResponse", "recomputed", 6, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* SetGroupStatusRequest */
    {"SetGroupStatusRequest", "fingerprint", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"SetGroupStatusRequest", "status", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* TailRequest */
    {"TailRequest", "service", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TailRequest", "environment", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TailRequest", "error_type", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TailRequest", "fingerprint", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TailRequest", "error_code", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"TailRequest", "task", 6, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* TailMessage */
    {"TailMessage", "event", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_NONE, "errq.v1.Event"},
    {"TailMessage", "dropped", 2, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    /* StatusRequest */
    /* StatusResponse */
    {"StatusResponse", "version", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "name", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "started_at_unix_nano", 3, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "events_total", 4, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "groups_total", 5, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "database_bytes", 6, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "events_stored", 7, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "events_duplicate", 8, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "commits", 9, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "store_errors", 10, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "ingest_queue_batches", 11, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "ingest_queue_capacity", 12, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "ingest_queue_max_batches", 13, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "ingest_queue_bytes", 14, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "parked", 15, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "parked_total", 16, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "streams_active", 17, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "rss_bytes", 18, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "durability", 19, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "storage", 20, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "now_unix_nano", 21, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "events_deleted", 22, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "overflow_events", 23, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "tail_subscribers", 24, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "rules", 25, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "circuits", 26, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "circuits_open", 27, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "alerts_fired", 28, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "alerts_resolved", 29, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "deliveries_delivered", 30, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "deliveries_dead", 31, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "deliveries_in_flight", 32, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "failures_matched", 33, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"StatusResponse", "overflow_failures", 34, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    /* BackupRequest, BackupResponse (errq admin backup) */
    {"BackupRequest", "path", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupRequest", "force", 2, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupRequest", "max_bytes_per_second", 3, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "path", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "bytes", 2, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "pages", 3, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "page_size", 4, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "events", 5, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "started_unix_nano", 6, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "duration_nano", 7, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "copy_nano", 8, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "check_nano", 9, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"BackupResponse", "steps", 10, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    /* Circuit */
    {"Circuit", "rule", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Circuit", "key", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Circuit", "state", 3, PROTOBUF_C_TYPE_ENUM, PROTOBUF_C_LABEL_NONE, "errq.v1.CircuitState"},
    {"Circuit", "since_unix_nano", 4, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Circuit", "failures_in_window", 5, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Circuit", "next_transition_unix_nano", 6, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Circuit", "window_seconds", 7, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Circuit", "alert_id", 8, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    {"Circuit", "calls_ok", 9, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Circuit", "calls_failed", 10, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Circuit", "stale", 11, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListCircuitsRequest */
    {"ListCircuitsRequest", "rule", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListCircuitsRequest", "state", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListCircuitsResponse */
    {"ListCircuitsResponse", "circuits", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Circuit"},
    {"ListCircuitsResponse", "truncated", 2, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    /* Delivery */
    {"Delivery", "notifier", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Delivery", "kind", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Delivery", "seq", 3, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Delivery", "status", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Delivery", "attempts", 5, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Delivery", "next_attempt_unix_nano", 6, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Delivery", "http_status", 7, PROTOBUF_C_TYPE_INT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Delivery", "last_error", 8, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Delivery", "updated_unix_nano", 9, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Delivery", "id", 10, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    /* Alert */
    {"Alert", "alert_id", 1, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "rule", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "key", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "status", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "severity", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "opened_unix_nano", 6, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "resolved_unix_nano", 7, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "failures_in_window", 8, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "window_seconds", 9, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "state", 10, PROTOBUF_C_TYPE_ENUM, PROTOBUF_C_LABEL_NONE, "errq.v1.CircuitState"},
    {"Alert", "resolve_reason", 11, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "delivery", 12, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Delivery"},
    {"Alert", "sample_json", 13, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Alert", "silenced", 14, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListAlertsRequest */
    {"ListAlertsRequest", "status", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListAlertsRequest", "rule", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListAlertsRequest", "since_unix_nano", 3, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListAlertsRequest", "limit", 4, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListAlertsRequest", "cursor", 5, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListAlertsResponse */
    {"ListAlertsResponse", "alerts", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Alert"},
    {"ListAlertsResponse", "next_cursor", 2, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    /* GetAlertRequest */
    {"GetAlertRequest", "alert_id", 1, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    /* ReplayAlertRequest */
    {"ReplayAlertRequest", "alert_id", 1, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    /* ReplayAlertResponse */
    {"ReplayAlertResponse", "replayed", 1, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    /* Transition */
    {"Transition", "at_unix_nano", 1, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Transition", "from", 2, PROTOBUF_C_TYPE_ENUM, PROTOBUF_C_LABEL_NONE, "errq.v1.CircuitState"},
    {"Transition", "to", 3, PROTOBUF_C_TYPE_ENUM, PROTOBUF_C_LABEL_NONE, "errq.v1.CircuitState"},
    {"Transition", "reason", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Transition", "failures_in_window", 5, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Transition", "window_seconds", 6, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Transition", "next_transition_unix_nano", 7, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Transition", "alert_id", 8, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_LABEL_NONE, NULL},
    /* ExplainCircuitRequest */
    {"ExplainCircuitRequest", "rule", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ExplainCircuitRequest", "key", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ExplainCircuitRequest", "limit", 3, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    /* ExplainCircuitResponse */
    {"ExplainCircuitResponse", "circuit", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_NONE, "errq.v1.Circuit"},
    {"ExplainCircuitResponse", "transitions", 2, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Transition"},
    {"ExplainCircuitResponse", "canonical_key", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* Rule */
    {"Rule", "name", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rule", "match", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rule", "group_by", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_REPEATED, NULL},
    {"Rule", "trip", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rule", "recovery_timeout_ms", 5, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rule", "severity", 6, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rule", "notify", 7, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_REPEATED, NULL},
    {"Rule", "max_circuits", 8, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rule", "circuits", 9, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rule", "open", 10, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rule", "overflow_failures", 11, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Rule", "line", 12, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    /* Notifier */
    {"Notifier", "name", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Notifier", "type", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Notifier", "url", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListRulesRequest */
    /* ListRulesResponse */
    {"ListRulesResponse", "rules", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Rule"},
    {"ListRulesResponse", "notifiers", 2, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Notifier"},
    {"ListRulesResponse", "source", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"ListRulesResponse", "loaded_unix_nano", 4, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    /* ReloadRulesRequest */
    /* ReloadRulesResponse */
    {"ReloadRulesResponse", "rules", 1, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ReloadRulesResponse", "notifiers", 2, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ReloadRulesResponse", "kept", 3, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ReloadRulesResponse", "changed", 4, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    {"ReloadRulesResponse", "removed", 5, PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_LABEL_NONE, NULL},
    /* Silence */
    {"Silence", "id", 1, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Silence", "rule", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Silence", "matchers", 3, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Silence", "comment", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Silence", "created_by", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"Silence", "created_unix_nano", 6, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Silence", "starts_unix_nano", 7, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Silence", "ends_unix_nano", 8, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Silence", "expired_unix_nano", 9, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_LABEL_NONE, NULL},
    {"Silence", "active", 10, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    /* AddSilenceRequest */
    {"AddSilenceRequest", "rule", 1, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"AddSilenceRequest", "matchers", 2, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"AddSilenceRequest", "duration_ms", 3, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
    {"AddSilenceRequest", "comment", 4, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    {"AddSilenceRequest", "created_by", 5, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListSilencesRequest */
    {"ListSilencesRequest", "all", 1, PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE, NULL},
    /* ListSilencesResponse */
    {"ListSilencesResponse", "silences", 1, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED, "errq.v1.Silence"},
    /* ExpireSilenceRequest */
    {"ExpireSilenceRequest", "id", 1, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_LABEL_NONE, NULL},
};

static const ProtobufCMessageDescriptor *const wire_messages[] = {
    &errq__v1__backup_request__descriptor, &errq__v1__backup_response__descriptor,
    &errq__v1__frame__descriptor,
    &errq__v1__task_failure__descriptor,
    &errq__v1__task_failure__details_entry__descriptor,
    &errq__v1__outcome__descriptor,
    &errq__v1__report_request__descriptor,
    &errq__v1__rejection__descriptor,
    &errq__v1__report_response__descriptor,
    &errq__v1__event__descriptor,
    &errq__v1__event__details_entry__descriptor,
    &errq__v1__group__descriptor,
    &errq__v1__list_events_request__descriptor,
    &errq__v1__list_events_response__descriptor,
    &errq__v1__list_groups_request__descriptor,
    &errq__v1__list_groups_response__descriptor,
    &errq__v1__get_group_request__descriptor,
    &errq__v1__get_group_response__descriptor,
    &errq__v1__get_event_request__descriptor,
    &errq__v1__explain_event_response__descriptor,
    &errq__v1__set_group_status_request__descriptor,
    &errq__v1__tail_request__descriptor,
    &errq__v1__tail_message__descriptor,
    &errq__v1__status_request__descriptor,
    &errq__v1__status_response__descriptor,
    &errq__v1__circuit__descriptor,
    &errq__v1__list_circuits_request__descriptor,
    &errq__v1__list_circuits_response__descriptor,
    &errq__v1__delivery__descriptor,
    &errq__v1__alert__descriptor,
    &errq__v1__list_alerts_request__descriptor,
    &errq__v1__list_alerts_response__descriptor,
    &errq__v1__get_alert_request__descriptor,
    &errq__v1__replay_alert_request__descriptor,
    &errq__v1__replay_alert_response__descriptor,
    &errq__v1__transition__descriptor,
    &errq__v1__explain_circuit_request__descriptor,
    &errq__v1__explain_circuit_response__descriptor,
    &errq__v1__rule__descriptor,
    &errq__v1__notifier__descriptor,
    &errq__v1__list_rules_request__descriptor,
    &errq__v1__list_rules_response__descriptor,
    &errq__v1__reload_rules_request__descriptor,
    &errq__v1__reload_rules_response__descriptor,
    &errq__v1__silence__descriptor,
    &errq__v1__add_silence_request__descriptor,
    &errq__v1__list_silences_request__descriptor,
    &errq__v1__list_silences_response__descriptor,
    &errq__v1__expire_silence_request__descriptor,
};

static const struct {
	const char *name;
	const char *value;
	int number;
} wire_enum_values[] = {
    {"CircuitState", "CIRCUIT_CLOSED", 0},
    {"CircuitState", "CIRCUIT_OPEN", 1},
    {"CircuitState", "CIRCUIT_HALF_OPEN", 2},
    {"GroupSort", "GROUP_SORT_LAST_SEEN", 0},
    {"GroupSort", "GROUP_SORT_COUNT", 1},
    {"GroupSort", "GROUP_SORT_FIRST_SEEN", 2},
};

static const struct {
	const char *service, *method, *input, *output;
} wire_methods[] = {
    {"errq.v1.Alerts", "ListCircuits", "errq.v1.ListCircuitsRequest", "errq.v1.ListCircuitsResponse"},
    {"errq.v1.Alerts", "ExplainCircuit", "errq.v1.ExplainCircuitRequest", "errq.v1.ExplainCircuitResponse"},
    {"errq.v1.Alerts", "ListAlerts", "errq.v1.ListAlertsRequest", "errq.v1.ListAlertsResponse"},
    {"errq.v1.Alerts", "GetAlert", "errq.v1.GetAlertRequest", "errq.v1.Alert"},
    {"errq.v1.Alerts", "ReplayAlert", "errq.v1.ReplayAlertRequest", "errq.v1.ReplayAlertResponse"},
    {"errq.v1.Alerts", "ListRules", "errq.v1.ListRulesRequest", "errq.v1.ListRulesResponse"},
    {"errq.v1.Alerts", "ReloadRules", "errq.v1.ReloadRulesRequest", "errq.v1.ReloadRulesResponse"},
    {"errq.v1.Alerts", "AddSilence", "errq.v1.AddSilenceRequest", "errq.v1.Silence"},
    {"errq.v1.Alerts", "ListSilences", "errq.v1.ListSilencesRequest", "errq.v1.ListSilencesResponse"},
    {"errq.v1.Alerts", "ExpireSilence", "errq.v1.ExpireSilenceRequest", "errq.v1.Silence"},
    {"errq.v1.Collector", "Report", "errq.v1.ReportRequest", "errq.v1.ReportResponse"},
    {"errq.v1.Query", "Backup", "errq.v1.BackupRequest", "errq.v1.BackupResponse"},
    {"errq.v1.Query", "ListEvents", "errq.v1.ListEventsRequest", "errq.v1.ListEventsResponse"},
    {"errq.v1.Query", "ListGroups", "errq.v1.ListGroupsRequest", "errq.v1.ListGroupsResponse"},
    {"errq.v1.Query", "Status", "errq.v1.StatusRequest", "errq.v1.StatusResponse"},
    {"errq.v1.Query", "GetGroup", "errq.v1.GetGroupRequest", "errq.v1.GetGroupResponse"},
    {"errq.v1.Query", "GetEvent", "errq.v1.GetEventRequest", "errq.v1.Event"},
    {"errq.v1.Query", "ExplainEvent", "errq.v1.GetEventRequest", "errq.v1.ExplainEventResponse"},
    {"errq.v1.Query", "SetGroupStatus", "errq.v1.SetGroupStatusRequest", "errq.v1.Group"},
    {"errq.v1.Query", "Tail", "errq.v1.TailRequest", "errq.v1.TailMessage"},
};

static const ProtobufCMessageDescriptor *wire_message(const char *short_name)
{
	for (size_t i = 0; i < sizeof(wire_messages) / sizeof(wire_messages[0]); i++)
		if (strncmp(wire_messages[i]->name, "errq.v1.", 8) == 0 && strcmp(wire_messages[i]->name + 8, short_name) == 0)
			return wire_messages[i];
	return NULL;
}

static const char *type_name_of(const ProtobufCFieldDescriptor *f)
{
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return ((const ProtobufCMessageDescriptor *)f->descriptor)->name;
	if (f->type == PROTOBUF_C_TYPE_ENUM)
		return ((const ProtobufCEnumDescriptor *)f->descriptor)->name;
	return NULL;
}

static void test_wire_numbers_and_types_pinned(void **state)
{
	int bad = 0;
	for (size_t i = 0; i < sizeof(wire_fields) / sizeof(wire_fields[0]); i++) {
		const struct wire_field *w = &wire_fields[i];
		const ProtobufCMessageDescriptor *d = wire_message(w->message);
		if (!d) {
			print_error("message errq.v1.%s is gone\n", w->message);
			bad++;
			continue;
		}
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, w->name);
		const ProtobufCFieldDescriptor *by_id = protobuf_c_message_descriptor_get_field(d, (unsigned)w->id);
		if (!f) {
			print_error("%s.%s (field %u) is gone%s%s\n", w->message, w->name, w->id,
				    by_id ? ": its number is now named " : "", by_id ? by_id->name : "");
			bad++;
			continue;
		}
		const char *tn = type_name_of(f);
		if (f->id != w->id || f->type != w->type || f->label != w->label ||
		    (w->type_name == NULL) != (tn == NULL) || (tn && strcmp(tn, w->type_name) != 0)) {
			print_error("%s.%s changed: number %u type %d label %d (%s), pinned number %u type %d label "
				    "%d (%s)\n",
				    w->message, w->name, f->id, (int)f->type, (int)f->label, tn ? tn : "-", w->id,
				    (int)w->type, (int)w->label, w->type_name ? w->type_name : "-");
			bad++;
		}
	}
	/* every message has its fields pinned: a message added without its table entries would
	 * go unpinned (its fields may be appended later; that passes) */
	for (size_t i = 0; i < sizeof(wire_messages) / sizeof(wire_messages[0]); i++) {
		const ProtobufCMessageDescriptor *d = wire_messages[i];
		for (unsigned k = 0; k < d->n_fields; k++) {
			size_t j = 0;
			while (j < sizeof(wire_fields) / sizeof(wire_fields[0]) &&
			       !(strcmp(wire_fields[j].message, d->name + 8) == 0 && wire_fields[j].id == d->fields[k].id))
				j++;
			if (j == sizeof(wire_fields) / sizeof(wire_fields[0]))
				print_message("note: %s.%s (field %u) is not pinned yet\n", d->name, d->fields[k].name,
					      d->fields[k].id);
		}
	}
	const ProtobufCEnumDescriptor *enums[] = {&errq__v1__circuit_state__descriptor,
						  &errq__v1__group_sort__descriptor};
	for (size_t i = 0; i < sizeof(wire_enum_values) / sizeof(wire_enum_values[0]); i++) {
		const ProtobufCEnumValue *v = NULL;
		for (size_t k = 0; k < sizeof(enums) / sizeof(enums[0]); k++)
			if (strcmp(enums[k]->short_name, wire_enum_values[i].name) == 0)
				v = protobuf_c_enum_descriptor_get_value_by_name(enums[k], wire_enum_values[i].value);
		if (!v || v->value != wire_enum_values[i].number) {
			print_error("enum %s value %s: %s, pinned %d\n", wire_enum_values[i].name,
				    wire_enum_values[i].value, v ? "renumbered" : "gone", wire_enum_values[i].number);
			bad++;
		}
	}
	const ProtobufCServiceDescriptor *services[] = {&errq__v1__collector__descriptor, &errq__v1__query__descriptor,
							&errq__v1__alerts__descriptor};
	for (size_t i = 0; i < sizeof(wire_methods) / sizeof(wire_methods[0]); i++) {
		const ProtobufCMethodDescriptor *m = NULL;
		for (size_t k = 0; k < sizeof(services) / sizeof(services[0]); k++)
			if (strcmp(services[k]->name, wire_methods[i].service) == 0)
				m = protobuf_c_service_descriptor_get_method_by_name(services[k], wire_methods[i].method);
		if (!m || strcmp(m->input->name, wire_methods[i].input) != 0 ||
		    strcmp(m->output->name, wire_methods[i].output) != 0) {
			print_error("rpc %s/%s: %s, pinned (%s) returns (%s)\n", wire_methods[i].service,
				    wire_methods[i].method, m ? "changed" : "gone", wire_methods[i].input,
				    wire_methods[i].output);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d change(s) to the wire contract: field numbers, types and names never change (new "
			 "fields are appended with new numbers; docs/protocol.md)",
			 bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_task_failure_round_trip),
	    cmocka_unit_test(test_wire_numbers_and_types_pinned),
	    cmocka_unit_test(test_unknown_fields_tolerated_and_garbage_refused),
	};
	return cmocka_run_group_tests_name("unit_proto", tests, NULL, NULL);
}
