/* errq_spawn.c: child processes for the benchmarks and the tests (errq_spawn.h).
 *
 * Two ways to start, one set of effects: posix_spawn (glibc clones without copying the
 * parent's memory, which keeps errq-query-bench's timed CLI runs as cheap as before) unless
 * a parent-death signal is asked for, which only prctl in the child can set; then fork, and
 * the child calls only async-signal-safe functions on values prepared here. */
#include "errq_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_banned.h"

extern char **environ;

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int errq_exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* argv[0] as a path: itself when it holds a '/', else the first executable of PATH. */
static int resolve(const char *name, char *out, size_t n)
{
	if (strchr(name, '/'))
		return errq_snprintf(out, n, "%s", name) < (int)n ? 0 : -1;
	const char *path = getenv("PATH");
	for (const char *p = path && *path ? path : "/usr/bin:/bin"; *p;) {
		size_t len = strcspn(p, ":");
		if (errq_snprintf(out, n, "%.*s/%s", (int)len, len ? p : ".", name) < (int)n &&
		    access(out, X_OK) == 0)
			return 0;
		p += len + (p[len] == ':');
	}
	return -1;
}

/* The child's side of the fork: async-signal-safe calls only (the parent may have threads). */
static void child(const char *file, const struct errq_spawn_opts *o, int oflags, char **envp, pid_t parent)
{
	if (o->pdeath_sig && (prctl(PR_SET_PDEATHSIG, o->pdeath_sig) || getppid() != parent))
		_exit(126); /* the parent already ended: nobody would stop this child */
	if (o->own_pgroup)
		setpgid(0, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGINT, &dfl, NULL);
	sigaction(SIGTERM, &dfl, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	int in = open("/dev/null", O_RDONLY);
	int out = open(o->out_path ? o->out_path : "/dev/null", oflags, 0644);
	int err = o->err_path ? open(o->err_path, oflags, 0644) : out;
	if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	execve(file, (char *const *)o->argv, envp);
	_exit(127);
}

int errq_spawn(struct errq_child *c, const struct errq_spawn_opts *o, char *err, size_t errsz)
{
	char file[ERRQ_SPAWN_PATH_MAX];
	int oflags = O_WRONLY | O_CREAT | O_NOCTTY | (o->append ? O_APPEND : O_TRUNC); /* O_TRUNC: none on a tty */
	char **envp = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	bool fa_ok = false, attr_ok = false;
	int rc = -1, e = 0;

	c->pid = 0;
	c->status = -1;
	c->killed = false;
	if (resolve(o->argv[0], file, sizeof(file))) {
		errq_snprintf(err, errsz, "cannot start '%s': not found", o->argv[0]);
		return -1;
	}
	size_t n = 0, keep = 0, plen = o->drop_env_prefix ? strlen(o->drop_env_prefix) : 0;
	while (environ[n])
		n++;
	if (n >= ERRQ_SPAWN_ENV_MAX) {
		errq_snprintf(err, errsz, "cannot start '%s': %zu environment variables (limit %d)", o->argv[0], n,
			      ERRQ_SPAWN_ENV_MAX);
		return -1;
	}
	envp = malloc((n + 1) * sizeof(*envp));
	if (!envp) {
		errq_snprintf(err, errsz, "cannot start '%s': out of memory", o->argv[0]);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!plen || strncmp(environ[i], o->drop_env_prefix, plen) != 0)
			envp[keep++] = environ[i];
	envp[keep] = NULL;

	if (o->pdeath_sig) {
		pid_t parent = getpid(), pid = fork();
		if (pid == 0)
			child(file, o, oflags, envp, parent);
		e = pid < 0 ? errno : 0;
		c->pid = pid > 0 ? pid : 0;
		goto out;
	}
	fa_ok = posix_spawn_file_actions_init(&fa) == 0;
	attr_ok = posix_spawnattr_init(&attr) == 0;
	if (!fa_ok || !attr_ok) {
		e = ENOMEM;
		goto out;
	}
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, o->out_path ? o->out_path : "/dev/null", oflags, 0644);
	if (o->err_path)
		posix_spawn_file_actions_addopen(&fa, 2, o->err_path, oflags, 0644);
	else
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	sigset_t none, defs;
	sigemptyset(&none);
	sigemptyset(&defs);
	sigaddset(&defs, SIGINT);
	sigaddset(&defs, SIGTERM);
	sigaddset(&defs, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defs);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					       (o->own_pgroup ? POSIX_SPAWN_SETPGROUP : 0));
	e = posix_spawn(&c->pid, file, &fa, &attr, (char *const *)o->argv, envp);
out:
	if (e) {
		c->pid = 0;
		errq_snprintf(err, errsz, "cannot start '%s': %s", o->argv[0], strerror(e));
	} else {
		rc = 0;
	}
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	free(envp);
	return rc;
}

bool errq_child_running(struct errq_child *c)
{
	int st;
	if (c->pid <= 0)
		return false;
	pid_t r = waitpid(c->pid, &st, WNOHANG);
	if (r == 0 || (r < 0 && errno == EINTR))
		return true;
	c->status = r == c->pid ? errq_exit_code(st) : -1; /* r < 0: not ours to wait for */
	c->pid = 0;
	return false;
}

int errq_child_wait(struct errq_child *c)
{
	int st = 0;
	if (c->pid <= 0)
		return c->status;
	pid_t r;
	while ((r = waitpid(c->pid, &st, 0)) < 0 && errno == EINTR)
		;
	c->status = r == c->pid ? errq_exit_code(st) : -1;
	c->pid = 0;
	return c->status;
}

int errq_child_wait_ports(struct errq_child *c, const char *port_file, int deadline_ms, int ports[2], char *err,
			  size_t errsz)
{
	for (int waited = 0;; waited += ERRQ_SPAWN_POLL_MS) {
		FILE *f = fopen(port_file, "re");
		if (f) {
			int p[2] = {0, 0};
			int got = fscanf(f, "%d %d", &p[0], &p[1]);
			fclose(f);
			if (got >= 1 && p[0] > 0) {
				ports[0] = p[0];
				ports[1] = got == 2 && p[1] > 0 ? p[1] : 0;
				return 0;
			}
		}
		if (!errq_child_running(c)) {
			errq_snprintf(err, errsz, "exited at start-up with status %d", c->status);
			return -1;
		}
		if (waited >= deadline_ms) {
			errq_snprintf(err, errsz, "did not write its port to '%s' within %d ms", port_file, deadline_ms);
			return -1;
		}
		msleep(ERRQ_SPAWN_POLL_MS);
	}
}

int errq_child_stop(struct errq_child *c, int sig, int deadline_ms)
{
	if (c->pid <= 0)
		return -1;
	kill(c->pid, sig);
	for (int waited = 0; errq_child_running(c); waited += ERRQ_SPAWN_POLL_MS) {
		if (waited >= deadline_ms) {
			kill(c->pid, SIGKILL);
			c->killed = true;
			return errq_child_wait(c);
		}
		msleep(ERRQ_SPAWN_POLL_MS);
	}
	return c->status;
}
