/* Unit: server/grouping.c — the fingerprint, on real-looking failures. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "errq_hash.h"
#include "grouping.h"

struct fr {
	const char *function, *file, *module;
	uint32_t line;
	int in_app;
};

/* A TaskFailure over static strings and up to 16 frames (outermost first). */
struct ev {
	Errq__V1__TaskFailure tf;
	Errq__V1__Frame f[16];
	Errq__V1__Frame *fp[16];
};

static void mk(struct ev *e, const char *service, const char *type, const char *msg, const struct fr *frames, int n)
{
	errq__v1__task_failure__init(&e->tf);
	e->tf.service = (char *)service;
	e->tf.error_type = (char *)type;
	e->tf.message = (char *)msg;
	for (int i = 0; i < n; i++) {
		errq__v1__frame__init(&e->f[i]);
		e->f[i].function = (char *)frames[i].function;
		e->f[i].file = (char *)frames[i].file;
		e->f[i].module = (char *)(frames[i].module ? frames[i].module : "");
		e->f[i].line = frames[i].line;
		e->f[i].in_app = frames[i].in_app;
		e->fp[i] = &e->f[i];
	}
	assert_true(n >= 0 && n <= 16);
	e->tf.n_frames = (size_t)n;
	e->tf.frames = n ? e->fp : NULL;
}

static void fp(struct ev *e, char out[FINGERPRINT_HEX_LEN + 1])
{
	grouping_fingerprint(&e->tf, out, NULL, 0);
}

/* An asyncio task that timed out talking to the payment provider. */
static const struct fr charge_stack[] = {
    {"_run_once", "/usr/lib/python3.11/asyncio/base_events.py", "asyncio.base_events", 1936, 0},
    {"handle_order", "/srv/checkout/orders.py", "checkout.orders", 88, 1},
    {"charge_card", "/srv/checkout/payments.py", "checkout.payments", 142, 1},
    {"post", "/usr/lib/python3/site-packages/httpx/_client.py", "httpx._client", 1848, 0},
    {"wait_for", "/usr/lib/python3.11/asyncio/tasks.py", "asyncio.tasks", 479, 0},
};

static void test_numbers_in_message_do_not_split(void **state)
{
	char a[17], b[17];
	struct ev x, y;
	mk(&x, "checkout", "TimeoutError", "payment provider timed out after 3000 ms (attempt 2)", charge_stack, 5);
	mk(&y, "checkout", "TimeoutError", "payment provider timed out after 5000 ms (attempt 3)", charge_stack, 5);
	assert_int_equal(grouping_fingerprint(&x.tf, a, NULL, 0), GROUPING_BY_FRAMES);
	fp(&y, b);
	assert_string_equal(a, b);
	/* no frames: the normalized message decides, and numbers, ids and quotes still merge */
	mk(&x, "billing", "KeyError", "no invoice 0x7f3a9c for customer 'acme-42' (request 4f1c2a9e-77b0-4c1e-9a51-0e2b6d1f3c88)", NULL, 0);
	mk(&y, "billing", "KeyError", "no invoice 0x11 for customer 'globex' (request 0b8e1d55-3a2f-4e6b-8c7d-9f0a1b2c3d4e)", NULL, 0);
	assert_int_equal(grouping_fingerprint(&x.tf, a, NULL, 0), GROUPING_BY_MESSAGE);
	fp(&y, b);
	assert_string_equal(a, b);
	/* line numbers never count */
	struct fr moved[5];
	memcpy(moved, charge_stack, sizeof(moved));
	moved[2].line = 170;
	mk(&x, "checkout", "TimeoutError", "m", charge_stack, 5);
	mk(&y, "checkout", "TimeoutError", "m", moved, 5);
	fp(&x, a);
	fp(&y, b);
	assert_string_equal(a, b);
}

static void test_same_message_two_functions_split(void **state)
{
	static const struct fr refund_stack[] = {
	    {"_run_once", "/usr/lib/python3.11/asyncio/base_events.py", "asyncio.base_events", 1936, 0},
	    {"handle_refund", "/srv/checkout/refunds.py", "checkout.refunds", 40, 1},
	    {"refund_card", "/srv/checkout/payments.py", "checkout.payments", 201, 1},
	    {"post", "/usr/lib/python3/site-packages/httpx/_client.py", "httpx._client", 1848, 0},
	};
	char a[17], b[17];
	struct ev x, y;
	mk(&x, "checkout", "TimeoutError", "payment provider timed out after 3000 ms", charge_stack, 5);
	mk(&y, "checkout", "TimeoutError", "payment provider timed out after 3000 ms", refund_stack, 4);
	fp(&x, a);
	fp(&y, b);
	assert_string_not_equal(a, b);
	/* library frames do not count when the application's are marked: a different httpx
	 * frame under the same application frames is the same group */
	struct fr other_lib[5];
	memcpy(other_lib, charge_stack, sizeof(other_lib));
	other_lib[3].function = "send";
	other_lib[4].function = "_send_single_request";
	mk(&y, "checkout", "TimeoutError", "payment provider timed out after 3000 ms", other_lib, 5);
	fp(&y, b);
	assert_string_equal(a, b);
}

static void test_unmarked_frames_all_count_and_innermost_five(void **state)
{
	static const struct fr c_stack[] = {
	    {"main", "main.c", NULL, 10, 0},       {"serve", "server.c", NULL, 20, 0},
	    {"dispatch", "server.c", NULL, 30, 0}, {"handle", "handler.c", NULL, 40, 0},
	    {"parse", "parse.c", NULL, 50, 0},     {"read_field", "parse.c", NULL, 60, 0},
	    {"expect", "lexer.c", NULL, 70, 0},
	};
	char a[17], b[17], why[1024];
	struct ev x, y;
	mk(&x, "ingest", "ParseError", "bad token", c_stack, 7);
	assert_int_equal(grouping_fingerprint(&x.tf, a, why, sizeof(why)), GROUPING_BY_FRAMES);
	/* the five innermost, innermost first; main and serve are not among them */
	assert_non_null(strstr(why, "frame: expect in lexer.c"));
	assert_non_null(strstr(why, "frame: dispatch in server.c"));
	assert_null(strstr(why, "serve in"));
	assert_null(strstr(why, "main in"));
	/* so a different outer caller is the same group, a different inner one is not */
	struct fr st[7];
	memcpy(st, c_stack, sizeof(st));
	st[0].function = "worker_main";
	mk(&y, "ingest", "ParseError", "bad token", st, 7);
	fp(&y, b);
	assert_string_equal(a, b);
	st[6].function = "expect_char";
	mk(&y, "ingest", "ParseError", "bad token", st, 7);
	fp(&y, b);
	assert_string_not_equal(a, b);
}

static void test_client_fingerprint_service_and_type(void **state)
{
	char a[17], b[17], why[512];
	struct ev x, y;
	mk(&x, "checkout", "TimeoutError", "one", charge_stack, 5);
	mk(&y, "checkout", "TimeoutError", "two", NULL, 0);
	x.tf.fingerprint = y.tf.fingerprint = (char *)"payments-down";
	assert_int_equal(grouping_fingerprint(&x.tf, a, why, sizeof(why)), GROUPING_BY_CLIENT);
	assert_non_null(strstr(why, "client fingerprint: payments-down"));
	fp(&y, b);
	assert_string_equal(a, b);
	/* the client's fingerprint alone decides within the service: another error type, message
	 * and frames are the same group (a client that names one fingerprint for a
	 * ConnectionError and a TimeoutError wants one group) */
	mk(&y, "checkout", "ConnectionRefusedError", "connect call failed ('10.0.3.17', 5432)", NULL, 0);
	y.tf.fingerprint = (char *)"payments-down";
	assert_int_equal(grouping_fingerprint(&y.tf, b, why, sizeof(why)), GROUPING_BY_CLIENT);
	assert_string_equal(a, b);
	assert_null(strstr(why, "error_type")); /* the explanation lists what was hashed, only */
	assert_non_null(strstr(why, "service: checkout"));
	/* ...but never across services */
	mk(&y, "billing", "TimeoutError", "one", charge_stack, 5);
	y.tf.fingerprint = (char *)"payments-down";
	fp(&y, b);
	assert_string_not_equal(a, b);
	/* without a client fingerprint the error type still splits */
	mk(&x, "checkout", "TimeoutError", "m", NULL, 0);
	mk(&y, "checkout", "ValueError", "m", NULL, 0);
	fp(&x, a);
	fp(&y, b);
	assert_string_not_equal(a, b);
	/* the separators matter: ("ab", "c") is not ("a", "bc") */
	mk(&x, "ab", "c", "m", NULL, 0);
	mk(&y, "a", "bc", "m", NULL, 0);
	fp(&x, a);
	fp(&y, b);
	assert_string_not_equal(a, b);
}

static void test_normalize(void **state)
{
	char out[256];
	const struct {
		const char *in, *want;
	} cases[] = {
	    {"timed out after 3000 ms", "timed out after <n> ms"},
	    {"connect to 10.0.3.17:5432 failed", "connect to <ip> failed"},
	    {"object at 0x7ffd5e8c1a20", "object at <hex>"},
	    {"commit 9fceb02d0ae598e95dc970b74767f19372d61af8 missing", "commit <hex> missing"},
	    {"job deadbeef12 failed", "job <hex> failed"},
	    {"user \"bob\" not found in 'east'", "user <str> not found in <str>"},
	    {"id 550e8400-e29b-41d4-a716-446655440000 gone", "id <uuid> gone"},
	    {"the 3rd retry of 2xx checks", "the 3rd retry of 2xx checks"},
	    {"decade deadbeef", "decade deadbeef"},
	    {"it's fine", "it's fine"},
	    {"pi is 3.14159", "pi is <n>"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		grouping_normalize_message(cases[i].in, out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("normalize('%s') = '%s', want '%s'", cases[i].in, out, cases[i].want);
	}
	/* bounded output, always terminated */
	char small[8];
	grouping_normalize_message("abcdefghijklmnop 12345", small, sizeof(small));
	assert_int_equal(strlen(small), 7);
}

/* Messages that make storms (issue 16): each shape of id, in real-looking messages.  Each row's
 * messages differ only by that shape's values and must normalize to `want`. */
static void test_normalize_id_shapes(void **state)
{
	static const struct {
		const char *variants[3], *want;
	} cases[] = {
	    {{"connection to 10.0.3.17:5432 refused", "connection to 10.0.9.201:5433 refused",
	      "connection to 192.168.1.2 refused"},
	     "connection to <ip> refused"},
	    {{"dial tcp [2001:db8::1]:443: connect: connection refused",
	      "dial tcp [fe80::1ff:fe23:4567:890a]:8443: connect: connection refused",
	      "dial tcp [::1]:443: connect: connection refused"},
	     "dial tcp <ip>: connect: connection refused"},
	    {{"peer 2001:db8:85a3::8a2e:370:7334 reset the stream", "peer ::1 reset the stream",
	      "peer 2001:0db8:0000:0000:0000:ff00:0042:8329 reset the stream"},
	     "peer <ip> reset the stream"},
	    {{"user 9f1c2b3a-77b0-4c1e-9a51-0e2b6d1f3c88 not found", "user 0B8E1D55-3A2F-4E6B-8C7D-9F0A1B2C3D4E not found",
	      "user 00000000-0000-0000-0000-000000000000 not found"},
	     "user <uuid> not found"},
	    {{"GET /api/v1/orders?id=123&token=abc failed", "GET /api/v1/orders?id=9&token=zz%20z&page=2 failed",
	      "GET /api/v1/orders?token=abc failed"},
	     "GET /api/v1/orders?<query> failed"},
	    {{"timeout after 250ms", "timeout after 3.5s", "timeout after 1h30m5.5s"}, "timeout after <duration>"},
	    {{"request body 10MB over the limit of 4MiB", "request body 512kb over the limit of 1GB",
	      "request body 17B over the limit of 16b"},
	     "request body <size> over the limit of <size>"},
	    {{"disk /var/lib/errq 91% full", "disk /var/lib/errq 99% full", "disk /var/lib/errq 100% full"},
	     "disk /var/lib/errq <n>% full"},
	    {{"token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U "
	      "expired",
	      "token eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MzM1NDU4ODJ9.c2lnbmF0dXJlMTIz expired",
	      "token dGhpcyBpcyBhIHNlY3JldCAxMjM0NQ== expired"},
	     "token <token> expired"},
	    {{"charge ch_3MmlLrLkdIwHu7ix0snN0B15 declined", "charge ch_1Nb7Q2Lkd8wHu7ix9Z0x4y3W declined",
	      "charge ch_3Abc9Def8Ghi7Jkl6Mno5Pqr declined"},
	     "charge <token> declined"},
	    {{"job late at 2026-12-07T04:31:22.123Z", "job late at 2026-01-30T23:59:59Z",
	      "job late at 2026-12-07 04:31:22+01:00"},
	     "job late at <ts>"},
	    {{"[1733545882] lease lost", "[1733545999] lease lost", "[1733545882123] lease lost"}, "[<n>] lease lost"},
	    {{"mail to bob.smith@example.com bounced", "mail to ops+alerts@mail.example.co.uk bounced",
	      "mail to a_b-c@x.io bounced"},
	     "mail to <email> bounced"},
	    {{"no rows for customer 'acme-42'", "no rows for customer \"globex corp\"", "no rows for customer `initech`"},
	     "no rows for customer <str>"},
	    {{"commit 9fceb02 not found", "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 not found",
	      "commit a1b2c3d4e5 not found"},
	     "commit <hex> not found"},
	};
	char out[GROUPING_NORMALIZED_MAX + 1];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (int v = 0; v < 3; v++) {
			grouping_normalize_message(cases[i].variants[v], out, sizeof(out));
			if (strcmp(out, cases[i].want) != 0)
				fail_msg("normalize('%s') = '%s', want '%s'", cases[i].variants[v], out, cases[i].want);
		}
}

/* ...and what must stay apart: words that look like ids, and messages that differ in words. */
static void test_normalize_keeps_words(void **state)
{
	static const char *const unchanged[] = {
	    /* hex-looking words without a digit, or shorter than ERRQ_NORMALIZE_HEX_MIN */
	    "decade-old cafe lock on deadbeef and facade kept",
	    "2fa model add2 failed",
	    /* identifiers: CamelCase with a digit, paths, versions' words */
	    "ConnectionResetError2 in HTTPConnectionPool via getUserByIdAndOrgId2",
	    "the 3rd retry of 2xx checks with 64bit ints",
	    /* "dead::beef" has no digit; C++ names are not addresses */
	    "std::vector at dead::beef in add::cafe",
	    /* apostrophes are not quotes; a lone '?' is not a query string */
	    "it's the user's fault? SELECT * FROM t WHERE id = ?",
	    /* an '@' that is not an e-mail address */
	    "module github.com/lib/pq@v1 and @here",
	};
	char out[GROUPING_NORMALIZED_MAX + 1];
	for (size_t i = 0; i < sizeof(unchanged) / sizeof(unchanged[0]); i++) {
		grouping_normalize_message(unchanged[i], out, sizeof(out));
		assert_string_equal(out, unchanged[i]);
	}
	/* distinct errors stay distinct once their ids are gone */
	static const char *const distinct[] = {
	    "connection to 10.0.3.17:5432 refused",
	    "connection to 10.0.3.17:5432 reset by peer",
	    "GET /api/v1/orders?id=1 failed",
	    "GET /api/v1/users?id=1 failed",
	    "timeout after 250ms",
	    "read 250MB",
	    "user 9f1c2b3a-77b0-4c1e-9a51-0e2b6d1f3c88 not found",
	    "order 9f1c2b3a-77b0-4c1e-9a51-0e2b6d1f3c88 not found",
	    "mail to bob@example.com bounced",
	    "mail to bob@example.com deferred",
	};
	enum { N = sizeof(distinct) / sizeof(distinct[0]) };
	char norm[N][GROUPING_NORMALIZED_MAX + 1];
	for (size_t i = 0; i < N; i++) {
		grouping_normalize_message(distinct[i], norm[i], sizeof(norm[i]));
		for (size_t k = 0; k < i; k++)
			if (!strcmp(norm[i], norm[k]))
				fail_msg("'%s' and '%s' both normalize to '%s'", distinct[i], distinct[k], norm[i]);
	}
}

/* Untrusted input: shapes cut short at the end of the string, adversarial runs, and a
 * placeholder that does not fit is left out whole (every smaller buffer gets a prefix). */
static void test_normalize_edges(void **state)
{
	static const char *const partial[] = {
	    "9f1c2b3a-77b0-4c1e", "2026-12-07T04:", "10.0.3.", "[2001:db8::1", "bob@", "bob@example.", "'open",
	    "x?", "0x", "1h30", "::", ":", "[", "\"", "eyJhbGciOiJIUzI1NiIsInR5cCI6Ik", "1.",
	};
	char out[GROUPING_NORMALIZED_MAX + 1];
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		size_t n = grouping_normalize_message(partial[i], out, sizeof(out));
		assert_int_equal(n, strlen(out));
	}
	assert_int_equal(grouping_normalize_message("1h30", out, sizeof(out)), 4); /* no unit at the end: a word */
	assert_string_equal(out, "1h30");
	grouping_normalize_message("bob@example.", out, sizeof(out));
	assert_string_equal(out, "bob@example.");
	/* 8 KiB (the collector's message limit) of runs every rule would rescan from each word */
	static char big[8193];
	const char *const runs[] = {"a.", "a@", "a-1", "?=", "1:", "1.", "'", "[1:"};
	for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
		size_t rl = strlen(runs[r]);
		for (size_t k = 0; k + rl < sizeof(big); k += rl)
			memcpy(big + k, runs[r], rl);
		big[sizeof(big) - 1 - (sizeof(big) - 1) % rl] = '\0';
		size_t n = grouping_normalize_message(big, out, sizeof(out));
		assert_int_equal(n, strlen(out));
		assert_true(n <= GROUPING_NORMALIZED_MAX);
	}
	/* "<uuid>" (6 bytes) does not fit in 5 left after "id ": the output stops before it */
	char small[9];
	assert_int_equal(grouping_normalize_message("id 9f1c2b3a-77b0-4c1e-9a51-0e2b6d1f3c88 x", small, sizeof(small)), 3);
	assert_string_equal(small, "id ");
}

/* ------------------------------------------------------------------ pinned fingerprints
 *
 * Stored groups are keyed by their fingerprint: if the same event hashed differently after
 * an upgrade, every stored group would silently split in two.  So the fingerprints of this
 * corpus are pinned to literal values per GROUPING_VERSION.  Changing one of them (the hash,
 * its seed, a normalizer rule, the frames that count, the separators...) is only allowed
 * together with a new GROUPING_VERSION, a new table below (keep the old ones) and a
 * migration note in docs/architecture.md. */

#define CORPUS_LONG_SQL "ERROR: relation \"public.order_items_2026_11\" does not exist at character 15 "
/* ~1 KiB: longer than GROUPING_NORMALIZED_MAX, so the cut-off point is pinned too */
#define CORPUS_LONG CORPUS_LONG_SQL CORPUS_LONG_SQL CORPUS_LONG_SQL CORPUS_LONG_SQL CORPUS_LONG_SQL \
	CORPUS_LONG_SQL CORPUS_LONG_SQL CORPUS_LONG_SQL CORPUS_LONG_SQL CORPUS_LONG_SQL CORPUS_LONG_SQL \
	CORPUS_LONG_SQL CORPUS_LONG_SQL

static const struct fr django_stack[] = {
    {"inner", "/usr/lib/python3/site-packages/django/core/handlers/exception.py", "django.core.handlers.exception", 55, 0},
    {"_get_response", "/usr/lib/python3/site-packages/django/core/handlers/base.py", "django.core.handlers.base", 197, 0},
    {"profile", "/srv/accounts/views.py", "accounts.views", 41, 1},
    {"load_profile", "/srv/accounts/profile.py", "accounts.profile", 17, 1},
    {"__getitem__", "/usr/lib/python3/site-packages/django/utils/datastructures.py", "django.utils.datastructures", 84, 0},
};

/* seven application frames: only the innermost five count */
static const struct fr celery_stack[] = {
    {"trace_task", "/usr/lib/python3/site-packages/celery/app/trace.py", "celery.app.trace", 451, 0},
    {"send_welcome", "/srv/mailer/tasks.py", "mailer.tasks", 30, 1},
    {"render_and_send", "/srv/mailer/tasks.py", "mailer.tasks", 55, 1},
    {"render", "/srv/mailer/templates.py", "mailer.templates", 12, 1},
    {"load_locale", "/srv/mailer/i18n.py", "mailer.i18n", 71, 1},
    {"connect", "/srv/mailer/smtp.py", "mailer.smtp", 19, 1},
    {"send", "/srv/mailer/smtp.py", "mailer.smtp", 44, 1},
    {"sendmail", "/srv/mailer/smtp.py", "mailer.smtp", 98, 1},
    {"sendmail", "/usr/lib/python3.11/smtplib.py", "smtplib", 887, 0},
};

/* a C daemon: no frame marked, no modules (file names), so every frame counts */
static const struct fr c_parse_stack[] = {
    {"main", "src/main.c", NULL, 212, 0},
    {"serve_forever", "src/server.c", NULL, 88, 0},
    {"handle_conn", "src/server.c", NULL, 140, 0},
    {"read_request", "src/http.c", NULL, 301, 0},
    {"parse_json_body", "src/json.c", NULL, 77, 0},
    {"json_parse_object", "src/json.c", NULL, 401, 0},
    {"json_expect", "src/json.c", NULL, 35, 0},
};

/* a C proxy: the application's frames marked, libc and the event loop not */
static const struct fr c_proxy_stack[] = {
    {"__libc_start_main", "libc.so.6", NULL, 0, 0},
    {"ev_run", "src/ev.c", "libev", 3977, 0},
    {"proxy_on_readable", "src/proxy.c", NULL, 512, 1},
    {"upstream_read_header", "src/upstream.c", NULL, 233, 1},
    {"", "", "", 0, 1}, /* an unsymbolized frame: nothing to hash, skipped */
    {"recv", "libc.so.6", NULL, 0, 0},
};

/* a Go panic: package paths as modules */
static const struct fr go_panic_stack[] = {
    {"main.main", "/app/cmd/gateway/main.go", "main", 31, 1},
    {"net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go", "net/http", 2039, 0},
    {"github.com/acme/gateway/internal/router.(*Router).ServeHTTP", "/app/internal/router/router.go",
     "github.com/acme/gateway/internal/router", 88, 1},
    {"github.com/acme/gateway/internal/handlers.Orders", "/app/internal/handlers/orders.go",
     "github.com/acme/gateway/internal/handlers", 142, 1},
    {"runtime.goPanicIndex", "/usr/local/go/src/runtime/panic.go", "runtime", 114, 0},
};

/* Go with nothing marked in_app */
static const struct fr go_sql_stack[] = {
    {"main.main", "/app/main.go", "main", 20, 0},
    {"github.com/acme/inventory/store.(*DB).Reserve", "/app/store/db.go", "github.com/acme/inventory/store", 77, 0},
    {"database/sql.(*DB).ExecContext", "/usr/local/go/src/database/sql/sql.go", "database/sql", 1661, 0},
    {"github.com/lib/pq.(*conn).Exec", "/go/pkg/mod/github.com/lib/pq@v1.10.9/conn.go", "github.com/lib/pq", 886, 0},
};

/* application frames with a file but no module (JavaScript-like, or C with in_app set) */
static const struct fr file_only_stack[] = {
    {"onMessage", "worker/consumer.c", "", 61, 1},
    {"decode_envelope", "worker/envelope.c", "", 19, 1},
    {"", "worker/base64.c", "", 7, 1}, /* no function: the file alone still counts */
};

static const struct corpus_ev {
	const char *name; /* stable: the pinned tables refer to it */
	const char *service, *error_type, *error_code, *task, *message, *fingerprint;
	const struct fr *frames;
	int n_frames;
	enum grouping_basis basis;
} corpus[] = {
#define FR(a) a, (int)(sizeof(a) / sizeof(a[0]))
    {"py-asyncio-timeout", "checkout", "TimeoutError", "TIMEOUT", "charge_card",
     "payment provider timed out after 3000 ms (attempt 2)", NULL, FR(charge_stack), GROUPING_BY_FRAMES},
    {"py-asyncio-timeout-other-service", "subscriptions", "TimeoutError", "TIMEOUT", "charge_card",
     "payment provider timed out after 3000 ms (attempt 2)", NULL, FR(charge_stack), GROUPING_BY_FRAMES},
    {"py-django-keyerror", "accounts", "KeyError", NULL, "GET /profile", "'user_id'", NULL, FR(django_stack),
     GROUPING_BY_FRAMES},
    {"py-celery-deep", "mailer", "SMTPServerDisconnected", "SMTP_421", "mailer.tasks.send_welcome",
     "Connection unexpectedly closed: 421 4.7.0 Try again later, closing connection", NULL, FR(celery_stack),
     GROUPING_BY_FRAMES},
    {"py-celery-retry-uuid", "mailer", "MaxRetriesExceededError", NULL, "mailer.tasks.send_welcome",
     "Can't retry mailer.tasks.send_welcome[5f0c7a8e-1b2d-4c3e-8f9a-0b1c2d3e4f5a] args:(42,) kwargs:{}", NULL,
     NULL, 0, GROUPING_BY_MESSAGE},
    {"py-message-numbers", "billing", "ValueError", "NEGATIVE_TOTAL", "close_invoice",
     "invoice INV-2026-000123 has negative total -12.50 EUR after 3 adjustments", NULL, NULL, 0,
     GROUPING_BY_MESSAGE},
    {"py-quoted", "accounts", "DoesNotExist", NULL, NULL,
     "User matching query does not exist: email=\"bob@example.com\" tenant='east-1'", NULL, NULL, 0,
     GROUPING_BY_MESSAGE},
    {"c-parse-unmarked", "ingest", "ParseError", "E_SYNTAX", "http_worker",
     "unexpected token '}' at line 12, column 7", NULL, FR(c_parse_stack), GROUPING_BY_FRAMES},
    {"c-proxy-errno", "edge-proxy", "ECONNRESET", "104", NULL,
     "recv() failed (104: Connection reset by peer) while reading response header from upstream "
     "10.0.3.17:8080",
     NULL, FR(c_proxy_stack), GROUPING_BY_FRAMES},
    {"c-assert-address", "storage-node", "AssertionError", NULL, "compactor",
     "assertion 'page->refcount > 0' failed for page 0x7ffd5e8c1a20 (pgno 48213)", NULL, NULL, 0,
     GROUPING_BY_MESSAGE},
    {"c-file-only-frames", "queue-worker", "DecodeError", "BAD_BASE64", "consume",
     "invalid base64 at byte 17", NULL, FR(file_only_stack), GROUPING_BY_FRAMES},
    {"go-panic-index", "api-gateway", "runtime.Error", NULL, "GET /v1/orders/{id}",
     "index out of range [5] with length 3", NULL, FR(go_panic_stack), GROUPING_BY_FRAMES},
    {"go-sql-unmarked", "inventory", "*pq.Error", "23505", "reserve",
     "pq: duplicate key value violates unique constraint \"sku_pkey\"", NULL, FR(go_sql_stack),
     GROUPING_BY_FRAMES},
    {"go-deadline-message", "search", "context.DeadlineExceeded", NULL, NULL,
     "context deadline exceeded: GET https://search.internal:9200/products/_search?q=shoes took 5.000321s", NULL,
     NULL, 0, GROUPING_BY_MESSAGE},
    {"msg-uuid-and-id", "orders", "NotFound", "ORDER_NOT_FOUND", "lookup",
     "order 4f1c2a9e-77b0-4c1e-9a51-0e2b6d1f3c88 not found for customer 918273", NULL, NULL, 0,
     GROUPING_BY_MESSAGE},
    {"msg-timestamps", "scheduler", "LateJobError", NULL, "nightly-report",
     "job nightly-report scheduled for 2026-11-25T18:03:11.482Z started at 2026-11-25 18:04:59 (108 s late)",
     NULL, NULL, 0, GROUPING_BY_MESSAGE},
    {"msg-commit-hex", "deployer", "GitError", NULL, NULL,
     "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 not found in origin/main (request deadbeef0042)", NULL,
     NULL, 0, GROUPING_BY_MESSAGE},
    {"msg-short-hex-ids", "k8s-operator", "LeaseExpired", NULL, "reconcile",
     "lease ab12cd34 held by pod e3f2d1c0b9 expired; decade-old cafebabe lock kept", NULL, NULL, 0,
     GROUPING_BY_MESSAGE},
    {"msg-unicode", "i18n", "UnicodeError", NULL, NULL,
     "caract\xC3\xA8re invalide \xC2\xAB \xC3\xA9 \xC2\xBB \xC3\xA0 la position 17", NULL, NULL, 0,
     GROUPING_BY_MESSAGE},
    {"msg-empty", "worker", "SystemExit", NULL, NULL, "", NULL, NULL, 0, GROUPING_BY_MESSAGE},
    {"msg-long-cut", "reports", "UndefinedTable", "42P01", "monthly_rollup", CORPUS_LONG, NULL, NULL, 0,
     GROUPING_BY_MESSAGE},
    {"client-fp-frames-ignored", "checkout", "TimeoutError", "TIMEOUT", "charge_card",
     "payment provider timed out after 3000 ms", "payments-provider-down", FR(charge_stack), GROUPING_BY_CLIENT},
    {"client-fp-billing", "billing", "StripeError", "card_declined", "charge",
     "Your card was declined. (req_9Ab3xYz)", "stripe:card_declined", NULL, 0, GROUPING_BY_CLIENT},
    {"client-fp-unicode", "notifications", "SendError", NULL, NULL, "APNs 410",
     "push/ios/\xCE\xB8-unregistered", NULL, 0, GROUPING_BY_CLIENT},
#undef FR
};
#define N_CORPUS (sizeof(corpus) / sizeof(corpus[0]))

struct pin {
	const char *name, *fingerprint;
};

/* GROUPING_VERSION 1: service, error type, then the client's fingerprint, the innermost five
 * frames (function and module or file) or the normalized message.  Three of these values
 * (py-asyncio-timeout, msg-empty, client-fp-billing) were also computed by an independent
 * implementation of the algorithm as docs/protocol.md describes it, not only by this code. */
static const struct pin pins_v1[] = {
    {"py-asyncio-timeout", "47f9232963d0042b"},
    {"py-asyncio-timeout-other-service", "c86f6f137afac6e7"},
    {"py-django-keyerror", "6e31d04f7d0c8b05"},
    {"py-celery-deep", "7d5bb2f1d3382e5c"},
    {"py-celery-retry-uuid", "7913447819fdcabe"},
    {"py-message-numbers", "e1b4a6dcdc558f59"},
    {"py-quoted", "8363622c05c2dc8f"},
    {"c-parse-unmarked", "cfc843c84dc21d81"},
    {"c-proxy-errno", "8fe31f41181ae9d6"},
    {"c-assert-address", "0229f5296cda688d"},
    {"c-file-only-frames", "e94fe9479e086a4d"},
    {"go-panic-index", "ab9311d8f7850e1d"},
    {"go-sql-unmarked", "e6843f3f82bb9e20"},
    {"go-deadline-message", "3fee568cec653042"},
    {"msg-uuid-and-id", "ec7ec6d0215c1b2a"},
    {"msg-timestamps", "39f6dc02da203ac8"},
    {"msg-commit-hex", "2444afab447a4a94"},
    {"msg-short-hex-ids", "0f5a64e1ff1c2c30"},
    {"msg-unicode", "c0335c24cc7f86fd"},
    {"msg-empty", "727146b529805204"},
    {"msg-long-cut", "5a35c0ddc4358022"},
    {"client-fp-frames-ignored", "061f5517021ea9f8"},
    {"client-fp-billing", "8cd03a8e615d1fdb"},
    {"client-fp-unicode", "73c8e11382e8de24"},
};

/* GROUPING_VERSION 2 (issue 16): a client fingerprint groups within the service alone (no
 * error type), and the normalizer replaces more id shapes (common/errq_normalize.h).  The
 * hash format byte stayed 1, so every event whose components did not change keeps its version
 * 1 fingerprint.  From version 2 on a version's table lists only the fingerprints that moved;
 * an event it does not name keeps the one of the version before (pinned_fingerprint). */
static const struct pin pins_v2[] = {
    {"go-deadline-message", "5e34bb23c529ecfc"},
    {"msg-timestamps", "29461e268bb47e46"},
    {"client-fp-frames-ignored", "17dd1d6ff87ae592"},
    {"client-fp-billing", "f58da3f5af7b1aa9"},
    {"client-fp-unicode", "feac5f4a66f0af3b"},
};

static const struct {
	int version;
	const struct pin *pins;
	size_t n;
} pinned[] = {
    {1, pins_v1, sizeof(pins_v1) / sizeof(pins_v1[0])},
    {2, pins_v2, sizeof(pins_v2) / sizeof(pins_v2[0])},
};

static void corpus_event(struct ev *e, const struct corpus_ev *c)
{
	mk(e, c->service, c->error_type, c->message, c->frames, c->n_frames);
	e->tf.error_code = (char *)c->error_code;
	e->tf.task = (char *)c->task;
	e->tf.fingerprint = (char *)c->fingerprint;
	/* context that never counts: changing these must not move a fingerprint */
	e->tf.environment = (char *)"prod";
	e->tf.release = (char *)"2026.11.3";
	e->tf.host = (char *)"ip-10-0-3-17";
	e->tf.attempt = 3;
}

/* The fingerprint pinned for corpus event name under version v: its version's table, or the
 * nearest earlier one that names it (NULL when none does). */
static const char *pinned_fingerprint(const char *name, int v)
{
	for (; v >= 1; v--)
		for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++)
			if (pinned[i].version == v)
				for (size_t k = 0; k < pinned[i].n; k++)
					if (!strcmp(pinned[i].pins[k].name, name))
						return pinned[i].pins[k].fingerprint;
	return NULL;
}

static void test_fingerprints_pinned(void **state)
{
	int bad = 0;
	for (size_t i = 0; i < N_CORPUS; i++) {
		struct ev e;
		char got[FINGERPRINT_HEX_LEN + 1];
		corpus_event(&e, &corpus[i]);
		enum grouping_basis basis = grouping_fingerprint(&e.tf, got, NULL, 0);
		if (basis != corpus[i].basis) {
			print_error("corpus event '%s': grouped by basis %d, want %d\n", corpus[i].name, (int)basis,
				    (int)corpus[i].basis);
			bad++;
		}
		const char *want = pinned_fingerprint(corpus[i].name, GROUPING_VERSION);
		if (!want || strcmp(want, got) != 0) {
			print_error("corpus event '%s': fingerprint %s, pinned %s for grouping version %d\n"
				    "    {\"%s\", \"%s\"},\n",
				    corpus[i].name, got, want ? want : "(none)", GROUPING_VERSION, corpus[i].name, got);
			bad++;
		}
	}
	/* every pin names a corpus event: a pin is never dropped by renaming its event */
	for (size_t t = 0; t < sizeof(pinned) / sizeof(pinned[0]); t++)
		for (size_t k = 0; k < pinned[t].n; k++) {
			size_t i = 0;
			while (i < N_CORPUS && strcmp(pinned[t].pins[k].name, corpus[i].name) != 0)
				i++;
			if (i == N_CORPUS) {
				print_error("pinned fingerprint '%s' has no corpus event\n", pinned[t].pins[k].name);
				bad++;
			}
		}
	if (bad)
		fail_msg("%d fingerprint(s) differ from the ones pinned for GROUPING_VERSION %d.  Stored groups "
			 "are keyed by fingerprint: a change here splits every existing group after an upgrade.  "
			 "If the grouping algorithm must change, bump GROUPING_VERSION in server/grouping.h, add a "
			 "pinned table for the new version here (the lines above; keep the old tables) and write "
			 "the migration note in docs/architecture.md",
			 bad, GROUPING_VERSION);
}

/* Upgrading to version 2 splits only the groups whose components changed: every corpus event
 * grouped by frames, and every message without a new id shape, keeps its version 1
 * fingerprint (so its group, status and history); the client-fingerprint ones move. */
static void test_v2_keeps_v1_where_unchanged(void **state)
{
	size_t moved = 0;
	for (size_t i = 0; i < N_CORPUS; i++) {
		const char *v1 = pinned_fingerprint(corpus[i].name, 1), *v2 = pinned_fingerprint(corpus[i].name, 2);
		assert_non_null(v1);
		assert_non_null(v2);
		bool should_move = corpus[i].basis == GROUPING_BY_CLIENT || !strcmp(corpus[i].name, "go-deadline-message") ||
				   !strcmp(corpus[i].name, "msg-timestamps");
		if (should_move != (strcmp(v1, v2) != 0))
			fail_msg("corpus event '%s': version 1 %s, version 2 %s, expected to %s", corpus[i].name, v1, v2,
				 should_move ? "move" : "stay");
		assert_true(corpus[i].basis != GROUPING_BY_FRAMES || !should_move);
		moved += should_move;
	}
	assert_int_equal(moved, 5);
	/* and what made the two messages move, seen from the normalizer */
	char out[GROUPING_NORMALIZED_MAX + 1];
	for (size_t i = 0; i < N_CORPUS; i++)
		if (!strcmp(corpus[i].name, "msg-timestamps")) {
			grouping_normalize_message(corpus[i].message, out, sizeof(out));
			assert_string_equal(out, "job nightly-report scheduled for <ts> started at <ts> (<n> s late)");
		} else if (!strcmp(corpus[i].name, "go-deadline-message")) {
			grouping_normalize_message(corpus[i].message, out, sizeof(out));
			assert_string_equal(out, "context deadline exceeded: GET https://search.internal:<n>/products/"
						 "_search?<query> took <duration>");
		}
}

/* The hash is the FNV-1a of the document (docs/protocol.md, "Grouping"): the published test
 * vectors of 64-bit FNV-1a. */
static void test_fnv1a_vectors(void **state)
{
	assert_int_equal(ERRQ_FNV64_INIT, 0xcbf29ce484222325ULL);
	assert_int_equal(errq_fnv64(ERRQ_FNV64_INIT, "", 0), 0xcbf29ce484222325ULL);
	assert_int_equal(errq_fnv64(ERRQ_FNV64_INIT, "a", 1), 0xaf63dc4c8601ec8cULL);
	assert_int_equal(errq_fnv64(ERRQ_FNV64_INIT, "foobar", 6), 0x85944171f73967e8ULL);
	/* incremental: hashing in two parts is hashing the whole */
	assert_int_equal(errq_fnv64(errq_fnv64(ERRQ_FNV64_INIT, "foo", 3), "bar", 3), 0x85944171f73967e8ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numbers_in_message_do_not_split),
	    cmocka_unit_test(test_same_message_two_functions_split),
	    cmocka_unit_test(test_unmarked_frames_all_count_and_innermost_five),
	    cmocka_unit_test(test_client_fingerprint_service_and_type),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test(test_normalize_id_shapes),
	    cmocka_unit_test(test_normalize_keeps_words),
	    cmocka_unit_test(test_normalize_edges),
	    cmocka_unit_test(test_fingerprints_pinned),
	    cmocka_unit_test(test_v2_keeps_v1_where_unchanged),
	    cmocka_unit_test(test_fnv1a_vectors),
	};
	return cmocka_run_group_tests_name("unit_grouping", tests, NULL, NULL);
}
