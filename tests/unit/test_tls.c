/* server/tls.c: the pair in force, its generations and refusals (tls_reload, tls_refresh,
 * tls_copy_pair, tls_get_stats), and the seam the auth module uses: what the auth context of
 * a call carries behind tls_server_creds (gRPC 1.51's properties and peer identity), checked
 * with an auth metadata processor on a real server and a client certificate with and without
 * SANs.  Certificates are made by tests/support/make_certs.sh at each run. */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "errq/v1/query.pb-c.h"
#include "certs.h"
#include "errq_grpc.h"
#include "errq_log.h"
#include "errq_str.h"
#include "tls.h"
#include "errq_banned.h"

/* The path of one of the run's certificates (certs.h: valid for the next 7 calls only). */
static const char *crt(const char *name)
{
	return certs_path(name);
}

/* The pair in force is the one of cert_file, at generation gen. */
static void assert_pair(struct tls *t, const char *cert_file, uint64_t gen)
{
	char *c = NULL, *k = NULL, *want = certs_read(crt(cert_file));
	uint64_t g = 0;
	assert_int_equal(tls_copy_pair(t, &c, &k, &g), 0);
	assert_int_equal(g, gen);
	assert_string_equal(c, want);
	free(c);
	free(k);
	free(want);
}

/* Generations move only when a good pair is read; a refused one leaves the pair in force. */
static void test_generations_and_refusals(void **state)
{
	(void)state;
	errq_log_set_level(ERRQ_LOG_OFF); /* refusals log lines by design */
	char cert[300], key[300], err[512];
	errq_snprintf(cert, sizeof(cert), "%s", crt("live.pem"));
	errq_snprintf(key, sizeof(key), "%s", crt("live.key"));
	certs_install(crt("server.pem"), cert);
	certs_install(crt("server.key"), key);
	struct tls *t = NULL;
	assert_int_equal(tls_new(&t, &(struct tls_opts){.cert = cert, .key = key}, err, sizeof(err)), 0);
	assert_non_null(t);
	assert_false(tls_mutual(t));
	assert_int_equal(tls_refresh(t), 1);
	struct tls_stats st;
	tls_get_stats(t, &st);
	assert_int_equal(st.generation, 1);
	assert_int_equal(st.reloads, 0);
	assert_true(st.not_after_unix > 0);

	/* a certificate without its key: refused, generation 1 stays, its PEM is still served */
	certs_install(crt("server2.pem"), cert);
	assert_int_equal(tls_reload(t), -1);
	assert_int_equal(tls_refresh(t), 1);
	assert_pair(t, "server.pem", 1);
	tls_get_stats(t, &st);
	assert_int_equal(st.refused, 1);

	/* its key arrives: generation 2 with the new pair */
	certs_install(crt("server2.key"), key);
	assert_int_equal(tls_reload(t), 0);
	assert_int_equal(tls_refresh(t), 2);
	assert_pair(t, "server2.pem", 2);
	tls_get_stats(t, &st);
	assert_int_equal(st.generation, 2);
	assert_int_equal(st.reloads, 1);
	assert_int_equal(st.refused, 1);
	tls_free(t);

	/* no tls.cert: no TLS at all */
	assert_int_equal(tls_new(&t, &(struct tls_opts){.cert = "", .key = "", .client_ca = ""}, err, sizeof(err)), 0);
	assert_null(t);
	tls_free(NULL);
}

/* ---- the auth context behind tls_server_creds ---- */

struct seen {
	pthread_mutex_t mu;
	int calls;
	char props[2048];    /* "name=value\n" for every property but the PEM ones */
	char identity[512];  /* "name:value,value" */
	int authenticated;
};

static void process(void *state, grpc_auth_context *ctx, const grpc_metadata *md, size_t nmd,
		    grpc_process_auth_metadata_done_cb cb, void *user_data)
{
	(void)md, (void)nmd;
	struct seen *s = state;
	struct errq_buf b, id;
	pthread_mutex_lock(&s->mu);
	errq_buf_init_fixed(&b, s->props, sizeof(s->props));
	grpc_auth_property_iterator it = grpc_auth_context_property_iterator(ctx);
	for (const grpc_auth_property *p; (p = grpc_auth_property_iterator_next(&it));)
		if (strncmp(p->name, "x509_pem_cert", 13) != 0)
			errq_buf_printf(&b, "%s=%s\n", p->name, p->value);
	const char *name = grpc_auth_context_peer_identity_property_name(ctx);
	errq_buf_init_fixed(&id, s->identity, sizeof(s->identity));
	errq_buf_printf(&id, "%s:", name ? name : "(none)");
	it = grpc_auth_context_peer_identity(ctx);
	bool first = true;
	for (const grpc_auth_property *p; (p = grpc_auth_property_iterator_next(&it)); first = false)
		errq_buf_printf(&id, "%s%s", first ? "" : ",", p->value);
	s->authenticated = grpc_auth_context_peer_is_authenticated(ctx);
	s->calls++;
	pthread_mutex_unlock(&s->mu);
	cb(user_data, NULL, 0, NULL, 0, GRPC_STATUS_UNAUTHENTICATED, "seen");
}

static void *poll_cq(void *arg)
{
	grpc_completion_queue *cq = arg;
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	return NULL;
}

/* One call through a server on tls_server_creds(t) with the processor; the client uses ca and,
 * when cert is not NULL, that client certificate.  Returns the call's status. */
static grpc_status_code one_call(struct tls *t, struct seen *s, const char *ca, const char *cert, const char *key)
{
	grpc_server_credentials *sc = tls_server_creds(t);
	assert_non_null(sc);
	grpc_server_credentials_set_auth_metadata_processor(sc, (grpc_auth_metadata_processor){process, NULL, s});
	grpc_server *srv = grpc_server_create(NULL, NULL);
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv, cq, NULL);
	int port = grpc_server_add_http2_port(srv, "127.0.0.1:0", sc);
	grpc_server_credentials_release(sc);
	assert_true(port > 0);
	grpc_server_start(srv);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, poll_cq, cq), 0);

	char *ca_pem = certs_read(ca), *cert_pem = cert ? certs_read(cert) : NULL, *key_pem = cert ? certs_read(key) : NULL;
	grpc_ssl_pem_key_cert_pair kp = {key_pem, cert_pem};
	grpc_channel_credentials *cc = grpc_ssl_credentials_create(ca_pem, cert ? &kp : NULL, NULL, NULL);
	char addr[32];
	errq_snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	grpc_channel *ch = errq_channel_new_ex(addr, cc, NULL, 0);
	grpc_channel_credentials_release(cc);
	struct errq_unary_result r;
	Errq__V1__StatusRequest req = ERRQ__V1__STATUS_REQUEST__INIT;
	assert_int_equal(errq_unary_call(ch, "/errq.v1.Query/Status", &req.base, 30000, &r), 0);
	errq_unary_result_free(&r);
	grpc_channel_destroy(ch);
	free(ca_pem);
	free(cert_pem);
	free(key_pem);

	grpc_server_shutdown_and_notify(srv, cq, NULL);
	grpc_server_cancel_all_calls(srv);
	grpc_server_destroy(srv);
	grpc_completion_queue_shutdown(cq);
	pthread_join(th, NULL);
	grpc_completion_queue_destroy(cq);
	return r.status;
}

static void test_auth_context(void **state)
{
	(void)state;
	grpc_init();
	char err[512];
	struct tls *t = NULL;
	struct seen s;
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);

	/* mutual TLS, a client certificate without SANs: the identity is its common name */
	assert_int_equal(tls_new(&t,
				 &(struct tls_opts){.cert = crt("server.pem"), .key = crt("server.key"),
						    .client_ca = crt("ca.pem")},
				 err, sizeof(err)),
			 0);
	assert_true(tls_mutual(t));
	assert_int_equal(one_call(t, &s, crt("ca.pem"), crt("client.pem"), crt("client.key")),
			 GRPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.identity, "x509_common_name:errq-test-client");
	assert_int_equal(s.authenticated, 1);
	assert_non_null(strstr(s.props, "transport_security_type=ssl\n"));
	assert_non_null(strstr(s.props, "x509_common_name=errq-test-client\n"));
	assert_non_null(strstr(s.props, "x509_subject=CN=errq-test-client\n"));

	/* with SANs: the identity is every SAN */
	assert_int_equal(one_call(t, &s, crt("ca.pem"), crt("client3.pem"), crt("client3.key")),
			 GRPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(s.calls, 2);
	assert_string_equal(s.identity, "x509_subject_alternative_name:svc.errq.test,spiffe://errq.test/svc");
	assert_non_null(strstr(s.props, "x509_common_name=errq-test-client-3\n"));
	assert_non_null(strstr(s.props, "peer_spiffe_id=spiffe://errq.test/svc\n"));
	tls_free(t);

	/* TLS without client certificates: no identity */
	assert_int_equal(
	    tls_new(&t, &(struct tls_opts){.cert = crt("server.pem"), .key = crt("server.key")}, err, sizeof(err)), 0);
	assert_int_equal(one_call(t, &s, crt("ca.pem"), NULL, NULL), GRPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(s.calls, 3);
	assert_string_equal(s.identity, "(none):");
	assert_int_equal(s.authenticated, 0);
	assert_non_null(strstr(s.props, "transport_security_type=ssl\n"));
	assert_null(strstr(s.props, "x509_common_name"));
	tls_free(t);
	pthread_mutex_destroy(&s.mu);
	grpc_shutdown_blocking();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_generations_and_refusals),
	    cmocka_unit_test(test_auth_context),
	};
	return cmocka_run_group_tests_name("unit_tls", tests, certs_setup, certs_teardown);
}
