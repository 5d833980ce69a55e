/* harness.h: integration-test helpers (after libuv's TEST_HELPER): start a real errqd on an
 * ephemeral port with a temporary database, run the CLI and the example, and speak the wire
 * protocol directly with a raw gRPC stream.
 * Every wait has a deadline (HARNESS_DEADLINE_MS) far above what the machine needs. */
#ifndef ERRQ_HARNESS_H
#define ERRQ_HARNESS_H
#include <grpc/grpc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "errq/v1/collector.pb-c.h"
#include "errq/v1/query.pb-c.h"
#include "errq_id.h"
#include "errq_spawn.h"
#include "errq_time.h"

#define HARNESS_DEADLINE_MS 30000

/* Sleeps ms milliseconds: the pause between two polls of a wait, never a wait by itself. */
void harness_msleep(int ms);

/* Polls cond every 5 ms until it holds; fails the test (cmocka) at HARNESS_DEADLINE_MS. */
#define WAIT_FOR(cond)                                                                                 \
	do {                                                                                           \
		uint64_t dl_ = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;        \
		while (!(cond)) {                                                                      \
			if (errq_mono_ns() > dl_)                                                      \
				fail_msg("line %d: timed out after %d ms waiting for: %s", __LINE__,   \
					 HARNESS_DEADLINE_MS, #cond);                                  \
			harness_msleep(5);                                                             \
		}                                                                                      \
	} while (0)

/* The database of the collectors errqd_start starts: ERRQ_TEST_BACKEND=postgres (ctest's
 * integration_pg_* entries) gives each collector a fresh database of its own on the private
 * PostgreSQL server of the fixture `pg` (pg_support.h), dropped by errqd_cleanup; unset or
 * "sqlite", a SQLite file in the collector's directory.  Any other value fails the test. */
enum harness_backend { HARNESS_SQLITE, HARNESS_POSTGRES };
enum harness_backend harness_backend(void);
/* What errqd reports for its storage (errq_build_info, Status) on this backend. */
const char *harness_storage_name(void); /* "sqlite" or "postgres" */
const char *harness_durability_name(void); /* "normal" (the default) or "server" */

#define HARNESS_DB_MAX 1024 /* a SQLite path or a PostgreSQL URL (PG_TEST_URL_MAX) */
struct pg_test_db;

struct errqd_proc {
	pid_t pid;      /* 0: not running; tests signal and wait for it by this */
	struct errq_child child;
	int port;
	int http_port;  /* 0 when started with --http-listen "" */
	char dir[256];  /* temporary directory holding the database (SQLite), port file and log */
	char db[HARNESS_DB_MAX]; /* what --db was given: the file's path, or the database's URL */
	struct pg_test_db *pg; /* PostgreSQL: the database made at the first start (a restart keeps it) */
	char addr[64];
	char log[320];
	/* 0: an ephemeral gRPC port; otherwise errqd listens on 127.0.0.1:listen_port (a restart
	 * on the address a client already uses; see harness_quiet_port) */
	int listen_port;
};

/* Makes p->dir (a fresh temporary directory) unless already set: a restart keeps the db. */
int errqd_start(struct errqd_proc *p, const char *const *extra_args);
/* Sends sig and waits for the exit; returns the exit status (128+N when killed by signal N),
 * or -1 when it did not exit within HARNESS_DEADLINE_MS (then it is killed). */
int errqd_stop(struct errqd_proc *p, int sig);
/* A free port on 127.0.0.1 outside the kernel's ephemeral range (net.ipv4.ip_local_port_range),
 * so that no other test's ephemeral listener and no outgoing connection can be given it while
 * a collector that listened there is down: a restart on it cannot find it taken.  0 if none. */
int harness_quiet_port(void);
/* Removes the temporary directory, and drops the PostgreSQL database. */
void errqd_cleanup(struct errqd_proc *p);
/* The fixture of a test with one errqd in *p: the setup starts gRPC and zeroes *p; the teardown
 * stops errqd (SIGTERM; it must exit 0), removes its directory and shuts gRPC down.  Returns 0,
 * or -1 when errqd did not exit cleanly (a cmocka teardown's failure). */
void harness_fixture_setup(struct errqd_proc *p);
int harness_fixture_teardown(struct errqd_proc *p);
/* Runs errqd to completion with args (for refusals): returns exit status; stderr in *err. */
int errqd_run_once(const char *const *args, char **err);

/* Runs argv with ERRQ_ADDR=addr; returns exit status, stdout in *out, stderr in *err
 * (malloc'd, NUL-terminated; pass NULL to discard). */
int run_capture(const char *const *argv, const char *addr, char **out, char **err);
/* Runs the errq CLI with args (NULL-terminated, without the program) at addr and fails the
 * test unless it exits want (and prints something to stdout).  Returns stdout, and stderr in
 * *err if err is not NULL (both malloc'd). */
char *harness_errq(const char *addr, int want, char **err, const char *const *args);

/* A raw Report stream. */
struct rawstream {
	grpc_channel *ch;
	grpc_completion_queue *cq; /* pluck queue */
	grpc_call *call;
	grpc_metadata_array md_initial, md_trailing;
	grpc_status_code status;
	grpc_slice status_details;
	grpc_byte_buffer *recv_bb;
	bool recv_posted, closed_send, got_initial_md, status_received;
};

int raw_open(struct rawstream *s, const char *addr);
/* The same on a connection of its own when conn != 0 (one per distinct conn; 0: raw_open's,
 * shared with every other channel of this process to addr). */
int raw_open_conn(struct rawstream *s, const char *addr, int conn);
/* The same with "authorization: Bearer TOKEN" (token NULL: none). */
int raw_open_token(struct rawstream *s, const char *addr, const char *token);
/* Both: a token (NULL: none) and a connection of its own (conn != 0). */
int raw_open_ex(struct rawstream *s, const char *addr, const char *token, int conn);
/* Sends one message of raw bytes; returns 0 when the write completed. */
int raw_send_bytes(struct rawstream *s, const void *p, size_t n);
int raw_send(struct rawstream *s, const Errq__V1__ReportRequest *req);
/* Receives one response: 0 with *out set, 1 when the stream ended, -1 on timeout. */
int raw_recv(struct rawstream *s, Errq__V1__ReportResponse **out, long timeout_ms);
/* Half-closes (if not yet) and waits for the final status. */
grpc_status_code raw_finish(struct rawstream *s, char *details, size_t dsz);
void raw_free(struct rawstream *s);

/* Test events: a TaskFailure whose strings the harness owns (free with tevent_free). */
Errq__V1__TaskFailure *tevent_new(struct errq_idgen *g, const char *service, const char *type, const char *msg);
void tevent_set(char **field, const char *v);
void tevent_free(Errq__V1__TaskFailure *tf);
/* A request of n test events (tevent_new); free with treq_free, which frees n_failures of them. */
Errq__V1__ReportRequest *treq_new(struct errq_idgen *g, uint64_t seq, size_t n, const char *service, const char *type,
				  const char *msg);
void treq_free(Errq__V1__ReportRequest *r);

/* Sends n (1..16) failures of service in one batch on a stream of its own and waits for
 * the answer (= committed).  Returns the events accepted, or -1. */
int report_batch(const char *addr, struct errq_idgen *g, int n, const char *service, const char *type);
/* As report_batch, with the message, the task (NULL: none) and, when ids_hex is not NULL, the
 * events' ids in hex (ids_hex[0..n-1]). */
int report_failures(const char *addr, struct errq_idgen *g, int n, const char *service, const char *type,
		    const char *msg, const char *task, char (*ids_hex)[ERRQ_ID_HEX_BUFSZ]);

/* Sends req on a stream of its own, waits for its answer and the call's OK: the events
 * accepted, or -1.  report_event: ev alone in a batch (seq 1; the caller keeps ev). */
int report_request(const char *addr, const Errq__V1__ReportRequest *req);
int report_event(const char *addr, Errq__V1__TaskFailure *ev);

/* Lists events through the Query API; returns the count (up to max), ids copied to ids. */
int query_event_ids(const char *addr, uint8_t (*ids)[16], int max);
Errq__V1__ListEventsResponse *query_events(const char *addr, uint32_t limit);
Errq__V1__ListGroupsResponse *query_groups(const char *addr, uint32_t limit);
/* errq.v1.Query/Status; NULL on failure.  Free with errq__v1__status_response__free_unpacked. */
Errq__V1__StatusResponse *query_status(const char *addr);

/* A raw Tail stream (errq.v1.Query/Tail). */
struct tailstream {
	grpc_channel *ch;
	grpc_completion_queue *cq; /* pluck queue */
	grpc_call *call;
	grpc_metadata_array md_initial, md_trailing;
	grpc_status_code status;
	grpc_slice status_details;
	grpc_byte_buffer *recv_bb, *send_bb;
	bool recv_posted;
	bool status_received;
};
int tail_open(struct tailstream *t, const char *addr, const Errq__V1__TailRequest *req);
/* 0 with *out set, 1 when the stream ended, -1 on timeout. */
int tail_recv(struct tailstream *t, Errq__V1__TailMessage **out, long timeout_ms);
/* Waits for the stream's end (within HARNESS_DEADLINE_MS): its status, and its details in
 * details (may be NULL).  GRPC_STATUS_DEADLINE_EXCEEDED when it did not end. */
grpc_status_code tail_status(struct tailstream *t, char *details, size_t dsz);
void tail_free(struct tailstream *t);

/* One HTTP/1.1 request to 127.0.0.1:port (errqd's HTTP listener).  extra_headers is "" or
 * lines each ending in CRLF.  Returns 0 with the status, and (malloc'd, may pass NULL) the
 * header block and the body; -1 when no answer came.  Answers over HARNESS_HTTP_MAX fail. */
#define HARNESS_HTTP_MAX (8u << 20)
int http_request(int port, const char *method, const char *path, const char *extra_headers, int *status,
		 char **headers, char **body);

/* The value of the unlabelled series `name` on errqd's /metrics (fails the test when the
 * scrape fails or the series is missing). */
uint64_t http_metric(int port, const char *name);

/* grpc.health.v1.Health/Check for service: the serving status (SERVING = 1, NOT_SERVING = 2),
 * or -1 when the call failed (its status in *call_status) or the answer did not decode. */
int health_check(const char *addr, const char *service, grpc_status_code *call_status);

/* A unary Query call: returns the status; on OK *resp holds the response bytes (unref). */
grpc_status_code query_call(const char *addr, const char *method, const ProtobufCMessage *req, grpc_slice *resp,
			    char *details, size_t dsz);

/* A load of NSTREAMS raw streams, each on its own thread, sending batches of `batch` events
 * with `inflight` batches outstanding, until loadgen_stop() or max_batches per stream.  It
 * records every event id and which batches were acknowledged, to check against the database. */
#define LOADGEN_MAX_STREAMS 32
#define LOADGEN_POLL_MS 5 /* while a send waits for flow control, answers are taken this often */
struct loadgen_stream;
struct loadgen {
	const char *addr;
	int nstreams, batch, inflight, max_batches;
	const char *service_prefix;
	atomic_int acked_batches;
	atomic_bool stop;
	struct loadgen_stream *st[LOADGEN_MAX_STREAMS];
};
int loadgen_start(struct loadgen *lg);
/* Asks the streams to stop, waits for them to end (collecting late answers), returns 0. */
int loadgen_stop(struct loadgen *lg);
/* Totals after loadgen_stop: batches sent and acknowledged, streams that ended UNAVAILABLE. */
void loadgen_totals(struct loadgen *lg, int *sent, int *acked, int *unavailable);
/* Reads of a collector's database behind its back (db: errqd_proc.db, a SQLite path or a
 * PostgreSQL URL), for tests that check what was committed.  NULL when it cannot be opened. */
struct harness_db;
struct harness_db *harness_db_open(const char *db);
/* The same, for writes too (SQLite opens read-only otherwise). */
struct harness_db *harness_db_open_rw(const char *db);
/* 1 when events holds the event id, 0 when not, -1 on error. */
int harness_db_has_event(struct harness_db *h, const uint8_t id[16]);
/* The first column of the first row of sql (SQL both backends take, as harness_db_query's;
 * its one parameter, $1 or ?1, bound to the text arg when not NULL), as an integer: 0 when
 * there is no row or it is NULL, -1 on error. */
int64_t harness_db_int(struct harness_db *h, const char *sql, const char *arg);
/* Every row of sql (arg as harness_db_int's) to cb, as text (NULL for NULL), until cb returns
 * non-zero: the rows seen, or -1 on error.  SQLite's ?N and hex(BLOB) are translated for
 * PostgreSQL ($N, upper(encode(BLOB, 'hex'))), so a test's SQL reads both. */
typedef int (*harness_row_cb)(void *ctx, int ncols, const char *const *vals);
int harness_db_query(struct harness_db *h, const char *sql, const char *arg, harness_row_cb cb, void *ctx);
/* Runs sql (no result wanted): 0, or -1 with the reason on stderr. */
int harness_db_exec(struct harness_db *h, const char *sql);
void harness_db_close(struct harness_db *h);
/* Opens db and takes its write lock away from the collector until harness_db_close (which
 * rolls back): SQLite's BEGIN IMMEDIATE; PostgreSQL's LOCK TABLE events IN SHARE MODE, which
 * lets reads through and makes the writer's insert wait for its lock_timeout and retry, as
 * SQLite's busy timeout does.  The handle reads as harness_db_open's.  NULL on failure. */
struct harness_db *harness_db_lock(const char *db);

/* Counts acknowledged events missing from the database (0 = none lost). */
int loadgen_missing_acked(struct loadgen *lg, const char *db_path);
/* marks[i] (one per stream): how many of stream i's first batches are acknowledged now (any
 * thread, while the load runs).  Answers come in order, so these batches are all acked. */
void loadgen_ack_marks(struct loadgen *lg, int *marks);
/* As loadgen_missing_acked, for the batches below marks[i] only (after loadgen_stop). */
int loadgen_missing_acked_before(struct loadgen *lg, const int *marks, const char *db_path);
void loadgen_free(struct loadgen *lg);
#endif
