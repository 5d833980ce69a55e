/* tcp_proxy.c: see tcp_proxy.h.  One thread polls the listener, a wake-up pipe and every
 * connection that is not frozen; it alone opens and closes sockets, so a freeze or a cut from
 * the test's thread is a flag under mu and a byte on the pipe.  Every descriptor is
 * close-on-exec: a collector the test starts later must not inherit one, or a cut would close
 * only the relay's copy and the other end would never see it. */
#include "tcp_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_time.h"
#include "harness.h"

static void conn_close(struct tcp_proxy_conn *c)
{
	if (c->down >= 0)
		close(c->down);
	if (c->up >= 0)
		close(c->up);
	memset(c, 0, sizeof(*c));
	c->down = c->up = -1;
}

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

/* Under mu: a new connection relayed, or turned away at the limit or when the server refuses. */
static void take(struct tcp_proxy *p)
{
	int d = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (d < 0)
		return;
	struct tcp_proxy_conn *c = NULL;
	for (int i = 0; i < TCP_PROXY_MAX_CONNS && !c; i++)
		if (p->c[i].down < 0)
			c = &p->c[i];
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->up_port)};
	int u = -1;
	socklen_t al = sizeof(a);
	if (!c || inet_pton(AF_INET, p->up_host, &a.sin_addr) != 1 ||
	    (u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 || connect(u, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(u, (struct sockaddr *)&a, &al) || nonblock(u)) {
		close(d);
		if (u >= 0)
			close(u);
		return;
	}
	c->down = d;
	c->up = u;
	c->up_port = ntohs(a.sin_port);
}

/* Under mu: moves what one end has to the other (a write is tried whenever bytes wait: the
 * sockets are non-blocking).  -1 when the connection is over. */
static int pump(int from, int to, struct tcp_proxy_dir *d, short rev_from)
{
	if (d->len == 0 && !d->eof && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = read(from, d->buf, sizeof(d->buf));
		if (n > 0) {
			d->off = 0;
			d->len = (size_t)n;
		} else if (n == 0) {
			d->eof = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			return -1;
		}
	}
	if (d->len > 0) {
		ssize_t n = send(to, d->buf + d->off, d->len, MSG_NOSIGNAL);
		if (n > 0) {
			d->off += (size_t)n;
			d->len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -1;
		}
	}
	if (d->eof && d->len == 0 && !d->shut) {
		shutdown(to, SHUT_WR);
		d->shut = true;
	}
	return 0;
}

static void *run(void *arg)
{
	struct tcp_proxy *p = arg;
	struct pollfd pf[2 + 2 * TCP_PROXY_MAX_CONNS];
	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		pf[0] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
		pf[1] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
		for (int i = 0; i < TCP_PROXY_MAX_CONNS; i++) {
			struct tcp_proxy_conn *c = &p->c[i];
			struct pollfd *dn = &pf[2 + 2 * i], *up = dn + 1;
			*dn = (struct pollfd){.fd = -1};
			*up = (struct pollfd){.fd = -1};
			if (c->down < 0 || c->frozen)
				continue; /* a frozen one: not even its hang-up is seen */
			dn->fd = c->down;
			up->fd = c->up;
			if (c->to_up.len == 0 && !c->to_up.eof)
				dn->events |= POLLIN;
			if (c->to_down.len == 0 && !c->to_down.eof)
				up->events |= POLLIN;
			if (c->to_up.len)
				up->events |= POLLOUT;
			if (c->to_down.len)
				dn->events |= POLLOUT;
		}
		pthread_mutex_unlock(&p->mu);
		int n = poll(pf, 2 + 2 * TCP_PROXY_MAX_CONNS, 1000);
		pthread_mutex_lock(&p->mu);
		if (n < 0)
			continue;
		if (pf[1].revents & POLLIN) {
			char b[64];
			while (read(p->wake[0], b, sizeof(b)) > 0) {
			}
		}
		if (p->cut_port) {
			for (int i = 0; i < TCP_PROXY_MAX_CONNS; i++)
				if (p->c[i].down >= 0 && p->c[i].up_port == p->cut_port)
					conn_close(&p->c[i]);
			p->cut_port = 0;
		}
		for (int i = 0; i < TCP_PROXY_MAX_CONNS; i++) {
			struct tcp_proxy_conn *c = &p->c[i];
			struct pollfd *dn = &pf[2 + 2 * i], *up = dn + 1;
			if (c->down < 0 || c->frozen || dn->fd != c->down)
				continue; /* closed, frozen, or taken since the poll began */
			if (pump(c->down, c->up, &c->to_up, dn->revents) ||
			    pump(c->up, c->down, &c->to_down, up->revents) ||
			    (c->to_up.eof && c->to_down.eof && !c->to_up.len && !c->to_down.len))
				conn_close(c);
		}
		if (pf[0].revents & POLLIN)
			take(p);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

bool tcp_proxy_ipv4(const char *host)
{
	struct in_addr a;
	return inet_pton(AF_INET, host, &a) == 1;
}

int tcp_proxy_start(struct tcp_proxy *p, const char *up_host, int up_port)
{
	memset(p, 0, sizeof(*p));
	p->lfd = p->wake[0] = p->wake[1] = -1;
	for (int i = 0; i < TCP_PROXY_MAX_CONNS; i++)
		p->c[i].down = p->c[i].up = -1;
	errq_snprintf(p->up_host, sizeof(p->up_host), "%s", up_host);
	p->up_port = up_port;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if ((p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
	    bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(p->lfd, 16) || getsockname(p->lfd, (struct sockaddr *)&a, &al) ||
	    pipe2(p->wake, O_CLOEXEC | O_NONBLOCK)) {
		fprintf(stderr, "tcp_proxy: listen: %s\n", strerror(errno));
		goto fail;
	}
	p->port = ntohs(a.sin_port);
	pthread_mutex_init(&p->mu, NULL);
	if (pthread_create(&p->thread, NULL, run, p)) {
		fprintf(stderr, "tcp_proxy: cannot start its thread\n");
		pthread_mutex_destroy(&p->mu);
		goto fail;
	}
	p->running = true;
	return 0;
fail:
	if (p->lfd >= 0)
		close(p->lfd);
	for (int i = 0; i < 2; i++)
		if (p->wake[i] >= 0)
			close(p->wake[i]);
	p->lfd = p->wake[0] = p->wake[1] = -1;
	return -1;
}

static void wake(struct tcp_proxy *p)
{
	ssize_t n = write(p->wake[1], "w", 1);
	(void)n; /* a full pipe wakes it as well */
}

static struct tcp_proxy_conn *find(struct tcp_proxy *p, int up_port)
{
	for (int i = 0; i < TCP_PROXY_MAX_CONNS; i++)
		if (p->c[i].down >= 0 && p->c[i].up_port == up_port)
			return &p->c[i];
	return NULL;
}

int tcp_proxy_freeze(struct tcp_proxy *p, int up_port)
{
	pthread_mutex_lock(&p->mu);
	struct tcp_proxy_conn *c = find(p, up_port);
	if (c)
		c->frozen = true;
	pthread_mutex_unlock(&p->mu);
	wake(p); /* its next poll leaves the connection out */
	return c ? 0 : -1;
}

int tcp_proxy_cut(struct tcp_proxy *p, int up_port)
{
	pthread_mutex_lock(&p->mu);
	bool found = find(p, up_port) != NULL;
	if (found)
		p->cut_port = up_port;
	pthread_mutex_unlock(&p->mu);
	if (!found)
		return -1;
	wake(p);
	uint64_t end = errq_mono_ns() + (uint64_t)HARNESS_DEADLINE_MS * ERRQ_NS_PER_MS;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		found = find(p, up_port) != NULL;
		pthread_mutex_unlock(&p->mu);
		if (!found)
			return 0;
		if (errq_mono_ns() > end)
			return -1;
		harness_msleep(5);
	}
}

void tcp_proxy_stop(struct tcp_proxy *p)
{
	if (!p->running)
		return;
	p->running = false;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_mutex_unlock(&p->mu);
	wake(p);
	pthread_join(p->thread, NULL);
	for (int i = 0; i < TCP_PROXY_MAX_CONNS; i++)
		if (p->c[i].down >= 0)
			conn_close(&p->c[i]);
	close(p->lfd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->mu);
}
