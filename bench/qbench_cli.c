/* qbench_cli.c: errq-query-bench, step 5: the errq processes timed end to end, one run on a
 * pseudo-terminal.  See errq_query_bench.c for the order of things. */
#include "qbench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

/* ---- step 5: the errq processes ---- */

/* A pseudo-terminal for the runs whose stdout is a terminal: the child opens the slave by its
 * name; a thread reads (and discards) what it writes.  We hold the slave open too, so that the
 * reader blocks between runs instead of seeing EIO; closing it ends the reader. */

struct pty {
	int master, slave;
	char name[128];
	pthread_t reader;
	bool up;
};

static void *pty_drain(void *arg)
{
	int fd = *(const int *)arg;
	char buf[16384];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		return NULL; /* EIO: every slave descriptor is closed */
	}
}

static int pty_open(struct pty *t, char *err, size_t errsz)
{
	memset(t, 0, sizeof(*t));
	t->master = t->slave = -1;
	t->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (t->master < 0 || grantpt(t->master) || unlockpt(t->master) ||
	    ptsname_r(t->master, t->name, sizeof(t->name))) {
		errq_snprintf(err, errsz, "cannot open a pseudo-terminal: %s", strerror(errno));
		goto fail;
	}
	t->slave = open(t->name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (t->slave < 0) {
		errq_snprintf(err, errsz, "cannot open '%s': %s", t->name, strerror(errno));
		goto fail;
	}
	struct winsize ws = {.ws_row = QB_TTY_ROWS, .ws_col = QB_TTY_COLS};
	ioctl(t->master, TIOCSWINSZ, &ws);
	if (pthread_create(&t->reader, NULL, pty_drain, &t->master)) {
		errq_snprintf(err, errsz, "cannot start a thread");
		goto fail;
	}
	t->up = true;
	return 0;
fail:
	if (t->slave >= 0)
		close(t->slave);
	if (t->master >= 0)
		close(t->master);
	t->master = t->slave = -1;
	return -1;
}

static void pty_close(struct pty *t)
{
	if (!t->up)
		return;
	close(t->slave);
	pthread_join(t->reader, NULL);
	close(t->master);
	t->up = false;
}

void qb_measure_cli(const struct qcfg *c, const char *addr, const char *workdir, const struct dbinfo *db,
			struct clirun *r)
{
	char errf[QB_PATH_MAX], err[QB_MSG_MAX];
	struct pty tty = {.up = false};
	errq_snprintf(errf, sizeof(errf), "%s/cli.err", workdir);
	if (r->tty && pty_open(&tty, err, sizeof(err))) {
		r->failures++;
		errq_snprintf(r->err, sizeof(r->err), "%s", err);
		return;
	}
	const char *argv[12];
	int k = 0;
	argv[k++] = c->cli;
	if (r->fp == FP_NONE) {
		argv[k++] = "groups";
		argv[k++] = "--since";
		argv[k++] = "1h";
	} else {
		argv[k++] = "group";
		argv[k++] = qb_fp_of(db, r->fp);
	}
	if (!r->tty) {
		argv[k++] = "-o";
		argv[k++] = "json";
	}
	argv[k++] = "--addr";
	argv[k++] = addr;
	argv[k] = NULL;
	fprintf(stderr, "errq-query-bench: %s: 1 warm-up + %d runs\n", r->label, c->cli_runs);
	for (int i = -1; i < c->cli_runs && !qb_stop; i++) {
		uint64_t t0 = errq_mono_ns();
		pid_t pid = qb_spawn_child(argv, r->tty ? tty.name : NULL, errf, err, sizeof(err));
		if (pid < 0) {
			r->failures++;
			errq_snprintf(r->err, sizeof(r->err), "%s", err);
			break;
		}
		int code = qb_wait_child(pid);
		uint64_t t1 = errq_mono_ns();
		r->last_exit = code;
		if (code != 0) {
			if (!r->failures++) {
				char line[QB_MSG_MAX - 32];
				qb_first_line(errf, line, sizeof(line));
				errq_snprintf(r->err, sizeof(r->err), "exit %d%s%s", code, line[0] ? ": " : "", line);
			}
			continue;
		}
		if (i >= 0)
			r->wall.ms[r->wall.n++] = qb_ms_between(t0, t1);
	}
	pty_close(&tty);
}
