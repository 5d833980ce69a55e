/* report.c: the results, as a table for people or one JSON object for scripts.
 * Every key of the JSON object is unique across its nesting, so that a line-oriented tool
 * (scripts/bench-matrix uses awk) can pick a figure by its name alone. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_json.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"


static uint64_t acked(const struct load_result *r)
{
	return r->events_accepted + r->duplicates;
}

static double per_s(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0;
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static double mib(uint64_t kib)
{
	return (double)kib / 1024.0;
}

static const char *ids_name(int ids)
{
	return ids == BENCH_IDS_RANDOM ? "random" : "ordered";
}

static double server_us_per_event(const struct load_result *r)
{
	uint64_t n = acked(r);
	return n ? (double)(r->server_user_us + r->server_sys_us) / (double)n : 0;
}

void report_human(const struct report *rp)
{
	const struct bench_cfg *c = rp->cfg;
	printf("errq-bench %s: %d streams on %d connections (%d client threads), batch %d, inflight %d, ",
	       ERRQ_VERSION_STRING, c->streams, c->connections, c->threads, c->batch, c->inflight);
	if (c->rate > 0)
		printf("open loop at %.0f events/s\n", c->rate);
	else
		printf("closed loop\n");
	if (c->storm)
		printf("  events      %zu bytes encoded (--event-size %d), storm: every event a new group, ids %s\n",
		       rp->pl->event_len, c->event_size, ids_name(c->ids));
	else
		printf("  events      %zu bytes encoded (--event-size %d), %u groups, zipf %.2f, ids %s\n",
		       rp->pl->event_len, c->event_size, c->groups, c->zipf, ids_name(c->ids));
	if (rp->sv->spawned)
		printf("  errqd       %s, pid %d, storage %s, durability %s\n", rp->sv->addr, (int)rp->sv->pid,
		       c->spawn.storage ? c->spawn.storage : "sqlite",
		       c->spawn.durability ? c->spawn.durability : "normal");
	else
		printf("  errqd       %s%s\n", c->addr, c->pid > 0 ? "" : " (no --pid: no server figures)");
	if (rp->prefill) {
		const struct load_result *p = rp->prefill;
		printf("prefill       %" PRIu64 " events in %.1f s: %.0f events/s, %" PRIu64 " errors\n", acked(p),
		       rp->prefill_seconds, per_s(acked(p), rp->prefill_seconds), load_errors(p));
	}
	const struct load_result *r = rp->run;
	if (!r)
		return;
	printf("measured      %.2f s", r->seconds);
	if (c->warmup_ns && !c->events)
		printf(" (after %.1f s of warm-up)", (double)c->warmup_ns / 1e9);
	printf("%s\n", r->interrupted ? "  INTERRUPTED" : "");
	printf("events/s      %.0f acknowledged (%" PRIu64 " events; %.0f batches/s)\n", per_s(acked(r), r->seconds),
	       acked(r), per_s(r->batches_acked, r->seconds));
	printf("latency       p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   p99.9 %.2f ms   max %.2f ms   (%" PRIu64
	       " batches)\n",
	       ms(hist_quantile(r->lat, 0.50)), ms(hist_quantile(r->lat, 0.90)), ms(hist_quantile(r->lat, 0.99)),
	       ms(hist_quantile(r->lat, 0.999)), ms(r->lat->max), r->lat->n);
	printf("errors        %" PRIu64 " (bad status %" PRIu64 ", rejected %" PRIu64 ", duplicates %" PRIu64
	       ", mismatched %" PRIu64 ", unanswered batches %" PRIu64 ")\n",
	       load_errors(r), r->bad_status, r->rejected, r->duplicates, r->mismatched, r->unacked_batches);
	if (r->first_error[0])
		printf("first error   %s\n", r->first_error);
	if (c->rate > 0)
		printf("schedule      %" PRIu64 " batches due but never sent (client or server behind the rate)\n",
		       r->behind_batches);
	if (r->have_server) {
		printf("errqd CPU     %.2f µs/event (user %.2f s, system %.2f s)\n", server_us_per_event(r),
		       (double)r->server_user_us / 1e6, (double)r->server_sys_us / 1e6);
		printf("errqd RSS     peak %.1f MiB (VmHWM %.1f MiB)\n", mib(r->peak_rss_kib), mib(r->hwm_kib));
	}
	printf("client CPU    %.2f µs/event\n", acked(r) ? (double)r->client_cpu_us / (double)acked(r) : 0);
}

void report_json(const struct report *rp)
{
	const struct bench_cfg *c = rp->cfg;
	json_t *root = json_object(), *o = root;
	bj_str(o, NULL, "tool", "errq-bench");
	bj_str(o, NULL, "version", ERRQ_VERSION_STRING);
	o = bj_obj(root, "config");
	bj_str(o, NULL, "addr", rp->sv->spawned ? rp->sv->addr : c->addr);
	bj_u64(o, NULL, "streams", (uint64_t)c->streams);
	bj_u64(o, NULL, "connections", (uint64_t)c->connections);
	bj_u64(o, NULL, "threads", (uint64_t)c->threads);
	bj_u64(o, NULL, "batch", (uint64_t)c->batch);
	bj_u64(o, NULL, "inflight", (uint64_t)c->inflight);
	bj_u64(o, NULL, "event_size", (uint64_t)c->event_size);
	bj_u64(o, NULL, "event_bytes", rp->pl->event_len);
	bj_u64(o, NULL, "groups", c->storm ? 0 : c->groups);
	bj_num(o, NULL, "zipf", c->zipf, 3);
	bj_bool(o, NULL, "storm", c->storm);
	bj_num(o, NULL, "rate", c->rate, 0);
	bj_str(o, NULL, "ids", ids_name(c->ids));
	bj_num(o, NULL, "duration_s", c->events ? 0 : (double)c->duration_ns / 1e9, 3);
	bj_num(o, NULL, "warmup_s", (double)c->warmup_ns / 1e9, 3);
	bj_u64(o, NULL, "events", c->events);
	bj_u64(o, NULL, "prefill", c->prefill);
	bj_u64(o, NULL, "seed", c->seed);
	bj_bool(o, NULL, "spawned", c->spawn.path != NULL);
	bj_str(o, NULL, "storage", c->spawn.path ? (c->spawn.storage ? c->spawn.storage : "sqlite") : NULL);
	bj_str(o, NULL, "durability", c->spawn.path ? (c->spawn.durability ? c->spawn.durability : "normal") : NULL);
	o = root;
	if (rp->prefill) {
		const struct load_result *p = rp->prefill;
		o = bj_obj(root, "prefill_result");
		bj_u64(o, NULL, "prefill_events", acked(p));
		bj_num(o, NULL, "prefill_seconds", rp->prefill_seconds, 3);
		bj_num(o, NULL, "prefill_events_per_s", per_s(acked(p), rp->prefill_seconds), 1);
		bj_u64(o, NULL, "prefill_errors", load_errors(p));
		o = root;
	}
	const struct load_result *r = rp->run;
	if (r) {
		bj_num(o, NULL, "seconds", r->seconds, 3);
		bj_u64(o, NULL, "events_sent", r->events_sent);
		bj_u64(o, NULL, "events_acked", acked(r));
		bj_num(o, NULL, "events_per_s", per_s(acked(r), r->seconds), 1);
		bj_num(o, NULL, "batches_per_s", per_s(r->batches_acked, r->seconds), 1);
		o = bj_obj(root, "latency");
		bj_u64(o, NULL, "latency_batches", r->lat->n);
		bj_num(o, NULL, "p50_ms", ms(hist_quantile(r->lat, 0.50)), 3);
		bj_num(o, NULL, "p90_ms", ms(hist_quantile(r->lat, 0.90)), 3);
		bj_num(o, NULL, "p99_ms", ms(hist_quantile(r->lat, 0.99)), 3);
		bj_num(o, NULL, "p999_ms", ms(hist_quantile(r->lat, 0.999)), 3);
		bj_num(o, NULL, "max_ms", ms(r->lat->max), 3);
		bj_num(o, NULL, "mean_ms", r->lat->n ? (double)r->lat->sum / (double)r->lat->n / 1000.0 : 0, 3);
		o = root;
		o = bj_obj(root, "errors");
		bj_u64(o, NULL, "errors_total", load_errors(r));
		bj_u64(o, NULL, "bad_status", r->bad_status);
		bj_u64(o, NULL, "rejected", r->rejected);
		bj_u64(o, NULL, "duplicates", r->duplicates);
		bj_u64(o, NULL, "mismatched", r->mismatched);
		bj_u64(o, NULL, "unanswered_batches", r->unacked_batches);
		bj_str(o, NULL, "first_error", r->first_error[0] ? r->first_error : NULL);
		o = root;
		bj_u64(o, NULL, "behind_batches", r->behind_batches);
		if (r->have_server) {
			o = bj_obj(root, "server");
			bj_u64(o, NULL, "pid", (uint64_t)(rp->sv->spawned ? rp->sv->pid : c->pid));
			bj_num(o, NULL, "server_us_per_event", server_us_per_event(r), 3);
			bj_num(o, NULL, "server_user_s", (double)r->server_user_us / 1e6, 3);
			bj_num(o, NULL, "server_sys_s", (double)r->server_sys_us / 1e6, 3);
			bj_num(o, NULL, "server_peak_rss_mib", mib(r->peak_rss_kib), 1);
			bj_num(o, NULL, "server_hwm_mib", mib(r->hwm_kib), 1);
			o = root;
		} else {
			bj_null(o, NULL, "server");
		}
		bj_num(o, NULL, "client_us_per_event", acked(r) ? (double)r->client_cpu_us / (double)acked(r) : 0, 3);
		bj_bool(o, NULL, "interrupted", r->interrupted);
	}
	if (bj_print(root))
		fprintf(stderr, "errq-bench: cannot write the JSON report\n");
}
