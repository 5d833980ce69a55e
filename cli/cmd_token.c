/* cmd_token.c: `errq token new` — a new random bearer token and the `credentials:` entry
 * for errqd's config file, which holds only the token's SHA-256 (docs/security.md).
 * Contacts no collector. */
#include "cli.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/random.h>

#include "errq_str.h"
#include "errq_banned.h"

#define TOKEN_PREFIX "errq_"       /* recognisable in a config or a leak scanner (auth.h) */
#define TOKEN_RANDOM_BYTES 32      /* AUTH_TOKEN_RANDOM_BYTES: 256 bits */
#define TOKEN_NAME_MAX 63          /* AUTH_NAME_MAX - 1 */
#define TOKEN_SERVICE_MAX 128      /* AUTH_SERVICE_MAX - 1 */
#define TOKEN_LEN (sizeof(TOKEN_PREFIX) - 1 + (TOKEN_RANDOM_BYTES * 4 + 2) / 3)

/* base64url without padding (RFC 4648 section 5): the token is safe in a header, a URL and
 * a shell word. */
static void b64url(const uint8_t *p, size_t n, char *out)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		size_t k = n - i >= 3 ? 4 : n - i + 1;
		for (size_t j = 0; j < k; j++)
			out[o++] = al[(v >> (18 - 6 * j)) & 63];
	}
	out[o] = '\0';
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > TOKEN_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9') &&
		    !strchr("_.@-", s[i]))
			return false;
	return true;
}

/* The arguments: name (given or "token-" and random hex), role, services.  Returns 0 or
 * CLI_EXIT_USAGE after printing why. */
static int check_args(const struct cli_args *a, char *name, size_t namesz)
{
	const char *role = *a->role ? a->role : "read";
	if (strcmp(role, "ingest") && strcmp(role, "read") && strcmp(role, "admin")) {
		cli_error("invalid --role '%s' (expected ingest, read or admin)", role);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(role, "ingest") && !a->nservices) {
		cli_error("--role ingest needs --service NAME (repeat it; a glob such as 'pay*'; '*' for every service)");
		return CLI_EXIT_USAGE;
	}
	if (strcmp(role, "ingest") && a->nservices) {
		cli_error("--service is only for --role ingest");
		return CLI_EXIT_USAGE;
	}
	for (size_t i = 0; i < a->nservices; i++) {
		size_t n = strlen(a->services[i]);
		if (!n || n > TOKEN_SERVICE_MAX || cli_name_valid(a->services[i]) ||
		    !errq_utf8_valid(a->services[i], n, NULL)) {
			cli_error("invalid --service '%.40s' (1 to %d bytes of text)", a->services[i], TOKEN_SERVICE_MAX);
			return CLI_EXIT_USAGE;
		}
	}
	if (*a->name && !name_ok(a->name)) {
		cli_error("invalid --name '%.64s' (1 to %d of A-Z a-z 0-9 _ . @ -)", a->name, TOKEN_NAME_MAX);
		return CLI_EXIT_USAGE;
	}
	if (*a->name) {
		errq_snprintf(name, namesz, "%s", a->name);
	} else {
		uint8_t r[4];
		char hex[9];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
			cli_error("cannot read random bytes (getrandom)");
			return CLI_EXIT_USAGE;
		}
		errq_hex_encode(r, sizeof(r), hex);
		errq_snprintf(name, namesz, "token-%s", hex);
	}
	return 0;
}

int cli_cmd_token_new(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	const char *role = *a->role ? a->role : "read";
	char name[TOKEN_NAME_MAX + 1], token[TOKEN_LEN + 1], hex[65];
	uint8_t rnd[TOKEN_RANDOM_BYTES], sum[SHA256_DIGEST_LENGTH];
	int rc = check_args(a, name, sizeof(name));
	if (rc)
		return rc;
	/* getrandom blocks only until the kernel's pool is first seeded, then never */
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		cli_error("cannot read random bytes (getrandom)");
		return CLI_EXIT_USAGE;
	}
	memcpy(token, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
	b64url(rnd, sizeof(rnd), token + sizeof(TOKEN_PREFIX) - 1);
	SHA256((const unsigned char *)token, strlen(token), sum);
	errq_hex_encode(sum, sizeof(sum), hex);
	OPENSSL_cleanse(rnd, sizeof(rnd));

	struct errq_buf svc; /* ["checkout", "pay*"]: JSON strings are YAML double-quoted scalars */
	errq_buf_init(&svc, CLI_MAX_SERVICES * (6 * TOKEN_SERVICE_MAX + 4) + 8);
	bool ok = !errq_buf_addstr(&svc, "[");
	for (size_t i = 0; i < a->nservices && ok; i++)
		ok = !(i && errq_buf_addstr(&svc, ", ")) &&
		     !errq_buf_add_json_str(&svc, a->services[i], strlen(a->services[i]));
	ok = ok && !errq_buf_addstr(&svc, "]");
	if (!ok) {
		cli_error("out of memory");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (a->output != CLI_OUT_TABLE) {
		json_t *o = json_object(), *list = json_array();
		bool jok = o && list;
		for (size_t i = 0; i < a->nservices && jok; i++)
			jok = json_array_append_new(list, cli_json_str(a->services[i])) == 0;
		if (o) {
			cli_json_put(o, "token", cli_json_str(token), &jok);
			cli_json_put(o, "name", cli_json_str(name), &jok);
			cli_json_put(o, "token_sha256", cli_json_str(hex), &jok);
			cli_json_put(o, "role", cli_json_str(role), &jok);
			cli_json_put(o, "services", list, &jok);
			list = NULL;
		}
		json_decref(list);
		rc = cli_print_json(ctx, cli_json_done(o, jok));
		goto out;
	}
	fprintf(ctx->out,
		"token: %s\n"
		"\n"
		"Give the token to the client (ERRQ_TOKEN, errq --token, errq_options_set_token,\n"
		"the Python package's token=); it is shown only here.  errqd keeps its SHA-256:\n"
		"paste this entry under 'credentials:' in errqd's config file, then reload\n"
		"(SIGHUP or 'errq rules reload'):\n"
		"\n"
		"  - name: %s\n"
		"    token_sha256: %s\n"
		"    role: %s\n",
		token, name, hex, role);
	if (a->nservices)
		fprintf(ctx->out, "    services: %s\n", svc.p);
	rc = fflush(ctx->out) || ferror(ctx->out) ? cli_output_error(errno) : CLI_EXIT_OK;
out:
	OPENSSL_cleanse(token, sizeof(token));
	errq_buf_free(&svc);
	return rc;
}
