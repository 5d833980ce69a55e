/* store_copy.h: copying a SQLite database into a PostgreSQL one (`errqd admin migrate`, issue 17).
 *
 * store_copy() takes the source's collector lock (no errqd may run on it meanwhile), opens it
 * as errqd would (an older schema is migrated, counts a crash left unwritten are written:
 * the only writes to the source), opens the target through the PostgreSQL backend (its own
 * migrator brings it to the current schema) and creates the day partitions of events for
 * the days the source's event ids span (at most STORE_COPY_PARTITION_DAYS_MAX back).  Then,
 * in ONE transaction on the target: every table (pg_copy.c lists them) in key order,
 * batch_rows rows a batch, each batch read in a short read transaction of its own
 * from the source and sent with one COPY; ids kept; the id sequences set past the copied
 * maxima; then the verification (row counts table by table, and each group's totals); the
 * transaction commits only when everything matches.  A failure or a mismatch rolls it back:
 * the target is left with the schema and no rows.
 *
 * Memory is bounded by one batch's COPY buffer (STORE_COPY_CHUNK_BYTES, flushed as it fills;
 * one row may pass it) and the key of the last row read, whatever the database's size. */
#ifndef ERRQ_STORE_COPY_H
#define ERRQ_STORE_COPY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_COPY_BATCH_ROWS 2000           /* rows one read transaction of the source gives (default) */
#define STORE_COPY_BATCH_ROWS_MAX 100000     /* ... at most (store_copy_opts.batch_rows) */
#define STORE_COPY_PROGRESS_ROWS 100000      /* a progress line every this many rows of a table */
#define STORE_COPY_CHUNK_BYTES (256u << 10)  /* COPY data buffered before it is sent */
#define STORE_COPY_STMT_TIMEOUT_S 600        /* statement_timeout of the copy's statements */
#define STORE_COPY_PARTITION_DAYS_MAX 400    /* day partitions made back from today, at most */
#define STORE_COPY_SOURCE_CACHE_MIB 8        /* the source's SQLite page cache */
#define STORE_COPY_SOURCE_BUSY_MS 2000       /* a read waits this long for a lock on the source */
#define STORE_COPY_TABLES 14                 /* tables copied (pg_copy.c's table list) */
#define STORE_COPY_DIFFER_MAX 10             /* differences described in the report */
#define STORE_COPY_DIFFER_LEN 200

/* What store_copy returns: errqd's exit code is derived from it. */
enum store_copy_rc {
	STORE_COPY_OK = 0,
	STORE_COPY_ERR_ARGS,   /* --from is not a SQLite database, --to not a PostgreSQL one, ... */
	STORE_COPY_ERR_SOURCE, /* the source is missing, locked by a running errqd, unreadable */
	STORE_COPY_ERR_TARGET, /* the target cannot be reached, is not empty, refused a write */
	STORE_COPY_ERR_VERIFY, /* copied, but the counts differ: rolled back */
};

struct store_copy_opts {
	const char *from; /* a SQLite path or sqlite:// URL */
	const char *to;   /* a postgres:// URL */
	/* false: a target holding any row in the tables copied is refused; true: those tables
	 * are emptied first (TRUNCATE, in the copy's transaction) */
	bool replace;
	uint32_t batch_rows; /* rows a batch, 1..STORE_COPY_BATCH_ROWS_MAX; 0 = STORE_COPY_BATCH_ROWS */
	/* progress lines (no newline; the target's URL never in them), or NULL */
	void (*progress)(void *ctx, const char *line);
	void *ctx;
};

struct store_copy_count {
	const char *table;
	uint64_t source, target;
};

struct store_copy_report {
	struct store_copy_count tables[STORE_COPY_TABLES];
	int n_tables;
	uint64_t groups_checked; /* groups whose totals were compared */
	uint64_t groups_differ;
	char differ[STORE_COPY_DIFFER_MAX][STORE_COPY_DIFFER_LEN]; /* the first differences */
	int n_differ;
	uint64_t rows_copied;
};

/* Copies o->from into o->to, as above.  Returns enum store_copy_rc; on an error, the reason
 * in err (the target's URL redacted).  *r is filled as far as the copy went (the counts when
 * it verified, matching or not). */
int store_copy(const struct store_copy_opts *o, struct store_copy_report *r, char *err, size_t errsz);
#endif
