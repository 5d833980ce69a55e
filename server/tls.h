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
 * processor) before the transport takes them over (the processor runs on TLS credentials as
 * on insecure ones).  What its auth context carries, as seen with Debian's gRPC 1.51.1:
 *   - always with TLS: "transport_security_type" = "ssl", "security_level" =
 *     "TSI_PRIVACY_AND_INTEGRITY", "ssl_session_reused";
 *   - with tls.client_ca (the handshake has already refused a client without a certificate
 *     that CA signed): "x509_subject" ("CN=payments"), "x509_common_name" ("payments"),
 *     "x509_pem_cert", "x509_pem_cert_chain", and per SAN one "x509_subject_alternative_name"
 *     plus one by kind ("peer_dns", "peer_uri" seen; gRPC has kinds for email and IP too),
 *     and "peer_spiffe_id" for a spiffe:// URI;
 *   - the peer identity (grpc_auth_context_peer_identity_property_name): the SANs
 *     ("x509_subject_alternative_name", every SAN a value) when the certificate has any,
 *     else "x509_common_name"; grpc_auth_context_peer_is_authenticated is then 1.  Without a
 *     client certificate (no tls.client_ca, or plain text) there is no identity: the name is
 *     NULL and peer_is_authenticated 0.
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
#define TLS_MAX_CREDS 4         /* tls_server_creds calls per struct tls (errqd: 1) */

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
 * through the fetcher when t is not NULL, else insecure.  Each is for one
 * grpc_server_add_http2_port (one security connector: gRPC gives each its own first
 * config).  NULL when gRPC refuses or after TLS_MAX_CREDS calls on one t. */
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
