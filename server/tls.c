/* tls.c: the certificate and key in force, checked with OpenSSL and reloaded from disk (tls.h). */
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "errq_file.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

enum { F_CERT, F_KEY, F_CA, F_COUNT };
static const char *const setting_name[F_COUNT] = {"tls.cert", "tls.key", "tls.client_ca"};

/* What stat() says of a file: a change in any of these makes the next check re-read it. */
struct fsig {
	int err; /* errno of a failed stat, else 0 */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct pair {
	char *pem[F_COUNT]; /* pem[F_CA] NULL without tls.client_ca */
};

struct tls;

/* One credentials object's view: gRPC's security connector made from it fetches its first
 * config (which must be NEW) and then asks again at every handshake. */
struct fetcher {
	struct tls *t;
	uint64_t gen; /* the generation this credentials object was last given (0: none) */
};

struct tls {
	char *path[F_COUNT]; /* path[F_CA] NULL without tls.client_ca */
	pthread_mutex_t mu;  /* guards everything below */
	struct pair cur;
	uint64_t gen;         /* of cur: 1, then +1 per reload */
	struct fetcher fetchers[TLS_MAX_CREDS]; /* one per tls_server_creds; [i].t NULL: free */
	uint64_t checked_ns;  /* errq_mono_ns() of the last stat() round */
	struct fsig loaded[F_COUNT];  /* the files as cur was read from them */
	struct fsig refused[F_COUNT]; /* the files as they were last refused ... */
	bool have_refused;            /* ... if they were: one log line per bad version */
	struct tls_stats stats;
};

static void pair_release(struct pair *p)
{
	for (int i = 0; i < F_COUNT; i++) {
		if (p->pem[i] && i == F_KEY) /* a secret does not linger in freed memory */
			explicit_bzero(p->pem[i], strlen(p->pem[i]));
		free(p->pem[i]);
		p->pem[i] = NULL;
	}
}

static void sig_of(const char *path, struct fsig *s)
{
	struct stat sb;
	memset(s, 0, sizeof(*s));
	if (!path)
		return;
	if (stat(path, &sb)) {
		s->err = errno;
		return;
	}
	s->dev = sb.st_dev;
	s->ino = sb.st_ino;
	s->size = sb.st_size;
	s->mtime = sb.st_mtim;
}

static bool sigs_equal(const struct fsig *a, const struct fsig *b)
{
	for (int i = 0; i < F_COUNT; i++)
		if (a[i].err != b[i].err || a[i].dev != b[i].dev || a[i].ino != b[i].ino || a[i].size != b[i].size ||
		    a[i].mtime.tv_sec != b[i].mtime.tv_sec || a[i].mtime.tv_nsec != b[i].mtime.tv_nsec)
			return false;
	return true;
}

/* The first certificate of a PEM text, or NULL. */
static X509 *first_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

/* An encrypted key must fail rather than prompt on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0;
}

/* "2027-12-06T22:55:17Z" for a certificate's notAfter, and the same in seconds since the
 * epoch (0 when OpenSSL cannot read it). */
static int64_t fmt_not_after(const X509 *x, char *buf, size_t n)
{
	struct tm tm;
	if (!ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm)) {
		errq_snprintf(buf, n, "?");
		return 0;
	}
	errq_snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		      tm.tm_hour, tm.tm_min, tm.tm_sec);
	return (int64_t)timegm(&tm);
}

/* Reads the files of t into p and checks that they make a usable pair: each a PEM of the
 * right kind, the key the certificate's.  0, or -1 with the reason naming setting and file.
 * subject and not_after describe the certificate (for the log). */
static int load(const struct tls *t, struct pair *p, char *subject, size_t subsz, char *not_after, size_t nasz,
		int64_t *not_after_unix, char *err, size_t errsz)
{
	int rc = -1;
	char why[600];
	X509 *x = NULL, *ca = NULL;
	EVP_PKEY *k = NULL;
	BIO *b = NULL;

	memset(p, 0, sizeof(*p));
	for (int i = 0; i < F_COUNT; i++)
		if (t->path[i] && errq_file_read(t->path[i], TLS_FILE_MAX, &p->pem[i], NULL, why, sizeof(why))) {
			errq_snprintf(err, errsz, "%s: %s", setting_name[i], why);
			goto out;
		}
	if (!(x = first_cert(p->pem[F_CERT]))) {
		errq_snprintf(err, errsz, "tls.cert '%s': no PEM certificate in it", t->path[F_CERT]);
		goto out;
	}
	if (!(b = BIO_new_mem_buf(p->pem[F_KEY], -1)) || !(k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL))) {
		errq_snprintf(err, errsz, "tls.key '%s': no PEM private key in it (an encrypted key is not supported)",
			      t->path[F_KEY]);
		goto out;
	}
	if (X509_check_private_key(x, k) != 1) {
		errq_snprintf(err, errsz, "tls.key '%s' is not the key of the certificate in tls.cert '%s'",
			      t->path[F_KEY], t->path[F_CERT]);
		goto out;
	}
	if (p->pem[F_CA] && !(ca = first_cert(p->pem[F_CA]))) {
		errq_snprintf(err, errsz, "tls.client_ca '%s': no PEM certificate in it", t->path[F_CA]);
		goto out;
	}
	X509_NAME_oneline(X509_get_subject_name(x), subject, (int)subsz);
	*not_after_unix = fmt_not_after(x, not_after, nasz);
	rc = 0;
out:
	ERR_clear_error(); /* OpenSSL's queue is per thread: leave nothing for gRPC's use of it */
	BIO_free(b);
	EVP_PKEY_free(k);
	X509_free(x);
	X509_free(ca);
	if (rc)
		pair_release(p);
	return rc;
}

/* Re-reads the files when they changed since the pair in force (or always, with force).
 * Called with t->mu held.  Returns 0 when the files' pair is in force, -1 when refused. */
static int check_locked(struct tls *t, bool force, const char *why)
{
	struct fsig now[F_COUNT];
	for (int i = 0; i < F_COUNT; i++)
		sig_of(t->path[i], &now[i]);
	if (!force && sigs_equal(now, t->loaded))
		return 0;
	if (!force && t->have_refused && sigs_equal(now, t->refused))
		return -1; /* logged when it was refused */
	struct pair p;
	char err[1024], subject[256] = "", not_after[32] = "", gen[24];
	int64_t na = 0;
	if (load(t, &p, subject, sizeof(subject), not_after, sizeof(not_after), &na, err, sizeof(err))) {
		memcpy(t->refused, now, sizeof(now));
		t->have_refused = true;
		t->stats.refused++;
		errq_logkv(ERRQ_LOG_ERROR, "tls: new certificate refused; the one in force stays", "reason", why, "error",
			   err, NULL);
		return -1;
	}
	pair_release(&t->cur);
	t->cur = p;
	t->gen++;
	t->stats.reloads++;
	t->stats.not_after_unix = na;
	memcpy(t->loaded, now, sizeof(now));
	t->have_refused = false;
	errq_snprintf(gen, sizeof(gen), "%llu", (unsigned long long)t->gen);
	errq_logkv(ERRQ_LOG_INFO, "tls: certificate loaded", "reason", why, "cert", t->path[F_CERT], "subject",
		   subject, "not_after", not_after, "generation", gen, NULL);
	return 0;
}

int tls_new(struct tls **out, const struct tls_opts *o, char *err, size_t errsz)
{
	const char *in[F_COUNT] = {o->cert, o->key, o->client_ca};
	bool set[F_COUNT];
	struct tls *t = NULL;
	int rc = -1;

	*out = NULL;
	for (int i = 0; i < F_COUNT; i++)
		set[i] = in[i] && in[i][0];
	if (!set[F_CERT] && !set[F_KEY] && !set[F_CA])
		return 0;
	if (!set[F_CERT] || !set[F_KEY]) {
		errq_snprintf(err, errsz, "%s",
			      set[F_CERT]  ? "tls.cert is set without tls.key: TLS needs both"
			      : set[F_KEY] ? "tls.key is set without tls.cert: TLS needs both"
					   : "tls.client_ca is set without tls.cert and tls.key: mutual TLS needs TLS");
		return -1;
	}
	if (!(t = calloc(1, sizeof(*t)))) {
		errq_snprintf(err, errsz, "out of memory");
		return -1;
	}
	pthread_mutex_init(&t->mu, NULL);
	for (int i = 0; i < F_COUNT; i++)
		if (set[i] && !(t->path[i] = strdup(in[i]))) {
			errq_snprintf(err, errsz, "out of memory");
			goto out;
		}
	char subject[256] = "", not_after[32] = "";
	for (int i = 0; i < F_COUNT; i++)
		sig_of(t->path[i], &t->loaded[i]);
	if (load(t, &t->cur, subject, sizeof(subject), not_after, sizeof(not_after), &t->stats.not_after_unix, err,
		 errsz))
		goto out;
	t->gen = 1;
	t->checked_ns = errq_mono_ns();
	errq_logkv(ERRQ_LOG_INFO, "tls: certificate loaded", "reason", "start", "cert", t->path[F_CERT], "subject",
		   subject, "not_after", not_after, "generation", "1", NULL);
	*out = t;
	t = NULL;
	rc = 0;
out:
	tls_free(t);
	return rc;
}

uint64_t tls_refresh(struct tls *t)
{
	pthread_mutex_lock(&t->mu);
	uint64_t now = errq_mono_ns();
	if (now - t->checked_ns >= (uint64_t)TLS_CHECK_MS * ERRQ_NS_PER_MS) {
		t->checked_ns = now;
		check_locked(t, false, "changed on disk");
	}
	uint64_t gen = t->gen;
	pthread_mutex_unlock(&t->mu);
	return gen;
}

int tls_reload(struct tls *t)
{
	pthread_mutex_lock(&t->mu);
	t->checked_ns = errq_mono_ns();
	int rc = check_locked(t, true, "SIGHUP");
	pthread_mutex_unlock(&t->mu);
	return rc;
}

int tls_copy_pair(struct tls *t, char **cert_pem, char **key_pem, uint64_t *gen)
{
	pthread_mutex_lock(&t->mu);
	*cert_pem = strdup(t->cur.pem[F_CERT]);
	*key_pem = strdup(t->cur.pem[F_KEY]);
	*gen = t->gen;
	pthread_mutex_unlock(&t->mu);
	if (*cert_pem && *key_pem)
		return 0;
	free(*cert_pem);
	if (*key_pem)
		explicit_bzero(*key_pem, strlen(*key_pem));
	free(*key_pem);
	*cert_pem = *key_pem = NULL;
	return -1;
}

void tls_get_stats(struct tls *t, struct tls_stats *st)
{
	pthread_mutex_lock(&t->mu);
	*st = t->stats;
	st->generation = t->gen;
	pthread_mutex_unlock(&t->mu);
}

bool tls_mutual(const struct tls *t)
{
	return t && t->path[F_CA];
}

/* gRPC's certificate-config fetcher: called once when the port is added (the security
 * connector must get a config then), then at the start of every handshake (on gRPC's
 * threads).  A new config only when the generation moved since this credentials object's
 * connector last got one: gRPC rebuilds its SSL context once per reload, not per handshake. */
static grpc_ssl_certificate_config_reload_status fetch(void *ud, grpc_ssl_server_certificate_config **config)
{
	struct fetcher *f = ud;
	struct tls *t = f->t;
	tls_refresh(t);
	pthread_mutex_lock(&t->mu);
	grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
	if (f->gen != t->gen) {
		grpc_ssl_pem_key_cert_pair kp = {t->cur.pem[F_KEY], t->cur.pem[F_CERT]};
		/* gRPC 1.51 asserts that a fetched config has client roots, even when no client
		 * certificate is asked for (ssl_security_connector.cc): without tls.client_ca the
		 * server's own chain stands in; it is then never used (no certificate is requested,
		 * OpenSSL verifies nothing).  The strings are copied. */
		*config = grpc_ssl_server_certificate_config_create(
		    t->cur.pem[F_CA] ? t->cur.pem[F_CA] : t->cur.pem[F_CERT], &kp, 1);
		if (*config) {
			f->gen = t->gen;
			st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
		} else {
			st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL; /* gRPC keeps the one it has */
		}
	}
	pthread_mutex_unlock(&t->mu);
	return st;
}

grpc_server_credentials *tls_server_creds(struct tls *t)
{
	if (!t)
		return grpc_insecure_server_credentials_create();
	/* gRPC gives the fetcher no destructor: its state lives in t, a few slots of it */
	struct fetcher *f = NULL;
	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < TLS_MAX_CREDS && !f; i++)
		if (!t->fetchers[i].t) {
			f = &t->fetchers[i];
			*f = (struct fetcher){.t = t, .gen = 0};
		}
	pthread_mutex_unlock(&t->mu);
	if (!f)
		return NULL;
	grpc_ssl_server_credentials_options *o = grpc_ssl_server_credentials_create_options_using_config_fetcher(
	    t->path[F_CA] ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
			  : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
	    fetch, f);
	return o ? grpc_ssl_server_credentials_create_with_options(o) : NULL; /* takes o over */
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	pair_release(&t->cur);
	for (int i = 0; i < F_COUNT; i++)
		free(t->path[i]);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
