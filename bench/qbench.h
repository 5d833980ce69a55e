/* qbench.h: what the files of errq-query-bench share (errq_query_bench.c says what the
 * program does, step by step; each qbench_*.c holds one step or one concern).  Private to
 * bench/. */
#ifndef ERRQ_QBENCH_H
#define ERRQ_QBENCH_H
#include <grpc/grpc.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "bench.h"
#include "errq/v1/query.pb-c.h"
#include "errq_time.h"

#define QB_DEFAULT_EVENTS 10000000ULL
#define QB_DEFAULT_GROUPS 50000
#define QB_DEFAULT_ZIPF "1.1"
#define QB_DEFAULT_RUNS 21
#define QB_DEFAULT_CLI_RUNS 11
#define QB_MAX_RUNS 10001
#define QB_DEFAULT_TIMEOUT_MS 120000   /* one call; far above any target, so a slow plan is measured */
#define QB_CONNECT_TIMEOUT_MS 15000
#define QB_WINDOW_NS (3600ULL * ERRQ_NS_PER_SEC)  /* --since 1h */
#define QB_RARE_SCAN 1000              /* newest groups looked at for a rare one */
#define QB_FP_MAX 256
#define QB_MSG_MAX 512
#define QB_PATH_MAX (BENCH_PATH_MAX + 64)
#define QB_PROGRESS_NS (15 * ERRQ_NS_PER_SEC)     /* a line about the fill this often */
#define QB_POLL_MS 50
#define QB_SETTLE_POLL_MS 500          /* after the fill: errqd's queue empty, file size stable */
#define QB_SETTLE_MAX_MS 60000
#define QB_SMALL_FILE_MAX (64 * 1024)  /* errq-bench's JSON, a child's stderr */
#define QB_MAX_ERRQD_ARGS (BENCH_MAX_ERRQD_ARGS - 2)

#define M_LIST_GROUPS "/errq.v1.Query/ListGroups"
#define M_GET_GROUP "/errq.v1.Query/GetGroup"
#define M_LIST_EVENTS "/errq.v1.Query/ListEvents"
#define M_STATUS "/errq.v1.Query/Status"

/* the pseudo-terminal of the runs whose stdout is a terminal (qbench_cli.c) */
#define QB_TTY_ROWS 50
#define QB_TTY_COLS 160

extern char **environ;
extern volatile sig_atomic_t qb_stop; /* ^C or SIGTERM: stop after the current step */

enum qkind { Q_LIST_GROUPS, Q_GET_GROUP, Q_LIST_EVENTS };
enum fpsel { FP_NONE, FP_HOT, FP_RARE };

struct samples {
	double *ms;
	int n;
};

struct stats {
	bool have;
	double median, p90, max, min;
};

struct query {
	const char *name;       /* JSON key, unique */
	const char *label;      /* the request */
	const char *sent_by;    /* the CLI command that sends it */
	enum qkind kind;
	const char *method;
	uint32_t limit;
	Errq__V1__GroupSort sort;
	bool since_1h;
	enum fpsel fp;
	uint32_t histogram_minutes;
	double target_ms;       /* 0: none */
	/* results */
	struct samples call, conn;
	int failures;
	uint64_t rows, bytes;   /* of the last successful run */
	char err[QB_MSG_MAX];   /* the first failure */
};


/* the errq processes */
struct clirun {
	const char *name;
	const char *label;      /* shown; FP stands for the fingerprint */
	enum fpsel fp;          /* FP_NONE: `errq groups --since 1h` */
	bool tty;               /* stdout a terminal (a table with sparklines), else -o json */
	double target_ms;
	struct samples wall;
	int failures, last_exit;
	char err[QB_MSG_MAX];
};

/* ---- configuration ---- */

struct qcfg {
	const char *errqd, *addr, *db, *bench, *cli;
	const char *zipf;       /* passed to errq-bench as written */
	double zipf_value;
	const char *markdown;
	const char *errqd_args[BENCH_MAX_ERRQD_ARGS];
	int nerrqd_args;
	bool keep, json;
	uint64_t events;
	uint32_t groups;
	int runs, cli_runs;
	long timeout_ms;
};

/* what we learnt about the database */
struct dbinfo {
	uint64_t events_before, events, groups, db_bytes;
	bool filled;
	uint64_t fill_events;
	double fill_seconds, fill_rate;
	char hot_fp[QB_FP_MAX], rare_fp[QB_FP_MAX];
	uint64_t hot_total, rare_total;
	uint64_t hot_first_seen_ns, newest_last_seen_ns;
	bool older_than_window;
	char version[64];
	char db_path[BENCH_PATH_MAX];
};

/* the requests and the errq processes measured, with their results (errq_query_bench.c) */
extern struct query qb_queries[];
extern const int qb_n_queries;
extern struct clirun qb_cliruns[];
extern const int qb_n_cliruns;

enum verdict { V_NONE, V_NA, V_PASS, V_FAIL };

/* qbench_flags.c */
void qb_usage(FILE *f);
int qb_parse_flags(struct qcfg *c, int argc, char **argv);
/* qbench_util.c */
void qb_msleep(int ms);
double qb_ms_between(uint64_t t0, uint64_t t1);
struct stats qb_stats_of(const struct samples *s);
int qb_samples_alloc(struct samples *s, int n);
const char *qb_thousands(char *buf, size_t sz, uint64_t v);
char *qb_read_small(const char *path);
void qb_first_line(const char *path, char *out, size_t sz);
void qb_remove_workdir(const char *dir);
/* qbench_proc.c */
pid_t qb_spawn_child(const char *const *argv, const char *out_path, const char *err_path, char *err, size_t errsz);
int qb_exit_code(int st);
int qb_wait_child(pid_t pid);
/* qbench_query.c */
int qb_channel_ready(grpc_channel *ch, long timeout_ms, char *err, size_t errsz);
int qb_call(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp_desc, long timeout_ms, ProtobufCMessage **out, uint64_t *bytes,
		char *err, size_t errsz);
int qb_status_call(grpc_channel *ch, long timeout_ms, Errq__V1__StatusResponse **out, char *err, size_t errsz);
const char *qb_fp_of(const struct dbinfo *db, enum fpsel s);
void qb_measure_query(const struct qcfg *c, const char *addr, const struct dbinfo *db, struct query *q);
/* qbench_fill.c */
int qb_fill(const struct qcfg *c, const struct server *sv, const char *addr, const char *workdir,
		grpc_channel *ctl, struct dbinfo *db, char *err, size_t errsz);
void qb_settle(grpc_channel *ctl);
int qb_pick_groups(grpc_channel *ctl, long timeout_ms, struct dbinfo *db, char *err, size_t errsz);
/* qbench_cli.c */
void qb_measure_cli(const struct qcfg *c, const char *addr, const char *workdir, const struct dbinfo *db,
			struct clirun *r);
/* qbench_report.c */
enum verdict qb_verdict_of(double target, const struct stats *s);
void qb_print_human(const struct qcfg *c, const struct dbinfo *db);
void qb_print_json(const struct qcfg *c, const struct dbinfo *db, bool all_pass, int targets_met,
		       int targets_total);
int qb_write_markdown(const struct qcfg *c, const struct dbinfo *db, const char *path);
#endif
