/* svc_query.c: errq.v1.Query, the read API behind the errq CLI.
 *
 * Handlers run on the completion-queue threads.  Each thread opens its own read-only SQLite
 * connection on first use (pthread key; closed when the thread exits).  Every query is one
 * statement with a LIMIT and a keyset cursor, so no read transaction outlives a call.  A
 * response stops growing at QUERY_MAX_RESPONSE_BYTES (the cursor then points after the last
 * row sent), so a page of huge events cannot exhaust memory. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "errq/v1/query.pb-c.h"
#include "ingest.h"
#include <unistd.h>
#include "errq_grpc.h"
#include "errq_log.h"
#include "errq_str.h"
#include "services.h"
#include "storage.h"
#include "transport.h"

#define QUERY_MAX_RESPONSE_BYTES (4u << 20)

struct query_svc {
	struct query_svc_opts o; /* strings owned (copied) */
	char *db_path, *name, *durability, *storage;
	pthread_key_t key;
};

static void reader_close(void *p)
{
	store_close(p);
}

static struct store *reader(struct query_svc *q, char *details, size_t dsz)
{
	struct store *s = pthread_getspecific(q->key);
	if (s)
		return s;
	struct store_opts o = {.path = q->db_path, .readonly = true, .busy_timeout_ms = 1000};
	char err[512];
	if (store_open(&s, &o, err, sizeof(err))) {
		errq_snprintf(details, dsz, "%s", err);
		return NULL;
	}
	pthread_setspecific(q->key, s);
	return s;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* ---- ListEvents ---- */

struct events_ctx {
	Errq__V1__Event **items;
	Errq__V1__TaskFailure **extras; /* unpacked frames/details, owned, freed after packing */
	size_t n, cap, bytes;
	uint32_t limit;
	int64_t last_rowid;
	bool more, oom;
};

static int event_row(void *arg, const struct store_event *e)
{
	struct events_ctx *x = arg;
	/* stop before a row that would take the response past its cap (a first row always fits:
	 * the field limits bound one event far below it) */
	size_t approx = 512 + e->extra_len + (e->message ? strlen(e->message) : 0);
	if (x->n == x->limit || (x->n && x->bytes + approx > QUERY_MAX_RESPONSE_BYTES)) {
		x->more = true;
		return 1;
	}
	Errq__V1__Event *ev = calloc(1, sizeof(*ev));
	if (!ev) {
		x->oom = true;
		return 1;
	}
	errq__v1__event__init(ev);
	x->items[x->n] = ev;
	x->n++;
	ev->event_id.data = malloc(16);
	if (ev->event_id.data) {
		memcpy(ev->event_id.data, e->event_id, 16);
		ev->event_id.len = 16;
	}
	ev->time_unix_nano = e->time_ns;
	ev->received_at_unix_nano = e->received_ns;
	ev->service = dup_or_empty(e->service);
	ev->environment = dup_or_empty(e->environment);
	ev->release = dup_or_empty(e->release);
	ev->host = dup_or_empty(e->host);
	ev->task = dup_or_empty(e->task);
	ev->error_type = dup_or_empty(e->error_type);
	ev->error_code = dup_or_empty(e->error_code);
	ev->message = dup_or_empty(e->message);
	ev->fingerprint = dup_or_empty(e->fingerprint);
	ev->attempt = e->attempt;
	ev->handled = e->handled;
	if (!ev->event_id.data || !ev->service || !ev->environment || !ev->release || !ev->host || !ev->task ||
	    !ev->error_type || !ev->error_code || !ev->message || !ev->fingerprint) {
		x->oom = true;
		return 1;
	}
	if (e->truncated) {
		ev->truncated = calloc(STORE_TRUNC_NBITS, sizeof(char *));
		if (!ev->truncated) {
			x->oom = true;
			return 1;
		}
		for (int b = 0; b < STORE_TRUNC_NBITS; b++)
			if (e->truncated & (1u << b))
				ev->truncated[ev->n_truncated++] = (char *)store_trunc_name(b);
	}
	if (e->extra && e->extra_len) {
		Errq__V1__TaskFailure *tf = errq__v1__task_failure__unpack(NULL, e->extra_len, e->extra);
		x->extras[x->n - 1] = tf;
		if (tf) {
			ev->n_frames = tf->n_frames;
			ev->frames = tf->frames;
			/* TaskFailure.DetailsEntry and Event.DetailsEntry have the same layout */
			ev->n_details = tf->n_details;
			ev->details = (Errq__V1__Event__DetailsEntry **)tf->details;
		}
	}
	x->bytes += errq__v1__event__get_packed_size(ev);
	x->last_rowid = e->rowid;
	return 0;
}

static void events_ctx_free(struct events_ctx *x)
{
	for (size_t i = 0; i < x->n; i++) {
		Errq__V1__Event *ev = x->items[i];
		free(ev->event_id.data);
		free(ev->service);
		free(ev->environment);
		free(ev->release);
		free(ev->host);
		free(ev->task);
		free(ev->error_type);
		free(ev->error_code);
		free(ev->message);
		free(ev->fingerprint);
		free(ev->truncated); /* the names are static */
		if (x->extras[i])
			errq__v1__task_failure__free_unpacked(x->extras[i], NULL);
		free(ev);
	}
	free(x->items);
	free(x->extras);
}

static uint32_t clamp_limit(uint32_t l)
{
	return l == 0 ? QUERY_DEFAULT_LIMIT : l > QUERY_MAX_LIMIT ? QUERY_MAX_LIMIT : l;
}

static grpc_status_code list_events(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct query_svc *q = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct events_ctx x;
	memset(&x, 0, sizeof(x));
	Errq__V1__ListEventsRequest *in =
	    errq__v1__list_events_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	if (!in) {
		errq_snprintf(details, dsz, "cannot decode ListEventsRequest");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (in->cursor.len != 0 && in->cursor.len != 8) {
		errq_snprintf(details, dsz, "bad cursor: %zu bytes", in->cursor.len);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	struct store *s = reader(q, details, dsz);
	if (!s) {
		st = GRPC_STATUS_UNAVAILABLE;
		goto out;
	}
	x.limit = clamp_limit(in->limit);
	x.items = calloc(x.limit, sizeof(*x.items));
	x.extras = calloc(x.limit, sizeof(*x.extras));
	if (!x.items || !x.extras) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		errq_snprintf(details, dsz, "out of memory");
		goto out;
	}
	struct store_event_filter f = {
	    .service = in->service,
	    .fingerprint = in->fingerprint,
	    .since_ns = in->since_unix_nano,
	    .before_rowid = in->cursor.len == 8 ? (int64_t)get_be64(in->cursor.data) : 0,
	    .limit = x.limit + 1,
	};
	if (store_list_events(s, &f, event_row, &x)) {
		errq_snprintf(details, dsz, "query failed: %s", store_errmsg(s));
		st = GRPC_STATUS_INTERNAL;
		goto out;
	}
	if (x.oom) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		errq_snprintf(details, dsz, "out of memory");
		goto out;
	}
	Errq__V1__ListEventsResponse out = ERRQ__V1__LIST_EVENTS_RESPONSE__INIT;
	uint8_t cursor[8];
	out.n_events = x.n;
	out.events = x.items;
	if (x.more && x.n) {
		put_be64(cursor, (uint64_t)x.last_rowid);
		out.next_cursor.data = cursor;
		out.next_cursor.len = 8;
	}
	*resp = errq_bb_from_msg(&out.base);
out:
	events_ctx_free(&x);
	errq__v1__list_events_request__free_unpacked(in, NULL);
	return st;
}

/* ---- ListGroups ---- */

struct groups_ctx {
	Errq__V1__Group **items;
	size_t n;
	uint32_t limit;
	uint64_t last_seen;
	int64_t last_id;
	bool more, oom;
};

static int group_row(void *arg, const struct store_group *g)
{
	struct groups_ctx *x = arg;
	if (x->n == x->limit) {
		x->more = true;
		return 1;
	}
	Errq__V1__Group *o = calloc(1, sizeof(*o));
	if (!o) {
		x->oom = true;
		return 1;
	}
	errq__v1__group__init(o);
	x->items[x->n++] = o;
	o->fingerprint = dup_or_empty(g->fingerprint);
	o->service = dup_or_empty(g->service);
	o->environment = dup_or_empty(g->environment);
	o->error_type = dup_or_empty(g->error_type);
	o->error_code = dup_or_empty(g->error_code);
	o->message = dup_or_empty(g->message);
	o->status = dup_or_empty(g->status);
	o->count = g->count;
	o->total = g->total;
	o->first_seen_unix_nano = g->first_seen_ns;
	o->last_seen_unix_nano = g->last_seen_ns;
	if (!o->fingerprint || !o->service || !o->environment || !o->error_type || !o->error_code ||
	    !o->message || !o->status)
		x->oom = true;
	x->last_seen = g->last_seen_ns;
	x->last_id = g->id;
	return x->oom;
}

static grpc_status_code list_groups(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct query_svc *q = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct groups_ctx x;
	memset(&x, 0, sizeof(x));
	Errq__V1__ListGroupsRequest *in =
	    errq__v1__list_groups_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	if (!in) {
		errq_snprintf(details, dsz, "cannot decode ListGroupsRequest");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (in->cursor.len != 0 && in->cursor.len != 16) {
		errq_snprintf(details, dsz, "bad cursor: %zu bytes", in->cursor.len);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	struct store *s = reader(q, details, dsz);
	if (!s) {
		st = GRPC_STATUS_UNAVAILABLE;
		goto out;
	}
	x.limit = clamp_limit(in->limit);
	if (!(x.items = calloc(x.limit, sizeof(*x.items)))) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		errq_snprintf(details, dsz, "out of memory");
		goto out;
	}
	struct store_group_filter f = {
	    .service = in->service,
	    .since_ns = in->since_unix_nano,
	    .before_last_seen = in->cursor.len == 16 ? get_be64(in->cursor.data) : 0,
	    .before_id = in->cursor.len == 16 ? (int64_t)get_be64(in->cursor.data + 8) : 0,
	    .limit = x.limit + 1,
	};
	if (store_list_groups(s, &f, group_row, &x)) {
		errq_snprintf(details, dsz, "query failed: %s", store_errmsg(s));
		st = GRPC_STATUS_INTERNAL;
		goto out;
	}
	if (x.oom) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		errq_snprintf(details, dsz, "out of memory");
		goto out;
	}
	Errq__V1__ListGroupsResponse o = ERRQ__V1__LIST_GROUPS_RESPONSE__INIT;
	uint8_t cursor[16];
	o.n_groups = x.n;
	o.groups = x.items;
	if (x.more && x.n) {
		put_be64(cursor, x.last_seen);
		put_be64(cursor + 8, (uint64_t)x.last_id);
		o.next_cursor.data = cursor;
		o.next_cursor.len = 16;
	}
	*resp = errq_bb_from_msg(&o.base);
out:
	for (size_t i = 0; i < x.n; i++) {
		Errq__V1__Group *g = x.items[i];
		free(g->fingerprint);
		free(g->service);
		free(g->environment);
		free(g->error_type);
		free(g->error_code);
		free(g->message);
		free(g->status);
		free(g);
	}
	free(x.items);
	errq__v1__list_groups_request__free_unpacked(in, NULL);
	return st;
}

/* Resident set size of this process, from /proc/self/statm. */
static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static grpc_status_code status(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct query_svc *q = ctx;
	Errq__V1__StatusResponse o = ERRQ__V1__STATUS_RESPONSE__INIT;
	struct ingest_stats st;
	ingest_get_stats(q->o.ig, &st);
	o.version = (char *)ERRQ_VERSION_STRING;
	o.name = q->name;
	o.durability = q->durability;
	o.storage = q->storage;
	o.started_at_unix_nano = q->o.started_ns;
	o.events_stored = st.events_stored;
	o.events_duplicate = st.events_duplicate;
	o.commits = st.commits;
	o.store_errors = st.store_errors;
	o.ingest_queue_batches = (uint32_t)st.queued_batches;
	o.ingest_queue_capacity = q->o.queue_capacity;
	o.ingest_queue_max_batches = (uint32_t)st.max_queued_batches;
	o.ingest_queue_bytes = st.queued_bytes;
	o.parked = (uint32_t)st.parked;
	o.parked_total = st.parked_total;
	o.streams_active = (uint32_t)report_svc_streams(q->o.rs);
	o.rss_bytes = rss_bytes();
	if (q->db_path) {
		struct store *s = reader(q, details, dsz);
		struct store_totals t;
		if (!s)
			return GRPC_STATUS_UNAVAILABLE;
		if (store_get_totals(s, &t)) {
			errq_snprintf(details, dsz, "query failed: %s", store_errmsg(s));
			return GRPC_STATUS_INTERNAL;
		}
		o.events_total = t.events;
		o.groups_total = t.groups;
		o.database_bytes = t.db_bytes;
	}
	*resp = errq_bb_from_msg(&o.base);
	if (!*resp) {
		errq_snprintf(details, dsz, "out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	return GRPC_STATUS_OK;
}

static grpc_status_code no_storage(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	errq_snprintf(details, dsz, "this collector runs with 'storage: none' and keeps no events");
	return GRPC_STATUS_FAILED_PRECONDITION;
}

struct query_svc *query_svc_new(const struct query_svc_opts *o)
{
	struct query_svc *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->o = *o;
	q->db_path = o->db_path ? strdup(o->db_path) : NULL;
	q->name = strdup(o->name ? o->name : "");
	q->durability = strdup(o->durability ? o->durability : "");
	q->storage = strdup(o->storage ? o->storage : "");
	if ((o->db_path && !q->db_path) || !q->name || !q->durability || !q->storage ||
	    pthread_key_create(&q->key, reader_close)) {
		free(q->db_path);
		free(q->name);
		free(q->durability);
		free(q->storage);
		free(q);
		return NULL;
	}
	return q;
}

int query_svc_register(struct query_svc *q, struct transport *t)
{
	bool none = q->db_path == NULL;
	if (transport_add_unary(t, "/errq.v1.Query/ListEvents", none ? no_storage : list_events, q) ||
	    transport_add_unary(t, "/errq.v1.Query/ListGroups", none ? no_storage : list_groups, q) ||
	    transport_add_unary(t, "/errq.v1.Query/Status", status, q))
		return -1;
	return 0;
}

void query_svc_free(struct query_svc *q)
{
	if (!q)
		return;
	/* the queue threads have exited: their readers were closed by the key's destructor */
	pthread_key_delete(q->key);
	free(q->db_path);
	free(q->name);
	free(q->durability);
	free(q->storage);
	free(q);
}
