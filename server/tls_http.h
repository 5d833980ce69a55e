/* tls_http.h: HTTPS for errqd's HTTP listener (http.c) with the pair in force of tls.h,
 * reloaded as gRPC's is: libmicrohttpd asks GnuTLS, which asks tls_http for the certificate
 * at every handshake (MHD_OPTION_HTTPS_CERT_CALLBACK); a new generation of the pair is
 * turned into GnuTLS objects then.  The daemon is never restarted.
 *
 * Lifetime of a replaced certificate: GnuTLS does not copy or free what the callback gives
 * it, and a connection may use it until it closes.  So a replaced generation is retired
 * with the serial of the next connection to open, and freed once every connection opened
 * before it has closed (MHD_OPTION_NOTIFY_CONNECTION counts them).
 *
 * No client certificate is asked for on HTTP, even with tls.client_ca: the probes and the
 * scrape stay open to kubelets and Prometheus (they carry no event data).
 *
 * Threads: every callback runs on libmicrohttpd's one polling thread (http.c starts it with
 * MHD_USE_INTERNAL_POLLING_THREAD and no thread pool; a pool would need a lock here).  GnuTLS's
 * certificate callback has no user pointer, so one tls_http exists per process at a time. */
#ifndef ERRQD_TLS_HTTP_H
#define ERRQD_TLS_HTTP_H
#include <microhttpd.h>
#include <stddef.h>

#define TLS_HTTP_MAX_CHAIN 16   /* certificates in tls.cert (leaf and intermediates) */
#define TLS_HTTP_MHD_OPTIONS 2  /* items tls_http_mhd_options appends */

struct tls;
struct tls_http;

/* For a listener of at most max_conns connections.  0, or -1 with the reason in err (the
 * pair does not load into GnuTLS, or this libmicrohttpd has no TLS). */
int tls_http_new(struct tls_http **out, struct tls *t, unsigned max_conns, char *err, size_t errsz);
/* The MHD_OptionItems (certificate callback, connection notifier) to start the daemon with
 * MHD_USE_TLS: writes TLS_HTTP_MHD_OPTIONS items at opts. */
void tls_http_mhd_options(struct tls_http *h, struct MHD_OptionItem *opts);
/* After the daemon has stopped.  Accepts NULL. */
void tls_http_free(struct tls_http *h);
#endif
