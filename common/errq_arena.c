#include "errq_arena.h"

#include <stdint.h>
#include <stdlib.h>

#include "errq_banned.h"

struct errq_arena_chunk {
	struct errq_arena_chunk *next;
	size_t size;
	_Alignas(16) char data[];
};

void errq_arena_init(struct errq_arena *a, size_t first_chunk, size_t limit)
{
	a->head = NULL;
	a->cur = a->end = NULL;
	a->next_size = first_chunk < 256 ? 256 : first_chunk;
	a->total = 0;
	a->limit = limit;
	a->failed = 0;
}

void *errq_arena_alloc(struct errq_arena *a, size_t n)
{
	size_t need = (n + 15) & ~(size_t)15;
	if (need < n || need == 0) {
		a->failed = need < n;
		return need < n ? NULL : a->cur ? a->cur : errq_arena_alloc(a, 16);
	}
	if ((size_t)(a->end - a->cur) < need || !a->cur) {
		size_t size = a->next_size;
		while (size < need)
			size *= 2;
		if (a->total + size > a->limit) {
			if (a->total + need > a->limit) {
				a->failed = 1;
				return NULL;
			}
			size = need; /* the last bit that fits */
		}
		struct errq_arena_chunk *c = malloc(sizeof(*c) + size);
		if (!c) {
			a->failed = 1;
			return NULL;
		}
		c->next = a->head;
		c->size = size;
		a->head = c;
		a->cur = c->data;
		a->end = c->data + size;
		a->total += size;
		a->next_size = size * 2;
	}
	void *p = a->cur;
	a->cur += need;
	return p;
}

void errq_arena_release(struct errq_arena *a)
{
	struct errq_arena_chunk *c = a->head;
	while (c) {
		struct errq_arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->head = NULL;
	a->cur = a->end = NULL;
	a->total = 0;
}

static void *pbc_alloc(void *data, size_t n)
{
	return errq_arena_alloc(data, n);
}

static void pbc_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

void errq_arena_pbc(struct errq_arena *a, ProtobufCAllocator *out)
{
	out->alloc = pbc_alloc;
	out->free = pbc_free;
	out->allocator_data = a;
}
