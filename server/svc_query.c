/* svc_query.c: errq.v1.Query, the read API behind the errq CLI (and Status, SetGroupStatus).
 *
 * Reads run on the completion-queue threads.  Each thread opens its own read-only SQLite
 * connection on first use (pthread key; closed when the thread exits).  Every query is one
 * short statement (or, for a group's chain, one short read transaction) with a LIMIT and a
 * keyset cursor, so no read outlives a call and none pins the WAL.  A response is built in
 * one arena and stops growing at QUERY_MAX_RESPONSE_BYTES (the cursor then points after the
 * last row sent).  SetGroupStatus is a write: it goes to the ingest writer as a job and is
 * answered from the writer thread (an asynchronous unary call).  Backup copies the database
 * on a thread of its own (svc_backup.c) and answers from there. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errq/v1/query.pb-c.h"
#include "errq_arena.h"
#include "errq_grpc.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "grouping.h"
#include "alerts.h"
#include "ingest.h"
#include "svc_backup.h"
#include "svc_common.h"
#include "metrics.h"
#include "overflow.h"
#include "services.h"
#include "storage.h"
#include "store_overflow.h"
#include "tail.h"
#include "transport.h"
#include "fleet.h"
#include "storage_alerts.h"

#define QUERY_MAX_RESPONSE_BYTES (4u << 20)
#define QUERY_HISTOGRAM_DEFAULT 60
#define QUERY_HISTOGRAM_MAX 1440
#define NS_PER_MINUTE 60000000000ULL

struct query_svc {
	struct query_svc_opts o; /* strings below are owned copies */
	char *db_path, *name, *durability, *storage;
	struct svc_readers readers;
	struct backup_svc *backup; /* Backup (svc_backup.c) */
};

/* ---- messages built in an arena ---- */

static Errq__V1__Event *event_msg(struct build *b, const struct store_event *e)
{
	Errq__V1__Event *ev = errq_arena_alloc(&b->a, sizeof(*ev));
	if (!ev)
		return NULL;
	errq__v1__event__init(ev);
	ev->event_id.data = errq_arena_alloc(&b->a, 16);
	if (ev->event_id.data) {
		memcpy(ev->event_id.data, e->event_id, 16);
		ev->event_id.len = 16;
	}
	ev->time_unix_nano = e->time_ns;
	ev->received_at_unix_nano = e->received_ns;
	ev->service = bstr(b, e->service);
	ev->environment = bstr(b, e->environment);
	ev->release = bstr(b, e->release);
	ev->host = bstr(b, e->host);
	ev->task = bstr(b, e->task);
	ev->error_type = bstr(b, e->error_type);
	ev->error_code = bstr(b, e->error_code);
	ev->message = bstr(b, e->message);
	ev->fingerprint = bstr(b, e->fingerprint);
	ev->attempt = e->attempt;
	ev->handled = e->handled;
	if (e->truncated && (ev->truncated = errq_arena_alloc(&b->a, STORE_TRUNC_NBITS * sizeof(char *))))
		for (int i = 0; i < STORE_TRUNC_NBITS; i++)
			if (e->truncated & (1u << i))
				ev->truncated[ev->n_truncated++] = (char *)store_trunc_name(i);
	if (e->extra && e->extra_len) {
		/* frames and details, decoded into the same arena */
		Errq__V1__TaskFailure *tf = errq__v1__task_failure__unpack(&b->pa, e->extra_len, e->extra);
		if (tf) {
			ev->n_frames = tf->n_frames;
			ev->frames = tf->frames;
			/* TaskFailure.DetailsEntry and Event.DetailsEntry have the same layout */
			ev->n_details = tf->n_details;
			ev->details = (Errq__V1__Event__DetailsEntry **)tf->details;
		}
	}
	return b->a.failed ? NULL : ev;
}

static Errq__V1__Group *group_msg(struct build *b, const struct store_group *g)
{
	Errq__V1__Group *o = errq_arena_alloc(&b->a, sizeof(*o));
	if (!o)
		return NULL;
	errq__v1__group__init(o);
	o->fingerprint = bstr(b, g->fingerprint);
	o->service = bstr(b, g->service);
	o->environment = bstr(b, g->environment);
	o->error_type = bstr(b, g->error_type);
	o->error_code = bstr(b, g->error_code);
	o->message = bstr(b, g->message);
	o->status = bstr(b, g->status);
	o->count = g->count;
	o->total = g->total;
	o->handled = g->handled;
	o->unhandled = g->total >= g->handled ? g->total - g->handled : 0;
	o->first_seen_unix_nano = g->first_seen_ns;
	o->last_seen_unix_nano = g->last_seen_ns;
	o->resolved_at_unix_nano = g->resolved_at_ns;
	o->regression = g->regression;
	o->overflow = g->overflow;
	o->dropped = g->dropped;
	o->grouping_version = (uint32_t)g->grouping_version;
	return b->a.failed ? NULL : o;
}



/* ---- ListEvents ---- */

struct events_ctx {
	struct build *b;
	Errq__V1__Event **items;
	size_t n, bytes;
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
	Errq__V1__Event *ev = event_msg(x->b, e);
	if (!ev) {
		x->oom = true;
		return 1;
	}
	x->items[x->n++] = ev;
	x->bytes += approx;
	x->last_rowid = e->rowid;
	return 0;
}

static grpc_status_code list_events(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct query_svc *q = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	Errq__V1__ListEventsRequest *in = svc_decode(&b, &errq__v1__list_events_request__descriptor, req, details, dsz);
	struct events_ctx x = {.b = &b};
	struct svc_page pg;
	if (!in) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if ((st = svc_check_cursor(in->cursor, 8, details, dsz)) != GRPC_STATUS_OK ||
	    (st = svc_check_globs(in->error_type, in->error_code, in->task, details, dsz)) != GRPC_STATUS_OK ||
	    (st = svc_page_open(&pg, &q->readers, &b, in->limit, sizeof(*x.items), details, dsz)) != GRPC_STATUS_OK)
		goto out;
	x.limit = pg.limit;
	x.items = pg.items;
	char type[SVC_GLOB_BUFSZ], code[SVC_GLOB_BUFSZ], task[SVC_GLOB_BUFSZ];
	svc_glob(in->error_type, type);
	svc_glob(in->error_code, code);
	svc_glob(in->task, task);
	struct store_event_filter f = {
	    .service = in->service,
	    .environment = in->environment,
	    .fingerprint = in->fingerprint,
	    .error_type = type,
	    .error_code = code,
	    .task = task,
	    .since_ns = in->since_unix_nano,
	    .before_rowid = in->cursor.len == 8 ? (int64_t)svc_get_be64(in->cursor.data) : 0,
	    .limit = x.limit + 1,
	};
	int listed = store_list_events(pg.s, &f, event_row, &x);
	if ((st = svc_listed(pg.s, listed, x.oom, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	Errq__V1__ListEventsResponse o = ERRQ__V1__LIST_EVENTS_RESPONSE__INIT;
	uint8_t cursor[8];
	o.n_events = x.n;
	o.events = x.items;
	svc_next_cursor(&o.next_cursor, cursor, sizeof(cursor), x.more, x.n, (uint64_t)x.last_rowid, 0);
	*resp = errq_bb_from_msg(&o.base);
out:
	errq_arena_release(&b.a);
	return st;
}

/* ---- ListGroups ---- */

struct groups_ctx {
	struct build *b;
	Errq__V1__Group **items;
	size_t n;
	uint32_t limit;
	uint64_t last_key;
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
	Errq__V1__Group *o = group_msg(x->b, g);
	if (!o) {
		x->oom = true;
		return 1;
	}
	x->items[x->n++] = o;
	x->last_key = g->sort_key;
	x->last_id = g->id;
	return 0;
}

static bool valid_status(const char *s)
{
	return !*s || !strcmp(s, "unresolved") || !strcmp(s, "resolved") || !strcmp(s, "ignored");
}

static grpc_status_code list_groups(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct query_svc *q = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	struct groups_ctx x = {.b = &b};
	struct svc_page pg;
	Errq__V1__ListGroupsRequest *in = svc_decode(&b, &errq__v1__list_groups_request__descriptor, req, details, dsz);
	if (!in) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if ((st = svc_check_cursor(in->cursor, 16, details, dsz)) != GRPC_STATUS_OK ||
	    (st = svc_check_globs(in->error_type, in->error_code, NULL, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	if (!valid_status(in->status)) {
		errq_snprintf(details, dsz, "unknown status '%.64s': unresolved, resolved or ignored", in->status);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (in->until_unix_nano && in->until_unix_nano <= in->since_unix_nano) {
		errq_snprintf(details, dsz, "until must be after since");
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if ((st = svc_page_open(&pg, &q->readers, &b, in->limit, sizeof(*x.items), details, dsz)) != GRPC_STATUS_OK)
		goto out;
	x.limit = pg.limit;
	x.items = pg.items;
	char type[SVC_GLOB_BUFSZ], code[SVC_GLOB_BUFSZ];
	svc_glob(in->error_type, type);
	svc_glob(in->error_code, code);
	struct store_group_filter f = {
	    .service = in->service,
	    .environment = in->environment,
	    .error_type = type,
	    .error_code = code,
	    .status = in->status,
	    .since_ns = in->since_unix_nano,
	    .until_ns = in->until_unix_nano,
	    .sort = in->sort == ERRQ__V1__GROUP_SORT__GROUP_SORT_COUNT        ? STORE_SORT_COUNT
		    : in->sort == ERRQ__V1__GROUP_SORT__GROUP_SORT_FIRST_SEEN ? STORE_SORT_FIRST_SEEN
									      : STORE_SORT_LAST_SEEN,
	    .before_key = in->cursor.len == 16 ? svc_get_be64(in->cursor.data) : 0,
	    .before_id = in->cursor.len == 16 ? (int64_t)svc_get_be64(in->cursor.data + 8) : 0,
	    .limit = x.limit + 1,
	};
	int listed = store_list_groups(pg.s, &f, group_row, &x);
	if ((st = svc_listed(pg.s, listed, x.oom, details, dsz)) != GRPC_STATUS_OK)
		goto out;
	Errq__V1__ListGroupsResponse o = ERRQ__V1__LIST_GROUPS_RESPONSE__INIT;
	uint8_t cursor[16];
	o.n_groups = x.n;
	o.groups = x.items;
	svc_next_cursor(&o.next_cursor, cursor, sizeof(cursor), x.more, x.n, x.last_key, (uint64_t)x.last_id);
	*resp = errq_bb_from_msg(&o.base);
out:
	errq_arena_release(&b.a);
	return st;
}

/* ---- GetGroup ---- */

struct one_group {
	struct build *b;
	Errq__V1__Group *g;
	int64_t id;
};

static int one_group_cb(void *arg, const struct store_group *g)
{
	struct one_group *x = arg;
	x->g = group_msg(x->b, g);
	x->id = g->id;
	return 0;
}

struct one_event {
	struct build *b;
	Errq__V1__Event *e;
	char fp[FINGERPRINT_HEX_LEN + 1]; /* explain: the fingerprint computed now */
	int basis;
	int grouping_version; /* explain: of the group the event was stored in */
	char explain[2048];
};

static int one_event_cb(void *arg, const struct store_event *e)
{
	struct one_event *x = arg;
	x->e = event_msg(x->b, e);
	return 1;
}

static grpc_status_code get_group(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct query_svc *q = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	struct store *s;
	Errq__V1__GetGroupRequest *in = svc_decode(&b, &errq__v1__get_group_request__descriptor, req, details, dsz);
	if (!in || !in->fingerprint[0]) {
		if (in)
			errq_snprintf(details, dsz, "fingerprint is empty");
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (!(s = svc_reader(&q->readers, details, dsz))) {
		st = GRPC_STATUS_UNAVAILABLE;
		goto out;
	}
	struct store_group_filter f = {.since_ns = in->since_unix_nano, .environment = in->environment};
	struct one_group og = {.b = &b};
	int r = store_get_group(s, in->fingerprint, &f, one_group_cb, &og);
	if (r < 0) {
		st = svc_query_failed(s, details, dsz);
		goto out;
	}
	if (r == 0) {
		errq_snprintf(details, dsz, "no group '%.64s'", in->fingerprint);
		st = GRPC_STATUS_NOT_FOUND;
		goto out;
	}
	uint32_t n = in->histogram_minutes ? in->histogram_minutes : QUERY_HISTOGRAM_DEFAULT;
	if (n > QUERY_HISTOGRAM_MAX)
		n = QUERY_HISTOGRAM_MAX;
	int64_t now_min = (int64_t)(errq_now_ns() / NS_PER_MINUTE);
	int64_t first = now_min - (int64_t)n + 1;
	uint64_t *counts = errq_arena_alloc(&b.a, n * sizeof(*counts));
	if (!counts || !og.g) {
		st = svc_oom(details, dsz);
		goto out;
	}
	if (store_group_histogram(s, og.id, in->environment, first, n, counts)) {
		st = svc_query_failed(s, details, dsz);
		goto out;
	}
	struct one_event oe = {.b = &b};
	struct store_event_filter ef = {.fingerprint = in->fingerprint, .limit = 1};
	if (store_list_events(s, &ef, one_event_cb, &oe)) {
		st = svc_query_failed(s, details, dsz);
		goto out;
	}
	Errq__V1__GetGroupResponse o = ERRQ__V1__GET_GROUP_RESPONSE__INIT;
	o.group = og.g;
	o.histogram_start_unix_nano = (uint64_t)first * NS_PER_MINUTE;
	o.n_minute_counts = n;
	o.minute_counts = counts;
	o.latest = oe.e;
	*resp = errq_bb_from_msg(&o.base);
out:
	errq_arena_release(&b.a);
	return st;
}

/* ---- GetEvent, ExplainEvent ---- */

static int explain_cb(void *arg, const struct store_event *e)
{
	struct one_event *x = arg;
	x->e = event_msg(x->b, e);
	if (!x->e)
		return 1;
	/* recompute the fingerprint from what was stored, with the grouping of this collector */
	Errq__V1__TaskFailure tf = ERRQ__V1__TASK_FAILURE__INIT;
	tf.service = x->e->service;
	tf.error_type = x->e->error_type;
	tf.message = x->e->message;
	tf.n_frames = x->e->n_frames;
	tf.frames = x->e->frames;
	if (e->extra && e->extra_len) {
		Errq__V1__TaskFailure *ex = errq__v1__task_failure__unpack(&x->b->pa, e->extra_len, e->extra);
		if (ex)
			tf.fingerprint = ex->fingerprint;
	}
	x->basis = grouping_fingerprint(&tf, x->fp, x->explain, sizeof(x->explain));
	x->grouping_version = e->grouping_version;
	return 1;
}

static grpc_status_code event_common(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz,
				     bool explain)
{
	struct query_svc *q = ctx;
	grpc_status_code st = GRPC_STATUS_OK;
	struct build b;
	build_init(&b);
	struct store *s;
	Errq__V1__GetEventRequest *in = svc_decode(&b, &errq__v1__get_event_request__descriptor, req, details, dsz);
	if (!in || in->event_id.len != 16) {
		if (in)
			errq_snprintf(details, dsz, "event_id is %zu bytes, want 16", in->event_id.len);
		st = GRPC_STATUS_INVALID_ARGUMENT;
		goto out;
	}
	if (!(s = svc_reader(&q->readers, details, dsz))) {
		st = GRPC_STATUS_UNAVAILABLE;
		goto out;
	}
	struct one_event oe = {.b = &b};
	int r = store_get_event(s, in->event_id.data, explain ? explain_cb : one_event_cb, &oe);
	if (r < 0) {
		st = svc_query_failed(s, details, dsz);
		goto out;
	}
	if (r == 0) {
		char hex[33];
		errq_hex_encode(in->event_id.data, 16, hex);
		errq_snprintf(details, dsz, "no event %s (never stored, or deleted by retention)", hex);
		st = GRPC_STATUS_NOT_FOUND;
		goto out;
	}
	if (!oe.e) {
		st = svc_oom(details, dsz);
		goto out;
	}
	if (!explain) {
		*resp = errq_bb_from_msg(&oe.e->base);
		goto out;
	}
	static const char *const bases[] = {"client_fingerprint", "frames", "message"};
	Errq__V1__ExplainEventResponse o = ERRQ__V1__EXPLAIN_EVENT_RESPONSE__INIT;
	char *lines[64];
	o.event = oe.e;
	o.fingerprint = oe.e->fingerprint;
	/* the version that made the stored group (an older one's events may group elsewhere now) */
	o.grouping_version = oe.grouping_version > 0 ? (uint32_t)oe.grouping_version : GROUPING_VERSION;
	o.basis = (char *)bases[oe.basis];
	o.recomputed = oe.fp;
	for (char *p = oe.explain; *p && o.n_components < 64;) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		lines[o.n_components++] = p;
		if (!nl)
			break;
		p = nl + 1;
	}
	o.components = lines;
	*resp = errq_bb_from_msg(&o.base);
out:
	errq_arena_release(&b.a);
	return st;
}

static grpc_status_code get_event(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	return event_common(ctx, req, resp, details, dsz, false);
}

static grpc_status_code explain_event(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	return event_common(ctx, req, resp, details, dsz, true);
}

/* ---- SetGroupStatus: a write, on the writer thread ---- */

struct status_job {
	struct ingest_job job;
	struct unary_call *uc;
	char fingerprint[GROUPING_NORMALIZED_MAX];
	char status[16];
};

static void status_job_run(struct ingest_job *j, struct store *s)
{
	struct status_job *sj = (struct status_job *)j;
	char details[256] = "";
	grpc_status_code st = GRPC_STATUS_OK;
	grpc_byte_buffer *resp = NULL;
	struct build b;
	build_init(&b);
	if (!s) {
		st = GRPC_STATUS_FAILED_PRECONDITION;
		errq_snprintf(details, sizeof(details), "this collector runs with 'storage: none' and keeps no groups");
		goto out;
	}
	int r = store_set_group_status(s, sj->fingerprint, sj->status, errq_now_ns());
	if (r == 0) {
		st = GRPC_STATUS_NOT_FOUND;
		errq_snprintf(details, sizeof(details), "no group '%.64s'", sj->fingerprint);
		goto out;
	}
	struct store_group_filter f = {0};
	struct one_group og = {.b = &b};
	int got = r < 0 ? -1 : store_get_group(s, sj->fingerprint, &f, one_group_cb, &og);
	if (got != 1 || !og.g) {
		/* a database that cannot be reached (PostgreSQL's connection lost, the server shutting
		 * down or read-only after a failover) is worth a retry: UNAVAILABLE, as ingest answers */
		st = got < 0 && store_last_errclass(s) == STORE_ERR_UNAVAILABLE ? GRPC_STATUS_UNAVAILABLE
									       : GRPC_STATUS_INTERNAL;
		errq_snprintf(details, sizeof(details), "cannot set status: %s", store_errmsg(s));
		goto out;
	}
	errq_logkv(ERRQ_LOG_INFO, "group status set", "fingerprint", sj->fingerprint, "status", sj->status, NULL);
	resp = errq_bb_from_msg(&og.g->base);
out:
	errq_arena_release(&b.a);
	transport_unary_reply(sj->uc, st, details, resp);
	free(sj);
}

static void set_group_status(void *ctx, struct unary_call *uc, grpc_slice req)
{
	struct query_svc *q = ctx;
	Errq__V1__SetGroupStatusRequest *in =
	    errq__v1__set_group_status_request__unpack(NULL, GRPC_SLICE_LENGTH(req), GRPC_SLICE_START_PTR(req));
	char details[256];
	struct status_job *sj = NULL;
	if (!in) {
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, "cannot decode SetGroupStatusRequest", NULL);
		return;
	}
	if (!in->status[0] || !valid_status(in->status) || !in->fingerprint[0] ||
	    strlen(in->fingerprint) >= sizeof(sj->fingerprint)) {
		errq_snprintf(details, sizeof(details),
			      in->fingerprint[0] ? "unknown status '%.64s': unresolved, resolved or ignored"
						 : "fingerprint is empty",
			      in->status);
		transport_unary_reply(uc, GRPC_STATUS_INVALID_ARGUMENT, details, NULL);
		goto out;
	}
	if (!(sj = calloc(1, sizeof(*sj)))) {
		transport_unary_reply(uc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	sj->job.run = status_job_run;
	sj->uc = uc;
	errq_snprintf(sj->fingerprint, sizeof(sj->fingerprint), "%s", in->fingerprint);
	errq_snprintf(sj->status, sizeof(sj->status), "%s", in->status);
	if (ingest_run_job(q->o.ig, &sj->job)) {
		free(sj);
		transport_unary_reply(uc, GRPC_STATUS_UNAVAILABLE, "collector busy or shutting down", NULL);
	}
out:
	errq__v1__set_group_status_request__free_unpacked(in, NULL);
}

/* ---- Status ---- */

/* o with the services that passed groups_per_service (overflow.h) and their overflow groups'
 * counts read with s, encoded into *resp. */
static grpc_status_code status_overflow(struct query_svc *q, struct store *s, Errq__V1__StatusResponse *o,
					grpc_byte_buffer **resp, char *details, size_t dsz)
{
	grpc_status_code rc = GRPC_STATUS_OK;
	uint64_t more;
	struct overflow_service *list = malloc(sizeof(*list) * OVERFLOW_MAX_SERVICES);
	Errq__V1__ServiceOverflow *items = calloc(OVERFLOW_MAX_SERVICES, sizeof(*items));
	Errq__V1__ServiceOverflow **ptrs = calloc(OVERFLOW_MAX_SERVICES, sizeof(*ptrs));
	if (!list || !items || !ptrs) {
		rc = svc_oom(details, dsz);
		goto out;
	}
	size_t n = overflow_watch_list(q->o.overflow, list, OVERFLOW_MAX_SERVICES, &more);
	for (size_t i = 0; i < n; i++) {
		errq__v1__service_overflow__init(&items[i]);
		items[i].service = list[i].service;
		items[i].since_unix_nano = list[i].since_ns;
		if (store_overflow_group(s, list[i].service, &items[i].events) < 0) {
			rc = svc_query_failed(s, details, dsz);
			goto out;
		}
		ptrs[i] = &items[i];
	}
	o->overflow_services = ptrs;
	o->n_overflow_services = n;
	o->overflow_services_more = (uint32_t)(more > UINT32_MAX ? UINT32_MAX : more);
	*resp = errq_bb_from_msg(&o->base);
	if (!*resp)
		rc = svc_oom(details, dsz);
out:
	free(list);
	free(items);
	free(ptrs);
	return rc;
}

static grpc_status_code status(void *ctx, grpc_slice req, grpc_byte_buffer **resp, char *details, size_t dsz)
{
	struct query_svc *q = ctx;
	Errq__V1__StatusResponse o = ERRQ__V1__STATUS_RESPONSE__INIT;
	struct ingest_stats st;
	char leader[STORE_LEADER_NAME_MAX];
	ingest_get_stats(q->o.ig, &st);
	o.version = (char *)ERRQ_VERSION_STRING;
	o.name = q->name;
	o.durability = q->durability;
	o.storage = q->storage;
	o.started_at_unix_nano = q->o.started_ns;
	o.now_unix_nano = errq_now_ns();
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
	o.events_deleted = st.events_deleted;
	o.overflow_events = st.overflow_events;
	o.events_dropped = st.events_dropped;
	o.streams_active = (uint32_t)report_svc_streams(q->o.rs);
	o.tail_subscribers = (uint32_t)tail_hub_subscribers(q->o.tail);
	if (q->o.alerts) {
		struct alerts_stats as;
		alerts_get_stats(q->o.alerts, &as);
		const struct alerts_rules *r = alerts_rules_get(q->o.alerts);
		o.rules = (uint32_t)r->rs->n_rules;
		alerts_rules_put(q->o.alerts, r);
		o.circuits = as.circuits;
		o.circuits_open = as.circuits_open;
		o.alerts_fired = as.alerts_fired;
		o.alerts_resolved = as.alerts_resolved;
		o.deliveries_delivered = as.deliveries_delivered;
		o.deliveries_dead = as.deliveries_dead;
		o.deliveries_in_flight = as.pending_deliveries;
		o.failures_matched = as.failures_matched;
		o.overflow_failures = as.overflow_failures;
	}
	o.rss_bytes = metrics_rss_bytes();
	if (q->db_path) {
		struct store *s = svc_reader(&q->readers, details, dsz);
		struct store_totals t;
		if (!s)
			return GRPC_STATUS_UNAVAILABLE;
		if (store_get_totals(s, &t)) {
			return svc_query_failed(s, details, dsz);
		}
		o.events_total = t.events;
		o.events_dropped_total = t.dropped;
		o.groups_total = t.groups;
		o.database_bytes = t.db_bytes;
		struct store_leader ld;
		if (q->o.fleet && store_leader_get(s, &ld) == 0) { /* who leads, from the shared row */
			o.fleet = true;
			errq_snprintf(leader, sizeof(leader), "%s", ld.leader);
			o.fleet_leader = leader;
			o.fleet_epoch = ld.epoch;
			o.fleet_leading = fleet_epoch(q->o.fleet) == ld.epoch && ld.epoch;
		}
		if (q->o.overflow)
			return status_overflow(q, s, &o, resp, details, dsz);
	}
	*resp = errq_bb_from_msg(&o.base);
	return *resp ? GRPC_STATUS_OK : svc_oom(details, dsz);
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
	    !(q->backup = backup_svc_new(q->db_path)) || svc_readers_init(&q->readers, q->db_path)) {
		backup_svc_free(q->backup);
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
	    transport_add_unary(t, "/errq.v1.Query/GetGroup", none ? no_storage : get_group, q) ||
	    transport_add_unary(t, "/errq.v1.Query/GetEvent", none ? no_storage : get_event, q) ||
	    transport_add_unary(t, "/errq.v1.Query/ExplainEvent", none ? no_storage : explain_event, q) ||
	    transport_add_unary_async(t, "/errq.v1.Query/SetGroupStatus", set_group_status, q) ||
	    transport_add_unary(t, "/errq.v1.Query/Status", status, q) || backup_svc_register(q->backup, t))
		return -1;
	return 0;
}

void query_svc_free(struct query_svc *q)
{
	if (!q)
		return;
	/* the queue threads have exited: their readers were closed by the key's destructor */
	svc_readers_destroy(&q->readers);
	backup_svc_free(q->backup);
	free(q->db_path);
	free(q->name);
	free(q->durability);
	free(q->storage);
	free(q);
}
