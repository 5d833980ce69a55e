/* svc_backup.c: errq.v1.Query/Backup, the online backup behind `errq admin backup PATH`.
 *
 * Threads: the request is checked on the completion-queue thread that receives it (a few
 * stat calls: never the copy), then the copy runs on a backup thread of its own
 * (store_backup: its own read-only connection, never the writer's), which answers the call
 * when the copy is verified and renamed into place.  One backup at a time: b->mu guards
 * running / stopping / joinable and the thread handle; a second request while one runs is
 * refused with RESOURCE_EXHAUSTED.  The finished thread is joined by the next request or at
 * shutdown.
 * Shutdown: the transport's stop hook (transport_on_stop) sets `cancel` and joins the
 * thread; store_backup sees the flag between two steps of STORE_BACKUP_STEP_PAGES pages (or
 * in the verifier's progress handler), removes its temporary file, and the call is answered
 * UNAVAILABLE before the gRPC server goes. */
#include "svc_backup.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errq/v1/query.pb-c.h"
#include "errq_grpc.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "storage.h"
#include "transport.h"
#include "errq_banned.h"

#define BACKUP_TMP_SUFFIX ".tmp"

struct backup_job {
	struct unary_call *uc;
	char path[BACKUP_PATH_MAX + 1];
	char tmp[BACKUP_PATH_MAX + sizeof(BACKUP_TMP_SUFFIX)];
	uint64_t started_ns;
	uint64_t max_bytes_per_sec;
};

struct backup_svc {
	char *db_path; /* NULL: storage none */
	pthread_mutex_t mu;
	bool running, stopping, joinable;
	pthread_t thread;
	atomic_bool cancel;
	struct backup_job *job; /* the running one; owned by its thread */
};

static const char *const companions[] = {"-wal", "-shm", "-journal"};

struct backup_svc *backup_svc_new(const char *db_path)
{
	struct backup_svc *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	if (db_path && !(b->db_path = strdup(db_path))) {
		free(b);
		return NULL;
	}
	pthread_mutex_init(&b->mu, NULL);
	atomic_init(&b->cancel, false);
	return b;
}

static grpc_status_code map_rc(int rc)
{
	switch (rc) {
	case STORE_BACKUP_OK: return GRPC_STATUS_OK;
	case STORE_BACKUP_CANCELLED: return GRPC_STATUS_UNAVAILABLE;
	case STORE_BACKUP_TIMEOUT: return GRPC_STATUS_ABORTED;
	case STORE_BACKUP_CORRUPT: return GRPC_STATUS_DATA_LOSS;
	case STORE_BACKUP_EXISTS: return GRPC_STATUS_ALREADY_EXISTS;
	case STORE_BACKUP_UNSUPPORTED: return GRPC_STATUS_FAILED_PRECONDITION;
	default: return GRPC_STATUS_INTERNAL;
	}
}

static void *backup_main(void *arg)
{
	struct backup_svc *b = arg;
	struct backup_job *j = b->job;
	struct store_backup_result r;
	char err[512] = "";
	struct store_backup_opts o = {.src_path = b->db_path, .tmp_path = j->tmp, .dest_path = j->path,
				      .cancel = &b->cancel, .max_bytes_per_sec = j->max_bytes_per_sec};
	errq_logkv(ERRQ_LOG_INFO, "backup started", "path", j->path, NULL);
	int rc = store_backup(&o, &r, err, sizeof(err));
	uint64_t took = errq_mono_ns() - j->started_ns;
	grpc_byte_buffer *resp = NULL;
	grpc_status_code st = map_rc(rc);
	if (rc == STORE_BACKUP_OK) {
		Errq__V1__BackupResponse m = ERRQ__V1__BACKUP_RESPONSE__INIT;
		m.path = j->path;
		m.bytes = r.bytes;
		m.pages = r.pages;
		m.page_size = r.page_size;
		m.events = r.events;
		m.started_unix_nano = errq_now_ns() - took;
		m.duration_nano = took;
		m.copy_nano = r.copy_ns;
		m.check_nano = r.check_ns;
		m.steps = r.steps;
		if (!(resp = errq_bb_from_msg(&m.base))) {
			st = GRPC_STATUS_RESOURCE_EXHAUSTED;
			errq_snprintf(err, sizeof(err), "out of memory");
		}
		char bytes[24], events[24], ms[24], pages[24];
		errq_snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)r.bytes);
		errq_snprintf(events, sizeof(events), "%llu", (unsigned long long)r.events);
		errq_snprintf(pages, sizeof(pages), "%llu", (unsigned long long)r.pages);
		errq_snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(took / ERRQ_NS_PER_MS));
		errq_logkv(ERRQ_LOG_INFO, "backup written", "path", j->path, "bytes", bytes, "pages", pages, "events",
			   events, "ms", ms, NULL);
	} else {
		errq_logkv(ERRQ_LOG_WARN, "backup failed", "path", j->path, "error", err, NULL);
	}
	transport_unary_reply(j->uc, st, err, resp);
	/* a request that finds the backup running reads j->path under b->mu: free j after */
	pthread_mutex_lock(&b->mu);
	b->job = NULL;
	b->running = false;
	pthread_mutex_unlock(&b->mu);
	free(j);
	return NULL;
}

/* Everything that can be refused before a copy starts.  Returns GRPC_STATUS_OK with j->path
 * and j->tmp set, or the status and a specific reason. */
static grpc_status_code check_request(struct backup_svc *b, const Errq__V1__BackupRequest *in,
				      struct backup_job *j, char *details, size_t dsz)
{
	const char *p = in->path;
	size_t n = strlen(p);
	struct stat sb, db;
	char dir[BACKUP_PATH_MAX + 1], base[BACKUP_PATH_MAX + 1], real_dir[PATH_MAX], real_db[PATH_MAX];
	char canon[PATH_MAX + BACKUP_PATH_MAX + 2], other[PATH_MAX + 16];

	if (!n) {
		errq_snprintf(details, dsz, "backup path is empty");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (n > BACKUP_PATH_MAX) {
		errq_snprintf(details, dsz, "backup path '%.64s...' is longer than %d bytes", p, BACKUP_PATH_MAX);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
			errq_snprintf(details, dsz, "backup path has a control character at byte %zu", i);
			return GRPC_STATUS_INVALID_ARGUMENT;
		}
	if (p[0] != '/') {
		errq_snprintf(details, dsz,
			      "backup path '%s' is relative: give an absolute path on the collector's filesystem", p);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (p[n - 1] == '/') {
		errq_snprintf(details, dsz, "backup path '%s' names a directory, not a file", p);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	errq_snprintf(j->path, sizeof(j->path), "%s", p);
	errq_snprintf(j->tmp, sizeof(j->tmp), "%s" BACKUP_TMP_SUFFIX, p);
	errq_snprintf(dir, sizeof(dir), "%s", p);
	errq_snprintf(base, sizeof(base), "%s", p);
	const char *d = dirname(dir), *f = basename(base);
	if (stat(d, &sb)) {
		errq_snprintf(details, dsz, "cannot write '%s': directory '%s' %s", p, d,
			      errno == ENOENT ? "does not exist" : strerror(errno));
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (!S_ISDIR(sb.st_mode)) {
		errq_snprintf(details, dsz, "cannot write '%s': '%s' is not a directory", p, d);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (access(d, W_OK | X_OK)) {
		errq_snprintf(details, dsz, "cannot write '%s': directory '%s' is not writable by the collector", p,
			      d);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	/* the live database and its companions, by name (the -wal may not exist yet) and by file */
	if (realpath(d, real_dir) && realpath(b->db_path, real_db)) {
		errq_snprintf(canon, sizeof(canon), "%s%s%s", real_dir, strcmp(real_dir, "/") ? "/" : "", f);
		bool live = !strcmp(canon, real_db);
		for (size_t i = 0; i < sizeof(companions) / sizeof(companions[0]) && !live; i++) {
			errq_snprintf(other, sizeof(other), "%s%s", real_db, companions[i]);
			live = !strcmp(canon, other);
		}
		errq_snprintf(other, sizeof(other), "%s.lock", real_db);
		if (live || !strcmp(canon, other)) {
			errq_snprintf(details, dsz, "backup path '%s' is the collector's live database (or one of its files)",
				      p);
			return GRPC_STATUS_INVALID_ARGUMENT;
		}
	}
	if (!lstat(p, &sb)) {
		if (!stat(b->db_path, &db) && sb.st_dev == db.st_dev && sb.st_ino == db.st_ino) {
			errq_snprintf(details, dsz, "backup path '%s' is the collector's live database", p);
			return GRPC_STATUS_INVALID_ARGUMENT;
		}
		if (S_ISDIR(sb.st_mode)) {
			errq_snprintf(details, dsz, "backup path '%s' is a directory", p);
			return GRPC_STATUS_INVALID_ARGUMENT;
		}
		if (!in->force) {
			errq_snprintf(details, dsz, "'%s' exists (--force replaces it)", p);
			return GRPC_STATUS_ALREADY_EXISTS;
		}
	}
	if (!in->force) {
		/* a -wal beside the copy would be read as the copy's own when it is opened */
		for (size_t i = 0; i < sizeof(companions) / sizeof(companions[0]); i++) {
			errq_snprintf(other, sizeof(other), "%s%s", p, companions[i]);
			if (!lstat(other, &sb)) {
				errq_snprintf(details, dsz, "'%s' exists: a copy beside it would read it as its own (--force removes it)",
					      other);
				return GRPC_STATUS_ALREADY_EXISTS;
			}
		}
		if (!lstat(j->tmp, &sb)) {
			errq_snprintf(details, dsz,
				      "'%s' exists: a backup to it is running elsewhere or was interrupted (remove it, or --force)",
				      j->tmp);
			return GRPC_STATUS_ALREADY_EXISTS;
		}
	} else {
		/* --force: what is left of an older copy or an interrupted backup goes first */
		unlink(j->tmp);
		for (size_t i = 0; i < sizeof(companions) / sizeof(companions[0]); i++) {
			errq_snprintf(other, sizeof(other), "%s%s", p, companions[i]);
			unlink(other);
			errq_snprintf(other, sizeof(other), "%s%s", j->tmp, companions[i]);
			unlink(other);
		}
	}
	return GRPC_STATUS_OK;
}

static void backup_call(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct backup_svc *b = ctx;
	char details[BACKUP_PATH_MAX + 256];
	grpc_status_code st = GRPC_STATUS_OK;
	struct backup_job *j = NULL;
	bool reserved = false;
	Errq__V1__BackupRequest *in =
	    errq__v1__backup_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	details[0] = '\0';
	if (!in) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
		errq_snprintf(details, sizeof(details), "cannot decode BackupRequest");
		goto out;
	}
	if (!b->db_path) {
		st = GRPC_STATUS_FAILED_PRECONDITION;
		errq_snprintf(details, sizeof(details), "this collector runs with 'storage: none': nothing to back up");
		goto out;
	}
	if (store_backup_check(b->db_path, details, sizeof(details))) { /* a PostgreSQL database */
		st = GRPC_STATUS_FAILED_PRECONDITION;
		goto out;
	}
	pthread_mutex_lock(&b->mu);
	if (b->stopping) {
		st = GRPC_STATUS_UNAVAILABLE;
		errq_snprintf(details, sizeof(details), "the collector is stopping");
	} else if (b->running) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		if (b->job)
			errq_snprintf(details, sizeof(details), "a backup is already running (to '%s'): one at a time",
				      b->job->path);
		else
			errq_snprintf(details, sizeof(details), "a backup is already running: one at a time");
	} else {
		b->running = true; /* reserved: a second request is refused from here on */
		reserved = true;
		if (b->joinable) { /* the previous thread has ended (it cleared running) */
			pthread_join(b->thread, NULL);
			b->joinable = false;
		}
	}
	pthread_mutex_unlock(&b->mu);
	if (!reserved)
		goto out;
	if (!(j = calloc(1, sizeof(*j)))) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		errq_snprintf(details, sizeof(details), "out of memory");
		goto out;
	}
	if ((st = check_request(b, in, j, details, sizeof(details))) != GRPC_STATUS_OK)
		goto out;
	j->uc = uc;
	j->started_ns = errq_mono_ns();
	j->max_bytes_per_sec = in->max_bytes_per_second;
	pthread_mutex_lock(&b->mu);
	b->job = j;
	if (b->stopping) { /* the stop hook ran meanwhile: no thread may start after it */
		b->job = NULL;
		st = GRPC_STATUS_UNAVAILABLE;
		errq_snprintf(details, sizeof(details), "the collector is stopping");
	} else if (pthread_create(&b->thread, NULL, backup_main, b)) {
		b->job = NULL;
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		errq_snprintf(details, sizeof(details), "cannot start the backup thread");
	} else {
		b->joinable = true;
		j = NULL; /* the thread's now, and the reply too */
		reserved = false;
	}
	pthread_mutex_unlock(&b->mu);
	if (st == GRPC_STATUS_OK) {
		errq__v1__backup_request__free_unpacked(in, NULL);
		return;
	}
out:
	if (reserved) {
		pthread_mutex_lock(&b->mu);
		b->running = false;
		pthread_mutex_unlock(&b->mu);
	}
	free(j);
	if (in)
		errq__v1__backup_request__free_unpacked(in, NULL);
	transport_unary_reply(uc, st, details, NULL);
}

static void backup_stop(void *ctx)
{
	struct backup_svc *b = ctx;
	atomic_store(&b->cancel, true);
	pthread_mutex_lock(&b->mu);
	b->stopping = true;
	bool join = b->joinable;
	b->joinable = false;
	pthread_mutex_unlock(&b->mu);
	if (join)
		pthread_join(b->thread, NULL); /* bounded: one backup step, or one progress check */
}

int backup_svc_register(struct backup_svc *b, struct transport *t)
{
	if (transport_add_unary_async(t, "/errq.v1.Query/Backup", backup_call, b) ||
	    transport_on_stop(t, backup_stop, b))
		return -1;
	return 0;
}

void backup_svc_free(struct backup_svc *b)
{
	if (!b)
		return;
	backup_stop(b); /* a no-op after the transport's stop hook */
	pthread_mutex_destroy(&b->mu);
	free(b->db_path);
	free(b);
}
