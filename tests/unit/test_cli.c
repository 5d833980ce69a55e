/* test_cli.c: the pure parts of the errq CLI (cli/cli_args.c, cli/cli_fmt.c): argument
 * parsing (filters, globs, event ids), exit codes, terminal text, relative times, sizes,
 * sparklines, column fitting, tables, detail views, streamed lines, key=value, and the
 * alerting commands' parts: command families, circuit keys as JSON, silence matchers,
 * alert ids, NEXT and DELIVERY cells. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli_args.h"
#include "cli_fmt.h"
#include "errq_time.h"
#include "errq_banned.h"

/* 2026-11-25T18:03:11.482Z */
#define NOW_NS (1795629791482ULL * ERRQ_NS_PER_MS)
#define SEC ERRQ_NS_PER_SEC

/* ---- argument parsing ---- */

/* errq's own table (cli/cli_cmds.c): a table of the test's own had drifted from it */
#define cmds cli_commands
#define NCMDS cli_ncommands


static char err[512];

/* Parses a NULL-terminated argument list (after "errq"). */
static int parse_env(struct cli_args *a, const char *env_addr, const char *env_no_color, ...)
{
	char *argv[32] = {"errq"};
	int argc = 1;
	va_list ap;
	va_start(ap, env_no_color);
	for (const char *s; (s = va_arg(ap, const char *)) && argc < 31;)
		argv[argc++] = (char *)s;
	va_end(ap);
	cli_args_init(a, env_addr, env_no_color);
	err[0] = '\0';
	return cli_args_parse(a, argc, argv, cmds, NCMDS, NOW_NS, err, sizeof(err));
}
#define parse(a, ...) parse_env(a, NULL, NULL, __VA_ARGS__, NULL)

static void test_args_defaults(void **state)
{
	struct cli_args a;
	assert_int_equal(parse(&a, "events"), 0);
	assert_string_equal(a.cmd->name, "events");
	assert_string_equal(a.addr, "127.0.0.1:4770");
	assert_int_equal(a.output, CLI_OUT_TABLE);
	assert_false(a.output_set);
	assert_false(a.no_color);
	assert_int_equal(a.timeout_ms, 5000);
	assert_int_equal(a.limit, 100);
	assert_true(a.limit >= 50);
	assert_int_equal(a.since_ns, 0);
	assert_string_equal(a.service, "");
	assert_string_equal(a.group, "");
	assert_int_equal(a.argc, 0);
}

static void test_args_env(void **state)
{
	struct cli_args a;
	assert_int_equal(parse_env(&a, "10.0.0.1:1", "1", "groups", NULL), 0);
	assert_string_equal(a.addr, "10.0.0.1:1");
	assert_true(a.no_color);
	/* empty values count as unset */
	assert_int_equal(parse_env(&a, "", "", "groups", NULL), 0);
	assert_string_equal(a.addr, "127.0.0.1:4770");
	assert_false(a.no_color);
	/* the flag beats the environment */
	assert_int_equal(parse_env(&a, "10.0.0.1:1", NULL, "--addr", "h:2", "groups", NULL), 0);
	assert_string_equal(a.addr, "h:2");
}

static void test_args_global_anywhere(void **state)
{
	struct cli_args a;
	assert_int_equal(parse(&a, "events", "-o", "json"), 0);
	assert_int_equal(a.output, CLI_OUT_JSON);
	assert_true(a.output_set);
	assert_int_equal(parse(&a, "-o", "json", "events"), 0);
	assert_int_equal(a.output, CLI_OUT_JSON);
	assert_string_equal(a.cmd->name, "events");
	assert_int_equal(parse(&a, "-ojsonl", "groups"), 0);
	assert_int_equal(a.output, CLI_OUT_JSONL);
	assert_int_equal(parse(&a, "groups", "--output=table", "--no-color"), 0);
	assert_int_equal(a.output, CLI_OUT_TABLE);
	assert_true(a.no_color);
	assert_int_equal(parse(&a, "--addr=x:1", "events", "--timeout", "250ms"), 0);
	assert_string_equal(a.addr, "x:1");
	assert_int_equal(a.timeout_ms, 250);
	assert_int_equal(parse(&a, "events", "--addr", "y:2", "--timeout=3"), 0);
	assert_string_equal(a.addr, "y:2");
	assert_int_equal(a.timeout_ms, 3000);
}

static void test_args_command_flags(void **state)
{
	struct cli_args a;
	assert_int_equal(parse(&a, "events", "--service", "billing", "--since", "1h", "--limit", "7", "--group",
			       "abc"),
			 0);
	assert_string_equal(a.service, "billing");
	assert_int_equal(a.since_ns, NOW_NS - 3600 * SEC);
	assert_string_equal(a.since_arg, "1h");
	assert_int_equal(a.limit, 7);
	assert_string_equal(a.group, "abc");
	assert_int_equal(a.set, CLI_F_SERVICE | CLI_F_SINCE | CLI_F_LIMIT | CLI_F_GROUP);

	assert_int_equal(parse(&a, "groups", "--since=30m"), 0);
	assert_int_equal(a.since_ns, NOW_NS - 1800 * SEC);
	assert_int_equal(parse(&a, "groups", "--since", "2d"), 0);
	assert_int_equal(a.since_ns, NOW_NS - 2 * 86400 * SEC);
	assert_int_equal(parse(&a, "groups", "--since", "2026-11-25T18:00:00Z"), 0);
	assert_int_equal(a.since_ns, 1795629600ULL * SEC);
	/* a command flag before the command is taken too */
	assert_int_equal(parse(&a, "--service", "s", "events"), 0);
	assert_string_equal(a.service, "s");
}

static void test_args_usage_errors(void **state)
{
	struct cli_args a;
	assert_int_equal(parse(&a, "evnets"), -1);
	assert_string_equal(err, "'evnets' is not an errq command (see 'errq --help')");
	assert_int_equal(parse(&a, "events", "--bogus"), -1);
	assert_string_equal(err, "unknown option '--bogus' (see 'errq events --help')");
	assert_int_equal(parse(&a, "-x", "events"), -1);
	assert_string_equal(err, "unknown option '-x' (see 'errq --help')");
	assert_int_equal(parse(&a, "events", "--since", "yesterday"), -1);
	assert_non_null(strstr(err, "invalid --since 'yesterday'"));
	assert_int_equal(parse(&a, "events", "--since", "1x"), -1);
	assert_int_equal(parse(&a, "events", "-o", "yaml"), -1);
	assert_string_equal(err, "unknown output format 'yaml' (expected table, json or jsonl)");
	assert_int_equal(parse(&a, "events", "--limit", "0"), -1);
	assert_int_equal(parse(&a, "events", "--limit", "-5"), -1);
	assert_int_equal(parse(&a, "events", "--limit", "10x"), -1);
	assert_int_equal(parse(&a, "events", "--limit", "100001"), -1);
	assert_int_equal(parse(&a, "events", "--limit", "100000"), 0);
	assert_int_equal(parse(&a, "events", "--timeout", "0s"), -1);
	assert_int_equal(parse(&a, "events", "--timeout", "soon"), -1);
	assert_int_equal(parse(&a, "events", "--limit"), -1);
	assert_string_equal(err, "option '--limit' needs a value (N)");
	assert_int_equal(parse(&a, "events", "--no-color=yes"), -1);
	assert_int_equal(parse(&a, "events", "--addr="), -1);
	assert_int_equal(parse(&a, "groups", "--group", "abc"), -1);
	assert_string_equal(err, "'errq groups' does not take --group (see 'errq groups --help')");
	assert_int_equal(parse(&a, "events", "extra"), -1);
	assert_string_equal(err, "unexpected argument 'extra' (see 'errq events --help')");
	assert_int_equal(parse(&a, "group"), -1);
	assert_string_equal(err, "'errq group' needs <fingerprint>");
	/* the first error is the one reported */
	assert_int_equal(parse(&a, "events", "--bogus", "-o", "yaml"), -1);
	assert_string_equal(err, "unknown option '--bogus' (see 'errq events --help')");
}

static void test_args_backup(void **state)
{
	struct cli_args a;
	assert_int_equal(parse(&a, "admin", "backup", "/var/backups/errq.db"), 0);
	assert_false(a.force);
	assert_int_equal(a.max_rate_mib, 0);
	assert_false(a.timeout_set);
	assert_int_equal(parse(&a, "admin", "backup", "--force", "/b.db", "--max-rate", "50", "--timeout", "2h"), 0);
	assert_true(a.force);
	assert_int_equal(a.max_rate_mib, 50);
	assert_true(a.timeout_set);
	assert_string_equal(a.argv[0], "/b.db");
	assert_int_equal(parse(&a, "admin", "backup", "/b.db", "--max-rate", "0"), -1);
	assert_string_equal(err, "invalid --max-rate '0' (expected MiB a second, 1 to 1048576)");
	assert_int_equal(parse(&a, "admin", "backup", "/b.db", "--max-rate", "5M"), -1);
	assert_int_equal(parse(&a, "admin", "backup", "/b.db", "--max-rate", "1048577"), -1);
	assert_int_equal(parse(&a, "admin", "backup"), -1);
	assert_string_equal(err, "'errq admin backup' needs <path>");
	assert_int_equal(parse(&a, "events", "--force"), -1);
}

static void test_args_positional_and_help(void **state)
{
	struct cli_args a;
	assert_int_equal(parse(&a, "group", "0123abcd"), 0);
	assert_int_equal(a.argc, 1);
	assert_string_equal(a.argv[0], "0123abcd");
	assert_int_equal(parse(&a, "group", "--", "-odd"), 0);
	assert_string_equal(a.argv[0], "-odd");
	assert_int_equal(parse(&a, "help", "groups"), 0);
	assert_string_equal(a.cmd->name, "help");
	assert_string_equal(a.argv[0], "groups");

	/* --help anywhere wins over other mistakes */
	assert_int_equal(parse(&a, "groups", "--help"), 0);
	assert_true(a.help);
	assert_string_equal(a.cmd->name, "groups");
	assert_int_equal(parse(&a, "-h"), 0);
	assert_true(a.help);
	assert_null(a.cmd);
	assert_int_equal(parse(&a, "events", "--bogus", "--help"), 0);
	assert_true(a.help);
	assert_int_equal(parse(&a, "--version"), 0);
	assert_true(a.version);
	/* no command: not an error for the parser (main prints the usage) */
	assert_int_equal(parse(&a, "-o", "json"), 0);
	assert_null(a.cmd);
}

static void test_help_text(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(cli_help_cmd(f, cli_cmd_find(cmds, NCMDS, "events")), 0);
	fclose(f);
	/* issue 15: --code and --task beside --type */
	assert_non_null(strstr(buf, "usage: errq events [--service NAME] [--env NAME] [--type GLOB] [--code GLOB]\n"
				    "                   [--task GLOB] [--group FINGERPRINT] [--since WHEN]\n"
				    "                   [--limit N]\n"));
	assert_non_null(strstr(buf, "  --limit N"));
	/* help lines are wrapped */
	for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1)
		assert_true(nl - line <= 79);
	free(buf);

	f = open_memstream(&buf, &len);
	assert_int_equal(cli_help_main(f, cmds, NCMDS), 0);
	fclose(f);
	assert_non_null(strstr(buf, "  events"));
	assert_non_null(strstr(buf, "  groups"));
	assert_non_null(strstr(buf, "-o, --output FORMAT"));
	assert_null(strstr(buf, "--service")); /* command flags are in the commands' help */
	free(buf);

	/* every flag a command declares is in its usage line and its flag list, once */
	f = open_memstream(&buf, &len);
	assert_int_equal(cli_help_cmd(f, cli_cmd_find(cmds, NCMDS, "groups")), 0);
	fclose(f);
	const char *want[] = {"--service NAME", "--env NAME", "--type GLOB", "--status STATUS", "--since WHEN",
			      "--until WHEN", "--sort KEY", "--limit N"};
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		char bracket[64];
		errq_snprintf(bracket, sizeof(bracket), "[%s]", want[k]);
		assert_non_null(strstr(buf, bracket));
		char *first = strstr(buf, bracket), *flag = strstr(first + 1, want[k]);
		assert_non_null(flag);                          /* in the flag list */
		assert_null(strstr(flag + 1, bracket));         /* not twice in the usage */
	}
	assert_null(strstr(buf, "--group")); /* not declared by groups */
	for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1)
		assert_true(nl - line <= 79);
	free(buf);
}

/* Each command's help describes its own flags only (issue 15): no line about what a flag
 * means to another command. */
static void test_help_own_flags(void **state)
{
	static const char *const others[] = {"tail:", "explain-circuit:", "token new:", "silence add:",
					     "groups unresolved", "alerts firing"};
	for (size_t i = 0; i < NCMDS; i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		assert_int_equal(cli_help_cmd(f, &cmds[i]), 0);
		fclose(f);
		for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++)
			if (strstr(buf, others[k]))
				fail_msg("'errq %s --help' has '%s':\n%s", cmds[i].name, others[k], buf);
		const char *want = NULL, *not = NULL;
		if (!strcmp(cmds[i].name, "tail"))
			want = "stop after N events", not = "rows";
		else if (!strcmp(cmds[i].name, "token new"))
			want = "the token may report", not = "only this service";
		else if (!strcmp(cmds[i].name, "groups"))
			want = "only groups with this status: unresolved,", not = "firing";
		else if (!strcmp(cmds[i].name, "alerts"))
			want = "firing or resolved", not = "ignored";
		else if (!strcmp(cmds[i].name, "explain-circuit"))
			want = "the newest N transitions", not = "100000";
		if (want && !strstr(buf, want))
			fail_msg("'errq %s --help' lacks '%s':\n%s", cmds[i].name, want, buf);
		if (not && strstr(buf, not))
			fail_msg("'errq %s --help' has '%s':\n%s", cmds[i].name, not, buf);
		free(buf);
	}
}

static void test_args_filters(void **state)
{
	struct cli_args a;
	assert_int_equal(parse(&a, "groups", "--env", "prod", "--type", "Timeout*", "--status", "resolved",
			       "--sort", "count", "--since", "2h", "--until", "1h"),
			 0);
	assert_string_equal(a.env, "prod");
	assert_string_equal(a.type_glob, "Timeout*");
	assert_string_equal(a.status, "resolved");
	assert_int_equal(a.sort, CLI_SORT_COUNT);
	assert_int_equal(a.since_ns, NOW_NS - 2 * 3600 * SEC);
	assert_int_equal(a.until_ns, NOW_NS - 3600 * SEC);
	assert_int_equal(a.set, CLI_F_ENV | CLI_F_TYPE | CLI_F_STATUS | CLI_F_SORT | CLI_F_SINCE | CLI_F_UNTIL);

	/* defaults: nothing filtered, last seen first */
	assert_int_equal(parse(&a, "groups"), 0);
	assert_string_equal(a.env, "");
	assert_string_equal(a.type_glob, "");
	assert_string_equal(a.status, "");
	assert_int_equal(a.sort, CLI_SORT_LAST_SEEN);
	assert_int_equal(a.until_ns, 0);

	assert_int_equal(parse(&a, "groups", "--sort=first-seen"), 0);
	assert_int_equal(a.sort, CLI_SORT_FIRST_SEEN);
	assert_int_equal(parse(&a, "groups", "--sort", "last_seen"), 0);
	assert_int_equal(a.sort, CLI_SORT_LAST_SEEN);
	assert_int_equal(parse(&a, "groups", "--sort", "total"), -1);
	assert_string_equal(err, "invalid --sort 'total' (expected count, last_seen or first_seen)");
	assert_int_equal(parse(&a, "groups", "--status", "open"), -1);
	assert_string_equal(err, "invalid --status 'open' (expected unresolved, resolved or ignored)");
	assert_int_equal(parse(&a, "groups", "--status", "Resolved"), -1);

	/* --until: only with --since, and after it */
	assert_int_equal(parse(&a, "groups", "--until", "1h"), -1);
	assert_string_equal(err, "--until needs --since (the start of the window)");
	assert_int_equal(parse(&a, "groups", "--since", "1h", "--until", "2h"), -1);
	assert_string_equal(err, "--until '2h' is not after --since '1h'");
	assert_int_equal(parse(&a, "groups", "--since", "1h", "--until", "1h"), -1);
	assert_int_equal(parse(&a, "groups", "--until", "2026-11-25T18:00:00Z", "--since", "2026-11-25T17:00:00Z"), 0);
	assert_int_equal(a.until_ns - a.since_ns, 3600 * SEC);
	assert_int_equal(parse(&a, "groups", "--since", "1h", "--until", "soon"), -1);
	assert_non_null(strstr(err, "invalid --until 'soon'"));

	/* a command only takes the filters it declares */
	assert_int_equal(parse(&a, "events", "--status", "resolved"), -1);
	assert_string_equal(err, "'errq events' does not take --status (see 'errq events --help')");
	/* events takes the filters of groups and tail (issue 15) */
	assert_int_equal(parse(&a, "events", "--type", "Timeout*", "--env", "prod", "--service", "api"), 0);
	assert_string_equal(a.type_glob, "Timeout*");
	assert_int_equal(parse(&a, "tail", "--since", "1h"), -1);
	assert_string_equal(err, "'errq tail' does not take --since (see 'errq tail --help')");
	assert_int_equal(parse(&a, "tail", "--group", "9a819d75c2334547", "--type", "*Error"), 0);
	assert_string_equal(a.group, "9a819d75c2334547");
	assert_int_equal(parse(&a, "group", "--env", "prod", "abc"), 0);
	assert_string_equal(a.argv[0], "abc");
	assert_int_equal(parse(&a, "tail", "--group", "a\tb"), -1);
	assert_int_equal(parse(&a, "tail", "--group="), -1);
}

/* issue 15: events and tail take --code and --task, groups --code only (a group spans
 * tasks: its help says so); each is a glob with --type's bounds and its own messages. */
static void test_code_task_filters(void **state)
{
	struct cli_args a;
	assert_int_equal(parse(&a, "events", "--code", "E_TIMEOUT*", "--task", "sync-*", "--type", "T*"), 0);
	assert_string_equal(a.code_glob, "E_TIMEOUT*");
	assert_string_equal(a.task_glob, "sync-*");
	assert_string_equal(a.type_glob, "T*");
	assert_int_equal(parse(&a, "tail", "--code=E?", "--task", "flush"), 0);
	assert_string_equal(a.code_glob, "E?");
	assert_string_equal(a.task_glob, "flush");
	assert_int_equal(parse(&a, "groups", "--code", "E_*"), 0);
	assert_string_equal(a.code_glob, "E_*");
	assert_int_equal(parse(&a, "groups", "--task", "flush"), -1);
	assert_string_equal(err, "'errq groups' does not take --task (see 'errq groups --help')");
	assert_int_equal(parse(&a, "group", "--code", "E"), -1);
	assert_string_equal(err, "'errq group' does not take --code (see 'errq group --help')");
	assert_int_equal(parse(&a, "events", "--code", ""), -1);
	assert_string_equal(err, "empty --code (expected an error code or a glob such as 'E_TIMEOUT*')");
	assert_int_equal(parse(&a, "tail", "--task", ""), -1);
	assert_string_equal(err, "empty --task (expected a task name or a glob such as 'sync-*')");
	char big[CLI_GLOB_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse(&a, "events", "--task", big), -1);
	assert_string_equal(err, "--task is longer than 256 bytes");
	assert_int_equal(parse(&a, "events", "--code", "a\x1b[2J"), -1);
	assert_string_equal(err, "--code holds control characters or invalid UTF-8");
	big[CLI_GLOB_MAX] = '\0';
	assert_int_equal(parse(&a, "events", "--code", big), 0);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(cli_help_cmd(f, cli_cmd_find(cmds, NCMDS, "groups")), 0);
	fclose(f);
	assert_non_null(strstr(buf, "[--code GLOB]"));
	assert_null(strstr(buf, "[--task GLOB]"));
	assert_non_null(strstr(buf, "so there is no --task here"));
	assert_non_null(strstr(buf, "only groups whose code matches GLOB"));
	free(buf);
}

static void test_glob_and_names(void **state)
{
	char e[256], big[CLI_GLOB_MAX + 2];
	assert_int_equal(cli_glob_valid("Timeout*", e, sizeof(e)), 0);
	assert_int_equal(cli_glob_valid("?rror", e, sizeof(e)), 0);
	assert_int_equal(cli_glob_valid("*", e, sizeof(e)), 0);
	assert_int_equal(cli_glob_valid("Ошибка*", e, sizeof(e)), 0);
	assert_int_equal(cli_glob_valid("", e, sizeof(e)), -1);
	assert_non_null(strstr(e, "empty --type"));
	assert_int_equal(cli_glob_valid("a\x1b[2J", e, sizeof(e)), -1);
	assert_int_equal(cli_glob_valid("bad\xff", e, sizeof(e)), -1);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cli_glob_valid(big, e, sizeof(e)), -1);
	big[CLI_GLOB_MAX] = '\0';
	assert_int_equal(cli_glob_valid(big, e, sizeof(e)), 0);

	assert_int_equal(cli_name_valid("9a819d75c2334547"), 0);
	assert_int_equal(cli_name_valid(""), -1);
	assert_int_equal(cli_name_valid("a\nb"), -1);

	assert_int_equal(cli_status_valid("unresolved"), 0);
	assert_int_equal(cli_status_valid("ignored"), 0);
	assert_int_equal(cli_status_valid(""), -1);
	enum cli_sort so = CLI_SORT_LAST_SEEN;
	assert_int_equal(cli_sort_parse("count", &so), 0);
	assert_int_equal(so, CLI_SORT_COUNT);
	assert_int_equal(cli_sort_parse("Count", &so), -1);
	assert_int_equal(so, CLI_SORT_COUNT); /* untouched on error */
}

/* --tls, --ca, --cert, --key: global, over ERRQ_TLS/ERRQ_CA/ERRQ_CERT/ERRQ_KEY; a client
 * certificate needs its key and the other way round. */
static void test_args_tls(void **state)
{
	(void)state;
	struct cli_args a;
	assert_int_equal(parse(&a, "status"), 0);
	assert_false(a.tls);
	assert_null(a.tls_ca);
	assert_int_equal(parse(&a, "status", "--ca", "/c/ca.pem", "--cert", "/c/me.pem", "--key", "/c/me.key"), 0);
	assert_string_equal(a.tls_ca, "/c/ca.pem");
	assert_string_equal(a.tls_cert, "/c/me.pem");
	assert_string_equal(a.tls_key, "/c/me.key");
	assert_int_equal(parse(&a, "--tls", "status"), 0);
	assert_true(a.tls);
	assert_int_equal(parse(&a, "status", "--cert", "/c/me.pem"), -1);
	assert_string_equal(err, "--cert needs --key (a client certificate needs its key)");
	assert_int_equal(parse(&a, "status", "--key", "/c/me.key"), -1);
	assert_string_equal(err, "--key needs --cert (a client certificate needs its key)");
	assert_int_equal(parse(&a, "status", "--ca", ""), -1);
	assert_string_equal(err, "empty --ca (expected a PEM file)");
	/* the environment, then the flags over it; empty counts as unset */
	cli_args_init(&a, NULL, NULL);
	cli_args_tls_env(&a, "", "/e/ca.pem", "", NULL);
	assert_false(a.tls);
	assert_string_equal(a.tls_ca, "/e/ca.pem");
	assert_null(a.tls_cert);
	char *argv[] = {"errq", "--ca", "/f/ca.pem", "status", NULL};
	cli_args_tls_env(&a, "1", "/e/ca.pem", NULL, NULL);
	assert_int_equal(cli_args_parse(&a, 4, argv, cmds, NCMDS, NOW_NS, err, sizeof(err)), 0);
	assert_true(a.tls);
	assert_string_equal(a.tls_ca, "/f/ca.pem");
}

static void test_event_id_parse(void **state)
{
	uint8_t id[CLI_EVENT_ID_LEN];
	const uint8_t want[CLI_EVENT_ID_LEN] = {0x01, 0x9a, 0x81, 0x9d, 0x75, 0xc2, 0x73, 0x34,
						0x85, 0x47, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45};
	memset(id, 0, sizeof(id));
	assert_int_equal(cli_event_id_parse("019a819d75c27334" "8547abcdef012345", id), 0);
	assert_memory_equal(id, want, sizeof(id));
	memset(id, 0, sizeof(id));
	assert_int_equal(cli_event_id_parse("019A819D75C27334" "8547ABCDEF012345", id), 0);
	assert_memory_equal(id, want, sizeof(id));
	memset(id, 0, sizeof(id));
	assert_int_equal(cli_event_id_parse("019a819d-75c2-7334-8547-abcdef012345", id), 0);
	assert_memory_equal(id, want, sizeof(id));

	assert_int_equal(cli_event_id_parse("019a819d75c273348547abcdef01234", id), -1);   /* 31 */
	assert_int_equal(cli_event_id_parse("019a819d75c273348547abcdef0123456", id), -1); /* 33 */
	assert_int_equal(cli_event_id_parse("019a819d75c273348547abcdef01234g", id), -1);
	assert_int_equal(cli_event_id_parse("019a819d7-5c2-7334-8547-abcdef012345", id), -1); /* dash moved */
	assert_int_equal(cli_event_id_parse("019a819d-75c2-7334-8547-abcdef01234-", id), -1);
	assert_int_equal(cli_event_id_parse("019a819d-75c2-7334-8547xabcdef012345", id), -1);
	assert_int_equal(cli_event_id_parse("", id), -1);
	assert_int_equal(cli_event_id_parse("0x9a819d75c273348547abcdef012345", id), -1);
}

/* ---- exit codes and messages ---- */

static void test_exit_codes(void **state)
{
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_OK), 0);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_INVALID_ARGUMENT), 1);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_ALREADY_EXISTS), 1);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_UNAVAILABLE), 2);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_DEADLINE_EXCEEDED), 2);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_INTERNAL), 2);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_UNIMPLEMENTED), 2);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_NOT_FOUND), 3);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_FAILED_PRECONDITION), 3);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_UNAUTHENTICATED), 4);
	assert_int_equal(cli_exit_for_status(GRPC_STATUS_PERMISSION_DENIED), 4);
}

static void test_reach_reason(void **state)
{
	char r[128];
	cli_reach_reason("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:4770: "
			 "Failed to connect to remote host: Connection refused",
			 r, sizeof(r));
	assert_string_equal(r, "connection refused");
	cli_reach_reason("DNS resolution failed for nosuch:4770: C-ares status is not ARES_SUCCESS qtype=A "
			 "name=nosuch is_balancer=0: Domain name not found",
			 r, sizeof(r));
	assert_string_equal(r, "domain name not found");
	cli_reach_reason("", r, sizeof(r));
	assert_string_equal(r, "unavailable");
	cli_reach_reason(NULL, r, sizeof(r));
	assert_string_equal(r, "unavailable");
	cli_reach_reason("DNS down.", r, sizeof(r));
	assert_string_equal(r, "DNS down");
	cli_reach_reason("x: two\nlines", r, sizeof(r));
	assert_string_equal(r, "two lines");
	cli_reach_reason("Connection refused", r, 5);
	assert_string_equal(r, "conn");
}

static void test_fmt_ms(void **state)
{
	char b[32];
	assert_string_equal(cli_fmt_ms(b, sizeof(b), 5000), "5s");
	assert_string_equal(cli_fmt_ms(b, sizeof(b), 250), "250ms");
	assert_string_equal(cli_fmt_ms(b, sizeof(b), 1500), "1.5s");
	assert_string_equal(cli_fmt_ms(b, sizeof(b), 1234), "1234ms");
}

static void test_fmt_ago(void **state)
{
	char b[32];
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, 0), "-");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS), "just now");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS - SEC / 2), "just now");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS - 42 * SEC), "42s ago");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS - 59 * SEC), "59s ago");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS - 60 * SEC), "1m ago");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS - 200 * SEC), "3m ago");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS - 5 * 3600 * SEC - 1), "5h ago");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS - 49 * 3600 * SEC), "2d ago");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS - 400 * 86400 * SEC), "1y ago");
	/* a clock ahead of ours */
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS + SEC), "just now");
	assert_string_equal(cli_fmt_ago(b, sizeof(b), NOW_NS, NOW_NS + 180 * SEC), "in 3m");
}

static void test_fmt_bytes(void **state)
{
	char b[32];
	assert_string_equal(cli_fmt_bytes(b, sizeof(b), 0), "0 B");
	assert_string_equal(cli_fmt_bytes(b, sizeof(b), 1023), "1023 B");
	assert_string_equal(cli_fmt_bytes(b, sizeof(b), 1024), "1.0 KiB");
	assert_string_equal(cli_fmt_bytes(b, sizeof(b), 1536), "1.5 KiB");
	assert_string_equal(cli_fmt_bytes(b, sizeof(b), 238592), "233.0 KiB");
	assert_string_equal(cli_fmt_bytes(b, sizeof(b), 1048575), "1.0 MiB"); /* not "1024.0 KiB" */
	assert_string_equal(cli_fmt_bytes(b, sizeof(b), 12897485), "12.3 MiB");
	assert_string_equal(cli_fmt_bytes(b, sizeof(b), 5ULL << 30), "5.0 GiB");
	assert_string_equal(cli_fmt_bytes(b, sizeof(b), UINT64_MAX), "16.0 EiB");
}

static void test_fmt_span(void **state)
{
	char b[32];
	assert_string_equal(cli_fmt_span(b, sizeof(b), 0), "0s");
	assert_string_equal(cli_fmt_span(b, sizeof(b), 45 * SEC + SEC / 2), "45s");
	assert_string_equal(cli_fmt_span(b, sizeof(b), 723 * SEC), "12m 3s");
	assert_string_equal(cli_fmt_span(b, sizeof(b), 3600 * SEC), "1h 0m");
	assert_string_equal(cli_fmt_span(b, sizeof(b), (3 * 3600 + 12 * 60 + 59) * SEC), "3h 12m");
	assert_string_equal(cli_fmt_span(b, sizeof(b), (2 * 86400 + 4 * 3600 + 1) * SEC), "2d 4h");
}

/* ---- sparklines ---- */

static char *spark(const uint64_t *v, size_t n, size_t cols, uint64_t *max)
{
	static char out[4 * CLI_SPARK_MAX_COLS + 1];
	struct errq_buf b;
	errq_buf_init(&b, sizeof(out));
	assert_int_equal(cli_sparkline(&b, v, n, cols, max), 0);
	errq_snprintf(out, sizeof(out), "%s", b.p);
	errq_buf_free(&b);
	return out;
}

#define B1 "\xe2\x96\x81"
#define B2 "\xe2\x96\x82"
#define B4 "\xe2\x96\x84"
#define B8 "\xe2\x96\x88"

static void test_spark_buckets(void **state)
{
	uint64_t m[60], out[CLI_SPARK_MAX_COLS];
	for (size_t k = 0; k < 60; k++)
		m[k] = k; /* 0..59 */
	/* 60 minutes in 12 buckets of 5 */
	assert_int_equal(cli_spark_buckets(m, 60, out, 12), 12);
	assert_int_equal(out[0], 0 + 1 + 2 + 3 + 4);
	assert_int_equal(out[11], 55 + 56 + 57 + 58 + 59);
	uint64_t sum = 0;
	for (size_t k = 0; k < 12; k++)
		sum += out[k];
	assert_int_equal(sum, 59 * 60 / 2); /* every count in exactly one bucket */
	/* uneven: 61 minutes (a partial one) in 12 buckets still count every minute once */
	uint64_t m61[61];
	for (size_t k = 0; k < 61; k++)
		m61[k] = 1;
	assert_int_equal(cli_spark_buckets(m61, 61, out, 12), 12);
	sum = 0;
	for (size_t k = 0; k < 12; k++) {
		assert_true(out[k] == 5 || out[k] == 6);
		sum += out[k];
	}
	assert_int_equal(sum, 61);
	/* fewer counts than columns: one bucket each, never stretched */
	assert_int_equal(cli_spark_buckets(m, 5, out, 12), 5);
	assert_int_equal(out[4], 4);
	assert_int_equal(cli_spark_buckets(m, 0, out, 12), 0);
	/* saturates instead of wrapping */
	uint64_t huge[2] = {UINT64_MAX, 5};
	assert_int_equal(cli_spark_buckets(huge, 2, out, 1), 1);
	assert_true(out[0] == UINT64_MAX);
}

static void test_sparkline(void **state)
{
	uint64_t max = 0;
	const uint64_t v[] = {0, 1, 4, 8};
	/* zero is blank; the fullest is the full block; a single event still shows */
	assert_string_equal(spark(v, 4, 10, &max), " " B1 B4 B8);
	assert_int_equal(max, 8);
	const uint64_t big[] = {1, 1000000, 0, 500000};
	assert_string_equal(spark(big, 4, 4, NULL), B1 B8 " " B4);
	/* an empty hour is all blanks, as wide as asked */
	const uint64_t zero[6] = {0};
	assert_string_equal(spark(zero, 6, 3, &max), "   ");
	assert_int_equal(max, 0);
	/* bucketed: 60 minutes, one burst at the end, in 12 columns */
	uint64_t hour[60] = {0};
	hour[59] = 7;
	hour[0] = 1;
	assert_string_equal(spark(hour, 60, 12, NULL), B2 "          " B8);
	/* each block is one terminal column */
	const char *s = spark(v, 4, 4, NULL);
	assert_int_equal(cli_text_width(s, strlen(s)), 4);
	/* huge counts stay in range */
	const uint64_t h2[] = {UINT64_MAX, UINT64_MAX / 2, 1};
	assert_string_equal(spark(h2, 3, 3, NULL), B8 B4 B1);
	/* a full buffer leaves it as it was */
	struct errq_buf b;
	errq_buf_init(&b, 4);
	assert_int_equal(cli_sparkline(&b, v, 4, 4, NULL), -1);
	assert_int_equal(b.len, 0);
	errq_buf_free(&b);
}

/* ---- detail views ---- */

static char *render_detail(const struct cli_detail *d, size_t width, bool color)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(cli_detail_render(d, width, color, f), 0);
	fclose(f);
	return buf;
}

static void test_detail(void **state)
{
	struct cli_detail d;
	cli_detail_init(&d);
	cli_detail_field(&d, "fingerprint", "9a819d75c2334547", CLI_STYLE_NONE);
	cli_detail_field(&d, "code", "", CLI_STYLE_NONE);   /* absent: left out */
	cli_detail_field(&d, "host", NULL, CLI_STYLE_NONE); /* absent: left out */
	cli_detail_fieldf(&d, "total", CLI_STYLE_NONE, "%d: %d unhandled", 12, 3);
	cli_detail_field(&d, "message", "connection reset\x1b[2J by peer", CLI_STYLE_NONE);
	cli_detail_section(&d, "details");
	cli_detail_field(&d, "k", "v", CLI_STYLE_NONE);
	cli_detail_field(&d, "longer_key", "w", CLI_STYLE_NONE);
	cli_detail_section(&d, "frames");
	cli_detail_text(&d, "* main at app.c:10 (app)", CLI_STYLE_NONE);
	char *out = render_detail(&d, 80, false);
	/* labels line up per block; sections are indented; nothing escapes */
	assert_string_equal(out, "fingerprint  9a819d75c2334547\n"
				 "total        12: 3 unhandled\n"
				 "message      connection reset [2J by peer\n"
				 "\n"
				 "details\n"
				 "  k           v\n"
				 "  longer_key  w\n"
				 "\n"
				 "frames\n"
				 "  * main at app.c:10 (app)\n");
	free(out);
	cli_detail_release(&d);
	cli_detail_release(&d); /* twice is harmless */

	/* wrapping: at spaces, continuation lines under the value; newlines kept as lines;
	 * an empty line has no indent; no trailing spaces */
	cli_detail_init(&d);
	cli_detail_field(&d, "message", "one two three four five six", CLI_STYLE_NONE);
	cli_detail_field(&d, "trace", "first line\n\n  indented", CLI_STYLE_NONE);
	cli_detail_field(&d, "id", "0123456789abcdefghijklmnopqrstuvwxyz", CLI_STYLE_NONE);
	out = render_detail(&d, 30, false); /* 30 - 9: 21 columns for values */
	assert_string_equal(out, "message  one two three four\n"
				 "         five six\n"
				 "trace    first line\n"
				 "\n"
				 "           indented\n"
				 "id       0123456789abcdefghijk\n"
				 "         lmnopqrstuvwxyz\n");
	for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1)
		assert_true(nl == line || nl[-1] != ' ');
	free(out);
	cli_detail_release(&d);

	/* an empty label continues the field above; a long label is cut; colors per value */
	cli_detail_init(&d);
	cli_detail_field(&d, "last hour", "ab", CLI_STYLE_RED);
	cli_detail_field(&d, "", "1h ago  now", CLI_STYLE_NONE);
	out = render_detail(&d, 80, true);
	assert_string_equal(out, "last hour  \x1b[31mab\x1b[0m\n"
				 "           1h ago  now\n");
	free(out);
	char label[64];
	memset(label, 'x', 40);
	label[40] = '\0';
	cli_detail_field(&d, label, "v", CLI_STYLE_NONE);
	out = render_detail(&d, 80, false);
	assert_non_null(strstr(out, "xxxxxxxxxxxxxxxxxxxxxxx" CLI_ELLIPSIS "  v\n"));
	assert_non_null(strstr(out, "last hour" "                 ab\n")); /* aligned to the cut label */
	free(out);
	cli_detail_release(&d);

	/* wrapped text lines go two further in and fit the width */
	cli_detail_init(&d);
	cli_detail_section(&d, "frames");
	cli_detail_text(&d, "aaaa bbbb cccc dddd eeee ffff gggg", CLI_STYLE_NONE);
	out = render_detail(&d, 26, false);
	assert_string_equal(out, "frames\n"
				 "  aaaa bbbb cccc dddd\n"
				 "    eeee ffff gggg\n");
	for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1)
		assert_true(nl - line <= 26);
	free(out);
	cli_detail_release(&d);
}

/* ---- streamed lines ---- */

static void test_line_format(void **state)
{
	const struct cli_line_col lc[] = {{5, 0}, {8, 0}, {4, CLI_COL_RIGHT}, {0, 0}};
	struct cli_line l;
	struct errq_buf b;
	errq_buf_init(&b, 4096);
	cli_line_init(&l, lc, 4);
	const char *r1[] = {"12:00", "api", "", "connection reset by peer"};
	assert_int_equal(cli_line_format(&l, r1, NULL, 40, false, &b), 0);
	/* an empty column takes no room yet */
	assert_string_equal(b.p, "12:00  api  connection reset by peer\n");
	errq_buf_reset(&b);
	const char *r2[] = {"12:01", "billing-service", "7", "short"};
	assert_int_equal(cli_line_format(&l, r2, NULL, 40, false, &b), 0);
	/* cut at the column's max; right-aligned count */
	assert_string_equal(b.p, "12:01  billing" CLI_ELLIPSIS "  7  short\n");
	errq_buf_reset(&b);
	const char *r3[] = {"12:02", "api", "1234", "a message longer than what is left of the width"};
	assert_int_equal(cli_line_format(&l, r3, NULL, 50, false, &b), 0);
	/* widths never shrink back, the message gets the rest: 50 - (5+2+8+2+4+2) = 27 */
	assert_string_equal(b.p, "12:02  api       1234  a message longer than what" CLI_ELLIPSIS "\n");
	assert_int_equal(cli_text_width(b.p, b.len - 1), 50);
	errq_buf_reset(&b);
	/* the message gets at least CLI_LINE_LAST_MIN columns, however narrow */
	assert_int_equal(cli_line_format(&l, r3, NULL, 10, false, &b), 0);
	assert_non_null(strstr(b.p, "1234  a message longer th" CLI_ELLIPSIS "\n"));
	errq_buf_reset(&b);
	/* an empty message leaves no trailing spaces; controls are flattened */
	const char *r4[] = {"12:03", "x\x1b]0;t\x07", "1", ""};
	assert_int_equal(cli_line_format(&l, r4, NULL, 40, false, &b), 0);
	assert_string_equal(b.p, "12:03  x ]0;t       1\n");
	errq_buf_reset(&b);
	/* colors */
	const unsigned char st[] = {CLI_STYLE_DIM, 0, 0, 0};
	const char *r5[] = {"12:04", "a", "2", "m"};
	assert_int_equal(cli_line_format(&l, r5, st, 40, true, &b), 0);
	assert_string_equal(b.p, "\x1b[2m12:04\x1b[0m  a            2  m\n");
	/* a full buffer leaves it as it was, and the widths too */
	struct errq_buf small;
	errq_buf_init(&small, 8);
	size_t w1 = l.w[1];
	const char *r6[] = {"12:05", "a-very-long", "99", "m"};
	assert_int_equal(cli_line_format(&l, r6, NULL, 40, false, &small), -1);
	assert_int_equal(small.len, 0);
	assert_int_equal(l.w[1], w1);
	errq_buf_free(&small);
	errq_buf_free(&b);
}

/* ---- terminal text ---- */

static void test_text_width(void **state)
{
	assert_int_equal(cli_text_width("", 0), 0);
	assert_int_equal(cli_text_width("hello", 5), 5);
	assert_int_equal(cli_text_width("h\xc3\xa9llo", 6), 5);       /* é */
	assert_int_equal(cli_text_width("e\xcc\x81", 3), 1);           /* e + combining acute */
	assert_int_equal(cli_text_width("\xe6\x97\xa5\xe6\x9c\xac", 6), 4); /* 日本 */
	assert_int_equal(cli_text_width("\xf0\x9f\x94\xa5", 4), 2);     /* fire emoji */
	assert_int_equal(cli_text_width("a\x1b[31mb", 7), 7);          /* ESC shown as a space */
	assert_int_equal(cli_text_width("\xff\xfe", 2), 2);             /* two U+FFFD */
}

static char *cell(const char *s, size_t max, size_t *cols)
{
	static char out[256];
	struct errq_buf b;
	errq_buf_init(&b, sizeof(out));
	assert_int_equal(cli_cell_text(&b, s, strlen(s), max, cols), 0);
	errq_snprintf(out, sizeof(out), "%s", b.p ? b.p : "");
	errq_buf_free(&b);
	return out;
}

static void test_cell_text(void **state)
{
	size_t cols;
	assert_string_equal(cell("timeout", 10, &cols), "timeout");
	assert_int_equal(cols, 7);
	assert_string_equal(cell("timeout", 7, &cols), "timeout");
	assert_string_equal(cell("timeout!", 7, &cols), "timeou" CLI_ELLIPSIS);
	assert_int_equal(cols, 7);
	assert_string_equal(cell("abc", 1, &cols), CLI_ELLIPSIS);
	assert_int_equal(cols, 1);
	assert_string_equal(cell("abc", 0, &cols), "");
	assert_int_equal(cols, 0);
	/* never cuts inside a character */
	assert_string_equal(cell("h\xc3\xa9llo world", 3, &cols), "h\xc3\xa9" CLI_ELLIPSIS);
	/* a wide character that does not fit before the ellipsis is left out */
	assert_string_equal(cell("a\xe6\x97\xa5\xe6\x9c\xac", 3, &cols), "a" CLI_ELLIPSIS);
	assert_int_equal(cols, 2);
	/* escape sequences and newlines cannot reach the terminal */
	assert_string_equal(cell("bad\x1b[2Jthing\nnext\tx\x7f", 100, &cols), "bad [2Jthing next x ");
	assert_string_equal(cell("\xc2\x9b" "31m", 100, &cols), " 31m"); /* C1 CSI */
	assert_string_equal(cell("a\xffz", 100, &cols), "a\xef\xbf\xbdz");
	/* carriage return and backspace would overwrite what the line already shows */
	assert_string_equal(cell("ok\rFAIL\b\b", 100, &cols), "ok FAIL  ");
	/* bidirectional overrides, isolates and marks would reorder the rest of the line:
	 * RLO (U+202E), LRI (U+2066), PDI (U+2069), RLM (U+200F), ALM (U+061C) */
	assert_string_equal(cell("a\xe2\x80\xae" "cba\xe2\x81\xa6" "x\xe2\x81\xa9\xe2\x80\x8f\xd8\x9c", 100, &cols),
			    "a\xef\xbf\xbd" "cba\xef\xbf\xbd" "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_int_equal(cols, 10);
	/* a zero-width joiner is not a control: emoji sequences keep it */
	assert_string_equal(cell("\xe2\x80\x8d", 100, &cols), "\xe2\x80\x8d");
}

static void test_utf8_fix(void **state)
{
	struct errq_buf b;
	errq_buf_init(&b, 64);
	assert_int_equal(cli_utf8_fix(&b, "ok\n\xc3\xa9", 5), 0);
	assert_string_equal(b.p, "ok\n\xc3\xa9");
	errq_buf_reset(&b);
	assert_int_equal(cli_utf8_fix(&b, "a\xc3(\xed\xa0\x80", 6), 0);
	assert_string_equal(b.p, "a\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	errq_buf_reset(&b);
	assert_int_equal(cli_utf8_fix(&b, "", 0), 0);
	assert_string_equal(b.p, "");
	errq_buf_free(&b);
}

/* ---- column fitting and tables ---- */

static void test_fit_columns(void **state)
{
	const struct cli_col cols[] = {
	    {"ID", 0, 0, 0, 0},
	    {"SERVICE", 0, 2, 8, 0},
	    {"COUNT", CLI_COL_RIGHT, 0, 0, 0},
	    {"MESSAGE", 0, 4, 10, 0},
	};
	size_t nat[] = {32, 20, 5, 100}, w[4];
	/* fits: untouched */
	assert_int_equal(cli_fit_columns(cols, nat, 4, 1000, 2, w), 32 + 20 + 5 + 100 + 6);
	assert_int_equal(w[3], 100);
	/* the widest cuttable column gives up space first */
	assert_int_equal(cli_fit_columns(cols, nat, 4, 120, 2, w), 120);
	assert_int_equal(w[0], 32);
	assert_int_equal(w[1], 20);
	assert_int_equal(w[2], 5);
	assert_int_equal(w[3], 120 - 32 - 20 - 5 - 6);
	/* then the widest ones are levelled together */
	assert_int_equal(cli_fit_columns(cols, nat, 4, 65, 2, w), 65);
	assert_int_equal(w[1], 11);
	assert_int_equal(w[3], 11);
	/* down to their minimums */
	assert_int_equal(cli_fit_columns(cols, nat, 4, 62, 2, w), 62);
	assert_int_equal(w[1], 9);
	assert_int_equal(w[3], 10);
	/* ids and counts are never cut: the row stays too wide */
	assert_int_equal(cli_fit_columns(cols, nat, 4, 20, 2, w), 32 + 8 + 5 + 10 + 6);
	assert_int_equal(w[0], 32);
	assert_int_equal(w[1], 8);
	assert_int_equal(w[2], 5);
	assert_int_equal(w[3], 10);
	/* a column narrower than its minimum keeps its width */
	size_t nat2[] = {2, 3, 5, 4};
	assert_int_equal(cli_fit_columns(cols, nat2, 4, 5, 2, w), 2 + 3 + 5 + 4 + 6);
	assert_int_equal(w[1], 3);
	/* equal priorities share the loss, widest first */
	const struct cli_col eq[] = {{"A", 0, 1, 2, 0}, {"B", 0, 1, 2, 0}};
	size_t nat3[] = {30, 10}, w3[2];
	assert_int_equal(cli_fit_columns(eq, nat3, 2, 22, 2, w3), 22);
	assert_int_equal(w3[0], 10);
	assert_int_equal(w3[1], 10);
	assert_int_equal(cli_fit_columns(eq, nat3, 2, 12, 2, w3), 12);
	assert_int_equal(w3[0] + w3[1], 10);
	assert_true(w3[0] >= 4 && w3[1] >= 4);
}

static char *render(const struct cli_table *t, size_t width)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(cli_table_render(t, width, false, f), 0);
	fclose(f);
	return buf;
}

static void test_table(void **state)
{
	const struct cli_col cols[] = {
	    {"NAME", 0, 0, 0, 0},
	    {"ENV", CLI_COL_HIDE_EMPTY, 0, 0, 0},
	    {"COUNT", CLI_COL_RIGHT, 0, 0, 0},
	    {"MESSAGE", 0, 1, 5, 0},
	};
	struct cli_table t;
	cli_table_init(&t, cols, 4);
	const char *r1[] = {"api", NULL, "7", "connection reset by peer"};
	const char *r2[] = {"billing", "", "12345", "short"};
	assert_int_equal(cli_table_add(&t, r1, NULL), 0);
	assert_int_equal(cli_table_add(&t, r2, NULL), 0);

	char *out = render(&t, 200);
	assert_string_equal(out, "NAME     COUNT  MESSAGE\n"
				 "api          7  connection reset by peer\n"
				 "billing  12345  short\n");
	free(out);

	out = render(&t, 26); /* 7 + 2 + 5 + 2 = 16: 10 columns for the message */
	assert_string_equal(out, "NAME     COUNT  MESSAGE\n"
				 "api          7  connectio" CLI_ELLIPSIS "\n"
				 "billing  12345  short\n");
	free(out);

	/* a column comes back once a row has a value; cells are sanitized when added */
	const char *r3[] = {"x\x1b]0;pwned\x07", "prod", "0", "a\nb"};
	assert_int_equal(cli_table_add(&t, r3, NULL), 0);
	out = render(&t, 200);
	assert_string_equal(out, "NAME         ENV   COUNT  MESSAGE\n"
				 "api                    7  connection reset by peer\n"
				 "billing            12345  short\n"
				 "x ]0;pwned   prod      0  a b\n");
	free(out);
	cli_table_release(&t);
	cli_table_release(&t); /* release twice is harmless */

	/* when cutting is not enough, droppable columns go, the highest drop first */
	const struct cli_col dcols[] = {
	    {"ID", 0, 0, 0, 0},
	    {"TASK", 0, 1, 4, 2},
	    {"CODE", 0, 0, 0, 1},
	    {"MESSAGE", 0, 3, 6, 0},
	};
	cli_table_init(&t, dcols, 4);
	const char *d1[] = {"0123456789", "charge_card", "TIMEOUT", "upstream timed out"};
	assert_int_equal(cli_table_add(&t, d1, NULL), 0);
	out = render(&t, 200);
	assert_string_equal(out, "ID          TASK         CODE     MESSAGE\n"
				 "0123456789  charge_card  TIMEOUT  upstream timed out\n");
	free(out);
	out = render(&t, 35); /* the message down to its minimum is not enough: TASK goes first,
			       * rather than cutting every text column */
	assert_string_equal(out, "ID          CODE     MESSAGE\n"
				 "0123456789  TIMEOUT  upstream time" CLI_ELLIPSIS "\n");
	free(out);
	out = render(&t, 30); /* TASK goes: 10 + 7 + 9 + 4 */
	assert_string_equal(out, "ID          CODE     MESSAGE\n"
				 "0123456789  TIMEOUT  upstream" CLI_ELLIPSIS "\n");
	free(out);
	out = render(&t, 10); /* CODE goes too; the id stays whole, the row too wide */
	assert_string_equal(out, "ID          MESSAGE\n"
				 "0123456789  upstre" CLI_ELLIPSIS "\n");
	free(out);
	cli_table_release(&t);

	/* a column that folds (a group's status) is never silently lost: when it must go, its
	 * cells go before those of the column it folds into, at every width */
	const struct cli_col fcols[] = {
	    {"FINGERPRINT", 0, 0, 0, 0},
	    {"LAST SEEN", 0, 0, 0, 0},
	    {"STATUS", CLI_COL_HIDE_EMPTY | CLI_COL_FOLD, 0, 0, 1},
	    {"MESSAGE", 0, 3, 6, 0},
	};
	cli_table_init(&t, fcols, 4);
	const char *f1[] = {"0123456789abcdef", "3m ago", "regression", "upstream timed out"};
	const char *f2[] = {"fedcba9876543210", "1h ago", "resolved", "card declined by the bank"};
	assert_int_equal(cli_table_add(&t, f1, NULL), 0);
	assert_int_equal(cli_table_add(&t, f2, NULL), 0);
	out = render(&t, 200);
	assert_string_equal(out, "FINGERPRINT       LAST SEEN  STATUS      MESSAGE\n"
				 "0123456789abcdef  3m ago     regression  upstream timed out\n"
				 "fedcba9876543210  1h ago     resolved    card declined by the bank\n");
	free(out);
	out = render(&t, 40);
	/* the row stays too wide rather than cut into the status: 6 columns of message kept */
	assert_string_equal(out, "FINGERPRINT       LAST SEEN  (STATUS) MESSAGE\n"
				 "0123456789abcdef  3m ago     (regression) upstre" CLI_ELLIPSIS "\n"
				 "fedcba9876543210  1h ago     (resolved) card dec" CLI_ELLIPSIS "\n");
	free(out);
	for (size_t w = 20; w <= 120; w += 5) {
		out = render(&t, w);
		char *row2 = strchr(out, '\n') + 1, *row3 = strchr(row2, '\n') + 1;
		if (!strstr(row2, "regression") || !strstr(row3, "resolved"))
			fail_msg("width %zu hides a status:\n%s", w, out);
		free(out);
	}
	cli_table_release(&t);

	/* an empty table prints its header (callers print "no events" instead) */
	cli_table_init(&t, cols, 4);
	out = render(&t, 80);
	assert_string_equal(out, "NAME  COUNT  MESSAGE\n");
	free(out);
	cli_table_release(&t);
}

static void test_table_big_cells(void **state)
{
	const struct cli_col cols[] = {{"A", 0, 0, 0, 0}, {"B", 0, 1, 5, 0}};
	struct cli_table t;
	char *bad = malloc(CLI_CELL_MAX * 2 + 1), *wide = malloc(CLI_CELL_MAX * 3 + 1);
	memset(bad, 0xff, CLI_CELL_MAX * 2); /* every byte becomes a 3-byte U+FFFD */
	bad[CLI_CELL_MAX * 2] = '\0';
	for (size_t k = 0; k < CLI_CELL_MAX; k++)
		memcpy(wide + 3 * k, "\xe6\x97\xa5", 3); /* 日: 2 columns each */
	wide[CLI_CELL_MAX * 3] = '\0';
	cli_table_init(&t, cols, 2);
	const char *r1[] = {bad, wide}, *r2[] = {wide, bad};
	assert_int_equal(cli_table_add(&t, r1, NULL), 0);
	assert_int_equal(cli_table_add(&t, r2, NULL), 0);
	char *out = render(&t, 1000000);
	assert_non_null(out);
	free(out);
	out = render(&t, 80);
	assert_non_null(out);
	free(out);
	cli_table_release(&t);
	free(bad);
	free(wide);
}

static void test_table_color(void **state)
{
	const struct cli_col cols[] = {{"A", 0, 0, 0, 0}, {"B", 0, 0, 0, 0}};
	struct cli_table t;
	cli_table_init(&t, cols, 2);
	const char *r[] = {"x", "y"};
	const unsigned char st[] = {CLI_STYLE_RED, CLI_STYLE_NONE};
	assert_int_equal(cli_table_add(&t, r, st), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(cli_table_render(&t, 80, true, f), 0);
	fclose(f);
	assert_string_equal(buf, "\x1b[1mA\x1b[0m  \x1b[1mB\x1b[0m\n\x1b[31mx\x1b[0m  y\n");
	free(buf);
	cli_table_release(&t);
}

/* ---- key=value ---- */

static void test_kv(void **state)
{
	struct cli_kv *kv = NULL;
	size_t n = 0;
	assert_int_equal(cli_kv_parse("service=api,error_type=Timeout", &kv, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(kv[0].key, "service");
	assert_string_equal(kv[0].value, "api");
	assert_string_equal(kv[1].key, "error_type");
	assert_string_equal(kv[1].value, "Timeout");
	cli_kv_free(kv, n);

	assert_int_equal(cli_kv_parse("msg=a\\,b\\=c\\\\d,env=", &kv, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(kv[0].value, "a,b=c\\d");
	assert_string_equal(kv[1].value, "");
	cli_kv_free(kv, n);

	assert_int_equal(cli_kv_parse("", &kv, &n, err, sizeof(err)), -1);
	assert_int_equal(cli_kv_parse("service", &kv, &n, err, sizeof(err)), -1);
	assert_int_equal(cli_kv_parse("=x", &kv, &n, err, sizeof(err)), -1);
	assert_int_equal(cli_kv_parse("a=1,", &kv, &n, err, sizeof(err)), -1);
	assert_int_equal(cli_kv_parse("a b=1", &kv, &n, err, sizeof(err)), -1);
	assert_int_equal(cli_kv_parse("a=1,a=2", &kv, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "field 'a' given twice");
	cli_kv_free(NULL, 0);
}

/* ---- alerting commands ---- */

static void test_args_families(void **state)
{
	struct cli_args a;
	/* a family's command is its two words, flags anywhere */
	assert_int_equal(parse(&a, "rules", "list"), 0);
	assert_string_equal(a.cmd->name, "rules list");
	assert_int_equal(a.argc, 0);
	assert_int_equal(parse(&a, "-o", "json", "rules", "check", "/etc/errqd.yaml"), 0);
	assert_string_equal(a.cmd->name, "rules check");
	assert_string_equal(a.argv[0], "/etc/errqd.yaml");
	assert_int_equal(parse(&a, "rules"), -1);
	assert_string_equal(err, "'errq rules' needs a command: list, reload or check (see 'errq --help')");
	assert_int_equal(parse(&a, "rules", "lsit"), -1);
	assert_string_equal(err, "'rules lsit' is not an errq command (expected list, reload or check)");
	assert_int_equal(parse(&a, "rules", "check"), -1);
	assert_string_equal(err, "'errq rules check' needs <file>");
	/* a command that is also a family: "alerts" alone, or "alerts replay ID" */
	assert_int_equal(parse(&a, "alerts", "--status", "firing"), 0);
	assert_string_equal(a.cmd->name, "alerts");
	assert_int_equal(parse(&a, "alerts", "replay", "f45d212864b3"), 0);
	assert_string_equal(a.cmd->name, "alerts replay");
	assert_string_equal(a.argv[0], "f45d212864b3");
	assert_int_equal(parse(&a, "alerts", "f45d212864b3"), -1);
	assert_string_equal(err, "unexpected argument 'f45d212864b3' (see 'errq alerts --help')");
	assert_int_equal(parse(&a, "alerts", "replay", "--status", "firing", "x"), -1);
	assert_string_equal(err, "'errq alerts replay' does not take --status (see 'errq alerts replay --help')");
	/* only the word right after the first is a subcommand */
	assert_int_equal(parse(&a, "help", "rules", "list"), 0); /* help's two words, as arguments */
	assert_string_equal(a.cmd->name, "help");
	assert_int_equal(a.argc, 2);
	assert_int_equal(parse(&a, "help", "rules", "list", "x"), -1);
	assert_int_equal(parse(&a, "rules", "list", "--help"), 0);
	assert_true(a.help);
	assert_string_equal(a.cmd->name, "rules list");
	assert_int_equal(parse(&a, "rules", "--help"), 0);
	assert_true(a.help);
	assert_null(a.cmd);

	char subs[64];
	assert_int_equal(cli_cmd_family(cmds, NCMDS, "silence", subs, sizeof(subs)), 3);
	assert_string_equal(subs, "add, list or expire");
	assert_int_equal(cli_cmd_family(cmds, NCMDS, "alerts", subs, sizeof(subs)), 1);
	assert_string_equal(subs, "replay");
	assert_int_equal(cli_cmd_family(cmds, NCMDS, "groups", NULL, 0), 0);
}

static void test_args_alerting_flags(void **state)
{
	struct cli_args a;
	/* --status takes the command's statuses */
	assert_int_equal(parse(&a, "alerts", "--status", "resolved", "--rule", "checkout-timeouts", "--since", "1h"),
			 0);
	assert_string_equal(a.status, "resolved");
	assert_string_equal(a.rule, "checkout-timeouts");
	assert_int_equal(parse(&a, "alerts", "--status", "ignored"), -1);
	assert_string_equal(err, "invalid --status 'ignored' (expected firing or resolved)");
	assert_int_equal(parse(&a, "groups", "--status", "firing"), -1);
	assert_string_equal(err, "invalid --status 'firing' (expected unresolved, resolved or ignored)");
	assert_int_equal(parse(&a, "alerts", "--rule", "bad name"), -1);
	assert_non_null(strstr(err, "invalid --rule 'bad name'"));

	/* --state: the API's spelling */
	assert_int_equal(parse(&a, "circuits"), 0);
	assert_string_equal(a.state, "");
	assert_int_equal(parse(&a, "circuits", "--state", "half-open"), 0);
	assert_string_equal(a.state, "half_open");
	assert_int_equal(parse(&a, "circuits", "--state=open"), 0);
	assert_string_equal(a.state, "open");
	assert_int_equal(parse(&a, "circuits", "--state", "tripped"), -1);
	assert_string_equal(err, "invalid --state 'tripped' (expected closed, open or half_open)");

	/* silence add: required flags, --match repeated, --for bounded */
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--match", "service=checkout", "--match",
			       "error_type=Timeout*", "--for", "2h", "--comment", "deploy"),
			 0);
	assert_int_equal(a.nmatch, 2);
	assert_string_equal(a.match[1], "error_type=Timeout*");
	assert_int_equal(a.for_ns, 2 * 3600 * SEC);
	assert_string_equal(a.comment, "deploy");
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "2h"), -1);
	assert_string_equal(err, "'errq silence add' needs --comment TEXT");
	assert_int_equal(parse(&a, "silence", "add", "--comment", "c", "--for", "2h"), -1);
	assert_string_equal(err, "'errq silence add' needs --rule NAME");
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "0s", "--comment", "c"), -1);
	assert_non_null(strstr(err, "invalid --for '0s'"));
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "91d", "--comment", "c"), -1);
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "90d", "--comment", "c"), 0);
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "1s", "--comment", "c"), 0);
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "1h", "--comment", "c", "--match",
			       "a=1", "--match", "a=2"),
			 -1);
	assert_string_equal(err, "--match 'a' given twice");
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "1h", "--comment", "c", "--match", "a"),
			 -1);
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "1h", "--comment", "c", "--match",
			       "=x"),
			 -1);
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "1h", "--comment", "c", "--match",
			       "a,b=x"),
			 -1);
	assert_int_equal(parse(&a, "silence", "add", "--rule", "r", "--for", "1h", "--comment", "c", "--match",
			       "details.region=eu-*"),
			 0);
	assert_int_equal(parse(&a, "silence", "list"), 0);
	assert_false(a.all);
	assert_int_equal(parse(&a, "silence", "list", "--all"), 0);
	assert_true(a.all);
	assert_int_equal(parse(&a, "silence", "list", "--all=yes"), -1);
	assert_int_equal(parse(&a, "silence", "list", "--rule", "r"), -1);

	assert_int_equal(cli_word_in("open", "closed|open|half_open"), 0);
	assert_int_equal(cli_word_in("ope", "closed|open|half_open"), -1);
	assert_int_equal(cli_word_in("", "closed|open"), -1);
	assert_int_equal(cli_rule_name_valid("checkout-timeouts.v2_x"), 0);
	assert_int_equal(cli_rule_name_valid(""), -1);
	assert_int_equal(cli_rule_name_valid("a/b"), -1);

	/* required flags are not in brackets; --match repeats */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(cli_help_cmd(f, cli_cmd_find(cmds, NCMDS, "silence add")), 0);
	fclose(f);
	assert_non_null(strstr(buf, "usage: errq silence add --rule NAME [--match FIELD=GLOB]... --for DURATION\n"
				    "                        --comment TEXT\n"));
	for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1)
		assert_true(nl - line <= 79);
	free(buf);
}

static void assert_json(json_t *j, const char *want)
{
	assert_non_null(j);
	char *got = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	json_decref(j);
}

static void test_key_next(void **state)
{
	char f[CLI_KEY_FIELD_MAX], v[CLI_KEY_VALUE_MAX];
	const char *p = "service=checkout,error_type=a\\,b\\=c\\\\d,details.region=";
	assert_int_equal(cli_key_next(&p, f, sizeof(f), v, sizeof(v)), 1);
	assert_string_equal(f, "service");
	assert_string_equal(v, "checkout");
	assert_int_equal(cli_key_next(&p, f, sizeof(f), v, sizeof(v)), 1);
	assert_string_equal(f, "error_type");
	assert_string_equal(v, "a,b=c\\d");
	assert_int_equal(cli_key_next(&p, f, sizeof(f), v, sizeof(v)), 1);
	assert_string_equal(f, "details.region");
	assert_string_equal(v, "");
	assert_int_equal(cli_key_next(&p, f, sizeof(f), v, sizeof(v)), 0);

	/* malformed: no '=', an empty field, '\' in a field, a trailing ',' or '\' */
	const char *bad[] = {"(overflow)", "=x", "a\\b=1", "a=1,", "a=1\\", "a=1,b"};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		p = bad[k];
		int r;
		while ((r = cli_key_next(&p, f, sizeof(f), v, sizeof(v))) == 1)
			;
		assert_int_equal(r, -1);
	}
	/* '=' in a value needs no escape; values are cut to the buffer */
	p = "a=x=y";
	assert_int_equal(cli_key_next(&p, f, sizeof(f), v, 3), 1);
	assert_string_equal(v, "x=");
	p = "";
	assert_int_equal(cli_key_next(&p, f, sizeof(f), v, sizeof(v)), 0);
}

static void test_key_json(void **state)
{
	assert_json(cli_key_json("service=checkout,error_type=TimeoutError"),
		    "{\"service\":\"checkout\",\"error_type\":\"TimeoutError\"}");
	/* group_by order is kept, escapes undone */
	assert_json(cli_key_json("error_type=a\\,b,details.region=,service=x"),
		    "{\"error_type\":\"a,b\",\"details.region\":\"\",\"service\":\"x\"}");
	/* a rule without group_by, the overflow circuit, NULL */
	assert_json(cli_key_json(""), "{}");
	assert_json(cli_key_json("(overflow)"), "{}");
	assert_json(cli_key_json(NULL), "{}");
	/* invalid UTF-8 cannot reach JSON */
	assert_json(cli_key_json("service=a\xff" "b"), "{\"service\":\"a\xef\xbf\xbd" "b\"}");
	/* a malformed rest adds nothing */
	assert_json(cli_key_json("service=x,oops"), "{\"service\":\"x\"}");
}

static void test_matchers_join(void **state)
{
	char out[64];
	const char *m[] = {"service=checkout", "error_type=Timeout*", "details.k=a,b\\c=d"};
	assert_int_equal(cli_matchers_join(m, 3, out, sizeof(out)), 0);
	assert_string_equal(out, "service=checkout,error_type=Timeout*,details.k=a\\,b\\\\c\\=d");
	/* what was joined reads back with the key parser */
	char f[CLI_KEY_FIELD_MAX], v[CLI_KEY_VALUE_MAX];
	const char *p = out;
	for (int k = 0; k < 3; k++)
		assert_int_equal(cli_key_next(&p, f, sizeof(f), v, sizeof(v)), 1);
	assert_string_equal(f, "details.k");
	assert_string_equal(v, "a,b\\c=d");
	assert_int_equal(cli_matchers_join(m, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(cli_matchers_join(m, 3, out, 20), -1);
}

static void test_alert_ids(void **state)
{
	uint8_t id[CLI_ALERT_ID_LEN];
	char suffix[2 * CLI_ALERT_ID_LEN + 1], buf[32];
	const uint8_t want[CLI_ALERT_ID_LEN] = {0x01, 0xa2, 0x16, 0x49, 0x87, 0xea, 0x73, 0x7e,
						0x80, 0x91, 0xf4, 0x5d, 0x21, 0x28, 0x64, 0xb3};
	assert_int_equal(cli_alert_id_parse("01a2164987ea737e8091f45d212864b3", id, suffix, sizeof(suffix)), 1);
	assert_memory_equal(id, want, sizeof(want));
	assert_int_equal(cli_alert_id_parse("01A21649-87EA-737E-8091-F45D212864B3", id, suffix, sizeof(suffix)), 1);
	assert_memory_equal(id, want, sizeof(want));
	assert_int_equal(cli_alert_id_parse("F45D212864B3", id, suffix, sizeof(suffix)), 0);
	assert_string_equal(suffix, "f45d212864b3");
	assert_int_equal(cli_alert_id_parse("2864b3", id, suffix, sizeof(suffix)), 0);
	assert_int_equal(cli_alert_id_parse("864b3", id, suffix, sizeof(suffix)), -1);   /* too short */
	assert_int_equal(cli_alert_id_parse("f45d21286xb3", id, suffix, sizeof(suffix)), -1);
	assert_int_equal(cli_alert_id_parse("01a21649-87ea-737e-8091f45d212864b3", id, suffix, sizeof(suffix)), -1);
	assert_int_equal(cli_alert_id_parse("f45d212864b3", id, suffix, 8), -1);         /* suffix too small */
	/* the short id is the random end, not the time-ordered start */
	assert_string_equal(cli_alert_short_id(buf, sizeof(buf), want, sizeof(want)), "f45d212864b3");
	assert_int_equal(strlen(buf), CLI_ALERT_SHORT_HEX);
	assert_string_equal(cli_alert_short_id(buf, sizeof(buf), want, 4), "01a21649");
	assert_string_equal(cli_alert_short_id(buf, sizeof(buf), want, 0), "");
}

static void test_alert_cells(void **state)
{
	char buf[32];
	/* NEXT: time left, rounded up; due once passed; none */
	assert_string_equal(cli_fmt_until(buf, sizeof(buf), NOW_NS, NOW_NS + 42 * SEC), "in 42s");
	assert_string_equal(cli_fmt_until(buf, sizeof(buf), NOW_NS, NOW_NS + 41 * SEC + 1), "in 42s");
	assert_string_equal(cli_fmt_until(buf, sizeof(buf), NOW_NS, NOW_NS + 117 * SEC), "in 1m 57s");
	assert_string_equal(cli_fmt_until(buf, sizeof(buf), NOW_NS, NOW_NS + 7500 * SEC), "in 2h 5m");
	assert_string_equal(cli_fmt_until(buf, sizeof(buf), NOW_NS, NOW_NS + 1), "in 1s");
	assert_string_equal(cli_fmt_until(buf, sizeof(buf), NOW_NS, NOW_NS), "due");
	assert_string_equal(cli_fmt_until(buf, sizeof(buf), NOW_NS, NOW_NS - 5 * SEC), "due");
	assert_string_equal(cli_fmt_until(buf, sizeof(buf), NOW_NS, 0), "-");

	/* DELIVERY: notifier:status, the attempts when more than one */
	char mem[40];
	struct errq_buf b;
	errq_buf_init_fixed(&b, mem, sizeof(mem));
	assert_int_equal(cli_fmt_delivery(&b, "ops", "delivered", 1), 0);
	assert_int_equal(cli_fmt_delivery(&b, "pager", "dead", 8), 0);
	assert_string_equal(mem, "ops:delivered pager:dead(8)");
	assert_int_equal(cli_fmt_delivery(&b, "journal", "delivered", 1), -1); /* full: unchanged */
	assert_string_equal(mem, "ops:delivered pager:dead(8)");
	assert_int_equal(cli_fmt_delivery(&b, "x", "pending", 0), 0);
	assert_string_equal(mem, "ops:delivered pager:dead(8) x:pending");

	/* a circuits table: the key is cut first, state, times and counts never */
	const struct cli_col cols[] = {
	    {"RULE", 0, 1, 12, 0},     {"KEY", 0, 2, 16, 0},   {"STATE", 0, 0, 0, 0},
	    {"SINCE", 0, 0, 0, 0},     {"FAILURES", CLI_COL_RIGHT, 0, 0, 0}, {"NEXT", 0, 0, 0, 0},
	};
	struct cli_table t;
	cli_table_init(&t, cols, 6);
	const char *r1[] = {"checkout-timeouts", "service=checkout,error_type=TimeoutError", "open", "2m ago",
			    "3 in 60s", "in 58s"};
	const char *r2[] = {"everything", "", "half_open", "10s ago", "120 in 3600s", "in 1m 57s"};
	assert_int_equal(cli_table_add(&t, r1, NULL), 0);
	assert_int_equal(cli_table_add(&t, r2, NULL), 0);
	char *out = render(&t, 200);
	assert_string_equal(out, "RULE               KEY                                       STATE      SINCE"
				 "        FAILURES  NEXT\n"
				 "checkout-timeouts  service=checkout,error_type=TimeoutError  open       2m ago"
				 "       3 in 60s  in 58s\n"
				 "everything                                                   half_open  10s ago"
				 "  120 in 3600s  in 1m 57s\n");
	free(out);
	out = render(&t, 80);
	/* 80 columns: the key gives up what the row needs (down to 16), the rule keeps its name */
	assert_string_equal(out, "RULE               KEY               STATE      SINCE        FAILURES  NEXT\n"
				 "checkout-timeouts  service=checkou" CLI_ELLIPSIS
				 "  open       2m ago       3 in 60s  in 58s\n"
				 "everything                           half_open  10s ago  120 in 3600s  in 1m 57s\n");
	free(out);
	cli_table_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_args_defaults),
	    cmocka_unit_test(test_args_env),
	    cmocka_unit_test(test_args_tls),
	    cmocka_unit_test(test_args_global_anywhere),
	    cmocka_unit_test(test_args_command_flags),
	    cmocka_unit_test(test_args_usage_errors),
	    cmocka_unit_test(test_args_positional_and_help),
	    cmocka_unit_test(test_args_backup),
	    cmocka_unit_test(test_args_filters),
	    cmocka_unit_test(test_glob_and_names),
	    cmocka_unit_test(test_code_task_filters),
	    cmocka_unit_test(test_event_id_parse),
	    cmocka_unit_test(test_help_text),
	    cmocka_unit_test(test_help_own_flags),
	    cmocka_unit_test(test_exit_codes),
	    cmocka_unit_test(test_reach_reason),
	    cmocka_unit_test(test_fmt_ms),
	    cmocka_unit_test(test_fmt_ago),
	    cmocka_unit_test(test_fmt_bytes),
	    cmocka_unit_test(test_fmt_span),
	    cmocka_unit_test(test_spark_buckets),
	    cmocka_unit_test(test_sparkline),
	    cmocka_unit_test(test_detail),
	    cmocka_unit_test(test_line_format),
	    cmocka_unit_test(test_text_width),
	    cmocka_unit_test(test_cell_text),
	    cmocka_unit_test(test_utf8_fix),
	    cmocka_unit_test(test_fit_columns),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_table_big_cells),
	    cmocka_unit_test(test_table_color),
	    cmocka_unit_test(test_kv),
	    cmocka_unit_test(test_args_families),
	    cmocka_unit_test(test_args_alerting_flags),
	    cmocka_unit_test(test_key_next),
	    cmocka_unit_test(test_key_json),
	    cmocka_unit_test(test_matchers_join),
	    cmocka_unit_test(test_alert_ids),
	    cmocka_unit_test(test_alert_cells),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
