/* errq_normalize.h: an error message with its variable parts replaced by placeholders, so
 * that the same error with other ids, numbers, addresses or times is one group (the
 * collector's grouping by message, server/grouping.c) and a storm of messages that differ
 * only by ids stays one group.  In common/ so that bench/ can measure it alone.
 *
 * The rules, in the order they are tried at each position (a "word" is a run of ASCII
 * letters, digits and '_'; the rules from the UUID on only start where a word starts):
 *   '...' "..." `...`   quoted value (a ' only opens after a non-word character, so the
 *                       apostrophe of "it's" does not)                               <str>
 *   ?k=v...             a URL's query string (after a non-space, up to a space or quote,
 *                       holding an '=')                                              ?<query>
 *   [v6]:port, ::1      IPv6 address, bracketed with an optional port, or starting "::" <ip>
 *   8-4-4-4-12 hex      UUID                                                         <uuid>
 *   2026-12-07T04:31:22.123Z, 2026-12-07 04:31:22+01:00, 2026-12-07, 04:31:22.5
 *                       ISO 8601 date and time (a bare time needs its seconds)      <ts>
 *   10.0.3.17:5432      IPv4 address with an optional port                           <ip>
 *   0x7ffd...           hex with its 0x                                              <hex>
 *   2001:db8::1         IPv6 address (groups of 1-4 hex digits, one "::" or eight groups,
 *                       at least one digit: "dead::beef" stays)                      <ip>
 *   bob.smith@example.com  e-mail address (the domain's last label letters only)     <email>
 *   250ms 3.5s 1h30m 3d a number with a time unit (ns us ms s sec secs m min mins h hr
 *                       hrs d)                                                       <duration>
 *   10MB 512b 4KiB      a number with a size unit (b k kb kib mb mib gb gib tb tib pb) <size>
 *   3000, 3.14, 1733545882   a number (epoch times included; "42%" is "<n>%")       <n>
 *   deadbeef12, 9fceb02 a word of ERRQ_NORMALIZE_HEX_MIN or more hex digits holding a
 *                       digit ("deadbeef", "cafe", "decade", "add2" stay words)      <hex>
 *   eyJhbGciOi...       a base64-ish token: a run of letters, digits, '_' '-' '+' '.'
 *                       (and '=' padding) of ERRQ_NORMALIZE_TOKEN_MIN or more bytes with
 *                       two or more digits, two or more letters, and a change between
 *                       lower case, upper case and digit at least every third character
 *                       ("ConnectionResetError2" stays a word)                       <token>
 * Anything else is copied: "3rd", "2xx", "64bit" stay words.
 *
 * Untrusted input: no allocation, each byte looked at a bounded number of times (the scans
 * that could re-read a run from each word inside it remember where the run ended), output
 * bounded by out_sz. */
#ifndef ERRQ_NORMALIZE_H
#define ERRQ_NORMALIZE_H
#include <stddef.h>

#define ERRQ_NORMALIZE_HEX_MIN 7    /* a git short hash; shorter hex-looking words stay */
#define ERRQ_NORMALIZE_TOKEN_MIN 16 /* shorter runs are words, never tokens */

/* Writes s normalized into out (always NUL-terminated when out_sz > 0) and returns the
 * length written.  When out is too small the result is cut: a literal part is written as far
 * as it fits, a placeholder whole or not at all, and nothing follows the cut, so any smaller
 * buffer receives a prefix of what a larger one receives. */
size_t errq_normalize_message(const char *s, char *out, size_t out_sz);
#endif
