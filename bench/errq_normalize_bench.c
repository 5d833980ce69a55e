/* errq-normalize-bench: the grouping's message normalizer (common/errq_normalize.c) alone, on
 * a fixed corpus of real-looking messages — short ones, a long one past the normalized limit,
 * one for each id shape and one of every shape at once — so its cost per message can be timed
 * and, the figure to compare on a noisy machine, counted:
 *
 *   errq-normalize-bench [--rounds N]
 *   valgrind --tool=callgrind --toggle-collect=errq_normalize_message errq-normalize-bench --rounds 2000
 *
 * Runs the corpus N times (default 20000) into a buffer of the grouping's size (512 bytes and
 * its NUL) and prints one JSON line: messages, input bytes, ns per message and per input byte,
 * and a checksum of the output lengths (so the work cannot be optimized away, and two builds
 * that normalize alike print the same).  Exit 0, or 2 on a usage error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errq_normalize.h"
#include "errq_time.h"

#define BENCH_OUT_MAX 512 /* GROUPING_NORMALIZED_MAX (server/grouping.h) */

#define LONG_SQL "ERROR: relation \"public.order_items_2026_11\" does not exist at character 15 "

static const char *const corpus[] = {
    /* short, nothing to replace or one number */
    "'user_id'",
    "division by zero",
    "index out of range [5] with length 3",
    "payment provider timed out after 3000 ms (attempt 2)",
    "Connection unexpectedly closed: 421 4.7.0 Try again later, closing connection",
    /* one shape each */
    "connection to 10.0.3.17:5432 refused",
    "dial tcp [2001:db8::1]:443: connect: connection refused",
    "user 9f1c2b3a-77b0-4c1e-9a51-0e2b6d1f3c88 not found",
    "GET /api/v1/orders?id=123&token=abc failed",
    "timeout after 250ms",
    "request body 10MB over the limit of 4MiB (42%)",
    "token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U "
    "expired",
    "job late at 2026-12-07T04:31:22.123Z",
    "[1733545882] lease lost",
    "mail to bob.smith@example.com bounced",
    "no invoice 0x7f3a9c for customer 'acme-42'",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 not found in origin/main",
    /* every shape at once, and a Go error with a URL */
    "order 9f1c2b3a-77b0-4c1e-9a51-0e2b6d1f3c88 for bob.smith@example.com not found at 2026-12-07T04:31:22.123Z "
    "(db 10.0.3.17:5432, peer [2001:db8::1]:443, took 250ms, 10MB, 42%, token "
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlMTIz, GET /v1/orders?id=123&page=2, epoch [1733545882], "
    "commit 9fceb02, customer 'acme-42')",
    "context deadline exceeded: GET https://search.internal:9200/products/_search?q=shoes took 5.000321s",
    /* long: ~1 KiB, cut at the normalized limit */
    LONG_SQL LONG_SQL LONG_SQL LONG_SQL LONG_SQL LONG_SQL LONG_SQL LONG_SQL LONG_SQL LONG_SQL LONG_SQL LONG_SQL,
};
#define N_CORPUS (sizeof(corpus) / sizeof(corpus[0]))

int main(int argc, char **argv)
{
	long rounds = 20000;
	for (int i = 1; i < argc; i++) {
		char *end;
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = strtol(argv[++i], &end, 10);
			if (*end || rounds < 1 || rounds > 100000000) {
				fprintf(stderr, "errq-normalize-bench: invalid --rounds '%s'\n", argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: errq-normalize-bench [--rounds N]\n");
			return 2;
		}
	}
	static char out[BENCH_OUT_MAX + 1];
	size_t in_bytes = 0;
	for (size_t k = 0; k < N_CORPUS; k++)
		in_bytes += strlen(corpus[k]);
	uint64_t sum = 0;
	uint64_t t0 = errq_mono_ns();
	for (long r = 0; r < rounds; r++)
		for (size_t k = 0; k < N_CORPUS; k++)
			sum += errq_normalize_message(corpus[k], out, sizeof(out));
	uint64_t ns = errq_mono_ns() - t0;
	double msgs = (double)rounds * (double)N_CORPUS;
	printf("{\"corpus_messages\":%zu,\"rounds\":%ld,\"messages\":%.0f,\"input_bytes_per_round\":%zu,"
	       "\"ns_per_message\":%.1f,\"ns_per_input_byte\":%.3f,\"checksum\":%llu}\n",
	       N_CORPUS, rounds, msgs, in_bytes, (double)ns / msgs, (double)ns / ((double)rounds * (double)in_bytes),
	       (unsigned long long)(sum / (uint64_t)rounds));
	return 0;
}
