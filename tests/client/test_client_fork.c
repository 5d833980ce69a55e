/* Unit: fork safety.  A child of a process with a live client (gRPC cannot be used there)
 * finds the parent's client inert: reports and outcomes are dropped with ERRQ_EFORKED and
 * counted, flush returns at once, close frees memory only; a new client in the child is
 * inert too; the child's id generator was reseeded, so parent and child never make the
 * same event ids; the parent keeps delivering as if nothing happened, also when it forks
 * while other threads report, and while they wait at the queue's limit for a spill to the
 * spool (the spool's lock stays with the parent). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "client_int.h"
#include "errq_str.h"
#include "errq_time.h"
#include "fake_collector.h"
#include "client_support.h"
#include "errq_banned.h"

#define GENEROUS_MS 30000
#define ID_MS 1234567890123ULL /* a fixed millisecond for comparing generators */


static errq_client_t *client_for(const char *addr)
{
	errq_options_t *o = errq_options_new();
	assert_int_equal(errq_options_set_collector(o, addr), ERRQ_OK);
	assert_int_equal(errq_options_set_service(o, "fork-test"), ERRQ_OK);
	assert_int_equal(errq_options_set_linger_ms(o, 1), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	assert_non_null(c);
	return c;
}

/* Waits for a child, killing it if it does not exit in time (a deadlock must fail the test,
 * not hang it).  Returns its exit status, or -1. */
static int wait_child(pid_t pid)
{
	int st;
	for (uint64_t t0 = errq_mono_ns(); errq_mono_ns() - t0 < GENEROUS_MS * ERRQ_NS_PER_MS;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(2000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

struct child_result {
	int report_rc, report2_rc, outcome_rc, flush_rc, stats_rc;
	uint64_t dropped_forked, outcomes_dropped, queued;
	uint8_t id[ERRQ_ID_LEN];
	int new_client_ok, new_report_rc, new_flush_rc;
	uint64_t new_dropped_forked;
	size_t close_lost, new_close_lost;
};

/* Ends a child.  By exec'ing a trivial program when it succeeded: under valgrind the child
 * would otherwise be leak-checked at exit, and a forked gRPC process always "leaks" what
 * gRPC's threads owned (they do not exist in the child); the results travel through a pipe
 * anyway. */
static void child_exit(int code)
{
	if (code == 0)
		execl("/bin/true", "true", (char *)NULL);
	_exit(code);
}

/* Everything the child does; it never uses cmocka (its state belongs to the parent). */
static void child_main(errq_client_t *c, const char *addr, int fd)
{
	struct child_result r;
	errq_stats_t st;
	memset(&r, 0, sizeof(r));
	r.report_rc = errq_report_failure(c, "ChildError", NULL, "from the child");
	r.report2_rc = errq_report(c, errq_event_new(NULL, "ChildError", "from the child, too"));
	r.outcome_rc = errq_record_outcome(c, "child-task", true);
	r.flush_rc = errq_client_flush(c, 1000);
	r.stats_rc = errq_client_stats(c, &st);
	r.dropped_forked = st.dropped_forked;
	r.outcomes_dropped = st.outcomes_dropped;
	r.queued = st.queued;
	errq_idgen_next(&c->idgen, ID_MS, r.id); /* white box: what the child's ids would be */

	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, addr);
	errq_options_set_service(o, "fork-child");
	errq_client_t *k = errq_client_new(o);
	r.new_client_ok = k != NULL;
	r.new_report_rc = errq_report_failure(k, "ChildError", NULL, "new client in the child");
	r.new_flush_rc = errq_client_flush(k, 1000);
	if (k && errq_client_stats(k, &st) == ERRQ_OK)
		r.new_dropped_forked = st.dropped_forked;
	r.new_close_lost = errq_client_close(k, 1000);
	r.close_lost = errq_client_close(c, 1000); /* frees memory; never touches gRPC */
	ssize_t w = write(fd, &r, sizeof(r));
	child_exit(w == (ssize_t)sizeof(r) ? 0 : 3);
}

static void test_fork_child_is_inert(void **state)
{
	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_client_t *c = client_for(f.addr);
	for (int i = 0; i < 5; i++)
		assert_int_equal(errq_report_failure(c, "ParentError", NULL, "p%d", i), ERRQ_OK);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK); /* a live stream */
	assert_int_equal(errq_record_outcome(c, "parent-task", true), ERRQ_OK);

	/* the generator's state the child inherits */
	pthread_mutex_lock(&c->mu);
	struct errq_idgen inherited = c->idgen;
	pthread_mutex_unlock(&c->mu);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		child_main(c, f.addr, pfd[1]);
	}
	close(pfd[1]);

	/* the parent goes on */
	for (int i = 5; i < 10; i++)
		assert_int_equal(errq_report_failure(c, "ParentError", NULL, "p%d", i), ERRQ_OK);
	struct child_result r;
	size_t got = 0;
	while (got < sizeof(r)) {
		ssize_t n = read(pfd[0], (char *)&r + got, sizeof(r) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(pfd[0]);
	assert_int_equal(wait_child(pid), 0);
	assert_int_equal(got, sizeof(r));

	assert_int_equal(r.report_rc, ERRQ_EFORKED);
	assert_int_equal(r.report2_rc, ERRQ_EFORKED);
	assert_int_equal(r.outcome_rc, ERRQ_EFORKED);
	assert_int_equal(r.flush_rc, ERRQ_EFORKED);
	assert_int_equal(r.stats_rc, ERRQ_OK);
	assert_int_equal(r.dropped_forked, 2);
	assert_int_equal(r.outcomes_dropped, 1);
	assert_int_equal(r.queued, 5); /* the copy's counters, as they were at the fork */
	assert_true(r.new_client_ok);
	assert_int_equal(r.new_report_rc, ERRQ_EFORKED);
	assert_int_equal(r.new_flush_rc, ERRQ_EFORKED);
	assert_int_equal(r.new_dropped_forked, 1);
	assert_int_equal(r.new_close_lost, 0);
	assert_int_equal(r.close_lost, 0);

	/* reseeded: the inherited state would have made this id; the child makes another */
	uint8_t same[ERRQ_ID_LEN];
	errq_idgen_next(&inherited, ID_MS, same);
	assert_memory_not_equal(same, r.id, ERRQ_ID_LEN);

	/* the parent delivered everything, the child nothing */
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.acked, 10);
	assert_int_equal(st.dropped_forked, 0);
	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.n_ids, 10);
	for (size_t q = 0; q < f.n_requests; q++)
		for (size_t i = 0; i < f.requests[q]->n_failures; i++)
			assert_string_equal(f.requests[q]->failures[i]->error_type, "ParentError");
	pthread_mutex_unlock(&f.mu);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.outcome_records, 1); /* the parent's, delivered by close */
	pthread_mutex_unlock(&f.mu);
	fake_stop(&f);
}

struct reporter {
	errq_client_t *c;
	atomic_int stop;
	int n;
};

static void *report_loop(void *p)
{
	struct reporter *r = p;
	for (int i = 0; !atomic_load(&r->stop) && i < 5000; i++) { /* the fake keeps 65536 ids */
		if (errq_report_failure(r->c, "LoadError", NULL, "load %d", i) == ERRQ_OK)
			r->n++;
		errq_record_outcome(r->c, "load", true);
		if (i % 4 == 0)
			usleep(100);
	}
	return NULL;
}

/* Forks while other threads report and record outcomes: the atfork handlers take every
 * client's locks, so no child inherits a half-updated queue or a held lock (a deadlock here
 * would hang the child: wait_child kills it and the test fails).  Every child's ids differ
 * from the parent's and from each other's. */
static void test_fork_under_load(void **state)
{
	enum { THREADS = 3, FORKS = 8 };
	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_client_t *c = client_for(f.addr);
	struct reporter rs[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		rs[i] = (struct reporter){.c = c};
		assert_int_equal(pthread_create(&th[i], NULL, report_loop, &rs[i]), 0);
	}
	uint8_t ids[FORKS][ERRQ_ID_LEN];
	for (int k = 0; k < FORKS; k++) {
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		usleep(2000);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			uint8_t msg[1 + ERRQ_ID_LEN];
			msg[0] = errq_report_failure(c, "ChildError", NULL, "x") == ERRQ_EFORKED &&
				 errq_record_outcome(c, "child", false) == ERRQ_EFORKED;
			errq_idgen_next(&c->idgen, ID_MS, msg + 1);
			errq_client_close(c, 1000);
			ssize_t w = write(pfd[1], msg, sizeof(msg));
			child_exit(w == (ssize_t)sizeof(msg) ? 0 : 4);
		}
		close(pfd[1]);
		uint8_t msg[1 + ERRQ_ID_LEN];
		ssize_t n = read(pfd[0], msg, sizeof(msg));
		close(pfd[0]);
		assert_int_equal(wait_child(pid), 0);
		assert_int_equal(n, sizeof(msg));
		assert_int_equal(msg[0], 1);
		memcpy(ids[k], msg + 1, ERRQ_ID_LEN);
	}
	for (int i = 0; i < THREADS; i++) {
		atomic_store(&rs[i].stop, 1);
		pthread_join(th[i], NULL);
	}
	for (int a = 0; a < FORKS; a++)
		for (int b = 0; b < a; b++)
			assert_memory_not_equal(ids[a], ids[b], ERRQ_ID_LEN);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	errq_stats_t st = stats_of(c);
	assert_int_equal(st.dropped_forked, 0);
	assert_int_equal(st.acked, st.queued); /* everything the parent accepted arrived */
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.n_ids, st.queued);
	pthread_mutex_unlock(&f.mu);
	fake_stop(&f);
}

static void *burst_loop(void *p)
{
	struct reporter *r = p;
	for (int i = 0; !atomic_load(&r->stop) && i < 5000; i++) /* the fake keeps 65536 ids */
		if (errq_report_failure(r->c, "BurstError", NULL, "burst %d", i) == ERRQ_OK)
			r->n++;
	return NULL;
}

/* Forks while threads report into a queue of 20 with a spool, so that they keep waiting
 * (unlocked, on done_cv) for the sender to spill: the fork takes the client's lock between
 * their waits; the child's copy refuses at once (ERRQ_EFORKED, no wait) and the spool's lock
 * stays with the parent; the parent refuses nothing and delivers everything, its spool
 * included, by its close. */
static void test_fork_while_reports_wait_for_spill(void **state)
{
	enum { THREADS = 3, FORKS = 8 };
	char dir[64], lock[80];
	errq_snprintf(dir, sizeof(dir), "/tmp/errq-forkspool-XXXXXX");
	assert_non_null(mkdtemp(dir));
	errq_snprintf(lock, sizeof(lock), "%s/%s", dir, ERRQ__SPOOL_LOCK_NAME);
	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_options_t *o = errq_options_new();
	assert_int_equal(errq_options_set_collector(o, f.addr), ERRQ_OK);
	assert_int_equal(errq_options_set_service(o, "fork-spill"), ERRQ_OK);
	assert_int_equal(errq_options_set_queue_capacity(o, 20), ERRQ_OK);
	assert_int_equal(errq_options_set_spool_dir(o, dir), ERRQ_OK);
	/* the test promises no refusal: a spill must not time out (1 s by default: under ASan on
	 * a loaded machine one report in 15 000 once waited longer) */
	assert_int_equal(errq_options_set_spill_wait(o, ERRQ__SPILL_WAIT_MS_MAX), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	assert_non_null(c);
	struct reporter rs[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		rs[i] = (struct reporter){.c = c};
		assert_int_equal(pthread_create(&th[i], NULL, burst_loop, &rs[i]), 0);
	}
	/* the sender opens the spool and takes its lock on its own thread: fork once it holds it
	 * (a fork before that, as on a loaded machine, finds nobody holding the lock: the child's
	 * flock succeeds and the check below fails, 1 run in 4 beside make test-long) */
	for (uint64_t t0 = errq_mono_ns();; usleep(1000)) {
		pthread_mutex_lock(&c->mu);
		bool held = c->spool_lockfd >= 0;
		pthread_mutex_unlock(&c->mu);
		if (held)
			break;
		assert_true(errq_mono_ns() - t0 < GENEROUS_MS * ERRQ_NS_PER_MS);
	}
	for (int k = 0; k < FORKS; k++) {
		usleep(2000);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int ok = errq_report_failure(c, "ChildError", NULL, "x") == ERRQ_EFORKED;
			int fd = open(lock, O_RDWR | O_CLOEXEC);
			ok = ok && fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
			errq_client_close(c, 1000);
			child_exit(ok ? 0 : 5);
		}
		assert_int_equal(wait_child(pid), 0);
	}
	int reported = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		reported += rs[i].n;
	}
	errq_stats_t st = stats_of(c);
	print_message("%d reports into a queue of 20: %llu waited for a spill, %llu spooled\n",
		      reported, (unsigned long long)st.spill_waits, (unsigned long long)st.spooled);
	assert_int_equal(reported, THREADS * 5000);
	assert_int_equal(st.dropped_queue_full, 0);
	assert_true(st.spill_waits > 0);
	assert_int_equal(errq_client_close_stats(c, GENEROUS_MS, &st), 0);
	assert_int_equal(st.spool_files, 0); /* delivered by the close */
	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.n_ids, THREADS * 5000);
	pthread_mutex_unlock(&f.mu);
	fake_stop(&f);
	char cmd[128];
	errq_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fork_child_is_inert),
	    cmocka_unit_test(test_fork_under_load),
	    cmocka_unit_test(test_fork_while_reports_wait_for_spill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
