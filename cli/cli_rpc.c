/* cli_rpc.c: the CLI's calls to the collector: one channel per run, one deadline for all
 * calls of a command, statuses turned into one-line errors and exit codes, and the cursor
 * pagination every list method shares. */
#include "cli.h"

#include <assert.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "errq_file.h"
#include "errq_grpc.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

void cli_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_one_line(msg);
	fprintf(stderr, "errq: %s\n", msg);
}

/* gRPC's own logger writes multi-line, timestamped records to stderr.  Unless GRPC_VERBOSITY
 * asks for those, only its errors get through, as one "errq: grpc: ..." line each, so that
 * an internal failure (an assertion before abort) still says what happened. */
static void quiet_log(gpr_log_func_args *args)
{
	char msg[512];
	if (args->severity != GPR_LOG_SEVERITY_ERROR)
		return;
	/* the failed call's status says the same in its own line (cli_report_status) */
	if (args->message && strncmp(args->message, "Handshake failed", 16) == 0)
		return;
	errq_snprintf(msg, sizeof(msg), "%s", args->message ? args->message : "");
	cli_one_line(msg);
	fprintf(stderr, "errq: grpc: %s\n", msg);
}

/* A long stream (errq tail) pings a silent connection: a collector whose host vanished
 * without closing it (power, network) is noticed within interval + timeout.  Above the
 * 5-minute minimum a gRPC server accepts by default, so errqd never answers with GOAWAY. */
#define CLI_KEEPALIVE_MS (6 * 60 * 1000)
#define CLI_KEEPALIVE_TIMEOUT_MS (20 * 1000)

static grpc_channel *keepalive_channel(const char *addr, grpc_channel_credentials *creds)
{
	/* errq_channel_new's arguments, and keepalive */
	const struct errq_chan_arg extra[] = {
	    {GRPC_ARG_KEEPALIVE_TIME_MS, CLI_KEEPALIVE_MS},
	    {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, CLI_KEEPALIVE_TIMEOUT_MS},
	    {GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0}, /* a quiet tail keeps pinging */
	};
	return errq_channel_new_ex(addr, creds, extra, sizeof(extra) / sizeof(extra[0]));
}

int cli_tls_load(struct cli_ctx *ctx, char *err, size_t errsz)
{
	const struct cli_args *a = ctx->args;
	const char *path[3] = {a->tls_ca, a->tls_cert, a->tls_key}, *flag[3] = {"--ca", "--cert", "--key"};
	char why[600];
	for (int i = 0; i < 3; i++)
		if (path[i] && errq_file_read(path[i], CLI_PEM_MAX, &ctx->tls_pem[i], NULL, why, sizeof(why))) {
			errq_snprintf(err, errsz, "%s: %s", flag[i], why);
			return -1;
		}
	return 0;
}

grpc_channel *cli_channel(struct cli_ctx *ctx)
{
	if (!ctx->ch) {
		const char *v = getenv("GRPC_VERBOSITY");
		if (!v || !*v)
			gpr_set_log_function(quiet_log);
		grpc_init();
		grpc_channel_credentials *creds = NULL; /* plaintext */
		if (ctx->args->tls || ctx->tls_pem[0]) {
			/* roots: --ca's, else gRPC's default: the system's (/etc/ssl/certs) */
			grpc_ssl_pem_key_cert_pair kp = {ctx->tls_pem[2], ctx->tls_pem[1]};
			creds = grpc_ssl_credentials_create(ctx->tls_pem[0], ctx->tls_pem[1] ? &kp : NULL, NULL, NULL);
		}
		ctx->ch = ctx->keepalive ? keepalive_channel(ctx->args->addr, creds)
					 : errq_channel_new_ex(ctx->args->addr, creds, NULL, 0);
		if (creds) /* the channel holds its own reference */
			grpc_channel_credentials_release(creds);
		if (!ctx->ch) {
			grpc_shutdown_blocking();
			return NULL;
		}
		if (ctx->args->token) { /* every call of the run sends it (errqd's auth.h) */
			char hv[CLI_TOKEN_MAX + 8];
			errq_snprintf(hv, sizeof(hv), "Bearer %s", ctx->args->token);
			ctx->auth_md.key = grpc_slice_from_static_string("authorization");
			ctx->auth_md.value = grpc_slice_from_copied_string(hv);
			ctx->n_md = 1;
			explicit_bzero(hv, sizeof(hv));
		}
	}
	return ctx->ch;
}

void cli_ctx_release(struct cli_ctx *ctx)
{
	if (ctx->ch) {
		if (ctx->n_md)
			grpc_slice_unref(ctx->auth_md.value);
		ctx->n_md = 0;
		grpc_channel_destroy(ctx->ch);
		ctx->ch = NULL;
		grpc_shutdown_blocking();
	}
	for (int i = 0; i < 3; i++) {
		if (ctx->tls_pem[i] && i == 2) /* the key does not linger in freed memory */
			explicit_bzero(ctx->tls_pem[i], strlen(ctx->tls_pem[i]));
		free(ctx->tls_pem[i]);
		ctx->tls_pem[i] = NULL;
	}
}

const char *cli_short_method(const char *method)
{
	const char *s = strrchr(method, '/');
	return s ? s + 1 : method;
}

/* What a failed TLS handshake (or a plain-text client at a TLS collector) most likely means,
 * as " (...)" after the reason, or "". */
static const char *tls_hint(const struct cli_ctx *ctx, const char *details)
{
	bool tls = ctx->args->tls || ctx->tls_pem[0];
	if (!details)
		return "";
	if (strstr(details, "certificate verify failed"))
		return ctx->tls_pem[0] ? " (the collector's certificate is not signed by a CA in --ca)"
				       : " (the collector's certificate is not signed by a CA the system trusts: --ca FILE)";
	if (strstr(details, "WRONG_VERSION_NUMBER") || strstr(details, "wrong version number"))
		return " (the collector does not serve TLS: drop --tls/--ca)";
	if (strstr(details, "Socket closed") || strstr(details, "socket closed")) {
		if (!tls)
			return " (a collector that serves TLS closes plain-text connections: --ca FILE or --tls)";
		if (!ctx->tls_pem[1])
			return " (a collector that asks for a client certificate closes connections without one: --cert "
			       "and --key)";
		return " (a collector that does not trust the CA of --cert closes the connection)";
	}
	return "";
}

int cli_report_status(struct cli_ctx *ctx, const char *method, grpc_status_code c, const char *details)
{
	const char *addr = ctx->args->addr;
	char det[512], tmo[32], reason[256];
	errq_snprintf(det, sizeof(det), "%s", details ? details : "");
	cli_one_line(det);
	cli_fmt_ms(tmo, sizeof(tmo), ctx->args->timeout_ms);

	switch (c) {
	case GRPC_STATUS_UNAVAILABLE:
		/* a live connection means the collector itself said so (say, its database) */
		if (ctx->ch && grpc_channel_check_connectivity_state(ctx->ch, 0) == GRPC_CHANNEL_READY && *det) {
			cli_error("collector at %s is unavailable: %s", addr, det);
			break;
		}
		cli_reach_reason(details, reason, sizeof(reason));
		cli_error("cannot reach collector at %s: %s%s", addr, reason, tls_hint(ctx, details));
		break;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		/* no connection yet (a silent host, a firewall dropping packets) or a slow answer */
		if (!ctx->ch || grpc_channel_check_connectivity_state(ctx->ch, 0) != GRPC_CHANNEL_READY)
			cli_error("cannot reach collector at %s: no connection within %s", addr, tmo);
		else
			cli_error("collector at %s did not answer within %s", addr, tmo);
		break;
	case GRPC_STATUS_NOT_FOUND:
		/* the same words for every command: "<what> not found", and the collector's hint
		 * ("no alert X (never fired, ...)": what is in parentheses) */
		if (ctx->what[0] && strstr(det, " (") && det[strlen(det) - 1] == ')')
			cli_error("%s not found at collector %s %s", ctx->what, addr, strstr(det, " (") + 1);
		else if (ctx->what[0])
			cli_error("%s not found at collector %s", ctx->what, addr);
		else
			cli_error("%s", *det ? det : "not found");
		break;
	case GRPC_STATUS_UNAUTHENTICATED:
	case GRPC_STATUS_PERMISSION_DENIED:
		cli_error("collector at %s refused the request: %s%s%s", addr,
			  c == GRPC_STATUS_UNAUTHENTICATED ? "unauthenticated" : "permission denied", *det ? ": " : "",
			  det);
		break;
	case GRPC_STATUS_INVALID_ARGUMENT:
		cli_error("collector at %s rejected the request: %s", addr, *det ? det : "invalid argument");
		break;
	case GRPC_STATUS_ALREADY_EXISTS:
		cli_error("collector at %s refused: %s", addr, *det ? det : "already exists");
		break;
	case GRPC_STATUS_FAILED_PRECONDITION: /* "nothing to replay", "storage: none": its own words */
		cli_error("collector at %s: %s", addr, *det ? det : "the request does not apply now");
		break;
	case GRPC_STATUS_UNIMPLEMENTED:
		if (*det)
			cli_error("collector at %s does not serve %s: %s", addr, cli_short_method(method), det);
		else
			cli_error("collector at %s does not serve %s (an older errqd?)", addr,
				  cli_short_method(method));
		break;
	default:
		cli_error("collector at %s failed: %s%s%s", addr, errq_status_name(c), *det ? ": " : "", det);
		break;
	}
	return cli_exit_for_status(c);
}

int cli_call(struct cli_ctx *ctx, const char *method, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
	int rc = CLI_EXIT_UNREACHABLE;
	struct errq_unary_result r;
	char tmo[32];
	memset(&r, 0, sizeof(r));
	*resp = NULL;

	if (!cli_channel(ctx)) {
		cli_error("cannot create a channel to %s: out of memory", ctx->args->addr);
		goto out;
	}
	uint64_t now = errq_mono_ns();
	if (now >= ctx->deadline_mono_ns) {
		cli_error("collector at %s did not answer within %s", ctx->args->addr,
			  cli_fmt_ms(tmo, sizeof(tmo), ctx->args->timeout_ms));
		goto out;
	}
	long left_ms = (long)((ctx->deadline_mono_ns - now + ERRQ_NS_PER_MS - 1) / ERRQ_NS_PER_MS);
	if (errq_unary_call_md(ctx->ch, method, req, left_ms, ctx->n_md ? &ctx->auth_md : NULL, ctx->n_md, &r)) {
		cli_error("cannot call %s on collector at %s: %s", cli_short_method(method), ctx->args->addr,
			  r.details);
		goto out;
	}
	if (r.status != GRPC_STATUS_OK) {
		rc = cli_report_status(ctx, method, r.status, r.details);
		goto out;
	}
	if (!r.has_resp) {
		cli_error("collector at %s answered %s without a message", ctx->args->addr, cli_short_method(method));
		goto out;
	}
	*resp = protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
	if (!*resp) {
		cli_error("cannot decode the answer of collector at %s to %s", ctx->args->addr,
			  cli_short_method(method));
		goto out;
	}
	rc = 0;
out:
	errq_unary_result_free(&r);
	return rc;
}

/* One call of cli_call_each in flight. */
struct each_slot {
	grpc_call *call;
	size_t index; /* of reqs */
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array md, trailing;
	grpc_status_code status;
	grpc_slice details;
};

static int each_start(struct cli_ctx *ctx, grpc_completion_queue *cq, const char *method,
		      const ProtobufCMessage *req, gpr_timespec deadline, struct each_slot *sl)
{
	grpc_op ops[6];
	memset(ops, 0, sizeof(ops));
	sl->send = errq_bb_from_msg(req);
	sl->recv = NULL;
	grpc_metadata_array_init(&sl->md);
	grpc_metadata_array_init(&sl->trailing);
	sl->details = grpc_empty_slice();
	sl->call = grpc_channel_create_call(ctx->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
					    grpc_slice_from_static_string(method), NULL, deadline, NULL);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = ctx->n_md;
	ops[0].data.send_initial_metadata.metadata = ctx->n_md ? &ctx->auth_md : NULL;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = sl->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &sl->md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &sl->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &sl->trailing;
	ops[5].data.recv_status_on_client.status = &sl->status;
	ops[5].data.recv_status_on_client.status_details = &sl->details;
	if (!sl->send || !sl->call || grpc_call_start_batch(sl->call, ops, 6, sl, NULL) != GRPC_CALL_OK)
		return -1;
	return 0;
}

static void each_free(struct each_slot *sl)
{
	if (sl->recv)
		grpc_byte_buffer_destroy(sl->recv);
	if (sl->send)
		grpc_byte_buffer_destroy(sl->send);
	grpc_slice_unref(sl->details);
	grpc_metadata_array_destroy(&sl->md);
	grpc_metadata_array_destroy(&sl->trailing);
	if (sl->call)
		grpc_call_unref(sl->call);
	memset(sl, 0, sizeof(*sl));
}

size_t cli_call_each(struct cli_ctx *ctx, const char *method, const ProtobufCMessage *const *reqs, size_t n,
		     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resps, long budget_ms)
{
	struct each_slot slots[CLI_EACH_INFLIGHT], *free_slots[CLI_EACH_INFLIGHT];
	size_t nfree = 0, inflight = 0, next = 0, ok = 0;
	bool stop = false;
	for (size_t k = 0; k < n; k++)
		resps[k] = NULL;
	if (!n || !cli_channel(ctx))
		return 0;
	uint64_t now = errq_mono_ns(), end = now + (uint64_t)budget_ms * ERRQ_NS_PER_MS;
	if (end > ctx->deadline_mono_ns)
		end = ctx->deadline_mono_ns;
	if (now >= end)
		return 0;
	/* every call ends by this deadline, so draining the queue below cannot hang */
	gpr_timespec deadline = errq_deadline_ms((long)((end - now) / ERRQ_NS_PER_MS));
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	memset(slots, 0, sizeof(slots));
	for (size_t k = 0; k < CLI_EACH_INFLIGHT; k++)
		free_slots[nfree++] = &slots[CLI_EACH_INFLIGHT - 1 - k];

	for (;;) {
		while (!stop && next < n && nfree) {
			struct each_slot *sl = free_slots[--nfree];
			sl->index = next;
			if (each_start(ctx, cq, method, reqs[next], deadline, sl)) {
				/* a batch that did not start never reaches the queue */
				each_free(sl);
				free_slots[nfree++] = sl;
				stop = true;
				break;
			}
			next++;
			inflight++;
		}
		if (!inflight)
			break;
		grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			break; /* cannot happen: the queue is not shut down while calls are out */
		struct each_slot *sl = ev.tag;
		inflight--;
		if (ev.success && sl->status == GRPC_STATUS_OK && sl->recv) {
			grpc_slice sv = errq_bb_flatten(sl->recv);
			resps[sl->index] = protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(sv),
								     GRPC_SLICE_START_PTR(sv));
			grpc_slice_unref(sv);
			ok += resps[sl->index] != NULL;
		} else if (!ev.success || sl->status == GRPC_STATUS_UNIMPLEMENTED ||
			   sl->status == GRPC_STATUS_DEADLINE_EXCEEDED || sl->status == GRPC_STATUS_UNAVAILABLE) {
			stop = true; /* the rest would fail the same way */
		}
		each_free(sl);
		free_slots[nfree++] = sl;
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return ok;
}

void cli_rows_init(struct cli_rows *r)
{
	memset(r, 0, sizeof(*r));
}

void cli_rows_release(struct cli_rows *r)
{
	for (size_t k = 0; k < r->npages; k++)
		protobuf_c_message_free_unpacked(r->pages[k], NULL);
	free(r->pages);
	free(r->rows);
	cli_rows_init(r);
}

static int add_page(struct cli_rows *r, ProtobufCMessage *page)
{
	if (r->npages == r->pages_cap) {
		size_t ncap = r->pages_cap ? r->pages_cap * 2 : 8;
		ProtobufCMessage **np = realloc(r->pages, ncap * sizeof(*np));
		if (!np)
			return -1;
		r->pages = np;
		r->pages_cap = ncap;
	}
	r->pages[r->npages++] = page;
	return 0;
}

static int add_rows(struct cli_rows *r, ProtobufCMessage *const *rows, size_t n)
{
	if (r->nrows + n > r->rows_cap) {
		size_t ncap = r->rows_cap ? r->rows_cap : 64;
		while (ncap < r->nrows + n)
			ncap *= 2;
		const ProtobufCMessage **nr = realloc(r->rows, ncap * sizeof(*nr));
		if (!nr)
			return -1;
		r->rows = nr;
		r->rows_cap = ncap;
	}
	for (size_t k = 0; k < n; k++)
		r->rows[r->nrows++] = rows[k];
	return 0;
}

/* A field of m by descriptor: protobuf-c lays messages out as the descriptor says. */
#define FIELD_AT(m, f, type) ((type *)((char *)(m) + (f)->offset))

int cli_list(struct cli_ctx *ctx, const char *method, ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, const char *rows_field, uint32_t limit,
	     struct cli_rows *out)
{
	int rc = 0;
	const ProtobufCFieldDescriptor *f_limit, *f_cursor, *f_rows, *f_next;
	f_limit = protobuf_c_message_descriptor_get_field_by_name(req->descriptor, "limit");
	f_cursor = protobuf_c_message_descriptor_get_field_by_name(req->descriptor, "cursor");
	f_rows = protobuf_c_message_descriptor_get_field_by_name(resp_desc, rows_field);
	f_next = protobuf_c_message_descriptor_get_field_by_name(resp_desc, "next_cursor");
	/* a list method that breaks the convention is a programmer error */
	assert(f_limit && f_limit->type == PROTOBUF_C_TYPE_UINT32);
	assert(f_cursor && f_cursor->type == PROTOBUF_C_TYPE_BYTES);
	assert(f_rows && f_rows->type == PROTOBUF_C_TYPE_MESSAGE && f_rows->label == PROTOBUF_C_LABEL_REPEATED);
	assert(f_next && f_next->type == PROTOBUF_C_TYPE_BYTES);
	uint32_t *req_limit = FIELD_AT(req, f_limit, uint32_t);
	ProtobufCBinaryData *req_cursor = FIELD_AT(req, f_cursor, ProtobufCBinaryData);

	while (out->nrows < limit) {
		uint32_t want = limit - (uint32_t)out->nrows;
		if (want > CLI_PAGE_MAX)
			want = CLI_PAGE_MAX;
		*req_limit = want;
		ProtobufCMessage *page;
		rc = cli_call(ctx, method, req, resp_desc, &page);
		if (rc)
			goto out;
		if (add_page(out, page)) {
			protobuf_c_message_free_unpacked(page, NULL);
			cli_error("out of memory");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		size_t n = *(size_t *)((char *)page + f_rows->quantifier_offset);
		ProtobufCMessage **rows = *FIELD_AT(page, f_rows, ProtobufCMessage **);
		if (n > want)
			n = want; /* a collector that ignores limit still gets cut to what was asked */
		if (add_rows(out, rows, n)) {
			cli_error("out of memory");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		ProtobufCBinaryData *next = FIELD_AT(page, f_next, ProtobufCBinaryData);
		if (!next->len || !n)
			break;
		*req_cursor = *next; /* points into the page, which out keeps */
	}
out:
	*req_limit = 0;
	req_cursor->len = 0;
	req_cursor->data = NULL;
	return rc;
}
