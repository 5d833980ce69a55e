/* errq_banned.h: calls that must not be used in errq (after git's banned.h).
 * The standard headers are included first so the macros never hit their declarations;
 * a use of a banned call then fails to compile with a name that says why. */
#ifndef ERRQ_BANNED_H
#define ERRQ_BANNED_H
#include <stdio.h>
#include <string.h>
#include <time.h>

#define ERRQ_BANNED(func) sorry_##func##_is_banned_in_errq
#undef strcpy
#define strcpy(x, y) ERRQ_BANNED(strcpy)
#undef strcat
#define strcat(x, y) ERRQ_BANNED(strcat)
#undef strtok
#define strtok(x, y) ERRQ_BANNED(strtok)
#undef sprintf
#define sprintf(...) ERRQ_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) ERRQ_BANNED(vsprintf)
#undef gets
#define gets(x) ERRQ_BANNED(gets)
#undef gmtime
#define gmtime(t) ERRQ_BANNED(gmtime)
#undef localtime
#define localtime(t) ERRQ_BANNED(localtime)
#undef ctime
#define ctime(t) ERRQ_BANNED(ctime)
#undef asctime
#define asctime(t) ERRQ_BANNED(asctime)
#endif
