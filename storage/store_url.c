/* store_url.c: parsing and redacting the database setting (store_url.h). */
#include "store_url.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "errq_str.h"
#include "errq_banned.h"

static const char *const pg_schemes[] = {"postgres://", "postgresql://"};
#define SQLITE_SCHEME "sqlite://"
#define PARAM_NAME_MAX 32 /* a parameter name longer than this is no password parameter */
#define REDACT_SPANS_MAX 16 /* passwords hidden in one URL; a URL with more prints as a whole redacted */

/* The length of the postgres scheme db starts with (with its "://"), or 0. */
static size_t pg_prefix(const char *db)
{
	for (size_t i = 0; i < sizeof(pg_schemes) / sizeof(pg_schemes[0]); i++)
		if (strncmp(db, pg_schemes[i], strlen(pg_schemes[i])) == 0)
			return strlen(pg_schemes[i]);
	return 0;
}

/* The length of a URL scheme at db's start (RFC 3986: ALPHA *(ALPHA / DIGIT / + - .)) that is
 * followed by "://", or 0. */
static size_t scheme_len(const char *db)
{
	size_t n = 0;
	if (!isalpha((unsigned char)db[0]))
		return 0;
	while (isalnum((unsigned char)db[n]) || db[n] == '+' || db[n] == '-' || db[n] == '.')
		n++;
	return strncmp(db + n, "://", 3) == 0 ? n : 0;
}

int store_url_kind(const char *db)
{
	return db && pg_prefix(db) ? STORE_URL_POSTGRES : STORE_URL_SQLITE;
}

int store_url_parse(const char *db, struct store_url *u, char *err, size_t errsz)
{
	char red[STORE_URL_REDACTED_MAX];
	memset(u, 0, sizeof(*u));
	if (!db || !*db) {
		errq_snprintf(err, errsz, "the database setting is empty: give a file path, sqlite:///PATH or postgres://...");
		return -1;
	}
	if (strlen(db) >= STORE_URL_MAX) {
		errq_snprintf(err, errsz, "database '%.48s...' is longer than %d bytes", store_url_redact(db, red, sizeof(red)),
			      STORE_URL_MAX - 1);
		return -1;
	}
	if (pg_prefix(db)) {
		u->kind = STORE_URL_POSTGRES;
		return 0;
	}
	const char *path = db;
	if (strncmp(db, SQLITE_SCHEME, strlen(SQLITE_SCHEME)) == 0) {
		path = db + strlen(SQLITE_SCHEME); /* sqlite:///abs -> /abs, sqlite://rel -> rel */
		if (!*path) {
			errq_snprintf(err, errsz, "database '%s' names no file (sqlite:///ABSOLUTE/PATH or sqlite://RELATIVE/PATH)", db);
			return -1;
		}
	}
	size_t sl = scheme_len(path);
	if (sl) {
		errq_snprintf(err, errsz, "database '%s': unknown scheme '%.*s://' (a file path, sqlite:///PATH, postgres:// or postgresql://)",
			      store_url_redact(db, red, sizeof(red)), (int)(sl > 32 ? 32 : sl), path);
		return -1;
	}
	u->kind = STORE_URL_SQLITE;
	errq_snprintf(u->path, sizeof(u->path), "%s", path);
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Whether the n bytes at p, percent-decoded as libpq decodes parameter names, are a password
 * parameter's name. */
static bool password_param(const char *p, size_t n)
{
	char name[PARAM_NAME_MAX + 1];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k == PARAM_NAME_MAX)
			return false;
		if (p[i] == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
			name[k++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
			i += 2;
		} else {
			name[k++] = p[i];
		}
	}
	name[k] = '\0';
	return strcmp(name, "password") == 0 || strcmp(name, "sslpassword") == 0;
}

struct span {
	size_t from, to; /* [from, to) of the URL, replaced by STORE_URL_REDACTED */
};

/* Adds [from, to) to the sorted, disjoint spans (merging overlaps).  -1 when full. */
static int span_add(struct span *sp, size_t *n, size_t from, size_t to)
{
	size_t i = 0;
	while (i < *n && sp[i].to < from)
		i++;
	if (i < *n && sp[i].from <= to) { /* overlaps sp[i] (and maybe the next ones) */
		if (from < sp[i].from)
			sp[i].from = from;
		if (to > sp[i].to)
			sp[i].to = to;
		while (i + 1 < *n && sp[i + 1].from <= sp[i].to) {
			if (sp[i + 1].to > sp[i].to)
				sp[i].to = sp[i + 1].to;
			memmove(&sp[i + 1], &sp[i + 2], (*n - i - 2) * sizeof(*sp));
			(*n)--;
		}
		return 0;
	}
	if (*n == REDACT_SPANS_MAX)
		return -1;
	memmove(&sp[i + 1], &sp[i], (*n - i) * sizeof(*sp));
	sp[i] = (struct span){from, to};
	(*n)++;
	return 0;
}

/* Appends the n bytes at p to buf (holding *len bytes and a NUL, bufsz in all).  -1 when they
 * do not fit.  (Not errq_buf: lint_sql reads every errq_buf append in storage/ as SQL.) */
static int put(char *buf, size_t bufsz, size_t *len, const char *p, size_t n)
{
	if (n >= bufsz - *len)
		return -1;
	memcpy(buf + *len, p, n);
	*len += n;
	buf[*len] = '\0';
	return 0;
}

/* The spans of db that hold a password (sorted, disjoint) and the length of its scheme; *full
 * when there were more than REDACT_SPANS_MAX.  0 spans and pre 0 for what is no URL. */
static size_t password_spans(const char *db, struct span *sp, size_t *pre_out, bool *full)
{
	size_t nsp = 0;
	*full = false;
	/* a postgres URL, or one of a scheme errq refuses (its message quotes it); SQLite's are paths */
	size_t pre = db ? pg_prefix(db) : 0;
	if (db && !pre && strncmp(db, SQLITE_SCHEME, strlen(SQLITE_SCHEME)) != 0 && scheme_len(db))
		pre = scheme_len(db) + 3;
	*pre_out = pre;
	if (!pre)
		return 0;
	size_t len = strlen(db);
	/* The password of the user part: from the first ':' to the last '@' of the URL.  libpq
	 * ends the user part at the first '@' before any '/', but a password may hold a raw '@',
	 * '/' or '?' (libpq then reads it otherwise, or fails): this hides more rather than less
	 * (an '@' in a parameter's value hides the host too). */
	const char *at = strrchr(db + pre, '@');
	const char *colon = at ? memchr(db + pre, ':', (size_t)(at - db - pre)) : NULL;
	if (colon)
		*full |= span_add(sp, &nsp, (size_t)(colon + 1 - db), (size_t)(at - db)) != 0;
	/* Parameters: each "name=value" after a '?' or a '&' anywhere (a raw one in a password
	 * only hides more): a password's value goes, up to the next '&'. */
	for (size_t i = pre; i < len; i++) {
		if (db[i] != '?' && db[i] != '&')
			continue;
		size_t n = strcspn(db + i + 1, "&");
		const char *eq = memchr(db + i + 1, '=', n);
		if (eq && password_param(db + i + 1, (size_t)(eq - db - i - 1)))
			*full |= span_add(sp, &nsp, (size_t)(eq + 1 - db), i + 1 + n) != 0;
	}
	return nsp;
}

const char *store_url_redact(const char *db, char *buf, size_t bufsz)
{
	struct span sp[REDACT_SPANS_MAX];
	size_t pre;
	bool full;
	if (!bufsz)
		return buf;
	size_t nsp = password_spans(db, sp, &pre, &full);
	if (!pre) {
		errq_snprintf(buf, bufsz, "%s", db ? db : "");
		return buf;
	}
	size_t len = strlen(db);
	size_t pos = 0, n = 0;
	int rc = 0;
	for (size_t k = 0; k < nsp && !rc; k++) {
		rc = put(buf, bufsz, &n, db + pos, sp[k].from - pos) || put(buf, bufsz, &n, STORE_URL_REDACTED, strlen(STORE_URL_REDACTED));
		pos = sp[k].to;
	}
	rc = rc || put(buf, bufsz, &n, db + pos, len - pos);
	/* cut short: never a prefix that might end inside a password, but "scheme://(redacted)" */
	if ((rc || full) && (size_t)errq_snprintf(buf, bufsz, "%.*s(redacted)", (int)pre, db) >= bufsz)
		buf[0] = '\0';
	return buf;
}

/* Marks in hide[] every run of msg (length mlen) of at least min bytes that is also in the n
 * bytes at pw. */
static void mark_runs(const char *msg, size_t mlen, const char *pw, size_t n, size_t min, bool *hide)
{
	for (size_t i = 0; i < mlen; i++)
		for (size_t j = 0; j < n; j++) {
			size_t k = 0;
			while (i + k < mlen && j + k < n && msg[i + k] == pw[j + k])
				k++;
			if (k >= min)
				for (size_t x = i; x < i + k; x++)
					hide[x] = true;
		}
}

void store_url_scrub(const char *db, char *msg, size_t msgsz)
{
	struct span sp[REDACT_SPANS_MAX];
	size_t pre;
	bool full;
	size_t nsp = password_spans(db, sp, &pre, &full);
	size_t mlen = msg && msgsz ? strnlen(msg, msgsz - 1) : 0;
	if (!nsp || !mlen)
		return;
	if (full || mlen > STORE_URL_SCRUB_MAX) {
		errq_snprintf(msg, msgsz, "%s", STORE_URL_SCRUBBED);
		return;
	}
	bool hide[STORE_URL_SCRUB_MAX] = {false};
	char dec[STORE_URL_MAX];
	for (size_t k = 0; k < nsp; k++) {
		const char *pw = db + sp[k].from;
		size_t n = sp[k].to - sp[k].from, dn = 0;
		/* as written, and percent-decoded as libpq reads it */
		for (size_t i = 0; i < n && dn < sizeof(dec); i++) {
			if (pw[i] == '%' && i + 2 < n && hexval(pw[i + 1]) >= 0 && hexval(pw[i + 2]) >= 0) {
				dec[dn++] = (char)(hexval(pw[i + 1]) * 16 + hexval(pw[i + 2]));
				i += 2;
			} else {
				dec[dn++] = pw[i];
			}
		}
		mark_runs(msg, mlen, pw, n, n < STORE_URL_SCRUB_RUN ? n : STORE_URL_SCRUB_RUN, hide);
		mark_runs(msg, mlen, dec, dn, dn < STORE_URL_SCRUB_RUN ? dn : STORE_URL_SCRUB_RUN, hide);
	}
	char out[STORE_URL_SCRUB_MAX + 1];
	size_t o = 0;
	int rc = 0;
	for (size_t i = 0; i < mlen && !rc; i++) {
		if (!hide[i]) {
			rc = put(out, sizeof(out), &o, msg + i, 1);
		} else if (i == 0 || !hide[i - 1]) {
			rc = put(out, sizeof(out), &o, STORE_URL_REDACTED, strlen(STORE_URL_REDACTED));
		}
	}
	/* what does not fit is cut at a run's start: never a part of a password */
	errq_snprintf(msg, msgsz, "%s", o ? out : "");
}
