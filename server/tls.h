/* tls.h: errqd's certificate and key (settings tls.cert, tls.key, tls.client_ca), checked with
 * OpenSSL, kept current from disk, and turned into the gRPC listener's credentials.  The HTTP
 * listener serves the same pair (tls_http.h).
 *
 * Reload without a restart: gRPC's certificate-config fetcher calls tls's fetcher at every TLS
 * handshake; it stat()s the three files at most every TLS_CHECK_MS and, when one changed
 * (inode, size or mtime), reads and checks them again.  tls_reload (SIGHUP) re-reads at once.
 * A pair that does not load (unreadable file, no PEM in it, a key that does not match the
 * certificate, an empty client CA) is refused with one error line, and the pair in force
 * stays until the files change again.  Connections keep the certificate they were opened
 * with; only new handshakes see a new one.
 *
 * Bounds: each file at most TLS_FILE_MAX bytes (a larger one is refused like a bad pair).
 *
 * The seam for authentication (auth helper): tls_server_creds returns plain credentials that
 * a caller may give an auth metadata processor (grpc_server_credentials_set_auth_metadata_
 * processor) before the transport takes them over.  With TLS, the processor's auth context
 * carries "transport_security_type" = "ssl" and, with tls.client_ca set (the handshake then
 * refuses a client without a certificate that CA signed), the client certificate's
 * "x509_common_name", one "x509_subject_alternative_name" per SAN and "x509_pem_cert" (gRPC
 * 1.51 adds a few more; see doc/server_side_auth.md in gRPC).  Its peer identity
 * (grpc_auth_context_peer_identity) is the SANs when the certificate has any, else the common
 * name.  Without a client certificate (no tls.client_ca, or plain text) there is no peer
 * identity: grpc_auth_context_peer_is_authenticated is false.
 *
 * Threads: the fetcher runs on gRPC's threads, tls_http's callbacks on libmicrohttpd's,
 * tls_reload on main's; one mutex guards the pair in force. */
#ifndef ERRQD_TLS_H
#define ERRQD_TLS_H
#include <grpc/grpc_security.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_FILE_MAX (1u << 20) /* bytes of one PEM file */
#define TLS_CHECK_MS 1000       /* the files are stat()ed at most this often */

struct tls_opts {
	const char *cert;      /* PEM certificate chain, leaf first ("" or NULL: no TLS) */
	const char *key;       /* its PEM private key (not encrypted) */
	const char *client_ca; /* "" or NULL: no client certificate asked; else mutual TLS */
};

struct tls;

/* Checks the settings and loads the pair: 0 with *out set (NULL when no tls.cert: plain
 * text), or -1 with the reason in err, naming the setting and the file. */
int tls_new(struct tls **out, const struct tls_opts *o, char *err, size_t errsz);
/* New server credentials, one reference for the caller (the transport takes it over): TLS
 * through the fetcher when t is not NULL, else insecure.  NULL when gRPC refuses. */
grpc_server_credentials *tls_server_creds(struct tls *t);
/* Re-reads the files now (SIGHUP) and logs the outcome.  0: the files' pair is in force;
 * -1: refused, the previous pair stays. */
int tls_reload(struct tls *t);
/* Checks the files when TLS_CHECK_MS has passed since the last look (every handshake calls
 * it) and returns the generation of the pair in force (1 for the first, +1 per reload). */
uint64_t tls_refresh(struct tls *t);
/* Copies of the pair in force (free both; wipe the key first) and its generation.  0, or -1
 * when out of memory. */
int tls_copy_pair(struct tls *t, char **cert_pem, char **key_pem, uint64_t *gen);
/* For /metrics: the pair in force and the reloads so far. */
struct tls_stats {
	uint64_t generation;     /* of the pair in force (1 at start) */
	uint64_t reloads;        /* new pairs taken after the start */
	uint64_t refused;        /* new versions of the files refused */
	int64_t not_after_unix;  /* the certificate's notAfter, seconds since the epoch (0: unknown) */
};
void tls_get_stats(struct tls *t, struct tls_stats *st);
/* true when tls.client_ca is set (mutual TLS on gRPC). */
bool tls_mutual(const struct tls *t);
/* Frees t after everything that used it (the gRPC server, the HTTP listener) is gone.
 * Accepts NULL. */
void tls_free(struct tls *t);
#endif
