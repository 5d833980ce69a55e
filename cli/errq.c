/* errq.c: the errq command-line tool: `errq [global flags] <command> [flags]`.
 *
 * The table below is the one place a subcommand is declared: its name, handler, one-line
 * help, positional arguments, the flags it takes and a longer description.  `errq --help`,
 * `errq help CMD`, `errq CMD --help` and the usage errors are all made from it (cli_args.c).
 * To add a subcommand: write cmd_<name>.c with int cli_cmd_<name>(struct cli_ctx *), declare
 * it in cli.h, add a row here (and any new flag to cli_args.c's table), and document it in
 * docs/errq.1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "errq_time.h"
#include "errq_banned.h"

static int cmd_help(struct cli_ctx *ctx);

static const struct cli_cmd commands[] = {
    {
	.name = "groups",
	.run = cli_cmd_groups,
	.summary = "list error groups, most recently seen first",
	.flags = CLI_F_SERVICE | CLI_F_ENV | CLI_F_TYPE | CLI_F_STATUS | CLI_F_SINCE | CLI_F_UNTIL | CLI_F_SORT |
		 CLI_F_LIMIT,
	.description =
	    "A group gathers the events that share a fingerprint.  TOTAL counts its events\n"
	    "of all time.  With --since (and --until) COUNT counts those received in that\n"
	    "window, with --env only that environment's, and groups without any are left\n"
	    "out; without either, COUNT equals TOTAL (and the table leaves COUNT out).\n"
	    "STATUS says 'regression' for a resolved group that saw a new event.\n"
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
	.flags = CLI_F_SERVICE | CLI_F_ENV | CLI_F_SINCE | CLI_F_LIMIT | CLI_F_GROUP,
	.description =
	    "Events come newest first by the time the collector received them.  The table\n"
	    "shows that time relative to now and cuts the message to fit the terminal;\n"
	    "-o json and -o jsonl give every field, with RFC 3339 UTC times and\n"
	    "32-hex-digit event ids.\n",
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
	.flags = CLI_F_SERVICE | CLI_F_ENV | CLI_F_TYPE | CLI_F_GROUP | CLI_F_LIMIT,
	.description =
	    "Follows the events committed after it starts, one line each (time received,\n"
	    "fingerprint, service, environment, type, code, message); with -o json or\n"
	    "-o jsonl one JSON object a line, written as each arrives.  --limit N stops\n"
	    "after N events.  When the collector drops events because this tail reads\n"
	    "too slowly, a line on standard error says how many.\n"
	    "\n"
	    "Ctrl-C, SIGTERM or a closed pipe stop it with exit 0; it exits 2 when the\n"
	    "collector goes away.  --timeout bounds only getting a connection.\n",
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
	.name = "help",
	.run = cmd_help,
	.summary = "show help for a command",
	.args = "[<command>]",
	.max_args = 1,
    },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int help_to(FILE *f, const struct cli_cmd *c)
{
	int rc = c ? cli_help_cmd(f, c) : cli_help_main(f, commands, NCOMMANDS);
	if (fflush(f) || rc)
		return cli_output_error(errno);
	return CLI_EXIT_OK;
}

static int cmd_help(struct cli_ctx *ctx)
{
	if (!ctx->args->argc)
		return help_to(stdout, NULL);
	const char *name = ctx->args->argv[0];
	const struct cli_cmd *c = cli_cmd_find(ctx->cmds, ctx->ncmds, name);
	if (!c) {
		cli_error("'%s' is not an errq command (see 'errq --help')", name);
		return CLI_EXIT_USAGE;
	}
	return help_to(stdout, c);
}

int main(int argc, char **argv)
{
	struct cli_args a;
	struct cli_ctx ctx;
	char err[512];
	uint64_t now = errq_now_ns();
	int rc;

	cli_args_init(&a, getenv("ERRQ_ADDR"), getenv("NO_COLOR"));
	if (cli_args_parse(&a, argc, argv, commands, NCOMMANDS, now, err, sizeof(err))) {
		cli_error("%s", err);
		return CLI_EXIT_USAGE;
	}
	if (a.help)
		return help_to(stdout, a.cmd);
	if (a.version) {
		printf("errq %s\n", ERRQ_VERSION_STRING);
		return fflush(stdout) ? cli_output_error(errno) : CLI_EXIT_OK;
	}
	if (!a.cmd) {
		help_to(stderr, NULL);
		return CLI_EXIT_USAGE;
	}
	cli_ctx_init(&ctx, &a, commands, NCOMMANDS, now);
	rc = a.cmd->run(&ctx);
	cli_ctx_release(&ctx);
	return rc;
}
