/* admin.h: errqd's administrative commands (`errqd admin ...`), run instead of the collector. */
#ifndef ERRQD_ADMIN_H
#define ERRQD_ADMIN_H

/* Exit codes of `errqd admin migrate` (docs/operations.md, "Moving from SQLite to
 * PostgreSQL"): distinct so that a script can tell what to fix.  1 stays errqd's own (an
 * unknown admin command is a usage error: 2). */
#define ADMIN_EXIT_OK 0
#define ADMIN_EXIT_USAGE 2  /* bad arguments */
#define ADMIN_EXIT_SOURCE 3 /* the SQLite source: missing, in use, unreadable */
#define ADMIN_EXIT_TARGET 4 /* the PostgreSQL target: unreachable, not empty, a write refused */
#define ADMIN_EXIT_VERIFY 5 /* copied, but the counts differ: rolled back */

/* `errqd admin SUBCOMMAND ...`: argv[0] is "admin".  Returns the exit code. */
int admin_main(int argc, char **argv);
#endif
