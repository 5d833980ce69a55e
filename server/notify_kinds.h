/* notify_kinds.h: what differs between notifier types — the request built from a notice and
 * how a response is judged.  Everything else (the outbox row per notice and notifier,
 * retries, backoff, the per-destination breaker, dead letters, order per alert) is
 * notify.c's and the same for every type: a type is one entry of a table.
 *
 * A notice reaches the notifier as its webhook body (alerts_body.c, stored in the outbox);
 * a type's build() reads it with jansson and makes its own request from it at each attempt
 * (so Alertmanager's endsAt is computed from the time it is sent).  Loop thread only. */
#ifndef ERRQD_NOTIFY_KINDS_H
#define ERRQD_NOTIFY_KINDS_H
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "errq_str.h"
#include "notify.h"
#include "rules.h"

/* Bounds of what a type builds (each with its policy; docs/alerts.md "Bounds"). */
#define NOTIFY_REQ_BODY_MAX (64u * 1024)   /* a request body: past it the build fails (cannot happen:
					    * every part below is bounded), the attempt is refused */
#define NOTIFY_PD_SUMMARY_MAX 1024         /* PagerDuty's own limit on payload.summary: cut + "…" */
#define NOTIFY_MAIL_SUBJECT_MAX 200        /* a Subject before RFC 2047 encoding: cut + "…" */
#define NOTIFY_MAIL_LINE_MAX 998           /* RFC 5322: longer body lines are broken */
#define NOTIFY_LINK_MAX 2048               /* a rendered link_template: a longer one is left out */
#define NOTIFY_AM_ENDS_FACTOR 4            /* endsAt = now + 4 x resend_interval, as Prometheus does */

enum notify_verdict {
	NOTIFY_V_OK,      /* delivered */
	NOTIFY_V_REFUSED, /* the receiver answered and refused: retried up to max_attempts, then dead */
	NOTIFY_V_DOWN,    /* the receiver is not taking deliveries: retried, counts for the breaker */
};

struct notify_request {
	char url[NOTIFY_URL_MAX + 32];
	struct errq_buf body;      /* what is sent (the POST body, or the mail message) */
	struct curl_slist *hdrs;   /* HTTP headers */
	struct curl_slist *rcpt;   /* SMTP recipients */
	bool smtp;
	uint32_t refresh_ms;       /* > 0: re-send this request's notice every refresh_ms while it is
				    * the alert's latest (Alertmanager, while firing) */
	size_t sent;               /* SMTP: bytes of body handed to curl */
};

struct notify_kind {
	const char *name;
	/* Builds rq from the notice dv for destination d at realtime now_ns.  Returns 0, or -1
	 * with the reason in err (the attempt is then refused, never sent half-built). */
	int (*build)(const struct notify_dest *d, const struct notify_delivery *dv, uint64_t now_ns,
		     struct notify_request *rq, char *err, size_t errsz);
	enum notify_verdict (*classify)(CURLcode res, long code);
	bool refreshes; /* a delivered firing is re-posted (notify.c's refresh entries) */
};

/* The entry of a type (enum notify_type), NULL for NOTIFY_LOG (written, never requested). */
const struct notify_kind *notify_kind_of(int type);
void notify_request_init(struct notify_request *rq);
/* Frees what rq holds; rq may be re-initialised and reused. */
void notify_request_release(struct notify_request *rq);
/* Sets up e to send rq with d's timeout (HTTP POST, or SMTP upload). */
void notify_request_setopt(CURL *e, const struct notify_dest *d, struct notify_request *rq);
/* The config's notifier as the notifier's destination: the type, and the integrations' keys
 * (name, url, timeout, headers and secret are copied by the caller). */
int notify_type_of_rules(enum rules_notifier_type t);
void notify_dest_from_rules(struct notify_dest *d, const struct rules_notifier *n);
#endif
