/* errq_condlog.h: one log line per failing condition, not one per failure.
 *
 * A condition that fails over and over (a full disk: every write, every checkpoint) is logged
 * once when it starts, again at once when its error text changes (another condition), then
 * as one summary line every ERRQ_CONDLOG_SUMMARY_MS while it lasts (failures since the start
 * and the last error), and once more when it recovers (how long it lasted, how many
 * failures).  It has recovered when successes alone were seen for ERRQ_CONDLOG_SETTLE_MS: a
 * disk at the edge of full lets small transactions through between failures, and that
 * flapping stays one episode.  Bound: at most one line per ERRQ_CONDLOG_SUMMARY_MS, plus one
 * per change of the error text but no more than one per ERRQ_CONDLOG_CHANGE_MS, plus the
 * first and the recovery line of each episode (episodes are ERRQ_CONDLOG_SETTLE_MS apart).
 *
 * Not thread-safe: each condition belongs to one thread, or the caller serializes. */
#ifndef ERRQ_CONDLOG_H
#define ERRQ_CONDLOG_H
#include <stdbool.h>
#include <stdint.h>

#define ERRQ_CONDLOG_SUMMARY_MS 30000
#define ERRQ_CONDLOG_CHANGE_MS 1000
#define ERRQ_CONDLOG_SETTLE_MS 2000
#define ERRQ_CONDLOG_ERR_MAX 256

struct errq_condlog {
	const char *what;  /* "store write failed": the message of the first line (static) */
	int level;         /* of the failure lines; the recovery line is info */
	uint64_t since_ns; /* errq_mono_ns() of the first failure of this episode; 0 = ok */
	uint64_t last_log_ns;
	uint64_t failures; /* in this episode */
	uint64_t ok_since; /* errq_mono_ns() of the first success since the last failure; 0 = none */
	char last_err[ERRQ_CONDLOG_ERR_MAX];
	uint32_t summary_ms; /* the summary period; 0 = ERRQ_CONDLOG_SUMMARY_MS (set after init) */
};

/* what is kept by pointer (a string literal). */
void errq_condlog_init(struct errq_condlog *c, const char *what, int level);
/* One more failure with error text err; logs when the bound above allows. */
void errq_condlog_fail(struct errq_condlog *c, const char *err);
/* A success: logs the recovery line when it ends an episode (settled). */
void errq_condlog_ok(struct errq_condlog *c);
/* Logs the recovery line when the successes since the last failure have settled; for
 * owners whose successes may stop coming (an idle writer), at each turn. */
void errq_condlog_poll(struct errq_condlog *c);
/* True during an episode (from its first failure to its recovery line). */
bool errq_condlog_failing(const struct errq_condlog *c);
#endif
