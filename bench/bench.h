/* bench.h: errq-bench, the load generator and benchmark driver (issue 3).
 *
 * errq-bench measures the collector, not liberrq: it speaks the Report stream with the gRPC C
 * core directly, builds each ReportRequest from pre-encoded TaskFailure bytes, and reads
 * errqd's CPU time and memory from /proc.
 *
 * Modules (one file each):
 *   payload.c  pre-encoded events, the Zipf group sampler, the wire bytes of a batch
 *   hist.c     a log-bucket latency histogram of bounded size
 *   load.c     the client threads: completion queues, streams, open and closed loop
 *   proc.c     starting and stopping errqd, /proc/PID/stat and /proc/PID/status
 *   report.c   the human table and the JSON object
 *   selftest.c --selftest
 *   main.c     flags and the order of things
 *
 * Every array has a named bound here; a flag outside its bound is a usage error. */
#ifndef ERRQ_BENCH_H
#define ERRQ_BENCH_H
#include <grpc/grpc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "errq_id.h"
#include "errq_spawn.h"

#define BENCH_MAX_STREAMS 20000
#define BENCH_MAX_CONNECTIONS 1024
#define BENCH_MAX_THREADS 16
#define BENCH_MAX_BATCH 10000          /* events per ReportRequest */
#define BENCH_MAX_INFLIGHT 1024        /* batches awaiting their answer, per stream */
#define BENCH_MAX_GROUPS 1000000
#define BENCH_MIN_EVENT_SIZE 64        /* smaller targets get the smallest event we can build */
#define BENCH_MAX_EVENT_SIZE 65536
#define BENCH_MAX_MESSAGE (4u << 20)   /* errqd's TRANSPORT_MAX_MESSAGE: a larger batch is refused */
#define BENCH_STORM_WORDS_LEN 25       /* 11 syllables (6 bits each) as 3+3+3+2, 3 spaces */
#define BENCH_MAX_ERRQD_ARGS 32
#define BENCH_PATH_MAX 1024
#define BENCH_ADDR_MAX 256
#define BENCH_ERR_MAX 256              /* the first error text kept for the report */
#define BENCH_MSG_MAX 512              /* a one-line error message */
#define BENCH_LABEL_MAX 128            /* a short label (a flag's complaint, a check's name) */
#define BENCH_SAMPLE_NS (100 * 1000000ULL)       /* /proc/PID/status sampling period */
#define BENCH_TICK_MS 50                         /* a client thread looks at the phase this often */
#define BENCH_DRAIN_TIMEOUT_NS (30 * 1000000000ULL) /* answers awaited after the end, then cancel */
#define BENCH_CONNECT_TIMEOUT_MS 15000
#define BENCH_START_TIMEOUT_MS 60000   /* errqd writes its port file within this */
#define BENCH_STOP_TIMEOUT_MS 30000    /* errqd exits after SIGTERM within this, else SIGKILL */

#define BENCH_METHOD "/errq.v1.Collector/Report"

enum bench_ids { BENCH_IDS_ORDERED, BENCH_IDS_RANDOM };

/* ---- payload.c ---- */

/* Every event of group g is the bytes prefix(g) + tail: prefix(g) is the field-2 tag and
 * length of the TaskFailure, its event_id and time_unix_nano (patched per event at known
 * offsets) and the group's service and error_type; the tail (the same for every event) holds
 * the other fields, with the message padded to reach the requested size. */
struct payload {
	uint32_t groups;
	double zipf;
	double *cdf;          /* groups entries: P(rank <= i) */
	uint8_t *arena;       /* every group's prefix */
	uint32_t *g_off;      /* groups entries: offset of prefix(g) in arena */
	uint16_t *g_len;      /* groups entries: length of prefix(g) */
	uint8_t *g_idoff;     /* groups entries: offset of the 16 id bytes in prefix(g) */
	uint8_t *tail;
	size_t tail_len;
	size_t event_len;     /* encoded TaskFailure (message body) of group 0 */
	size_t max_wire_len;  /* bytes one event takes in a ReportRequest, largest group */
	bool storm;           /* payload_init_storm: one group entry, new words in every event */
	size_t storm_off;     /* offset of the words in the tail */
};

/* Per-thread generator state: the group sampler (seeded from --seed, reproducible) and the
 * id generator (seeded from getrandom, so that two runs never collide). */
struct gen {
	struct errq_idgen pick; /* only its xoshiro state is used */
	struct errq_idgen ids;
	int id_kind;            /* enum bench_ids */
	uint64_t storm_next;    /* thread << 40 | events made: the storm's next value */
	uint64_t storm_key;     /* from the seed */
	uint32_t scratch[BENCH_MAX_BATCH];
};

int payload_init(struct payload *pl, uint32_t groups, double zipf, int event_size, char *err, size_t errsz);
/* The storm: every event from one service with a message no normalizer can collapse, so each
 * is a new fingerprint (payload.c says how). */
int payload_init_storm(struct payload *pl, int event_size, char *err, size_t errsz);
/* The words of storm value v (BENCH_STORM_WORDS_LEN bytes, not NUL-terminated). */
void payload_storm_words(uint64_t v, char out[BENCH_STORM_WORDS_LEN]);
void payload_free(struct payload *pl); /* accepts a zeroed pl */
void gen_init(struct gen *g, uint64_t seed, int stream_of_seeds, int id_kind);
uint32_t payload_pick(const struct payload *pl, struct gen *g);
/* The wire bytes of a ReportRequest {seq, n failures}; the caller unrefs the slice. */
grpc_slice payload_batch(const struct payload *pl, struct gen *g, uint64_t seq, int n, uint64_t now_ns);
/* Bytes of a ReportRequest with n events, at most. */
size_t payload_batch_max(const struct payload *pl, int n);

/* ---- hist.c ---- */

/* Values (µs) below 256 have their own bucket; above, 128 buckets per power of two: at most
 * 0.8 % relative error, 7 424 buckets (58 KiB) whatever the range. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (2 * HIST_SUB + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

struct hist {
	uint64_t n, sum, min, max;
	uint64_t counts[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0..1): the highest value of its bucket, never above max. */
uint64_t hist_quantile(const struct hist *h, double q);

/* ---- proc.c ---- */

struct server {
	struct errq_child child;
	pid_t pid;            /* 0: none known; kept after server_stop for the report */
	bool spawned;         /* started by us */
	bool running;         /* started by us and not yet stopped */
	bool own_dir, keep;
	char dir[BENCH_PATH_MAX];
	char db[BENCH_PATH_MAX];
	char log[BENCH_PATH_MAX];
	char addr[BENCH_ADDR_MAX];
	int exit_status;      /* after server_stop: 0 ok, 128+N killed by signal N, -1 unknown */
};

struct spawn_opts {
	const char *path;     /* errqd */
	const char *db;       /* NULL: a temporary database, removed at the end */
	const char *durability, *storage;
	const char *const *extra;
	int nextra;
	bool keep;            /* keep the temporary directory */
};

/* Starts errqd on 127.0.0.1:0 and waits for its port.  Returns 0, or -1 with err set. */
int server_spawn(struct server *sv, const struct spawn_opts *o, char *err, size_t errsz);
/* SIGTERM, waits (SIGKILL after BENCH_STOP_TIMEOUT_MS), removes the temporary directory. */
void server_stop(struct server *sv);
/* Prints the last lines of errqd's log to stderr. */
void server_log_tail(const struct server *sv, int lines);

/* utime + stime of pid in µs.  Returns 0 or -1. */
int proc_cpu_us(pid_t pid, uint64_t *user_us, uint64_t *sys_us);
/* VmRSS and VmHWM of pid in KiB.  Returns 0 or -1. */
int proc_mem_kib(pid_t pid, uint64_t *rss, uint64_t *hwm);
/* This process's user+system CPU time in µs. */
uint64_t self_cpu_us(void);

/* ---- load.c ---- */

enum load_phase { PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_CANCEL };

struct load_cfg {
	int streams, threads, batch, inflight, ids;
	uint64_t events;      /* > 0: exactly this many, then stop; 0: duration_ns */
	uint64_t duration_ns, warmup_ns;
	double rate;          /* events/s in all, open loop; 0: closed loop */
	uint64_t seed;
	const struct payload *pl;
	grpc_channel **chans;
	int nchans;
	pid_t server_pid;     /* 0: no server figures */
	const sigset_t *sigs; /* collected while the load runs (SIGINT/SIGTERM) */
};

struct load_result {
	double seconds;       /* the measured window: start of measure .. last answer */
	uint64_t events_sent, batches_sent;
	uint64_t events_accepted, duplicates, rejected, batches_acked;
	uint64_t bad_status, mismatched, unacked_batches, behind_batches;
	char first_error[BENCH_ERR_MAX];
	struct hist *lat;     /* µs, batches answered in the measured window */
	bool have_server;
	uint64_t server_user_us, server_sys_us;
	uint64_t peak_rss_kib, hwm_kib;
	uint64_t client_cpu_us;
	bool interrupted;
};

/* Connects every channel (READY) within BENCH_CONNECT_TIMEOUT_MS.  Returns 0 or -1. */
int load_connect(grpc_channel **chans, int n, char *err, size_t errsz);
grpc_channel *load_channel_new(const char *addr, int index);
/* Runs one session on the calling thread plus cfg->threads client threads.  Returns 0, or
 * -1 when it could not start (err says why).  r->lat is allocated; free with load_result_free. */
int load_run(const struct load_cfg *cfg, struct load_result *r, char *err, size_t errsz);
/* Before any thread starts: blocks SIGINT and SIGTERM (threads inherit the mask) so that only
 * load_run's sigtimedwait takes them, with the set in *sigs for load_cfg.sigs; ignores SIGPIPE. */
void load_block_signals(sigset_t *sigs);
void load_result_free(struct load_result *r);
uint64_t load_errors(const struct load_result *r);

/* ---- report.c ---- */

struct bench_cfg {
	char addr[BENCH_ADDR_MAX];
	int streams, connections, threads, batch, inflight, event_size, ids;
	uint32_t groups;
	double zipf, rate;
	uint64_t events, duration_ns, warmup_ns, prefill, seed;
	bool json, selftest, storm;
	struct spawn_opts spawn;
	const char *errqd_args[BENCH_MAX_ERRQD_ARGS];
	pid_t pid;
};

struct report {
	const struct bench_cfg *cfg;
	const struct payload *pl;
	const struct server *sv;
	const struct load_result *prefill; /* NULL: none */
	double prefill_seconds;
	const struct load_result *run;     /* NULL: no measured phase */
};

void report_human(const struct report *rp);
void report_json(const struct report *rp);

/* ---- main.c ---- */

/* Opens `connections` channels to addr, waits until they are ready, runs lc (its chans and
 * nchans are filled in here), closes the channels.  Returns 0; -1 when the session could not
 * run, -2 when the collector could not be reached (err says why). */
int bench_session(const char *addr, int connections, struct load_cfg *lc, struct load_result *r, char *err,
		  size_t errsz);

/* ---- selftest.c ---- */

/* --selftest: encoding, sampler and histogram checks, then streams against a spawned errqd
 * (10 000 events closed loop with ordered ids, an open-loop run, a batch-1 run), each
 * checked for acked == sent and no errors.  Returns the exit code (0 ok, 1 failed). */
int selftest_main(const struct bench_cfg *cfg);
#endif
