/* cli_args.c: flag table, argument parsing and help text of the errq CLI (see cli_args.h);
 * the parsers and checks of single values are in cli_values.c. */
#include "cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

enum flag_id {
	FL_ADDR,
	FL_OUTPUT,
	FL_NO_COLOR,
	FL_TIMEOUT,
	FL_HELP,
	FL_VERSION,
	FL_SERVICE,
	FL_SINCE,
	FL_LIMIT,
	FL_GROUP,
	FL_ENV,
	FL_TYPE,
	FL_CODE,
	FL_TASK,
	FL_STATUS,
	FL_UNTIL,
	FL_SORT,
	FL_RULE,
	FL_STATE,
	FL_MATCH,
	FL_FOR,
	FL_COMMENT,
	FL_ALL,
	FL_FORCE,
	FL_MAX_RATE,
	FL_TLS,
	FL_CA,
	FL_CERT,
	FL_KEY,
	FL_TOKEN,
	FL_NAME,
	FL_ROLE,
};

/* Every flag the tool knows.  bit 0: global (every command takes it); else the CLI_F_* bit a
 * command must declare.  metavar NULL: the flag takes no value. */
static const struct flag_def {
	enum flag_id id;
	const char *name;
	char short_name;
	const char *metavar;
	unsigned bit;
	const char *help;
} flags[] = {
    {FL_ADDR, "addr", 0, "HOST:PORT", 0,
     "collector address (default: $ERRQ_ADDR, else " CLI_DEFAULT_ADDR ")"},
    {FL_OUTPUT, "output", 'o', "FORMAT", 0, "table, json (one document) or jsonl (one object a line)"},
    {FL_NO_COLOR, "no-color", 0, NULL, 0, "no colors in tables (also: NO_COLOR set and not empty)"},
    {FL_TIMEOUT, "timeout", 0, "DURATION", 0, "give up on the collector after DURATION (default 5s)"},
    {FL_TLS, "tls", 0, NULL, 0, "TLS to the collector, checked against the system's CA roots (also: $ERRQ_TLS not empty)"},
    {FL_CA, "ca", 0, "FILE", 0, "TLS, checked against the CA certificates in this PEM file (default: $ERRQ_CA)"},
    {FL_CERT, "cert", 0, "FILE", 0,
     "with --key: this PEM client certificate, for a collector that asks for one (mutual TLS; default: $ERRQ_CERT)"},
    {FL_KEY, "key", 0, "FILE", 0, "the PEM private key of --cert (default: $ERRQ_KEY)"},
    {FL_TOKEN, "token", 0, "TOKEN", 0,
     "bearer token for the collector (default: $ERRQ_TOKEN, which other users cannot see in ps)"},
    {FL_HELP, "help", 'h', NULL, 0, "show help and exit"},
    {FL_VERSION, "version", 0, NULL, 0, "print the version and exit"},
    {FL_SERVICE, "service", 0, "NAME", CLI_F_SERVICE, "only this service"},
    {FL_ENV, "env", 0, "NAME", CLI_F_ENV, "only this environment's events"},
    {FL_TYPE, "type", 0, "GLOB", CLI_F_TYPE, "only error types matching GLOB (* and ?, e.g. 'Timeout*')"},
    {FL_CODE, "code", 0, "GLOB", CLI_F_CODE, "only error codes matching GLOB (* and ?, e.g. 'E_TIMEOUT*')"},
    {FL_TASK, "task", 0, "GLOB", CLI_F_TASK, "only the failures of tasks matching GLOB (* and ?, e.g. 'sync-*')"},
    {FL_STATUS, "status", 0, "STATUS", CLI_F_STATUS, "only rows with this status"},
    {FL_RULE, "rule", 0, "NAME", CLI_F_RULE, "only this rule's rows (its name in the rules file)"},
    {FL_STATE, "state", 0, "STATE", CLI_F_STATE, "only circuits in this state: closed, open or half_open"},
    {FL_MATCH, "match", 0, "FIELD=GLOB", CLI_F_MATCH,
     "only the circuits whose key has FIELD matching GLOB (* ? [...]); repeat for more fields "
     "(default: every circuit of the rule)"},
    {FL_FOR, "for", 0, "DURATION", CLI_F_FOR, "how long from now: 1s to 90d (30m, 2h, 7d)"},
    {FL_COMMENT, "comment", 0, "TEXT", CLI_F_COMMENT, "why (shown with the silence; at most 511 bytes)"},
    {FL_ALL, "all", 0, NULL, CLI_F_ALL, "also the silences that have ended"},
    {FL_FORCE, "force", 0, NULL, CLI_F_FORCE, "replace an existing file (never the live database)"},
    {FL_MAX_RATE, "max-rate", 0, "MIB", CLI_F_MAX_RATE,
     "copy at most MIB mebibytes a second (default: as fast as the disk goes)"},
    {FL_GROUP, "group", 0, "FINGERPRINT", CLI_F_GROUP, "only the events of this group"},
    {FL_NAME, "name", 0, "NAME", CLI_F_NAME, "the credential's name (in errqd's logs and audit lines)"},
    {FL_ROLE, "role", 0, "ROLE", CLI_F_ROLE, "ingest, read or admin (admin may also read)"},
    {FL_SINCE, "since", 0, "WHEN", CLI_F_SINCE,
     "only what was received since WHEN: a duration back from now (30m, 1h, 2d) or an RFC 3339 time"},
    {FL_UNTIL, "until", 0, "WHEN", CLI_F_UNTIL, "with --since: end the window at WHEN (same forms as --since)"},
    {FL_SORT, "sort", 0, "KEY", CLI_F_SORT,
     "count (most events in the window first), last_seen (the default) or first_seen (newest groups first)"},
    {FL_LIMIT, "limit", 0, "N", CLI_F_LIMIT, "at most N rows (default 100, at most 100000)"},
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

/* What a flag means to one command, where that differs from its line above: a command's
 * help describes its own flags only, never another command's use of them. */
static const struct flag_note {
	enum flag_id id;
	const char *cmd;
	const char *help;
} flag_notes[] = {
    {FL_SERVICE, "token new", "a service the token may report, a glob ('pay*'; '*' for all); repeat it"},
    {FL_STATUS, "groups", "only groups with this status: unresolved, resolved or ignored"},
    {FL_STATUS, "alerts", "only alerts with this status: firing or resolved"},
    {FL_RULE, "circuits", "only this rule's circuits (its name in the rules file)"},
    {FL_RULE, "alerts", "only this rule's alerts (its name in the rules file)"},
    {FL_RULE, "silence add", "the rule silenced (its name in the rules file)"},
    {FL_LIMIT, "tail", "stop after N events"},
    {FL_LIMIT, "explain-circuit", "the newest N transitions (default 100, at most 1000)"},
    {FL_SINCE, "alerts", "only the alerts opened or updated since WHEN: a duration back from now (30m, 1h, 2d) "
			 "or an RFC 3339 time"},
    {FL_SINCE, "group", "count only the events received since WHEN (the histogram covers up to a day of it): a "
			"duration back from now (30m, 1h, 2d) or an RFC 3339 time"},
    {FL_ENV, "group", "count only this environment's events"},
    {FL_ENV, "groups", "count only this environment's events; groups without any are left out"},
    {FL_CODE, "groups", "only groups whose code matches GLOB (* and ?, e.g. 'E_TIMEOUT*'; a group's code is the last "
			"one its events reported)"},
};

/* d's help for command c (NULL: the general line). */
static const char *flag_help(const struct flag_def *d, const struct cli_cmd *c)
{
	for (size_t k = 0; c && k < sizeof(flag_notes) / sizeof(flag_notes[0]); k++)
		if (flag_notes[k].id == d->id && !strcmp(flag_notes[k].cmd, c->name))
			return flag_notes[k].help;
	return d->help;
}

void cli_args_init(struct cli_args *a, const char *env_addr, const char *env_no_color)
{
	memset(a, 0, sizeof(*a));
	a->addr = env_addr && *env_addr ? env_addr : CLI_DEFAULT_ADDR;
	a->no_color = env_no_color && *env_no_color;
	a->output = CLI_OUT_TABLE;
	a->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
	a->limit = CLI_DEFAULT_LIMIT;
	a->service = "";
	a->env = "";
	a->type_glob = "";
	a->code_glob = "";
	a->task_glob = "";
	a->status = "";
	a->group = "";
	a->rule = "";
	a->state = "";
	a->comment = "";
	a->name = "";
	a->role = "";
	a->sort = CLI_SORT_LAST_SEEN;
}

void cli_args_tls_env(struct cli_args *a, const char *env_tls, const char *env_ca, const char *env_cert,
		      const char *env_key)
{
	a->tls = env_tls && *env_tls;
	a->tls_ca = env_ca && *env_ca ? env_ca : NULL;
	a->tls_cert = env_cert && *env_cert ? env_cert : NULL;
	a->tls_key = env_key && *env_key ? env_key : NULL;
}

const struct cli_cmd *cli_cmd_find(const struct cli_cmd *cmds, size_t ncmds, const char *name)
{
	for (size_t k = 0; k < ncmds; k++)
		if (!strcmp(cmds[k].name, name))
			return &cmds[k];
	return NULL;
}

static void words_or(const char *list, char *buf, size_t n)
{
	size_t o = 0, nwords = 1, k = 0;
	for (const char *p = list; *p; p++)
		nwords += *p == '|';
	buf[0] = '\0';
	for (const char *p = list; *p && o < n; k++) {
		size_t w = strcspn(p, "|");
		o += (size_t)errq_snprintf(buf + o, n - o, "%s%.*s", k == 0 ? "" : k + 1 == nwords ? " or " : ", ",
					   (int)w, p);
		p += w;
		if (*p == '|')
			p++;
	}
}

static const struct flag_def *find_long(const char *name, size_t len)
{
	for (size_t k = 0; k < NFLAGS; k++)
		if (strlen(flags[k].name) == len && !memcmp(flags[k].name, name, len))
			return &flags[k];
	return NULL;
}

static const struct flag_def *find_short(char c)
{
	for (size_t k = 0; k < NFLAGS; k++)
		if (flags[k].short_name && flags[k].short_name == c)
			return &flags[k];
	return NULL;
}

/* Applies one flag's value.  Returns 0 or -1 with err set. */
static int apply(struct cli_args *a, const struct flag_def *f, const char *val, uint64_t now_ns, char *err,
		 size_t errlen)
{
	switch (f->id) {
	case FL_ADDR:
		if (!*val) {
			errq_snprintf(err, errlen, "empty --addr (expected HOST:PORT)");
			return -1;
		}
		a->addr = val;
		a->addr_set = true;
		break;
	case FL_OUTPUT:
		if (cli_output_parse(val, &a->output)) {
			errq_snprintf(err, errlen, "unknown output format '%s' (expected table, json or jsonl)", val);
			return -1;
		}
		a->output_set = true;
		break;
	case FL_NO_COLOR:
		a->no_color = true;
		break;
	case FL_TIMEOUT:
		if (cli_timeout_parse(val, &a->timeout_ms)) {
			errq_snprintf(err, errlen, "invalid --timeout '%s' (expected a duration such as 5s or 500ms)",
				      val);
			return -1;
		}
		a->timeout_set = true;
		break;
	case FL_TLS:
		a->tls = true;
		break;
	case FL_CA:
	case FL_CERT:
	case FL_KEY:
		if (!*val) {
			errq_snprintf(err, errlen, "empty --%s (expected a PEM file)", f->name);
			return -1;
		}
		*(f->id == FL_CA ? &a->tls_ca : f->id == FL_CERT ? &a->tls_cert : &a->tls_key) = val;
		break;
	case FL_HELP:
		a->help = true;
		break;
	case FL_VERSION:
		a->version = true;
		break;
	case FL_SERVICE:
		if (a->nservices == CLI_MAX_SERVICES) {
			errq_snprintf(err, errlen, "--service given more than %d times", CLI_MAX_SERVICES);
			return -1;
		}
		a->service = a->services[a->nservices++] = val;
		break;
	case FL_TOKEN:
		if (cli_token_valid(val)) {
			errq_snprintf(err, errlen, "invalid --token (1 to %d printable ASCII bytes)", CLI_TOKEN_MAX);
			return -1;
		}
		a->token = val;
		break;
	case FL_NAME:
		a->name = val; /* checked by the command that takes it */
		break;
	case FL_ROLE:
		a->role = val;
		break;
	case FL_SINCE:
		if (errq_parse_since(val, now_ns, &a->since_ns)) {
			errq_snprintf(err, errlen,
				      "invalid --since '%s' (expected 30m, 1h, 2d or an RFC 3339 time such as "
				      "2026-11-25T18:00:00Z)",
				      val);
			return -1;
		}
		a->since_arg = val;
		break;
	case FL_LIMIT:
		if (cli_limit_parse(val, &a->limit)) {
			errq_snprintf(err, errlen, "invalid --limit '%s' (expected a number from 1 to %d)", val,
				      CLI_LIMIT_MAX);
			return -1;
		}
		break;
	case FL_GROUP:
		if (cli_name_valid(val)) {
			errq_snprintf(err, errlen, "invalid --group '%s' (expected a fingerprint)", val);
			return -1;
		}
		a->group = val;
		break;
	case FL_ENV:
		a->env = val;
		break;
	case FL_TYPE:
	case FL_CODE:
	case FL_TASK:
		if (cli_filter_glob_valid(f->name, val, err, errlen))
			return -1;
		*(f->id == FL_TYPE ? &a->type_glob : f->id == FL_CODE ? &a->code_glob : &a->task_glob) = val;
		break;
	case FL_STATUS:
		/* checked against the command's statuses once it is known (cli_args_parse) */
		a->status = val;
		break;
	case FL_RULE:
		if (cli_rule_name_valid(val)) {
			errq_snprintf(err, errlen,
				      "invalid --rule '%s' (expected a rule name: 1 to %d letters, digits, '_', "
				      "'.', '-')",
				      val, CLI_RULE_NAME_MAX);
			return -1;
		}
		a->rule = val;
		break;
	case FL_STATE:
		if (cli_state_parse(val, &a->state)) {
			errq_snprintf(err, errlen, "invalid --state '%s' (expected closed, open or half_open)", val);
			return -1;
		}
		break;
	case FL_MATCH: {
		if (cli_match_valid(val, err, errlen))
			return -1;
		size_t flen = (size_t)(strchr(val, '=') - val);
		for (size_t k = 0; k < a->nmatch; k++) {
			if (!strncmp(a->match[k], val, flen) && a->match[k][flen] == '=') {
				errq_snprintf(err, errlen, "--match '%.*s' given twice", (int)flen, val);
				return -1;
			}
		}
		if (a->nmatch == CLI_MAX_MATCH) {
			errq_snprintf(err, errlen, "--match given more than %d times", CLI_MAX_MATCH);
			return -1;
		}
		a->match[a->nmatch++] = val;
		break;
	}
	case FL_FOR:
		if (errq_parse_duration(val, &a->for_ns) || a->for_ns < CLI_SILENCE_MIN_NS ||
		    a->for_ns > CLI_SILENCE_MAX_NS) {
			errq_snprintf(err, errlen,
				      "invalid --for '%s' (expected a duration from 1s to 90d, such as 30m or 2h)",
				      val);
			return -1;
		}
		a->for_arg = val;
		break;
	case FL_COMMENT:
		if (strlen(val) > CLI_COMMENT_MAX || !errq_utf8_valid(val, strlen(val), NULL)) {
			errq_snprintf(err, errlen, "invalid --comment (at most %d bytes of text)", CLI_COMMENT_MAX);
			return -1;
		}
		a->comment = val;
		break;
	case FL_ALL:
		a->all = true;
		break;
	case FL_FORCE:
		a->force = true;
		break;
	case FL_MAX_RATE: {
		long v;
		if (cli_max_rate_parse(val, &v)) {
			errq_snprintf(err, errlen, "invalid --max-rate '%s' (expected MiB a second, 1 to %ld)", val,
				      CLI_MAX_RATE_MIB_MAX);
			return -1;
		}
		a->max_rate_mib = (uint32_t)v;
		break;
	}
	case FL_UNTIL:
		if (errq_parse_since(val, now_ns, &a->until_ns)) {
			errq_snprintf(err, errlen,
				      "invalid --until '%s' (expected 30m, 1h, 2d or an RFC 3339 time such as "
				      "2026-11-25T18:00:00Z)",
				      val);
			return -1;
		}
		a->until_arg = val;
		break;
	case FL_SORT:
		if (cli_sort_parse(val, &a->sort)) {
			errq_snprintf(err, errlen, "invalid --sort '%s' (expected count, last_seen or first_seen)",
				      val);
			return -1;
		}
		break;
	}
	a->set |= f->bit;
	return 0;
}

/* The first usage error wins; parsing goes on so that a later --help still counts. */
#define FAIL(...)                                                                                      \
	do {                                                                                           \
		if (!failed)                                                                           \
			errq_snprintf(err, errlen, __VA_ARGS__);                                       \
		failed = true;                                                                         \
	} while (0)

/* The command named "family word", or NULL. */
static const struct cli_cmd *find_sub(const struct cli_cmd *cmds, size_t ncmds, const char *family,
				      const char *word)
{
	size_t fl = strlen(family);
	for (size_t k = 0; k < ncmds; k++)
		if (!strncmp(cmds[k].name, family, fl) && cmds[k].name[fl] == ' ' &&
		    !strcmp(cmds[k].name + fl + 1, word))
			return &cmds[k];
	return NULL;
}

int cli_cmd_family(const struct cli_cmd *cmds, size_t ncmds, const char *family, char *buf, size_t n)
{
	size_t fl = strlen(family), nsub = 0, o = 0;
	char list[256];
	list[0] = '\0';
	for (size_t k = 0; k < ncmds; k++) {
		if (strncmp(cmds[k].name, family, fl) || cmds[k].name[fl] != ' ')
			continue;
		if (o < sizeof(list))
			o += (size_t)errq_snprintf(list + o, sizeof(list) - o, "%s%s", nsub ? "|" : "",
						   cmds[k].name + fl + 1);
		nsub++;
	}
	if (buf && n)
		words_or(list, buf, n);
	return (int)nsub;
}

int cli_args_parse(struct cli_args *a, int argc, char *const *argv, const struct cli_cmd *cmds,
		   size_t ncmds, uint64_t now_ns, char *err, size_t errlen)
{
	bool failed = false, only_args = false, sub_next = false;
	const char *family = NULL; /* the first word, when it names a family of commands */
	char ferr[256], subs[160];

	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (only_args || s[0] != '-' || s[1] == '\0') {
			if (!a->cmd && !family) {
				a->cmd = cli_cmd_find(cmds, ncmds, s);
				if (cli_cmd_family(cmds, ncmds, s, NULL, 0)) {
					family = s;
					sub_next = true;
				} else if (!a->cmd) {
					FAIL("'%s' is not an errq command (see 'errq --help')", s);
				}
			} else if (sub_next && (sub_next = false, find_sub(cmds, ncmds, family, s))) {
				a->cmd = find_sub(cmds, ncmds, family, s);
			} else if (!a->cmd) {
				cli_cmd_family(cmds, ncmds, family, subs, sizeof(subs));
				FAIL("'%s %s' is not an errq command (expected %s)", family, s, subs);
			} else if (a->argc < CLI_MAX_ARGS) {
				a->argv[a->argc++] = s;
			} else {
				FAIL("too many arguments");
			}
			continue;
		}
		if (!strcmp(s, "--")) {
			only_args = true;
			continue;
		}
		const struct flag_def *f;
		const char *val = NULL;
		if (s[1] == '-') {
			const char *eq = strchr(s + 2, '=');
			size_t len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
			f = find_long(s + 2, len);
			if (eq)
				val = eq + 1;
		} else {
			f = find_short(s[1]);
			if (s[2])
				val = s + 2;
			if (f && val && !f->metavar)
				f = NULL; /* no bundling of short switches: "-hx" is not "-h -x" */
		}
		if (!f) {
			if (a->cmd)
				FAIL("unknown option '%s' (see 'errq %s --help')", s, a->cmd->name);
			else
				FAIL("unknown option '%s' (see 'errq --help')", s);
			continue;
		}
		if (f->metavar && !val) {
			if (i + 1 >= argc) {
				FAIL("option '%s' needs a value (%s)", s, f->metavar);
				continue;
			}
			val = argv[++i];
		} else if (!f->metavar && val) {
			FAIL("option '--%s' takes no value", f->name);
			continue;
		}
		if (apply(a, f, val, now_ns, ferr, sizeof(ferr)))
			FAIL("%s", ferr);
	}
	if (a->help || a->version)
		return 0;
	if (failed)
		return -1;
	if (family && !a->cmd) {
		cli_cmd_family(cmds, ncmds, family, subs, sizeof(subs));
		errq_snprintf(err, errlen, "'errq %s' needs a command: %s (see 'errq --help')", family, subs);
		return -1;
	}
	char aerr[96];
	if (cli_addr_check(a->addr, aerr, sizeof(aerr))) {
		errq_snprintf(err, errlen, "invalid %s '%s' (%s)", a->addr_set ? "--addr" : "ERRQ_ADDR", a->addr, aerr);
		return -1;
	}
	if (!a->tls_cert != !a->tls_key) {
		errq_snprintf(err, errlen, "%s (a client certificate needs its key)",
			      a->tls_cert ? "--cert needs --key" : "--key needs --cert");
		return -1;
	}
	if (!a->cmd)
		return 0; /* main prints the usage */

	unsigned extra = a->set & ~a->cmd->flags;
	for (size_t k = 0; k < NFLAGS && extra; k++) {
		if (flags[k].bit & extra) {
			errq_snprintf(err, errlen, "'errq %s' does not take --%s (see 'errq %s --help')", a->cmd->name,
				      flags[k].name, a->cmd->name);
			return -1;
		}
	}
	if (a->argc < a->cmd->min_args) {
		errq_snprintf(err, errlen, "'errq %s' needs %s", a->cmd->name,
			      a->cmd->args ? a->cmd->args : "arguments");
		return -1;
	}
	if (a->argc > a->cmd->max_args) {
		errq_snprintf(err, errlen, "unexpected argument '%s' (see 'errq %s --help')",
			      a->argv[a->cmd->max_args], a->cmd->name);
		return -1;
	}
	unsigned missing = a->cmd->required & ~a->set;
	for (size_t k = 0; k < NFLAGS && missing; k++) {
		if (flags[k].bit & missing) {
			errq_snprintf(err, errlen, "'errq %s' needs --%s %s", a->cmd->name, flags[k].name,
				      flags[k].metavar ? flags[k].metavar : "");
			return -1;
		}
	}
	if (a->set & CLI_F_STATUS) {
		const char *list = a->cmd->statuses ? a->cmd->statuses : "unresolved|resolved|ignored";
		if (cli_word_in(a->status, list)) {
			char want[128];
			words_or(list, want, sizeof(want));
			errq_snprintf(err, errlen, "invalid --status '%s' (expected %s)", a->status, want);
			return -1;
		}
	}
	if ((a->set & CLI_F_UNTIL) && !(a->set & CLI_F_SINCE)) {
		errq_snprintf(err, errlen, "--until needs --since (the start of the window)");
		return -1;
	}
	if ((a->set & CLI_F_UNTIL) && a->until_ns <= a->since_ns) {
		errq_snprintf(err, errlen, "--until '%s' is not after --since '%s'", a->until_arg, a->since_arg);
		return -1;
	}
	return 0;
}

/* "--since WHEN" or "-o, --output FORMAT" */
static void flag_synopsis(const struct flag_def *f, bool with_short, char *buf, size_t n)
{
	if (with_short && f->short_name)
		errq_snprintf(buf, n, "-%c, --%s%s%s", f->short_name, f->name, f->metavar ? " " : "",
			      f->metavar ? f->metavar : "");
	else
		errq_snprintf(buf, n, "--%s%s%s", f->name, f->metavar ? " " : "", f->metavar ? f->metavar : "");
}

#define HELP_WIDTH 79
#define HELP_INDENT 27 /* "  " + a 24-column synopsis + " " */

/* Writes text from column `col` on, wrapped at word boundaries to HELP_WIDTH, continuation
 * lines indented by HELP_INDENT. */
static void print_wrapped(FILE *f, const char *text, size_t col)
{
	const char *p = text;
	while (*p) {
		size_t word = strcspn(p, " ");
		if (col > HELP_INDENT && col + 1 + word > HELP_WIDTH) {
			fprintf(f, "\n%*s", HELP_INDENT, "");
			col = HELP_INDENT;
		} else if (col > HELP_INDENT) {
			fputc(' ', f);
			col++;
		}
		fwrite(p, 1, word, f);
		col += word;
		p += word;
		while (*p == ' ')
			p++;
	}
	fputc('\n', f);
}

static void print_flag(FILE *f, const struct flag_def *d, const struct cli_cmd *c)
{
	char syn[64];
	flag_synopsis(d, true, syn, sizeof(syn));
	if (strlen(syn) <= HELP_INDENT - 3)
		fprintf(f, "  %-*s ", HELP_INDENT - 3, syn);
	else
		fprintf(f, "  %s\n%*s", syn, HELP_INDENT, "");
	print_wrapped(f, flag_help(d, c), HELP_INDENT);
}

int cli_help_main(FILE *f, const struct cli_cmd *cmds, size_t ncmds)
{
	fprintf(f, "usage: errq [--addr HOST:PORT] [-o table|json|jsonl] [--no-color]\n"
		   "            [--timeout DURATION] [--token TOKEN] [--tls | --ca FILE]\n"
		   "            [--cert FILE --key FILE] <command> [<args>]\n\n"
		   "Query an errq collector: the failures services reported, grouped.\n\n"
		   "commands:\n");
	for (size_t k = 0; k < ncmds; k++)
		fprintf(f, "  %-*s %s\n", HELP_INDENT - 3, cmds[k].name, cmds[k].summary);
	fprintf(f, "\nglobal flags (before or after the command):\n");
	for (size_t k = 0; k < NFLAGS; k++)
		if (!flags[k].bit)
			print_flag(f, &flags[k], NULL);
	fprintf(f, "\nexit status: 0 ok, 1 usage, 2 collector unreachable or failed, 3 not found,\n"
		   "4 refused by authentication or role.\n"
		   "See 'errq help <command>' for a command's flags, and errq(1).\n");
	return ferror(f) ? -1 : 0;
}

int cli_help_cmd(FILE *f, const struct cli_cmd *c)
{
	char syn[64];
	char part[80];
	int indent = fprintf(f, "usage: errq %s", c->name), col = indent;
	for (size_t k = 0; k <= NFLAGS; k++) {
		if (k == NFLAGS) {
			if (!c->args)
				break;
			errq_snprintf(part, sizeof(part), "%s", c->args);
		} else if (flags[k].bit & c->flags) {
			flag_synopsis(&flags[k], false, syn, sizeof(syn));
			if (flags[k].bit & c->required)
				errq_snprintf(part, sizeof(part), "%s", syn);
			else if (flags[k].id == FL_MATCH || (flags[k].id == FL_SERVICE && c->flags & CLI_F_ROLE))
				errq_snprintf(part, sizeof(part), "[%s]...", syn);
			else
				errq_snprintf(part, sizeof(part), "[%s]", syn);
		} else {
			continue;
		}
		int len = (int)strlen(part);
		if (col + 1 + len > HELP_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		}
		col += fprintf(f, " %s", part);
	}
	fprintf(f, "\n\n%s\n", c->summary);
	if (c->description)
		fprintf(f, "\n%s", c->description);
	if (c->flags) {
		fprintf(f, "\nflags:\n");
		for (size_t k = 0; k < NFLAGS; k++)
			if (flags[k].bit & c->flags)
				print_flag(f, &flags[k], c);
	}
	fprintf(f, "\nglobal flags: --addr, -o, --no-color, --timeout, --token, --tls, --ca, --cert,\n"
		   "--key (see 'errq --help')\n");
	return ferror(f) ? -1 : 0;
}
