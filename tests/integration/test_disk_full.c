/* Integration: a full disk (docs/operations.md, "Disk full").  The database lives on a small
 * tmpfs the test mounts (we run as root, like CI; a failed mount fails the test: a skip would
 * hide the path it proves).  Clients that resend what was not answered stream into it while
 * the test fills the filesystem with a file of its own:
 *  - past min_free_disk, new batches are refused with UNAVAILABLE and the floor's reason before
 *    SQLite fails, and /readyz says why;
 *  - with no floor, SQLite fails with a full disk: the batches it could not commit end their
 *    streams with UNAVAILABLE and the reason (no ack stalls until a deadline), errqd stays up
 *    and answers queries and /readyz, `errq status` counts no stream after the clients left,
 *    and the log holds a few lines, not one per retry, with SQLite's own error;
 * and once the file is removed ingest resumes, with every acknowledged event stored.
 * Each test prints its timeline (milliseconds since the load started). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

#define SENDERS 3
#define BATCH 20
#define MAX_BATCHES 20000 /* per sender; far more than fit on the filesystems below */

/* ---- a client that resends what was not answered (what liberrq does) ---- */

struct sender {
	pthread_t th;
	int idx;
	const char *addr;
	struct errq_idgen g;
	atomic_bool stop, paused, closed; /* closed: paused with no stream open */
	uint8_t (*ids)[16];               /* MAX_BATCHES * BATCH */
	bool acked[MAX_BATCHES];
	atomic_int n_built, n_acked, n_unavailable, n_other_end;
	_Atomic uint64_t first_unavailable_ns, last_ack_ns;
	atomic_bool stalled;              /* an answer never came: what a full disk did before */
	pthread_mutex_t mu;
	char unavailable_details[512];    /* of the first UNAVAILABLE */
	char other_details[512];          /* of the last end that was neither OK nor UNAVAILABLE */
};

static char msg_text[401];
static int PACE_MS; /* pause between two batches of a sender */

/* Sends batch b (its ids fixed at first build) as seq on s. */
static int send_batch(struct sender *sd, struct rawstream *s, int b, uint64_t seq)
{
	Errq__V1__TaskFailure *evs[BATCH];
	char svc[32];
	errq_snprintf(svc, sizeof(svc), "disk-full-%d", sd->idx);
	bool fresh = b == atomic_load(&sd->n_built);
	for (int i = 0; i < BATCH; i++) {
		evs[i] = tevent_new(&sd->g, svc, i % 2 ? "TimeoutError" : "DiskError", msg_text);
		if (fresh)
			memcpy(sd->ids[b * BATCH + i], evs[i]->event_id.data, 16);
		else
			memcpy(evs[i]->event_id.data, sd->ids[b * BATCH + i], 16);
	}
	if (fresh)
		atomic_store(&sd->n_built, b + 1);
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
	req.seq = seq;
	req.n_failures = BATCH;
	req.failures = evs;
	int rc = raw_send(s, &req);
	for (int i = 0; i < BATCH; i++)
		tevent_free(evs[i]);
	return rc;
}

static void *sender_main(void *arg)
{
	struct sender *sd = arg;
	struct rawstream s;
	bool open = false;
	uint64_t seq = 0;
	int cur = 0; /* the batch being sent until it is answered */
	while (!atomic_load(&sd->stop) && cur < MAX_BATCHES) {
		if (atomic_load(&sd->paused)) {
			if (open) {
				raw_free(&s); /* cancels: the client is gone */
				open = false;
			}
			atomic_store(&sd->closed, true);
			harness_msleep(5);
			continue;
		}
		atomic_store(&sd->closed, false);
		if (!open) {
			if (raw_open(&s, sd->addr)) {
				raw_free(&s);
				harness_msleep(20);
				continue;
			}
			open = true;
		}
		Errq__V1__ReportResponse *r = NULL;
		int rr = send_batch(sd, &s, cur, seq) ? 1 : raw_recv(&s, &r, HARNESS_DEADLINE_MS);
		if (rr == 0) {
			if (r->seq == seq && r->accepted + r->duplicates == BATCH) {
				sd->acked[cur++] = true;
				atomic_fetch_add(&sd->n_acked, 1);
				atomic_store(&sd->last_ack_ns, errq_mono_ns());
			}
			seq++;
			errq__v1__report_response__free_unpacked(r, NULL);
			if (PACE_MS)
				harness_msleep(PACE_MS);
			continue;
		}
		if (rr < 0) {
			atomic_store(&sd->stalled, true); /* no answer and no status for 30 s */
			break;
		}
		/* the stream ended: the batch was not acknowledged, resend it on a new one */
		char details[512];
		grpc_status_code st = raw_finish(&s, details, sizeof(details));
		raw_free(&s);
		open = false;
		seq = 0;
		if (st == GRPC_STATUS_UNAVAILABLE) {
			uint64_t zero = 0;
			if (atomic_compare_exchange_strong(&sd->first_unavailable_ns, &zero, errq_mono_ns())) {
				pthread_mutex_lock(&sd->mu);
				errq_snprintf(sd->unavailable_details, sizeof(sd->unavailable_details), "%s", details);
				pthread_mutex_unlock(&sd->mu);
			}
			atomic_fetch_add(&sd->n_unavailable, 1);
		} else {
			pthread_mutex_lock(&sd->mu);
			errq_snprintf(sd->other_details, sizeof(sd->other_details), "%s: %s", errq_status_name(st), details);
			pthread_mutex_unlock(&sd->mu);
			atomic_fetch_add(&sd->n_other_end, 1);
		}
		harness_msleep(20); /* a client backs off before it retries */
	}
	if (open)
		raw_free(&s);
	return NULL;
}

static struct sender SD[SENDERS];

static void senders_start(const char *addr)
{
	memset(msg_text, 'x', sizeof(msg_text) - 1);
	for (int i = 0; i < SENDERS; i++) {
		struct sender *sd = &SD[i];
		memset(sd, 0, sizeof(*sd));
		sd->idx = i;
		sd->addr = addr;
		errq_idgen_init(&sd->g);
		pthread_mutex_init(&sd->mu, NULL);
		sd->ids = calloc((size_t)MAX_BATCHES * BATCH, 16);
		assert_non_null(sd->ids);
		assert_int_equal(pthread_create(&sd->th, NULL, sender_main, sd), 0);
	}
}

static void senders_stop(void)
{
	for (int i = 0; i < SENDERS; i++)
		atomic_store(&SD[i].stop, true);
	for (int i = 0; i < SENDERS; i++)
		pthread_join(SD[i].th, NULL);
}

static void senders_free(void)
{
	for (int i = 0; i < SENDERS; i++) {
		free(SD[i].ids);
		pthread_mutex_destroy(&SD[i].mu);
	}
}

static int total_acked(void)
{
	int n = 0;
	for (int i = 0; i < SENDERS; i++)
		n += atomic_load(&SD[i].n_acked);
	return n;
}

static int total_unavailable(void)
{
	int n = 0;
	for (int i = 0; i < SENDERS; i++)
		n += atomic_load(&SD[i].n_unavailable);
	return n;
}

/* The earliest first UNAVAILABLE of any sender, its details in det. */
static uint64_t first_unavailable(char *det, size_t dsz)
{
	uint64_t best = 0;
	for (int i = 0; i < SENDERS; i++) {
		uint64_t t = atomic_load(&SD[i].first_unavailable_ns);
		if (t && (!best || t < best)) {
			best = t;
			pthread_mutex_lock(&SD[i].mu);
			errq_snprintf(det, dsz, "%s", SD[i].unavailable_details);
			pthread_mutex_unlock(&SD[i].mu);
		}
	}
	return best;
}

static uint64_t first_ack_after(uint64_t t)
{
	/* last_ack_ns only grows: the first ack after t is the earliest last_ack past t, once
	 * every sender that acked since did so (close enough for a timeline; the assertion is
	 * that one came) */
	uint64_t best = 0;
	for (int i = 0; i < SENDERS; i++) {
		uint64_t a = atomic_load(&SD[i].last_ack_ns);
		if (a > t && (!best || a < best))
			best = a;
	}
	return best;
}

static void assert_no_stall(void)
{
	for (int i = 0; i < SENDERS; i++) {
		if (atomic_load(&SD[i].stalled))
			fail_msg("sender %d: no answer and no status for %d ms (acks just stopped)", i, HARNESS_DEADLINE_MS);
		if (atomic_load(&SD[i].n_other_end)) {
			pthread_mutex_lock(&SD[i].mu);
			fail_msg("sender %d: a stream ended with %s (expected OK or UNAVAILABLE)", i, SD[i].other_details);
		}
	}
}

/* Acknowledged events missing from the database (0: nothing acknowledged was lost). */
static int missing_acked(const char *db_path, int *checked)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int missing = 0;
	*checked = 0;
	assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM events WHERE event_id = ?", -1, &q, NULL), SQLITE_OK);
	for (int i = 0; i < SENDERS; i++)
		for (int b = 0; b < atomic_load(&SD[i].n_built); b++) {
			if (!SD[i].acked[b])
				continue;
			for (int k = 0; k < BATCH; k++) {
				sqlite3_reset(q);
				sqlite3_bind_blob(q, 1, SD[i].ids[b * BATCH + k], 16, SQLITE_STATIC);
				missing += sqlite3_step(q) != SQLITE_ROW;
				(*checked)++;
			}
		}
	sqlite3_finalize(q);
	sqlite3_close(db);
	return missing;
}

/* ---- the small filesystem ---- */

static char MNT[64];

static void mount_small(const char *size)
{
	errq_snprintf(MNT, sizeof(MNT), "/tmp/errq-diskfull-XXXXXX");
	assert_non_null(mkdtemp(MNT));
	char opts[64];
	errq_snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (mount("tmpfs", MNT, "tmpfs", 0, opts) != 0)
		fail_msg("cannot mount a %s tmpfs on '%s': %s (the test needs root, as in CI; it does not skip)", size,
			 MNT, strerror(errno));
}

static void unmount_small(void)
{
	if (!MNT[0])
		return;
	if (umount2(MNT, MNT_DETACH) != 0)
		fprintf(stderr, "cannot unmount '%s': %s\n", MNT, strerror(errno));
	rmdir(MNT);
	MNT[0] = '\0';
}

/* cmocka teardown: a failed test leaves no mount behind */
static int teardown_mount(void **state)
{
	(void)state;
	unmount_small();
	return 0;
}

static uint64_t free_bytes(void)
{
	struct statvfs sv;
	assert_int_equal(statvfs(MNT, &sv), 0);
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* Writes the filler until only `leave` bytes are free (0: until the filesystem is full). */
static void fill(const char *path, uint64_t leave)
{
	static char chunk[64 * 1024];
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	assert_true(fd >= 0);
	for (;;) {
		uint64_t f = free_bytes();
		if (leave && f <= leave)
			break;
		size_t n = sizeof(chunk);
		if (leave && f - leave < n)
			n = (size_t)(f - leave);
		ssize_t w = write(fd, chunk, n);
		if (w <= 0) {
			assert_true(w < 0 && errno == ENOSPC);
			break;
		}
	}
	close(fd);
}

static int readyz(int port, char *reason, size_t rsz)
{
	int status = 0;
	char *body = NULL;
	if (http_request(port, "GET", "/readyz", "", &status, NULL, &body))
		return -1;
	errq_snprintf(reason, rsz, "%s", body ? body : "");
	size_t n = strlen(reason);
	while (n && (reason[n - 1] == '\n' || reason[n - 1] == '\r'))
		reason[--n] = '\0';
	free(body);
	return status;
}

/* Waits until /readyz answers 503 with a reason holding `want`; returns when it did. */
static uint64_t wait_unready(int port, const char *want, char *reason, size_t rsz)
{
	WAIT_FOR(readyz(port, reason, rsz) == 503 && strstr(reason, want));
	return errq_mono_ns();
}

static unsigned long long ms_since(uint64_t t0, uint64_t t)
{
	return t ? (unsigned long long)((t - t0) / ERRQ_NS_PER_MS) : 0;
}

/* Lines of the log holding s. */
static int log_lines_with(const char *log, const char *s)
{
	FILE *f = fopen(log, "r");
	char line[8192];
	int n = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, s) != NULL;
	fclose(f);
	return n;
}

/* ---- the tests ---- */

/* Removes the filler; waits for acks to come again and /readyz to say 200; stops the load. */
static void free_and_resume(const struct errqd_proc *D, const char *filler, uint64_t *t_freed, uint64_t *t_ack,
			    uint64_t *t_ready)
{
	int acked_before = total_acked();
	assert_int_equal(unlink(filler), 0);
	*t_freed = errq_mono_ns();
	WAIT_FOR(first_ack_after(*t_freed) != 0 && total_acked() > acked_before + 20);
	*t_ack = first_ack_after(*t_freed);
	char ok[512];
	WAIT_FOR(readyz(D->http_port, ok, sizeof(ok)) == 200);
	*t_ready = errq_mono_ns();
	senders_stop();
	assert_no_stall();
}

/* Mounts a tmpfs of `size`, starts errqd with its database there and min_free_disk=floor. */
static void start_on_small(struct errqd_proc *D, const char *size, const char *floor, char *db, char *filler)
{
	memset(D, 0, sizeof(*D));
	mount_small(size);
	errq_snprintf(db, 128, "%s/errq.db", MNT);
	errq_snprintf(filler, 128, "%s/filler", MNT);
	char set[64];
	errq_snprintf(set, sizeof(set), "min_free_disk=%s", floor);
	const char *args[] = {"--db", db, "--set", set, NULL};
	assert_int_equal(errqd_start(D, args), 0);
}

/* The floor: new batches are refused before SQLite fails. */
static void test_floor_refuses_before_sqlite_fails(void **state)
{
	(void)state;
	struct errqd_proc D;
	char db[128], filler[128];
	start_on_small(&D, "64m", "24MiB", db, filler);

	uint64_t t0 = errq_mono_ns();
	PACE_MS = 5; /* SQLite's WAL grows by megabytes a second under a full load */
	senders_start(D.addr);
	WAIT_FOR(total_acked() >= 50);
	char reason[512], det[512];
	assert_int_equal(readyz(D.http_port, reason, sizeof(reason)), 200);

	fill(filler, 16u << 20); /* under the 24 MiB floor, with 16 MiB left for SQLite */
	uint64_t t_low = errq_mono_ns();
	WAIT_FOR(first_unavailable(det, sizeof(det)) != 0);
	uint64_t t_unavail = first_unavailable(det, sizeof(det));
	if (!strstr(det, "disk space below min_free_disk")) {
		char cmd[512];
		errq_snprintf(cmd, sizeof(cmd), "grep -v '\"debug\"' %s | cut -c1-250 >&2; ls -la %s; df %s", D.log, MNT, MNT);
		if (system(cmd)) {}
		fail_msg("UNAVAILABLE without the floor's reason: \"%s\" (%llu bytes free)", det, (unsigned long long)free_bytes());
	}
	uint64_t t_unready = wait_unready(D.http_port, "disk space below min_free_disk", reason, sizeof(reason));
	/* the floor came first: SQLite never failed */
	assert_int_equal(http_metric(D.http_port, "errq_store_errors_total"), 0);
	assert_true(http_metric(D.http_port, "errq_batches_refused_disk_total") > 0);
	assert_int_equal(http_metric(D.http_port, "errq_disk_low"), 1);
	Errq__V1__StatusResponse *st = query_status(D.addr); /* queries are answered */
	assert_non_null(st);
	errq__v1__status_response__free_unpacked(st, NULL);
	assert_no_stall();

	uint64_t t_freed, t_ack, t_ready;
	free_and_resume(&D, filler, &t_freed, &t_ack, &t_ready);

	int checked = 0, missing = missing_acked(db, &checked);
	printf("floor timeline (ms since load start): below floor %llu, first UNAVAILABLE %llu (\"%s\"), "
	       "/readyz 503 %llu (\"%s\"), freed %llu, first ack after %llu, /readyz 200 %llu; "
	       "%d UNAVAILABLE ends, %d batches acked, %d acked events checked, %d missing\n",
	       ms_since(t0, t_low), ms_since(t0, t_unavail), det, ms_since(t0, t_unready), reason,
	       ms_since(t0, t_freed), ms_since(t0, t_ack), ms_since(t0, t_ready), total_unavailable(), total_acked(),
	       checked, missing);
	assert_int_equal(missing, 0);
	assert_true(checked > 0);
	senders_free();
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	unmount_small();
	errqd_cleanup(&D);
}

/* No floor: SQLite fails with a full disk. */
static void test_sqlite_full(void **state)
{
	(void)state;
	struct errqd_proc D;
	char db[128], filler[128];
	start_on_small(&D, "16m", "0", db, filler);

	uint64_t t0 = errq_mono_ns();
	PACE_MS = 0;
	senders_start(D.addr);
	WAIT_FOR(total_acked() >= 50);
	uint64_t t_fill = errq_mono_ns();
	fill(filler, 0);
	uint64_t t_full = errq_mono_ns();
	char reason[512], det[512];
	WAIT_FOR(first_unavailable(det, sizeof(det)) != 0);
	uint64_t t_unavail = first_unavailable(det, sizeof(det));
	if (!strstr(det, "disk full") || !strstr(det, "database or disk is full"))
		fail_msg("UNAVAILABLE without the reason: \"%s\"", det);
	uint64_t t_unready = wait_unready(D.http_port, "disk full", reason, sizeof(reason));
	assert_non_null(strstr(reason, "database or disk is full")); /* SQLite's own error, not a rollback's */
	assert_true(http_metric(D.http_port, "errq_batches_uncommitted_total") > 0);
	/* errqd answers queries while it cannot write */
	Errq__V1__ListEventsResponse *ev = query_events(D.addr, 10);
	assert_non_null(ev);
	assert_int_equal(ev->n_events, 10);
	errq__v1__list_events_response__free_unpacked(ev, NULL);
	assert_no_stall();

	/* the clients leave: no stream is counted once they are gone */
	for (int i = 0; i < SENDERS; i++)
		atomic_store(&SD[i].paused, true);
	for (int i = 0; i < SENDERS; i++)
		WAIT_FOR(atomic_load(&SD[i].closed));
	Errq__V1__StatusResponse *st = NULL;
	for (;;) {
		st = query_status(D.addr);
		assert_non_null(st);
		if (st->streams_active == 0)
			break;
		uint32_t n = st->streams_active;
		errq__v1__status_response__free_unpacked(st, NULL);
		if (errq_mono_ns() - t_unready > (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS)
			fail_msg("errq status counts %u streams after every client left", n);
		harness_msleep(5);
	}
	uint64_t t_streams0 = errq_mono_ns();
	errq__v1__status_response__free_unpacked(st, NULL);
	for (int i = 0; i < SENDERS; i++)
		atomic_store(&SD[i].paused, false);

	uint64_t t_freed, t_ack, t_ready;
	free_and_resume(&D, filler, &t_freed, &t_ack, &t_ready);

	int checked = 0, missing = missing_acked(db, &checked);
	/* the recovery line comes once successes alone were seen for a while (errq_condlog.h) */
	WAIT_FOR(log_lines_with(D.log, "store write failed: recovered") == 1);
	printf("disk-full timeline (ms since load start): filling %llu, full %llu, first UNAVAILABLE %llu (\"%s\"), "
	       "/readyz 503 %llu (\"%s\"), no stream counted %llu, freed %llu, first ack after %llu, /readyz 200 %llu; "
	       "%d UNAVAILABLE ends, %d batches acked, %d acked events checked, %d missing\n",
	       ms_since(t0, t_fill), ms_since(t0, t_full), ms_since(t0, t_unavail), det, ms_since(t0, t_unready), reason,
	       ms_since(t0, t_streams0), ms_since(t0, t_freed), ms_since(t0, t_ack), ms_since(t0, t_ready),
	       total_unavailable(), total_acked(), checked, missing);
	assert_int_equal(missing, 0);
	assert_true(checked > 0);
	senders_free();
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);

	/* one line per condition, a recovery line, SQLite's error kept */
	int ckpt = log_lines_with(D.log, "checkpoint failed"), write = log_lines_with(D.log, "store write failed");
	int rollback = log_lines_with(D.log, "cannot rollback");
	printf("log: %d 'checkpoint failed' lines, %d 'store write failed' lines, %d 'cannot rollback'\n", ckpt, write,
	       rollback);
	assert_int_equal(rollback, 0);
	/* first line, at most a summary per 30 s and one per change of error, and the recovery */
	uint64_t secs = (t_ready - t_full) / ERRQ_NS_PER_SEC;
	assert_true(write >= 2 && (uint64_t)write <= 4 + secs / 30);
	assert_true((uint64_t)ckpt <= 4 + secs / 30);
	assert_true(log_lines_with(D.log, "store write failed: recovered") == 1);
	unmount_small();
	errqd_cleanup(&D);
}

int main(void)
{
	grpc_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_floor_refuses_before_sqlite_fails, teardown_mount),
	    cmocka_unit_test_teardown(test_sqlite_full, teardown_mount),
	};
	int rc = cmocka_run_group_tests_name("integration_disk_full", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
