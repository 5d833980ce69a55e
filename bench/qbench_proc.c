/* qbench_proc.c: errq-query-bench, the child processes started here (errq-bench, errq):
 * spawning with redirected output, waiting, exit codes.  See errq_query_bench.c for the order
 * of things. */
#include "qbench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "errq_str.h"
#include "errq_banned.h"

/* ---- child processes (errq-bench, errq) ---- */

/* Starts argv[0] with stdin from /dev/null, stdout to out_path (NULL: /dev/null) and stderr to
 * err_path, default signal dispositions, in our process group (a ^C reaches it too).
 * Returns its pid, or -1 with err set. */
pid_t qb_spawn_child(const char *const *argv, const char *out_path, const char *err_path, char *err, size_t errsz)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	if (posix_spawn_file_actions_init(&fa)) {
		errq_snprintf(err, errsz, "posix_spawn: out of memory");
		return -1;
	}
	if (posix_spawnattr_init(&attr)) {
		posix_spawn_file_actions_destroy(&fa);
		errq_snprintf(err, errsz, "posix_spawn: out of memory");
		return -1;
	}
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out_path ? out_path : "/dev/null",
					 O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, 0644); /* O_TRUNC: ignored on a tty */
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	sigset_t none, defs;
	sigemptyset(&none);
	sigemptyset(&defs);
	sigaddset(&defs, SIGINT);
	sigaddset(&defs, SIGTERM);
	sigaddset(&defs, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defs);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int e = posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (e) {
		errq_snprintf(err, errsz, "cannot start '%s': %s", argv[0], strerror(e));
		return -1;
	}
	return pid;
}

int qb_exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* Blocks until pid exits (a signal handler interrupting the wait does not end it). */
int qb_wait_child(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return qb_exit_code(st);
}
