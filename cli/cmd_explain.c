/* cmd_explain.c: `errq explain ID`: why an event is in its group (Query.ExplainEvent): the
 * basis of its fingerprint, the components hashed, and whether the collector's current
 * grouping algorithm still computes the same fingerprint. */
#include "cli.h"

#include <string.h>

#include "errq/v1/query.pb-c.h"
#include "errq_str.h"
#include "errq_banned.h"

/* What each basis means, for people. */
static const char *basis_text(const char *basis)
{
	if (!strcmp(basis, "client_fingerprint"))
		return "the fingerprint the client set, within the service: nothing else counts (not the error "
		       "type, the message or the frames)";
	if (!strcmp(basis, "frames"))
		return "the innermost application frames (functions and modules, never line numbers), with the "
		       "service and error type";
	if (!strcmp(basis, "message"))
		return "the message with its variable parts (numbers, ids, quoted values) replaced, with the "
		       "service and error type (the event has no frames)";
	return NULL;
}

static json_t *explain_json(const struct cli_ctx *ctx, const ProtobufCMessage *m)
{
	const Errq__V1__ExplainEventResponse *r = (const Errq__V1__ExplainEventResponse *)m;
	bool ok = true;
	json_t *o = json_object(), *comps = json_array();
	if (!o || !comps) {
		ok = false;
		goto out;
	}
	for (size_t k = 0; k < r->n_components; k++)
		if (json_array_append_new(comps, cli_json_str(r->components[k])))
			ok = false;
	if (r->event)
		cli_json_put(o, "event_id", cli_json_hex(r->event->event_id), &ok);
	cli_json_put(o, "fingerprint", cli_json_str(r->fingerprint), &ok);
	cli_json_put(o, "grouping_version", json_integer(r->grouping_version), &ok);
	cli_json_put(o, "basis", cli_json_str(r->basis), &ok);
	cli_json_put(o, "components", comps, &ok);
	comps = NULL;
	cli_json_put(o, "recomputed", *r->recomputed ? cli_json_str(r->recomputed) : json_null(), &ok);
	cli_json_put(o, "agrees", *r->recomputed ? json_boolean(!strcmp(r->recomputed, r->fingerprint)) : json_null(),
		     &ok);
	cli_json_put(o, "event", r->event ? cli_event_json(ctx, &r->event->base) : json_null(), &ok);
out:
	json_decref(comps);
	return cli_json_done(o, ok);
}

static void explain_detail(const struct cli_ctx *ctx, struct cli_detail *d, const ProtobufCMessage *m)
{
	const Errq__V1__ExplainEventResponse *r = (const Errq__V1__ExplainEventResponse *)m;
	const char *why = basis_text(r->basis);
	if (r->event) {
		char id[2 * CLI_EVENT_ID_LEN + 1];
		ProtobufCBinaryData b = r->event->event_id;
		errq_hex_encode(b.data, b.len < CLI_EVENT_ID_LEN ? b.len : CLI_EVENT_ID_LEN, id);
		cli_detail_field(d, "event", id, CLI_STYLE_NONE);
		cli_detail_fieldf(d, "", CLI_STYLE_DIM, "%s %s: %s", r->event->service, r->event->error_type,
				  r->event->message);
	}
	if (r->grouping_version)
		cli_detail_fieldf(d, "group", CLI_STYLE_BOLD, "%s (grouping version %u)", r->fingerprint,
				  r->grouping_version);
	else
		cli_detail_field(d, "group", r->fingerprint, CLI_STYLE_BOLD);
	if (why)
		cli_detail_fieldf(d, "basis", CLI_STYLE_NONE, "%s: %s", r->basis, why);
	else
		cli_detail_field(d, "basis", *r->basis ? r->basis : "unknown", CLI_STYLE_NONE);
	if (!*r->recomputed)
		cli_detail_field(d, "now", "the collector did not recompute the fingerprint", CLI_STYLE_DIM);
	else if (!strcmp(r->recomputed, r->fingerprint))
		cli_detail_fieldf(d, "now", CLI_STYLE_GREEN, "%s: the current grouping agrees", r->recomputed);
	else
		cli_detail_fieldf(d, "now", CLI_STYLE_YELLOW,
				  "%s: the current grouping would put this event in another group (the stored event "
				  "stays in %s)",
				  r->recomputed, r->fingerprint);
	if (r->n_components) {
		cli_detail_section(d, "components (hashed in this order)");
		for (size_t k = 0; k < r->n_components; k++)
			cli_detail_text(d, r->components[k], CLI_STYLE_NONE);
	}
}

int cli_cmd_explain(struct cli_ctx *ctx)
{
	Errq__V1__GetEventRequest req = ERRQ__V1__GET_EVENT_REQUEST__INIT;
	uint8_t id[CLI_EVENT_ID_LEN];
	char hex[2 * CLI_EVENT_ID_LEN + 1];
	ProtobufCMessage *resp = NULL;
	int rc = cli_arg_event_id(ctx, id);
	if (rc)
		goto out;
	req.event_id.data = id;
	req.event_id.len = sizeof(id);
	errq_hex_encode(id, sizeof(id), hex);
	errq_snprintf(ctx->what, sizeof(ctx->what), "event %s", hex);
	rc = cli_call(ctx, "/errq.v1.Query/ExplainEvent", &req.base, &errq__v1__explain_event_response__descriptor,
		      &resp);
	if (!rc)
		rc = cli_print_item(ctx, resp, explain_json, explain_detail);
out:
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}
