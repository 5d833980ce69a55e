/* errq_file.c: see errq_file.h. */
#include "errq_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_banned.h"

int errq_file_read(const char *path, size_t max, char **out, size_t *len, char *err, size_t errsz)
{
	int rc = -1, fd = -1;
	char *buf = NULL;
	size_t n = 0;
	struct stat sb;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		errq_snprintf(err, errsz, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		errq_snprintf(err, errsz, "cannot read '%s': not a regular file", path);
		goto out;
	}
	if (sb.st_size <= 0 || (uint64_t)sb.st_size > max) {
		errq_snprintf(err, errsz, sb.st_size <= 0 ? "'%s' is empty" : "'%s' is larger than %zu bytes", path,
			      max);
		goto out;
	}
	if (!(buf = malloc((size_t)sb.st_size + 1))) {
		errq_snprintf(err, errsz, "cannot read '%s': out of memory", path);
		goto out;
	}
	while (n < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)sb.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			errq_snprintf(err, errsz, "cannot read '%s': %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break; /* shrank while being read: take what is there */
		n += (size_t)r;
	}
	if (!n || memchr(buf, '\0', n)) {
		errq_snprintf(err, errsz, n ? "'%s' holds a NUL byte (not PEM text)" : "'%s' is empty", path);
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
	if (len)
		*len = n;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}
