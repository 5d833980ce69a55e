/* Integration: errqd's HTTP listener — probes, routes, limits, /metrics (checked by promtool)
 * and readiness when the database cannot be written, against a real errqd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "grpc/health/v1/health.pb-c.h"
#include "harness.h"

static struct errqd_proc D;
static struct errq_idgen G;

static int setup(void **state)
{
	grpc_init();
	errq_idgen_init(&G);
	memset(&D, 0, sizeof(D));
	if (errqd_start(&D, NULL))
		return -1;
	return D.http_port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
	int st = errqd_stop(&D, SIGTERM);
	errqd_cleanup(&D);
	grpc_shutdown_blocking();
	return st == 0 ? 0 : -1;
}

static int get(const char *path, char **body)
{
	int status = 0;
	assert_int_equal(http_request(D.http_port, "GET", path, NULL, &status, NULL, body), 0);
	return status;
}

/* The value of one series ("name" or "name{labels}") in a scrape; fails when absent. */
static double series(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	}
	fail_msg("series '%s' is not in the scrape", name);
	return 0;
}

static char *scrape(void)
{
	char *body = NULL, *headers = NULL;
	int status = 0;
	assert_int_equal(http_request(D.http_port, "GET", "/metrics", NULL, &status, &headers, &body), 0);
	assert_int_equal(status, 200);
	assert_non_null(strstr(headers, "Content-Type: text/plain; version=0.0.4"));
	free(headers);
	return body;
}

/* promtool check metrics on a scrape (Debian's prometheus package, from install-deps). */
static void promtool_accepts(const char *text)
{
	char path[400], cmd[512];
	errq_snprintf(path, sizeof(path), "%s/scrape.txt", D.dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	errq_snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s'", path);
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	char *out = NULL, *err = NULL;
	int rc = run_capture(argv, D.addr, &out, &err);
	if (rc != 0)
		fail_msg("promtool check metrics: exit %d\n%s%s", rc, out ? out : "", err ? err : "");
	free(out);
	free(err);
}

static int grpc_health(const char *service)
{
	grpc_status_code cs;
	int st = health_check(D.addr, service, &cs);
	assert_int_equal(cs, GRPC_STATUS_OK);
	return st;
}

static Errq__V1__ReportRequest *req_new(uint64_t seq, size_t n, const char *service)
{
	return treq_new(&G, seq, n, service, "TimeoutError", "upstream timed out");
}

static void test_probes_and_routes(void **state)
{
	char *body = NULL, *headers = NULL;
	assert_int_equal(get("/livez", &body), 200);
	assert_string_equal(body, "{\"status\":\"live\"}\n");
	free(body);
	assert_int_equal(get("/readyz", &body), 200);
	assert_string_equal(body, "{\"status\":\"ready\"}\n");
	free(body);
	assert_int_equal(get("/healthz", &body), 200);
	assert_string_equal(body, "{\"status\":\"ready\"}\n");
	free(body);
	assert_int_equal(get("/readyz?verbose=1", &body), 200); /* a query string changes nothing */
	free(body);
	assert_int_equal(get("/", &body), 404);
	free(body);
	assert_int_equal(get("/metrics/x", &body), 404);
	free(body);

	int status = 0;
	assert_int_equal(http_request(D.http_port, "POST", "/metrics", "Content-Length: 0\r\n", &status, &headers, NULL), 0);
	assert_int_equal(status, 405);
	assert_non_null(strstr(headers, "Allow: GET, HEAD"));
	free(headers);
	assert_int_equal(http_request(D.http_port, "DELETE", "/livez", NULL, &status, NULL, NULL), 0);
	assert_int_equal(status, 405);
	assert_int_equal(http_request(D.http_port, "HEAD", "/livez", NULL, &status, NULL, &body), 0);
	assert_int_equal(status, 200);
	assert_string_equal(body, ""); /* HEAD: headers only */
	free(body);

	/* a request whose headers are larger than a connection may hold: refused, and errqd
	 * goes on serving */
	size_t big = 64 * 1024;
	char *hdr = malloc(big + 32);
	memcpy(hdr, "X-Big: ", 7);
	memset(hdr + 7, 'a', big);
	memcpy(hdr + 7 + big, "\r\n", 3);
	int rc = http_request(D.http_port, "GET", "/livez", hdr, &status, NULL, NULL);
	free(hdr);
	assert_true(rc != 0 || (status >= 400 && status < 500)); /* 413/431, or closed unanswered */
	assert_int_equal(get("/livez", &body), 200);
	free(body);
}

static void test_metrics_move_with_load(void **state)
{
	char *before = scrape();
	promtool_accepts(before);
	double rx0 = series(before, "errq_events_received_total");
	double acc0 = series(before, "errq_events_accepted_total");
	double dup0 = series(before, "errq_events_duplicate_total");
	double rej0 = series(before, "errq_events_rejected_total{reason=\"missing_service\"}");
	double commits0 = series(before, "errq_commits_total");
	double hist0 = series(before, "errq_commit_duration_seconds_count");
	double miss0 = series(before, "errq_group_cache_misses_total");
	double gen0 = series(before, "errq_aggregate_generations_total");
	assert_int_equal((int)series(before, "errq_ready"), 1);
	assert_true(series(before, "errq_ingest_queue_capacity_batches") > 0);
	assert_true(series(before, "errq_process_resident_memory_bytes") > 0);
	assert_true(series(before, "errq_process_open_fds") > 0);
	char info[256];
	errq_snprintf(info, sizeof(info),
		      "errq_build_info{version=\"" ERRQ_VERSION_STRING "\",name=\"errqd\",storage=\"%s\",durability=\"%s\"} 1\n",
		      harness_storage_name(), harness_durability_name());
	if (!strstr(before, info))
		fail_msg("no %s in /metrics", info);

	/* 20 events, one without a service (rejected alone), then the first 5 again (duplicates) */
	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	Errq__V1__ReportRequest *r = req_new(1, 20, "metrics-svc");
	tevent_set(&r->failures[7]->service, "");
	Errq__V1__ReportResponse *resp = NULL;
	assert_int_equal(raw_send(&s, r), 0);
	assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(resp->accepted, 19);
	errq__v1__report_response__free_unpacked(resp, NULL);
	r->seq = 2;
	r->n_failures = 5;
	assert_int_equal(raw_send(&s, r), 0);
	assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(resp->duplicates, 5);
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
	r->n_failures = 20;
	treq_free(r);

	char *after = scrape();
	promtool_accepts(after);
	assert_int_equal((int)(series(after, "errq_events_received_total") - rx0), 25);
	assert_int_equal((int)(series(after, "errq_events_accepted_total") - acc0), 19);
	assert_int_equal((int)(series(after, "errq_events_duplicate_total") - dup0), 5);
	assert_int_equal((int)(series(after, "errq_events_rejected_total{reason=\"missing_service\"}") - rej0), 1);
	assert_true(series(after, "errq_commits_total") >= commits0 + 2);
	assert_true(series(after, "errq_commit_duration_seconds_count") >= hist0 + 2);
	/* the new groups were looked up (the resent five were cached); their counts were written
	 * with the commit that emptied the queue, as a generation of their own (the duplicates'
	 * commit counted nothing) */
	assert_true(series(after, "errq_group_cache_misses_total") >= miss0 + 1);
	if (harness_backend() == HARNESS_SQLITE)
		assert_true(series(after, "errq_aggregate_generations_total") >= gen0 + 1);
	else /* PostgreSQL writes the counts in the events' transaction: nothing is deferred */
		assert_true(series(after, "errq_aggregate_generations_total") == 0);
	assert_true(series(after, "errq_commit_events_bucket{le=\"+Inf\"}") >= 2);
	assert_true(series(after, "errq_database_bytes") > 0);
	assert_true(series(after, "errq_circuits{state=\"closed\"}") >= 0);
	free(before);
	free(after);
}

static bool wait_ready(int want_status, char **body)
{
	for (uint64_t t0 = errq_mono_ns(); errq_mono_ns() - t0 < HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;) {
		int st = get("/readyz", body);
		if (st == want_status)
			return true;
		free(*body);
		*body = NULL;
		usleep(50 * 1000);
	}
	return false;
}

/* The database cannot be written (SQLite: a file size limit of one byte on errqd, every write
 * fails with EFBIG; PostgreSQL: PG_UNWRITABLE): /readyz and gRPC health turn unready with the reason while /livez stays 200,
 * nothing is acknowledged meanwhile (the batch is given back: its stream ends UNAVAILABLE
 * with the reason, docs/operations.md "Disk full"), and a resend is stored once the limit
 * is lifted. */
/* PostgreSQL: a trigger refuses every insert into events as a revoked privilege would
 * (SQLSTATE 42501, which the backend classes unwritable), until it is dropped.  (Not 25006,
 * read_only_sql_transaction: a writer meeting it is on a demoted primary, UNAVAILABLE, and
 * reconnects: test_storage_pg's test_read_only_after_failover.) */
static const char *const PG_UNWRITABLE[] = {
    "CREATE FUNCTION itest_read_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'itest: no privilege' USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER itest_read_only BEFORE INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION itest_read_only()",
    NULL};
static const char *const PG_WRITABLE[] = {"DROP TRIGGER itest_read_only ON events", NULL};

/* The database becomes unwritable (unwritable true) or writable again. */
static void set_unwritable(bool unwritable, struct rlimit *old)
{
	if (harness_backend() == HARNESS_POSTGRES) {
		struct harness_db *h = harness_db_open(D.db);
		assert_non_null(h);
		for (const char *const *q = unwritable ? PG_UNWRITABLE : PG_WRITABLE; *q; q++)
			assert_int_equal(harness_db_exec(h, *q), 0);
		harness_db_close(h);
		return;
	}
	if (!unwritable) {
		assert_int_equal(prlimit(D.pid, RLIMIT_FSIZE, old, NULL), 0);
		return;
	}
	struct rlimit tiny;
	assert_int_equal(prlimit(D.pid, RLIMIT_FSIZE, NULL, old), 0);
	tiny = *old;
	tiny.rlim_cur = 1;
	assert_int_equal(prlimit(D.pid, RLIMIT_FSIZE, &tiny, NULL), 0);
}

static void test_readyz_follows_an_unwritable_database(void **state)
{
	struct rlimit old;
	set_unwritable(true, &old);

	struct rawstream s;
	assert_int_equal(raw_open(&s, D.addr), 0);
	Errq__V1__ReportRequest *r = req_new(1, 5, "unwritable-svc");
	assert_int_equal(raw_send(&s, r), 0);

	char *body = NULL;
	assert_true(wait_ready(503, &body));
	if (!strstr(body, "\"status\":\"not_ready\"") || !strstr(body, "database unwritable"))
		fail_msg("/readyz: %s", body);
	free(body);
	assert_int_equal(get("/livez", &body), 200); /* never a reason to restart */
	free(body);
	assert_int_equal(grpc_health(""), GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	assert_int_equal(grpc_health("errq.v1.Collector"),
			 GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	char *m = scrape();
	assert_int_equal((int)series(m, "errq_ready"), 0);
	assert_true(series(m, "errq_store_errors_total") > 0);
	free(m);
	Errq__V1__ReportResponse *resp = NULL;
	char det[512];
	assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 1); /* ended, not acknowledged */
	assert_int_equal(raw_finish(&s, det, sizeof(det)), GRPC_STATUS_UNAVAILABLE);
	if (!strstr(det, "database unwritable"))
		fail_msg("UNAVAILABLE without the reason: %s", det);
	raw_free(&s);

	set_unwritable(false, &old);
	assert_int_equal(raw_open(&s, D.addr), 0); /* the client resends */
	assert_int_equal(raw_send(&s, r), 0);
	assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(resp->accepted, 5);
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_true(wait_ready(200, &body));
	free(body);
	assert_int_equal(grpc_health("errq.v1.Collector"), GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
	treq_free(r);
}

static int connect_http(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)D.http_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* True when the server closes fd (EOF or reset) within timeout_ms, having sent nothing. */
static bool closed_by_server(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, timeout_ms) != 1)
		return false;
	char c;
	return recv(fd, &c, 1, 0) <= 0;
}

/* At most HTTP_MAX_PER_IP (32) connections from one address: the next is closed at once,
 * and a probe gets through again when one closes.  docs/operations.md promises the number. */
static void test_connections_per_address_bounded(void **state)
{
	enum { PER_IP = 32 }; /* docs/operations.md, "Health and metrics" */
	int fds[PER_IP];
	for (int i = 0; i < PER_IP; i++)
		fds[i] = connect_http();
	/* each is accepted and held open (idle, not yet timed out) */
	for (int i = 0; i < PER_IP; i++)
		assert_false(closed_by_server(fds[i], 0));
	int extra = connect_http(); /* the kernel accepts; errqd closes it unanswered */
	assert_true(closed_by_server(extra, HARNESS_DEADLINE_MS));
	close(extra);
	close(fds[0]);
	char *body = NULL;
	int status = 0;
	for (uint64_t t0 = errq_mono_ns(); errq_mono_ns() - t0 < HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;) {
		if (http_request(D.http_port, "GET", "/livez", NULL, &status, NULL, &body) == 0 && status == 200)
			break;
		usleep(20 * 1000); /* until errqd has seen the close */
	}
	assert_int_equal(status, 200);
	free(body);
	for (int i = 1; i < PER_IP; i++)
		close(fds[i]);
}

/* An idle connection is closed after 10 s (HTTP_TIMEOUT_S; docs/operations.md), not kept. */
static void test_idle_connection_closed(void **state)
{
	int fd = connect_http();
	uint64_t t0 = errq_mono_ns();
	assert_true(closed_by_server(fd, HARNESS_DEADLINE_MS));
	uint64_t waited = errq_mono_ns() - t0;
	assert_true(waited >= 9 * ERRQ_NS_PER_SEC); /* not at once: after the idle timeout */
	close(fd);
}

/* A second collector on an HTTP port that the first holds refuses to start. */
static void test_second_collector_on_the_http_port_refused(void **state)
{
	char port[32], db[400];
	errq_snprintf(port, sizeof(port), "127.0.0.1:%d", D.http_port);
	errq_snprintf(db, sizeof(db), "%s/other.db", D.dir);
	const char *args[] = {"--listen", "127.0.0.1:0", "--http-listen", port, "--db", db, NULL};
	char *err = NULL;
	int rc = errqd_run_once(args, &err);
	assert_int_equal(rc, 1); /* a refusal, never a crash */
	assert_non_null(strstr(err, "Address already in use"));
	free(err);
	char *body = NULL;
	assert_int_equal(get("/livez", &body), 200); /* the first one is untouched */
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probes_and_routes),
	    cmocka_unit_test(test_metrics_move_with_load),
	    cmocka_unit_test(test_readyz_follows_an_unwritable_database),
	    cmocka_unit_test(test_second_collector_on_the_http_port_refused),
	    cmocka_unit_test(test_connections_per_address_bounded),
	    cmocka_unit_test(test_idle_connection_closed),
	};
	return cmocka_run_group_tests_name("integration_http", tests, setup, teardown);
}
