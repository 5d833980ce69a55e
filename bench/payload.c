/* payload.c: the events errq-bench sends, written as protobuf wire bytes by hand.
 *
 * A ReportRequest is `seq` (field 1, varint) followed by `failures` (field 2, one
 * length-delimited TaskFailure each).  Protobuf accepts fields in any order, so each event is
 * laid out as  prefix(group) + tail:
 *
 *   prefix: 0x12 len | 0x0a 0x10 <16-byte event_id> | 0x11 <fixed64 time> | service | error_type
 *   tail:   environment, release, host, task, error_code, message (padded), 2 frames,
 *           2 details, attempt
 *
 * Building a batch is then two memcpy per event plus the id and the time written at known
 * offsets: the generator costs well under a microsecond per event, so it does not steal the
 * CPU it is measuring.  Groups are distinct (service, error_type) pairs; group ranks follow a
 * Zipf(s) law, sampled by binary search in a precomputed CDF.
 *
 * The storm (payload_init_storm) is one service, one error_type, no frames, and a message that
 * starts with BENCH_STORM_WORDS_LEN bytes of made-up lowercase words, different for every event:
 * errqd groups a frameless event by its normalized message, and no normalizer can collapse
 * words (no digits, no hex: every syllable starts with a consonant past 'f'), so each event
 * is a new fingerprint, as when a service raises a message that embeds a value errqd cannot
 * recognize.  The words are the 64 bits of a bijective mix of (seed, thread, counter): two
 * events of one run never share them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "errq_pb.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

#define PL_SERVICES 16           /* group g reports as service g % PL_SERVICES */
#define PL_GROUP_STR_MAX 64      /* "bench-svc-NN", "BenchErrorNNNNNNN" */
#define PL_PREFIX_MAX 160        /* 1 + 3 + 18 + 9 + 2 * (2 + PL_GROUP_STR_MAX) */
#define PL_SUBMSG_MAX 256        /* one Frame or details entry */
#define PL_PROBE_MAX 1024        /* the tail with an empty message */
#define PL_STORM_SERVICE "bench-storm"
#define PL_STORM_TYPE "StormError"
#define PL_STORM_HEAD "storm: cannot reconcile "  /* the words follow at once */

/* The wire writer is common/errq_pb.h's: an overflow is remembered and makes the whole
 * encoding fail. */
static void w_cstr(struct errq_pb_buf *w, unsigned field, const char *s)
{
	errq_pb_w_len(w, field, s, strlen(s));
}

/* A Frame submessage (field 11 of TaskFailure). */
static void w_frame(struct errq_pb_buf *w, const char *fn, const char *file, uint32_t line, const char *module)
{
	uint8_t tmp[PL_SUBMSG_MAX];
	struct errq_pb_buf f = errq_pb_buf_init(tmp, sizeof(tmp));
	w_cstr(&f, 1, fn);
	w_cstr(&f, 2, file);
	errq_pb_w_uint(&f, 3, line);
	w_cstr(&f, 4, module);
	errq_pb_w_uint(&f, 5, 1); /* in_app */
	if (f.overflow) {
		w->overflow = true;
		return;
	}
	errq_pb_w_len(w, 11, tmp, f.len);
}

/* A map<string,string> entry (field 12 of TaskFailure). */
static void w_detail(struct errq_pb_buf *w, const char *k, const char *v)
{
	uint8_t tmp[PL_SUBMSG_MAX];
	struct errq_pb_buf f = errq_pb_buf_init(tmp, sizeof(tmp));
	w_cstr(&f, 1, k);
	w_cstr(&f, 2, v);
	if (f.overflow) {
		w->overflow = true;
		return;
	}
	errq_pb_w_len(w, 12, tmp, f.len);
}

/* The tail with a message of msg_len bytes; a storm tail has no frames and its message starts
 * with PL_STORM_HEAD and room for the words (*words_off: their offset in the tail). */
static int build_tail(struct errq_pb_buf *w, size_t msg_len, bool storm, size_t *words_off)
{
	static const char norm_head[] = "bench: simulated task failure, padding follows: ";
	static const char storm_head[] = PL_STORM_HEAD "......................... with its ledger, padding: ";
	static const char pad[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	const char *head = storm ? storm_head : norm_head;
	size_t head_len = storm ? sizeof(storm_head) - 1 : sizeof(norm_head) - 1;
	w_cstr(w, 4, "prod");
	w_cstr(w, 5, "bench-1.0.0");
	w_cstr(w, 6, "bench-host-01");
	w_cstr(w, 7, "process_order");
	w_cstr(w, 9, "E_BENCH");
	errq_pb_w_tag(w, 10, ERRQ_PB_LEN);
	errq_pb_w_varint(w, msg_len);
	if (words_off)
		*words_off = w->len + sizeof(PL_STORM_HEAD) - 1;
	for (size_t i = 0; i < msg_len; i++) {
		uint8_t c = i < head_len ? (uint8_t)head[i] : (uint8_t)pad[i % (sizeof(pad) - 1)];
		errq_pb_w_bytes(w, &c, 1);
	}
	if (!storm) {
		w_frame(w, "main", "app/main.c", 7, "main");
		w_frame(w, "handle_order", "app/worker.c", 42, "worker");
	}
	w_detail(w, "region", "eu-west-1");
	w_detail(w, "order_id", "0123456789abcdef");
	errq_pb_w_uint(w, 14, 1); /* attempt */
	return w->overflow ? -1 : 0;
}

static void group_strings(const struct payload *pl, uint32_t g, char *svc, char *type)
{
	if (pl->storm) {
		errq_snprintf(svc, PL_GROUP_STR_MAX, "%s", PL_STORM_SERVICE);
		errq_snprintf(type, PL_GROUP_STR_MAX, "%s", PL_STORM_TYPE);
		return;
	}
	errq_snprintf(svc, PL_GROUP_STR_MAX, "bench-svc-%02u", g % PL_SERVICES);
	errq_snprintf(type, PL_GROUP_STR_MAX, "BenchError%07u", g);
}

/* The TaskFailure body of a group without the tail: id, time, service, error_type. */
static size_t group_body_len(const char *svc, const char *type)
{
	size_t s = strlen(svc), t = strlen(type);
	return 18 + 9 + 1 + errq_pb_varint_size(s) + s + 1 + errq_pb_varint_size(t) + t;
}

static int build_cdf(struct payload *pl)
{
	pl->cdf = malloc(sizeof(double) * pl->groups);
	if (!pl->cdf)
		return -1;
	double sum = 0;
	for (uint32_t i = 0; i < pl->groups; i++) {
		sum += pl->zipf == 0 ? 1.0 : pow((double)(i + 1), -pl->zipf);
		pl->cdf[i] = sum;
	}
	for (uint32_t i = 0; i < pl->groups; i++)
		pl->cdf[i] /= sum;
	pl->cdf[pl->groups - 1] = 1.0; /* no rounding gap at the top */
	return 0;
}

static int init(struct payload *pl, uint32_t groups, double zipf, int event_size, bool storm, char *err,
		size_t errsz)
{
	char svc[PL_GROUP_STR_MAX], type[PL_GROUP_STR_MAX];
	size_t words_off = 0;
	memset(pl, 0, sizeof(*pl));
	pl->groups = groups;
	pl->zipf = zipf;
	pl->storm = storm;
	if (groups < 1 || groups > BENCH_MAX_GROUPS || event_size < 1 || event_size > BENCH_MAX_EVENT_SIZE ||
	    !(zipf >= 0) || zipf > 100) {
		errq_snprintf(err, errsz, "payload parameters out of range");
		return -1;
	}
	/* size the message so that group 0's TaskFailure is event_size bytes (or the smallest
	 * event that has every field, when event_size is below it) */
	group_strings(pl, 0, svc, type);
	size_t fixed = group_body_len(svc, type);
	uint8_t probe[PL_PROBE_MAX];
	struct errq_pb_buf w = errq_pb_buf_init(probe, sizeof(probe));
	if (build_tail(&w, 0, storm, NULL)) {
		errq_snprintf(err, errsz, "internal: tail too large");
		return -1;
	}
	size_t base = fixed + w.len - 1; /* minus the varint of an empty message */
	size_t min_msg = storm ? sizeof(PL_STORM_HEAD) - 1 + BENCH_STORM_WORDS_LEN : 16; /* the shortest we send */
	size_t msg = min_msg;
	if ((size_t)event_size > base + 1 + msg) {
		msg = (size_t)event_size - base - 1;
		while (msg > min_msg && base + errq_pb_varint_size(msg) + msg > (size_t)event_size)
			msg--;
	}
	pl->tail = malloc(BENCH_MAX_EVENT_SIZE + 64);
	if (!pl->tail)
		goto oom;
	w = errq_pb_buf_init(pl->tail, BENCH_MAX_EVENT_SIZE + 64);
	if (build_tail(&w, msg, storm, &words_off)) {
		errq_snprintf(err, errsz, "--event-size %d: too large", event_size);
		goto fail;
	}
	pl->tail_len = w.len;
	pl->storm_off = storm ? words_off : 0;
	pl->event_len = fixed + pl->tail_len;

	pl->g_off = malloc(sizeof(*pl->g_off) * groups);
	pl->g_len = malloc(sizeof(*pl->g_len) * groups);
	pl->g_idoff = malloc(sizeof(*pl->g_idoff) * groups);
	pl->arena = malloc((size_t)groups * PL_PREFIX_MAX);
	if (!pl->g_off || !pl->g_len || !pl->g_idoff || !pl->arena || build_cdf(pl))
		goto oom;
	size_t off = 0;
	for (uint32_t g = 0; g < groups; g++) {
		group_strings(pl, g, svc, type);
		size_t body = group_body_len(svc, type) + pl->tail_len;
		struct errq_pb_buf p = errq_pb_buf_init(pl->arena + off, PL_PREFIX_MAX);
		static const uint8_t zero[ERRQ_ID_LEN];
		errq_pb_w_tag(&p, 2, ERRQ_PB_LEN);
		errq_pb_w_varint(&p, body);
		size_t idoff = p.len + 2;
		errq_pb_w_len(&p, 1, zero, ERRQ_ID_LEN);
		errq_pb_w_tag(&p, 2, ERRQ_PB_FIXED64);
		errq_pb_w_bytes(&p, zero, 8);
		w_cstr(&p, 3, svc);
		w_cstr(&p, 8, type);
		if (p.overflow) {
			errq_snprintf(err, errsz, "internal: group prefix too large");
			goto fail;
		}
		pl->g_off[g] = (uint32_t)off;
		pl->g_len[g] = (uint16_t)p.len;
		pl->g_idoff[g] = (uint8_t)idoff;
		if (p.len + pl->tail_len > pl->max_wire_len)
			pl->max_wire_len = p.len + pl->tail_len;
		off += p.len;
	}
	return 0;
oom:
	errq_snprintf(err, errsz, "out of memory building %u groups", groups);
fail:
	payload_free(pl);
	return -1;
}

int payload_init(struct payload *pl, uint32_t groups, double zipf, int event_size, char *err, size_t errsz)
{
	return init(pl, groups, zipf, event_size, false, err, errsz);
}

int payload_init_storm(struct payload *pl, int event_size, char *err, size_t errsz)
{
	return init(pl, 1, 0, event_size, true, err, errsz);
}

void payload_free(struct payload *pl)
{
	free(pl->cdf);
	free(pl->arena);
	free(pl->g_off);
	free(pl->g_len);
	free(pl->g_idoff);
	free(pl->tail);
	memset(pl, 0, sizeof(*pl));
}

/* splitmix64's finalizer, a bijection of 64-bit values (xor-shifts and odd multipliers are
 * each invertible): distinct storm counters give distinct words. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t splitmix(uint64_t *x)
{
	return mix64(*x += 0x9e3779b97f4a7c15ULL);
}

void gen_init(struct gen *g, uint64_t seed, int stream_of_seeds, int id_kind)
{
	uint64_t x = seed ^ ((uint64_t)(stream_of_seeds + 1) * 0xd1342543de82ef95ULL);
	memset(&g->pick, 0, sizeof(g->pick));
	for (int i = 0; i < 4; i++)
		g->pick.s[i] = splitmix(&x);
	errq_idgen_init(&g->ids);
	g->id_kind = id_kind;
	/* storm values: thread in the top bits, a counter below; the seed moves the whole set */
	g->storm_next = (uint64_t)(unsigned)stream_of_seeds << 40;
	x = seed;
	g->storm_key = splitmix(&x);
}

void payload_storm_words(uint64_t v, char out[BENCH_STORM_WORDS_LEN])
{
	static const char cons[] = "ghjklmnprstvwxyz"; /* 16, none of them a hex digit */
	static const char vow[] = "aiou";
	static const int per_word[] = {3, 3, 3, 2};
	size_t o = 0;
	for (size_t w = 0; w < sizeof(per_word) / sizeof(per_word[0]); w++) {
		if (w)
			out[o++] = ' ';
		for (int i = 0; i < per_word[w]; i++, v >>= 6) {
			out[o++] = cons[v & 15];
			out[o++] = vow[(v >> 4) & 3];
		}
	}
}

uint32_t payload_pick(const struct payload *pl, struct gen *g)
{
	double u = (double)(errq_idgen_rand(&g->pick) >> 11) * 0x1.0p-53;
	uint32_t lo = 0, hi = pl->groups - 1;
	while (lo < hi) { /* the first rank whose cumulative probability exceeds u */
		uint32_t mid = lo + (hi - lo) / 2;
		if (pl->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

size_t payload_batch_max(const struct payload *pl, int n)
{
	return 11 + (size_t)n * pl->max_wire_len;
}

grpc_slice payload_batch(const struct payload *pl, struct gen *g, uint64_t seq, int n, uint64_t now_ns)
{
	size_t total = 1 + errq_pb_varint_size(seq);
	uint32_t *picks = g->scratch;
	if (n > BENCH_MAX_BATCH)
		n = BENCH_MAX_BATCH;
	for (int i = 0; i < n; i++) {
		picks[i] = payload_pick(pl, g);
		total += pl->g_len[picks[i]] + pl->tail_len;
	}
	grpc_slice s = grpc_slice_malloc(total);
	uint8_t *p = GRPC_SLICE_START_PTR(s);
	p = errq_pb_put_varint(p, ERRQ_PB_TAG(1, ERRQ_PB_VARINT));
	p = errq_pb_put_varint(p, seq);
	uint64_t now_ms = now_ns / ERRQ_NS_PER_MS;
	uint8_t t[8];
	for (int i = 0; i < 8; i++)
		t[i] = (uint8_t)(now_ns >> (8 * i)); /* fixed64 is little-endian */
	for (int i = 0; i < n; i++) {
		uint32_t gr = picks[i];
		size_t plen = pl->g_len[gr], idoff = pl->g_idoff[gr];
		memcpy(p, pl->arena + pl->g_off[gr], plen);
		if (g->id_kind == BENCH_IDS_ORDERED) {
			errq_idgen_next(&g->ids, now_ms, p + idoff);
		} else {
			uint64_t a = errq_idgen_rand(&g->ids), b = errq_idgen_rand(&g->ids);
			memcpy(p + idoff, &a, 8);
			memcpy(p + idoff + 8, &b, 8);
		}
		memcpy(p + idoff + 17, t, 8);
		memcpy(p + plen, pl->tail, pl->tail_len);
		if (pl->storm)
			payload_storm_words(mix64(g->storm_next++ ^ g->storm_key), (char *)p + plen + pl->storm_off);
		p += plen + pl->tail_len;
	}
	return s;
}
