/* selftest.c: errq-bench --selftest --spawn ERRQD, a correctness smoke test of the tool
 * (no timing is asserted).  Checks, in order: the hand-written wire bytes decode with
 * protobuf-c into the events we meant; the Zipf sampler's frequencies; the histogram's
 * quantiles; then short sessions against a spawned errqd, each required to get every event
 * acknowledged with no error: 10 000 events closed loop with ordered ids, an open-loop run
 * with random ids, a batch-1 run with 64 batches in flight; then the storm (--storm): its wire
 * bytes decode into frameless events of one service whose messages all differ and hold only
 * lowercase words, and a storm session is acknowledged in full. */
#include <grpc/grpc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "errq/v1/collector.pb-c.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define ST_BATCH 50
#define ST_ZIPF_GROUPS 100
#define ST_ZIPF_SAMPLES 200000
#define ST_STORM_BATCHES 20      /* batches of ST_BATCH decoded by the storm check */
#define ST_STORM_EVENTS 3000     /* sent by the storm session */

static int failures;

static void check(bool ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(bool ok, const char *what, const char *fmt, ...)
{
	char why[BENCH_MSG_MAX] = "";
	if (!ok && fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	printf("selftest: %-52s %s%s%s\n", what, ok ? "ok" : "FAILED", ok ? "" : ": ", why);
	if (!ok)
		failures++;
}

static bool has_prefix(const char *s, const char *p)
{
	return s && strncmp(s, p, strlen(p)) == 0;
}

/* A payload and a generator for one check (free both after it); NULL, with the check failed
 * under what, when either cannot be made. */
static struct gen *fixture(struct payload *pl, uint32_t groups, double zipf, int event_size, uint64_t seed, int ids,
			   const char *what)
{
	char err[BENCH_MSG_MAX];
	if (payload_init(pl, groups, zipf, event_size, err, sizeof(err))) {
		check(false, what, "%s", err);
		return NULL;
	}
	struct gen *g = malloc(sizeof(*g));
	if (!g) {
		payload_free(pl);
		check(false, what, "out of memory");
		return NULL;
	}
	gen_init(g, seed, 0, ids);
	return g;
}

/* Builds a batch and decodes it with protobuf-c. */
static void check_encoding(int event_size, int ids)
{
	char what[BENCH_LABEL_MAX];
	struct payload pl;
	errq_snprintf(what, sizeof(what), "encoding: %d-byte events, %s ids", event_size,
		      ids == BENCH_IDS_RANDOM ? "random" : "ordered");
	struct gen *g = fixture(&pl, 1000, 1.1, event_size, 42, ids, what);
	if (!g)
		return;
	uint64_t now = errq_now_ns();
	grpc_slice sl = payload_batch(&pl, g, 7, ST_BATCH, now);
	Errq__V1__ReportRequest *r =
	    errq__v1__report_request__unpack(NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
	const char *bad = NULL;
	char badbuf[BENCH_LABEL_MAX];
	if (!r)
		bad = "protobuf-c cannot decode the batch";
	else if (r->seq != 7 || r->n_failures != ST_BATCH)
		bad = "wrong seq or event count";
	for (size_t i = 0; !bad && i < r->n_failures; i++) {
		const Errq__V1__TaskFailure *tf = r->failures[i];
		size_t packed = errq__v1__task_failure__get_packed_size(tf);
		unsigned svc = 0, type = 0;
		if (tf->event_id.len != 16)
			bad = "event_id is not 16 bytes";
		else if (tf->time_unix_nano != now)
			bad = "time_unix_nano not patched";
		else if (!has_prefix(tf->service, "bench-svc-") || !has_prefix(tf->error_type, "BenchError") ||
			 sscanf(tf->service, "bench-svc-%u", &svc) != 1 ||
			 sscanf(tf->error_type, "BenchError%u", &type) != 1 || type >= 1000 || type % 16 != svc)
			bad = "service / error_type do not name one group";
		else if (tf->n_frames != 2 || tf->n_details != 2 || tf->attempt != 1 || !tf->message ||
			 !has_prefix(tf->environment, "prod"))
			bad = "fixed fields missing";
		else if (packed + 3 < pl.event_len || packed > pl.event_len + 3) {
			errq_snprintf(badbuf, sizeof(badbuf), "event is %zu bytes, expected about %zu", packed,
				      pl.event_len);
			bad = badbuf;
		} else if (event_size >= 200 && (packed + 4 < (size_t)event_size || packed > (size_t)event_size + 4)) {
			errq_snprintf(badbuf, sizeof(badbuf), "event is %zu bytes, asked for %d", packed, event_size);
			bad = badbuf;
		} else if (ids == BENCH_IDS_ORDERED && i > 0 &&
			   memcmp(r->failures[i - 1]->event_id.data, tf->event_id.data, 16) >= 0)
			bad = "ordered ids do not increase";
		else if (i > 0 && memcmp(r->failures[i - 1]->event_id.data, tf->event_id.data, 16) == 0)
			bad = "repeated id";
	}
	if (r)
		errq__v1__report_request__free_unpacked(r, NULL);
	grpc_slice_unref(sl);
	free(g);
	payload_free(&pl);
	check(!bad, what, "%s", bad ? bad : "");
}

static void check_zipf(double s)
{
	char what[BENCH_LABEL_MAX];
	struct payload pl;
	uint64_t freq[ST_ZIPF_GROUPS];
	errq_snprintf(what, sizeof(what), "sampler: zipf %.1f over %d groups", s, ST_ZIPF_GROUPS);
	struct gen *g = fixture(&pl, ST_ZIPF_GROUPS, s, 300, 1, BENCH_IDS_ORDERED, what);
	if (!g)
		return;
	memset(freq, 0, sizeof(freq));
	bool range_ok = true;
	for (int i = 0; i < ST_ZIPF_SAMPLES; i++) {
		uint32_t k = payload_pick(&pl, g);
		if (k >= ST_ZIPF_GROUPS)
			range_ok = false;
		else
			freq[k]++;
	}
	double h = 0; /* the normalising constant */
	for (int k = 1; k <= ST_ZIPF_GROUPS; k++)
		h += pow(k, -s);
	double worst = 0;
	for (int k = 0; k < 10; k++) { /* the ten most frequent ranks: relative error */
		double expect = ST_ZIPF_SAMPLES * pow(k + 1, -s) / h;
		double e = fabs((double)freq[k] - expect) / expect;
		if (e > worst)
			worst = e;
	}
	free(g);
	payload_free(&pl);
	check(range_ok && worst < 0.08, what, "%s worst relative error %.3f", range_ok ? "" : "out of range;", worst);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The storm words of one message: PL_STORM_HEAD's "storm: cannot reconcile " then
 * BENCH_STORM_WORDS_LEN bytes of lowercase letters and spaces; NULL when not so. */
static const char *storm_words(const char *msg)
{
	static const char head[] = "storm: cannot reconcile ";
	if (!has_prefix(msg, head) || strlen(msg) < sizeof(head) - 1 + BENCH_STORM_WORDS_LEN)
		return NULL;
	const char *w = msg + sizeof(head) - 1;
	for (int i = 0; i < BENCH_STORM_WORDS_LEN; i++)
		if (!(w[i] == ' ' || (w[i] >= 'g' && w[i] <= 'z') || w[i] == 'a'))
			return NULL; /* a digit or a hex letter would let a normalizer collapse it */
	return w;
}

/* ST_STORM_BATCHES batches from two threads' generators: every event of service bench-storm,
 * no frames, every message's words different. */
static void check_storm_encoding(void)
{
	static const char what[] = "storm: one service, no frames, unique words";
	char err[BENCH_MSG_MAX];
	struct payload pl;
	struct gen *g[2] = {malloc(sizeof(struct gen)), malloc(sizeof(struct gen))};
	size_t n = 0, cap = (size_t)ST_STORM_BATCHES * ST_BATCH;
	char **words = calloc(cap, sizeof(*words));
	const char *bad = NULL;
	if (!g[0] || !g[1] || !words || payload_init_storm(&pl, 300, err, sizeof(err))) {
		check(false, what, "%s", g[0] && g[1] && words ? err : "out of memory");
		goto out;
	}
	gen_init(g[0], 9, 0, BENCH_IDS_ORDERED);
	gen_init(g[1], 9, 1, BENCH_IDS_ORDERED);
	for (int b = 0; !bad && b < ST_STORM_BATCHES; b++) {
		grpc_slice sl = payload_batch(&pl, g[b % 2], (uint64_t)b + 1, ST_BATCH, errq_now_ns());
		Errq__V1__ReportRequest *r =
		    errq__v1__report_request__unpack(NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
		if (!r || r->n_failures != ST_BATCH)
			bad = "protobuf-c cannot decode the batch";
		for (size_t i = 0; !bad && i < r->n_failures; i++) {
			const Errq__V1__TaskFailure *tf = r->failures[i];
			const char *w = storm_words(tf->message);
			size_t packed = errq__v1__task_failure__get_packed_size(tf);
			if (strcmp(tf->service, "bench-storm") != 0 || strcmp(tf->error_type, "StormError") != 0)
				bad = "not service bench-storm, error_type StormError";
			else if (tf->n_frames != 0)
				bad = "a storm event has frames (errqd would group by them, not by the message)";
			else if (!w)
				bad = "the message does not start with lowercase words";
			else if (packed + 4 < 300 || packed > 304)
				bad = "event size is not the one asked for";
			else if (!(words[n++] = strndup(w, BENCH_STORM_WORDS_LEN)))
				bad = "out of memory";
		}
		if (r)
			errq__v1__report_request__free_unpacked(r, NULL);
		grpc_slice_unref(sl);
	}
	if (!bad) {
		qsort(words, n, sizeof(*words), cmp_str);
		for (size_t i = 1; !bad && i < n; i++)
			if (strcmp(words[i - 1], words[i]) == 0)
				bad = "two events share their words";
	}
	payload_free(&pl);
	check(!bad, what, "%s", bad ? bad : "");
out:
	for (size_t i = 0; words && i < n; i++)
		free(words[i]);
	free(words);
	free(g[0]);
	free(g[1]);
}

static void check_hist(void)
{
	struct hist *h = malloc(sizeof(*h));
	if (!h) {
		check(false, "histogram", "out of memory");
		return;
	}
	hist_init(h);
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(h, v);
	uint64_t p50 = hist_quantile(h, 0.5), p99 = hist_quantile(h, 0.99), p0 = hist_quantile(h, 0);
	bool ok = h->n == 100000 && h->max == 100000 && p0 == 1 && fabs((double)p50 - 50000) <= 500 &&
		  fabs((double)p99 - 99000) <= 990 && hist_quantile(h, 1) == 100000;
	check(ok, "histogram: quantiles within 1 %", "p50 %llu p99 %llu", (unsigned long long)p50,
	      (unsigned long long)p99);
	hist_init(h);
	hist_record(h, 0);
	hist_record(h, UINT64_MAX / 2);
	check(hist_quantile(h, 1) == UINT64_MAX / 2 && hist_quantile(h, 0.5) == 0, "histogram: extremes", "wrong");
	free(h);
}

struct st_session {
	const char *name;
	int streams, connections, batch, inflight, ids;
	uint64_t events;
	double rate;
};

static void check_session(const struct st_session *ss, const struct payload *pl, const struct server *sv,
			  const sigset_t *sigs)
{
	char what[BENCH_LABEL_MAX], err[BENCH_MSG_MAX];
	struct load_result r;
	struct load_cfg lc = {.streams = ss->streams, .threads = 2, .batch = ss->batch, .inflight = ss->inflight,
			      .ids = ss->ids, .events = ss->events, .rate = ss->rate, .seed = 7, .pl = pl,
			      .server_pid = sv->pid, .sigs = sigs};
	errq_snprintf(what, sizeof(what), "errqd: %s", ss->name);
	memset(&r, 0, sizeof(r));
	if (bench_session(sv->addr, ss->connections, &lc, &r, err, sizeof(err))) {
		check(false, what, "%s", err);
		load_result_free(&r);
		return;
	}
	uint64_t batches = (ss->events + (uint64_t)ss->batch - 1) / (uint64_t)ss->batch;
	bool ok = r.events_sent == ss->events && r.events_accepted == ss->events && load_errors(&r) == 0 &&
		  r.batches_acked == batches && r.lat->n == batches && !r.interrupted;
	check(ok, what,
	      "sent %llu, accepted %llu of %llu; batches %llu/%llu; errors %llu (dup %llu, rejected %llu, "
	      "status %llu, unanswered %llu)%s%s",
	      (unsigned long long)r.events_sent, (unsigned long long)r.events_accepted,
	      (unsigned long long)ss->events, (unsigned long long)r.batches_acked, (unsigned long long)batches,
	      (unsigned long long)load_errors(&r), (unsigned long long)r.duplicates,
	      (unsigned long long)r.rejected, (unsigned long long)r.bad_status,
	      (unsigned long long)r.unacked_batches, r.first_error[0] ? ": " : "", r.first_error);
	if (ok)
		check(r.have_server && r.server_user_us + r.server_sys_us > 0 && r.peak_rss_kib > 0,
		      "errqd: /proc figures read", "cpu %llu µs, rss %llu KiB",
		      (unsigned long long)(r.server_user_us + r.server_sys_us), (unsigned long long)r.peak_rss_kib);
	load_result_free(&r);
}

int selftest_main(const struct bench_cfg *cfg)
{
	static const struct st_session sessions[] = {
	    {"10000 events, ordered ids, 4 streams", 4, 2, 100, 4, BENCH_IDS_ORDERED, 10000, 0},
	    {"open loop 2000 events at 20000/s, random ids", 4, 2, 10, 8, BENCH_IDS_RANDOM, 2000, 20000},
	    {"batch 1, 64 in flight, 1000 events", 2, 1, 1, 64, BENCH_IDS_ORDERED, 1000, 0},
	};
	char err[BENCH_MSG_MAX];
	struct payload pl;
	struct server sv;

	check_encoding(300, BENCH_IDS_ORDERED);
	check_encoding(300, BENCH_IDS_RANDOM);
	check_encoding(1, BENCH_IDS_ORDERED);
	check_encoding(5000, BENCH_IDS_ORDERED);
	check_zipf(1.1);
	check_zipf(0);
	check_storm_encoding();
	check_hist();

	sigset_t sigs;
	load_block_signals(&sigs);
	if (payload_init(&pl, 5000, 1.1, 300, err, sizeof(err))) {
		check(false, "payload", "%s", err);
		return 1;
	}
	if (server_spawn(&sv, &cfg->spawn, err, sizeof(err))) {
		check(false, "errqd: start", "%s", err);
		payload_free(&pl);
		return 1;
	}
	check(true, "errqd: start", "%s", "");
	grpc_init();
	for (size_t i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++)
		check_session(&sessions[i], &pl, &sv, &sigs);
	struct payload storm;
	if (payload_init_storm(&storm, 300, err, sizeof(err)) == 0) {
		static const struct st_session ss = {"storm, 3000 events, each a new group", 4, 2, 100, 4,
						     BENCH_IDS_ORDERED, ST_STORM_EVENTS, 0};
		check_session(&ss, &storm, &sv, &sigs);
		payload_free(&storm);
	} else {
		check(false, "errqd: storm", "%s", err);
	}
	grpc_shutdown_blocking();
	server_stop(&sv);
	check(sv.exit_status == 0, "errqd: clean exit on SIGTERM", "status %d", sv.exit_status);
	payload_free(&pl);
	printf("selftest: %s\n", failures ? "FAILED" : "all passed");
	return failures ? 1 : 0;
}
