/* proc.c: errqd as a child process, and what /proc says about a process.
 *
 * errqd is started with errq_spawn (common/errq_spawn.c: posix_spawn), in its own process
 * group (a ^C on the terminal reaches errq-bench only, which then stops errqd in order) and
 * with the default signal mask and dispositions (errq-bench blocks SIGINT/SIGTERM).  It
 * listens on 127.0.0.1:0 and writes its port to a file in a temporary directory that also
 * holds its log and, unless --db is given, its database. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "errq_spawn.h"
#include "errq_str.h"
#include "errq_banned.h"

#define PROC_LINE_MAX 512
#define PROC_STAT_MAX 2048
#define PROC_ARGV_MAX (16 + BENCH_MAX_ERRQD_ARGS)
#define PROC_TAIL_MAX (64 * 1024) /* bytes of log read for server_log_tail */
#define PROC_PATH_MAX 64           /* "/proc/PID/status" */

/* Removes the files of a flat directory, then the directory. */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		char path[BENCH_PATH_MAX + 256];
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			errq_snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	if (rmdir(dir))
		fprintf(stderr, "errq-bench: cannot remove '%s': %s\n", dir, strerror(errno));
}

int server_spawn(struct server *sv, const struct spawn_opts *o, char *err, size_t errsz)
{
	char portfile[BENCH_PATH_MAX + 16], e2[256];
	const char *argv[PROC_ARGV_MAX];
	int n = 0, rc = -1, ports[2];

	memset(sv, 0, sizeof(*sv));
	sv->keep = o->keep;
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	if (errq_snprintf(sv->dir, sizeof(sv->dir), "%s/errq-bench-XXXXXX", tmp) >= (int)sizeof(sv->dir) ||
	    !mkdtemp(sv->dir)) {
		errq_snprintf(err, errsz, "cannot make a temporary directory in '%s': %s", tmp, strerror(errno));
		sv->dir[0] = '\0';
		return -1;
	}
	sv->own_dir = true;
	if (o->db) {
		if (strlen(o->db) >= sizeof(sv->db)) {
			errq_snprintf(err, errsz, "--db: path too long");
			goto out;
		}
		errq_snprintf(sv->db, sizeof(sv->db), "%s", o->db);
	} else {
		errq_snprintf(sv->db, sizeof(sv->db), "%s/errq.db", sv->dir);
	}
	errq_snprintf(sv->log, sizeof(sv->log), "%s/errqd.log", sv->dir);
	errq_snprintf(portfile, sizeof(portfile), "%s/port", sv->dir);

	argv[n++] = o->path;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--port-file";
	argv[n++] = portfile;
	argv[n++] = "--db";
	argv[n++] = sv->db;
	argv[n++] = "--http-listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--log-level";
	argv[n++] = "warn";
	if (o->durability) {
		argv[n++] = "--durability";
		argv[n++] = o->durability;
	}
	if (o->storage) {
		argv[n++] = "--storage";
		argv[n++] = o->storage;
	}
	for (int i = 0; i < o->nextra && n < PROC_ARGV_MAX - 1; i++)
		argv[n++] = o->extra[i];
	argv[n] = NULL;

	struct errq_spawn_opts so = {.argv = argv, .out_path = sv->log, .own_pgroup = true};
	if (errq_spawn(&sv->child, &so, err, errsz))
		goto out;
	sv->pid = sv->child.pid;
	sv->spawned = sv->running = true;
	if (errq_child_wait_ports(&sv->child, portfile, BENCH_START_TIMEOUT_MS, ports, e2, sizeof(e2)) == 0) {
		errq_snprintf(sv->addr, sizeof(sv->addr), "127.0.0.1:%d", ports[0]);
		rc = 0;
		goto out;
	}
	errq_snprintf(err, errsz, "errqd %s", e2);
	server_log_tail(sv, 20);
	errq_child_stop(&sv->child, SIGKILL, BENCH_STOP_TIMEOUT_MS);
	sv->pid = 0;
	sv->spawned = sv->running = false;
out:
	if (rc && sv->own_dir && !sv->keep) {
		remove_dir(sv->dir);
		sv->own_dir = false;
	}
	return rc;
}

void server_stop(struct server *sv)
{
	sv->exit_status = -1;
	if (sv->running) {
		sv->exit_status = errq_child_stop(&sv->child, SIGTERM, BENCH_STOP_TIMEOUT_MS);
		if (sv->child.killed)
			fprintf(stderr, "errq-bench: errqd (pid %d) did not exit within %d ms of SIGTERM: killed\n",
				(int)sv->pid, BENCH_STOP_TIMEOUT_MS);
		if (sv->exit_status != 0) {
			fprintf(stderr, "errq-bench: errqd exited with status %d; its log follows\n", sv->exit_status);
			server_log_tail(sv, 20);
		}
		sv->running = false;
	}
	if (sv->own_dir) {
		if (sv->keep)
			fprintf(stderr, "errq-bench: kept '%s'\n", sv->dir);
		else
			remove_dir(sv->dir);
		sv->own_dir = false;
	}
}

void server_log_tail(const struct server *sv, int lines)
{
	if (!sv->log[0])
		return;
	int fd = open(sv->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char *buf = malloc(PROC_TAIL_MAX + 1);
	off_t end = lseek(fd, 0, SEEK_END);
	off_t start = end > PROC_TAIL_MAX ? end - PROC_TAIL_MAX : 0;
	ssize_t got = buf ? pread(fd, buf, PROC_TAIL_MAX, start) : -1;
	close(fd);
	if (got <= 0) {
		free(buf);
		return;
	}
	buf[got] = '\0';
	char *p = buf + got;
	if (p[-1] == '\n')
		p--; /* the last line's own newline */
	for (int seen = 0; p > buf; p--)
		if (p[-1] == '\n' && ++seen == lines)
			break;
	fprintf(stderr, "---- the end of errqd's log (%s) ----\n%s%s", sv->log, p, buf[got - 1] == '\n' ? "" : "\n");
	free(buf);
}

int proc_cpu_us(pid_t pid, uint64_t *user_us, uint64_t *sys_us)
{
	char path[PROC_PATH_MAX], buf[PROC_STAT_MAX];
	errq_snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields after the
	 * last ')' are 3 (state) onwards; utime is field 14, stime 15 */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	unsigned long long ut = 0, st = 0;
	for (int field = 3; field <= 15; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -1;
		if (field == 14)
			ut = strtoull(p, NULL, 10);
		else if (field == 15)
			st = strtoull(p, NULL, 10);
		while (*p && *p != ' ')
			p++;
	}
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	*user_us = (uint64_t)ut * 1000000ULL / (uint64_t)hz;
	*sys_us = (uint64_t)st * 1000000ULL / (uint64_t)hz;
	return 0;
}

int proc_mem_kib(pid_t pid, uint64_t *rss, uint64_t *hwm)
{
	char path[PROC_PATH_MAX], line[PROC_LINE_MAX];
	errq_snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int found = 0;
	*rss = *hwm = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;
		if (sscanf(line, "VmRSS: %llu kB", &v) == 1) {
			*rss = v;
			found |= 1;
		} else if (sscanf(line, "VmHWM: %llu kB", &v) == 1) {
			*hwm = v;
			found |= 2;
		}
	}
	fclose(f);
	return found == 3 ? 0 : -1;
}

uint64_t self_cpu_us(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (uint64_t)ru.ru_utime.tv_sec * 1000000ULL + (uint64_t)ru.ru_utime.tv_usec +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000ULL + (uint64_t)ru.ru_stime.tv_usec;
}
