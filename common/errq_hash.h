/* errq_hash.h: a 64-bit FNV-1a hash, for fingerprints (stable across versions and machines:
 * a change here splits every group, so never change it without a grouping version bump). */
#ifndef ERRQ_HASH_H
#define ERRQ_HASH_H
#include <stddef.h>
#include <stdint.h>

#define ERRQ_FNV64_INIT 0xcbf29ce484222325ULL

static inline uint64_t errq_fnv64(uint64_t h, const void *p, size_t n)
{
	const unsigned char *u = p;
	for (size_t i = 0; i < n; i++) {
		h ^= u[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}
#endif
