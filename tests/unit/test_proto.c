/* Unit: the wire contract's generated code — round trips and the field numbers other
 * programs rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "errq/v1/collector.pb-c.h"
#include "errq/v1/query.pb-c.h"

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

static void test_field_numbers_are_the_contract(void **state)
{
	/* names and numbers that clients compile against: a change here is a wire break */
	const ProtobufCMessageDescriptor *d = &errq__v1__task_failure__descriptor;
	const char *names[] = {"event_id", "time_unix_nano", "service", "environment", "release",
			       "host", "task", "error_type", "error_code", "message", "frames",
			       "details", "fingerprint", "attempt", "handled"};
	for (unsigned i = 0; i < 15; i++) {
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, names[i]);
		assert_non_null(f);
		assert_int_equal(f->id, i + 1);
	}
	assert_string_equal(errq__v1__report_request__descriptor.name, "errq.v1.ReportRequest");
	assert_string_equal(errq__v1__collector__descriptor.name, "errq.v1.Collector");
	assert_string_equal(errq__v1__collector__descriptor.methods[0].name, "Report");
	assert_non_null(protobuf_c_message_descriptor_get_field_by_name(&errq__v1__report_response__descriptor,
									"duplicates"));
	assert_non_null(protobuf_c_message_descriptor_get_field_by_name(&errq__v1__outcome__descriptor,
									"window_start_unix_nano"));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_task_failure_round_trip),
	    cmocka_unit_test(test_field_numbers_are_the_contract),
	    cmocka_unit_test(test_unknown_fields_tolerated_and_garbage_refused),
	};
	return cmocka_run_group_tests_name("unit_proto", tests, NULL, NULL);
}
