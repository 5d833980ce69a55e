/* store_overflow.h: a service's overflow group (groups_per_service), looked up by service.
 *
 * When a service has groups_per_service groups, the writer (store.c, group_slot) counts the
 * events of its new fingerprints in one overflow group per service, whose fingerprint is a
 * hash of "overflow" and the service name.  errqd's overflow watch (server/overflow.c) uses
 * this to say once which service overflowed, and `errq status` to list them. */
#ifndef ERRQ_STORE_OVERFLOW_H
#define ERRQ_STORE_OVERFLOW_H
#include <stdint.h>

struct store;

#define STORE_OVERFLOW_FP_LEN 16

/* The fingerprint of service's overflow group: the one store.c's group_slot gives it. */
void store_overflow_fingerprint(const char *service, char out[STORE_OVERFLOW_FP_LEN + 1]);

/* 1 with *total (its events of all time, as counted so far) when service has an overflow
 * group, 0 when not, -1 on error (store_errmsg).  One indexed lookup, on any handle's own
 * connection (the writer's between transactions, or a reader). */
int store_overflow_group(struct store *s, const char *service, uint64_t *total);
#endif
