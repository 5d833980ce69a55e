/* fuzz_report.c: one Report message as errqd's stream handler takes it (server/report_decode.c):
 * the top-level count against REPORT_MAX_BATCH_EVENTS, protobuf-c's unpack into the batch's
 * arena (REPORT_MAX_DECODED_BYTES), validation, truncation and grouping of every event
 * (server/validate.c, server/grouping.c), and the packed `extra` stored with each. */
#include <ctype.h>

#include "auth.h"
#include "errq_str.h"
#include "fuzz.h"
#include "services.h"
#include "svc_report.h"
#include "errq_banned.h"

/* s, when set, is valid UTF-8 of at most max bytes */
static void check_str(const char *s, size_t max)
{
	if (!s)
		return;
	size_t n = strlen(s), bad;
	FUZZ_CHECK(n <= max);
	FUZZ_CHECK(errq_utf8_valid(s, n, &bad));
}

static void check_accepted(const struct ingest_batch *b, const struct ingest_event *ev)
{
	const Errq__V1__TaskFailure *tf = ev->tf;
	FUZZ_CHECK(tf->service && tf->service[0] && tf->error_type && tf->error_type[0]);
	FUZZ_CHECK(tf->event_id.len == 16);
	check_str(tf->service, VALIDATE_MAX_SERVICE);
	check_str(tf->environment, VALIDATE_MAX_ENVIRONMENT);
	check_str(tf->release, VALIDATE_MAX_RELEASE);
	check_str(tf->host, VALIDATE_MAX_HOST);
	check_str(tf->task, VALIDATE_MAX_TASK);
	check_str(tf->error_type, VALIDATE_MAX_ERROR_TYPE);
	check_str(tf->error_code, VALIDATE_MAX_ERROR_CODE);
	check_str(tf->message, VALIDATE_MAX_MESSAGE);
	check_str(tf->fingerprint, VALIDATE_MAX_FINGERPRINT);
	FUZZ_CHECK(strlen(ev->v.fingerprint) == FINGERPRINT_HEX_LEN);
	for (size_t i = 0; i < FINGERPRINT_HEX_LEN; i++)
		FUZZ_CHECK(isxdigit((unsigned char)ev->v.fingerprint[i]) && !isupper((unsigned char)ev->v.fingerprint[i]));
	FUZZ_CHECK(ev->v.frames_skip <= tf->n_frames && tf->n_frames - ev->v.frames_skip <= VALIDATE_MAX_FRAMES);
	FUZZ_CHECK(ev->v.details_kept <= tf->n_details && ev->v.details_kept <= VALIDATE_MAX_DETAILS);
	if (!ev->extra_len)
		return;
	/* what is stored must read back, with the kept frames and details */
	Errq__V1__TaskFailure *x = errq__v1__task_failure__unpack(NULL, ev->extra_len, b->extra + ev->extra_off);
	FUZZ_CHECK(x != NULL);
	FUZZ_CHECK(x->n_frames == tf->n_frames - ev->v.frames_skip);
	FUZZ_CHECK(x->n_details == ev->v.details_kept);
	for (size_t i = 0; i < x->n_frames; i++) {
		check_str(x->frames[i]->function, VALIDATE_MAX_FRAME_FIELD);
		check_str(x->frames[i]->file, VALIDATE_MAX_FRAME_FIELD);
		check_str(x->frames[i]->module, VALIDATE_MAX_FRAME_FIELD);
	}
	for (size_t i = 0; i < x->n_details; i++) {
		check_str(x->details[i]->key, VALIDATE_MAX_DETAIL_KEY);
		check_str(x->details[i]->value, VALIDATE_MAX_DETAIL_VALUE);
	}
	errq__v1__task_failure__free_unpacked(x, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nfail = 0;
	char why[128] = "";
	grpc_status_code st = GRPC_STATUS_OK;
	/* the order of svc_report.c's on_read(): count, limit, decode */
	if (report_count_failures(data, size, &nfail) || nfail > REPORT_MAX_BATCH_EVENTS)
		return 0;
	struct auth_scope scope; /* no credentials: every service may report; no quota */
	auth_scope_begin(NULL, "", &scope);
	struct ingest_batch *b = report_decode_batch(data, size, &scope, NULL, &st, why, sizeof(why));
	auth_scope_end(&scope);
	if (!b) {
		FUZZ_CHECK(st == GRPC_STATUS_INVALID_ARGUMENT || st == GRPC_STATUS_RESOURCE_EXHAUSTED);
		FUZZ_CHECK(fuzz_message_ok(why));
		return 0;
	}
	/* the count that enforces the limit is the decoder's count */
	FUZZ_CHECK(b->req->n_failures == nfail && b->n_events == nfail);
	FUZZ_CHECK(b->n_rejected <= b->n_events);
	FUZZ_CHECK(b->bytes >= b->arena.total && b->arena.total <= REPORT_MAX_DECODED_BYTES);
	uint32_t r = 0;
	for (size_t i = 0; i < b->n_events; i++) {
		const struct ingest_event *ev = &b->events[i];
		if (r < b->n_rejected && b->rejected_index[r] == i) {
			/* rejected alone, with a known code and a reason */
			FUZZ_CHECK(ev->tf == NULL);
			FUZZ_CHECK(validate_reject_index(b->rejected_reason[r]) >= 0);
			FUZZ_CHECK(fuzz_message_ok(b->rejected_reason[r]));
			r++;
			continue;
		}
		FUZZ_CHECK(ev->tf == b->req->failures[i]);
		check_accepted(b, ev);
	}
	FUZZ_CHECK(r == b->n_rejected);
	report_batch_free(b);
	return 0;
}
