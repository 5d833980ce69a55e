/* test_pb.c: the hand-written protobuf wire codec (common/errq_pb.[ch]) against known bytes
 * and against protobuf-c itself, in both directions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "errq/v1/collector.pb-c.h"
#include "errq_pb.h"

static void test_varint_known_bytes_and_sizes(void **state)
{
	static const struct {
		uint64_t v;
		size_t size;
		uint8_t bytes[ERRQ_PB_VARINT_MAX];
	} cases[] = {
	    {0, 1, {0x00}},
	    {1, 1, {0x01}},
	    {127, 1, {0x7f}},
	    {128, 2, {0x80, 0x01}},
	    {300, 2, {0xac, 0x02}},
	    {16383, 2, {0xff, 0x7f}},
	    {16384, 3, {0x80, 0x80, 0x01}},
	    {UINT32_MAX, 5, {0xff, 0xff, 0xff, 0xff, 0x0f}},
	    {UINT64_MAX, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t b[ERRQ_PB_VARINT_MAX + 1];
		memset(b, 0xee, sizeof(b));
		assert_int_equal(errq_pb_varint_size(cases[i].v), cases[i].size);
		uint8_t *e = errq_pb_put_varint(b, cases[i].v);
		assert_int_equal(e - b, cases[i].size);
		assert_memory_equal(b, cases[i].bytes, cases[i].size);
		assert_int_equal(b[cases[i].size], 0xee); /* nothing written past it */
		const uint8_t *p = b;
		uint64_t v = 12345;
		assert_int_equal(errq_pb_get_varint(&p, b + cases[i].size, &v), 0);
		assert_true(v == cases[i].v);
		assert_ptr_equal(p, b + cases[i].size);
	}
}

static void test_varint_refuses_truncated_and_overlong(void **state)
{
	const uint8_t cut[] = {0x80, 0x80};
	const uint8_t *p = cut;
	uint64_t v;
	assert_int_equal(errq_pb_get_varint(&p, cut + sizeof(cut), &v), -1);
	p = cut;
	assert_int_equal(errq_pb_get_varint(&p, cut, &v), -1); /* no bytes at all */
	uint8_t longer[11];
	memset(longer, 0x80, sizeof(longer));
	longer[10] = 0x01;
	p = longer;
	assert_int_equal(errq_pb_get_varint(&p, longer + sizeof(longer), &v), -1);
}

static void test_writer_overflow_counts_what_it_needs(void **state)
{
	uint8_t b[4] = {0};
	struct errq_pb_buf w = errq_pb_buf_init(b, sizeof(b));
	errq_pb_w_uint(&w, 1, 300); /* 3 bytes: fits */
	assert_false(w.overflow);
	assert_int_equal(w.len, 3);
	assert_memory_equal(b, "\x08\xac\x02", 3);
	errq_pb_w_len(&w, 2, "abc", 3); /* 5 more: the tag fits, the length does not */
	assert_true(w.overflow);
	assert_int_equal(w.len, 8);
	assert_int_equal(b[3], 0x12);
	b[3] = 0;
	errq_pb_w_bytes(&w, "x", 1); /* would fit, but the encoding is already lost */
	assert_int_equal(b[3], 0);
	assert_int_equal(w.len, 9);

	struct errq_pb_buf m = errq_pb_buf_init(NULL, 100); /* measuring */
	errq_pb_w_uint(&m, 1, 300);
	errq_pb_w_len(&m, 2, "abc", 3);
	errq_pb_w_le(&m, 7, 8);
	assert_true(m.overflow);
	assert_int_equal(m.len, 3 + 5 + 8);
	assert_int_equal(errq_pb_len_field_size(2, 3), 5);
	assert_int_equal(errq_pb_len_field_size(16, 200), 2 + 2 + 200);
}

/* A ReportRequest written with errq_pb decodes with protobuf-c as what was written. */
static void test_writer_output_decodes_with_protobuf_c(void **state)
{
	uint8_t fail[64], msg[128];
	struct errq_pb_buf f = errq_pb_buf_init(fail, sizeof(fail));
	errq_pb_w_len(&f, 1, "0123456789abcdef", 16);
	errq_pb_w_tag(&f, 2, ERRQ_PB_FIXED64);
	errq_pb_w_le(&f, 0x0102030405060708ull, 8);
	errq_pb_w_len(&f, 3, "svc", 3);
	errq_pb_w_uint(&f, 14, 70000); /* attempt */
	assert_false(f.overflow);
	struct errq_pb_buf w = errq_pb_buf_init(msg, sizeof(msg));
	errq_pb_w_uint(&w, 1, UINT64_MAX); /* seq */
	errq_pb_w_len(&w, 2, fail, f.len);
	errq_pb_w_len(&w, 2, fail, f.len);
	assert_false(w.overflow);
	Errq__V1__ReportRequest *r = errq__v1__report_request__unpack(NULL, w.len, msg);
	assert_non_null(r);
	assert_true(r->seq == UINT64_MAX);
	assert_int_equal(r->n_failures, 2);
	assert_int_equal(r->failures[1]->event_id.len, 16);
	assert_memory_equal(r->failures[1]->event_id.data, "0123456789abcdef", 16);
	assert_true(r->failures[1]->time_unix_nano == 0x0102030405060708ull);
	assert_string_equal(r->failures[1]->service, "svc");
	assert_int_equal(r->failures[1]->attempt, 70000);
	errq__v1__report_request__free_unpacked(r, NULL);
}

/* The walker sees protobuf-c's own encoding field by field, and refuses damaged bytes. */
static void test_walker_reads_protobuf_c_output(void **state)
{
	Errq__V1__TaskFailure tf = ERRQ__V1__TASK_FAILURE__INIT, *tfs[3] = {&tf, &tf, &tf};
	tf.service = "svc";
	tf.error_type = "E";
	tf.time_unix_nano = 42;
	Errq__V1__ReportRequest r = ERRQ__V1__REPORT_REQUEST__INIT;
	r.seq = 300;
	r.n_failures = 3;
	r.failures = tfs;
	uint8_t buf[256];
	size_t n = errq__v1__report_request__pack(&r, buf);
	assert_true(n < sizeof(buf));
	const uint8_t *p = buf;
	struct errq_pb_field fd;
	assert_int_equal(errq_pb_next(&p, buf + n, &fd), 1);
	assert_true(fd.field == 1 && fd.wt == ERRQ_PB_VARINT && fd.v == 300);
	int failures = 0;
	while (errq_pb_next(&p, buf + n, &fd) == 1) {
		assert_true(fd.field == 2 && fd.wt == ERRQ_PB_LEN);
		/* inside: service (3) and time (2, fixed64) */
		const uint8_t *q = fd.data;
		struct errq_pb_field in;
		int seen = 0;
		while (errq_pb_next(&q, fd.data + fd.len, &in) == 1) {
			if (in.field == 2) {
				assert_int_equal(in.wt, ERRQ_PB_FIXED64);
				assert_true(in.v == 42);
				seen |= 1;
			} else if (in.field == 3) {
				assert_int_equal(in.len, 3);
				assert_memory_equal(in.data, "svc", 3);
				seen |= 2;
			}
		}
		assert_int_equal(seen, 3);
		failures++;
	}
	assert_int_equal(failures, 3);
	assert_ptr_equal(p, buf + n);
	assert_int_equal(errq_pb_next(&p, buf + n, &fd), 0); /* at the end */

	p = buf; /* cut inside the last failure */
	int rc, fields = 0;
	while ((rc = errq_pb_next(&p, buf + n - 1, &fd)) == 1)
		fields++;
	assert_int_equal(rc, -1);
	assert_int_equal(fields, 3); /* seq and two whole failures */
	const uint8_t group[] = {0x0b, 0x0c}; /* wire type 3: a group start */
	p = group;
	assert_int_equal(errq_pb_next(&p, group + 2, &fd), -1);
	const uint8_t fixed32_cut[] = {0x0d, 1, 2, 3};
	p = fixed32_cut;
	assert_int_equal(errq_pb_next(&p, fixed32_cut + 4, &fd), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_varint_known_bytes_and_sizes),
	    cmocka_unit_test(test_varint_refuses_truncated_and_overlong),
	    cmocka_unit_test(test_writer_overflow_counts_what_it_needs),
	    cmocka_unit_test(test_writer_output_decodes_with_protobuf_c),
	    cmocka_unit_test(test_walker_reads_protobuf_c_output),
	};
	return cmocka_run_group_tests_name("unit_pb", tests, NULL, NULL);
}
