/* test_ingest.c: the ingest writer's loop with hooks (the rule engine's place in it).
 *
 * A hook's timer that falls due right as the writer goes idle once made the writer leave
 * its loop as if stopping (found under valgrind: ticks stopped, and so did ingest).  These
 * tests drive the writer through many such near-immediate timers, then check that it still
 * ticks, still commits batches, and runs the transaction hooks around each commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "errq_time.h"
#include "ingest.h"
#include "storage.h"

#define DEADLINE_NS (30ULL * ERRQ_NS_PER_SEC)

struct hooks_state {
	atomic_int ticks, txns, ends_committed, ends_rolled_back;
	atomic_int near_ticks; /* how many more ticks ask to be called again almost at once */
};

static int h_txn(void *ctx, struct store *s, const struct ingest_batch *list)
{
	(void)s;
	(void)list;
	struct hooks_state *h = ctx;
	h->txns++;
	return 0;
}

static void h_txn_end(void *ctx, struct store *s, bool committed)
{
	(void)s;
	struct hooks_state *h = ctx;
	if (committed)
		h->ends_committed++;
	else
		h->ends_rolled_back++;
}

static uint64_t h_tick(void *ctx, struct store *s)
{
	(void)s;
	struct hooks_state *h = ctx;
	h->ticks++;
	if (h->near_ticks > 0) {
		h->near_ticks--;
		return errq_mono_ns() + 1000; /* 1 µs from now: due by the time the writer waits */
	}
	return errq_mono_ns() + 20 * ERRQ_NS_PER_MS;
}

static atomic_int done_calls, done_committed;

static void b_done(struct ingest_batch *b, bool committed)
{
	done_calls++;
	done_committed += committed;
	free(b);
}

static void b_resumed(struct ingest_batch *b)
{
	(void)b;
}

static const struct ingest_batch_ops ops = {.done = b_done, .resumed = b_resumed};

static void wait_until(atomic_int *v, int want)
{
	uint64_t end = errq_mono_ns() + DEADLINE_NS;
	while (*v < want && errq_mono_ns() < end)
		usleep(1000);
}

/* A store in a temporary directory dir (mkdtemp'd here from its template). */
static struct store *temp_store(char *dir)
{
	char path[64], err[256];
	struct store *s = NULL;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	struct store_opts so = {.path = path};
	assert_int_equal(store_open(&s, &so, err, sizeof(err)), 0);
	return s;
}

static void temp_store_close(struct store *s, const char *dir)
{
	char cmd[128];
	store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Submits a batch with no events (it is done when its transaction commits or is given up). */
static void submit_empty(struct ingest *ig)
{
	struct ingest_batch *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	b->ops = &ops;
	b->bytes = 64;
	assert_int_equal(ingest_submit(ig, b), INGEST_QUEUED);
}

static void test_near_timers_keep_the_writer(void **state)
{
	(void)state;
	char dir[] = "/tmp/errq-ingest-XXXXXX";
	struct store *s = temp_store(dir);

	struct hooks_state hs = {.near_ticks = 2000};
	struct ingest_hooks hooks = {.txn = h_txn, .txn_end = h_txn_end, .tick = h_tick, .ctx = &hs};
	struct ingest_opts io = {.hooks = &hooks, .store = s, .max_batches = 16, .max_bytes = 1 << 20};
	struct ingest *ig = NULL;
	assert_int_equal(ingest_start(&ig, &io), 0);

	/* every near timer is taken; the writer then keeps ticking at its normal pace */
	wait_until(&hs.ticks, 2000 + 3);
	assert_true(hs.ticks >= 2000 + 3);
	assert_int_equal(hs.near_ticks, 0);

	/* and it still commits: a batch goes through the hooks and is answered committed */
	done_calls = done_committed = 0;
	for (int i = 0; i < 5; i++) {
		submit_empty(ig);
		wait_until(&done_calls, i + 1);
	}
	assert_int_equal(done_calls, 5);
	assert_int_equal(done_committed, 5);
	assert_true(hs.txns >= 1 && hs.txns <= 5);
	assert_int_equal(hs.ends_committed, hs.txns);
	assert_int_equal(hs.ends_rolled_back, 0);

	/* a tick asked for from outside comes soon, even with the next timer far away */
	int before = hs.ticks;
	ingest_tick_soon(ig);
	wait_until(&hs.ticks, before + 1);
	assert_true(hs.ticks > before);

	ingest_free(ig);
	temp_store_close(s, dir);
}

/* A SQLite store whose database server "goes away": while down, every transaction fails as
 * PostgreSQL's backend fails when its connection is lost (STORE_ERR_UNAVAILABLE). */
static atomic_bool server_down;
static int down_txn_begin(struct store *s)
{
	return atomic_load(&server_down) ? -1 : store_sqlite_backend.txn_begin(s);
}
static const char *down_errmsg(const struct store *s)
{
	return atomic_load(&server_down) ? "database unavailable: reconnecting" : store_sqlite_backend.errmsg(s);
}
static int down_errclass(const struct store *s)
{
	return atomic_load(&server_down) ? STORE_ERR_UNAVAILABLE : store_sqlite_backend.last_errclass(s);
}

/* A lost database server gives the batches back unacknowledged at once (their streams end
 * UNAVAILABLE and the clients resend, to another collector if there is one) instead of holding
 * them for retries; once it is back, batches commit again. */
static void test_unavailable_gives_batches_back(void **state)
{
	(void)state;
	char dir[] = "/tmp/errq-ingest-XXXXXX";
	struct store *s = temp_store(dir);
	struct store_backend down = store_sqlite_backend;
	down.txn_begin = down_txn_begin;
	down.errmsg = down_errmsg;
	down.last_errclass = down_errclass;
	*(const struct store_backend **)(void *)s = &down; /* the handle's first member (backend.h) */

	struct ingest_opts io = {.store = s, .max_batches = 16, .max_bytes = 1 << 20};
	struct ingest *ig = NULL;
	assert_int_equal(ingest_start(&ig, &io), 0);
	atomic_store(&server_down, true);
	done_calls = done_committed = 0;
	for (int i = 0; i < 3; i++)
		submit_empty(ig);
	wait_until(&done_calls, 3); /* retried instead, they would never be done while it is down */
	assert_int_equal(done_calls, 3);
	assert_int_equal(done_committed, 0);
	struct ingest_health h;
	ingest_get_health(ig, &h);
	assert_int_equal(h.store_error, STORE_ERR_UNAVAILABLE);
	assert_true(h.failing_since > 0);
	assert_string_equal(h.error, "database unavailable: reconnecting");

	atomic_store(&server_down, false);
	submit_empty(ig);
	wait_until(&done_calls, 4);
	assert_int_equal(done_calls, 4);
	assert_int_equal(done_committed, 1);
	ingest_get_health(ig, &h);
	assert_int_equal(h.failing_since, 0);

	ingest_free(ig);
	temp_store_close(s, dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_near_timers_keep_the_writer),
	    cmocka_unit_test(test_unavailable_gives_batches_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
