/* svc_common.c: see svc_common.h. */
#include "svc_common.h"

#include <string.h>

#include "errq_str.h"
#include "services.h"
#include "storage.h"
#include "errq_banned.h"

static void reader_close(void *p)
{
	store_close(p);
}

int svc_readers_init(struct svc_readers *r, const char *db_path)
{
	r->db_path = db_path;
	return pthread_key_create(&r->key, reader_close) ? -1 : 0;
}

struct store *svc_reader(struct svc_readers *r, char *details, size_t dsz)
{
	struct store *s = pthread_getspecific(r->key);
	if (s)
		return s;
	struct store_opts o = {.path = r->db_path, .readonly = true, .busy_timeout_ms = 1000};
	char err[512];
	if (store_open(&s, &o, err, sizeof(err))) {
		errq_snprintf(details, dsz, "%s", err);
		return NULL;
	}
	pthread_setspecific(r->key, s);
	return s;
}

void svc_readers_destroy(struct svc_readers *r)
{
	pthread_key_delete(r->key);
}

void build_init(struct build *b)
{
	errq_arena_init(&b->a, 64 * 1024, SVC_ARENA_LIMIT);
	errq_arena_pbc(&b->a, &b->pa);
}

char *bstr(struct build *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	char *d = errq_arena_alloc(&b->a, n + 1);
	if (d) {
		if (n)
			memcpy(d, s, n);
		d[n] = '\0';
	}
	return d ? d : (char *)"";
}

void *svc_decode(struct build *b, const ProtobufCMessageDescriptor *d, grpc_slice req, char *details, size_t dsz)
{
	void *m = protobuf_c_message_unpack(d, &b->pa, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	if (!m)
		errq_snprintf(details, dsz, "cannot decode %s", d->short_name);
	return m;
}

grpc_status_code svc_oom(char *details, size_t dsz)
{
	errq_snprintf(details, dsz, "out of memory");
	return GRPC_STATUS_RESOURCE_EXHAUSTED;
}

grpc_status_code svc_query_failed(struct store *s, char *details, size_t dsz)
{
	errq_snprintf(details, dsz, "query failed: %s", store_errmsg(s));
	return store_last_errclass(s) == STORE_ERR_UNAVAILABLE ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_INTERNAL;
}

grpc_status_code svc_listed(struct store *s, int rc, bool oom, char *details, size_t dsz)
{
	if (rc)
		return svc_query_failed(s, details, dsz);
	return oom ? svc_oom(details, dsz) : GRPC_STATUS_OK;
}

grpc_status_code svc_check_cursor(ProtobufCBinaryData cursor, size_t len, char *details, size_t dsz)
{
	if (cursor.len == 0 || cursor.len == len)
		return GRPC_STATUS_OK;
	errq_snprintf(details, dsz, "bad cursor: %zu bytes", cursor.len);
	return GRPC_STATUS_INVALID_ARGUMENT;
}

grpc_status_code svc_check_globs(const char *error_type, const char *error_code, const char *task, char *details,
				 size_t dsz)
{
	const char *const names[] = {"error_type", "error_code", "task"}, *const globs[] = {error_type, error_code, task};
	for (size_t i = 0; i < 3; i++) {
		if (globs[i] && strlen(globs[i]) > SVC_GLOB_MAX) {
			errq_snprintf(details, dsz, "%s glob is longer than %d bytes", names[i], SVC_GLOB_MAX);
			return GRPC_STATUS_INVALID_ARGUMENT;
		}
	}
	return GRPC_STATUS_OK;
}

/* the storage's bound on a filter's glob is what svc_glob can make */
_Static_assert(SVC_GLOB_BUFSZ - 1 <= STORE_GLOB_MAX, "STORE_GLOB_MAX below the longest svc_glob");

void svc_glob(const char *in, char out[SVC_GLOB_BUFSZ])
{
	size_t gl = 0;
	/* the bound only guards an unchecked glob (cut); a checked one always fits */
	for (const char *p = in ? in : ""; *p && gl + 4 <= SVC_GLOB_BUFSZ; p++) {
		if (*p == '[') {
			memcpy(out + gl, "[[]", 3);
			gl += 3;
		} else {
			out[gl++] = *p;
		}
	}
	out[gl] = '\0';
}

grpc_status_code svc_page_open(struct svc_page *p, struct svc_readers *r, struct build *b, uint32_t limit,
			       size_t item_size, char *details, size_t dsz)
{
	if (!(p->s = svc_reader(r, details, dsz)))
		return GRPC_STATUS_UNAVAILABLE;
	p->limit = limit == 0 ? QUERY_DEFAULT_LIMIT : limit > QUERY_MAX_LIMIT ? QUERY_MAX_LIMIT : limit;
	if (!(p->items = errq_arena_alloc(&b->a, p->limit * item_size)))
		return svc_oom(details, dsz);
	return GRPC_STATUS_OK;
}

void svc_next_cursor(ProtobufCBinaryData *next, uint8_t *buf, size_t len, bool more, size_t n, uint64_t k0,
		     uint64_t k1)
{
	if (!more || !n)
		return;
	svc_put_be64(buf, k0);
	if (len == 16)
		svc_put_be64(buf + 8, k1);
	next->data = buf;
	next->len = len;
}
