/* errq_id.h: 16-byte time-ordered event ids in the UUIDv7 layout.
 *   48 bits unix milliseconds | 4 bits version (7) | 12 bits counter |
 *    2 bits variant (10)       | 62 bits random
 * The 12-bit counter makes ids from one generator strictly increasing within a millisecond
 * (when it wraps, the generator borrows the next millisecond).  A generator is not
 * thread-safe: the owner serializes calls.  Ids from different generators collide only if
 * their 62 random bits do, so each generator must be seeded independently (after fork()
 * too: see errq_idgen_reseed). */
#ifndef ERRQ_ID_H
#define ERRQ_ID_H
#include <stdint.h>

#define ERRQ_ID_LEN 16
#define ERRQ_ID_HEX_BUFSZ 33

struct errq_idgen {
	uint64_t s[4]; /* xoshiro256** state */
	uint64_t last_ms;
	uint32_t counter;
};

/* Seeds from getrandom(2) (falling back to time and pid).  Returns 0. */
int errq_idgen_init(struct errq_idgen *g);
void errq_idgen_reseed(struct errq_idgen *g);
void errq_idgen_next(struct errq_idgen *g, uint64_t now_ms, uint8_t out[ERRQ_ID_LEN]);
uint64_t errq_idgen_rand(struct errq_idgen *g);
/* Milliseconds stored in an id's first 48 bits. */
uint64_t errq_id_ms(const uint8_t id[ERRQ_ID_LEN]);
#endif
