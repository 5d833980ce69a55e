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
#include "qbench.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"


volatile sig_atomic_t qb_stop;

static void on_signal(int sig)
{
	(void)sig;
	qb_stop = 1;
}

struct query qb_queries[] = {
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
const int qb_n_queries = (int)(sizeof(qb_queries) / sizeof(qb_queries[0]));

struct clirun qb_cliruns[] = {
    {.name = "cli_groups_since_1h", .label = "errq groups --since 1h -o json", .fp = FP_NONE, .target_ms = 100},
    {.name = "cli_group_hot", .label = "errq group FP -o json", .fp = FP_HOT, .target_ms = 50},
    /* what the person on call runs: a table on a terminal, whose sparklines cost one GetGroup
     * per row (up to 100, within the CLI's own budget) */
    {.name = "cli_groups_since_1h_tty", .label = "errq groups --since 1h (terminal)", .fp = FP_NONE, .tty = true,
     .target_ms = 100},
};
const int qb_n_cliruns = (int)(sizeof(qb_cliruns) / sizeof(qb_cliruns[0]));

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
	switch (qb_parse_flags(&cfg, argc, argv)) {
	case 0: break;
	case 2: return 0;
	default: fprintf(stderr, "errq-query-bench: --help for usage\n"); return 1;
	}
	for (int i = 0; i < qb_n_queries; i++)
		if (qb_samples_alloc(&qb_queries[i].call, cfg.runs) || qb_samples_alloc(&qb_queries[i].conn, cfg.runs)) {
			fprintf(stderr, "errq-query-bench: out of memory\n");
			return 1;
		}
	for (int i = 0; i < qb_n_cliruns; i++)
		if (qb_samples_alloc(&qb_cliruns[i].wall, cfg.cli_runs)) {
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
	if (!(ctl = errq_channel_new(addr)) || qb_channel_ready(ctl, QB_CONNECT_TIMEOUT_MS, err, sizeof(err))) {
		fprintf(stderr, "errq-query-bench: cannot reach the collector at %s: %s\n", addr, ctl ? err : "no channel");
		goto out;
	}

	/* 2. fill */
	Errq__V1__StatusResponse *st;
	if (qb_status_call(ctl, 30000, &st, err, sizeof(err))) {
		fprintf(stderr, "errq-query-bench: %s\n", err);
		goto out;
	}
	db.events = db.events_before = st->events_total;
	db.groups = st->groups_total;
	errq_snprintf(db.version, sizeof(db.version), "%s", st->version);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	char nb[32], gb[32];
	fprintf(stderr, "errq-query-bench: the collector holds %s events in %s groups\n",
		qb_thousands(nb, sizeof(nb), db.events), qb_thousands(gb, sizeof(gb), db.groups));
	if (db.events < cfg.events) {
		if (!cfg.bench) {
			fprintf(stderr, "errq-query-bench: it holds fewer than --events %" PRIu64 ": give --bench ERRQ_BENCH to fill it\n",
				cfg.events);
			goto out;
		}
		if (qb_fill(&cfg, &sv, addr, workdir, ctl, &db, err, sizeof(err))) {
			if (!qb_stop)
				fprintf(stderr, "errq-query-bench: the fill failed: %s\n", err);
			goto out;
		}
		qb_settle(ctl);
		if (qb_status_call(ctl, 30000, &st, err, sizeof(err))) {
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
	if (qb_stop)
		goto out;

	/* 3. the groups */
	if (qb_pick_groups(ctl, cfg.timeout_ms, &db, err, sizeof(err))) {
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
	for (int i = 0; i < qb_n_queries && !qb_stop; i++)
		qb_measure_query(&cfg, addr, &db, &qb_queries[i]);
	/* the database size after the warm-up (the WAL may have been checkpointed meanwhile) */
	if (qb_status_call(ctl, 30000, &st, err, sizeof(err)) == 0) {
		db.db_bytes = st->database_bytes;
		protobuf_c_message_free_unpacked(&st->base, NULL);
	}
	grpc_channel_destroy(ctl);
	ctl = NULL;

	/* 5. the errq processes: our own channels are closed, gRPC stays initialized (idle) */
	for (int i = 0; cfg.cli && i < qb_n_cliruns && !qb_stop; i++)
		qb_measure_cli(&cfg, addr, workdir, &db, &qb_cliruns[i]);
	if (qb_stop) {
		fprintf(stderr, "errq-query-bench: interrupted\n");
		rc = 130;
		goto out;
	}

	/* 6. the report */
	int met = 0, measured = 0;
	bool errors = false;
	for (int i = 0; i < qb_n_queries; i++) {
		struct stats s = qb_stats_of(&qb_queries[i].call);
		enum verdict v = qb_verdict_of(qb_queries[i].target_ms, &s);
		measured += v == V_PASS || v == V_FAIL;
		met += v == V_PASS;
		errors |= qb_queries[i].failures > 0;
	}
	for (int i = 0; cfg.cli && i < qb_n_cliruns; i++) {
		struct stats s = qb_stats_of(&qb_cliruns[i].wall);
		enum verdict v = qb_verdict_of(qb_cliruns[i].target_ms, &s);
		measured += v == V_PASS || v == V_FAIL;
		met += v == V_PASS;
		errors |= qb_cliruns[i].failures > 0;
	}
	bool all = measured > 0 && met == measured;
	if (cfg.json)
		qb_print_json(&cfg, &db, all, met, measured);
	else {
		qb_print_human(&cfg, &db);
		printf("\ntargets: %d of %d met%s\n", met, measured, errors ? " (some measurements failed: see above)" : "");
	}
	fflush(stdout);
	if (cfg.markdown && qb_write_markdown(&cfg, &db, cfg.markdown))
		errors = true;
	rc = errors ? 3 : all ? 0 : 4;
out:
	if (qb_stop && rc != 130) {
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
			char *s = qb_read_small(p);
			if (s && *s)
				fprintf(stderr, "---- errq-bench's stderr ----\n%s", s);
			free(s);
		}
		qb_remove_workdir(workdir);
	}
	for (int i = 0; i < qb_n_queries; i++) {
		free(qb_queries[i].call.ms);
		free(qb_queries[i].conn.ms);
	}
	for (int i = 0; i < qb_n_cliruns; i++)
		free(qb_cliruns[i].wall.ms);
	return rc;
}
