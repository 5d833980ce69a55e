#include "errq_pb.h"

#include <string.h>

#include "errq_banned.h"

void errq_pb_w_bytes(struct errq_pb_buf *w, const void *p, size_t n)
{
	if (!w->overflow && n <= w->cap - w->len) {
		if (n)
			memcpy(w->p + w->len, p, n);
	} else {
		w->overflow = true;
	}
	w->len += n;
}

void errq_pb_w_varint(struct errq_pb_buf *w, uint64_t v)
{
	uint8_t b[ERRQ_PB_VARINT_MAX];
	errq_pb_w_bytes(w, b, (size_t)(errq_pb_put_varint(b, v) - b));
}

void errq_pb_w_le(struct errq_pb_buf *w, uint64_t v, int bytes)
{
	uint8_t b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	errq_pb_w_bytes(w, b, (size_t)bytes);
}

void errq_pb_w_tag(struct errq_pb_buf *w, unsigned field, enum errq_pb_wire wt)
{
	errq_pb_w_varint(w, ERRQ_PB_TAG(field, wt));
}

void errq_pb_w_uint(struct errq_pb_buf *w, unsigned field, uint64_t v)
{
	errq_pb_w_tag(w, field, ERRQ_PB_VARINT);
	errq_pb_w_varint(w, v);
}

void errq_pb_w_len(struct errq_pb_buf *w, unsigned field, const void *p, size_t n)
{
	errq_pb_w_tag(w, field, ERRQ_PB_LEN);
	errq_pb_w_varint(w, n);
	errq_pb_w_bytes(w, p, n);
}

int errq_pb_next(const uint8_t **p, const uint8_t *end, struct errq_pb_field *f)
{
	uint64_t key;
	if (*p >= end)
		return 0;
	if (errq_pb_get_varint(p, end, &key))
		return -1;
	f->field = key >> 3; /* not checked: a decoder behind this refuses a bad number */
	f->wt = (enum errq_pb_wire)(key & 7);
	f->v = 0;
	f->data = NULL;
	f->len = 0;
	switch (key & 7) {
	case ERRQ_PB_VARINT:
		return errq_pb_get_varint(p, end, &f->v) ? -1 : 1;
	case ERRQ_PB_FIXED64:
	case ERRQ_PB_FIXED32: {
		size_t n = (key & 7) == ERRQ_PB_FIXED64 ? 8 : 4;
		if ((size_t)(end - *p) < n)
			return -1;
		for (size_t i = 0; i < n; i++)
			f->v |= (uint64_t)(*p)[i] << (8 * i);
		*p += n;
		return 1;
	}
	case ERRQ_PB_LEN:
		if (errq_pb_get_varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
			return -1;
		f->data = *p;
		f->len = (size_t)f->v;
		*p += f->len;
		return 1;
	default: /* groups (3, 4) are not used by errq's protos; 6 and 7 do not exist */
		return -1;
	}
}
