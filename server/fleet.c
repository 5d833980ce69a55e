/* fleet.c: see fleet.h.
 *
 * The thread's loop, every poll_ms (or at once when the writer reports a fence):
 *   - no session: open one (a leader_session handle); failures are logged once per condition;
 *   - a follower: store_leader_acquire; taking it publishes the new epoch;
 *   - the leader: store_leader_ping; a lost session (or a fence) unpublishes the epoch and
 *     closes the handle, so no lock can linger in a session this collector no longer trusts.
 * on_change runs after each change, so the writer looks at once. */
#include "fleet.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errq_condlog.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "storage.h"
#include "storage_alerts.h"
#include "errq_banned.h"

struct fleet {
	struct fleet_opts o;
	char *url;
	char name[STORE_LEADER_NAME_MAX];
	char owner[FLEET_OWNER_MAX];
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;          /* under mu */
	uint64_t fenced;        /* under mu: an epoch the writer found over */
	struct fleet_stats st;  /* under mu */
	_Atomic uint64_t epoch; /* 0: not the leader */
	struct store *s;        /* the thread's */
	struct errq_condlog clog;
};

static void set_error(struct fleet *f, const char *err)
{
	pthread_mutex_lock(&f->mu);
	f->st.session_ok = err == NULL;
	errq_snprintf(f->st.last_error, sizeof(f->st.last_error), "%s", err ? err : "");
	pthread_mutex_unlock(&f->mu);
	if (err)
		errq_condlog_fail(&f->clog, err);
	else
		errq_condlog_ok(&f->clog);
}

static void changed(struct fleet *f)
{
	if (f->o.on_change)
		f->o.on_change(f->o.ctx);
}

/* Stops leading: the epoch unpublished, the session ended (the lock with it). */
static void step_down(struct fleet *f, const char *why)
{
	uint64_t ep = atomic_exchange(&f->epoch, 0);
	store_close(f->s);
	f->s = NULL;
	if (!ep)
		return;
	char es[24];
	errq_snprintf(es, sizeof(es), "%" PRIu64, ep);
	errq_logkv(ERRQ_LOG_WARN, "fleet: this collector no longer leads the rule engine", "epoch", es, "reason", why,
		   NULL);
	pthread_mutex_lock(&f->mu);
	f->st.leader = false;
	f->st.epoch = 0;
	f->st.since_ns = 0;
	f->st.lost++;
	pthread_mutex_unlock(&f->mu);
	changed(f);
}

static void turn(struct fleet *f)
{
	char err[512];
	pthread_mutex_lock(&f->mu);
	uint64_t fenced = f->fenced;
	pthread_mutex_unlock(&f->mu);
	uint64_t ep = atomic_load(&f->epoch);
	if (ep && fenced == ep) {
		step_down(f, "another collector took over (the fleet's epoch moved on)");
		ep = 0;
	}
	if (fenced) { /* cleared only now: until the step-down, fleet_get_stats says it does not lead */
		pthread_mutex_lock(&f->mu);
		if (f->fenced == fenced)
			f->fenced = 0;
		pthread_mutex_unlock(&f->mu);
	}
	if (!f->s) {
		struct store_opts so = {.path = f->url, .leader_session = true};
		if (store_open(&f->s, &so, err, sizeof(err))) {
			set_error(f, err);
			return;
		}
	}
	if (ep) {
		int r = store_leader_ping(f->s);
		if (r == 1) {
			set_error(f, NULL);
			return;
		}
		step_down(f, r == 0 ? "its database session ended" : store_errmsg(f->s));
		return;
	}
	uint64_t got = 0;
	int r = store_leader_acquire(f->s, f->name, &got);
	if (r < 0) {
		set_error(f, store_errmsg(f->s));
		store_close(f->s); /* whatever it held, a new session holds nothing */
		f->s = NULL;
		return;
	}
	set_error(f, NULL);
	if (r == 0)
		return;
	atomic_store(&f->epoch, got);
	pthread_mutex_lock(&f->mu);
	f->st.leader = true;
	f->st.epoch = got;
	f->st.since_ns = errq_now_ns();
	f->st.acquired++;
	pthread_mutex_unlock(&f->mu);
	char es[24];
	errq_snprintf(es, sizeof(es), "%" PRIu64, got);
	errq_logkv(ERRQ_LOG_INFO, "fleet: this collector leads the rule engine", "epoch", es, "owner", f->owner, NULL);
	changed(f);
}

static void *run(void *arg)
{
	struct fleet *f = arg;
	uint32_t poll = f->o.poll_ms ? f->o.poll_ms : FLEET_POLL_MS;
	for (bool first = true;; first = false) {
		if (!first) /* fleet_start made the first turn */
			turn(f);
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)poll * ERRQ_NS_PER_MS;
		until.tv_sec += (time_t)(ns / ERRQ_NS_PER_SEC);
		until.tv_nsec = (long)(ns % ERRQ_NS_PER_SEC);
		pthread_mutex_lock(&f->mu);
		while (!f->stopping && !f->fenced) {
			if (pthread_cond_timedwait(&f->cv, &f->mu, &until) == ETIMEDOUT)
				break;
		}
		bool stop = f->stopping;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			break;
	}
	atomic_store(&f->epoch, 0);
	store_close(f->s); /* the lock goes with the session: another collector takes over */
	f->s = NULL;
	return NULL;
}

int fleet_start(struct fleet **out, const struct fleet_opts *o, char *err, size_t errsz)
{
	*out = NULL;
	struct fleet *f = calloc(1, sizeof(*f));
	if (!f || !(f->url = strdup(o->db_url ? o->db_url : ""))) {
		free(f);
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	f->o = *o;
	f->o.db_url = f->url;
	errq_snprintf(f->name, sizeof(f->name), "%s", o->name && *o->name ? o->name : "errqd");
	/* unique per process: a restarted collector of the same name must not renew (and so keep
	 * from the others) the leases its previous life held */
	uint64_t nonce = errq_now_ns() ^ ((uint64_t)getpid() << 32);
	errq_snprintf(f->owner, sizeof(f->owner), "%.96s/%d-%08" PRIx32, f->name, (int)getpid(),
		      (uint32_t)(nonce ^ (nonce >> 32)));
	errq_condlog_init(&f->clog, "fleet: leader session", ERRQ_LOG_WARN);
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* the first try before the collector takes events: a lone collector leads from its start
	 * (its writer evaluates its own events at once, as on SQLite) */
	turn(f);
	if (pthread_create(&f->thread, NULL, run, f)) {
		errq_snprintf(err, errsz, "cannot start the fleet thread");
		fleet_stop(f);
		return -1;
	}
	f->started = true;
	*out = f;
	return 0;
}

void fleet_stop(struct fleet *f)
{
	if (!f)
		return;
	if (f->started) {
		pthread_mutex_lock(&f->mu);
		f->stopping = true;
		pthread_cond_signal(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
	}
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f->url);
	free(f);
}

uint64_t fleet_epoch(struct fleet *f)
{
	return atomic_load(&f->epoch);
}

const char *fleet_owner(const struct fleet *f)
{
	return f->owner;
}

void fleet_fenced(struct fleet *f, uint64_t epoch)
{
	pthread_mutex_lock(&f->mu);
	f->fenced = epoch;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void fleet_get_stats(struct fleet *f, struct fleet_stats *st)
{
	pthread_mutex_lock(&f->mu);
	*st = f->st;
	if (st->leader && f->fenced == st->epoch) {
		/* the writer found the epoch over and the thread has not stepped down yet (its
		 * session may not answer): another collector leads, so this one says it does not */
		st->leader = false;
		st->epoch = 0;
	}
	pthread_mutex_unlock(&f->mu);
}
