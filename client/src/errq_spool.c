/* errq_spool.c: the disk spool, where batches wait while the collector is unreachable and
 * after errq_client_close() gave up on them, until a client on the same directory delivers
 * them.
 *
 * Threading protocol: every function here runs on the sender thread (the whole picture is
 * at the top of errq_client.c).  c->snd.spool is the sender's own; the counters it
 * publishes in c->st are updated under c->mu, briefly, never across I/O.  So no disk I/O
 * ever happens on an application thread; only errq_report() at the queue's limit waits for
 * a write of this thread's (a spill, errq_client.c), and publish() tells it whether the
 * spool can take one (spill_room: usable, not full, not paused after a write error).
 *
 * Directory: one client per directory at a time, enforced with flock(LOCK_EX | LOCK_NB) on
 * ERRQ__SPOOL_LOCK_NAME (a second client finds it locked and runs without a spool, counted
 * in stats.spool_errors).  Files are named by a 64-bit number in 16 lowercase hex digits
 * with ERRQ__SPOOL_SUFFIX, increasing with age across processes (a new client continues
 * above the highest number it finds), so "oldest first" is name order.
 *
 * File format, version 1 (integers little-endian):
 *    0  4  magic "EQSB"
 *    4  2  version (1)
 *    6  2  header length (32)
 *    8  4  payload length
 *   12  4  CRC-32 (IEEE 802.3, as zlib) of the payload
 *   16  4  failures in the payload
 *   20  4  outcome records in the payload
 *   24  4  reserved, 0
 *   28  4  CRC-32 of bytes 0..27
 *   32     payload: one ReportRequest without its seq (failures, outcomes, batch_id), as
 *          it goes on the wire after a seq field; the batch_id stays the same across
 *          resends, processes and restarts, so the collector counts the outcomes once
 *          (and dedupes the failures by event_id).
 *
 * Crash semantics.  A file is written under a temporary name (NUMBER.tmp), fsync()ed,
 * renamed to its final name, and the directory fsync()ed: a file with a final name is
 * complete.  A crash (of the host process, or of the machine) while writing leaves at most
 * one .tmp file, which the next start deletes and counts in stats.spool_corrupt: the batch
 * being written is lost, and only it.  A file whose header or payload fails its checksum
 * (a disk that lied, someone editing the directory) is deleted and counted the same way
 * when it is found (at start, or when it is read).  A file is deleted after the collector
 * answered its batch; a crash between the answer and the delete sends it again at the
 * next start: the collector dedupes failures by event_id and outcomes by batch_id.  A
 * file of a newer format version is left alone (a downgrade does not destroy data).  The
 * spool is not a write-ahead log: events still in memory when the host process crashes
 * are lost, like the queue.
 */
#include "client_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define NAME_HEX 16
#define NAME_BUFSZ 40

#define DLOG(c, msg, ...)                                                                    \
	do {                                                                                 \
		if ((c)->cfg.debug)                                                          \
			errq_logkv(ERRQ_LOG_WARN, (msg), "spool", (c)->cfg.spool_dir,        \
				   __VA_ARGS__, (const char *)NULL);                         \
	} while (0)

uint32_t errq__crc32(uint32_t crc, const void *p, size_t n)
{
	/* the reflected polynomial 0xEDB88320, four bits at a time: 64 bytes of table, and the
	 * disk is slower than this anyway */
	static const uint32_t t[16] = {
	    0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
	    0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
	    0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
	const uint8_t *b = p;
	crc = ~crc;
	while (n--) {
		crc ^= *b++;
		crc = (crc >> 4) ^ t[crc & 15];
		crc = (crc >> 4) ^ t[crc & 15];
	}
	return ~crc;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct hdr {
	uint32_t len, crc, n_events, n_outcomes;
};

enum { HDR_OK = 0, HDR_CORRUPT = -1, HDR_NEWER = 1 };

static void hdr_encode(uint8_t h[ERRQ__SPOOL_HDR_LEN], const struct hdr *x)
{
	memset(h, 0, ERRQ__SPOOL_HDR_LEN);
	memcpy(h, ERRQ__SPOOL_MAGIC, 4);
	put16(h + 4, ERRQ__SPOOL_VERSION);
	put16(h + 6, ERRQ__SPOOL_HDR_LEN);
	put32(h + 8, x->len);
	put32(h + 12, x->crc);
	put32(h + 16, x->n_events);
	put32(h + 20, x->n_outcomes);
	put32(h + 28, errq__crc32(0, h, 28));
}

static int hdr_decode(const uint8_t h[ERRQ__SPOOL_HDR_LEN], uint64_t file_size, struct hdr *x)
{
	if (memcmp(h, ERRQ__SPOOL_MAGIC, 4) != 0 || errq__crc32(0, h, 28) != get32(h + 28))
		return HDR_CORRUPT;
	if (get16(h + 4) != ERRQ__SPOOL_VERSION || get16(h + 6) != ERRQ__SPOOL_HDR_LEN)
		return get16(h + 4) > ERRQ__SPOOL_VERSION ? HDR_NEWER : HDR_CORRUPT;
	x->len = get32(h + 8);
	x->crc = get32(h + 12);
	x->n_events = get32(h + 16);
	x->n_outcomes = get32(h + 20);
	if (x->len > ERRQ__WIRE_MAX_MESSAGE || file_size != ERRQ__SPOOL_HDR_LEN + (uint64_t)x->len)
		return HDR_CORRUPT; /* torn, or grown: either way not what was written */
	return HDR_OK;
}

static void file_name(char out[NAME_BUFSZ], uint64_t no, const char *suffix)
{
	errq_snprintf(out, NAME_BUFSZ, "%016" PRIx64 "%s", no, suffix);
}

/* Parses NNNNNNNNNNNNNNNN<suffix>.  Returns 0 and *no, or -1. */
static int parse_name(const char *name, const char *suffix, uint64_t *no)
{
	size_t sl = strlen(suffix);
	if (strlen(name) != NAME_HEX + sl || strcmp(name + NAME_HEX, suffix) != 0)
		return -1;
	uint64_t v = 0;
	for (int i = 0; i < NAME_HEX; i++) {
		char ch = name[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*no = v;
	return 0;
}

/* Publishes the index's size in the stats and whether a spill can be taken, and wakes the
 * threads that wait on either (close draining the spool, reports waiting for a spill). */
static void publish(errq_client_t *c)
{
	const struct errq_spool *sp = &c->snd.spool;
	pthread_mutex_lock(&c->mu);
	c->st.spool_files = sp->n;
	c->st.spool_bytes = sp->bytes;
	c->spill_room = errq__spool_usable(sp) && !sp->full && !sp->retrying;
	if (c->flush_waiters || c->spill_waiters)
		pthread_cond_broadcast(&c->done_cv);
	pthread_mutex_unlock(&c->mu);
}

static void count_error(errq_client_t *c)
{
	pthread_mutex_lock(&c->mu);
	c->st.spool_errors++;
	pthread_mutex_unlock(&c->mu);
}

static void count_corrupt(errq_client_t *c, const char *name, const char *why)
{
	pthread_mutex_lock(&c->mu);
	c->st.spool_corrupt++;
	pthread_mutex_unlock(&c->mu);
	DLOG(c, "errq: corrupt spool file deleted", "file", name, "reason", why);
}

static struct errq_spool_entry *ent_at(struct errq_spool *sp, size_t i)
{
	return &sp->ents[sp->head + i];
}

/* Appends an entry (numbers only grow).  Returns 0 or -1 (no memory). */
static int index_push(struct errq_spool *sp, uint64_t no, uint32_t bytes, uint32_t n_events)
{
	if (sp->head && sp->head + sp->n == sp->cap) { /* reuse the room freed at the front */
		memmove(sp->ents, sp->ents + sp->head, sp->n * sizeof(*sp->ents));
		sp->head = 0;
	}
	if (sp->n == sp->cap) {
		size_t ncap = sp->cap ? sp->cap * 2 : 64;
		if (ncap > ERRQ__SPOOL_MAX_FILES)
			ncap = ERRQ__SPOOL_MAX_FILES;
		if (ncap <= sp->cap)
			return -1;
		void *p = realloc(sp->ents, ncap * sizeof(*sp->ents));
		if (!p)
			return -1;
		sp->ents = p;
		sp->cap = ncap;
	}
	*ent_at(sp, sp->n) = (struct errq_spool_entry){.no = no, .bytes = bytes, .n_events = n_events};
	sp->n++;
	sp->bytes += bytes;
	return 0;
}

/* Index (relative to head) of file no, or -1. */
static long index_find(const struct errq_spool *sp, uint64_t no)
{
	size_t lo = 0, hi = sp->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = sp->ents[sp->head + mid].no;
		if (v == no)
			return (long)mid;
		if (v < no)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void index_remove_at(struct errq_spool *sp, size_t i)
{
	sp->full = false; /* room again: the next spill may fit */
	sp->bytes -= ent_at(sp, i)->bytes;
	if (ent_at(sp, i)->loaded)
		sp->loaded--;
	if (i == 0) {
		sp->head++;
	} else {
		memmove(ent_at(sp, i), ent_at(sp, i + 1), (sp->n - i - 1) * sizeof(*sp->ents));
	}
	sp->n--;
	if (!sp->n)
		sp->head = 0;
}

/* Deletes the file of entry i and forgets it. */
static void delete_at(errq_client_t *c, size_t i)
{
	struct errq_spool *sp = &c->snd.spool;
	char name[NAME_BUFSZ];
	file_name(name, ent_at(sp, i)->no, ERRQ__SPOOL_SUFFIX);
	if (unlinkat(sp->dirfd, name, 0) != 0 && errno != ENOENT)
		count_error(c);
	index_remove_at(sp, i);
}

/* Deletes the oldest file to make room, counting its events as lost. */
static void evict_oldest(errq_client_t *c)
{
	struct errq_spool *sp = &c->snd.spool;
	uint32_t n_events = ent_at(sp, 0)->n_events;
	delete_at(c, 0);
	pthread_mutex_lock(&c->mu);
	c->st.dropped_spool += n_events;
	pthread_mutex_unlock(&c->mu);
}

static int cmp_ent(const void *a, const void *b)
{
	uint64_t x = ((const struct errq_spool_entry *)a)->no, y = ((const struct errq_spool_entry *)b)->no;
	return x < y ? -1 : x > y;
}

/* Reads exactly n bytes at the current offset.  Returns 0 or -1. */
static int read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Looks at one directory entry during the scan. */
static void scan_one(errq_client_t *c, const char *name)
{
	struct errq_spool *sp = &c->snd.spool;
	uint64_t no;
	struct stat sb;
	uint8_t h[ERRQ__SPOOL_HDR_LEN];
	struct hdr x;

	if (parse_name(name, ERRQ__SPOOL_TMP_SUFFIX, &no) == 0) {
		/* a write that a crash interrupted: its batch is lost */
		if (no >= sp->next_no)
			sp->next_no = no + 1;
		unlinkat(sp->dirfd, name, 0);
		count_corrupt(c, name, "incomplete write");
		return;
	}
	if (parse_name(name, ERRQ__SPOOL_SUFFIX, &no) != 0)
		return; /* not ours */
	if (no >= sp->next_no)
		sp->next_no = no + 1;
	int fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	int rc = fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ? HDR_CORRUPT
		 : (uint64_t)sb.st_size < ERRQ__SPOOL_HDR_LEN || read_full(fd, h, sizeof(h))
		     ? HDR_CORRUPT
		     : hdr_decode(h, (uint64_t)sb.st_size, &x);
	close(fd);
	if (rc == HDR_NEWER) {
		DLOG(c, "errq: spool file of a newer format left alone", "file", name);
		return;
	}
	if (rc != HDR_OK) {
		unlinkat(sp->dirfd, name, 0);
		count_corrupt(c, name, "bad header");
		return;
	}
	if (sp->n >= sp->cap) { /* the scan may find more than the limit: sorted and cut below */
		size_t ncap = sp->cap ? sp->cap * 2 : 64;
		void *p = realloc(sp->ents, ncap * sizeof(*sp->ents));
		if (!p)
			return; /* left on disk, out of the index: found again next start */
		sp->ents = p;
		sp->cap = ncap;
	}
	sp->ents[sp->n++] = (struct errq_spool_entry){
	    .no = no, .bytes = (uint32_t)sb.st_size, .n_events = x.n_events};
	sp->bytes += (uint64_t)sb.st_size;
}

/* strerror() is not thread-safe; this is the GNU strerror_r (_GNU_SOURCE). */
static const char *errstr(int e, char *buf, size_t n)
{
	return strerror_r(e, buf, n);
}

static void disable(errq_client_t *c, const char *why)
{
	char err[128];
	const char *es = errstr(errno, err, sizeof(err));
	count_error(c);
	DLOG(c, "errq: spool disabled", "reason", why, "error", es);
	errq__spool_close(c);
}

static void spool_open_dir(errq_client_t *c);

void errq__spool_open(errq_client_t *c)
{
	spool_open_dir(c);
	publish(c);
	pthread_mutex_lock(&c->mu);
	c->spool_scanned = true; /* close may now tell a drained spool from an unread one */
	if (c->flush_waiters || c->spill_waiters)
		pthread_cond_broadcast(&c->done_cv);
	pthread_mutex_unlock(&c->mu);
}

static void spool_open_dir(errq_client_t *c)
{
	struct errq_spool *sp = &c->snd.spool;
	DIR *d = NULL;
	int fd;

	sp->opened = true;
	sp->next_no = 1;
	if (!c->cfg.spool_dir)
		return;
	if (mkdir(c->cfg.spool_dir, 0700) != 0 && errno != EEXIST) {
		disable(c, "cannot create the directory");
		return;
	}
	sp->dirfd = open(c->cfg.spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0) {
		disable(c, "cannot open the directory");
		return;
	}
	sp->lockfd = openat(sp->dirfd, ERRQ__SPOOL_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->lockfd < 0) {
		disable(c, "cannot create the lock file");
		return;
	}
	if (flock(sp->lockfd, LOCK_EX | LOCK_NB) != 0) {
		disable(c, "the directory is in use by another client");
		return;
	}
	pthread_mutex_lock(&c->mu);
	c->spool_lockfd = sp->lockfd; /* a forked child closes its copy (errq_client.c) */
	pthread_mutex_unlock(&c->mu);

	fd = dup(sp->dirfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		disable(c, "cannot read the directory");
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		scan_one(c, de->d_name);
	closedir(d);
	if (sp->n)
		qsort(sp->ents, sp->n, sizeof(*sp->ents), cmp_ent);
	/* the limits may be smaller than the last client's */
	while (sp->n && (sp->n > ERRQ__SPOOL_MAX_FILES || sp->bytes > c->cfg.spool_max_bytes))
		evict_oldest(c);
}

void errq__spool_close(errq_client_t *c)
{
	struct errq_spool *sp = &c->snd.spool;
	if (sp->lockfd >= 0) {
		pthread_mutex_lock(&c->mu);
		c->spool_lockfd = -1;
		pthread_mutex_unlock(&c->mu);
		close(sp->lockfd); /* releases the flock */
	}
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	sp->lockfd = sp->dirfd = -1;
	free(sp->ents);
	sp->ents = NULL;
	sp->head = sp->n = sp->cap = sp->loaded = 0;
	sp->bytes = 0;
	pthread_mutex_lock(&c->mu);
	c->spill_room = false; /* no report waits for a spool that is gone */
	if (c->spill_waiters)
		pthread_cond_broadcast(&c->done_cv);
	pthread_mutex_unlock(&c->mu);
}

/* Writes all of iov to fd.  Returns 0 or -1. */
static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int errq__spool_write(errq_client_t *c, const struct errq_batch *b, bool evict)
{
	struct errq_spool *sp = &c->snd.spool;
	char tmp[NAME_BUFSZ], fin[NAME_BUFSZ];
	uint8_t h[ERRQ__SPOOL_HDR_LEN];
	size_t len = GRPC_SLICE_LENGTH(b->body);
	uint64_t fsize = ERRQ__SPOOL_HDR_LEN + (uint64_t)len;
	int fd = -1;

	if (!errq__spool_usable(sp))
		return ERRQ__SPOOL_FAILED;
	if (fsize > c->cfg.spool_max_bytes || len > ERRQ__WIRE_MAX_MESSAGE)
		return ERRQ__SPOOL_NEVER_FITS;
	bool no_room = sp->n >= ERRQ__SPOOL_MAX_FILES || sp->bytes + fsize > c->cfg.spool_max_bytes;
	if (no_room && !evict) {
		/* a spill makes room in memory for new reports: it must not destroy older ones
		 * for them (the reports are refused instead, like at the queue's own limit) */
		sp->full = true;
		publish(c);
		return ERRQ__SPOOL_NO_ROOM;
	}
	while (sp->n && (sp->n >= ERRQ__SPOOL_MAX_FILES || sp->bytes + fsize > c->cfg.spool_max_bytes))
		evict_oldest(c);

	uint64_t no = sp->next_no++;
	file_name(tmp, no, ERRQ__SPOOL_TMP_SUFFIX);
	file_name(fin, no, ERRQ__SPOOL_SUFFIX);
	struct hdr x = {.len = (uint32_t)len,
			.crc = errq__crc32(0, GRPC_SLICE_START_PTR(b->body), len),
			.n_events = (uint32_t)b->n_events,
			.n_outcomes = (uint32_t)b->n_outcomes};
	hdr_encode(h, &x);
	struct iovec iov[2] = {{h, sizeof(h)}, {(void *)GRPC_SLICE_START_PTR(b->body), len}};
	fd = openat(sp->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, iov, 2) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(sp->dirfd, tmp, sp->dirfd, fin) != 0)
		goto fail;
	fsync(sp->dirfd); /* the name is durable too; a failure here only risks this one file */
	if (index_push(sp, no, (uint32_t)fsize, x.n_events) != 0) {
		/* on disk but not indexed: found again by the next start; from this client's
		 * point of view it is not spooled (the caller keeps the batch) */
		unlinkat(sp->dirfd, fin, 0);
		goto fail_quiet;
	}
	publish(c);
	return ERRQ__SPOOL_WRITTEN;

fail:;
	char err[128];
	const char *es = errstr(errno, err, sizeof(err));
	DLOG(c, "errq: cannot write a spool file", "file", tmp, "error", es);
fail_quiet:
	if (fd >= 0)
		close(fd);
	unlinkat(sp->dirfd, tmp, 0);
	count_error(c);
	sp->retry_ns = errq_mono_ns() + (uint64_t)ERRQ__SPOOL_RETRY_MS * ERRQ_NS_PER_MS;
	sp->retrying = true;
	publish(c); /* no report waits for a spill meanwhile */
	return ERRQ__SPOOL_FAILED;
}

void errq__spool_tick(errq_client_t *c, uint64_t now)
{
	struct errq_spool *sp = &c->snd.spool;
	if (sp->retrying && now >= sp->retry_ns) {
		sp->retrying = false;
		publish(c);
	}
}

enum { READ_OK, READ_CORRUPT, READ_GONE, READ_LATER };

/* Reads entry i's file into *out (a new batch).  READ_CORRUPT sets *why. */
static int read_file(errq_client_t *c, size_t i, struct errq_batch **out, const char **why)
{
	struct errq_spool *sp = &c->snd.spool;
	struct errq_spool_entry *e = ent_at(sp, i);
	char name[NAME_BUFSZ];
	uint8_t h[ERRQ__SPOOL_HDR_LEN];
	struct stat sb;
	struct hdr x;
	uint8_t *buf = NULL;
	struct errq_batch *b = NULL;
	int rc = READ_LATER;

	file_name(name, e->no, ERRQ__SPOOL_SUFFIX);
	int fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? READ_GONE : READ_LATER;
	if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size < ERRQ__SPOOL_HDR_LEN ||
	    read_full(fd, h, sizeof(h)) || hdr_decode(h, (uint64_t)sb.st_size, &x) != HDR_OK) {
		rc = READ_CORRUPT;
		*why = "bad header";
		goto out;
	}
	buf = malloc(x.len ? x.len : 1);
	b = calloc(1, sizeof(*b));
	if (!buf || !b)
		goto out;
	if (read_full(fd, buf, x.len) || errq__crc32(0, buf, x.len) != x.crc) {
		rc = READ_CORRUPT;
		*why = "checksum mismatch";
		goto out;
	}
	b->body = grpc_slice_new(buf, x.len, free);
	buf = NULL;
	b->n_events = x.n_events;
	b->n_outcomes = x.n_outcomes;
	b->spool_no = e->no;
	*out = b;
	b = NULL;
	rc = READ_OK;
out:
	close(fd);
	free(buf);
	free(b);
	return rc;
}

struct errq_batch *errq__spool_load_next(errq_client_t *c, size_t max_bytes)
{
	struct errq_spool *sp = &c->snd.spool;
	if (!errq__spool_usable(sp))
		return NULL;
	for (size_t i = 0; i < sp->n;) {
		struct errq_spool_entry *e = ent_at(sp, i);
		struct errq_batch *b = NULL;
		const char *why = NULL;
		char name[NAME_BUFSZ];
		if (e->loaded) {
			i++;
			continue;
		}
		if (e->bytes > max_bytes)
			return NULL; /* oldest first: wait for room */
		switch (read_file(c, i, &b, &why)) {
		case READ_OK:
			e->loaded = true;
			sp->loaded++;
			return b;
		case READ_GONE: /* deleted behind our back */
			index_remove_at(sp, i);
			publish(c);
			break;
		case READ_CORRUPT:
			file_name(name, e->no, ERRQ__SPOOL_SUFFIX);
			delete_at(c, i);
			publish(c);
			count_corrupt(c, name, why);
			break;
		default:
			return NULL; /* no memory, or cannot open it now: try again later */
		}
	}
	return NULL;
}

void errq__spool_remove(errq_client_t *c, uint64_t no)
{
	struct errq_spool *sp = &c->snd.spool;
	long i = index_find(sp, no);
	if (i < 0 || !errq__spool_usable(sp))
		return;
	delete_at(c, (size_t)i);
	publish(c);
}

void errq__spool_unload(errq_client_t *c, uint64_t no)
{
	struct errq_spool *sp = &c->snd.spool;
	long i = index_find(sp, no);
	if (i >= 0 && ent_at(sp, (size_t)i)->loaded) {
		ent_at(sp, (size_t)i)->loaded = false;
		sp->loaded--;
	}
}

bool errq__spool_has_unloaded(const errq_client_t *c)
{
	const struct errq_spool *sp = &c->snd.spool;
	return errq__spool_usable(sp) && sp->n > sp->loaded;
}
