/* errq-sweep-bench: the per-group cap's sweep through the storage API alone, so its cost can
 * be counted exactly (valgrind --tool=callgrind --toggle-collect=store_maintain) and timed
 * without gRPC, clients or the writer's pacing in the way.
 *
 *   errq-sweep-bench [--events N] [--groups G] [--cap C] [--max-rows M] [--extra BYTES]
 *                    [--zipf S100] [--rounds R] [--round-events B] [--db PATH]
 *
 * Fills a new database with N events spread over G groups (each with an opaque blob of BYTES,
 * like a stack): round-robin, or with --zipf drawn from a Zipf law of exponent S100/100 (rank
 * 1 the most frequent; a fixed seed, so runs repeat), writes the aggregates, then runs
 * store_maintain() with the cap until the sweep has nothing left.  Then R rounds of steady
 * churn: B more events of the same law, the aggregates written, the clock moved past the
 * recheck, the sweep run until it has nothing left (what errqd does under a constant load on
 * a database past the cap).  Prints one JSON line: rows deleted, steps, the sweep's wall time
 * and rows/s, rows the cap's sweep visited (when the storage library counts them), and
 * whether the rows deleted are exactly the events past the cap.  Exit 0 when the result is
 * right, 1 when not, 2 on a usage or storage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>
#include <sys/resource.h>

#include "storage.h"
#include "errq_time.h"

struct flags {
	long events, groups, cap, max_rows, extra, zipf, rounds, round_events;
	const char *db;
};

/* CPU time of the process, user and system (the sweep's wall time includes waits) */
static uint64_t cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ULL +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ULL;
}

/* The group of the next event: round-robin, or a draw from the Zipf table. */
struct draw {
	double *cdf; /* --zipf: cumulative weights of ranks 1..G, normalized */
	uint64_t rng;
	long next;
	long *count; /* events per group */
};

static long draw_group(struct draw *d, const struct flags *f)
{
	long g;
	if (!d->cdf)
		g = d->next++ % f->groups;
	else {
		d->rng ^= d->rng << 13, d->rng ^= d->rng >> 7, d->rng ^= d->rng << 17; /* xorshift64 */
		double u = (double)(d->rng >> 11) / 9007199254740992.0;
		long lo = 0, hi = f->groups - 1;
		while (lo < hi) {
			long mid = (lo + hi) / 2;
			if (d->cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		g = lo;
	}
	d->count[g]++;
	return g;
}

static int usage(void)
{
	fprintf(stderr, "usage: errq-sweep-bench [--events N] [--groups G] [--cap C] [--max-rows M] [--extra BYTES]"
			" [--zipf S100] [--rounds R] [--round-events B] [--db PATH]\n");
	return 2;
}

static int parse(int argc, char **argv, struct flags *f)
{
	for (int i = 1; i < argc; i++) {
		long *dst = !strcmp(argv[i], "--events")     ? &f->events
			    : !strcmp(argv[i], "--groups")   ? &f->groups
			    : !strcmp(argv[i], "--cap")      ? &f->cap
			    : !strcmp(argv[i], "--max-rows") ? &f->max_rows
			    : !strcmp(argv[i], "--extra")    ? &f->extra
			    : !strcmp(argv[i], "--zipf")     ? &f->zipf
			    : !strcmp(argv[i], "--rounds")   ? &f->rounds
			    : !strcmp(argv[i], "--round-events") ? &f->round_events
							     : NULL;
		if (i + 1 >= argc)
			return -1;
		if (!strcmp(argv[i], "--db")) {
			f->db = argv[++i];
			continue;
		}
		if (!dst)
			return -1;
		char *end;
		*dst = strtol(argv[++i], &end, 10);
		if (*end || *dst < 0 || *dst > 100000000)
			return -1;
	}
	return f->events && f->groups && f->cap ? 0 : -1;
}

/* Adds n events from event number first on (ids and times follow the number). */
static int fill(struct store *s, const struct flags *f, struct draw *d, long first, long n, uint64_t t0)
{
	char *extra = malloc((size_t)f->extra + 1);
	if (!extra)
		return -1;
	for (long i = 0; i < f->extra; i++)
		extra[i] = (char)('a' + i % 23);
	int rc = 0;
	for (long k = first; k < first + n && !rc; k += 1000) {
		rc = store_txn_begin(s);
		for (long j = k; j < k + 1000 && j < first + n && !rc; j++) {
			uint8_t id[16] = {1};
			char fp[32];
			for (int b = 0; b < 8; b++)
				id[8 + b] = (uint8_t)((uint64_t)j >> (56 - 8 * b));
			snprintf(fp, sizeof(fp), "g%ld", draw_group(d, f));
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
	struct flags f = {.events = 200000, .groups = 200, .cap = 500, .max_rows = 0, .extra = 600, .round_events = 10000};
	char tmp[] = "/tmp/errq-sweep-XXXXXX", path[64];
	if (parse(argc, argv, &f))
		return usage();
	if (!f.db) {
		if (!mkdtemp(tmp))
			return 2;
		snprintf(path, sizeof(path), "%s/errq.db", tmp);
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
	struct draw d = {.rng = 0x9E3779B97F4A7C15ULL, .count = calloc((size_t)f.groups, sizeof(long))};
	if (!d.count)
		return 2;
	if (f.zipf) {
		d.cdf = malloc((size_t)f.groups * sizeof(double));
		if (!d.cdf)
			return 2;
		double sum = 0;
		for (long g = 0; g < f.groups; g++)
			d.cdf[g] = sum += pow((double)(g + 1), -(double)f.zipf / 100.0);
		for (long g = 0; g < f.groups; g++)
			d.cdf[g] /= sum;
	}
	if (fill(s, &f, &d, 0, f.events, t0)) {
		fprintf(stderr, "errq-sweep-bench: filling: %s\n", store_errmsg(s));
		store_close(s);
		return 2;
	}
	struct store_maint_opts mo = {.now_ns = t0 + 1000000000ULL, .per_group_cap = (uint32_t)f.cap};
#ifdef STORE_MAINT_MAX_ROWS
	mo.max_rows = (uint32_t)f.max_rows;
#endif
	struct store_write_stats ws;
	long steps = 0, added = f.events;
	uint64_t ns = 0, cpu = 0;
	for (long round = 0; round <= f.rounds; round++) {
		if (round) { /* steady churn: more events, then a pass after the recheck interval */
			if (fill(s, &f, &d, added, f.round_events, t0)) {
				fprintf(stderr, "errq-sweep-bench: filling: %s\n", store_errmsg(s));
				store_close(s);
				return 2;
			}
			added += f.round_events;
			mo.now_ns += STORE_CAP_CHECK_NS;
		}
		bool more = true;
		uint64_t start = errq_mono_ns(), cpu0 = cpu_ns();
		/* the clock stays put: a pass ends when the sweep has deleted what it found */
		while (more) {
			if (store_maintain(s, &mo, &more)) {
				fprintf(stderr, "errq-sweep-bench: upkeep: %s\n", store_errmsg(s));
				store_close(s);
				return 2;
			}
			steps++;
		}
		ns += errq_mono_ns() - start;
		cpu += cpu_ns() - cpu0;
	}
	store_get_write_stats(s, &ws);
	store_close(s);
	long want = 0;
	for (long g = 0; g < f.groups; g++)
		want += d.count[g] > f.cap ? d.count[g] - f.cap : 0;
	free(d.count);
	free(d.cdf);
	bool ok = (long)ws.events_deleted_cap == want;
	unsigned long long visited = 0;
#ifdef STORE_CAP_TRACK_GROUPS
	visited = (unsigned long long)ws.cap_rows_visited;
#endif
	printf("{\"events\": %ld, \"groups\": %ld, \"zipf\": %.2f, \"rounds\": %ld, \"round_events\": %ld, \"cap\": %ld,"
	       " \"max_rows\": %ld, \"deleted\": %llu, \"expected\": %ld, \"visited\": %llu, \"steps\": %ld,"
	       " \"sweep_ms\": %.1f, \"sweep_cpu_ms\": %.1f, \"rows_per_s\": %.0f, \"ok\": %s}\n",
	       f.events, f.groups, f.zipf / 100.0, f.rounds, f.rounds ? f.round_events : 0, f.cap, f.max_rows,
	       (unsigned long long)ws.events_deleted_cap, want, visited, steps, ns / 1e6, cpu / 1e6,
	       ns ? ws.events_deleted_cap * 1e9 / ns : 0.0, ok ? "true" : "false");
	if (f.db == path) {
		char p[80];
		const char *sfx[] = {"", "-wal", "-shm"};
		for (int i = 0; i < 3; i++) {
			snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
			unlink(p);
		}
		rmdir(tmp);
	}
	return ok ? 0 : 1;
}
