/* Unit: storage/pg/pg_alerts.c — the alerting tables on PostgreSQL, through the public store_*
 * calls on a postgres URL.  The cases of test_store_alerts.c (circuits, transitions, alerts,
 * the outbox, silences, outcome batches, their upkeep, rollback, reader handles) on a database
 * of the test's own (tests/support/pg_support.h, the ctest fixture `pg`), and what mapping
 * SQLite's implicit behaviour must keep (docs/architecture.md, "The alerting tables on
 * PostgreSQL"): the indexes serve, names sort bytewise, an id is never given twice, the
 * circuits are listed in pages, a body is its given bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pg_support.h"
#include "storage.h"
#include "storage_alerts.h"

#define NS 1000000000ULL
#define T0 (1800000000ULL * NS)

static struct pg_test_db db;
static char err[512];

static int setup(void **state)
{
	if (pg_test_db_create(&db, "alerts", err, sizeof(err))) {
		print_error("%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	if (pg_test_db_drop(&db, err, sizeof(err))) {
		print_error("%s\n", err);
		return -1;
	}
	return 0;
}

static struct store *open_path(const char *url, bool readonly)
{
	struct store *s = NULL;
	char oerr[512];
	struct store_opts o = {.path = url, .readonly = readonly};
	int rc = store_open(&s, &o, oerr, sizeof(oerr));
	if (rc)
		print_error("store_open: %s\n", oerr);
	assert_int_equal(rc, 0);
	return s;
}

static struct store *open_writer(void)
{
	return open_path(db.url, false);
}

static void id16(uint8_t id[16], uint8_t kind, uint8_t n)
{
	memset(id, 0, 16);
	id[0] = kind;
	id[15] = n;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* One integer from a statement on a connection of the test's own. */
static int64_t sql_int(const char *sql)
{
	PGconn *c = pg_test_connect(&db, err, sizeof(err));
	if (!c)
		print_error("%s\n", err);
	assert_non_null(c);
	int64_t v = 0;
	int rc = pg_test_int(c, sql, &v, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	PQfinish(c);
	assert_int_equal(rc, 0);
	return v;
}

static int64_t count_rows(const char *table)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return sql_int(sql);
}

/* The plan of sql, its lines joined by '|', with sequential scans and sorts priced out: an
 * index that can serve the statement shows in it, and without one a Seq Scan or a Sort
 * stays (the tables are empty: costs alone would pick a scan). */
static void plan(const char *sql, char *out, size_t n)
{
	PGconn *c = pg_test_connect(&db, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(pg_test_exec(c, "SET enable_seqscan = off; SET enable_sort = off", err, sizeof(err)), 0);
	char q[1024];
	snprintf(q, sizeof(q), "EXPLAIN (COSTS OFF) %s", sql);
	PGresult *r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		print_error("%s: %s\n", q, PQerrorMessage(c));
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	size_t len = 0;
	out[0] = 0;
	for (int i = 0; i < PQntuples(r) && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s|", PQgetvalue(r, i, 0));
	PQclear(r);
	PQfinish(c);
}

/* plan(sql) uses index and sorts nothing. */
static void assert_served(const char *sql, const char *index)
{
	char p[2048];
	plan(sql, p, sizeof(p));
	if (!strstr(p, index) || strstr(p, "Sort") || strstr(p, "Seq Scan"))
		print_error("%s\n  plan: %s\n  wanted: %s, no sort, no scan\n", sql, p, index);
	assert_non_null(strstr(p, index));
	assert_null(strstr(p, "Sort"));
	assert_null(strstr(p, "Seq Scan"));
}

static const char *const alert_tables[] = {"circuits", "transitions", "alerts", "deliveries", "silences",
					   "outcome_batches"};
#define N_ALERT_TABLES 6

/* ---------------------------------------------------------------- schema */

static void test_fresh_schema(void **state)
{
	store_close(open_writer());
	assert_true(sql_int("SELECT max(version) FROM errq_schema") >= 1);
	for (int i = 0; i < N_ALERT_TABLES; i++) {
		char sql[200];
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = '%s'",
			 alert_tables[i]);
		assert_int_equal(sql_int(sql), 1);
	}
	/* the names listings sort by compare bytes, as SQLite's do, whatever the locale */
	assert_int_equal(sql_int("SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
				 " AND table_name IN ('circuits', 'transitions', 'alerts')"
				 " AND column_name IN ('rule', 'key') AND collation_name = 'C'"),
			 6);

	/* the indexes do what they are for: no scan of the table, no sort of every row (the
	 * statements of pg_alerts.c, with literals for the parameters) */
	assert_served("SELECT id FROM deliveries WHERE status = 0 AND id > 1 ORDER BY id LIMIT 10", "deliveries_open");
	assert_served("SELECT id FROM deliveries WHERE status = 2 AND id > 1 ORDER BY id LIMIT 10", "deliveries_open");
	assert_served("SELECT id FROM deliveries WHERE alert_id = '\\x00'::bytea ORDER BY id", "deliveries_alert");
	assert_served("SELECT id FROM alerts WHERE id < 100 AND status = 'firing' ORDER BY id DESC LIMIT 5",
		      "alerts_status");
	assert_served("SELECT id FROM transitions WHERE rule = 'r' AND key = 'k' ORDER BY id DESC LIMIT 3",
		      "transitions_circuit");
	assert_served("SELECT batch_id FROM outcome_batches WHERE received_ns < 5 ORDER BY received_ns LIMIT 2",
		      "outcome_batches_received");
	/* the prune's selection: the partial index, in its order (SQLite named it: INDEXED BY) */
	assert_served("SELECT a.id FROM alerts a WHERE a.status = 'resolved' AND a.resolved_ns < 5"
		      " ORDER BY a.resolved_ns, a.id LIMIT 2",
		      "alerts_resolved");
	/* the circuits' pages and lookups */
	assert_served("SELECT id FROM circuits WHERE (rule, key) > ('a', 'b') ORDER BY rule, key LIMIT 10",
		      "circuits_rule_key_key");
	assert_served("SELECT id FROM circuits WHERE rule = 'a' AND key > 'b' ORDER BY rule, key LIMIT 10",
		      "circuits_rule_key_key");

	/* a reader opens it */
	store_close(open_path(db.url, true));
}

static int count_cb(void *ctx, const struct store_circuit *c)
{
	(*(int *)ctx)++;
	return 0;
}

/* Opening a database that has the schema again (the migrator finds it current) keeps its
 * rows; the tables work from the next handle (SQLite's test here migrates from version 1:
 * the PostgreSQL schema starts with the alerting tables in its version 1). */
static void test_reopen(void **state)
{
	struct store *s = open_writer();
	struct store_circuit c = {.rule = "r", .key = "k", .updated_ns = T0};
	int64_t cid = 0;
	assert_int_equal(store_circuit_put(s, &c, &cid), 0);
	assert_true(cid > 0);
	store_close(s);
	int64_t version = sql_int("SELECT max(version) FROM errq_schema");

	s = open_writer();
	int nc = 0;
	assert_int_equal(store_list_circuits(s, NULL, count_cb, &nc), 0);
	assert_int_equal(nc, 1);
	struct store_circuit c2 = {.rule = "r", .key = "k2", .updated_ns = T0};
	int64_t cid2 = 0;
	assert_int_equal(store_circuit_put(s, &c2, &cid2), 0);
	assert_true(cid2 > cid);
	store_close(s);
	assert_int_equal(sql_int("SELECT max(version) FROM errq_schema"), version);
	assert_int_equal(count_rows("circuits"), 2);
	store_close(open_path(db.url, true));
}

/* ---------------------------------------------------------------- circuits */

struct circuits_got {
	int n, stop_after;
	int64_t id[8];
	char rule[8][16], key[8][16];
	int state[8];
	uint64_t def_hash[8], since[8], failures[8], next[8], updated[8];
	bool has_alert[8];
	uint8_t alert[8][16];
	size_t saved_len[8];
	uint8_t saved[8][16];
};

static int circuit_cb(void *ctx, const struct store_circuit *c)
{
	struct circuits_got *g = ctx;
	int i = g->n++;
	g->id[i] = c->id;
	snprintf(g->rule[i], 16, "%s", c->rule);
	snprintf(g->key[i], 16, "%s", c->key);
	g->state[i] = c->state;
	g->def_hash[i] = c->def_hash;
	g->since[i] = c->since_ns;
	g->failures[i] = c->failures_in_window;
	g->next[i] = c->next_transition_ns;
	g->updated[i] = c->updated_ns;
	g->has_alert[i] = c->alert_id != NULL;
	if (c->alert_id)
		memcpy(g->alert[i], c->alert_id, 16);
	g->saved_len[i] = c->saved_len;
	if (c->saved && c->saved_len <= 16)
		memcpy(g->saved[i], c->saved, c->saved_len);
	return g->stop_after && g->n >= g->stop_after;
}

struct counts_got {
	int n;
	char rule[4][16];
	uint64_t circuits[4], not_closed[4];
};

static int rule_count_cb(void *ctx, const char *rule, uint64_t circuits, uint64_t not_closed)
{
	struct counts_got *g = ctx;
	snprintf(g->rule[g->n], 16, "%s", rule);
	g->circuits[g->n] = circuits;
	g->not_closed[g->n] = not_closed;
	g->n++;
	return 0;
}

static void test_circuits(void **state)
{
	struct store *s = open_writer();
	uint8_t aid[16];
	id16(aid, 0xA1, 1);
	const uint8_t saved[5] = {1, 2, 3, 0, 5};
	struct store_circuit c = {.rule = "r1", .key = "svc=b", .def_hash = 0xfedcba9876543210ULL, .state = 1,
				  .since_ns = T0, .failures_in_window = 7, .next_transition_ns = T0 + 30 * NS,
				  .alert_id = aid, .saved = saved, .saved_len = sizeof(saved), .updated_ns = T0 + 1};
	int64_t b = 0, a = 0, z = 0, e = 0;
	assert_int_equal(store_circuit_put(s, &c, &b), 0);
	struct store_circuit c2 = {.rule = "r1", .key = "svc=a", .updated_ns = T0};
	assert_int_equal(store_circuit_put(s, &c2, &a), 0);
	struct store_circuit c3 = {.rule = "r0", .key = "svc=z", .state = 2, .updated_ns = T0};
	assert_int_equal(store_circuit_put(s, &c3, &z), 0);
	struct store_circuit c4 = {.rule = "r1", .key = "", .updated_ns = T0}; /* a rule without group_by */
	assert_int_equal(store_circuit_put(s, &c4, &e), 0);
	assert_true(b > 0 && a > b && z > a && e > z);
	/* (rule, key) is unique */
	int64_t dup = 0;
	assert_int_equal(store_circuit_put(s, &c2, &dup), -1);
	assert_non_null(strstr(store_errmsg(s), "unique constraint")); /* SQLite says UNIQUE */
	/* counts per rule: r0 has 1 (half open), r1 has 3 (one open) */
	struct counts_got cg = {0};
	assert_int_equal(store_count_circuits(s, rule_count_cb, &cg), 0);
	assert_int_equal(cg.n, 2);
	assert_string_equal(cg.rule[0], "r0");
	assert_int_equal(cg.circuits[0], 1);
	assert_int_equal(cg.not_closed[0], 1);
	assert_string_equal(cg.rule[1], "r1");
	assert_int_equal(cg.circuits[1], 3);
	assert_int_equal(cg.not_closed[1], 1);

	struct circuits_got g = {0};
	assert_int_equal(store_get_circuit(s, "r1", "svc=b", circuit_cb, &g), 1);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], b);
	assert_string_equal(g.rule[0], "r1");
	assert_string_equal(g.key[0], "svc=b");
	assert_true(g.def_hash[0] == 0xfedcba9876543210ULL); /* all 64 bits */
	assert_int_equal(g.state[0], 1);
	assert_true(g.since[0] == T0);
	assert_int_equal(g.failures[0], 7);
	assert_true(g.next[0] == T0 + 30 * NS);
	assert_true(g.updated[0] == T0 + 1);
	assert_true(g.has_alert[0]);
	assert_memory_equal(g.alert[0], aid, 16);
	assert_int_equal(g.saved_len[0], sizeof(saved));
	assert_memory_equal(g.saved[0], saved, sizeof(saved));
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_get_circuit(s, "r1", "", circuit_cb, &g), 1);
	assert_string_equal(g.key[0], "");
	assert_false(g.has_alert[0]);
	assert_int_equal(g.saved_len[0], 0);
	assert_int_equal(store_get_circuit(s, "r1", "svc=nope", circuit_cb, &g), 0);
	assert_int_equal(store_get_circuit(s, "r9", "svc=b", circuit_cb, &g), 0);
	assert_int_equal(g.n, 1);

	/* update by id: the new state, the alert cleared */
	c.id = b;
	c.state = 0;
	c.alert_id = NULL;
	c.saved = NULL;
	c.saved_len = 0;
	c.failures_in_window = 0;
	c.next_transition_ns = 0;
	c.updated_ns = T0 + 99;
	int64_t same = 0;
	assert_int_equal(store_circuit_put(s, &c, &same), 0);
	assert_int_equal(same, b);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_get_circuit(s, "r1", "svc=b", circuit_cb, &g), 1);
	assert_int_equal(g.state[0], 0);
	assert_false(g.has_alert[0]);
	assert_int_equal(g.saved_len[0], 0);
	assert_int_equal(g.next[0], 0);
	assert_true(g.updated[0] == T0 + 99);
	assert_true(g.def_hash[0] == 0xfedcba9876543210ULL);
	/* an unknown id is an error, not a silent no-op */
	c.id = 9999;
	assert_int_equal(store_circuit_put(s, &c, &same), -1);
	assert_non_null(strstr(store_errmsg(s), "9999"));

	/* listing: by (rule, key) */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_circuits(s, NULL, circuit_cb, &g), 0);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.id[0], z);
	assert_int_equal(g.id[1], e); /* "" sorts first */
	assert_int_equal(g.id[2], a);
	assert_int_equal(g.id[3], b);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_circuits(s, "r0", circuit_cb, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.state[0], 2);
	memset(&g, 0, sizeof(g));
	g.stop_after = 2;
	assert_int_equal(store_list_circuits(s, "r1", circuit_cb, &g), 0);
	assert_int_equal(g.n, 2);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_circuits(s, "nope", circuit_cb, &g), 0);
	assert_int_equal(g.n, 0);

	/* delete */
	assert_int_equal(store_circuit_delete(s, a), 0);
	assert_int_equal(store_circuit_delete(s, a), 0); /* unknown: nothing to do */
	assert_int_equal(store_get_circuit(s, "r1", "svc=a", circuit_cb, &g), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_circuits(s, NULL, circuit_cb, &g), 0);
	assert_int_equal(g.n, 3);
	/* the key is free again */
	assert_int_equal(store_circuit_put(s, &c2, &a), 0);
	store_close(s);
}

/* ---------------------------------------------------------------- transitions */

struct transitions_got {
	int n;
	int64_t id[16];
	uint64_t at[16];
	int from[16], to[16];
	char reason[16][32];
	bool has_reason[16], has_alert[16];
	uint64_t failures[16], next[16];
	uint32_t window[16];
	char rule[16][16], key[16][16];
};

static int transition_cb(void *ctx, const struct store_transition *t)
{
	struct transitions_got *g = ctx;
	int i = g->n++;
	g->id[i] = t->id;
	g->at[i] = t->at_ns;
	g->from[i] = t->from;
	g->to[i] = t->to;
	g->has_reason[i] = t->reason != NULL;
	snprintf(g->reason[i], 32, "%s", t->reason ? t->reason : "");
	g->failures[i] = t->failures_in_window;
	g->window[i] = t->window_seconds;
	g->next[i] = t->next_transition_ns;
	g->has_alert[i] = t->alert_id != NULL;
	snprintf(g->rule[i], 16, "%s", t->rule);
	snprintf(g->key[i], 16, "%s", t->key);
	return 0;
}

static void test_transitions(void **state)
{
	struct store *s = open_writer();
	uint8_t aid[16];
	id16(aid, 0xA2, 1);
	for (int i = 0; i < 7; i++) {
		char reason[32];
		snprintf(reason, sizeof(reason), "step %d", i);
		struct store_transition t = {.rule = "r1", .key = "svc=a", .at_ns = T0 + (uint64_t)i * NS,
					     .from = i % 3, .to = (i + 1) % 3, .reason = reason,
					     .failures_in_window = (uint64_t)i, .window_seconds = 60,
					     .next_transition_ns = T0 + 100 * NS, .alert_id = i % 2 ? aid : NULL};
		assert_int_equal(store_transition_add(s, &t), 0);
		/* others, interleaved: another key of the rule, and the same key of another rule */
		struct store_transition o1 = {.rule = "r1", .key = "svc=b", .at_ns = T0, .reason = "x"};
		struct store_transition o2 = {.rule = "r2", .key = "svc=a", .at_ns = T0, .reason = "x"};
		assert_int_equal(store_transition_add(s, &o1), 0);
		assert_int_equal(store_transition_add(s, &o2), 0);
	}
	struct store_transition nr = {.rule = "r1", .key = "svc=a", .at_ns = T0 + 7 * NS, .from = 1, .to = 1};
	assert_int_equal(store_transition_add(s, &nr), 0); /* a reminder without a reason */

	/* the newest 3, oldest first */
	struct transitions_got g = {0};
	assert_int_equal(store_list_transitions(s, "r1", "svc=a", 3, transition_cb, &g), 0);
	assert_int_equal(g.n, 3);
	assert_true(g.at[0] == T0 + 5 * NS);
	assert_true(g.at[1] == T0 + 6 * NS);
	assert_true(g.at[2] == T0 + 7 * NS);
	assert_true(g.id[0] < g.id[1] && g.id[1] < g.id[2]);
	assert_string_equal(g.reason[0], "step 5");
	assert_int_equal(g.from[0], 2);
	assert_int_equal(g.to[0], 0);
	assert_int_equal(g.failures[0], 5);
	assert_int_equal(g.window[0], 60);
	assert_true(g.next[0] == T0 + 100 * NS);
	assert_true(g.has_alert[0]);
	assert_false(g.has_alert[1]);
	assert_false(g.has_reason[2]);
	assert_int_equal(g.from[2], 1);
	assert_int_equal(g.to[2], 1);

	/* all of them, in order */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_transitions(s, "r1", "svc=a", 100, transition_cb, &g), 0);
	assert_int_equal(g.n, 8);
	for (int i = 0; i < 8; i++) {
		assert_true(g.at[i] == T0 + (uint64_t)i * NS);
		assert_string_equal(g.rule[i], "r1");
		assert_string_equal(g.key[i], "svc=a");
	}
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_transitions(s, "r1", "svc=zzz", 100, transition_cb, &g), 0);
	assert_int_equal(g.n, 0);
	/* they outlive their circuit row */
	struct store_circuit c = {.rule = "r1", .key = "svc=a"};
	int64_t cid;
	assert_int_equal(store_circuit_put(s, &c, &cid), 0);
	assert_int_equal(store_circuit_delete(s, cid), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_transitions(s, "r1", "svc=a", 2, transition_cb, &g), 0);
	assert_int_equal(g.n, 2);
	store_close(s);
}

/* ---------------------------------------------------------------- alerts */

struct alerts_got {
	int n;
	int64_t id[32];
	uint8_t alert_id[32][16];
	char rule[32][16], key[32][16], severity[32][16], status[32][16], sample[32][32], reason[32][32];
	bool has_sample[32], has_reason[32];
	int state[32];
	uint64_t opened[32], resolved[32], failures[32], updated[32];
	uint32_t window[32], notices[32];
};

static int alert_cb(void *ctx, const struct store_alert *a)
{
	struct alerts_got *g = ctx;
	int i = g->n++;
	g->id[i] = a->id;
	memcpy(g->alert_id[i], a->alert_id, 16);
	snprintf(g->rule[i], 16, "%s", a->rule);
	snprintf(g->key[i], 16, "%s", a->key);
	snprintf(g->severity[i], 16, "%s", a->severity);
	snprintf(g->status[i], 16, "%s", a->status);
	g->has_sample[i] = a->sample != NULL;
	snprintf(g->sample[i], 32, "%s", a->sample ? a->sample : "");
	g->has_reason[i] = a->resolve_reason != NULL;
	snprintf(g->reason[i], 32, "%s", a->resolve_reason ? a->resolve_reason : "");
	g->state[i] = a->state;
	g->opened[i] = a->opened_ns;
	g->resolved[i] = a->resolved_ns;
	g->failures[i] = a->failures_in_window;
	g->updated[i] = a->updated_ns;
	g->window[i] = a->window_seconds;
	g->notices[i] = a->notices;
	return 0;
}

static void test_alert_put_and_get(void **state)
{
	struct store *s = open_writer();
	uint8_t aid[16], other[16];
	id16(aid, 0xA3, 1);
	id16(other, 0xA3, 2);
	struct store_alert a = {.alert_id = aid, .rule = "r1", .key = "svc=a", .severity = "critical",
				.status = "firing", .state = 1, .opened_ns = T0, .failures_in_window = 5,
				.window_seconds = 60, .sample = "{\"message\":\"boom\"}", .notices = 1,
				.updated_ns = T0};
	int64_t id = 0, id2 = 0;
	assert_int_equal(store_alert_put(s, &a, &id), 0);
	assert_true(id > 0);
	struct alerts_got g = {0};
	assert_int_equal(store_get_alert(s, aid, alert_cb, &g), 1);
	assert_int_equal(g.id[0], id);
	assert_memory_equal(g.alert_id[0], aid, 16);
	assert_string_equal(g.rule[0], "r1");
	assert_string_equal(g.key[0], "svc=a");
	assert_string_equal(g.severity[0], "critical");
	assert_string_equal(g.status[0], "firing");
	assert_int_equal(g.state[0], 1);
	assert_true(g.opened[0] == T0);
	assert_int_equal(g.resolved[0], 0);
	assert_int_equal(g.failures[0], 5);
	assert_int_equal(g.window[0], 60);
	assert_string_equal(g.sample[0], "{\"message\":\"boom\"}");
	assert_false(g.has_reason[0]);
	assert_int_equal(g.notices[0], 1);

	/* the same alert_id updates status, state, resolved_ns, resolve_reason, notices and
	 * updated_ns — and nothing else */
	struct store_alert u = a;
	u.status = "resolved";
	u.state = 0;
	u.resolved_ns = T0 + 50 * NS;
	u.resolve_reason = "probe quiet";
	u.notices = 3;
	u.updated_ns = T0 + 50 * NS;
	u.severity = "info";
	u.rule = "changed";
	u.opened_ns = 1;
	u.failures_in_window = 99;
	u.sample = NULL;
	assert_int_equal(store_alert_put(s, &u, &id2), 0);
	assert_int_equal(id2, id);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_get_alert(s, aid, alert_cb, &g), 1);
	assert_int_equal(g.id[0], id);
	assert_string_equal(g.status[0], "resolved");
	assert_int_equal(g.state[0], 0);
	assert_true(g.resolved[0] == T0 + 50 * NS);
	assert_string_equal(g.reason[0], "probe quiet");
	assert_int_equal(g.notices[0], 3);
	assert_true(g.updated[0] == T0 + 50 * NS);
	assert_string_equal(g.severity[0], "critical");
	assert_string_equal(g.rule[0], "r1");
	assert_true(g.opened[0] == T0);
	assert_int_equal(g.failures[0], 5);
	assert_string_equal(g.sample[0], "{\"message\":\"boom\"}");

	/* another alert gets another row; unknown ids are 0; an id is required */
	a.alert_id = other;
	assert_int_equal(store_alert_put(s, &a, &id2), 0);
	assert_true(id2 > id);
	uint8_t unknown[16];
	id16(unknown, 0xA3, 3);
	assert_int_equal(store_get_alert(s, unknown, alert_cb, &g), 0);
	a.alert_id = NULL;
	assert_int_equal(store_alert_put(s, &a, &id2), -1);
	store_close(s);
	assert_int_equal(count_rows("alerts"), 2);
}

static void test_alert_list(void **state)
{
	struct store *s = open_writer();
	int64_t ids[12];
	/* 12 alerts opened a second apart: rules r0/r1/r2 in turn, every third resolved later */
	for (int i = 0; i < 12; i++) {
		uint8_t aid[16];
		id16(aid, 0xA4, (uint8_t)i);
		bool resolved = i % 3 == 0;
		struct store_alert a = {.alert_id = aid, .rule = i % 3 == 1 ? "r1" : i % 3 == 2 ? "r2" : "r0",
					.key = "k", .severity = "error", .status = resolved ? "resolved" : "firing",
					.state = resolved ? 0 : 1, .opened_ns = T0 + (uint64_t)i * NS,
					.resolved_ns = resolved ? T0 + 100 * NS : 0, .notices = 1,
					.updated_ns = resolved ? T0 + 100 * NS : T0 + (uint64_t)i * NS};
		assert_int_equal(store_alert_put(s, &a, &ids[i]), 0);
	}
	store_close(s);
	/* a reader handle */
	s = open_path(db.url, true);

	/* all, newest first, paged by the before_id cursor: no row skipped or repeated */
	int64_t cursor = 0;
	int total = 0;
	for (;;) {
		struct alerts_got g = {0};
		struct store_alert_filter f = {.before_id = cursor, .limit = 5};
		assert_int_equal(store_list_alerts(s, &f, alert_cb, &g), 0);
		for (int i = 0; i < g.n; i++)
			assert_int_equal(g.id[i], ids[11 - total - i]);
		total += g.n;
		if (g.n < 5)
			break;
		cursor = g.id[g.n - 1];
	}
	assert_int_equal(total, 12);

	/* status */
	struct alerts_got g = {0};
	struct store_alert_filter f = {.status = "resolved", .limit = 100};
	assert_int_equal(store_list_alerts(s, &f, alert_cb, &g), 0);
	assert_int_equal(g.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(g.status[i], "resolved");
		assert_int_equal(g.id[i], ids[9 - 3 * i]);
	}
	memset(&g, 0, sizeof(g));
	f = (struct store_alert_filter){.status = "firing", .limit = 100};
	assert_int_equal(store_list_alerts(s, &f, alert_cb, &g), 0);
	assert_int_equal(g.n, 8);
	/* status and cursor */
	memset(&g, 0, sizeof(g));
	f = (struct store_alert_filter){.status = "firing", .before_id = ids[5], .limit = 100};
	assert_int_equal(store_list_alerts(s, &f, alert_cb, &g), 0);
	assert_int_equal(g.n, 3); /* 4, 2, 1 */
	assert_int_equal(g.id[0], ids[4]);
	assert_int_equal(g.id[2], ids[1]);
	/* rule */
	memset(&g, 0, sizeof(g));
	f = (struct store_alert_filter){.rule = "r1", .limit = 100};
	assert_int_equal(store_list_alerts(s, &f, alert_cb, &g), 0);
	assert_int_equal(g.n, 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(g.rule[i], "r1");
	/* rule and status: r0 alerts are the resolved ones */
	memset(&g, 0, sizeof(g));
	f = (struct store_alert_filter){.rule = "r0", .status = "firing", .limit = 100};
	assert_int_equal(store_list_alerts(s, &f, alert_cb, &g), 0);
	assert_int_equal(g.n, 0);
	/* since: opened at or after T0+8s (8..11), or updated since (the resolved ones, at
	 * T0+100s: 0, 3, 6, 9) */
	memset(&g, 0, sizeof(g));
	f = (struct store_alert_filter){.since_ns = T0 + 8 * NS, .limit = 100};
	assert_int_equal(store_list_alerts(s, &f, alert_cb, &g), 0);
	assert_int_equal(g.n, 7);
	const int want[] = {11, 10, 9, 8, 6, 3, 0};
	for (int i = 0; i < 7; i++)
		assert_int_equal(g.id[i], ids[want[i]]);
	memset(&g, 0, sizeof(g));
	f = (struct store_alert_filter){.since_ns = T0 + 101 * NS, .limit = 100};
	assert_int_equal(store_list_alerts(s, &f, alert_cb, &g), 0);
	assert_int_equal(g.n, 0);
	/* limit */
	memset(&g, 0, sizeof(g));
	f = (struct store_alert_filter){.limit = 2};
	assert_int_equal(store_list_alerts(s, &f, alert_cb, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.id[0], ids[11]);
	/* a reader cannot write */
	uint8_t aid[16];
	id16(aid, 0xA4, 99);
	struct store_alert a = {.alert_id = aid, .rule = "r", .key = "k", .severity = "error", .status = "firing"};
	int64_t id;
	assert_int_equal(store_alert_put(s, &a, &id), -1);
	store_close(s);
}

/* ---------------------------------------------------------------- outbox */

struct deliveries_got {
	int n;
	int64_t id[32];
	uint8_t alert_id[32][16];
	char notifier[32][16], kind[32][16], key[32][64], error[32][32], body[32][64];
	bool has_error[32], has_body[32];
	size_t body_len[32];
	uint32_t seq[32], attempts[32];
	int status[32];
	uint64_t next[32], created[32], updated[32];
	long http[32];
};

static int delivery_cb(void *ctx, const struct store_delivery *d)
{
	struct deliveries_got *g = ctx;
	int i = g->n++;
	g->id[i] = d->id;
	memcpy(g->alert_id[i], d->alert_id, 16);
	snprintf(g->notifier[i], 16, "%s", d->notifier);
	snprintf(g->kind[i], 16, "%s", d->kind);
	snprintf(g->key[i], 64, "%s", d->idempotency_key);
	g->has_error[i] = d->last_error && *d->last_error;
	snprintf(g->error[i], 32, "%s", d->last_error ? d->last_error : "");
	g->has_body[i] = d->body != NULL;
	g->body_len[i] = d->body_len;
	if (d->body)
		snprintf(g->body[i], 64, "%.*s", (int)d->body_len, d->body);
	g->seq[i] = d->seq;
	g->attempts[i] = d->attempts;
	g->status[i] = d->status;
	g->next[i] = d->next_attempt_ns;
	g->created[i] = d->created_ns;
	g->updated[i] = d->updated_ns;
	g->http[i] = d->http_status;
	return 0;
}

static int64_t add_delivery(struct store *s, const uint8_t aid[16], const char *notifier, const char *kind,
			    uint32_t seq, int status, const char *body)
{
	char key[64];
	hex(aid, 16, key);
	snprintf(key + 32, sizeof(key) - 32, ":%s:%u", kind, seq);
	struct store_delivery d = {.alert_id = aid, .notifier = notifier, .kind = kind, .seq = seq,
				   .idempotency_key = key, .body = body, .body_len = strlen(body), .status = status,
				   .created_ns = T0, .updated_ns = T0};
	int64_t id = 0;
	assert_int_equal(store_delivery_add(s, &d, &id), 0);
	assert_true(id > 0);
	return id;
}

static void test_deliveries(void **state)
{
	assert_string_equal(store_delivery_status_name(STORE_DELIVERY_PENDING), "pending");
	assert_string_equal(store_delivery_status_name(STORE_DELIVERY_DELIVERED), "delivered");
	assert_string_equal(store_delivery_status_name(STORE_DELIVERY_DEAD), "dead");
	assert_string_equal(store_delivery_status_name(STORE_DELIVERY_SILENCED), "silenced");
	assert_string_equal(store_delivery_status_name(4), "?");
	assert_string_equal(store_delivery_status_name(-1), "?");

	struct store *s = open_writer();
	uint8_t a1[16], a2[16];
	id16(a1, 0xD1, 1);
	id16(a2, 0xD1, 2);
	int64_t pend[7];
	for (int i = 0; i < 7; i++) /* pending, of both alerts */
		pend[i] = add_delivery(s, i % 2 ? a2 : a1, "hook", "firing", (uint32_t)(i / 2 + 1),
				       STORE_DELIVERY_PENDING, "{\"n\":1}");
	int64_t done = add_delivery(s, a1, "pager", "resolved", 1, STORE_DELIVERY_DELIVERED, "{}");
	int64_t quiet = add_delivery(s, a1, "pager", "firing", 9, STORE_DELIVERY_SILENCED, "{}");
	/* an idempotency key that is not the usual one is kept as given */
	struct store_delivery odd = {.alert_id = a2, .notifier = "hook", .kind = "firing", .seq = 1,
				     .idempotency_key = "custom-key", .body = "{\"x\":\"y\"}", .body_len = 9,
				     .status = STORE_DELIVERY_DEAD, .attempts = 8, .next_attempt_ns = 0,
				     .http_status = 503, .last_error = "HTTP 503", .created_ns = T0,
				     .updated_ns = T0 + 5};
	int64_t dead = 0;
	assert_int_equal(store_delivery_add(s, &odd, &dead), 0);
	odd.status = 7;
	assert_int_equal(store_delivery_add(s, &odd, &dead), -1);
	assert_non_null(strstr(store_errmsg(s), "status"));

	/* pending, paged by after_id */
	int64_t after = 0;
	int seen = 0;
	for (;;) {
		struct deliveries_got g = {0};
		assert_int_equal(store_list_deliveries_by_status(s, STORE_DELIVERY_PENDING, after, 3, false, delivery_cb, &g),
				 0);
		for (int i = 0; i < g.n; i++) {
			assert_int_equal(g.id[i], pend[seen + i]);
			assert_int_equal(g.status[i], STORE_DELIVERY_PENDING);
			assert_false(g.has_body[i]);
			assert_int_equal(g.body_len[i], 0);
		}
		seen += g.n;
		if (g.n < 3)
			break;
		after = g.id[g.n - 1];
	}
	assert_int_equal(seen, 7);
	struct deliveries_got g = {0};
	assert_int_equal(store_list_deliveries_by_status(s, STORE_DELIVERY_DEAD, 0, 10, false, delivery_cb, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], dead);
	assert_string_equal(g.key[0], "custom-key");
	assert_int_equal(g.http[0], 503);
	assert_string_equal(g.error[0], "HTTP 503");
	assert_int_equal(g.attempts[0], 8);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_deliveries_by_status(s, STORE_DELIVERY_DELIVERED, 0, 10, false, delivery_cb, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], done);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_deliveries_by_status(s, STORE_DELIVERY_SILENCED, 0, 10, false, delivery_cb, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], quiet);
	assert_int_equal(store_list_deliveries_by_status(s, 9, 0, 10, false, delivery_cb, &g), -1);

	/* an attempt's result */
	assert_int_equal(store_delivery_update(s, pend[0], STORE_DELIVERY_PENDING, 1, T0 + 10 * NS, 500,
					       "HTTP 500", T0 + 1),
			 1);
	assert_int_equal(store_delivery_update(s, pend[2], STORE_DELIVERY_DELIVERED, 1, 0, 200, "", T0 + 2), 1);
	assert_int_equal(store_delivery_update(s, 12345, STORE_DELIVERY_DELIVERED, 1, 0, 200, NULL, T0 + 2), 0);
	assert_int_equal(store_delivery_update(s, pend[1], -1, 1, 0, 200, NULL, T0 + 2), -1);

	/* one alert's rows, by id, without the body */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_deliveries(s, a1, delivery_cb, &g), 0);
	assert_int_equal(g.n, 6); /* pend 0, 2, 4, 6, done, quiet */
	assert_int_equal(g.id[0], pend[0]);
	assert_int_equal(g.id[1], pend[2]);
	assert_int_equal(g.id[4], done);
	assert_int_equal(g.id[5], quiet);
	for (int i = 0; i < g.n; i++) {
		assert_false(g.has_body[i]);
		assert_int_equal(g.body_len[i], 0);
		assert_memory_equal(g.alert_id[i], a1, 16);
	}
	assert_int_equal(g.status[0], STORE_DELIVERY_PENDING);
	assert_int_equal(g.attempts[0], 1);
	assert_true(g.next[0] == T0 + 10 * NS);
	assert_int_equal(g.http[0], 500);
	assert_string_equal(g.error[0], "HTTP 500");
	assert_true(g.updated[0] == T0 + 1);
	assert_true(g.created[0] == T0);
	assert_int_equal(g.status[1], STORE_DELIVERY_DELIVERED);
	assert_int_equal(g.http[1], 200);
	assert_false(g.has_error[1]); /* "" = none */
	char want[64];
	hex(a1, 16, want);
	snprintf(want + 32, sizeof(want) - 32, ":firing:2");
	assert_string_equal(g.key[1], want); /* the usual key, rebuilt */
	assert_string_equal(g.notifier[4], "pager");
	assert_string_equal(g.kind[4], "resolved");
	assert_int_equal(g.seq[5], 9);
	/* pending no longer lists the delivered one */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_deliveries_by_status(s, STORE_DELIVERY_PENDING, 0, 100, false, delivery_cb, &g), 0);
	assert_int_equal(g.n, 6);
	uint8_t none[16];
	id16(none, 0xD1, 3);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_deliveries(s, none, delivery_cb, &g), 0);
	assert_int_equal(g.n, 0);

	/* one row with its body */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_get_delivery(s, dead, delivery_cb, &g), 1);
	assert_true(g.has_body[0]);
	assert_int_equal(g.body_len[0], 9);
	assert_string_equal(g.body[0], "{\"x\":\"y\"}");
	assert_string_equal(g.key[0], "custom-key");
	assert_memory_equal(g.alert_id[0], a2, 16);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_get_delivery(s, pend[1], delivery_cb, &g), 1);
	assert_string_equal(g.body[0], "{\"n\":1}");
	hex(a2, 16, want);
	snprintf(want + 32, sizeof(want) - 32, ":firing:1");
	assert_string_equal(g.key[0], want);
	assert_int_equal(store_get_delivery(s, 12345, delivery_cb, &g), 0);
	store_close(s);

	/* the usual key is not stored, only rebuilt; the odd one is */
	assert_int_equal(sql_int("SELECT count(*) FROM deliveries WHERE idem_key IS NOT NULL"), 1);
}

/* ---------------------------------------------------------------- silences */

struct silences_got {
	int n;
	int64_t id[16];
	char rule[16][16], matchers[16][32], comment[16][32], by[16][32];
	uint64_t created[16], starts[16], ends[16], expired[16];
};

static int silence_cb(void *ctx, const struct store_silence *si)
{
	struct silences_got *g = ctx;
	int i = g->n++;
	g->id[i] = si->id;
	snprintf(g->rule[i], 16, "%s", si->rule);
	snprintf(g->matchers[i], 32, "%s", si->matchers);
	snprintf(g->comment[i], 32, "%s", si->comment ? si->comment : "");
	snprintf(g->by[i], 32, "%s", si->created_by ? si->created_by : "");
	g->created[i] = si->created_ns;
	g->starts[i] = si->starts_ns;
	g->ends[i] = si->ends_ns;
	g->expired[i] = si->expired_ns;
	return 0;
}

static int64_t add_silence(struct store *s, const char *rule, uint64_t starts, uint64_t ends)
{
	struct store_silence si = {.rule = rule, .matchers = "service=check*", .comment = "deploy",
				   .created_by = "ops@host", .created_ns = T0 - 100 * NS, .starts_ns = starts,
				   .ends_ns = ends};
	int64_t id = 0;
	assert_int_equal(store_silence_add(s, &si, &id), 0);
	assert_true(id > 0);
	return id;
}

static void test_silences(void **state)
{
	struct store *s = open_writer();
	uint64_t now = T0;
	int64_t active = add_silence(s, "r1", now - 10 * NS, now + 100 * NS);
	int64_t later = add_silence(s, "r2", now + 50 * NS, now + 200 * NS);   /* not started */
	int64_t over = add_silence(s, "r3", now - 100 * NS, now - NS);        /* ended */
	int64_t cut = add_silence(s, "r4", now - 10 * NS, now + 100 * NS);    /* expired below */
	struct store_silence every = {.rule = "r5", .matchers = "", .created_ns = now, .starts_ns = now,
				      .ends_ns = now + NS};
	int64_t all_keys;
	assert_int_equal(store_silence_add(s, &every, &all_keys), 0);

	struct silences_got g = {0};
	assert_int_equal(store_list_silences(s, false, now, 0, silence_cb, &g), 0);
	assert_int_equal(g.n, 3); /* newest first: all_keys, cut, active */
	assert_int_equal(g.id[0], all_keys);
	assert_int_equal(g.id[1], cut);
	assert_int_equal(g.id[2], active);
	assert_string_equal(g.matchers[0], "");
	assert_string_equal(g.rule[2], "r1");
	assert_string_equal(g.matchers[2], "service=check*");
	assert_string_equal(g.comment[2], "deploy");
	assert_string_equal(g.by[2], "ops@host");
	assert_true(g.created[2] == T0 - 100 * NS);
	assert_true(g.starts[2] == now - 10 * NS);
	assert_true(g.ends[2] == now + 100 * NS);
	assert_int_equal(g.expired[2], 0);

	/* expire: once */
	assert_int_equal(store_silence_expire(s, cut, now + NS), 1);
	assert_int_equal(store_silence_expire(s, cut, now + 2 * NS), 0);
	assert_int_equal(store_silence_expire(s, over, now), 0);   /* ended by itself */
	assert_int_equal(store_silence_expire(s, 999, now), 0);    /* unknown */
	/* one by id, ended or not */
	struct silences_got one = {0};
	assert_int_equal(store_get_silence(s, cut, silence_cb, &one), 1);
	assert_int_equal(one.n, 1);
	assert_int_equal(one.id[0], cut);
	assert_string_equal(one.rule[0], "r4");
	assert_true(one.expired[0] == now + NS);
	assert_int_equal(store_get_silence(s, 999, silence_cb, &one), 0);
	assert_int_equal(one.n, 1);
	/* at the moment it was expired it no longer holds; just before, it did */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_silences(s, false, now + NS, 0, silence_cb, &g), 0);
	assert_int_equal(g.n, 1); /* all_keys ended at now + 1 s too */
	assert_int_equal(g.id[0], active);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_silences(s, false, now + NS - 1, 0, silence_cb, &g), 0);
	assert_int_equal(g.n, 3);
	/* later: the one not started yet holds, the first has ended (ends is exclusive) */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_silences(s, false, now + 100 * NS, 0, silence_cb, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], later);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_silences(s, false, now + 50 * NS, 0, silence_cb, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.id[0], later);
	assert_int_equal(g.id[1], active);

	/* all of them, newest first, with the expire recorded; and a limit */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_silences(s, true, now, 0, silence_cb, &g), 0);
	assert_int_equal(g.n, 5);
	const int64_t order[] = {all_keys, cut, over, later, active};
	for (int i = 0; i < 5; i++)
		assert_int_equal(g.id[i], order[i]);
	assert_true(g.expired[1] == now + NS);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_silences(s, true, now, 2, silence_cb, &g), 0);
	assert_int_equal(g.n, 2);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_list_silences(s, false, now - 5 * NS, 1, silence_cb, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], cut);
	store_close(s);
}

/* ---------------------------------------------------------------- outcome batches */

static void test_outcome_batches(void **state)
{
	struct store *s = open_writer();
	uint8_t b[16];
	for (int i = 0; i < 10; i++) {
		id16(b, 0xB0, (uint8_t)i);
		assert_int_equal(store_outcome_batch_seen(s, b, T0 + (uint64_t)i * NS), 1);
	}
	id16(b, 0xB0, 3);
	assert_int_equal(store_outcome_batch_seen(s, b, T0 + 50 * NS), 0);
	assert_int_equal(store_outcome_batch_seen(s, b, T0 + 3 * NS), 0);

	/* before T0+6s: 0..5, at most 4 a call */
	assert_int_equal(store_outcome_batches_prune(s, T0 + 6 * NS, 4), 4);
	assert_int_equal(store_outcome_batches_prune(s, T0 + 6 * NS, 4), 2);
	assert_int_equal(store_outcome_batches_prune(s, T0 + 6 * NS, 4), 0);
	/* the oldest went first; a forgotten id counts again, a kept one does not */
	for (int i = 0; i < 10; i++) {
		id16(b, 0xB0, (uint8_t)i);
		assert_int_equal(store_outcome_batch_seen(s, b, T0 + 60 * NS), i < 6 ? 1 : 0);
	}
	/* not inside the caller's transaction */
	assert_int_equal(store_txn_begin(s), 0);
	assert_int_equal(store_outcome_batches_prune(s, T0 + 100 * NS, 10), -1);
	store_txn_rollback(s);
	store_close(s);
	assert_int_equal(count_rows("outcome_batches"), 10);
}

/* ---------------------------------------------------------------- upkeep */

static int64_t put_alert(struct store *s, uint8_t n, const char *status, uint64_t opened, uint64_t resolved)
{
	uint8_t aid[16];
	id16(aid, 0xC0, n);
	struct store_alert a = {.alert_id = aid, .rule = "r", .key = "k", .severity = "error", .status = status,
				.opened_ns = opened, .resolved_ns = resolved,
				.updated_ns = resolved ? resolved : opened};
	int64_t id;
	assert_int_equal(store_alert_put(s, &a, &id), 0);
	return id;
}

static bool alert_exists(struct store *s, uint8_t n)
{
	uint8_t aid[16];
	struct alerts_got g = {0};
	id16(aid, 0xC0, n);
	int rc = store_get_alert(s, aid, alert_cb, &g);
	assert_true(rc >= 0);
	return rc == 1;
}

static int deliveries_of(struct store *s, uint8_t n)
{
	uint8_t aid[16];
	struct deliveries_got g = {0};
	id16(aid, 0xC0, n);
	assert_int_equal(store_list_deliveries(s, aid, delivery_cb, &g), 0);
	return g.n;
}

static int64_t delivery_for(struct store *s, uint8_t n, int status)
{
	uint8_t aid[16];
	id16(aid, 0xC0, n);
	return add_delivery(s, aid, "hook", "firing", 1, status, "{}");
}

static void test_alerts_prune(void **state)
{
	struct store *s = open_writer();
	const uint64_t old = T0 - 40 * 86400 * NS, cutoff = T0 - 30 * 86400 * NS;
	/* transitions: 5 old, then 3 recent */
	for (int i = 0; i < 8; i++) {
		struct store_transition t = {.rule = "r", .key = "k", .at_ns = i < 5 ? old + (uint64_t)i : T0,
					     .reason = "x"};
		assert_int_equal(store_transition_add(s, &t), 0);
	}
	/* alerts */
	put_alert(s, 1, "resolved", old, old + NS);         /* goes, with its two finished rows */
	delivery_for(s, 1, STORE_DELIVERY_DELIVERED);
	delivery_for(s, 1, STORE_DELIVERY_SILENCED);
	put_alert(s, 2, "resolved", old, old + NS);         /* goes: no outbox rows */
	put_alert(s, 3, "resolved", old, old + NS);         /* stays: a pending delivery */
	delivery_for(s, 3, STORE_DELIVERY_DELIVERED);
	int64_t p3 = delivery_for(s, 3, STORE_DELIVERY_PENDING);
	put_alert(s, 4, "resolved", old, old + NS);         /* stays: a dead delivery */
	int64_t d4 = delivery_for(s, 4, STORE_DELIVERY_DEAD);
	put_alert(s, 5, "firing", old, 0);                  /* stays: firing */
	delivery_for(s, 5, STORE_DELIVERY_DELIVERED);
	put_alert(s, 6, "resolved", old, T0);               /* stays: resolved recently */
	delivery_for(s, 6, STORE_DELIVERY_DELIVERED);
	/* silences */
	add_silence(s, "gone1", old, old + NS);             /* ended long ago */
	int64_t cut = add_silence(s, "gone2", old, T0 + 86400 * NS);
	assert_int_equal(store_silence_expire(s, cut, old + 2 * NS), 1); /* expired long ago */
	add_silence(s, "keep1", old, T0 + NS);              /* still in force */
	add_silence(s, "keep2", old, cutoff + NS);          /* ended after the cutoff */

	/* not inside the caller's transaction */
	assert_int_equal(store_txn_begin(s), 0);
	assert_int_equal(store_alerts_prune(s, cutoff, 100), -1);
	store_txn_rollback(s);

	/* 5 transitions + 2 alerts + 2 outbox rows + 2 silences */
	assert_int_equal(store_alerts_prune(s, cutoff, 100), 11);
	assert_int_equal(store_alerts_prune(s, cutoff, 100), 0);
	assert_false(alert_exists(s, 1));
	assert_false(alert_exists(s, 2));
	assert_int_equal(deliveries_of(s, 1), 0);
	for (uint8_t n = 3; n <= 6; n++)
		assert_true(alert_exists(s, n));
	assert_int_equal(deliveries_of(s, 3), 2);
	assert_int_equal(deliveries_of(s, 4), 1);
	assert_int_equal(deliveries_of(s, 5), 1);
	assert_int_equal(deliveries_of(s, 6), 1);
	struct transitions_got tg = {0};
	assert_int_equal(store_list_transitions(s, "r", "k", 100, transition_cb, &tg), 0);
	assert_int_equal(tg.n, 3);
	for (int i = 0; i < 3; i++)
		assert_true(tg.at[i] == T0);
	struct silences_got sg = {0};
	assert_int_equal(store_list_silences(s, true, T0, 0, silence_cb, &sg), 0);
	assert_int_equal(sg.n, 2);
	assert_string_equal(sg.rule[0], "keep2");
	assert_string_equal(sg.rule[1], "keep1");

	/* once its pending row is delivered and its dead one replayed and delivered, each goes */
	assert_int_equal(store_delivery_update(s, p3, STORE_DELIVERY_DELIVERED, 1, 0, 200, NULL, T0), 1);
	assert_int_equal(store_delivery_update(s, d4, STORE_DELIVERY_DELIVERED, 9, 0, 200, NULL, T0), 1);
	/* at most `limit` of each kind */
	assert_int_equal(store_alerts_prune(s, cutoff, 1), 1 + 2); /* alert 3 and its 2 rows */
	assert_true(alert_exists(s, 4));
	assert_int_equal(store_alerts_prune(s, cutoff, 1), 1 + 1);
	assert_false(alert_exists(s, 3));
	assert_false(alert_exists(s, 4));
	assert_true(alert_exists(s, 5));
	assert_int_equal(store_alerts_prune(s, cutoff, 1), 0);
	/* a firing alert stays, however old */
	/* 3 transitions, alert 6 and its row, 2 silences */
	assert_int_equal(store_alerts_prune(s, T0 + 1000 * NS, 100), 3 + 2 + 2);
	assert_true(alert_exists(s, 5));
	assert_int_equal(deliveries_of(s, 5), 1);
	store_close(s);
}

/* store_maintain prunes both, a bounded step at a time, and says when there is more. */
static void test_maintain_prunes(void **state)
{
	struct store *s = open_writer();
	const uint64_t day = 86400 * NS;
	assert_int_equal(store_txn_begin(s), 0);
	for (int i = 0; i < STORE_MAINT_BATCH + 5; i++) {
		uint8_t b[16];
		id16(b, 0xB1, 0);
		b[13] = (uint8_t)(i >> 8);
		b[14] = (uint8_t)i;
		assert_int_equal(store_outcome_batch_seen(s, b, T0 - 2 * day + (uint64_t)i), 1);
		struct store_transition t = {.rule = "r", .key = "k", .at_ns = T0 - 40 * day + (uint64_t)i};
		assert_int_equal(store_transition_add(s, &t), 0);
	}
	for (int i = 0; i < 3; i++) {
		uint8_t b[16];
		id16(b, 0xB2, (uint8_t)i);
		assert_int_equal(store_outcome_batch_seen(s, b, T0 - 3600 * NS), 1); /* within the horizon */
	}
	put_alert(s, 1, "resolved", T0 - 40 * day, T0 - 31 * day);
	put_alert(s, 2, "resolved", T0 - 40 * day, T0 - 29 * day);
	put_alert(s, 3, "firing", T0 - 40 * day, 0);
	delivery_for(s, 1, STORE_DELIVERY_DELIVERED);
	assert_int_equal(store_txn_commit(s), 0);

	/* the default history (30 days) */
	struct store_maint_opts mo = {.now_ns = T0};
	bool more = false;
	assert_int_equal(store_maintain(s, &mo, &more), 0);
	assert_true(more);
	assert_int_equal(count_rows("outcome_batches"), 5 + 3);
	assert_int_equal(count_rows("transitions"), 5);
	assert_false(alert_exists(s, 1));
	assert_int_equal(deliveries_of(s, 1), 0);
	assert_true(alert_exists(s, 2));
	assert_int_equal(store_maintain(s, &mo, &more), 0);
	assert_false(more);
	assert_int_equal(count_rows("outcome_batches"), 3);
	assert_int_equal(count_rows("transitions"), 0);
	assert_int_equal(store_maintain(s, &mo, &more), 0);
	assert_false(more);
	assert_true(alert_exists(s, 2));
	/* a shorter history */
	mo.alert_history_ns = 10 * day;
	assert_int_equal(store_maintain(s, &mo, &more), 0);
	assert_false(alert_exists(s, 2));
	assert_true(alert_exists(s, 3));
	assert_int_equal(count_rows("outcome_batches"), 3);
	/* within store_txn_*: refused, nothing done */
	mo.now_ns = T0 + 2 * day;
	assert_int_equal(store_txn_begin(s), 0);
	assert_int_equal(store_maintain(s, &mo, &more), -1);
	store_txn_rollback(s);
	assert_int_equal(count_rows("outcome_batches"), 3);
	assert_int_equal(store_maintain(s, &mo, &more), 0);
	assert_int_equal(count_rows("outcome_batches"), 0);
	store_close(s);
}

/* Everything written in a transaction that is rolled back is gone. */
static void test_rollback(void **state)
{
	struct store *s = open_writer();
	uint8_t aid[16], b[16];
	id16(aid, 0xF0, 1);
	id16(b, 0xF0, 2);
	assert_int_equal(store_txn_begin(s), 0);
	struct store_circuit c = {.rule = "r", .key = "k", .state = 1, .alert_id = aid};
	int64_t id;
	assert_int_equal(store_circuit_put(s, &c, &id), 0);
	struct store_transition t = {.rule = "r", .key = "k", .at_ns = T0, .from = 0, .to = 1, .alert_id = aid};
	assert_int_equal(store_transition_add(s, &t), 0);
	put_alert(s, 7, "firing", T0, 0);
	delivery_for(s, 7, STORE_DELIVERY_PENDING);
	add_silence(s, "r", T0, T0 + NS);
	assert_int_equal(store_outcome_batch_seen(s, b, T0), 1);
	/* visible inside the transaction */
	struct circuits_got g = {0};
	assert_int_equal(store_get_circuit(s, "r", "k", circuit_cb, &g), 1);
	assert_true(alert_exists(s, 7));
	store_txn_rollback(s);

	for (int i = 0; i < N_ALERT_TABLES; i++)
		assert_int_equal(count_rows(alert_tables[i]), 0);
	assert_int_equal(store_get_circuit(s, "r", "k", circuit_cb, &g), 0);
	assert_false(alert_exists(s, 7));
	assert_int_equal(store_outcome_batch_seen(s, b, T0), 1); /* new again */
	/* the handle's statements work after the rollback, inside a committed transaction */
	assert_int_equal(store_txn_begin(s), 0);
	assert_int_equal(store_circuit_put(s, &c, &id), 0);
	assert_int_equal(store_transition_add(s, &t), 0);
	assert_int_equal(store_txn_commit(s), 0);
	store_close(s);
	assert_int_equal(count_rows("circuits"), 1);
	assert_int_equal(count_rows("transitions"), 1);
}

/* The readers work on a read-only handle; the writer calls fail there, cleanly. */
static void test_reader_handle(void **state)
{
	struct store *s = open_writer();
	uint8_t aid[16];
	id16(aid, 0xC0, 1);
	struct store_circuit c = {.rule = "r", .key = "k"};
	int64_t cid, did, sid;
	assert_int_equal(store_circuit_put(s, &c, &cid), 0);
	struct store_transition t = {.rule = "r", .key = "k", .at_ns = T0};
	assert_int_equal(store_transition_add(s, &t), 0);
	put_alert(s, 1, "firing", T0, 0);
	did = delivery_for(s, 1, STORE_DELIVERY_PENDING);
	sid = add_silence(s, "r", T0, T0 + NS);
	store_close(s);

	struct store *r = open_path(db.url, true);
	struct circuits_got cg = {0};
	assert_int_equal(store_list_circuits(r, NULL, circuit_cb, &cg), 0);
	assert_int_equal(cg.n, 1);
	assert_int_equal(store_get_circuit(r, "r", "k", circuit_cb, &cg), 1);
	struct transitions_got tg = {0};
	assert_int_equal(store_list_transitions(r, "r", "k", 10, transition_cb, &tg), 0);
	assert_int_equal(tg.n, 1);
	assert_true(alert_exists(r, 1));
	struct deliveries_got dg = {0};
	assert_int_equal(store_list_deliveries_by_status(r, STORE_DELIVERY_PENDING, 0, 10, false, delivery_cb, &dg), 0);
	assert_int_equal(store_list_deliveries(r, aid, delivery_cb, &dg), 0);
	assert_int_equal(store_get_delivery(r, did, delivery_cb, &dg), 1);
	assert_int_equal(dg.n, 3);
	struct silences_got sg = {0};
	assert_int_equal(store_list_silences(r, false, T0, 0, silence_cb, &sg), 0);
	assert_int_equal(sg.n, 1);
	assert_int_equal(sg.id[0], sid);

	assert_int_equal(store_circuit_put(r, &c, &cid), -1);
	assert_int_equal(store_transition_add(r, &t), -1);
	assert_int_equal(store_silence_expire(r, sid, T0), -1);
	assert_int_equal(store_delivery_update(r, did, STORE_DELIVERY_DEAD, 1, 0, 0, NULL, T0), -1);
	assert_int_equal(store_outcome_batch_seen(r, aid, T0), -1);
	assert_int_equal(store_alerts_prune(r, T0 + 10 * NS, 10), -1);
	assert_int_equal(store_outcome_batches_prune(r, T0, 10), -1);
	assert_non_null(store_errmsg(r));
	assert_true(strlen(store_errmsg(r)) > 0);
	store_close(r);
	assert_int_equal(count_rows("silences"), 1);
}

/* ---------------------------------------------------------------- what the mapping keeps */

/* SQLite gives a deleted row's id again when it was the largest (INTEGER PRIMARY KEY without
 * AUTOINCREMENT); an identity column never does, so an id seen once (a cursor, a log line)
 * never names another row. */
static void test_ids_never_reused(void **state)
{
	struct store *s = open_writer();
	struct store_circuit a = {.rule = "r", .key = "a"}, b = {.rule = "r", .key = "b"}, c = {.rule = "r", .key = "c"};
	int64_t ia, ib, ic;
	assert_int_equal(store_circuit_put(s, &a, &ia), 0);
	assert_int_equal(store_circuit_put(s, &b, &ib), 0);
	assert_int_equal(store_circuit_delete(s, ib), 0);
	assert_int_equal(store_circuit_put(s, &c, &ic), 0);
	assert_true(ic > ib);
	int64_t s1 = add_silence(s, "r", T0, T0 + NS);
	assert_int_equal(store_alerts_prune(s, T0 + 2 * NS, 10), 1); /* the silence ended: pruned */
	int64_t s2 = add_silence(s, "r", T0, T0 + NS);
	assert_true(s2 > s1);
	/* an alert's update keeps its id; the next alert's is larger (the upsert may leave a gap) */
	int64_t x = put_alert(s, 1, "firing", T0, 0);
	assert_int_equal(put_alert(s, 1, "resolved", T0, T0 + NS), x);
	assert_true(put_alert(s, 2, "firing", T0, 0) > x);
	store_close(s);
}

struct page_walk {
	int n, stop_at;
	char rule[16], key[16];
	bool ordered;
};

static int page_cb(void *ctx, const struct store_circuit *c)
{
	struct page_walk *w = ctx;
	if (w->n && (strcmp(c->rule, w->rule) < 0 || (!strcmp(c->rule, w->rule) && strcmp(c->key, w->key) <= 0)))
		w->ordered = false;
	snprintf(w->rule, sizeof(w->rule), "%s", c->rule);
	snprintf(w->key, sizeof(w->key), "%s", c->key);
	w->n++;
	return w->stop_at && w->n >= w->stop_at;
}

/* More circuits than one statement reads (pg_alerts.c's pages of 1 000): every one once, in
 * (rule, key) order by bytes, across the pages' seams; a rule's alone; an early stop. */
static void test_circuit_pages(void **state)
{
	struct store *s = open_writer();
	assert_int_equal(store_txn_begin(s), 0);
	/* p1 has 1 500 keys, p0 1 100; inserted out of order; keys that sort differently by bytes
	 * than by a natural-language collation ("B" < "a" < "b" bytewise) */
	for (int i = 0; i < 2600; i++) {
		int j = (i * 7919) % 2600; /* 7919 is prime to 2600: each j once */
		char key[16];
		const char *rule = j < 1500 ? "p1" : "p0";
		int k = j < 1500 ? j : j - 1500;
		snprintf(key, sizeof(key), "%c%04d", "aBb"[k % 3], k);
		struct store_circuit c = {.rule = rule, .key = key, .updated_ns = T0};
		int64_t id;
		assert_int_equal(store_circuit_put(s, &c, &id), 0);
	}
	assert_int_equal(store_txn_commit(s), 0);
	struct page_walk w = {.ordered = true};
	assert_int_equal(store_list_circuits(s, NULL, page_cb, &w), 0);
	assert_int_equal(w.n, 2600);
	assert_true(w.ordered);
	assert_string_equal(w.rule, "p1");
	assert_string_equal(w.key, "b1499"); /* the largest by bytes: 'b' > 'a' > 'B' */
	w = (struct page_walk){.ordered = true};
	assert_int_equal(store_list_circuits(s, "p0", page_cb, &w), 0);
	assert_int_equal(w.n, 1100);
	assert_true(w.ordered);
	assert_string_equal(w.rule, "p0");
	w = (struct page_walk){.ordered = true, .stop_at = 1001};
	assert_int_equal(store_list_circuits(s, "p1", page_cb, &w), 0);
	assert_int_equal(w.n, 1001);
	w = (struct page_walk){.ordered = true, .stop_at = 2000};
	assert_int_equal(store_list_circuits(s, NULL, page_cb, &w), 0);
	assert_int_equal(w.n, 2000);
	store_close(s);
}

/* A body is the body_len bytes given, stored as text: what is not text (a NUL, invalid UTF-8)
 * is refused with the server's reason (SQLite stored any bytes; the collector sends JSON). */
static void test_body_bytes(void **state)
{
	struct store *s = open_writer();
	uint8_t aid[16];
	id16(aid, 0xE1, 1);
	const char body[] = "{\"a\":1}TRAILING";
	struct store_delivery d = {.alert_id = aid, .notifier = "hook", .kind = "firing", .seq = 1,
				   .idempotency_key = "k", .body = body, .body_len = 7, .created_ns = T0,
				   .updated_ns = T0};
	int64_t id = 0;
	assert_int_equal(store_delivery_add(s, &d, &id), 0);
	struct deliveries_got g = {0};
	assert_int_equal(store_get_delivery(s, id, delivery_cb, &g), 1);
	assert_int_equal(g.body_len[0], 7);
	assert_string_equal(g.body[0], "{\"a\":1}");
	d.body = NULL; /* none: an empty body, as SQLite stores it */
	assert_int_equal(store_delivery_add(s, &d, &id), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_get_delivery(s, id, delivery_cb, &g), 1);
	assert_true(g.has_body[0]);
	assert_int_equal(g.body_len[0], 0);
	const char nul[] = "{\"a\":\0}";
	d.body = nul;
	d.body_len = sizeof(nul) - 1;
	assert_int_equal(store_delivery_add(s, &d, &id), -1);
	assert_non_null(strstr(store_errmsg(s), "insert delivery"));
	assert_non_null(strstr(store_errmsg(s), "0x00"));
	struct store_circuit c = {.rule = "r", .key = "\xff\xfe"};
	assert_int_equal(store_circuit_put(s, &c, &id), -1);
	assert_non_null(strstr(store_errmsg(s), "UTF8"));
	assert_int_equal(count_rows("deliveries"), 2);
	assert_int_equal(count_rows("circuits"), 0);
	store_close(s);
}

/* A write on a reader fails before it reaches the server, with a reason. */
static void test_reader_refuses_first(void **state)
{
	store_close(open_writer());
	struct store *r = open_path(db.url, true);
	struct store_silence si = {.rule = "r", .ends_ns = T0};
	int64_t id;
	assert_int_equal(store_silence_add(r, &si, &id), -1);
	assert_non_null(strstr(store_errmsg(r), "read-only"));
	store_close(r);
	assert_int_equal(count_rows("silences"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fresh_schema, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_circuits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transitions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alert_put_and_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alert_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deliveries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silences, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outcome_batches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alerts_prune, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_maintain_prunes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reader_handle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ids_never_reused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_circuit_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reader_refuses_first, setup, teardown),
	};
	return cmocka_run_group_tests_name("unit_store_alerts_pg", tests, NULL, NULL);
}
