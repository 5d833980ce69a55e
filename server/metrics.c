/* metrics.c: histograms, the Prometheus text format, and errqd's metrics (metrics.h).
 *
 * metrics_collect runs on the HTTP listener's thread.  It copies each module's counters
 * under that module's lock (ingest, alerts, notifier) or from atomics (report service), and
 * reads the database totals through its own read-only connection, in one short read
 * transaction (svc_common.h), so a scrape never waits for the writer nor pins the WAL. */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts.h"
#include "fleet.h"
#include "diskguard.h"
#include "errq_time.h"
#include "health.h"
#include "ingest.h"
#include "quota.h"
#include "services.h"
#include "storage.h"
#include "svc_common.h"
#include "tail.h"
#include "tail_fleet.h"
#include "tls.h"

/* ---- histograms ---- */

void metrics_hist_init(struct metrics_hist *h, const double *bounds, size_t n_bounds)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->n_bounds = n_bounds < METRICS_HIST_MAX_BUCKETS ? n_bounds : METRICS_HIST_MAX_BUCKETS;
}

void metrics_hist_observe(struct metrics_hist *h, double v)
{
	size_t i = 0;
	while (i < h->n_bounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->sum += v;
	h->count++;
}

/* ---- the text format ---- */

/* The shortest text that reads back as v (0.1, not 0.10000000000000001). */
static void add_double(struct errq_buf *b, double v)
{
	char tmp[40];
	if (v == (double)(int64_t)v && v > -1e15 && v < 1e15) { /* whole: 10, not 1e+01 */
		errq_buf_printf(b, "%lld", (long long)v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	errq_buf_addstr(b, tmp);
}

void prom_family(struct errq_buf *b, const char *name, const char *type, const char *help)
{
	errq_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_head(struct errq_buf *b, const char *name, const char *suffix, const char *labels)
{
	errq_buf_printf(b, "%s%s", name, suffix);
	if (labels && *labels)
		errq_buf_printf(b, "{%s}", labels);
	errq_buf_addstr(b, " ");
}

void prom_sample(struct errq_buf *b, const char *name, const char *labels, double v)
{
	sample_head(b, name, "", labels);
	if (isnan(v))
		errq_buf_addstr(b, "NaN\n");
	else if (isinf(v))
		errq_buf_addstr(b, v > 0 ? "+Inf\n" : "-Inf\n");
	else {
		add_double(b, v);
		errq_buf_addstr(b, "\n");
	}
}

void prom_sample_u64(struct errq_buf *b, const char *name, const char *labels, uint64_t v)
{
	sample_head(b, name, "", labels);
	errq_buf_printf(b, "%llu\n", (unsigned long long)v);
}

void prom_hist(struct errq_buf *b, const char *name, const char *labels, const struct metrics_hist *h)
{
	uint64_t cum = 0;
	const char *sep = labels && *labels ? "," : "";
	for (size_t i = 0; i <= h->n_bounds; i++) {
		cum += h->counts[i];
		errq_buf_printf(b, "%s_bucket{%s%s", name, labels ? labels : "", sep);
		if (i < h->n_bounds) {
			errq_buf_addstr(b, "le=\"");
			add_double(b, h->bounds[i]);
			errq_buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
		} else
			errq_buf_printf(b, "le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	sample_head(b, name, "_sum", labels);
	add_double(b, h->sum);
	errq_buf_addstr(b, "\n");
	sample_head(b, name, "_count", labels);
	errq_buf_printf(b, "%llu\n", (unsigned long long)h->count);
}

void prom_label_value(struct errq_buf *b, const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\\')
			errq_buf_addstr(b, "\\\\");
		else if (*p == '"')
			errq_buf_addstr(b, "\\\"");
		else if (*p == '\n')
			errq_buf_addstr(b, "\\n");
		else
			errq_buf_add(b, p, 1);
	}
}

/* ---- the process ---- */

uint64_t metrics_rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	uint64_t n = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n ? n - 1 : 0; /* not the directory's own descriptor */
}

/* ---- errqd's metrics ---- */

struct metrics {
	struct metrics_sources src;
	struct svc_readers readers;
};

struct metrics *metrics_new(const struct metrics_sources *src)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->src = *src;
	if (svc_readers_init(&m->readers, src->db_path)) {
		free(m);
		return NULL;
	}
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	svc_readers_destroy(&m->readers);
	free(m);
}

/* A family of one unlabelled sample. */
static void one(struct errq_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	prom_family(b, name, type, help);
	prom_sample_u64(b, name, "", v);
}
#define COUNTER(b, name, help, v) one(b, name, "counter", help, v)
#define GAUGE(b, name, help, v) one(b, name, "gauge", help, v)

static void collect_ingest(struct metrics *m, struct errq_buf *b)
{
	struct report_stats_snapshot rs;
	struct ingest_stats st;
	report_svc_get_stats(m->src.rs, &rs);
	ingest_get_stats(m->src.ig, &st);
	COUNTER(b, "errq_events_received_total", "Events in the batches read from Report streams.", rs.events_received);
	COUNTER(b, "errq_events_accepted_total", "Events committed as new (acknowledged as accepted).", st.events_stored);
	COUNTER(b, "errq_events_duplicate_total", "Events whose event_id was already stored.", st.events_duplicate);
	prom_family(b, "errq_events_rejected_total", "counter", "Events rejected alone, by reason code.");
	for (int i = 0; i <= VALIDATE_N_REJECT_CODES; i++) {
		if (i == VALIDATE_N_REJECT_CODES && !rs.rejected[i])
			break; /* "other" only when something unforeseen was counted */
		char labels[64];
		errq_snprintf(labels, sizeof(labels), "reason=\"%s\"",
			      i < VALIDATE_N_REJECT_CODES ? validate_reject_codes[i] : "other");
		prom_sample_u64(b, "errq_events_rejected_total", labels, rs.rejected[i]);
	}
	COUNTER(b, "errq_batches_received_total", "Report batches read and decoded.", rs.batches_received);
	prom_family(b, "errq_batches_failed_total", "counter",
		    "Report batches that ended their stream: malformed (INVALID_ARGUMENT) or too large (RESOURCE_EXHAUSTED).");
	prom_sample_u64(b, "errq_batches_failed_total", "reason=\"malformed\"", rs.batches_malformed);
	prom_sample_u64(b, "errq_batches_failed_total", "reason=\"too_large\"", rs.batches_too_large);
	COUNTER(b, "errq_batches_committed_total", "Report batches committed and answered.", st.batches);
	COUNTER(b, "errq_commits_total", "Ingest transactions committed.", st.commits);
	COUNTER(b, "errq_store_errors_total", "Ingest transactions that failed (locked: retried; disk full, unwritable or database unavailable: batches given back; nothing acknowledged).",
		st.store_errors);
	COUNTER(b, "errq_upkeep_errors_total", "Upkeep rounds (retention, per-group cap) that failed.", st.maint_errors);
	GAUGE(b, "errq_streams_active", "Report streams open now.", report_svc_streams(m->src.rs));
	GAUGE(b, "errq_ingest_queue_batches", "Batches in the ingest queue now (queued or being written).",
	      st.queued_batches);
	GAUGE(b, "errq_ingest_queue_capacity_batches", "The ingest queue's bound in batches.",
	      m->src.queue_capacity_batches);
	GAUGE(b, "errq_ingest_queue_bytes", "Bytes of decoded batches in the ingest queue now.", st.queued_bytes);
	GAUGE(b, "errq_ingest_queue_capacity_bytes", "The ingest queue's bound in bytes.", m->src.queue_capacity_bytes);
	GAUGE(b, "errq_ingest_queue_max_batches", "The most batches the ingest queue held since start.",
	      st.max_queued_batches);
	GAUGE(b, "errq_ingest_parked_streams", "Streams waiting for room in the ingest queue now (backpressure).",
	      st.parked);
	COUNTER(b, "errq_ingest_parked_total", "Times a stream had to wait for room in the ingest queue.", st.parked_total);
	prom_family(b, "errq_commit_duration_seconds", "histogram",
		    "Time from the start of an ingest transaction to its commit.");
	prom_hist(b, "errq_commit_duration_seconds", "", &st.commit_seconds);
	prom_family(b, "errq_commit_events", "histogram", "Events per committed ingest transaction (group commit size).");
	prom_hist(b, "errq_commit_events", "", &st.commit_events);
	COUNTER(b, "errq_retention_deleted_events_total", "Events deleted by retention.", st.events_deleted_retention);
	COUNTER(b, "errq_group_cap_deleted_events_total", "Events deleted by the per-group cap (events_per_group).",
		st.events_deleted_cap);
	COUNTER(b, "errq_overflow_events_total", "Events counted in a service's overflow group (groups_per_service).",
		st.overflow_events);
	COUNTER(b, "errq_group_cache_misses_total",
		"Fingerprints the writer's group cache did not hold (each one a lookup in the database).",
		st.group_lookups);
	COUNTER(b, "errq_aggregate_generations_total",
		"Generations of deferred group and minute counts closed for writing (about one a second under load).",
		st.agg_generations);
	COUNTER(b, "errq_events_dropped_total",
		"Events refused by a quota (quota_exceeded): counted in their group and service, not stored.",
		st.events_dropped);
	struct quota_stats qs;
	quota_get_stats(m->src.quota, &qs);
	prom_family(b, "errq_quota_rejected_total", "counter",
		    "Events refused by a quota, by the bucket that was empty (service or global).");
	prom_sample_u64(b, "errq_quota_rejected_total", "bucket=\"service\"", qs.rejected_service);
	prom_sample_u64(b, "errq_quota_rejected_total", "bucket=\"global\"", qs.rejected_global);
	GAUGE(b, "errq_quota_services", "Services with a bucket of their own now (the table holds 4096).", qs.services);
	COUNTER(b, "errq_quota_shared_events_total",
		"Events of services that found no bucket of their own and shared one (the table was full).",
		qs.shared_events);
	GAUGE(b, "errq_tail_subscribers", "errq tail streams open now.", tail_hub_subscribers(m->src.tail));
	if (m->src.tail_fleet) {
		uint64_t fe, fm;
		tail_fleet_stats(m->src.tail_fleet, &fe, &fm);
		COUNTER(b, "errq_tail_fleet_events_total",
			"Events other collectors committed, read back and published to the tail (PostgreSQL).", fe);
		COUNTER(b, "errq_tail_fleet_missed_total",
			"Events other collectors committed that the tail knows it could not bring (PostgreSQL).", fm);
	}
}

/* The bounds on what clients may make errqd hold or write (docs/operations.md, "Limits"). */
static void collect_limits(struct metrics *m, struct errq_buf *b)
{
	struct ingest_stats st;
	struct report_stats_snapshot rs;
	ingest_get_stats(m->src.ig, &st);
	report_svc_get_stats(m->src.rs, &rs);
	GAUGE(b, "errq_ingest_decoded_bytes",
	      "Decoded bytes held or reserved for decoding now, all streams (bounded by ingest_queue_bytes).",
	      st.decoded_bytes);
	GAUGE(b, "errq_report_answer_bytes", "Bytes of Report answers held now (built or reserved, not yet taken by the clients).",
	      rs.answer_bytes);
	COUNTER(b, "errq_report_answer_paused_total",
		"Times a Report stream stopped being read because its answers were over their byte bound.",
		rs.answer_paused_total);
	COUNTER(b, "errq_report_answer_ended_total",
		"Report streams ended with RESOURCE_EXHAUSTED because their answers stayed unread.", rs.answer_ended_total);
	COUNTER(b, "errq_batches_uncommitted_total",
		"Report batches given back unacknowledged because the disk is full or the database unwritable (their streams ended UNAVAILABLE).",
		st.batches_failed);
	if (!m->src.guard)
		return;
	struct diskguard_stats ds;
	diskguard_get_stats(m->src.guard, &ds);
	if (ds.free_bytes != UINT64_MAX)
		GAUGE(b, "errq_disk_free_bytes", "Free space for the database on its filesystem (statvfs f_bavail).",
		      ds.free_bytes);
	GAUGE(b, "errq_disk_min_free_bytes", "The free-disk floor (min_free_disk); 0 = none.", ds.min_free);
	GAUGE(b, "errq_disk_low", "1 while the free space is below min_free_disk (new batches refused).", ds.low);
	COUNTER(b, "errq_batches_refused_disk_total",
		"Report batches refused with UNAVAILABLE because the free space was below min_free_disk.", ds.refusals);
}

static void collect_store(struct metrics *m, struct errq_buf *b)
{
	char why[256];
	struct store *s = svc_reader(&m->readers, why, sizeof(why));
	struct store_totals t;
	int ok = s && store_get_totals(s, &t) == 0;
	GAUGE(b, "errq_store_up", "1 when the database totals below could be read.", (uint64_t)ok);
	if (!ok)
		return;
	GAUGE(b, "errq_database_bytes", "Size of the database's main file.", t.db_bytes - t.wal_bytes);
	GAUGE(b, "errq_database_wal_bytes", "Size of the database's write-ahead log.", t.wal_bytes);
	GAUGE(b, "errq_groups", "Groups stored.", t.groups);
	GAUGE(b, "errq_grouped_events", "Events counted in groups, all time (survives restarts and retention).",
	      t.events + t.dropped); /* stored or, refused by a quota, only counted */
}

static void collect_alerts(struct metrics *m, struct errq_buf *b)
{
	struct alerts *a = m->src.alerts;
	struct alerts_stats st;
	alerts_get_stats(a, &st);
	const struct alerts_rules *r = alerts_rules_get(a);
	GAUGE(b, "errq_rules", "Alert rules loaded.", r->rs->n_rules);
	alerts_rules_put(a, r);
	prom_family(b, "errq_circuits", "gauge", "Circuits in memory, by state.");
	prom_sample_u64(b, "errq_circuits", "state=\"closed\"", st.circuits - st.circuits_open);
	prom_sample_u64(b, "errq_circuits", "state=\"open\"", st.circuits_open - st.circuits_half_open);
	prom_sample_u64(b, "errq_circuits", "state=\"half_open\"", st.circuits_half_open);
	COUNTER(b, "errq_circuit_transitions_total", "Circuit state changes.", st.transitions);
	GAUGE(b, "errq_alerts_firing", "Alerts firing now.", st.alerts_firing);
	COUNTER(b, "errq_alerts_fired_total", "Alerts that started firing.", st.alerts_fired);
	COUNTER(b, "errq_alerts_resolved_total", "Alerts resolved.", st.alerts_resolved);
	COUNTER(b, "errq_alert_reminders_total", "Reminders sent for alerts still firing.", st.reminders);
	COUNTER(b, "errq_failures_matched_total", "Failures counted by a circuit.", st.failures_matched);
	COUNTER(b, "errq_failures_too_old_total", "Failures older than max_event_age (stored, not counted by circuits).",
		st.failures_too_old);
	COUNTER(b, "errq_overflow_failures_total", "Failures counted in a rule's overflow circuit (max_circuits).",
		st.overflow_failures);
	COUNTER(b, "errq_outcome_batches_total", "Batches with outcomes counted.", st.outcome_batches);
	COUNTER(b, "errq_outcome_batches_duplicate_total", "Resent batches whose outcomes were already counted.",
		st.outcome_batches_duplicate);
	GAUGE(b, "errq_deliveries_in_flight", "Alert notices held by the notifier now.", st.pending_deliveries);
	if (m->src.fleet) { /* several collectors on one database (fleet.h, docs/scale-out.md) */
		struct fleet_stats fs;
		struct alerts_fleet_stats af;
		fleet_get_stats(m->src.fleet, &fs);
		alerts_get_fleet_stats(a, &af);
		GAUGE(b, "errq_fleet_leader", "1 while this collector leads the fleet's rule engine.", (uint64_t)fs.leader);
		GAUGE(b, "errq_fleet_epoch", "The fleet epoch this collector leads under (0: it does not lead).", fs.epoch);
		GAUGE(b, "errq_fleet_session_up", "1 when the leader session to the database works.", (uint64_t)fs.session_ok);
		COUNTER(b, "errq_fleet_leadership_acquired_total", "Times this collector took the leader lock.", fs.acquired);
		COUNTER(b, "errq_fleet_leadership_lost_total", "Times it lost or gave up the leader lock.", fs.lost);
		COUNTER(b, "errq_fleet_inputs_written_total", "Rule increments written for the leader.", af.inputs_written);
		COUNTER(b, "errq_fleet_inputs_taken_total", "Rule increments taken and evaluated as the leader.",
			af.inputs_taken);
		COUNTER(b, "errq_fleet_inputs_unknown_rule_total",
			"Taken increments of a rule this collector does not have (skipped).", af.inputs_unknown);
		prom_family(b, "errq_fleet_evaluation_lag_seconds", "gauge",
			    "The leader: receive to evaluation of the last increment it took.");
		prom_sample(b, "errq_fleet_evaluation_lag_seconds", "", (double)af.eval_lag_ms / 1e3);
		COUNTER(b, "errq_fleet_fenced_total", "Transactions refused because another collector took over.", af.fenced);
	}
	COUNTER(b, "errq_deliveries_silenced_total", "Alert notices held back by a silence.", st.deliveries_silenced);

	static const struct {
		const char *name, *help;
		size_t off;
	} per[] = {
	    {"errq_notifier_sent_total", "Alert notices a notifier delivered (2xx or written).",
	     offsetof(struct notify_dest_stats, sent)},
	    {"errq_notifier_failed_total", "Delivery attempts that failed (then retried or dead-lettered).",
	     offsetof(struct notify_dest_stats, failed)},
	    {"errq_notifier_retried_total", "Failed attempts that will be retried.", offsetof(struct notify_dest_stats, retried)},
	    {"errq_notifier_dead_lettered_total", "Notices given up on ('errq alerts replay' resends them).",
	     offsetof(struct notify_dest_stats, dead)},
	};
	struct notify_dest_stats ds[NOTIFY_MAX_STATS];
	size_t n = alerts_notifier_stats(a, ds, NOTIFY_MAX_STATS);
	const struct alerts_rules *cur = alerts_rules_get(a);
	for (size_t k = 0; k < sizeof(per) / sizeof(per[0]); k++) {
		prom_family(b, per[k].name, "counter", per[k].help);
		/* every configured notifier, attempted or not, so that rate() starts from zero */
		for (size_t i = 0; i < cur->rs->n_notifiers; i++) {
			const char *name = cur->rs->notifiers[i].name;
			uint64_t v = 0;
			for (size_t j = 0; j < n; j++)
				if (strcmp(ds[j].name, name) == 0)
					v = *(const uint64_t *)(const void *)((const char *)&ds[j] + per[k].off);
			struct errq_buf lb;
			char mem[NOTIFY_NAME_MAX * 2 + 16];
			errq_buf_init_fixed(&lb, mem, sizeof(mem));
			errq_buf_addstr(&lb, "notifier=\"");
			prom_label_value(&lb, name);
			errq_buf_addstr(&lb, "\"");
			prom_sample_u64(b, per[k].name, lb.p, v);
		}
	}
	alerts_rules_put(a, cur);
}

int metrics_collect(struct metrics *m, struct errq_buf *b)
{
	struct errq_buf lb;
	char mem[512];
	errq_buf_init_fixed(&lb, mem, sizeof(mem));
	errq_buf_addstr(&lb, "version=\"" ERRQ_VERSION_STRING "\",name=\"");
	prom_label_value(&lb, m->src.name ? m->src.name : "");
	errq_buf_printf(&lb, "\",storage=\"%s\",durability=\"%s\"", m->src.storage, m->src.durability);
	prom_family(b, "errq_build_info", "gauge", "Always 1; the labels name the build and its settings.");
	prom_sample_u64(b, "errq_build_info", lb.p, 1);
	prom_family(b, "errq_process_start_time_seconds", "gauge", "When errqd started, seconds since the Unix epoch.");
	prom_sample(b, "errq_process_start_time_seconds", "", (double)m->src.started_ns / 1e9);
	GAUGE(b, "errq_process_resident_memory_bytes", "Resident memory of errqd.", metrics_rss_bytes());
	GAUGE(b, "errq_process_open_fds", "Open file descriptors of errqd.", open_fds());
	if (m->src.health) {
		char why[HEALTH_REASON_MAX];
		GAUGE(b, "errq_ready", "1 when errqd can accept and commit events (/readyz).",
		      health_ready(m->src.health, errq_mono_ns(), why, sizeof(why)));
	}
	collect_ingest(m, b);
	collect_limits(m, b);
	if (m->src.db_path)
		collect_store(m, b);
	if (m->src.alerts)
		collect_alerts(m, b);
	if (m->src.tls) {
		struct tls_stats ts;
		tls_get_stats(m->src.tls, &ts);
		prom_family(b, "errq_tls_certificate_expiry_timestamp_seconds", "gauge",
			    "notAfter of the TLS certificate in force, seconds since the Unix epoch.");
		prom_sample(b, "errq_tls_certificate_expiry_timestamp_seconds", "", (double)ts.not_after_unix);
		prom_family(b, "errq_tls_reloads_total", "counter",
			    "New versions of the TLS files since the start: loaded, or refused (the pair in force stays).");
		prom_sample_u64(b, "errq_tls_reloads_total", "result=\"loaded\"", ts.reloads);
		prom_sample_u64(b, "errq_tls_reloads_total", "result=\"refused\"", ts.refused);
	}
	return b->failed ? -1 : 0;
}
