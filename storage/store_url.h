/* store_url.h: the database setting (`database:` / `--db`), which names the backend too.
 *
 *   a bare path, or sqlite:///abs/path (sqlite://rel/path too)  SQLite, that file
 *   postgres://... or postgresql://...                           PostgreSQL: the text is passed
 *        to libpq whole, as its conninfo (libpq reads PGPASSFILE, PGPASSWORD and PG* itself)
 *
 * Any other scheme:// is refused, so a typing error never becomes a SQLite file named like a
 * URL.  A password may be in the URL: every message, log line and status string that names the
 * database uses store_url_redact. */
#ifndef ERRQ_STORE_URL_H
#define ERRQ_STORE_URL_H
#include <stddef.h>

enum store_url_kind { STORE_URL_SQLITE = 0, STORE_URL_POSTGRES = 1 };

#define STORE_URL_MAX 1024 /* bytes of a database setting, its NUL included (errqd's SETTINGS_STR_MAX) */
/* a buffer for store_url_redact: the URL and room for a few "***" longer than what they hide */
#define STORE_URL_REDACTED_MAX (STORE_URL_MAX + 64)
#define STORE_URL_REDACTED "***"

struct store_url {
	int kind;                 /* enum store_url_kind */
	char path[STORE_URL_MAX]; /* SQLite: the file's path; PostgreSQL: "" */
};

/* Parses db into *u.  Returns 0, or -1 with a reason in err ("database '...': ..."; the
 * database quoted redacted). */
int store_url_parse(const char *db, struct store_url *u, char *err, size_t errsz);
/* The kind of db (STORE_URL_SQLITE for anything that is not a postgres URL: the parse says
 * whether it is usable). */
int store_url_kind(const char *db);
/* db for messages: a postgres URL (or one of another scheme, which errq refuses quoting it)
 * with the password of its user part and the values of its
 * password and sslpassword parameters replaced by "***" (where the URL is ambiguous, a raw '@'
 * or '?' in a password, more is hidden, never less); anything else as it is.  Writes into buf
 * (always NUL-terminated; a URL that does not fit, or hides more than 16 passwords, is written
 * as "postgres://(redacted)"; "" when even that does not fit) and returns buf.  SQLite's
 * paths and sqlite:// URLs as they are. */
const char *store_url_redact(const char *db, char *buf, size_t bufsz);

#define STORE_URL_SCRUB_MAX 1024 /* bytes of a message store_url_scrub looks into; a longer one is replaced */
#define STORE_URL_SCRUB_RUN 4    /* a password's bytes in a message: runs this long are hidden */
#define STORE_URL_SCRUBBED "(message withheld: it might quote the database's password)"
/* Hides in msg (NUL-terminated, msgsz bytes) what it quotes of db's passwords: libpq's
 * messages may quote part of a malformed URL (a bad percent-escape's token, a password's part
 * after a raw '@' read as the host).  Every run of STORE_URL_SCRUB_RUN or more bytes that is
 * also in a password (as written or percent-decoded; a shorter password: all of it) becomes
 * "***".  A db without a password leaves msg as it is. */
void store_url_scrub(const char *db, char *msg, size_t msgsz);
#endif
