/* svc_alerts.h: errq.v1.Alerts (proto/errq/v1/alerts.proto), the alerting API behind the
 * errq CLI: circuits, alerts and their deliveries, rules, silences.
 *
 * Reads (ListCircuits, ExplainCircuit, ListAlerts, GetAlert, ListRules, ListSilences) run on
 * the completion-queue threads through per-thread read-only store connections, like the
 * Query service.  Writes (ReplayAlert, ReloadRules, AddSilence, ExpireSilence) go to the rule
 * engine (alerts.h), which answers from the writer thread.  Without storage every method but
 * ListRules is FAILED_PRECONDITION; without an engine (alerting not configured) writes are
 * FAILED_PRECONDITION and ListRules is empty. */
#ifndef ERRQD_SVC_ALERTS_H
#define ERRQD_SVC_ALERTS_H
#include <stdint.h>

struct transport;
struct alerts;

#define ALERTS_SVC_SILENCE_MIN_NS UINT64_C(1000000000)                      /* 1 s */
#define ALERTS_SVC_SILENCE_MAX_NS (UINT64_C(90) * 86400 * UINT64_C(1000000000)) /* 90 d */
#define ALERTS_SVC_SILENCES_LISTED 1000 /* ListSilences answers at most this many */

struct alerts_svc_opts {
	const char *db_path;   /* NULL: storage none */
	struct alerts *alerts; /* NULL: alerting not configured */
	struct auth *auth;     /* NULL: open; names the caller of ReloadRules in the log */
};

struct alerts_svc;
struct alerts_svc *alerts_svc_new(const struct alerts_svc_opts *o);
int alerts_svc_register(struct alerts_svc *svc, struct transport *t);
/* After the transport's threads have exited.  Accepts NULL. */
void alerts_svc_free(struct alerts_svc *svc);
#endif
