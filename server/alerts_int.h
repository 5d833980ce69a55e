/* alerts_int.h: private to server/alerts*.c: the rule engine's state and the functions its
 * files share. Nothing outside server/alerts*.c includes it; callers use alerts.h.
 *
 * State on the writer thread:
 *  - a hash table of circuits by (rule, key), each with its alert (id, notices, sample);
 *  - the "active" list: circuits with a deadline (OPEN, HALF_OPEN, a reminder due), the
 *    only ones a timer concerns, so a tick costs O(active), not O(circuits);
 *  - the silences in force or to come;
 *  - the deliveries made in the open transaction, handed to the notifier after COMMIT.
 * Every change to a circuit inside a transaction first snapshots it (alerts__touch()), so a rolled
 * back transaction puts memory back where the database is; the snapshot costs one copy of
 * a circuit per circuit per transaction, not per event.
 *
 * Deliveries: an outbox row is written in the transaction of the transition, with the body
 * it will send (so every resend is byte for byte the same, with the same Idempotency-Key).
 * After COMMIT the row goes to the notifier; each attempt's report comes back on the
 * notifier's thread, is kept (coalesced per row) in `reports`, and recorded by the writer
 * in a transaction of its own.  When the notifier is full (NOTIFY_MAX_PENDING held), new
 * rows stay pending in the table ("backlog") and are fed to it in id order as room frees,
 * so per-alert order holds and no row is held twice.
 *
 * Where things are:
 *   alerts.c          life (new, free), the rules in force, the public request entry points
 *   alerts_table.c    the circuits by (rule, key), the active list, the undo snapshot (alerts__touch)
 *   alerts_txn.c      the writer's hooks: a batch's transaction, save, commit/rollback
 *   alerts_outbox.c   notices into the outbox, the backlog, the notifier's reports
 *   alerts_body.c     the webhook body and the sample event
 *   alerts_silence.c  silences: matching, add, expire, a silence's end
 *   alerts_hold.c     what silences and inhibitions hold back; who is owed a resolved
 *   alerts_log.c      delivery failures per notifier (condlog), a reload's log line
 *   alerts_load.c     loading circuits, alerts and silences at start
 *   alerts_timer.c    the tick: deadlines, reminders, silences ending
 *   alerts_request.c  reload and replay on the writer thread */
#ifndef ERRQ_ALERTS_INT_H
#define ERRQ_ALERTS_INT_H

#include "alerts.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "errq_assert.h"
#include "errq_condlog.h"
#include "errq_hash.h"
#include "errq_id.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "ingest.h"
#include "storage.h"
#include "storage_alerts.h"

#define HASH_MIN_BUCKETS 1024
#define BACKLOG_PAGE 256          /* pending rows read per backlog step */
#define MAX_SILENCES 10000        /* silences in force or to come */
#define SILENCE_MIN_NS (UINT64_C(1) * 1000000000)
#define SILENCE_MAX_NS (UINT64_C(90) * 86400 * 1000000000)
#define SAMPLE_MESSAGE_MAX 1024
#define SAMPLE_DETAILS_MAX 16
#define SAMPLE_DETAIL_VALUE_MAX 256

/* "Writer thread only" (struct alerts), checked where the writer enters the engine: its
 * hooks and jobs.  Without an ingest (unit tests' inline store) the caller is the writer. */
#define ALERTS_ON_WRITER(a) ERRQ_ASSERT(!alerts__ig(a) || ingest_on_writer(alerts__ig(a)))
/* a->o.ig: set once by alerts_set_ingest() after the writer (whose hooks read it) and the
 * notifier started, so every read is an atomic load (ThreadSanitizer found the plain ones) */
#define alerts__ig(a) __atomic_load_n(&(a)->o.ig, __ATOMIC_ACQUIRE)

struct rules_ref {
	struct alerts_rules pub;
	int refs; /* under a->rules_mu */
};

struct centry {
	struct centry *hnext;
	struct centry *anext, *aprev; /* the active list */
	bool active;
	size_t rule_idx;              /* into the current ruleset */
	int64_t row_id;               /* 0 = no row yet */
	uint64_t hash;
	struct circuit *c;
	bool has_alert;
	uint8_t alert_id[16];
	uint32_t notices;             /* firing notices made */
	uint64_t opened_at;           /* when the alert fired */
	bool doomed;                  /* a reload retires it: not saved, freed after COMMIT */
	char *sample;                 /* owned JSON; NULL with sample_loaded = none */
	bool sample_loaded;
	/* the open transaction */
	uint64_t gen;                 /* == a->gen when touched in it */
	bool created;                 /* created in it */
	struct centry *tnext;         /* the touched list */
	struct circuit *undo_c;
	int64_t undo_row_id;
	bool undo_has_alert, undo_sample_loaded;
	uint8_t undo_alert_id[16];
	uint32_t undo_notices;
	uint64_t undo_opened_at;
	char *undo_sample;
	size_t key_len;
	char key[];
};

struct rule_rt {
	uint32_t n_circuits;
	struct centry *overflow;
	uint64_t overflow_failures; /* atomic reads from query threads: under stats_mu */
	uint64_t txn_overflow;      /* in the open transaction (writer only) */
};

struct silence {
	int64_t id;
	char rule[RULES_NAME_MAX];
	char *matchers;
	uint64_t starts, ends;
};

struct sub { /* a delivery to hand to the notifier after COMMIT */
	struct sub *next;
	struct notify_delivery *d;
	bool resend; /* an old row made pending again (replay, a silence's end): not in id order */
};

struct request {
	struct ingest_job job;
	struct alerts *a;
	int kind;
	alerts_answer_fn fn;
	void *arg;
	uint8_t alert_id[16];
	int64_t id;
	struct alerts_silence_req sil;
	char who[ALERTS_WHO_MAX]; /* a reload: who asked, for its log line */
};
enum { REQ_RELOAD, REQ_REPLAY, REQ_SILENCE_ADD, REQ_SILENCE_EXPIRE };

struct alerts {
	struct alerts_opts o;
	char config_path[1024];
	char collector[128];
	uint64_t (*clock)(void);
	struct errq_idgen idgen;

	pthread_mutex_t rules_mu;
	struct rules_ref *cur; /* the writer's; readers take references */

	/* writer thread only */
	bool loaded;
	struct centry **buckets;
	size_t n_buckets, n_entries;
	struct centry *active;
	struct rule_rt *rt;   /* per rule of cur */
	struct silence *sil;
	size_t n_sil;
	uint64_t gen;
	struct centry *touched;
	struct sub *subs, **subs_tail;
	bool txn_timers;       /* the open transaction changed some circuit's deadline */
	uint32_t held;         /* deliveries the notifier holds (submitted, not final) */
	bool backlog;          /* rows from backlog_from on wait in the table, not the notifier */
	int64_t backlog_from;
	int64_t *retry_ids;    /* resent rows the notifier refused (full): fed before the backlog */
	size_t n_retry;
	uint8_t save_buf[CIRCUIT_SAVE_MAX];
	struct alerts_stats txn_st; /* counted in the open transaction, added at commit */

	const struct ruleset *dest_check; /* a reload: notices go to the notifiers of this set */
	struct notifier *notifier;

	pthread_mutex_t rep_mu; /* reports from the notifier's thread */
	struct notify_report *reports;
	size_t n_reports;
	bool report_job_queued;
	struct ingest_job report_job;

	pthread_mutex_t stats_mu;
	struct alerts_stats st;

	struct alerts_dlog *dlog; /* ALERTS_DLOG_MAX delivery-failure conditions (alerts_log.c) */

	/* the fleet (alerts_fleet.c): several collectors on one database, one leader evaluating */
	struct fleet *fleet;       /* set by alerts_set_fleet before the writer starts; NULL: none */
	uint64_t epoch;            /* writer: the epoch its circuits were loaded under; 0: a follower */
	uint64_t fenced;           /* writer: an epoch the database said is over */
	uint64_t silence_gen;      /* writer: the fleet's silence generation of its silences */
	bool silences_stale;       /* writer: the generation moved: reload them */
	uint64_t renew_mono;       /* writer: when its delivery leases are renewed next */
	struct finput *fin;        /* writer: the open transaction's increments (FLEET_TXN_INPUTS_MAX) */
	uint32_t *fin_idx;         /* ... their hash index (2 * FLEET_TXN_INPUTS_MAX slots) */
	size_t n_fin;
	uint64_t fin_written;      /* writer: increments written in the open transaction */
	const uint8_t *input_sample; /* writer: the event of the increment being fed (an alert's sample) */
	struct alerts_fleet_stats fst; /* under stats_mu */
};

/* One increment of the open transaction (alerts_fleet.c). */
struct finput {
	uint64_t hash;
	struct store_rule_input in; /* rule, key, service, task point into the ruleset / the batch */
	uint8_t sample[16];
};

/* a notice: what a webhook body says (alerts_body.c builds it, alerts_outbox.c writes it) */
struct notice {
	const char *rule, *key, *severity, *status, *reason, *sample;
	const uint8_t *alert_id;
	int state, prev;
	uint64_t failures, opened, resolved;
	uint32_t window, seq;
	bool rate;                   /* a failure_rate rule: the calls in the window too */
	uint64_t calls_ok, calls_failed;
};

/* alerts_fleet.c */
#define FLEET_EVAL_MS 250            /* the leader takes increments this often */
#define FLEET_TXN_INPUTS_MAX 4096    /* increments a transaction holds; more: written early */
#define FLEET_TAKE_ROUNDS 8          /* take transactions per tick (STORE_RULE_INPUTS_TAKE_MAX rows each) */
#define FLEET_LEASE_NS (UINT64_C(30) * 1000000000)   /* a delivery lease */
#define FLEET_RENEW_NS (UINT64_C(10) * 1000000000)   /* how often a collector renews its leases */
int alerts__fleet_event(struct alerts *a, struct store *s, const struct rule *rule, const char *key, size_t key_len,
			const struct ingest_event *ev);
int alerts__fleet_outcome(struct alerts *a, struct store *s, const struct rule *rule, const char *key, size_t key_len,
			  const Errq__V1__Outcome *oc, uint64_t now);
int alerts__fleet_flush(struct alerts *a, struct store *s);
void alerts__fleet_txn_end(struct alerts *a, bool committed);
int alerts__fleet_fence(struct alerts *a, struct store *s);
/* Whether the open transaction evaluates its events (1: alone, or the fleet's leader with its
 * circuits loaded, the epoch checked) or writes increments (0); -1 on a store error. */
int alerts__fleet_leads(struct alerts *a, struct store *s);
bool alerts__fleet_tick(struct alerts *a, struct store *s, uint64_t *wake);
void alerts__fleet_feed(struct alerts *a, struct store *s);
int alerts__fleet_lease(struct alerts *a, struct store *s, int64_t id, uint64_t until_ns);
char *alerts__sample_from_stored(const struct store_event *e);
char *alerts__input_sample(struct alerts *a, struct store *s);
/* alerts_outbox.c: claims up to limit deliveries nobody holds and hands them to the notifier */
void alerts__claim(struct alerts *a, struct store *s, uint32_t limit);

/* alerts.c */
int alerts__oom(void);
/* What a request answers for the store's last failure: ALERTS_UNAVAILABLE when the database
 * cannot be reached (the client retries), else ALERTS_INTERNAL. */
enum alerts_status alerts__store_status(const struct store *s);
struct rules_ref *alerts__rules_ref_new(struct ruleset *rs, const char *source, uint64_t now);
void alerts__rules_ref_put(struct alerts *a, struct rules_ref *r);
const struct ruleset *alerts__rs(struct alerts *a);
/* alerts_refresh.c: at load, Alertmanager re-posts resume for the alerts still firing. */
void alerts__resume_refresh(struct alerts *a, struct store *s);

/* alerts_table.c */
uint64_t alerts__entry_hash(const char *rule, const char *key, size_t key_len);
const struct rule *alerts__entry_rule(struct alerts *a, const struct centry *e);
void alerts__unlink_entry(struct alerts *a, struct centry *e);
void alerts__set_active(struct alerts *a, struct centry *e);
void alerts__free_entry(struct alerts *a, struct centry *e);
struct centry *alerts__new_entry(struct alerts *a, size_t rule_idx, const char *key, size_t key_len, uint64_t h,
				uint64_t now);
int alerts__touch(struct alerts *a, struct centry *e);
struct centry *alerts__get_entry(struct alerts *a, size_t rule_idx, const char *key, size_t key_len, uint64_t now);

/* alerts_silence.c */
bool alerts__silenced(struct alerts *a, const char *rule, const char *key, uint64_t now);
int alerts__add_silence_mem(struct alerts *a, int64_t id, const char *rule, const char *matchers, uint64_t starts,
			   uint64_t ends);
void alerts__drop_silence_mem(struct alerts *a, size_t i);
int alerts__resend(struct alerts *a, struct store *s, int64_t id, uint64_t now);
/* Silence i ended (expired by hand or by time): drops it and delivers in a transaction of its
 * own the firing notices it held back (on failure they go out after a restart). */
void alerts__silence_ended(struct alerts *a, struct store *s, size_t i);
void alerts__do_silence_add(struct alerts *a, struct store *s, const struct alerts_silence_req *req,
			   struct alerts_answer *ans);
void alerts__do_silence_expire(struct alerts *a, struct store *s, int64_t id, struct alerts_answer *ans);

/* alerts_hold.c: silences and inhibitions hold back firing notices, never a resolved one
 * owed to a notifier that was sent a firing */
#define ALERTS_FIRED_MAX (RULES_MAX_NOTIFIERS * 2) /* notifiers one alert's firing rows name */
struct alerts_fired { /* an alert's firing-kind rows, per notifier */
	char name[ALERTS_FIRED_MAX][RULES_NAME_MAX];
	bool sent[ALERTS_FIRED_MAX];      /* some row not held back (pending, delivered, dead) */
	int64_t held_id[ALERTS_FIRED_MAX]; /* the latest held-back row, 0 = none */
	uint32_t held_seq[ALERTS_FIRED_MAX];
	size_t n;
	bool truncated;
};
bool alerts__inhibited(struct alerts *a, const char *rule, const char *key);
bool alerts__held(struct alerts *a, const char *rule, const char *key, uint64_t now);
int alerts__fired(struct store *s, const uint8_t alert_id[16], struct alerts_fired *f);
/* Resends the latest held firing to each notifier never sent one (the alert must fire). */
int alerts__release_entry(struct alerts *a, struct store *s, struct centry *e, uint64_t now);
/* The same when e fires and nothing holds it any more. */
int alerts__release_if_free(struct alerts *a, struct store *s, struct centry *e, uint64_t now);
/* Rule src's circuit resolved: the alerts it muted that nothing else holds go out. */
int alerts__release_inhibited_by(struct alerts *a, struct store *s, const struct rule *src, uint64_t now);
/* Every firing alert that nothing holds (after a reload; in a transaction: arg unused). */
int alerts__release_all(struct alerts *a, struct store *s, void *arg);

/* alerts_log.c */
#define ALERTS_DLOG_MAX (RULES_MAX_NOTIFIERS * 2)     /* notifiers whose failures are tracked */
#define ALERTS_DELIVERY_SUMMARY_MS 60000               /* a failing notifier's summary line */
#define ALERTS_RELOAD_NAMES_MAX 512                    /* rule names listed per kind in a reload line */
struct alerts_dlog;
/* One attempt's result, for its notifier's failure log (first, summaries, recovery). */
void alerts__log_delivery(struct alerts *a, const struct notify_report *r);
/* Logs recoveries that settled; true while one is settling (tick again within a second). */
bool alerts__log_poll(struct alerts *a);
void alerts__log_free(struct alerts *a);
void alerts__log_reload(const char *who, const char *path, const struct ruleset *old, const struct ruleset *next,
			const enum circuit_retire *fate);

/* alerts_body.c */
int alerts__build_body(struct alerts *a, const struct notice *n, struct errq_buf *b);
char *alerts__sample_from_event(const struct ingest_event *ev);
char *alerts__sample_from_outcome(const Errq__V1__Outcome *o);

/* alerts_outbox.c */
int alerts__write_notice(struct alerts *a, struct store *s, const char *const *names, size_t n_names,
			const struct notice *n, uint64_t now);
int alerts__apply(struct alerts *a, struct store *s, const struct ruleset *rs, const struct rule *r, struct centry *e,
		 const struct circuit_out *out, const struct ingest_event *ev, const Errq__V1__Outcome *oc, uint64_t now);
void alerts__feed_backlog(struct alerts *a, struct store *s);
void alerts__apply_reports(struct alerts *a, struct store *s);
void alerts__report_job_run(struct ingest_job *j, struct store *s);
void alerts__on_report(void *ctx, const struct notify_report *r);

/* alerts_txn.c */
int alerts__save_touched(struct alerts *a, struct store *s, uint64_t now);
void alerts__end_work_entries(struct alerts *a, bool committed);
void alerts__publish_counts(struct alerts *a);
void alerts__end_work_subs(struct alerts *a, bool committed);
int alerts__in_txn_keep(struct alerts *a, struct store *s, int (*fn)(struct alerts *, struct store *, void *),
		       void *arg);
int alerts__in_txn(struct alerts *a, struct store *s, int (*fn)(struct alerts *, struct store *, void *), void *arg);

/* alerts_load.c */
int alerts__load(struct alerts *a, struct store *s);

/* alerts_request.c */
void alerts__answer(struct request *rq, struct alerts_answer *ans);
void alerts__fail(struct alerts_answer *ans, enum alerts_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void alerts__set_dests(struct alerts *a, const struct ruleset *rs);
struct rule_rt *alerts__new_rt(size_t n);
void alerts__request_run(struct ingest_job *j, struct store *s);

#endif
