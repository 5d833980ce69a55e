/* qbench_flags.c: errq-query-bench, flags: usage, parsing and checking the command line.  See
 * errq_query_bench.c for the order of things. */
#include "qbench.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_banned.h"

void qb_usage(FILE *f)
{
	fprintf(f,
		"usage: errq-query-bench (--errqd ERRQD [--db PATH] [--keep] [--errqd-arg X]... | --addr HOST:PORT)\n"
		"                        [--bench ERRQ_BENCH] [--events N] [--groups N] [--zipf S]\n"
		"                        [--runs N] [--cli ERRQ] [--cli-runs N] [--timeout D]\n"
		"                        [--json] [--markdown FILE]\n"
		"\n"
		"Fills an errq database (unless it already holds --events events), then times the queries\n"
		"the errq CLI sends: `errq groups --since 1h` (target < 100 ms) and `errq group FP`\n"
		"(target < 50 ms) on a database of 10 million events in 50 000 groups (issue 4).\n"
		"\n"
		"Collector:\n"
		"  --errqd ERRQD        start this errqd on 127.0.0.1:0, stop it at the end; its per-group\n"
		"                       cap is turned off (--set events_per_group=0): every event is kept\n"
		"  --db PATH            its database (kept; reused when it already holds --events events);\n"
		"                       default: a temporary one, removed at the end unless --keep\n"
		"  --errqd-arg X        pass X on to errqd (repeat; after ours, so it can override them)\n"
		"  --keep               keep the temporary directory (database, errqd's log)\n"
		"  --addr HOST:PORT     a running collector instead (its own events_per_group cap applies:\n"
		"                       Status counts events it has deleted, so set events_per_group=0)\n"
		"Fill (defaults in brackets):\n"
		"  --bench ERRQ_BENCH   errq-bench, run as: --prefill N --duration 0 --groups G --zipf S\n"
		"                       (needed only when the database holds fewer than --events events)\n"
		"  --events N           stored events wanted [10000000]\n"
		"  --groups N           groups [50000]\n"
		"  --zipf S             group popularity [1.1]\n"
		"Measure:\n"
		"  --runs N             timed calls per request, after 1 warm-up call; each on a fresh\n"
		"                       channel [21]\n"
		"  --cli ERRQ           also time the errq process end to end (spawn to exit)\n"
		"  --cli-runs N         runs per errq command, after 1 warm-up run [11]\n"
		"  --timeout D          deadline of one call (10s, 2m) [2m]\n"
		"Output:\n"
		"  --json               one JSON object instead of the table\n"
		"  --markdown FILE      also write the figures as Markdown to FILE\n"
		"\n"
		"Exit: 0 every target met, 1 usage, 2 errqd not started or unreachable, or the fill failed,\n"
		"3 a call or an errq run failed, 4 a target missed, 130 interrupted.\n");
}

static int bad(const char *flag, const char *v, const char *why)
{
	fprintf(stderr, "errq-query-bench: %s '%s': %s\n", flag, v, why);
	return -1;
}

static int parse_u64(const char *flag, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	if (*v == '-')
		return bad(flag, v, "expected a positive integer");
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi) {
		char why[BENCH_LABEL_MAX];
		errq_snprintf(why, sizeof(why), "expected an integer in [%" PRIu64 ", %" PRIu64 "]", lo, hi);
		return bad(flag, v, why);
	}
	*out = n;
	return 0;
}

static bool is_executable(const char *p)
{
	return access(p, X_OK) == 0;
}

/* Returns 0 to go on, 1 for a usage error, 2 after --help. */
int qb_parse_flags(struct qcfg *c, int argc, char **argv)
{
	enum { O_ERRQD = 256, O_ADDR, O_DB, O_EARG, O_KEEP, O_BENCH, O_EVENTS, O_GROUPS, O_ZIPF, O_RUNS, O_CLI,
	       O_CLI_RUNS, O_TIMEOUT, O_JSON, O_MD };
	static const struct option longopts[] = {
	    {"errqd", required_argument, NULL, O_ERRQD},
	    {"addr", required_argument, NULL, O_ADDR},
	    {"db", required_argument, NULL, O_DB},
	    {"errqd-arg", required_argument, NULL, O_EARG},
	    {"keep", no_argument, NULL, O_KEEP},
	    {"bench", required_argument, NULL, O_BENCH},
	    {"events", required_argument, NULL, O_EVENTS},
	    {"groups", required_argument, NULL, O_GROUPS},
	    {"zipf", required_argument, NULL, O_ZIPF},
	    {"runs", required_argument, NULL, O_RUNS},
	    {"cli", required_argument, NULL, O_CLI},
	    {"cli-runs", required_argument, NULL, O_CLI_RUNS},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"json", no_argument, NULL, O_JSON},
	    {"markdown", required_argument, NULL, O_MD},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt, rc = 0;
	uint64_t n;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		const char *v = optarg;
		switch (opt) {
		case 'h': qb_usage(stdout); return 2;
		case O_ERRQD: c->errqd = v; break;
		case O_ADDR:
			if (strlen(v) >= BENCH_ADDR_MAX || !strrchr(v, ':'))
				rc |= bad("--addr", v, "expected HOST:PORT");
			c->addr = v;
			break;
		case O_DB:
			if (strlen(v) >= BENCH_PATH_MAX)
				rc |= bad("--db", v, "path too long");
			c->db = v;
			break;
		case O_EARG:
			if (c->nerrqd_args == QB_MAX_ERRQD_ARGS)
				rc |= bad("--errqd-arg", v, "too many");
			else
				c->errqd_args[c->nerrqd_args++] = v;
			break;
		case O_KEEP: c->keep = true; break;
		case O_BENCH: c->bench = v; break;
		case O_EVENTS: rc |= parse_u64("--events", v, 1, UINT64_C(1) << 40, &c->events); break;
		case O_GROUPS:
			if (parse_u64("--groups", v, 1, BENCH_MAX_GROUPS, &n) == 0)
				c->groups = (uint32_t)n;
			else
				rc = -1;
			break;
		case O_ZIPF: {
			char *end;
			errno = 0;
			double d = strtod(v, &end);
			if (errno || end == v || *end || !(d >= 0 && d <= 100))
				rc |= bad("--zipf", v, "expected a number in [0, 100]");
			c->zipf = v;
			c->zipf_value = d;
			break;
		}
		case O_RUNS:
			if (parse_u64("--runs", v, 1, QB_MAX_RUNS, &n) == 0)
				c->runs = (int)n;
			else
				rc = -1;
			break;
		case O_CLI: c->cli = v; break;
		case O_CLI_RUNS:
			if (parse_u64("--cli-runs", v, 1, QB_MAX_RUNS, &n) == 0)
				c->cli_runs = (int)n;
			else
				rc = -1;
			break;
		case O_TIMEOUT: {
			uint64_t ns;
			if (errq_parse_duration(v, &ns) || ns < ERRQ_NS_PER_MS || ns > 3600 * ERRQ_NS_PER_SEC)
				rc |= bad("--timeout", v, "expected a duration from 1ms to 1h, like 30s or 2m");
			else
				c->timeout_ms = (long)(ns / ERRQ_NS_PER_MS);
			break;
		}
		case O_JSON: c->json = true; break;
		case O_MD: c->markdown = v; break;
		default: return 1;
		}
	}
	if (rc)
		return 1;
	if (optind < argc) {
		fprintf(stderr, "errq-query-bench: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (!c->errqd == !c->addr) {
		fprintf(stderr, "errq-query-bench: give exactly one of --errqd ERRQD and --addr HOST:PORT\n");
		return 1;
	}
	if (c->addr && (c->db || c->keep || c->nerrqd_args)) {
		fprintf(stderr, "errq-query-bench: --db, --keep and --errqd-arg need --errqd\n");
		return 1;
	}
	const char *const exe[][2] = {{"--errqd", c->errqd}, {"--bench", c->bench}, {"--cli", c->cli}};
	for (size_t k = 0; k < sizeof(exe) / sizeof(exe[0]); k++)
		if (exe[k][1] && !is_executable(exe[k][1])) {
			bad(exe[k][0], exe[k][1], "not an executable file");
			return 1;
		}
	return 0;
}
