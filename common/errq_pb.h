/* errq_pb.h: the protobuf wire format by hand, written once: varints, tags, length-delimited
 * fields, a bounded writer and a top-level field walker.  Used where going through
 * protobuf-c's structs would cost more than the bytes (liberrq's event encoder, the tail
 * stream's envelope, counting a ReportRequest's events before decoding it, errq-bench's
 * payloads) and for the circuit's saved state.  No allocation, no dependencies; safe from any
 * thread.  The fast primitives are inline: they run per field on the client's hot path. */
#ifndef ERRQ_PB_H
#define ERRQ_PB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ERRQ_PB_VARINT_MAX 10 /* bytes in the longest varint (a uint64) */

enum errq_pb_wire { ERRQ_PB_VARINT = 0, ERRQ_PB_FIXED64 = 1, ERRQ_PB_LEN = 2, ERRQ_PB_FIXED32 = 5 };

/* A field's key: (field << 3) | wire type.  One byte for field numbers below 16. */
#define ERRQ_PB_TAG(field, wt) ((uint64_t)(field) << 3 | (uint64_t)(wt))

static inline size_t errq_pb_varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Writes v at p, which has room for errq_pb_varint_size(v) bytes; returns the byte after. */
static inline uint8_t *errq_pb_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Reads a varint at *p (before end) and advances *p.  Returns 0, or -1 when the bytes end
 * first or the varint is longer than ERRQ_PB_VARINT_MAX bytes (*p is then undefined). */
static inline int errq_pb_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* Size of a whole length-delimited field (tag, length, n bytes). */
static inline size_t errq_pb_len_field_size(unsigned field, size_t n)
{
	return errq_pb_varint_size(ERRQ_PB_TAG(field, ERRQ_PB_LEN)) + errq_pb_varint_size(n) + n;
}

/* A bounded writer over a caller's buffer.  A write that does not fit sets `overflow` and
 * writes nothing more, but `len` keeps counting, so after an overflow it is the size the
 * whole encoding needs (and a NULL buffer with cap 0 measures). */
struct errq_pb_buf {
	uint8_t *p;
	size_t cap, len;
	bool overflow;
};

static inline struct errq_pb_buf errq_pb_buf_init(void *p, size_t cap)
{
	return (struct errq_pb_buf){p, p ? cap : 0, 0, false};
}
void errq_pb_w_bytes(struct errq_pb_buf *w, const void *p, size_t n);
void errq_pb_w_varint(struct errq_pb_buf *w, uint64_t v);
void errq_pb_w_le(struct errq_pb_buf *w, uint64_t v, int bytes); /* little-endian, 1..8 bytes */
void errq_pb_w_tag(struct errq_pb_buf *w, unsigned field, enum errq_pb_wire wt);
void errq_pb_w_uint(struct errq_pb_buf *w, unsigned field, uint64_t v); /* a varint field */
void errq_pb_w_len(struct errq_pb_buf *w, unsigned field, const void *p, size_t n);

/* One top-level field: its number and wire type, and its value (varint and fixed) or its
 * bytes (length-delimited). */
struct errq_pb_field {
	uint64_t field;
	enum errq_pb_wire wt;
	uint64_t v;
	const uint8_t *data;
	size_t len;
};

/* Reads the field at *p and advances past it.  Returns 1 with *f filled, 0 at end, -1 when
 * the bytes are not well-formed (a truncated field, a length past the end, a group or an
 * unknown wire type). */
int errq_pb_next(const uint8_t **p, const uint8_t *end, struct errq_pb_field *f);
#endif
