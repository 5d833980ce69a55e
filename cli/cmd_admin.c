/* cmd_admin.c: `errq admin backup PATH` (Query.Backup): an online copy of the collector's
 * database, written by the collector to PATH on its own filesystem. */
#include "cli.h"

#include <string.h>

#include "errq/v1/query.pb-c.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

static json_t *backup_json(const struct cli_ctx *ctx, const ProtobufCMessage *m)
{
	const Errq__V1__BackupResponse *r = (const Errq__V1__BackupResponse *)m;
	bool ok = true;
	json_t *o = json_object();
	if (!o)
		return NULL;
	cli_json_put(o, "path", cli_json_str(r->path), &ok);
	cli_json_put(o, "bytes", cli_json_uint(r->bytes), &ok);
	cli_json_put(o, "pages", cli_json_uint(r->pages), &ok);
	cli_json_put(o, "page_size", cli_json_uint(r->page_size), &ok);
	cli_json_put(o, "events", cli_json_uint(r->events), &ok);
	cli_json_put(o, "started_at", cli_json_time(r->started_unix_nano), &ok);
	cli_json_put(o, "duration_ms", cli_json_uint(r->duration_nano / ERRQ_NS_PER_MS), &ok);
	cli_json_put(o, "copy_ms", cli_json_uint(r->copy_nano / ERRQ_NS_PER_MS), &ok);
	cli_json_put(o, "check_ms", cli_json_uint(r->check_nano / ERRQ_NS_PER_MS), &ok);
	cli_json_put(o, "steps", cli_json_uint(r->steps), &ok);
	cli_json_put(o, "check", cli_json_str("ok"), &ok);
	return cli_json_done(o, ok);
}

static void backup_detail(const struct cli_ctx *ctx, struct cli_detail *d, const ProtobufCMessage *m)
{
	const Errq__V1__BackupResponse *r = (const Errq__V1__BackupResponse *)m;
	char a[64], b[64], c[64], np[48], ts[ERRQ_RFC3339_BUFSZ];
	cli_detail_field(d, "backup", r->path, CLI_STYLE_BOLD);
	cli_detail_fieldf(d, "size", CLI_STYLE_NONE, "%s (%s of %u bytes)", cli_fmt_bytes(a, sizeof(a), r->bytes),
			  cli_count(np, sizeof(np), r->pages, "page", "pages"), r->page_size);
	cli_detail_fieldf(d, "events", CLI_STYLE_NONE, "%llu", (unsigned long long)r->events);
	cli_detail_fieldf(d, "snapshot", CLI_STYLE_NONE, "as of %s", errq_fmt_rfc3339(ts, r->started_unix_nano));
	cli_detail_fieldf(d, "took", CLI_STYLE_NONE, "%s (copy %s in %llu step%s, check %s)",
			  cli_fmt_ms(a, sizeof(a), (long)(r->duration_nano / ERRQ_NS_PER_MS)),
			  cli_fmt_ms(b, sizeof(b), (long)(r->copy_nano / ERRQ_NS_PER_MS)), (unsigned long long)r->steps, r->steps == 1 ? "" : "s",
			  cli_fmt_ms(c, sizeof(c), (long)(r->check_nano / ERRQ_NS_PER_MS)));
	cli_detail_field(d, "check", "ok (PRAGMA quick_check)", CLI_STYLE_GREEN);
}

int cli_cmd_admin_backup(struct cli_ctx *ctx)
{
	Errq__V1__BackupRequest req = ERRQ__V1__BACKUP_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	const char *path = ctx->args->argv[0];

	/* the collector checks too; saying it here spares a round trip and names the cause */
	if (path[0] != '/') {
		cli_error("backup path '%s' is relative: give an absolute path on the collector's filesystem", path);
		return CLI_EXIT_USAGE;
	}
	if (!ctx->args->timeout_set) /* a backup takes as long as the database is large */
		ctx->deadline_mono_ns = errq_mono_ns() + (uint64_t)CLI_BACKUP_TIMEOUT_MS * ERRQ_NS_PER_MS;
	req.path = (char *)path;
	req.force = ctx->args->force;
	req.max_bytes_per_second = (uint64_t)ctx->args->max_rate_mib << 20;
	int rc = cli_call(ctx, "/errq.v1.Query/Backup", &req.base, &errq__v1__backup_response__descriptor, &resp);
	if (!rc)
		rc = cli_print_item(ctx, resp, backup_json, backup_detail);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}
