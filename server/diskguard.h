/* diskguard.h: the free-disk floor.  errqd refuses new batches with UNAVAILABLE while the
 * filesystem that holds the database has less than min_free_disk bytes free for it, before
 * SQLite fails with a full disk (docs/operations.md, "Disk full").
 *
 * Cost: every batch read asks diskguard_refuse(), which is an atomic load; the free space is
 * measured (one statvfs(2) of the database's directory) at most every DISKGUARD_CHECK_MS, by
 * whichever thread asks first after that, so a storm of batches never becomes a storm of
 * system calls.  The floor is judged on f_bavail (what an unprivileged writer may use).
 *
 * Threads: any thread may call everything; g->mu guards the measurement and the reason text,
 * the decision is an atomic.  A floor of 0 disables the check (nothing is measured for it). */
#ifndef ERRQD_DISKGUARD_H
#define ERRQD_DISKGUARD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISKGUARD_CHECK_MS 250  /* the free space is measured at most this often */
#define DISKGUARD_REASON_MAX 256

struct diskguard;

struct diskguard_stats {
	uint64_t free_bytes;  /* at the last measurement (UINT64_MAX: never measured) */
	uint64_t min_free;    /* the floor (min_free_disk) */
	uint64_t refusals;    /* batches refused for it since start */
	bool low;             /* below the floor at the last measurement */
};

/* db_path: the database file (its directory's filesystem is measured).  NULL on no memory. */
struct diskguard *diskguard_new(const char *db_path, uint64_t min_free);
void diskguard_free(struct diskguard *g); /* accepts NULL */
/* Per batch: true when it must be refused now, with the reason for the client (counted as a
 * refusal).  Accepts g NULL (storage: none): false. */
bool diskguard_refuse(struct diskguard *g, char *why, size_t whysz);
/* For readiness: true when below the floor now (measured if the last measurement is older
 * than DISKGUARD_CHECK_MS), with the reason. */
bool diskguard_low(struct diskguard *g, char *why, size_t whysz);
void diskguard_get_stats(struct diskguard *g, struct diskguard_stats *st);
#endif
