#!/bin/sh
# image_test.sh SOURCE_DIR BUILD_DIR
#
# The container image end to end (make test-long; needs root, buildah and debootstrap):
# scripts/build-image builds deploy/Containerfile and writes BUILD_DIR/errq-image.tar; the
# archive must carry the tag, the non-root user, the volume, the ports and the HEALTHCHECK.
# Then errqd runs from the image (buildah run, chroot isolation, which shares the host's
# network), started by the image's own ENTRYPOINT and config with the ports moved to
# 127.0.0.1 (gRPC on an ephemeral port, HTTP on a free one this script picks) and, as an
# operator would mount it, a config that adds credentials made by `errq token new` (the image's
# own has none: errqd refuses 0.0.0.0 without them): report_failure from the build tree
# reports three events from outside with an ingest token, the errq inside the image reads them
# back with a read token and is refused without one (exit 4), GET /livez answers 200 from
# outside and through the HEALTHCHECK's curl inside, and SIGTERM stops errqd cleanly (exit 0,
# "drained").
set -eu

src=$1
build=$2
tmp=$(mktemp -d /tmp/errq-image-XXXXXX)
ctr=
bpid=
fail() {
	echo "image_test: $*" >&2
	exit 1
}
bh() {
	buildah --root "$build/image/storage" --runroot "$build/image/run" --storage-driver vfs "$@"
}
cleanup() {
	if [ -s "$tmp/share/pid" ]; then kill -TERM "$(cat "$tmp/share/pid")" 2>/dev/null || true; fi
	if [ -n "$bpid" ]; then wait "$bpid" 2>/dev/null || true; fi
	if [ -n "$ctr" ]; then bh rm "$ctr" >/dev/null 2>&1 || true; fi
	if [ -z "${ERRQ_KEEP_TMP:-}" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
# wait_for CONDITION DESCRIPTION: poll every 0.1 s for up to 60 s
wait_for() {
	i=0
	until eval "$1"; do
		i=$((i + 1))
		[ $i -lt 600 ] || fail "timed out waiting for $2"
		if [ -n "$bpid" ] && ! kill -0 "$bpid" 2>/dev/null; then
			fail "errqd's container exited while waiting for $2: $(cat "$tmp/errqd.log")"
		fi
		sleep 0.1
	done
}

[ "$(id -u)" = 0 ] || fail "needs root (buildah with vfs storage and chroot isolation)"
command -v curl >/dev/null || fail "curl not found (scripts/install-deps)"
[ -x "$build/bin/report_failure" ] || fail "no $build/bin/report_failure: build first"

# ---- build, and what the archive says
"$src/scripts/build-image" "$build" >"$tmp/build.out" 2>"$tmp/build.log" ||
	fail "scripts/build-image failed: $(tail -20 "$tmp/build.log")"
tag=$(tail -1 "$tmp/build.out")
version=${tag##*:}
archive=$build/errq-image.tar
[ -s "$archive" ] || fail "no $archive"
manifest=$(tar -xOf "$archive" manifest.json) || fail "$archive has no manifest.json"
echo "$manifest" | grep -q "/errq:$version\"" || fail "$archive is not tagged errq:$version: $manifest"
cfg=$(echo "$manifest" | sed -n 's/.*"Config":"\([^"]*\)".*/\1/p')
config=$(tar -xOf "$archive" "$cfg") || fail "$archive has no image config '$cfg'"
for want in '"User":"10001:10001"' '"/var/lib/errq":{}' '"4770/tcp":{}' '"4771/tcp":{}' \
	'"StopSignal":"SIGTERM"' '"Healthcheck":{"Test":\["CMD","curl"[^]]*/livez"\]'; do
	echo "$config" | grep -q "$want" || fail "the image config lacks $want"
done

# ---- run errqd from the image: its ENTRYPOINT (errqd --config /etc/errq/errqd.yaml) + flags
ctr=$(bh from --pull-never "$tag")
entrypoint=$(bh inspect --type image --format '{{range .Docker.Config.Entrypoint}}{{.}} {{end}}' "$tag")
case "$entrypoint" in
*/errqd\ --config\ /etc/errq/errqd.yaml\ ) ;;
*) fail "unexpected ENTRYPOINT '$entrypoint'" ;;
esac
# a free port for HTTP: one that nothing listens on now (IPv4 or IPv6)
listening=$(awk 'NR > 1 && $4 == "0A" {split($2, a, ":"); print a[2]}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
hport=
for _ in 1 2 3 4 5 6 7 8 9 10; do
	p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000))
	if ! echo "$listening" | grep -qix "$(printf '%04X' "$p")"; then
		hport=$p
		break
	fi
done
[ -n "$hport" ] || fail "no free port found for HTTP"
mkdir "$tmp/share"
chmod 1777 "$tmp/share" # errqd runs as 10001
# the image's config and credentials (docs/security.md): the entrypoint's file, as given
# to the container, with the entries `errq token new` prints pasted under credentials:
"$build/bin/errq" token new --name image-ingest --role ingest --service 'image-*' >"$tmp/ingest.tok"
"$build/bin/errq" token new --name image-reader --role read >"$tmp/read.tok"
ingest_token=$(sed -n 's/^token: //p' "$tmp/ingest.tok")
read_token=$(sed -n 's/^token: //p' "$tmp/read.tok")
bh run --isolation chroot "$ctr" -- cat /etc/errq/errqd.yaml >"$tmp/share/errqd.yaml"
{
	echo "credentials:"
	sed -n '/^  - name:/,$p' "$tmp/ingest.tok"
	sed -n '/^  - name:/,$p' "$tmp/read.tok"
} >>"$tmp/share/errqd.yaml"
chmod 644 "$tmp/share/errqd.yaml"
# shellcheck disable=SC2086 # the entrypoint is words
bh run --isolation chroot -v "$tmp/share:/run/errq-test" "$ctr" -- \
	sh -c 'echo $$ >/run/errq-test/pid && exec "$@"' sh $entrypoint --config /run/errq-test/errqd.yaml \
	--listen 127.0.0.1:0 --http-listen "127.0.0.1:$hport" --port-file /run/errq-test/port \
	>"$tmp/errqd.out" 2>"$tmp/errqd.log" &
bpid=$!
# shellcheck disable=SC2016 # evaluated by wait_for
wait_for '[ -s "$tmp/share/port" ]' "errqd's port file"
port=$(sed -n 1p "$tmp/share/port") # line 1: gRPC (line 2: HTTP)
pid=$(cat "$tmp/share/pid")
[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = errqd ] || fail "pid $pid is not errqd (a PID namespace?)"
[ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" = 10001 ] || fail "errqd does not run as 10001"
grep -q '"database":"/var/lib/errq/errq.db"' "$tmp/errqd.log" ||
	fail "errqd does not use the image's database path: $(cat "$tmp/errqd.log")"

# ---- events in from outside, read back with the errq inside
ERRQ_ADDR=127.0.0.1:$port ERRQ_TOKEN=$ingest_token "$build/bin/report_failure" image-test >"$tmp/report.log" 2>&1 ||
	fail "report_failure failed: $(cat "$tmp/report.log")"
grep -q "3 reported, 3 acknowledged" "$tmp/report.log" || fail "report_failure: $(cat "$tmp/report.log")"
rc=0
bh run --isolation chroot "$ctr" -- errq --addr "127.0.0.1:$port" events >/dev/null 2>"$tmp/errq.log" || rc=$?
if [ "$rc" != 4 ] || ! grep -q unauthenticated "$tmp/errq.log"; then
	fail "errq without a token exited $rc, want 4 (unauthenticated): $(cat "$tmp/errq.log")"
fi
bh run --isolation chroot --env "ERRQ_TOKEN=$read_token" "$ctr" -- errq --addr "127.0.0.1:$port" events -o jsonl \
	>"$tmp/events.jsonl" \
	2>"$tmp/errq.log" || fail "errq events in the image failed: $(cat "$tmp/errq.log")"
n=$(grep -c '"service":"image-test"' "$tmp/events.jsonl" || true)
[ "$n" = 3 ] || fail "errq in the image reads $n events of image-test, want 3: $(cat "$tmp/events.jsonl")"
for t in ConnectionResetError JSONDecodeError TimeoutError; do
	grep -q "\"error_type\":\"$t\"" "$tmp/events.jsonl" || fail "no $t event read back"
done

# the report_failure inside the image (deploy/compose.yaml's demo service) reaches it too
bh run --isolation chroot --env "ERRQ_ADDR=127.0.0.1:$port" --env "ERRQ_TOKEN=$ingest_token" "$ctr" -- \
	report_failure image-demo \
	>"$tmp/demo.log" 2>&1 || fail "report_failure in the image failed: $(cat "$tmp/demo.log")"
grep -q "3 reported, 3 acknowledged" "$tmp/demo.log" || fail "report_failure in the image: $(cat "$tmp/demo.log")"

# ---- /livez from outside, and with the image's HEALTHCHECK command (its curl) inside
code=$(curl -s -o "$tmp/livez.body" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$hport/livez" || true)
[ "$code" = 200 ] || fail "GET /livez answered '$code', want 200: $(cat "$tmp/livez.body" 2>/dev/null)"
bh run --isolation chroot "$ctr" -- curl -fsS -o /dev/null --max-time 4 "http://127.0.0.1:$hport/livez" ||
	fail "the HEALTHCHECK's curl in the image fails on /livez"

# ---- SIGTERM (the STOPSIGNAL) stops it cleanly
kill -TERM "$pid"
rc=0
wait "$bpid" || rc=$?
bpid=
[ "$rc" = 0 ] || fail "errqd exited $rc on SIGTERM: $(tail -5 "$tmp/errqd.log")"
grep -q '"msg":"drained"' "$tmp/errqd.log" || fail "no 'drained' in errqd's log: $(tail -5 "$tmp/errqd.log")"
echo "image_test: $tag ($(du -m "$archive" | cut -f1) MiB archive): errqd ran as 10001, stored 3 events, errq in the image read them with a read token (and was refused without), /livez 200, SIGTERM drained"
