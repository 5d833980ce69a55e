/* Unit: storage/pg/pg_fleet.c — the fleet's operations against a private PostgreSQL server
 * (the ctest fixture `pg`; each test its own database): the leader lock and its epoch, fencing
 * (a stale epoch refused; a new leader's bump waits for the old leader's open transaction),
 * a lost session, increments taken exactly once (rows another transaction holds or has not
 * committed are skipped; a rollback gives them back), delivery leases (lease, renew, release),
 * and the refusals.  Called through the seam (store_*), as the collector calls them. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "pg_support.h"
#include "storage.h"
#include "storage_alerts.h"

#define NS 1000000000ULL
/* the server is shared by the tests running beside this one: only this database's locks */
#define THIS_DB "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
#define THIS_DB_LOCKS "SELECT count(*) FROM pg_locks WHERE " THIS_DB
#define ADVISORY_LOCKS THIS_DB_LOCKS " AND locktype = 'advisory'"
/* sessions of this database waiting for a lock (a waiting UPDATE's lock is its blocker's
 * transaction id, which pg_locks shows without a database) */
#define WAITING "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"

static struct pg_test_db db;
static PGconn *admin;

static int setup(void **state)
{
	char err[256];
	(void)state;
	if (pg_test_db_create(&db, "fleet_pg", err, sizeof(err)) || !(admin = pg_test_connect(&db, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char err[256];
	(void)state;
	PQfinish(admin);
	if (pg_test_db_drop(&db, err, sizeof(err)))
		fprintf(stderr, "%s\n", err);
	return 0;
}

static struct store *open_db(bool leader_session)
{
	struct store *s = NULL;
	char err[512];
	struct store_opts o = {.path = db.url, .leader_session = leader_session};
	if (store_open(&s, &o, err, sizeof(err)))
		fail_msg("open: %s", err);
	return s;
}

static int64_t q(const char *sql)
{
	int64_t v = -1;
	char err[512];
	if (pg_test_int(admin, sql, &v, err, sizeof(err)))
		fail_msg("%s", err);
	return v;
}

/* Waits until no session holds the leader lock (a session the server ends goes in ms). */
static void wait_unlocked(void)
{
	for (int i = 0; i < 3000 && q(ADVISORY_LOCKS) != 0; i++) {
		struct timespec ts = {0, 10000000}; /* 30 s at most */
		nanosleep(&ts, NULL);
	}
	assert_int_equal(q(ADVISORY_LOCKS), 0);
}

static void test_leader_lock_and_fence(void **state)
{
	(void)state;
	struct store *w = open_db(false); /* migrates: the writer's handle comes first */
	assert_true(store_fleet(w));
	struct store *a = open_db(true), *b = open_db(true);
	uint64_t ea = 0, eb = 0;
	/* refusals */
	assert_int_equal(store_leader_acquire(a, "", &ea), -1);
	assert_non_null(strstr(store_errmsg(a), "collector name"));
	assert_int_equal(store_leader_acquire(w, "w", &ea), -1); /* not a leader session */
	assert_non_null(strstr(store_errmsg(w), "not a leader session"));
	assert_int_equal(store_leader_check(w, 1, NULL), -1);    /* outside a transaction */

	assert_int_equal(store_leader_acquire(a, "replica-a", &ea), 1);
	assert_int_equal(ea, 1);
	assert_int_equal(store_leader_acquire(b, "replica-b", &eb), 0); /* a holds it */
	assert_int_equal(store_leader_acquire(a, "replica-a", &ea), 1); /* held: bumps, holds once */
	assert_int_equal(ea, 2);
	assert_int_equal(q(ADVISORY_LOCKS " AND granted"), 1);
	assert_int_equal(store_leader_ping(a), 1);
	struct store_leader st;
	assert_int_equal(store_leader_get(w, &st), 0);
	assert_int_equal(st.epoch, 2);
	assert_string_equal(st.leader, "replica-a");

	/* the writer of a checks its epoch inside its transaction */
	assert_int_equal(store_txn_begin(w), 0);
	assert_int_equal(store_leader_check(w, ea, &st), 1);
	assert_int_equal(store_txn_commit(w), 0);

	/* a's session ends (a network cut): b takes over with a new epoch; a's ping says so */
	assert_int_equal(q("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = "
			   "'errqd-leader' AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND " THIS_DB ")"),
			 1);
	wait_unlocked();
	assert_int_equal(store_leader_acquire(b, "replica-b", &eb), 1);
	assert_int_equal(eb, 3);
	assert_int_equal(store_leader_ping(a), 0);
	/* and a transaction of a's writer under the old epoch is refused */
	assert_int_equal(store_txn_begin(w), 0);
	assert_int_equal(store_leader_check(w, ea, &st), 0);
	assert_int_equal(st.epoch, 3);
	assert_string_equal(st.leader, "replica-b");
	store_txn_rollback(w);
	/* a reconnected session holds nothing until it takes the lock again: b holds it */
	assert_int_equal(store_leader_acquire(a, "replica-a", &ea), 0);
	store_close(b); /* the session ends: the lock with it */
	wait_unlocked();
	assert_int_equal(store_leader_acquire(a, "replica-a", &ea), 1);
	assert_int_equal(ea, 4);
	store_close(a);
	store_close(w);
}

/* The new leader's bump waits for the old leader's open transaction (FOR SHARE). */
struct bump {
	struct store *s;
	uint64_t epoch;
	int rc;
};

static void *bump_thread(void *arg)
{
	struct bump *b = arg;
	b->rc = store_leader_acquire(b->s, "replica-b", &b->epoch);
	return NULL;
}

static void test_bump_waits_for_open_transaction(void **state)
{
	(void)state;
	struct store *w = open_db(false), *a = open_db(true), *bs = open_db(true);
	uint64_t ea;
	assert_int_equal(store_leader_acquire(a, "replica-a", &ea), 1);
	assert_int_equal(store_txn_begin(w), 0);
	assert_int_equal(store_leader_check(w, ea, NULL), 1); /* holds the row FOR SHARE */
	store_close(a); /* a's lock goes: b can take it, but its bump must wait for w */
	wait_unlocked();
	struct bump b = {.s = bs, .rc = -2};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bump_thread, &b), 0);
	/* b's UPDATE is blocked on w's row lock: seen as a waiting lock */
	for (int i = 0; i < 3000 && q(WAITING) == 0; i++) {
		struct timespec ts = {0, 10000000}; /* 30 s at most; it takes milliseconds */
		nanosleep(&ts, NULL);
	}
	assert_int_equal(q(WAITING), 1);
	assert_int_equal(q("SELECT epoch FROM errq_leader"), (int64_t)ea); /* not bumped yet */
	assert_int_equal(store_txn_commit(w), 0); /* the old leader's last transaction commits first */
	pthread_join(t, NULL);
	assert_int_equal(b.rc, 1);
	assert_int_equal(b.epoch, ea + 1);
	assert_int_equal(store_txn_begin(w), 0);
	assert_int_equal(store_leader_check(w, ea, NULL), 0); /* and the next one is refused */
	store_txn_rollback(w);
	store_close(bs);
	store_close(w);
}

struct taken {
	int n;
	int64_t ids[64];
	uint64_t failures[64];
	char keys[64][32];
	bool sample[64];
};

static int take_cb(void *ctx, const struct store_rule_input *in)
{
	struct taken *t = ctx;
	if (t->n < 64) {
		t->ids[t->n] = in->id;
		t->failures[t->n] = in->failures;
		snprintf(t->keys[t->n], sizeof(t->keys[t->n]), "%s", in->key);
		t->sample[t->n] = in->sample_event != NULL;
		t->n++;
	}
	return 0;
}

static void test_inputs_taken_once(void **state)
{
	(void)state;
	struct store *w1 = open_db(false), *w2 = open_db(false), *leader = open_db(false);
	uint8_t ev[16] = {1, 2, 3};
	struct store_rule_input in[3] = {
	    {.kind = STORE_INPUT_FAILURES, .rule = "r", .key = "service=a", .received_ns = 100 * NS + 5, .failures = 7,
	     .sample_event = ev},
	    {.kind = STORE_INPUT_FAILURES, .rule = "r", .key = "", .received_ns = 101 * NS, .failures = 1},
	    {.kind = STORE_INPUT_OUTCOME_ALL, .rule = "r", .key = "", .received_ns = 102 * NS, .ok = 3, .failed = 2,
	     .service = "svc", .task = NULL},
	};
	/* w1 commits two rows; w2 writes one and has not committed */
	assert_int_equal(store_txn_begin(w1), 0);
	assert_int_equal(store_rule_inputs_add(w1, in, 2), 0);
	assert_int_equal(store_txn_commit(w1), 0);
	assert_int_equal(store_txn_begin(w2), 0);
	assert_int_equal(store_rule_inputs_add(w2, in + 2, 1), 0);

	struct taken t = {0};
	assert_int_equal(store_rule_inputs_take(leader, 10, take_cb, &t), -1); /* outside a transaction */
	assert_int_equal(store_txn_begin(leader), 0);
	assert_int_equal(store_rule_inputs_take(leader, 0, take_cb, &t), -1);    /* bad limit */
	store_txn_rollback(leader);
	/* a take rolled back gives them back */
	assert_int_equal(store_txn_begin(leader), 0);
	assert_int_equal(store_rule_inputs_take(leader, 10, take_cb, &t), 2);
	store_txn_rollback(leader);
	assert_int_equal(t.n, 2);
	memset(&t, 0, sizeof(t));
	assert_int_equal(store_txn_begin(leader), 0);
	assert_int_equal(store_rule_inputs_take(leader, 10, take_cb, &t), 2); /* not w2's: uncommitted */
	assert_int_equal(store_txn_commit(leader), 0);
	assert_int_equal(t.n, 2);
	assert_true(t.ids[0] < t.ids[1]); /* in id order */
	assert_int_equal(t.failures[0], 7);
	assert_string_equal(t.keys[0], "service=a");
	assert_true(t.sample[0]);
	assert_string_equal(t.keys[1], ""); /* a one-circuit rule's key, not NULL */
	assert_false(t.sample[1]);
	assert_int_equal(store_txn_commit(w2), 0);
	memset(&t, 0, sizeof(t));
	/* two takers at once: the second skips what the first holds */
	struct store *other = open_db(false);
	assert_int_equal(store_txn_begin(leader), 0);
	assert_int_equal(store_rule_inputs_take(leader, 10, take_cb, &t), 1);
	assert_int_equal(store_txn_begin(other), 0);
	struct taken t2 = {0};
	assert_int_equal(store_rule_inputs_take(other, 10, take_cb, &t2), 0);
	store_txn_rollback(other);
	assert_int_equal(store_txn_commit(leader), 0);
	assert_int_equal(q("SELECT count(*) FROM rule_inputs"), 0);
	store_close(other);
	store_close(leader);
	store_close(w2);
	store_close(w1);
}

static int claim_cb(void *ctx, const struct store_delivery *d)
{
	int64_t *last = ctx;
	*last = d->id;
	return 0;
}

static void test_delivery_leases(void **state)
{
	(void)state;
	struct store *w = open_db(false), *o = open_db(false);
	uint8_t alert[16] = {9};
	struct store_delivery d = {.alert_id = alert, .notifier = "ops", .kind = "firing", .seq = 1,
				   .idempotency_key = "x:firing:1", .body = "{}", .body_len = 2,
				   .status = STORE_DELIVERY_PENDING, .created_ns = 1, .updated_ns = 1};
	int64_t id1, id2, got = 0;
	assert_int_equal(store_delivery_add(w, &d, &id1), 0);
	assert_int_equal(store_delivery_add(w, &d, &id2), 0);
	const uint64_t now = 1000 * NS, lease = 30 * NS;
	assert_int_equal(store_delivery_lease(w, id1, "me/1", now + lease), 1);
	/* another claimer gets only the row nobody holds */
	assert_int_equal(store_delivery_claim(o, "other/2", now, lease, 10, claim_cb, &got), 1);
	assert_int_equal(got, id2);
	/* renewed, mine outlives its first lease; the other's ends */
	assert_int_equal(store_deliveries_renew(w, "me/1", now + 20 * NS, now + 60 * NS), 1);
	assert_int_equal(store_delivery_claim(o, "other/2", now + 40 * NS, lease, 10, claim_cb, &got), 1);
	assert_int_equal(got, id2); /* id2 again (its lease ended at now + 30 s), not id1 */
	/* released (at shutdown): claimable at once */
	assert_int_equal(store_deliveries_renew(w, "me/1", 0, 0), 1);
	assert_int_equal(store_delivery_claim(o, "other/2", now + 41 * NS, lease, 10, claim_cb, &got), 1);
	assert_int_equal(got, id1);
	/* a row no longer pending is not leased */
	assert_int_equal(store_delivery_update(w, id1, STORE_DELIVERY_DELIVERED, 1, 0, 200, "", now), 1);
	assert_int_equal(store_delivery_lease(w, id1, "me/1", now + lease), 0);
	store_close(o);
	store_close(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_leader_lock_and_fence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bump_waits_for_open_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inputs_taken_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delivery_leases, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
