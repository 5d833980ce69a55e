/* Unit: common/errq_spawn — a child started with its output in a file, its port file waited
 * for, stopped by signal or killed at the deadline; early exits, process group, environment,
 * parent-death signal.  The children are /bin/sh one-liners. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "errq_spawn.h"
#include "errq_str.h"

#define DEADLINE_MS 30000 /* far above the few ms a shell needs */

static char dir[64], portfile[96], logfile[96];

static int setup(void **state)
{
	(void)state;
	errq_snprintf(dir, sizeof(dir), "/tmp/errq-spawn-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	errq_snprintf(portfile, sizeof(portfile), "%s/port", dir);
	errq_snprintf(logfile, sizeof(logfile), "%s/log", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(portfile);
	unlink(logfile);
	rmdir(dir);
	return 0;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

/* sh -c SCRIPT sh PORTFILE: the script names the port file "$1" */
static int start(struct errq_child *c, const char *script, struct errq_spawn_opts *o)
{
	unlink(portfile);
	const char *argv[] = {"sh", "-c", script, "sh", portfile, NULL};
	char err[256];
	o->argv = argv;
	o->out_path = logfile;
	int rc = errq_spawn(c, o, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	return rc;
}

static void test_ports_then_sigterm(void **state)
{
	(void)state;
	struct errq_child c;
	struct errq_spawn_opts o = {.own_pgroup = true};
	assert_int_equal(start(&c, "echo started; printf '123\\n456\\n' > \"$1\"; exec sleep 30", &o), 0);
	int ports[2] = {0, 0};
	char err[256];
	assert_int_equal(errq_child_wait_ports(&c, portfile, DEADLINE_MS, ports, err, sizeof(err)), 0);
	assert_int_equal(ports[0], 123);
	assert_int_equal(ports[1], 456);
	assert_int_equal(getpgid(c.pid), c.pid); /* its own process group */
	assert_true(errq_child_running(&c));
	assert_int_equal(errq_child_stop(&c, SIGTERM, DEADLINE_MS), 128 + SIGTERM);
	assert_false(c.killed);
	assert_int_equal(c.pid, 0);
	assert_string_equal(slurp(logfile), "started\n");
	assert_int_equal(errq_child_stop(&c, SIGTERM, DEADLINE_MS), -1); /* nothing left to stop */
}

static void test_one_port_line_and_parent_group(void **state)
{
	(void)state;
	struct errq_child c;
	struct errq_spawn_opts o = {.pdeath_sig = SIGKILL}; /* the fork path */
	assert_int_equal(start(&c, "echo 77 > \"$1\"; exec sleep 30", &o), 0);
	int ports[2] = {-1, -1};
	char err[256];
	assert_int_equal(errq_child_wait_ports(&c, portfile, DEADLINE_MS, ports, err, sizeof(err)), 0);
	assert_int_equal(ports[0], 77);
	assert_int_equal(ports[1], 0);
	assert_int_equal(getpgid(c.pid), getpgid(0)); /* ours: a ^C reaches it too */
	assert_int_equal(errq_child_stop(&c, SIGINT, DEADLINE_MS), 128 + SIGINT);
}

static void test_early_exit(void **state)
{
	(void)state;
	for (int fork_path = 0; fork_path < 2; fork_path++) {
		struct errq_child c;
		struct errq_spawn_opts o = {.pdeath_sig = fork_path ? SIGKILL : 0};
		assert_int_equal(start(&c, "echo 'bad flag' >&2; exit 3", &o), 0);
		int ports[2];
		char err[256];
		assert_int_equal(errq_child_wait_ports(&c, portfile, DEADLINE_MS, ports, err, sizeof(err)), -1);
		assert_string_equal(err, "exited at start-up with status 3");
		assert_int_equal(c.status, 3);
		assert_int_equal(c.pid, 0);
		assert_string_equal(slurp(logfile), "bad flag\n"); /* stderr joins stdout's file */
	}
}

static void test_ignores_sigterm_killed_at_deadline(void **state)
{
	(void)state;
	struct errq_child c;
	struct errq_spawn_opts o = {0};
	/* the trap is set before the port is written, and sleep inherits the ignored SIGTERM */
	assert_int_equal(start(&c, "trap '' TERM; echo 1 > \"$1\"; exec sleep 30", &o), 0);
	int ports[2];
	char err[256];
	assert_int_equal(errq_child_wait_ports(&c, portfile, DEADLINE_MS, ports, err, sizeof(err)), 0);
	assert_int_equal(errq_child_stop(&c, SIGTERM, 200), 128 + SIGKILL);
	assert_true(c.killed);
	assert_int_equal(c.pid, 0);
}

static void test_no_port_within_deadline(void **state)
{
	(void)state;
	struct errq_child c;
	struct errq_spawn_opts o = {0};
	assert_int_equal(start(&c, "exec sleep 30", &o), 0);
	int ports[2];
	char err[256];
	assert_int_equal(errq_child_wait_ports(&c, portfile, 50, ports, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "did not write its port to '"));
	assert_int_not_equal(c.pid, 0); /* still running: the caller decides */
	assert_int_equal(errq_child_stop(&c, SIGTERM, DEADLINE_MS), 128 + SIGTERM);
}

static void test_env_dropped_by_prefix(void **state)
{
	(void)state;
	setenv("ERRQ_SPAWN_TEST_DROP", "leaked", 1);
	setenv("SPAWN_TEST_KEEP", "kept", 1);
	for (int fork_path = 0; fork_path < 2; fork_path++) {
		struct errq_child c;
		struct errq_spawn_opts o = {.drop_env_prefix = "ERRQ_", .pdeath_sig = fork_path ? SIGKILL : 0};
		assert_int_equal(start(&c, "echo \"[${ERRQ_SPAWN_TEST_DROP-unset}] [$SPAWN_TEST_KEEP]\"", &o), 0);
		assert_int_equal(errq_child_wait(&c), 0);
		assert_string_equal(slurp(logfile), "[unset] [kept]\n");
	}
	struct errq_child c;
	struct errq_spawn_opts o = {0};
	assert_int_equal(start(&c, "echo \"[${ERRQ_SPAWN_TEST_DROP-unset}]\"", &o), 0);
	assert_int_equal(errq_child_wait(&c), 0);
	assert_string_equal(slurp(logfile), "[leaked]\n");
	unsetenv("ERRQ_SPAWN_TEST_DROP");
	unsetenv("SPAWN_TEST_KEEP");
}

static void test_missing_program_refused(void **state)
{
	(void)state;
	struct errq_child c;
	const char *argv[] = {"errq-no-such-program", NULL};
	struct errq_spawn_opts o = {.argv = argv};
	char err[256];
	assert_int_equal(errq_spawn(&c, &o, err, sizeof(err)), -1);
	assert_string_equal(err, "cannot start 'errq-no-such-program': not found");
	assert_int_equal(c.pid, 0);
}

/* The parent-death signal: a middle process spawns the child and exits; the child, handed
 * to us (a subreaper), must die of SIGKILL and not live out its sleep. */
static void test_parent_death_signal(void **state)
{
	(void)state;
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		struct errq_child c;
		struct errq_spawn_opts o = {.pdeath_sig = SIGKILL};
		int ports[2];
		char err[256];
		if (start(&c, "echo 1 > \"$1\"; exec sleep 30", &o) ||
		    errq_child_wait_ports(&c, portfile, DEADLINE_MS, ports, err, sizeof(err)))
			_exit(1);
		ssize_t w = write(fds[1], &c.pid, sizeof(c.pid));
		_exit(w == sizeof(c.pid) ? 0 : 1);
	}
	close(fds[1]);
	pid_t grandchild = 0;
	assert_int_equal(read(fds[0], &grandchild, sizeof(grandchild)), sizeof(grandchild));
	close(fds[0]);
	int st;
	assert_int_equal(waitpid(mid, &st, 0), mid);
	assert_int_equal(errq_exit_code(st), 0);
	assert_int_equal(waitpid(grandchild, &st, 0), grandchild); /* blocks: ctest's timeout is the bound */
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ports_then_sigterm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_port_line_and_parent_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_early_exit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ignores_sigterm_killed_at_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_port_within_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_env_dropped_by_prefix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_program_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parent_death_signal, setup, teardown),
	};
	return cmocka_run_group_tests_name("unit_spawn", tests, NULL, NULL);
}
