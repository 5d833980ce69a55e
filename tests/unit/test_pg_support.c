/* Unit: tests/support/pg_support.c — the PostgreSQL tests' databases on the fixture's server
 * (tests/support/pg-server): each test's own database, usable at once, invisible to the
 * others, gone after the drop even with a connection left open on it; the URL kept for a
 * server reached by a unix socket or with a password; clear errors without a server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pg_support.h"

static char err[512];

static void create(struct pg_test_db *db, const char *tag)
{
	int rc = pg_test_db_create(db, tag, err, sizeof(err));
	if (rc)
		print_error("pg_test_db_create: %s\n", err);
	assert_int_equal(rc, 0);
}

static PGconn *connect_db(const struct pg_test_db *db)
{
	PGconn *c = pg_test_connect(db, err, sizeof(err));
	if (!c)
		print_error("pg_test_connect: %s\n", err);
	assert_non_null(c);
	return c;
}

static int64_t q_int(PGconn *c, const char *sql)
{
	int64_t v = -1;
	int rc = pg_test_int(c, sql, &v, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	return v;
}

static void test_own_databases(void **state)
{
	struct pg_test_db a, b;
	create(&a, "Own-DB a!");
	create(&b, "own");
	assert_string_not_equal(a.name, b.name);
	assert_non_null(strstr(a.name, "errq_t_owndba_")); /* the tag's [a-z0-9_] only */
	assert_non_null(strstr(a.url, a.name));
	assert_string_equal(a.server, b.server);

	PGconn *ca = connect_db(&a), *cb = connect_db(&b);
	char name[128];
	snprintf(name, sizeof(name), "SELECT (current_database() = '%s')::int", a.name);
	assert_int_equal(q_int(ca, name), 1);
	assert_int_equal(pg_test_exec(ca, "CREATE TABLE t (x bigint); INSERT INTO t VALUES (7), (8)", err, sizeof(err)),
			 0);
	assert_int_equal(q_int(ca, "SELECT sum(x) FROM t"), 15);
	assert_int_equal(q_int(cb, "SELECT count(*) FROM pg_tables WHERE tablename = 't'"), 0);
	/* errors are reported, quoting the statement and the server's reason */
	int64_t v;
	assert_int_equal(pg_test_int(cb, "SELECT x FROM t", &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "SELECT x FROM t"));
	assert_non_null(strstr(err, "does not exist"));
	assert_int_equal(pg_test_int(cb, "SELECT 1 WHERE false", &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no row"));

	/* dropped with ca still open on it (a failed test's connection): it goes */
	assert_int_equal(pg_test_db_drop(&a, err, sizeof(err)), 0);
	assert_null(pg_test_connect(&a, err, sizeof(err)));
	assert_non_null(strstr(err, a.name));
	assert_int_equal(q_int(cb, "SELECT 1"), 1); /* b is untouched */
	snprintf(name, sizeof(name), "SELECT count(*) FROM pg_database WHERE datname = '%s'", a.name);
	assert_int_equal(q_int(cb, name), 0);
	assert_int_equal(pg_test_db_drop(&a, err, sizeof(err)), 0); /* again: nothing to do */
	PQfinish(ca);
	PQfinish(cb);
	assert_int_equal(pg_test_db_drop(&b, err, sizeof(err)), 0);
}

/* The server named by ERRQ_TEST_PG_URL as a conninfo with the socket directory as host: the
 * database's URL carries the directory as a query parameter, and it connects. */
static void test_socket_url(void **state)
{
	char url[PG_TEST_URL_MAX];
	assert_int_equal(pg_test_server_url(url, sizeof(url), err, sizeof(err)), 0);
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	const char *dir = NULL;
	PGresult *r = PQexec(c, "SELECT setting FROM pg_settings WHERE name = 'unix_socket_directories'");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	dir = PQgetvalue(r, 0, 0);
	char conninfo[PG_TEST_URL_MAX];
	snprintf(conninfo, sizeof(conninfo), "host=%s port=%s user=%s dbname=postgres application_name=t+x", dir,
		 PQport(c), PQuser(c));
	PQclear(r);
	PQfinish(c);

	setenv("ERRQ_TEST_PG_URL", conninfo, 1);
	struct pg_test_db db;
	create(&db, "sock");
	unsetenv("ERRQ_TEST_PG_URL");
	assert_non_null(strstr(db.url, "host=%2F"));
	assert_non_null(strstr(db.url, "application_name=t%2Bx"));
	assert_string_equal(db.server, conninfo);
	c = connect_db(&db);
	assert_int_equal(q_int(c, "SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid()"
				  " AND client_addr IS NULL AND application_name = 't+x'"),
			 1); /* a unix socket has no client address */
	PQfinish(c);
	assert_int_equal(pg_test_db_drop(&db, err, sizeof(err)), 0);
}

/* A password and odd characters in the user survive the URL (percent-encoded). */
static void test_password_url(void **state)
{
	char url[PG_TEST_URL_MAX];
	assert_int_equal(pg_test_server_url(url, sizeof(url), err, sizeof(err)), 0);
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	char host[256], port[16];
	snprintf(host, sizeof(host), "%s", PQhost(c));
	snprintf(port, sizeof(port), "%s", PQport(c));
	/* the server trusts every role: the password travels, it is not checked */
	PQclear(PQexec(c, "SET client_min_messages = warning; DROP ROLE IF EXISTS \"o'd @b:c\""));
	PGresult *r = PQexec(c, "CREATE ROLE \"o'd @b:c\" LOGIN SUPERUSER");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);

	char base[PG_TEST_URL_MAX];
	snprintf(base, sizeof(base), "postgresql://o%%27d%%20%%40b%%3Ac:p%%40ss%%2Fw@%s:%s/postgres", host, port);
	setenv("ERRQ_TEST_PG_URL", base, 1);
	struct pg_test_db db;
	create(&db, "pw");
	unsetenv("ERRQ_TEST_PG_URL");
	char want[PG_TEST_URL_MAX];
	snprintf(want, sizeof(want), "postgresql://o%%27d%%20%%40b%%3Ac:p%%40ss%%2Fw@%s:%s/%s", host, port, db.name);
	assert_string_equal(db.url, want);
	c = connect_db(&db);
	assert_int_equal(q_int(c, "SELECT (current_user = 'o''d @b:c')::int"), 1);
	PQfinish(c);
	assert_int_equal(pg_test_db_drop(&db, err, sizeof(err)), 0);
	c = PQconnectdb(url);
	r = PQexec(c, "DROP ROLE \"o'd @b:c\"");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
}

/* No server: a clear reason, nothing created. */
static void test_no_server(void **state)
{
	setenv("ERRQ_TEST_PG_URL", "postgresql://errq@127.0.0.1:1/postgres?connect_timeout=5", 1);
	struct pg_test_db db;
	assert_int_equal(pg_test_db_create(&db, "none", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "connect to the test server"));
	assert_null(strchr(err, '\n'));
	setenv("ERRQ_TEST_PG_URL", "postgresql://%zz", 1);
	assert_int_equal(pg_test_db_create(&db, "none", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "parse the test server's URL"));
	unsetenv("ERRQ_TEST_PG_URL");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_own_databases),
	    cmocka_unit_test(test_socket_url),
	    cmocka_unit_test(test_password_url),
	    cmocka_unit_test(test_no_server),
	};
	return cmocka_run_group_tests_name("unit_pg_support", tests, NULL, NULL);
}
