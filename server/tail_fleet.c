/* tail_fleet.c: see tail_fleet.h.
 *
 * Threads: fleet_main alone owns its store handle (opened, used and closed there); it
 * publishes through tail_publish_stored, which takes the hub's lock as the writer's
 * tail_publish does.  mu/cv guard `stop` (tail_fleet_stop sets it and joins the thread);
 * `events` and `missed` are atomics the metrics thread reads.  main.c stops it next to the
 * writer, before the transport and the hub's calls go. */
#include "tail_fleet.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "errq_condlog.h"
#include "errq_log.h"
#include "errq_time.h"
#include "storage.h"
#include "tail.h"

struct tail_fleet {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* stop */
	bool stop;
	struct tail_hub *hub;
	char *db;
	struct errq_condlog log; /* the listener's failures: one line per episode */
	_Atomic uint64_t events, missed;
};

/* Waits ms, or until stop; true when stopping. */
static bool pause_or_stop(struct tail_fleet *f, uint32_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * ERRQ_NS_PER_MS;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	pthread_mutex_lock(&f->mu);
	while (!f->stop && pthread_cond_timedwait(&f->cv, &f->mu, &ts) == 0)
		;
	bool stop = f->stop;
	pthread_mutex_unlock(&f->mu);
	return stop;
}

static bool stopping(struct tail_fleet *f)
{
	pthread_mutex_lock(&f->mu);
	bool stop = f->stop;
	pthread_mutex_unlock(&f->mu);
	return stop;
}

/* Asked when notices were read: a subscriber now wants the others' events. */
static bool want_events(void *ctx)
{
	struct tail_fleet *f = ctx;
	return tail_hub_subscribers(f->hub) > 0;
}

static int on_event(void *ctx, const struct store_event *e)
{
	struct tail_fleet *f = ctx;
	tail_publish_stored(f->hub, e);
	f->events++;
	return 0;
}

static void *fleet_main(void *arg)
{
	struct tail_fleet *f = arg;
	struct store *st = NULL;
	uint32_t open_backoff = TAIL_FLEET_RETRY_MS;
	char err[512];
	while (!stopping(f)) {
		if (!st) {
			struct store_opts so = {.path = f->db, .readonly = true};
			if (store_open(&st, &so, err, sizeof(err))) {
				errq_condlog_fail(&f->log, err);
				if (pause_or_stop(f, open_backoff))
					break;
				open_backoff = open_backoff * 2 > TAIL_FLEET_RETRY_MAX_MS ? TAIL_FLEET_RETRY_MAX_MS
											: open_backoff * 2;
				continue;
			}
			open_backoff = TAIL_FLEET_RETRY_MS;
		}
		uint64_t missed = 0;
		int n = store_tail_listen(st, TAIL_FLEET_WAIT_MS, want_events, on_event, f, &missed);
		if (missed) {
			tail_hub_add_dropped(f->hub, missed);
			f->missed += missed;
		}
		if (n < 0) {
			errq_condlog_fail(&f->log, store_errmsg(st));
			if (pause_or_stop(f, TAIL_FLEET_RETRY_MS))
				break;
		} else {
			errq_condlog_ok(&f->log);
			errq_condlog_poll(&f->log);
		}
	}
	store_close(st);
	return NULL;
}

int tail_fleet_start(struct tail_fleet **out, struct tail_hub *hub, const char *db)
{
	struct tail_fleet *f = calloc(1, sizeof(*f));
	*out = NULL;
	if (!f || !(f->db = strdup(db))) {
		free(f);
		return -1;
	}
	f->hub = hub;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	/* the other collectors' events go missing from every tail here while this fails */
	errq_condlog_init(&f->log, "tail listener failed: other collectors' events are not tailed until it is back",
			  ERRQ_LOG_WARN);
	if (pthread_create(&f->thread, NULL, fleet_main, f)) {
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
		free(f->db);
		free(f);
		return -1;
	}
	*out = f;
	return 0;
}

void tail_fleet_stats(struct tail_fleet *f, uint64_t *events, uint64_t *missed)
{
	*events = f ? f->events : 0;
	*missed = f ? f->missed : 0;
}

void tail_fleet_stop(struct tail_fleet *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f->db);
	free(f);
}
