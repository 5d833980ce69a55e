#!/bin/sh
# make-old-dbs.sh: makes tests/data/schema-vN.db, one database per earlier schema version,
# written by the REAL errqd of that version (tests/unit/test_storage.c upgrades them).
#
#   tests/data/make-old-dbs.sh [VERSION...]      (from the repository root; default: 1 2 3 4)
#
# For each version it checks out the last commit at that schema in a temporary git worktree
# under /tmp, builds errqd, errq and report_failure there (its own build directory), runs
# that errqd on an ephemeral port with a temporary database, reports failures with the
# example client, uses the old errq to resolve and ignore groups (and, from schema 2, lets
# rules trip into circuits, firing and resolved alerts, deliveries and a silence), stops it
# with SIGTERM, and VACUUMs the file into tests/data/schema-vN.db.  It prints what the file
# holds; tests/unit/test_storage.c pins those counts.  Needs git, cmake, the build's
# dependencies and sqlite3.  Run it only to add a schema version: the committed files are
# the fixtures, and remaking them changes their ids and times (update the pinned counts).
# ERRQ_OLD_DBS_OUT=DIR writes the files there instead of tests/data (to compare a remake).
# ERRQ_OLD_SRC=/some/dir/src-v keeps the old worktrees and builds in /some/dir/src-vN (reused
# by the next run when they are at the right commit) instead of a temporary directory.
set -eu

# The last commit of each schema version (git log -S STORE_SCHEMA_VERSION storage/):
# c1cab59 brought schema 2 and c0f0306 schema 3, so their parents are the last of 1 and 2;
# schema 4 (the quota's dropped counts) came after e42ff79, a commit at schema 3.
# schema 5 (groups.agg_through) came after 3bfc5fb, a commit at schema 4.
V1_COMMIT=ffa06f9 # alerts: the API of the alerting tables ... (schema 1)
V2_COMMIT=ffe456f # ingest: a hook's timer due as the writer went idle ... (schema 2)
V3_COMMIT=e42ff79 # settings: sections ... (schema 3)
V4_COMMIT=3bfc5fb # docs: the 30-minute soak's passing figures ... (schema 4)
DEADLINE_S=60     # for every wait (the work takes about 3 s)

root=$(git rev-parse --show-toplevel)
out=${ERRQ_OLD_DBS_OUT:-$root/tests/data}
tmp=$(mktemp -d /tmp/errq-old-dbs.XXXXXX)
src_prefix=${ERRQ_OLD_SRC:-$tmp/src-v}
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	if [ -z "${ERRQ_OLD_SRC:-}" ]; then
		for v in 1 2 3 4; do
			[ -d "$tmp/src-v$v" ] && git -C "$root" worktree remove --force "$tmp/src-v$v" 2>/dev/null || true
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

die() {
	echo "make-old-dbs: $*" >&2
	exit 1
}

# wait_for DESCRIPTION COMMAND...: runs COMMAND every 0.2 s until it succeeds, or dies
wait_for() {
	what=$1
	shift
	n=0
	until "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -le $((DEADLINE_S * 5)) ] || die "timed out waiting for $what"
		sleep 0.2
	done
}

q() { sqlite3 "file:$db?mode=ro" "$1"; }

# wait_count DESCRIPTION SQL WANT: waits until the query SQL answers WANT, or dies
wait_count() {
	n=0
	until [ "$(q "$2" 2>/dev/null)" = "$3" ]; do
		n=$((n + 1))
		[ $n -le $((DEADLINE_S * 5)) ] || die "timed out waiting for $1 ('$2' answers '$(q "$2")')"
		sleep 0.2
	done
}

build_old() { # VERSION COMMIT
	src="$src_prefix$1"
	if [ -d "$src" ]; then
		[ "$(git -C "$src" rev-parse HEAD)" = "$(git -C "$root" rev-parse "$2")" ] || die "'$src' is not at $2"
	else
		git -C "$root" worktree add --detach "$src" "$2" >/dev/null 2>&1 || die "cannot check out $2"
	fi
	cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$src/build" -j2 --target errqd errq_cli report_failure >/dev/null
	bin="$src/build/bin"
}

start_errqd() { # CONFIG
	rm -f "$tmp/port"
	"$bin/errqd" --config "$1" --db "$db" --listen 127.0.0.1:0 --port-file "$tmp/port" \
		--http-listen 127.0.0.1:0 --log-level warn 2>>"$tmp/errqd.log" &
	pid=$!
	wait_for "errqd's port file" test -s "$tmp/port"
	ERRQ_ADDR=127.0.0.1:$(head -n1 "$tmp/port") # errqd of schema 4 writes its HTTP port on a second line
	export ERRQ_ADDR
}

stop_errqd() {
	kill -TERM "$pid"
	wait "$pid" || die "errqd exited $? on SIGTERM (log: $(cat "$tmp/errqd.log"))"
	pid=
}

report() { # SERVICE: the example's three failures (a reset, a bad body, a timeout)
	"$bin/report_failure" "$1" >/dev/null || die "report_failure $1 failed"
}

fp_of() { # SERVICE ERROR_TYPE
	q "SELECT fingerprint FROM groups WHERE service = '$1' AND error_type = '$2'"
}

finish() { # VERSION
	sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE); VACUUM;" >/dev/null
	cp "$db" "$out/schema-v$1.db"
	db="$out/schema-v$1.db"
	echo "schema-v$1.db ($(wc -c <"$db") bytes): user_version $(q 'PRAGMA user_version'), \
events $(q 'SELECT count(*) FROM events'), groups $(q 'SELECT count(*) FROM groups'), \
resolved $(q "SELECT count(*) FROM groups WHERE status = 'resolved'"), \
ignored $(q "SELECT count(*) FROM groups WHERE status = 'ignored'")"
	if [ "$1" -ge 2 ]; then
		echo "  circuits $(q 'SELECT count(*) FROM circuits'), open $(q 'SELECT count(*) FROM circuits WHERE state <> 0')," \
			"transitions $(q 'SELECT count(*) FROM transitions'), alerts $(q 'SELECT count(*) FROM alerts')," \
			"firing $(q "SELECT count(*) FROM alerts WHERE status = 'firing'"), deliveries $(q 'SELECT count(*) FROM deliveries')," \
			"silences $(q 'SELECT count(*) FROM silences'), outcome batches $(q 'SELECT count(*) FROM outcome_batches')"
	fi
	rm -f "$db-wal" "$db-shm" # left by the read-only queries above
}

make_v1() {
	build_old 1 "$V1_COMMIT"
	db="$tmp/v1.db"
	: >"$tmp/v1.yaml"
	start_errqd "$tmp/v1.yaml"
	report checkout
	report checkout
	report billing
	report search
	wait_count "12 events" 'SELECT count(*) FROM events' 12
	"$bin/errq" resolve "$(fp_of billing TimeoutError)" >/dev/null
	"$bin/errq" ignore "$(fp_of search JSONDecodeError)" >/dev/null
	stop_errqd
	finish 1
}

make_alerting() { # VERSION COMMIT: schema 2 and later, the same recipe
	build_old "$1" "$2"
	db="$tmp/v$1.db"
	# "timeouts" trips on checkout's two TimeoutErrors and stays open (firing) for a week;
	# "per-service" trips on every service, then recovers within ~2 s (resolved alerts).
	# The webhook's port has no listener: its deliveries fail and are retried / dead-lettered.
	cat >"$tmp/v$1.yaml" <<-'EOF'
		notifiers:
		  - name: journal
		    type: log
		  - name: ops
		    type: webhook
		    url: http://127.0.0.1:9/errq
		    timeout: 1s
		    max_attempts: 2
		rules:
		  - name: timeouts
		    match: {error_type: "Timeout*"}
		    group_by: [service, error_type]
		    trip: {failures: 2, window: 5m}
		    recovery_timeout: 7d
		    severity: critical
		    notify: [journal, ops]
		  - name: per-service
		    group_by: [service]
		    trip: {failures: 3, window: 1m}
		    recovery_timeout: 1s
		    half_open: {probe: 1s}
		    severity: warning
		    notify: [journal]
	EOF
	start_errqd "$tmp/v$1.yaml"
	report checkout
	report checkout
	report billing
	report search
	wait_count "12 events" 'SELECT count(*) FROM events' 12
	wait_count "3 resolved alerts" "SELECT count(*) FROM alerts WHERE status = 'resolved'" 3
	wait_count "the webhook's first attempt" "SELECT count(*) FROM deliveries WHERE notifier = 'ops' AND attempts > 0" 1
	"$bin/errq" silence add --rule timeouts --match service=billing --for 7d --comment "card provider maintenance" >/dev/null
	"$bin/errq" resolve "$(fp_of billing TimeoutError)" >/dev/null
	"$bin/errq" ignore "$(fp_of search JSONDecodeError)" >/dev/null
	stop_errqd
	finish "$1"
}

cd "$root"
for v in ${*:-1 2 3 4}; do
	case $v in
	1) make_v1 ;;
	2) make_alerting 2 "$V2_COMMIT" ;;
	3) make_alerting 3 "$V3_COMMIT" ;;
	4) make_alerting 4 "$V4_COMMIT" ;;
	*) die "no recipe for schema version '$v' (known: 1 2 3 4)" ;;
	esac
done
