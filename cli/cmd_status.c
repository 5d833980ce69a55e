/* cmd_status.c: `errq status`: the collector's own state (Query.Status): version, name,
 * uptime, what it stores, its ingest queue and streams, durability. */
#include "cli.h"

#include <string.h>

#include "errq/v1/query.pb-c.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

/* A difference between the collector's clock and ours worth a line: relative times in the
 * tables are computed here, against received_at times from there. */
#define CLI_SKEW_NOTE_NS (2 * ERRQ_NS_PER_SEC)

/* The collector's "now": its clock when it says, else ours. */
static uint64_t collector_now(const struct cli_ctx *ctx, const Errq__V1__StatusResponse *r)
{
	return r->now_unix_nano ? r->now_unix_nano : ctx->now_ns;
}

static json_t *status_json(const struct cli_ctx *ctx, const ProtobufCMessage *m)
{
	const Errq__V1__StatusResponse *r = (const Errq__V1__StatusResponse *)m;
	bool ok = true;
	uint64_t now = collector_now(ctx, r);
	json_t *o = json_object();
	if (!o)
		return NULL;
	cli_json_put(o, "version", cli_json_str(r->version), &ok);
	cli_json_put(o, "name", cli_json_str(r->name), &ok);
	cli_json_put(o, "started_at", cli_json_time(r->started_at_unix_nano), &ok);
	cli_json_put(o, "now", cli_json_time(r->now_unix_nano), &ok);
	cli_json_put(o, "uptime_seconds",
		     r->started_at_unix_nano && now >= r->started_at_unix_nano
			 ? cli_json_uint((now - r->started_at_unix_nano) / ERRQ_NS_PER_SEC)
			 : json_null(),
		     &ok);
	cli_json_put(o, "events_total", cli_json_uint(r->events_total), &ok);
	cli_json_put(o, "groups_total", cli_json_uint(r->groups_total), &ok);
	cli_json_put(o, "database_bytes", cli_json_uint(r->database_bytes), &ok);
	cli_json_put(o, "events_stored", cli_json_uint(r->events_stored), &ok);
	cli_json_put(o, "events_duplicate", cli_json_uint(r->events_duplicate), &ok);
	cli_json_put(o, "events_deleted", cli_json_uint(r->events_deleted), &ok);
	cli_json_put(o, "overflow_events", cli_json_uint(r->overflow_events), &ok);
	json_t *ovs = json_array();
	for (size_t i = 0; ovs && i < r->n_overflow_services; i++) {
		const Errq__V1__ServiceOverflow *so = r->overflow_services[i];
		json_t *e = json_object();
		if (!e || json_array_append_new(ovs, e)) {
			ok = false;
			break;
		}
		cli_json_put(e, "service", cli_json_str(so->service), &ok);
		cli_json_put(e, "events", cli_json_uint(so->events), &ok);
		cli_json_put(e, "since", cli_json_time(so->since_unix_nano), &ok);
	}
	cli_json_put(o, "overflow_services", ovs, &ok);
	cli_json_put(o, "overflow_services_more", cli_json_uint(r->overflow_services_more), &ok);
	cli_json_put(o, "events_dropped", cli_json_uint(r->events_dropped), &ok);
	cli_json_put(o, "events_dropped_total", cli_json_uint(r->events_dropped_total), &ok);
	cli_json_put(o, "commits", cli_json_uint(r->commits), &ok);
	cli_json_put(o, "store_errors", cli_json_uint(r->store_errors), &ok);
	cli_json_put(o, "ingest_queue_batches", cli_json_uint(r->ingest_queue_batches), &ok);
	cli_json_put(o, "ingest_queue_capacity", cli_json_uint(r->ingest_queue_capacity), &ok);
	cli_json_put(o, "ingest_queue_max_batches", cli_json_uint(r->ingest_queue_max_batches), &ok);
	cli_json_put(o, "ingest_queue_bytes", cli_json_uint(r->ingest_queue_bytes), &ok);
	cli_json_put(o, "parked", cli_json_uint(r->parked), &ok);
	cli_json_put(o, "parked_total", cli_json_uint(r->parked_total), &ok);
	cli_json_put(o, "streams_active", cli_json_uint(r->streams_active), &ok);
	cli_json_put(o, "tail_subscribers", cli_json_uint(r->tail_subscribers), &ok);
	cli_json_put(o, "rss_bytes", cli_json_uint(r->rss_bytes), &ok);
	cli_json_put(o, "rules", cli_json_uint(r->rules), &ok);
	cli_json_put(o, "circuits", cli_json_uint(r->circuits), &ok);
	cli_json_put(o, "circuits_open", cli_json_uint(r->circuits_open), &ok);
	cli_json_put(o, "alerts_fired", cli_json_uint(r->alerts_fired), &ok);
	cli_json_put(o, "alerts_resolved", cli_json_uint(r->alerts_resolved), &ok);
	cli_json_put(o, "deliveries_delivered", cli_json_uint(r->deliveries_delivered), &ok);
	cli_json_put(o, "deliveries_dead", cli_json_uint(r->deliveries_dead), &ok);
	cli_json_put(o, "deliveries_in_flight", cli_json_uint(r->deliveries_in_flight), &ok);
	cli_json_put(o, "failures_matched", cli_json_uint(r->failures_matched), &ok);
	cli_json_put(o, "overflow_failures", cli_json_uint(r->overflow_failures), &ok);
	cli_json_put(o, "durability", cli_json_str(r->durability), &ok);
	cli_json_put(o, "storage", cli_json_str(r->storage), &ok);
	if (r->fleet) {
		cli_json_put(o, "fleet_leader", cli_json_str(r->fleet_leader), &ok);
		cli_json_put(o, "fleet_epoch", cli_json_uint(r->fleet_epoch), &ok);
		cli_json_put(o, "fleet_leading", json_boolean(r->fleet_leading), &ok);
	}
	return cli_json_done(o, ok);
}

static void status_detail(const struct cli_ctx *ctx, struct cli_detail *d, const ProtobufCMessage *m)
{
	const Errq__V1__StatusResponse *r = (const Errq__V1__StatusResponse *)m;
	char a[64], b[64], n1[48], n2[48], ts[ERRQ_RFC3339_BUFSZ];
	uint64_t now = collector_now(ctx, r);

	cli_detail_fieldf(d, "collector", CLI_STYLE_BOLD, "errqd %s%s%s%s at %s", *r->version ? r->version : "?",
			  *r->name ? " \"" : "", r->name, *r->name ? "\"" : "", ctx->args->addr);
	if (r->started_at_unix_nano && now >= r->started_at_unix_nano)
		cli_detail_fieldf(d, "uptime", CLI_STYLE_NONE, "%s (since %s)",
				  cli_fmt_span(a, sizeof(a), now - r->started_at_unix_nano),
				  errq_fmt_rfc3339(ts, r->started_at_unix_nano));
	cli_detail_fieldf(d, "events", CLI_STYLE_NONE, "%llu stored in %s", (unsigned long long)r->events_total,
			  cli_count(n1, sizeof(n1), r->groups_total, "group", "groups"));
	cli_detail_fieldf(d, "since start", CLI_STYLE_NONE,
			  "%llu stored, %s, %llu deleted (retention, per-group cap), %llu counted in "
			  "overflow groups",
			  (unsigned long long)r->events_stored,
			  cli_count(n1, sizeof(n1), r->events_duplicate, "duplicate", "duplicates"),
			  (unsigned long long)r->events_deleted, (unsigned long long)r->overflow_events);
	for (size_t i = 0; i < r->n_overflow_services; i++) /* groups_per_service passed: new fingerprints lumped */
		cli_detail_fieldf(d, i ? "" : "overflowing", CLI_STYLE_YELLOW,
				  "service \"%s\": %llu events in its overflow group, since %s",
				  r->overflow_services[i]->service, (unsigned long long)r->overflow_services[i]->events,
				  errq_fmt_rfc3339(ts, r->overflow_services[i]->since_unix_nano));
	if (r->overflow_services_more)
		cli_detail_fieldf(d, r->n_overflow_services ? "" : "overflowing", CLI_STYLE_YELLOW,
				  "%u more services passed groups_per_service", r->overflow_services_more);
	if (r->events_dropped || r->events_dropped_total)
		cli_detail_fieldf(d, "over quota", CLI_STYLE_YELLOW,
				  "%llu counted but not stored since start, %llu all time (quota_exceeded)",
				  (unsigned long long)r->events_dropped, (unsigned long long)r->events_dropped_total);
	if (!strcmp(r->storage, "none"))
		cli_detail_field(d, "database", "none: storage is off, events are counted and dropped",
				 CLI_STYLE_YELLOW);
	else
		cli_detail_fieldf(d, "database", CLI_STYLE_NONE, "%s%s%s",
				  cli_fmt_bytes(a, sizeof(a), r->database_bytes), *r->storage ? ", " : "", r->storage);
	const char *dur = "";
	if (!strcmp(r->durability, "full"))
		dur = ": what it acknowledged survives a power loss";
	else if (!strcmp(r->durability, "normal"))
		dur = ": what it acknowledged survives a crash, not a power loss";
	else if (!strcmp(r->durability, "server"))
		dur = ": PostgreSQL's (its synchronous_commit and fsync)";
	cli_detail_fieldf(d, "durability", CLI_STYLE_NONE, "%s%s", *r->durability ? r->durability : "?", dur);
	cli_detail_fieldf(d, "commits", r->store_errors ? CLI_STYLE_RED : CLI_STYLE_NONE,
			  "%llu, %llu failed (and retried)", (unsigned long long)r->commits,
			  (unsigned long long)r->store_errors);
	cli_detail_fieldf(d, "queue", r->ingest_queue_capacity && r->ingest_queue_batches >= r->ingest_queue_capacity
					   ? CLI_STYLE_RED
					   : CLI_STYLE_NONE,
			  "%u of %s (%s), at most %u so far", r->ingest_queue_batches,
			  cli_count(n1, sizeof(n1), r->ingest_queue_capacity, "batch", "batches"),
			  cli_fmt_bytes(b, sizeof(b), r->ingest_queue_bytes), r->ingest_queue_max_batches);
	cli_detail_fieldf(d, "parked", r->parked ? CLI_STYLE_YELLOW : CLI_STYLE_NONE,
			  "%s waiting for room now, %s since start",
			  cli_count(n1, sizeof(n1), r->parked, "stream", "streams"),
			  cli_count(n2, sizeof(n2), r->parked_total, "time", "times"));
	cli_detail_fieldf(d, "streams", CLI_STYLE_NONE, "%u active, %u tailing", r->streams_active,
			  r->tail_subscribers);
	if (strcmp(r->storage, "none"))
		cli_detail_fieldf(d, "alerting", r->circuits_open ? CLI_STYLE_YELLOW : CLI_STYLE_NONE,
				  "%s, %s (%u not closed); since start %llu fired, %llu resolved",
				  cli_count(n1, sizeof(n1), r->rules, "rule", "rules"),
				  cli_count(n2, sizeof(n2), r->circuits, "circuit", "circuits"), r->circuits_open,
				  (unsigned long long)r->alerts_fired,
				  (unsigned long long)r->alerts_resolved);
	if (r->fleet)
		cli_detail_fieldf(d, "fleet", r->fleet_epoch ? CLI_STYLE_NONE : CLI_STYLE_YELLOW,
				  "%s; the rule engine's leader: %s%s%s (epoch %llu)",
				  r->fleet_leading ? "this collector leads" : "this collector follows",
				  *r->fleet_leader ? "\"" : "", *r->fleet_leader ? r->fleet_leader : "none yet",
				  *r->fleet_leader ? "\"" : "", (unsigned long long)r->fleet_epoch);
	if (strcmp(r->storage, "none") && (r->deliveries_delivered || r->deliveries_dead || r->deliveries_in_flight))
		cli_detail_fieldf(d, "deliveries", r->deliveries_dead ? CLI_STYLE_RED : CLI_STYLE_NONE,
				  "%llu delivered, %llu dead-lettered since start, %u in flight",
				  (unsigned long long)r->deliveries_delivered, (unsigned long long)r->deliveries_dead,
				  r->deliveries_in_flight);
	if (r->rss_bytes)
		cli_detail_fieldf(d, "memory", CLI_STYLE_NONE, "%s resident",
				  cli_fmt_bytes(a, sizeof(a), r->rss_bytes));
	if (r->now_unix_nano) {
		uint64_t skew = r->now_unix_nano > ctx->now_ns ? r->now_unix_nano - ctx->now_ns
							       : ctx->now_ns - r->now_unix_nano;
		if (skew >= CLI_SKEW_NOTE_NS)
			cli_detail_fieldf(d, "clock", CLI_STYLE_YELLOW,
					  "the collector's clock is %s %s this host's (relative times are this host's)",
					  cli_fmt_span(a, sizeof(a), skew),
					  r->now_unix_nano > ctx->now_ns ? "ahead of" : "behind");
	}
}

int cli_cmd_status(struct cli_ctx *ctx)
{
	Errq__V1__StatusRequest req = ERRQ__V1__STATUS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int rc = cli_call(ctx, "/errq.v1.Query/Status", &req.base, &errq__v1__status_response__descriptor, &resp);
	if (!rc)
		rc = cli_print_item(ctx, resp, status_json, status_detail);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}
