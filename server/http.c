/* http.c: the HTTP listener (http.h) on libmicrohttpd's own polling thread.
 *
 * errqd binds the listening socket itself (getaddrinfo, SO_REUSEADDR but never SO_REUSEPORT)
 * and hands it to libmicrohttpd, so that the bound port is known for port 0 and a port held
 * by another process is a start-up error with errno's words, not a silent share. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_time.h"
#include "health.h"
#include "metrics.h"
#include "tls_http.h"

struct http {
	struct MHD_Daemon *d;
	struct http_opts o;
	int fd; /* the listening socket, handed to libmicrohttpd */
	int port;
	struct tls_http *tls; /* HTTPS with tls.cert (NULL: plain HTTP) */
};

/* "HOST:PORT", "[V6]:PORT" -> a bound, listening socket. */
static int bind_listen(const char *addr, int *port, char *err, size_t errsz)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host)) {
		errq_snprintf(err, errsz, "http_listen '%s' is not HOST:PORT", addr);
		return -1;
	}
	const char *h = addr;
	size_t hl = (size_t)(colon - addr);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE},
			*ai = NULL;
	int gai = getaddrinfo(host, colon + 1, &hints, &ai);
	if (gai) {
		errq_snprintf(err, errsz, "http_listen '%s': %s", addr, gai_strerror(gai));
		return -1;
	}
	int fd = -1, saved = 0;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		int one = 1;
		/* SO_REUSEADDR lets a restarted errqd bind past TIME_WAIT; it never lets two
		 * listeners share the port (that is SO_REUSEPORT, not set) */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, HTTP_BACKLOG) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		errq_snprintf(err, errsz, "cannot listen on http_listen '%s': %s", addr, strerror(saved));
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	*port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		*port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type, const char *body,
			      size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	return answer(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* {"status":"...","reason":"..."} for a probe. */
static enum MHD_Result answer_probe(struct MHD_Connection *c, bool ok, const char *good, const char *bad,
				   const char *reason)
{
	char mem[HEALTH_REASON_MAX * 2 + 64];
	struct errq_buf b;
	errq_buf_init_fixed(&b, mem, sizeof(mem));
	if (ok) {
		errq_buf_printf(&b, "{\"status\":\"%s\"}\n", good);
	} else {
		errq_buf_printf(&b, "{\"status\":\"%s\",\"reason\":", bad);
		errq_buf_add_json_str(&b, reason, strlen(reason));
		errq_buf_addstr(&b, "}\n");
	}
	return answer(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", b.p, b.len);
}

static enum MHD_Result on_metrics(struct http *h, struct MHD_Connection *c)
{
	if (!h->o.metrics)
		return answer_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "metrics are not available\n");
	struct errq_buf b;
	errq_buf_init(&b, METRICS_TEXT_MAX);
	enum MHD_Result rc;
	if (metrics_collect(h->o.metrics, &b) || !b.p)
		rc = answer_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics: the text is over its limit or memory ran out\n");
	else
		rc = answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
	errq_buf_free(&b);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct http *h = cls;
	enum { LIVEZ, READYZ, METRICS } route;
	if (strcmp(url, "/livez") == 0)
		route = LIVEZ;
	else if (strcmp(url, "/readyz") == 0 || strcmp(url, "/healthz") == 0)
		route = READYZ;
	else if (strcmp(url, "/metrics") == 0)
		route = METRICS;
	else
		return answer_text(c, MHD_HTTP_NOT_FOUND, "not found: errqd serves /livez, /readyz, /healthz and /metrics\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return answer_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET\n");
	char why[HEALTH_REASON_MAX];
	switch (route) {
	case LIVEZ:
		return answer_probe(c, health_live(h->o.health, errq_mono_ns(), why, sizeof(why)), "live", "stuck", why);
	case READYZ:
		return answer_probe(c, health_ready(h->o.health, errq_mono_ns(), why, sizeof(why)), "ready", "not_ready",
				    why);
	case METRICS:
		return on_metrics(h, c);
	}
	return MHD_NO;
}

int http_start(struct http **out, const struct http_opts *o, char *err, size_t errsz)
{
	struct http *h = calloc(1, sizeof(*h));
	*out = NULL;
	if (!h) {
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	h->o = *o;
	h->fd = bind_listen(o->listen, &h->port, err, errsz);
	if (h->fd < 0) {
		free(h);
		return -1;
	}
	/* with tls.cert: HTTPS, its certificate from tls_http at each handshake (reloads too) */
	struct MHD_OptionItem tlsopts[TLS_HTTP_MHD_OPTIONS + 1] = {{MHD_OPTION_END, 0, NULL}};
	if (o->tls) {
		if (tls_http_new(&h->tls, o->tls, HTTP_MAX_CONNECTIONS, err, errsz)) {
			close(h->fd);
			free(h);
			return -1;
		}
		tls_http_mhd_options(h->tls, tlsopts);
		tlsopts[TLS_HTTP_MHD_OPTIONS] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	}
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | (h->tls ? MHD_USE_TLS : 0),
				0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, h->fd, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_MAX_PER_IP,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)HTTP_TIMEOUT_S, MHD_OPTION_ARRAY, tlsopts, MHD_OPTION_END);
	if (!h->d) {
		errq_snprintf(err, errsz, "cannot start the HTTP listener on '%s'", o->listen);
		close(h->fd);
		tls_http_free(h->tls);
		free(h);
		return -1;
	}
	*out = h;
	return 0;
}

int http_port(const struct http *h)
{
	return h->port;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	/* quiesce hands the listening socket back (MHD would close it otherwise): close it once,
	 * after the daemon's thread is gone */
	MHD_socket fd = MHD_quiesce_daemon(h->d);
	MHD_stop_daemon(h->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	tls_http_free(h->tls); /* after the daemon's thread: its connections used the certificates */
	free(h);
}
