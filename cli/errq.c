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
	.name = "events",
	.run = cli_cmd_events,
	.summary = "list stored events, newest first",
	.flags = CLI_F_SERVICE | CLI_F_SINCE | CLI_F_LIMIT | CLI_F_GROUP,
	.description =
	    "Events come newest first by the time the collector received them.  The table\n"
	    "shows that time relative to now and cuts the message to fit the terminal;\n"
	    "-o json and -o jsonl give every field, with RFC 3339 UTC times and\n"
	    "32-hex-digit event ids.\n",
    },
    {
	.name = "groups",
	.run = cli_cmd_groups,
	.summary = "list error groups, most recently seen first",
	.flags = CLI_F_SERVICE | CLI_F_SINCE | CLI_F_LIMIT,
	.description =
	    "A group gathers the events that share a fingerprint.  TOTAL counts its events\n"
	    "of all time.  With --since, COUNT counts those received since then and groups\n"
	    "without any are left out; without it, count equals total (and the table leaves\n"
	    "COUNT out).\n",
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
