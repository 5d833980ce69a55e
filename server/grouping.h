/* grouping.h: which group an event belongs to.
 *
 * A fingerprint is 16 hex digits of a 64-bit FNV-1a hash over the byte GROUPING_HASH_FORMAT,
 * the service and then the first of:
 *   1. the client's `fingerprint`, when it sets one: that alone, within the service (not the
 *      error type, the message or the frames: a client that gives a ConnectionError and a
 *      TimeoutError one fingerprint asked for one group);
 *   2. the error type and the location: the innermost GROUPING_MAX_FRAMES frames that belong
 *      to the application (in_app; when no frame is marked, every frame counts), each as
 *      function and module (or file when there is no module) — never line numbers, which
 *      move with every release;
 *   3. the error type and the message with its variable parts replaced by placeholders
 *      (common/errq_normalize.h: numbers, units, hex, UUIDs, tokens, addresses, e-mail,
 *      timestamps, query strings, quoted values).
 * So the same error with other ids in its message is one group, and the same message raised
 * from two different functions is two.  Groups never span services.
 *
 * Versions.  GROUPING_VERSION names the algorithm; it is stored with each group a collector
 * creates and reported by `errq explain`, and a change to what any basis hashes must bump it
 * (tests/unit/test_grouping.c pins the fingerprints per version).  GROUPING_HASH_FORMAT is
 * the first byte hashed and has stayed 1: bumping it would re-key every group, also those
 * whose components did not change (docs/architecture.md, "Grouping version 2").
 *   1  service, error type, then client fingerprint | frames | message (numbers, hex, UUIDs,
 *      quoted values)
 *   2  a client fingerprint without the error type; the message normalizer's id shapes */
#ifndef ERRQD_GROUPING_H
#define ERRQD_GROUPING_H
#include <stddef.h>

#include "errq/v1/collector.pb-c.h"

#define GROUPING_VERSION 2
#define GROUPING_HASH_FORMAT 1 /* the first byte hashed: see above */
#define GROUPING_MAX_FRAMES 5
#define FINGERPRINT_HEX_LEN 16
#define GROUPING_NORMALIZED_MAX 512 /* bytes of the normalized message that count */

enum grouping_basis { GROUPING_BY_CLIENT, GROUPING_BY_FRAMES, GROUPING_BY_MESSAGE };

/* Computes tf's fingerprint into out.  When explain is not NULL, writes there (up to
 * explain_sz bytes, NUL-terminated) one line per component that went into the hash. */
enum grouping_basis grouping_fingerprint(const Errq__V1__TaskFailure *tf, char out[FINGERPRINT_HEX_LEN + 1],
					 char *explain, size_t explain_sz);

/* errq_normalize_message (common/errq_normalize.h), the message basis's normalizer: writes s
 * with its variable parts replaced into out (always NUL-terminated); returns the length
 * written.  Exposed for tests and the fuzz target. */
size_t grouping_normalize_message(const char *s, char *out, size_t out_sz);
#endif
