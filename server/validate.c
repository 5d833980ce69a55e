#include "validate.h"

#include <string.h>

#include "errq_hash.h"
#include "errq_str.h"
#include "storage.h"
#include "errq_banned.h"

/* Checks one string field: invalid UTF-8 rejects (returns -1 with the reason); over max it is
 * cut in place at a character boundary and bit is set in *trunc. */
static int check_str(char *s, size_t max, const char *field, int bit, uint32_t *trunc,
		     char reason[VALIDATE_REASON_MAX])
{
	size_t n = strlen(s), bad;
	if (!errq_utf8_valid(s, n, &bad)) {
		errq_snprintf(reason, VALIDATE_REASON_MAX, "invalid_utf8: field '%s' is not valid UTF-8 at byte %zu",
			      field, bad);
		return -1;
	}
	if (n > max) {
		s[errq_utf8_trunc_len(s, n, max)] = '\0';
		*trunc |= 1u << bit;
	}
	return 0;
}

#define CODE_NAME(c) #c,
const char *const validate_reject_codes[VALIDATE_N_REJECT_CODES] = {VALIDATE_REJECT_CODES(CODE_NAME)};
#undef CODE_NAME

int validate_reject_index(const char *reason)
{
	for (int i = 0; i < VALIDATE_N_REJECT_CODES; i++) {
		size_t n = strlen(validate_reject_codes[i]);
		if (strncmp(reason, validate_reject_codes[i], n) == 0 && reason[n] == ':')
			return i;
	}
	return -1;
}

int validate_failure(Errq__V1__TaskFailure *tf, struct validated *v, char reason[VALIDATE_REASON_MAX])
{
	memset(v, 0, sizeof(*v));
	if (!tf->service || !tf->service[0]) {
		errq_snprintf(reason, VALIDATE_REASON_MAX, "missing_service: service is empty");
		return -1;
	}
	if (!tf->error_type || !tf->error_type[0]) {
		errq_snprintf(reason, VALIDATE_REASON_MAX, "missing_error_type: error_type is empty");
		return -1;
	}
	if (tf->event_id.len != 16) {
		errq_snprintf(reason, VALIDATE_REASON_MAX, "bad_event_id: event_id is %zu bytes, want 16",
			      tf->event_id.len);
		return -1;
	}
	uint32_t *t = &v->truncated;
	struct {
		char *s;
		size_t max;
		const char *name;
		int bit;
	} fields[] = {
	    {tf->service, VALIDATE_MAX_SERVICE, "service", STORE_TRUNC_BIT_SERVICE},
	    {tf->environment, VALIDATE_MAX_ENVIRONMENT, "environment", STORE_TRUNC_BIT_ENVIRONMENT},
	    {tf->release, VALIDATE_MAX_RELEASE, "release", STORE_TRUNC_BIT_RELEASE},
	    {tf->host, VALIDATE_MAX_HOST, "host", STORE_TRUNC_BIT_HOST},
	    {tf->task, VALIDATE_MAX_TASK, "task", STORE_TRUNC_BIT_TASK},
	    {tf->error_type, VALIDATE_MAX_ERROR_TYPE, "error_type", STORE_TRUNC_BIT_ERROR_TYPE},
	    {tf->error_code, VALIDATE_MAX_ERROR_CODE, "error_code", STORE_TRUNC_BIT_ERROR_CODE},
	    {tf->message, VALIDATE_MAX_MESSAGE, "message", STORE_TRUNC_BIT_MESSAGE},
	    {tf->fingerprint, VALIDATE_MAX_FINGERPRINT, "fingerprint", STORE_TRUNC_BIT_FINGERPRINT},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i].s && check_str(fields[i].s, fields[i].max, fields[i].name, fields[i].bit, t, reason))
			return -1;
	for (size_t i = 0; i < tf->n_frames; i++) {
		Errq__V1__Frame *f = tf->frames[i];
		if ((f->function && check_str(f->function, VALIDATE_MAX_FRAME_FIELD, "frames.function",
					      STORE_TRUNC_BIT_FRAMES, t, reason)) ||
		    (f->file && check_str(f->file, VALIDATE_MAX_FRAME_FIELD, "frames.file", STORE_TRUNC_BIT_FRAMES,
					  t, reason)) ||
		    (f->module && check_str(f->module, VALIDATE_MAX_FRAME_FIELD, "frames.module",
					    STORE_TRUNC_BIT_FRAMES, t, reason)))
			return -1;
	}
	for (size_t i = 0; i < tf->n_details; i++) {
		Errq__V1__TaskFailure__DetailsEntry *d = tf->details[i];
		if ((d->key && check_str(d->key, VALIDATE_MAX_DETAIL_KEY, "details.key", STORE_TRUNC_BIT_DETAILS, t,
					 reason)) ||
		    (d->value && check_str(d->value, VALIDATE_MAX_DETAIL_VALUE, "details.value",
					   STORE_TRUNC_BIT_DETAILS, t, reason)))
			return -1;
	}
	if (tf->n_frames > VALIDATE_MAX_FRAMES) {
		v->frames_skip = tf->n_frames - VALIDATE_MAX_FRAMES; /* keep the innermost */
		*t |= 1u << STORE_TRUNC_BIT_FRAMES;
	}
	v->details_kept = tf->n_details;
	if (tf->n_details > VALIDATE_MAX_DETAILS) {
		v->details_kept = VALIDATE_MAX_DETAILS;
		*t |= 1u << STORE_TRUNC_BIT_DETAILS;
	}
	grouping_fingerprint(tf, v->fingerprint, NULL, 0);
	return 0;
}
