/* errq_assert.h: checked invariants for the daemon (server/, storage/, rules/), kept in
 * release builds, as SQLite's and git's BUG() are.
 *
 * ERRQ_ASSERT(e) is for a broken invariant the code states — the right thread, a state
 * machine edge, a bound that cannot be passed — never for bad input, I/O, network or SQL
 * failures (those return errors).  When e is false it logs "BUG: file:line: e" at error
 * level, writes the same line to stderr (the log may be the broken part) and aborts: going on
 * with a broken invariant risks the database and acknowledged events.  Keep e cheap: it runs
 * on every call in release builds (a comparison, a pthread_equal; nothing that locks, allocates
 * or walks a list).
 *
 * Never include this in client/: liberrq must not abort its host process (STYLE.md 8). */
#ifndef ERRQ_ASSERT_H
#define ERRQ_ASSERT_H
#ifdef ERRQ_EXPORT /* errq.h, the client library's header, came first */
#error "errq_assert.h aborts: it is for the daemon, never for liberrq (client/)"
#endif
#include <stdio.h>
#include <stdlib.h>

#include "errq_log.h"

#define ERRQ_ASSERT(e) ((e) ? (void)0 : errq__assert_fail(__FILE__, __LINE__, #e))
/* An invariant broken on a path the code cannot take: ERRQ_BUG("unknown request kind"). */
#define ERRQ_BUG(what) errq__assert_fail(__FILE__, __LINE__, what)

__attribute__((noreturn, cold)) static inline void errq__assert_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "BUG: %s:%d: %s\n", file, line, what);
	errq_log(ERRQ_LOG_ERROR, "BUG: %s:%d: %s", file, line, what);
	abort();
}
#endif
