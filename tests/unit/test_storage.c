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
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
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

/* One collector per database: a second lock on the same file fails and names the holder. */
static void test_lock(void **state)
{
	struct store_lock *a = NULL, *b = NULL;
	char err[512], want[64], lockp[160];
	assert_int_equal(store_lock(&a, path, err, sizeof(err)), 0);
	assert_int_equal(store_lock(&b, path, err, sizeof(err)), -1);
	assert_null(b);
	snprintf(want, sizeof(want), "(pid %ld,", (long)getpid());
	assert_non_null(strstr(err, "is in use by another errqd"));
	assert_non_null(strstr(err, want));
	/* another name of the same file: a symlink to the database */
	char link[160];
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(link, sizeof(link), "%s/link.db", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(store_lock(&b, link, err, sizeof(err)), -1);
	assert_non_null(strstr(err, want));
	store_unlock(a);
	assert_int_equal(store_lock(&b, path, err, sizeof(err)), 0);
	store_unlock(b);
	store_unlock(NULL);
	snprintf(lockp, sizeof(lockp), "%s.lock", path);
	assert_int_equal(unlink(lockp), 0);
	assert_int_equal(unlink(link), 0);
}

static bool file_exists(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0;
}

static void test_backup(void **state)
{
	struct store *s = open_writer();
	add_range(s, "fp-backup", 0, 50, 1000000000ULL, false);

	char dest[160], tmp[170], err[512];
	struct store_backup_result r;
	snprintf(dest, sizeof(dest), "%s/copy.db", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
	struct store_backup_opts o = {.src_path = path, .tmp_path = tmp, .dest_path = dest};
	/* a copy while the writer's handle is open, checked, counted and renamed */
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_OK);
	assert_int_equal(r.events, 50);
	assert_true(r.pages > 0);
	assert_int_equal(r.bytes, r.pages * r.page_size);
	assert_false(file_exists(tmp));
	struct store *c = NULL;
	struct store_opts ro = {.path = dest, .readonly = true};
	assert_int_equal(store_open(&c, &ro, err, sizeof(err)), 0);
	uint64_t n = 0;
	assert_int_equal(store_count_events(c, &n), 0);
	assert_int_equal(n, 50);
	store_close(c);
	assert_int_equal(unlink(dest), 0);

	/* an existing temporary file is refused and left alone */
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_EXISTS);
	assert_true(file_exists(tmp));
	assert_int_equal(unlink(tmp), 0);

	/* paced to one page a step: cancelled after the first, or past its deadline; nothing left */
	atomic_bool cancel;
	atomic_init(&cancel, true);
	o.max_bytes_per_sec = 4096;
	o.cancel = &cancel;
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_CANCELLED);
	assert_non_null(strstr(err, "cancelled"));
	assert_false(file_exists(tmp));
	assert_false(file_exists(dest));
	atomic_store(&cancel, false);
	o.max_ns = 1;
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_TIMEOUT);
	assert_non_null(strstr(err, "took longer"));
	assert_false(file_exists(tmp));
	assert_false(file_exists(dest));
	store_close(s);
}

struct bg_backup {
	struct store_backup_opts o;
	atomic_bool cancel;
	int rc;
	char err[512];
};

static void *bg_backup_main(void *arg)
{
	struct bg_backup *b = arg;
	struct store_backup_result r;
	b->rc = store_backup(&b->o, &r, b->err, sizeof(b->err));
	return NULL;
}

/* While a backup holds its snapshot the writer neither waits on it nor stops committing: its
 * WAL catch-up (a RESTART checkpoint, which would wait for the snapshot through the busy
 * handler, here 10 minutes: far past the test's timeout) is skipped. */
static void test_backup_does_not_hold_writer(void **state)
{
	struct store *s = NULL;
	char err[512], dest[160], tmp[170];
	struct store_opts wo = {.path = path, .ckpt_external = true, .busy_timeout_ms = 600000};
	assert_int_equal(store_open(&s, &wo, err, sizeof(err)), 0);
	add_range(s, "fp-pin", 0, 20, 1000000000ULL, false);

	snprintf(dest, sizeof(dest), "%s/pinned.db", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
	struct bg_backup b = {.o = {.src_path = path, .tmp_path = tmp, .dest_path = dest, .max_bytes_per_sec = 1}};
	atomic_init(&b.cancel, false);
	b.o.cancel = &b.cancel;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_backup_main, &b), 0);
	/* paced to a byte a second, the backup holds its snapshot until cancelled */
	for (int waited = 0; !store_backup_pinning(); waited++) {
		if (waited > 30000)
			fail_msg("the backup did not take its snapshot");
		usleep(1000);
	}
	add_range(s, "fp-pin", 20, 40, 1000000000ULL, false);
	assert_int_equal(store_wal_catch_up(s, 1), 0); /* skipped, not waiting */
	atomic_store(&b.cancel, true);
	pthread_join(th, NULL);
	assert_int_equal(b.rc, STORE_BACKUP_CANCELLED);
	assert_false(file_exists(tmp));
	assert_int_equal(store_wal_catch_up(s, 1), 1); /* no snapshot left: it runs */
	store_close(s);
}

/* A backup taken between two aggregate flushes holds events past 'aggregated_through'; the
 * collector that opens the copy counts them again, so its groups agree with its events. */
static void test_backup_mid_flush(void **state)
{
	struct store *s = open_writer();
	uint64_t t0 = 1800000000ULL * 1000000000ULL;
	char dest[100], tmp[110], err[512], saved[128];
	add_range(s, "agg", 0, 3, t0, false);
	add_range(s, "agg", 3, 7, t0, true); /* stored, counts pending */
	assert_true(store_agg_pending(s));
	assert_true(strlen(dir) + sizeof("/mid.db") <= sizeof(dest));
	snprintf(dest, sizeof(dest), "%s/mid.db", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
	struct store_backup_opts o = {.src_path = path, .tmp_path = tmp, .dest_path = dest};
	struct store_backup_result r;
	assert_int_equal(store_backup(&o, &r, err, sizeof(err)), STORE_BACKUP_OK);
	assert_int_equal(r.events, 7);
	store_close(s);

	/* q1 reads `path`: point it at the copy */
	snprintf(saved, sizeof(saved), "%s", path);
	snprintf(path, sizeof(path), "%s", dest);
	assert_int_equal(q1("SELECT value FROM meta WHERE key = 'aggregated_through'"), 3);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 3);
	struct store *c = open_writer(); /* as errqd opens it: aggregates events 4..7 */
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'agg'"), 7);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 7);
	assert_int_equal(q1("SELECT value FROM meta WHERE key = 'aggregated_through'"), 7);
	int64_t ids[32] = {0};
	struct store_event_filter f = {.fingerprint = "agg", .limit = 20};
	assert_int_equal(store_list_events(c, &f, collect_ids, ids), 0);
	assert_int_equal(ids[0], 7); /* the group's chain holds every event of the copy */
	store_close(c);
	const char *sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char p[200];
		snprintf(p, sizeof(p), "%s%s", dest, sfx[i]);
		unlink(p);
	}
	snprintf(path, sizeof(path), "%s", saved);
}

/* ---- retention: folding minutes into hours, incremental vacuum (injected now) ---- */

#define MIN_NS (60ULL * 1000000000ULL)
#define HOUR_NS (60 * MIN_NS)

/* One committed event of group fp (service svc, environment env or NULL) received at t;
 * k makes its id unique. */
static void add_at(struct store *s, const char *fp, const char *svc, const char *env, uint64_t t, int k,
		   const char *msg)
{
	uint8_t id[16];
	struct store_event e = ev(id, 0, fp, t);
	id[1] = 0xE0;
	id[2] = (uint8_t)(k >> 8);
	id[3] = (uint8_t)k;
	e.service = svc;
	e.environment = env;
	if (msg)
		e.message = msg;
	assert_int_equal(store_txn_begin(s), 0);
	assert_int_equal(store_txn_add_event(s, &e), 1);
	assert_int_equal(store_txn_commit(s), 0);
}

/* Runs upkeep at now until it has nothing left (bounded). */
static void maintain_all(struct store *s, const struct store_maint_opts *mo)
{
	bool more = true;
	for (int i = 0; more; i++) {
		assert_true(i < 1000);
		assert_int_equal(store_maintain(s, mo, &more), 0);
	}
}

/* q1 of a query made with printf. */
static int64_t q1f(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t q1f(const char *fmt, ...)
{
	char sql[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return q1(sql);
}

#define HOURS_OF(fp) \
	"FROM group_hours h JOIN groups g ON g.id = h.group_id WHERE g.fingerprint = '" fp "' AND h.hour = %lld"

/* Minute counts older than retention become hourly counts (per group and environment, and
 * per service), a whole hour at a time; newer minutes stay as they are; group totals and
 * the sum over minutes and hours never change. */
static void test_retention_folds_minutes_into_hours(void **state)
{
	struct store *s = open_writer();
	const uint64_t base = 500000ULL * HOUR_NS; /* an hour boundary */
	const int64_t h0 = (int64_t)(base / HOUR_NS), m0 = (int64_t)(base / MIN_NS);
	int k = 0;
	for (int i = 0; i < 3; i++) /* hour 0, minute 0: two without environment, one in prod */
		add_at(s, "fa", "checkout", i == 2 ? "prod" : NULL, base + (uint64_t)i * 1000, k++, NULL);
	add_at(s, "fb", "billing", NULL, base + 30 * MIN_NS, k++, NULL); /* hour 0, minute 30 */
	for (int i = 0; i < 2; i++) /* hour 0, minute 59 (in receive order: ids are) */
		add_at(s, "fa", "checkout", NULL, base + 59 * MIN_NS + (uint64_t)i, k++, NULL);
	for (int i = 0; i < 4; i++) /* hour 1, minute 10 */
		add_at(s, "fa", "checkout", NULL, base + 70 * MIN_NS + (uint64_t)i, k++, NULL);
	assert_int_equal(q1("SELECT count(*) FROM group_minutes"), 5);
	assert_int_equal(q1("SELECT sum(count) FROM group_minutes"), 10);
	assert_int_equal(q1("SELECT count(*) FROM group_hours"), 0);

	/* an hour not wholly past the cutoff is not folded: cutoff at hour 0's minute 59 */
	struct store_maint_opts mo = {.now_ns = base + HOUR_NS + 59 * MIN_NS, .retention_ns = HOUR_NS};
	maintain_all(s, &mo);
	assert_int_equal(q1("SELECT count(*) FROM group_hours"), 0);
	assert_int_equal(q1("SELECT count(*) FROM group_minutes"), 5);
	assert_int_equal(q1("SELECT count(*) FROM events"), 6); /* the four of minute 59 and hour 1 */

	/* cutoff at hour 1's minute 5: hour 0 is folded, hour 1 is not */
	mo.now_ns = base + 2 * HOUR_NS + 5 * MIN_NS;
	maintain_all(s, &mo);
	assert_int_equal(q1f("SELECT count(*) FROM group_minutes WHERE minute < %lld", (long long)(m0 + 60)), 0);
	assert_int_equal(q1f("SELECT sum(count) FROM group_minutes WHERE minute = %lld", (long long)(m0 + 70)), 4);
	assert_int_equal(q1f("SELECT sum(h.count) " HOURS_OF("fa"), (long long)(h0)), 5);
	assert_int_equal(q1f("SELECT count(*) " HOURS_OF("fa"), (long long)(h0)), 2); /* one row per environment */
	assert_int_equal(q1f("SELECT max(h.count) * 10 + min(h.count) " HOURS_OF("fa"), (long long)(h0)), 41); /* 4 + 1 in prod */
	assert_int_equal(q1f("SELECT h.count " HOURS_OF("fb"), (long long)(h0)), 1);
	assert_int_equal(q1("SELECT count(*) FROM group_hours"), 3);
	/* per service, too */
	assert_int_equal(q1f("SELECT count FROM service_hours WHERE service = 'checkout' AND hour = %lld", (long long)(h0)), 5);
	assert_int_equal(q1f("SELECT count FROM service_hours WHERE service = 'billing' AND hour = %lld", (long long)(h0)), 1);
	assert_int_equal(q1f("SELECT count(*) FROM service_minutes WHERE minute < %lld", (long long)(m0 + 60)), 0);
	assert_int_equal(q1f("SELECT sum(count) FROM service_minutes WHERE minute = %lld", (long long)(m0 + 70)), 4);
	/* nothing counted twice or lost: minutes + hours = totals, which stay */
	assert_int_equal(q1("SELECT (SELECT sum(count) FROM group_minutes) + (SELECT sum(count) FROM group_hours)"), 10);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'fa'"), 9);
	assert_int_equal(q1("SELECT total FROM groups WHERE fingerprint = 'fb'"), 1);
	assert_int_equal(q1("SELECT count(*) FROM events"), 4); /* hour 1's, newer than the cutoff */
	struct store_write_stats ws;
	store_get_write_stats(s, &ws);
	assert_int_equal(ws.minutes_folded, 4); /* group minute rows: fa 0 (x2 envs), fa 59, fb 30 */
	assert_int_equal(ws.events_deleted_retention, 6);

	/* a minute of an already folded hour (late aggregate) adds to the hour's count */
	add_at(s, "fb", "billing", NULL, base + 31 * MIN_NS, k++, NULL);
	maintain_all(s, &mo);
	assert_int_equal(q1f("SELECT h.count " HOURS_OF("fb"), (long long)(h0)), 2);
	assert_int_equal(q1("SELECT (SELECT sum(count) FROM group_minutes) + (SELECT sum(count) FROM group_hours)"), 11);
	store_close(s);
}

/* Deleted events leave free pages; upkeep gives them back to the file system
 * STORE_VACUUM_PAGES at a time (bounded work a step), until fewer than that are free. */
static void test_retention_incremental_vacuum(void **state)
{
	struct store *s = open_writer();
	const uint64_t base = 500000ULL * HOUR_NS;
	char msg[2048];
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	for (int k = 0; k < 2400; k++) { /* ~5 MB of messages: well over 1000 pages */
		msg[k % 2000] = (char)('a' + k % 26);
		add_at(s, "fv", "checkout", NULL, base + (uint64_t)k, k, msg);
	}
	int64_t pages0 = q1("PRAGMA page_count");
	assert_true(pages0 > 1200);
	assert_true(q1("PRAGMA freelist_count") < 256);

	/* retention deletes them all (1000 a step); each step then vacuums at most 256 pages */
	struct store_maint_opts mo = {.now_ns = base + 3 * HOUR_NS, .retention_ns = HOUR_NS};
	bool more = true;
	int steps = 0;
	while (more) {
		assert_int_equal(store_maintain(s, &mo, &more), 0);
		assert_true(++steps < 100);
	}
	assert_int_equal(q1("SELECT count(*) FROM events"), 0);
	struct store_write_stats ws;
	store_get_write_stats(s, &ws);
	assert_true(ws.pages_vacuumed > 0);
	assert_true(ws.pages_vacuumed <= (uint64_t)steps * 256);
	/* further steps: 256 free pages fewer each, the file shorter by as much */
	int64_t freel = q1("PRAGMA freelist_count"), pages = q1("PRAGMA page_count");
	assert_true(freel >= 256); /* more was freed than the deleting steps could vacuum */
	while (freel >= 256) {
		uint64_t before = ws.pages_vacuumed;
		assert_int_equal(store_maintain(s, &mo, &more), 0);
		assert_false(more);
		store_get_write_stats(s, &ws);
		assert_int_equal(ws.pages_vacuumed - before, 256);
		assert_int_equal(q1("PRAGMA freelist_count"), freel - 256);
		/* the file shrinks by the pages given back (and a pointer-map page at times) */
		int64_t now_pages = q1("PRAGMA page_count");
		assert_in_range(pages - now_pages, 256, 258);
		freel -= 256;
		pages = now_pages;
	}
	/* fewer than 256 free: left alone (not worth a step) */
	uint64_t before = ws.pages_vacuumed;
	assert_int_equal(store_maintain(s, &mo, &more), 0);
	store_get_write_stats(s, &ws);
	assert_int_equal(ws.pages_vacuumed, before);
	assert_int_equal(q1("PRAGMA freelist_count"), freel);
	assert_true(pages < pages0 / 2);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_schema_and_pragmas, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_insert_dedupe_and_groups, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_pagination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkpointer_checkpoints, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deferred_aggregates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention_folds_minutes_into_hours, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention_incremental_vacuum, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_mid_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_does_not_hold_writer, setup, teardown),
	};
	return cmocka_run_group_tests_name("unit_storage", tests, NULL, NULL);
}
