/* Unit: storage/store_alerts.c — the alerting tables (schema version 2): circuits,
 * transitions, alerts, the outbox, silences, outcome batches, their upkeep, and the
 * migration from a version-1 database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "storage.h"
#include "storage_alerts.h"

#define STORE_UNIQUE_MSG "UNIQUE"

#define NS 1000000000ULL
#define T0 (1800000000ULL * NS)

static char dir[64], path[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/errq-unit-alerts-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	return 0;
}

static void unlink_db(const char *p)
{
	char f[200];
	const char *sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(f, sizeof(f), "%s%s", p, sfx[i]);
		unlink(f);
	}
}

static int teardown(void **state)
{
	char other[160];
	unlink_db(path);
	snprintf(other, sizeof(other), "%s/fresh.db", dir);
	unlink_db(other);
	return rmdir(dir);
}

static struct store *open_path(const char *p, bool readonly)
{
	struct store *s = NULL;
	char err[512];
	struct store_opts o = {.path = p, .readonly = readonly};
	int rc = store_open(&s, &o, err, sizeof(err));
	if (rc)
		print_error("store_open: %s\n", err);
	assert_int_equal(rc, 0);
	return s;
}

static struct store *open_writer(void)
{
	return open_path(path, false);
}

static struct store *open_reader(void)
{
	return open_path(path, true);
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

/* One integer from a statement on a raw connection. */
static int64_t sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* One integer from a statement on a connection of the test's own. */
static int64_t db_int(const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	int64_t n = sql_int(db, sql);
	sqlite3_close(db);
	return n;
}

static int64_t count_rows(const char *table)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return db_int(sql);
}

/* The query plan of sql, its lines joined by '|'. */
static void plan(sqlite3 *db, const char *sql, char *out, size_t n)
{
	sqlite3_stmt *st;
	char q[1024];
	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	size_t len = 0;
	out[0] = 0;
	while (sqlite3_step(st) == SQLITE_ROW && len < n)
		len += (size_t)snprintf(out + len, n - len, "%s|", (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
}

static const char *const alert_tables[] = {"circuits", "transitions", "alerts", "deliveries", "silences",
					   "outcome_batches"};
#define N_ALERT_TABLES 6

/* ---------------------------------------------------------------- migration */

static void test_fresh_schema(void **state)
{
	store_close(open_writer());
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_true(STORE_SCHEMA_VERSION >= 2);
	for (int i = 0; i < N_ALERT_TABLES; i++) {
		char sql[160];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'",
			 alert_tables[i]);
		assert_int_equal(sql_int(db, sql), 1);
	}
	assert_int_equal(sql_int(db, "SELECT count(*) FROM pragma_table_list WHERE name = 'outcome_batches'"
				     " AND wr = 1"),
			 1); /* WITHOUT ROWID */

	/* the indexes do what they are for: no scan of the table, no sort of every row */
	char p[1024];
	plan(db, "SELECT id FROM deliveries WHERE status = 0 AND id > ?1 ORDER BY id LIMIT ?2", p, sizeof(p));
	assert_non_null(strstr(p, "deliveries_open"));
	assert_null(strstr(p, "TEMP B-TREE"));
	plan(db, "SELECT id FROM deliveries WHERE status = 2 AND id > ?1 ORDER BY id LIMIT ?2", p, sizeof(p));
	assert_non_null(strstr(p, "deliveries_open"));
	plan(db, "SELECT id FROM deliveries WHERE alert_id = ?1 ORDER BY id", p, sizeof(p));
	assert_non_null(strstr(p, "deliveries_alert"));
	assert_null(strstr(p, "TEMP B-TREE"));
	plan(db, "SELECT id FROM alerts WHERE 1 AND id < :before AND status = :status ORDER BY id DESC LIMIT 5", p,
	     sizeof(p));
	assert_non_null(strstr(p, "alerts_status"));
	assert_null(strstr(p, "TEMP B-TREE"));
	plan(db, "SELECT id FROM transitions WHERE rule = ?1 AND key = ?2 ORDER BY id DESC LIMIT ?3", p, sizeof(p));
	assert_non_null(strstr(p, "transitions_circuit"));
	assert_null(strstr(p, "TEMP B-TREE"));
	plan(db, "SELECT batch_id FROM outcome_batches WHERE received_ns < ?1 ORDER BY received_ns LIMIT ?2", p,
	     sizeof(p));
	assert_non_null(strstr(p, "outcome_batches_received"));
	/* the prune's selection (store_alerts.c names the index: it must exist and serve) */
	plan(db, "SELECT a.id FROM alerts a INDEXED BY alerts_resolved WHERE a.status = 'resolved'"
		 " AND a.resolved_ns < ?1 ORDER BY a.resolved_ns, a.id LIMIT ?2",
	     p, sizeof(p));
	assert_non_null(strstr(p, "alerts_resolved"));
	assert_null(strstr(p, "TEMP B-TREE"));
	sqlite3_close(db);

	/* a reader opens the new version */
	store_close(open_path(path, true));
}

static int count_cb(void *ctx, const struct store_circuit *c)
{
	(*(int *)ctx)++;
	return 0;
}

/* A version-1 database (the alerting tables absent, user_version 1) is upgraded in place on
 * open, its events kept, to the same schema a new database gets. */
static void test_migrate_from_v1(void **state)
{
	struct store *s = open_writer();
	uint8_t eid[16];
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 5; i++) {
		id16(eid, 0xE0, (uint8_t)i);
		struct store_event e = {.event_id = eid, .time_ns = T0, .received_ns = T0 + (uint64_t)i,
					.service = "checkout", .error_type = "TimeoutError", .fingerprint = "f1",
					.grouping_version = 1};
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(store_txn_commit(s), 0);
	store_close(s);

	/* make it what migration 1 left: versions 2 and 3 added tables, version 4 columns, version
	 * 5 columns and the minute indexes */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "BEGIN; DROP TABLE circuits; DROP TABLE transitions; DROP TABLE alerts;"
				      " DROP TABLE deliveries; DROP TABLE silences; DROP TABLE outcome_batches;"
				      " DROP TABLE meta; ALTER TABLE groups DROP COLUMN dropped;"
				      " ALTER TABLE service_minutes DROP COLUMN dropped;"
				      " ALTER TABLE service_hours DROP COLUMN dropped;"
				      " DROP INDEX groups_last_minute; DROP INDEX groups_service;"
				      " ALTER TABLE groups DROP COLUMN agg_through; ALTER TABLE groups DROP COLUMN last_minute;"
				      " CREATE INDEX groups_last_seen ON groups(last_seen);"
				      " CREATE INDEX groups_service ON groups(service, last_seen);"
				      " PRAGMA user_version=1; COMMIT;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'circuits'"), 0);
	sqlite3_close(db);

	/* a reader refuses the old version (only the writer migrates) */
	struct store *r = NULL;
	char err[512];
	struct store_opts ro = {.path = path, .readonly = true};
	assert_int_equal(store_open(&r, &ro, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "version 1"));

	s = open_writer();
	uint64_t n = 0;
	assert_int_equal(store_count_events(s, &n), 0);
	assert_int_equal(n, 5);
	/* the new tables work */
	struct store_circuit c = {.rule = "r", .key = "k", .updated_ns = T0};
	int64_t cid = 0;
	assert_int_equal(store_circuit_put(s, &c, &cid), 0);
	assert_true(cid > 0);
	int nc = 0;
	assert_int_equal(store_list_circuits(s, NULL, count_cb, &nc), 0);
	assert_int_equal(nc, 1);
	store_close(s);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM events"), 5);
	assert_int_equal(sql_int(db, "SELECT total FROM groups WHERE fingerprint = 'f1'"), 5);
	/* same schema as a database created at version 2 */
	char fresh[160];
	snprintf(fresh, sizeof(fresh), "%s/fresh.db", dir);
	store_close(open_path(fresh, false));
	char attach[256];
	snprintf(attach, sizeof(attach), "ATTACH '%s' AS fresh", fresh);
	assert_int_equal(sqlite3_exec(db, attach, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM fresh.sqlite_master"),
			 sql_int(db, "SELECT count(*) FROM main.sqlite_master"));
	assert_int_equal(sql_int(db, "SELECT count(*) FROM (SELECT type, name, sql FROM fresh.sqlite_master"
				     " EXCEPT SELECT type, name, sql FROM main.sqlite_master)"),
			 0);
	sqlite3_close(db);
	store_close(open_path(path, true));
}

#include "store_alerts_cases.inc"

static int pending_count_cb(void *ctx, const struct store_delivery *d)
{
	((struct deliveries_got *)ctx)->n += d->status == STORE_DELIVERY_PENDING;
	return 0;
}

/* SQLite keeps leases in the handle, STORE_SQLITE_LEASES_MAX of them: at the limit a claim
 * takes nothing, a release makes room, and an ended lease frees its slot. */
static void test_claim_leases_max(void **state)
{
	struct store *s = open_writer();
	uint8_t a[16];
	id16(a, 0xC4, 1);
	int64_t first = 0;
	assert_int_equal(store_txn_begin(s), 0);
	for (uint32_t i = 0; i < STORE_SQLITE_LEASES_MAX + 3; i++) {
		int64_t id = add_delivery(s, a, "hook", "firing", i + 1, STORE_DELIVERY_PENDING, "{}");
		first = first ? first : id;
	}
	assert_int_equal(store_txn_commit(s), 0);
	const uint64_t lease = 60 * NS;
	struct deliveries_got g = {0};
	int total = 0, r;
	while ((r = store_delivery_claim(s, "r1", T0, lease, STORE_DELIVERY_CLAIM_MAX, pending_count_cb, &g)) > 0)
		total += r;
	assert_int_equal(r, 0);
	assert_int_equal(total, STORE_SQLITE_LEASES_MAX); /* 3 rows left, no room */
	assert_int_equal(g.n, STORE_SQLITE_LEASES_MAX);
	assert_int_equal(store_delivery_update(s, first, STORE_DELIVERY_DELIVERED, 1, 0, 200, NULL, T0), 1);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_delivery_claim(s, "r1", T0, lease, 10, delivery_cb, &g), 1);
	assert_int_equal(g.id[0], first + STORE_SQLITE_LEASES_MAX); /* the first row past the limit */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_delivery_claim(s, "r1", T0 + lease, lease, 10, delivery_cb, &g), 10);
	assert_int_equal(g.id[0], first + 1); /* the leases ended: from the start again */
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fresh_schema, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
	    STORE_ALERTS_CASES
	    cmocka_unit_test_setup_teardown(test_claim_leases_max, setup, teardown),
	};
	return cmocka_run_group_tests_name("unit_store_alerts", tests, NULL, NULL);
}
