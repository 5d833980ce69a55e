/* report_decode.c: the pure part of errq.v1.Collector/Report (svc_report.h): one ReportRequest's
 * bytes into a validated batch (the top-level count that comes first, the room its decoding
 * reserves, protobuf-c's unpack into the batch's arena, validation, the credential's and the
 * quota's per-event checks, each event's packed `extra`) and a committed batch's answer.
 * Touches no call, stream or service state: svc_report.c owns those (and the batch's ops),
 * and tests/fuzz/fuzz_report.c runs this very code. */
#include <stdlib.h>
#include <string.h>

#include "errq_grpc.h"
#include "errq_pb.h"
#include "errq_str.h"
#include "errq_time.h"
#include "auth.h"
#include "ingest.h"
#include "quota.h"
#include "services.h"
#include "svc_report.h"

_Static_assert(QUOTA_REASON_MAX == VALIDATE_REASON_MAX, "a quota's reason is a rejection's");

/* Counts the `failures` (field 2) by walking the top-level fields, so that a batch over the
 * limit is refused before decoding allocates for it. */
int report_count_failures(const uint8_t *p, size_t len, size_t *n)
{
	const uint8_t *end = p + len;
	struct errq_pb_field f;
	int rc;
	*n = 0;
	while ((rc = errq_pb_next(&p, end, &f)) == 1)
		*n += f.field == 2 && f.wt == ERRQ_PB_LEN;
	return rc;
}

/* An upper bound of what a message of len bytes with nfail failures decodes to (the room it
 * reserves in the ingest budget before decoding): protobuf-c's structs, pointer arrays and
 * scratch take up to ~65 bytes per wire byte (empty frames or details, 2 bytes each), each
 * failure ~1 KiB with its ingest_event, however short; never more than decoding may take. */
size_t report_decode_bound(size_t len, size_t nfail)
{
	uint64_t n = (uint64_t)len * REPORT_DECODE_FACTOR_MAX + (uint64_t)nfail * 1024 + 4096;
	return n < REPORT_MAX_DECODED_BYTES ? (size_t)n : (size_t)REPORT_MAX_DECODED_BYTES;
}

void report_batch_free(struct ingest_batch *b)
{
	if (!b)
		return;
	errq_arena_release(&b->arena); /* the decoded request and everything of the batch */
	free(b);
}

/* Drops the fields of tf's frames and details that errq does not know before they are stored:
 * they are not errq's to keep, and protobuf-c 1.4 accepts a field number 0 written in two bytes
 * that it refuses when it reads it back, so one such field made the event's stored frames and
 * details unreadable (found by tests/fuzz/fuzz_report). */
static void drop_unknown_fields(Errq__V1__TaskFailure *tf)
{
	for (size_t i = 0; i < tf->n_frames; i++)
		tf->frames[i]->base.n_unknown_fields = 0;
	for (size_t i = 0; i < tf->n_details; i++)
		tf->details[i]->base.n_unknown_fields = 0;
}

/* Frames (innermost kept), details (first kept) and the client's fingerprint of tf, as a
 * TaskFailure holding only those fields: the event's stored `extra`. */
static void extra_view(const Errq__V1__TaskFailure *tf, const struct validated *v, Errq__V1__TaskFailure *x)
{
	errq__v1__task_failure__init(x);
	x->n_frames = tf->n_frames - v->frames_skip;
	x->frames = tf->n_frames ? tf->frames + v->frames_skip : NULL; /* NULL + 0 is undefined */
	x->n_details = v->details_kept;
	x->details = tf->details;
	x->fingerprint = tf->fingerprint; /* the client's, kept so `errq explain` can show it */
}

/* Lists event i of b's n among its rejections (the arrays are made on the first).  -1: no memory. */
static int add_rejection(struct ingest_batch *b, size_t n, size_t i, const char reason[VALIDATE_REASON_MAX])
{
	if (!b->rejected_index) {
		b->rejected_index = errq_arena_alloc(&b->arena, n * sizeof(*b->rejected_index));
		b->rejected_reason = errq_arena_alloc(&b->arena, n * sizeof(*b->rejected_reason));
		if (!b->rejected_index || !b->rejected_reason)
			return -1;
	}
	b->rejected_index[b->n_rejected] = (uint32_t)i;
	memcpy(b->rejected_reason[b->n_rejected], reason, VALIDATE_REASON_MAX);
	b->n_rejected++;
	return 0;
}

/* Bytes -> decoded, validated batch, all in one arena (one malloc per chunk instead of one per
 * string and sub-message: the allocator was ~12% of errqd's CPU).  Returns NULL with the
 * status and reason that end the call.  Touches no call or service state (tests/fuzz); the
 * batch's ops (its call's callbacks) are the caller's to set. */
struct ingest_batch *report_decode_batch(const uint8_t *p, size_t len, const struct auth_scope *scope,
					 struct quota *q, grpc_status_code *st, char *why, size_t whysz)
{
	struct ingest_batch *b = calloc(1, sizeof(*b));
	ProtobufCAllocator alloc;
	uint64_t now = errq_now_ns(), mono = q ? errq_mono_ns() : 0; /* one instant per batch */
	if (!b) {
		*st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		errq_snprintf(why, whysz, "collector out of memory");
		return NULL;
	}
	/* Sized so a typical batch fits in one chunk: decoded, a batch of 300-byte events takes
	 * about 3.5 times its wire size (protobuf-c's structs and its scratch space, which an
	 * arena does not reuse); a second chunk would double the batch's footprint. */
	errq_arena_init(&b->arena, len * 4 + 4096, REPORT_MAX_DECODED_BYTES);
	errq_arena_pbc(&b->arena, &alloc);
	b->req = errq__v1__report_request__unpack(&alloc, len, p);
	if (!b->req) {
		if (b->arena.failed) {
			*st = GRPC_STATUS_RESOURCE_EXHAUSTED;
			errq_snprintf(why, whysz, "ReportRequest decodes to more than %d MiB", REPORT_MAX_DECODED_BYTES >> 20);
		} else {
			*st = GRPC_STATUS_INVALID_ARGUMENT;
			errq_snprintf(why, whysz, "cannot decode ReportRequest: malformed protobuf");
		}
		goto fail;
	}
	size_t n = b->req->n_failures, extra_total = 0;
	b->n_events = n;
	if (n && !(b->events = errq_arena_alloc(&b->arena, n * sizeof(*b->events))))
		goto oom;
	if (n)
		memset(b->events, 0, n * sizeof(*b->events));
	for (size_t i = 0; i < n; i++) {
		struct ingest_event *ev = &b->events[i];
		char reason[VALIDATE_REASON_MAX];
		Errq__V1__TaskFailure *tf = b->req->failures[i];
		if (validate_failure(tf, &ev->v, reason) ||
		    auth_scope_allows(scope, tf->service, reason, sizeof(reason))) {
			if (add_rejection(b, n, i, reason))
				goto oom;
			continue;
		}
		ev->tf = tf;
		ev->received_ns = now;
		/* over a quota: rejected, and still counted in its group and service (quota.h) */
		ev->count_only = !quota_take(q, tf->service, mono, reason);
		if (ev->count_only && add_rejection(b, n, i, reason))
			goto oom;
		if (tf->n_frames || tf->n_details || (tf->fingerprint && tf->fingerprint[0])) {
			Errq__V1__TaskFailure x;
			drop_unknown_fields(tf);
			extra_view(tf, &ev->v, &x);
			ev->extra_off = extra_total;
			ev->extra_len = errq__v1__task_failure__get_packed_size(&x);
			extra_total += ev->extra_len;
		}
	}
	if (extra_total) {
		if (!(b->extra = errq_arena_alloc(&b->arena, extra_total)))
			goto oom;
		for (size_t i = 0; i < n; i++) {
			struct ingest_event *ev = &b->events[i];
			if (!ev->tf || !ev->extra_len)
				continue;
			Errq__V1__TaskFailure x;
			extra_view(ev->tf, &ev->v, &x);
			errq__v1__task_failure__pack(&x, b->extra + ev->extra_off);
		}
	}
	/* what the batch holds in memory, for the queue's byte bound */
	b->bytes = sizeof(*b) + b->arena.total;
	return b;
oom:
	*st = GRPC_STATUS_RESOURCE_EXHAUSTED;
	errq_snprintf(why, whysz, "collector out of memory (or the batch decodes to more than %d MiB)",
		      REPORT_MAX_DECODED_BYTES >> 20);
fail:
	report_batch_free(b);
	return NULL;
}

/* The answer of a committed batch; counts its rejections by code into rs (as answered: an
 * event a quota refused but found stored already is answered, and counted, as a duplicate). */
grpc_byte_buffer *report_build_response(struct ingest_batch *b, struct report_stats *rs)
{
	Errq__V1__ReportResponse resp = ERRQ__V1__REPORT_RESPONSE__INIT;
	Errq__V1__Rejection *rej = NULL, **rejp = NULL;
	grpc_byte_buffer *bb = NULL;
	resp.seq = b->req->seq;
	for (size_t i = 0; i < b->n_events; i++) {
		const struct ingest_event *ev = &b->events[i];
		if (!ev->tf || ev->result == INGEST_COUNTED)
			continue; /* among the rejections */
		if (ev->result == INGEST_STORED)
			resp.accepted++;
		else
			resp.duplicates++; /* a refused event found stored already is one too */
	}
	if (b->n_rejected) {
		rej = calloc(b->n_rejected, sizeof(*rej));
		rejp = calloc(b->n_rejected, sizeof(*rejp));
		if (!rej || !rejp)
			goto out;
		for (uint32_t i = 0; i < b->n_rejected; i++) {
			const struct ingest_event *ev = &b->events[b->rejected_index[i]];
			if (ev->count_only && ev->result == INGEST_DUPLICATE)
				continue; /* answered as a duplicate above */
			errq__v1__rejection__init(&rej[resp.n_rejected]);
			rej[resp.n_rejected].index = b->rejected_index[i];
			rej[resp.n_rejected].reason = b->rejected_reason[i];
			rejp[resp.n_rejected] = &rej[resp.n_rejected];
			resp.n_rejected++;
			int k = validate_reject_index(b->rejected_reason[i]);
			atomic_fetch_add_explicit(&rs->rejected[k < 0 ? VALIDATE_N_REJECT_CODES : k], 1, memory_order_relaxed);
		}
		resp.rejected = rejp;
	}
	bb = errq_bb_from_msg(&resp.base);
out:
	free(rej);
	free(rejp);
	return bb;
}
