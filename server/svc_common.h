/* svc_common.h: what the read services (svc_query.c, svc_alerts*.c) share — a read-only
 * store handle per completion-queue thread, keyset cursors, the arena replies are built in,
 * and the handler preamble: decoding the request into that arena, and the statuses of the
 * failures every handler meets (out of memory, a failed query). */
#ifndef ERRQD_SVC_COMMON_H
#define ERRQD_SVC_COMMON_H
#include <grpc/grpc.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errq_arena.h"

#define SVC_ARENA_LIMIT (64u << 20) /* memory one reply may take while it is built */

struct store;

/* One read-only connection per thread that asks, closed when the thread ends. */
struct svc_readers {
	const char *db_path; /* not owned */
	pthread_key_t key;
};
int svc_readers_init(struct svc_readers *r, const char *db_path);
/* This thread's connection, opened on first use; NULL with the reason in details. */
struct store *svc_reader(struct svc_readers *r, char *details, size_t dsz);
void svc_readers_destroy(struct svc_readers *r);

static inline void svc_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static inline uint64_t svc_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* A reply's messages and strings live in one arena, released after sending. */
struct build {
	struct errq_arena a;
	ProtobufCAllocator pa;
};
void build_init(struct build *b);
/* A copy of s in the arena ("" for NULL or when the arena is full). */
char *bstr(struct build *b, const char *s);

/* The request of a unary call, decoded into b's arena (released with the reply); NULL when it
 * does not decode, with "cannot decode <Message>" in details (the caller answers
 * INVALID_ARGUMENT). */
void *svc_decode(struct build *b, const ProtobufCMessageDescriptor *d, grpc_slice req, char *details, size_t dsz);
/* RESOURCE_EXHAUSTED with "out of memory" in details: a reply that outgrew its arena. */
grpc_status_code svc_oom(char *details, size_t dsz);
/* A query that failed, with the store's reason in details: UNAVAILABLE when the database
 * server could not be reached (STORE_ERR_UNAVAILABLE: the handle reconnects at its next query,
 * so the client's retry may pass), else INTERNAL. */
grpc_status_code svc_query_failed(struct store *s, char *details, size_t dsz);

/* How a listing ended: svc_query_failed's status when the store's call returned rc != 0,
 * RESOURCE_EXHAUSTED (svc_oom) when a row's message did not fit in the arena (oom), else OK.
 * Call the store first and pass its rc: in one call, oom could be read before the rows are. */
grpc_status_code svc_listed(struct store *s, int rc, bool oom, char *details, size_t dsz);

/* The keyset-paged lists (ListEvents, ListGroups, ListAlerts) share their opening and their
 * reply tail. A cursor is empty (the first page) or exactly len bytes of big-endian keys;
 * anything else is INVALID_ARGUMENT with "bad cursor: N bytes" in details. */
grpc_status_code svc_check_cursor(ProtobufCBinaryData cursor, size_t len, char *details, size_t dsz);

/* The Query API's glob filters (error_type, error_code, task of ListEvents, ListGroups and
 * Tail) know * and ? only, and are at most SVC_GLOB_MAX bytes (the CLI's bound too).
 * svc_check_globs: OK, or INVALID_ARGUMENT with "error_code glob is longer than 256 bytes"
 * in details (NULL: a request without that field).  svc_glob: a checked glob as SQLite's
 * GLOB and fnmatch read it, '[' made the literal "[[]" (never a class); out always has room
 * for it. */
#define SVC_GLOB_MAX 256
#define SVC_GLOB_BUFSZ (3 * SVC_GLOB_MAX + 1)
grpc_status_code svc_check_globs(const char *error_type, const char *error_code, const char *task, char *details,
				 size_t dsz);
void svc_glob(const char *in, char out[SVC_GLOB_BUFSZ]);

/* One page being listed: this thread's reader, and room in the reply's arena for limit items
 * (the requested size, 0 meaning QUERY_DEFAULT_LIMIT, capped at QUERY_MAX_LIMIT). The store is
 * asked for limit + 1 rows: the extra one only says that another page follows. */
struct svc_page {
	struct store *s;
	void *items;
	uint32_t limit;
};
/* UNAVAILABLE when the reader cannot open, RESOURCE_EXHAUSTED when the arena has no room. */
grpc_status_code svc_page_open(struct svc_page *p, struct svc_readers *r, struct build *b, uint32_t limit,
			       size_t item_size, char *details, size_t dsz);
/* The next page's cursor: k0 (and k1 when len is 16) in buf, pointed to by *next only when more
 * rows follow the n sent; otherwise *next is left empty, which ends the listing. */
void svc_next_cursor(ProtobufCBinaryData *next, uint8_t *buf, size_t len, bool more, size_t n, uint64_t k0,
		     uint64_t k1);
#endif
