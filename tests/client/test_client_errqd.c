/* liberrq against the real collector (ERRQD_PATH, started by the integration harness with a
 * temporary database; its events read back through the Query API):
 *  - the collector is killed (SIGKILL) mid-stream and restarted on the same port and
 *    database: every reported event is stored exactly once;
 *  - the client closes while the collector is down, with a spool: nothing is lost, and the
 *    next client started on the spool delivers it once the collector is back;
 *  - a client restarted on a spool full of files and closed at once delivers every spooled
 *    event before close returns; with the collector unreachable, close still returns within
 *    its timeout and leaves the files;
 *  - a burst far beyond the memory queue, with a spool: nothing refused while the spool has
 *    room, every event stored once; with the spool full too, the new reports are refused
 *    (ERRQ_EQUEUEFULL) and every accepted one is stored;
 *  - 8 threads report at once: every event stored once;
 *  - a process closes its client and forks, again and again: every child's new client
 *    delivers (the fork waits for gRPC to finish shutting down);
 *  - errq_options_set_token against a collector that requires credentials: the token's
 *    events are stored, a service it may not report is rejected (counted), and a client
 *    without a token gets its streams refused and nothing stored;
 *  - events over the collector's quota are counted in rejected_quota and not resent. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "client_int.h"
#include "errq/v1/query.pb-c.h"
#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "client_support.h"
#include "harness.h"
#include "errq_banned.h"

#define GENEROUS_MS 60000

/* Starts errqd through the integration harness (its child dies with the test).  A collector
 * that will be restarted on the address its clients already use listens on a port outside
 * the kernel's ephemeral range: nothing else can be given that port while it is down.  The
 * tests count their events through the Query API, each test's in one group, up to 50 000:
 * the per-group cap (events_per_group, 10 000 by default) must not delete any of them
 * meanwhile (it did, 1 000 rows a sweep step, under TSan's slowness). */
static void collector_start(struct errqd_proc *d, bool restartable)
{
	static const char *const args[] = {"--set", "events_per_group=1000000", NULL};
	if (restartable && !d->listen_port) {
		d->listen_port = harness_quiet_port();
		assert_true(d->listen_port > 0);
	}
	assert_int_equal(errqd_start(d, args), 0);
}

/* Counts the stored events of service by message "m<k>" (any one-letter prefix) into seen[k] (k < max) through
 * /errq.v1.Query/ListEvents, page by page.  Returns the number of events. */
static size_t stored_messages(const char *addr, const char *service, int *seen, int max)
{
	size_t total = 0;
	uint8_t cursor[256];
	size_t cursor_len = 0;
	memset(seen, 0, sizeof(int) * (size_t)max);
	grpc_channel *ch = errq_channel_new(addr);
	for (;;) {
		Errq__V1__ListEventsRequest req = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
		req.service = (char *)service;
		req.limit = 1000;
		req.cursor.data = cursor;
		req.cursor.len = cursor_len;
		struct errq_unary_result r;
		assert_int_equal(errq_unary_call(ch, "/errq.v1.Query/ListEvents", &req.base,
						 GENEROUS_MS, &r), 0);
		assert_int_equal(r.status, GRPC_STATUS_OK);
		assert_true(r.has_resp);
		Errq__V1__ListEventsResponse *resp = errq__v1__list_events_response__unpack(
		    NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
		errq_unary_result_free(&r);
		assert_non_null(resp);
		for (size_t i = 0; i < resp->n_events; i++) {
			int k = atoi(resp->events[i]->message + 1);
			assert_true(k >= 0 && k < max);
			seen[k]++;
			total++;
		}
		cursor_len = resp->next_cursor.len;
		assert_true(cursor_len <= sizeof(cursor));
		if (cursor_len)
			memcpy(cursor, resp->next_cursor.data, cursor_len);
		errq__v1__list_events_response__free_unpacked(resp, NULL);
		if (!cursor_len)
			break;
	}
	grpc_channel_destroy(ch);
	return total;
}



/* Asserts that errqd stored `expected` events of service with messages "m<k>" (any one-letter
 * prefix; k < max),
 * none twice, and every k when expected == max. */
static void assert_stored_once(const char *addr, const char *service, int max, int expected)
{
	int *seen = calloc((size_t)max, sizeof(int));
	assert_non_null(seen);
	size_t total = stored_messages(addr, service, seen, max);
	if (total != (size_t)expected) { /* say which, to tell a loss from a short read */
		int missing = 0, first = -1, last = -1;
		for (int k = 0; k < max; k++)
			if (!seen[k]) {
				missing++;
				first = first < 0 ? k : first;
				last = k;
			}
		print_message("stored %zu of %d: %d of m0..m%d missing, first m%d, last m%d\n",
			      total, expected, missing, max - 1, first, last);
	}
	assert_int_equal(total, expected);
	for (int k = 0; k < max; k++)
		assert_true(expected == max ? seen[k] == 1 : seen[k] <= 1);
	free(seen);
}

/* A new, empty spool directory (the caller removes it with rm_rf). */
static void spool_dir_new(char spool[64])
{
	errq_snprintf(spool, 64, "/tmp/errq-spool-XXXXXX");
	assert_non_null(mkdtemp(spool));
}

static void rm_rf(const char *dir)
{
	char cmd[128];
	errq_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* A service name of its own (prefix-PID), an empty spool directory, and a restartable errqd
 * that has been started once (its database exists) and is down now. */
static void spool_setup_down(struct errqd_proc *d, const char *prefix, char service[64],
			     char spool[64])
{
	errq_snprintf(service, 64, "%s-%d", prefix, (int)getpid());
	spool_dir_new(spool);
	collector_start(d, true);
	errqd_stop(d, SIGTERM); /* down: the port and the database stay */
}

static errq_options_t *options_for(const char *addr, const char *service)
{
	errq_options_t *o = errq_options_new();
	assert_int_equal(errq_options_set_collector(o, addr), ERRQ_OK);
	assert_int_equal(errq_options_set_service(o, service), ERRQ_OK);
	assert_int_equal(errq_options_set_reconnect_backoff(o, 10, 200), ERRQ_OK);
	assert_int_equal(errq_options_set_queue_capacity(o, 100000), ERRQ_OK);
	assert_int_equal(errq_options_set_linger_ms(o, 2), ERRQ_OK);
	return o;
}

/* A client of service on the spool directory, with the options above. */
static errq_client_t *spool_client(const char *addr, const char *service, const char *spool)
{
	errq_options_t *o = options_for(addr, service);
	assert_int_equal(errq_options_set_spool_dir(o, spool), ERRQ_OK);
	return errq_client_new(o);
}

struct paced {
	errq_client_t *c;
	int first, n;
	int failures;
};

/* Reports n events, about 10 a millisecond: long enough to be interrupted. */
static void *paced_reporter(void *p)
{
	struct paced *a = p;
	for (int i = a->first; i < a->first + a->n; i++) {
		if (errq_report_failure(a->c, "KillError", "KILL", "m%d", i) != ERRQ_OK)
			a->failures++;
		if (i % 10 == 9)
			client_msleep(1);
	}
	return NULL;
}

static void test_kill_collector_mid_stream(void **state)
{
	enum { N = 4000 };
	struct errqd_proc d = {0};
	char service[64];
	errq_snprintf(service, sizeof(service), "kill-test-%d", (int)getpid());
	collector_start(&d, true);
	errq_options_t *o = options_for(d.addr, service);
	errq_options_set_max_batch_events(o, 50);
	errq_client_t *c = errq_client_new(o);

	struct paced a = {.c = c, .first = 0, .n = N};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, paced_reporter, &a), 0);
	errq_stats_t st;
	WAIT_STATS(c, st, st.acked >= 500);
	errqd_stop(&d, SIGKILL); /* batches in flight: committed or not, unanswered */
	collector_start(&d, true); /* same port, same database */
	pthread_join(th, NULL);
	assert_int_equal(a.failures, 0);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	st = stats_of(c);
	assert_int_equal(st.queued, N);
	assert_int_equal(st.acked, N);
	assert_int_equal(st.accepted + st.duplicates, N);
	assert_int_equal(st.rejected, 0);
	assert_true(st.stream_failures >= 1);
	assert_true(st.reconnects >= 1);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);

	assert_stored_once(d.addr, service, N, N);
	errqd_cleanup(&d);
}

static void test_close_with_collector_down_then_spool_delivers(void **state)
{
	enum { N = 300 };
	struct errqd_proc d = {0};
	char service[64], spool[64];
	spool_setup_down(&d, "spool-test", service, spool);

	errq_options_t *o = options_for(d.addr, service);
	errq_options_set_spool_dir(o, spool);
	errq_options_set_max_batch_events(o, 64);
	errq_client_t *c = errq_client_new(o);
	for (int i = 0; i < N; i++)
		assert_int_equal(errq_report_failure(c, "DownError", NULL, "m%d", i), ERRQ_OK);
	errq_stats_t st;
	assert_int_equal(errq_client_close_stats(c, 300, &st), 0); /* nothing lost */
	assert_int_equal(st.spooled, N);
	assert_int_equal(st.acked, 0);

	collector_start(&d, true);
	c = spool_client(d.addr, service, spool);
	WAIT_STATS(c, st, st.spool_replayed == N && st.spool_files == 0);
	assert_int_equal(st.accepted, N);
	assert_int_equal(st.spool_corrupt, 0);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);

	assert_stored_once(d.addr, service, N, N);
	rm_rf(spool);
	errqd_cleanup(&d);
}

/* Spools n events ("m<first>".."m<first+n-1>") to dir through a client whose collector is
 * down: small batches, so that they make many files. */
static void spool_events(const char *addr, const char *service, const char *dir, int first, int n)
{
	errq_options_t *o = options_for(addr, service);
	errq_options_set_spool_dir(o, dir);
	assert_int_equal(errq_options_set_max_batch_bytes(o, ERRQ__BATCH_BYTES_MIN), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	for (int i = first; i < first + n; i++)
		assert_int_equal(errq_report_failure(c, "SpooledError", NULL, "m%d", i), ERRQ_OK);
	errq_stats_t st;
	assert_int_equal(errq_client_close_stats(c, 300, &st), 0); /* nothing lost */
	assert_int_equal(st.spooled, (uint64_t)n);
}

/* A process that restarts and closes at once must deliver its spool within close's timeout
 * (the issue: close returned after 22 ms and left 15 053 events on disk).  And when the
 * collector is unreachable, close still returns within its timeout and keeps the files. */
static void test_restart_and_close_at_once_drains_spool(void **state)
{
	enum { N = 20000 };
	struct errqd_proc d = {0};
	char service[64], spool[64];
	spool_setup_down(&d, "drain-test", service, spool);
	spool_events(d.addr, service, spool, 0, N);

	/* unreachable: close gives up within its timeout, the files stay */
	errq_client_t *c = spool_client(d.addr, service, spool);
	errq_stats_t st;
	WAIT_STATS(c, st, st.spool_files > 0);
	uint64_t files = st.spool_files;
	assert_true(files >= 10);
	uint64_t t0 = errq_mono_ns();
	assert_int_equal(errq_client_close_stats(c, 1000, &st), 0);
	uint64_t close_ms = (errq_mono_ns() - t0) / ERRQ_NS_PER_MS;
	print_message("close with the collector down: %llu ms (timeout 1000), %llu files kept\n",
		      (unsigned long long)close_ms, (unsigned long long)st.spool_files);
	assert_true(close_ms < 10000); /* 10x the timeout: it gave up, it did not hang */
	assert_int_equal(st.spool_files, files);
	assert_int_equal(st.spool_replayed, 0);

	/* reachable: a client restarted on the directory and closed at once delivers it all */
	collector_start(&d, true);
	c = spool_client(d.addr, service, spool);
	t0 = errq_mono_ns();
	size_t lost = errq_client_close_stats(c, GENEROUS_MS, &st);
	close_ms = (errq_mono_ns() - t0) / ERRQ_NS_PER_MS;
	print_message("restart and close at once: %llu ms, %llu of %d spooled events replayed, "
		      "%llu files left\n", (unsigned long long)close_ms,
		      (unsigned long long)st.spool_replayed, N, (unsigned long long)st.spool_files);
	assert_int_equal(lost, 0);
	assert_int_equal(st.spool_replayed, N);
	assert_int_equal(st.spool_files, 0);
	assert_int_equal(st.spool_corrupt, 0);

	assert_stored_once(d.addr, service, N, N);
	rm_rf(spool);
	errqd_cleanup(&d);
}

/* Reports n events as fast as it can; counts the refusals by code. */
static void burst(errq_client_t *c, int first, int n, int *ok, int *full)
{
	*ok = *full = 0;
	for (int i = first; i < first + n; i++) {
		int rc = errq_report_failure(c, "BurstError", "BURST", "m%d", i);
		if (rc == ERRQ_OK)
			(*ok)++;
		else if (rc == ERRQ_EQUEUEFULL)
			(*full)++;
		else
			fail_msg("errq_report_failure: %s", errq_strerror(rc));
	}
}

#define BURST_CAPACITY 1000

/* A client on spool for a burst into a queue of BURST_CAPACITY; spool_max != 0: a spool of
 * that size, and a circuit that stays closed (its writes never delete files). */
static errq_client_t *burst_client(const char *addr, const char *service, const char *spool,
				   uint64_t spool_max)
{
	errq_options_t *o = options_for(addr, service);
	assert_int_equal(errq_options_set_queue_capacity(o, BURST_CAPACITY), ERRQ_OK);
	assert_int_equal(errq_options_set_spool_dir(o, spool), ERRQ_OK);
	/* no refusal while the spool has room: a spill must not time out on a loaded machine */
	assert_int_equal(errq_options_set_spill_wait(o, ERRQ__SPILL_WAIT_MS_MAX), ERRQ_OK);
	if (spool_max) {
		assert_int_equal(errq_options_set_circuit_threshold(o, 1000), ERRQ_OK);
		assert_int_equal(errq_options_set_spool_max_bytes(o, spool_max), ERRQ_OK);
	}
	return errq_client_new(o);
}

/* Closes c with the collector up: nothing lost, the spool delivered, none of it deleted, and
 * errqd holds the `accepted` events of the burst once each.  Then removes spool and errqd. */
static void close_burst(errq_client_t *c, struct errqd_proc *d, const char *service,
			const char *spool, int n, int accepted)
{
	errq_stats_t st;
	assert_int_equal(errq_client_close_stats(c, GENEROUS_MS, &st), 0);
	print_message("closed: acked %llu + replayed %llu = accepted %llu + duplicates %llu + "
		      "rejected %llu\n", (unsigned long long)st.acked,
		      (unsigned long long)st.spool_replayed, (unsigned long long)st.accepted,
		      (unsigned long long)st.duplicates, (unsigned long long)st.rejected);
	assert_int_equal(st.spool_files, 0);
	assert_int_equal(st.acked + st.spool_replayed, (uint64_t)accepted);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.dropped_spool, 0);
	assert_stored_once(d->addr, service, n, accepted);
	rm_rf(spool);
	errqd_cleanup(d);
}

/* A burst far beyond the memory queue with a spool: the overflow goes to disk, nothing is
 * refused while the spool has room (the issue: 21 573 of 50 000 refused), and every event is
 * stored once. */
static void test_burst_spills_to_spool(void **state)
{
	enum { N = 50000 };
	struct errqd_proc d = {0};
	char service[64], spool[64];
	errq_snprintf(service, sizeof(service), "burst-test-%d", (int)getpid());
	spool_dir_new(spool);
	collector_start(&d, false);
	errq_client_t *c = burst_client(d.addr, service, spool, 0);
	int ok, full;
	burst(c, 0, N, &ok, &full);
	errq_stats_t st = stats_of(c);
	print_message("burst of %d into a queue of %d: %d accepted, %d refused, %llu to disk "
		      "(%llu reports waited for a spill)\n", N, BURST_CAPACITY, ok, full,
		      (unsigned long long)st.spooled, (unsigned long long)st.spill_waits);
	assert_int_equal(full, 0);
	assert_int_equal(st.dropped_queue_full, 0);
	assert_true(st.spooled > 0);
	assert_true(st.pending <= BURST_CAPACITY);
	close_burst(c, &d, service, spool, N, N);
}

/* The same burst with the collector down and a small spool: once the spool is full too, new
 * reports are refused with ERRQ_EQUEUEFULL (no spooled file is deleted for them), and every
 * accepted event is stored once the collector is back. */
static void test_burst_spool_full_refuses(void **state)
{
	enum { N = 20000, SPOOL = 256 * 1024 };
	struct errqd_proc d = {0};
	char service[64], spool[64];
	spool_setup_down(&d, "full-test", service, spool);
	errq_client_t *c = burst_client(d.addr, service, spool, SPOOL);
	int ok, full;
	burst(c, 0, N, &ok, &full);
	errq_stats_t st = stats_of(c);
	print_message("burst of %d, collector down, spool of 256 KiB: %d accepted, %d refused, "
		      "%llu to disk\n", N, ok, full, (unsigned long long)st.spooled);
	assert_true(full > 0);
	assert_int_equal(st.dropped_queue_full, (uint64_t)full);
	assert_true(st.spooled > 0);
	assert_int_equal(st.dropped_spool, 0);
	assert_true(st.spool_bytes <= SPOOL);
	collector_start(&d, true);
	close_burst(c, &d, service, spool, N, ok);
}

static void test_eight_threads(void **state)
{
	enum { THREADS = 8, EACH = 400 };
	struct errqd_proc d = {0};
	char service[64];
	errq_snprintf(service, sizeof(service), "threads-test-%d", (int)getpid());
	collector_start(&d, false);
	errq_client_t *c = errq_client_new(options_for(d.addr, service));
	pthread_t th[THREADS];
	struct paced a[THREADS];
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct paced){.c = c, .first = i * EACH, .n = EACH};
		assert_int_equal(pthread_create(&th[i], NULL, paced_reporter, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.acked, THREADS * EACH);
	assert_int_equal(st.accepted, THREADS * EACH);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	assert_stored_once(d.addr, service, THREADS * EACH, THREADS * EACH);
	errqd_cleanup(&d);
}

/* Ends a forked child: by exec'ing a trivial program when it succeeded (under valgrind the
 * child would otherwise be leak-checked for what gRPC's threads owned in the parent). */
static void child_exit(int code)
{
	if (code == 0)
		execl("/bin/true", "true", (char *)NULL);
	_exit(code);
}

/* Waits for a child, killing it when it has not exited in time.  Its exit status, or -1. */
static int wait_child(pid_t pid)
{
	int st;
	for (uint64_t t0 = errq_mono_ns(); errq_mono_ns() - t0 < GENEROUS_MS * ERRQ_NS_PER_MS;) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		client_msleep(2);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* Close, then fork, FORKS times (what the Python package does around os.fork()): gRPC ends
 * a closed client's channel on its own threads, after errq_client_close() returned; a child
 * forked before that finished inherited a gRPC that counted itself initialized and had no
 * threads, and its new client queued and never sent (about 1 fork in 70 here).  Every child
 * must deliver. */
static void test_close_then_fork(void **state)
{
	enum { FORKS = 150 };
#if defined(__SANITIZE_ADDRESS__)
	/* GCC 12's ASan allocator has no fork handler: a child forked while another thread
	 * allocates (gRPC's threads on their way out) can inherit that lock held and hang, which
	 * made 1 child in 150 fail now and then under ASan and load (seen 3 times in the suite
	 * runs of 2026-12-06) whatever pause came before the fork.  glibc's malloc locks its arenas
	 * across fork(): the plain build and valgrind (make test-long) run this test. */
	skip();
#endif
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer's runtime is not fork-safe in a process with threads either (its own
	 * allocator and shadow-memory locks): under make test-tsan 1 child in 150 failed
	 * (integration_pg_client_errqd, 2026-12-07), in a run where the plain build's passed. */
	skip();
#endif
	struct errqd_proc d = {0};
	char service[64];
	errq_snprintf(service, sizeof(service), "fork-test-%d", (int)getpid());
	collector_start(&d, false);
	int failed_children = 0;
	for (int k = 0; k < FORKS; k++) {
		errq_client_t *c = errq_client_new(options_for(d.addr, service));
		assert_int_equal(errq_report_failure(c, "ParentError", NULL, "p%d", k), ERRQ_OK);
		assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
		assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			errq_client_t *kc = errq_client_new(options_for(d.addr, service));
			int ok = kc &&
				 errq_report_failure(kc, "ChildError", NULL, "c%d", FORKS + k) == ERRQ_OK &&
				 errq_client_flush(kc, 10000) == ERRQ_OK; /* ms, against ~10 needed */
			ok = errq_client_close(kc, 1000) == 0 && ok;
			child_exit(ok ? 0 : 1);
		}
		if (wait_child(pid) != 0)
			failed_children++;
	}
	assert_int_equal(failed_children, 0);
	assert_stored_once(d.addr, service, 2 * FORKS, 2 * FORKS);
	assert_int_equal(errqd_stop(&d, SIGTERM), 0);
	errqd_cleanup(&d);
}

/* Events of service stored, read with a bearer token (the collector checks it). */
static size_t stored_with_token(const char *addr, const char *token, const char *service)
{
	char authz[128];
	errq_snprintf(authz, sizeof(authz), "Bearer %s", token);
	grpc_metadata md = {.key = grpc_slice_from_static_string("authorization"),
			    .value = grpc_slice_from_copied_string(authz)};
	grpc_channel *ch = errq_channel_new(addr);
	Errq__V1__ListEventsRequest req = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	req.service = (char *)service;
	req.limit = 1000;
	struct errq_unary_result r;
	assert_int_equal(errq_unary_call_md(ch, "/errq.v1.Query/ListEvents", &req.base, GENEROUS_MS, &md, 1, &r), 0);
	assert_int_equal(r.status, GRPC_STATUS_OK);
	Errq__V1__ListEventsResponse *resp =
	    errq__v1__list_events_response__unpack(NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
	assert_non_null(resp);
	size_t n = resp->n_events;
	errq__v1__list_events_response__free_unpacked(resp, NULL);
	errq_unary_result_free(&r);
	grpc_slice_unref(md.value);
	grpc_channel_destroy(ch);
	return n;
}

/* The token of `errq token new ARGS` into token, its entry appended to entries. */
static void token_new(const char *const *argv, char *token, size_t tsz, char *entries, size_t esz)
{
	char *out = NULL;
	assert_int_equal(run_capture(argv, "127.0.0.1:1", &out, NULL), 0);
	char *t = strstr(out, "token: "), *e = strstr(out, "  - name: ");
	assert_true(t && e);
	t += strlen("token: ");
	errq_snprintf(token, tsz, "%.*s", (int)strcspn(t, "\n"), t);
	size_t used = strlen(entries);
	errq_snprintf(entries + used, esz - used, "%s", e);
	free(out);
}

static void test_token(void **state)
{
	(void)state;
	struct errqd_proc d = {0};
	char ingest[128], reader[128], cfg[2048] = "credentials:\n", path[400];
	token_new((const char *const[]){ERRQ_CLI_PATH, "token", "new", "--role", "ingest", "--service", "lib-ok*", NULL},
		  ingest, sizeof(ingest), cfg, sizeof(cfg));
	token_new((const char *const[]){ERRQ_CLI_PATH, "token", "new", "--role", "read", NULL}, reader, sizeof(reader),
		  cfg, sizeof(cfg));
	errq_snprintf(d.dir, sizeof(d.dir), "/tmp/errq-client-token-XXXXXX");
	assert_non_null(mkdtemp(d.dir));
	errq_snprintf(path, sizeof(path), "%s/errqd.yaml", d.dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(cfg, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(errqd_start(&d, (const char *const[]){"--config", path, NULL}), 0);

	/* with the token: stored; a service the token may not report: rejected alone */
	errq_options_t *o = options_for(d.addr, "lib-ok-checkout");
	assert_int_equal(errq_options_set_token(o, ingest), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	assert_non_null(c);
	for (int i = 0; i < 5; i++)
		assert_int_equal(errq_report_failure(c, "TokenError", NULL, "m%d", i), ERRQ_OK);
	assert_int_equal(errq_report(c, errq_event_new("lib-forbidden", "OtherServiceError", "not ours")), ERRQ_OK);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st;
	errq_client_stats(c, &st);
	assert_int_equal(st.acked, 6);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	assert_int_equal(stored_with_token(d.addr, reader, "lib-ok-checkout"), 5);
	assert_int_equal(stored_with_token(d.addr, reader, "lib-forbidden"), 0);

	/* without it: the collector refuses the stream, the client retries, nothing is stored */
	c = errq_client_new(options_for(d.addr, "lib-ok-untokened"));
	assert_int_equal(errq_report_failure(c, "TokenError", NULL, "x"), ERRQ_OK);
	WAIT_FOR((errq_client_stats(c, &st), st.stream_failures >= 2));
	assert_int_equal(st.acked, 0);
	assert_int_equal(st.pending, 1);
	errq_client_close(c, 100); /* its event is lost at close: nobody would take it */
	assert_int_equal(stored_with_token(d.addr, reader, "lib-ok-untokened"), 0);
	assert_int_equal(errqd_stop(&d, SIGTERM), 0);
	errqd_cleanup(&d);
}

/* Events over the collector's quota come back as quota_exceeded: liberrq counts them in
 * rejected_quota and does not resend them (the collector counted them already), so each of
 * the service's events is counted exactly once in its group, stored or not. */
static void test_quota_rejections_not_resent(void **state)
{
	enum { N = 30 };
	struct errqd_proc d = {0};
	const char *args[] = {"--set", "quota.service_events_per_second=1", "--set", "quota.service_burst=5", NULL};
	assert_int_equal(errqd_start(&d, args), 0);
	char service[64];
	errq_snprintf(service, sizeof(service), "quota-test-%d", (int)getpid());
	errq_client_t *c = errq_client_new(options_for(d.addr, service));
	assert_non_null(c);
	for (int i = 0; i < N; i++)
		assert_int_equal(errq_report_failure(c, "StormError", NULL, "m%d", i), ERRQ_OK);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.acked, N);
	assert_int_equal(st.rejected, st.rejected_quota);
	assert_int_equal(st.accepted + st.rejected_quota, N);
	/* a bucket of 5 refilled at 1/s: the 30 arrive within seconds, so most are refused */
	assert_true(st.accepted >= 5 && st.rejected_quota > 0);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	int seen[N];
	assert_int_equal(stored_messages(d.addr, service, seen, N), st.accepted);
	/* summed over the service's groups (the messages may group apart) */
	Errq__V1__ListGroupsResponse *g = query_groups(d.addr, 1000);
	assert_non_null(g);
	uint64_t total = 0, dropped = 0;
	for (size_t i = 0; i < g->n_groups; i++)
		if (!strcmp(g->groups[i]->service, service)) {
			total += g->groups[i]->total;
			dropped += g->groups[i]->dropped;
		}
	errq__v1__list_groups_response__free_unpacked(g, NULL);
	assert_int_equal(total, N); /* each counted once: nothing was resent */
	assert_int_equal(dropped, st.rejected_quota);
	assert_int_equal(errqd_stop(&d, SIGTERM), 0);
	errqd_cleanup(&d);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill_collector_mid_stream),
	    cmocka_unit_test(test_close_with_collector_down_then_spool_delivers),
	    cmocka_unit_test(test_restart_and_close_at_once_drains_spool),
	    cmocka_unit_test(test_burst_spills_to_spool),
	    cmocka_unit_test(test_burst_spool_full_refuses),
	    cmocka_unit_test(test_eight_threads),
	    cmocka_unit_test(test_close_then_fork),
	    cmocka_unit_test(test_token),
	    cmocka_unit_test(test_quota_rejections_not_resent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
