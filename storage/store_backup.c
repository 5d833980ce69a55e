/* store_backup.c: online backups (see storage.h, store_backup).
 *
 * Threads: store_backup runs on its caller's thread (errqd: a backup thread of its own, never
 * the writer or a completion-queue thread) with two connections of its own: the source,
 * read-only, and the copy.  It shares nothing with the writer but the file and
 * store__backups_pinning, which tells the writer not to wait on the snapshot it pins.
 *
 * Why one read transaction for the whole copy: sqlite3_backup_step takes a fresh read lock
 * at each step when none is held, and restarts from page 1 whenever another connection has
 * committed in between, so under a steady ingest a stepped backup would never end.  Holding
 * the source's read transaction across the steps freezes its snapshot (WAL: the writer
 * appends frames the snapshot does not see), so the copy is exactly the database as of the
 * BEGIN, and every step goes forward. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

atomic_int store__backups_pinning;

#define BACKUP_BUSY_RETRY_MS 10       /* a step that found a lock waits this long and tries again */
#define BACKUP_PROGRESS_OPS 10000     /* VM steps between cancel/deadline checks while verifying */
#define BACKUP_SUFFIX_MAX 16          /* "-journal" and the like */
#define BACKUP_PAUSE_SLICE_MS 50      /* a throttled backup sleeps in slices this long, checking cancel */

struct run {
	const struct store_backup_opts *o;
	uint64_t deadline; /* monotonic ns */
	int stop;          /* STORE_BACKUP_CANCELLED / _TIMEOUT once seen */
};

/* Between steps and from the verifier's progress handler: should the backup stop now? */
static int should_stop(struct run *r)
{
	if (r->o->cancel && atomic_load(r->o->cancel))
		r->stop = STORE_BACKUP_CANCELLED;
	else if (errq_mono_ns() >= r->deadline)
		r->stop = STORE_BACKUP_TIMEOUT;
	return r->stop;
}

bool store_backup_pinning(void)
{
	return atomic_load(&store__backups_pinning) != 0;
}

static int progress(void *arg)
{
	return should_stop(arg) != 0;
}

static void remove_tmp(const char *tmp)
{
	static const char *const sfx[] = {"", "-journal", "-wal", "-shm"};
	char p[4096 + BACKUP_SUFFIX_MAX];
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		errq_snprintf(p, sizeof(p), "%s%s", tmp, sfx[i]);
		unlink(p);
	}
}

/* One-row query into *v (an integer or, with txt, the text of the first column). */
static int query1(sqlite3 *db, const char *sql, int64_t *v, char *txt, size_t tsz)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (v)
			*v = sqlite3_column_int64(st, 0);
		if (txt) {
			const char *t = (const char *)sqlite3_column_text(st, 0);
			errq_snprintf(txt, tsz, "%s", t ? t : "");
		}
		/* quick_check prints one row per problem: a second row means it did not say "ok" alone */
		if (txt && sqlite3_step(st) == SQLITE_ROW)
			errq_snprintf(txt + strlen(txt), tsz - strlen(txt), " (and more)");
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -1;
}

static int fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

int store_sqlite_backup(const struct store_backup_opts *o, struct store_backup_result *res, char *err, size_t errsz)
{
	struct run r = {.o = o};
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *bk = NULL;
	bool pinned = false, in_read = false, created = false;
	int rc = STORE_BACKUP_FAILED, src_rc;
	uint64_t t0 = errq_mono_ns();
	int64_t v = 0;
	char check[256];

	memset(res, 0, sizeof(*res));
	r.deadline = t0 + (o->max_ns ? o->max_ns : STORE_BACKUP_MAX_NS);
	int fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = errno == EEXIST ? STORE_BACKUP_EXISTS : STORE_BACKUP_FAILED;
		errq_snprintf(err, errsz, "cannot create '%s': %s", o->tmp_path, strerror(errno));
		goto out;
	}
	created = true;
	close(fd);

	if (sqlite3_open_v2(o->src_path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		errq_snprintf(err, errsz, "cannot open database '%s': %s", o->src_path, sqlite3_errmsg(src));
		goto out;
	}
	sqlite3_busy_timeout(src, 1000);
	if (sqlite3_open_v2(o->tmp_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		errq_snprintf(err, errsz, "cannot open '%s': %s", o->tmp_path, sqlite3_errmsg(dst));
		goto out;
	}
	/* the writer must not wait on the snapshot: say so before taking it */
	atomic_fetch_add(&store__backups_pinning, 1);
	pinned = true;
	if (sqlite3_exec(src, "BEGIN; SELECT 1 FROM sqlite_schema LIMIT 1", NULL, NULL, NULL) != SQLITE_OK) {
		errq_snprintf(err, errsz, "cannot read database '%s': %s", o->src_path, sqlite3_errmsg(src));
		goto out;
	}
	in_read = true;
	if (!(bk = sqlite3_backup_init(dst, "main", src, "main"))) {
		errq_snprintf(err, errsz, "cannot start the backup: %s", sqlite3_errmsg(dst));
		goto out;
	}
	/* a throttled backup takes about four steps a second, each paced to the rate */
	int step_pages = STORE_BACKUP_STEP_PAGES;
	uint64_t page_size = 4096;
	if (o->max_bytes_per_sec) {
		if (query1(src, "PRAGMA page_size", &v, NULL, 0) == 0 && v > 0)
			page_size = (uint64_t)v;
		uint64_t per = o->max_bytes_per_sec / page_size / 4;
		step_pages = per < 1 ? 1 : per > STORE_BACKUP_STEP_PAGES ? STORE_BACKUP_STEP_PAGES : (int)per;
	}
	for (;;) {
		src_rc = sqlite3_backup_step(bk, step_pages);
		res->steps++;
		if (src_rc == SQLITE_DONE)
			break;
		if (src_rc != SQLITE_OK && src_rc != SQLITE_BUSY && src_rc != SQLITE_LOCKED) {
			errq_snprintf(err, errsz, "backup step failed: %s", sqlite3_errstr(src_rc));
			goto out;
		}
		if (should_stop(&r)) {
			rc = r.stop;
			goto out;
		}
		if (src_rc != SQLITE_OK) {
			sqlite3_sleep(BACKUP_BUSY_RETRY_MS);
			continue;
		}
		if (o->max_bytes_per_sec) {
			uint64_t copied = (uint64_t)(sqlite3_backup_pagecount(bk) - sqlite3_backup_remaining(bk));
			/* copied * page_size / rate seconds after the start, computed in ns without overflow */
			long double due = (long double)copied * (long double)page_size * 1e9L / (long double)o->max_bytes_per_sec;
			uint64_t until = t0 + (due > 1e18L ? (uint64_t)1e18 : (uint64_t)due);
			while (errq_mono_ns() < until) {
				if (should_stop(&r)) {
					rc = r.stop;
					goto out;
				}
				uint64_t left_ms = (until - errq_mono_ns()) / ERRQ_NS_PER_MS + 1;
				sqlite3_sleep(left_ms < BACKUP_PAUSE_SLICE_MS ? (int)left_ms : BACKUP_PAUSE_SLICE_MS);
			}
		}
	}
	res->pages = (uint64_t)sqlite3_backup_pagecount(bk);
	src_rc = sqlite3_backup_finish(bk);
	bk = NULL;
	if (src_rc != SQLITE_OK) {
		errq_snprintf(err, errsz, "backup failed: %s", sqlite3_errstr(src_rc));
		goto out;
	}
	/* the snapshot is copied: let the WAL be checkpointed again */
	sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
	in_read = false;
	atomic_fetch_sub(&store__backups_pinning, 1);
	pinned = false;
	sqlite3_close(src);
	src = NULL;
	res->copy_ns = errq_mono_ns() - t0;

	/* verify the copy itself, with its own connection, not the source */
	uint64_t t1 = errq_mono_ns();
	sqlite3_progress_handler(dst, BACKUP_PROGRESS_OPS, progress, &r);
	if (query1(dst, "PRAGMA quick_check", NULL, check, sizeof(check))) {
		rc = r.stop ? r.stop : STORE_BACKUP_FAILED;
		errq_snprintf(err, errsz, "cannot check the copy: %s", r.stop ? "stopped" : sqlite3_errmsg(dst));
		goto out;
	}
	if (strcmp(check, "ok") != 0) {
		rc = STORE_BACKUP_CORRUPT;
		errq_snprintf(err, errsz, "the copy failed its check: %s", check);
		goto out;
	}
	if (query1(dst, "SELECT count(*) FROM events", &v, NULL, 0)) {
		rc = r.stop ? r.stop : STORE_BACKUP_FAILED;
		errq_snprintf(err, errsz, "cannot count the events of the copy: %s",
			      r.stop ? "stopped" : sqlite3_errmsg(dst));
		goto out;
	}
	res->events = (uint64_t)v;
	if (query1(dst, "PRAGMA page_size", &v, NULL, 0) == 0)
		res->page_size = (uint32_t)v;
	sqlite3_progress_handler(dst, 0, NULL, NULL);
	/* the last connection of a WAL database checkpoints and removes its -wal and -shm */
	if (sqlite3_close(dst) != SQLITE_OK) {
		errq_snprintf(err, errsz, "cannot close '%s': %s", o->tmp_path, sqlite3_errmsg(dst));
		goto out;
	}
	dst = NULL;
	res->check_ns = errq_mono_ns() - t1;

	if (should_stop(&r)) { /* last chance before the fsync, which nothing interrupts */
		rc = r.stop;
		goto out;
	}
	struct stat sb;
	if (fsync_path(o->tmp_path, O_RDONLY) || stat(o->tmp_path, &sb)) {
		errq_snprintf(err, errsz, "cannot sync '%s': %s", o->tmp_path, strerror(errno));
		goto out;
	}
	res->bytes = (uint64_t)sb.st_size;
	if (rename(o->tmp_path, o->dest_path)) {
		errq_snprintf(err, errsz, "cannot rename '%s' to '%s': %s", o->tmp_path, o->dest_path, strerror(errno));
		goto out;
	}
	created = false;
	{
		char dir[4096];
		errq_snprintf(dir, sizeof(dir), "%s", o->dest_path);
		/* the rename is durable once the directory is */
		if (fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY)) {
			errq_snprintf(err, errsz, "cannot sync the directory of '%s': %s", o->dest_path,
				      strerror(errno));
			goto out;
		}
	}
	rc = STORE_BACKUP_OK;
out:
	if (rc == STORE_BACKUP_CANCELLED)
		errq_snprintf(err, errsz, "backup cancelled: the collector is stopping");
	else if (rc == STORE_BACKUP_TIMEOUT)
		errq_snprintf(err, errsz, "backup abandoned: it took longer than %llu s",
			      (unsigned long long)((o->max_ns ? o->max_ns : STORE_BACKUP_MAX_NS) / ERRQ_NS_PER_SEC));
	if (bk)
		sqlite3_backup_finish(bk);
	if (in_read)
		sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
	if (pinned)
		atomic_fetch_sub(&store__backups_pinning, 1);
	sqlite3_close(src);
	sqlite3_close(dst);
	if (created)
		remove_tmp(o->tmp_path);
	return rc;
}
