/* errq-bench: the load generator and benchmark driver for errqd (issue 3).
 *
 * Order of things: parse and check the flags; build the payload tables; block SIGINT and
 * SIGTERM (every thread inherits the mask; load_run collects them with sigtimedwait, the
 * first one ends the run early and waits for the answers, the second cancels); start errqd
 * (--spawn) before grpc_init, so that no gRPC thread exists at the fork; connect; prefill;
 * the measured run; grpc_shutdown_blocking; stop errqd; print the report.
 *
 * Exit codes: 0 ok, 1 usage, 2 errqd unreachable or not started, 3 the run had errors
 * (non-OK statuses, rejected or duplicate events, unanswered batches). */
#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: errq-bench (--addr HOST:PORT [--pid PID] | --spawn ERRQD [--db PATH]\n"
		"                   [--durability normal|full] [--storage sqlite|none] [--errqd-arg X]... [--keep])\n"
		"                  [--streams N] [--connections N] [--threads N]\n"
		"                  [--events N | --duration D] [--warmup D] [--prefill N]\n"
		"                  [--batch N] [--inflight N] [--event-size BYTES] [--groups N] [--zipf S]\n"
		"                  [--rate EVENTS_PER_S] [--ids ordered|random] [--seed N] [--storm] [--json]\n"
		"       errq-bench --selftest --spawn ERRQD\n"
		"\n"
		"Streams ReportRequests to an errq collector over the gRPC C core and prints the\n"
		"acknowledged events/s, answer latency, errors, and errqd's CPU per event and peak RSS.\n"
		"\n"
		"Target:\n"
		"  --addr HOST:PORT      a running collector; with --pid PID its CPU and memory are read\n"
		"                        from /proc\n"
		"  --spawn ERRQD         start this errqd on 127.0.0.1:0 with a temporary database (or\n"
		"                        --db PATH, kept), stop it at the end; --durability, --storage and\n"
		"                        each --errqd-arg are passed on; --keep keeps its directory and log\n"
		"Load (defaults in brackets):\n"
		"  --streams N           concurrent Report streams [16]\n"
		"  --connections N       channels (TCP connections) the streams are spread over [min(streams, 4)]\n"
		"  --threads N           client threads, one completion queue each [2]\n"
		"  --events N            send N events in all, then stop; or\n"
		"  --duration D          measure for D (10s, 500ms, 2m) [10s]; 0 with --prefill: prefill only\n"
		"  --warmup D            send for D before measuring (duration mode) [0s]\n"
		"  --prefill N           first send N events as fast as possible, wait for every answer,\n"
		"                        report that separately, then measure [0]\n"
		"  --batch N             events per ReportRequest [100]\n"
		"  --inflight N          batches per stream sent and awaiting their answer [4]\n"
		"  --event-size BYTES    encoded size of one TaskFailure; the message is padded [300]\n"
		"  --groups N            distinct (service, error_type) groups [50000]\n"
		"  --zipf S              group popularity follows Zipf(S); 0 is uniform [1.1]\n"
		"  --storm               a storm of unique messages instead of --groups: every event from\n"
		"                        one service (bench-storm), without frames, with a message of\n"
		"                        made-up words no normalizer collapses: each one a new fingerprint\n"
		"  --rate R              open loop: R events/s in all, on a schedule; latency runs from the\n"
		"                        scheduled time (no coordinated omission) [0: closed loop]\n"
		"  --ids ordered|random  time-ordered UUIDv7-style ids, or 16 random bytes [ordered]\n"
		"  --seed N              seeds the group sampler (ids are always fresh) [1]\n"
		"Output:\n"
		"  --json                one JSON object instead of the table\n"
		"  --selftest            check the encoder, sampler and histogram, then run short sessions\n"
		"                        against --spawn ERRQD; exit 0 when every check passes\n"
		"\n"
		"Exit: 0 ok, 1 usage, 2 errqd unreachable or not started, 3 the run had errors.\n");
}

static int bad(const char *flag, const char *v, const char *why)
{
	fprintf(stderr, "errq-bench: %s '%s': %s\n", flag, v, why);
	return -1;
}

static int parse_i64(const char *flag, const char *v, long long lo, long long hi, long long *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi) {
		char why[BENCH_LABEL_MAX];
		errq_snprintf(why, sizeof(why), "expected an integer in [%lld, %lld]", lo, hi);
		return bad(flag, v, why);
	}
	*out = n;
	return 0;
}

static int parse_int(const char *flag, const char *v, int lo, int hi, int *out)
{
	long long n;
	if (parse_i64(flag, v, lo, hi, &n))
		return -1;
	*out = (int)n;
	return 0;
}

static int parse_dbl(const char *flag, const char *v, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || !(d >= lo && d <= hi)) {
		char why[BENCH_LABEL_MAX];
		errq_snprintf(why, sizeof(why), "expected a number in [%g, %g]", lo, hi);
		return bad(flag, v, why);
	}
	*out = d;
	return 0;
}

/* "10s", "500ms", "2m", or a bare number of seconds. */
static int parse_dur(const char *flag, const char *v, uint64_t *ns)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (!errno && end != v && !*end && n <= 86400) {
		*ns = (uint64_t)n * ERRQ_NS_PER_SEC;
		return 0;
	}
	if (errq_parse_duration(v, ns) || *ns > 86400 * ERRQ_NS_PER_SEC)
		return bad(flag, v, "expected a duration up to a day, like 10s, 500ms, 2m");
	return 0;
}

static int parse_choice(const char *flag, const char *v, const char *a, const char *b)
{
	if (strcmp(v, a) == 0)
		return 0;
	if (strcmp(v, b) == 0)
		return 1;
	char why[BENCH_LABEL_MAX];
	errq_snprintf(why, sizeof(why), "expected %s or %s", a, b);
	return bad(flag, v, why) * 2; /* -2 */
}

/* Returns 0 to go on, 1 for a usage error, 2 after --help. */
static int parse_flags(struct bench_cfg *c, int argc, char **argv)
{
	enum { O_ADDR = 256, O_PID, O_SPAWN, O_DB, O_DUR, O_STORAGE, O_EARG, O_KEEP, O_STREAMS, O_CONNS,
	       O_THREADS, O_EVENTS, O_DURATION, O_WARMUP, O_PREFILL, O_BATCH, O_INFLIGHT, O_ESIZE, O_GROUPS,
	       O_ZIPF, O_RATE, O_IDS, O_SEED, O_JSON, O_SELFTEST, O_STORM };
	static const struct option longopts[] = {
	    {"addr", required_argument, NULL, O_ADDR},
	    {"pid", required_argument, NULL, O_PID},
	    {"spawn", required_argument, NULL, O_SPAWN},
	    {"db", required_argument, NULL, O_DB},
	    {"durability", required_argument, NULL, O_DUR},
	    {"storage", required_argument, NULL, O_STORAGE},
	    {"errqd-arg", required_argument, NULL, O_EARG},
	    {"keep", no_argument, NULL, O_KEEP},
	    {"streams", required_argument, NULL, O_STREAMS},
	    {"connections", required_argument, NULL, O_CONNS},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"events", required_argument, NULL, O_EVENTS},
	    {"duration", required_argument, NULL, O_DURATION},
	    {"warmup", required_argument, NULL, O_WARMUP},
	    {"prefill", required_argument, NULL, O_PREFILL},
	    {"batch", required_argument, NULL, O_BATCH},
	    {"inflight", required_argument, NULL, O_INFLIGHT},
	    {"event-size", required_argument, NULL, O_ESIZE},
	    {"groups", required_argument, NULL, O_GROUPS},
	    {"zipf", required_argument, NULL, O_ZIPF},
	    {"rate", required_argument, NULL, O_RATE},
	    {"ids", required_argument, NULL, O_IDS},
	    {"seed", required_argument, NULL, O_SEED},
	    {"json", no_argument, NULL, O_JSON},
	    {"selftest", no_argument, NULL, O_SELFTEST},
	    {"storm", no_argument, NULL, O_STORM},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long long n;
	int opt, k, rc = 0;
	bool have_events = false, have_duration = false, have_groups = false;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		const char *v = optarg;
		switch (opt) {
		case 'h': usage(stdout); return 2;
		case O_ADDR:
			if (strlen(v) >= sizeof(c->addr) || !strrchr(v, ':'))
				rc |= bad("--addr", v, "expected HOST:PORT");
			else
				errq_snprintf(c->addr, sizeof(c->addr), "%s", v);
			break;
		case O_PID:
			if (parse_i64("--pid", v, 1, INT_MAX, &n) == 0)
				c->pid = (pid_t)n;
			else
				rc = -1;
			break;
		case O_SPAWN: c->spawn.path = v; break;
		case O_DB: c->spawn.db = v; break;
		case O_DUR:
			if (parse_choice("--durability", v, "normal", "full") < 0)
				rc = -1;
			c->spawn.durability = v;
			break;
		case O_STORAGE:
			if (parse_choice("--storage", v, "sqlite", "none") < 0)
				rc = -1;
			c->spawn.storage = v;
			break;
		case O_EARG:
			if (c->spawn.nextra == BENCH_MAX_ERRQD_ARGS)
				rc |= bad("--errqd-arg", v, "too many");
			else
				c->errqd_args[c->spawn.nextra++] = v;
			break;
		case O_KEEP: c->spawn.keep = true; break;
		case O_STREAMS: rc |= parse_int("--streams", v, 1, BENCH_MAX_STREAMS, &c->streams); break;
		case O_CONNS: rc |= parse_int("--connections", v, 1, BENCH_MAX_CONNECTIONS, &c->connections); break;
		case O_THREADS: rc |= parse_int("--threads", v, 1, BENCH_MAX_THREADS, &c->threads); break;
		case O_EVENTS:
			if (parse_i64("--events", v, 1, LLONG_MAX / 2, &n) == 0)
				c->events = (uint64_t)n;
			else
				rc = -1;
			have_events = true;
			break;
		case O_DURATION:
			rc |= parse_dur("--duration", v, &c->duration_ns);
			have_duration = true;
			break;
		case O_WARMUP: rc |= parse_dur("--warmup", v, &c->warmup_ns); break;
		case O_PREFILL:
			if (parse_i64("--prefill", v, 0, LLONG_MAX / 2, &n) == 0)
				c->prefill = (uint64_t)n;
			else
				rc = -1;
			break;
		case O_BATCH: rc |= parse_int("--batch", v, 1, BENCH_MAX_BATCH, &c->batch); break;
		case O_INFLIGHT: rc |= parse_int("--inflight", v, 1, BENCH_MAX_INFLIGHT, &c->inflight); break;
		case O_ESIZE: rc |= parse_int("--event-size", v, 1, BENCH_MAX_EVENT_SIZE, &c->event_size); break;
		case O_GROUPS:
			if (parse_i64("--groups", v, 1, BENCH_MAX_GROUPS, &n) == 0)
				c->groups = (uint32_t)n;
			else
				rc = -1;
			have_groups = true;
			break;
		case O_ZIPF:
			rc |= parse_dbl("--zipf", v, 0, 100, &c->zipf);
			have_groups = true;
			break;
		case O_RATE: rc |= parse_dbl("--rate", v, 0, 1e9, &c->rate); break;
		case O_IDS:
			k = parse_choice("--ids", v, "ordered", "random");
			if (k < 0)
				rc = -1;
			else
				c->ids = k ? BENCH_IDS_RANDOM : BENCH_IDS_ORDERED;
			break;
		case O_SEED:
			if (parse_i64("--seed", v, 0, LLONG_MAX, &n) == 0)
				c->seed = (uint64_t)n;
			else
				rc = -1;
			break;
		case O_JSON: c->json = true; break;
		case O_SELFTEST: c->selftest = true; break;
		case O_STORM: c->storm = true; break;
		default: return 1;
		}
	}
	if (rc)
		return 1;
	if (optind < argc) {
		fprintf(stderr, "errq-bench: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	c->spawn.extra = c->errqd_args;
	if (c->selftest) {
		if (!c->spawn.path) {
			fprintf(stderr, "errq-bench: --selftest needs --spawn PATH_TO_ERRQD\n");
			return 1;
		}
		return 0;
	}
	if (!c->spawn.path == !c->addr[0]) {
		fprintf(stderr, "errq-bench: give exactly one of --addr HOST:PORT and --spawn ERRQD\n");
		return 1;
	}
	if (c->pid && c->spawn.path) {
		fprintf(stderr, "errq-bench: --pid is for --addr; with --spawn the pid is known\n");
		return 1;
	}
	if (!c->spawn.path &&
	    (c->spawn.db || c->spawn.durability || c->spawn.storage || c->spawn.nextra || c->spawn.keep)) {
		fprintf(stderr, "errq-bench: --db, --durability, --storage, --errqd-arg and --keep need --spawn\n");
		return 1;
	}
	if (c->storm && have_groups) {
		fprintf(stderr, "errq-bench: --storm makes every event a new group: no --groups or --zipf\n");
		return 1;
	}
	if (have_events && have_duration) {
		fprintf(stderr, "errq-bench: give --events or --duration, not both\n");
		return 1;
	}
	if (have_events && c->warmup_ns) {
		fprintf(stderr, "errq-bench: --warmup is for --duration runs\n");
		return 1;
	}
	if (have_duration && c->duration_ns == 0 && c->prefill == 0) {
		fprintf(stderr, "errq-bench: --duration 0 only makes sense with --prefill\n");
		return 1;
	}
	if (c->connections == 0)
		c->connections = c->streams < 4 ? c->streams : 4;
	if (c->connections > c->streams) {
		fprintf(stderr, "errq-bench: --connections %d is more than --streams %d\n", c->connections, c->streams);
		return 1;
	}
	if (c->rate > 0 && c->rate < 0.001) {
		fprintf(stderr, "errq-bench: --rate below 0.001 events/s\n");
		return 1;
	}
	return 0;
}

static void cfg_defaults(struct bench_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->streams = 16;
	c->threads = 2;
	c->duration_ns = 10 * ERRQ_NS_PER_SEC;
	c->batch = 100;
	c->inflight = 4;
	c->event_size = 300;
	c->groups = 50000;
	c->zipf = 1.1;
	c->ids = BENCH_IDS_ORDERED;
	c->seed = 1;
}

int bench_session(const char *addr, int connections, struct load_cfg *lc, struct load_result *r, char *err,
		  size_t errsz)
{
	int rc = -1;
	grpc_channel **chans = calloc((size_t)connections, sizeof(*chans));
	if (!chans) {
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (int i = 0; i < connections; i++)
		if (!(chans[i] = load_channel_new(addr, i))) {
			errq_snprintf(err, errsz, "cannot create a channel to '%s'", addr);
			goto out;
		}
	if (load_connect(chans, connections, err, errsz)) {
		rc = -2;
		goto out;
	}
	lc->chans = chans;
	lc->nchans = connections;
	rc = load_run(lc, r, err, errsz);
	lc->chans = NULL;
	lc->nchans = 0;
out:
	for (int i = 0; i < connections; i++)
		if (chans[i])
			grpc_channel_destroy(chans[i]);
	free(chans);
	return rc;
}

int main(int argc, char **argv)
{
	struct bench_cfg cfg;
	struct payload pl;
	struct server sv;
	struct load_result pre, run;
	char err[BENCH_MSG_MAX];
	int rc = 1, src;
	bool have_pre = false, have_run = false;

	cfg_defaults(&cfg);
	memset(&pl, 0, sizeof(pl));
	memset(&sv, 0, sizeof(sv));
	memset(&pre, 0, sizeof(pre));
	memset(&run, 0, sizeof(run));
	switch (parse_flags(&cfg, argc, argv)) {
	case 0: break;
	case 2: return 0;
	default: fprintf(stderr, "errq-bench: --help for usage\n"); return 1;
	}
	if (cfg.selftest)
		return selftest_main(&cfg);
	if (cfg.storm ? payload_init_storm(&pl, cfg.event_size, err, sizeof(err))
		      : payload_init(&pl, cfg.groups, cfg.zipf, cfg.event_size, err, sizeof(err))) {
		fprintf(stderr, "errq-bench: %s\n", err);
		return 1;
	}
	if (payload_batch_max(&pl, cfg.batch) > BENCH_MAX_MESSAGE) {
		fprintf(stderr, "errq-bench: --batch %d of %zu-byte events exceeds errqd's %u-byte message limit\n",
			cfg.batch, pl.event_len, BENCH_MAX_MESSAGE);
		goto out;
	}

	sigset_t sigs;
	load_block_signals(&sigs);

	rc = 2;
	if (cfg.spawn.path) {
		if (server_spawn(&sv, &cfg.spawn, err, sizeof(err))) {
			fprintf(stderr, "errq-bench: %s\n", err);
			goto out;
		}
	} else {
		errq_snprintf(sv.addr, sizeof(sv.addr), "%s", cfg.addr);
		sv.pid = cfg.pid;
	}

	grpc_init();
	struct load_cfg lc = {
	    .streams = cfg.streams, .threads = cfg.threads, .batch = cfg.batch, .inflight = cfg.inflight,
	    .ids = cfg.ids, .seed = cfg.seed, .pl = &pl, .server_pid = sv.pid, .sigs = &sigs,
	};
	src = 0;
	if (cfg.prefill) {
		struct load_cfg pc = lc; /* as fast as possible */
		pc.events = cfg.prefill;
		pc.batch = cfg.batch < 100 ? 100 : cfg.batch;
		if (payload_batch_max(&pl, pc.batch) > BENCH_MAX_MESSAGE)
			pc.batch = cfg.batch;
		pc.inflight = cfg.inflight < 4 ? 4 : cfg.inflight;
		pc.seed = cfg.seed + 1000003;
		if (!cfg.json)
			fprintf(stderr, "errq-bench: prefilling %llu events\n", (unsigned long long)cfg.prefill);
		src = bench_session(sv.addr, cfg.connections, &pc, &pre, err, sizeof(err));
		have_pre = src == 0;
		if (have_pre && pre.interrupted) { /* ^C during the prefill ends everything */
			cfg.duration_ns = 0;
			cfg.events = 0;
		}
	}
	if (src == 0 && (cfg.events || cfg.duration_ns)) {
		lc.events = cfg.events;
		lc.duration_ns = cfg.duration_ns;
		lc.warmup_ns = cfg.warmup_ns;
		lc.rate = cfg.rate;
		src = bench_session(sv.addr, cfg.connections, &lc, &run, err, sizeof(err));
		have_run = src == 0;
	}
	grpc_shutdown_blocking();
	if (sv.running && ((have_pre && load_errors(&pre)) || (have_run && load_errors(&run)))) {
		server_log_tail(&sv, 10); /* prints nothing when errqd logged nothing */
	}
	server_stop(&sv);
	if (src) {
		fprintf(stderr, "errq-bench: %s\n", err);
		rc = src == -2 ? 2 : 1;
		goto out;
	}
	struct report rp = {.cfg = &cfg, .pl = &pl, .sv = &sv, .prefill = have_pre ? &pre : NULL,
			    .prefill_seconds = pre.seconds, .run = have_run ? &run : NULL};
	if (cfg.json)
		report_json(&rp);
	else
		report_human(&rp);
	fflush(stdout);
	rc = (have_pre && load_errors(&pre)) || (have_run && load_errors(&run)) ? 3 : 0;
out:
	if (sv.running)
		server_stop(&sv);
	load_result_free(&pre);
	load_result_free(&run);
	payload_free(&pl);
	return rc;
}
