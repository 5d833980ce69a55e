/* test_fleet.c: three collectors on one PostgreSQL database (issue 17; server/fleet.h,
 * server/alerts_fleet.c, docs/scale-out.md).  Real errqd processes, real gRPC, one database on
 * the private server of the fixture `pg`, a real webhook receiver.
 *
 * test_three_collectors: failures streamed to all three are counted exactly; a circuit whose
 * threshold only the sum of all three reaches trips once and fires one alert; SIGKILL of the
 * leader moves leadership to another collector (the time it took is printed); the circuit
 * still resolves, once; the receiver gets every notice exactly once.
 *
 * test_fenced_leader: the leader's lock session is ended under it (pg_terminate_backend: what
 * a network cut between it and the database does) while the process lives on; another
 * collector takes over, the old one stops evaluating (its failures become increments the new
 * leader counts), and no transition is written twice.
 *
 * test_partitioned_leader_fenced: the same cut, but the old leader cannot see it: its lock
 * session goes through a relay (tcp_proxy.h) frozen before the session is ended, so its
 * fleet thread hears nothing while another collector takes over.  Only the epoch check of its
 * writer (the fence) stops it: the failures it receives then must reach the new leader, and
 * the circuit trips once, from the sum of what both received. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <grpc/grpc.h>
#include <jansson.h>

#include "errq_id.h"
#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"
#include "http_receiver.h"
#include "pg_support.h"
#include "tcp_proxy.h"

#define N 3
#define PER_REPLICA 10 /* failures each collector receives; the rule trips at N * PER_REPLICA */

static struct errqd_proc D[N];
static struct pg_test_db DB;
static struct http_receiver RV;
static struct errq_idgen G;
static PGconn *C;
static struct tcp_proxy PX; /* test_partitioned_leader_fenced: collector 0's way to the database */
static struct pg_test_db DBPX; /* DB, reached through PX */
static int FROZEN; /* PX's frozen connection (its upstream port), or 0 */

static int64_t q(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t q(const char *fmt, ...)
{
	char sql[1024], err[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	int64_t v = -1;
	if (pg_test_int(C, sql, &v, err, sizeof(err)))
		return -1;
	return v;
}

static int setup(void **state)
{
	(void)state;
	char err[512];
	grpc_init();
	errq_idgen_init(&G);
	memset(D, 0, sizeof(D));
	if (pg_test_db_create(&DB, "fleet", err, sizeof(err)) || !(C = pg_test_connect(&DB, err, sizeof(err)))) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	memset(&RV, 0, sizeof(RV));
	memset(&PX, 0, sizeof(PX)); /* started by test_partitioned_leader_fenced only */
	FROZEN = 0;
	return receiver_start(&RV, 0);
}

static int teardown(void **state)
{
	(void)state;
	int rc = 0;
	if (FROZEN)
		tcp_proxy_cut(&PX, FROZEN); /* a collector stuck on it could not stop */
	for (int i = 0; i < N; i++) {
		if (D[i].pid && errqd_stop(&D[i], SIGTERM) != 0) {
			fprintf(stderr, "collector %d did not exit cleanly\n", i);
			rc = -1;
		}
		D[i].pg = NULL; /* the test's database: dropped below, once */
		errqd_cleanup(&D[i]);
	}
	receiver_stop(&RV);
	tcp_proxy_stop(&PX);
	PQfinish(C);
	char err[512];
	if (pg_test_db_drop(&DB, err, sizeof(err)))
		fprintf(stderr, "teardown: %s\n", err);
	grpc_shutdown_blocking();
	return rc;
}

/* Collector i: its own directory and config (its name fleet-i), the shared database (db: a
 * way to it). */
static void start_on(int i, struct pg_test_db *db)
{
	if (!D[i].dir[0]) {
		errq_snprintf(D[i].dir, sizeof(D[i].dir), "/tmp/errq-fleet-XXXXXX");
		assert_non_null(mkdtemp(D[i].dir));
	}
	char cfg[400];
	errq_snprintf(cfg, sizeof(cfg), "%s/errqd.yaml", D[i].dir);
	FILE *f = fopen(cfg, "w");
	assert_non_null(f);
	fprintf(f,
		"name: fleet-%d\n"
		"notifiers:\n"
		"  - name: ops\n"
		"    type: webhook\n"
		"    url: http://127.0.0.1:%d/alerts\n"
		"    timeout: 5s\n"
		"rules:\n"
		"  - name: fleet-trip\n"
		"    match: {service: svc-fleet}\n"
		"    group_by: [service]\n"
		"    trip: {failures: %d, window: 120s}\n"
		"    recovery_timeout: 2s\n"
		"    half_open: {probe: 3s, failures: 1}\n"
		"    repeat_interval: 0s\n"
		"    notify: [ops]\n",
		i, RV.port, N * PER_REPLICA);
	assert_int_equal(fclose(f), 0);
	D[i].pg = db; /* choose_db: this database, not one of its own */
	const char *args[] = {"--config", cfg, NULL};
	assert_int_equal(errqd_start(&D[i], args), 0);
}

static void start(int i)
{
	start_on(i, &DB);
}

/* The collector that leads now (its index), or -1. */
static int leader(void)
{
	PGresult *r = PQexec(C, "SELECT leader FROM errq_leader WHERE id = 1 AND epoch > 0");
	int who = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		sscanf(PQgetvalue(r, 0, 0), "fleet-%d", &who);
	PQclear(r);
	return who;
}

static int64_t epoch(void)
{
	return q("SELECT epoch FROM errq_leader WHERE id = 1");
}

static int circuit(void)
{
	return (int)q("SELECT state FROM circuits WHERE rule = 'fleet-trip'");
}

static void send(int i, int n, const char *service)
{
	assert_int_equal(report_failures(D[i].addr, &G, n, service, "TimeoutError", "upstream timed out", NULL, NULL), n);
}

/* A column of pg_stat_activity (pid, client_port) of the session that holds the leader lock. */
static int64_t lock_holder(const char *col)
{
	return q("SELECT a.%s FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
		 " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %u AND l.classid = %u"
		 " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
		 col, 0x65616c64u, 0x65727271u); /* ERRQ_PG_LOCK_LEADER's halves; this test's database */
}

/* Every increment written so far taken by the leader (its evaluation caught up). */
static void settle(void)
{
	WAIT_FOR(q("SELECT count(*) FROM rule_inputs") == 0);
}

/* The notices the receiver got: each Idempotency-Key once; *firing and *resolved counted. */
static void notices(int *firing, int *resolved)
{
	char keys[RECV_MAX_REQUESTS][128];
	int n = receiver_count(&RV);
	*firing = *resolved = 0;
	for (int i = 0; i < n; i++) {
		assert_non_null(receiver_header(&RV, i, "Idempotency-Key", keys[i], sizeof(keys[i])));
		for (int j = 0; j < i; j++)
			if (strcmp(keys[i], keys[j]) == 0)
				fail_msg("notice %s delivered twice (requests %d and %d)", keys[i], j, i);
		*firing += strstr(keys[i], ":firing:") != NULL;
		*resolved += strstr(keys[i], ":resolved:") != NULL;
	}
}

/* After the circuit tripped: every increment taken, then (time for a second transition or
 * notice to show) one transition, one alert, one firing notice, every failure counted once. */
static void tripped_once(void)
{
	settle();
	assert_true(receiver_wait(&RV, 1) >= 1);
	harness_msleep(1000);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE from_state = 0 AND to_state = 1"), 1);
	assert_int_equal(q("SELECT count(*) FROM alerts"), 1);
	int firing, resolved;
	notices(&firing, &resolved);
	assert_int_equal(firing, 1);
	assert_int_equal(q("SELECT count(*) FROM events WHERE service = 'svc-fleet'"), N * PER_REPLICA);
	assert_int_equal(q("SELECT sum(total) FROM groups WHERE service = 'svc-fleet'"), N * PER_REPLICA);
}

/* `errq -o json status` of collector i: who it says leads, and whether it does. */
static void status_fleet(int i, char *leader, size_t n, bool *leading)
{
	const char *args[] = {"-o", "json", "status", NULL};
	char *err = NULL;
	char *out = harness_errq(D[i].addr, 0, &err, args);
	assert_non_null(out);
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_non_null(json_object_get(j, "fleet_leader"));
	errq_snprintf(leader, n, "%s", json_string_value(json_object_get(j, "fleet_leader")));
	*leading = json_is_true(json_object_get(j, "fleet_leading"));
	json_decref(j);
	free(out);
	free(err);
}

static void test_three_collectors(void **state)
{
	(void)state;
	for (int i = 0; i < N; i++)
		start(i);
	WAIT_FOR(leader() >= 0);
	int l = leader();
	int f1 = (l + 1) % N, f2 = (l + 2) % N;
	printf("leader: fleet-%d (epoch %" PRId64 ")\n", l, epoch());
	/* every collector says who leads; only the leader says it leads */
	for (int i = 0; i < N; i++) {
		char who[64], want[64];
		bool leading;
		status_fleet(i, who, sizeof(who), &leading);
		errq_snprintf(want, sizeof(want), "fleet-%d", l);
		assert_string_equal(who, want);
		assert_int_equal(leading, i == l);
	}

	/* two thirds of the threshold, from the leader and one follower: closed */
	send(l, PER_REPLICA, "svc-fleet");
	send(f1, PER_REPLICA, "svc-fleet");
	settle();
	WAIT_FOR(circuit() == 0);
	assert_int_equal(q("SELECT count(*) FROM transitions"), 0);
	/* the last third, from the other follower: the sum trips it, once */
	send(f2, PER_REPLICA, "svc-fleet");
	WAIT_FOR(circuit() == 1);
	assert_true(receiver_wait(&RV, 1) >= 1);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE from_state = 0 AND to_state = 1"), 1);
	assert_int_equal(q("SELECT count(*) FROM alerts"), 1);

	/* counts are exact, whichever collector stored them */
	for (int i = 0; i < N; i++)
		send(i, 7, "svc-other");
	assert_int_equal(q("SELECT count(*) FROM events WHERE service = 'svc-fleet'"), N * PER_REPLICA);
	assert_int_equal(q("SELECT count(*) FROM events WHERE service = 'svc-other'"), N * 7);
	assert_int_equal(q("SELECT sum(total) FROM groups"), N * PER_REPLICA + N * 7);

	/* the leader dies: another takes over, and the circuit still resolves once */
	int64_t e0 = epoch();
	uint64_t t0 = errq_mono_ns();
	assert_int_equal(errqd_stop(&D[l], SIGKILL), 128 + SIGKILL);
	WAIT_FOR(epoch() > e0 && leader() >= 0 && leader() != l);
	uint64_t failover_ms = (errq_mono_ns() - t0) / ERRQ_NS_PER_MS;
	printf("leadership moved from fleet-%d to fleet-%d in %" PRIu64 " ms (epoch %" PRId64 " -> %" PRId64 ")\n", l,
	       leader(), failover_ms, e0, epoch());
	WAIT_FOR(circuit() == 0);
	WAIT_FOR(receiver_count(&RV) >= 2);
	/* time for a duplicate to show: two more evaluation rounds and a lease of nobody's */
	harness_msleep(1500);
	int firing, resolved;
	notices(&firing, &resolved);
	assert_int_equal(firing, 1);
	assert_int_equal(resolved, 1);
	assert_int_equal(receiver_count(&RV), 2);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE to_state = 0"), 1);
	assert_int_equal(q("SELECT count(*) FROM alerts WHERE status = 'resolved'"), 1);
	assert_int_equal(q("SELECT count(*) FROM deliveries WHERE status <> 1"), 0); /* all delivered */
	/* what the dead leader had acknowledged is there, and the survivors go on counting */
	send(f1, 3, "svc-other");
	send(f2, 3, "svc-other");
	assert_int_equal(q("SELECT count(*) FROM events WHERE service = 'svc-other'"), N * 7 + 6);
}

static void test_fenced_leader(void **state)
{
	(void)state;
	for (int i = 0; i < N; i++)
		start(i);
	WAIT_FOR(leader() >= 0);
	int l = leader();
	int64_t e0 = epoch();
	/* end the leader's lock session (application_name errqd-leader) behind its back */
	assert_int_equal(q("SELECT pg_terminate_backend(%" PRId64 ")::int", lock_holder("pid")), 1);
	WAIT_FOR(epoch() > e0 && leader() >= 0);
	int l2 = leader();
	printf("session of fleet-%d ended: fleet-%d leads (epoch %" PRId64 ")\n", l, l2, epoch());
	/* whoever leads now, the threshold is reached by failures sent to the old leader only:
	 * they count once, through whichever path, and the circuit trips once */
	for (int k = 0; k < N; k++)
		send(l, PER_REPLICA, "svc-fleet");
	WAIT_FOR(circuit() == 1);
	tripped_once();
}

/* DBPX: DB's URL with the relay PX in the way (started here).  0, or -1 when DB is not a plain
 * TCP address of 127.0.0.1-style (a socket directory, a host name) or has a password. */
static int proxied_db(void)
{
	char host[64] = "", user[128] = "", name[PG_TEST_NAME_MAX + 1] = "";
	int port = 0, pw = 0;
	PQconninfoOption *o = PQconninfoParse(DB.url, NULL);
	assert_non_null(o);
	for (PQconninfoOption *k = o; k->keyword; k++) {
		if (!k->val)
			continue;
		if (!strcmp(k->keyword, "host") || !strcmp(k->keyword, "hostaddr"))
			errq_snprintf(host, sizeof(host), "%s", k->val);
		else if (!strcmp(k->keyword, "port"))
			port = atoi(k->val);
		else if (!strcmp(k->keyword, "user"))
			errq_snprintf(user, sizeof(user), "%s", k->val);
		else if (!strcmp(k->keyword, "dbname"))
			errq_snprintf(name, sizeof(name), "%s", k->val);
		else if (!strcmp(k->keyword, "password"))
			pw = 1;
	}
	PQconninfoFree(o);
	if (pw || port <= 0 || !*user || !*name || !tcp_proxy_ipv4(host))
		return -1;
	assert_int_equal(tcp_proxy_start(&PX, host, port), 0);
	DBPX = DB;
	errq_snprintf(DBPX.url, sizeof(DBPX.url), "postgresql://%s@127.0.0.1:%d/%s", user, PX.port, name);
	return 0;
}

static void test_partitioned_leader_fenced(void **state)
{
	(void)state;
	if (proxied_db()) {
		printf("skipped: the server's URL (%s) is not user@IPv4:port without a password\n", DB.url);
		skip();
	}
	start_on(0, &DBPX);
	WAIT_FOR(leader() == 0);
	start(1);
	start(2);
	int64_t e0 = epoch();
	/* collector 0's lock session: frozen in the relay, then ended at the server */
	int64_t up = lock_holder("client_port"), pid = lock_holder("pid");
	assert_true(up > 0 && pid > 0);
	assert_int_equal(tcp_proxy_freeze(&PX, (int)up), 0);
	FROZEN = (int)up;
	assert_int_equal(q("SELECT pg_terminate_backend(%" PRId64 ")::int", pid), 1);
	WAIT_FOR(epoch() > e0 && leader() > 0);
	int l2 = leader();
	/* a third of the threshold to the new leader, two thirds to the old one, which still
	 * believes it leads: only if its writer reads the new epoch and turns those failures into
	 * increments does the sum reach the threshold (had it evaluated them itself, its own
	 * circuit would hold two thirds and the new leader's one third: no trip) */
	send(l2, PER_REPLICA, "svc-fleet");
	for (int k = 1; k < N; k++)
		send(0, PER_REPLICA, "svc-fleet");
	WAIT_FOR(circuit() == 1);
	assert_true(http_metric(D[0].http_port, "errq_fleet_fenced_total") >= 1);
	/* it learnt from the fence (its fleet thread still waits on the frozen session, or stepped
	 * down on the fence's word): never from the session itself */
	uint64_t lost = http_metric(D[0].http_port, "errq_fleet_leadership_lost_total");
	/* and says it no longer leads, though its thread may still wait on the frozen session */
	WAIT_FOR(http_metric(D[0].http_port, "errq_fleet_leader") == 0);
	assert_int_equal(http_metric(D[0].http_port, "errq_fleet_epoch"), 0);
	printf("fleet-0's session frozen and ended: fleet-%d leads (epoch %" PRId64 " -> %" PRId64
	       "); fleet-0 fenced %" PRIu64 " transaction(s), stepped down %" PRIu64 " time(s) before the cut\n",
	       l2, e0, epoch(), http_metric(D[0].http_port, "errq_fleet_fenced_total"), lost);
	/* the partition heals with a reset: fleet-0 is a follower from then on */
	assert_int_equal(tcp_proxy_cut(&PX, FROZEN), 0);
	FROZEN = 0;
	WAIT_FOR(http_metric(D[0].http_port, "errq_fleet_leader") == 0 &&
		 http_metric(D[0].http_port, "errq_fleet_leadership_lost_total") == 1);
	tripped_once();
	assert_int_equal(leader(), l2);
}

/* A silence added while the database cannot take it: UNAVAILABLE (the client may retry), with
 * the server's reason, not INTERNAL; the retry passes once it can.  (A trigger makes the
 * insert fail with admin_shutdown, what a PostgreSQL going down answers.) */
static void test_silence_database_unavailable(void **state)
{
	(void)state;
	start(0);
	WAIT_FOR(leader() == 0);
	char err[512];
	assert_int_equal(pg_test_exec(C,
				      "CREATE FUNCTION itest_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
				      "RAISE EXCEPTION 'itest: shutting down' USING ERRCODE = 'admin_shutdown'; END $$;"
				      "CREATE TRIGGER itest_down BEFORE INSERT ON silences FOR EACH ROW"
				      " EXECUTE FUNCTION itest_down()",
				      err, sizeof(err)),
			 0);
	const char *args[] = {"silence", "add", "--rule", "fleet-trip", "--for", "1h", "--comment", "maintenance", NULL};
	char *e = NULL;
	char *out = harness_errq(D[0].addr, 2, &e, args); /* 2: the collector failed the call */
	assert_non_null(e);
	if (!strstr(e, "UNAVAILABLE") && !strstr(e, "unavailable"))
		fail_msg("silence add with the database down: want UNAVAILABLE, got: %s", e);
	assert_non_null(strstr(e, "shutting down"));
	free(out);
	free(e);
	assert_int_equal(pg_test_exec(C, "DROP TRIGGER itest_down ON silences", err, sizeof(err)), 0);
	out = harness_errq(D[0].addr, 0, NULL, args);
	free(out);
	assert_int_equal(q("SELECT count(*) FROM silences"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_three_collectors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fenced_leader, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partitioned_leader_fenced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silence_database_unavailable, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
