/* store_lock.c: one collector per database (see storage.h, store_lock).
 *
 * SQLite's own locks let any number of processes write one database in turn, so two errqd
 * on one file would both ingest, both run the rule engine and both deliver the same alerts.
 * A flock on a file beside the database (not on the database: SQLite's POSIX locks on it
 * would be dropped by any close of another descriptor of the same file in this process)
 * makes the second one refuse to start.  flock, not fcntl locks: it belongs to the open file
 * description, so nothing else in the process can drop it, and the kernel releases it when
 * the process dies, however it dies.  The file is never removed: unlinking a lock file
 * races with a process that has just opened it and would then lock a file nobody else sees. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store_int.h"
#include "errq_str.h"
#include "errq_banned.h"

#define STORE_LOCK_SUFFIX ".lock"
#define STORE_LOCK_PATH_MAX 4096
#define STORE_LOCK_PID_MAX 24 /* bytes of the pid line the holder writes */

struct store_lock {
	int fd;
};

int store_sqlite_lock(struct store_lock **out, const char *db_path, char *err, size_t errsz)
{
	char path[STORE_LOCK_PATH_MAX], buf[STORE_LOCK_PID_MAX];
	struct store_lock *l = NULL;
	int fd = -1, rc = -1;
	*out = NULL;
	/* one lock file per file, whatever the name: symlinks resolved (the database itself, or
	 * its directory when the database does not exist yet) */
	char real[PATH_MAX], dir[PATH_MAX], base[PATH_MAX];
	const char *name = db_path;
	if (realpath(db_path, real)) {
		name = real;
	} else if (errno == ENOENT && strlen(db_path) < sizeof(dir)) {
		errq_snprintf(dir, sizeof(dir), "%s", db_path);
		errq_snprintf(base, sizeof(base), "%s", db_path);
		char rdir[PATH_MAX];
		if (realpath(dirname(dir), rdir) &&
		    (size_t)errq_snprintf(real, sizeof(real), "%s/%s", strcmp(rdir, "/") ? rdir : "", basename(base)) <
			sizeof(real))
			name = real;
	}
	if ((size_t)errq_snprintf(path, sizeof(path), "%s" STORE_LOCK_SUFFIX, name) >= sizeof(path)) {
		errq_snprintf(err, errsz, "database path '%.64s...' is too long", db_path);
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		errq_snprintf(err, errsz, "cannot open lock file '%s': %s", path, strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK) {
			errq_snprintf(err, errsz, "cannot lock '%s': %s", path, strerror(errno));
			goto out;
		}
		/* the holder's pid, as it wrote it (it may be mid-write: then say less) */
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		long pid = 0;
		if (n > 0) {
			buf[n] = '\0';
			pid = strtol(buf, NULL, 10);
		}
		if (pid > 0)
			errq_snprintf(err, errsz, "database '%s' is in use by another errqd (pid %ld, lock '%s')",
				      db_path, pid, path);
		else
			errq_snprintf(err, errsz, "database '%s' is in use by another errqd (lock '%s')", db_path,
				      path);
		goto out;
	}
	int n = errq_snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)n, 0) != n) {
		/* the lock holds anyway; only the message of a second collector is poorer */
		errq_snprintf(err, errsz, "cannot write the pid into '%s': %s", path, strerror(errno));
	}
	if (!(l = malloc(sizeof(*l)))) {
		errq_snprintf(err, errsz, "out of memory");
		goto out;
	}
	l->fd = fd;
	fd = -1;
	*out = l;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

void store_unlock(struct store_lock *l)
{
	if (!l)
		return;
	close(l->fd); /* releases the flock */
	free(l);
}
