/* errq-writer-bench: the ingest writer's storage work alone (events in, groups, deferred
 * aggregates, commits), so its cost per event can be counted exactly under callgrind and
 * timed without gRPC, clients or the machine's other load in the way.
 *
 *   errq-writer-bench [--warmup N] [--events N] [--groups G] [--zipf S] [--batch B] [--rate R]
 *                     [--message BYTES] [--extra BYTES] [--services K] [--seed X] [--db PATH]
 *
 * Stores --warmup events (default: one per group, so every group exists, as in a collector
 * that has run a while), then measures N more: transactions of B events committed with
 * store_txn_commit_deferred, as the busy writer does, with errqd's checkpointer thread and
 * the writer's WAL catch-up.  Each event belongs to one of G groups drawn uniformly (--zipf 0)
 * or by Zipf(S), spread over K services; the store's clock is injected and advances 1/R s per
 * event, so the aggregates' generations close as they would at R events/s whatever the real
 * speed (under valgrind too); measure several generations (N / R seconds of them).  Then it
 * writes the rest of the aggregates, checks that the
 * groups' totals add up, and prints one JSON line: events, groups, wall time and events/s.
 * For the repeatable figure, count instructions inside the writer's storage calls of the
 * measured part only (the warm-up's are zeroed when it ends):
 *   valgrind --tool=callgrind --toggle-collect='store_txn_*' --toggle-collect=store_agg_flush \
 *     --toggle-collect=store_wal_catch_up build/bin/errq-writer-bench --warmup 100000 \
 *     --events 200000 --groups 50000 --zipf 0
 * and divide the total Ir by N.  Exit 0 when the totals are right, 1 when not, 2 on a usage
 * or storage error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_ZERO_STATS
#define CALLGRIND_ZERO_STATS
#endif

#include "sbench.h"
#include "storage.h"
#include "errq_hash.h"
#include "errq_time.h"

struct flags {
	long warmup, events, groups, batch, rate, message, extra, services, seed;
	double zipf;
	const char *db;
};

static int usage(void)
{
	fprintf(stderr, "usage: errq-writer-bench [--warmup N] [--events N] [--groups G] [--zipf S] [--batch B] [--rate R]"
			" [--message BYTES] [--extra BYTES] [--services K] [--seed X] [--db PATH]\n");
	return 2;
}

static int parse(int argc, char **argv, struct flags *f)
{
	/* --zipf takes a fraction: taken out here, the integers go to sbench_parse */
	char *rest[64];
	int nr = 0;
	if (argc > 64)
		return -1;
	rest[nr++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--zipf") && i + 1 < argc) {
			char *end;
			f->zipf = strtod(argv[++i], &end);
			if (*end || f->zipf < 0 || f->zipf > 5)
				return -1;
			continue;
		}
		rest[nr++] = argv[i];
	}
	static const char *const names[] = {"--warmup", "--events", "--groups", "--batch", "--rate",
					    "--message", "--extra",  "--services", "--seed"};
	long *const dst[] = {&f->warmup, &f->events, &f->groups, &f->batch, &f->rate,
			     &f->message, &f->extra,  &f->services, &f->seed};
	if (sbench_parse(nr, rest, names, dst, 9, &f->db))
		return -1;
	return f->events && f->groups && f->batch && f->rate && f->services && f->message < 4000 ? 0 : -1;
}

/* xorshift64*: the group sampler's randomness (seeded, so a run repeats exactly) */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545F4914F6CDD1DULL;
}

/* The cumulative Zipf(s) weights of ranks 1..g (NULL for uniform). */
static double *zipf_cdf(long g, double s)
{
	if (s == 0)
		return NULL;
	double *c = malloc((size_t)g * sizeof(*c)), sum = 0;
	if (!c)
		return NULL;
	for (long i = 0; i < g; i++)
		c[i] = sum += 1.0 / pow((double)(i + 1), s);
	for (long i = 0; i < g; i++)
		c[i] /= sum;
	return c;
}

static long draw(const struct flags *f, const double *cdf, uint64_t *x, long j)
{
	if (j < f->groups && j < f->warmup)
		return j; /* the warm-up creates every group first */
	if (!cdf)
		return (long)(rnd(x) % (uint64_t)f->groups);
	double u = (double)(rnd(x) >> 11) / 9007199254740992.0;
	long lo = 0, hi = f->groups - 1;
	while (lo < hi) {
		long mid = (lo + hi) / 2;
		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t vclock_ns;
static uint64_t vclock(void *ctx)
{
	(void)ctx;
	return vclock_ns;
}

struct sample {
	char fp[17], service[32], type[32];
};

/* Stores events *j..until-1 (in transactions of f->batch, committed deferred, the WAL caught
 * up as the busy writer does).  0, or -1 on a storage error. */
static int run(struct store *s, const struct flags *f, const double *cdf, const struct sample *gs, char *msg,
	       const char *extra, uint64_t *x, long *j, long until)
{
	const uint64_t t0 = 1800000000000000000ULL, step = 1000000000ULL / (uint64_t)f->rate;
	int rc = 0;
	while (*j < until && !rc) {
		rc = store_txn_begin(s);
		for (long n = 0; n < f->batch && *j < until && !rc; n++, (*j)++) {
			long g = draw(f, cdf, x, *j);
			uint8_t id[16] = {0x01, 0x8f};
			for (int b = 0; b < 8; b++)
				id[8 + b] = (uint8_t)((uint64_t)*j >> (56 - 8 * b));
			snprintf(msg, (size_t)f->message + 64, "bench failure of group %ld %0*d", g,
				 (int)(f->message > 40 ? f->message - 40 : 1), 0);
			vclock_ns += step;
			uint64_t at = t0 + (uint64_t)*j * step;
			struct store_event e = {.event_id = id, .time_ns = at, .received_ns = at, .service = gs[g].service,
						.environment = "prod", .error_type = gs[g].type, .message = msg,
						.fingerprint = gs[g].fp, .grouping_version = 1, .attempt = 1,
						.extra = f->extra ? extra : NULL, .extra_len = (size_t)f->extra};
			rc = store_txn_add_event(s, &e) < 0;
		}
		if (!rc)
			rc = store_txn_commit_deferred(s);
		if (!rc)
			store_wal_catch_up(s, STORE_CKPT_CATCH_UP_BUSY_PAGES);
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct flags f = {.warmup = -1, .events = 200000, .groups = 50000, .zipf = 0, .batch = 200, .rate = 150000,
			  .message = 200, .extra = 0, .services = 16, .seed = 1};
	char tmp[] = "/tmp/errq-writer-XXXXXX", path[64];
	if (parse(argc, argv, &f))
		return usage();
	if (f.warmup < 0)
		f.warmup = f.groups;
	double *cdf = zipf_cdf(f.groups, f.zipf);
	struct sample *gs = calloc((size_t)f.groups, sizeof(*gs));
	char *msg = malloc((size_t)f.message + 64), *extra = malloc((size_t)f.extra + 1);
	if ((f.zipf && !cdf) || !gs || !msg || !extra)
		return 2;
	for (long g = 0; g < f.groups; g++) {
		uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, &g, sizeof(g));
		snprintf(gs[g].fp, sizeof(gs[g].fp), "%016llx", (unsigned long long)h);
		snprintf(gs[g].service, sizeof(gs[g].service), "bench-svc-%02ld", g % f.services);
		snprintf(gs[g].type, sizeof(gs[g].type), "BenchError%ld", g);
	}
	for (long i = 0; i < f.extra; i++)
		extra[i] = (char)('a' + i % 23);
	if (!f.db) {
		if (sbench_tmpdb(tmp, path, sizeof(path)))
			return 2;
		f.db = path;
	}
	char err[256];
	struct store *s = NULL;
	vclock_ns = 1000000000ULL;
	struct store_opts o = {.path = f.db, .mono_ns = vclock, .ckpt_external = true};
	if (store_open(&s, &o, err, sizeof(err))) {
		fprintf(stderr, "errq-writer-bench: %s\n", err);
		return 2;
	}
	struct store_ckpt *ck = NULL;
	if (store_ckpt_start(&ck, f.db, err, sizeof(err))) {
		fprintf(stderr, "errq-writer-bench: %s\n", err);
		store_close(s);
		return 2;
	}
	store_set_ckpt(s, ck);
	uint64_t x = 0x9E3779B97F4A7C15ULL ^ (uint64_t)f.seed;
	long j = 0;
	int rc = run(s, &f, cdf, gs, msg, extra, &x, &j, f.warmup);
	if (!rc)
		rc = store_agg_flush(s); /* the warm-up's counts are not the measured part's work */
	uint64_t start = errq_mono_ns();
	CALLGRIND_ZERO_STATS;
	if (!rc)
		rc = run(s, &f, cdf, gs, msg, extra, &x, &j, f.warmup + f.events);
	if (!rc)
		rc = store_agg_flush(s);
	uint64_t ns = errq_mono_ns() - start;
	struct store_totals t = {0};
	struct store_write_stats ws;
	store_get_write_stats(s, &ws);
	if (rc || store_get_totals(s, &t)) {
		fprintf(stderr, "errq-writer-bench: %s\n", store_errmsg(s));
		store_close(s);
		store_ckpt_stop(ck);
		return 2;
	}
	store_close(s);
	store_ckpt_stop(ck);
	bool ok = t.events == (uint64_t)(f.warmup + f.events);
	printf("{\"warmup\": %ld, \"events\": %ld, \"groups\": %ld, \"zipf\": %g, \"batch\": %ld, \"rate\": %ld, \"groups_stored\": %llu,"
	       " \"total\": %llu, \"generations\": %llu, \"group_lookups\": %llu, \"seconds\": %.3f, \"events_per_s\": %.0f, \"ok\": %s}\n",
	       f.warmup, f.events, f.groups, f.zipf, f.batch, f.rate, (unsigned long long)t.groups,
	       (unsigned long long)t.events, (unsigned long long)ws.agg_generations,
	       (unsigned long long)ws.group_lookups, ns / 1e9, ns ? f.events * 1e9 / ns : 0.0, ok ? "true" : "false");
	if (f.db == path)
		sbench_tmpdb_remove(tmp, path);
	free(cdf);
	free(gs);
	free(msg);
	free(extra);
	return ok ? 0 : 1;
}
