/* hist.c: a log-bucket histogram (after HdrHistogram) of bounded size.
 * Values below 2 * HIST_SUB have a bucket each; above, each power of two is split into
 * HIST_SUB buckets, so a bucket is at most 1/HIST_SUB (0.8 %) wide relative to its values. */
#include <string.h>

#include "bench.h"
#include "errq_banned.h"

static unsigned bucket_of(uint64_t v)
{
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - HIST_SUB_BITS; /* >= 1 */
	return 2 * HIST_SUB + (shift - 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The highest value that falls in bucket b. */
static uint64_t bucket_high(unsigned b)
{
	if (b < 2 * HIST_SUB)
		return b;
	unsigned shift = (b - 2 * HIST_SUB) / HIST_SUB + 1;
	uint64_t m = HIST_SUB + (b - 2 * HIST_SUB) % HIST_SUB;
	return ((m + 1) << shift) - 1;
}

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void hist_record(struct hist *h, uint64_t v)
{
	h->counts[bucket_of(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
	if (v < h->min)
		h->min = v;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->counts[i] += from->counts[i];
	into->n += from->n;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
	if (from->min < into->min)
		into->min = from->min;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (!h->n)
		return 0;
	if (q <= 0)
		return h->min;
	double want = q * (double)h->n;
	uint64_t rank = (uint64_t)want; /* the rank-th smallest value, 1-based: ceil(q * n) */
	if ((double)rank < want)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	uint64_t seen = 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h->counts[b];
		if (seen >= rank) {
			uint64_t v = bucket_high(b);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}
