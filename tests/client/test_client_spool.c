/* Unit: liberrq's disk spool, against the in-process fake collector: a close with the
 * collector down writes the batches (and the last outcome counts) to disk and the next
 * client on the directory delivers them and deletes the files; while the circuit is open
 * batches go to disk and leave memory; torn, corrupt and leftover files are detected,
 * counted and deleted, a file of a newer format is left alone; the spool's byte budget
 * drops the oldest files (counted); a second client on a locked directory runs without a
 * spool; the spool module alone: index, eviction, read-back, write errors; and the promises
 * of docs/client.md: a half-full queue spills to disk, another process's spool (this binary
 * run again as a child) is delivered first, a crash between an answer and the deletion of
 * its file resends it harmlessly. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "client_int.h"
#include "errq_str.h"
#include "errq_time.h"
#include "fake_collector.h"
#include "client_support.h"
#include "errq_banned.h"

#define GENEROUS_MS 30000



/* A port where nothing listens (for now): bind a fake, note its port, stop it. */
static int free_port(char addr[64])
{
	struct fake_collector probe = {0};
	assert_int_equal(fake_start(&probe, 0), 0);
	int port = probe.port;
	memcpy(addr, probe.addr, 64);
	fake_stop(&probe);
	return port;
}

static void temp_dir(char *out, size_t n)
{
	errq_snprintf(out, n, "/tmp/errq-spool-XXXXXX");
	assert_non_null(mkdtemp(out));
}

static void rm_rf(const char *dir)
{
	char cmd[512];
	errq_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir ending in suffix, sorted (at most max; the caller frees each). */
static int list_files(const char *dir, const char *suffix, char **names, int max)
{
	DIR *d = opendir(dir);
	int n = 0;
	assert_non_null(d);
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d)) && n < max) {
		size_t l = strlen(de->d_name);
		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(*names), cmp_str);
	return n;
}

static int count_files(const char *dir, const char *suffix)
{
	char *names[1024];
	int n = list_files(dir, suffix, names, 1024);
	for (int i = 0; i < n; i++)
		free(names[i]);
	return n;
}

static errq_options_t *spool_options(const char *addr, const char *dir, const char *service)
{
	errq_options_t *o = errq_options_new();
	assert_int_equal(errq_options_set_collector(o, addr), ERRQ_OK);
	assert_int_equal(errq_options_set_service(o, service), ERRQ_OK);
	assert_int_equal(errq_options_set_spool_dir(o, dir), ERRQ_OK);
	assert_int_equal(errq_options_set_linger_ms(o, 1), ERRQ_OK);
	assert_int_equal(errq_options_set_reconnect_backoff(o, 5, 100), ERRQ_OK);
	return o;
}

static void report_n(errq_client_t *c, int first, int n)
{
	for (int i = first; i < first + n; i++)
		assert_int_equal(errq_report_failure(c, "SpoolError", "SPOOL", "m%d", i), ERRQ_OK);
}

/* Every message "m<k>" the fake stored, counted by k (< max). */
static void messages_seen(struct fake_collector *f, int *seen, int max)
{
	memset(seen, 0, sizeof(int) * (size_t)max);
	pthread_mutex_lock(&f->mu);
	for (size_t r = 0; r < f->n_requests; r++)
		for (size_t i = 0; i < f->requests[r]->n_failures; i++) {
			Errq__V1__TaskFailure *t = f->requests[r]->failures[i];
			if (!fake_has_id(f, t->event_id.data))
				continue;
			int k = atoi(t->message + 1);
			assert_true(k >= 0 && k < max);
			seen[k]++;
		}
	pthread_mutex_unlock(&f->mu);
}

/* Close with the collector down: everything goes to the spool (nothing lost); the next
 * client on the directory sends it first, and the files go once answered. */
static void test_close_spools_next_start_delivers(void **state)
{
	char addr[64], dir[64];
	int port = free_port(addr);
	temp_dir(dir, sizeof(dir));

	errq_options_t *o = spool_options(addr, dir, "spool-close");
	errq_options_set_max_batch_events(o, 7);
	errq_client_t *c = errq_client_new(o);
	report_n(c, 0, 50);
	for (int i = 0; i < 6; i++)
		assert_int_equal(errq_record_outcome(c, "job", i != 0), ERRQ_OK);
	errq_stats_t st;
	assert_int_equal(errq_client_close_stats(c, 200, &st), 0); /* nothing lost */
	assert_int_equal(st.spooled, 50);
	assert_int_equal(st.dropped_closed, 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.acked, 0);
	assert_int_equal(st.outcomes_dropped, 0);
	assert_true(st.spool_files >= 2); /* the events, and the outcomes */
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), (int)st.spool_files);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_TMP_SUFFIX), 0);

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	c = errq_client_new(spool_options(addr, dir, "spool-close-2"));
	WAIT_STATS(c, st, st.spool_replayed == 50 && st.spool_files == 0);
	assert_int_equal(st.spool_corrupt, 0);
	assert_int_equal(st.accepted, 50);
	assert_int_equal(st.acked, 0);     /* none of them were this client's reports */
	assert_int_equal(st.queued, 0);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), 0);
	int seen[50];
	messages_seen(&f, seen, 50);
	for (int k = 0; k < 50; k++)
		assert_int_equal(seen[k], 1);
	pthread_mutex_lock(&f.mu);
	uint64_t ok = 0, failed = 0;
	for (size_t r = 0; r < f.n_requests; r++)
		for (size_t i = 0; i < f.requests[r]->n_outcomes; i++) {
			assert_string_equal(f.requests[r]->outcomes[i]->service, "spool-close");
			ok += f.requests[r]->outcomes[i]->ok;
			failed += f.requests[r]->outcomes[i]->failed;
		}
	pthread_mutex_unlock(&f.mu);
	assert_int_equal(ok, 5);
	assert_int_equal(failed, 1);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
	rm_rf(dir);
}

/* The circuit opens: what the client holds goes to disk and leaves memory (flush returns),
 * reports keep being spooled; when the collector appears the spool drains into it. */
static void test_spool_while_circuit_open(void **state)
{
	char addr[64], dir[64];
	int port = free_port(addr);
	temp_dir(dir, sizeof(dir));

	errq_options_t *o = spool_options(addr, dir, "spool-open");
	errq_options_set_circuit_threshold(o, 2);
	errq_options_set_max_batch_events(o, 10);
	errq_client_t *c = errq_client_new(o);
	report_n(c, 0, 30);
	errq_stats_t st;
	WAIT_STATS(c, st, st.spooled == 30);
	assert_true(st.circuit_opens >= 1);
	assert_int_equal(st.pending, 0); /* on disk, not in memory */
	assert_int_equal(st.pending_bytes, 0);
	report_n(c, 30, 20);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK); /* spooled counts */
	st = stats_of(c);
	assert_true(st.spooled == 50 || st.acked > 0); /* a half-open probe may have run */
	assert_true(st.spool_files >= 1);

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	WAIT_STATS(c, st, st.spool_files == 0 && st.spool_replayed + st.acked == 50);
	assert_int_equal(st.circuit_state, ERRQ_CIRCUIT_CLOSED);
	assert_int_equal(st.spool_replayed, st.spooled);
	assert_int_equal(st.queued, st.acked + st.spooled);
	int seen[50];
	messages_seen(&f, seen, 50);
	for (int k = 0; k < 50; k++)
		assert_int_equal(seen[k], 1); /* exactly once */
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), 0);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
	rm_rf(dir);
}

static void corrupt_byte(const char *dir, const char *name, off_t off)
{
	char path[256];
	errq_snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x5A;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void truncate_file(const char *dir, const char *name, off_t len)
{
	char path[256];
	errq_snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(truncate(path, len), 0);
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[256];
	errq_snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* Torn and corrupt files are found by their checksums, counted and deleted; the good ones
 * are delivered; other files are not touched; a newer format is left alone. */
static void test_spool_corruption(void **state)
{
	char addr[64], dir[64];
	int port = free_port(addr);
	temp_dir(dir, sizeof(dir));

	errq_client_t *c;
	for (int i = 0; i < 5; i++) { /* five files of five: each close writes one */
		errq_options_t *o = spool_options(addr, dir, "spool-corrupt");
		errq_options_set_max_batch_events(o, 5);
		/* full batches only: with the 1 ms linger a report loop slowed past it (ASan beside
		 * other load) split a client's five events into two files (6 != 5) */
		assert_int_equal(errq_options_set_linger_ms(o, ERRQ__LINGER_MS_MAX), ERRQ_OK);
		c = errq_client_new(o);
		report_n(c, 5 * i, 5);
		assert_int_equal(errq_client_close(c, 0), 0);
	}
	char *names[16];
	int n = list_files(dir, ERRQ__SPOOL_SUFFIX, names, 16);
	assert_int_equal(n, 5);

	corrupt_byte(dir, names[1], ERRQ__SPOOL_HDR_LEN + 20);     /* payload: checksum */
	truncate_file(dir, names[2], ERRQ__SPOOL_HDR_LEN + 10);    /* torn write */
	corrupt_byte(dir, names[3], 9);                            /* header: length */
	write_file(dir, "00000000000000ff.tmp", "partial", 7);     /* a crash while writing */
	write_file(dir, "notes.txt", "keep me", 7);                /* not ours */
	/* a newer format: left alone, not counted, not sent */
	uint8_t h[ERRQ__SPOOL_HDR_LEN] = {'E', 'Q', 'S', 'B', 2, 0, 32, 0};
	uint32_t crc = errq__crc32(0, h, 28);
	memcpy(h + 28, &crc, 4); /* little-endian machine */
	write_file(dir, "00000000000000f0.batch", h, sizeof(h));
	int seen[25];

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	c = errq_client_new(spool_options(addr, dir, "spool-corrupt-2"));
	errq_stats_t st;
	WAIT_STATS(c, st, st.spool_files == 0 && st.spool_replayed == 10);
	assert_int_equal(st.spool_corrupt, 4); /* payload, torn, header, .tmp */
	messages_seen(&f, seen, 25);
	for (int k = 0; k < 25; k++) /* the first and the last file's events */
		assert_int_equal(seen[k], k < 5 || k >= 20 ? 1 : 0);
	assert_int_equal(count_files(dir, ".txt"), 1);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_TMP_SUFFIX), 0);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), 1); /* the newer one */
	for (int i = 0; i < n; i++)
		free(names[i]);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
	rm_rf(dir);
}

/* The spool holds at most spool_max_bytes: the oldest files go first, their events counted
 * in dropped_spool; the newest are delivered. */
static void test_spool_is_bounded(void **state)
{
	enum { N = 40 };
	char addr[64], dir[64];
	int port = free_port(addr);
	temp_dir(dir, sizeof(dir));

	errq_options_t *o = spool_options(addr, dir, "spool-bounded");
	errq_options_set_max_batch_events(o, 1);
	errq_options_set_circuit_threshold(o, 1);
	assert_int_equal(errq_options_set_spool_max_bytes(o, ERRQ__SPOOL_BYTES_MIN), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	char *big = malloc(4001);
	memset(big, 'x', 4000);
	big[4000] = '\0';
	for (int i = 0; i < N; i++) /* about 4 KiB each: 160 KiB for a 64 KiB spool */
		assert_int_equal(errq_report_failure(c, "BigError", NULL, "m%d %s", i, big), ERRQ_OK);
	free(big);
	errq_stats_t st;
	WAIT_STATS(c, st, st.spooled == N);
	assert_true(st.dropped_spool >= N - 16); /* at most 16 events fit */
	assert_true(st.spool_bytes <= ERRQ__SPOOL_BYTES_MIN);
	assert_true(st.spool_files >= 2);

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	uint64_t kept = N - st.dropped_spool;
	WAIT_STATS(c, st, st.spool_files == 0);
	assert_int_equal(st.spool_replayed, kept);
	assert_int_equal(st.spool_replayed + st.dropped_spool, N);
	int seen[N];
	messages_seen(&f, seen, N);
	for (int k = 0; k < N; k++) /* the oldest were dropped, the newest delivered */
		assert_int_equal(seen[k], k >= N - (int)kept ? 1 : 0);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
	rm_rf(dir);
}

/* One client per spool directory: the second one runs without a spool (counted) and still
 * delivers; the lock goes with the first client's close. */
static void test_spool_dir_is_locked(void **state)
{
	char dir[64];
	temp_dir(dir, sizeof(dir));
	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, 0), 0);
	errq_client_t *a = errq_client_new(spool_options(f.addr, dir, "lock-a"));
	errq_stats_t st;
	report_n(a, 0, 1);
	assert_int_equal(errq_client_flush(a, GENEROUS_MS), ERRQ_OK); /* a's sender is running */
	assert_int_equal(stats_of(a).spool_errors, 0);
	errq_client_t *b = errq_client_new(spool_options(f.addr, dir, "lock-b"));
	WAIT_STATS(b, st, st.spool_errors >= 1);
	report_n(b, 1, 3);
	assert_int_equal(errq_client_flush(b, GENEROUS_MS), ERRQ_OK);
	assert_int_equal(stats_of(b).acked, 3);
	assert_int_equal(errq_client_close(b, GENEROUS_MS), 0);
	assert_int_equal(errq_client_close(a, GENEROUS_MS), 0);
	errq_client_t *c = errq_client_new(spool_options(f.addr, dir, "lock-c"));
	report_n(c, 4, 1);
	assert_int_equal(errq_client_flush(c, GENEROUS_MS), ERRQ_OK);
	assert_int_equal(stats_of(c).spool_errors, 0); /* the lock was released */
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
	rm_rf(dir);

	/* a spool directory that cannot be made: no spool, counted, the client still works */
	errq_options_t *o = errq_options_new();
	errq_options_set_collector(o, "127.0.0.1:1");
	errq_options_set_service(o, "nospool");
	errq_options_set_spool_dir(o, "/nonexistent/errq/spool");
	c = errq_client_new(o);
	WAIT_STATS(c, st, st.spool_errors >= 1);
	report_n(c, 0, 2);
	assert_int_equal(errq_client_close(c, 0), 2); /* dropped: nowhere to spool */
}


/* ---- the spool module alone, on a bare client struct (no sender thread): write, index,
 * eviction, read back, remove, and a directory that disappears (write errors: the caller
 * keeps the batch, the error is counted, writes pause for ERRQ__SPOOL_RETRY_MS). */
static errq_client_t *bare_client(const char *dir, uint64_t max_bytes)
{
	errq_client_t *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	errq_options_t *o = errq_options_new();
	assert_int_equal(errq_options_set_spool_dir(o, dir), ERRQ_OK);
	assert_int_equal(errq_options_set_spool_max_bytes(o, max_bytes), ERRQ_OK);
	c->cfg = *o;
	free(o);
	c->spool_lockfd = -1;
	c->snd.spool.dirfd = c->snd.spool.lockfd = -1;
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

static void bare_free(errq_client_t *c)
{
	errq__spool_close(c);
	pthread_mutex_destroy(&c->mu);
	errq__options_release(&c->cfg);
	free(c);
}

static struct errq_batch *bare_batch(size_t len, uint8_t fill, size_t n_events)
{
	struct errq_batch *b = calloc(1, sizeof(*b));
	uint8_t *p = malloc(len);
	memset(p, fill, len);
	b->body = grpc_slice_new(p, len, free);
	b->n_events = n_events;
	return b;
}

static void test_spool_module(void **state)
{
	char dir[64];
	temp_dir(dir, sizeof(dir));
	errq_client_t *c = bare_client(dir, ERRQ__SPOOL_BYTES_MIN);
	errq__spool_open(c);
	assert_true(errq__spool_usable(&c->snd.spool));
	assert_false(errq__spool_has_unloaded(c));

	/* 10 KiB files: six fit in 64 KiB, the seventh and eighth evict the oldest */
	for (int i = 0; i < 8; i++) {
		struct errq_batch *b = bare_batch(10240, (uint8_t)i, 3);
		assert_int_equal(errq__spool_write(c, b, true), ERRQ__SPOOL_WRITTEN);
		errq__batch_free(b);
	}
	assert_int_equal(c->snd.spool.n, 6);
	assert_true(c->snd.spool.bytes <= ERRQ__SPOOL_BYTES_MIN);
	assert_int_equal(c->st.dropped_spool, 6); /* two files of three events */
	assert_int_equal(c->st.spool_files, 6);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), 6);
	struct errq_batch *big = bare_batch(ERRQ__SPOOL_BYTES_MIN, 0, 1);
	assert_int_equal(errq__spool_write(c, big, true), ERRQ__SPOOL_NEVER_FITS);
	errq__batch_free(big);
	/* a spill (no eviction) into the full spool: refused, nothing deleted, the spool says
	 * it takes no spill until a file goes */
	assert_true(c->spill_room);
	struct errq_batch *spill = bare_batch(10240, 9, 3);
	assert_int_equal(errq__spool_write(c, spill, false), ERRQ__SPOOL_NO_ROOM);
	assert_int_equal(c->snd.spool.n, 6);
	assert_int_equal(c->st.dropped_spool, 6);
	assert_false(c->spill_room);

	/* read back oldest first, each once, byte for byte */
	struct errq_batch *r[6];
	for (int i = 0; i < 6; i++) {
		r[i] = errq__spool_load_next(c, SIZE_MAX);
		assert_non_null(r[i]);
		assert_int_equal(GRPC_SLICE_LENGTH(r[i]->body), 10240);
		assert_int_equal(GRPC_SLICE_START_PTR(r[i]->body)[100], i + 2);
		assert_int_equal(r[i]->n_events, 3);
	}
	assert_null(errq__spool_load_next(c, SIZE_MAX));
	assert_false(errq__spool_has_unloaded(c));
	errq__spool_unload(c, r[5]->spool_no); /* dropped from memory: read again later */
	assert_true(errq__spool_has_unloaded(c));
	for (int i = 0; i < 5; i++) /* answered: deleted */
		errq__spool_remove(c, r[i]->spool_no);
	assert_int_equal(c->snd.spool.n, 1);
	assert_true(c->spill_room); /* room again */
	assert_int_equal(errq__spool_write(c, spill, false), ERRQ__SPOOL_WRITTEN);
	errq__batch_free(spill);
	assert_int_equal(c->snd.spool.n, 2);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), 2);
	errq__spool_remove(c, c->snd.spool.ents[c->snd.spool.head + 1].no);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), 1);
	struct errq_batch *again = errq__spool_load_next(c, 100); /* too big for the room */
	assert_null(again);
	again = errq__spool_load_next(c, SIZE_MAX);
	assert_non_null(again);
	assert_int_equal(again->spool_no, r[5]->spool_no);
	errq__batch_free(again);
	for (int i = 0; i < 6; i++)
		errq__batch_free(r[i]);

	/* the directory goes away under the client: writes fail, are counted, and pause */
	rm_rf(dir);
	struct errq_batch *b = bare_batch(100, 1, 1);
	uint64_t before = errq_mono_ns();
	assert_int_equal(errq__spool_write(c, b, true), ERRQ__SPOOL_FAILED);
	assert_int_equal(c->st.spool_errors, 1);
	assert_true(c->snd.spool.retry_ns >= before + (uint64_t)ERRQ__SPOOL_RETRY_MS * ERRQ_NS_PER_MS);
	assert_false(c->spill_room); /* paused: no report waits for a spill */
	errq__spool_tick(c, c->snd.spool.retry_ns);
	assert_true(c->spill_room);
	errq__batch_free(b);
	bare_free(c);

	/* a second client on a locked directory gets no spool */
	temp_dir(dir, sizeof(dir));
	errq_client_t *a = bare_client(dir, ERRQ__SPOOL_BYTES_MIN);
	errq_client_t *z = bare_client(dir, ERRQ__SPOOL_BYTES_MIN);
	errq__spool_open(a);
	errq__spool_open(z);
	assert_true(errq__spool_usable(&a->snd.spool));
	assert_false(errq__spool_usable(&z->snd.spool));
	assert_int_equal(z->st.spool_errors, 1);
	bare_free(z);
	bare_free(a);
	rm_rf(dir);
}

/* ---- docs/client.md's spool promises: half a queue spills, another process's spool is
 * delivered first with live batches right behind, a crash between the answer and the
 * deletion resends the files (duplicates, nothing stored twice) ---- */

#define CHILD_EVENTS 30
#define BATCH 5

static errq_options_t *child_options(const char *addr, const char *dir, const char *service)
{
	errq_options_t *o = spool_options(addr, dir, service);
	assert_int_equal(errq_options_set_max_batch_events(o, BATCH), ERRQ_OK);
	return o;
}

static void report_kind(errq_client_t *c, char kind, int first, int n)
{
	for (int i = first; i < first + n; i++)
		assert_int_equal(errq_report_failure(c, "SpoolError", "SPOOL", "%c%d", kind, i), ERRQ_OK);
}

static void cp_a(const char *from, const char *to)
{
	char cmd[512];
	errq_snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

/* The child: reports CHILD_EVENTS with the collector away and closes: all spooled. */
static int spool_child(const char *addr, const char *dir)
{
	errq_options_t *o = child_options(addr, dir, "spool-child");
	/* full batches only (6 files): with the 1 ms linger, a report loop slowed past it (ASan
	 * on a loaded machine) made a partial batch now and then, and a seventh file */
	if (errq_options_set_linger_ms(o, ERRQ__LINGER_MS_MAX) != ERRQ_OK)
		return 1;
	errq_client_t *c = errq_client_new(o);
	if (!c)
		return 2;
	for (int i = 0; i < CHILD_EVENTS; i++)
		if (errq_report_failure(c, "SpoolError", "SPOOL", "s%d", i) != ERRQ_OK)
			return 3;
	errq_stats_t st;
	if (errq_client_close_stats(c, 200, &st) != 0 || st.spooled != CHILD_EVENTS)
		return 4;
	return 0;
}

static void run_child(const char *addr, const char *dir)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_client_spool", "--spool-child", addr, dir, (char *)NULL);
		_exit(127);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* The fake's requests in arrival order as 's' (spooled by the child) or 'm' (live). */
static int request_kinds(struct fake_collector *f, char *kinds, int max)
{
	int n = 0;
	pthread_mutex_lock(&f->mu);
	for (size_t r = 0; r < f->n_requests && n < max; r++) {
		if (!f->requests[r]->n_failures)
			continue;
		char k = f->requests[r]->failures[0]->message[0];
		for (size_t i = 1; i < f->requests[r]->n_failures; i++)
			assert_int_equal(f->requests[r]->failures[i]->message[0], k); /* never mixed */
		kinds[n++] = k;
	}
	pthread_mutex_unlock(&f->mu);
	kinds[n] = '\0';
	return n;
}

static void test_half_full_queue_spills_to_disk(void **state)
{
	char dir[64];
	temp_dir(dir, sizeof(dir));
	struct fake_collector f = {.silent_first_calls = 1000}; /* reads, never answers */
	assert_int_equal(fake_start(&f, 0), 0);
	errq_options_t *o = child_options(f.addr, dir, "spool-half");
	assert_int_equal(errq_options_set_queue_capacity(o, 100), ERRQ_OK);
	assert_int_equal(errq_options_set_max_inflight(o, 1), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	errq_stats_t st;
	/* 70 of 100: past half, the overflow goes to disk */
	report_kind(c, 'm', 0, 70);
	WAIT_STATS(c, st, st.spooled > 0 && st.pending * 2 <= 100 + 2 * BATCH);
	assert_int_equal(st.dropped_queue_full, 0);
	assert_int_equal(st.circuit_state, ERRQ_CIRCUIT_CLOSED); /* not the open circuit's spooling */
	assert_int_equal(st.circuit_opens, 0);
	assert_int_equal(st.acked, 0);
	/* 40 more: 110 reported into a queue of 100, none refused */
	report_kind(c, 'm', 70, 40);
	WAIT_STATS(c, st, st.pending * 2 <= 100 + 2 * BATCH);
	assert_int_equal(st.dropped_queue_full, 0);
	assert_int_equal(st.queued, 110);
	assert_int_equal(st.spooled + st.pending, 110);
	assert_true(count_files(dir, ERRQ__SPOOL_SUFFIX) >= 1);
	errq_client_close(c, 0);
	fake_stop(&f);
	rm_rf(dir);
}

static void test_other_process_spool_first_then_alternating(void **state)
{
	char addr[64], dir[64];
	int port = free_port(addr);
	temp_dir(dir, sizeof(dir));
	run_child(addr, dir);
	int files = count_files(dir, ERRQ__SPOOL_SUFFIX);
	assert_int_equal(files, CHILD_EVENTS / BATCH);

	/* this process's client: live batches formed while the collector is still away */
	errq_options_t *o = child_options(addr, dir, "spool-parent");
	assert_int_equal(errq_options_set_circuit_threshold(o, 1000), ERRQ_OK);
	/* two in flight: batches of both kinds wait their turn, so the order is the client's */
	assert_int_equal(errq_options_set_max_inflight(o, 2), ERRQ_OK);
	errq_client_t *c = errq_client_new(o);
	report_kind(c, 'm', 0, 30);
	errq_stats_t st;
	WAIT_STATS(c, st, st.stream_failures >= 2);
	assert_int_equal(st.spooled, 0);

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	WAIT_STATS(c, st, st.spool_replayed == CHILD_EVENTS && st.acked == 30 && st.spool_files == 0);
	assert_int_equal(st.accepted, CHILD_EVENTS + 30);
	assert_int_equal(st.duplicates, 0);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), 0);
	/* the child's events carry the child's service (f's fields under its lock: it still runs) */
	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.n_ids, CHILD_EVENTS + 30);
	for (size_t r = 0; r < f.n_requests; r++)
		for (size_t i = 0; i < f.requests[r]->n_failures; i++)
			assert_string_equal(f.requests[r]->failures[i]->service,
					    f.requests[r]->failures[i]->message[0] == 's' ? "spool-child" : "spool-parent");
	pthread_mutex_unlock(&f.mu);
	/* the stream starts with a spooled batch, and a live one follows it at once: the backlog
	 * on disk (six files) does not go out ahead of the live events.  Strict alternation is
	 * not asserted: the client reads one file back until the stream is answered, then four,
	 * and forms live batches as it sends them, so runs of either kind occur ("smmssssmsmmm") */
	char kinds[256];
	int n = request_kinds(&f, kinds, 255);
	print_message("batches on the stream: %s\n", kinds);
	/* the spooled files go out whole, one batch each; the live events in batches of at most
	 * BATCH (a batch whose linger ran out while report_kind was still adding, as on a loaded
	 * machine, goes out short: "smmsmsmssmsmm" under ASan beside other load) */
	int ns = 0, nm = 0;
	for (int i = 0; i < n; i++)
		kinds[i] == 's' ? ns++ : nm++;
	assert_int_equal(ns, CHILD_EVENTS / BATCH);
	assert_in_range(nm, 30 / BATCH, 30);
	assert_int_equal(kinds[0], 's');
	assert_int_equal(kinds[1], 'm');
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
	rm_rf(dir);
}

static void test_crash_between_answer_and_delete_resends(void **state)
{
	char addr[64], dir[64], saved[80];
	int port = free_port(addr);
	temp_dir(dir, sizeof(dir));
	run_child(addr, dir);
	errq_snprintf(saved, sizeof(saved), "%s.saved", dir);
	cp_a(dir, saved);

	struct fake_collector f = {0};
	assert_int_equal(fake_start(&f, port), 0);
	errq_client_t *c = errq_client_new(child_options(addr, dir, "spool-crash"));
	errq_stats_t st;
	WAIT_STATS(c, st, st.spool_replayed == CHILD_EVENTS && st.spool_files == 0);
	assert_int_equal(st.accepted, CHILD_EVENTS);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), 0);

	/* the process died after the answers, before deleting: the files are still there */
	rm_rf(dir);
	assert_int_equal(rename(saved, dir), 0);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), CHILD_EVENTS / BATCH);
	c = errq_client_new(child_options(addr, dir, "spool-crash"));
	WAIT_STATS(c, st, st.spool_files == 0 && st.acked + st.spool_replayed >= CHILD_EVENTS);
	assert_int_equal(st.duplicates, CHILD_EVENTS); /* sent again, harmless */
	assert_int_equal(st.accepted, 0);
	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.n_ids, CHILD_EVENTS);       /* nothing stored twice */
	assert_int_equal(f.events_received, 2 * CHILD_EVENTS);
	pthread_mutex_unlock(&f.mu);
	assert_int_equal(count_files(dir, ERRQ__SPOOL_SUFFIX), 0);
	assert_int_equal(errq_client_close(c, GENEROUS_MS), 0);
	fake_stop(&f);
	rm_rf(dir);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--spool-child") == 0)
		return spool_child(argv[2], argv[3]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_close_spools_next_start_delivers),
	    cmocka_unit_test(test_spool_while_circuit_open),
	    cmocka_unit_test(test_spool_corruption),
	    cmocka_unit_test(test_spool_is_bounded),
	    cmocka_unit_test(test_spool_dir_is_locked),
	    cmocka_unit_test(test_spool_module),
	    cmocka_unit_test(test_half_full_queue_spills_to_disk),
	    cmocka_unit_test(test_other_process_spool_first_then_alternating),
	    cmocka_unit_test(test_crash_between_answer_and_delete_resends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
