/* svc_alerts_int.h: private to server/svc_alerts*.c: the service's state, its limits, and the
 * helpers its handlers share.
 *
 * Reads run on the completion-queue threads, each with its own read-only SQLite connection
 * (pthread key; closed when the thread exits), one short statement at a time: a listing is
 * read whole into an arena first, and what decorates its rows (deliveries, silences) is
 * read after, never while a statement is open.  The live figures of a circuit (failures in
 * the window now, the next transition) come from its saved state (circuit_load) under the
 * rule in force, when that rule still has the definition the circuit was saved with.
 *
 * Writes go to the rule engine (alerts_reload, alerts_replay, alerts_silence_*), which
 * answers on the writer thread; the answer callback replies to the call.  When the engine
 * cannot take the request it says so by its return value (the callback never runs) and the
 * handler replies at once (write_refused).  A silence is read back after the
 * write, through a reader connection of the answering thread. */
#ifndef ERRQD_SVC_ALERTS_INT_H
#define ERRQD_SVC_ALERTS_INT_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "svc_common.h"
#include "circuit.h"
#include "errq/v1/alerts.pb-c.h"
#include "errq_arena.h"
#include "errq_grpc.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "rules.h"
#include "services.h"
#include "storage.h"
#include "storage_alerts.h"
#include "svc_alerts.h"
#include "transport.h"

#define ALERTS_SVC_MAX_RESPONSE_BYTES (4u << 20) /* a response stops growing here */
#define ALERTS_SVC_CIRCUITS_LISTED 10000         /* ListCircuits answers at most this many */
#define ALERTS_SVC_DEFAULT_TRANSITIONS 100
#define ALERTS_SVC_NOTIFIERS_LISTED 64           /* notifiers shown per alert in listings */
#define ALERTS_SVC_DELIVERIES_LISTED 1000        /* GetAlert: the newest rows of an alert */
#define ALERTS_SVC_DETAILS_MAX 1024
#define ALERTS_SVC_KEY_IN_MAX (2 * RULES_KEY_MAX) /* a key as typed (escapes optional) */
#define ALERTS_SVC_FIELD_MAX (RULES_DETAIL_KEY_MAX + 16)
/* "field=glob" with every byte of the glob escaped, for each match entry */
#define ALERTS_SVC_MATCH_MAX (RULES_MAX_MATCH * (ALERTS_SVC_FIELD_MAX + 2 * RULES_GLOB_MAX + 2))
#define ALERTS_SVC_TRIP_MAX 160

struct alerts_svc {
	char *db_path; /* NULL: storage none */
	struct alerts *alerts;
	struct auth *auth; /* NULL: open (the reload log names no caller) */
	struct svc_readers readers;
};

/* silences read for a listing (svc_alerts_alert.c) or after a write (svc_alerts_write.c) */
struct silences_ctx {
	struct build *b;
	uint64_t now;
	Errq__V1__Silence **items;
	size_t n;
	bool oom;
};

/* svc_alerts.c */
ProtobufCBinaryData svc_alerts__bid(struct build *b, const uint8_t *id);
Errq__V1__CircuitState svc_alerts__state_msg(int st);
int svc_alerts__state_parse(const char *s);
const struct alerts_rules *svc_alerts__rules_get(struct alerts_svc *svc);
void svc_alerts__rules_put(struct alerts_svc *svc, const struct alerts_rules *r);
const struct rule *svc_alerts__rule_named(const struct alerts_rules *r, const char *name);

/* svc_alerts_circuit.c */
grpc_status_code svc_alerts__list_circuits(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz);
grpc_status_code svc_alerts__explain_circuit(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details,
					size_t dsz);

/* svc_alerts_alert.c */
Errq__V1__Silence *svc_alerts__silence_msg(struct build *b, const struct store_silence *si, uint64_t now);
int svc_alerts__silence_row(void *arg, const struct store_silence *si);
grpc_status_code svc_alerts__list_alerts(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz);
grpc_status_code svc_alerts__get_alert(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz);
grpc_status_code svc_alerts__list_silences(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details,
				      size_t dsz);

/* svc_alerts_rule.c */
grpc_status_code svc_alerts__list_rules(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz);

/* svc_alerts_write.c */
void svc_alerts__replay_alert(void *ctx, struct unary_call *uc, grpc_slice req);
void svc_alerts__reload_rules(void *ctx, struct unary_call *uc, grpc_slice req);
void svc_alerts__add_silence(void *ctx, struct unary_call *uc, grpc_slice req);
void svc_alerts__expire_silence(void *ctx, struct unary_call *uc, grpc_slice req);

#endif
