/* http.h: errqd's HTTP listener (libmicrohttpd) for probes and scrapes.
 *
 *   GET /livez              200 while every worker thread turns (health.h), else 503
 *   GET /readyz, /healthz   200 when errqd can accept and commit, else 503 with the reason
 *   GET /metrics            Prometheus text format 0.0.4 (metrics.h)
 * HEAD works wherever GET does; any other method is 405 (with Allow), any other path 404.
 * Health answers are one line of JSON: {"status":"ready"} or
 * {"status":"not_ready","reason":"disk full for 3s: ..."}.
 *
 * Bounds and policy at the limit: at most HTTP_MAX_CONNECTIONS connections (more are
 * refused at accept), HTTP_MAX_PER_IP from one address, HTTP_CONN_MEMORY bytes per connection
 * for the request line and headers (a larger request is answered 431/413 by libmicrohttpd
 * and closed), request bodies are never read (the connection is closed after the answer),
 * idle connections close after HTTP_TIMEOUT_S.  The listening socket is bound without
 * SO_REUSEPORT, so a second errqd on the same address fails to start.
 *
 * With tls.cert, the listener serves HTTPS only, with the gRPC listener's certificate, and
 * asks no client certificate (tls_http.h).
 *
 * Threads: one thread of libmicrohttpd's serves every connection in turn; a scrape reads
 * the database through that thread's own read-only connection. */
#ifndef ERRQD_HTTP_H
#define ERRQD_HTTP_H
#include <stddef.h>

#define HTTP_MAX_CONNECTIONS 64
#define HTTP_MAX_PER_IP 32
#define HTTP_CONN_MEMORY (32u * 1024)
#define HTTP_TIMEOUT_S 10
#define HTTP_BACKLOG 64

struct health;
struct metrics;
struct tls;
struct http;

struct http_opts {
	const char *listen;      /* HOST:PORT; port 0 picks a free one */
	struct health *health;
	struct metrics *metrics; /* NULL: /metrics answers 503 */
	struct tls *tls;         /* not NULL: HTTPS with tls.h's pair, reloaded (tls_http.h); must
				  * outlive http_stop */
};

/* Binds and starts serving.  Returns 0, or -1 with the reason in err. */
int http_start(struct http **out, const struct http_opts *o, char *err, size_t errsz);
int http_port(const struct http *h); /* the bound port */
/* Stops serving (waits for the thread).  Accepts NULL. */
void http_stop(struct http *h);
#endif
