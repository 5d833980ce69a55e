/* qbench_report.c: errq-query-bench, step 6: the report: a table, --json, --markdown, and the
 * verdicts against the targets.  See errq_query_bench.c for the order of things. */
#include "qbench.h"
#include "bench_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

/* ---- step 6: the report ---- */

enum verdict qb_verdict_of(double target, const struct stats *s)
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

void qb_print_human(const struct qcfg *c, const struct dbinfo *db)
{
	char a[32], b[32];
	printf("errq-query-bench %s: %s events in %s groups (database %.2f GiB%s%s)\n", ERRQ_VERSION_STRING,
	       qb_thousands(a, sizeof(a), db->events), qb_thousands(b, sizeof(b), db->groups),
	       (double)db->db_bytes / (1024.0 * 1024 * 1024), db->db_path[0] ? ", " : "", db->db_path);
	if (db->filled)
		printf("  fill        %s events by errq-bench --groups %u --zipf %s in %.1f s (%.0f events/s)\n",
		       qb_thousands(a, sizeof(a), db->fill_events), c->groups, c->zipf, db->fill_seconds, db->fill_rate);
	else
		printf("  fill        none: the database already held %s events (>= --events)\n",
		       qb_thousands(a, sizeof(a), db->events_before));
	printf("  hot group   %s (total %s)\n", db->hot_fp, qb_thousands(a, sizeof(a), db->hot_total));
	printf("  rare group  %s (total %s)\n", db->rare_fp, qb_thousands(a, sizeof(a), db->rare_total));
	if (db->older_than_window)
		printf("  NOTE        the database holds events older than an hour: the since-1h window covers only part of it\n");
	printf("  method      each request: 1 warm-up call, then %d calls, each on a fresh connection (connected\n"
	       "              first; \"connect\" is that time, not included); CLOCK_MONOTONIC from the call's start\n"
	       "              to its status.  ms: median, p90 (nearest rank), max.\n\n",
	       c->runs);
	printf("%-58s %5s %8s %9s %9s %9s %8s %9s %s\n", "request", "rows", "bytes", "median", "p90", "max", "connect",
	       "target", "verdict");
	for (int i = 0; i < qb_n_queries; i++) {
		const struct query *q = &qb_queries[i];
		struct stats s = qb_stats_of(&q->call), cs = qb_stats_of(&q->conn);
		char tgt[16] = "";
		if (q->target_ms > 0)
			errq_snprintf(tgt, sizeof(tgt), "< %.0f ms", q->target_ms);
		if (s.have)
			printf("%-58s %5" PRIu64 " %8" PRIu64 " %9.2f %9.2f %9.2f %8.2f %9s %s\n", q->label, q->rows, q->bytes,
			       s.median, s.p90, s.max, cs.median, tgt, verdict_name(qb_verdict_of(q->target_ms, &s)));
		else
			printf("%-58s %5s %8s %9s %9s %9s %8s %9s %s\n", q->label, "-", "-", "-", "-", "-", "-", tgt,
			       verdict_name(qb_verdict_of(q->target_ms, &s)));
		if (q->failures)
			printf("    %d failed: %s\n", q->failures, q->err);
	}
	if (c->cli) {
		printf("\nthe errq process, spawn to exit (output discarded; \"terminal\": stdout a %dx%d pseudo-terminal),\n"
		       "1 warm-up + %d runs; FP = the hot group\n",
		       QB_TTY_COLS, QB_TTY_ROWS, c->cli_runs);
		for (int i = 0; i < qb_n_cliruns; i++) {
			const struct clirun *r = &qb_cliruns[i];
			struct stats s = qb_stats_of(&r->wall);
			const char *lab = r->label;
			char tgt[16];
			errq_snprintf(tgt, sizeof(tgt), "< %.0f ms", r->target_ms);
			if (s.have)
				printf("%-58s %5s %8s %9.2f %9.2f %9.2f %8s %9s %s\n", lab, "", "", s.median, s.p90, s.max, "",
				       tgt, verdict_name(qb_verdict_of(r->target_ms, &s)));
			else
				printf("%-58s %5s %8s %9s %9s %9s %8s %9s %s\n", lab, "", "", "-", "-", "-", "", tgt,
				       verdict_name(qb_verdict_of(r->target_ms, &s)));
			if (r->failures)
				printf("    %d failed: %s\n", r->failures, r->err);
		}
	} else {
		printf("\n(the errq process: not measured, no --cli)\n");
	}
}

/* JSON in the style of errq-bench's report.c: keys unique across the nesting. */
static void j_stats(json_t *o, const char *prefix, const struct stats *s)
{
	if (!s->have) {
		bj_null(o, prefix, "median_ms");
		bj_null(o, prefix, "p90_ms");
		bj_null(o, prefix, "max_ms");
		return;
	}
	bj_num(o, prefix, "median_ms", s->median, 3);
	bj_num(o, prefix, "p90_ms", s->p90, 3);
	bj_num(o, prefix, "max_ms", s->max, 3);
	bj_num(o, prefix, "min_ms", s->min, 3);
}

void qb_print_json(const struct qcfg *c, const struct dbinfo *db, bool all_pass, int targets_met,
		       int targets_total)
{
	json_t *root = json_object(), *o = root, *group;
	bj_str(o, NULL, "tool", "errq-query-bench");
	bj_str(o, NULL, "version", ERRQ_VERSION_STRING);
	o = bj_obj(root, "config");
	bj_u64(o, NULL, "events_wanted", c->events);
	bj_u64(o, NULL, "groups_wanted", c->groups);
	bj_num(o, NULL, "zipf", c->zipf_value, 3);
	bj_u64(o, NULL, "runs", (uint64_t)c->runs);
	bj_u64(o, NULL, "cli_runs", (uint64_t)(c->cli ? c->cli_runs : 0));
	bj_bool(o, NULL, "spawned", c->errqd != NULL);
	o = bj_obj(root, "database");
	bj_str(o, NULL, "collector_version", db->version);
	bj_u64(o, NULL, "events_total", db->events);
	bj_u64(o, NULL, "groups_total", db->groups);
	bj_u64(o, NULL, "database_bytes", db->db_bytes);
	bj_bool(o, NULL, "filled", db->filled);
	bj_u64(o, NULL, "events_before", db->events_before);
	bj_u64(o, NULL, "fill_events", db->fill_events);
	bj_num(o, NULL, "fill_seconds", db->filled ? db->fill_seconds : 0, 3);
	bj_num(o, NULL, "fill_events_per_s", db->filled ? db->fill_rate : 0, 1);
	bj_str(o, NULL, "hot_fingerprint", db->hot_fp);
	bj_u64(o, NULL, "hot_total", db->hot_total);
	bj_str(o, NULL, "rare_fingerprint", db->rare_fp);
	bj_u64(o, NULL, "rare_total", db->rare_total);
	bj_bool(o, NULL, "older_than_window", db->older_than_window);
	group = bj_obj(root, "queries");
	for (int i = 0; i < qb_n_queries; i++) {
		const struct query *q = &qb_queries[i];
		struct stats s = qb_stats_of(&q->call), cs = qb_stats_of(&q->conn);
		o = bj_obj(group, q->name);
		bj_str(o, q->name, "request", q->label);
		bj_str(o, q->name, "sent_by", q->sent_by);
		bj_u64(o, q->name, "runs", (uint64_t)q->call.n);
		bj_u64(o, q->name, "failures", (uint64_t)q->failures);
		bj_str(o, q->name, "error", q->failures ? q->err : NULL);
		bj_u64(o, q->name, "rows", q->rows);
		bj_u64(o, q->name, "bytes", q->bytes);
		j_stats(o, q->name, &s);
		if (cs.have)
			bj_num(o, q->name, "connect_median_ms", cs.median, 3);
		else
			bj_null(o, q->name, "connect_median_ms");
		if (q->target_ms > 0) {
			bj_num(o, q->name, "target_ms", q->target_ms, 0);
			bj_str(o, q->name, "verdict", verdict_name(qb_verdict_of(q->target_ms, &s)));
		}
	}
	group = bj_obj(root, "cli");
	for (int i = 0; c->cli && i < qb_n_cliruns; i++) {
		const struct clirun *r = &qb_cliruns[i];
		struct stats s = qb_stats_of(&r->wall);
		o = bj_obj(group, r->name);
		bj_str(o, r->name, "command", r->label);
		bj_u64(o, r->name, "runs", (uint64_t)r->wall.n);
		bj_u64(o, r->name, "failures", (uint64_t)r->failures);
		bj_str(o, r->name, "error", r->failures ? r->err : NULL);
		j_stats(o, r->name, &s);
		bj_num(o, r->name, "target_ms", r->target_ms, 0);
		bj_str(o, r->name, "verdict", verdict_name(qb_verdict_of(r->target_ms, &s)));
	}
	o = root;
	bj_u64(o, NULL, "targets_met", (uint64_t)targets_met);
	bj_u64(o, NULL, "targets_measured", (uint64_t)targets_total);
	bj_bool(o, NULL, "all_targets_met", all_pass);
	if (bj_print(root))
		fprintf(stderr, "errq-query-bench: cannot write the JSON report\n");
}

static void md_cell_stats(FILE *f, const struct stats *s)
{
	if (s->have)
		fprintf(f, " %.1f | %.1f | %.1f |", s->median, s->p90, s->max);
	else
		fprintf(f, " n/a | n/a | n/a |");
}

int qb_write_markdown(const struct qcfg *c, const struct dbinfo *db, const char *path)
{
	FILE *f = fopen(path, "we");
	if (!f) {
		fprintf(stderr, "errq-query-bench: cannot write '%s': %s\n", path, strerror(errno));
		return -1;
	}
	char a[32], b[32], d[32];
	fprintf(f, "Database: **%s events in %s groups** (errq-bench `--groups %u --zipf %s`), %.2f GiB.\n",
		qb_thousands(a, sizeof(a), db->events), qb_thousands(b, sizeof(b), db->groups), c->groups, c->zipf,
		(double)db->db_bytes / (1024.0 * 1024 * 1024));
	if (db->filled)
		fprintf(f, "Filled with %s events in %.1f s (%s events/s) just before the measurements.\n",
			qb_thousands(a, sizeof(a), db->fill_events), db->fill_seconds,
			qb_thousands(d, sizeof(d), (uint64_t)(db->fill_rate > 0 ? db->fill_rate : 0)));
	else
		fprintf(f, "An existing database that already held %s events.\n",
			qb_thousands(a, sizeof(a), db->events_before));
	if (db->older_than_window)
		fprintf(f, "**Note**: it holds events older than an hour, so the since-1h window covers only part of it.\n");
	fprintf(f, "The most frequent group's total: %s events; the rare group's: %s.\n\n",
		qb_thousands(a, sizeof(a), db->hot_total), qb_thousands(b, sizeof(b), db->rare_total));
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
	for (int i = 0; i < qb_n_queries; i++) {
		const struct query *q = &qb_queries[i];
		struct stats s = qb_stats_of(&q->call);
		fprintf(f, "| `%s` | `%s` | %" PRIu64 " |", q->label, q->sent_by, q->rows);
		md_cell_stats(f, &s);
		if (q->target_ms > 0)
			fprintf(f, " < %.0f ms | %s |\n", q->target_ms, verdict_name(qb_verdict_of(q->target_ms, &s)));
		else
			fprintf(f, " | |\n");
	}
	for (int i = 0; c->cli && i < qb_n_cliruns; i++) {
		const struct clirun *r = &qb_cliruns[i];
		struct stats s = qb_stats_of(&r->wall);
		fprintf(f, "| the `%s` process | | |", r->label);
		md_cell_stats(f, &s);
		fprintf(f, " < %.0f ms | %s |\n", r->target_ms, verdict_name(qb_verdict_of(r->target_ms, &s)));
	}
	bool fails = false;
	for (int i = 0; i < qb_n_queries; i++)
		fails |= qb_queries[i].failures > 0;
	for (int i = 0; c->cli && i < qb_n_cliruns; i++)
		fails |= qb_cliruns[i].failures > 0;
	if (fails) {
		fprintf(f, "\nFailures:\n\n");
		for (int i = 0; i < qb_n_queries; i++)
			if (qb_queries[i].failures)
				fprintf(f, "- `%s`: %d failed: %s\n", qb_queries[i].label, qb_queries[i].failures, qb_queries[i].err);
		for (int i = 0; c->cli && i < qb_n_cliruns; i++)
			if (qb_cliruns[i].failures)
				fprintf(f, "- `%s`: %d failed: %s\n", qb_cliruns[i].label, qb_cliruns[i].failures, qb_cliruns[i].err);
	}
	if (!c->cli)
		fprintf(f, "\nThe `errq` process itself was not timed (no `--cli`).\n");
	int rc = fclose(f) ? -1 : 0;
	if (rc)
		fprintf(stderr, "errq-query-bench: cannot write '%s'\n", path);
	return rc;
}
