/* errq_str.h: bounded growable buffers, UTF-8 checks, hex and JSON string escaping. */
#ifndef ERRQ_STR_H
#define ERRQ_STR_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer with a hard cap (after curl's dynbuf): an append that would pass
 * `toobig` fails with -1 and leaves the buffer as it was.  The content is always
 * NUL-terminated.  errq_buf_init allocates nothing; errq_buf_free releases and re-inits. */
struct errq_buf {
	char *p;
	size_t len;
	size_t cap;
	size_t toobig;
	bool failed; /* some append failed since init or reset: check once after many appends */
};

void errq_buf_init(struct errq_buf *b, size_t toobig);
/* A buffer over caller memory (a stack array): it never grows past n - 1 bytes of content and
 * must not be freed with errq_buf_free. */
void errq_buf_init_fixed(struct errq_buf *b, char *mem, size_t n);
void errq_buf_free(struct errq_buf *b);
void errq_buf_reset(struct errq_buf *b); /* len = 0, failed = false, keeps the memory */
int errq_buf_add(struct errq_buf *b, const void *p, size_t n);
int errq_buf_addstr(struct errq_buf *b, const char *s);
int errq_buf_printf(struct errq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int errq_buf_vprintf(struct errq_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included; invalid UTF-8 bytes become U+FFFD. */
int errq_buf_add_json_str(struct errq_buf *b, const char *s, size_t n);

/* True when s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
 * On false, *bad_off (if not NULL) is the offset of the first bad byte. */
bool errq_utf8_valid(const char *s, size_t n, size_t *bad_off);

/* Decodes the UTF-8 sequence at s[0..n) into *cp: returns its length (1..4), or 0 when it is
 * invalid (overlong, surrogate, past U+10FFFF, cut short). */
size_t errq_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* The largest length <= max that does not cut a UTF-8 sequence of valid s[0..n). */
size_t errq_utf8_trunc_len(const char *s, size_t n, size_t max);

/* s as an error message quotes it: s itself when it has at most ERRQ_QUOTE_MAX bytes, else its
 * first ERRQ_QUOTE_MAX bytes (cut at a character boundary) and "..." in buf.  So that a long
 * value or key never pushes the reason out of a bounded message. */
#define ERRQ_QUOTE_MAX 64
#define ERRQ_QUOTE_BUFSZ (ERRQ_QUOTE_MAX + 4)
const char *errq_quote(const char *s, char buf[ERRQ_QUOTE_BUFSZ]);

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void errq_hex_encode(const uint8_t *p, size_t n, char *out);
/* Decodes exactly 2n hex digits of s into out[n].  Returns 0 or -1. */
int errq_hex_decode(const char *s, uint8_t *out, size_t n);

/* snprintf into a fixed buffer, always NUL-terminated; returns the would-be length. */
int errq_snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
