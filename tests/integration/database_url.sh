#!/bin/sh
# The database setting as a URL (issue 17), through a real errqd: a password in a postgres://
# URL never reaches its log, stderr or --print-config (wherever the database is named it shows
# as ***), the SQLite-only settings are refused with a postgres URL, an unknown scheme is
# refused, and a sqlite:// URL stores into the file it names.  No PostgreSQL server is needed:
# the postgres URL points at a closed port (without PostgreSQL support errqd says so instead).
# With URLFILE (the ctest fixture `pg`'s server URL: tests/support/pg-server), errqd also starts
# on a real PostgreSQL database of its own, named in its log with the password hidden, and
# `errq status` (ERRQ) says what it runs on.
# usage: database_url.sh ERRQD [URLFILE ERRQ]
set -eu
errqd=$1
urlfile=${2:-}
errq=${3:-}
dir=$(mktemp -d "${TMPDIR:-/tmp}/errq-database-url.XXXXXX")
pid=
pgdb=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || :
	[ -z "$pgdb" ] || psql -q "$(cat "$urlfile")" -c "DROP DATABASE IF EXISTS $pgdb" >/dev/null 2>&1 || :
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
secret=s3cr3t-Pw0rd
url="postgres://errq:$secret@127.0.0.1:1/errq?connect_timeout=2&password=$secret"
nosecret() { ! grep -q "$secret" "$1" || fail "$2: the password is in the output: $(cat "$1")"; }
# start ARGS...: errqd in the background (pid), on ephemeral ports, until its port file is written
start() {
	rm -f "$dir/port"
	"$errqd" "$@" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --port-file "$dir/port" >"$dir/log" 2>&1 &
	pid=$!
	i=0
	while [ ! -s "$dir/port" ]; do
		kill -0 "$pid" 2>/dev/null || fail "errqd exited: $(cat "$dir/log")"
		i=$((i + 1))
		[ $i -lt 600 ] || fail "errqd did not start in 60 s: $(cat "$dir/log")"
		sleep 0.1
	done
}

# a start that cannot open the database: it stops, names the database redacted
for fmt in json text; do
	if "$errqd" --db "$url" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --log-format $fmt --log-level debug \
		>"$dir/out" 2>&1; then
		fail "errqd started on a closed port"
	fi
	cat "$dir/out"
	nosecret "$dir/out" "start ($fmt)"
	grep -q "cannot start" "$dir/out" || fail "no 'cannot start' line ($fmt)"
	if grep -q "postgres support not built" "$dir/out"; then # built without libpq: says which database
		grep -q "errq:\*\*\*@127.0.0.1:1/errq?connect_timeout=2&password=\*\*\*" "$dir/out" ||
			fail "the refusal does not name the database redacted ($fmt)"
	fi
done

# the printed configuration: the URL redacted; storage follows it
"$errqd" --db "$url" --print-config >"$dir/out" 2>&1 || fail "--print-config: $(cat "$dir/out")"
nosecret "$dir/out" "--print-config"
grep -q '^database: "postgres://errq:\*\*\*@127.0.0.1:1/errq?connect_timeout=2&password=\*\*\*"' "$dir/out" ||
	fail "--print-config: $(grep database "$dir/out")"
grep -q '^storage: "postgres"' "$dir/out" || fail "storage does not follow the database: $(grep storage "$dir/out")"

# SQLite-only settings with a postgres URL: refused, with where they came from
if ERRQ_MIN_FREE_DISK=1GiB "$errqd" --db "$url" --check-config >"$dir/out" 2>&1; then
	fail "min_free_disk was accepted with a postgres database"
fi
nosecret "$dir/out" "min_free_disk refusal"
grep -q "^errqd: setting 'min_free_disk' (env ERRQ_MIN_FREE_DISK) applies to a SQLite database only" "$dir/out" ||
	fail "unexpected refusal: $(cat "$dir/out")"
if "$errqd" --db "$url" --set cache_mib=16 --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 >"$dir/out" 2>&1; then
	fail "cache_mib was accepted with a postgres database"
fi
nosecret "$dir/out" "cache_mib refusal"
grep -q "^errqd: setting 'cache_mib' (flag --set)" "$dir/out" || fail "unexpected refusal: $(cat "$dir/out")"
if "$errqd" --db "$url" --durability full --check-config >"$dir/out" 2>&1; then
	fail "durability was accepted with a postgres database"
fi
grep -q "^errqd: setting 'durability' (flag --durability) applies to a SQLite database only" "$dir/out" ||
	fail "unexpected refusal: $(cat "$dir/out")"

# an unknown scheme is no file name
if "$errqd" --db "mysql://root@db/errq" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 >"$dir/out" 2>&1; then
	fail "mysql:// was accepted"
fi
grep -q "unknown scheme 'mysql://'" "$dir/out" || fail "unexpected refusal: $(cat "$dir/out")"

# sqlite:///ABS: errqd starts on the file it names, and says which
start --db "sqlite://$dir/url.db" --log-format text
[ -s "$dir/url.db" ] || fail "no database at $dir/url.db"
[ -e "$dir/url.db.lock" ] || fail "no lock beside $dir/url.db"
grep -q "errqd started.*database=sqlite://$dir/url.db" "$dir/log" || fail "the start line: $(cat "$dir/log")"
kill -TERM "$pid"
wait "$pid" || fail "errqd did not stop cleanly: $(cat "$dir/log")"
pid=

# a real PostgreSQL database (its role needs no password: the one in the URL must show nowhere)
if [ -n "$urlfile" ]; then
	[ -s "$urlfile" ] || fail "no server URL in '$urlfile'"
	base=$(cat "$urlfile")
	pgdb=errq_database_url_$$
	psql -q "$base" -c "CREATE DATABASE $pgdb" >/dev/null || fail "cannot create database $pgdb"
	pwurl=$(printf '%s' "$base" | sed -e "s|://\([^@/:]*\)@|://\1:$secret@|" -e "s|/[^/?]*\(?.*\)\{0,1\}\$|/$pgdb\1|")
	case "$pwurl" in *"$secret"*"/$pgdb"*) ;; *) fail "cannot put a password into '$base' ($pwurl)" ;; esac
	start --db "$pwurl" --log-format json --log-level debug
	"$errq" --addr "127.0.0.1:$(head -n 1 "$dir/port")" status >"$dir/status" 2>&1 || fail "errq status: $(cat "$dir/status")"
	cat "$dir/status"
	grep -q "^database .*, postgres\$" "$dir/status" || fail "status does not say postgres"
	grep -q "^durability *server: PostgreSQL's" "$dir/status" || fail "status does not say whose durability"
	kill -TERM "$pid"
	wait "$pid" || fail "errqd did not stop cleanly: $(cat "$dir/log")"
	pid=
	cat "$dir/log"
	nosecret "$dir/log" "a start on PostgreSQL"
	grep -q "\"msg\":\"errqd started\".*\"database\":\"postgres[a-z]*://[^\"]*:\*\*\*@[^\"]*/$pgdb" "$dir/log" ||
		fail "the start line does not name the database redacted"
	[ ! -e "$dir/$pgdb.lock" ] || fail "a lock file for a PostgreSQL database"
fi
echo "ok"
