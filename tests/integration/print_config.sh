#!/bin/sh
# errqd --print-config with a config file, the environment and flags at once: each setting's
# value and source as printed, other programs' ERRQ_ variables ignored, a bad variable refused
# with one line naming it, and the printed configuration loading back.  No server is started.
# usage: print_config.sh ERRQD
set -eu
errqd=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/errq-print-config.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat >"$dir/errqd.yaml" <<'YAML'
# a config file
database: /var/lib/errq/file.db
name: from-file

retention: 7d
log_level: warn
YAML

# expect KEY VALUE SOURCE: the line of KEY in out has that value and that source
expect() {
	line=$(grep "^$1: " "$dir/out") || fail "no line for $1"
	case "$line" in
	"$1: \"$2\""*"# $3") ;;
	*) fail "$1: expected value '$2' from '$3', got: $line" ;;
	esac
}

env ERRQ_NAME=from-env ERRQ_DATABASE=/env.db ERRQ_LOG_FORMAT=text ERRQ_HTTP_LISTEN=0.0.0.0:9999 \
    ERRQ_TEST_FILTER=x ERRQ_VALGRIND=1 ERRQ_LIBRARY=/x.so ERRQ_ADDR='not an address' ERRQ_PORT_FILE=/p \
    "$errqd" --config "$dir/errqd.yaml" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --db "$dir/flag.db" \
    --storage none --durability full --log-level debug --set cq_threads=3 --set name=from-flag \
    --print-config >"$dir/out" 2>"$dir/err" || fail "errqd --print-config failed: $(cat "$dir/err")"
cat "$dir/out"
expect listen 127.0.0.1:0 "flag --listen"
expect http_listen 127.0.0.1:0 "flag --http-listen"
expect database "$dir/flag.db" "flag --db"
expect name from-flag "flag --set"
expect storage none "flag --storage"
expect durability full "flag --durability"
expect log_level debug "flag --log-level"
expect cq_threads 3 "flag --set"
expect log_format text "env ERRQ_LOG_FORMAT"
expect retention 7d "file '$dir/errqd.yaml' line 5"
expect cache_mib 64 "default"
[ ! -s "$dir/err" ] || fail "unexpected stderr: $(cat "$dir/err")"

# env over file when no flag is given; --log-format is a flag too
ERRQ_NAME=from-env ERRQ_DATABASE=/env.db "$errqd" --config "$dir/errqd.yaml" --log-format text \
    --print-config >"$dir/out"
expect name from-env "env ERRQ_NAME"
expect database /env.db "env ERRQ_DATABASE"
expect log_level warn "file '$dir/errqd.yaml' line 6"
expect log_format text "flag --log-format"
expect http_listen 127.0.0.1:4771 "default"

# the printed configuration is a config file that gives the same values
cp "$dir/out" "$dir/printed.yaml"
"$errqd" --config "$dir/printed.yaml" --check-config >/dev/null || fail "the printed configuration does not load"
"$errqd" --config "$dir/printed.yaml" --print-config >"$dir/again"
sed 's/ *#.*//' "$dir/out" >"$dir/a"
sed 's/ *#.*//' "$dir/again" >"$dir/b"
diff -u "$dir/a" "$dir/b" || fail "the printed configuration reads back to other values"

# a bad variable: refused at start with one line naming it, by --print-config and by a real start
for args in --print-config --check-config "--listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --db $dir/never.db"; do
	# shellcheck disable=SC2086
	if ERRQ_CQ_THREADS=0 "$errqd" $args >"$dir/out" 2>"$dir/err"; then
		fail "ERRQ_CQ_THREADS=0 was accepted ($args)"
	fi
	[ "$(cat "$dir/err")" = "errqd: environment variable ERRQ_CQ_THREADS: '0' is not an integer in [1, 64]" ] ||
		fail "unexpected refusal ($args): $(cat "$dir/err")"
done
[ ! -e "$dir/never.db" ] || fail "a refused start created the database"
echo "ok"
