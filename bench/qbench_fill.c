/* qbench_fill.c: errq-query-bench, steps 2 and 3: filling the database through errq-bench
 * until it holds --events, waiting for it to settle, and picking the fingerprints.  See
 * errq_query_bench.c for the order of things. */
#include "qbench.h"
#include "bench_json.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

/* ---- step 2: fill ---- */

int qb_fill(const struct qcfg *c, const struct server *sv, const char *addr, const char *workdir,
		grpc_channel *ctl, struct dbinfo *db, char *err, size_t errsz)
{
	uint64_t need = c->events - db->events;
	char n_arg[32], g_arg[32], pid_arg[32], out[QB_PATH_MAX], errf[QB_PATH_MAX];
	errq_snprintf(n_arg, sizeof(n_arg), "%" PRIu64, need);
	errq_snprintf(g_arg, sizeof(g_arg), "%u", c->groups);
	errq_snprintf(out, sizeof(out), "%s/fill.json", workdir);
	errq_snprintf(errf, sizeof(errf), "%s/fill.err", workdir);
	const char *argv[20];
	int k = 0;
	argv[k++] = c->bench;
	argv[k++] = "--addr";
	argv[k++] = addr;
	if (sv->spawned) {
		errq_snprintf(pid_arg, sizeof(pid_arg), "%d", (int)sv->pid);
		argv[k++] = "--pid";
		argv[k++] = pid_arg;
	}
	argv[k++] = "--prefill";
	argv[k++] = n_arg;
	argv[k++] = "--duration";
	argv[k++] = "0";
	argv[k++] = "--groups";
	argv[k++] = g_arg;
	argv[k++] = "--zipf";
	argv[k++] = c->zipf;
	argv[k++] = "--json";
	argv[k] = NULL;

	char nbuf[32];
	fprintf(stderr, "errq-query-bench: filling %s events:", qb_thousands(nbuf, sizeof(nbuf), need));
	for (int i = 0; i < k; i++)
		fprintf(stderr, " %s", argv[i]);
	fprintf(stderr, "\n");
	pid_t pid = qb_spawn_child(argv, out, errf, err, errsz);
	if (pid < 0)
		return -1;
	uint64_t t0 = errq_mono_ns(), next = t0 + QB_PROGRESS_NS, last_n = db->events, last_t = t0;
	int st = 0;
	bool forwarded = false;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			errq_snprintf(err, errsz, "waitpid: %s", strerror(errno));
			return -1;
		}
		if (qb_stop && !forwarded) {
			kill(pid, SIGINT); /* errq-bench ends its prefill and waits for the answers */
			forwarded = true;
		}
		uint64_t now = errq_mono_ns();
		if (now >= next) {
			Errq__V1__StatusResponse *s;
			char e2[QB_MSG_MAX];
			if (qb_status_call(ctl, 10000, &s, e2, sizeof(e2)) == 0) {
				fprintf(stderr, "errq-query-bench:   %s events stored (%.0f events/s)\n",
					qb_thousands(nbuf, sizeof(nbuf), s->events_total),
					(double)(s->events_total - last_n) / ((double)(now - last_t) / 1e9));
				last_n = s->events_total;
				last_t = now;
				protobuf_c_message_free_unpacked(&s->base, NULL);
			}
			next = now + QB_PROGRESS_NS;
		}
		qb_msleep(QB_POLL_MS);
	}
	int code = qb_exit_code(st);
	char *text = qb_read_small(out);
	json_t *js = text ? json_loads(text, 0, NULL) : NULL; /* NULL: the figures read -1 */
	db->filled = true;
	double n = bj_number(js, "prefill_events");
	db->fill_events = n > 0 ? (uint64_t)n : 0;
	db->fill_seconds = bj_number(js, "prefill_seconds");
	db->fill_rate = bj_number(js, "prefill_events_per_s");
	json_decref(js);
	free(text);
	if (qb_stop)
		return -1;
	if (code != 0 && code != 3) {
		char line[QB_MSG_MAX - 64];
		qb_first_line(errf, line, sizeof(line));
		errq_snprintf(err, errsz, "errq-bench exited with status %d%s%s", code, line[0] ? ": " : "", line);
		return -1;
	}
	if (code == 3) /* some events not stored: the count afterwards decides */
		fprintf(stderr, "errq-query-bench: errq-bench reported errors during the fill (exit 3)\n");
	fprintf(stderr, "errq-query-bench: filled %s events in %.1f s (%.0f events/s)\n",
		qb_thousands(nbuf, sizeof(nbuf), db->fill_events), db->fill_seconds, db->fill_rate);
	return 0;
}

/* After the fill: errqd's queue empty and the file size (main + WAL) unchanged for one poll. */
void qb_settle(grpc_channel *ctl)
{
	uint64_t prev = UINT64_MAX;
	for (int waited = 0; waited < QB_SETTLE_MAX_MS && !qb_stop; waited += QB_SETTLE_POLL_MS) {
		Errq__V1__StatusResponse *s;
		char e[QB_MSG_MAX];
		if (qb_status_call(ctl, 10000, &s, e, sizeof(e)))
			return;
		bool quiet = s->ingest_queue_batches == 0 && s->database_bytes == prev;
		prev = s->database_bytes;
		protobuf_c_message_free_unpacked(&s->base, NULL);
		if (quiet)
			return;
		qb_msleep(QB_SETTLE_POLL_MS);
	}
}

/* ---- step 3: the fingerprints ---- */

int qb_pick_groups(grpc_channel *ctl, long timeout_ms, struct dbinfo *db, char *err, size_t errsz)
{
	Errq__V1__ListGroupsRequest req = ERRQ__V1__LIST_GROUPS_REQUEST__INIT;
	Errq__V1__ListGroupsResponse *resp;
	uint64_t bytes;
	req.limit = 1;
	req.sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_COUNT;
	if (qb_call(ctl, M_LIST_GROUPS, &req.base, &errq__v1__list_groups_response__descriptor, timeout_ms,
		 (ProtobufCMessage **)&resp, &bytes, err, errsz))
		return -1;
	if (resp->n_groups == 0) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		errq_snprintf(err, errsz, "the collector holds no group");
		return -1;
	}
	errq_snprintf(db->hot_fp, sizeof(db->hot_fp), "%s", resp->groups[0]->fingerprint);
	db->hot_total = resp->groups[0]->total;
	db->hot_first_seen_ns = resp->groups[0]->first_seen_unix_nano;
	protobuf_c_message_free_unpacked(&resp->base, NULL);

	req.limit = QB_RARE_SCAN;
	req.sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_FIRST_SEEN;
	if (qb_call(ctl, M_LIST_GROUPS, &req.base, &errq__v1__list_groups_response__descriptor, timeout_ms,
		 (ProtobufCMessage **)&resp, &bytes, err, errsz))
		return -1;
	const Errq__V1__Group *rare = NULL;
	for (size_t i = 0; i < resp->n_groups; i++)
		if (!rare || resp->groups[i]->total < rare->total)
			rare = resp->groups[i];
	if (rare) {
		errq_snprintf(db->rare_fp, sizeof(db->rare_fp), "%s", rare->fingerprint);
		db->rare_total = rare->total;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);

	req.limit = 1;
	req.sort = ERRQ__V1__GROUP_SORT__GROUP_SORT_LAST_SEEN;
	if (qb_call(ctl, M_LIST_GROUPS, &req.base, &errq__v1__list_groups_response__descriptor, timeout_ms,
		 (ProtobufCMessage **)&resp, &bytes, err, errsz))
		return -1;
	if (resp->n_groups)
		db->newest_last_seen_ns = resp->groups[0]->last_seen_unix_nano;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rare ? 0 : -1;
}
