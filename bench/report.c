/* report.c: the results, as a table for people or one JSON object for scripts.
 * Every key of the JSON object is unique across its nesting, so that a line-oriented tool
 * (scripts/bench-matrix uses awk) can pick a figure by its name alone. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define REPORT_JSON_MAX (64 * 1024)

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

static void j_str(struct errq_buf *b, const char *k, const char *v)
{
	errq_buf_printf(b, "\"%s\":", k);
	if (v)
		errq_buf_add_json_str(b, v, strlen(v));
	else
		errq_buf_addstr(b, "null");
	errq_buf_addstr(b, ",");
}

static void j_bool(struct errq_buf *b, const char *k, bool v)
{
	errq_buf_printf(b, "\"%s\":%s,", k, v ? "true" : "false");
}

static void j_u64(struct errq_buf *b, const char *k, uint64_t v)
{
	errq_buf_printf(b, "\"%s\":%" PRIu64 ",", k, v);
}

static void j_dbl(struct errq_buf *b, const char *k, double v, int prec)
{
	errq_buf_printf(b, "\"%s\":%.*f,", k, prec, v);
}

static void j_open(struct errq_buf *b, const char *k)
{
	errq_buf_printf(b, "\"%s\":{", k);
}

/* Ends an object: drops the trailing comma of its last member. */
static void j_close(struct errq_buf *b)
{
	if (b->len && b->p[b->len - 1] == ',')
		b->len--;
	errq_buf_addstr(b, "},");
}

void report_json(const struct report *rp)
{
	const struct bench_cfg *c = rp->cfg;
	struct errq_buf b;
	errq_buf_init(&b, REPORT_JSON_MAX);
	errq_buf_addstr(&b, "{");
	j_str(&b, "tool", "errq-bench");
	j_str(&b, "version", ERRQ_VERSION_STRING);
	j_open(&b, "config");
	j_str(&b, "addr", rp->sv->spawned ? rp->sv->addr : c->addr);
	j_u64(&b, "streams", (uint64_t)c->streams);
	j_u64(&b, "connections", (uint64_t)c->connections);
	j_u64(&b, "threads", (uint64_t)c->threads);
	j_u64(&b, "batch", (uint64_t)c->batch);
	j_u64(&b, "inflight", (uint64_t)c->inflight);
	j_u64(&b, "event_size", (uint64_t)c->event_size);
	j_u64(&b, "event_bytes", rp->pl->event_len);
	j_u64(&b, "groups", c->groups);
	j_dbl(&b, "zipf", c->zipf, 3);
	j_dbl(&b, "rate", c->rate, 0);
	j_str(&b, "ids", ids_name(c->ids));
	j_dbl(&b, "duration_s", c->events ? 0 : (double)c->duration_ns / 1e9, 3);
	j_dbl(&b, "warmup_s", (double)c->warmup_ns / 1e9, 3);
	j_u64(&b, "events", c->events);
	j_u64(&b, "prefill", c->prefill);
	j_u64(&b, "seed", c->seed);
	j_bool(&b, "spawned", c->spawn.path != NULL);
	j_str(&b, "storage", c->spawn.path ? (c->spawn.storage ? c->spawn.storage : "sqlite") : NULL);
	j_str(&b, "durability", c->spawn.path ? (c->spawn.durability ? c->spawn.durability : "normal") : NULL);
	j_close(&b);
	if (rp->prefill) {
		const struct load_result *p = rp->prefill;
		j_open(&b, "prefill_result");
		j_u64(&b, "prefill_events", acked(p));
		j_dbl(&b, "prefill_seconds", rp->prefill_seconds, 3);
		j_dbl(&b, "prefill_events_per_s", per_s(acked(p), rp->prefill_seconds), 1);
		j_u64(&b, "prefill_errors", load_errors(p));
		j_close(&b);
	}
	const struct load_result *r = rp->run;
	if (r) {
		j_dbl(&b, "seconds", r->seconds, 3);
		j_u64(&b, "events_sent", r->events_sent);
		j_u64(&b, "events_acked", acked(r));
		j_dbl(&b, "events_per_s", per_s(acked(r), r->seconds), 1);
		j_dbl(&b, "batches_per_s", per_s(r->batches_acked, r->seconds), 1);
		j_open(&b, "latency");
		j_u64(&b, "latency_batches", r->lat->n);
		j_dbl(&b, "p50_ms", ms(hist_quantile(r->lat, 0.50)), 3);
		j_dbl(&b, "p90_ms", ms(hist_quantile(r->lat, 0.90)), 3);
		j_dbl(&b, "p99_ms", ms(hist_quantile(r->lat, 0.99)), 3);
		j_dbl(&b, "p999_ms", ms(hist_quantile(r->lat, 0.999)), 3);
		j_dbl(&b, "max_ms", ms(r->lat->max), 3);
		j_dbl(&b, "mean_ms", r->lat->n ? (double)r->lat->sum / (double)r->lat->n / 1000.0 : 0, 3);
		j_close(&b);
		j_open(&b, "errors");
		j_u64(&b, "errors_total", load_errors(r));
		j_u64(&b, "bad_status", r->bad_status);
		j_u64(&b, "rejected", r->rejected);
		j_u64(&b, "duplicates", r->duplicates);
		j_u64(&b, "mismatched", r->mismatched);
		j_u64(&b, "unanswered_batches", r->unacked_batches);
		j_str(&b, "first_error", r->first_error[0] ? r->first_error : NULL);
		j_close(&b);
		j_u64(&b, "behind_batches", r->behind_batches);
		if (r->have_server) {
			j_open(&b, "server");
			j_u64(&b, "pid", (uint64_t)(rp->sv->spawned ? rp->sv->pid : c->pid));
			j_dbl(&b, "server_us_per_event", server_us_per_event(r), 3);
			j_dbl(&b, "server_user_s", (double)r->server_user_us / 1e6, 3);
			j_dbl(&b, "server_sys_s", (double)r->server_sys_us / 1e6, 3);
			j_dbl(&b, "server_peak_rss_mib", mib(r->peak_rss_kib), 1);
			j_dbl(&b, "server_hwm_mib", mib(r->hwm_kib), 1);
			j_close(&b);
		} else {
			errq_buf_addstr(&b, "\"server\":null,");
		}
		j_dbl(&b, "client_us_per_event", acked(r) ? (double)r->client_cpu_us / (double)acked(r) : 0, 3);
		j_bool(&b, "interrupted", r->interrupted);
	}
	if (b.len && b.p[b.len - 1] == ',')
		b.len--;
	errq_buf_addstr(&b, "}");
	puts(b.p ? b.p : "{}");
	errq_buf_free(&b);
}
