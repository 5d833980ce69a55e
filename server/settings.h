/* settings.h: errqd's settings, one declarative table (settings.c) read from the YAML config
 * file and overridden by command-line flags.  deploy/errqd.yaml documents every setting. */
#ifndef ERRQD_SETTINGS_H
#define ERRQD_SETTINGS_H
#include <stddef.h>
#include <stdint.h>

#define SETTINGS_STR_MAX 1024

enum storage_kind { STORAGE_SQLITE = 0, STORAGE_NONE = 1 };

struct settings {
	char listen[SETTINGS_STR_MAX];      /* gRPC HOST:PORT (port 0 = ephemeral) */
	char http_listen[SETTINGS_STR_MAX]; /* HTTP HOST:PORT for health and metrics ("" = off) */
	char database[SETTINGS_STR_MAX];    /* SQLite file */
	char name[SETTINGS_STR_MAX];        /* collector name (in alerts and logs) */
	int log_level;                      /* enum errq_log_level */
	int durability;                     /* enum store_durability */
	int storage;                        /* enum storage_kind */
	int64_t cache_mib;                  /* SQLite page cache of the writer */
	int64_t cq_threads;                 /* gRPC completion-queue threads */
	int64_t ingest_queue_batches;       /* bounded ingest queue, in batches */
	int64_t ingest_queue_bytes;         /* ... and in encoded bytes */
	int64_t max_streams;                /* concurrent calls per connection */
	uint64_t shutdown_timeout_ns;       /* SIGTERM: time allowed for draining */
	uint64_t retention_ns;              /* raw events older than this are deleted */
	uint64_t alert_history_ns;          /* alert history older than this is deleted */
	uint64_t readiness_queue_full_after_ns; /* saturated this long: not ready (0 = never) */
	int64_t events_per_group;           /* newest events kept per group (0 = all) */
	int64_t groups_per_service;         /* more new groups go to the service's overflow group */
	char port_file[SETTINGS_STR_MAX];   /* flag only: write the bound gRPC port here */
};

/* Defaults of every setting. */
void settings_defaults(struct settings *s);
/* Reads a YAML config file over s.  Returns 0, or -1 with "'FILE' line N: key 'K': reason". */
int settings_load_file(struct settings *s, const char *path, char *err, size_t errsz);
/* Sets one setting by name from text (flags use this too).  Returns 0 or -1 with reason. */
int settings_set(struct settings *s, const char *key, const char *value, char *err, size_t errsz);
/* Prints every setting with its default and help, as a commented YAML file. */
void settings_print_sample(void *file);
#endif
