/* Unit: storage/pg/pg_alerts.c — the alerting tables on PostgreSQL, through the public store_*
 * calls on a postgres URL.  The cases of test_store_alerts.c (circuits, transitions, alerts,
 * the outbox, silences, outcome batches, their upkeep, rollback, reader handles) on a database
 * of the test's own (tests/support/pg_support.h, the ctest fixture `pg`), and what mapping
 * SQLite's implicit behaviour must keep (docs/architecture.md, "The alerting tables on
 * PostgreSQL"): the indexes serve, names sort bytewise, an id is never given twice, the
 * circuits are listed in pages, a body is its given bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "errq_time.h"
#include "pg_support.h"
#include "storage.h"
#include "storage_alerts.h"

#define STORE_UNIQUE_MSG "unique constraint" /* SQLite says UNIQUE */

#define NS 1000000000ULL
#define T0 (1800000000ULL * NS)

static struct pg_test_db db;
static char err[512];

static int setup(void **state)
{
	if (pg_test_db_create(&db, "alerts", err, sizeof(err))) {
		print_error("%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	if (pg_test_db_drop(&db, err, sizeof(err))) {
		print_error("%s\n", err);
		return -1;
	}
	return 0;
}

static struct store *open_path(const char *url, bool readonly)
{
	struct store *s = NULL;
	char oerr[512];
	struct store_opts o = {.path = url, .readonly = readonly};
	int rc = store_open(&s, &o, oerr, sizeof(oerr));
	if (rc)
		print_error("store_open: %s\n", oerr);
	assert_int_equal(rc, 0);
	return s;
}

static struct store *open_writer(void)
{
	return open_path(db.url, false);
}

static struct store *open_reader(void)
{
	return open_path(db.url, true);
}

static void id16(uint8_t id[16], uint8_t kind, uint8_t n)
{
	memset(id, 0, 16);
	id[0] = kind;
	id[15] = n;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* One integer from a statement on a connection of the test's own. */
static int64_t db_int(const char *sql)
{
	PGconn *c = pg_test_connect(&db, err, sizeof(err));
	if (!c)
		print_error("%s\n", err);
	assert_non_null(c);
	int64_t v = 0;
	int rc = pg_test_int(c, sql, &v, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	PQfinish(c);
	assert_int_equal(rc, 0);
	return v;
}

static int64_t count_rows(const char *table)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return db_int(sql);
}

/* The plan of sql, its lines joined by '|', with sequential scans and sorts priced out: an
 * index that can serve the statement shows in it, and without one a Seq Scan or a Sort
 * stays (the tables are empty: costs alone would pick a scan). */
static void plan(const char *sql, char *out, size_t n)
{
	PGconn *c = pg_test_connect(&db, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(pg_test_exec(c, "SET enable_seqscan = off; SET enable_sort = off", err, sizeof(err)), 0);
	char q[1024];
	snprintf(q, sizeof(q), "EXPLAIN (COSTS OFF) %s", sql);
	PGresult *r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		print_error("%s: %s\n", q, PQerrorMessage(c));
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	size_t len = 0;
	out[0] = 0;
	for (int i = 0; i < PQntuples(r) && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s|", PQgetvalue(r, i, 0));
	PQclear(r);
	PQfinish(c);
}

/* plan(sql) uses index and sorts nothing. */
static void assert_served(const char *sql, const char *index)
{
	char p[2048];
	plan(sql, p, sizeof(p));
	if (!strstr(p, index) || strstr(p, "Sort") || strstr(p, "Seq Scan"))
		print_error("%s\n  plan: %s\n  wanted: %s, no sort, no scan\n", sql, p, index);
	assert_non_null(strstr(p, index));
	assert_null(strstr(p, "Sort"));
	assert_null(strstr(p, "Seq Scan"));
}

static const char *const alert_tables[] = {"circuits", "transitions", "alerts", "deliveries", "silences",
					   "outcome_batches"};
#define N_ALERT_TABLES 6

/* ---------------------------------------------------------------- schema */

static void test_fresh_schema(void **state)
{
	store_close(open_writer());
	assert_true(db_int("SELECT max(version) FROM errq_schema") >= 1);
	for (int i = 0; i < N_ALERT_TABLES; i++) {
		char sql[200];
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = '%s'",
			 alert_tables[i]);
		assert_int_equal(db_int(sql), 1);
	}
	/* the names listings sort by compare bytes, as SQLite's do, whatever the locale */
	assert_int_equal(db_int("SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
				 " AND table_name IN ('circuits', 'transitions', 'alerts')"
				 " AND column_name IN ('rule', 'key') AND collation_name = 'C'"),
			 6);

	/* the indexes do what they are for: no scan of the table, no sort of every row (the
	 * statements of pg_alerts.c, with literals for the parameters) */
	assert_served("SELECT id FROM deliveries WHERE status = 0 AND id > 1 ORDER BY id LIMIT 10", "deliveries_open");
	assert_served("SELECT id FROM deliveries WHERE status = 2 AND id > 1 ORDER BY id LIMIT 10", "deliveries_open");
	assert_served("SELECT id FROM deliveries WHERE alert_id = '\\x00'::bytea ORDER BY id", "deliveries_alert");
	assert_served("SELECT id FROM alerts WHERE id < 100 AND status = 'firing' ORDER BY id DESC LIMIT 5",
		      "alerts_status");
	assert_served("SELECT id FROM transitions WHERE rule = 'r' AND key = 'k' ORDER BY id DESC LIMIT 3",
		      "transitions_circuit");
	assert_served("SELECT batch_id FROM outcome_batches WHERE received_ns < 5 ORDER BY received_ns LIMIT 2",
		      "outcome_batches_received");
	/* the prune's selection: the partial index, in its order (SQLite named it: INDEXED BY) */
	assert_served("SELECT a.id FROM alerts a WHERE a.status = 'resolved' AND a.resolved_ns < 5"
		      " ORDER BY a.resolved_ns, a.id LIMIT 2",
		      "alerts_resolved");
	/* the circuits' pages and lookups */
	assert_served("SELECT id FROM circuits WHERE (rule, key) > ('a', 'b') ORDER BY rule, key LIMIT 10",
		      "circuits_rule_key_key");
	assert_served("SELECT id FROM circuits WHERE rule = 'a' AND key > 'b' ORDER BY rule, key LIMIT 10",
		      "circuits_rule_key_key");

	/* a reader opens it */
	store_close(open_reader());
}

static int count_cb(void *ctx, const struct store_circuit *c)
{
	(*(int *)ctx)++;
	return 0;
}

/* Opening a database that has the schema again (the migrator finds it current) keeps its
 * rows; the tables work from the next handle (SQLite's test here migrates from version 1:
 * the PostgreSQL schema starts with the alerting tables in its version 1). */
static void test_reopen(void **state)
{
	struct store *s = open_writer();
	struct store_circuit c = {.rule = "r", .key = "k", .updated_ns = T0};
	int64_t cid = 0;
	assert_int_equal(store_circuit_put(s, &c, &cid), 0);
	assert_true(cid > 0);
	store_close(s);
	int64_t version = db_int("SELECT max(version) FROM errq_schema");

	s = open_writer();
	int nc = 0;
	assert_int_equal(store_list_circuits(s, NULL, count_cb, &nc), 0);
	assert_int_equal(nc, 1);
	struct store_circuit c2 = {.rule = "r", .key = "k2", .updated_ns = T0};
	int64_t cid2 = 0;
	assert_int_equal(store_circuit_put(s, &c2, &cid2), 0);
	assert_true(cid2 > cid);
	store_close(s);
	assert_int_equal(db_int("SELECT max(version) FROM errq_schema"), version);
	assert_int_equal(count_rows("circuits"), 2);
	store_close(open_reader());
}

#include "store_alerts_cases.inc"

/* ---------------------------------------------------------------- what the mapping keeps */

/* SQLite gives a deleted row's id again when it was the largest (INTEGER PRIMARY KEY without
 * AUTOINCREMENT); an identity column never does, so an id seen once (a cursor, a log line)
 * never names another row. */
static void test_ids_never_reused(void **state)
{
	struct store *s = open_writer();
	struct store_circuit a = {.rule = "r", .key = "a"}, b = {.rule = "r", .key = "b"}, c = {.rule = "r", .key = "c"};
	int64_t ia, ib, ic;
	assert_int_equal(store_circuit_put(s, &a, &ia), 0);
	assert_int_equal(store_circuit_put(s, &b, &ib), 0);
	assert_int_equal(store_circuit_delete(s, ib), 0);
	assert_int_equal(store_circuit_put(s, &c, &ic), 0);
	assert_true(ic > ib);
	int64_t s1 = add_silence(s, "r", T0, T0 + NS);
	assert_int_equal(store_alerts_prune(s, T0 + 2 * NS, 10), 1); /* the silence ended: pruned */
	int64_t s2 = add_silence(s, "r", T0, T0 + NS);
	assert_true(s2 > s1);
	/* an alert's update keeps its id; the next alert's is larger (the upsert may leave a gap) */
	int64_t x = put_alert(s, 1, "firing", T0, 0);
	assert_int_equal(put_alert(s, 1, "resolved", T0, T0 + NS), x);
	assert_true(put_alert(s, 2, "firing", T0, 0) > x);
	store_close(s);
}

struct page_walk {
	int n, stop_at;
	char rule[16], key[16];
	bool ordered;
};

static int page_cb(void *ctx, const struct store_circuit *c)
{
	struct page_walk *w = ctx;
	if (w->n && (strcmp(c->rule, w->rule) < 0 || (!strcmp(c->rule, w->rule) && strcmp(c->key, w->key) <= 0)))
		w->ordered = false;
	snprintf(w->rule, sizeof(w->rule), "%s", c->rule);
	snprintf(w->key, sizeof(w->key), "%s", c->key);
	w->n++;
	return w->stop_at && w->n >= w->stop_at;
}

/* More circuits than one statement reads (pg_alerts.c's pages of 1 000): every one once, in
 * (rule, key) order by bytes, across the pages' seams; a rule's alone; an early stop. */
static void test_circuit_pages(void **state)
{
	struct store *s = open_writer();
	assert_int_equal(store_txn_begin(s), 0);
	/* p1 has 1 500 keys, p0 1 100; inserted out of order; keys that sort differently by bytes
	 * than by a natural-language collation ("B" < "a" < "b" bytewise) */
	for (int i = 0; i < 2600; i++) {
		int j = (i * 7919) % 2600; /* 7919 is prime to 2600: each j once */
		char key[16];
		const char *rule = j < 1500 ? "p1" : "p0";
		int k = j < 1500 ? j : j - 1500;
		snprintf(key, sizeof(key), "%c%04d", "aBb"[k % 3], k);
		struct store_circuit c = {.rule = rule, .key = key, .updated_ns = T0};
		int64_t id;
		assert_int_equal(store_circuit_put(s, &c, &id), 0);
	}
	assert_int_equal(store_txn_commit(s), 0);
	struct page_walk w = {.ordered = true};
	assert_int_equal(store_list_circuits(s, NULL, page_cb, &w), 0);
	assert_int_equal(w.n, 2600);
	assert_true(w.ordered);
	assert_string_equal(w.rule, "p1");
	assert_string_equal(w.key, "b1499"); /* the largest by bytes: 'b' > 'a' > 'B' */
	w = (struct page_walk){.ordered = true};
	assert_int_equal(store_list_circuits(s, "p0", page_cb, &w), 0);
	assert_int_equal(w.n, 1100);
	assert_true(w.ordered);
	assert_string_equal(w.rule, "p0");
	w = (struct page_walk){.ordered = true, .stop_at = 1001};
	assert_int_equal(store_list_circuits(s, "p1", page_cb, &w), 0);
	assert_int_equal(w.n, 1001);
	w = (struct page_walk){.ordered = true, .stop_at = 2000};
	assert_int_equal(store_list_circuits(s, NULL, page_cb, &w), 0);
	assert_int_equal(w.n, 2000);
	store_close(s);
}

/* A body is the body_len bytes given, stored as text: what is not text (a NUL, invalid UTF-8)
 * is refused with the server's reason (SQLite stored any bytes; the collector sends JSON). */
static void test_body_bytes(void **state)
{
	struct store *s = open_writer();
	uint8_t aid[16];
	id16(aid, 0xE1, 1);
	const char body[] = "{\"a\":1}TRAILING";
	struct store_delivery d = {.alert_id = aid, .notifier = "hook", .kind = "firing", .seq = 1,
				   .idempotency_key = "k", .body = body, .body_len = 7, .created_ns = T0,
				   .updated_ns = T0};
	int64_t id = 0;
	assert_int_equal(store_delivery_add(s, &d, &id), 0);
	struct deliveries_got g = {0};
	assert_int_equal(store_get_delivery(s, id, delivery_cb, &g), 1);
	assert_int_equal(g.body_len[0], 7);
	assert_string_equal(g.body[0], "{\"a\":1}");
	d.body = NULL; /* none: an empty body, as SQLite stores it */
	assert_int_equal(store_delivery_add(s, &d, &id), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_get_delivery(s, id, delivery_cb, &g), 1);
	assert_true(g.has_body[0]);
	assert_int_equal(g.body_len[0], 0);
	const char nul[] = "{\"a\":\0}";
	d.body = nul;
	d.body_len = sizeof(nul) - 1;
	assert_int_equal(store_delivery_add(s, &d, &id), -1);
	assert_non_null(strstr(store_errmsg(s), "insert delivery"));
	assert_non_null(strstr(store_errmsg(s), "0x00"));
	struct store_circuit c = {.rule = "r", .key = "\xff\xfe"};
	assert_int_equal(store_circuit_put(s, &c, &id), -1);
	assert_non_null(strstr(store_errmsg(s), "UTF8"));
	assert_int_equal(count_rows("deliveries"), 2);
	assert_int_equal(count_rows("circuits"), 0);
	store_close(s);
}

/* A write on a reader fails before it reaches the server, with a reason. */
static void test_reader_refuses_first(void **state)
{
	store_close(open_writer());
	struct store *r = open_path(db.url, true);
	struct store_silence si = {.rule = "r", .ends_ns = T0};
	int64_t id;
	assert_int_equal(store_silence_add(r, &si, &id), -1);
	assert_non_null(strstr(store_errmsg(r), "read-only"));
	store_close(r);
	assert_int_equal(count_rows("silences"), 0);
}

struct seen_call {
	struct store *s;
	const uint8_t *batch;
	int rc;
};

static void *seen_main(void *arg)
{
	struct seen_call *c = arg;
	c->rc = store_outcome_batch_seen(c->s, c->batch, T0);
	return NULL;
}

/* Waits (deadline 30 s, far above the milliseconds it takes) until some statement waits for
 * a lock another transaction holds. */
static void wait_for_lock_wait(void)
{
	uint64_t deadline = errq_mono_ns() + 30 * NS;
	while (db_int("SELECT count(*) FROM pg_locks WHERE NOT granted") < 1) {
		if (errq_mono_ns() > deadline)
			fail_msg("no statement waited for the other writer's lock within 30 s");
		nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
	}
}

/* Two writers (two replicas) record the same outcome batch at once: the second waits for the
 * first's transaction, then finds the id (0: counted once) when it commits, or records it
 * itself (1) when it rolls back.  SQLite had one writer, so INSERT OR IGNORE never met this. */
static void test_batch_seen_across_writers(void **state)
{
	struct store *a = open_writer(), *b = open_writer();
	uint8_t id[16];
	for (int commit = 1; commit >= 0; commit--) {
		id16(id, 0xB7, (uint8_t)commit);
		assert_int_equal(store_txn_begin(a), 0);
		assert_int_equal(store_outcome_batch_seen(a, id, T0), 1);
		struct seen_call c = {.s = b, .batch = id, .rc = -9};
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, seen_main, &c), 0);
		wait_for_lock_wait();
		if (commit)
			assert_int_equal(store_txn_commit(a), 0);
		else
			store_txn_rollback(a);
		pthread_join(th, NULL);
		assert_int_equal(c.rc, commit ? 0 : 1);
		assert_int_equal(store_outcome_batch_seen(a, id, T0), 0); /* there now, either way */
	}
	assert_int_equal(count_rows("outcome_batches"), 2);
	store_close(a);
	store_close(b);
}

/* ---- leases across replicas: two handles on one database claim at once ---- */

#define CLAIM_ROWS 300 /* pending rows the two claimers share */

struct claimer {
	struct store *s;
	const char *owner;
	int n, rc;
	int64_t got[CLAIM_ROWS];
};

static int claimed_cb(void *ctx, const struct store_delivery *d)
{
	struct claimer *c = ctx;
	if (c->n < CLAIM_ROWS)
		c->got[c->n] = d->id;
	c->n++;
	return 0;
}

static void *claimer_main(void *arg)
{
	struct claimer *c = arg;
	int r;
	while ((r = store_delivery_claim(c->s, c->owner, T0, 60 * NS, 7, claimed_cb, c)) > 0)
		;
	c->rc = r;
	return NULL;
}

/* Two replicas claim the same outbox at once until it is empty: every row goes to exactly
 * one of them, and the rows say who holds them. */
static void test_claim_across_writers(void **state)
{
	struct store *w = open_writer();
	uint8_t a[16];
	id16(a, 0xC2, 1);
	assert_int_equal(store_txn_begin(w), 0);
	for (uint32_t i = 0; i < CLAIM_ROWS; i++)
		add_delivery(w, a, "hook", "firing", i + 1, STORE_DELIVERY_PENDING, "{}");
	assert_int_equal(store_txn_commit(w), 0);
	store_close(w);
	struct claimer c[2] = {{.s = open_writer(), .owner = "replica-a", .rc = -9},
			       {.s = open_writer(), .owner = "replica-b", .rc = -9}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, claimer_main, &c[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(c[i].rc, 0);
		store_close(c[i].s);
	}
	assert_int_equal(c[0].n + c[1].n, CLAIM_ROWS);
	for (int i = 0; i < c[0].n; i++)
		for (int j = 0; j < c[1].n; j++)
			assert_true(c[0].got[i] != c[1].got[j]);
	assert_int_equal(db_int("SELECT count(DISTINCT id) FROM deliveries WHERE lease_until = 0"), 0);
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM deliveries WHERE claimed_by = 'replica-a' AND lease_until = %llu",
		 (unsigned long long)(T0 + 60 * NS));
	assert_int_equal(db_int(sql), c[0].n);
	assert_int_equal(db_int("SELECT count(*) FROM deliveries WHERE claimed_by = 'replica-b'"), c[1].n);
}

/* A claim in a transaction holds its rows' locks until it ends: another claimer skips them
 * without waiting (SKIP LOCKED), and a rollback leaves them unclaimed. */
static void test_claim_skips_locked(void **state)
{
	struct store *a = open_writer(), *b = open_writer();
	uint8_t aid[16];
	id16(aid, 0xC3, 1);
	int64_t id[4];
	for (uint32_t i = 0; i < 4; i++)
		id[i] = add_delivery(a, aid, "hook", "firing", i + 1, STORE_DELIVERY_PENDING, "{}");
	struct claimer ca = {.s = a}, cb = {.s = b};
	assert_int_equal(store_txn_begin(a), 0);
	assert_int_equal(store_delivery_claim(a, "replica-a", T0, 60 * NS, 2, claimed_cb, &ca), 2);
	assert_int_equal(store_delivery_claim(b, "replica-b", T0, 60 * NS, 10, claimed_cb, &cb), 2);
	assert_int_equal(ca.got[0], id[0]);
	assert_int_equal(ca.got[1], id[1]);
	assert_int_equal(cb.got[0], id[2]);
	assert_int_equal(cb.got[1], id[3]);
	store_txn_rollback(a);
	cb.n = 0;
	assert_int_equal(store_delivery_claim(b, "replica-b", T0, 60 * NS, 10, claimed_cb, &cb), 2);
	assert_int_equal(cb.got[0], id[0]);
	assert_int_equal(cb.got[1], id[1]);
	store_close(a);
	store_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fresh_schema, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
	    STORE_ALERTS_CASES
	    cmocka_unit_test_setup_teardown(test_ids_never_reused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_circuit_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reader_refuses_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_seen_across_writers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_claim_across_writers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_claim_skips_locked, setup, teardown),
	};
	return cmocka_run_group_tests_name("unit_store_alerts_pg", tests, NULL, NULL);
}
