/* cli_spark.c: sparklines for the errq CLI: counts bucketed to a width and drawn with block characters.  Pure: see cli_fmt.h. */
#include "cli_fmt.h"

#include <stdlib.h>
#include <string.h>

#include "errq_banned.h"


/* ---- sparklines ---- */

size_t cli_spark_buckets(const uint64_t *counts, size_t n, uint64_t *out, size_t cols)
{
	if (cols > CLI_SPARK_MAX_COLS)
		cols = CLI_SPARK_MAX_COLS;
	if (n <= cols)
		cols = n;
	for (size_t k = 0; k < cols; k++) {
		size_t lo = k * n / cols, hi = (k + 1) * n / cols;
		uint64_t sum = 0;
		for (size_t i = lo; i < hi; i++)
			sum = counts[i] > UINT64_MAX - sum ? UINT64_MAX : sum + counts[i];
		out[k] = sum;
	}
	return cols;
}

int cli_sparkline(struct errq_buf *b, const uint64_t *counts, size_t n, size_t cols, uint64_t *maxp)
{
	static const char *const blocks[CLI_SPARK_LEVELS] = {
	    "\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
	    "\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88",
	};
	uint64_t bucket[CLI_SPARK_MAX_COLS], max = 0;
	size_t start = b->len, nb = cli_spark_buckets(counts, n, bucket, cols);
	for (size_t k = 0; k < nb; k++)
		if (bucket[k] > max)
			max = bucket[k];
	if (maxp)
		*maxp = max;
	for (size_t k = 0; k < nb; k++) {
		int rc;
		if (!bucket[k]) {
			rc = errq_buf_add(b, " ", 1);
		} else {
			/* ceil(v * levels / max), in 1..levels; long double keeps huge counts exact enough */
			long double x = (long double)bucket[k] * CLI_SPARK_LEVELS / (long double)max;
			size_t level = (size_t)x;
			if ((long double)level < x)
				level++;
			if (level < 1)
				level = 1;
			if (level > CLI_SPARK_LEVELS)
				level = CLI_SPARK_LEVELS;
			rc = errq_buf_addstr(b, blocks[level - 1]);
		}
		if (rc) {
			b->len = start;
			if (b->p)
				b->p[start] = '\0';
			return -1;
		}
	}
	/* an empty line still leaves a NUL-terminated (allocated) buffer */
	return errq_buf_add(b, "", 0);
}
