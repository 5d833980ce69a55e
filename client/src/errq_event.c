/* errq_event.c: the event builder, its size accounting, and batch encoding.
 *
 * The builder keeps ev->body, the exact protobuf size of everything set so far, up to date
 * in every setter, so that errq_report() learns an event's size in O(1) and the sender can
 * cut batches by bytes without encoding first.  The unit tests check that the accounting
 * matches what protobuf-c packs, byte for byte. */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>

#include "errq/v1/collector.pb-c.h"
#include "errq_str.h"
#include "errq_banned.h"

#define TAG_LEN 1 /* every field number of TaskFailure, Frame and DetailsEntry is < 16 */

size_t errq__varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* A proto3 string field: omitted when empty. */
size_t errq__str_field_size(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n ? TAG_LEN + errq__varint_size(n) + n : 0;
}

/* An element of a repeated message field: always present, even when empty. */
static size_t msg_field(size_t body)
{
	return TAG_LEN + errq__varint_size(body) + body;
}

static size_t detail_size(const struct errq_detail *d)
{
	return msg_field(errq__str_field_size(d->key) + errq__str_field_size(d->value));
}

static size_t frame_size(const struct errq_frame *f)
{
	size_t b = errq__str_field_size(f->function) + errq__str_field_size(f->file) +
		   errq__str_field_size(f->module);
	if (f->line)
		b += TAG_LEN + errq__varint_size(f->line);
	if (f->in_app)
		b += TAG_LEN + 1;
	return msg_field(b);
}

/* Copies s into *out: at most max bytes of valid UTF-8, invalid bytes replaced by U+FFFD,
 * a longer value cut at a character boundary (*cut set).  NULL or "" gives *out = NULL.
 * Returns ERRQ_OK or ERRQ_ENOMEM.  Reads at most max + 1 bytes of s: the caller's string
 * may be huge, this stays bounded. */
static int copy_text(const char *s, size_t max, char **out, bool *cut)
{
	static const char repl[] = "\xEF\xBF\xBD";
	int rc = ERRQ_OK;
	char *p = NULL;
	size_t n, o = 0, i = 0;

	*out = NULL;
	if (!s || !*s)
		goto out;
	n = strnlen(s, max + 1);
	if (errq_utf8_valid(s, n, NULL)) {
		o = errq_utf8_trunc_len(s, n, max);
		p = malloc(o + 1);
		if (!p) {
			rc = ERRQ_ENOMEM;
			goto out;
		}
		memcpy(p, s, o);
		i = n <= max ? n : o;
	} else {
		/* repair: every output byte stands for at least one input byte, so n <= max input
		 * bytes need at most 3n output bytes, and the output never exceeds max */
		size_t cap = n <= max / 3 ? 3 * n : max;
		p = malloc(cap + 1);
		if (!p) {
			rc = ERRQ_ENOMEM;
			goto out;
		}
		while (i < n) {
			size_t bad = n - i, run;
			if (!errq_utf8_valid(s + i, n - i, &bad))
				run = bad;
			else
				run = n - i;
			if (run > cap - o) {
				run = errq_utf8_trunc_len(s + i, run, cap - o);
				memcpy(p + o, s + i, run);
				o += run;
				i += run;
				break;
			}
			memcpy(p + o, s + i, run);
			o += run;
			i += run;
			if (i >= n)
				break;
			if (cap - o < sizeof(repl) - 1)
				break;
			memcpy(p + o, repl, sizeof(repl) - 1);
			o += sizeof(repl) - 1;
			i++;
		}
	}
	p[o] = '\0';
	if (i < n || n > max)
		*cut = true;
	if (o == 0) { /* everything was cut: treat as unset */
		free(p);
		p = NULL;
	}
	*out = p;
out:
	return rc;
}

/* Replaces a string field of ev, keeping ev->body exact. */
static int set_field(errq_event_t *ev, char **slot, const char *s, size_t max)
{
	char *copy;
	bool cut = false;
	if (!ev)
		return ERRQ_EINVAL;
	int rc = copy_text(s, max, &copy, &cut);
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
		free(ev->details[i].key);
		free(ev->details[i].value);
	}
	free(ev->details);
	for (uint32_t i = 0; i < ev->n_frames; i++) {
		free(ev->frames[i].function);
		free(ev->frames[i].file);
		free(ev->frames[i].module);
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

ERRQ_EXPORT int errq_event_add_detail(errq_event_t *ev, const char *key, const char *value)
{
	int rc = ERRQ_OK;
	char *k = NULL, *v = NULL;
	bool cut = false;
	if (!ev || !key || !*key) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	if ((rc = copy_text(key, ERRQ__MAX_DETAIL_KEY_LEN, &k, &cut)) ||
	    (rc = copy_text(value, ERRQ__MAX_DETAIL_VALUE_LEN, &v, &cut)))
		goto out;
	if (!k) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	for (uint32_t i = 0; i < ev->n_details; i++) {
		struct errq_detail *d = &ev->details[i];
		if (strcmp(d->key, k) == 0) { /* a map: the last value wins */
			ev->body -= detail_size(d);
			free(d->value);
			d->value = v;
			v = NULL;
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
	struct errq_detail *d = &ev->details[ev->n_details++];
	d->key = k;
	d->value = v;
	k = v = NULL;
	ev->body += detail_size(d);
out:
	if (rc == ERRQ_OK && cut)
		ev->truncated = true;
	free(k);
	free(v);
	return rc;
}

ERRQ_EXPORT int errq_event_add_frame(errq_event_t *ev, const char *function, const char *file,
				     uint32_t line, const char *module, bool in_app)
{
	int rc = ERRQ_OK;
	struct errq_frame f = {.line = line, .in_app = in_app};
	bool cut = false;
	if (!ev) {
		rc = ERRQ_EINVAL;
		goto out;
	}
	if ((rc = copy_text(function, ERRQ__MAX_FRAME_STR_LEN, &f.function, &cut)) ||
	    (rc = copy_text(file, ERRQ__MAX_FRAME_STR_LEN, &f.file, &cut)) ||
	    (rc = copy_text(module, ERRQ__MAX_FRAME_STR_LEN, &f.module, &cut)))
		goto out;
	if (ev->n_frames >= ERRQ__MAX_FRAMES) {
		/* full: the outermost frame gives way, the innermost (where it failed) matter most */
		struct errq_frame *o = &ev->frames[0];
		ev->body -= frame_size(o);
		free(o->function);
		free(o->file);
		free(o->module);
		memmove(&ev->frames[0], &ev->frames[1], (ev->n_frames - 1) * sizeof(*ev->frames));
		ev->n_frames--;
		cut = true;
	} else if ((rc = grow((void **)&ev->frames, &ev->cap_frames, ev->n_frames,
			      sizeof(*ev->frames), ERRQ__MAX_FRAMES))) {
		goto out;
	}
	ev->frames[ev->n_frames++] = f;
	ev->body += frame_size(&f);
	memset(&f, 0, sizeof(f));
	if (cut)
		ev->truncated = true;
out:
	free(f.function);
	free(f.file);
	free(f.module);
	return rc;
}

void errq__event_measure(const errq_client_t *c, errq_event_t *ev)
{
	size_t b = ev->body;
	size_t items = ev->n_details + ev->n_frames;
	if (!ev->service)
		b += c->sz_service;
	if (!ev->environment)
		b += c->sz_environment;
	b += c->sz_release + c->sz_host;
	b += TAG_LEN + 1 + ERRQ_ID_LEN; /* event_id */
	if (ev->time_ns)
		b += TAG_LEN + 8; /* fixed64 */
	if (ev->attempt)
		b += TAG_LEN + errq__varint_size(ev->attempt);
	if (ev->handled)
		b += TAG_LEN + 1;
	ev->wire = msg_field(b);
	ev->cost = ev->wire + ERRQ__EVENT_OVERHEAD + items * ERRQ__ITEM_OVERHEAD;
}

/* Counts the frames and details of n events. */
static void count_items(const errq_event_t *ev, size_t n, size_t *frames, size_t *details)
{
	*frames = *details = 0;
	for (size_t i = 0; i < n && ev; i++, ev = ev->next) {
		*frames += ev->n_frames;
		*details += ev->n_details;
	}
}

/* protobuf-c takes char * for strings it only reads */
#define RW(s) ((char *)(s))

int errq__batch_encode(const struct errq_options *cfg, const errq_event_t *first, size_t n,
		       uint64_t seq, const uint8_t batch_id[ERRQ_ID_LEN], grpc_slice *out)
{
	int rc = ERRQ_ENOMEM;
	size_t nf, nd;
	void *block = NULL;
	uint8_t *buf = NULL;
	Errq__V1__ReportRequest req = ERRQ__V1__REPORT_REQUEST__INIT;

	count_items(first, n, &nf, &nd);
	/* one block: the message structs, then the pointer arrays protobuf-c wants */
	size_t sz = n * sizeof(Errq__V1__TaskFailure) + nf * sizeof(Errq__V1__Frame) +
		    nd * sizeof(Errq__V1__TaskFailure__DetailsEntry) + (n + nf + nd) * sizeof(void *);
	block = malloc(sz ? sz : 1);
	if (!block)
		goto out;
	Errq__V1__TaskFailure *tf = block;
	Errq__V1__Frame *fr = (Errq__V1__Frame *)(tf + n);
	Errq__V1__TaskFailure__DetailsEntry *de = (Errq__V1__TaskFailure__DetailsEntry *)(fr + nf);
	Errq__V1__TaskFailure **tfp = (Errq__V1__TaskFailure **)(de + nd);
	Errq__V1__Frame **frp = (Errq__V1__Frame **)(tfp + n);
	Errq__V1__TaskFailure__DetailsEntry **dep = (Errq__V1__TaskFailure__DetailsEntry **)(frp + nf);

	const errq_event_t *ev = first;
	for (size_t i = 0; i < n; i++, ev = ev->next) {
		Errq__V1__TaskFailure *t = &tf[i];
		errq__v1__task_failure__init(t);
		t->event_id.data = (uint8_t *)ev->id;
		t->event_id.len = ERRQ_ID_LEN;
		t->time_unix_nano = ev->time_ns;
		t->service = RW(ev->service ? ev->service : cfg->service);
		t->environment = RW(ev->environment ? ev->environment : cfg->environment);
		t->release = RW(cfg->release);
		t->host = RW(cfg->host);
		t->task = RW(ev->task);
		t->error_type = RW(ev->error_type);
		t->error_code = RW(ev->error_code);
		t->message = RW(ev->message);
		t->fingerprint = RW(ev->fingerprint);
		t->attempt = ev->attempt;
		t->handled = ev->handled;
		t->n_frames = ev->n_frames;
		t->frames = frp;
		for (uint32_t j = 0; j < ev->n_frames; j++) {
			const struct errq_frame *f = &ev->frames[j];
			errq__v1__frame__init(fr);
			fr->function = RW(f->function);
			fr->file = RW(f->file);
			fr->line = f->line;
			fr->module = RW(f->module);
			fr->in_app = f->in_app;
			*frp++ = fr++;
		}
		t->n_details = ev->n_details;
		t->details = dep;
		for (uint32_t j = 0; j < ev->n_details; j++) {
			errq__v1__task_failure__details_entry__init(de);
			de->key = RW(ev->details[j].key);
			de->value = RW(ev->details[j].value ? ev->details[j].value : "");
			*dep++ = de++;
		}
		tfp[i] = t;
	}
	req.seq = seq;
	req.n_failures = n;
	req.failures = tfp;
	req.batch_id.data = (uint8_t *)batch_id;
	req.batch_id.len = ERRQ_ID_LEN;

	/* our own allocation, not grpc_slice_malloc(): gRPC aborts the process when it runs out
	 * of memory, and the library must not */
	size_t len = errq__v1__report_request__get_packed_size(&req);
	buf = malloc(len ? len : 1);
	if (!buf)
		goto out;
	errq__v1__report_request__pack(&req, buf);
	*out = grpc_slice_new(buf, len, free);
	buf = NULL;
	rc = ERRQ_OK;
out:
	free(buf);
	free(block);
	return rc;
}
