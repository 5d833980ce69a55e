/* fuzz_time.c: the duration and time parsers (common/errq_time.c) and the CLI's arguments that
 * use them (cli/cli_args.c: --since, --until, --timeout, --for).  The input is split at NUL
 * bytes: every piece goes through each parser, and the pieces are also an errq command line. */
#include "cli_args.h"
#include "errq_time.h"
#include "fuzz.h"
#include "errq_banned.h"

#define FUZZ_MAX_ARGV 24
/* 2026-11-25T18:03:11.482Z, the unit tests' "now" */
#define FUZZ_NOW_NS (1795629791482ULL * ERRQ_NS_PER_MS)

static void parse_one(const char *s)
{
	uint64_t ns, again, since;
	char buf[ERRQ_RFC3339_BUFSZ], dbuf[ERRQ_DURATION_BUFSZ];
	long ms;
	if (errq_parse_duration(s, &ns) == 0) {
		/* errq_fmt_duration reads back the same (errq_time.h) */
		errq_fmt_duration(dbuf, ns);
		FUZZ_CHECK(errq_parse_duration(dbuf, &again) == 0 && again == ns);
		FUZZ_CHECK(errq_parse_since(s, FUZZ_NOW_NS, &since) == 0);
		FUZZ_CHECK(since == (ns >= FUZZ_NOW_NS ? 1 : FUZZ_NOW_NS - ns));
	}
	if (errq_parse_rfc3339(s, &ns) == 0) {
		/* what errq prints (milliseconds) parses back to the same millisecond */
		errq_fmt_rfc3339(buf, ns);
		FUZZ_CHECK(errq_parse_rfc3339(buf, &again) == 0);
		FUZZ_CHECK(again == ns - ns % ERRQ_NS_PER_MS);
	}
	if (cli_timeout_parse(s, &ms) == 0)
		FUZZ_CHECK(ms >= 1 && ms <= CLI_TIMEOUT_MAX_MS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size), *argv[FUZZ_MAX_ARGV + 1];
	int argc = 0;
	if (!s)
		return 0;
	argv[argc++] = "errq";
	for (size_t i = 0; i <= size && argc < FUZZ_MAX_ARGV; i += strlen(s + i) + 1) {
		parse_one(s + i);
		argv[argc++] = s + i;
	}
	argv[argc] = NULL;
	struct cli_args a;
	char err[512] = "";
	cli_args_init(&a, NULL, NULL);
	if (cli_args_parse(&a, argc, argv, cli_commands, cli_ncommands, FUZZ_NOW_NS, err, sizeof(err)) != 0)
		FUZZ_CHECK(err[0] != '\0'); /* (it may quote, and end with, any argument) */
	else if (!a.help && a.cmd && (a.set & CLI_F_UNTIL)) /* no command: main prints the usage, exit 1 */
		FUZZ_CHECK(a.until_ns > a.since_ns);
	free(s);
	return 0;
}
