/* fuzz_normalize.c: the message normalizer of the grouping (server/grouping.c), with output
 * buffers of every size, and the fingerprint of an event built from the same bytes. */
#include "fuzz.h"
#include "grouping.h"
#include "errq_banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* byte 0 picks the output size: 1 .. 2 * GROUPING_NORMALIZED_MAX, and the full size */
	size_t small = 1 + (size_t)data[0] * (2 * GROUPING_NORMALIZED_MAX) / 255;
	char *s = fuzz_strndup(data + 1, size - 1);
	char *full = malloc(GROUPING_NORMALIZED_MAX + 1), *part = malloc(small), *again = malloc(GROUPING_NORMALIZED_MAX + 1);
	if (!s || !full || !part || !again)
		goto out;
	size_t n = grouping_normalize_message(s, full, GROUPING_NORMALIZED_MAX + 1);
	FUZZ_CHECK(n == strlen(full) && n <= GROUPING_NORMALIZED_MAX);
	/* another buffer size gets a prefix or an extension of the same result */
	size_t m = grouping_normalize_message(s, part, small);
	FUZZ_CHECK(m == strlen(part) && m < small);
	FUZZ_CHECK(memcmp(part, full, m < n ? m : n) == 0);
	FUZZ_CHECK(grouping_normalize_message(s, again, 0) == 0);
	size_t k = grouping_normalize_message(s, again, GROUPING_NORMALIZED_MAX + 1);
	FUZZ_CHECK(k == n && memcmp(again, full, n + 1) == 0);

	/* the event's fingerprint by message (no frames, no client fingerprint), with an explanation */
	Errq__V1__TaskFailure tf = ERRQ__V1__TASK_FAILURE__INIT;
	char fp[FINGERPRINT_HEX_LEN + 1], fp2[FINGERPRINT_HEX_LEN + 1], explain[1024];
	tf.service = "svc";
	tf.error_type = "E";
	tf.message = s;
	FUZZ_CHECK(grouping_fingerprint(&tf, fp, explain, sizeof(explain)) == GROUPING_BY_MESSAGE);
	FUZZ_CHECK(strlen(fp) == FINGERPRINT_HEX_LEN && strlen(explain) < sizeof(explain));
	/* asking for the explanation does not change the group */
	grouping_fingerprint(&tf, fp2, NULL, 0);
	FUZZ_CHECK(memcmp(fp, fp2, sizeof(fp)) == 0);
out:
	free(s);
	free(full);
	free(part);
	free(again);
	return 0;
}
