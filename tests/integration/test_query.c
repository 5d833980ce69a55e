/* Integration: grouping, the Query API (groups, group, events, event, explain, status,
 * resolve/regression), pagination under load, tail, retention, and the caps — against a real
 * errqd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <cmocka.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

static struct errq_idgen G;

/* Subscribers to Tail, as errqd's Status counts them now. */
static uint32_t tail_subscribers(const char *addr)
{
	Errq__V1__StatusResponse *st = query_status(addr);
	assert_non_null(st);
	uint32_t n = st->tail_subscribers;
	errq__v1__status_response__free_unpacked(st, NULL);
	return n;
}

/* Events ListEvents returns now (up to 100). */
static size_t events_listed(const char *addr)
{
	Errq__V1__ListEventsResponse *e = query_events(addr, 100);
	assert_non_null(e);
	size_t n = e->n_events;
	errq__v1__list_events_response__free_unpacked(e, NULL);
	return n;
}

static void add_frame(Errq__V1__TaskFailure *tf, const char *fn, const char *file, uint32_t line, int in_app)
{
	tf->frames = realloc(tf->frames, (tf->n_frames + 1) * sizeof(*tf->frames));
	Errq__V1__Frame *f = calloc(1, sizeof(*f));
	errq__v1__frame__init(f);
	f->function = strdup(fn);
	f->file = strdup(file);
	f->line = line;
	f->in_app = in_app;
	tf->frames[tf->n_frames++] = f;
}

/* Reports n events built by the caller (and frees them); asserts they were all accepted. */
static void report(const char *addr, Errq__V1__TaskFailure **evs, size_t n)
{
	struct rawstream s;
	assert_int_equal(raw_open(&s, addr), 0);
	Errq__V1__ReportRequest r = ERRQ__V1__REPORT_REQUEST__INIT;
	r.seq = 1;
	r.n_failures = n;
	r.failures = evs;
	assert_int_equal(raw_send(&s, &r), 0);
	Errq__V1__ReportResponse *resp;
	assert_int_equal(raw_recv(&s, &resp, HARNESS_DEADLINE_MS), 0);
	assert_int_equal(resp->accepted, n);
	errq__v1__report_response__free_unpacked(resp, NULL);
	assert_int_equal(raw_finish(&s, NULL, 0), GRPC_STATUS_OK);
	raw_free(&s);
	for (size_t i = 0; i < n; i++)
		tevent_free(evs[i]);
}

/* A unary Query call that must answer OK: its response decoded as d (asserted). */
static void *query_ok(const char *addr, const char *method, const ProtobufCMessage *req,
		      const ProtobufCMessageDescriptor *d)
{
	grpc_slice out;
	char det[256];
	grpc_status_code st = query_call(addr, method, req, &out, det, sizeof(det));
	if (st != GRPC_STATUS_OK)
		fail_msg("%s: status %d: %s", method, (int)st, det);
	ProtobufCMessage *r = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
	grpc_slice_unref(out);
	assert_non_null(r);
	return r;
}

static Errq__V1__ListGroupsResponse *groups(const char *addr, const Errq__V1__ListGroupsRequest *req)
{
	return query_ok(addr, "/errq.v1.Query/ListGroups", &req->base, &errq__v1__list_groups_response__descriptor);
}

static Errq__V1__Group *find_group(Errq__V1__ListGroupsResponse *r, const char *type)
{
	for (size_t i = 0; i < r->n_groups; i++)
		if (strcmp(r->groups[i]->error_type, type) == 0)
			return r->groups[i];
	return NULL;
}

static void test_grouping_and_group_detail(void **state)
{
	struct errqd_proc D = {0};
	assert_int_equal(errqd_start(&D, NULL), 0);
	/* the same timeout from one function with varying numbers: one group; the same message
	 * from another function: a second group; another service: a third */
	Errq__V1__TaskFailure *evs[7];
	for (int i = 0; i < 4; i++) {
		char msg[96];
		errq_snprintf(msg, sizeof(msg), "payment provider timed out after %d ms (order %d)", 1000 * (i + 1), 4711 + i);
		evs[i] = tevent_new(&G, "checkout", "TimeoutError", msg);
		add_frame(evs[i], "handle_order", "orders.py", 88, 1);
		add_frame(evs[i], "charge_card", "payments.py", (uint32_t)(140 + i), 1);
	}
	for (int i = 4; i < 6; i++) {
		evs[i] = tevent_new(&G, "checkout", "TimeoutError", "payment provider timed out after 3000 ms (order 1)");
		add_frame(evs[i], "handle_refund", "refunds.py", 40, 1);
		add_frame(evs[i], "refund_card", "payments.py", 201, 1);
	}
	evs[6] = tevent_new(&G, "billing", "TimeoutError", "payment provider timed out after 3000 ms (order 1)");
	add_frame(evs[6], "charge_card", "payments.py", 140, 1);
	tevent_set(&evs[6]->environment, "prod");
	report(D.addr, evs, 7);

	Errq__V1__ListGroupsRequest lr = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	lr.service = "checkout";
	lr.sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_COUNT;
	Errq__V1__ListGroupsResponse *r = groups(D.addr, &lr);
	assert_int_equal(r->n_groups, 2);
	assert_int_equal(r->groups[0]->total, 4); /* sorted by count */
	assert_int_equal(r->groups[1]->total, 2);
	char fp[32];
	errq_snprintf(fp, sizeof(fp), "%s", r->groups[0]->fingerprint);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	/* --env counts only that environment's events and hides groups without any */
	lr.service = "";
	lr.environment = "prod";
	r = groups(D.addr, &lr);
	assert_int_equal(r->n_groups, 1);
	assert_string_equal(r->groups[0]->service, "billing");
	assert_int_equal(r->groups[0]->count, 1);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	/* a type glob */
	Errq__V1__ListGroupsRequest gr = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	gr.error_type = "Time*";
	r = groups(D.addr, &gr);
	assert_int_equal(r->n_groups, 3);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	gr.error_type = "Value*";
	r = groups(D.addr, &gr);
	assert_int_equal(r->n_groups, 0);
	errq__v1__list_groups_response__free_unpacked(r, NULL);

	/* one group: counts, histogram (its minutes add up to the count) and latest event */
	Errq__V1__GetGroupRequest g = ERRQ__V1__GET_GROUP_REQUEST__INIT;
	g.fingerprint = fp;
	g.histogram_minutes = 10;
	grpc_slice out;
	assert_int_equal(query_call(D.addr, "/errq.v1.Query/GetGroup", &g.base, &out, NULL, 0), GRPC_STATUS_OK);
	Errq__V1__GetGroupResponse *gg =
	    errq__v1__get_group_response__unpack(NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
	grpc_slice_unref(out);
	assert_non_null(gg);
	assert_int_equal(gg->group->total, 4);
	assert_int_equal(gg->n_minute_counts, 10);
	uint64_t sum = 0;
	for (size_t i = 0; i < gg->n_minute_counts; i++)
		sum += gg->minute_counts[i];
	assert_int_equal(sum, 4);
	assert_non_null(gg->latest);
	assert_non_null(strstr(gg->latest->message, "4000 ms")); /* the newest */
	assert_int_equal(gg->latest->n_frames, 2);

	/* explain: the frames made the fingerprint, and the collector still agrees */
	Errq__V1__GetEventRequest er = ERRQ__V1__GET_EVENT_REQUEST__INIT;
	er.event_id = gg->latest->event_id;
	assert_int_equal(query_call(D.addr, "/errq.v1.Query/ExplainEvent", &er.base, &out, NULL, 0), GRPC_STATUS_OK);
	Errq__V1__ExplainEventResponse *ex =
	    errq__v1__explain_event_response__unpack(NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
	grpc_slice_unref(out);
	assert_non_null(ex);
	assert_string_equal(ex->basis, "frames");
	assert_string_equal(ex->recomputed, fp);
	bool saw_frame = false;
	for (size_t i = 0; i < ex->n_components; i++)
		saw_frame |= strstr(ex->components[i], "charge_card in payments.py") != NULL;
	assert_true(saw_frame);
	errq__v1__explain_event_response__free_unpacked(ex, NULL);
	errq__v1__get_group_response__free_unpacked(gg, NULL);

	/* unknown group and event: NOT_FOUND */
	g.fingerprint = "0000000000000000";
	assert_int_equal(query_call(D.addr, "/errq.v1.Query/GetGroup", &g.base, &out, NULL, 0), GRPC_STATUS_NOT_FOUND);
	uint8_t zero[16] = {0};
	er.event_id.data = zero;
	er.event_id.len = 16;
	assert_int_equal(query_call(D.addr, "/errq.v1.Query/GetEvent", &er.base, &out, NULL, 0), GRPC_STATUS_NOT_FOUND);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

static Errq__V1__Group *set_status(const char *addr, const char *fp, const char *status)
{
	Errq__V1__SetGroupStatusRequest sr = ERRQ__V1__SET_GROUP_STATUS_REQUEST__INIT;
	sr.fingerprint = (char *)fp;
	sr.status = (char *)status;
	return query_ok(addr, "/errq.v1.Query/SetGroupStatus", &sr.base, &errq__v1__group__descriptor);
}

/* Starts D and reports one KeyError of service: the one group's fingerprint in fp. */
static void start_with_one_group(struct errqd_proc *D, const char *service, char fp[32])
{
	assert_int_equal(errqd_start(D, NULL), 0);
	Errq__V1__TaskFailure *e1[1] = {tevent_new(&G, service, "KeyError", "no key 'a'")};
	report(D->addr, e1, 1);
	Errq__V1__ListGroupsRequest lr = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	Errq__V1__ListGroupsResponse *r = groups(D->addr, &lr);
	assert_int_equal(r->n_groups, 1);
	errq_snprintf(fp, 32, "%s", r->groups[0]->fingerprint);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
}

static void test_resolve_then_regression(void **state)
{
	struct errqd_proc D = {0};
	char fp[32];
	start_with_one_group(&D, "svc-reg", fp);
	Errq__V1__ListGroupsRequest lr = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	Errq__V1__ListGroupsResponse *r;

	Errq__V1__Group *g = set_status(D.addr, fp, "resolved");
	assert_string_equal(g->status, "resolved");
	assert_false(g->regression);
	assert_true(g->resolved_at_unix_nano > 0);
	errq__v1__group__free_unpacked(g, NULL);
	lr.status = "resolved";
	r = groups(D.addr, &lr);
	assert_int_equal(r->n_groups, 1);
	errq__v1__list_groups_response__free_unpacked(r, NULL);

	/* a new event of a resolved group: unresolved again, marked as a regression */
	Errq__V1__TaskFailure *e2[1] = {tevent_new(&G, "svc-reg", "KeyError", "no key 'b'")};
	report(D.addr, e2, 1);
	lr.status = "unresolved";
	r = groups(D.addr, &lr);
	assert_int_equal(r->n_groups, 1);
	assert_true(r->groups[0]->regression);
	assert_int_equal(r->groups[0]->total, 2);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	/* ignored stays ignored */
	g = set_status(D.addr, fp, "ignored");
	errq__v1__group__free_unpacked(g, NULL);
	Errq__V1__TaskFailure *e3[1] = {tevent_new(&G, "svc-reg", "KeyError", "no key 'c'")};
	report(D.addr, e3, 1);
	lr.status = "ignored";
	r = groups(D.addr, &lr);
	assert_int_equal(r->n_groups, 1);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	/* bad status, unknown group */
	Errq__V1__SetGroupStatusRequest sr = ERRQ__V1__SET_GROUP_STATUS_REQUEST__INIT;
	grpc_slice out;
	sr.fingerprint = fp;
	sr.status = "fixed";
	assert_int_equal(query_call(D.addr, "/errq.v1.Query/SetGroupStatus", &sr.base, &out, NULL, 0),
			 GRPC_STATUS_INVALID_ARGUMENT);
	sr.fingerprint = "ffffffffffffffff";
	sr.status = "resolved";
	assert_int_equal(query_call(D.addr, "/errq.v1.Query/SetGroupStatus", &sr.base, &out, NULL, 0),
			 GRPC_STATUS_NOT_FOUND);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

/* A database that cannot be reached answers SetGroupStatus UNAVAILABLE (worth a retry, as
 * ingest answers), not INTERNAL; the retry passes once it is back.  PostgreSQL only (SQLite has
 * no server to lose): a trigger makes the status change fail as a server shutting down does
 * (SQLSTATE 57P01, admin_shutdown), deterministically, whatever upkeep does meanwhile. */
static const char *const PG_SHUTTING_DOWN[] = {
    "CREATE FUNCTION itest_shutting_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'itest: shutting down' USING ERRCODE = 'admin_shutdown'; END $$",
    "CREATE TRIGGER itest_shutting_down BEFORE UPDATE OF status ON groups FOR EACH ROW"
    " WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION itest_shutting_down()",
    NULL};

static void test_set_status_database_unavailable(void **state)
{
	if (harness_backend() != HARNESS_POSTGRES)
		skip();
	struct errqd_proc D = {0};
	char fp[32];
	start_with_one_group(&D, "svc-unav", fp);

	struct harness_db *h = harness_db_open(D.db);
	assert_non_null(h);
	for (const char *const *q = PG_SHUTTING_DOWN; *q; q++)
		assert_int_equal(harness_db_exec(h, *q), 0);
	Errq__V1__SetGroupStatusRequest sr = ERRQ__V1__SET_GROUP_STATUS_REQUEST__INIT;
	sr.fingerprint = fp;
	sr.status = "resolved";
	grpc_slice out;
	char det[256] = "";
	grpc_status_code st = query_call(D.addr, "/errq.v1.Query/SetGroupStatus", &sr.base, &out, det, sizeof(det));
	if (st != GRPC_STATUS_UNAVAILABLE)
		fail_msg("SetGroupStatus with the database unavailable: status %d, want UNAVAILABLE: %s", (int)st, det);
	if (!strstr(det, "shutting down"))
		fail_msg("UNAVAILABLE without the reason: %s", det);
	/* the server back: the client's retry passes */
	assert_int_equal(harness_db_exec(h, "DROP TRIGGER itest_shutting_down ON groups"), 0);
	harness_db_close(h);
	Errq__V1__Group *g = set_status(D.addr, fp, "resolved");
	assert_string_equal(g->status, "resolved");
	errq__v1__group__free_unpacked(g, NULL);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

static void test_pagination_under_load(void **state)
{
	struct errqd_proc D = {0};
	assert_int_equal(errqd_start(&D, NULL), 0);
	struct loadgen lg = {.addr = D.addr, .nstreams = 2, .batch = 10, .inflight = 2, .max_batches = 400,
			     .service_prefix = "svc-page"};
	assert_int_equal(loadgen_start(&lg), 0);
	WAIT_FOR(atomic_load(&lg.acked_batches) >= 20);
	/* what is stored now must come back exactly once, newest first, while more arrives */
	Errq__V1__ListEventsResponse *first = query_events(D.addr, 1000);
	assert_non_null(first);
	size_t nsnap = first->n_events;
	assert_true(nsnap >= 200);
	uint8_t (*snap)[16] = calloc(nsnap, 16);
	for (size_t i = 0; i < nsnap; i++)
		memcpy(snap[i], first->events[i]->event_id.data, 16);
	errq__v1__list_events_response__free_unpacked(first, NULL);
	/* page backwards from a cursor taken now, in pages of 7 */
	size_t found = 0, pages = 0;
	int *seen = calloc(nsnap, sizeof(int));
	Errq__V1__ListEventsRequest req = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	req.limit = 7;
	uint64_t prev_recv = UINT64_MAX;
	uint8_t cursor[16];
	for (;;) {
		grpc_slice out;
		assert_int_equal(query_call(D.addr, "/errq.v1.Query/ListEvents", &req.base, &out, NULL, 0), GRPC_STATUS_OK);
		Errq__V1__ListEventsResponse *p =
		    errq__v1__list_events_response__unpack(NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
		grpc_slice_unref(out);
		pages++;
		for (size_t i = 0; i < p->n_events; i++) {
			assert_true(p->events[i]->received_at_unix_nano <= prev_recv);
			prev_recv = p->events[i]->received_at_unix_nano;
			for (size_t k = 0; k < nsnap; k++)
				if (memcmp(snap[k], p->events[i]->event_id.data, 16) == 0) {
					seen[k]++;
					found++;
				}
		}
		bool more = p->next_cursor.len > 0;
		if (more) {
			memcpy(cursor, p->next_cursor.data, p->next_cursor.len);
			req.cursor.data = cursor;
			req.cursor.len = p->next_cursor.len;
		}
		errq__v1__list_events_response__free_unpacked(p, NULL);
		if (!more)
			break;
	}
	loadgen_stop(&lg);
	for (size_t k = 0; k < nsnap; k++)
		if (seen[k] != 1)
			fail_msg("event %zu of the snapshot seen %d times", k, seen[k]);
	assert_int_equal(found, nsnap);
	print_message("%zu events paged in %zu pages of 7 while ingest went on\n", nsnap, pages);
	free(seen);
	free(snap);
	loadgen_free(&lg);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

static void test_tail_receives_events_after_start(void **state)
{
	struct errqd_proc D = {0};
	assert_int_equal(errqd_start(&D, NULL), 0);
	Errq__V1__TaskFailure *before[1] = {tevent_new(&G, "svc-tail", "OSError", "before the tail")};
	report(D.addr, before, 1);
	struct tailstream all, only;
	Errq__V1__TailRequest tr = ERRQ__V1__TAIL_REQUEST__INIT;
	assert_int_equal(tail_open(&all, D.addr, &tr), 0);
	tr.error_type = "Time*";
	assert_int_equal(tail_open(&only, D.addr, &tr), 0);
	Errq__V1__TaskFailure *evs[3] = {tevent_new(&G, "svc-tail", "TimeoutError", "t1"),
					 tevent_new(&G, "svc-tail", "OSError", "o1"),
					 tevent_new(&G, "svc-tail", "TimeoutError", "t2")};
	report(D.addr, evs, 3);
	const char *want_all[] = {"t1", "o1", "t2"}, *want_only[] = {"t1", "t2"};
	for (int i = 0; i < 3; i++) {
		Errq__V1__TailMessage *m;
		assert_int_equal(tail_recv(&all, &m, HARNESS_DEADLINE_MS), 0);
		assert_string_equal(m->event->message, want_all[i]); /* never "before the tail" */
		assert_int_equal(m->dropped, 0);
		assert_int_equal(strlen(m->event->fingerprint), 16);
		errq__v1__tail_message__free_unpacked(m, NULL);
	}
	for (int i = 0; i < 2; i++) {
		Errq__V1__TailMessage *m;
		assert_int_equal(tail_recv(&only, &m, HARNESS_DEADLINE_MS), 0);
		assert_string_equal(m->event->message, want_only[i]);
		errq__v1__tail_message__free_unpacked(m, NULL);
	}
	Errq__V1__StatusResponse *st = query_status(D.addr);
	assert_int_equal(st->tail_subscribers, 2);
	errq__v1__status_response__free_unpacked(st, NULL);
	tail_free(&all);
	tail_free(&only);
	/* the collector notices the subscribers left */
	WAIT_FOR(tail_subscribers(D.addr) == 0);
	st = query_status(D.addr);
	assert_int_equal(st->tail_subscribers, 0);
	errq__v1__status_response__free_unpacked(st, NULL);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

static void test_slow_tail_drops_oldest_and_says_so(void **state)
{
	struct errqd_proc D = {0};
	assert_int_equal(errqd_start(&D, NULL), 0);
	struct tailstream t;
	Errq__V1__TailRequest tr = ERRQ__V1__TAIL_REQUEST__INIT;
	assert_int_equal(tail_open(&t, D.addr, &tr), 0);
	/* a subscriber that reads nothing while 5 000 events of ~2 KiB arrive: more than its
	 * queue (1024 messages) and the HTTP/2 window can hold */
	for (int b = 0; b < 5; b++) {
		Errq__V1__TaskFailure *evs[1000];
		char msg[2048];
		memset(msg, 'm', sizeof(msg) - 1);
		msg[sizeof(msg) - 1] = '\0';
		for (int i = 0; i < 1000; i++)
			evs[i] = tevent_new(&G, "svc-slow", "OSError", msg);
		report(D.addr, evs, 1000);
	}
	uint64_t received = 0, dropped = 0;
	Errq__V1__TailMessage *m;
	/* every event comes as a message or is counted in one: read until all 5 000 are
	 * accounted for (a gap between two messages is no end; the deadline is) */
	while (received + dropped < 5000 && tail_recv(&t, &m, HARNESS_DEADLINE_MS) == 0) {
		received++;
		dropped += m->dropped;
		errq__v1__tail_message__free_unpacked(m, NULL);
	}
	print_message("slow subscriber: %llu received, %llu reported dropped\n", (unsigned long long)received,
		      (unsigned long long)dropped);
	assert_true(dropped > 0);
	assert_int_equal(received + dropped, 5000); /* every event either delivered or counted */
	tail_free(&t);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

static void test_retention_keeps_counts(void **state)
{
	struct errqd_proc D = {0};
	const char *args[] = {"--set", "retention=2s", NULL};
	assert_int_equal(errqd_start(&D, args), 0);
	Errq__V1__TaskFailure *evs[5];
	for (int i = 0; i < 5; i++) {
		evs[i] = tevent_new(&G, "svc-ret", "OSError", "disk full");
		/* PostgreSQL keeps a day's events until the day's partition ends (retention by the
		 * id's day, docs/architecture.md): ids of 30 days ago go to events_default, whose
		 * rows go by their received time, as SQLite's all do */
		if (harness_backend() == HARNESS_POSTGRES) {
			uint64_t ms = errq_now_ns() / ERRQ_NS_PER_MS - 30ULL * 86400 * 1000;
			for (int b = 0; b < 6; b++)
				evs[i]->event_id.data[b] = (uint8_t)(ms >> (40 - 8 * b));
		}
	}
	report(D.addr, evs, 5);
	Errq__V1__ListEventsResponse *e = query_events(D.addr, 100);
	assert_int_equal(e->n_events, 5);
	errq__v1__list_events_response__free_unpacked(e, NULL);
	/* within a few seconds the raw events go (upkeep runs every second) */
	WAIT_FOR(events_listed(D.addr) == 0);
	Errq__V1__ListGroupsRequest lr = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	Errq__V1__ListGroupsResponse *r = groups(D.addr, &lr);
	assert_int_equal(r->n_groups, 1);
	assert_int_equal(r->groups[0]->total, 5); /* the counts stay */
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	Errq__V1__StatusResponse *st = query_status(D.addr);
	assert_int_equal(st->events_deleted, 5);
	errq__v1__status_response__free_unpacked(st, NULL);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

static void test_caps(void **state)
{
	struct errqd_proc D = {0};
	const char *args[] = {"--set", "groups_per_service=3", "--set", "events_per_group=5", NULL};
	assert_int_equal(errqd_start(&D, args), 0);
	/* 5 error types: the first 3 get groups, the other 2 land in the overflow group */
	Errq__V1__TaskFailure *evs[5];
	const char *types[] = {"E1", "E2", "E3", "E4", "E5"};
	for (int i = 0; i < 5; i++)
		evs[i] = tevent_new(&G, "svc-cap", types[i], "m 0");
	report(D.addr, evs, 5);
	Errq__V1__ListGroupsRequest lr = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	Errq__V1__ListGroupsResponse *r = groups(D.addr, &lr);
	assert_int_equal(r->n_groups, 4);
	Errq__V1__Group *ov = find_group(r, "(overflow)");
	assert_non_null(ov);
	assert_true(ov->overflow);
	assert_int_equal(ov->total, 2);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	Errq__V1__StatusResponse *st = query_status(D.addr);
	assert_int_equal(st->overflow_events, 2);
	errq__v1__status_response__free_unpacked(st, NULL);

	/* 20 events of one group (numbers in a message do not split it): the newest 5 stay, the
	 * total counts all */
	Errq__V1__TaskFailure *many[20];
	for (int i = 0; i < 20; i++) {
		char msg[32];
		errq_snprintf(msg, sizeof(msg), "m %d", i + 1);
		many[i] = tevent_new(&G, "svc-cap", "E1", msg);
	}
	report(D.addr, many, 20);
	r = groups(D.addr, &lr);
	char fp[32];
	errq_snprintf(fp, sizeof(fp), "%s", find_group(r, "E1")->fingerprint);
	assert_int_equal(find_group(r, "E1")->total, 21);
	errq__v1__list_groups_response__free_unpacked(r, NULL);
	Errq__V1__ListEventsRequest er = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	er.fingerprint = fp;
	er.limit = 100;
	size_t n = 0;
	Errq__V1__ListEventsResponse *e = NULL;
	for (uint64_t dl = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS; errq_mono_ns() < dl;) {
		grpc_slice out;
		assert_int_equal(query_call(D.addr, "/errq.v1.Query/ListEvents", &er.base, &out, NULL, 0), GRPC_STATUS_OK);
		if (e)
			errq__v1__list_events_response__free_unpacked(e, NULL);
		e = errq__v1__list_events_response__unpack(NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
		grpc_slice_unref(out);
		n = e->n_events;
		if (n <= 5)
			break;
		harness_msleep(10);
	}
	assert_int_equal(n, 5);
	assert_string_equal(e->events[0]->message, "m 20"); /* the newest are kept */
	assert_string_equal(e->events[4]->message, "m 16");
	errq__v1__list_events_response__free_unpacked(e, NULL);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

/* Events ListEvents returns for a request (asserts OK). */
static Errq__V1__ListEventsResponse *events_for(const char *addr, const Errq__V1__ListEventsRequest *req)
{
	return query_ok(addr, "/errq.v1.Query/ListEvents", &req->base, &errq__v1__list_events_response__descriptor);
}

/* Issue 15: ListEvents and Tail filter by error_code and task globs, ListGroups by
 * error_code; '[' is a character there too; a glob past 256 bytes is INVALID_ARGUMENT naming
 * its field (before, a type glob was cut silently), and one of 256 '[' is not cut. */
static void test_code_and_task_globs(void **state)
{
	struct errqd_proc D = {0};
	assert_int_equal(errqd_start(&D, NULL), 0);
	Errq__V1__TaskFailure *evs[4] = {tevent_new(&G, "svc-ct", "IOError", "c1"), tevent_new(&G, "svc-ct", "IOError", "c2"),
					 tevent_new(&G, "svc-ct", "KeyError", "c3"), tevent_new(&G, "svc-ct", "KeyError", "c4")};
	tevent_set(&evs[0]->fingerprint, "io-group"); /* one group for both IOErrors */
	tevent_set(&evs[0]->error_code, "E[1]");
	tevent_set(&evs[0]->task, "sync-a");
	tevent_set(&evs[1]->fingerprint, "io-group");
	tevent_set(&evs[1]->error_code, "E2");
	tevent_set(&evs[1]->task, "flush");
	tevent_set(&evs[2]->task, "sync-b"); /* no code */
	char brackets[201];
	memset(brackets, '[', 200);
	brackets[200] = '\0';
	tevent_set(&evs[3]->task, brackets); /* 200 '[': 600 bytes once made literal */
	report(D.addr, evs, 4);

	Errq__V1__ListEventsRequest er = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	er.error_code = "E[1]"; /* '[' literal: matches the code "E[1]" only */
	Errq__V1__ListEventsResponse *e = events_for(D.addr, &er);
	assert_int_equal(e->n_events, 1);
	assert_string_equal(e->events[0]->message, "c1");
	errq__v1__list_events_response__free_unpacked(e, NULL);
	er.error_code = "E?";
	er.task = "sync-*";
	e = events_for(D.addr, &er);
	assert_int_equal(e->n_events, 0); /* c2 has E2 but flushes; c3 has no code */
	errq__v1__list_events_response__free_unpacked(e, NULL);
	er.error_code = "";
	e = events_for(D.addr, &er);
	assert_int_equal(e->n_events, 2);
	assert_string_equal(e->events[0]->message, "c3");
	assert_string_equal(e->events[1]->message, "c1");
	errq__v1__list_events_response__free_unpacked(e, NULL);

	Errq__V1__ListGroupsRequest lr = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	lr.error_code = "E*";
	Errq__V1__ListGroupsResponse *g = groups(D.addr, &lr);
	assert_int_equal(g->n_groups, 1); /* IOError's code is E2 (its last); KeyError has none */
	assert_string_equal(g->groups[0]->error_type, "IOError");
	assert_string_equal(g->groups[0]->error_code, "E2");
	errq__v1__list_groups_response__free_unpacked(g, NULL);

	/* the bound: 256 bytes pass whole (256 '[' would not fit a buffer of 2 per byte), 257 are
	 * refused with the field's name, on every request that takes globs */
	char big[258], det[256];
	memset(big, '[', 257);
	big[257] = '\0';
	grpc_slice out;
	const char *why[] = {"error_type glob is longer than 256 bytes", "error_code glob is longer than 256 bytes",
			     "task glob is longer than 256 bytes"};
	for (int k = 0; k < 3; k++) {
		Errq__V1__ListEventsRequest bad = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
		*(k == 0 ? &bad.error_type : k == 1 ? &bad.error_code : &bad.task) = big;
		assert_int_equal(query_call(D.addr, "/errq.v1.Query/ListEvents", &bad.base, &out, det, sizeof(det)),
				 GRPC_STATUS_INVALID_ARGUMENT);
		assert_string_equal(det, why[k]);
		struct tailstream t;
		Errq__V1__TailRequest tr = ERRQ__V1__TAIL_REQUEST__INIT;
		*(k == 0 ? &tr.error_type : k == 1 ? &tr.error_code : &tr.task) = big;
		tail_open(&t, D.addr, &tr); /* refused: it may or may not see headers first */
		assert_int_equal(tail_status(&t, det, sizeof(det)), GRPC_STATUS_INVALID_ARGUMENT);
		assert_string_equal(det, why[k]);
		tail_free(&t);
	}
	Errq__V1__ListGroupsRequest badg = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	badg.error_code = big;
	assert_int_equal(query_call(D.addr, "/errq.v1.Query/ListGroups", &badg.base, &out, det, sizeof(det)),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(det, why[1]);
	big[256] = '\0';
	er.task = big;
	e = events_for(D.addr, &er);
	assert_int_equal(e->n_events, 0); /* accepted; no task is 256 '[' */
	errq__v1__list_events_response__free_unpacked(e, NULL);
	er.task = brackets; /* matched whole, not cut (a cut glob matched a shorter task only) */
	e = events_for(D.addr, &er);
	assert_int_equal(e->n_events, 1);
	assert_string_equal(e->events[0]->message, "c4");
	errq__v1__list_events_response__free_unpacked(e, NULL);
	assert_int_equal(tail_subscribers(D.addr), 0);

	/* the live tail: code and task, each event matched as it is committed */
	struct tailstream t;
	Errq__V1__TailRequest tr = ERRQ__V1__TAIL_REQUEST__INIT;
	tr.error_code = "E[*";
	tr.task = "sync-?";
	assert_int_equal(tail_open(&t, D.addr, &tr), 0);
	Errq__V1__TaskFailure *more[3] = {tevent_new(&G, "svc-ct", "IOError", "t1"), tevent_new(&G, "svc-ct", "IOError", "t2"),
					  tevent_new(&G, "svc-ct", "IOError", "t3")};
	tevent_set(&more[0]->error_code, "E[9]");
	tevent_set(&more[0]->task, "flush");  /* the task does not match */
	tevent_set(&more[1]->task, "sync-c"); /* no code: "" */
	tevent_set(&more[2]->error_code, "E[7]");
	tevent_set(&more[2]->task, "sync-d");
	report(D.addr, more, 3);
	Errq__V1__TailMessage *m;
	assert_int_equal(tail_recv(&t, &m, HARNESS_DEADLINE_MS), 0);
	assert_string_equal(m->event->message, "t3");
	errq__v1__tail_message__free_unpacked(m, NULL);
	tail_free(&t);
	assert_int_equal(errqd_stop(&D, SIGTERM), 0);
	errqd_cleanup(&D);
}

int main(void)
{
	grpc_init();
	errq_idgen_init(&G);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grouping_and_group_detail),
	    cmocka_unit_test(test_resolve_then_regression),
	    cmocka_unit_test(test_set_status_database_unavailable),
	    cmocka_unit_test(test_pagination_under_load),
	    cmocka_unit_test(test_tail_receives_events_after_start),
	    cmocka_unit_test(test_slow_tail_drops_oldest_and_says_so),
	    cmocka_unit_test(test_retention_keeps_counts),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_code_and_task_globs),
	};
	int rc = cmocka_run_group_tests_name("integration_query", tests, NULL, NULL);
	grpc_shutdown_blocking();
	return rc;
}
