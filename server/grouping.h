/* grouping.h: which group an event belongs to.
 *
 * A fingerprint is 16 hex digits of a 64-bit FNV-1a hash over the grouping version, the
 * service, the error type and then the first of:
 *   1. the client's `fingerprint`, when it sets one;
 *   2. the location: the innermost GROUPING_MAX_FRAMES frames that belong to the application
 *      (in_app; when no frame is marked, every frame counts), each as function and module (or
 *      file when there is no module) — never line numbers, which move with every release;
 *   3. the message with its variable parts replaced by placeholders: numbers <n>, hex <hex>,
 *      UUIDs <uuid>, quoted values <str>.
 * So the same error with other numbers in its message is one group, and the same message
 * raised from two different functions is two.  Groups never span services.  A change to
 * this algorithm must bump GROUPING_VERSION (stored with each group) so old groups are not
 * silently split. */
#ifndef ERRQD_GROUPING_H
#define ERRQD_GROUPING_H
#include <stddef.h>

#include "errq/v1/collector.pb-c.h"

#define GROUPING_VERSION 1
#define GROUPING_MAX_FRAMES 5
#define FINGERPRINT_HEX_LEN 16
#define GROUPING_NORMALIZED_MAX 512 /* bytes of the normalized message that count */

enum grouping_basis { GROUPING_BY_CLIENT, GROUPING_BY_FRAMES, GROUPING_BY_MESSAGE };

/* Computes tf's fingerprint into out.  When explain is not NULL, writes there (up to
 * explain_sz bytes, NUL-terminated) one line per component that went into the hash. */
enum grouping_basis grouping_fingerprint(const Errq__V1__TaskFailure *tf, char out[FINGERPRINT_HEX_LEN + 1],
					 char *explain, size_t explain_sz);

/* Writes s with its variable parts replaced (see above) into out (always NUL-terminated);
 * returns the length written.  Exposed for tests and `errq explain`. */
size_t grouping_normalize_message(const char *s, char *out, size_t out_sz);
#endif
