/* errq_condlog.c: see errq_condlog.h. */
#include "errq_condlog.h"

#include <stdio.h>
#include <string.h>

#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"

void errq_condlog_init(struct errq_condlog *c, const char *what, int level)
{
	memset(c, 0, sizeof(*c));
	c->what = what;
	c->level = level;
}

static void num(char *buf, size_t sz, uint64_t v)
{
	errq_snprintf(buf, sz, "%llu", (unsigned long long)v);
}

void errq_condlog_fail(struct errq_condlog *c, const char *err)
{
	uint64_t now = errq_mono_ns();
	char msg[160], secs[24], fails[24];
	c->failures++;
	c->ok_since = 0;
	if (!c->since_ns) {
		c->since_ns = c->last_log_ns = now;
		errq_snprintf(c->last_err, sizeof(c->last_err), "%s", err);
		errq_logkv(c->level, c->what, "error", err, NULL);
		return;
	}
	bool changed = strncmp(c->last_err, err, sizeof(c->last_err) - 1) != 0;
	errq_snprintf(c->last_err, sizeof(c->last_err), "%s", err);
	uint64_t since_log = now - c->last_log_ns;
	if (!(changed && since_log >= ERRQ_CONDLOG_CHANGE_MS * ERRQ_NS_PER_MS) &&
	    since_log < (uint64_t)(c->summary_ms ? c->summary_ms : ERRQ_CONDLOG_SUMMARY_MS) * ERRQ_NS_PER_MS)
		return;
	c->last_log_ns = now;
	errq_snprintf(msg, sizeof(msg), "%s (still failing)", c->what);
	num(secs, sizeof(secs), (now - c->since_ns) / ERRQ_NS_PER_SEC);
	num(fails, sizeof(fails), c->failures);
	errq_logkv(c->level, msg, "for_s", secs, "failures", fails, "error", err, NULL);
}

void errq_condlog_ok(struct errq_condlog *c)
{
	if (!c->since_ns)
		return;
	if (!c->ok_since)
		c->ok_since = errq_mono_ns();
	errq_condlog_poll(c);
}

void errq_condlog_poll(struct errq_condlog *c)
{
	if (!c->since_ns || !c->ok_since || errq_mono_ns() - c->ok_since < ERRQ_CONDLOG_SETTLE_MS * ERRQ_NS_PER_MS)
		return;
	char msg[160], secs[24], fails[24];
	errq_snprintf(msg, sizeof(msg), "%s: recovered", c->what);
	num(secs, sizeof(secs), (c->ok_since - c->since_ns) / ERRQ_NS_PER_SEC);
	num(fails, sizeof(fails), c->failures);
	errq_logkv(ERRQ_LOG_INFO, msg, "after_s", secs, "failures", fails, "last_error", c->last_err, NULL);
	c->since_ns = 0;
	c->ok_since = 0;
	c->failures = 0;
	c->last_err[0] = '\0';
}

bool errq_condlog_failing(const struct errq_condlog *c)
{
	return c->since_ns != 0;
}
