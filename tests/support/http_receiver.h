/* http_receiver.h: a real HTTP/1.1 server on 127.0.0.1 for webhook tests.  It answers each
 * request with the next scripted status (then 200), optionally with a Retry-After, and records
 * every request (headers and body) with its arrival time. */
#ifndef ERRQ_HTTP_RECEIVER_H
#define ERRQ_HTTP_RECEIVER_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RECV_MAX_REQUESTS 256
#define RECV_MAX_SCRIPT 32

struct recv_request {
	char *headers; /* raw header block */
	char *body;
	uint64_t at_ns; /* monotonic */
	int status;     /* what it was answered */
};

struct http_receiver {
	int fd, port;
	pthread_t thread;
	pthread_mutex_t mu;
	bool stop;
	int script[RECV_MAX_SCRIPT];   /* statuses to answer, in order; then 200 */
	int retry_after[RECV_MAX_SCRIPT];
	int nscript, used;
	struct recv_request req[RECV_MAX_REQUESTS];
	int nreq;
};

/* port 0 = ephemeral.  Returns 0 or -1. */
int receiver_start(struct http_receiver *r, int port);
void receiver_script(struct http_receiver *r, int status, int retry_after_s);
int receiver_count(struct http_receiver *r);
/* Waits until at least n requests arrived (deadline HARNESS_DEADLINE_MS); returns the count. */
int receiver_wait(struct http_receiver *r, int n);
/* The value of header name in request i (copied into out), or NULL. */
const char *receiver_header(struct http_receiver *r, int i, const char *name, char *out, size_t outsz);
void receiver_stop(struct http_receiver *r);
#endif
