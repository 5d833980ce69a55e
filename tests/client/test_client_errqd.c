/* liberrq against the real collector (ERRQD_PATH, started by the integration harness with a
 * temporary database; its events read back through the Query API):
 *  - the collector is killed (SIGKILL) mid-stream and restarted on the same port and
 *    database: every reported event is stored exactly once;
 *  - the client closes while the collector is down, with a spool: nothing is lost, and the
 *    next client started on the spool delivers it once the collector is back;
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
 * the kernel's ephemeral range: nothing else can be given that port while it is down. */
static void collector_start(struct errqd_proc *d, bool restartable)
{
	if (restartable && !d->listen_port) {
		d->listen_port = harness_quiet_port();
		assert_true(d->listen_port > 0);
	}
	assert_int_equal(errqd_start(d, NULL), 0);
}

/* Counts the stored events of service by message "m<k>" into seen[k] (k < max) through
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

	int *seen = calloc(N, sizeof(int));
	assert_int_equal(stored_messages(d.addr, service, seen, N), N);
	for (int k = 0; k < N; k++)
		assert_int_equal(seen[k], 1); /* exactly once */
	free(seen);
	errqd_cleanup(&d);
}

static void test_close_with_collector_down_then_spool_delivers(void **state)
{
	enum { N = 300 };
	struct errqd_proc d = {0};
	char service[64], spool[64];
	errq_snprintf(service, sizeof(service), "spool-test-%d", (int)getpid());
	errq_snprintf(spool, sizeof(spool), "/tmp/errq-spool-XXXXXX");
	assert_non_null(mkdtemp(spool));
	collector_start(&d, true);
	errqd_stop(&d, SIGTERM); /* down: the port and the database stay */

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
	o = options_for(d.addr, service);
	errq_options_set_spool_dir(o, spool);
	c = errq_client_new(o);
	WAIT_STATS(c, st, st.spool_replayed == N && st.spool_files == 0);
	assert_int_equal(st.accepted, N);
	assert_int_equal(st.spool_corrupt, 0);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);

	int seen[N];
	assert_int_equal(stored_messages(d.addr, service, seen, N), N);
	for (int k = 0; k < N; k++)
		assert_int_equal(seen[k], 1);
	char cmd[128];
	errq_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", spool);
	assert_int_equal(system(cmd), 0);
	errqd_cleanup(&d);
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
	int *seen = calloc(THREADS * EACH, sizeof(int));
	assert_int_equal(stored_messages(d.addr, service, seen, THREADS * EACH), THREADS * EACH);
	for (int k = 0; k < THREADS * EACH; k++)
		assert_int_equal(seen[k], 1);
	free(seen);
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
	int seen[2 * FORKS];
	assert_int_equal(stored_messages(d.addr, service, seen, 2 * FORKS), 2 * FORKS);
	for (int k = 0; k < 2 * FORKS; k++)
		assert_int_equal(seen[k], 1);
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
	    cmocka_unit_test(test_eight_threads),
	    cmocka_unit_test(test_close_then_fork),
	    cmocka_unit_test(test_token),
	    cmocka_unit_test(test_quota_rejections_not_resent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
