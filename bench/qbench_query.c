/* qbench_query.c: errq-query-bench, step 4: the Query RPCs, each over a fresh channel, timed
 * (connect apart from the call).  See errq_query_bench.c for the order of things. */
#include "qbench.h"

#include <grpc/grpc.h>
#include <stdint.h>
#include <stdio.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

/* ---- gRPC ---- */

/* Waits until ch is READY.  Returns 0, or -1 with err set. */
int qb_channel_ready(grpc_channel *ch, long timeout_ms, char *err, size_t errsz)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	gpr_timespec deadline = errq_deadline_ms(timeout_ms);
	grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
	while (st != GRPC_CHANNEL_READY && st != GRPC_CHANNEL_SHUTDOWN) {
		grpc_channel_watch_connectivity_state(ch, st, deadline, cq, NULL);
		grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type != GRPC_OP_COMPLETE || !ev.success)
			break; /* the deadline */
		st = grpc_channel_check_connectivity_state(ch, 1);
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	if (st == GRPC_CHANNEL_READY)
		return 0;
	errq_snprintf(err, errsz, "no connection within %ld ms", timeout_ms);
	return -1;
}

/* One call on ch; on success *out is the unpacked answer (free with protobuf_c_message_free_unpacked)
 * and *bytes its size.  Returns 0, or -1 with err set. */
int qb_call(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp_desc, long timeout_ms, ProtobufCMessage **out, uint64_t *bytes,
		char *err, size_t errsz)
{
	struct errq_unary_result r;
	*out = NULL;
	if (errq_unary_call(ch, method, req, timeout_ms, &r)) {
		errq_snprintf(err, errsz, "%s: %s", method, r.details);
		return -1;
	}
	if (r.status != GRPC_STATUS_OK) {
		errq_snprintf(err, errsz, "%s: %s: %s", method, errq_status_name(r.status), r.details);
		errq_unary_result_free(&r);
		return -1;
	}
	if (!r.has_resp) {
		errq_snprintf(err, errsz, "%s: OK without a message", method);
		return -1;
	}
	*bytes = GRPC_SLICE_LENGTH(r.resp);
	*out = protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
	errq_unary_result_free(&r);
	if (!*out) {
		errq_snprintf(err, errsz, "%s: cannot decode the answer", method);
		return -1;
	}
	return 0;
}

int qb_status_call(grpc_channel *ch, long timeout_ms, Errq__V1__StatusResponse **out, char *err, size_t errsz)
{
	Errq__V1__StatusRequest req = ERRQ__V1__STATUS_REQUEST__INIT;
	uint64_t bytes;
	return qb_call(ch, M_STATUS, &req.base, &errq__v1__status_response__descriptor, timeout_ms,
		    (ProtobufCMessage **)out, &bytes, err, errsz);
}
/* ---- step 4: the requests ---- */

const char *qb_fp_of(const struct dbinfo *db, enum fpsel s)
{
	return s == FP_HOT ? db->hot_fp : s == FP_RARE ? db->rare_fp : "";
}

/* One run of q on a fresh channel: *conn_ms the time to connect, *call_ms the call. */
static int run_query(const char *addr, long timeout_ms, const struct dbinfo *db, struct query *q, double *conn_ms,
		     double *call_ms, char *err, size_t errsz)
{
	grpc_channel *ch = errq_channel_new(addr);
	if (!ch) {
		errq_snprintf(err, errsz, "cannot create a channel to '%s'", addr);
		return -1;
	}
	uint64_t t0 = errq_mono_ns();
	if (qb_channel_ready(ch, QB_CONNECT_TIMEOUT_MS, err, errsz)) {
		grpc_channel_destroy(ch);
		return -1;
	}
	uint64_t t1 = errq_mono_ns();
	*conn_ms = qb_ms_between(t0, t1);

	Errq__V1__ListGroupsRequest lg = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	Errq__V1__GetGroupRequest gg = ERRQ__V1__GET_GROUP_REQUEST__INIT;
	Errq__V1__ListEventsRequest le = ERRQ__V1__LIST_EVENTS_REQUEST__INIT;
	const ProtobufCMessage *req;
	const ProtobufCMessageDescriptor *rd;
	switch (q->kind) {
	case Q_LIST_GROUPS:
		lg.limit = q->limit;
		lg.sort = q->sort;
		if (q->since_1h)
			lg.since_unix_nano = errq_now_ns() - QB_WINDOW_NS; /* what `--since 1h` sends */
		req = &lg.base;
		rd = &errq__v1__list_groups_response__descriptor;
		break;
	case Q_GET_GROUP:
		gg.fingerprint = (char *)qb_fp_of(db, q->fp);
		gg.histogram_minutes = q->histogram_minutes;
		req = &gg.base;
		rd = &errq__v1__get_group_response__descriptor;
		break;
	default:
		le.limit = q->limit;
		le.fingerprint = (char *)qb_fp_of(db, q->fp);
		req = &le.base;
		rd = &errq__v1__list_events_response__descriptor;
		break;
	}
	ProtobufCMessage *resp;
	uint64_t bytes = 0;
	uint64_t t2 = errq_mono_ns();
	int rc = qb_call(ch, q->method, req, rd, timeout_ms, &resp, &bytes, err, errsz);
	uint64_t t3 = errq_mono_ns();
	*call_ms = qb_ms_between(t2, t3);
	grpc_channel_destroy(ch);
	if (rc)
		return -1;
	q->bytes = bytes;
	switch (q->kind) {
	case Q_LIST_GROUPS: q->rows = ((Errq__V1__ListGroupsResponse *)resp)->n_groups; break;
	case Q_GET_GROUP: q->rows = ((Errq__V1__GetGroupResponse *)resp)->group ? 1 : 0; break;
	default: q->rows = ((Errq__V1__ListEventsResponse *)resp)->n_events; break;
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

void qb_measure_query(const struct qcfg *c, const char *addr, const struct dbinfo *db, struct query *q)
{
	char err[QB_MSG_MAX];
	double conn, t;
	fprintf(stderr, "errq-query-bench: %s: 1 warm-up + %d runs\n", q->label, c->runs);
	if (run_query(addr, c->timeout_ms, db, q, &conn, &t, err, sizeof(err))) {
		q->failures++;
		errq_snprintf(q->err, sizeof(q->err), "warm-up: %s", err);
	}
	for (int i = 0; i < c->runs && !qb_stop; i++) {
		if (run_query(addr, c->timeout_ms, db, q, &conn, &t, err, sizeof(err))) {
			if (!q->failures++)
				errq_snprintf(q->err, sizeof(q->err), "%s", err);
			continue;
		}
		q->call.ms[q->call.n++] = t;
		q->conn.ms[q->conn.n++] = conn;
	}
}
