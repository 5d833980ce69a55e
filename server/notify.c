/* notify.c: see notify.h.
 *
 * Threads and locks: one loop thread runs a libuv loop with libcurl's multi interface; every
 * field of struct notifier is the loop thread's, except the inbox (submitted deliveries and
 * new destinations), guarded by n->mu and handed over with uv_async_send.  Reports are made
 * on the loop thread.  Stop: notify_stop sets n->stopping and wakes the loop, which aborts
 * its transfers, closes its handles and returns; the caller joins the thread.  The state is in
 * notify_int.h; libcurl's callbacks are in notify_curl.c, Alertmanager re-posts in
 * notify_refresh.c. */
#include "notify_int.h"

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#include "errq_hash.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "notify_kinds.h"

static uint64_t rnd_next(struct notifier *n)
{
	uint64_t x = n->rnd;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return n->rnd = x;
}

void notify_sign(const char *secret, uint64_t ts, const char *body, size_t len, char out[160])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char prefix[32];
	int pl = errq_snprintf(prefix, sizeof(prefix), "%llu.", (unsigned long long)ts);
	/* HMAC over "<ts>.<body>" without copying the body: key, then the two parts */
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end()};
	size_t outl = 0;
	if (c && EVP_MAC_init(c, (const unsigned char *)secret, strlen(secret), params) &&
	    EVP_MAC_update(c, (const unsigned char *)prefix, (size_t)pl) &&
	    EVP_MAC_update(c, (const unsigned char *)body, len) && EVP_MAC_final(c, mac, &outl, sizeof(mac)))
		maclen = (unsigned int)outl;
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	errq_hex_encode(mac, maclen, hex);
	errq_snprintf(out, 160, "t=%llu,v1=%s", (unsigned long long)ts, hex);
}

static struct dest_state *find_dest(struct notifier *n, const char *name)
{
	for (size_t i = 0; i < n->ndests; i++)
		if (strcmp(n->dests[i].d.name, name) == 0)
			return &n->dests[i];
	return NULL;
}

/* Counts one attempt's result for its destination (by name: the counts outlive reloads). */
void notify__count_attempt(struct notifier *n, const char *dest, enum notify_result r)
{
	pthread_mutex_lock(&n->stats_mu);
	struct notify_dest_stats *st = NULL;
	for (size_t i = 0; i < n->n_stats && !st; i++)
		if (strcmp(n->stats[i].name, dest) == 0)
			st = &n->stats[i];
	if (!st && n->n_stats < NOTIFY_MAX_STATS) {
		st = &n->stats[n->n_stats++];
		errq_snprintf(st->name, sizeof(st->name), "%s", dest);
	}
	if (!st) /* more names than NOTIFY_MAX_STATS since start: the last row takes the rest */
		st = &n->stats[NOTIFY_MAX_STATS - 1];
	st->sent += r == NOTIFY_DELIVERED;
	st->failed += r != NOTIFY_DELIVERED;
	st->retried += r == NOTIFY_RETRY;
	st->dead += r == NOTIFY_DEAD;
	pthread_mutex_unlock(&n->stats_mu);
}

size_t notify_get_stats(struct notifier *n, struct notify_dest_stats *out, size_t max)
{
	pthread_mutex_lock(&n->stats_mu);
	size_t k = n->n_stats < max ? n->n_stats : max;
	memcpy(out, n->stats, k * sizeof(*out));
	pthread_mutex_unlock(&n->stats_mu);
	return k;
}

uint64_t notify_last_turn(void *ctx)
{
	struct notifier *n = ctx;
	return atomic_load(&n->turn_ns);
}

static void on_turn_timer(uv_timer_t *t)
{
	struct notifier *n = t->data;
	atomic_store(&n->turn_ns, errq_mono_ns());
}

static void report(struct notifier *n, struct pending *p, enum notify_result r, uint64_t retry_at, long http,
		   const char *err)
{
	notify__count_attempt(n, p->d->dest, r);
	if (p->refresh)
		return; /* a re-post has no outbox row */
	struct notify_report rep = {.id = p->d->id, .result = r, .attempts = p->d->attempts, .retry_at_ns = retry_at,
				    .http_status = http};
	errq_snprintf(rep.error, sizeof(rep.error), "%s", err ? err : "");
	errq_snprintf(rep.dest, sizeof(rep.dest), "%s", p->d->dest);
	n->report(n->report_ctx, &rep);
}

void notify__unlink_pending(struct notifier *n, struct pending *p)
{
	struct pending **pp = &n->head, *prev = NULL;
	while (*pp && *pp != p) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = p->next;
	if (n->tail == p)
		n->tail = prev;
	n->npending--;
}

void notify__list_append(struct pending **head, struct pending **tail, struct pending *p)
{
	p->next = NULL;
	if (*tail)
		(*tail)->next = p;
	else
		*head = p;
	*tail = p;
}

static void pending_free(struct pending *p)
{
	notify_request_release(&p->rq);
	free(p->d);
	free(p);
}

static void schedule(struct notifier *n);

/* The loop is done with p (delivered, dead, or dropped at stop): frees it and gives its
 * place in the NOTIFY_MAX_PENDING bound back to notify_submit. */
void notify__release(struct notifier *n, struct pending *p)
{
	bool refresh = p->refresh;
	pending_free(p);
	if (refresh) { /* never counted in held */
		n->nrefresh--;
		return;
	}
	pthread_mutex_lock(&n->mu);
	n->held--;
	pthread_mutex_unlock(&n->mu);
}

/* ---- attempts ---- */

static uint64_t retry_delay_ns(struct notifier *n, uint32_t attempts, long retry_after_s)
{
	uint64_t cap = n->o.retry_base_ms;
	for (uint32_t i = 1; i < attempts && cap < n->o.retry_max_ms; i++)
		cap *= 2;
	if (cap > n->o.retry_max_ms)
		cap = n->o.retry_max_ms;
	uint64_t ms = cap / 2 + rnd_next(n) % (cap / 2 + 1); /* jitter over the upper half */
	if (retry_after_s > 0 && (uint64_t)retry_after_s * 1000 > ms)
		ms = (uint64_t)retry_after_s * 1000;
	if (ms > 24ULL * 3600 * 1000)
		ms = 24ULL * 3600 * 1000;
	return ms * ERRQ_NS_PER_MS;
}

static void breaker_failure(struct notifier *n, struct dest_state *ds, uint64_t now)
{
	/* opens after NOTIFY_BREAKER_FAILURES straight failures, or max_attempts if fewer: so the
	 * failure that would dead-letter a delivery during an outage opens it first */
	uint32_t threshold = ds->d.max_attempts && ds->d.max_attempts < NOTIFY_BREAKER_FAILURES ? ds->d.max_attempts
											 : NOTIFY_BREAKER_FAILURES;
	ds->failures++;
	if (ds->probing || ds->failures >= threshold) {
		ds->breaker_ms = ds->breaker_ms ? ds->breaker_ms * 2 : n->o.breaker_min_ms;
		if (ds->breaker_ms > n->o.breaker_max_ms)
			ds->breaker_ms = n->o.breaker_max_ms;
		ds->open_until = now + (uint64_t)ds->breaker_ms * ERRQ_NS_PER_MS;
	}
	ds->probing = false;
}

/* What an attempt's result (not a failed probe's) tells ds's breaker (NULL: none). */
void notify__breaker_result(struct notifier *n, struct dest_state *ds, bool ok, bool dest_down, uint64_t now)
{
	if (!ds)
		return;
	if (ok) {
		ds->failures = 0;
		ds->breaker_ms = 0;
		ds->probing = false;
	} else if (dest_down) {
		breaker_failure(n, ds, now);
	} else {
		ds->probing = false; /* it answered: alive, though it refused this one */
	}
}

/* The attempt of p ended: success, or a failure that may be retried. */
static void finish(struct notifier *n, struct pending *p, bool ok, long http, const char *err, bool dest_down)
{
	uint64_t now = errq_mono_ns();
	struct dest_state *ds = find_dest(n, p->d->dest);
	bool probe = p->probe;
	p->inflight = false;
	p->probe = false;
	if (p->refresh) {
		notify__refresh_done(n, p, ds, ok, dest_down, now);
		return;
	}
	if (probe && !ok && dest_down) {
		/* the destination is still down: a failed probe does not use up an attempt, so an
		 * outage of any length cannot dead-letter a delivery; wait for the next probe */
		if (ds)
			breaker_failure(n, ds, now);
		p->due = ds ? ds->open_until : now;
		report(n, p, NOTIFY_RETRY, errq_now_ns() + (p->due - now), 0, err);
		return;
	}
	p->d->attempts++;
	notify__breaker_result(n, ds, ok, dest_down, now);
	if (ok) {
		report(n, p, NOTIFY_DELIVERED, 0, http, NULL);
		if (p->refresh_ms && ds && notify__to_refresh(n, p, now))
			return;
		notify__unlink_pending(n, p);
		notify__release(n, p);
		return;
	}
	uint32_t max = ds && ds->d.max_attempts ? ds->d.max_attempts : 1;
	if (p->d->attempts >= max && dest_down && ds && ds->breaker_ms && now < ds->open_until) {
		/* out of attempts, but the destination is down (its breaker is open): an outage never
		 * dead-letters; the delivery waits for the breaker's probe like the others */
		p->due = ds->open_until;
		report(n, p, NOTIFY_RETRY, errq_now_ns() + (p->due - now), http, err);
		return;
	}
	if (p->d->attempts >= max) {
		report(n, p, NOTIFY_DEAD, 0, http, err);
		notify__unlink_pending(n, p);
		notify__release(n, p);
		return;
	}
	uint64_t delay = retry_delay_ns(n, p->d->attempts, p->retry_after_s);
	p->due = now + delay;
	report(n, p, NOTIFY_RETRY, errq_now_ns() + delay, http, err);
}

void notify__check_multi(struct notifier *n)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(n->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		struct pending *p;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&p);
		long code = 0;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		CURLcode res = m->data.result;
		curl_multi_remove_handle(n->multi, e);
		curl_easy_cleanup(e);
		p->easy = NULL;
		bool smtp = p->rq.smtp;
		notify_request_release(&p->rq); /* built anew for each attempt */
		n->ninflight--;
		struct dest_state *ds = find_dest(n, p->d->dest);
		const struct notify_kind *k = ds ? notify_kind_of(ds->d.type) : NULL;
		enum notify_verdict v = k ? k->classify(res, code) : NOTIFY_V_DOWN;
		char why[256];
		if (res != CURLE_OK && code)
			errq_snprintf(why, sizeof(why), "%s (%s %ld)", p->errbuf[0] ? p->errbuf : curl_easy_strerror(res),
				      smtp ? "SMTP" : "HTTP", code);
		else if (res != CURLE_OK)
			errq_snprintf(why, sizeof(why), "%s", p->errbuf[0] ? p->errbuf : curl_easy_strerror(res));
		else
			errq_snprintf(why, sizeof(why), "%s %ld", smtp ? "SMTP" : "HTTP", code);
		long http = smtp ? 0 : code;
		if (v == NOTIFY_V_OK)
			finish(n, p, true, http, NULL, false);
		else
			finish(n, p, false, http, why, v == NOTIFY_V_DOWN);
	}
	schedule(n);
}

/* Builds p's request for ds's type and starts it.  Returns 0, -1 when it cannot start now
 * (out of memory: tried again later), or -2 when the notice cannot be built for this type
 * (why in err: the attempt fails as refused). */
static int start_request(struct notifier *n, struct pending *p, const struct dest_state *ds, char *err,
			 size_t errsz)
{
	const struct notify_kind *k = notify_kind_of(ds->d.type);
	if (!k) {
		errq_snprintf(err, errsz, "no request for notifier type %d", ds->d.type);
		return -2;
	}
	notify_request_init(&p->rq);
	if (k->build(&ds->d, p->d, errq_now_ns(), &p->rq, err, errsz)) {
		notify_request_release(&p->rq);
		return -2;
	}
	p->refresh_ms = p->rq.refresh_ms;
	CURL *e = curl_easy_init();
	if (!e) {
		notify_request_release(&p->rq);
		return -1;
	}
	p->retry_after_s = -1;
	p->errbuf[0] = '\0';
	notify_request_setopt(e, &ds->d, &p->rq);
	if (ds->d.ca_file[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, ds->d.ca_file);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, notify__discard);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, notify__on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, p);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, p);
	if (curl_multi_add_handle(n->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		notify_request_release(&p->rq);
		return -1;
	}
	p->easy = e;
	p->inflight = true;
	n->ninflight++;
	return 0;
}

static void on_sched_timer(uv_timer_t *t)
{
	schedule(t->data);
}

/* Starts every delivery that may go now; arms the timer for the next one that will. */
static void schedule(struct notifier *n)
{
	uint64_t *seen = n->seen; /* key hashes met in this pass (loop thread only) */
	memset(seen, 0, sizeof(n->seen));
	uint64_t now = errq_mono_ns(), next = UINT64_MAX;
	for (struct pending *p = n->head, *nx; p; p = nx) {
		nx = p->next;
		/* only the oldest pending delivery of a key may go: order per alert */
		uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, p->d->order_key, strlen(p->d->order_key)) | 1;
		size_t i = h % SEEN;
		bool first = true;
		while (seen[i]) {
			if (seen[i] == h) {
				first = false;
				break;
			}
			i = (i + 1) % SEEN;
		}
		if (!first)
			continue;
		seen[i] = h;
		if (p->inflight)
			continue;
		struct dest_state *ds = find_dest(n, p->d->dest);
		const struct notify_kind *kind = ds ? notify_kind_of(ds->d.type) : NULL;
		if (p->refresh && atomic_load(&n->no_refresh)) { /* this collector no longer leads */
			notify__unlink_pending(n, p);
			notify__release(n, p);
			continue;
		}
		if (!ds || (p->refresh && !(kind && kind->refreshes))) { /* gone, or no longer re-posts (a reload) */
			report(n, p, NOTIFY_DEAD, 0, 0, "unknown notifier");
			notify__unlink_pending(n, p);
			notify__release(n, p);
			continue;
		}
		if (p->due > now) {
			next = p->due < next ? p->due : next;
			continue;
		}
		if (ds->d.type == NOTIFY_LOG) {
			errq_log_json(ERRQ_LOG_INFO, "alert", "notifier", ds->d.name, "alert", p->d->body, p->d->body_len);
			p->d->attempts++;
			report(n, p, NOTIFY_DELIVERED, 0, 0, NULL);
			notify__unlink_pending(n, p);
			notify__release(n, p);
			/* done at once: the key's next delivery may go in this pass (nothing else would
			 * wake the loop for it).  2 is never a key's hash (odd) and keeps probe chains. */
			seen[i] = 2;
			continue;
		}
		if (ds->breaker_ms && now < ds->open_until) {
			next = ds->open_until < next ? ds->open_until : next; /* waits; no attempt used */
			continue;
		}
		if (ds->probing)
			continue; /* half-open: the probe decides */
		if (n->ninflight >= NOTIFY_MAX_INFLIGHT)
			break;
		if (ds->breaker_ms)
			ds->probing = true;
		p->probe = ds->probing;
		char why[256];
		int rc = start_request(n, p, ds, why, sizeof(why));
		if (rc == -2) {
			/* a notice this type cannot send: refused, like a receiver's 4xx (retried, then dead) */
			ds->probing = false;
			p->probe = false;
			p->inflight = true;
			finish(n, p, false, 0, why, false);
			continue;
		}
		if (rc) {
			ds->probing = false;
			p->probe = false;
			p->due = now + (uint64_t)n->o.breaker_min_ms * ERRQ_NS_PER_MS;
			next = p->due < next ? p->due : next;
		}
	}
	if (next != UINT64_MAX)
		uv_timer_start(&n->sched_timer, on_sched_timer, (next - now) / ERRQ_NS_PER_MS + 1, 0);
	else
		uv_timer_stop(&n->sched_timer);
}

static void close_cb(uv_handle_t *h)
{
}

static void walk_close(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, h->type == UV_POLL ? notify__on_sock_closed : close_cb);
}

static void on_wake(uv_async_t *a)
{
	struct notifier *n = a->data;
	pthread_mutex_lock(&n->mu);
	bool stop = n->stopping;
	struct pending *in = n->inbox;
	n->inbox = n->inbox_tail = NULL;
	struct dest_state *nd = NULL;
	size_t nnd = 0;
	bool changed = n->dests_changed;
	if (changed) {
		nd = n->new_dests;
		nnd = n->new_ndests;
		n->new_dests = NULL;
		n->dests_changed = false;
	}
	pthread_mutex_unlock(&n->mu);
	if (changed) {
		/* keep the breaker state of destinations that stay */
		for (size_t i = 0; i < nnd; i++) {
			struct dest_state *old = find_dest(n, nd[i].d.name);
			if (old && strcmp(old->d.url, nd[i].d.url) == 0) {
				nd[i].failures = old->failures;
				nd[i].breaker_ms = old->breaker_ms;
				nd[i].open_until = old->open_until;
				nd[i].probing = old->probing;
			}
		}
		free(n->dests);
		n->dests = nd;
		n->ndests = nnd;
	}
	while (in) {
		struct pending *p = in;
		in = in->next;
		p->next = NULL;
		if (n->nrefresh)
			notify__end_refresh(n, p);
		if (p->refresh && notify__refresh_full(n, p)) {
			pending_free(p);
			continue;
		}
		n->nrefresh += p->refresh;
		notify__list_append(&n->head, &n->tail, p);
		n->npending++;
	}
	if (stop) {
		for (struct pending *p = n->head, *nx; p; p = nx) {
			nx = p->next;
			if (p->easy) {
				curl_multi_remove_handle(n->multi, p->easy);
				curl_easy_cleanup(p->easy);
			}
			notify__release(n, p);
		}
		n->head = n->tail = NULL;
		uv_walk(&n->loop, walk_close, NULL);
		return;
	}
	schedule(n);
}

static void *loop_main(void *arg)
{
	struct notifier *n = arg;
	uv_run(&n->loop, UV_RUN_DEFAULT);
	return NULL;
}

int notify_start(struct notifier **out, notify_report_fn fn, void *ctx, const struct notify_opts *o, char *err,
		 size_t errsz)
{
	struct notifier *n = calloc(1, sizeof(*n));
	*out = NULL;
	if (!n) {
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	struct notify_opts def = {NOTIFY_RETRY_BASE_MS, NOTIFY_RETRY_MAX_MS, NOTIFY_BREAKER_MIN_MS, NOTIFY_BREAKER_MAX_MS};
	n->o = o ? *o : def;
	n->report = fn;
	n->report_ctx = ctx;
	if (getrandom(&n->rnd, sizeof(n->rnd), GRND_NONBLOCK) != sizeof(n->rnd) || !n->rnd)
		n->rnd = errq_now_ns() | 1;
	pthread_mutex_init(&n->mu, NULL);
	pthread_mutex_init(&n->stats_mu, NULL);
	if (uv_loop_init(&n->loop)) {
		errq_snprintf(err, errsz, "cannot start the notifier's loop");
		goto fail;
	}
	n->multi = curl_multi_init();
	if (!n->multi) {
		uv_loop_close(&n->loop);
		errq_snprintf(err, errsz, "cannot start libcurl");
		goto fail;
	}
	curl_multi_setopt(n->multi, CURLMOPT_SOCKETFUNCTION, notify__sock_cb);
	curl_multi_setopt(n->multi, CURLMOPT_SOCKETDATA, n);
	curl_multi_setopt(n->multi, CURLMOPT_TIMERFUNCTION, notify__timer_cb);
	curl_multi_setopt(n->multi, CURLMOPT_TIMERDATA, n);
	uv_async_init(&n->loop, &n->wake, on_wake);
	n->wake.data = n;
	uv_timer_init(&n->loop, &n->curl_timer);
	n->curl_timer.data = n;
	uv_timer_init(&n->loop, &n->sched_timer);
	n->sched_timer.data = n;
	uv_timer_init(&n->loop, &n->turn_timer);
	n->turn_timer.data = n;
	atomic_store(&n->turn_ns, errq_mono_ns());
	uv_timer_start(&n->turn_timer, on_turn_timer, NOTIFY_TURN_MS, NOTIFY_TURN_MS);
	if (pthread_create(&n->thread, NULL, loop_main, n)) {
		errq_snprintf(err, errsz, "cannot start the notifier thread");
		uv_walk(&n->loop, walk_close, NULL);
		uv_run(&n->loop, UV_RUN_DEFAULT);
		uv_loop_close(&n->loop);
		curl_multi_cleanup(n->multi);
		goto fail;
	}
	*out = n;
	return 0;
fail:
	pthread_mutex_destroy(&n->mu);
	pthread_mutex_destroy(&n->stats_mu);
	free(n);
	return -1;
}

int notify_set_dests(struct notifier *n, const struct notify_dest *d, size_t count)
{
	if (count > NOTIFY_MAX_DESTS)
		return -1;
	struct dest_state *nd = calloc(count ? count : 1, sizeof(*nd));
	if (!nd)
		return -1;
	for (size_t i = 0; i < count; i++)
		nd[i].d = d[i];
	pthread_mutex_lock(&n->mu);
	free(n->new_dests);
	n->new_dests = nd;
	n->new_ndests = count;
	n->dests_changed = true;
	pthread_mutex_unlock(&n->mu);
	uv_async_send(&n->wake);
	return 0;
}

struct notify_delivery *notify_delivery_new(const char *body, size_t len)
{
	if (len > NOTIFY_BODY_MAX)
		return NULL;
	struct notify_delivery *d = calloc(1, sizeof(*d) + len + 1);
	if (!d)
		return NULL;
	memcpy(d->body, body, len);
	d->body[len] = '\0';
	d->body_len = len;
	return d;
}

/* Hands p to the loop through the inbox.  counted: it takes a place of NOTIFY_MAX_PENDING
 * (held counts every delivery from here until the loop is done with it, so the inbox and the
 * loop's list together never exceed the bound); a refresh entry does not.  -1 when stopping
 * or full: p is freed, its delivery stays the caller's. */
static int inbox_put(struct notifier *n, struct pending *p, bool counted)
{
	pthread_mutex_lock(&n->mu);
	if (n->stopping || (counted && n->held >= NOTIFY_MAX_PENDING)) {
		pthread_mutex_unlock(&n->mu);
		free(p);
		return -1;
	}
	notify__list_append(&n->inbox, &n->inbox_tail, p);
	n->held += counted;
	pthread_mutex_unlock(&n->mu);
	uv_async_send(&n->wake);
	return 0;
}

int notify_refresh(struct notifier *n, struct notify_delivery *d)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->d = d;
	p->refresh = true;
	p->due = errq_mono_ns();
	return inbox_put(n, p, false);
}

int notify_submit(struct notifier *n, struct notify_delivery *d)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->d = d;
	uint64_t now_rt = errq_now_ns();
	p->due = errq_mono_ns() + (d->not_before_ns > now_rt ? d->not_before_ns - now_rt : 0);
	return inbox_put(n, p, true);
}

void notify_set_refresh(struct notifier *n, bool on)
{
	atomic_store(&n->no_refresh, !on);
	uv_async_send(&n->wake); /* the loop drops what it holds at its next pass */
}

void notify_stop(struct notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->stopping = true;
	pthread_mutex_unlock(&n->mu);
	uv_async_send(&n->wake);
	pthread_join(n->thread, NULL);
	uv_loop_close(&n->loop);
	curl_multi_cleanup(n->multi);
	for (struct pending *p = n->inbox, *nx; p; p = nx) {
		nx = p->next;
		pending_free(p);
	}
	free(n->dests);
	free(n->new_dests);
	pthread_mutex_destroy(&n->mu);
	pthread_mutex_destroy(&n->stats_mu);
	free(n);
}
