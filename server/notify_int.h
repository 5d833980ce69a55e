/* notify_int.h: the notifier's private state, shared by notify.c (the loop, the inbox,
 * scheduling and attempts), notify_curl.c (libcurl's multi interface on the libuv loop) and
 * notify_refresh.c (Alertmanager re-posts).  Everything here is the loop thread's unless
 * marked "under mu" (see notify.c). */
#ifndef ERRQD_NOTIFY_INT_H
#define ERRQD_NOTIFY_INT_H
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "notify.h"
#include "notify_kinds.h"

struct dest_state {
	struct notify_dest d;
	uint32_t failures;      /* consecutive */
	uint32_t breaker_ms;    /* the current open period; 0 = closed */
	uint64_t open_until;    /* monotonic ns */
	bool probing;           /* half-open: one attempt in flight decides */
};

struct pending {
	struct pending *next;
	struct notify_delivery *d;
	uint64_t due;           /* monotonic ns */
	bool inflight;
	bool probe;             /* this attempt is the breaker's half-open probe */
	/* an Alertmanager re-post of a delivered firing (no outbox row: never reported), held
	 * while that firing is its alert's latest notice; superseded: a newer notice of the alert
	 * came while it was in flight (it goes when it ends) */
	bool refresh, superseded;
	uint32_t refresh_ms;    /* the last build asked for re-posts every refresh_ms */
	CURL *easy;
	struct notify_request rq; /* the attempt's request, built anew for each */
	long retry_after_s;     /* from the response, -1 = none */
	char errbuf[CURL_ERROR_SIZE];
};

#define SEEN (2 * NOTIFY_MAX_PENDING)
struct notifier {
	uint64_t seen[SEEN]; /* schedule(): key hashes met in one pass */
	struct notify_opts o;
	notify_report_fn report;
	void *report_ctx;
	pthread_t thread;
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t curl_timer, sched_timer, turn_timer;
	_Atomic uint64_t turn_ns;               /* the loop's last turn (liveness) */
	_Atomic bool no_refresh;                /* notify_set_refresh(false): re-posts end */
	pthread_mutex_t stats_mu;               /* guards stats, n_stats */
	struct notify_dest_stats stats[NOTIFY_MAX_STATS];
	size_t n_stats;
	CURLM *multi;
	pthread_mutex_t mu;
	bool stopping;                          /* under mu */
	struct pending *inbox, *inbox_tail;     /* under mu */
	size_t held;                            /* under mu: deliveries in the inbox or pending */
	struct dest_state *new_dests;           /* under mu: a reload waiting to be applied */
	size_t new_ndests;
	bool dests_changed;
	/* the loop thread's */
	struct pending *head, *tail;
	size_t npending, ninflight;
	size_t nrefresh;        /* refresh entries in the list (NOTIFY_MAX_REFRESH) */
	bool refresh_full_logged;
	struct dest_state *dests;
	size_t ndests;
	uint64_t rnd;
};

struct sock_ctx {
	uv_poll_t poll;
	curl_socket_t fd;
	struct notifier *n;
};

/* notify.c */
void notify__check_multi(struct notifier *n);
void notify__count_attempt(struct notifier *n, const char *dest, enum notify_result r);
void notify__unlink_pending(struct notifier *n, struct pending *p);
void notify__list_append(struct pending **head, struct pending **tail, struct pending *p);
void notify__release(struct notifier *n, struct pending *p);
void notify__breaker_result(struct notifier *n, struct dest_state *ds, bool ok, bool dest_down, uint64_t now);

/* notify_curl.c: libcurl's callbacks (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION, and an
 * easy handle's body and header functions: the header one reads Retry-After into the pending) */
int notify__sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp);
int notify__timer_cb(CURLM *m, long timeout_ms, void *userp);
size_t notify__discard(char *p, size_t sz, size_t nm, void *u);
size_t notify__on_header(char *p, size_t sz, size_t nm, void *u);
/* a socket's poll handle closed (at stop, notify.c closes what is left with it) */
void notify__on_sock_closed(uv_handle_t *h);

/* notify_refresh.c */
bool notify__refresh_full(struct notifier *n, const struct pending *p);
bool notify__to_refresh(struct notifier *n, struct pending *p, uint64_t now);
void notify__refresh_done(struct notifier *n, struct pending *p, struct dest_state *ds, bool ok, bool dest_down,
			  uint64_t now);
void notify__end_refresh(struct notifier *n, const struct pending *np);
#endif
