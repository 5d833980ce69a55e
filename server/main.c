/* errqd: the errq collector.
 *
 * Threads: main (start-up, then signals with sigwait, then shutdown), one thread per gRPC
 * completion queue (transport.c), the ingest writer (ingest.c, which also runs the rule
 * engine, alerts*.c), the notifier's libuv loop (notify.c), the WAL checkpointer
 * (storage/store_checkpoint.c), libmicrohttpd's polling thread for HTTP (http.c), and while a
 * backup runs, its copier (svc_backup.c).  SIGINT/SIGTERM/SIGHUP are blocked before
 * grpc_init() so that every thread inherits the mask and only main sees them.
 *
 * Shutdown (SIGINT/SIGTERM), within settings.shutdown_timeout (default 8 s; the contract is
 * "exit 0 within 10 s"):
 *  1. health turns NOT_SERVING; streams read no more and end with UNAVAILABLE once every
 *     batch already read is committed and answered;
 *  2. wait for the writer to commit the queue, and for the streams to end;
 *  3. shut the gRPC server down (live calls are cancelled), stop the writer (abandoning,
 *     unacknowledged, only what a failing store could not commit), join every thread;
 *  4. close the database, grpc_shutdown_blocking(), exit 0. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "errq_log.h"
#include "errq_str.h"
#include "errq_time.h"
#include "alerts.h"
#include "diskguard.h"
#include "fleet.h"
#include "auth.h"
#include "health.h"
#include "http.h"
#include "ingest.h"
#include "metrics.h"
#include "overflow.h"
#include "services.h"
#include "quota.h"
#include "settings.h"
#include "storage.h"
#include "storage_alerts.h"
#include "store_url.h"
#include "svc_alerts.h"
#include "tail.h"
#include "tail_fleet.h"
#include "tls.h"
#include "transport.h"

extern char **environ; /* settings_load_env reads the ERRQ_<NAME> variables from it */

#define ERRQD_MMAP_THRESHOLD (64 * 1024)
#define ERRQD_SHUTDOWN_LINGER_MS 300 /* after the drain, before connections close (< 1 s) */

/* The fleet thread wakes the writer when leadership comes or goes (fleet.h); the writer is
 * started after the fleet, so it is published here once it exists. */
static struct ingest *_Atomic fleet_ig;

static void fleet_changed(void *ctx)
{
	(void)ctx;
	struct ingest *ig = atomic_load(&fleet_ig);
	if (ig)
		ingest_tick_soon(ig);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: errqd [--config FILE] [--listen HOST:PORT] [--db PATH|URL] [--http-listen HOST:PORT]\n"
		"             [--storage sqlite|postgres|none] [--durability normal|full] [--log-level LEVEL]\n"
		"             [--log-format json|text] [--port-file PATH] [--set KEY=VALUE]...\n"
		"       errqd [--config FILE] [flags] --check-config | --print-config\n"
		"       errqd --print-sample-config | --print-config-docs | --version | --help\n"
		"       errqd admin migrate --from sqlite:///PATH --to postgres://... [--replace] [--batch-rows N]\n"
		"\n"
		"Each setting comes from its default, the config file, the environment (ERRQ_<KEY>,\n"
		"e.g. ERRQ_LISTEN) and the flags, a later one overriding an earlier one.  --port-file\n"
		"writes the bound gRPC port, and the HTTP port on a second line (0 when http_listen is\n"
		"empty; useful with --listen 127.0.0.1:0).  --check-config validates the file,\n"
		"environment and flags and exits; --print-config prints every setting's value and where\n"
		"it came from; --print-sample-config prints a config file with every setting and its\n"
		"default; --print-config-docs prints docs/configuration.md.  --db takes a SQLite file\n"
		"(PATH or sqlite:///PATH) or a PostgreSQL URL (postgres://USER@HOST/DB).\n");
}

/* Line 1: the gRPC port; line 2: the HTTP port (0 when http_listen is empty). */
static int write_port_file(const char *path, int port, int http_port)
{
	char tmp[SETTINGS_STR_MAX + 8], buf[32];
	errq_snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	int n = errq_snprintf(buf, sizeof(buf), "%d\n%d\n", port, http_port);
	int rc = write(fd, buf, (size_t)n) == n ? 0 : -1;
	if (close(fd) || rc || rename(tmp, path))
		return -1;
	return 0;
}

/* gRPC's log records, as one errqd log line each (gRPC prints several lines of its own to
 * stderr otherwise, e.g. on a port already in use). */
static void grpc_log(gpr_log_func_args *a)
{
	char line[16];
	errq_snprintf(line, sizeof(line), "%d", a->line);
	int level = a->severity == GPR_LOG_SEVERITY_ERROR ? ERRQ_LOG_ERROR
		    : a->severity == GPR_LOG_SEVERITY_INFO ? ERRQ_LOG_INFO
							    : ERRQ_LOG_DEBUG;
	errq_logkv(level, "grpc", "message", a->message ? a->message : "", "file", a->file ? a->file : "", "line",
		   line, NULL);
}

/* The credentials are reloaded with the rules (alerts_opts.reload_*). */
static void *creds_prepare(void *ctx, const char *path, char *err, size_t errsz)
{
	return auth_reload_prepare(ctx, path, err, errsz);
}

static void creds_commit(void *ctx, void *staged)
{
	auth_reload_commit(ctx, staged);
}

static void creds_discard(void *staged)
{
	auth_table_free(staged);
}

/* The turn of completion-queue thread i, for health.h. */
struct cq_turn_arg {
	struct transport *t;
	int i;
};
static struct cq_turn_arg cq_turn_args[TRANSPORT_MAX_CQS];

static uint64_t cq_last_turn(void *ctx)
{
	const struct cq_turn_arg *a = ctx;
	return transport_cq_last_turn(a->t, a->i);
}

int main(int argc, char **argv)
{
	struct settings cfg;
	char err[1024];
	const char *config_path = NULL;
	/* OPT_SETTING: a setting's own flag; settings_flag_key() names the setting it sets */
	enum { OPT_SETTING = 256, OPT_PORTFILE, OPT_PRINT, OPT_PRINT_SAMPLE, OPT_PRINT_DOCS, OPT_SET, OPT_VERSION,
	       OPT_CHECK };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, OPT_SETTING},
	    {"db", required_argument, NULL, OPT_SETTING},
	    {"http-listen", required_argument, NULL, OPT_SETTING},
	    {"port-file", required_argument, NULL, OPT_PORTFILE},
	    {"storage", required_argument, NULL, OPT_SETTING},
	    {"durability", required_argument, NULL, OPT_SETTING},
	    {"log-level", required_argument, NULL, OPT_SETTING},
	    {"log-format", required_argument, NULL, OPT_SETTING},
	    {"set", required_argument, NULL, OPT_SET},
	    {"print-config", no_argument, NULL, OPT_PRINT},
	    {"print-sample-config", no_argument, NULL, OPT_PRINT_SAMPLE},
	    {"print-config-docs", no_argument, NULL, OPT_PRINT_DOCS},
	    {"check-config", no_argument, NULL, OPT_CHECK},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	/* flags are applied after the file and the environment: remember them in order */
	struct flag {
		char name[SETTINGS_FLAG_MAX]; /* "--listen", "--set" */
		const char *key;
		char *value;
	} flags[64];
	int nflags = 0, opt, idx = -1;
	bool check_only = false, print_only = false;

	/* administrative commands run instead of the collector (admin_migrate.c) */
	if (argc > 1 && strcmp(argv[1], "admin") == 0)
		return admin_main(argc - 1, argv + 1);
	settings_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "c:h", longopts, &idx)) != -1) {
		const char *key = NULL;
		switch (opt) {
		case 'c': config_path = optarg; continue;
		case 'h': usage(stdout); return 0;
		case OPT_VERSION: printf("errqd %s\n", ERRQ_VERSION_STRING); return 0;
		case OPT_PRINT_SAMPLE: settings_print_sample(stdout); return 0;
		case OPT_PRINT_DOCS: settings_print_docs(stdout); return 0;
		case OPT_PRINT: print_only = true; continue;
		case OPT_CHECK: check_only = true; continue;
		case OPT_SETTING:
			key = settings_flag_key(longopts[idx].name);
			if (!key) { /* a flag in longopts that no row of the settings table claims */
				fprintf(stderr, "errqd: BUG: --%s sets no setting\n", longopts[idx].name);
				return 1;
			}
			break;
		case OPT_PORTFILE:
			if (strlen(optarg) >= SETTINGS_STR_MAX) {
				fprintf(stderr, "errqd: --port-file: path too long\n");
				return 1;
			}
			errq_snprintf(cfg.port_file, sizeof(cfg.port_file), "%s", optarg);
			continue;
		case OPT_SET: {
			char *eq = strchr(optarg, '=');
			if (!eq) {
				fprintf(stderr, "errqd: --set '%s': expected KEY=VALUE\n", optarg);
				return 1;
			}
			*eq = '\0';
			key = optarg;
			optarg = eq + 1;
			break;
		}
		default: usage(stderr); return 1;
		}
		if (nflags == (int)(sizeof(flags) / sizeof(flags[0]))) {
			fprintf(stderr, "errqd: too many flags\n");
			return 1;
		}
		errq_snprintf(flags[nflags].name, sizeof(flags[nflags].name), "--%s",
			      opt == OPT_SET ? "set" : longopts[idx].name);
		flags[nflags].key = key;
		flags[nflags++].value = optarg;
	}
	if (optind < argc) {
		fprintf(stderr, "errqd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	/* default < file < environment < flags (docs/configuration.md) */
	if (config_path && settings_load_file(&cfg, config_path, err, sizeof(err))) {
		fprintf(stderr, "errqd: config %s\n", err);
		return 1;
	}
	if (settings_load_env(&cfg, environ, err, sizeof(err))) {
		fprintf(stderr, "errqd: %s\n", err);
		return 1;
	}
	for (int i = 0; i < nflags; i++)
		if (settings_set(&cfg, flags[i].name, flags[i].key, flags[i].value, err, sizeof(err))) {
			fprintf(stderr, "errqd: %s\n", err);
			return 1;
		}
	if (settings_check_database(&cfg, err, sizeof(err))) {
		fprintf(stderr, "errqd: %s\n", err);
		return 1;
	}
	if (print_only) {
		settings_print_effective(stdout, &cfg);
		return 0;
	}
	errq_log_set_level(cfg.log_level);
	errq_log_set_format(cfg.log_format);
	/* spike protection: its overrides are checked here, so --check-config refuses them too */
	struct quota *quota = NULL;
	if (quota_new(&quota,
		      &(struct quota_opts){.rate = (uint64_t)cfg.quota_rate, .burst = (uint64_t)cfg.quota_burst,
					   .service_rate = (uint64_t)cfg.quota_service_rate,
					   .service_burst = (uint64_t)cfg.quota_service_burst,
					   .overrides = cfg.quota_service_overrides},
		      err, sizeof(err))) {
		fprintf(stderr, "errqd: %s\n", err);
		return 1;
	}
	/* the rules and notifiers of the same file: refused whole, with file and line */
	struct ruleset *ruleset = NULL;
	if (config_path && rules_load(&ruleset, config_path, err, sizeof(err))) {
		fprintf(stderr, "errqd: rules %s\n", err);
		quota_free(quota);
		return 1;
	}
	char n_rules[24], n_notifiers[24]; /* for the start line (the engine owns ruleset from here) */
	errq_snprintf(n_rules, sizeof(n_rules), "%zu", ruleset ? ruleset->n_rules : 0);
	errq_snprintf(n_notifiers, sizeof(n_notifiers), "%zu", ruleset ? ruleset->n_notifiers : 0);
	/* the credentials of the same file, and whether errqd may listen where it is told to */
	struct auth *auth = NULL;
	struct auth_table *creds_table = NULL;
	const struct auth_policy policy = {.listen = cfg.listen,
					   .open_ok = auth_listen_is_loopback(cfg.listen) || cfg.auth_open,
					   .tls_verified = cfg.tls_client_ca[0] != '\0'};
	if ((config_path && auth_table_load(&creds_table, config_path, err, sizeof(err))) ||
	    auth_new(&auth, creds_table, &policy, err, sizeof(err))) {
		fprintf(stderr, "errqd: %s\n", err);
		rules_free(ruleset);
		return 1;
	}
	/* the certificate and key are read and checked now: a bad pair stops the start */
	struct tls *tls = NULL;
	if (tls_new(&tls, &(struct tls_opts){.cert = cfg.tls_cert, .key = cfg.tls_key, .client_ca = cfg.tls_client_ca},
		    err, sizeof(err))) {
		fprintf(stderr, "errqd: %s\n", err);
		rules_free(ruleset);
		auth_free(auth);
		quota_free(quota);
		return 1;
	}
	if (check_only) {
		if (ruleset)
			printf("errqd: %zu rules, %zu notifiers\n", ruleset->n_rules, ruleset->n_notifiers);
		printf("errqd: %zu credentials%s\n", auth_count(auth),
		       auth_count(auth) ? "" : policy.open_ok && !cfg.auth_open ? " (open on loopback)" : " (open: auth.open)");
		rules_free(ruleset);
		tls_free(tls);
		auth_free(auth);
		quota_free(quota);
		printf("errqd: configuration %s%s%sok\n", config_path ? "'" : "", config_path ? config_path : "",
		       config_path ? "' " : "");
		return 0;
	}

	/* Large blocks (decoded batches, gRPC's message slices) come and go across threads; with
	 * glibc's default dynamic threshold they end up in per-thread heaps that grow to 64 MiB
	 * each and stay resident (measured: 480 MiB RSS with 1 000 streams).  A fixed threshold
	 * maps them instead, so their memory returns to the system when they are freed. */
	mallopt(M_MMAP_THRESHOLD, ERRQD_MMAP_THRESHOLD);

	/* every thread created from here on inherits this mask; main collects the signals */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* a file size limit (ulimit -f) must fail the write, which is retried and makes errqd
	 * unready, not kill the collector */
	signal(SIGXFSZ, SIG_IGN);

	int rc = 1;
	struct store *store = NULL;
	struct store_ckpt *ckpt = NULL;
	struct store_lock *dblock = NULL; /* one collector per database, before any migration */
	struct ingest *ig = NULL;
	struct transport *t = NULL;
	struct report_svc *rs = NULL;
	struct query_svc *qs = NULL;
	struct alerts *alerts = NULL; /* the rule engine (NULL with storage: none) */
	struct fleet *fleet = NULL;   /* leadership among collectors sharing the database (fleet.h) */
	struct alerts_svc *as = NULL;
	struct tail_hub *tail = NULL;
	struct tail_fleet *tail_fleet = NULL; /* PostgreSQL: the other collectors' events (tail_fleet.h) */
	struct overflow_watch *overflow = NULL; /* groups_per_service passed: said once (overflow.h) */
	struct health *health = NULL;
	struct metrics *metrics = NULL;
	struct http *http = NULL;
	struct diskguard *guard = NULL; /* the free-disk floor (storage: sqlite) */
	uint64_t started_ns = errq_now_ns();
	/* The database as the store calls take it (NULL with storage: none): a SQLite file's path
	 * (parsed from its URL: the disk guard and the backup service need the file), or the
	 * PostgreSQL URL; and as every message names it (its password hidden). */
	struct store_url dbu = {.kind = STORE_URL_SQLITE};
	char dbred[STORE_URL_REDACTED_MAX];
	const char *db = NULL;
	const char *storage_name = cfg.storage == STORAGE_POSTGRES ? "postgres" : cfg.storage == STORAGE_SQLITE ? "sqlite" : "none";
	/* on PostgreSQL a commit is as durable as the server makes it (durability is SQLite's) */
	const char *durability_name = cfg.storage == STORAGE_POSTGRES ? "server"
				      : cfg.durability == STORE_DURABILITY_FULL ? "full" : "normal";
	store_url_redact(cfg.storage != STORAGE_NONE ? cfg.database : "(none)", dbred, sizeof(dbred));

	gpr_set_log_function(grpc_log); /* the C core's own records become errqd's log lines */
	grpc_init();
	if (!(health = health_new())) {
		LOG_ERROR("out of memory");
		goto out;
	}
	if (cfg.storage != STORAGE_NONE) {
		if (store_url_parse(cfg.database, &dbu, err, sizeof(err))) { /* settings_check_database passed it */
			errq_logkv(ERRQ_LOG_ERROR, "cannot start", "error", err, NULL);
			goto out;
		}
		db = dbu.kind == STORE_URL_SQLITE ? dbu.path : cfg.database;
	}
	if (db) {
		struct store_opts so = {.path = db, .durability = cfg.durability,
					.cache_mib = (int)cfg.cache_mib, .ckpt_external = true,
					.groups_per_service = (uint32_t)cfg.groups_per_service};
		/* PostgreSQL: no lock (collectors share it) and no checkpointer (ckpt NULL) */
		if (store_lock(&dblock, db, err, sizeof(err)) || store_open(&store, &so, err, sizeof(err)) ||
		    store_ckpt_start(&ckpt, db, err, sizeof(err))) {
			errq_logkv(ERRQ_LOG_ERROR, "cannot start", "error", err, NULL);
			goto out;
		}
		store_set_ckpt(store, ckpt);
		/* the free-disk floor is the SQLite file's filesystem's (PostgreSQL's disk is the server's) */
		if (dbu.kind == STORE_URL_SQLITE && !(guard = diskguard_new(db, (uint64_t)cfg.min_free_disk))) {
			LOG_ERROR("out of memory");
			goto out;
		}
				struct alerts_opts ao = {.config_path = config_path, .collector = cfg.name,
					 .reload_prepare = creds_prepare, .reload_commit = creds_commit,
					 .reload_discard = creds_discard, .reload_ctx = auth};
		if (alerts_new(&alerts, &ao, ruleset, config_path, err, sizeof(err))) {
			ruleset = NULL;
			errq_logkv(ERRQ_LOG_ERROR, "cannot start alerting", "error", err, NULL);
			goto out;
		}
		ruleset = NULL;
	} else if (ruleset && ruleset->n_rules) {
		LOG_WARN("storage: none keeps no circuits: the rules are not evaluated");
	}
	rules_free(ruleset);
	ruleset = NULL;
	/* several collectors on one database: one leads the rule engine (fleet.h) */
	if (alerts && store_fleet(store)) {
		struct fleet_opts fo = {.db_url = db, .name = cfg.name, .on_change = fleet_changed};
		if (fleet_start(&fleet, &fo, err, sizeof(err))) {
			errq_logkv(ERRQ_LOG_ERROR, "cannot start", "error", err, NULL);
			goto out;
		}
		alerts_set_fleet(alerts, fleet);
	}
	const struct ingest_hooks hooks = {.txn = alerts_hook_txn, .txn_end = alerts_hook_txn_end,
					   .tick = alerts_hook_tick, .ctx = alerts};
	if (!(tail = tail_hub_new())) {
		LOG_ERROR("out of memory");
		goto out;
	}
	if (store && cfg.groups_per_service > 0 && !(overflow = overflow_watch_new((uint32_t)cfg.groups_per_service))) {
		LOG_ERROR("out of memory");
		goto out;
	}
	struct ingest_opts io = {.overflow = overflow, .hooks = alerts ? &hooks : NULL, .store = store, .max_batches = (size_t)cfg.ingest_queue_batches,
				 .max_bytes = (size_t)cfg.ingest_queue_bytes, .retention_ns = cfg.retention_ns,
				 .alert_history_ns = cfg.alert_history_ns,
				 .per_group_cap = (uint32_t)cfg.events_per_group, .on_commit = tail_publish,
				 .on_commit_ctx = tail};
	if (ingest_start(&ig, &io)) {
		LOG_ERROR("cannot start the ingest writer");
		goto out;
	}
	if (dbu.kind == STORE_URL_POSTGRES && db && tail_fleet_start(&tail_fleet, tail, db)) {
		LOG_ERROR("cannot start the tail listener");
		goto out;
	}
	if (alerts)
		alerts_set_ingest(alerts, ig);
	atomic_store(&fleet_ig, ig);
	health_set_ingest(health, ig, cfg.readiness_queue_full_after_ns);
	health_set_diskguard(health, guard);
	health_add_thread(health, "ingest writer", ingest_last_turn, ig);
	if (alerts)
		health_add_thread(health, "notifier", alerts_notifier_last_turn, alerts);
	/* TLS (tls.h) or insecure; taken over by transport_new */
	grpc_server_credentials *creds = tls_server_creds(tls);
	if (!creds) {
		LOG_ERROR("cannot create the gRPC listener's credentials");
		goto out;
	}
	struct transport_opts to = {.listen = cfg.listen, .cq_threads = (int)cfg.cq_threads,
				    .max_streams = (int)cfg.max_streams, .creds = creds};
	auth_attach(auth, to.creds); /* every call is checked, health excepted (auth.h) */
	if (transport_new(&t, &to) || !(rs = report_svc_new(ig)) ||
	    !(qs = query_svc_new(&(struct query_svc_opts){
		  .db_path = db,
		  .ig = ig,
		  .rs = rs,
		  .tail = tail,
		  .alerts = alerts,
		  .fleet = fleet,
		  .name = cfg.name,
		  .durability = durability_name,
		  .storage = storage_name,
		  .started_ns = started_ns,
		  .queue_capacity = (uint32_t)cfg.ingest_queue_batches,
		  .overflow = overflow})) ||
	    !(as = alerts_svc_new(&(struct alerts_svc_opts){
		  .db_path = db, .alerts = alerts, .auth = auth})) ||
	    (report_svc_set_auth(rs, auth), report_svc_register(rs, t)) || query_svc_register(qs, t) || alerts_svc_register(as, t) ||
	    tail_hub_register(tail, t) || health_svc_register(t, health)) {
		LOG_ERROR("cannot set up the gRPC services");
		goto out;
	}
	report_svc_set_diskguard(rs, guard);
	report_svc_set_quota(rs, quota); /* before any call: transport_start comes later */
	for (int i = 0; i < transport_cq_count(t); i++) {
		char name[32];
		errq_snprintf(name, sizeof(name), "completion queue %d", i);
		cq_turn_args[i] = (struct cq_turn_arg){t, i};
		health_add_thread(health, name, cq_last_turn, &cq_turn_args[i]);
	}
	/* HTTP first: a port held by another process stops the start before gRPC takes traffic */
	if (cfg.http_listen[0]) {
		struct metrics_sources ms = {.ig = ig, .rs = rs, .quota = quota, .guard = guard, .tail = tail, .tail_fleet = tail_fleet, .alerts = alerts, .health = health,
					     .db_path = db,
					     .name = cfg.name, .storage = storage_name,
					     .durability = durability_name,
					     .started_ns = started_ns,
					     .queue_capacity_batches = (uint64_t)cfg.ingest_queue_batches,
					     .queue_capacity_bytes = (uint64_t)cfg.ingest_queue_bytes,
					     .tls = tls, .fleet = fleet};
		if (!(metrics = metrics_new(&ms))) {
			LOG_ERROR("out of memory");
			goto out;
		}
		if (http_start(&http,
			       &(struct http_opts){.listen = cfg.http_listen, .health = health, .metrics = metrics, .tls = tls},
			       err, sizeof(err))) {
			errq_logkv(ERRQ_LOG_ERROR, "cannot start", "error", err, NULL);
			goto out;
		}
	}
	int port = transport_start(t, err, sizeof(err));
	if (port < 0) {
		errq_logkv(ERRQ_LOG_ERROR, "cannot start", "error", err, NULL);
		goto out;
	}
	health_set_started(health);
	int hport = http ? http_port(http) : 0;
	if (cfg.port_file[0] && write_port_file(cfg.port_file, port, hport)) {
		errq_logkv(ERRQ_LOG_ERROR, "cannot write the port file", "path", cfg.port_file, "error",
			   strerror(errno), NULL);
		goto stop;
	}
	{
		char portbuf[16], hportbuf[16];
		errq_snprintf(portbuf, sizeof(portbuf), "%d", port);
		errq_snprintf(hportbuf, sizeof(hportbuf), "%d", hport);
		errq_logkv(ERRQ_LOG_INFO, "errqd started", "version", ERRQ_VERSION_STRING, "listen", cfg.listen,
			   "port", portbuf, "http_listen", cfg.http_listen[0] ? cfg.http_listen : "(off)", "http_port",
			   hportbuf, "database", dbred,
			   "durability", durability_name, "tls",
			   !tls ? "off" : tls_mutual(tls) ? "mutual" : "on", "config", config_path ? config_path : "(none)",
			   "rules", n_rules, "notifiers", n_notifiers, NULL);
		char ncreds[24];
		errq_snprintf(ncreds, sizeof(ncreds), "%zu", auth_count(auth));
		if (!auth_count(auth) && !auth_listen_is_loopback(cfg.listen))
			errq_logkv(ERRQ_LOG_WARN, "no credentials: every caller that reaches listen may report, read and "
				   "administer (auth.open: true; docs/security.md)", "listen", cfg.listen, NULL);
		else
			errq_logkv(ERRQ_LOG_INFO, auth_count(auth) ? "credentials in force" : "no credentials: open on loopback",
				   "credentials", ncreds, NULL);
	}

	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig))
			continue;
		if (sig == SIGHUP) {
			if (tls) /* re-read the certificate and key now (logs the outcome; a bad pair is refused) */
				tls_reload(tls);
			if (tls && !config_path)
				continue; /* no rules to reload: no error line for a certificate rotation */
			enum alerts_status st = alerts ? alerts_reload_by(alerts, "SIGHUP", NULL, NULL) : ALERTS_OK;
			if (st != ALERTS_OK) /* refused; a queued reload logs its result */
				errq_logkv(ERRQ_LOG_ERROR, "rules reload refused; the rules in force stay", "error",
					   alerts_refusal_msg(st), NULL);
			else if (!alerts && (!config_path || auth_reload(auth, config_path, err, sizeof(err))))
				errq_logkv(config_path ? ERRQ_LOG_ERROR : ERRQ_LOG_INFO,
					   config_path ? "credentials reload refused; the credentials in force stay"
						       : "SIGHUP: nothing to reload (no --config)",
					   "error", config_path ? err : "", NULL);
			continue;
		}
		errq_logkv(ERRQ_LOG_INFO, "shutting down", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
		break;
	}
	rc = 0;
stop:
	{
		/* Everything below fits in shutdown_timeout: the drain gets three quarters of it, the
		 * writer gives up on a failing store by seven eighths, and the rest is for the calls
		 * to be cancelled and released. */
		uint64_t t0 = errq_mono_ns(), budget = cfg.shutdown_timeout_ns;
		uint64_t drain_end = t0 + budget / 4 * 3, writer_end = t0 + budget / 8 * 7, end = t0 + budget;
#define LEFT(until) ((until) > errq_mono_ns() ? (until) - errq_mono_ns() : 0)
		health_set_draining(health);
		bool had_streams = report_svc_streams(rs) > 0;
		report_svc_drain(rs);
		bool drained = ingest_wait_idle(ig, LEFT(drain_end));
		bool ended = report_svc_wait_calls(rs, LEFT(drain_end));
		/* Every answer and final status is written now, but a client may still be sending
		 * its next batches: a connection closed with data unread is reset by the kernel, and
		 * a reset discards the answers the client has not read yet (it would resend batches
		 * that are stored).  The transport keeps reading while errqd lingers, so the clients
		 * take their answers and stop writing before the connections close.  (Without a
		 * stream at the signal, nothing can be in flight: no linger.) */
		if (ended && had_streams) {
			uint64_t linger = ERRQD_SHUTDOWN_LINGER_MS * ERRQ_NS_PER_MS, left = LEFT(drain_end);
			struct timespec ts = {0, (long)(linger < left ? linger : left)};
			nanosleep(&ts, NULL);
		}
		transport_shutdown_server(t); /* cancels whatever is left */
		ingest_stop(ig, LEFT(writer_end));
		report_svc_wait_calls(rs, LEFT(end));
#undef LEFT
		struct ingest_stats st;
		ingest_get_stats(ig, &st);
		char ms[32], stored[32], commits[32];
		errq_snprintf(ms, sizeof(ms), "%llu", (unsigned long long)((errq_mono_ns() - t0) / ERRQ_NS_PER_MS));
		errq_snprintf(stored, sizeof(stored), "%llu", (unsigned long long)st.events_stored);
		errq_snprintf(commits, sizeof(commits), "%llu", (unsigned long long)st.commits);
		errq_logkv(ERRQ_LOG_INFO, "drained", "ms", ms, "events_stored", stored, "commits", commits,
			   "queue_drained", drained ? "true" : "false", "streams_ended", ended ? "true" : "false", NULL);
	}
out:
	http_stop(http); /* first: a scrape reads every module below */
	metrics_free(metrics);
	/* the writer stops before the queues die: its done() callbacks start ops on calls */
	ingest_stop(ig, 0);
	tail_fleet_stop(tail_fleet); /* like the writer, it starts ops on the tail's calls */
	transport_free(t);
	alerts_stop(alerts); /* its notifier thread hands jobs to the writer: joined before ig goes */
	alerts_fleet_release(alerts, store); /* the writer and notifier are done: others deliver */
	fleet_stop(fleet);   /* after the writer (it reads the epoch): the lock goes, another leads */
	atomic_store(&fleet_ig, NULL);
	ingest_free(ig); /* after the queue threads: a Status handler may still read its stats */
	report_svc_free(rs);
	quota_free(quota); /* after the calls that used it */
	query_svc_free(qs);
	overflow_watch_free(overflow); /* after the writer and the Status handlers */
	alerts_svc_free(as);
	alerts_free(alerts); /* after the writer: its hooks and jobs use it */
	auth_free(auth);     /* after the server: its processor uses it */
	tail_hub_free(tail); /* its calls ended with the transport */
	store_ckpt_stop(ckpt);
	store_close(store); /* the last connection: checkpoints the WAL into the file */
	health_free(health);
	diskguard_free(guard); /* after every reader: the services, health, metrics */
	store_unlock(dblock);
	grpc_shutdown_blocking();
	tls_free(tls); /* after gRPC: its listener's credentials call into it */
	if (rc == 0)
		LOG_INFO("errqd stopped");
	return rc;
}
