/* validate.h: what the collector accepts in a TaskFailure, and how it groups it.
 *
 * An event is rejected only for: a missing service or error_type, an event_id that is not
 * 16 bytes, or invalid UTF-8 in any string field (frames and details included).  Fields over
 * their limit are truncated (at a UTF-8 boundary) and marked, never rejected; stacks keep the
 * innermost VALIDATE_MAX_FRAMES frames, details the first VALIDATE_MAX_DETAILS entries. */
#ifndef ERRQD_VALIDATE_H
#define ERRQD_VALIDATE_H
#include <stddef.h>
#include <stdint.h>

#include "errq/v1/collector.pb-c.h"

#define VALIDATE_MAX_SERVICE 128
#define VALIDATE_MAX_ENVIRONMENT 64
#define VALIDATE_MAX_RELEASE 128
#define VALIDATE_MAX_HOST 255
#define VALIDATE_MAX_TASK 256
#define VALIDATE_MAX_ERROR_TYPE 256
#define VALIDATE_MAX_ERROR_CODE 128
#define VALIDATE_MAX_MESSAGE 8192
#define VALIDATE_MAX_FINGERPRINT 128
#define VALIDATE_MAX_FRAMES 64
#define VALIDATE_MAX_FRAME_FIELD 512
#define VALIDATE_MAX_DETAILS 64
#define VALIDATE_MAX_DETAIL_KEY 128
#define VALIDATE_MAX_DETAIL_VALUE 1024
#define VALIDATE_REASON_MAX 160

#include "grouping.h"

struct validated {
	uint32_t truncated;     /* STORE_TRUNC_BIT_* mask */
	size_t frames_skip;     /* outermost frames dropped */
	size_t details_kept;    /* details entries kept */
	char fingerprint[FINGERPRINT_HEX_LEN + 1];
};

/* The rejection codes (the part of a reason before the colon), in a fixed order.
 * quota_exceeded is the quota's (quota.h) and service_not_allowed the credentials' (auth.h),
 * not validate_failure's: listed here so that every rejection is counted by its code. */
#define VALIDATE_REJECT_CODES(X) \
	X(missing_service) X(missing_error_type) X(bad_event_id) X(invalid_utf8) X(service_not_allowed) X(quota_exceeded)
#define VALIDATE_N_REJECT_CODES 6
extern const char *const validate_reject_codes[VALIDATE_N_REJECT_CODES];
/* The index of reason's code in validate_reject_codes, or -1. */
int validate_reject_index(const char *reason);

/* Checks tf and truncates over-long strings in place.  Returns 0 when the event is accepted
 * (v filled in), or -1 with reason set to "code: explanation". */
int validate_failure(Errq__V1__TaskFailure *tf, struct validated *v, char reason[VALIDATE_REASON_MAX]);
#endif
