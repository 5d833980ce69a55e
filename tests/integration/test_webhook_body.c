/* Integration: the webhook errqd sends for the largest event the protocol lets through.  The
 * body stays within 64 KiB (docs/alerts.md "Bounds") because the sample is cut to fit: the
 * message to 1024 bytes, the first 16 details with values of at most 256 bytes; the body is
 * valid JSON, signed (checked here with OpenSSL's HMAC, not errqd's code) and sent with
 * errqd's User-Agent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <cmocka.h>

#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"
#include "http_receiver.h"

/* docs/protocol.md limits of an event, and docs/alerts.md's bound on a webhook body */
#define DOC_MESSAGE_MAX 8192
#define DOC_DETAILS_MAX 64
#define DOC_DETAIL_KEY_MAX 128
#define DOC_DETAIL_VALUE_MAX 1024
#define DOC_BODY_MAX (64 * 1024)

#define SECRET "webhook s3cret"

static void test_huge_event_sample_cut_to_fit(void **state)
{
	struct errqd_proc D;
	struct http_receiver rv;
	struct errq_idgen g;
	char cfg[400];
	memset(&D, 0, sizeof(D));
	errq_idgen_init(&g);
	errq_snprintf(D.dir, sizeof(D.dir), "/tmp/errq-whbody-XXXXXX");
	assert_non_null(mkdtemp(D.dir));
	assert_int_equal(receiver_start(&rv, 0), 0);
	errq_snprintf(cfg, sizeof(cfg), "%s/errqd.yaml", D.dir);
	FILE *f = fopen(cfg, "w");
	assert_non_null(f);
	fprintf(f,
		"notifiers:\n"
		"  - name: ops\n"
		"    type: webhook\n"
		"    url: http://127.0.0.1:%d/alerts\n"
		"    secret: \"" SECRET "\"\n"
		"rules:\n"
		"  - name: huge\n"
		"    match: {service: svc-huge}\n"
		"    trip: {failures: 1, window: 60s}\n"
		"    notify: [ops]\n",
		rv.port);
	assert_int_equal(fclose(f), 0);
	const char *args[] = {"--config", cfg, NULL};
	assert_int_equal(errqd_start(&D, args), 0);

	/* every string at its limit: the message, 64 details of 128-byte keys and 1 KiB values
	 * full of characters JSON escapes (each '"' costs two bytes in the body) */
	Errq__V1__TaskFailure *ev = tevent_new(&g, "svc-huge", "HugeError", NULL);
	char *msg = malloc(DOC_MESSAGE_MAX + 1);
	for (int i = 0; i < DOC_MESSAGE_MAX; i++)
		msg[i] = i % 2 ? '"' : (char)('a' + i % 26);
	msg[DOC_MESSAGE_MAX] = '\0';
	tevent_set(&ev->message, msg);
	ev->n_details = DOC_DETAILS_MAX;
	ev->details = calloc(DOC_DETAILS_MAX, sizeof(*ev->details));
	for (int d = 0; d < DOC_DETAILS_MAX; d++) {
		Errq__V1__TaskFailure__DetailsEntry *e = calloc(1, sizeof(*e));
		errq__v1__task_failure__details_entry__init(e);
		e->key = calloc(1, DOC_DETAIL_KEY_MAX + 1);
		errq_snprintf(e->key, DOC_DETAIL_KEY_MAX + 1, "k%03d", d);
		memset(e->key + 4, 'k', DOC_DETAIL_KEY_MAX - 4);
		e->value = calloc(1, DOC_DETAIL_VALUE_MAX + 1);
		memset(e->value, '\\', DOC_DETAIL_VALUE_MAX);
		ev->details[d] = e;
	}
	assert_int_equal(report_event(D.addr, ev), 1);

	assert_int_equal(receiver_wait(&rv, 1), 1);
	const char *body = rv.req[0].body;
	size_t blen = strlen(body);
	print_message("webhook body: %zu bytes for an event of %d-byte message and %d details\n", blen,
		      DOC_MESSAGE_MAX, DOC_DETAILS_MAX);
	assert_true(blen <= DOC_BODY_MAX);
	assert_int_equal(rv.req[0].status, 200);
	json_error_t je;
	json_t *b = json_loads(body, 0, &je);
	if (!b)
		fail_msg("webhook body is not JSON: %s", je.text);
	assert_string_equal(json_string_value(json_object_get(b, "status")), "firing");
	assert_string_equal(json_string_value(json_object_get(b, "rule")), "huge");
	json_t *sample = json_object_get(b, "sample");
	assert_true(json_is_object(sample));
	const char *m = json_string_value(json_object_get(sample, "message"));
	assert_non_null(m);
	assert_int_equal(strlen(m), 1024); /* cut, at a character boundary, to the sample's size */
	assert_memory_equal(m, msg, 1024);
	json_t *det = json_object_get(sample, "details");
	assert_int_equal(json_object_size(det), 16);
	const char *k;
	json_t *v;
	json_object_foreach(det, k, v) {
		assert_int_equal(strlen(k), DOC_DETAIL_KEY_MAX);
		assert_int_equal(strlen(json_string_value(v)), 256);
	}
	json_decref(b);

	/* the signature, verified as a receiver would, and errqd's User-Agent */
	char sig[200], ua[128];
	assert_non_null(receiver_header(&rv, 0, "X-Errq-Signature", sig, sizeof(sig)));
	assert_non_null(receiver_header(&rv, 0, "User-Agent", ua, sizeof(ua)));
	assert_string_equal(ua, "errqd/" ERRQ_VERSION_STRING);
	char *comma = strchr(sig, ',');
	assert_non_null(comma);
	assert_int_equal(strncmp(comma, ",v1=", 4), 0);
	size_t tl = (size_t)(comma - (sig + 2));
	char *signed_part = malloc(tl + 1 + blen + 1);
	memcpy(signed_part, sig + 2, tl);
	signed_part[tl] = '.';
	memcpy(signed_part + tl + 1, body, blen + 1);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)signed_part,
			     tl + 1 + blen, mac, &maclen));
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	for (unsigned i = 0; i < maclen; i++)
		errq_snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	assert_string_equal(comma + 4, hex);
	free(signed_part);

	free(msg);
	tevent_free(ev);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	receiver_stop(&rv);
	errqd_cleanup(&D);
}

int main(void)
{
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_huge_event_sample_cut_to_fit),
	};
	return cmocka_run_group_tests_name("integration_webhook_body", tests, NULL, NULL);
}
