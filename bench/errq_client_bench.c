/* errq-client-bench: liberrq measured against a real errqd (issue 6's "Speed" section).
 *
 *   errq-client-bench --errqd PATH [--part a|b|c|all] [--duration S] [--down S]
 *                     [--rate N] [--threads N] [--queue-bytes N] [--no-spool]
 *                     [--inflight N] [--batch N]
 *
 * It starts errqd itself (--listen 127.0.0.1:0 --db TMP/errq.db --port-file TMP/port) and
 * kills only the processes it started.  Parts:
 *   a  errq_report() latency (median, p99, p99.9, max) with 4 reporting threads at a steady
 *      rate (--rate, total events/s) while the background thread sends to errqd;
 *   b  sustained end-to-end throughput: --threads reporters as fast as the client takes
 *      events (a full queue makes them pause 200 us), acknowledged events/s over the run;
 *   c  the collector down under load: reporters at --rate; errqd is SIGKILLed for --down
 *      seconds and restarted on the same port and database; the host's RSS growth is
 *      compared with the queue's byte budget (--queue-bytes), and every event is accounted
 *      for: acknowledged, spooled (and replayed after recovery), or counted as dropped;
 *      errqd's database is counted to check it.
 * liberrq is used through its public API (<errq.h>) only; what errqd stored is read back
 * through its Query API (ListGroups: the groups' all-time totals, which count every stored
 * event even after errqd's per-group cap deleted old rows).
 * ERRQ_BENCH_DEBUG=1 turns on the client's debug log (stream failures, circuit, spool).
 * Runs are short by default (a few seconds each): the machine is shared. */
#include <errno.h>
#include <errq.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errq/v1/query.pb-c.h"
#include "errq_grpc.h"
#include "errq_spawn.h"

#define DEADLINE_MS 60000 /* waits for errqd and for flushes: far beyond what is needed */
#define MAX_THREADS 16

static const char *errqd_path;
static double opt_duration = 3.0;
static double opt_down = 5.0;
static double opt_rate = 20000;
static int opt_threads = 2;
static size_t opt_queue_bytes = 8u << 20;
static bool opt_spool = true;
static unsigned opt_inflight = 0;  /* 0: the library's default */
static size_t opt_batch = 0;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void die(const char *what)
{
	fprintf(stderr, "errq-client-bench: %s\n", what);
	exit(1);
}

/* ---- errqd, started and stopped by us (common/errq_spawn.c) */
struct errqd {
	struct errq_child child;
	int port;
	char dir[64];
	char db[128];
	char portfile[128];
	char log[128];
	char addr[64];
};

static void errqd_start(struct errqd *d, int port)
{
	char listen[64], err[256];
	if (!d->dir[0]) {
		snprintf(d->dir, sizeof(d->dir), "/tmp/errq-cbench-XXXXXX");
		if (!mkdtemp(d->dir))
			die("cannot make a temporary directory");
		snprintf(d->db, sizeof(d->db), "%s/errq.db", d->dir);
		snprintf(d->portfile, sizeof(d->portfile), "%s/port", d->dir);
		snprintf(d->log, sizeof(d->log), "%s/errqd.log", d->dir);
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	unlink(d->portfile);
	const char *argv[] = {errqd_path, "--listen", listen, "--db", d->db, "--port-file", d->portfile,
			      "--http-listen", "127.0.0.1:0", NULL};
	struct errq_spawn_opts o = {.argv = argv, .out_path = d->log, .append = true};
	int ports[2];
	if (errq_spawn(&d->child, &o, err, sizeof(err)))
		die(err);
	if (errq_child_wait_ports(&d->child, d->portfile, DEADLINE_MS, ports, err, sizeof(err))) {
		fprintf(stderr, "errq-client-bench: errqd %s; see %s\n", err, d->log);
		errq_child_stop(&d->child, SIGKILL, DEADLINE_MS);
		exit(1);
	}
	d->port = ports[0];
	snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", d->port);
}

static void errqd_stop(struct errqd *d, int sig)
{
	errq_child_stop(&d->child, sig, DEADLINE_MS);
}

static void rm_rf(const char *dir)
{
	char cmd[256];
	if (!dir[0] || getenv("ERRQ_KEEP_TMP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "errq-client-bench: cannot remove %s\n", dir);
}

/* Events of service that errqd stored: the sum of its groups' all-time totals, read with
 * /errq.v1.Query/ListGroups page by page.  -1 when the query fails. */
static long long stored_events(const char *addr, const char *service)
{
	long long n = 0;
	uint8_t cursor[512];
	size_t cursor_len = 0;
	grpc_channel *ch = errq_channel_new(addr);
	for (int page = 0; page < 100000; page++) {
		Errq__V1__ListGroupsRequest req = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
		struct errq_unary_result r;
		req.service = (char *)service;
		req.limit = 1000;
		req.cursor.data = cursor;
		req.cursor.len = cursor_len;
		if (errq_unary_call(ch, "/errq.v1.Query/ListGroups", &req.base, DEADLINE_MS, &r) != 0 ||
		    r.status != GRPC_STATUS_OK || !r.has_resp) {
			errq_unary_result_free(&r);
			n = -1;
			break;
		}
		Errq__V1__ListGroupsResponse *resp = errq__v1__list_groups_response__unpack(
		    NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
		errq_unary_result_free(&r);
		if (!resp) {
			n = -1;
			break;
		}
		for (size_t i = 0; i < resp->n_groups; i++)
			n += (long long)resp->groups[i]->total;
		cursor_len = resp->next_cursor.len <= sizeof(cursor) ? resp->next_cursor.len : 0;
		memcpy(cursor, resp->next_cursor.data, cursor_len);
		errq__v1__list_groups_response__free_unpacked(resp, NULL);
		if (!cursor_len)
			break;
	}
	grpc_channel_destroy(ch);
	return n;
}

static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static errq_client_t *client_new(const char *addr, const char *service, const char *spool)
{
	errq_options_t *o = errq_options_new();
	if (!o || errq_options_set_collector(o, addr) || errq_options_set_service(o, service) ||
	    errq_options_set_queue_bytes(o, opt_queue_bytes) ||
	    errq_options_set_queue_capacity(o, 10000000) ||
	    errq_options_set_reconnect_backoff(o, 100, 2000) ||
	    (spool && errq_options_set_spool_dir(o, spool)) ||
	    errq_options_set_debug(o, getenv("ERRQ_BENCH_DEBUG") != NULL) ||
	    (opt_inflight && errq_options_set_max_inflight(o, opt_inflight)) ||
	    (opt_batch && errq_options_set_max_batch_events(o, opt_batch)))
		die("bad options");
	errq_client_t *c = errq_client_new(o);
	if (!c)
		die("cannot start the client");
	return c;
}

/* A typical event: a code, a task, two details, three frames. */
static errq_event_t *make_event(long i)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "upstream timed out after 5000 ms (request %ld)", i);
	errq_event_t *ev = errq_event_new(NULL, "TimeoutError", msg);
	if (!ev)
		die("out of memory");
	errq_event_set_code(ev, "TIMEOUT");
	errq_event_set_task(ev, "charge_card");
	errq_event_add_detail(ev, "host", "payments.internal");
	errq_event_add_detail(ev, "attempt_ms", "5000");
	errq_event_add_frame(ev, "worker_loop", "worker.c", 203, "checkout", true);
	errq_event_add_frame(ev, "charge_card", "payments.c", 142, "checkout", true);
	errq_event_add_frame(ev, "http_post", "http.c", 310, "libhttp", false);
	errq_event_set_attempt(ev, 2);
	return ev;
}

/* ---- reporters */
struct reporter {
	pthread_t th;
	errq_client_t *c;
	int id;
	double rate;        /* events/s for this thread; 0: as fast as the client takes them */
	volatile int *stop;
	uint64_t *lat;      /* per-report ns, when measuring (cap entries) */
	size_t cap, n_lat;
	long attempts, ok, full, other;
};

static void *reporter_main(void *p)
{
	struct reporter *r = p;
	pthread_setname_np(pthread_self(), "bench-reporter");
	uint64_t t0 = mono_ns();
	long i = 0;
	while (!*r->stop) {
		if (r->rate > 0) { /* keep to the schedule, in steps of 20 events */
			if (i % 20 == 0) {
				uint64_t due = t0 + (uint64_t)((double)i / r->rate * 1e9);
				uint64_t now = mono_ns();
				if (due > now)
					sleep_ns(due - now);
			}
		}
		errq_event_t *ev = make_event(i + (long)r->id * 1000000000L);
		uint64_t a = mono_ns();
		int rc = errq_report(r->c, ev);
		uint64_t b = mono_ns();
		if (r->lat && r->n_lat < r->cap)
			r->lat[r->n_lat++] = b - a;
		r->attempts++;
		if (rc == ERRQ_OK) {
			r->ok++;
		} else if (rc == ERRQ_EQUEUEFULL) {
			r->full++;
			if (r->rate <= 0) /* throughput run: leave the CPU to the sender and errqd */
				sleep_ns(200000);
		} else {
			r->other++;
		}
		i++;
	}
	return NULL;
}

static void start_reporters(struct reporter *rs, int n, errq_client_t *c, double total_rate,
			    volatile int *stop, size_t lat_cap)
{
	for (int i = 0; i < n; i++) {
		rs[i] = (struct reporter){.c = c, .id = i, .rate = total_rate / n, .stop = stop};
		if (lat_cap) {
			rs[i].lat = malloc(lat_cap * sizeof(uint64_t));
			rs[i].cap = lat_cap;
			if (!rs[i].lat)
				die("out of memory");
		}
		if (pthread_create(&rs[i].th, NULL, reporter_main, &rs[i]))
			die("cannot start a thread");
	}
}

static void join_reporters(struct reporter *rs, int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(rs[i].th, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static errq_stats_t stats_of(errq_client_t *c)
{
	errq_stats_t st;
	errq_client_stats(c, &st);
	return st;
}

/* ---- (a) latency */
static void part_a(void)
{
	enum { THREADS = 4 };
	struct errqd d = {0};
	struct reporter rs[THREADS];
	volatile int stop = 0;
	errqd_start(&d, 0);
	errq_client_t *c = client_new(d.addr, "bench-latency", NULL);
	size_t cap = (size_t)(opt_rate / THREADS * opt_duration * 1.5) + 1000;
	start_reporters(rs, THREADS, c, opt_rate, &stop, cap);
	sleep_ns((uint64_t)(opt_duration * 1e9));
	stop = 1;
	join_reporters(rs, THREADS);
	int frc = errq_client_flush(c, DEADLINE_MS);
	errq_stats_t st = stats_of(c);

	size_t n = 0;
	for (int i = 0; i < THREADS; i++)
		n += rs[i].n_lat;
	uint64_t *all = malloc((n ? n : 1) * sizeof(uint64_t));
	long full = 0, attempts = 0;
	size_t k = 0;
	for (int i = 0; i < THREADS; i++) {
		memcpy(all + k, rs[i].lat, rs[i].n_lat * sizeof(uint64_t));
		k += rs[i].n_lat;
		full += rs[i].full;
		attempts += rs[i].attempts;
		free(rs[i].lat);
	}
	qsort(all, n, sizeof(uint64_t), cmp_u64);
#define PCT(p) (n ? (double)all[(size_t)((double)(n - 1) * (p))] / 1000.0 : 0.0)
	printf("(a) errq_report() latency, %d threads, %.0f events/s for %.1f s, sending to errqd:\n",
	       THREADS, opt_rate, opt_duration);
	printf("    reports %ld (queue full %ld)   median %.3f us   p90 %.3f us   p99 %.3f us   "
	       "p99.9 %.3f us   max %.1f us\n",
	       attempts, full, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
	       n ? (double)all[n - 1] / 1000.0 : 0.0);
	printf("    delivered: acked %llu of %llu queued (flush %s), batches %llu\n",
	       (unsigned long long)st.acked, (unsigned long long)st.queued, errq_strerror(frc),
	       (unsigned long long)st.batches_acked);
#undef PCT
	free(all);
	errq_client_close(c, DEADLINE_MS);
	errqd_stop(&d, SIGTERM);
	rm_rf(d.dir);
}

/* ---- (b) throughput */
static void part_b(void)
{
	struct errqd d = {0};
	struct reporter rs[MAX_THREADS];
	volatile int stop = 0;
	struct rusage ru0, ru1;
	errqd_start(&d, 0);
	errq_client_t *c = client_new(d.addr, "bench-throughput", NULL);
	start_reporters(rs, opt_threads, c, 0, &stop, 0);
	sleep_ns(500000000ull); /* warm up: streams open, the database file grows */
	errq_stats_t s0 = stats_of(c);
	uint64_t t0 = mono_ns();
	getrusage(RUSAGE_SELF, &ru0);
	sleep_ns((uint64_t)(opt_duration * 1e9));
	errq_stats_t s1 = stats_of(c);
	uint64_t t1 = mono_ns();
	getrusage(RUSAGE_SELF, &ru1);
	stop = 1;
	join_reporters(rs, opt_threads);
	int frc = errq_client_flush(c, DEADLINE_MS);
	errq_stats_t s2 = stats_of(c);
	double secs = (double)(t1 - t0) / 1e9;
	long full = 0;
	for (int i = 0; i < opt_threads; i++)
		full += rs[i].full;
	double acked = (double)(s1.acked - s0.acked);
	double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
			      ru0.ru_stime.tv_sec) +
		     (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
			      ru0.ru_stime.tv_usec) / 1e6;
	long long stored = stored_events(d.addr, "bench-throughput");
	printf("(b) sustained end-to-end, %d reporting threads for %.1f s into errqd:\n", opt_threads,
	       secs);
	printf("    %.0f events/s acknowledged (batches of %.0f on average); client process CPU "
	       "%.2f us/event\n",
	       acked / secs,
	       s1.batches_acked > s0.batches_acked
		   ? acked / (double)(s1.batches_acked - s0.batches_acked) : 0.0,
	       acked > 0 ? cpu * 1e6 / acked : 0.0);
	printf("    after the run: queued %llu, acked %llu (flush %s), stored in errqd %lld; "
	       "reports refused (queue full, retried after 200 us) %ld\n",
	       (unsigned long long)s2.queued, (unsigned long long)s2.acked, errq_strerror(frc), stored,
	       full);
	errq_client_close(c, DEADLINE_MS);
	errqd_stop(&d, SIGTERM);
	rm_rf(d.dir);
}

/* ---- (c) collector down */
struct sampler {
	pthread_t th;
	volatile int stop;
	long max_kib;
};

static void *sampler_main(void *p)
{
	struct sampler *s = p;
	while (!s->stop) {
		long r = rss_kib();
		if (r > s->max_kib)
			s->max_kib = r;
		sleep_ns(10000000);
	}
	return NULL;
}

static void part_c(void)
{
	struct errqd d = {0};
	struct reporter rs[MAX_THREADS];
	struct sampler smp = {0};
	volatile int stop = 0;
	char spool[64] = "";
	const double up = 2.0, after = 2.0;

	errqd_start(&d, 0);
	if (opt_spool) {
		snprintf(spool, sizeof(spool), "/tmp/errq-cbench-spool-XXXXXX");
		if (!mkdtemp(spool))
			die("cannot make the spool directory");
	}
	errq_client_t *c = client_new(d.addr, "bench-down", opt_spool ? spool : NULL);
	/* every report's latency: at the queue's limit a report waits for a spill to the spool */
	size_t lat_cap = (size_t)(opt_rate / opt_threads * (up + opt_down + after + 10) * 1.5) + 1000;
	start_reporters(rs, opt_threads, c, opt_rate, &stop, lat_cap);
	sleep_ns((uint64_t)(up * 1e9));
	long rss_before = rss_kib();
	errq_stats_t s_before = stats_of(c);
	if (pthread_create(&smp.th, NULL, sampler_main, &smp))
		die("cannot start a thread");
	errqd_stop(&d, SIGKILL);
	if (getenv("ERRQ_BENCH_TRACE")) { /* what the client does while the collector is away */
		uint64_t t_down = mono_ns();
		uint64_t last_full = s_before.dropped_queue_full;
		while (mono_ns() - t_down < (uint64_t)(opt_down * 1e9)) {
			sleep_ns(5000000);
			errq_stats_t x = stats_of(c);
			if (x.dropped_queue_full != last_full)
				fprintf(stderr, "trace-down %.3f refused +%llu circuit %llu fails %llu "
					"pending %llu (%llu KiB) spooled %llu failures %llu\n",
					(double)(mono_ns() - t_down) / 1e9,
					(unsigned long long)(x.dropped_queue_full - last_full),
					(unsigned long long)x.circuit_state,
					(unsigned long long)x.consecutive_failures,
					(unsigned long long)x.pending,
					(unsigned long long)x.pending_bytes / 1024,
					(unsigned long long)x.spooled,
					(unsigned long long)x.stream_failures);
			last_full = x.dropped_queue_full;
		}
	} else {
		sleep_ns((uint64_t)(opt_down * 1e9));
	}
	smp.stop = 1;
	pthread_join(smp.th, NULL);
	errq_stats_t s_down = stats_of(c);
	errqd_start(&d, d.port); /* same port, same database */
	uint64_t t_back = mono_ns(), t_recovered = 0;
	errq_stats_t st;
	/* recovered: the circuit closed and the spool drained, while the load goes on */
	while (mono_ns() - t_back < (uint64_t)(after * 1e9) ||
	       (!t_recovered && mono_ns() - t_back < DEADLINE_MS * 1000000ull)) {
		sleep_ns(10000000);
		st = stats_of(c);
		if (!t_recovered && st.circuit_state == ERRQ_CIRCUIT_CLOSED && st.connected &&
		    st.spool_files == 0)
			t_recovered = mono_ns();
		if (getenv("ERRQ_BENCH_TRACE"))
			fprintf(stderr, "trace %.2f circuit %llu conn %llu pending %llu held %llu KiB "
				"spooled %llu files %llu replayed %llu acked %llu fails %llu\n",
				(double)(mono_ns() - t_back) / 1e9, (unsigned long long)st.circuit_state,
				(unsigned long long)st.connected, (unsigned long long)st.pending,
				(unsigned long long)st.pending_bytes / 1024,
				(unsigned long long)st.spooled, (unsigned long long)st.spool_files,
				(unsigned long long)st.spool_replayed, (unsigned long long)st.acked,
				(unsigned long long)st.stream_failures);
	}
	stop = 1;
	join_reporters(rs, opt_threads);
	int frc = errq_client_flush(c, DEADLINE_MS);
	st = stats_of(c);
	double recover_s = t_recovered ? (double)(t_recovered - t_back) / 1e9 : -1;
	long long stored = stored_events(d.addr, "bench-down");

	long attempts = 0, ok = 0, full = 0, other = 0;
	size_t n = 0, k = 0;
	for (int i = 0; i < opt_threads; i++) {
		attempts += rs[i].attempts;
		ok += rs[i].ok;
		full += rs[i].full;
		other += rs[i].other;
		n += rs[i].n_lat;
	}
	uint64_t *all = malloc((n ? n : 1) * sizeof(uint64_t));
	if (!all)
		die("out of memory");
	for (int i = 0; i < opt_threads; i++) {
		memcpy(all + k, rs[i].lat, rs[i].n_lat * sizeof(uint64_t));
		k += rs[i].n_lat;
		free(rs[i].lat);
	}
	qsort(all, n, sizeof(uint64_t), cmp_u64);
	long growth = smp.max_kib - rss_before;
	long budget_kib = (long)(opt_queue_bytes / 1024);
	printf("(c) collector down %.1f s under %.0f events/s (%d threads), queue budget %ld KiB, "
	       "spool %s:\n",
	       opt_down, opt_rate, opt_threads, budget_kib, opt_spool ? "on" : "off");
	printf("    RSS before %ld KiB, max while down %ld KiB: growth %ld KiB (budget + 1 MiB = "
	       "%ld KiB): %s\n",
	       rss_before, smp.max_kib, growth, budget_kib + 1024,
	       growth <= budget_kib + 1024 ? "within" : "OVER");
	printf("    while down: pending %llu events (%llu KiB), spooled %llu (%llu files), circuit "
	       "opens %llu, refused as queue full %llu\n",
	       (unsigned long long)s_down.pending, (unsigned long long)s_down.pending_bytes / 1024,
	       (unsigned long long)(s_down.spooled - s_before.spooled),
	       (unsigned long long)s_down.spool_files,
	       (unsigned long long)s_down.circuit_opens,
	       (unsigned long long)(s_down.dropped_queue_full - s_before.dropped_queue_full));
#define PCT(p) (n ? (double)all[(size_t)((double)(n - 1) * (p))] / 1000.0 : 0.0)
	printf("    errq_report() latency over the run: median %.3f us   p99 %.3f us   p99.9 %.1f us"
	       "   max %.1f us; reports that waited for a spill to the spool %llu\n",
	       PCT(0.5), PCT(0.99), PCT(0.999), n ? (double)all[n - 1] / 1000.0 : 0.0,
	       (unsigned long long)st.spill_waits);
#undef PCT
	free(all);
	printf("    accounting: reported %ld = accepted %ld + refused %ld (queue full %ld, other %ld)\n",
	       attempts, ok, full + other, full, other);
	printf("      accepted %llu = acked directly %llu + spooled %llu + lost %llu (nomem) + "
	       "pending %llu   [%s]\n",
	       (unsigned long long)st.queued, (unsigned long long)st.acked,
	       (unsigned long long)st.spooled, (unsigned long long)st.dropped_nomem,
	       (unsigned long long)st.pending,
	       st.queued == st.acked + st.spooled + st.dropped_nomem + st.pending ? "adds up"
										   : "DOES NOT ADD UP");
	printf("      spooled %llu = replayed after recovery %llu + dropped from the spool %llu + "
	       "still on disk (files %llu)   [%s]\n",
	       (unsigned long long)st.spooled, (unsigned long long)st.spool_replayed,
	       (unsigned long long)st.dropped_spool, (unsigned long long)st.spool_files,
	       st.spooled == st.spool_replayed + st.dropped_spool ? "adds up" : "check files");
	printf("      collector answers: accepted %llu + duplicates %llu + rejected %llu = acked + "
	       "replayed %llu; stored in errqd: %lld (flush %s)\n",
	       (unsigned long long)st.accepted, (unsigned long long)st.duplicates,
	       (unsigned long long)st.rejected,
	       (unsigned long long)(st.acked + st.spool_replayed), stored, errq_strerror(frc));
	printf("    recovery: circuit closed and spool drained %.2f s after errqd was back\n",
	       recover_s);
	unsigned long long refused = st.dropped_queue_full + st.dropped_too_big +
				     st.dropped_closed + st.dropped_invalid + st.dropped_forked;
	unsigned long long lost = st.dropped_spool + st.dropped_nomem;
	printf("      => every reported event is stored (%lld), refused at errq_report() and counted "
	       "(%llu), or dropped later and counted (%llu, spool limit + no memory): %lld + %llu + "
	       "%llu = %ld reported: %s\n",
	       stored, refused, lost, stored, refused, lost, attempts,
	       stored >= 0 && (unsigned long long)stored + refused + lost == (unsigned long long)attempts
		   ? "yes"
		   : "NO");
	errq_client_close(c, DEADLINE_MS);
	errqd_stop(&d, SIGTERM);
	rm_rf(d.dir);
	rm_rf(spool);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: errq-client-bench --errqd PATH [--part a|b|c|all] [--duration S] [--down S]\n"
		"                         [--rate N] [--threads N] [--queue-bytes N] [--no-spool]\n"
		"                         [--inflight N] [--batch N]   (client options; default: the library's)\n");
	exit(1);
}

int main(int argc, char **argv)
{
	const char *part = "all";
	static const struct option opts[] = {
	    {"errqd", required_argument, NULL, 'e'},   {"part", required_argument, NULL, 'p'},
	    {"duration", required_argument, NULL, 'd'}, {"down", required_argument, NULL, 'D'},
	    {"rate", required_argument, NULL, 'r'},    {"threads", required_argument, NULL, 't'},
	    {"queue-bytes", required_argument, NULL, 'q'}, {"no-spool", no_argument, NULL, 'n'},
	    {"inflight", required_argument, NULL, 'i'}, {"batch", required_argument, NULL, 'B'},
	    {NULL, 0, NULL, 0}};
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'e': errqd_path = optarg; break;
		case 'p': part = optarg; break;
		case 'd': opt_duration = atof(optarg); break;
		case 'D': opt_down = atof(optarg); break;
		case 'r': opt_rate = atof(optarg); break;
		case 't': opt_threads = atoi(optarg); break;
		case 'q': opt_queue_bytes = (size_t)strtoull(optarg, NULL, 10); break;
		case 'n': opt_spool = false; break;
		case 'i': opt_inflight = (unsigned)atoi(optarg); break;
		case 'B': opt_batch = (size_t)atoi(optarg); break;
		default: usage();
		}
	}
	if (!errqd_path || opt_duration <= 0 || opt_down < 0 || opt_rate <= 0 || opt_threads < 1 ||
	    opt_threads > MAX_THREADS)
		usage();
	signal(SIGPIPE, SIG_IGN);
	printf("errq-client-bench: liberrq %s, errqd %s\n", errq_version(), errqd_path);
	grpc_init(); /* for the Query API calls; liberrq has its own reference */
	if (!strcmp(part, "a") || !strcmp(part, "all"))
		part_a();
	if (!strcmp(part, "b") || !strcmp(part, "all"))
		part_b();
	if (!strcmp(part, "c") || !strcmp(part, "all"))
		part_c();
	grpc_shutdown();
	return 0;
}
