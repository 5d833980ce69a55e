/* qbench_util.c: errq-query-bench, small helpers: sleeping, statistics over samples, numbers
 * for people, small files, the work directory.  See errq_query_bench.c for the order of
 * things. */
#include "qbench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errq_str.h"
#include "errq_time.h"
#include "errq_banned.h"

/* ---- small helpers ---- */

void qb_msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

double qb_ms_between(uint64_t t0, uint64_t t1)
{
	return (double)(t1 - t0) / 1e6;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct stats qb_stats_of(const struct samples *s)
{
	struct stats st = {0};
	if (!s->n)
		return st;
	double *v = malloc((size_t)s->n * sizeof(*v));
	if (!v)
		return st;
	memcpy(v, s->ms, (size_t)s->n * sizeof(*v));
	qsort(v, (size_t)s->n, sizeof(*v), cmp_dbl);
	int n = s->n;
	st.have = true;
	st.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	int r = (9 * n + 9) / 10; /* nearest rank: ceil(0.9 n) */
	st.p90 = v[(r < 1 ? 1 : r) - 1];
	st.min = v[0];
	st.max = v[n - 1];
	free(v);
	return st;
}

int qb_samples_alloc(struct samples *s, int n)
{
	s->n = 0;
	s->ms = calloc((size_t)n, sizeof(*s->ms));
	return s->ms ? 0 : -1;
}

/* "12 345 678": thousands separated by spaces, like the figures in the issues. */
const char *qb_thousands(char *buf, size_t sz, uint64_t v)
{
	char raw[32];
	int n = errq_snprintf(raw, sizeof(raw), "%" PRIu64, v);
	size_t o = 0;
	for (int i = 0; i < n && o + 2 < sz; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ' ';
		buf[o++] = raw[i];
	}
	buf[o] = '\0';
	return buf;
}

/* Reads up to QB_SMALL_FILE_MAX bytes of a file; the caller frees.  NULL when unreadable. */
char *qb_read_small(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = malloc(QB_SMALL_FILE_MAX + 1);
	size_t n = buf ? fread(buf, 1, QB_SMALL_FILE_MAX, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

/* The first line of a file, for a one-line error. */
void qb_first_line(const char *path, char *out, size_t sz)
{
	char *s = qb_read_small(path);
	out[0] = '\0';
	if (!s)
		return;
	char *p = s;
	while (*p == '\n')
		p++;
	p[strcspn(p, "\n")] = '\0';
	errq_snprintf(out, sz, "%s", p);
	free(s);
}

/* Removes the files of a flat directory, then the directory. */
void qb_remove_workdir(const char *dir)
{
	static const char *const files[] = {"fill.json", "fill.err", "cli.err"};
	char path[QB_PATH_MAX];
	for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
		errq_snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
		unlink(path);
	}
	if (rmdir(dir))
		fprintf(stderr, "errq-query-bench: cannot remove '%s': %s\n", dir, strerror(errno));
}
