/* errq_options.c: the options object handed to errq_client_new().  Plain data, one thread at
 * a time; every setter validates its range here so that errq_client_new() cannot fail on a
 * bad value. */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>

#include "errq_str.h"
#include "errq_banned.h"

/* Replaces *slot with a copy of s (NULL or "" clears).  Values longer than max or not valid
 * UTF-8 are refused: the collector would cut or reject every event carrying them, and a
 * configuration mistake is better reported once, here. */
static int set_str(char **slot, const char *s, size_t max)
{
	char *copy = NULL;
	if (s && *s) {
		size_t n = strnlen(s, max + 1);
		if (n > max || !errq_utf8_valid(s, n, NULL))
			return ERRQ_EINVAL;
		copy = strndup(s, n);
		if (!copy)
			return ERRQ_ENOMEM;
	}
	free(*slot);
	*slot = copy;
	return ERRQ_OK;
}

ERRQ_EXPORT errq_options_t *errq_options_new(void)
{
	errq_options_t *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->collector = strdup(ERRQ__DEFAULT_COLLECTOR);
	if (!o->collector) {
		free(o);
		return NULL;
	}
	o->queue_capacity = ERRQ__QUEUE_CAPACITY_DEFAULT;
	o->queue_bytes = ERRQ__QUEUE_BYTES_DEFAULT;
	o->max_batch_events = ERRQ__BATCH_EVENTS_DEFAULT;
	o->max_batch_bytes = ERRQ__BATCH_BYTES_DEFAULT;
	o->linger_ms = ERRQ__LINGER_MS_DEFAULT;
	o->max_inflight = ERRQ__INFLIGHT_DEFAULT;
	o->backoff_initial_ms = ERRQ__BACKOFF_INITIAL_MS_DEFAULT;
	o->backoff_max_ms = ERRQ__BACKOFF_MAX_MS_DEFAULT;
	return o;
}

void errq__options_release(struct errq_options *o)
{
	free(o->collector);
	free(o->service);
	free(o->environment);
	free(o->release);
	free(o->host);
	o->collector = o->service = o->environment = o->release = o->host = NULL;
}

ERRQ_EXPORT void errq_options_free(errq_options_t *opts)
{
	if (!opts)
		return;
	errq__options_release(opts);
	free(opts);
}

ERRQ_EXPORT int errq_options_set_collector(errq_options_t *opts, const char *addr)
{
	if (!opts || !addr || !*addr)
		return ERRQ_EINVAL;
	return set_str(&opts->collector, addr, ERRQ__MAX_ADDR_LEN);
}

ERRQ_EXPORT int errq_options_set_service(errq_options_t *opts, const char *service)
{
	if (!opts)
		return ERRQ_EINVAL;
	return set_str(&opts->service, service, ERRQ__MAX_SERVICE_LEN);
}

ERRQ_EXPORT int errq_options_set_environment(errq_options_t *opts, const char *environment)
{
	if (!opts)
		return ERRQ_EINVAL;
	return set_str(&opts->environment, environment, ERRQ__MAX_ENVIRONMENT_LEN);
}

ERRQ_EXPORT int errq_options_set_release(errq_options_t *opts, const char *release)
{
	if (!opts)
		return ERRQ_EINVAL;
	return set_str(&opts->release, release, ERRQ__MAX_RELEASE_LEN);
}

ERRQ_EXPORT int errq_options_set_host(errq_options_t *opts, const char *host)
{
	if (!opts)
		return ERRQ_EINVAL;
	int rc = set_str(&opts->host, host, ERRQ__MAX_HOST_LEN);
	if (rc == ERRQ_OK)
		opts->host_set = true;
	return rc;
}

ERRQ_EXPORT int errq_options_set_queue_capacity(errq_options_t *opts, size_t events)
{
	if (!opts || events < ERRQ__QUEUE_CAPACITY_MIN || events > ERRQ__QUEUE_CAPACITY_MAX)
		return ERRQ_EINVAL;
	opts->queue_capacity = events;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_queue_bytes(errq_options_t *opts, size_t bytes)
{
	if (!opts || bytes < ERRQ__QUEUE_BYTES_MIN || bytes > ERRQ__QUEUE_BYTES_MAX)
		return ERRQ_EINVAL;
	opts->queue_bytes = bytes;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_max_batch_events(errq_options_t *opts, size_t events)
{
	if (!opts || events < 1 || events > ERRQ__BATCH_EVENTS_MAX)
		return ERRQ_EINVAL;
	opts->max_batch_events = events;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_max_batch_bytes(errq_options_t *opts, size_t bytes)
{
	if (!opts || bytes < ERRQ__BATCH_BYTES_MIN || bytes > ERRQ__BATCH_BYTES_MAX)
		return ERRQ_EINVAL;
	opts->max_batch_bytes = bytes;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_linger_ms(errq_options_t *opts, unsigned ms)
{
	if (!opts || ms > ERRQ__LINGER_MS_MAX)
		return ERRQ_EINVAL;
	opts->linger_ms = ms;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_max_inflight(errq_options_t *opts, unsigned batches)
{
	if (!opts || batches < 1 || batches > ERRQ__INFLIGHT_MAX)
		return ERRQ_EINVAL;
	opts->max_inflight = batches;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_reconnect_backoff(errq_options_t *opts, unsigned initial_ms,
						   unsigned max_ms)
{
	if (!opts || initial_ms < 1 || initial_ms > max_ms || max_ms > ERRQ__BACKOFF_MS_MAX)
		return ERRQ_EINVAL;
	opts->backoff_initial_ms = initial_ms;
	opts->backoff_max_ms = max_ms;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_debug(errq_options_t *opts, bool on)
{
	if (!opts)
		return ERRQ_EINVAL;
	opts->debug = on;
	return ERRQ_OK;
}
