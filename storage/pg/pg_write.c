/* pg_write.c: the writer's side of the PostgreSQL backend — events, groups, aggregates.
 *
 * Events.  store_pg_txn_add_events sends a batch as one INSERT ... SELECT FROM unnest(arrays)
 * ON CONFLICT (event_id) DO NOTHING RETURNING event_id (STORE_PG_BATCH_MAX events or
 * STORE_PG_BATCH_BYTES a statement, more in several): the returned ids are the ones stored,
 * the rest were duplicates, whichever day partition holds them (the primary key is global).
 *
 * Groups.  A writer-local cache (STORE_PG_GROUP_CACHE, direct-mapped) maps fingerprints to
 * ids; a batch's misses are SELECTed in one statement, and the new groups are made by a second
 * session in a transaction of their own (make_groups, below: why), INSERT ... ON CONFLICT
 * (fingerprint) DO NOTHING RETURNING id, then SELECTed when another replica inserted it first.
 *
 * Aggregates.  The transaction's counts (per group; per group, minute and environment; per
 * service and minute) are summed in memory and written by the commit, inside the same
 * transaction, one statement per table from unnest arrays sorted by key: so they are exact
 * after any crash (no deferral, no recovery), and replicas updating the same hot rows take
 * their row locks in the same order (no deadlock between writers; the groups' rows are
 * locked by a SELECT ... ORDER BY id FOR UPDATE first).  A transaction that counts more than
 * STORE_PG_TXN_AGG_MAX distinct rows of a table writes what it has early, still inside it. */
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"
#include "store_overflow.h"
#include "errq_hash.h"
#include "errq_str.h"
#include "errq_banned.h"

#define NS_PER_MINUTE 60000000000ULL
#define STORE_PG_BATCH_BYTES (32u << 20) /* array bytes of one events statement, about */
#define TXN_SLOTS (2 * STORE_PG_TXN_AGG_MAX) /* open addressing: half full at most */
_Static_assert((TXN_SLOTS & (TXN_SLOTS - 1)) == 0, "TXN_SLOTS is a power of two");
_Static_assert((STORE_PG_GROUP_CACHE & (STORE_PG_GROUP_CACHE - 1)) == 0, "a power of two");

struct gslot {
	int64_t id; /* 0 = empty */
	uint64_t hash;
	char fp[STORE_FINGERPRINT_MAX + 1];
};

struct nslot { /* environment -> id, service -> its groups (groups_per_service) */
	uint64_t hash;
	int64_t value;
	char *name; /* owned; NULL = empty */
};

struct pend_group {
	int64_t gid; /* 0 = free */
	uint64_t total, handled, dropped, first, last;
	char *env, *code, *msg; /* the newest non-empty values (owned) */
};

struct pend_minute {
	int64_t gid; /* 0 = free */
	int64_t minute, env;
	uint64_t count;
};

struct pend_service {
	char *service; /* owned; NULL = free */
	int64_t minute;
	uint64_t count, dropped;
};

struct store_pg_write {
	struct gslot *gcache; /* STORE_PG_GROUP_CACHE */
	struct nslot envs[STORE_ENV_CACHE];
	struct nslot services[STORE_SERVICE_CACHE];
	struct pend_group *g;
	struct pend_minute *m;
	struct pend_service *sv;
	uint32_t *g_used, *m_used, *sv_used; /* slots in use, in the order taken */
	uint32_t ng, nm, nsv;
	struct store *side;     /* the second session: new groups and environments (make_groups) */
	uint64_t txn_overflow;  /* events of the open transaction counted in an overflow group */
	int64_t txn_lo, txn_hi; /* the smallest and largest events.id the open transaction stored */
	uint64_t txn_rows;      /* ... and how many (the tail's notice: pg_tail.c) */
	/* a batch's scratch (STORE_PG_BATCH_MAX) */
	int64_t gids[STORE_PG_BATCH_MAX], envids[STORE_PG_BATCH_MAX];
	bool overflowed[STORE_PG_BATCH_MAX];
	uint32_t order[STORE_PG_BATCH_MAX];
};

static uint64_t str_hash(const char *v)
{
	return errq_fnv64(ERRQ_FNV64_INIT, v, strlen(v));
}

static void names_clear(struct nslot *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].name);
		c[i] = (struct nslot){0};
	}
}

/* Forgets the open transaction's pending aggregates. */
static void pend_clear(struct store_pg_write *w)
{
	for (uint32_t k = 0; k < w->ng; k++) {
		struct pend_group *g = &w->g[w->g_used[k]];
		free(g->env);
		free(g->code);
		free(g->msg);
		*g = (struct pend_group){0};
	}
	for (uint32_t k = 0; k < w->nm; k++)
		w->m[w->m_used[k]] = (struct pend_minute){0};
	for (uint32_t k = 0; k < w->nsv; k++) {
		struct pend_service *sv = &w->sv[w->sv_used[k]];
		free(sv->service);
		*sv = (struct pend_service){0};
	}
	w->ng = w->nm = w->nsv = 0;
}

int store_pg__write_alloc(struct store *s)
{
	struct store_pg *p = store_pg(s);
	struct store_pg_write *w = p->w = calloc(1, sizeof(*w));
	if (!w || !(w->gcache = calloc(STORE_PG_GROUP_CACHE, sizeof(*w->gcache))) ||
	    !(w->g = calloc(TXN_SLOTS, sizeof(*w->g))) || !(w->m = calloc(TXN_SLOTS, sizeof(*w->m))) ||
	    !(w->sv = calloc(TXN_SLOTS, sizeof(*w->sv))) || !(w->g_used = calloc(TXN_SLOTS, sizeof(uint32_t))) ||
	    !(w->m_used = calloc(TXN_SLOTS, sizeof(uint32_t))) || !(w->sv_used = calloc(TXN_SLOTS, sizeof(uint32_t))))
		return store_pg_fail(s, "out of memory");
	/* the second session at once, like the writer's own: a writer that keeps its session
	 * while the server refuses new ones still makes groups (it reconnects like any handle) */
	return store_pg__open_side(s, &w->side);
}

void store_pg__write_free(struct store *s)
{
	struct store_pg_write *w = store_pg(s)->w;
	if (!w)
		return;
	if (w->g && w->m && w->sv && w->g_used && w->m_used && w->sv_used)
		pend_clear(w);
	names_clear(w->envs, STORE_ENV_CACHE);
	names_clear(w->services, STORE_SERVICE_CACHE);
	store_pg_close(w->side);
	free(w->gcache);
	free(w->g);
	free(w->m);
	free(w->sv);
	free(w->g_used);
	free(w->m_used);
	free(w->sv_used);
	free(w);
	store_pg(s)->w = NULL;
}

void store_pg__write_reset(struct store *s)
{
	struct store_pg_write *w = store_pg(s)->w;
	pend_clear(w); /* the caches stay: groups and environments are committed by the side session */
	w->txn_overflow = 0;
	w->txn_lo = w->txn_hi = 0;
	w->txn_rows = 0;
}

void store_pg__write_committed(struct store *s)
{
	struct store_pg *p = store_pg(s);
	p->wst.overflow_events += p->w->txn_overflow;
	p->w->txn_overflow = 0;
	p->w->txn_lo = p->w->txn_hi = 0;
	p->w->txn_rows = 0;
	pend_clear(p->w);
}

void store_pg__write_rolled_back(struct store *s)
{
	store_pg__write_reset(s);
}

bool store_pg__write_pending(const struct store *s)
{
	const struct store_pg_write *w = ((const struct store_pg *)s)->w;
	return w && (w->ng || w->nm || w->nsv);
}

/* ---- names: environments, and services' group counts ---- */

static struct nslot *name_slot(struct nslot *c, size_t n, const char *name, bool *hit)
{
	uint64_t h = str_hash(name);
	struct nslot *sl = &c[h % n];
	*hit = sl->name && sl->hash == h && strcmp(sl->name, name) == 0;
	return sl;
}

static int name_put(struct store *s, struct nslot *sl, const char *name, int64_t value)
{
	char *dup = strdup(name);
	if (!dup)
		return store_pg_fail(s, "out of memory");
	free(sl->name);
	sl->name = dup;
	sl->hash = str_hash(name);
	sl->value = value;
	return 0;
}

/* The first column of r's one row as an id (0: no row); PQclears r. */
static int64_t take_id(PGresult *r)
{
	int64_t id = PQntuples(r) ? store_pg_col_i64(r, 0, 0) : 0;
	PQclear(r);
	return id;
}

/* ---- groups and environments: made in a session of their own ----
 *
 * A new group or environment is inserted by the writer's second session (store_pg__open_side),
 * in a short transaction of its own that commits before the events that need it are inserted,
 * never in the events' transaction: that transaction lives for many batches, and two replicas
 * inserting the same new fingerprints in different orders there waited on each other's
 * uncommitted rows until PostgreSQL ended one (40P01: found by bench/fleet.py with 2 and 3
 * replicas and 50 000 new groups, seconds of stall).  A chunk's new groups go in one side
 * transaction, by (service, fingerprint): every replica takes rows and service locks in that one
 * order, so they never wait in a cycle.  A group whose events' transaction then rolls back
 * stays (with no events, total 0), as a group whose events were all deleted would. */

/* The writer's second session (opened with the writer; NULL only if that failed). */
static struct store *side(struct store *s)
{
	struct store_pg_write *w = store_pg(s)->w;
	if (!w->side && store_pg__open_side(s, &w->side))
		return NULL;
	return w->side;
}

/* A failure of the side session, told on the writer's handle (with its class: a lost
 * connection is UNAVAILABLE there too). */
static int side_fail(struct store *s, struct store *sd)
{
	store_pg_fail(s, "%s", store_pg(sd)->err);
	store_pg(s)->errclass = store_pg(sd)->errclass;
	store_pg(s)->busy = store_pg(sd)->busy;
	return -1;
}

/* The id of environment env (0 for none), inserted when new; -1 on error. */
static int64_t env_id(struct store *s, const char *env)
{
	static const struct store_pg_stmt find = {"errq_env_find", "SELECT id FROM environments WHERE name = $1::text",
						  1, NULL};
	static const struct store_pg_stmt ins = {
	    "errq_env_insert",
	    "INSERT INTO environments (name) VALUES ($1::text) ON CONFLICT (name) DO NOTHING RETURNING id", 1, NULL};
	struct store_pg_write *w = store_pg(s)->w;
	if (!env || !*env)
		return 0;
	bool hit;
	struct nslot *sl = name_slot(w->envs, STORE_ENV_CACHE, env, &hit);
	if (hit)
		return sl->value;
	const char *v[] = {env};
	PGresult *r = store_pg_run(s, &find, "find environment", v, NULL, NULL, 1);
	if (!r)
		return -1;
	int64_t id = take_id(r);
	if (!id) { /* new: the side session inserts it (one statement, committed at once) */
		struct store *sd = side(s);
		if (!sd)
			return -1;
		if (!(r = store_pg_run(sd, &ins, "insert environment", v, NULL, NULL, 1)))
			return side_fail(s, sd);
		if (!(id = take_id(r)) &&
		    (!(r = store_pg_run(sd, &find, "find environment", v, NULL, NULL, 1)) || !(id = take_id(r))))
			return r ? store_pg_fail(s, "environment '%.40s' vanished", env) : side_fail(s, sd);
	}
	return name_put(s, sl, env, id) ? -1 : id;
}

/* The cached id of fingerprint fp, or 0. */
static int64_t group_cached(struct store_pg_write *w, const char *fp)
{
	size_t len = strlen(fp);
	uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, fp, len);
	const struct gslot *sl = &w->gcache[h & (STORE_PG_GROUP_CACHE - 1)];
	return sl->id && sl->hash == h && strcmp(sl->fp, fp) == 0 ? sl->id : 0;
}

static void group_cache_put(struct store_pg_write *w, const char *fp, int64_t id)
{
	size_t len = strlen(fp);
	uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, fp, len);
	struct gslot *sl = &w->gcache[h & (STORE_PG_GROUP_CACHE - 1)];
	sl->id = id;
	sl->hash = h;
	memcpy(sl->fp, fp, len + 1);
}

/* Loads into the cache, in one statement, the groups of ev[0..n) that it lacks: after a
 * restart, or past the cache's size, a batch would otherwise cost a SELECT per fingerprint.
 * (Fingerprints not found are new groups: make_groups makes them.)  0 or -1. */
static int prefetch_groups(struct store *s, const struct store_event *ev, size_t n)
{
	static const struct store_pg_stmt st = {
	    "errq_groups_find", "SELECT fingerprint, id FROM groups WHERE fingerprint = ANY($1::text[])", 1, NULL};
	struct store_pg *p = store_pg(s);
	struct store_pg_write *w = p->w;
	struct store_pg_array a;
	uint32_t misses = 0;
	store_pg_array_init(&a, STORE_PG_TEXTOID);
	for (size_t i = 0; i < n; i++) {
		const char *fp = ev[i].fingerprint;
		size_t len = fp ? strlen(fp) : 0;
		if (!len || len > STORE_FINGERPRINT_MAX || group_cached(w, fp)) /* resolve_groups says why */
			continue;
		store_pg_array_bytes(&a, fp, len);
		misses++;
	}
	const char *v[1];
	int len[1], fmt[1] = {1};
	PGresult *r = NULL;
	if (!misses) {
		store_pg_array_free(&a);
		return 0;
	}
	if ((v[0] = store_pg_array_finish(&a, len)))
		r = store_pg_run(s, &st, "find groups", v, len, fmt, 1);
	else
		store_pg_fail(s, "find groups: out of memory");
	store_pg_array_free(&a);
	if (!r)
		return -1;
	p->wst.group_lookups += misses;
	for (int i = 0; i < PQntuples(r); i++) {
		size_t flen;
		const char *fp = (const char *)store_pg_col_bytes(r, i, 0, &flen);
		char buf[STORE_FINGERPRINT_MAX + 1];
		if (!fp || !flen || flen > STORE_FINGERPRINT_MAX)
			continue;
		memcpy(buf, fp, flen);
		buf[flen] = 0;
		group_cache_put(w, buf, store_pg_col_i64(r, i, 1));
	}
	PQclear(r);
	return 0;
}

/* In the side session's open transaction: the id of the group of fp (found, or inserted as
 * e's group, or as the service's overflow group when overflow), 0 when it does not exist and
 * insert is false; -1 on error (recorded on sd). */
static int64_t side_group(struct store *sd, const char *fp, const struct store_event *e, bool overflow, bool insert)
{
	static const struct store_pg_stmt find = {"errq_group_find", "SELECT id FROM groups WHERE fingerprint = $1::text",
						   1, NULL};
	static const struct store_pg_stmt ins = {
	    "errq_group_insert",
	    "INSERT INTO groups (fingerprint, grouping_version, service, environment, error_type, error_code, message,"
	    " first_seen, last_seen, last_minute, overflow) VALUES ($1::text, $2::integer, $3::text, $4::text,"
	    " $5::text, $6::text, $7::text, $8::bigint, $8::bigint, $8::bigint / 60000000000, $9::boolean)"
	    " ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
	    9, NULL};
	const char *fv[] = {fp};
	PGresult *r = store_pg_run(sd, &find, "find group", fv, NULL, NULL, 1);
	if (!r)
		return -1;
	int64_t id = take_id(r);
	if (id || !insert)
		return id;
	char gv[16], first[24];
	errq_snprintf(gv, sizeof(gv), "%d", e->grouping_version);
	errq_snprintf(first, sizeof(first), "%lld", (long long)e->received_ns);
	const char *params[] = {fp,
				gv,
				e->service ? e->service : "",
				e->environment && *e->environment ? e->environment : NULL,
				overflow ? "(overflow)" : e->error_type ? e->error_type : "",
				overflow || !e->error_code || !*e->error_code ? NULL : e->error_code,
				overflow ? "new groups of this service past groups_per_service"
				: e->message && *e->message ? e->message : NULL,
				first,
				overflow ? "t" : "f"};
	if (!(r = store_pg_run(sd, &ins, "insert group", params, NULL, NULL, 1)))
		return -1;
	if ((id = take_id(r)))
		return id;
	/* another replica inserted it after our SELECT: its insert waited for that one's commit */
	if (!(r = store_pg_run(sd, &find, "find group", fv, NULL, NULL, 1)))
		return -1;
	return (id = take_id(r)) ? id : store_pg_fail(sd, "group '%s' vanished", fp);
}

/* Under the service's lock (ERRQ_PG_LOCK_SERVICE, in the side transaction): how many more
 * groups it may open (groups_per_service), INT64_MAX without a limit; -1 on error.  Exact across
 * replicas: the count is a statement of its own after the lock, and whoever created groups of
 * the service committed them before letting the lock go.  A service found at its limit is
 * remembered (groups are never deleted): later new fingerprints of it cost no round trip. */
static int64_t service_room(struct store *s, struct store *sd, const char *service)
{
	static const struct store_pg_stmt lock = {
	    "errq_service_lock", "SELECT pg_advisory_xact_lock($1::integer, $2::integer)", 2, NULL};
	static const struct store_pg_stmt count = {
	    "errq_service_groups", "SELECT count(*) FROM groups WHERE service = $1::text AND NOT overflow", 1, NULL};
	struct store_pg *p = store_pg(s);
	if (!p->groups_per_service)
		return INT64_MAX;
	bool hit;
	struct nslot *sl = name_slot(p->w->services, STORE_SERVICE_CACHE, service, &hit);
	if (hit && sl->value >= (int64_t)p->groups_per_service)
		return 0;
	char k1[16], k2[16];
	errq_snprintf(k1, sizeof(k1), "%d", ERRQ_PG_LOCK_SERVICE);
	errq_snprintf(k2, sizeof(k2), "%d", (int32_t)(uint32_t)str_hash(service));
	const char *kv[] = {k1, k2}, *v[] = {service};
	PGresult *r = store_pg_run(sd, &lock, "lock the service's groups", kv, NULL, NULL, 1);
	if (!r)
		return -1;
	PQclear(r);
	if (!(r = store_pg_run(sd, &count, "count groups", v, NULL, NULL, 1)))
		return -1;
	int64_t n = take_id(r);
	if (name_put(s, sl, service, n))
		return -1;
	return n < (int64_t)p->groups_per_service ? (int64_t)p->groups_per_service - n : 0;
}

static int cmp_new_group(const void *a, const void *b, void *ctx)
{
	const struct store_event *ev = ctx;
	const struct store_event *x = &ev[*(const uint32_t *)a], *y = &ev[*(const uint32_t *)b];
	int c = strcmp(x->service ? x->service : "", y->service ? y->service : "");
	return c ? c : strcmp(x->fingerprint, y->fingerprint);
}

/* One distinct new fingerprint of a service's run in make_groups. */
struct newfp {
	size_t from, to;  /* its events: idx[from..to) */
	uint32_t first;   /* its first event in the batch (admission goes in batch order) */
	int64_t id;       /* found or made; 0: over the service's room (its overflow group) */
};

static int cmp_newfp_first(const void *a, const void *b)
{
	const struct newfp *x = *(struct newfp *const *)a, *y = *(struct newfp *const *)b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* The groups of one service's run idx[a..b) (sorted by fingerprint), in the side transaction:
 * those that exist are found; of the new ones, the first `room` in batch order are admitted
 * (as SQLite admits them) and inserted in fingerprint order; the rest go to the service's
 * overflow group.  Fills w->gids and w->overflowed.  0, or -1. */
static int make_service_groups(struct store *s, struct store *sd, const struct store_event *ev, const uint32_t *idx,
			       size_t a, size_t b, struct newfp *nf, struct newfp **byfirst)
{
	struct store_pg *p = store_pg(s);
	struct store_pg_write *w = p->w;
	const char *svc = ev[idx[a]].service ? ev[idx[a]].service : "";
	size_t n = 0, fresh = 0;
	for (size_t i = a; i < b;) { /* the distinct fingerprints, found or not */
		size_t j = i;
		uint32_t first = idx[i];
		while (j < b && strcmp(ev[idx[j]].fingerprint, ev[idx[i]].fingerprint) == 0)
			first = idx[j] < first ? idx[j] : first, j++;
		int64_t id = side_group(sd, ev[idx[i]].fingerprint, &ev[idx[i]], false, false);
		if (id < 0)
			return -1;
		nf[n] = (struct newfp){.from = i, .to = j, .first = first, .id = id};
		if (!id)
			byfirst[fresh++] = &nf[n];
		p->wst.group_lookups++;
		n++;
		i = j;
	}
	if (fresh) { /* admission, in batch order */
		int64_t room = service_room(s, sd, svc);
		if (room < 0)
			return -1;
		qsort(byfirst, fresh, sizeof(*byfirst), cmp_newfp_first);
		for (size_t f = 0; f < fresh; f++)
			byfirst[f]->id = (int64_t)f < room ? -2 : 0; /* -2: to insert */
	}
	bool over = false;
	for (size_t f = 0; f < n; f++) { /* inserts in fingerprint order */
		const struct store_event *e = &ev[idx[nf[f].from]];
		if (nf[f].id == -2 && (nf[f].id = side_group(sd, e->fingerprint, e, false, true)) < 0)
			return -1;
		if (nf[f].id > 0)
			group_cache_put(w, e->fingerprint, nf[f].id);
		over |= nf[f].id == 0;
	}
	int64_t ov = 0;
	if (over) { /* the service's overflow group, made once */
		char fp[STORE_OVERFLOW_FP_LEN + 1];
		store_overflow_fingerprint(svc, fp);
		if (!(ov = group_cached(w, fp)) && (ov = side_group(sd, fp, &ev[idx[a]], true, true)) > 0)
			group_cache_put(w, fp, ov);
		if (ov < 0)
			return -1;
	}
	for (size_t f = 0; f < n; f++)
		for (size_t m = nf[f].from; m < nf[f].to; m++) {
			w->overflowed[idx[m]] = nf[f].id == 0;
			w->gids[idx[m]] = nf[f].id ? nf[f].id : ov;
		}
	return 0;
}

/* Makes, in one side transaction, the groups of the events of idx[0..k) (fingerprints not in
 * the cache), service by service in name order: see make_service_groups.  0, or -1. */
static int make_groups(struct store *s, const struct store_event *ev, uint32_t *idx, size_t k)
{
	struct store *sd = side(s);
	if (!sd)
		return -1;
	struct newfp *nf = malloc(k * sizeof(*nf));
	struct newfp **byfirst = malloc(k * sizeof(*byfirst));
	if (!nf || !byfirst) {
		free(nf);
		free(byfirst);
		return store_pg_fail(s, "make groups: out of memory");
	}
	qsort_r(idx, k, sizeof(*idx), cmp_new_group, (void *)ev);
	int rc = store_pg_own_txn_begin(sd, "make groups");
	for (size_t a = 0; a < k && !rc;) {
		const char *svc = ev[idx[a]].service ? ev[idx[a]].service : "";
		size_t b = a;
		while (b < k && strcmp(ev[idx[b]].service ? ev[idx[b]].service : "", svc) == 0)
			b++;
		rc = make_service_groups(s, sd, ev, idx, a, b, nf, byfirst);
		a = b;
	}
	free(nf);
	free(byfirst);
	if (store_pg_own_txn_end(sd, rc, "make groups") < 0 || rc)
		return side_fail(s, sd);
	return 0;
}

/* w->gids and w->overflowed of ev[0..n): from the cache (filled for the batch by
 * prefetch_groups), the rest made by make_groups.  0, or -1. */
static int resolve_groups(struct store *s, const struct store_event *ev, size_t n)
{
	struct store_pg_write *w = store_pg(s)->w;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct store_event *e = &ev[i];
		if (!e->fingerprint || !e->event_id)
			return store_pg_fail(s, "event without %s", e->fingerprint ? "an id" : "a fingerprint");
		size_t len = strlen(e->fingerprint);
		if (!len || len > STORE_FINGERPRINT_MAX)
			return store_pg_fail(s, "fingerprint of %zu bytes, not 1 to %d", len, STORE_FINGERPRINT_MAX);
		w->overflowed[i] = false;
		if (!(w->gids[i] = group_cached(w, e->fingerprint)))
			w->order[k++] = (uint32_t)i; /* scratch: the order is rebuilt after */
	}
	return k ? make_groups(s, ev, w->order, k) : 0;
}

/* ---- the transaction's aggregates ---- */

static int write_pending(struct store *s);

static int set_owned(struct store *s, char **dst, const char *v)
{
	if (!v || !*v || (*dst && strcmp(*dst, v) == 0))
		return 0;
	char *d = strdup(v);
	if (!d)
		return store_pg_fail(s, "out of memory");
	free(*dst);
	*dst = d;
	return 0;
}

static uint32_t mix(uint64_t h)
{
	return (uint32_t)((h * 0x9E3779B97F4A7C15ULL) >> 32) & (TXN_SLOTS - 1);
}

/* Counts e (stored, or counted only when dropped) in its group gid, environment envid. */
static int agg_add(struct store *s, int64_t gid, int64_t envid, const struct store_event *e, bool dropped)
{
	struct store_pg_write *w = store_pg(s)->w;
	/* the policy at the tables' limit: write what is pending now, in the transaction */
	if ((w->ng >= STORE_PG_TXN_AGG_MAX || w->nm >= STORE_PG_TXN_AGG_MAX || w->nsv >= STORE_PG_TXN_AGG_MAX) &&
	    write_pending(s))
		return -1;
	int64_t minute = (int64_t)(e->received_ns / NS_PER_MINUTE);
	uint32_t i = mix((uint64_t)gid);
	while (w->g[i].gid && w->g[i].gid != gid)
		i = (i + 1) & (TXN_SLOTS - 1);
	struct pend_group *g = &w->g[i];
	if (!g->gid) {
		g->gid = gid;
		g->first = e->received_ns;
		w->g_used[w->ng++] = i;
	}
	g->total++;
	g->handled += e->handled;
	g->dropped += dropped;
	if (e->received_ns < g->first)
		g->first = e->received_ns;
	if (e->received_ns >= g->last) { /* the newest event's values; older ones fill gaps */
		g->last = e->received_ns;
		if (set_owned(s, &g->env, e->environment) || set_owned(s, &g->code, e->error_code) ||
		    set_owned(s, &g->msg, e->message))
			return -1;
	} else if ((!g->env && set_owned(s, &g->env, e->environment)) ||
		   (!g->code && set_owned(s, &g->code, e->error_code)) || (!g->msg && set_owned(s, &g->msg, e->message))) {
		return -1;
	}
	i = mix((uint64_t)gid ^ ((uint64_t)minute << 20) ^ ((uint64_t)envid << 44));
	while (w->m[i].gid && !(w->m[i].gid == gid && w->m[i].minute == minute && w->m[i].env == envid))
		i = (i + 1) & (TXN_SLOTS - 1);
	struct pend_minute *m = &w->m[i];
	if (!m->gid) {
		*m = (struct pend_minute){.gid = gid, .minute = minute, .env = envid};
		w->m_used[w->nm++] = i;
	}
	m->count++;
	const char *service = e->service ? e->service : "";
	i = mix(str_hash(service) ^ (uint64_t)minute);
	while (w->sv[i].service && !(w->sv[i].minute == minute && strcmp(w->sv[i].service, service) == 0))
		i = (i + 1) & (TXN_SLOTS - 1);
	struct pend_service *sv = &w->sv[i];
	if (!sv->service) {
		if (!(sv->service = strdup(service)))
			return store_pg_fail(s, "out of memory");
		sv->minute = minute;
		w->sv_used[w->nsv++] = i;
	}
	sv->count++;
	sv->dropped += dropped;
	return 0;
}

/* Sort orders of the pending rows (by key: the order every replica locks them in). */
static int cmp_group(const void *a, const void *b, void *ctx)
{
	const struct store_pg_write *w = ctx;
	int64_t x = w->g[*(const uint32_t *)a].gid, y = w->g[*(const uint32_t *)b].gid;
	return (x > y) - (x < y);
}
static int cmp_minute(const void *a, const void *b, void *ctx)
{
	const struct store_pg_write *w = ctx;
	const struct pend_minute *x = &w->m[*(const uint32_t *)a], *y = &w->m[*(const uint32_t *)b];
	if (x->gid != y->gid)
		return (x->gid > y->gid) - (x->gid < y->gid);
	if (x->minute != y->minute)
		return (x->minute > y->minute) - (x->minute < y->minute);
	return (x->env > y->env) - (x->env < y->env);
}
static int cmp_service(const void *a, const void *b, void *ctx)
{
	const struct store_pg_write *w = ctx;
	const struct pend_service *x = &w->sv[*(const uint32_t *)a], *y = &w->sv[*(const uint32_t *)b];
	int c = strcmp(x->service, y->service);
	return c ? c : (x->minute > y->minute) - (x->minute < y->minute);
}

/* Runs st with n finished arrays as its binary parameters.  0 or -1. */
static int run_arrays(struct store *s, const struct store_pg_stmt *st, const char *what, struct store_pg_array *a,
		      int n)
{
	const char *vals[16];
	int lens[16], fmts[16];
	for (int i = 0; i < n; i++) {
		if (!(vals[i] = store_pg_array_finish(&a[i], &lens[i])))
			return store_pg_fail(s, "%s: parameters over %u bytes", what, STORE_PG_ARRAY_MAX_BYTES);
		fmts[i] = 1;
	}
	PGresult *r = store_pg_run(s, st, what, vals, lens, fmts, 0);
	PQclear(r);
	return r ? 0 : -1;
}

static void arrays_free(struct store_pg_array *a, int n)
{
	for (int i = 0; i < n; i++)
		store_pg_array_free(&a[i]);
}

static int write_groups(struct store *s)
{
	static const struct store_pg_stmt st = {
	    "errq_agg_groups",
	    "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],"
	    " $6::bigint[], $7::text[], $8::text[], $9::text[]) AS v(id, total, handled, dropped, first_ns, last_ns, env,"
	    " code, msg)),"
	    " l AS MATERIALIZED (SELECT id FROM groups WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE)"
	    " UPDATE groups g SET total = g.total + v.total, handled = g.handled + v.handled,"
	    " dropped = g.dropped + v.dropped, stored = g.stored + v.total - v.dropped,"
	    " first_seen = least(g.first_seen, v.first_ns), last_seen = greatest(g.last_seen, v.last_ns),"
	    " last_minute = greatest(g.last_minute, v.last_ns / 60000000000),"
	    " environment = coalesce(v.env, g.environment), error_code = coalesce(v.code, g.error_code),"
	    " message = coalesce(v.msg, g.message),"
	    /* a resolved group that sees a new event is unresolved again, and a regression */
	    " regression = g.regression OR g.status = 'resolved',"
	    " status = CASE WHEN g.status = 'resolved' THEN 'unresolved' ELSE g.status END"
	    " FROM v JOIN l ON l.id = v.id WHERE g.id = v.id",
	    9, NULL};
	struct store_pg_write *w = store_pg(s)->w;
	struct store_pg_array a[9];
	static const Oid types[9] = {STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_INT8OID,
				     STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_TEXTOID, STORE_PG_TEXTOID,
				     STORE_PG_TEXTOID};
	for (int i = 0; i < 9; i++)
		store_pg_array_init(&a[i], types[i]);
	qsort_r(w->g_used, w->ng, sizeof(uint32_t), cmp_group, w);
	for (uint32_t k = 0; k < w->ng; k++) {
		const struct pend_group *g = &w->g[w->g_used[k]];
		store_pg_array_i64(&a[0], g->gid);
		store_pg_array_i64(&a[1], (int64_t)g->total);
		store_pg_array_i64(&a[2], (int64_t)g->handled);
		store_pg_array_i64(&a[3], (int64_t)g->dropped);
		store_pg_array_i64(&a[4], (int64_t)g->first);
		store_pg_array_i64(&a[5], (int64_t)g->last);
		store_pg_array_text(&a[6], g->env);
		store_pg_array_text(&a[7], g->code);
		store_pg_array_text(&a[8], g->msg);
	}
	int rc = run_arrays(s, &st, "update groups", a, 9);
	arrays_free(a, 9);
	return rc;
}

static int write_minutes(struct store *s)
{
	static const struct store_pg_stmt st = {
	    "errq_agg_minutes",
	    "INSERT INTO group_minutes (group_id, minute, env_id, count)"
	    " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])"
	    " ON CONFLICT (group_id, minute, env_id) DO UPDATE SET count = group_minutes.count + excluded.count",
	    4, NULL};
	struct store_pg_write *w = store_pg(s)->w;
	struct store_pg_array a[4];
	for (int i = 0; i < 4; i++)
		store_pg_array_init(&a[i], STORE_PG_INT8OID);
	qsort_r(w->m_used, w->nm, sizeof(uint32_t), cmp_minute, w);
	for (uint32_t k = 0; k < w->nm; k++) {
		const struct pend_minute *m = &w->m[w->m_used[k]];
		store_pg_array_i64(&a[0], m->gid);
		store_pg_array_i64(&a[1], m->minute);
		store_pg_array_i64(&a[2], m->env);
		store_pg_array_i64(&a[3], (int64_t)m->count);
	}
	int rc = run_arrays(s, &st, "update minute counts", a, 4);
	arrays_free(a, 4);
	return rc;
}

static int write_services(struct store *s)
{
	static const struct store_pg_stmt st = {
	    "errq_agg_services",
	    "INSERT INTO service_minutes (service, minute, count, dropped)"
	    " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])"
	    " ON CONFLICT (service, minute) DO UPDATE SET count = service_minutes.count + excluded.count,"
	    " dropped = service_minutes.dropped + excluded.dropped",
	    4, NULL};
	struct store_pg_write *w = store_pg(s)->w;
	struct store_pg_array a[4];
	store_pg_array_init(&a[0], STORE_PG_TEXTOID);
	for (int i = 1; i < 4; i++)
		store_pg_array_init(&a[i], STORE_PG_INT8OID);
	qsort_r(w->sv_used, w->nsv, sizeof(uint32_t), cmp_service, w);
	for (uint32_t k = 0; k < w->nsv; k++) {
		const struct pend_service *sv = &w->sv[w->sv_used[k]];
		store_pg_array_bytes(&a[0], sv->service, strlen(sv->service)); /* NOT NULL: "" stays "" */
		store_pg_array_i64(&a[1], sv->minute);
		store_pg_array_i64(&a[2], (int64_t)sv->count);
		store_pg_array_i64(&a[3], (int64_t)sv->dropped);
	}
	int rc = run_arrays(s, &st, "update service minute counts", a, 4);
	arrays_free(a, 4);
	return rc;
}

/* Writes the pending aggregates in the open transaction and forgets them. */
static int write_pending(struct store *s)
{
	struct store_pg_write *w = store_pg(s)->w;
	if ((w->ng && write_groups(s)) || (w->nm && write_minutes(s)) || (w->nsv && write_services(s)))
		return -1;
	pend_clear(w);
	return 0;
}

int store_pg__write_flush(struct store *s)
{
	return write_pending(s);
}

int store_pg__write_notify(struct store *s)
{
	const struct store_pg_write *w = store_pg(s)->w;
	return w->txn_rows ? store_pg__tail_notify(s, w->txn_lo, w->txn_hi, w->txn_rows) : 0;
}

/* ---- events ---- */

static int cmp_event_id(const void *a, const void *b, void *ctx)
{
	const struct store_event *ev = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = memcmp(ev[x].event_id, ev[y].event_id, 16);
	return c ? c : (x > y) - (x < y);
}

/* The first index (in batch order) whose event id is id, or -1. */
static int find_event(const struct store_event *ev, const uint32_t *order, size_t n, const uint8_t *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (memcmp(ev[order[mid]].event_id, id, 16) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && memcmp(ev[order[lo]].event_id, id, 16) == 0 ? (int)order[lo] : -1;
}

static size_t event_bytes(const struct store_event *e)
{
	size_t n = 16 * 4 + 16 + 8 * 5 + 1 + (e->extra ? e->extra_len : 0);
	const char *str[] = {e->service, e->environment, e->release, e->host, e->task,
			     e->error_type, e->error_code, e->message};
	for (size_t i = 0; i < sizeof(str) / sizeof(str[0]); i++)
		n += 4 + (str[i] ? strlen(str[i]) : 0);
	return n;
}

/* Inserts ev[0..n) (n <= STORE_PG_BATCH_MAX) in one statement and counts the stored ones. */
static int insert_chunk(struct store *s, const struct store_event *ev, size_t n, int8_t *result)
{
	static const struct store_pg_stmt st = {
	    "errq_events_insert",
	    "INSERT INTO events (event_id, group_id, time_ns, received_ns, service, environment, release, host, task,"
	    " error_type, error_code, message, attempt, handled, truncated, extra)"
	    " SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],"
	    " $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::boolean[],"
	    " $15::bigint[], $16::bytea[])"
	    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id, id",
	    16, NULL};
	static const Oid types[16] = {STORE_PG_BYTEAOID, STORE_PG_INT8OID, STORE_PG_INT8OID, STORE_PG_INT8OID,
				      STORE_PG_TEXTOID,  STORE_PG_TEXTOID, STORE_PG_TEXTOID, STORE_PG_TEXTOID,
				      STORE_PG_TEXTOID,  STORE_PG_TEXTOID, STORE_PG_TEXTOID, STORE_PG_TEXTOID,
				      STORE_PG_INT8OID,  STORE_PG_BOOLOID, STORE_PG_INT8OID, STORE_PG_BYTEAOID};
	struct store_pg *p = store_pg(s);
	struct store_pg_write *w = p->w;
	if (prefetch_groups(s, ev, n) || resolve_groups(s, ev, n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		result[i] = 0;
		if ((w->envids[i] = env_id(s, ev[i].environment)) < 0)
			return -1;
		w->order[i] = (uint32_t)i;
	}
	struct store_pg_array a[16];
	for (int i = 0; i < 16; i++)
		store_pg_array_init(&a[i], types[i]);
	for (size_t i = 0; i < n; i++) {
		const struct store_event *e = &ev[i];
		const char *svc = e->service ? e->service : "", *type = e->error_type ? e->error_type : "";
		store_pg_array_bytes(&a[0], e->event_id, 16);
		store_pg_array_i64(&a[1], w->gids[i]);
		store_pg_array_i64(&a[2], (int64_t)e->time_ns);
		store_pg_array_i64(&a[3], (int64_t)e->received_ns);
		store_pg_array_bytes(&a[4], svc, strlen(svc)); /* NOT NULL columns: "" stays "" */
		store_pg_array_text(&a[5], e->environment);
		store_pg_array_text(&a[6], e->release);
		store_pg_array_text(&a[7], e->host);
		store_pg_array_text(&a[8], e->task);
		store_pg_array_bytes(&a[9], type, strlen(type));
		store_pg_array_text(&a[10], e->error_code);
		store_pg_array_text(&a[11], e->message);
		store_pg_array_i64(&a[12], e->attempt);
		store_pg_array_bool(&a[13], e->handled);
		store_pg_array_i64(&a[14], e->truncated);
		store_pg_array_bytes(&a[15], e->extra && e->extra_len ? e->extra : NULL, e->extra_len);
	}
	const char *vals[16];
	int lens[16], fmts[16];
	PGresult *r = NULL;
	bool built = true;
	for (int i = 0; i < 16 && built; i++) {
		built = (vals[i] = store_pg_array_finish(&a[i], &lens[i])) != NULL;
		fmts[i] = 1;
	}
	if (built)
		r = store_pg_run(s, &st, "insert events", vals, lens, fmts, 1);
	else
		store_pg_fail(s, "insert events: a batch over %u bytes", STORE_PG_ARRAY_MAX_BYTES);
	arrays_free(a, 16);
	if (!r)
		return -1;
	qsort_r(w->order, n, sizeof(uint32_t), cmp_event_id, (void *)ev);
	int rows = PQntuples(r), rc = 0;
	for (int k = 0; k < rows && !rc; k++) {
		size_t len;
		const uint8_t *id = store_pg_col_bytes(r, k, 0, &len);
		int i = len == 16 ? find_event(ev, w->order, n, id) : -1;
		if (i < 0 || result[i]) {
			rc = store_pg_fail(s, "insert events: the server returned an id not sent");
			break;
		}
		result[i] = 1;
		int64_t rowid = store_pg_col_i64(r, k, 1);
		if (!w->txn_rows || rowid < w->txn_lo)
			w->txn_lo = rowid;
		if (!w->txn_rows || rowid > w->txn_hi)
			w->txn_hi = rowid;
		w->txn_rows++;
		w->txn_overflow += w->overflowed[i];
		rc = agg_add(s, w->gids[i], w->envids[i], &ev[i], false);
	}
	PQclear(r);
	return rc;
}

int store_pg_txn_add_events(struct store *s, const struct store_event *ev, size_t n, int8_t *result)
{
	struct store_pg *p = store_pg(s);
	if (!p->w)
		return store_pg_fail(s, "add events on a read-only handle");
	if (!p->in_txn)
		return store_pg_fail(s, "add events outside a transaction");
	for (size_t i = 0; i < n; i++)
		if (!ev[i].event_id)
			return store_pg_fail(s, "event %zu of the batch has no id", i);
	for (size_t at = 0; at < n;) {
		/* a statement takes STORE_PG_BATCH_MAX events or about STORE_PG_BATCH_BYTES */
		size_t k = 0, bytes = 0;
		while (at + k < n && k < STORE_PG_BATCH_MAX) {
			size_t b = event_bytes(&ev[at + k]);
			if (k && bytes + b > STORE_PG_BATCH_BYTES)
				break;
			bytes += b;
			k++;
		}
		if (insert_chunk(s, ev + at, k, result + at))
			return -1;
		at += k;
	}
	return 0;
}

int store_pg_txn_add_event(struct store *s, const struct store_event *e)
{
	int8_t r = 0;
	return store_pg_txn_add_events(s, e, 1, &r) ? -1 : r;
}

int store_pg_txn_count_event(struct store *s, const struct store_event *e)
{
	static const struct store_pg_stmt stored = {"errq_event_stored",
						    "SELECT 1 FROM events WHERE event_id = $1::bytea", 1, NULL};
	struct store_pg *p = store_pg(s);
	if (!p->w)
		return store_pg_fail(s, "count event on a read-only handle");
	if (!p->in_txn)
		return store_pg_fail(s, "count event outside a transaction");
	if (!e->event_id)
		return store_pg_fail(s, "event without an id");
	/* a resend of an event stored before (after a reconnect) is a duplicate, quota or not */
	const char *v[] = {(const char *)e->event_id};
	int len[] = {16}, fmt[] = {1};
	PGresult *r = store_pg_run(s, &stored, "find event", v, len, fmt, 1);
	if (!r)
		return -1;
	bool dup = PQntuples(r) > 0;
	PQclear(r);
	if (dup)
		return 0;
	int64_t envid;
	if (prefetch_groups(s, e, 1) || resolve_groups(s, e, 1) || (envid = env_id(s, e->environment)) < 0)
		return -1;
	p->w->txn_overflow += p->w->overflowed[0];
	return agg_add(s, p->w->gids[0], envid, e, true) ? -1 : 1;
}

void store_pg_get_write_stats(struct store *s, struct store_write_stats *st)
{
	*st = store_pg(s)->wst;
}
