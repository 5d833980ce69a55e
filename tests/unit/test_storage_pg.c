/* Unit: storage/pg/ — the PostgreSQL backend against a private server (the ctest fixture
 * `pg`, tests/support/pg-server; each test its own database): migrations (twice, and two
 * handles at once), dedupe across day partitions, exact aggregates, rollback, a lost
 * connection, retention by day partitions, a partition taking its rows out of
 * events_default, the per-group cap, and the queries on a small fixture.
 *
 * The backend's functions are called by name (store_pg_<op>): the same signatures as
 * store_<op>, which the seam (storage/backend.h) dispatches to them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <cmocka.h>

#include "pg_int.h"
#include "pg_support.h"
#include "errq_time.h"

#define NS_PER_MIN 60000000000ULL
#define NS_PER_DAY (86400ULL * 1000000000ULL)
#define WAIT_NS (30ULL * 1000000000ULL) /* a reconnect takes milliseconds: 10x is plenty */

static struct pg_test_db db;
static PGconn *admin; /* the test's own connection to its database */

static int setup(void **state)
{
	char err[256];
	(void)state;
	if (pg_test_db_create(&db, "storage_pg", err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (!(admin = pg_test_connect(&db, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char err[256];
	(void)state;
	PQfinish(admin);
	admin = NULL;
	if (pg_test_db_drop(&db, err, sizeof(err)))
		fprintf(stderr, "%s\n", err);
	return 0;
}

static struct store *open_pg(bool readonly, uint32_t groups_per_service)
{
	struct store *s = NULL;
	char err[512];
	struct store_opts o = {.path = db.url, .readonly = readonly, .groups_per_service = groups_per_service};
	int rc = store_pg_open(&s, &o, err, sizeof(err));
	if (rc)
		fail_msg("open: %s", err);
	return s;
}

static int64_t q(const char *sql)
{
	int64_t v = -1;
	char err[512];
	if (pg_test_int(admin, sql, &v, err, sizeof(err)))
		fail_msg("%s", err);
	return v;
}

static void wait_lock_waiters(int64_t n, const int *done);

/* A UUIDv7-shaped id: ms in the first 6 bytes, n after. */
static void make_id(uint8_t id[16], uint64_t ms, uint32_t n)
{
	memset(id, 0, 16);
	for (int i = 0; i < 6; i++)
		id[i] = (uint8_t)(ms >> (40 - 8 * i));
	id[6] = 0x70;
	id[12] = (uint8_t)(n >> 24);
	id[13] = (uint8_t)(n >> 16);
	id[14] = (uint8_t)(n >> 8);
	id[15] = (uint8_t)n;
}

static struct store_event ev(uint8_t id[16], uint64_t id_ms, uint32_t n, const char *fp, uint64_t recv)
{
	make_id(id, id_ms, n);
	struct store_event e = {
	    .event_id = id, .time_ns = recv - 5, .received_ns = recv, .service = "checkout",
	    .error_type = "TimeoutError", .message = "took too long", .fingerprint = fp,
	    .grouping_version = 1, .attempt = 2, .handled = n % 2,
	};
	return e;
}

static uint64_t now_ns(void)
{
	return errq_now_ns();
}

/* Begins a transaction and adds ev[0..n) in it (left open); result in res. */
static void begin_with(struct store *s, const struct store_event *e, size_t n, int8_t *res)
{
	assert_int_equal(store_pg_txn_begin(s), 0);
	if (store_pg_txn_add_events(s, e, n, res))
		fail_msg("add events: %s", store_pg_errmsg(s));
}

/* Adds ev[0..n) in one transaction; result in res. */
static void add_batch(struct store *s, const struct store_event *e, size_t n, int8_t *res)
{
	begin_with(s, e, n, res);
	if (store_pg_txn_commit(s))
		fail_msg("commit: %s", store_pg_errmsg(s));
}

/* ---- migrations ---- */

static void test_migrate_twice(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	store_pg_close(s);
	s = open_pg(false, 0); /* the second open finds version 1 and changes nothing */
	int64_t v;
	assert_int_equal(store_pg_get_pragma_int(s, "user_version", &v), -1); /* SQLite's only */
	store_pg_close(s);
	assert_int_equal(q("SELECT max(version) FROM errq_schema"), STORE_PG_SCHEMA_VERSION);
	assert_int_equal(q("SELECT count(*) FROM errq_schema"), STORE_PG_SCHEMA_VERSION);
	/* today's partition and the days ahead exist, and the default one */
	assert_int_equal(q("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"),
			 STORE_PG_PARTITIONS_AHEAD + 2 + 1);
	/* a reader opens once the schema is there; a newer schema is refused */
	struct store *r = open_pg(true, 0);
	store_pg_close(r);
	char err[512];
	assert_int_equal(pg_test_exec(admin, "INSERT INTO errq_schema VALUES (99, now())", err, sizeof(err)), 0);
	struct store_opts o = {.path = db.url};
	assert_int_equal(store_pg_open(&s, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "newer than this errqd knows"));
}

struct opener {
	int rc;
	char err[512];
};

static void *open_thread(void *arg)
{
	struct opener *op = arg;
	struct store *s = NULL;
	struct store_opts o = {.path = db.url};
	op->rc = store_pg_open(&s, &o, op->err, sizeof(op->err));
	store_pg_close(s);
	return NULL;
}

static void test_two_migrate_at_once(void **state)
{
	(void)state;
	/* several replicas starting together: the advisory lock makes one migrate, the others
	 * wait and find version 1 (without it, the second CREATE TABLE fails) */
	enum { N = 4 };
	pthread_t t[N];
	struct opener op[N];
	memset(op, 0, sizeof(op));
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_create(&t[i], NULL, open_thread, &op[i]), 0);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		if (op[i].rc)
			fail_msg("opener %d: %s", i, op[i].err);
	}
	assert_int_equal(q("SELECT count(*) FROM errq_schema"), STORE_PG_SCHEMA_VERSION);
}

/* ---- writes ---- */

static void test_dedupe_across_partitions(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns(), ms = now / 1000000;
	uint8_t id[6][16];
	struct store_event e[6];
	/* today, yesterday, tomorrow, a day far ahead (events_default), and two of today again
	 * inside the same batch */
	e[0] = ev(id[0], ms, 1, "fp-a", now);
	e[1] = ev(id[1], ms - 86400000, 2, "fp-a", now);
	e[2] = ev(id[2], ms + 86400000, 3, "fp-b", now);
	e[3] = ev(id[3], ms + 400 * 86400000ULL, 4, "fp-b", now);
	e[4] = e[0];
	e[5] = ev(id[5], ms, 6, "fp-a", now);
	int8_t res[6];
	add_batch(s, e, 6, res);
	const int8_t want[6] = {1, 1, 1, 1, 0, 1};
	assert_memory_equal(res, want, sizeof(want));
	assert_int_equal(q("SELECT count(*) FROM events_default"), 1);
	/* every one again, in another transaction: all duplicates, whichever partition */
	add_batch(s, e, 6, res);
	for (int i = 0; i < 6; i++)
		assert_int_equal(res[i], 0);
	uint64_t n;
	assert_int_equal(store_pg_count_events(s, &n), 0);
	assert_int_equal(n, 5);
	/* the single-event call answers the same */
	assert_int_equal(store_pg_txn_begin(s), 0);
	assert_int_equal(store_pg_txn_add_event(s, &e[3]), 0);
	assert_int_equal(store_pg_txn_commit(s), 0);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp-a'"), 3);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp-b'"), 2);
	store_pg_close(s);
}

struct gsum {
	int n;
	uint64_t count[8];
	char fp[8][24];
	int64_t id[8];
};
static int collect_group(void *ctx, const struct store_group *g)
{
	struct gsum *c = ctx;
	if (c->n < 8) {
		c->count[c->n] = g->count;
		snprintf(c->fp[c->n], sizeof(c->fp[0]), "%s", g->fingerprint);
		c->id[c->n] = g->id;
	}
	c->n++;
	return 0;
}

static void test_exact_aggregates(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns(), ms = now / 1000000;
	uint64_t base = (now / NS_PER_MIN - 10) * NS_PER_MIN;
	enum { N = 300 };
	static uint8_t id[N][16];
	static struct store_event e[N];
	static const char *fps[] = {"g0", "g1", "g2"};
	static const char *envs[] = {"prod", "staging", NULL};
	/* 300 events over 3 groups, 5 minutes and 3 environments, in batches of 64 */
	for (int i = 0; i < N; i++) {
		e[i] = ev(id[i], ms, (uint32_t)i, fps[i % 3], base + (uint64_t)(i % 5) * NS_PER_MIN + (uint64_t)i);
		e[i].environment = envs[(i / 3) % 3];
		e[i].service = i % 2 ? "checkout" : "billing";
	}
	int8_t res[N];
	for (int at = 0; at < N; at += 64)
		add_batch(s, e + at, at + 64 <= N ? 64 : N - at, res + at);
	/* the group rows and minute rows agree with the events, exactly */
	assert_int_equal(q("SELECT sum(total) FROM groups"), N);
	assert_int_equal(q("SELECT sum(count) FROM group_minutes"), N);
	assert_int_equal(q("SELECT sum(count) FROM service_minutes"), N);
	assert_int_equal(q("SELECT sum(stored) FROM groups"), N);
	assert_int_equal(q("SELECT count(*) FROM (SELECT g.id FROM groups g JOIN events e ON e.group_id = g.id"
			   " GROUP BY g.id, g.total HAVING count(*) <> g.total) x"),
			 0);
	assert_int_equal(q("SELECT count(*) FROM (SELECT m.group_id FROM group_minutes m GROUP BY m.group_id, m.minute,"
			   " m.env_id HAVING sum(m.count) <> (SELECT count(*) FROM events e WHERE e.group_id = m.group_id"
			   " AND e.received_ns / 60000000000 = m.minute AND coalesce((SELECT id FROM environments"
			   " WHERE name = e.environment), 0) = m.env_id)) x"),
			 0);
	assert_int_equal(q("SELECT sum(handled) FROM groups"), N / 2);
	assert_int_equal(q("SELECT count FROM service_minutes WHERE service = 'billing' ORDER BY minute LIMIT 1"),
			 N / 2 / 5);
	/* count-only events (quota): counted in totals and minutes, in dropped, not stored */
	uint8_t did[16];
	struct store_event d = ev(did, ms, 9999, "g0", base);
	assert_int_equal(store_pg_txn_begin(s), 0);
	assert_int_equal(store_pg_txn_count_event(s, &d), 1);
	assert_int_equal(store_pg_txn_count_event(s, &e[0]), 0); /* stored already: a duplicate */
	assert_int_equal(store_pg_txn_commit(s), 0);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'g0'"), N / 3 + 1);
	assert_int_equal(q("SELECT dropped FROM groups WHERE fingerprint = 'g0'"), 1);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'g0'"), N / 3);
	struct store_totals t;
	assert_int_equal(store_pg_get_totals(s, &t), 0);
	assert_int_equal(t.events, N);
	assert_int_equal(t.dropped, 1);
	assert_int_equal(t.groups, 3);
	assert_true(t.db_bytes > 0);
	/* the histogram of g1 in prod: the minute rows, read back */
	struct gsum c = {0};
	struct store_group_filter f = {.limit = 10};
	assert_int_equal(store_pg_get_group(s, "g1", &f, collect_group, &c), 1);
	uint64_t counts[5], want[5] = {0};
	for (int i = 0; i < N; i++)
		if (!strcmp(e[i].fingerprint, "g1") && e[i].environment && !strcmp(e[i].environment, "prod"))
			want[(e[i].received_ns - base) / NS_PER_MIN]++;
	assert_int_equal(store_pg_group_histogram(s, c.id[0], "prod", (int64_t)(base / NS_PER_MIN), 5, counts), 0);
	assert_memory_equal(counts, want, sizeof(want));
	store_pg_close(s);
	/* a writer with a cold cache (a restart) finds a batch's groups in one statement, not a
	 * SELECT per fingerprint: the single-group lookup is never prepared on its connection */
	s = open_pg(false, 0);
	uint8_t cid[3][16];
	struct store_event cold[3] = {ev(cid[0], ms, 5000, "g0", base), ev(cid[1], ms, 5001, "g1", base),
				      ev(cid[2], ms, 5002, "g2", base)};
	add_batch(s, cold, 3, res);
	assert_int_equal(res[0] + res[1] + res[2], 3);
	PGresult *pr = PQexec(store_pg(s)->conn, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'errq_group_find'");
	assert_int_equal(PQresultStatus(pr), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(pr, 0, 0), "0");
	PQclear(pr);
	struct store_write_stats ws;
	store_pg_get_write_stats(s, &ws);
	assert_int_equal(ws.group_lookups, 3);
	assert_int_equal(q("SELECT sum(total) FROM groups"), N + 1 + 3);
	store_pg_close(s);
}

static void test_aggregates_written_early(void **state)
{
	(void)state;
	/* one transaction counting more distinct minute rows than STORE_PG_TXN_AGG_MAX: the
	 * pending rows are written early inside it, and the group's row twice, adding up */
	struct store *s = open_pg(false, 0);
	enum { N = STORE_PG_TXN_AGG_MAX + 1000 };
	uint8_t(*id)[16] = calloc(N, 16);
	struct store_event *e = calloc(N, sizeof(*e));
	int8_t *res = calloc(N, 1);
	assert_non_null(id);
	assert_non_null(e);
	assert_non_null(res);
	uint64_t now = now_ns(), ms = now / 1000000, base = now - (uint64_t)N * NS_PER_MIN;
	for (int i = 0; i < N; i++)
		e[i] = ev(id[i], ms, (uint32_t)i, "wide", base + (uint64_t)i * NS_PER_MIN);
	uint64_t t0 = errq_mono_ns();
	add_batch(s, e, N, res);
	print_message("%d events, %d distinct minute rows, in one transaction: %.0f ms\n", N, N,
		      (double)(errq_mono_ns() - t0) / 1e6);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'wide'"), N);
	assert_int_equal(q("SELECT count(*) FROM group_minutes"), N);
	assert_int_equal(q("SELECT sum(count) FROM group_minutes"), N);
	assert_int_equal(q("SELECT count(*) FROM service_minutes"), N);
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT first_seen - %llu FROM groups", (unsigned long long)base);
	assert_int_equal(q(sql), 0);
	free(id);
	free(e);
	free(res);
	store_pg_close(s);
}

/* Two replicas' writers, each in an open transaction, meeting the same new fingerprints in
 * opposite orders (bench/fleet.py found this: "insert group: deadlock detected" and seconds of
 * stall with 2 and 3 replicas): new groups are made by each writer's second session and
 * committed at once, so neither waits for the other's open transaction.  With groups inserted
 * in the events' transaction, the second writer's insert of 'fp-b' waited for the first's
 * commit until its lock timeout. */
static void test_new_groups_no_wait_between_writers(void **state)
{
	(void)state;
	struct store *w1 = open_pg(false, 0), *w2 = open_pg(false, 0);
	uint64_t now = now_ns(), ms = now / 1000000;
	uint8_t id[4][16];
	struct store_event e1[2] = {ev(id[0], ms, 1, "fp-a", now), ev(id[1], ms, 2, "fp-b", now)};
	struct store_event e2[2] = {ev(id[2], ms, 3, "fp-b", now), ev(id[3], ms, 4, "fp-a", now)};
	e1[0].environment = e2[1].environment = "env-shared";
	int8_t r1[2], r2[2];
	begin_with(w1, e1, 2, r1);
	uint64_t t0 = errq_mono_ns();
	begin_with(w2, e2, 2, r2); /* waited for w1, and failed at its 2 s lock timeout, before */
	print_message("second writer's batch: %llu ms\n", (unsigned long long)((errq_mono_ns() - t0) / 1000000));
	assert_int_equal(store_pg_txn_commit(w2), 0);
	assert_int_equal(store_pg_txn_commit(w1), 0);
	assert_int_equal(q("SELECT count(*) FROM groups"), 2);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp-a'"), 2);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp-b'"), 2);
	assert_int_equal(q("SELECT count(*) FROM environments"), 1);
	store_pg_close(w2);
	store_pg_close(w1);
}

static void test_rollback(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns(), ms = now / 1000000;
	uint8_t id[3][16];
	struct store_event e[3] = {ev(id[0], ms, 1, "new-1", now), ev(id[1], ms, 2, "new-2", now),
				   ev(id[2], ms, 3, "new-1", now)};
	e[0].environment = "canary";
	int8_t res[3];
	assert_int_equal(store_pg_txn_begin(s), 0);
	assert_int_equal(store_pg_txn_add_events(s, e, 3, res), 0);
	assert_true(store_pg_agg_pending(s));
	store_pg_txn_rollback(s);
	assert_false(store_pg_agg_pending(s));
	/* nothing of it: no event, no count; the new groups and the environment stay, empty (the
	 * writer's second session made them, committed, before the events: pg_write.c, "groups") */
	assert_int_equal(q("SELECT count(*) FROM events"), 0);
	assert_int_equal(q("SELECT count(*) FROM groups"), 2);
	assert_int_equal(q("SELECT sum(total) FROM groups"), 0);
	assert_int_equal(q("SELECT count(*) FROM environments"), 1);
	assert_int_equal(q("SELECT count(*) FROM group_minutes"), 0);
	/* the retry stores them, in those groups */
	add_batch(s, e, 3, res);
	assert_int_equal(res[0] + res[1] + res[2], 3);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'new-1'"), 2);
	assert_int_equal(q("SELECT count(*) FROM events e JOIN groups g ON g.id = e.group_id"), 3);
	/* a failed statement fails the transaction: commit refuses, rollback recovers */
	assert_int_equal(store_pg_txn_begin(s), 0);
	struct store_event bad = e[0];
	char longfp[64];
	memset(longfp, 'x', sizeof(longfp) - 1);
	longfp[sizeof(longfp) - 1] = 0;
	bad.fingerprint = longfp;
	assert_int_equal(store_pg_txn_add_events(s, &bad, 1, res), -1);
	assert_non_null(strstr(store_pg_errmsg(s), "fingerprint of 63 bytes"));
	store_pg_txn_rollback(s);
	assert_int_equal(q("SELECT count(*) FROM events"), 3);
	store_pg_close(s);
}

static void test_groups_per_service(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 2);
	uint64_t now = now_ns(), ms = now / 1000000;
	uint8_t id[4][16];
	struct store_event e[4] = {ev(id[0], ms, 1, "s-1", now), ev(id[1], ms, 2, "s-2", now),
				   ev(id[2], ms, 3, "s-3", now), ev(id[3], ms, 4, "s-4", now)};
	int8_t res[4];
	add_batch(s, e, 4, res);
	assert_int_equal(q("SELECT count(*) FROM groups WHERE NOT overflow"), 2);
	assert_int_equal(q("SELECT total FROM groups WHERE overflow"), 2);
	uint64_t total = 0;
	assert_int_equal(store_pg_overflow_group(s, "checkout", &total), 1);
	assert_int_equal(total, 2);
	struct store_write_stats st;
	store_pg_get_write_stats(s, &st);
	assert_int_equal(st.overflow_events, 2);
	store_pg_close(s);
}

/* Stores ev[0..n) in one transaction on s, retrying the batch while it fails busy (another
 * replica held a lock: what the writer does), until WAIT_NS.  0, or -1 with the reason in err. */
static int store_retrying(struct store *s, const struct store_event *e, size_t n, int8_t *res, int *busy_retries,
			  char *err, size_t errsz)
{
	uint64_t deadline = errq_mono_ns() + WAIT_NS;
	for (;;) {
		int rc;
		if (!(rc = store_pg_txn_begin(s)) && !(rc = store_pg_txn_add_events(s, e, n, res)))
			rc = store_pg_txn_commit(s);
		if (!rc)
			return 0;
		snprintf(err, errsz, "%s", store_pg_errmsg(s));
		bool busy = store_pg_last_busy(s);
		store_pg_txn_rollback(s);
		if (!busy || errq_mono_ns() > deadline)
			return -1;
		(*busy_retries)++;
		err[0] = 0;
	}
}

/* groups_per_service holds across replicas: a second writer taking new fingerprints of a
 * service while the first's transaction has created some (not committed yet) waits for it
 * and counts them, so the service ends at the limit exactly.  (Each replica counted its own
 * view, cached: both admitted up to the limit.) */
struct gps_job {
	uint64_t now;
	int busy_retries;
	int done; /* __atomic */
	char err[512];
};

static void *gps_writer(void *arg)
{
	struct gps_job *j = arg;
	struct store *s = NULL;
	struct store_opts o = {.path = db.url, .groups_per_service = 3};
	if (store_pg_open(&s, &o, j->err, sizeof(j->err))) {
		__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	uint64_t ms = j->now / 1000000;
	uint8_t id[2][16];
	struct store_event e[2] = {ev(id[0], ms, 11, "b-1", j->now), ev(id[1], ms, 12, "b-2", j->now)};
	int8_t res[2];
	store_retrying(s, e, 2, res, &j->busy_retries, j->err, sizeof(j->err));
	store_pg_close(s);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_groups_per_service_two_writers(void **state)
{
	(void)state;
	struct store *a = open_pg(false, 3);
	uint64_t now = now_ns(), ms = now / 1000000;
	uint8_t id[2][16];
	struct store_event e[2] = {ev(id[0], ms, 1, "a-1", now), ev(id[1], ms, 2, "a-2", now)};
	int8_t res[2];
	begin_with(a, e, 2, res); /* a's new groups, not committed yet */
	struct gps_job j = {.now = now};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, gps_writer, &j), 0);
	wait_lock_waiters(1, &j.done); /* the second waits for the first's count to be settled */
	if (store_pg_txn_commit(a))
		fail_msg("commit: %s", store_pg_errmsg(a));
	pthread_join(t, NULL);
	if (j.err[0])
		fail_msg("the second writer: %s", j.err);
	print_message("second writer: %d busy retries\n", j.busy_retries);
	assert_int_equal(q("SELECT count(*) FROM groups WHERE service = 'checkout' AND NOT overflow"), 3);
	assert_int_equal(q("SELECT total FROM groups WHERE overflow"), 1);
	assert_int_equal(q("SELECT sum(total) FROM groups"), 4);
	/* at the limit: a third writer's new fingerprint overflows too */
	struct store *c = open_pg(false, 3);
	struct store_event e3 = ev(id[0], ms, 21, "c-1", now);
	add_batch(c, &e3, 1, res);
	assert_int_equal(q("SELECT count(*) FROM groups WHERE NOT overflow"), 3);
	assert_int_equal(q("SELECT total FROM groups WHERE overflow"), 2);
	store_pg_close(c);
	store_pg_close(a);
}

/* ---- two writers (replicas) on one database ---- */

struct writer_arg {
	int who;
	uint64_t now;
	int busy_retries;
	char err[512];
};

static void *writer_thread(void *arg)
{
	struct writer_arg *w = arg;
	struct store *s = NULL;
	struct store_opts o = {.path = db.url};
	if (store_pg_open(&s, &o, w->err, sizeof(w->err)))
		return NULL;
	enum { TXNS = 20, PER = 40 };
	uint8_t id[PER][16];
	struct store_event e[PER];
	int8_t res[PER];
	static const char *fps[] = {"hot-1", "hot-2", "hot-3", "hot-4", "hot-5"};
	uint64_t ms = w->now / 1000000;
	for (int t = 0; t < TXNS; t++) {
		/* the first half of each batch is sent by both writers (a client resending to the
		 * other collector), the second half is this writer's own; the same hot groups */
		for (int i = 0; i < PER; i++) {
			uint32_t n = i < PER / 2 ? (uint32_t)(t * PER + i) : (uint32_t)(1000000 * (w->who + 1) + t * PER + i);
			e[i] = ev(id[i], ms, n, fps[i % 5], w->now + (uint64_t)t * NS_PER_MIN / 4);
		}
		/* another replica holding a row makes the batch fail busy: the writer retries it */
		if (store_retrying(s, e, PER, res, &w->busy_retries, w->err, sizeof(w->err)))
			break;
	}
	store_pg_close(s);
	return NULL;
}

static void test_two_writers(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0); /* the schema, before the replicas start */
	store_pg_close(s);
	pthread_t t[2];
	struct writer_arg w[2] = {{.who = 0, .now = now_ns()}, {.who = 1}};
	w[1].now = w[0].now;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer_thread, &w[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		if (w[i].err[0])
			fail_msg("writer %d: %s", i, w[i].err);
	}
	/* every event once (the shared ones dedupe across writers), every count exact */
	assert_int_equal(q("SELECT count(*) FROM events"), 20 * 20 + 2 * 20 * 20);
	assert_int_equal(q("SELECT sum(total) FROM groups"), 20 * 20 + 2 * 20 * 20);
	assert_int_equal(q("SELECT sum(count) FROM group_minutes"), 20 * 20 + 2 * 20 * 20);
	assert_int_equal(q("SELECT sum(count) FROM service_minutes"), 20 * 20 + 2 * 20 * 20);
	assert_int_equal(q("SELECT count(*) FROM groups"), 5);
	print_message("two writers: %d + %d busy retries\n", w[0].busy_retries, w[1].busy_retries);
}

/* ---- a lost connection ---- */

/* Ends s's server process from the test's connection, and waits until it is gone
 * (pg_terminate_backend only signals it). */
static void terminate(struct store *s)
{
	char sql[128];
	int pid = PQbackendPID(store_pg(s)->conn);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)::int", pid);
	assert_int_equal(q(sql), 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
	uint64_t deadline = errq_mono_ns() + WAIT_NS;
	while (q(sql)) {
		assert_true(errq_mono_ns() < deadline);
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
}

static void test_lost_connection(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns(), ms = now / 1000000;
	uint8_t id[2][16];
	struct store_event e[2] = {ev(id[0], ms, 1, "fp", now), ev(id[1], ms, 2, "fp", now)};
	int8_t res[2];
	add_batch(s, e, 1, res); /* the group exists and is cached */
	/* killed inside a transaction: the statement fails UNAVAILABLE, the caller rolls back */
	assert_int_equal(store_pg_txn_begin(s), 0);
	terminate(s);
	assert_int_equal(store_pg_txn_add_events(s, &e[1], 1, res), -1);
	assert_int_equal(store_pg_last_errclass(s), STORE_ERR_UNAVAILABLE);
	assert_false(store_pg_last_busy(s));
	store_pg_txn_rollback(s);
	assert_int_equal(store_pg_last_errclass(s), STORE_ERR_UNAVAILABLE); /* kept */
	/* the next transaction reconnects (within the backoff) and the batch goes in */
	uint64_t deadline = errq_mono_ns() + WAIT_NS;
	while (store_pg_txn_begin(s)) {
		assert_int_equal(store_pg_last_errclass(s), STORE_ERR_UNAVAILABLE);
		assert_true(errq_mono_ns() < deadline);
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(store_pg_txn_add_events(s, &e[1], 1, res), 0);
	assert_int_equal(res[0], 1);
	assert_int_equal(store_pg_txn_commit(s), 0);
	assert_true(store_pg(s)->reconnects >= 1);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp'"), 2);
	/* killed between transactions: the next BEGIN (a transaction's, upkeep's) finds it dead
	 * and reconnects at once, and a reader's query runs again on a fresh connection: no
	 * caller sees the loss */
	uint64_t before = store_pg(s)->reconnects;
	terminate(s);
	if (store_pg_txn_begin(s))
		fail_msg("begin after an idle loss: %s", store_pg_errmsg(s));
	store_pg_txn_rollback(s);
	terminate(s);
	struct store_maint_opts mo = {.now_ns = now};
	bool more;
	if (store_pg_maintain(s, &mo, &more))
		fail_msg("upkeep after an idle loss: %s", store_pg_errmsg(s));
	assert_int_equal(store_pg(s)->reconnects, before + 2);
	struct store *r = open_pg(true, 0);
	terminate(r);
	uint64_t n = 0;
	if (store_pg_count_events(r, &n))
		fail_msg("a reader after an idle loss: %s", store_pg_errmsg(r));
	assert_int_equal(n, 2);
	/* a writer's statement outside a transaction is not run twice: it fails, the next works */
	terminate(s);
	assert_int_equal(store_pg_set_group_status(s, "fp", "resolved", now), -1);
	assert_int_equal(store_pg_last_errclass(s), STORE_ERR_UNAVAILABLE);
	assert_int_equal(store_pg_set_group_status(s, "fp", "resolved", now), 1);
	/* the server gone for good (the handle pointed at a port nobody listens on): every call
	 * fails UNAVAILABLE with the same words (the last connect attempt's), so a caller's
	 * log keeps one condition, and the backoff spares the server a connect per call */
	free(store_pg(r)->conninfo);
	store_pg(r)->conninfo = strdup("postgresql://errq@127.0.0.1:1/none?connect_timeout=5");
	assert_non_null(store_pg(r)->conninfo);
	terminate(r);
	char first[512];
	assert_int_equal(store_pg_count_events(r, &n), -1);
	assert_int_equal(store_pg_last_errclass(r), STORE_ERR_UNAVAILABLE);
	snprintf(first, sizeof(first), "%s", store_pg_errmsg(r));
	assert_non_null(strstr(first, "connect"));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_pg_count_events(r, &n), -1);
		assert_int_equal(store_pg_last_errclass(r), STORE_ERR_UNAVAILABLE);
		assert_string_equal(store_pg_errmsg(r), first);
	}
	store_pg_close(r);
	store_pg_close(s);
}

/* A failover: the primary this writer's session is on is demoted (a standby now, refusing
 * every write with SQLSTATE 25006) and another server takes the writes.  The writer must
 * see it as the database unavailable and reconnect, not keep writing to the old one for
 * ever; and a reconnect that reaches a read-only server must fail (target_session_attrs
 * read-write), with backoff, until a writable one answers.  Modelled on one server: a
 * trigger refuses the writes of the old session alone (pg_backend_pid), and
 * default_transaction_read_only on the database makes new sessions read-only, as a standby's
 * are. */
static void test_read_only_after_failover(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns(), ms = now / 1000000;
	uint8_t id[3][16];
	struct store_event e[3] = {ev(id[0], ms, 1, "fp", now), ev(id[1], ms, 2, "fp", now), ev(id[2], ms, 3, "fp", now)};
	int8_t res[2];
	add_batch(s, e, 1, res);
	char sql[512], err[512];
	snprintf(sql, sizeof(sql),
		 "CREATE FUNCTION t_demoted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
		 " IF pg_backend_pid() = %d THEN RAISE EXCEPTION 'cannot execute INSERT in a read-only transaction'"
		 " USING ERRCODE = 'read_only_sql_transaction'; END IF; RETURN NULL; END $$;"
		 " CREATE TRIGGER t_demoted BEFORE INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION t_demoted()",
		 PQbackendPID(store_pg(s)->conn));
	if (pg_test_exec(admin, sql, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(store_pg_txn_begin(s), 0);
	assert_int_equal(store_pg_txn_add_events(s, &e[1], 1, res), -1);
	assert_non_null(strstr(store_pg_errmsg(s), "read-only"));
	assert_int_equal(store_pg_last_errclass(s), STORE_ERR_UNAVAILABLE);
	assert_false(store_pg_last_busy(s));
	store_pg_txn_rollback(s);
	/* the server this URL reaches is read-only too now (a standby): the reconnect refuses it */
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET default_transaction_read_only = on", db.name);
	if (pg_test_exec(admin, sql, err, sizeof(err)))
		fail_msg("%s", err);
	uint64_t before = store_pg(s)->reconnects;
	assert_int_equal(store_pg_txn_begin(s), -1);
	assert_int_equal(store_pg_last_errclass(s), STORE_ERR_UNAVAILABLE);
	assert_non_null(strstr(store_pg_errmsg(s), "read-only"));
	assert_int_equal(store_pg(s)->reconnects, before);
	/* ... and so does a writer opening now */
	struct store *s2 = NULL;
	struct store_opts o = {.path = db.url};
	assert_int_equal(store_pg_open(&s2, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "read-only"));
	/* the new primary answers at the URL: the writer reconnects (after its backoff) and writes */
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s RESET default_transaction_read_only", db.name);
	if (pg_test_exec(admin, sql, err, sizeof(err)))
		fail_msg("%s", err);
	uint64_t deadline = errq_mono_ns() + WAIT_NS;
	while (store_pg_txn_begin(s)) {
		assert_int_equal(store_pg_last_errclass(s), STORE_ERR_UNAVAILABLE);
		assert_true(errq_mono_ns() < deadline);
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	if (store_pg_txn_add_events(s, &e[1], 2, res))
		fail_msg("add events after the failover: %s", store_pg_errmsg(s));
	assert_int_equal(store_pg_txn_commit(s), 0);
	assert_int_equal(store_pg(s)->reconnects, before + 1);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp'"), 3);
	/* a reader is not concerned: its own sessions are read-only by design */
	struct store *r = open_pg(true, 0);
	uint64_t n = 0;
	assert_int_equal(store_pg_count_events(r, &n), 0);
	assert_int_equal(n, 3);
	store_pg_close(r);
	store_pg_close(s);
}

/* ---- partitions ---- */

static void test_partition_moves_default_rows(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns();
	/* noon of a day 40 days ahead: its ids stay inside that day */
	uint64_t far_ms = ((now + 40 * NS_PER_DAY) / NS_PER_DAY * NS_PER_DAY + NS_PER_DAY / 2) / 1000000;
	uint64_t far = far_ms * 1000000;
	uint8_t id[3][16];
	struct store_event e[3] = {ev(id[0], far_ms, 1, "fp", now), ev(id[1], far_ms + 1000, 2, "fp", now),
				   ev(id[2], far_ms + 2 * 86400000ULL, 3, "fp", now)};
	int8_t res[3];
	add_batch(s, e, 3, res);
	assert_int_equal(q("SELECT count(*) FROM events_default"), 3);
	/* the day of the first two gets its partition: they move there, the third stays */
	uint32_t created = 0;
	assert_int_equal(store_pg_ensure_partitions(s, far, 0, &created), 0);
	assert_int_equal(created, 2); /* that day and the one before */
	assert_int_equal(q("SELECT count(*) FROM events_default"), 1);
	assert_int_equal(q("SELECT count(DISTINCT tableoid) FROM events"), 2);
	assert_int_equal(q("SELECT count(*) FROM events WHERE tableoid::regclass::text ~ '^events_[0-9]{8}$'"), 2);
	/* still one key: the moved rows are duplicates when sent again */
	add_batch(s, e, 3, res);
	assert_int_equal(res[0] + res[1] + res[2], 0);
	/* made already: a second call (another replica) creates nothing */
	assert_int_equal(store_pg_ensure_partitions(s, far, 0, &created), 0);
	assert_int_equal(created, 0);
	store_pg_close(s);
}

static void test_retention_drops_partition(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns();
	uint64_t old = (now - 10 * NS_PER_DAY) / NS_PER_DAY * NS_PER_DAY + NS_PER_DAY / 2, old_ms = old / 1000000;
	uint32_t created;
	assert_int_equal(store_pg_ensure_partitions(s, old, 0, &created), 0);
	assert_int_equal(created, 2);
	uint8_t id[4][16];
	/* three events of a day 10 days ago (received then too), one of today */
	struct store_event e[4] = {ev(id[0], old_ms, 1, "fp", old), ev(id[1], old_ms + 1, 2, "fp", old),
				   ev(id[2], old_ms + 2, 3, "fp2", old), ev(id[3], now / 1000000, 4, "fp", now)};
	int8_t res[4];
	add_batch(s, e, 4, res);
	int64_t parts = q("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass");
	/* retention 3 days: the two old day partitions go, a step each */
	struct store_maint_opts mo = {.now_ns = now, .retention_ns = 3 * NS_PER_DAY};
	bool more = true;
	for (int i = 0; i < 10 && more; i++)
		if (store_pg_maintain(s, &mo, &more))
			fail_msg("maintain: %s", store_pg_errmsg(s));
	assert_false(more);
	assert_int_equal(q("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"), parts - 2);
	assert_int_equal(q("SELECT count(*) FROM events"), 1);
	/* the groups keep their totals; their stored counts follow */
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp'"), 3);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'fp'"), 1);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'fp2'"), 0);
	struct store_write_stats st;
	store_pg_get_write_stats(s, &st);
	assert_int_equal(st.events_deleted_retention, 3);
	/* their minute counts, older than retention, were folded into hours */
	assert_int_equal(q("SELECT coalesce(sum(count), 0) FROM group_hours"), 3);
	assert_int_equal(q("SELECT sum(count) FROM group_minutes"), 1);
	store_pg_close(s);
}

struct maint_job {
	struct store *s;
	struct store_maint_opts mo;
	int rc;
	char err[512];
	int done; /* set (__atomic) when maint_thread returns */
};

static void *maint_thread(void *arg)
{
	struct maint_job *j = arg;
	bool more;
	j->rc = store_pg_maintain(j->s, &j->mo, &more);
	if (j->rc)
		snprintf(j->err, sizeof(j->err), "%s", store_pg_errmsg(j->s));
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The set-up of the tests below: a day partition 10 days old holding one event of group
 * "fp", due for retention (3 days; the empty day before it already dropped by u), and w's
 * transaction open with an event of today of group today_fp, its count pending.  The
 * upkeep's options in *mo. */
static void old_day_due(struct store *w, struct store *u, const char *today_fp, struct store_maint_opts *mo)
{
	static uint8_t id[2][16];
	uint64_t now = now_ns();
	uint64_t old = (now - 10 * NS_PER_DAY) / NS_PER_DAY * NS_PER_DAY + NS_PER_DAY / 2, old_ms = old / 1000000;
	assert_int_equal(store_pg_ensure_partitions(w, old, 0, NULL), 0);
	struct store_event e[2] = {ev(id[0], old_ms, 1, "fp", old), ev(id[1], now / 1000000, 2, today_fp, now)};
	int8_t res[2];
	add_batch(w, e, 1, res);
	*mo = (struct store_maint_opts){.now_ns = now, .retention_ns = 3 * NS_PER_DAY};
	/* the upkeep drops a partition a step: the empty one of the day before goes first */
	struct maint_job j = {.s = u, .mo = *mo};
	maint_thread(&j);
	if (j.rc)
		fail_msg("the upkeep failed: %s", j.err);
	assert_int_equal(q("SELECT count(*) FROM events"), 1);
	begin_with(w, &e[1], 1, res);
}

/* Waits until n lock requests wait, or until *done (may be NULL) is set. */
static void wait_lock_waiters(int64_t n, const int *done)
{
	uint64_t deadline = errq_mono_ns() + WAIT_NS;
	while (q("SELECT count(*) FROM pg_locks WHERE NOT granted") < n && !(done && __atomic_load_n(done, __ATOMIC_ACQUIRE))) {
		assert_true(errq_mono_ns() < deadline);
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
}

/* Another replica's upkeep comes to detach a day partition while this writer's transaction
 * is open (it holds a lock on events, its counts pending): the detach waits for it at most
 * STORE_PG_DETACH_LOCK_TIMEOUT_MS (while it waits, every user of events queues behind it),
 * then gives up until STORE_PG_DETACH_RETRY_NS later; the upkeep's other work goes on and the
 * writer commits unharmed.  (Before, a DROP waited for the writer with the upkeep holding the
 * groups' rows the writer's commit then locked: a deadlock.) */
static void test_retention_beside_writer(void **state)
{
	(void)state;
	struct store *w = open_pg(false, 0), *u = open_pg(false, 0);
	struct maint_job j = {.s = u};
	old_day_due(w, u, "fp", &j.mo);
	int64_t parts = q("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass");
	maint_thread(&j); /* here: the writer's transaction stays open throughout */
	if (j.rc)
		fail_msg("the upkeep failed: %s", j.err);
	assert_int_equal(q("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"), parts);
	if (store_pg_txn_commit(w))
		fail_msg("the writer's commit failed: %s", store_pg_errmsg(w));
	/* not tried again before its time; then it goes */
	maint_thread(&j);
	assert_int_equal(q("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"), parts);
	j.mo.now_ns += STORE_PG_DETACH_RETRY_NS;
	bool more = true;
	for (int i = 0; i < 10 && more; i++)
		if (store_pg_maintain(u, &j.mo, &more))
			fail_msg("maintain: %s", store_pg_errmsg(u));
	assert_int_equal(q("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"), parts - 1);
	assert_int_equal(q("SELECT count(*) FROM events"), 1);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp'"), 2);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'fp'"), 1);
	store_pg_close(u);
	store_pg_close(w);
}

/* Two replicas' upkeeps on one due day: one detaches and sweeps it, lowering the stored
 * counts once; the other, finding the partitions' lock taken, leaves it without waiting.
 * (Both had taken a partition's SHARE lock, then each DROP waited for the other's: a
 * deadlock, one aborted.)  The first is held in its sweep by a group's row another
 * transaction holds, while the second runs. */
static void test_two_upkeeps_drop_one_partition(void **state)
{
	(void)state;
	struct store *w = open_pg(false, 0), *u1 = open_pg(false, 0), *u2 = open_pg(false, 0);
	struct maint_job j1 = {.s = u1};
	old_day_due(w, u1, "fp2", &j1.mo);
	if (store_pg_txn_commit(w))
		fail_msg("commit: %s", store_pg_errmsg(w));
	char err[512];
	PGconn *c = pg_test_connect(&db, err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	if (pg_test_exec(c, "BEGIN; SELECT 1 FROM groups WHERE fingerprint = 'fp' FOR UPDATE", err, sizeof(err)))
		fail_msg("%s", err);
	pthread_t t;
	j1.done = 0;
	assert_int_equal(pthread_create(&t, NULL, maint_thread, &j1), 0);
	wait_lock_waiters(1, &j1.done); /* the first sweeps, held by the group's row */
	struct store_write_stats st;
	bool more;
	uint64_t t0 = errq_mono_ns();
	if (store_pg_maintain(u2, &j1.mo, &more))
		fail_msg("the second upkeep: %s", store_pg_errmsg(u2));
	uint64_t took_ms = (errq_mono_ns() - t0) / 1000000;
	int first_waiting = !__atomic_load_n(&j1.done, __ATOMIC_ACQUIRE);
	store_pg_get_write_stats(u2, &st);
	if (first_waiting) /* the second left the day to the first */
		assert_int_equal(st.events_deleted_retention, 0);
	if (pg_test_exec(c, "ROLLBACK", err, sizeof(err)))
		fail_msg("%s", err);
	PQfinish(c);
	pthread_join(t, NULL);
	print_message("the second upkeep took %llu ms, the first still waiting then: %d\n", (unsigned long long)took_ms,
		      first_waiting);
	/* the first's wait for the row is bounded by lock_timeout: on a slow machine it may have
	 * given up (busy); the next steps finish the day, whichever replica runs them */
	if (j1.rc && !store_pg_last_busy(u1))
		fail_msg("the first upkeep failed: %s", j1.err);
	more = true;
	for (int i = 0; i < 10 && more; i++)
		if (store_pg_maintain(i % 2 ? u1 : u2, &j1.mo, &more))
			fail_msg("maintain: %s", store_pg_errmsg(i % 2 ? u1 : u2));
	assert_int_equal(q("SELECT count(*) FROM events"), 1);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'fp'"), 0);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp'"), 1);
	assert_int_equal(q("SELECT count(*) FROM pg_class WHERE relname ~ '^events_gone_'"), 0);
	store_pg_close(u2);
	store_pg_close(u1);
	store_pg_close(w);
}

/* Retention of a day partition honours the upkeep's row budget (max_rows a step, as every
 * event sweep on SQLite): the day is detached at once, then its rows go max_rows a step with
 * their groups' stored counts, and the emptied table is dropped. */
static void test_retention_budget(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns();
	uint64_t old = (now - 10 * NS_PER_DAY) / NS_PER_DAY * NS_PER_DAY + NS_PER_DAY / 2, old_ms = old / 1000000;
	assert_int_equal(store_pg_ensure_partitions(s, old, 0, NULL), 0);
	uint8_t id[6][16];
	struct store_event e[6] = {ev(id[0], old_ms, 1, "fp", old),     ev(id[1], old_ms + 1, 2, "fp", old),
				   ev(id[2], old_ms + 2, 3, "fp", old), ev(id[3], old_ms + 3, 4, "fp2", old),
				   ev(id[4], old_ms + 4, 5, "fp2", old), ev(id[5], now / 1000000, 6, "fp", now)};
	int8_t res[6];
	add_batch(s, e, 6, res);
	char day[32], sql[256];
	time_t t = (time_t)(old / 1000000000ULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y%m%d", &tm);
	struct store_maint_opts mo = {.now_ns = now, .retention_ns = 3 * NS_PER_DAY, .max_rows = 2};
	struct store_write_stats st;
	uint64_t before = 0;
	bool more = true;
	int steps = 0;
	for (; steps < 20 && more; steps++) {
		if (store_pg_maintain(s, &mo, &more))
			fail_msg("maintain: %s", store_pg_errmsg(s));
		store_pg_get_write_stats(s, &st);
		assert_true(st.events_deleted_retention - before <= 2); /* the budget */
		before = st.events_deleted_retention;
		/* out of events' reach from the first step that touched it */
		if (st.events_deleted_retention)
			assert_int_equal(q("SELECT count(*) FROM events"), 1);
	}
	assert_false(more);
	assert_true(steps >= 3); /* 5 rows, 2 a step */
	assert_int_equal(st.events_deleted_retention, 5);
	assert_int_equal(q("SELECT count(*) FROM events"), 1);
	/* no table of that day is left, attached or not */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_class WHERE relname IN ('events_%s', 'events_gone_%s')", day,
		 day);
	assert_int_equal(q(sql), 0);
	assert_int_equal(q("SELECT total FROM groups WHERE fingerprint = 'fp'"), 4);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'fp'"), 1);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'fp2'"), 0);
	store_pg_close(s);
}

/* While retention works through a day's rows it holds no lock on events that ingest or a
 * query of any replica would queue behind: DROP TABLE of a partition (and DETACH without
 * CONCURRENTLY) takes ACCESS EXCLUSIVE on events until the transaction ends, so an upkeep
 * step that went on after its DROP (lowering counts, here waiting for a group's row another
 * transaction holds) made every insert into events wait. */
static void test_retention_holds_no_lock_on_events(void **state)
{
	(void)state;
	struct store *w = open_pg(false, 0), *u = open_pg(false, 0);
	uint64_t now = now_ns();
	uint64_t old = (now - 10 * NS_PER_DAY) / NS_PER_DAY * NS_PER_DAY + NS_PER_DAY / 2, old_ms = old / 1000000;
	assert_int_equal(store_pg_ensure_partitions(w, old, 0, NULL), 0);
	uint8_t id[2][16];
	struct store_event e[2] = {ev(id[0], old_ms, 1, "fp", old), ev(id[1], now / 1000000, 2, "other", now)};
	int8_t res[1];
	add_batch(w, e, 1, res);
	/* the empty day before the old one goes first, in a step of its own */
	struct maint_job j = {.s = u, .mo = {.now_ns = now, .retention_ns = 3 * NS_PER_DAY}};
	maint_thread(&j);
	if (j.rc)
		fail_msg("the upkeep failed: %s", j.err);
	j.done = 0;
	assert_int_equal(q("SELECT count(*) FROM events"), 1);
	/* a transaction of another holds the row of the old day's group */
	char err[512];
	PGconn *c = pg_test_connect(&db, err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	if (pg_test_exec(c, "BEGIN; SELECT 1 FROM groups WHERE fingerprint = 'fp' FOR UPDATE", err, sizeof(err)))
		fail_msg("%s", err);
	pthread_t t;
	bool more = true;
	assert_int_equal(pthread_create(&t, NULL, maint_thread, &j), 0);
	wait_lock_waiters(1, &j.done); /* the upkeep waits for the group's row */
	int64_t exclusive = q("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
			      " AND d.datname = current_database()"
			      " WHERE l.relation = 'events'::regclass AND l.mode = 'AccessExclusiveLock'");
	/* ingest goes on meanwhile: an event of another group is stored and committed */
	add_batch(w, &e[1], 1, res);
	assert_int_equal(res[0], 1);
	int still_waiting = !__atomic_load_n(&j.done, __ATOMIC_ACQUIRE);
	if (pg_test_exec(c, "ROLLBACK", err, sizeof(err)))
		fail_msg("%s", err);
	PQfinish(c);
	pthread_join(t, NULL);
	if (exclusive)
		fail_msg("the upkeep held ACCESS EXCLUSIVE on events while it waited for a group's row");
	print_message("upkeep still waiting when the insert committed: %d\n", still_waiting);
	/* the upkeep's wait for the row is bounded by the writer's lock_timeout: on a slow
	 * machine it may have given up (busy), and the next step does the work */
	if (j.rc && !store_pg_last_busy(u))
		fail_msg("the upkeep failed: %s", j.err);
	for (int i = 0; i < 10 && more; i++)
		if (store_pg_maintain(u, &j.mo, &more))
			fail_msg("maintain: %s", store_pg_errmsg(u));
	assert_int_equal(q("SELECT count(*) FROM events"), 1);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'fp'"), 0);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'other'"), 1);
	store_pg_close(u);
	store_pg_close(w);
}

static void test_cap(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns(), ms = now / 1000000;
	enum { N = 30 };
	uint8_t id[N][16];
	struct store_event e[N];
	for (int i = 0; i < N; i++)
		e[i] = ev(id[i], ms, (uint32_t)i, i < 25 ? "big" : "small", now + (uint64_t)i);
	int8_t res[N];
	add_batch(s, e, N, res);
	struct store_maint_opts mo = {.now_ns = now, .per_group_cap = 10, .max_rows = 8};
	bool more = true;
	for (int i = 0; i < 10 && more; i++) {
		mo.now_ns += STORE_CAP_CHECK_NS;
		assert_int_equal(store_pg_maintain(s, &mo, &more), 0);
	}
	assert_int_equal(q("SELECT count(*) FROM events e JOIN groups g ON g.id = e.group_id WHERE g.fingerprint = 'big'"),
			 10);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'big'"), 10);
	assert_int_equal(q("SELECT count(*) FROM events e JOIN groups g ON g.id = e.group_id WHERE g.fingerprint = 'small'"),
			 5);
	/* the newest ten stayed */
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT min(e.received_ns) - %llu FROM events e JOIN groups g ON g.id = e.group_id"
		 " WHERE g.fingerprint = 'big'",
		 (unsigned long long)now);
	assert_int_equal(q(sql), 15);
	/* a stored count above the rows there are (a drift) is trued up, not chased forever */
	char err[256];
	assert_int_equal(pg_test_exec(admin, "UPDATE groups SET stored = 30 WHERE fingerprint = 'small'", err, sizeof(err)),
			 0);
	mo.now_ns += STORE_CAP_CHECK_NS;
	assert_int_equal(store_pg_maintain(s, &mo, &more), 0);
	assert_int_equal(q("SELECT stored FROM groups WHERE fingerprint = 'small'"), 5);
	assert_int_equal(q("SELECT count(*) FROM events"), 15);
	store_pg_close(s);
}

/* ---- queries on a small fixture ---- */

struct elist {
	int n;
	int64_t rowid[16];
	char msg[16][32];
};
static int collect_event(void *ctx, const struct store_event *e)
{
	struct elist *l = ctx;
	if (l->n < 16) {
		l->rowid[l->n] = e->rowid;
		snprintf(l->msg[l->n], sizeof(l->msg[0]), "%s", e->message ? e->message : "");
	}
	l->n++;
	return 0;
}

static void test_queries(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns(), ms = now / 1000000;
	uint64_t base = (now / NS_PER_MIN - 30) * NS_PER_MIN;
	uint8_t id[6][16];
	struct store_event e[6];
	const char *fps[6] = {"qa", "qa", "qb", "qb", "qc", "qa"};
	const char *types[6] = {"TimeoutError", "TimeoutError", "ValueError", "ValueError", "KeyError", "TimeoutError"};
	const char *codes[6] = {"E1", "E2", NULL, "X9", NULL, "E1"};
	const char *tasks[6] = {"job.a", "job.b", "job.a", NULL, "job.c", "job.a"};
	const char *msgs[6] = {"m0", "m1", "m2", "m3", "m4", "m5"};
	for (int i = 0; i < 6; i++) {
		e[i] = ev(id[i], ms, (uint32_t)i, fps[i], base + (uint64_t)i * 5 * NS_PER_MIN);
		e[i].error_type = types[i];
		e[i].error_code = codes[i];
		e[i].task = tasks[i];
		e[i].message = msgs[i];
		e[i].environment = i < 4 ? "prod" : "dev";
		e[i].service = i == 4 ? "search" : "checkout";
		e[i].extra = "\x01\x00\x02";
		e[i].extra_len = 3;
	}
	int8_t res[6];
	add_batch(s, e, 6, res);
	struct store *r = open_pg(true, 0);
	/* events: newest first, filters, cursor */
	struct elist l = {0};
	struct store_event_filter f = {.limit = 10};
	assert_int_equal(store_pg_list_events(r, &f, collect_event, &l), 0);
	assert_int_equal(l.n, 6);
	assert_string_equal(l.msg[0], "m5");
	assert_true(l.rowid[0] > l.rowid[5]);
	memset(&l, 0, sizeof(l));
	f = (struct store_event_filter){.limit = 2};
	assert_int_equal(store_pg_list_events(r, &f, collect_event, &l), 0);
	f.before_rowid = l.rowid[1];
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_pg_list_events(r, &f, collect_event, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.msg[0], "m3");
	const struct {
		struct store_event_filter f;
		int want;
	} cases[] = {
	    {{.service = "search", .limit = 10}, 1},
	    {{.environment = "prod", .limit = 10}, 4},
	    {{.fingerprint = "qa", .limit = 10}, 3},
	    {{.fingerprint = "qa", .environment = "dev", .limit = 10}, 1},
	    {{.fingerprint = "nope", .limit = 10}, 0},
	    {{.error_type = "*Error", .limit = 10}, 6},
	    {{.error_type = "Time?utError", .limit = 10}, 3},
	    {{.error_type = "[KV]*", .limit = 10}, 3},
	    {{.error_type = "[^KV]*", .limit = 10}, 3},
	    {{.error_type = "timeouterror", .limit = 10}, 0}, /* case-sensitive, as GLOB */
	    {{.error_code = "E*", .limit = 10}, 3},
	    {{.error_code = "*", .limit = 10}, 6}, /* '*' matches an event without a code */
	    {{.task = "job.a", .limit = 10}, 3},
	    {{.task = "job?a", .limit = 10}, 3},
	    {{.task = "job.(a)", .limit = 10}, 0}, /* regex characters are literal */
	    {{.since_ns = base + 20 * NS_PER_MIN, .limit = 10}, 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&l, 0, sizeof(l));
		assert_int_equal(store_pg_list_events(r, &cases[i].f, collect_event, &l), 0);
		if (l.n != cases[i].want)
			fail_msg("case %zu: %d events, want %d", i, l.n, cases[i].want);
	}
	/* one event by id, all fields */
	struct elist one = {0};
	assert_int_equal(store_pg_get_event(r, id[3], collect_event, &one), 1);
	assert_string_equal(one.msg[0], "m3");
	uint8_t unknown[16] = {9};
	assert_int_equal(store_pg_get_event(r, unknown, collect_event, &one), 0);
	/* groups: by last seen, count, first seen; windows; environment; status */
	struct gsum c = {0};
	struct store_group_filter gf = {.limit = 10};
	assert_int_equal(store_pg_list_groups(r, &gf, collect_group, &c), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.fp[0], "qa"); /* its newest event is the last one */
	memset(&c, 0, sizeof(c));
	gf = (struct store_group_filter){.sort = STORE_SORT_COUNT, .limit = 10};
	assert_int_equal(store_pg_list_groups(r, &gf, collect_group, &c), 0);
	assert_string_equal(c.fp[0], "qa");
	assert_int_equal(c.count[0], 3);
	memset(&c, 0, sizeof(c));
	gf = (struct store_group_filter){.sort = STORE_SORT_COUNT, .limit = 1};
	assert_int_equal(store_pg_list_groups(r, &gf, collect_group, &c), 0);
	gf.before_key = c.count[0];
	gf.before_id = c.id[0];
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_pg_list_groups(r, &gf, collect_group, &c), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.fp[0], "qb");
	memset(&c, 0, sizeof(c));
	gf = (struct store_group_filter){.environment = "dev", .limit = 10};
	assert_int_equal(store_pg_list_groups(r, &gf, collect_group, &c), 0);
	assert_int_equal(c.n, 2); /* qc and qa have dev events */
	memset(&c, 0, sizeof(c));
	gf = (struct store_group_filter){.since_ns = base + 12 * NS_PER_MIN, .until_ns = base + 22 * NS_PER_MIN,
					 .sort = STORE_SORT_COUNT, .limit = 10};
	assert_int_equal(store_pg_list_groups(r, &gf, collect_group, &c), 0);
	assert_int_equal(c.n, 2); /* events 3 (qb) and 4 (qc) */
	memset(&c, 0, sizeof(c));
	gf = (struct store_group_filter){.error_type = "Value*", .sort = STORE_SORT_FIRST_SEEN, .limit = 10};
	assert_int_equal(store_pg_list_groups(r, &gf, collect_group, &c), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.fp[0], "qb");
	/* status: resolving, then a new event is a regression */
	assert_int_equal(store_pg_set_group_status(s, "qb", "resolved", now), 1);
	assert_int_equal(store_pg_set_group_status(s, "nope", "resolved", now), 0);
	assert_int_equal(store_pg_set_group_status(s, "qb", "bogus", now), -1);
	memset(&c, 0, sizeof(c));
	gf = (struct store_group_filter){.status = "resolved", .limit = 10};
	assert_int_equal(store_pg_list_groups(r, &gf, collect_group, &c), 0);
	assert_int_equal(c.n, 1);
	uint8_t rid[16];
	struct store_event again = ev(rid, ms, 77, "qb", now);
	add_batch(s, &again, 1, res);
	assert_int_equal(q("SELECT count(*) FROM groups WHERE fingerprint = 'qb' AND status = 'unresolved' AND regression"),
			 1);
	/* a reader cannot write */
	assert_int_equal(store_pg_txn_begin(r), 0);
	assert_int_equal(store_pg_txn_add_events(r, &again, 1, res), -1);
	store_pg_txn_rollback(r);
	store_pg_close(r);
	store_pg_close(s);
}

/* The longest globs the collector passes (STORE_GLOB_MAX: 256 '[' each made "[[]") match
 * whole on every filter that takes one; PATTERN_MAX of 1024 refused them as "too long". */
static void test_longest_globs(void **state)
{
	(void)state;
	struct store *s = open_pg(false, 0);
	uint64_t now = now_ns();
	char brackets[257], glob[STORE_GLOB_MAX + 2];
	memset(brackets, '[', 256);
	brackets[256] = 0;
	for (int i = 0; i < 256; i++)
		memcpy(glob + 3 * i, "[[]", 3);
	glob[STORE_GLOB_MAX] = 0;
	uint8_t id[2][16];
	struct store_event e[2] = {ev(id[0], now / 1000000, 1, "lg", now), ev(id[1], now / 1000000, 2, "other", now)};
	e[0].task = brackets;
	e[0].error_code = brackets;
	e[0].error_type = brackets;
	int8_t res[2];
	add_batch(s, e, 2, res);
	const struct store_event_filter fs[] = {{.task = glob, .limit = 10},
						{.error_code = glob, .limit = 10},
						{.error_type = glob, .limit = 10}};
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		struct elist l = {0};
		if (store_pg_list_events(s, &fs[i], collect_event, &l))
			fail_msg("filter %zu: %s", i, store_pg_errmsg(s));
		assert_int_equal(l.n, 1);
	}
	const struct store_group_filter gs[] = {{.error_code = glob, .limit = 10}, {.error_type = glob, .limit = 10}};
	for (size_t i = 0; i < sizeof(gs) / sizeof(gs[0]); i++) {
		struct gsum c = {0};
		if (store_pg_list_groups(s, &gs[i], collect_group, &c))
			fail_msg("group filter %zu: %s", i, store_pg_errmsg(s));
		assert_int_equal(c.n, 1);
		assert_string_equal(c.fp[0], "lg");
	}
	store_pg_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_migrate_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_migrate_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dedupe_across_partitions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exact_aggregates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aggregates_written_early, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_new_groups_no_wait_between_writers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_groups_per_service, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_groups_per_service_two_writers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_only_after_failover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partition_moves_default_rows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention_drops_partition, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention_beside_writer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_upkeeps_drop_one_partition, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention_holds_no_lock_on_events, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_longest_globs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
