/* metrics.h: errqd's Prometheus metrics — a histogram type the modules observe into, a
 * writer of the text exposition format (version 0.0.4), and the collector of every metric
 * errqd exposes on /metrics (docs/operations.md lists them).
 *
 * Naming follows the Prometheus conventions: every name starts with errq_, carries its unit
 * (_seconds, _bytes), counters end in _total, labels have bounded values (reason codes,
 * notifier names from the config, circuit states).  Counters count since errqd started. */
#ifndef ERRQD_METRICS_H
#define ERRQD_METRICS_H
#include <stddef.h>
#include <stdint.h>

#include "errq_str.h"

#define METRICS_HIST_MAX_BUCKETS 16
#define METRICS_TEXT_MAX (1u << 20) /* one scrape's text; past it the scrape fails (500) */

/* A fixed-bucket histogram.  Not thread-safe: the owner observes and copies it under its own
 * lock.  bounds[] are the inclusive upper bounds (le), ascending; +Inf is implicit. */
struct metrics_hist {
	const double *bounds;
	size_t n_bounds;
	uint64_t counts[METRICS_HIST_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
	double sum;
	uint64_t count;
};
void metrics_hist_init(struct metrics_hist *h, const double *bounds, size_t n_bounds);
void metrics_hist_observe(struct metrics_hist *h, double v);

/* The text format, into b (bounded by METRICS_TEXT_MAX).  A family is declared once with
 * prom_family; its samples follow.  labels is "" or 'name="value",...' already escaped
 * (prom_label_value escapes a value). */
void prom_family(struct errq_buf *b, const char *name, const char *type, const char *help);
void prom_sample(struct errq_buf *b, const char *name, const char *labels, double v);
void prom_sample_u64(struct errq_buf *b, const char *name, const char *labels, uint64_t v);
void prom_hist(struct errq_buf *b, const char *name, const char *labels, const struct metrics_hist *h);
/* Appends the value escaped for a label (backslash, double quote, newline) to b. */
void prom_label_value(struct errq_buf *b, const char *v);

/* Resident memory of this process (/proc/self/statm); 0 when unknown. */
uint64_t metrics_rss_bytes(void);

struct ingest;
struct report_svc;
struct quota;
struct health;
struct tail_hub;
struct alerts;
struct diskguard;
struct metrics;
struct tls;

struct metrics_sources {
	struct ingest *ig;
	struct report_svc *rs;
	struct quota *quota;        /* NULL: no quota */
	struct tail_hub *tail;
	struct tail_fleet *tail_fleet; /* PostgreSQL: the other collectors' events (NULL otherwise) */
	struct alerts *alerts;      /* NULL with storage: none */
	struct health *health;      /* for errq_ready; may be NULL */
	struct diskguard *guard;    /* the free-disk floor; NULL with storage: none */
	const char *db_path;        /* NULL with storage: none */
	const char *name, *storage, *durability;
	uint64_t started_ns;        /* realtime */
	uint64_t queue_capacity_batches, queue_capacity_bytes;
	struct tls *tls;            /* NULL without TLS */
	struct fleet *fleet;        /* NULL: not one of several collectors on one database */
};
struct metrics *metrics_new(const struct metrics_sources *src);
void metrics_free(struct metrics *m); /* accepts NULL */
/* Writes every metric into b.  Any thread; reads the database through a read-only connection
 * of the calling thread.  Returns 0, or -1 when b overflowed. */
int metrics_collect(struct metrics *m, struct errq_buf *b);
#endif
