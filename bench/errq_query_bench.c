/* errq-query-bench: the query-speed benchmark of issue 4 ("Speed").
 *
 * Target: with 10 million stored events in 50 000 groups, `errq groups --since 1h` answers in
 * under 100 ms and `errq group FP` in under 50 ms.  This program fills a database, then times
 * the RPCs those commands send, and the commands themselves.
 *
 * Order of things:
 *  1. errqd: started with proc.c's server_spawn on 127.0.0.1:0 (its own process group), on a
 *     temporary database or on --db PATH (kept), with the per-group cap off
 *     (--set events_per_group=0) so that the database really holds every event sent and no
 *     background deletion runs while we measure; or --addr HOST:PORT, a running collector.
 *  2. Query/Status: when events_total (the sum of every group's total) is below --events,
 *     errq-bench (--bench) sends the difference: --prefill D --duration 0 --groups G --zipf S,
 *     as fast as errqd takes it.  Events are stamped with the collector's receive time, so a
 *     fresh fill lies within the last hour.  A reused database whose events are older than an
 *     hour is reported (its "since 1h" window is then partial or empty).  Then we wait until
 *     errqd's queue is empty and its file size stops changing (the WAL checkpoint).
 *  3. The fingerprints: the most frequent group (ListGroups sort=COUNT limit=1, all time) and a
 *     rare one (the smallest total among the 1000 newest groups, ListGroups sort=FIRST_SEEN).
 *  4. Each request: one warm-up call, then --runs runs.  Each run (the warm-up too) opens a fresh
 *     channel and waits until it is connected (timed apart: "connect"), then times the unary
 *     call with CLOCK_MONOTONIC from its start to its status.  Median, p90 (nearest rank), max.
 *  5. With --cli ERRQ: the errq process end to end (posix_spawn to exit, output discarded) for
 *     `errq groups --since 1h -o json`, `errq group FP -o json` (FP: the most frequent group)
 *     and `errq groups --since 1h` with stdout a pseudo-terminal (the table with a sparkline
 *     per row: one GetGroup per row, up to 100): one warm-up run, then --cli-runs runs.
 *  6. A table on stdout (or --json: one object whose keys are unique across its nesting, like
 *     errq-bench's); --markdown FILE also writes the figures as Markdown (scripts/bench-matrix
 *     puts it into docs/benchmarks.md).  The targets, with PASS or FAIL.
 *
 * Only processes started here are ever signalled (errqd, errq-bench, errq), by their pid.
 * ^C (SIGINT) or SIGTERM stops after the current step; errqd is stopped and the temporary
 * directories removed.
 *
 * Exit: 0 every target met, 1 usage, 2 errqd not started, unreachable, or the fill failed,
 * 3 a call or an errq run failed (its figures are missing), 4 measured but a target missed,
 * 130 interrupted. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "errq/v1/query.pb-c.h"
#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define QB_DEFAULT_EVENTS 10000000ULL
#define QB_DEFAULT_GROUPS 50000
#define QB_DEFAULT_ZIPF "1.1"
#define QB_DEFAULT_RUNS 21
#define QB_DEFAULT_CLI_RUNS 11
#define QB_MAX_RUNS 10001
#define QB_DEFAULT_TIMEOUT_MS 120000   /* one call; far above any target, so a slow plan is measured */
#define QB_CONNECT_TIMEOUT_MS 15000
#define QB_WINDOW_NS (3600ULL * ERRQ_NS_PER_SEC)  /* --since 1h */
#define QB_RARE_SCAN 1000              /* newest groups looked at for a rare one */
#define QB_FP_MAX 256
#define QB_MSG_MAX 512
#define QB_PATH_MAX (BENCH_PATH_MAX + 64)
#define QB_PROGRESS_NS (15 * ERRQ_NS_PER_SEC)     /* a line about the fill this often */
#define QB_POLL_MS 50
#define QB_SETTLE_POLL_MS 500          /* after the fill: errqd's queue empty, file size stable */
#define QB_SETTLE_MAX_MS 60000
#define QB_JSON_MAX (256 * 1024)
#define QB_SMALL_FILE_MAX (64 * 1024)  /* errq-bench's JSON, a child's stderr */
#define QB_MAX_ERRQD_ARGS (BENCH_MAX_ERRQD_ARGS - 2)

#define M_LIST_GROUPS "/errq.v1.Query/ListGroups"
#define M_GET_GROUP "/errq.v1.Query/GetGroup"
#define M_LIST_EVENTS "/errq.v1.Query/ListEvents"
#define M_STATUS "/errq.v1.Query/Status"

extern char **environ;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* ---- the requests ---- */

enum qkind { Q_LIST_GROUPS, Q_GET_GROUP, Q_LIST_EVENTS };
enum fpsel { FP_NONE, FP_HOT, FP_RARE };

struct samples {
	double *ms;
	int n;
};

struct stats {
	bool have;
	double median, p90, max, min;
};

struct query {
	const char *name;       /* JSON key, unique */
	const char *label;      /* the request */
	const char *sent_by;    /* the CLI command that sends it */
	enum qkind kind;
	const char *method;
	uint32_t limit;
	Errq__V1__GroupSort sort;
	bool since_1h;
	enum fpsel fp;
	uint32_t histogram_minutes;
	double target_ms;       /* 0: none */
	/* results */
	struct samples call, conn;
	int failures;
	uint64_t rows, bytes;   /* of the last successful run */
	char err[QB_MSG_MAX];   /* the first failure */
};

static struct query queries[] = {
    {.name = "groups_since_1h", .label = "ListGroups {since: now-1h, limit: 100}",
     .sent_by = "errq groups --since 1h", .kind = Q_LIST_GROUPS, .method = M_LIST_GROUPS, .limit = 100,
     .sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_LAST_SEEN, .since_1h = true, .target_ms = 100},
    {.name = "groups_since_1h_by_count", .label = "ListGroups {since: now-1h, limit: 100, sort: COUNT}",
     .sent_by = "errq groups --since 1h --sort count", .kind = Q_LIST_GROUPS, .method = M_LIST_GROUPS,
     .limit = 100, .sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_COUNT, .since_1h = true},
    {.name = "groups_since_1h_limit_50", .label = "ListGroups {since: now-1h, limit: 50}",
     .sent_by = "errq groups --since 1h --limit 50", .kind = Q_LIST_GROUPS, .method = M_LIST_GROUPS, .limit = 50,
     .sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_LAST_SEEN, .since_1h = true},
    {.name = "group_hot", .label = "GetGroup {most frequent group, histogram_minutes: 60}",
     .sent_by = "errq group FP", .kind = Q_GET_GROUP, .method = M_GET_GROUP, .fp = FP_HOT,
     .histogram_minutes = 60, .target_ms = 50},
    {.name = "group_rare", .label = "GetGroup {a rare group, histogram_minutes: 60}", .sent_by = "errq group FP",
     .kind = Q_GET_GROUP, .method = M_GET_GROUP, .fp = FP_RARE, .histogram_minutes = 60, .target_ms = 50},
    {.name = "events_group_hot", .label = "ListEvents {fingerprint: most frequent group, limit: 100}",
     .sent_by = "errq events --group FP", .kind = Q_LIST_EVENTS, .method = M_LIST_EVENTS, .limit = 100,
     .fp = FP_HOT},
    {.name = "events_all", .label = "ListEvents {limit: 100}", .sent_by = "errq events", .kind = Q_LIST_EVENTS,
     .method = M_LIST_EVENTS, .limit = 100},
};
#define N_QUERIES ((int)(sizeof(queries) / sizeof(queries[0])))

/* the errq processes */
struct clirun {
	const char *name;
	const char *label;      /* shown; FP stands for the fingerprint */
	enum fpsel fp;          /* FP_NONE: `errq groups --since 1h` */
	bool tty;               /* stdout a terminal (a table with sparklines), else -o json */
	double target_ms;
	struct samples wall;
	int failures, last_exit;
	char err[QB_MSG_MAX];
};

static struct clirun cliruns[] = {
    {.name = "cli_groups_since_1h", .label = "errq groups --since 1h -o json", .fp = FP_NONE, .target_ms = 100},
    {.name = "cli_group_hot", .label = "errq group FP -o json", .fp = FP_HOT, .target_ms = 50},
    /* what the person on call runs: a table on a terminal, whose sparklines cost one GetGroup
     * per row (up to 100, within the CLI's own budget) */
    {.name = "cli_groups_since_1h_tty", .label = "errq groups --since 1h (terminal)", .fp = FP_NONE, .tty = true,
     .target_ms = 100},
};
#define N_CLIRUNS ((int)(sizeof(cliruns) / sizeof(cliruns[0])))

/* ---- configuration ---- */

struct qcfg {
	const char *errqd, *addr, *db, *bench, *cli;
	const char *zipf;       /* passed to errq-bench as written */
	double zipf_value;
	const char *markdown;
	const char *errqd_args[BENCH_MAX_ERRQD_ARGS];
	int nerrqd_args;
	bool keep, json;
	uint64_t events;
	uint32_t groups;
	int runs, cli_runs;
	long timeout_ms;
};

/* what we learnt about the database */
struct dbinfo {
	uint64_t events_before, events, groups, db_bytes;
	bool filled;
	uint64_t fill_events;
	double fill_seconds, fill_rate;
	char hot_fp[QB_FP_MAX], rare_fp[QB_FP_MAX];
	uint64_t hot_total, rare_total;
	uint64_t hot_first_seen_ns, newest_last_seen_ns;
	bool older_than_window;
	char version[64];
	char db_path[BENCH_PATH_MAX];
};

static void usage(FILE *f)
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
static int parse_flags(struct qcfg *c, int argc, char **argv)
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
		case 'h': usage(stdout); return 2;
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

/* ---- small helpers ---- */

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static double ms_between(uint64_t t0, uint64_t t1)
{
	return (double)(t1 - t0) / 1e6;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static struct stats stats_of(const struct samples *s)
{
	struct stats st = {0};
	if (!s->n)
		return st;
	double *v = malloc((size_t)s->n * sizeof(*v));
	if (!v)
		return st;
	memcpy(v, s->ms, (size_t)s->n * sizeof(*v));
	qsort(v, (size_t)s->n, sizeof(*v), cmp_dbl);
	int n = s->n;
	st.have = true;
	st.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	int r = (9 * n + 9) / 10; /* nearest rank: ceil(0.9 n) */
	st.p90 = v[(r < 1 ? 1 : r) - 1];
	st.min = v[0];
	st.max = v[n - 1];
	free(v);
	return st;
}

static int samples_alloc(struct samples *s, int n)
{
	s->n = 0;
	s->ms = calloc((size_t)n, sizeof(*s->ms));
	return s->ms ? 0 : -1;
}

/* "12 345 678": thousands separated by spaces, like the figures in the issues. */
static const char *thousands(char *buf, size_t sz, uint64_t v)
{
	char raw[32];
	int n = errq_snprintf(raw, sizeof(raw), "%" PRIu64, v);
	size_t o = 0;
	for (int i = 0; i < n && o + 2 < sz; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ' ';
		buf[o++] = raw[i];
	}
	buf[o] = '\0';
	return buf;
}

/* Reads up to QB_SMALL_FILE_MAX bytes of a file; the caller frees.  NULL when unreadable. */
static char *read_small(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = malloc(QB_SMALL_FILE_MAX + 1);
	size_t n = buf ? fread(buf, 1, QB_SMALL_FILE_MAX, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

/* The first line of a file, for a one-line error. */
static void first_line(const char *path, char *out, size_t sz)
{
	char *s = read_small(path);
	out[0] = '\0';
	if (!s)
		return;
	char *p = s;
	while (*p == '\n')
		p++;
	p[strcspn(p, "\n")] = '\0';
	errq_snprintf(out, sz, "%s", p);
	free(s);
}

/* The number after "key": in a JSON text (errq-bench's keys are unique); -1 when absent. */
static double json_number(const char *text, const char *key)
{
	char pat[BENCH_LABEL_MAX];
	errq_snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = text ? strstr(text, pat) : NULL;
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* Removes the files of a flat directory, then the directory. */
static void remove_workdir(const char *dir)
{
	static const char *const files[] = {"fill.json", "fill.err", "cli.err"};
	char path[QB_PATH_MAX];
	for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
		errq_snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
		unlink(path);
	}
	if (rmdir(dir))
		fprintf(stderr, "errq-query-bench: cannot remove '%s': %s\n", dir, strerror(errno));
}

/* ---- child processes (errq-bench, errq) ---- */

/* Starts argv[0] with stdin from /dev/null, stdout to out_path (NULL: /dev/null) and stderr to
 * err_path, default signal dispositions, in our process group (a ^C reaches it too).
 * Returns its pid, or -1 with err set. */
static pid_t spawn_child(const char *const *argv, const char *out_path, const char *err_path, char *err, size_t errsz)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	if (posix_spawn_file_actions_init(&fa)) {
		errq_snprintf(err, errsz, "posix_spawn: out of memory");
		return -1;
	}
	if (posix_spawnattr_init(&attr)) {
		posix_spawn_file_actions_destroy(&fa);
		errq_snprintf(err, errsz, "posix_spawn: out of memory");
		return -1;
	}
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out_path ? out_path : "/dev/null",
					 O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, 0644); /* O_TRUNC: ignored on a tty */
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	sigset_t none, defs;
	sigemptyset(&none);
	sigemptyset(&defs);
	sigaddset(&defs, SIGINT);
	sigaddset(&defs, SIGTERM);
	sigaddset(&defs, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defs);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int e = posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (e) {
		errq_snprintf(err, errsz, "cannot start '%s': %s", argv[0], strerror(e));
		return -1;
	}
	return pid;
}

static int exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* Blocks until pid exits (a signal handler interrupting the wait does not end it). */
static int wait_child(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return exit_code(st);
}

/* ---- gRPC ---- */

/* Waits until ch is READY.  Returns 0, or -1 with err set. */
static int channel_ready(grpc_channel *ch, long timeout_ms, char *err, size_t errsz)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	gpr_timespec deadline = errq_deadline_ms(timeout_ms);
	grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
	while (st != GRPC_CHANNEL_READY && st != GRPC_CHANNEL_SHUTDOWN) {
		grpc_channel_watch_connectivity_state(ch, st, deadline, cq, NULL);
		grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type != GRPC_OP_COMPLETE || !ev.success)
			break; /* the deadline */
		st = grpc_channel_check_connectivity_state(ch, 1);
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	if (st == GRPC_CHANNEL_READY)
		return 0;
	errq_snprintf(err, errsz, "no connection within %ld ms", timeout_ms);
	return -1;
}

/* One call on ch; on success *out is the unpacked answer (free with protobuf_c_message_free_unpacked)
 * and *bytes its size.  Returns 0, or -1 with err set. */
static int call(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp_desc, long timeout_ms, ProtobufCMessage **out, uint64_t *bytes,
		char *err, size_t errsz)
{
	struct errq_unary_result r;
	*out = NULL;
	if (errq_unary_call(ch, method, req, timeout_ms, &r)) {
		errq_snprintf(err, errsz, "%s: %s", method, r.details);
		return -1;
	}
	if (r.status != GRPC_STATUS_OK) {
		errq_snprintf(err, errsz, "%s: %s: %s", method, errq_status_name(r.status), r.details);
		errq_unary_result_free(&r);
		return -1;
	}
	if (!r.has_resp) {
		errq_snprintf(err, errsz, "%s: OK without a message", method);
		return -1;
	}
	*bytes = GRPC_SLICE_LENGTH(r.resp);
	*out = protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
	errq_unary_result_free(&r);
	if (!*out) {
		errq_snprintf(err, errsz, "%s: cannot decode the answer", method);
		return -1;
	}
	return 0;
}

static int status_call(grpc_channel *ch, long timeout_ms, Errq__V1__StatusResponse **out, char *err, size_t errsz)
{
	Errq__V1__StatusRequest req = ERRQ__V1__STATUS_REQUEST__INIT;
	uint64_t bytes;
	return call(ch, M_STATUS, &req.base, &errq__v1__status_response__descriptor, timeout_ms,
		    (ProtobufCMessage **)out, &bytes, err, errsz);
}

/* ---- step 2: fill ---- */

static int fill(const struct qcfg *c, const struct server *sv, const char *addr, const char *workdir,
		grpc_channel *ctl, struct dbinfo *db, char *err, size_t errsz)
{
	uint64_t need = c->events - db->events;
	char n_arg[32], g_arg[32], pid_arg[32], out[QB_PATH_MAX], errf[QB_PATH_MAX];
	errq_snprintf(n_arg, sizeof(n_arg), "%" PRIu64, need);
	errq_snprintf(g_arg, sizeof(g_arg), "%u", c->groups);
	errq_snprintf(out, sizeof(out), "%s/fill.json", workdir);
	errq_snprintf(errf, sizeof(errf), "%s/fill.err", workdir);
	const char *argv[20];
	int k = 0;
	argv[k++] = c->bench;
	argv[k++] = "--addr";
	argv[k++] = addr;
	if (sv->spawned) {
		errq_snprintf(pid_arg, sizeof(pid_arg), "%d", (int)sv->pid);
		argv[k++] = "--pid";
		argv[k++] = pid_arg;
	}
	argv[k++] = "--prefill";
	argv[k++] = n_arg;
	argv[k++] = "--duration";
	argv[k++] = "0";
	argv[k++] = "--groups";
	argv[k++] = g_arg;
	argv[k++] = "--zipf";
	argv[k++] = c->zipf;
	argv[k++] = "--json";
	argv[k] = NULL;

	char nbuf[32];
	fprintf(stderr, "errq-query-bench: filling %s events:", thousands(nbuf, sizeof(nbuf), need));
	for (int i = 0; i < k; i++)
		fprintf(stderr, " %s", argv[i]);
	fprintf(stderr, "\n");
	pid_t pid = spawn_child(argv, out, errf, err, errsz);
	if (pid < 0)
		return -1;
	uint64_t t0 = errq_mono_ns(), next = t0 + QB_PROGRESS_NS, last_n = db->events, last_t = t0;
	int st = 0;
	bool forwarded = false;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			errq_snprintf(err, errsz, "waitpid: %s", strerror(errno));
			return -1;
		}
		if (g_stop && !forwarded) {
			kill(pid, SIGINT); /* errq-bench ends its prefill and waits for the answers */
			forwarded = true;
		}
		uint64_t now = errq_mono_ns();
		if (now >= next) {
			Errq__V1__StatusResponse *s;
			char e2[QB_MSG_MAX];
			if (status_call(ctl, 10000, &s, e2, sizeof(e2)) == 0) {
				fprintf(stderr, "errq-query-bench:   %s events stored (%.0f events/s)\n",
					thousands(nbuf, sizeof(nbuf), s->events_total),
					(double)(s->events_total - last_n) / ((double)(now - last_t) / 1e9));
				last_n = s->events_total;
				last_t = now;
				protobuf_c_message_free_unpacked(&s->base, NULL);
			}
			next = now + QB_PROGRESS_NS;
		}
		msleep(QB_POLL_MS);
	}
	int code = exit_code(st);
	char *js = read_small(out);
	db->filled = true;
	db->fill_events = (uint64_t)(json_number(js, "prefill_events") > 0 ? json_number(js, "prefill_events") : 0);
	db->fill_seconds = json_number(js, "prefill_seconds");
	db->fill_rate = json_number(js, "prefill_events_per_s");
	free(js);
	if (g_stop)
		return -1;
	if (code != 0 && code != 3) {
		char line[QB_MSG_MAX - 64];
		first_line(errf, line, sizeof(line));
		errq_snprintf(err, errsz, "errq-bench exited with status %d%s%s", code, line[0] ? ": " : "", line);
		return -1;
	}
	if (code == 3) /* some events not stored: the count afterwards decides */
		fprintf(stderr, "errq-query-bench: errq-bench reported errors during the fill (exit 3)\n");
	fprintf(stderr, "errq-query-bench: filled %s events in %.1f s (%.0f events/s)\n",
		thousands(nbuf, sizeof(nbuf), db->fill_events), db->fill_seconds, db->fill_rate);
	return 0;
}

/* After the fill: errqd's queue empty and the file size (main + WAL) unchanged for one poll. */
static void settle(grpc_channel *ctl)
{
	uint64_t prev = UINT64_MAX;
	for (int waited = 0; waited < QB_SETTLE_MAX_MS && !g_stop; waited += QB_SETTLE_POLL_MS) {
		Errq__V1__StatusResponse *s;
		char e[QB_MSG_MAX];
		if (status_call(ctl, 10000, &s, e, sizeof(e)))
			return;
		bool quiet = s->ingest_queue_batches == 0 && s->database_bytes == prev;
		prev = s->database_bytes;
		protobuf_c_message_free_unpacked(&s->base, NULL);
		if (quiet)
			return;
		msleep(QB_SETTLE_POLL_MS);
	}
}

/* ---- step 3: the fingerprints ---- */

static int pick_groups(grpc_channel *ctl, long timeout_ms, struct dbinfo *db, char *err, size_t errsz)
{
	Errq__V1__ListGroupsRequest req = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	Errq__V1__ListGroupsResponse *resp;
	uint64_t bytes;
	req.limit = 1;
	req.sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_COUNT;
	if (call(ctl, M_LIST_GROUPS, &req.base, &errq__v1__list_groups_response__descriptor, timeout_ms,
		 (ProtobufCMessage **)&resp, &bytes, err, errsz))
		return -1;
	if (resp->n_groups == 0) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		errq_snprintf(err, errsz, "the collector holds no group");
		return -1;
	}
	errq_snprintf(db->hot_fp, sizeof(db->hot_fp), "%s", resp->groups[0]->fingerprint);
	db->hot_total = resp->groups[0]->total;
	db->hot_first_seen_ns = resp->groups[0]->first_seen_unix_nano;
	protobuf_c_message_free_unpacked(&resp->base, NULL);

	req.limit = QB_RARE_SCAN;
	req.sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_FIRST_SEEN;
	if (call(ctl, M_LIST_GROUPS, &req.base, &errq__v1__list_groups_response__descriptor, timeout_ms,
		 (ProtobufCMessage **)&resp, &bytes, err, errsz))
		return -1;
	const Errq__V1__Group *rare = NULL;
	for (size_t i = 0; i < resp->n_groups; i++)
		if (!rare || resp->groups[i]->total < rare->total)
			rare = resp->groups[i];
	if (rare) {
		errq_snprintf(db->rare_fp, sizeof(db->rare_fp), "%s", rare->fingerprint);
		db->rare_total = rare->total;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);

	req.limit = 1;
	req.sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_LAST_SEEN;
	if (call(ctl, M_LIST_GROUPS, &req.base, &errq__v1__list_groups_response__descriptor, timeout_ms,
		 (ProtobufCMessage **)&resp, &bytes, err, errsz))
		return -1;
	if (resp->n_groups)
		db->newest_last_seen_ns = resp->groups[0]->last_seen_unix_nano;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rare ? 0 : -1;
}

/* ---- step 4: the requests ---- */

static const char *fp_of(const struct dbinfo *db, enum fpsel s)
{
	return s == FP_HOT ? db->hot_fp : s == FP_RARE ? db->rare_fp : "";
}

/* One run of q on a fresh channel: *conn_ms the time to connect, *call_ms the call. */
static int run_query(const char *addr, long timeout_ms, const struct dbinfo *db, struct query *q, double *conn_ms,
		     double *call_ms, char *err, size_t errsz)
{
	grpc_channel *ch = errq_channel_new(addr);
	if (!ch) {
		errq_snprintf(err, errsz, "cannot create a channel to '%s'", addr);
		return -1;
	}
	uint64_t t0 = errq_mono_ns();
	if (channel_ready(ch, QB_CONNECT_TIMEOUT_MS, err, errsz)) {
		grpc_channel_destroy(ch);
		return -1;
	}
	uint64_t t1 = errq_mono_ns();
	*conn_ms = ms_between(t0, t1);

	Errq__V1__ListGroupsRequest lg = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	Errq__V1__GetGroupRequest gg = ERRQ__V1__GET_GROUP_REQUEST__INIT;
	Errq__V1__ListEventsRequest le = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	const ProtobufCMessage *req;
	const ProtobufCMessageDescriptor *rd;
	switch (q->kind) {
	case Q_LIST_GROUPS:
		lg.limit = q->limit;
		lg.sort = q->sort;
		if (q->since_1h)
			lg.since_unix_nano = errq_now_ns() - QB_WINDOW_NS; /* what `--since 1h` sends */
		req = &lg.base;
		rd = &errq__v1__list_groups_response__descriptor;
		break;
	case Q_GET_GROUP:
		gg.fingerprint = (char *)fp_of(db, q->fp);
		gg.histogram_minutes = q->histogram_minutes;
		req = &gg.base;
		rd = &errq__v1__get_group_response__descriptor;
		break;
	default:
		le.limit = q->limit;
		le.fingerprint = (char *)fp_of(db, q->fp);
		req = &le.base;
		rd = &errq__v1__list_events_response__descriptor;
		break;
	}
	ProtobufCMessage *resp;
	uint64_t bytes = 0;
	uint64_t t2 = errq_mono_ns();
	int rc = call(ch, q->method, req, rd, timeout_ms, &resp, &bytes, err, errsz);
	uint64_t t3 = errq_mono_ns();
	*call_ms = ms_between(t2, t3);
	grpc_channel_destroy(ch);
	if (rc)
		return -1;
	q->bytes = bytes;
	switch (q->kind) {
	case Q_LIST_GROUPS: q->rows = ((Errq__V1__ListGroupsResponse *)resp)->n_groups; break;
	case Q_GET_GROUP: q->rows = ((Errq__V1__GetGroupResponse *)resp)->group ? 1 : 0; break;
	default: q->rows = ((Errq__V1__ListEventsResponse *)resp)->n_events; break;
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

static void measure_query(const struct qcfg *c, const char *addr, const struct dbinfo *db, struct query *q)
{
	char err[QB_MSG_MAX];
	double conn, t;
	fprintf(stderr, "errq-query-bench: %s: 1 warm-up + %d runs\n", q->label, c->runs);
	if (run_query(addr, c->timeout_ms, db, q, &conn, &t, err, sizeof(err))) {
		q->failures++;
		errq_snprintf(q->err, sizeof(q->err), "warm-up: %s", err);
	}
	for (int i = 0; i < c->runs && !g_stop; i++) {
		if (run_query(addr, c->timeout_ms, db, q, &conn, &t, err, sizeof(err))) {
			if (!q->failures++)
				errq_snprintf(q->err, sizeof(q->err), "%s", err);
			continue;
		}
		q->call.ms[q->call.n++] = t;
		q->conn.ms[q->conn.n++] = conn;
	}
}

/* ---- step 5: the errq processes ---- */

/* A pseudo-terminal for the runs whose stdout is a terminal: the child opens the slave by its
 * name; a thread reads (and discards) what it writes.  We hold the slave open too, so that the
 * reader blocks between runs instead of seeing EIO; closing it ends the reader. */
#define QB_TTY_ROWS 50
#define QB_TTY_COLS 160

struct pty {
	int master, slave;
	char name[128];
	pthread_t reader;
	bool up;
};

static void *pty_drain(void *arg)
{
	int fd = *(const int *)arg;
	char buf[16384];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		return NULL; /* EIO: every slave descriptor is closed */
	}
}

static int pty_open(struct pty *t, char *err, size_t errsz)
{
	memset(t, 0, sizeof(*t));
	t->master = t->slave = -1;
	t->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (t->master < 0 || grantpt(t->master) || unlockpt(t->master) ||
	    ptsname_r(t->master, t->name, sizeof(t->name))) {
		errq_snprintf(err, errsz, "cannot open a pseudo-terminal: %s", strerror(errno));
		goto fail;
	}
	t->slave = open(t->name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (t->slave < 0) {
		errq_snprintf(err, errsz, "cannot open '%s': %s", t->name, strerror(errno));
		goto fail;
	}
	struct winsize ws = {.ws_row = QB_TTY_ROWS, .ws_col = QB_TTY_COLS};
	ioctl(t->master, TIOCSWINSZ, &ws);
	if (pthread_create(&t->reader, NULL, pty_drain, &t->master)) {
		errq_snprintf(err, errsz, "cannot start a thread");
		goto fail;
	}
	t->up = true;
	return 0;
fail:
	if (t->slave >= 0)
		close(t->slave);
	if (t->master >= 0)
		close(t->master);
	t->master = t->slave = -1;
	return -1;
}

static void pty_close(struct pty *t)
{
	if (!t->up)
		return;
	close(t->slave);
	pthread_join(t->reader, NULL);
	close(t->master);
	t->up = false;
}

static void measure_cli(const struct qcfg *c, const char *addr, const char *workdir, const struct dbinfo *db,
			struct clirun *r)
{
	char errf[QB_PATH_MAX], err[QB_MSG_MAX];
	struct pty tty = {.up = false};
	errq_snprintf(errf, sizeof(errf), "%s/cli.err", workdir);
	if (r->tty && pty_open(&tty, err, sizeof(err))) {
		r->failures++;
		errq_snprintf(r->err, sizeof(r->err), "%s", err);
		return;
	}
	const char *argv[12];
	int k = 0;
	argv[k++] = c->cli;
	if (r->fp == FP_NONE) {
		argv[k++] = "groups";
		argv[k++] = "--since";
		argv[k++] = "1h";
	} else {
		argv[k++] = "group";
		argv[k++] = fp_of(db, r->fp);
	}
	if (!r->tty) {
		argv[k++] = "-o";
		argv[k++] = "json";
	}
	argv[k++] = "--addr";
	argv[k++] = addr;
	argv[k] = NULL;
	fprintf(stderr, "errq-query-bench: %s: 1 warm-up + %d runs\n", r->label, c->cli_runs);
	for (int i = -1; i < c->cli_runs && !g_stop; i++) {
		uint64_t t0 = errq_mono_ns();
		pid_t pid = spawn_child(argv, r->tty ? tty.name : NULL, errf, err, sizeof(err));
		if (pid < 0) {
			r->failures++;
			errq_snprintf(r->err, sizeof(r->err), "%s", err);
			break;
		}
		int code = wait_child(pid);
		uint64_t t1 = errq_mono_ns();
		r->last_exit = code;
		if (code != 0) {
			if (!r->failures++) {
				char line[QB_MSG_MAX - 32];
				first_line(errf, line, sizeof(line));
				errq_snprintf(r->err, sizeof(r->err), "exit %d%s%s", code, line[0] ? ": " : "", line);
			}
			continue;
		}
		if (i >= 0)
			r->wall.ms[r->wall.n++] = ms_between(t0, t1);
	}
	pty_close(&tty);
}

/* ---- step 6: the report ---- */

enum verdict { V_NONE, V_NA, V_PASS, V_FAIL };

static enum verdict verdict_of(double target, const struct stats *s)
{
	if (target <= 0)
		return V_NONE;
	if (!s->have)
		return V_NA;
	return s->median < target ? V_PASS : V_FAIL;
}

static const char *verdict_name(enum verdict v)
{
	return v == V_PASS ? "PASS" : v == V_FAIL ? "FAIL" : v == V_NA ? "n/a" : "";
}

static void print_human(const struct qcfg *c, const struct dbinfo *db)
{
	char a[32], b[32];
	printf("errq-query-bench %s: %s events in %s groups (database %.2f GiB%s%s)\n", ERRQ_VERSION_STRING,
	       thousands(a, sizeof(a), db->events), thousands(b, sizeof(b), db->groups),
	       (double)db->db_bytes / (1024.0 * 1024 * 1024), db->db_path[0] ? ", " : "", db->db_path);
	if (db->filled)
		printf("  fill        %s events by errq-bench --groups %u --zipf %s in %.1f s (%.0f events/s)\n",
		       thousands(a, sizeof(a), db->fill_events), c->groups, c->zipf, db->fill_seconds, db->fill_rate);
	else
		printf("  fill        none: the database already held %s events (>= --events)\n",
		       thousands(a, sizeof(a), db->events_before));
	printf("  hot group   %s (total %s)\n", db->hot_fp, thousands(a, sizeof(a), db->hot_total));
	printf("  rare group  %s (total %s)\n", db->rare_fp, thousands(a, sizeof(a), db->rare_total));
	if (db->older_than_window)
		printf("  NOTE        the database holds events older than an hour: the since-1h window covers only part of it\n");
	printf("  method      each request: 1 warm-up call, then %d calls, each on a fresh connection (connected\n"
	       "              first; \"connect\" is that time, not included); CLOCK_MONOTONIC from the call's start\n"
	       "              to its status.  ms: median, p90 (nearest rank), max.\n\n",
	       c->runs);
	printf("%-58s %5s %8s %9s %9s %9s %8s %9s %s\n", "request", "rows", "bytes", "median", "p90", "max", "connect",
	       "target", "verdict");
	for (int i = 0; i < N_QUERIES; i++) {
		const struct query *q = &queries[i];
		struct stats s = stats_of(&q->call), cs = stats_of(&q->conn);
		char tgt[16] = "";
		if (q->target_ms > 0)
			errq_snprintf(tgt, sizeof(tgt), "< %.0f ms", q->target_ms);
		if (s.have)
			printf("%-58s %5" PRIu64 " %8" PRIu64 " %9.2f %9.2f %9.2f %8.2f %9s %s\n", q->label, q->rows, q->bytes,
			       s.median, s.p90, s.max, cs.median, tgt, verdict_name(verdict_of(q->target_ms, &s)));
		else
			printf("%-58s %5s %8s %9s %9s %9s %8s %9s %s\n", q->label, "-", "-", "-", "-", "-", "-", tgt,
			       verdict_name(verdict_of(q->target_ms, &s)));
		if (q->failures)
			printf("    %d failed: %s\n", q->failures, q->err);
	}
	if (c->cli) {
		printf("\nthe errq process, spawn to exit (output discarded; \"terminal\": stdout a %dx%d pseudo-terminal),\n"
		       "1 warm-up + %d runs; FP = the hot group\n",
		       QB_TTY_COLS, QB_TTY_ROWS, c->cli_runs);
		for (int i = 0; i < N_CLIRUNS; i++) {
			const struct clirun *r = &cliruns[i];
			struct stats s = stats_of(&r->wall);
			const char *lab = r->label;
			char tgt[16];
			errq_snprintf(tgt, sizeof(tgt), "< %.0f ms", r->target_ms);
			if (s.have)
				printf("%-58s %5s %8s %9.2f %9.2f %9.2f %8s %9s %s\n", lab, "", "", s.median, s.p90, s.max, "",
				       tgt, verdict_name(verdict_of(r->target_ms, &s)));
			else
				printf("%-58s %5s %8s %9s %9s %9s %8s %9s %s\n", lab, "", "", "-", "-", "-", "", tgt,
				       verdict_name(verdict_of(r->target_ms, &s)));
			if (r->failures)
				printf("    %d failed: %s\n", r->failures, r->err);
		}
	} else {
		printf("\n(the errq process: not measured, no --cli)\n");
	}
}

/* JSON in the style of errq-bench's report.c: keys unique across the nesting. */
static void j_key(struct errq_buf *b, const char *prefix, const char *k)
{
	errq_buf_printf(b, "\"%s%s%s\":", prefix ? prefix : "", prefix ? "_" : "", k);
}

static void j_str(struct errq_buf *b, const char *prefix, const char *k, const char *v)
{
	j_key(b, prefix, k);
	if (v)
		errq_buf_add_json_str(b, v, strlen(v));
	else
		errq_buf_addstr(b, "null");
	errq_buf_addstr(b, ",");
}

static void j_u64(struct errq_buf *b, const char *prefix, const char *k, uint64_t v)
{
	j_key(b, prefix, k);
	errq_buf_printf(b, "%" PRIu64 ",", v);
}

static void j_dbl(struct errq_buf *b, const char *prefix, const char *k, double v, int prec)
{
	j_key(b, prefix, k);
	errq_buf_printf(b, "%.*f,", prec, v);
}

static void j_bool(struct errq_buf *b, const char *prefix, const char *k, bool v)
{
	j_key(b, prefix, k);
	errq_buf_addstr(b, v ? "true," : "false,");
}

static void j_close(struct errq_buf *b)
{
	if (b->len && b->p[b->len - 1] == ',')
		b->len--;
	errq_buf_addstr(b, "},");
}

static void j_stats(struct errq_buf *b, const char *prefix, const struct stats *s)
{
	if (!s->have) {
		errq_buf_printf(b, "\"%s_median_ms\":null,\"%s_p90_ms\":null,\"%s_max_ms\":null,", prefix, prefix, prefix);
		return;
	}
	j_dbl(b, prefix, "median_ms", s->median, 3);
	j_dbl(b, prefix, "p90_ms", s->p90, 3);
	j_dbl(b, prefix, "max_ms", s->max, 3);
	j_dbl(b, prefix, "min_ms", s->min, 3);
}

static void print_json(const struct qcfg *c, const struct dbinfo *db, bool all_pass, int targets_met,
		       int targets_total)
{
	struct errq_buf b;
	errq_buf_init(&b, QB_JSON_MAX);
	errq_buf_addstr(&b, "{");
	j_str(&b, NULL, "tool", "errq-query-bench");
	j_str(&b, NULL, "version", ERRQ_VERSION_STRING);
	errq_buf_addstr(&b, "\"config\":{");
	j_u64(&b, NULL, "events_wanted", c->events);
	j_u64(&b, NULL, "groups_wanted", c->groups);
	j_dbl(&b, NULL, "zipf", c->zipf_value, 3);
	j_u64(&b, NULL, "runs", (uint64_t)c->runs);
	j_u64(&b, NULL, "cli_runs", (uint64_t)(c->cli ? c->cli_runs : 0));
	j_bool(&b, NULL, "spawned", c->errqd != NULL);
	j_close(&b);
	errq_buf_addstr(&b, "\"database\":{");
	j_str(&b, NULL, "collector_version", db->version);
	j_u64(&b, NULL, "events_total", db->events);
	j_u64(&b, NULL, "groups_total", db->groups);
	j_u64(&b, NULL, "database_bytes", db->db_bytes);
	j_bool(&b, NULL, "filled", db->filled);
	j_u64(&b, NULL, "events_before", db->events_before);
	j_u64(&b, NULL, "fill_events", db->fill_events);
	j_dbl(&b, NULL, "fill_seconds", db->filled ? db->fill_seconds : 0, 3);
	j_dbl(&b, NULL, "fill_events_per_s", db->filled ? db->fill_rate : 0, 1);
	j_str(&b, NULL, "hot_fingerprint", db->hot_fp);
	j_u64(&b, NULL, "hot_total", db->hot_total);
	j_str(&b, NULL, "rare_fingerprint", db->rare_fp);
	j_u64(&b, NULL, "rare_total", db->rare_total);
	j_bool(&b, NULL, "older_than_window", db->older_than_window);
	j_close(&b);
	errq_buf_addstr(&b, "\"queries\":{");
	for (int i = 0; i < N_QUERIES; i++) {
		const struct query *q = &queries[i];
		struct stats s = stats_of(&q->call), cs = stats_of(&q->conn);
		errq_buf_printf(&b, "\"%s\":{", q->name);
		j_str(&b, q->name, "request", q->label);
		j_str(&b, q->name, "sent_by", q->sent_by);
		j_u64(&b, q->name, "runs", (uint64_t)q->call.n);
		j_u64(&b, q->name, "failures", (uint64_t)q->failures);
		j_str(&b, q->name, "error", q->failures ? q->err : NULL);
		j_u64(&b, q->name, "rows", q->rows);
		j_u64(&b, q->name, "bytes", q->bytes);
		j_stats(&b, q->name, &s);
		j_key(&b, q->name, "connect_median_ms");
		if (cs.have)
			errq_buf_printf(&b, "%.3f,", cs.median);
		else
			errq_buf_addstr(&b, "null,");
		if (q->target_ms > 0) {
			j_dbl(&b, q->name, "target_ms", q->target_ms, 0);
			j_str(&b, q->name, "verdict", verdict_name(verdict_of(q->target_ms, &s)));
		}
		j_close(&b);
	}
	j_close(&b);
	errq_buf_addstr(&b, "\"cli\":{");
	for (int i = 0; c->cli && i < N_CLIRUNS; i++) {
		const struct clirun *r = &cliruns[i];
		struct stats s = stats_of(&r->wall);
		errq_buf_printf(&b, "\"%s\":{", r->name);
		j_str(&b, r->name, "command", r->label);
		j_u64(&b, r->name, "runs", (uint64_t)r->wall.n);
		j_u64(&b, r->name, "failures", (uint64_t)r->failures);
		j_str(&b, r->name, "error", r->failures ? r->err : NULL);
		j_stats(&b, r->name, &s);
		j_dbl(&b, r->name, "target_ms", r->target_ms, 0);
		j_str(&b, r->name, "verdict", verdict_name(verdict_of(r->target_ms, &s)));
		j_close(&b);
	}
	j_close(&b);
	j_u64(&b, NULL, "targets_met", (uint64_t)targets_met);
	j_u64(&b, NULL, "targets_measured", (uint64_t)targets_total);
	j_bool(&b, NULL, "all_targets_met", all_pass);
	if (b.len && b.p[b.len - 1] == ',')
		b.len--;
	errq_buf_addstr(&b, "}");
	puts(b.p ? b.p : "{}");
	errq_buf_free(&b);
}

static void md_cell_stats(FILE *f, const struct stats *s)
{
	if (s->have)
		fprintf(f, " %.1f | %.1f | %.1f |", s->median, s->p90, s->max);
	else
		fprintf(f, " n/a | n/a | n/a |");
}

static int write_markdown(const struct qcfg *c, const struct dbinfo *db, const char *path)
{
	FILE *f = fopen(path, "we");
	if (!f) {
		fprintf(stderr, "errq-query-bench: cannot write '%s': %s\n", path, strerror(errno));
		return -1;
	}
	char a[32], b[32], d[32];
	fprintf(f, "Database: **%s events in %s groups** (errq-bench `--groups %u --zipf %s`), %.2f GiB.\n",
		thousands(a, sizeof(a), db->events), thousands(b, sizeof(b), db->groups), c->groups, c->zipf,
		(double)db->db_bytes / (1024.0 * 1024 * 1024));
	if (db->filled)
		fprintf(f, "Filled with %s events in %.1f s (%s events/s) just before the measurements.\n",
			thousands(a, sizeof(a), db->fill_events), db->fill_seconds,
			thousands(d, sizeof(d), (uint64_t)(db->fill_rate > 0 ? db->fill_rate : 0)));
	else
		fprintf(f, "An existing database that already held %s events.\n",
			thousands(a, sizeof(a), db->events_before));
	if (db->older_than_window)
		fprintf(f, "**Note**: it holds events older than an hour, so the since-1h window covers only part of it.\n");
	fprintf(f, "The most frequent group's total: %s events; the rare group's: %s.\n\n",
		thousands(a, sizeof(a), db->hot_total), thousands(b, sizeof(b), db->rare_total));
	fprintf(f, "Each RPC row: 1 warm-up call, then %d calls, each on a fresh connection (connected first, not\n"
		   "timed); the time runs from the start of the call to its status (`CLOCK_MONOTONIC`, client side).\n",
		c->runs);
	if (c->cli)
		fprintf(f, "The `errq` rows time the whole process, spawn to exit with its output discarded: 1 warm-up\n"
			   "run, then %d runs (FP: the most frequent group).  \"(terminal)\": stdout is a %dx%d\n"
			   "pseudo-terminal, so `errq groups` prints its table with a sparkline per row (one `GetGroup`\n"
			   "per row, up to 100).\n",
			c->cli_runs, QB_TTY_COLS, QB_TTY_ROWS);
	fprintf(f, "\n| request | sent by | rows | median ms | p90 ms | max ms | target | verdict |\n");
	fprintf(f, "|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < N_QUERIES; i++) {
		const struct query *q = &queries[i];
		struct stats s = stats_of(&q->call);
		fprintf(f, "| `%s` | `%s` | %" PRIu64 " |", q->label, q->sent_by, q->rows);
		md_cell_stats(f, &s);
		if (q->target_ms > 0)
			fprintf(f, " < %.0f ms | %s |\n", q->target_ms, verdict_name(verdict_of(q->target_ms, &s)));
		else
			fprintf(f, " | |\n");
	}
	for (int i = 0; c->cli && i < N_CLIRUNS; i++) {
		const struct clirun *r = &cliruns[i];
		struct stats s = stats_of(&r->wall);
		fprintf(f, "| the `%s` process | | |", r->label);
		md_cell_stats(f, &s);
		fprintf(f, " < %.0f ms | %s |\n", r->target_ms, verdict_name(verdict_of(r->target_ms, &s)));
	}
	bool fails = false;
	for (int i = 0; i < N_QUERIES; i++)
		fails |= queries[i].failures > 0;
	for (int i = 0; c->cli && i < N_CLIRUNS; i++)
		fails |= cliruns[i].failures > 0;
	if (fails) {
		fprintf(f, "\nFailures:\n\n");
		for (int i = 0; i < N_QUERIES; i++)
			if (queries[i].failures)
				fprintf(f, "- `%s`: %d failed: %s\n", queries[i].label, queries[i].failures, queries[i].err);
		for (int i = 0; c->cli && i < N_CLIRUNS; i++)
			if (cliruns[i].failures)
				fprintf(f, "- `%s`: %d failed: %s\n", cliruns[i].label, cliruns[i].failures, cliruns[i].err);
	}
	if (!c->cli)
		fprintf(f, "\nThe `errq` process itself was not timed (no `--cli`).\n");
	int rc = fclose(f) ? -1 : 0;
	if (rc)
		fprintf(stderr, "errq-query-bench: cannot write '%s'\n", path);
	return rc;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	struct qcfg cfg = {
	    .events = QB_DEFAULT_EVENTS, .groups = QB_DEFAULT_GROUPS, .zipf = QB_DEFAULT_ZIPF, .zipf_value = 1.1,
	    .runs = QB_DEFAULT_RUNS, .cli_runs = QB_DEFAULT_CLI_RUNS, .timeout_ms = QB_DEFAULT_TIMEOUT_MS,
	};
	struct server sv;
	struct dbinfo db;
	char err[QB_MSG_MAX], workdir[QB_PATH_MAX] = "", addr[BENCH_ADDR_MAX];
	int rc = 1;
	bool grpc_up = false;
	grpc_channel *ctl = NULL;

	memset(&sv, 0, sizeof(sv));
	memset(&db, 0, sizeof(db));
	switch (parse_flags(&cfg, argc, argv)) {
	case 0: break;
	case 2: return 0;
	default: fprintf(stderr, "errq-query-bench: --help for usage\n"); return 1;
	}
	for (int i = 0; i < N_QUERIES; i++)
		if (samples_alloc(&queries[i].call, cfg.runs) || samples_alloc(&queries[i].conn, cfg.runs)) {
			fprintf(stderr, "errq-query-bench: out of memory\n");
			return 1;
		}
	for (int i = 0; i < N_CLIRUNS; i++)
		if (samples_alloc(&cliruns[i].wall, cfg.cli_runs)) {
			fprintf(stderr, "errq-query-bench: out of memory\n");
			return 1;
		}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	errq_snprintf(workdir, sizeof(workdir), "%s/errq-query-bench-XXXXXX", tmp);
	if (!mkdtemp(workdir)) {
		fprintf(stderr, "errq-query-bench: cannot make a temporary directory in '%s': %s\n", tmp,
			strerror(errno));
		return 1;
	}

	/* 1. the collector */
	rc = 2;
	if (cfg.errqd) {
		const char *extra[BENCH_MAX_ERRQD_ARGS];
		int nextra = 0;
		extra[nextra++] = "--set";
		extra[nextra++] = "events_per_group=0";
		for (int i = 0; i < cfg.nerrqd_args; i++)
			extra[nextra++] = cfg.errqd_args[i];
		struct spawn_opts so = {.path = cfg.errqd, .db = cfg.db, .extra = extra, .nextra = nextra, .keep = cfg.keep};
		if (server_spawn(&sv, &so, err, sizeof(err))) {
			fprintf(stderr, "errq-query-bench: %s\n", err);
			goto out;
		}
		errq_snprintf(addr, sizeof(addr), "%s", sv.addr);
		errq_snprintf(db.db_path, sizeof(db.db_path), "%s", sv.db);
		fprintf(stderr, "errq-query-bench: errqd pid %d on %s, database %s\n", (int)sv.pid, addr, sv.db);
	} else {
		errq_snprintf(addr, sizeof(addr), "%s", cfg.addr);
	}
	grpc_init();
	grpc_up = true;
	if (!(ctl = errq_channel_new(addr)) || channel_ready(ctl, QB_CONNECT_TIMEOUT_MS, err, sizeof(err))) {
		fprintf(stderr, "errq-query-bench: cannot reach the collector at %s: %s\n", addr, ctl ? err : "no channel");
		goto out;
	}

	/* 2. fill */
	Errq__V1__StatusResponse *st;
	if (status_call(ctl, 30000, &st, err, sizeof(err))) {
		fprintf(stderr, "errq-query-bench: %s\n", err);
		goto out;
	}
	db.events = db.events_before = st->events_total;
	db.groups = st->groups_total;
	errq_snprintf(db.version, sizeof(db.version), "%s", st->version);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	char nb[32], gb[32];
	fprintf(stderr, "errq-query-bench: the collector holds %s events in %s groups\n",
		thousands(nb, sizeof(nb), db.events), thousands(gb, sizeof(gb), db.groups));
	if (db.events < cfg.events) {
		if (!cfg.bench) {
			fprintf(stderr, "errq-query-bench: it holds fewer than --events %" PRIu64 ": give --bench ERRQ_BENCH to fill it\n",
				cfg.events);
			goto out;
		}
		if (fill(&cfg, &sv, addr, workdir, ctl, &db, err, sizeof(err))) {
			if (!g_stop)
				fprintf(stderr, "errq-query-bench: the fill failed: %s\n", err);
			goto out;
		}
		settle(ctl);
		if (status_call(ctl, 30000, &st, err, sizeof(err))) {
			fprintf(stderr, "errq-query-bench: %s\n", err);
			goto out;
		}
		db.events = st->events_total;
		db.groups = st->groups_total;
		protobuf_c_message_free_unpacked(&st->base, NULL);
		if (db.events < cfg.events) {
			fprintf(stderr, "errq-query-bench: after the fill the collector holds %" PRIu64 " events, fewer than %" PRIu64 "\n",
				db.events, cfg.events);
			goto out;
		}
	}
	if (g_stop)
		goto out;

	/* 3. the groups */
	if (pick_groups(ctl, cfg.timeout_ms, &db, err, sizeof(err))) {
		fprintf(stderr, "errq-query-bench: choosing the groups: %s\n", err);
		goto out;
	}
	uint64_t now = errq_now_ns();
	db.older_than_window = db.hot_first_seen_ns && db.hot_first_seen_ns < now - QB_WINDOW_NS;
	if (db.newest_last_seen_ns && db.newest_last_seen_ns < now - QB_WINDOW_NS)
		fprintf(stderr, "errq-query-bench: WARNING: no event in the last hour: the since-1h queries find nothing; "
				"refill (a fresh --db)\n");
	else if (db.older_than_window)
		fprintf(stderr, "errq-query-bench: note: the database holds events older than an hour\n");
	fprintf(stderr, "errq-query-bench: hot group %s (total %" PRIu64 "), rare group %s (total %" PRIu64 ")\n",
		db.hot_fp, db.hot_total, db.rare_fp, db.rare_total);

	/* 4. the requests */
	rc = 0;
	for (int i = 0; i < N_QUERIES && !g_stop; i++)
		measure_query(&cfg, addr, &db, &queries[i]);
	/* the database size after the warm-up (the WAL may have been checkpointed meanwhile) */
	if (status_call(ctl, 30000, &st, err, sizeof(err)) == 0) {
		db.db_bytes = st->database_bytes;
		protobuf_c_message_free_unpacked(&st->base, NULL);
	}
	grpc_channel_destroy(ctl);
	ctl = NULL;

	/* 5. the errq processes: our own channels are closed, gRPC stays initialized (idle) */
	for (int i = 0; cfg.cli && i < N_CLIRUNS && !g_stop; i++)
		measure_cli(&cfg, addr, workdir, &db, &cliruns[i]);
	if (g_stop) {
		fprintf(stderr, "errq-query-bench: interrupted\n");
		rc = 130;
		goto out;
	}

	/* 6. the report */
	int met = 0, measured = 0;
	bool errors = false;
	for (int i = 0; i < N_QUERIES; i++) {
		struct stats s = stats_of(&queries[i].call);
		enum verdict v = verdict_of(queries[i].target_ms, &s);
		measured += v == V_PASS || v == V_FAIL;
		met += v == V_PASS;
		errors |= queries[i].failures > 0;
	}
	for (int i = 0; cfg.cli && i < N_CLIRUNS; i++) {
		struct stats s = stats_of(&cliruns[i].wall);
		enum verdict v = verdict_of(cliruns[i].target_ms, &s);
		measured += v == V_PASS || v == V_FAIL;
		met += v == V_PASS;
		errors |= cliruns[i].failures > 0;
	}
	bool all = measured > 0 && met == measured;
	if (cfg.json)
		print_json(&cfg, &db, all, met, measured);
	else {
		print_human(&cfg, &db);
		printf("\ntargets: %d of %d met%s\n", met, measured, errors ? " (some measurements failed: see above)" : "");
	}
	fflush(stdout);
	if (cfg.markdown && write_markdown(&cfg, &db, cfg.markdown))
		errors = true;
	rc = errors ? 3 : all ? 0 : 4;
out:
	if (g_stop && rc != 130) {
		fprintf(stderr, "errq-query-bench: interrupted\n");
		rc = 130;
	}
	if (ctl)
		grpc_channel_destroy(ctl);
	if (grpc_up)
		grpc_shutdown_blocking();
	if (sv.running || sv.own_dir)
		server_stop(&sv);
	if (workdir[0]) {
		if (rc == 2) {
			char p[QB_PATH_MAX];
			errq_snprintf(p, sizeof(p), "%s/fill.err", workdir);
			char *s = read_small(p);
			if (s && *s)
				fprintf(stderr, "---- errq-bench's stderr ----\n%s", s);
			free(s);
		}
		remove_workdir(workdir);
	}
	for (int i = 0; i < N_QUERIES; i++) {
		free(queries[i].call.ms);
		free(queries[i].conn.ms);
	}
	for (int i = 0; i < N_CLIRUNS; i++)
		free(cliruns[i].wall.ms);
	return rc;
}
