/* admin_migrate.c: `errqd admin migrate --from SQLITE --to POSTGRES_URL [--replace]`, a SQLite
 * database copied into PostgreSQL (storage/store_copy.h does the work; docs/operations.md,
 * "Moving from SQLite to PostgreSQL").  Progress goes to stderr, the verification's table of
 * counts to stdout; the target's password is in neither (store_url_redact). */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "store_url.h"
#include "store_copy.h"
#include "errq_banned.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: errqd admin migrate --from sqlite:///PATH --to postgres://USER@HOST/DB [--replace]\n"
		   "                           [--batch-rows N]\n"
		   "\n"
		   "Copies a stopped collector's SQLite database into a PostgreSQL database (migrated to\n"
		   "errq's schema first), in one transaction, then compares the row counts table by table\n"
		   "and each group's totals, and commits only when they match.  A target holding rows in\n"
		   "errq's tables is refused; --replace empties those tables first.  --batch-rows: rows\n"
		   "read from the source in one read transaction and sent in one COPY (default %u, at\n"
		   "most %u).  Exit codes: 0 copied, 2 bad arguments, 3 source error, 4 target error,\n"
		   "5 counts differ (nothing committed).\n",
		STORE_COPY_BATCH_ROWS, STORE_COPY_BATCH_ROWS_MAX);
}

#ifdef ERRQ_HAVE_POSTGRES
static void progress(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "errqd admin migrate: %s\n", line);
}

static int print_report(const struct store_copy_report *r)
{
	printf("%-16s %12s %12s\n", "table", "source", "target");
	for (int i = 0; i < r->n_tables; i++)
		printf("%-16s %12llu %12llu%s\n", r->tables[i].table, (unsigned long long)r->tables[i].source,
		       (unsigned long long)r->tables[i].target,
		       r->tables[i].source == r->tables[i].target ? "" : "  DIFFERENT");
	printf("groups' totals compared: %llu, different: %llu\n", (unsigned long long)r->groups_checked,
	       (unsigned long long)r->groups_differ);
	for (int i = 0; i < r->n_differ; i++)
		printf("  %s\n", r->differ[i]);
	return fflush(stdout);
}
#endif

static int migrate(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"from", required_argument, NULL, 'f'},
	    {"to", required_argument, NULL, 't'},
	    {"replace", no_argument, NULL, 'r'},
	    {"batch-rows", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *from = NULL, *to = NULL;
	bool replace = false;
	unsigned long batch = 0;
	char *end;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'r': replace = true; break;
		case 'b':
			errno = 0;
			batch = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || batch < 1 || batch > STORE_COPY_BATCH_ROWS_MAX) {
				fprintf(stderr, "errqd admin migrate: --batch-rows '%s': a number of rows from 1 to %u\n",
					optarg, STORE_COPY_BATCH_ROWS_MAX);
				return ADMIN_EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return ADMIN_EXIT_OK;
		default: usage(stderr); return ADMIN_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		char red[STORE_URL_REDACTED_MAX];
		fprintf(stderr, "errqd admin migrate: unexpected argument '%s'\n",
			store_url_redact(argv[optind], red, sizeof(red)));
		return ADMIN_EXIT_USAGE;
	}
	if (!from || !to) {
		fprintf(stderr, "errqd admin migrate: %s is needed\n", !from ? "--from" : "--to");
		usage(stderr);
		return ADMIN_EXIT_USAGE;
	}
#ifdef ERRQ_HAVE_POSTGRES
	struct store_copy_opts o = {
	    .from = from, .to = to, .replace = replace, .batch_rows = (uint32_t)batch, .progress = progress};
	struct store_copy_report r;
	char err[1024];
	int rc = store_copy(&o, &r, err, sizeof(err));
	if (r.n_tables && print_report(&r))
		fprintf(stderr, "errqd admin migrate: cannot write the report\n");
	if (rc != STORE_COPY_OK)
		fprintf(stderr, "errqd admin migrate: %s\n", err);
	else
		fprintf(stderr, "errqd admin migrate: done: %llu rows copied and verified\n",
			(unsigned long long)r.rows_copied);
	switch (rc) {
	case STORE_COPY_OK: return ADMIN_EXIT_OK;
	case STORE_COPY_ERR_ARGS: return ADMIN_EXIT_USAGE;
	case STORE_COPY_ERR_SOURCE: return ADMIN_EXIT_SOURCE;
	case STORE_COPY_ERR_VERIFY: return ADMIN_EXIT_VERIFY;
	default: return ADMIN_EXIT_TARGET;
	}
#else
	(void)replace;
	(void)batch;
	fprintf(stderr, "errqd admin migrate: postgres support not built (errq was built without libpq)\n");
	return ADMIN_EXIT_USAGE;
#endif
}

int admin_main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? ADMIN_EXIT_USAGE : ADMIN_EXIT_OK;
	}
	if (strcmp(argv[1], "migrate") == 0)
		return migrate(argc - 1, argv + 1);
	fprintf(stderr, "errqd admin: unknown command '%s' (known: migrate)\n", argv[1]);
	return ADMIN_EXIT_USAGE;
}
