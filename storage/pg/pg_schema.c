/* pg_schema.c: the PostgreSQL schema — versioned migrations under an advisory lock, and the
 * day partitions of events.
 *
 * Migrations.  errq_schema holds one row per version applied; each migration runs in one
 * transaction (PostgreSQL's DDL is transactional) holding pg_advisory_xact_lock
 * (ERRQ_PG_LOCK_MIGRATE), and reads the version after taking the lock: replicas starting
 * together wait for the first and find the work done.  A database newer than this errqd
 * knows is refused, as on SQLite.
 *
 * Partitions.  events is PARTITION BY RANGE (event_id).  Event ids are UUIDv7: their first 48
 * bits are the Unix time in ms (docs/protocol.md), so one UTC day's ids are the range
 * [day's first ms, next day's first ms) of the first 6 bytes, zeros after: events_YYYYMMDD.
 * Ids outside every day partition (a client's clock far off) land in events_default.  The
 * primary key (event_id) contains the partition key, so it is one unique index over all
 * partitions: a duplicate is found whichever day it falls in.  Creating a day partition moves
 * the rows events_default holds in its range into it, in the same transaction (PostgreSQL
 * refuses to add a partition whose rows the default one holds). */
#include <stdio.h>
#include <string.h>

#include "pg_int.h"
#include "errq_str.h"
#include "errq_banned.h"

#define MS_PER_DAY 86400000LL

static const char *const migrations[] = {
    /* 1: events (partitioned), groups, per-minute and per-hour counts; the alerting tables
     * follow (store_pg_alerts_schema).  Columns mirror SQLite's (storage/store_migrate.c)
     * except what SQLite needs for its deferred aggregates and group chains (agg_through,
     * last_event, prev_in_group, meta's aggregated_through): here a group's events are found
     * by the index (group_id, id), and aggregates are written with their events. */
    "CREATE TABLE environments ("
    "  id bigserial PRIMARY KEY,"
    "  name text NOT NULL UNIQUE);"
    "CREATE TABLE groups ("
    "  id bigserial PRIMARY KEY,"
    "  fingerprint text NOT NULL UNIQUE,"
    "  grouping_version integer NOT NULL,"
    "  service text NOT NULL,"
    "  environment text,"
    "  error_type text NOT NULL,"
    "  error_code text,"
    "  message text,"
    "  first_seen bigint NOT NULL,"
    "  last_seen bigint NOT NULL,"
    "  last_minute bigint NOT NULL,"
    "  total bigint NOT NULL DEFAULT 0,"
    "  handled bigint NOT NULL DEFAULT 0,"
    "  dropped bigint NOT NULL DEFAULT 0,"
    "  stored bigint NOT NULL DEFAULT 0,"
    "  status text NOT NULL DEFAULT 'unresolved',"
    "  regression boolean NOT NULL DEFAULT false,"
    "  resolved_at bigint NOT NULL DEFAULT 0,"
    "  overflow boolean NOT NULL DEFAULT false);"
    "CREATE INDEX groups_first_seen ON groups (first_seen);"
    "CREATE INDEX groups_last_minute ON groups (last_minute);"
    "CREATE INDEX groups_service ON groups (service, last_minute);"
    "CREATE SEQUENCE events_id_seq;" /* the keyset cursor (the API's rowid) */
    "CREATE TABLE events ("
    "  id bigint NOT NULL DEFAULT nextval('events_id_seq'),"
    "  event_id bytea NOT NULL,"
    "  group_id bigint NOT NULL,"
    "  time_ns bigint NOT NULL,"
    "  received_ns bigint NOT NULL,"
    "  service text NOT NULL,"
    "  environment text, release text, host text, task text,"
    "  error_type text NOT NULL, error_code text, message text,"
    "  attempt bigint NOT NULL,"
    "  handled boolean NOT NULL,"
    "  truncated bigint NOT NULL,"
    "  extra bytea,"
    "  PRIMARY KEY (event_id)"
    ") PARTITION BY RANGE (event_id);"
    "ALTER SEQUENCE events_id_seq OWNED BY events.id;"
    "CREATE INDEX events_id ON events (id);"
    "CREATE INDEX events_group ON events (group_id, id);"
    "CREATE TABLE events_default PARTITION OF events DEFAULT;"
    "CREATE INDEX events_default_received ON events_default (received_ns);" /* its retention */
    "CREATE TABLE group_minutes ("
    "  group_id bigint NOT NULL,"
    "  minute bigint NOT NULL," /* received_ns / 60e9 */
    "  env_id bigint NOT NULL,"
    "  count bigint NOT NULL,"
    "  PRIMARY KEY (group_id, minute, env_id));"
    "CREATE TABLE group_hours ("
    "  group_id bigint NOT NULL,"
    "  hour bigint NOT NULL,"
    "  env_id bigint NOT NULL,"
    "  count bigint NOT NULL,"
    "  PRIMARY KEY (group_id, hour, env_id));"
    "CREATE TABLE service_minutes ("
    "  service text NOT NULL,"
    "  minute bigint NOT NULL,"
    "  count bigint NOT NULL,"
    "  dropped bigint NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (service, minute));"
    "CREATE TABLE service_hours ("
    "  service text NOT NULL,"
    "  hour bigint NOT NULL,"
    "  count bigint NOT NULL,"
    "  dropped bigint NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (service, hour));"
    "CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);",
    /* 2: several collectors on one database (issue 17, pg_fleet.c): the fleet's one row (the
     * leader's epoch, its fencing token; the silences' generation) and the rule engine's
     * increments, which every collector writes with its events and the leader takes */
    "CREATE TABLE errq_leader (id integer PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL,"
    "  leader text NOT NULL, since_ns bigint NOT NULL, silence_gen bigint NOT NULL);"
    "INSERT INTO errq_leader VALUES (1, 0, '', 0, 0);"
    "CREATE TABLE rule_inputs ("
    "  id bigserial PRIMARY KEY,"
    "  kind smallint NOT NULL,"
    "  rule text NOT NULL,"
    "  key text NOT NULL,"
    "  received_s bigint NOT NULL,"
    "  failures bigint NOT NULL,"
    "  ok bigint NOT NULL,"
    "  failed bigint NOT NULL,"
    "  window_end_ns bigint NOT NULL,"
    "  service text,"
    "  task text,"
    "  sample_event bytea);",
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(N_MIGRATIONS == STORE_PG_SCHEMA_VERSION, "one migration per schema version");

/* Ends a transaction of the migrator's: rc 0 commits; else rolls back, keeping the error. */
static int end_txn(struct store *s, int rc, const char *what)
{
	return store_pg_own_txn_end(s, rc ? -1 : 0, what) < 0 ? -1 : 0;
}

static int migrate_step(struct store *s, bool *done)
{
	static const struct store_pg_stmt lock = {"errq_schema_lock", "SELECT pg_advisory_xact_lock($1::bigint)", 1,
						  NULL};
	static const struct store_pg_stmt version = {
	    "errq_schema_version", "SELECT coalesce(max(version), 0)::bigint FROM errq_schema", 0, NULL};
	static const struct store_pg_stmt bump = {"errq_schema_bump",
						  "INSERT INTO errq_schema (version, applied_at) VALUES ($1::integer, now())",
						  1, NULL};
	char key[24], next[16];
	const char *kv[] = {key};
	PGresult *r;
	*done = false;
	if (store_pg_own_txn_begin(s, "migration"))
		return -1;
	/* a migration may wait for another replica's: not the writer's 2 s lock timeout */
	errq_snprintf(key, sizeof(key), "%lld", (long long)ERRQ_PG_LOCK_MIGRATE);
	if (store_pg_exec(s, "SET LOCAL lock_timeout = 0", "migration") ||
	    !(r = store_pg_run(s, &lock, "take the migration lock", kv, NULL, NULL, 0)))
		return end_txn(s, -1, "migration");
	PQclear(r);
	if (store_pg_exec(s,
			  "CREATE TABLE IF NOT EXISTS errq_schema (version integer PRIMARY KEY,"
			  " applied_at timestamptz NOT NULL)",
			  "create errq_schema") ||
	    !(r = store_pg_run(s, &version, "read schema version", NULL, NULL, NULL, 1)))
		return end_txn(s, -1, "migration");
	int64_t v = PQntuples(r) ? store_pg_col_i64(r, 0, 0) : 0;
	PQclear(r);
	if (v > STORE_PG_SCHEMA_VERSION) {
		store_pg_fail(s,
			      "database schema version %lld is newer than this errqd knows (%d): refusing to open it; "
			      "run a newer errqd",
			      (long long)v, STORE_PG_SCHEMA_VERSION);
		return end_txn(s, -1, "migration");
	}
	if (v == STORE_PG_SCHEMA_VERSION) {
		*done = true;
		return end_txn(s, 0, "migration");
	}
	const char *nv[] = {next};
	errq_snprintf(next, sizeof(next), "%lld", (long long)v + 1);
	if (store_pg_exec(s, migrations[v], "migrate schema"))
		return end_txn(s, -1, "migration");
	if (v == 0 && store_pg_exec(s, store_pg_alerts_schema(), "migrate schema (alerting tables)"))
		return end_txn(s, -1, "migration");
	if (!(r = store_pg_run(s, &bump, "bump schema version", nv, NULL, NULL, 0)))
		return end_txn(s, -1, "migration");
	PQclear(r);
	return end_txn(s, 0, "migration");
}

int store_pg_migrate(struct store *s, uint64_t now_ns)
{
	bool done = false;
	for (int i = 0; i <= N_MIGRATIONS && !done; i++)
		if (migrate_step(s, &done))
			return -1;
	if (!done)
		return store_pg_fail(s, "migration did not reach version %d", STORE_PG_SCHEMA_VERSION);
	return store_pg_ensure_partitions(s, now_ns, STORE_PG_PARTITIONS_AHEAD, NULL);
}

/* y-m-d of a day since the epoch (proleptic Gregorian: H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Creates day's partition unless it exists, in a transaction of its own.  1 created, 0 there
 * already, -1 on error. */
static int create_partition(struct store *s, int64_t day)
{
	static const struct store_pg_stmt lock = {"errq_part_lock", "SELECT pg_advisory_xact_lock($1::bigint)", 1,
						  NULL};
	static const struct store_pg_stmt exists = {"errq_part_exists", "SELECT to_regclass($1::text) IS NOT NULL", 1,
						    NULL};
	int y, mo, d;
	civil_from_days(day, &y, &mo, &d);
	if (y < 1970 || y > 9999)
		return store_pg_fail(s, "day %lld is outside the partitions' years", (long long)day);
	char name[32], key[24], sql[1024];
	errq_snprintf(name, sizeof(name), "events_%04d%02d%02d", y, mo, d);
	errq_snprintf(key, sizeof(key), "%lld", (long long)ERRQ_PG_LOCK_PARTITION);
	unsigned long long lo = (unsigned long long)(day * MS_PER_DAY), hi = lo + MS_PER_DAY;
	const char *kv[] = {key}, *nv[] = {name};
	PGresult *r;
	if (store_pg_own_txn_begin(s, "partition"))
		return -1;
	/* one replica at a time; the one after finds it made.  Waiting for another replica's
	 * move out of events_default is bounded by statement_timeout, not the writer's 2 s. */
	if (store_pg_exec(s, "SET LOCAL lock_timeout = 0", "partition") ||
	    !(r = store_pg_run(s, &lock, "take the partition lock", kv, NULL, NULL, 0)))
		return store_pg_own_txn_end(s, -1, "partition");
	PQclear(r);
	if (!(r = store_pg_run(s, &exists, "look for a partition", nv, NULL, NULL, 0)))
		return store_pg_own_txn_end(s, -1, "partition");
	bool there = PQntuples(r) && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (there)
		return store_pg_own_txn_end(s, 0, "partition");
	/* Made apart, filled from events_default, then attached: the CHECK lets ATTACH skip
	 * scanning the new table; events_default is locked against inserts meanwhile, so ATTACH's
	 * check of it (no row left in the range) cannot fail.  Integers only are formatted
	 * into the SQL (the day and the bounds). */
	errq_snprintf(sql, sizeof(sql),
		      "LOCK TABLE events_default IN SHARE ROW EXCLUSIVE MODE;"
		      "CREATE TABLE events_%04d%02d%02d (LIKE events INCLUDING DEFAULTS,"
		      " CONSTRAINT events_%04d%02d%02d_range CHECK (event_id >= '\\x%012llx00000000000000000000'::bytea"
		      " AND event_id < '\\x%012llx00000000000000000000'::bytea));"
		      "WITH moved AS (DELETE FROM events_default WHERE event_id >= '\\x%012llx00000000000000000000'::bytea"
		      " AND event_id < '\\x%012llx00000000000000000000'::bytea RETURNING *)"
		      " INSERT INTO events_%04d%02d%02d SELECT * FROM moved;"
		      "ALTER TABLE events ATTACH PARTITION events_%04d%02d%02d FOR VALUES"
		      " FROM ('\\x%012llx00000000000000000000') TO ('\\x%012llx00000000000000000000');"
		      "ALTER TABLE events_%04d%02d%02d DROP CONSTRAINT events_%04d%02d%02d_range",
		      y, mo, d, y, mo, d, lo, hi, lo, hi, y, mo, d, y, mo, d, lo, hi, y, mo, d, y, mo, d);
	if (store_pg_exec(s, sql, "create a day partition"))
		return store_pg_own_txn_end(s, -1, "partition");
	return store_pg_own_txn_end(s, 1, "partition");
}

int store_pg_ensure_partitions(struct store *s, uint64_t now_ns, uint32_t ahead, uint32_t *created)
{
	int64_t today = (int64_t)(now_ns / 1000000ULL) / MS_PER_DAY;
	if (created)
		*created = 0;
	/* yesterday too: a collector started just after midnight still takes yesterday's
	 * late events */
	for (int64_t day = today - 1; day <= today + (int64_t)ahead; day++) {
		int rc = create_partition(s, day);
		if (rc < 0)
			return -1;
		if (created)
			*created += (uint32_t)rc;
	}
	return 0;
}
