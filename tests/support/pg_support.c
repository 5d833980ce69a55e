/* pg_support.c: the PostgreSQL tests' server URL and per-test databases (pg_support.h). */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg_support.h"
#include "errq_str.h"

#ifndef PG_TEST_URL_FILE
#error "PG_TEST_URL_FILE: the fixture's URL file (tests/CMakeLists.txt defines it)"
#endif

/* "what: why" on one line: libpq's messages end in a newline and may hold more lines (a
 * refused connection's hint), which become spaces. */
static void set_err(char *err, size_t errsz, const char *what, const char *why)
{
	size_t n = strlen(why);
	while (n && (why[n - 1] == '\n' || why[n - 1] == ' '))
		n--;
	errq_snprintf(err, errsz, "%s: %.*s", what, (int)n, why);
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

int pg_test_server_url(char *url, size_t n, char *err, size_t errsz)
{
	const char *env = getenv("ERRQ_TEST_PG_URL");
	if (env && *env) {
		if (strlen(env) >= n) {
			set_err(err, errsz, "ERRQ_TEST_PG_URL", "too long");
			return -1;
		}
		errq_snprintf(url, n, "%s", env);
		return 0;
	}
	FILE *f = fopen(PG_TEST_URL_FILE, "r");
	if (!f) {
		set_err(err, errsz, "no PostgreSQL test server",
			"cannot read '" PG_TEST_URL_FILE "' (run the test through ctest, whose fixture "
			"pg_server_start writes it, or set ERRQ_TEST_PG_URL)");
		return -1;
	}
	int rc = fgets(url, (int)n, f) ? 0 : -1;
	fclose(f);
	url[strcspn(url, "\r\n")] = 0;
	if (rc || !*url) {
		set_err(err, errsz, PG_TEST_URL_FILE, "empty");
		return -1;
	}
	return 0;
}

/* Appends s percent-encoded (all but RFC 3986's unreserved characters). */
static void add_encoded(struct errq_buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			errq_buf_add(b, s, 1);
		else
			errq_buf_printf(b, "%%%02X", c);
	}
}

/* The URL of database name on the server of base: base's settings with dbname replaced.  The
 * user, a plain host and the port go where a reader expects them; any other setting (a socket
 * directory as host, sslmode...) follows as a query parameter. */
static int db_url(const char *base, const char *name, char *out, size_t n, char *err, size_t errsz)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(base, &perr);
	if (!opts) {
		set_err(err, errsz, "parse the test server's URL", perr ? perr : "out of memory");
		PQfreemem(perr);
		return -1;
	}
	const char *user = NULL, *password = NULL, *host = NULL, *port = NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "password"))
			password = o->val;
		else if (!strcmp(o->keyword, "host") && !strpbrk(o->val, "/,:"))
			host = o->val;
		else if (!strcmp(o->keyword, "port") && !strchr(o->val, ','))
			port = o->val;
	}
	if (!host) /* a port in the authority needs a host before it */
		port = NULL;
	struct errq_buf b;
	errq_buf_init_fixed(&b, out, n);
	errq_buf_addstr(&b, "postgresql://");
	if (user) {
		add_encoded(&b, user);
		if (password) {
			errq_buf_addstr(&b, ":");
			add_encoded(&b, password);
		}
		errq_buf_addstr(&b, "@");
	}
	if (host)
		add_encoded(&b, host);
	if (port)
		errq_buf_printf(&b, ":%s", port);
	errq_buf_addstr(&b, "/");
	add_encoded(&b, name);
	char sep = '?';
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !strcmp(o->keyword, "dbname") || (o->val == user) || (o->val == password) ||
		    (o->val == host) || (o->val == port))
			continue;
		errq_buf_printf(&b, "%c%s=", sep, o->keyword);
		add_encoded(&b, o->val);
		sep = '&';
	}
	PQconninfoFree(opts);
	if (b.failed) {
		set_err(err, errsz, "the test database's URL", "too long");
		return -1;
	}
	return 0;
}

/* A connection to conninfo, or NULL with the reason. */
static PGconn *connect_to(const char *conninfo, char *err, size_t errsz)
{
	PGconn *c = PQconnectdb(conninfo);
	if (!c) {
		set_err(err, errsz, "connect", "out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		set_err(err, errsz, "connect to the test server", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

int pg_test_exec(PGconn *c, const char *sql, char *err, size_t errsz)
{
	PGresult *r = PQexec(c, sql);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		set_err(err, errsz, sql, PQerrorMessage(c));
		rc = -1;
	}
	PQclear(r);
	return rc;
}

int pg_test_int(PGconn *c, const char *sql, int64_t *v, char *err, size_t errsz)
{
	PGresult *r = PQexec(c, sql);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		set_err(err, errsz, sql, PQerrorMessage(c));
		rc = -1;
	} else if (PQntuples(r) < 1 || PQnfields(r) < 1) {
		set_err(err, errsz, sql, "no row");
		rc = -1;
	} else {
		*v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	}
	PQclear(r);
	return rc;
}

int pg_test_db_create(struct pg_test_db *db, const char *tag, char *err, size_t errsz)
{
	static atomic_uint seq;
	memset(db, 0, sizeof(*db));
	if (pg_test_server_url(db->server, sizeof(db->server), err, errsz))
		return -1;
	/* a name that needs no quoting: the tag's [a-z0-9_] only, cut to leave room for the rest */
	char t[24];
	size_t k = 0;
	for (const char *p = tag ? tag : ""; *p && k < sizeof(t) - 1; p++) {
		unsigned char c = (unsigned char)tolower((unsigned char)*p);
		if (isalnum(c) || c == '_')
			t[k++] = (char)c;
	}
	t[k] = 0;
	errq_snprintf(db->name, sizeof(db->name), "errq_t_%s_%ld_%u", t, (long)getpid(),
		      atomic_fetch_add(&seq, 1));
	if (db_url(db->server, db->name, db->url, sizeof(db->url), err, errsz))
		return -1;
	PGconn *c = connect_to(db->server, err, errsz);
	if (!c)
		return -1;
	char sql[128];
	/* the name is [a-z0-9_] (above): nothing in it can be SQL */
	errq_snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", db->name);
	int rc = pg_test_exec(c, sql, err, errsz);
	PQfinish(c);
	return rc;
}

static void no_notice(void *arg, const char *message)
{
}

int pg_test_db_drop(const struct pg_test_db *db, char *err, size_t errsz)
{
	PGconn *c = connect_to(db->server, err, errsz);
	if (!c)
		return -1;
	PQsetNoticeProcessor(c, no_notice, NULL); /* "does not exist, skipping": a second drop */
	char sql[128];
	errq_snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", db->name);
	int rc = pg_test_exec(c, sql, err, errsz);
	PQfinish(c);
	return rc;
}

PGconn *pg_test_connect(const struct pg_test_db *db, char *err, size_t errsz)
{
	return connect_to(db->url, err, errsz);
}
