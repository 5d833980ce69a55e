#include "errq_id.h"

#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "errq_time.h"

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t errq_idgen_rand(struct errq_idgen *g)
{
	uint64_t *s = g->s;
	const uint64_t result = rotl(s[1] * 5, 7) * 9;
	const uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void errq_idgen_reseed(struct errq_idgen *g)
{
	uint64_t seed[4];
	if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		uint64_t x = errq_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)g;
		for (int i = 0; i < 4; i++)
			seed[i] = splitmix(&x);
	}
	memcpy(g->s, seed, sizeof(seed));
	if (!(g->s[0] | g->s[1] | g->s[2] | g->s[3]))
		g->s[0] = 1;
}

int errq_idgen_init(struct errq_idgen *g)
{
	memset(g, 0, sizeof(*g));
	errq_idgen_reseed(g);
	return 0;
}

void errq_idgen_next(struct errq_idgen *g, uint64_t now_ms, uint8_t out[ERRQ_ID_LEN])
{
	if (now_ms > g->last_ms) {
		g->last_ms = now_ms;
		g->counter = (uint32_t)(errq_idgen_rand(g) & 0x3FF); /* start low: room to count */
	} else if (++g->counter > 0xFFF) {
		g->last_ms++; /* borrow the next millisecond rather than repeat */
		g->counter = 0;
	}
	uint64_t ms = g->last_ms & 0xFFFFFFFFFFFFULL;
	uint64_t r = errq_idgen_rand(g);
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(ms >> (40 - 8 * i));
	out[6] = (uint8_t)(0x70 | ((g->counter >> 8) & 0x0F));
	out[7] = (uint8_t)(g->counter & 0xFF);
	out[8] = (uint8_t)(0x80 | ((r >> 56) & 0x3F));
	for (int i = 9; i < 16; i++)
		out[i] = (uint8_t)(r >> (8 * (15 - i)));
}

uint64_t errq_id_ms(const uint8_t id[ERRQ_ID_LEN])
{
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = (ms << 8) | id[i];
	return ms;
}
