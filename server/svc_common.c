/* svc_common.c: see svc_common.h. */
#include "svc_common.h"

#include <string.h>

#include "errq_str.h"
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
	return GRPC_STATUS_INTERNAL;
}
