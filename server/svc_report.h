/* svc_report.h: the pure part of errq.v1.Collector/Report (report_decode.c), used by the stream
 * handler (svc_report.c) and exposed so that the fuzz targets (tests/fuzz/) run the very code a
 * stream's message goes through. */
#ifndef ERRQD_SVC_REPORT_H
#define ERRQD_SVC_REPORT_H
#include <grpc/byte_buffer.h>
#include <grpc/status.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

struct auth_scope;
struct quota;
struct report_stats;

/* Counts the `failures` of an encoded ReportRequest from its top-level fields (no decoding).
 * Returns 0, or -1 when the bytes are not a well-formed top level. */
int report_count_failures(const uint8_t *p, size_t len, size_t *n);
/* The room (bytes of the ingest budget) that decoding a message of len bytes with nfail
 * failures reserves: an upper bound of its decoded size, REPORT_MAX_DECODED_BYTES at most. */
size_t report_decode_bound(size_t len, size_t nfail);
/* Decodes and validates one ReportRequest (REPORT_MAX_DECODED_BYTES at most) into a new batch:
 * rejected events (invalid, a service scope may not report, over quota q) listed with their
 * reasons, the others with their fingerprint and packed `extra`.  q may be NULL (no quota).
 * The batch's ops are left NULL: the caller sets them before it submits the batch.
 * Returns NULL with the status and the reason that end the call. */
struct ingest_batch *report_decode_batch(const uint8_t *p, size_t len, const struct auth_scope *scope,
					 struct quota *q, grpc_status_code *st, char *why, size_t whysz);
void report_batch_free(struct ingest_batch *b); /* accepts NULL */
/* The answer (ReportResponse) of committed batch b; counts its rejections by code into rs.
 * Returns NULL when out of memory. */
grpc_byte_buffer *report_build_response(struct ingest_batch *b, struct report_stats *rs);
#endif
