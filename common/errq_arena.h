/* errq_arena.h: a bump allocator for objects that die together (one decoded batch): no
 * per-object free, one release for all.  Chunks come from malloc; the first is sized by the
 * caller, later ones double, and the total is capped by `limit` (an allocation past it fails,
 * so a hostile message cannot make one arena unbounded). */
#ifndef ERRQ_ARENA_H
#define ERRQ_ARENA_H
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct errq_arena_chunk;

struct errq_arena {
	struct errq_arena_chunk *head;
	char *cur, *end;
	size_t next_size;  /* size of the next chunk */
	size_t total;      /* bytes taken from malloc */
	size_t limit;
	int failed;        /* an allocation failed (limit or malloc) */
};

/* No allocation happens here. */
void errq_arena_init(struct errq_arena *a, size_t first_chunk, size_t limit);
/* 16-byte aligned memory valid until errq_arena_release, or NULL (out of memory / limit). */
void *errq_arena_alloc(struct errq_arena *a, size_t n);
/* Frees every chunk; the arena can be used again. */
void errq_arena_release(struct errq_arena *a);
/* A protobuf-c allocator over a: its free() does nothing (release the arena instead). */
void errq_arena_pbc(struct errq_arena *a, ProtobufCAllocator *out);
#endif
