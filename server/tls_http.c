/* tls_http.c: HTTPS certificates for libmicrohttpd, by generation (tls_http.h). */
#include "tls_http.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errq_log.h"
#include "errq_str.h"
#include "tls.h"
#include "errq_banned.h"

/* One generation of the pair, as GnuTLS objects. */
struct cert_gen {
	uint64_t gen;
	gnutls_pcert_st pcert[TLS_HTTP_MAX_CHAIN];
	unsigned npcert;
	gnutls_privkey_t key;
	uint64_t retired_at; /* connections with a serial below it may use this one */
	struct cert_gen *next;
};

struct tls_http {
	struct tls *tls;
	struct cert_gen *cur;
	struct cert_gen *retired; /* replaced, still possibly in use */
	uint64_t failed_gen;      /* a generation GnuTLS refused (logged once) */
	uint64_t next_serial;     /* of the next connection (from 1) */
	uint64_t *open;           /* serials of the open connections; 0: a free slot */
	unsigned max_conns;
	unsigned untracked;       /* open connections that found no slot: nothing is freed */
};

static _Atomic(struct tls_http *) the_http; /* GnuTLS's callback takes no user pointer */

static void gen_free(struct cert_gen *g)
{
	if (!g)
		return;
	for (unsigned i = 0; i < g->npcert; i++)
		gnutls_pcert_deinit(&g->pcert[i]);
	if (g->key)
		gnutls_privkey_deinit(g->key);
	free(g);
}

/* The pair in force as GnuTLS objects, or NULL with the reason in err. */
static struct cert_gen *gen_new(struct tls *t, char *err, size_t errsz)
{
	char *cert = NULL, *key = NULL;
	struct cert_gen *g = calloc(1, sizeof(*g));
	uint64_t gen = 0;
	int r;
	if (!g || tls_copy_pair(t, &cert, &key, &gen)) {
		errq_snprintf(err, errsz, "out of memory");
		goto fail;
	}
	g->gen = gen;
	gnutls_datum_t cd = {(unsigned char *)cert, (unsigned)strlen(cert)};
	unsigned n = TLS_HTTP_MAX_CHAIN;
	if ((r = gnutls_pcert_list_import_x509_raw(g->pcert, &n, &cd, GNUTLS_X509_FMT_PEM, 0)) < 0) {
		errq_snprintf(err, errsz, "HTTPS: tls.cert: %s (at most %d certificates)", gnutls_strerror(r),
			      TLS_HTTP_MAX_CHAIN);
		goto fail;
	}
	g->npcert = n;
	gnutls_datum_t kd = {(unsigned char *)key, (unsigned)strlen(key)};
	if ((r = gnutls_privkey_init(&g->key)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(g->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		errq_snprintf(err, errsz, "HTTPS: tls.key: %s", gnutls_strerror(r));
		goto fail;
	}
	explicit_bzero(key, strlen(key));
	free(key);
	free(cert);
	return g;
fail:
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	free(cert);
	gen_free(g);
	return NULL;
}

/* Frees the retired generations no open connection can use any more. */
static void reap(struct tls_http *h)
{
	if (h->untracked)
		return;
	uint64_t min_open = UINT64_MAX;
	for (unsigned i = 0; i < h->max_conns; i++)
		if (h->open[i] && h->open[i] < min_open)
			min_open = h->open[i];
	for (struct cert_gen **pp = &h->retired; *pp;) {
		struct cert_gen *g = *pp;
		if (g->retired_at <= min_open) {
			*pp = g->next;
			gen_free(g);
		} else {
			pp = &g->next;
		}
	}
}

/* GnuTLS asks for the server's certificate (every full handshake, on MHD's thread). */
static int retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca, int nreqs, const gnutls_pk_algorithm_t *pk,
		    int npk, gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	(void)s, (void)req_ca, (void)nreqs, (void)pk, (void)npk;
	struct tls_http *h = atomic_load(&the_http);
	if (!h || !h->cur)
		return -1;
	uint64_t gen = tls_refresh(h->tls);
	if (gen != h->cur->gen && gen != h->failed_gen) {
		char err[512];
		struct cert_gen *g = gen_new(h->tls, err, sizeof(err));
		if (g) {
			h->cur->retired_at = h->next_serial;
			h->cur->next = h->retired;
			h->retired = h->cur;
			h->cur = g;
		} else {
			h->failed_gen = gen;
			errq_logkv(ERRQ_LOG_ERROR, "tls: HTTPS keeps its previous certificate", "error", err, NULL);
		}
	}
	reap(h);
	*pcert = h->cur->pcert;
	*pcert_length = h->cur->npcert;
	*pkey = h->cur->key;
	return 0;
}

static void notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
	struct tls_http *h = cls;
	(void)c;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		uint64_t serial = h->next_serial++;
		*socket_context = NULL;
		for (unsigned i = 0; i < h->max_conns; i++)
			if (!h->open[i]) {
				h->open[i] = serial;
				*socket_context = &h->open[i];
				break;
			}
		if (!*socket_context)
			h->untracked++;
		return;
	}
	if (*socket_context)
		*(uint64_t *)*socket_context = 0;
	else if (h->untracked)
		h->untracked--;
	reap(h);
}

int tls_http_new(struct tls_http **out, struct tls *t, unsigned max_conns, char *err, size_t errsz)
{
	struct tls_http *h = NULL;
	*out = NULL;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
	    MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
		errq_snprintf(err, errsz, "HTTPS: this libmicrohttpd is built without TLS or certificate callbacks");
		return -1;
	}
	if (!(h = calloc(1, sizeof(*h))) || !(h->open = calloc(max_conns ? max_conns : 1, sizeof(*h->open)))) {
		errq_snprintf(err, errsz, "out of memory");
		goto fail;
	}
	h->tls = t;
	h->max_conns = max_conns;
	h->next_serial = 1;
	if (!(h->cur = gen_new(t, err, errsz)))
		goto fail;
	struct tls_http *none = NULL;
	if (!atomic_compare_exchange_strong(&the_http, &none, h)) {
		errq_snprintf(err, errsz, "HTTPS: a second HTTPS listener in one process");
		goto fail;
	}
	*out = h;
	return 0;
fail:
	if (h) {
		gen_free(h->cur);
		free(h->open);
	}
	free(h);
	return -1;
}

void tls_http_mhd_options(struct tls_http *h, struct MHD_OptionItem *opts)
{
	gnutls_certificate_retrieve_function2 *fn = retrieve;
	opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)fn};
	opts[1] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify, h};
}

void tls_http_free(struct tls_http *h)
{
	if (!h)
		return;
	struct tls_http *self = h;
	atomic_compare_exchange_strong(&the_http, &self, NULL);
	gen_free(h->cur);
	while (h->retired) {
		struct cert_gen *g = h->retired;
		h->retired = g->next;
		gen_free(g);
	}
	free(h->open);
	free(h);
}
