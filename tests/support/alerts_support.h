/* alerts_support.h: what the alerting integration tests (test_alerts.c, test_alerts_cli.c)
 * share: the running test's collector, rules file and webhook receiver (E), its reports, its
 * database read through a read-only SQLite connection, errqd's log, and the receiver's
 * requests read as JSON.  Every helper fails the running cmocka test on error. */
#ifndef ERRQ_ALERTS_SUPPORT_H
#define ERRQ_ALERTS_SUPPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "harness.h"
#include "http_receiver.h"

struct alert_env {
	struct errqd_proc d;
	struct http_receiver rv;
	bool rv_up;
	char cfg[400]; /* the config file, in d.dir */
};
/* The running test's collector, receiver and config (one test at a time). */
extern struct alert_env E;
extern struct errq_idgen G;

/* ERRQ_VALGRIND=1: errqd runs under valgrind (make test-long), timers need more room. */
bool under_valgrind(void);

/* cmocka set-up and tear-down: a fresh directory from tmpl ("/tmp/...-XXXXXX") holding the
 * database and the config; the tear-down stops errqd (non-zero exit status fails) and the
 * receiver, and removes the directory. */
int alerts_setup(const char *tmpl);
int alerts_teardown(void);

void start_receiver(int port);
void stop_receiver(void);
/* errqd with --config E.cfg (a restart keeps E.d.dir: the same database and config). */
void start_errqd(void);
/* Writes a whole file (through a rename, so a reload never reads half of it). */
void write_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sends n (1..16) failures in one batch and waits for its answer (= committed, rules
 * applied).  task may be NULL; the events' ids (hex) go to ids when not NULL. */
void send_failures(int n, const char *service, const char *type, const char *task, char (*ids)[ERRQ_ID_HEX_BUFSZ]);

/* ---- the database, read-only ---- */
/* The first column of the first row as an integer (-1 when no row), arg bound to ?1. */
int64_t q_int(const char *sql, const char *arg);
/* The first column of the first row as text (malloc'd; NULL when no row or NULL). */
char *q_text(const char *sql, const char *arg);
/* A circuit's state (0 closed, 1 open, 2 half_open), -1 when the rule has no circuit row. */
int circuit_state(const char *rule);
/* The alert id (hex) of the rule's circuit, or NULL (malloc'd). */
char *circuit_alert(const char *rule);
int64_t delivery_status(const char *alert_hex, const char *kind);
int64_t delivery_attempts(const char *alert_hex, const char *kind);
struct trans {
	int from, to;
	char reason[128];
	uint64_t at;
};
/* The transitions of a rule, oldest first; returns how many (at most max). */
int transitions(const char *rule, struct trans *t, int max);
/* Waits until the rule's circuit is in state want; at the deadline prints its history (a
 * state it went through between two polls would show there) and fails. */
void wait_state(const char *rule, int want, int line);
/* The same when the state comes only after a timer of timer_ns (a probe): the deadline is the
 * timer plus HARNESS_DEADLINE_MS, never the deadline alone (under valgrind a probe is 30 s). */
void wait_state_after(const char *rule, int want, int line, uint64_t timer_ns);

/* ---- errqd ---- */
/* Lines of errqd's log containing needle. */
int log_count(const char *needle);
bool errqd_running(void);

/* ---- JSON and what the receiver got ---- */
json_t *body_json(int i); /* request i's body (decref) */
json_t *jget(json_t *o, const char *k);
const char *jstr(json_t *o, const char *k);
json_int_t jint(json_t *o, const char *k);
bool is_hex32(const char *s);
bool is_rfc3339_ms(const char *s);
void assert_rfc3339_ms(const char *s);
/* Request i has header name with value want. */
void assert_header(int i, const char *name, const char *want);
#endif
