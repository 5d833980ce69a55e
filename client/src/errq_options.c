/* errq_options.c: the options object handed to errq_client_new().  Plain data, one thread at
 * a time; every setter validates its range here so that errq_client_new() cannot fail on a
 * bad value. */
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	o->ack_timeout_ms = ERRQ__ACK_TIMEOUT_MS_DEFAULT;
	o->spill_wait_ms = ERRQ__SPILL_WAIT_MS_DEFAULT;
	o->circuit_threshold = ERRQ__CIRCUIT_THRESHOLD_DEFAULT;
	o->outcome_interval_s = ERRQ__OUTCOME_INTERVAL_S_DEFAULT;
	o->spool_max_bytes = ERRQ__SPOOL_BYTES_DEFAULT;
	return o;
}

void errq__options_release(struct errq_options *o)
{
	free(o->collector);
	free(o->service);
	free(o->environment);
	free(o->release);
	free(o->host);
	free(o->spool_dir);
	free(o->tls_ca_pem);
	free(o->tls_cert_pem);
	if (o->tls_key_pem) /* secrets do not linger in freed memory */
		explicit_bzero(o->tls_key_pem, strlen(o->tls_key_pem));
	free(o->tls_key_pem);
	if (o->token)
		explicit_bzero(o->token, strlen(o->token));
	free(o->token);
	o->collector = o->service = o->environment = o->release = o->host = NULL;
	o->spool_dir = o->tls_ca_pem = o->tls_cert_pem = o->tls_key_pem = o->token = NULL;
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

ERRQ_EXPORT int errq_options_set_circuit_threshold(errq_options_t *opts, unsigned failures)
{
	if (!opts || failures < 1 || failures > ERRQ__CIRCUIT_THRESHOLD_MAX)
		return ERRQ_EINVAL;
	opts->circuit_threshold = failures;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_ack_timeout(errq_options_t *opts, unsigned ms)
{
	if (!opts || ms < ERRQ__ACK_TIMEOUT_MS_MIN || ms > ERRQ__ACK_TIMEOUT_MS_MAX)
		return ERRQ_EINVAL;
	opts->ack_timeout_ms = ms;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_spill_wait(errq_options_t *opts, unsigned ms)
{
	if (!opts || ms > ERRQ__SPILL_WAIT_MS_MAX)
		return ERRQ_EINVAL;
	opts->spill_wait_ms = ms;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_outcome_interval(errq_options_t *opts, unsigned seconds)
{
	if (!opts || seconds < 1 || seconds > ERRQ__OUTCOME_INTERVAL_S_MAX)
		return ERRQ_EINVAL;
	opts->outcome_interval_s = seconds;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_spool_dir(errq_options_t *opts, const char *dir)
{
	char *copy = NULL;
	if (!opts)
		return ERRQ_EINVAL;
	if (dir && *dir) {
		size_t n = strnlen(dir, ERRQ__MAX_PATH_LEN + 1);
		if (n > ERRQ__MAX_PATH_LEN)
			return ERRQ_EINVAL;
		if (!(copy = strndup(dir, n)))
			return ERRQ_ENOMEM;
	}
	free(opts->spool_dir);
	opts->spool_dir = copy;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_options_set_spool_max_bytes(errq_options_t *opts, uint64_t bytes)
{
	if (!opts || bytes < ERRQ__SPOOL_BYTES_MIN || bytes > ERRQ__SPOOL_BYTES_MAX)
		return ERRQ_EINVAL;
	opts->spool_max_bytes = bytes;
	return ERRQ_OK;
}

/* Reads a whole PEM file (at most ERRQ__MAX_PEM_BYTES) into a new NUL-terminated string.
 * NULL path: *out = NULL.  Returns ERRQ_OK, ERRQ_EINVAL (too long a path, or too big),
 * ERRQ_EIO or ERRQ_ENOMEM. */
static int read_pem(const char *path, char **out)
{
	int rc = ERRQ_OK, fd = -1;
	char *buf = NULL;
	size_t len = 0;
	struct stat sb;

	*out = NULL;
	if (!path)
		goto out;
	if (!*path || strnlen(path, ERRQ__MAX_PATH_LEN + 1) > ERRQ__MAX_PATH_LEN) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = ERRQ_EIO;
		goto out;
	}
	if (sb.st_size <= 0 || (uint64_t)sb.st_size > ERRQ__MAX_PEM_BYTES) {
		rc = sb.st_size <= 0 ? ERRQ_EIO : ERRQ_EINVAL;
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		rc = ERRQ_ENOMEM;
		goto out;
	}
	while (len < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)sb.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shrank while reading: take what is there */
		len += (size_t)r;
	}
	if (!len || memchr(buf, '\0', len)) {
		rc = ERRQ_EIO;
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

ERRQ_EXPORT int errq_options_set_tls(errq_options_t *opts, const char *ca_pem_path,
				     const char *cert_path, const char *key_path)
{
	int rc;
	char *ca = NULL, *cert = NULL, *key = NULL;
	if (!opts || !cert_path != !key_path)
		return ERRQ_EINVAL;
	if ((rc = read_pem(ca_pem_path, &ca)) || (rc = read_pem(cert_path, &cert)) ||
	    (rc = read_pem(key_path, &key)))
		goto out;
	free(opts->tls_ca_pem);
	free(opts->tls_cert_pem);
	free(opts->tls_key_pem);
	opts->tls_ca_pem = ca;
	opts->tls_cert_pem = cert;
	opts->tls_key_pem = key;
	opts->tls = true;
	ca = cert = key = NULL;
out:
	free(ca);
	free(cert);
	if (key) {
		explicit_bzero(key, strlen(key)); /* a private key does not linger in freed memory */
		free(key);
	}
	return rc;
}

ERRQ_EXPORT int errq_options_set_token(errq_options_t *opts, const char *token)
{
	static const char bearer[] = "Bearer ";
	char *v = NULL;
	if (!opts)
		return ERRQ_EINVAL;
	if (token && *token) {
		size_t n = strnlen(token, ERRQ__MAX_TOKEN_LEN + 1);
		if (n > ERRQ__MAX_TOKEN_LEN)
			return ERRQ_EINVAL;
		for (size_t i = 0; i < n; i++) /* gRPC refuses other bytes in a header value */
			if ((unsigned char)token[i] < 0x20 || (unsigned char)token[i] > 0x7e)
				return ERRQ_EINVAL;
		v = malloc(sizeof(bearer) + n);
		if (!v)
			return ERRQ_ENOMEM;
		memcpy(v, bearer, sizeof(bearer) - 1);
		memcpy(v + sizeof(bearer) - 1, token, n);
		v[sizeof(bearer) - 1 + n] = '\0';
	}
	if (opts->token) {
		explicit_bzero(opts->token, strlen(opts->token));
		free(opts->token);
	}
	opts->token = v; /* stored as the whole header value */
	return ERRQ_OK;
}
