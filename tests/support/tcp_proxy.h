/* tcp_proxy.h: a TCP relay between a program under test and a server, for tests that need a
 * network fault on one connection and not on the others (issue 17: a collector's leader-lock
 * session cut off from PostgreSQL while its writer's sessions still reach it).
 *
 * tcp_proxy_start listens on 127.0.0.1 (an ephemeral port, in ->port) and relays each
 * connection it accepts to the upstream address, byte for byte, from a thread of its own.  A
 * relayed connection is named by the local port of its upstream socket: what the server sees
 * as the client's port (PostgreSQL's pg_stat_activity.client_port).
 *
 *   tcp_proxy_freeze(p, port)  stops relaying that connection, both ways, without closing
 *                              either end: what a partition looks like to both programs until
 *                              their timeouts notice (bytes sent are accepted by the kernel,
 *                              never answered; the server's close goes unseen);
 *   tcp_proxy_cut(p, port)     closes both ends of it: the partition heals with a reset.
 *
 * Limits: TCP_PROXY_MAX_CONNS connections at once (another is accepted and closed at once);
 * TCP_PROXY_BUF bytes in flight each way per connection (reading stops while they wait). */
#ifndef ERRQ_TCP_PROXY_H
#define ERRQ_TCP_PROXY_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define TCP_PROXY_MAX_CONNS 64
#define TCP_PROXY_BUF 16384

struct tcp_proxy_dir {
	char buf[TCP_PROXY_BUF];
	size_t off, len; /* bytes read from one end, not yet written to the other */
	bool eof;        /* the reading end said EOF: shut the other's writing side when drained */
	bool shut;       /* ... and it was */
};

struct tcp_proxy_conn {
	int down, up;   /* the accepted socket, the one to the server; -1 when unused */
	int up_port;    /* the upstream socket's local port */
	bool frozen;    /* under mu */
	struct tcp_proxy_dir to_up, to_down;
};

struct tcp_proxy {
	int port;                  /* where it listens (127.0.0.1) */
	char up_host[256];
	int up_port;
	int lfd;
	int wake[2];               /* a pipe: a freeze, a cut or the stop wakes the thread */
	pthread_t thread;
	pthread_mutex_t mu;
	bool running;              /* started and not stopped: a zeroed relay (never started) stops as a no-op */
	bool stopping;             /* under mu */
	int cut_port;              /* under mu: a cut the thread has not done yet, or 0 */
	struct tcp_proxy_conn c[TCP_PROXY_MAX_CONNS];
};

/* Whether host is a numeric IPv4 address (what tcp_proxy_start can relay to). */
bool tcp_proxy_ipv4(const char *host);
/* Starts relaying 127.0.0.1:p->port to up_host:up_port (a numeric IPv4 address).  0, or -1
 * with the reason on stderr (nothing left running). */
int tcp_proxy_start(struct tcp_proxy *p, const char *up_host, int up_port);
/* 0, or -1 when no relayed connection has that upstream port. */
int tcp_proxy_freeze(struct tcp_proxy *p, int up_port);
/* 0 once the connection's two ends are closed, or -1 when none has that upstream port. */
int tcp_proxy_cut(struct tcp_proxy *p, int up_port);
/* Closes every connection and the listener; joins the thread.  A zeroed struct (never started,
 * or its start failed) and a stopped one: nothing to do. */
void tcp_proxy_stop(struct tcp_proxy *p);
#endif
