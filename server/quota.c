/* quota.c: token buckets per service and for the collector (quota.h says what and why).
 *
 * Threads and locks: q->mu guards every bucket and counter; it is held for one quota_take
 * (a hash of the service name, at most QUOTA_PROBE + QUOTA_MAX_OVERRIDES comparisons and a
 * few multiplications) and never around anything else. */
#include "quota.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "errq_hash.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define NANO 1000000000ULL
#define QUOTA_MAX_BURST 1000000000ULL /* tokens: keeps burst * NANO in 64 bits */

struct bucket {
	uint64_t rate;   /* tokens per second; 0 = off (always room) */
	uint64_t cap;    /* burst * NANO */
	uint64_t tokens; /* nano-tokens at last_ns */
	uint64_t last_ns;
};

struct slot {
	uint64_t hash;
	bool used;
	struct bucket b;
	char name[QUOTA_SERVICE_MAX + 1];
};

struct override {
	uint64_t hash;
	struct bucket b;
	char name[QUOTA_SERVICE_MAX + 1];
};

struct quota {
	pthread_mutex_t mu;
	struct bucket global;
	struct bucket shared; /* services that found no slot */
	uint64_t service_rate, service_burst;
	struct slot *slots; /* n_slots; NULL when the per-service buckets are off */
	size_t n_slots;
	struct override ov[QUOTA_MAX_OVERRIDES];
	size_t n_ov;
	struct quota_stats st;
};

static void bucket_init(struct bucket *b, uint64_t rate, uint64_t burst, uint64_t now)
{
	b->rate = rate;
	b->cap = (burst ? burst : rate) * NANO;
	b->tokens = b->cap; /* a new bucket starts full: a service's first burst passes */
	b->last_ns = now;
}

/* Tokens at now (not stored). */
static uint64_t bucket_level(const struct bucket *b, uint64_t now)
{
	if (now <= b->last_ns)
		return b->tokens;
	uint64_t need = b->cap - b->tokens, dt = now - b->last_ns;
	/* dt * rate could pass 2^64 only when the bucket is long full: compare by division */
	if (dt >= need / b->rate + 1)
		return b->cap;
	uint64_t add = dt * b->rate;
	return add >= need ? b->cap : b->tokens + add;
}

static bool bucket_has(struct bucket *b, uint64_t now)
{
	if (!b->rate)
		return true;
	b->tokens = bucket_level(b, now);
	if (now > b->last_ns)
		b->last_ns = now;
	return b->tokens >= NANO;
}

static void bucket_take(struct bucket *b)
{
	if (b->rate)
		b->tokens -= NANO;
}

static uint64_t name_hash(const char *s, size_t n)
{
	return errq_fnv64(ERRQ_FNV64_INIT, s, n);
}

/* Parses "svc=RATE[/BURST]" entries separated by commas (spaces around them allowed). */
static int parse_overrides(struct quota *q, const char *text, uint64_t now, char *err, size_t errsz)
{
	const char *p = text;
	while (p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && p[len - 1] == ' ')
			len--;
		const char *eq = memchr(p, '=', len);
		if (!eq || eq == p) {
			errq_snprintf(err, errsz, "quota.service_overrides: '%.*s' is not SERVICE=RATE[/BURST]", (int)len, p);
			return -1;
		}
		size_t nlen = (size_t)(eq - p);
		if (nlen > QUOTA_SERVICE_MAX) {
			errq_snprintf(err, errsz, "quota.service_overrides: service '%.40s...' is longer than %d bytes", p,
				      QUOTA_SERVICE_MAX);
			return -1;
		}
		if (q->n_ov >= QUOTA_MAX_OVERRIDES) {
			errq_snprintf(err, errsz, "quota.service_overrides: more than %d services", QUOTA_MAX_OVERRIDES);
			return -1;
		}
		char num[48];
		size_t vlen = len - nlen - 1;
		if (vlen == 0 || vlen >= sizeof(num)) {
			errq_snprintf(err, errsz, "quota.service_overrides: '%.*s' has no valid RATE[/BURST]", (int)len, p);
			return -1;
		}
		memcpy(num, eq + 1, vlen);
		num[vlen] = '\0';
		char *e1, *e2 = NULL;
		errno = 0;
		unsigned long long rate = strtoull(num, &e1, 10), burst = 0;
		if (*e1 == '/') {
			burst = strtoull(e1 + 1, &e2, 10);
			if (e2 == e1 + 1)
				e2 = NULL;
		}
		bool ok = !errno && e1 != num && isdigit((unsigned char)num[0]) &&
			  (*e1 == '\0' || (*e1 == '/' && e2 && *e2 == '\0' && isdigit((unsigned char)e1[1])));
		if (!ok || rate > QUOTA_MAX_RATE || burst > QUOTA_MAX_BURST) {
			errq_snprintf(err, errsz,
				      "quota.service_overrides: '%.*s': RATE must be 0-%d events/s and BURST 0-%llu", (int)len,
				      p, QUOTA_MAX_RATE, (unsigned long long)QUOTA_MAX_BURST);
			return -1;
		}
		for (size_t i = 0; i < q->n_ov; i++)
			if (strlen(q->ov[i].name) == nlen && memcmp(q->ov[i].name, p, nlen) == 0) {
				errq_snprintf(err, errsz, "quota.service_overrides: service '%.*s' given twice", (int)nlen, p);
				return -1;
			}
		struct override *o = &q->ov[q->n_ov++];
		memcpy(o->name, p, nlen);
		o->name[nlen] = '\0';
		o->hash = name_hash(o->name, nlen);
		bucket_init(&o->b, rate, burst, now);
		p = end;
	}
	return 0;
}

int quota_new(struct quota **out, const struct quota_opts *o, char *err, size_t errsz)
{
	*out = NULL;
	if (o->rate > QUOTA_MAX_RATE || o->service_rate > QUOTA_MAX_RATE || o->burst > QUOTA_MAX_BURST ||
	    o->service_burst > QUOTA_MAX_BURST) {
		errq_snprintf(err, errsz, "quota: rates must be at most %d events/s and bursts at most %llu",
			      QUOTA_MAX_RATE, (unsigned long long)QUOTA_MAX_BURST);
		return -1;
	}
	bool has_ov = o->overrides && o->overrides[strspn(o->overrides, " ,")];
	if (!o->rate && !o->service_rate && !has_ov)
		return 0; /* all off: no quota object, no cost */
	struct quota *q = calloc(1, sizeof(*q));
	if (!q) {
		errq_snprintf(err, errsz, "quota: out of memory");
		return -1;
	}
	uint64_t now = 0; /* full buckets: any later now finds them full (the clock is the caller's) */
	bucket_init(&q->global, o->rate, o->burst, now);
	bucket_init(&q->shared, o->service_rate, o->service_burst, now);
	q->service_rate = o->service_rate;
	q->service_burst = o->service_burst;
	if (has_ov && parse_overrides(q, o->overrides, now, err, errsz)) {
		free(q);
		return -1;
	}
	q->n_slots = o->max_services && o->max_services < QUOTA_MAX_SERVICES ? o->max_services : QUOTA_MAX_SERVICES;
	if (o->service_rate && !(q->slots = calloc(q->n_slots, sizeof(*q->slots)))) {
		free(q);
		errq_snprintf(err, errsz, "quota: out of memory");
		return -1;
	}
	pthread_mutex_init(&q->mu, NULL);
	*out = q;
	return 0;
}

void quota_free(struct quota *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->mu);
	free(q->slots);
	free(q);
}

/* Under q->mu: the bucket of service (its override, its slot, a new slot, or the shared
 * one), or NULL when the per-service buckets are off and it has no override. */
static struct bucket *service_bucket(struct quota *q, const char *service, uint64_t now)
{
	size_t n = strnlen(service, QUOTA_SERVICE_MAX);
	uint64_t h = name_hash(service, n);
	for (size_t i = 0; i < q->n_ov; i++)
		if (q->ov[i].hash == h && strncmp(q->ov[i].name, service, n) == 0 && q->ov[i].name[n] == '\0')
			return &q->ov[i].b;
	if (!q->slots)
		return NULL;
	struct slot *free_slot = NULL, *idle_slot = NULL;
	for (size_t k = 0; k < QUOTA_PROBE && k < q->n_slots; k++) {
		struct slot *s = &q->slots[(h + k) % q->n_slots];
		if (!s->used) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (s->hash == h && strncmp(s->name, service, n) == 0 && s->name[n] == '\0')
			return &s->b;
		if (!idle_slot && bucket_level(&s->b, now) == s->b.cap)
			idle_slot = s;
	}
	struct slot *s = free_slot ? free_slot : idle_slot;
	if (!s) {
		q->st.shared_events++;
		return &q->shared;
	}
	if (!s->used)
		q->st.services++;
	s->used = true;
	s->hash = h;
	memcpy(s->name, service, n);
	s->name[n] = '\0';
	bucket_init(&s->b, q->service_rate, q->service_burst, now);
	return &s->b;
}

bool quota_take(struct quota *q, const char *service, uint64_t now_ns, char reason[QUOTA_REASON_MAX])
{
	if (!q)
		return true;
	pthread_mutex_lock(&q->mu);
	struct bucket *sb = service_bucket(q, service ? service : "", now_ns);
	bool ok = true;
	if (sb && !bucket_has(sb, now_ns)) {
		q->st.rejected_service++;
		errq_snprintf(reason, QUOTA_REASON_MAX, "quota_exceeded: service '%.80s' over %" PRIu64 " events/s",
			      service, sb->rate);
		ok = false;
	} else if (!bucket_has(&q->global, now_ns)) {
		q->st.rejected_global++;
		errq_snprintf(reason, QUOTA_REASON_MAX, "quota_exceeded: collector over %" PRIu64 " events/s",
			      q->global.rate);
		ok = false;
	} else {
		if (sb)
			bucket_take(sb);
		bucket_take(&q->global);
	}
	pthread_mutex_unlock(&q->mu);
	return ok;
}

void quota_get_stats(struct quota *q, struct quota_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	*st = q->st;
	pthread_mutex_unlock(&q->mu);
}
