/* store_migrate.c: the schema, created and migrated by PRAGMA user_version.
 *
 * Each migration runs inside one transaction with the version bump, so a crash leaves the
 * database at the old or the new version, never between.  A database whose version is newer
 * than STORE_SCHEMA_VERSION was written by a newer errqd and is refused (a downgrade must not
 * touch it).  auto_vacuum=INCREMENTAL must be chosen before the file has its first page (even
 * switching to WAL writes one), so store_open sets it first thing, before journal_mode. */
#include <stdio.h>

#include "store_int.h"
#include "errq_str.h"
#include "errq_banned.h"

static const char *const migrations[] = {
    /* 1: events, groups, per-minute and per-hour counts */
    "CREATE TABLE environments ("          /* names of environments; id 0 = none given */
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE groups ("
    "  id INTEGER PRIMARY KEY,"
    "  fingerprint TEXT NOT NULL UNIQUE,"
    "  grouping_version INTEGER NOT NULL,"
    "  service TEXT NOT NULL,"
    "  environment TEXT,"                  /* the last one seen */
    "  error_type TEXT NOT NULL,"
    "  error_code TEXT,"
    "  message TEXT,"                      /* a sample: the last one seen */
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  total INTEGER NOT NULL DEFAULT 0,"
    "  handled INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL DEFAULT 'unresolved',"
    "  regression INTEGER NOT NULL DEFAULT 0,"
    "  resolved_at INTEGER NOT NULL DEFAULT 0,"
    "  overflow INTEGER NOT NULL DEFAULT 0,"   /* the service's overflow group */
    "  stored INTEGER NOT NULL DEFAULT 0,"     /* its events still stored (the per-group cap) */
    "  last_event INTEGER NOT NULL DEFAULT 0);"/* rowid of the newest event: the chain's head */
    "CREATE INDEX groups_last_seen ON groups(last_seen);"
    "CREATE INDEX groups_first_seen ON groups(first_seen);"
    "CREATE INDEX groups_service ON groups(service, last_seen);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"            /* insertion order = receive order */
    "  event_id BLOB NOT NULL,"
    "  group_id INTEGER NOT NULL,"
    "  time_ns INTEGER NOT NULL,"
    "  received_ns INTEGER NOT NULL,"
    "  service TEXT NOT NULL,"
    "  environment TEXT, release TEXT, host TEXT, task TEXT,"
    "  error_type TEXT NOT NULL, error_code TEXT, message TEXT,"
    "  attempt INTEGER NOT NULL,"
    "  handled INTEGER NOT NULL,"
    "  truncated INTEGER NOT NULL,"
    "  prev_in_group INTEGER NOT NULL,"    /* rowid of the group's previous event, 0 = none */
    "  extra BLOB);"
    "CREATE UNIQUE INDEX events_event_id ON events(event_id);"
    "CREATE TABLE group_minutes ("
    "  group_id INTEGER NOT NULL,"
    "  minute INTEGER NOT NULL,"           /* received_ns / 60e9 */
    "  env_id INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  PRIMARY KEY (group_id, minute, env_id)) WITHOUT ROWID;"
    "CREATE TABLE group_hours ("           /* minute counts older than retention, summed */
    "  group_id INTEGER NOT NULL,"
    "  hour INTEGER NOT NULL,"
    "  env_id INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  PRIMARY KEY (group_id, hour, env_id)) WITHOUT ROWID;"
    "CREATE TABLE service_minutes ("
    "  service TEXT NOT NULL,"
    "  minute INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  PRIMARY KEY (service, minute)) WITHOUT ROWID;"
    "CREATE TABLE service_hours ("
    "  service TEXT NOT NULL,"
    "  hour INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  PRIMARY KEY (service, hour)) WITHOUT ROWID;",

    /* 2: alerting (storage_alerts.h).  Times are ns since the epoch, 0 = none; uint64 values
     * (def_hash) are stored as their int64 bit pattern; ids of alerts are 16-byte blobs. */
    "CREATE TABLE circuits ("              /* the saved state of each (rule, key) */
    "  id INTEGER PRIMARY KEY,"
    "  rule TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  def_hash INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"            /* 0 closed, 1 open, 2 half_open */
    "  since_ns INTEGER NOT NULL,"
    "  failures INTEGER NOT NULL,"         /* in the window, at updated_ns */
    "  next_ns INTEGER NOT NULL,"          /* the next transition, 0 = none */
    "  alert_id BLOB,"                     /* the alert while not closed */
    "  saved BLOB,"                        /* circuit_save() */
    "  updated_ns INTEGER NOT NULL,"
    "  UNIQUE (rule, key));"               /* also the listing order */
    "CREATE TABLE transitions ("           /* history: kept when the circuit row goes */
    "  id INTEGER PRIMARY KEY,"            /* insertion order: pruned oldest first */
    "  rule TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  at_ns INTEGER NOT NULL,"
    "  from_state INTEGER NOT NULL,"
    "  to_state INTEGER NOT NULL,"
    "  reason TEXT,"
    "  failures INTEGER NOT NULL,"
    "  window_s INTEGER NOT NULL,"
    "  next_ns INTEGER NOT NULL,"
    "  alert_id BLOB);"
    "CREATE INDEX transitions_circuit ON transitions(rule, key);" /* + rowid: newest first */
    "CREATE TABLE alerts ("
    "  id INTEGER PRIMARY KEY,"            /* the listing cursor */
    "  alert_id BLOB NOT NULL UNIQUE,"
    "  rule TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  severity TEXT NOT NULL,"
    "  status TEXT NOT NULL,"              /* firing | resolved */
    "  state INTEGER NOT NULL,"
    "  opened_ns INTEGER NOT NULL,"
    "  resolved_ns INTEGER NOT NULL,"
    "  failures INTEGER NOT NULL,"
    "  window_s INTEGER NOT NULL,"
    "  sample TEXT,"
    "  resolve_reason TEXT,"
    "  notices INTEGER NOT NULL,"
    "  updated_ns INTEGER NOT NULL);"
    "CREATE INDEX alerts_status ON alerts(status);" /* + rowid: one status, newest first */
    "CREATE INDEX alerts_resolved ON alerts(resolved_ns) WHERE status = 'resolved';" /* pruning */
    "CREATE TABLE deliveries ("            /* the outbox: one row per (notice, notifier) */
    "  id INTEGER PRIMARY KEY,"
    "  alert_id BLOB NOT NULL,"
    "  notifier TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"                /* firing | resolved */
    "  seq INTEGER NOT NULL,"
    "  idem_key TEXT,"                     /* NULL = the usual '<alert_id hex>:<kind>:<seq>' */
    "  status INTEGER NOT NULL,"           /* enum store_delivery_status */
    "  attempts INTEGER NOT NULL,"
    "  next_attempt_ns INTEGER NOT NULL,"
    "  http_status INTEGER NOT NULL,"
    "  last_error TEXT,"
    "  created_ns INTEGER NOT NULL,"
    "  updated_ns INTEGER NOT NULL,"
    "  body TEXT NOT NULL);"               /* last: the other columns are read without it */
    "CREATE INDEX deliveries_alert ON deliveries(alert_id);"
    /* pending (0) and dead (2) rows only, the few that wait for something: the restart scan
     * and the prune's check; a query uses it when it names the status as a literal */
    "CREATE INDEX deliveries_open ON deliveries(status) WHERE status = 0 OR status = 2;"
    "CREATE TABLE silences ("
    "  id INTEGER PRIMARY KEY,"
    "  rule TEXT NOT NULL,"
    "  matchers TEXT NOT NULL,"            /* '' = every key */
    "  comment TEXT,"
    "  created_by TEXT,"
    "  created_ns INTEGER NOT NULL,"
    "  starts_ns INTEGER NOT NULL,"
    "  ends_ns INTEGER NOT NULL,"
    "  expired_ns INTEGER NOT NULL);"      /* 0 = not expired by hand */
    "CREATE TABLE outcome_batches ("       /* ReportRequests whose outcomes were counted */
    "  batch_id BLOB PRIMARY KEY,"
    "  received_ns INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX outcome_batches_received ON outcome_batches(received_ns);",
    /* 3: how far the group and minute counts are written (store.c defers them across
     * transactions; the events after this rowid are aggregated again at open) */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (key, value) VALUES ('aggregated_through', (SELECT coalesce(max(id), 0) FROM events));",
    /* 4: spike protection (server/quota.h): events refused by a quota are counted in their
     * group's and service's counts (total, minutes) but not stored; `dropped` is that part */
    "ALTER TABLE groups ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE service_minutes ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE service_hours ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;",
    /* 5: ingest at high cardinality (issue 16).  The deferred aggregates are written a slice
     * of groups at a time (store_agg.c): each group row records the last event rowid its
     * counts include, so the events a crash leaves past aggregated_through are counted again
     * only in the groups that lack them (0: every group's counts end at aggregated_through,
     * as before).  And the "recently seen" indexes key on last_seen's minute, which a group
     * update changes once a minute at most, instead of last_seen, which it changes every
     * time (two index rewrites per group update, half its cost). */
    "ALTER TABLE groups ADD COLUMN agg_through INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE groups ADD COLUMN last_minute INTEGER NOT NULL DEFAULT 0;"
    "UPDATE groups SET last_minute = last_seen / 60000000000;"
    "DROP INDEX groups_last_seen;"
    "DROP INDEX groups_service;"
    "CREATE INDEX groups_last_minute ON groups(last_minute);"
    "CREATE INDEX groups_service ON groups(service, last_minute);",
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

_Static_assert(N_MIGRATIONS == STORE_SCHEMA_VERSION, "one migration per schema version");

static int user_version(struct store *s, int *v)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return store__set_err(s, "read schema version");
	int rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store__set_err(s, "read schema version");
}

int store__migrate(struct store *s)
{
	/* The version is read inside the write transaction, so two processes opening a new file
	 * at once cannot both apply the same migration. */
	for (;;) {
		int v;
		if (store__exec(s, "BEGIN IMMEDIATE", "begin migration"))
			return -1;
		if (user_version(s, &v))
			goto fail;
		if (v > STORE_SCHEMA_VERSION) {
			store__fail(s,
				    "database schema version %d is newer than this errqd knows (%d): "
				    "refusing to open it; run a newer errqd",
				    v, STORE_SCHEMA_VERSION);
			goto fail;
		}
		if (v == STORE_SCHEMA_VERSION)
			return store__exec(s, "COMMIT", "commit migration");
		char bump[64];
		errq_snprintf(bump, sizeof(bump), "PRAGMA user_version=%d", v + 1);
		if (store__exec(s, migrations[v], "migrate schema") || store__exec(s, bump, "bump schema version") ||
		    store__exec(s, "COMMIT", "commit migration"))
			goto fail;
	}
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
