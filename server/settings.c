/* settings.c: the table of errqd settings (after redis's static_configs[]).
 * One row per setting: name, type, where it lives, its default as text (parsed by the same
 * code as the config file, so a default can never be a value the parser would refuse), the
 * bounds and one line of help. */
#include "settings.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_yaml.h"
#include "storage.h"

enum stype { T_STRING, T_ADDR, T_INT, T_DURATION, T_ENUM };

struct setting {
	const char *name;
	enum stype type;
	size_t off;
	const char *def;
	int64_t min, max;           /* T_INT bounds */
	const char *const *choices; /* T_ENUM, NULL-terminated; the index is the value */
	const char *help;
};

static const char *const log_levels[] = {"debug", "info", "warn", "error", "off", NULL};
static const char *const durabilities[] = {"normal", "full", NULL};
static const char *const storages[] = {"sqlite", "none", NULL};

#define OFF(f) offsetof(struct settings, f)
static const struct setting table[] = {
    {"listen", T_ADDR, OFF(listen), "127.0.0.1:4770", 0, 0, NULL,
     "gRPC address HOST:PORT (port 0 picks a free one)"},
    {"http_listen", T_STRING, OFF(http_listen), "127.0.0.1:4771", 0, 0, NULL,
     "HTTP address for /healthz and /metrics (reserved; served from a later release)"},
    {"database", T_STRING, OFF(database), "errq.db", 0, 0, NULL, "SQLite database file"},
    {"name", T_STRING, OFF(name), "errqd", 0, 0, NULL, "this collector's name"},
    {"log_level", T_ENUM, OFF(log_level), "info", 0, 0, log_levels, "debug | info | warn | error | off"},
    {"durability", T_ENUM, OFF(durability), "normal", 0, 0, durabilities,
     "normal: an acknowledged event survives a crash of errqd; full: also a power loss"},
    {"storage", T_ENUM, OFF(storage), "sqlite", 0, 0, storages,
     "sqlite, or none (acknowledge without storing: for measuring the transport only)"},
    {"cache_mib", T_INT, OFF(cache_mib), "64", 1, 65536, NULL, "SQLite page cache of the writer, MiB"},
    {"cq_threads", T_INT, OFF(cq_threads), "2", 1, 64, NULL, "gRPC completion-queue threads"},
    {"ingest_queue_batches", T_INT, OFF(ingest_queue_batches), "1024", 1, 1 << 20, NULL,
     "ingest queue bound in batches; when full, streams stop being read (backpressure)"},
    {"ingest_queue_bytes", T_INT, OFF(ingest_queue_bytes), "16777216", 4096, INT64_C(1) << 40, NULL,
     "ingest queue bound in bytes of decoded batches"},
    {"max_streams", T_INT, OFF(max_streams), "1024", 1, 1 << 20, NULL,
     "concurrent calls per client connection"},
    {"shutdown_timeout", T_DURATION, OFF(shutdown_timeout_ns), "8s", 0, 0, NULL,
     "on SIGTERM, how long to drain: commit and acknowledge what was read"},
    {"retention", T_DURATION, OFF(retention_ns), "30d", 0, 0, NULL,
     "raw events older than this are deleted (group counts stay; minute counts fold into hours)"},
    {"events_per_group", T_INT, OFF(events_per_group), "10000", 0, INT64_C(1) << 40, NULL,
     "newest events kept per group, older ones deleted in the background (0 = keep all)"},
    {"groups_per_service", T_INT, OFF(groups_per_service), "10000", 0, INT64_C(1) << 32, NULL,
     "groups per service; new fingerprints past it count in one overflow group (0 = no limit)"},
    {"readiness_queue_full_after", T_DURATION, OFF(readiness_queue_full_after_ns), "30s", 0, 0, NULL,
     "/readyz turns 503 when streams have waited for room in the ingest queue this long without a break (0s = never)"},
    {"alert_history", T_DURATION, OFF(alert_history_ns), "30d", 0, 0, NULL,
     "resolved alerts, circuit transitions and ended silences older than this are deleted"},
};
#define N_SETTINGS (sizeof(table) / sizeof(table[0]))

static const struct setting *find(const char *name)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

static int apply(struct settings *s, const struct setting *t, const char *v, char *err, size_t errsz)
{
	void *p = (char *)s + t->off;
	switch (t->type) {
	case T_ADDR: {
		const char *colon = strrchr(v, ':');
		char *end;
		if (!colon || colon == v) {
			errq_snprintf(err, errsz, "'%s' is not HOST:PORT", v);
			return -1;
		}
		errno = 0;
		unsigned long port = strtoul(colon + 1, &end, 10);
		if (errno || *end || colon[1] == '\0' || port > 65535) {
			errq_snprintf(err, errsz, "'%s' has no valid port (0-65535)", v);
			return -1;
		}
	}
		/* fall through */
	case T_STRING:
		if (strlen(v) >= SETTINGS_STR_MAX) {
			errq_snprintf(err, errsz, "longer than %d bytes", SETTINGS_STR_MAX - 1);
			return -1;
		}
		errq_snprintf(p, SETTINGS_STR_MAX, "%s", v);
		return 0;
	case T_INT: {
		char *end;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (errno || *end || end == v || n < t->min || n > t->max) {
			errq_snprintf(err, errsz, "'%s' is not an integer in [%" PRId64 ", %" PRId64 "]", v,
				      t->min, t->max);
			return -1;
		}
		*(int64_t *)p = n;
		return 0;
	}
	case T_DURATION:
		if (errq_parse_duration(v, (uint64_t *)p)) {
			errq_snprintf(err, errsz, "'%s' is not a duration (like 500ms, 10s, 5m, 2h)", v);
			return -1;
		}
		return 0;
	case T_ENUM:
		for (int i = 0; t->choices[i]; i++)
			if (strcmp(t->choices[i], v) == 0) {
				*(int *)p = i;
				return 0;
			}
		{
			struct errq_buf b;
			errq_buf_init(&b, 256);
			for (int i = 0; t->choices[i]; i++)
				errq_buf_printf(&b, "%s%s", i ? ", " : "", t->choices[i]);
			errq_snprintf(err, errsz, "'%s' is not one of: %s", v, b.p ? b.p : "");
			errq_buf_free(&b);
		}
		return -1;
	}
	return -1;
}

void settings_defaults(struct settings *s)
{
	char err[256];
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < N_SETTINGS; i++) {
		int rc = apply(s, &table[i], table[i].def, err, sizeof(err));
		(void)rc;
	}
}

int settings_set(struct settings *s, const char *key, const char *value, char *err, size_t errsz)
{
	const struct setting *t = find(key);
	char why[256];
	if (!t) {
		errq_snprintf(err, errsz, "unknown setting '%s'", key);
		return -1;
	}
	if (apply(s, t, value, why, sizeof(why))) {
		errq_snprintf(err, errsz, "%s: %s", key, why);
		return -1;
	}
	return 0;
}

/* Keys that rules.c reads from the same file (notifiers, rules): skipped here. */
static int rules_key(const char *k)
{
	return strcmp(k, "notifiers") == 0 || strcmp(k, "rules") == 0;
}

int settings_load_file(struct settings *s, const char *path, char *err, size_t errsz)
{
	struct errq_yaml y;
	char why[256];
	int rc = -1;
	if (errq_yaml_load(&y, path, err, errsz))
		return -1;
	yaml_node_t *root = errq_yaml_root(&y);
	if (!root) { /* an empty file: all defaults */
		rc = 0;
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		errq_snprintf(err, errsz, "'%s' line %d: the top level must be a mapping of settings", path,
			      errq_yaml_line(root));
		goto out;
	}
	unsigned seen[N_SETTINGS];
	memset(seen, 0, sizeof(seen));
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = errq_yaml_node(&y, pr->key), *vn = errq_yaml_node(&y, pr->value);
		const char *k = errq_yaml_scalar(kn);
		if (!k) {
			errq_snprintf(err, errsz, "'%s' line %d: a setting name must be a plain string", path,
				      errq_yaml_line(kn));
			goto out;
		}
		if (rules_key(k))
			continue;
		const struct setting *t = find(k);
		if (!t) {
			errq_snprintf(err, errsz, "'%s' line %d: key '%s': unknown setting", path,
				      errq_yaml_line(kn), k);
			goto out;
		}
		if (seen[t - table]++) {
			errq_snprintf(err, errsz, "'%s' line %d: key '%s': set twice", path, errq_yaml_line(kn), k);
			goto out;
		}
		const char *v = errq_yaml_scalar(vn);
		if (!v) {
			errq_snprintf(err, errsz, "'%s' line %d: key '%s': expected a single value", path,
				      errq_yaml_line(vn), k);
			goto out;
		}
		if (apply(s, t, v, why, sizeof(why))) {
			errq_snprintf(err, errsz, "'%s' line %d: key '%s': %s", path, errq_yaml_line(vn), k, why);
			goto out;
		}
	}
	rc = 0;
out:
	errq_yaml_free(&y);
	return rc;
}

void settings_print_sample(void *file)
{
	FILE *f = file;
	fprintf(f, "# errqd configuration: every setting with its default.\n");
	for (size_t i = 0; i < N_SETTINGS; i++)
		fprintf(f, "\n# %s\n%s: \"%s\"\n", table[i].help, table[i].name, table[i].def);
	fprintf(f, "\n"
		   "# Alert rules and where alerts go (docs/alerts.md has every key; SIGHUP or\n"
		   "# 'errq rules reload' reloads them, 'errq rules check FILE' validates a file):\n"
		   "#\n"
		   "# notifiers:\n"
		   "#   - name: ops\n"
		   "#     type: webhook            # webhook | log\n"
		   "#     url: http://127.0.0.1:9000/alerts\n"
		   "#     timeout: 5s\n"
		   "#     max_attempts: 8\n"
		   "#     secret: \"hmac key\"       # signs each body (X-Errq-Signature)\n"
		   "# rules:\n"
		   "#   - name: checkout-timeouts\n"
		   "#     match: {service: checkout, error_type: \"Timeout*\"}\n"
		   "#     group_by: [service, error_type]\n"
		   "#     trip: {failures: 3, window: 60s}\n"
		   "#     recovery_timeout: 60s\n"
		   "#     half_open: {probe: 30s, failures: 1}\n"
		   "#     severity: critical\n"
		   "#     notify: [ops]\n");
}
