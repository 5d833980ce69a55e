/* errq_event.c: the event builder, its size accounting, and batch encoding.
 *
 * The builder keeps ev->body, the exact protobuf size of everything set so far, up to date
 * in every setter, so that errq_report() learns an event's size in O(1) and the sender can
 * cut batches by bytes without encoding first.  The unit tests check that the accounting
 * matches what protobuf-c packs, byte for byte.
 *
 * errq_report() encodes the event at once, on the reporting thread (where its strings are
 * still in cache, and outside the client's lock), into one allocation (struct errq_qev),
 * and frees the builder: the queue and the background thread only ever hold encoded
 * events, which a batch is the concatenation of. */
#include "client_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "errq/v1/collector.pb-c.h"
#include "errq_str.h"
#include "errq_banned.h"

#define TAG_LEN 1 /* every field number of TaskFailure, Frame and DetailsEntry is < 16 */

/* A proto3 string field: omitted when empty. */
size_t errq__str_field_size(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n ? TAG_LEN + errq_pb_varint_size(n) + n : 0;
}

/* What malloc(n) takes from the heap: glibc's chunk (n plus a size word, 16-byte aligned,
 * at least 32 bytes) on 64-bit systems; a close enough estimate elsewhere. */
static size_t chunk(size_t n)
{
	size_t c = (n + sizeof(size_t) + 15) & ~(size_t)15;
	return c < 32 ? 32 : c;
}

/* An element of a repeated message field: always present, even when empty. */
static size_t msg_field(size_t body)
{
	return TAG_LEN + errq_pb_varint_size(body) + body;
}

static size_t detail_size(const struct errq_detail *d)
{
	return msg_field(errq__str_field_size(d->key) + errq__str_field_size(d->value));
}

/* A frame's message body: what frame_size counts and the packer writes after its length. */
static size_t frame_body(const struct errq_frame *f)
{
	size_t b = errq__str_field_size(f->function) + errq__str_field_size(f->file) +
		   errq__str_field_size(f->module);
	if (f->line)
		b += TAG_LEN + errq_pb_varint_size(f->line);
	if (f->in_app)
		b += TAG_LEN + 1;
	return b;
}

static size_t frame_size(const struct errq_frame *f)
{
	return msg_field(frame_body(f));
}

/* True when s[0..n) is plain ASCII (the common case: no UTF-8 to check). */
static bool is_ascii(const char *s, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		if (w & 0x8080808080808080ull)
			return false;
	}
	for (; i < n; i++)
		if ((unsigned char)s[i] & 0x80)
			return false;
	return true;
}

/* The text of s[0..n) as stored: at most max bytes of valid UTF-8, invalid bytes replaced by
 * U+FFFD, cut at a character boundary; written to dst (room for cap + 1 bytes, cap <= max),
 * NUL-terminated.  Returns its length; *cut is set when something was cut. */
static size_t text_core(const char *s, size_t n, size_t max, char *dst, size_t cap, bool *cut)
{
	static const char repl[] = "\xEF\xBF\xBD";
	size_t o = 0, i = 0;
	while (i < n) {
		size_t bad = n - i, run;
		if (!errq_utf8_valid(s + i, n - i, &bad))
			run = bad;
		else
			run = n - i;
		if (run > cap - o) {
			run = errq_utf8_trunc_len(s + i, run, cap - o);
			memcpy(dst + o, s + i, run);
			o += run;
			i += run;
			break;
		}
		memcpy(dst + o, s + i, run);
		o += run;
		i += run;
		if (i >= n)
			break;
		if (cap - o < sizeof(repl) - 1)
			break;
		memcpy(dst + o, repl, sizeof(repl) - 1);
		o += sizeof(repl) - 1;
		i++;
	}
	dst[o] = '\0';
	if (i < n || n > max)
		*cut = true;
	return o;
}

/* Like errq__copy_text, into dst (room for max + 1 bytes).  Returns the length (0: unset). */
static size_t text_into(const char *s, size_t max, char *dst, bool *cut)
{
	if (!s || !*s) {
		dst[0] = '\0';
		return 0;
	}
	size_t n = strnlen(s, max + 1);
	if (n <= max && is_ascii(s, n)) {
		memcpy(dst, s, n + 1);
		return n;
	}
	return text_core(s, n, max, dst, max, cut);
}

/* See client_int.h.  Reads at most max + 1 bytes of s: the caller's string may be huge,
 * this stays bounded. */
int errq__copy_text(const char *s, size_t max, char **out, bool *cut)
{
	char *p;
	size_t n, cap, o;

	*out = NULL;
	if (!s || !*s)
		return ERRQ_OK;
	n = strnlen(s, max + 1);
	if (n <= max && is_ascii(s, n)) { /* the common case: one allocation, one copy */
		if (!(p = malloc(n + 1)))
			return ERRQ_ENOMEM;
		memcpy(p, s, n + 1);
		*out = p;
		return ERRQ_OK;
	}
	/* valid: cut at a character boundary; invalid: every output byte stands for at least
	 * one input byte, so n input bytes need at most 3n output bytes, and never over max */
	if (errq_utf8_valid(s, n, NULL))
		cap = errq_utf8_trunc_len(s, n, max);
	else
		cap = n <= max / 3 ? 3 * n : max;
	if (!(p = malloc(cap + 1)))
		return ERRQ_ENOMEM;
	o = text_core(s, n, max, p, cap, cut);
	if (o == 0) { /* everything was cut: treat as unset */
		free(p);
		return ERRQ_OK;
	}
	if (o + 1 < cap / 2) { /* repaired and much shorter: give the rest back */
		char *q = realloc(p, o + 1);
		if (q)
			p = q;
	}
	*out = p;
	return ERRQ_OK;
}

/* Replaces a string field of ev, keeping ev->body exact. */
static int set_field(errq_event_t *ev, char **slot, const char *s, size_t max)
{
	char *copy;
	bool cut = false;
	if (!ev)
		return ERRQ_EINVAL;
	int rc = errq__copy_text(s, max, &copy, &cut);
	if (rc)
		return rc;
	ev->body -= errq__str_field_size(*slot);
	free(*slot);
	*slot = copy;
	ev->body += errq__str_field_size(copy);
	if (cut)
		ev->truncated = true;
	return ERRQ_OK;
}

ERRQ_EXPORT errq_event_t *errq_event_new(const char *service, const char *error_type,
					 const char *message)
{
	errq_event_t *ev = NULL;
	if (!error_type || !*error_type)
		goto fail;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		goto fail;
	if (set_field(ev, &ev->error_type, error_type, ERRQ__MAX_ERROR_TYPE_LEN) ||
	    set_field(ev, &ev->service, service, ERRQ__MAX_SERVICE_LEN) ||
	    set_field(ev, &ev->message, message, ERRQ__MAX_MESSAGE_LEN))
		goto fail;
	if (!ev->error_type) /* cannot happen for a non-empty string, but the field is required */
		goto fail;
	return ev;
fail:
	errq_event_free(ev);
	return NULL;
}

ERRQ_EXPORT void errq_event_free(errq_event_t *ev)
{
	if (!ev)
		return;
	free(ev->service);
	free(ev->environment);
	free(ev->task);
	free(ev->error_type);
	free(ev->error_code);
	free(ev->message);
	free(ev->fingerprint);
	for (uint32_t i = 0; i < ev->n_details; i++) {
		free(ev->details[i].key); /* the value shares its allocation */
	}
	free(ev->details);
	for (uint32_t i = 0; i < ev->n_frames; i++) {
		free(ev->frames[i].mem);
	}
	free(ev->frames);
	free(ev);
}

ERRQ_EXPORT int errq_event_set_code(errq_event_t *ev, const char *code)
{
	return set_field(ev, ev ? &ev->error_code : NULL, code, ERRQ__MAX_ERROR_CODE_LEN);
}

ERRQ_EXPORT int errq_event_set_task(errq_event_t *ev, const char *task)
{
	return set_field(ev, ev ? &ev->task : NULL, task, ERRQ__MAX_TASK_LEN);
}

ERRQ_EXPORT int errq_event_set_environment(errq_event_t *ev, const char *environment)
{
	return set_field(ev, ev ? &ev->environment : NULL, environment, ERRQ__MAX_ENVIRONMENT_LEN);
}

ERRQ_EXPORT int errq_event_set_fingerprint(errq_event_t *ev, const char *fingerprint)
{
	return set_field(ev, ev ? &ev->fingerprint : NULL, fingerprint, ERRQ__MAX_FINGERPRINT_LEN);
}

ERRQ_EXPORT int errq_event_set_attempt(errq_event_t *ev, uint32_t attempt)
{
	if (!ev)
		return ERRQ_EINVAL;
	ev->attempt = attempt;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_event_set_handled(errq_event_t *ev, bool handled)
{
	if (!ev)
		return ERRQ_EINVAL;
	ev->handled = handled;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_event_set_time_ns(errq_event_t *ev, uint64_t unix_ns)
{
	if (!ev)
		return ERRQ_EINVAL;
	ev->time_ns = unix_ns;
	return ERRQ_OK;
}

/* Grows an array of items of size sz to hold one more, up to limit items. */
static int grow(void **arr, uint32_t *cap, uint32_t n, size_t sz, uint32_t limit)
{
	if (n < *cap)
		return ERRQ_OK;
	uint32_t ncap = *cap ? *cap * 2 : 4;
	if (ncap > limit)
		ncap = limit;
	void *p = realloc(*arr, (size_t)ncap * sz);
	if (!p)
		return ERRQ_ENOMEM;
	*arr = p;
	*cap = ncap;
	return ERRQ_OK;
}

/* A detail's key and value in one allocation: "key\0value\0" (value NULL when empty). */
static int detail_make(struct errq_detail *d, const char *k, size_t kl, const char *v, size_t vl)
{
	char *m = malloc(kl + 1 + vl + 1);
	if (!m)
		return ERRQ_ENOMEM;
	memcpy(m, k, kl + 1);
	memcpy(m + kl + 1, v, vl + 1);
	d->key = m;
	d->value = vl ? m + kl + 1 : NULL;
	return ERRQ_OK;
}

ERRQ_EXPORT int errq_event_add_detail(errq_event_t *ev, const char *key, const char *value)
{
	int rc = ERRQ_OK;
	char k[ERRQ__MAX_DETAIL_KEY_LEN + 1], v[ERRQ__MAX_DETAIL_VALUE_LEN + 1];
	bool cut = false;
	if (!ev || !key || !*key) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	size_t kl = text_into(key, ERRQ__MAX_DETAIL_KEY_LEN, k, &cut);
	size_t vl = text_into(value, ERRQ__MAX_DETAIL_VALUE_LEN, v, &cut);
	if (!kl) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	for (uint32_t i = 0; i < ev->n_details; i++) {
		struct errq_detail *d = &ev->details[i];
		if (strcmp(d->key, k) == 0) { /* a map: the last value wins */
			struct errq_detail nd;
			if ((rc = detail_make(&nd, k, kl, v, vl)))
				goto out;
			ev->body -= detail_size(d);
			free(d->key);
			*d = nd;
			ev->body += detail_size(d);
			goto out;
		}
	}
	if (ev->n_details >= ERRQ__MAX_DETAILS) {
		cut = true;
		goto out;
	}
	if ((rc = grow((void **)&ev->details, &ev->cap_details, ev->n_details, sizeof(*ev->details),
		       ERRQ__MAX_DETAILS)))
		goto out;
	struct errq_detail *d = &ev->details[ev->n_details];
	if ((rc = detail_make(d, k, kl, v, vl)))
		goto out;
	ev->n_details++;
	ev->body += detail_size(d);
out:
	if (rc == ERRQ_OK && cut)
		ev->truncated = true;
	return rc;
}

ERRQ_EXPORT int errq_event_add_frame(errq_event_t *ev, const char *function, const char *file,
				     uint32_t line, const char *module, bool in_app)
{
	int rc = ERRQ_OK;
	char t[3][ERRQ__MAX_FRAME_STR_LEN + 1];
	size_t l[3];
	struct errq_frame f = {.line = line, .in_app = in_app};
	bool cut = false;
	if (!ev) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	l[0] = text_into(function, ERRQ__MAX_FRAME_STR_LEN, t[0], &cut);
	l[1] = text_into(file, ERRQ__MAX_FRAME_STR_LEN, t[1], &cut);
	l[2] = text_into(module, ERRQ__MAX_FRAME_STR_LEN, t[2], &cut);
	/* the three strings in one allocation (frames are only appended, never changed) */
	size_t total = l[0] + l[1] + l[2] + 3;
	if (!(f.mem = malloc(total))) {
		rc = ERRQ_ENOMEM;
		goto out;
	}
	char *p = f.mem, **slot[3] = {&f.function, &f.file, &f.module};
	for (int i = 0; i < 3; i++) {
		memcpy(p, t[i], l[i] + 1);
		*slot[i] = l[i] ? p : NULL;
		p += l[i] + 1;
	}
	if (ev->n_frames >= ERRQ__MAX_FRAMES) {
		/* full: the outermost frame gives way, the innermost (where it failed) matter most */
		struct errq_frame *o = &ev->frames[0];
		ev->body -= frame_size(o);
		free(o->mem);
		memmove(&ev->frames[0], &ev->frames[1], (ev->n_frames - 1) * sizeof(*ev->frames));
		ev->n_frames--;
		cut = true;
	} else if ((rc = grow((void **)&ev->frames, &ev->cap_frames, ev->n_frames,
			      sizeof(*ev->frames), ERRQ__MAX_FRAMES))) {
		goto out;
	}
	ev->frames[ev->n_frames++] = f;
	ev->body += frame_size(&f);
	f.mem = NULL;
	if (cut)
		ev->truncated = true;
out:
	free(f.mem);
	return rc;
}

void errq__event_measure(const errq_client_t *c, errq_event_t *ev)
{
	size_t b = ev->body;
	if (!ev->service)
		b += c->sz_service;
	if (!ev->environment)
		b += c->sz_environment;
	b += c->sz_release + c->sz_host;
	b += TAG_LEN + 1 + ERRQ_ID_LEN; /* event_id */
	if (ev->time_ns)
		b += TAG_LEN + 8; /* fixed64 */
	if (ev->attempt)
		b += TAG_LEN + errq_pb_varint_size(ev->attempt);
	if (ev->handled)
		b += TAG_LEN + 1;
	ev->wire_body = b;
	ev->wire = msg_field(b);
	/* what it takes once reported: one allocation holding its encoding */
	ev->cost = chunk(sizeof(struct errq_qev) + ev->wire);
}

/* ---- the encoder.  Field numbers and wire types of collector.proto: TaskFailure event_id 1,
 * time_unix_nano 2 (fixed64), service 3, environment 4, release 5, host 6, task 7,
 * error_type 8, error_code 9, message 10, frames 11, details 12, fingerprint 13, attempt 14
 * (varint), handled 15 (varint); Frame function 1, file 2, line 3, module 4, in_app 5;
 * DetailsEntry key 1, value 2; ReportRequest failures 2, batch_id 4.  proto3: empty strings,
 * zeros and false are left out.  Fields go in number order, as protobuf-c packs them. */
#define TAG(field, wt) ((uint8_t)ERRQ_PB_TAG(field, ERRQ_PB_##wt)) /* one byte: fields < 16 */

static uint8_t *put_str(uint8_t *p, int field, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n)
		return p;
	*p++ = TAG(field, LEN);
	p = errq_pb_put_varint(p, n);
	memcpy(p, s, n);
	return p + n;
}

size_t errq__event_id_offset(const errq_event_t *ev)
{
	return TAG_LEN + errq_pb_varint_size(ev->wire_body) + TAG_LEN + 1;
}

uint8_t *errq__event_encode(uint8_t *p, const struct errq_options *cfg, const errq_event_t *ev)
{
	*p++ = TAG(2, LEN); /* ReportRequest.failures */
	p = errq_pb_put_varint(p, ev->wire_body);
	const uint8_t *start = p;
	*p++ = TAG(1, LEN);
	*p++ = ERRQ_ID_LEN;
	memcpy(p, ev->id, ERRQ_ID_LEN);
	p += ERRQ_ID_LEN;
	if (ev->time_ns) {
		*p++ = TAG(2, FIXED64);
		for (int i = 0; i < 8; i++)
			*p++ = (uint8_t)(ev->time_ns >> (8 * i));
	}
	p = put_str(p, 3, ev->service ? ev->service : cfg->service);
	p = put_str(p, 4, ev->environment ? ev->environment : cfg->environment);
	p = put_str(p, 5, cfg->release);
	p = put_str(p, 6, cfg->host);
	p = put_str(p, 7, ev->task);
	p = put_str(p, 8, ev->error_type);
	p = put_str(p, 9, ev->error_code);
	p = put_str(p, 10, ev->message);
	for (uint32_t j = 0; j < ev->n_frames; j++) {
		const struct errq_frame *f = &ev->frames[j];
		*p++ = TAG(11, LEN);
		p = errq_pb_put_varint(p, frame_body(f));
		p = put_str(p, 1, f->function);
		p = put_str(p, 2, f->file);
		if (f->line) {
			*p++ = TAG(3, VARINT);
			p = errq_pb_put_varint(p, f->line);
		}
		p = put_str(p, 4, f->module);
		if (f->in_app) {
			*p++ = TAG(5, VARINT);
			*p++ = 1;
		}
	}
	for (uint32_t j = 0; j < ev->n_details; j++) {
		const struct errq_detail *d = &ev->details[j];
		*p++ = TAG(12, LEN);
		p = errq_pb_put_varint(p, errq__str_field_size(d->key) + errq__str_field_size(d->value));
		p = put_str(p, 1, d->key);
		p = put_str(p, 2, d->value);
	}
	p = put_str(p, 13, ev->fingerprint);
	if (ev->attempt) {
		*p++ = TAG(14, VARINT);
		p = errq_pb_put_varint(p, ev->attempt);
	}
	if (ev->handled) {
		*p++ = TAG(15, VARINT);
		*p++ = 1;
	}
	return (size_t)(p - start) == ev->wire_body ? p : NULL;
}

int errq__batch_encode(const struct errq_options *cfg, const errq_event_t *first, size_t n,
		       const uint8_t batch_id[ERRQ_ID_LEN], grpc_slice *out)
{
	size_t len = TAG_LEN + 1 + ERRQ_ID_LEN; /* batch_id */
	const errq_event_t *ev = first;
	for (size_t i = 0; i < n; i++, ev = ev->next)
		len += ev->wire;
	/* our own allocation, not grpc_slice_malloc(): gRPC aborts the process when it runs out
	 * of memory, and the library must not */
	uint8_t *buf = malloc(len), *p = buf;
	if (!buf)
		return ERRQ_ENOMEM;
	ev = first;
	for (size_t i = 0; i < n && p; i++, ev = ev->next)
		p = errq__event_encode(p, cfg, ev);
	if (p) {
		*p++ = TAG(4, LEN);
		*p++ = ERRQ_ID_LEN;
		memcpy(p, batch_id, ERRQ_ID_LEN);
		p += ERRQ_ID_LEN;
	}
	if (!p || (size_t)(p - buf) != len) { /* an accounting bug: never send a torn message */
		assert(!"event size accounting does not match the encoding");
		free(buf);
		return ERRQ_ENOMEM;
	}
	*out = grpc_slice_new(buf, len, free);
	return ERRQ_OK;
}

/* protobuf-c takes char * for strings it only reads */
#define RW(s) ((char *)(s))

size_t errq__seq_prefix(uint64_t seq, uint8_t out[11])
{
	out[0] = TAG(1, VARINT);
	return (size_t)(errq_pb_put_varint(out + 1, seq) - out);
}

int errq__outcomes_encode(const struct errq_options *cfg, struct errq_outcome_entry *const *ents,
			  size_t n, uint64_t start_unix_ns, uint32_t window_s,
			  const uint8_t batch_id[ERRQ_ID_LEN], grpc_slice *out)
{
	int rc = ERRQ_ENOMEM;
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;
	Errq__V1__Outcome *oc = NULL, **ocp = NULL;
	char **tasks = NULL;
	uint8_t *buf = NULL;
	size_t i = 0;

	oc = malloc((n ? n : 1) * sizeof(*oc));
	ocp = malloc((n ? n : 1) * sizeof(*ocp));
	tasks = calloc(n ? n : 1, sizeof(*tasks));
	if (!oc || !ocp || !tasks)
		goto out;
	for (i = 0; i < n; i++) {
		bool cut = false;
		errq__v1__outcome__init(&oc[i]);
		if (errq__copy_text(ents[i]->task, ERRQ__MAX_TASK_LEN, &tasks[i], &cut))
			goto out;
		oc[i].service = RW(cfg->service);
		oc[i].task = RW(tasks[i] ? tasks[i] : "");
		oc[i].ok = ents[i]->ok;
		oc[i].failed = ents[i]->failed;
		oc[i].window_start_unix_nano = start_unix_ns;
		oc[i].window_seconds = window_s;
		ocp[i] = &oc[i];
	}
	req.n_outcomes = n;
	req.outcomes = ocp;
	req.batch_id.data = (uint8_t *)batch_id;
	req.batch_id.len = ERRQ_ID_LEN;
	size_t len = errq__v1__report_request__get_packed_size(&req);
	buf = malloc(len ? len : 1);
	if (!buf)
		goto out;
	errq__v1__report_request__pack(&req, buf);
	*out = grpc_slice_new(buf, len, free);
	buf = NULL;
	rc = ERRQ_OK;
out:
	for (size_t j = 0; tasks && j < n; j++)
		free(tasks[j]);
	free(tasks);
	free(ocp);
	free(oc);
	free(buf);
	return rc;
}
