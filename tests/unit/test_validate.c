/* Unit: server/validate.c — rejections, truncation at the documented limits, grouping keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* ------------------------------------------------------------------ documented limits
 *
 * Every limit of docs/protocol.md ("Messages", the TaskFailure table), from the NUMBER in
 * the document, not from validate.h: at the limit nothing is cut, one byte (or entry) past
 * it the field is cut to the limit and marked.  test_limits_are_the_documents checks that
 * the document still says these numbers. */

static const struct doc_limit {
	const char *field; /* as the document and the `truncated` list name it */
	size_t off;        /* of the char * in Errq__V1__TaskFailure */
	size_t limit;      /* bytes, from the document's line */
	int bit;
} doc_limits[] = {
    {"service", offsetof(Errq__V1__TaskFailure, service), 128, STORE_TRUNC_BIT_SERVICE},             /* protocol.md:24 */
    {"environment", offsetof(Errq__V1__TaskFailure, environment), 64, STORE_TRUNC_BIT_ENVIRONMENT}, /* :25 */
    {"release", offsetof(Errq__V1__TaskFailure, release), 128, STORE_TRUNC_BIT_RELEASE},             /* :26 */
    {"host", offsetof(Errq__V1__TaskFailure, host), 255, STORE_TRUNC_BIT_HOST},                      /* :27 */
    {"task", offsetof(Errq__V1__TaskFailure, task), 256, STORE_TRUNC_BIT_TASK},                      /* :28 */
    {"error_type", offsetof(Errq__V1__TaskFailure, error_type), 256, STORE_TRUNC_BIT_ERROR_TYPE},    /* :29 */
    {"error_code", offsetof(Errq__V1__TaskFailure, error_code), 128, STORE_TRUNC_BIT_ERROR_CODE},    /* :30 */
    {"message", offsetof(Errq__V1__TaskFailure, message), 8192, STORE_TRUNC_BIT_MESSAGE},            /* :31 */
    {"fingerprint", offsetof(Errq__V1__TaskFailure, fingerprint), 128, STORE_TRUNC_BIT_FINGERPRINT}, /* :34 */
};
#define DOC_MAX_FRAMES 64        /* protocol.md:32 "64 frames (the innermost are kept)" */
#define DOC_MAX_FRAME_STRING 512 /* protocol.md:32 "512 bytes per string" */
#define DOC_MAX_DETAILS 64       /* protocol.md:33 "64 entries (the first are kept)" */
#define DOC_MAX_DETAIL_KEY 128   /* protocol.md:33 "key 128" */
#define DOC_MAX_DETAIL_VALUE 1024 /* protocol.md:33 "value 1024" */

/* n bytes: 'a's, or (utf8_tail) n - 2 'a's and a 2-byte character straddling n - 1 */
static char *filled(size_t n, int utf8_tail)
{
	char *p = malloc(n + 1);
	assert_non_null(p);
	memset(p, 'a', n);
	if (utf8_tail)
		memcpy(p + n - 2, "\xC3\xA9", 2);
	p[n] = '\0';
	return p;
}

static void test_string_limits_from_the_document(void **state)
{
	struct validated v;
	char reason[VALIDATE_REASON_MAX];
	char svc[] = "checkout", type[] = "TimeoutError", msg[] = "m";
	for (size_t i = 0; i < sizeof(doc_limits) / sizeof(doc_limits[0]); i++) {
		const struct doc_limit *d = &doc_limits[i];
		const struct {
			size_t len;
			int utf8_tail;
			size_t want_len;
			uint32_t want_trunc;
		} cases[] = {
		    {d->limit, 0, d->limit, 0},                  /* at the limit: kept whole */
		    {d->limit + 1, 0, d->limit, 1u << d->bit},   /* one past: cut to the limit, marked */
		    {d->limit + 1, 1, d->limit - 1, 1u << d->bit}, /* never inside a character */
		};
		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			Errq__V1__TaskFailure tf = base(svc, type, msg);
			char *val = filled(cases[k].len, cases[k].utf8_tail);
			*(char **)((char *)&tf + d->off) = val;
			if (validate_failure(&tf, &v, reason) != 0)
				fail_msg("%s of %zu bytes: rejected (%s)", d->field, cases[k].len, reason);
			if (strlen(val) != cases[k].want_len || v.truncated != cases[k].want_trunc)
				fail_msg("%s of %zu bytes%s: kept %zu bytes, truncated mask %#x; the document's limit "
					 "is %zu (want %zu bytes, mask %#x)",
					 d->field, cases[k].len, cases[k].utf8_tail ? " ending in a 2-byte character" : "",
					 strlen(val), v.truncated, d->limit, cases[k].want_len, cases[k].want_trunc);
			free(val);
		}
		/* the name errq events -o json lists in `truncated` is the document's field name */
		assert_string_equal(store_trunc_name(d->bit), d->field);
	}
}

static void test_frame_limits_from_the_document(void **state)
{
	struct validated v;
	char reason[VALIDATE_REASON_MAX];
	char svc[] = "checkout", type[] = "TimeoutError", msg[] = "m";
	enum { NF = DOC_MAX_FRAMES + 1 };
	Errq__V1__Frame frames[NF], *fp[NF];
	for (int i = 0; i < NF; i++) {
		errq__v1__frame__init(&frames[i]);
		fp[i] = &frames[i];
	}
	/* 64 frames: all kept; 65: the outermost one dropped */
	Errq__V1__TaskFailure tf = base(svc, type, msg);
	tf.frames = fp;
	tf.n_frames = DOC_MAX_FRAMES;
	assert_int_equal(validate_failure(&tf, &v, reason), 0);
	assert_int_equal(v.frames_skip, 0);
	assert_int_equal(v.truncated, 0);
	tf.n_frames = DOC_MAX_FRAMES + 1;
	assert_int_equal(validate_failure(&tf, &v, reason), 0);
	assert_int_equal(v.frames_skip, 1);
	assert_int_equal(v.truncated, 1u << STORE_TRUNC_BIT_FRAMES);

	/* each of a frame's strings: 512 bytes kept, 513 cut to 512 */
	const char *names[] = {"function", "file", "module"};
	for (int f = 0; f < 3; f++)
		for (size_t len = DOC_MAX_FRAME_STRING; len <= DOC_MAX_FRAME_STRING + 1; len++) {
			Errq__V1__Frame fr = ERRQ__V1__FRAME__INIT, *frp = &fr;
			char *val = filled(len, 0);
			char **slot = f == 0 ? &fr.function : f == 1 ? &fr.file : &fr.module;
			*slot = val;
			tf = base(svc, type, msg);
			tf.frames = &frp;
			tf.n_frames = 1;
			assert_int_equal(validate_failure(&tf, &v, reason), 0);
			uint32_t want = len > DOC_MAX_FRAME_STRING ? 1u << STORE_TRUNC_BIT_FRAMES : 0;
			if (strlen(val) != DOC_MAX_FRAME_STRING || v.truncated != want)
				fail_msg("frames.%s of %zu bytes: kept %zu, mask %#x (the document's limit: %d)", names[f],
					 len, strlen(val), v.truncated, DOC_MAX_FRAME_STRING);
			free(val);
		}
}

static void test_detail_limits_from_the_document(void **state)
{
	struct validated v;
	char reason[VALIDATE_REASON_MAX];
	char svc[] = "checkout", type[] = "TimeoutError", msg[] = "m";
	enum { ND = DOC_MAX_DETAILS + 1 };
	Errq__V1__TaskFailure__DetailsEntry d[ND], *dp[ND];
	char keys[ND][8], value[] = "v";
	for (int i = 0; i < ND; i++) {
		errq__v1__task_failure__details_entry__init(&d[i]);
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		d[i].key = keys[i];
		d[i].value = value;
		dp[i] = &d[i];
	}
	/* 64 entries: all kept; 65: the first 64 kept */
	Errq__V1__TaskFailure tf = base(svc, type, msg);
	tf.details = dp;
	tf.n_details = DOC_MAX_DETAILS;
	assert_int_equal(validate_failure(&tf, &v, reason), 0);
	assert_int_equal(v.details_kept, DOC_MAX_DETAILS);
	assert_int_equal(v.truncated, 0);
	tf.n_details = DOC_MAX_DETAILS + 1;
	assert_int_equal(validate_failure(&tf, &v, reason), 0);
	assert_int_equal(v.details_kept, DOC_MAX_DETAILS);
	assert_int_equal(v.truncated, 1u << STORE_TRUNC_BIT_DETAILS);

	/* a key: 128 bytes kept, 129 cut; a value: 1024 kept, 1025 cut */
	const struct {
		const char *what;
		size_t limit;
		int is_key;
	} parts[] = {{"details.key", DOC_MAX_DETAIL_KEY, 1}, {"details.value", DOC_MAX_DETAIL_VALUE, 0}};
	for (int p = 0; p < 2; p++)
		for (size_t len = parts[p].limit; len <= parts[p].limit + 1; len++) {
			Errq__V1__TaskFailure__DetailsEntry e = ERRQ__V1__TASK_FAILURE__DETAILS_ENTRY__INIT, *ep = &e;
			char k[] = "region", val1[] = "eu-west-1";
			char *val = filled(len, 0);
			e.key = parts[p].is_key ? val : k;
			e.value = parts[p].is_key ? val1 : val;
			tf = base(svc, type, msg);
			tf.details = &ep;
			tf.n_details = 1;
			assert_int_equal(validate_failure(&tf, &v, reason), 0);
			uint32_t want = len > parts[p].limit ? 1u << STORE_TRUNC_BIT_DETAILS : 0;
			if (strlen(val) != parts[p].limit || v.truncated != want)
				fail_msg("%s of %zu bytes: kept %zu, mask %#x (the document's limit: %zu)", parts[p].what,
					 len, strlen(val), v.truncated, parts[p].limit);
			free(val);
		}
}

/* The numbers above are still the document's: each is read back from its line. */
static void test_limits_are_the_documents(void **state)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/protocol.md", ERRQ_DOCS_DIR);
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open '%s'", path);
	static char doc[65536];
	size_t n = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[n] = '\0';
	for (size_t i = 0; i < sizeof(doc_limits) / sizeof(doc_limits[0]); i++) {
		/* the table row "| N | `field` | type | meaning | LIMIT ..." */
		char head[64];
		snprintf(head, sizeof(head), "| `%s` |", doc_limits[i].field);
		const char *row = strstr(doc, head);
		if (!row)
			fail_msg("docs/protocol.md has no row for '%s'", doc_limits[i].field);
		const char *eol = strchr(row, '\n');
		const char *last = eol;
		while (last > row && last[-1] != '|')
			last--; /* past the closing '|' */
		last--;
		while (last > row && last[-1] != '|')
			last--; /* the last cell */
		unsigned long limit = strtoul(last, NULL, 10);
		if (limit != doc_limits[i].limit)
			fail_msg("docs/protocol.md gives '%s' a limit of %lu, this test %zu", doc_limits[i].field, limit,
				 doc_limits[i].limit);
	}
	const char *phrases[] = {"64 frames (the innermost are kept); 512 bytes per string",
				 "64 entries (the first are kept); key 128, value 1024",
				 "**4 MiB (4194304 bytes, encoded)**", "**10 000 failures**"};
	for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
		if (!strstr(doc, phrases[i]))
			fail_msg("docs/protocol.md no longer says '%s': update this test and tests/integration/test_report.c",
				 phrases[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rejections),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_string_limits_from_the_document),
	    cmocka_unit_test(test_frame_limits_from_the_document),
	    cmocka_unit_test(test_detail_limits_from_the_document),
	    cmocka_unit_test(test_limits_are_the_documents),
	};
	return cmocka_run_group_tests_name("unit_validate", tests, NULL, NULL);
}
