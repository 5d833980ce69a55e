/* notify.h: alert delivery — webhooks through libcurl's multi interface on a libuv loop
 * thread, and the log notifier.
 *
 * The notifier knows nothing of alerts or SQL: it is handed deliveries (an id, a destination,
 * an ordering key, a body) and reports each attempt's result through one callback, on its
 * loop thread; the caller records results durably (the outbox) and resubmits what was pending
 * after a restart, with the attempts already made.
 *
 * Guarantees and policies:
 *  - at least once: a delivery is retried until a 2xx, or until max_attempts attempts have
 *    failed (then NOTIFY_DEAD: the caller dead-letters it);
 *  - in order per key: deliveries with the same order key (an alert id) go one at a time, in
 *    submit order, so a `resolved` never overtakes its `firing`;
 *  - retries: exponential backoff with full jitter (NOTIFY_RETRY_BASE_MS doubling up to
 *    NOTIFY_RETRY_MAX_MS), never sooner than a Retry-After the receiver sent;
 *  - one destination never holds up another: all requests run concurrently on the multi
 *    handle, each with the destination's timeout;
 *  - each destination has a circuit breaker: after NOTIFY_BREAKER_FAILURES consecutive
 *    failures it opens for a backoff (NOTIFY_BREAKER_MIN_MS doubling to NOTIFY_BREAKER_MAX_MS),
 *    during which its deliveries wait without consuming attempts; then one probe goes out, and
 *    a success closes it.  So a receiver's outage does not dead-letter alerts.
 *  - bounds: NOTIFY_MAX_PENDING deliveries held (submit refuses more: the caller keeps them
 *    in the outbox and resubmits later), NOTIFY_MAX_INFLIGHT requests at once, bodies up to
 *    NOTIFY_BODY_MAX, response bodies discarded. */
#ifndef ERRQD_NOTIFY_H
#define ERRQD_NOTIFY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOTIFY_MAX_DESTS 64
#define NOTIFY_MAX_HEADERS 16
#define NOTIFY_NAME_MAX 64
#define NOTIFY_KEY_MAX 128
#define NOTIFY_URL_MAX 2048
#define NOTIFY_HEADER_MAX 1024
#define NOTIFY_BODY_MAX (64u * 1024)
#define NOTIFY_MAX_PENDING 4096
#define NOTIFY_MAX_INFLIGHT 64
#define NOTIFY_RETRY_BASE_MS 1000
#define NOTIFY_RETRY_MAX_MS (5 * 60 * 1000)
#define NOTIFY_BREAKER_FAILURES 3
#define NOTIFY_BREAKER_MIN_MS 1000
#define NOTIFY_BREAKER_MAX_MS (60 * 1000)
#define NOTIFY_MAX_STATS (2 * NOTIFY_MAX_DESTS) /* notifier names counted since start */
#define NOTIFY_TURN_MS 1000                     /* the loop turns at least this often (liveness) */

enum notify_type {
	NOTIFY_WEBHOOK = 0,
	NOTIFY_LOG = 1,
	NOTIFY_ALERTMANAGER,
	NOTIFY_SLACK,
	NOTIFY_PAGERDUTY,
	NOTIFY_EMAIL,
};
#define NOTIFY_TEMPLATE_SZ 2049 /* RULES_TEMPLATE_MAX + 1 */
#define NOTIFY_SECRET_SZ 257    /* RULES_SECRET_MAX + 1 */
#define NOTIFY_MAIL_SZ 255      /* RULES_MAIL_ADDR_MAX + 1 */
#define NOTIFY_PATH_SZ 1024     /* RULES_PATH_MAX */
#define NOTIFY_MAX_MAIL_TO 8
/* Alertmanager re-posts (notify_kinds.h refresh_ms) held at once: past it a firing alert is
 * not re-posted (a warning is logged; Alertmanager resolves it when its endsAt passes) */
#define NOTIFY_MAX_REFRESH 4096

struct notify_dest {
	char name[NOTIFY_NAME_MAX];
	int type;                 /* enum notify_type */
	char url[NOTIFY_URL_MAX]; /* webhook */
	uint32_t timeout_ms;      /* per request */
	uint32_t max_attempts;
	size_t n_headers;
	char headers[NOTIFY_MAX_HEADERS][NOTIFY_HEADER_MAX]; /* "Name: value" */
	char secret[256];         /* HMAC-SHA256 key; "" = unsigned */
	/* the integrations (notify_kinds.c); "" / 0 where unused */
	char template_text[NOTIFY_TEMPLATE_SZ]; /* slack, pagerduty, email ("" = the type's default) */
	char subject[NOTIFY_TEMPLATE_SZ];       /* email */
	char link_template[NOTIFY_TEMPLATE_SZ];
	uint32_t resend_ms;                     /* alertmanager */
	char routing_key[NOTIFY_SECRET_SZ];     /* pagerduty; secret: never logged */
	char mail_from[NOTIFY_MAIL_SZ];
	char mail_to[NOTIFY_MAX_MAIL_TO][NOTIFY_MAIL_SZ];
	size_t n_mail_to;
	int starttls_required;
	char username[NOTIFY_SECRET_SZ], password[NOTIFY_SECRET_SZ]; /* password: secret */
	char ca_file[NOTIFY_PATH_SZ];           /* TLS: the CA bundle to verify with; "" = the system's */
};

struct notify_delivery {
	uint64_t id;                          /* the caller's (outbox row) */
	char dest[NOTIFY_NAME_MAX];
	char order_key[NOTIFY_KEY_MAX];       /* one at a time per key, in submit order */
	char idempotency_key[NOTIFY_KEY_MAX]; /* sent as Idempotency-Key */
	uint32_t attempts;                    /* already made (after a restart) */
	uint64_t not_before_ns;               /* realtime; 0 = now */
	size_t body_len;
	char body[];                          /* JSON */
};

enum notify_result { NOTIFY_DELIVERED, NOTIFY_RETRY, NOTIFY_DEAD };

struct notify_report {
	uint64_t id;
	enum notify_result result;
	uint32_t attempts;    /* made so far, this one included */
	uint64_t retry_at_ns; /* NOTIFY_RETRY: realtime of the next attempt */
	long http_status;     /* 0 when no response */
	char error[256];      /* why it failed, "" when delivered */
	char dest[NOTIFY_NAME_MAX]; /* the notifier (its failures are logged per notifier) */
};

/* Called on the notifier's loop thread after every attempt. */
typedef void (*notify_report_fn)(void *ctx, const struct notify_report *r);

/* Timing, for tests to shrink (NULL: the NOTIFY_* defaults). */
struct notify_opts {
	uint32_t retry_base_ms, retry_max_ms, breaker_min_ms, breaker_max_ms;
};

struct notifier;
int notify_start(struct notifier **out, notify_report_fn fn, void *ctx, const struct notify_opts *o, char *err,
		 size_t errsz);
/* Replaces the destinations (a reload); deliveries to a removed one are reported DEAD. */
int notify_set_dests(struct notifier *n, const struct notify_dest *d, size_t count);
/* Takes d (malloc'd by the caller with notify_delivery_new) on success; -1 when
 * NOTIFY_MAX_PENDING are held or the notifier is stopping (the caller keeps d). */
int notify_submit(struct notifier *n, struct notify_delivery *d);
struct notify_delivery *notify_delivery_new(const char *body, size_t len);
/* After a restart: d (a firing already delivered, its id 0) is re-posted at once and then
 * every resend period of its destination while it stays its alert's latest notice, as the
 * loop does after delivering a firing to a type that re-posts (Alertmanager).  Takes d; -1
 * when the notifier is stopping (the caller keeps d).  Past NOTIFY_MAX_REFRESH it is dropped
 * with a warning. */
int notify_refresh(struct notifier *n, struct notify_delivery *d);
/* Whether firing alerts are re-posted (notify_refresh, and a firing delivered to a type that
 * re-posts), true at start.  A collector that stops leading a fleet turns them off: the
 * re-posts it holds end before their next attempt (the loop drops them when it next looks at
 * them), and the new leader re-posts.  Any thread. */
void notify_set_refresh(struct notifier *n, bool on);
/* Stops the loop: requests in flight are aborted (not reported), pending deliveries dropped
 * (they are in the caller's outbox).  Accepts NULL. */
void notify_stop(struct notifier *n);

/* Attempts per notifier since start, by name (the counts survive reloads).  A notifier's
 * attempt is sent (2xx) or failed; a failed one is then retried or dead-lettered. */
struct notify_dest_stats {
	char name[NOTIFY_NAME_MAX];
	uint64_t sent, failed, retried, dead;
};
/* Copies up to max rows into out; returns how many.  Any thread. */
size_t notify_get_stats(struct notifier *n, struct notify_dest_stats *out, size_t max);
/* errq_mono_ns() of the loop's last turn (a health_turn_fn; ctx is the notifier). */
uint64_t notify_last_turn(void *ctx);

/* HMAC-SHA256 signature header value over "timestamp.body": "t=<ts>,v1=<hex>". */
void notify_sign(const char *secret, uint64_t ts, const char *body, size_t len, char out[160]);
#endif
