/* store_checkpoint.c: WAL checkpoints off the writer's critical path.
 *
 * The writer connection runs with wal_autocheckpoint=0, so a COMMIT never stops to copy the
 * WAL into the database (with the default, a checkpoint and its two fsyncs follow almost
 * every large commit, which makes synchronous=NORMAL cost about as much as FULL).  This
 * thread owns a connection of its own and runs PASSIVE checkpoints — they never wait for the
 * writer or block it — every STORE_CKPT_INTERVAL_MS, or sooner when the writer signals that
 * the WAL has grown past STORE_CKPT_WAL_PAGES.  Once a checkpoint has copied every frame,
 * the writer's next transaction starts the WAL again from the beginning, so the WAL stays
 * about as large as what is written between two checkpoints (journal_size_limit trims the
 * file after a burst).  Under a steady write load a PASSIVE checkpoint here never reaches the
 * end of the WAL (frames are appended while it copies), so the WAL would never start over:
 * the writer itself finishes the job between transactions (store_wal_catch_up), after the
 * answers of its last commit went out, when only the frames since this thread's last pass are
 * left to copy.  A reader that stays open would pin the WAL; the query side keeps every
 * read to one short statement for that reason.
 *
 * Threads: the checkpoint thread; store_ckpt_kick() from the writer; store_ckpt_stop() from
 * whoever started it.  ck->mu guards the flags and the counters. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_int.h"
#include "errq_condlog.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"

struct store_ckpt {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, kicked;
	sqlite3 *db;
	struct store_ckpt_stats st;
	struct errq_condlog failing; /* this thread's: one line per condition (a full disk) */
	char path[1];
};

static void *ckpt_main(void *arg)
{
	struct store_ckpt *ck = arg;
	pthread_mutex_lock(&ck->mu);
	while (!ck->stop) {
		uint64_t until = errq_mono_ns() + STORE_CKPT_INTERVAL_MS * ERRQ_NS_PER_MS;
		struct timespec ts = {(time_t)(until / ERRQ_NS_PER_SEC), (long)(until % ERRQ_NS_PER_SEC)};
		while (!ck->stop && !ck->kicked)
			if (pthread_cond_timedwait(&ck->cv, &ck->mu, &ts))
				break;
		if (ck->stop)
			break;
		ck->kicked = false;
		pthread_mutex_unlock(&ck->mu);

		int log_frames = 0, done_frames = 0;
		uint64_t t0 = errq_mono_ns();
		int rc = sqlite3_wal_checkpoint_v2(ck->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done_frames);
		uint64_t took = errq_mono_ns() - t0;

		pthread_mutex_lock(&ck->mu);
		if (rc == SQLITE_OK && log_frames < 0) {
			ck->st.errors++; /* not in WAL mode: cannot happen after the check at start */
		} else if (rc == SQLITE_OK) {
			ck->st.checkpoints++;
			ck->st.frames += (uint64_t)done_frames;
			ck->st.last_wal_frames = (uint64_t)log_frames;
			if (took > ck->st.max_ns)
				ck->st.max_ns = took;
			errq_condlog_ok(&ck->failing);
		} else if (rc != SQLITE_BUSY) {
			/* a full disk fails every pass (4 a second): logged once, then summarized */
			ck->st.errors++;
			pthread_mutex_unlock(&ck->mu);
			errq_condlog_fail(&ck->failing, sqlite3_errmsg(ck->db));
			pthread_mutex_lock(&ck->mu);
		}
	}
	pthread_mutex_unlock(&ck->mu);
	return NULL;
}

int store_sqlite_ckpt_start(struct store_ckpt **out, const char *path, char *err, size_t errsz)
{
	size_t n = strlen(path);
	struct store_ckpt *ck = calloc(1, sizeof(*ck) + n);
	*out = NULL;
	if (!ck) {
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	memcpy(ck->path, path, n + 1);
	errq_condlog_init(&ck->failing, "checkpoint failed", ERRQ_LOG_WARN);
	if (sqlite3_open_v2(path, &ck->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		errq_snprintf(err, errsz, "checkpointer: cannot open '%s': %s", path, sqlite3_errmsg(ck->db));
		sqlite3_close(ck->db);
		free(ck);
		return -1;
	}
	sqlite3_busy_timeout(ck->db, 0); /* PASSIVE never waits; never make it */
	/* A connection learns that the database is in WAL mode only when it first reads it: until
	 * then a checkpoint on it is a silent no-op (it reports -1 frames).  This statement reads
	 * the header and ends at once, holding no read transaction. */
	char *jm = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(ck->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		jm = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (!jm || strcmp(jm, "wal") != 0) {
		errq_snprintf(err, errsz, "checkpointer: '%s' is not in WAL mode (%s)", path, jm ? jm : sqlite3_errmsg(ck->db));
		free(jm);
		sqlite3_close(ck->db);
		free(ck);
		return -1;
	}
	free(jm);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&ck->mu, NULL);
	pthread_cond_init(&ck->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&ck->thread, NULL, ckpt_main, ck)) {
		errq_snprintf(err, errsz, "checkpointer: cannot start thread");
		sqlite3_close(ck->db);
		pthread_mutex_destroy(&ck->mu);
		pthread_cond_destroy(&ck->cv);
		free(ck);
		return -1;
	}
	*out = ck;
	return 0;
}

void store_ckpt_kick(struct store_ckpt *ck)
{
	if (!ck)
		return;
	pthread_mutex_lock(&ck->mu);
	ck->kicked = true;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
}

void store_ckpt_get_stats(struct store_ckpt *ck, struct store_ckpt_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!ck)
		return;
	pthread_mutex_lock(&ck->mu);
	*st = ck->st;
	pthread_mutex_unlock(&ck->mu);
}

void store_ckpt_stop(struct store_ckpt *ck)
{
	if (!ck)
		return;
	pthread_mutex_lock(&ck->mu);
	ck->stop = true;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	pthread_join(ck->thread, NULL);
	sqlite3_close(ck->db);
	pthread_mutex_destroy(&ck->mu);
	pthread_cond_destroy(&ck->cv);
	free(ck);
}
