/* cli_fmt.c: exit codes, collector error text, and values written for people (durations, relative times, sizes, deliveries) for the errq CLI.  Pure: see cli_fmt.h. */
#include "cli_fmt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "errq_time.h"
#include "errq_banned.h"


char *cli_count(char *buf, size_t n, uint64_t count, const char *one, const char *many)
{
	errq_snprintf(buf, n, "%llu %s", (unsigned long long)count, count == 1 ? one : many);
	return buf;
}

int cli_exit_for_status(grpc_status_code c)
{
	switch (c) {
	case GRPC_STATUS_OK:
		return CLI_EXIT_OK;
	case GRPC_STATUS_INVALID_ARGUMENT: /* a usage problem the server saw */
	case GRPC_STATUS_ALREADY_EXISTS:   /* admin backup: the file is there (--force) */
		return CLI_EXIT_USAGE;
	case GRPC_STATUS_NOT_FOUND:
	case GRPC_STATUS_FAILED_PRECONDITION: /* nothing to act on: no dead delivery, no storage */
		return CLI_EXIT_NOT_FOUND;
	case GRPC_STATUS_UNAUTHENTICATED:
	case GRPC_STATUS_PERMISSION_DENIED:
		return CLI_EXIT_REFUSED;
	default: /* UNAVAILABLE, DEADLINE_EXCEEDED and every failure of the collector */
		return CLI_EXIT_UNREACHABLE;
	}
}

void cli_one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

void cli_reach_reason(const char *details, char *out, size_t n)
{
	if (!n)
		return;
	const char *p = details ? details : "";
	/* gRPC nests causes as "a: b: c"; the innermost one says what went wrong */
	const char *last = NULL;
	for (const char *q = strstr(p, ": "); q; q = strstr(q + 2, ": "))
		last = q + 2;
	if (last && *last)
		p = last;
	while (*p == ' ')
		p++;
	if (!*p)
		p = "unavailable";
	errq_snprintf(out, n, "%s", p);
	size_t l = strlen(out);
	while (l > 0 && (out[l - 1] == ' ' || out[l - 1] == '.'))
		out[--l] = '\0';
	/* "Connection refused" -> "connection refused", but leave "DNS ..." alone */
	if (isupper((unsigned char)out[0]) && islower((unsigned char)out[1]))
		out[0] = (char)tolower((unsigned char)out[0]);
	cli_one_line(out);
}

char *cli_fmt_ms(char *buf, size_t n, long ms)
{
	if (ms >= 1000 && ms % 100 == 0 && ms % 1000)
		errq_snprintf(buf, n, "%ld.%lds", ms / 1000, ms % 1000 / 100);
	else if (ms % 1000)
		errq_snprintf(buf, n, "%ldms", ms);
	else
		errq_snprintf(buf, n, "%lds", ms / 1000);
	return buf;
}

static void fmt_span(char *buf, size_t n, uint64_t secs)
{
	if (secs < 60)
		errq_snprintf(buf, n, "%llus", (unsigned long long)secs);
	else if (secs < 3600)
		errq_snprintf(buf, n, "%llum", (unsigned long long)(secs / 60));
	else if (secs < 86400)
		errq_snprintf(buf, n, "%lluh", (unsigned long long)(secs / 3600));
	else if (secs < 365 * 86400ULL)
		errq_snprintf(buf, n, "%llud", (unsigned long long)(secs / 86400));
	else
		errq_snprintf(buf, n, "%lluy", (unsigned long long)(secs / (365 * 86400ULL)));
}

char *cli_fmt_ago(char *buf, size_t n, uint64_t now_ns, uint64_t t_ns)
{
	char span[32];
	if (t_ns == 0) {
		errq_snprintf(buf, n, "-");
	} else if (t_ns > now_ns) {
		uint64_t secs = (t_ns - now_ns) / ERRQ_NS_PER_SEC;
		if (secs < 2) {
			errq_snprintf(buf, n, "just now");
		} else {
			fmt_span(span, sizeof(span), secs);
			errq_snprintf(buf, n, "in %s", span);
		}
	} else {
		uint64_t secs = (now_ns - t_ns) / ERRQ_NS_PER_SEC;
		if (secs < 1) {
			errq_snprintf(buf, n, "just now");
		} else {
			fmt_span(span, sizeof(span), secs);
			errq_snprintf(buf, n, "%s ago", span);
		}
	}
	return buf;
}

char *cli_fmt_until(char *buf, size_t n, uint64_t now_ns, uint64_t t_ns)
{
	char span[32];
	if (t_ns == 0) {
		errq_snprintf(buf, n, "-");
	} else if (t_ns <= now_ns) {
		errq_snprintf(buf, n, "due");
	} else {
		uint64_t secs = (t_ns - now_ns + ERRQ_NS_PER_SEC - 1) / ERRQ_NS_PER_SEC;
		errq_snprintf(buf, n, "in %s", cli_fmt_span(span, sizeof(span), secs * ERRQ_NS_PER_SEC));
	}
	return buf;
}

char *cli_fmt_bytes(char *buf, size_t n, uint64_t bytes)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	if (bytes < 1024) {
		errq_snprintf(buf, n, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	/* tenths of the unit, rounded: 1536 -> 15 tenths of a KiB */
	size_t u = 0;
	uint64_t div = 1024;
	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes / div >= 1024) {
		div *= 1024;
		u++;
	}
	unsigned long long tenths = (unsigned long long)(((long double)bytes * 10 / (long double)div) + 0.5L);
	if (tenths >= 10240 && u + 1 < sizeof(units) / sizeof(units[0])) {
		/* 1023.96 KiB rounds to 1024.0: say 1.0 MiB */
		u++;
		tenths = 10;
	}
	errq_snprintf(buf, n, "%llu.%llu %s", tenths / 10, tenths % 10, units[u]);
	return buf;
}

char *cli_fmt_span(char *buf, size_t n, uint64_t ns)
{
	uint64_t s = ns / ERRQ_NS_PER_SEC;
	unsigned long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
	if (d)
		errq_snprintf(buf, n, "%llud %lluh", d, h);
	else if (h)
		errq_snprintf(buf, n, "%lluh %llum", h, m);
	else if (m)
		errq_snprintf(buf, n, "%llum %llus", m, sec);
	else
		errq_snprintf(buf, n, "%llus", sec);
	return buf;
}
int cli_fmt_delivery(struct errq_buf *b, const char *notifier, const char *status, uint32_t attempts)
{
	size_t start = b->len;
	if ((start && errq_buf_add(b, " ", 1)) || errq_buf_printf(b, "%s:%s", notifier, status) ||
	    (attempts > 1 && errq_buf_printf(b, "(%u)", attempts))) {
		b->len = start;
		if (b->p)
			b->p[start] = '\0';
		return -1;
	}
	return 0;
}
