/* diskguard.c: the free-disk floor (diskguard.h). */
#include "diskguard.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "errq_condlog.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"

struct diskguard {
	pthread_mutex_t mu;
	uint64_t min_free;
	_Atomic uint64_t next_check;  /* errq_mono_ns(): measure again from then on */
	atomic_bool low;
	_Atomic uint64_t free_bytes, refusals;
	char reason[DISKGUARD_REASON_MAX];  /* under mu */
	struct errq_condlog log_low, log_statvfs; /* under mu */
	char dir[1];                  /* the database's directory */
};

struct diskguard *diskguard_new(const char *db_path, uint64_t min_free)
{
	const char *slash = strrchr(db_path, '/');
	size_t n = slash ? (size_t)(slash - db_path) : 1;
	struct diskguard *g = calloc(1, sizeof(*g) + n + 1);
	if (!g)
		return NULL;
	if (!slash)
		g->dir[0] = '.';
	else if (n == 0)
		g->dir[0] = '/';
	else
		memcpy(g->dir, db_path, n);
	pthread_mutex_init(&g->mu, NULL);
	g->min_free = min_free;
	atomic_store(&g->free_bytes, UINT64_MAX);
	errq_condlog_init(&g->log_low, "disk space below min_free_disk; refusing new batches", ERRQ_LOG_ERROR);
	errq_condlog_init(&g->log_statvfs, "cannot measure the free disk space", ERRQ_LOG_WARN);
	return g;
}

void diskguard_free(struct diskguard *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static void mib(char *buf, size_t sz, uint64_t v)
{
	errq_snprintf(buf, sz, "%.1f MiB", (double)v / (1024.0 * 1024.0));
}

/* Measures now unless another thread is at it or it was measured recently. */
static void refresh(struct diskguard *g, uint64_t now)
{
	if (now < atomic_load(&g->next_check) || pthread_mutex_trylock(&g->mu))
		return; /* recent enough, or being measured: the decision in force holds */
	if (now >= atomic_load(&g->next_check)) {
		struct statvfs sv;
		if (statvfs(g->dir, &sv) == 0) {
			uint64_t free_b = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
			bool low = free_b < g->min_free;
			atomic_store(&g->free_bytes, free_b);
			errq_condlog_ok(&g->log_statvfs);
			if (low) {
				char f[32], m[32];
				mib(f, sizeof(f), free_b);
				mib(m, sizeof(m), g->min_free);
				errq_snprintf(g->reason, sizeof(g->reason),
					      "disk space below min_free_disk: %s free on '%s', min_free_disk is %s", f,
					      g->dir, m);
				errq_condlog_fail(&g->log_low, g->reason);
			} else {
				errq_condlog_ok(&g->log_low);
			}
			atomic_store(&g->low, low);
		} else {
			/* cannot tell: do not refuse on a guess (SQLite's own errors still count) */
			char e[128];
			errq_snprintf(e, sizeof(e), "statvfs '%s': %s", g->dir, strerror(errno));
			errq_condlog_fail(&g->log_statvfs, e);
			atomic_store(&g->low, false);
		}
		atomic_store(&g->next_check, now + DISKGUARD_CHECK_MS * ERRQ_NS_PER_MS);
	}
	pthread_mutex_unlock(&g->mu);
}

static void reason(struct diskguard *g, char *why, size_t whysz)
{
	pthread_mutex_lock(&g->mu);
	errq_snprintf(why, whysz, "%s", g->reason);
	pthread_mutex_unlock(&g->mu);
}

bool diskguard_low(struct diskguard *g, char *why, size_t whysz)
{
	if (!g || !g->min_free)
		return false;
	refresh(g, errq_mono_ns());
	if (!atomic_load(&g->low))
		return false;
	reason(g, why, whysz);
	return true;
}

bool diskguard_refuse(struct diskguard *g, char *why, size_t whysz)
{
	if (!diskguard_low(g, why, whysz))
		return false;
	atomic_fetch_add(&g->refusals, 1);
	return true;
}

void diskguard_get_stats(struct diskguard *g, struct diskguard_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!g)
		return;
	if (!g->min_free) { /* not measured for the floor: measure for the gauge (a scrape) */
		struct statvfs sv;
		st->free_bytes = statvfs(g->dir, &sv) == 0 ? (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize : UINT64_MAX;
	} else {
		refresh(g, errq_mono_ns());
		st->free_bytes = atomic_load(&g->free_bytes);
	}
	st->min_free = g->min_free;
	st->refusals = atomic_load(&g->refusals);
	st->low = atomic_load(&g->low);
}
