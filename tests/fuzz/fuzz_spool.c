/* fuzz_spool.c: liberrq's spool reader (client/src/errq_spool.c) on a file it did not write:
 * the directory scan at start (names, header, size), then every load of the oldest file
 * (payload, checksum) and its removal, as the sender thread does them.
 *
 * Input: byte 0 is a set of flags, the rest is the file.  The checksums of a real file are
 * CRC-32s that random bytes never match, so the flags can make them right (then the fuzzer
 * gets past them to what they guard):
 *   0x01  set the header's payload length and payload CRC from the bytes
 *   0x02  set the header's own CRC
 *   0x0c  how the file is named: 0 a batch, 4 a temporary file, 8 two batches (the same
 *         bytes twice), 12 not one of the spool's names
 *   0x10  a spool limit of 64 bytes (the scan evicts what is over it) */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client_int.h"
#include "fuzz.h"
#include "errq_banned.h"

static char dir[64];

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void empty_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	FUZZ_CHECK(d != NULL);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0 && write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static void remove_dir(void)
{
	empty_dir();
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/errq-fuzz-spool-XXXXXX", tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	FUZZ_CHECK(mkdtemp(dir) != NULL);
	atexit(remove_dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > ERRQ__SPOOL_HDR_LEN + ERRQ__WIRE_MAX_MESSAGE)
		return 0;
	unsigned flags = data[0];
	size_t n = size - 1;
	uint8_t *f = malloc(n ? n : 1);
	errq_client_t *c = calloc(1, sizeof(*c));
	FUZZ_CHECK(f && c);
	memcpy(f, data + 1, n);
	if (n >= ERRQ__SPOOL_HDR_LEN && (flags & 0x01)) {
		put32(f + 8, (uint32_t)(n - ERRQ__SPOOL_HDR_LEN));
		put32(f + 12, errq__crc32(0, f + ERRQ__SPOOL_HDR_LEN, n - ERRQ__SPOOL_HDR_LEN));
	}
	if (n >= ERRQ__SPOOL_HDR_LEN && (flags & 0x02))
		put32(f + 28, errq__crc32(0, f, 28));

	empty_dir();
	int files = 1;
	switch (flags & 0x0c) {
	case 0x00:
		write_file("0000000000000007.batch", f, n);
		break;
	case 0x04:
		write_file("0000000000000007.tmp", f, n);
		break;
	case 0x08:
		write_file("0000000000000007.batch", f, n);
		write_file("00000000000000a0.batch", f, n);
		files = 2;
		break;
	default:
		write_file("000000000000007.batch", f, n);
		break;
	}

	pthread_mutex_init(&c->mu, NULL);
	c->cfg.spool_dir = dir;
	c->cfg.spool_max_bytes = flags & 0x10 ? 64 : 64u << 20;
	c->snd.spool.dirfd = c->snd.spool.lockfd = c->spool_lockfd = -1;
	errq__spool_open(c);
	FUZZ_CHECK(errq__spool_usable(&c->snd.spool));
	FUZZ_CHECK(c->st.spool_files == c->snd.spool.n && c->st.spool_bytes == c->snd.spool.bytes);
	FUZZ_CHECK(c->snd.spool.bytes <= c->cfg.spool_max_bytes);
	/* a new file never takes a number already used */
	FUZZ_CHECK(c->snd.spool.next_no > ((flags & 0x0c) == 0x0c ? 0 : (flags & 0x0c) == 0x08 ? 0xa0 : 7));
	size_t loaded = 0;
	struct errq_batch *b;
	while ((b = errq__spool_load_next(c, SIZE_MAX))) {
		/* only a file whose checksums hold is loaded, and as it was written */
		size_t len = GRPC_SLICE_LENGTH(b->body);
		FUZZ_CHECK(n == ERRQ__SPOOL_HDR_LEN + len);
		FUZZ_CHECK(memcmp(GRPC_SLICE_START_PTR(b->body), f + ERRQ__SPOOL_HDR_LEN, len) == 0);
		FUZZ_CHECK(get32(f + 12) == errq__crc32(0, GRPC_SLICE_START_PTR(b->body), len));
		FUZZ_CHECK(b->spool_no == 7 || b->spool_no == 0xa0);
		loaded++;
		errq__spool_remove(c, b->spool_no);
		grpc_slice_unref(b->body);
		free(b);
	}
	FUZZ_CHECK(loaded <= (size_t)files);
	/* every file was loaded, deleted as corrupt, or (a newer version) left out of the index */
	FUZZ_CHECK(c->snd.spool.n == 0);
	FUZZ_CHECK(c->st.spool_files == c->snd.spool.n);
	errq__spool_close(c);
	pthread_mutex_destroy(&c->mu);
	free(c);
	free(f);
	return 0;
}
