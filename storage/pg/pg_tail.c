/* pg_tail.c: the tail across collectors on one PostgreSQL database (storage.h,
 * store_tail_listen; docs/architecture.md, "Tail across replicas").
 *
 * The notice.  Every writer transaction that stored events runs, before its COMMIT,
 *     SELECT pg_notify('errq_events', '1 <origin> <lo> <hi> <rows> ' || <its xid>)
 * origin: this process's random 64-bit id (hex), so a collector skips its own notices (its own
 * events reach its tail through the writer's commit hook); lo, hi: the smallest and largest
 * events.id the transaction stored, rows: how many; xid: the transaction's id as the rows'
 * xmin holds it (32 bits).  Ids come from one sequence that every collector draws from, so
 * [lo, hi] may hold other transactions' rows too: `xmin = xid` keeps exactly this
 * transaction's (the writer uses no savepoints: every row it inserts has the top
 * transaction's xid).  One notice per transaction, STORE_PG_TAIL_PAYLOAD_MAX bytes at most
 * (PostgreSQL's limit is 8000): its size does not grow with the batch.  PostgreSQL delivers a
 * notice only when its transaction commits, to every session LISTENing on the channel in that
 * database, in commit order.
 *
 * The listener.  A read-only handle of its own LISTENs; store_pg_tail_listen reads the notices
 * libpq has (PQnotifies) into a queue of STORE_TAIL_QUEUE_MAX (past it a notice's rows are
 * counted missed: the queue never grows with the fleet's rate, and the server's notification
 * queue never waits on us), waits with poll() on the connection's socket up to the caller's
 * timeout when there are none, and fetches each notice's rows by id range and xmin,
 * STORE_TAIL_FETCH_ROWS a statement, in id order.  A lost connection fails the call; the next
 * one reconnects (store_pg_conn's backoff) and LISTENs again: what the others committed
 * meanwhile was notified to nobody here and is not fetched. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "pg_int.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define STORE_PG_TAIL_CHANNEL "errq_events"
#define STORE_PG_TAIL_PAYLOAD_MAX 128 /* "1 " + 16 hex + 3 int64 + an xid, with spaces: < 100 */
#define STORE_PG_TAIL_VERSION 1       /* the payload's first word: another one is skipped */

struct notice {
	int64_t lo, hi;
	uint64_t rows;
	char xid[12]; /* as text: the statement's $3::xid */
};

struct store_pg_tail {
	bool listening;   /* LISTEN sent on the connection of reconnect generation gen */
	uint64_t gen;
	uint32_t n;       /* notices queued */
	uint64_t skipped; /* malformed notices (another program's NOTIFY on the channel) */
	struct notice q[STORE_TAIL_QUEUE_MAX];
};

/* ---- this process's origin ---- */

static pthread_once_t origin_once = PTHREAD_ONCE_INIT;
static char origin_hex[17];

static void origin_init(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v) || !v)
		v = errq_mono_ns() ^ ((uint64_t)getpid() << 32) ^ errq_now_ns();
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++)
		origin_hex[i] = hex[(v >> (60 - 4 * i)) & 15];
	origin_hex[16] = 0;
}

static const char *origin(void)
{
	pthread_once(&origin_once, origin_init);
	return origin_hex;
}

/* ---- the writer's notice ---- */

int store_pg__tail_notify(struct store *s, int64_t lo, int64_t hi, uint64_t rows)
{
	/* the xid is the server's to say: txid_current() is the 64-bit one, xmin its low 32 bits */
	static const struct store_pg_stmt st = {
	    "errq_tail_notify",
	    "SELECT pg_notify('" STORE_PG_TAIL_CHANNEL "', $1::text || ' ' || (txid_current() % 4294967296)::text)", 1,
	    NULL};
	char payload[STORE_PG_TAIL_PAYLOAD_MAX - 12]; /* the xid's ten digits and a space follow */
	if (errq_snprintf(payload, sizeof(payload), "%d %s %lld %lld %llu", STORE_PG_TAIL_VERSION, origin(),
			  (long long)lo, (long long)hi, (unsigned long long)rows) < 0)
		return store_pg_fail(s, "tail notice: payload too long"); /* cannot happen: 3 int64 */
	const char *v[] = {payload};
	PGresult *r = store_pg_run(s, &st, "tail notice", v, NULL, NULL, 0);
	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

/* ---- the listener ---- */

void store_pg__tail_free(struct store *s)
{
	struct store_pg *p = store_pg(s);
	free(p->tail);
	p->tail = NULL;
}

/* The next space-separated word of *pp as a decimal integer; false when there is none. */
static bool word_i64(const char **pp, int64_t *v)
{
	const char *p = *pp;
	bool neg = *p == '-';
	p += neg;
	if (*p < '0' || *p > '9')
		return false;
	uint64_t u = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (u > (UINT64_MAX - 9) / 10)
			return false;
		u = u * 10 + (uint64_t)(*p - '0');
	}
	if (*p && *p != ' ')
		return false;
	if (u > (uint64_t)INT64_MAX)
		return false;
	*v = neg ? -(int64_t)u : (int64_t)u;
	*pp = *p ? p + 1 : p;
	return true;
}

/* Parses a notice's payload.  1: another collector's, in *n; 0: this process's own; -1:
 * malformed (another version, another program's NOTIFY). */
static int parse_notice(const char *payload, struct notice *n)
{
	int64_t ver, lo, hi, rows, xid;
	const char *p = payload;
	if (!word_i64(&p, &ver) || ver != STORE_PG_TAIL_VERSION || strlen(p) < 17 || p[16] != ' ')
		return -1;
	bool own = memcmp(p, origin(), 16) == 0;
	p += 17;
	if (!word_i64(&p, &lo) || !word_i64(&p, &hi) || !word_i64(&p, &rows) || !word_i64(&p, &xid) || *p ||
	    lo <= 0 || hi < lo || rows <= 0 || rows > hi - lo + 1 || xid < 0 || xid > UINT32_MAX)
		return -1;
	if (own)
		return 0;
	n->lo = lo;
	n->hi = hi;
	n->rows = (uint64_t)rows;
	errq_snprintf(n->xid, sizeof(n->xid), "%lld", (long long)xid);
	return 1;
}

/* Moves the notices libpq has read into the queue (fetch) or drops them (no fetch). */
static void drain(struct store_pg_tail *t, PGconn *c, bool fetch, uint64_t *missed)
{
	PGnotify *nf;
	while ((nf = PQnotifies(c))) {
		struct notice n;
		int kind = strcmp(nf->relname, STORE_PG_TAIL_CHANNEL) ? -1 : parse_notice(nf->extra, &n);
		if (kind < 0)
			t->skipped++;
		else if (kind > 0 && fetch) {
			if (t->n < STORE_TAIL_QUEUE_MAX)
				t->q[t->n++] = n;
			else
				*missed += n.rows; /* the queue is full: its rows are not fetched */
		}
		PQfreemem(nf);
	}
}

/* LISTENs on a connection that does not yet (the first call, or a new one after a loss). */
static PGconn *listening_conn(struct store *s, struct store_pg_tail *t)
{
	struct store_pg *p = store_pg(s);
	PGconn *c = store_pg_conn(s);
	if (!c)
		return NULL;
	if (t->listening && t->gen == p->reconnects)
		return c;
	t->listening = false;
	if (store_pg_exec(s, "LISTEN " STORE_PG_TAIL_CHANNEL, "tail: listen"))
		return NULL;
	t->listening = true;
	t->gen = p->reconnects;
	return c;
}

/* Waits up to timeout_ms for input on c and reads it.  0, or -1 (the connection failed). */
static int wait_input(struct store *s, PGconn *c, uint32_t timeout_ms)
{
	struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
	if (pfd.fd < 0)
		return store_pg_set_err(s, "tail: wait for notices");
	int rc = poll(&pfd, 1, timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms);
	if (rc < 0 && errno != EINTR)
		return store_pg_fail(s, "tail: poll: %s", strerror(errno));
	if (rc > 0 && (!PQconsumeInput(c) || PQstatus(c) == CONNECTION_BAD))
		return store_pg_set_err(s, "tail: read notices");
	return 0;
}

/* Fetches notice n's rows and calls cb with each.  The events delivered, or -1 (the statement
 * failed; *missed counts the rows not delivered). */
static int fetch_notice(struct store *s, const struct notice *n, store_event_cb cb, void *ctx, uint64_t *missed)
{
	static const struct store_pg_stmt st = {
	    "errq_tail_fetch",
	    "SELECT " STORE_PG_EVENT_COLS " FROM events e JOIN groups g ON g.id = e.group_id"
	    " WHERE e.id >= $1::bigint AND e.id <= $2::bigint AND e.xmin = $3::xid ORDER BY e.id LIMIT $4::bigint",
	    4, NULL};
	char from[24], to[24], limit[16];
	const char *v[] = {from, to, n->xid, limit};
	uint64_t got = 0;
	int64_t next = n->lo;
	errq_snprintf(to, sizeof(to), "%lld", (long long)n->hi);
	errq_snprintf(limit, sizeof(limit), "%d", STORE_TAIL_FETCH_ROWS);
	for (;;) {
		errq_snprintf(from, sizeof(from), "%lld", (long long)next);
		PGresult *r = store_pg_run(s, &st, "tail: fetch events", v, NULL, NULL, 1);
		if (!r) {
			*missed += n->rows > got ? n->rows - got : 0;
			return -1;
		}
		int k = PQntuples(r);
		for (int i = 0; i < k; i++) {
			struct store_event e;
			if (!store_pg__event_from_row(r, i, &e))
				continue;
			cb(ctx, &e);
			got++;
			next = e.rowid + 1;
		}
		PQclear(r);
		if (k < STORE_TAIL_FETCH_ROWS || next > n->hi)
			break;
	}
	/* fewer than the notice said: gone before we read them (retention dropped their day) */
	if (got < n->rows)
		*missed += n->rows - got;
	return got > INT32_MAX ? INT32_MAX : (int)got;
}

int store_pg_tail_listen(struct store *s, uint32_t timeout_ms, bool fetch, store_event_cb cb, void *ctx,
			 uint64_t *missed)
{
	struct store_pg *p = store_pg(s);
	if (p->w)
		return store_pg_fail(s, "tail: listen on the writer's handle (open one of its own)");
	if (p->in_txn)
		return store_pg_fail(s, "tail: listen inside a transaction");
	if (!p->tail && !(p->tail = calloc(1, sizeof(*p->tail))))
		return store_pg_fail(s, "tail: out of memory");
	struct store_pg_tail *t = p->tail;
	PGconn *c = listening_conn(s, t);
	if (!c)
		return -1;
	drain(t, c, fetch, missed);
	if (!t->n) {
		if (wait_input(s, c, timeout_ms)) {
			t->listening = false;
			return -1;
		}
		drain(t, c, fetch, missed);
	}
	long delivered = 0;
	uint32_t i = 0;
	for (; i < t->n; i++) {
		int got = fetch_notice(s, &t->q[i], cb, ctx, missed);
		if (got < 0 && p->errclass == STORE_ERR_UNAVAILABLE)
			break;
		delivered += got > 0 ? got : 0;
	}
	if (i < t->n) { /* the connection went: the notices left are lost with it */
		for (uint32_t k = i + 1; k < t->n; k++)
			*missed += t->q[k].rows;
		t->n = 0;
		t->listening = false;
		return -1;
	}
	t->n = 0;
	return delivered > INT32_MAX ? INT32_MAX : (int)delivered;
}
