/* Integration: `errq admin backup` (Query.Backup) and one collector per port and database.
 *
 *  - a backup taken while raw streams keep reporting (and being acknowledged) holds every
 *    event acknowledged before it started (by event id); a second errqd started on the copy
 *    shows group counts equal to the events in the copy (the deferred aggregates are rebuilt
 *    past meta.aggregated_through) and the circuit that had tripped still open;
 *  - the refusals: a relative path, an existing file (and --force), a missing directory, the
 *    live database, a second backup while one runs, a collector with storage: none, each with
 *    its gRPC status and errq exit code; ingest goes on (batches acknowledged) while a paced backup holds its snapshot; a
 *    running backup is cancelled by SIGTERM, its temporary file removed, and errqd
 *    still exits 0;
 *  - a second errqd on the same database or the same gRPC port refuses to start.
 * Every wait is a deadline (HARNESS_DEADLINE_MS); nothing sleeps for an outcome.
 * ERRQ_TEST_FILTER=test_refusals runs one test. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <cmocka.h>

#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

#define POLL_MS 20
#define RULE "trip-errors"
#define LOAD_STREAMS 2

static struct errq_idgen G;


static bool exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

static void write_config(const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "rules:\n"
		   "  - name: " RULE "\n"
		   "    match: {service: \"trip-*\"}\n"
		   "    group_by: [service]\n"
		   "    trip: {failures: 3, window: 60s}\n"
		   "    recovery_timeout: 600s\n");
	assert_int_equal(fclose(f), 0);
}

/* Runs errq at addr (arguments from ap); checks the exit code; returns stdout (malloc'd),
 * stderr in *err if asked. */
static char *errq_vrun(const char *addr, int want, char **err, const char *a0, va_list ap)
{
	const char *args[16];
	int n = 0;
	for (const char *a = a0; a && n < 15; a = va_arg(ap, const char *))
		args[n++] = a;
	args[n] = NULL;
	return harness_errq(addr, want, err, args);
}

static char *errq_run(const char *addr, int want, char **err, const char *a0, ...) __attribute__((sentinel));
static char *errq_run(const char *addr, int want, char **err, const char *a0, ...)
{
	va_list ap;
	va_start(ap, a0);
	char *out = errq_vrun(addr, want, err, a0, ap);
	va_end(ap);
	return out;
}

/* Runs errq, which must exit 0 and print one JSON document: that document. */
static json_t *errq_json(const char *addr, const char *a0, ...) __attribute__((sentinel));
static json_t *errq_json(const char *addr, const char *a0, ...)
{
	va_list ap;
	va_start(ap, a0);
	char *out = errq_vrun(addr, 0, NULL, a0, ap);
	va_end(ap);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	if (!j)
		fail_msg("errq %s printed no JSON (%s): %s", a0, je.text, out);
	free(out);
	return j;
}

/* The state of RULE's circuit for service svc at addr ("" when there is none). */
static void circuit_state(const char *addr, const char *svc, char *state, size_t n)
{
	json_t *arr = errq_json(addr, "circuits", "-o", "json", NULL);
	size_t i;
	json_t *c;
	state[0] = '\0';
	assert_true(json_is_array(arr));
	json_array_foreach(arr, i, c)
	{
		json_t *key = json_object_get(c, "key");
		const char *s = json_string_value(json_object_get(key, "service"));
		if (!strcmp(json_string_value(json_object_get(c, "rule")), RULE) && s && !strcmp(s, svc))
			errq_snprintf(state, n, "%s", json_string_value(json_object_get(c, "state")));
	}
	json_decref(arr);
}

static void wait_circuit_open(const char *addr, const char *svc)
{
	char st[32];
	for (int waited = 0;; waited += POLL_MS) {
		circuit_state(addr, svc, st, sizeof(st));
		if (!strcmp(st, "open"))
			return;
		if (waited > HARNESS_DEADLINE_MS)
			fail_msg("circuit %s service=%s is '%s', not open", RULE, svc, st);
		harness_msleep(POLL_MS);
	}
}

/* One integer from a query on a database file. */
static int64_t db_int(const char *db_path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static uint64_t count_events(const char *db_path)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	uint64_t n = 0;
	assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	n = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

/* ---- a backup under load restores with every acknowledged event, counts and circuits ---- */

static void test_backup_under_load(void **state)
{
	(void)state;
	struct errqd_proc d, r;
	char cfg[400], copy[400], restored[400];
	memset(&d, 0, sizeof(d));
	memset(&r, 0, sizeof(r));
	errq_snprintf(d.dir, sizeof(d.dir), "/tmp/errq-backup-XXXXXX");
	assert_non_null(mkdtemp(d.dir));
	errq_snprintf(cfg, sizeof(cfg), "%s/errqd.yaml", d.dir);
	errq_snprintf(copy, sizeof(copy), "%s/copy.db", d.dir);
	write_config(cfg);
	const char *args[] = {"--config", cfg, NULL};
	assert_int_equal(errqd_start(&d, args), 0);

	/* a circuit that trips before the backup */
	assert_int_equal(report_batch(d.addr, &G, 3, "trip-a", "TimeoutError"), 3);
	wait_circuit_open(d.addr, "trip-a");

	/* a load that goes on through the backup */
	struct loadgen lg = {.addr = d.addr, .nstreams = LOAD_STREAMS, .batch = 20, .inflight = 4,
			     .max_batches = 200000, .service_prefix = "load"};
	assert_int_equal(loadgen_start(&lg), 0);
	for (int waited = 0; atomic_load(&lg.acked_batches) < 50; waited += POLL_MS) {
		if (waited > HARNESS_DEADLINE_MS)
			fail_msg("the load was not acknowledged (%d batches)", atomic_load(&lg.acked_batches));
		harness_msleep(POLL_MS);
	}
	int marks[LOAD_STREAMS];
	loadgen_ack_marks(&lg, marks);
	int acked_before = 0;
	for (int i = 0; i < LOAD_STREAMS; i++)
		acked_before += marks[i];
	assert_true(acked_before > 0);

	json_t *b = errq_json(d.addr, "admin", "backup", copy, "-o", "json", NULL);
	int acked_at_end = atomic_load(&lg.acked_batches);
	assert_string_equal(json_string_value(json_object_get(b, "path")), copy);
	assert_string_equal(json_string_value(json_object_get(b, "check")), "ok");
	json_int_t bytes = json_integer_value(json_object_get(b, "bytes"));
	json_int_t pages = json_integer_value(json_object_get(b, "pages"));
	json_int_t page_size = json_integer_value(json_object_get(b, "page_size"));
	json_int_t events = json_integer_value(json_object_get(b, "events"));
	assert_true(pages > 0);
	assert_int_equal(bytes, pages * page_size);
	assert_true(json_integer_value(json_object_get(b, "steps")) >= 1);
	assert_non_null(json_object_get(b, "duration_ms"));
	/* the trip events and every batch acknowledged before the backup began */
	assert_true(events >= 3 + (json_int_t)acked_before * lg.batch);
	json_decref(b);

	/* ingest kept going: more batches are acknowledged after the backup */
	for (int waited = 0; atomic_load(&lg.acked_batches) < acked_at_end + 20; waited += POLL_MS) {
		if (waited > HARNESS_DEADLINE_MS)
			fail_msg("ingest stopped after the backup (%d acknowledged)", atomic_load(&lg.acked_batches));
		harness_msleep(POLL_MS);
	}
	loadgen_stop(&lg);

	/* the copy stands alone: no -wal or -journal beside it, nothing left of PATH.tmp */
	char side[440];
	errq_snprintf(side, sizeof(side), "%s-wal", copy);
	assert_false(exists(side));
	errq_snprintf(side, sizeof(side), "%s-journal", copy);
	assert_false(exists(side));
	errq_snprintf(side, sizeof(side), "%s.tmp", copy);
	assert_false(exists(side));
	assert_int_equal(loadgen_missing_acked_before(&lg, marks, copy), 0);
	uint64_t in_copy = count_events(copy);
	assert_int_equal(in_copy, (uint64_t)events);
	/* whether the copy caught aggregates not yet written (then the restore rebuilds them) */
	int64_t agg = db_int(copy, "SELECT value FROM meta WHERE key = 'aggregated_through'");
	int64_t last = db_int(copy, "SELECT coalesce(max(id), 0) FROM events");
	fprintf(stderr, "backup: %llu events (%d batches acknowledged before it began, %d when it ended), "
			"%lld pages; aggregated through event %lld of %lld\n",
		(unsigned long long)in_copy, acked_before, acked_at_end, (long long)pages, (long long)agg,
		(long long)last);

	/* restore: a second errqd on the copy (its own directory, as errq.db) */
	errq_snprintf(r.dir, sizeof(r.dir), "/tmp/errq-restore-XXXXXX");
	assert_non_null(mkdtemp(r.dir));
	errq_snprintf(restored, sizeof(restored), "%s/errq.db", r.dir);
	assert_int_equal(rename(copy, restored), 0);
	assert_int_equal(errqd_start(&r, args), 0);

	Errq__V1__StatusResponse *st = query_status(r.addr);
	assert_non_null(st);
	assert_int_equal(st->events_total, in_copy); /* the sum of the group totals */
	errq__v1__status_response__free_unpacked(st, NULL);
	json_t *groups = errq_json(r.addr, "groups", "-o", "json", "--limit", "1000", NULL);
	json_t *g;
	size_t i;
	uint64_t total = 0;
	json_array_foreach(groups, i, g) total += (uint64_t)json_integer_value(json_object_get(g, "total"));
	json_decref(groups);
	assert_int_equal(total, in_copy);
	char cs[32];
	circuit_state(r.addr, "trip-a", cs, sizeof(cs));
	assert_string_equal(cs, "open");

	loadgen_free(&lg);
	assert_int_equal(errqd_stop(&r, SIGTERM), 0);
	assert_int_equal(errqd_stop(&d, SIGTERM), 0);
	errqd_cleanup(&r);
	errqd_cleanup(&d);
}

/* ---- refusals ---- */

struct bg_call {
	const char *addr;
	Errq__V1__BackupRequest req;
	grpc_status_code st;
	char details[512];
	pthread_t th;
};

static void *bg_backup(void *arg)
{
	struct bg_call *c = arg;
	grpc_slice resp;
	c->st = query_call(c->addr, "/errq.v1.Query/Backup", &c->req.base, &resp, c->details, sizeof(c->details));
	grpc_slice_unref(resp);
	return NULL;
}

static grpc_status_code backup_rpc(const char *addr, const char *path, bool force, char *details, size_t dsz)
{
	Errq__V1__BackupRequest req = ERRQ__V1__BACKUP_REQUEST__INIT;
	grpc_slice resp;
	req.path = (char *)path;
	req.force = force;
	grpc_status_code st = query_call(addr, "/errq.v1.Query/Backup", &req.base, &resp, details, dsz);
	grpc_slice_unref(resp);
	return st;
}

static void assert_has(const char *hay, const char *needle)
{
	if (!hay || !strstr(hay, needle))
		fail_msg("'%s' not in '%s'", needle, hay ? hay : "(null)");
}

/* The Backup RPC refuses path with code and a reason holding why; `errq admin backup` exits
 * exit_code and says it too. */
static void assert_backup_refused(const char *addr, const char *path, grpc_status_code code, int exit_code,
				  const char *why)
{
	char det[512], *err = NULL;
	assert_int_equal(backup_rpc(addr, path, false, det, sizeof(det)), code);
	assert_has(det, why);
	free(errq_run(addr, exit_code, &err, "admin", "backup", path, NULL));
	assert_has(err, why);
	free(err);
}

static void test_refusals(void **state)
{
	(void)state;
	struct errqd_proc d;
	char path[400], det[512], *err = NULL, *out;
	memset(&d, 0, sizeof(d));
	assert_int_equal(errqd_start(&d, NULL), 0);
	assert_int_equal(report_batch(d.addr, &G, 2, "svc", "TimeoutError"), 2);

	/* relative: INVALID_ARGUMENT from the collector, exit 1 from errq */
	assert_int_equal(backup_rpc(d.addr, "copy.db", false, det, sizeof(det)), GRPC_STATUS_INVALID_ARGUMENT);
	assert_has(det, "'copy.db' is relative");
	free(errq_run(d.addr, 1, &err, "admin", "backup", "copy.db", NULL));
	assert_has(err, "is relative");
	free(err);

	/* missing directory: FAILED_PRECONDITION, exit 3 */
	errq_snprintf(path, sizeof(path), "%s/no/such/dir/copy.db", d.dir);
	assert_backup_refused(d.addr, path, GRPC_STATUS_FAILED_PRECONDITION, 3, "does not exist");

	/* the live database, even with --force: INVALID_ARGUMENT */
	assert_int_equal(backup_rpc(d.addr, d.db, true, det, sizeof(det)), GRPC_STATUS_INVALID_ARGUMENT);
	assert_has(det, "live database");
	errq_snprintf(path, sizeof(path), "%s-wal", d.db);
	assert_int_equal(backup_rpc(d.addr, path, true, det, sizeof(det)), GRPC_STATUS_INVALID_ARGUMENT);
	assert_has(det, "live database");

	/* an existing file: ALREADY_EXISTS, exit 1; --force replaces it */
	errq_snprintf(path, sizeof(path), "%s/copy.db", d.dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a database", f);
	fclose(f);
	assert_int_equal(backup_rpc(d.addr, path, false, det, sizeof(det)), GRPC_STATUS_ALREADY_EXISTS);
	assert_has(det, "exists");
	free(errq_run(d.addr, 1, &err, "admin", "backup", path, NULL));
	assert_has(err, "--force");
	free(err);
	out = errq_run(d.addr, 0, NULL, "admin", "backup", "--force", path, NULL);
	assert_has(out, "events    2");
	free(out);
	assert_int_equal(count_events(path), 2);

	/* one at a time: a backup paced to 1 KiB/s (4 s a page) is still copying when the
	 * second request comes, which is refused (RESOURCE_EXHAUSTED, exit 2) */
	struct bg_call a = {.addr = d.addr};
	char slow[400], slow_tmp[440], second[400];
	errq_snprintf(slow, sizeof(slow), "%s/slow.db", d.dir);
	errq_snprintf(slow_tmp, sizeof(slow_tmp), "%s.tmp", slow);
	errq_snprintf(second, sizeof(second), "%s/second.db", d.dir);
	errq__v1__backup_request__init(&a.req);
	a.req.path = slow;
	a.req.max_bytes_per_second = 1024;
	assert_int_equal(pthread_create(&a.th, NULL, bg_backup, &a), 0);
	for (int waited = 0; !exists(slow_tmp); waited += POLL_MS) {
		if (waited > HARNESS_DEADLINE_MS)
			fail_msg("the first backup did not start ('%s')", slow_tmp);
		harness_msleep(POLL_MS);
	}
	free(errq_run(d.addr, 2, &err, "admin", "backup", second, NULL));
	assert_has(err, "a backup is already running");
	free(err);
	assert_false(exists(second));
	/* ingest commits and acknowledges while the backup holds its snapshot */
	struct loadgen lg = {.addr = d.addr, .nstreams = 1, .batch = 20, .inflight = 4, .max_batches = 200000,
			     .service_prefix = "during"};
	assert_int_equal(loadgen_start(&lg), 0);
	for (int waited = 0; atomic_load(&lg.acked_batches) < 100; waited += POLL_MS) {
		if (waited > HARNESS_DEADLINE_MS)
			fail_msg("ingest stalled during a backup (%d batches acknowledged)", atomic_load(&lg.acked_batches));
		harness_msleep(POLL_MS);
	}
	assert_true(exists(slow_tmp)); /* still copying (4 s a page) */
	loadgen_stop(&lg);
	assert_int_equal(loadgen_missing_acked(&lg, d.db), 0);
	loadgen_free(&lg);
	/* SIGTERM cancels the running backup: UNAVAILABLE, no temporary file, exit 0 */
	assert_int_equal(errqd_stop(&d, SIGTERM), 0);
	pthread_join(a.th, NULL);
	assert_int_equal(a.st, GRPC_STATUS_UNAVAILABLE);
	assert_has(a.details, "stopping");
	assert_false(exists(slow_tmp));
	assert_false(exists(slow));

	/* a collector that stores nothing has nothing to back up: FAILED_PRECONDITION, exit 3 */
	const char *none[] = {"--storage", "none", NULL};
	assert_int_equal(errqd_start(&d, none), 0);
	free(errq_run(d.addr, 3, &err, "admin", "backup", slow, NULL));
	assert_has(err, "storage: none");
	free(err);
	assert_false(exists(slow));
	assert_int_equal(errqd_stop(&d, SIGTERM), 0);
	errqd_cleanup(&d);
}

/* ---- one collector per database and per port ---- */

static void test_one_collector(void **state)
{
	(void)state;
	struct errqd_proc d;
	char *err = NULL, pid[32], other[400];
	memset(&d, 0, sizeof(d));
	assert_int_equal(errqd_start(&d, NULL), 0);
	errq_snprintf(pid, sizeof(pid), "(pid %d,", (int)d.pid);

	/* same database, another port */
	const char *same_db[] = {"--listen", "127.0.0.1:0", "--db", d.db, "--http-listen", "127.0.0.1:0", NULL};
	int rc = errqd_run_once(same_db, &err);
	assert_int_equal(rc, 1); /* a refusal, never a crash */
	assert_has(err, "is in use by another errqd");
	assert_has(err, pid);
	free(err);

	/* same port, another database */
	errq_snprintf(other, sizeof(other), "%s/other.db", d.dir);
	const char *same_port[] = {"--listen", d.addr, "--db", other, "--http-listen", "127.0.0.1:0", NULL};
	rc = errqd_run_once(same_port, &err);
	assert_int_equal(rc, 1);
	char want[128];
	errq_snprintf(want, sizeof(want), "cannot listen on '%s'", d.addr);
	assert_has(err, want);
	free(err);

	/* the first one never noticed: it still answers */
	assert_int_equal(report_batch(d.addr, &G, 1, "svc", "TimeoutError"), 1);
	/* the lock goes with the process: a new errqd on the database starts */
	assert_int_equal(errqd_stop(&d, SIGTERM), 0);
	assert_int_equal(errqd_start(&d, NULL), 0);
	assert_int_equal(report_batch(d.addr, &G, 1, "svc", "TimeoutError"), 1);
	assert_int_equal(errqd_stop(&d, SIGTERM), 0);
	errqd_cleanup(&d);
}

/* PostgreSQL (integration_pg_backup): no online backup, the RPC and the CLI say what to use
 * instead, and the collector goes on storing. */
static void test_refused_on_postgres(void **state)
{
	(void)state;
	struct errqd_proc d;
	char path[400];
	memset(&d, 0, sizeof(d));
	assert_int_equal(errqd_start(&d, NULL), 0);
	assert_int_equal(report_batch(d.addr, &G, 2, "svc", "TimeoutError"), 2);
	errq_snprintf(path, sizeof(path), "%s/copy.db", d.dir);
	assert_backup_refused(d.addr, path, GRPC_STATUS_FAILED_PRECONDITION, 3, "use pg_dump or pg_basebackup");
	assert_false(exists(path));
	assert_int_equal(report_batch(d.addr, &G, 3, "svc", "TimeoutError"), 3);
	assert_int_equal(errqd_stop(&d, SIGTERM), 0);
	errqd_cleanup(&d);
}

int main(void)
{
	errq_idgen_init(&G);
	grpc_init();
	/* SQLite: a copy made online, restored and compared; PostgreSQL: the refusal */
	const struct CMUnitTest lite[] = {
	    cmocka_unit_test(test_backup_under_load),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_one_collector),
	};
	const struct CMUnitTest pg[] = {cmocka_unit_test(test_refused_on_postgres)};
	if (getenv("ERRQ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("ERRQ_TEST_FILTER"));
	int rc = harness_backend() == HARNESS_SQLITE
		     ? cmocka_run_group_tests_name("integration_backup", lite, NULL, NULL)
		     : cmocka_run_group_tests_name("integration_pg_backup", pg, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
