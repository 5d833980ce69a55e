/* Unit: the storage seam (issue 17) — storage/store_url.c (the database setting parsed, its
 * password redacted), storage/store_api.c (every store_* call reaching its backend's member,
 * and what the optional members answer when a backend leaves them NULL), and what the calls
 * that take a database do with a PostgreSQL URL: no lock, no checkpointer, no online backup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend.h"
#include "storage.h"
#include "storage_alerts.h"
#include "store_overflow.h"
#include "store_url.h"
#include "svc_common.h"

/* ---- store_url_parse ---- */

static void test_url_sqlite(void **state)
{
	(void)state;
	struct store_url u;
	char err[512];
	static const struct {
		const char *db, *path;
	} ok[] = {
	    {"errq.db", "errq.db"},
	    {"/var/lib/errq/errq.db", "/var/lib/errq/errq.db"},
	    {"./data/errq.db", "./data/errq.db"},
	    {"sqlite:///var/lib/errq/errq.db", "/var/lib/errq/errq.db"},
	    {"sqlite://data/errq.db", "data/errq.db"},
	    {"file:errq.db", "file:errq.db"}, /* not a URL SQLite reads as one: a file name */
	    {"dir:with:colons/x.db", "dir:with:colons/x.db"},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		memset(&u, 0x5a, sizeof(u));
		assert_int_equal(store_url_parse(ok[i].db, &u, err, sizeof(err)), 0);
		assert_int_equal(u.kind, STORE_URL_SQLITE);
		assert_string_equal(u.path, ok[i].path);
		assert_int_equal(store_url_kind(ok[i].db), STORE_URL_SQLITE);
	}
}

static void test_url_postgres(void **state)
{
	(void)state;
	struct store_url u;
	char err[512];
	const char *ok[] = {"postgres://errq@db.example.com:5432/errq", "postgresql://errq@db/errq?sslmode=verify-full",
			    "postgres://", "postgresql:///errq?host=/run/postgresql"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(store_url_parse(ok[i], &u, err, sizeof(err)), 0);
		assert_int_equal(u.kind, STORE_URL_POSTGRES);
		assert_string_equal(u.path, "");
		assert_int_equal(store_url_kind(ok[i]), STORE_URL_POSTGRES);
	}
}

static void test_url_refused(void **state)
{
	(void)state;
	struct store_url u;
	char err[512], longdb[STORE_URL_MAX + 16];
	static const struct {
		const char *db, *msg;
	} bad[] = {
	    {"", "the database setting is empty"},
	    {"sqlite://", "database 'sqlite://' names no file"},
	    {"mysql://root@db/errq", "database 'mysql://root@db/errq': unknown scheme 'mysql://'"},
	    {"Postgres://u@h/d", "unknown scheme 'Postgres://'"}, /* libpq's prefixes are lower case */
	    {"postgre://u@h/d", "unknown scheme 'postgre://'"},
	    {"sqlite://postgres://u@h/d", "unknown scheme 'postgres://'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(store_url_parse(bad[i].db, &u, err, sizeof(err)), -1);
		if (!strstr(err, bad[i].msg))
			fail_msg("'%s': got '%s', expected '%s'", bad[i].db, err, bad[i].msg);
	}
	assert_int_equal(store_url_parse(NULL, &u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	/* too long: refused, and the part quoted is redacted */
	memset(longdb, 'a', sizeof(longdb) - 1);
	longdb[sizeof(longdb) - 1] = '\0';
	memcpy(longdb, "postgres://u:topsecret@h/", 25);
	assert_int_equal(store_url_parse(longdb, &u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than 1023 bytes"));
	assert_null(strstr(err, "topsecret"));
}

/* ---- store_url_redact ---- */

static void test_url_redact(void **state)
{
	(void)state;
	char buf[STORE_URL_REDACTED_MAX];
	static const struct {
		const char *db, *want;
	} cases[] = {
	    {"postgres://errq:hunter2@db:5432/errq", "postgres://errq:***@db:5432/errq"},
	    {"postgresql://errq:hunter2@db/errq?sslmode=require", "postgresql://errq:***@db/errq?sslmode=require"},
	    {"postgres://errq@db/errq", "postgres://errq@db/errq"},
	    {"postgres://db/errq?user=errq&password=hunter2&sslmode=require",
	     "postgres://db/errq?user=errq&password=***&sslmode=require"},
	    {"postgres://db/errq?sslpassword=hunter2", "postgres://db/errq?sslpassword=***"},
	    {"postgres://db/errq?%70assword=hunter2", "postgres://db/errq?%70assword=***"}, /* libpq decodes names */
	    {"postgres://db/errq?password=", "postgres://db/errq?password=***"},
	    {"postgres://errq:hun@ter2@db/errq", "postgres://errq:***@db/errq"},      /* a raw '@' in it */
	    {"postgres://errq:hun/ter2@db/errq", "postgres://errq:***@db/errq"},      /* a raw '/' in it */
	    {"postgres://errq:h:u:n@db1:5432,db2:5433/errq", "postgres://errq:***@db1:5432,db2:5433/errq"},
	    {"postgres://:hunter2@db/errq", "postgres://:***@db/errq"},
	    {"postgres://db:5432/errq", "postgres://db:5432/errq"}, /* a port is no password */
	    {"postgres://errq:hun?ter2@db/errq", "postgres://errq:***@db/errq"}, /* a raw '?' in it */
	    {"postgres://errq:@db/errq", "postgres://errq:***@db/errq"},           /* empty: still marked */
	    /* an '@' in a parameter: more hidden than needed, and the password parameter still */
	    {"postgres://errq@db:5432/errq?application_name=a@b&password=hunter2",
	     "postgres://errq@db:***@b&password=***"},
	    {"/var/lib/errq/errq.db", "/var/lib/errq/errq.db"},
	    {"sqlite:///var/lib/errq/a:b@c.db", "sqlite:///var/lib/errq/a:b@c.db"},
	    /* a scheme errq refuses is quoted in the refusal: redacted alike */
	    {"mysql://root:hunter2@db/errq", "mysql://root:***@db/errq"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_ptr_equal(store_url_redact(cases[i].db, buf, sizeof(buf)), buf);
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("redact '%s': got '%s', expected '%s'", cases[i].db, buf, cases[i].want);
		if (strncmp(cases[i].db, "sqlite", 6) != 0 && cases[i].db[0] != '/') {
			assert_null(strstr(buf, "hunter2"));
			assert_null(strstr(buf, "hun"));
		}
	}
	/* more password parameters than it keeps track of: all of it hidden */
	char many[1024];
	size_t off = (size_t)snprintf(many, sizeof(many), "postgres://db/errq?");
	for (int i = 0; i < 20; i++)
		off += (size_t)snprintf(many + off, sizeof(many) - off, "password=hunter2&");
	store_url_redact(many, buf, sizeof(buf));
	assert_string_equal(buf, "postgres://(redacted)");
	/* a buffer too small for the whole: never a prefix that might end inside the password */
	char small[24];
	store_url_redact("postgres://errq:hunter2@db.example.com/errq", small, sizeof(small));
	assert_string_equal(small, "postgres://(redacted)");
	char tiny[8];
	store_url_redact("postgres://errq:hunter2@db/errq", tiny, sizeof(tiny));
	assert_string_equal(tiny, "");
	store_url_redact(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

/* ---- dispatch through a fake backend ---- */

struct fake_store {
	const struct store_backend *be;
	int id;
};
static const void *fake_handle; /* the last call's handle */
static const char *fake_op;     /* ... and operation */
static int fake_int = 7;        /* what the fake's operations return, by type */
static bool fake_bool = true;
static const char *fake_str = "fake message";

static void fake_hit(const void *s, const char *op)
{
	fake_handle = s;
	fake_op = op;
}

#define FAKE_RET(ret) _Generic((ret)0, bool: fake_bool, const char *: fake_str, default: fake_int)
#define FAKE_R(ret, op, params)                                                                                    \
	static ret fake_##op params                                                                                \
	{                                                                                                          \
		fake_hit(s, #op);                                                                                  \
		return FAKE_RET(ret);                                                                              \
	}
#define FAKE_V(ret, op, params)                                                                                    \
	static void fake_##op params { fake_hit(s, #op); }
#define FAKE(need, kind, ret, op, params, args) FAKE_##kind(ret, op, params)
STORE_BACKEND_OPS(FAKE)
#undef FAKE

static const struct store_backend fake_backend = {
    .name = "fake",
#define FAKE_MEMBER(need, kind, ret, op, params, args) .op = fake_##op,
    STORE_BACKEND_OPS(FAKE_MEMBER)
#undef FAKE_MEMBER
};

/* Arguments reach the backend as given (a few operations checked in full). */
static size_t got_n;
static const struct store_event *got_ev;
static int8_t *got_result;
static int got_min_pages;
static int args_txn_add_events(struct store *s, const struct store_event *ev, size_t n, int8_t *result)
{
	fake_hit(s, "txn_add_events");
	got_ev = ev;
	got_n = n;
	got_result = result;
	for (size_t i = 0; i < n; i++)
		result[i] = (int8_t)(i % 2);
	return 0;
}
static int args_wal_catch_up(struct store *s, int min_pages)
{
	fake_hit(s, "wal_catch_up");
	got_min_pages = min_pages;
	return 1;
}

#define CALL(op, expr)                                                                                             \
	do {                                                                                                       \
		fake_op = NULL;                                                                                    \
		fake_handle = NULL;                                                                                \
		expr;                                                                                              \
		if (!fake_op || strcmp(fake_op, #op) != 0)                                                         \
			fail_msg("store_" #op " reached '%s'", fake_op ? fake_op : "(nothing)");                   \
		assert_ptr_equal(fake_handle, &f);                                                                 \
		called++;                                                                                          \
	} while (0)

static void test_dispatch_every_op(void **state)
{
	(void)state;
	struct fake_store f = {.be = &fake_backend, .id = 1};
	struct store *s = (struct store *)&f;
	int called = 0, n_ops = 0;
	bool more = true;
	uint64_t u64 = 0;
	int64_t i64 = 0;
	uint8_t id16[16] = {0};
	uint64_t counts[4];
	struct store_event ev = {0};
	int8_t res[1];
	struct store_event_filter ef = {0};
	struct store_group_filter gf = {0};
	struct store_maint_opts mo = {0};
	struct store_write_stats ws;
	struct store_totals tt;
	struct store_circuit c = {0};
	struct store_transition tr = {0};
	struct store_alert al = {0};
	struct store_alert_filter af = {0};
	struct store_delivery d = {0};
	struct store_silence si = {0};
#define COUNT(need, kind, ret, op, params, args) n_ops++;
	STORE_BACKEND_OPS(COUNT)
#undef COUNT
	CALL(close, store_close(s));
	CALL(errmsg, assert_string_equal(store_errmsg(s), "fake message"));
	CALL(last_busy, assert_true(store_last_busy(s)));
	CALL(last_errclass, assert_int_equal(store_last_errclass(s), 7));
	CALL(txn_begin, assert_int_equal(store_txn_begin(s), 7));
	CALL(txn_add_event, store_txn_add_event(s, &ev));
	CALL(txn_add_events, store_txn_add_events(s, &ev, 1, res));
	CALL(txn_count_event, store_txn_count_event(s, &ev));
	CALL(txn_commit, store_txn_commit(s));
	CALL(txn_rollback, store_txn_rollback(s));
	CALL(txn_commit_deferred, store_txn_commit_deferred(s));
	CALL(txn_commit_idle, store_txn_commit_idle(s));
	CALL(agg_pending, store_agg_pending(s));
	CALL(agg_flush, store_agg_flush(s));
	CALL(agg_flush_step, store_agg_flush_step(s, &more));
	CALL(list_events, store_list_events(s, &ef, NULL, NULL));
	CALL(list_groups, store_list_groups(s, &gf, NULL, NULL));
	CALL(get_group, store_get_group(s, "fp", &gf, NULL, NULL));
	CALL(group_histogram, store_group_histogram(s, 1, NULL, 0, 4, counts));
	CALL(get_event, store_get_event(s, id16, NULL, NULL));
	CALL(count_events, store_count_events(s, &u64));
	CALL(get_totals, store_get_totals(s, &tt));
	CALL(overflow_group, store_overflow_group(s, "svc", &u64));
	CALL(set_group_status, store_set_group_status(s, "fp", "resolved", 1));
	CALL(maintain, store_maintain(s, &mo, &more));
	CALL(get_write_stats, store_get_write_stats(s, &ws));
	CALL(tail_listen, store_tail_listen(s, 0, NULL, NULL, NULL, &u64));
	CALL(set_ckpt, store_set_ckpt(s, NULL));
	CALL(wal_catch_up, store_wal_catch_up(s, 1));
	CALL(get_pragma_int, store_get_pragma_int(s, "page_size", &i64));
	CALL(circuit_put, store_circuit_put(s, &c, &i64));
	CALL(circuit_delete, store_circuit_delete(s, 1));
	CALL(list_circuits, store_list_circuits(s, NULL, NULL, NULL));
	CALL(count_circuits, store_count_circuits(s, NULL, NULL));
	CALL(get_circuit, store_get_circuit(s, "r", "k", NULL, NULL));
	CALL(transition_add, store_transition_add(s, &tr));
	CALL(list_transitions, store_list_transitions(s, "r", "k", 1, NULL, NULL));
	CALL(alert_put, store_alert_put(s, &al, &i64));
	CALL(get_alert, store_get_alert(s, id16, NULL, NULL));
	CALL(list_alerts, store_list_alerts(s, &af, NULL, NULL));
	CALL(delivery_add, store_delivery_add(s, &d, &i64));
	CALL(delivery_update, store_delivery_update(s, 1, 0, 1, 0, 200, NULL, 1));
	CALL(list_deliveries_by_status, store_list_deliveries_by_status(s, 0, 0, 1, false, NULL, NULL));
	CALL(delivery_claim, store_delivery_claim(s, "r1", 1, 1, 1, NULL, NULL));
	CALL(list_deliveries, store_list_deliveries(s, id16, NULL, NULL));
	CALL(get_delivery, store_get_delivery(s, 1, NULL, NULL));
	CALL(silence_add, store_silence_add(s, &si, &i64));
	CALL(silence_expire, store_silence_expire(s, 1, 1));
	CALL(get_silence, store_get_silence(s, 1, NULL, NULL));
	CALL(list_silences, store_list_silences(s, STORE_SILENCES_ALL, 1, 0, NULL, NULL));
	CALL(outcome_batch_seen, store_outcome_batch_seen(s, id16, 1));
	CALL(outcome_batches_prune, store_outcome_batches_prune(s, 1, 1));
	CALL(alerts_prune, store_alerts_prune(s, 1, 1));
	/* every operation of the list was called once: one added to backend.h needs a line here */
	assert_int_equal(called, n_ops);
	/* store_close accepts NULL, as it always did */
	fake_op = NULL;
	store_close(NULL);
	assert_null(fake_op);
}

static void test_dispatch_args(void **state)
{
	(void)state;
	struct store_backend be = fake_backend;
	be.txn_add_events = args_txn_add_events;
	be.wal_catch_up = args_wal_catch_up;
	struct fake_store f = {.be = &be, .id = 2};
	struct store *s = (struct store *)&f;
	struct store_event ev[3] = {{.service = "a"}, {.service = "b"}, {.service = "c"}};
	int8_t res[3] = {-1, -1, -1};
	assert_int_equal(store_txn_add_events(s, ev, 3, res), 0);
	assert_ptr_equal(got_ev, ev);
	assert_int_equal(got_n, 3);
	assert_ptr_equal(got_result, res);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], 1);
	assert_int_equal(res[2], 0);
	assert_int_equal(store_wal_catch_up(s, 2048), 1);
	assert_int_equal(got_min_pages, 2048);
	/* two handles of two backends side by side: each call goes by its own handle's table */
	struct fake_store g = {.be = &fake_backend, .id = 3};
	got_min_pages = 0;
	fake_int = 5;
	assert_int_equal(store_wal_catch_up((struct store *)&g, 99), 5);
	assert_int_equal(got_min_pages, 0);
	assert_ptr_equal(fake_handle, &g);
	fake_int = 7;
}

/* What store_api.c answers for the operations a backend may leave NULL. */
static void test_dispatch_optional(void **state)
{
	(void)state;
	struct store_backend be = fake_backend;
	be.txn_commit_deferred = NULL;
	be.txn_commit_idle = NULL;
	be.agg_pending = NULL;
	be.agg_flush = NULL;
	be.agg_flush_step = NULL;
	be.set_ckpt = NULL;
	be.wal_catch_up = NULL;
	be.get_pragma_int = NULL;
	be.tail_listen = NULL;
	assert_null(store_backend_missing(&be)); /* all optional */
	struct fake_store f = {.be = &be, .id = 4};
	struct store *s = (struct store *)&f;
	bool more = true;
	int64_t v = 42;
	fake_op = NULL;
	assert_int_equal(store_txn_commit_deferred(s), 7); /* a plain commit: writes everything */
	assert_string_equal(fake_op, "txn_commit");
	fake_op = NULL;
	assert_int_equal(store_txn_commit_idle(s), 7);
	assert_string_equal(fake_op, "txn_commit");
	fake_op = NULL;
	assert_false(store_agg_pending(s));
	assert_int_equal(store_agg_flush(s), 0);
	assert_int_equal(store_agg_flush_step(s, &more), 0);
	assert_false(more);
	store_set_ckpt(s, NULL);
	assert_int_equal(store_wal_catch_up(s, 1), 0);
	assert_int_equal(store_get_pragma_int(s, "page_size", &v), -1);
	assert_int_equal(v, 42);
	uint64_t missed = 3;
	assert_int_equal(store_tail_listen(s, 0, NULL, NULL, NULL, &missed), -1); /* nothing to listen for */
	assert_int_equal(missed, 3);
	assert_null(fake_op); /* none of them reached the backend */
}

static void test_backend_missing(void **state)
{
	(void)state;
	assert_null(store_backend_missing(&fake_backend));
	assert_null(store_backend_missing(&store_sqlite_backend));
	assert_string_equal(store_sqlite_backend.name, "sqlite");
	struct store_backend be = fake_backend;
	be.list_silences = NULL;
	assert_string_equal(store_backend_missing(&be), "list_silences");
	be = fake_backend;
	be.close = NULL;
	assert_string_equal(store_backend_missing(&be), "close");
	be = fake_backend;
	be.txn_add_events = NULL;
	assert_string_equal(store_backend_missing(&be), "txn_add_events");
}

/* A query that failed because the database server was lost answers UNAVAILABLE (retry: the
 * handle reconnects at its next query); any other failure INTERNAL (server/svc_common.c). */
static void test_query_failed_status(void **state)
{
	(void)state;
	struct fake_store f = {.be = &fake_backend, .id = 5};
	char details[128];
	fake_str = "prepare totals: server closed the connection unexpectedly";
	fake_int = STORE_ERR_UNAVAILABLE;
	assert_int_equal(svc_query_failed((struct store *)&f, details, sizeof(details)), GRPC_STATUS_UNAVAILABLE);
	assert_string_equal(details, "query failed: prepare totals: server closed the connection unexpectedly");
	fake_int = STORE_ERR_OTHER;
	assert_int_equal(svc_query_failed((struct store *)&f, details, sizeof(details)), GRPC_STATUS_INTERNAL);
	fake_int = STORE_ERR_LOCKED;
	assert_int_equal(svc_listed((struct store *)&f, -1, false, details, sizeof(details)), GRPC_STATUS_INTERNAL);
	fake_int = STORE_ERR_UNAVAILABLE;
	assert_int_equal(svc_listed((struct store *)&f, -1, false, details, sizeof(details)), GRPC_STATUS_UNAVAILABLE);
	fake_int = 7;
	fake_str = "fake message";
}

/* ---- the calls that take a database ---- */

#define PG_URL "postgres://errq:s3cr3tpw@127.0.0.1:1/errq?connect_timeout=2&password=s3cr3tpw"

static void test_postgres_machinery(void **state)
{
	(void)state;
	char err[512];
	struct store_lock *l = (struct store_lock *)&err; /* garbage: must be set */
	struct store_ckpt *ck = (struct store_ckpt *)&err;
	assert_int_equal(store_lock(&l, PG_URL, err, sizeof(err)), 0);
	assert_null(l);
	store_unlock(l);
	/* a second collector on the same database: no lock to refuse it */
	assert_int_equal(store_lock(&l, PG_URL, err, sizeof(err)), 0);
	assert_null(l);
	assert_int_equal(store_ckpt_start(&ck, PG_URL, err, sizeof(err)), 0);
	assert_null(ck);
	struct store_ckpt_stats cs;
	memset(&cs, 0xff, sizeof(cs));
	store_ckpt_kick(ck);
	store_ckpt_get_stats(ck, &cs);
	assert_int_equal(cs.checkpoints, 0);
	store_ckpt_stop(ck);
	/* online backup: refused with the reason, nothing created */
	char tmp[] = "/tmp/errq-seam-XXXXXX";
	assert_non_null(mkdtemp(tmp));
	char dest[128], dtmp[160];
	snprintf(dest, sizeof(dest), "%s/copy.db", tmp);
	snprintf(dtmp, sizeof(dtmp), "%s.tmp", dest);
	struct store_backup_opts bo = {.src_path = PG_URL, .tmp_path = dtmp, .dest_path = dest};
	struct store_backup_result br;
	assert_int_equal(store_backup(&bo, &br, err, sizeof(err)), STORE_BACKUP_UNSUPPORTED);
	assert_string_equal(err, "online backup of a PostgreSQL database is PostgreSQL's job: use pg_dump or pg_basebackup");
	assert_int_equal(access(dtmp, F_OK), -1);
	assert_int_equal(store_backup_check(PG_URL, err, sizeof(err)), -1);
	assert_int_equal(store_backup_check("/var/lib/errq/errq.db", err, sizeof(err)), 0);
	assert_int_equal(store_backup_check("sqlite:///var/lib/errq/errq.db", err, sizeof(err)), 0);
	/* opening it: without PostgreSQL support a clear refusal; with it, the server at port 1
	 * does not answer.  Either way the password is in no message. */
	struct store *s = (struct store *)&err;
	struct store_opts o = {.path = PG_URL};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), -1);
	assert_null(s);
	assert_null(strstr(err, "s3cr3tpw"));
#ifndef ERRQ_HAVE_POSTGRES
	assert_string_equal(err, "cannot open database 'postgres://errq:***@127.0.0.1:1/errq?connect_timeout=2&password=***': "
				 "postgres support not built (errq was built without libpq)");
#endif
	/* a refused URL: refused by every call that takes one */
	assert_int_equal(store_lock(&l, "mysql://db/errq", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown scheme 'mysql://'"));
	assert_int_equal(store_ckpt_start(&ck, "mysql://db/errq", err, sizeof(err)), -1);
	o.path = "mysql://db/errq";
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown scheme 'mysql://'"));
	rmdir(tmp);
}

/* store_url_scrub: what a message quotes of a URL's password is hidden, the rest kept. */
static void test_url_scrub(void **state)
{
	(void)state;
	static const struct {
		const char *url, *msg, *want;
	} cases[] = {
	    {"postgres://u:s3c%zzr3tpw@h/d", "connect: invalid percent-encoded token: \"s3c%zzr3tpw\"",
	     "connect: invalid percent-encoded token: \"***\""},
	    {"postgres://h/d?password=s3c%zzr3tpw", "connect: invalid percent-encoded token: \"s3c%zzr3tpw\"",
	     "connect: invalid percent-encoded token: \"***\""},
	    {"postgres://u:s3c@r3tpw@127.0.0.1/d", "connect: could not translate host name \"r3tpw@127.0.0.1\" to address",
	     "connect: could not translate host name \"***@127.0.0.1\" to address"},
	    /* percent-decoded as libpq reads it */
	    {"postgres://u:p%40ssw0rd@h/d", "connect: something quoting \"p@ssw0rd\"", "connect: something quoting \"***\""},
	    /* no password: nothing touched */
	    {"postgres://u@h/d", "connect: could not translate host name \"h\"", "connect: could not translate host name \"h\""},
	    {"/var/lib/errq/errq.db", "disk I/O error", "disk I/O error"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", cases[i].msg);
		store_url_scrub(cases[i].url, msg, sizeof(msg));
		assert_string_equal(msg, cases[i].want);
	}
}

/* libpq's own messages may quote a password: a malformed percent-escape in it ("invalid
 * percent-encoded token: \"...\"", the whole token), or the part after a raw '@' read as the
 * host ("could not translate host name \"...\"").  None of it reaches a message of errq's. */
static void test_open_error_hides_password(void **state)
{
	(void)state;
#ifdef ERRQ_HAVE_POSTGRES
	static const struct {
		const char *url, *hidden;
	} cases[] = {
	    {"postgres://errq:s3c%zzr3tpw@127.0.0.1:1/errq?connect_timeout=2", "r3tpw"},
	    {"postgres://errq@127.0.0.1:1/errq?connect_timeout=2&password=s3c%zzr3tpw", "r3tpw"},
	    {"postgres://errq:s3c@r3tpw@127.0.0.1:1/errq?connect_timeout=2", "r3tpw"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512];
		struct store *s = NULL;
		struct store_opts o = {.path = cases[i].url};
		assert_int_equal(store_open(&s, &o, err, sizeof(err)), -1);
		assert_null(s);
		if (strstr(err, cases[i].hidden) || strstr(err, "s3c"))
			fail_msg("case %zu: the password shows in '%s'", i, err);
		/* the reason is still there, the password hidden in it */
		assert_non_null(strstr(err, "cannot open the PostgreSQL database: connect: "));
	}
#else
	skip();
#endif
}

/* A sqlite:// URL and the bare path are one database: one lock, one file. */
static void test_sqlite_url_is_the_file(void **state)
{
	(void)state;
	char tmp[] = "/tmp/errq-seam-XXXXXX", path[128], url[160], err[512];
	assert_non_null(mkdtemp(tmp));
	snprintf(path, sizeof(path), "%s/errq.db", tmp);
	snprintf(url, sizeof(url), "sqlite://%s", path); /* path is absolute: sqlite:///tmp/... */
	struct store_lock *a = NULL, *b = NULL;
	assert_int_equal(store_lock(&a, url, err, sizeof(err)), 0);
	assert_non_null(a);
	assert_int_equal(store_lock(&b, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is in use by another errqd"));
	struct store *s = NULL, *r = NULL;
	struct store_opts o = {.path = url};
	assert_int_equal(store_open(&s, &o, err, sizeof(err)), 0);
	assert_ptr_equal(store_backend_of(s), &store_sqlite_backend);
	int8_t res[3];
	uint8_t ids[2][16] = {{1}, {2}};
	struct store_event ev[3] = {
	    {.event_id = ids[0], .received_ns = 1, .service = "svc", .error_type = "E", .fingerprint = "fp1"},
	    {.event_id = ids[1], .received_ns = 2, .service = "svc", .error_type = "E", .fingerprint = "fp1"},
	    {.event_id = ids[0], .received_ns = 3, .service = "svc", .error_type = "E", .fingerprint = "fp1"},
	};
	assert_int_equal(store_txn_begin(s), 0);
	assert_int_equal(store_txn_add_events(s, ev, 3, res), 0);
	assert_int_equal(store_txn_commit(s), 0);
	assert_int_equal(res[0], 1);
	assert_int_equal(res[1], 1);
	assert_int_equal(res[2], 0); /* a duplicate of the first */
	/* a reader by the bare path sees what the writer wrote through the URL */
	struct store_opts ro = {.path = path, .readonly = true};
	assert_int_equal(store_open(&r, &ro, err, sizeof(err)), 0);
	uint64_t n = 0;
	assert_int_equal(store_count_events(r, &n), 0);
	assert_int_equal(n, 2);
	store_close(r);
	store_close(s);
	store_unlock(a);
	char side[160];
	const char *sfx[] = {"", "-wal", "-shm", ".lock"};
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(side, sizeof(side), "%s%s", path, sfx[i]);
		unlink(side);
	}
	assert_int_equal(rmdir(tmp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_sqlite),
	    cmocka_unit_test(test_url_postgres),
	    cmocka_unit_test(test_url_refused),
	    cmocka_unit_test(test_url_redact),
	    cmocka_unit_test(test_dispatch_every_op),
	    cmocka_unit_test(test_dispatch_args),
	    cmocka_unit_test(test_dispatch_optional),
	    cmocka_unit_test(test_backend_missing),
	    cmocka_unit_test(test_query_failed_status),
	    cmocka_unit_test(test_postgres_machinery),
	    cmocka_unit_test(test_url_scrub),
	    cmocka_unit_test(test_open_error_hides_password),
	    cmocka_unit_test(test_sqlite_url_is_the_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
