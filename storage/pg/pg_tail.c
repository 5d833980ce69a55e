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
 * STORE_TAIL_FETCH_ROWS a statement, in id order.
 *
 * A lost connection fails the call; the next one reconnects (store_pg_conn's backoff), LISTENs
 * again, and catches up: what the others committed while nobody here listened was notified to
 * no one, so it reads, in one REPEATABLE READ snapshot taken after the new LISTEN, the rows
 * whose xmin is none of this process's own writer transactions (a process-wide ring of the
 * last STORE_PG_TAIL_OWN_MAX xids the writer notified) nor of the other collectors' notices it
 * handled (delivered, counted missed, or dropped with nobody tailing: a ring of the last
 * STORE_PG_TAIL_HANDLED_MAX, and what earlier catch-ups brought), past an id: the newest any
 * notice had named (hwm) less STORE_PG_TAIL_CATCHUP_BACK, since a transaction in flight at the
 * loss drew its ids before the newest notified ones, but never below the newest id of a
 * transaction either ring let go (it could come twice), nor below the newest id when the
 * listener first LISTENed (older rows are nobody's to bring); at most
 * STORE_PG_TAIL_CATCHUP_MAX rows (the rest counted missed).  The notices of transactions the
 * snapshot saw and that committed after the LISTEN come too, and are skipped by their xid.
 * Not caught up: a transaction in flight at the loss whose ids lie below that start, and,
 * when this process's writer committed more than its ring holds meanwhile, everything
 * (counted missed: an upper bound, its own included).
 *
 * Threads: the writer's thread sends the notices and records their xids in the process-wide
 * ring (own_mu); a listener handle, like any handle, is used by one thread at a time (errqd's
 * tail listener); the ring and notify_off_until are the only state they share. */
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
#define STORE_PG_TAIL_NOTIFY_PAUSE_MS 60000 /* no notices after the server's queue was full */
#define STORE_PG_TAIL_OWN_MAX 4096    /* this process's writer's last notified xids, for catch-up */
#define STORE_PG_TAIL_CATCHUP_MAX 16384 /* rows one catch-up delivers; past it: counted missed */
#define STORE_PG_TAIL_HANDLED_MAX 4096 /* the other collectors' notices handled lately, for catch-up */
#define STORE_PG_TAIL_CATCHUP_BACK 65536 /* ids below the hwm a catch-up looks back over */

struct notice {
	int64_t lo, hi;
	uint64_t rows;
	uint32_t xid32;
	char xid[12]; /* as text: the statement's $3::xid */
};

enum pending { PENDING_NONE, PENDING_HWM, PENDING_CATCH_UP };

struct store_pg_tail {
	enum pending pending; /* after a LISTEN: what must happen before the notices */
	bool listening;   /* LISTEN sent on the connection of reconnect generation gen */
	bool ever;        /* LISTENed once: a LISTEN after it follows a loss (catch up) */
	uint64_t gen;
	int64_t hwm;      /* the largest events.id a notice named or a catch-up read */
	int64_t base;     /* the newest id when it first LISTENed: older rows are nobody's to bring */
	uint64_t own_mark; /* own_count when the listener last had its connection */
	uint32_t n;       /* notices queued */
	uint64_t skipped; /* malformed notices (another program's NOTIFY on the channel) */
	uint32_t handled[STORE_PG_TAIL_HANDLED_MAX]; /* the others' notices handled lately (ring) */
	int64_t handled_hi[STORE_PG_TAIL_HANDLED_MAX];
	uint64_t n_handled;
	int64_t handled_gone_hi; /* the largest hi of the notices the ring let go */
	uint32_t n_caught; /* xids of the transactions the last catch-up delivered */
	uint32_t caught[STORE_PG_TAIL_CATCHUP_MAX];
	struct notice q[STORE_TAIL_QUEUE_MAX];
};

/* This process's writer's notified transactions (any handle's: one writer per errqd). */
static pthread_mutex_t own_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t own_xids[STORE_PG_TAIL_OWN_MAX];
static int64_t own_hi[STORE_PG_TAIL_OWN_MAX];
static uint64_t own_count; /* xids ever recorded; the ring holds the last STORE_PG_TAIL_OWN_MAX */
static int64_t own_gone_hi; /* the largest hi of the transactions the ring let go */

static void own_record(uint32_t xid, int64_t hi)
{
	pthread_mutex_lock(&own_mu);
	size_t k = own_count % STORE_PG_TAIL_OWN_MAX;
	if (own_count >= STORE_PG_TAIL_OWN_MAX && own_hi[k] > own_gone_hi)
		own_gone_hi = own_hi[k];
	own_xids[k] = xid;
	own_hi[k] = hi;
	own_count++;
	pthread_mutex_unlock(&own_mu);
}

static uint64_t own_now(void)
{
	pthread_mutex_lock(&own_mu);
	uint64_t n = own_count;
	pthread_mutex_unlock(&own_mu);
	return n;
}

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

/* errq_mono_ns() until which the writer sends no notice (the server's queue was full). */
static _Atomic uint64_t notify_off_until;

void store_pg__tail_queue_full(void)
{
	notify_off_until = errq_mono_ns() + (uint64_t)STORE_PG_TAIL_NOTIFY_PAUSE_MS * ERRQ_NS_PER_MS;
}

int store_pg__tail_notify(struct store *s, int64_t lo, int64_t hi, uint64_t rows)
{
	/* the xid is the server's to say: txid_current() is the 64-bit one, xmin its low 32 bits */
	static const struct store_pg_stmt st = {
	    "errq_tail_notify",
	    "SELECT x, pg_notify('" STORE_PG_TAIL_CHANNEL "', $1::text || ' ' || x::text)"
	    " FROM (SELECT txid_current() % 4294967296 AS x) t",
	    1, NULL};
	/* the server's notification queue is shared: full (a listener somewhere stopped reading:
	 * a collector paused with its session open), every notifying COMMIT fails; ingest first */
	if (errq_mono_ns() < notify_off_until)
		return 0;
	char payload[STORE_PG_TAIL_PAYLOAD_MAX - 12]; /* the xid's ten digits and a space follow */
	if (errq_snprintf(payload, sizeof(payload), "%d %s %lld %lld %llu", STORE_PG_TAIL_VERSION, origin(),
			  (long long)lo, (long long)hi, (unsigned long long)rows) < 0)
		return store_pg_fail(s, "tail notice: payload too long"); /* cannot happen: 3 int64 */
	const char *v[] = {payload};
	PGresult *r = store_pg_run(s, &st, "tail notice", v, NULL, NULL, 1);
	if (!r)
		return -1;
	/* recorded before COMMIT: a transaction that then fails left no rows to mistake */
	if (PQntuples(r))
		own_record((uint32_t)store_pg_col_i64(r, 0, 0), hi);
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
	n->hi = hi; /* own or not: the hwm */
	if (own)
		return 0;
	n->lo = lo;
	n->rows = (uint64_t)rows;
	n->xid32 = (uint32_t)xid;
	errq_snprintf(n->xid, sizeof(n->xid), "%lld", (long long)xid);
	return 1;
}

/* Remembers another collector's notice as handled (delivered, counted missed or, with nobody
 * tailing, dropped): a catch-up must not bring its rows again. */
static void handled_add(struct store_pg_tail *t, uint32_t xid, int64_t hi)
{
	size_t k = t->n_handled % STORE_PG_TAIL_HANDLED_MAX;
	if (t->n_handled >= STORE_PG_TAIL_HANDLED_MAX && t->handled_hi[k] > t->handled_gone_hi)
		t->handled_gone_hi = t->handled_hi[k];
	t->handled[k] = xid;
	t->handled_hi[k] = hi;
	t->n_handled++;
}

static bool caught(const struct store_pg_tail *t, uint32_t xid)
{
	for (uint32_t i = 0; i < t->n_caught; i++)
		if (t->caught[i] == xid)
			return true;
	return false;
}

/* Moves the notices libpq has read into the queue (fetch) or drops them (no fetch). */
static void drain(struct store_pg_tail *t, PGconn *c, bool fetch, uint64_t *missed)
{
	PGnotify *nf;
	while ((nf = PQnotifies(c))) {
		struct notice n;
		int kind = strcmp(nf->relname, STORE_PG_TAIL_CHANNEL) ? -1 : parse_notice(nf->extra, &n);
		if (kind >= 0 && n.hi > t->hwm)
			t->hwm = n.hi;
		if (kind > 0)
			handled_add(t, n.xid32, n.hi);
		if (kind > 0 && t->n_caught && caught(t, n.xid32))
			kind = 0; /* the catch-up delivered it */
		else if (kind > 0)
			t->n_caught = 0; /* notices come in commit order: no later one was caught up */
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

/* LISTENs on a connection that does not yet (the first call, or a new one after a loss: then
 * a catch-up is due, else the hwm's first reading). */
static PGconn *listening_conn(struct store *s, struct store_pg_tail *t)
{
	struct store_pg *p = store_pg(s);
	PGconn *c = store_pg_conn(s);
	if (!c)
		return NULL;
	if (t->listening && t->gen == p->reconnects)
		return c;
	t->listening = false;
	/* named "<application_name> tail" in pg_stat_activity, for operators (and the tests) */
	if (store_pg_exec(s,
			  "SELECT set_config('application_name', left(current_setting('application_name'), 57) || ' tail',"
			  " false); LISTEN " STORE_PG_TAIL_CHANNEL,
			  "tail: listen"))
		return NULL;
	t->listening = true;
	t->gen = p->reconnects;
	t->pending = t->ever ? PENDING_CATCH_UP : PENDING_HWM;
	t->ever = true;
	return c;
}

/* The newest id now: where the tail starts (nothing before it is anyone's to catch up). */
static int read_hwm(struct store *s, struct store_pg_tail *t)
{
	static const struct store_pg_stmt st = {"errq_tail_hwm", "SELECT coalesce(max(id), 0) FROM events", 0, NULL};
	PGresult *r = store_pg_run(s, &st, "tail: newest id", NULL, NULL, NULL, 1);
	if (!r)
		return -1;
	int64_t v = PQntuples(r) ? store_pg_col_i64(r, 0, 0) : 0;
	PQclear(r);
	if (v > t->hwm)
		t->hwm = v;
	if (!t->base)
		t->base = t->hwm ? t->hwm : -1; /* -1: an empty table, nothing before */
	return 0;
}

/* Calls cb with each event of r (STORE_PG_EVENT_COLS; with t, then the row's xmin, recorded
 * in t->caught): how many; *last is the last one's id. */
static int deliver(const PGresult *r, store_event_cb cb, void *ctx, int64_t *last, struct store_pg_tail *t)
{
	int k = PQntuples(r), n = 0;
	for (int i = 0; i < k; i++) {
		struct store_event e;
		if (!store_pg__event_from_row(r, i, &e))
			continue;
		cb(ctx, &e);
		n++;
		*last = e.rowid;
		uint32_t x = t ? (uint32_t)store_pg_col_i64(r, i, 18) : 0;
		if (t && !caught(t, x) && t->n_caught < STORE_PG_TAIL_CATCHUP_MAX)
			t->caught[t->n_caught++] = x;
	}
	return n;
}

/* The xids a catch-up leaves out as an xid[] literal ("{1,2,3}", malloc'd): this process's
 * writer's recent ones and the other collectors' notices handled lately; and in *from the id
 * it looks past: STORE_PG_TAIL_CATCHUP_BACK below the hwm (a transaction in flight at the
 * loss drew its ids before the newest notified ones), but not below the rings' reach (a
 * transaction they let go may have rows above that: not to be brought twice).  NULL when out
 * of memory, or when the writer committed more than its ring holds since mark (*overflow). */
static char *excluded_literal(const struct store_pg_tail *t, uint64_t mark, bool *overflow, int64_t *from)
{
	char *out = malloc((STORE_PG_TAIL_OWN_MAX + STORE_PG_TAIL_HANDLED_MAX) * 11 + 3);
	size_t k = 0;
	int64_t gone;
	pthread_mutex_lock(&own_mu);
	*overflow = own_count - mark > STORE_PG_TAIL_OWN_MAX;
	uint64_t n = own_count < STORE_PG_TAIL_OWN_MAX ? own_count : STORE_PG_TAIL_OWN_MAX;
	if (out && !*overflow) {
		out[k++] = '{';
		for (uint64_t i = 0; i < n; i++)
			k += (size_t)errq_snprintf(out + k, 12, "%s%u", k > 1 ? "," : "", own_xids[i]);
	}
	gone = own_gone_hi;
	pthread_mutex_unlock(&own_mu);
	if (*overflow || !out) {
		free(out);
		return NULL;
	}
	n = t->n_handled < STORE_PG_TAIL_HANDLED_MAX ? t->n_handled : STORE_PG_TAIL_HANDLED_MAX;
	for (uint64_t i = 0; i < n; i++)
		k += (size_t)errq_snprintf(out + k, 12, "%s%u", k > 1 ? "," : "", t->handled[i]);
	out[k++] = '}';
	out[k] = 0;
	*from = t->hwm > STORE_PG_TAIL_CATCHUP_BACK ? t->hwm - STORE_PG_TAIL_CATCHUP_BACK : 0;
	if (*from < gone)
		*from = gone;
	if (*from < t->handled_gone_hi)
		*from = t->handled_gone_hi;
	if (*from < t->base)
		*from = t->base;
	return out;
}

/* After a loss: the other collectors' rows it has not handled, in one snapshot (see the top).
 * The events delivered, or -1. */
static int catch_up(struct store *s, struct store_pg_tail *t, store_event_cb cb, void *ctx, uint64_t *missed)
{
	/* sent with their values each time (not prepared): each plan sees the array and hashes it */
	static const struct store_pg_stmt page = {
	    NULL,
	    "SELECT " STORE_PG_EVENT_COLS ", e.xmin::text::bigint FROM events e JOIN groups g ON g.id = e.group_id"
	    " WHERE e.id > $1::bigint AND NOT e.xmin = ANY($2::xid[]) ORDER BY e.id LIMIT $3::bigint",
	    3, NULL};
	static const struct store_pg_stmt rest = {
	    NULL,
	    "SELECT count(*), coalesce(max(e.id), $1::bigint) FROM events e WHERE e.id > $1::bigint"
	    " AND NOT e.xmin = ANY($2::xid[])",
	    2, NULL};
	bool overflow;
	int64_t start = t->hwm;
	char *excl = excluded_literal(t, t->own_mark, &overflow, &start);
	if (!excl && !overflow)
		return store_pg_fail(s, "tail: catch up: out of memory");
	char from[24], limit[16];
	const char *v[] = {from, overflow ? "{}" : excl, limit};
	long delivered = 0;
	int rc = -1;
	t->n_caught = 0;
	if (store_pg_own_txn_begin(s, "tail catch-up") ||
	    store_pg_exec(s, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", "tail: catch up"))
		goto out;
	int64_t next = overflow ? t->hwm : start;
	/* its own rows cannot be told apart after an overflow: counted (an upper bound), not sent */
	while (!overflow && delivered < STORE_PG_TAIL_CATCHUP_MAX) {
		errq_snprintf(from, sizeof(from), "%lld", (long long)next);
		long want = STORE_PG_TAIL_CATCHUP_MAX - delivered;
		errq_snprintf(limit, sizeof(limit), "%ld", want < STORE_TAIL_FETCH_ROWS ? want : STORE_TAIL_FETCH_ROWS);
		PGresult *r = store_pg_run(s, &page, "tail: catch up", v, NULL, NULL, 1);
		if (!r)
			goto out;
		int k = PQntuples(r);
		delivered += deliver(r, cb, ctx, &next, t);
		if (next > t->hwm) /* delivered: a retry after a failure starts past it */
			t->hwm = next;
		PQclear(r);
		if (k < STORE_TAIL_FETCH_ROWS)
			break;
	}
	errq_snprintf(from, sizeof(from), "%lld", (long long)next);
	PGresult *r = store_pg_run(s, &rest, "tail: catch up", v, NULL, NULL, 1);
	if (!r)
		goto out;
	*missed += (uint64_t)store_pg_col_i64(r, 0, 0);
	next = store_pg_col_i64(r, 0, 1);
	PQclear(r);
	if (next > t->hwm)
		t->hwm = next;
	/* what it brought is handled: a later catch-up must not bring it again (their largest id
	 * for each: letting one go then moves the next catch-up's start past all of them) */
	for (uint32_t i = 0; i < t->n_caught; i++)
		handled_add(t, t->caught[i], next);
	rc = 0;
out:
	rc = store_pg_own_txn_end(s, rc, "tail catch-up");
	free(excl);
	return rc < 0 ? -1 : delivered > INT32_MAX ? INT32_MAX : (int)delivered;
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
		int64_t last = next - 1;
		got += (uint64_t)deliver(r, cb, ctx, &last, NULL);
		next = last + 1;
		PQclear(r);
		if (k < STORE_TAIL_FETCH_ROWS || next > n->hi)
			break;
	}
	/* fewer than the notice said: gone before we read them (retention dropped their day) */
	if (got < n->rows)
		*missed += n->rows - got;
	return got > INT32_MAX ? INT32_MAX : (int)got;
}

int store_pg_tail_listen(struct store *s, uint32_t timeout_ms, store_tail_want_cb want, store_event_cb cb,
			 void *ctx, uint64_t *missed)
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
	long delivered = 0;
	if (t->pending == PENDING_CATCH_UP && want(ctx)) {
		int got = catch_up(s, t, cb, ctx, missed);
		if (got < 0) {
			/* a connection lost again catches up at the next LISTEN; any other failure
			 * would fail again: given up (said by the error), the notices go on */
			if (p->errclass == STORE_ERR_UNAVAILABLE)
				t->listening = false;
			else
				t->pending = PENDING_NONE;
			return -1;
		}
		delivered += got;
		t->pending = PENDING_NONE;
	} else if (t->pending != PENDING_NONE) { /* nobody tails: nothing to catch up, only the hwm */
		if (read_hwm(s, t)) {
			if (p->errclass == STORE_ERR_UNAVAILABLE)
				t->listening = false;
			else
				t->pending = PENDING_NONE;
			return -1;
		}
		t->pending = PENDING_NONE;
	}
	if (!store_pg(s)->conn || PQstatus(store_pg(s)->conn) != CONNECTION_OK || t->gen != p->reconnects) {
		t->listening = false; /* the catch-up's statements reconnected: LISTEN again */
		return delivered > INT32_MAX ? INT32_MAX : (int)delivered;
	}
	c = p->conn;
	t->own_mark = own_now();
	drain(t, c, want(ctx), missed);
	if (!t->n) {
		if (wait_input(s, c, timeout_ms)) {
			t->listening = false;
			return -1;
		}
		drain(t, c, want(ctx), missed); /* asked now: a subscriber may have come meanwhile */
	}
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
