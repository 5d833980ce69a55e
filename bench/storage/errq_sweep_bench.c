/* errq-sweep-bench: the per-group cap's sweep through the storage API alone, so its cost can
 * be counted exactly (valgrind --tool=callgrind --toggle-collect=store_maintain) and timed
 * without gRPC, clients or the writer's pacing in the way.
 *
 *   errq-sweep-bench [--events N] [--groups G] [--cap C] [--max-rows M] [--extra BYTES] [--db PATH]
 *
 * Fills a new database with N events spread round-robin over G groups (each with an opaque
 * blob of BYTES, like a stack), writes the aggregates, then runs store_maintain() with the cap
 * until the sweep has nothing left, and prints one JSON line: rows deleted, steps, the sweep's
 * wall time and rows/s, and whether every group ended at min(its events, cap).  Exit 0 when
 * the result is right, 1 when not, 2 on a usage or storage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbench.h"
#include "storage.h"
#include "errq_time.h"

struct flags {
	long events, groups, cap, max_rows, extra;
	const char *db;
};

static int usage(void)
{
	fprintf(stderr, "usage: errq-sweep-bench [--events N] [--groups G] [--cap C] [--max-rows M] [--extra BYTES]"
			" [--db PATH]\n");
	return 2;
}

static int parse(int argc, char **argv, struct flags *f)
{
	static const char *const names[] = {"--events", "--groups", "--cap", "--max-rows", "--extra"};
	long *const dst[] = {&f->events, &f->groups, &f->cap, &f->max_rows, &f->extra};
	if (sbench_parse(argc, argv, names, dst, 5, &f->db))
		return -1;
	return f->events && f->groups && f->cap ? 0 : -1;
}

static int fill(struct store *s, const struct flags *f, uint64_t t0)
{
	char *extra = malloc((size_t)f->extra + 1);
	if (!extra)
		return -1;
	for (long i = 0; i < f->extra; i++)
		extra[i] = (char)('a' + i % 23);
	int rc = 0;
	for (long k = 0; k < f->events && !rc; k += 1000) {
		rc = store_txn_begin(s);
		for (long j = k; j < k + 1000 && j < f->events && !rc; j++) {
			uint8_t id[16] = {1};
			char fp[32];
			for (int b = 0; b < 8; b++)
				id[8 + b] = (uint8_t)((uint64_t)j >> (56 - 8 * b));
			snprintf(fp, sizeof(fp), "g%ld", j % f->groups);
			struct store_event e = {.event_id = id, .time_ns = t0 + (uint64_t)j, .received_ns = t0 + (uint64_t)j,
						.service = "checkout", .error_type = "TimeoutError", .message = "took too long",
						.fingerprint = fp, .grouping_version = 1, .attempt = 1, .extra = extra,
						.extra_len = (size_t)f->extra};
			rc = store_txn_add_event(s, &e) < 0;
		}
		if (!rc)
			rc = store_txn_commit(s);
	}
	free(extra);
	return rc || store_agg_flush(s) ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct flags f = {.events = 200000, .groups = 200, .cap = 500, .max_rows = 0, .extra = 600};
	char tmp[] = "/tmp/errq-sweep-XXXXXX", path[64];
	if (parse(argc, argv, &f))
		return usage();
	if (!f.db) {
		if (sbench_tmpdb(tmp, path, sizeof(path)))
			return 2;
		f.db = path;
	}
	char err[256];
	struct store *s = NULL;
	struct store_opts o = {.path = f.db};
	if (store_open(&s, &o, err, sizeof(err))) {
		fprintf(stderr, "errq-sweep-bench: %s\n", err);
		return 2;
	}
	const uint64_t t0 = 1700000000000000000ULL;
	if (fill(s, &f, t0)) {
		fprintf(stderr, "errq-sweep-bench: filling: %s\n", store_errmsg(s));
		store_close(s);
		return 2;
	}
	struct store_maint_opts mo = {.now_ns = t0 + 1000000000ULL, .per_group_cap = (uint32_t)f.cap};
#ifdef STORE_MAINT_MAX_ROWS
	mo.max_rows = (uint32_t)f.max_rows;
#endif
	struct store_write_stats ws;
	long steps = 0;
	bool more = true;
	uint64_t start = errq_mono_ns();
	/* the clock stays put: a pass ends when the sweep has deleted what it found */
	while (more) {
		if (store_maintain(s, &mo, &more)) {
			fprintf(stderr, "errq-sweep-bench: upkeep: %s\n", store_errmsg(s));
			store_close(s);
			return 2;
		}
		steps++;
	}
	uint64_t ns = errq_mono_ns() - start;
	store_get_write_stats(s, &ws);
	store_close(s);
	long per = f.events / f.groups, want = (per > f.cap ? per - f.cap : 0) * f.groups;
	bool ok = (long)ws.events_deleted_cap == want;
	printf("{\"events\": %ld, \"groups\": %ld, \"cap\": %ld, \"max_rows\": %ld, \"deleted\": %llu, \"expected\": %ld,"
	       " \"steps\": %ld, \"sweep_ms\": %.1f, \"rows_per_s\": %.0f, \"ok\": %s}\n",
	       f.events, f.groups, f.cap, f.max_rows, (unsigned long long)ws.events_deleted_cap, want, steps, ns / 1e6,
	       ns ? ws.events_deleted_cap * 1e9 / ns : 0.0, ok ? "true" : "false");
	if (f.db == path)
		sbench_tmpdb_remove(tmp, path);
	return ok ? 0 : 1;
}
