/* cli_cmds.c: the errq subcommand table (cli_commands) and `errq help`.
 *
 * The table below is the one place a subcommand is declared: its name, handler, one-line
 * help, positional arguments, the flags it takes and a longer description.  `errq --help`,
 * `errq help CMD`, `errq CMD --help` and the usage errors are all made from it (cli_args.c).
 * It lives apart from main (errq.c) so tests/unit/test_cli.c parses against this very table
 * and cannot drift from it.
 * To add a subcommand: write cmd_<name>.c with int cli_cmd_<name>(struct cli_ctx *), declare
 * it in cli.h, add a row here (and any new flag to cli_args.c's table), and document it in
 * docs/errq.1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errq_str.h"
#include "errq_banned.h"

static int cmd_help(struct cli_ctx *ctx);

const struct cli_cmd cli_commands[] = {
    {
	.name = "groups",
	.run = cli_cmd_groups,
	.summary = "list error groups, most recently seen first",
	.flags = CLI_F_SERVICE | CLI_F_ENV | CLI_F_TYPE | CLI_F_CODE | CLI_F_STATUS | CLI_F_SINCE | CLI_F_UNTIL |
		 CLI_F_SORT | CLI_F_LIMIT,
	.description =
	    "A group gathers the events that share a fingerprint.  TOTAL counts its events\n"
	    "of all time.  With --since (and --until) COUNT counts those received in that\n"
	    "window, with --env only that environment's, and groups without any are left\n"
	    "out; without either, COUNT equals TOTAL (and the table leaves COUNT out).\n"
	    "STATUS says 'regression' for a resolved group that saw a new event.\n"
	    "\n"
	    "Groups are per service and error type, not per task (one group holds the\n"
	    "failures of every task that raised it), so there is no --task here: use\n"
	    "'errq events --task GLOB' or 'errq tail --task GLOB'.\n"
	    "\n"
	    "On a terminal, LAST HOUR draws each group's last hour as a sparkline (5 minutes\n"
	    "a character; the first 100 rows, fetched within 1.5s).\n",
    },
    {
	.name = "group",
	.run = cli_cmd_group,
	.summary = "show one group: counts, a histogram, its latest event",
	.args = "<fingerprint>",
	.flags = CLI_F_ENV | CLI_F_SINCE,
	.min_args = 1,
	.max_args = 1,
	.description =
	    "Shows the group with its handled and unhandled counts, a per-minute sparkline\n"
	    "of the last hour (of the --since window, up to a day) and its newest stored\n"
	    "event with frames and details.  -o json prints one object: the group's fields\n"
	    "as 'errq groups' has them, 'histogram' {start, minutes: [count a minute]} and\n"
	    "'latest' (an event, or null).  Exits 3 when the collector has no such group.\n",
    },
    {
	.name = "events",
	.run = cli_cmd_events,
	.summary = "list stored events, newest first",
	.flags = CLI_F_SERVICE | CLI_F_ENV | CLI_F_TYPE | CLI_F_CODE | CLI_F_TASK | CLI_F_SINCE | CLI_F_LIMIT |
		 CLI_F_GROUP,
	.description =
	    "Events come newest first by the time the collector received them.  The table\n"
	    "shows that time relative to now and cuts the message to fit the terminal;\n"
	    "-o json and -o jsonl give every field, with RFC 3339 UTC times and\n"
	    "32-hex-digit event ids.  Exits 3 when --group names a group the collector\n"
	    "does not have.\n",
    },
    {
	.name = "event",
	.run = cli_cmd_event,
	.summary = "show one event with its frames and details",
	.args = "<event-id>",
	.min_args = 1,
	.max_args = 1,
	.description =
	    "The event id is 32 hex digits, as 'errq events' shows it (the UUID form with\n"
	    "dashes works too).  -o json prints one object, as 'errq events -o json' has\n"
	    "each.  Exits 3 when the collector has no such event (retention may have\n"
	    "deleted it).\n",
    },
    {
	.name = "tail",
	.run = cli_cmd_tail,
	.summary = "print events as the collector stores them",
	.flags = CLI_F_SERVICE | CLI_F_ENV | CLI_F_TYPE | CLI_F_CODE | CLI_F_TASK | CLI_F_GROUP | CLI_F_LIMIT,
	.description =
	    "Follows the events committed after it starts, one line each (time received,\n"
	    "fingerprint, service, environment, type, code, message); with -o json or\n"
	    "-o jsonl one JSON object a line, written as each arrives.  --limit N stops\n"
	    "after N events.  When the collector drops events because this tail reads\n"
	    "too slowly, a line on standard error says how many.\n"
	    "\n"
	    "Ctrl-C, SIGTERM or a closed pipe stop it with exit 0; it exits 2 when the\n"
	    "collector goes away ('collector at ADDR shut down; tail ended' when it was\n"
	    "stopped).  --timeout bounds only getting a connection.\n",
    },
    {
	.name = "resolve",
	.run = cli_cmd_resolve,
	.summary = "mark a group resolved",
	.args = "<fingerprint>",
	.min_args = 1,
	.max_args = 1,
	.description =
	    "A resolved group that sees a new event becomes unresolved again and is marked\n"
	    "a regression.  -o json prints the group.  Exits 3 when there is no such group.\n",
    },
    {
	.name = "ignore",
	.run = cli_cmd_ignore,
	.summary = "mark a group ignored",
	.args = "<fingerprint>",
	.min_args = 1,
	.max_args = 1,
	.description =
	    "An ignored group keeps counting its events; new events do not change its\n"
	    "status.  -o json prints the group.  Exits 3 when there is no such group.\n",
    },
    {
	.name = "unresolve",
	.run = cli_cmd_unresolve,
	.summary = "mark a group unresolved again",
	.args = "<fingerprint>",
	.min_args = 1,
	.max_args = 1,
	.description = "Undoes 'errq resolve' or 'errq ignore'.  -o json prints the group.\n",
    },
    {
	.name = "explain",
	.run = cli_cmd_explain,
	.summary = "show how an event's fingerprint was made",
	.args = "<event-id>",
	.min_args = 1,
	.max_args = 1,
	.description =
	    "Prints the basis of the event's fingerprint (the client's fingerprint, the\n"
	    "innermost application frames, or the normalized message), the components\n"
	    "hashed in order, and whether the collector's current grouping algorithm still\n"
	    "computes the same fingerprint.  -o json prints one object: event_id,\n"
	    "fingerprint, grouping_version, basis, components, recomputed, agrees, event.\n",
    },
    {
	.name = "status",
	.run = cli_cmd_status,
	.summary = "show the collector's version, uptime, storage and queues",
	.description =
	    "Version and name, uptime, stored events and groups, database size, durability,\n"
	    "the ingest queue, parked and active streams, tail subscribers, memory, and a\n"
	    "note when the collector's clock differs from this host's.  -o json prints one\n"
	    "object with the raw numbers.\n",
    },
    {
	.name = "circuits",
	.run = cli_cmd_circuits,
	.summary = "list alert circuits: per rule and key, their state and window",
	.flags = CLI_F_RULE | CLI_F_STATE,
	.description =
	    "A rule splits the failures it matches into circuits by its group_by key; each\n"
	    "circuit counts failures in a sliding window and trips (open: the alert fires),\n"
	    "probes (half_open) and closes again (the alert resolves).  FAILURES counts the\n"
	    "failures in the window now; NEXT is when the next state change is due (open:\n"
	    "the probe starts; half_open: the probe ends).  '(stale)' marks a circuit whose\n"
	    "rule was changed or removed since: it stays until its alert resolves.\n"
	    "\n"
	    "-o json prints an array of {rule, key (an object keyed by the group_by\n"
	    "fields), key_text, state, since, failures_in_window, next_transition_at,\n"
	    "window_seconds, ...}.\n",
    },
    {
	.name = "explain-circuit",
	.run = cli_cmd_explain_circuit,
	.summary = "show a circuit now and the history of its transitions",
	.args = "<rule> [<key>]",
	.flags = CLI_F_LIMIT,
	.min_args = 1,
	.max_args = 2,
	.description =
	    "The key is written field=value,field=value (fields in any order; '\\' escapes\n"
	    "',' and '\\' in values), as 'errq circuits' shows it; leave it out for a rule\n"
	    "without group_by.  Prints the circuit's state, failures in its window and its\n"
	    "next transition, then each transition with its time, from -> to, reason and\n"
	    "window count (the newest 100, or --limit, oldest first).  Exits 3 when there\n"
	    "is no such rule.\n",
    },
    {
	.name = "alerts",
	.run = cli_cmd_alerts,
	.summary = "list alerts, newest first",
	.flags = CLI_F_STATUS | CLI_F_RULE | CLI_F_SINCE | CLI_F_LIMIT,
	.statuses = "firing|resolved",
	.description =
	    "An alert is one incident of a circuit: it fires when the circuit opens and\n"
	    "resolves when it closes.  ALERT is a short id (the last 12 hex digits of the\n"
	    "alert id) that 'errq alert' and 'errq alerts replay' take too.  DELIVERY shows\n"
	    "each notifier's latest notice as notifier:status, with the attempts made in\n"
	    "parentheses when more than one.  --since keeps the alerts opened or updated\n"
	    "since then.\n",
    },
    {
	.name = "alert",
	.run = cli_cmd_alert,
	.summary = "show one alert with every delivery and its sample event",
	.args = "<alert-id>",
	.min_args = 1,
	.max_args = 1,
	.description =
	    "The id is the 32 hex digits of the alert id or the short id 'errq alerts'\n"
	    "shows.  -o json prints one object, as 'errq alerts -o json' has each, with\n"
	    "every delivery.  Exits 3 when there is no such alert.\n",
    },
    {
	.name = "alerts replay",
	.run = cli_cmd_alerts_replay,
	.summary = "send an alert's dead-lettered deliveries again",
	.args = "<alert-id>",
	.min_args = 1,
	.max_args = 1,
	.description =
	    "Deliveries that used up their attempts are dead-lettered; this queues them\n"
	    "again, each with a fresh set of attempts.  Prints how many were resent.  Exits\n"
	    "3 when there is no such alert, and also when it has no dead delivery.\n",
    },
    {
	.name = "rules list",
	.run = cli_cmd_rules_list,
	.summary = "list the alert rules in force, with their circuits",
	.description =
	    "MATCH is the rule's match entries as field=glob; TRIP when a circuit trips;\n"
	    "CIRCUITS the circuits the rule has now, OPEN those not closed.\n",
    },
    {
	.name = "rules reload",
	.run = cli_cmd_rules_reload,
	.summary = "make the collector read its rules file again",
	.description =
	    "Same as SIGHUP.  Rules whose match, group_by and trip are unchanged keep\n"
	    "their circuits; the circuits of changed and removed rules close (their alerts\n"
	    "resolve).  A file with an error changes nothing: the error is printed and\n"
	    "errq exits 1.\n",
    },
    {
	.name = "rules check",
	.run = cli_cmd_rules_check,
	.summary = "check a rules file without a collector",
	.args = "<file>",
	.min_args = 1,
	.max_args = 1,
	.description =
	    "Reads the rules: and notifiers: sections of FILE with the collector's own\n"
	    "parser and prints 'FILE: N rules, M notifiers: ok', or the first error with\n"
	    "its line and exits 1.  Contacts no collector.\n",
    },
    {
	.name = "silence add",
	.run = cli_cmd_silence_add,
	.summary = "silence a rule's alerts for a while",
	.flags = CLI_F_RULE | CLI_F_MATCH | CLI_F_FOR | CLI_F_COMMENT,
	.required = CLI_F_RULE | CLI_F_FOR | CLI_F_COMMENT,
	.description =
	    "While a silence is active, the alerts of its rule (of the circuits whose key\n"
	    "matches every --match, all of them without one) are recorded but not\n"
	    "delivered.  --match FIELD=GLOB names a group_by field of the rule.  The\n"
	    "silence records who made it (user@host).  Exits 3 when the rule is not in\n"
	    "force (the message lists those that are).\n",
    },
    {
	.name = "silence list",
	.run = cli_cmd_silence_list,
	.summary = "list the active silences (--all: also those that ended)",
	.flags = CLI_F_ALL,
    },
    {
	.name = "silence expire",
	.run = cli_cmd_silence_expire,
	.summary = "end a silence now",
	.args = "<silence-id>",
	.min_args = 1,
	.max_args = 1,
	.description = "Exits 3 when there is no such silence, or it has already ended.\n",
    },
    {
	.name = "token new",
	.run = cli_cmd_token_new,
	.summary = "make a bearer token and its entry for errqd's credentials",
	.flags = CLI_F_NAME | CLI_F_ROLE | CLI_F_SERVICE,
	.description =
	    "Prints a new random token (errq_ and 43 base64url characters: 256 random\n"
	    "bits) and the entry to paste under 'credentials:' in errqd's config file,\n"
	    "which holds only the token's SHA-256.  --role is read (the default), admin\n"
	    "(which may also read) or ingest, which needs --service: the services the\n"
	    "token may report, repeated, globs allowed ('pay*'; '*' for all).  -o json\n"
	    "prints token, name, token_sha256, role and services as one object.  Contacts\n"
	    "no collector; see docs/security.md.\n",
    },
    {
	.name = "admin backup",
	.run = cli_cmd_admin_backup,
	.summary = "make the collector write a consistent copy of its database",
	.args = "<path>",
	.flags = CLI_F_FORCE | CLI_F_MAX_RATE,
	.min_args = 1,
	.max_args = 1,
	.description =
	    "PATH is an absolute path on the collector's filesystem (the machine or\n"
	    "container errqd runs in), not this host's.  The collector copies its database\n"
	    "from a snapshot while it goes on ingesting, writes PATH.tmp, checks it\n"
	    "(PRAGMA quick_check), syncs it and renames it to PATH; errq then prints the\n"
	    "size, pages, events in the copy and how long it took (-o json: one object).\n"
	    "--max-rate N paces the copy to N MiB a second (the snapshot is held longer and\n"
	    "the WAL grows meanwhile).  One backup at a time.  Refused: a relative path or\n"
	    "the live database (exit 1); an existing PATH, PATH.tmp or PATH-wal without\n"
	    "--force (exit 1); a missing or unwritable directory (exit 3); a backup already\n"
	    "running (exit 2).  Without --timeout errq waits up to 61 minutes (the collector\n"
	    "gives up after an hour).  To restore: stop errqd, replace its database file\n"
	    "with the copy, remove the old -wal and -shm files, start errqd.\n",
    },
    {
	.name = "help",
	.run = cmd_help,
	.summary = "show help for a command",
	.args = "[<command>]",
	.max_args = 2,
    },
};
const size_t cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);

int cli_help_to(FILE *f, const struct cli_cmd *c)
{
	int rc = c ? cli_help_cmd(f, c) : cli_help_main(f, cli_commands, cli_ncommands);
	if (fflush(f) || rc)
		return cli_output_error(errno);
	return CLI_EXIT_OK;
}

#define CLI_CMD_NAME_MAX 64

static int cmd_help(struct cli_ctx *ctx)
{
	char name[CLI_CMD_NAME_MAX];
	if (!ctx->args->argc)
		return cli_help_to(stdout, NULL);
	/* "help rules list": a command of a family */
	errq_snprintf(name, sizeof(name), "%s%s%s", ctx->args->argv[0], ctx->args->argc > 1 ? " " : "",
		      ctx->args->argc > 1 ? ctx->args->argv[1] : "");
	const struct cli_cmd *c = cli_cmd_find(ctx->cmds, ctx->ncmds, name);
	if (c)
		return cli_help_to(stdout, c);
	if (ctx->args->argc == 1 && cli_cmd_family(ctx->cmds, ctx->ncmds, name, NULL, 0)) {
		/* "help rules": each of the family */
		size_t fl = strlen(name);
		int rc = CLI_EXIT_OK;
		bool first = true;
		for (size_t k = 0; k < ctx->ncmds && !rc; k++) {
			if (strncmp(ctx->cmds[k].name, name, fl) || ctx->cmds[k].name[fl] != ' ')
				continue;
			if (!first)
				fputc('\n', stdout);
			first = false;
			rc = cli_help_to(stdout, &ctx->cmds[k]);
		}
		return rc;
	}
	cli_error("'%s' is not an errq command (see 'errq --help')", name);
	return CLI_EXIT_USAGE;
}
