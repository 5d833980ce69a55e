/* errq_time.h: clocks, RFC 3339 formatting and duration parsing. */
#ifndef ERRQ_TIME_H
#define ERRQ_TIME_H
#include <stddef.h>
#include <stdint.h>

#define ERRQ_NS_PER_MS 1000000ULL
#define ERRQ_NS_PER_SEC 1000000000ULL
/* "2026-11-25T18:03:11.482Z" plus NUL */
#define ERRQ_RFC3339_BUFSZ 64

uint64_t errq_now_ns(void);  /* CLOCK_REALTIME, nanoseconds since the epoch */
uint64_t errq_mono_ns(void); /* CLOCK_MONOTONIC */

/* Formats ns as UTC RFC 3339 with milliseconds and 'Z'.  buf must hold ERRQ_RFC3339_BUFSZ.
 * Returns buf. */
char *errq_fmt_rfc3339(char *buf, uint64_t ns);

/* Parses "250ms", "30s", "5m", "2h", "7d" (one number, one unit) into ns.
 * Returns 0, or -1 when s is not a duration. */
int errq_parse_duration(const char *s, uint64_t *ns);

#define ERRQ_DURATION_BUFSZ 32
/* Formats ns with the largest unit that divides it ("30d", "90m", "1500ms", "0s"; "7ns" when no
 * unit of errq_parse_duration does), so that a parsed duration reads back the same.  Returns buf. */
char *errq_fmt_duration(char buf[ERRQ_DURATION_BUFSZ], uint64_t ns);

/* Parses an RFC 3339 UTC timestamp ("2026-11-25T18:03:11Z", optional fraction, 'Z' or
 * +hh:mm offset).  Returns 0 or -1. */
int errq_parse_rfc3339(const char *s, uint64_t *ns);

/* "--since" argument: a duration back from now, or an RFC 3339 time.  Returns 0 or -1. */
int errq_parse_since(const char *s, uint64_t now_ns, uint64_t *since_ns);
#endif
