#include "http_receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

static char *find_header(const char *hdrs, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = hdrs; p && *p; p = strstr(p, "\r\n")) {
		if (*p == '\r')
			p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			return (char *)p + n + 1;
		if (!strstr(p, "\r\n"))
			break;
	}
	return NULL;
}

static void serve(struct http_receiver *r, int c)
{
	char buf[65536 + 4096];
	size_t len = 0;
	char *end = NULL;
	buf[0] = '\0'; /* the stack may hold the previous request: never find its end */
	/* headers */
	while (len < sizeof(buf) - 1 && !(end = strstr(buf, "\r\n\r\n"))) {
		ssize_t k = read(c, buf + len, sizeof(buf) - 1 - len);
		if (k <= 0)
			return;
		len += (size_t)k;
		buf[len] = '\0';
	}
	if (!end)
		return;
	size_t hlen = (size_t)(end - buf) + 4;
	char *cl = find_header(buf, "Content-Length");
	size_t blen = cl ? strtoul(cl, NULL, 10) : 0;
	if (blen > sizeof(buf) - hlen - 1)
		return;
	while (len < hlen + blen) {
		ssize_t k = read(c, buf + len, hlen + blen - len);
		if (k <= 0)
			return;
		len += (size_t)k;
	}
	buf[len] = '\0';
	pthread_mutex_lock(&r->mu);
	int status = 200, ra = 0;
	if (r->used < r->nscript) {
		status = r->script[r->used];
		ra = r->retry_after[r->used];
		r->used++;
	}
	if (r->nreq < RECV_MAX_REQUESTS) {
		struct recv_request *q = &r->req[r->nreq++];
		q->headers = strndup(buf, hlen);
		q->body = strndup(buf + hlen, blen);
		q->at_ns = errq_mono_ns();
		q->status = status;
	}
	pthread_mutex_unlock(&r->mu);
	char resp[256];
	int n = errq_snprintf(resp, sizeof(resp),
			      "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n%s%s%s\r\nok", status,
			      ra ? "Retry-After: " : "", ra ? "" : "", "");
	if (ra)
		n = errq_snprintf(resp, sizeof(resp),
				  "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\nRetry-After: %d\r\n\r\nok",
				  status, ra);
	ssize_t w = write(c, resp, (size_t)n);
	(void)w;
}

static void *recv_main(void *arg)
{
	struct http_receiver *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		bool stop = r->stop;
		pthread_mutex_unlock(&r->mu);
		if (stop)
			break;
		struct pollfd pfd = {r->fd, POLLIN, 0};
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		serve(r, c);
		close(c);
	}
	return NULL;
}

int receiver_start(struct http_receiver *r, int port)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof(a);
	if (bind(r->fd, (struct sockaddr *)&a, sizeof(a)) || listen(r->fd, 64) ||
	    getsockname(r->fd, (struct sockaddr *)&a, &al)) {
		close(r->fd);
		return -1;
	}
	r->port = ntohs(a.sin_port);
	return pthread_create(&r->thread, NULL, recv_main, r) ? -1 : 0;
}

void receiver_script(struct http_receiver *r, int status, int retry_after_s)
{
	pthread_mutex_lock(&r->mu);
	if (r->nscript < RECV_MAX_SCRIPT) {
		r->script[r->nscript] = status;
		r->retry_after[r->nscript] = retry_after_s;
		r->nscript++;
	}
	pthread_mutex_unlock(&r->mu);
}

int receiver_count(struct http_receiver *r)
{
	pthread_mutex_lock(&r->mu);
	int n = r->nreq;
	pthread_mutex_unlock(&r->mu);
	return n;
}

int receiver_wait(struct http_receiver *r, int n)
{
	uint64_t deadline = errq_mono_ns() + HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	int got;
	while ((got = receiver_count(r)) < n && errq_mono_ns() < deadline) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	return got;
}

const char *receiver_header(struct http_receiver *r, int i, const char *name, char *out, size_t outsz)
{
	pthread_mutex_lock(&r->mu);
	const char *v = i < r->nreq ? find_header(r->req[i].headers, name) : NULL;
	if (v) {
		while (*v == ' ')
			v++;
		size_t n = strcspn(v, "\r\n");
		if (n >= outsz)
			n = outsz - 1;
		memcpy(out, v, n);
		out[n] = '\0';
	}
	pthread_mutex_unlock(&r->mu);
	return v ? out : NULL;
}

void receiver_stop(struct http_receiver *r)
{
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	close(r->fd);
	for (int i = 0; i < r->nreq; i++) {
		free(r->req[i].headers);
		free(r->req[i].body);
	}
	pthread_mutex_destroy(&r->mu);
}
