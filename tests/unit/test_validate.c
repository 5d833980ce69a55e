/* Unit: server/validate.c — rejections, truncation, grouping keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "storage.h"
#include "validate.h"

static uint8_t ID[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static Errq__V1__TaskFailure base(char *service, char *type, char *msg)
{
	Errq__V1__TaskFailure tf = ERRQ__V1__TASK_FAILURE__INIT;
	tf.event_id.data = ID;
	tf.event_id.len = 16;
	tf.service = service;
	tf.error_type = type;
	tf.message = msg;
	return tf;
}

static void test_rejections(void **state)
{
	struct validated v;
	char reason[VALIDATE_REASON_MAX];
	char svc[] = "checkout", type[] = "TimeoutError", empty[] = "", msg[] = "m";
	Errq__V1__TaskFailure tf = base(svc, type, msg);
	assert_int_equal(validate_failure(&tf, &v, reason), 0);

	tf = base(empty, type, msg);
	assert_int_equal(validate_failure(&tf, &v, reason), -1);
	assert_true(strncmp(reason, "missing_service:", 16) == 0);

	tf = base(svc, empty, msg);
	assert_int_equal(validate_failure(&tf, &v, reason), -1);
	assert_true(strncmp(reason, "missing_error_type:", 19) == 0);

	tf = base(svc, type, msg);
	tf.event_id.len = 0;
	assert_int_equal(validate_failure(&tf, &v, reason), -1);
	assert_string_equal(reason, "bad_event_id: event_id is 0 bytes, want 16");
	tf.event_id.len = 17;
	assert_int_equal(validate_failure(&tf, &v, reason), -1);

	char bad[] = "x\xE2\x28\xA1";
	tf = base(svc, type, msg);
	tf.host = bad;
	assert_int_equal(validate_failure(&tf, &v, reason), -1);
	assert_string_equal(reason, "invalid_utf8: field 'host' is not valid UTF-8 at byte 1");

	/* inside frames and details too */
	Errq__V1__Frame fr = ERRQ__V1__FRAME__INIT, *frp = &fr;
	fr.function = bad;
	tf = base(svc, type, msg);
	tf.n_frames = 1;
	tf.frames = &frp;
	assert_int_equal(validate_failure(&tf, &v, reason), -1);
	assert_non_null(strstr(reason, "frames.function"));
	Errq__V1__TaskFailure__DetailsEntry d = ERRQ__V1__TASK_FAILURE__DETAILS_ENTRY__INIT, *dp = &d;
	char k[] = "k";
	d.key = k;
	d.value = bad;
	tf = base(svc, type, msg);
	tf.n_details = 1;
	tf.details = &dp;
	assert_int_equal(validate_failure(&tf, &v, reason), -1);
	assert_non_null(strstr(reason, "details.value"));
}

static void test_truncation(void **state)
{
	struct validated v;
	char reason[VALIDATE_REASON_MAX];
	char svc[] = "checkout", type[] = "TimeoutError";
	/* a message of 8190 ASCII bytes then a 3-byte euro sign and more: cut before the euro */
	size_t n = VALIDATE_MAX_MESSAGE + 100;
	char *msg = malloc(n + 1);
	memset(msg, 'a', n);
	memcpy(msg + VALIDATE_MAX_MESSAGE - 2, "\xE2\x82\xAC", 3);
	msg[n] = '\0';
	Errq__V1__TaskFailure tf = base(svc, type, msg);
	assert_int_equal(validate_failure(&tf, &v, reason), 0);
	assert_int_equal(strlen(msg), VALIDATE_MAX_MESSAGE - 2);
	assert_int_equal(v.truncated, 1u << STORE_TRUNC_BIT_MESSAGE);
	free(msg);

	/* too many frames: the innermost are kept */
	enum { NF = VALIDATE_MAX_FRAMES + 5 };
	Errq__V1__Frame frames[NF], *fp[NF];
	for (int i = 0; i < NF; i++) {
		errq__v1__frame__init(&frames[i]);
		fp[i] = &frames[i];
	}
	char m2[] = "m";
	tf = base(svc, type, m2);
	tf.n_frames = NF;
	tf.frames = fp;
	assert_int_equal(validate_failure(&tf, &v, reason), 0);
	assert_int_equal(v.frames_skip, 5);
	assert_true(v.truncated & (1u << STORE_TRUNC_BIT_FRAMES));
	assert_string_equal(store_trunc_name(STORE_TRUNC_BIT_FRAMES), "frames");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rejections),
	    cmocka_unit_test(test_truncation),
	};
	return cmocka_run_group_tests_name("unit_validate", tests, NULL, NULL);
}
