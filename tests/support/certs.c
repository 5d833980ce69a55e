/* certs.c: see certs.h. */
#include "certs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "errq_file.h"
#include "errq_spawn.h"
#include "errq_str.h"
#include "errq_banned.h"

#define CERTS_WAIT_MS 60000 /* make_certs.sh takes about a second */

static char dir[64];

static int run(const char *const *argv)
{
	struct errq_child c;
	char err[256];
	struct errq_spawn_opts so = {.argv = argv};
	if (errq_spawn(&c, &so, err, sizeof(err))) {
		fprintf(stderr, "certs: %s\n", err);
		return -1;
	}
	for (int waited = 0; waited < CERTS_WAIT_MS && errq_child_running(&c); waited += 5) {
		struct timespec ts = {0, 5 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (c.status < 0) { /* still running at the deadline */
		fprintf(stderr, "certs: %s did not finish within %d ms\n", argv[0], CERTS_WAIT_MS);
		errq_child_stop(&c, SIGKILL, CERTS_WAIT_MS);
		return -1;
	}
	return c.status;
}

int certs_setup(void **state)
{
	(void)state;
	errq_snprintf(dir, sizeof(dir), "/tmp/errq-certs-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("certs: mkdtemp");
		return -1;
	}
	const char *argv[] = {"/bin/sh", ERRQ_MAKE_CERTS, dir, NULL};
	int rc = run(argv);
	if (rc)
		fprintf(stderr, "certs: %s exited %d\n", ERRQ_MAKE_CERTS, rc);
	return rc ? -1 : 0;
}

int certs_teardown(void **state)
{
	(void)state;
	const char *argv[] = {"/bin/rm", "-rf", dir, NULL};
	return dir[0] && run(argv) ? -1 : 0;
}

const char *certs_path(const char *name)
{
	static char buf[8][256];
	static int k;
	char *b = buf[k++ % 8];
	errq_snprintf(b, sizeof(buf[0]), "%s/%s", dir, name);
	return b;
}

char *certs_read(const char *path)
{
	char *text = NULL, err[512];
	if (errq_file_read(path, 1u << 20, &text, NULL, err, sizeof(err)))
		fail_msg("%s", err);
	return text;
}

void certs_install(const char *src, const char *dst)
{
	char *text = certs_read(src), tmp[512];
	errq_snprintf(tmp, sizeof(tmp), "%s.new", dst);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, dst), 0);
	free(text);
}
