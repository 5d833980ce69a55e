/* circuit.c: the alerting circuit state machine (the model is described in circuit.h).
 *
 * The clock is the latest time the circuit has applied: an input's time, a deadline it
 * fired, a tick's now.  It is not simply the last `now`: a batch of inputs received at R
 * and handed over at R + lag are all applied at R, so processing lag does not change what
 * counts (and a replay gives the history the live run gave).
 *
 * Invariants between calls:
 *   - head <= clock / bucket: the ring never holds a bucket newer than the clock;
 *   - every pending deadline (deadline, remind_at) is later than clock, and later than the
 *     `now` of the last call: each call ends by firing what is due by its now;
 *   - sum_* is the sum of its ring column.
 * Inside a call, time moves forward through: the deadlines due by the input's time, the
 * input, the deadlines due by now. */
#include "circuit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errq_assert.h"
#include "errq_pb.h"
#include "errq_str.h"
#include "errq_banned.h"

enum { COL_FAILURES = 0, COL_OK = 1, COL_FAILED = 2 };

const char *circuit_state_name(enum circuit_state s)
{
	switch (s) {
	case CIRCUIT_CLOSED:
		return "closed";
	case CIRCUIT_OPEN:
		return "open";
	case CIRCUIT_HALF_OPEN:
		return "half_open";
	}
	return "unknown";
}

/* ---- geometry and the ring ---- */

struct geometry {
	uint32_t window_s, bucket_s, n, cols;
};

static struct geometry geometry_of(const struct circuit_config *cfg)
{
	struct geometry g;
	uint64_t w = cfg->window_ns / CIRCUIT_NS_PER_SEC;
	ERRQ_ASSERT(w >= CIRCUIT_MIN_WINDOW_S && w <= CIRCUIT_MAX_WINDOW_S);
	g.window_s = (uint32_t)w;
	g.bucket_s = (uint32_t)((w + CIRCUIT_MAX_BUCKETS - 1) / CIRCUIT_MAX_BUCKETS);
	g.n = (g.window_s + g.bucket_s - 1) / g.bucket_s;
	g.cols = cfg->failure_rate_ppm ? 3 : 1;
	return g;
}

static void assert_geometry(const struct circuit *c, const struct circuit_config *cfg)
{
	struct geometry g = geometry_of(cfg);
	(void)g;
	ERRQ_ASSERT(c->window_s == g.window_s && c->n_buckets == g.n && (c->has_calls ? 3u : 1u) == g.cols);
}

static uint64_t bucket_of(const struct circuit *c, uint64_t t)
{
	return t / ((uint64_t)c->bucket_s * CIRCUIT_NS_PER_SEC);
}

/* The oldest bucket that counts at t: the first whose start is within the window. */
static uint64_t window_lo(const struct circuit *c, uint64_t t)
{
	uint64_t w = (uint64_t)c->window_s * CIRCUIT_NS_PER_SEC;
	if (t < w)
		return 0;
	return (t - w) / ((uint64_t)c->bucket_s * CIRCUIT_NS_PER_SEC) + 1;
}

/* The oldest bucket the ring holds. */
static uint64_t ring_first(const struct circuit *c)
{
	return c->head + 1 >= c->n_buckets ? c->head + 1 - c->n_buckets : 0;
}

static uint32_t *slot(struct circuit *c, int col, uint64_t k)
{
	return &c->ring[(size_t)col * c->n_buckets + (size_t)(k % c->n_buckets)];
}

static uint32_t slot_get(const struct circuit *c, int col, uint64_t k)
{
	return c->ring[(size_t)col * c->n_buckets + (size_t)(k % c->n_buckets)];
}

static uint64_t *sum_of(struct circuit *c, int col)
{
	return col == COL_FAILURES ? &c->sum_failures : col == COL_OK ? &c->sum_ok : &c->sum_failed;
}

static uint64_t sum_get(const struct circuit *c, int col)
{
	return col == COL_FAILURES ? c->sum_failures : col == COL_OK ? c->sum_ok : c->sum_failed;
}

static int n_cols(const struct circuit *c)
{
	return c->has_calls ? 3 : 1;
}

static void ring_clear(struct circuit *c)
{
	memset(c->ring, 0, (size_t)n_cols(c) * c->n_buckets * sizeof(uint32_t));
	c->sum_failures = c->sum_ok = c->sum_failed = 0;
}

/* Moves the newest slot to t's bucket, emptying the slots that fall out of the ring: at
 * most n_buckets slot clears, however far time jumped. */
static void advance(struct circuit *c, uint64_t t)
{
	uint64_t k = bucket_of(c, t);
	if (k <= c->head)
		return;
	if (k - c->head >= c->n_buckets) {
		ring_clear(c);
	} else {
		for (uint64_t i = c->head + 1; i <= k; i++)
			for (int col = 0; col < n_cols(c); col++) {
				uint32_t *s = slot(c, col, i);
				*sum_of(c, col) -= *s;
				*s = 0;
			}
	}
	c->head = k;
}

/* The column's count in the window at t (t >= clock).  Right after advance(t) the ring
 * ends at t's bucket and at most one slot (the oldest) lies before the window, so this is
 * O(1) on the event path; for a later t (listings) it walks at most n_buckets slots. */
static uint64_t window_sum(const struct circuit *c, int col, uint64_t t)
{
	uint64_t s = sum_get(c, col), lo = window_lo(c, t);
	for (uint64_t k = ring_first(c); k < lo && k <= c->head; k++)
		s -= slot_get(c, col, k);
	return s;
}

static void ring_add(struct circuit *c, int col, uint64_t k, uint64_t v)
{
	uint32_t *s = slot(c, col, k);
	uint64_t room = UINT32_MAX - *s;
	if (v > room)
		v = room; /* saturate: a bucket past 4 billion is past every threshold */
	*s += (uint32_t)v;
	*sum_of(c, col) += v;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- formatting of reasons ---- */

/* "60s", or "1.500s" when not whole seconds. */
static const char *fmt_secs(char buf[32], uint64_t ns)
{
	if (ns % CIRCUIT_NS_PER_SEC == 0)
		errq_snprintf(buf, 32, "%" PRIu64 "s", ns / CIRCUIT_NS_PER_SEC);
	else
		errq_snprintf(buf, 32, "%" PRIu64 ".%03" PRIu64 "s", ns / CIRCUIT_NS_PER_SEC,
			      ns % CIRCUIT_NS_PER_SEC / 1000000);
	return buf;
}

/* parts per million as a decimal without trailing zeros: 500000 -> "0.5". */
static const char *fmt_ppm(char buf[32], uint64_t ppm)
{
	char frac[8];
	errq_snprintf(frac, sizeof(frac), "%06" PRIu64, ppm % CIRCUIT_RATE_ONE);
	int n = 6;
	while (n > 0 && frac[n - 1] == '0')
		frac[--n] = '\0';
	errq_snprintf(buf, 32, "%" PRIu64 "%s%s", ppm / CIRCUIT_RATE_ONE, n ? "." : "", frac);
	return buf;
}

/* ---- transitions ---- */

static void emit(struct circuit_out *out, const struct circuit *c, enum circuit_alert alert,
		 enum circuit_state from, uint64_t at, uint64_t failures, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

static void emit(struct circuit_out *out, const struct circuit *c, enum circuit_alert alert,
		 enum circuit_state from, uint64_t at, uint64_t failures, const char *fmt, ...)
{
	ERRQ_ASSERT(out->n < CIRCUIT_MAX_OUT); /* at most 7 records per call */
	struct circuit_record *r = &out->rec[out->n++];
	va_list ap;
	r->alert = alert;
	r->from = from;
	r->to = c->state;
	r->at = at;
	r->failures_in_window = failures;
	r->window_seconds = c->window_s;
	r->next_transition_at = circuit_next_transition(c);
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

static uint64_t failures_at(struct circuit *c, uint64_t at)
{
	advance(c, at);
	return window_sum(c, COL_FAILURES, at);
}

static void trip(struct circuit *c, const struct circuit_config *cfg, uint64_t at, uint64_t failures,
		 const char *reason, struct circuit_out *out)
{
	ERRQ_ASSERT(c->state == CIRCUIT_CLOSED); /* the edges: CLOSED -> OPEN */
	c->state = CIRCUIT_OPEN;
	c->since = at;
	c->opened_at = at;
	c->recovery_ns = cfg->recovery_timeout_ns;
	c->deadline = at + c->recovery_ns;
	c->remind_at = cfg->repeat_interval_ns ? at + cfg->repeat_interval_ns : 0;
	c->reopens = 0;
	emit(out, c, CIRCUIT_ALERT_FIRE, CIRCUIT_CLOSED, at, failures, "%s", reason);
}

static void to_half_open(struct circuit *c, const struct circuit_config *cfg, uint64_t at, struct circuit_out *out)
{
	ERRQ_ASSERT(c->state == CIRCUIT_OPEN); /* OPEN -> HALF_OPEN */
	uint64_t failures = failures_at(c, at);
	c->state = CIRCUIT_HALF_OPEN;
	c->since = at;
	c->probe_start = at;
	c->deadline = at + cfg->probe_ns;
	c->probe_failures = c->probe_failed = c->probe_ok = 0;
	emit(out, c, CIRCUIT_ALERT_NONE, CIRCUIT_OPEN, at, failures, "recovery_timeout elapsed");
}

/* The next recovery timeout after a re-open: times the factor, capped at backoff.max (or
 * at recovery_timeout when that is larger: the cap never shortens the first timeout). */
static uint64_t backoff(const struct circuit_config *cfg, uint64_t cur)
{
	uint64_t cap = cfg->backoff_max_ns > cfg->recovery_timeout_ns ? cfg->backoff_max_ns : cfg->recovery_timeout_ns;
	unsigned __int128 next = (unsigned __int128)cur * cfg->backoff_factor / CIRCUIT_FACTOR_ONE;
	if (next > cap)
		return cap;
	return next < cur ? cur : (uint64_t)next;
}

static void reopen(struct circuit *c, const struct circuit_config *cfg, uint64_t at, uint64_t probe_failures,
		   struct circuit_out *out)
{
	ERRQ_ASSERT(c->state == CIRCUIT_HALF_OPEN); /* HALF_OPEN -> OPEN */
	uint64_t failures = failures_at(c, at);
	c->state = CIRCUIT_OPEN;
	c->since = at;
	c->recovery_ns = backoff(cfg, c->recovery_ns);
	c->deadline = at + c->recovery_ns;
	c->reopens++;
	emit(out, c, CIRCUIT_ALERT_NONE, CIRCUIT_HALF_OPEN, at, failures, "%" PRIu64 " failure%s in probe",
	     probe_failures, probe_failures == 1 ? "" : "s");
}

/* -> CLOSED: the alert resolves; the window and the backoff start afresh. */
static void to_closed(struct circuit *c, const struct circuit_config *cfg, uint64_t at, struct circuit_out *out,
		      const char *reason)
{
	ERRQ_ASSERT(c->state != CIRCUIT_CLOSED); /* OPEN or HALF_OPEN -> CLOSED */
	uint64_t failures = failures_at(c, at);
	enum circuit_state from = c->state;
	c->state = CIRCUIT_CLOSED;
	c->since = at;
	c->opened_at = 0;
	c->deadline = 0;
	c->remind_at = 0;
	c->recovery_ns = cfg->recovery_timeout_ns;
	c->reopens = 0;
	c->probe_start = 0;
	c->probe_failures = c->probe_failed = c->probe_ok = 0;
	ring_clear(c);
	emit(out, c, CIRCUIT_ALERT_RESOLVE, from, at, failures, "%s", reason);
}

static void probe_over(struct circuit *c, const struct circuit_config *cfg, uint64_t at, struct circuit_out *out)
{
	char reason[CIRCUIT_REASON_MAX], d[32];
	uint64_t pf = c->probe_failures > c->probe_failed ? c->probe_failures : c->probe_failed;
	fmt_secs(d, at - c->probe_start);
	if (pf == 0)
		errq_snprintf(reason, sizeof(reason), "probe quiet for %s", d);
	else
		errq_snprintf(reason, sizeof(reason), "probe passed: %" PRIu64 " failure%s < %" PRIu32 " in %s", pf,
			      pf == 1 ? "" : "s", cfg->probe_failures, d);
	to_closed(c, cfg, at, out, reason);
}

/* Re-opens or closes a HALF_OPEN circuit whose probe counts just changed. */
static void probe_check(struct circuit *c, const struct circuit_config *cfg, uint64_t at, struct circuit_out *out)
{
	uint64_t pf = c->probe_failures > c->probe_failed ? c->probe_failures : c->probe_failed;
	if (pf >= cfg->probe_failures) {
		reopen(c, cfg, at, pf, out);
	} else if (cfg->probe_successes && c->probe_ok >= cfg->probe_successes) {
		char reason[CIRCUIT_REASON_MAX];
		errq_snprintf(reason, sizeof(reason), "%" PRIu64 " successes in probe", c->probe_ok);
		to_closed(c, cfg, at, out, reason);
	}
}

/* A reminder sent at `at` for the period due at `due` (<= at); the next one goes to the first
 * period after upto, so a long stall (or downtime: circuit_restore) sends one reminder, not
 * one per missed period, and the periods stay those of the alert's firing. */
static void remind(struct circuit *c, const struct circuit_config *cfg, uint64_t at, uint64_t due, uint64_t upto,
		   struct circuit_out *out)
{
	uint64_t rep = cfg->repeat_interval_ns;
	if (!rep) { /* reminders were turned off by a reload */
		c->remind_at = 0;
		return;
	}
	uint64_t next = due + rep;
	if (next <= upto)
		next = due + rep * ((upto - due) / rep + 1);
	c->remind_at = next;
	char d[32];
	emit(out, c, CIRCUIT_ALERT_REMIND, c->state, at, failures_at(c, at), "still %s: repeat_interval %s",
	     circuit_state_name(c->state), fmt_secs(d, rep));
}

/* Fires, in time order and each at its own time, the deadlines due by upto.  At most an
 * OPEN -> HALF_OPEN, a HALF_OPEN -> CLOSED and one reminder. */
static void run_due(struct circuit *c, const struct circuit_config *cfg, uint64_t upto, struct circuit_out *out)
{
	for (;;) {
		uint64_t d = c->state != CIRCUIT_CLOSED ? c->deadline : 0;
		uint64_t r = c->state != CIRCUIT_CLOSED ? c->remind_at : 0;
		bool d_due = d && d <= upto, r_due = r && r <= upto;
		if (!d_due && !r_due)
			break;
		bool transition = d_due && (!r_due || d <= r); /* a transition before a reminder */
		uint64_t at = transition ? d : r;
		if (at > c->clock)
			c->clock = at;
		if (transition) {
			if (c->state == CIRCUIT_OPEN)
				to_half_open(c, cfg, d, out);
			else
				probe_over(c, cfg, d, out);
		} else {
			remind(c, cfg, r, r, upto, out);
		}
	}
}

static bool too_old(const struct circuit_config *cfg, uint64_t received_at, uint64_t t)
{
	return cfg->max_event_age_ns && t && received_at > t && received_at - t > cfg->max_event_age_ns;
}

/* The receive time an input is counted at, and *now clamped to the clock.  A receive time
 * after now counts as now.  When now is before the clock, the collector's clock was set
 * back: receive times read from it are behind the circuit's, and taken at face value they
 * would all fall out of the window until the clock caught up (the engine would be blind for
 * as long as the step); they count as received at the latest time seen instead. */
static uint64_t input_time(const struct circuit *c, uint64_t *now, uint64_t received_at)
{
	if (*now < c->clock) {
		*now = c->clock;
		return c->clock;
	}
	return received_at < *now ? received_at : *now;
}

/* ---- the calls ---- */

size_t circuit_size(const struct circuit_config *cfg)
{
	struct geometry g = geometry_of(cfg);
	return sizeof(struct circuit) + (size_t)g.cols * g.n * sizeof(uint32_t);
}

void circuit_init(struct circuit *c, const struct circuit_config *cfg, uint64_t now)
{
	struct geometry g = geometry_of(cfg);
	memset(c, 0, circuit_size(cfg));
	c->state = CIRCUIT_CLOSED;
	c->clock = now;
	c->since = now;
	c->recovery_ns = cfg->recovery_timeout_ns;
	c->window_s = g.window_s;
	c->bucket_s = g.bucket_s;
	c->n_buckets = g.n;
	c->has_calls = g.cols == 3;
	c->head = bucket_of(c, now);
}

struct circuit *circuit_new(const struct circuit_config *cfg, uint64_t now)
{
	struct circuit *c = malloc(circuit_size(cfg));
	if (c)
		circuit_init(c, cfg, now);
	return c;
}

void circuit_free(struct circuit *c)
{
	free(c);
}

/* Where an input landed: its time r, the circuit's clock t after it, and whether it counts in
 * the window, in a half-open circuit's probe, or both. */
struct placed {
	uint64_t r, t;
	bool in_window, in_probe;
};

/* What circuit_failure and circuit_outcome do first: refuse an input that is too old, move
 * the clock to the input's time (never back), run what fell due before it, and place it.
 * CIRCUIT_COUNTED when the caller goes on to count it in p; CIRCUIT_TOO_OLD or
 * CIRCUIT_EXPIRED (neither in the window nor in a probe) when it is dropped. */
static enum circuit_count place_input(struct circuit *c, const struct circuit_config *cfg, uint64_t *now,
				      uint64_t received_at, uint64_t sent_at, struct placed *p, struct circuit_out *out)
{
	out->n = 0;
	assert_geometry(c, cfg);
	if (too_old(cfg, received_at, sent_at))
		return CIRCUIT_TOO_OLD;
	p->r = input_time(c, now, received_at);
	p->t = p->r > c->clock ? p->r : c->clock;
	run_due(c, cfg, p->t, out);
	c->clock = p->t;
	advance(c, p->t);
	p->in_window = bucket_of(c, p->r) >= window_lo(c, p->t);
	p->in_probe = c->state == CIRCUIT_HALF_OPEN && p->r >= c->probe_start;
	return !p->in_window && !p->in_probe ? CIRCUIT_EXPIRED : CIRCUIT_COUNTED;
}

static enum circuit_count failures(struct circuit *c, const struct circuit_config *cfg, uint64_t now,
				   uint64_t received_at, uint64_t time_unix_nano, uint64_t count, struct circuit_out *out)
{
	struct placed p;
	enum circuit_count rc = place_input(c, cfg, &now, received_at, time_unix_nano, &p, out);
	if (rc != CIRCUIT_COUNTED)
		goto out;
	if (p.in_window)
		ring_add(c, COL_FAILURES, bucket_of(c, p.r), count);
	switch (c->state) {
	case CIRCUIT_CLOSED:
		if (p.in_window && cfg->failures) {
			uint64_t n = window_sum(c, COL_FAILURES, p.t);
			if (n >= cfg->failures) {
				char reason[CIRCUIT_REASON_MAX], d[32];
				errq_snprintf(reason, sizeof(reason), "failures %" PRIu64 " >= %" PRIu32 " in %s", n,
					      cfg->failures, fmt_secs(d, cfg->window_ns));
				trip(c, cfg, p.t, n, reason, out);
			}
		}
		break;
	case CIRCUIT_OPEN: /* recorded, changes nothing */
		break;
	case CIRCUIT_HALF_OPEN:
		if (p.in_probe) {
			c->probe_failures += count;
			probe_check(c, cfg, p.t, out);
		}
		break;
	}
out:
	run_due(c, cfg, now, out);
	return rc;
}

enum circuit_count circuit_failure(struct circuit *c, const struct circuit_config *cfg, uint64_t now,
				   uint64_t received_at, uint64_t time_unix_nano, struct circuit_out *out)
{
	return failures(c, cfg, now, received_at, time_unix_nano, 1, out);
}

enum circuit_count circuit_failures(struct circuit *c, const struct circuit_config *cfg, uint64_t now,
				    uint64_t received_at, uint64_t count, struct circuit_out *out)
{
	return failures(c, cfg, now, received_at, 0, count ? count : 1, out);
}

enum circuit_count circuit_outcome(struct circuit *c, const struct circuit_config *cfg, uint64_t now,
				   uint64_t received_at, uint64_t ok, uint64_t failed, uint64_t end_unix_nano,
				   struct circuit_out *out)
{
	struct placed p;
	enum circuit_count rc = place_input(c, cfg, &now, received_at, end_unix_nano, &p, out);
	if (rc != CIRCUIT_COUNTED)
		goto out;
	if (p.in_window && c->has_calls) {
		ring_add(c, COL_OK, bucket_of(c, p.r), ok);
		ring_add(c, COL_FAILED, bucket_of(c, p.r), failed);
	}
	switch (c->state) {
	case CIRCUIT_CLOSED:
		if (p.in_window && c->has_calls && cfg->failure_rate_ppm) {
			uint64_t nok = window_sum(c, COL_OK, p.t), nfailed = window_sum(c, COL_FAILED, p.t);
			uint64_t calls = sat_add(nok, nfailed);
			if (calls && calls >= cfg->min_calls &&
			    (unsigned __int128)nfailed * CIRCUIT_RATE_ONE >=
				(unsigned __int128)cfg->failure_rate_ppm * calls) {
				char reason[CIRCUIT_REASON_MAX], a[32], b[32], d[32];
				uint64_t rate = (uint64_t)((unsigned __int128)nfailed * CIRCUIT_RATE_ONE / calls);
				errq_snprintf(reason, sizeof(reason), "failure rate %s >= %s over %" PRIu64 " calls in %s",
					      fmt_ppm(a, rate), fmt_ppm(b, cfg->failure_rate_ppm), calls,
					      fmt_secs(d, cfg->window_ns));
				trip(c, cfg, p.t, window_sum(c, COL_FAILURES, p.t), reason, out);
			}
		}
		break;
	case CIRCUIT_OPEN:
		break;
	case CIRCUIT_HALF_OPEN:
		if (p.in_probe) {
			c->probe_ok = sat_add(c->probe_ok, ok);
			if (c->has_calls) /* else the failed calls may be other errors than the rule's */
				c->probe_failed = sat_add(c->probe_failed, failed);
			probe_check(c, cfg, p.t, out);
		}
		break;
	}
out:
	run_due(c, cfg, now, out);
	return rc;
}

void circuit_tick(struct circuit *c, const struct circuit_config *cfg, uint64_t now, struct circuit_out *out)
{
	out->n = 0;
	assert_geometry(c, cfg);
	if (now < c->clock)
		now = c->clock;
	run_due(c, cfg, now, out);
	c->clock = now;
}

void circuit_restore(struct circuit *c, const struct circuit_config *cfg, uint64_t now, struct circuit_out *out)
{
	out->n = 0;
	assert_geometry(c, cfg);
	if (now < c->clock)
		now = c->clock;
	if (c->state == CIRCUIT_OPEN && c->deadline <= now) {
		to_half_open(c, cfg, now, out); /* at the restart: the probe starts now */
	} else if (c->state == CIRCUIT_HALF_OPEN) {
		c->probe_start = now;
		c->deadline = now + cfg->probe_ns;
		c->probe_failures = c->probe_failed = c->probe_ok = 0;
	}
	if (c->state != CIRCUIT_CLOSED && c->remind_at && c->remind_at <= now)
		remind(c, cfg, now, c->remind_at, now, out); /* sent at the restart, on the firing's periods */
	c->clock = now;
}

void circuit_retire(struct circuit *c, const struct circuit_config *cfg, uint64_t now,
		    enum circuit_retire why, struct circuit_out *out)
{
	out->n = 0;
	assert_geometry(c, cfg);
	if (now < c->clock)
		now = c->clock;
	run_due(c, cfg, now, out);
	if (why != CIRCUIT_RETIRE_NONE && c->state != CIRCUIT_CLOSED)
		to_closed(c, cfg, now, out, why == CIRCUIT_RETIRE_CHANGED ? "rule_changed" : "rule_removed");
	c->clock = now;
}

uint64_t circuit_next_deadline(const struct circuit *c)
{
	if (c->state == CIRCUIT_CLOSED)
		return 0;
	if (c->remind_at && c->remind_at < c->deadline)
		return c->remind_at;
	return c->deadline;
}

uint64_t circuit_next_transition(const struct circuit *c)
{
	return c->state == CIRCUIT_CLOSED ? 0 : c->deadline;
}

uint64_t circuit_window_failures(const struct circuit *c, uint64_t now)
{
	return window_sum(c, COL_FAILURES, now > c->clock ? now : c->clock);
}

void circuit_window_calls(const struct circuit *c, uint64_t now, uint64_t *ok, uint64_t *failed)
{
	if (now < c->clock)
		now = c->clock;
	*ok = c->has_calls ? window_sum(c, COL_OK, now) : 0;
	*failed = c->has_calls ? window_sum(c, COL_FAILED, now) : 0;
}

/* ---- persistence ----
 * v1: "EQC" 1, u8 state, u8 has_calls, u16 0, u32 window_s, bucket_s, n_buckets, reopens,
 * u64 clock, since, opened_at, deadline, remind_at, recovery_ns, probe_start,
 * probe_failures, probe_failed, probe_ok, head, u32 count of non-empty buckets, then per
 * bucket varints: age (head - bucket), failures[, ok, failed].  Integers little-endian. */

#define SAVE_MAGIC "EQC\x01"
#define SAVE_HEADER (4 + 4 + 4 * 4 + 11 * 8 + 4)

size_t circuit_save(const struct circuit *c, void *buf, size_t bufsz)
{
	struct errq_pb_buf w = errq_pb_buf_init(buf, bufsz); /* counts past the end */
	uint32_t used = 0;
	uint64_t first = ring_first(c);
	for (uint64_t k = first; k <= c->head; k++) {
		bool any = false;
		for (int col = 0; col < n_cols(c); col++)
			any |= slot_get(c, col, k) != 0;
		used += any;
	}
	errq_pb_w_bytes(&w, SAVE_MAGIC, 4);
	errq_pb_w_le(&w, (uint64_t)c->state, 1);
	errq_pb_w_le(&w, c->has_calls ? 1 : 0, 1);
	errq_pb_w_le(&w, 0, 2);
	errq_pb_w_le(&w, c->window_s, 4);
	errq_pb_w_le(&w, c->bucket_s, 4);
	errq_pb_w_le(&w, c->n_buckets, 4);
	errq_pb_w_le(&w, c->reopens, 4);
	const uint64_t u[] = {c->clock,	      c->since,		 c->opened_at,	  c->deadline,
			      c->remind_at,   c->recovery_ns,	 c->probe_start,  c->probe_failures,
			      c->probe_failed, c->probe_ok,	 c->head};
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		errq_pb_w_le(&w, u[i], 8);
	errq_pb_w_le(&w, used, 4);
	for (uint64_t k = first; k <= c->head; k++) {
		bool any = false;
		for (int col = 0; col < n_cols(c); col++)
			any |= slot_get(c, col, k) != 0;
		if (!any)
			continue;
		errq_pb_w_varint(&w, c->head - k);
		for (int col = 0; col < n_cols(c); col++)
			errq_pb_w_varint(&w, slot_get(c, col, k));
	}
	if (w.overflow && buf && bufsz)
		memset(buf, 0, bufsz); /* never leave half a record that could be mistaken for one */
	return w.len;
}

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	int bad;
};

static uint64_t get_le(struct rbuf *r, int bytes)
{
	uint64_t v = 0;
	if (r->off + (size_t)bytes > r->len) {
		r->bad = 1;
		return 0;
	}
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[r->off + (size_t)i] << (8 * i);
	r->off += (size_t)bytes;
	return v;
}

static uint64_t get_varint(struct rbuf *r)
{
	const uint8_t *q = r->p + r->off;
	uint64_t v;
	if (r->bad || errq_pb_get_varint(&q, r->p + r->len, &v)) {
		r->bad = 1;
		return 0;
	}
	r->off = (size_t)(q - r->p);
	return v;
}

int circuit_load(struct circuit **out, const struct circuit_config *cfg, const void *buf, size_t n)
{
	int rc = -1;
	struct rbuf r = {buf, n, 0, 0};
	struct geometry g = geometry_of(cfg);
	struct circuit *c = NULL;
	*out = NULL;
	if (!buf || n < SAVE_HEADER || memcmp(buf, SAVE_MAGIC, 4) != 0)
		goto out;
	r.off = 4;
	c = calloc(1, circuit_size(cfg));
	if (!c)
		goto out;
	uint64_t state = get_le(&r, 1), has_calls = get_le(&r, 1);
	(void)get_le(&r, 2);
	c->window_s = (uint32_t)get_le(&r, 4);
	c->bucket_s = (uint32_t)get_le(&r, 4);
	c->n_buckets = (uint32_t)get_le(&r, 4);
	c->reopens = (uint32_t)get_le(&r, 4);
	if (state > CIRCUIT_HALF_OPEN || c->window_s != g.window_s || c->bucket_s != g.bucket_s ||
	    c->n_buckets != g.n || (has_calls ? 3u : 1u) != g.cols)
		goto out;
	c->state = (enum circuit_state)state;
	c->has_calls = (uint32_t)has_calls;
	uint64_t *u[] = {&c->clock,	 &c->since,	   &c->opened_at,      &c->deadline,
			 &c->remind_at,	 &c->recovery_ns,  &c->probe_start,    &c->probe_failures,
			 &c->probe_failed, &c->probe_ok,   &c->head};
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		*u[i] = get_le(&r, 8);
	uint64_t used = get_le(&r, 4);
	if (r.bad || c->head > bucket_of(c, c->clock) || used > c->n_buckets ||
	    (c->state != CIRCUIT_CLOSED && (c->deadline == 0 || c->opened_at == 0)))
		goto out;
	for (uint64_t i = 0; i < used; i++) {
		uint64_t age = get_varint(&r);
		if (r.bad || age >= c->n_buckets || age > c->head)
			goto out;
		for (int col = 0; col < n_cols(c); col++) {
			uint64_t v = get_varint(&r);
			uint32_t *s = slot(c, col, c->head - age);
			if (r.bad || v > UINT32_MAX || *s)
				goto out;
			*s = (uint32_t)v;
			*sum_of(c, col) += v;
		}
	}
	if (r.off != r.len)
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	free(c);
	return rc;
}
