/* cli_args.h: the errq command line: what a subcommand declares, the flags, parsing, help.
 *
 * One table of subcommands (struct cli_cmd, in errq.c) and one table of flags (cli_args.c)
 * produce `errq --help`, `errq help CMD`, `errq CMD --help` and the usage errors, so they
 * cannot drift.  Global flags (--addr, -o, --no-color, --timeout) are accepted before or
 * after the subcommand; a subcommand's own flags anywhere after `errq`, but only by the
 * subcommands that declare them.
 *
 * Pure: parsing reads no environment (main passes ERRQ_ADDR and NO_COLOR to cli_args_init)
 * and takes "now" as an argument, so tests/unit/test_cli.c runs it as is. */
#ifndef ERRQ_CLI_ARGS_H
#define ERRQ_CLI_ARGS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_DEFAULT_ADDR "127.0.0.1:4770"
#define CLI_DEFAULT_LIMIT 100           /* never below 50 (issue 2) */
#define CLI_LIMIT_MAX 100000            /* rows one command collects (all are held for the table) */
#define CLI_DEFAULT_TIMEOUT_MS 5000L
#define CLI_TIMEOUT_MAX_MS (24L * 3600 * 1000)
/* `errq admin backup` without --timeout: the collector's own bound on a backup
 * (STORE_BACKUP_MAX_NS, one hour) and a minute more */
#define CLI_BACKUP_TIMEOUT_MS (61L * 60 * 1000)
#define CLI_MAX_RATE_MIB_MAX 1048576L   /* --max-rate: 1 MiB/s to 1 TiB/s */
#define CLI_MAX_ARGS 8                  /* positional arguments kept */
#define CLI_GLOB_MAX 256                /* bytes of a --type, --code or --task glob (SVC_GLOB_MAX) */
#define CLI_NAME_MAX 1024               /* bytes of a --service, --env or fingerprint */
#define CLI_EVENT_ID_LEN 16             /* bytes of an event id (32 hex digits) */
#define CLI_FINGERPRINT_LEN 16          /* hex digits of a fingerprint (the collector's FNV-1a, 64 bits) */
#define CLI_RULE_NAME_MAX 63            /* bytes of a rule name (RULES_NAME_MAX - 1) */
#define CLI_MAX_MATCH 16                /* --match given at most this many times */
#define CLI_MATCH_FIELD_MAX 136         /* bytes of a --match field ("details." + 128) */
#define CLI_COMMENT_MAX 511             /* bytes of a silence's --comment */
#define CLI_SILENCE_MIN_NS UINT64_C(1000000000)                        /* --for: 1s ... */
#define CLI_TOKEN_MAX 4096              /* bytes of --token / ERRQ_TOKEN (liberrq's bound too) */
#define CLI_MAX_SERVICES 64             /* --service given at most this many times (token new) */
#define CLI_SERVICE_MAX 128             /* bytes of one of them (a service name or glob) */
#define CLI_SILENCE_MAX_NS (UINT64_C(90) * 86400 * UINT64_C(1000000000)) /* ... to 90d */

enum cli_output { CLI_OUT_TABLE, CLI_OUT_JSON, CLI_OUT_JSONL };

/* The subcommand flags a command may declare (struct cli_cmd.flags).  Append new filters
 * here and in cli_args.c's flag table. */
enum {
	CLI_F_SERVICE = 1u << 0,
	CLI_F_SINCE = 1u << 1,
	CLI_F_LIMIT = 1u << 2,
	CLI_F_GROUP = 1u << 3,
	CLI_F_ENV = 1u << 4,
	CLI_F_TYPE = 1u << 5,
	CLI_F_STATUS = 1u << 6,
	CLI_F_UNTIL = 1u << 7,
	CLI_F_SORT = 1u << 8,
	CLI_F_RULE = 1u << 9,
	CLI_F_STATE = 1u << 10,
	CLI_F_MATCH = 1u << 11,
	CLI_F_FOR = 1u << 12,
	CLI_F_COMMENT = 1u << 13,
	CLI_F_ALL = 1u << 14,
	CLI_F_FORCE = 1u << 15,
	CLI_F_MAX_RATE = 1u << 16,
	CLI_F_NAME = 1u << 17,
	CLI_F_ROLE = 1u << 18,
	CLI_F_CODE = 1u << 19,
	CLI_F_TASK = 1u << 20,
};

/* --sort of `errq groups` (the values of query.proto's GroupSort). */
enum cli_sort { CLI_SORT_LAST_SEEN = 0, CLI_SORT_COUNT = 1, CLI_SORT_FIRST_SEEN = 2 };

struct cli_ctx;

/* One subcommand.  run returns the process exit code (enum cli_exit).  A name of two words
 * ("rules list") is a command of a family: `errq rules list` names it, and `errq rules`
 * alone is a usage error listing the family's commands (unless "rules" is a command too,
 * as "alerts" is beside "alerts replay"). */
struct cli_cmd {
	const char *name;
	int (*run)(struct cli_ctx *ctx);
	const char *summary;     /* one lowercase line for `errq --help` */
	const char *args;        /* positional synopsis ("<fingerprint>", "[<command>]") or NULL */
	unsigned flags;          /* CLI_F_* it accepts */
	unsigned min_args, max_args;
	const char *description; /* paragraph(s) for `errq help CMD`, or NULL */
	unsigned required;       /* CLI_F_* that must be given (a subset of flags) */
	const char *statuses;    /* --status values, '|'-separated; NULL: unresolved|resolved|ignored */
};

/* The subcommand table (cli_cmds.c): errq's main and tests/unit/test_cli.c parse with it. */
extern const struct cli_cmd cli_commands[];
extern const size_t cli_ncommands;

struct cli_args {
	/* global flags */
	const char *addr;
	bool addr_set; /* --addr given (else addr is $ERRQ_ADDR or the default) */
	enum cli_output output;
	bool output_set;
	bool no_color;
	long timeout_ms;
	bool timeout_set; /* --timeout given (else a command may choose its own default) */
	bool help;    /* --help / -h anywhere */
	bool version; /* --version */
	/* TLS: on with --tls or --ca; a client certificate with --cert and --key (both or neither) */
	bool tls;
	const char *tls_ca;   /* NULL: the system's roots */
	const char *tls_cert; /* NULL: none */
	const char *tls_key;
	/* --token, or $ERRQ_TOKEN that main sets before parsing (NULL: none): sent as
	 * "authorization: Bearer TOKEN" on every call */
	const char *token;

	/* the subcommand and what it was given */
	const struct cli_cmd *cmd; /* NULL: none named */
	unsigned set;              /* CLI_F_* present on the command line */
	const char *service;       /* "" = all (the last --service) */
	const char *services[CLI_MAX_SERVICES]; /* every --service, in order (token new) */
	size_t nservices;
	const char *name;          /* --name ("" = none) */
	const char *role;          /* --role ("" = none) */
	const char *env;           /* "" = all */
	const char *type_glob;     /* "" = any error type */
	const char *code_glob;     /* "" = any error code */
	const char *task_glob;     /* "" = any task */
	const char *status;        /* "" = any; else unresolved | resolved | ignored */
	const char *since_arg;     /* as written, for messages */
	uint64_t since_ns;         /* 0 = all time */
	const char *until_arg;
	uint64_t until_ns;         /* 0 = now (only with since) */
	enum cli_sort sort;
	uint32_t limit;
	const char *group;
	const char *rule;          /* "" = any */
	const char *state;         /* "" = any; else closed | open | half_open */
	const char *match[CLI_MAX_MATCH]; /* "field=glob" as given */
	size_t nmatch;
	const char *for_arg;
	uint64_t for_ns;           /* --for */
	const char *comment;       /* "" = none */
	bool all;                  /* --all */
	bool force;                /* --force */
	uint32_t max_rate_mib;     /* --max-rate, MiB a second; 0 = unthrottled */
	const char *argv[CLI_MAX_ARGS];
	size_t argc;
};

/* Defaults, then the environment: env_addr is $ERRQ_ADDR, env_no_color $NO_COLOR (either may
 * be NULL; an empty value counts as unset, as no-color.org says). */
void cli_args_init(struct cli_args *a, const char *env_addr, const char *env_no_color);
/* After cli_args_init: $ERRQ_TLS (not empty: --tls), $ERRQ_CA, $ERRQ_CERT, $ERRQ_KEY (each may
 * be NULL; empty counts as unset); the flags override them. */
void cli_args_tls_env(struct cli_args *a, const char *env_tls, const char *env_ca, const char *env_cert,
		      const char *env_key);

/* Parses argv[1..argc) into a.  Returns 0, or -1 with a one-line lowercase reason in err (no
 * "errq: " prefix).  With --help anywhere it returns 0 and sets a->help (a->cmd is the
 * subcommand named, if any), whatever else is wrong.  Strings in a point into argv. */
int cli_args_parse(struct cli_args *a, int argc, char *const *argv, const struct cli_cmd *cmds,
		   size_t ncmds, uint64_t now_ns, char *err, size_t errlen);

const struct cli_cmd *cli_cmd_find(const struct cli_cmd *cmds, size_t ncmds, const char *name);
/* The number of commands named "family ..." (0: family is not one); with buf, their second
 * words as "list, reload or check". */
int cli_cmd_family(const struct cli_cmd *cmds, size_t ncmds, const char *family, char *buf, size_t n);

/* "table" | "json" | "jsonl" -> 0, else -1. */
int cli_output_parse(const char *s, enum cli_output *out);
/* "5s", "250ms", "2m", or a bare number of seconds -> 0, else -1. */
int cli_timeout_parse(const char *s, long *ms);
/* --max-rate: MiB a second, 1 to CLI_MAX_RATE_MIB_MAX.  0 or -1. */
int cli_max_rate_parse(const char *s, long *mib);
/* A decimal count 1..CLI_LIMIT_MAX -> 0, else -1. */
int cli_limit_parse(const char *s, uint32_t *limit);
/* "count" | "last_seen" | "first_seen" (or with '-' for '_') -> 0, else -1. */
int cli_sort_parse(const char *s, enum cli_sort *sort);
/* "unresolved" | "resolved" | "ignored" -> 0, else -1. */
int cli_status_valid(const char *s);
/* s is one of the '|'-separated words of list -> 0, else -1. */
int cli_word_in(const char *s, const char *list);
/* A rule name: 1..CLI_RULE_NAME_MAX of [A-Za-z0-9_.-] -> 0, else -1. */
int cli_rule_name_valid(const char *s);
/* "closed" | "open" | "half_open" (or "half-open") into *state (the API's spelling) -> 0,
 * else -1. */
int cli_state_parse(const char *s, const char **state);
/* A --match value: "field=glob", the field 1..CLI_MATCH_FIELD_MAX bytes without ',', '=',
 * '\', spaces or control characters, the glob at most CLI_GLOB_MAX bytes of valid UTF-8
 * without control characters.  Returns 0 or -1 with a reason in err. */
int cli_match_valid(const char *s, char *err, size_t errlen);
/* A glob of a filter flag (flag is "type", "code" or "task", for the messages): 1..CLI_GLOB_MAX
 * bytes of valid UTF-8 without control characters (only '*' and '?' are special; the
 * collector matches).  Returns 0 or -1 with a reason in err. */
int cli_filter_glob_valid(const char *flag, const char *s, char *err, size_t errlen);
/* The same for a --type glob. */
int cli_glob_valid(const char *s, char *err, size_t errlen);
/* A name (--service, --env, a fingerprint): 1..CLI_NAME_MAX bytes, no control characters.
 * Returns 0 or -1. */
int cli_name_valid(const char *s);
/* A bearer token: 1..CLI_TOKEN_MAX printable ASCII bytes without spaces.  Returns 0 or -1. */
int cli_token_valid(const char *s);
/* The n hex digits of s (either case) lowercased into out (n + 1 bytes).  0, or -1 when one
 * is not a hex digit. */
int cli_hex_lower(const char *s, size_t n, char *out);
/* A fingerprint: CLI_FINGERPRINT_LEN hex digits (either case), lowercased into out.
 * Returns 0 or -1. */
int cli_fingerprint_parse(const char *s, char out[CLI_FINGERPRINT_LEN + 1]);
/* The port of a HOST:PORT (also [V6]:PORT; gRPC's "unix:" targets have none) is a number
 * from 1 to 65535.  Returns 0, or -1 with the reason in err ("port '99999' is out of range
 * 1 to 65535"). */
int cli_addr_check(const char *addr, char *err, size_t errlen);
/* An event id: 32 hex digits (either case), or the same in the 8-4-4-4-12 UUID form, into
 * out.  Returns 0 or -1. */
int cli_event_id_parse(const char *s, uint8_t out[CLI_EVENT_ID_LEN]);

/* Help, to f: the whole tool, or one subcommand.  Return 0 or -1 on a write error. */
int cli_help_main(FILE *f, const struct cli_cmd *cmds, size_t ncmds);
int cli_help_cmd(FILE *f, const struct cli_cmd *c);
#endif
