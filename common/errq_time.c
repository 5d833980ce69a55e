#include "errq_time.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "errq_banned.h"
#include "errq_str.h"

uint64_t errq_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * ERRQ_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t errq_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * ERRQ_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

char *errq_fmt_rfc3339(char *buf, uint64_t ns)
{
	time_t secs = (time_t)(ns / ERRQ_NS_PER_SEC);
	unsigned ms = (unsigned)((ns % ERRQ_NS_PER_SEC) / ERRQ_NS_PER_MS);
	struct tm tm;
	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, ERRQ_RFC3339_BUFSZ, "invalid-time");
		return buf;
	}
	snprintf(buf, ERRQ_RFC3339_BUFSZ, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	return buf;
}

int errq_parse_duration(const char *s, uint64_t *ns)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t unit;
	if (strcmp(end, "ms") == 0)
		unit = ERRQ_NS_PER_MS;
	else if (strcmp(end, "s") == 0)
		unit = ERRQ_NS_PER_SEC;
	else if (strcmp(end, "m") == 0)
		unit = 60 * ERRQ_NS_PER_SEC;
	else if (strcmp(end, "h") == 0)
		unit = 3600 * ERRQ_NS_PER_SEC;
	else if (strcmp(end, "d") == 0)
		unit = 86400 * ERRQ_NS_PER_SEC;
	else
		return -1;
	if (v > UINT64_MAX / unit)
		return -1;
	*ns = (uint64_t)v * unit;
	return 0;
}

char *errq_fmt_duration(char buf[ERRQ_DURATION_BUFSZ], uint64_t ns)
{
	static const struct {
		uint64_t ns;
		const char *unit;
	} units[] = {{86400 * ERRQ_NS_PER_SEC, "d"}, {3600 * ERRQ_NS_PER_SEC, "h"}, {60 * ERRQ_NS_PER_SEC, "m"},
		     {ERRQ_NS_PER_SEC, "s"},	      {ERRQ_NS_PER_MS, "ms"}};
	if (ns == 0) {
		errq_snprintf(buf, ERRQ_DURATION_BUFSZ, "0s");
		return buf;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ns % units[i].ns == 0) {
			errq_snprintf(buf, ERRQ_DURATION_BUFSZ, "%" PRIu64 "%s", ns / units[i].ns, units[i].unit);
			return buf;
		}
	errq_snprintf(buf, ERRQ_DURATION_BUFSZ, "%" PRIu64 "ns", ns);
	return buf;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int take_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int errq_parse_rfc3339(const char *s, uint64_t *ns)
{
	int Y, M, D, h, m, sec;
	const char *p = s;
	if (take_digits(&p, 4, &Y) || *p++ != '-' || take_digits(&p, 2, &M) || *p++ != '-' ||
	    take_digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if (take_digits(&p, 2, &h) || *p++ != ':' || take_digits(&p, 2, &m) || *p++ != ':' ||
	    take_digits(&p, 2, &sec))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 || Y < 1970)
		return -1;
	uint64_t frac = 0;
	if (*p == '.') {
		p++;
		uint64_t scale = ERRQ_NS_PER_SEC;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p)) {
			scale /= 10;
			frac += (uint64_t)(*p - '0') * scale;
			p++;
		}
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (take_digits(&p, 2, &oh) || *p++ != ':' || take_digits(&p, 2, &om))
			return -1;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	int64_t secs = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + m * 60 + sec - off;
	if (secs < 0)
		return -1;
	*ns = (uint64_t)secs * ERRQ_NS_PER_SEC + frac;
	return 0;
}

int errq_parse_since(const char *s, uint64_t now_ns, uint64_t *since_ns)
{
	uint64_t d;
	if (errq_parse_duration(s, &d) == 0) {
		*since_ns = d >= now_ns ? 1 : now_ns - d;
		return 0;
	}
	return errq_parse_rfc3339(s, since_ns);
}
