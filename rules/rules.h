/* rules.h: alert rules and notifiers — the `rules:` and `notifiers:` sections of errqd's
 * config file (docs/alerts.md is the reference), and the matching of events to rules.
 *
 * A ruleset is loaded whole or refused whole ("'FILE' line N: rule 'R': key 'K': reason"),
 * so a reload either swaps in a valid set or keeps the old one.  It is immutable once
 * loaded: any number of threads may read it.  Nothing here allocates after rules_load*.
 *
 * Matching (rules_match) yields, for each rule an event matches, the circuit key: the
 * rule's group_by fields as "field=value,field=value" in group_by order, each value with
 * '\', ',' and '=' escaped by a backslash and cut to RULES_KEY_VALUE_MAX bytes (at a UTF-8
 * boundary).  A field the event lacks has the empty value.  A rule without group_by has
 * one circuit, key "".  The same string is what `errq` prints and takes on the command
 * line (rules_key_canonical turns what a person typed into it). */
#ifndef ERRQD_RULES_H
#define ERRQD_RULES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "circuit_config.h"
#include "errq_arena.h"

/* Bounds: a file past one of them is refused with the limit in the message. */
#define RULES_MAX_RULES 256
#define RULES_MAX_NOTIFIERS 32
#define RULES_MAX_MATCH 16       /* match entries per rule */
#define RULES_MAX_GROUP_BY 8     /* group_by fields per rule */
#define RULES_MAX_NOTIFY 8       /* notifiers per rule */
#define RULES_MAX_INHIBITS 16    /* rules one rule inhibits */
#define RULES_MAX_HEADERS 16     /* headers per webhook notifier */
#define RULES_NAME_MAX 64        /* rule and notifier names: [A-Za-z0-9_.-], bytes */
#define RULES_GLOB_MAX 256       /* a match value */
#define RULES_DETAIL_KEY_MAX 128 /* the KEY of details.KEY (VALIDATE_MAX_DETAIL_KEY) */
#define RULES_URL_MAX 2048
#define RULES_HEADER_NAME_MAX 128
#define RULES_HEADER_VALUE_MAX 1024
#define RULES_SECRET_MAX 256
#define RULES_PATH_MAX 1024 /* a file named in a notifier (ca_file), bytes */
#define RULES_MEMORY_MAX (16u << 20) /* a loaded ruleset's memory */
/* Circuits per rule: the config's max_circuits (default, and the most it may be).  Past it
 * the caller puts new keys into the one circuit RULES_OVERFLOW_KEY of the rule (and counts
 * them in a metric); the key contains no '=', so no real key can be it. */
#define RULES_DEFAULT_MAX_CIRCUITS 1000
#define RULES_MAX_CIRCUITS 100000
#define RULES_OVERFLOW_KEY "(overflow)"
/* A key's values are cut to this many bytes before escaping; a key is never longer than
 * RULES_KEY_MAX - 1 bytes. */
#define RULES_KEY_VALUE_MAX 128
#define RULES_KEY_MAX 4096
/* Notifier defaults and ranges. */
#define RULES_DEFAULT_TIMEOUT_NS (UINT64_C(5) * CIRCUIT_NS_PER_SEC)
#define RULES_MIN_TIMEOUT_NS (UINT64_C(100) * 1000000)
#define RULES_MAX_TIMEOUT_NS (UINT64_C(60) * CIRCUIT_NS_PER_SEC)
#define RULES_DEFAULT_MAX_ATTEMPTS 8
#define RULES_MAX_ATTEMPTS 100

/* Fields of an event a rule can match on and group by. */
enum rules_field_id {
	RULES_F_SERVICE = 0,
	RULES_F_ENVIRONMENT,
	RULES_F_TASK,
	RULES_F_ERROR_TYPE,
	RULES_F_ERROR_CODE,
	RULES_F_FINGERPRINT, /* group_by only */
	RULES_F_HANDLED,     /* match only: true | false */
	RULES_F_DETAIL,      /* details.KEY */
};

struct rules_field {
	enum rules_field_id id;
	const char *detail; /* RULES_F_DETAIL: the KEY; else NULL */
};

/* One match entry: the field's value must match the glob (fnmatch(3) without flags: '*',
 * '?', '[...]', '\' escapes; case-sensitive).  details.KEY does not match an event without
 * that detail, whatever the glob. */
struct rules_match {
	struct rules_field field;
	const char *glob; /* RULES_F_HANDLED: "true" or "false" */
};

enum rules_severity { RULES_SEV_CRITICAL = 0, RULES_SEV_ERROR, RULES_SEV_WARNING, RULES_SEV_INFO };

struct rule {
	const char *name;
	int line;                   /* where its mapping starts */
	struct rules_match match[RULES_MAX_MATCH]; /* sorted by field, then detail key */
	size_t n_match;
	struct rules_field group_by[RULES_MAX_GROUP_BY]; /* in the order written */
	size_t n_group_by;
	struct circuit_config circuit; /* trip, recovery_timeout, half_open, backoff, ... */
	enum rules_severity severity;
	size_t notify[RULES_MAX_NOTIFY]; /* indexes into ruleset.notifiers */
	size_t n_notify;
	uint32_t max_circuits;
	/* inhibition: while a circuit of this rule is open (its alert fired), the alerts of the
	 * rules inhibits[] (indexes into ruleset.rules) are held back like silenced ones; with
	 * inhibit_equal, only those whose key has the same values of these fields (each in both
	 * rules' group_by).  inhibited: some rule names this one in its inhibits. */
	size_t inhibits[RULES_MAX_INHIBITS];
	size_t n_inhibits;
	struct rules_field inhibit_equal[RULES_MAX_GROUP_BY];
	size_t n_inhibit_equal;
	bool inhibited;
	/* outcomes feed this rule: it has a failure_rate (then it matches and groups only on
	 * service and task, all that an Outcome carries) or half_open.successes */
	bool wants_outcomes;
	/* FNV-1a 64 over match, group_by and trip: equal hashes mean the circuits stay valid
	 * across a reload.  Stored by callers beside circuits: the input format is fixed. */
	uint64_t def_hash;
};

enum rules_notifier_type {
	RULES_NOTIFIER_WEBHOOK = 0,
	RULES_NOTIFIER_LOG,
	RULES_NOTIFIER_ALERTMANAGER, /* Alertmanager API v2 */
	RULES_NOTIFIER_SLACK,        /* Slack-compatible incoming webhook */
	RULES_NOTIFIER_PAGERDUTY,    /* PagerDuty Events API v2 */
	RULES_NOTIFIER_EMAIL,        /* SMTP through libcurl */
};
#define RULES_MAX_MAIL_TO 8            /* recipients of an email notifier */
#define RULES_MAIL_ADDR_MAX 254        /* an address (RFC 5321's path limit) */
#define RULES_ROUTING_KEY_MAX 128      /* a PagerDuty routing key */
#define RULES_PAGERDUTY_URL "https://events.pagerduty.com/v2/enqueue"
#define RULES_DEFAULT_RESEND_NS (UINT64_C(60) * CIRCUIT_NS_PER_SEC) /* alertmanager re-post */
#define RULES_MIN_RESEND_NS (UINT64_C(1) * CIRCUIT_NS_PER_SEC)
#define RULES_MAX_RESEND_NS (UINT64_C(3600) * CIRCUIT_NS_PER_SEC)
enum rules_starttls { RULES_STARTTLS_OPTIONAL = 0, RULES_STARTTLS_REQUIRED };

struct rules_header {
	const char *name, *value;
};

struct rules_notifier {
	const char *name;
	int line;
	enum rules_notifier_type type;
	const char *url;         /* webhook; NULL for log */
	uint64_t timeout_ns;     /* per attempt */
	uint32_t max_attempts;
	struct rules_header headers[RULES_MAX_HEADERS];
	size_t n_headers;
	const char *secret;      /* HMAC-SHA256 key; NULL = unsigned */
	/* the integrations (docs/alerts.md "Notifier types"); NULL / 0 where not set */
	const char *template_text; /* slack, pagerduty, email: the text (rules_template.h) */
	const char *subject;       /* email: the Subject template (one line) */
	const char *link_template; /* the event's link ({{link}}) */
	uint64_t resend_ns;        /* alertmanager: re-post period while firing */
	const char *routing_key;   /* pagerduty: secret (read from the file, the env or the config) */
	const char *mail_from;     /* email */
	const char *mail_to[RULES_MAX_MAIL_TO];
	size_t n_mail_to;
	enum rules_starttls starttls;
	const char *username, *password; /* email: SMTP auth; password is secret */
	const char *ca_file;       /* TLS: PEM CA bundle that verifies the receiver; NULL = the system's */
};
/* "webhook", "log", "alertmanager", ... */
const char *rules_notifier_type_name(enum rules_notifier_type t);

struct ruleset {
	struct rule *rules;
	size_t n_rules;
	struct rules_notifier *notifiers;
	size_t n_notifiers;
	struct errq_arena arena; /* everything above lives here */
};

/* Reads the `notifiers:` and `rules:` sections of a YAML file; other top-level keys are
 * the settings' (settings_load_file checks them) and are skipped.  A file without them is
 * an empty ruleset.  Returns 0 with *out (free with rules_free), or -1 with
 * "'FILE' line N: ..." in err and *out NULL. */
int rules_load(struct ruleset **out, const char *path, char *err, size_t errsz);
/* Same from memory; name stands for the file in messages. */
int rules_load_mem(struct ruleset **out, const char *name, const char *text, size_t len, char *err,
		   size_t errsz);
/* Accepts NULL. */
void rules_free(struct ruleset *rs);

const struct rule *rules_find(const struct ruleset *rs, const char *name);
const struct rules_notifier *rules_find_notifier(const struct ruleset *rs, const char *name);
const char *rules_severity_name(enum rules_severity s); /* "critical", ... */
/* "service", "details.region", ... into buf; returns buf. */
const char *rules_field_name(const struct rules_field *f, char *buf, size_t bufsz);

/* What a reload means for the circuits of old_rule: CIRCUIT_RETIRE_NONE (same name and
 * def_hash in next: keep them, *now_rule is the new rule to use), CIRCUIT_RETIRE_CHANGED or
 * CIRCUIT_RETIRE_REMOVED (retire them with circuit_retire). */
enum circuit_retire rules_reload_fate(const struct rule *old_rule, const struct ruleset *next,
				      const struct rule **now_rule);

/* True when an open circuit `src_key` of rule src (which inhibits target) mutes the alert
 * of circuit `target_key` of target: src has no inhibit_equal, or both keys have the same
 * values of its fields. */
bool rules_inhibit_applies(const struct rule *src, const char *src_key, const char *target_key);

/* A committed failure event, as plain strings (NULL = empty). */
struct rule_event {
	const char *service, *environment, *task, *error_type, *error_code, *fingerprint;
	bool handled;
	const char *const *detail_keys; /* n_details each */
	const char *const *detail_values;
	size_t n_details;
};

/* Called for each rule that matches, in file order, with its circuit key (NUL-terminated,
 * valid during the call).  Return 0 to go on, non-zero to stop. */
typedef int (*rules_match_fn)(void *arg, const struct rule *rule, const char *key, size_t key_len);

/* Calls fn for each rule that ev matches.  Returns the number of calls made.  No allocation
 * (the key is built on the stack). */
size_t rules_match(const struct ruleset *rs, const struct rule_event *ev, rules_match_fn fn, void *arg);
/* Same for one Outcome (its service and task), over the rules that want outcomes, judged
 * on their service and task match entries alone.  key is the circuit's key when the rule
 * groups only by service and task (always so for failure_rate rules); otherwise key is
 * NULL (key_len 0): the outcome concerns every circuit of the rule for which
 * rules_outcome_applies() is true — in practice the caller feeds it to the rule's
 * HALF_OPEN circuits, the only ones that use outcomes of such a rule (probe successes). */
size_t rules_match_outcome(const struct ruleset *rs, const char *service, const char *task, rules_match_fn fn,
			   void *arg);
/* True when an outcome of service and task concerns the circuit `key` of rule: the key's
 * service and task fields (when it has them) equal the outcome's. */
bool rules_outcome_applies(const struct rule *rule, const char *key, const char *service, const char *task);
/* The circuit key of ev under rule (whether or not it matches) into out
 * (RULES_KEY_MAX bytes is always enough).  Returns its length. */
size_t rules_key(const struct rule *rule, const struct rule_event *ev, char *out, size_t outsz);

/* Reads the next "field=value" of a key at *p into field and value (unescaped,
 * NUL-terminated, cut to their buffers) and moves *p past it.  Returns 1, 0 at the end of
 * the key, or -1 when the key is malformed.  For turning a key into a JSON object. */
int rules_key_next(const char **p, char *field, size_t fieldsz, char *value, size_t valuesz);
/* Turns a key as a person wrote it (fields in any order, escapes optional where not
 * needed) into the rule's canonical key.  Returns 0, or -1 with a reason in err. */
int rules_key_canonical(const struct rule *rule, const char *in, char *out, size_t outsz, char *err,
			size_t errsz);
#endif
