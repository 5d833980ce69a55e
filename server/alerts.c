/* alerts.c: the rule engine in the collector (see alerts.h).  SKELETON: being written. */
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "errq_str.h"
#include "errq_banned.h"

struct alerts {
	struct alerts_opts o;
	struct alerts_rules *rules;
};

int alerts_new(struct alerts **out, const struct alerts_opts *o, struct ruleset *rs, const char *source, char *err,
	       size_t errsz)
{
	struct alerts *a = calloc(1, sizeof(*a));
	struct alerts_rules *r = calloc(1, sizeof(*r));
	if (!a || !r) {
		free(a);
		free(r);
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	a->o = *o;
	r->rs = rs;
	errq_snprintf(r->source, sizeof(r->source), "%s", source ? source : "");
	a->rules = r;
	*out = a;
	return 0;
}

void alerts_set_ingest(struct alerts *a, struct ingest *ig) { a->o.ig = ig; }

void alerts_free(struct alerts *a)
{
	if (!a)
		return;
	rules_free(a->rules->rs);
	free(a->rules);
	free(a);
}

const struct alerts_rules *alerts_rules_get(struct alerts *a) { return a->rules; }
void alerts_rules_put(struct alerts *a, const struct alerts_rules *r) { (void)a; (void)r; }

static void unavailable(alerts_answer_fn fn, void *arg)
{
	struct alerts_answer ans = {.status = ALERTS_UNAVAILABLE};
	errq_snprintf(ans.msg, sizeof(ans.msg), "not implemented yet");
	if (fn)
		fn(arg, &ans);
}

void alerts_reload(struct alerts *a, alerts_answer_fn fn, void *arg) { (void)a; unavailable(fn, arg); }
void alerts_replay(struct alerts *a, const uint8_t alert_id[16], alerts_answer_fn fn, void *arg)
{
	(void)a; (void)alert_id; unavailable(fn, arg);
}
void alerts_silence_add(struct alerts *a, const struct alerts_silence_req *req, alerts_answer_fn fn, void *arg)
{
	(void)a; (void)req; unavailable(fn, arg);
}
void alerts_silence_expire(struct alerts *a, int64_t id, alerts_answer_fn fn, void *arg)
{
	(void)a; (void)id; unavailable(fn, arg);
}
int alerts_matchers_check(const struct rule *rule, const char *matchers, char *err, size_t errsz)
{
	(void)rule; (void)matchers; (void)err; (void)errsz; return 0;
}
bool alerts_matchers_match(const char *matchers, const char *key) { (void)matchers; (void)key; return true; }
void alerts_get_stats(struct alerts *a, struct alerts_stats *st) { (void)a; memset(st, 0, sizeof(*st)); }
uint64_t alerts_rule_overflow(struct alerts *a, const char *rule) { (void)a; (void)rule; return 0; }
