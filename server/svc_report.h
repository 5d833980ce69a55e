/* svc_report.h: the pure part of errq.v1.Collector/Report (svc_report.c), exposed so that the
 * fuzz targets (tests/fuzz/) run the very code a stream's message goes through. */
#ifndef ERRQD_SVC_REPORT_H
#define ERRQD_SVC_REPORT_H
#include <grpc/status.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

struct auth_scope;
struct quota;

/* Counts the `failures` of an encoded ReportRequest from its top-level fields (no decoding).
 * Returns 0, or -1 when the bytes are not a well-formed top level. */
int report_count_failures(const uint8_t *p, size_t len, size_t *n);
/* Decodes and validates one ReportRequest (REPORT_MAX_DECODED_BYTES at most) into a new batch:
 * rejected events (invalid, a service scope may not report, over quota q) listed with their
 * reasons, the others with their fingerprint and packed `extra`.  q may be NULL (no quota).
 * Returns NULL with the status and the reason that end the call. */
struct ingest_batch *report_decode_batch(const uint8_t *p, size_t len, const struct auth_scope *scope,
					 struct quota *q, grpc_status_code *st, char *why, size_t whysz);
void report_batch_free(struct ingest_batch *b); /* accepts NULL */
#endif
