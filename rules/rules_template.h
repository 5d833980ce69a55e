/* rules_template.h: the `template`, `subject` and `link_template` texts of the slack,
 * pagerduty, email and alertmanager notifiers: literal text with {{field}} placeholders
 * (docs/alerts.md "Templates").  Checked when the config loads (an unknown field, an
 * unclosed "{{", a too-long text are refused there); rendered when a notice is sent, with
 * each value escaped for its target.  Pure: no allocation, no I/O. */
#ifndef ERRQ_RULES_TEMPLATE_H
#define ERRQ_RULES_TEMPLATE_H
#include <stdbool.h>
#include <stddef.h>

#define RULES_TEMPLATE_MAX 2048     /* a template's text in the config, bytes */
#define RULES_TEMPLATE_OUT_MAX 4096 /* what one renders to: past it, cut at a UTF-8 boundary + "…" */

/* The fields, in the documented order.  The values come from the notice (the webhook body). */
enum rules_tpl_field {
	TPL_RULE = 0,
	TPL_KEY,
	TPL_SEVERITY,
	TPL_STATUS,
	TPL_COUNT,
	TPL_WINDOW,
	TPL_SERVICE,
	TPL_ENVIRONMENT,
	TPL_TASK,
	TPL_ERROR_TYPE,
	TPL_ERROR_CODE,
	TPL_MESSAGE,
	TPL_LINK,
	TPL_ALERT_ID,
	TPL_REASON,
	TPL_OPENED_AT,
	TPL_RESOLVED_AT,
	TPL_EVENT_ID,
	TPL_FINGERPRINT,
	TPL_COLLECTOR,
	TPL_N_FIELDS
};

/* How a value is escaped where it is put (the literal text is taken as written). */
enum rules_tpl_escape {
	TPL_ESC_NONE = 0, /* as is (the caller JSON-encodes the result, or it is plain text) */
	TPL_ESC_SLACK,    /* Slack's & < > as &amp; &lt; &gt; (its mrkdwn and Mattermost's) */
	TPL_ESC_LINE,     /* one line: CR, LF and other control characters become spaces */
	TPL_ESC_URL,      /* percent-encoded except RFC 3986 unreserved characters */
};

const char *rules_tpl_field_name(enum rules_tpl_field f);
/* Checks a template: 1..RULES_TEMPLATE_MAX bytes, "{{" always closed by "}}", only known
 * fields (without {{link}} when !allow_link: a link template cannot name itself), and no CR
 * or LF when one_line.  Returns 0, or -1 with the reason in err. */
int rules_template_check(const char *tpl, bool allow_link, bool one_line, char *err, size_t errsz);
/* Renders a checked template into out (outsz > 4; at most RULES_TEMPLATE_OUT_MAX + 1 is used).
 * values[f] NULL is empty.  Returns the length; *cut (may be NULL) tells whether the text was
 * cut to fit (then it ends with "…", at a UTF-8 boundary). */
size_t rules_template_render(const char *tpl, const char *const values[TPL_N_FIELDS], enum rules_tpl_escape esc,
			     char *out, size_t outsz, bool *cut);
#endif
