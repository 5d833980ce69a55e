/* fleet.h: leadership of the rule engine among several collectors on one database (issue 17).
 *
 * Every collector on a shared database (PostgreSQL: store_fleet()) ingests and answers
 * queries on its own; one at a time, the leader, evaluates the rules for all of them
 * (server/alerts_fleet.c).  A fleet thread per collector holds a leader_session store handle
 * (its own database session, storage_alerts.h) and every FLEET_POLL_MS either tries to take
 * the leader lock (a follower) or checks that its session still holds it (the leader).  The
 * lock lives as long as that session: when the leader dies its session ends and another
 * collector takes the lock at its next try, so leadership moves within about FLEET_POLL_MS of
 * the database noticing (at once for a killed process; a vanished machine: the session's
 * keepalives, storage/pg/pg_int.h).  Taking the lock bumps the fleet's epoch, the fencing token
 * the leader's writer checks in every transaction that changes circuits.
 *
 * Threads: the fleet's own (the database session; it may block on it, nobody waits for it);
 * fleet_epoch and fleet_get_stats from any thread (atomics and a mutex); fleet_fenced from
 * the writer. */
#ifndef ERRQD_FLEET_H
#define ERRQD_FLEET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLEET_POLL_MS 1000        /* a follower tries the lock, the leader pings its session */
#define FLEET_OWNER_MAX 128       /* the collector's name in the fleet: "<name>/<pid>-<random>" */

struct fleet;

struct fleet_opts {
	const char *db_url;        /* the shared database (postgres://...) */
	const char *name;          /* the collector's name (--name / hostname) */
	uint32_t poll_ms;          /* 0 = FLEET_POLL_MS (tests shorten it) */
	void (*on_change)(void *ctx); /* the thread calls it when leadership came or went */
	void *ctx;
};

/* Opens the leader session and starts the thread.  0, or -1 with err. */
int fleet_start(struct fleet **out, const struct fleet_opts *o, char *err, size_t errsz);
/* Stops the thread and ends the session (the lock goes with it: another collector takes over
 * at its next try).  Accepts NULL. */
void fleet_stop(struct fleet *f);
/* The epoch this collector leads under, 0 when it does not lead.  Any thread. */
uint64_t fleet_epoch(struct fleet *f);
/* This collector's name in the fleet: unique per process (the owner of its delivery leases). */
const char *fleet_owner(const struct fleet *f);
/* The writer found the fleet's epoch moved past `epoch` (another collector took over): the
 * thread gives the lock up (ends its session) if it still thinks it holds it. */
void fleet_fenced(struct fleet *f, uint64_t epoch);

struct fleet_stats {
	bool leader;              /* false once its writer was fenced, even before the step-down */
	uint64_t epoch;           /* this collector's, when it leads */
	uint64_t since_ns;        /* when it took the lock (realtime), 0 when it does not lead */
	uint64_t acquired, lost;  /* times it took the lock, and lost or gave it up, since start */
	bool session_ok;          /* the leader session works (false: the last attempt failed) */
	char last_error[256];
};
void fleet_get_stats(struct fleet *f, struct fleet_stats *st);
#endif
