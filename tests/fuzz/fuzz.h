/* fuzz.h: what every fuzz target shares (tests/fuzz/README.md).
 *
 * A target is one file defining LLVMFuzzerTestOneInput (and, when it needs one-time set-up,
 * LLVMFuzzerInitialize).  The same file is linked twice: with libFuzzer in the clang build
 * (tests/fuzz/build.sh), and with replay_main.c in the normal build, where it replays the
 * committed corpus and regression inputs under gcc, ASan and valgrind.  A target checks the
 * contracts of the code it drives with FUZZ_CHECK: a broken contract aborts, which libFuzzer
 * records as a crash like any memory error. */
#ifndef ERRQ_FUZZ_H
#define ERRQ_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                     \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

/* data as a NUL-terminated string (cut at its first NUL), malloc'ed; NULL when out of memory. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return NULL;
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A message as the project wants it: non-empty, no trailing period.  (A message may quote
 * the input, newlines included.) */
static inline int fuzz_message_ok(const char *msg)
{
	size_t n = strlen(msg);
	return n > 0 && msg[n - 1] != '.';
}
#endif
