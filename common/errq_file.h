/* errq_file.h: a small file read whole, with a size limit (PEM certificates and keys for
 * errqd's TLS listener and the CLI's --ca/--cert/--key). */
#ifndef ERRQ_FILE_H
#define ERRQ_FILE_H
#include <stddef.h>

/* Reads the regular file at path whole into a new NUL-terminated string (*out; the caller
 * frees it, and wipes it first when it holds a secret), its length in *len (may be NULL).
 * Refused: not a regular file, empty, larger than max bytes, or holding a NUL byte.  Returns
 * 0, or -1 with a reason quoting the path in err ("cannot read 'P': No such file or
 * directory", "'P' is larger than N bytes"). */
int errq_file_read(const char *path, size_t max, char **out, size_t *len, char *err, size_t errsz);
#endif
