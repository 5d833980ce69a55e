/* Unit: server/circuit.c — every transition on a fake clock (now is stepped by hand, nothing
 * sleeps): window arithmetic at its boundaries, count and rate trips, the probe, backoff,
 * reminders, max_event_age, persistence and restart, retirement, the full lifecycle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "circuit.h"

#define NS UINT64_C(1000000000)
#define S(x) ((uint64_t)(x) * NS)
#define T0 S(1700000000) /* on a second boundary */

static struct circuit_config base(void)
{
	struct circuit_config c;
	memset(&c, 0, sizeof(c));
	c.failures = 3;
	c.window_ns = S(60);
	c.min_calls = 10;
	c.recovery_timeout_ns = S(60);
	c.probe_ns = S(30);
	c.probe_failures = 1;
	c.backoff_factor = 2000;
	c.backoff_max_ns = S(1800);
	c.repeat_interval_ns = S(4 * 3600);
	c.max_event_age_ns = S(60);
	return c;
}

static struct circuit_out out;

/* One failure received at now, client time unknown. */
static enum circuit_count fail_at(struct circuit *c, const struct circuit_config *cfg, uint64_t now)
{
	return circuit_failure(c, cfg, now, now, 0, &out);
}

static void expect_rec(size_t i, enum circuit_alert alert, enum circuit_state from, enum circuit_state to,
		       uint64_t at, const char *reason)
{
	assert_true(out.n > i);
	const struct circuit_record *r = &out.rec[i];
	assert_int_equal(r->alert, alert);
	assert_int_equal(r->from, from);
	assert_int_equal(r->to, to);
	assert_int_equal(r->at, at);
	if (reason)
		assert_string_equal(r->reason, reason);
}

/* A circuit tripped at `at` by cfg->failures failures received at `at`. */
static struct circuit *tripped(const struct circuit_config *cfg, uint64_t at)
{
	struct circuit *c = circuit_new(cfg, at - S(1));
	assert_non_null(c);
	for (uint32_t i = 0; i < cfg->failures; i++)
		fail_at(c, cfg, at);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	return c;
}

static void test_names_and_config_check(void **state)
{
	char err[128];
	struct circuit_config cfg = base();
	assert_string_equal(circuit_state_name(CIRCUIT_CLOSED), "closed");
	assert_string_equal(circuit_state_name(CIRCUIT_OPEN), "open");
	assert_string_equal(circuit_state_name(CIRCUIT_HALF_OPEN), "half_open");
	assert_int_equal(circuit_config_check(&cfg, err, sizeof(err)), 0);
	cfg.window_ns = S(60) + 1;
	assert_int_equal(circuit_config_check(&cfg, err, sizeof(err)), -1);
	cfg = base();
	cfg.failures = 0;
	assert_int_equal(circuit_config_check(&cfg, err, sizeof(err)), -1);
	cfg = base();
	cfg.backoff_max_ns = S(59);
	assert_int_equal(circuit_config_check(&cfg, err, sizeof(err)), -1);
}

static void test_trip_on_nth_failure(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = circuit_new(&cfg, T0);
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	assert_int_equal(circuit_next_deadline(c), 0);
	assert_int_equal(fail_at(c, &cfg, T0 + S(1)), CIRCUIT_COUNTED);
	assert_int_equal(out.n, 0);
	assert_int_equal(fail_at(c, &cfg, T0 + S(2)), CIRCUIT_COUNTED);
	assert_int_equal(out.n, 0);
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	/* the 3rd failure trips, at its receive time */
	assert_int_equal(fail_at(c, &cfg, T0 + S(3)), CIRCUIT_COUNTED);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_FIRE, CIRCUIT_CLOSED, CIRCUIT_OPEN, T0 + S(3), "failures 3 >= 3 in 60s");
	assert_int_equal(out.rec[0].failures_in_window, 3);
	assert_int_equal(out.rec[0].window_seconds, 60);
	/* the recovery timer starts at the trip */
	assert_int_equal(out.rec[0].next_transition_at, T0 + S(63));
	assert_int_equal(circuit_next_transition(c), T0 + S(63));
	assert_int_equal(circuit_next_deadline(c), T0 + S(63));
	assert_int_equal(c->opened_at, T0 + S(3));
	assert_int_equal(c->since, T0 + S(3));
	circuit_free(c);
	circuit_free(NULL);
}

/* An event received on a second boundary counts while now - received_at < window. */
static void test_window_boundary(void **state)
{
	struct circuit_config cfg = base();
	cfg.failures = 2;
	struct circuit *c = circuit_new(&cfg, T0);
	fail_at(c, &cfg, T0);
	assert_int_equal(circuit_window_failures(c, T0 + S(60) - 1), 1);
	assert_int_equal(circuit_window_failures(c, T0 + S(60)), 0);
	/* the 2nd failure at window - 1ns still sees the first: trips */
	fail_at(c, &cfg, T0 + S(60) - 1);
	assert_int_equal(out.n, 1);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_string_equal(out.rec[0].reason, "failures 2 >= 2 in 60s");
	circuit_free(c);

	/* exactly at window the first no longer counts */
	c = circuit_new(&cfg, T0);
	fail_at(c, &cfg, T0);
	fail_at(c, &cfg, T0 + S(60));
	assert_int_equal(out.n, 0);
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	assert_int_equal(circuit_window_failures(c, T0 + S(60)), 1);
	/* ... and a third one a second later trips on the two that count */
	fail_at(c, &cfg, T0 + S(61));
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_int_equal(out.rec[0].failures_in_window, 2);
	circuit_free(c);
}

/* Inside a second, an event is taken as received at the second's start (1 s buckets):
 * documented resolution, never counting a failure older than the window. */
static void test_window_bucket_resolution(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = circuit_new(&cfg, T0);
	fail_at(c, &cfg, T0 + NS / 2);
	assert_int_equal(circuit_window_failures(c, T0 + S(60) - 1), 1);
	assert_int_equal(circuit_window_failures(c, T0 + S(60)), 0);
	circuit_free(c);
}

static void test_threshold_is_ge_and_counts_expire(void **state)
{
	struct circuit_config cfg = base();
	cfg.failures = 5;
	struct circuit *c = circuit_new(&cfg, T0);
	/* 4 failures every 20 s never reach 5 in 60 s: at most 3 + 1 in any window */
	for (int i = 0; i < 20; i++) {
		fail_at(c, &cfg, T0 + S(20 * i));
		assert_int_equal(c->state, CIRCUIT_CLOSED);
	}
	assert_int_equal(circuit_window_failures(c, T0 + S(380)), 3);
	/* a burst makes 5 (the 3 in the window + 2) */
	fail_at(c, &cfg, T0 + S(381));
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	fail_at(c, &cfg, T0 + S(381));
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_string_equal(out.rec[0].reason, "failures 5 >= 5 in 60s");
	circuit_free(c);
}

static void test_failure_rate(void **state)
{
	struct circuit_config cfg = base();
	cfg.failures = 0;
	cfg.failure_rate_ppm = 500000;
	cfg.min_calls = 10;
	struct circuit *c = circuit_new(&cfg, T0);
	assert_int_equal(c->has_calls, 1);
	/* 4 of 8 is 0.5 but below min_calls */
	assert_int_equal(circuit_outcome(c, &cfg, T0 + S(1), T0 + S(1), 4, 4, 0, &out), CIRCUIT_COUNTED);
	assert_int_equal(out.n, 0);
	/* failure events alone do not trip a rate-only rule */
	for (int i = 0; i < 10; i++)
		fail_at(c, &cfg, T0 + S(2));
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	/* 5 of 10 = 0.5 >= 0.5 with 10 calls >= min_calls */
	circuit_outcome(c, &cfg, T0 + S(3), T0 + S(3), 1, 1, 0, &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_FIRE, CIRCUIT_CLOSED, CIRCUIT_OPEN, T0 + S(3),
		   "failure rate 0.5 >= 0.5 over 10 calls in 60s");
	uint64_t ok, failed;
	circuit_window_calls(c, T0 + S(3), &ok, &failed);
	assert_int_equal(ok, 5);
	assert_int_equal(failed, 5);
	circuit_free(c);

	/* below the rate: 4 of 10 */
	c = circuit_new(&cfg, T0);
	circuit_outcome(c, &cfg, T0 + S(1), T0 + S(1), 6, 4, 0, &out);
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	/* outcomes leave the window like failures: 60 s later only the new ones count */
	circuit_outcome(c, &cfg, T0 + S(61), T0 + S(61), 5, 5, 0, &out);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_string_equal(out.rec[0].reason, "failure rate 0.5 >= 0.5 over 10 calls in 60s");
	circuit_free(c);

	/* exact decimal thresholds: 3 of 10 >= 0.3 (0.3 * 10 is not 3 in binary floating point) */
	cfg.failure_rate_ppm = 300000;
	c = circuit_new(&cfg, T0);
	circuit_outcome(c, &cfg, T0 + S(1), T0 + S(1), 7, 3, 0, &out);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_string_equal(out.rec[0].reason, "failure rate 0.3 >= 0.3 over 10 calls in 60s");
	circuit_free(c);
}

/* With both failures and failure_rate, either trips. */
static void test_count_or_rate(void **state)
{
	struct circuit_config cfg = base();
	cfg.failures = 5;
	cfg.failure_rate_ppm = 500000;
	struct circuit *c = circuit_new(&cfg, T0);
	for (int i = 0; i < 5; i++)
		fail_at(c, &cfg, T0 + S(1));
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_string_equal(out.rec[0].reason, "failures 5 >= 5 in 60s");
	circuit_free(c);
	c = circuit_new(&cfg, T0);
	circuit_outcome(c, &cfg, T0 + S(1), T0 + S(1), 2, 18, 0, &out);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_string_equal(out.rec[0].reason, "failure rate 0.9 >= 0.5 over 20 calls in 60s");
	circuit_free(c);
}

static void test_open_ignores_failures(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = tripped(&cfg, T0);
	uint64_t deadline = c->deadline;
	for (int i = 1; i <= 100; i++) {
		assert_int_equal(fail_at(c, &cfg, T0 + (uint64_t)i * NS / 4), CIRCUIT_COUNTED);
		assert_int_equal(out.n, 0);
	}
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_int_equal(c->deadline, deadline);
	assert_int_equal(c->since, T0);
	/* recorded: they show in the window */
	assert_int_equal(circuit_window_failures(c, T0 + S(25)), 103);
	circuit_free(c);
}

static void test_open_to_half_open(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = tripped(&cfg, T0);
	circuit_tick(c, &cfg, T0 + S(60) - 1, &out);
	assert_int_equal(out.n, 0);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	circuit_tick(c, &cfg, T0 + S(60), &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_NONE, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, T0 + S(60), "recovery_timeout elapsed");
	assert_int_equal(out.rec[0].next_transition_at, T0 + S(90));
	assert_int_equal(c->probe_start, T0 + S(60));
	circuit_free(c);

	/* a late tick applies the transition at the deadline, not at the tick */
	c = tripped(&cfg, T0);
	circuit_tick(c, &cfg, T0 + S(65), &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_NONE, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, T0 + S(60), NULL);
	assert_int_equal(c->deadline, T0 + S(90));
	circuit_free(c);

	/* a tick long after: the quiet probe closes too, each at its own time */
	c = tripped(&cfg, T0);
	circuit_tick(c, &cfg, T0 + S(1000), &out);
	assert_int_equal(out.n, 2);
	expect_rec(0, CIRCUIT_ALERT_NONE, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, T0 + S(60), NULL);
	expect_rec(1, CIRCUIT_ALERT_RESOLVE, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED, T0 + S(90), "probe quiet for 30s");
	assert_int_equal(circuit_next_deadline(c), 0);
	circuit_free(c);
}

static void half_open_at(struct circuit *c, const struct circuit_config *cfg, uint64_t t)
{
	circuit_tick(c, cfg, t, &out);
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN);
}

static void test_half_open_reopen_backoff(void **state)
{
	struct circuit_config cfg = base(); /* recovery 60 s, factor 2, max 1800 s */
	struct circuit *c = tripped(&cfg, T0);
	uint64_t t = c->deadline;
	const uint64_t expect[] = {120, 240, 480, 960, 1800, 1800};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		half_open_at(c, &cfg, t);
		/* one failure 5 s into the probe re-opens, with no new alert */
		fail_at(c, &cfg, t + S(5));
		assert_int_equal(out.n, 1);
		expect_rec(0, CIRCUIT_ALERT_NONE, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, t + S(5), "1 failure in probe");
		assert_int_equal(out.rec[0].next_transition_at, t + S(5) + S(expect[i]));
		assert_int_equal(c->recovery_ns, S(expect[i]));
		assert_int_equal(c->reopens, i + 1);
		assert_int_equal(c->opened_at, T0); /* the same alert */
		t = c->deadline;
	}
	circuit_free(c);

	/* a factor of 1.5 rounds down to the nanosecond and caps the same way */
	cfg.backoff_factor = 1500;
	cfg.backoff_max_ns = S(100);
	c = tripped(&cfg, T0);
	half_open_at(c, &cfg, c->deadline);
	fail_at(c, &cfg, c->probe_start);
	assert_int_equal(c->recovery_ns, S(90));
	half_open_at(c, &cfg, c->deadline);
	fail_at(c, &cfg, c->probe_start);
	assert_int_equal(c->recovery_ns, S(100));
	circuit_free(c);
}

static void test_quiet_probe_closes_and_resets(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = tripped(&cfg, T0);
	half_open_at(c, &cfg, T0 + S(60));
	fail_at(c, &cfg, T0 + S(61)); /* re-open: recovery 120 s */
	assert_int_equal(c->recovery_ns, S(120));
	half_open_at(c, &cfg, T0 + S(181));
	circuit_tick(c, &cfg, T0 + S(211) - 1, &out);
	assert_int_equal(out.n, 0);
	circuit_tick(c, &cfg, T0 + S(211), &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_RESOLVE, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED, T0 + S(211), "probe quiet for 30s");
	assert_int_equal(out.rec[0].next_transition_at, 0);
	/* the window was reset: the failures of the incident are gone */
	assert_int_equal(circuit_window_failures(c, T0 + S(211)), 0);
	assert_int_equal(c->opened_at, 0);
	/* ... and so was the backoff: the next trip waits recovery_timeout again */
	fail_at(c, &cfg, T0 + S(212));
	fail_at(c, &cfg, T0 + S(212));
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	fail_at(c, &cfg, T0 + S(212));
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_int_equal(out.rec[0].alert, CIRCUIT_ALERT_FIRE);
	assert_int_equal(c->deadline, T0 + S(272));
	circuit_free(c);
}

static void test_probe_failure_threshold(void **state)
{
	struct circuit_config cfg = base();
	cfg.probe_failures = 3;
	struct circuit *c = tripped(&cfg, T0);
	half_open_at(c, &cfg, T0 + S(60));
	fail_at(c, &cfg, T0 + S(61));
	fail_at(c, &cfg, T0 + S(62));
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN);
	circuit_tick(c, &cfg, T0 + S(90), &out);
	expect_rec(0, CIRCUIT_ALERT_RESOLVE, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED, T0 + S(90),
		   "probe passed: 2 failures < 3 in 30s");
	circuit_free(c);

	c = tripped(&cfg, T0);
	half_open_at(c, &cfg, T0 + S(60));
	fail_at(c, &cfg, T0 + S(61));
	fail_at(c, &cfg, T0 + S(62));
	fail_at(c, &cfg, T0 + S(89));
	expect_rec(0, CIRCUIT_ALERT_NONE, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, T0 + S(89), "3 failures in probe");
	circuit_free(c);
}

/* A failure received before the probe started (during OPEN) is not a probe failure, even
 * when it is processed after. */
static void test_probe_takes_received_at(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = tripped(&cfg, T0);
	half_open_at(c, &cfg, T0 + S(60));
	assert_int_equal(circuit_failure(c, &cfg, T0 + S(61), T0 + S(60) - 1, 0, &out), CIRCUIT_COUNTED);
	assert_int_equal(out.n, 0);
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN);
	/* received exactly at the probe start: in the probe */
	circuit_failure(c, &cfg, T0 + S(62), T0 + S(60), 0, &out);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	circuit_free(c);
}

/* An event processed late is applied at its receive time, after the deadlines before it
 * and before the deadlines after it: a failure received inside the probe re-opens the
 * circuit even when no tick ran and the probe would have ended by now. */
static void test_late_event_in_time_order(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = tripped(&cfg, T0);
	circuit_failure(c, &cfg, T0 + S(100), T0 + S(70), 0, &out);
	assert_int_equal(out.n, 2);
	expect_rec(0, CIRCUIT_ALERT_NONE, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, T0 + S(60), NULL);
	expect_rec(1, CIRCUIT_ALERT_NONE, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, T0 + S(70), "1 failure in probe");
	assert_int_equal(c->deadline, T0 + S(190));
	assert_true(circuit_next_deadline(c) > T0 + S(100));
	circuit_free(c);
}

static void test_probe_successes(void **state)
{
	struct circuit_config cfg = base();
	cfg.probe_successes = 10;
	struct circuit *c = tripped(&cfg, T0);
	/* ok calls before the probe do not count */
	circuit_outcome(c, &cfg, T0 + S(30), T0 + S(30), 100, 0, 0, &out);
	half_open_at(c, &cfg, T0 + S(60));
	circuit_outcome(c, &cfg, T0 + S(61), T0 + S(61), 6, 0, 0, &out);
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN);
	/* without a failure_rate, failed calls may be other errors: they do not re-open */
	circuit_outcome(c, &cfg, T0 + S(62), T0 + S(62), 4, 2, 0, &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_RESOLVE, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED, T0 + S(62), "10 successes in probe");
	circuit_free(c);
}

/* With a failure_rate the outcomes belong to the circuit: failed calls count in the probe,
 * as the larger of failed calls and failure events (a failure reported both ways counts
 * once). */
static void test_probe_failed_calls(void **state)
{
	struct circuit_config cfg = base();
	cfg.failures = 0;
	cfg.failure_rate_ppm = 500000;
	cfg.probe_failures = 3;
	struct circuit *c = circuit_new(&cfg, T0);
	circuit_outcome(c, &cfg, T0, T0, 0, 10, 0, &out);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	half_open_at(c, &cfg, T0 + S(60));
	fail_at(c, &cfg, T0 + S(61));
	fail_at(c, &cfg, T0 + S(61));
	circuit_outcome(c, &cfg, T0 + S(62), T0 + S(62), 5, 2, 0, &out);
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN); /* max(2, 2) < 3 */
	circuit_outcome(c, &cfg, T0 + S(63), T0 + S(63), 0, 1, 0, &out);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_string_equal(out.rec[0].reason, "3 failures in probe");
	circuit_free(c);
}

static void test_max_event_age(void **state)
{
	struct circuit_config cfg = base();
	cfg.failures = 1;
	struct circuit *c = circuit_new(&cfg, T0);
	uint64_t now = T0 + S(10);
	/* happened 60 s + 1 ns before it was received: a flushed backlog */
	assert_int_equal(circuit_failure(c, &cfg, now, now, now - S(60) - 1, &out), CIRCUIT_TOO_OLD);
	assert_int_equal(out.n, 0);
	assert_int_equal(circuit_window_failures(c, now), 0);
	/* exactly max_event_age old still counts */
	assert_int_equal(circuit_failure(c, &cfg, now, now, now - S(60), &out), CIRCUIT_COUNTED);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	circuit_free(c);

	c = circuit_new(&cfg, T0);
	/* unknown client time, or a client clock ahead: counted */
	assert_int_equal(circuit_failure(c, &cfg, now, now, now + S(3600), &out), CIRCUIT_COUNTED);
	circuit_free(c);
	c = circuit_new(&cfg, T0);
	assert_int_equal(circuit_failure(c, &cfg, now, now, 0, &out), CIRCUIT_COUNTED);
	circuit_free(c);

	/* old outcomes are ignored the same way */
	cfg.failure_rate_ppm = 100000;
	c = circuit_new(&cfg, T0);
	assert_int_equal(circuit_outcome(c, &cfg, now, now, 0, 100, now - S(61), &out), CIRCUIT_TOO_OLD);
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	circuit_free(c);

	/* max_event_age 0: no limit */
	cfg = base();
	cfg.failures = 1;
	cfg.max_event_age_ns = 0;
	c = circuit_new(&cfg, T0);
	assert_int_equal(circuit_failure(c, &cfg, now, now, now - S(86400), &out), CIRCUIT_COUNTED);
	circuit_free(c);
}

static void test_expired_input(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = circuit_new(&cfg, T0);
	/* an input is applied at its receive time when the circuit has not applied a later
	 * time: processed 61 s late, these still count and trip at their receive time, as a
	 * replay would (then the recovery timeout due by now fires) */
	assert_int_equal(circuit_failure(c, &cfg, T0 + S(61), T0, 0, &out), CIRCUIT_COUNTED);
	assert_int_equal(circuit_failure(c, &cfg, T0 + S(61), T0, 0, &out), CIRCUIT_COUNTED);
	assert_int_equal(circuit_failure(c, &cfg, T0 + S(61), T0, 0, &out), CIRCUIT_COUNTED);
	assert_int_equal(out.n, 2); /* the trip at T0, then the recovery timeout due by now */
	expect_rec(0, CIRCUIT_ALERT_FIRE, CIRCUIT_CLOSED, CIRCUIT_OPEN, T0, "failures 3 >= 3 in 60s");
	expect_rec(1, CIRCUIT_ALERT_NONE, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, T0 + S(60), NULL);
	circuit_free(c);
	/* but once the circuit's time is past its window, it is out */
	c = circuit_new(&cfg, T0);
	circuit_tick(c, &cfg, T0 + S(60), &out);
	assert_int_equal(circuit_failure(c, &cfg, T0 + S(61), T0, 0, &out), CIRCUIT_EXPIRED);
	assert_int_equal(circuit_window_failures(c, T0 + S(61)), 0);
	/* one received a nanosecond later is still in */
	assert_int_equal(circuit_failure(c, &cfg, T0 + S(61), T0 + S(1), 0, &out), CIRCUIT_COUNTED);
	circuit_free(c);
}

static void test_reminders(void **state)
{
	struct circuit_config cfg = base();
	cfg.recovery_timeout_ns = S(86400);
	cfg.backoff_max_ns = S(86400);
	cfg.repeat_interval_ns = S(3600);
	struct circuit *c = tripped(&cfg, T0);
	assert_int_equal(circuit_next_deadline(c), T0 + S(3600));
	assert_int_equal(circuit_next_transition(c), T0 + S(86400));
	circuit_tick(c, &cfg, T0 + S(3600) - 1, &out);
	assert_int_equal(out.n, 0);
	circuit_tick(c, &cfg, T0 + S(3600), &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_REMIND, CIRCUIT_OPEN, CIRCUIT_OPEN, T0 + S(3600),
		   "still open: repeat_interval 3600s");
	assert_int_equal(out.rec[0].failures_in_window, 0); /* the window is 60 s */
	assert_int_equal(circuit_next_deadline(c), T0 + S(7200));
	/* a stall over several periods sends one reminder and skips to the next period */
	circuit_tick(c, &cfg, T0 + S(5 * 3600 + 1800), &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_REMIND, CIRCUIT_OPEN, CIRCUIT_OPEN, T0 + S(7200), NULL);
	assert_int_equal(c->remind_at, T0 + S(6 * 3600));
	/* reminders go on through HALF_OPEN and re-opens, on the schedule of the first firing */
	circuit_tick(c, &cfg, T0 + S(86400), &out);
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN);
	fail_at(c, &cfg, T0 + S(86401));
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_int_equal(c->remind_at, T0 + S(25 * 3600));
	circuit_free(c);

	/* repeat_interval 0: none */
	cfg.repeat_interval_ns = 0;
	c = tripped(&cfg, T0);
	assert_int_equal(c->remind_at, 0);
	assert_int_equal(circuit_next_deadline(c), T0 + S(86400));
	circuit_free(c);
}

static struct circuit *save_load(struct circuit *c, const struct circuit_config *cfg)
{
	uint8_t buf[CIRCUIT_SAVE_MAX];
	size_t n = circuit_save(c, buf, sizeof(buf));
	assert_true(n > 0 && n <= sizeof(buf));
	assert_int_equal(circuit_save(c, NULL, 0), n);
	struct circuit *d;
	assert_int_equal(circuit_load(&d, cfg, buf, n), 0);
	uint8_t buf2[CIRCUIT_SAVE_MAX];
	assert_int_equal(circuit_save(d, buf2, sizeof(buf2)), n);
	assert_memory_equal(buf, buf2, n);
	circuit_free(c);
	return d;
}

static void test_save_load(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = circuit_new(&cfg, T0);
	fail_at(c, &cfg, T0 + S(10));
	fail_at(c, &cfg, T0 + S(20));
	c = save_load(c, &cfg);
	assert_int_equal(circuit_window_failures(c, T0 + S(20)), 2);
	/* the window counts survive: the third failure trips */
	fail_at(c, &cfg, T0 + S(30));
	assert_int_equal(c->state, CIRCUIT_OPEN);
	c = save_load(c, &cfg);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_int_equal(c->deadline, T0 + S(90));
	assert_int_equal(c->opened_at, T0 + S(30));
	circuit_free(c);

	/* a rate circuit keeps its ok/failed columns */
	cfg.failure_rate_ppm = 500000;
	c = circuit_new(&cfg, T0);
	circuit_outcome(c, &cfg, T0 + S(1), T0 + S(1), 7, 2, 0, &out);
	c = save_load(c, &cfg);
	uint64_t ok, failed;
	circuit_window_calls(c, T0 + S(2), &ok, &failed);
	assert_int_equal(ok, 7);
	assert_int_equal(failed, 2);
	circuit_outcome(c, &cfg, T0 + S(2), T0 + S(2), 0, 4, 0, &out);
	assert_int_equal(c->state, CIRCUIT_CLOSED); /* 6 of 13 */
	circuit_outcome(c, &cfg, T0 + S(2), T0 + S(2), 0, 1, 0, &out);
	assert_int_equal(c->state, CIRCUIT_OPEN); /* 7 of 14 */
	circuit_free(c);
}

static void test_load_refuses(void **state)
{
	struct circuit_config cfg = base(), other = base();
	other.window_ns = S(120);
	uint8_t buf[CIRCUIT_SAVE_MAX];
	struct circuit *c = circuit_new(&cfg, T0), *d = (struct circuit *)1;
	fail_at(c, &cfg, T0 + S(1));
	size_t n = circuit_save(c, buf, sizeof(buf));
	/* another window geometry: the caller treats the circuit as new */
	assert_int_equal(circuit_load(&d, &other, buf, n), -1);
	assert_null(d);
	assert_int_equal(circuit_load(&d, &cfg, buf, n - 1), -1);
	buf[n] = 0;
	assert_int_equal(circuit_load(&d, &cfg, buf, n + 1), -1);
	buf[0] = 'X';
	assert_int_equal(circuit_load(&d, &cfg, buf, n), -1);
	assert_int_equal(circuit_load(&d, &cfg, NULL, 0), -1);
	/* too small a buffer: the length needed, nothing usable written */
	uint8_t small[16];
	assert_int_equal(circuit_save(c, small, sizeof(small)), n);
	assert_int_equal(circuit_load(&d, &cfg, small, sizeof(small)), -1);
	circuit_free(c);
}

/* After a restart: a recovery timeout that passed while down fires at once, at the restart
 * (the probe starts then); one that has not passed resumes. */
static void test_restore_open(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = save_load(tripped(&cfg, T0), &cfg);
	circuit_restore(c, &cfg, T0 + S(300), &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_NONE, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, T0 + S(300), "recovery_timeout elapsed");
	assert_int_equal(c->deadline, T0 + S(330));
	circuit_tick(c, &cfg, T0 + S(330) - 1, &out);
	assert_int_equal(out.n, 0);
	circuit_tick(c, &cfg, T0 + S(330), &out);
	expect_rec(0, CIRCUIT_ALERT_RESOLVE, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED, T0 + S(330), "probe quiet for 30s");
	circuit_free(c);

	c = save_load(tripped(&cfg, T0), &cfg);
	circuit_restore(c, &cfg, T0 + S(10), &out);
	assert_int_equal(out.n, 0);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_int_equal(circuit_next_deadline(c), T0 + S(60));
	circuit_tick(c, &cfg, T0 + S(60), &out);
	expect_rec(0, CIRCUIT_ALERT_NONE, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, T0 + S(60), NULL);
	circuit_free(c);
}

/* A HALF_OPEN probe restarts from the restart: time not seen is not quiet time. */
static void test_restore_half_open(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = tripped(&cfg, T0);
	half_open_at(c, &cfg, T0 + S(60));
	circuit_tick(c, &cfg, T0 + S(80), &out); /* saved 20 s into the probe */
	c = save_load(c, &cfg);
	circuit_restore(c, &cfg, T0 + S(85), &out); /* down 5 s */
	assert_int_equal(out.n, 0);
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN);
	assert_int_equal(c->probe_start, T0 + S(85));
	assert_int_equal(circuit_next_deadline(c), T0 + S(115));
	circuit_tick(c, &cfg, T0 + S(90), &out); /* the old probe end: nothing */
	assert_int_equal(out.n, 0);
	circuit_tick(c, &cfg, T0 + S(115), &out);
	expect_rec(0, CIRCUIT_ALERT_RESOLVE, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED, T0 + S(115), "probe quiet for 30s");
	circuit_free(c);

	/* down past the end of the probe: it does not close, it starts over */
	c = tripped(&cfg, T0);
	half_open_at(c, &cfg, T0 + S(60));
	c = save_load(c, &cfg);
	circuit_restore(c, &cfg, T0 + S(1000), &out);
	assert_int_equal(out.n, 0);
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN);
	assert_int_equal(c->deadline, T0 + S(1030));
	fail_at(c, &cfg, T0 + S(1001));
	expect_rec(0, CIRCUIT_ALERT_NONE, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, T0 + S(1001), "1 failure in probe");
	circuit_free(c);
}

static void test_restore_reminder(void **state)
{
	struct circuit_config cfg = base();
	cfg.recovery_timeout_ns = S(86400);
	cfg.backoff_max_ns = S(86400);
	cfg.repeat_interval_ns = S(3600);
	struct circuit *c = save_load(tripped(&cfg, T0), &cfg);
	circuit_restore(c, &cfg, T0 + S(3 * 3600), &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_REMIND, CIRCUIT_OPEN, CIRCUIT_OPEN, T0 + S(3 * 3600), NULL);
	assert_int_equal(c->remind_at, T0 + S(4 * 3600));
	circuit_free(c);
}

static void test_retire(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = tripped(&cfg, T0);
	circuit_retire(c, &cfg, T0 + S(5), CIRCUIT_RETIRE_CHANGED, &out);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_RESOLVE, CIRCUIT_OPEN, CIRCUIT_CLOSED, T0 + S(5), "rule_changed");
	assert_int_equal(out.rec[0].failures_in_window, 3);
	circuit_free(c);

	c = tripped(&cfg, T0);
	half_open_at(c, &cfg, T0 + S(60));
	circuit_retire(c, &cfg, T0 + S(70), CIRCUIT_RETIRE_REMOVED, &out);
	expect_rec(0, CIRCUIT_ALERT_RESOLVE, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED, T0 + S(70), "rule_removed");
	circuit_free(c);

	/* a CLOSED circuit has no alert to resolve */
	c = circuit_new(&cfg, T0);
	fail_at(c, &cfg, T0);
	circuit_retire(c, &cfg, T0 + S(1), CIRCUIT_RETIRE_CHANGED, &out);
	assert_int_equal(out.n, 0);
	circuit_free(c);
}

/* Long windows use coarser buckets so a circuit never holds more than 300. */
static void test_long_window_geometry(void **state)
{
	struct circuit_config cfg = base();
	struct {
		uint64_t window_s;
		uint32_t bucket_s, n;
	} cases[] = {{1, 1, 1}, {60, 1, 60}, {300, 1, 300}, {301, 2, 151}, {3600, 12, 300}, {86400, 288, 300}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg.window_ns = S(cases[i].window_s);
		struct circuit *c = circuit_new(&cfg, T0);
		assert_int_equal(c->bucket_s, cases[i].bucket_s);
		assert_int_equal(c->n_buckets, cases[i].n);
		assert_true(circuit_size(&cfg) <= sizeof(struct circuit) + CIRCUIT_MAX_BUCKETS * sizeof(uint32_t));
		circuit_free(c);
	}
	cfg.failure_rate_ppm = 1;
	assert_true(circuit_size(&cfg) <= sizeof(struct circuit) + 3 * CIRCUIT_MAX_BUCKETS * sizeof(uint32_t));

	/* 24 h window, 288 s buckets: an event at a bucket start counts for exactly 24 h */
	cfg = base();
	cfg.window_ns = S(86400);
	cfg.failures = 1000;
	uint64_t b0 = T0 / S(288) * S(288);
	struct circuit *c = circuit_new(&cfg, b0);
	fail_at(c, &cfg, b0);
	fail_at(c, &cfg, b0 + S(100)); /* same bucket: taken as received at b0 */
	assert_int_equal(circuit_window_failures(c, b0 + S(86400) - 1), 2);
	assert_int_equal(circuit_window_failures(c, b0 + S(86400)), 0);
	/* counted over a day of events, one per minute: the window holds the last 24 h */
	for (uint64_t m = 1; m <= 2 * 24 * 60; m++)
		fail_at(c, &cfg, b0 + S(60 * m));
	uint64_t now = b0 + S(2 * 86400);
	uint64_t got = circuit_window_failures(c, now);
	/* the exact count is 1440; bucketing drops at most one bucket's worth (288 s = 4.8) */
	assert_true(got <= 1440 && got >= 1440 - 5);
	circuit_free(c);

	/* a window that is not a multiple of its bucket: 301 s, 2 s buckets */
	cfg = base();
	cfg.window_ns = S(301);
	cfg.failures = 1000;
	uint64_t a0 = T0 / S(2) * S(2);
	c = circuit_new(&cfg, a0);
	fail_at(c, &cfg, a0);
	assert_int_equal(circuit_window_failures(c, a0 + S(301) - 1), 1);
	assert_int_equal(circuit_window_failures(c, a0 + S(301)), 0);
	fail_at(c, &cfg, a0 + S(301)); /* the ring moves on: the old bucket is not counted */
	assert_int_equal(circuit_window_failures(c, a0 + S(301)), 1);
	circuit_free(c);
}

static void test_time_jumps(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = circuit_new(&cfg, T0);
	fail_at(c, &cfg, T0);
	fail_at(c, &cfg, T0);
	/* ten days later the ring is empty: the next failure alone */
	fail_at(c, &cfg, T0 + S(10 * 86400));
	assert_int_equal(circuit_window_failures(c, T0 + S(10 * 86400)), 1);
	/* a clock set back: its inputs count at the latest time seen, not as long expired */
	assert_int_equal(circuit_failure(c, &cfg, T0 + S(5), T0 + S(5), 0, &out), CIRCUIT_COUNTED);
	assert_int_equal(circuit_window_failures(c, T0 + S(10 * 86400)), 2);
	assert_int_equal(c->clock, T0 + S(10 * 86400));
	circuit_tick(c, &cfg, T0, &out);
	assert_int_equal(c->clock, T0 + S(10 * 86400));
	circuit_free(c);
}

/* After any call, the next deadline is later than now. */
static void test_deadline_invariant(void **state)
{
	struct circuit_config cfg = base();
	cfg.repeat_interval_ns = S(45);
	struct circuit *c = circuit_new(&cfg, T0);
	uint64_t seed = 12345;
	for (uint64_t t = T0; t < T0 + S(3600); t += NS / 3) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		if ((seed >> 33) % 7 == 0)
			fail_at(c, &cfg, t);
		else if ((seed >> 33) % 11 == 0)
			circuit_tick(c, &cfg, t, &out);
		else
			continue;
		uint64_t d = circuit_next_deadline(c);
		assert_true(d == 0 || d > t);
		assert_true(out.n <= CIRCUIT_MAX_OUT);
	}
	circuit_free(c);
}

/* The acceptance lifecycle: failures -> firing -> half_open -> re-open -> quiet ->
 * resolved, with exactly one firing and one resolved. */
static void test_lifecycle(void **state)
{
	struct circuit_config cfg = base();
	struct circuit *c = circuit_new(&cfg, T0);
	struct circuit_record log[32];
	size_t n = 0;
	uint64_t t = T0;
#define STEP(call)                                                                                 \
	do {                                                                                       \
		call;                                                                              \
		for (size_t i_ = 0; i_ < out.n; i_++)                                              \
			log[n++] = out.rec[i_];                                                    \
	} while (0)
	for (int i = 0; i < 3; i++)
		STEP(fail_at(c, &cfg, t += S(1)));                /* T0+3: OPEN */
	STEP(fail_at(c, &cfg, t += S(10)));                       /* ignored while OPEN */
	STEP(circuit_tick(c, &cfg, c->deadline, &out));           /* T0+63: HALF_OPEN */
	STEP(fail_at(c, &cfg, c->probe_start + S(2)));            /* T0+65: OPEN again (120 s) */
	STEP(circuit_tick(c, &cfg, c->deadline, &out));           /* T0+185: HALF_OPEN */
	STEP(circuit_tick(c, &cfg, c->deadline, &out));           /* T0+215: quiet: CLOSED */
	STEP(circuit_tick(c, &cfg, T0 + S(100000), &out));        /* nothing more */
#undef STEP
	assert_int_equal(n, 5);
	size_t fire = 0, resolve = 0;
	for (size_t i = 0; i < n; i++) {
		fire += log[i].alert == CIRCUIT_ALERT_FIRE;
		resolve += log[i].alert == CIRCUIT_ALERT_RESOLVE;
	}
	assert_int_equal(fire, 1);
	assert_int_equal(resolve, 1);
	const enum circuit_state to[] = {CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN,
					 CIRCUIT_CLOSED};
	const uint64_t at[] = {T0 + S(3), T0 + S(63), T0 + S(65), T0 + S(185), T0 + S(215)};
	const char *why[] = {"failures 3 >= 3 in 60s", "recovery_timeout elapsed", "1 failure in probe",
			     "recovery_timeout elapsed", "probe quiet for 30s"};
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(log[i].to, to[i]);
		assert_int_equal(log[i].at, at[i]);
		assert_string_equal(log[i].reason, why[i]);
		if (i)
			assert_int_equal(log[i].from, log[i - 1].to);
	}
	assert_int_equal(log[0].next_transition_at, T0 + S(63));
	assert_int_equal(log[2].next_transition_at, T0 + S(185));
	assert_int_equal(log[4].next_transition_at, 0);
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	circuit_free(c);
}

/* circuit_failures (the fleet's increments): n failures at once are what n single failures
 * received at that time are: the window counts them all, the trip comes when the sum reaches
 * the threshold (once, at their receive time), the probe counts them as probe failures, and
 * a count of an expired second is dropped whole. */
static void test_failures_at_once(void **state)
{
	(void)state;
	struct circuit_config cfg = base();
	cfg.failures = 10;
	struct circuit *c = circuit_new(&cfg, T0);
	assert_non_null(c);
	assert_int_equal(circuit_failures(c, &cfg, T0 + S(1), T0 + S(1), 6, &out), CIRCUIT_COUNTED);
	assert_int_equal(c->state, CIRCUIT_CLOSED);
	assert_int_equal(out.n, 0);
	assert_int_equal(circuit_window_failures(c, T0 + S(1)), 6);
	/* a second's count evaluated later (the leader's lag): counted at its receive time */
	assert_int_equal(circuit_failures(c, &cfg, T0 + S(3), T0 + S(2), 4, &out), CIRCUIT_COUNTED);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	assert_int_equal(out.n, 1);
	expect_rec(0, CIRCUIT_ALERT_FIRE, CIRCUIT_CLOSED, CIRCUIT_OPEN, T0 + S(2), "failures 10 >= 10 in 60s");
	/* open: counted, nothing changes */
	assert_int_equal(circuit_failures(c, &cfg, T0 + S(4), T0 + S(4), 50, &out), CIRCUIT_COUNTED);
	assert_int_equal(out.n, 0);
	/* half open: a count of 2 is 2 probe failures (probe_failures 3 reopens) */
	cfg.probe_failures = 3;
	circuit_tick(c, &cfg, T0 + S(62), &out);
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN);
	assert_int_equal(circuit_failures(c, &cfg, T0 + S(63), T0 + S(63), 2, &out), CIRCUIT_COUNTED);
	assert_int_equal(c->state, CIRCUIT_HALF_OPEN);
	assert_int_equal(circuit_failures(c, &cfg, T0 + S(64), T0 + S(64), 1, &out), CIRCUIT_COUNTED);
	assert_int_equal(c->state, CIRCUIT_OPEN);
	/* a second older than the window of a circuit whose clock is past it (the leader fed a
	 * newer one first): expired, whatever its count */
	struct circuit *d = circuit_new(&cfg, T0);
	fail_at(d, &cfg, T0 + S(200));
	assert_int_equal(circuit_failures(d, &cfg, T0 + S(200), T0 + S(100), 100, &out), CIRCUIT_EXPIRED);
	assert_int_equal(circuit_window_failures(d, T0 + S(200)), 1);
	assert_int_equal(d->state, CIRCUIT_CLOSED);
	circuit_free(d);
	circuit_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_and_config_check),
	    cmocka_unit_test(test_trip_on_nth_failure),
	    cmocka_unit_test(test_window_boundary),
	    cmocka_unit_test(test_window_bucket_resolution),
	    cmocka_unit_test(test_threshold_is_ge_and_counts_expire),
	    cmocka_unit_test(test_failure_rate),
	    cmocka_unit_test(test_count_or_rate),
	    cmocka_unit_test(test_open_ignores_failures),
	    cmocka_unit_test(test_open_to_half_open),
	    cmocka_unit_test(test_half_open_reopen_backoff),
	    cmocka_unit_test(test_quiet_probe_closes_and_resets),
	    cmocka_unit_test(test_probe_failure_threshold),
	    cmocka_unit_test(test_probe_takes_received_at),
	    cmocka_unit_test(test_late_event_in_time_order),
	    cmocka_unit_test(test_probe_successes),
	    cmocka_unit_test(test_probe_failed_calls),
	    cmocka_unit_test(test_max_event_age),
	    cmocka_unit_test(test_expired_input),
	    cmocka_unit_test(test_reminders),
	    cmocka_unit_test(test_save_load),
	    cmocka_unit_test(test_load_refuses),
	    cmocka_unit_test(test_restore_open),
	    cmocka_unit_test(test_restore_half_open),
	    cmocka_unit_test(test_restore_reminder),
	    cmocka_unit_test(test_retire),
	    cmocka_unit_test(test_long_window_geometry),
	    cmocka_unit_test(test_time_jumps),
	    cmocka_unit_test(test_deadline_invariant),
	    cmocka_unit_test(test_lifecycle),
	    cmocka_unit_test(test_failures_at_once),
	};
	return cmocka_run_group_tests_name("unit_circuit", tests, NULL, NULL);
}
