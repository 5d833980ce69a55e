/* cli_rpc.c: the CLI's calls to the collector: one channel per run, one deadline for all
 * calls of a command, statuses turned into one-line errors and exit codes, and the cursor
 * pagination every list method shares. */
#include "cli.h"

#include <assert.h>
#include <grpc/support/log.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
	errq_snprintf(msg, sizeof(msg), "%s", args->message ? args->message : "");
	cli_one_line(msg);
	fprintf(stderr, "errq: grpc: %s\n", msg);
}

static grpc_channel *channel(struct cli_ctx *ctx)
{
	if (!ctx->ch) {
		const char *v = getenv("GRPC_VERBOSITY");
		if (!v || !*v)
			gpr_set_log_function(quiet_log);
		grpc_init();
		ctx->ch = errq_channel_new(ctx->args->addr);
		if (!ctx->ch)
			grpc_shutdown_blocking();
	}
	return ctx->ch;
}

void cli_ctx_release(struct cli_ctx *ctx)
{
	if (ctx->ch) {
		grpc_channel_destroy(ctx->ch);
		ctx->ch = NULL;
		grpc_shutdown_blocking();
	}
}

/* "ListEvents" of "/errq.v1.Query/ListEvents", for messages */
static const char *short_method(const char *method)
{
	const char *s = strrchr(method, '/');
	return s ? s + 1 : method;
}

/* Prints the error for a call that ended with a status other than OK; returns the exit code. */
static int report_status(struct cli_ctx *ctx, const char *method, const struct errq_unary_result *r)
{
	const char *addr = ctx->args->addr;
	char det[sizeof(r->details)], tmo[32], reason[256];
	errq_snprintf(det, sizeof(det), "%s", r->details);
	cli_one_line(det);
	cli_fmt_ms(tmo, sizeof(tmo), ctx->args->timeout_ms);

	switch (r->status) {
	case GRPC_STATUS_UNAVAILABLE:
		/* a live connection means the collector itself said so (say, its database) */
		if (grpc_channel_check_connectivity_state(ctx->ch, 0) == GRPC_CHANNEL_READY && *det) {
			cli_error("collector at %s is unavailable: %s", addr, det);
			break;
		}
		cli_reach_reason(r->details, reason, sizeof(reason));
		cli_error("cannot reach collector at %s: %s", addr, reason);
		break;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		/* no connection yet (a silent host, a firewall dropping packets) or a slow answer */
		if (grpc_channel_check_connectivity_state(ctx->ch, 0) != GRPC_CHANNEL_READY)
			cli_error("cannot reach collector at %s: no connection within %s", addr, tmo);
		else
			cli_error("collector at %s did not answer within %s", addr, tmo);
		break;
	case GRPC_STATUS_NOT_FOUND:
		cli_error("%s", *det ? det : "not found");
		break;
	case GRPC_STATUS_UNAUTHENTICATED:
	case GRPC_STATUS_PERMISSION_DENIED:
		cli_error("collector at %s refused the request: %s%s%s", addr,
			  r->status == GRPC_STATUS_UNAUTHENTICATED ? "unauthenticated" : "permission denied",
			  *det ? ": " : "", det);
		break;
	case GRPC_STATUS_INVALID_ARGUMENT:
		cli_error("collector at %s rejected the request: %s", addr, *det ? det : "invalid argument");
		break;
	case GRPC_STATUS_UNIMPLEMENTED:
		if (*det)
			cli_error("collector at %s does not serve %s: %s", addr, short_method(method), det);
		else
			cli_error("collector at %s does not serve %s (an older errqd?)", addr, short_method(method));
		break;
	default:
		cli_error("collector at %s failed: %s%s%s", addr, errq_status_name(r->status), *det ? ": " : "",
			  det);
		break;
	}
	return cli_exit_for_status(r->status);
}

int cli_call(struct cli_ctx *ctx, const char *method, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
	int rc = CLI_EXIT_UNREACHABLE;
	struct errq_unary_result r;
	char tmo[32];
	memset(&r, 0, sizeof(r));
	*resp = NULL;

	if (!channel(ctx)) {
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
	if (errq_unary_call(ctx->ch, method, req, left_ms, &r)) {
		cli_error("cannot call %s on collector at %s: %s", short_method(method), ctx->args->addr,
			  r.details);
		goto out;
	}
	if (r.status != GRPC_STATUS_OK) {
		rc = report_status(ctx, method, &r);
		goto out;
	}
	if (!r.has_resp) {
		cli_error("collector at %s answered %s without a message", ctx->args->addr, short_method(method));
		goto out;
	}
	*resp = protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(r.resp), GRPC_SLICE_START_PTR(r.resp));
	if (!*resp) {
		cli_error("cannot decode the answer of collector at %s to %s", ctx->args->addr, short_method(method));
		goto out;
	}
	rc = 0;
out:
	errq_unary_result_free(&r);
	return rc;
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
