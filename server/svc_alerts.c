/* svc_alerts.c: errq.v1.Alerts, the alerting API behind the errq CLI (see svc_alerts.h): the
 * service's life, its registration, and the helpers its handlers share (svc_alerts_int.h). */
#include "svc_alerts_int.h"

#include "errq_banned.h"

/* ---- messages built in an arena ---- */

ProtobufCBinaryData svc_alerts__bid(struct build *b, const uint8_t *id)
{
	ProtobufCBinaryData o = {0, NULL};
	if (id && (o.data = errq_arena_alloc(&b->a, 16))) {
		memcpy(o.data, id, 16);
		o.len = 16;
	}
	return o;
}

Errq__V1__CircuitState svc_alerts__state_msg(int st)
{
	return st == CIRCUIT_OPEN ? ERRQ__V1__CIRCUIT_STATE__CIRCUIT_OPEN
	       : st == CIRCUIT_HALF_OPEN ? ERRQ__V1__CIRCUIT_STATE__CIRCUIT_HALF_OPEN
					 : ERRQ__V1__CIRCUIT_STATE__CIRCUIT_CLOSED;
}

/* "closed" | "open" | "half_open" -> the state, "" -> -1 (any), else -2. */
int svc_alerts__state_parse(const char *s)
{
	if (!*s)
		return -1;
	for (int st = CIRCUIT_CLOSED; st <= CIRCUIT_HALF_OPEN; st++)
		if (!strcmp(s, circuit_state_name((enum circuit_state)st)))
			return st;
	return -2;
}

/* The rules in force (an empty set without an engine); give them back with rules_put. */
const struct alerts_rules *svc_alerts__rules_get(struct alerts_svc *svc)
{
	return svc->alerts ? alerts_rules_get(svc->alerts) : NULL;
}

void svc_alerts__rules_put(struct alerts_svc *svc, const struct alerts_rules *r)
{
	if (r)
		alerts_rules_put(svc->alerts, r);
}

const struct rule *svc_alerts__rule_named(const struct alerts_rules *r, const char *name)
{
	return r ? rules_find(r->rs, name) : NULL;
}

/* ---- storage: none ---- */

#define NO_STORAGE "this collector runs with 'storage: none' and keeps no circuits, alerts or silences"

static grpc_status_code no_storage(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	errq_snprintf(details, dsz, "%s", NO_STORAGE);
	return GRPC_STATUS_FAILED_PRECONDITION;
}

static void no_storage_async(void *ctx, struct unary_call *uc, grpc_slice req)
{
	transport_unary_reply(uc, GRPC_STATUS_FAILED_PRECONDITION, NO_STORAGE, NULL);
}

struct alerts_svc *alerts_svc_new(const struct alerts_svc_opts *o)
{
	struct alerts_svc *svc = calloc(1, sizeof(*svc));
	if (!svc)
		return NULL;
	svc->alerts = o->alerts;
	svc->auth = o->auth;
	svc->db_path = o->db_path ? strdup(o->db_path) : NULL;
	if ((o->db_path && !svc->db_path) || svc_readers_init(&svc->readers, svc->db_path)) {
		free(svc->db_path);
		free(svc);
		return NULL;
	}
	return svc;
}

int alerts_svc_register(struct alerts_svc *svc, struct transport *t)
{
	bool none = svc->db_path == NULL;
	if (transport_add_unary(t, "/errq.v1.Alerts/ListCircuits", none ? no_storage : svc_alerts__list_circuits, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/ExplainCircuit", none ? no_storage : svc_alerts__explain_circuit, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/ListAlerts", none ? no_storage : svc_alerts__list_alerts, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/GetAlert", none ? no_storage : svc_alerts__get_alert, svc) ||
	    transport_add_unary_async(t, "/errq.v1.Alerts/ReplayAlert", none ? no_storage_async : svc_alerts__replay_alert, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/ListRules", svc_alerts__list_rules, svc) ||
	    transport_add_unary_async(t, "/errq.v1.Alerts/ReloadRules", svc_alerts__reload_rules, svc) ||
	    transport_add_unary_async(t, "/errq.v1.Alerts/AddSilence", none ? no_storage_async : svc_alerts__add_silence, svc) ||
	    transport_add_unary(t, "/errq.v1.Alerts/ListSilences", none ? no_storage : svc_alerts__list_silences, svc) ||
	    transport_add_unary_async(t, "/errq.v1.Alerts/ExpireSilence", none ? no_storage_async : svc_alerts__expire_silence,
				      svc))
		return -1;
	return 0;
}

void alerts_svc_free(struct alerts_svc *svc)
{
	if (!svc)
		return;
	/* the queue threads (and the writer) have exited: their readers were closed by the key's
	 * destructor */
	svc_readers_destroy(&svc->readers);
	free(svc->db_path);
	free(svc);
}
