#include "grouping.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "errq_hash.h"
#include "errq_normalize.h"
#include "errq_str.h"
#include "errq_banned.h"

size_t grouping_normalize_message(const char *s, char *out, size_t out_sz)
{
	return errq_normalize_message(s, out, out_sz);
}

static void explain_line(char *explain, size_t sz, size_t *used, const char *what, const char *v)
{
	if (!explain || *used >= sz)
		return;
	int n = errq_snprintf(explain + *used, sz - *used, "%s: %s\n", what, v);
	if (n > 0)
		*used = *used + (size_t)n < sz ? *used + (size_t)n : sz - 1;
}

static uint64_t mix(uint64_t h, const char *tag, const char *v)
{
	h = errq_fnv64(h, tag, strlen(tag) + 1);
	return errq_fnv64(h, v, strlen(v) + 1); /* the NUL separates the parts */
}

enum grouping_basis grouping_fingerprint(const Errq__V1__TaskFailure *tf, char out[FINGERPRINT_HEX_LEN + 1],
					 char *explain, size_t explain_sz)
{
	static const char hash_format = GROUPING_HASH_FORMAT;
	size_t used = 0;
	enum grouping_basis basis;
	char line[1200];
	if (explain && explain_sz)
		explain[0] = '\0';
	uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, &hash_format, 1);
	h = mix(h, "service", tf->service);
	explain_line(explain, explain_sz, &used, "service", tf->service);
	if (tf->fingerprint && tf->fingerprint[0]) {
		/* the client's word alone, within the service: not the error type (version 2) */
		basis = GROUPING_BY_CLIENT;
		h = mix(h, "client", tf->fingerprint);
		explain_line(explain, explain_sz, &used, "client fingerprint", tf->fingerprint);
		goto out;
	}
	h = mix(h, "error_type", tf->error_type);
	explain_line(explain, explain_sz, &used, "error_type", tf->error_type);
	bool any_in_app = false;
	for (size_t i = 0; i < tf->n_frames; i++)
		any_in_app |= tf->frames[i]->in_app != 0;
	int taken = 0;
	/* frames are outermost first: walk from the innermost */
	for (size_t k = tf->n_frames; k-- > 0 && taken < GROUPING_MAX_FRAMES;) {
		const Errq__V1__Frame *f = tf->frames[k];
		if (any_in_app && !f->in_app)
			continue;
		const char *fn = f->function ? f->function : "";
		const char *where = f->module && f->module[0] ? f->module : f->file ? f->file : "";
		if (!fn[0] && !where[0])
			continue;
		h = mix(h, "function", fn);
		h = mix(h, "where", where);
		errq_snprintf(line, sizeof(line), "%s in %s%s", fn[0] ? fn : "?", where[0] ? where : "?",
			      any_in_app ? "" : " (no frame marked in_app: all frames count)");
		explain_line(explain, explain_sz, &used, "frame", line);
		taken++;
	}
	if (taken) {
		basis = GROUPING_BY_FRAMES;
		goto out;
	}
	basis = GROUPING_BY_MESSAGE;
	char norm[GROUPING_NORMALIZED_MAX + 1];
	grouping_normalize_message(tf->message ? tf->message : "", norm, sizeof(norm));
	h = mix(h, "message", norm);
	explain_line(explain, explain_sz, &used, "message", norm);
out:;
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(h >> (56 - 8 * i));
	errq_hex_encode(b, 8, out);
	return basis;
}
