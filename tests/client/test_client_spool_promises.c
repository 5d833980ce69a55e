/* Unit: promises of docs/client.md ("The disk spool") against the in-process fake collector:
 *  - a half-full queue spills to disk instead of refusing reports, while the circuit is
 *    still closed (a collector that reads and never answers);
 *  - the spool of another process (this binary run again as a child) is delivered by the
 *    next client on the directory, first; spooled and live batches alternate on the stream;
 *  - a crash between the answer and the deletion of a spool file (the files put back as
 *    they were before the delivery) sends them again: duplicates, nothing stored twice. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "client_int.h"
#include "errq_str.h"
#include "errq_time.h"
#include "fake_collector.h"
#include "errq_banned.h"

#define GENEROUS_MS 30000
#define CHILD_EVENTS 30
#define BATCH 5

static errq_stats_t stats_of(errq_client_t *c)
{
	errq_stats_t st;
	assert_int_equal(errq_client_stats(c, &st), ERRQ_OK);
	return st;
}

/* Polls until cond holds; fails at the deadline. */
#define WAIT_UNTIL(c, st, cond)                                                              \
	do {                                                                                 \
		uint64_t t0_ = errq_mono_ns();                                               \
		st = stats_of(c);                                                            \
		while (!(cond) && errq_mono_ns() - t0_ < GENEROUS_MS * ERRQ_NS_PER_MS) {     \
			usleep(5000);                                                        \
			st = stats_of(c);                                                    \
		}                                                                            \
		if (!(cond))                                                                 \
			fail_msg("line %d: never: %s", __LINE__, #cond);                     \
	} while (0)

static int free_port(char addr[64])
{
	struct fake_collector probe = {0};
	assert_int_equal(fake_start(&probe, 0), 0);
	int port = probe.port;
	memcpy(addr, probe.addr, 64);
	fake_stop(&probe);
	return port;
}

static void temp_dir(char *out, size_t n)
{
	errq_snprintf(out, n, "/tmp/errq-spoolp-XXXXXX");
	assert_non_null(mkdtemp(out));
}

static void rm_rf(const char *dir)
{
	char cmd[512];
	errq_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void cp_a(const char *from, const char *to)
{
	char cmd[512];
	errq_snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static int count_batches(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	size_t sl = strlen(ERRQ__SPOOL_SUFFIX);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		n += l > sl && strcmp(de->d_name + l - sl, ERRQ__SPOOL_SUFFIX) == 0;
	}
	closedir(d);
	return n;
}

static errq_options_t *opts(const char *addr, const char *dir, const char *service)
{
	errq_options_t *o = errq_options_new();
	assert_int_equal(errq_options_set_collector(o, addr), ERRQ_OK);
	assert_int_equal(errq_options_set_service(o, service), ERRQ_OK);
	if (dir)
		assert_int_equal(errq_options_set_spool_dir(o, dir), ERRQ_OK);
	assert_int_equal(errq_options_set_linger_ms(o, 1), ERRQ_OK);
	assert_int_equal(errq_options_set_reconnect_backoff(o, 5, 50), ERRQ_OK);
	assert_int_equal(errq_options_set_max_batch_events(o, BATCH), ERRQ_OK);
	return o;
}

static void report(errq_client_t *c, char kind, int first, int n)
{
	for (int i = first; i < first + n; i++)
		assert_int_equal(errq_report_failure(c, "SpoolError", "SPOOL", "%c%d", kind, i), ERRQ_OK);
}

/* The child: reports CHILD_EVENTS with the collector away and closes: all spooled. */
static int spool_child(const char *addr, const char *dir)
{
	errq_client_t *c = errq_client_new(opts(addr, dir, "spool-child"));
	if (!c)
		return 2;
	for (int i = 0; i < CHILD_EVENTS; i++)
		if (errq_report_failure(c, "SpoolError", "SPOOL", "s%d", i) != ERRQ_OK)
			return 3;
	errq_stats_t st;
	if (errq_client_close_stats(c, 200, &st) != 0 || st.spooled != CHILD_EVENTS)
		return 4;
	return 0;
}

static void run_child(const char *addr, const char *dir)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_client_spool_promises", "--spool-child", addr, dir, (char *)NULL);
		_exit(127);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* The fake's requests in arrival order as 's' (spooled by the child) or 'm' (live). */
static int request_kinds(struct fake_collector *f, char *kinds, int max)
{
	int n = 0;
	pthread_mutex_lock(&f->mu);
	for (size_t r = 0; r < f->n_requests && n < max; r++) {
		if (!f->requests[r]->n_failures)
			continue;
		char k = f->requests[r]->failures[0]->message[0];
		for (size_t i = 1; i < f->requests[r]->n_failures; i++)
			assert_int_equal(f->requests[r]->failures[i]->message[0], k); /* never mixed */
		kinds[n++] = k;
	}
	pthread_mutex_unlock(&f->mu);
	kinds[n] = '\0';
	return n;
}

static void test_half_full_queue_spills_to_disk(void **state)
{
	char dir[64];
	temp_dir(dir, sizeof(dir));
	struct fake_collector f = {.silent_first_calls = 1000}; /* reads, never answers */
	assert_int_equal(fake_start(&f, 0), 0);
	errq_options_t *o = opts(f.addr, dir, "spool-half");
	assert_int_equal(errq_options_set_queue_capacity(o, 100), ERRQ_OK);
	assert_int_equal(errq_options_set_max_inflight(o, 1), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	errq_stats_t st;
	/* 70 of 100: past half, the overflow goes to disk */
	report(c, 'm', 0, 70);
	WAIT_UNTIL(c, st, st.spooled > 0 && st.pending * 2 <= 100 + 2 * BATCH);
	assert_int_equal(st.dropped_queue_full, 0);
	assert_int_equal(st.circuit_state, ERRQ_CIRCUIT_CLOSED); /* not the open circuit's spooling */
	assert_int_equal(st.circuit_opens, 0);
	assert_int_equal(st.acked, 0);
	/* 40 more: 110 reported into a queue of 100, none refused */
	report(c, 'm', 70, 40);
	WAIT_UNTIL(c, st, st.pending * 2 <= 100 + 2 * BATCH);
	assert_int_equal(st.dropped_queue_full, 0);
	assert_int_equal(st.queued, 110);
	assert_int_equal(st.spooled + st.pending, 110);
	assert_true(count_batches(dir) >= 1);
	errq_client_close(c, 0);
	fake_stop(&f);
	rm_rf(dir);
}

static void test_other_process_spool_first_then_alternating(void **state)
{
	char addr[64], dir[64];
	int port = free_port(addr);
	temp_dir(dir, sizeof(dir));
	run_child(addr, dir);
	int files = count_batches(dir);
	assert_int_equal(files, CHILD_EVENTS / BATCH);

	/* this process's client: live batches formed while the collector is still away */
	errq_options_t *o = opts(addr, dir, "spool-parent");
	assert_int_equal(errq_options_set_circuit_threshold(o, 1000), ERRQ_OK);
	/* two in flight: batches of both kinds wait their turn, so the order is the client's */
	assert_int_equal(errq_options_set_max_inflight(o, 2), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	report(c, 'm', 0, 30);
	errq_stats_t st;
	WAIT_UNTIL(c, st, st.stream_failures >= 2);
	assert_int_equal(st.spooled, 0);

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	WAIT_UNTIL(c, st, st.spool_replayed == CHILD_EVENTS && st.acked == 30 && st.spool_files == 0);
	assert_int_equal(st.accepted, CHILD_EVENTS + 30);
	assert_int_equal(st.duplicates, 0);
	assert_int_equal(count_batches(dir), 0);
	assert_int_equal(f.n_ids, CHILD_EVENTS + 30);
	/* the child's events carry the child's service */
	pthread_mutex_lock(&f.mu);
	for (size_t r = 0; r < f.n_requests; r++)
		for (size_t i = 0; i < f.requests[r]->n_failures; i++)
			assert_string_equal(f.requests[r]->failures[i]->service,
					    f.requests[r]->failures[i]->message[0] == 's' ? "spool-child" : "spool-parent");
	pthread_mutex_unlock(&f.mu);
	/* the stream starts with a spooled batch, and a live one follows it at once: the backlog
	 * on disk (six files) does not go out ahead of the live events.  Strict alternation is
	 * not asserted: the client reads one file back until the stream is answered, then four,
	 * and forms live batches as it sends them, so runs of either kind occur ("smmssssmsmmm") */
	char kinds[256];
	int n = request_kinds(&f, kinds, 255);
	print_message("batches on the stream: %s\n", kinds);
	assert_int_equal(n, CHILD_EVENTS / BATCH + 30 / BATCH);
	assert_int_equal(kinds[0], 's');
	assert_int_equal(kinds[1], 'm');
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
	rm_rf(dir);
}

static void test_crash_between_answer_and_delete_resends(void **state)
{
	char addr[64], dir[64], saved[80];
	int port = free_port(addr);
	temp_dir(dir, sizeof(dir));
	run_child(addr, dir);
	errq_snprintf(saved, sizeof(saved), "%s.saved", dir);
	cp_a(dir, saved);

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	errq_client_t *c = errq_client_new(opts(addr, dir, "spool-crash"));
	errq_stats_t st;
	WAIT_UNTIL(c, st, st.spool_replayed == CHILD_EVENTS && st.spool_files == 0);
	assert_int_equal(st.accepted, CHILD_EVENTS);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	assert_int_equal(count_batches(dir), 0);

	/* the process died after the answers, before deleting: the files are still there */
	rm_rf(dir);
	assert_int_equal(rename(saved, dir), 0);
	assert_int_equal(count_batches(dir), CHILD_EVENTS / BATCH);
	c = errq_client_new(opts(addr, dir, "spool-crash"));
	WAIT_UNTIL(c, st, st.spool_files == 0 && st.acked + st.spool_replayed >= CHILD_EVENTS);
	assert_int_equal(st.duplicates, CHILD_EVENTS); /* sent again, harmless */
	assert_int_equal(st.accepted, 0);
	assert_int_equal(f.n_ids, CHILD_EVENTS);       /* nothing stored twice */
	assert_int_equal(f.events_received, 2 * CHILD_EVENTS);
	assert_int_equal(count_batches(dir), 0);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
	rm_rf(dir);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--spool-child") == 0)
		return spool_child(argv[2], argv[3]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_half_full_queue_spills_to_disk),
	    cmocka_unit_test(test_other_process_spool_first_then_alternating),
	    cmocka_unit_test(test_crash_between_answer_and_delete_resends),
	};
	return cmocka_run_group_tests_name("client_spool_promises", tests, NULL, NULL);
}
