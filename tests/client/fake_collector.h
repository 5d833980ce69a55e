/* fake_collector.h: an in-process Collector.Report server on the gRPC C core, for the liberrq
 * tests.  It records every ReportRequest it receives and the authorization metadata of
 * every call, dedupes events by event_id like the real collector, serves plaintext or TLS,
 * and can misbehave on purpose: end the first calls with UNAVAILABLE right after their
 * first message, unanswered (as a collector that committed and then crashed before
 * acknowledging), stay silent on the first calls (read everything, answer nothing, never
 * end them: a wedged collector), or reject the first event of every batch. */
#ifndef FAKE_COLLECTOR_H
#define FAKE_COLLECTOR_H
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errq/v1/collector.pb-c.h"

#define FAKE_MAX_REQUESTS 4096
#define FAKE_MAX_IDS 65536

struct fake_collector {
	/* behaviour, set before fake_start */
	int fail_first_calls; /* calls (counted from 0) that end with UNAVAILABLE after 1 message */
	bool reject_first;    /* reject failures[0] of every batch with "missing_service: test" */
	int silent_first_calls; /* calls (counted from 0) that read and record but never answer */
	const char *tls_cert_pem; /* both set: serve TLS with this certificate and key */
	const char *tls_key_pem;

	/* read by tests after a flush (take mu when the client may still send) */
	pthread_mutex_t mu;
	int port;
	char addr[64];
	size_t calls;                                   /* calls accepted */
	size_t n_requests;                              /* messages received */
	Errq__V1__ReportRequest *requests[FAKE_MAX_REQUESTS]; /* unpacked, in arrival order */
	uint8_t (*ids)[16];                             /* distinct event ids stored */
	size_t n_ids;
	size_t events_received;                         /* with duplicates */
	size_t outcome_records;                         /* Outcome records received, resends too */
	char authorization[8192];                       /* the last call's "authorization" value */
	size_t calls_with_authorization;

	/* internal */
	grpc_server *server;
	grpc_completion_queue *cq;
	void *method;
	pthread_t thread;
	pthread_cond_t cv;
	bool shutdown_done;
	bool stopping;
	int shutdown_tag;
};

/* Starts listening on 127.0.0.1:port (0: an ephemeral one; f->port says which).  Calls
 * grpc_init().  Returns 0 or -1. */
int fake_start(struct fake_collector *f, int port);
/* Cancels every call, stops the server, frees the records, calls grpc_shutdown(). */
void fake_stop(struct fake_collector *f);
/* True when id was stored. */
bool fake_has_id(struct fake_collector *f, const uint8_t id[16]);
#endif
