#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "pg_support.h"
#include "grpc/health/v1/health.pb-c.h"
#include "errq_spawn.h"
#include "errq_str.h"
#include "errq_time.h"

void harness_msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Builds errqd's argv: optionally under valgrind (ERRQ_VALGRIND=1, used by make test-long). */
static int build_argv(const char **argv, int max, const char *const *args)
{
	int n = 0;
	if (getenv("ERRQ_VALGRIND") && *getenv("ERRQ_VALGRIND") == '1') {
		argv[n++] = "valgrind";
		argv[n++] = "--leak-check=full";
		argv[n++] = "--errors-for-leak-kinds=definite";
		argv[n++] = "--error-exitcode=99";
		argv[n++] = "--quiet";
	}
	argv[n++] = ERRQD_PATH;
	for (int i = 0; args && args[i] && n < max - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return n;
}

enum harness_backend harness_backend(void)
{
	const char *b = getenv("ERRQ_TEST_BACKEND");
	if (!b || !*b || !strcmp(b, "sqlite"))
		return HARNESS_SQLITE;
	if (!strcmp(b, "postgres"))
		return HARNESS_POSTGRES;
	fail_msg("ERRQ_TEST_BACKEND is '%s': want sqlite or postgres", b);
	return HARNESS_SQLITE;
}

const char *harness_storage_name(void)
{
	return harness_backend() == HARNESS_POSTGRES ? "postgres" : "sqlite";
}

const char *harness_durability_name(void)
{
	return harness_backend() == HARNESS_POSTGRES ? "server" : "normal";
}

_Static_assert(HARNESS_DB_MAX >= PG_TEST_URL_MAX, "errqd_proc.db holds a test database's URL");

/* p->db: the SQLite file in p->dir, or (PostgreSQL) the URL of p's own database, made at the
 * first start and kept across restarts until errqd_cleanup drops it. */
static int choose_db(struct errqd_proc *p)
{
	char err[512];
	if (harness_backend() == HARNESS_SQLITE) {
		errq_snprintf(p->db, sizeof(p->db), "%s/errq.db", p->dir);
		return 0;
	}
	if (!p->pg) {
		p->pg = calloc(1, sizeof(*p->pg));
		if (!p->pg || pg_test_db_create(p->pg, program_invocation_short_name, err, sizeof(err))) {
			fprintf(stderr, "harness: %s\n", p->pg ? err : "out of memory");
			free(p->pg);
			p->pg = NULL;
			return -1;
		}
	}
	if (errq_snprintf(p->db, sizeof(p->db), "%s", p->pg->url) < 0)
		return -1;
	return 0;
}

int errqd_start(struct errqd_proc *p, const char *const *extra)
{
	if (!p->dir[0]) {
		errq_snprintf(p->dir, sizeof(p->dir), "/tmp/errq-test-XXXXXX");
		if (!mkdtemp(p->dir))
			return -1;
	}
	if (choose_db(p))
		return -1;
	errq_snprintf(p->log, sizeof(p->log), "%s/errqd.log", p->dir);
	char portfile[400];
	errq_snprintf(portfile, sizeof(portfile), "%s/port", p->dir);
	unlink(portfile);
	const char *args[64];
	int n = 0;
	char listen[64];
	errq_snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->listen_port);
	const char *base[] = {"--listen", listen, "--db", p->db, "--port-file", portfile, "--log-level", "debug"};
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		args[n++] = base[i];
	bool http_given = false;
	for (int i = 0; extra && extra[i] && n < 60; i++) {
		http_given |= strcmp(extra[i], "--http-listen") == 0;
		args[n++] = extra[i];
	}
	if (!http_given) { /* never the default fixed port: tests run in parallel */
		args[n++] = "--http-listen";
		args[n++] = "127.0.0.1:0";
	}
	args[n] = NULL;
	const char *argv[80];
	build_argv(argv, 80, args);
	/* a test that dies (or fails and is torn down) must not leave its errqd running; errqd
	 * reads ERRQ_<SETTING>: a developer's own must not leak in; both outputs to the log (a
	 * restart appends): an orphan must never hold the test's pipes */
	struct errq_spawn_opts so = {.argv = argv, .out_path = p->log, .append = true, .pdeath_sig = SIGKILL,
				     .drop_env_prefix = "ERRQ_"};
	char err[256];
	int ports[2];
	if (errq_spawn(&p->child, &so, err, sizeof(err))) {
		fprintf(stderr, "harness: %s\n", err);
		return -1;
	}
	p->pid = p->child.pid;
	if (errq_child_wait_ports(&p->child, portfile, HARNESS_DEADLINE_MS, ports, err, sizeof(err))) {
		fprintf(stderr, "harness: errqd %s; log %s\n", err, p->log);
		errq_child_stop(&p->child, SIGKILL, HARNESS_DEADLINE_MS);
		p->pid = 0;
		return -1;
	}
	p->port = ports[0];
	p->http_port = ports[1];
	errq_snprintf(p->addr, sizeof(p->addr), "127.0.0.1:%d", p->port);
	return 0;
}

int errqd_stop(struct errqd_proc *p, int sig)
{
	if (!p->pid)
		return -1;
	int st = errq_child_stop(&p->child, sig, HARNESS_DEADLINE_MS);
	p->pid = 0;
	return p->child.killed ? -1 : st;
}

int harness_quiet_port(void)
{
	int lo = 32768, hi = 60999; /* Linux's default, when /proc does not say */
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	/* below the range, from a point that differs between concurrent test processes */
	int span = lo > 11024 ? 10000 : lo - 1024;
	if (span <= 0)
		return 0;
	int start = (int)((unsigned)getpid() * 7919u % (unsigned)span);
	for (int i = 0; i < span; i++) {
		int port = lo - 1 - (start + i) % span;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return 0;
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return 0;
}

void errqd_cleanup(struct errqd_proc *p)
{
	if (p->pid)
		errqd_stop(p, SIGKILL);
	if (p->dir[0] && !getenv("ERRQ_KEEP_TMP")) {
		char cmd[400];
		errq_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "harness: cannot remove %s\n", p->dir);
	}
	p->dir[0] = '\0';
	if (p->pg) {
		char err[512];
		if (pg_test_db_drop(p->pg, err, sizeof(err)))
			fprintf(stderr, "harness: %s\n", err);
		free(p->pg);
		p->pg = NULL;
	}
}

void harness_fixture_setup(struct errqd_proc *p)
{
	grpc_init();
	memset(p, 0, sizeof(*p));
}

int harness_fixture_teardown(struct errqd_proc *p)
{
	int st = p->pid ? errqd_stop(p, SIGTERM) : 0;
	errqd_cleanup(p);
	grpc_shutdown_blocking();
	return st == 0 ? 0 : -1;
}

static char *slurp_fd(int fd)
{
	struct errq_buf b;
	errq_buf_init(&b, 64u << 20);
	char chunk[4096];
	ssize_t r;
	while ((r = read(fd, chunk, sizeof(chunk))) > 0)
		errq_buf_add(&b, chunk, (size_t)r);
	if (!b.p)
		return strdup("");
	return b.p;
}

/* Runs argv (argv[0] a path) with ERRQ_ADDR set; captures both outputs through temp files. */
static int run_impl(const char *const *argv, const char *addr, char **out, char **err)
{
	char of[] = "/tmp/errq-out-XXXXXX", ef[] = "/tmp/errq-err-XXXXXX";
	int ofd = mkstemp(of), efd = mkstemp(ef);
	if (ofd < 0 || efd < 0)
		return -1;
	unlink(of);
	unlink(ef);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		if (addr)
			setenv("ERRQ_ADDR", addr, 1);
		setenv("NO_COLOR", "1", 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = 0, rc = -1;
	for (int waited = 0; waited < HARNESS_DEADLINE_MS; waited += 5) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			rc = errq_exit_code(st);
			break;
		}
		harness_msleep(5);
	}
	if (rc == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	lseek(ofd, 0, SEEK_SET);
	lseek(efd, 0, SEEK_SET);
	if (out)
		*out = slurp_fd(ofd);
	if (err)
		*err = slurp_fd(efd);
	close(ofd);
	close(efd);
	return rc;
}

int run_capture(const char *const *argv, const char *addr, char **out, char **err)
{
	return run_impl(argv, addr, out, err);
}

char *harness_errq(const char *addr, int want, char **err, const char *const *args)
{
	const char *argv[32];
	int n = 0;
	argv[n++] = ERRQ_CLI_PATH;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char *out = NULL, *e = NULL;
	int rc = run_capture(argv, addr, &out, &e);
	if (rc != want || !out)
		fail_msg("errq %s %s exited %d, want %d\nstdout: %s\nstderr: %s", argv[1], n > 2 ? argv[2] : "", rc, want,
			 out ? out : "", e ? e : "");
	if (err)
		*err = e;
	else
		free(e);
	return out;
}

int errqd_run_once(const char *const *args, char **err)
{
	const char *argv[80];
	build_argv(argv, 80, args);
	if (strcmp(argv[0], "valgrind") == 0) { /* run_impl wants a path: skip valgrind here */
		int i = 0;
		while (strcmp(argv[i], ERRQD_PATH) != 0)
			i++;
		return run_impl(argv + i, NULL, NULL, err);
	}
	return run_impl(argv, NULL, NULL, err);
}

/* ---- raw stream ---- */

#define TAG_START ((void *)1)
#define TAG_SEND ((void *)2)
#define TAG_RECV ((void *)3)
#define TAG_STATUS ((void *)4)
#define TAG_CLOSE ((void *)5)

static bool pluck(struct rawstream *s, void *tag, long timeout_ms)
{
	grpc_event ev = grpc_completion_queue_pluck(s->cq, tag, errq_deadline_ms(timeout_ms), NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

int raw_open(struct rawstream *s, const char *addr)
{
	return raw_open_token(s, addr, NULL);
}

int raw_open_conn(struct rawstream *s, const char *addr, int conn)
{
	return raw_open_ex(s, addr, NULL, conn);
}

int raw_open_token(struct rawstream *s, const char *addr, const char *token)
{
	return raw_open_ex(s, addr, token, 0);
}

int raw_open_ex(struct rawstream *s, const char *addr, const char *token, int conn)
{
	/* channels with the same arguments share one connection (gRPC's subchannel pool): a
	 * private argument of its own keeps this one apart */
	const struct errq_chan_arg apart = {"errq.test.connection", conn};
	char authz[600];
	grpc_metadata md;
	memset(s, 0, sizeof(*s));
	s->ch = conn ? errq_channel_new_ex(addr, NULL, &apart, 1) : errq_channel_new(addr);
	s->cq = grpc_completion_queue_create_for_pluck(NULL);
	s->call = grpc_channel_create_call(s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
					   grpc_slice_from_static_string("/errq.v1.Collector/Report"), NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_metadata_array_init(&s->md_initial);
	grpc_metadata_array_init(&s->md_trailing);
	s->status_details = grpc_empty_slice();
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
	if (token) {
		errq_snprintf(authz, sizeof(authz), "Bearer %s", token);
		md.key = grpc_slice_from_static_string("authorization");
		md.value = grpc_slice_from_copied_string(authz);
		ops[0].data.send_initial_metadata.count = 1;
		ops[0].data.send_initial_metadata.metadata = &md;
	}
	grpc_call_error ce = grpc_call_start_batch(s->call, ops, 1, TAG_START, NULL);
	if (ce != GRPC_CALL_OK) {
		if (token)
			grpc_slice_unref(md.value);
		return -1;
	}
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].flags = 0;
	ops[0].data.recv_status_on_client.trailing_metadata = &s->md_trailing;
	ops[0].data.recv_status_on_client.status = &s->status;
	ops[0].data.recv_status_on_client.status_details = &s->status_details;
	if (grpc_call_start_batch(s->call, ops, 1, TAG_STATUS, NULL) != GRPC_CALL_OK) {
		if (token)
			grpc_slice_unref(md.value);
		return -1;
	}
	bool started = pluck(s, TAG_START, HARNESS_DEADLINE_MS); /* the metadata is sent by then */
	if (token)
		grpc_slice_unref(md.value);
	return started ? 0 : -1;
}

/* Starts sending bb on s (tag TAG_SEND); bb stays the caller's. */
static bool send_start(struct rawstream *s, grpc_byte_buffer *bb)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = bb;
	return grpc_call_start_batch(s->call, &op, 1, TAG_SEND, NULL) == GRPC_CALL_OK;
}

int raw_send_bytes(struct rawstream *s, const void *p, size_t n)
{
	grpc_slice sl = grpc_slice_from_copied_buffer(p, n);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	int rc = -1;
	if (send_start(s, bb))
		rc = pluck(s, TAG_SEND, HARNESS_DEADLINE_MS) ? 0 : -1;
	grpc_byte_buffer_destroy(bb);
	return rc;
}

int raw_send(struct rawstream *s, const Errq__V1__ReportRequest *req)
{
	size_t n = errq__v1__report_request__get_packed_size(req);
	uint8_t *buf = malloc(n ? n : 1);
	errq__v1__report_request__pack(req, buf);
	int rc = raw_send_bytes(s, buf, n);
	free(buf);
	return rc;
}

int raw_recv(struct rawstream *s, Errq__V1__ReportResponse **out, long timeout_ms)
{
	*out = NULL;
	if (!s->recv_posted) {
		grpc_op ops[2];
		size_t n = 0;
		memset(ops, 0, sizeof(ops));
		if (!s->got_initial_md) { /* the first receive also takes the initial metadata */
			ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
			ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->md_initial;
			s->got_initial_md = true;
		}
		ops[n].op = GRPC_OP_RECV_MESSAGE;
		ops[n++].data.recv_message.recv_message = &s->recv_bb;
		if (grpc_call_start_batch(s->call, ops, n, TAG_RECV, NULL) != GRPC_CALL_OK)
			return -1;
		s->recv_posted = true;
	}
	grpc_event ev = grpc_completion_queue_pluck(s->cq, TAG_RECV, errq_deadline_ms(timeout_ms), NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT)
		return -1; /* still posted: a later call picks it up */
	s->recv_posted = false;
	if (!ev.success || !s->recv_bb)
		return 1;
	grpc_slice sl = errq_bb_flatten(s->recv_bb);
	grpc_byte_buffer_destroy(s->recv_bb);
	s->recv_bb = NULL;
	*out = errq__v1__report_response__unpack(NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
	grpc_slice_unref(sl);
	return *out ? 0 : -1;
}

grpc_status_code raw_finish(struct rawstream *s, char *details, size_t dsz)
{
	if (!s->closed_send) {
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		if (grpc_call_start_batch(s->call, &op, 1, TAG_CLOSE, NULL) == GRPC_CALL_OK)
			pluck(s, TAG_CLOSE, HARNESS_DEADLINE_MS);
		s->closed_send = true;
	}
	/* drain responses until the server ends the stream */
	Errq__V1__ReportResponse *r;
	int rr;
	while ((rr = raw_recv(s, &r, HARNESS_DEADLINE_MS)) == 0)
		errq__v1__report_response__free_unpacked(r, NULL);
	if (!s->status_received) {
		grpc_event ev =
		    grpc_completion_queue_pluck(s->cq, TAG_STATUS, errq_deadline_ms(HARNESS_DEADLINE_MS), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			return GRPC_STATUS_DEADLINE_EXCEEDED;
		s->status_received = true;
	}
	if (details) {
		size_t n = GRPC_SLICE_LENGTH(s->status_details);
		if (n >= dsz)
			n = dsz - 1;
		memcpy(details, GRPC_SLICE_START_PTR(s->status_details), n);
		details[n] = '\0';
	}
	return s->status;
}

/* The teardown both client streams share: cancel the call, collect its outstanding
 * completions (status_tag unless already received, recv_tag when a read is posted), then
 * free the call, its queue, its channel and its metadata.  The status details are freed
 * after the status completion, which may fill them (a pointer, not a copy taken before). */
static void stream_teardown(grpc_channel *ch, grpc_completion_queue *cq, grpc_call *call, void *status_tag,
			    void *recv_tag, grpc_byte_buffer *recv_bb, grpc_metadata_array *md_initial,
			    grpc_metadata_array *md_trailing, grpc_slice *status_details)
{
	grpc_call_cancel(call, NULL);
	if (status_tag)
		grpc_completion_queue_pluck(cq, status_tag, errq_deadline_ms(HARNESS_DEADLINE_MS), NULL);
	if (recv_tag)
		grpc_completion_queue_pluck(cq, recv_tag, errq_deadline_ms(HARNESS_DEADLINE_MS), NULL);
	if (recv_bb)
		grpc_byte_buffer_destroy(recv_bb);
	grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	grpc_channel_destroy(ch);
	grpc_metadata_array_destroy(md_initial);
	grpc_metadata_array_destroy(md_trailing);
	grpc_slice_unref(*status_details);
}

void raw_free(struct rawstream *s)
{
	if (!s->call)
		return;
	stream_teardown(s->ch, s->cq, s->call, s->status_received ? NULL : TAG_STATUS, s->recv_posted ? TAG_RECV : NULL,
			s->recv_bb, &s->md_initial, &s->md_trailing, &s->status_details);
	memset(s, 0, sizeof(*s));
}

/* ---- events ---- */

void tevent_set(char **field, const char *v)
{
	if (*field && *field != protobuf_c_empty_string)
		free(*field);
	*field = strdup(v);
}

Errq__V1__TaskFailure *tevent_new(struct errq_idgen *g, const char *service, const char *type, const char *msg)
{
	Errq__V1__TaskFailure *tf = calloc(1, sizeof(*tf));
	errq__v1__task_failure__init(tf);
	tf->event_id.data = malloc(16);
	tf->event_id.len = 16;
	errq_idgen_next(g, errq_now_ns() / ERRQ_NS_PER_MS, tf->event_id.data);
	tf->time_unix_nano = errq_now_ns();
	if (service)
		tevent_set(&tf->service, service);
	if (type)
		tevent_set(&tf->error_type, type);
	if (msg)
		tevent_set(&tf->message, msg);
	tf->attempt = 1;
	return tf;
}

void tevent_free(Errq__V1__TaskFailure *tf)
{
	if (!tf)
		return;
	char **fields[] = {&tf->service, &tf->environment, &tf->release, &tf->host, &tf->task,
			   &tf->error_type, &tf->error_code, &tf->message, &tf->fingerprint};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (*fields[i] && *fields[i] != protobuf_c_empty_string)
			free(*fields[i]);
	for (size_t i = 0; i < tf->n_frames; i++) {
		free(tf->frames[i]->function);
		free(tf->frames[i]->file);
		free(tf->frames[i]);
	}
	free(tf->frames);
	for (size_t i = 0; i < tf->n_details; i++) {
		free(tf->details[i]->key);
		free(tf->details[i]->value);
		free(tf->details[i]);
	}
	free(tf->details);
	free(tf->event_id.data);
	free(tf);
}

/* ---- queries ---- */

Errq__V1__ListEventsResponse *query_events(const char *addr, uint32_t limit)
{
	grpc_channel *ch = errq_channel_new(addr);
	Errq__V1__ListEventsRequest req = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	req.limit = limit;
	struct errq_unary_result r;
	Errq__V1__ListEventsResponse *out = NULL;
	if (errq_unary_call(ch, "/errq.v1.Query/ListEvents", &req.base, HARNESS_DEADLINE_MS, &r) == 0 &&
	    r.status == GRPC_STATUS_OK && r.has_resp)
		out = errq__v1__list_events_response__unpack(NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
	else
		fprintf(stderr, "harness: ListEvents failed: %s %s\n", errq_status_name(r.status), r.details);
	errq_unary_result_free(&r);
	grpc_channel_destroy(ch);
	return out;
}

Errq__V1__ListGroupsResponse *query_groups(const char *addr, uint32_t limit)
{
	grpc_channel *ch = errq_channel_new(addr);
	Errq__V1__ListGroupsRequest req = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	req.limit = limit;
	struct errq_unary_result r;
	Errq__V1__ListGroupsResponse *out = NULL;
	if (errq_unary_call(ch, "/errq.v1.Query/ListGroups", &req.base, HARNESS_DEADLINE_MS, &r) == 0 &&
	    r.status == GRPC_STATUS_OK && r.has_resp)
		out = errq__v1__list_groups_response__unpack(NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
	else
		fprintf(stderr, "harness: ListGroups failed: %s %s\n", errq_status_name(r.status), r.details);
	errq_unary_result_free(&r);
	grpc_channel_destroy(ch);
	return out;
}

Errq__V1__StatusResponse *query_status(const char *addr)
{
	grpc_channel *ch = errq_channel_new(addr);
	Errq__V1__StatusRequest req = ERRQ__V1__STATUS_REQUEST__INIT;
	struct errq_unary_result r;
	Errq__V1__StatusResponse *out = NULL;
	if (errq_unary_call(ch, "/errq.v1.Query/Status", &req.base, HARNESS_DEADLINE_MS, &r) == 0 &&
	    r.status == GRPC_STATUS_OK && r.has_resp)
		out = errq__v1__status_response__unpack(NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
	else
		fprintf(stderr, "harness: Status failed: %s %s\n", errq_status_name(r.status), r.details);
	errq_unary_result_free(&r);
	grpc_channel_destroy(ch);
	return out;
}

int query_event_ids(const char *addr, uint8_t (*ids)[16], int max)
{
	Errq__V1__ListEventsResponse *r = query_events(addr, (uint32_t)max);
	if (!r)
		return -1;
	int n = 0;
	for (size_t i = 0; i < r->n_events && n < max; i++)
		if (r->events[i]->event_id.len == 16)
			memcpy(ids[n++], r->events[i]->event_id.data, 16);
	errq__v1__list_events_response__free_unpacked(r, NULL);
	return n;
}

/* ---- load generator ---- */

struct loadgen_stream {
	pthread_t th;
	struct loadgen *lg;
	int idx;
	struct errq_idgen g;
	uint8_t *ids;  /* max_batches * batch * 16 */
	bool *acked;   /* max_batches */
	atomic_int acked_upto; /* batches 0..n-1 all acknowledged (answers come in order) */
	int sent;
	grpc_status_code status;
};

static void lg_mark(struct loadgen_stream *st, Errq__V1__ReportResponse *r)
{
	if (r->seq < (uint64_t)st->sent && r->accepted + r->duplicates == (uint32_t)st->lg->batch) {
		st->acked[r->seq] = true;
		atomic_fetch_add(&st->lg->acked_batches, 1);
		if ((int)r->seq == atomic_load(&st->acked_upto))
			atomic_store(&st->acked_upto, (int)r->seq + 1);
	}
	errq__v1__report_response__free_unpacked(r, NULL);
}

/* Sends req like raw_send, but while the write waits for HTTP/2 flow control (errqd is not
 * reading this stream: backpressure; its window is only TRANSPORT_STREAM_LOOKAHEAD, 4 KiB)
 * takes the answers that arrive, as a client that keeps a read posted does (liberrq): a blocked
 * write must not hide acknowledgements errqd has sent.  *answered counts them. */
static int lg_send(struct loadgen_stream *st, struct rawstream *s, const Errq__V1__ReportRequest *req, int *answered)
{
	grpc_byte_buffer *bb = errq_bb_from_msg(&req->base);
	int rc = -1;
	if (send_start(s, bb)) {
		uint64_t deadline = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
		for (;;) {
			grpc_event ev = grpc_completion_queue_pluck(s->cq, TAG_SEND, errq_deadline_ms(LOADGEN_POLL_MS), NULL);
			if (ev.type == GRPC_OP_COMPLETE) {
				rc = ev.success ? 0 : -1;
				break;
			}
			if (errq_mono_ns() > deadline)
				break;
			Errq__V1__ReportResponse *r;
			while (*answered < st->sent && raw_recv(s, &r, 0) == 0) {
				(*answered)++;
				lg_mark(st, r);
			}
		}
	}
	grpc_byte_buffer_destroy(bb);
	return rc;
}

static void *lg_main(void *arg)
{
	struct loadgen_stream *st = arg;
	struct loadgen *lg = st->lg;
	struct rawstream s;
	if (raw_open(&s, lg->addr)) {
		raw_free(&s);
		return NULL;
	}
	Errq__V1__TaskFailure **evs = calloc((size_t)lg->batch, sizeof(*evs));
	int answered = 0; /* answers taken, of st->sent batches */
	char svc[64];
	errq_snprintf(svc, sizeof(svc), "%s-%d", lg->service_prefix, st->idx);
	for (int seq = 0; seq < lg->max_batches && !atomic_load(&lg->stop); seq++) {
		Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
		req.seq = (uint64_t)seq;
		req.n_failures = (size_t)lg->batch;
		req.failures = evs;
		for (int i = 0; i < lg->batch; i++) {
			evs[i] = tevent_new(&st->g, svc, i % 2 ? "TimeoutError" : "ConnectionError", "deadline exceeded");
			memcpy(st->ids + ((size_t)seq * (size_t)lg->batch + (size_t)i) * 16, evs[i]->event_id.data, 16);
		}
		st->sent = seq + 1; /* before the send: an answer may come for it */
		int rc = lg_send(st, &s, &req, &answered);
		for (int i = 0; i < lg->batch; i++)
			tevent_free(evs[i]);
		if (rc)
			break;
		if (st->sent - answered > lg->inflight) {
			Errq__V1__ReportResponse *r;
			if (raw_recv(&s, &r, HARNESS_DEADLINE_MS) != 0)
				break;
			answered++;
			lg_mark(st, r);
		}
	}
	free(evs);
	if (!s.closed_send) {
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		if (grpc_call_start_batch(s.call, &op, 1, TAG_CLOSE, NULL) == GRPC_CALL_OK)
			pluck(&s, TAG_CLOSE, HARNESS_DEADLINE_MS);
		s.closed_send = true;
	}
	Errq__V1__ReportResponse *r;
	while (raw_recv(&s, &r, HARNESS_DEADLINE_MS) == 0)
		lg_mark(st, r);
	st->status = raw_finish(&s, NULL, 0);
	raw_free(&s);
	return NULL;
}

int loadgen_start(struct loadgen *lg)
{
	atomic_store(&lg->acked_batches, 0);
	atomic_store(&lg->stop, false);
	if (lg->nstreams > LOADGEN_MAX_STREAMS)
		return -1;
	for (int i = 0; i < lg->nstreams; i++) {
		struct loadgen_stream *st = calloc(1, sizeof(*st));
		st->lg = lg;
		st->idx = i;
		errq_idgen_init(&st->g);
		st->ids = calloc((size_t)lg->max_batches * (size_t)lg->batch, 16);
		st->acked = calloc((size_t)lg->max_batches, sizeof(bool));
		lg->st[i] = st;
		if (pthread_create(&st->th, NULL, lg_main, st))
			return -1;
	}
	return 0;
}

int loadgen_stop(struct loadgen *lg)
{
	atomic_store(&lg->stop, true);
	for (int i = 0; i < lg->nstreams; i++)
		pthread_join(lg->st[i]->th, NULL);
	return 0;
}

void loadgen_totals(struct loadgen *lg, int *sent, int *acked, int *unavailable)
{
	*sent = *acked = *unavailable = 0;
	for (int i = 0; i < lg->nstreams; i++) {
		struct loadgen_stream *st = lg->st[i];
		*sent += st->sent;
		*unavailable += st->status == GRPC_STATUS_UNAVAILABLE;
		for (int b = 0; b < st->sent; b++)
			*acked += st->acked[b];
	}
}

/* ---- reads of a collector's database ---- */

struct harness_db {
	sqlite3 *lite;
	PGconn *pg;
	sqlite3_stmt *has; /* SQLite: the event-id lookup, prepared once */
	bool locked;       /* harness_db_lock: a transaction to roll back at the close */
};

#define HAS_EVENT_SQL "SELECT 1 FROM events WHERE event_id = $1"

static struct harness_db *db_open(const char *db, bool write);

struct harness_db *harness_db_open(const char *db)
{
	return db_open(db, false);
}

struct harness_db *harness_db_open_rw(const char *db)
{
	return db_open(db, true);
}

struct harness_db *harness_db_lock(const char *db)
{
	struct harness_db *h = db_open(db, true);
	char err[512];
	if (!h)
		return NULL;
	if (h->lite) {
		sqlite3_busy_timeout(h->lite, HARNESS_DEADLINE_MS);
		if (sqlite3_exec(h->lite, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
			fprintf(stderr, "harness: lock %s: %s\n", db, sqlite3_errmsg(h->lite));
			harness_db_close(h);
			return NULL;
		}
		h->locked = true;
		return h;
	}
	if (pg_test_exec(h->pg, "BEGIN", err, sizeof(err)) ||
	    pg_test_exec(h->pg, "LOCK TABLE events IN SHARE MODE", err, sizeof(err))) {
		fprintf(stderr, "harness: %s\n", err);
		harness_db_close(h);
		return NULL;
	}
	h->locked = true;
	return h;
}

static struct harness_db *db_open(const char *db, bool write)
{
	struct harness_db *h = calloc(1, sizeof(*h));
	char err[512];
	if (!h)
		return NULL;
	if (!strncmp(db, "postgres://", 11) || !strncmp(db, "postgresql://", 13)) {
		struct pg_test_db d = {0};
		errq_snprintf(d.url, sizeof(d.url), "%s", db);
		h->pg = pg_test_connect(&d, err, sizeof(err));
		if (!h->pg) {
			fprintf(stderr, "harness: %s\n", err);
			free(h);
			return NULL;
		}
		return h;
	}
	if (sqlite3_open_v2(db, &h->lite, write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h->lite, HAS_EVENT_SQL, -1, &h->has, NULL) != SQLITE_OK) {
		fprintf(stderr, "harness: %s: %s\n", db, sqlite3_errmsg(h->lite));
		harness_db_close(h);
		return NULL;
	}
	sqlite3_busy_timeout(h->lite, HARNESS_DEADLINE_MS); /* a checkpoint may hold it a moment */
	return h;
}

void harness_db_close(struct harness_db *h)
{
	if (!h)
		return;
	char err[512];
	sqlite3_finalize(h->has);
	if (h->locked && h->lite && sqlite3_exec(h->lite, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		fprintf(stderr, "harness: rollback: %s\n", sqlite3_errmsg(h->lite));
	sqlite3_close(h->lite);
	if (h->locked && h->pg && pg_test_exec(h->pg, "ROLLBACK", err, sizeof(err)))
		fprintf(stderr, "harness: %s\n", err);
	if (h->pg)
		PQfinish(h->pg);
	free(h);
}

int harness_db_has_event(struct harness_db *h, const uint8_t id[16])
{
	if (h->lite) {
		sqlite3_reset(h->has);
		sqlite3_bind_blob(h->has, 1, id, 16, SQLITE_STATIC);
		int rc = sqlite3_step(h->has);
		return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	}
	const char *vals[1] = {(const char *)id};
	int lens[1] = {16}, fmts[1] = {1};
	PGresult *r = PQexecParams(h->pg, HAS_EVENT_SQL, 1, NULL, vals, lens, fmts, 0);
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) > 0 : -1;
	if (rc < 0)
		fprintf(stderr, "harness: %s", PQerrorMessage(h->pg));
	PQclear(r);
	return rc;
}

int harness_db_exec(struct harness_db *h, const char *sql)
{
	char err[512];
	if (h->lite) {
		char *msg = NULL;
		int rc = sqlite3_exec(h->lite, sql, NULL, NULL, &msg) == SQLITE_OK ? 0 : -1;
		if (rc)
			fprintf(stderr, "harness: %s: %s\n", sql, msg ? msg : "failed");
		sqlite3_free(msg);
		return rc;
	}
	if (pg_test_exec(h->pg, sql, err, sizeof(err))) {
		fprintf(stderr, "harness: %s\n", err);
		return -1;
	}
	return 0;
}

static int pg_dialect(const char *sql, char *out, size_t n);

static int pg_dialect_inner(const char *p, size_t len, char *out, size_t n)
{
	char sub[512];
	if (len >= sizeof(sub))
		return -1;
	memcpy(sub, p, len);
	sub[len] = 0;
	return pg_dialect(sub, out, n);
}

/* SQLite's ?N and hex(X) in PostgreSQL's words (the tests' SQL is otherwise common to both). */
static int pg_dialect(const char *sql, char *out, size_t n)
{
	struct errq_buf b;
	errq_buf_init_fixed(&b, out, n);
	for (const char *c = sql; *c;) {
		bool word_start = c == sql || !(isalnum((unsigned char)c[-1]) || c[-1] == '_');
		if (*c == '?' && isdigit((unsigned char)c[1])) {
			errq_buf_addstr(&b, "$");
			c++;
		} else if (word_start && !strncmp(c, "hex(", 4)) {
			const char *e = c + 4;
			int depth = 1;
			for (; *e && depth; e++)
				depth += *e == '(' ? 1 : *e == ')' ? -1 : 0;
			if (depth)
				return -1;
			char inner[512];
			if (pg_dialect_inner(c + 4, (size_t)(e - 1 - (c + 4)), inner, sizeof(inner)))
				return -1;
			errq_buf_printf(&b, "upper(encode(%s, 'hex'))", inner);
			c = e;
		} else {
			errq_buf_add(&b, c, 1);
			c++;
		}
	}
	return b.failed ? -1 : 0;
}

int harness_db_query(struct harness_db *h, const char *sql, const char *arg, harness_row_cb cb, void *ctx)
{
	int rows = 0;
	if (h->lite) {
		sqlite3_stmt *q = NULL;
		int rc = sqlite3_prepare_v2(h->lite, sql, -1, &q, NULL);
		if (rc == SQLITE_OK && arg)
			sqlite3_bind_text(q, 1, arg, -1, SQLITE_STATIC);
		while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
			const char *vals[16];
			int nc = sqlite3_column_count(q) < 16 ? sqlite3_column_count(q) : 16;
			for (int c = 0; c < nc; c++)
				vals[c] = (const char *)sqlite3_column_text(q, c);
			rows++;
			if (cb(ctx, nc, vals)) {
				rc = SQLITE_DONE;
				break;
			}
			rc = SQLITE_OK;
		}
		if (rc != SQLITE_DONE) {
			fprintf(stderr, "harness: %s: %s\n", sql, sqlite3_errmsg(h->lite));
			rows = -1;
		}
		sqlite3_finalize(q);
		return rows;
	}
	char pg_sql[2048];
	if (pg_dialect(sql, pg_sql, sizeof(pg_sql))) {
		fprintf(stderr, "harness: cannot translate for PostgreSQL: %s\n", sql);
		return -1;
	}
	const char *vals1[1] = {arg};
	PGresult *r = PQexecParams(h->pg, pg_sql, arg ? 1 : 0, NULL, vals1, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "harness: %s: %s", pg_sql, PQerrorMessage(h->pg));
		PQclear(r);
		return -1;
	}
	int nc = PQnfields(r) < 16 ? PQnfields(r) : 16;
	for (int row = 0; row < PQntuples(r); row++) {
		const char *vals[16];
		for (int c = 0; c < nc; c++)
			vals[c] = PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
		rows++;
		if (cb(ctx, nc, vals))
			break;
	}
	PQclear(r);
	return rows;
}

struct first_int {
	int64_t v;
};

static int take_first_int(void *ctx, int ncols, const char *const *vals)
{
	struct first_int *f = ctx;
	f->v = ncols > 0 && vals[0] ? strtoll(vals[0], NULL, 10) : 0;
	return 1;
}

int64_t harness_db_int(struct harness_db *h, const char *sql, const char *arg)
{
	struct first_int f = {0};
	return harness_db_query(h, sql, arg, take_first_int, &f) < 0 ? -1 : f.v;
}

int loadgen_missing_acked_before(struct loadgen *lg, const int *marks, const char *db_path)
{
	struct harness_db *h = harness_db_open(db_path);
	int missing = 0;
	if (!h)
		return -1;
	for (int i = 0; i < lg->nstreams; i++) {
		struct loadgen_stream *st = lg->st[i];
		int upto = marks ? marks[i] : st->sent;
		for (int b = 0; b < upto; b++) {
			if (!st->acked[b])
				continue;
			for (int k = 0; k < lg->batch; k++)
				missing += harness_db_has_event(h, st->ids + ((size_t)b * (size_t)lg->batch + (size_t)k) * 16) != 1;
		}
	}
	harness_db_close(h);
	return missing;
}

int loadgen_missing_acked(struct loadgen *lg, const char *db_path)
{
	return loadgen_missing_acked_before(lg, NULL, db_path);
}

void loadgen_ack_marks(struct loadgen *lg, int *marks)
{
	for (int i = 0; i < lg->nstreams; i++)
		marks[i] = atomic_load(&lg->st[i]->acked_upto);
}

void loadgen_free(struct loadgen *lg)
{
	for (int i = 0; i < lg->nstreams; i++) {
		if (!lg->st[i])
			continue;
		free(lg->st[i]->ids);
		free(lg->st[i]->acked);
		free(lg->st[i]);
		lg->st[i] = NULL;
	}
}

int report_failures(const char *addr, struct errq_idgen *g, int n, const char *service, const char *type,
		    const char *msg, const char *task, char (*ids_hex)[ERRQ_ID_HEX_BUFSZ])
{
	Errq__V1__TaskFailure *evs[16];
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
	int accepted;
	if (n < 1 || n > 16)
		return -1;
	req.seq = 1;
	req.n_failures = (size_t)n;
	req.failures = evs;
	for (int i = 0; i < n; i++) {
		evs[i] = tevent_new(g, service, type, msg);
		if (task)
			tevent_set(&evs[i]->task, task);
		if (ids_hex)
			errq_hex_encode(evs[i]->event_id.data, 16, ids_hex[i]);
	}
	accepted = report_request(addr, &req);
	for (int i = 0; i < n; i++)
		tevent_free(evs[i]);
	return accepted;
}

int report_request(const char *addr, const Errq__V1__ReportRequest *req)
{
	struct rawstream s;
	Errq__V1__ReportResponse *resp = NULL;
	int accepted = -1;
	if (raw_open(&s, addr) == 0 && raw_send(&s, req) == 0 && raw_recv(&s, &resp, HARNESS_DEADLINE_MS) == 0) {
		accepted = (int)resp->accepted;
		errq__v1__report_response__free_unpacked(resp, NULL);
		if (raw_finish(&s, NULL, 0) != GRPC_STATUS_OK)
			accepted = -1;
	}
	raw_free(&s);
	return accepted;
}

int report_event(const char *addr, Errq__V1__TaskFailure *ev)
{
	Errq__V1__TaskFailure *evs[1] = {ev};
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
	req.seq = 1;
	req.n_failures = 1;
	req.failures = evs;
	return report_request(addr, &req);
}

int report_batch(const char *addr, struct errq_idgen *g, int n, const char *service, const char *type)
{
	return report_failures(addr, g, n, service, type, "upstream timed out", NULL, NULL);
}

/* ---- tail ---- */

#define TAG_TAIL_START ((void *)11)
#define TAG_TAIL_RECV ((void *)12)
#define TAG_TAIL_STATUS ((void *)13)

int tail_open(struct tailstream *t, const char *addr, const Errq__V1__TailRequest *req)
{
	memset(t, 0, sizeof(*t));
	t->ch = errq_channel_new(addr);
	t->cq = grpc_completion_queue_create_for_pluck(NULL);
	t->call = grpc_channel_create_call(t->ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
					   grpc_slice_from_static_string("/errq.v1.Query/Tail"), NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_metadata_array_init(&t->md_initial);
	grpc_metadata_array_init(&t->md_trailing);
	t->status_details = grpc_empty_slice();
	t->send_bb = errq_bb_from_msg(&req->base);
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = t->send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &t->md_initial;
	if (grpc_call_start_batch(t->call, ops, 4, TAG_TAIL_START, NULL) != GRPC_CALL_OK)
		return -1;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &t->md_trailing;
	ops[0].data.recv_status_on_client.status = &t->status;
	ops[0].data.recv_status_on_client.status_details = &t->status_details;
	if (grpc_call_start_batch(t->call, ops, 1, TAG_TAIL_STATUS, NULL) != GRPC_CALL_OK)
		return -1;
	/* the server sends its headers once the subscription is live */
	grpc_event ev = grpc_completion_queue_pluck(t->cq, TAG_TAIL_START, errq_deadline_ms(HARNESS_DEADLINE_MS), NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success ? 0 : -1;
}

int tail_recv(struct tailstream *t, Errq__V1__TailMessage **out, long timeout_ms)
{
	*out = NULL;
	if (!t->recv_posted) {
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &t->recv_bb;
		if (grpc_call_start_batch(t->call, &op, 1, TAG_TAIL_RECV, NULL) != GRPC_CALL_OK)
			return -1;
		t->recv_posted = true;
	}
	grpc_event ev = grpc_completion_queue_pluck(t->cq, TAG_TAIL_RECV, errq_deadline_ms(timeout_ms), NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT)
		return -1;
	t->recv_posted = false;
	if (!ev.success || !t->recv_bb)
		return 1;
	grpc_slice sl = errq_bb_flatten(t->recv_bb);
	grpc_byte_buffer_destroy(t->recv_bb);
	t->recv_bb = NULL;
	*out = errq__v1__tail_message__unpack(NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
	grpc_slice_unref(sl);
	return *out ? 0 : -1;
}

grpc_status_code tail_status(struct tailstream *t, char *details, size_t dsz)
{
	if (!t->status_received) {
		grpc_event ev =
		    grpc_completion_queue_pluck(t->cq, TAG_TAIL_STATUS, errq_deadline_ms(HARNESS_DEADLINE_MS), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			return GRPC_STATUS_DEADLINE_EXCEEDED;
		t->status_received = true;
	}
	if (details && dsz)
		errq_snprintf(details, dsz, "%.*s", (int)GRPC_SLICE_LENGTH(t->status_details),
			      (const char *)GRPC_SLICE_START_PTR(t->status_details));
	return t->status;
}

void tail_free(struct tailstream *t)
{
	if (!t->call)
		return;
	stream_teardown(t->ch, t->cq, t->call, t->status_received ? NULL : TAG_TAIL_STATUS,
			t->recv_posted ? TAG_TAIL_RECV : NULL, t->recv_bb, &t->md_initial, &t->md_trailing,
			&t->status_details);
	grpc_byte_buffer_destroy(t->send_bb);
	memset(t, 0, sizeof(*t));
}

grpc_status_code query_call(const char *addr, const char *method, const ProtobufCMessage *req, grpc_slice *resp,
			    char *details, size_t dsz)
{
	grpc_channel *ch = errq_channel_new(addr);
	struct errq_unary_result r;
	grpc_status_code st = GRPC_STATUS_UNKNOWN;
	*resp = grpc_empty_slice();
	if (errq_unary_call(ch, method, req, HARNESS_DEADLINE_MS, &r) == 0) {
		st = r.status;
		if (st == GRPC_STATUS_OK && r.has_resp)
			*resp = grpc_slice_ref(r.resp);
	}
	if (details)
		errq_snprintf(details, dsz, "%s", r.details);
	errq_unary_result_free(&r);
	grpc_channel_destroy(ch);
	return st;
}

int http_request(int port, const char *method, const char *path, const char *extra_headers, int *status,
		 char **headers, char **body)
{
	int rc = -1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct errq_buf req, in;
	errq_buf_init(&req, 1u << 20);
	errq_buf_init(&in, HARNESS_HTTP_MAX);
	*status = 0;
	if (headers)
		*headers = NULL;
	if (body)
		*body = NULL;
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	errq_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n", method, path,
			extra_headers ? extra_headers : "");
	for (size_t off = 0; off < req.len;) {
		ssize_t n = send(fd, req.p + off, req.len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the server may answer and close before reading it all */
		off += (size_t)n;
	}
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, HARNESS_DEADLINE_MS) != 1)
			goto out;
		char buf[4096];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == ECONNRESET && in.len)
			break;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (errq_buf_add(&in, buf, (size_t)n))
			goto out;
	}
	char *eoh = in.p ? strstr(in.p, "\r\n\r\n") : NULL;
	if (!eoh || sscanf(in.p, "HTTP/1.%*d %d", status) != 1)
		goto out;
	if (headers)
		*headers = strndup(in.p, (size_t)(eoh - in.p));
	if (body)
		*body = strdup(eoh + 4);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	errq_buf_free(&req);
	errq_buf_free(&in);
	return rc;
}

int health_check(const char *addr, const char *service, grpc_status_code *call_status)
{
	Grpc__Health__V1__HealthCheckRequest hr = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	hr.service = (char *)service;
	grpc_slice resp;
	char details[256];
	*call_status = query_call(addr, "/grpc.health.v1.Health/Check", &hr.base, &resp, details, sizeof(details));
	if (*call_status != GRPC_STATUS_OK)
		return -1;
	Grpc__Health__V1__HealthCheckResponse *out =
	    grpc__health__v1__health_check_response__unpack(NULL, GRPC_SLICE_LENGTH(resp), GRPC_SLICE_START_PTR(resp));
	int st = out ? (int)out->status : -1;
	grpc__health__v1__health_check_response__free_unpacked(out, NULL);
	grpc_slice_unref(resp);
	return st;
}

Errq__V1__ReportRequest *treq_new(struct errq_idgen *g, uint64_t seq, size_t n, const char *service, const char *type,
				  const char *msg)
{
	Errq__V1__ReportRequest *r = calloc(1, sizeof(*r));
	errq__v1__report_request__init(r);
	r->seq = seq;
	r->n_failures = n;
	r->failures = calloc(n ? n : 1, sizeof(*r->failures));
	for (size_t i = 0; i < n; i++)
		r->failures[i] = tevent_new(g, service, type, msg);
	return r;
}

void treq_free(Errq__V1__ReportRequest *r)
{
	for (size_t i = 0; i < r->n_failures; i++)
		tevent_free(r->failures[i]);
	free(r->failures);
	free(r);
}

uint64_t http_metric(int port, const char *name)
{
	int status = 0;
	char *body = NULL, key[128];
	if (http_request(port, "GET", "/metrics", "", &status, NULL, &body) || status != 200)
		fail_msg("GET /metrics failed (status %d)", status);
	errq_snprintf(key, sizeof(key), "\n%s ", name);
	const char *p = strstr(body, key);
	if (!p) {
		free(body);
		fail_msg("metric %s missing", name);
	}
	uint64_t v = strtoull(p + strlen(key), NULL, 10);
	free(body);
	return v;
}
