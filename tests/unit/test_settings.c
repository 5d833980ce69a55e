/* Unit: server/settings.c — defaults, the config file, the environment, flags, their precedence and
 * the source of each value, refusals with file/line/key or variable, the printed configurations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "errq_log.h"
#include "settings.h"
#include "storage.h"

static char path[64];

static void write_file(const char *text)
{
	snprintf(path, sizeof(path), "/tmp/errq-settings-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_defaults(void **state)
{
	struct settings s;
	settings_defaults(&s);
	assert_string_equal(s.listen, "127.0.0.1:4770");
	assert_string_equal(s.http_listen, "127.0.0.1:4771");
	assert_int_equal(s.durability, STORE_DURABILITY_NORMAL);
	assert_int_equal(s.log_level, ERRQ_LOG_INFO);
	assert_int_equal(s.storage, STORAGE_SQLITE);
	assert_true(s.ingest_queue_batches > 0);
	assert_true(s.shutdown_timeout_ns > 0 && s.shutdown_timeout_ns < 10ULL * 1000000000ULL);
}

/* A size: bytes or a whole number of KiB/MiB/GiB; anything else is refused with the value. */
static void test_sizes(void **state)
{
	struct settings s;
	char err[256];
	settings_defaults(&s);
	assert_int_equal(s.min_free_disk, 64 << 20);
	assert_int_equal(settings_set(&s, "--set", "min_free_disk", "512KiB", err, sizeof(err)), 0);
	assert_int_equal(s.min_free_disk, 512 << 10);
	assert_int_equal(settings_set(&s, "--set", "min_free_disk", "2GiB", err, sizeof(err)), 0);
	assert_int_equal(s.min_free_disk, 2LL << 30);
	assert_int_equal(settings_set(&s, "--set", "min_free_disk", "1000", err, sizeof(err)), 0);
	assert_int_equal(s.min_free_disk, 1000);
	assert_int_equal(settings_set(&s, "--set", "min_free_disk", "0", err, sizeof(err)), 0);
	assert_int_equal(s.min_free_disk, 0);
	const char *bad[] = {"", "MiB", "12x", "-1", "1.5MiB", "64 MiB", "9999999999TiB", "64mib"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(settings_set(&s, "--set", "min_free_disk", bad[i], err, sizeof(err)), -1);
		assert_non_null(strstr(err, "is not a size"));
	}
	assert_int_equal(s.min_free_disk, 0); /* a refused value changes nothing */
}

static void test_file_and_flags(void **state)
{
	struct settings s;
	char err[512];
	settings_defaults(&s);
	write_file("# errqd\nlisten: \"0.0.0.0:5000\"\ndatabase: /var/lib/errq/errq.db\ndurability: full\n"
		   "log_level: debug\nshutdown_timeout: 5s\nnotifiers: []\n");
	assert_int_equal(settings_load_file(&s, path, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(s.listen, "0.0.0.0:5000");
	assert_string_equal(s.database, "/var/lib/errq/errq.db");
	assert_int_equal(s.durability, STORE_DURABILITY_FULL);
	assert_int_equal(s.log_level, ERRQ_LOG_DEBUG);
	assert_int_equal(s.shutdown_timeout_ns, 5000000000ULL);
	/* a flag overrides the file */
	assert_int_equal(settings_set(&s, "--listen", "listen", "127.0.0.1:0", err, sizeof(err)), 0);
	assert_string_equal(s.listen, "127.0.0.1:0");
}

static void expect_refused(const char *text, const char *line, const char *key, const char *why)
{
	struct settings s;
	char err[512];
	settings_defaults(&s);
	write_file(text);
	assert_int_equal(settings_load_file(&s, path, err, sizeof(err)), -1);
	unlink(path);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, line));
	if (key)
		assert_non_null(strstr(err, key));
	assert_non_null(strstr(err, why));
}

static void test_refusals(void **state)
{
	expect_refused("listen: 127.0.0.1:1\nlisten_addr: x\n", "line 2", "'listen_addr'", "unknown setting");
	expect_refused("durability: maybe\n", "line 1", "'durability'", "normal, full");
	expect_refused("\n\nlisten: nohost\n", "line 3", "'listen'", "HOST:PORT");
	expect_refused("listen: 127.0.0.1:99999\n", "line 1", "'listen'", "port");
	expect_refused("cq_threads: 0\n", "line 1", "'cq_threads'", "integer in [1, 64]");
	expect_refused("shutdown_timeout: soon\n", "line 1", "'shutdown_timeout'", "duration");
	expect_refused("name: a\nname: b\n", "line 2", "'name'", "set twice");
	expect_refused("listen: [a, b]\n", "line 1", "'listen'", "single value");
	expect_refused("- a\n- b\n", "line 1", NULL, "mapping");
	expect_refused("listen: \"unterminated\n", "line", NULL, "");
	struct settings s;
	char err[256];
	settings_defaults(&s);
	assert_int_equal(settings_set(&s, "--set", "nope", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "flag --set: unknown setting 'nope'");
	/* http_listen is HOST:PORT or empty (disabled); listen may not be empty */
	expect_refused("http_listen: nohost\n", "line 1", "'http_listen'", "not HOST:PORT (or empty to disable it)");
	expect_refused("http_listen: \"127.0.0.1:70000\"\n", "line 1", "'http_listen'", "port");
	expect_refused("listen: \"\"\n", "line 1", "'listen'", "HOST:PORT");
	expect_refused("log_format: xml\n", "line 1", "'log_format'", "json, text");
	/* the store takes 32-bit limits: 2^32 would have wrapped to 0, no limit at all */
	expect_refused("events_per_group: 4294967296\n", "line 1", "'events_per_group'", "integer in [0, 4294967295]");
	expect_refused("groups_per_service: 4294967296\n", "line 1", "'groups_per_service'", "integer in [0, 4294967295]");
	settings_defaults(&s);
	write_file("http_listen: \"\"\nlog_format: text\n");
	assert_int_equal(settings_load_file(&s, path, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(s.http_listen, "");
	assert_int_equal(s.log_format, ERRQ_LOG_FORMAT_TEXT);
}

static void expect_source(const struct settings *s, const char *key, const char *want)
{
	char buf[SETTINGS_STR_MAX + 64];
	assert_int_equal(settings_source_text(s, key, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

/* default < file < environment < flag, and each value knows which of them set it */
static void test_precedence_and_sources(void **state)
{
	struct settings s;
	char err[512], want[256];
	settings_defaults(&s);
	write_file("listen: \"0.0.0.0:5000\"\nname: file-name\n\ndatabase: /file.db\ncq_threads: 4\n");
	assert_int_equal(settings_load_file(&s, path, err, sizeof(err)), 0);
	/* other programs' ERRQ_ variables, names the table does not have and other cases: ignored */
	char *env[] = {"ERRQ_DATABASE=/env.db", "ERRQ_NAME=env-name", "ERRQ_RETENTION=7d",
		       "ERRQ_TEST_FILTER=test_x",  "ERRQ_VALGRIND=1",     "ERRQ_LIBRARY=/nope.so",
		       "ERRQ_ADDR=not an address", "ERRQ_PORT_FILE=/p",   "ERRQ_LISTENX=bad",
		       "ERRQ_=x",                 "errq_cache_mib=0",    "XERRQ_CACHE_MIB=0",
		       "ERRQ_CQ_THREADS",         "ERRQ_NAME=second",    NULL};
	assert_int_equal(settings_load_env(&s, env, err, sizeof(err)), 0);
	assert_int_equal(settings_set(&s, "--set", "name", "flag-name", err, sizeof(err)), 0);
	assert_int_equal(settings_set(&s, "--log-level", "log_level", "warn", err, sizeof(err)), 0);

	assert_string_equal(s.listen, "0.0.0.0:5000"); /* file over default */
	snprintf(want, sizeof(want), "file '%s' line 1", path);
	expect_source(&s, "listen", want);
	assert_string_equal(s.database, "/env.db"); /* env over file */
	expect_source(&s, "database", "env ERRQ_DATABASE");
	assert_string_equal(s.name, "flag-name"); /* flag over env over file */
	expect_source(&s, "name", "flag --set");
	assert_int_equal(s.log_level, ERRQ_LOG_WARN);
	expect_source(&s, "log_level", "flag --log-level");
	assert_int_equal(s.retention_ns, 7 * 86400 * 1000000000ULL); /* env over default */
	expect_source(&s, "retention", "env ERRQ_RETENTION");
	assert_int_equal(s.cq_threads, 4); /* "ERRQ_CQ_THREADS" without '=' sets nothing */
	snprintf(want, sizeof(want), "file '%s' line 5", path);
	expect_source(&s, "cq_threads", want);
	assert_int_equal(s.cache_mib, 64);
	expect_source(&s, "cache_mib", "default");
	assert_string_equal(s.port_file, ""); /* a flag only: not read from the environment */
	assert_int_equal(settings_source_text(&s, "nope", want, sizeof(want)), -1);
	unlink(path);
}

static void expect_env_refused(const char *var, const char *want)
{
	struct settings s;
	char err[512];
	char *env[] = {"ERRQ_NAME=fine", (char *)var, NULL};
	settings_defaults(&s);
	assert_int_equal(settings_load_env(&s, env, err, sizeof(err)), -1);
	assert_string_equal(err, want);
}

static void test_env_refusals(void **state)
{
	expect_env_refused("ERRQ_CQ_THREADS=0", "environment variable ERRQ_CQ_THREADS: '0' is not an integer in [1, 64]");
	expect_env_refused("ERRQ_LISTEN=", "environment variable ERRQ_LISTEN: '' is not HOST:PORT");
	expect_env_refused("ERRQ_LOG_FORMAT=xml", "environment variable ERRQ_LOG_FORMAT: 'xml' is not one of: json, text");
	expect_env_refused("ERRQ_SHUTDOWN_TIMEOUT=5", "environment variable ERRQ_SHUTDOWN_TIMEOUT: '5' is not a duration "
						     "(like 500ms, 10s, 5m, 2h)");
	expect_env_refused("ERRQ_HTTP_LISTEN=localhost",
			   "environment variable ERRQ_HTTP_LISTEN: 'localhost' is not HOST:PORT (or empty to disable it)");
	static char longv[SETTINGS_STR_MAX + 32];
	snprintf(longv, sizeof(longv), "ERRQ_DATABASE=%0*d", SETTINGS_STR_MAX, 0);
	expect_env_refused(longv, "environment variable ERRQ_DATABASE: longer than 1023 bytes");
	/* an empty value is the empty string where that is a value: http_listen off */
	struct settings s;
	char err[256];
	char *env[] = {"ERRQ_HTTP_LISTEN=", NULL};
	settings_defaults(&s);
	assert_int_equal(settings_load_env(&s, env, err, sizeof(err)), 0);
	assert_string_equal(s.http_listen, "");
	expect_source(&s, "http_listen", "env ERRQ_HTTP_LISTEN");
	/* a flag's refusal names the flag */
	assert_int_equal(settings_set(&s, "--listen", "listen", "nohost", err, sizeof(err)), -1);
	assert_string_equal(err, "flag --listen: 'nohost' is not HOST:PORT");
	assert_int_equal(settings_set(&s, "--set", "cq_threads", "65", err, sizeof(err)), -1);
	assert_string_equal(err, "flag --set cq_threads: '65' is not an integer in [1, 64]");
}

static void test_flag_keys(void **state)
{
	assert_string_equal(settings_flag_key("db"), "database");
	assert_string_equal(settings_flag_key("http-listen"), "http_listen");
	assert_string_equal(settings_flag_key("log-format"), "log_format");
	assert_null(settings_flag_key("http_listen")); /* flags use dashes */
	assert_null(settings_flag_key("name"));        /* --set name=... only */
	assert_null(settings_flag_key("port-file"));   /* not a setting */
}

/* Reads what a print function wrote into a string (freed by the caller). */
static char *printed(void (*print)(void *, const struct settings *), const struct settings *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	print(f, s);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void print_docs(void *f, const struct settings *s)
{
	(void)s;
	settings_print_docs(f);
}

static void print_sample(void *f, const struct settings *s)
{
	(void)s;
	settings_print_sample(f);
}

/* --print-config: every value with its source, as a file that reads back to the same values */
static void test_print_effective(void **state)
{
	struct settings s, back;
	char err[512], want[512];
	settings_defaults(&s);
	write_file("retention: 36h\nname: 'say \"hi\" \\ back'\n");
	assert_int_equal(settings_load_file(&s, path, err, sizeof(err)), 0);
	char *env[] = {"ERRQ_LOG_FORMAT=text", NULL};
	assert_int_equal(settings_load_env(&s, env, err, sizeof(err)), 0);
	assert_int_equal(settings_set(&s, "--http-listen", "http_listen", "", err, sizeof(err)), 0);
	char *text = printed(settings_print_effective, &s);
	snprintf(want, sizeof(want), "\nretention: \"36h\"%*s# file '%s' line 1\n", 25, "", path);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "\nname: \"say \\\"hi\\\" \\\\ back\""));
	assert_non_null(strstr(text, "\nlog_format: \"text\"                       # env ERRQ_LOG_FORMAT\n"));
	assert_non_null(strstr(text, "\nhttp_listen: \"\"                          # flag --http-listen\n"));
	assert_non_null(strstr(text, "\ncache_mib: \"64\"                          # default\n"));
	unlink(path);

	write_file(text);
	free(text);
	settings_defaults(&back);
	assert_int_equal(settings_load_file(&back, path, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(back.name, "say \"hi\" \\ back");
	assert_int_equal(back.retention_ns, 36 * 3600 * 1000000000ULL);
	assert_int_equal(back.log_format, ERRQ_LOG_FORMAT_TEXT);
	assert_string_equal(back.http_listen, "");
	assert_string_equal(back.listen, s.listen);
	assert_int_equal(back.shutdown_timeout_ns, s.shutdown_timeout_ns);
	assert_int_equal(back.ingest_queue_bytes, s.ingest_queue_bytes);

	/* the longest value, all control bytes (6 bytes each once escaped), is printed and reads back */
	char ctl[SETTINGS_STR_MAX];
	memset(ctl, 1, sizeof(ctl) - 1);
	ctl[sizeof(ctl) - 1] = '\0';
	assert_int_equal(settings_set(&s, "--set", "name", ctl, err, sizeof(err)), 0);
	text = printed(settings_print_effective, &s);
	assert_non_null(strstr(text, "\nname: \"\\u0001\\u0001"));
	write_file(text);
	free(text);
	settings_defaults(&back);
	assert_int_equal(settings_load_file(&back, path, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(back.name, ctl);

	/* the docs: a row per setting with its variable and flag; '|' escaped inside cells */
	text = printed(print_docs, NULL);
	assert_non_null(strstr(text, "| `http_listen` | HOST:PORT or empty | `127.0.0.1:4771` | `ERRQ_HTTP_LISTEN` | "
				     "`--http-listen` | HTTP address HOST:PORT for /livez, /readyz, /healthz and "
				     "/metrics (empty disables it) |\n"));
	assert_non_null(strstr(text, "| `name` | string | `errqd` | `ERRQ_NAME` | - | "));
	assert_non_null(strstr(text, "| `log_format` | json \\| text | `json` | `ERRQ_LOG_FORMAT` | `--log-format` |"));
	free(text);
}

/* a "section.key" setting: a nested mapping in the file, ERRQ_SECTION_KEY, --set section.key */
static void test_sections(void **state)
{
	struct settings s, back;
	char err[512], want[512];
	settings_defaults(&s);
	assert_string_equal(s.tls_cert, "");
	write_file("name: n\ntls:\n  cert: /etc/errq/cert.pem\n  key: /etc/errq/key.pem\nretention: 2d\n");
	assert_int_equal(settings_load_file(&s, path, err, sizeof(err)), 0);
	assert_string_equal(s.tls_cert, "/etc/errq/cert.pem");
	assert_string_equal(s.tls_key, "/etc/errq/key.pem");
	assert_int_equal(s.retention_ns, 2 * 86400 * 1000000000ULL); /* after the section: top level again */
	snprintf(want, sizeof(want), "file '%s' line 3", path);
	expect_source(&s, "tls.cert", want);
	char *env[] = {"ERRQ_TLS_KEY=/env/key.pem", "ERRQ_TLS.KEY=/no", NULL};
	assert_int_equal(settings_load_env(&s, env, err, sizeof(err)), 0);
	assert_string_equal(s.tls_key, "/env/key.pem");
	expect_source(&s, "tls.key", "env ERRQ_TLS_KEY");
	assert_int_equal(settings_set(&s, "--set", "tls.client_ca", "/ca.pem", err, sizeof(err)), 0);
	assert_string_equal(s.tls_client_ca, "/ca.pem");

	/* printed nested, and read back */
	char *text = printed(settings_print_effective, &s);
	assert_non_null(strstr(text, "\ntls:\n  cert: \"/etc/errq/cert.pem\""));
	assert_non_null(strstr(text, "\n  client_ca: \"/ca.pem\""));
	unlink(path);
	write_file(text);
	free(text);
	settings_defaults(&back);
	assert_int_equal(settings_load_file(&back, path, err, sizeof(err)), 0);
	assert_string_equal(back.tls_key, "/env/key.pem");
	assert_string_equal(back.tls_client_ca, "/ca.pem");
	assert_string_equal(back.name, "n");
	unlink(path);

	/* refused: a section given a value, an unknown key inside it, one set twice, a section key
	 * at the top level */
	expect_refused("tls: on\n", "line 1", "'tls'", "a section: expected a mapping of its settings");
	expect_refused("tls:\n  certificate: x\n", "line 2", "'tls.certificate'", "unknown setting");
	expect_refused("tls:\n  cert: a\ntls:\n  cert: b\n", "line 4", "'tls.cert'", "set twice");
	expect_refused("cert: x\n", "line 1", "'cert'", "unknown setting");
	expect_refused("name:\n  cert: x\n", "line 2", "'name'", "expected a single value");

	/* the sample config nests the section too, and reads back as the defaults */
	text = printed(print_sample, NULL);
	assert_non_null(strstr(text, "\ntls:\n\n  # PEM certificate chain"));
	assert_non_null(strstr(text, "\n  # string; ERRQ_TLS_CERT\n  cert: \"\"\n"));
	write_file(text);
	free(text);
	settings_defaults(&back);
	assert_int_equal(settings_load_file(&back, path, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(back.tls_cert, "");
}

/* The database setting against the others (settings_check_database): a postgres URL makes the
 * default storage postgres, refuses the SQLite-only settings set by any source and an explicit
 * storage that contradicts it, and no message or printout shows its password. */
static void test_database_url(void **state)
{
	(void)state;
	struct settings s;
	char err[512];
	const char *url = "postgres://errq:pw-9f3k@db.example.com/errq?sslmode=require";
	/* SQLite: the default, a URL form, and a bad scheme */
	settings_defaults(&s);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), 0);
	assert_int_equal(s.storage, STORAGE_SQLITE);
	assert_int_equal(settings_set(&s, "--db", "database", "sqlite:///var/lib/errq/errq.db", err, sizeof(err)), 0);
	assert_int_equal(settings_set(&s, "--set", "cache_mib", "128", err, sizeof(err)), 0);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), 0);
	assert_int_equal(s.storage, STORAGE_SQLITE);
	assert_int_equal(settings_set(&s, "--db", "database", "mysql://db/errq", err, sizeof(err)), 0);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), -1);
	assert_string_equal(err, "setting 'database' (flag --db): database 'mysql://db/errq': unknown scheme 'mysql://' "
				 "(a file path, sqlite:///PATH, postgres:// or postgresql://)");
	/* PostgreSQL with every other setting at its default: storage follows */
	settings_defaults(&s);
	assert_int_equal(settings_set(&s, "--db", "database", url, err, sizeof(err)), 0);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), 0);
	assert_int_equal(s.storage, STORAGE_POSTGRES);
	char *text = printed(settings_print_effective, &s);
	assert_null(strstr(text, "pw-9f3k"));
	assert_non_null(strstr(text, "\ndatabase: \"postgres://errq:***@db.example.com/errq?sslmode=require\""));
	free(text);
	/* the SQLite-only settings, from each kind of source, even at their default's value */
	const char *only[] = {"cache_mib", "min_free_disk", "durability"};
	const char *val[] = {"64", "64MiB", "normal"};
	for (size_t i = 0; i < 3; i++) {
		settings_defaults(&s);
		assert_int_equal(settings_set(&s, "--db", "database", url, err, sizeof(err)), 0);
		assert_int_equal(settings_set(&s, "--set", only[i], val[i], err, sizeof(err)), 0);
		assert_int_equal(settings_check_database(&s, err, sizeof(err)), -1);
		char want[256];
		snprintf(want, sizeof(want), "setting '%s' (flag --set) applies to a SQLite database only, and database "
			 "'postgres://errq:***@db.example.com/errq?sslmode=require' is PostgreSQL: remove it", only[i]);
		assert_string_equal(err, want);
	}
	settings_defaults(&s);
	char yaml[256];
	snprintf(yaml, sizeof(yaml), "database: \"%s\"\nmin_free_disk: 1GiB\n", url);
	write_file(yaml);
	assert_int_equal(settings_load_file(&s, path, err, sizeof(err)), 0);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "setting 'min_free_disk' (file '"));
	assert_non_null(strstr(err, "' line 2) applies to a SQLite database only"));
	assert_null(strstr(err, "pw-9f3k"));
	unlink(path);
	settings_defaults(&s);
	char *env[] = {"ERRQ_DATABASE=postgresql://errq:pw-9f3k@db/errq", "ERRQ_CACHE_MIB=32", NULL};
	assert_int_equal(settings_load_env(&s, env, err, sizeof(err)), 0);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "setting 'cache_mib' (env ERRQ_CACHE_MIB)"));
	assert_null(strstr(err, "pw-9f3k"));
	/* storage set explicitly must match the database */
	settings_defaults(&s);
	assert_int_equal(settings_set(&s, "--db", "database", url, err, sizeof(err)), 0);
	assert_int_equal(settings_set(&s, "--storage", "storage", "sqlite", err, sizeof(err)), 0);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), -1);
	assert_string_equal(err, "setting 'storage' (flag --storage) is 'sqlite' but database "
				 "'postgres://errq:***@db.example.com/errq?sslmode=require' is a PostgreSQL URL");
	settings_defaults(&s);
	assert_int_equal(settings_set(&s, "--storage", "storage", "postgres", err, sizeof(err)), 0);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), -1);
	assert_string_equal(err, "setting 'storage' (flag --storage) is 'postgres' but database 'errq.db' is a SQLite file");
	assert_int_equal(settings_set(&s, "--db", "database", url, err, sizeof(err)), 0);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), 0);
	assert_int_equal(s.storage, STORAGE_POSTGRES);
	/* storage: none opens nothing: nothing to check */
	settings_defaults(&s);
	assert_int_equal(settings_set(&s, "--db", "database", url, err, sizeof(err)), 0);
	assert_int_equal(settings_set(&s, "--set", "cache_mib", "32", err, sizeof(err)), 0);
	assert_int_equal(settings_set(&s, "--storage", "storage", "none", err, sizeof(err)), 0);
	assert_int_equal(settings_check_database(&s, err, sizeof(err)), 0);
	assert_int_equal(s.storage, STORAGE_NONE);
}

int main(void)
{
	errq_log_set_level(ERRQ_LOG_OFF);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_file_and_flags),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_precedence_and_sources),
	    cmocka_unit_test(test_env_refusals),
	    cmocka_unit_test(test_flag_keys),
	    cmocka_unit_test(test_print_effective),
	    cmocka_unit_test(test_sections),
	    cmocka_unit_test(test_database_url),
	};
	return cmocka_run_group_tests_name("unit_settings", tests, NULL, NULL);
}
