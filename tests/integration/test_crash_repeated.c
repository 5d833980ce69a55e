/* Integration: errqd killed with SIGKILL at random moments, round after round, while client
 * processes stream into it (issue 14, "Crash, repeated").
 *
 * Each client is this program run again (`itest_crash_repeated client ...`: a process of its
 * own, with its own gRPC), streaming batches over raw gRPC with CRASH_INFLIGHT unanswered
 * at a time.  Like liberrq, it keeps every batch until answered and resends the unanswered
 * ones on a new stream when the old one breaks; an answer means "committed", and the client
 * appends the batch's event ids to its file of acknowledged ids only then.
 *
 * One more client process uses liberrq (`... libclient ...`): it reports at a steady pace
 * until SIGTERM, then closes with a long timeout; every event errq_report() took must then be
 * stored exactly once, and the library must say none was lost.
 *
 * errqd is restarted after every kill on the same database and the same port.  Before the
 * first kill a rule's circuit is opened and its webhook notice queued (the receiver is not
 * listening yet, so the delivery stays pending).  After the rounds:
 *  - every acknowledged event is stored, and none twice (group totals = stored events);
 *  - PRAGMA integrity_check says ok;
 *  - the circuit opened before the first kill is still open after the last (checked after
 *    every restart), and the notice queued before the kills reaches a real HTTP receiver.
 * Rounds: ERRQ_CRASH_ROUNDS (default 10; make test-long runs 50). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "alerts_support.h"
#include "errq.h"
#include "errq_str.h"
#include "errq_time.h"

#define CRASH_DEFAULT_ROUNDS 10
#define CRASH_MAX_ROUNDS 1000
#define CRASH_CLIENTS 3
#define CRASH_BATCH 10    /* events per batch */
#define CRASH_PACE_MS 2   /* between two batches of a client: a steady load, not a flood */
#define CRASH_INFLIGHT 8  /* unanswered batches per client */
/* A kill comes this long after the restart, at random: sometimes mid-start, mostly mid-load. */
#define CRASH_MIN_RUN_MS 50
#define CRASH_MAX_RUN_MS 700

/* ---- the client process ---- */

static volatile sig_atomic_t client_stop;

static void on_term(int sig)
{
	(void)sig;
	client_stop = 1;
}

/* SIGTERM asks a client process to finish: stop sending, wait for the last answers. */
static void catch_term(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
}

struct cbatch {
	uint64_t seq;
	uint8_t ids[CRASH_BATCH][16];
	uint8_t *bytes;
	size_t len;
};

static struct cbatch *new_batch(struct errq_idgen *g, uint64_t seq, const char *service)
{
	struct cbatch *b = calloc(1, sizeof(*b));
	Errq__V1__ReportRequest *r = treq_new(g, seq, CRASH_BATCH, service, "ConnectionError", "peer reset");
	for (int i = 0; i < CRASH_BATCH; i++)
		memcpy(b->ids[i], r->failures[i]->event_id.data, 16);
	b->seq = seq;
	b->len = errq__v1__report_request__get_packed_size(r);
	b->bytes = malloc(b->len);
	errq__v1__report_request__pack(r, b->bytes);
	treq_free(r);
	return b;
}

/* Streams until SIGTERM, then until every batch it sent is answered.  Exit 0, or 3 when an
 * answer was wrong (not the oldest batch's seq, or not every event accepted or duplicate). */
static int client_main(const char *addr, const char *ids_path, const char *service)
{
	catch_term();
	grpc_init();
	int fd = open(ids_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (fd < 0)
		return 2;
	struct errq_idgen g;
	errq_idgen_init(&g);
	struct cbatch *q[CRASH_INFLIGHT];
	int head = 0, count = 0, rc = 0;
	uint64_t seq = 0, streams = 0, resent = 0, duplicates = 0;
	while (!(client_stop && count == 0) && rc == 0) {
		struct rawstream s;
		if (raw_open(&s, addr)) {
			raw_free(&s);
			harness_msleep(20);
			continue;
		}
		streams++;
		bool ok = true;
		for (int k = 0; k < count && ok; k++, resent += streams > 1) /* resend the unanswered */
			ok = raw_send_bytes(&s, q[(head + k) % CRASH_INFLIGHT]->bytes, q[(head + k) % CRASH_INFLIGHT]->len) == 0;
		while (ok && !(client_stop && count == 0)) {
			if (!client_stop && count < CRASH_INFLIGHT) {
				harness_msleep(CRASH_PACE_MS);
				struct cbatch *b = new_batch(&g, ++seq, service);
				q[(head + count++) % CRASH_INFLIGHT] = b;
				ok = raw_send_bytes(&s, b->bytes, b->len) == 0;
				continue;
			}
			Errq__V1__ReportResponse *r;
			int got = raw_recv(&s, &r, HARNESS_DEADLINE_MS);
			if (got != 0)
				break; /* the stream ended (errqd killed) or no answer: a new stream */
			struct cbatch *b = q[head];
			if (r->seq != b->seq || r->accepted + r->duplicates != CRASH_BATCH) {
				fprintf(stderr, "client %s: answer seq %llu accepted %u duplicates %u for batch %llu\n", service,
					(unsigned long long)r->seq, r->accepted, r->duplicates, (unsigned long long)b->seq);
				rc = 3;
			}
			duplicates += r->duplicates;
			errq__v1__report_response__free_unpacked(r, NULL);
			if (write(fd, b->ids, sizeof(b->ids)) != (ssize_t)sizeof(b->ids))
				rc = 2;
			free(b->bytes);
			free(b);
			head = (head + 1) % CRASH_INFLIGHT;
			count--;
		}
		raw_free(&s);
	}
	close(fd);
	fprintf(stderr, "client %s: %llu batches, %llu streams, %llu batches resent, %llu duplicates answered\n",
		service, (unsigned long long)seq, (unsigned long long)streams, (unsigned long long)resent,
		(unsigned long long)duplicates);
	grpc_shutdown_blocking();
	return rc;
}

/* The liberrq client: reports until SIGTERM, closes, writes "reported lost accepted duplicates
 * resends reconnects" to stats_path.  Exit 0, or 2 when the file cannot be written. */
static int libclient_main(const char *addr, const char *stats_path, const char *service)
{
	catch_term();
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, addr);
	errq_options_set_service(o, service);
	/* back soon after each restart, and never give up on the collector (the client-side
	 * circuit would only delay it; nothing would be lost either way) */
	errq_options_set_reconnect_backoff(o, 20, 500);
	errq_options_set_circuit_threshold(o, 1000);
	errq_client_t *c = errq_client_new(o);
	uint64_t reported = 0;
	while (!client_stop) {
		if (errq_report_failure(c, "LibError", "E_LIB", "attempt %llu failed", (unsigned long long)reported) ==
		    ERRQ_OK)
			reported++;
		harness_msleep(1);
	}
	errq_stats_t st;
	size_t lost = errq_client_close_stats(c, 2 * HARNESS_DEADLINE_MS, &st);
	FILE *f = fopen(stats_path, "w");
	if (!f)
		return 2;
	fprintf(f, "%llu %zu %llu %llu %llu %llu\n", (unsigned long long)reported, lost, (unsigned long long)st.accepted,
		(unsigned long long)st.duplicates, (unsigned long long)st.resends, (unsigned long long)st.reconnects);
	return fclose(f) ? 2 : 0;
}

/* ---- the test ---- */

struct client_proc {
	pid_t pid;
	char ids[400], service[32];
};

static void start_client(struct client_proc *c, int i, const char *addr)
{
	errq_snprintf(c->service, sizeof(c->service), "crash-%d", i);
	errq_snprintf(c->ids, sizeof(c->ids), "%s/acked-%d.ids", E.d.dir, i);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		execl("/proc/self/exe", "itest_crash_repeated", "client", addr, c->ids, c->service, (char *)NULL);
		_exit(127);
	}
}

static int wait_client(struct client_proc *c)
{
	uint64_t end = errq_mono_ns() + 2ull * HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	int st;
	for (;;) {
		if (waitpid(c->pid, &st, WNOHANG) == c->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (errq_mono_ns() > end) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &st, 0);
			return -1;
		}
		harness_msleep(10);
	}
}

static int rounds(void)
{
	const char *v = getenv("ERRQ_CRASH_ROUNDS");
	int n = v ? atoi(v) : CRASH_DEFAULT_ROUNDS;
	return n < 1 ? 1 : n > CRASH_MAX_ROUNDS ? CRASH_MAX_ROUNDS : n;
}

/* A port on 127.0.0.1 that refuses connections until the receiver takes it: bound (so no
 * one else is given it) but not listening. */
static int reserve_port(int *fd)
{
	int port = harness_quiet_port();
	assert_true(port > 0);
	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return port;
}

static uint64_t events_stored(void)
{
	Errq__V1__StatusResponse *st = query_status(E.d.addr);
	uint64_t n = st ? st->events_stored : 0;
	if (st)
		errq__v1__status_response__free_unpacked(st, NULL);
	return n;
}

static void test_kill_repeatedly(void **state)
{
	int nrounds = rounds();
	int hold_fd;
	int rv_port = reserve_port(&hold_fd);
	E.d.listen_port = harness_quiet_port(); /* the same address across restarts */
	assert_true(E.d.listen_port > 0);
	/* a long recovery: the circuit must still be open after the rounds; many attempts: the
	 * notice stays pending while the receiver is away */
	write_file(E.cfg,
		   "events_per_group: 0\n" /* keep every event: each one is looked for */
		   "notifiers:\n"
		   "  - name: ops\n"
		   "    type: webhook\n"
		   "    url: http://127.0.0.1:%d/alerts\n"
		   "    timeout: 1s\n"
		   "    max_attempts: 100\n"
		   "rules:\n"
		   "  - name: tripped\n"
		   "    match: {service: crash-circuit}\n"
		   "    trip: {failures: 3, window: 600s}\n"
		   "    recovery_timeout: 3600s\n"
		   "    notify: [ops]\n",
		   rv_port);
	start_errqd();
	send_failures(3, "crash-circuit", "ConnectionError", NULL, NULL);
	wait_state("tripped", 1, __LINE__);
	char *alert = circuit_alert("tripped");
	assert_non_null(alert);
	WAIT_FOR(delivery_attempts(alert, "firing") >= 1);
	assert_int_equal(delivery_status(alert, "firing"), 0); /* pending: queued, not delivered */

	struct client_proc cl[CRASH_CLIENTS + 1];
	for (int i = 0; i < CRASH_CLIENTS; i++)
		start_client(&cl[i], i, E.d.addr);
	struct client_proc *lib = &cl[CRASH_CLIENTS];
	errq_snprintf(lib->ids, sizeof(lib->ids), "%s/lib.stats", E.d.dir);
	lib->pid = fork();
	assert_true(lib->pid >= 0);
	if (lib->pid == 0) {
		execl("/proc/self/exe", "itest_crash_repeated", "libclient", E.d.addr, lib->ids, "crash-lib", (char *)NULL);
		_exit(127);
	}
	unsigned seed = (unsigned)errq_now_ns();
	fprintf(stderr, "crash: %d rounds, seed %u\n", nrounds, seed);
	uint64_t events_before = 0;
	for (int r = 0; r < nrounds; r++) {
		/* load is flowing: the events stored grow before this round's kill (or the kill
		 * would be of an idle collector, the clients still reconnecting) */
		WAIT_FOR(events_stored() > events_before);
		harness_msleep(CRASH_MIN_RUN_MS + (int)(rand_r(&seed) % (CRASH_MAX_RUN_MS - CRASH_MIN_RUN_MS)));
		assert_int_equal(errqd_stop(&E.d, SIGKILL), 128 + SIGKILL);
		start_errqd();
		assert_int_equal(circuit_state("tripped"), 1);
		events_before = events_stored();
	}
	/* the notice queued before the first kill goes out now that the receiver listens */
	close(hold_fd);
	start_receiver(rv_port);
	/* the next attempt is due at the time the outbox holds (its backoff grew while the
	 * receiver was away, up to 5 min): the deadline runs from then */
	int64_t due = q_int("SELECT next_attempt_ns FROM deliveries WHERE lower(hex(alert_id)) = ?1", alert);
	uint64_t now = errq_now_ns();
	uint64_t end = errq_mono_ns() + (due > 0 && (uint64_t)due > now ? (uint64_t)due - now : 0) +
		       (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	while (delivery_status(alert, "firing") != 1) {
		if (errq_mono_ns() > end)
			fail_msg("the notice queued before the kills was not delivered (next attempt was due at %lld)",
				 (long long)due);
		harness_msleep(20);
	}
	assert_true(receiver_count(&E.rv) >= 1);
	json_t *b = body_json(receiver_count(&E.rv) - 1);
	assert_string_equal(jstr(b, "alert_id"), alert);
	assert_string_equal(jstr(b, "status"), "firing");
	json_decref(b);
	assert_int_equal(circuit_state("tripped"), 1);

	/* the clients stop sending and wait for their last answers */
	for (int i = 0; i <= CRASH_CLIENTS; i++)
		kill(cl[i].pid, SIGTERM);
	for (int i = 0; i <= CRASH_CLIENTS; i++)
		assert_int_equal(wait_client(&cl[i]), 0);
	assert_int_equal(errqd_stop(&E.d, SIGTERM), 0);

	/* every acknowledged id is stored; none twice */
	struct harness_db *db = harness_db_open(E.d.db);
	assert_non_null(db);
	long acked = 0, missing = 0;
	for (int i = 0; i < CRASH_CLIENTS; i++) {
		FILE *f = fopen(cl[i].ids, "rb");
		assert_non_null(f);
		uint8_t id[16];
		while (fread(id, 1, 16, f) == 16) {
			acked++;
			missing += harness_db_has_event(db, id) != 1;
		}
		fclose(f);
	}
	harness_db_close(db);
	int64_t stored = q_int("SELECT count(*) FROM events WHERE service LIKE 'crash-_'", NULL);
	int64_t distinct = q_int("SELECT count(DISTINCT event_id) FROM events WHERE service LIKE 'crash-_'", NULL);
	int64_t totals = q_int("SELECT sum(total) FROM groups WHERE service LIKE 'crash-_'", NULL);
	/* SQLite's own check of the file (on PostgreSQL the file is the server's: a killed client
	 * cannot tear its pages, and there is nothing of the kind to ask) */
	bool lite = harness_backend() == HARNESS_SQLITE;
	char *check = lite ? q_text("PRAGMA integrity_check", NULL) : NULL;
	unsigned long long lr = 0, ll = 1, la = 0, ld = 0, lrs = 0, lrc = 0;
	FILE *lf = fopen(lib->ids, "r");
	assert_non_null(lf);
	assert_int_equal(fscanf(lf, "%llu %llu %llu %llu %llu %llu", &lr, &ll, &la, &ld, &lrs, &lrc), 6);
	fclose(lf);
	int64_t lib_stored = q_int("SELECT count(*) FROM events WHERE service = 'crash-lib'", NULL);
	int64_t lib_distinct = q_int("SELECT count(DISTINCT event_id) FROM events WHERE service = 'crash-lib'", NULL);
	fprintf(stderr, "crash: liberrq reported %llu, stored %lld, lost %llu (accepted %llu, duplicates %llu, "
			"%llu batches resent, %llu reconnects)\n",
		lr, (long long)lib_stored, ll, la, ld, lrs, lrc);
	fprintf(stderr, "crash: %d rounds of SIGKILL; events acknowledged %ld, stored %lld (acknowledged missing: %ld; "
			"stored twice: %lld; group totals %lld); integrity_check: %s; the circuit open throughout, "
			"the queued notice delivered after the kills\n",
		nrounds, acked, (long long)stored, missing, (long long)(stored - distinct), (long long)totals, check ? check : "not applicable (PostgreSQL)");
	assert_true(acked > 0);
	assert_int_equal(missing, 0);
	assert_int_equal(stored, distinct);
	assert_int_equal(totals, stored); /* a resent event counted once in its group */
	/* a batch committed but unanswered at a kill was resent and answered as duplicates: in the
	 * end every stored event is acknowledged */
	assert_int_equal(stored, acked);
	if (lite)
		assert_string_equal(check, "ok");
	free(check);
	assert_true(lr > 0);
	assert_int_equal(ll, 0);
	assert_int_equal(lib_stored, (int64_t)lr);
	assert_int_equal(lib_distinct, lib_stored);
	free(alert);
}

static int setup(void **state)
{
	return alerts_setup("/tmp/errq-crash-XXXXXX");
}

static int teardown(void **state)
{
	return alerts_teardown();
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "client") == 0)
		return client_main(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "libclient") == 0)
		return libclient_main(argv[2], argv[3], argv[4]);
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_kill_repeatedly, setup, teardown),
	};
	int rc = cmocka_run_group_tests_name("integration_crash_repeated", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
