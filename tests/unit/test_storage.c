/* Unit: storage/ — schema, migrations, writes, dedupe, aggregates, queries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "storage.h"

static char dir[64], path[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/errq-unit-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[160];
	const char *sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static struct store *open_writer(void)
{
	struct store *s = NULL;
	char err[512];
	struct store_opts o = {.path = path};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), 0);
	return s;
}

static struct store_event ev(uint8_t id[16], uint8_t n, const char *fp, uint64_t recv)
{
	memset(id, 0, 16);
	id[15] = n;
	id[0] = 1;
	struct store_event e = {
	    .event_id = id, .time_ns = recv - 5, .received_ns = recv, .service = "checkout",
	    .error_type = "TimeoutError", .message = "took too long", .fingerprint = fp,
	    .grouping_version = 1, .attempt = 2, .handled = n % 2,
	};
	return e;
}

static void test_schema_and_pragmas(void **state)
{
	struct store *s = open_writer();
	store_close(s);
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	const struct {
		const char *sql;
		const char *want;
	} checks[] = {{"PRAGMA auto_vacuum", "2"}, {"PRAGMA journal_mode", "wal"}, {"PRAGMA user_version", "3"}};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sqlite3_prepare_v2(db, checks[i].sql, -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), checks[i].want);
		sqlite3_finalize(st);
	}
	/* a newer schema is refused with a clear error, and left untouched */
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=7", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char err[512];
	struct store_opts o = {.path = path};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), -1);
	assert_null(s);
	assert_non_null(strstr(err, "version 7 is newer"));
	assert_non_null(strstr(err, path));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 7);
	sqlite3_finalize(st);
	sqlite3_close(db);
	teardown(NULL);
	setup(NULL);
}

/* durability (docs/protocol.md, "Durability"): normal runs the writer with synchronous=NORMAL
 * (1), full with synchronous=FULL (2).  The setting is per connection and not stored in the
 * file, so it is read from the writer's own connection, at every open. */
static void test_durability_sets_synchronous(void **state)
{
	const struct {
		int durability;
		int64_t want;
	} opens[] = {{STORE_DURABILITY_FULL, 2}, {STORE_DURABILITY_NORMAL, 1}, {STORE_DURABILITY_FULL, 2}};
	for (size_t i = 0; i < sizeof(opens) / sizeof(opens[0]); i++) {
		/* the first open creates the file, the others open it again */
		struct store *s = NULL;
		char err[512];
		struct store_opts o = {.path = path, .durability = opens[i].durability};
		assert_int_equal(store_open(&s, &o, err, sizeof(err)), 0);
		int64_t v = -1;
		assert_int_equal(store_get_pragma_int(s, "synchronous", &v), 0);
		if (v != opens[i].want)
			fail_msg("open %zu with durability %s: PRAGMA synchronous is %lld, want %lld", i,
				 opens[i].durability == STORE_DURABILITY_FULL ? "full" : "normal", (long long)v,
				 (long long)opens[i].want);
		store_close(s);
	}
	/* the accessor reads pragmas, nothing else */
	struct store *s = open_writer();
	int64_t v = 7;
	assert_int_equal(store_get_pragma_int(s, "synchronous; DROP TABLE events", &v), -1);
	assert_non_null(strstr(store_errmsg(s), "is not a pragma name"));
	assert_int_equal(store_get_pragma_int(s, "", &v), -1);
	uint64_t n = 1;
	assert_int_equal(store_count_events(s, &n), 0);
	assert_int_equal(n, 0);
	store_close(s);
}

static struct {
	int n;
	uint64_t total[4], count[4];
	char fp[4][8];
} got;

static int cb(void *ctx, const struct store_group *g)
{
	(void)ctx;
	got.total[got.n] = g->total;
	got.count[got.n] = g->count;
	snprintf(got.fp[got.n], 8, "%s", g->fingerprint);
	got.n++;
	return 0;
}

static void test_insert_dedupe_and_groups(void **state)
{
	struct store *s = open_writer();
	uint8_t ids[8][16];
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 5; i++) {
		struct store_event e = ev(ids[i], (uint8_t)i, "aaaa", t0 + (uint64_t)i);
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	struct store_event dup = ev(ids[5], 2, "aaaa", t0 + 99);
	assert_int_equal(store_txn_add_event(s, &dup), 0); /* same id as event 2 */
	struct store_event other = ev(ids[6], 50, "bbbb", t0 + 70ULL * 1000000000ULL);
	assert_int_equal(store_txn_add_event(s, &other), 1);
	assert_int_equal(store_txn_commit(s), 0);

	/* a rolled-back transaction leaves nothing, and a group it created is forgotten */
	assert_int_equal(store_txn_begin(s), 0);
	struct store_event gone = ev(ids[7], 77, "cccc", t0);
	assert_int_equal(store_txn_add_event(s, &gone), 1);
	store_txn_rollback(s);
	assert_int_equal(store_txn_begin(s), 0);
	gone = ev(ids[7], 78, "cccc", t0);
	assert_int_equal(store_txn_add_event(s, &gone), 1); /* group re-created, not a stale id */
	assert_int_equal(store_txn_commit(s), 0);

	uint64_t n;
	assert_int_equal(store_count_events(s, &n), 0);
	assert_int_equal(n, 7);
	store_close(s);

	/* readers see the aggregates */
	struct store *r = NULL;
	char err[512];
	struct store_opts o = {.path = path, .readonly = true};
	assert_int_equal(store_open(&r, &o, err, sizeof(err)), 0);
	memset(&got, 0, sizeof(got));
	struct store_group_filter f = {.limit = 10};
	assert_int_equal(store_list_groups(r, &f, cb, NULL), 0);
	assert_int_equal(got.n, 3);
	/* newest last_seen first: bbbb (t0+70s), then aaaa/cccc */
	assert_string_equal(got.fp[0], "bbbb");
	assert_int_equal(got.total[0], 1);
	int ia = strcmp(got.fp[1], "aaaa") == 0 ? 1 : 2;
	assert_int_equal(got.total[ia], 5);
	assert_int_equal(got.count[ia], 5);
	/* since: minute-resolution window counts; aaaa has nothing in bbbb's minute */
	memset(&got, 0, sizeof(got));
	f.since_ns = t0 + 70ULL * 1000000000ULL;
	assert_int_equal(store_list_groups(r, &f, cb, NULL), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.fp[0], "bbbb");
	assert_int_equal(got.count[0], 1);
	store_close(r);
}

static int collect_rowids(void *ctx, const struct store_event *e)
{
	int64_t *ids = ctx;
	ids[++ids[0]] = e->rowid;
	return 0;
}

static void test_event_pagination(void **state)
{
	struct store *s = open_writer();
	uint8_t id[16];
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 25; i++) {
		struct store_event e = ev(id, (uint8_t)(100 + i), "pppp", t0 + (uint64_t)i);
		e.service = i % 2 ? "odd" : "even";
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(store_txn_commit(s), 0);
	/* pages of 10 newest first, following the cursor: no row skipped or repeated */
	int64_t seen[64] = {0}, page[16];
	int64_t cursor = 0;
	int total = 0;
	for (;;) {
		memset(page, 0, sizeof(page));
		struct store_event_filter f = {.before_rowid = cursor, .limit = 10};
		assert_int_equal(store_list_events(s, &f, collect_rowids, page), 0);
		for (int i = 1; i <= page[0]; i++) {
			if (total)
				assert_true(page[i] < seen[total - 1]);
			seen[total++] = page[i];
		}
		if (page[0] < 10)
			break;
		cursor = page[page[0]];
	}
	assert_int_equal(total, 25);
	memset(page, 0, sizeof(page));
	struct store_event_filter f = {.service = "odd", .limit = 100};
	int64_t odd[32] = {0};
	assert_int_equal(store_list_events(s, &f, collect_rowids, odd), 0);
	assert_int_equal(odd[0], 12);
	store_close(s);
}

static int collect_ids(void *ctx, const struct store_event *e)
{
	int64_t *ids = ctx;
	ids[++ids[0]] = e->rowid;
	return 0;
}

/* A group's events are listed through its chain (prev_in_group), newest first, with a cursor;
 * duplicates and rolled-back events do not break it, nor do cache evictions in a transaction
 * that touches more groups than the cache has slots. */
static void test_group_chain(void **state)
{
	struct store *s = open_writer();
	uint8_t id[16];
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	assert_int_equal(store_txn_begin(s), 0);
	int64_t want_a[16] = {0};
	for (int i = 0; i < 12; i++) {
		struct store_event e = ev(id, (uint8_t)i, i % 3 == 0 ? "chain-a" : "chain-b", t0 + (uint64_t)i);
		id[1] = 0xA0; /* distinct from other tests' ids */
		assert_int_equal(store_txn_add_event(s, &e), 1);
		if (i % 3 == 0)
			want_a[++want_a[0]] = i;
	}
	struct store_event dup = ev(id, 0, "chain-a", t0 + 50);
	id[1] = 0xA0;
	assert_int_equal(store_txn_add_event(s, &dup), 0);
	assert_int_equal(store_txn_commit(s), 0);
	assert_int_equal(store_txn_begin(s), 0);
	struct store_event gone = ev(id, 99, "chain-a", t0 + 60);
	id[1] = 0xA0;
	assert_int_equal(store_txn_add_event(s, &gone), 1);
	store_txn_rollback(s);

	int64_t ids[32] = {0};
	struct store_event_filter f = {.fingerprint = "chain-a", .limit = 3};
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 3);
	f.before_rowid = ids[3];
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 4); /* 4 events of chain-a in all: a second page of one */
	for (int i = 1; i < 4; i++)
		assert_true(ids[i] > ids[i + 1]);
	/* the rows are chain-a's: rowids 1, 4, 7, 10 of this fresh database */
	assert_int_equal(ids[1], 10);
	assert_int_equal(ids[4], 1);

	/* more groups than cache slots in one transaction: evictions write heads through */
	enum { NG = STORE_GROUP_CACHE_SLOTS + 5000 };
	char fp[32];
	for (int round = 0; round < 2; round++) {
		assert_int_equal(store_txn_begin(s), 0);
		for (int g = 0; g < NG; g++) {
			snprintf(fp, sizeof(fp), "many-%d", g);
			struct store_event e = ev(id, 0, fp, t0 + 100 + (uint64_t)round);
			id[0] = 2;
			id[1] = (uint8_t)round;
			id[2] = (uint8_t)(g >> 16);
			id[3] = (uint8_t)(g >> 8);
			id[4] = (uint8_t)g;
			assert_int_equal(store_txn_add_event(s, &e), 1);
		}
		assert_int_equal(store_txn_commit(s), 0);
	}
	for (int g = 0; g < NG; g += 997) {
		snprintf(fp, sizeof(fp), "many-%d", g);
		memset(ids, 0, sizeof(ids));
		struct store_event_filter gf = {.fingerprint = fp, .limit = 10};
		assert_int_equal(store_list_events(s, &gf, collect_ids, ids), 0);
		assert_int_equal(ids[0], 2);
		assert_int_equal(ids[1] - ids[2], NG); /* one round apart */
	}
	store_close(s);
}

static int64_t q1(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Adds events n0..n1-1 of group fp (received one ns apart from t) in one transaction. */
static void add_range(struct store *s, const char *fp, int n0, int n1, uint64_t t, bool deferred)
{
	uint8_t id[16];
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = n0; i < n1; i++) {
		struct store_event e = ev(id, (uint8_t)i, fp, t + (uint64_t)i);
		id[1] = 0xD0;
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(deferred ? store_txn_commit_deferred(s) : store_txn_commit(s), 0);
}

/* Deferred aggregates: events are stored at once, counts and chain heads when flushed; a
 * rollback or a crash loses no count (the events past 'aggregated_through' count again). */
static void test_deferred_aggregates(void **state)
{
	struct store *s = open_writer();
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	add_range(s, "agg", 0, 3, t0, true);
	/* the events are there; the group's counts not yet */
	assert_int_equal(q1("SELECT count(*) FROM events"), 3);
	assert_true(store_agg_pending(s));
	assert_int_equal(q1("SELECT coalesce(sum(total), 0) FROM groups WHERE fingerprint = 'agg'"), 0);
	/* a deferred commit after the interval writes them; so does store_agg_flush */
	add_range(s, "agg", 3, 5, t0, true);
	assert_int_equal(store_agg_flush(s), 0);
	assert_false(store_agg_pending(s));
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 5);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 5);
	assert_int_equal(q1("SELECT value FROM meta WHERE key = 'aggregated_through'"), 5);

	/* rollback: 2 deferred, 2 rolled back, 1 more: counts 8, chain of 8 */
	add_range(s, "agg", 5, 7, t0, true);
	uint8_t id[16];
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 7; i < 9; i++) {
		struct store_event e = ev(id, (uint8_t)i, "agg", t0 + (uint64_t)i);
		id[1] = 0xD0;
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	store_txn_rollback(s);
	add_range(s, "agg", 9, 10, t0, true);
	assert_int_equal(store_agg_flush(s), 0);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 8);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 8);
	assert_int_equal(q1("SELECT sum(count) FROM service_minutes"), 8);
	int64_t ids[32] = {0};
	struct store_event_filter f = {.fingerprint = "agg", .limit = 20};
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 8);

	/* a crash with counts unwritten: a child stores 4 more and exits without closing */
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *c = open_writer();
		add_range(c, "agg", 10, 12, t0, true);
		add_range(c, "agg-2", 12, 14, t0, true);
		_exit(store_agg_pending(c) ? 0 : 1);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	store_close(s);
	assert_int_equal(q1("SELECT count(*) FROM events"), 12);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 8); /* not yet */
	s = open_writer(); /* aggregates the 4 again */
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 10);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg-2'"), 2);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 12);
	assert_int_equal(q1("SELECT sum(stored) FROM groups"), 12);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 10); /* the chain reaches the events stored before the crash */
	/* and the next event of the group chains onto them */
	add_range(s, "agg", 14, 15, t0, false);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_list_events(s, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 11);
	store_close(s);
}

/* The checkpointer really copies the WAL into the database (a connection that never read the
 * file used to report -1 frames and copy nothing, letting the WAL grow without bound). */
static void test_checkpointer_checkpoints(void **state)
{
	struct store *s = NULL;
	struct store_ckpt *ck = NULL;
	char err[512];
	struct store_opts o = {.path = path, .ckpt_external = true};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), 0);
	assert_int_equal(store_ckpt_start(&ck, path, err, sizeof(err)), 0);
	store_set_ckpt(s, ck);
	uint8_t id[16];
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < 2000; i++) {
		struct store_event e = ev(id, 0, "ckpt", t0 + (uint64_t)i);
		id[0] = 3;
		id[13] = (uint8_t)(i >> 8);
		id[14] = (uint8_t)i;
		assert_int_equal(store_txn_add_event(s, &e), 1);
	}
	assert_int_equal(store_txn_commit(s), 0);
	store_ckpt_kick(ck);
	struct store_ckpt_stats st = {0};
	for (int i = 0; i < 3000 && st.frames == 0; i++) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
		store_ckpt_get_stats(ck, &st);
	}
	assert_true(st.frames > 0);
	assert_int_equal(st.errors, 0);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size > 100 * 1024); /* the rows reached the database file itself */
	store_ckpt_stop(ck);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_schema_and_pragmas, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_durability_sets_synchronous, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_insert_dedupe_and_groups, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_pagination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkpointer_checkpoints, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deferred_aggregates, setup, teardown),
	};
	return cmocka_run_group_tests_name("unit_storage", tests, NULL, NULL);
}
