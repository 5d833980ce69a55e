/* circuit_config.h: what a rule asks of its circuits, with the limits and defaults of each
 * setting; the rules file (rules/) fills it, the circuit state machine (server/circuit.h) runs
 * it.  Kept apart so the CLI checks rules files without the daemon's state machine. */
#ifndef ERRQ_CIRCUIT_CONFIG_H
#define ERRQ_CIRCUIT_CONFIG_H
#include <stddef.h>
#include <stdint.h>

#define CIRCUIT_NS_PER_SEC UINT64_C(1000000000)

/* Limits of a circuit_config (rules_parse.c refuses values outside them, with file and line). */
#define CIRCUIT_MIN_WINDOW_S 1u
#define CIRCUIT_MAX_WINDOW_S 86400u            /* 24 h */
#define CIRCUIT_MAX_BUCKETS 300u               /* ring slots per circuit (see "Window") */
#define CIRCUIT_MAX_FAILURES 1000000u          /* trip.failures, half_open.failures */
#define CIRCUIT_MAX_CALLS UINT64_C(1000000000)  /* trip.min_calls, half_open.successes */
#define CIRCUIT_RATE_ONE 1000000u              /* failure_rate is in parts per million */
#define CIRCUIT_FACTOR_ONE 1000u               /* backoff factor is in thousandths */
#define CIRCUIT_MAX_FACTOR (100u * CIRCUIT_FACTOR_ONE)
#define CIRCUIT_MIN_TIMEOUT_NS CIRCUIT_NS_PER_SEC              /* recovery, probe, backoff.max */
#define CIRCUIT_MAX_TIMEOUT_NS (UINT64_C(7) * 86400 * CIRCUIT_NS_PER_SEC)
#define CIRCUIT_MAX_INTERVAL_NS (UINT64_C(30) * 86400 * CIRCUIT_NS_PER_SEC) /* repeat, max_event_age */

/* Defaults (docs/alerts.md lists them with the YAML keys). */
#define CIRCUIT_DEFAULT_MIN_CALLS 10u
#define CIRCUIT_DEFAULT_RECOVERY_NS (UINT64_C(60) * CIRCUIT_NS_PER_SEC)
#define CIRCUIT_DEFAULT_PROBE_NS (UINT64_C(30) * CIRCUIT_NS_PER_SEC)
#define CIRCUIT_DEFAULT_PROBE_FAILURES 1u
#define CIRCUIT_DEFAULT_FACTOR (2u * CIRCUIT_FACTOR_ONE)
#define CIRCUIT_DEFAULT_BACKOFF_MAX_NS (UINT64_C(30) * 60 * CIRCUIT_NS_PER_SEC)
#define CIRCUIT_DEFAULT_REPEAT_NS (UINT64_C(4) * 3600 * CIRCUIT_NS_PER_SEC)

/* What a rule asks of its circuits.  Plain numbers, so a backtest can build one by hand. */
struct circuit_config {
	uint32_t failures;           /* trip on this many failures in the window; 0 = no count trip */
	uint32_t failure_rate_ppm;   /* trip on Σfailed/Σ(ok+failed) >= this (ppm); 0 = no rate trip */
	uint64_t min_calls;          /* rate trip only with at least this many calls in the window */
	uint64_t window_ns;          /* whole seconds, CIRCUIT_MIN_WINDOW_S..CIRCUIT_MAX_WINDOW_S */
	uint64_t recovery_timeout_ns; /* OPEN -> HALF_OPEN, before backoff */
	uint64_t probe_ns;           /* HALF_OPEN probe length */
	uint32_t probe_failures;     /* this many failures in the probe re-open the circuit (>= 1) */
	uint64_t probe_successes;    /* this many ok calls in the probe close it early; 0 = off */
	uint32_t backoff_factor;     /* thousandths, >= CIRCUIT_FACTOR_ONE */
	uint64_t backoff_max_ns;     /* the recovery timeout never grows past this */
	uint64_t repeat_interval_ns; /* reminder period while the alert fires; 0 = none */
	uint64_t max_event_age_ns;   /* received_at - time older than this does not count; 0 = any */
};

/* Why circuit_retire() closes a circuit. */
enum circuit_retire { CIRCUIT_RETIRE_NONE = 0, CIRCUIT_RETIRE_CHANGED, CIRCUIT_RETIRE_REMOVED };

/* Checks a hand-built config against the limits above (rules_parse.c refuses a rule that fails it).  Returns 0, or -1 with a reason. */
int circuit_config_check(const struct circuit_config *cfg, char *err, size_t errsz);

#endif
