/* certs.h: the TLS tests' certificates (tests/unit/test_tls.c, tests/integration/test_tls.c),
 * made fresh at each run by make_certs.sh (which lists them) in a temporary directory. */
#ifndef ERRQ_CERTS_H
#define ERRQ_CERTS_H

/* cmocka group setup: the directory and the certificates (the openssl CLI).  0, or -1
 * (printed why).  It does not call grpc_init: a test process that holds gRPC initialized
 * makes each fork() wait for liberrq's atfork handler (up to 5 s, for gRPC to shut down), so
 * a test initializes gRPC only around its own direct gRPC use. */
int certs_setup(void **state);
/* cmocka group teardown: removes the directory. */
int certs_teardown(void **state);
/* The path of one of them ("ca.pem"), in one of 8 buffers used in turn: valid for the next 7
 * calls only. */
const char *certs_path(const char *name);
/* Copies src over dst the way a deployment tool should: a new file renamed into place (fails
 * the running cmocka test on error). */
void certs_install(const char *src, const char *dst);
/* The text of a file (free it); fails the running cmocka test when it cannot be read. */
char *certs_read(const char *path);
#endif
