/* pg_store.c: the PostgreSQL backend's handles — opening, the connection and its loss,
 * errors, running statements, transactions — and its table for the seam.
 *
 * A lost connection (the server restarted, a network cut, pg_terminate_backend) is
 * STORE_ERR_UNAVAILABLE.  Nothing reconnects behind a caller's back inside a transaction:
 * the statement fails, the caller rolls back (which only forgets the transaction: the server
 * rolled it back when the session died) and the next txn_begin, query or upkeep reconnects,
 * at most once every reconnect_backoff_ms (STORE_PG_RECONNECT_MIN_MS doubling to
 * STORE_PG_RECONNECT_MAX_MS while attempts fail), so a dead server costs each caller one
 * failed attempt a backoff, not a connect timeout per event.  A COMMIT whose answer was lost
 * may have committed: the writer's retry of its batch finds its events stored (duplicates,
 * not counted twice). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#include "backend.h"
#include "store_url.h"

/* ---- errors ---- */

/* libpq's messages end in a newline (and may hold several lines): the first line, trimmed. */
static void first_line(const char *msg, const char **p, int *n)
{
	size_t k = msg ? strcspn(msg, "\n") : 0;
	while (k && (msg[k - 1] == ' ' || msg[k - 1] == '\r'))
		k--;
	*p = msg ? msg : "";
	*n = (int)k;
}

/* Gone, or to be replaced: a session the server ended, or one that answered as a server no
 * caller can use (read-only after a failover, shutting down): the next call reconnects. */
static bool conn_lost(const struct store_pg *p)
{
	return !p->conn || p->conn_stale || PQstatus(p->conn) == CONNECTION_BAD;
}

int store_pg_set_err(struct store *s, const char *fmt, ...)
{
	struct store_pg *p = store_pg(s);
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const char *m;
	int n;
	first_line(p->conn ? PQerrorMessage(p->conn) : "not connected", &m, &n);
	errq_snprintf(p->err, sizeof(p->err), "%s: %.*s", what, n, n ? m : "unknown error");
	/* libpq's connection messages may quote a malformed URL's password */
	store_url_scrub(p->conninfo, p->err, sizeof(p->err));
	p->busy = false;
	p->errclass = conn_lost(p) ? STORE_ERR_UNAVAILABLE : STORE_ERR_OTHER;
	return -1;
}

int store_pg_set_err_result(struct store *s, const PGresult *r, const char *what)
{
	struct store_pg *p = store_pg(s);
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : NULL;
	if (!msg || !*msg)
		msg = p->conn ? PQerrorMessage(p->conn) : "not connected";
	/* the server's primary message, without libpq's "ERROR:  " prefix and the detail lines */
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *m;
	int n;
	first_line(primary ? primary : msg, &m, &n);
	errq_snprintf(p->err, sizeof(p->err), "%s: %.*s", what, n, n ? m : "unknown error");
	store_url_scrub(p->conninfo, p->err, sizeof(p->err));
	p->busy = false;
	/* 25006 (read_only_sql_transaction) on a handle that writes is a primary that became a
	 * standby (a failover: Patroni demotes the old primary, which then refuses every write)
	 * or a server set read-only: this session will never write again, another one may (the
	 * URL's hosts with target_session_attrs=read-write, a failover address).  A read-only
	 * handle's own 25006 is its own doing (default_transaction_read_only): unwritable. */
	bool demoted = state && !strcmp(state, "25006") && !p->readonly;
	if (conn_lost(p) || demoted || (state && (!strncmp(state, "08", 2) || !strncmp(state, "57P0", 4)))) {
		p->errclass = STORE_ERR_UNAVAILABLE;
		/* whatever the session's state, the next txn_begin, query or upkeep replaces it
		 * (57P01-57P03: the server is going away; 08xxx: the connection is broken) */
		p->conn_stale = true;
	} else if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))) {
		p->errclass = STORE_ERR_LOCKED; /* serialization failure, deadlock, lock_timeout */
		p->busy = true;
	} else if (state && !strcmp(state, "53100"))
		p->errclass = STORE_ERR_FULL;
	else if (state && (!strcmp(state, "25006") || !strcmp(state, "42501")))
		p->errclass = STORE_ERR_UNWRITABLE;
	else
		p->errclass = STORE_ERR_OTHER;
	if (p->in_txn)
		p->txn_failed = true;
	return -1;
}

int store_pg_fail(struct store *s, const char *fmt, ...)
{
	struct store_pg *p = store_pg(s);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->busy = false;
	p->errclass = STORE_ERR_OTHER;
	return -1;
}

const char *store_pg_errmsg(const struct store *s)
{
	return ((const struct store_pg *)s)->err;
}

bool store_pg_last_busy(const struct store *s)
{
	return ((const struct store_pg *)s)->busy;
}

int store_pg_last_errclass(const struct store *s)
{
	return ((const struct store_pg *)s)->errclass;
}

/* ---- the connection ---- */

/* How long the writer's statement waits for a row lock another replica holds before it fails
 * busy and the writer retries its batch (SQLite's busy timeout, 2 s).  Readers take no row
 * locks: 0 there (statement_timeout bounds them). */
#define STORE_PG_LOCK_TIMEOUT_MS 2000

uint64_t store_pg__now_ns(void)
{
	return errq_now_ns();
}

/* Session settings of every connection (after each connect). */
static int session_setup(struct store *s)
{
	struct store_pg *p = store_pg(s);
	char sql[160];
	/* integers only in the SQL */
	errq_snprintf(sql, sizeof(sql), "SET statement_timeout = %d; SET lock_timeout = %d; SET client_encoding = 'UTF8';"
		      " SET client_min_messages = warning",
		      STORE_PG_STMT_TIMEOUT_MS, p->readonly ? 0 : STORE_PG_LOCK_TIMEOUT_MS);
	if (store_pg_exec(s, sql, "set up the session"))
		return -1;
	if (p->readonly && store_pg_exec(s, "SET default_transaction_read_only = on", "set up the session"))
		return -1;
	if (p->leader_session) {
		/* the server's end of the leader lock's session: a leader whose machine vanished
		 * loses the lock in seconds, not after the kernel's two hours */
		errq_snprintf(sql, sizeof(sql),
			      "SET tcp_keepalives_idle = %d; SET tcp_keepalives_interval = %d; SET tcp_keepalives_count = %d",
			      STORE_PG_LEADER_KEEPALIVE_IDLE_S, STORE_PG_LEADER_KEEPALIVE_INTERVAL_S,
			      STORE_PG_LEADER_KEEPALIVE_COUNT);
		if (store_pg_exec(s, sql, "set up the leader session"))
			return -1;
	}
	p->n_prepared = 0;
	return 0;
}

/* Connects (or reconnects) now.  0, or -1 recorded as UNAVAILABLE. */
static int connect_now(struct store *s)
{
	struct store_pg *p = store_pg(s);
	char timeout[16], idle[16], interval[16], count[16], user_timeout[16];
	errq_snprintf(timeout, sizeof(timeout), "%d", STORE_PG_CONNECT_TIMEOUT_S);
	bool lead = p->leader_session;
	errq_snprintf(idle, sizeof(idle), "%d", lead ? STORE_PG_LEADER_KEEPALIVE_IDLE_S : 30);
	errq_snprintf(interval, sizeof(interval), "%d", lead ? STORE_PG_LEADER_KEEPALIVE_INTERVAL_S : 10);
	errq_snprintf(count, sizeof(count), "%d", lead ? STORE_PG_LEADER_KEEPALIVE_COUNT : 3);
	/* the leader's session also gives up on unacknowledged data (a ping into a cut network) */
	errq_snprintf(user_timeout, sizeof(user_timeout), "%d",
		      lead ? (STORE_PG_LEADER_KEEPALIVE_IDLE_S +
			      STORE_PG_LEADER_KEEPALIVE_INTERVAL_S * STORE_PG_LEADER_KEEPALIVE_COUNT) * 1000
			   : 0);
	/* the URL comes last (expand_dbname): what it says wins over these defaults */
	/* a writing handle wants a server that accepts writes (libpq checks each host of the URL
	 * in turn, refusing a standby or a read-only default): after a failover the reconnect finds
	 * the new primary, or fails and backs off instead of reaching the demoted one again; the
	 * leader's session too (its epoch bump writes) */
	const char *const keys[] = {"connect_timeout",  "application_name", "keepalives_idle",      "keepalives_interval",
				    "keepalives_count", "tcp_user_timeout", "target_session_attrs", "dbname",
				    NULL};
	const char *const vals[] = {timeout, lead ? "errqd-leader" : p->side_session ? "errqd-groups" : "errqd", idle, interval,
				    count, user_timeout,
				    p->readonly ? "any" : "read-write",
				    p->conninfo, NULL};
	if (p->conn)
		PQfinish(p->conn);
	p->n_prepared = 0;
	p->conn_stale = false;
	p->conn = PQconnectdbParams(keys, vals, 1);
	if (!p->conn) {
		store_pg_fail(s, "connect: out of memory");
		p->errclass = STORE_ERR_UNAVAILABLE;
		return -1;
	}
	if (PQstatus(p->conn) != CONNECTION_OK) {
		store_pg_set_err(s, "connect");
		p->errclass = STORE_ERR_UNAVAILABLE;
		return -1;
	}
	if (session_setup(s)) {
		if (p->errclass == STORE_ERR_OTHER && conn_lost(p))
			p->errclass = STORE_ERR_UNAVAILABLE;
		return -1;
	}
	return 0;
}

PGconn *store_pg_conn(struct store *s)
{
	struct store_pg *p = store_pg(s);
	if (!conn_lost(p))
		return p->conn;
	if (p->in_txn) { /* the transaction died with the session: the caller rolls back */
		store_pg_fail(s, "connection to the database lost inside a transaction");
		p->errclass = STORE_ERR_UNAVAILABLE;
		p->txn_failed = true;
		return NULL;
	}
	uint64_t now_ms = errq_mono_ns() / ERRQ_NS_PER_MS;
	if (now_ms < p->reconnect_at_ms) {
		/* the last attempt's reason stands, word for word: a text that changed at every
		 * call (the time left) was a new condition for every caller's log each time */
		if (p->errclass != STORE_ERR_UNAVAILABLE)
			store_pg_fail(s, "database unavailable: waiting to reconnect");
		p->errclass = STORE_ERR_UNAVAILABLE;
		p->busy = false;
		return NULL;
	}
	if (connect_now(s)) {
		p->reconnect_at_ms = now_ms + p->reconnect_backoff_ms;
		p->reconnect_backoff_ms = p->reconnect_backoff_ms * 2 > STORE_PG_RECONNECT_MAX_MS
					      ? STORE_PG_RECONNECT_MAX_MS
					      : p->reconnect_backoff_ms * 2;
		return NULL;
	}
	p->reconnect_backoff_ms = STORE_PG_RECONNECT_MIN_MS;
	p->reconnect_at_ms = 0;
	p->reconnects++;
	if (p->w)
		store_pg__write_reset(s); /* caches may hold what a lost transaction created */
	return p->conn;
}

/* ---- running statements ---- */

static bool result_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static int prepare_once(struct store *s, const struct store_pg_stmt *st, const char *what)
{
	struct store_pg *p = store_pg(s);
	for (uint32_t i = 0; i < p->n_prepared; i++)
		if (p->prepared[i] == st)
			return 0;
	if (p->n_prepared >= STORE_PG_PREPARED_MAX)
		return store_pg_fail(s, "%s: more than %d prepared statements", what, STORE_PG_PREPARED_MAX);
	PGresult *r = PQprepare(p->conn, st->name, st->sql, st->nparams, st->types);
	if (!r || !result_ok(r)) {
		char why[160];
		errq_snprintf(why, sizeof(why), "prepare %s", what);
		store_pg_set_err_result(s, r, why);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	p->prepared[p->n_prepared++] = st;
	return 0;
}

PGresult *store_pg_run(struct store *s, const struct store_pg_stmt *st, const char *what, const char *const *vals,
		       const int *lens, const int *fmts, int binary_result)
{
	struct store_pg *p = store_pg(s);
	if (p->in_txn && p->txn_failed) {
		store_pg_fail(s, "%s: the transaction failed before (roll it back)", what);
		return NULL;
	}
	/* a reader's statement that finds its idle connection dead runs once more on a fresh one
	 * (a read repeats harmlessly); a writer's goes back to its caller, who decides */
	for (int attempt = 0;; attempt++) {
		if (!store_pg_conn(s))
			return NULL;
		if (!st->name || !prepare_once(s, st, what)) { /* (a failed prepare is recorded) */
			PGresult *r = st->name
					  ? PQexecPrepared(p->conn, st->name, st->nparams, vals, lens, fmts, binary_result)
					  : PQexecParams(p->conn, st->sql, st->nparams, st->types, vals, lens, fmts,
							 binary_result);
			if (r && result_ok(r))
				return r;
			store_pg_set_err_result(s, r, what);
			PQclear(r);
		}
		if (attempt || p->in_txn || !p->readonly || !conn_lost(p))
			return NULL;
	}
}

int store_pg_exec(struct store *s, const char *sql, const char *what)
{
	struct store_pg *p = store_pg(s);
	if (!p->conn)
		return store_pg_set_err(s, "%s", what);
	PGresult *r = PQexec(p->conn, sql);
	if (!r || !result_ok(r)) {
		store_pg_set_err_result(s, r, what);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

/* ---- parameters and columns ---- */

void store_pg_be64(char out[8], int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 0; i < 8; i++)
		out[i] = (char)(u >> (56 - 8 * i));
}

static uint64_t be_read(const unsigned char *b, int n)
{
	uint64_t u = 0;
	for (int i = 0; i < n; i++)
		u = u << 8 | b[i];
	return u;
}

int64_t store_pg_col_i64(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, col);
	switch (PQgetlength(r, row, col)) {
	case 8: return (int64_t)be_read(b, 8);
	case 4: return (int32_t)(uint32_t)be_read(b, 4);
	case 2: return (int16_t)(uint16_t)be_read(b, 2);
	case 1: return b[0];
	default: return 0;
	}
}

const char *store_pg_col_text(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

const uint8_t *store_pg_col_bytes(const PGresult *r, int row, int col, size_t *len)
{
	*len = 0;
	if (PQgetisnull(r, row, col))
		return NULL;
	*len = (size_t)PQgetlength(r, row, col);
	return (const uint8_t *)PQgetvalue(r, row, col);
}

#define ARRAY_HEADER 20 /* ndim, has-null flag, element type, the dimension's size and lower bound */

void store_pg_array_init(struct store_pg_array *a, Oid elem)
{
	memset(a, 0, sizeof(*a));
	a->elem = elem;
	a->len = ARRAY_HEADER; /* written by finish */
}

/* Room for n more bytes (the header's included at the first). */
static bool array_room(struct store_pg_array *a, size_t n)
{
	if (a->failed || n > STORE_PG_ARRAY_MAX_BYTES - a->len) {
		a->failed = true;
		return false;
	}
	if (a->len + n <= a->cap)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + n)
		cap *= 2;
	char *p = realloc(a->p, cap);
	if (!p) {
		a->failed = true;
		return false;
	}
	a->p = p;
	a->cap = cap;
	return true;
}

static void be32(char out[4], uint32_t v)
{
	for (int i = 0; i < 4; i++)
		out[i] = (char)(v >> (24 - 8 * i));
}

int store_pg_array_bytes(struct store_pg_array *a, const void *p, size_t n)
{
	if (!array_room(a, 4 + (p ? n : 0)))
		return -1;
	be32(a->p + a->len, p ? (uint32_t)n : UINT32_MAX); /* length -1: NULL */
	a->len += 4;
	if (p && n)
		memcpy(a->p + a->len, p, n);
	a->len += p ? n : 0;
	a->has_null |= !p;
	a->n++;
	return 0;
}

int store_pg_array_i64(struct store_pg_array *a, int64_t v)
{
	char b[8];
	store_pg_be64(b, v);
	return store_pg_array_bytes(a, b, 8);
}

int store_pg_array_bool(struct store_pg_array *a, bool v)
{
	char b = v ? 1 : 0;
	return store_pg_array_bytes(a, &b, 1);
}

int store_pg_array_text(struct store_pg_array *a, const char *v)
{
	return store_pg_array_bytes(a, v && *v ? v : NULL, v ? strlen(v) : 0);
}

const char *store_pg_array_finish(struct store_pg_array *a, int *len)
{
	if (!array_room(a, 0) || (!a->p && !array_room(a, 1)))
		return NULL;
	be32(a->p, 1);
	be32(a->p + 4, a->has_null);
	be32(a->p + 8, a->elem);
	be32(a->p + 12, a->n);
	be32(a->p + 16, 1);
	*len = (int)a->len;
	return a->p;
}

void store_pg_array_free(struct store_pg_array *a)
{
	free(a->p);
	memset(a, 0, sizeof(*a));
}

/* Appends n bytes of v to out (at *k, NUL kept room for); false when it does not fit. */
static bool put(char *out, size_t outsz, size_t *k, const char *v, size_t n)
{
	if (*k + n >= outsz)
		return false;
	memcpy(out + *k, v, n);
	*k += n;
	out[*k] = 0;
	return true;
}

int store_pg_glob_to_regex(struct store *s, const char *glob, char *out, size_t outsz)
{
	size_t k = 0;
	bool ok = outsz > 0 && put(out, outsz, &k, "^", 1);
	for (const char *c = glob; *c && ok; c++) {
		if (*c == '*')
			ok = put(out, outsz, &k, ".*", 2);
		else if (*c == '?')
			ok = put(out, outsz, &k, ".", 1);
		else if (*c == '[' && strchr(c + 1, ']')) {
			/* a class, as SQLite reads it: [^...] negates, a ']' first is literal */
			const char *e = c + 1;
			ok = put(out, outsz, &k, "[", 1);
			if (*e == '^') {
				ok = ok && put(out, outsz, &k, "^", 1);
				e++;
			}
			if (*e == ']') {
				ok = ok && put(out, outsz, &k, "\\]", 2);
				e++;
			}
			for (; *e && *e != ']' && ok; e++) {
				if (*e == '\\' || *e == '[')
					ok = put(out, outsz, &k, "\\", 1);
				ok = ok && put(out, outsz, &k, e, 1);
			}
			if (!*e) { /* "[]..." with no closing bracket after: SQLite matches nothing */
				k = 0;
				ok = put(out, outsz, &k, "^[^\\s\\S]", 8);
				break;
			}
			ok = ok && put(out, outsz, &k, "]", 1);
			c = e;
		} else {
			if (strchr(".^$|()+{}\\[]", *c))
				ok = put(out, outsz, &k, "\\", 1);
			ok = ok && put(out, outsz, &k, c, 1);
		}
	}
	if (!ok || !put(out, outsz, &k, "$", 1))
		return store_pg_fail(s, "pattern '%.40s' is too long", glob);
	return 0;
}

/* ---- opening and closing ---- */

static void free_handle(struct store *s)
{
	struct store_pg *p = store_pg(s);
	store_pg__write_free(s);
	store_pg__maint_free(s);
	store_pg_alerts_free(s);
	store_pg__tail_free(s);
	if (p->conn)
		PQfinish(p->conn);
	free(p->conninfo);
	free(p);
}

int store_pg__open_side(struct store *s, struct store **out)
{
	struct store_pg *p = store_pg(s), *q = calloc(1, sizeof(*q));
	*out = NULL;
	if (!q || !(q->conninfo = strdup(p->conninfo))) {
		free(q);
		return store_pg_fail(s, "open the groups session: out of memory");
	}
	q->be = p->be;
	q->side_session = true;
	q->reconnect_backoff_ms = STORE_PG_RECONNECT_MIN_MS;
	q->mono_ns = p->mono_ns;
	q->mono_ctx = p->mono_ctx;
	struct store *side = (struct store *)q;
	if (connect_now(side)) {
		store_pg_fail(s, "open the groups session: %s", q->err);
		p->errclass = q->errclass;
		free_handle(side);
		return -1;
	}
	*out = side;
	return 0;
}

/* A reader's check: the schema this errqd reads. */
static int check_version(struct store *s)
{
	static const struct store_pg_stmt st = {"errq_store_version",
						"SELECT max(version)::bigint FROM errq_schema", 0, NULL};
	PGresult *r = store_pg_run(s, &st, "read schema version", NULL, NULL, NULL, 1);
	if (!r)
		return -1;
	int64_t v = PQntuples(r) ? store_pg_col_i64(r, 0, 0) : 0;
	PQclear(r);
	if (v != STORE_PG_SCHEMA_VERSION)
		return store_pg_fail(s, "database schema version %lld, this errq reads %d", (long long)v,
				     STORE_PG_SCHEMA_VERSION);
	return 0;
}

int store_pg_open(struct store **out, const struct store_opts *o, char *err, size_t errsz)
{
	struct store_pg *p = calloc(1, sizeof(*p));
	struct store *s = (struct store *)p;
	*out = NULL;
	if (!p || !(p->conninfo = strdup(o->path ? o->path : ""))) {
		free(p);
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	p->be = &store_pg_backend;
	p->readonly = o->readonly;
	p->leader_session = o->leader_session;
	p->reconnect_backoff_ms = STORE_PG_RECONNECT_MIN_MS;
	p->groups_per_service = o->groups_per_service;
	p->mono_ns = o->mono_ns;
	p->mono_ctx = o->mono_ctx;
	if (connect_now(s))
		goto fail;
	if (o->readonly || o->leader_session) {
		if (check_version(s))
			goto fail;
	} else if (store_pg_migrate(s, store_pg__now_ns()) || store_pg__write_alloc(s)) {
		goto fail;
	}
	*out = s;
	return 0;
fail:
	/* the URL is the caller's to redact (store_url_redact): the reason alone, never it */
	errq_snprintf(err, errsz, "cannot open the PostgreSQL database: %s", p->err);
	free_handle(s);
	return -1;
}

void store_pg_close(struct store *s)
{
	if (!s)
		return;
	store_pg_txn_rollback(s);
	free_handle(s);
}

/* ---- transactions ---- */

/* Sends BEGIN.  A connection that died while idle (a server restart, an idle timeout, a
 * terminated backend) is found only now: one fresh connection, at once, before giving up. */
static int begin(struct store *s, const char *what)
{
	if (!store_pg_conn(s))
		return -1;
	if (!store_pg_exec(s, "BEGIN", what))
		return 0;
	if (!conn_lost(store_pg(s)) || !store_pg_conn(s) || store_pg_exec(s, "BEGIN", what))
		return -1;
	return 0;
}

int store_pg_txn_begin(struct store *s)
{
	struct store_pg *p = store_pg(s);
	if (p->in_txn)
		return store_pg_fail(s, "transaction already open");
	if (begin(s, "begin"))
		return -1;
	p->in_txn = true;
	p->txn_failed = false;
	if (p->w)
		store_pg__write_reset(s);
	return 0;
}

/* Sends COMMIT: 0 when the server committed, else -1 (a transaction that failed earlier is
 * answered ROLLBACK, not an error). */
static int send_commit(struct store *s, const char *what)
{
	struct store_pg *p = store_pg(s);
	if (!p->conn)
		return store_pg_set_err(s, "%s", what);
	PGresult *r = PQexec(p->conn, "COMMIT");
	if (!r || !result_ok(r)) {
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		if (p->w && state && !strcmp(state, "54000")) /* "too many notifications in the NOTIFY queue" */
			store_pg__tail_queue_full();
		store_pg_set_err_result(s, r, what);
		PQclear(r);
		return -1;
	}
	bool committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
	PQclear(r);
	if (!committed)
		return store_pg_fail(s, "%s: the server rolled the transaction back", what);
	return 0;
}

int store_pg_txn_commit(struct store *s)
{
	struct store_pg *p = store_pg(s);
	if (!p->in_txn)
		return store_pg_fail(s, "no open transaction");
	if (p->txn_failed)
		return store_pg_fail(s, "commit: a statement of the transaction failed (roll it back)");
	/* the aggregates of the transaction's events go with them: exact after a crash; and the
	 * notice of its rows, which PostgreSQL delivers to the other collectors' tails at COMMIT */
	if (p->w && (store_pg__write_flush(s) || store_pg__write_notify(s)))
		return -1;
	if (send_commit(s, "commit"))
		return -1;
	p->in_txn = false;
	if (p->w)
		store_pg__write_committed(s);
	return 0;
}

/* Ends the open transaction with ROLLBACK when the server still has one, keeping the failure
 * that made the caller roll back (a failing ROLLBACK is only its echo; a lost connection took
 * the transaction with it). */
static void rollback_keeping_error(struct store_pg *p)
{
	char why[sizeof(p->err)];
	int cls = p->errclass;
	bool busy = p->busy;
	memcpy(why, p->err, sizeof(why));
	if (p->conn && PQstatus(p->conn) == CONNECTION_OK && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
	memcpy(p->err, why, sizeof(why));
	p->errclass = cls;
	p->busy = busy;
	p->in_txn = false;
	p->txn_failed = false;
}

void store_pg_txn_rollback(struct store *s)
{
	struct store_pg *p = store_pg(s);
	if (!p->in_txn)
		return;
	rollback_keeping_error(p);
	if (p->w)
		store_pg__write_rolled_back(s);
}

/* No deferral on PostgreSQL: every commit writes its aggregates (one statement per table). */
int store_pg_txn_commit_deferred(struct store *s)
{
	return store_pg_txn_commit(s);
}

int store_pg_txn_commit_idle(struct store *s)
{
	return store_pg_txn_commit(s);
}

bool store_pg_agg_pending(const struct store *s)
{
	return store_pg__write_pending(s);
}

int store_pg_agg_flush(struct store *s)
{
	(void)s;
	return 0; /* nothing is ever pending between transactions */
}

int store_pg_agg_flush_step(struct store *s, bool *more)
{
	(void)s;
	*more = false;
	return 0;
}

int store_pg_own_txn_begin(struct store *s, const char *what)
{
	struct store_pg *p = store_pg(s);
	if (p->in_txn)
		return store_pg_fail(s, "%s inside a transaction", what);
	char why[96];
	errq_snprintf(why, sizeof(why), "begin %s", what);
	if (begin(s, why))
		return -1;
	p->in_txn = true;
	p->txn_failed = false;
	return 0;
}

int store_pg_own_txn_end(struct store *s, int rc, const char *what)
{
	struct store_pg *p = store_pg(s);
	char why[96];
	if (!p->in_txn)
		return -1;
	if (rc >= 0 && !p->txn_failed) {
		errq_snprintf(why, sizeof(why), "commit %s", what);
		if (!send_commit(s, why)) {
			p->in_txn = false;
			return rc;
		}
	}
	rollback_keeping_error(p);
	return -1;
}

/* ---- SQLite's machinery, answered for PostgreSQL (plan17 decision 3) ---- */

void store_pg_set_ckpt(struct store *s, struct store_ckpt *ck)
{
	(void)s;
	(void)ck; /* no WAL of ours to checkpoint: the server checkpoints */
}

int store_pg_wal_catch_up(struct store *s, int min_pages)
{
	(void)s;
	(void)min_pages;
	return 0;
}

int store_pg_get_pragma_int(struct store *s, const char *name, int64_t *v)
{
	*v = 0; /* the schema's version is errq_schema's (pg_schema.c) */
	return store_pg_fail(s, "'%.40s' is a SQLite pragma: a PostgreSQL database has none", name);
}

/* ---- the seam's table ---- */
const struct store_backend store_pg_backend = {
    .name = "postgres",
    .close = store_pg_close,
    .errmsg = store_pg_errmsg,
    .last_busy = store_pg_last_busy,
    .last_errclass = store_pg_last_errclass,
    .txn_begin = store_pg_txn_begin,
    .txn_add_event = store_pg_txn_add_event,
    .txn_add_events = store_pg_txn_add_events,
    .txn_count_event = store_pg_txn_count_event,
    .txn_commit = store_pg_txn_commit,
    .txn_rollback = store_pg_txn_rollback,
    .txn_commit_deferred = store_pg_txn_commit_deferred,
    .txn_commit_idle = store_pg_txn_commit_idle,
    .agg_pending = store_pg_agg_pending,
    .agg_flush = store_pg_agg_flush,
    .agg_flush_step = store_pg_agg_flush_step,
    .list_events = store_pg_list_events,
    .list_groups = store_pg_list_groups,
    .get_group = store_pg_get_group,
    .group_histogram = store_pg_group_histogram,
    .get_event = store_pg_get_event,
    .set_group_status = store_pg_set_group_status,
    .maintain = store_pg_maintain,
    .get_write_stats = store_pg_get_write_stats,
    .tail_listen = store_pg_tail_listen,
    .set_ckpt = store_pg_set_ckpt,
    .wal_catch_up = store_pg_wal_catch_up,
    .get_pragma_int = store_pg_get_pragma_int,
    .count_events = store_pg_count_events,
    .get_totals = store_pg_get_totals,
    .overflow_group = store_pg_overflow_group,
    .circuit_put = store_pg_circuit_put,
    .circuit_delete = store_pg_circuit_delete,
    .list_circuits = store_pg_list_circuits,
    .count_circuits = store_pg_count_circuits,
    .get_circuit = store_pg_get_circuit,
    .transition_add = store_pg_transition_add,
    .list_transitions = store_pg_list_transitions,
    .alert_put = store_pg_alert_put,
    .get_alert = store_pg_get_alert,
    .list_alerts = store_pg_list_alerts,
    .delivery_add = store_pg_delivery_add,
    .delivery_update = store_pg_delivery_update,
    .list_deliveries_by_status = store_pg_list_deliveries_by_status,
    .delivery_claim = store_pg_delivery_claim,
    .list_deliveries = store_pg_list_deliveries,
    .get_delivery = store_pg_get_delivery,
    .silence_add = store_pg_silence_add,
    .silence_expire = store_pg_silence_expire,
    .get_silence = store_pg_get_silence,
    .list_silences = store_pg_list_silences,
    .outcome_batch_seen = store_pg_outcome_batch_seen,
    .outcome_batches_prune = store_pg_outcome_batches_prune,
    .alerts_prune = store_pg_alerts_prune,
#define PG_FLEET_OP(need, kind, ret, op, params, args) .op = store_pg_##op,
    STORE_BACKEND_FLEET_OPS(PG_FLEET_OP)
#undef PG_FLEET_OP
};
