/* settings.c: the table of errqd settings (after redis's static_configs[]).
 * One row per setting: name, type, where it lives, its default as text (parsed by the same
 * code as the config file, so a default can never be a value the parser would refuse), the
 * bounds, its dedicated flag if any, and one line of help.  The sample config, the effective
 * configuration (--print-config) and docs/configuration.md are all printed from this table. */
#include "settings.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_yaml.h"
#include "storage.h"
#include "store_url.h"

enum stype { T_STRING, T_ADDR, T_ADDR_OR_EMPTY, T_INT, T_DURATION, T_ENUM, T_SIZE };

struct setting {
	const char *name;
	enum stype type;
	size_t off;
	const char *def;
	int64_t min, max;           /* T_INT and T_SIZE bounds */
	const char *const *choices; /* T_ENUM, NULL-terminated; the index is the value */
	const char *flag;           /* the dedicated flag without its dashes, or NULL (--set only) */
	const char *help;
};

static const char *const log_levels[] = {"debug", "info", "warn", "error", "off", NULL};
static const char *const log_formats[] = {"json", "text", NULL};
static const char *const durabilities[] = {"normal", "full", NULL};
static const char *const storages[] = {"sqlite", "none", "postgres", NULL}; /* enum storage_kind */
static const char *const booleans[] = {"false", "true", NULL};

#define OFF(f) offsetof(struct settings, f)
static const struct setting table[] = {
    {"listen", T_ADDR, OFF(listen), "127.0.0.1:4770", 0, 0, NULL, "listen",
     "gRPC address HOST:PORT (port 0 picks a free one)"},
    {"http_listen", T_ADDR_OR_EMPTY, OFF(http_listen), "127.0.0.1:4771", 0, 0, NULL, "http-listen",
     "HTTP address HOST:PORT for /livez, /readyz, /healthz and /metrics (empty disables it)"},
    {"database", T_STRING, OFF(database), "errq.db", 0, 0, NULL, "db",
     "the database: a SQLite file path (or sqlite:///PATH), or a PostgreSQL URL postgres://USER@HOST:PORT/DBNAME?PARAMS "
     "given to libpq whole (its password better in PGPASSFILE or PGPASSWORD; errqd prints it as ***); with a "
     "failover pair list both hosts (host=a,b or postgres://a,b/...): errqd connects to the one that accepts writes "
     "(target_session_attrs=read-write unless the URL says otherwise)"},
    {"name", T_STRING, OFF(name), "errqd", 0, 0, NULL, NULL, "this collector's name"},
    {"log_level", T_ENUM, OFF(log_level), "info", 0, 0, log_levels, "log-level",
     "the least severe level logged (off: nothing)"},
    {"log_format", T_ENUM, OFF(log_format), "json", 0, 0, log_formats, "log-format",
     "json: one JSON object per line; text: one line for humans (time level message key=value)"},
    {"durability", T_ENUM, OFF(durability), "normal", 0, 0, durabilities, "durability",
     "normal: an acknowledged event survives a crash of errqd; full: also a power loss (SQLite only: with a "
     "PostgreSQL database the server's synchronous_commit decides, and setting it is refused)"},
    {"storage", T_ENUM, OFF(storage), "sqlite", 0, 0, storages, "storage",
     "sqlite or postgres: store into database (when not set: the kind of database; set, it must match it), "
     "or none (acknowledge without storing: for measuring the transport only)"},
    {"cache_mib", T_INT, OFF(cache_mib), "64", 1, 65536, NULL, NULL, "SQLite page cache of the writer, MiB (SQLite only: refused when set with a PostgreSQL database)"},
    {"cq_threads", T_INT, OFF(cq_threads), "2", 1, 64, NULL, NULL, "gRPC completion-queue threads"},
    {"ingest_queue_batches", T_INT, OFF(ingest_queue_batches), "1024", 1, 1 << 20, NULL, NULL,
     "ingest queue bound in batches; when full, streams stop being read (backpressure)"},
    {"ingest_queue_bytes", T_INT, OFF(ingest_queue_bytes), "16777216", 4096, INT64_C(1) << 40, NULL, NULL,
     "bytes of decoded batches of all streams (queued, parked, and the room held for a batch while it decodes); at it, streams wait for room"},
    {"max_streams", T_INT, OFF(max_streams), "1024", 1, 1 << 20, NULL, NULL,
     "concurrent calls per client connection"},
    {"shutdown_timeout", T_DURATION, OFF(shutdown_timeout_ns), "8s", 0, 0, NULL, NULL,
     "on SIGTERM, how long to drain: commit and acknowledge what was read"},
    {"retention", T_DURATION, OFF(retention_ns), "30d", 0, 0, NULL, NULL,
     "raw events older than this are deleted (group counts stay; minute counts fold into hours; on PostgreSQL a "
     "whole day at a time, by the clock of the event's id: kept up to a day longer)"},
    {"events_per_group", T_INT, OFF(events_per_group), "10000", 0, UINT32_MAX, NULL, NULL,
     "newest events kept per group, older ones deleted in the background (0 = keep all)"},
    {"groups_per_service", T_INT, OFF(groups_per_service), "10000", 0, UINT32_MAX, NULL, NULL,
     "groups per service; new fingerprints past it count in one overflow group (0 = no limit)"},
    {"readiness_queue_full_after", T_DURATION, OFF(readiness_queue_full_after_ns), "30s", 0, 0, NULL, NULL,
     "/readyz turns 503 when streams have waited for room in the ingest queue this long without a break (0s = never)"},
    {"min_free_disk", T_SIZE, OFF(min_free_disk), "64MiB", 0, INT64_C(1) << 50, NULL, NULL,
     "free space the database's filesystem must keep: below it new batches are refused with UNAVAILABLE and /readyz says why (0 = no floor; SQLite only: refused when set with a PostgreSQL database, whose disk is the server's)"},
    {"alert_history", T_DURATION, OFF(alert_history_ns), "30d", 0, 0, NULL, NULL,
     "resolved alerts, circuit transitions and ended silences older than this are deleted"},
    /* sections: the rows of one section are adjacent (the YAML printers rely on it) */
    {"tls.cert", T_STRING, OFF(tls_cert), "", 0, 0, NULL, NULL,
     "PEM certificate chain (leaf first) of the gRPC and HTTPS listeners (empty: plain text); the files "
     "are re-read when they change and on SIGHUP, a bad new pair is refused and the old one stays"},
    {"tls.key", T_STRING, OFF(tls_key), "", 0, 0, NULL, NULL, "PEM private key of tls.cert (not encrypted)"},
    {"tls.client_ca", T_STRING, OFF(tls_client_ca), "", 0, 0, NULL, NULL,
     "PEM CA bundle: gRPC clients must present a certificate it signed (mutual TLS; HTTP asks for none; "
     "empty: not asked)"},
    {"auth.open", T_ENUM, OFF(auth_open), "false", 0, 0, booleans, NULL,
     "true: serve every caller on a non-loopback listen without credentials (warned at each start); "
     "without credentials and without this, errqd listens on loopback only (docs/security.md)"},
    {"quota.events_per_second", T_INT, OFF(quota_rate), "0", 0, 10000000, NULL, NULL,
     "events per second the collector stores, all services together; more are rejected with quota_exceeded and only counted (0 = no limit)"},
    {"quota.burst", T_INT, OFF(quota_burst), "0", 0, 1000000000, NULL, NULL,
     "events the collector-wide bucket holds: a burst this big passes at once (0 = events_per_second)"},
    {"quota.service_events_per_second", T_INT, OFF(quota_service_rate), "0", 0, 10000000, NULL, NULL,
     "events per second each service may store; more are rejected with quota_exceeded and only counted (0 = no limit)"},
    {"quota.service_burst", T_INT, OFF(quota_service_burst), "0", 0, 1000000000, NULL, NULL,
     "events each service's bucket holds (0 = service_events_per_second)"},
    {"quota.service_overrides", T_STRING, OFF(quota_service_overrides), "", 0, 0, NULL, NULL,
     "services with a rate of their own: SERVICE=RATE[/BURST], comma-separated, at most 64 (RATE 0: no limit)"},
};
#define N_SETTINGS (sizeof(table) / sizeof(table[0]))
_Static_assert(N_SETTINGS == SETTINGS_COUNT, "SETTINGS_COUNT in settings.h must be the number of rows");

static const struct setting *find(const char *name)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

static int apply(struct settings *s, const struct setting *t, const char *v, char *err, size_t errsz)
{
	char qb[ERRQ_QUOTE_BUFSZ]; /* a refused value is quoted in part (errq_quote) */
	void *p = (char *)s + t->off;
	switch (t->type) {
	case T_ADDR_OR_EMPTY:
		if (!*v) {
			*(char *)p = '\0';
			return 0;
		}
		/* fall through */
	case T_ADDR: {
		const char *colon = strrchr(v, ':');
		char *end;
		if (!colon || colon == v) {
			errq_snprintf(err, errsz, "'%s' is not HOST:PORT%s", errq_quote(v, qb),
				      t->type == T_ADDR_OR_EMPTY ? " (or empty to disable it)" : "");
			return -1;
		}
		errno = 0;
		unsigned long port = strtoul(colon + 1, &end, 10);
		if (errno || *end || colon[1] == '\0' || port > 65535) {
			errq_snprintf(err, errsz, "'%s' has no valid port (0-65535)", errq_quote(v, qb));
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
			errq_snprintf(err, errsz, "'%s' is not an integer in [%" PRId64 ", %" PRId64 "]", errq_quote(v, qb),
				      t->min, t->max);
			return -1;
		}
		*(int64_t *)p = n;
		return 0;
	}
	case T_SIZE: {
		/* bytes, or a whole number of KiB, MiB, GiB (powers of 1024) */
		static const struct { const char *sfx; int shift; } units[] = {
		    {"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
		char *end;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		int shift = -1;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && end != v && !errno; i++)
			if (strcmp(end, units[i].sfx) == 0)
				shift = units[i].shift;
		if (shift < 0 || n < 0 || n > (INT64_MAX >> shift) || (n << shift) < t->min || (n << shift) > t->max) {
			errq_snprintf(err, errsz, "'%s' is not a size in [%" PRId64 ", %" PRId64 "] bytes (like 65536, 512KiB, 64MiB, 2GiB)",
				      v, t->min, t->max);
			return -1;
		}
		*(int64_t *)p = (int64_t)(n << shift);
		return 0;
	}
	case T_DURATION:
		if (errq_parse_duration(v, (uint64_t *)p)) {
			errq_snprintf(err, errsz, "'%s' is not a duration (like 500ms, 10s, 5m, 2h)", errq_quote(v, qb));
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
			errq_snprintf(err, errsz, "'%s' is not one of: %s", errq_quote(v, qb), b.p ? b.p : "");
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

int settings_set(struct settings *s, const char *flag, const char *key, const char *value, char *err,
		 size_t errsz)
{
	const struct setting *t = find(key);
	char why[256];
	if (!t) {
		errq_snprintf(err, errsz, "flag %s: unknown setting '%s'", flag, key);
		return -1;
	}
	if (apply(s, t, value, why, sizeof(why))) {
		if (strcmp(flag, "--set") == 0)
			errq_snprintf(err, errsz, "flag --set %s: %s", key, why);
		else
			errq_snprintf(err, errsz, "flag %s: %s", flag, why);
		return -1;
	}
	struct settings_source *src = &s->src[t - table];
	src->origin = SETTINGS_FROM_FLAG;
	errq_snprintf(src->flag, sizeof(src->flag), "%s", flag);
	return 0;
}

const char *settings_flag_key(const char *flag)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (table[i].flag && strcmp(table[i].flag, flag) == 0)
			return table[i].name;
	return NULL;
}

/* ERRQ_ and the name in upper case, a section's dot an underscore: "http_listen" ->
 * "ERRQ_HTTP_LISTEN", "tls.cert" -> "ERRQ_TLS_CERT". */
static void env_name(const struct setting *t, char *buf, size_t bufsz)
{
	size_t n = (size_t)errq_snprintf(buf, bufsz, SETTINGS_ENV_PREFIX "%s", t->name);
	for (size_t i = strlen(SETTINGS_ENV_PREFIX); i < n && i < bufsz; i++)
		buf[i] = buf[i] == '.' ? '_' : (char)toupper((unsigned char)buf[i]);
}

int settings_load_env(struct settings *s, char *const *envp, char *err, size_t errsz)
{
	char name[64], why[256];
	for (size_t i = 0; i < N_SETTINGS && envp; i++) {
		env_name(&table[i], name, sizeof(name));
		size_t nl = strlen(name);
		const char *v = NULL;
		for (char *const *e = envp; *e && !v; e++) /* the first one, like getenv */
			if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=')
				v = *e + nl + 1;
		if (!v)
			continue;
		if (apply(s, &table[i], v, why, sizeof(why))) {
			errq_snprintf(err, errsz, "environment variable %s: %s", name, why);
			return -1;
		}
		s->src[i].origin = SETTINGS_FROM_ENV;
	}
	return 0;
}

int settings_source_text(const struct settings *s, const char *key, char *buf, size_t bufsz)
{
	const struct setting *t = find(key);
	if (!t)
		return -1;
	const struct settings_source *src = &s->src[t - table];
	char name[64];
	switch (src->origin) {
	case SETTINGS_FROM_FILE: errq_snprintf(buf, bufsz, "file '%s' line %d", s->file, src->line); break;
	case SETTINGS_FROM_ENV:
		env_name(t, name, sizeof(name));
		errq_snprintf(buf, bufsz, "env %s", name);
		break;
	case SETTINGS_FROM_FLAG: errq_snprintf(buf, bufsz, "flag %s", src->flag); break;
	default: errq_snprintf(buf, bufsz, "default"); break;
	}
	return 0;
}

/* Settings that mean something for a SQLite database only (the page cache of its writer, the
 * free space of the filesystem it is on, its synchronous pragma): with a PostgreSQL one they
 * are refused when a source set them, and their defaults are ignored. */
static const char *const sqlite_only[] = {"cache_mib", "min_free_disk", "durability"};

int settings_check_database(struct settings *s, char *err, size_t errsz)
{
	struct store_url u;
	char why[512], red[STORE_URL_REDACTED_MAX], src[SETTINGS_STR_MAX + 64];
	const struct setting *st = find("storage");
	if (s->storage == STORAGE_NONE)
		return 0; /* nothing is opened */
	if (store_url_parse(s->database, &u, why, sizeof(why))) {
		settings_source_text(s, "database", src, sizeof(src));
		errq_snprintf(err, errsz, "setting 'database' (%s): %s", src, why);
		return -1;
	}
	int kind = u.kind == STORE_URL_POSTGRES ? STORAGE_POSTGRES : STORAGE_SQLITE;
	if (s->storage != kind) {
		if (s->src[st - table].origin != SETTINGS_FROM_DEFAULT) {
			settings_source_text(s, "storage", src, sizeof(src));
			errq_snprintf(err, errsz, "setting 'storage' (%s) is '%s' but database '%s' is %s", src,
				      storages[s->storage], store_url_redact(s->database, red, sizeof(red)),
				      kind == STORAGE_POSTGRES ? "a PostgreSQL URL" : "a SQLite file");
			return -1;
		}
		s->storage = kind; /* the default follows the database */
	}
	if (kind != STORAGE_POSTGRES)
		return 0;
	for (size_t i = 0; i < sizeof(sqlite_only) / sizeof(sqlite_only[0]); i++) {
		const struct setting *t = find(sqlite_only[i]);
		if (s->src[t - table].origin == SETTINGS_FROM_DEFAULT)
			continue;
		settings_source_text(s, t->name, src, sizeof(src));
		errq_snprintf(err, errsz, "setting '%s' (%s) applies to a SQLite database only, and database '%s' is PostgreSQL: remove it",
			      t->name, src, store_url_redact(s->database, red, sizeof(red)));
		return -1;
	}
	return 0;
}

/* Keys that rules.c (notifiers, rules) and auth.c (credentials) read from the same file:
 * skipped here. */
static int rules_key(const char *k)
{
	return strcmp(k, "notifiers") == 0 || strcmp(k, "rules") == 0 || strcmp(k, "credentials") == 0;
}

/* The length of the section of a setting's name ("tls" of "tls.cert"), 0 for a top-level one. */
static size_t section_len(const char *name)
{
	const char *dot = strchr(name, '.');
	return dot ? (size_t)(dot - name) : 0;
}

/* Whether some setting lives in section k (a nested mapping in the file). */
static int is_section(const char *k)
{
	size_t kl = strlen(k);
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (section_len(table[i].name) == kl && strncmp(table[i].name, k, kl) == 0)
			return 1;
	return 0;
}

struct file_load {
	struct settings *s;
	struct errq_yaml *y;
	const char *path;
	unsigned seen[N_SETTINGS];
	char *err;
	size_t errsz;
};

static int load_mapping(struct file_load *fl, yaml_node_t *map, const char *section);

/* One "key: value" of the file; section is "" at the top level or "tls" inside "tls:". */
static int load_pair(struct file_load *fl, yaml_node_t *kn, yaml_node_t *vn, const char *section)
{
	char name[128], why[256];
	const char *k = errq_yaml_scalar(kn);
	if (!k) {
		errq_snprintf(fl->err, fl->errsz, "'%s' line %d: a setting name must be a plain string", fl->path,
			      errq_yaml_line(kn));
		return -1;
	}
	if (!*section && rules_key(k))
		return 0;
	errq_snprintf(name, sizeof(name), "%s%s%s", section, *section ? "." : "", k);
	if (!*section && vn && vn->type == YAML_MAPPING_NODE && is_section(k))
		return load_mapping(fl, vn, k); /* a section given twice: its settings are "set twice" */
	const struct setting *t = find(name);
	if (!t) {
		errq_snprintf(fl->err, fl->errsz, "'%s' line %d: key '%s': %s", fl->path, errq_yaml_line(kn), name,
			      is_section(name) ? "a section: expected a mapping of its settings" : "unknown setting");
		return -1;
	}
	if (fl->seen[t - table]++) {
		errq_snprintf(fl->err, fl->errsz, "'%s' line %d: key '%s': set twice", fl->path, errq_yaml_line(kn),
			      name);
		return -1;
	}
	const char *v = errq_yaml_scalar(vn);
	if (!v) {
		errq_snprintf(fl->err, fl->errsz, "'%s' line %d: key '%s': expected a single value", fl->path,
			      errq_yaml_line(vn), name);
		return -1;
	}
	if (apply(fl->s, t, v, why, sizeof(why))) {
		errq_snprintf(fl->err, fl->errsz, "'%s' line %d: key '%s': %s", fl->path, errq_yaml_line(vn), name,
			      why);
		return -1;
	}
	fl->s->src[t - table].origin = SETTINGS_FROM_FILE;
	fl->s->src[t - table].line = errq_yaml_line(vn);
	return 0;
}

static int load_mapping(struct file_load *fl, yaml_node_t *map, const char *section)
{
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++)
		if (load_pair(fl, errq_yaml_node(fl->y, pr->key), errq_yaml_node(fl->y, pr->value), section))
			return -1;
	return 0;
}

int settings_load_file(struct settings *s, const char *path, char *err, size_t errsz)
{
	struct errq_yaml y;
	int rc = -1;
	if (errq_yaml_load(&y, path, err, errsz))
		return -1;
	errq_snprintf(s->file, sizeof(s->file), "%s", path);
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
	struct file_load fl = {.s = s, .y = &y, .path = path, .err = err, .errsz = errsz};
	rc = load_mapping(&fl, root, "");
out:
	errq_yaml_free(&y);
	return rc;
}

/* The value of setting t in s as text that apply() reads back. */
static const char *value_text(const struct settings *s, const struct setting *t, char *buf, size_t bufsz)
{
	const void *p = (const char *)s + t->off;
	switch (t->type) {
	case T_STRING:
	case T_ADDR:
	case T_ADDR_OR_EMPTY: return p;
	case T_INT: errq_snprintf(buf, bufsz, "%" PRId64, *(const int64_t *)p); return buf;
	case T_SIZE: {
		int64_t v = *(const int64_t *)p;
		static const char *const sfx[] = {"GiB", "MiB", "KiB"};
		for (int i = 0; i < 3; i++) {
			int shift = 30 - 10 * i;
			if (v && v % (INT64_C(1) << shift) == 0) {
				errq_snprintf(buf, bufsz, "%" PRId64 "%s", v >> shift, sfx[i]);
				return buf;
			}
		}
		errq_snprintf(buf, bufsz, "%" PRId64, v);
		return buf;
	}
	case T_DURATION: {
		char d[ERRQ_DURATION_BUFSZ];
		errq_snprintf(buf, bufsz, "%s", errq_fmt_duration(d, *(const uint64_t *)p));
		return buf;
	}
	case T_ENUM: return t->choices[*(const int *)p];
	}
	return "";
}

/* "HOST:PORT", "integer in [1, 64]", "json | text": what a value of t may be. */
static const char *type_text(const struct setting *t, char *buf, size_t bufsz)
{
	switch (t->type) {
	case T_STRING: return "string";
	case T_ADDR: return "HOST:PORT";
	case T_ADDR_OR_EMPTY: return "HOST:PORT or empty";
	case T_DURATION: return "duration";
	case T_SIZE: return "size (bytes, or with KiB, MiB, GiB)";
	case T_INT: errq_snprintf(buf, bufsz, "integer in [%" PRId64 ", %" PRId64 "]", t->min, t->max); return buf;
	case T_ENUM: {
		size_t o = 0;
		buf[0] = '\0';
		for (int i = 0; t->choices[i] && o < bufsz; i++)
			o += (size_t)errq_snprintf(buf + o, bufsz - o, "%s%s", i ? " | " : "", t->choices[i]);
		return buf;
	}
	}
	return "";
}

/* For the YAML printers: a row in a section ("tls.cert") is printed indented under "tls:",
 * which is printed before the section's first row (the rows of a section are adjacent in the
 * table: unit_settings checks it).  Returns whether row i is in a section. */
static int section_open(FILE *f, size_t i)
{
	size_t sl = section_len(table[i].name);
	if (!sl)
		return 0;
	if (i == 0 || section_len(table[i - 1].name) != sl || strncmp(table[i - 1].name, table[i].name, sl) != 0)
		fprintf(f, "\n%.*s:\n", (int)sl, table[i].name);
	return 1;
}

void settings_print_sample(void *file)
{
	FILE *f = file;
	fprintf(f, "# errqd configuration: every setting with its default.\n"
		   "# The environment (ERRQ_<NAME>) overrides this file and flags override both;\n"
		   "# 'errqd --print-config' shows the values in force (docs/configuration.md).\n");
	char type[256], env[64];
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const char *ind = section_open(f, i) ? "  " : "";
		env_name(&table[i], env, sizeof(env));
		fprintf(f, "\n%s# %s\n%s# %s; %s%s%s\n%s%s: \"%s\"\n", ind, table[i].help, ind,
			type_text(&table[i], type, sizeof(type)), env, table[i].flag ? ", --" : "",
			table[i].flag ? table[i].flag : "", ind, table[i].name + section_len(table[i].name) + !!*ind,
			table[i].def);
	}
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
		   "#     notify: [ops]\n"
		   "\n"
		   "# Who may call (docs/security.md; reloaded with the rules).  Without credentials\n"
		   "# errqd serves everyone, on a loopback listen only unless auth.open is true:\n"
		   "#\n"
		   "# credentials:\n"
		   "#   - name: checkout-prod      # 'errq token new --name checkout-prod --role ingest\n"
		   "#     token_sha256: 64-hex     #  --service checkout' prints a token and this entry\n"
		   "#     role: ingest             # ingest | read | admin (admin may also read)\n"
		   "#     services: [checkout, \"pay*\"]\n"
		   "#   - name: oncall\n"
		   "#     tls_identity: oncall.example.com  # a verified client certificate's CN or SAN\n"
		   "#     role: read\n");
}

void settings_print_effective(void *file, const struct settings *s)
{
	FILE *f = file;
	char vbuf[64], src[SETTINGS_STR_MAX + 64], dbuf[STORE_URL_REDACTED_MAX];
	struct errq_buf b;
	errq_buf_init(&b, 6 * STORE_URL_REDACTED_MAX + 256); /* \u00XX: 6 bytes per control byte */
	fprintf(f, "# errqd configuration in force: each setting's value and where it came from\n"
		   "# (default < file < env ERRQ_<NAME> < flag; a later source overrides an earlier one)\n");
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const char *v = value_text(s, &table[i], vbuf, sizeof(vbuf));
		if (table[i].off == OFF(database)) /* its password, if any, is never printed */
			v = store_url_redact(v, dbuf, sizeof(dbuf));
		errq_buf_reset(&b);
		/* a JSON string is a YAML double-quoted scalar: the output reads back as a config */
		const char *ind = section_open(f, i) ? "  " : "";
		if (errq_buf_printf(&b, "%s%s: ", ind, table[i].name + section_len(table[i].name) + !!*ind) ||
		    errq_buf_add_json_str(&b, v, strlen(v)))
			continue; /* cannot happen: values are shorter than SETTINGS_STR_MAX */
		settings_source_text(s, table[i].name, src, sizeof(src));
		fprintf(f, "%-40s # %s\n", b.p, src);
	}
	errq_buf_free(&b);
}

/* Markdown text for a table cell: '|' escaped. */
static void md_cell(FILE *f, const char *text)
{
	for (const char *c = text; *c; c++) {
		if (*c == '|')
			fputc('\\', f);
		fputc(*c, f);
	}
}

void settings_print_docs(void *file)
{
	FILE *f = file;
	char env[64], type[256];
	fprintf(f,
		"# errqd configuration\n"
		"\n"
		"<!-- Generated by `errqd --print-config-docs` from the table in server/settings.c: edit the\n"
		"     table and run `make docs`.  The test configuration_docs_current fails when this file\n"
		"     is out of date. -->\n"
		"\n"
		"errqd takes each setting from the last of these that sets it:\n"
		"\n"
		"1. the default (below);\n"
		"2. the YAML config file of `--config FILE`, a mapping of settings (a setting named\n"
		"   `section.key` is `key` in the mapping `section:`, as in `tls:` then `  cert: PATH`);\n"
		"   [`deploy/errqd.yaml`](../deploy/errqd.yaml) (`errqd --print-sample-config`) lists every\n"
		"   setting with its default;\n"
		"3. the environment variable `ERRQ_<NAME>` (the setting's name in upper case, a section's dot\n"
		"   an underscore: `tls.cert` is `ERRQ_TLS_CERT`); only the\n"
		"   variables in the table are read, other `ERRQ_` variables are ignored; an empty value\n"
		"   sets the empty string;\n"
		"4. a flag: the setting's own flag, or `--set NAME=VALUE` for any setting.\n"
		"\n"
		"A value a source cannot parse stops errqd at start with one line naming it:\n"
		"\n"
		"```\n"
		"errqd: config '/etc/errq/errqd.yaml' line 1: key 'durability': 'sometimes' is not one of: normal, full\n"
		"errqd: environment variable ERRQ_CQ_THREADS: '0' is not an integer in [1, 64]\n"
		"errqd: flag --listen: 'localhost' is not HOST:PORT\n"
		"```\n"
		"\n"
		"`errqd --print-config`, given the same `--config`, environment and flags, prints the value\n"
		"of every setting and where it came from (`default`, `file 'PATH' line N`, `env ERRQ_X`,\n"
		"`flag --x`); `errqd --check-config` validates them and the file's rules, and exits.\n"
		"\n"
		"| setting | type | default | environment | flag | meaning |\n"
		"|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *t = &table[i];
		env_name(t, env, sizeof(env));
		fprintf(f, "| `%s` | ", t->name);
		md_cell(f, type_text(t, type, sizeof(type)));
		fprintf(f, " | `%s` | `%s` | ", *t->def ? t->def : "\"\"", env);
		if (t->flag)
			fprintf(f, "`--%s`", t->flag);
		else
			fputs("-", f);
		fputs(" | ", f);
		md_cell(f, t->help);
		fputs(" |\n", f);
	}
	fprintf(f, "\n"
		   "`database` is a SQLite file (a path, `sqlite:///ABSOLUTE/PATH` or `sqlite://RELATIVE/PATH`) or\n"
		   "a PostgreSQL database (`postgres://` or `postgresql://`: a libpq connection URI, given to libpq\n"
		   "whole, as in `postgres://errq@db.example.com:5432/errq?sslmode=verify-full`; libpq reads\n"
		   "`PGPASSFILE`, `PGPASSWORD` and the other `PG*` variables itself).  Any other `scheme://` is\n"
		   "refused.  Wherever errqd prints the database (its log, `--print-config`, errors) a password in\n"
		   "the URL shows as `***`; `--db` still puts it in the process list, so keep it in `PGPASSFILE`,\n"
		   "`PGPASSWORD` or the config file.  With a PostgreSQL database several collectors may share it\n"
		   "(no lock file), `errq admin backup` is refused (FAILED_PRECONDITION: use `pg_dump` or\n"
		   "`pg_basebackup`), and `cache_mib`, `min_free_disk` and `durability`, which mean something for\n"
		   "SQLite only, are refused when a source sets them (their defaults are ignored; a commit on\n"
		   "PostgreSQL is as durable as the server's `synchronous_commit` and `fsync` make it, and\n"
		   "`errq status` says `durability server`).  Several collectors on one PostgreSQL database\n"
		   "are one fleet: each ingests and answers queries, and one at a time, the leader,\n"
		   "evaluates the rules for the whole fleet and sends the notices; give every replica the\n"
		   "same `rules:`, `notifiers:` and `credentials:` (the same file), since any of them may\n"
		   "become the leader ([scale-out.md](scale-out.md)).\n"
		   "\n"
		   "A duration is a number and one unit: `ms`, `s`, `m`, `h` or `d` (`500ms`, `8s`, `30d`).\n"
		   "The flags that are not settings (`--config`, `--port-file`, ...) are in `errqd --help`.\n"
		   "The same file holds the alert rules and notifiers, under `rules:` and `notifiers:`\n"
		   "([alerts.md](alerts.md)), and who may call under `credentials:`\n"
		   "([security.md](security.md)); they have no environment variables or flags.\n");
}
