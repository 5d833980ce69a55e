/* store_overflow.c: a service's overflow group by service name (store_overflow.h). */
#include "store_overflow.h"

#include <string.h>

#include "store_int.h"
#include "errq_hash.h"
#include "errq_str.h"
#include "errq_banned.h"

void store_overflow_fingerprint(const char *service, char out[STORE_OVERFLOW_FP_LEN + 1])
{
	uint8_t b[8];
	uint64_t h = errq_fnv64(ERRQ_FNV64_INIT, "overflow", 9); /* with its NUL (stable: stored groups) */
	h = errq_fnv64(h, service, strlen(service));
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(h >> (56 - 8 * i));
	errq_hex_encode(b, 8, out);
	out[STORE_OVERFLOW_FP_LEN] = '\0';
}

int store_sqlite_overflow_group(struct store *s, const char *service, uint64_t *total)
{
	char fp[STORE_OVERFLOW_FP_LEN + 1];
	sqlite3_stmt *st = NULL;
	store_overflow_fingerprint(service, fp);
	/* prepared per call: a lookup runs when a service may have started overflowing (at most
	 * once a second per service, server/overflow.c) or for `errq status`, never per event */
	if (sqlite3_prepare_v2(s->db, "SELECT total FROM groups WHERE fingerprint = ?1 AND overflow = 1", -1, &st,
			       NULL) != SQLITE_OK)
		return store__set_err(s, "prepare overflow group lookup");
	sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*total = (uint64_t)sqlite3_column_int64(st, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store__set_err(s, "find overflow group");
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW;
}
