/* errq.c: main of the errq command-line tool: `errq [global flags] <command> [flags]`.
 * The subcommands are declared in one table, cli_commands (cli_cmds.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "errq_time.h"
#include "errq_banned.h"

int main(int argc, char **argv)
{
	struct cli_args a;
	struct cli_ctx ctx;
	char err[512];
	uint64_t now = errq_now_ns();
	int rc;

	cli_args_init(&a, getenv("ERRQ_ADDR"), getenv("NO_COLOR"));
	const char *env_token = getenv("ERRQ_TOKEN"); /* --token overrides it */
	if (env_token && *env_token) {
		if (cli_token_valid(env_token)) {
			cli_error("invalid ERRQ_TOKEN (1 to %d printable ASCII bytes)", CLI_TOKEN_MAX);
			return CLI_EXIT_USAGE;
		}
		a.token = env_token;
	}
	if (cli_args_parse(&a, argc, argv, cli_commands, cli_ncommands, now, err, sizeof(err))) {
		cli_error("%s", err);
		return CLI_EXIT_USAGE;
	}
	if (a.help)
		return cli_help_to(stdout, a.cmd);
	if (a.version) {
		printf("errq %s\n", ERRQ_VERSION_STRING);
		return fflush(stdout) ? cli_output_error(errno) : CLI_EXIT_OK;
	}
	if (!a.cmd) {
		cli_help_to(stderr, NULL);
		return CLI_EXIT_USAGE;
	}
	cli_ctx_init(&ctx, &a, cli_commands, cli_ncommands, now);
	rc = a.cmd->run(&ctx);
	cli_ctx_release(&ctx);
	return rc;
}
