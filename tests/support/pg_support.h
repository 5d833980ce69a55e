/* pg_support.h: the PostgreSQL tests' server and databases (issue 17).
 *
 * ctest starts one private server for the run (tests/support/pg-server, the fixture `pg` of
 * tests/CMakeLists.txt; its URL in the file PG_TEST_URL_FILE names).  Each test makes a
 * database of its own with pg_test_db_create and drops it with pg_test_db_drop, so tests run
 * in parallel and a failed one leaves nothing behind that the next one sees.  The environment
 * variable ERRQ_TEST_PG_URL, when set, names another server to use instead (a superuser's URL
 * with a maintenance database, e.g. postgresql://errq@127.0.0.1:5432/postgres).
 *
 * Errors are returned (-1, or NULL) with a one-line reason in the caller's buffer; nothing here
 * fails a cmocka test by itself, so the integration harness can use it too. */
#ifndef ERRQ_PG_SUPPORT_H
#define ERRQ_PG_SUPPORT_H
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#define PG_TEST_URL_MAX 1024 /* a server's or a database's URL */
#define PG_TEST_NAME_MAX 63  /* PostgreSQL's identifier length (NAMEDATALEN - 1) */

struct pg_test_db {
	char name[PG_TEST_NAME_MAX + 1]; /* errq_t_<tag>_<pid>_<n> */
	char url[PG_TEST_URL_MAX];       /* the database's URL, for --db and store_open */
	char server[PG_TEST_URL_MAX];    /* the server's URL (its maintenance database) */
};

/* The server's URL: $ERRQ_TEST_PG_URL, else the first line of the fixture's URL file. */
int pg_test_server_url(char *url, size_t n, char *err, size_t errsz);
/* Creates an empty database for this test, named after tag ([a-z0-9_], shortened), this
 * process and a counter.  Returns 0, or -1 (nothing created). */
int pg_test_db_create(struct pg_test_db *db, const char *tag, char *err, size_t errsz);
/* Drops it, ending the connections still open on it (a failed test's).  0 or -1. */
int pg_test_db_drop(const struct pg_test_db *db, char *err, size_t errsz);
/* A connection of the test's own to its database (PQfinish it), or NULL. */
PGconn *pg_test_connect(const struct pg_test_db *db, char *err, size_t errsz);
/* Runs sql (no parameters) on c and stores the first column of its one row in *v (a NULL
 * value reads as 0).  0, or -1 on an error or when it returns no row. */
int pg_test_int(PGconn *c, const char *sql, int64_t *v, char *err, size_t errsz);
/* Runs sql (statements without results) on c.  0 or -1. */
int pg_test_exec(PGconn *c, const char *sql, char *err, size_t errsz);
#endif
