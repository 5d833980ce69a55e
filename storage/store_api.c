/* store_api.c: the public store_* calls of storage.h and storage_alerts.h, dispatched to the
 * handle's backend (backend.h), and the calls that take a database rather than a handle, which
 * choose by the database's URL (store_url.h).
 *
 * What the SQLite-only machinery answers for a PostgreSQL database, without its caller knowing
 * (docs/architecture.md, "Storage backends"):
 *   store_lock        succeeds and holds nothing (several collectors on one database is the
 *                     point of PostgreSQL; the database serializes what must be serialized)
 *   store_ckpt_start  gives NULL (store_ckpt_kick/_get_stats/_stop and store_set_ckpt take NULL)
 *   store_wal_catch_up, store_agg_* and the deferred commits: a backend without them writes
 *                     everything at each commit (store_txn_commit)
 *   store_backup      refuses: online backup of PostgreSQL is PostgreSQL's own job */
#include <string.h>

#include "backend.h"
#include "store_overflow.h"
#include "store_url.h"
#include "errq_str.h"
#include "errq_banned.h"

#define PG_BACKUP_REFUSAL "online backup of a PostgreSQL database is PostgreSQL's job: use pg_dump or pg_basebackup"

const char *store_backend_missing(const struct store_backend *be)
{
#define CHECK_REQ(op)                                                                                              \
	if (!be->op)                                                                                               \
		return #op;
#define CHECK_OPT(op)
#define CHECK(need, kind, ret, op, params, args) CHECK_##need(op)
	STORE_BACKEND_OPS(CHECK)
#undef CHECK
#undef CHECK_OPT
#undef CHECK_REQ
	return NULL;
}

/* The required operations: one call through the table each.  The void ones accept NULL
 * (store_close's contract; harmless for the others). */
#define DISPATCH_REQ_R(ret, op, params, args)                                                                      \
	ret store_##op params { return store_backend_of(s)->op args; }
#define DISPATCH_REQ_V(ret, op, params, args)                                                                      \
	ret store_##op params                                                                                      \
	{                                                                                                          \
		if (s)                                                                                             \
			store_backend_of(s)->op args;                                                              \
	}
#define DISPATCH_OPT_R(ret, op, params, args) /* below, by hand */
#define DISPATCH_OPT_V(ret, op, params, args)
#define DISPATCH(need, kind, ret, op, params, args) DISPATCH_##need##_##kind(ret, op, params, args)
STORE_BACKEND_OPS(DISPATCH)
#undef DISPATCH

/* The optional operations: what a backend without them answers. */
int store_txn_commit_deferred(struct store *s)
{
	const struct store_backend *be = store_backend_of(s);
	return be->txn_commit_deferred ? be->txn_commit_deferred(s) : be->txn_commit(s);
}

int store_txn_commit_idle(struct store *s)
{
	const struct store_backend *be = store_backend_of(s);
	return be->txn_commit_idle ? be->txn_commit_idle(s) : be->txn_commit(s);
}

bool store_agg_pending(const struct store *s)
{
	const struct store_backend *be = store_backend_of(s);
	return be->agg_pending ? be->agg_pending(s) : false;
}

int store_agg_flush(struct store *s)
{
	const struct store_backend *be = store_backend_of(s);
	return be->agg_flush ? be->agg_flush(s) : 0;
}

int store_agg_flush_step(struct store *s, bool *more)
{
	const struct store_backend *be = store_backend_of(s);
	if (be->agg_flush_step)
		return be->agg_flush_step(s, more);
	*more = false;
	return 0;
}

void store_set_ckpt(struct store *s, struct store_ckpt *ck)
{
	const struct store_backend *be = store_backend_of(s);
	if (be->set_ckpt)
		be->set_ckpt(s, ck);
}

int store_wal_catch_up(struct store *s, int min_pages)
{
	const struct store_backend *be = store_backend_of(s);
	return be->wal_catch_up ? be->wal_catch_up(s, min_pages) : 0;
}

int store_tail_listen(struct store *s, uint32_t timeout_ms, store_tail_want_cb want, store_event_cb cb, void *ctx,
		      uint64_t *missed)
{
	const struct store_backend *be = store_backend_of(s);
	return be->tail_listen ? be->tail_listen(s, timeout_ms, want, cb, ctx, missed) : -1;
}

int store_get_pragma_int(struct store *s, const char *name, int64_t *v)
{
	const struct store_backend *be = store_backend_of(s);
	return be->get_pragma_int ? be->get_pragma_int(s, name, v) : -1;
}

/* The fleet's operations (storage_alerts.h): a backend without them runs one collector, whose
 * caller never calls them (store_fleet() is false); a call anyway fails. */
bool store_fleet(const struct store *s)
{
	return store_backend_of(s)->leader_acquire != NULL;
}

#define FLEET_OP(op, params, args)                                                                                 \
	int store_##op params                                                                                      \
	{                                                                                                          \
		const struct store_backend *be = store_backend_of(s);                                              \
		return be->op ? be->op args : -1;                                                                  \
	}
FLEET_OP(leader_acquire, (struct store *s, const char *name, uint64_t *epoch), (s, name, epoch))
FLEET_OP(leader_ping, (struct store *s), (s))
FLEET_OP(leader_check, (struct store *s, uint64_t epoch, struct store_leader *st), (s, epoch, st))
FLEET_OP(leader_get, (struct store *s, struct store_leader *st), (s, st))
FLEET_OP(rule_inputs_add, (struct store *s, const struct store_rule_input *in, size_t n), (s, in, n))
FLEET_OP(rule_inputs_take, (struct store *s, uint32_t limit, store_rule_input_cb cb, void *ctx), (s, limit, cb, ctx))
FLEET_OP(delivery_lease, (struct store *s, int64_t id, const char *owner, uint64_t until_ns), (s, id, owner, until_ns))
FLEET_OP(deliveries_renew, (struct store *s, const char *owner, uint64_t now_ns, uint64_t until_ns),
	 (s, owner, now_ns, until_ns))
#undef FLEET_OP

/* ---- the calls that take a database ---- */

int store_open(struct store **out, const struct store_opts *o, char *err, size_t errsz)
{
	struct store_url u;
	char red[STORE_URL_REDACTED_MAX];
	struct store_opts so = *o;
	const struct store_backend *be = &store_sqlite_backend;
	*out = NULL;
	if (store_url_parse(o->path, &u, err, errsz))
		return -1;
	if (u.kind == STORE_URL_POSTGRES) {
#ifdef ERRQ_HAVE_POSTGRES
		be = &store_pg_backend;
#else
		errq_snprintf(err, errsz, "cannot open database '%s': postgres support not built (errq was built without libpq)",
			      store_url_redact(o->path, red, sizeof(red)));
		return -1;
#endif
	} else {
		if (o->leader_session) {
			errq_snprintf(err, errsz, "cannot open database '%s' for leadership: only a database several collectors share (postgres://) has a leader",
				      store_url_redact(o->path, red, sizeof(red)));
			return -1;
		}
		so.path = u.path;
	}
	const char *missing = store_backend_missing(be);
	if (missing) { /* a programming error of a backend, said plainly rather than a crash */
		errq_snprintf(err, errsz, "cannot open database '%s': the %s backend lacks operation '%s'",
			      store_url_redact(o->path, red, sizeof(red)), be->name, missing);
		return -1;
	}
#ifdef ERRQ_HAVE_POSTGRES
	if (be == &store_pg_backend)
		return store_pg_open(out, &so, err, errsz);
#endif
	return store_sqlite_open(out, &so, err, errsz);
}

int store_lock(struct store_lock **out, const char *db, char *err, size_t errsz)
{
	struct store_url u;
	*out = NULL;
	if (store_url_parse(db, &u, err, errsz))
		return -1;
	if (u.kind == STORE_URL_POSTGRES)
		return 0; /* no lock: several collectors share a PostgreSQL database */
	return store_sqlite_lock(out, u.path, err, errsz);
}

int store_ckpt_start(struct store_ckpt **out, const char *db, char *err, size_t errsz)
{
	struct store_url u;
	*out = NULL;
	if (store_url_parse(db, &u, err, errsz))
		return -1;
	if (u.kind == STORE_URL_POSTGRES)
		return 0; /* PostgreSQL checkpoints by itself */
	return store_sqlite_ckpt_start(out, u.path, err, errsz);
}

int store_backup_check(const char *db, char *err, size_t errsz)
{
	struct store_url u;
	if (store_url_parse(db, &u, err, errsz))
		return -1;
	if (u.kind == STORE_URL_POSTGRES) {
		errq_snprintf(err, errsz, PG_BACKUP_REFUSAL);
		return -1;
	}
	return 0;
}

int store_backup(const struct store_backup_opts *o, struct store_backup_result *r, char *err, size_t errsz)
{
	struct store_url u;
	memset(r, 0, sizeof(*r));
	if (store_backup_check(o->src_path, err, errsz))
		return STORE_BACKUP_UNSUPPORTED;
	if (store_url_parse(o->src_path, &u, err, errsz))
		return STORE_BACKUP_UNSUPPORTED;
	struct store_backup_opts so = *o;
	so.src_path = u.path;
	return store_sqlite_backup(&so, r, err, errsz);
}

_Static_assert(STORE_DELIVERY_OWNER_MAX == 128 && STORE_DELIVERY_CLAIM_MAX == 256, "the messages below name them");

const char *store_delivery_claim_refusal(const char *owner, uint64_t lease_ns, uint32_t limit)
{
	if (!owner || !*owner)
		return "a delivery claim needs the claimer's name";
	if (strlen(owner) > STORE_DELIVERY_OWNER_MAX)
		return "a claimer's name is longer than STORE_DELIVERY_OWNER_MAX (128 bytes)";
	if (!lease_ns || lease_ns > STORE_DELIVERY_LEASE_MAX)
		return "a delivery lease must be longer than 0 and at most a day";
	if (!limit || limit > STORE_DELIVERY_CLAIM_MAX)
		return "a delivery claim takes 1 to STORE_DELIVERY_CLAIM_MAX (256) rows";
	return NULL;
}
