/* report_failure: a C service that reports three task failures to an errq collector.
 *
 *   report_failure [SERVICE]          (default service "example-checkout")
 *   ERRQ_ADDR=host:port               (default 127.0.0.1:4770)
 *   ERRQ_SPOOL_DIR=dir                (optional: keep undelivered events on disk)
 *   ERRQ_TOKEN=token                  (optional: the collector's bearer token, docs/security.md)
 *   ERRQ_CA=ca.pem                    (optional: TLS, the CA that signed the collector's certificate)
 *   ERRQ_CERT=cert.pem ERRQ_KEY=key.pem (optional: a client certificate, mutual TLS)
 *
 * Reports a network error, a data-format error and a timeout, and the outcome of each task
 * (for failure-rate rules), waits up to 10 s for the collector to acknowledge the events,
 * prints one line with the counts, and exits 0 only when the collector stored all three.
 * This file uses only the public header, <errq.h>. */
#include <errq.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLUSH_TIMEOUT_MS 10000
#define N_EVENTS 3

/* A connection reset while calling the payment provider, on the third try. */
static int report_network_error(errq_client_t *c)
{
	errq_event_t *ev = errq_event_new(NULL, "ConnectionResetError",
					  "connection reset by peer while calling the payment provider");
	if (!ev)
		return ERRQ_ENOMEM;
	errq_event_set_code(ev, "ECONNRESET");
	errq_event_set_task(ev, "charge_card");
	errq_event_add_detail(ev, "host", "payments.internal");
	errq_event_add_detail(ev, "port", "443");
	errq_event_add_detail(ev, "errno", "104");
	errq_event_set_attempt(ev, 3);
	errq_event_set_handled(ev, true);
	errq_event_add_frame(ev, "checkout_main", "checkout.c", 88, "checkout", true);
	errq_event_add_frame(ev, "charge_card", "payments.c", 142, "payments", true);
	errq_event_add_frame(ev, "http_post", "http.c", 310, "libhttp", false);
	return errq_report(c, ev); /* takes ev, also on error */
}

/* A malformed JSON body from an upstream service. */
static int report_format_error(errq_client_t *c)
{
	errq_event_t *ev = errq_event_new(NULL, "JSONDecodeError",
					  "Expecting ',' delimiter: line 1 column 57 (char 56)");
	if (!ev)
		return ERRQ_ENOMEM;
	errq_event_set_code(ev, "BAD_FORMAT");
	errq_event_set_task(ev, "parse_cart");
	errq_event_add_detail(ev, "content_type", "application/json");
	errq_event_add_detail(ev, "body_bytes", "1893");
	errq_event_add_detail(ev, "upstream", "cart-service");
	errq_event_set_attempt(ev, 1);
	errq_event_set_handled(ev, true);
	errq_event_add_frame(ev, "handle_request", "server.c", 51, "checkout", true);
	errq_event_add_frame(ev, "parse_cart", "cart.c", 77, "checkout", true);
	return errq_report(c, ev);
}

/* A timeout that nothing in the application caught: reported as unhandled. */
static int report_timeout(errq_client_t *c)
{
	errq_event_t *ev = errq_event_new(NULL, "TimeoutError",
					  "inventory reservation timed out after 5000 ms");
	if (!ev)
		return ERRQ_ENOMEM;
	errq_event_set_code(ev, "TIMEOUT");
	errq_event_set_task(ev, "reserve_inventory");
	errq_event_add_detail(ev, "timeout_ms", "5000");
	errq_event_add_detail(ev, "sku_count", "4");
	errq_event_set_attempt(ev, 2);
	errq_event_set_handled(ev, false);
	errq_event_add_frame(ev, "worker_loop", "worker.c", 203, "checkout", true);
	errq_event_add_frame(ev, "reserve_inventory", "inventory.c", 64, "checkout", true);
	errq_event_add_frame(ev, "rpc_call_with_deadline", "rpc.c", 412, "librpc", false);
	return errq_report(c, ev);
}

int main(int argc, char **argv)
{
	const char *service = argc > 1 ? argv[1] : "example-checkout";
	const char *addr = getenv("ERRQ_ADDR");
	errq_client_t *c = NULL;
	errq_options_t *o = NULL;
	errq_stats_t st;
	int rc = 1, err;

	if (!addr || !*addr)
		addr = "127.0.0.1:4770";
	o = errq_options_new();
	if (!o) {
		fprintf(stderr, "report_failure: %s\n", errq_strerror(ERRQ_ENOMEM));
		goto out;
	}
	const char *spool = getenv("ERRQ_SPOOL_DIR");
	const char *token = getenv("ERRQ_TOKEN");
	const char *ca = getenv("ERRQ_CA"), *cert = getenv("ERRQ_CERT"), *key = getenv("ERRQ_KEY");
	bool tls = (ca && *ca) || (cert && *cert) || (key && *key);
	if ((err = errq_options_set_collector(o, addr)) || (err = errq_options_set_service(o, service)) ||
	    (err = errq_options_set_environment(o, "example")) ||
	    (spool && *spool && (err = errq_options_set_spool_dir(o, spool))) ||
	    (token && *token && (err = errq_options_set_token(o, token))) ||
	    (tls && (err = errq_options_set_tls(o, ca && *ca ? ca : NULL, cert && *cert ? cert : NULL,
						 key && *key ? key : NULL)))) {
		fprintf(stderr, "report_failure: bad option (collector '%s', service '%s'): %s\n", addr,
			service, errq_strerror(err));
		errq_options_free(o);
		goto out;
	}
	c = errq_client_new(o); /* takes o */
	if (!c) {
		fprintf(stderr, "report_failure: cannot start the errq client\n");
		goto out;
	}

	int (*const reporters[N_EVENTS])(errq_client_t *) = {report_network_error, report_format_error,
							     report_timeout};
	for (int i = 0; i < N_EVENTS; i++) {
		if ((err = reporters[i](c)) != ERRQ_OK) {
			fprintf(stderr, "report_failure: cannot report event %d: %s\n", i + 1,
				errq_strerror(err));
			goto out;
		}
	}
	/* Outcomes: every call of a task, failed or not, so rules can use a failure rate.  The
	 * counts are summed in memory and sent every few seconds (and by errq_client_close). */
	errq_record_outcome(c, "charge_card", false);
	errq_record_outcome(c, "charge_card", true); /* the retry that worked */
	errq_record_outcome(c, "parse_cart", false);
	errq_record_outcome(c, "reserve_inventory", false);

	err = errq_client_flush(c, FLUSH_TIMEOUT_MS);
	errq_client_stats(c, &st);
	printf("report_failure: %llu reported, %llu acknowledged (%llu new, %llu duplicates, "
	       "%llu rejected)\n",
	       (unsigned long long)st.queued, (unsigned long long)(st.accepted + st.duplicates),
	       (unsigned long long)st.accepted, (unsigned long long)st.duplicates,
	       (unsigned long long)st.rejected);
	fflush(stdout);
	if (err == ERRQ_ETIMEDOUT) {
		fprintf(stderr,
			"report_failure: collector '%s' did not acknowledge %llu of %d events within %d s\n",
			addr, (unsigned long long)st.pending, N_EVENTS, FLUSH_TIMEOUT_MS / 1000);
		goto out;
	}
	if (err != ERRQ_OK || st.accepted + st.duplicates != N_EVENTS) {
		fprintf(stderr, "report_failure: collector '%s' stored %llu of %d events (%llu rejected)\n",
			addr, (unsigned long long)(st.accepted + st.duplicates), N_EVENTS,
			(unsigned long long)st.rejected);
		goto out;
	}
	rc = 0;
out:
	if (c) {
		/* delivers the outcome counts (or spools or drops them, counted) and frees c; the
		 * events are acknowledged or given up on by now */
		size_t lost = errq_client_close(c, rc == 0 ? 2000 : 0);
		if (lost)
			fprintf(stderr, "report_failure: %zu event(s) neither delivered nor spooled\n",
				lost);
	}
	return rc;
}
