/* settings.h: errqd's settings, one declarative table (settings.c).  Each value comes from, in
 * order, the default, the YAML config file, the environment (ERRQ_<NAME>) and the command-line
 * flags, a later source overriding an earlier one; each setting remembers which source set it.
 * A setting named "section.key" is the key of a nested mapping in the file ("tls:" then
 * "  cert: ..."), ERRQ_SECTION_KEY in the environment and --set section.key=V on the command line.
 * docs/configuration.md and deploy/errqd.yaml are generated from the table. */
#ifndef ERRQD_SETTINGS_H
#define ERRQD_SETTINGS_H
#include <stddef.h>
#include <stdint.h>

#define SETTINGS_STR_MAX 1024
#define SETTINGS_COUNT 29 /* rows of the table in settings.c (checked when it compiles) */
#define SETTINGS_FLAG_MAX 32
#define SETTINGS_ENV_PREFIX "ERRQ_"

enum storage_kind { STORAGE_SQLITE = 0, STORAGE_NONE = 1, STORAGE_POSTGRES = 2 };

enum settings_origin { SETTINGS_FROM_DEFAULT, SETTINGS_FROM_FILE, SETTINGS_FROM_ENV, SETTINGS_FROM_FLAG };

/* Where a setting's value came from: the last source that set it. */
struct settings_source {
	int origin;                   /* enum settings_origin */
	int line;                     /* SETTINGS_FROM_FILE: the value's line in settings.file */
	char flag[SETTINGS_FLAG_MAX]; /* SETTINGS_FROM_FLAG: "--listen", "--set" */
};

struct settings {
	char listen[SETTINGS_STR_MAX];      /* gRPC HOST:PORT (port 0 = ephemeral) */
	char http_listen[SETTINGS_STR_MAX]; /* HTTP HOST:PORT for health and metrics ("" = off) */
	char database[SETTINGS_STR_MAX];    /* a SQLite file path or URL, or a postgres:// URL (store_url.h) */
	char name[SETTINGS_STR_MAX];        /* collector name (in alerts and logs) */
	int log_level;                      /* enum errq_log_level */
	int log_format;                     /* enum errq_log_format */
	int durability;                     /* enum store_durability */
	int storage;                        /* enum storage_kind */
	int64_t cache_mib;                  /* SQLite page cache of the writer */
	int64_t cq_threads;                 /* gRPC completion-queue threads */
	int64_t ingest_queue_batches;       /* bounded ingest queue, in batches */
	int64_t ingest_queue_bytes;         /* ... and in decoded bytes, all streams (ingest.h) */
	int64_t max_streams;                /* concurrent calls per connection */
	uint64_t shutdown_timeout_ns;       /* SIGTERM: time allowed for draining */
	uint64_t retention_ns;              /* raw events older than this are deleted */
	uint64_t alert_history_ns;          /* alert history older than this is deleted */
	uint64_t readiness_queue_full_after_ns; /* saturated this long: not ready (0 = never) */
	int64_t events_per_group;           /* newest events kept per group (0 = all) */
	int64_t groups_per_service;         /* more new groups go to the service's overflow group */
	int64_t min_free_disk;              /* bytes: below it, new batches are refused (0 = no floor) */
	char tls_cert[SETTINGS_STR_MAX];    /* tls.cert: PEM file ("" = no TLS) */
	char tls_key[SETTINGS_STR_MAX];     /* tls.key */
	char tls_client_ca[SETTINGS_STR_MAX]; /* tls.client_ca: mutual TLS ("" = off) */
	int auth_open;                      /* auth.open: 1 = no credentials needed off loopback */
	int64_t quota_rate, quota_burst;    /* quota.events_per_second, quota.burst (server/quota.h) */
	int64_t quota_service_rate, quota_service_burst; /* quota.service_events_per_second, _burst */
	char quota_service_overrides[SETTINGS_STR_MAX];   /* quota.service_overrides */
	char port_file[SETTINGS_STR_MAX];   /* flag only: write the bound gRPC port here */
	char file[SETTINGS_STR_MAX];        /* the config file read ("" = none), for the sources */
	struct settings_source src[SETTINGS_COUNT]; /* by row of the table */
};

/* Defaults of every setting (source: default). */
void settings_defaults(struct settings *s);
/* Reads a YAML config file over s.  Returns 0, or -1 with "'FILE' line N: key 'K': reason". */
int settings_load_file(struct settings *s, const char *path, char *err, size_t errsz);
/* Reads ERRQ_<NAME> (the setting's name in upper case) for every setting of the table from envp
 * (NULL-terminated "NAME=VALUE" strings: environ); every other variable, ERRQ_ ones included, is
 * ignored.  An empty value sets the empty string (refused where that is not a value).  Returns 0,
 * or -1 with "environment variable ERRQ_X: reason". */
int settings_load_env(struct settings *s, char *const *envp, char *err, size_t errsz);
/* Sets one setting by name from text, as given by a flag ("--listen", or "--set" for
 * --set KEY=VALUE; the source printed by --print-config).  Returns 0, or -1 with
 * "flag --x: reason". */
int settings_set(struct settings *s, const char *flag, const char *key, const char *value, char *err,
		 size_t errsz);
/* The setting a dedicated flag sets ("db" -> "database"), or NULL when there is none. */
const char *settings_flag_key(const char *flag);
/* Writes where the setting key came from: "default", "file 'PATH' line N", "env ERRQ_X",
 * "flag --x".  Returns 0, or -1 for an unknown key. */
int settings_source_text(const struct settings *s, const char *key, char *buf, size_t bufsz);

/* After every source: checks the database setting against the others (unless storage is
 * none).  The database must parse (store_url.h); storage, when no source set it, becomes the
 * database's kind, and when one did, must match it; with a PostgreSQL database the settings
 * that mean something for SQLite only (cache_mib, min_free_disk, durability) are refused when a source set
 * them.  Returns 0, or -1 with "setting 'x' (where it came from) ...". */
int settings_check_database(struct settings *s, char *err, size_t errsz);

/* Prints every setting with its default and help, as a commented YAML file (deploy/errqd.yaml). */
void settings_print_sample(void *file);
/* Prints every setting's value in s and where it came from, as a YAML file errqd can read. */
void settings_print_effective(void *file, const struct settings *s);
/* Prints docs/configuration.md: the table of settings in Markdown. */
void settings_print_docs(void *file);
#endif
