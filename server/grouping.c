#include "grouping.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "errq_hash.h"
#include "errq_str.h"
#include "errq_banned.h"

static bool is_hex(char c)
{
	return isxdigit((unsigned char)c) != 0;
}

/* Length of a UUID (8-4-4-4-12 hex) at s, or 0. */
static size_t uuid_len(const char *s)
{
	static const int groups[] = {8, 4, 4, 4, 12};
	size_t i = 0;
	for (int g = 0; g < 5; g++) {
		for (int k = 0; k < groups[g]; k++, i++)
			if (!is_hex(s[i]))
				return 0;
		if (g < 4 && s[i++] != '-')
			return 0;
	}
	return is_hex(s[i]) || isalnum((unsigned char)s[i]) ? 0 : i;
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

size_t grouping_normalize_message(const char *s, char *out, size_t out_sz)
{
	size_t o = 0, i = 0;
	if (!out_sz)
		return 0;
#define PUT(str)                                                                                   \
	do {                                                                                       \
		size_t l_ = strlen(str);                                                           \
		if (o + l_ >= out_sz)                                                              \
			goto done;                                                                 \
		memcpy(out + o, str, l_);                                                          \
		o += l_;                                                                           \
	} while (0)
	while (s[i]) {
		bool at_word_start = i == 0 || !word_char(s[i - 1]);
		size_t l;
		if (at_word_start && (l = uuid_len(s + i)) > 0) {
			PUT("<uuid>");
			i += l;
		} else if (at_word_start && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X') && is_hex(s[i + 2])) {
			i += 2;
			while (is_hex(s[i]))
				i++;
			PUT("<hex>");
		} else if (at_word_start && isdigit((unsigned char)s[i])) {
			/* a number, or a hex id that starts with a digit (a commit, a request id) */
			size_t j = i;
			bool hexalpha = false;
			while (is_hex(s[j]) || s[j] == '.' || s[j] == '_') {
				hexalpha |= isalpha((unsigned char)s[j]) != 0;
				j++;
			}
			if (word_char(s[j]) && !hexalpha) { /* "3rd", "2xx": part of a word, keep */
				while (word_char(s[j]))
					j++;
				char keep[64];
				size_t n = j - i < sizeof(keep) - 1 ? j - i : sizeof(keep) - 1;
				memcpy(keep, s + i, n);
				keep[n] = '\0';
				PUT(keep);
			} else {
				PUT(hexalpha ? "<hex>" : "<n>");
			}
			i = j;
		} else if (at_word_start && is_hex(s[i])) {
			/* a run of 8+ hex digits holding a digit is an id, not a word ("deadbeef12") */
			size_t j = i;
			bool digit = false;
			while (is_hex(s[j])) {
				digit |= isdigit((unsigned char)s[j]) != 0;
				j++;
			}
			if (j - i >= 8 && digit && !word_char(s[j])) {
				PUT("<hex>");
				i = j;
			} else {
				while (word_char(s[i])) {
					char c[2] = {s[i++], '\0'};
					PUT(c);
				}
			}
		} else if ((s[i] == '\'' || s[i] == '"') && strchr(s + i + 1, s[i])) {
			/* a quoted value: '...' or "..." */
			const char *end = strchr(s + i + 1, s[i]);
			PUT("<str>");
			i = (size_t)(end - s) + 1;
		} else {
			char c[2] = {s[i++], '\0'};
			PUT(c);
		}
	}
done:
	out[o] = '\0';
	return o;
#undef PUT
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
	static const char version = GROUPING_VERSION;
	size_t used = 0;
	enum grouping_basis basis;
	char line[1200];
	if (explain && explain_sz)
		explain[0] = '\0';
	uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, &version, 1);
	h = mix(h, "service", tf->service);
	explain_line(explain, explain_sz, &used, "service", tf->service);
	h = mix(h, "error_type", tf->error_type);
	explain_line(explain, explain_sz, &used, "error_type", tf->error_type);

	if (tf->fingerprint && tf->fingerprint[0]) {
		basis = GROUPING_BY_CLIENT;
		h = mix(h, "client", tf->fingerprint);
		explain_line(explain, explain_sz, &used, "client fingerprint", tf->fingerprint);
		goto out;
	}
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
