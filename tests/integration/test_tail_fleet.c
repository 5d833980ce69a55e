/* Integration (PostgreSQL only): `errq tail` across collectors (issue 17).  Two real errqd on
 * one database; a Tail subscriber on A must get every event that A and B commit, each once,
 * each collector's in its commit order, with its filters applied; and when the listeners'
 * connections are killed (pg_terminate_backend) they come back and the tail goes on. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <cmocka.h>

#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"
#include "pg_support.h"

#define BATCHES 20  /* per collector */
#define PER_BATCH 16
#define EVENTS (2 * BATCHES * PER_BATCH)

static struct errq_idgen G;
static pthread_mutex_t G_mu = PTHREAD_MUTEX_INITIALIZER; /* G is shared by the senders */

/* Two collectors on one database: A made it, B shares it (B.pg is A's: cleared before B's
 * cleanup, so the database is dropped once). */
static void start_pair(struct errqd_proc *a, struct errqd_proc *b)
{
	assert_int_equal(errqd_start(a, NULL), 0);
	assert_non_null(a->pg);
	b->pg = a->pg;
	assert_int_equal(errqd_start(b, NULL), 0);
}

static void stop_pair(struct errqd_proc *a, struct errqd_proc *b)
{
	assert_int_equal(errqd_stop(b, SIGTERM), 0);
	assert_int_equal(errqd_stop(a, SIGTERM), 0);
	b->pg = NULL;
	errqd_cleanup(b);
	errqd_cleanup(a);
}

/* The collectors' tail listeners that are LISTENing now: their sessions are named
 * "<application_name> tail" (pg_tail.c) in the message that LISTENs, idle once it is done. */
#define SESSIONS_SQL " FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '% tail'"
#define LISTENERS_SQL SESSIONS_SQL " AND state = 'idle'"
static int64_t listeners(PGconn *c)
{
	int64_t n = -1;
	char err[256];
	if (pg_test_int(c, "SELECT count(*)" LISTENERS_SQL, &n, err, sizeof(err)))
		fail_msg("%s", err);
	return n;
}

struct sender {
	const char *addr, *service, *tag;
	int failed;
};

/* BATCHES batches of PER_BATCH, one after the other (each committed before the next is sent),
 * messages "<tag>-<batch>-<i>", even batches TimeoutError, odd ones OSError. */
static void *send_batches(void *arg)
{
	struct sender *s = arg;
	for (int b = 0; b < BATCHES; b++) {
		Errq__V1__TaskFailure *evs[PER_BATCH];
		Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
		pthread_mutex_lock(&G_mu);
		for (int i = 0; i < PER_BATCH; i++) {
			char msg[32];
			errq_snprintf(msg, sizeof(msg), "%s-%03d-%02d", s->tag, b, i);
			evs[i] = tevent_new(&G, s->service, b % 2 ? "OSError" : "TimeoutError", msg);
		}
		pthread_mutex_unlock(&G_mu);
		req.seq = 1;
		req.n_failures = PER_BATCH;
		req.failures = evs;
		if (report_request(s->addr, &req) != PER_BATCH)
			s->failed++;
		for (int i = 0; i < PER_BATCH; i++)
			tevent_free(evs[i]);
	}
	return NULL;
}

/* What one subscriber received until the sentinels it expects. */
struct got {
	char (*msgs)[32];
	size_t n;
	uint64_t dropped;
};

/* Reads t until it has seen every message of want (n of them; the last ones are the
 * sentinels), keeping every message it read. */
static void read_until(struct tailstream *t, struct got *g, const char *const *sentinels, int n_sentinels)
{
	g->msgs = calloc(EVENTS + 64, sizeof(*g->msgs));
	assert_non_null(g->msgs);
	int seen = 0;
	while (seen < n_sentinels) {
		Errq__V1__TailMessage *m;
		assert_int_equal(tail_recv(t, &m, HARNESS_DEADLINE_MS), 0);
		assert_non_null(m->event);
		assert_true(g->n < EVENTS + 64);
		errq_snprintf(g->msgs[g->n++], sizeof(g->msgs[0]), "%s", m->event->message);
		g->dropped += m->dropped;
		assert_int_equal(strlen(m->event->fingerprint), 16);
		for (int i = 0; i < n_sentinels; i++)
			seen += strcmp(m->event->message, sentinels[i]) == 0;
		errq__v1__tail_message__free_unpacked(m, NULL);
	}
}

/* How many times msg is in g. */
static int count(const struct got *g, const char *msg)
{
	int k = 0;
	for (size_t i = 0; i < g->n; i++)
		k += strcmp(g->msgs[i], msg) == 0;
	return k;
}

/* The messages of tag in g come in their order ("<tag>-<batch>-<i>" increasing). */
static void assert_in_order(const struct got *g, const char *tag)
{
	const char *last = NULL;
	size_t tl = strlen(tag);
	for (size_t i = 0; i < g->n; i++) {
		if (strncmp(g->msgs[i], tag, tl) || g->msgs[i][tl] != '-')
			continue;
		if (last && strcmp(last, g->msgs[i]) >= 0)
			fail_msg("'%s' came after '%s': not in %s's commit order", g->msgs[i], last, tag);
		last = g->msgs[i];
	}
}

/* A and B on one database, both listeners up, an unfiltered subscriber on A (*all): returns
 * the test's connection to the database.  With history, B commits two events ("history")
 * while A is down first: rows older than A's listener, nobody's to bring. */
static PGconn *pair_with_tail_ex(struct errqd_proc *a, struct errqd_proc *b, struct tailstream *all, bool history)
{
	char err[256];
	start_pair(a, b);
	if (history) {
		assert_int_equal(errqd_stop(a, SIGTERM), 0);
		assert_int_equal(report_failures(b->addr, &G, 2, "svc-b", "OSError", "history", NULL, NULL), 2);
		assert_int_equal(errqd_start(a, NULL), 0);
	}
	PGconn *c = pg_test_connect(a->pg, err, sizeof(err));
	assert_non_null(c);
	WAIT_FOR(listeners(c) == 2);
	Errq__V1__TailRequest tr = ERRQ__V1__TAIL_REQUEST__INIT;
	assert_int_equal(tail_open(all, a->addr, &tr), 0);
	return c;
}

static PGconn *pair_with_tail(struct errqd_proc *a, struct errqd_proc *b, struct tailstream *all)
{
	return pair_with_tail_ex(a, b, all, false);
}

/* B commits "end-b"; *g gets what A's tail brings until it. */
static void read_to_end_b(struct errqd_proc *b, struct tailstream *all, struct got *g)
{
	const char *end[] = {"end-b"};
	assert_int_equal(report_failures(b->addr, &G, 1, "svc-b", "OSError", "end-b", NULL, NULL), 1);
	read_until(all, g, end, 1);
}

/* Frees g and ends the tail, the connection and both collectors. */
static void finish(PGconn *c, struct errqd_proc *a, struct errqd_proc *b, struct tailstream *all, struct got *g)
{
	free(g->msgs);
	tail_free(all);
	PQfinish(c);
	stop_pair(a, b);
}

static void test_tail_sees_both_collectors(void **state)
{
	(void)state;
	struct errqd_proc a = {0}, b = {0};
	struct tailstream all, only;
	PGconn *c = pair_with_tail(&a, &b, &all);
	Errq__V1__TailRequest tr = ERRQ__V1__TAIL_REQUEST__INIT;
	tr.service = "svc-b";
	tr.error_type = "Time*";
	assert_int_equal(tail_open(&only, a.addr, &tr), 0);
	/* both collectors commit at once: their transactions' ids interleave */
	struct sender sa = {a.addr, "svc-a", "a", 0}, sb = {b.addr, "svc-b", "b", 0};
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, send_batches, &sa), 0);
	assert_int_equal(pthread_create(&tb, NULL, send_batches, &sb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(sa.failed + sb.failed, 0);
	/* one more each, after all the others: when the tail has them, it has had every event
	 * committed before them (each collector's in order), and any copy of one */
	Errq__V1__TaskFailure *end_a = tevent_new(&G, "svc-a", "TimeoutError", "end-a");
	Errq__V1__TaskFailure *end_b = tevent_new(&G, "svc-b", "TimeoutError", "end-b");
	assert_int_equal(report_event(a.addr, end_a), 1);
	assert_int_equal(report_event(b.addr, end_b), 1);
	tevent_free(end_a);
	tevent_free(end_b);

	struct got g_all = {0}, g_only = {0};
	const char *both[] = {"end-a", "end-b"}, *b_end[] = {"end-b"};
	read_until(&all, &g_all, both, 2);
	read_until(&only, &g_only, b_end, 1);
	print_message("tail on A: %zu messages (%d sent), filtered %zu\n", g_all.n, EVENTS + 2, g_only.n);
	assert_int_equal(g_all.dropped, 0);
	assert_int_equal(g_only.dropped, 0);
	assert_int_equal(g_all.n, EVENTS + 2);
	for (int t = 0; t < 2; t++)
		for (int bt = 0; bt < BATCHES; bt++)
			for (int i = 0; i < PER_BATCH; i++) {
				char msg[32];
				errq_snprintf(msg, sizeof(msg), "%s-%03d-%02d", t ? "b" : "a", bt, i);
				if (count(&g_all, msg) != 1)
					fail_msg("'%s' came %d times to A's tail", msg, count(&g_all, msg));
				/* the filtered one: B's TimeoutErrors (even batches) only */
				int want = t == 1 && bt % 2 == 0;
				if (count(&g_only, msg) != want)
					fail_msg("'%s' came %d times to the filtered tail (want %d)", msg, count(&g_only, msg),
						 want);
			}
	assert_int_equal(g_only.n, BATCHES / 2 * PER_BATCH + 1);
	assert_in_order(&g_all, "a");
	assert_in_order(&g_all, "b");
	assert_in_order(&g_only, "b");
	free(g_only.msgs);
	tail_free(&only);
	finish(c, &a, &b, &all, &g_all);
}

/* A notice names its rows by id range and xid: a row another transaction holds inside B's
 * range (ids are one sequence for every writer) is not B's and reaches no tail. */
static void test_range_holds_foreign_rows(void **state)
{
	(void)state;
	struct errqd_proc a = {0}, b = {0};
	struct tailstream all;
	char err[256];
	PGconn *c = pair_with_tail(&a, &b, &all);
	assert_int_equal(report_failures(b.addr, &G, 1, "svc-b", "OSError", "seed", NULL, NULL), 1);
	/* the next ids B draws are max+101...: a row of another transaction at max+105 first */
	if (pg_test_exec(c,
			 "SELECT setval('events_id_seq', (SELECT max(id) FROM events) + 100);"
			 "INSERT INTO events (id, event_id, group_id, time_ns, received_ns, service, error_type, message,"
			 " attempt, handled, truncated) SELECT (SELECT last_value FROM events_id_seq) + 5,"
			 " set_byte(event_id, 15, (get_byte(event_id, 15) + 1) % 256), group_id, time_ns, received_ns,"
			 " service, error_type, 'foreign', attempt, handled, truncated FROM events ORDER BY id LIMIT 1",
			 err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(report_failures(b.addr, &G, 16, "svc-b", "OSError", "ranged", NULL, NULL), 16);
	int64_t inside = 0;
	assert_int_equal(pg_test_int(c,
				     "SELECT count(*) FROM events WHERE message = 'foreign' AND id BETWEEN"
				     " (SELECT min(id) FROM events WHERE message = 'ranged') AND"
				     " (SELECT max(id) FROM events WHERE message = 'ranged')",
				     &inside, err, sizeof(err)),
			 0);
	assert_int_equal(inside, 1); /* the foreign row is inside B's transaction's range */
	struct got g = {0};
	read_to_end_b(&b, &all, &g);
	assert_int_equal(count(&g, "foreign"), 0);
	assert_int_equal(count(&g, "ranged"), 16);
	assert_int_equal(g.n, 18);
	finish(c, &a, &b, &all, &g);
}

/* The pids of the listeners now (idle: those LISTENing and idle), into pids (at most n): how many. */
static int listener_pids(PGconn *c, int *pids, int n, bool idle)
{
	PGresult *r = PQexec(c, idle ? "SELECT pid" LISTENERS_SQL : "SELECT pid" SESSIONS_SQL);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	int k = 0;
	for (int i = 0; i < PQntuples(r) && k < n; i++)
		pids[k++] = atoi(PQgetvalue(r, i, 0));
	PQclear(r);
	return k;
}

static bool new_listeners(PGconn *c, const int *old, int n_old)
{
	int pids[8];
	int n = listener_pids(c, pids, 8, true);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < n_old; k++)
			if (pids[i] == old[k])
				return false;
	return n == 2;
}

static bool log_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* Lets new sessions into a's database, or not (from the server's maintenance database: a
 * database's own session cannot alter it). */
static void allow_connections(const struct errqd_proc *a, bool allow)
{
	char err[256], sql[256];
	PGconn *m = PQconnectdb(a->pg->server);
	assert_int_equal(PQstatus(m), CONNECTION_OK);
	errq_snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS %s", a->pg->name, allow ? "true" : "false");
	if (pg_test_exec(m, sql, err, sizeof(err)))
		fail_msg("%s", err);
	PQfinish(m);
}

/* A and B on one database, their listeners up, a subscriber on A (*all), the listeners'
 * pids in old (*n_old); with shut_out, B's history first (pair_with_tail_ex) and new
 * connections to the database refused; then the listeners killed and A's failure logged. */
static PGconn *kill_listeners(struct errqd_proc *a, struct errqd_proc *b, struct tailstream *all, int *old,
			      int *n_old, bool shut_out)
{
	char err[256];
	PGconn *c = pair_with_tail_ex(a, b, all, shut_out);
	*n_old = listener_pids(c, old, 8, false);
	assert_int_equal(*n_old, 2);
	if (shut_out) /* the writers keep their sessions; the killed listeners cannot come back */
		allow_connections(a, false);
	int64_t killed = 0;
	assert_int_equal(pg_test_int(c, "SELECT count(pg_terminate_backend(pid))" SESSIONS_SQL, &killed, err,
				     sizeof(err)),
			 0);
	assert_int_equal(killed, 2);
	WAIT_FOR(log_has(a->log, "tail listener failed"));
	return c;
}

static void test_listener_comes_back(void **state)
{
	(void)state;
	struct errqd_proc a = {0}, b = {0};
	struct tailstream all;
	int old[8], n_old;
	PGconn *c = kill_listeners(&a, &b, &all, old, &n_old, false);
	/* each collector reconnects and LISTENs again */
	WAIT_FOR(new_listeners(c, old, n_old));
	assert_int_equal(report_failures(b.addr, &G, 3, "svc-b", "OSError", "after", NULL, NULL), 3);
	struct got g = {0};
	read_to_end_b(&b, &all, &g);
	assert_int_equal(g.n, 4);
	assert_int_equal(count(&g, "after"), 3);
	finish(c, &a, &b, &all, &g);
}

/* While no listener can connect, B and A commit; when the listeners are back, A's tail gets
 * B's events from its catch-up, and A's own ones (published at their commit) not twice. */
static void test_listener_catches_up(void **state)
{
	(void)state;
	struct errqd_proc a = {0}, b = {0};
	struct tailstream all;
	int old[8], n_old;
	PGconn *c = kill_listeners(&a, &b, &all, old, &n_old, true);
	assert_int_equal(report_failures(b.addr, &G, 5, "svc-b", "OSError", "gap-b", NULL, NULL), 5);
	assert_int_equal(report_failures(a.addr, &G, 3, "svc-a", "OSError", "gap-a", NULL, NULL), 3);
	assert_int_equal(report_failures(b.addr, &G, 5, "svc-b", "OSError", "gap-b", NULL, NULL), 5);
	allow_connections(&a, true);
	WAIT_FOR(new_listeners(c, old, n_old));
	struct got g = {0};
	read_to_end_b(&b, &all, &g);
	print_message("after the gap: %zu messages, %llu dropped\n", g.n, (unsigned long long)g.dropped);
	assert_int_equal(count(&g, "gap-a"), 3);
	assert_int_equal(count(&g, "gap-b"), 10);
	assert_int_equal(count(&g, "history"), 0); /* committed before A's listener started */
	assert_int_equal(g.n, 14);
	assert_int_equal(g.dropped, 0);
	finish(c, &a, &b, &all, &g);
}

/* A transaction in flight when the listeners' connections went (another writer's: a session of
 * the test's, with its notice), whose ids lie below what B committed and A's tail showed after
 * it: A's catch-up brings it once it commits during the outage. */
static void test_in_flight_at_the_loss(void **state)
{
	(void)state;
	struct errqd_proc a = {0}, b = {0};
	struct tailstream all;
	char err[256];
	PGconn *c = pair_with_tail(&a, &b, &all);
	PGconn *w = pg_test_connect(a.pg, err, sizeof(err));
	assert_non_null(w);
	struct got g0 = {0}, g = {0};
	const char *seed[] = {"seed"}, *later[] = {"later"};
	assert_int_equal(report_failures(b.addr, &G, 1, "svc-b", "OSError", "seed", NULL, NULL), 1);
	read_until(&all, &g0, seed, 1);
	free(g0.msgs);
	g0 = (struct got){0};
	if (pg_test_exec(w,
			 "BEGIN; INSERT INTO events (event_id, group_id, time_ns, received_ns, service, error_type, message,"
			 " attempt, handled, truncated) SELECT set_byte(event_id, 15, (get_byte(event_id, 15) + 1) % 256),"
			 " group_id, time_ns, received_ns, service, error_type, 'inflight', attempt, handled, truncated"
			 " FROM events WHERE message = 'seed';"
			 " SELECT pg_notify('errq_events', '1 0123456789abcdef ' || id || ' ' || id || ' 1 ' ||"
			 " (txid_current() % 4294967296)) FROM events WHERE message = 'inflight'",
			 err, sizeof(err)))
		fail_msg("%s", err);
	/* B commits after it drew its id: A's tail shows B's event, the newest id it knows */
	assert_int_equal(report_failures(b.addr, &G, 1, "svc-b", "OSError", "later", NULL, NULL), 1);
	read_until(&all, &g0, later, 1);
	free(g0.msgs);
	allow_connections(&a, false);
	int old[8];
	int n_old = listener_pids(c, old, 8, false);
	int64_t killed = 0;
	assert_int_equal(pg_test_int(c, "SELECT count(pg_terminate_backend(pid))" SESSIONS_SQL, &killed, err,
				     sizeof(err)),
			 0);
	assert_int_equal(killed, 2);
	WAIT_FOR(log_has(a.log, "tail listener failed"));
	if (pg_test_exec(w, "COMMIT", err, sizeof(err))) /* during the outage */
		fail_msg("%s", err);
	allow_connections(&a, true);
	WAIT_FOR(new_listeners(c, old, n_old));
	read_to_end_b(&b, &all, &g);
	assert_int_equal(count(&g, "inflight"), 1);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.dropped, 0);
	PQfinish(w);
	finish(c, &a, &b, &all, &g);
}

int main(void)
{
	if (harness_backend() != HARNESS_POSTGRES) {
		fprintf(stderr, "test_tail_fleet: runs with ERRQ_TEST_BACKEND=postgres only\n");
		return 1;
	}
	grpc_init();
	errq_idgen_init(&G);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tail_sees_both_collectors),
	    cmocka_unit_test(test_range_holds_foreign_rows),
	    cmocka_unit_test(test_listener_comes_back),
	    cmocka_unit_test(test_listener_catches_up),
	    cmocka_unit_test(test_in_flight_at_the_loss),
	};
	int rc = cmocka_run_group_tests_name("integration_pg_tail_fleet", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
