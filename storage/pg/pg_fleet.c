/* pg_fleet.c: several collectors on one PostgreSQL database (issue 17; storage_alerts.h,
 * "the fleet").
 *
 * Leadership.  The leader lock is a session advisory lock (ERRQ_PG_LOCK_LEADER) taken with
 * pg_try_advisory_lock on a leader_session handle: it lasts as long as that session, and
 * PostgreSQL frees it the moment the session ends (a killed collector's socket closes; a
 * vanished machine's session ends by the keepalives pg_store.c sets on both ends).  Taking it
 * bumps errq_leader.epoch in the same session; the writer of the leader checks the epoch
 * under FOR SHARE at the start of each transaction that changes circuits, and the new
 * leader's bump (an UPDATE of the same row) waits for such a transaction to end, so the old
 * leader either committed before the bump or sees the new epoch and rolls back.  A reconnect
 * of the handle is a new session that holds nothing: ping says so.
 *
 * Increments (rule_inputs) are appended by every collector's writer (one INSERT ... unnest
 * per transaction) and deleted by the leader's (DELETE ... RETURNING of the oldest rows no
 * other transaction holds), inside the transaction that writes what they caused. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"
#include "errq_str.h"
#include "errq_banned.h"

#define STMT(id, n, text) static const struct store_pg_stmt id = {.name = "errq_fleet_" #id, .sql = text, .nparams = n}

STMT(try_lock, 1, "SELECT pg_try_advisory_lock($1::bigint)");
STMT(bump_epoch, 2,
     "UPDATE errq_leader SET epoch = epoch + 1, leader = $1::text, since_ns = $2::bigint WHERE id = 1"
     " RETURNING epoch");
STMT(ping, 0, "SELECT 1");
#define LEADER_COLS "epoch, silence_gen, since_ns, leader"
STMT(check, 0, "SELECT " LEADER_COLS " FROM errq_leader WHERE id = 1 FOR SHARE");
STMT(get, 0, "SELECT " LEADER_COLS " FROM errq_leader WHERE id = 1");
STMT(inputs_add, 11,
     "INSERT INTO rule_inputs (kind, rule, key, received_s, failures, ok, failed, window_end_ns, service, task,"
     " sample_event) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],"
     " $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::bytea[])");
/* RETURNING's order is unspecified: the outer SELECT orders by id */
STMT(inputs_take, 1,
     "WITH t AS (DELETE FROM rule_inputs WHERE id IN (SELECT id FROM rule_inputs ORDER BY id LIMIT $1::bigint"
     " FOR UPDATE SKIP LOCKED) RETURNING id, kind, rule, key, received_s, failures, ok, failed, window_end_ns,"
     " service, task, sample_event) SELECT * FROM t ORDER BY id");
STMT(delivery_lease, 3,
     "UPDATE deliveries SET claimed_by = $2::text, lease_until = $3::bigint WHERE id = $1::bigint AND status = 0");
STMT(deliveries_renew, 3,
     "UPDATE deliveries SET lease_until = $3::bigint WHERE claimed_by = $1::text AND status = 0"
     " AND lease_until > $2::bigint");

static const char *u64s(char buf[24], uint64_t v)
{
	errq_snprintf(buf, 24, "%" PRIu64, v);
	return buf;
}

static int only_leader_session(struct store *s, const char *what)
{
	return store_pg(s)->leader_session ? 0 : store_pg_fail(s, "%s: not a leader session handle", what);
}

int store_pg_leader_acquire(struct store *s, const char *name, uint64_t *epoch)
{
	struct store_pg *p = store_pg(s);
	char key[24], now[24];
	*epoch = 0;
	if (only_leader_session(s, "take the leader lock"))
		return -1;
	if (!name || !*name || strlen(name) >= STORE_LEADER_NAME_MAX)
		return store_pg_fail(s, "take the leader lock: a collector name of 1 to %d bytes", STORE_LEADER_NAME_MAX - 1);
	if (p->lock_held && p->reconnects != p->lock_reconnects)
		p->lock_held = false; /* a new session: the lock went with the old one */
	errq_snprintf(key, sizeof(key), "%" PRId64, ERRQ_PG_LOCK_LEADER);
	const char *kv[] = {key};
	PGresult *r = store_pg_run(s, &try_lock, "take the leader lock", kv, NULL, NULL, 1);
	if (!r)
		return -1;
	bool got = PQntuples(r) == 1 && store_pg_col_i64(r, 0, 0) != 0;
	PQclear(r);
	if (!got)
		return 0;
	if (p->lock_held) {
		/* pg_try_advisory_lock stacks: give back the count just added, keep the one held */
		static const struct store_pg_stmt unlock = {"errq_fleet_unlock_extra", "SELECT pg_advisory_unlock($1::bigint)",
							    1, NULL};
		if (!(r = store_pg_run(s, &unlock, "release the extra leader lock", kv, NULL, NULL, 1)))
			return -1;
		PQclear(r);
	}
	p->lock_held = true;
	p->lock_reconnects = p->reconnects;
	const char *bv[] = {name, u64s(now, store_pg__now_ns())};
	if (!(r = store_pg_run(s, &bump_epoch, "bump the fleet's epoch", bv, NULL, NULL, 1)))
		return -1; /* the session is probably gone (the lock with it); if not, ping finds the lock
			    * held and the next acquire bumps */
	if (PQntuples(r) != 1) {
		PQclear(r);
		return store_pg_fail(s, "bump the fleet's epoch: no errq_leader row");
	}
	*epoch = (uint64_t)store_pg_col_i64(r, 0, 0);
	PQclear(r);
	return 1;
}

int store_pg_leader_ping(struct store *s)
{
	struct store_pg *p = store_pg(s);
	if (only_leader_session(s, "ping the leader session"))
		return -1;
	if (!p->lock_held || p->reconnects != p->lock_reconnects || !p->conn || PQstatus(p->conn) != CONNECTION_OK) {
		p->lock_held = false;
		return 0;
	}
	PGresult *r = store_pg_run(s, &ping, "ping the leader session", NULL, NULL, NULL, 1);
	if (!r) {
		if (!p->conn || PQstatus(p->conn) != CONNECTION_OK)
			p->lock_held = false;
		return p->lock_held ? -1 : 0;
	}
	PQclear(r);
	return 1;
}

static int leader_row(struct store *s, const struct store_pg_stmt *st, const char *what, struct store_leader *out)
{
	PGresult *r = store_pg_run(s, st, what, NULL, NULL, NULL, 1);
	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return store_pg_fail(s, "%s: no errq_leader row", what);
	}
	memset(out, 0, sizeof(*out));
	out->epoch = (uint64_t)store_pg_col_i64(r, 0, 0);
	out->silence_gen = (uint64_t)store_pg_col_i64(r, 0, 1);
	out->since_ns = (uint64_t)store_pg_col_i64(r, 0, 2);
	const char *name = store_pg_col_text(r, 0, 3);
	errq_snprintf(out->leader, sizeof(out->leader), "%s", name ? name : "");
	PQclear(r);
	return 0;
}

int store_pg_leader_check(struct store *s, uint64_t epoch, struct store_leader *st)
{
	struct store_leader tmp;
	if (!store_pg(s)->in_txn)
		return store_pg_fail(s, "check the leader's epoch: outside a transaction");
	if (leader_row(s, &check, "check the leader's epoch", st ? st : &tmp))
		return -1;
	return (st ? st : &tmp)->epoch == epoch;
}

int store_pg_leader_get(struct store *s, struct store_leader *st)
{
	return leader_row(s, &get, "read the fleet's leader", st);
}

int store_pg_rule_inputs_add(struct store *s, const struct store_rule_input *in, size_t n)
{
	if (!n)
		return 0;
	if (store_pg(s)->readonly)
		return store_pg_fail(s, "add rule inputs: the handle is read-only");
	enum { KIND, RULE, KEY, SECOND, FAILURES, OK, FAILED, WEND, SERVICE, TASK, SAMPLE, NCOL };
	static const Oid elem[NCOL] = {STORE_PG_INT8OID, STORE_PG_TEXTOID, STORE_PG_TEXTOID, STORE_PG_INT8OID,
				       STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_INT8OID,
				       STORE_PG_TEXTOID, STORE_PG_TEXTOID, STORE_PG_BYTEAOID};
	struct store_pg_array a[NCOL];
	for (int c = 0; c < NCOL; c++)
		store_pg_array_init(&a[c], elem[c]);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct store_rule_input *x = &in[i];
		rc |= store_pg_array_i64(&a[KIND], x->kind);
		rc |= store_pg_array_text(&a[RULE], x->rule);
		/* "" is SQL NULL to the array helper; a key is never NULL: a one-circuit rule's is "" */
		rc |= store_pg_array_bytes(&a[KEY], x->key ? x->key : "", x->key ? strlen(x->key) : 0);
		rc |= store_pg_array_i64(&a[SECOND], (int64_t)(x->received_ns / 1000000000u));
		rc |= store_pg_array_i64(&a[FAILURES], (int64_t)x->failures);
		rc |= store_pg_array_i64(&a[OK], (int64_t)x->ok);
		rc |= store_pg_array_i64(&a[FAILED], (int64_t)x->failed);
		rc |= store_pg_array_i64(&a[WEND], (int64_t)x->window_end_ns);
		rc |= store_pg_array_text(&a[SERVICE], x->service);
		rc |= store_pg_array_text(&a[TASK], x->task);
		rc |= store_pg_array_bytes(&a[SAMPLE], x->sample_event, 16);
	}
	const char *vals[NCOL];
	int lens[NCOL], fmts[NCOL];
	for (int c = 0; c < NCOL && !rc; c++) {
		vals[c] = store_pg_array_finish(&a[c], &lens[c]);
		fmts[c] = 1;
		rc |= vals[c] == NULL;
	}
	if (rc)
		rc = store_pg_fail(s, "add rule inputs: out of memory or too big (%zu rows)", n);
	else {
		PGresult *r = store_pg_run(s, &inputs_add, "add rule inputs", vals, lens, fmts, 1);
		rc = r ? 0 : -1;
		PQclear(r);
	}
	for (int c = 0; c < NCOL; c++)
		store_pg_array_free(&a[c]);
	return rc;
}

int store_pg_rule_inputs_take(struct store *s, uint32_t limit, store_rule_input_cb cb, void *ctx)
{
	char lim[24];
	if (!store_pg(s)->in_txn)
		return store_pg_fail(s, "take rule inputs: outside a transaction");
	if (limit < 1 || limit > STORE_RULE_INPUTS_TAKE_MAX)
		return store_pg_fail(s, "take rule inputs: a limit of 1 to %d rows, not %u", STORE_RULE_INPUTS_TAKE_MAX,
				     limit);
	const char *v[] = {u64s(lim, limit)};
	PGresult *r = store_pg_run(s, &inputs_take, "take rule inputs", v, NULL, NULL, 1);
	if (!r)
		return -1;
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		size_t slen = 0;
		const uint8_t *sample = store_pg_col_bytes(r, i, 11, &slen);
		const char *key = store_pg_col_text(r, i, 3);
		struct store_rule_input in = {
		    .id = store_pg_col_i64(r, i, 0),
		    .kind = (int)store_pg_col_i64(r, i, 1),
		    .rule = store_pg_col_text(r, i, 2),
		    .key = key ? key : "",
		    .received_ns = (uint64_t)store_pg_col_i64(r, i, 4) * 1000000000u,
		    .failures = (uint64_t)store_pg_col_i64(r, i, 5),
		    .ok = (uint64_t)store_pg_col_i64(r, i, 6),
		    .failed = (uint64_t)store_pg_col_i64(r, i, 7),
		    .window_end_ns = (uint64_t)store_pg_col_i64(r, i, 8),
		    .service = store_pg_col_text(r, i, 9),
		    .task = store_pg_col_text(r, i, 10),
		    .sample_event = sample && slen == 16 ? sample : NULL,
		};
		if (!in.rule)
			continue;
		if (cb(ctx, &in))
			break; /* the rest are taken too: the caller rolls back or drops them knowingly */
	}
	PQclear(r);
	return n;
}

int store_pg_delivery_lease(struct store *s, int64_t id, const char *owner, uint64_t until_ns)
{
	char ids[24], until[24];
	errq_snprintf(ids, sizeof(ids), "%" PRId64, id);
	const char *v[] = {ids, owner, u64s(until, until_ns)};
	if (store_pg(s)->readonly)
		return store_pg_fail(s, "lease delivery: the handle is read-only");
	PGresult *r = store_pg_run(s, &delivery_lease, "lease delivery", v, NULL, NULL, 1);
	if (!r)
		return -1;
	int n = atoi(PQcmdTuples(r));
	PQclear(r);
	return n > 0;
}

int store_pg_deliveries_renew(struct store *s, const char *owner, uint64_t now_ns, uint64_t until_ns)
{
	char now[24], until[24];
	const char *v[] = {owner, u64s(now, now_ns), u64s(until, until_ns)};
	if (store_pg(s)->readonly)
		return store_pg_fail(s, "renew delivery leases: the handle is read-only");
	PGresult *r = store_pg_run(s, &deliveries_renew, "renew delivery leases", v, NULL, NULL, 1);
	if (!r)
		return -1;
	int n = atoi(PQcmdTuples(r));
	PQclear(r);
	return n;
}
