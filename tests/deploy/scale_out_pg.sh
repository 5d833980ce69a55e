#!/bin/sh
# scale_out_pg.sh SOURCE_DIR ERRQD ERRQ REPORT_FAILURE URLFILE
#
# The replicas' config of deploy/k8s/scale-out (and deploy/compose.scale-out.yaml) on a real
# PostgreSQL: two errqd started as the Deployment starts them (the ConfigMap's errqd.yaml, the
# Secret's URL as ERRQ_DATABASE, the pod's name as ERRQ_NAME; only the ports moved to
# 127.0.0.1:0) on a database of their own on the private server of the ctest fixture `pg`
# (URLFILE, tests/support/pg-server).  Each answers the probes' paths (/livez, /readyz 200) and
# loaded the config's rules; the client target the docs give (dns:///HOST:PORT) works for
# liberrq (report_failure, with the example ingest token) and for errq (the example admin
# token of the CLI's Secret); events reported to one replica are read back from the other, and
# `errq status` on each says postgres and its own name, `errq rules list` the config's rule,
# and /metrics has the database totals (errq_store_up 1).  Prints the connections the two
# replicas hold on the database then (docs/scale-out.md, Sizing).
set -eu

src=$1
errqd=$2
errq=$3
report=$4
urlfile=$5
# shellcheck source=tests/deploy/lib.sh
. "$(dirname "$0")/lib.sh"
need psql
need curl
cfg=$src/deploy/k8s/scale-out/errqd.yaml
pids=
pgdb=
base=
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null || :; done
	for p in $pids; do wait "$p" 2>/dev/null || :; done
	[ -z "$pgdb" ] || psql -q "$base" -c "DROP DATABASE IF EXISTS $pgdb" >/dev/null 2>&1 || :
	rm -rf "$tmp"
}
trap cleanup EXIT

# the example tokens of the deploy files (the ConfigMap has their hashes)
admin=$(sed -n 's/^ *- ERRQ_TOKEN=\(errq_[A-Za-z0-9_-]*\)$/\1/p' "$src/deploy/k8s/scale-out/kustomization.yaml")
ingest=$(sed -n 's/^ *ERRQ_TOKEN: \(errq_[A-Za-z0-9_-]*\) .*ingest token.*/\1/p' "$src/deploy/compose.scale-out.yaml")
if [ -z "$admin" ] || [ -z "$ingest" ]; then
	fail "cannot find the example tokens in the deploy files"
fi

[ -s "$urlfile" ] || fail "no server URL in '$urlfile'"
base=$(cat "$urlfile")
pgdb=errq_scale_out_$$
psql -q "$base" -c "CREATE DATABASE $pgdb" >/dev/null || fail "cannot create database $pgdb"
url=$(printf '%s' "$base" | sed -e "s|/[^/?]*\(?.*\)\{0,1\}\$|/$pgdb\1|")
case "$url" in *"/$pgdb"*) ;; *) fail "cannot name database $pgdb in '$base'" ;; esac

# wait_for CONDITION DESCRIPTION: poll every 0.1 s for up to 60 s, while every errqd runs
wait_for() {
	i=0
	until eval "$1"; do
		i=$((i + 1))
		[ $i -lt 600 ] || fail "timed out waiting for $2"
		for p in $pids; do
			kill -0 "$p" 2>/dev/null || fail "an errqd exited while waiting for $2: $(cat "$tmp"/log*)"
		done
		sleep 0.1
	done
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1$2" || :; }
# grpc_port R, http_port R: replica R's ports (its port file: gRPC, then HTTP)
grpc_port() { sed -n 1p "$tmp/port$1"; }
http_port() { sed -n 2p "$tmp/port$1"; }

for r in 1 2; do
	ERRQ_DATABASE=$url ERRQ_NAME=replica-$r "$errqd" --config "$cfg" --listen 127.0.0.1:0 \
		--http-listen 127.0.0.1:0 --port-file "$tmp/port$r" >"$tmp/log$r" 2>&1 &
	pids="$pids $!"
done
for r in 1 2; do
	# shellcheck disable=SC2016 # evaluated by wait_for
	wait_for '[ -s "$tmp/port'$r'" ]' "replica $r's port file" # written whole (a rename)
	http=$(http_port $r)
	[ "$(http_code "$http" /livez)" = 200 ] || fail "replica $r: GET /livez is not 200"
	# shellcheck disable=SC2016
	wait_for '[ "$(http_code '"$http"' /readyz)" = 200 ]' "replica $r's /readyz to answer 200"
	grep -q '"msg":"errqd started".*"rules":"1"' "$tmp/log$r" ||
		fail "replica $r did not start with the config's rule: $(cat "$tmp/log$r")"
	grep -q "\"database\":\"postgres[a-z]*://[^\"]*/$pgdb" "$tmp/log$r" ||
		fail "replica $r is not on the database of ERRQ_DATABASE: $(cat "$tmp/log$r")"
done
g1=$(grpc_port 1)
g2=$(grpc_port 2)

# liberrq through dns:///, to replica 1
ERRQ_ADDR=dns:///localhost:$g1 ERRQ_TOKEN=$ingest "$report" demo-scale-out >"$tmp/report.log" 2>&1 ||
	fail "report_failure to dns:///localhost:$g1 failed: $(cat "$tmp/report.log")"
grep -q "3 reported, 3 acknowledged" "$tmp/report.log" || fail "report_failure: $(cat "$tmp/report.log")"
# errq through dns:///, from replica 2: the same rows
ERRQ_TOKEN=$admin "$errq" --addr "dns:///localhost:$g2" events --service demo-scale-out -o jsonl \
	>"$tmp/events.jsonl" 2>"$tmp/errq.log" || fail "errq events on replica 2 failed: $(cat "$tmp/errq.log")"
n=$(grep -c '"service":"demo-scale-out"' "$tmp/events.jsonl" || true)
[ "$n" = 3 ] || fail "replica 2 reads $n events reported to replica 1, want 3: $(cat "$tmp/events.jsonl")"
for r in 1 2; do
	g=$(grpc_port $r)
	ERRQ_TOKEN=$admin "$errq" --addr "dns:///localhost:$g" status >"$tmp/status$r" 2>&1 ||
		fail "errq status on replica $r: $(cat "$tmp/status$r")"
	grep -q "^collector .*\"replica-$r\" at dns:///localhost:$g\$" "$tmp/status$r" ||
		fail "replica $r's status does not name it: $(cat "$tmp/status$r")"
	grep -q "^database .*, postgres\$" "$tmp/status$r" || fail "replica $r's status does not say postgres"
	# the rule of the ConfigMap, through the Alerts service's reader
	ERRQ_TOKEN=$admin "$errq" --addr "dns:///localhost:$g" rules list >"$tmp/rules$r" 2>&1 ||
		fail "errq rules list on replica $r: $(cat "$tmp/rules$r")"
	grep -q "timeouts" "$tmp/rules$r" || fail "replica $r does not list the rule 'timeouts': $(cat "$tmp/rules$r")"
	# what Prometheus scrapes: the database totals through the metrics' reader
	curl -fsS --max-time 10 "http://127.0.0.1:$(http_port $r)/metrics" >"$tmp/metrics$r" ||
		fail "replica $r: GET /metrics failed"
	grep -q "^errq_store_up 1\$" "$tmp/metrics$r" || fail "replica $r: errq_store_up is not 1"
done
conns=$(psql -At "$base" -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$pgdb'")

for p in $pids; do kill -TERM "$p"; done
for p in $pids; do
	wait "$p" || fail "an errqd did not stop cleanly on SIGTERM: $(cat "$tmp/log1" "$tmp/log2")"
done
pids=
echo "scale_out_pg: 2 replicas on $pgdb with the scale-out config: probes 200, rules loaded," \
	"3 events reported through dns:///localhost:$g1 read back from the other; $conns connections on the database"
