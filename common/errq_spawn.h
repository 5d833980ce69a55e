/* errq_spawn.h: a child process for the benchmarks and the tests (errqd, errq-bench, errq):
 * start it with its output in files, wait for the port file it writes, stop it with a signal
 * and a deadline, read its exit status.  POSIX only: no gRPC, no loop; the parent polls.
 *
 * The child runs none of the parent's code between fork and exec but async-signal-safe calls,
 * so a parent with threads (gRPC's) may spawn.  It starts with an empty signal mask and
 * SIGINT/SIGTERM/SIGPIPE at their defaults, whatever the parent blocks or ignores, and with
 * stdin from /dev/null. */
#ifndef ERRQ_SPAWN_H
#define ERRQ_SPAWN_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ERRQ_SPAWN_ENV_MAX 4096 /* environment variables passed on; the rest is refused */
#define ERRQ_SPAWN_PATH_MAX 4096
#define ERRQ_SPAWN_POLL_MS 10   /* the pause between two polls of a wait */

struct errq_spawn_opts {
	const char *const *argv;     /* argv[0]: a path, or a name looked up in PATH */
	const char *out_path;        /* stdout; NULL: /dev/null */
	const char *err_path;        /* stderr; NULL: the same open file as stdout */
	bool append;                 /* open them with O_APPEND (a restart adds to one log), else O_TRUNC */
	bool own_pgroup;             /* its own process group: a ^C on the terminal does not reach it */
	/* Linux: the signal the child gets when the spawning *thread* ends (PR_SET_PDEATHSIG), so
	 * a test that dies leaves no collector running; 0: none */
	int pdeath_sig;
	const char *drop_env_prefix; /* variables named with this prefix are not passed; NULL: all */
};

struct errq_child {
	pid_t pid;    /* 0: not running (never started, or reaped) */
	int status;   /* once reaped: the exit code, 128+N when killed by signal N; -1 before */
	bool killed;  /* errq_child_stop sent SIGKILL at its deadline */
};

/* Starts o->argv.  Returns 0 with c->pid set, or -1 with err set (nothing started). */
int errq_spawn(struct errq_child *c, const struct errq_spawn_opts *o, char *err, size_t errsz);
/* Waits for port_file to hold a positive number on its first line (the gRPC port; the second
 * line, when present, the HTTP port: ports[1], else 0).  Returns 0 with ports set; -1 when the
 * child exited first (reaped: c->status; err "exited at start-up with status N") or at deadline_ms
 * (the child keeps running), err set. */
int errq_child_wait_ports(struct errq_child *c, const char *port_file, int deadline_ms, int ports[2], char *err,
			  size_t errsz);
/* True while the child runs; reaps it (c->status) when it has exited.  Never blocks. */
bool errq_child_running(struct errq_child *c);
/* Blocks until the child exits (EINTR does not end the wait); returns c->status. */
int errq_child_wait(struct errq_child *c);
/* Sends sig, waits up to deadline_ms, then SIGKILL (c->killed) and waits.  Returns c->status;
 * -1 when no child was running. */
int errq_child_stop(struct errq_child *c, int sig, int deadline_ms);
/* A waitpid status as an exit code: the code, 128+N for signal N, -1 otherwise. */
int errq_exit_code(int wstatus);
#endif
