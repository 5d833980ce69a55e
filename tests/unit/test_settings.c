/* Unit: server/settings.c — defaults, the config file, flags, and refusals with file/line/key. */
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
	assert_int_equal(settings_set(&s, "listen", "127.0.0.1:0", err, sizeof(err)), 0);
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
	assert_int_equal(settings_set(&s, "nope", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown setting 'nope'");
}

int main(void)
{
	errq_log_set_level(ERRQ_LOG_OFF);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_file_and_flags),
	    cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests_name("unit_settings", tests, NULL, NULL);
}
