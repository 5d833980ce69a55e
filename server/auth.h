/* auth.h: who may call errqd — the `credentials:` list of the config file, and the check of
 * every gRPC call by an auth metadata processor (docs/security.md is the reference).
 *
 * A credential maps one client identity to one role:
 *   - a bearer token (`authorization: Bearer TOKEN`), stored only as its SHA-256
 *     (`token_sha256`), compared in constant time; or
 *   - an mTLS identity (`tls_identity`): the subject CN or a SAN of the verified client
 *     certificate (the auth context's x509_common_name / x509_subject_alternative_name).
 * Roles: ingest (Report, for the `services` globs it lists), read (queries), admin (read and
 * every write: status changes, silences, replays, rule reloads, backups).
 *
 * The processor (auth_attach) maps the call's :path to the role it needs (auth_methods[]:
 * every method errqd serves; an unknown one is refused; grpc.health.v1 is open) and answers
 * UNAUTHENTICATED (no or unknown credential) or PERMISSION_DENIED (wrong role).  It writes
 * nothing into the auth context, which gRPC shares among all calls of a connection; the
 * Report service finds the caller's credential again with auth_identity, to reject, per
 * event, services it may not report.
 * With no credential configured every call passes (open mode; main.c allows it only on a
 * loopback listener or with auth.open: true).
 *
 * Threads: the processor runs on gRPC's threads; the table in force is swapped under a mutex
 * and reference counted, so a reload (auth_reload, from the writer thread or main) never
 * frees a table a check is using.  Tokens are never logged or kept after the check. */
#ifndef ERRQD_AUTH_H
#define ERRQD_AUTH_H
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds: a file past one of them is refused with the limit in the message. */
#define AUTH_MAX_ENTRIES 256      /* credentials in the file */
#define AUTH_NAME_MAX 64          /* a credential's name, bytes with the NUL: [A-Za-z0-9_.@-] */
#define AUTH_MAX_SERVICES 64      /* services globs of one ingest credential */
#define AUTH_SERVICE_MAX 129      /* a services glob, bytes with the NUL (VALIDATE_MAX_SERVICE + 1) */
#define AUTH_IDENTITY_MAX 256     /* a tls_identity, bytes with the NUL */
/* A presented token longer than this is refused (UNAUTHENTICATED) without being hashed;
 * `errq token new` makes tokens of 48 bytes. */
#define AUTH_TOKEN_MAX 512
#define AUTH_TOKEN_PREFIX "errq_"
#define AUTH_TOKEN_RANDOM_BYTES 32 /* of a token made by `errq token new` */
#define AUTH_PEER_IDS_MAX 16      /* certificate names (CN + SANs) looked at per call */
#define AUTH_LOG_INTERVAL_S 10    /* refused calls are logged at most once per interval */

enum auth_role { AUTH_ROLE_OPEN = 0, AUTH_ROLE_INGEST, AUTH_ROLE_READ, AUTH_ROLE_ADMIN };
const char *auth_role_name(enum auth_role r);

/* The role each method needs; methods not listed are refused. */
struct auth_method {
	const char *path; /* "/errq.v1.Query/ListEvents" */
	enum auth_role role;
};
extern const struct auth_method auth_methods[];
extern const size_t auth_n_methods;
/* The role path needs, or -1 when it is not errqd's (refused).  Every path under
 * "/grpc.health.v1.Health/" is open. */
int auth_method_role(const char *path, size_t len);

/* ---- the credentials of a file ---- */
struct auth_cred {
	char name[AUTH_NAME_MAX];
	int line;
	bool has_token;
	uint8_t token_sha256[32];
	char tls_identity[AUTH_IDENTITY_MAX]; /* "" when has_token */
	enum auth_role role;
	char (*services)[AUTH_SERVICE_MAX]; /* ingest: globs (fnmatch, "*" = all) */
	size_t n_services;
};
struct auth_table {
	struct auth_cred *creds;
	size_t n;
	int refs; /* under struct auth's mutex */
};

/* Reads the `credentials:` list of a YAML config file (other top-level keys are skipped).
 * No list is an empty table.  Returns 0 with *out (free with auth_table_free), or -1 with
 * "'FILE' line N: credentials[I]: ..." in err. */
int auth_table_load(struct auth_table **out, const char *path, char *err, size_t errsz);
int auth_table_load_mem(struct auth_table **out, const char *name, const char *text, size_t len, char *err,
			size_t errsz);
void auth_table_free(struct auth_table *t); /* accepts NULL */

/* ---- the check, pure (the processor's decision; unit-tested as is) ---- */
struct auth_decision {
	grpc_status_code status; /* OK, UNAUTHENTICATED or PERMISSION_DENIED */
	char msg[160];           /* why, for the client (never the token) */
	const struct auth_cred *cred; /* OK with credentials: who; NULL in open mode or for health */
	enum auth_role need;
};
/* Decides a call to path (len bytes) with the value of its authorization header (NULL:
 * none; n_authz: how many such headers came) and the peer's certificate names. */
void auth_decide(const struct auth_table *t, const char *path, size_t len, const char *authz, size_t authz_len,
		 int n_authz, const char *const *peer_ids, const size_t *peer_id_lens, size_t n_peer_ids,
		 struct auth_decision *d);
/* The SHA-256 of a token, as stored in token_sha256. */
void auth_token_hash(const char *token, size_t len, uint8_t out[32]);
/* Whether service is one of cred's globs (always for a non-ingest role). */
bool auth_cred_allows(const struct auth_cred *c, const char *service);

/* ---- the table in force ---- */
/* What a table must satisfy to be put in force (at start and on every reload). */
struct auth_policy {
	const char *listen;   /* the gRPC listener, for messages */
	bool open_ok;         /* no credentials allowed: listen is loopback, or auth.open: true */
	bool tls_verified;    /* client certificates are verified (tls.client_ca): tls_identity usable */
};
/* 0 when t may be put in force under p, else -1 with the reason in err. */
int auth_table_check(const struct auth_table *t, const struct auth_policy *p, char *err, size_t errsz);
struct auth;
/* Takes t (NULL: empty; freed on failure) after auth_table_check.  p->listen is copied.
 * Returns 0, or -1 with err. */
int auth_new(struct auth **out, struct auth_table *t, const struct auth_policy *p, char *err, size_t errsz);
void auth_free(struct auth *a); /* after the server is gone; accepts NULL */
size_t auth_count(struct auth *a); /* credentials in force */
/* Reads the credentials of path, checks them and swaps them in.  Returns 0, or -1 with the
 * reason in err (the table in force stays). */
int auth_reload(struct auth *a, const char *path, char *err, size_t errsz);
/* The same in two steps, for a reload that must also succeed elsewhere (the rules): prepare
 * reads and checks (NULL with err on failure); commit swaps it in (taking it over); an
 * uncommitted table is freed with auth_table_free. */
struct auth_table *auth_reload_prepare(struct auth *a, const char *path, char *err, size_t errsz);
void auth_reload_commit(struct auth *a, struct auth_table *t);
/* Installs the processor on creds (insecure or TLS server credentials), before they are
 * given to grpc_server_add_http2_port.  a must outlive the server. */
void auth_attach(struct auth *a, grpc_server_credentials *creds);

/* ---- the Report service's per-event check ---- */
/* The name of the credential a call to path presents ("" when none: open mode, health, or a
 * credential gone since the processor let the call in) into buf, decided again from the
 * call's request metadata md and the connection's certificate names.  a may be NULL. */
void auth_identity(struct auth *a, const char *path, const grpc_metadata_array *md, grpc_call *call, char *buf,
		   size_t bufsz);
/* A look at the table in force for one batch: begin, any number of allows, end. */
struct auth_scope {
	struct auth *a;
	struct auth_table *t;
	const struct auth_cred *cred; /* the caller's credential, NULL when none matched */
	const char *identity;
};
/* a may be NULL (no check).  identity: auth_identity's answer. */
void auth_scope_begin(struct auth *a, const char *identity, struct auth_scope *s);
/* 0 when the caller may report service, else -1 with "service_not_allowed: ..." in reason. */
int auth_scope_allows(const struct auth_scope *s, const char *service, char *reason, size_t rsz);
void auth_scope_end(struct auth_scope *s);

/* Whether HOST:PORT listens on loopback only (127.0.0.0/8, ::1, localhost). */
bool auth_listen_is_loopback(const char *listen);
#endif
